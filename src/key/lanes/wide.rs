//! SHA-256 of sixteen messages at once in the 32-bit lanes of AVX-512,
//! without the SHA extensions: multi-buffer SHA-256 as Intel's ISA-L does
//! it (`sha256_mb_x16_avx512`).
//!
//! Where AVX-512 runs at full width (Intel's cores since Ice Lake), sixteen
//! lanes of plain SHA-256 arithmetic outrun the SHA extensions: on the
//! Xeon of the forty-fourth session, 3.3 GB/s against 1.5 GB/s for one
//! SHA-NI stream and 1.3 GB/s for [`super::ni`]'s four interleaved ones
//! (`benches/JSONL.md`, thirty-second pass). Where it is split in two
//! halves (AMD Zen 4) the SHA extensions win. So the choice is made once
//! per process by timing both on the same messages ([`preferred`]); the
//! digests are SHA-256's either way (the tests compare both with the
//! `sha2` crate's at every length and lane mix).
//!
//! Sixteen lanes need many messages: a lane idles once the messages run
//! out, so [`super::digest_each`] takes this path only for
//! [`super::WIDE_MIN`] messages or more (the pipeline keys a few documents
//! together, [`crate::document::Document::from_splits`]), and the last few
//! messages in flight are finished one at a time by the SHA extensions
//! (`sha2`'s `compress256`) rather than in a register of idle lanes.

use std::arch::x86_64::*;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use sha2::block_api::compress256;

use super::super::{SHA256_H0, pad_last};
use super::Digest;
use super::ni::K32;

/// Lanes of one register.
const LANES: usize = 16;

/// Messages in flight at or below which, once no message waits, the rest
/// are finished one at a time (each a chain of `compress256`).
const TAIL: usize = 3;

/// Whether the processor has what this path needs.
fn available() -> bool {
    std::arch::is_x86_feature_detected!("avx512f") && std::arch::is_x86_feature_detected!("avx512bw")
}

/// Whether this path is the faster one on this processor: decided once per
/// process by hashing the same 64 paragraph-sized messages with both, five
/// rounds taking turns, the fastest round of each compared (about a tenth
/// of a millisecond). `NEWSDEDUP_SHA_LANES=wide` or `=ni` decides instead
/// (for measuring one against the other; `wide` still needs AVX-512).
pub(super) fn preferred() -> bool {
    static CHOICE: OnceLock<bool> = OnceLock::new();
    *CHOICE.get_or_init(|| {
        if !available() || !super::ni::available() {
            return available();
        }
        match std::env::var("NEWSDEDUP_SHA_LANES").as_deref() {
            Ok("wide") => return true,
            Ok("ni") => return false,
            _ => {}
        }
        let bytes: Vec<u8> = (0..64 * 230).map(|i: u32| (i.wrapping_mul(2_654_435_761) >> 24) as u8).collect();
        let msgs: Vec<&[u8]> = bytes.chunks(230).collect();
        let time = |f: &dyn Fn()| {
            let start = Instant::now();
            f();
            start.elapsed()
        };
        let (mut wide, mut ni) = (Duration::MAX, Duration::MAX);
        for _ in 0..5 {
            // SAFETY: both paths' features were checked just above.
            wide = wide.min(time(&|| unsafe {
                digest_each(
                    msgs.len(),
                    |i| msgs[i],
                    |_, d| {
                        std::hint::black_box(d);
                    },
                )
            }));
            ni = ni.min(time(&|| unsafe {
                super::ni::digest_each(
                    msgs.len(),
                    |i| msgs[i],
                    |_, d| {
                        std::hint::black_box(d);
                    },
                )
            }));
        }
        wide < ni
    })
}

/// One message in a lane: its whole blocks not compressed yet, then its
/// padded last one or two blocks.
#[derive(Clone, Copy)]
struct Lane<'a> {
    msg: usize,
    busy: bool,
    whole: &'a [[u8; 64]],
    last: [[u8; 64]; 2],
    last_count: usize,
    last_done: usize,
}

impl<'a> Lane<'a> {
    const IDLE: Lane<'static> =
        Lane { msg: 0, busy: false, whole: &[], last: [[0; 64]; 2], last_count: 0, last_done: 0 };

