#!/usr/bin/env bash
# End-to-end benchmark: newsdedup against the tools it should be compared with.
#
#   benches/bench.sh [SIZE_MB]          (default 200)
#
# Environment: SEED (corpus seed, default 1), REPS (timed runs per row, default
# 3; the median is reported), JSONL_REPS (timed rounds of the JSONL rows, default
# 9: a round takes seconds, and on the shared machine the same binary's -j2 run
# took 0.61-0.94 s within ten rounds, benches/JSONL.md fifteenth pass), INDEX (1, default: also run benches/index.sh at 15
# and 60 words per paragraph and print the overhead of --index; 0: skip),
# INDEX_M and INDEX_N (its index size in millions of keys and new paragraphs,
# default 10 and 1000000), INDEX_REPS (its typical-day rounds, default 7: a
# round takes seconds, and the same binary's median of 3 moved from +4% to +59%
# between two runs of this script, benches/INDEX.md ninth pass), BENCH_DIR
# (corpus and outputs, default target/bench/<size>mb-s<seed>; outputs go to the
# same filesystem as the corpus), NEWSDEDUP (binary to test; default: cargo build --release,
# or with PGO=1 the profile-guided build of benches/pgo.sh), EVICT (1, default:
# each tree row's output is dropped from the page cache after its run, see
# evict; 0: kept there).
#
# The corpus (benches/gencorpus.py) is generated once per size and seed and
# reused. Every row runs warm-cache: one untimed run first, then REPS timed
# runs. The rows compared in a ratio (cp -r and the tree runs; openssl and
# the JSONL runs) take turns, round by round, rather than running one after
# the other, so a drift of the load or of the disk weighs on both sides. The
# -j2 and -j1 runs do the same job, report included (a speed-up compares one
# job on two pools; the tree's report is 87 MB of JSON at 400 MB).
# Needs python3, bash 5 (EPOCHREALTIME), GNU time (/usr/bin/time; Debian package `time`) and flock (util-linux).
#
# The tree rows' outputs are not deleted between runs (the JSONL rows', one
# file each, are; see there), only dropped from the page cache (evict, below):
# each run writes to a fresh path ($O), and all are removed at the end (several GB for 400 MB: with
# BENCH_KEEP=0 each output is deleted, untimed, right after its run, for a
# disk without that much room; see below for what that does to the timings). On ext4 without a journal, creating
# files right after deleting many is slow for every tool (the inode allocator
# skips recently deleted inodes, fs/ext4/ialloc.c recently_deleted()), which
# would make the timings depend on what the previous run deleted: on the
# bench machine (fifty-fourth session), copying 23,000 files took 4.1 s right
# after 1.1 million files were deleted, 1.3-1.6 s two to four minutes later
# and 0.44 s from the sixth minute on. So the script times the creation of
# 5,000 empty files just before the tree rows and just after them (kept,
# removed with the outputs) and prints both: a figure several times the
# other, or the usual, means the tree rows were timed in that state. And it
# waits (SETTLE=0: not) until six minutes after its last run on the same
# corpus deleted its outputs (its last step) before its first row, and before
# the tree rows while the probe reads over three times the lowest it has read
# there, plus 10 us (settle_clock, settle_probe).
set -euo pipefail
cd "$(dirname "$0")/.."
. benches/common.sh

MB=${1:-200}
SEED=${SEED:-1}
REPS=${REPS:-3}
JSONL_REPS=${JSONL_REPS:-9}
DIR=${BENCH_DIR:-target/bench/${MB}mb-s${SEED}}
bench_binary
# The bare pipeline the JSONL rows are timed beside (examples/jsonl_bare.rs:
# no normalisation, lines hashed as they are), the yardstick the host's load
# moves as it moves newsdedup; built before the corpus is read into the cache.
cargo build --release --quiet --example jsonl_bare
BARE=$(realpath target/release/examples/jsonl_bare)
need_gnu_time bench.sh

