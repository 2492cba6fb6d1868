//! The output never depends on the number of threads: trees, report (minus
//! timing) and explain file are byte-identical for `--threads 1` and `4`.

mod util;

use std::fs;
use std::path::Path;

use util::{TestDir, generate_corpus, read_report, snapshot};

fn run_with_threads(t: &TestDir, input: &Path, threads: &str) {
    let (out, report, explain) =
        (format!("out-{threads}"), format!("report-{threads}.json"), format!("explain-{threads}.jsonl"));
    let flags = ["--out", &out, "--threads", threads, "--report", &report, "--explain", &explain];
    let o = t.clean(input, &flags).expect(0);
    o.stderr_has(&format!("on {threads} threads"));
}

fn assert_thread_invariant(t: &TestDir, input: &Path) {
    run_with_threads(t, input, "1");
    run_with_threads(t, input, "4");
    let one = snapshot(&t.join("out-1"));
    assert!(!one.is_empty());
    assert_eq!(util::diff_trees(&one, &snapshot(&t.join("out-4"))), None);
    assert_eq!(read_report(&t.join("report-1.json")), read_report(&t.join("report-4.json")));
    let explain = fs::read(t.join("explain-1.jsonl")).unwrap();
    assert!(!explain.is_empty());
    assert_eq!(explain, fs::read(t.join("explain-4.jsonl")).unwrap());
}

#[test]
fn corpus_fixture_is_thread_invariant() {
    let t = TestDir::new();
    let input = t.copy_input("corpus-tree");
    assert_thread_invariant(&t, &input);
}

#[test]
fn generated_corpus_is_thread_invariant() {
    let t = TestDir::new();
    let input = t.join("input");
    generate_corpus(&input, 0x5eed, 400);
    assert_eq!(snapshot(&input).len(), 400, "file names collided");
    assert_thread_invariant(&t, &input);
    let report = read_report(&t.join("report-1.json"));
    let totals = &report["totals"];
    // The generator must produce every kind of repeat, or this test proves little.
    for field in ["documents_duplicate", "dropped_within_document", "dropped_across_documents", "short_spared"] {
        assert!(totals[field].as_u64().unwrap() > 0, "generated corpus has no {field}: {totals}");
    }
}

/// The most threads the run had alive at once, as the binary counts them
/// with `NEWSDEDUP_COUNT_THREADS=1` (`/proc/self/task`, sampled after every
/// thread it starts and after each step; see `newsdedup::threads`).
fn peak_threads(o: &util::Outcome) -> usize {
    let err = o.stderr_str();
    let line = err.lines().find_map(|l| l.strip_prefix("newsdedup: threads: at most ")).unwrap_or_else(|| {
        panic!("no thread count on stderr:\n{err}");
    });
    line.trim_end_matches(" alive").parse().expect("a number")
}

fn jsonl_input(dir: &Path) {
    fs::create_dir_all(dir).unwrap();
    let mut text = String::new();
    for i in 0..40 {
        let para = format!("Paragraph number {} of the wire, long enough to count as news on its own.", i % 7);
        text.push_str(&serde_json::json!({ "id": i, "text": format!("{para}\n\nA line unique to record {i} and nothing else at all.") }).to_string());
        text.push('\n');
    }
    fs::write(dir.join("a.jsonl"), text).unwrap();
}

/// `--threads 1` runs with one worker thread in every mode, the index
/// included: besides it only the main thread (waiting) and, for a path
/// input, the signal watcher `main` installs are alive.
#[cfg(target_os = "linux")]
#[test]
fn threads_1_starts_one_worker_in_every_mode() {
    let t = TestDir::new();
    let tree = t.copy_input("corpus-tree");
    let jsonl = t.join("shards");
    jsonl_input(&jsonl);
    let count = |flags: &[&str], input: &Path| {
        let o = t.clean(input, flags).env("NEWSDEDUP_COUNT_THREADS", "1").run();
        assert!(matches!(o.code, Some(0 | 1)), "{flags:?}: {}", o.stderr_str());
        peak_threads(&o)
    };
    // main + signal watcher + one worker
    let path_limit = 3;
    let modes: [&[&str]; 6] = [
        &["--threads", "1", "--out", "o1"],
        &["--threads", "1", "--dry-run"],
        &["--threads", "1", "--out", "o2", "--index", "ix", "--report", "r.json", "--explain", "e.jsonl"],
        &["--threads", "1", "--out", "o3", "--index", "ix"],
        &["--threads", "1", "--out", "o4", "--index", "ix", "--batch", "third"],
        &["--threads", "1", "--dry-run", "--index", "ix"],
    ];
    for flags in modes {
        assert!(count(flags, &tree) <= path_limit, "{flags:?}");
        assert!(count(flags, &jsonl) <= path_limit, "{flags:?} (JSONL)");
    }
    let ix = snapshot(&t.join("ix"));
    assert!(ix.keys().filter(|p| p.to_string_lossy().ends_with(".ndx")).count() >= 1, "the index was written");
    // In place, with an index and its commit-time merge.
    let copy = t.join("in-place");
    util::copy_tree(&tree, &copy);
    let flags = ["--threads", "1", "--in-place", "--index", "ix"];
    assert!(count(&flags, &copy) <= path_limit);
    // Standard input: no signal watcher.
    for input in [
        fs::read(tree.join("a.txt")).unwrap_or_else(|_| b"One line of text, long enough to be news.\n".to_vec()),
        fs::read(jsonl.join("a.jsonl")).unwrap(),
    ] {
        let o = t.clean(Path::new("-"), &["--threads", "1"]).env("NEWSDEDUP_COUNT_THREADS", "1").stdin(input).expect(0);
        assert!(peak_threads(&o) <= 2, "stdin: {}", o.stderr_str());
    }
    // The count sees the workers: four threads are four more.
    let o = t.clean(&tree, &["--threads", "4", "--out", "o5"]).env("NEWSDEDUP_COUNT_THREADS", "1").expect(0);
    assert!(peak_threads(&o) >= 5, "{}", o.stderr_str());
    // With an index and two threads, the merge is a job on the pool of two.
    let o = t
        .clean(&tree, &["--threads", "2", "--out", "o6", "--index", "ix", "--batch", "b6"])
        .env("NEWSDEDUP_COUNT_THREADS", "1")
        .expect(0);
    assert!(peak_threads(&o) <= 4, "{}", o.stderr_str());
}