    /// Takes message `msg`, `bytes`, padded as [`Digest::of`] pads it.
    fn start(&mut self, msg: usize, bytes: &'a [u8]) {
        let (whole, tail) = bytes.as_chunks::<64>();
        let last_count = pad_last(tail, bytes.len(), &mut self.last);
        (self.msg, self.busy, self.whole, self.last_count, self.last_done) = (msg, true, whole, last_count, 0);
    }

    /// Blocks left to compress.
    fn left(&self) -> usize {
        self.whole.len() + self.last_count - self.last_done
    }

    /// The next block (there must be one left).
    fn next_block(&mut self) -> *const u8 {
        if let Some((first, rest)) = self.whole.split_first() {
            self.whole = rest;
            first.as_ptr()
        } else {
            self.last_done += 1;
            self.last[self.last_done - 1].as_ptr()
        }
    }

    /// Compresses the blocks left into `state` (one stream, `sha2`'s
    /// `compress256`: the SHA extensions where the processor has them).
    fn finish_alone(&mut self, state: &mut [u32; 8]) {
        compress256(state, self.whole);
        compress256(state, &self.last[self.last_done..self.last_count]);
        self.whole = &[];
        self.last_done = self.last_count;
    }
}

/// The digest of a final state.
fn digest_of(state: &[u32; 8]) -> Digest {
    let mut out = [0u8; 32];
    for (o, w) in out.chunks_exact_mut(4).zip(state) {
        o.copy_from_slice(&w.to_be_bytes());
    }
    Digest(out)
}

/// SHA-256 of each of `count` messages, sixteen lanes at a time; `out` is
/// called once per message, in no particular order.
///
/// # Safety
/// The processor must have AVX-512F and AVX-512BW.
#[target_feature(enable = "avx512f,avx512bw")]
pub(super) unsafe fn digest_each<'a>(
    count: usize,
    msg: impl Fn(usize) -> &'a [u8],
    mut out: impl FnMut(usize, Digest),
) {
    // What an idle lane compresses (its result is never read).
    static IDLE_BLOCK: [u8; 64] = [0; 64];
    let h0: [__m512i; 8] = std::array::from_fn(|i| _mm512_set1_epi32(SHA256_H0[i] as i32));
    let mut state = h0;
    let mut lanes = [Lane::IDLE; LANES];
    let mut next = 0;
    let mut words = [[0u32; LANES]; 8];
    let lane_state = |words: &[[u32; LANES]; 8], l: usize| -> [u32; 8] { std::array::from_fn(|i| words[i][l]) };
    // Longest first: lanes that start together then end together, so the
    // lanes go on for many blocks between refills, and what is left when
    // the messages run out is short.
    let order = longest_first(count, &msg);
    loop {
        // Idle lanes take the next messages, from SHA-256's initial state.
        let mut fresh: __mmask16 = 0;
        for (l, lane) in lanes.iter_mut().enumerate() {
            if !lane.busy && next < count {
                let m = order[next] as usize;
                lane.start(m, msg(m));
                next += 1;
                fresh |= 1 << l;
            }
        }
        for (s, h) in state.iter_mut().zip(&h0) {
            *s = _mm512_mask_mov_epi32(*s, fresh, *h);
        }
        let busy = lanes.iter().filter(|l| l.busy).count();
        if busy == 0 {
            return;
        }
        if next == count && busy <= TAIL {
            // The last few: one at a time, not in a register of idle lanes.
            store(&state, &mut words);
            for (l, lane) in lanes.iter_mut().enumerate().filter(|(_, lane)| lane.busy) {
                let mut s = lane_state(&words, l);
                lane.finish_alone(&mut s);
                out(lane.msg, digest_of(&s));
            }
            return;
        }
        // As many blocks as every busy lane has left, in one go.
        let steps = lanes.iter().filter(|l| l.busy).map(Lane::left).min().unwrap_or(0);
        for _ in 0..steps {
            let blocks: [*const u8; LANES] =
                std::array::from_fn(|l| if lanes[l].busy { lanes[l].next_block() } else { IDLE_BLOCK.as_ptr() });
            // SAFETY: each pointer is a whole 64-byte block (a message's, its
            // padded tail's or the idle block).
            unsafe { compress(&mut state, &blocks) };
        }
        store(&state, &mut words);
        for (l, lane) in lanes.iter_mut().enumerate() {
            if lane.busy && lane.left() == 0 {
                out(lane.msg, digest_of(&lane_state(&words, l)));
                lane.busy = false;
            }
        }
    }
}

