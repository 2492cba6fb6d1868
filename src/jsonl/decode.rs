//! The text field's JSON string decoded in one pass over its bytes: the
//! escapes unescaped, the UTF-8 validated, and a [`TextSink`] told the text
//! on the way (the pipeline's line builder, which finds and normalises the
//! lines: the fused pass).
//!
//! One test per sixteen bytes finds the next byte that needs attention: a
//! quote, a backslash, a control character (refused, as serde refuses it),
//! or a byte with the high bit set. Everything before it is ASCII, so it
//! needs no UTF-8 validation: it is copied to the decoded text and handed
//! to the sink. A stretch of high bytes is validated by itself (a
//! character other than ASCII is made of high bytes only, so the maximal
//! stretch is valid exactly when the line is valid there). Anything not
//! understood here (a surrogate escape, an invalid byte) returns `None`,
//! and the record goes through the general path.

use super::{Record, RecordError, SharedLine};
use crate::read::EncodingPolicy;

/// What is told the text field's string while it is decoded (the fused
/// pass): the pipeline's line builder ([`crate::split::LineBuilder`]) finds
/// and normalises the lines on the way. `text` is always the decoded text
/// so far; `()` listens to nothing.
pub trait TextSink {
    /// ASCII without control characters was appended; unless `untidy`, it
    /// holds no DEL and no two spaces in a row.
    fn raw_ascii(&mut self, piece: &str, untidy: bool);
    /// ASCII from an escape (one character, not `\n` or `\r`) was appended.
    fn ascii(&mut self, piece: &str);
    /// `text[at]`, a `\n` or a `\r` from an escape, was appended.
    fn line_break(&mut self, text: &str, at: usize);
    /// `text[at..]`, characters other than ASCII, was appended.
    fn non_ascii(&mut self, text: &str, at: usize);
}

impl TextSink for () {
    fn raw_ascii(&mut self, _: &str, _: bool) {}
    fn ascii(&mut self, _: &str) {}
    fn line_break(&mut self, _: &str, _: usize) {}
    fn non_ascii(&mut self, _: &str, _: usize) {}
}

impl Record {
    /// [`Record::parse_bytes`], telling `sink` the text while it is decoded.
    /// Returns the record, the text, whether `sink` was told all of the
    /// text (the one-pass scan decided the line; otherwise it took the
    /// general path, for rare escapes, invalid UTF-8 or anything the scan
    /// leaves to serde, and what `sink` heard is to be thrown away), and
    /// whether invalid UTF-8 was repaired.
    #[allow(clippy::type_complexity)]
    pub fn parse_fed<S: TextSink>(
        line: impl Into<SharedLine>,
        text_field: &str,
        policy: EncodingPolicy,
        sink: &mut S,
    ) -> Result<(Record, String, bool, bool), (SharedLine, RecordError)> {
        let line = line.into();
        let start = if line.starts_with("\u{FEFF}".as_bytes()) { 3 } else { 0 };
        let (fields, text_at, text, fed, repaired) = match Self::parse_at(&line, start, text_field, policy, sink) {
            Ok(p) => p,
            Err(e) => return Err((line, e)),
        };
        Ok((Record { line, fields, text_at }, text, fed, repaired))
    }
}

/// Decodes the JSON string starting at `b[i] == '"'`: (end after the
/// closing quote, text); `sink` is told the text as it is decoded. `None`
/// for anything serde would refuse or that is left to it (surrogate
/// escapes, invalid UTF-8).
///
/// With AVX2 (checked once per string) the whole loop is compiled for it, so
/// that the scan to the next stop is inlined into it rather than called at
/// every stop.
pub(super) fn decode_string<S: TextSink>(b: &[u8], i: usize, sink: &mut S) -> Option<(usize, String)> {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the processor has AVX2 (checked just above).
        return unsafe { decode_string_avx2(b, i, sink) };
    }
    // Without AVX2 the SSE2 scan itself: `next_stop` would ask again at every stop.
    #[cfg(target_arch = "x86_64")]
    return decode_with(b, i, sink, |b, from| next_stop_sse2(b, from, Carry::start(from)));
    #[cfg(not(target_arch = "x86_64"))]
    decode_with(b, i, sink, next_stop)
}

