//! Paragraphs: from a decoded document to normalised lines and paragraphs
//! with byte spans.
//!
//! A document is first cut into lines ([`crate::normalize::lines`]); each
//! line is normalised. A **paragraph** is a run of consecutive non-blank
//! lines; by [`SplitMode`]:
//!
//! * **auto** (default) — a line continues the paragraph of the line before
//!   it when the break between them is a hard wrap, by the per-line rule of
//!   [`crate::wrap`] (the document's wrap width, sentence ends, list items,
//!   table rows, headings, JSON/CSV/markup). Text that is not hard-wrapped
//!   (the seed, the BBC corpus) thus has one paragraph per line.
//! * **line** — every non-blank line is a paragraph.
//! * **blank** — a paragraph is a run of non-blank lines ended by a blank
//!   line or by a line *more indented* (in the original) than the line
//!   before it: wire copy such as Reuters marks a new paragraph with a
//!   4-space indent, while the hard-wrapped continuation lines start at
//!   column 0.
//!
//! A paragraph's **key text** ([`Split::paragraph`]) is its words joined by
//! one space, so the same paragraph wrapped at another width has the same
//! key. Its **lines** stay as they were: the output is written line by line
//! (see [`crate::document`]), and a paragraph is dropped or kept whole.
//!
//! Spans are byte offsets into the decoded input text, never character
//! counts. A paragraph's original span runs from the start of its first line
//! to the end of its last line, terminators excluded.

use std::borrow::Cow;
use std::ops::Range;

pub use crate::normalize::SENTENCE_END;
use crate::normalize::{QuoteMode, RawLine, fold_quote, lines, normalize_line_into};
use crate::wrap::{WrapLine, continues, fits_a_wrap, is_block};

mod build;

pub use build::LineBuilder;

/// How a document is cut into paragraphs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SplitMode {
    /// Hard-wrapped paragraphs found line by line (see [`crate::wrap`]).
    #[default]
    Auto,
    /// Every non-blank line is a paragraph.
    Line,
    /// Runs of non-blank lines separated by blank lines (or a deeper indent).
    Blank,
}

/// How a line of the input ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Terminator {
    /// The last line, without a line break.
    None,
    /// CRLF, CR, LF, NEL or U+2028: written as `\n`.
    Newline,
    /// U+2029 PARAGRAPH SEPARATOR: written as `\n\n` (a blank line follows).
    Paragraph,
}

/// One line of a split document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Line {
    /// Byte range of the normalised line in [`Split::text`] (empty: blank).
    pub norm: Range<usize>,
    /// Byte range of the line in the original input, terminator excluded.
    pub orig: Range<usize>,
    /// How it ended.
    pub terminator: Terminator,
    /// Leading whitespace in the original, in bytes.
    pub indent: usize,
    /// Length of the normalised line in characters.
    pub chars: usize,
}

impl Line {
    /// True for a line that is empty once normalised.
    pub fn is_blank(&self) -> bool {
        self.norm.is_empty()
    }
}

/// One paragraph of a split document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Span {
    /// Byte range of the paragraph's normalised lines in [`Split::text`]
    /// (separated by `\n`).
    pub text: Range<usize>,
    /// Byte range of the paragraph in the original (decoded) input.
    pub orig: Range<usize>,
    /// Its lines: indexes into [`Split::lines`].
    pub lines: Range<usize>,
}

/// A document cut into normalised lines and paragraphs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Split {
    /// Every normalised line followed by `\n`; [`Line::norm`] and
    /// [`Span::text`] index into it.
    pub text: String,
    /// The lines, blank ones included, in document order.
    pub lines: Vec<Line>,
    /// The paragraphs, in document order.
    pub spans: Vec<Span>,
    /// The mode asked for.
    pub mode: SplitMode,
    /// The wrap width: the longest normalised line, in characters.
    pub width: usize,
}

