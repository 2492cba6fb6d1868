//! The seen-set and the keep/drop plan: first occurrence in corpus order wins.
//!
//! [`Deduper::decide`] is called once per document, **in corpus order**, by
//! one thread; that order alone defines which occurrence is "first", so the
//! result never depends on thread timing.
//!
//! # The rule
//!
//! For each paragraph, in order:
//!
//! 1. If its key has not been seen (in this document, or — with
//!    [`Scope::Corpus`] — in any earlier document), it is **kept** and its
//!    position is remembered as the first occurrence.
//! 2. A *repeat* whose key has at least `min_chars` characters is
//!    **dropped** (reason `within-document` or `across-documents`).
//! 3. A *short* repeat (key shorter than `min_chars`, such as "he said." or
//!    "Reuters") is **spared** — it may recur legitimately — unless it sits
//!    inside a run of dropped repeats. Precisely: take each maximal run of
//!    consecutive short repeats; look at the paragraph just before the run
//!    (or the start of the document) and just after it (or the end). If
//!    each side is either a dropped repeat or a document boundary, and at
//!    least one side is a dropped repeat, the whole run is part of a pasted
//!    copy and is **dropped** (reason `inside-repeated-block`).
//!
//! With [`Scope::Corpus`], a document whose whole sequence of paragraph keys
//! equals an earlier document's is a **duplicate document**: every paragraph
//! is dropped (reason `duplicate-document`) and the plan names the earlier
//! document. Documents without a paragraph of at least `min_chars`
//! characters are never duplicates: they are judged paragraph by paragraph
//! like any other, so short paragraphs that rule 3 spared in one document
//! are not lost as a "duplicate" when the clean output is cleaned again.
//!
//! # Memory
//!
//! The seen-set stores, per distinct key, the 128-bit digest prefix (see
//! [`crate::key::Digest`] for why that is safe) and the first occurrence:
//! 24 bytes per entry in a `HashMap` keyed by the already-uniform digest
//! bits (no re-hashing), so about 28–55 bytes per distinct paragraph
//! depending on where the table is in its growth cycle.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hash, Hasher};

use crate::key::{Digest, Keyed};

/// Where a paragraph occurred: document number in corpus order (0-based)
/// and paragraph index within the document (0-based).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Occurrence {
    /// Document number in corpus order.
    pub doc: u32,
    /// Paragraph index within that document.
    pub para: u32,
}

/// Which paragraphs are compared with each other.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Scope {
    /// Across the whole corpus (default).
    #[default]
    Corpus,
    /// Only within each document.
    Document,
}

/// Why a paragraph was dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Reason {
    /// Its key occurred earlier in the same document.
    WithinDocument,
    /// Its key occurred in an earlier document.
    AcrossDocuments,
    /// The whole document repeats an earlier one.
    DuplicateDocument,
    /// A short repeat inside a run of dropped repeats.
    InsideRepeatedBlock,
}

impl Reason {
    /// The name used in reports: `within-document`, `across-documents`,
    /// `duplicate-document`, `inside-repeated-block`.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::WithinDocument => "within-document",
            Reason::AcrossDocuments => "across-documents",
            Reason::DuplicateDocument => "duplicate-document",
            Reason::InsideRepeatedBlock => "inside-repeated-block",
        }
    }
}

/// The decision for one paragraph.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// First occurrence: kept.
    Keep,
    /// A short repeat that was kept (rule 3).
    Spared {
        /// The first occurrence of its key.
        first: Occurrence,
    },
    /// Dropped.
    Drop {
        /// Why.
        reason: Reason,
        /// The kept first occurrence of its key.
        first: Occurrence,
    },
}

impl Verdict {
    /// True when the paragraph is written out.
    pub fn is_kept(self) -> bool {
        !matches!(self, Verdict::Drop { .. })
    }
}

/// The decisions for one document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    /// The document's number in corpus order.
    pub doc: u32,
    /// One verdict per paragraph.
    pub verdicts: Vec<Verdict>,
    /// For a duplicate document, the number of the earlier document.
    pub duplicate_of: Option<u32>,
}

impl Plan {
    /// Number of kept (including spared) paragraphs.
    pub fn kept(&self) -> usize {
        self.verdicts.iter().filter(|v| v.is_kept()).count()
    }
}

/// A 128-bit digest prefix stored as two `u64` so a map entry with an
/// [`Occurrence`] packs into 24 bytes (a `u128` would align it to 32).
#[derive(Clone, Copy, PartialEq, Eq)]
struct Slot(u64, u64);