/// [`decode_string`] compiled for AVX2, its scan inlined.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn decode_string_avx2<S: TextSink>(b: &[u8], i: usize, sink: &mut S) -> Option<(usize, String)> {
    // The closure has this function's AVX2, so it may call the AVX2 scan
    // (and it is inlined with it).
    decode_with(b, i, sink, |b, from| next_stop_avx2(b, from))
}

/// The body of [`decode_string`], with `next_stop` the scan to use.
#[inline(always)]
fn decode_with<S: TextSink>(
    b: &[u8],
    i: usize,
    sink: &mut S,
    next_stop: impl Fn(&[u8], usize) -> Option<(usize, bool)>,
) -> Option<(usize, String)> {
    // The decoded string is never longer than the rest of the line.
    let mut out = String::with_capacity(b.len() - i);
    let mut run = i + 1;
    let mut j = run;
    loop {
        let untidy;
        (j, untidy) = next_stop(b, j)?;
        let piece = ascii(&b[run..j]);
        out.push_str(piece);
        sink.raw_ascii(piece, untidy);
        match b[j] {
            b'"' => return Some((j + 1, out)),
            b'\\' => {
                let c = match *b.get(j + 1)? {
                    b'"' => '"',
                    b'\\' => '\\',
                    b'/' => '/',
                    b'b' => '\u{8}',
                    b'f' => '\u{c}',
                    b'n' => '\n',
                    b'r' => '\r',
                    b't' => '\t',
                    b'u' => {
                        let hex = b.get(j + 2..j + 6)?;
                        if !hex.iter().all(u8::is_ascii_hexdigit) {
                            return None;
                        }
                        let code = u32::from_str_radix(ascii(hex), 16).ok()?;
                        j += 4;
                        // Surrogates (pairs or lone) are left to serde.
                        char::from_u32(code)?
                    }
                    _ => return None,
                };
                j += 2;
                let at = out.len();
                out.push(c);
                match c {
                    '\n' | '\r' => sink.line_break(&out, at),
                    // `\"`, `\\`, `\/` and the like: printable and not a
                    // space, so tidy (copied as it is, not walked again).
                    '!'..='~' => sink.raw_ascii(&out[at..], false),
                    c if c.is_ascii() => sink.ascii(&out[at..]),
                    _ => sink.non_ascii(&out, at),
                }
            }
            c if c >= 0x80 => {
                let s = utf8_stretch(b, j)?;
                let at = out.len();
                out.push_str(s);
                sink.non_ascii(&out, at);
                j += s.len();
            }
            _ => return None, // a control character: serde refuses it
        }
        run = j;
    }
}

/// The fused pass over a text already decoded (a file's text, a CSV field):
/// `text` told to `sink` a piece at a time, as [`decode_string`] tells a
/// JSON string's, so that a [`crate::split::LineBuilder`] finds and
/// normalises its lines in the same one pass. Tidy ASCII between stops is
/// told raw; a quote, a backslash or a control character other than a line
/// break is told as ASCII on its own; the ASCII after the last stop is told
/// as ASCII (its tidiness unknown).
pub(crate) fn feed_text<S: TextSink>(text: &str, sink: &mut S) {
    let fed = feed(text.as_bytes(), sink, false);
    debug_assert!(fed.is_ok());
}

/// [`feed_text`] over bytes not yet known to be text (a file as read): the
/// UTF-8 validated on the way, as [`decode_string`] validates a JSON
/// string's (ASCII between stops needs none; each stretch of high bytes is
/// checked by itself). `Err(offset)` at the first NUL or invalid stretch:
/// what `sink` heard is then to be thrown away, and the bytes decoded by
/// [`crate::read::decode`], which reports or repairs them. Saves the
/// separate passes of `str::from_utf8` and the NUL search over every file
/// (4-5% of a tree run's own CPU on the bench tree).
pub(crate) fn feed_bytes<S: TextSink>(bytes: &[u8], sink: &mut S) -> Result<(), usize> {
    feed(bytes, sink, true)
}

