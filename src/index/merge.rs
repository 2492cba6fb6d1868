//! Commits: the size-tiering merge (in the background or at the commit),
//! the publication of a new state, and the sort of a commit's keys.
//!
//! # Invariants
//! * Within a segment keys are strictly increasing; the directory is monotone.
//! * A key normally lives in only one segment. If a caller breaks the contract
//!   and commits a key already present, [`Index::get`] still returns the *oldest*
//!   entry (segments are searched oldest first and merges keep the older entry);
//!   `len()` may count such a key twice until the segments holding it are merged.
//! * Segment sizes strictly more than halve from oldest to newest, except for
//!   the newest segment, which holds the last commit's keys (size-tiered: a
//!   commit first merges the newest existing segments into one while the next
//!   older holds at most [`TIER_RATIO`] times the keys gathered so far, then
//!   adds its own keys as a new segment). So there are at most `log2(n) + 2`
//!   segments and each key is rewritten O(log n) times in total. The merge is
//!   the same whether [`Index::start_merge`] or [`Index::start_merge_in_pool`]
//!   ran it in the background during a run or the commit runs it inline: its
//!   plan depends only on the manifest.
//!
//! # Where the merge runs, and why it is never deferred
//! A run with `--index` and two or more threads starts the due merge as one
//! job on its rayon pool ([`Index::start_merge_in_pool`]): a worker does it
//! while the others go on with the run, then returns to the pool; a commit
//! that finds it not yet started does it itself (the job is claimed by
//! whoever comes first, so it runs exactly once). The merge used to have a
//! thread of its own and the pool one worker less, which left a core idle
//! for the rest of the run once the merge was done (on 2 cores the `--index`
//! run went from 2.3x the plain run's wall time to ~1.5x, see
//! `benches/INDEX.md`). Considered and not done:
//! * a lower priority for the merge (per-thread nice): the run keeps every
//!   core busy, so a niced merge would mostly wait and then run alone at the
//!   end, single-threaded: the same work, later and serial;
//! * a commit that publishes without a merge still running and leaves it due
//!   for the next run: the merge's work is not saved, only moved (each key
//!   is rewritten the same O(log n) times), and the partial work of a
//!   cancelled merge is lost. The merge is therefore always published by the
//!   commit of the run it was due for, and the tiering invariant above holds
//!   after every commit.
//!
//! `benches/index.sh` (b) measures what the merges cost a sequence of daily
//! runs.
//!
//! # Crash safety
//! A commit (1) writes the new segments (the merged one, perhaps written by
//! the background merge, then the run's) under the manifest's next ids
//! (an id is only reused after a crash, and then the orphan holding it was
//! deleted by the open that precedes the reuse), fsyncs it and the
//! directory; (2) writes `MANIFEST.tmp`, fsyncs it, renames it over
//! `MANIFEST` (atomic on POSIX) and fsyncs the directory; (3) only then deletes
//! the segments that were merged away and keeps the replaced filter as the
//! spare, or deletes it (see `global`) (a file that cannot be deleted is left
//! as an orphan for the next open: the commit has happened, and reporting it
//! as failed would make a caller report a recorded run as failed). A crash (even SIGKILL or power loss)
//! before the rename leaves the old manifest, which only names old, untouched
//! files, so the index opens as exactly the old state (the new segment is an
//! orphan and is removed). After the rename the new manifest names only fully
//! written, fsynced segments; old ones not yet deleted are orphans. Every file
//! is checksummed and length-checked on open, so damage (a torn write that
//! somehow got published, bit rot, truncation, a foreign file) is reported as
//! [`IndexError::Corrupt`]/[`IndexError::Foreign`] naming the file instead of
//! being read. The process holds no state that matters across the rename, so
//! SIGKILL at any instant is covered by the same argument. (Assumes a POSIX
//! filesystem where rename is atomic and fsync is honoured, e.g. ext4/xfs.)
//! Segments are never modified while mapped; only the lock holder deletes them.
//! A filter file is written over only as the spare, never while this process
//! maps it (see `global`, "The spare").
//! Lookups never panic on bad data: every read is bounds-checked (`Option`).
//! A background merge writes only a file the manifest does not name: if the
//! run fails or the [`Index`] is dropped, it is cancelled, joined and the file
//! removed (so nothing writes into the directory once the lock is released);
//! after a crash it is an orphan like any other.
//! Tested with fail points before the manifest rename and before the old
//! segments are deleted, and by `sigkill_during_commits`, which SIGKILLs a
//! child process committing in a loop (every other commit with its merge
//! running as a pool job) at random moments (10 kills) and checks
//! the index is exactly the set of commits recorded in its run log.
//! The lock is `flock`-style (`File::try_lock`): advisory, per open file
//! description, released by the kernel when the process dies; not reliable on
//! NFS. Caveat: a child forked while an `Index` is open shares the lock's file
//! description until it execs or exits (the descriptor is close-on-exec), so
//! a parent that drops and re-opens the index in that window gets `Locked`.
//!

