//! The fast path agrees with the serde path on every line it accepts.

use proptest::prelude::*;

use super::*;
use std::ops::Range;

use crate::jsonl::{Name, Record, RecordError};
use crate::normalize::QuoteMode;
use crate::split::{LineBuilder, SplitMode};

/// What the serde path makes of a valid UTF-8 line.
fn slow(line: &[u8], start: usize, field: &str) -> Result<Scanned, RecordError> {
    let body = std::str::from_utf8(&line[start..]).map_err(|_| RecordError::Encoding(0))?;
    let (mut fields, at) = Record::parse_fields(body, field)?;
    let text = Record::decode_string(&body[fields[at].1.clone()], field)?;
    for (_, r) in &mut fields {
        *r = r.start + start..r.end + start;
    }
    Ok((fields, at, text))
}

/// `scan` decides only what serde accepts, and decides it the same way,
/// heard by no sink and by a line builder in two modes (whose split is
/// then `split` of the text).
fn agrees(line: &[u8], field: &str) -> bool {
    let start = if line.starts_with("\u{FEFF}".as_bytes()) { 3 } else { 0 };
    let fast = scan(line, start, field, &mut ());
    if let Some(fast) = &fast {
        // The scan says where a name stands; serde gives it decoded.
        let (fields, at, text) = fast;
        let decoded = |(k, v): &(Name, Range<usize>)| match k {
            Name::At(r) => (Name::Decoded(String::from_utf8(line[r.clone()].to_vec()).unwrap()), v.clone()),
            Name::Decoded(_) => panic!("the scan decoded a name"),
        };
        let fast = (fields.iter().map(decoded).collect::<Vec<_>>(), *at, text.clone());
        assert_eq!(Ok(&fast), slow(line, start, field).as_ref(), "line {:?}", String::from_utf8_lossy(line));
    }
    for (mode, quotes) in [(SplitMode::Auto, QuoteMode::Fold), (SplitMode::Blank, QuoteMode::Keep)] {
        let mut lines = LineBuilder::new(line.len(), mode, quotes);
        let fed = scan(line, start, field, &mut lines);
        assert_eq!(fed, fast, "a sink changed what is decided");
        if let Some((_, _, text)) = fed {
            assert_eq!(lines.finish(&text), crate::split::split(&text, mode, quotes));
        }
    }
    fast.is_some()
}

#[test]
fn common_lines_take_the_fast_path_with_the_same_result() {
    for line in [
        r#"{"id": "a1", "text": "x\ny", "metadata": {"n": 1.50, "z": [1,2]}, "source":"s"}"#,
        r#"  {"text":"caf\u00e9 \"q\" \\ \/ \b\f\r\t \u0000 \u00FF","id":-1.5e3,"a":[{"b":"}]\""}],"n":null}  "#,
        "\u{FEFF}{\"text\":\"\u{e9}\u{201c}\",\"x\":true,\"y\":false}\r",
        r#"{"text":""}"#,
        r#"{"a":{},"b":[],"text":"t","a":1}"#,
    ] {
        assert!(agrees(line.as_bytes(), "text"), "{line}");
    }
}

#[test]
fn what_it_leaves_to_serde() {
    for line in [
        r#"{"te\u0078t":"a"}"#,       // escaped name
        r#"{"text":"\ud83d\ude00"}"#, // surrogate pair
        r#"{"text":"a\ud800"}"#,      // lone surrogate
        r#"{"text":"a","text":"b"}"#, // duplicate
        r#"{"text":3}"#,              // not a string
        r#"{"body":"x"}"#,            // missing
        r#"{"text":"a","x":tru}"#,    // bad value
        r#"{"text":"a","x":01}"#,     // bad number
        r#"{"text":"a","x":[1,2}"#,   // bad nesting
        r#"{"text":"a"} x"#,          // trailing
        "{\"text\":\"a\tb\"}",        // control character
        r#"{"text":"a\x"}"#,          // bad escape
        r#"{"text":"a\u12"}"#,        // short escape
        r#"[1]"#,
        r#"{"text":"a",}"#,
    ] {
        assert!(!agrees(line.as_bytes(), "text"), "{line}");
    }
    assert!(!agrees(b"{\"text\":\"\xff\"}", "text")); // invalid UTF-8
    let deep = format!("{{\"text\":\"a\",\"x\":{}{}}}", "[".repeat(120), "]".repeat(120));
    assert!(!agrees(deep.as_bytes(), "text"));
}

#[test]
fn strings_are_written_exactly_as_serde_writes_them() {
    let all: String = (0u32..0x300).filter_map(char::from_u32).collect();
    for s in [all.as_str(), "", "plain", "\"\\\u{7f}\u{2028}\u{1F600}", "\u{1}x\u{1f}"] {
        let mut ours = Vec::new();
        write_str(&mut ours, s);
        assert_eq!(String::from_utf8(ours).unwrap(), serde_json::to_string(s).unwrap());
        // The SSE2 loop too, which `write_str` does not take where the
        // processor has AVX2.
        #[cfg(target_arch = "x86_64")]
        {
            let mut sse2 = Vec::new();
            write_str_with(&mut sse2, s, next_special_sse2);
            assert_eq!(String::from_utf8(sse2).unwrap(), serde_json::to_string(s).unwrap());
        }
    }
}

