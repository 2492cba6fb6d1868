//! A new `--out` folder built under a hidden name beside it and renamed to
//! its name when the run ends: the tree appears whole, and until then no
//! one else writes in it, so its files are created under their names
//! ([`super::write_new`]: `open(O_CREAT | O_EXCL)`, write, close) instead of
//! as unnamed files linked to their names.
//!
//! Why: on the bench machine's ext4, creating the 400 MB bench tree's
//! 182,715 files at `-j2` took 0.3–0.7 s less wall time and 0.4–0.9 s less
//! system time this way, five rounds of five, taking turns with the same
//! binary writing unnamed files (issue 18, fifty-eighth session; an unnamed
//! file is put on the file system's orphan list and taken off it at the
//! link, two more updates per file, under one lock for both threads).
//!
//! What a user sees:
//! * A run that ends, completed, refused, failed or interrupted (SIGINT,
//!   SIGTERM), renames the folder to `--out` when it holds a file, as the
//!   run would have left those files in `--out`; an empty one is removed
//!   with the folders the run made above it.
//! * A run killed outright (SIGKILL, a second SIGINT) leaves the hidden
//!   folder (`.newsdedup-<pid>-<n>.tmp`, like a temporary file) and no
//!   `--out`; the next run staging an `--out` in the same folder removes it
//!   once its process is gone ([`super::remove_stale_temps`]).
//! * When `--out` appears while the run works (another run made it), the
//!   staged tree is moved into it file by file, each replacing a file of the
//!   same name, as writing into the existing folder would have.
//! * An error while writing names the file by its path under `--out`.
//!
//! An `--out` that exists is written in place as before (unnamed files
//! linked to their names, replacing what is there): only a folder the run
//! makes is staged.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use super::{create_out_dir, folder_of, remove_empty_dirs, sweep_stale_temps, temp_name};
use crate::error::{Error, Result};

/// A staged `--out`: the hidden folder the run writes to and the name it
/// takes when the run ends.
#[derive(Debug)]
pub struct Staged {
    stage: PathBuf,
    out: PathBuf,
    /// The topmost folder made above `--out` (removed again when nothing is
    /// published).
    made: Option<PathBuf>,
}

impl Staged {
    /// Stages `out` when it does not exist (and names a folder: not `/` or
    /// a path ending in `..`): makes its parent folders and a hidden
    /// folder beside it, after removing the stale ones of killed runs there.
    /// `None` when `out` exists: it is written in place.
    pub fn create(out: &Path) -> Result<Option<Staged>> {
        if out.file_name().is_none() || fs::symlink_metadata(out).is_ok() {
            return Ok(None);
        }
        let parent = folder_of(out);
        let made = create_out_dir(parent)?;
        sweep_stale_temps(parent);
        for _ in 0..1000 {
            let stage = temp_name(parent);
            match fs::create_dir(&stage) {
                Ok(()) => return Ok(Some(Staged { stage, out: out.to_path_buf(), made })),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) => {
                    made.as_deref().map(remove_empty_dirs);
                    return Err(Error::io(parent, e));
                }
            }
        }
        Err(Error::io(parent, io::Error::new(io::ErrorKind::AlreadyExists, "cannot create a staging folder")))
    }

    /// The hidden folder the run writes to.
    pub fn path(&self) -> &Path {
        &self.stage
    }

    /// Ends the run: `result` is passed on, after the staged tree was
    /// published (when it holds a file) or removed. A failure to publish
    /// is the run's error when it had none.
    pub fn finish<T>(self, result: Result<T>) -> Result<T> {
        let published = if result.is_ok() || holds_a_file(&self.stage) {
            self.publish()
        } else {
            remove_empty_dirs(&self.stage);
            self.made.as_deref().map(remove_empty_dirs);
            Ok(())
        };
        match (result, published) {
            (Ok(t), Ok(())) => Ok(t),
            (Ok(_), Err(e)) => Err(e),
            (Err(e), _) => Err(e.rebased(&self.stage, &self.out)),
        }
    }

    /// Renames the hidden folder to `--out`, or moves its content into an
    /// `--out` that appeared meanwhile.
    fn publish(&self) -> Result<()> {
        match rename_new(&self.stage, &self.out) {
            Ok(()) => Ok(()),
            Err(e) if matches!(e.raw_os_error(), Some(libc::EEXIST | libc::ENOTEMPTY)) => merge(&self.stage, &self.out),
            // Left hidden: the message says where the output is.
            Err(e) => Err(Error::Invalid {
                path: self.out.clone(),
                message: format!("cannot rename the staged output {} to it: {e}", self.stage.display()),
            }),
        }
    }
}

/// True when `dir` or a folder under it holds anything but folders.
fn holds_a_file(dir: &Path) -> bool {
    let Ok(entries) = fs::read_dir(dir) else { return false };
    entries.flatten().any(|e| !e.file_type().is_ok_and(|t| t.is_dir()) || holds_a_file(&e.path()))
}

/// Renames `from` to `to`, refusing (`EEXIST`) when `to` exists.
fn rename_new(from: &Path, to: &Path) -> io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        let (f, t) = (crate::folder::c_path(from)?, crate::folder::c_path(to)?);
        // SAFETY: both paths are NUL-terminated and outlive the call.
        let r =
            unsafe { libc::renameat2(libc::AT_FDCWD, f.as_ptr(), libc::AT_FDCWD, t.as_ptr(), libc::RENAME_NOREPLACE) };
        if r == 0 {
            return Ok(());
        }
        let e = io::Error::last_os_error();
        // A file system without the flag says EINVAL: checked, then renamed.
        if e.raw_os_error() != Some(libc::EINVAL) {
            return Err(e);
        }
    }
    if fs::symlink_metadata(to).is_ok() {
        return Err(io::Error::from_raw_os_error(libc::EEXIST));
    }
    fs::rename(from, to)
}

