//! A key's filter bits set in its 64-byte block and tested against it (the
//! blocked Bloom filters of `segment` and `global`: one bit in each of the
//! block's eight little-endian words, see [`FilterMask`]), a word at a
//! time ([`Words`]) or all eight words in one AVX-512 register ([`Wide`],
//! where the processor has AVX-512F).
//!
//! The loops that set or test many keys (a commit's filters, a batch's
//! lookups) are generic over [`Bits`] and compiled twice: once as they are,
//! once inside a function compiled for AVX-512F (its `Wide` calls inlined
//! into the loop), chosen per loop by [`Wide::new`]. A word at a time, a
//! key takes eight variable shifts (three micro-operations each on Intel
//! without BMI2) and eight read-modify-writes of memory; in a register,
//! two shifts by eight amounts each and one read-modify-write of the block. On
//! the bench's Xeon a day's 1.1M sorted keys set in a 16 MiB filter took
//! 5.2 ms a word at a time and 2.1 ms in a register (issue 18, forty-sixth
//! session). Both ways write the same bytes (the filters' format is
//! `segment`'s), so an index made by one is read by the other.

use super::segment::FilterMask;

/// Setting and testing a key's bits in its block.
pub(super) trait Bits: Copy {
    /// Sets `key`'s bits in `block`.
    fn set(self, block: &mut [u8; 64], key: u128);
    /// True when every bit of `key` is set in `block`.
    fn admitted(self, block: &[u8; 64], key: u128) -> bool;
}

/// A word at a time, on any processor.
#[derive(Clone, Copy)]
pub(super) struct Words;

impl Bits for Words {
    #[inline(always)]
    fn set(self, block: &mut [u8; 64], key: u128) {
        for (word, bit) in block.chunks_exact_mut(8).zip(FilterMask::of(key).bits()) {
            let w = u64::from_le_bytes((&*word).try_into().unwrap_or_default()) | bit;
            word.copy_from_slice(&w.to_le_bytes());
        }
    }

    #[inline(always)]
    fn admitted(self, block: &[u8; 64], key: u128) -> bool {
        FilterMask::of(key).admitted_by(block)
    }
}

/// All eight words in one AVX-512 register. Made only by [`Wide::new`],
/// so a `Wide` says the processor has AVX-512F.
#[cfg(target_arch = "x86_64")]
#[derive(Clone, Copy)]
pub(super) struct Wide(());

#[cfg(target_arch = "x86_64")]
impl Wide {
    /// `Some` where the processor has AVX-512F (checked once per process),
    /// unless `NEWSDEDUP_FILTER_BITS=words` asks for a word at a time (so
    /// that `.ci/run` runs the library's tests through both ways on a
    /// processor that has it).
    #[inline]
    pub(super) fn new() -> Option<Wide> {
        static TAKEN: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
        let taken = *TAKEN.get_or_init(|| {
            std::arch::is_x86_feature_detected!("avx512f")
                && std::env::var("NEWSDEDUP_FILTER_BITS").as_deref() != Ok("words")
        });
        taken.then_some(Wide(()))
    }
}

#[cfg(target_arch = "x86_64")]
impl Bits for Wide {
    #[inline(always)]
    fn set(self, block: &mut [u8; 64], key: u128) {
        // SAFETY: a `Wide` exists only where the processor has AVX-512F.
        unsafe { wide::set(block, key) }
    }

    #[inline(always)]
    fn admitted(self, block: &[u8; 64], key: u128) -> bool {
        // SAFETY: as above.
        unsafe { wide::admitted(block, key) }
    }
}

#[cfg(target_arch = "x86_64")]
mod wide {
    use std::arch::x86_64::{
        __m512i, _mm512_and_si512, _mm512_andnot_si512, _mm512_loadu_si512, _mm512_or_si512, _mm512_set1_epi64,
        _mm512_setr_epi64, _mm512_sllv_epi64, _mm512_srlv_epi64, _mm512_storeu_si512, _mm512_test_epi64_mask,
    };

    /// `key`'s bit of each word, word `w` in lane `w`: bit
    /// `(low 64 bits >> 6w) & 63` ([`super::FilterMask`]).
    #[inline]
    #[target_feature(enable = "avx512f")]
    fn mask(key: u128) -> __m512i {
        let low = _mm512_set1_epi64(key as u64 as i64);
        let at = _mm512_and_si512(
            _mm512_srlv_epi64(low, _mm512_setr_epi64(0, 6, 12, 18, 24, 30, 36, 42)),
            _mm512_set1_epi64(63),
        );
        _mm512_sllv_epi64(_mm512_set1_epi64(1), at)
    }

