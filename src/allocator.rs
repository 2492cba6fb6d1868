//! The allocator the `newsdedup` binary runs on: mimalloc (its 2.x line),
//! called without its aligned entry points where the alignment asked for is
//! one every mimalloc block has anyway.
//!
//! Why mimalloc: a run allocates and frees a few buffers per record on
//! every thread, and glibc's free of such blocks took ~14% of the JSONL
//! path's time (benches/JSONL.md: the issue 18 profile). Its 2.x line
//! rather than 3.x: on the bench JSONL at `-j2`, peak RSS 107-118 MB
//! instead of 128-154 MB, fewer page faults, 1.3% fewer instructions, the
//! same time (benches/HISTORY.md, issue 18, eleventh session).
//!
//! Why not the `mimalloc` crate's `MiMalloc`: it asks for every block through
//! `mi_malloc_aligned`, whose fast path covers blocks up to 1 KiB only; a
//! larger block (a record's line, its decoded and normalised text, its
//! output: several per record) went through `mi_heap_malloc_zero_aligned_at_generic`
//! before reaching the `mi_malloc` path. [`Mimalloc`] calls `mi_malloc`
//! when the alignment is at most 16 bytes and at most the size, which is
//! the case mimalloc itself hands over to `mi_malloc` (its blocks are
//! aligned to their size up to 16: `mi_malloc_is_naturally_aligned`):
//! 1.0% fewer instructions outside SHA-256 on the bench's JSONL
//! (benches/JSONL.md, eleventh pass).

use std::alloc::{GlobalAlloc, Layout};
use std::ffi::{c_int, c_long};

use libmimalloc_sys as mi;

/// `mi_option_purge_delay`, the 16th option of mimalloc 2.x's
/// `mi_option_t` (mimalloc.h; `libmimalloc-sys` binds no constant for it).
/// The test checks the linked mimalloc is a 2.x and the option and its
/// neighbours have their defaults.
const PURGE_DELAY: c_int = 15;

unsafe extern "C" {
    #[cfg(test)]
    fn mi_option_get(option: c_int) -> c_long;
    fn mi_option_set(option: c_int, value: c_long);
}

/// The environment variables mimalloc takes the purge delay from (its
/// current name and the one it had; mimalloc reads them in any case).
const PURGE_DELAY_VARS: [&str; 2] = ["MIMALLOC_PURGE_DELAY", "MIMALLOC_RESET_DELAY"];

/// Whether the environment sets the purge delay.
fn purge_delay_set_by_environment() -> bool {
    std::env::vars_os().any(|(name, _)| PURGE_DELAY_VARS.iter().any(|v| name.eq_ignore_ascii_case(v)))
}

/// Sets mimalloc's options for a run; called first thing by `main`, before
/// any other thread runs (mimalloc's threads read options unsynchronised):
/// memory a run frees is kept for its next allocations instead of being
/// given back to the kernel 10 ms later (100 ms for its arenas):
/// `purge_delay` -1 instead of 10, unless `MIMALLOC_PURGE_DELAY` (or the
/// older `MIMALLOC_RESET_DELAY`) says otherwise.
///
/// Why: a run frees each window's or batch's buffers and makes the next
/// one's of the same sizes. Given back (`MADV_DONTNEED`), their pages were
/// faulted in and zeroed again at the next use, more often the more
/// threads: the bench tree at `-j2` took 47,000-61,000 page faults against
/// 14,000-16,000 at `-j1`, and `clear_page_erms` took 1,049 more samples
/// (0.5 s of CPU) at `-j2` than at `-j1`; kept, 1,400-2,400 faults at
/// either (issue 18). The price is memory held rather than returned: the
/// tree run's peak RSS grew from 228-233 MB to 245-267 MB (the JSONL
/// run's stayed at 84-87 MiB); it is all the process's until it exits.
pub fn tune() {
    if !purge_delay_set_by_environment() {
        // SAFETY: sets an option, before other threads read it (see above).
        unsafe { mi_option_set(PURGE_DELAY, -1) };
    }
}

/// mimalloc as the global allocator (see the module docs).
#[derive(Clone, Copy, Debug, Default)]
pub struct Mimalloc;

