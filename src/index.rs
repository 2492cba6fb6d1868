//! Persistent, crash-safe, locked, versioned set of paragraph keys.
//!
//! An index is a directory holding immutable, sorted, memory-mapped *segment*
//! files plus one small `MANIFEST` that names the live segments and the run log.
//!
//! The modules: `segment` (the segment file format, validation, lookup),
//! `global` (the index-wide filter that answers most absent keys), `bits`
//! (a key's bits in a filter block, set and tested a word at a time or in
//! one AVX-512 register), `sources` (the k-way merge of sorted sources, or
//! one sorted run, that a segment is written from), `writer` (segment
//! writing), `manifest` (the manifest
//! format), `merge` (commits and the size-tiering merge, crash safety),
//! `error`, `stats`, `batch`, `journal` and `replay`. Measurements are in
//! `benches/INDEX.md`.
//!
//! # Use
//! ```ignore
//! # use newsdedup::index::*;
//! # fn main() -> Result<(), IndexError> {
//! let mut idx = Index::open(std::path::Path::new("/var/lib/newsdedup/index"))?; // locks
//! idx.start_merge()?; // optional: do the due tiering merge while we work
//!                     // (start_merge_in_pool: as a job on the caller's rayon pool)
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
//! * `filter-XXXXXXXXXXXXXXXX.ndf` — the index-wide filter named in the
//!   manifest (format 4; replaced by every commit that adds keys).
//! * `filter.spare` — the filter before the current one, written over (under
//!   its new name) by the next commit of a filter of its size; never read
//!   (see `global`, "The spare").
//! * `pending-XXXXXXXXXXXXXXXX.jnl` — first occurrences journaled by a run
//!   that changes its input, for the next run of its batch (see [`Journal`]);
//!   removed by the commit of that batch.
//! * `replay-XXXXXXXXXXXXXXXX.rpl` — what the in-place runs of a batch
//!   reported about the files they replaced, for its reruns (see
//!   [`ReplayLog`]); kept for the most recently committed batches only.
//! * `MANIFEST.tmp`, `WRITE-PROBE.tmp` — temporaries; any left by a crash are
//!   deleted on the next open, as are segment and filter files (exactly
//!   those name patterns) not named in the manifest (orphans). A commit
//!   deletes a spare it cannot write over (another size than its filter, not
//!   a plain file, another name too). No other file is ever
//!   deleted: a folder holding anything else is refused as
//!   [`IndexError::Foreign`] unless it has a `MANIFEST`, and then the other
//!   files are left alone.
//!
//! Opening checks that the folder is writable (a probe file is created and
//! removed), so a read-only index is reported before a run publishes any
//! output, not at its commit.
//!
//! # Why 128 bits of SHA-256 suffice
//! For n distinct paragraphs the probability that any two share a 128-bit
//! prefix is about n²/2¹²⁹: for n = 10¹⁰ (decades of news) that is ≈ 1.5·10⁻¹⁹.
//!
use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

mod batch;
mod bits;
pub mod cluster;
mod error;
mod global;
mod journal;
mod key_docs;
mod lookup;
mod manifest;
mod merge;
mod new_keys;
mod replay;
mod segment;
mod sources;
mod stats;
mod writer;

pub use batch::{Batch, BatchId};
pub use journal::Journal;
use journal::is_journal_name;
pub(crate) use key_docs::{KeyDoc, SortedKeyDocs};
pub use lookup::IndexView;
pub use new_keys::NewKeys;
use replay::is_replay_name;
pub use replay::{DocFate, REPLAYS_KEPT, ReplayDoc, ReplayFile, ReplayLog, hash_bytes, hash_file};

pub use error::IndexError;
use error::{Result, corrupt, io_err};
use global::{GlobalFilter, filter_name, is_filter_name};
use manifest::{Manifest, write_manifest};
use merge::{Fresh, PIECES, PendingMerge, sort_entries};
use segment::{FilterMask, Segment, seg_name};
pub use stats::IndexStats;

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

