//! Paragraphs: from a decoded document to normalised paragraphs with byte spans.
//!
//! A document is first cut into lines ([`crate::normalize::lines`]); each
//! line is normalised. Then, by [`SplitMode`]:
//!
//! * **line** — every non-blank line is a paragraph (the seed's layout, and
//!   the BBC corpus's: headline, blank line, one paragraph per line).
//! * **blank** — a paragraph is a run of non-blank lines; its lines are
//!   joined with one space. A run ends at a blank line, and also where a line
//!   is *more indented* (in the original) than the line before it: wire copy
//!   such as Reuters marks a new paragraph with a 4-space indent, while the
//!   hard-wrapped continuation lines start at column 0.
//! * **auto** (default) — decided per document. A *joint* is a pair of
//!   consecutive non-blank lines; it is *wrapped* when the first line does not
//!   end a sentence (its last character, quote-folded by
//!   [`crate::normalize::fold_quote`] whatever the quote mode, is not one of
//!   [`SENTENCE_END`]; so a German closing “ counts as ", and `--quotes` never
//!   changes the split). If
//!   more than half of the joints are wrapped the document is hard-wrapped
//!   and split by **blank**; otherwise (including a document with no joints at
//!   all) by **line**.
//!
//! Spans are byte offsets into the decoded input text, never character
//! counts. A paragraph's original span runs from the start of its first line
//! to the end of its last line, terminators excluded.
//!
//! The separator style of the output is taken from the document: if at least
//! half of the gaps between consecutive paragraphs contain a blank line, the
//! output puts a blank line between paragraphs, otherwise a single newline.
//! A document split by **blank** always gets blank lines: its paragraphs may
//! have been marked only by indentation, which the output no longer has, and
//! single newlines would let a second run join them all into one paragraph.

use std::ops::Range;

use crate::normalize::{QuoteMode, fold_quote, lines, normalize_line_into};

/// How a document is cut into paragraphs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SplitMode {
    /// Decide per document (see the module documentation).
    #[default]
    Auto,
    /// Every non-blank line is a paragraph.
    Line,
    /// Runs of non-blank lines separated by blank lines (or a deeper indent).
    Blank,
}

/// Characters that end a sentence, for the `auto` rule: a line ending with
/// one of them is a complete line, not a hard wrap.
pub const SENTENCE_END: [char; 16] = [
    '.', '!', '?', ':', ';', '\u{2026}', '"', '\'', ')', ']', '\u{201D}', '\u{2019}', '\u{00BB}', '\u{3002}',
    '\u{FF01}', '\u{FF1F}',
];

/// What goes between two output paragraphs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Separator {
    /// One line break.
    Newline,
    /// A blank line.
    BlankLine,
}

/// One paragraph of a split document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Span {
    /// Byte range of the normalised paragraph text in [`Split::text`].
    pub text: Range<usize>,
    /// Byte range of the paragraph in the original (decoded) input.
    pub orig: Range<usize>,
}

/// A document cut into normalised paragraphs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Split {
    /// Normalised paragraph texts; [`Span::text`] indexes into it.
    pub text: String,
    /// The paragraphs, in document order.
    pub spans: Vec<Span>,
    /// The mode actually used (`Line` or `Blank`, never `Auto`).
    pub mode: SplitMode,
    /// The document's separator style.
    pub separator: Option<Separator>,
}

impl Split {
    /// The normalised text of paragraph `i`.
    pub fn paragraph(&self, i: usize) -> &str {
        &self.text[self.spans[i].text.clone()]
    }

    /// Iterates over the normalised paragraph texts.
    pub fn paragraphs(&self) -> impl Iterator<Item = &str> {
        self.spans.iter().map(|s| &self.text[s.text.clone()])
    }
}

/// A normalised line; `norm` is empty for a blank line.
struct Line {
    norm: Range<usize>,
    orig: Range<usize>,
    indent: usize,
}

