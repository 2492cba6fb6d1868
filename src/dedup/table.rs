//! The seen-set's table: keys are the 128-bit digest prefixes of
//! [`crate::key::Digest`], already uniform, so the first 64 bits place an
//! entry without re-hashing.
//!
//! Open addressing with linear probing, in one array of 24-byte entries
//! (key and value side by side). A key's home spot is its first 64 bits
//! scaled to the array, `key.0 × spots / 2⁶⁴` (its *top* bits when the
//! array has a power-of-two size); any size works, so that
//! [`SlotTable::reserve`] sizes an array for the keys expected rather than
//! to the next power of two. So:
//! * a lookup reads one spot of the array (a cache line, rarely two), and
//!   [`SlotTable::prefetch`] can ask for it ahead of time: the ordered
//!   step prefetches the next document's keys while it decides this one, and the lookups then rarely wait for memory. (`std`'s `HashMap`
//!   reads a control group and then the entry, two dependent misses, and
//!   has no prefetch.)
//! * growing (at 3/4 full, to twice the size) places each entry at about
//!   twice its old position, walking the array in order (forward into a
//!   new array, backward within one grown in place): the writes move
//!   through the array instead of landing at random.
//!
//! The all-zero key marks an empty spot; the one key that is all zero
//! (a digest prefix of 2⁻¹²⁸ odds) is kept beside the array. An empty
//! spot is all zero bytes, so a large array is an anonymous mapping that a
//! doubling grows in place ([`Spots`]), its entries placed again within it
//! ([`SlotTable::place_again_in_place`]).

use super::spots::{MAPPED_MIN_BYTES, Spots, Zeroed};

mod sorted;

/// A key: the first and second 64 bits of a digest prefix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Slot(pub(crate) u64, pub(crate) u64);

impl Slot {
    /// The key of a 128-bit digest prefix.
    pub(crate) fn of(prefix: u128) -> Slot {
        Slot((prefix >> 64) as u64, prefix as u64)
    }

    fn is_empty(self) -> bool {
        self.0 == 0 && self.1 == 0
    }

    /// The 128-bit digest prefix this key was made of ([`Slot::of`]; tests).
    #[cfg(test)]
    pub(crate) fn prefix(self) -> u128 {
        (u128::from(self.0) << 64) | u128::from(self.1)
    }
}

/// A spot: 24 bytes, 8-aligned, for the values the tables hold (`u32`,
/// [`super::Occurrence`]) on every target, the size and alignment of a
/// [`crate::index::KeyDoc`] ([`SlotTable::into_key_docs`]).
#[derive(Clone, Copy)]
#[repr(C, align(8))]
struct Entry<V> {
    key: Slot,
    value: V,
}

// SAFETY: two `u64` and a `V` that is valid as any bytes (padding takes
// any bytes).
unsafe impl<V: Zeroed> Zeroed for Entry<V> {}

impl<V: Zeroed> Entry<V> {
    /// An empty spot: all zero.
    fn empty() -> Entry<V> {
        // SAFETY: `Entry<V>: Zeroed`.
        unsafe { std::mem::zeroed() }
    }
}

/// A map from [`Slot`] to a small `Copy` value; see the module docs.
pub(crate) struct SlotTable<V: Zeroed> {
    entries: Spots<Entry<V>>,
    /// Entries in `entries` (the zero key not counted).
    len: usize,
    /// The value of the all-zero key.
    zero: Option<V>,
    /// Arrays of this many bytes or more are mappings ([`MAPPED_MIN_BYTES`];
    /// tests take either path).
    map_from: usize,
}

impl<V: Zeroed> Default for SlotTable<V> {
    fn default() -> Self {
        SlotTable { entries: Spots::default(), len: 0, zero: None, map_from: MAPPED_MIN_BYTES }
    }
}

/// The smallest array a table allocates.
const MIN_SPOTS: usize = 64;

impl<V: Zeroed> SlotTable<V> {
    /// Number of keys held.
    pub(crate) fn len(&self) -> usize {
        self.len + usize::from(self.zero.is_some())
    }

    /// Forgets every key. The array is kept, unless it is far larger than
    /// the keys it held (one large document, then small ones under
    /// `--scope document`, which clears once per document): then it is
    /// dropped, so that emptying a table costs about what filling it did.
    pub(crate) fn clear(&mut self) {
        if self.entries.len() > 8 * self.len.max(MIN_SPOTS) {
            *self = SlotTable { map_from: self.map_from, ..SlotTable::default() };
        } else if self.len > 0 {
            self.entries.fill(Entry::empty());
            self.len = 0;
        }
        self.zero = None;
    }

