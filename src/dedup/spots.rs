//! The seen-set table's array ([`super::table::SlotTable`]): all-zero spots
//! (the empty spot is all zero bytes), and, for a large array on Linux, an
//! anonymous mapping that grows in place.
//!
//! # Why a mapping
//! A table doubles by making an array twice the size and placing every
//! entry again. With a `Vec`, the old array and the new one are both held
//! while that happens: at its last doubling the seen-set of 100M keys
//! needs 3.2 GB and 6.4 GB at once, 1.5 times what it needs before and
//! after. A mapping is grown with `mremap`, which keeps its pages (moving
//! them if it must, never copying them) and adds zeroed ones; the entries
//! are then placed again within the same array ([`super::table`]), and the
//! peak is the new array alone. Every fresh page costs a run on a virtual
//! machine whose host backs a page when it is first touched (~2.6 ms of
//! CPU per MB on the bench machine, issue 18): the doublings of the
//! bench's JSONL run faulted in 50 MB of arrays where the last one is 25 MB.
//!
//! A mapping's pages are touched on the rayon pool running the caller when
//! it is made or grown, as [`Spots::zeroed`] writes a `Vec`'s, so that the
//! kernel's zeroing is shared by the pool's threads rather than left to
//! the ordered step that first writes them (the thirtieth session: ~55 ms
//! on one thread while the other waited). Small arrays, other systems and
//! a mapping the kernel refuses use a `Vec`, grown by the caller.

use std::ops::{Deref, DerefMut};

use rayon::prelude::*;

/// A type whose all-zero bytes, and indeed any bytes, are a valid value.
///
/// # Safety
/// Every field must accept any bytes (integers, structs of them): an
/// array of them may hold other data once its table is turned into its
/// keys ([`super::table::SlotTable::into_key_docs`]) and is still seen as
/// such.
pub(crate) unsafe trait Zeroed: Copy + Send + Sync {}

// SAFETY: an integer is valid as any bytes.
unsafe impl Zeroed for u32 {}
// SAFETY: two `u32`.
unsafe impl Zeroed for crate::dedup::Occurrence {}

/// Arrays of at least this many bytes are mapped (on Linux, where
/// mappings grow in place): what a table asks [`Spots::zeroed`] for, but
/// in tests that take either path whatever the size.
pub(crate) const MAPPED_MIN_BYTES: usize = 2 << 20;

/// Bytes of a `Vec` array written per task on a pool (a mapping is
/// touched by [`crate::threads::touch_pages`]).
const CHUNK_BYTES: usize = 3 << 19;

/// A fixed-size array of `T`, all zero when made; see the module docs.
pub(crate) struct Spots<T: Zeroed> {
    inner: Inner<T>,
}

enum Inner<T: Zeroed> {
    Heap(Vec<T>),
    #[cfg(target_os = "linux")]
    /// `T`s filling the mapping: its length is a multiple of their size.
    Mapped {
        map: memmap2::MmapMut,
        _t: std::marker::PhantomData<T>,
    },
}

impl<T: Zeroed> Default for Spots<T> {
    fn default() -> Self {
        Spots { inner: Inner::Heap(Vec::new()) }
    }
}

impl<T: Zeroed> Spots<T> {
    /// `len` zero values: a mapping if they take `map_from` bytes or more
    /// (Linux; normally [`MAPPED_MIN_BYTES`]), else a `Vec` (written in
    /// chunks on the caller's pool, if any, when large).
    pub(crate) fn zeroed(len: usize, map_from: usize) -> Spots<T> {
        // A mapping starts on a page: aligned for any `T` that asks no more.
        const { assert!(align_of::<T>() <= 4096) };
        #[cfg(target_os = "linux")]
        if let Some(bytes) = len.checked_mul(size_of::<T>())
            && bytes > 0
            && bytes >= map_from
            && let Ok(map) = memmap2::MmapMut::map_anon(bytes)
        {
            // Advice only: without it the mapping works the same.
            _ = map.advise(memmap2::Advice::HugePage);
            let mut spots = Spots { inner: Inner::Mapped { map, _t: std::marker::PhantomData } };
            spots.touch(0);
            return spots;
        }
        // SAFETY: `T: Zeroed`.
        let zero: T = unsafe { std::mem::zeroed() };
        let per_chunk = (CHUNK_BYTES / size_of::<T>().max(1)).max(1);
        if len < per_chunk || rayon::current_thread_index().is_none() {
            return Spots { inner: Inner::Heap(vec![zero; len]) };
        }
        let mut v: Vec<T> = Vec::with_capacity(len);
        v.spare_capacity_mut()[..len]
            .par_chunks_mut(per_chunk)
            .for_each(|c| c.iter_mut().for_each(|e| _ = e.write(zero)));
        // SAFETY: the first `len` elements (within the capacity) were all
        // initialised just above.
        unsafe { v.set_len(len) };
        Spots { inner: Inner::Heap(v) }
    }

