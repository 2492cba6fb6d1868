//! The thread budget: the one place a thread of a run is started.
//!
//! `--threads N` ([`crate::config::Config::threads`]; 0 = one per core)
//! bounds every thread a run starts. [`crate::pipeline::run`] builds one
//! [`Budget`] and from it one rayon pool; everything parallel in the run
//! — the walk's listing, preparing, rendering, freeing what was decided
//! ([`Frees`]), faulting in a large array before it is filled
//! (`touch_pages`), the index's sort of a commit and its checksums at
//! open — runs on that pool. So does the index's background merge
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
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
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
                b.spawn(|| {
                    // A worker keeps its last folders open while the pool
                    // lives; they close when it ends with the run.
                    #[cfg(target_os = "linux")]
                    crate::folder::keep_on_this_thread();
                    worker.run()
                })?;
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

/// The pool thread running the caller (`None` outside a pool), to be
/// handed to [`Frees::free`] with what the caller allocates.
pub fn here() -> Option<usize> {
    rayon::current_thread_index()
}

/// Frees what a pipeline loop is done with off the calling thread, each
/// item on the pool thread that made it: mimalloc frees a block on the
/// thread that allocated it through a local list, and from any other thread
/// through an atomic push that the owner collects later. A decided batch of
/// records (a dozen allocations each) freed by whichever worker was free
/// cost ~5% of a `-j2` JSONL run's samples in those two paths
/// (benches/JSONL.md, tenth pass). One per run: it bounds what waits.
#[derive(Default)]
pub struct Frees {
    /// Shares handed to the workers and not yet taken.
    waiting: Arc<AtomicUsize>,
    /// Takes and frees share `i` of the last call, unless it was taken.
    last: Mutex<Option<TakeShare>>,
}

/// See [`Frees::last`].
type TakeShare = Arc<dyn Fn(usize) + Send + Sync>;

impl Frees {
    /// Frees `items`, each on the thread `made_on` names (from [`here`]
    /// when it was made; `None`: the calling thread): a job on every thread
    /// of the pool takes that thread's share. A worker runs such a job only
    /// when it looks for work, and the loop's own thread may not have
    /// looked since the last call (a window of the tree loop whose other
    /// half ended before it was waited for: a fifth of the calls on the
    /// bench tree), so it first takes its own share of the last call, if
    /// still there. The items are freed here and now instead when the pool
    /// has one thread (its worker is never idle before the run ends) or
    /// when another worker has not yet taken its share of the last call:
    /// at most one call's items wait. Outside a pool they are freed here too.
    pub fn free<T: Send + 'static>(&self, items: Vec<T>, made_on: impl Fn(&T) -> Option<usize>) {
        let (Some(caller), n) = (here(), rayon::current_num_threads()) else { return drop(items) };
        if n == 1 {
            return drop(items);
        }
        if self.waiting.load(Ordering::Acquire) > 0 {
            let last = self.last.lock().ok().and_then(|l| l.clone());
            if let Some(take) = last {
                take(caller);
            }
            if self.waiting.load(Ordering::Acquire) > 0 {
                return drop(items);
            }
        }
        // Each share sized first: grown push by push, the shares of a batch
        // of records (a few hundred bytes each) were copied over and over
        // into fresh memory (~1% of a `-j2` JSONL run's samples).
        let thread = |item: &T| made_on(item).unwrap_or(caller).min(n - 1);
        let mut sizes = vec![0; n];
        for item in &items {
            sizes[thread(item)] += 1;
        }
        let mut shares: Vec<Vec<T>> = sizes.into_iter().map(Vec::with_capacity).collect();
        for item in items {
            shares[thread(&item)].push(item);
        }
        let shares: Vec<Mutex<Option<Vec<T>>>> = shares.into_iter().map(|s| Mutex::new(Some(s))).collect();
        let waiting = Arc::clone(&self.waiting);
        // Whoever takes a share first (its worker, or the caller of the next
        // call) counts it taken.
        let take: TakeShare = Arc::new(move |i: usize| {
            if let Some(share) = shares.get(i).and_then(|s| s.lock().ok()?.take()) {
                waiting.fetch_sub(1, Ordering::AcqRel);
                drop(share);
            }
        });
        self.waiting.fetch_add(n, Ordering::AcqRel);
        if let Ok(mut last) = self.last.lock() {
            *last = Some(Arc::clone(&take));
        }
        rayon::spawn_broadcast(move |ctx| take(ctx.index()));
    }
}

static PEAK: AtomicUsize = AtomicUsize::new(0);

/// Bytes touched per task by [`touch_pages`].
const TOUCH_CHUNK: usize = 3 << 19;

/// The bytes between two touches of [`touch_pages`]: one write per page.
const PAGE: usize = 4096;

