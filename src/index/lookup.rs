//! Batched lookups ([`super::Index::get_many`]) and [`IndexView`]: the
//! segments of an index held apart from it, so that lookups can run on
//! other threads while the index itself is borrowed mutably (a run decides
//! one batch of documents while the next one is looked up).

use std::sync::Arc;

use super::global::GlobalFilter;
use super::segment::{FilterMask, Segment, prefetch};

/// The segments of an [`super::Index`] as they were when the view was taken
/// ([`super::Index::view`]). Only a commit, a compaction or a merge changes
/// an index's segments (each needs the index mutably); a view taken before
/// one keeps answering from the segments it holds, which stay mapped while
/// it lives. Cloning a view is cheap (one reference count per segment).
#[derive(Clone)]
pub struct IndexView {
    segs: Vec<Arc<Segment>>,
    filter: Option<Arc<GlobalFilter>>,
}

impl IndexView {
    pub(super) fn of(segs: &[Arc<Segment>], filter: Option<&Arc<GlobalFilter>>) -> IndexView {
        IndexView { segs: segs.to_vec(), filter: filter.cloned() }
    }

    /// [`super::Index::get_many`] on the segments of the view.
    pub fn get_many(&self, keys: &[u128], out: &mut [Option<(u64, u32)>]) {
        get_many(&self.segs, self.filter.as_deref(), keys, out);
    }
}

/// `out[i]` = the location of `keys[i]` in `segs` (oldest first, the first
/// segment holding it), for `i < min(len)`; software prefetching across
/// groups of keys so cache misses overlap. No allocation. With the
/// index-wide `filter`, a key it rejects (most absent keys) costs that one
/// line and no segment is read for it.
pub(super) fn get_many(
    segs: &[Arc<Segment>],
    filter: Option<&GlobalFilter>,
    keys: &[u128],
    out: &mut [Option<(u64, u32)>],
) {
    // The index-wide filter's lines of 64 keys at a time (one round of
    // misses), then the keys it admits (present keys, ~0.3% of absent
    // ones) through the segments as before, 16 at a time. (Rounds of 16
    // cost present keys an extra round of misses per 16: 131 -> 204 ns per
    // hit in `index_bench`.)
    const G: usize = 64;
    let Some(filter) = filter else { return per_segment(segs, keys, out) };
    let mut admitted = [0u128; G];
    let mut found = [None; G];
    let mut at = [0usize; G];
    for (kc, oc) in keys.chunks(G).zip(out.chunks_mut(G)) {
        for &k in kc {
            filter.prefetch(k);
        }
        let mut n = 0;
        for (i, &k) in kc.iter().enumerate() {
            if filter.admits(k, &FilterMask::of(k)) {
                admitted[n] = k;
                at[n] = i;
                n += 1;
            }
        }
        oc.fill(None);
        if n > 0 {
            per_segment(segs, &admitted[..n], &mut found[..n]);
            for (&i, f) in at[..n].iter().zip(&found[..n]) {
                if let Some(o) = oc.get_mut(i) {
                    *o = *f;
                }
            }
        }
    }
}

/// [`get_many`] through the segments' own filters (an index of format 3,
/// and the keys the index-wide filter admits).
fn per_segment(segs: &[Arc<Segment>], keys: &[u128], out: &mut [Option<(u64, u32)>]) {
    const G: usize = 16;
    // Segments whose filter admits a key, as bits (only the first 64
    // segments are tracked; any beyond are always probed).
    let admitting = |k: u128, mask: &FilterMask| {
        segs.iter()
            .enumerate()
            .fold(0u64, |bits, (si, s)| if si < 64 && s.admits(k, mask) { bits | 1 << si } else { bits })
    };
    for (kc, oc) in keys.chunks(G).zip(out.chunks_mut(G)) {
        // Three stages, each overlapping the memory misses of 16 keys:
        // filter blocks; keys in the segments whose filter admits the
        // key; values of the keys found.
        for &k in kc {
            for s in segs {
                s.prefetch_filter(k);
            }
        }
        let mut admit = [0u64; G];
        for (a, &k) in admit.iter_mut().zip(kc) {
            *a = admitting(k, &FilterMask::of(k));
            for (si, s) in segs.iter().enumerate() {
                if si >= 64 || *a & 1 << si != 0 {
                    s.prefetch(k);
                }
            }
        }
        let mut loc = [(usize::MAX, 0usize); G];
        for ((l, &k), &a) in loc.iter_mut().zip(kc).zip(&admit) {
            for (si, s) in segs.iter().enumerate() {
                if (si >= 64 || a & 1 << si != 0)
                    && let Some(i) = s.locate(k)
                {
                    prefetch(&s.map, s.vals_off + 12 * i);
                    *l = (si, i);
                    break;
                }
            }
        }
        for (o, &(si, i)) in oc.iter_mut().zip(&loc) {
            *o = segs.get(si).and_then(|s| s.value(i));
        }
    }
}
