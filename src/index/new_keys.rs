//! [`NewKeys`]: a run's new keys, gathered in buckets by their top byte.
//!
//! A commit writes its new keys as a segment in key order. Sorting a day's
//! 1.1M entries (35 MB) as one slice was the largest part of what `--index`
//! adds to a run (issue 18: ~130 ms of CPU on a 2-core machine, most of it
//! cache misses of the sort's partitions). Keys are the first bits of a
//! SHA-256, so they spread evenly over the 256 values of their top byte:
//! pushed into the bucket of that byte as the run decides them (one shift
//! more per key), each bucket is ~1/256 of the keys (~140 KB for a day),
//! sorted within the cache, and the buckets in order are the whole sorted
//! sequence (the segment writer takes them one after the other, without
//! merging: see `writer::write_segment`).

use rayon::prelude::*;

use super::Entry;
use super::merge::order;

/// How many top bits of a key choose its bucket.
const BITS: u32 = 8;
const BUCKETS: usize = 1 << BITS;

/// New entries for [`super::Index::commit_keys`], in any order, bucketed by
/// the top byte of their key.
#[derive(Clone, Debug)]
pub struct NewKeys {
    buckets: Vec<Vec<Entry>>,
    len: usize,
}

impl Default for NewKeys {
    fn default() -> Self {
        NewKeys::with_capacity(0)
    }
}

impl NewKeys {
    /// Room for about `n` entries without growing (each bucket gets its
    /// share plus 1/8: with keys spread evenly a bucket of a share of a
    /// few thousand strays from it by ~1%; one that outgrows its room
    /// doubles, as a `Vec` does).
    pub fn with_capacity(n: usize) -> NewKeys {
        let each = if n == 0 { 0 } else { n / BUCKETS + n / BUCKETS / 8 + 16 };
        NewKeys { buckets: (0..BUCKETS).map(|_| Vec::with_capacity(each)).collect(), len: 0 }
    }

    /// Adds one entry.
    #[inline]
    pub fn push(&mut self, e: Entry) {
        let b = (e.key >> (128 - BITS)) as usize;
        if let Some(bucket) = self.buckets.get_mut(b) {
            bucket.push(e);
            self.len += 1;
        }
    }

    /// The number of entries.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when no entry was added.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Every entry, bucket by bucket (within a bucket in the order added).
    pub fn iter(&self) -> impl Iterator<Item = &Entry> {
        self.buckets.iter().flatten()
    }

    /// The buckets, each sorted by (key, document, batch) on the caller's
    /// rayon pool: together, in order, every entry in key order. Empty
    /// buckets are left out.
    pub(super) fn into_sorted(self) -> Vec<Vec<Entry>> {
        let mut buckets: Vec<Vec<Entry>> = self.buckets.into_iter().filter(|b| !b.is_empty()).collect();
        buckets.par_iter_mut().for_each(|b| b.sort_unstable_by_key(order));
        buckets
    }
}

impl Extend<Entry> for NewKeys {
    fn extend<I: IntoIterator<Item = Entry>>(&mut self, iter: I) {
        for e in iter {
            self.push(e);
        }
    }
}

impl FromIterator<Entry> for NewKeys {
    fn from_iter<I: IntoIterator<Item = Entry>>(iter: I) -> Self {
        let mut keys = NewKeys::default();
        keys.extend(iter);
        keys
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(key: u128, doc: u64) -> Entry {
        Entry { key, doc, batch: 0 }
    }

    #[test]
    fn sorted_buckets_in_order_are_every_entry_in_key_order() {
        let mut x = 0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c834_u128;
        let mut all = Vec::new();
        let mut keys = NewKeys::with_capacity(1000);
        for i in 0..5000u64 {
            x = x.wrapping_mul(0x2360_ed05_1fc6_5da4_4385_df64_9fcc_f645).wrapping_add(0x5851_f42d_4c95_7f2d);
            // A few keys twice, with different documents.
            let key = if i % 97 == 0 { all.last().map_or(x, |e: &Entry| e.key) } else { x };
            let e = entry(key, 5000 - i);
            all.push(e);
            keys.push(e);
        }
        assert_eq!(keys.len(), 5000);
        assert_eq!(keys.iter().count(), 5000);
        all.sort_unstable_by_key(order);
        let buckets = keys.into_sorted();
        assert!(buckets.len() > 200, "keys spread over the buckets: {}", buckets.len());
        assert!(buckets.iter().all(|b| !b.is_empty()));
        let flat: Vec<Entry> = buckets.into_iter().flatten().collect();
        assert_eq!(flat, all);
    }

    #[test]
    fn a_bucket_grows_past_its_room() {
        let mut keys = NewKeys::with_capacity(256);
        keys.extend((0..100u64).map(|d| entry(7 << 120 | u128::from(d % 10), d)));
        let buckets = keys.into_sorted();
        assert_eq!(buckets.len(), 1);
        assert_eq!(buckets[0].len(), 100);
        assert!(buckets[0].windows(2).all(|w| order(&w[0]) <= order(&w[1])));
    }

    #[test]
    fn empty_keys_have_no_bucket() {
        let keys: NewKeys = std::iter::empty().collect();
        assert!(keys.is_empty());
        assert!(keys.into_sorted().is_empty());
    }
}