    /// `key.0 × spots / 2⁶⁴`: below `spots`, and in key order (so that a
    /// doubling moves every entry to about twice its old spot).
    #[inline]
    fn home(&self, key: Slot) -> usize {
        ((u128::from(key.0) * self.entries.len() as u128) >> 64) as usize
    }

    /// The spot holding `key`, or the empty spot where it would go.
    fn find(&self, key: Slot) -> (usize, bool) {
        let spots = self.entries.len();
        let mut i = self.home(key);
        loop {
            let e = self.entries[i].key;
            if e == key {
                return (i, true);
            }
            if e.is_empty() {
                return (i, false);
            }
            i += 1;
            if i == spots {
                i = 0;
            }
        }
    }

    /// The value of `key`.
    #[inline]
    pub(crate) fn get(&self, key: Slot) -> Option<V> {
        if key.is_empty() {
            return self.zero;
        }
        if self.entries.is_empty() {
            return None;
        }
        match self.find(key) {
            (i, true) => Some(self.entries[i].value),
            _ => None,
        }
    }

    /// True when `key` is held.
    pub(crate) fn contains_key(&self, key: Slot) -> bool {
        self.get(key).is_some()
    }

    /// The value of `key`, which becomes `value` if `key` was not held.
    #[inline]
    pub(crate) fn get_or_insert(&mut self, key: Slot, value: V) -> V {
        if key.is_empty() {
            return *self.zero.get_or_insert(value);
        }
        self.make_room();
        match self.find(key) {
            (i, true) => self.entries[i].value,
            (i, false) => {
                self.entries[i] = Entry { key, value };
                self.len += 1;
                value
            }
        }
    }

    /// Sets the value of `key`.
    pub(crate) fn insert(&mut self, key: Slot, value: V) {
        if key.is_empty() {
            self.zero = Some(value);
            return;
        }
        self.make_room();
        let (i, held) = self.find(key);
        self.entries[i] = Entry { key, value };
        self.len += usize::from(!held);
    }

    /// Asks the processor to bring in the cache lines a lookup of `key`
    /// reads: where it starts and the line after (a run of taken spots
    /// often crosses into it, and a key not held is only known to be absent
    /// at the first empty spot).
    #[inline]
    pub(crate) fn prefetch(&self, key: Slot) {
        let i = self.home(key);
        if let Some(e) = self.entries.get(i) {
            crate::prefetch::read(e);
        }
        if let Some(e) = self.entries.get(i + 3) {
            crate::prefetch::read(e);
        }
    }

