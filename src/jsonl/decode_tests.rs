//! The fused pass equals the old composition: serde's decoding of the
//! string, then `split` (lines found, each normalised) of the text.

use proptest::prelude::*;

use super::*;
use crate::normalize::QuoteMode;
use crate::split::{LineBuilder, SplitMode, split};

/// The string literal of `chars`, each written as `how` says: 0 raw
/// (when JSON allows it), 1 a short escape (when there is one), 2 `\uXXXX`
/// (a surrogate pair above the BMP).
fn literal(chars: &[(char, u8)]) -> Vec<u8> {
    let mut out = b"\"".to_vec();
    for &(c, how) in chars {
        let short = match c {
            '"' => Some("\\\""),
            '\\' => Some("\\\\"),
            '/' => Some("\\/"),
            '\u{8}' => Some("\\b"),
            '\u{c}' => Some("\\f"),
            '\n' => Some("\\n"),
            '\r' => Some("\\r"),
            '\t' => Some("\\t"),
            _ => None,
        };
        let raw_ok = c != '"' && c != '\\' && c >= ' ';
        match (how, short) {
            (0, _) if raw_ok => out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes()),
            (0 | 1, Some(s)) => out.extend_from_slice(s.as_bytes()),
            _ => {
                for unit in c.encode_utf16(&mut [0; 2]) {
                    out.extend_from_slice(format!("\\u{unit:04x}").as_bytes());
                }
            }
        }
    }
    out.push(b'"');
    out
}

/// Decoded (and split in each mode), compared with serde and `split`.
/// Returns whether the one pass decided the string.
fn same_as_composition(lit: &[u8]) -> bool {
    let serde = |lit: &[u8]| -> Option<String> { serde_json::from_str(std::str::from_utf8(lit).ok()?).ok() };
    let plain = decode_string(lit, 0, &mut ());
    match &plain {
        // A string ends at its first unescaped quote (a mutant may hold one).
        Some((end, text)) => assert_eq!(Some(text), serde(&lit[..*end]).as_ref(), "{:?}", String::from_utf8_lossy(lit)),
        // Left to serde: the whole literal, where it is one, holds a surrogate escape.
        None => assert!(serde(lit).is_none() || lit.windows(3).any(|w| w == br"\ud" || w == br"\uD")),
    }
    for mode in [SplitMode::Auto, SplitMode::Line, SplitMode::Blank] {
        for quotes in [QuoteMode::Fold, QuoteMode::Keep] {
            let mut lines = LineBuilder::new(lit.len(), mode, quotes);
            let fused = decode_string(lit, 0, &mut lines);
            assert_eq!(fused, plain, "decoding does not depend on the split");
            if let Some((_, text)) = fused {
                assert_eq!(lines.finish(&text), split(&text, mode, quotes), "{text:?} {mode:?} {quotes:?}");
            }
            // The SSE2 loop too, which `decode_string` does not take where
            // the processor has AVX2.
            #[cfg(target_arch = "x86_64")]
            {
                let mut lines = LineBuilder::new(lit.len(), mode, quotes);
                let sse2 = |b: &[u8], from| next_stop_sse2(b, from, Carry::start(from));
                let fused = decode_with(lit, 0, &mut lines, sse2);
                assert_eq!(fused, plain, "the SSE2 loop decodes as the chosen one");
                if let Some((_, text)) = fused {
                    assert_eq!(lines.finish(&text), split(&text, mode, quotes), "SSE2: {text:?} {mode:?} {quotes:?}");
                }
            }
        }
    }
    plain.is_some()
}

