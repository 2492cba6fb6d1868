//! Side files: `--report`, `--explain` and `--rejects`.
//!
//! Where a side file goes ([`Target`]):
//!
//! * `-` (or `/dev/stdout`, `/dev/fd/1`, `/proc/self/fd/1`) is standard
//!   output, allowed only when standard output does not carry the cleaned
//!   data; `/dev/stderr` and its aliases are standard error.
//! * A path whose target is not a regular file (a FIFO, a device), and any
//!   path under `/dev/fd` or `/proc` (a descriptor of the process, whatever
//!   it points to), is opened and written directly: it is never replaced,
//!   and nothing is created beside it. Other paths under `/dev` are
//!   classified like any other: `/dev/null` is a device, while a file in a
//!   file system mounted there (`/dev/shm`) is a regular file.
//! * A regular file (or a name not yet taken) is written to a temporary file
//!   beside it and renamed into place when the run completes, so a failed
//!   run leaves no partial file under that name. A symbolic link is
//!   followed: its final target is replaced (keeping its permissions) and
//!   the link stays a link.
//!
//! [`crate::config::Config::validate`] refuses side files that would collide with each other,
//! with the cleaned output (`--out`) or with the input, before anything is
//! written.

use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::write::{TempPath, sweep_stale_temps, temp_beside};

/// Where a side file is written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
    /// A FIFO, a device or another special file: written directly.
    Direct(PathBuf),
    /// A regular file (existing or not), replaced atomically: the final
    /// path, with symbolic links followed.
    Atomic(PathBuf),
}

/// Most symbolic links followed to find a side file's target.
const MAX_LINKS: usize = 40;

impl Target {
    /// Classifies `path` (see the module docs).
    pub fn of(path: &Path) -> io::Result<Target> {
        let s = path.as_os_str();
        if s == "-" || s == "/dev/stdout" || s == "/dev/fd/1" || s == "/proc/self/fd/1" {
            return Ok(Target::Stdout);
        }
        if s == "/dev/stderr" || s == "/dev/fd/2" || s == "/proc/self/fd/2" {
            return Ok(Target::Stderr);
        }
        if path.starts_with("/dev/fd") || path.starts_with("/proc") {
            return Ok(Target::Direct(path.to_path_buf()));
        }
        match fs::metadata(path) {
            Ok(m) if m.is_dir() => Err(io::Error::new(io::ErrorKind::IsADirectory, "is a directory")),
            Ok(m) if !m.is_file() => Ok(Target::Direct(path.to_path_buf())),
            Ok(_) => Ok(Target::Atomic(fs::canonicalize(path)?)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Target::Atomic(follow_links(path)?)),
            Err(e) => Err(e),
        }
    }
}

/// Follows a chain of symbolic links that ends at a name not yet taken.
fn follow_links(path: &Path) -> io::Result<PathBuf> {
    let mut p = path.to_path_buf();
    for _ in 0..MAX_LINKS {
        match fs::symlink_metadata(&p) {
            Ok(m) if m.file_type().is_symlink() => {
                let to = fs::read_link(&p)?;
                p = match p.parent() {
                    Some(dir) => dir.join(to),
                    None => to,
                };
            }
            _ => return Ok(p),
        }
    }
    Err(io::Error::new(io::ErrorKind::InvalidInput, "too many levels of symbolic links"))
}

/// A side file being written; [`SideFile::commit`] completes it.
pub struct SideFile {
    out: BufWriter<Box<dyn Write + Send>>,
    tmp: Option<(TempPath, PathBuf, Option<fs::Permissions>)>,
    path: PathBuf,
}

impl SideFile {
    /// Opens the side file at `path`, if one is asked for.
    pub fn create(path: &Option<PathBuf>) -> Result<Option<SideFile>> {
        let Some(path) = path else { return Ok(None) };
        let err = |e| Error::io(path, e);
        let (inner, tmp): (Box<dyn Write + Send>, _) = match Target::of(path).map_err(err)? {
            Target::Stdout => (Box::new(io::stdout()), None),
            Target::Stderr => (Box::new(io::stderr()), None),
            Target::Direct(p) => (Box::new(fs::OpenOptions::new().write(true).open(&p).map_err(err)?), None),
            Target::Atomic(dest) => {
                if let Some(dir) = dest.parent() {
                    sweep_stale_temps(dir);
                }
                let perms = fs::metadata(&dest).ok().map(|m| m.permissions());
                let (file, tmp): (File, TempPath) = temp_beside(&dest)?;
                (Box::new(file), Some((tmp, dest, perms)))
            }
        };
        Ok(Some(SideFile { out: BufWriter::with_capacity(1 << 16, inner), tmp, path: path.clone() }))
    }

    /// Writes `bytes`; an error names the path.
    pub fn write(&mut self, bytes: &[u8]) -> Result<()> {
        self.out.write_all(bytes).map_err(|e| Error::write(&self.path, e))
    }

    /// The path as given (`-` for standard output).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Flushes, and renames a temporary file into place.
    pub fn commit(self) -> Result<()> {
        let path = self.path;
        let inner = self.out.into_inner().map_err(|e| Error::write(&path, e.into_error()))?;
        drop(inner);
        if let Some((tmp, dest, perms)) = self.tmp {
            if let Some(perms) = perms {
                fs::set_permissions(tmp.path(), perms).map_err(|e| Error::io(&path, e))?;
            }
            tmp.persist(&dest)?;
        }
        Ok(())
    }
}

impl Write for SideFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.out.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_by_kind() {
        assert_eq!(Target::of(Path::new("-")).unwrap(), Target::Stdout);
        assert_eq!(Target::of(Path::new("/dev/stdout")).unwrap(), Target::Stdout);
        assert_eq!(Target::of(Path::new("/dev/stderr")).unwrap(), Target::Stderr);
        assert_eq!(Target::of(Path::new("/dev/null")).unwrap(), Target::Direct("/dev/null".into()));
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().canonicalize().unwrap();
        assert!(Target::of(&base).is_err(), "a folder is not a side file");
        assert_eq!(Target::of(&base.join("new.json")).unwrap(), Target::Atomic(base.join("new.json")));
        #[cfg(unix)]
        {
            // A chain of links, the last one dangling: its final target.
            std::os::unix::fs::symlink("b.json", base.join("a.json")).unwrap();
            std::os::unix::fs::symlink(base.join("c.json"), base.join("b.json")).unwrap();
            assert_eq!(Target::of(&base.join("a.json")).unwrap(), Target::Atomic(base.join("c.json")));
            fs::write(base.join("c.json"), "old").unwrap();
            assert_eq!(Target::of(&base.join("a.json")).unwrap(), Target::Atomic(base.join("c.json")));
        }
    }

    /// A report written to the tmpfs at `/dev/shm` is an ordinary file (it
    /// was once opened as a device, without creating it, and the run failed).
    #[test]
    #[cfg(target_os = "linux")]
    fn a_file_under_dev_shm_is_a_regular_file() {
        let dir = tempfile::tempdir_in("/dev/shm").unwrap();
        let path = dir.path().join("report.json");
        assert_eq!(Target::of(&path).unwrap(), Target::Atomic(path.clone()));
        fs::write(&path, "old").unwrap();
        assert_eq!(Target::of(&path).unwrap(), Target::Atomic(path.clone()));
        assert_eq!(Target::of(Path::new("/dev/fd/5")).unwrap(), Target::Direct("/dev/fd/5".into()));
    }
}