/// The body of [`feed_text`] and [`feed_bytes`]; with `check`, a NUL or an
/// invalid stretch of high bytes stops the pass. Without it, `b` must be
/// valid UTF-8.
#[inline(always)]
fn feed<S: TextSink>(b: &[u8], sink: &mut S, check: bool) -> Result<(), usize> {
    // SAFETY: `b[..end]` has been found valid: ASCII up to each stop (as
    // `next_stop` finds them), each stretch of high bytes checked (or all
    // of `b` valid, without `check`), and `end` ends a stop or a stretch.
    let text = |end: usize| unsafe { std::str::from_utf8_unchecked(&b[..end]) };
    let mut j = 0;
    while j < b.len() {
        // `b[j - 1]` is a stop or ends a non-ASCII stretch: never a space,
        // as `next_stop` needs.
        let Some((stop, untidy)) = next_stop(b, j) else {
            sink.ascii(ascii(&b[j..]));
            return Ok(());
        };
        if stop > j {
            sink.raw_ascii(ascii(&b[j..stop]), untidy);
        }
        match b[stop] {
            b'\n' | b'\r' => {
                sink.line_break(text(stop + 1), stop);
                j = stop + 1;
            }
            0 if check => return Err(stop),
            c if c < 0x80 => {
                sink.ascii(ascii(&b[stop..=stop]));
                j = stop + 1;
            }
            _ => {
                let end = match check {
                    true => utf8_stretch(b, stop).ok_or(stop)?.len() + stop,
                    false => non_ascii_end(b, stop),
                };
                sink.non_ascii(text(end), stop);
                j = end;
            }
        }
    }
    Ok(())
}

/// Where the stretch of bytes from 0x80 up that starts at `b[from]` ends.
#[inline]
fn non_ascii_end(b: &[u8], from: usize) -> usize {
    b[from..].iter().position(|&c| c < 0x80).map_or(b.len(), |p| from + p)
}

/// The stretch of bytes from 0x80 up that starts at `b[from]` (it ends
/// before the next ASCII byte, or with `b`) as a `str`, when it is valid
/// UTF-8. In news text a stretch is one character (a curly quote, a dash,
/// NBSP, an accented letter) or a word of another script: each sequence is
/// checked by the table of well-formed sequences (Unicode 16, table 3-7)
/// while the end is looked for, in one pass and without a call to
/// `str::from_utf8` (which took ~8% of a run over Cyrillic text, with the
/// separate search for the end).
#[inline]
fn utf8_stretch(b: &[u8], from: usize) -> Option<&str> {
    let cont = |i: usize| b.get(i).is_some_and(|&c| c & 0xC0 == 0x80);
    let within = |i: usize, r: std::ops::RangeInclusive<u8>| b.get(i).is_some_and(|c| r.contains(c));
    let mut i = from;
    while let Some(&c0) = b.get(i) {
        let len = match c0 {
            0x00..=0x7F => break,
            0xC2..=0xDF if cont(i + 1) => 2,
            0xE0 if within(i + 1, 0xA0..=0xBF) && cont(i + 2) => 3,
            0xE1..=0xEC | 0xEE..=0xEF if cont(i + 1) && cont(i + 2) => 3,
            0xED if within(i + 1, 0x80..=0x9F) && cont(i + 2) => 3,
            0xF0 if within(i + 1, 0x90..=0xBF) && cont(i + 2) && cont(i + 3) => 4,
            0xF1..=0xF3 if cont(i + 1) && cont(i + 2) && cont(i + 3) => 4,
            0xF4 if within(i + 1, 0x80..=0x8F) && cont(i + 2) && cont(i + 3) => 4,
            _ => return None,
        };
        i += len;
    }
    // SAFETY: `b[from..i]` is a series of well-formed sequences.
    Some(unsafe { std::str::from_utf8_unchecked(&b[from..i]) })
}

/// Bytes known to be ASCII as a `str`.
#[inline]
fn ascii(b: &[u8]) -> &str {
    debug_assert!(b.is_ascii());
    // SAFETY: callers pass only bytes below 0x80 (found so by `next_stop`,
    // or checked hex digits), and ASCII is valid UTF-8.
    unsafe { std::str::from_utf8_unchecked(b) }
}