fn heavy_char() -> impl Strategy<Value = char> {
    prop_oneof![
        6 => prop::sample::select(b"ab .,".to_vec()).prop_map(char::from),
        3 => prop::sample::select(vec![' ', '\t', '\n', '\r', '\u{b}', '\u{c}', '\u{0}', '\u{1f}', '\u{7f}', '"', '\\', '/', '\u{8}']),
        2 => prop::sample::select(vec![
            '\u{85}', '\u{2028}', '\u{2029}', '\u{a0}', '\u{2019}', '\u{201c}', '\u{e9}', '\u{301}', '\u{ad}',
            '\u{200b}', '\u{feff}', '\u{3000}', '\u{2026}', '\u{1f600}', '\u{ff02}', '\u{c2}', '\u{e2}',
        ]),
        // Letters of other scripts, copied by the line builder a run at a
        // time, with what interrupts such a run: a combining mark, a folded
        // quote, a compatibility character, a non-ASCII space.
        3 => prop::sample::select(vec![
            '\u{416}', '\u{438}', '\u{439}', '\u{3b1}', '\u{5d0}', '\u{4e2d}', '\u{3042}', '\u{306}', '\u{ab}',
            '\u{bb}', '\u{fb01}', '\u{2014}', '\u{2009}',
        ]),
        1 => any::<char>(),
    ]
}

/// Failures are not persisted to a `proptest-regressions` folder (the
/// repository's top level stays as the README lists it); the cases proptest
/// shrank to so far are kept as plain tests in `recorded_shrunk_cases`.
fn config(cases: u32) -> ProptestConfig {
    ProptestConfig { cases, failure_persistence: None, ..ProptestConfig::default() }
}

/// The fused pass over a decoded text ([`feed_text`]), in each mode,
/// compared with `split`.
fn feed_text_splits_as_split(text: &str) {
    for mode in [SplitMode::Auto, SplitMode::Line, SplitMode::Blank] {
        for quotes in [QuoteMode::Fold, QuoteMode::Keep] {
            let mut lines = LineBuilder::new(text.len(), mode, quotes);
            feed_text(text, &mut lines);
            assert_eq!(lines.finish(text), split(text, mode, quotes), "{text:?} {mode:?} {quotes:?}");
        }
    }
}

/// The validating pass over bytes ([`feed_bytes`]): it takes exactly the
/// bytes that are UTF-8 without a NUL, and splits them as [`feed_text`]
/// splits the text; anything else stops it at an offset no later than the
/// first NUL or invalid byte.
fn feed_bytes_takes_exactly_text_without_nul(b: &[u8]) {
    let mut lines = LineBuilder::new(b.len(), SplitMode::Auto, QuoteMode::Fold);
    let got = feed_bytes(b, &mut lines);
    match std::str::from_utf8(b) {
        Ok(text) if !b.contains(&0) => {
            assert_eq!(got, Ok(()), "{b:?}");
            assert_eq!(lines.finish(text), split(text, SplitMode::Auto, QuoteMode::Fold), "{b:?}");
        }
        Ok(_) => assert_eq!(got, Err(b.iter().position(|&c| c == 0).unwrap()), "{b:?}"),
        Err(e) => {
            let bad = b.iter().position(|&c| c == 0).unwrap_or(usize::MAX).min(e.valid_up_to());
            let at = got.expect_err("invalid UTF-8 taken");
            // The stretch of high bytes holding the invalid byte is refused whole.
            assert!(at <= bad && b[at..bad].iter().all(|&c| c >= 0x80), "{b:?}: stopped at {at}, bad at {bad}");
        }
    }
}

#[test]
fn feed_bytes_refuses_nul_invalid_utf8_and_utf16() {
    for b in [
        &b"plain text\nsecond line\n"[..],
        b"a\x00b",
        b"caf\xc3\xa9 \xe2\x80\x9cok\xe2\x80\x9d",
        b"Latin-1 \xa3 sign",
        b"\xff\xfeH\x00i\x00",
        b"\xfe\xff\x00H\x00i",
        b"truncated \xe2\x80",
        b"overlong \xc0\xaf and surrogate \xed\xa0\x80",
        b"\xef\xbb\xbfBOM then text\r\n",
        b"",
    ] {
        feed_bytes_takes_exactly_text_without_nul(b);
    }
}

