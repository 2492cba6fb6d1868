//! Batched lookups ([`super::Index::get_many`]) and [`IndexView`]: the
//! segments of an index held apart from it, so that lookups can run on
//! other threads while the index itself is borrowed mutably (a run decides
//! one batch of documents while the next one is looked up).

use std::sync::Arc;

#[cfg(target_arch = "x86_64")]
use super::bits::Wide;
use super::bits::{Bits, Words};
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
/// segment holding it), for `i < min(len)`; software prefetching ahead of
/// the keys so cache misses overlap. No allocation. With the index-wide
/// `filter`, a key it rejects (most absent keys) costs that one line and no
/// segment is read for it.
pub(super) fn get_many(
    segs: &[Arc<Segment>],
    filter: Option<&GlobalFilter>,
    keys: &[u128],
    out: &mut [Option<(u64, u32)>],
) {
    let Some(filter) = filter else { return per_segment(segs, keys, out) };
    #[cfg(target_arch = "x86_64")]
    if let Some(wide) = Wide::new() {
        // SAFETY: a `Wide` says the processor has AVX-512F.
        return unsafe { through_filter_wide(segs, filter, keys, out, wide) };
    }
    through_filter(segs, filter, keys, out, Words);
}

/// [`through_filter`] compiled for AVX-512F, each key's filter bits tested
/// in a register.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn through_filter_wide(
    segs: &[Arc<Segment>],
    filter: &GlobalFilter,
    keys: &[u128],
    out: &mut [Option<(u64, u32)>],
    wide: Wide,
) {
    through_filter(segs, filter, keys, out, wide);
}

/// [`get_many`] through the index-wide filter, its bits tested `way`.
#[inline(always)]
fn through_filter(
    segs: &[Arc<Segment>],
    filter: &GlobalFilter,
    keys: &[u128],
    out: &mut [Option<(u64, u32)>],
    way: impl Bits,
) {
    // The index-wide filter's line of each key is prefetched `AHEAD` keys
    // before the key is tested, so that a steady number of misses is in
    // flight (rounds of 64 prefetches and then 64 tests waited on the first
    // lines of each round: 17-21 against 13 ns per absent key of a 10M-key
    // index, 140 against 130 ns per present key; issue 18, thirty-eighth
    // session; the thirteenth pass had tried it and could not tell it from
    // the noise of whole runs). The keys it admits (present keys, ~0.3% of
    // absent ones) are gathered across the call and go through the segments
    // `G` at a time (where `per_segment` overlaps their misses 16 at a time).
    const AHEAD: usize = 24;
    const G: usize = 64;
    let n = keys.len().min(out.len());
    let (keys, out) = (&keys[..n], &mut out[..n]);
    for &k in keys.iter().take(AHEAD) {
        filter.prefetch(k);
    }
    let mut admitted = [0u128; G];
    let mut found = [None; G];
    let mut at = [0usize; G];
    let mut na = 0;
    let mut through_segments = |admitted: &[u128], at: &[usize], out: &mut [Option<(u64, u32)>]| {
        per_segment(segs, admitted, &mut found[..admitted.len()]);
        for (&i, f) in at.iter().zip(&found) {
            if let Some(o) = out.get_mut(i) {
                *o = *f;
            }
        }
    };
    for (i, &k) in keys.iter().enumerate() {
        if let Some(&next) = keys.get(i + AHEAD) {
            filter.prefetch(next);
        }
        out[i] = None;
        if filter.admits(k, way) {
            admitted[na] = k;
            at[na] = i;
            na += 1;
            if na == G {
                through_segments(&admitted, &at, out);
                na = 0;
            }
        }
    }
    if na > 0 {
        through_segments(&admitted[..na], &at[..na], out);
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
