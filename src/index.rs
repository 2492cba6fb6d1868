//! Persistent, crash-safe, locked, versioned set of paragraph keys.
//!
//! An index is a directory holding immutable, sorted, memory-mapped *segment*
//! files plus one small `MANIFEST` that names the live segments and the run log.
//!
//! # Use
//! ```ignore
//! # use newsdedup::index::*;
//! # fn main() -> Result<(), IndexError> {
//! let mut idx = Index::open(std::path::Path::new("/var/lib/newsdedup/index"))?; // locks
//! idx.start_merge()?; // optional: do the due tiering merge while we work
//! let key: u128 = 0x0123_4567_89ab_cdef_0123_4567_89ab_cdef;
//! idx.prefetch(key); // optional: start the DRAM fetch early, hash something else
//! let seen = idx.get(key); // &self, Sync: call from many rayon threads
//! let batch = Batch::Named(b"/data/news/2026-11-24".to_vec());
//! let id = idx.batch_id(&batch); // id.retry: an earlier run of this batch was committed
//! let new = vec![Entry { key, doc: 42, batch: id.number }];
//! let run = RunInfo { timestamp: 1_700_000_000, docs: 1, paragraphs: 1, label: "daily".into(), batch };
//! if seen.is_none() {
//!     idx.commit(new, run)?; // atomic, with the merge; releases the lock
//! }
//! # Ok(()) }
//! ```
//! (Example not compiled: the crate path differs between crates.)
//! For bulk lookups prefer [`Index::get_many`] (software-prefetched, ~1.5-2x
//! the throughput of `get` in a loop).
//!
//! # Files in the directory
//! * `LOCK` — empty; an exclusive `File::try_lock` on it is held by the open
//!   [`Index`] (released on drop/commit). A second opener gets [`IndexError::Locked`].
//! * `MANIFEST` — the only mutable state; replaced atomically.
//! * `seg-XXXXXXXXXXXXXXXX.ndx` — segments (16 lowercase hex digits of the id).
//! * `pending-XXXXXXXXXXXXXXXX.jnl` — first occurrences journaled by a run
//!   that changes its input, for the next run of its batch (see [`Journal`]);
//!   removed by the commit of that batch.
//! * `MANIFEST.tmp`, `WRITE-PROBE.tmp` — temporaries; any left by a crash are
//!   deleted on the next open, as are segment files (exactly that name
//!   pattern) not named in the manifest (orphans). No other file is ever
//!   deleted: a folder holding anything else is refused as
//!   [`IndexError::Foreign`] unless it has a `MANIFEST`, and then the other
//!   files are left alone.
//!
//! Opening checks that the folder is writable (a probe file is created and
//! removed), so a read-only index is reported before a run publishes any
//! output, not at its commit.
//!
//! # Segment format (all integers little-endian unless said otherwise)
//! ```text
//! off 0   8 B  magic  "NDDXSEG\0"
//! off 8   4 B  version u32 = 3
//! off 12  4 B  dir_bits u32 (0..=32)
//! off 16  8 B  count u64 (number of keys, n)
//! off 24  8 B  filter_blocks u64 = f = max(1, ceil(10n / 512))
//! off 32  16n  keys, sorted strictly ascending, each u128 BIG-endian
//!              (so byte order == numeric order)
//! ...     12n  values, same order: doc u64, batch u32 (see [`Entry`])
//! ...     8(2^dir_bits+1)  directory: u64 d[b] = index of the first key whose
//!              top dir_bits bits are >= b; d[0] = 0, d[2^dir_bits] = n
//! ...     0..63 B zero padding, so the filter starts at a multiple of 64
//! ...     64f  filter: f blocks of 8 u64 words (see below)
//! end-8   4 B  crc32 (IEEE, crc32fast) of every byte before it
//! end-4   4 B  end magic "NDXE"
//! ```
//! `dir_bits` = floor(log2(n / [`BUCKET_TARGET`])) (at least 0, at most 32),
//! so buckets hold 64..128 keys and the directory is ~1/8 byte per key (1.25 MB
//! for 10M keys: it stays in L2/L3). A lookup reads two directory words, then
//! *interpolates* inside the bucket on the key bits below the bucket number
//! (keys are uniform hashes, expected error ~sqrt(bucket)/2 = 4-6 keys, i.e.
//! the guessed cache line or a neighbour) and steps to the key: about one
//! DRAM miss per segment probed, plus
//! one for the 12 value bytes on a hit. Nothing is built in memory at open.
//!
//! The filter is a blocked Bloom filter of [`FILTER_BITS_PER_KEY`] bits per
//! key: a key's block is `(high 64 bits × f) >> 64` (monotone in the key, so
//! a segment written in key order fills it front to back), and it sets one
//! bit in each of the block's 8 words, bit `(low 64 bits >> 6w) & 63` of word
//! `w`. A key absent from a segment is answered from one cache line with
//! probability ~99%; lookups read the filter before the directory.
//! Version 1 (no filter) and version 2 (values were document and paragraph
//! index, which shift when a file is cleaned in place) segments and
//! manifests are refused by version.
//!
//! # Manifest format
//! ```text
//! 8 B magic "NDDXMANI", u32 version = 3, u32 reserved = 0,
//! u64 generation (incremented by every write), u64 next_segment_id,
//! u32 nseg, nseg x { u64 id, u64 count, u64 file_len, u32 file_crc32 }   (oldest first)
//! u32 nbatches, nbatches x { u8 kind (0 anonymous, 1 named), u32 name_len,
//!                            name_len B raw name }     (batch number = position)
//! u32 nruns, nruns x { u64 timestamp, u64 docs, u64 paragraphs, u64 new_keys,
//!                      u64 total_keys, u32 batch, u32 label_len, label_len B UTF-8 label }
//! u32 crc32 of all preceding bytes; the file must end exactly there.
//! ```
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
//!   the same whether [`Index::start_merge`] ran it in the background during a
//!   run or the commit runs it inline: its plan depends only on the manifest.
//!
//! # Crash safety
//! A commit (1) writes the new segments (the merged one, perhaps written by
//! the background merge, then the run's) under the manifest's next ids
//! (an id is only reused after a crash, and then the orphan holding it was
//! deleted by the open that precedes the reuse), fsyncs it and the
//! directory; (2) writes `MANIFEST.tmp`, fsyncs it, renames it over
//! `MANIFEST` (atomic on POSIX) and fsyncs the directory; (3) only then deletes
//! the segments that were merged away (a file that cannot be deleted is left
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
//! Lookups never panic on bad data: every read is bounds-checked (`Option`).
//! A background merge writes only a file the manifest does not name: if the
//! run fails or the [`Index`] is dropped, it is cancelled, joined and the file
//! removed (so nothing writes into the directory once the lock is released);
//! after a crash it is an orphan like any other.
//! Tested with fail points before the manifest rename and before the old
//! segments are deleted, and by `sigkill_during_commits`, which SIGKILLs a
//! child process committing in a loop at random moments (10 kills) and checks
//! the index is exactly the set of commits recorded in its run log.
//! The lock is `flock`-style (`File::try_lock`): advisory, per open file
//! description, released by the kernel when the process dies; not reliable on
//! NFS. Caveat: a child forked while an `Index` is open shares the lock's file
//! description until it execs or exits (the descriptor is close-on-exec), so
//! a parent that drops and re-opens the index in that window gets `Locked`.
//!
//! # Why 128 bits of SHA-256 suffice
//! For n distinct paragraphs the probability that any two share a 128-bit
//! prefix is about n²/2¹²⁹: for n = 10¹⁰ (decades of news) that is ≈ 1.5·10⁻¹⁹.
//!
//! # Measured (2-vCPU AMD EPYC VM, 10M keys in segments [8M, 1M, 1M];
//! `cargo run --release --example index_bench`)
//! * disk: 29.3 bytes/key (16 key + 12 value + 1/8 directory + 10/8 filter).
//! * open: 14-20 ms (mmap + CRC of 293 MB on all cores + directory check);
//!   RSS grows only by the file pages touched (page cache, shared).
//! * `get_many` (software prefetch, groups of 16, one thread): 94-150 ns per
//!   absent key (three filter lines), 150-300 ns per present key; up to
//!   ~20 M absent keys/s on 2 threads. Format 1 (no filter) took 200-245 ns
//!   per absent key with only two segments.
//! * daily commit of 1M new keys into 10M: ~115 ms (sort on all cores, write
//!   31 MB + fsync) when the merge ran in the background; with the merge
//!   inline 230-265 ms. Amortized over the 10 commits that build the index
//!   200-240 ms per 1M keys including merges.
//! * Rejected: building a `HashMap` of all keys on open (2.2-3.0 s for 10M
//!   keys, +240 MB RSS; its lookups, 170-285 ns, are at best ~1.6x faster
//!   since they too cost one DRAM miss, but the build eats 10x the budget).
//!   Tried and dropped: copying segments or filters into huge-page memory (no
//!   change: the cost is DRAM misses, not TLB misses); prefetching each key's
//!   filter lines as soon as it is hashed (saved lookup time, cost as much in
//!   the hashing loop); looking a whole batch up in key order (the counting
//!   sort cost what the locality saved); radix-bucketed commit batches (the
//!   pushes cost more than the sort saved).

