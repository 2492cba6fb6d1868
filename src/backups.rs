//! Backups made by `--in-place --backup SUFFIX`, and how later runs know them.
//!
//! Before it makes any backup, an in-place run records the name of every
//! backup it may create in a manifest, `.newsdedup-backups`, in the folder
//! of that backup (hidden, so never an input itself), one file name per line
//! (`%`, `#`, CR and LF escaped as `%25`, `%23`, `%0D`, `%0A`). The manifest
//! is written atomically and only grows; recording before backing up means a
//! run killed midway leaves no backup unrecorded.
//!
//! Every later run, in place or not, with or without `--backup`, reads the
//! manifests of the folders its inputs are in and passes over the files they
//! name: a backup is never read, rewritten or removed, and the summary and
//! report count the backups left alone. The user need not remember the
//! suffix, and a file that merely ends like a backup is not mistaken for one.
//! Deleting a manifest makes its backups ordinary files again.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::walk::InputFile;
use crate::walk::Walk;
use crate::write::{folder_of, with_suffix, write_atomic};

/// The manifest's file name.
pub const MANIFEST: &str = ".newsdedup-backups";

const HEADER: &[u8] =
    b"# newsdedup: backups made by --in-place runs in this folder; later runs never read, rewrite or remove them\n";

/// The backups recorded in the folders of a set of inputs.
#[derive(Debug, Default)]
pub struct Known {
    dirs: HashMap<PathBuf, HashSet<Vec<u8>>>,
}

fn escape(name: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(name.len());
    for &b in name {
        match b {
            b'%' | b'#' | b'\r' | b'\n' => out.extend_from_slice(format!("%{b:02X}").as_bytes()),
            _ => out.push(b),
        }
    }
    out
}

