//! Tests whose environment may be missing: root (to switch to `nobody`,
//! to mount a tmpfs) and `../shared/corpora`.
//!
//! Such a test is `#[ignore]`d, with its need in the reason and in its name
//! (`needs_root_*`, `needs_tmpfs_*`, `needs_corpora_*`), so `cargo test`
//! reports it as ignored, never as passed. `.ci/run` runs each group with
//! `cargo test -- --ignored <prefix>` when the environment is there and
//! prints `SKIPPED` with the group when it is not. Run by hand with
//! `--ignored` without the environment, such a test fails saying what it
//! needs.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// True when the tests run as root.
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// Demands root (the test was asked for with `--ignored`).
pub fn require_root() {
    assert!(is_root(), "this test needs root (it switches to nobody); run it as root, or leave it ignored");
}

/// A tmpfs mounted for one test, unmounted on drop.
pub struct Tmpfs(PathBuf);

impl Tmpfs {
    /// Mounts a tmpfs of `size` (as `mount -o size=`) on `dir`; panics
    /// saying what is missing when it cannot.
    pub fn mount(dir: &Path, size: &str) -> Tmpfs {
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        assert!(mounted, "this test needs to mount a tmpfs (root, CAP_SYS_ADMIN); leave it ignored where it cannot");
        Tmpfs(dir.to_path_buf())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

/// `../shared/corpora/<name>` next to the repository; panics saying so
/// when it is absent.
pub fn corpus(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpora").join(name);
    assert!(dir.is_dir(), "this test needs {}; leave it ignored without it", dir.display());
    dir
}
