//! Retries over files cleaned in place: the run's side of
//! [`crate::index::ReplayFile`].
//!
//! A run with `--in-place --index` records each file before replacing it:
//! its report row and explain lines, and per document what the cleaned text
//! no longer shows (original line, original whole-document key, original
//! paragraph indexes, whether it was written). A later run of the batch:
//!
//! * for a file whose bytes are those a record says replaced it, still
//!   decides the cleaned text (so the seen-set and the index stay right),
//!   but as the original document — its original whole-document key, its
//!   records under their original line numbers, the records removed from a
//!   shard taken as documents again — and reports the recorded row and
//!   explain lines instead of the ones computed from the cleaned text;
//! * for a file a record says was removed, and which is gone, takes its
//!   documents as documents again, at its place in corpus order, and
//!   reports its recorded row and explain lines;
//! * names a first occurrence in a cleaned document by its original
//!   paragraph index and line.
//!
//! So every output of the retry equals the first run's. A file whose bytes
//! match no record (never replaced, or changed since) is read as it is.

use std::collections::{HashMap, VecDeque};
use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};

use super::decider::Decider;
use crate::dedup::{Plan, Verdict};
use crate::document::Document;
use crate::error::{Error, Result};
use crate::index::{DocFate, ReplayDoc};
use crate::key::Digest;
use crate::report::FileRow;

/// The replay state of a run (see the module docs).
#[derive(Default)]
pub(super) struct Replaying {
    /// Files removed in place by an earlier run, not met yet, in corpus
    /// order: (input number, relative path, record).
    removed: VecDeque<(usize, Vec<u8>, usize)>,
    /// With several inputs: the names their files are listed under.
    roots: Vec<Vec<u8>>,
    /// Cleaned documents: document number -> original index of each of
    /// its paragraphs (absent: unchanged).
    paras: HashMap<u32, Box<[u32]>>,
    /// Relative paths of the removed files replayed (for the report's order).
    pub(super) rels: Vec<PathBuf>,
    /// Recording (`--in-place`): the explain lines of the documents decided
    /// since the last [`Decider::take_explained`].
    capture: Option<Vec<u8>>,
    /// The explain lines of the current file come from its record.
    muted: bool,
    /// The cleaned shard being read: its record and where its documents are.
    shard: Option<Cursor>,
}

/// A cleaned shard being read.
struct Cursor {
    record: usize,
    /// Next of its documents to pair with a record read.
    mapped: usize,
    /// Next of its documents to register (removed ones) or decide.
    registered: usize,
}

/// A text document to record before its file is replaced.
pub(super) struct Recorded {
    pub(super) explain: Vec<u8>,
    pub(super) doc: ReplayDoc,
}

impl Replaying {
    fn order_key(&self, rel: &[u8]) -> usize {
        if self.roots.len() <= 1 {
            return 0;
        }
        let first = rel.split(|&b| b == b'/').next().unwrap_or_default();
        self.roots.iter().position(|r| r == first).unwrap_or(usize::MAX)
    }

    /// The original index of paragraph `para` of document `doc`.
    pub(super) fn original_para(&self, doc: u32, para: u32) -> u32 {
        self.paras.get(&doc).and_then(|m| m.get(para as usize)).copied().unwrap_or(para)
    }

    /// True while the current file's explain lines come from its record.
    pub(super) fn muted(&self) -> bool {
        self.muted
    }

    /// Keeps an explain line for the record of the current document.
    pub(super) fn capture(&mut self, line: &[u8]) {
        if let Some(c) = &mut self.capture {
            c.extend_from_slice(line);
        }
    }

    /// True when explain lines are recorded.
    pub(super) fn capturing(&self) -> bool {
        self.capture.is_some()
    }
}

/// What a record keeps of a decided document: `written` says whether the
/// cleaned file holds it.
pub(super) fn replay_doc(line: u64, doc: &Document, plan: &Plan, written: bool, remembered: bool) -> ReplayDoc {
    let changed = !written || plan.verdicts.iter().any(|v| matches!(v, Verdict::Drop { .. }));
    let kept = (written && changed).then(|| {
        let idx = plan.verdicts.iter().enumerate().filter(|(_, v)| v.is_kept()).map(|(i, _)| i as u32);
        idx.collect()
    });
    ReplayDoc {
        line,
        fate: if written { DocFate::Written } else { DocFate::Unwritten },
        whole: changed.then_some(doc.whole.0),
        kept,
        remembered: !written && remembered,
        id: None,
    }
}

/// What a record keeps of a rejected line (left in the shard as it was).
pub(super) fn rejected_doc(line: u64) -> ReplayDoc {
    ReplayDoc { line, fate: DocFate::Rejected, whole: None, kept: None, remembered: false, id: None }
}

