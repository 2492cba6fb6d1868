//! Output: every file is written to a temporary name in its final folder and
//! renamed into place, so a file under its final name is always complete.
//! On Linux a new file is instead an unnamed file (`O_TMPFILE`) linked to its
//! final name when complete (`unnamed`): the same guarantee, less work. A
//! new `--out` is staged (`stage`): built in a hidden folder renamed to its
//! name when the run ends, its files are created under their names.
//!
//! Temporary files are hidden (`.newsdedup-<pid>-<n>.tmp`) and removed when
//! the write fails. A run killed with SIGKILL can leave one behind; it never
//! carries a final name, the walker skips hidden files, and the next run
//! removes stale ones in every folder it writes to (output files, shards,
//! in-place inputs, side files). A temporary is stale when the process
//! named in it is no longer running (on Linux, `/proc/<pid>` is gone), so a
//! concurrent run's files in flight are left alone.
//! Files are not `fsync`ed: a process crash cannot leave a partial file under
//! a final name (rename is atomic), and a machine crash is out of scope for
//! a re-runnable cleaning step.

use std::fs;
use std::io::{self, Write};
use std::path::{Component, Path, PathBuf};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{Error, Result};

mod stage;
pub mod stream;
#[cfg(target_os = "linux")]
mod unnamed;

pub use stage::Staged;

/// Prefix of temporary file names.
pub const TEMP_PREFIX: &str = ".newsdedup-";
/// Suffix of temporary file names.
pub const TEMP_SUFFIX: &str = ".tmp";

/// Writes `bytes` to `path` atomically: on Linux as an unnamed file linked
/// to its name when complete (see `write/unnamed.rs`), elsewhere (or where
/// the file system has no unnamed files) as a temporary file renamed to it.
/// An existing `path` is replaced. The parent folder is created when
/// missing. When `like` is given, the new file takes that file's
/// permissions; otherwise it gets the usual mode of a new file (0666 less
/// the umask), as `cp` would give it.
///
/// Cost: four system calls per file (open, write, linkat or rename, close)
/// in a folder that exists; the folder is only created after the open
/// reports it missing.
pub fn write_atomic(path: &Path, bytes: &[u8], like: Option<&fs::Metadata>) -> Result<()> {
    write_atomic_with(path, like, |f| f.write_all(bytes))
}

/// [`write_atomic`] for content produced by `fill`, which writes it to the
/// new file (streaming: the content need not be in memory at once).
pub fn write_atomic_with(
    path: &Path,
    like: Option<&fs::Metadata>,
    fill: impl FnOnce(&mut fs::File) -> io::Result<()>,
) -> Result<()> {
    #[cfg(target_os = "linux")]
    if let Some(mut new) = unnamed::create(path)? {
        complete(&mut new.file, path, like, fill)?;
        return unnamed::publish(new, path);
    }
    write_renamed(path, like, fill)
}

/// Writes `bytes` to a new file `path` in a folder no one else writes to
/// until the run ends (a staged `--out`, [`Staged`]): created under its
/// name (`O_CREAT | O_EXCL`), written and closed, three system calls and no
/// temporary or unnamed file; the folder is created when missing. The file
/// gets the usual mode of a new file. A write that fails removes the file.
/// Where `path` exists after all, it is replaced as by [`write_atomic`].
pub fn write_new(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut file = match create_new(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return write_atomic(path, bytes, None),
        Err(e) => return Err(Error::io(path, e)),
    };
    file.write_all(bytes).map_err(|e| {
        let _ = fs::remove_file(path);
        Error::io(path, e)
    })
}

/// Creates the new file `path` (its folder when missing), by its name in
/// the folder the thread keeps ([`crate::folder`]) on Linux.
fn create_new(path: &Path) -> io::Result<fs::File> {
    #[cfg(target_os = "linux")]
    {
        use crate::folder::{self, WRITE};
        let (dir, name) = (folder_of(path), path.file_name().map(|n| folder::c_path(Path::new(n))));
        if let Some(name) = name {
            let name = name?;
            let open = || {
                let folder = folder::open(&WRITE, dir)?;
                folder::open_at(&folder, &name, libc::O_CREAT | libc::O_EXCL | libc::O_WRONLY, 0o666)
            };
            return match open() {
                Ok(fd) => Ok(fs::File::from(fd)),
                // The folder is missing (or the one kept was removed).
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    folder::forget(&WRITE);
                    fs::create_dir_all(dir)?;
                    open().map(fs::File::from)
                }
                Err(e) => Err(e),
            };
        }
    }
    match fs::OpenOptions::new().write(true).create_new(true).open(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            fs::create_dir_all(folder_of(path))?;
            fs::OpenOptions::new().write(true).create_new(true).open(path)
        }
        done => done,
    }
}

