//! A prepared document: decoded text, paragraphs, their keys, and rendering
//! of the kept paragraphs.
//!
//! Preparing ([`Document::prepare`]) is a pure function of the text and the
//! [`TextOptions`], which is what lets the pipeline run it on many threads
//! while the keep/drop decision stays sequential.
//!
//! # What rendering may change
//!
//! The clean text is the input with the dropped paragraphs cut out (with the
//! line breaks that separated them, [`Document::removal_spans`]); every
//! remaining line is normalised ([`crate::normalize`]), and nothing else
//! changes: kept lines keep their line breaks, blank lines, list markers and
//! row structure, and a text without a final line break gets none. Two
//! exceptions, both only in [`Emit::Normalized`]:
//!
//! * where two kept paragraphs would read as one when the output is split
//!   again (say a dropped paragraph stood between a line that ends
//!   mid-sentence and a long next line), a blank line is written between
//!   them, so cleaning the clean text changes nothing;
//! * [`Emit::Unwrapped`] (`--unwrap`) writes each kept paragraph on one
//!   line, its lines joined by one space.

use std::borrow::Cow;
use std::ops::Range;

use crate::dedup::Verdict;
use crate::key::{Digest, KeyMode, Keyed, Keyer, digest_each, document_key, document_keys};
use crate::normalize::QuoteMode;
use crate::split::{LineBuilder, Split, SplitMode, Terminator, would_join};
use crate::wrap::{MAX_WRAP_WIDTH, WrapLine};

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
    /// The normalised text, each paragraph on one line: a hard-wrapped
    /// paragraph's lines joined by one space (`--unwrap`).
    Unwrapped,
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
        let (original, split) = Document::split_text(original, opts);
        Document::from_split(original, split, opts)
    }

    /// [`Document::prepare`] for the bytes of a file, when they are UTF-8
    /// without a NUL: validated in the same pass that splits them. `Err`
    /// gives the bytes back, for [`crate::read::decode`] to report or
    /// repair (UTF-16 never passes: its byte order mark is not UTF-8).
    pub fn prepare_bytes(bytes: Vec<u8>, opts: &TextOptions) -> Result<Document, Vec<u8>> {
        let (original, split) = Document::split_bytes(bytes, opts)?;
        Ok(Document::from_split(original, split, opts))
    }

    /// The first half of [`Document::prepare`]: `original` split, not yet
    /// keyed (for [`Document::from_splits`]).
    pub fn split_text(original: String, opts: &TextOptions) -> (String, Split) {
        // The fused pass (as for JSON Lines): equal to `split(&original, ..)`.
        let mut lines = LineBuilder::new(original.len(), opts.split, opts.quotes);
        crate::jsonl::feed_text(&original, &mut lines);
        let split = lines.finish(&original);
        (original, split)
    }

    /// The first half of [`Document::prepare_bytes`]: the bytes as text,
    /// split but not yet keyed; `Err` gives the bytes back, as there.
    pub fn split_bytes(bytes: Vec<u8>, opts: &TextOptions) -> Result<(String, Split), Vec<u8>> {
        let mut lines = LineBuilder::new(bytes.len(), opts.split, opts.quotes);
        if crate::jsonl::feed_bytes(&bytes, &mut lines).is_err() {
            return Err(bytes);
        }
        // SAFETY: `feed_bytes` found every byte valid UTF-8.
        let original = unsafe { String::from_utf8_unchecked(bytes) };
        let split = lines.finish(&original);
        Ok((original, split))
    }

    /// Keys `original` already split by `opts` (the fused JSONL pass:
    /// `split` must equal `split(&original, opts.split, opts.quotes)`).
    pub fn from_split(original: String, split: Split, opts: &TextOptions) -> Document {
        let keys = key_paragraphs(&[&split], opts.key).pop().unwrap_or_default();
        let whole = document_key(&keys);
        Document { original, split, keys, whole }
    }

    /// [`Document::from_split`] for several documents at once, in their
    /// order: their paragraphs are hashed together, and then their
    /// document keys, which fills the lanes of [`crate::key::digest_each`]
    /// better than one document's few paragraphs do. The documents are the
    /// same as one at a time.
    pub fn from_splits(parts: Vec<(String, Split)>, opts: &TextOptions) -> Vec<Document> {
        let splits: Vec<&Split> = parts.iter().map(|(_, split)| split).collect();
        let keys = key_paragraphs(&splits, opts.key);
        let wholes = document_keys(&keys);
        parts
            .into_iter()
            .zip(keys)
            .zip(wholes)
            .map(|(((original, split), keys), whole)| Document { original, split, keys, whole })
            .collect()
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
    /// [`Emit::Original`]: the input text with the [`Document::removal_spans`]
    /// of the dropped paragraphs deleted: kept paragraphs, the line breaks
    /// between them and any text before the first or after the last paragraph
    /// stay exactly as they were.
    ///
    /// [`Emit::Normalized`]: the same, each remaining line normalised, line
    /// breaks written as `\n` (see the module docs for the one exception).
    /// [`Emit::Unwrapped`]: as `Normalized`, each paragraph on one line.
    pub fn render_into(&self, verdicts: &[Verdict], emit: Emit, out: &mut impl TextOut) {
        if !verdicts.iter().any(|v| v.is_kept()) {
            return;
        }
        match emit {
            Emit::Normalized => match self.rendered_as_split(verdicts) {
                Some(text) => out.put(text),
                None => self.render_lines(verdicts, false, out),
            },
            Emit::Unwrapped => self.render_lines(verdicts, true, out),
            Emit::Original => {
                let mut at = 0;
                // Spans run between line breaks: whole `str` slices.
                for (span, _) in self.removals(verdicts) {
                    out.put(&self.original[at..span.start]);
                    at = span.end;
                }
                out.put(&self.original[at..]);
            }
        }
    }

    /// The normalised rendering: what is left once the removal spans are cut
    /// out, a paragraph at a time. A paragraph's lines are kept when it is; a
    /// line break outside paragraphs when it does not lie in a removal span.
    fn render_lines(&self, verdicts: &[Verdict], unwrap: bool, out: &mut impl TextOut) {
        let text = |para: usize, line: usize| -> Cow<'_, str> {
            if unwrap { self.split.paragraph(para) } else { Cow::Borrowed(self.split.line(line)) }
        };

        // The wrap width the output will have when it is split again: its
        // longest line (a kept line, or a kept paragraph unwrapped).
        let lines = &self.split.lines;
        let width = (self.split.spans.iter().zip(verdicts).enumerate())
            .filter(|(_, (_, v))| v.is_kept())
            .map(|(p, (span, _))| match unwrap {
                true => self.output_chars(p, span.lines.start, true),
                false => lines[span.lines.clone()].iter().map(|l| l.chars).max().unwrap_or(0),
            })
            .max()
            .unwrap_or(0);
        let mut prev: Option<(usize, usize)> = None;
        let mut breaks = 0;
        self.for_each_piece(verdicts, |piece| match piece {
            Piece::Text { para } => {
                let (first, last) = (self.split.spans[para].lines.start, self.split.spans[para].lines.end - 1);
                // Its first output line (the paragraph itself, unwrapped).
                let t = text(para, first);
                if let Some((p, l)) = prev
                    && p != para
                    && breaks == 1
                    && would_join(
                        &self.as_output(&text(p, l), l, unwrap),
                        &self.as_output(&t, first, unwrap),
                        self.split.mode,
                        width,
                    )
                {
                    out.put("\n");
                }
                match unwrap {
                    true => out.put(&t),
                    // Its lines with the `\n`s between them, as the split holds them.
                    false => out.put(&self.split.text[self.split.spans[para].text.clone()]),
                }
                prev = Some((para, last));
                breaks = 0;
            }
            Piece::Break(Terminator::Paragraph) => {
                out.put("\n\n");
                breaks += 2;
            }
            Piece::Break(_) => {
                out.put("\n");
                breaks += 1;
            }
        });
    }

    /// The normalised rendering without building it, when it is the split's
    /// own text: every paragraph kept, no U+2029 (written as two breaks), and
    /// no two paragraphs the output could join (line mode, or auto mode with
    /// a wrap width over [`MAX_WRAP_WIDTH`], where nothing is ever joined),
    /// so no blank line is added. [`Split::text`] is every normalised line
    /// followed by `\n`; a last line without a break loses that `\n`.
    fn rendered_as_split(&self, verdicts: &[Verdict]) -> Option<&str> {
        let split = &self.split;
        let all_kept = verdicts.len() == split.spans.len() && verdicts.iter().all(|v| v.is_kept());
        let never_joined = match split.mode {
            SplitMode::Line => true,
            SplitMode::Auto => split.width > MAX_WRAP_WIDTH,
            SplitMode::Blank => false,
        };
        if !all_kept || !never_joined || split.lines.iter().any(|l| l.terminator == Terminator::Paragraph) {
            return None;
        }
        match split.lines.last() {
            Some(l) if l.terminator == Terminator::None => split.text.get(..split.text.len() - 1),
            _ => Some(&split.text),
        }
    }

    /// Rendered text `t` (line `line`, or its paragraph unwrapped) as the
    /// wrap rule sees it; a line's length in characters is the split's, not
    /// counted again at every break.
    fn as_output<'t>(&self, t: &'t str, line: usize, unwrap: bool) -> WrapLine<'t> {
        let chars = if unwrap { t.chars().count() } else { self.split.lines[line].chars };
        debug_assert_eq!(chars, t.chars().count());
        WrapLine { norm: t, orig: t, chars }
    }

    /// Length in characters of an output line: line `line`, or, unwrapped,
    /// paragraph `para` (its lines and the spaces joining them).
    fn output_chars(&self, para: usize, line: usize, unwrap: bool) -> usize {
        if unwrap { self.split.paragraph_chars(para) } else { self.split.lines[line].chars }
    }

    /// What is left of the document's lines once the dropped paragraphs are
    /// cut out, handed to `f` in order (nothing is collected): each kept
    /// paragraph as one piece, and the line breaks outside paragraphs that
    /// are not cut out with a dropped one.
    ///
    /// The breaks inside a paragraph are never handed over: a paragraph's
    /// lines end with [`Terminator::Newline`] but its last (the split joins a
    /// line to the next only then), and no removal span reaches inside a kept
    /// paragraph, while the span of a dropped one covers it whole (see
    /// [`Document::removal_spans`]). So the walk steps from one paragraph's
    /// last line to the next paragraph or blank line.
    fn for_each_piece(&self, verdicts: &[Verdict], mut f: impl FnMut(Piece)) {
        let spans = &self.split.spans;
        let lines = &self.split.lines;
        // The first paragraph that does not end before the current line
        // (paragraphs are in line order, blank lines between them).
        let mut next = 0;
        let mut removals = self.removals(verdicts).peekable();
        let mut i = 0;
        while i < lines.len() {
            while spans.get(next).is_some_and(|s| s.lines.end <= i) {
                next += 1;
            }
            // The paragraph starting at this line (else a blank line).
            if let Some(s) = spans.get(next).filter(|s| s.lines.start == i) {
                let last = s.lines.end - 1;
                if verdicts.get(next).is_some_and(|v| v.is_kept()) {
                    f(Piece::Text { para: next });
                }
                i = last;
            }
            let line = &lines[i];
            i += 1;
            if line.terminator == Terminator::None {
                continue;
            }
            let at = line.orig.end;
            while removals.next_if(|(range, _)| range.end <= at).is_some() {}
            if removals.peek().is_none_or(|(range, _)| at < range.start) {
                f(Piece::Break(line.terminator));
            }
        }
    }

    /// Byte ranges of the input text to delete so that exactly the dropped
    /// paragraphs disappear, with the line breaks that separated them: one
    /// range per dropped paragraph (with its index), in order, tiling each run
    /// of consecutive dropped paragraphs.
    ///
    /// A dropped paragraph between two kept ones takes the separator *before*
    /// it: `[end of previous paragraph, its end)`. One before any kept
    /// paragraph takes the separator *after* it: `[its start, start of next)`.
    /// One after the last kept paragraph takes its own line break: `[end of
    /// the previous paragraph's line break, end of its own)`, so the last
    /// kept line keeps its line break (a file cut after its 8th line ends
    /// with that line's `\n`). When nothing is kept the ranges cover the
    /// whole text. Deleting them is what [`Emit::Original`] does and what
    /// `--annotate` records.
    pub fn removal_spans(&self, verdicts: &[Verdict]) -> Vec<(Range<usize>, usize)> {
        self.removals(verdicts).collect()
    }

    /// [`Document::removal_spans`] as an iterator.
    fn removals<'s>(&'s self, verdicts: &'s [Verdict]) -> impl Iterator<Item = (Range<usize>, usize)> + 's {
        let spans = &self.split.spans;
        let n = spans.len().min(verdicts.len());
        let first_kept = verdicts[..n].iter().position(|v| v.is_kept());
        let last_kept = verdicts[..n].iter().rposition(|v| v.is_kept());
        // Where the line break after paragraph `k` ends.
        let after = move |k: usize| {
            let next_line = spans[k].lines.end;
            self.split.lines.get(next_line).map_or(self.original.len(), |l| l.orig.start)
        };
        (0..n).filter(move |&k| !verdicts[k].is_kept()).map(move |k| {
            let next_start = if k + 1 < n { spans[k + 1].orig.start } else { self.original.len() };
            let range = match (first_kept, last_kept) {
                (Some(_), Some(l)) if l < k => after(k - 1)..after(k),
                (Some(f), _) if f < k => spans[k - 1].orig.end..spans[k].orig.end,
                (Some(_), _) => spans[k].orig.start..next_start,
                (None, _) if k == 0 => 0..next_start,
                (None, _) => spans[k].orig.start..next_start,
            };
            (range, k)
        })
    }

    /// The kept paragraphs as [`Document::render_into`] writes them: the
    /// split's own text when that is the rendering (nothing dropped and
    /// nothing to set apart: no copy), else rendered into `buf` (cleared
    /// first).
    pub fn rendered<'a>(&'a self, verdicts: &[Verdict], emit: Emit, buf: &'a mut String) -> &'a str {
        if matches!(emit, Emit::Normalized)
            && verdicts.iter().any(|v| v.is_kept())
            && let Some(text) = self.rendered_as_split(verdicts)
        {
            return text;
        }
        buf.clear();
        self.render_into(verdicts, emit, buf);
        buf
    }

    /// The kept paragraphs as a string; see [`Document::render_into`].
    pub fn render(&self, verdicts: &[Verdict], emit: Emit) -> String {
        let mut out = String::new();
        self.render_into(verdicts, emit, &mut out);
        out
    }
}

