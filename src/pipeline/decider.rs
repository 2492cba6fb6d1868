//! The sequential step of a run: every keep/drop decision in corpus order
//! ([`Deduper`]), the names of documents, the explain and rejects files,
//! the report rows and the run's index. One `Decider` per run, owned by the
//! thread that drives it ([`super::run`]); nothing here uses threads.

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::Finished;
use super::index_run::IndexRun;
use super::scaled::{KeySink, ShardHistory};
use crate::config::Config;
use crate::dedup::{Deduper, EARLIER_RUN, History, Plan, Verdict};
use crate::diag::diag;
use crate::document::Document;
use crate::error::{Error, Result};
use crate::report::{FileRow, Report};
use crate::side::SideFile;
use crate::threads::Budget;
use crate::write::sweep_stale_temps;

/// The sequential part of a run: the seen-set, document names, the explain
/// and rejects files, the report.
pub(super) struct Decider {
    pub(super) deduper: Deduper,
    /// Input names (relative paths), by input number.
    pub(super) inputs: Vec<String>,
    /// Document number -> (input number, line; 0 for a whole file): 16
    /// bytes per document, so names are not stored per record.
    pub(super) docs: Vec<(u32, u64)>,
    /// Document number -> record id (`--id-field`), for records that have one.
    pub(super) ids: DocIds,
    pub(super) explain: Option<SideFile>,
    /// `--explain-spared`: spared short repeats are listed too.
    pub(super) explain_spared: bool,
    pub(super) rejects: Option<SideFile>,
    /// `--report`: created at the start, written after everything else.
    pub(super) report_file: Option<SideFile>,
    /// The persistent index, when `--index` is given.
    pub(super) index: Option<IndexRun>,
    /// Folders already rid of stale temporary files.
    pub(super) swept: std::collections::HashSet<PathBuf>,
    /// The `--out` folder did not exist when the run started and is staged
    /// ([`crate::write::Staged`]): no earlier run left a temporary file in
    /// it, so nothing is swept, and no one else writes in it, so its files
    /// are created under their names.
    pub(super) fresh_out: bool,
    pub(super) report: Report,
    /// Retries over files cleaned in place (see [`super::replay`]).
    pub(super) replay: super::replay::Replaying,
    /// A scale-out step (see [`crate::scale`]), when this is one.
    pub(super) scaled: Option<Scaled>,
    /// Frees the decided batches and windows of the whole run (one, so that
    /// at most one of them waits to be freed, whatever the number of shards).
    pub(super) frees: crate::threads::Frees,
}

/// Record ids by document number, kept for the whole run (an explain line
/// or a report row names a first occurrence by its id): the ids one after
/// another in blocks of [`ID_BLOCK`] bytes, and per document with an id its
/// number and where its id lies. 16 bytes per document besides the id
/// itself (and the list's room to grow), and no allocation per document: a
/// map of one boxed string per document took ~70 bytes per document on the
/// bench's JSONL (a 35-byte id), and its insertions (SipHash) were 1.2% of
/// a -j1 run's samples, besides an allocation each. A block is filled up
/// to its size and never grown: the ids of one growing string (6.4 MB on
/// the bench's JSONL) were copied at every doubling into memory the run
/// had not touched yet, ~2.7% of a `-j2` run's samples (benches/JSONL.md,
/// twenty-seventh pass).
#[derive(Default)]
pub(super) struct DocIds {
    blocks: Vec<String>,
    /// The documents with an id, in increasing order.
    docs: Vec<IdAt>,
}

/// The bytes of a block of [`DocIds`] (an id longer has a block of its own).
const ID_BLOCK: usize = 1 << 20;

/// Where document `doc`'s id lies: `blocks[block][start..end]`, or the
/// whole block when `start` is [`WHOLE_BLOCK`] (an id longer than
/// [`ID_BLOCK`], in a block of its own, whose offsets may not fit `u32`).
#[derive(Clone, Copy)]
struct IdAt {
    doc: u32,
    block: u32,
    start: u32,
    end: u32,
}

/// See [`IdAt`].
const WHOLE_BLOCK: u32 = u32::MAX;