    /// [`super::Bits::set`].
    #[inline]
    #[target_feature(enable = "avx512f")]
    pub(super) fn set(block: &mut [u8; 64], key: u128) {
        let p = block.as_mut_ptr().cast::<__m512i>();
        // SAFETY: one unaligned load and one store of the block's 64 bytes.
        unsafe { _mm512_storeu_si512(p, _mm512_or_si512(_mm512_loadu_si512(p), mask(key))) };
    }

    /// [`super::Bits::admitted`]: no bit of the mask missing from the block.
    #[inline]
    #[target_feature(enable = "avx512f")]
    pub(super) fn admitted(block: &[u8; 64], key: u128) -> bool {
        // SAFETY: one unaligned load of the block's 64 bytes.
        let b = unsafe { _mm512_loadu_si512(block.as_ptr().cast()) };
        let missing = _mm512_andnot_si512(b, mask(key));
        _mm512_test_epi64_mask(missing, missing) == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Random keys, keys whose bit positions cover every position of every
    /// word, and the extremes; blocks holding none to eight keys, and a full
    /// one.
    fn keys() -> Vec<u128> {
        let mut s = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = move || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            s
        };
        let mut keys: Vec<u128> = (0..2_000).map(|_| u128::from(next()) << 64 | u128::from(next())).collect();
        // Every 6-bit position in every word at once: 0, 1, ..., 63.
        keys.extend((0..64u64).map(|p| u128::from((0..8).fold(0u64, |k, w| k | p << (6 * w)))));
        keys.extend([0, u128::MAX, u128::from(u64::MAX), u128::MAX << 64]);
        keys
    }

    fn check<B: Bits>(bits: B) {
        let keys = keys();
        let mut mine = [0u8; 64];
        let mut words = [0u8; 64];
        for (i, &k) in keys.iter().enumerate() {
            assert!(!bits.admitted(&[0; 64], k), "key {i} admitted by an empty block");
            assert!(bits.admitted(&[0xFF; 64], k), "key {i} refused by a full block");
            // Every eighth key starts over from an empty block, so that
            // blocks holding a few keys are tested as well as full ones.
            if i % 8 == 0 {
                (mine, words) = ([0; 64], [0; 64]);
            }
            let before = mine;
            assert_eq!(bits.admitted(&before, k), Words.admitted(&before, k), "key {i}");
            bits.set(&mut mine, k);
            Words.set(&mut words, k);
            assert_eq!(mine, words, "key {i}: the same bits set");
            assert!(bits.admitted(&mine, k), "key {i} admitted once set");
            // Each of its eight bits cleared in turn: refused.
            let mask = FilterMask::of(k);
            for (w, bit) in mask.bits().iter().enumerate() {
                let mut without = mine;
                let word = u64::from_le_bytes(without[8 * w..8 * w + 8].try_into().unwrap_or_default()) & !bit;
                without[8 * w..8 * w + 8].copy_from_slice(&word.to_le_bytes());
                assert!(!bits.admitted(&without, k), "key {i} admitted without its bit of word {w}");
            }
        }
    }

    /// The format's bits for one key, worked out by hand from the rule
    /// (word `w` gets bit `(low 64 bits >> 6w) & 63`), in both ways.
    #[test]
    fn a_key_sets_the_bits_the_format_says() {
        // Low 64 bits 0xFEDC_BA98_7654_3210: 6-bit fields from the bottom
        // 0x10, 0x08, 0x03, 0x15, 0x36, 0x21, 0x29, 0x2E.
        let k = 0x0123_4567_89AB_CDEF_FEDC_BA98_7654_3210u128;
        let want: Vec<u8> =
            [0x10, 0x08, 0x03, 0x15, 0x36, 0x21, 0x29, 0x2E].iter().flat_map(|&p| (1u64 << p).to_le_bytes()).collect();
        let mut block = [0u8; 64];
        Words.set(&mut block, k);
        assert_eq!(block.to_vec(), want);
        #[cfg(target_arch = "x86_64")]
        if let Some(wide) = Wide::new() {
            let mut block = [0u8; 64];
            wide.set(&mut block, k);
            assert_eq!(block.to_vec(), want);
        }
    }

    #[test]
    fn a_word_at_a_time_sets_and_tests_the_masks_bits() {
        let mut block = [0u8; 64];
        let k = 0x0123_4567_89AB_CDEF_FEDC_BA98_7654_3210u128;
        Words.set(&mut block, k);
        let set: Vec<u64> =
            block.chunks_exact(8).map(|w| u64::from_le_bytes(w.try_into().unwrap_or_default())).collect();
        assert_eq!(set, FilterMask::of(k).bits().to_vec());
        check(Words);
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn in_a_register_as_a_word_at_a_time() {
        // Where the processor lacks AVX-512F there is nothing to compare.
        if let Some(wide) = Wide::new() {
            check(wide);
        }
    }
}
