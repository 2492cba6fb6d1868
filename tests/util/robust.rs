//! The part of the harness `tests/robustness.rs` uses: runs the binary
//! with exit statuses and signals, snapshots trees with metadata, builds
//! seeded corpora. `util::robust` (a module of the one harness in
//! `tests/util/`, not a test crate of its own).

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use super::BIN;
pub use super::Rng;

/// The outcome of one run of the binary.
pub struct Run {
    /// The command line, for failure messages.
    pub cmd: String,
    /// Exit status.
    pub status: ExitStatus,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl Run {
    /// Exit code, or 128 + signal.
    pub fn code(&self) -> i32 {
        use std::os::unix::process::ExitStatusExt;
        self.status.code().unwrap_or_else(|| 128 + self.status.signal().unwrap_or(0))
    }

    /// Panics with the command, stdout and stderr unless the exit code is `code`.
    pub fn expect_code(&self, code: i32) -> &Run {
        assert_eq!(self.code(), code, "{self}");
        self
    }

    /// Panics unless stderr contains `needle`.
    pub fn expect_stderr(&self, needle: &str) -> &Run {
        assert!(self.stderr.contains(needle), "stderr lacks {needle:?}\n{self}");
        self
    }
}

impl std::fmt::Display for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "command: {}\nstatus: {}\n--- stdout\n{}\n--- stderr\n{}",
            self.cmd, self.status, self.stdout, self.stderr
        )
    }
}

/// `newsdedup` with these arguments (not yet run).
pub fn command<S: AsRef<OsStr>>(args: &[S]) -> Command {
    let mut c = Command::new(BIN);
    c.args(args).stdin(Stdio::null());
    c
}

/// Runs a prepared command to completion.
pub fn finish(mut c: Command) -> Run {
    let cmd = format!("{c:?}");
    let out = c.output().expect("cannot start the binary");
    Run {
        cmd,
        status: out.status,
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Runs `newsdedup` with these arguments.
pub fn run<S: AsRef<OsStr>>(args: &[S]) -> Run {
    finish(command(args))
}

/// Writes `bytes` to `root/rel`, creating folders.
pub fn put(root: &Path, rel: impl AsRef<Path>, bytes: impl AsRef<[u8]>) -> PathBuf {
    let path = root.join(rel);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(&path, bytes).unwrap();
    path
}

/// Every regular file under `root` (hidden ones too; symlinks not followed):
/// relative path bytes → contents.
pub fn tree(root: &Path) -> BTreeMap<Vec<u8>, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = fs::read_dir(&dir) else { continue };
        for e in entries {
            let e = e.unwrap();
            let ft = e.file_type().unwrap();
            if ft.is_dir() {
                stack.push(e.path());
            } else if ft.is_file() {
                let rel = e.path().strip_prefix(root).unwrap().as_os_str().as_bytes().to_vec();
                out.insert(rel, fs::read(e.path()).unwrap());
            }
        }
    }
    out
}

/// Contents, mode, inode, mtime seconds and nanoseconds of one file.
pub type Meta = (Vec<u8>, u32, u64, i64, i64);

/// Like [`tree`], with mode, inode and mtime: what "never written" means.
pub fn tree_meta(root: &Path) -> BTreeMap<Vec<u8>, Meta> {
    tree(root)
        .into_iter()
        .map(|(rel, bytes)| {
            let m = fs::metadata(root.join(OsStr::from_bytes(&rel))).unwrap();
            (rel, (bytes, m.mode(), m.ino(), m.mtime(), m.mtime_nsec()))
        })
        .collect()
}

/// Relative paths of temporary files left under `root`.
pub fn temps(root: &Path) -> Vec<String> {
    tree(root)
        .into_keys()
        .map(|k| String::from_utf8_lossy(&k).into_owned())
        .filter(|k| {
            let name = k.rsplit('/').next().unwrap_or(k);
            name.starts_with(".newsdedup-") && name.ends_with(".tmp")
        })
        .collect()
}

/// Panics unless every file of `got` is byte-identical to the file of the
/// same name in `reference` (files may be missing from `got`).
pub fn assert_subset(got: &BTreeMap<Vec<u8>, Vec<u8>>, reference: &BTreeMap<Vec<u8>, Vec<u8>>, what: &str) {
    for (rel, bytes) in got {
        let name = String::from_utf8_lossy(rel);
        let Some(want) = reference.get(rel) else { panic!("{what}: unexpected file {name}") };
        assert!(
            bytes == want,
            "{what}: {name} differs from the uninterrupted run ({} vs {} bytes)",
            bytes.len(),
            want.len()
        );
    }
}

const WORDS: [&str; 24] = [
    "minister",
    "said",
    "the",
    "market",
    "fell",
    "sharply",
    "on",
    "Tuesday",
    "after",
    "reports",
    "of",
    "a",
    "new",
    "deal",
    "between",
    "unions",
    "and",
    "police",
    "in",
    "London",
    "\u{201C}quoted\u{201D}",
    "caf\u{e9}",
    "profits",
    "rose",
];

/// A sentence of 6–16 seeded words ending in a full stop.
pub fn sentence(rng: &mut Rng) -> String {
    let n = 6 + rng.below(11);
    let words: Vec<&str> = (0..n).map(|_| WORDS[rng.below(WORDS.len())]).collect();
    format!("{}.", words.join(" "))
}

