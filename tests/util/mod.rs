//! Test harness for the end-to-end tests: a fresh temp dir per test, fixture
//! inputs copied into it (nothing is ever written into `fixtures/`), the
//! binary under test, and failures that show the command, its stdout and
//! stderr, and a diff of expected vs actual (trees compared file by file).
#![allow(dead_code)] // each test crate uses a different part of the harness

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

pub mod env;
pub mod robust;

/// `bytes` as one gzip member.
pub fn gz(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write as _;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(bytes).expect("gzip in memory");
    e.finish().expect("gzip in memory")
}

/// The decompressed bytes of every gzip member of `bytes`.
pub fn gunzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Read as _;
    let mut out = Vec::new();
    flate2::read::MultiGzDecoder::new(bytes).read_to_end(&mut out).expect("valid gzip");
    out
}

/// As much of a (possibly truncated) gzip stream as decodes: what a reader
/// that stops at the damage gets.
pub fn gunzip_prefix(bytes: &[u8]) -> Vec<u8> {
    use std::io::Read as _;
    let mut out = Vec::new();
    let _ = flate2::read::GzDecoder::new(bytes).read_to_end(&mut out);
    out
}

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_newsdedup");

/// `fixtures/<case>` in the source tree (read-only for tests).
pub fn fixture(case: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures").join(case)
}

/// A fresh temporary directory, removed when dropped.
pub struct TestDir {
    dir: tempfile::TempDir,
}

impl TestDir {
    pub fn new() -> TestDir {
        TestDir { dir: tempfile::Builder::new().prefix("newsdedup-test-").tempdir().expect("create temp dir") }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// `self/<rel>`.
    pub fn join(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// Copies `fixtures/<case>/input` to `self/input` and returns that path.
    pub fn copy_input(&self, case: &str) -> PathBuf {
        let dest = self.join("input");
        copy_tree(&fixture(case).join("input"), &dest);
        dest
    }

    /// Writes `bytes` to `self/<rel>`, creating folders; returns the path.
    pub fn write(&self, rel: &str, bytes: impl AsRef<[u8]>) -> PathBuf {
        let path = self.join(rel);
        fs::create_dir_all(path.parent().expect("parent")).expect("create dir");
        fs::write(&path, bytes).expect("write file");
        path
    }

    /// `newsdedup clean FILE FLAGS...`, in this directory.
    pub fn clean(&self, file: &Path, flags: &[&str]) -> Cmd {
        let mut args = vec![OsStr::new("clean"), file.as_os_str()];
        args.extend(flags.iter().map(OsStr::new));
        self.cmd(args)
    }

    /// A command running the binary with `args`, in this directory.
    pub fn cmd<I, S>(&self, args: I) -> Cmd
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut c = Cmd::new(args);
        c.command.current_dir(self.path());
        c
    }
}

/// Copies every file under `from` to the same relative path under `to`.
pub fn copy_tree(from: &Path, to: &Path) {
    for (rel, bytes) in snapshot(from) {
        let dest = to.join(rel);
        fs::create_dir_all(dest.parent().expect("parent")).expect("create dir");
        fs::write(dest, bytes).expect("copy file");
    }
}

/// Every file under `root` (relative path → bytes), hidden ones included.
pub fn snapshot(root: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    if !root.exists() {
        return out;
    }
    for entry in walkdir::WalkDir::new(root) {
        let entry = entry.expect("walk");
        if entry.file_type().is_file() {
            let rel = entry.path().strip_prefix(root).expect("prefix").to_path_buf();
            out.insert(rel, fs::read(entry.path()).expect("read"));
        }
    }
    out
}

/// A command to run, with optional stdin.
pub struct Cmd {
    command: Command,
    display: String,
    stdin: Option<Vec<u8>>,
}

impl Cmd {
    pub fn new<I, S>(args: I) -> Cmd
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut command = Command::new(BIN);
        let mut display = String::from("newsdedup");
        for a in args {
            command.arg(a.as_ref());
            let _ = write!(display, " {}", a.as_ref().to_string_lossy());
        }
        Cmd { command, display, stdin: None }
    }

    /// Sets an environment variable of the command.
    pub fn env(mut self, key: &str, value: &str) -> Cmd {
        self.command.env(key, value);
        self
    }