impl Decider {
    /// Starts replaying for a run over `roots` (their mirrored names when
    /// several): the removed files to take again, and recording when the
    /// run replaces files.
    pub(super) fn start_replay(&mut self, roots: Vec<Vec<u8>>) {
        let Some(ix) = &self.index else { return };
        let mut removed: Vec<(usize, Vec<u8>, usize)> = Vec::new();
        self.replay.roots = roots;
        for i in ix.removed() {
            let rel = ix.replay(i).rel.clone();
            removed.push((self.replay.order_key(&rel), rel, i));
        }
        removed.sort();
        self.replay.removed = removed.into();
        if ix.records() && ix.recording() {
            self.replay.capture = Some(Vec::new());
        }
    }

    /// True when this run records the files it replaces.
    pub(super) fn recording(&self) -> bool {
        self.index.as_ref().is_some_and(|ix| ix.recording())
    }

    /// Called as input `rel` comes next (`None`: at the end): takes again
    /// the removed files before it, and ends the previous file's replay.
    pub(super) fn replay_before(&mut self, rel: Option<&Path>) -> Result<()> {
        self.replay.muted = false;
        self.replay.shard = None;
        if let Some(c) = &mut self.replay.capture {
            c.clear();
        }
        let key = rel.map(|r| {
            let bytes = r.as_os_str().as_encoded_bytes().to_vec();
            (self.replay.order_key(&bytes), bytes)
        });
        while let Some((order, name, i)) = self.replay.removed.front().cloned() {
            match &key {
                Some(k) if (order, &name) > (k.0, &k.1) => break,
                // Present after all: read it.
                Some(k) if (order, &name) == (k.0, &k.1) => {}
                _ => self.take_removed(i)?,
            }
            self.replay.removed.pop_front();
        }
        Ok(())
    }

    /// Takes a removed file's documents again, with its row and explain lines.
    fn take_removed(&mut self, i: usize) -> Result<()> {
        let Some(ix) = &self.index else { return Ok(()) };
        let record = ix.replay(i).clone();
        let rel = PathBuf::from(OsString::from_vec(record.rel));
        let input = self.register_input(&rel)?;
        for d in &record.docs {
            self.take_gone(input, d)?;
        }
        if let Some(out) = self.explain.as_mut() {
            out.write(&record.explain)?;
        }
        if let Ok(row) = serde_json::from_slice::<FileRow>(&record.row) {
            self.report.push(row);
        }
        self.replay.rels.push(rel);
        Ok(())
    }

    /// A document that is gone from its file: a document number, its name,
    /// its whole-document key remembered as the first run did.
    fn take_gone(&mut self, input: u32, d: &ReplayDoc) -> Result<()> {
        if self.docs.len() >= crate::dedup::EARLIER_RUN as usize {
            return Err(Error::TooManyDocuments { limit: u64::from(crate::dedup::EARLIER_RUN - 1) });
        }
        let whole = Digest(d.whole.unwrap_or_default());
        let doc = self.deduper.phantom(&whole, d.remembered && d.whole.is_some());
        self.docs.push((input, d.line));
        if let Some(id) = &d.id {
            self.ids.insert(doc, id);
        }
        Ok(())
    }

    /// A text document about to be decided: with record `hit` (its file is
    /// one an earlier run cleaned), its recorded explain lines are written
    /// here and the computed ones are not.
    pub(super) fn replay_doc_begin(&mut self, hit: Option<usize>) -> Result<()> {
        let (Some(i), Some(ix)) = (hit, &self.index) else { return Ok(()) };
        let record = ix.replay(i);
        if let Some(out) = self.explain.as_mut() {
            out.write(&record.explain)?;
        }
        self.replay.muted = true;
        Ok(())
    }

    /// After a text document's decision: its original paragraph indexes
    /// (`hit`), or what to record about it before its file is replaced.
    pub(super) fn replay_doc_end(&mut self, hit: Option<usize>, doc: &Document, plan: &Plan) -> Option<Recorded> {
        self.replay.muted = false;
        if let (Some(i), Some(ix)) = (hit, &self.index) {
            if let Some(kept) = ix.replay(i).docs.first().and_then(|d| d.kept.clone()) {
                self.replay.paras.insert(plan.doc, kept.into());
            }
            return None;
        }
        let explain = std::mem::take(self.replay.capture.as_mut()?);
        let written = crate::report::unwritten_status(plan).is_none();
        let remembered = self.deduper.remembers(&doc.whole, plan.doc);
        Some(Recorded { explain, doc: replay_doc(0, doc, plan, written, remembered) })
    }

    /// The recorded row of record `hit`.
    pub(super) fn replayed_row(&self, hit: usize) -> Option<FileRow> {
        let ix = self.index.as_ref()?;
        serde_json::from_slice(&ix.replay(hit).row).ok()
    }

    /// Records text files (relative path, document, the bytes replacing
    /// the file or `None` when it is removed, row) and makes the records
    /// durable: called before the files are replaced.
    pub(super) fn record_files(&mut self, files: Vec<(&Path, &Recorded, Option<[u8; 32]>, &FileRow)>) -> Result<()> {
        let Some(log) = self.index.as_mut().and_then(|ix| ix.replay_log()) else { return Ok(()) };
        for (rel, rec, hash, row) in files {
            log.start(rel.as_os_str().as_encoded_bytes());
            log.explain(&rec.explain);
            log.docs(std::slice::from_ref(&rec.doc));
            log.end(hash, &serde_json::to_vec(row).unwrap_or_default());
        }
        log.sync().map_err(Error::from)
    }