/// Writes `files` seeded news files of a few KB under `root` in folders of
/// 100; about a third of the paragraphs come from a shared pool, so there
/// is real cross-document dedup work. Returns the total bytes.
pub fn corpus(root: &Path, files: usize, seed: u64) -> u64 {
    let mut rng = Rng::new(seed);
    let pool: Vec<String> = (0..500).map(|_| sentence(&mut rng)).collect();
    let mut total = 0;
    for i in 0..files {
        let mut text = String::new();
        for _ in 0..(10 + rng.below(30)) {
            if rng.below(3) == 0 {
                text.push_str(&pool[rng.below(pool.len())]);
            } else {
                text.push_str(&sentence(&mut rng));
            }
            text.push('\n');
        }
        total += text.len() as u64;
        put(root, format!("s{:03}/f{i:05}.txt", i / 100), text);
    }
    total
}

/// A fresh temporary folder.
pub fn tmp() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

/// `clean IN --out OUT` plus `extra`.
pub fn clean_to(input: &Path, out: &Path, extra: &[&str]) -> Run {
    let mut args: Vec<&OsStr> = vec!["clean".as_ref(), input.as_os_str(), "--out".as_ref(), out.as_os_str()];
    args.extend(extra.iter().map(OsStr::new));
    run(&args)
}

/// Starts `clean INPUT --out OUT -j2` (stderr piped).
pub fn spawn_clean(input: &Path, out: &Path) -> std::process::Child {
    let mut c = command(&[OsStr::new("clean"), input.as_os_str(), "--out".as_ref(), out.as_os_str(), "-j2".as_ref()]);
    c.stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap()
}

/// An uninterrupted run into `out`: its tree and how long it took.
pub fn reference_run(input: &Path, out: &Path) -> (BTreeMap<Vec<u8>, Vec<u8>>, Duration) {
    let started = Instant::now();
    clean_to(input, out, &["-j2"]).expect_code(0);
    (tree(out), started.elapsed())
}

/// Files under `root` with a final name (temporary files left out).
pub fn finals(root: &Path) -> BTreeMap<Vec<u8>, Vec<u8>> {
    tree(root)
        .into_iter()
        .filter(|(k, _)| !k.rsplit(|&b| b == b'/').next().unwrap().starts_with(b".newsdedup-"))
        .collect()
}

/// The signal tests share one corpus size: 3000 files of a few KB (two
/// windows). On this machine a run takes seconds, dominated by `openat`.
pub const SIGNAL_CORPUS: usize = 3000;

/// When to send a signal: a delay after the start, or after the first
/// window started writing (the mtime of `out/s000` changed: a temporary
/// file was created or renamed there; or, for an `--out` the run stages, an
/// `s000` appeared in its hidden staging folder beside `out`). Fixed delays
/// alone land before the first write on a loaded machine.
#[derive(Clone, Copy, Debug)]
pub enum At {
    /// This long after the start.
    Start(Duration),
    /// This long after the first window started writing.
    Writing(Duration),
    /// As soon as the run has installed its handler for this signal (read
    /// off `SigCgt` in `/proc/PID/status`): before the run has written
    /// anything, whatever the machine's load. A fixed delay may land before
    /// the handler (the signal then ends the process) or after a run that a
    /// quiet machine finished early (exit 0).
    Caught(libc::c_int),
}

/// Whether process `pid` catches signal `sig` (its `SigCgt` mask).
pub fn catches(pid: u32, sig: libc::c_int) -> bool {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("SigCgt:"))
        .and_then(|mask| u64::from_str_radix(mask.trim(), 16).ok())
        .is_some_and(|mask| mask & (1 << (sig - 1)) != 0)
}

/// The hidden staging folders beside `out` (`.newsdedup-<pid>-<n>.tmp/`,
/// where a run builds an `--out` that did not exist) holding an `s000`.
pub fn staged(out: &Path) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(out.parent().unwrap()) else { return Vec::new() };
    entries
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(".newsdedup-") && e.path().join("s000").is_dir())
        .map(|e| e.path())
        .collect()
}

/// The modification time of `dir`, when it exists.
pub fn stamp(dir: &Path) -> Option<(i64, i64)> {
    fs::metadata(dir).ok().map(|m| (m.mtime(), m.mtime_nsec()))
}

/// Spawns a run into `out` and returns it at the point `at`.
pub fn spawn_until(input: &Path, out: &Path, at: At) -> std::process::Child {
    let before = stamp(&out.join("s000"));
    let child = spawn_clean(input, out);
    match at {
        At::Start(d) => sleep(d),
        At::Caught(sig) => {
            let deadline = Instant::now() + Duration::from_secs(120);
            while !catches(child.id(), sig) && Instant::now() < deadline {
                sleep(Duration::from_micros(200));
            }
        }
        At::Writing(d) => {
            let deadline = Instant::now() + Duration::from_secs(120);
            while stamp(&out.join("s000")) == before && staged(out).is_empty() && Instant::now() < deadline {
                sleep(Duration::from_millis(1));
            }
            sleep(d);
        }
    }
    child
}
