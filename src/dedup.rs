//! The seen-set and the keep/drop plan: first occurrence in corpus order wins.
//!
//! [`Deduper::decide`] is called once per document, **in corpus order**, by
//! one thread; that order alone defines which occurrence is "first", so the
//! result never depends on thread timing.
//!
//! # The rule
//!
//! Each document's verdicts come from [`judge`] (module [`context`]), a pure
//! function of the document's keys and, per paragraph, *which document*
//! first kept its key (if not this one). In short: a first occurrence is
//! **kept**; a repeat within the document is **dropped** when its key has at
//! least [`Rules::min_chars_within`] characters; a repeat of another
//! document is **dropped** when its key has at least [`Rules::min_chars`]
//! characters, or when this document repeats another key (of at least
//! `min_chars_within` characters) first kept by that same document, or when
//! it sits in a run of dropped repeats. A short repeat on its own is
//! **spared** (kept, and counted): a line such as "Qtly div 10 cts vs 10 cts
//! prior" or a venue repeated from an unrelated story is this story's fact.
//! The [`context`] module has the precise rule.
//!
//! With [`Scope::Corpus`], a document whose whole sequence of paragraph keys
//! equals an earlier document's is a **duplicate document**: every paragraph
//! is dropped (reason `duplicate-document`) and the plan names the earlier
//! document. A document without a paragraph of at least `min_chars`
//! characters is judged paragraph by paragraph like any other, and is a
//! duplicate only when that judgement drops every paragraph (the label
//! changes, not the output): so short paragraphs spared in one document are
//! never lost as a "duplicate" when the clean output is cleaned again.
//!
//! # Memory
//!
//! The seen-set stores, per distinct key, the 128-bit digest prefix (see
//! [`crate::key::Digest`] for why that is safe) and the first occurrence:
//! 24 bytes per entry in an open-addressing table (`dedup/table.rs`) that is
//! between 3/8 and 3/4 full, so 32–64 bytes per distinct paragraph
//! depending on where the table is in its growth cycle. A table of 2 MiB
//! or more grows in place on Linux (`dedup/spots.rs`); a smaller one, or
//! one elsewhere, also holds the array it leaves while it doubles.

pub use crate::key::document_key;
use crate::key::{Digest, Keyed};

pub mod context;
mod firsts;
mod other_shard;
mod spots;
mod table;

use context::Scratch;
pub use context::{Origin, Source, judge};
pub use other_shard::OTHER_SHARD;
use table::{Slot, SlotTable};

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
    /// A short repeat of an earlier document that this document repeats
    /// more of (another key of at least `min_chars_within` characters).
    SameSource,
}

impl Reason {
    /// The name used in reports: `within-document`, `across-documents`,
    /// `duplicate-document`, `inside-repeated-block`, `same-source`.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::WithinDocument => "within-document",
            Reason::AcrossDocuments => "across-documents",
            Reason::DuplicateDocument => "duplicate-document",
            Reason::InsideRepeatedBlock => "inside-repeated-block",
            Reason::SameSource => "same-source",
        }
    }
}

/// The decision for one paragraph.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// First occurrence: kept.
    Keep,
    /// A short repeat that was kept: alone, not in a run of repeats.
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

fn slot(d: &Digest) -> Slot {
    Slot::of(d.prefix())
}

/// Settings of the dedup decision.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rules {
    /// Which paragraphs are compared.
    pub scope: Scope,
    /// A repeat of another document is dropped on its own when its key has
    /// at least this many characters; a shorter one only in context (see
    /// [`context`]).
    pub min_chars: usize,
    /// A repeat within the same document is dropped when its key has at
    /// least this many characters; a shorter one only inside a run of
    /// dropped repeats.
    pub min_chars_within: usize,
}

/// The default of [`Rules::min_chars`], chosen by measurement (README, "Short
/// repeats").
pub const DEFAULT_MIN_CHARS: usize = 60;
/// The default of [`Rules::min_chars_within`].
pub const DEFAULT_MIN_CHARS_WITHIN: usize = 20;

impl Default for Rules {
    fn default() -> Rules {
        Rules { scope: Scope::Corpus, min_chars: DEFAULT_MIN_CHARS, min_chars_within: DEFAULT_MIN_CHARS_WITHIN }
    }
}

