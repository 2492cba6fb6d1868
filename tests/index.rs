//! The persistent index end to end: incremental runs, retries, crashes,
//! locking and damage.

mod util;

use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use util::{BIN, TestDir, diff_trees, generate_corpus, snapshot};

fn clean(t: &TestDir, input: &Path, out: &Path, index: &Path) {
    t.clean(input, &["--out", out.to_str().unwrap(), "--index", index.to_str().unwrap(), "-q"]).expect(0);
}

fn assert_same(expected: &Path, actual: &Path) {
    if let Some(diff) = diff_trees(&snapshot(expected), &snapshot(actual)) {
        panic!("{} and {} differ:\n{diff}", expected.display(), actual.display());
    }
}

/// Day 1 then day 2 against one index keeps what days 1 and 2 together keep.
#[test]
fn day_by_day_equals_all_at_once_in_tree_mode() {
    let t = TestDir::new();
    generate_corpus(&t.join("all/day1"), 11, 120);
    generate_corpus(&t.join("all/day2"), 12, 120);
    // Day 2 also repeats some of day 1 verbatim (syndication the next day).
    for name in ["a", "b"] {
        let src = t.join("all/day1").join(name);
        if src.exists() {
            util::copy_tree(&src, &t.join("all/day2/z-repeat").join(name));
        }
    }
    t.clean(&t.join("all"), &["--out", t.join("together").to_str().unwrap(), "-q"]).expect(0);
    let index = t.join("index");
    clean(&t, &t.join("all/day1"), &t.join("out/day1"), &index);
    clean(&t, &t.join("all/day2"), &t.join("out/day2"), &index);
    assert_same(&t.join("together"), &t.join("out"));
    assert!(snapshot(&t.join("out/day2")).len() < snapshot(&t.join("all/day2")).len(), "day 2 lost files to day 1");
}

/// Short repeats are judged by which document first kept each key; an
/// index stores that document's identity, so day by day decides the same.
#[test]
fn short_repeats_are_judged_the_same_day_by_day() {
    let t = TestDir::new();
    let copy = |case: &str, name: &str, day: &str| {
        let bytes = fs::read(util::fixture(case).join("input").join(name)).unwrap();
        t.write(&format!("all/{day}/{name}"), bytes);
    };
    copy("qtly-div", "1-knutson.txt", "day1");
    copy("syndicated-resend", "a-original.txt", "day1");
    copy("qtly-div", "2-conchemco.txt", "day2");
    copy("qtly-div", "3-mdc.txt", "day2");
    copy("syndicated-resend", "b-resend.txt", "day2");
    t.clean(&t.join("all"), &["--out", t.join("together").to_str().unwrap(), "-q"]).expect(0);
    let index = t.join("index");
    clean(&t, &t.join("all/day1"), &t.join("out/day1"), &index);
    clean(&t, &t.join("all/day2"), &t.join("out/day2"), &index);
    assert_same(&t.join("together"), &t.join("out"));
    for (case, name) in
        [("qtly-div", "2-conchemco.txt"), ("qtly-div", "3-mdc.txt"), ("syndicated-resend", "b-resend.txt")]
    {
        let expected = fs::read(util::fixture(case).join("expected").join(name)).unwrap();
        assert_eq!(fs::read(t.join("out/day2").join(name)).unwrap(), expected, "{name}");
    }
}

#[test]
fn day_by_day_equals_all_at_once_in_jsonl_mode() {
    let t = TestDir::new();
    let para = |i: usize| format!("Paragraph {i} of the stream, which is long enough to count.");
    let record = |id: usize, ps: &[usize]| {
        let text: Vec<String> = ps.iter().map(|&i| para(i)).collect();
        format!("{}\n", serde_json::json!({"id": id, "text": text.join("\n")}))
    };
    let day1 = [record(1, &[1, 2, 3]), record(2, &[3, 4]), record(3, &[1, 2, 3])].concat();
    let day2 = [record(4, &[2, 5]), record(5, &[1, 2, 3]), record(6, &[6, 6, 7])].concat();
    t.write("all/d1.jsonl", &day1);
    t.write("all/d2.jsonl", &day2);
    t.clean(&t.join("all"), &["--out", t.join("together").to_str().unwrap(), "-q"]).expect(0);
    let index = t.join("index");
    clean(&t, &t.join("all/d1.jsonl"), &t.join("out"), &index);
    clean(&t, &t.join("all/d2.jsonl"), &t.join("out"), &index);
    assert_same(&t.join("together"), &t.join("out"));
    let d2 = fs::read_to_string(t.join("out/d2.jsonl")).unwrap();
    assert!(d2.contains("\"id\":4") && !d2.contains("\"id\":5"), "{d2}");
}

