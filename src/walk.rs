//! Inputs in corpus order.
//!
//! Corpus order is the path relative to the input root, compared byte-wise
//! (not component-wise: `a-c` sorts before `a/b`, as `-` is 0x2D and `/` is
//! 0x2F). The whole list of paths is collected and sorted before any file is
//! read; that list is `O(files)` memory, never file contents.
//!
//! Hidden files and folders (name starting with `.`) are skipped, except the
//! root itself. Symbolic links are not followed unless asked (the root
//! itself, named by the user, always is); followed links
//! are checked for loops (walkdir). Entries that are skipped for a reason the
//! user may not expect (a symlink not followed, a FIFO or device, a walk
//! error) are returned as [`Skipped`] so the report can list them.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use globset::{Glob, GlobSet, GlobSetBuilder};
use rayon::prelude::*;
use walkdir::WalkDir;

use crate::error::Error;

/// Which files of a tree are inputs.
#[derive(Clone, Debug, Default)]
pub struct WalkOptions {
    /// Follow symbolic links (with loop detection).
    pub follow: bool,
    /// Accepted extensions (without dot, case-insensitive, may contain dots
    /// such as `jsonl.gz`); empty accepts every extension.
    pub exts: Vec<String>,
    /// Glob filters on the relative path; `!pattern` excludes.
    pub globs: Filter,
}

/// Include/exclude globs on relative paths.
#[derive(Clone, Debug, Default)]
pub struct Filter {
    include: Option<GlobSet>,
    exclude: Option<GlobSet>,
}

impl Filter {
    /// Builds the filter from patterns; a pattern starting with `!` excludes.
    pub fn new(patterns: &[String]) -> Result<Filter, globset::Error> {
        let (mut inc, mut exc) = (GlobSetBuilder::new(), GlobSetBuilder::new());
        let (mut n_inc, mut n_exc) = (0, 0);
        for p in patterns {
            if let Some(neg) = p.strip_prefix('!') {
                exc.add(Glob::new(neg)?);
                n_exc += 1;
            } else {
                inc.add(Glob::new(p)?);
                n_inc += 1;
            }
        }
        Ok(Filter {
            include: if n_inc > 0 { Some(inc.build()?) } else { None },
            exclude: if n_exc > 0 { Some(exc.build()?) } else { None },
        })
    }

    fn accepts(&self, rel: &Path) -> bool {
        self.include.as_ref().is_none_or(|g| g.is_match(rel)) && self.exclude.as_ref().is_none_or(|g| !g.is_match(rel))
    }
}

/// A file to read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InputFile {
    /// Path to open.
    pub path: PathBuf,
    /// Path relative to the input root (for a single-file input, its name).
    pub rel: PathBuf,
    /// Size from the directory walk (may change before it is read).
    pub size: u64,
}

/// An entry that was not taken as input.
#[derive(Debug)]
pub struct Skipped {
    /// Path relative to the root, when known.
    pub rel: PathBuf,
    /// Why it was skipped.
    pub error: Error,
    /// True when this is a failure (changes the exit code); false for a
    /// deliberate skip such as an unfollowed symlink.
    pub failure: bool,
}

/// The result of walking the input.
#[derive(Debug, Default)]
pub struct Walk {
    /// Files in corpus order.
    pub files: Vec<InputFile>,
    /// Entries skipped, in the order met.
    pub skipped: Vec<Skipped>,
    /// The folders of the walk that hold a backup manifest
    /// ([`crate::backups::MANIFEST`], hidden, so never an input), as the walk
    /// listed them: later steps need not look for one in the others. `None`
    /// when the root is a file (its folder was not listed).
    pub manifests: Option<HashSet<PathBuf>>,
}

fn is_hidden(name: &std::ffi::OsStr) -> bool {
    name.as_encoded_bytes().first() == Some(&b'.')
}

fn ext_matches(rel: &Path, exts: &[String]) -> bool {
    if exts.is_empty() {
        return true;
    }
    let name = rel.file_name().map(|n| n.to_string_lossy().to_lowercase()).unwrap_or_default();
    exts.iter()
        .any(|e| name.len() > e.len() + 1 && name.ends_with(e.as_str()) && name[..name.len() - e.len()].ends_with('.'))
}

