#!/usr/bin/env bash
# Scale-out benchmark (issue 16): newsdedup-spark on Spark local[2] and on DuckDB against the
# single-node CLI, end to end, on the same JSONL shards in the same run.
#
#   benches/spark.sh [SIZE_MB]          (default 1000)
#
# Generates the corpus with benches/gencorpus.py once per size and seed (shared with bench.sh:
# target/bench/<size>mb-s<seed>), splits its big.jsonl into SHARDS files (default 16) of whole
# lines, builds the release CLI and the release wheel into target/bench-spark-venv (with pyspark,
# duckdb, pyarrow), then runs, one after the other: the CLI (`newsdedup clean SHARDS --out`), the
# driver on Spark `local[2]` and the driver with `--engine duckdb --parallel 2`, each with
# --explain and --report, and checks that the three output trees and explain files are identical.
# Prints per-step times (plan, keys, decide, apply, merge) and per-row costs: keys rows, Parquet
# bytes per row, keys rows/s per core, decide seconds per million rows, and the 1 TB extrapolation;
# then decide again on the same keys in a warm session (benches/spark_decide.py).
# Environment: SEED (default 1), SHARDS (default 16), BENCH_DIR.
set -euo pipefail
cd "$(dirname "$0")/.."
. benches/common.sh

MB=${1:-1000}
SEED=${SEED:-1}
SHARDS=${SHARDS:-16}
DIR=${BENCH_DIR:-target/bench/${MB}mb-s${SEED}}
VENV=target/bench-spark-venv

cargo build --release --quiet
[[ -x $VENV/bin/python ]] || python3 -m venv "$VENV"
"$VENV/bin/pip" install --quiet --disable-pip-version-check 'pyspark>=4' duckdb pyarrow 'pandas<3'
"$VENV/bin/pip" install --quiet --disable-pip-version-check --force-reinstall --no-deps ./python
bench_corpus "$DIR" "$MB" "$SEED"
IN=$DIR/shards-$SHARDS
if [[ ! -f $IN.complete ]]; then
    rm -rf "$IN"
    mkdir -p "$IN"
    split -n "l/$SHARDS" -d -a 3 --additional-suffix=.jsonl "$DIR/big.jsonl" "$IN/part-"
    touch "$IN.complete"
fi
OUT=$DIR/spark-out-$$
trap 'rm -rf "$OUT"' EXIT
mkdir -p "$OUT"
cat "$IN"/*.jsonl >/dev/null
BYTES=$(cat "$IN"/*.jsonl | wc -c)
echo "machine: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores; load before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "input: $IN, $SHARDS JSONL shards, $BYTES bytes"

export PYSPARK_PYTHON=$PWD/$VENV/bin/python
t0=$(date +%s.%N)
target/release/newsdedup clean "$IN" --out "$OUT/cli" --explain "$OUT/cli.explain" --report "$OUT/cli.report" -q
t1=$(date +%s.%N)
CLI_S=$(echo "$t1 - $t0" | bc)
echo "cli: $CLI_S s (load $(cut -d' ' -f1 /proc/loadavg))"

for engine in spark duckdb; do
    extra=(--master 'local[2]' --conf spark.sql.shuffle.partitions=8 --conf spark.ui.enabled=false
           --conf spark.driver.memory=2g)
    [[ $engine == duckdb ]] && extra=(--parallel 2)
    t0=$(date +%s.%N)
    "$VENV/bin/newsdedup-spark" clean "$IN" --out "$OUT/$engine" --engine "$engine" "${extra[@]}" \
        --work "$OUT/$engine.work" --keep-work --timings "$OUT/$engine.timings" \
        --explain "$OUT/$engine.explain" --report "$OUT/$engine.report"
    t1=$(date +%s.%N)
    echo "$engine: $(echo "$t1 - $t0" | bc) s wall including start-up (load $(cut -d' ' -f1 /proc/loadavg))"
    diff -r -q "$OUT/cli" "$OUT/$engine" >/dev/null || { echo "$engine: output tree differs from the CLI's"; exit 1; }
    cmp -s "$OUT/cli.explain" "$OUT/$engine.explain" || { echo "$engine: explain differs from the CLI's"; exit 1; }
    echo "$engine: output tree and explain file identical to the CLI's"
    du -sb "$OUT/$engine.work/keys" "$OUT/$engine.work/drops" | sed "s/^/$engine work: /"
    rm -rf "$OUT/$engine"
done

"$VENV/bin/python" - "$OUT" "$BYTES" "$CLI_S" <<'EOF'
import json, sys
out, nbytes, cli_s = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
TB = 1e12
print()
print(f"| step | single-node CLI | Spark local[2] | DuckDB, 2 threads |")
print(f"|---|---|---|---|")
t = {e: json.load(open(f"{out}/{e}.timings")) for e in ("spark", "duckdb")}
for step in ("start", "plan", "keys", "decide", "apply", "merge_report", "total"):
    cli = f"{cli_s:.1f} s" if step == "total" else ""
    print(f"| {step} | {cli} | {t['spark'][step]['seconds']:.1f} s | {t['duckdb'][step]['seconds']:.1f} s |")
for e in ("spark", "duckdb"):
    k, d = t[e]["keys"], t[e]["decide"]
    rows = k["rows"]
    print(f"\n{e}: {rows:,} key rows for {nbytes:,} bytes ({rows / nbytes * 1e3:.2f} rows/KB); "
          f"keys Parquet {k['parquet_bytes'] / rows:.2f} bytes/row; "
          f"keys {rows / k['seconds'] / 2 / 1e6:.2f} M rows/s per core ({nbytes / k['seconds'] / 2 / 1e6:.1f} MB/s per core "
          f"vs the CLI's {nbytes / cli_s / 2 / 1e6:.1f} MB/s per core end to end); "
          f"decide {d['seconds'] / rows * 1e6:.2f} s per M rows on 2 cores; drop list {d['parquet_bytes']:,} bytes; "
          f"apply {t[e]['apply']['seconds'] / nbytes * 1e9:.2f} s/GB on 2 cores")
    rows_tb = rows / nbytes * TB
    print(f"  1 TB extrapolation: {rows_tb / 1e9:.1f} G key rows, {k['parquet_bytes'] / nbytes * TB / 1e9:.0f} GB of keys; "
          f"core-hours: keys {k['seconds'] * 2 / nbytes * TB / 3600:.0f}, decide {d['seconds'] * 2 / rows * rows_tb / 3600:.0f}, "
          f"apply {t[e]['apply']['seconds'] * 2 / nbytes * TB / 3600:.0f} "
          f"(CLI single node: {cli_s * 2 / nbytes * TB / 3600:.0f} core-hours, {cli_s / nbytes * TB / 3600:.0f} h on this machine)")
EOF
"$VENV/bin/python" benches/spark_decide.py "$OUT/spark.work" 2> >(grep -v WARN >&2)
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
