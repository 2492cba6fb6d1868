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

use super::super::SHA256_H0;
use super::Digest;
use super::ni::{K32, Lane};

/// Lanes of one register.
const LANES: usize = 16;

/// Messages in flight at or below which, once no message waits, the rest
/// are finished one at a time (each a chain of `compress256`).
const TAIL: usize = 3;

/// Whether the processor has what this path needs.
pub(super) fn available() -> bool {
    std::arch::is_x86_feature_detected!("avx512f") && std::arch::is_x86_feature_detected!("avx512bw")
}

/// Whether this path is the faster one on this processor: decided once per
/// process by hashing the same 160 messages (news paragraphs' mix of
/// lengths, 38 KB) with both after a round of each untimed, five rounds
/// taking turns, the fastest round of each compared (well under a
/// millisecond in all). The sixteen lanes must win by a fifth: where the
/// two are close (or where 512-bit code would slow the rest of the core,
/// as on older Xeons, which a timing this short cannot see) the SHA
/// extensions stay. `NEWSDEDUP_SHA_LANES=wide` or `=ni` decides instead,
/// for measuring one against the other (`wide` still needs AVX-512, and
/// without the SHA extensions AVX-512 is always taken when present), and
/// for profiling: under `perf record -F 9999` the timing picked the SHA
/// extensions in one run of fourteen on the Xeon where the sixteen lanes take
/// 0.52–0.71 of their time undisturbed (benches/JSONL.md, thirty-seventh
/// pass), so a profile that compares builds forces one path.
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
        let lens: Vec<usize> =
            (0..160).map(|i| [30, 90, 160, 220, 290, 350, 420, 40, 500, 180][i % 10] + i % 7).collect();
        let bytes: Vec<u8> =
            (0..lens.iter().sum::<usize>() as u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8).collect();
        let mut at = 0;
        let msgs: Vec<&[u8]> = lens
            .iter()
            .map(|n| {
                at += n;
                &bytes[at - n..at]
            })
            .collect();
        let sink = |_, d: Digest| {
            std::hint::black_box(d);
        };
        // SAFETY: both paths' features were checked just above.
        let wide = || unsafe { digest_each(msgs.len(), |i| msgs[i], sink) };
        // SAFETY: as above.
        let ni = || unsafe { super::ni::digest_each(msgs.len(), |i| msgs[i], sink) };
        let time = |f: &dyn Fn()| {
            let start = Instant::now();
            f();
            start.elapsed()
        };
        wide();
        ni();
        let (mut wide_best, mut ni_best) = (Duration::MAX, Duration::MAX);
        for _ in 0..5 {
            wide_best = wide_best.min(time(&wide));
            ni_best = ni_best.min(time(&ni));
        }
        wide_best * 5 < ni_best * 4
    })
}

/// Compresses the blocks `lane` has left into `state`, one stream
/// (`sha2`'s `compress256`: the SHA extensions where the processor has them).
fn finish_alone(lane: &Lane<'_>, state: &mut [u32; 8]) {
    compress256(state, lane.whole);
    compress256(state, &lane.last[lane.last_done..lane.last_count]);
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
    // Bit `l`: lane `l` holds a message not finished yet.
    let mut busy: u32 = 0;
    let mut next = 0;
    let mut words = [[0u32; LANES]; 8];
    let lane_state = |words: &[[u32; LANES]; 8], l: usize| -> [u32; 8] { std::array::from_fn(|i| words[i][l]) };
    // Longest first: lanes that start together then end together, so the
    // lanes go on for many blocks between refills, and what is left when
    // the messages run out is short.
    let order = longest_first(count, &msg);
    loop {
        // Idle lanes take the next messages, from SHA-256's initial state.
        let mut fresh: u32 = 0;
        for l in bits(!busy & ((1 << LANES) - 1)) {
            if next == count {
                break;
            }
            let m = order[next];
            start(&mut lanes[l], m, msg(m));
            (next, fresh) = (next + 1, fresh | 1 << l);
        }
        busy |= fresh;
        if fresh != 0 {
            for (s, h) in state.iter_mut().zip(&h0) {
                *s = _mm512_mask_mov_epi32(*s, fresh as __mmask16, *h);
            }
        }
        let in_flight = busy.count_ones() as usize;
        if in_flight == 0 {
            return;
        }
        if next == count && in_flight <= TAIL {
            // The last few: one at a time, not in a register of idle lanes.
            store(&state, &mut words);
            for l in bits(busy) {
                let mut s = lane_state(&words, l);
                finish_alone(&lanes[l], &mut s);
                out(lanes[l].msg, digest_of(&s));
            }
            return;
        }
        // As many blocks as every busy lane has left, in one go. Where each
        // lane's blocks are this round, so that a step picks them with a
        // compare per lane and no write to the lanes: block `s` of a lane is
        // its whole block `s` while `s < whole`, then block `s - whole` of
        // its padded tail from the first not done (two blocks side by side
        // in `last`). An idle lane has a stride of 0 bytes and no end to its
        // whole blocks: it stays on the idle block.
        debug_assert!(busy != 0, "a round needs a busy lane, or `steps` stays usize::MAX");
        let mut steps = usize::MAX;
        let mut at = [IDLE_BLOCK.as_ptr(); LANES];
        let mut stride = [0usize; LANES];
        let mut whole = [usize::MAX; LANES];
        let mut tail = [IDLE_BLOCK.as_ptr(); LANES];
        for l in bits(busy) {
            let lane = &lanes[l];
            steps = steps.min(lane.left());
            (at[l], stride[l], whole[l]) = (lane.whole.as_ptr().cast(), 64, lane.whole.len());
            tail[l] = lane.last.as_ptr().cast::<u8>().wrapping_add(64 * lane.last_done);
        }
        for s in 0..steps {
            let blocks: [*const u8; LANES] = std::array::from_fn(|l| {
                if s < whole[l] { at[l].wrapping_add(stride[l] * s) } else { tail[l].wrapping_add(64 * (s - whole[l])) }
            });
            // SAFETY: each pointer is a whole 64-byte block (a message's, its
            // padded tail's or the idle block): `s` is below every busy
            // lane's blocks left.
            unsafe { compress(&mut state, &blocks) };
        }
        store(&state, &mut words);
        for l in bits(busy) {
            let lane = &mut lanes[l];
            lane.advance(steps);
            if lane.left() == 0 {
                out(lane.msg, digest_of(&lane_state(&words, l)));
                busy &= !(1 << l);
            }
        }
    }
}