use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;

mod batch;
mod journal;
mod manifest;
mod segment;

pub use batch::{Batch, BatchId};
pub use journal::Journal;
use journal::is_journal_name;

use manifest::{Manifest, write_manifest};
use segment::{FilterMask, SegMeta, Segment, Source, prefetch, seg_name, write_segment};

/// One record: a paragraph key (first 128 bits of its SHA-256, big-endian) and
/// where it was first kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Entry {
    /// First 128 bits of the key's SHA-256.
    pub key: u128,
    /// 64-bit identity of the document that first kept it, unique within
    /// its batch (the pipeline uses the document's *anchor*, see
    /// [`crate::dedup::anchor`]: it does not change when the document is
    /// cleaned in place).
    pub doc: u64,
    /// Number of the batch of the run that first kept it (see
    /// [`Index::batch_id`]).
    pub batch: u32,
}

/// What the caller tells [`Index::commit`] about a run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RunInfo {
    /// Unix time in seconds.
    pub timestamp: u64,
    /// Documents the run read.
    pub docs: u64,
    /// Paragraphs the run read.
    pub paragraphs: u64,
    /// Free text, at most [`MAX_LABEL`] bytes.
    pub label: String,
    /// The batch the run belongs to.
    pub batch: Batch,
}

/// A run as recorded in the manifest.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RunRecord {
    /// Unix time in seconds.
    pub timestamp: u64,
    /// Documents the run read.
    pub docs: u64,
    /// Paragraphs the run read.
    pub paragraphs: u64,
    /// Keys the run added.
    pub new_keys: u64,
    /// Keys in the index after the run.
    pub total_keys: u64,
    /// The run's batch number.
    pub batch: u32,
    /// The run's label.
    pub label: String,
}

