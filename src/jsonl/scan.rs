//! The fast path of [`super::Record::parse_bytes`]: a record read without a
//! parse tree, and JSON strings written without serde.
//!
//! [`scan`] walks the top level of a line by hand: it finds each field's
//! name and the byte range of its value, decodes the text field's string in
//! one pass (copying the runs between escapes, validating its UTF-8, and,
//! for the pipeline, splitting and normalising its lines on the way: see
//! [`super::decode`]), and hands every *other* value to `serde_json` to
//! validate (they are small: ids, metadata). It accepts only what it
//! understands completely: a line that is valid UTF-8 (checked piece by
//! piece, not as a whole),
//! field names without escapes, a text string without surrogate escapes, no
//! duplicate or missing text field, nesting under 100 levels. Anything else
//! returns `None` and the line goes through the general serde path, which
//! says exactly what is wrong; so the two paths agree on every line (the
//! tests compare them), and the fast one only decides the common case.
//!
//! [`write_str`] escapes a string exactly as `serde_json::to_writer` does
//! (`\"`, `\\`, `\b \f \n \r \t`, other control characters as `\u00xx`),
//! copying runs of bytes that need no escape.

use std::ops::Range;

use super::Name;
use super::decode::{TextSink, decode_string};

/// Fields (name, raw value range in `line`), the index of the text field,
/// and its decoded text: what the serde path would return for the line
/// (which gives the names decoded, not where they stand).
pub(super) type Scanned = (Vec<(Name, Range<usize>)>, usize, String);

/// Deeper nesting than this goes to serde (whose limit is 128 levels).
const MAX_DEPTH: usize = 100;

/// Scans `line[start..]` (`start` skips a byte order mark); `sink` is told
/// the text as it is decoded. `None`: not decided here, use the serde path
/// (and forget what `sink` heard).
///
/// The line is not validated as UTF-8 as a whole: every byte of it is in
/// the structure (matched as ASCII), a name or a value (each validated:
/// names and other values by `from_utf8`, the text by the decoder).
pub(super) fn scan<S: TextSink>(line: &[u8], start: usize, text_field: &str, sink: &mut S) -> Option<Scanned> {
    let b = line.get(start..)?;
    let mut i = skip_ws(b, 0);
    if b.get(i) != Some(&b'{') {
        return None;
    }
    i = skip_ws(b, i + 1);
    let mut fields = Vec::with_capacity(4);
    let mut text: Option<(usize, String)> = None;
    if b.get(i) != Some(&b'}') {
        loop {
            // Name: a string without escapes or control characters.
            if b.get(i) != Some(&b'"') {
                return None;
            }
            let name_end = next_special(b, i + 1)?;
            if b[name_end] != b'"' {
                return None;
            }
            let name = utf8(&b[i + 1..name_end])?;
            let name_at = start + i + 1..start + name_end;
            i = skip_ws(b, name_end + 1);
            if b.get(i) != Some(&b':') {
                return None;
            }
            i = skip_ws(b, i + 1);
            let value_start = i;
            if name == text_field {
                if text.is_some() || b.get(i) != Some(&b'"') {
                    return None; // duplicate, or not a string: serde names it
                }
                let (end, decoded) = decode_string(b, i, sink)?;
                text = Some((fields.len(), decoded));
                i = end;
            } else {
                i = skip_value(b, i)?;
                let value = &b[value_start..i];
                if !plainly_valid(value) {
                    serde_json::from_str::<serde::de::IgnoredAny>(utf8(value)?).ok()?;
                }
            }
            fields.push((Name::At(name_at), value_start + start..i + start));
            i = skip_ws(b, i);
            match b.get(i) {
                Some(b',') => i = skip_ws(b, i + 1),
                Some(b'}') => break,
                _ => return None,
            }
        }
    }
    if skip_ws(b, i + 1) != b.len() {
        return None;
    }
    let (text_at, text) = text?;
    Some((fields, text_at, text))
}

/// `b` as a `str`, when it is UTF-8: a name or a value is most often
/// ASCII, told at once (`from_utf8` costs ~80 instructions even for a
/// two-letter name, 0.6% of a `-j1` JSONL run with the checks of the ids).
#[inline]
pub(crate) fn utf8(b: &[u8]) -> Option<&str> {
    if b.is_ascii() {
        // SAFETY: ASCII is UTF-8.
        Some(unsafe { std::str::from_utf8_unchecked(b) })
    } else {
        std::str::from_utf8(b).ok()
    }
}

