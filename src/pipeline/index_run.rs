//! The persistent index during a run: the run's batch, the guards checked
//! before anything is published, the lookups, and the commit — the last
//! step of a run.
//!
//! # Batches and retries
//!
//! A run belongs to a batch: `--batch NAME`, or by default the canonical
//! input path as raw bytes; standard input without `--batch` is an
//! anonymous batch that no later run can retry. A run of a batch the index
//! already holds is a *retry*: it keeps exactly what the first run kept
//! (see [`crate::dedup::Deduper::decide_with_history`]), names the same
//! first occurrences, and records nothing unless it found keys the index
//! does not hold (its input changed).
//!
//! # Order of a run's steps
//!
//! 1. Everything that can be checked is checked: `--out`, side-file and
//!    `--index` paths against the input, the index opened, locked,
//!    verified and probed for writability, and the temporary files of
//!    `--explain`, `--rejects` and `--report` created beside their final
//!    names.
//! 2. Documents are decided and their outputs written (each file atomically).
//!    With `--in-place`, the first occurrences of a window are journaled
//!    (see [`crate::index::Journal`]) and the files about to be replaced
//!    recorded with their report rows and explain lines (see
//!    [`crate::index::ReplayFile`]) before they are replaced, so a run
//!    killed before its commit leaves the next run of the batch able to
//!    recognise the files it cleaned, and any later run of the batch able
//!    to report them as the first run did.
//! 3. The explain and rejects files are renamed into place, then the report
//!    is written and renamed into place.
//! 4. The index commit, last: one atomic manifest rename. Nothing after it
//!    can fail, so exit code 0 (or 1) means "recorded", and a failure or a
//!    kill at any earlier point leaves the index as it was, so the rerun is
//!    a plain rerun.
//!
//! [`crate::session`] (documents held in memory, the Python package) uses
//! the same [`IndexRun`] through [`IndexRun::open_batch`],
//! [`IndexRun::commit_counts`] and [`history`], so its batches, retries and
//! lookups are the CLI's.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use crate::config::{Config, Input, Output};
use crate::dedup::Deduper;
use crate::error::{Error, Result};
use crate::index::{Batch, BatchId, Entry, Index, IndexError, Journal, NewKeys, ReplayFile, ReplayLog, RunInfo};
use crate::report::Report;
use crate::threads::Budget;

mod lookup;
pub use lookup::{Lookup, history};

/// The index of a run with `--index` (or of a [`crate::session::Session`]).
pub struct IndexRun {
    index: Index,
    batch: Batch,
    id: BatchId,
    /// `--dry-run`: looked up, never committed.
    dry_run: bool,
    /// The run's label in the index: the input path.
    label: String,
    /// `--quiet`: no notice that a retry left the index unchanged.
    quiet: bool,
    /// This run's new first occurrences: gathered as documents are decided,
    /// bucketed by their top byte for the commit's sort, or the seen-set's
    /// tables sorted where they stand at the end
    /// ([`IndexRun::set_new_firsts`]; [`NewKeys`]).
    new_keys: NewKeys,
    /// First occurrences journaled by a killed `--in-place` run of this
    /// batch (key -> document anchor): this run's own, like a retry's.
    pending: Arc<HashMap<u128, u64>>,
    /// `--in-place`: where first occurrences are journaled before the
    /// files holding them are replaced, and those added since the last
    /// [`IndexRun::flush`].
    journal: Option<Journal>,
    unjournaled: Vec<(u128, u64)>,
    /// What earlier `--in-place` runs of this batch recorded about the
    /// files they replaced (see [`crate::index::ReplayFile`]), and the last
    /// record of each path.
    replays: Vec<ReplayFile>,
    replayed: HashMap<Vec<u8>, usize>,
    /// `--in-place`: where this run records the files it replaces.
    replay_log: Option<ReplayLog>,
}

impl IndexRun {
    /// Opens the index for a run (`None` without `--index`, or for a dry
    /// run when no index exists yet: a dry run never creates one).
    pub(super) fn open(cfg: &Config, budget: &Budget) -> Result<Option<IndexRun>> {
        let Some(path) = &cfg.index else { return Ok(None) };
        let dry_run = cfg.output == Output::DryRun;
        let index = if dry_run {
            if !path.join("MANIFEST").is_file() {
                return Ok(None);
            }
            Index::open_existing(path)?
        } else {
            let mut index = Index::open(path)?;
            // The index's housekeeping overlaps the run, as one job on the
            // run's pool; with one thread, the commit merges.
            if budget.has_spare() {
                index.start_merge_in_pool()?;
            }
            index
        };
        let batch = batch_of(cfg)?;
        let label = match &cfg.input {
            Input::Stdin => "<stdin>".to_owned(),
            Input::Path(p) => p.display().to_string(),
            Input::Paths(ps) => ps.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(" "),
        };
        let in_place = matches!(cfg.output, Output::InPlace { .. });
        let mut run = IndexRun::start(index, batch, label, dry_run, in_place, cfg.quiet)?;
        if cfg.input != Input::Stdin {
            run.replays = run.index.replays(&run.batch)?;
            run.replayed = run.replays.iter().enumerate().map(|(i, f)| (f.rel.clone(), i)).collect();
            if in_place && !dry_run {
                run.replay_log = run.index.replay_log(&run.batch)?;
            }
        }
        Ok(Some(run))
    }

