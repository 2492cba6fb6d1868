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
    /// Entries skipped, ordered by their relative path.
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
///
/// Without `--follow`, each folder is listed on its own (`fs::read_dir`), the
/// folders of one depth on the caller's rayon pool, so that a tree of many
/// folders is listed on every core (12,184 folders, 182,715 files: ~0.2 s on one
/// thread at the start of a run, before any file was read). With `--follow`,
/// one walkdir walker goes over the whole tree: its loop detection needs the
/// chain of folders above each entry. Either way the files are sorted into
/// corpus order, and the skipped entries by their relative path too (they
/// used to come in the order the file system listed them).
pub fn walk(root: &Path, opts: &WalkOptions) -> Walk {
    let mut found = Found::default();
    if opts.follow {
        found.visit(root, WalkDir::new(root).follow_links(true).follow_root_links(true), opts, None);
    } else {
        // The root alone (walkdir follows a link there and names errors as
        // for any entry); its folder, if it is one, is listed below.
        let mut dirs = Vec::new();
        found.visit(root, WalkDir::new(root).follow_root_links(true).max_depth(0), opts, Some(&mut dirs));
        found.absorb(list_dirs(root, dirs, opts));
    }
    let mut out =
        Walk { files: found.files, skipped: found.skipped, manifests: found.root_is_dir.then_some(found.manifests) };
    fn bytes(rel: &Path) -> &[u8] {
        rel.as_os_str().as_encoded_bytes()
    }
    // The files on the pool, and in place (no scratch list in fresh pages):
    // their relative paths within one walk are distinct, so the order is
    // the one a stable sort gives. A folder that failed twice is skipped
    // twice under one path: the skipped entries keep a stable sort.
    out.files.par_sort_unstable_by(|a, b| bytes(&a.rel).cmp(bytes(&b.rel)));
    out.skipped.sort_by(|a, b| bytes(&a.rel).cmp(bytes(&b.rel)));
    // With `--follow`, one `stat` per file, by path, was most of the walk
    // (62% of its samples on a 182,715-file tree, ~0.45 s on one thread at
    // the start of a run): done after it, on the caller's rayon pool (and
    // for a file whose size its folder's listing could not read). A file
    // not listed through a link has the type the walk saw, so its own
    // metadata is the one to read (its target's when links are followed).
    out.files.par_iter_mut().filter(|f| f.size == UNKNOWN).for_each(|f| {
        let meta = if opts.follow { std::fs::metadata(&f.path) } else { std::fs::symlink_metadata(&f.path) };
        f.size = meta.map_or(0, |m| m.len());
    });
    out
}

/// What the folders `dirs` (at or below `root`, links not followed below
/// it) hold, each listed on its own on the rayon pool, one depth at a time
/// (the subfolders found at one depth are listed next: no recursion, so a
/// deep tree needs no deep stack).
fn list_dirs(root: &Path, mut dirs: Vec<PathBuf>, opts: &WalkOptions) -> Found {
    let mut all = Found::default();
    while !dirs.is_empty() {
        // In pieces of a few folders: cut only as rayon cuts by itself
        // (into pieces as many as the threads, twice over; see
        // `FILES_PER_TASK` in `pipeline::text`), the last piece of a depth
        // could hold thousands of folders for one thread while the other
        // had none.
        let listed: Vec<(Found, Vec<PathBuf>)> = dirs
            .into_par_iter()
            .with_max_len(DIRS_PER_TASK)
            .map(|dir| {
                let mut found = Found::default();
                let subdirs = found.list(root, &dir, opts);
                (found, subdirs)
            })
            .collect();
        dirs = Vec::new();
        // Room for the whole depth at once, its pages faulted in on the
        // pool: grown by doubling, one folder at a time, the list of the
        // bench tree's 182,715 files (10 MB) was copied into fresh pages
        // at every step on one thread while the other waited (~0.17 s at
        // `-j2`, issue 18).
        crate::threads::reserve_touched(&mut all.files, listed.iter().map(|(f, _)| f.files.len()).sum());
        for (found, subdirs) in listed {
            all.absorb(found);
            dirs.extend(subdirs);
        }
    }
    all
}