/// Splits `text` (decoded, not yet normalised) into normalised paragraphs.
///
/// ```
/// use newsdedup::normalize::QuoteMode;
/// use newsdedup::split::{split, SplitMode};
/// let s = split("Title\n\nFirst para.\n\nSecond para.\n", SplitMode::Auto, QuoteMode::Fold);
/// assert_eq!(s.paragraphs().collect::<Vec<_>>(), ["Title", "First para.", "Second para."]);
/// ```
pub fn split(text: &str, mode: SplitMode, quotes: QuoteMode) -> Split {
    let mut norm = String::with_capacity(text.len());
    let mut recs = Vec::new();
    for line in lines(text) {
        let start = norm.len();
        normalize_line_into(line.text, quotes, &mut norm);
        let indent = line.text.len() - line.text.trim_start().len();
        recs.push(Line { norm: start..norm.len(), orig: line.span.clone(), indent });
        if line.paragraph_break {
            recs.push(Line { norm: norm.len()..norm.len(), orig: line.span.end..line.span.end, indent: 0 });
        }
    }
    let mode = match mode {
        SplitMode::Auto => detect(&norm, &recs),
        m => m,
    };
    let (text_buf, spans, separator) = match mode {
        SplitMode::Blank => {
            let (text, spans) = by_blocks(&norm, &recs);
            // Always blank lines: blocks cut at an indent or U+2029 would
            // otherwise be joined when the output is read again.
            let separator = (spans.len() > 1).then_some(Separator::BlankLine);
            (text, spans, separator)
        }
        _ => {
            let (text, spans, gaps) = by_lines(norm, &recs);
            (text, spans, separator_style(&gaps))
        }
    };
    Split { separator, text: text_buf, spans, mode }
}

/// The `auto` rule: hard-wrapped when most joints are wrapped.
fn detect(norm: &str, recs: &[Line]) -> SplitMode {
    let joints = recs.windows(2).filter(|p| !p[0].norm.is_empty() && !p[1].norm.is_empty());
    let lines = joints.map(|p| &norm[p[0].norm.clone()]);
    if mostly_wrapped(lines) { SplitMode::Blank } else { SplitMode::Line }
}

/// True when a line does not end a sentence: its last character (quotes
/// folded) is not one of [`SENTENCE_END`].
pub fn is_wrapped(line: &str) -> bool {
    !line.chars().next_back().is_some_and(|c| SENTENCE_END.contains(&fold_quote(c)))
}

/// The `auto` rule over the first lines of the joints: more than half of
/// them are wrapped.
pub fn mostly_wrapped<'a>(first_lines: impl Iterator<Item = &'a str>) -> bool {
    let (mut joints, mut wrapped) = (0usize, 0usize);
    for line in first_lines {
        joints += 1;
        wrapped += usize::from(is_wrapped(line));
    }
    wrapped * 2 > joints
}

/// Line mode: the normalised buffer already holds each paragraph.
fn by_lines(norm: String, recs: &[Line]) -> (String, Vec<Span>, Vec<bool>) {
    let mut spans = Vec::new();
    let mut gaps = Vec::new();
    let mut blank_since_last = false;
    for rec in recs {
        if rec.norm.is_empty() {
            blank_since_last = true;
            continue;
        }
        if !spans.is_empty() {
            gaps.push(blank_since_last);
        }
        blank_since_last = false;
        spans.push(Span { text: rec.norm.clone(), orig: rec.orig.clone() });
    }
    (norm, spans, gaps)
}

/// Blank mode: join the lines of each block with one space.
fn by_blocks(norm: &str, recs: &[Line]) -> (String, Vec<Span>) {
    let mut text = String::with_capacity(norm.len());
    let mut spans: Vec<Span> = Vec::new();
    let mut open = false;
    let mut prev_indent = 0;
    for rec in recs {
        if rec.norm.is_empty() {
            open = false;
            continue;
        }
        let deeper = open && rec.indent > prev_indent;
        prev_indent = rec.indent;
        if open
            && !deeper
            && let Some(last) = spans.last_mut()
        {
            text.push(' ');
            text.push_str(&norm[rec.norm.clone()]);
            last.text.end = text.len();
            last.orig.end = rec.orig.end;
            continue;
        }
        open = true;
        let start = text.len();
        text.push_str(&norm[rec.norm.clone()]);
        spans.push(Span { text: start..text.len(), orig: rec.orig.clone() });
    }
    (text, spans)
}

