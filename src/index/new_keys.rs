//! [`NewKeys`]: a run's new keys, gathered in buckets by their top byte.
//!
//! A commit writes its new keys as a segment in key order. Sorting a day's
//! 1.1M entries (35 MB) as one slice was the largest part of what `--index`
//! adds to a run (issue 18: ~130 ms of CPU on a 2-core machine, most of it
//! cache misses of the sort's partitions). Keys are the first bits of a
//! SHA-256, so they spread evenly over the 256 values of their top byte:
//! pushed into the bucket of that byte (one shift more per key), each
//! bucket is ~1/256 of the keys (~140 KB for a day), sorted within the
//! cache, and the buckets in order are the whole sorted sequence (the
//! segment writer takes them one after the other, without merging: see
//! `writer::write_segment`).
//!
//! A run with `--index` that is no retry of its batch, takes up no journal
//! or replay record of a killed run, is not `--in-place` and compares across
//! the corpus makes no buckets: at its end its seen-set's tables are sorted
//! where they stand and handed over as they are (`IndexRun::set_new_firsts`,
//! [`NewKeys::from_sorted`], `key_docs`); the others push each decision's
//! keys as it is made (`IndexRun::add`).
//!
//! A bucket is sorted by one counting pass on the next bits of its keys
//! (up to 12: groups of about one entry for a day's bucket) into a scratch
//! vector, each group then sorted by the whole order, and copied back
//! ([`sort_bucket`]). On 1.1M entries it took 21 ms on one thread where
//! `sort_unstable_by_key` took 46-71 ms (the comparison sort's branches on
//! random keys; benches/INDEX.md, thirteenth pass). The result is the same:
//! the order is total on the entries (every field compared).

use std::sync::Arc;

use rayon::prelude::*;

use super::Entry;
use super::key_docs::{KeyDoc, SortedKeyDocs};
use super::merge::order;

/// How many top bits of a key choose its bucket.
const BITS: u32 = 8;
const BUCKETS: usize = 1 << BITS;

/// Buckets with room for this many entries (32 KiB) or more have it
/// touched when they are made ([`NewKeys::with_capacity`]).
const TOUCH_MIN: usize = 1024;

/// New entries for [`super::Index::commit_keys`], in any order, bucketed by
/// the top byte of their key; or, for a run that reads them from its
/// seen-set at its end, that seen-set's keys sorted in its own memory
/// (`NewKeys::from_sorted`).
#[derive(Clone, Debug)]
pub struct NewKeys {
    buckets: Vec<Vec<Entry>>,
    len: usize,
    /// Sequences of key-docs in key order, all of batch `batch`; only
    /// while the buckets are empty (a push moves them into the buckets).
    sorted: Vec<Arc<dyn SortedKeyDocs>>,
    batch: u32,
}

/// What [`NewKeys::into_sorted`] gives the commit.
pub(super) enum Sorted {
    /// Buckets, each in key order, in order.
    Entries(Vec<Vec<Entry>>),
    /// Sequences of key-docs, each in key order, of the batch given.
    KeyDocs(Vec<Arc<dyn SortedKeyDocs>>, u32),
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
    ///
    /// Buckets with room for at least 1,024 entries (`TOUCH_MIN`) are made on
    /// the rayon pool running the caller, when there is one, and their room
    /// is touched (one write in every 4 KiB page; lengths stay 0), so that
    /// the kernel zeroes their fresh pages on every thread of the pool
    /// before the run's first decision. Made on one thread, a day's buckets
    /// (~40 MB for 1.1M keys) were zeroed there anyway, as `mimalloc`
    /// wrote into each bucket's first page when it handed it out and each
    /// write faulted in a 2 MiB page (transparent huge pages): ~75% of that
    /// thread's first 150 ms, the other core idle (issue 18, thirtieth
    /// session).
    pub fn with_capacity(n: usize) -> NewKeys {
        let each = room_per_bucket(n);
        let bucket = |_| {
            let mut v: Vec<Entry> = Vec::with_capacity(each);
            if each >= TOUCH_MIN {
                let blank = Entry { key: 0, doc: 0, batch: 0 };
                let page = 4096 / std::mem::size_of::<Entry>();
                v.spare_capacity_mut().iter_mut().step_by(page).for_each(|e| _ = e.write(blank));
            }
            v
        };
        let buckets = if each >= TOUCH_MIN && rayon::current_thread_index().is_some() {
            (0..BUCKETS).into_par_iter().map(bucket).collect()
        } else {
            (0..BUCKETS).map(bucket).collect()
        };
        NewKeys { buckets, len: 0, sorted: Vec::new(), batch: 0 }
    }