use std::fs;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex, PoisonError};
use std::thread::JoinHandle;

#[cfg(test)]
use super::FailPoint;
use super::error::{Result, corrupt, io_err};
use super::global::{GlobalFilter, filter_name, retire, write_filter};
use super::key_docs::{KeyDoc, merged};
use super::segment::{SegMeta, Segment, seg_name};
use super::sources::Source;
use super::writer::{write_key_docs, write_segment};
use super::{Batch, Entry, Index, RunRecord, TIER_RATIO, fsync_dir, manifest::write_manifest};

/// The work of a background tiering merge: writing segment `id` from
/// `segs`. Whoever claims it first does it: the job started by
/// [`Index::start_merge`] (on its thread) or [`Index::start_merge_in_pool`]
/// (on the run's rayon pool), or, if that job has not started by the
/// commit, the commit itself; a drop claims it only to cancel it.
struct MergeJob {
    dir: PathBuf,
    id: u64,
    segs: Vec<Arc<Segment>>,
    claimed: AtomicBool,
    cancel: AtomicBool,
    done: Mutex<Option<Result<SegMeta>>>,
    finished: Condvar,
}

impl MergeJob {
    /// Does the merge unless it was claimed already.
    fn run(&self) {
        if self.claimed.swap(true, Ordering::AcqRel) {
            return;
        }
        let path = self.dir.join(seg_name(self.id));
        let merged = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let srcs: Vec<Source<'_>> = self.segs.iter().map(|s| Source::Seg(s)).collect();
            write_segment(&self.dir, self.id, &srcs, &self.cancel)
        }))
        .unwrap_or_else(|_| Err(corrupt(&path, "merge panicked")));
        *self.done.lock().unwrap_or_else(PoisonError::into_inner) = Some(merged);
        self.finished.notify_all();
    }

    /// The merge's result: done now if nobody has started it, else waited for.
    fn result(&self) -> Result<SegMeta> {
        self.run();
        let mut done = self.done.lock().unwrap_or_else(PoisonError::into_inner);
        loop {
            if let Some(r) = done.take() {
                return r;
            }
            done = self.finished.wait(done).unwrap_or_else(PoisonError::into_inner);
        }
    }
}

/// A tiering merge of `segs[keep..]` started in the background, writing
/// segment `id` (an orphan until a commit names it in the manifest).
pub(super) struct PendingMerge {
    keep: usize,
    id: u64,
    path: PathBuf,
    job: Arc<MergeJob>,
    /// The merge's own thread ([`Index::start_merge`]); none on a pool.
    thread: Option<JoinHandle<()>>,
    /// Finished and handed to the commit (or failed and removed).
    settled: bool,
}

impl PendingMerge {
    /// The merge's result, done now if its job has not started; the file is
    /// then the caller's to publish.
    fn finish(mut self) -> Result<SegMeta> {
        let done = self.job.result();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        if done.is_err() {
            let _ = fs::remove_file(&self.path);
        }
        self.settled = true;
        done
    }
}

