//! The batches of a record shard through every thread of the pool with no
//! barrier between them: each thread, in a loop of its own, either
//! decides, renders and writes the next batch in line (the ordered step,
//! one thread at a time) or reads the next batch and prepares it.
//!
//! Why not a `rayon::join` per batch (deciding one batch while the next is
//! prepared, as before): a join ends when both of its halves have, so at
//! every batch one thread ran out of work while the other finished its
//! half; it spun (`sched_yield`), fell asleep, and was woken for the next
//! join. On the 2-core bench machine, a VM where waking a vCPU takes
//! ~30-50 µs, a `-j2` run over the bench JSONL (~950 batches) slept ~1,650
//! times, each core sat idle for a tenth of the run (`perf sched
//! timehist`), and the spinning made ~112,000 `sched_yield` calls. Through
//! the pipe: 50 context switches and 34 `sched_yield` calls, and the run
//! took a tenth less time (benches/JSONL.md, forty-first pass). A thread
//! has nothing to do here only when the next batch in line is still being
//! prepared by another thread and [`AHEAD`] batches per thread are read,
//! or when the shard is read to its end. It then helps with the pool's
//! other work (`rayon::yield_now`: the parallel parts of the step another
//! thread is in, such as faulting in the pages of the seen-set when it
//! doubles, which took one thread ~40 ms while the other waited), and
//! waits for a turn when there is none.
//!
//! Order: batches are numbered as they are read and finished in that order,
//! whichever thread prepared them and whenever, so the output is the same
//! bytes for any number of threads. A batch is prepared by the thread that
//! read it (its own parallel steps may be helped by a thread that waits in
//! one of its own); the ordered step is the caller's.
//!
//! The loops run as one [`rayon::broadcast`] on the run's pool, one per
//! thread. A broadcast job is never stolen, so a loop never runs nested
//! inside another loop's wait (it would wait for a batch that the loop
//! under it holds). A thread busy elsewhere when the shard starts (the
//! index's background merge) starts its loop when it is free; the others
//! do the work meanwhile.

use std::collections::BTreeMap;
use std::io;
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};

use crate::error::{Error, Result};

/// Batches read and not yet decided (prepared, or being prepared), besides
/// the one being decided, at most, per thread of the pool: enough that
/// every thread finds a batch to prepare while one decides, few enough to
/// bound memory (a prepared half batch is ~3 MB on the bench's JSONL).
const AHEAD: usize = 2;

/// How long a thread with nothing to do waits for a turn before it looks
/// for other work in the pool again.
const LOOK_AGAIN: std::time::Duration = std::time::Duration::from_micros(500);

/// The queue the loops share (under [`Pipe::queue`]).
struct Queue<R, T, D> {
    /// `None` while a thread reads from it, or once it is read to its end.
    read: Option<R>,
    /// The number the next batch read gets.
    next_read: u64,
    /// Prepared batches by number, waiting for their turn, with the thread
    /// that prepared each.
    ready: BTreeMap<u64, (usize, T)>,
    /// By thread: what `finish` gave back of the batches it prepared, to be
    /// dropped there.
    drops: Vec<Vec<D>>,
    /// Batches being read or prepared.
    preparing: usize,
    /// The number of the next batch to decide.
    next_finish: u64,
    /// A thread has the ordered step.
    finishing: bool,
    /// The number of batches, once reading reached the end or an error.
    end: Option<u64>,
    /// The error reading stopped on (the items before it are in the batches).
    damage: Option<io::Error>,
    /// The first error of the ordered step: every loop stops.
    failed: Option<Error>,
    /// Every loop returns at its next look: every batch is finished, the
    /// ordered step failed, or a loop unwound ([`StopOnUnwind`]).
    stopped: bool,
}

/// The loops' shared state.
struct Pipe<R, T, D, F> {
    queue: Mutex<Queue<R, T, D>>,
    turn: Condvar,
    /// The ordered step, called by one thread at a time, in batch order.
    finish: Mutex<F>,
}