/// `path` relative to `root`, of which the walk made it a descendant
/// (`root` joined with names): the bytes after `root` and its separator.
/// `Path::strip_prefix` compares the two component by component, ~1% of a
/// tree run's samples (182,715 files), on the walk's one thread; it is the
/// fallback when the bytes do not line up so.
fn relative(path: &Path, root: &Path) -> PathBuf {
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        let (p, r) = (path.as_os_str().as_bytes(), root.as_os_str().as_bytes());
        let rest =
            p.strip_prefix(r).and_then(|rest| if r.ends_with(b"/") { Some(rest) } else { rest.strip_prefix(b"/") });
        if let Some(rest) = rest.filter(|rest| !rest.is_empty() && !rest.starts_with(b"/")) {
            return PathBuf::from(std::ffi::OsStr::from_bytes(rest));
        }
    }
    path.strip_prefix(root).unwrap_or(path).to_path_buf()
}

/// Lists the input files under `root` (or `root` itself when it is a file).
pub fn walk(root: &Path, opts: &WalkOptions) -> Walk {
    let mut out = Walk::default();
    let mut manifests = HashSet::new();
    let mut root_is_dir = false;
    let walker = WalkDir::new(root).follow_links(opts.follow).follow_root_links(true);
    let entries = walker.into_iter().filter_entry(|e| {
        if e.depth() > 0 && e.file_name() == crate::backups::MANIFEST {
            manifests.insert(e.path().parent().unwrap_or(root).to_path_buf());
        }
        e.depth() == 0 || !is_hidden(e.file_name())
    });
    for entry in entries {
        let entry = match entry {
            Ok(e) => e,
            Err(err) => {
                let path = err.path().unwrap_or(root).to_path_buf();
                let rel = path.strip_prefix(root).unwrap_or(&path).to_path_buf();
                let source = std::io::Error::other(err.to_string());
                out.skipped.push(Skipped { rel, error: Error::io(&path, source), failure: true });
                continue;
            }
        };
        let rel = if entry.depth() == 0 { PathBuf::from(entry.file_name()) } else { relative(entry.path(), root) };
        // The root was named by the user: a symlink there is followed (the
        // walk descends into a linked folder), as ripgrep and fd do.
        let root_target = (entry.depth() == 0 && entry.file_type().is_symlink())
            .then(|| std::fs::metadata(entry.path()).ok())
            .flatten();
        let ft = root_target.as_ref().map_or(entry.file_type(), std::fs::Metadata::file_type);
        if ft.is_dir() {
            root_is_dir |= entry.depth() == 0;
            continue;
        }
        if ft.is_symlink() {
            let error = Error::invalid(entry.path(), "symbolic link not followed (use --follow)");
            out.skipped.push(Skipped { rel, error, failure: false });
            continue;
        }
        if !ft.is_file() {
            let error = Error::invalid(entry.path(), "not a regular file");
            out.skipped.push(Skipped { rel, error, failure: true });
            continue;
        }
        if entry.depth() > 0 && (!ext_matches(&rel, &opts.exts) || !opts.globs.accepts(&rel)) {
            continue;
        }
        // The size of a file below the root is read after the walk (see below).
        let size = root_target.map_or(UNKNOWN, |m| m.len());
        out.files.push(InputFile { path: entry.into_path(), rel, size });
    }
    out.manifests = root_is_dir.then_some(manifests);
    out.files.sort_by(|a, b| a.rel.as_os_str().as_encoded_bytes().cmp(b.rel.as_os_str().as_encoded_bytes()));
    // One `stat` per file, by path, was most of the walk (62% of its
    // samples on a 182,715-file tree, ~0.45 s on one thread at the start of
    // a run): done after it, on the caller's rayon pool. A file not listed
    // through a link has the type the walk saw, so its own metadata is the
    // one to read (its target's when links are followed).
    out.files.par_iter_mut().filter(|f| f.size == UNKNOWN).for_each(|f| {
        let meta = if opts.follow { std::fs::metadata(&f.path) } else { std::fs::symlink_metadata(&f.path) };
        f.size = meta.map_or(0, |m| m.len());
    });
    out
}

