//! dolma attributes: for each record, the spans `--annotate` reports as
//! `[start, end, 1.0]` in **characters** (Unicode scalar values) of the
//! text, the unit dolma's mixer counts in when it applies
//! `span_replacement` (it walks `char_indices` and compares the character
//! count with each span). One attribute line per record, in the record's
//! order, mirrored under `--attributes DIR` by the shard's relative path:
//!
//! ```json
//! {"id": "doc-1", "attributes": {"newsdedup__paragraph_duplicates": [[0, 42, 1.0]]}}
//! ```
//!
//! Removing the spans (`dolma mix` with `span_replacement` on
//! `$.attributes.newsdedup__paragraph_duplicates`, `min_score: 0.5`,
//! `replacement: ""`) gives the text `--annotate` describes: the
//! `--emit original` clean text.

use std::ops::Range;

/// The attribute name written for each record.
pub const ATTRIBUTE: &str = "newsdedup__paragraph_duplicates";

/// Converts sorted, disjoint byte spans of `text` into character spans.
pub fn char_spans(text: &str, spans: &[Range<usize>]) -> Vec<Range<usize>> {
    let mut out = Vec::with_capacity(spans.len());
    let (mut byte, mut chars) = (0, 0);
    let mut count_to = |to: usize| {
        let to = to.min(text.len());
        if to > byte {
            chars += text.get(byte..to).map_or(0, |s| s.chars().count());
            byte = to;
        }
        chars
    };
    for s in spans {
        let start = count_to(s.start);
        let end = count_to(s.end);
        out.push(start..end);
    }
    out
}

/// One attribute line (with its line break): `id` is the record's id field
/// as raw JSON (`null` when it has none).
pub fn attribute_line(id: Option<&[u8]>, text: &str, spans: &[Range<usize>], out: &mut Vec<u8>) {
    out.extend_from_slice(b"{\"id\":");
    out.extend_from_slice(id.unwrap_or(b"null"));
    out.extend_from_slice(b",\"attributes\":{\"");
    out.extend_from_slice(ATTRIBUTE.as_bytes());
    out.extend_from_slice(b"\":[");
    for (i, s) in char_spans(text, spans).into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(format!("[{},{},1.0]", s.start, s.end).as_bytes());
    }
    out.extend_from_slice(b"]}}\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_count_characters_not_bytes() {
        let text = "caf\u{e9} \u{1F600}\nsecond\n";
        // "second\n" starts at byte 11, character 7.
        assert_eq!(char_spans(text, &[0..5, 11..18]), [0..4, 7..14]);
    }

    #[test]
    fn a_line_is_json_with_the_id_as_given() {
        let mut out = Vec::new();
        let spans = [std::ops::Range { start: 0, end: 6 }];
        attribute_line(Some(b"\"d-1\""), "\u{e9}t\u{e9}\n", &spans, &mut out);
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["id"], "d-1");
        assert_eq!(v["attributes"][ATTRIBUTE], serde_json::json!([[0, 4, 1.0]]));
        assert!(out.ends_with(b"}\n"));
    }
}