impl DocIds {
    /// Records `id` as document `doc`'s. Documents are numbered in corpus
    /// order, so `doc` is nearly always past the last one recorded (then
    /// this is an append); a document recorded again keeps its first id.
    pub(super) fn insert(&mut self, doc: u32, id: &str) {
        let at = match self.docs.last() {
            Some(last) if last.doc >= doc => match self.docs.binary_search_by_key(&doc, |d| d.doc) {
                Ok(_) => return,
                Err(at) => at,
            },
            _ => self.docs.len(),
        };
        let (block, start, end) = self.store(id);
        // A block holds one id at least, and there are fewer ids than
        // `u32::MAX` (documents are numbered in `u32`: `Decider::decide`).
        let block = u32::try_from(block).unwrap_or(u32::MAX);
        // Out of order (not reached by the pipeline) only the list moves:
        // an id's place in the blocks does not follow its document's.
        self.docs.insert(at, IdAt { doc, block, start, end });
    }

    /// Copies `id` into the blocks: which block, and where in it
    /// ([`WHOLE_BLOCK`] for an id in a block of its own).
    fn store(&mut self, id: &str) -> (usize, u32, u32) {
        if id.len() > ID_BLOCK {
            self.blocks.push(id.to_owned());
            return (self.blocks.len() - 1, WHOLE_BLOCK, WHOLE_BLOCK);
        }
        match self.blocks.last_mut() {
            // By length, not capacity: a long id's own block takes nothing
            // more (not even an empty id), and a block the allocator made
            // larger than asked still stops at `ID_BLOCK`.
            Some(b) if b.len() + id.len() <= ID_BLOCK => {}
            _ => self.blocks.push(String::with_capacity(ID_BLOCK)),
        }
        let k = self.blocks.len() - 1;
        let b = &mut self.blocks[k];
        // Offsets within `ID_BLOCK` (1 MiB): they fit in `u32`.
        let start = b.len() as u32;
        b.push_str(id);
        (k, start, b.len() as u32)
    }

    /// Document `doc`'s id, when it has one.
    pub(super) fn get(&self, doc: u32) -> Option<&str> {
        let at = self.docs[self.docs.binary_search_by_key(&doc, |d| d.doc).ok()?];
        let block = self.blocks.get(at.block as usize)?;
        if at.start == WHOLE_BLOCK {
            return Some(block);
        }
        Some(&block[at.start as usize..at.end as usize])
    }

    /// How many documents have an id.
    pub(super) fn len(&self) -> usize {
        self.docs.len()
    }

    /// How many ids there is room for without growing.
    #[cfg(test)]
    pub(super) fn capacity(&self) -> usize {
        self.docs.capacity()
    }

    /// Room for `more` ids, faulted in on the pool (see
    /// [`Decider::expect_documents`]).
    fn reserve(&mut self, more: usize) {
        crate::threads::reserve_touched(&mut self.docs, more);
    }
}

/// The part a scale-out step plays in the ordered decisions.
pub(crate) enum Scaled {
    /// `keys`: each document's keys go to the sink; nothing is decided
    /// (every paragraph is "kept", nothing is remembered).
    Keys(Box<dyn KeySink>),
    /// `apply`: each document's history comes from the shard's drop list;
    /// the first occurrences the shard adds are gathered.
    Apply(Box<dyn ShardHistory>, Vec<(u128, u64)>),
}

#[derive(Serialize)]
struct ExplainLine<'a> {
    file: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    line: Option<u64>,
    /// The record's id (`--id-field`), when it has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'a str>,
    paragraph: usize,
    key: String,
    first_file: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    first_line: Option<u64>,
    /// The id of the record holding the first occurrence, when it has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    first_id: Option<&'a str>,
    /// Absent when the first occurrence is in an earlier batch.
    #[serde(skip_serializing_if = "Option::is_none")]
    first_paragraph: Option<u32>,
    /// The earlier batch holding the first occurrence (`first_file` is then `<index>`).
    #[serde(skip_serializing_if = "Option::is_none")]
    first_batch: Option<String>,
    reason: &'static str,
    /// Only on spared lines (`--explain-spared`): the paragraph was kept.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    kept: bool,
}

impl Decider {
    pub(super) fn new(cfg: &Config, budget: &Budget) -> Result<Decider> {
        let mut deduper = Deduper::new(cfg.rules);
        let index = IndexRun::open(cfg, budget)?;
        if let Some(ix) = &index {
            deduper.set_batch(ix.batch_number());
            if ix.records() {
                deduper.record_new_firsts();
                if ix.takes_firsts_at_end() {
                    deduper.keep_firsts_in_tables();
                }
            }
        }
        Ok(Decider {
            deduper,
            inputs: Vec::new(),
            docs: Vec::new(),
            ids: DocIds::default(),
            explain: SideFile::create(&cfg.explain)?,
            explain_spared: cfg.explain_spared,
            rejects: SideFile::create(&cfg.rejects)?,
            report_file: SideFile::create(&cfg.report)?,
            index,
            swept: std::collections::HashSet::new(),
            fresh_out: false,
            report: Report::default(),
            replay: Default::default(),
            scaled: None,
            frees: crate::threads::Frees::default(),
        })
    }