/// Re-cleaning documents an earlier run ingested keeps what that run kept,
/// and the retry is not recorded as a second run.
#[test]
fn a_retry_keeps_what_the_first_run_kept() {
    let t = TestDir::new();
    generate_corpus(&t.join("day1"), 21, 150);
    let index = t.join("index");
    clean(&t, &t.join("day1"), &t.join("first"), &index);
    clean(&t, &t.join("day1"), &t.join("retry"), &index);
    assert_same(&t.join("first"), &t.join("retry"));
    let stats = t.cmd(["index", "stats", index.to_str().unwrap()]).expect(0);
    assert!(stats.stdout_str().contains("runs recorded: 1"), "{}", stats.stdout_str());
}

/// A run killed with SIGKILL at any point leaves the index as before or fully
/// updated; a rerun gives the uninterrupted output byte for byte.
#[test]
fn sigkill_at_any_point_leaves_a_usable_index_and_a_rerun_gives_the_same_output() {
    let t = TestDir::new();
    generate_corpus(&t.join("day0"), 31, 200);
    generate_corpus(&t.join("day0b"), 33, 200);
    generate_corpus(&t.join("day1"), 32, 1500);
    let base = t.join("index-base");
    // Two earlier runs of similar size: two segments, which day 1's run
    // merges in the background, so kills also land during that merge.
    clean(&t, &t.join("day0"), &t.join("out0"), &base);
    clean(&t, &t.join("day0b"), &t.join("out0b"), &base);
    let reference_index = t.join("index-ref");
    util::copy_tree(&base, &reference_index);
    clean(&t, &t.join("day1"), &t.join("reference"), &reference_index);
    let segments = |index: &Path| {
        let out = t.cmd(["index", "stats", index.to_str().unwrap()]).expect(0).stdout_str();
        out.lines().find(|l| l.starts_with("segments:")).unwrap_or_default().to_owned()
    };
    assert!(segments(&base).starts_with("segments: 2 "), "{}", segments(&base));
    assert!(
        segments(&reference_index).starts_with("segments: 2 "),
        "day 1 merged the two: {}",
        segments(&reference_index)
    );
    for (i, delay_ms) in [5u64, 30, 80, 150, 300].into_iter().enumerate() {
        let index = t.join(&format!("index-{i}"));
        util::copy_tree(&base, &index);
        let out = t.join(&format!("out-{i}"));
        let mut child = Command::new(BIN)
            .args(["clean", t.join("day1").to_str().unwrap(), "--out", out.to_str().unwrap()])
            .args(["--index", index.to_str().unwrap(), "-q"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay_ms));
        let _ = child.kill();
        let _ = child.wait();
        // The index opens cleanly, whatever the moment of the kill.
        t.cmd(["index", "stats", index.to_str().unwrap()]).expect(0);
        // No output file is partial: each one equals the reference's.
        let reference = snapshot(&t.join("reference"));
        for (rel, bytes) in snapshot(&out) {
            let name = rel.file_name().unwrap().to_string_lossy().into_owned();
            if name.starts_with(".newsdedup-") {
                continue; // a temporary file, never under a final name
            }
            assert_eq!(
                reference.get(&rel),
                Some(&bytes),
                "partial or wrong {} after kill at {delay_ms} ms",
                rel.display()
            );
        }
        clean(&t, &t.join("day1"), &out, &index);
        assert_same(&t.join("reference"), &out);
        assert_eq!(keys_line(&t, &index), keys_line(&t, &reference_index), "kill at {delay_ms} ms");
    }
}