impl Split {
    /// The key text of paragraph `i`: its normalised lines joined by one
    /// space (borrowed for a one-line paragraph).
    pub fn paragraph(&self, i: usize) -> Cow<'_, str> {
        let span = &self.spans[i];
        let text = &self.text[span.text.clone()];
        // A normalised line holds no `\n`: only a paragraph of several lines
        // has one to replace.
        if span.lines.len() > 1 { Cow::Owned(text.replace('\n', " ")) } else { Cow::Borrowed(text) }
    }

    /// [`Split::paragraph`], joined in `buf` (cleared first) when it has
    /// several lines: one buffer for a whole document's keys.
    pub fn paragraph_in<'a>(&'a self, i: usize, buf: &'a mut String) -> &'a str {
        let span = &self.spans[i];
        if span.lines.len() <= 1 {
            return &self.text[span.text.clone()];
        }
        buf.clear();
        self.paragraph_onto(i, buf);
        buf
    }

    /// [`Split::paragraph`] appended to `buf`.
    pub fn paragraph_onto(&self, i: usize, buf: &mut String) {
        let span = &self.spans[i];
        let start = buf.len();
        buf.push_str(&self.text[span.text.clone()]);
        // The `\n` after each line but the last is where that line's range
        // ends: written over in place, not searched for.
        let (first, last) = (span.lines.start, span.lines.end.saturating_sub(1));
        for line in &self.lines[first..last.max(first)] {
            let at = start + line.norm.end - span.text.start;
            debug_assert_eq!(buf.as_bytes()[at], b'\n');
            // SAFETY: one ASCII byte (a `\n`) becomes another (a space):
            // the string stays valid UTF-8.
            unsafe { buf.as_bytes_mut()[at] = b' ' };
        }
    }

    /// Length in characters of paragraph `i`'s key text ([`Split::paragraph`]):
    /// its lines' lengths and one space between two lines.
    pub fn paragraph_chars(&self, i: usize) -> usize {
        let lines = &self.lines[self.spans[i].lines.clone()];
        lines.iter().map(|l| l.chars).sum::<usize>() + lines.len().saturating_sub(1)
    }

    /// Iterates over the key texts of the paragraphs.
    pub fn paragraphs(&self) -> impl Iterator<Item = Cow<'_, str>> {
        (0..self.spans.len()).map(|i| self.paragraph(i))
    }

    /// The normalised text of line `i` (empty for a blank line).
    pub fn line(&self, i: usize) -> &str {
        &self.text[self.lines[i].norm.clone()]
    }
}

/// Splits `text` (decoded, not yet normalised) into normalised lines and
/// paragraphs.
///
/// ```
/// use newsdedup::normalize::QuoteMode;
/// use newsdedup::split::{split, SplitMode};
/// let s = split("Title\n\nFirst para.\n\nSecond para.\n", SplitMode::Auto, QuoteMode::Fold);
/// assert_eq!(s.paragraphs().collect::<Vec<_>>(), ["Title", "First para.", "Second para."]);
/// ```
pub fn split(text: &str, mode: SplitMode, quotes: QuoteMode) -> Split {
    let mut lines_out = NormLines::with_capacity(text.len());
    for line in lines(text) {
        lines_out.push_line(&line, quotes);
    }
    lines_out.into_split(text, mode)
}

/// The normalised lines of a document being split: [`Split::text`],
/// [`Split::lines`] and the wrap width so far.
#[derive(Debug, Default)]
pub(crate) struct NormLines {
    norm: String,
    recs: Vec<Line>,
    width: usize,
}

impl NormLines {
    /// Room for a text of `len` bytes, and for its lines at about 80 bytes
    /// each (news text runs 65-210 bytes a line, blank lines included):
    /// growing the list one line at a time was two allocations in ten of a
    /// JSONL run.
    pub(crate) fn with_capacity(len: usize) -> NormLines {
        NormLines { norm: String::with_capacity(len + 16), recs: Vec::with_capacity(len / 80 + 4), width: 0 }
    }

    /// Normalises `line` and records it.
    pub(crate) fn push_line(&mut self, line: &RawLine<'_>, quotes: QuoteMode) {
        let start = self.norm.len();
        normalize_line_into(line.text, quotes, &mut self.norm);
        // Normalising ASCII gives ASCII: one character per byte.
        let chars = if line.text.is_ascii() { self.norm.len() - start } else { self.norm[start..].chars().count() };
        let indent = line.text.len() - line.text.trim_start().len();
        self.record(start, line.span.clone(), terminator(line), indent, chars);
    }

    /// Records a line whose normal form is `norm[start..]` (already written).
    fn record(&mut self, start: usize, orig: Range<usize>, terminator: Terminator, indent: usize, chars: usize) {
        self.width = self.width.max(chars);
        self.recs.push(Line { norm: start..self.norm.len(), orig, terminator, indent, chars });
        self.norm.push('\n');
    }

