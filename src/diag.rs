//! Diagnostics on standard error that never stop a run.
//!
//! `eprintln!` panics when stderr cannot be written (a closed pipe, a full
//! disk): a diagnostic that cannot be shown must not cost the user the job.
//! Everything this crate says on stderr goes through here; write errors are
//! dropped, and the run completes with its own exit code.

use std::fmt;
use std::io::Write as _;

/// Writes one line (`args` and a line break) to stderr, ignoring errors.
pub fn line(args: fmt::Arguments<'_>) {
    let mut err = std::io::stderr().lock();
    let _ = err.write_fmt(args).and_then(|()| err.write_all(b"\n"));
}

/// Writes `text` as it is to stderr, ignoring errors.
pub fn text(text: &str) {
    let _ = std::io::stderr().lock().write_all(text.as_bytes());
}

/// `diag!("...", args)`: [`line`] with `format!` syntax.
macro_rules! diag {
    ($($arg:tt)*) => {
        $crate::diag::line(format_args!($($arg)*))
    };
}
pub(crate) use diag;

#[cfg(test)]
mod tests {
    #[test]
    fn formats_without_panicking() {
        super::line(format_args!("{} {}", "test", 1));
        super::text("");
    }
}