/// The `keys:` line of `index stats`.
fn keys_line(t: &TestDir, index: &Path) -> String {
    let out = t.cmd(["index", "stats", index.to_str().unwrap()]).expect(0).stdout_str();
    out.lines().find(|l| l.starts_with("keys:")).unwrap_or_default().to_owned()
}

#[test]
fn a_second_process_on_the_same_index_is_refused() {
    let t = TestDir::new();
    t.write("in/a.txt", "A paragraph that is long enough to be a key.\n");
    let index = t.join("index");
    let held = newsdedup::index::Index::open(&index).unwrap();
    let o = t
        .clean(&t.join("in"), &["--out", t.join("out").to_str().unwrap(), "--index", index.to_str().unwrap()])
        .expect(2);
    o.stderr_has("locked");
    o.stderr_has(&index.display().to_string());
    assert!(!t.join("out/a.txt").exists(), "nothing written while the index is held");
    drop(held);
    // Released: a run proceeds. (Other tests of this binary fork children;
    // one forked while `held` was open shares its lock until it execs, so
    // allow that brief window to pass.)
    let out = t.join("out");
    let args = ["--out", out.to_str().unwrap(), "--index", index.to_str().unwrap(), "-q"];
    let ok = (0..50).any(|_| {
        let done = t.clean(&t.join("in"), &args).run().code == Some(0);
        if !done {
            std::thread::sleep(Duration::from_millis(20));
        }
        done
    });
    assert!(ok, "the index stayed locked after it was released");
    assert!(t.join("out/a.txt").exists());
}

#[test]
fn a_damaged_or_foreign_index_is_refused_naming_the_file() {
    let t = TestDir::new();
    t.write("in/a.txt", "A paragraph that is long enough to be a key.\n");
    let index = t.join("index");
    clean(&t, &t.join("in"), &t.join("out"), &index);
    let segment = fs::read_dir(&index)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "ndx"))
        .expect("a segment file");
    let mut bytes = fs::read(&segment).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x40;
    fs::write(&segment, bytes).unwrap();
    let o = t
        .clean(&t.join("in"), &["--out", t.join("out2").to_str().unwrap(), "--index", index.to_str().unwrap()])
        .expect(2);
    o.stderr_has(&segment.display().to_string());
    o.stderr_has("corrupt");

    t.write("foreign/MANIFEST", "this is not an index\n");
    let o = t
        .clean(
            &t.join("in"),
            &["--out", t.join("out3").to_str().unwrap(), "--index", t.join("foreign").to_str().unwrap()],
        )
        .expect(2);
    o.stderr_has("foreign");
}

#[test]
fn index_maintenance_commands() {
    let t = TestDir::new();
    t.write("a/x.txt", "A paragraph that is long enough to be a key.\n");
    t.write(
        "b/y.txt",
        "Another paragraph, long enough to be a key too.\nA paragraph that is long enough to be a key.\n",
    );
    let (ia, ib) = (t.join("ia"), t.join("ib"));
    clean(&t, &t.join("a"), &t.join("oa"), &ia);
    clean(&t, &t.join("b"), &t.join("ob"), &ib);
    // A mistyped path is an error, not a new empty index.
    t.cmd(["index", "stats", t.join("typo").to_str().unwrap()]).expect(2).stderr_has("no index here");
    assert!(!t.join("typo").exists());
    t.cmd(["index", "merge", ia.to_str().unwrap(), ia.to_str().unwrap()]).expect(2).stderr_has("into itself");
    // ib holds 3 keys (2 paragraphs + its document); one paragraph is in ia already.
    t.cmd(["index", "merge", ia.to_str().unwrap(), ib.to_str().unwrap()]).expect(0).stderr_has("added 2 keys");
    t.cmd(["index", "compact", ia.to_str().unwrap()]).expect(0);
    let stats = t.cmd(["index", "stats", ia.to_str().unwrap()]).expect(0).stdout_str();
    assert!(stats.contains("keys: 4") && stats.contains("segments: 1"), "{stats}");
}