    /// The split of `text`, whose lines these are.
    pub(crate) fn into_split(self, text: &str, mode: SplitMode) -> Split {
        let NormLines { norm, recs, width } = self;
        let spans = paragraphs(text, &norm, &recs, mode, width);
        Split { text: norm, lines: recs, spans, mode, width }
    }
}

fn terminator(line: &RawLine<'_>) -> Terminator {
    match (line.paragraph_break, line.terminated) {
        (true, _) => Terminator::Paragraph,
        (false, true) => Terminator::Newline,
        (false, false) => Terminator::None,
    }
}

/// Groups the non-blank lines into paragraphs.
fn paragraphs(text: &str, norm: &str, lines: &[Line], mode: SplitMode, width: usize) -> Vec<Span> {
    let wrap_line = |l: &Line| WrapLine { norm: &norm[l.norm.clone()], orig: &text[l.orig.clone()], chars: l.chars };
    // Whether line `i` is a block line, computed at most once per line.
    let mut block: Option<(usize, bool)> = None;
    let mut is_block_at = |i: usize| match block {
        Some((j, b)) if j == i => b,
        _ => {
            let b = is_block(&wrap_line(&lines[i]));
            block = Some((i, b));
            b
        }
    };
    // Paragraphs are mostly set apart by blank lines: room for one more.
    let mut spans: Vec<Span> = Vec::with_capacity(lines.iter().filter(|l| l.is_blank()).count() + 1);
    for (i, line) in lines.iter().enumerate() {
        if line.is_blank() {
            continue;
        }
        let joined = i > 0
            && joins(&lines[i - 1], line, mode, || {
                fits_a_wrap(&wrap_line(&lines[i - 1]), &wrap_line(line), width)
                    && !is_block_at(i - 1)
                    && !is_block_at(i)
            });
        match spans.last_mut() {
            Some(last) if joined => {
                last.text.end = line.norm.end;
                last.orig.end = line.orig.end;
                last.lines.end = i + 1;
            }
            _ => spans.push(Span { text: line.norm.clone(), orig: line.orig.clone(), lines: i..i + 1 }),
        }
    }
    spans
}

/// True when `b`, the line after `a`, continues `a`'s paragraph;
/// `wrapped` applies the rule of [`crate::wrap`].
fn joins(a: &Line, b: &Line, mode: SplitMode, wrapped: impl FnOnce() -> bool) -> bool {
    let adjacent = !a.is_blank() && a.terminator == Terminator::Newline;
    adjacent
        && match mode {
            SplitMode::Line => false,
            SplitMode::Blank => b.indent <= a.indent,
            SplitMode::Auto => wrapped(),
        }
}

/// True when a line does not end a sentence: its last character (quotes
/// folded) is not one of [`SENTENCE_END`].
pub fn is_wrapped(line: &str) -> bool {
    !line.chars().next_back().is_some_and(|c| SENTENCE_END.contains(&fold_quote(c)))
}