    /// Opens (creating it if absent), locks and verifies the index at
    /// `path` for a run of `batch` that records what it keeps first and does
    /// not change its input: a [`crate::session::Session`]. `label` is
    /// recorded with each commit. Its tiering merge starts in the background.
    pub fn open_batch(path: &Path, batch: Batch, label: String) -> Result<IndexRun, IndexError> {
        let mut index = Index::open(path)?;
        index.start_merge()?;
        IndexRun::start(index, batch, label, false, false, true)
    }

    /// The run of `batch` over an open index: is it a retry, and what did a
    /// killed `--in-place` run of it journal.
    fn start(
        index: Index,
        batch: Batch,
        label: String,
        dry_run: bool,
        in_place: bool,
        quiet: bool,
    ) -> Result<IndexRun, IndexError> {
        let id = index.batch_id(&batch);
        let pending = if id.retry { Vec::new() } else { index.pending(&batch, id.number)? };
        let journal = if in_place { index.journal(&batch)? } else { None };
        Ok(IndexRun {
            index,
            batch,
            id,
            dry_run,
            label,
            quiet,
            new_keys: NewKeys::default(),
            pending: Arc::new(pending.into_iter().map(|e| (e.key, e.doc)).collect()),
            journal,
            unjournaled: Vec::new(),
            replays: Vec::new(),
            replayed: HashMap::new(),
            replay_log: None,
        })
    }

    /// How many distinct paragraph keys to size the run's seen-set for
    /// ([`crate::dedup::Deduper::reserve_keys`]) when its inputs hold
    /// `input_bytes` bytes: see [`expected_keys`]. 0 for a dry run.
    pub(super) fn expected_keys(&self, input_bytes: u64) -> usize {
        if self.dry_run {
            return 0;
        }
        let last: Vec<u64> = self.index.runs().iter().rev().map(|r| r.new_keys).filter(|&n| n > 0).take(4).collect();
        expected_keys(&last, input_bytes)
    }

    /// Sizes the run's new keys for about `keys` of them (the estimate of
    /// [`IndexRun::expected_keys`], made before the first decision), so
    /// that their buckets are allocated once instead of growing by doubling
    /// (every growth copies a bucket into fresh pages the kernel zeroes),
    /// and allocated and touched on the pool's threads together
    /// ([`NewKeys::with_capacity`]). A run that never tells its input's
    /// size (standard input) grows them as it goes. Nothing once a key is
    /// held (a dry run's estimate is 0: no room).
    pub(super) fn reserve_new_keys(&mut self, keys: usize) {
        if self.new_keys.is_empty() {
            self.new_keys = NewKeys::with_capacity(keys);
        }
    }

    /// The record of a file an earlier run of this batch replaced in place
    /// with exactly `bytes` (now read from `rel`), if any.
    pub(super) fn replayed(&self, rel: &Path, bytes: &[u8]) -> Option<usize> {
        let i = *self.replayed.get(rel.as_os_str().as_encoded_bytes())?;
        let hash = self.replays[i].hash?;
        (crate::index::hash_bytes(bytes) == hash).then_some(i)
    }

    /// [`IndexRun::replayed`] for a file read as a stream (a record shard):
    /// hashed first, only when a record names its path.
    pub(super) fn replayed_file(&self, rel: &Path, path: &Path) -> Option<usize> {
        let i = *self.replayed.get(rel.as_os_str().as_encoded_bytes())?;
        let hash = self.replays[i].hash?;
        (crate::index::hash_file(path).ok()? == hash).then_some(i)
    }

    /// Record `i` (from [`IndexRun::replayed`] or [`IndexRun::removed`]).
    pub(super) fn replay(&self, i: usize) -> &ReplayFile {
        &self.replays[i]
    }

    /// The records of files an earlier run of this batch removed in place.
    pub(super) fn removed(&self) -> Vec<usize> {
        let mut v: Vec<usize> = self.replayed.values().copied().filter(|&i| self.replays[i].hash.is_none()).collect();
        v.sort_unstable();
        v
    }