/// The first `i >= from` where `b[i]` is `"`, `\\`, a control character
/// (below 0x20) or not ASCII (0x80 and up), and whether the ASCII before it
/// may be *untidy* (hold a DEL or two spaces in a row: then normalising it
/// is more than copying it).
///
/// On x86-64, 32 bytes per step with AVX2 where the processor has it (checked
/// at run time; the check is a load of a cached flag), else sixteen with SSE2
/// (part of every x86-64 processor): one mask each of the stops, the spaces
/// and the DELs; the first stop is the lowest bit, and untidiness is read off
/// the masks below it. `b[from - 1]` is never a space (it ends an escape or a
/// non-ASCII stretch, or is the opening quote), so a pair of spaces cannot
/// straddle `from`.
#[cfg(target_arch = "x86_64")]
#[inline]
fn next_stop(b: &[u8], from: usize) -> Option<(usize, bool)> {
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the processor has AVX2 (checked just above).
        unsafe { next_stop_avx2(b, from) }
    } else {
        next_stop_sse2(b, from, Carry::start(from))
    }
}

/// Where a scan for [`next_stop`] goes on: at `b[at]`, with the ASCII from
/// `from` up to it untidy or not, and `prev_space` 1 when `b[at - 1]` is a
/// space that may start a pair.
#[cfg(target_arch = "x86_64")]
#[derive(Clone, Copy)]
struct Carry {
    at: usize,
    untidy: bool,
    prev_space: u64,
}

#[cfg(target_arch = "x86_64")]
impl Carry {
    /// A scan starting at `from`.
    fn start(from: usize) -> Carry {
        Carry { at: from, untidy: false, prev_space: 0 }
    }
}

/// [`next_stop`] 32 bytes per step; the last 31 bytes or fewer are left to
/// [`next_stop_sse2`], which takes the state over.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
#[inline]
fn next_stop_avx2(b: &[u8], from: usize) -> Option<(usize, bool)> {
    use std::arch::x86_64::{
        _mm256_cmpeq_epi8, _mm256_cmpgt_epi8, _mm256_loadu_si256, _mm256_movemask_epi8, _mm256_or_si256,
        _mm256_set1_epi8,
    };
    let mut i = from;
    let mut untidy = false;
    let mut prev_space = 0;
    while let Some(Ok(block)) = b.get(i..i + 32).map(<&[u8; 32]>::try_from) {
        // SAFETY: the load reads the 32 bytes of `block` (unaligned).
        let v = unsafe { _mm256_loadu_si256(block.as_ptr().cast()) };
        // Signed: a byte from 0x80 up is negative, so below 0x20 too.
        let low = _mm256_cmpgt_epi8(_mm256_set1_epi8(0x20), v);
        let quote = _mm256_cmpeq_epi8(v, _mm256_set1_epi8(byte(b'"')));
        let backslash = _mm256_cmpeq_epi8(v, _mm256_set1_epi8(byte(b'\\')));
        let stops = mask32(_mm256_movemask_epi8(_mm256_or_si256(_mm256_or_si256(quote, backslash), low)));
        let spaces = mask32(_mm256_movemask_epi8(_mm256_cmpeq_epi8(v, _mm256_set1_epi8(byte(b' ')))));
        let dels = mask32(_mm256_movemask_epi8(_mm256_cmpeq_epi8(v, _mm256_set1_epi8(byte(0x7F)))));
        if let Some(at) = fold_block((stops, spaces, dels), 32, &mut untidy, &mut prev_space) {
            return Some((i + at, untidy));
        }
        i += 32;
    }
    next_stop_sse2(b, from, Carry { at: i, untidy, prev_space })
}

/// One block's masks (bit k for byte k of a block of `width` bytes: the
/// stops, the spaces, the DELs) taken into the scan: the offset of the
/// block's first stop, with `untidy` told about the bytes before it; or,
/// when it holds none, `None`, with `untidy` told about the whole block
/// and `prev_space` whether its last byte is a space.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn fold_block(
    (stops, spaces, dels): (u64, u64, u64),
    width: u32,
    untidy: &mut bool,
    prev_space: &mut u64,
) -> Option<usize> {
    // Bit k: byte k is a DEL, or a space after a space.
    let odd = dels | (spaces & ((spaces << 1) | *prev_space));
    if stops != 0 {
        let at = stops.trailing_zeros();
        *untidy |= odd & ((1 << at) - 1) != 0;
        return Some(at as usize);
    }
    *untidy |= odd != 0;
    *prev_space = spaces >> (width - 1);
    None
}

/// A byte as the signed lane value the compare intrinsics take.
#[cfg(target_arch = "x86_64")]
#[inline]
pub(super) fn byte(c: u8) -> i8 {
    i8::from_ne_bytes([c])
}

