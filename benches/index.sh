#!/usr/bin/env bash
# What consulting a persistent index costs a run:
#
#   benches/index.sh [INDEX_MILLIONS] [NEW_PARAGRAPHS]     (defaults 10 and 1000000)
#
# Builds (once) an index of INDEX_MILLIONS million keys with `examples/index_bench.rs --fill DIR M --settle`
# (committed one million at a time, then the tiering merge that is due done, so that the index has no merge
# pending: 10M keys are segments [8M, 2M]; the filter the last commit replaced is its filter.spare, as in an
# index committed to daily) and a JSONL file of NEW_PARAGRAPHS distinct new paragraphs (10 per
# record, WORDS words each: default 60, about 390 bytes, the average paragraph of the BBC corpus). Then, warm
# cache:
#
# (a) a typical daily run, REPS times (median), A and B alternating:
#   A  newsdedup clean new.jsonl --out ...                     (no index)
#   B  newsdedup clean new.jsonl --out ... --index COPY        (lookups + commit of the new keys)
#   Each round: a fresh COPY of the settled index (not timed), one untimed run of A, then A and B, in an order
#   that alternates round by round (with an odd REPS, A runs first once more than B). No merge is due in COPY,
#   so B pays the open (checksums), the lookups and the commit only.
# (b) the steady state: DAYS (default 8) consecutive daily runs on ONE copy of the index, day d's input being
#   new.jsonl with every paragraph prefixed "dD-" (new keys every day; made before the day, not timed), each
#   timed without (A) and with (B) the index. The index grows by ~1.1M keys a day (the paragraphs plus one
#   whole-document key per record) and merges as the tiering rule says (from [8M, 2M]: merges of 3.1M, 13.3M,
#   2.2M and 3.3M keys over 8 days), each merge in the background of the run on which it is due. The sums give
#   the overhead amortized over merges.
#
# Wall time (and CPU time, user + system, from GNU time: on a shared machine it varies less) of each. The
# summary lines "without index", "with --index", "steady state without index" and "steady state with --index"
# are parsed by benches/bench.sh. NEWSDEDUP_BIN: the binary to time (default: cargo build --release).
# BENCH_DIR: where the settled index and the JSONL are kept (default target/bench/index-Mm-N-wWORDS).
# To compare with a build from before index format 4 (the index-wide filter), time the old binary on a
# BENCH_DIR whose settled index that build's `index_bench --fill` made (format 3; a format-4 index is refused by
# it), and the new one on a copy of that folder upgraded by this build's `index_bench --fill DIR/settled 0
# --settle` (a commit of no keys writes the filter), as in benches/INDEX.md, fifth pass. Without the upgrade the
# new binary would build the filter at every timed commit (from all 10M keys) and look up without it.
set -euo pipefail
cd "$(dirname "$0")/.."
source benches/common.sh
need_gnu_time index.sh
M=${1:-10}
N=${2:-1000000}
WORDS=${WORDS:-60}
REPS=${REPS:-3}
DAYS=${DAYS:-8}
DIR=${BENCH_DIR:-target/bench/index-${M}m-${N}-w${WORDS}}
cargo build --release --quiet --example index_bench
if [[ -n ${NEWSDEDUP_BIN:-} ]]; then
    BIN=$(realpath "$NEWSDEDUP_BIN")
else
    cargo build --release --quiet
    BIN=$(realpath target/release/newsdedup)
fi
mkdir -p "$DIR"
# A settled index made by a build from before the filter's spare (it has none) is made again.
if [[ ! -f $DIR/settled.complete || ! -f $DIR/settled/filter.spare ]]; then
    rm -rf "$DIR/settled"
    target/release/examples/index_bench --fill "$DIR/settled" "$M" --settle >/dev/null
    touch "$DIR/settled.complete"
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
# timed INPUT [INDEX]: "WALL CPU" seconds of one run, wall to the millisecond (benches/common.sh), CPU = user + system
# (GNU time, hundredths); output removed before and after
timed() {
    rm -rf "$DIR/out"
    local extra=() t0 t1
    if [[ -n ${2:-} ]]; then extra=(--index "$2"); fi
    sync
    t0=${EPOCHREALTIME/[^0-9]/}
    "$TIME" -o "$DIR/time" -f '%U %S' "$BIN" clean "$1" --out "$DIR/out" -q "${extra[@]}"
    t1=${EPOCHREALTIME/[^0-9]/}
    rm -rf "$DIR/out"
    awk -v a="$t0" -v b="$t1" '{printf "%.3f %.2f\n", (b - a) / 1e6, $1 + $2}' "$DIR/time"
}
segments() { "$BIN" index stats "$1" | sed -n 's/^segments: .*oldest first: \(.*\))$/\1/p'; }