/// Moves the tree `from` into the folder `into`: a name missing there is
/// renamed to it, a file replaces the file of its name, a folder is merged
/// into the folder of its name. `from` is removed.
fn merge(from: &Path, into: &Path) -> Result<()> {
    let entries = fs::read_dir(from).map_err(|e| Error::io(from, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| Error::io(from, e))?;
        let (src, dest) = (entry.path(), into.join(entry.file_name()));
        let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
        match rename_new(&src, &dest) {
            Ok(()) => {}
            Err(e) if matches!(e.raw_os_error(), Some(libc::EEXIST | libc::ENOTEMPTY)) => {
                if is_dir && fs::metadata(&dest).is_ok_and(|m| m.is_dir()) {
                    merge(&src, &dest)?;
                } else {
                    fs::rename(&src, &dest).map_err(|e| Error::io(&dest, e))?;
                }
            }
            Err(e) => return Err(Error::io(&dest, e)),
        }
    }
    fs::remove_dir(from).map_err(|e| Error::io(from, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_out_appears_whole_when_the_run_ends() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("a/b/out");
        let staged = Staged::create(&out).unwrap().expect("a missing --out is staged");
        assert!(staged.path().starts_with(dir.path().join("a/b")));
        super::super::write_new(&staged.path().join("x/1.txt"), b"one\n").unwrap();
        assert!(!out.exists(), "nothing under --out before the run ends");
        staged.finish(Ok(())).unwrap();
        assert_eq!(fs::read(out.join("x/1.txt")).unwrap(), b"one\n");
        assert_eq!(fs::read_dir(dir.path().join("a/b")).unwrap().count(), 1, "no hidden folder left");
        // An existing --out is not staged.
        assert!(Staged::create(&out).unwrap().is_none());
    }

    #[test]
    fn a_failed_run_publishes_what_it_wrote_and_leaves_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let failed = || Err::<(), _>(Error::Interrupted);
        // Nothing written: no --out, and the folders made above it go too.
        let staged = Staged::create(&dir.path().join("made/out")).unwrap().unwrap();
        fs::create_dir_all(staged.path().join("empty/folders")).unwrap();
        assert!(matches!(staged.finish(failed()), Err(Error::Interrupted)));
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
        // Files written: they are published, and the run's error kept.
        let out = dir.path().join("out");
        let staged = Staged::create(&out).unwrap().unwrap();
        super::super::write_new(&staged.path().join("sub/1.txt"), b"one\n").unwrap();
        assert!(matches!(staged.finish(failed()), Err(Error::Interrupted)));
        assert_eq!(fs::read(out.join("sub/1.txt")).unwrap(), b"one\n");
        // A write error names the file by its path under --out.
        let out = dir.path().join("out2");
        let staged = Staged::create(&out).unwrap().unwrap();
        super::super::write_new(&staged.path().join("1.txt"), b"one\n").unwrap();
        let full = Error::io(&staged.path().join("sub/2.txt"), io::Error::from_raw_os_error(libc::ENOSPC));
        let e = staged.finish(Err::<(), _>(full)).unwrap_err();
        assert!(e.to_string().starts_with(&format!("{}: ", out.join("sub/2.txt").display())), "{e}");
    }

    #[test]
    fn an_out_made_meanwhile_receives_the_tree_file_by_file() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        let staged = Staged::create(&out).unwrap().unwrap();
        for (rel, text) in [("1.txt", "new 1"), ("sub/2.txt", "new 2"), ("sub/deep/3.txt", "new 3")] {
            super::super::write_new(&staged.path().join(rel), text.as_bytes()).unwrap();
        }
        // Another run made --out meanwhile, with a file of the same name
        // and one this run does not write.
        fs::create_dir_all(out.join("sub")).unwrap();
        fs::write(out.join("sub/2.txt"), "old 2").unwrap();
        fs::write(out.join("sub/other.txt"), "other").unwrap();
        staged.finish(Ok(())).unwrap();
        for (rel, text) in
            [("1.txt", "new 1"), ("sub/2.txt", "new 2"), ("sub/deep/3.txt", "new 3"), ("sub/other.txt", "other")]
        {
            assert_eq!(fs::read_to_string(out.join(rel)).unwrap(), text, "{rel}");
        }
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1, "the hidden folder is gone");
    }

    #[test]
    fn the_folder_of_a_killed_run_is_removed_by_the_next_and_a_live_ones_kept() {
        let dir = tempfile::tempdir().unwrap();
        // Process ids above the kernel's limit (2^22) are never running.
        let killed =
            dir.path().join(format!("{}{}-0{}", super::super::TEMP_PREFIX, 1 << 23, super::super::TEMP_SUFFIX));
        fs::create_dir_all(killed.join("sub")).unwrap();
        fs::write(killed.join("sub/1.txt"), "partial run").unwrap();
        let first = Staged::create(&dir.path().join("out")).unwrap().unwrap();
        assert!(!killed.exists(), "a killed run's staging folder is removed");
        // A running process's (this one's) is kept.
        let second = Staged::create(&dir.path().join("out2")).unwrap().unwrap();
        assert!(first.path().exists() && second.path().exists());
    }
}
