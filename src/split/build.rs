//! A split built while the text is being decoded (the fused JSONL pass,
//! [`crate::jsonl`]): the decoder hands over the text a piece at a time,
//! and the lines are found and normalised on the way. A text that is
//! already decoded (a file's, a CSV field's) is handed over the same way by
//! `jsonl::feed_text` ([`crate::document::Document::prepare`]).
//!
//! Pieces of ASCII go straight into the normalised text
//! ([`crate::normalize::collapse_ascii_into`]); line breaks are reported by
//! the decoder as it meets them (the `\n` and `\r` escapes of a JSON
//! string; NEL, U+2028 and U+2029 are found in the non-ASCII stretches it
//! validates). Characters outside ASCII that cannot take part in NFC (news
//! text's NBSP, curly quotes, dashes, Latin-1 letters, and nearly every
//! letter of other scripts) are normalised one at a time, or a run at once
//! where the rules leave them as they stand (a word in Cyrillic or CJK); a
//! line that holds any other is normalised at its end by the
//! general path, [`super::NormLines::push_line`], exactly as [`super::split`]
//! would. The result equals `split(text, mode, quotes)`
//! (property-tested in `src/jsonl/decode_tests.rs`).

use super::{NormLines, Split, SplitMode, Terminator};
use crate::jsonl::TextSink;
use crate::normalize::{QuoteMode, RawLine, collapse_ascii_into, push_inert_prefix, push_plain_char};

/// Lines of a text found and normalised while it is decoded: the
/// [`TextSink`] the pipeline hands to [`crate::jsonl::Record::parse_fed`].
/// When the record's text was told whole, [`LineBuilder::finish`] gives
/// what `split(text, mode, quotes)` gives.
#[derive(Debug)]
pub struct LineBuilder {
    lines: NormLines,
    mode: SplitMode,
    quotes: QuoteMode,
    /// Where the current line starts in the decoded text.
    start: usize,
    /// Where its normal form starts in the normalised text.
    norm_start: usize,
    /// Whitespace met in the current line and not yet written.
    pending: bool,
    /// The current line holds a character other than ASCII: it is
    /// normalised by the general path once it ends.
    general: bool,
    /// Bytes more than characters in the current line's normal form.
    extra: usize,
    /// Just after a CR that ended a line (its offset + 1): an LF there is
    /// the second half of a CRLF, not another line break.
    after_cr: Option<usize>,
}

impl LineBuilder {
    /// A builder for a text of about `len` bytes.
    pub fn new(len: usize, mode: SplitMode, quotes: QuoteMode) -> LineBuilder {
        let lines = NormLines::with_capacity(len);
        LineBuilder {
            lines,
            mode,
            quotes,
            start: 0,
            norm_start: 0,
            pending: false,
            general: false,
            extra: 0,
            after_cr: None,
        }
    }

    /// Ends the current line at `text[end]`; the next starts at `next`.
    fn end_line(&mut self, text: &str, end: usize, next: usize, term: Terminator) {
        let span = self.start..end;
        let line = &text[span.clone()];
        if self.general {
            self.lines.norm.truncate(self.norm_start);
            let raw = RawLine {
                text: line,
                span,
                paragraph_break: term == Terminator::Paragraph,
                terminated: term != Terminator::None,
            };
            self.lines.push_line(&raw, self.quotes);
        } else {
            // Most lines start with a printable ASCII character: no indent,
            // and no call to the Unicode `trim_start`.
            let indent = match line.as_bytes().first() {
                Some(c) if c.is_ascii_graphic() => 0,
                _ => line.len() - line.trim_start().len(),
            };
            let chars = self.lines.norm.len() - self.norm_start - self.extra;
            self.lines.record(self.norm_start, span, term, indent, chars);
        }
        self.start = next;
        self.norm_start = self.lines.norm.len();
        self.pending = false;
        self.general = false;
        self.extra = 0;
    }

