//! Files opened by their folder: each thread keeps the last folder it read
//! from (and, separately, the last it wrote to) open, and opens a file by
//! its name in that folder (`openat`) instead of by its whole path.
//!
//! A corpus is read and written a folder at a time (corpus order, and a
//! window is cut into contiguous ranges per thread), so most opens find
//! their folder kept. An open by path looks up every component of the path
//! in the kernel (`target/bench/400mb-s1/tree/metro-herald/2016-04-10/…`:
//! six for a file read, twice as many for a file written, the unnamed
//! file's folder and then the link): ~10% of the samples of a `-j1` tree
//! run. By folder, the bench tree's system time went down 8% (issue 18,
//! benches/JSONL.md sixteenth pass).
//!
//! Only the threads of a run's pool keep folders ([`keep_on_this_thread`],
//! [`crate::threads`]): they end with the run, and the folders they kept
//! close with them. Any other thread (a caller's, in a process that lives
//! on: the Python package, a Spark worker) opens the folder for the one
//! file and closes it, so no folder stays open (a mount kept busy) after a
//! run returns.
//!
//! A folder is held by an `O_PATH` descriptor: it grants no access by
//! itself, and what is opened through it is checked as an open by path
//! would be. When a kept folder no longer exists (removed during the run),
//! an open through it fails (`ENOENT`; `EPERM` for an unnamed file on
//! Linux 6.18); callers then forget it and try the path once more, as
//! before this cache. A folder *renamed* during the
//! run is still the kept one: the files read or written in it at that
//! moment are those of the folder under its new name.

use std::cell::{Cell, RefCell};
use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::LocalKey;

/// A thread's kept folder: its path as asked and its descriptor.
pub(crate) type Kept = RefCell<Option<(PathBuf, Arc<OwnedFd>)>>;

thread_local! {
    /// Whether this thread keeps folders ([`keep_on_this_thread`]).
    static KEEPS: Cell<bool> = const { Cell::new(false) };
    /// The folder a thread last read a file from.
    pub(crate) static READ: Kept = const { RefCell::new(None) };
    /// The folder a thread last wrote a file to.
    pub(crate) static WRITE: Kept = const { RefCell::new(None) };
}

/// Makes the calling thread keep its last folders (a worker of a run's pool).
pub(crate) fn keep_on_this_thread() {
    KEEPS.with(|k| k.set(true));
}

/// The folder `dir`, from `cache` when it is the one kept, else opened
/// (and, on a thread that keeps folders, kept in place of the previous one).
pub(crate) fn open(cache: &'static LocalKey<Kept>, dir: &Path) -> io::Result<Arc<OwnedFd>> {
    cache.with(|kept| {
        if let Some((path, fd)) = &*kept.borrow()
            && path == dir
        {
            return Ok(Arc::clone(fd));
        }
        let c = c_path(dir)?;
        // SAFETY: `c` is NUL-terminated and outlives the call.
        let raw = unsafe { libc::open(c.as_ptr(), libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC) };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `raw` is a descriptor just opened and owned by no one else.
        let fd = Arc::new(unsafe { OwnedFd::from_raw_fd(raw) });
        if KEEPS.with(Cell::get) {
            *kept.borrow_mut() = Some((dir.to_path_buf(), Arc::clone(&fd)));
        }
        Ok(fd)
    })
}

/// Forgets the folder `cache` keeps (it was found gone).
pub(crate) fn forget(cache: &'static LocalKey<Kept>) {
    cache.with(|kept| kept.borrow_mut().take());
}

/// `openat(dir, name, flags, mode)`.
pub(crate) fn open_at(dir: &OwnedFd, name: &CString, flags: i32, mode: u32) -> io::Result<OwnedFd> {
    // SAFETY: `name` is NUL-terminated and outlives the call; `dir` is open.
    let raw = unsafe { libc::openat(dir.as_raw_fd(), name.as_ptr(), flags | libc::O_CLOEXEC, mode) };
    if raw < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: as in `open`.
    Ok(unsafe { OwnedFd::from_raw_fd(raw) })
}

/// `path` for a system call (a path with a NUL byte is refused).
pub(crate) fn c_path(path: &Path) -> io::Result<CString> {
    CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains a NUL byte"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn only_a_thread_that_keeps_folders_keeps_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().to_path_buf();
        std::thread::spawn(move || {
            let first = open(&READ, &path).unwrap();
            assert!(!Arc::ptr_eq(&first, &open(&READ, &path).unwrap()), "opened for each file");
            assert!(READ.with(|k| k.borrow().is_none()));
            keep_on_this_thread();
            let first = open(&READ, &path).unwrap();
            assert!(Arc::ptr_eq(&first, &open(&READ, &path).unwrap()), "kept");
        })
        .join()
        .unwrap();
    }

    #[test]
    fn a_thread_keeps_its_last_folder_and_reopens_a_removed_one() {
        keep_on_this_thread();
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        fs::create_dir(&a).unwrap();
        fs::create_dir(&b).unwrap();
        let first = open(&READ, &a).unwrap();
        assert!(Arc::ptr_eq(&first, &open(&READ, &a).unwrap()), "kept");
        let other = open(&READ, &b).unwrap();
        assert!(!Arc::ptr_eq(&first, &other));
        // The kept folder is per cache: writing to `a` does not replace it.
        let w = open(&WRITE, &a).unwrap();
        assert!(Arc::ptr_eq(&other, &open(&READ, &b).unwrap()));
        assert!(!Arc::ptr_eq(&w, &first));

        // Removed: opening in it says ENOENT; once forgotten, the path is
        // opened anew (here a new folder under the same name).
        fs::write(b.join("x.txt"), "x").unwrap();
        let name = CString::new("x.txt").unwrap();
        assert!(open_at(&other, &name, libc::O_RDONLY, 0).is_ok());
        fs::remove_dir_all(&b).unwrap();
        let gone = open_at(&open(&READ, &b).unwrap(), &name, libc::O_RDONLY, 0).unwrap_err();
        assert_eq!(gone.raw_os_error(), Some(libc::ENOENT));
        forget(&READ);
        assert_eq!(open(&READ, &b).unwrap_err().kind(), io::ErrorKind::NotFound);
        fs::create_dir(&b).unwrap();
        fs::write(b.join("x.txt"), "y").unwrap();
        let fd = open_at(&open(&READ, &b).unwrap(), &name, libc::O_RDONLY, 0).unwrap();
        assert_eq!(io::read_to_string(fs::File::from(fd)).unwrap(), "y");
    }
}