    /// True when this run records the files it replaces (`--in-place`).
    pub(super) fn recording(&self) -> bool {
        self.replay_log.is_some()
    }

    /// `--in-place`: where the files about to be replaced are recorded.
    pub(super) fn replay_log(&mut self) -> Option<&mut ReplayLog> {
        self.replay_log.as_mut()
    }

    /// `--in-place`: journals the first occurrences decided so far; called
    /// before the files holding them are replaced (see [`Journal`]).
    pub(super) fn flush(&mut self) -> Result<()> {
        if let Some(journal) = &mut self.journal {
            journal.append(&self.unjournaled)?;
            self.unjournaled.clear();
        }
        Ok(())
    }

    /// True when the run's first occurrences are to be recorded (not a dry run).
    pub fn records(&self) -> bool {
        !self.dry_run
    }

    /// This run's batch number (entries of it are this run's own).
    pub fn batch_number(&self) -> u32 {
        self.id.number
    }

    /// True when the index already held a committed run of this batch when
    /// the run started (or, for a session, at its last commit).
    pub fn is_retry(&self) -> bool {
        self.id.retry
    }

    /// Asks for the places a document's new keys would be recorded at
    /// ([`NewKeys::prefetch`]): called for the next document while this one
    /// is decided.
    pub(super) fn warm(&self, keys: &[crate::key::Keyed], whole: &crate::key::Digest) {
        for k in keys {
            self.new_keys.prefetch(k.digest.prefix());
        }
        self.new_keys.prefetch(whole.prefix());
    }

    /// True when this run's first occurrences can be read from its
    /// seen-set's tables at its end ([`crate::dedup::Deduper::keep_firsts_in_tables`])
    /// rather than gathered decision by decision ([`IndexRun::add`]): a run
    /// that records, is no retry of its batch, takes up no journal of a
    /// killed run and keeps none of its own (not `--in-place`, whose
    /// journal is written as the run goes).
    pub(super) fn takes_firsts_at_end(&self) -> bool {
        !self.dry_run && !self.id.retry && self.pending.is_empty() && self.journal.is_none() && self.replays.is_empty()
    }

    /// All of a run's first occurrences at once, at its end (see
    /// [`IndexRun::takes_firsts_at_end`]): the new keys the commit writes,
    /// the tables of `deduper` (its last use) sorted where they stand
    /// ([`Deduper::into_key_docs`]); nothing unless it kept them there.
    pub(super) fn set_new_firsts(&mut self, deduper: Deduper) {
        if let Some(sorted) = deduper.into_key_docs() {
            self.new_keys = NewKeys::from_sorted(sorted, self.id.number);
        }
    }

    /// Records the first occurrences a decision added: `(key, document anchor)`.
    pub fn add(&mut self, firsts: impl Iterator<Item = (u128, u64)>) {
        let batch = self.id.number;
        if self.journal.is_some() {
            let from = self.unjournaled.len();
            self.unjournaled.extend(firsts);
            self.new_keys.extend(self.unjournaled[from..].iter().map(|&(key, doc)| Entry { key, doc, batch }));
        } else {
            self.new_keys.extend(firsts.map(|(key, doc)| Entry { key, doc, batch }));
        }
    }

    /// The name of a batch, for `--explain`.
    pub fn batch_name(&self, number: u32) -> String {
        self.index.batch(number).unwrap_or(&self.batch).display()
    }

    /// The last step of a run: adds this run's first occurrences and records
    /// the run, atomically. A dry run adds nothing; a retry that found
    /// nothing new leaves the index untouched (the run is not recorded twice).
    pub(super) fn commit(mut self, report: &Report) -> Result<()> {
        self.commit_counts(report.totals.documents_read, report.totals.paragraphs_in)?;
        // Dropping `self` releases the lock.
        Ok(())
    }