/// Summary returned by [`Index::stats`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IndexStats {
    /// Keys held.
    pub keys: u64,
    /// Bytes of all files of the index.
    pub bytes_on_disk: u64,
    /// Live segment files.
    pub segments: usize,
    /// Keys per segment, oldest first.
    pub segment_keys: Vec<u64>,
    /// Runs recorded.
    pub runs: u64,
    /// Batches known.
    pub batches: u64,
    /// The most recent run.
    pub last_run: Option<RunRecord>,
    /// The most recent run's batch.
    pub last_batch: Option<Batch>,
}

impl std::fmt::Display for IndexStats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "keys: {}", self.keys)?;
        writeln!(
            f,
            "bytes on disk: {} ({:.1} per key)",
            self.bytes_on_disk,
            self.bytes_on_disk as f64 / self.keys.max(1) as f64
        )?;
        writeln!(f, "segments: {} (keys per segment, oldest first: {:?})", self.segments, self.segment_keys)?;
        writeln!(f, "runs recorded: {}", self.runs)?;
        writeln!(f, "batches: {}", self.batches)?;
        match &self.last_run {
            Some(r) => writeln!(
                f,
                "last run: unix time {}, {} documents, {} paragraphs, {} new keys, label {:?}, batch {}",
                r.timestamp,
                r.docs,
                r.paragraphs,
                r.new_keys,
                r.label,
                self.last_batch.as_ref().map_or_else(|| "?".to_owned(), Batch::display)
            ),
            None => writeln!(f, "last run: none"),
        }
    }
}

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
    #[error("{path} has unsupported format version {found} (this build reads {FORMAT_VERSION})")]
    UnsupportedVersion { path: PathBuf, found: u32 },
    /// The caller passed something unusable.
    #[error("invalid input for {path}: {reason}")]
    Invalid { path: PathBuf, reason: String },
}