proptest! {
    #![proptest_config(config(2000))]

    #[test]
    fn feed_bytes_over_text_and_damaged_text(
        chars in prop::collection::vec(heavy_char(), 0..100),
        damage in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..3),
    ) {
        let mut b = chars.into_iter().collect::<String>().into_bytes();
        feed_bytes_takes_exactly_text_without_nul(&b);
        for (at, byte) in damage {
            if !b.is_empty() {
                let i = at.index(b.len());
                b[i] = byte;
            }
        }
        feed_bytes_takes_exactly_text_without_nul(&b);
    }

    #[test]
    fn the_fused_pass_equals_decode_then_split(chars in prop::collection::vec((heavy_char(), 0u8..3), 0..120)) {
        let lit = literal(&chars);
        // Every string without a character above the BMP is decided here.
        let astral = chars.iter().any(|&(c, how)| c > '\u{ffff}' && how > 0);
        let decided = same_as_composition(&lit);
        prop_assert!(decided || astral);
        prop_assert_eq!(decode_string(&lit, 0, &mut ()).map(|(end, _)| end), decided.then_some(lit.len()));
    }

    #[test]
    fn the_fused_pass_over_a_decoded_text_equals_split(chars in prop::collection::vec(heavy_char(), 0..160)) {
        feed_text_splits_as_split(&chars.into_iter().collect::<String>());
    }

    #[test]
    fn long_ascii_runs_between_escapes(words in prop::collection::vec(("[a-z]{0,40}", 0u8..6), 0..20)) {
        let mut chars = Vec::new();
        for (w, sep) in words {
            chars.extend(w.chars().map(|c| (c, 0)));
            let s = ["\n", "  ", "\r\n", "\t", "\u{2029}", " "][usize::from(sep)];
            chars.extend(s.chars().map(|c| (c, 1)));
        }
        prop_assert!(same_as_composition(&literal(&chars)));
    }

    #[test]
    fn mutated_bytes_are_decided_as_serde_decides_or_left_to_it(
        chars in prop::collection::vec((heavy_char(), 0u8..3), 0..40),
        at in any::<prop::sample::Index>(),
        byte in prop::sample::select(b"\"\\u\x00\x80\xbf\xc2\xe2\xed\xf0\xffn".to_vec()),
    ) {
        let mut lit = literal(&chars);
        let i = 1 + at.index(lit.len() - 1);
        lit.insert(i, byte);
        // Cut at the first unescaped quote, as a line would end the string.
        same_as_composition(&lit);
    }
}

#[test]
fn edge_cases() {
    let cases: &[&[u8]] = &[
        b"\"\"",
        b"\"a\\r\\nb\\r\\r\\nc\\r\"",
        b"\"\\u000d\\u000a \\u000a\"",
        b"\"  lead\\ttrail \\t \\n\\n\\n x\\u0085y\\u2028z\\u2029\"",
        "\"\u{85}\u{2028}\u{2029}caf\u{e9}\u{2029}\"".as_bytes(),
        b"\"a\\u0000b\\u007f \\u0001 c\"",
        "\"\u{201c}q\u{201d} then plain ascii after a long run of words\\nnext\"".as_bytes(),
        b"\"\\u00e9\\u0301 x\"",
        b"\"\\rx\\u2028\\n\"",
    ];
    for lit in cases {
        assert!(same_as_composition(lit), "{:?}", String::from_utf8_lossy(lit));
    }
    // Decoded texts: tabs, raw controls, CRLF, long tidy and untidy ASCII
    // runs (past the sixteen-byte steps), quotes and backslashes as text.
    for text in [
        "",
        " ",
        "a\r\nb\r\r\nc\r",
        "  lead\ttrail \t \n\n\n x\u{85}y\u{2028}z\u{2029}",
        "a\u{0}b\u{7f} \u{1} c",
        "\"quoted\" and a back\\slash in a line long enough for two steps\nnext line  with  doubles   here",
        "\u{feff}Title\n\n\u{201c}Curly\u{201d} text with NBSP\u{a0}here and a tail without a stop",
        "ends with spaces   ",
        "one line without any stop at all and longer than sixteen bytes",
    ] {
        feed_text_splits_as_split(text);
    }
    // Left to the general path: surrogates, invalid UTF-8, raw controls, no end.
    for lit in [
        &b"\"\\ud83d\\ude00\""[..],
        b"\"\\ud800\"",
        b"\"a\xffb\"",
        b"\"\xe2\x80\"",
        b"\"a\nb\"",
        b"\"abc",
        b"\"\\u12\"",
    ] {
        assert!(!same_as_composition(lit), "{:?}", String::from_utf8_lossy(lit));
    }
}