/// Writes the content of the new `file` for `path` and gives it the
/// permissions of `like`.
fn complete(
    file: &mut fs::File,
    path: &Path,
    like: Option<&fs::Metadata>,
    fill: impl FnOnce(&mut fs::File) -> io::Result<()>,
) -> Result<()> {
    fill(file).map_err(|e| Error::io(path, e))?;
    if let Some(meta) = like {
        file.set_permissions(meta.permissions()).map_err(|e| Error::io(path, e))?;
    }
    Ok(())
}

/// [`write_atomic_with`] by a temporary file renamed to `path`: the way to
/// replace a file that exists (in place), where linking a new name would
/// fail first.
fn write_renamed(
    path: &Path,
    like: Option<&fs::Metadata>,
    fill: impl FnOnce(&mut fs::File) -> io::Result<()>,
) -> Result<()> {
    let (mut file, tmp) = create_temp(folder_of(path))?;
    complete(&mut file, path, like, fill)?;
    drop(file);
    fs::rename(&tmp.0, path).map_err(|e| Error::io(path, e))?;
    tmp.keep();
    Ok(())
}

/// Distinguishes the temporary files of one process.
static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// The process id, asked of the kernel once (`getpid` is a system call).
fn pid() -> u32 {
    static PID: OnceLock<u32> = OnceLock::new();
    *PID.get_or_init(std::process::id)
}

/// A temporary file's path; the file is removed on drop unless kept.
pub struct TempPath(PathBuf);

impl TempPath {
    /// The file was renamed away: nothing to remove.
    fn keep(self) {
        std::mem::forget(self);
    }

    /// Where the temporary file is.
    pub fn path(&self) -> &Path {
        &self.0
    }

    /// Renames the temporary file to `dest` (atomically replacing it).
    pub fn persist(self, dest: &Path) -> Result<()> {
        fs::rename(&self.0, dest).map_err(|e| Error::io(dest, e))?;
        self.keep();
        Ok(())
    }
}

/// A new temporary file in the folder of `dest` (created when missing), for
/// content streamed in and then [`TempPath::persist`]ed to `dest`. It gets
/// the usual mode of a new file (0666 less the umask).
pub fn temp_beside(dest: &Path) -> Result<(fs::File, TempPath)> {
    create_temp(folder_of(dest))
}

/// The folder holding `path`: its parent, or `.` for a bare file name.
pub fn folder_of(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// `path` with `suffix` appended to its last component (a backup's name).
pub fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

impl Drop for TempPath {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.0);
    }
}

/// A temporary file name in `dir` not used before by this process.
fn temp_name(dir: &Path) -> PathBuf {
    let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
    dir.join(format!("{TEMP_PREFIX}{}-{n}{TEMP_SUFFIX}", pid()))
}

