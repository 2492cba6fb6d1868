//! Cache-line prefetch hints: the processor is asked for a line a later
//! access will need, so that its miss overlaps other work. Hints only: they
//! never fault, whatever the address, and do nothing off x86-64. Used where
//! the next accesses are known but scattered (the seen-set's spots, the
//! index's filter and segment lines, the buckets of a run's new keys).

/// Asks for the cache line holding `r`, to be read.
#[inline(always)]
pub(crate) fn read<T>(r: &T) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        // SAFETY: a prefetch is only a hint and never faults.
        unsafe { _mm_prefetch::<_MM_HINT_T0>(std::ptr::from_ref(r).cast::<i8>()) };
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = r;
}

/// Asks for the cache line at `p`, to be written (`prefetchw`: the line
/// comes in owned, so the store that follows does not wait for it).
#[inline(always)]
pub(crate) fn write<T>(p: *const T) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_MM_HINT_ET0, _mm_prefetch};
        // SAFETY: a prefetch is only a hint and never faults, whatever the address.
        unsafe { _mm_prefetch::<_MM_HINT_ET0>(p.cast::<i8>()) };
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}
