//! A prepared document: decoded text, paragraphs, their keys, and rendering
//! of the kept paragraphs.
//!
//! Preparing ([`Document::prepare`]) is a pure function of the text and the
//! [`TextOptions`], which is what lets the pipeline run it on many threads
//! while the keep/drop decision stays sequential.

use crate::dedup::{Verdict, document_key};
use crate::key::{Digest, KeyMode, Keyed, Keyer};
use crate::normalize::QuoteMode;
use crate::split::{Separator, Split, SplitMode, split};

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

    /// Appends the kept paragraphs to `out`: separated by the document's
    /// separator style, ending with exactly one line break; nothing at all
    /// when no paragraph is kept. With [`Emit::Original`], paragraphs and
    /// line breaks are the input's own (its first line terminator is used
    /// between paragraphs).
    pub fn render_into(&self, verdicts: &[Verdict], emit: Emit, out: &mut Vec<u8>) {
        let eol = match emit {
            Emit::Normalized => "\n",
            Emit::Original => self.split.line_ending,
        };
        let mut first = true;
        for (span, v) in self.split.spans.iter().zip(verdicts) {
            if !v.is_kept() {
                continue;
            }
            if !first && self.split.separator == Some(Separator::BlankLine) {
                out.extend_from_slice(eol.as_bytes());
            }
            first = false;
            let text = match emit {
                Emit::Normalized => &self.split.text[span.text.clone()],
                Emit::Original => &self.original[span.orig.clone()],
            };
            out.extend_from_slice(text.as_bytes());
            out.extend_from_slice(eol.as_bytes());
        }
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

    #[test]
    fn nothing_kept_renders_nothing() {
        let doc = Document::prepare("a\nb\n".to_owned(), &TextOptions::default());
        let none = vec![Verdict::Drop { reason: crate::dedup::Reason::WithinDocument, first: Default::default() }; 2];
        assert_eq!(doc.render(&none, Emit::Normalized), "");
    }
}