    /// Every key held, with its value: the array's spots in order (about
    /// key order, as a key's home is its first 64 bits scaled to the array),
    /// then the all-zero key (tests).
    #[cfg(test)]
    pub(crate) fn iter(&self) -> impl Iterator<Item = (Slot, V)> + '_ {
        let held = self.entries.iter().filter(|e| !e.key.is_empty()).map(|e| (e.key, e.value));
        held.chain(self.zero.map(|v| (Slot(0, 0), v)))
    }

    /// Spots in the array (tests).
    #[cfg(test)]
    pub(crate) fn spots(&self) -> usize {
        self.entries.len()
    }

    /// An empty table whose arrays are mappings from `bytes` on (tests:
    /// 0 for always, `usize::MAX` for never).
    #[cfg(test)]
    fn mapped_from(bytes: usize) -> SlotTable<V> {
        SlotTable { map_from: bytes, ..SlotTable::default() }
    }

    /// Sizes an empty array for `keys` keys (nothing once a key is held, or
    /// when the array is that large already), so that filling it to `keys`
    /// never doubles it: the fewest spots, in multiples of [`MIN_SPOTS`],
    /// that keep it at most 3/4 full then. On a rayon pool every page of
    /// the array is touched now, as a doubling would touch them.
    ///
    /// Not rounded up to a power of two: a `--index` day of 1.1M keys
    /// reserved 2^21 spots (50 MB, a table 52% full at the end) where 1.47M
    /// spots (35 MB) hold them, and on a virtual machine whose host backs
    /// a page only once it is touched, every fresh megabyte costs the run
    /// ~2.6 ms of CPU (issue 18, thirty-first session).
    ///
    /// The spots are written (or a mapping's pages touched) in parallel on
    /// the caller's rayon pool ([`Spots::zeroed`]): this happens before a run's first decision (its
    /// seen-set sized from the persistent index's last runs, ~48 MB for a
    /// day of 1.1M keys), where the kernel's zeroing of the fresh pages kept
    /// one thread busy ~20 ms and the other idle (issue 18, twenty-third
    /// session).
    pub(crate) fn reserve(&mut self, keys: usize) {
        let spots = keys.saturating_mul(4).div_ceil(3).max(MIN_SPOTS).checked_next_multiple_of(MIN_SPOTS);
        let Some(spots) = spots else { return };
        if self.len == 0 && spots > self.entries.len() {
            self.entries = Spots::zeroed(spots, self.map_from);
        }
    }

    /// Doubles the array, placing every entry again, when one more key
    /// would fill it past 3/4.
    fn make_room(&mut self) {
        if 4 * (self.len + 1) <= 3 * self.entries.len() {
            return;
        }
        let old_spots = self.entries.len();
        let spots = (2 * old_spots).max(MIN_SPOTS);
        if old_spots > 0 && self.entries.grow_in_place(spots) {
            self.place_again_in_place(old_spots);
            return;
        }
        let old = std::mem::replace(&mut self.entries, Spots::zeroed(spots, self.map_from));
        // Each entry goes at the first empty spot from its home (the keys
        // are distinct); taken in the old array's order, these writes move
        // forward through the new one.
        for e in old.iter().filter(|e| !e.key.is_empty()) {
            let (i, _) = self.find(e.key);
            self.entries[i] = *e;
        }
    }

    /// Places every entry again after the array grew in place from
    /// `old_spots` spots (the entries still where the smaller array had
    /// them, the spots after them empty).
    ///
    /// A key's new home is about twice its old one (`home` scales the key
    /// to the array), so most entries move towards the end. The old spots
    /// are taken from the last to the first: each entry is lifted out and
    /// put at the first empty spot from its new home, provided that home is
    /// at or after the spot it was lifted from and the search does not run
    /// past the end. Then every spot it looks at holds an entry already
    /// placed for good (the spots before it, not yet visited, are left
    /// alone), and no spot between its home and where it lands is ever
    /// emptied afterwards (only spots before it are), so it stays findable.
    /// The few others (keys whose home lies before their old spot: runs
    /// near the start of the array, or wrapped around its end) are set
    /// aside and inserted once every entry has been placed. The table holds
    /// the same keys; a key may sit in another spot of its run than a table
    /// made twice the size and filled afresh would give it.
    fn place_again_in_place(&mut self, old_spots: usize) {
        let spots = self.entries.len();
        let mut aside = Vec::new();
        for from in (0..old_spots).rev() {
            let e = self.entries[from];
            if e.key.is_empty() {
                continue;
            }
            self.entries[from] = Entry::empty();
            let mut i = self.home(e.key);
            if i < from {
                aside.push(e);
                continue;
            }
            loop {
                if i == spots {
                    aside.push(e);
                    break;
                }
                if self.entries[i].key.is_empty() {
                    self.entries[i] = e;
                    break;
                }
                i += 1;
            }
        }
        for e in aside {
            let (i, _) = self.find(e.key);
            self.entries[i] = e;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use proptest::prelude::*;

    use super::*;

    /// Tables on both paths: arrays always mapped (grown in place, on
    /// Linux) and never (grown into a new `Vec`).
    fn both() -> [SlotTable<u32>; 2] {
        [SlotTable::mapped_from(0), SlotTable::mapped_from(usize::MAX)]
    }

    #[test]
    fn holds_what_it_was_given_through_growth() {
        for mut t in both() {
            let key = |n: u64| Slot(n.wrapping_mul(0x9E37_79B9_7F4A_7C15), n);
            for n in 0..10_000u64 {
                assert_eq!(t.get_or_insert(key(n), n as u32), n as u32);
            }
            assert_eq!(t.len(), 10_000);
            for n in 0..10_000u64 {
                assert_eq!(t.get_or_insert(key(n), 7), n as u32, "first value wins");
                assert_eq!(t.get(key(n)), Some(n as u32));
            }
            assert_eq!(t.get(key(10_000)), None);
            let mut all: Vec<(Slot, u32)> = t.iter().collect();
            all.sort_by_key(|&(_, v)| v);
            assert_eq!(all, (0..10_000u64).map(|n| (key(n), n as u32)).collect::<Vec<_>>(), "iter: each key once");
            assert!(4 * t.len() <= 3 * t.entries.len());
            assert_eq!(t.entries.is_mapped(), cfg!(target_os = "linux") && t.map_from == 0);
        }
    }

    #[test]
    fn a_reserved_table_holds_that_many_keys_without_growing() {
        let key = |n: u64| Slot(n.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1, n);
        for (keys, mut t) in [0, 1, 48, 49, 3_000, 12_288, 12_289].into_iter().flat_map(|k| both().map(|t| (k, t))) {
            t.reserve(keys);
            let spots = t.entries.len();
            assert!(4 * keys <= 3 * spots, "{keys} keys fit in {spots} spots");
            assert!(spots.is_multiple_of(MIN_SPOTS), "{spots} spots: a multiple of {MIN_SPOTS}");
            assert!(
                spots == MIN_SPOTS || 4 * keys > 3 * (spots - MIN_SPOTS),
                "{spots} spots: the fewest that fit {keys}"
            );
            for n in 0..keys as u64 {
                assert_eq!(t.get_or_insert(key(n), n as u32), n as u32);
            }
            assert_eq!(t.entries.len(), spots, "{keys} keys: no growth");
            for n in 0..keys as u64 {
                assert_eq!(t.get(key(n)), Some(n as u32));
            }
            // One more key than reserved may grow it; all keys stay.
            t.get_or_insert(key(keys as u64), 0);
            assert_eq!(t.len(), keys + 1);
            assert!((0..=keys as u64).all(|n| t.contains_key(key(n))));
        }
    }

    #[test]
    fn iter_gives_the_zero_key_too_and_a_slot_its_prefix_back() {
        let mut t = SlotTable::<u32>::default();
        assert_eq!(t.iter().count(), 0);
        t.insert(Slot::of(0), 1);
        t.insert(Slot::of(u128::MAX), 2);
        t.insert(Slot::of(7 << 64 | 9), 3);
        let mut all: Vec<(u128, u32)> = t.iter().map(|(k, v)| (k.prefix(), v)).collect();
        all.sort();
        assert_eq!(all, [(0, 1), (7 << 64 | 9, 3), (u128::MAX, 2)]);
    }

    #[test]
    fn reserving_a_table_that_holds_keys_changes_nothing() {
        let mut t = SlotTable::<u32>::default();
        t.insert(Slot(5, 5), 5);
        let spots = t.entries.len();
        t.reserve(1 << 20);
        assert_eq!(t.entries.len(), spots);
        assert_eq!(t.get(Slot(5, 5)), Some(5));
        let mut big = SlotTable::<u32>::default();
        big.reserve(10_000);
        let spots = big.entries.len();
        big.reserve(100);
        assert_eq!(big.entries.len(), spots, "never shrunk");
    }

    #[test]
    fn a_table_grown_on_a_pool_is_the_table_grown_alone() {
        // 200,000 keys double the array to 131,072, 262,144 and 524,288
        // spots: on a pool, a new array is written (a mapping grown in
        // place has its new pages touched) in chunks by its two threads.
        // The table must be the same, spot for spot, as one grown outside
        // any pool, on either path.
        let key = |n: u64| Slot(n.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1, n);
        let pool = rayon::ThreadPoolBuilder::new().num_threads(2).build().expect("a pool");
        for map_from in [0, usize::MAX] {
            let fill = || {
                let mut t = SlotTable::<u32>::mapped_from(map_from);
                for n in 0..200_000u64 {
                    t.insert(key(n), n as u32);
                }
                t
            };
            let spots = |t: &SlotTable<u32>| t.entries.iter().map(|e| (e.key, e.value)).collect::<Vec<_>>();
            let alone = fill();
            let pooled = pool.install(fill);
            assert_eq!(alone.entries.len(), 1 << 19);
            assert!(spots(&alone) == spots(&pooled), "the same entries in the same spots");
            assert!((0..200_000u64).all(|n| pooled.get(key(n)) == Some(n as u32)));
            assert_eq!(pooled.get(key(200_000)), None);
            let mut reserved = SlotTable::<u32>::mapped_from(map_from);
            pool.install(|| reserved.reserve(300_000));
            assert_eq!(reserved.entries.len(), 400_000);
            assert!(reserved.entries.iter().all(|e| e.key.is_empty()) && reserved.len() == 0);
        }
    }

    #[test]
    fn a_table_of_any_size_finds_its_keys_through_growth_and_wrap() {
        // Reserved to sizes that are no power of two, filled past them (so
        // that each doubles to another such size), with keys crowded at
        // both ends as well as spread: every key found, none invented.
        let spread = |n: u64| Slot(n.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1, n);
        let high = |n: u64| Slot(u64::MAX - n, n);
        let low = |n: u64| Slot(n, n);
        for (reserve, mut t) in [0, 100, 1_000, 5_000].into_iter().flat_map(|r| both().map(|t| (r, t))) {
            t.reserve(reserve);
            assert!(reserve < 100 || !t.entries.len().is_power_of_two(), "{} spots", t.entries.len());
            for n in 0..3_000u64 {
                for (k, key) in [spread(n), high(n), low(n + 1)].into_iter().enumerate() {
                    assert_eq!(t.get_or_insert(key, (3 * n) as u32 + k as u32), (3 * n) as u32 + k as u32);
                }
            }
            assert_eq!(t.len(), 9_000);
            assert!(4 * t.len() <= 3 * t.entries.len());
            for n in 0..3_000u64 {
                for (k, key) in [spread(n), high(n), low(n + 1)].into_iter().enumerate() {
                    assert_eq!(t.get(key), Some((3 * n) as u32 + k as u32), "reserve {reserve}, key {n}/{k}");
                }
            }
            assert_eq!((t.get(spread(3_000)), t.get(high(3_000)), t.get(low(3_001))), (None, None, None));
        }
    }

    #[test]
    fn keys_crowded_at_one_end_wrap_around() {
        // Every key's home is the last spot: the run wraps to the start.
        for mut t in both() {
            for n in 1..=500u64 {
                t.insert(Slot(u64::MAX, n), n as u32);
            }
            for n in 1..=500u64 {
                assert_eq!(t.get(Slot(u64::MAX, n)), Some(n as u32));
            }
            assert_eq!(t.get(Slot(u64::MAX, 501)), None);
            assert_eq!(t.len(), 500);
        }
    }

    #[test]
    fn the_zero_key_and_clear() {
        let mut t = SlotTable::<u32>::default();
        assert_eq!(t.get(Slot(0, 0)), None);
        assert_eq!(t.get_or_insert(Slot(0, 0), 3), 3);
        assert_eq!(t.get_or_insert(Slot(0, 0), 4), 3);
        t.insert(Slot(0, 1), 5);
        assert_eq!((t.len(), t.get(Slot(0, 0)), t.get(Slot(0, 1))), (2, Some(3), Some(5)));
        t.insert(Slot(0, 1), 6);
        assert_eq!((t.len(), t.get(Slot(0, 1))), (2, Some(6)));
        t.clear();
        assert_eq!((t.len(), t.get(Slot(0, 0)), t.get(Slot(0, 1))), (0, None, None));
        assert!(!t.contains_key(Slot(0, 1)));
    }

    #[test]
    fn clearing_keeps_an_array_its_keys_filled_and_drops_an_oversized_one() {
        let key = |n: u64| Slot(n.wrapping_mul(0x9E37_79B9_7F4A_7C15), n);
        let mut t = SlotTable::<u32>::default();
        (1..=10_000).for_each(|n| t.insert(key(n), 1));
        let spots = t.entries.len();
        t.clear();
        assert_eq!((t.len(), t.entries.len(), t.get(key(5))), (0, spots, None));
        t.insert(key(3), 2);
        t.clear();
        assert!(t.entries.len() <= 8 * MIN_SPOTS, "{} spots kept for one key", t.entries.len());
        assert_eq!((t.len(), t.get(key(3))), (0, None));
        t.insert(key(4), 5);
        assert_eq!(t.get(key(4)), Some(5));
    }

    proptest! {
        /// Any sequence of operations, against `HashMap`; keys from a small
        /// set of home spots so that runs collide and wrap.
        #[test]
        fn agrees_with_hashmap(
            ops in proptest::collection::vec((0u8..3, 0u64..8, 0u64..64, any::<u32>()), 0..600),
            reserve in prop_oneof![Just(0usize), 1usize..400],
            mapped in any::<bool>(),
        ) {
            let mut t = SlotTable::<u32>::mapped_from(if mapped { 0 } else { usize::MAX });
            t.reserve(reserve);
            let mut m = HashMap::new();
            for (op, hi, lo, v) in ops {
                let key = Slot((hi << 61) | ((hi & 1) * 3), lo);
                match op {
                    0 => prop_assert_eq!(t.get_or_insert(key, v), *m.entry((key.0, key.1)).or_insert(v)),
                    1 => { t.insert(key, v); m.insert((key.0, key.1), v); }
                    _ => prop_assert_eq!(t.get(key), m.get(&(key.0, key.1)).copied()),
                }
                prop_assert_eq!(t.len(), m.len());
            }
        }
    }
}