/// Line mode: a blank line between paragraphs when at least half of the
/// gaps have one.
fn separator_style(gaps: &[bool]) -> Option<Separator> {
    if gaps.is_empty() {
        return None;
    }
    let blank = gaps.iter().filter(|&&b| b).count();
    Some(if blank * 2 >= gaps.len() { Separator::BlankLine } else { Separator::Newline })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paras(text: &str, mode: SplitMode) -> Vec<String> {
        split(text, mode, QuoteMode::Fold).paragraphs().map(str::to_owned).collect()
    }

    const SEED_LIKE: &str = "First line of the story.\n\"A quote,\" he said.\nThird line here.\n";
    const BBC_LIKE: &str = "Headline words\n\nFirst paragraph.\n\nSecond paragraph, longer.\n";
    const WRAPPED: &str = "Showers continued throughout the week in\nthe Bahia cocoa zone, alleviating the drought\nsince early January.\n    The dry period means the temporao will\nbe late this year.\n\nA third block after a blank\nline here.\n";

    #[test]
    fn line_mode_makes_every_nonblank_line_a_paragraph() {
        assert_eq!(paras("a\n\n  \nb\nc", SplitMode::Line), ["a", "b", "c"]);
    }

    #[test]
    fn blank_mode_joins_lines_of_a_block_with_a_space() {
        assert_eq!(paras("a\nb\n\nc\r\nd\n", SplitMode::Blank), ["a b", "c d"]);
    }

    #[test]
    fn blank_mode_starts_a_paragraph_at_a_deeper_indent() {
        assert_eq!(paras("one\ntwo\n    three\nfour\n", SplitMode::Blank), ["one two", "three four"]);
        // Uniform indentation is not a paragraph mark.
        assert_eq!(paras("  one\n  two\n", SplitMode::Blank), ["one two"]);
    }

    #[test]
    fn blank_mode_output_separates_paragraphs_with_a_blank_line() {
        // Indent-marked paragraphs: the output has no indent left, so only a
        // blank line keeps them apart when the clean text is split again.
        let s = split("one\n    two\n", SplitMode::Blank, QuoteMode::Fold);
        assert_eq!(s.spans.len(), 2);
        assert_eq!(s.separator, Some(Separator::BlankLine));
    }

    #[test]
    fn paragraph_separator_splits_blocks() {
        assert_eq!(paras("a\u{2029}b", SplitMode::Blank), ["a", "b"]);
    }

    #[test]
    fn auto_uses_line_mode_for_the_seed_layout() {
        let s = split(SEED_LIKE, SplitMode::Auto, QuoteMode::Fold);
        assert_eq!(s.mode, SplitMode::Line);
        assert_eq!(s.spans.len(), 3);
        assert_eq!(s.separator, Some(Separator::Newline));
    }

    #[test]
    fn auto_uses_line_mode_and_blank_separators_for_bbc_layout() {
        let s = split(BBC_LIKE, SplitMode::Auto, QuoteMode::Fold);
        assert_eq!(s.mode, SplitMode::Line);
        assert_eq!(s.spans.len(), 3);
        assert_eq!(s.separator, Some(Separator::BlankLine));
    }

    #[test]
    fn auto_uses_blank_mode_for_hard_wrapped_text() {
        let s = split(WRAPPED, SplitMode::Auto, QuoteMode::Fold);
        assert_eq!(s.mode, SplitMode::Blank);
        assert_eq!(
            s.paragraphs().collect::<Vec<_>>(),
            [
                "Showers continued throughout the week in the Bahia cocoa zone, alleviating the drought since early January.",
                "The dry period means the temporao will be late this year.",
                "A third block after a blank line here.",
            ]
        );
    }

    #[test]
    fn auto_does_not_depend_on_the_quote_mode() {
        // German quotes close with U+201C, which is not in SENTENCE_END.
        let text = "\u{201E}Wir kommen morgen wieder\u{201C}\n\u{201E}Das ist nicht das Ende\u{201C}\nDer Streik geht weiter.\n";
        for q in [QuoteMode::Fold, QuoteMode::Keep] {
            let s = split(text, SplitMode::Auto, q);
            assert_eq!((s.mode, s.spans.len()), (SplitMode::Line, 3), "{q:?}");
        }
    }

    #[test]
    fn original_spans_cover_whole_lines_in_bytes() {
        let text = "\u{201C}Caf\u{00E9}\u{201D}\r\nx  y\r\n";
        let s = split(text, SplitMode::Line, QuoteMode::Fold);
        assert_eq!(&text[s.spans[0].orig.clone()], "\u{201C}Caf\u{00E9}\u{201D}");
        assert_eq!(&text[s.spans[1].orig.clone()], "x  y");
        assert_eq!(s.paragraph(0), "\"Caf\u{00E9}\"");
        let w = split(WRAPPED, SplitMode::Blank, QuoteMode::Fold);
        assert_eq!(&WRAPPED[w.spans[1].orig.clone()], "    The dry period means the temporao will\nbe late this year.");
    }

    #[test]
    fn empty_and_blank_documents_have_no_paragraphs() {
        assert!(paras("", SplitMode::Auto).is_empty());
        assert!(paras(" \n\u{00A0}\n\t", SplitMode::Auto).is_empty());
    }
}