    /// The run's inputs hold `bytes` bytes: a run with an index sizes its
    /// seen-set and its new keys for the keys it expects
    /// ([`IndexRun::expected_keys`]).
    pub(super) fn expect_input(&mut self, bytes: u64) {
        if let Some(ix) = &mut self.index {
            let keys = ix.expected_keys(bytes);
            self.deduper.reserve_keys(keys);
            if !self.deduper.keeps_firsts_in_tables() {
                ix.reserve_new_keys(keys);
            }
        }
    }

    /// Room for about `docs` more documents, `ids` of them with an id, in the
    /// lists the ordered step pushes one entry a document into, faulted in on
    /// the pool now. Grown by doubling on the ordered step instead, each
    /// list was copied into fresh memory at every step and its pages zeroed
    /// there while the other threads waited: on the bench's JSONL -j2 (182,715
    /// records) the lists' growth took up to ~40 ms of page zeroing in a slow
    /// phase of the host (benches/JSONL.md, twenty-ninth pass).
    pub(super) fn expect_documents(&mut self, docs: usize, ids: usize) {
        crate::threads::reserve_touched(&mut self.docs, docs);
        if ids > 0 {
            self.ids.reserve(ids);
        }
    }

    /// `--in-place` with `--index`: journals the first occurrences decided so
    /// far, before the files holding them are replaced.
    pub(super) fn journal(&mut self) -> Result<()> {
        self.index.as_mut().map_or(Ok(()), IndexRun::flush)
    }

    /// Removes stale temporary files from a folder this run writes to, once.
    /// Nothing under an `--out` folder this run created (see
    /// [`Decider::fresh_out`]): a mirrored tree of 12,184 folders cost as
    /// many failed `open`s, on the ordered step.
    pub(super) fn sweep(&mut self, dir: Option<&Path>) {
        let dir = dir.unwrap_or(Path::new("."));
        if !self.fresh_out && !self.swept.contains(dir) {
            self.swept.insert(dir.to_path_buf());
            sweep_stale_temps(dir);
        }
    }

    /// Registers an input (file or shard) and returns its number. Input
    /// and document numbers share one limit, below [`EARLIER_RUN`].
    /// Files an earlier run removed in place that sort before `rel` are
    /// taken again first (see [`super::replay`]).
    pub(super) fn input(&mut self, rel: &Path) -> Result<u32> {
        self.replay_before(Some(rel))?;
        self.register_input(rel)
    }

    /// Registers an input without looking at removed files.
    pub(super) fn register_input(&mut self, rel: &Path) -> Result<u32> {
        let number = u32::try_from(self.inputs.len()).ok().filter(|&n| n < EARLIER_RUN);
        let number = number.ok_or(Error::TooManyDocuments { limit: u64::from(EARLIER_RUN - 1) })?;
        self.inputs.push(rel.to_string_lossy().into_owned());
        Ok(number)
    }

    /// `file`, or `file:line` for a JSONL record.
    pub(super) fn doc_name(&self, doc: u32) -> String {
        let (name, line) = match self.docs.get(doc as usize) {
            Some(&(input, line)) => (self.inputs[input as usize].as_str(), line),
            None => match self.other_shard(doc) {
                Some((name, line)) => (name, line),
                None => return "<index>".to_owned(),
            },
        };
        if line == 0 { name.to_owned() } else { format!("{name}:{line}") }
    }

    /// The id of a document (a record with `--id-field`), when it has one.
    pub(super) fn doc_id(&self, doc: u32) -> Option<String> {
        self.id_of(doc).map(str::to_owned)
    }

    fn id_of(&self, doc: u32) -> Option<&str> {
        match (self.ids.get(doc), &self.scaled) {
            (Some(id), _) => Some(id),
            (None, Some(Scaled::Apply(h, _))) if doc as usize >= self.docs.len() => h.document(doc)?.2,
            _ => None,
        }
    }

    /// Name and line of a document of another shard (an `apply` step).
    fn other_shard(&self, doc: u32) -> Option<(&str, u64)> {
        match &self.scaled {
            Some(Scaled::Apply(h, _)) => h.document(doc).map(|(name, line, _)| (name, line)),
            _ => None,
        }
    }