/// `next_stop` by the definition, a byte at a time (elsewhere than
/// x86-64 the ASCII before a stop is always reported as untidy).
fn naive_stop(b: &[u8], from: usize) -> Option<(usize, bool)> {
    let at = (from..b.len()).find(|&i| b[i] == b'"' || b[i] == b'\\' || b[i] < 0x20 || b[i] >= 0x80)?;
    let untidy = (from..at).any(|i| b[i] == 0x7F || (b[i] == b' ' && b[i - 1] == b' '));
    Some((at, untidy || cfg!(not(target_arch = "x86_64"))))
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn next_stop_finds_the_first_stop_and_untidy_ascii_before_it(
        // Mostly plain bytes, so that whole 16-byte blocks without a stop occur.
        bytes in prop::collection::vec(prop_oneof![
            8 => Just(b'a'),
            3 => Just(b' '),
            1 => prop::sample::select(b"\"\\\x00\x1f\x7f\x80\xff\xc3\xe2".to_vec()),
        ], 0..200),
        from in 1usize..100,
    ) {
        // Byte `from - 1` is never a space where the decoder calls it.
        let mut b = vec![b'"'];
        b.extend(bytes);
        let from = from.min(b.len());
        if b[from - 1] == b' ' {
            b[from - 1] = b'n';
        }
        for (name, got) in every_next_stop(&b, from) {
            prop_assert_eq!(got, naive_stop(&b, from), "{}", name);
        }
    }
}

/// What each version of `next_stop` this processor can run gives: the one
/// chosen at run time, and on x86-64 the SSE2 one and (with AVX2) the AVX2
/// one, so that both are tested whichever the machine picks.
fn every_next_stop(b: &[u8], from: usize) -> Vec<(&'static str, Option<(usize, bool)>)> {
    #[allow(unused_mut)]
    let mut got = vec![("next_stop", next_stop(b, from))];
    #[cfg(target_arch = "x86_64")]
    {
        got.push(("sse2", next_stop_sse2(b, from, Carry::start(from))));
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the processor has AVX2 (checked just above).
            got.push(("avx2", unsafe { next_stop_avx2(b, from) }));
        }
    }
    got
}

#[test]
fn stops_at_quote_backslash_control_and_high_bytes_only() {
    for from in 1..20 {
        for special in [b'"', b'\\', 0, 0x1f, 0x80, 0xff] {
            let mut b = vec![b'x'; 40];
            b[from + 3] = special;
            b[from + 9] = 0x7f; // DEL is ASCII: passed over (and untidy)
            for (name, got) in every_next_stop(&b, from) {
                assert_eq!(got, naive_stop(&b, from), "{name}");
                assert_eq!(got.map(|s| s.0), Some(from + 3), "{name}: {special:#x} at {}", from + 3);
            }
            b[from + 1] = 0x7f;
            for (name, got) in every_next_stop(&b, from) {
                assert_eq!(got, Some((from + 3, true)), "{name}");
            }
        }
        for (name, got) in every_next_stop(&[b'x'; 80], from) {
            assert_eq!(got, None, "{name}");
        }
        // A pair of spaces across a 16-byte and across a 32-byte boundary,
        // and across the last 32-byte block and the 16-byte step after it.
        for pair in [from + 15, from + 31, from + 47] {
            let mut spaces = vec![b'x'; 80];
            spaces[pair] = b' ';
            spaces[pair + 1] = b' ';
            spaces[79] = b'"';
            for (name, got) in every_next_stop(&spaces, from) {
                assert_eq!(got, Some((79, true)), "{name}: pair at {pair}");
            }
            spaces[pair + 1] = b'y';
            for (name, got) in every_next_stop(&spaces, from) {
                assert_eq!(got, Some((79, false)), "{name}: one space at {pair}");
            }
        }
    }
}

