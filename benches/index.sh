#!/usr/bin/env bash
# What consulting a persistent index costs a run:
#
#   benches/index.sh [INDEX_MILLIONS] [NEW_PARAGRAPHS]     (defaults 10 and 1000000)
#
# Builds (once) an index of INDEX_MILLIONS million keys with examples/index_bench.rs --fill and a JSONL file of
# NEW_PARAGRAPHS distinct new paragraphs (10 per record, WORDS words each: default 60, about 390 bytes, the
# average paragraph of the BBC corpus), then times, warm cache, REPS times each (median):
#   A  newsdedup clean new.jsonl --out ...                     (no index)
#   B  newsdedup clean new.jsonl --out ... --index COPY        (lookups + commit of the new keys)
# COPY is a fresh copy of the index for every run (the copy is not timed). Prints both and B/A.
# NEWSDEDUP_BIN: the binary to time (default: cargo build --release).
set -euo pipefail
cd "$(dirname "$0")/.."
M=${1:-10}
N=${2:-1000000}
WORDS=${WORDS:-60}
REPS=${REPS:-3}
DIR=${BENCH_DIR:-target/bench/index-${M}m-${N}-w${WORDS}}
cargo build --release --quiet --example index_bench
if [[ -n ${NEWSDEDUP_BIN:-} ]]; then
    BIN=$(realpath "$NEWSDEDUP_BIN")
else
    cargo build --release --quiet
    BIN=$(realpath target/release/newsdedup)
fi
mkdir -p "$DIR"
if [[ ! -f $DIR/index.complete ]]; then
    rm -rf "$DIR/index"
    target/release/examples/index_bench --fill "$DIR/index" "$M" >/dev/null
    touch "$DIR/index.complete"
fi
if [[ ! -f $DIR/new.jsonl ]]; then
    python3 - "$DIR/new.jsonl" "$N" "$WORDS" <<'PY'
import json, random, sys
path, n, nwords = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rng = random.Random(7)
words = [w.strip() for w in "the of and to in a is that for on with as by at from his it an were are which this be has had have not been or who but their they its one new after also two first more said would year government people over".split()]
with open(path, "w") as f:
    for rec in range(n // 10):
        paras = [f"{rec}-{p} " + " ".join(rng.choices(words, k=nwords)) + "." for p in range(10)]
        f.write(json.dumps({"id": rec, "text": "\n".join(paras)}) + "\n")
PY
fi
cat "$DIR/new.jsonl" >/dev/null
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
run() { # run NAME WITH_INDEX
    local times=()
    for ((i = 0; i < REPS; i++)); do
        rm -rf "$DIR/out" "$DIR/ix"
        local extra=()
        if [[ $2 == yes ]]; then cp -r "$DIR/index" "$DIR/ix"; extra=(--index "$DIR/ix"); fi
        sync
        local t0 t1
        t0=$(date +%s.%N)
        "$BIN" clean "$DIR/new.jsonl" --out "$DIR/out" -q "${extra[@]}"
        t1=$(date +%s.%N)
        times+=("$(awk "BEGIN {print $t1 - $t0}")")
    done
    printf '%s\n' "${times[@]}" | median
}
A=$(run plain no)
B=$(run index yes)
printf 'index: %s million keys; run: %s new paragraphs (%s MB JSONL)\n' "$M" "$N" "$(( $(stat -c %s "$DIR/new.jsonl") / 1000000 ))"
printf '%-28s %8.3f s\n' "without index" "$A" "with --index (lookup+commit)" "$B"
printf '%-28s %8.2fx\n' "ratio" "$(awk "BEGIN {print $B / $A}")"
rm -rf "$DIR/out" "$DIR/ix"