impl Hash for Slot {
    /// The bits are already uniformly distributed (they come from SHA-256),
    /// so the first 64 of them are the hash: re-hashing would only cost time.
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.0);
    }
}

/// Passes through the one `u64` that [`Slot`] writes.
#[derive(Default)]
struct PassThrough(u64);

impl Hasher for PassThrough {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        // Not reached by `Slot`; kept correct for any other input.
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

type SlotMap<V> = HashMap<Slot, V, BuildHasherDefault<PassThrough>>;

fn slot(d: &Digest) -> Slot {
    let p = d.prefix();
    Slot((p >> 64) as u64, p as u64)
}

/// Settings of the dedup decision.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rules {
    /// Which paragraphs are compared.
    pub scope: Scope,
    /// Keys shorter than this many characters are spared unless inside a
    /// repeated block.
    pub min_chars: usize,
}

impl Default for Rules {
    fn default() -> Rules {
        Rules { scope: Scope::Corpus, min_chars: 20 }
    }
}

/// The seen-set. Feed it documents in corpus order.
#[derive(Default)]
pub struct Deduper {
    rules: Rules,
    seen: SlotMap<Occurrence>,
    docs: SlotMap<u32>,
    next_doc: u32,
    /// Keys the last decision added with their document's anchor, when
    /// recording (see [`Deduper::record_new_firsts`]).
    fresh: Option<Vec<(u128, u64)>>,
    /// The batch number of this run in the index (see [`Deduper::set_batch`]).
    batch: Option<u32>,
}

/// A paragraph's state between the two passes of [`Deduper::decide`].
#[derive(Clone, Copy)]
enum Pass1 {
    Final(Verdict),
    ShortRepeat(Occurrence),
}

/// The document number used in an [`Occurrence`] that lies in an earlier
/// run (found in the persistent index) rather than in this one; its `para`
/// is then 0 and carries no meaning.
pub const EARLIER_RUN: u32 = u32::MAX;

/// Where an earlier run first kept a key (from the persistent index): the
/// identity of the document of its first occurrence.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Earlier {
    /// The batch of that run (see [`crate::index::Batch`]).
    pub batch: u32,
    /// That document's anchor within the batch (see [`anchor`]).
    pub doc: u64,
}

/// What the persistent index says about one document, looked up before
/// the decision (in parallel, since the index does not change during a run).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct History {
    /// Per paragraph: where an earlier run first kept its key. May be
    /// empty (or shorter than the document): a missing entry means none.
    pub paragraphs: Vec<Option<Earlier>>,
    /// Where an earlier run first saw this whole document.
    pub document: Option<Earlier>,
}

/// A document's *anchor*: the first 64 bits of the key of the first
/// paragraph it kept first (or, if it kept no paragraph first, of its
/// whole-document key). The index stores it with every key the document
/// kept first. Cleaning a document in place removes only paragraphs it did
/// not keep, and renaming or renumbering it (JSONL lines shift when records
/// are removed) changes nothing either, so a retry recognises the document
/// by its anchor where a name or a paragraph index would have moved.
pub fn anchor(key: &Digest) -> u64 {
    (key.prefix() >> 64) as u64
}

impl Deduper {
    /// An empty seen-set.
    pub fn new(rules: Rules) -> Deduper {
        Deduper { rules, ..Deduper::default() }
    }

    /// Starts recording the first occurrences each decision adds, for
    /// [`Deduper::take_new_firsts`] (a run with a persistent index).
    pub fn record_new_firsts(&mut self) {
        self.fresh.get_or_insert_with(Vec::new);
    }

    /// This run's batch number in the persistent index: index entries of
    /// this batch are this run's own first occurrences when the run is a
    /// retry (see [`Deduper::decide_with_history`]).
    pub fn set_batch(&mut self, batch: u32) {
        self.batch = Some(batch);
    }