/// Most folders one task of the walk lists.
const DIRS_PER_TASK: usize = 8;

/// What one or more walkers found.
#[derive(Default)]
struct Found {
    files: Vec<InputFile>,
    skipped: Vec<Skipped>,
    manifests: HashSet<PathBuf>,
    root_is_dir: bool,
}

impl Found {
    fn absorb(&mut self, other: Found) {
        // Taken as it is when this holds no file and no room was made
        // for it (the folders' listing taken into the root's): not copied
        // into fresh pages on one thread.
        if self.files.is_empty() && self.files.capacity() < other.files.len() {
            self.files = other.files;
        } else {
            self.files.extend(other.files);
        }
        self.skipped.extend(other.skipped);
        self.manifests.extend(other.manifests);
        self.root_is_dir |= other.root_is_dir;
    }

    /// Takes in what `walker` lists from `root` on. `dirs`: when given,
    /// the root, if it is a folder, is put there (to be listed by
    /// [`Found::list`]) rather than descended into.
    fn visit(&mut self, root: &Path, walker: WalkDir, opts: &WalkOptions, mut dirs: Option<&mut Vec<PathBuf>>) {
        let mut manifests = HashSet::new();
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
                    self.skipped.push(Skipped { rel, error: Error::io(&path, source), failure: true });
                    continue;
                }
            };
            let is_root = entry.depth() == 0;
            let rel = if is_root { PathBuf::from(entry.file_name()) } else { relative(entry.path(), root) };
            // The root was named by the user: a symlink there is followed (the
            // walk descends into a linked folder), as ripgrep and fd do.
            let root_target =
                (is_root && entry.file_type().is_symlink()).then(|| std::fs::metadata(entry.path()).ok()).flatten();
            let ft = root_target.as_ref().map_or(entry.file_type(), std::fs::Metadata::file_type);
            if ft.is_dir() {
                self.root_is_dir |= is_root;
                if let (true, Some(dirs)) = (is_root, dirs.as_deref_mut()) {
                    dirs.push(entry.into_path());
                }
                continue;
            }
            let size = root_target.map(|m| m.len());
            self.take(entry.into_path(), rel, ft, || size, !is_root, opts);
        }
        self.manifests.extend(manifests);
    }

    /// Records `path` (below `root`) as failed to list, worded as walkdir
    /// words such an error ("IO error for operation on PATH: ..."), so that
    /// both ways of walking read alike.
    fn unlisted(&mut self, root: &Path, path: &Path, err: &std::io::Error) {
        let message = format!("IO error for operation on {}: {err}", path.display());
        let error = Error::io(path, std::io::Error::other(message));
        self.skipped.push(Skipped { rel: relative(path, root), error, failure: true });
    }

    /// Lists the folder `dir` below `root` (or the root itself); returns its
    /// subfolders, not yet listed.
    fn list(&mut self, root: &Path, dir: &Path, opts: &WalkOptions) -> Vec<PathBuf> {
        let mut subdirs = Vec::new();
        let entries = match std::fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(err) => {
                self.unlisted(root, dir, &err);
                return subdirs;
            }
        };
        for entry in entries {
            // An entry that cannot be read is the folder's error; one whose
            // type cannot be told (it went away) is its own, as walkdir says.
            let (entry, ft) = match entry.map(|e| (e.file_type(), e)) {
                Ok((Ok(ft), entry)) => (entry, ft),
                Ok((Err(err), entry)) => {
                    self.unlisted(root, &entry.path(), &err);
                    continue;
                }
                Err(err) => {
                    self.unlisted(root, dir, &err);
                    continue;
                }
            };
            let name = entry.file_name();
            if is_hidden(&name) {
                if name == crate::backups::MANIFEST {
                    self.manifests.insert(dir.to_path_buf());
                }
                continue;
            }
            let path = dir.join(&name);
            if ft.is_dir() {
                subdirs.push(path);
                continue;
            }
            let rel = relative(&path, root);
            // A file's size by its name in the open folder (`fstatat`), here
            // on the pool, rather than by its whole path after the walk.
            self.take(path, rel, ft, || entry.metadata().ok().map(|m| m.len()), true, opts);
        }
        subdirs
    }

    /// Takes in one entry that is not a folder: a file (`size`, when it
    /// can tell, asked only of a file taken in), or a link or special file,
    /// skipped. `filtered`: whether `--ext` and
    /// `--glob` apply (not to the root, which the user named).
    fn take(
        &mut self,
        path: PathBuf,
        rel: PathBuf,
        ft: std::fs::FileType,
        size: impl FnOnce() -> Option<u64>,
        filtered: bool,
        opts: &WalkOptions,
    ) {
        if ft.is_symlink() {
            let error = Error::invalid(&path, "symbolic link not followed (use --follow)");
            self.skipped.push(Skipped { rel, error, failure: false });
        } else if !ft.is_file() {
            let error = Error::invalid(&path, "not a regular file");
            self.skipped.push(Skipped { rel, error, failure: true });
        } else if !filtered || (ext_matches(&rel, &opts.exts) && opts.globs.accepts(&rel)) {
            // A size not known yet is read after the walk (see `walk`).
            self.files.push(InputFile { path, rel, size: size().unwrap_or(UNKNOWN) });
        }
    }
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

    /// Without `--follow` every folder is listed on its own, in parallel;
    /// with it one walkdir walker goes over the tree. On a tree without
    /// links both must find the same files, sizes and manifest folders.
    #[test]
    fn folders_listed_in_parallel_find_what_one_walker_finds() {
        let dir = tempfile::tempdir().unwrap();
        let mut paths = vec![".hidden/x.txt".to_string(), "top.txt".into(), "e/.newsdedup-backups".into()];
        for a in 0..5 {
            for b in 0..4 {
                paths.push(format!("d{a}/s{b}/f{a}{b}.txt"));
                paths.push(format!("d{a}/s{b}/deeper/g.txt"));
            }
            paths.push(format!("d{a}/.h{a}/no.txt"));
            paths.push(format!("d{a}/{}", crate::backups::MANIFEST));
        }
        for (i, p) in paths.iter().enumerate() {
            let path = dir.path().join(p);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, "x".repeat(i)).unwrap();
        }
        fs::create_dir(dir.path().join("empty")).unwrap();
        // A deep chain of folders (listed one depth at a time, not recursively).
        let deep: PathBuf = std::iter::once("deep").chain(std::iter::repeat_n("d", 1000)).collect();
        fs::create_dir_all(dir.path().join(&deep)).unwrap();
        fs::write(dir.path().join(&deep).join("bottom.txt"), "b").unwrap();
        let parallel = walk(dir.path(), &WalkOptions::default());
        let serial = walk(dir.path(), &WalkOptions { follow: true, ..Default::default() });
        assert_eq!(parallel.files, serial.files);
        assert_eq!(parallel.files.len(), 42);
        assert!(parallel.files.iter().any(|f| f.rel == deep.join("bottom.txt")));
        assert!(parallel.skipped.is_empty() && serial.skipped.is_empty());
        let manifests = parallel.manifests.unwrap();
        assert_eq!(manifests, serial.manifests.unwrap());
        assert_eq!(manifests.len(), 6, "{manifests:?}");
        assert!(manifests.contains(&dir.path().join("d3")));
    }

    #[cfg(unix)]
    #[test]
    fn skipped_entries_come_in_path_order_from_every_folder() {
        let dir = tempfile::tempdir().unwrap();
        for d in ["b", "a/z", "a"] {
            fs::create_dir_all(dir.path().join(d)).unwrap();
            std::os::unix::fs::symlink("/nonexistent", dir.path().join(d).join("link")).unwrap();
        }
        let w = walk(dir.path(), &WalkOptions::default());
        let rels: Vec<_> = w.skipped.iter().map(|s| s.rel.to_string_lossy().into_owned()).collect();
        assert_eq!(rels, ["a/link", "a/z/link", "b/link"]);
        assert!(w.skipped.iter().all(|s| !s.failure && s.error.to_string().contains("not followed")));
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