# One run per corpus at a time, the corpus's generation and the exit trap's
# deletion included (six to nine minutes on the sixtieth session's disk): a
# run begun beside another would time both against each other and its rows
# against that deletion. The lock (a file beside the corpus, which survives a
# regeneration, also when BENCH_DIR ends in a slash) is held until the
# script exits.
command -v flock >/dev/null || { echo "bench.sh: needs flock (util-linux)" >&2; exit 2; }
LOCK=${DIR%/}.lock
mkdir -p "$(dirname "$LOCK")"
exec 9>"$LOCK"
flock -n 9 || { echo "bench.sh: another bench.sh run holds $LOCK; start this one once it has exited" >&2; exit 1; }
bench_corpus "$DIR" "$MB" "$SEED"
TREE=$DIR/tree ALL=$DIR/all.txt JSONL=$DIR/big.jsonl OUT=$DIR/out-$$
# remove_outputs -- the exit trap: deletes the outputs and, if there were any,
# notes the time, so that the next run waits until ext4 no longer skips the
# inodes this deletion freed (settle_clock).
remove_outputs() {
    local any
    any=$(find "$OUT" -mindepth 1 -print -quit 2>/dev/null || true)
    rm -rf "$OUT"
    [[ -z $any ]] || date +%s >"$DIR/.outputs-deleted"
}
trap remove_outputs EXIT
# settle_clock -- with SETTLE=1 (default), waits until 370 s after the last
# run of this script on $DIR deleted its outputs (its exit trap notes the
# time): ext4 without a journal skips, when it allocates, an inode freed less
# than 60 s ago, or less than 360 s ago while the inode's table block has not
# been written back (fs/ext4/ialloc.c: recently_deleted(), RECENTCY_MIN +
# RECENTCY_DIRTY), and a run of this script frees millions. The JSONL rows
# wait too, as a precaution (fifty-ninth session: 1.97-2.34x openssl begun one
# to three minutes after such a deletion, 1.98-2.04x after a pause, and 2.18x
# and 2.30x in the two runs that waited). The corpus is read into the cache
# after the wait.
settle_clock() {
    local stamp=$DIR/.outputs-deleted left
    [[ ${SETTLE:-1} == 1 && -f $stamp ]] || return 0
    left=$(($(<"$stamp") + 370 - EPOCHSECONDS))
    ((left > 0)) || return 0
    echo "  waiting $left s: the last run on $DIR deleted its outputs at $(date -u -d "@$(<"$stamp")" +%H:%M:%S) UTC" >&2
    sleep "$left"
}
settle_clock
mkdir -p "$OUT"
TREE_BYTES=$(stat -c %s "$ALL")
JSONL_BYTES=$(stat -c %s "$JSONL")
FILES=$(find "$TREE" -type f | wc -l)
find "$TREE" -type f -print0 | xargs -0 cat >/dev/null
cat "$ALL" "$JSONL" >/dev/null

declare -A SECS RSS
ROWS=()

# run_once CMD -- one timed run of CMD writing to a fresh "$O"; sets T (wall seconds, to the
# millisecond: see benches/common.sh), M (peak RSS, KB, GNU time).
RUN=0
run_once() {
    RUN=$((RUN + 1))
    sync
    local t0 t1
    t0=${EPOCHREALTIME/[^0-9]/}
    O=$OUT/$RUN $TIME -f "%M" -o "$DIR/time.txt" bash -c "$1" || { echo "bench.sh: failed: $1" >&2; return 1; }
    t1=${EPOCHREALTIME/[^0-9]/}
    T=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", (b - a) / 1e6 }')
    read -r M <"$DIR/time.txt"
    [[ ${BENCH_KEEP:-1} == 0 || ${DROP_OUTPUT:-0} == 1 ]] && rm -rf "$OUT/$RUN"
    [[ ${EVICT_OUTPUT:-0} == 1 && ${EVICT:-1} == 1 && -d $OUT/$RUN ]] && evict "$OUT/$RUN"
    return 0
}

# evict DIR -- untimed, after a tree row's run: writes DIR's files back (sync)
# and drops their pages from the page cache (POSIX_FADV_DONTNEED), keeping the
# files (a deletion would slow the next runs' file creation, see above). Each
# tree run leaves ~730 MB of page cache behind, a page a file; kept (EVICT=0,
# the script's way up to run (157)), twelve runs pile up some 9 GB, and the
# later rounds take memory the host must back again page by page, every row
# alike, while the first rounds reuse what the JSONL rows freed (sixty-third
# session: cp -r 2.65 / 2.87 / 5.50 s in the three rounds of run (157); by hand
# with eviction, four rounds of 2.60-2.89 s). Evicted, every round starts from
# the memory state of the one before. The inodes stay cached either way.
evict() {
    sync
    python3 - "$1" <<'PY'
import os, sys
for folder, _, files in os.walk(sys.argv[1]):
    for name in files:
        try:  # a symlink or a file gone: nothing of it to drop
            fd = os.open(os.path.join(folder, name), os.O_RDONLY | os.O_NOFOLLOW)
        except OSError:
            continue
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)
PY
}