/// The cases proptest shrank failures to while the fused pass was written.
#[test]
fn recorded_shrunk_cases() {
    // A DEL (here a high byte) after a double space, far from the start.
    let mut b = vec![b'"'];
    b.extend([b'a'; 70]);
    b.extend(*b"  aaaaaa\x80aaaaaaaa");
    assert_eq!(next_stop(&b, 56), naive_stop(&b, 56));
    // A space then an escaped letter.
    assert!(same_as_composition(&literal(&[('a', 0), (' ', 0), ('a', 1), ('a', 0)])));
    // A quote inserted anywhere into a string with a full-width quote.
    let chars = [
        ('a', 1),
        ('a', 0),
        ('a', 1),
        ('a', 0),
        ('a', 0),
        ('a', 0),
        ('a', 1),
        ('a', 0),
        ('a', 1),
        ('a', 1),
        ('a', 1),
        ('"', 0),
        ('a', 1),
        ('a', 1),
        ('a', 1),
        ('.', 0),
        (' ', 0),
        ('\u{ff02}', 1),
        ('"', 0),
        ('a', 0),
        ('a', 1),
        ('a', 0),
        ('a', 0),
        ('a', 1),
        ('\t', 0),
    ];
    let lit = literal(&chars);
    for i in 1..lit.len() {
        let mut cut = lit.clone();
        cut.insert(i, b'"');
        same_as_composition(&cut);
    }
}

/// `utf8_stretch` agrees with the end search plus `str::from_utf8` on
/// every stretch of two or three bytes from 0x80 up, on four-byte ones whose
/// last byte is one of six values, each followed by ASCII or the end, and on
/// longer valid ones (the property test below draws random bytes).
#[test]
fn utf8_stretch_agrees_with_the_standard_library_on_every_short_stretch() {
    // What the decoder did before `utf8_stretch`: the end found, then the
    // stretch validated by the standard library.
    fn by_std(b: &[u8], from: usize) -> Option<&str> {
        let end = b[from..].iter().position(|&c| c < 0x80).map_or(b.len(), |p| from + p);
        std::str::from_utf8(&b[from..end]).ok()
    }
    let high = 0x80..=0xFFu8;
    for a in high.clone() {
        for b in high.clone() {
            for tail in [&b""[..], b"x"] {
                let s = [&[a, b][..], tail].concat();
                assert_eq!(utf8_stretch(&s, 0), by_std(&s, 0), "{a:x} {b:x} {tail:?}");
            }
            for c in high.clone() {
                for d in [0x80, 0x8F, 0x90, 0xBF, 0xC0, b'y'] {
                    let s = [a, b, c, d, b'z'];
                    assert_eq!(utf8_stretch(&s, 0), by_std(&s, 0), "{a:x} {b:x} {c:x} {d:x}");
                }
            }
        }
    }
    for s in ["\u{1F600}", "\u{e9}\u{e9}", "\u{2019}\u{a0}", "\u{10FFFF}", "\u{416}\u{438}\u{4e2d}"] {
        assert_eq!(utf8_stretch(s.as_bytes(), 0), Some(s));
        let t = format!("{s} tail");
        assert_eq!(utf8_stretch(t.as_bytes(), 0), Some(s), "ends before the ASCII");
    }
    assert_eq!(utf8_stretch(&[0xF0, 0x9F, 0x98], 0), None);
    assert_eq!(utf8_stretch(&[0xED, 0xA0, 0x80], 0), None, "a surrogate");
    assert_eq!(utf8_stretch(b"ab\xc3\xa9cd", 2), Some("\u{e9}"), "from an offset");
}

proptest! {
    #![proptest_config(config(2000))]

    #[test]
    fn utf8_stretch_agrees_with_the_standard_library(
        b in prop::collection::vec(prop::sample::select(b"\x80\x8f\x90\x9f\xa0\xbf\xc0\xc2\xdf\xe0\xe1\xed\xee\xef\xf0\xf1\xf4\xf5\xffa".to_vec()), 0..12),
    ) {
        let by_std = {
            let end = b.iter().position(|&c| c < 0x80).unwrap_or(b.len());
            std::str::from_utf8(&b[..end]).ok()
        };
        prop_assert_eq!(utf8_stretch(&b, 0), by_std, "{:x?}", b);
    }
}
