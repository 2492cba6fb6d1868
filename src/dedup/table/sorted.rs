//! A table turned into its keys in key order where it stands: a run's new
//! keys for its persistent index, in the memory of the seen-set that held
//! them ([`crate::index::KeyDoc`]; why in place: that module's docs).

use std::fmt;
use std::ops::Range;

use rayon::prelude::*;

use super::{Entry, SlotTable, Spots, Zeroed};
use crate::index::{KeyDoc, SortedKeyDocs};

/// How many chunks the array is sorted and moved in, at once on the
/// caller's rayon pool.
const CHUNKS: usize = 64;

/// A table's keys with their documents' anchors, in key order
/// ([`SlotTable::into_key_docs`]): most in pieces of the table's own
/// array, the run of taken spots that wrapped from its end to its start
/// (and the all-zero key) apart.
pub(crate) struct TableKeyDocs<V: Zeroed> {
    /// The table's array; the spots of `pieces` hold key-docs.
    entries: Spots<Entry<V>>,
    /// The keys before every key of `pieces`.
    front: Vec<KeyDoc>,
    pieces: Vec<Range<usize>>,
    /// The keys after every key of `pieces`.
    back: Vec<KeyDoc>,
}

impl<V: Zeroed> SlotTable<V> {
    /// Every key held, with `doc` of its value, in key order, in the
    /// table's own array (a [`KeyDoc`] is a spot's size), on the caller's
    /// rayon pool.
    ///
    /// A key's home grows with the key, and linear probing puts a key
    /// between its home and the first empty spot after it. So the keys of
    /// one run of taken spots (a cluster) sort after every key of the
    /// clusters before it: each cluster is sorted where it is (a few keys;
    /// keys are distinct) and moved down over the empty spots before it,
    /// chunk by chunk (each chunk starts at an empty spot, so that no
    /// cluster straddles two). The one exception is the cluster that runs
    /// past the array's end and on from its start: it is copied out and
    /// sorted, its keys whose home is in it at the start go before all the
    /// others, those whose home is at the end after them.
    pub(crate) fn into_key_docs(self, doc: impl Fn(V) -> u64 + Sync) -> TableKeyDocs<V> {
        const {
            assert!(size_of::<Entry<V>>() == size_of::<KeyDoc>());
            assert!(align_of::<Entry<V>>() == align_of::<KeyDoc>());
        };
        let SlotTable { mut entries, zero, .. } = self;
        let spots = entries.len();
        let key_doc = |e: Entry<V>| KeyDoc { hi: e.key.0, lo: e.key.1, doc: doc(e.value) };
        let empty = |e: &Entry<V>| e.key.is_empty();
        // The middle, [lo, hi): all of it unless the last spot is taken.
        // Then the wrapping cluster is [hi, spots) and [0, lo); without an
        // empty spot at all it is the whole array.
        let (lo, hi) = match entries.last() {
            Some(e) if !empty(e) => match entries.iter().position(empty) {
                Some(lo) => (lo, entries.iter().rposition(empty).map_or(spots, |i| i + 1)),
                None => (spots, spots),
            },
            _ => (0, spots),
        };
        let mut front: Vec<KeyDoc> = zero.map(|v| KeyDoc { hi: 0, lo: 0, doc: doc(v) }).into_iter().collect();
        let mut wrapped: Vec<KeyDoc> = entries[hi..].iter().chain(&entries[..lo]).map(|&e| key_doc(e)).collect();
        wrapped.sort_unstable_by_key(KeyDoc::key);
        let home = |k: &KeyDoc| ((u128::from(k.hi) * spots as u128) >> 64) as usize;
        let back = wrapped.split_off(wrapped.partition_point(|k| home(k) < hi));
        front.append(&mut wrapped);
        // Chunks of the middle, each from `lo` or an empty spot.
        let mut cuts = vec![lo];
        for c in 1..CHUNKS {
            let mut at = lo + (hi - lo) * c / CHUNKS;
            while at < hi && !empty(&entries[at]) {
                at += 1;
            }
            if cuts.last().is_some_and(|&last| at > last) && at < hi {
                cuts.push(at);
            }
        }
        cuts.push(hi);
        let mut chunks = Vec::with_capacity(cuts.len());
        let mut rest = &mut entries[lo..hi];
        for w in cuts.windows(2) {
            let (chunk, after) = rest.split_at_mut(w[1] - w[0]);
            chunks.push(chunk);
            rest = after;
        }
        let held: Vec<usize> = chunks.into_par_iter().map(|chunk| sort_down(chunk, key_doc)).collect();
        let pieces = cuts.iter().zip(held).filter(|&(_, n)| n > 0).map(|(&start, n)| start..start + n).collect();
        TableKeyDocs { entries, front, pieces, back }
    }
}