    // ------------------------------------------------------------ shards

    /// A shard about to be read: with record `hit` (an earlier run cleaned
    /// it), its recorded explain lines are written now and its records
    /// paired with the record's documents as they are read; otherwise,
    /// when recording, its record begins.
    pub(super) fn replay_shard_begin(&mut self, rel: &Path, hit: Option<usize>) -> Result<()> {
        match hit {
            Some(i) => {
                self.replay_doc_begin(Some(i))?;
                self.replay.shard = Some(Cursor { record: i, mapped: 0, registered: 0 });
            }
            None => {
                if let Some(log) =
                    self.index.as_mut().filter(|_| self.replay.capture.is_some()).and_then(|ix| ix.replay_log())
                {
                    log.start(rel.as_os_str().as_encoded_bytes());
                }
            }
        }
        Ok(())
    }

    /// Pairs the `n` records of a batch just read from a cleaned shard with
    /// the record's documents, in order: their index there (`None` past its
    /// end). Empty when the shard is not a cleaned one.
    pub(super) fn pair_records(&mut self, n: usize) -> Vec<Option<usize>> {
        let (Some(c), Some(ix)) = (self.replay.shard.as_mut(), &self.index) else { return Vec::new() };
        let docs = &ix.replay(c.record).docs;
        (0..n)
            .map(|_| {
                while docs.get(c.mapped).is_some_and(|d| d.fate == DocFate::Unwritten) {
                    c.mapped += 1;
                }
                let at = (c.mapped < docs.len()).then_some(c.mapped);
                c.mapped += 1;
                at
            })
            .collect()
    }

    /// The recorded document `at` of the cleaned shard being read.
    pub(super) fn paired(&self, at: Option<usize>) -> Option<&ReplayDoc> {
        let (c, ix) = (self.replay.shard.as_ref()?, self.index.as_ref()?);
        ix.replay(c.record).docs.get(at?)
    }

    /// Before deciding the cleaned shard's document `at` (`None`: at its
    /// end), takes again the documents removed from it before that one.
    pub(super) fn take_removed_records(&mut self, input: u32, at: Option<usize>) -> Result<()> {
        let Some((record, from)) = self.replay.shard.as_ref().map(|c| (c.record, c.registered)) else { return Ok(()) };
        let Some(ix) = &self.index else { return Ok(()) };
        let docs = &ix.replay(record).docs;
        let upto = at.unwrap_or(docs.len()).min(docs.len());
        let gone: Vec<ReplayDoc> = docs.get(from..upto).unwrap_or_default().to_vec();
        for d in gone.iter().filter(|d| d.fate == DocFate::Unwritten) {
            self.take_gone(input, d)?;
        }
        if let Some(c) = &mut self.replay.shard {
            c.registered = c.registered.max(at.map_or(upto, |a| a + 1));
        }
        Ok(())
    }

    /// After the decision of a cleaned shard's document: its original
    /// paragraph indexes.
    pub(super) fn replay_record_end(&mut self, at: Option<usize>, plan: &Plan) {
        if let Some(kept) = self.paired(at).and_then(|d| d.kept.clone()) {
            self.replay.paras.insert(plan.doc, kept.into());
        }
    }

    /// The record of the cleaned shard being read, if it is one.
    pub(super) fn replaying_shard(&self) -> Option<usize> {
        self.replay.shard.as_ref().map(|c| c.record)
    }

    /// Recording: adds a batch of a shard's documents and explain lines to
    /// its record.
    pub(super) fn record_batch(&mut self, docs: &[ReplayDoc]) -> Result<()> {
        if self.replay.shard.is_some() {
            return Ok(());
        }
        let Some(explain) = self.replay.capture.as_mut().map(std::mem::take) else { return Ok(()) };
        let Some(log) = self.index.as_mut().and_then(|ix| ix.replay_log()) else { return Ok(()) };
        log.explain(&explain);
        log.docs(docs);
        log.write_out().map_err(Error::from)
    }

    /// Recording: ends a shard's record with the bytes about to replace it
    /// (the complete temporary file at `tmp`) and its row, durably.
    pub(super) fn record_shard_end(&mut self, tmp: &Path, row: &FileRow) -> Result<()> {
        if self.replay.shard.is_some() || self.replay.capture.is_none() {
            return Ok(());
        }
        let Some(log) = self.index.as_mut().and_then(|ix| ix.replay_log()) else { return Ok(()) };
        let hash = crate::index::hash_file(tmp).map_err(|e| Error::io(tmp, e))?;
        log.end(Some(hash), &serde_json::to_vec(row).unwrap_or_default());
        log.sync().map_err(Error::from)
    }
}