/// True for a value that is valid JSON on its face, without serde: a
/// string of printable ASCII with no quote or backslash inside, or digits
/// without a leading zero (a record's id, most often). Anything else is
/// checked by serde.
fn plainly_valid(v: &[u8]) -> bool {
    match v {
        [b'"', inner @ .., b'"'] => inner.iter().all(|&c| (0x20..0x7F).contains(&c) && c != b'"' && c != b'\\'),
        [b'0'] => true,
        [b'1'..=b'9', rest @ ..] => rest.iter().all(u8::is_ascii_digit),
        _ => false,
    }
}

/// The first `i >= from` where `b[i]` is `"`, `\\` or a control character
/// (below 0x20).
///
/// On x86-64, as [`super::decode`]'s `next_stop`: 32 bytes per step with
/// AVX2 where the processor has it (checked at run time), else sixteen with
/// SSE2 (part of every x86-64 processor); one mask of the bytes to stop at,
/// whose lowest bit is the answer. Blocks of 32 made of two SSE2 halves were
/// slower than sixteen (a string runs ~65 bytes between two `\n` escapes,
/// so the second half is often wasted); one AVX2 compare per 32 bytes is
/// 6M instructions fewer than sixteen over 40 MB of the bench's JSONL
/// (benches/JSONL.md, eleventh pass). (The portable version before it, kept
/// for other targets, tested sixteen bytes without branches and then
/// searched the block eight bytes at a time: 20M more instructions in a -j1
/// run over 40 MB of the bench's JSONL, 1.6% of those outside SHA-256.)
#[cfg(target_arch = "x86_64")]
#[inline]
pub(super) fn next_special(b: &[u8], from: usize) -> Option<usize> {
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the processor has AVX2 (checked just above).
        unsafe { next_special_avx2(b, from) }
    } else {
        next_special_sse2(b, from)
    }
}

/// [`next_special`] 32 bytes per step; the last 31 bytes or fewer are left
/// to [`next_special_sse2`].
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
#[inline]
pub(super) fn next_special_avx2(b: &[u8], from: usize) -> Option<usize> {
    use std::arch::x86_64::_mm256_loadu_si256;
    let mut i = from;
    while let Some(Ok(block)) = b.get(i..i + 32).map(<&[u8; 32]>::try_from) {
        // SAFETY: the load reads the 32 bytes of `block` (unaligned).
        let stops = special_mask32(unsafe { _mm256_loadu_si256(block.as_ptr().cast()) });
        if stops != 0 {
            return Some(i + stops.trailing_zeros() as usize);
        }
        i += 32;
    }
    next_special_sse2(b, i)
}

/// Bit k set when byte k of the 32 bytes `v` is `"`, `\\` or below 0x20.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
#[inline]
fn special_mask32(v: std::arch::x86_64::__m256i) -> u32 {
    use super::decode::byte;
    use std::arch::x86_64::{
        _mm256_cmpeq_epi8, _mm256_min_epu8, _mm256_movemask_epi8, _mm256_or_si256, _mm256_set1_epi8,
    };
    let quote = _mm256_cmpeq_epi8(v, _mm256_set1_epi8(byte(b'"')));
    let backslash = _mm256_cmpeq_epi8(v, _mm256_set1_epi8(byte(b'\\')));
    // Unsigned: min(v, 0x1F) == v exactly when v <= 0x1F.
    let control = _mm256_cmpeq_epi8(_mm256_min_epu8(v, _mm256_set1_epi8(0x1F)), v);
    _mm256_movemask_epi8(_mm256_or_si256(_mm256_or_si256(quote, backslash), control)).cast_unsigned()
}

/// [`next_special`] sixteen bytes per step with SSE2.
#[cfg(target_arch = "x86_64")]
#[inline]
pub(super) fn next_special_sse2(b: &[u8], from: usize) -> Option<usize> {
    let mut i = from;
    while let Some(Ok(block)) = b.get(i..i + 16).map(<&[u8; 16]>::try_from) {
        let stops = special_mask16(block);
        if stops != 0 {
            return Some(i + stops.trailing_zeros() as usize);
        }
        i += 16;
    }
    b.get(i..)?.iter().position(|&c| c == b'"' || c == b'\\' || c < 0x20).map(|p| i + p)
}