    /// The name of a batch of the persistent (or cluster) index.
    fn batch_name(&self, batch: u32) -> Option<String> {
        match (&self.index, &self.scaled) {
            (Some(ix), _) => Some(ix.batch_name(batch)),
            (None, Some(Scaled::Apply(h, _))) => h.batch_name(batch),
            _ => None,
        }
    }

    /// Decides one document (`line` is 0 for a whole file; `id` the
    /// record's id, when it has one).
    pub(super) fn decide(
        &mut self,
        input: u32,
        (line, id): (u64, Option<&str>),
        doc: &Document,
        history: Option<&History>,
    ) -> Result<Plan> {
        if self.docs.len() >= EARLIER_RUN as usize {
            return Err(Error::TooManyDocuments { limit: u64::from(EARLIER_RUN - 1) });
        }
        let local = u32::try_from(self.docs.len()).unwrap_or(EARLIER_RUN);
        let found;
        let (plan, history) = match &mut self.scaled {
            Some(Scaled::Keys(sink)) => {
                sink.document(&self.inputs[input as usize], (line, id), &doc.keys, &doc.whole)?;
                let verdicts = vec![Verdict::Keep; doc.keys.len()];
                (Plan { doc: local, verdicts, duplicate_of: None }, history)
            }
            Some(Scaled::Apply(h, firsts)) => {
                found = h.history(&doc.keys, &doc.whole, local)?;
                let plan = self.deduper.decide_with_history(&doc.keys, &doc.whole, found.as_ref());
                firsts.extend(self.deduper.take_new_firsts());
                (plan, found.as_ref())
            }
            None => (self.deduper.decide_with_history(&doc.keys, &doc.whole, history), history),
        };
        if let Some(id) = id {
            self.ids.insert(plan.doc, id);
        }
        self.docs.push((input, line));
        if let Some(ix) = &mut self.index
            && !self.deduper.keeps_firsts_in_tables()
        {
            ix.add(self.deduper.take_new_firsts());
        }
        if self.explain.is_some() || self.replay.capturing() {
            self.explain(doc, &plan, history)?;
        }
        Ok(plan)
    }

    /// One explain line per dropped paragraph, and per spared short repeat
    /// with `--explain-spared`; also kept for the record of a file about to
    /// be replaced in place (see [`super::replay`]). A first occurrence in a
    /// document cleaned in place by an earlier run is named by its original
    /// paragraph index.
    fn explain(&mut self, doc: &Document, plan: &Plan, history: Option<&History>) -> Result<()> {
        if self.replay.muted() {
            return Ok(());
        }
        let (input, line) = self.docs[plan.doc as usize];
        for (i, v) in plan.verdicts.iter().enumerate() {
            let (first, reason, kept) = match *v {
                Verdict::Drop { reason, first } => (first, reason.as_str(), false),
                Verdict::Spared { first } if self.explain_spared => (first, "spared", true),
                _ => continue,
            };
            let (first_file, first_line, first_batch) = match self.docs.get(first.doc as usize) {
                Some(&(i, l)) => (self.inputs[i as usize].as_str(), l, None),
                None => match self.other_shard(first.doc) {
                    Some((name, l)) => (name, l, None),
                    None => {
                        let entry = history.and_then(|h| h.paragraphs.get(i).copied().flatten().or(h.document));
                        ("<index>", 0, entry.and_then(|e| self.batch_name(e.batch)))
                    }
                },
            };
            let entry = ExplainLine {
                file: &self.inputs[input as usize],
                line: (line > 0).then_some(line),
                id: self.ids.get(plan.doc),
                first_id: self.id_of(first.doc),
                paragraph: i,
                key: doc.keys[i].digest.to_hex(),
                first_file,
                first_line: (first_line > 0).then_some(first_line),
                first_paragraph: first_batch.is_none().then(|| self.replay.original_para(first.doc, first.para)),
                first_batch,
                reason,
                kept,
            };
            let path = self.explain.as_ref().map_or(Path::new("--explain"), SideFile::path);
            let mut line = serde_json::to_vec(&entry).map_err(|e| Error::io(path, e.into()))?;
            line.push(b'\n');
            self.replay.capture(&line);
            if let Some(out) = self.explain.as_mut() {
                out.write(&line)?;
            }
        }
        Ok(())
    }

