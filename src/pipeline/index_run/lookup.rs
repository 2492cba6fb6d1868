//! Lookups of the persistent index during a run: a document's history
//! (which of its paragraphs, and whether the whole document, an earlier
//! batch or a killed run of this batch already holds), one document at a
//! time or several together.

use std::collections::HashMap;
use std::sync::Arc;

use super::IndexRun;
use crate::dedup::{Earlier, History};
use crate::index::IndexView;
use crate::key::{Digest, Keyed};

/// What [`history`] reads of an [`IndexRun`]: the index's segments and
/// what a killed run of this batch journaled. Neither changes before the
/// run's commit, so a run takes one lookup at its start and looks the next
/// batch of documents up with it while the current one is decided (which
/// borrows the [`IndexRun`] mutably).
#[derive(Clone)]
pub struct Lookup {
    view: IndexView,
    pending: Arc<HashMap<u128, u64>>,
    number: u32,
}

impl IndexRun {
    /// The lookup of this run (see [`Lookup`]); valid until the run's commit.
    pub fn lookup(&self) -> Lookup {
        Lookup { view: self.index.view(), pending: Arc::clone(&self.pending), number: self.id.number }
    }
}

impl Lookup {
    /// [`history`] through the lookup: the same answer as the run's.
    pub fn history(&self, keys: &[Keyed], whole: &Digest) -> History {
        lookup_history(|k, f| self.view.get_many(k, f), &self.pending, self.number, keys, whole)
    }

    /// [`Lookup::history`] of each of `docs` (paragraph keys, whole-document
    /// key), in order, their keys looked up together: one document's dozen
    /// keys let a dozen of the index's memory misses overlap, a batch's keys
    /// keep `get_many`'s 24 prefetches ahead in flight from its first key to
    /// its last (issue 18: `get_many` was ~57 ns per key of a daily run, a
    /// third of it waiting on the prefetches of small groups).
    pub fn histories(&self, docs: &[(&[Keyed], &Digest)]) -> Vec<History> {
        let mut keys = Vec::new();
        for (paragraphs, whole) in docs {
            if !paragraphs.is_empty() {
                keys.extend(paragraphs.iter().map(|k| k.digest.prefix()));
                keys.push(whole.prefix());
            }
        }
        let mut found = vec![None; keys.len()];
        self.view.get_many(&keys, &mut found);
        if !self.pending.is_empty() {
            for (f, k) in found.iter_mut().zip(&keys) {
                *f = f.or_else(|| self.pending.get(k).map(|&doc| (doc, self.number)));
            }
        }
        let mut rest = &found[..];
        let mut out = Vec::with_capacity(docs.len());
        for (paragraphs, _) in docs {
            let n = paragraphs.len();
            let total = if n == 0 { 0 } else { n + 1 };
            let (mine, after) = rest.split_at(total.min(rest.len()));
            rest = after;
            let mut h = History { paragraphs: Vec::new(), document: None };
            note_found(&mut h, n, 0, mine);
            out.push(h);
        }
        out
    }
}

/// Looks a document (its paragraph keys and whole-document key) up in the
/// persistent index, and in what a killed run of this batch journaled
/// (parallel step: neither changes during a run).
pub fn history(run: &IndexRun, keys: &[Keyed], whole: &Digest) -> History {
    lookup_history(|k, f| run.index.get_many(k, f), &run.pending, run.id.number, keys, whole)
}