/// Runs every batch through the pool (see the module docs): `read` gives
/// the next batch of items (an empty one at the end; with an error, the
/// last one: the items before the error), `prepare` turns a batch into
/// what `finish` takes, on any thread, and `finish` is called for each
/// prepared batch in the order read, one call at a time; what it returns
/// is dropped on the thread that prepared the batch (memory is freed
/// where it was allocated: mimalloc frees a block from another thread
/// through an atomic push that its owner collects later). Returns the
/// error reading stopped on, if any, once every batch before it is
/// finished; the first error of `finish` stops everything and is returned.
pub(super) fn run<I, T, D, R, P, F>(read: R, prepare: P, finish: F) -> Result<Option<io::Error>>
where
    I: Send,
    T: Send,
    D: Send,
    R: FnMut() -> (Vec<I>, Option<io::Error>) + Send,
    P: Fn(Vec<I>) -> T + Sync,
    F: FnMut(T) -> Result<D> + Send,
{
    let threads = rayon::current_num_threads();
    let ahead = AHEAD * threads;
    let pipe = Pipe {
        queue: Mutex::new(Queue {
            read: Some(read),
            next_read: 0,
            ready: BTreeMap::new(),
            drops: (0..threads).map(|_| Vec::new()).collect(),
            preparing: 0,
            next_finish: 0,
            finishing: false,
            end: None,
            damage: None,
            failed: None,
            stopped: false,
        }),
        turn: Condvar::new(),
        finish: Mutex::new(finish),
    };
    rayon::broadcast(|ctx| {
        let unwinding = StopOnUnwind(&pipe);
        work(&pipe, ctx.index(), ahead, &prepare);
        std::mem::forget(unwinding);
    });
    let queue = pipe.queue.into_inner().unwrap_or_else(PoisonError::into_inner);
    match queue.failed {
        Some(e) => Err(e),
        None => Ok(queue.damage),
    }
}

