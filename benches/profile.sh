#!/usr/bin/env bash
# Instruction counts of the JSONL path (callgrind), for before/after comparisons that
# do not depend on the load of a shared machine:
#
#   benches/profile.sh [BINARY...]      (default: cargo build --release, target/release/newsdedup)
#
# Runs each BINARY under `valgrind --tool=callgrind` on the 5 MB seeded JSONL corpus
# (benches/gencorpus.py --mb 5 --seed 1), `clean --format jsonl FILE -q -j1 > /dev/null`,
# and prints the total instruction count, the count without SHA-256 (valgrind hides the
# SHA extensions, so SHA-256 runs in software there and is ~20x its native share) and the
# top functions by their own count. Needs valgrind and python3.
set -euo pipefail
cd "$(dirname "$0")/.."
DIR=${BENCH_DIR:-target/bench/5mb-s1}
if [[ ! -f $DIR/.complete ]]; then
    rm -rf "$DIR"
    python3 benches/gencorpus.py "$DIR" --mb 5 --seed 1 >&2
    touch "$DIR/.complete"
fi
if (($# == 0)); then
    cargo build --release --quiet
    set -- target/release/newsdedup
fi
for bin in "$@"; do
    out=$(mktemp)
    valgrind --tool=callgrind --callgrind-out-file="$out" "$bin" clean --format jsonl "$DIR/big.jsonl" -q -j1 \
        >/dev/null 2>"$out.log"
    total=$(sed -n 's/.*Collected : //p' "$out.log")
    sha=$(callgrind_annotate --auto=no --inclusive=no "$out" 2>/dev/null | awk '/sha256::.*compress/ {gsub(",", "", $1); s += $1} END {printf "%.0f", s}')
    echo "$bin: $total instructions; without SHA-256 compression: $((total - sha)) ($(stat -c %s "$DIR/big.jsonl") bytes of JSONL)"
    callgrind_annotate --auto=no --inclusive=no "$out" 2>/dev/null | grep -E '^ *[0-9,]+ \(' | sed -n 2,16p | cut -c1-150
    rm -f "$out" "$out.log"
done