    /// A run's new keys as its seen-set's tables leave them at its end
    /// (`Deduper::into_key_docs`): sequences each in key order, every key
    /// of batch `batch`. The commit writes them from where they are,
    /// merging the sequences as it goes: no bucket is made (see
    /// `key_docs`).
    pub(crate) fn from_sorted(sorted: Vec<Arc<dyn SortedKeyDocs>>, batch: u32) -> NewKeys {
        let len = sorted.iter().flat_map(|s| s.pieces()).map(<[KeyDoc]>::len).sum();
        NewKeys { buckets: vec![Vec::new(); BUCKETS], len, sorted, batch }
    }

    /// Moves the key-docs of [`NewKeys::from_sorted`] into the buckets, as
    /// entries (before another entry is pushed).
    #[cold]
    fn spill(&mut self) {
        let (sorted, batch) = (std::mem::take(&mut self.sorted), self.batch);
        self.len = 0;
        for s in &sorted {
            for kd in s.pieces().into_iter().flatten() {
                self.push(Entry { key: kd.key(), doc: kd.doc, batch });
            }
        }
    }

    /// Adds one entry.
    #[inline]
    pub fn push(&mut self, e: Entry) {
        if !self.sorted.is_empty() {
            self.spill();
        }
        let b = (e.key >> (128 - BITS)) as usize;
        if let Some(bucket) = self.buckets.get_mut(b) {
            bucket.push(e);
            self.len += 1;
        }
    }

    /// Asks for the cache line that the next entry of `key`'s bucket goes
    /// to, for writing: a decision pushes a document's new keys into 256
    /// buckets (256 streams of writes, too many for the processor to see
    /// coming), so the ordered step asks for the next document's lines while
    /// it decides this one, as it does for the seen-set's
    /// ([`crate::dedup::Deduper::warm`]).
    #[inline]
    pub fn prefetch(&self, key: u128) {
        if let Some(b) = self.buckets.get((key >> (128 - BITS)) as usize)
            && b.len() < b.capacity()
        {
            crate::prefetch::write(b.as_ptr().wrapping_add(b.len()));
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

    /// Every entry: bucket by bucket (within a bucket in the order added),
    /// or those of `NewKeys::from_sorted`, one sequence after the other
    /// (each in key order).
    pub fn iter(&self) -> impl Iterator<Item = Entry> + '_ {
        let batch = self.batch;
        let sorted = self.sorted.iter().flat_map(|s| s.pieces()).flatten();
        self.buckets.iter().flatten().copied().chain(sorted.map(move |kd| Entry { key: kd.key(), doc: kd.doc, batch }))
    }

    /// The batches the entries name: each entry's, or the one batch of
    /// [`NewKeys::from_sorted`].
    pub(super) fn batches(&self) -> impl Iterator<Item = u32> + '_ {
        let sorted = (!self.sorted.is_empty()).then_some(self.batch);
        self.buckets.iter().flatten().map(|e| e.batch).chain(sorted)
    }

    /// The buckets, each sorted by (key, document, batch) on the caller's
    /// rayon pool: together, in order, every entry in key order (empty
    /// buckets left out); or the sequences of [`NewKeys::from_sorted`].
    pub(super) fn into_sorted(self) -> Sorted {
        if !self.sorted.is_empty() {
            return Sorted::KeyDocs(self.sorted, self.batch);
        }
        let mut buckets: Vec<Vec<Entry>> = self.buckets.into_iter().filter(|b| !b.is_empty()).collect();
        buckets.par_iter_mut().for_each_init(Scratch::default, |scratch, b| sort_bucket(b, scratch));
        Sorted::Entries(buckets)
    }
}

/// A bucket's room for its share of about `n` entries in all: the share
/// plus 1/8 (with keys spread evenly, a bucket of a share of a few
/// thousand strays from it by ~1%); none for none.
fn room_per_bucket(n: usize) -> usize {
    if n == 0 { 0 } else { n / BUCKETS + n / BUCKETS / 8 + 16 }
}

/// Buckets of at most this many entries are sorted by comparisons alone.
const SMALL: usize = 64;
/// The widest counting pass: 4,096 groups (16 KiB of counts).
const MAX_DIGIT_BITS: u32 = 12;

/// A worker's reused room for [`sort_bucket`].
#[derive(Default)]
struct Scratch {
    entries: Vec<Entry>,
    at: Vec<u32>,
}