/// Where rendered text goes: bytes or a `String`. Rendering only ever
/// appends whole `str` slices, so a `String` needs no UTF-8 check after.
pub trait TextOut {
    /// Appends `s`.
    fn put(&mut self, s: &str);
}

impl TextOut for Vec<u8> {
    fn put(&mut self, s: &str) {
        self.extend_from_slice(s.as_bytes());
    }
}

impl TextOut for String {
    fn put(&mut self, s: &str) {
        self.push_str(s);
    }
}

/// A piece of the normalised output: a kept paragraph, or a line break.
#[derive(Debug)]
enum Piece {
    /// Kept paragraph `para`, all its lines.
    Text { para: usize },
    /// A line break.
    Break(Terminator),
}

/// The keys of the paragraphs of each of `splits`, hashed together
/// ([`digest_each`]: the lanes of the SHA extensions or of AVX-512
/// interleave several paragraphs, of one document or of several). A key
/// that is the paragraph's text as split (a one-line paragraph that
/// normalising leaves alone: most of them) is hashed where it lies; the
/// others are gathered in one buffer first.
fn key_paragraphs(splits: &[&Split], mode: KeyMode) -> Vec<Vec<Keyed>> {
    /// Where a key's bytes are: in split `doc`'s text or in the gathered buffer.
    enum At {
        Split { doc: usize, bytes: Range<usize> },
        Gathered(Range<usize>),
    }
    let mut keyer = Keyer::new(mode);
    let mut gathered = String::new();
    let total = splits.iter().map(|s| s.spans.len()).sum();
    let mut at = Vec::with_capacity(total);
    // Every document's keys one after the other, cut apart once hashed.
    let mut keys = Vec::with_capacity(total);
    for (doc, split) in splits.iter().enumerate() {
        for i in 0..split.spans.len() {
            let known = split.paragraph_chars(i);
            let chars = if split.spans[i].lines.len() <= 1 {
                let text = &split.text[split.spans[i].text.clone()];
                match keyer.key_counted(text, known) {
                    (key, chars) if std::ptr::eq(key, text) => {
                        let start = split.spans[i].text.start;
                        at.push(At::Split { doc, bytes: start..start + key.len() });
                        chars
                    }
                    (key, chars) => {
                        at.push(At::Gathered(gathered.len()..gathered.len() + key.len()));
                        gathered.push_str(key);
                        chars
                    }
                }
            } else {
                // Joined where it is hashed from, its key left in its place.
                let start = gathered.len();
                split.paragraph_onto(i, &mut gathered);
                let chars = keyer.key_at_end(&mut gathered, start, known);
                at.push(At::Gathered(start..gathered.len()));
                chars
            };
            keys.push(Keyed { digest: Digest([0; 32]), chars });
        }
    }
    let bytes = |n: usize| match &at[n] {
        At::Split { doc, bytes } => &splits[*doc].text.as_bytes()[bytes.clone()],
        At::Gathered(r) => &gathered.as_bytes()[r.clone()],
    };
    digest_each(total, bytes, |n, d| keys[n].digest = d);
    if splits.len() == 1 {
        return vec![keys];
    }
    let mut keys = keys.into_iter();
    splits.iter().map(|s| keys.by_ref().take(s.spans.len()).collect()).collect()
}

#[cfg(test)]
mod tests;
