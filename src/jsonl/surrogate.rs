//! Naming what is wrong with a string literal that JSON cannot decode: a
//! `\uXXXX` escape of half a UTF-16 surrogate pair.

/// The first `\uXXXX` escape of a JSON string literal that is a surrogate
/// without its partner: its byte offset and text.
pub(super) fn lone_surrogate(literal: &str) -> Option<(usize, String)> {
    let b = literal.as_bytes();
    let unit = |at: usize| -> Option<u16> {
        let hex = literal.get(at + 2..at + 6)?;
        (b.get(at) == Some(&b'\\') && b.get(at + 1) == Some(&b'u')).then(|| u16::from_str_radix(hex, 16).ok())?
    };
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'\\' {
            i += 1;
            continue;
        }
        let Some(u) = unit(i) else {
            i += 2; // another escape: skip the escaped character
            continue;
        };
        let lone = match u {
            0xD800..=0xDBFF if unit(i + 6).is_some_and(|l| (0xDC00..=0xDFFF).contains(&l)) => {
                i += 12;
                continue;
            }
            0xD800..=0xDFFF => true,
            _ => false,
        };
        if lone {
            return Some((i, literal[i..i + 6].to_owned()));
        }
        i += 6;
    }
    None
}
