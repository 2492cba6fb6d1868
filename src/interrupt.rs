//! Stopping cleanly on SIGINT, SIGTERM and SIGHUP.
//!
//! The signal handler (installed by `main` with [`install`]) only sets a
//! flag. The pipeline looks at it ([`requested`]) before it reads a file,
//! before it writes one, and between windows; once it is set, no new file is
//! started, the files being written are finished (each is renamed into place
//! complete, or not at all), and the run returns [`crate::error::Error::Interrupted`]
//! (exit code 130). Nothing is left behind but complete output files: a
//! temporary file is only ever dropped by a failed or abandoned write, which
//! removes it. A second signal ends the process at once (still exit 130);
//! then a temporary file may be left, as after SIGKILL, and the next run over
//! the same `--out` removes it (see [`crate::write`]).

use std::sync::atomic::{AtomicBool, Ordering};

static REQUESTED: AtomicBool = AtomicBool::new(false);

/// True once a stop was requested.
pub fn requested() -> bool {
    REQUESTED.load(Ordering::Relaxed)
}

/// Asks the running pipeline to stop (what the signal handler does; also
/// usable by a library caller that wants to cancel a run).
pub fn request() {
    REQUESTED.store(true, Ordering::Relaxed);
}

/// Installs the handler for SIGINT, SIGTERM and SIGHUP: the first signal
/// calls [`request`], the second exits with code 130 at once.
pub fn install() -> Result<(), ctrlc::Error> {
    ctrlc::set_handler(|| {
        if REQUESTED.swap(true, Ordering::Relaxed) {
            std::process::exit(i32::from(crate::error::ExitCode::Interrupted.code()));
        }
    })
}