/// Seconds since the Unix epoch, for run records (0 if the clock is before it).
pub fn unix_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// On-disk format version of both segment and manifest files.
pub const FORMAT_VERSION: u32 = 3;
/// Longest accepted run label, in bytes.
pub const MAX_LABEL: usize = 64 * 1024;
/// Size-tiering: on commit, merge the newest segment into the new one while it
/// holds at most `TIER_RATIO` times the keys accumulated so far.
pub const TIER_RATIO: u64 = 2;
/// Directory sizing: segments get 2^floor(log2(n / BUCKET_TARGET)) buckets,
/// i.e. 64..128 keys per bucket on average.
pub const BUCKET_TARGET: u64 = 64;
/// Filter sizing: each segment carries a blocked Bloom filter of about this
/// many bits per key (one 64-byte block per lookup, 8 bits set per key),
/// which answers "certainly absent" for ~99% of absent keys.
pub const FILTER_BITS_PER_KEY: u64 = 10;

const SEG_MAGIC: &[u8; 8] = b"NDDXSEG\0";
const SEG_END: &[u8; 4] = b"NDXE";
const MAN_MAGIC: &[u8; 8] = b"NDDXMANI";
const HDR: usize = 32;
const MANIFEST: &str = "MANIFEST";
const MANIFEST_TMP: &str = "MANIFEST.tmp";
const PROBE: &str = "WRITE-PROBE.tmp";

type Result<T> = std::result::Result<T, IndexError>;

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> IndexError + '_ {
    move |cause| IndexError::Io { path: path.to_path_buf(), cause }
}
fn corrupt(path: &Path, reason: impl Into<String>) -> IndexError {
    IndexError::Corrupt { path: path.to_path_buf(), reason: reason.into() }
}

/// Test-only crash simulation points.
#[cfg(test)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum FailPoint {
    BeforeManifestRename,
    BeforeDeletingOld,
}

fn fsync_dir(dir: &Path) -> Result<()> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(io_err(dir))
}

/// An open, exclusively locked index. Lookups are `&self` and `Sync`.
pub struct Index {
    dir: PathBuf,
    /// Declared before the lock: dropped (cancelled and joined) first.
    pending: Option<PendingMerge>,
    _lock: File,
    manifest: Manifest,
    /// Oldest first, parallel to `manifest.segs`.
    segs: Vec<Arc<Segment>>,
    #[cfg(test)]
    fail: Option<FailPoint>,
}

/// A tiering merge of `segs[keep..]` running on its own thread, writing
/// segment `id` (an orphan until a commit names it in the manifest).
struct PendingMerge {
    keep: usize,
    id: u64,
    path: PathBuf,
    cancel: Arc<AtomicBool>,
    handle: Option<JoinHandle<Result<SegMeta>>>,
}

impl PendingMerge {
    /// Waits for the merge; the file is then the caller's to publish.
    fn finish(mut self) -> Result<SegMeta> {
        let handle = self.handle.take().ok_or_else(|| corrupt(&self.path, "merge already finished"))?;
        let done = handle.join().unwrap_or_else(|_| Err(corrupt(&self.path, "merge thread panicked")));
        if done.is_err() {
            let _ = fs::remove_file(&self.path);
        }
        done
    }
}

impl Drop for PendingMerge {
    /// An unpublished merge is cancelled, waited for and its file removed,
    /// so no thread writes into the directory once the lock is released.
    fn drop(&mut self) {
        if let Some(handle) = self.handle.take() {
            self.cancel.store(true, Ordering::Relaxed);
            let _ = handle.join();
            let _ = fs::remove_file(&self.path);
        }
    }
}

