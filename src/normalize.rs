//! Normalisation: the output form of the text.
//!
//! Everything here is a pure function of its input. The rules, applied to
//! each line in this order:
//!
//! 1. **Line breaks.** CRLF, CR, LF, NEL (U+0085) and LINE SEPARATOR
//!    (U+2028) end a line; PARAGRAPH SEPARATOR (U+2029) ends a line *and*
//!    adds a blank line, so it always separates paragraphs. See [`lines`].
//! 2. **Invisible characters removed:** ZERO WIDTH SPACE (U+200B), WORD
//!    JOINER (U+2060), BYTE ORDER MARK / ZWNBSP (U+FEFF, leading or inside the
//!    text), SOFT HYPHEN (U+00AD), and every C0/C1 control character other than
//!    tab and the line breaks above (including DEL). ZWJ and ZWNJ are kept:
//!    scripts and emoji need them. Removal happens *before* NFC so that a
//!    letter and its combining mark separated by a stray control still compose.
//! 3. **Unicode NFC.** A quick check skips the work for text that is already
//!    NFC (all ASCII text is).
//! 4. **Quotes folded to ASCII** (unless [`QuoteMode::Keep`]): see
//!    [`fold_quote`] for the one table.
//! 5. **Whitespace:** every run of Unicode `White_Space` characters other than
//!    the line breaks (tab, VT, FF, NBSP, U+1680, U+2000–U+200A, U+202F,
//!    U+205F, U+3000, ...) becomes one ASCII space, and the line is trimmed.
//!    A line that is empty after this is blank.
//!
//! Invariant (property-tested): `normalize(normalize(x)) == normalize(x)`.

use std::borrow::Cow;
use std::ops::Range;

use unicode_normalization::{IsNormalized, UnicodeNormalization, is_nfc_quick};

mod ascii;
mod nfc;

pub(crate) use ascii::{collapse_ascii_into, push_inert_prefix, push_plain_char};
pub(crate) use nfc::is_plain_nfkc_char;

/// Whether curly and typographic quotes are folded to ASCII.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum QuoteMode {
    /// Fold the characters of [`fold_quote`]'s table to `'` and `"` (default).
    #[default]
    Fold,
    /// Leave quote characters as they are.
    Keep,
}

/// Single quotes, apostrophes and primes folded to `'`.
pub const SINGLE_QUOTES: [char; 9] = [
    '\u{2018}', // ‘ LEFT SINGLE QUOTATION MARK
    '\u{2019}', // ’ RIGHT SINGLE QUOTATION MARK
    '\u{201A}', // ‚ SINGLE LOW-9 QUOTATION MARK
    '\u{201B}', // ‛ SINGLE HIGH-REVERSED-9 QUOTATION MARK
    '\u{2032}', // ′ PRIME
    '\u{2039}', // ‹ SINGLE LEFT-POINTING ANGLE QUOTATION MARK
    '\u{203A}', // › SINGLE RIGHT-POINTING ANGLE QUOTATION MARK
    '\u{02BC}', // ʼ MODIFIER LETTER APOSTROPHE
    '\u{FF07}', // ＇ FULLWIDTH APOSTROPHE
];

/// Double quotes and double primes folded to `"`.
pub const DOUBLE_QUOTES: [char; 8] = [
    '\u{201C}', // “ LEFT DOUBLE QUOTATION MARK
    '\u{201D}', // ” RIGHT DOUBLE QUOTATION MARK
    '\u{201E}', // „ DOUBLE LOW-9 QUOTATION MARK
    '\u{201F}', // ‟ DOUBLE HIGH-REVERSED-9 QUOTATION MARK
    '\u{2033}', // ″ DOUBLE PRIME
    '\u{00AB}', // « LEFT-POINTING DOUBLE ANGLE QUOTATION MARK
    '\u{00BB}', // » RIGHT-POINTING DOUBLE ANGLE QUOTATION MARK
    '\u{FF02}', // ＂ FULLWIDTH QUOTATION MARK
];

