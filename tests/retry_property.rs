//! Issue 13, the property: over generated corpora split into days, any
//! sequence of runs with retries — complete, killed (SIGKILL) at random
//! points, or completed and then rerun — ends with the outputs, explain
//! files, reports and index of the uninterrupted sequence of one run per day.
//!
//! A run that fails *after* the commit cannot happen any more (the commit is
//! the last step; after it nothing can fail): the state it used to leave is
//! that of a completed run, so "complete, then rerun" covers it, and so do
//! kills that land after the commit.
//!
//! With `--in-place` a run killed after it replaced some files leaves a
//! retry different text to read (files cleaned, files removed): the killed
//! run journaled the first occurrences of the files it replaced and
//! recorded what it reported about them (see `src/index/replay.rs`), so
//! the retry's explain file and report are compared too, after every day.

mod util;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use util::{BIN, Rng, TestDir, diff_trees, generate_corpus, read_report, snapshot};

const DAYS: usize = 3;

/// Writes the days under `root/day{i}`: generated text files, a copy of some
/// of the previous day's files (same names and new names), and a JSONL shard
/// whose records draw on a pool shared by all days.
fn make_days(root: &Path, seed: u64) {
    let mut rng = Rng::new(seed);
    let pool: Vec<String> =
        (0..40).map(|i| format!("Wire paragraph {i} about the {} in the news today.", i * 7)).collect();
    for d in 0..DAYS {
        let day = root.join(format!("day{d}"));
        generate_corpus(&day, seed * 10 + d as u64, 24);
        if d > 0 {
            let prev = snapshot(&root.join(format!("day{}", d - 1)));
            for (i, (rel, bytes)) in prev.iter().filter(|(r, _)| r.extension().is_some_and(|e| e == "txt")).enumerate()
            {
                if i % 5 == 0 {
                    let name = if i % 2 == 0 { rel.clone() } else { PathBuf::from(format!("z/again-{i}.txt")) };
                    let dest = day.join(name);
                    fs::create_dir_all(dest.parent().unwrap()).unwrap();
                    fs::write(dest, bytes).unwrap();
                }
            }
        }
        let mut shard = String::new();
        for id in 0..20 {
            let paras: Vec<&str> = (0..1 + rng.below(4)).map(|_| pool[rng.below(pool.len())].as_str()).collect();
            shard.push_str(&serde_json::json!({"id": format!("{d}-{id}"), "text": paras.join("\n")}).to_string());
            shard.push('\n');
        }
        fs::write(day.join("feed.jsonl"), shard).unwrap();
    }
}

/// What a day leaves behind.
#[derive(Debug, PartialEq)]
struct State {
    tree: BTreeMap<PathBuf, Vec<u8>>,
    explain: String,
    report: serde_json::Value,
    keys: String,
    runs: String,
}

struct Setup {
    root: PathBuf,
    in_place: bool,
}

impl Setup {
    fn input(&self, d: usize) -> PathBuf {
        self.root.join(format!("day{d}"))
    }
    fn out(&self, d: usize) -> PathBuf {
        if self.in_place { self.input(d) } else { self.root.join(format!("out/day{d}")) }
    }
    fn command(&self, d: usize) -> Command {
        let mut c = Command::new(BIN);
        c.arg("clean").arg(self.input(d)).args(["-q", "-j2", "--index"]).arg(self.root.join("index"));
        c.arg("--explain").arg(self.root.join(format!("explain-{d}.jsonl")));
        c.arg("--report").arg(self.root.join(format!("report-{d}.json")));
        // Named, so that the explain files of the setups (in different
        // folders) name the same batches.
        c.arg("--batch").arg(format!("day{d}"));
        if self.in_place {
            c.arg("--in-place");
        } else {
            c.arg("--out").arg(self.out(d));
        }
        c.stdout(Stdio::null()).stderr(Stdio::piped());
        c
    }
    fn complete(&self, d: usize) {
        let out = self.command(d).output().unwrap();
        assert_eq!(out.status.code(), Some(0), "day {d}: {}", String::from_utf8_lossy(&out.stderr));
    }
    /// Starts day `d` and SIGKILLs it after `delay`; says where it landed.
    fn kill_after(&self, d: usize, delay: Duration) -> &'static str {
        let runs = self.runs();
        let mut child = self.command(d).spawn().unwrap();
        std::thread::sleep(delay);
        let _ = child.kill();
        match child.wait().unwrap().code() {
            Some(0) => "finished first",
            _ if self.runs() != runs => "killed after the commit",
            _ => "killed before the commit",
        }
    }
    /// Runs recorded (0 when there is no index yet).
    fn runs(&self) -> u64 {
        let stats = Command::new(BIN).args(["index", "stats"]).arg(self.root.join("index")).output().unwrap();
        let stats = String::from_utf8_lossy(&stats.stdout).into_owned();
        let line = stats.lines().find_map(|l| l.strip_prefix("runs recorded: ")).unwrap_or("0");
        line.trim().parse().unwrap()
    }
    fn state(&self, d: usize) -> State {
        let stats = Command::new(BIN).args(["index", "stats"]).arg(self.root.join("index")).output().unwrap();
        let stats = String::from_utf8_lossy(&stats.stdout).into_owned();
        let line = |p: &str| stats.lines().find(|l| l.starts_with(p)).unwrap_or_default().to_owned();
        // A SIGKILL can leave a hidden temporary file (never a partial file
        // under a final name); a later run removes those it meets, so one
        // may remain only in a folder the last run wrote nothing to.
        let mut tree = snapshot(&self.out(d));
        tree.retain(|rel, _| !rel.file_name().is_some_and(|n| n.to_string_lossy().starts_with(".newsdedup-")));
        State {
            tree,
            explain: fs::read_to_string(self.root.join(format!("explain-{d}.jsonl"))).unwrap(),
            report: read_report(&self.root.join(format!("report-{d}.json"))),
            keys: line("keys:"),
            runs: line("runs recorded:"),
        }
    }
}

