//! Shortcuts for the quick checks of rule 3 (NFC) and of the key (NFKC).
//!
//! News text outside ASCII is mostly Latin-1 letters, NBSP, curly quotes,
//! dashes and ellipses. Every character in U+0080–U+02FF and U+2010–U+203F
//! is NFC_Quick_Check=Yes with canonical combining class 0 (checked for each
//! of them by a test against `unicode-normalization`), so a line made of
//! those and ASCII is NFC without decoding a single character; any other
//! character is looked up in the table below, and only one that is not
//! plain sends the line to the full quick check.
//!
//! Text in other scripts (Cyrillic, Greek, Arabic, CJK, ...) is made of
//! characters outside those ranges, nearly all of them plain too. Asking
//! `unicode-normalization` about each (its canonical combining class and
//! its quick-check value: two perfect-hash lookups through function
//! pointers, for each form) took most of a run over such text: Cyrillic
//! JSON Lines went ~9× slower per byte than English (benches/JSONL.md,
//! thirty-ninth pass). So the answers for the characters below U+10000 are
//! kept in a table, one byte per character, each worked out from the
//! crate's own answers the first time the character is asked about.
//! Characters from U+10000 up (emoji, rare CJK) are asked of the crate each
//! time.

use std::sync::atomic::{AtomicU8, Ordering};

use unicode_normalization::char::canonical_combining_class;
use unicode_normalization::{IsNormalized, is_nfc_quick, is_nfkc_quick};

/// True when `line` consists only of plain characters ([`is_plain_char`]);
/// such a line is NFC. ASCII, U+0080–U+02FF and U+2010–U+203F are told by
/// their bytes, other characters by the table.
pub(super) fn is_plainly_nfc(line: &str) -> bool {
    first_not_plain(line).is_none()
}

/// The first character of `line` that is not plain ([`is_plain_char`]),
/// if any: [`is_plainly_nfc`] is true exactly when there is none.
pub(super) fn first_not_plain(line: &str) -> Option<char> {
    let b = line.as_bytes();
    let mut i = 0;
    while i < b.len() {
        // Runs of ASCII eight bytes at a time.
        i += super::first_non_ascii(&b[i..]).unwrap_or(b.len() - i);
        let Some(&lead) = b.get(i) else { break };
        match lead {
            // Two-byte sequences up to U+02FF (lead bytes 0xC2..=0xCB).
            0xC2..=0xCB => i += 2,
            // U+2010..=U+203F: E2 80 90..=BF.
            0xE2 if b.get(i + 1) == Some(&0x80) && b.get(i + 2).is_some_and(|&c| c >= 0x90) => i += 3,
            _ => match line[i..].chars().next() {
                Some(c) if has(c, NFC) => i += c.len_utf8(),
                c => return c,
            },
        }
    }
    None
}

/// True for a character that is NFC_Quick_Check=Yes with canonical
/// combining class 0: a text made of those is NFC whatever their order.
/// The ranges of [`is_plainly_nfc`] are answered without a table lookup.
#[inline]
pub(super) fn is_plain_char(c: char) -> bool {
    matches!(u32::from(c), 0..=0x2FF | 0x2010..=0x203F) || has(c, NFC)
}

/// True for a character that is NFKC_Quick_Check=Yes with canonical
/// combining class 0: a text made of those is NFKC whatever their order.
#[inline]
pub(crate) fn is_plain_nfkc_char(c: char) -> bool {
    c.is_ascii() || has(c, NFKC)
}

/// Bits of a character's entry in [`FACTS`]: whether it is known yet, and
/// what is known: plain under NFC, plain under NFKC, inert
/// ([`is_inert_char`]).
const KNOWN: u8 = 1;
const NFC: u8 = 2;
const NFKC: u8 = 4;
const INERT: u8 = 8;

/// What is known of each character below U+10000 (64 KiB, zero until the
/// character is first asked about: its page of the table is touched only
/// then). Threads that ask about a new character at once both work it out
/// and store the same byte.
static FACTS: [AtomicU8; 0x1_0000] = [const { AtomicU8::new(0) }; 0x1_0000];

/// Whether `c` has the fact `bit` (one of [`NFC`], [`NFKC`], [`INERT`]):
/// from [`FACTS`] below U+10000, worked out the first time; from
/// `unicode-normalization` each time above.
#[inline]
fn has(c: char, bit: u8) -> bool {
    let u = u32::from(c);
    if u > 0xFFFF {
        return facts(c) & bit != 0;
    }
    let entry = &FACTS[u as usize];
    let mut known = entry.load(Ordering::Relaxed);
    if known == 0 {
        known = facts(c);
        entry.store(known, Ordering::Relaxed);
    }
    known & bit != 0
}