impl Drop for PendingMerge {
    /// An unpublished merge is cancelled (or claimed, so that it never
    /// starts), waited for and its file removed, so no thread writes into
    /// the directory once the lock is released.
    fn drop(&mut self) {
        if self.settled {
            return;
        }
        self.job.cancel.store(true, Ordering::Relaxed);
        if self.job.claimed.swap(true, Ordering::AcqRel) {
            let mut done = self.job.done.lock().unwrap_or_else(PoisonError::into_inner);
            while done.is_none() {
                done = self.job.finished.wait(done).unwrap_or_else(PoisonError::into_inner);
            }
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let _ = fs::remove_file(&self.path);
    }
}

/// The size-tiering rule: the newest segment absorbs the segments before it
/// while the next holds at most [`TIER_RATIO`] times the keys gathered so
/// far. Returns `keep`: the segments `counts[keep..]` are to be merged into
/// one (nothing to do when fewer than two).
pub(super) fn tier_plan(counts: &[u64]) -> usize {
    let Some(&newest) = counts.last() else { return 0 };
    let (mut keep, mut acc) = (counts.len() - 1, newest);
    while keep > 0 && counts[keep - 1] <= TIER_RATIO.saturating_mul(acc) {
        keep -= 1;
        acc += counts[keep];
    }
    keep
}

impl Index {
    /// Starts the tiering merge that the next commit would otherwise do
    /// inline ([`TIER_RATIO`]: the newest segments fold into one) on a
    /// background thread, so that it overlaps the run instead of lengthening
    /// its end. Lookups keep using the old, immutable segments meanwhile; the
    /// merged file stays an orphan (deleted by the next open after a crash)
    /// until [`Index::commit`] publishes it together with the run's keys.
    /// Dropping the index cancels and removes an unpublished merge. Does
    /// nothing if no merge is due or one is already running.
    pub fn start_merge(&mut self) -> Result<()> {
        let Some(job) = self.merge_job() else { return Ok(()) };
        let work = Arc::clone(&job);
        let thread = crate::threads::spawn("index-merge", move || work.run()).map_err(io_err(&self.dir))?;
        self.pend(job, Some(thread));
        Ok(())
    }

    /// [`Index::start_merge`] as one job on the caller's rayon pool (the
    /// global pool outside one) instead of a thread of its own: a worker
    /// does the merge while the others go on with the run, and is the
    /// pool's again afterwards. If no worker has started it by the commit,
    /// the commit does it. Used by a run that keeps to a thread budget
    /// (see [`crate::threads`]).
    pub fn start_merge_in_pool(&mut self) -> Result<()> {
        let Some(job) = self.merge_job() else { return Ok(()) };
        let work = Arc::clone(&job);
        rayon::spawn(move || work.run());
        self.pend(job, None);
        Ok(())
    }

    /// The job of the tiering merge due now, unless none is or one is pending.
    fn merge_job(&self) -> Option<Arc<MergeJob>> {
        let keep = self.due_merge().filter(|_| self.pending.is_none())?;
        Some(Arc::new(MergeJob {
            dir: self.dir.clone(),
            id: self.manifest.next_id,
            segs: self.segs[keep..].to_vec(),
            claimed: AtomicBool::new(false),
            cancel: AtomicBool::new(false),
            done: Mutex::new(None),
            finished: Condvar::new(),
        }))
    }

    fn pend(&mut self, job: Arc<MergeJob>, thread: Option<JoinHandle<()>>) {
        let keep = self.segs.len() - job.segs.len();
        let (id, path) = (job.id, self.dir.join(seg_name(job.id)));
        self.pending = Some(PendingMerge { keep, id, path, job, thread, settled: false });
    }

    /// The tiering merge due now: `Some(keep)` when `segs[keep..]` (at least
    /// two segments) are to be merged into one.
    pub(super) fn due_merge(&self) -> Option<usize> {
        let keep = tier_plan(&self.manifest.segs.iter().map(|s| s.count).collect::<Vec<_>>());
        (self.segs.len() >= keep + 2).then_some(keep)
    }