/// Characters that end a sentence: a line ending with one of them is a
/// complete line, not a hard wrap.
pub const SENTENCE_END: [char; 16] = [
    '.', '!', '?', ':', ';', '\u{2026}', '"', '\'', ')', ']', '\u{201D}', '\u{2019}', '\u{00BB}', '\u{3002}',
    '\u{FF01}', '\u{FF1F}',
];

/// The quote table: maps each character of [`SINGLE_QUOTES`] to `'` and of
/// [`DOUBLE_QUOTES`] to `"`; every other character maps to itself.
///
/// NFKC alone does not do this: it leaves “ ” ‘ ’ « » untouched.
pub fn fold_quote(c: char) -> char {
    // A match compiles to a few range tests; the tables stay the one
    // definition (a test checks that both agree for every `char`).
    match c {
        '\u{2018}' | '\u{2019}' | '\u{201A}' | '\u{201B}' | '\u{2032}' | '\u{2039}' | '\u{203A}' | '\u{02BC}'
        | '\u{FF07}' => '\'',
        '\u{201C}' | '\u{201D}' | '\u{201E}' | '\u{201F}' | '\u{2033}' | '\u{00AB}' | '\u{00BB}' | '\u{FF02}' => '"',
        _ => c,
    }
}

/// True for the characters that rule 2 removes.
pub fn is_removed(c: char) -> bool {
    match c {
        '\u{200B}' | '\u{2060}' | '\u{FEFF}' | '\u{00AD}' => true,
        // Whitespace controls (tab, VT, FF, and the line breaks) are handled
        // by the whitespace and line rules instead.
        c if c.is_control() => !c.is_whitespace(),
        _ => false,
    }
}

/// A line of the input: its content (without terminator) and where it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawLine<'a> {
    /// The line's text, without its terminator.
    pub text: &'a str,
    /// Byte span of `text` in the input.
    pub span: Range<usize>,
    /// The line ended with U+2029 PARAGRAPH SEPARATOR: a blank line follows.
    pub paragraph_break: bool,
    /// The line has a terminator (false only for a final unterminated line).
    pub terminated: bool,
}

/// Splits `text` into lines at CRLF, CR, LF, NEL, U+2028 and U+2029.
///
/// A final empty segment after the last terminator is not a line, so
/// `"a\n"` has one line and `""` has none.
pub fn lines(text: &str) -> Lines<'_> {
    Lines { text, pos: 0, nel: None }
}

/// Iterator returned by [`lines`].
#[derive(Clone, Debug)]
pub struct Lines<'a> {
    text: &'a str,
    pos: usize,
    /// Where the next NEL (U+0085) at or after `pos` starts (`text.len()`
    /// when there is none; `None`: not searched yet). Rare, so it is found
    /// once by a substring search, and the other terminators by `memchr3`.
    nel: Option<usize>,
}

impl<'a> Iterator for Lines<'a> {
    type Item = RawLine<'a>;

    fn next(&mut self) -> Option<RawLine<'a>> {
        let start = self.pos;
        let bytes = self.text.as_bytes();
        if start >= bytes.len() {
            return None;
        }
        if self.nel.is_none_or(|n| n < start) {
            let found = memchr::memmem::find(&bytes[start..], "\u{85}".as_bytes());
            self.nel = Some(found.map_or(bytes.len(), |p| start + p));
        }
        let nel = self.nel.unwrap_or(bytes.len());
        // `\n`, `\r`, and the lead byte of U+2028/U+2029 (also that of
        // curly quotes and dashes, which are passed over) before the NEL.
        let mut i = start;
        let end = loop {
            match memchr::memchr3(b'\n', b'\r', 0xE2, &bytes[i..nel]) {
                Some(p) if terminator_at(&bytes[i + p..]) => break i + p,
                Some(p) => i += p + 1,
                None => break nel,
            }
        };
        let text = &self.text[start..end];
        let (len, para) = match bytes.get(end..) {
            Some([b'\r', b'\n', ..]) => (2, false),
            Some([b'\n' | b'\r', ..]) => (1, false),
            Some([0xC2, ..]) => (2, false),
            Some([0xE2, _, c, ..]) => (3, *c == 0xA9),
            _ => {
                self.pos = bytes.len();
                return Some(RawLine { text, span: start..end, paragraph_break: false, terminated: false });
            }
        };
        self.pos = end + len;
        Some(RawLine { text, span: start..end, paragraph_break: para, terminated: true })
    }
}

