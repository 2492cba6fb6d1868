//! [`KeyDoc`]: a run's new keys as its seen-set leaves them at its end, in
//! the seen-set's own memory.
//!
//! A run with `--index` that keeps its first occurrences in its tables
//! (`Deduper::keep_firsts_in_tables`) used to copy them at its end into
//! 256 buckets of [`super::Entry`] (32 bytes a key, 35 MB for a day of 1.1M
//! keys) and sort those. On a machine whose host backs a page only once it
//! is touched, the buckets' fresh pages were most of that time: a `perf`
//! timeline of a 15-word day put ~100 ms of wall time (both threads) in the
//! fill, 75% of its samples page zeroing, where the plain run takes ~300 ms
//! (issue 18, thirty-seventh session, benches/INDEX.md seventeenth pass).
//!
//! A seen-set's spot is 24 bytes, a key and an 8-byte value; a [`KeyDoc`]
//! is a key and its document's anchor, 24 bytes too. So each table turns
//! into its keys in key order where it stands
//! (`SlotTable::into_key_docs`): linear probing puts every key between its
//! home and the next empty spot, and homes grow with keys, so the keys of a
//! run of taken spots (a cluster) all sort after those of the clusters
//! before it; each cluster is sorted (a few keys) and moved down over the
//! empty spots, on the caller's rayon pool in chunks that end at empty
//! spots. Nothing new is allocated but for the cluster that wraps from the
//! array's end to its start. The batch of every such key is the run's, so
//! it is not stored.

use std::fmt;

/// A new key and the anchor of the document that first kept it; its batch
/// is the run's ([`super::NewKeys::from_sorted`]).
#[repr(C, align(8))]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct KeyDoc {
    /// The key's first 64 bits.
    pub(crate) hi: u64,
    /// Its next 64 bits.
    pub(crate) lo: u64,
    /// The document's anchor ([`super::Entry::doc`]).
    pub(crate) doc: u64,
}

impl KeyDoc {
    /// The 128-bit key.
    #[inline]
    pub(crate) fn key(&self) -> u128 {
        (u128::from(self.hi) << 64) | u128::from(self.lo)
    }

    /// The order of a commit's entries ([`super::merge::order`]) within one
    /// batch: key, then document.
    #[inline]
    fn order(&self) -> (u64, u64, u64) {
        (self.hi, self.lo, self.doc)
    }
}

/// Key-docs in key order, each key once, in pieces (every key of a piece
/// below every key of the next), kept in memory their owner holds (a
/// run's seen-set, see the module docs).
pub(crate) trait SortedKeyDocs: Send + Sync + fmt::Debug {
    /// The pieces, in order.
    fn pieces(&self) -> Vec<&[KeyDoc]>;
}

/// Calls `f` with each key-doc of `seqs` (each the pieces of one
/// [`SortedKeyDocs`]) in (key, document) order, as [`merged`] gives them;
/// two sequences (a run's seen-set and its documents' keys) are merged in
/// a loop over the first's pieces that compares each key-doc with the
/// second's next. The segment's writer goes through a run's keys four
/// times (its keys, values and filter, and the index-wide filter).
pub(super) fn each_merged<E>(seqs: &[Vec<&[KeyDoc]>], mut f: impl FnMut(&KeyDoc) -> Result<(), E>) -> Result<(), E> {
    match seqs {
        [] => Ok(()),
        [one] => one.iter().flat_map(|p| p.iter()).try_for_each(f),
        [a, b] => {
            let mut bs = b.iter().flat_map(|p| p.iter()).peekable();
            for x in a.iter().flat_map(|p| p.iter()) {
                while let Some(y) = bs.next_if(|y| y.order() < x.order()) {
                    f(y)?;
                }
                f(x)?;
            }
            bs.try_for_each(f)
        }
        _ => merged(seqs).try_for_each(|k| f(&k)),
    }
}

/// The key-docs of `seqs` (each the pieces of one [`SortedKeyDocs`]) in
/// (key, document) order: their merge. A key in two sequences comes twice
/// (a paragraph whose key is its document's key too), with the lesser
/// document first, as the commit's sort of entries orders them.
pub(super) fn merged<'a>(seqs: &'a [Vec<&'a [KeyDoc]>]) -> impl Iterator<Item = KeyDoc> + 'a {
    let mut heads: Vec<_> = seqs
        .iter()
        .map(|pieces| {
            let mut it = pieces.iter().copied().flatten().copied();
            let head = it.next();
            (it, head)
        })
        .filter(|(_, head)| head.is_some())
        .collect();
    std::iter::from_fn(move || {
        let mut best: Option<(usize, KeyDoc)> = None;
        for (i, (_, head)) in heads.iter().enumerate() {
            if let Some(h) = head
                && best.is_none_or(|(_, b)| h.order() < b.order())
            {
                best = Some((i, *h));
            }
        }
        let (i, kd) = best?;
        if let Some((it, head)) = heads.get_mut(i) {
            *head = it.next();
        }
        Some(kd)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kd(key: u128, doc: u64) -> KeyDoc {
        KeyDoc { hi: (key >> 64) as u64, lo: key as u64, doc }
    }

    #[test]
    fn a_key_doc_is_a_seen_set_spot_and_gives_its_key_back() {
        assert_eq!(size_of::<KeyDoc>(), 24);
        let key = (7u128 << 100) | 12345;
        assert_eq!(kd(key, 3).key(), key);
    }

    #[test]
    fn sequences_in_pieces_merge_in_key_then_document_order() {
        let a = [kd(1, 0), kd(5, 9), kd(6, 0)];
        let b = [kd(2, 0), kd(5, 4), kd(9, 1)];
        let c = [kd(1u128 << 127, 2)];
        let seqs = vec![vec![&a[..1], &[][..], &a[1..]], vec![&b[..2], &b[2..]], vec![&c[..]], vec![]];
        let got: Vec<(u128, u64)> = merged(&seqs).map(|k| (k.key(), k.doc)).collect();
        assert_eq!(got, vec![(1, 0), (2, 0), (5, 4), (5, 9), (6, 0), (9, 1), (1u128 << 127, 2)]);
        assert_eq!(merged(&[]).count(), 0);
        // One, two (the loop for two) and more sequences, each way round.
        let each = |seqs: &[Vec<&[KeyDoc]>]| {
            let mut all = Vec::new();
            each_merged::<()>(seqs, |k| {
                all.push(*k);
                Ok(())
            })
            .expect("no error");
            all
        };
        for seqs in [&seqs[..], &seqs[..1], &seqs[..2], &seqs[1..3], &[seqs[1].clone(), seqs[0].clone()][..]] {
            assert_eq!(each(seqs), merged(seqs).collect::<Vec<_>>());
        }
        assert_eq!(each(&seqs[..2]).len(), 6);
        // The caller's error stops the walk.
        let mut seen = 0;
        let stop = each_merged(&seqs[..2], |_| {
            seen += 1;
            if seen == 3 { Err("stop") } else { Ok(()) }
        });
        assert_eq!((stop, seen), (Err("stop"), 3));
    }
}