    /// The first occurrences the last decision added, emptying the record:
    /// `(key prefix, anchor of the document)` for every paragraph key new to
    /// this run and to the index, and for the whole-document key of a new
    /// document. Keys found in the index are never added, nor the
    /// whole-document key of a document a retry recognised as its own.
    /// Nothing unless [`Deduper::record_new_firsts`] was called.
    pub fn take_new_firsts(&mut self) -> impl Iterator<Item = (u128, u64)> + '_ {
        self.fresh.iter_mut().flat_map(|f| f.drain(..))
    }

    /// Number of distinct keys remembered.
    pub fn distinct_keys(&self) -> usize {
        self.seen.len()
    }

    /// The first occurrence of a key, if it has been seen.
    pub fn first(&self, key: &Digest) -> Option<Occurrence> {
        self.seen.get(&slot(key)).copied()
    }

    /// Decides the next document (the next in corpus order). `whole` is the
    /// whole-document key, see [`document_key`].
    pub fn decide(&mut self, keys: &[Keyed], whole: &Digest) -> Plan {
        self.decide_with_history(keys, whole, None)
    }

    /// As [`Deduper::decide`], with what earlier runs kept. A key the index
    /// holds was first kept by an earlier run, so here it is a repeat —
    /// unless this run is a retry of that run's batch and this is the very
    /// document that kept it (its anchor, see [`anchor`], is this
    /// document's): then it is kept again at its first place in the
    /// document, wherever that is now, and a later copy in this run is a
    /// repeat of it. So a retry keeps exactly what the first run kept and
    /// names the same first occurrences, also over files the first run
    /// already cleaned in place.
    pub fn decide_with_history(&mut self, keys: &[Keyed], whole: &Digest, history: Option<&History>) -> Plan {
        let doc = self.next_doc;
        self.next_doc = self.next_doc.saturating_add(1);
        let own = history.and_then(|h| self.own_anchor(keys, whole, h));
        let fresh_from = self.fresh.as_ref().map_or(0, Vec::len);
        let mut new_document = false;
        if self.rules.scope == Scope::Document {
            self.seen.clear();
        } else if let Some(&earlier) = self.docs.get(&slot(whole))
            && keys.iter().any(|k| self.is_long(k))
        {
            return self.duplicate(doc, earlier, keys, history);
        } else if own.is_some() {
            // A retried document of this batch: it kept keys first (or its
            // document key) in the first run, so it was no duplicate then,
            // whatever its text is now (cleaned in place, its document key
            // changed and may even equal a later document's). Remembered in
            // this run, not new to the index.
            self.docs.entry(slot(whole)).or_insert(doc);
        } else if keys.iter().any(|k| self.is_long(k)) {
            if history.is_some_and(|h| h.document.is_some()) {
                return self.duplicate(doc, EARLIER_RUN, keys, history);
            }
            self.docs.insert(slot(whole), doc);
            new_document = true;
        }
        let pass1: Vec<Pass1> =
            keys.iter().enumerate().map(|(i, k)| self.first_pass(doc, i, k, history, own)).collect();
        if let Some(fresh) = &mut self.fresh {
            let doc_anchor =
                own.or_else(|| fresh.get(fresh_from).map(|&(k, _)| (k >> 64) as u64)).unwrap_or_else(|| anchor(whole));
            if new_document {
                fresh.push((whole.prefix(), 0));
            }
            for f in &mut fresh[fresh_from..] {
                f.1 = doc_anchor;
            }
        }
        Plan { doc, verdicts: resolve_short_runs(&pass1), duplicate_of: None }
    }

    /// The anchor of this document if the index names it as the first
    /// occurrence of one of its keys in this run's batch: the key of a
    /// paragraph (or the whole-document key) whose entry's anchor is that
    /// key itself. A paragraph this run already kept is a copy of another
    /// document's anchor, not this document's, and is passed over.
    fn own_anchor(&self, keys: &[Keyed], whole: &Digest, h: &History) -> Option<u64> {
        let batch = self.batch?;
        let mine =
            |e: &Option<Earlier>, d: &Digest| e.filter(|e| e.batch == batch && e.doc == anchor(d)).map(|e| e.doc);
        keys.iter()
            .zip(&h.paragraphs)
            .filter(|(k, _)| !self.seen.contains_key(&slot(&k.digest)))
            .find_map(|(k, e)| mine(e, &k.digest))
            .or_else(|| mine(&h.document, whole))
    }

    /// True when `e` names this run's batch and this document.
    fn is_own(&self, e: Earlier, own: Option<u64>) -> bool {
        self.batch == Some(e.batch) && own == Some(e.doc)
    }

    fn first_pass(&mut self, doc: u32, i: usize, k: &Keyed, history: Option<&History>, own: Option<u64>) -> Pass1 {
        let para = u32::try_from(i).unwrap_or(u32::MAX);
        let here = Occurrence { doc, para };
        if let Some(h) = history
            && let Some(Some(e)) = h.paragraphs.get(i)
        {
            let s = slot(&k.digest);
            // Only keys of this run's own batch ever enter the seen-set
            // (below): a copy of one kept earlier in this run.
            if let Some(&first) = self.seen.get(&s) {
                let reason = if first.doc == doc { Reason::WithinDocument } else { Reason::AcrossDocuments };
                return self.repeat(k, first, reason);
            }
            if self.is_own(*e, own) {
                self.seen.insert(s, here);
                return Pass1::Final(Verdict::Keep);
            }
            let first = Occurrence { doc: EARLIER_RUN, para: 0 };
            return self.repeat(k, first, Reason::AcrossDocuments);
        }
        let first = *self.seen.entry(slot(&k.digest)).or_insert(here);
        if first == here {
            if let Some(fresh) = &mut self.fresh {
                fresh.push((k.digest.prefix(), 0));
            }
            return Pass1::Final(Verdict::Keep);
        }
        let reason = if first.doc == doc { Reason::WithinDocument } else { Reason::AcrossDocuments };
        self.repeat(k, first, reason)
    }

    /// A key long enough to be dropped on its own. An empty key (a line of
    /// only punctuation under `--key loose`) never is, whatever `min_chars`.
    fn is_long(&self, k: &Keyed) -> bool {
        k.chars >= self.rules.min_chars.max(1)
    }

    fn repeat(&self, k: &Keyed, first: Occurrence, reason: Reason) -> Pass1 {
        if !self.is_long(k) { Pass1::ShortRepeat(first) } else { Pass1::Final(Verdict::Drop { reason, first }) }
    }

    fn duplicate(&self, doc: u32, earlier: u32, keys: &[Keyed], history: Option<&History>) -> Plan {
        let verdicts = keys
            .iter()
            .enumerate()
            .map(|(i, k)| {
                let para = u32::try_from(i).unwrap_or(u32::MAX);
                // This run's seen-set first: in a retry it holds the keys of
                // this batch with their real place.
                let from_index = history.and_then(|h| h.paragraphs.get(i).copied().flatten());
                let first = self.first(&k.digest).unwrap_or(match from_index {
                    Some(_) => Occurrence { doc: EARLIER_RUN, para: 0 },
                    None => Occurrence { doc: earlier, para },
                });
                Verdict::Drop { reason: Reason::DuplicateDocument, first }
            })
            .collect();
        Plan { doc, verdicts, duplicate_of: Some(earlier) }
    }
}