/// True when a line terminator starts at `b[0]` (`b[1..]` is what follows it).
fn terminator_at(b: &[u8]) -> bool {
    match b {
        [b'\n' | b'\r', ..] | [0xC2, 0x85, ..] => true,
        [0xE2, 0x80, c, ..] => *c & 0xFE == 0xA8,
        _ => false,
    }
}

/// Normalises one line (no line breaks inside) and appends it to `out`.
///
/// Applies rules 2–5 of the module documentation. Allocation-free for
/// lines that need no removal and are already NFC (all ASCII lines): those
/// take one pass that copies runs of unchanged text whole.
pub fn normalize_line_into(line: &str, quotes: QuoteMode, out: &mut String) {
    let ascii = line.is_ascii();
    let odd = if ascii { None } else { nfc::first_not_plain(line) };
    let plain = odd.is_none();
    // A line whose first character out of the plain ones may change under
    // NFC (a combining accent after a letter: quick check Maybe) is composed
    // piece by piece. One whose first such character is in NFC wherever it
    // stands (a Hebrew or Arabic point: quick check Yes) is most likely NFC
    // throughout, which the quick check below tells in one pass: a line of
    // such pieces costs more piece by piece (~8% more instructions on
    // pointed Hebrew).
    if odd.is_some_and(|c| is_nfc_quick(std::iter::once(c)) != IsNormalized::Yes)
        && composed_by_pieces_into(line, quotes, out)
    {
        return;
    }
    let nfc = plain || is_nfc_quick(line.chars()) == IsNormalized::Yes;
    if nfc {
        let start = out.len();
        // In ASCII there is nothing for a removed control to compose with,
        // so it can be skipped on the way; elsewhere removal must come
        // before NFC (rule 2), so meeting one means taking the slow path.
        if collapse_into(line, quotes, ascii, out) {
            return;
        }
        out.truncate(start);
    }
    // Here either the line is NFC and holds a removed character, or it may
    // not be NFC: then it is copied only when it holds one.
    let cleaned: Cow<'_, str> = if nfc || line.chars().any(is_removed) {
        Cow::Owned(line.chars().filter(|&c| !is_removed(c)).collect())
    } else {
        Cow::Borrowed(line)
    };
    // A line that failed the quick check and lost nothing fails it again.
    let composed: Cow<'_, str> =
        if matches!(cleaned, Cow::Owned(_)) && is_nfc_quick(cleaned.chars()) == IsNormalized::Yes {
            Cow::Borrowed(&cleaned)
        } else {
            let mut nfc = String::with_capacity(cleaned.len() + 8);
            by_pieces(&cleaned, &mut nfc, |piece, out| out.extend(piece.nfc()));
            Cow::Owned(nfc)
        };
    collapse_into(&composed, quotes, true, out);
}

/// [`normalize_line_into`] for a line that is not plainly NFC (it holds a
/// combining mark, say): each stretch of characters other than ASCII, with
/// the ASCII character before it, composed by itself ([`by_pieces`]), then
/// rules 4 and 5. What the general path gives, without its passes over the
/// whole line (the quick check, the search for removed characters: ~13,000
/// instructions for a 400-character line with one accent, benches/JSONL.md,
/// fortieth pass).
///
/// Rule 2 removes before NFC, which matters only where a removal lets two
/// characters compose, and characters compose only within a piece (an
/// ASCII character never composes with the one before it). So a piece's
/// removed characters are taken out before it is composed; one outside
/// every piece (ASCII, inside a run of ASCII) is skipped by rules 4 and 5.
/// A piece that starts with a removed ASCII character would let its
/// stretch compose with the character before that one, which the piece
/// leaves out: then the line goes back (false, nothing appended) to the
/// general path. A piece of plain characters ([`nfc::is_plainly_nfc`])
/// is NFC as it stands, and stays so without its removed characters.
fn composed_by_pieces_into(line: &str, quotes: QuoteMode, out: &mut String) -> bool {
    let mut composed = String::with_capacity(line.len() + 8);
    let mut general = false;
    by_pieces(line, &mut composed, |piece, out| {
        if piece.as_bytes().first().is_some_and(|&b| b.is_ascii() && is_removed(char::from(b))) {
            general = true;
        } else if nfc::is_plainly_nfc(piece) {
            out.push_str(piece);
        } else if piece.chars().any(is_removed) {
            out.extend(piece.chars().filter(|&c| !is_removed(c)).nfc());
        } else if is_nfc_quick(piece.chars()) == IsNormalized::Yes {
            // Points and marks already in order (Hebrew, Arabic).
            out.push_str(piece);
        } else {
            out.extend(piece.nfc());
        }
    });
    !general && collapse_into(&composed, quotes, true, out)
}