/// The lanes whose bits are set in `mask`, lowest first.
fn bits(mut mask: u32) -> impl Iterator<Item = usize> {
    std::iter::from_fn(move || {
        (mask != 0).then(|| {
            let l = mask.trailing_zeros() as usize;
            mask &= mask - 1;
            l
        })
    })
}

/// [`Lane::start`] with the padded tail made in registers: the tail loaded
/// under a mask (the bytes past it zero), the `0x80` and the length in
/// bits put in place, each block stored whole. The same bytes as
/// [`super::super::pad_last`] (the lanes' tests compare the digests with
/// `sha2`'s at every length up to 300 bytes), without its calls to `memcpy` and `memset`
/// for a few dozen bytes, once per paragraph: they were ~1.5% of a JSONL
/// run's samples (issue 18, forty-sixth session).
#[inline]
#[target_feature(enable = "avx512f,avx512bw")]
fn start<'a>(lane: &mut Lane<'a>, msg: usize, bytes: &'a [u8]) {
    let (whole, tail) = bytes.as_chunks::<64>();
    let n = tail.len();
    // SAFETY: the masked load reads only the `n` (< 64) bytes of `tail`.
    let data = unsafe { _mm512_maskz_loadu_epi8((1u64 << n) - 1, tail.as_ptr().cast()) };
    let data = _mm512_or_si512(data, _mm512_maskz_set1_epi8(1u64 << n, i8::from_ne_bytes([0x80])));
    // The length in bits, big-endian, in the last 8 bytes of a block (the
    // eighth 64-bit lane; byte order swapped within it).
    let bits = (bytes.len() as u64).wrapping_mul(8).to_be();
    let length = _mm512_maskz_set1_epi64(0x80, bits as i64);
    let [first, second] = &mut lane.last;
    let used = if n < 56 {
        // SAFETY: one 64-byte store into the 64 bytes of `first`.
        unsafe { _mm512_storeu_si512(first.as_mut_ptr().cast(), _mm512_or_si512(data, length)) };
        1
    } else {
        // SAFETY: one 64-byte store into each block.
        unsafe {
            _mm512_storeu_si512(first.as_mut_ptr().cast(), data);
            _mm512_storeu_si512(second.as_mut_ptr().cast(), length);
        }
        2
    };
    (lane.msg, lane.whole, lane.last_count, lane.last_done) = (msg, whole, used, 0);
}

/// The messages' indices, those of more blocks first (a counting sort by
/// blocks, all of 16 or more in one bucket).
fn longest_first<'a>(count: usize, msg: &impl Fn(usize) -> &'a [u8]) -> Vec<usize> {
    const BUCKETS: usize = 16;
    let bucket = |i: usize| BUCKETS - 1 - ((msg(i).len() + 8) / 64).min(BUCKETS - 1);
    let mut starts = [0usize; BUCKETS + 1];
    let mut of = Vec::with_capacity(count);
    for i in 0..count {
        let b = bucket(i);
        of.push(b as u8);
        starts[b + 1] += 1;
    }
    for b in 0..BUCKETS {
        starts[b + 1] += starts[b];
    }
    let mut order = vec![0; count];
    for (i, b) in of.into_iter().enumerate() {
        order[starts[usize::from(b)]] = i;
        starts[usize::from(b)] += 1;
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