/// The messages' indices, those of more blocks first (a counting sort by
/// blocks, all of 16 or more in one bucket).
fn longest_first<'a>(count: usize, msg: &impl Fn(usize) -> &'a [u8]) -> Vec<u32> {
    const BUCKETS: usize = 16;
    let bucket = |i: usize| BUCKETS - 1 - ((msg(i).len() + 8) / 64).min(BUCKETS - 1);
    let mut starts = [0u32; BUCKETS + 1];
    let mut of = Vec::with_capacity(count);
    for i in 0..count {
        let b = bucket(i);
        of.push(b as u8);
        starts[b + 1] += 1;
    }
    for b in 0..BUCKETS {
        starts[b + 1] += starts[b];
    }
    let mut order = vec![0u32; count];
    for (i, b) in of.into_iter().enumerate() {
        order[starts[b as usize] as usize] = i as u32;
        starts[b as usize] += 1;
    }
    order
}

/// The eight state words of every lane: `words[i][l]` is word `i` of lane `l`.
#[inline]
#[target_feature(enable = "avx512f")]
fn store(state: &[__m512i; 8], words: &mut [[u32; LANES]; 8]) {
    for (w, s) in words.iter_mut().zip(state) {
        // SAFETY: one 64-byte store into the 64 bytes of `w`.
        unsafe { _mm512_storeu_si512(w.as_mut_ptr().cast(), *s) };
    }
}

/// One round: `d` and `h` updated, the caller rotating the names.
macro_rules! round {
    ($a:ident, $b:ident, $c:ident, $d:ident, $e:ident, $f:ident, $g:ident, $h:ident, $w:expr, $k:expr) => {{
        let s1 = _mm512_ternarylogic_epi32::<0x96>(
            _mm512_ror_epi32::<6>($e),
            _mm512_ror_epi32::<11>($e),
            _mm512_ror_epi32::<25>($e),
        );
        let ch = _mm512_ternarylogic_epi32::<0xCA>($e, $f, $g);
        let kw = _mm512_add_epi32(_mm512_set1_epi32($k as i32), $w);
        let t1 = _mm512_add_epi32(_mm512_add_epi32($h, s1), _mm512_add_epi32(ch, kw));
        let s0 = _mm512_ternarylogic_epi32::<0x96>(
            _mm512_ror_epi32::<2>($a),
            _mm512_ror_epi32::<13>($a),
            _mm512_ror_epi32::<22>($a),
        );
        let maj = _mm512_ternarylogic_epi32::<0xE8>($a, $b, $c);
        $d = _mm512_add_epi32($d, t1);
        $h = _mm512_add_epi32(t1, _mm512_add_epi32(s0, maj));
    }};
}

/// The message schedule's next word, written over `w[j]` (`j` = round % 16).
macro_rules! schedule {
    ($w:ident, $j:expr) => {{
        let w15 = $w[($j + 1) % 16];
        let w2 = $w[($j + 14) % 16];
        let s0 = _mm512_ternarylogic_epi32::<0x96>(
            _mm512_ror_epi32::<7>(w15),
            _mm512_ror_epi32::<18>(w15),
            _mm512_srli_epi32::<3>(w15),
        );
        let s1 = _mm512_ternarylogic_epi32::<0x96>(
            _mm512_ror_epi32::<17>(w2),
            _mm512_ror_epi32::<19>(w2),
            _mm512_srli_epi32::<10>(w2),
        );
        $w[$j] = _mm512_add_epi32(_mm512_add_epi32($w[$j], s0), _mm512_add_epi32($w[($j + 9) % 16], s1));
    }};
}