    /// Grows the array to `new_len` values in place, the new ones zero, and
    /// returns true; false (nothing changed) when it is no mapping or the
    /// kernel refuses to grow it.
    pub(crate) fn grow_in_place(&mut self, new_len: usize) -> bool {
        #[cfg(target_os = "linux")]
        if let Inner::Mapped { map, .. } = &mut self.inner
            && let Some(bytes) = new_len.checked_mul(size_of::<T>())
            && bytes > map.len()
        {
            let old = map.len();
            // SAFETY: no reference into the mapping outlives this call
            // (`&mut self`); `may_move` keeps the contents, and the pages
            // added to a private anonymous mapping are zero.
            let remapped = unsafe { map.remap(bytes, memmap2::RemapOptions::new().may_move(true)) };
            if remapped.is_err() {
                return false;
            }
            _ = map.advise(memmap2::Advice::HugePage);
            self.touch(old);
            return true;
        }
        _ = new_len;
        false
    }

    /// True when the array is a mapping (tests).
    #[cfg(test)]
    pub(crate) fn is_mapped(&self) -> bool {
        !matches!(self.inner, Inner::Heap(_))
    }

    /// Touches every page of a mapping from byte `from` on, on the caller's
    /// rayon pool when there is one (see the module docs and
    /// [`crate::threads::touch_pages`]); nothing outside a pool, or for a
    /// `Vec`.
    fn touch(&mut self, from: usize) {
        #[cfg(target_os = "linux")]
        if let Inner::Mapped { map, .. } = &mut self.inner
            && let Some(rest) = map.get_mut(from..)
        {
            // SAFETY: `touch_pages` writes zero bytes only, valid as `u8`
            // (and over the zeros of the spots from `from` on: values kept).
            let rest = unsafe { &mut *(std::ptr::from_mut::<[u8]>(rest) as *mut [std::mem::MaybeUninit<u8>]) };
            crate::threads::touch_pages(rest);
        }
        _ = from;
    }
}

impl<T: Zeroed> Deref for Spots<T> {
    type Target = [T];

    fn deref(&self) -> &[T] {
        match &self.inner {
            Inner::Heap(v) => v,
            // SAFETY: the mapping holds `map.len() / size_of::<T>()` values
            // of `T` (it was made or grown to a non-zero multiple of their
            // size, so `T` is no zero-sized type; page-aligned, so aligned
            // for `T`), each valid: zero at first (`T: Zeroed`), else written
            // as a `T`.
            #[cfg(target_os = "linux")]
            Inner::Mapped { map, .. } => unsafe {
                std::slice::from_raw_parts(map.as_ptr().cast::<T>(), map.len() / size_of::<T>())
            },
        }
    }
}

impl<T: Zeroed> DerefMut for Spots<T> {
    fn deref_mut(&mut self) -> &mut [T] {
        match &mut self.inner {
            Inner::Heap(v) => v,
            // SAFETY: as in `deref`, and `&mut self` makes it the only view.
            #[cfg(target_os = "linux")]
            Inner::Mapped { map, .. } => unsafe {
                let len = map.len() / size_of::<T>();
                std::slice::from_raw_parts_mut(map.as_mut_ptr().cast::<T>(), len)
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn made_zero_and_grown_keeping_what_was_written() {
        // On a pool a mapping's new pages are touched, from a byte that is
        // on no page boundary when it grows from 1, 200 or 100,000 values.
        let pool = rayon::ThreadPoolBuilder::new().num_threads(2).build().expect("a pool");
        let pooled = [false, true];
        for (map_from, on_pool) in [0, usize::MAX].into_iter().flat_map(|m| pooled.map(|p| (m, p))) {
            let run = |f: &mut (dyn FnMut() + Send)| if on_pool { pool.install(f) } else { f() };
            run(&mut || {
                for len in [0, 1, 200, 100_000] {
                    let mut s = Spots::<u32>::zeroed(len, map_from);
                    assert_eq!(s.len(), len);
                    assert!(s.iter().all(|&v| v == 0));
                    for (i, v) in s.iter_mut().enumerate() {
                        *v = i as u32 + 1;
                    }
                    let mapped = cfg!(target_os = "linux") && map_from == 0 && len > 0;
                    assert_eq!(s.is_mapped(), mapped, "{len} values from {map_from}");
                    // Only a mapping grows in place (and any mapping does).
                    assert_eq!(s.grow_in_place(3 * len + 5), mapped, "{len} values from {map_from}");
                    assert_eq!(s.len(), if mapped { 3 * len + 5 } else { len });
                    assert!(s[..len].iter().enumerate().all(|(i, &v)| v == i as u32 + 1), "kept");
                    assert!(s[len..].iter().all(|&v| v == 0), "zero after");
                }
            });
        }
    }

    #[test]
    fn made_and_grown_on_a_pool_as_alone() {
        // Large enough for the chunks written or touched on the pool.
        let pool = rayon::ThreadPoolBuilder::new().num_threads(2).build().expect("a pool");
        for map_from in [0, usize::MAX] {
            let made = |len| {
                let mut s = Spots::<u32>::zeroed(len, map_from);
                s[12345] = 7;
                s
            };
            let (mut alone, mut pooled) = (made(1 << 20), pool.install(|| made(1 << 20)));
            assert!(*alone == *pooled, "made from {map_from}");
            let grown = alone.grow_in_place(3 << 20);
            assert_eq!(pool.install(|| pooled.grow_in_place(3 << 20)), grown);
            assert!(*alone == *pooled, "grown from {map_from}");
            assert_eq!(pooled.iter().filter(|&&v| v != 0).count(), 1);
            assert_eq!(pooled.len(), if grown { 3 << 20 } else { 1 << 20 });
        }
    }
}
