//! SHA-256 of many messages at once: up to four messages' compressions
//! interleaved with the SHA extensions.
//!
//! One SHA-256 stream is a chain of `sha256rnds2` instructions, each waiting
//! for the one before. On processors that issue that instruction faster than
//! its latency (AMD Zen 4 here: one stream 1.5 GB/s, two interleaved 2.36,
//! four 3.36), independent messages fill the gaps, as multi-buffer SHA-256
//! does in Linux (`sha256_ni_finup2x`) and Intel's ISA-L. A document's
//! paragraphs are independent messages: each lane takes the next one when its
//! own is done, and as the messages run out the lanes left go on three, two
//! or one at a time. The digests are SHA-256's (the tests compare them with
//! the `sha2` crate's at every length and lane mix); without the SHA
//! extensions, or off x86-64, each message goes through [`Digest::of`].
//! Measurements: `benches/JSONL.md`, twenty-sixth pass.
//!
//! Where AVX-512 runs at full width, sixteen messages in the lanes of one
//! register go faster still ([`wide`], chosen per process by timing both):
//! for [`WIDE_MIN`] messages or more, [`digest_each`] takes that path.

use super::Digest;

/// The SHA-256 of each of `count` messages, message `i` being `msg(i)`,
/// handed to `out(i, digest)` (in no particular order: lanes finish when
/// their messages do).
pub fn digest_each<'a>(count: usize, msg: impl Fn(usize) -> &'a [u8], mut out: impl FnMut(usize, Digest)) {
    #[cfg(target_arch = "x86_64")]
    if count >= WIDE_MIN && wide::preferred() {
        // SAFETY: `preferred` is true only where the processor has AVX-512F
        // and AVX-512BW.
        unsafe { wide::digest_each(count, msg, out) };
        return;
    }
    #[cfg(target_arch = "x86_64")]
    if count > 1 && ni::available() {
        // SAFETY: the processor has the SHA extensions, SSSE3 and SSE4.1
        // (checked just above).
        unsafe { ni::digest_each(count, msg, out) };
        return;
    }
    for i in 0..count {
        out(i, Digest::of(msg(i)));
    }
}

/// Messages at or above which [`digest_each`] may take the sixteen lanes of
/// AVX-512 (where they beat the SHA extensions): below, most of a register's
/// lanes would idle.
pub const WIDE_MIN: usize = 16;

#[cfg(target_arch = "x86_64")]
mod wide;

#[cfg(target_arch = "x86_64")]
mod ni {
    use std::arch::x86_64::*;

    use super::super::{SHA256_H0, pad_last};
    use super::Digest;

    /// Lanes compressed together at most.
    const LANES: usize = 4;

    /// Whether this processor runs [`digest_each`].
    pub(super) fn available() -> bool {
        std::arch::is_x86_feature_detected!("sha")
            && std::arch::is_x86_feature_detected!("ssse3")
            && std::arch::is_x86_feature_detected!("sse4.1")
    }

    /// SHA-256's round constants (FIPS 180-4, 4.2.2).
    pub(super) const K32: [u32; 64] = [
        0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5, 0xd807aa98,
        0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786,
        0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8,
        0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13,
        0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819,
        0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a,
        0x5b9cca4f, 0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
        0xc67178f2,
    ];

    /// A lane's state in the order the SHA instructions want it: the words
    /// (a, b, e, f) and (c, d, g, h).
    type State = [__m128i; 2];

