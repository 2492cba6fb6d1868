//! Issue 13, the last item: a retry over files an `--in-place --index` run
//! already cleaned (or removed) writes the explain file and report of the
//! first run — original paragraph indexes and line numbers, the real first
//! occurrences and duplicates — not a description of the cleaned text.
//!
//! Each test runs a batch in place to the end, then puts back the original
//! of some files, as a run killed between replacing them would have left
//! them, and reruns the batch: every output must equal the first run's.
//! The property over random kills is `tests/retry_property.rs`.

mod util;

use std::fs;
use std::path::{Path, PathBuf};

use util::{TestDir, diff_trees, read_report, snapshot};

const ALPHA: &str = "Alpha: the city council approved the new harbour budget on Monday morning.";
const XRAY: &str = "Xray: the ferry union called off its strike after long overnight talks.";
const YANKEE: &str = "Yankee: heavy storms are expected along the coast by late Friday night.";
const OSCAR: &str = "Oscar: the high court adjourned the rail case until late March next year.";
const NEW: &str = "November: a paragraph found only in this one file, long enough to count.";

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn record(id: u32, paras: &[&str]) -> String {
    format!("{}\n", serde_json::json!({"id": id, "text": paras.join("\n")}))
}

/// Every output of one in-place run of `news` (explain file, report, tree).
struct Outputs {
    explain: String,
    report: serde_json::Value,
    tree: std::collections::BTreeMap<PathBuf, Vec<u8>>,
}

fn run(t: &TestDir, name: &str) -> Outputs {
    let (explain, report) = (t.join(&format!("{name}.explain")), t.join(&format!("{name}.json")));
    let index = t.join("index");
    let args = ["--in-place", "--index", s(&index), "--explain", s(&explain), "--report", s(&report), "-q"];
    t.clean(&t.join("news"), &args).expect(0);
    Outputs {
        explain: fs::read_to_string(explain).unwrap(),
        report: read_report(&report),
        tree: snapshot(&t.join("news")),
    }
}

fn assert_same(first: &Outputs, retry: &Outputs) {
    if let Some(d) = diff_trees(&first.tree, &retry.tree) {
        panic!("trees differ:\n{d}");
    }
    assert_eq!(first.explain, retry.explain, "explain files differ");
    assert_eq!(first.report, retry.report, "reports differ");
}

/// The explain line about `file`'s paragraph `para`.
fn explained<'a>(lines: &'a [serde_json::Value], file: &str, para: u64) -> &'a serde_json::Value {
    let found = lines.iter().find(|l| l["file"] == file && l["paragraph"] == para);
    found.unwrap_or_else(|| panic!("no explain line for {file} paragraph {para}: {lines:?}"))
}