/// The seen-set. Feed it documents in corpus order.
#[derive(Default)]
pub struct Deduper {
    rules: Rules,
    seen: SlotTable<Occurrence>,
    docs: SlotTable<u32>,
    next_doc: u32,
    /// Keys the last decision added with their document's anchor, when
    /// `recording` (see [`Deduper::record_new_firsts`]).
    fresh: Vec<(u128, u64)>,
    /// Whether decisions record their new first occurrences in `fresh`.
    recording: bool,
    /// When the run's first occurrences are read from the tables at its
    /// end ([`Deduper::keep_firsts_in_tables`]): each document's anchor, by
    /// document number.
    anchors: Option<Vec<u64>>,
    /// The batch number of this run in the index (see [`Deduper::set_batch`]).
    batch: Option<u32>,
    /// Working lists of [`judge`] and the origins handed to it, kept
    /// between documents (no allocation per document but its verdicts).
    scratch: Scratch,
    origins: Vec<Origin>,
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

    /// Sizes the seen-set for about `keys` distinct paragraph keys, so that
    /// a run whose size is known ahead (a run with a persistent index, from
    /// the new keys of the index's last runs) fills it without doubling it
    /// on the way: each doubling touches fresh memory (the new half of an
    /// array grown in place, or a new array), the arrays it grows through
    /// add up to about the last one again, and a reserved array holds the
    /// keys expected at up to 3/4 full where doubling leaves it between
    /// 3/8 and 3/4. Nothing once a key is held,
    /// nor under `--scope document` (its seen-set is emptied at every
    /// document).
    pub fn reserve_keys(&mut self, keys: usize) {
        if self.rules.scope != Scope::Document {
            self.seen.reserve(keys);
        }
    }

    /// This run's batch number in the persistent index: index entries of
    /// this batch are this run's own first occurrences when the run is a
    /// retry (see [`Deduper::decide_with_history`]).
    pub fn set_batch(&mut self, batch: u32) {
        self.batch = Some(batch);
    }

    /// Asks for the table entries a document's decision will read, without
    /// deciding anything: the ordered step calls it for the next document
    /// before it decides this one, so that the next lookups find the
    /// entries in the cache (see `dedup/table.rs`).
    pub fn warm(&self, keys: &[Keyed], whole: &Digest) {
        self.docs.prefetch(slot(whole));
        for k in keys {
            self.seen.prefetch(slot(&k.digest));
        }
    }

    /// True when `whole` is remembered as the key of document `doc` (its
    /// decision found it new): a later copy of it is a duplicate of `doc`.
    pub fn remembers(&self, whole: &Digest, doc: u32) -> bool {
        self.docs.get(slot(whole)) == Some(doc)
    }

    /// Takes the next document number for a document an earlier run of this
    /// batch decided and removed in place (a retry no longer reads it), and
    /// remembers its whole-document key if that run did: later copies are
    /// its duplicates, as they were then. Decides nothing and adds no key.
    pub fn phantom(&mut self, whole: &Digest, remembered: bool) -> u32 {
        debug_assert!(self.anchors.is_none(), "a retry lists its first occurrences");
        let doc = self.next_doc;
        self.next_doc = self.next_doc.saturating_add(1);
        if remembered && self.rules.scope == Scope::Corpus {
            self.docs.get_or_insert(slot(whole), doc);
        }
        doc
    }

    /// Number of distinct keys remembered.
    pub fn distinct_keys(&self) -> usize {
        self.seen.len()
    }

