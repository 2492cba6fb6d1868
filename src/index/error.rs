//! The index's error type: every variant names the file concerned.

use std::io;
use std::path::{Path, PathBuf};

use super::FORMAT_VERSION;

/// Every variant names the file concerned.
#[derive(Debug, thiserror::Error)]
#[allow(missing_docs)] // each variant's message is its documentation
pub enum IndexError {
    /// Reading or writing a file failed. (The cause is part of the message
    /// and deliberately not a `source`, so `{:#}` prints it once.)
    #[error("I/O error on {path}: {cause}")]
    Io { path: PathBuf, cause: io::Error },
    /// `--index` names an existing file that is not a folder.
    #[error("{path} is not a directory (an index is a folder)")]
    NotADirectory { path: PathBuf },
    /// Another process holds the index.
    #[error("index {path} is locked by another process")]
    Locked { path: PathBuf },
    /// A file fails its checks (checksum, length, order).
    #[error("corrupt index file {path}: {reason}")]
    Corrupt { path: PathBuf, reason: String },
    /// A file or folder that is not a newsdedup index.
    #[error("{path} is not a newsdedup index file")]
    Foreign { path: PathBuf },
    /// Written by a newer version.
    #[error("{path} has unsupported format version {found} (this build reads up to {FORMAT_VERSION})")]
    UnsupportedVersion { path: PathBuf, found: u32 },
    /// The caller passed something unusable.
    #[error("invalid input for {path}: {reason}")]
    Invalid { path: PathBuf, reason: String },
}

/// Result alias of the index.
pub(super) type Result<T> = std::result::Result<T, IndexError>;

/// An I/O error about `path`.
pub(super) fn io_err(path: &Path) -> impl FnOnce(io::Error) -> IndexError + '_ {
    move |cause| IndexError::Io { path: path.to_path_buf(), cause }
}

/// A file that fails its checks.
pub(super) fn corrupt(path: &Path, reason: impl Into<String>) -> IndexError {
    IndexError::Corrupt { path: path.to_path_buf(), reason: reason.into() }
}