/// Whether, in a text read again with `mode`, the line classified `b`
/// would continue the line classified `a` right before it (wrap width
/// `width`). Used to keep the clean output splitting as the input did.
pub fn would_join(a: &WrapLine<'_>, b: &WrapLine<'_>, mode: SplitMode, width: usize) -> bool {
    match mode {
        SplitMode::Line => false,
        SplitMode::Blank => a.chars > 0 && b.chars > 0,
        SplitMode::Auto => continues(a, b, width),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paras(text: &str, mode: SplitMode) -> Vec<String> {
        split(text, mode, QuoteMode::Fold).paragraphs().map(Cow::into_owned).collect()
    }

    const SEED_LIKE: &str = "First line of the story.\n\"A quote,\" he said.\nThird line here.\n";
    const BBC_LIKE: &str = "Headline words\n\nFirst paragraph.\n\nSecond paragraph, longer.\n";
    const WRAPPED: &str = "Showers continued throughout the week in the\nBahia cocoa zone, alleviating the drought\nsince early January.\n    The dry period means the temporao will be\nlate this year.\n\nA third block after a blank line, and it\nwraps too.\n";

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
    fn paragraph_separator_splits_blocks() {
        assert_eq!(paras("a\u{2029}b", SplitMode::Blank), ["a", "b"]);
    }

    #[test]
    fn auto_keeps_one_paragraph_per_line_for_the_seed_and_bbc_layouts() {
        assert_eq!(paras(SEED_LIKE, SplitMode::Auto).len(), 3);
        assert_eq!(paras(BBC_LIKE, SplitMode::Auto).len(), 3);
    }

    #[test]
    fn auto_joins_hard_wrapped_lines_by_the_wrap_width() {
        assert_eq!(
            paras(WRAPPED, SplitMode::Auto),
            [
                "Showers continued throughout the week in the Bahia cocoa zone, alleviating the drought since early January.",
                "The dry period means the temporao will be late this year.",
                "A third block after a blank line, and it wraps too.",
            ]
        );
    }

    #[test]
    fn auto_keeps_lists_tables_and_json_lines_apart() {
        let list = "Budget measures announced on Tuesday in parliament\n- Increased spending on primary education\n- Increased spending on health\n- Announced a package for the sugar industry\n";
        assert_eq!(paras(list, SplitMode::Auto).len(), 4);
        let table =
            "The harbour authority published these figures today for\nWheat   2.55   2.40\nCorn    1.35   1.92\n";
        assert_eq!(paras(table, SplitMode::Auto).len(), 3);
        let jsonl = "{\"id\":1,\"text\":\"Stocks rose\"}\n{\"id\":2,\"text\":\"Bonds fell\"}\n";
        assert_eq!(paras(jsonl, SplitMode::Auto).len(), 2);
    }

    #[test]
    fn the_same_paragraph_wrapped_at_two_widths_has_one_key_text() {
        let words = "The Federal Reserve entered the government securities market to arrange one billion dlrs of customer repurchase agreements, a spokesman said.";
        for width in [40, 55, 72] {
            let mut text = String::new();
            let mut line = String::new();
            for w in words.split(' ') {
                if !line.is_empty() && line.len() + 1 + w.len() > width {
                    text.push_str(&line);
                    text.push('\n');
                    line.clear();
                }
                if !line.is_empty() {
                    line.push(' ');
                }
                line.push_str(w);
            }
            text.push_str(&line);
            assert_eq!(paras(&text, SplitMode::Auto), [words], "width {width}");
        }
    }

    #[test]
    fn auto_does_not_depend_on_the_quote_mode() {
        // German quotes close with U+201C, which is not in SENTENCE_END.
        let text = "\u{201E}Wir kommen morgen wieder\u{201C}\n\u{201E}Das ist nicht das Ende\u{201C}\nDer Streik geht weiter.\n";
        for q in [QuoteMode::Fold, QuoteMode::Keep] {
            let s = split(text, SplitMode::Auto, q);
            assert_eq!(s.spans.len(), 3, "{q:?}");
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
        assert_eq!(&WRAPPED[w.spans[1].orig.clone()], "    The dry period means the temporao will be\nlate this year.");
        assert_eq!(w.spans[1].lines, 3..5);
    }

    #[test]
    fn empty_and_blank_documents_have_no_paragraphs() {
        assert!(paras("", SplitMode::Auto).is_empty());
        assert!(paras(" \n\u{00A0}\n\t", SplitMode::Auto).is_empty());
    }

    /// The keys are made from `paragraph_in` with one buffer per document.
    #[test]
    fn a_paragraph_joined_in_a_buffer_is_the_paragraph() {
        for mode in [SplitMode::Auto, SplitMode::Blank, SplitMode::Line] {
            for text in [SEED_LIKE, BBC_LIKE, WRAPPED, "a\nb\n\nc\n \n\u{201C}d\u{201D}\ne"] {
                let s = split(text, mode, QuoteMode::Fold);
                let mut buf = String::from("left over from before");
                for i in 0..s.spans.len() {
                    assert_eq!(s.paragraph_in(i, &mut buf), s.paragraph(i), "{mode:?} {text:?} {i}");
                    let mut onto = String::from("before ");
                    s.paragraph_onto(i, &mut onto);
                    assert_eq!(onto, format!("before {}", s.paragraph(i)), "{mode:?} {text:?} {i}");
                }
            }
        }
        let s = split(WRAPPED, SplitMode::Blank, QuoteMode::Fold);
        assert_eq!(s.paragraph_in(2, &mut String::new()), "A third block after a blank line, and it wraps too.");
    }
}
