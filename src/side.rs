//! Side files: `--report`, `--explain` and `--rejects`.
//!
//! Where a side file goes ([`Target`]):
//!
//! * `-` (or `/dev/stdout`, `/dev/fd/1`, `/proc/self/fd/1`) is standard
//!   output, allowed only when standard output does not carry the cleaned
//!   data; `/dev/stderr` and its aliases are standard error.
//! * A path whose target is not a regular file (a FIFO, a device, anything
//!   else under `/dev` or `/proc`) is opened and written directly: it is
//!   never replaced, and nothing is created beside it.
//! * A regular file (or a name not yet taken) is written to a temporary file
//!   beside it and renamed into place when the run completes, so a failed
//!   run leaves no partial file under that name. A symbolic link is
//!   followed: its final target is replaced (keeping its permissions) and
//!   the link stays a link.
//!
//! [`check_paths`] refuses side files that would collide with each other,
//! with the cleaned output (`--out`) or with the input, before anything is
//! written.

use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::config::{Config, Input, Output};
use crate::error::{Error, Result};
use crate::write::{TempPath, check_side_file, resolve, sweep_stale_temps, temp_beside};

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
        if path.starts_with("/dev") || path.starts_with("/proc") {
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
        self.out.write_all(bytes).map_err(|e| Error::io(&self.path, e))
    }

    /// Flushes, and renames a temporary file into place.
    pub fn commit(self) -> Result<()> {
        let path = self.path;
        let inner = self.out.into_inner().map_err(|e| Error::io(&path, e.into_error()))?;
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

/// Refuses side files that would overwrite each other, the cleaned output
/// or the input, and `-` when standard output carries the data. Called
/// before anything is created or written.
pub fn check_paths(cfg: &Config) -> Result<()> {
    let sides: Vec<(&str, &PathBuf)> =
        [("--report", &cfg.report), ("--explain", &cfg.explain), ("--rejects", &cfg.rejects)]
            .into_iter()
            .filter_map(|(flag, p)| p.as_ref().map(|p| (flag, p)))
            .collect();
    let mut seen: Vec<(&str, &PathBuf, Option<PathBuf>)> = Vec::new();
    for (flag, path) in sides {
        let target = Target::of(path).map_err(|e| Error::io(path, e))?;
        if target == Target::Stdout && cfg.output == Output::Stdout {
            return Err(Error::invalid(
                path,
                format!("{flag}: standard output carries the cleaned data; give a file name (or --out DIR)"),
            ));
        }
        let resolved = match &target {
            Target::Atomic(p) => Some(resolve(p).map_err(|e| Error::io(path, e))?),
            Target::Direct(p) => fs::canonicalize(p).ok(),
            _ => None,
        };
        let atomic = matches!(target, Target::Atomic(_));
        for (other, other_path, other_resolved) in &seen {
            let same_stream = target == Target::Stdout && Target::of(other_path).ok() == Some(Target::Stdout);
            if same_stream || (resolved.is_some() && resolved == *other_resolved) {
                return Err(Error::invalid(path, format!("{flag} and {other} name the same file; give each its own")));
            }
        }
        if let (true, Some(r), Output::Dir(out)) = (atomic, &resolved, &cfg.output) {
            let out_r = resolve(out).map_err(|e| Error::io(out, e))?;
            if r.starts_with(&out_r) {
                return Err(Error::invalid(
                    path,
                    format!("{flag} is inside --out {}: it could overwrite a cleaned file", out.display()),
                ));
            }
        }
        if let (true, Input::Path(root)) = (atomic, &cfg.input) {
            check_side_file(root, path, flag)?;
        }
        seen.push((flag, path, resolved));
    }
    Ok(())
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

    #[test]
    fn collisions_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("in");
        fs::create_dir(&input).unwrap();
        let mut cfg = Config::new(Input::Path(input.clone()), Output::Dir(dir.path().join("out")));
        cfg.report = Some(dir.path().join("r.json"));
        cfg.explain = Some(dir.path().join("e.jsonl"));
        assert!(check_paths(&cfg).is_ok());
        cfg.rejects = Some(dir.path().join("./e.jsonl"));
        assert!(check_paths(&cfg).unwrap_err().to_string().contains("--rejects and --explain name the same file"));
        cfg.rejects = Some(dir.path().join("out/x/rejects.jsonl"));
        assert!(check_paths(&cfg).unwrap_err().to_string().contains("inside --out"));
        cfg.rejects = Some(input.join("rejects.jsonl"));
        assert!(check_paths(&cfg).unwrap_err().to_string().contains("would write into the input"));
        cfg.rejects = None;
        cfg.report = Some("-".into());
        assert!(check_paths(&cfg).is_ok(), "stdout is free with --out");
        cfg.output = Output::Stdout;
        assert!(check_paths(&cfg).unwrap_err().to_string().contains("standard output carries the cleaned data"));
    }
}
