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
//! 24 bytes per entry in a `HashMap` keyed by the already-uniform digest
//! bits (no re-hashing), so about 28–55 bytes per distinct paragraph
//! depending on where the table is in its growth cycle.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hash, Hasher};

use crate::key::{Digest, Keyed};

pub mod context;

pub use context::{Origin, Source, judge};

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
    seen: SlotMap<Occurrence>,
    docs: SlotMap<u32>,
    next_doc: u32,
    /// Keys the last decision added, when recording (see
    /// [`Deduper::record_new_firsts`]).
    fresh: Option<Vec<(u128, u32)>>,
}

/// The document number used in an [`Occurrence`] that lies in an earlier
/// run (found in the persistent index) rather than in this one.
pub const EARLIER_RUN: u32 = u32::MAX;

/// Where an earlier run first kept a key (from the persistent index).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Earlier {
    /// 64-bit identity of the document (see [`doc_id`]).
    pub doc_id: u64,
    /// Paragraph index in it; [`WHOLE_DOCUMENT`] for a whole-document key.
    pub para: u32,
}

/// The `para` of an index entry that records a whole-document key.
pub const WHOLE_DOCUMENT: u32 = u32::MAX;

/// What the persistent index says about one document, looked up before
/// the decision (in parallel, since the index does not change during a run).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct History {
    /// This document's identity.
    pub doc_id: u64,
    /// Per paragraph: where an earlier run first kept its key. May be
    /// empty (or shorter than the document): a missing entry means none.
    pub paragraphs: Vec<Option<Earlier>>,
    /// Where an earlier run first saw this whole document.
    pub document: Option<Earlier>,
}

/// The 64-bit identity of a document, from a stable name (its relative path,
/// or `shard:line` for a JSONL record): the first 8 bytes of its SHA-256.
pub fn doc_id(name: &str) -> u64 {
    let d = Digest::of(name.as_bytes());
    (d.prefix() >> 64) as u64
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

    /// The first occurrences the last decision added, emptying the record:
    /// `(key prefix, paragraph)` for every paragraph key new to this run and
    /// to the index, and `(whole-document key prefix, WHOLE_DOCUMENT)` for
    /// a new document. Keys found in the index are never added. Nothing
    /// unless [`Deduper::record_new_firsts`] was called.
    pub fn take_new_firsts(&mut self) -> impl Iterator<Item = (u128, u32)> + '_ {
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
    /// unless the index names this very document and paragraph: then this is
    /// a retry of the run that kept it, and it is kept again.
    pub fn decide_with_history(&mut self, keys: &[Keyed], whole: &Digest, history: Option<&History>) -> Plan {
        let doc = self.next_doc;
        self.next_doc = self.next_doc.saturating_add(1);
        if self.rules.scope == Scope::Document {
            self.seen.clear();
        } else if !keys.is_empty() {
            let in_index = history.and_then(|h| h.document.map(|e| e.doc_id != h.doc_id));
            let earlier = match in_index {
                Some(true) => Some(EARLIER_RUN),
                _ => self.docs.get(&slot(whole)).copied(),
            };
            match earlier {
                Some(e) if keys.iter().any(|k| self.is_long(k)) => return self.duplicate(doc, e, keys, history),
                Some(e) => {
                    // Only short paragraphs: a duplicate only if judged one
                    // by one it loses them all (see the module docs).
                    let plan = self.judged(doc, keys, history);
                    return if plan.kept() == 0 { self.duplicate(doc, e, keys, history) } else { plan };
                }
                // A document the index already holds (a retry) is not new to it.
                None if in_index.is_none() => {
                    self.docs.insert(slot(whole), doc);
                    if let Some(fresh) = &mut self.fresh {
                        fresh.push((whole.prefix(), WHOLE_DOCUMENT));
                    }
                }
                None => {}
            }
        }
        self.judged(doc, keys, history)
    }

    /// The plan of a document judged paragraph by paragraph.
    fn judged(&mut self, doc: u32, keys: &[Keyed], history: Option<&History>) -> Plan {
        let origins: Vec<Origin> = keys.iter().enumerate().map(|(i, k)| self.origin(doc, i, k, history)).collect();
        Plan { doc, verdicts: judge(doc, keys, &origins, &self.rules), duplicate_of: None }
    }

    /// Where this document's paragraph `i` was first kept, for [`judge`];
    /// a key new to the run and the index becomes a first occurrence here.
    fn origin(&mut self, doc: u32, i: usize, k: &Keyed, history: Option<&History>) -> Origin {
        let para = u32::try_from(i).unwrap_or(u32::MAX);
        if let Some(h) = history
            && let Some(Some(e)) = h.paragraphs.get(i)
        {
            let first = Occurrence { doc: EARLIER_RUN, para: e.para };
            return match (e.doc_id == h.doc_id, e.para == para) {
                // A retry of the run that kept it: kept again.
                (true, true) => Origin::Here,
                (true, false) => Origin::EarlierRunOfThis { first },
                (false, _) => Origin::Elsewhere { source: Source::Index(e.doc_id), first },
            };
        }
        let here = Occurrence { doc, para };
        let first = *self.seen.entry(slot(&k.digest)).or_insert(here);
        if first == here
            && let Some(fresh) = &mut self.fresh
        {
            fresh.push((k.digest.prefix(), para));
        }
        if first.doc == doc { Origin::Here } else { Origin::Elsewhere { source: Source::Run(first.doc), first } }
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
                let from_index = history.and_then(|h| h.paragraphs.get(i).copied().flatten());
                let first = match from_index {
                    Some(e) => Occurrence { doc: EARLIER_RUN, para: e.para },
                    None => self.first(&k.digest).unwrap_or(Occurrence { doc: earlier, para }),
                };
                Verdict::Drop { reason: Reason::DuplicateDocument, first }
            })
            .collect();
        Plan { doc, verdicts, duplicate_of: Some(earlier) }
    }
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
mod tests;