/// Appends `text` normalised by `form` (NFC or NFKC, which appends the
/// normal form of a piece to `out`) to `out`, piece by piece.
///
/// ASCII is in both normal forms, and every ASCII character starts a
/// normalisation boundary (canonical combining class 0, quick check Yes,
/// never the second character of a composition), so `N(a + b) = N(a) +
/// N(b)` whenever `b` starts with one. Runs of ASCII are therefore copied,
/// and only each stretch of other characters, with the ASCII character
/// before it (which may compose with a combining mark), goes through `form`:
/// a long line with one combining accent costs a few characters of work,
/// not the whole line. The tests compare it with the whole-text forms.
pub(crate) fn by_pieces(text: &str, out: &mut String, mut form: impl FnMut(&str, &mut String)) {
    let b = text.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let Some(j) = first_non_ascii(&b[i..]).map(|p| i + p) else {
            out.push_str(&text[i..]);
            break;
        };
        // `j > i` but at the very start: `i` is 0 or an ASCII byte.
        let from = if j > i { j - 1 } else { j };
        out.push_str(&text[i..from]);
        let end = b[j..].iter().position(u8::is_ascii).map_or(b.len(), |p| j + p);
        form(&text[from..end], out);
        i = end;
    }
}

/// Where the first byte with the high bit set is, eight bytes at a time.
pub(crate) fn first_non_ascii(b: &[u8]) -> Option<usize> {
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let mut words = b.chunks_exact(8);
    let mut at = 0;
    for w in &mut words {
        let bits = u64::from_le_bytes(w.try_into().unwrap_or([0; 8])) & HIGH;
        if bits != 0 {
            return Some(at + bits.trailing_zeros() as usize / 8);
        }
        at += 8;
    }
    words.remainder().iter().position(|c| !c.is_ascii()).map(|p| at + p)
}

/// Rules 4 and 5 on text that is NFC: folds quotes, collapses whitespace
/// runs to one space, trims. Runs of characters that stay as they are (with
/// single ASCII spaces between them) are copied whole. A removed character
/// is skipped when `skip_removed`; otherwise the function stops and returns
/// false (the caller then removes first and starts again).
fn collapse_into(line: &str, quotes: QuoteMode, skip_removed: bool, out: &mut String) -> bool {
    let bytes = line.as_bytes();
    let printable = |b: u8| (0x21..0x7F).contains(&b);
    let kept_as_is =
        |c: char| !c.is_whitespace() && !is_removed(c) && (quotes == QuoteMode::Keep || fold_quote(c) == c);
    let start = out.len();
    let mut pending_space = false;
    let mut i = 0;
    while i < bytes.len() {
        let run = i;
        loop {
            i = plain_ascii_end(bytes, i, run);
            match bytes.get(i) {
                Some(&b) if b >= 0x80 => match line[i..].chars().next() {
                    Some(c) if kept_as_is(c) => i += c.len_utf8(),
                    _ => break,
                },
                Some(b' ') if i > run && bytes.get(i + 1).is_some_and(|&b| printable(b)) => i += 2,
                _ => break,
            }
        }
        if i > run {
            if pending_space && out.len() > start {
                out.push(' ');
            }
            pending_space = false;
            out.push_str(&line[run..i]);
        }
        let Some(c) = line[i..].chars().next() else { break };
        i += c.len_utf8();
        if c.is_whitespace() {
            pending_space = true;
        } else if is_removed(c) {
            if !skip_removed {
                return false;
            }
        } else {
            if pending_space && out.len() > start {
                out.push(' ');
            }
            pending_space = false;
            out.push(fold_quote(c));
        }
    }
    true
}

