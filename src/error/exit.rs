//! Exit codes of the `newsdedup` command, and the one mapping from a run's
//! outcome to them.

use super::Error;

/// What the process exits with. The numbers are part of the interface.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum ExitCode {
    /// Everything was read and written.
    Success = 0,
    /// The run completed, but some inputs were skipped or rejected (bad file,
    /// bad JSON line, ...): each one was reported on stderr and in the report.
    Partial = 1,
    /// Usage error, or a fatal error that stopped the run (output not
    /// writable, index locked, ...).
    Fatal = 2,
    /// Interrupted by SIGINT, SIGTERM or SIGHUP: the run stopped between
    /// files. Every file under its final name is complete; files not yet
    /// reached were not written (rerun to finish: the output is a pure
    /// function of the input, so the rerun gives the full tree). No
    /// temporary file is left, except after a second signal or SIGKILL;
    /// the next run over the same `--out` removes those.
    Interrupted = 130,
    /// Standard output was closed (`| head`) before everything was written:
    /// the output is incomplete, and the report, explain and rejects files
    /// and the index were not written. 128 + SIGPIPE, what a shell reports
    /// for a process that a broken pipe ended.
    BrokenPipe = 141,
}

impl ExitCode {
    /// The exit code of a fatal error.
    pub fn of(error: &Error) -> ExitCode {
        match error {
            Error::Interrupted => ExitCode::Interrupted,
            Error::BrokenPipe => ExitCode::BrokenPipe,
            _ => ExitCode::Fatal,
        }
    }

    /// The exit code of a completed run: [`ExitCode::Partial`] when some
    /// input failed.
    pub fn of_run(has_failures: bool) -> ExitCode {
        if has_failures { ExitCode::Partial } else { ExitCode::Success }
    }

    /// The number the process exits with.
    pub fn code(self) -> u8 {
        self as u8
    }
}

impl From<ExitCode> for std::process::ExitCode {
    fn from(code: ExitCode) -> std::process::ExitCode {
        std::process::ExitCode::from(code.code())
    }
}

#[cfg(test)]
mod tests {
    use std::io;
    use std::path::Path;

    use super::*;

    #[test]
    fn the_numbers_are_the_documented_ones() {
        let codes = [
            (ExitCode::Success, 0),
            (ExitCode::Partial, 1),
            (ExitCode::Fatal, 2),
            (ExitCode::Interrupted, 130),
            (ExitCode::BrokenPipe, 141),
        ];
        for (code, n) in codes {
            assert_eq!(code.code(), n, "{code:?}");
        }
    }

    #[test]
    fn errors_map_to_their_codes() {
        assert_eq!(ExitCode::of(&Error::Interrupted), ExitCode::Interrupted);
        assert_eq!(ExitCode::of(&Error::BrokenPipe), ExitCode::BrokenPipe);
        let io = Error::io(Path::new("a.txt"), io::Error::other("disk on fire"));
        assert_eq!(ExitCode::of(&io), ExitCode::Fatal);
        assert_eq!(ExitCode::of(&Error::Config(crate::check::ConfigError::StdinToFiles)), ExitCode::Fatal);
        assert_eq!(ExitCode::of_run(false), ExitCode::Success);
        assert_eq!(ExitCode::of_run(true), ExitCode::Partial);
    }

    #[test]
    fn a_closed_pipe_is_a_broken_pipe_whichever_way_it_comes() {
        let closed = || io::Error::from(io::ErrorKind::BrokenPipe);
        assert!(matches!(Error::write(Path::new("-"), closed()), Error::BrokenPipe));
        assert!(matches!(Error::io(Path::new("-"), closed()).pipe(), Error::BrokenPipe));
        let full = Error::write(Path::new("out.txt"), io::Error::from(io::ErrorKind::StorageFull));
        assert!(full.to_string().starts_with("out.txt: "), "{full}");
        assert_eq!(ExitCode::of(&full.pipe()), ExitCode::Fatal);
    }
}