/// Creates a new temporary file in `dir` (`.newsdedup-<pid>-<n>.tmp`),
/// creating `dir` when it is missing. The name is unique within the process;
/// a leftover of an earlier process with the same pid is stepped over.
fn create_temp(dir: &Path) -> Result<(fs::File, TempPath)> {
    let mut made_dir = false;
    for _ in 0..1000 {
        let tmp = temp_name(dir);
        match fs::OpenOptions::new().write(true).create_new(true).open(&tmp) {
            Ok(f) => return Ok((f, TempPath(tmp))),
            Err(e) if e.kind() == io::ErrorKind::NotFound && !made_dir => {
                fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
                made_dir = true;
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(Error::io(dir, e)),
        }
    }
    Err(Error::io(dir, io::Error::new(io::ErrorKind::AlreadyExists, "cannot create a temporary file")))
}

/// Replaces `path` in place, atomically; with a backup suffix the original
/// is first kept as `path` + suffix (see [`make_backup`]).
pub fn replace_in_place(path: &Path, bytes: &[u8], backup: Option<&str>) -> Result<()> {
    let meta = fs::metadata(path).map_err(|e| Error::io(path, e))?;
    if let Some(suffix) = backup {
        make_backup(path, suffix)?;
    }
    write_renamed(path, Some(&meta), |f| f.write_all(bytes))
}

/// Keeps the original of `path` as `path` + `suffix`: a hard link (the very
/// original inode), or a copy where links are not possible. An existing
/// backup is never overwritten.
pub fn make_backup(path: &Path, suffix: &str) -> Result<()> {
    let backup = with_suffix(path, suffix);
    if backup.exists() {
        return Err(Error::invalid(&backup, "backup already exists"));
    }
    if fs::hard_link(path, &backup).is_err() {
        fs::copy(path, &backup).map_err(|e| Error::io(&backup, e))?;
    }
    Ok(())
}

/// Removes a file that has nothing left, in place; with a backup suffix it
/// is renamed to its backup instead.
pub fn remove_in_place(path: &Path, backup: Option<&str>) -> Result<()> {
    match backup {
        Some(suffix) => fs::rename(path, with_suffix(path, suffix)).map_err(|e| Error::io(path, e)),
        None => fs::remove_file(path).map_err(|e| Error::io(path, e)),
    }
}

/// Removes stale temporary files left in `dir` by a killed run: those of
/// a process that is no longer running (see [`is_stale`]), and the staging
/// folders of a killed run's `--out` ([`Staged`]) with all they hold.
pub fn remove_stale_temps(dir: &Path) -> io::Result<usize> {
    let mut removed = 0;
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        if !is_stale(&name.to_string_lossy()) {
            continue;
        }
        // The entry's own type: a symbolic link is removed, never followed.
        let gone = match entry.file_type()?.is_dir() {
            true => fs::remove_dir_all(entry.path()),
            false => fs::remove_file(entry.path()),
        };
        removed += usize::from(gone.is_ok());
    }
    Ok(removed)
}

/// Scale-out steps running in this process (see [`NoSweep`]).
static NO_SWEEP: AtomicU64 = AtomicU64::new(0);

/// While one lives, [`sweep_stale_temps`] removes nothing. A scale-out step
/// ([`crate::scale`]) holds one: its folders are shared by tasks on other
/// machines, where the process id in a temporary's name says nothing about
/// whether its writer is still running.
pub struct NoSweep(());

impl NoSweep {
    /// Stops sweeping until dropped.
    pub fn new() -> NoSweep {
        NO_SWEEP.fetch_add(1, Ordering::SeqCst);
        NoSweep(())
    }
}

impl Default for NoSweep {
    fn default() -> NoSweep {
        NoSweep::new()
    }
}

impl Drop for NoSweep {
    fn drop(&mut self) {
        NO_SWEEP.fetch_sub(1, Ordering::SeqCst);
    }
}

/// [`remove_stale_temps`], where failing to list `dir` is no matter (it may
/// not exist yet). Nothing while a [`NoSweep`] lives.
pub fn sweep_stale_temps(dir: &Path) {
    if NO_SWEEP.load(Ordering::SeqCst) > 0 {
        return;
    }
    let dir = if dir.as_os_str().is_empty() { Path::new(".") } else { dir };
    let _ = remove_stale_temps(dir);
}

/// True for the name of one of our temporary files whose process is gone:
/// not this process, and (where `/proc` tells) not any running one. A name
/// without a readable pid is stale.
pub fn is_stale(name: &str) -> bool {
    let Some(middle) = name.strip_prefix(TEMP_PREFIX).and_then(|n| n.strip_suffix(TEMP_SUFFIX)) else {
        return false;
    };
    let Some(pid) = middle.split('-').next().and_then(|p| p.parse::<u32>().ok()) else { return true };
    if pid == self::pid() {
        return false;
    }
    let proc_fs = Path::new("/proc/self").exists();
    !(proc_fs && Path::new("/proc").join(pid.to_string()).exists())
}