/// Whether a block of `size` bytes from `mi_malloc` is aligned to `align`.
#[inline]
fn naturally_aligned(size: usize, align: usize) -> bool {
    align <= 16 && align <= size
}

// SAFETY: every method hands the request to mimalloc, which returns null on
// failure and blocks of at least the size asked for, aligned as asked
// (`mi_*_aligned`, or the plain call where its blocks are aligned so).
unsafe impl GlobalAlloc for Mimalloc {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: plain calls into mimalloc.
        unsafe {
            if naturally_aligned(layout.size(), layout.align()) {
                mi::mi_malloc(layout.size()).cast()
            } else {
                mi::mi_malloc_aligned(layout.size(), layout.align()).cast()
            }
        }
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: plain calls into mimalloc.
        unsafe {
            if naturally_aligned(layout.size(), layout.align()) {
                mi::mi_zalloc(layout.size()).cast()
            } else {
                mi::mi_zalloc_aligned(layout.size(), layout.align()).cast()
            }
        }
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, _layout: Layout) {
        // SAFETY: `ptr` came from this allocator (the caller's contract).
        unsafe { mi::mi_free(ptr.cast()) }
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: `ptr` came from this allocator with `layout` (the caller's
        // contract); the new block keeps the alignment.
        unsafe {
            if naturally_aligned(new_size, layout.align()) {
                mi::mi_realloc(ptr.cast(), new_size).cast()
            } else {
                mi::mi_realloc_aligned(ptr.cast(), new_size, layout.align()).cast()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tune_turns_purging_off_unless_the_environment_sets_it() {
        unsafe extern "C" {
            fn mi_version() -> c_int;
        }
        // SAFETY: reads and sets options (no test reads this one).
        unsafe {
            // A mimalloc 2.x (2.3.2 is 20302), whose option list
            // `PURGE_DELAY` is taken from.
            assert!((20_000..30_000).contains(&mi_version()), "mimalloc {}", mi_version());
            if purge_delay_set_by_environment() {
                let before = mi_option_get(PURGE_DELAY);
                tune();
                assert_eq!(mi_option_get(PURGE_DELAY), before);
            } else {
                // The defaults of the option and of its neighbours
                // (eager_commit_delay 1, use_numa_nodes 0): the constant
                // names the right one.
                assert_eq!(
                    [mi_option_get(PURGE_DELAY - 1), mi_option_get(PURGE_DELAY), mi_option_get(PURGE_DELAY + 1)],
                    [1, 10, 0]
                );
                tune();
                assert_eq!(mi_option_get(PURGE_DELAY), -1);
                mi_option_set(PURGE_DELAY, 10);
            }
        }
    }

    #[test]
    fn blocks_are_aligned_as_asked_and_keep_their_bytes_through_realloc() {
        let a = Mimalloc;
        for align in [1, 2, 4, 8, 16, 32, 64, 4096] {
            for size in [1, 3, 8, 15, 16, 17, 24, 100, 1000, 1025, 5000, 70_000, 3 << 20] {
                let layout = Layout::from_size_align(size, align).unwrap();
                // SAFETY: a non-zero size; every block is freed with its layout.
                unsafe {
                    let p = a.alloc(layout);
                    assert!(!p.is_null() && (p as usize).is_multiple_of(align), "alloc {size} aligned {align}");
                    std::ptr::write_bytes(p, 0xA5, size);
                    let grown = size * 3 + 7;
                    let q = a.realloc(p, layout, grown);
                    assert!(
                        !q.is_null() && (q as usize).is_multiple_of(align),
                        "realloc {size} -> {grown} aligned {align}"
                    );
                    assert!(std::slice::from_raw_parts(q, size).iter().all(|&b| b == 0xA5), "bytes kept");
                    a.dealloc(q, Layout::from_size_align(grown, align).unwrap());
                    let z = a.alloc_zeroed(layout);
                    assert!(!z.is_null() && (z as usize).is_multiple_of(align), "alloc_zeroed {size} aligned {align}");
                    assert!(std::slice::from_raw_parts(z, size).iter().all(|&b| b == 0), "zeroed");
                    a.dealloc(z, layout);
                }
            }
        }
    }
}