fn unescape(line: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(line.len());
    let mut i = 0;
    while i < line.len() {
        let hex = line.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok());
        match (line[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    out
}

/// The names a manifest records (none when it does not exist).
fn read_manifest(dir: &Path) -> Result<HashSet<Vec<u8>>> {
    let path = dir.join(MANIFEST);
    let bytes = match fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(HashSet::new()),
        Err(e) => return Err(Error::io(&path, e)),
    };
    Ok(bytes.split(|&b| b == b'\n').filter(|l| !l.is_empty() && l[0] != b'#').map(unescape).collect())
}

impl Known {
    /// Reads the manifests of the folders holding `files`; with `listed`
    /// (the folders a walk saw holding one, [`Walk::manifests`]), only
    /// those, instead of trying every folder.
    pub fn load(files: &[InputFile], listed: Option<&HashSet<PathBuf>>) -> Result<Known> {
        let mut dirs = HashMap::new();
        if listed.is_some_and(HashSet::is_empty) {
            return Ok(Known { dirs });
        }
        for f in files {
            let dir = folder_of(&f.path);
            if !dirs.contains_key(dir) && listed.is_none_or(|l| l.contains(dir)) {
                dirs.insert(dir.to_path_buf(), read_manifest(dir)?);
            }
        }
        Ok(Known { dirs })
    }

    /// True when `path` is a recorded backup.
    pub fn contains(&self, path: &Path) -> bool {
        let name = path.file_name().map(|n| n.as_encoded_bytes()).unwrap_or_default();
        self.dirs.get(folder_of(path)).is_some_and(|names| names.contains(name))
    }
}

/// Passes over the recorded backups among the files of `walk` (one input)
/// and returns how many were left alone. A single input file that is a
/// recorded backup is read when named on purpose, but never cleaned in
/// place (`single`, `in_place`).
pub fn pass_over(walk: &mut Walk, single: bool, in_place: bool) -> Result<u64> {
    let known = Known::load(&walk.files, walk.manifests.as_ref())?;
    let files = &mut walk.files;
    if single {
        if let Some(f) = files.first().filter(|f| in_place && known.contains(&f.path)) {
            return Err(Error::invalid(
                &f.path,
                format!("is a backup made by an earlier --in-place run (listed in {MANIFEST}); it is never rewritten"),
            ));
        }
        return Ok(0);
    }
    if known.dirs.is_empty() {
        return Ok(0);
    }
    let before = files.len();
    files.retain(|f| !known.contains(&f.path));
    Ok((before - files.len()) as u64)
}

/// `--in-place --backup SUFFIX`: earlier backups are not inputs, and an
/// existing backup is never overwritten (a second run would otherwise
/// replace the original with the first run's output).
pub fn check(listing: &mut Walk, suffix: &str) -> Result<()> {
    let is_backup = |f: &InputFile| f.rel.as_os_str().as_encoded_bytes().ends_with(suffix.as_bytes());
    listing.files.retain(|f| !is_backup(f));
    for f in &listing.files {
        let backup = with_suffix(&f.path, suffix);
        if backup.exists() {
            let msg = "backup already exists; move it away or choose another --backup suffix (nothing was changed)";
            return Err(Error::invalid(&backup, msg));
        }
    }
    Ok(())
}

/// Records the backups (`file` + `suffix`) that an in-place run may make of
/// `files`, in each folder's manifest, before any is made.
pub fn record(files: &[InputFile], suffix: &str) -> Result<()> {
    let mut by_dir: HashMap<&Path, Vec<Vec<u8>>> = HashMap::new();
    for f in files {
        let mut name = f.path.file_name().map(|n| n.as_encoded_bytes().to_vec()).unwrap_or_default();
        name.extend_from_slice(suffix.as_bytes());
        by_dir.entry(folder_of(&f.path)).or_default().push(name);
    }
    let mut dirs: Vec<_> = by_dir.into_iter().collect();
    dirs.sort();
    for (dir, names) in dirs {
        let path = dir.join(MANIFEST);
        let known = read_manifest(dir)?;
        let mut bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => HEADER.to_vec(),
            Err(e) => return Err(Error::io(&path, e)),
        };
        let before = bytes.len();
        for name in names.iter().filter(|n| !known.contains(*n)) {
            bytes.extend_from_slice(&escape(name));
            bytes.push(b'\n');
        }
        if bytes.len() > before {
            write_atomic(&path, &bytes, None)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_through_the_escapes() {
        for name in [&b"a.txt.orig"[..], b"50%#x\r\ny", b"\xff.bak"] {
            assert_eq!(unescape(&escape(name)), name);
            assert!(!escape(name).contains(&b'\n'));
        }
    }

    #[test]
    fn recorded_backups_are_known_and_others_are_not() {
        let dir = tempfile::tempdir().unwrap();
        let file = |name: &str| InputFile { path: dir.path().join(name), rel: name.into(), size: 0 };
        record(&[file("a.txt"), file("#b.txt")], ".orig").unwrap();
        record(&[file("a.txt")], ".orig").unwrap();
        let known = Known::load(&[file("a.txt.orig")], None).unwrap();
        assert!(known.contains(&dir.path().join("a.txt.orig")));
        assert!(known.contains(&dir.path().join("#b.txt.orig")));
        assert!(!known.contains(&dir.path().join("c.txt.orig")));
        let manifest = fs::read_to_string(dir.path().join(MANIFEST)).unwrap();
        assert_eq!(manifest.lines().count(), 3, "{manifest}");
    }

    #[test]
    fn the_walk_tells_which_folders_hold_a_manifest() {
        let dir = tempfile::tempdir().unwrap();
        for sub in ["a", "b"] {
            fs::create_dir(dir.path().join(sub)).unwrap();
            fs::write(dir.path().join(sub).join("x.txt"), "text").unwrap();
            fs::write(dir.path().join(sub).join("x.txt.orig"), "the original").unwrap();
        }
        let in_a = InputFile { path: dir.path().join("a/x.txt"), rel: "a/x.txt".into(), size: 0 };
        record(&[in_a], ".orig").unwrap();
        let mut listing = crate::walk::walk(dir.path(), &Default::default());
        assert_eq!(listing.manifests, Some(HashSet::from([dir.path().join("a")])));
        assert_eq!(pass_over(&mut listing, false, false).unwrap(), 1);
        let rels: Vec<_> = listing.files.iter().map(|f| f.rel.clone()).collect();
        assert_eq!(rels, [PathBuf::from("a/x.txt"), "b/x.txt".into(), "b/x.txt.orig".into()]);
        // Only the folders listed are read: with none listed, nothing is known.
        let known = Known::load(&listing.files, Some(&HashSet::new())).unwrap();
        assert!(!known.contains(&dir.path().join("a/x.txt.orig")));
        // A single file's folder is not listed by its walk: it is read.
        let single = crate::walk::walk(&dir.path().join("a/x.txt.orig"), &Default::default());
        assert_eq!(single.manifests, None);
    }
}