    pub fn stdin(mut self, bytes: impl Into<Vec<u8>>) -> Cmd {
        self.stdin = Some(bytes.into());
        self
    }

    /// Runs to completion.
    pub fn run(mut self) -> Outcome {
        use std::io::Write as _;
        self.command.stdin(if self.stdin.is_some() { Stdio::piped() } else { Stdio::null() });
        self.command.stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = self.command.spawn().unwrap_or_else(|e| panic!("cannot run {}: {e}", self.display));
        if let Some(bytes) = self.stdin.take() {
            let mut pipe = child.stdin.take().expect("stdin pipe");
            // The process may exit before reading (a usage error): a closed
            // pipe is not the test's failure; the exit code tells.
            let _ = pipe.write_all(&bytes);
        }
        let out = child.wait_with_output().expect("wait");
        Outcome { display: self.display, code: out.status.code(), stdout: out.stdout, stderr: out.stderr }
    }

    /// Runs and demands exit code `code`.
    pub fn expect(self, code: i32) -> Outcome {
        let o = self.run();
        if o.code != Some(code) {
            o.fail(&format!("expected exit code {code}, got {:?}", o.code));
        }
        o
    }
}

/// What a run produced.
pub struct Outcome {
    pub display: String,
    pub code: Option<i32>,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

impl Outcome {
    pub fn stdout_str(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    pub fn stderr_str(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }

    /// Panics with `why` and everything about the run.
    pub fn fail(&self, why: &str) -> ! {
        panic!(
            "{why}\n--- command: {}\n--- exit code: {:?}\n--- stdout:\n{}\n--- stderr:\n{}",
            self.display,
            self.code,
            self.stdout_str(),
            self.stderr_str()
        )
    }

    /// Demands that stdout is exactly `expected`.
    pub fn stdout_is(&self, expected: &[u8]) -> &Outcome {
        if self.stdout != expected {
            self.fail(&format!("stdout differs from expected:\n{}", diff_bytes(expected, &self.stdout)));
        }
        self
    }

    /// Demands that stderr contains `needle`.
    pub fn stderr_has(&self, needle: &str) -> &Outcome {
        if !self.stderr_str().contains(needle) {
            self.fail(&format!("stderr does not contain {needle:?}"));
        }
        self
    }

    /// Demands that the tree at `actual` equals the tree at `expected`.
    pub fn tree_is(&self, expected: &Path, actual: &Path) -> &Outcome {
        if let Some(d) = diff_trees(&snapshot(expected), &snapshot(actual)) {
            self.fail(&format!("output tree {} differs from {}:\n{d}", actual.display(), expected.display()));
        }
        self
    }
}

/// A description of how two trees differ, or `None` when they are equal.
pub fn diff_trees(expected: &BTreeMap<PathBuf, Vec<u8>>, actual: &BTreeMap<PathBuf, Vec<u8>>) -> Option<String> {
    let mut out = String::new();
    for (rel, want) in expected {
        match actual.get(rel) {
            None => {
                let _ = writeln!(out, "missing: {}", rel.display());
            }
            Some(got) if got != want => {
                let _ = writeln!(out, "differs: {}\n{}", rel.display(), diff_bytes(want, got));
            }
            Some(_) => {}
        }
    }
    for rel in actual.keys().filter(|r| !expected.contains_key(*r)) {
        let _ = writeln!(out, "extra: {}", rel.display());
    }
    if out.is_empty() { None } else { Some(out) }
}

/// A line-by-line comparison (escaped, so CR, NBSP and invalid bytes show).
pub fn diff_bytes(expected: &[u8], actual: &[u8]) -> String {
    let split = |b: &[u8]| -> Vec<String> {
        b.split_inclusive(|&c| c == b'\n').map(|l| format!("{:?}", String::from_utf8_lossy(l))).collect()
    };
    let (want, got) = (split(expected), split(actual));
    let mut out = String::new();
    let mut shown = 0;
    for i in 0..want.len().max(got.len()) {
        let (w, g) = (want.get(i), got.get(i));
        if w == g {
            continue;
        }
        if let Some(w) = w {
            let _ = writeln!(out, "  line {:>3} - {w}", i + 1);
        }
        if let Some(g) = g {
            let _ = writeln!(out, "  line {:>3} + {g}", i + 1);
        }
        shown += 1;
        if shown == 20 {
            let _ = writeln!(out, "  ...");
            break;
        }
    }
    let _ = writeln!(out, "  ({} bytes expected, {} bytes actual)", expected.len(), actual.len());
    out
}

/// Timing fields: the only part of a report that may differ between runs.
pub const TIMING_FIELDS: [&str; 3] = ["elapsed_seconds", "mb_per_second", "threads"];

/// Reads a `--report` file and removes the timing fields.
pub fn read_report(path: &Path) -> serde_json::Value {
    let bytes = fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut v: serde_json::Value = serde_json::from_slice(&bytes).expect("report is JSON");
    let obj = v.as_object_mut().expect("report is an object");
    for f in TIMING_FIELDS {
        assert!(obj.remove(f).is_some(), "report lacks {f}");
    }
    v
}

/// The non-empty lines of a normalised output: its paragraphs.
pub fn output_paragraphs(text: &str) -> Vec<&str> {
    text.split('\n').filter(|l| !l.is_empty()).collect()
}

/// True when `sub` is an in-order subsequence of `seq`.
pub fn is_subsequence<T: PartialEq>(sub: &[T], seq: &[T]) -> bool {
    let mut it = seq.iter();
    sub.iter().all(|s| it.any(|x| x == s))
}

/// The one seeded generator of the tests (SplitMix64): no dependency,
/// the same sequence everywhere.
pub struct Rng(u64);

impl Rng {
    /// A generator started at `seed`.
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// Next 64 random bits.
    pub fn bits(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n` > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.bits() % n as u64) as usize
    }
}

const WORDS: [&str; 24] = [
    "minister",
    "harbour",
    "council",
    "strike",
    "budget",
    "river",
    "police",
    "market",
    "school",
    "election",
    "\u{201C}talks\u{201D}",
    "caf\u{00E9}",
    "M\u{00FC}nchen",
    "\u{00AB}accord\u{00BB}",
    "4,000",
    "\u{00A3}12",
    "night",
    "ferry",
    "union",
    "report",
    "court",
    "storm",
    "fans",
    "rail",
];

/// Writes a corpus of `files` documents under `root`, built from a shared
/// pool of paragraphs so that repeats happen within and across files: some
/// files are exact copies, some are pasted twice, some use CRLF, NBSP or
/// curly quotes, some hold boilerplate lines.
pub fn generate_corpus(root: &Path, seed: u64, files: usize) {
    let mut rng = Rng::new(seed);
    let pool: Vec<String> = (0..files / 2 + 20)
        .map(|_| {
            let n = 6 + rng.below(10);
            let words: Vec<&str> = (0..n).map(|_| WORDS[rng.below(WORDS.len())]).collect();
            format!("{}.", words.join(" "))
        })
        .collect();
    let shorts = ["he said.", "Reuters", "Copyright 2024 Example News. All rights reserved."];
    let mut written: Vec<Vec<u8>> = Vec::new();
    for i in 0..files {
        let rel = format!("{}/{:03}-{}.txt", ["a", "b", "b-c", "d/e"][rng.below(4)], i, rng.below(100));
        let bytes = if !written.is_empty() && rng.below(12) == 0 {
            written[rng.below(written.len())].clone()
        } else {
            let mut paras: Vec<String> = (0..1 + rng.below(6)).map(|_| pool[rng.below(pool.len())].clone()).collect();
            if rng.below(3) == 0 {
                paras.insert(rng.below(paras.len() + 1), shorts[rng.below(shorts.len())].to_owned());
            }
            if rng.below(6) == 0 {
                let copy = paras.clone();
                paras.extend(copy);
            }
            if rng.below(4) == 0 {
                paras = paras.iter().map(|p| p.replacen(' ', "\u{00A0}", 2)).collect();
            }
            let sep = ["\n", "\n\n", "\r\n", "\r\n\r\n"][rng.below(4)];
            let eol = if sep.starts_with('\r') { "\r\n" } else { "\n" };
            (paras.join(sep) + eol).into_bytes()
        };
        let path = root.join(rel);
        fs::create_dir_all(path.parent().expect("parent")).expect("create dir");
        fs::write(path, &bytes).expect("write");
        written.push(bytes);
    }
}