/// JSONL shards long enough for several batches (the next batch is looked
/// up while the current one is decided): day by day against one index
/// keeps what both days together keep, with one thread or two.
#[test]
fn jsonl_day_by_day_equals_all_at_once_across_batches() {
    let t = TestDir::new();
    let tail = "said the government people over the year with the new one after two first";
    let para = |day: u32, rec: usize, p: usize| format!("day{day} record {rec} paragraph {p}: {tail}");
    let day1: Vec<String> = (0..3000).map(|i| format!("{}\n{}", para(1, i, 0), para(1, i, 1))).collect();
    let mut lines1 = String::new();
    for (i, text) in day1.iter().enumerate() {
        lines1 += &format!("{}\n", serde_json::json!({"id": i, "text": text}));
    }
    let mut lines2 = String::new();
    for i in 0..20_000usize {
        let text = if i % 1000 == 999 {
            // A whole record of day 1 again.
            day1[i % 3000].clone()
        } else {
            let mut paras = vec![para(2, i, 0)];
            if i % 7 == 0 {
                paras.push(para(1, i % 3000, 1)); // seen on day 1
            }
            if i >= 9000 && i % 5 == 0 {
                paras.push(para(2, i - 9000, 0)); // seen two batches earlier
            }
            paras.push(para(2, i, 3));
            paras.join("\n")
        };
        lines2 += &format!("{}\n", serde_json::json!({"id": i, "text": text}));
    }
    t.write("all/day1/news.jsonl", &lines1);
    t.write("all/day2/news.jsonl", &lines2);
    t.clean(&t.join("all"), &["--out", t.join("together").to_str().unwrap(), "-q"]).expect(0);
    for threads in ["1", "2"] {
        let (index, out) = (t.join(&format!("index-{threads}")), t.join(&format!("out-{threads}")));
        for day in ["day1", "day2"] {
            let (input, out) = (t.join(&format!("all/{day}")), out.join(day));
            let flags =
                ["--out", out.to_str().unwrap(), "--index", index.to_str().unwrap(), "--threads", threads, "-q"];
            t.clean(&input, &flags).expect(0);
        }
        assert_same(&t.join("together"), &out);
    }
    let kept = fs::read_to_string(t.join("out-2/day2/news.jsonl")).unwrap();
    assert!(kept.lines().count() < 20_000, "no record of day 2 was dropped as a repeat of day 1");
    // 2,858 paragraphs of day 1 are repeated on day 2 (a few short repeats
    // stay, as in the run over both days).
    let again = kept.matches("day1 record").count();
    assert!(again < 100, "{again} paragraphs of day 1 kept again on day 2");
}

/// The index's segments and filter (not its manifest, which holds the
/// run's label and time, nor an `--in-place` run's replay records).
fn index_files(index: &Path) -> std::collections::BTreeMap<std::path::PathBuf, Vec<u8>> {
    let mut files = snapshot(index);
    files.retain(|p, _| p.to_str().is_some_and(|p| p.starts_with("seg-") || p.starts_with("filter-")));
    files
}

/// A run with `--out` reads its new keys from its seen-set at the end; an
/// `--in-place` run journals them as it goes. Both commit the same
/// segments and filter, byte for byte, day after day.
#[test]
fn runs_with_out_and_in_place_commit_the_same_keys() {
    let t = TestDir::new();
    generate_corpus(&t.join("day1"), 31, 150);
    generate_corpus(&t.join("day2"), 32, 150);
    util::copy_tree(&t.join("day1/a"), &t.join("day2/z-repeat"));
    for day in ["day1", "day2"] {
        util::copy_tree(&t.join(day), &t.join("inplace").join(day));
    }
    let (out, inplace) = (t.join("ix-out"), t.join("ix-inplace"));
    for day in ["day1", "day2"] {
        clean(&t, &t.join(day), &t.join("out").join(day), &out);
        let ix = inplace.to_str().unwrap();
        t.clean(&t.join("inplace").join(day), &["--in-place", "--index", ix, "-q"]).expect(0);
        let (a, b) = (index_files(&out), index_files(&inplace));
        assert!(a.keys().any(|p| p.to_string_lossy().starts_with("seg-")), "{day}: segments written");
        if let Some(diff) = diff_trees(&b, &a) {
            panic!("{day}: the indexes differ:\n{diff}");
        }
    }
    assert_same(&t.join("out"), &t.join("inplace"));
}