/// One thread's loop: the next batch in line decided when it is prepared
/// and no other thread decides; else the next batch read and prepared,
/// unless enough wait; else a wait for either.
fn work<I, T, D, R, P, F>(pipe: &Pipe<R, T, D, F>, me: usize, ahead: usize, prepare: &P)
where
    R: FnMut() -> (Vec<I>, Option<io::Error>),
    P: Fn(Vec<I>) -> T,
    F: FnMut(T) -> Result<D>,
{
    let mut q = lock(&pipe.queue);
    // Whether the pool had no other work to help with when last looked.
    let mut looked = false;
    loop {
        if q.drops.get(me).is_some_and(|d| !d.is_empty()) {
            let mine = std::mem::take(&mut q.drops[me]);
            drop(q);
            drop(mine);
            q = lock(&pipe.queue);
            continue;
        }
        if q.stopped || q.end == Some(q.next_finish) {
            q.stopped = true;
            pipe.turn.notify_all();
            return;
        }
        let next = q.next_finish;
        if !q.finishing
            && let Some((made_by, batch)) = q.ready.remove(&next)
        {
            q.finishing = true;
            drop(q);
            let done = (lock(&pipe.finish))(batch);
            q = lock(&pipe.queue);
            q.finishing = false;
            q.next_finish += 1;
            match done {
                Ok(spent) if made_by == me => {
                    pipe.turn.notify_all();
                    drop(q);
                    drop(spent);
                    q = lock(&pipe.queue);
                    continue;
                }
                Ok(spent) => q.drops[made_by].push(spent),
                Err(e) => {
                    q.failed = Some(e);
                    q.stopped = true;
                }
            }
            pipe.turn.notify_all();
            continue;
        }
        if q.ready.len() + q.preparing < ahead
            && let Some(mut read) = q.read.take()
        {
            let number = q.next_read;
            q.next_read += 1;
            q.preparing += 1;
            drop(q);
            let (items, damage) = read();
            q = lock(&pipe.queue);
            if damage.is_some() || items.is_empty() {
                q.end = Some(if items.is_empty() { number } else { number + 1 });
                q.damage = damage;
            } else {
                q.read = Some(read);
            }
            // Another thread may read (or decide) meanwhile.
            pipe.turn.notify_all();
            if items.is_empty() {
                q.preparing -= 1;
                continue;
            }
            drop(q);
            let prepared = prepare(items);
            q = lock(&pipe.queue);
            q.preparing -= 1;
            q.ready.insert(number, (me, prepared));
            pipe.turn.notify_all();
            continue;
        }
        // Nothing to do in the pipe: help with the pool's other work (the
        // parallel steps of the batch being decided, such as the seen-set's
        // pages faulted in when it doubles), once; when there is none, wait
        // for a turn, and look again for such work every so often.
        if !looked {
            drop(q);
            let helped = matches!(rayon::yield_now(), Some(rayon::Yield::Executed));
            q = lock(&pipe.queue);
            looked = !helped;
            continue;
        }
        looked = false;
        q = pipe.turn.wait_timeout(q, LOOK_AGAIN).unwrap_or_else(PoisonError::into_inner).0;
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Stops every loop when a thread's loop unwinds (a panic in `read`,
/// `prepare` or `finish`), so that the others do not wait for a batch it
/// will never give; rayon then hands the panic on.
struct StopOnUnwind<'p, R, T, D, F>(&'p Pipe<R, T, D, F>);

impl<R, T, D, F> Drop for StopOnUnwind<'_, R, T, D, F> {
    fn drop(&mut self) {
        let mut q = lock(&self.0.queue);
        q.stopped = true;
        self.0.turn.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// `f` on a pool of `threads`.
    fn on_pool<T: Send>(threads: usize, f: impl FnOnce() -> T + Send) -> T {
        rayon::ThreadPoolBuilder::new().num_threads(threads).build().expect("pool").install(f)
    }

    /// Reads `0..n` in batches of 1 to 7 items (varying), the last one
    /// ending on `damage` when given.
    fn reader(n: u32, damage: Option<u32>) -> impl FnMut() -> (Vec<u32>, Option<io::Error>) + Send {
        let (mut next, mut size, mut done) = (0, 0, false);
        move || {
            assert!(!done, "read again after the end or an error");
            size = size % 7 + 1;
            let stop = damage.unwrap_or(n).min(n);
            let batch: Vec<u32> = (next..(next + size).min(stop)).collect();
            next += batch.len() as u32;
            let err = (next == stop && damage.is_some()).then(|| io::Error::other("damaged"));
            done = batch.is_empty() || err.is_some();
            (batch, err)
        }
    }

    /// Work whose length varies with the item, so that batches are prepared
    /// out of order on a pool of several threads.
    fn busy(items: Vec<u32>) -> Vec<u32> {
        for &i in &items {
            let mut x = u64::from(i);
            for _ in 0..(i % 5) * 2_000 {
                x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
            }
        }
        items
    }

    #[test]
    fn batches_are_finished_in_the_order_read_whatever_the_threads() {
        for threads in [1, 2, 3, 8] {
            let mut seen = Vec::new();
            let r = on_pool(threads, || {
                run(reader(2_000, None), busy, |batch: Vec<u32>| {
                    seen.extend(batch);
                    Ok(())
                })
            });
            assert!(matches!(r, Ok(None)), "{threads} threads: {r:?}");
            assert_eq!(seen, (0..2_000).collect::<Vec<_>>(), "{threads} threads");
        }
    }

    #[test]
    fn an_empty_input_finishes_nothing() {
        for threads in [1, 2] {
            let calls = AtomicUsize::new(0);
            let r = on_pool(threads, || {
                run(reader(0, None), busy, |_: Vec<u32>| {
                    calls.fetch_add(1, Ordering::Relaxed);
                    Ok(())
                })
            });
            assert!(matches!(r, Ok(None)));
            assert_eq!(calls.load(Ordering::Relaxed), 0);
        }
    }

    #[test]
    fn a_read_error_ends_the_input_after_the_items_before_it() {
        for threads in [1, 2, 4] {
            let mut seen = Vec::new();
            let r = on_pool(threads, || {
                run(reader(1_000, Some(333)), busy, |batch: Vec<u32>| {
                    seen.extend(batch);
                    Ok(())
                })
            });
            let err = r.expect("no finish error").expect("the read error is returned");
            assert_eq!(err.to_string(), "damaged");
            assert_eq!(seen, (0..333).collect::<Vec<_>>(), "{threads} threads");
        }
    }

    #[test]
    fn the_first_finish_error_stops_the_run_and_is_returned() {
        for threads in [1, 2, 4] {
            let mut seen = Vec::new();
            let r = on_pool(threads, || {
                run(reader(10_000, None), busy, |batch: Vec<u32>| {
                    if batch.contains(&500) {
                        return Err(Error::Interrupted);
                    }
                    seen.extend(batch);
                    Ok(())
                })
            });
            assert!(matches!(r, Err(Error::Interrupted)), "{threads} threads: {r:?}");
            // Every batch before the failing one, none after it.
            let last = *seen.last().expect("batches before the error");
            assert_eq!(seen, (0..=last).collect::<Vec<_>>());
            assert!((494..=500).contains(&(last + 1)), "ended at {last}");
        }
    }

    /// Batches read and not finished stay within `AHEAD` per thread (and
    /// the one being finished), however slow the ordered step.
    #[test]
    fn reading_stays_a_bounded_number_of_batches_ahead() {
        for threads in [1, 2, 4] {
            let (read, finished, most) = (AtomicUsize::new(0), AtomicUsize::new(0), AtomicUsize::new(0));
            let mut inner = reader(3_000, None);
            let counted = || {
                let batch = inner();
                if !batch.0.is_empty() {
                    let ahead = read.fetch_add(1, Ordering::SeqCst) + 1 - finished.load(Ordering::SeqCst);
                    most.fetch_max(ahead, Ordering::SeqCst);
                }
                batch
            };
            let r = on_pool(threads, || {
                run(
                    counted,
                    |b| b,
                    |batch: Vec<u32>| {
                        busy(batch.iter().map(|i| i * 5).collect());
                        finished.fetch_add(1, Ordering::SeqCst);
                        Ok(())
                    },
                )
            });
            assert!(matches!(r, Ok(None)));
            let most = most.load(Ordering::SeqCst);
            assert!(most <= AHEAD * threads + 1, "{threads} threads: {most} batches ahead");
        }
    }

    /// While one thread decides a batch, the others read and prepare the
    /// next ones: the first batch's `finish` returns only once two more
    /// batches are prepared (or fails after a generous while).
    #[test]
    fn batches_are_prepared_while_one_is_finished() {
        for threads in [2, 4] {
            let prepared = AtomicUsize::new(0);
            let mut first = true;
            let r = on_pool(threads, || {
                let prepare = |batch: Vec<u32>| {
                    prepared.fetch_add(1, Ordering::SeqCst);
                    batch
                };
                run(reader(1_000, None), prepare, |_: Vec<u32>| {
                    if std::mem::take(&mut first) {
                        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
                        while prepared.load(Ordering::SeqCst) < 3 {
                            assert!(std::time::Instant::now() < deadline, "no batch prepared meanwhile");
                            std::thread::sleep(std::time::Duration::from_millis(1));
                        }
                    }
                    Ok(())
                })
            });
            assert!(matches!(r, Ok(None)), "{threads} threads: {r:?}");
        }
    }

    /// A thread with nothing to do in the pipe takes other work of the
    /// pool: here the second half of a `rayon::join` in `finish`, whose
    /// first half waits for it (so only another thread can run it), while
    /// the input is read to its end and nothing else is left to do.
    #[test]
    fn a_thread_with_nothing_to_do_helps_with_the_pools_other_work() {
        for threads in [2, 4] {
            let r = on_pool(threads, || {
                run(
                    reader(3, None),
                    |b| b,
                    |_: Vec<u32>| {
                        let done = std::sync::atomic::AtomicBool::new(false);
                        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
                        rayon::join(
                            || {
                                while !done.load(Ordering::SeqCst) {
                                    assert!(std::time::Instant::now() < deadline, "no other thread helped");
                                    std::hint::spin_loop();
                                }
                            },
                            || done.store(true, Ordering::SeqCst),
                        );
                        Ok(())
                    },
                )
            });
            assert!(matches!(r, Ok(None)), "{threads} threads: {r:?}");
        }
    }

    /// Counts, when dropped, whether it is dropped on the thread named.
    struct Spent<'a> {
        made_by: Option<usize>,
        elsewhere: &'a AtomicUsize,
        dropped: &'a AtomicUsize,
    }

    impl Drop for Spent<'_> {
        fn drop(&mut self) {
            self.dropped.fetch_add(1, Ordering::SeqCst);
            if rayon::current_thread_index() != self.made_by {
                self.elsewhere.fetch_add(1, Ordering::SeqCst);
            }
        }
    }

    #[test]
    fn what_finish_gives_back_is_dropped_where_the_batch_was_prepared() {
        for threads in [1, 2, 4] {
            let (elsewhere, dropped, finished) = (AtomicUsize::new(0), AtomicUsize::new(0), AtomicUsize::new(0));
            let r = on_pool(threads, || {
                let prepare = |batch: Vec<u32>| (rayon::current_thread_index(), busy(batch));
                run(reader(3_000, None), prepare, |(made_by, _): (Option<usize>, Vec<u32>)| {
                    finished.fetch_add(1, Ordering::SeqCst);
                    Ok(Spent { made_by, elsewhere: &elsewhere, dropped: &dropped })
                })
            });
            assert!(matches!(r, Ok(None)));
            let finished = finished.load(Ordering::SeqCst);
            assert!(finished > 100, "{finished} batches");
            assert_eq!(dropped.load(Ordering::SeqCst), finished, "{threads} threads: each dropped once");
            assert_eq!(elsewhere.load(Ordering::SeqCst), 0, "{threads} threads: dropped elsewhere");
        }
    }

    #[test]
    fn a_panic_in_a_loop_stops_the_others_and_is_handed_on() {
        for threads in [1, 2, 4] {
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                on_pool(threads, || {
                    let prepare = |batch: Vec<u32>| {
                        assert!(!batch.contains(&700), "prepare panics");
                        busy(batch)
                    };
                    run(reader(5_000, None), prepare, |_: Vec<u32>| Ok(()))
                })
            }));
            assert!(r.is_err(), "{threads} threads: the panic is handed on");
        }
    }
}