/// The 32 lane bits of an AVX2 `movemask`, widened (bit k for byte k).
#[cfg(target_arch = "x86_64")]
#[inline]
fn mask32(m: i32) -> u64 {
    u64::from(m.cast_unsigned())
}

/// [`next_stop`] sixteen bytes per step with SSE2, from `carry` on.
#[cfg(target_arch = "x86_64")]
#[inline]
fn next_stop_sse2(b: &[u8], from: usize, carry: Carry) -> Option<(usize, bool)> {
    let Carry { at: mut i, mut untidy, mut prev_space } = carry;
    while let Some(Ok(block)) = b.get(i..i + 16).map(<&[u8; 16]>::try_from) {
        let (stops, spaces, dels) = masks(block);
        let widened = (u64::from(stops), u64::from(spaces), u64::from(dels));
        if let Some(at) = fold_block(widened, 16, &mut untidy, &mut prev_space) {
            return Some((i + at, untidy));
        }
        i += 16;
    }
    while let Some(&c) = b.get(i) {
        if c == b'"' || c == b'\\' || c.wrapping_sub(0x20) >= 0x60 {
            return Some((i, untidy));
        }
        untidy |= c == 0x7F || (c == b' ' && i > from && b[i - 1] == b' ');
        i += 1;
    }
    None
}

/// Bit masks of the sixteen bytes of `block` (bit k for byte k): the
/// stops of [`next_stop`], the spaces, the DELs.
#[cfg(target_arch = "x86_64")]
#[inline]
fn masks(block: &[u8; 16]) -> (u32, u32, u32) {
    use std::arch::x86_64::{
        _mm_cmpeq_epi8, _mm_cmpgt_epi8, _mm_loadu_si128, _mm_movemask_epi8, _mm_or_si128, _mm_set1_epi8,
    };
    // SAFETY: SSE2 is enabled on every x86-64 target; the load reads the
    // sixteen bytes of `block` (unaligned).
    let (stops, spaces, dels) = unsafe {
        let v = _mm_loadu_si128(block.as_ptr().cast());
        let eq = |c: u8| _mm_cmpeq_epi8(v, _mm_set1_epi8(byte(c)));
        // Signed: a byte from 0x80 up is negative, so below 0x20 too.
        let low = _mm_cmpgt_epi8(_mm_set1_epi8(0x20), v);
        let stops = _mm_or_si128(_mm_or_si128(eq(b'"'), eq(b'\\')), low);
        (_mm_movemask_epi8(stops), _mm_movemask_epi8(eq(b' ')), _mm_movemask_epi8(eq(0x7F)))
    };
    (stops.cast_unsigned(), spaces.cast_unsigned(), dels.cast_unsigned())
}

/// [`next_stop`] elsewhere: the stop found sixteen bytes per step without
/// branches (the compiler's vector compares), then by SWAR in its block;
/// the ASCII before it is always reported as possibly untidy.
#[cfg(not(target_arch = "x86_64"))]
#[inline]
fn next_stop(b: &[u8], from: usize) -> Option<(usize, bool)> {
    let mut i = from;
    let rest = b.get(from..)?;
    let mut chunks = rest.chunks_exact(16);
    for chunk in &mut chunks {
        let mut any = false;
        for &c in chunk {
            any |= (c == b'"') | (c == b'\\') | (c.wrapping_sub(0x20) >= 0x60);
        }
        if any {
            let (lo, hi) = chunk.split_at(8);
            return Some((
                match stop_in(lo) {
                    Some(p) => i + p,
                    None => i + 8 + stop_in(hi).unwrap_or(0),
                },
                true,
            ));
        }
        i += 16;
    }
    let tail = chunks.remainder();
    tail.iter().position(|&c| c == b'"' || c == b'\\' || c.wrapping_sub(0x20) >= 0x60).map(|p| (i + p, true))
}

/// The first of eight bytes that [`next_stop`] stops at: as
/// `scan::special_in`, plus any byte with its high bit set.
#[cfg(not(target_arch = "x86_64"))]
fn stop_in(w: &[u8]) -> Option<usize> {
    let (w, special) = super::scan::special_mask(w);
    super::scan::first_flagged(special | (w & super::scan::HIGH))
}

#[cfg(test)]
#[path = "decode_tests.rs"]
mod tests;