    /// Publishes a new state atomically: the tiering merge of the existing
    /// segments (the one [`Index::start_merge`] started, or done now), or
    /// with `full` all of them merged into one, plus `new` (sorted chunks,
    /// deduplicated) as the newest segment; then deletes merged-away files.
    /// The new keys are never merged in the commit that adds them: the next
    /// run's merge picks them up, so a commit writes only its own keys.
    pub(super) fn apply(
        &mut self,
        new: Fresh<'_>,
        run: Option<(RunRecord, u64)>,
        batches: Vec<Batch>,
        full: bool,
    ) -> Result<()> {
        // A full merge reads the new keys among every segment's; key-docs
        // come only from a run's commit, which never asks for one, but
        // would be taken as entries.
        if full && let Fresh::KeyDocs(seqs, batch) = new {
            let entries: Vec<Entry> = merged(seqs).map(|k| Entry { key: k.key(), doc: k.doc, batch }).collect();
            return self.apply(Fresh::Entries(&[&entries]), run, batches, full);
        }
        let never = AtomicBool::new(false);
        let mut m = self.manifest.clone();
        m.generation += 1;
        m.batches = batches;
        let mut created: Vec<SegMeta> = Vec::new();
        let mut keep = self.segs.len();
        let pending = self.pending.take();
        let (entries, key_docs) = match new {
            Fresh::Entries(pieces) => (pieces, None),
            Fresh::KeyDocs(seqs, batch) => (&[][..], (new.len() > 0).then_some((seqs, batch))),
        };
        let fresh: Vec<Source<'_>> = entries.iter().filter(|c| !c.is_empty()).map(|c| Source::New(c)).collect();
        let adds = !fresh.is_empty() || key_docs.is_some();
        // The last segment (the new keys', or the compaction's) and the
        // filter are written at the same time: neither reads the other.
        let mut last: Option<Vec<Source<'_>>> = None;
        if full {
            drop(pending);
            if self.segs.len() > 1 || !fresh.is_empty() {
                let mut srcs: Vec<Source<'_>> = self.segs.iter().map(|s| Source::Seg(s)).collect();
                srcs.extend(fresh);
                keep = 0;
                last = Some(srcs);
            }
        } else {
            if let Some(p) = pending {
                keep = p.keep;
                m.next_id = p.id + 1;
                created.push(p.finish()?);
            } else if let Some(plan) = self.due_merge() {
                keep = plan;
                let srcs: Vec<Source<'_>> = self.segs[keep..].iter().map(|s| Source::Seg(s)).collect();
                created.push(write_segment(&self.dir, m.next_id, &srcs, &never)?);
                m.next_id += 1;
            }
            if !fresh.is_empty() {
                last = Some(fresh);
            }
        }
        // The index-wide filter: the current one plus the new keys (the
        // merge does not change the set of keys); written for an index of
        // format 3 that has none yet (its upgrade to format 4).
        let total: u64 = self.manifest.segs.iter().map(|s| s.count).sum::<u64>() + new.len();
        let refilter = adds || (self.filter.is_none() && total > 0);
        let seg_id = m.next_id;
        let filter_id = seg_id + u64::from(last.is_some() || key_docs.is_some());
        let (seg, filter) = rayon::join(
            || match key_docs {
                Some((seqs, batch)) => write_key_docs(&self.dir, seg_id, seqs, batch, &never).map(Some),
                None => last.as_ref().map(|srcs| write_segment(&self.dir, seg_id, srcs, &never)).transpose(),
            },
            || {
                refilter
                    .then(|| write_filter(&self.dir, filter_id, self.filter.as_deref(), &self.segs, new, total))
                    .transpose()
            },
        );
        created.extend(seg?);
        let filter = filter?;
        m.next_id = filter_id + u64::from(filter.is_some());
        if filter.is_some() {
            m.filter = filter;
        }
        if !created.is_empty() || refilter {
            fsync_dir(&self.dir)?;
        }
        m.segs.truncate(keep);
        m.segs.extend(&created);
        if let Some((mut r, before)) = run {
            r.total_keys = m.segs.iter().map(|s| s.count).sum();
            r.new_keys = r.total_keys.saturating_sub(before);
            m.runs.push(r);
        }
        #[cfg(test)]
        if self.fail == Some(FailPoint::BeforeManifestRename) {
            return Err(corrupt(&self.dir, "injected crash before rename"));
        }
        // Map the new segments before publishing them, so a failure leaves
        // both disk and memory in the old state.
        let mut opened = Vec::with_capacity(created.len());
        for meta in &created {
            opened.push(Arc::new(Segment::open(&self.dir.join(seg_name(meta.id)), *meta, false)?));
        }
        let filter = match filter {
            Some(meta) => Some(Arc::new(GlobalFilter::open(&self.dir.join(filter_name(meta.id)), meta, false)?)),
            None => None,
        };
        write_manifest(&self.dir, &m)?;
        // The new state is durable. Swap in-memory state, then delete old files.
        let old: Vec<Arc<Segment>> = self.segs.drain(keep..).collect();
        self.segs.extend(opened);
        let old_filter = match filter {
            Some(f) => self.filter.replace(f),
            None => None,
        };
        self.manifest = m;
        #[cfg(test)]
        if self.fail == Some(FailPoint::BeforeDeletingOld) {
            return Err(corrupt(&self.dir, "injected crash before delete"));
        }
        // The commit is done: a file that cannot be deleted now (EIO, ...)
        // is an orphan, removed by the next open. Failing here would make a
        // caller report a failed run that was in fact recorded.
        for s in old {
            let p = self.dir.join(seg_name(s.meta.id));
            drop(s);
            let _ = fs::remove_file(&p);
        }
        if let Some(f) = old_filter {
            let p = self.dir.join(filter_name(f.meta.id));
            retire(f, &p, &self.dir);
        }
        Ok(())
    }
}

/// The new keys a commit writes ([`Index::apply`]).
#[derive(Clone, Copy)]
pub(super) enum Fresh<'a> {
    /// Pieces of entries, each in key order, every key of a piece below
    /// every key of the next.
    Entries(&'a [&'a [Entry]]),
    /// Sequences of key-docs (each pieces in key order, see
    /// [`super::SortedKeyDocs`]) of the batch given, merged as they are
    /// written.
    KeyDocs(&'a [Vec<&'a [KeyDoc]>], u32),
}

