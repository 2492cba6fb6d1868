//! The thread budget: the one place a thread of a run is started.
//!
//! `--threads N` ([`crate::config::Config::threads`]; 0 = one per core)
//! bounds every thread a run starts. [`crate::pipeline::run`] builds one
//! [`Budget`] and from it one rayon pool; everything parallel in the run
//! — the walk's size reads, preparing, rendering, the index's sort of a
//! commit and its checksums at open — runs on that pool. So does the index's background merge
//! ([`crate::index::Index::start_merge_in_pool`]): when the budget has at
//! least two threads it is one job on the pool, which a worker picks up
//! while the others go on with the run (a thread kept apart for it would
//! sit idle once the merge is done: the run with an index then used one
//! core of two); with one thread the merge is done at the commit. So a run
//! has at most N threads of its own, besides the main thread (which waits
//! while the pool works) and the signal watcher that `main` installs
//! ([`crate::interrupt`]). [`spawn`] starts the merge's own thread for
//! users of the index outside a run (a [`crate::session::Session`]).
//!
//! Counting: with `NEWSDEDUP_COUNT_THREADS=1` in the environment, the
//! threads alive in the process (`/proc/self/task` on Linux) are counted
//! after every thread started here and at the end of each step of a run,
//! and the command prints the most it saw ([`peak`]); the thread tests use
//! this.

use std::io;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::JoinHandle;

use crate::config::{Config, Output};
use crate::error::{Error, Result};

/// How many threads a run may start, and whether the index's merge runs
/// in the background (as a job on the pool).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Budget {
    threads: usize,
    spare: bool,
}

impl Budget {
    /// A budget of `threads` (0: one per core), all for the pool.
    pub fn new(threads: usize) -> Budget {
        let threads = if threads == 0 { std::thread::available_parallelism().map_or(1, |n| n.get()) } else { threads };
        Budget { threads, spare: false }
    }

    /// The budget of a run: with an index that the run commits to and at
    /// least two threads, the index's merge runs in the background, on the
    /// pool.
    pub fn of_run(cfg: &Config) -> Budget {
        let budget = Budget::new(cfg.threads);
        let spare = cfg.index.is_some() && cfg.output != Output::DryRun && budget.threads >= 2;
        Budget { spare, ..budget }
    }

    /// The threads of the budget.
    pub fn threads(&self) -> usize {
        self.threads
    }

    /// True when the index merge may run in the background (one pool job).
    pub fn has_spare(&self) -> bool {
        self.spare
    }

    /// The run's worker pool: every thread of the budget.
    pub fn pool(&self) -> Result<rayon::ThreadPool> {
        rayon::ThreadPoolBuilder::new()
            .num_threads(self.threads)
            .spawn_handler(|worker| {
                let mut b = std::thread::Builder::new();
                if let Some(name) = worker.name() {
                    b = b.name(name.to_owned());
                }
                if let Some(size) = worker.stack_size() {
                    b = b.stack_size(size);
                }
                b.spawn(|| worker.run())?;
                sample();
                Ok(())
            })
            .build()
            .map_err(|e| Error::Threads(e.to_string()))
    }
}

/// Starts a named background thread (the index merge); see the module docs
/// for when a run may.
pub fn spawn<T: Send + 'static>(name: &str, f: impl FnOnce() -> T + Send + 'static) -> io::Result<JoinHandle<T>> {
    let handle = std::thread::Builder::new().name(name.to_owned()).spawn(f)?;
    sample();
    Ok(handle)
}

static PEAK: AtomicUsize = AtomicUsize::new(0);

fn counting() -> bool {
    static ON: OnceLock<bool> = OnceLock::new();
    *ON.get_or_init(|| std::env::var_os("NEWSDEDUP_COUNT_THREADS").is_some_and(|v| v == "1"))
}

/// Counts the threads alive in the process, when counting is on (see the
/// module docs); a no-op otherwise.
pub fn sample() {
    if !counting() {
        return;
    }
    if let Ok(tasks) = std::fs::read_dir("/proc/self/task") {
        PEAK.fetch_max(tasks.count(), Ordering::Relaxed);
    }
}

/// The most threads seen alive at once, main thread included, when
/// counting is on and the platform has `/proc/self/task`.
pub fn peak() -> Option<usize> {
    sample();
    let peak = PEAK.load(Ordering::Relaxed);
    (counting() && peak > 0).then_some(peak)
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::config::Input;

    #[test]
    fn the_index_merge_gets_a_thread_only_when_the_budget_has_two() {
        let mut cfg = Config::new(Input::Path("in".into()), Output::Dir("out".into()));
        cfg.threads = 1;
        assert_eq!(Budget::of_run(&cfg), Budget { threads: 1, spare: false });
        cfg.index = Some(PathBuf::from("ix"));
        assert_eq!(Budget::of_run(&cfg), Budget { threads: 1, spare: false });
        cfg.threads = 3;
        assert_eq!(Budget::of_run(&cfg), Budget { threads: 3, spare: true });
        cfg.output = Output::DryRun;
        assert!(!Budget::of_run(&cfg).has_spare(), "a dry run never commits");
        assert!(Budget::new(0).threads() >= 1);
    }

    #[test]
    fn the_pool_has_every_thread_of_the_budget() {
        let one = Budget { threads: 1, spare: false }.pool().unwrap();
        assert_eq!(one.current_num_threads(), 1);
        let three = Budget { threads: 3, spare: true }.pool().unwrap();
        assert_eq!(three.current_num_threads(), 3);
    }
}