/// Bit k set when byte k of `block` is `"`, `\\` or below 0x20.
#[cfg(target_arch = "x86_64")]
#[inline]
fn special_mask16(block: &[u8; 16]) -> u32 {
    use super::decode::byte;
    use std::arch::x86_64::{
        _mm_cmpeq_epi8, _mm_loadu_si128, _mm_min_epu8, _mm_movemask_epi8, _mm_or_si128, _mm_set1_epi8,
    };
    // SAFETY: SSE2 is enabled on every x86-64 target; the load reads the
    // sixteen bytes of `block` (unaligned).
    let mask = unsafe {
        let v = _mm_loadu_si128(block.as_ptr().cast());
        let eq = |c: u8| _mm_cmpeq_epi8(v, _mm_set1_epi8(byte(c)));
        // Unsigned: min(v, 0x1F) == v exactly when v <= 0x1F.
        let control = _mm_cmpeq_epi8(_mm_min_epu8(v, _mm_set1_epi8(0x1F)), v);
        _mm_movemask_epi8(_mm_or_si128(_mm_or_si128(eq(b'"'), eq(b'\\')), control))
    };
    mask.cast_unsigned()
}

/// [`next_special`] elsewhere: sixteen bytes per step tested without
/// branches (the compiler turns that into vector compares); the block
/// holding one is then searched eight bytes at a time (SWAR, as serde_json
/// does).
#[cfg(not(target_arch = "x86_64"))]
#[inline]
pub(super) fn next_special(b: &[u8], from: usize) -> Option<usize> {
    let mut i = from;
    let rest = b.get(from..)?;
    let mut chunks = rest.chunks_exact(16);
    for chunk in &mut chunks {
        let mut any = false;
        for &c in chunk {
            any |= (c == b'"') | (c == b'\\') | (c < 0x20);
        }
        if any {
            let (lo, hi) = chunk.split_at(8);
            return Some(match special_in(lo) {
                Some(p) => i + p,
                None => i + 8 + special_in(hi).unwrap_or(0),
            });
        }
        i += 16;
    }
    let tail = chunks.remainder();
    tail.iter().position(|&c| c == b'"' || c == b'\\' || c < 0x20).map(|p| i + p)
}

/// The first of eight bytes that is `"`, `\\` or below 0x20.
#[cfg(not(target_arch = "x86_64"))]
fn special_in(w: &[u8]) -> Option<usize> {
    first_flagged(special_mask(w).1)
}

/// Eight bytes `w` read little-endian, and a mask with the high bit set in
/// each byte that is `"`, `\\` or below 0x20. Borrows only flag bytes above
/// a flagged one, so the lowest flag is exact.
#[cfg(not(target_arch = "x86_64"))]
pub(super) fn special_mask(w: &[u8]) -> (u64, u64) {
    const L: u64 = 0x0101_0101_0101_0101;
    let mut word = [0u8; 8];
    word.copy_from_slice(w);
    let w = u64::from_le_bytes(word);
    // A zero byte of `w ^ c*L` is a byte equal to c; `w - 0x20*L` borrows
    // at a byte below 0x20.
    let quote = (w ^ (L * u64::from(b'"'))).wrapping_sub(L);
    let backslash = (w ^ (L * u64::from(b'\\'))).wrapping_sub(L);
    let control = w.wrapping_sub(L * 0x20);
    (w, (quote | backslash | control) & !w & HIGH)
}

/// The high bit of every byte of a word.
#[cfg(not(target_arch = "x86_64"))]
pub(super) const HIGH: u64 = 0x8080_8080_8080_8080;

/// The index of the lowest byte flagged in `mask`.
#[cfg(not(target_arch = "x86_64"))]
pub(super) fn first_flagged(mask: u64) -> Option<usize> {
    (mask != 0).then(|| (mask.trailing_zeros() / 8) as usize)
}

fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while let Some(b' ' | b'\t' | b'\n' | b'\r') = b.get(i) {
        i += 1;
    }
    i
}

/// The end of the string starting at `b[i] == '"'` (after its closing
/// quote), escapes skipped, not checked.
fn skip_string(b: &[u8], mut i: usize) -> Option<usize> {
    i += 1;
    loop {
        i = next_special(b, i)?;
        match b[i] {
            b'"' => return Some(i + 1),
            b'\\' => i += 2,
            _ => i += 1, // a control character: serde refuses it later
        }
    }
}

/// The end of the value starting at `i`: its extent only; serde checks it.
fn skip_value(b: &[u8], i: usize) -> Option<usize> {
    match b.get(i)? {
        b'"' => skip_string(b, i),
        b'{' | b'[' => {
            let mut depth = 0usize;
            let mut j = i;
            loop {
                match b.get(j)? {
                    b'"' => {
                        j = skip_string(b, j)?;
                        continue;
                    }
                    b'{' | b'[' => {
                        depth += 1;
                        if depth > MAX_DEPTH {
                            return None;
                        }
                    }
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return Some(j + 1);
                        }
                    }
                    _ => {}
                }
                j += 1;
            }
        }
        _ => {
            let len = b[i..].iter().position(|c| matches!(c, b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r'));
            Some(i + len.unwrap_or(b.len() - i))
        }
    }
}

