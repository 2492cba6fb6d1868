//! Unit tests of `jsonl`.

use super::*;

#[test]
fn replaces_text_and_keeps_other_fields_in_order_byte_for_byte() {
    let line = r#"{"id": "a1", "text": "x\ny", "metadata": {"n": 1.50, "z": [1,2]}, "source":"s"}"#;
    let (rec, text) = Record::parse(line.to_owned(), "text").unwrap();
    assert_eq!(text, "x\ny");
    let mut out = Vec::new();
    rec.write_with_text("clean \u{e9}", &mut out);
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "{\"id\":\"a1\",\"text\":\"clean \u{e9}\",\"metadata\":{\"n\": 1.50, \"z\": [1,2]},\"source\":\"s\"}\n"
    );
}

#[test]
fn field_names_are_written_as_serde_writes_them() {
    // Names read as they stand in the line (no escape: copied, quotes and
    // all) and names decoded from escapes (written again by the escaper)
    // both come out as serde_json writes the name.
    for name in ["id", "caf\u{e9} \u{2028}\u{7f}", "a\"b", "tab\there", "\u{e9}", "back\\slash", ""] {
        let line = format!("{{{}: 1, \"text\": \"t\"}}", serde_json::to_string(name).unwrap());
        let escaped = line.replace('\u{e9}', "\\u00e9");
        for line in [line, escaped] {
            let (rec, _) = Record::parse(line.clone(), "text").unwrap();
            assert!(rec.has_field(name), "{line}");
            let mut out = Vec::new();
            rec.write_with_text("x", &mut out);
            let expected = format!("{{{}:1,\"text\":\"x\"}}\n", serde_json::to_string(name).unwrap());
            assert_eq!(String::from_utf8(out).unwrap(), expected, "{line}");
        }
    }
}

#[test]
fn errors_for_bad_lines() {
    let err = |l: &str| Record::parse(l.to_owned(), "text").unwrap_err();
    assert!(matches!(err("{nope"), (_, RecordError::Json(_))));
    assert!(matches!(err("[1,2]"), (_, RecordError::Json(_))));
    assert_eq!(err(r#"{"body":"x"}"#), (r#"{"body":"x"}"#.to_owned(), RecordError::MissingField("text".into())));
    assert_eq!(err(r#"{"text":3}"#).1, RecordError::NotAString("text".into()));
    assert_eq!(err(r#"{"text":"a","text":"b"}"#).1, RecordError::DuplicateField("text".into()));
}

#[test]
fn annotation_field_is_added_and_existing_fields_are_seen() {
    let (rec, _) = Record::parse(r#"{"text":"t","id":2}"#.to_owned(), "text").unwrap();
    assert!(rec.has_field("id") && !rec.has_field("newsdedup"));
    let mut out = Vec::new();
    rec.write_with_field("newsdedup", &serde_json::json!({"k": 1}), &mut out);
    assert_eq!(String::from_utf8(out).unwrap(), "{\"text\":\"t\",\"id\":2,\"newsdedup\":{\"k\":1}}\n");
}

#[test]
fn invalid_utf8_outside_the_text_is_kept_byte_for_byte() {
    let line = b"\xEF\xBB\xBF{\"id\":\"\xff\xfe bad\",\"text\":\"caf\xe9\"}\r".to_vec();
    let (rec, text, repaired) = Record::parse_bytes(line, "text", EncodingPolicy::Repair).unwrap();
    assert_eq!((text.as_str(), repaired), ("caf\u{e9}", true));
    let mut out = Vec::new();
    rec.write_with_text("x", &mut out);
    assert_eq!(out, b"{\"id\":\"\xff\xfe bad\",\"text\":\"x\"}\n");
    let strict = Record::parse_bytes(b"{\"text\":\"\xff\"}".to_vec(), "text", EncodingPolicy::Strict);
    assert_eq!(strict.unwrap_err().1, RecordError::Encoding(9));
    let in_name = Record::parse_bytes(b"{\"\xff\":1,\"text\":\"a\"}".to_vec(), "text", EncodingPolicy::Repair);
    assert_eq!(in_name.unwrap_err().1, RecordError::Encoding(2));
}

#[test]
fn a_lone_surrogate_is_named_as_such() {
    for (line, at) in [(r#"{"text":"a\ud800b"}"#, 2), (r#"{"text":"\\\udc00"}"#, 3), (r#"{"text":"\ud83d\ud83d"}"#, 1)]
    {
        let (_, e) = Record::parse(line.to_owned(), "text").unwrap_err();
        assert!(e.to_string().contains(&format!("at byte {at} of the value is a lone UTF-16 surrogate")), "{e}");
    }
    assert!(Record::parse(r#"{"text":"\ud83d\ude00 \\ud800"}"#.to_owned(), "text").is_ok());
}

#[test]
fn dolma_json_gz_is_a_jsonl_name() {
    assert!(is_jsonl_name(Path::new("dolma/0001.json.gz")));
}

#[test]
fn names_and_compression() {
    assert!(is_jsonl_name(Path::new("a/b.jsonl.gz")));
    assert!(is_jsonl_name(Path::new("b.NDJSON")));
    assert!(!is_jsonl_name(Path::new("b.txt")));
    assert_eq!(Compression::of_path(Path::new("x.jsonl.zst")), Compression::Zstd);
}

#[test]
fn gzip_and_zstd_round_trip() {
    for c in [Compression::Gzip, Compression::Zstd, Compression::None] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x");
        let mut sink = Sink::new(Box::new(File::create(&path).unwrap()), c).unwrap();
        sink.write_all(b"{\"text\":\"hi\"}\n").unwrap();
        sink.finish().unwrap();
        let mut s = String::new();
        reader(Box::new(File::open(&path).unwrap()), c).unwrap().read_to_string(&mut s).unwrap();
        assert_eq!(s, "{\"text\":\"hi\"}\n");
    }
}