/// Sixteen rounds from round `$base`, the schedule run first unless `$first`.
macro_rules! sixteen_rounds {
    ($st:ident, $w:ident, $base:expr, $first:expr) => {{
        let [mut a, mut b, mut c, mut d, mut e, mut f, mut g, mut h] = $st;
        macro_rules! r {
            ($j:expr, $A:ident, $B:ident, $C:ident, $D:ident, $E:ident, $F:ident, $G:ident, $H:ident) => {{
                if !$first {
                    schedule!($w, $j);
                }
                round!($A, $B, $C, $D, $E, $F, $G, $H, $w[$j], K32[$base + $j]);
            }};
        }
        r!(0, a, b, c, d, e, f, g, h);
        r!(1, h, a, b, c, d, e, f, g);
        r!(2, g, h, a, b, c, d, e, f);
        r!(3, f, g, h, a, b, c, d, e);
        r!(4, e, f, g, h, a, b, c, d);
        r!(5, d, e, f, g, h, a, b, c);
        r!(6, c, d, e, f, g, h, a, b);
        r!(7, b, c, d, e, f, g, h, a);
        r!(8, a, b, c, d, e, f, g, h);
        r!(9, h, a, b, c, d, e, f, g);
        r!(10, g, h, a, b, c, d, e, f);
        r!(11, f, g, h, a, b, c, d, e);
        r!(12, e, f, g, h, a, b, c, d);
        r!(13, d, e, f, g, h, a, b, c);
        r!(14, c, d, e, f, g, h, a, b);
        r!(15, b, c, d, e, f, g, h, a);
        $st = [a, b, c, d, e, f, g, h];
    }};
}

/// One block of each lane: `blocks[l]` for lane `l`.
///
/// # Safety
/// Each pointer must point to 64 readable bytes.
#[inline]
#[target_feature(enable = "avx512f,avx512bw")]
unsafe fn compress(state: &mut [__m512i; 8], blocks: &[*const u8; LANES]) {
    // SAFETY: the caller vouches for the blocks.
    let mut w = unsafe { load(blocks) };
    let mut st = *state;
    sixteen_rounds!(st, w, 0, true);
    sixteen_rounds!(st, w, 16, false);
    sixteen_rounds!(st, w, 32, false);
    sixteen_rounds!(st, w, 48, false);
    for (s, x) in state.iter_mut().zip(st) {
        *s = _mm512_add_epi32(*s, x);
    }
}

/// The sixteen blocks as message words: `w[t]` holds word `t` (big-endian)
/// of every lane's block. Each block is loaded whole, its words byte-swapped,
/// and the 16×16 matrix of words transposed (32-bit, then 64-bit unpacks
/// within 128-bit quarters, then the quarters).
///
/// # Safety
/// Each pointer must point to 64 readable bytes.
#[inline]
#[target_feature(enable = "avx512f,avx512bw")]
unsafe fn load(blocks: &[*const u8; LANES]) -> [__m512i; 16] {
    let swap = _mm512_broadcast_i32x4(_mm_set_epi64x(0x0C0D_0E0F_0809_0A0B, 0x0405_0607_0001_0203));
    // SAFETY: 64 bytes at each pointer, as the caller vouches.
    let r: [__m512i; 16] =
        std::array::from_fn(|l| _mm512_shuffle_epi8(unsafe { _mm512_loadu_si512(blocks[l].cast()) }, swap));
    let mut t = [_mm512_setzero_si512(); 16];
    for i in 0..8 {
        t[2 * i] = _mm512_unpacklo_epi32(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_epi32(r[2 * i], r[2 * i + 1]);
    }
    let mut u = [_mm512_setzero_si512(); 16];
    for i in 0..4 {
        u[4 * i] = _mm512_unpacklo_epi64(t[4 * i], t[4 * i + 2]);
        u[4 * i + 1] = _mm512_unpackhi_epi64(t[4 * i], t[4 * i + 2]);
        u[4 * i + 2] = _mm512_unpacklo_epi64(t[4 * i + 1], t[4 * i + 3]);
        u[4 * i + 3] = _mm512_unpackhi_epi64(t[4 * i + 1], t[4 * i + 3]);
    }
    let mut w = [_mm512_setzero_si512(); 16];
    for j in 0..4 {
        let v0 = _mm512_shuffle_i32x4::<0x44>(u[j], u[4 + j]);
        let v1 = _mm512_shuffle_i32x4::<0xEE>(u[j], u[4 + j]);
        let v2 = _mm512_shuffle_i32x4::<0x44>(u[8 + j], u[12 + j]);
        let v3 = _mm512_shuffle_i32x4::<0xEE>(u[8 + j], u[12 + j]);
        w[j] = _mm512_shuffle_i32x4::<0x88>(v0, v2);
        w[4 + j] = _mm512_shuffle_i32x4::<0xDD>(v0, v2);
        w[8 + j] = _mm512_shuffle_i32x4::<0x88>(v1, v3);
        w[12 + j] = _mm512_shuffle_i32x4::<0xDD>(v1, v3);
    }
    w
}