/// Creates the `--out` folder; returns the topmost folder this created (to
/// remove again when the run is refused), `None` when it existed.
pub fn create_out_dir(out: &Path) -> Result<Option<PathBuf>> {
    let mut top = None;
    let mut p = Some(out);
    while let Some(dir) = p.filter(|d| !d.as_os_str().is_empty() && !d.exists()) {
        top = Some(dir.to_path_buf());
        p = dir.parent();
    }
    fs::create_dir_all(out).map_err(|e| Error::io(out, e))?;
    Ok(top)
}

/// Removes `dir` and the folders under it when they hold no file (a
/// refused or failed run leaves no empty `--out` behind); a folder holding
/// anything is kept.
pub fn remove_empty_dirs(dir: &Path) {
    if let Ok(entries) = fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                remove_empty_dirs(&e.path());
            }
        }
    }
    let _ = fs::remove_dir(dir);
}

/// Makes `path` absolute and resolves `.`, `..` and symlinks as far as the
/// path exists (the rest is appended lexically).
pub fn resolve(path: &Path) -> io::Result<PathBuf> {
    let abs = if path.is_absolute() { path.to_path_buf() } else { std::env::current_dir()?.join(path) };
    let mut norm = PathBuf::new();
    for c in abs.components() {
        match c {
            Component::ParentDir => {
                norm.pop();
            }
            Component::CurDir => {}
            other => norm.push(other.as_os_str()),
        }
    }
    let mut existing = norm.clone();
    let mut rest = Vec::new();
    let mut found = existing.canonicalize();
    while found.is_err() {
        match (existing.file_name().map(ToOwned::to_owned), existing.parent()) {
            (Some(name), Some(parent)) => {
                rest.push(name);
                existing = parent.to_path_buf();
                found = existing.canonicalize();
            }
            _ => return Ok(norm),
        }
    }
    let mut out = found?;
    out.extend(rest.iter().rev());
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_creates_parents_and_leaves_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("a/b/c.txt");
        write_atomic(&target, b"hello\n", None).unwrap();
        assert_eq!(fs::read(&target).unwrap(), b"hello\n");
        write_atomic(&target, b"again\n", None).unwrap();
        assert_eq!(fs::read(&target).unwrap(), b"again\n");
        assert_eq!(fs::read_dir(dir.path().join("a/b")).unwrap().count(), 1);
    }

    #[test]
    fn in_place_with_backup_keeps_the_original() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("x.txt");
        fs::write(&f, "old").unwrap();
        replace_in_place(&f, b"new", Some(".bak")).unwrap();
        assert_eq!(fs::read_to_string(&f).unwrap(), "new");
        assert_eq!(fs::read_to_string(dir.path().join("x.txt.bak")).unwrap(), "old");
        // A second replacement never overwrites the backup of the original.
        assert!(replace_in_place(&f, b"newer", Some(".bak")).is_err());
        assert_eq!(fs::read_to_string(dir.path().join("x.txt.bak")).unwrap(), "old");
        assert_eq!(fs::read_to_string(&f).unwrap(), "new");
    }

    #[test]
    fn stale_temps_are_removed_and_live_ones_kept() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(".newsdedup-abc.tmp"), "x").unwrap();
        fs::write(dir.path().join("keep.txt"), "x").unwrap();
        let mine = format!("{TEMP_PREFIX}{}-7{TEMP_SUFFIX}", pid());
        fs::write(dir.path().join(&mine), "x").unwrap();
        assert_eq!(remove_stale_temps(dir.path()).unwrap(), 1);
        assert!(dir.path().join("keep.txt").exists());
        assert!(dir.path().join(&mine).exists(), "a temporary of a running process is kept");
        if Path::new("/proc/self").exists() {
            assert!(!is_stale(&format!("{TEMP_PREFIX}1-0{TEMP_SUFFIX}")), "pid 1 is running");
        }
    }

    #[test]
    fn a_created_out_dir_is_removed_when_empty() {
        let dir = tempfile::tempdir().unwrap();
        let top = create_out_dir(&dir.path().join("a/b/c")).unwrap().unwrap();
        assert_eq!(top, dir.path().join("a"));
        remove_empty_dirs(&top);
        assert!(!top.exists());
        assert_eq!(create_out_dir(dir.path()).unwrap(), None);
    }
}