/// [`history`] over `get_many` (the index's, or a [`Lookup`]'s view).
fn lookup_history(
    get_many: impl Fn(&[u128], &mut [Option<(u64, u32)>]),
    pending: &HashMap<u128, u64>,
    number: u32,
    keys: &[Keyed],
    whole: &Digest,
) -> History {
    let journaled = |key: u128| pending.get(&key).map(|&doc| (doc, number));
    // Batched lookups of the paragraph keys and then the whole-document
    // key, 64 at a time from the stack, so the memory misses overlap
    // (`Index::get_many` prefetches); most documents are new, and their
    // history then allocates nothing.
    const CHUNK: usize = 64;
    let n = keys.len();
    let key = |j: usize| keys.get(j).map_or(whole.prefix(), |k| k.digest.prefix());
    let mut history = History { paragraphs: Vec::new(), document: None };
    let (mut chunk, mut found) = ([0u128; CHUNK], [None; CHUNK]);
    let total = if keys.is_empty() { 0 } else { n + 1 };
    for start in (0..total).step_by(CHUNK) {
        let len = CHUNK.min(total - start);
        for (i, k) in chunk[..len].iter_mut().enumerate() {
            *k = key(start + i);
        }
        get_many(&chunk[..len], &mut found[..len]);
        if !pending.is_empty() {
            for (f, &k) in found[..len].iter_mut().zip(&chunk[..len]) {
                *f = f.or_else(|| journaled(k));
            }
        }
        note_found(&mut history, n, start, &found[..len]);
    }
    history
}

/// Records in `h` (the history of a document of `n` paragraphs) what the
/// lookup of its keys `start..` found: paragraph keys, then at `n` the
/// whole-document key. Allocates only when a paragraph key was found.
fn note_found(h: &mut History, n: usize, start: usize, found: &[Option<(u64, u32)>]) {
    for (j, f) in (start..).zip(found) {
        let Some((doc, batch)) = *f else { continue };
        let e = Some(Earlier { batch, doc });
        if j == n {
            h.document = e;
        } else {
            if h.paragraphs.is_empty() {
                h.paragraphs = vec![None; n];
            }
            if let Some(p) = h.paragraphs.get_mut(j) {
                *p = e;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::Batch;

    fn keyed(i: u64) -> Keyed {
        Keyed { digest: Digest::of(format!("paragraph {i}").as_bytes()), chars: 9 }
    }

    /// Looked up together or one by one, documents get the same history:
    /// keys in the index, in what a killed run journaled, in neither; an
    /// empty document; one of more keys than a round of lookups.
    #[test]
    fn documents_looked_up_together_get_the_histories_they_get_one_by_one() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let mut run = IndexRun::open_batch(tmp.path(), Batch::Named(b"day1".to_vec()), "day1".into()).expect("open");
        let whole = |i: u64| Digest::of(format!("document {i}").as_bytes());
        run.add((0..200).filter(|i| i % 3 == 0).map(|i| (keyed(i).digest.prefix(), i / 10)));
        run.add([(whole(2).prefix(), 7)].into_iter());
        run.commit_counts(3, 70).expect("commit");
        let mut lookup = run.lookup();
        lookup.pending =
            Arc::new((0..200).filter(|i| i % 5 == 0).map(|i| (keyed(i).digest.prefix(), 1000 + i)).collect());
        let sizes = [3, 0, 70, 1, 12, 0, 5];
        let mut next = 0;
        let docs: Vec<(Vec<Keyed>, Digest)> = sizes
            .iter()
            .enumerate()
            .map(|(d, &n)| {
                let keys = (next..next + n).map(keyed).collect();
                next += n;
                (keys, whole(d as u64))
            })
            .collect();
        let refs: Vec<(&[Keyed], &Digest)> = docs.iter().map(|(k, w)| (&k[..], w)).collect();
        let together = lookup.histories(&refs);
        let one_by_one: Vec<History> = docs.iter().map(|(k, w)| lookup.history(k, w)).collect();
        assert_eq!(together, one_by_one);
        assert!(together.iter().any(|h| h.document.is_some()), "a whole-document key found");
        let found: usize = together.iter().map(|h| h.paragraphs.iter().flatten().count()).sum();
        // Keys 0..91: multiples of 3 (index) or of 5 (journal).
        assert_eq!(found, (0..91).filter(|i| i % 3 == 0 || i % 5 == 0).count());
        assert!(lookup.histories(&[]).is_empty());
    }
}