/// What the caller tells [`Index::commit`] about a run: the batch by its
/// name. The commit turns it into a [`RunRecord`], which is a different
/// thing on purpose: the batch becomes its number in the manifest's batch
/// table, and the key counts only the commit can know are added. Keeping the
/// two apart means a caller can never pass counts the index did not compute.
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

/// A run as recorded in the manifest (made by the commit from a
/// [`RunInfo`]; see there why the two are separate).
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

/// Seconds since the Unix epoch, for run records (0 if the clock is before it).
pub fn unix_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// On-disk format version of the index (its manifest): 4 since the
/// index-wide filter file. Indexes of version 3 are read (and upgraded by
/// their next commit, see `global`).
pub const FORMAT_VERSION: u32 = 4;
/// Format version of segment, journal and replay files (unchanged by
/// format 4 of the index, which added the filter file).
pub const SEGMENT_VERSION: u32 = 3;
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
    /// The index-wide filter of `manifest.filter`.
    filter: Option<Arc<GlobalFilter>>,
    #[cfg(test)]
    fail: Option<FailPoint>,
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
    /// validate every file, including full segment and filter checksums. An existing
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
        let ours = |n: &String| {
            n == "LOCK"
                || n == MANIFEST_TMP
                || n == PROBE
                || is_segment_name(n)
                || is_filter_name(n)
                || n == global::SPARE
                || is_journal_name(n)
                || is_replay_name(n)
        };
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
        let filter = match manifest.filter {
            Some(meta) => Some(Arc::new(GlobalFilter::open(&path.join(filter_name(meta.id)), meta, true)?)),
            None => None,
        };
        let idx = Index {
            dir: path.to_path_buf(),
            pending: None,
            _lock: lock,
            manifest,
            segs,
            filter,
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
            let live = self.manifest.segs.iter().any(|s| seg_name(s.id) == n)
                || self.manifest.filter.is_some_and(|f| filter_name(f.id) == n);
            let orphan = n == MANIFEST_TMP || n == PROBE || is_segment_name(&n) || is_filter_name(&n);
            if orphan && !live {
                let p = self.dir.join(&n);
                fs::remove_file(&p).map_err(io_err(&p))?;
            }
        }
        Ok(())
    }

    /// Location of the first occurrence of `key`, if present. No allocation;
    /// one line of the index-wide filter, which answers ~99% of absent keys;
    /// then per segment whose filter admits the key (oldest first, stopping
    /// at a hit) one read of the cache-resident directory and ~1 cache line
    /// of keys; +1 line on a hit.
    /// Latency-bound (~1 DRAM miss per segment); for throughput prefer
    /// [`Index::get_many`] or call [`Index::prefetch`] early.
    #[inline]
    pub fn get(&self, key: u128) -> Option<(u64, u32)> {
        if self.filter.as_ref().is_some_and(|f| !f.admits(key, bits::Words)) {
            return None;
        }
        let mask = FilterMask::of(key);
        self.segs.iter().find_map(|s| if s.admits(key, &mask) { s.locate(key).and_then(|i| s.value(i)) } else { None })
    }

    /// Hint the CPU to start loading the cache lines `get(key)` will need, so
    /// the miss latency overlaps with other work (e.g. hashing the next
    /// paragraph). Never allocates; a no-op on non-x86_64.
    #[inline]
    pub fn prefetch(&self, key: u128) {
        match &self.filter {
            Some(f) => f.prefetch(key),
            None => self.segs.iter().for_each(|s| s.prefetch_filter(key)),
        }
    }

    /// Batched lookup: `out[i] = self.get(keys[i])` for `i < min(len)`, with
    /// software prefetching ahead of the keys so cache misses overlap
    /// (several times the throughput of `get` in a loop): the index-wide
    /// filter's line of each key is asked for 24 keys before it is tested,
    /// and the keys it admits (or, in an index of format 3, every key) go
    /// through the segments 16 at a time. No allocation.
    pub fn get_many(&self, keys: &[u128], out: &mut [Option<(u64, u32)>]) {
        lookup::get_many(&self.segs, self.filter.as_deref(), keys, out);
    }

    /// The segments as they are now, for lookups that run while the index
    /// is borrowed mutably elsewhere (see [`IndexView`]).
    pub fn view(&self) -> IndexView {
        IndexView::of(&self.segs, self.filter.as_ref())
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
    pub fn commit_in_place(&mut self, new: Vec<Entry>, run: RunInfo) -> Result<()> {
        self.check_label(&run)?;
        let (batches, number) = self.batches_with(run.batch.clone(), new.iter().map(|e| e.batch))?;
        let new = sort_entries(new);
        self.commit_sorted(Fresh::Entries(&[&new]), run, batches, number)
    }

    /// Like [`Index::commit_in_place`], with the entries gathered in a
    /// [`NewKeys`] (whose buckets are sorted apart, in the cache: the way a
    /// run gathers them; or a run's seen-set sorted where it stands, whose
    /// sequences the segment's writer merges as it goes).
    pub fn commit_keys(&mut self, new: NewKeys, run: RunInfo) -> Result<()> {
        self.check_label(&run)?;
        let (batches, number) = self.batches_with(run.batch.clone(), new.batches())?;
        match new.into_sorted() {
            new_keys::Sorted::Entries(pieces) => {
                let refs: Vec<&[Entry]> = pieces.iter().map(Vec::as_slice).collect();
                self.commit_sorted(Fresh::Entries(&refs), run, batches, number)
            }
            new_keys::Sorted::KeyDocs(sorted, batch) => {
                let seqs: Vec<Vec<&[KeyDoc]>> = sorted.iter().map(|s| s.pieces()).collect();
                self.commit_sorted(Fresh::KeyDocs(&seqs, batch), run, batches, number)
            }
        }
    }

    fn check_label(&self, run: &RunInfo) -> Result<()> {
        if run.label.len() > MAX_LABEL {
            return Err(IndexError::Invalid {
                path: self.dir.clone(),
                reason: format!("run label longer than {MAX_LABEL} bytes"),
            });
        }
        Ok(())
    }

    /// The commit of `new` as a run of batch `number`.
    fn commit_sorted(&mut self, new: Fresh<'_>, run: RunInfo, batches: Vec<Batch>, number: u32) -> Result<()> {
        let before = self.len();
        let rec = RunRecord {
            timestamp: run.timestamp,
            docs: run.docs,
            paragraphs: run.paragraphs,
            new_keys: 0,
            total_keys: 0,
            batch: number,
            label: run.label,
        };
        self.apply(new, Some((rec, before)), batches, false)?;
        self.drop_journal(&run.batch);
        Ok(())
    }

    /// Merge all segments into one, atomically; releases the lock.
    pub fn compact(mut self) -> Result<()> {
        if self.segs.len() > 1 {
            let batches = self.manifest.batches.clone();
            self.apply(Fresh::Entries(&[]), None, batches, true)?;
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
        let new = sort_entries(new);
        let rec = RunRecord {
            timestamp,
            batch: number,
            label: format!("merge_from {}", other.display()),
            ..RunRecord::default()
        };
        self.apply(Fresh::Entries(&[&new]), Some((rec, before)), batches, false)?;
        Ok(n)
    }
}

/// `seg-` + 16 lowercase hex digits + `.ndx`: the only segment names.
fn is_segment_name(n: &str) -> bool {
    n.strip_prefix("seg-")
        .and_then(|r| r.strip_suffix(".ndx"))
        .is_some_and(|hex| hex.len() == 16 && hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)))
}

#[cfg(test)]
mod tests;