# (a) a typical daily run
# A run that follows the deletion and copy of ~300 MB right away is slower
# whatever it does (once in two or three runs the kernel takes 0.1-0.2 s more
# system time; measured on the run without index: 0.47-0.70 s against
# 0.46-0.48 s), and the copy once made only before B counted that against the
# index. So each round makes the copy, then one untimed run without index,
# then A and B, in an order that alternates round by round.
A=() B=()
for ((i = 0; i < REPS; i++)); do
    rm -rf "$DIR/ix"
    cp -r "$DIR/settled" "$DIR/ix"
    timed "$DIR/new.jsonl" >/dev/null
    if ((i % 2 == 0)); then
        A+=("$(timed "$DIR/new.jsonl")")
        B+=("$(timed "$DIR/new.jsonl" "$DIR/ix")")
    else
        B+=("$(timed "$DIR/new.jsonl" "$DIR/ix")")
        A+=("$(timed "$DIR/new.jsonl")")
    fi
done
TA=$(printf '%s\n' "${A[@]}" | cut -d' ' -f1 | median)
TB=$(printf '%s\n' "${B[@]}" | cut -d' ' -f1 | median)
CA=$(printf '%s\n' "${A[@]}" | cut -d' ' -f2 | median)
CB=$(printf '%s\n' "${B[@]}" | cut -d' ' -f2 | median)
printf 'index: %s million keys, segments %s (no merge due); run: %s new paragraphs (%s MB JSONL)\n' \
    "$M" "$(segments "$DIR/settled")" "$N" "$(($(stat -c %s "$DIR/new.jsonl") / 1000000))"
printf '(a) a typical daily run, median of %s:\n' "$REPS"
printf '%-28s %8.3f s\n' "without index" "$TA" "with --index (lookup+commit)" "$TB"
printf '%-28s %8.2fx\n' "ratio" "$(awk "BEGIN {print $TB / $TA}")"
printf 'CPU (user+sys), median: %.3f s -> %.3f s = %.2fx\n' "$CA" "$CB" "$(awk "BEGIN {print $CB / $CA}")"

# (b) the steady state
rm -rf "$DIR/ix"
cp -r "$DIR/settled" "$DIR/ix"
SA=0 SB=0 SCA=0 SCB=0
printf '(b) steady state, %s consecutive days of %s new paragraphs on one index:\n' "$DAYS" "$N"
for ((d = 1; d <= DAYS; d++)); do
    sed -e "s/\"text\": \"/&d$d-/" -e "s/\\\\n/&d$d-/g" "$DIR/new.jsonl" >"$DIR/day.jsonl"
    before=$(segments "$DIR/ix")
    read -r a ca < <(timed "$DIR/day.jsonl")
    read -r b cb < <(timed "$DIR/day.jsonl" "$DIR/ix")
    read -r SA SB SCA SCB < <(awk "BEGIN {print $SA + $a, $SB + $b, $SCA + $ca, $SCB + $cb}")
    printf '  day %d: %6.3f s -> %6.3f s (CPU %6.3f -> %6.3f)  segments %s -> %s\n' "$d" "$a" "$b" "$ca" "$cb" "$before" "$(segments "$DIR/ix")"
done
printf '%-36s %8.3f s\n' "steady state without index" "$SA" "steady state with --index (amortized)" "$SB"
printf '%-36s %8.2fx\n' "steady state ratio" "$(awk "BEGIN {print $SB / $SA}")"
printf 'steady state CPU (user+sys): %.3f s -> %.3f s = %.2fx\n' "$SCA" "$SCB" "$(awk "BEGIN {print $SCB / $SCA}")"
rm -rf "$DIR/out" "$DIR/ix" "$DIR/day.jsonl" "$DIR/time"
