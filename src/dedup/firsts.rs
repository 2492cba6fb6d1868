//! The first occurrences a run adds, for a persistent index: listed as each
//! decision adds them ([`Deduper::take_new_firsts`]), or left in the
//! seen-set's tables and read from them at the end
//! ([`Deduper::into_key_docs`]).

use std::sync::Arc;

use super::{Deduper, Scope, anchor};
use crate::index::SortedKeyDocs;
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
    /// [`Deduper::into_key_docs`] at its end, instead of in a list each
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
    /// run's decisions added, the same `(key prefix, anchor)` pairs as
    /// [`Deduper::take_new_firsts`] would have handed out one decision at a
    /// time, in key order: the seen-set's keys and the new documents' keys, each table turned into its keys in
    /// key order with their documents' anchors, in its own memory
    /// ([`SlotTable::into_key_docs`](super::table::SlotTable::into_key_docs)), at once on the caller's
    /// rayon pool. `None` without [`Deduper::keep_firsts_in_tables`].
    pub(crate) fn into_key_docs(self) -> Option<Vec<Arc<dyn SortedKeyDocs>>> {
        let anchors = self.anchors?;
        let of = |doc: u32| anchors.get(doc as usize).copied().unwrap_or(0);
        let (seen, docs) =
            rayon::join(|| self.seen.into_key_docs(|first| of(first.doc)), || self.docs.into_key_docs(of));
        Some(vec![Arc::new(seen), Arc::new(docs)])
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