/// Writes a zero into every page of `bytes`, on the caller's rayon pool
/// (nothing outside a pool), so that the kernel faults the pages in
/// (zeroing them, and on a virtual machine whose host backs a page when it
/// is first touched, having the host back them) on all of the pool's
/// threads now, rather than on the one thread that fills them later. That
/// thread is often the ordered step: the rows of a tree's report (336
/// bytes a file, 61 MB for the bench's 182,715 files) were pushed into
/// fresh pages between two windows, ~2.7 ms a window on one thread while
/// the other waited (issue 18). For memory that is about to be written
/// anyway.
///
/// Writes nothing but zero bytes, one at the start of `bytes` and one at
/// the start of every page after it, so that memory already holding zeros
/// (a fresh mapping, [`crate::dedup`]'s arrays) keeps its values.
pub(crate) fn touch_pages(bytes: &mut [std::mem::MaybeUninit<u8>]) {
    use rayon::prelude::*;
    if rayon::current_thread_index().is_none() || bytes.is_empty() {
        return;
    }
    // The first byte, then whole pages from the first page boundary on:
    // every chunk starts on a page (`TOUCH_CHUNK` is a multiple of it).
    let head = (bytes.as_ptr().addr().next_multiple_of(PAGE) - bytes.as_ptr().addr()).min(bytes.len());
    let (first, pages) = bytes.split_at_mut(head);
    let zero = |b: &mut std::mem::MaybeUninit<u8>| {
        // SAFETY: a valid pointer to one byte of `bytes`. Volatile, so
        // that a write that nothing reads is not left out.
        unsafe { std::ptr::write_volatile(b.as_mut_ptr(), 0) };
    };
    if let Some(b) = first.first_mut() {
        zero(b);
    }
    pages.par_chunks_mut(TOUCH_CHUNK).for_each(|c| c.iter_mut().step_by(PAGE).for_each(zero));
}

/// [`touch_pages`] on the spare capacity of `v` (reserved, not yet
/// filled): its pages faulted in on the pool before it is filled.
pub(crate) fn touch_spare<T>(v: &mut Vec<T>) {
    let spare = v.spare_capacity_mut();
    let len = std::mem::size_of_val(spare);
    // SAFETY: the spare capacity is `len` bytes that `v` owns and holds no
    // value in; seen as bytes that may be uninitialised, any write to them
    // is valid (a later push overwrites them).
    let bytes = unsafe { std::slice::from_raw_parts_mut(spare.as_mut_ptr().cast(), len) };
    touch_pages(bytes);
}