    /// The commit of a run that goes on: records the first
    /// occurrences added since the last commit, as a run of `docs`
    /// documents and `paragraphs` paragraphs, and keeps the index open and
    /// locked; later runs of the batch — and this one after the commit —
    /// are retries. Returns the number of keys added (0, and nothing
    /// recorded, for a dry run or a retry that found nothing new).
    pub fn commit_counts(&mut self, docs: u64, paragraphs: u64) -> Result<u64, IndexError> {
        if self.dry_run {
            return Ok(0);
        }
        if self.id.retry && self.new_keys.is_empty() {
            self.index.drop_journal(&self.batch);
            if !self.quiet {
                eprintln!("newsdedup: a retry of batch {}: nothing new, the index is unchanged", self.batch.display());
            }
            return Ok(0);
        }
        let run = RunInfo {
            timestamp: crate::index::unix_now(),
            docs,
            paragraphs,
            label: self.label.clone(),
            batch: self.batch.clone(),
        };
        // What a killed run journaled and this one found in place.
        let number = self.id.number;
        let mut new_keys = std::mem::take(&mut self.new_keys);
        let index = &self.index;
        let pending = std::mem::take(&mut self.pending);
        new_keys.extend(pending.iter().filter(|&(&key, _)| index.get(key).is_none()).map(|(&key, &doc)| Entry {
            key,
            doc,
            batch: number,
        }));
        let added = new_keys.len() as u64;
        self.index.commit_keys(new_keys, run)?;
        self.index.prune_replays();
        self.unjournaled.clear();
        // The batch is now in the table (an anonymous one under a new number
        // each time: a later commit records another anonymous batch).
        self.id = self.index.batch_id(&self.batch);
        Ok(added)
    }
}

/// The distinct paragraph keys a run is expected to keep first, from the
/// new keys of the index's `last` runs that added any (newest first, up to
/// 4: a retry or a day of nothing new says nothing of a day's size) and the
/// size of its inputs: the *fewest* of those runs' new keys, at most one per
/// 64 input bytes and at most [`MAX_EXPECTED_KEYS`]; 0 when no earlier run
/// added keys.
///
/// A run with an index sizes its seen-set by this up front (a typical day
/// of 1.1M new 15-word paragraphs faulted 18 fewer huge pages, 36 MB, its
/// table no longer doubling 2^19 -> 2^20 -> 2^21 spots: issue 18,
/// benches/INDEX.md eleventh pass). A hash table's keys land all over it,
/// so an array too large is touched whole: hence the fewest, not the most,
/// of the last runs (a bulk load among them does not size a small day's
/// table), and the bound by the input's size (an input of mostly repeats,
/// or a first run after a bulk load, is sized by what it could hold at
/// most: 64 bytes per paragraph is shorter than news paragraphs run).
/// Compressed inputs count their compressed size: an underestimate, which
/// the table grows out of as it would have anyway.
fn expected_keys(last: &[u64], input_bytes: u64) -> usize {
    let fewest = last.iter().copied().min().unwrap_or(0);
    usize::try_from(fewest.min(input_bytes / 64).min(MAX_EXPECTED_KEYS)).unwrap_or(usize::MAX)
}

/// The most keys [`expected_keys`] sizes a seen-set for: 3 × 2^20, an array
/// of 2^22 spots (96 MiB). A day of mostly repeats after days of many new
/// keys touches its whole reserved array for little, so what an estimate
/// can cost is bounded; past it the table doubles as it would have (the
/// doublings saved are the small ones, which cost the least).
const MAX_EXPECTED_KEYS: u64 = 3 << 20;

/// The run's batch: `--batch`, else the canonical input path as raw bytes;
/// standard input without `--batch` is anonymous.
fn batch_of(cfg: &Config) -> Result<Batch> {
    if let Some(name) = &cfg.batch {
        return Ok(Batch::Named(name.clone()));
    }
    match &cfg.input {
        Input::Stdin => Ok(Batch::Anonymous),
        // Several inputs: their canonical paths in order, NUL-separated.
        Input::Path(_) | Input::Paths(_) => {
            let mut name = Vec::new();
            for (i, p) in cfg.input.paths().iter().enumerate() {
                let canonical = std::fs::canonicalize(p).map_err(|e| Error::io(p, e))?;
                if i > 0 {
                    name.push(0);
                }
                name.extend(canonical.into_os_string().into_encoded_bytes());
            }
            Ok(Batch::Named(name))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_expects_the_fewest_new_keys_of_the_last_runs_at_most_one_per_64_bytes() {
        assert_eq!(expected_keys(&[], 1 << 30), 0, "no earlier run");
        assert_eq!(expected_keys(&[1_100_000, 1_000_000, 1_200_000], 1 << 30), 1_000_000);
        // A bulk load among the last runs does not size a daily run.
        assert_eq!(expected_keys(&[1_000_000, 50_000_000], 1 << 30), 1_000_000);
        // Nor a first run after it, beyond what its input could hold.
        assert_eq!(expected_keys(&[50_000_000], 78_000_000), 78_000_000 / 64);
        assert_eq!(expected_keys(&[5], 0), 0, "an empty input");
        // Never more than 3 × 2^20 keys (2^22 spots), whatever the days were.
        assert_eq!(expected_keys(&[100_000_000; 4], 1 << 40), 3 << 20);
    }
}