    /// The split of `text`, the whole decoded text.
    pub fn finish(mut self, text: &str) -> Split {
        if self.start < text.len() {
            self.end_line(text, text.len(), text.len(), Terminator::None);
        }
        let mode = self.mode;
        self.lines.into_split(text, mode)
    }
}

impl TextSink for LineBuilder {
    /// ASCII text without `\n` or `\r`.
    #[inline]
    fn ascii(&mut self, s: &str) {
        if s.is_empty() {
            return;
        }
        self.after_cr = None;
        if !self.general {
            collapse_ascii_into(s, &mut self.pending, self.norm_start, &mut self.lines.norm);
        }
    }

    /// ASCII text as [`LineBuilder::ascii`], from a JSON string as it
    /// stands: no control characters, and, unless `untidy`, no DEL and no
    /// two spaces in a row. Such a piece is its own normal form but for a
    /// space at either end (made pending): it is copied, not walked again.
    // Always inlined: the decoder calls it at every stop, and inlined into
    // the decoder's loop it is 14.6M fewer instructions over 40 MB of the
    // bench's JSONL (benches/JSONL.md, eleventh pass).
    #[inline(always)]
    fn raw_ascii(&mut self, s: &str, untidy: bool) {
        if untidy || self.general || s.is_empty() {
            return self.ascii(s);
        }
        self.after_cr = None;
        let (s, leading) = s.strip_prefix(' ').map_or((s, false), |rest| (rest, true));
        let (s, trailing) = s.strip_suffix(' ').map_or((s, false), |rest| (rest, true));
        self.pending |= leading;
        if !s.is_empty() {
            let norm = &mut self.lines.norm;
            if self.pending && norm.len() > self.norm_start {
                norm.push(' ');
            }
            norm.push_str(s);
            self.pending = false;
        }
        self.pending |= trailing;
    }

    /// A `\n` (LF) or `\r` (CR) decoded at `text[at]`; `text` is the decoded text so far.
    fn line_break(&mut self, text: &str, at: usize) {
        if text.as_bytes().get(at) == Some(&b'\n') && self.after_cr == Some(at) {
            // CRLF: one break, already recorded at the CR.
            self.start = at + 1;
            self.after_cr = None;
            return;
        }
        self.end_line(text, at, at + 1, Terminator::Newline);
        self.after_cr = (text.as_bytes().get(at) == Some(&b'\r')).then_some(at + 1);
    }

    /// Non-ASCII text (valid UTF-8) decoded at `text[at..]`, the end of
    /// the decoded text so far: NEL and LINE SEPARATOR end a line,
    /// PARAGRAPH SEPARATOR ends one and adds a blank line; other characters
    /// are normalised here when they cannot take part in NFC
    /// (`normalize::push_plain_char`), else the line takes the general path.
    fn non_ascii(&mut self, text: &str, at: usize) {
        if at < text.len() {
            self.after_cr = None;
        }
        let mut i = at;
        while i < text.len() {
            // A run of characters copied as they stand (most of a word in
            // another script) is appended at once. A stretch of one
            // character of two or three bytes (a curly quote, NBSP, an
            // accented letter in English text) is not worth the look.
            if !self.general && text.len() - i > 3 {
                let norm = &mut self.lines.norm;
                let (bytes, extra) = push_inert_prefix(&text[i..], &mut self.pending, self.norm_start, norm);
                if bytes > 0 {
                    self.extra += extra;
                    i += bytes;
                    continue;
                }
            }
            // `i` is on a character boundary, before the end.
            let Some(c) = text[i..].chars().next() else { break };
            let next = i + c.len_utf8();
            let term = match c {
                '\u{85}' | '\u{2028}' => Terminator::Newline,
                '\u{2029}' => Terminator::Paragraph,
                _ => {
                    if !self.general {
                        let norm = &mut self.lines.norm;
                        match push_plain_char(c, self.quotes, &mut self.pending, self.norm_start, norm) {
                            Some(extra) => self.extra += extra,
                            None => self.general = true,
                        }
                    }
                    i = next;
                    continue;
                }
            };
            self.end_line(text, i, next, term);
            i = next;
        }
    }
}