/// Sorts a bucket (keys sharing their top [`BITS`]) by (key, document,
/// batch): the entries are counted and placed by the next bits of their
/// keys (about one entry per group, [`MAX_DIGIT_BITS`] at most) in
/// `scratch`, each group is sorted by the whole order, and the result is
/// copied back. Buckets of [`SMALL`] entries or fewer, and buckets over
/// 2^32 entries, are sorted by comparisons.
fn sort_bucket(b: &mut [Entry], scratch: &mut Scratch) {
    if b.len() <= SMALL || u32::try_from(b.len()).is_err() {
        b.sort_unstable_by_key(order);
        return;
    }
    // The groups go by the bits below the bucket's: every key has its top bits.
    debug_assert!(b.iter().all(|e| e.key >> (128 - BITS) == b[0].key >> (128 - BITS)));
    let bits = b.len().ilog2().min(MAX_DIGIT_BITS);
    let shift = 128 - BITS - bits;
    let mask = (1u128 << bits) - 1;
    let digit = |e: &Entry| ((e.key >> shift) & mask) as usize;
    let Scratch { entries, at } = scratch;
    // Counts, then where each group starts.
    at.clear();
    at.resize(1 << bits, 0);
    for e in b.iter() {
        at[digit(e)] += 1;
    }
    let mut sum = 0;
    for a in at.iter_mut() {
        (*a, sum) = (sum, sum + *a);
    }
    entries.clear();
    entries.extend_from_slice(b);
    for e in b.iter() {
        let slot = &mut at[digit(e)];
        entries[*slot as usize] = *e;
        *slot += 1;
    }
    // `at[g]` is now where group `g` ends, and the next begins.
    let mut start = 0;
    for &end in at.iter() {
        let group = &mut entries[start..end as usize];
        if group.len() > 1 {
            group.sort_unstable_by_key(order);
        }
        start = end as usize;
    }
    b.copy_from_slice(entries);
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

    impl Sorted {
        /// The buckets of [`Sorted::Entries`] (tests).
        fn into_buckets(self) -> Vec<Vec<Entry>> {
            match self {
                Sorted::Entries(b) => b,
                Sorted::KeyDocs(..) => panic!("key-docs, not buckets"),
            }
        }
    }

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
        let buckets = keys.into_sorted().into_buckets();
        assert!(buckets.len() > 200, "keys spread over the buckets: {}", buckets.len());
        assert!(buckets.iter().all(|b| !b.is_empty()));
        let flat: Vec<Entry> = buckets.into_iter().flatten().collect();
        assert_eq!(flat, all);
    }

    #[test]
    fn buckets_made_on_a_pool_hold_what_buckets_made_alone_hold() {
        // 300,000 entries of room: 1,333 per bucket, past `TOUCH_MIN`, so
        // on a pool of two the buckets are made and touched on both threads.
        let entries = keys(300_000, 9, None);
        let fill = || {
            let mut k = NewKeys::with_capacity(300_000);
            assert!(k.is_empty() && k.buckets.iter().all(|b| b.is_empty() && b.capacity() >= 1_333));
            k.extend(entries.iter().copied());
            k
        };
        let pool = rayon::ThreadPoolBuilder::new().num_threads(2).build().expect("a pool");
        let pooled = pool.install(fill);
        assert_eq!(pooled.len(), 300_000);
        let sorted =
            |k: NewKeys| pool.install(|| k.into_sorted().into_buckets()).into_iter().flatten().collect::<Vec<Entry>>();
        let mut expected = entries.clone();
        expected.sort_unstable_by_key(order);
        assert_eq!(sorted(pooled), expected);
        assert_eq!(sorted(fill()), expected);
    }

    /// Key-docs in pieces of `size`, in memory of their own (tests).
    #[derive(Debug)]
    struct Pieces(Vec<KeyDoc>, usize);

    impl SortedKeyDocs for Pieces {
        fn pieces(&self) -> Vec<&[KeyDoc]> {
            self.0.chunks(self.1).collect()
        }
    }

    #[test]
    fn key_docs_are_the_entries_of_their_batch_until_an_entry_is_pushed() {
        let kd = |e: &Entry| KeyDoc { hi: (e.key >> 64) as u64, lo: e.key as u64, doc: e.doc };
        let mut a: Vec<KeyDoc> = keys(3000, 12, None).iter().map(kd).collect();
        let mut b: Vec<KeyDoc> = keys(500, 13, None).iter().map(kd).collect();
        a.sort_unstable_by_key(|k| k.key());
        b.sort_unstable_by_key(|k| k.key());
        let runs: Vec<Arc<dyn SortedKeyDocs>> = vec![Arc::new(Pieces(a.clone(), 7)), Arc::new(Pieces(b.clone(), 1000))];
        let new = NewKeys::from_sorted(runs, 4);
        assert_eq!(new.len(), 3500);
        assert_eq!(new.batches().collect::<Vec<u32>>(), vec![4]);
        let entry = |k: &KeyDoc| Entry { key: k.key(), doc: k.doc, batch: 4 };
        let mut expected: Vec<Entry> = a.iter().chain(&b).map(entry).collect();
        assert_eq!(new.iter().collect::<Vec<Entry>>(), expected);
        match new.clone().into_sorted() {
            Sorted::KeyDocs(seqs, 4) => assert_eq!(seqs.len(), 2),
            _ => panic!("the key-docs as they were given"),
        }
        // A pushed entry moves them into the buckets, as entries.
        let mut pushed = new;
        let extra = Entry { key: 5, doc: 1, batch: 2 };
        pushed.push(extra);
        expected.push(extra);
        expected.sort_unstable_by_key(order);
        assert_eq!(pushed.len(), 3501);
        assert_eq!(pushed.batches().filter(|&b| b == 4).count(), 3500);
        assert_eq!(pushed.into_sorted().into_buckets().concat(), expected);
    }

    #[test]
    fn a_bucket_grows_past_its_room() {
        let mut keys = NewKeys::with_capacity(256);
        keys.extend((0..100u64).map(|d| entry(7 << 120 | u128::from(d % 10), d)));
        let buckets = keys.into_sorted().into_buckets();
        assert_eq!(buckets.len(), 1);
        assert_eq!(buckets[0].len(), 100);
        assert!(buckets[0].windows(2).all(|w| order(&w[0]) <= order(&w[1])));
    }

    /// Keys from a small generator, with `top` as the top byte when given.
    fn keys(n: u64, seed: u128, top: Option<u128>) -> Vec<Entry> {
        let mut x = seed;
        (0..n)
            .map(|i| {
                x = x.wrapping_mul(0x2360_ed05_1fc6_5da4_4385_df64_9fcc_f645).wrapping_add(0x5851_f42d_4c95_7f2d);
                let key = x ^ (x >> 61);
                let key = top.map_or(key, |t| t << 120 | key >> 8);
                Entry { key, doc: u64::from(i % 7 == 0) * (n - i), batch: (i % 3) as u32 }
            })
            .collect()
    }

    #[test]
    fn a_bucket_sorted_by_counting_equals_the_comparison_sort() {
        // Sizes around the small bound and the digit widths (2^6..2^12 and
        // past them), a few keys repeated with other documents and batches.
        for (n, seed) in [(65, 1), (127, 2), (128, 3), (1000, 4), (4095, 5), (4096, 6), (9000, 7), (40_000, 8)] {
            let mut entries = keys(n, seed, Some(0x5a));
            for i in (0..entries.len()).step_by(13).skip(1) {
                entries[i].key = entries[i - 1].key;
            }
            let mut expected = entries.clone();
            expected.sort_unstable_by_key(order);
            let mut scratch = Scratch::default();
            sort_bucket(&mut entries, &mut scratch);
            assert_eq!(entries, expected, "{n} entries");
            // The scratch, reused for another bucket, sorts it as well.
            let mut other = keys(n / 2 + 70, seed + 100, Some(0x5a));
            let mut expected = other.clone();
            expected.sort_unstable_by_key(order);
            sort_bucket(&mut other, &mut scratch);
            assert_eq!(other, expected, "{n} entries, second bucket");
        }
    }

    #[test]
    fn a_bucket_of_keys_crowded_into_one_group_is_sorted() {
        // Every key shares its top 20 bits: one group holds them all.
        let mut entries: Vec<Entry> =
            keys(3000, 9, None).into_iter().map(|e| Entry { key: 0xABCDE << 108 | e.key >> 20, ..e }).collect();
        let mut expected = entries.clone();
        expected.sort_unstable_by_key(order);
        sort_bucket(&mut entries, &mut Scratch::default());
        assert_eq!(entries, expected);
    }

    #[test]
    fn many_keys_sort_into_buckets_in_key_order() {
        let all = keys(300_000, 10, None);
        let mut expected = all.clone();
        expected.sort_unstable_by_key(order);
        let new: NewKeys = all.into_iter().collect();
        let flat: Vec<Entry> = new.into_sorted().into_buckets().into_iter().flatten().collect();
        assert_eq!(flat, expected);
    }

    #[test]
    fn empty_keys_have_no_bucket() {
        let keys: NewKeys = std::iter::empty().collect();
        assert!(keys.is_empty());
        assert!(keys.into_sorted().into_buckets().is_empty());
    }
}
