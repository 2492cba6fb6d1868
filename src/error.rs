//! Error types and exit codes.
//!
//! Every error about a file carries its path, and the byte offset or line
//! when one is known. Per-file errors do not stop a run: they are reported,
//! the run goes on, and the exit code says that something was skipped.

use std::io;
use std::path::{Path, PathBuf};

use crate::read::DecodeError;

/// Exit codes of the `newsdedup` command.
pub mod exit {
    /// Everything was read and written.
    pub const SUCCESS: i32 = 0;
    /// The run completed, but some inputs were skipped or rejected (bad file,
    /// bad JSON line, ...): each one was reported on stderr and in the report.
    pub const PARTIAL: i32 = 1;
    /// Usage error, or a fatal error that stopped the run (output not
    /// writable, index locked, ...).
    pub const FATAL: i32 = 2;
    /// Interrupted by SIGINT, SIGTERM or SIGHUP: the run stopped between
    /// files. Every file under its final name is complete; files not yet
    /// reached were not written (rerun to finish: the output is a pure
    /// function of the input, so the rerun gives the full tree). No
    /// temporary file is left, except after a second signal or SIGKILL;
    /// the next run over the same `--out` removes those.
    pub const INTERRUPTED: i32 = 130;
    /// Standard output was closed (`| head`) before everything was written:
    /// the output is incomplete, and the report, explain and rejects files
    /// and the index were not written. 128 + SIGPIPE, what a shell reports
    /// for a process that a broken pipe ended.
    pub const BROKEN_PIPE: i32 = 141;
}

/// An error about one path.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading or writing failed.
    #[error("{}: {cause}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        cause: io::Error,
    },
    /// The bytes could not be decoded, or the file is binary.
    #[error("{}: {cause}", path.display())]
    Decode {
        /// The file.
        path: PathBuf,
        /// The cause, with the byte offset.
        cause: DecodeError,
    },
    /// The file is larger than `--max-bytes`.
    #[error("{}: file too large ({size} bytes, limit {limit})", path.display())]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// Its size.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// Something else is wrong with the path (a usage error).
    #[error("{}: {message}", path.display())]
    Invalid {
        /// The path.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The run was stopped by a signal (see [`crate::interrupt`]).
    #[error("interrupted; the output is incomplete (every file written is complete: rerun to finish)")]
    Interrupted,
}

impl Error {
    /// An I/O error about `path`.
    pub fn io(path: &Path, source: io::Error) -> Error {
        Error::Io { path: path.to_path_buf(), cause: source }
    }

    /// A usage error about `path`.
    pub fn invalid(path: &Path, message: impl Into<String>) -> Error {
        Error::Invalid { path: path.to_path_buf(), message: message.into() }
    }

    /// A short machine-readable name of the kind of error, used in reports.
    pub fn kind(&self) -> &'static str {
        match self {
            Error::Io { cause, .. } => match cause.kind() {
                io::ErrorKind::NotFound => "not-found",
                io::ErrorKind::PermissionDenied => "permission-denied",
                _ => "io",
            },
            Error::Decode { cause: DecodeError::Binary { .. }, .. } => "binary",
            Error::Decode { .. } => "encoding",
            Error::TooLarge { .. } => "too-large",
            Error::Invalid { .. } => "invalid",
            Error::Interrupted => "interrupted",
        }
    }
}

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