impl Fresh<'_> {
    /// How many entries there are (a key in two sequences counted twice).
    pub(super) fn len(&self) -> u64 {
        match self {
            Fresh::Entries(pieces) => pieces.iter().map(|p| p.len() as u64).sum(),
            Fresh::KeyDocs(seqs, _) => seqs.iter().flatten().map(|p| p.len() as u64).sum(),
        }
    }
}

/// Pieces a segment's checksum is computed in, in parallel on the caller's
/// rayon pool (the run's thread budget, see [`crate::threads`]). Fixed, so
/// that everything computed does not depend on the number of threads.
pub(super) const PIECES: usize = 8;

/// A commit's new entries in key order, as one run (so the segment writer
/// copies them instead of merging pieces), sorted in place on the caller's
/// rayon pool (rayon's parallel pattern-defeating quicksort). Entries are
/// ordered by key, then document, then batch, a total order, so the result
/// (and which of two entries of one key the writer keeps: the first) does
/// not depend on the number of threads.
///
/// In place rather than by a radix sort into a second buffer (issue 18,
/// nineteenth session, benches/INDEX.md eleventh pass): the most-significant
/// digit radix sort this replaces took about as long (1.1M entries: 15-43
/// ms against 26-33 ms on two threads) but its buffer was 32 more bytes per
/// new key (35 MB for a typical day), and on a machine that hands freed
/// memory back to its host every fresh page is paid for again: a typical
/// day's run faulted 15 fewer huge pages without it, with byte-identical
/// segments.
pub(super) fn sort_entries(mut v: Vec<Entry>) -> Vec<Entry> {
    use rayon::prelude::*;
    v.par_sort_unstable_by_key(order);
    v
}

/// The order of a commit's entries.
pub(super) fn order(e: &Entry) -> (u128, u64, u32) {
    (e.key, e.doc, e.batch)
}
