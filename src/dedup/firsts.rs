//! The first occurrences a run adds, for a persistent index: listed as each
//! decision adds them ([`Deduper::take_new_firsts`]), or left in the
//! seen-set's tables and read from them at the end
//! ([`Deduper::firsts_in_tables`]).

use super::{Deduper, Scope, anchor};
use crate::key::Digest;

impl Deduper {
    /// Starts recording the first occurrences each decision adds, for
    /// [`Deduper::take_new_firsts`] (a run with a persistent index), and
    /// stops keeping them in the tables (a run that reads them at its end).
    pub fn record_new_firsts(&mut self) {
        self.recording = true;
        self.anchors = None;
    }

    /// Keeps the run's first occurrences where they already are, for
    /// [`Deduper::firsts_in_tables`] at its end, instead of in a list each
    /// decision adds to ([`Deduper::take_new_firsts`]): the seen-set holds
    /// every paragraph key new to this run, the table of whole-document
    /// keys every new document's, so only each document's anchor is kept
    /// (8 bytes a document, where the list took 32 bytes a key and its
    /// pushes a share of the ordered step: issue 18, thirty-fifth session).
    ///
    /// Only for a run whose tables hold nothing else: a run with a
    /// persistent index that is no retry of its batch and has no journal of
    /// a killed run of it to take up (those put keys of the index in the
    /// seen-set: see [`Deduper::decide_with_history`]). Returns false, and
    /// changes nothing, under [`Scope::Document`] (its seen-set is emptied
    /// at every document) or unless [`Deduper::record_new_firsts`] was
    /// called.
    pub(crate) fn keep_firsts_in_tables(&mut self) -> bool {
        if !self.recording || self.rules.scope == Scope::Document {
            return false;
        }
        self.anchors = Some(Vec::new());
        true
    }

    /// True after [`Deduper::keep_firsts_in_tables`].
    pub(crate) fn keeps_firsts_in_tables(&self) -> bool {
        self.anchors.is_some()
    }

    /// With [`Deduper::keep_firsts_in_tables`]: every first occurrence the
    /// run's decisions added, as [`Deduper::take_new_firsts`] would have
    /// handed them out one decision at a time (the same `(key prefix,
    /// anchor)` pairs, in another order).
    pub(crate) fn firsts_in_tables(&self) -> Option<TableFirsts<'_>> {
        let anchors = self.anchors.as_deref()?;
        Some(TableFirsts { deduper: self, anchors })
    }

    /// [`Deduper::firsts_in_tables`] for the last time, handed to `take` a
    /// wave of parts at a time (every first byte once, in 8 waves of 32:
    /// the last byte's first, as its part usually wraps to the array's
    /// start, then the others in order), the seen-set's memory below the
    /// next wave's parts given back to the kernel after each wave (the
    /// table's `discard_below`, which keeps a run of taken spots that
    /// wraps to the array's start for any part that reaches it):
    /// what `take` builds from the parts takes the pages the seen-set
    /// leaves while the host still backs them. False, and `take` never
    /// called, without [`Deduper::keep_firsts_in_tables`].
    pub(crate) fn into_firsts_in_tables(mut self, mut take: impl FnMut(&TableFirsts<'_>, &[u8])) -> bool {
        let Some(anchors) = self.anchors.take() else { return false };
        let tops: Vec<u8> = std::iter::once(u8::MAX).chain(0..u8::MAX).collect();
        let waves: Vec<&[u8]> = tops.chunks(32).collect();
        for (i, wave) in waves.iter().enumerate() {
            take(&TableFirsts { deduper: &self, anchors: &anchors }, wave);
            if let Some(&next) = waves.get(i + 1).and_then(|w| w.first()) {
                let below = self.seen.top_byte_start(next);
                self.seen.discard_below(below);
            }
        }
        true
    }

    /// The first occurrences the last decision added, emptying the record:
    /// `(key prefix, anchor of the document)` for every paragraph key new to
    /// this run and to the index, and for the whole-document key of a new
    /// document. Keys found in the index are never added, nor the
    /// whole-document key of a document a retry recognised as its own.
    /// Nothing unless [`Deduper::record_new_firsts`] was called.
    pub fn take_new_firsts(&mut self) -> std::vec::Drain<'_, (u128, u64)> {
        // A drain (not a flat map over an option) sizes the caller's
        // `extend` once: a million keys a day are appended on the ordered step.
        self.fresh.drain(..)
    }

    /// Gives the first occurrences this document added its anchor (its
    /// own, when retried; else its first new paragraph's key, else its
    /// document key), and records a new document's key.
    pub(super) fn anchor_fresh(&mut self, doc: u32, from: usize, own: Option<u64>, whole: &Digest, new_document: bool) {
        if self.recording {
            let fresh = &mut self.fresh;
            let doc_anchor =
                own.or_else(|| fresh.get(from).map(|&(k, _)| (k >> 64) as u64)).unwrap_or_else(|| anchor(whole));
            if let Some(anchors) = &mut self.anchors {
                // Documents are numbered in order; a duplicate's number
                // (it adds no key) is filled in by the next one's.
                let at = doc as usize;
                if anchors.len() <= at {
                    anchors.resize(at + 1, 0);
                }
                anchors[at] = doc_anchor;
                fresh.clear();
                return;
            }
            if new_document {
                fresh.push((whole.prefix(), 0));
            }
            for f in &mut fresh[from..] {
                f.1 = doc_anchor;
            }
        }
    }
}

/// The first occurrences a run kept in its tables
/// ([`Deduper::firsts_in_tables`]), in 256 parts by the first byte of their
/// keys, which can be read at once.
pub(crate) struct TableFirsts<'a> {
    deduper: &'a Deduper,
    anchors: &'a [u64],
}

impl TableFirsts<'_> {
    /// How many there are.
    pub fn len(&self) -> usize {
        self.deduper.seen.len() + self.deduper.docs.len()
    }

    /// Those whose key's first byte is `top`: the seen-set's paragraph keys
    /// (in about key order), then the new documents' keys.
    pub fn with_top_byte(&self, top: u8) -> impl Iterator<Item = (u128, u64)> + '_ {
        let of = |doc: u32| self.anchors.get(doc as usize).copied().unwrap_or(0);
        let keys = self.deduper.seen.iter_top_byte(top).map(move |(k, first)| (k.prefix(), of(first.doc)));
        let docs = self.deduper.docs.iter_top_byte(top).map(move |(k, doc)| (k.prefix(), of(doc)));
        keys.chain(docs)
    }
}
