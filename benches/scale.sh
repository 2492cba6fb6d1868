#!/usr/bin/env bash
# Scale-out keys step against the single-node CLI, per core (issue 16: the
# keys step must run within 20% of the single-node throughput).
#
#   benches/scale.sh [SIZE_MB]          (default 100)
#
# On the corpus of benches/gencorpus.py (generated once per size and seed,
# shared with bench.sh): the JSONL file (big.jsonl, one shard) and the text
# tree (tree/, planned in 64 MiB shards). Each row runs with --threads 1 and
# reports CPU seconds (user + sys, the median of REPS runs after one warm-up):
# CPU time, not wall time, because this machine is shared (the load is
# printed); MB per CPU second is then the per-core throughput.
#
#   clean   newsdedup clean INPUT --out O --threads 1
#   keys    newsdedup keys --work W --shard R, every shard (after plan)
#   apply   newsdedup apply --work W --shard R --out O, every shard, with an
#           empty drop list (no SQL engine here: the cost of the step itself;
#           its decisions are then the shard's alone)
#
# Also printed: the keys rows, the Parquet bytes per row (keys part; the
# docs part separately) and the rows per CPU second. User and system time
# are shown apart: writing a tree of small files is mostly system time,
# which varies 2-4x between runs on a shared VM's ext4.
#
# Environment: SEED (default 1), REPS (default 3), BENCH_DIR (default
# target/bench/<size>mb-s<seed>), NEWSDEDUP (binary; default: cargo build --release,
# or with PGO=1 the profile-guided build of benches/pgo.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
. benches/common.sh

MB=${1:-100}
SEED=${SEED:-1}
REPS=${REPS:-3}
DIR=${BENCH_DIR:-target/bench/${MB}mb-s${SEED}}
bench_binary
need_gnu_time scale.sh
bench_corpus "$DIR" "$MB" "$SEED"
OUT=$DIR/scale-$$
trap 'rm -rf "$OUT"' EXIT
mkdir -p "$OUT"
echo "load: $(uptime)"

# cpu 'shell command' -- "total user sys" CPU seconds of the median (by
# total) of REPS runs after a warm-up.
RUN=0
cpu() {
    local lines=()
    for ((i = 0; i <= REPS; i++)); do
        RUN=$((RUN + 1))
        O=$OUT/$RUN $TIME -f "%U %S" -o "$OUT/time.txt" bash -c "$1" >/dev/null || { echo "scale.sh: failed: $1" >&2; return 1; }
        ((i == 0)) && continue
        lines+=("$(awk '{printf "%.3f %.2f %.2f", $1 + $2, $1, $2}' "$OUT/time.txt")")
    done
    printf '%s\n' "${lines[@]}" | sort -g | awk '{a[NR]=$0} END {print a[int((NR+1)/2)]}'
}

row() { # NAME INPUT
    local name=$1 input=$2 bytes work shards clean keys apply rows kb db
    bytes=$(du -sb --apparent-size "$input" | cut -f1)
    work=$OUT/work-$name
    "$BIN" plan "$input" --threads 1 --work "$work" >"$OUT/plan.json"
    shards=$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["shards"]))' "$OUT/plan.json")
    clean=$(cpu "'$BIN' clean '$input' --out \"\$O\" --threads 1 --quiet")
    keys=$(cpu "for ((r = 0; r < $shards; r++)); do '$BIN' keys --work '$work' --shard \$r; done")
    mkdir -p "$work/drops" # an empty drop list: what decide writes when no shard repeats another
    apply=$(cpu "for ((r = 0; r < $shards; r++)); do '$BIN' apply --work '$work' --shard \$r --out \"\$O\"; done")
    rows=$(for ((r = 0; r < shards; r++)); do "$BIN" keys --work "$work" --shard $r; done |
        python3 -c 'import json,sys; print(sum(json.loads(l)["rows"] for l in sys.stdin))')
    kb=$(du -cb "$work"/keys/*.parquet | tail -1 | cut -f1)
    db=$(du -cb "$work"/docs/*.parquet | tail -1 | cut -f1)
    read -r c cu cs <<<"$clean"
    read -r k ku ks <<<"$keys"
    read -r a au as <<<"$apply"
    awk -v n="$name" -v b="$bytes" -v s="$shards" -v c="$c" -v k="$k" -v r="$rows" -v kb="$kb" -v db="$db" 'BEGIN {
        printf "%-6s %6.1f MB, %d shards, %d rows: keys %.1f M rows/CPU s, keys %.2f B/row, docs %.2f B/row; keys %.0f%% of clean per CPU second\n",
            n, b / 1e6, s, r, r / 1e6 / k, kb / r, db / r, 100 * c / k }'
    printf '       CPU s (user + sys): clean %s = %s + %s | keys %s = %s + %s | apply %s = %s + %s\n' \
        "$c" "$cu" "$cs" "$k" "$ku" "$ks" "$a" "$au" "$as"
}

row jsonl "$DIR/big.jsonl"
row tree "$DIR/tree"
echo "load: $(uptime)"