    /// The first occurrence of a key, if it has been seen.
    pub fn first(&self, key: &Digest) -> Option<Occurrence> {
        self.seen.get(slot(key))
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
        debug_assert!(own.is_none() || self.anchors.is_none(), "no keys of the index in the tables");
        if self.anchors.is_some() {
            self.fresh.clear();
        }
        let fresh_from = self.fresh.len();
        let mut new_document = false;
        if self.rules.scope == Scope::Document {
            self.seen.clear();
        } else if !keys.is_empty() {
            let earlier = match (self.docs.get(slot(whole)), own, history.and_then(|h| h.document)) {
                (Some(e), _, _) => Some(e),
                // A retried document of this batch: it kept keys first (or
                // its document key) in the first run, so it was no duplicate
                // then, whatever its text is now (cleaned in place, its
                // document key changed and may even equal a later one's).
                (None, Some(_), _) => None,
                (None, None, Some(e)) => Some(e.in_other_shard().map_or(EARLIER_RUN, |o| o.doc)),
                (None, None, None) => None,
            };
            match earlier {
                Some(e) if keys.iter().any(|k| self.is_long(k)) => return self.duplicate(doc, e, keys, history),
                Some(e) => {
                    // Only short paragraphs: a duplicate only if judged one
                    // by one it loses them all (see the module docs).
                    let plan = self.judged(doc, keys, history, own);
                    if plan.kept() == 0 {
                        return self.duplicate(doc, e, keys, history);
                    }
                    self.anchor_fresh(doc, fresh_from, own, whole, false);
                    return plan;
                }
                // Remembered in this run; new to the index unless retried.
                None => {
                    self.docs.get_or_insert(slot(whole), doc);
                    new_document = own.is_none();
                }
            }
        }
        let plan = self.judged(doc, keys, history, own);
        self.anchor_fresh(doc, fresh_from, own, whole, new_document);
        plan
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
            .filter(|(k, _)| !self.seen.contains_key(slot(&k.digest)))
            .find_map(|(k, e)| mine(e, &k.digest))
            .or_else(|| mine(&h.document, whole))
    }

    /// The plan of a document judged paragraph by paragraph.
    fn judged(&mut self, doc: u32, keys: &[Keyed], history: Option<&History>, own: Option<u64>) -> Plan {
        let mut origins = std::mem::take(&mut self.origins);
        origins.clear();
        origins.extend(keys.iter().enumerate().map(|(i, k)| self.origin(doc, i, k, history, own)));
        let verdicts = self.scratch.judge(doc, keys, &origins, &self.rules);
        self.origins = origins;
        Plan { doc, verdicts, duplicate_of: None }
    }

    /// Where this document's paragraph `i` was first kept, for [`judge`];
    /// a key new to the run and the index becomes a first occurrence here.
    /// A key the index holds is another document's ([`Source::Index`], by
    /// anchor: unique across batches, as every key is first kept once) —
    /// unless this run retries that key's batch and this is the document
    /// that kept it: then it is kept again at its first place here, and
    /// later copies in this run repeat that place.
    fn origin(&mut self, doc: u32, i: usize, k: &Keyed, history: Option<&History>, own: Option<u64>) -> Origin {
        let para = u32::try_from(i).unwrap_or(u32::MAX);
        let here = Occurrence { doc, para };
        let run_origin = |first: Occurrence| {
            if first.doc == doc { Origin::Here } else { Origin::Elsewhere { source: Source::Run(first.doc), first } }
        };
        if let Some(h) = history
            && let Some(Some(e)) = h.paragraphs.get(i)
        {
            let s = slot(&k.digest);
            // Only keys of this run's own batch ever enter the seen-set
            // (below): a copy of one kept earlier in this run.
            if let Some(first) = self.seen.get(s) {
                return run_origin(first);
            }
            if let Some(first) = e.in_other_shard() {
                return Origin::Elsewhere { source: Source::Run(first.doc), first };
            }
            if self.batch == Some(e.batch) && own == Some(e.doc) {
                self.seen.insert(s, here);
                return Origin::Here;
            }
            return Origin::Elsewhere { source: Source::Index(e.doc), first: Occurrence { doc: EARLIER_RUN, para: 0 } };
        }
        let first = self.seen.get_or_insert(slot(&k.digest), here);
        if first == here && self.recording {
            self.fresh.push((k.digest.prefix(), 0));
        }
        run_origin(first)
    }

    /// A key long enough to be dropped on its own as a repeat of another
    /// document (and to make its document eligible as a duplicate). An empty
    /// key (a line of only punctuation under `--key loose`) never is,
    /// whatever `min_chars`.
    fn is_long(&self, k: &Keyed) -> bool {
        k.chars >= self.rules.min_chars.max(1)
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
                    Some(e) => e.in_other_shard().unwrap_or(Occurrence { doc: EARLIER_RUN, para: 0 }),
                    None => Occurrence { doc: earlier, para },
                });
                Verdict::Drop { reason: Reason::DuplicateDocument, first }
            })
            .collect();
        Plan { doc, verdicts, duplicate_of: Some(earlier) }
    }
}

#[cfg(test)]
mod retry_tests;

#[cfg(test)]
mod tests;