/// Past the printable ASCII at `bytes[i..]`, with single spaces inside
/// the run that began at `run` (a space is taken only once `i > run` and
/// only from the blocks: the caller decides a space at the end): thirty-two
/// bytes at a time (vector compares), then eight at a time, then a byte.
#[inline]
fn plain_ascii_end(bytes: &[u8], mut i: usize, run: usize) -> usize {
    while let Some(Ok(w)) = bytes.get(i..i + 33).map(<&[u8; 33]>::try_from) {
        if !plain_ascii_block(w, i > run) {
            break;
        }
        i += 32;
    }
    while let Some(Ok(chunk)) = bytes.get(i..i + 8).map(<[u8; 8]>::try_from) {
        let n = plain_ascii_prefix(u64::from_le_bytes(chunk), i > run);
        i += n;
        if n < 8 {
            break;
        }
    }
    while i < bytes.len() && (0x21..0x7F).contains(&bytes[i]) {
        i += 1;
    }
    i
}

/// How many of the eight bytes `w` (little-endian) extend a run of
/// [`collapse_into`] as they are: printable ASCII, or a space followed by
/// printable ASCII (so not a space last: its successor is not known) and,
/// first, only when the run has already begun (`inside`).
#[inline]
fn plain_ascii_prefix(w: u64, inside: bool) -> usize {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    const LOW7: u64 = 0x7F7F_7F7F_7F7F_7F7F;
    // Exact per byte (no carries between bytes): the high bit of each byte
    // in 0x21..=0x7E, and of each space.
    let low = w & LOW7;
    let at_least_21 = low.wrapping_add(ONES * 0x5F);
    let is_7f = low.wrapping_add(ONES);
    let printable = at_least_21 & !is_7f & !w & HIGH;
    let t = w ^ (ONES * 0x20);
    let spaces = !((t & LOW7).wrapping_add(LOW7) | t) & HIGH;
    let mut ok = printable | (spaces & (printable >> 8));
    if !inside {
        ok &= !(spaces & 0x80);
    }
    ((!ok & HIGH).trailing_zeros() / 8) as usize
}

/// True when the first 32 of the 33 bytes `w` all extend a run of
/// [`collapse_into`] as they are: what eight-byte steps of
/// [`plain_ascii_prefix`] would take, tested without branches so that the
/// compiler uses vector compares (the 33rd byte follows a last space).
#[inline]
fn plain_ascii_block(w: &[u8; 33], inside: bool) -> bool {
    let printable = |b: u8| b.wrapping_sub(0x21) < 0x5E;
    let mut bad = !inside & (w[0] == b' ');
    for j in 0..32 {
        let (c, n) = (w[j], w[j + 1]);
        bad |= !(printable(c) | ((c == b' ') & printable(n)));
    }
    !bad
}

/// Normalises one line and returns it; see [`normalize_line_into`].
pub fn normalize_line(line: &str, quotes: QuoteMode) -> String {
    let mut out = String::with_capacity(line.len());
    normalize_line_into(line, quotes, &mut out);
    out
}

/// Normalises a whole text: every line by [`normalize_line_into`], each line
/// terminator written as `\n`, U+2029 as `\n\n`.
///
/// ```
/// use newsdedup::normalize::{normalize, QuoteMode};
/// let text = "\u{FEFF}\u{201C}Hello,\u{00A0}\u{00A0}world\u{201D}\r\n";
/// assert_eq!(normalize(text, QuoteMode::Fold), "\"Hello, world\"\n");
/// ```
pub fn normalize(text: &str, quotes: QuoteMode) -> String {
    let mut out = String::with_capacity(text.len());
    for line in lines(text) {
        normalize_line_into(line.text, quotes, &mut out);
        if line.terminated {
            out.push('\n');
        }
        if line.paragraph_break {
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests;
