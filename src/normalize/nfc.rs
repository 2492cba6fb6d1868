//! A byte-level shortcut for the NFC quick check of rule 3.
//!
//! News text outside ASCII is mostly Latin-1 letters, NBSP, curly quotes,
//! dashes and ellipses. Every character in U+0080–U+02FF and U+2010–U+203F
//! is NFC_Quick_Check=Yes with canonical combining class 0 (checked for each
//! of them by a test against `unicode-normalization`), so a line made of
//! those and ASCII is NFC without decoding a single character; any other
//! character sends the line to the full quick check.

/// True when `line` consists only of ASCII, U+0080–U+02FF and U+2010–U+203F;
/// such a line is NFC.
pub(super) fn is_plainly_nfc(line: &str) -> bool {
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
            _ => return false,
        }
    }
    true
}

/// True for a character that is NFC_Quick_Check=Yes with canonical
/// combining class 0: a text made of those is NFC whatever their order.
/// The ranges of [`is_plainly_nfc`] are answered without a table lookup.
pub(super) fn is_plain_char(c: char) -> bool {
    matches!(u32::from(c), 0..=0x2FF | 0x2010..=0x203F)
        || (unicode_normalization::char::canonical_combining_class(c) == 0
            && unicode_normalization::is_nfc_quick(std::iter::once(c)) == unicode_normalization::IsNormalized::Yes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use unicode_normalization::char::canonical_combining_class;
    use unicode_normalization::{IsNormalized, is_nfc_quick};

    #[test]
    fn every_character_it_passes_is_nfc_quick_yes_with_class_zero() {
        let passed: Vec<char> = (0u32..0x11_0000)
            .filter_map(char::from_u32)
            .filter(|c| is_plainly_nfc(c.encode_utf8(&mut [0; 4])))
            .collect();
        assert_eq!(passed.len(), 0x300 + 0x30);
        for c in passed {
            assert_eq!(is_nfc_quick(std::iter::once(c)), IsNormalized::Yes, "{c:?}");
            assert_eq!(canonical_combining_class(c), 0, "{c:?}");
        }
    }

    #[test]
    fn other_characters_are_left_to_the_quick_check() {
        for s in ["e\u{301}", "\u{300}", "\u{2000}", "\u{2060}", "\u{ac00}", "x\u{1F600}", "\u{2040}"] {
            assert!(!is_plainly_nfc(s), "{s:?}");
        }
        assert!(is_plainly_nfc("caf\u{e9} \u{201c}q\u{201d} \u{2014} \u{2026}\u{a0}"));
    }
}