/// Rule 3: a run of short repeats is dropped when both its neighbours are
/// dropped repeats or document boundaries, and at least one is a repeat.
fn resolve_short_runs(pass1: &[Pass1]) -> Vec<Verdict> {
    let dropped = |i: usize| matches!(pass1[i], Pass1::Final(Verdict::Drop { .. }));
    let mut out = Vec::with_capacity(pass1.len());
    let mut i = 0;
    while i < pass1.len() {
        match pass1[i] {
            Pass1::Final(v) => {
                out.push(v);
                i += 1;
            }
            Pass1::ShortRepeat(_) => {
                let end = (i..pass1.len()).find(|&j| matches!(pass1[j], Pass1::Final(_))).unwrap_or(pass1.len());
                let left = if i == 0 { None } else { Some(dropped(i - 1)) };
                let right = if end == pass1.len() { None } else { Some(dropped(end)) };
                let inside = left != Some(false) && right != Some(false) && (left.is_some() || right.is_some());
                for p in &pass1[i..end] {
                    if let Pass1::ShortRepeat(first) = *p {
                        out.push(if inside {
                            Verdict::Drop { reason: Reason::InsideRepeatedBlock, first }
                        } else {
                            Verdict::Spared { first }
                        });
                    }
                }
                i = end;
            }
        }
    }
    out
}

/// The whole-document key: SHA-256 over the sequence of paragraph digests.
pub fn document_key(keys: &[Keyed]) -> Digest {
    use sha2::{Digest as _, Sha256};
    let mut h = Sha256::new();
    for k in keys {
        h.update(k.digest.0);
    }
    Digest(h.finalize().into())
}