fn json_value() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(serde_json::Value::from),
        ".{0,8}".prop_map(serde_json::Value::from),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::from),
            prop::collection::vec(("[a-z\"\\\\]{0,3}", inner), 0..4)
                .prop_map(|kv| serde_json::Value::Object(kv.into_iter().collect())),
        ]
    })
}

proptest! {
    #[test]
    fn random_records_and_their_mutants_agree(
        text in "(.|\n|\"|\\\\|\u{1}){0,40}",
        other in json_value(),
        cut in any::<prop::sample::Index>(),
        byte in prop::sample::select(b"{}[]\",:\\ u0aex\n".to_vec()),
        pretty in any::<bool>(),
    ) {
        let mut rec = serde_json::Map::new();
        rec.insert("m".into(), other);
        rec.insert("text".into(), text.into());
        let rec = serde_json::Value::Object(rec);
        let line = if pretty { serde_json::to_string_pretty(&rec) } else { serde_json::to_string(&rec) }.unwrap();
        let line = line.into_bytes();
        // Every record serde writes is decided here (a name with `\` aside).
        prop_assert!(agrees(&line, "text") || line.windows(2).any(|w| w == b"\\\"" || w == b"\\\\"));
        let at = cut.index(line.len());
        let mut removed = line.clone();
        removed.remove(at);
        agrees(&removed, "text");
        let mut inserted = line;
        inserted.insert(at, byte);
        agrees(&inserted, "text");
    }
}

proptest! {
    #[test]
    fn next_special_finds_the_first_quote_backslash_or_control(
        // Mostly plain bytes, so that whole 16-byte blocks without one occur.
        bytes in prop::collection::vec(prop_oneof![
            6 => Just(b'a'),
            1 => prop::sample::select(b"a\"\\\x00\x1f\x20\x7f\x80\xff\xa2\xdc".to_vec()),
        ], 0..160),
        from in 0usize..80,
    ) {
        let naive = bytes.get(from..).and_then(|r| r.iter().position(|&c| c == b'"' || c == b'\\' || c < 0x20).map(|p| p + from));
        prop_assert_eq!(next_special(&bytes, from), naive);
        // Both x86-64 versions, whichever this processor picks.
        #[cfg(target_arch = "x86_64")]
        {
            prop_assert_eq!(next_special_sse2(&bytes, from), naive);
            if std::arch::is_x86_feature_detected!("avx2") {
                // SAFETY: the processor has AVX2 (checked just above).
                prop_assert_eq!(unsafe { next_special_avx2(&bytes, from) }, naive);
            }
        }
    }
}

proptest! {
    #[test]
    fn strings_of_any_length_and_escape_density_are_written_as_serde_writes_them(
        // Blocks of 32 bytes without an escape, escapes side by side and at
        // block edges, escapes of six bytes (controls) and non-ASCII text.
        pieces in prop::collection::vec(prop_oneof![
            8 => Just("abcdefgh"),
            3 => Just("x"),
            2 => Just("\n"),
            2 => Just("\""),
            1 => Just("\\"),
            1 => Just("\u{1}"),
            1 => Just("\t\u{1f}"),
            1 => Just("\u{2019}é"),
        ], 0..60),
        prefix in "[a-z]{0,40}",
        seed in any::<u64>(),
    ) {
        let s: String = pieces.concat();
        let mut ours = prefix.clone().into_bytes();
        // Sometimes onto a buffer with no room left, so that the room is grown mid-string.
        if seed % 2 == 0 {
            ours.shrink_to_fit();
        }
        write_str(&mut ours, &s);
        let mut expected = prefix.into_bytes();
        expected.extend_from_slice(serde_json::to_string(&s).unwrap().as_bytes());
        prop_assert_eq!(String::from_utf8(ours).unwrap(), String::from_utf8(expected).unwrap());
    }
}

proptest! {
    /// A value taken as valid without serde is one serde accepts, and the
    /// ASCII shortcut to a `str` gives what `from_utf8` gives.
    #[test]
    fn plainly_valid_values_are_valid_json(
        bytes in prop::collection::vec(prop::sample::select(b"\"\"\"\\019a-.e \x1f\x7f\xc3\xa9".to_vec()), 0..8),
    ) {
        if plainly_valid(&bytes) {
            prop_assert!(serde_json::from_slice::<serde::de::IgnoredAny>(&bytes).is_ok(), "{bytes:?}");
        }
        prop_assert_eq!(utf8(&bytes), std::str::from_utf8(&bytes).ok());
    }
}

#[test]
fn ids_as_records_hold_them_are_plainly_valid() {
    for id in [&b"\"bbc-business-001\""[..], b"\"\"", b"0", b"7", b"182715", b"\"a b/c:d\""] {
        assert!(plainly_valid(id), "{}", String::from_utf8_lossy(id));
    }
    for other in [
        &b"\"a\\\"b\""[..],
        b"\"a\\q\"",
        b"\"\\\"",
        b"\"caf\xc3\xa9\"",
        b"01",
        b"-1",
        b"1.5",
        b"null",
        b"\"",
        b"\"\t\"",
    ] {
        assert!(!plainly_valid(other), "{}", String::from_utf8_lossy(other));
    }
}