    /// Whether failed inputs and rejected records are printed on stderr:
    /// not in a scale-out keys step, whose apply step prints each of them
    /// (once per run, as `clean` does).
    pub(super) fn prints_inputs(&self) -> bool {
        !matches!(self.scaled, Some(Scaled::Keys(_)))
    }

    /// Records a rejected JSONL line: stderr, the rejects file (the line
    /// exactly as read, with a line break), the row.
    pub(super) fn reject(
        &mut self,
        shard: &Path,
        (line, id): (u64, Option<String>),
        raw: &[u8],
        error: &str,
        row: &mut FileRow,
    ) -> Result<()> {
        match &id {
            _ if !self.prints_inputs() => {}
            Some(id) => diag!("newsdedup: {}:{line}: {error} (id {id})", shard.display()),
            None => diag!("newsdedup: {}:{line}: {error}", shard.display()),
        }
        if let Some(out) = self.rejects.as_mut() {
            out.write(raw)?;
            if !raw.ends_with(b"\n") {
                out.write(b"\n")?;
            }
        }
        row.stats.records_rejected += 1;
        row.rejected_lines.push(line);
        if let Some(id) = id {
            row.rejected_ids.insert(line, id);
        }
        Ok(())
    }

    /// Publishes the explain and rejects files; the report and the index
    /// commit are left to [`run`], in that order.
    pub(super) fn finish(mut self) -> Result<Finished> {
        for side in [self.explain.take(), self.rejects.take()].into_iter().flatten() {
            side.commit()?;
        }
        self.report.distinct_keys = self.deduper.distinct_keys() as u64;
        if let Some(ix) = &mut self.index
            && self.deduper.keeps_firsts_in_tables()
        {
            ix.set_new_firsts(std::mem::take(&mut self.deduper));
        }
        Ok(Finished { report: self.report, report_file: self.report_file, index: self.index })
    }
}

#[cfg(test)]
mod tests {
    use super::DocIds;

    #[test]
    fn ids_are_found_by_document_whatever_the_insertion_order() {
        let mut ids = DocIds::default();
        ids.insert(0, "a-0");
        ids.insert(2, "");
        ids.insert(5, "é-5");
        ids.insert(3, "c-3"); // out of order: lands between 2 and 5
        ids.insert(5, "again"); // a document keeps its first id
        ids.insert(u32::MAX, "last");
        let got: Vec<_> = [0, 1, 2, 3, 4, 5, 6, u32::MAX].iter().map(|&d| ids.get(d)).collect();
        assert_eq!(got, [Some("a-0"), None, Some(""), Some("c-3"), None, Some("é-5"), None, Some("last")]);
        assert_eq!(DocIds::default().get(0), None);
        let mut ids = DocIds::default();
        ids.insert(5, "x");
        ids.insert(1, "y"); // before the first
        assert_eq!((ids.get(1), ids.get(5), ids.get(0)), (Some("y"), Some("x"), None));
    }

    #[test]
    fn ids_stay_whole_across_blocks() {
        let mut ids = DocIds::default();
        let id = |d: u32| format!("{d:0>width$}", width = 1 + (d as usize * 7919) % 300);
        let long = "L".repeat(super::ID_BLOCK + 3);
        let docs = 3 * super::ID_BLOCK as u32 / 150;
        for d in 0..docs {
            if d == docs / 2 {
                ids.insert(d, &long);
            } else {
                ids.insert(d, &id(d));
            }
        }
        assert!(ids.blocks.len() >= 4, "{} blocks", ids.blocks.len());
        for d in 0..docs {
            let want = if d == docs / 2 { long.clone() } else { id(d) };
            assert_eq!(ids.get(d), Some(want.as_str()), "document {d}");
        }
        assert!(ids.blocks.iter().all(|b| b.len() <= super::ID_BLOCK || b.len() == long.len()));
        assert_eq!(ids.get(docs), None);
    }

    #[test]
    fn an_empty_id_after_a_long_one_is_not_put_in_its_block() {
        let mut ids = DocIds::default();
        let long = "L".repeat(super::ID_BLOCK + 1);
        ids.insert(0, &long);
        ids.insert(1, "");
        ids.insert(2, "x");
        assert_eq!((ids.get(0), ids.get(1), ids.get(2)), (Some(long.as_str()), Some(""), Some("x")));
        // The long id's block holds it alone.
        assert_eq!(ids.docs.iter().map(|d| d.block).collect::<Vec<_>>(), [0, 1, 1]);
        assert_eq!(ids.blocks[0].len(), long.len());
    }
}