/// A size not read yet (no file has it: `u64::MAX` bytes).
const UNKNOWN: u64 = u64::MAX;

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn relative_is_strip_prefix() {
        for (root, path) in [
            ("c", "c/a/b.txt"),
            ("c/", "c/a.txt"),
            ("./c", "./c/a.txt"),
            ("/", "/etc/x"),
            ("a/./b", "a/./b/f"),
            ("c", "c//a.txt"),
            ("c", "cd/a.txt"),
            ("c/d", "c/d"),
        ] {
            let (root, path) = (Path::new(root), Path::new(path));
            assert_eq!(relative(path, root), path.strip_prefix(root).unwrap_or(path), "{root:?} {path:?}");
        }
    }

    fn rels(w: &Walk) -> Vec<String> {
        w.files.iter().map(|f| f.rel.to_string_lossy().into_owned()).collect()
    }

    #[test]
    fn corpus_order_is_bytewise_on_relative_paths_and_hidden_is_skipped() {
        let dir = tempfile::tempdir().unwrap();
        for p in ["a/b.txt", "a-c.txt", "B.txt", ".hidden/x.txt", "a/.h.txt", "a/a.txt"] {
            let path = dir.path().join(p);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, "x").unwrap();
        }
        let w = walk(dir.path(), &WalkOptions::default());
        assert_eq!(rels(&w), ["B.txt", "a-c.txt", "a/a.txt", "a/b.txt"]);
        // Sizes are read after the walk, each for its own file.
        fs::write(dir.path().join("a/b.txt"), "four").unwrap();
        let sizes: Vec<u64> = walk(dir.path(), &WalkOptions::default()).files.iter().map(|f| f.size).collect();
        assert_eq!(sizes, [1, 1, 1, 4]);
    }

    #[test]
    fn ext_and_glob_filters() {
        let dir = tempfile::tempdir().unwrap();
        for p in ["x.txt", "y.TXT", "z.md", "s/a.jsonl.gz", "s/b.txt"] {
            let path = dir.path().join(p);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, "x").unwrap();
        }
        let opts = WalkOptions { exts: vec!["txt".into(), "jsonl.gz".into()], ..Default::default() };
        assert_eq!(rels(&walk(dir.path(), &opts)), ["s/a.jsonl.gz", "s/b.txt", "x.txt", "y.TXT"]);
        let opts =
            WalkOptions { globs: Filter::new(&["s/**".into(), "!**/*.gz".into()]).unwrap(), ..Default::default() };
        assert_eq!(rels(&walk(dir.path(), &opts)), ["s/b.txt"]);
    }

    #[cfg(unix)]
    #[test]
    fn symlinks_are_skipped_unless_followed_and_loops_are_reported() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join("d")).unwrap();
        fs::write(dir.path().join("d/f.txt"), "x").unwrap();
        std::os::unix::fs::symlink(dir.path().join("d"), dir.path().join("d/loop")).unwrap();
        std::os::unix::fs::symlink(dir.path().join("d/f.txt"), dir.path().join("link.txt")).unwrap();
        let w = walk(dir.path(), &WalkOptions::default());
        assert_eq!(rels(&w), ["d/f.txt"]);
        assert_eq!(w.skipped.len(), 2);
        assert!(w.skipped.iter().all(|s| !s.failure));
        let w = walk(dir.path(), &WalkOptions { follow: true, ..Default::default() });
        assert_eq!(rels(&w), ["d/f.txt", "link.txt"]);
        // A followed link's size is its target's.
        assert_eq!(w.files.iter().map(|f| f.size).collect::<Vec<_>>(), [1, 1]);
        assert_eq!(w.skipped.len(), 1, "{:?}", w.skipped);
        assert!(w.skipped[0].error.to_string().contains("loop"), "{}", w.skipped[0].error);
    }

    /// A symlink named as the input itself was asked for, as in ripgrep and
    /// fd: it is followed, with or without `--follow`.
    #[cfg(unix)]
    #[test]
    fn a_symlink_given_as_the_root_is_followed() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join("d")).unwrap();
        fs::write(dir.path().join("d/f.txt"), "xyz").unwrap();
        std::os::unix::fs::symlink(dir.path().join("d/f.txt"), dir.path().join("link.txt")).unwrap();
        std::os::unix::fs::symlink(dir.path().join("d"), dir.path().join("dlink")).unwrap();
        let w = walk(&dir.path().join("link.txt"), &WalkOptions::default());
        assert_eq!(rels(&w), ["link.txt"]);
        assert_eq!(w.files[0].size, 3);
        assert!(w.skipped.is_empty(), "{:?}", w.skipped);
        let w = walk(&dir.path().join("dlink"), &WalkOptions::default());
        assert_eq!(rels(&w), ["f.txt"]);
        assert!(w.skipped.is_empty(), "{:?}", w.skipped);
    }
}