#[cfg(test)]
mod retry_tests;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::{KeyMode, Keyer};

    fn keyed(paras: &[&str]) -> Vec<Keyed> {
        let mut k = Keyer::new(KeyMode::Exact);
        paras.iter().map(|p| k.keyed(p)).collect()
    }

    fn decide(d: &mut Deduper, paras: &[&str]) -> Plan {
        let keys = keyed(paras);
        d.decide(&keys, &document_key(&keys))
    }

    fn kept<'a>(paras: &[&'a str], plan: &Plan) -> Vec<&'a str> {
        paras.iter().zip(&plan.verdicts).filter(|(_, v)| v.is_kept()).map(|(p, _)| *p).collect()
    }

    const A: &str = "Interpol has identified over 4,000 foreign fighters.";
    const B: &str = "Stock was speaking at the opening of a meeting.";
    const C: &str = "A recent UN report showed an increase in fighters.";
    const SAID: &str = "he said.";

    #[test]
    fn long_repeat_within_document_is_dropped() {
        let paras = [A, B, A];
        let plan = decide(&mut Deduper::new(Rules::default()), &paras);
        assert_eq!(kept(&paras, &plan), [A, B]);
        assert_eq!(
            plan.verdicts[2],
            Verdict::Drop { reason: Reason::WithinDocument, first: Occurrence { doc: 0, para: 0 } }
        );
    }

    #[test]
    fn short_repeat_between_distinct_paragraphs_is_spared() {
        let paras = [A, SAID, B, SAID, C];
        let plan = decide(&mut Deduper::new(Rules::default()), &paras);
        assert_eq!(kept(&paras, &plan), paras);
        assert!(matches!(plan.verdicts[3], Verdict::Spared { .. }));
    }

    #[test]
    fn short_repeat_inside_a_pasted_copy_is_dropped() {
        let paras = [A, SAID, B, A, SAID, B];
        let plan = decide(&mut Deduper::new(Rules::default()), &paras);
        assert_eq!(kept(&paras, &plan), [A, SAID, B]);
        assert!(matches!(plan.verdicts[4], Verdict::Drop { reason: Reason::InsideRepeatedBlock, .. }));
    }

    #[test]
    fn short_repeat_between_a_dropped_repeat_and_the_end_is_dropped() {
        let paras = [A, SAID, A, SAID];
        let plan = decide(&mut Deduper::new(Rules::default()), &paras);
        assert_eq!(kept(&paras, &plan), [A, SAID]);
    }

    #[test]
    fn short_repeat_next_to_a_kept_paragraph_is_spared() {
        let paras = [SAID, A, SAID, C];
        let plan = decide(&mut Deduper::new(Rules::default()), &paras);
        assert_eq!(kept(&paras, &plan), paras);
    }

    #[test]
    fn document_of_only_short_repeats_is_kept() {
        let mut d = Deduper::new(Rules::default());
        decide(&mut d, &[SAID, A]);
        let plan = decide(&mut d, &[SAID]);
        assert_eq!(plan.verdicts, [Verdict::Spared { first: Occurrence { doc: 0, para: 0 } }]);
    }

    #[test]
    fn across_documents_and_duplicate_documents() {
        let mut d = Deduper::new(Rules::default());
        decide(&mut d, &[A, B]);
        let second = decide(&mut d, &[C, B]);
        assert_eq!(
            second.verdicts[1],
            Verdict::Drop { reason: Reason::AcrossDocuments, first: Occurrence { doc: 0, para: 1 } }
        );
        let third = decide(&mut d, &[A, B]);
        assert_eq!(third.duplicate_of, Some(0));
        assert!(third.verdicts.iter().all(|v| matches!(v, Verdict::Drop { reason: Reason::DuplicateDocument, .. })));
        assert_eq!(d.distinct_keys(), 3);
    }

    #[test]
    fn document_scope_forgets_between_documents() {
        let mut d = Deduper::new(Rules { scope: Scope::Document, ..Rules::default() });
        decide(&mut d, &[A, B]);
        let second = decide(&mut d, &[A, B, A]);
        assert_eq!(second.duplicate_of, None);
        assert_eq!(second.kept(), 2);
    }

    #[test]
    fn documents_of_only_short_paragraphs_are_never_duplicates() {
        let mut d = Deduper::new(Rules::default());
        decide(&mut d, &[SAID]);
        let plan = decide(&mut d, &[SAID]);
        assert_eq!(plan.duplicate_of, None);
        assert_eq!(plan.kept(), 1);
    }

    #[test]
    fn empty_documents_are_never_duplicates() {
        let mut d = Deduper::new(Rules::default());
        decide(&mut d, &[]);
        assert_eq!(decide(&mut d, &[]).duplicate_of, None);
    }

    #[test]
    fn empty_keys_are_never_dropped_on_their_own() {
        let mut k = Keyer::new(KeyMode::Loose);
        let keys: Vec<Keyed> = ["---", "***", "---"].iter().map(|p| k.keyed(p)).collect();
        let plan = Deduper::new(Rules { min_chars: 0, ..Rules::default() }).decide(&keys, &document_key(&keys));
        assert_eq!(plan.kept(), 3);
    }

    #[test]
    fn min_chars_zero_drops_every_repeat() {
        let paras = [SAID, A, SAID];
        let plan = decide(&mut Deduper::new(Rules { min_chars: 0, ..Rules::default() }), &paras);
        assert_eq!(kept(&paras, &plan), [SAID, A]);
    }
}
