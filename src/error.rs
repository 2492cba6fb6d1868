//! The library's error type and the exit codes it maps to.
//!
//! Every error about a file carries its path, and the byte offset or line
//! when one is known. Per-file errors do not stop a run: they are reported,
//! the run goes on, and the exit code says that something was skipped
//! ([`ExitCode::Partial`]). An `Err` returned by [`crate::pipeline::run`]
//! is fatal; [`ExitCode::of`] says what the process exits with.

use std::io;
use std::path::{Path, PathBuf};

use crate::check::ConfigError;
use crate::index::IndexError;
use crate::read::DecodeError;

mod exit;
pub use exit::ExitCode;

/// An error of the library: about one path (or a line of it), the index,
/// the configuration, or the run as a whole.
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
    /// A record or line of an input cannot be read or used: `file:line`.
    #[error("{}: line {line}: {message}", path.display())]
    Record {
        /// The file (or `<stdin>`).
        path: PathBuf,
        /// The line, counted from 1.
        line: u64,
        /// What is wrong.
        message: String,
        /// Short name of the kind, for reports ([`Error::kind`]).
        kind: &'static str,
    },
    /// The configuration cannot be run (see [`crate::config::Config::validate`]).
    #[error("{0}")]
    Config(ConfigError),
    /// The signal handler could not be installed (see [`crate::interrupt`]).
    #[error("cannot install the signal handler: {0}")]
    Signal(String),
    /// The persistent index failed.
    #[error(transparent)]
    Index(#[from] IndexError),
    /// The run has more documents than a decision can name.
    #[error("more than {limit} documents in one run; split the input into several runs")]
    TooManyDocuments {
        /// The most documents one run can hold.
        limit: u64,
    },
    /// The worker threads could not be started.
    #[error("cannot start worker threads: {0}")]
    Threads(String),
    /// Standard output was closed (`| head`) before everything was written.
    #[error(
        "standard output was closed before everything was written: the output is incomplete \
         (the report, the explain and rejects files and the index were not written)"
    )]
    BrokenPipe,
    /// The run was stopped by a signal (see [`crate::interrupt`]).
    #[error("interrupted; the output is incomplete (every file written is complete: rerun to finish)")]
    Interrupted,
}

impl Error {
    /// The error with its path under `from` said under `to` instead (a file
    /// of a staged `--out` named by its final path, [`crate::write::Staged`]).
    pub(crate) fn rebased(mut self, from: &Path, to: &Path) -> Error {
        if let Error::Io { path, .. }
        | Error::Decode { path, .. }
        | Error::TooLarge { path, .. }
        | Error::Invalid { path, .. }
        | Error::Record { path, .. } = &mut self
            && let Ok(rest) = path.strip_prefix(from)
        {
            *path = to.join(rest);
        }
        self
    }

    /// An I/O error about `path`.
    pub fn io(path: &Path, source: io::Error) -> Error {
        Error::Io { path: path.to_path_buf(), cause: source }
    }

    /// An error writing to `path`; a closed pipe is [`Error::BrokenPipe`]
    /// (standard output, or a side file named `-`).
    pub fn write(path: &Path, source: io::Error) -> Error {
        if source.kind() == io::ErrorKind::BrokenPipe { Error::BrokenPipe } else { Error::io(path, source) }
    }

    /// The same error, with a closed pipe ([`io::ErrorKind::BrokenPipe`]) as
    /// [`Error::BrokenPipe`].
    pub fn pipe(self) -> Error {
        match self {
            Error::Io { cause, .. } if cause.kind() == io::ErrorKind::BrokenPipe => Error::BrokenPipe,
            e => e,
        }
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
            Error::Record { kind, .. } => kind,
            Error::Config(_) => "config",
            Error::Signal(_) => "signal",
            Error::Index(_) => "index",
            Error::TooManyDocuments { .. } => "too-many-documents",
            Error::Threads(_) => "threads",
            Error::BrokenPipe => "broken-pipe",
            Error::Interrupted => "interrupted",
        }
    }
}

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
