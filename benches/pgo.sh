#!/usr/bin/env bash
# Builds newsdedup with profile-guided optimisation (PGO) into target/pgo/newsdedup.
#
#   benches/pgo.sh
#
# Three steps, as rustc's own guide to PGO describes them: a release build
# instrumented to count what runs (-Cprofile-generate), training runs of that
# build, and a release build that uses the merged counts (-Cprofile-use). The
# output is the same as the plain release build's (only the compiler's choices
# of inlining, layout and branch order change); on the 2-core bench machine it
# took 5-8% less wall time on JSONL (README, "Performance").
#
# The training runs are the main jobs on a corpus of benches/gencorpus.py with
# a seed the benches do not use (2; 20 MB, generated afresh each time, from
# ../shared/corpora when it is there): JSON Lines at -j1 and -j2 (once with
# each SHA-256 lane path: which one a process takes is decided by a timing at
# its start, which the instrumentation could tilt), the tree with --out and
# --report, CSV, a first and a second day with --index, 4 MB each of the same
# corpus in Cyrillic and in CJK letters (--script), and every fixture. A
# path the training does not run (Parquet, --in-place, ...) is compiled as
# cold: it stays correct, and may be a little slower than in the plain build.
#
# Needs llvm-profdata of the compiler's own LLVM (the rustup component
# `llvm-tools`, added here when rustup is present), python3, and ~2 GB in
# target/pgo for its two builds (~13 minutes on the 2-core machine). The
# flags go in CARGO_ENCODED_RUSTFLAGS (a path with spaces stays one flag),
# which replaces any RUSTFLAGS or build.rustflags of the caller's; the builds
# name the host as --target, so build scripts and proc macros are built
# without them and leave no counts.
set -euo pipefail
cd "$(dirname "$0")/.."

HOST=$(rustc -vV | sed -n 's/^host: //p')
PROFDATA=$(rustc --print sysroot)/lib/rustlib/$HOST/bin/llvm-profdata
if [[ ! -x $PROFDATA ]] && command -v rustup >/dev/null; then
    rustup component add llvm-tools >&2 || true
fi
if [[ ! -x $PROFDATA ]]; then
    echo "pgo.sh: $PROFDATA not found: install the rustup component llvm-tools" >&2
    exit 1
fi

PGO=$(pwd)/target/pgo
PROFILES=$PGO/profiles
CORPUS=$PGO/corpus
RUNS=$PGO/runs
rm -rf "$PROFILES" "$RUNS" "$CORPUS" "$CORPUS"-* "$PGO"/merged-*.profdata
mkdir -p "$PROFILES" "$RUNS"

echo "pgo.sh: instrumented build (target/pgo/gen)" >&2
CARGO_ENCODED_RUSTFLAGS="-Cprofile-generate=$PROFILES" CARGO_TARGET_DIR=$PGO/gen \
    cargo build --release --locked --quiet --target "$HOST" -p newsdedup --bin newsdedup
TRAIN=$PGO/gen/$HOST/release/newsdedup

python3 benches/gencorpus.py "$CORPUS" --mb 20 --seed 2
python3 - "$CORPUS/big.jsonl" "$RUNS/train.csv" <<'EOF'
import csv, json, sys
with open(sys.argv[1], encoding="utf-8") as src, open(sys.argv[2], "w", newline="", encoding="utf-8") as dst:
    out = csv.writer(dst)
    out.writerow(["id", "text"])
    for n, line in enumerate(src):
        if n == 3000:
            break
        record = json.loads(line)
        out.writerow([record["id"], record["text"]])
EOF
# Two days of --index: the first half of the records, then the second (mostly new keys).
HALF=$(($(wc -l < "$CORPUS/big.jsonl") / 2))
head -n "$HALF" "$CORPUS/big.jsonl" > "$RUNS/day1.jsonl"
tail -n +"$((HALF + 1))" "$CORPUS/big.jsonl" > "$RUNS/day2.jsonl"

echo "pgo.sh: training runs" >&2
NEWSDEDUP_SHA_LANES=ni "$TRAIN" clean --format jsonl "$CORPUS/big.jsonl" -q -j1 > /dev/null
NEWSDEDUP_SHA_LANES=wide "$TRAIN" clean --format jsonl "$CORPUS/big.jsonl" -q -j2 > /dev/null
"$TRAIN" clean "$CORPUS/tree" --out "$RUNS/tree" -q -j2 --report "$RUNS/report.json"
"$TRAIN" clean --format csv "$RUNS/train.csv" -q > /dev/null
# News in other scripts (every letter a character outside ASCII) takes paths
# English never does (the normal forms' table, runs of such letters): 4 MB
# each, so that the English runs above still weigh the most.
for script in cyrillic cjk; do
    python3 benches/gencorpus.py "$CORPUS-$script" --mb 4 --seed 2 --script "$script"
    "$TRAIN" clean --format jsonl "$CORPUS-$script/big.jsonl" -q -j2 > /dev/null
    "$TRAIN" clean "$CORPUS-$script/tree" --out "$RUNS/tree-$script" -q -j2
done
"$TRAIN" clean "$RUNS/day1.jsonl" --out "$RUNS/day1" -q --index "$RUNS/index"
"$TRAIN" clean "$RUNS/day2.jsonl" --out "$RUNS/day2" -q --index "$RUNS/index"
for input in fixtures/*/input; do
    "$TRAIN" clean "$input" --out "$RUNS/fixtures/${input//\//-}" -q
done

"$PROFDATA" merge -o "$PGO/merged.profdata" "$PROFILES"
# Named by its checksum: cargo rebuilds when the flags change, not when a file they name does.
PROFILE=$PGO/merged-$(sha256sum "$PGO/merged.profdata" | cut -c1-16).profdata
mv "$PGO/merged.profdata" "$PROFILE"
echo "pgo.sh: optimised build (target/pgo/use)" >&2
CARGO_ENCODED_RUSTFLAGS="-Cprofile-use=$PROFILE" CARGO_TARGET_DIR=$PGO/use \
    cargo build --release --locked --quiet --target "$HOST" -p newsdedup --bin newsdedup
cp "$PGO/use/$HOST/release/newsdedup" "$PGO/newsdedup"
rm -rf "$RUNS" "$CORPUS" "$CORPUS"-*
echo "pgo.sh: built target/pgo/newsdedup" >&2