/// Room for `more` elements in `v`, its new pages faulted in on the pool
/// ([`touch_spare`]) when it had to grow; nothing touched when it had the
/// room already (its spare pages are then the ones touched before, or the
/// doubling's, which the pushes fault in as before).
pub(crate) fn reserve_touched<T>(v: &mut Vec<T>, more: usize) {
    let before = v.capacity();
    v.reserve(more);
    if v.capacity() > before {
        touch_spare(v);
    }
}

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

    /// (thread it was made on, thread it was freed on) of each [`Freed`].
    type Log = Arc<Mutex<Vec<(Option<usize>, Option<usize>)>>>;

    /// Records, when dropped, on which pool thread it was.
    struct Freed {
        made_on: Option<usize>,
        log: Log,
    }

    impl Drop for Freed {
        fn drop(&mut self) {
            // A failed assertion holding the lock must not turn this drop,
            // on a pool's job, into a panic there (rayon aborts the process).
            self.log.lock().unwrap_or_else(|e| e.into_inner()).push((self.made_on, here()));
        }
    }

    #[test]
    fn items_are_freed_once_each_on_the_thread_that_made_them() {
        let log: Log = Arc::default();
        let item = |made_on| Freed { made_on, log: log.clone() };
        // Outside a pool: freed at once, here.
        let frees = Frees::default();
        frees.free(vec![item(Some(1)), item(None)], |f| f.made_on);
        assert_eq!(log.lock().unwrap().len(), 2);
        log.lock().unwrap().clear();

        let pool = Budget { threads: 3, spare: false }.pool().unwrap();
        let caller = pool.install(|| {
            let items: Vec<Freed> = [Some(0), Some(2), None, Some(1), Some(2), Some(7)].map(item).into();
            frees.free(items, |f| f.made_on);
            here()
        });
        // A broadcast after it runs after it on every thread (their broadcast
        // queues are first in, first out).
        pool.broadcast(|_| ());
        let mut got = log.lock().unwrap().clone();
        got.sort();
        let caller = caller.expect("installed on the pool");
        let mut want = vec![(Some(0), Some(0)), (Some(2), Some(2)), (None, Some(caller)), (Some(1), Some(1))];
        // Made on a thread the pool does not have: its last one.
        want.extend([(Some(2), Some(2)), (Some(7), Some(2))]);
        want.sort();
        assert_eq!(got, want);

        // One thread: its worker is never idle during a run, so it frees at once.
        log.lock().unwrap().clear();
        let one = Budget { threads: 1, spare: false }.pool().unwrap();
        one.install(|| {
            frees.free(vec![item(Some(0)), item(None)], |f| f.made_on);
            assert_eq!(log.lock().unwrap().len(), 2, "freed before the call returned");
        });
    }

    #[test]
    fn the_callers_own_share_of_the_last_call_is_freed_by_the_next_call() {
        let log: Log = Arc::default();
        let item = |made_on| Freed { made_on, log: log.clone() };
        let frees = Frees::default();
        let pool = Budget { threads: 2, spare: false }.pool().unwrap();
        let caller = pool.install(|| {
            let caller = here().expect("installed on the pool");
            let other = 1 - caller;
            frees.free(vec![item(Some(caller)), item(Some(other))], |f| f.made_on);
            // The other worker takes its share; this thread does not look
            // for work while it runs straight on, so its own share waits.
            // (A share counts as taken before it is dropped: wait for the
            // drop as well.)
            let start = std::time::Instant::now();
            while frees.waiting.load(Ordering::Acquire) != 1 || log.lock().unwrap().is_empty() {
                assert!(start.elapsed().as_secs() < 30, "the other worker never took its share");
                std::thread::yield_now();
            }
            assert_eq!(*log.lock().unwrap(), vec![(Some(other), Some(other))]);
            frees.free(vec![item(Some(caller)), item(Some(other))], |f| f.made_on);
            // Its share of the first call was freed here, and the second
            // call's items were handed out (not freed here at once).
            let freed_here: Vec<_> = log.lock().unwrap().iter().filter(|f| f.1 == Some(caller)).copied().collect();
            assert_eq!(freed_here, vec![(Some(caller), Some(caller))]);
            assert!(frees.waiting.load(Ordering::Acquire) >= 1, "the second call's shares wait for their workers");
            caller
        });
        pool.broadcast(|_| ());
        let mut got = log.lock().unwrap().clone();
        got.sort();
        let other = 1 - caller;
        let mut want = vec![(Some(caller), Some(caller)); 2];
        want.extend([(Some(other), Some(other)); 2]);
        want.sort();
        assert_eq!(got, want, "every item freed once, on the thread that made it");
    }

    /// The whole pages of `v`'s spare capacity: (first byte, end, page size).
    #[cfg(target_os = "linux")]
    fn spare_pages(v: &mut Vec<u64>) -> (usize, usize, usize) {
        let spare = v.spare_capacity_mut();
        let (start, end) = (spare.as_ptr() as usize, spare.as_ptr() as usize + std::mem::size_of_val(spare));
        // SAFETY: no memory is touched.
        let page = usize::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) }).expect("a page size");
        (start.div_ceil(page) * page, end / page * page, page)
    }

    /// Pages of `v`'s spare capacity (those wholly inside it) that are
    /// resident, and how many there are (`mincore`).
    #[cfg(target_os = "linux")]
    fn spare_resident(v: &mut Vec<u64>) -> (usize, usize) {
        let (first, last, page) = spare_pages(v);
        let pages = (last - first) / page;
        let mut flags = vec![0u8; pages];
        // SAFETY: a page-aligned range of the vector's allocation, and a
        // vector of one byte per page for the answer.
        let rc = unsafe { libc::mincore(first as *mut libc::c_void, last - first, flags.as_mut_ptr()) };
        assert_eq!(rc, 0, "mincore: {}", io::Error::last_os_error());
        (flags.iter().filter(|&&f| f & 1 == 1).count(), pages)
    }

    /// `MADV_DONTNEED` on the whole pages of `v`'s spare capacity.
    #[cfg(target_os = "linux")]
    fn drop_spare_pages(v: &mut Vec<u64>) {
        let (first, last, _) = spare_pages(v);
        // SAFETY: whole pages of the vector's spare capacity, which holds no
        // value: they may read back as zeros.
        let rc = unsafe { libc::madvise(first as *mut libc::c_void, last - first, libc::MADV_DONTNEED) };
        assert_eq!(rc, 0, "madvise: {}", io::Error::last_os_error());
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn touch_spare_faults_the_spare_capacity_in_on_the_pool_and_changes_nothing_else() {
        let mut v: Vec<u64> = vec![7, 8, 9];
        // 32 MiB, its whole pages given back to the kernel whatever the
        // allocator did with them before (they hold no value).
        v.reserve_exact(4 << 20);
        drop_spare_pages(&mut v);
        let (cold, pages) = spare_resident(&mut v);
        assert!(pages > 8000 && cold < pages / 2, "{cold} of {pages} pages resident before");
        touch_spare(&mut v);
        assert_eq!(spare_resident(&mut v).0, cold, "outside a pool: nothing touched");
        let pool = Budget { threads: 2, spare: false }.pool().unwrap();
        pool.install(|| touch_spare(&mut v));
        assert_eq!(spare_resident(&mut v), (pages, pages), "every page faulted in");
        assert_eq!(v, [7, 8, 9]);
        assert!(v.capacity() >= 3 + (4 << 20));
        v.extend(0..1000);
        assert_eq!(v[3..], (0..1000).collect::<Vec<u64>>());
    }

    #[test]
    fn the_pool_has_every_thread_of_the_budget() {
        let one = Budget { threads: 1, spare: false }.pool().unwrap();
        assert_eq!(one.current_num_threads(), 1);
        let three = Budget { threads: 3, spare: true }.pool().unwrap();
        assert_eq!(three.current_num_threads(), 3);
    }
}