/// Sorts each cluster of `chunk` (which starts at its array's start or at
/// an empty spot) by key and writes its entries as key-docs (`key_doc`)
/// from the chunk's start on, in order; returns how many.
fn sort_down<V: Zeroed>(chunk: &mut [Entry<V>], key_doc: impl Fn(Entry<V>) -> KeyDoc) -> usize {
    let (n, p) = (chunk.len(), chunk.as_mut_ptr());
    // SAFETY (all three blocks): every access is within `chunk` (below
    // `n`), through `p` alone. Spot `i` is read as an entry only while no
    // key-doc was written there: key-docs go to `w`, which stays at or
    // below the spot being read (`w` counts the entries moved, all from
    // spots before it); a spot is read before a key-doc is written over it.
    // A key-doc is a spot's size and alignment (asserted by the caller).
    let empty = |i: usize| unsafe { (*p.add(i)).key.is_empty() };
    let (mut i, mut w) = (0, 0);
    while i < n {
        if empty(i) {
            i += 1;
            continue;
        }
        let start = i;
        while i < n && !empty(i) {
            i += 1;
        }
        let cluster = unsafe { std::slice::from_raw_parts_mut(p.add(start), i - start) };
        cluster.sort_unstable_by_key(|e| (e.key.0, e.key.1));
        for j in start..i {
            unsafe { p.add(w).cast::<KeyDoc>().write(key_doc(p.add(j).read())) };
            w += 1;
        }
    }
    w
}

impl<V: Zeroed> SortedKeyDocs for TableKeyDocs<V> {
    fn pieces(&self) -> Vec<&[KeyDoc]> {
        let base = self.entries.as_ptr().cast::<KeyDoc>();
        let mut all = Vec::with_capacity(self.pieces.len() + 2);
        all.push(&self.front[..]);
        // SAFETY: each piece is a range of the array that `sort_down` wrote
        // key-docs over, and nothing writes to it since.
        all.extend(self.pieces.iter().map(|r| unsafe { std::slice::from_raw_parts(base.add(r.start), r.len()) }));
        all.push(&self.back[..]);
        all
    }
}