/// Appends `s` as a JSON string literal, byte-identical to
/// `serde_json::to_writer(out, s)`.
///
/// With AVX2 (checked once per string) the loop is compiled for it, the scan
/// inlined into it.
pub(super) fn write_str(out: &mut Vec<u8>, s: &str) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the processor has AVX2 (checked just above).
        return unsafe { write_str_avx2(out, s) };
    }
    // Without AVX2 the SSE2 scan itself: `next_special` would ask again at every stop.
    #[cfg(target_arch = "x86_64")]
    return write_str_with(out, s, next_special_sse2);
    #[cfg(not(target_arch = "x86_64"))]
    write_str_with(out, s, next_special);
}

/// [`write_str`] with AVX2, 32 bytes per step, each block stored whole
/// before it is looked at: a block without a byte to escape is then done,
/// and one with such a byte keeps the bytes before it and goes on after it
/// (its escape written in between). So a run between two escapes costs no
/// copy call of its own: news text has a `\n` or a `"` every few dozen
/// bytes. The last 31 bytes or fewer go through [`write_escaped`].
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn write_str_avx2(out: &mut Vec<u8>, s: &str) {
    use std::arch::x86_64::{_mm256_loadu_si256, _mm256_storeu_si256};
    /// Room a step may fill: a block and one escape.
    const STEP: usize = 32 + 6;
    let b = s.as_bytes();
    out.reserve(b.len() + 2 + STEP);
    out.push(b'"');
    let mut i = 0;
    while let Some(Ok(block)) = b.get(i..i + 32).map(<&[u8; 32]>::try_from) {
        if out.capacity() - out.len() < STEP {
            out.reserve(b.len() - i + STEP);
        }
        // SAFETY: the load reads the 32 bytes of `block` (unaligned).
        let v = unsafe { _mm256_loadu_si256(block.as_ptr().cast()) };
        let stops = special_mask32(v);
        let len = out.len();
        // SAFETY: the spare room holds at least STEP > 32 bytes (checked
        // above); the store writes the first 32 of them (unaligned).
        unsafe { _mm256_storeu_si256(out.spare_capacity_mut().as_mut_ptr().cast(), v) };
        let keep = if stops == 0 { 32 } else { stops.trailing_zeros() as usize };
        // SAFETY: the first `keep` (at most 32) spare bytes were just written.
        unsafe { out.set_len(len + keep) };
        if stops == 0 {
            i += 32;
            continue;
        }
        push_escape(out, block[keep]);
        i += keep + 1;
    }
    write_escaped(out, b, i, next_special_sse2);
    out.push(b'"');
}

/// The body of [`write_str`], with `next_special` the scan to use.
#[inline(always)]
fn write_str_with(out: &mut Vec<u8>, s: &str, next_special: impl Fn(&[u8], usize) -> Option<usize>) {
    let b = s.as_bytes();
    out.reserve(b.len() + 2);
    out.push(b'"');
    write_escaped(out, b, 0, next_special);
    out.push(b'"');
}

/// `b[from..]` escaped, appended to `out` (no quotes).
#[inline(always)]
fn write_escaped(out: &mut Vec<u8>, b: &[u8], from: usize, next_special: impl Fn(&[u8], usize) -> Option<usize>) {
    let mut run = from;
    while let Some(i) = next_special(b, run) {
        out.extend_from_slice(&b[run..i]);
        push_escape(out, b[i]);
        run = i + 1;
    }
    out.extend_from_slice(&b[run..]);
}

/// Appends the escape of `c`, a `"`, a `\` or a control character.
#[inline(always)]
fn push_escape(out: &mut Vec<u8>, c: u8) {
    match c {
        b'"' => out.extend_from_slice(b"\\\""),
        b'\\' => out.extend_from_slice(b"\\\\"),
        0x08 => out.extend_from_slice(b"\\b"),
        0x0c => out.extend_from_slice(b"\\f"),
        b'\n' => out.extend_from_slice(b"\\n"),
        b'\r' => out.extend_from_slice(b"\\r"),
        b'\t' => out.extend_from_slice(b"\\t"),
        _ => {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            out.extend_from_slice(&[b'\\', b'u', b'0', b'0', HEX[usize::from(c >> 4)], HEX[usize::from(c & 15)]]);
        }
    }
}

#[cfg(test)]
#[path = "scan_tests.rs"]
mod tests;