fn lines(explain: &str) -> Vec<serde_json::Value> {
    explain.lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

/// A first occurrence in a shard cleaned in place is named by its original
/// line: b.jsonl repeats record 3 of a.jsonl, which is line 2 once record 2
/// is gone.
fn shard_case(name: &str, wrap: fn(&[u8]) -> Vec<u8>) {
    let t = TestDir::new();
    let a = [record(1, &[ALPHA, XRAY]), record(2, &[XRAY]), record(3, &[YANKEE])].concat();
    let b = record(9, &[OSCAR, YANKEE]);
    let (a_name, b_name) = (format!("news/a.{name}"), format!("news/b.{name}"));
    t.write(&a_name, wrap(a.as_bytes()));
    let b_path = t.write(&b_name, wrap(b.as_bytes()));
    let first = run(&t, "first");
    let explain = lines(&first.explain);
    let b_line = explained(&explain, &format!("b.{name}"), 1);
    assert_eq!((b_line["first_line"].as_u64(), b_line["first_id"].as_str()), (Some(3), Some("3")), "{b_line}");
    // As if the run had been killed after replacing a but before b.
    fs::write(&b_path, wrap(b.as_bytes())).unwrap();
    let retry = run(&t, "retry");
    assert_same(&first, &retry);
    // And once more over the fully cleaned shards.
    assert_same(&first, &run(&t, "again"));
}

#[test]
fn a_retry_names_first_occurrences_in_a_cleaned_shard_by_their_original_line() {
    shard_case("jsonl", |b| b.to_vec());
}

#[test]
fn a_retry_over_cleaned_gzip_shards_reports_what_the_first_run_did() {
    shard_case("jsonl.gz", util::gz);
}

/// Text files: a cleaned file's first occurrences keep their original
/// paragraph index, an untouched copy of its original is still its
/// duplicate, and a file removed in place is reported (and named as the
/// original of its own copy) as the first run did.
#[test]
fn a_retry_over_cleaned_and_removed_text_files_reports_what_the_first_run_did() {
    let t = TestDir::new();
    let originals = [
        ("news/0.txt", format!("{OSCAR}\n")),
        // Oscar is dropped: Xray moves from paragraph 2 to 1.
        ("news/a.txt", format!("{OSCAR}\n{ALPHA}\n{XRAY}\n")),
        ("news/c.txt", format!("{XRAY}\n{NEW}\n")),
        // A copy of a.txt as it was: a duplicate of a.txt.
        ("news/d.txt", format!("{OSCAR}\n{ALPHA}\n{XRAY}\n")),
        // Nothing of its own: removed; f.txt is its duplicate.
        ("news/e.txt", format!("{ALPHA}\n{OSCAR}\n")),
        ("news/f.txt", format!("{ALPHA}\n{OSCAR}\n")),
    ];
    for (rel, text) in &originals {
        t.write(rel, text);
    }
    let first = run(&t, "first");
    assert!(!first.tree.contains_key(Path::new("e.txt")), "e.txt is removed");
    let explain = lines(&first.explain);
    assert_eq!(explained(&explain, "c.txt", 0)["first_paragraph"], 2);
    let files = first.report["files"].as_array().unwrap();
    let row = |p: &str| files.iter().find(|r| r["path"] == p).unwrap().clone();
    assert_eq!(row("d.txt")["duplicate_of"], "a.txt");
    assert_eq!(row("f.txt")["duplicate_of"], "e.txt");
    // As if the run had been killed after replacing a.txt and removing e.txt.
    for (rel, text) in &originals {
        if !rel.ends_with("a.txt") && !rel.ends_with("e.txt") {
            t.write(rel, text);
        }
    }
    assert_same(&first, &run(&t, "retry"));
    assert_same(&first, &run(&t, "again"));
    let stats = t.cmd(["index", "stats", s(&t.join("index"))]).expect(0).stdout_str();
    assert!(stats.contains("runs recorded: 1"), "{stats}");
}

/// The index keeps the replays of the batches committed most recently (by
/// their last recorded run) only: a rerun of an older batch keeps the same
/// text but describes the text it reads.
#[test]
fn replays_of_batches_not_committed_lately_are_pruned() {
    let t = TestDir::new();
    let index = t.join("index");
    let kept = newsdedup::index::REPLAYS_KEPT;
    let day = |d: usize| {
        let explain = t.join(&format!("day{d}.explain"));
        let args = ["--in-place", "--index", s(&index), "--explain", s(&explain), "-q"];
        t.clean(&t.join(&format!("day{d}")), &args).expect(0);
        fs::read_to_string(explain).unwrap()
    };
    let mut first = Vec::new();
    for d in 0..kept {
        // A repeat within the file: each day's file is cleaned.
        t.write(&format!("day{d}/a.txt"), format!("{ALPHA}\n{ALPHA}\nDay {d}: {NEW}\n"));
        first.push(day(d));
        assert!(!first[d].is_empty());
    }
    // Day 0 gains a file: its rerun records a run, so it is recent again.
    t.write("day0/b.txt", format!("Day 0 again: {NEW}\n"));
    assert_eq!(day(0), first[0]);
    t.write(&format!("day{kept}/a.txt"), format!("{XRAY}\n{XRAY}\n"));
    day(kept);
    let replays = fs::read_dir(&index)
        .unwrap()
        .filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().starts_with("replay-"));
    assert_eq!(replays.count(), kept);
    assert_eq!(day(0), first[0], "day 0 keeps its replay");
    assert_eq!(day(2), first[2], "day 2 keeps its replay");
    assert_eq!(day(1), "", "day 1's replay is pruned: its rerun describes the cleaned text");
    assert_eq!(fs::read_to_string(t.join("day1/a.txt")).unwrap(), format!("Day 1: {NEW}\n"), "the same text");
}