/// The [`FACTS`] entry of `c`, asked of `unicode-normalization` and of the
/// line rules.
#[cold]
fn facts(c: char) -> u8 {
    let mut known = KNOWN;
    if canonical_combining_class(c) != 0 {
        return known;
    }
    if is_nfc_quick(std::iter::once(c)) == IsNormalized::Yes {
        known |= NFC;
        let line_break = matches!(c, '\u{85}' | '\u{2028}' | '\u{2029}');
        if !(line_break || c.is_whitespace() || super::is_removed(c) || super::fold_quote(c) != c) {
            known |= INERT;
        }
    }
    if is_nfkc_quick(std::iter::once(c)) == IsNormalized::Yes {
        known |= NFKC;
    }
    known
}

/// True for a character other than ASCII that the line rules copy as it
/// stands: plain under NFC ([`is_plain_char`]), not whitespace, not removed
/// (rule 2), not one of the quotes [`super::fold_quote`] folds, and not a
/// line break (NEL, U+2028, U+2029). Nearly every letter of a text in
/// another script is; the line builder copies a run of them at once.
#[inline]
pub(super) fn is_inert_char(c: char) -> bool {
    !c.is_ascii() && has(c, INERT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_character_it_passes_is_nfc_quick_yes_with_class_zero() {
        let mut passed = 0;
        for c in (0u32..0x11_0000).filter_map(char::from_u32) {
            let plain = is_nfc_quick(std::iter::once(c)) == IsNormalized::Yes && canonical_combining_class(c) == 0;
            assert_eq!(is_plainly_nfc(c.encode_utf8(&mut [0; 4])), plain, "{c:?}");
            passed += usize::from(plain);
        }
        // Most characters are plain; the byte-level ranges alone are 0x300 + 0x30.
        assert!(passed > 0x300 + 0x30 && passed < 0x11_0000, "{passed}");
        assert!(is_plainly_nfc("\u{416}\u{435}\u{43D}\u{44F} \u{4E2D}\u{6587} caf\u{E9}"));
        assert!(!is_plainly_nfc("\u{416}\u{435}\u{301}"));
    }

    #[test]
    fn the_tables_answer_as_the_crate_for_every_character() {
        for c in (0u32..0x11_0000).filter_map(char::from_u32) {
            let class0 = canonical_combining_class(c) == 0;
            let nfc = class0 && is_nfc_quick(std::iter::once(c)) == IsNormalized::Yes;
            let nfkc = class0 && is_nfkc_quick(std::iter::once(c)) == IsNormalized::Yes;
            assert_eq!(is_plain_char(c), nfc, "{c:?} (NFC)");
            assert_eq!(is_plain_nfkc_char(c), nfkc, "{c:?} (NFKC)");
        }
        // Something of each kind, so that a table of all-clear or all-set bits fails too.
        assert!(is_plain_char('\u{416}') && is_plain_nfkc_char('\u{416}')); // Cyrillic Zhe
        assert!(is_plain_char('\u{4E2D}') && is_plain_nfkc_char('\u{4E2D}')); // CJK
        assert!(is_plain_char('\u{FB01}') && !is_plain_nfkc_char('\u{FB01}')); // the fi ligature
        assert!(!is_plain_char('\u{301}') && !is_plain_nfkc_char('\u{301}')); // a combining mark
        assert!(!is_plain_char('\u{F900}')); // a CJK compatibility ideograph: NFC changes it
        assert!(!is_plain_nfkc_char('\u{A0}')); // NBSP: NFKC makes it a space
    }

    #[test]
    fn inert_characters_are_those_the_line_rules_copy() {
        for c in (0u32..0x11_0000).filter_map(char::from_u32) {
            let line_break = matches!(c, '\u{85}' | '\u{2028}' | '\u{2029}');
            let expected = !c.is_ascii()
                && is_plain_char(c)
                && !line_break
                && !c.is_whitespace()
                && !super::super::is_removed(c)
                && super::super::fold_quote(c) == c;
            assert_eq!(is_inert_char(c), expected, "{c:?}");
        }
        assert!(is_inert_char('\u{416}') && is_inert_char('\u{E9}') && is_inert_char('\u{2014}'));
        assert!(is_inert_char('\u{1F600}'), "an emoji above the table, asked each time");
        for c in ['\u{A0}', '\u{AD}', '\u{201C}', '\u{2019}', '\u{2028}', '\u{85}', '\u{301}', '\u{3000}', 'a'] {
            assert!(!is_inert_char(c), "{c:?}");
        }
    }

    #[test]
    fn characters_that_nfc_may_change_are_left_to_the_quick_check() {
        // A combining mark, one after a letter, a singleton decomposition,
        // a CJK compatibility ideograph, a Hangul jamo that composes.
        for s in ["e\u{301}", "\u{300}", "\u{2000}", "\u{F900}", "\u{1161}"] {
            assert!(!is_plainly_nfc(s), "{s:?}");
        }
        // Plain outside the byte-level ranges, told by the table.
        for s in ["\u{2060}", "\u{ac00}", "x\u{1F600}", "\u{2040}"] {
            assert!(is_plainly_nfc(s), "{s:?}");
        }
        assert!(is_plainly_nfc("caf\u{e9} \u{201c}q\u{201d} \u{2014} \u{2026}\u{a0}"));
    }
}