    /// One message in a lane: its whole blocks not compressed yet, then its
    /// padded last one or two blocks (here and in [`super::wide`]).
    #[derive(Clone, Copy)]
    pub(super) struct Lane<'a> {
        pub(super) msg: usize,
        pub(super) whole: &'a [[u8; 64]],
        pub(super) last: [[u8; 64]; 2],
        pub(super) last_count: usize,
        pub(super) last_done: usize,
    }

    impl<'a> Lane<'a> {
        pub(super) const IDLE: Lane<'static> =
            Lane { msg: 0, whole: &[], last: [[0; 64]; 2], last_count: 0, last_done: 0 };

        /// Takes message `msg`, `bytes`, padded as [`Digest::of`] pads it
        /// (written in place: the lane is not built and moved per message).
        pub(super) fn start(&mut self, msg: usize, bytes: &'a [u8]) {
            let (whole, tail) = bytes.as_chunks::<64>();
            let last_count = pad_last(tail, bytes.len(), &mut self.last);
            (self.msg, self.whole, self.last_count, self.last_done) = (msg, whole, last_count, 0);
        }

        /// Blocks left to compress.
        pub(super) fn left(&self) -> usize {
            self.whole.len() + self.last_count - self.last_done
        }

        /// Moves past the next `n` blocks (at most those left), as `n`
        /// calls of [`Lane::next_block`] would: whole blocks first, then
        /// the padded tail.
        pub(super) fn advance(&mut self, n: usize) {
            let whole = n.min(self.whole.len());
            self.whole = &self.whole[whole..];
            self.last_done += n - whole;
        }

        /// The next block (there must be one left).
        pub(super) fn next_block(&mut self) -> *const u8 {
            if let Some((first, rest)) = self.whole.split_first() {
                self.whole = rest;
                first.as_ptr()
            } else {
                self.last_done += 1;
                self.last[self.last_done - 1].as_ptr()
            }
        }
    }

    /// SHA-256 of each of `count` messages, four lanes at a time.
    ///
    /// # Safety
    /// The processor must have the SHA extensions, SSSE3 and SSE4.1.
    #[target_feature(enable = "sha,ssse3,sse4.1")]
    pub(super) unsafe fn digest_each<'a>(
        count: usize,
        msg: impl Fn(usize) -> &'a [u8],
        mut out: impl FnMut(usize, Digest),
    ) {
        let start = initial_state();
        let mut lanes = [Lane::IDLE; LANES];
        let mut states = [start; LANES];
        let mut active = 0;
        let mut next = 0;
        while active < LANES && next < count {
            lanes[active].start(next, msg(next));
            (active, next) = (active + 1, next + 1);
        }
        while active > 0 {
            // As many blocks as every active lane has left, in one go.
            let steps = lanes[..active].iter().map(Lane::left).min().unwrap_or(0);
            match active {
                4 => compress::<4>(&mut states, &mut lanes, steps),
                3 => compress::<3>(&mut states, &mut lanes, steps),
                2 => compress::<2>(&mut states, &mut lanes, steps),
                _ => compress::<1>(&mut states, &mut lanes, steps),
            }
            let mut i = 0;
            while i < active {
                if lanes[i].left() > 0 {
                    i += 1;
                    continue;
                }
                out(lanes[i].msg, finish(states[i]));
                if next < count {
                    lanes[i].start(next, msg(next));
                    states[i] = start;
                    next += 1;
                    i += 1;
                } else {
                    // The last active lane takes this one's place (copied
                    // over it: this one is done, a swap moved twice the
                    // bytes through `memmove`).
                    active -= 1;
                    lanes[i] = lanes[active];
                    states[i] = states[active];
                }
            }
        }
    }

    /// Four rounds of every lane, `$r` (0 to 15) being the rounds' quarter and
    /// `$i` its message words' place in `w` (`$r % 4`, spelled out so that
    /// every index is a constant: with a loop the compiler kept `w` in memory,
    /// and the lanes gained a fifth of what they gain unrolled).
    macro_rules! rounds {
        ($n:expr, $st:ident, $w:ident, $r:literal, $i:literal) => {{
            // SAFETY: `4 * $r + 3 < 64`: four constants inside `K32`.
            let k = unsafe { _mm_loadu_si128(K32.as_ptr().add(4 * $r).cast()) };
            for l in 0..$n {
                if $r >= 4 {
                    let (w0, w1, w2, w3) = ($w[l][$i], $w[l][($i + 1) % 4], $w[l][($i + 2) % 4], $w[l][($i + 3) % 4]);
                    let t = _mm_add_epi32(_mm_sha256msg1_epu32(w0, w1), _mm_alignr_epi8(w3, w2, 4));
                    $w[l][$i] = _mm_sha256msg2_epu32(t, w3);
                }
                let t1 = _mm_add_epi32($w[l][$i], k);
                $st[l][1] = _mm_sha256rnds2_epu32($st[l][1], $st[l][0], t1);
                let t2 = _mm_shuffle_epi32(t1, 0x0E);
                $st[l][0] = _mm_sha256rnds2_epu32($st[l][0], $st[l][1], t2);
            }
        }};
    }

    /// `steps` blocks of each of the first `N` lanes, interleaved.
    #[inline]
    #[target_feature(enable = "sha,ssse3,sse4.1")]
    fn compress<const N: usize>(states: &mut [State; LANES], lanes: &mut [Lane<'_>; LANES], steps: usize) {
        let mut st: [State; N] = std::array::from_fn(|l| states[l]);
        for _ in 0..steps {
            let saved = st;
            // SAFETY: each pointer is a whole 64-byte block of a lane's message
            // or of its padded tail (`next_block`).
            let mut w: [[__m128i; 4]; N] = std::array::from_fn(|l| unsafe { load_block(lanes[l].next_block()) });
            rounds!(N, st, w, 0, 0);
            rounds!(N, st, w, 1, 1);
            rounds!(N, st, w, 2, 2);
            rounds!(N, st, w, 3, 3);
            rounds!(N, st, w, 4, 0);
            rounds!(N, st, w, 5, 1);
            rounds!(N, st, w, 6, 2);
            rounds!(N, st, w, 7, 3);
            rounds!(N, st, w, 8, 0);
            rounds!(N, st, w, 9, 1);
            rounds!(N, st, w, 10, 2);
            rounds!(N, st, w, 11, 3);
            rounds!(N, st, w, 12, 0);
            rounds!(N, st, w, 13, 1);
            rounds!(N, st, w, 14, 2);
            rounds!(N, st, w, 15, 3);
            for l in 0..N {
                st[l][0] = _mm_add_epi32(st[l][0], saved[l][0]);
                st[l][1] = _mm_add_epi32(st[l][1], saved[l][1]);
            }
        }
        states[..N].copy_from_slice(&st);
    }

    /// The 16 big-endian words of the block at `p`.
    ///
    /// # Safety
    /// `p` must point to 64 readable bytes.
    #[inline]
    #[target_feature(enable = "ssse3")]
    unsafe fn load_block(p: *const u8) -> [__m128i; 4] {
        let swap = _mm_set_epi64x(0x0C0D_0E0F_0809_0A0B, 0x0405_0607_0001_0203);
        let q: *const __m128i = p.cast();
        // SAFETY: four 16-byte loads inside the 64 bytes the caller vouches for.
        std::array::from_fn(|i| _mm_shuffle_epi8(unsafe { _mm_loadu_si128(q.add(i)) }, swap))
    }

    /// SHA-256's initial state as (a, b, e, f), (c, d, g, h).
    #[inline]
    #[target_feature(enable = "sse4.1")]
    fn initial_state() -> State {
        let h = SHA256_H0.map(|w| w as i32);
        // _mm_set_epi32 takes the highest lane first.
        [_mm_set_epi32(h[0], h[1], h[4], h[5]), _mm_set_epi32(h[2], h[3], h[6], h[7])]
    }

    /// The digest of a lane's final state.
    #[inline]
    #[target_feature(enable = "sse4.1")]
    fn finish(st: State) -> Digest {
        let mut words = [0u32; 8];
        // SAFETY: two 16-byte stores into the 32 bytes of `words`.
        unsafe {
            _mm_storeu_si128(words.as_mut_ptr().cast(), st[0]);
            _mm_storeu_si128(words.as_mut_ptr().add(4).cast(), st[1]);
        }
        // Stored from the lowest lane up: (f, e, b, a), (h, g, d, c).
        let [f, e, b, a, h, g, d, c] = words;
        let mut out = [0u8; 32];
        for (o, w) in out.chunks_exact_mut(4).zip([a, b, c, d, e, f, g, h]) {
            o.copy_from_slice(&w.to_be_bytes());
        }
        Digest(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::{Digest as _, Sha256};

    /// A way to the digests of some messages.
    type Path = fn(&[&[u8]], &mut dyn FnMut(usize, Digest));

    /// Every path this processor has: the dispatching one, and each of the
    /// lanes' own whatever the dispatch would choose.
    fn paths() -> Vec<(&'static str, Path)> {
        let mut paths: Vec<(&'static str, Path)> = vec![("digest_each", |m, out| digest_each(m.len(), |i| m[i], out))];
        #[cfg(target_arch = "x86_64")]
        {
            if ni::available() {
                // SAFETY: the processor has the SHA extensions, SSSE3 and SSE4.1.
                paths.push(("ni", |m, out| unsafe { ni::digest_each(m.len(), |i| m[i], out) }));
            }
            if wide::available() {
                // SAFETY: the processor has AVX-512F and AVX-512BW.
                paths.push(("wide", |m, out| unsafe { wide::digest_each(m.len(), |i| m[i], out) }));
            }
        }
        paths
    }

    fn check(msgs: &[&[u8]]) {
        for (path, run) in paths() {
            let mut got = vec![None; msgs.len()];
            run(msgs, &mut |i, d| {
                assert!(got[i].is_none(), "{path}: message {i} twice");
                got[i] = Some(d);
            });
            for (i, m) in msgs.iter().enumerate() {
                let expected: [u8; 32] = Sha256::digest(m).into();
                assert_eq!(
                    got[i].map(|d| d.0),
                    Some(expected),
                    "{path}: message {i} of {}, {} bytes",
                    msgs.len(),
                    m.len()
                );
            }
        }
    }

    #[test]
    fn every_length_in_every_lane() {
        let bytes: Vec<u8> = (0..300u32).map(|i| (i * 7 + 3) as u8).collect();
        let msgs: Vec<&[u8]> = (0..=bytes.len()).map(|n| &bytes[..n]).collect();
        check(&msgs);
        // Each length beside shorter and longer neighbours, in each lane.
        for n in 0..=bytes.len() {
            let lens = [n, 300 - n, n / 2, 0, 64, n, 55, 56];
            let msgs: Vec<&[u8]> = lens.iter().map(|&k| &bytes[k / 3..k / 3 + (k - k / 3)]).collect();
            for count in 0..=msgs.len() {
                check(&msgs[..count]);
            }
        }
    }

    #[test]
    fn many_messages_of_mixed_lengths() {
        // More messages than sixteen lanes, so lanes are refilled while
        // others are halfway, and the last few are finished one at a time.
        let bytes: Vec<u8> = (0..2000u32).map(|i| (i.wrapping_mul(97) >> 3) as u8).collect();
        for count in [15, 16, 17, 19, 40, 100] {
            let msgs: Vec<&[u8]> = (0..count).map(|i| &bytes[i..i + (i * 37) % 700]).collect();
            check(&msgs);
            let same: Vec<&[u8]> = (0..count).map(|_| &bytes[..230]).collect();
            check(&same);
        }
    }

    proptest::proptest! {
        #[test]
        fn digests_are_sha256s(lens in proptest::collection::vec(0usize..700, 0..60), seed in 0u8..255) {
            let bytes: Vec<u8> = (0..700u32).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)).collect();
            let msgs: Vec<&[u8]> = lens.iter().enumerate().map(|(i, &n)| &bytes[i % 7..(i % 7 + n).min(700)]).collect();
            check(&msgs);
        }
    }
}
