//! A prepared document: decoded text, paragraphs, their keys, and rendering
//! of the kept paragraphs.
//!
//! Preparing ([`Document::prepare`]) is a pure function of the text and the
//! [`TextOptions`], which is what lets the pipeline run it on many threads
//! while the keep/drop decision stays sequential.

use std::ops::Range;

use crate::dedup::{Verdict, document_key};
use crate::key::{Digest, KeyMode, Keyed, Keyer};
use crate::normalize::QuoteMode;
use crate::split::{Separator, Split, SplitMode, mostly_wrapped, split};

/// How text becomes paragraphs and keys.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TextOptions {
    /// Paragraph splitting.
    pub split: SplitMode,
    /// Quote folding.
    pub quotes: QuoteMode,
    /// Key strictness.
    pub key: KeyMode,
}

/// What the output holds for each kept paragraph.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Emit {
    /// The normalised text (default).
    #[default]
    Normalized,
    /// The paragraph exactly as in the input (keys stay normalised).
    Original,
}

/// A document ready for the keep/drop decision.
#[derive(Clone, Debug)]
pub struct Document {
    /// The decoded input text.
    pub original: String,
    /// Its paragraphs.
    pub split: Split,
    /// One key per paragraph.
    pub keys: Vec<Keyed>,
    /// The whole-document key.
    pub whole: Digest,
}

impl Document {
    /// Splits and keys `original`.
    pub fn prepare(original: String, opts: &TextOptions) -> Document {
        let split = split(&original, opts.split, opts.quotes);
        let mut keyer = Keyer::new(opts.key);
        let keys: Vec<Keyed> = split.paragraphs().map(|p| keyer.keyed(p)).collect();
        let whole = document_key(&keys);
        Document { original, split, keys, whole }
    }

    /// Number of paragraphs.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// True when the document has no paragraphs.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Appends the clean document to `out`; nothing at all when no paragraph
    /// is kept.
    ///
    /// [`Emit::Normalized`]: the kept normalised paragraphs, separated by the
    /// document's separator style, ending with exactly one `\n`.
    ///
    /// [`Emit::Original`]: the input text with the [`Document::removal_spans`]
    /// of the dropped paragraphs deleted: kept paragraphs, the line breaks
    /// between them and any text before the first or after the last paragraph
    /// stay exactly as they were.
    pub fn render_into(&self, verdicts: &[Verdict], emit: Emit, out: &mut Vec<u8>) {
        if !verdicts.iter().any(|v| v.is_kept()) {
            return;
        }
        match emit {
            Emit::Normalized => self.render_normalized(verdicts, out),
            Emit::Original => {
                let mut at = 0;
                for (span, _) in self.removal_spans(verdicts) {
                    out.extend_from_slice(&self.original.as_bytes()[at..span.start]);
                    at = span.end;
                }
                out.extend_from_slice(&self.original.as_bytes()[at..]);
            }
        }
    }

    fn render_normalized(&self, verdicts: &[Verdict], out: &mut Vec<u8>) {
        let kept = || self.split.spans.iter().zip(verdicts).filter(|(_, v)| v.is_kept()).map(|(s, _)| s);
        // Kept paragraphs written one per line must not read back as
        // hard-wrapped text (the `auto` rule), or cleaning the output again
        // would join them: then a blank line separates them instead.
        let blank = self.split.separator == Some(Separator::BlankLine) || {
            let n = kept().count();
            mostly_wrapped(kept().take(n.saturating_sub(1)).map(|s| &self.split.text[s.text.clone()]))
        };
        let mut first = true;
        for span in kept() {
            if !first && blank {
                out.push(b'\n');
            }
            first = false;
            out.extend_from_slice(self.split.text[span.text.clone()].as_bytes());
            out.push(b'\n');
        }
    }