impl<V: Zeroed> fmt::Debug for TableKeyDocs<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let held = self.front.len() + self.pieces.iter().map(ExactSizeIterator::len).sum::<usize>() + self.back.len();
        f.debug_struct("TableKeyDocs").field("spots", &self.entries.len()).field("keys", &held).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::super::Slot;
    use super::*;

    /// Keys with their documents.
    type Pairs = Vec<(u128, u64)>;

    /// The key-docs of `t` turned into them, flattened, and what they must
    /// be: its keys sorted, each with its value plus one as the document.
    fn turned(t: SlotTable<u32>) -> (Pairs, Pairs) {
        let mut expected: Vec<(u128, u64)> = t.iter().map(|(k, v)| (k.prefix(), u64::from(v) + 1)).collect();
        expected.sort_unstable();
        let kd = t.into_key_docs(|v| u64::from(v) + 1);
        let got = kd.pieces().into_iter().flatten().map(|k| (k.key(), k.doc)).collect();
        (got, expected)
    }

    fn tables() -> Vec<SlotTable<u32>> {
        let mut reserved = SlotTable::<u32>::default();
        reserved.reserve(7_777);
        vec![SlotTable::mapped_from(0), SlotTable::mapped_from(usize::MAX), reserved]
    }

    #[test]
    fn a_table_turned_into_key_docs_is_its_keys_in_key_order() {
        // Keys spread over the array, crowded around the array's end (a
        // run that wraps to its start) and its start, and the all-zero key;
        // on tables grown both ways and one reserved to an odd size, alone
        // and on a pool of two.
        let mut keys: Vec<Slot> = (0..5_000u64).map(|n| Slot(n.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1, n)).collect();
        for top in [0u64, 1, 127, 128, 254, 255] {
            keys.extend((0..300u64).map(|n| Slot((top << 56) | (((1 << 56) - 1) - n), n)));
            keys.extend((0..300u64).map(|n| Slot((top << 56) | n, n)));
        }
        keys.push(Slot(0, 0));
        let pool = rayon::ThreadPoolBuilder::new().num_threads(2).build().expect("a pool");
        for on_pool in [false, true] {
            for mut t in tables() {
                for (n, &k) in keys.iter().enumerate() {
                    t.insert(k, n as u32);
                }
                let last_taken = t.entries.last().is_some_and(|e| !e.key.is_empty());
                assert!(last_taken, "the keys crowded at the end wrap to the start");
                let (got, expected) = if on_pool { pool.install(|| turned(t)) } else { turned(t) };
                // Every key but one `Slot(0, 0)` twice.
                assert_eq!(expected.len(), keys.len() - 1);
                assert_eq!(got, expected);
            }
        }
    }

    #[test]
    fn keys_whose_run_wraps_or_fills_the_array_come_out_in_order() {
        // Every key's home is the last spot, or the first: one run from
        // the end on into the start; then a table with no empty spot.
        for mut t in tables() {
            for n in 1..=500u64 {
                t.insert(Slot(u64::MAX, n), n as u32);
                t.insert(Slot(0, n), 1000 + n as u32);
            }
            let (got, expected) = turned(t);
            assert_eq!(got.len(), 1000);
            assert_eq!(got, expected);
        }
        let mut full = SlotTable::<u32>::mapped_from(usize::MAX);
        full.reserve(48);
        let spots = full.entries.len();
        for (i, e) in full.entries.iter_mut().enumerate() {
            // Homes at the array's end, so that the run wraps: no empty spot.
            *e = Entry { key: Slot(u64::MAX - i as u64, 1 + i as u64), value: i as u32 };
        }
        full.len = spots;
        let (got, expected) = turned(full);
        assert_eq!(got.len(), spots);
        assert_eq!(got, expected);
        for t in tables() {
            assert_eq!(turned(t).0, vec![]);
        }
    }

    #[test]
    fn each_cluster_is_sorted_and_moved_down_over_the_empty_spots() {
        let key = |k: u64| Entry { key: Slot(k, 0), value: k as u32 };
        let none = Entry { key: Slot(0, 0), value: 0 };
        let mut chunk = [none, key(9), key(7), key(8), none, none, key(20), none, key(31), key(30)];
        let n = sort_down(&mut chunk, |e| KeyDoc { hi: e.key.0, lo: 0, doc: u64::from(e.value) });
        assert_eq!(n, 6);
        // SAFETY: the first six spots hold key-docs (test).
        let got = unsafe { std::slice::from_raw_parts(chunk.as_ptr().cast::<KeyDoc>(), n) };
        assert_eq!(got.iter().map(|k| (k.hi, k.doc)).collect::<Vec<_>>(), [7, 8, 9, 20, 30, 31].map(|k| (k, k)));
    }
}
