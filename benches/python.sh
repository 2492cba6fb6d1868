#!/usr/bin/env bash
# The Python package's throughput against the CLI on the benchmark corpus.
#
#   benches/python.sh [SIZE_MB]          (default 200)
#
# Builds the CLI (cargo build --release) and the release wheel into a venv at
# target/bench-venv (`pip install ./python`, as a user does), generates the
# corpus with benches/gencorpus.py once per size and seed (shared with
# bench.sh: target/bench/<size>mb-s<seed>), then runs benches/python_bench.py:
# the CLI and Deduper.clean_batch over the same big.jsonl, alternating, REPS
# warm runs each (default 3; SEED default 1).
set -euo pipefail
cd "$(dirname "$0")/.."
. benches/common.sh

MB=${1:-200}
SEED=${SEED:-1}
REPS=${REPS:-3}
DIR=${BENCH_DIR:-target/bench/${MB}mb-s${SEED}}
VENV=target/bench-venv

cargo build --release --quiet
if [[ ! -x $VENV/bin/python ]]; then
    python3 -m venv "$VENV"
fi
"$VENV/bin/pip" install --quiet --disable-pip-version-check --force-reinstall --no-deps ./python
bench_corpus "$DIR" "$MB" "$SEED"
cat "$DIR/big.jsonl" >/dev/null
echo "machine: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores, Linux $(uname -r)"
"$VENV/bin/python" benches/python_bench.py "$DIR/big.jsonl" target/release/newsdedup --reps "$REPS"
