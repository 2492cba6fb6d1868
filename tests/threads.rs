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
