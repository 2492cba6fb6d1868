//! Rules 2 and 5 on ASCII text fed in pieces (and rules 2–5 on characters
//! that cannot take part in NFC, one at a time, or a run at once when the
//! rules leave every character of it as it stands: [`push_inert_prefix`]): what
//! [`super::normalize_line_into`] does to an ASCII line, for a decoder that
//! meets the line a run at a time (the fused JSONL pass,
//! [`crate::split::LineBuilder`]).
//!
//! In ASCII there is nothing to compose (NFC) and no quote to fold, so a
//! line's normal form is: control characters and DEL removed, every run of
//! tab, VT, FF and space made one space, the line trimmed. The state carried
//! from one piece to the next is whether whitespace is pending; where the
//! line starts in the output tells a leading space from an inner one.

use super::{QuoteMode, fold_quote, is_removed, nfc, plain_ascii_end};

/// Appends the character `c` (not ASCII, not a line break) of the line that
/// starts at `line_start` in `out`, as rules 2–5 treat it in a line whose
/// other characters are ASCII or went through here: removed, whitespace
/// (made pending), or written with its quote folded. False, with nothing
/// written, for a character that may take part in NFC (not
/// NFC_Quick_Check=Yes with canonical combining class 0): the line then
/// needs the general path, [`super::normalize_line_into`].
///
/// Such a line is NFC once its removed characters are gone, so what
/// `normalize_line_into` does to it is exactly this, character by
/// character (its removal pass, the NFC shortcut, then `collapse_into`).
/// Returns how many bytes more than characters were written.
pub(crate) fn push_plain_char(
    c: char,
    quotes: QuoteMode,
    pending: &mut bool,
    line_start: usize,
    out: &mut String,
) -> Option<usize> {
    if is_removed(c) {
        return Some(0);
    }
    if !nfc::is_plain_char(c) {
        return None;
    }
    if c.is_whitespace() {
        *pending = true;
        return Some(0);
    }
    if *pending && out.len() > line_start {
        out.push(' ');
    }
    *pending = false;
    let c = if quotes == QuoteMode::Fold { fold_quote(c) } else { c };
    out.push(c);
    Some(c.len_utf8() - 1)
}

/// Appends the longest prefix of `s` made of characters the line rules
/// copy as they stand ([`nfc::is_inert_char`]) to the line that starts at
/// `line_start` in `out`, at once, where [`push_plain_char`] would take it
/// a character at a time (a pending space goes before it). Returns the
/// prefix's length in bytes and how many bytes more than characters it
/// has; `(0, 0)` when `s` does not start with such a character.
#[inline]
pub(crate) fn push_inert_prefix(s: &str, pending: &mut bool, line_start: usize, out: &mut String) -> (usize, usize) {
    let mut chars = 0;
    let mut bytes = s.len();
    for (i, c) in s.char_indices() {
        if !nfc::is_inert_char(c) {
            bytes = i;
            break;
        }
        chars += 1;
    }
    if bytes == 0 {
        return (0, 0);
    }
    if *pending && out.len() > line_start {
        out.push(' ');
    }
    *pending = false;
    out.push_str(&s[..bytes]);
    (bytes, bytes - chars)
}

/// Appends the ASCII `run` (no `\n` or `\r`) of the line that starts at
/// `line_start` in `out`, normalised; `pending`: whitespace was met and not
/// yet written (it is written only before something that follows it, so a
/// line is trimmed at both ends).
pub(crate) fn collapse_ascii_into(run: &str, pending: &mut bool, line_start: usize, out: &mut String) {
    let bytes = run.as_bytes();
    debug_assert!(run.is_ascii() && !bytes.contains(&b'\n') && !bytes.contains(&b'\r'));
    let printable = |b: u8| (0x21..0x7F).contains(&b);
    let mut i = 0;
    while i < bytes.len() {
        let from = i;
        // The run of bytes kept as they are (printable, with single spaces
        // inside), taken as `collapse_into` takes it.
        loop {
            i = plain_ascii_end(bytes, i, from);
            match bytes.get(i) {
                Some(b' ') if i > from && bytes.get(i + 1).is_some_and(|&b| printable(b)) => i += 2,
                _ => break,
            }
        }
        if i > from {
            if *pending && out.len() > line_start {
                out.push(' ');
            }
            *pending = false;
            out.push_str(&run[from..i]);
        }
        let Some(&c) = bytes.get(i) else { break };
        i += 1;
        // Whitespace (Unicode `White_Space` in ASCII, the line breaks aside)
        // is pending; anything else here is a control character or DEL,
        // which rule 2 removes without a trace.
        if matches!(c, b' ' | b'\t' | 0x0B | 0x0C) {
            *pending = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::normalize::{QuoteMode, normalize_line};

    /// `pieces` fed one after the other, as one line.
    fn fed(pieces: &[String]) -> String {
        let mut out = String::from("prefix\n");
        let start = out.len();
        let mut pending = false;
        for p in pieces {
            collapse_ascii_into(p, &mut pending, start, &mut out);
        }
        out.split_off(start)
    }

    #[test]
    fn trims_collapses_and_removes_across_pieces() {
        let p = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        assert_eq!(fed(&p(&["  a", " ", " b\t", "\x0b", "c  "])), "a b c");
        assert_eq!(fed(&p(&["a\x01", "b", "\x7f c"])), "ab c");
        assert_eq!(fed(&p(&["\x0c", " \t", ""])), "");
        assert_eq!(fed(&p(&["x \x1f y"])), "x y");
    }

    fn ascii_piece() -> impl Strategy<Value = String> {
        proptest::collection::vec(
            prop_oneof![
                4 => 0x20u8..0x7F,
                2 => Just(b' '),
                1 => prop_oneof![Just(b'\t'), Just(0x0B), Just(0x0C), Just(0x7F), 0u8..0x20],
            ],
            0..80,
        )
        .prop_map(|v| v.into_iter().filter(|&b| b != b'\n' && b != b'\r').map(char::from).collect())
    }

    proptest! {
        #[test]
        fn pieces_normalise_as_the_whole_line(pieces in proptest::collection::vec(ascii_piece(), 0..6)) {
            let whole: String = pieces.concat();
            prop_assert_eq!(fed(&pieces), normalize_line(&whole, QuoteMode::Fold));
        }
    }
}