/// Trees, index keys, runs recorded, explain files and reports.
fn check(reference: &State, got: &State, what: &str) {
    if let Some(d) = diff_trees(&reference.tree, &got.tree) {
        panic!("{what}: tree differs:\n{d}");
    }
    assert_eq!(reference.runs, got.runs, "{what}: runs recorded");
    assert_eq!(reference.keys, got.keys, "{what}: index keys");
    assert_eq!(reference.explain, got.explain, "{what}: explain file");
    assert_eq!(reference.report, got.report, "{what}: report");
}

/// `RETRY_SCHEDULES` (default 4 per mode) and `RETRY_SEED` (default 7)
/// run it longer or differently.
#[test]
fn any_sequence_of_retries_ends_as_the_uninterrupted_sequence() {
    let env = |name: &str, default: u64| std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default);
    let (schedules, seed) = (env("RETRY_SCHEDULES", 4), env("RETRY_SEED", 7));
    let t = TestDir::new();
    let source = t.join("source");
    make_days(&source, seed);
    for in_place in [false, true] {
        let mode = if in_place { "in-place" } else { "out" };
        // The uninterrupted sequence, and how long a day takes.
        let reference = Setup { root: t.join(&format!("{mode}-reference")), in_place };
        util::copy_tree(&source, &reference.root);
        let mut expected = Vec::new();
        let mut longest = Duration::ZERO;
        for d in 0..DAYS {
            let started = Instant::now();
            reference.complete(d);
            longest = longest.max(started.elapsed());
            expected.push(reference.state(d));
        }
        let mut rng = Rng::new(seed * 2 + u64::from(in_place));
        // Days whose last run read text an earlier run had cleaned in place.
        let mut replayed = 0;
        for schedule in 0..schedules {
            let setup = Setup { root: t.join(&format!("{mode}-{schedule}")), in_place };
            util::copy_tree(&source, &setup.root);
            let mut log = Vec::new();
            for (d, want) in expected.iter().enumerate() {
                let original = snapshot(&setup.input(d));
                for _ in 0..rng.below(4) {
                    if rng.below(4) == 0 {
                        setup.complete(d);
                        log.push(format!("day {d}: complete"));
                    } else {
                        let ms = rng.below(longest.as_millis() as usize + 1) as u64;
                        let before = snapshot(&setup.input(d));
                        let landed = setup.kill_after(d, Duration::from_millis(ms));
                        let replaced = in_place && snapshot(&setup.input(d)) != before;
                        let note = if replaced && landed.contains("before") { ", files replaced" } else { "" };
                        log.push(format!("day {d}: {ms} ms, {landed}{note}"));
                    }
                }
                replayed += usize::from(snapshot(&setup.input(d)) != original);
                setup.complete(d);
                log.push(format!("day {d}: complete"));
                let what = format!("{mode}, schedule {schedule}: {}", log.join(", "));
                check(want, &setup.state(d), &what);
            }
            eprintln!("{mode}, schedule {schedule}: {}", log.join(", "));
        }
        let days = schedules as usize * DAYS;
        eprintln!("{mode}: all outputs compared after {days} days, {replayed} of them over text cleaned in place");
    }
}
