# Shared by the bench scripts (sourced, not run): the binary under test and the
# generated corpus, built once per size and seed in target/bench/<size>mb-s<seed>.

# Sets BIN to the newsdedup binary: $NEWSDEDUP when given; else, with PGO=1, the
# profile-guided build of benches/pgo.sh; else a fresh release build.
bench_binary() {
    if [[ -z "${NEWSDEDUP:-}" ]]; then
        if [[ ${PGO:-0} == 1 ]]; then
            benches/pgo.sh
            NEWSDEDUP=target/pgo/newsdedup
        else
            cargo build --release --quiet
            NEWSDEDUP=target/release/newsdedup
        fi
    fi
    BIN=$(realpath "$NEWSDEDUP")
}

# bench_corpus DIR MB SEED: generates the corpus into DIR unless a complete one is there.
bench_corpus() {
    if [[ ! -f $1/.complete ]]; then
        rm -rf "$1"
        python3 benches/gencorpus.py "$1" --mb "$2" --seed "$3"
        touch "$1/.complete"
    fi
}

# Wall times: the scripts read the clock themselves, in microseconds, as
# ${EPOCHREALTIME/[^0-9]/} (bash 5; the decimal separator removed, whatever the
# locale's; expanded in place, not in a $(...) subshell, whose fork and exit
# would be timed). GNU time's %e is in hundredths of a second, truncated: 2-4%
# of a run of 0.25-0.35 s, the size of the margins the JSONL and --index rows
# are read at.

# Fails with a message when GNU time is missing ($1: the script's name).
need_gnu_time() {
    TIME=/usr/bin/time
    [[ -x $TIME ]] || { echo "$1: needs GNU time at /usr/bin/time (apt-get install time)" >&2; exit 2; }
}