/// The size-tiering rule: the newest segment absorbs the segments before it
/// while the next holds at most [`TIER_RATIO`] times the keys gathered so
/// far. Returns `keep`: the segments `counts[keep..]` are to be merged into
/// one (nothing to do when fewer than two).
fn tier_plan(counts: &[u64]) -> usize {
    let Some(&newest) = counts.last() else { return 0 };
    let (mut keep, mut acc) = (counts.len() - 1, newest);
    while keep > 0 && counts[keep - 1] <= TIER_RATIO.saturating_mul(acc) {
        keep -= 1;
        acc += counts[keep];
    }
    keep
}

impl Index {
    /// Opens an index that must already exist (for inspection and
    /// maintenance, where creating one would hide a mistyped path).
    pub fn open_existing(path: &Path) -> Result<Index> {
        if !path.join(MANIFEST).is_file() {
            return Err(IndexError::Invalid { path: path.to_path_buf(), reason: "no index here (no MANIFEST)".into() });
        }
        Index::open(path)
    }

    /// Open (creating if absent) the index directory `path`, lock it and
    /// validate every file, including full segment checksums. An existing
    /// directory without a `MANIFEST` is only adopted if it is empty (apart
    /// from `LOCK` and the index's own temporaries); otherwise `Foreign`
    /// naming the directory. An existing file that is not a directory is
    /// [`IndexError::NotADirectory`]; a folder that cannot be written is an
    /// I/O error now rather than at the commit.
    pub fn open(path: &Path) -> Result<Index> {
        if fs::metadata(path).is_ok_and(|m| !m.is_dir()) {
            return Err(IndexError::NotADirectory { path: path.to_path_buf() });
        }
        fs::create_dir_all(path).map_err(io_err(path))?;
        let ours =
            |n: &String| n == "LOCK" || n == MANIFEST_TMP || n == PROBE || is_segment_name(n) || is_journal_name(n);
        if !path.join(MANIFEST).exists() && !Self::list_dir(path)?.iter().all(ours) {
            return Err(IndexError::Foreign { path: path.to_path_buf() });
        }
        let lock_path = path.join("LOCK");
        let lock = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&lock_path)
            .map_err(io_err(&lock_path))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => {
                return Err(IndexError::Locked { path: path.to_path_buf() });
            }
            Err(fs::TryLockError::Error(e)) => return Err(io_err(&lock_path)(e)),
        }
        // A commit creates files: find out now whether it could.
        let probe = path.join(PROBE);
        File::create(&probe).and_then(|_| fs::remove_file(&probe)).map_err(io_err(&probe))?;
        let mpath = path.join(MANIFEST);
        let manifest = match fs::read(&mpath) {
            Ok(b) => Manifest::decode(&mpath, &b)?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                if Self::list_dir(path)?.iter().any(|n| is_segment_name(n)) {
                    return Err(corrupt(&mpath, "missing, but segment files exist"));
                }
                let m = Manifest::default();
                write_manifest(path, &m)?;
                m
            }
            Err(e) => return Err(io_err(&mpath)(e)),
        };
        let mut segs = Vec::with_capacity(manifest.segs.len());
        for meta in &manifest.segs {
            segs.push(Arc::new(Segment::open(&path.join(seg_name(meta.id)), *meta, true)?));
        }
        let idx = Index {
            dir: path.to_path_buf(),
            pending: None,
            _lock: lock,
            manifest,
            segs,
            #[cfg(test)]
            fail: None,
        };
        idx.remove_orphans()?;
        Ok(idx)
    }

    fn list_dir(dir: &Path) -> Result<Vec<String>> {
        let mut v = Vec::new();
        for e in fs::read_dir(dir).map_err(io_err(dir))? {
            let e = e.map_err(io_err(dir))?;
            // A name that is not UTF-8 is never one of ours; keep it lossy so
            // that it still counts as "something else" in the folder.
            v.push(e.file_name().to_string_lossy().into_owned());
        }
        Ok(v)
    }

    /// Delete the index's temporaries and segment files the manifest does
    /// not name; nothing else.
    fn remove_orphans(&self) -> Result<()> {
        for n in Self::list_dir(&self.dir)? {
            let live = self.manifest.segs.iter().any(|s| seg_name(s.id) == n);
            let orphan = n == MANIFEST_TMP || n == PROBE || is_segment_name(&n);
            if orphan && !live {
                let p = self.dir.join(&n);
                fs::remove_file(&p).map_err(io_err(&p))?;
            }
        }
        Ok(())
    }

    /// Location of the first occurrence of `key`, if present. No allocation;
    /// per segment (oldest first, stopping at a hit) one read of the
    /// cache-resident directory and ~1 cache line of keys; +1 line on a hit.
    /// Latency-bound (~1 DRAM miss per segment); for throughput prefer
    /// [`Index::get_many`] or call [`Index::prefetch`] early.
    #[inline]
    pub fn get(&self, key: u128) -> Option<(u64, u32)> {
        let mask = FilterMask::of(key);
        self.segs.iter().find_map(|s| if s.admits(key, &mask) { s.locate(key).and_then(|i| s.value(i)) } else { None })
    }

    /// Hint the CPU to start loading the cache lines `get(key)` will need, so
    /// the miss latency overlaps with other work (e.g. hashing the next
    /// paragraph). Never allocates; a no-op on non-x86_64.
    #[inline]
    pub fn prefetch(&self, key: u128) {
        for s in &self.segs {
            s.prefetch_filter(key);
        }
    }

    /// Batched lookup: `out[i] = self.get(keys[i])` for `i < min(len)`, with
    /// software prefetching across groups of 16 keys so cache misses overlap
    /// (several times the throughput of `get` in a loop). No allocation.
    pub fn get_many(&self, keys: &[u128], out: &mut [Option<(u64, u32)>]) {
        const G: usize = 16;
        // Segments whose filter admits a key, as bits (only the first 64
        // segments are tracked; any beyond are always probed).
        let admitting = |k: u128, mask: &FilterMask| {
            self.segs
                .iter()
                .enumerate()
                .fold(0u64, |bits, (si, s)| if si < 64 && s.admits(k, mask) { bits | 1 << si } else { bits })
        };
        for (kc, oc) in keys.chunks(G).zip(out.chunks_mut(G)) {
            // Three stages, each overlapping the memory misses of 16 keys:
            // filter blocks; keys in the segments whose filter admits the
            // key; values of the keys found.
            for &k in kc {
                self.prefetch(k);
            }
            let mut admit = [0u64; G];
            for (a, &k) in admit.iter_mut().zip(kc) {
                *a = admitting(k, &FilterMask::of(k));
                for (si, s) in self.segs.iter().enumerate() {
                    if si >= 64 || *a & 1 << si != 0 {
                        s.prefetch(k);
                    }
                }
            }
            let mut loc = [(usize::MAX, 0usize); G];
            for ((l, &k), &a) in loc.iter_mut().zip(kc).zip(&admit) {
                for (si, s) in self.segs.iter().enumerate() {
                    if (si >= 64 || a & 1 << si != 0)
                        && let Some(i) = s.locate(k)
                    {
                        prefetch(&s.map, s.vals_off + 12 * i);
                        *l = (si, i);
                        break;
                    }
                }
            }
            for (o, &(si, i)) in oc.iter_mut().zip(&loc) {
                *o = self.segs.get(si).and_then(|s| s.value(i));
            }
        }
    }

    /// Number of keys (see the duplicate caveat in the module doc).
    pub fn len(&self) -> u64 {
        self.manifest.segs.iter().map(|s| s.count).sum()
    }

    /// True when the index holds no key.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The run log, oldest first.
    pub fn runs(&self) -> &[RunRecord] {
        &self.manifest.runs
    }

    /// Keys, bytes on disk, segments, runs.
    pub fn stats(&self) -> IndexStats {
        let man = fs::metadata(self.dir.join(MANIFEST)).map_or(0, |m| m.len());
        IndexStats {
            keys: self.len(),
            bytes_on_disk: man + self.manifest.segs.iter().map(|s| s.len).sum::<u64>(),
            segments: self.segs.len(),
            segment_keys: self.manifest.segs.iter().map(|s| s.count).collect(),
            runs: self.manifest.runs.len() as u64,
            batches: self.manifest.batches.len() as u64,
            last_run: self.manifest.runs.last().cloned(),
            last_batch: self.manifest.runs.last().and_then(|r| self.batch(r.batch)).cloned(),
        }
    }

    /// Add this run's new first occurrences (in any order; keys must not be
    /// in the index yet; if one key occurs several times in `new`, one of
    /// those entries is kept, unspecified which; each entry's batch must be
    /// one the index holds or `run`'s, see [`Index::batch_id`]) and record
    /// the run, atomically: after a crash at any point the index opens as
    /// exactly the old or the new state. Publishes the tiering merge of the
    /// existing segments (waiting for the one [`Index::start_merge`] began,
    /// or doing it now) and the new keys as a segment of their own. Releases
    /// the lock. Once the new manifest is in place nothing can fail: old
    /// segments that cannot be deleted are left as orphans for the next open.
    pub fn commit(mut self, new: Vec<Entry>, run: RunInfo) -> Result<()> {
        self.commit_in_place(new, run)
    }

    /// Like [`Index::commit`] but keeps the index open and locked.
    pub fn commit_in_place(&mut self, mut new: Vec<Entry>, run: RunInfo) -> Result<()> {
        if run.label.len() > MAX_LABEL {
            return Err(IndexError::Invalid {
                path: self.dir.clone(),
                reason: format!("run label longer than {MAX_LABEL} bytes"),
            });
        }
        let batch = run.batch.clone();
        let (batches, number) = self.batches_with(run.batch, &new)?;
        let before = self.len();
        let chunks = sort_chunks(&mut new);
        let rec = RunRecord {
            timestamp: run.timestamp,
            docs: run.docs,
            paragraphs: run.paragraphs,
            new_keys: 0,
            total_keys: 0,
            batch: number,
            label: run.label,
        };
        self.apply(&chunks, Some((rec, before)), batches, false)?;
        self.drop_journal(&batch);
        Ok(())
    }

    /// Merge all segments into one, atomically; releases the lock.
    pub fn compact(mut self) -> Result<()> {
        if self.segs.len() > 1 {
            let batches = self.manifest.batches.clone();
            self.apply(&[], None, batches, true)?;
        }
        Ok(())
    }

    /// Add every entry of the index at `other` (locked while read) whose key
    /// is not already present here; on conflict the existing entry is kept.
    /// `other`'s batches are added to this index's table (named ones matched
    /// by name). Records a run labelled `merge_from <path>` in an anonymous
    /// batch. Returns the number of keys added.
    pub fn merge_from(&mut self, other: &Path, timestamp: u64) -> Result<u64> {
        let same = fs::canonicalize(other).ok() == fs::canonicalize(&self.dir).ok();
        if same {
            return Err(IndexError::Invalid {
                path: other.to_path_buf(),
                reason: "cannot merge an index into itself".into(),
            });
        }
        let o = Index::open_existing(other)?;
        let (mut batches, map) = self.adopt_batches(&o.manifest.batches);
        let mut new = Vec::new();
        for s in &o.segs {
            for i in 0..s.meta.count as usize {
                let e = s.entry(i).ok_or_else(|| corrupt(&other.join(seg_name(s.meta.id)), "entry out of range"))?;
                if self.get(e.key).is_none() && o.get(e.key) == Some((e.doc, e.batch)) {
                    let batch = map.get(e.batch as usize).copied().ok_or_else(|| {
                        corrupt(&other.join(seg_name(s.meta.id)), format!("entry names unknown batch {}", e.batch))
                    })?;
                    new.push(Entry { batch, ..e });
                }
            }
        }
        drop(o);
        let n = new.len() as u64;
        let number = u32::try_from(batches.len()).unwrap_or(u32::MAX);
        batches.push(Batch::Anonymous);
        let before = self.len();
        let chunks = sort_chunks(&mut new);
        let rec = RunRecord {
            timestamp,
            batch: number,
            label: format!("merge_from {}", other.display()),
            ..RunRecord::default()
        };
        self.apply(&chunks, Some((rec, before)), batches, false)?;
        Ok(n)
    }

    /// Starts the tiering merge that the next commit would otherwise do
    /// inline ([`TIER_RATIO`]: the newest segments fold into one) on a
    /// background thread, so that it overlaps the run instead of lengthening
    /// its end. Lookups keep using the old, immutable segments meanwhile; the
    /// merged file stays an orphan (deleted by the next open after a crash)
    /// until [`Index::commit`] publishes it together with the run's keys.
    /// Dropping the index cancels and removes an unpublished merge. Does
    /// nothing if no merge is due or one is already running.
    pub fn start_merge(&mut self) -> Result<()> {
        let Some(keep) = self.due_merge().filter(|_| self.pending.is_none()) else { return Ok(()) };
        let id = self.manifest.next_id;
        let segs: Vec<Arc<Segment>> = self.segs[keep..].to_vec();
        let cancel = Arc::new(AtomicBool::new(false));
        let (dir, stop) = (self.dir.clone(), Arc::clone(&cancel));
        let handle = crate::threads::spawn("index-merge", move || {
            let srcs: Vec<Source<'_>> = segs.iter().map(|s| Source::Seg(s)).collect();
            write_segment(&dir, id, &srcs, &stop)
        })
        .map_err(io_err(&self.dir))?;
        let path = self.dir.join(seg_name(id));
        self.pending = Some(PendingMerge { keep, id, path, cancel, handle: Some(handle) });
        Ok(())
    }

    /// The tiering merge due now: `Some(keep)` when `segs[keep..]` (at least
    /// two segments) are to be merged into one.
    fn due_merge(&self) -> Option<usize> {
        let keep = tier_plan(&self.manifest.segs.iter().map(|s| s.count).collect::<Vec<_>>());
        (self.segs.len() >= keep + 2).then_some(keep)
    }

    /// Publishes a new state atomically: the tiering merge of the existing
    /// segments (the one [`Index::start_merge`] started, or done now), or
    /// with `full` all of them merged into one, plus `new` (sorted chunks,
    /// deduplicated) as the newest segment; then deletes merged-away files.
    /// The new keys are never merged in the commit that adds them: the next
    /// run's merge picks them up, so a commit writes only its own keys.
    fn apply(
        &mut self,
        new: &[&[Entry]],
        run: Option<(RunRecord, u64)>,
        batches: Vec<Batch>,
        full: bool,
    ) -> Result<()> {
        let never = AtomicBool::new(false);
        let mut m = self.manifest.clone();
        m.generation += 1;
        m.batches = batches;
        let mut created: Vec<SegMeta> = Vec::new();
        let mut keep = self.segs.len();
        let pending = self.pending.take();
        let fresh: Vec<Source<'_>> = new.iter().filter(|c| !c.is_empty()).map(|c| Source::New(c)).collect();
        if full {
            drop(pending);
            if self.segs.len() > 1 || !fresh.is_empty() {
                let mut srcs: Vec<Source<'_>> = self.segs.iter().map(|s| Source::Seg(s)).collect();
                srcs.extend(fresh);
                keep = 0;
                created.push(write_segment(&self.dir, m.next_id, &srcs, &never)?);
                m.next_id += 1;
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
                created.push(write_segment(&self.dir, m.next_id, &fresh, &never)?);
                m.next_id += 1;
            }
        }
        if !created.is_empty() {
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
        write_manifest(&self.dir, &m)?;
        // The new state is durable. Swap in-memory state, then delete old files.
        let old: Vec<Arc<Segment>> = self.segs.drain(keep..).collect();
        self.segs.extend(opened);
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
        Ok(())
    }
}

/// `seg-` + 16 lowercase hex digits + `.ndx`: the only segment names.
fn is_segment_name(n: &str) -> bool {
    n.strip_prefix("seg-")
        .and_then(|r| r.strip_suffix(".ndx"))
        .is_some_and(|hex| hex.len() == 16 && hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)))
}

/// Pieces a commit's keys are sorted in, and a segment's checksum is
/// computed in, in parallel on the caller's rayon pool (the run's thread
/// budget, see [`crate::threads`]). Fixed, so that the pieces, and with
/// them everything written, do not depend on the number of threads.
const PIECES: usize = 8;

/// Split `v` into [`PIECES`] chunks and sort them in parallel (in place, no
/// allocation); the chunks become separate sorted merge inputs.
fn sort_chunks(v: &mut [Entry]) -> Vec<&[Entry]> {
    use rayon::prelude::*;
    let per = v.len().div_ceil(PIECES).max(1 << 16);
    v.par_chunks_mut(per).for_each(|c| c.sort_unstable_by_key(|e| e.key));
    v.chunks(per).collect()
}

#[cfg(test)]
mod tests;