    /// Byte ranges of the input text to delete so that exactly the dropped
    /// paragraphs disappear, with the line breaks that separated them: one
    /// range per dropped paragraph (with its index), in order, tiling each run
    /// of consecutive dropped paragraphs.
    ///
    /// A dropped paragraph after some kept one takes the separator *before*
    /// it: `[end of previous paragraph, its end)`. One before any kept
    /// paragraph takes the separator *after* it: `[its start, start of next)`.
    /// When nothing is kept the ranges cover the whole text. Deleting them is
    /// what [`Emit::Original`] does and what `--annotate` records.
    pub fn removal_spans(&self, verdicts: &[Verdict]) -> Vec<(Range<usize>, usize)> {
        let spans = &self.split.spans;
        let n = spans.len().min(verdicts.len());
        let first_kept = verdicts[..n].iter().position(|v| v.is_kept());
        let mut out = Vec::new();
        for k in (0..n).filter(|&k| !verdicts[k].is_kept()) {
            let next_start = if k + 1 < n { spans[k + 1].orig.start } else { self.original.len() };
            let range = match first_kept {
                Some(f) if f < k => spans[k - 1].orig.end..spans[k].orig.end,
                Some(_) => spans[k].orig.start..next_start,
                None if k == 0 => 0..next_start,
                None => spans[k].orig.start..next_start,
            };
            out.push((range, k));
        }
        out
    }

    /// The kept paragraphs as a string; see [`Document::render_into`].
    pub fn render(&self, verdicts: &[Verdict], emit: Emit) -> String {
        let mut out = Vec::new();
        self.render_into(verdicts, emit, &mut out);
        // Only whole `str` slices and ASCII line breaks were appended.
        String::from_utf8(out).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_keeps_blank_line_style_and_one_final_newline() {
        let doc = Document::prepare("Title\n\n\nBody text.\n\n\n".to_owned(), &TextOptions::default());
        let all = vec![Verdict::Keep; doc.len()];
        assert_eq!(doc.render(&all, Emit::Normalized), "Title\n\nBody text.\n");
    }

    #[test]
    fn render_original_uses_input_line_endings_and_text() {
        let doc = Document::prepare("\u{201C}Hi\u{201D}\u{a0} \r\nNext\r\n".to_owned(), &TextOptions::default());
        let all = vec![Verdict::Keep; doc.len()];
        assert_eq!(doc.render(&all, Emit::Original), "\u{201C}Hi\u{201D}\u{a0} \r\nNext\r\n");
        assert_eq!(doc.render(&all, Emit::Normalized), "\"Hi\"\nNext\n");
    }

    fn drop_at(n: usize, dropped: &[usize]) -> Vec<Verdict> {
        let d = Verdict::Drop { reason: crate::dedup::Reason::WithinDocument, first: Default::default() };
        (0..n).map(|i| if dropped.contains(&i) { d } else { Verdict::Keep }).collect()
    }

    #[test]
    fn removal_spans_delete_exactly_the_dropped_paragraphs() {
        let text = "\nA one.\n\nB two.\n\nC three.\n\nD four.";
        let doc = Document::prepare(text.to_owned(), &TextOptions::default());
        let cases: [(&[usize], &str); 5] = [
            (&[1], "\nA one.\n\nC three.\n\nD four."),
            (&[3], "\nA one.\n\nB two.\n\nC three."),
            (&[0, 1], "\nC three.\n\nD four."),
            (&[1, 2], "\nA one.\n\nD four."),
            (&[0, 3], "\nB two.\n\nC three."),
        ];
        for (dropped, want) in cases {
            let v = drop_at(4, dropped);
            assert_eq!(doc.render(&v, Emit::Original), want, "{dropped:?}");
        }
        let spans = doc.removal_spans(&drop_at(4, &[0, 1, 2, 3]));
        assert_eq!(spans.first().map(|s| s.0.start), Some(0));
        assert_eq!(spans.last().map(|s| s.0.end), Some(text.len()));
    }

    #[test]
    fn kept_lines_that_would_read_as_wrapped_get_blank_lines() {
        // Bug found by the property tests: "Reuters" + one sentence, once the
        // repeat is dropped, would read back as one hard-wrapped paragraph.
        let text = "Reuters\nThe minister resigned on Monday evening.\nThe minister resigned on Monday evening.\n";
        let once = crate::clean_text(text, &crate::CleanOptions::default());
        assert_eq!(once, "Reuters\n\nThe minister resigned on Monday evening.\n");
        assert_eq!(crate::clean_text(&once, &crate::CleanOptions::default()), once);
    }

    #[test]
    fn nothing_kept_renders_nothing() {
        let doc = Document::prepare("a\nb\n".to_owned(), &TextOptions::default());
        let none = vec![Verdict::Drop { reason: crate::dedup::Reason::WithinDocument, first: Default::default() }; 2];
        assert_eq!(doc.render(&none, Emit::Normalized), "");
    }
}