# record NAME BYTES TIMES... -- the median seconds and the row.
record() {
    local name=$1 bytes=$2
    shift 2
    SECS[$name]=$(printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
    ROWS+=("$name|$bytes")
    printf '  %-34s %8.3f s  (runs: %s)\n' "$name" "${SECS[$name]}" "$*" >&2
}

# measure NAME INPUT_BYTES 'shell command'  -- median seconds, max peak RSS (KB).
# The command writes its output to "$O", a fresh path for every run.
measure() {
    local name=$1 bytes=$2 cmd=$3 times=() peak=0
    for ((i = 0; i <= REPS; i++)); do
        run_once "$cmd"
        ((i == 0)) && continue # warm-up
        times+=("$T")
        ((M > peak)) && peak=$M
    done
    RSS[$name]=$peak
    record "$name" "$bytes" "${times[@]}"
}

# measure_rounds NAME BYTES CMD [NAME BYTES CMD]... -- as `measure` for each
# row, but the rows take turns (a warm-up round, then REPS rounds), so that a
# drift of the machine or of the disk (the file system slows down as the runs
# before have created and deleted files) weighs on every row alike.
measure_rounds() {
    local args=("$@") n=$(($# / 3)) r k
    local -A times=() peak=()
    for ((r = 0; r <= REPS; r++)); do
        for ((k = 0; k < n; k++)); do
            run_once "${args[3 * k + 2]}"
            ((r == 0)) && continue
            times[$k]+="$T "
            ((M > ${peak[$k]:-0})) && peak[$k]=$M
        done
    done
    for ((k = 0; k < n; k++)); do
        RSS[${args[3 * k]}]=${peak[$k]}
        # shellcheck disable=SC2086 # the times are one word each
        record "${args[3 * k]}" "${args[3 * k + 1]}" ${times[$k]}
    done
}

# cpu_ticks -- the machine's stolen and total CPU ticks so far (/proc/stat).
# On a shared VM the host may take a vCPU away ("steal"): a run during which
# it does is slower in wall time at -j2 without using more CPU (twenty-third
# session: 33% steal in `top`, every -j2 JSONL run 2-3x its usual time, -j1
# barely slower), so the script reports the share it saw.
cpu_ticks() { awk '/^cpu / { print $9, $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9 }' /proc/stat; }
steal_since() { awk -v a="$1" -v b="$(cpu_ticks)" 'BEGIN { split(a, x, " "); split(b, y, " ");
    printf "%.1f%%", (y[2] > x[2] ? (y[1] - x[1]) * 100 / (y[2] - x[2]) : 0) }'; }
TICKS_START=$(cpu_ticks)
echo "corpus: $DIR: $FILES files, $TREE_BYTES bytes; JSONL $JSONL_BYTES bytes" >&2
# The JSONL rows come first and their outputs (one file each) are deleted
# after each run, untimed: a run's system time grows with the pressure on the
# page cache (after the tree rows' kept outputs it was 0.5-0.6 s instead of
# 0.1-0.2 s, README), and deleting one file does not touch the inode
# allocator's slow path the tree rows must avoid (see above).
JSONL_OK=0
DROP_OUTPUT=1
if "$BIN" clean --help 2>&1 | grep -q -- '--format'; then
    JSONL_OK=1
    REPS=$JSONL_REPS measure_rounds "openssl dgst -sha256 (jsonl)" "$JSONL_BYTES" "openssl dgst -sha256 '$JSONL' > /dev/null" \
        "bare pipeline jsonl->jsonl -j2" "$JSONL_BYTES" "'$BARE' '$JSONL' 2 > \"\$O\"" \
        "newsdedup jsonl->jsonl -j2" "$JSONL_BYTES" "'$BIN' clean --format jsonl '$JSONL' -q -j2 --report '$DIR/report-jsonl.json' > \"\$O\"" \
        "newsdedup jsonl->jsonl -j1" "$JSONL_BYTES" "'$BIN' clean --format jsonl '$JSONL' -q -j1 --report '$DIR/report-jsonl-j1.json' > \"\$O\""
    # Half the records: in JSONL mode the report has one row per shard, so the
    # difference in peak RSS is what the extra distinct paragraphs cost.
    HALF_JSONL=$DIR/half.jsonl
    [[ -f $HALF_JSONL ]] || head -n "$(($(wc -l <"$JSONL") / 2))" "$JSONL" >"$HALF_JSONL"
    measure "newsdedup jsonl, half the records" 0 "'$BIN' clean --format jsonl '$HALF_JSONL' -q -j2 --report '$DIR/report-jsonl-half.json' > \"\$O\""
else
    measure "openssl dgst -sha256 (jsonl)" "$JSONL_BYTES" "openssl dgst -sha256 '$JSONL' > /dev/null"
    echo "  (skipping JSONL rows: this newsdedup has no --format flag)" >&2
fi
DROP_OUTPUT=0
# probe_creation NAME [FOLDER] -- sets PROBE[NAME]: microseconds per file to
# create 5,000 empty files in a fresh folder of $OUT (see the top of this script).
declare -A PROBE
probe_creation() {
    mkdir "$OUT/probe-${2:-$1}"
    sync
    local t0 t1
    t0=${EPOCHREALTIME/[^0-9]/}
    (cd "$OUT/probe-${2:-$1}" && seq 5000 | xargs touch)
    t1=${EPOCHREALTIME/[^0-9]/}
    PROBE[$1]=$(((t1 - t0) / 5000))
    echo "  file creation probe ($1 the tree rows): ${PROBE[$1]} us per file" >&2
}
# settle_probe -- the probe before the tree rows; with SETTLE=1 (default),
# while it reads more than three times the lowest figure it has read on $DIR
# ($DIR/.probe-floor) plus 10 us (so that a floor of a few microseconds, as
# on a tmpfs, does not turn noise into a wait), probes again every 30 s, ten
# minutes at most: the wait at the start (settle_clock) does not always
# suffice (fifty-ninth session: 98 us per file 370 s after one run's
# deletion, 11 us 331 s after another's), and a deletion by another program
# is not known there.
settle_probe() {
    local floor=$DIR/.probe-floor low waited=0
    probe_creation before
    [[ ${SETTLE:-1} == 1 ]] || return 0
    low=$(cat "$floor" 2>/dev/null || echo "${PROBE[before]}")
    while ((PROBE[before] > 3 * low + 10 && waited < 600)); do
        echo "  waiting 30 s: more than three times the lowest probe on $DIR ($low us per file) plus 10" >&2
        sleep 30
        waited=$((waited + 30))
        probe_creation before "before-$waited"
    done
    ((PROBE[before] < low)) && low=${PROBE[before]}
    echo "$low" >"$floor"
}
settle_probe
EVICT_OUTPUT=1
measure_rounds "cp -r (tree)" "$TREE_BYTES" "cp -r '$TREE' \"\$O\"" \
    "newsdedup tree->tree -j2" "$TREE_BYTES" "'$BIN' clean '$TREE' --out \"\$O\" -q -j2 --report '$DIR/report.json'" \
    "newsdedup tree->tree -j1" "$TREE_BYTES" "'$BIN' clean '$TREE' --out \"\$O\" -q -j1 --report '$DIR/report-j1.json'"
probe_creation after
EVICT_OUTPUT=0
measure "awk '!seen[\$0]++' (all.txt)" "$TREE_BYTES" "awk '!seen[\$0]++' '$ALL' > \"\$O\""
# Half the outlets: the difference to the full run is what the seen-set costs.
HALF_GLOBS=$(find "$TREE" -mindepth 1 -maxdepth 1 -type d -printf '%f\n' | sort | head -4 | sed "s|.*|--glob '&/**'|" | tr '\n' ' ')
measure "newsdedup tree->tree, half corpus" 0 "'$BIN' clean '$TREE' --out \"\$O\" -q -j2 $HALF_GLOBS --report '$DIR/report-half.json'"

STEAL_ROWS=$(steal_since "$TICKS_START")
keys() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["distinct_keys"])' "$1"; }
KEYS=$(keys "$DIR/report.json")
KEYS_HALF=$(keys "$DIR/report-half.json")

ratio() { awk -v a="${SECS[$1]}" -v b="${SECS[$2]}" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }'; }

echo
echo "machine: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores, Linux $(uname -r), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "corpus:  $FILES files, $((TREE_BYTES / 1000000)) MB tree; $((JSONL_BYTES / 1000000)) MB JSONL; seed $SEED; median of $REPS warm runs ($JSONL_REPS for the JSONL rows)"
echo "binary:  $BIN"
echo
printf '| %-34s | %8s | %8s | %13s |\n' "run" "seconds" "MB/s" "peak RSS (MB)"
printf '|%s|%s|%s|%s|\n' "------------------------------------" "----------" "----------" "---------------"
for row in "${ROWS[@]}"; do
    name=${row%|*} bytes=${row#*|}
    [[ $bytes == 0 ]] && continue
    awk -v n="$name" -v s="${SECS[$name]}" -v b="$bytes" -v r="${RSS[$name]}" \
        'BEGIN { printf "| %-34s | %8.2f | %8.1f | %13.1f |\n", n, s, (s > 0 ? b / 1e6 / s : 0), r / 1024 }'
done
echo
echo "ratios (time; lower is better for newsdedup):"
echo "  tree->tree -j2 / cp -r:             $(ratio 'newsdedup tree->tree -j2' 'cp -r (tree)')   (target <= 1.00)"
echo "  tree->tree -j2 / awk dedup:         $(ratio 'newsdedup tree->tree -j2' "awk '!seen[\$0]++' (all.txt)")"
echo "  tree->tree speed-up -j1 -> -j2:     $(ratio 'newsdedup tree->tree -j1' 'newsdedup tree->tree -j2')x   (target >= 1.80)"
echo "  (file creation on the tree's file system: ${PROBE[before]} us per file before the tree rows, ${PROBE[after]} after)"
if ((JSONL_OK)); then
    echo "  jsonl -j2 / openssl dgst -sha256:   $(ratio 'newsdedup jsonl->jsonl -j2' 'openssl dgst -sha256 (jsonl)')   (target <= 2.00, stretch <= 1.20)"
    echo "  jsonl speed-up -j1 -> -j2:          $(ratio 'newsdedup jsonl->jsonl -j1' 'newsdedup jsonl->jsonl -j2')x   (target >= 1.80)"
    echo "  bare pipeline -j2 / openssl:        $(ratio 'bare pipeline jsonl->jsonl -j2' 'openssl dgst -sha256 (jsonl)')   (no normalisation: the yardstick)"
    echo "  jsonl -j2 / bare pipeline -j2:      $(ratio 'newsdedup jsonl->jsonl -j2' 'bare pipeline jsonl->jsonl -j2')"
    awk -v r="${RSS['newsdedup jsonl->jsonl -j2']}" 'BEGIN { printf "  jsonl -j2 peak RSS:                 %.1f MiB   (target <= 256)\n", r / 1024 }'
fi
if ((JSONL_OK)); then
    awk -v r="${RSS['newsdedup jsonl->jsonl -j2']}" -v rh="${RSS['newsdedup jsonl, half the records']}" \
        -v k="$(keys "$DIR/report-jsonl.json")" -v kh="$(keys "$DIR/report-jsonl-half.json")" 'BEGIN {
        printf "memory (jsonl): %d distinct paragraphs, peak RSS %.1f MB; half the records: %d, %.1f MB\n", k, r / 1024, kh, rh / 1024
        printf "        marginal %.0f bytes per extra distinct paragraph (target <= 64)\n", (k > kh ? (r - rh) * 1024 / (k - kh) : 0)
    }'
fi
awk -v r="${RSS['newsdedup tree->tree -j2']}" -v rh="${RSS['newsdedup tree->tree, half corpus']}" -v k="$KEYS" -v kh="$KEYS_HALF" 'BEGIN {
    printf "memory: %d distinct paragraphs, peak RSS %.1f MB = %.0f bytes per distinct paragraph (all of RSS)\n", k, r / 1024, r * 1024 / k
    printf "        half corpus: %d distinct, %.1f MB; marginal %.0f bytes per extra distinct paragraph (target <= 64)\n", kh, rh / 1024, (k > kh ? (r - rh) * 1024 / (k - kh) : 0)
}'

if [[ ${INDEX:-1} == 1 ]]; then
    for words in 15 60; do
        IX=$(WORDS=$words REPS=${INDEX_REPS:-7} NEWSDEDUP_BIN=$BIN BENCH_DIR= benches/index.sh "${INDEX_M:-10}" "${INDEX_N:-1000000}")
        printf '%s\n' "$IX" >&2
        awk -v w="$words" '/^without index/ {a=$(NF-1)} /^with --index/ {b=$(NF-1)}
            /^steady state without index/ {sa=$(NF-1)} /^steady state with --index/ {sb=$(NF-1)} END {
            printf "index overhead at %d words per paragraph: %.3f s -> %.3f s = %+.0f%%   (target <= +20%%)\n", w, a, b, (b / a - 1) * 100
            printf "  steady state (daily runs, merges amortized): %.3f s -> %.3f s = %+.0f%%\n", sa, sb, (sb / sa - 1) * 100 }' <<<"$IX"
    done
fi
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg) ($(nproc) cores)"
echo "host steal: $STEAL_ROWS of the CPU time during the timed rows, $(steal_since "$TICKS_START") over the whole run (above a few percent, the -j2 rows are not comparable)"
