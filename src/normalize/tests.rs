//! Unit tests of `normalize`.

use super::*;

fn n(s: &str) -> String {
    normalize(s, QuoteMode::Fold)
}

#[test]
fn every_single_quote_folds_to_apostrophe() {
    for q in SINGLE_QUOTES {
        assert_eq!(n(&format!("a{q}b")), "a'b", "U+{:04X}", q as u32);
    }
}

#[test]
fn every_double_quote_folds_to_ascii_double_quote() {
    for q in DOUBLE_QUOTES {
        assert_eq!(n(&format!("a{q}b")), "a\"b", "U+{:04X}", q as u32);
    }
}

#[test]
fn fold_quote_agrees_with_the_tables_for_every_char() {
    for c in (0..=0x10FFFF).filter_map(char::from_u32) {
        let want = if SINGLE_QUOTES.contains(&c) {
            '\''
        } else if DOUBLE_QUOTES.contains(&c) {
            '"'
        } else {
            c
        };
        assert_eq!(fold_quote(c), want, "U+{:04X}", c as u32);
    }
}

/// The slow path (removal, NFC, then collapse), for comparison with
/// the one-pass path: a removed non-ASCII character forces it.
fn general(line: &str) -> String {
    let mut out = String::new();
    normalize_line_into(&format!("{line}\u{200B}"), QuoteMode::Fold, &mut out);
    out
}

/// A straightforward char-by-char statement of rules 2-5, as the
/// reference for the run-copying implementation.
fn reference(line: &str, quotes: QuoteMode) -> String {
    let cleaned: String = line.chars().filter(|&c| !is_removed(c)).collect();
    let composed: String = cleaned.nfc().collect();
    let mut out = String::new();
    for word in composed.split(char::is_whitespace).filter(|w| !w.is_empty()) {
        if !out.is_empty() {
            out.push(' ');
        }
        out.extend(word.chars().map(|c| if quotes == QuoteMode::Fold { fold_quote(c) } else { c }));
    }
    out
}

proptest::proptest! {
    #[test]
    fn one_pass_agrees_with_reference_on_random_lines(
        line in "[ab \t\u{0}\u{1}\u{7f}\u{9f}\u{a0}\u{ad}\u{301}\u{316}\u{5b0}\u{5b1}\u{2018}\u{201c}\u{200b}\u{2000}\u{3000}\u{e9}\u{fb01}\u{feff}]{0,12}"
    ) {
        for q in [QuoteMode::Fold, QuoteMode::Keep] {
            proptest::prop_assert_eq!(normalize_line(&line, q), reference(&line, q));
        }
    }
}

proptest::proptest! {
    /// Long mostly-ASCII lines, so that the eight-byte steps of
    /// `collapse_into` meet every boundary case (spaces at both ends of a
    /// step, double spaces, controls, DEL, `~`, a curly quote, NBSP).
    #[test]
    fn eight_byte_steps_agree_with_reference_on_long_lines(
        line in "[ab~!  \t\u{0}\u{1f}\u{7f}\u{80}\u{a0}\u{e9}\u{2019}]{0,80}"
    ) {
        for q in [QuoteMode::Fold, QuoteMode::Keep] {
            proptest::prop_assert_eq!(normalize_line(&line, q), reference(&line, q));
        }
    }
}

proptest::proptest! {
    /// Long lines of words with combining marks, precomposed letters, marks
    /// of other scripts and, now and then, a removed character: the pieces
    /// of a line that is not plainly NFC are composed one by one
    /// (`composed_by_pieces_into`) unless it holds a removed character.
    #[test]
    fn pieces_agree_with_reference_on_long_lines_with_marks(
        words in proptest::collection::vec(
            "[a-e]{0,6}[\u{301}\u{327}\u{5b0}\u{e9}\u{2019}\u{fb01}\u{a0}]{0,2}[a-e\u{316}]{0,3}", 1..12),
        removed in "[\u{0}\u{7f}\u{9f}\u{ad}\u{200b}\u{feff}]?",
        at in 0usize..12,
    ) {
        let mut line = words.join(" ");
        if let Some((i, _)) = line.char_indices().nth(at) {
            line.insert_str(i, &removed);
        }
        for q in [QuoteMode::Fold, QuoteMode::Keep] {
            let mut got = String::from("x ");
            normalize_line_into(&line, q, &mut got);
            proptest::prop_assert_eq!(&got[2..], reference(&line, q));
        }
    }
}

#[test]
fn plain_ascii_prefix_takes_exactly_what_the_byte_loop_takes() {
    // Pseudo-random 8-byte words over an alphabet with each edge case.
    let alphabet = [b'a', b' ', b'~', b'!', 0x1F, 0x7F, 0x80, 0x20];
    let printable = |b: u8| (0x21..0x7F).contains(&b);
    let mut w = [0u8; 8];
    for seed in 0u32..200_000 {
        let mut x = seed.wrapping_mul(2_654_435_761);
        for b in &mut w {
            *b = alphabet[(x & 7) as usize];
            x = x.rotate_left(3) ^ seed;
        }
        for inside in [false, true] {
            let ok = |k: usize| printable(w[k]) || (w[k] == b' ' && k < 7 && printable(w[k + 1]) && (k > 0 || inside));
            let want = (0..8).take_while(|&k| ok(k)).count();
            assert_eq!(plain_ascii_prefix(u64::from_le_bytes(w), inside), want, "{w:?} {inside}");
        }
    }
}

#[test]
fn one_pass_agrees_with_reference() {
    let cases = [
        "\u{201C}Hello,\u{00A0}\u{00A0}world\u{201D} \u{2018}x\u{2019}",
        "caf\u{00E9} \u{00A3}600m \u{2014} \u{2026}",
        "\u{00A0}lead\u{3000}",
        "a\u{0085}b",
        "e\u{0301} \u{FB01} \u{FF21}",
        "x\u{05B1}\u{00AD}\u{05B0}",
        "x\u{05B1}\u{0001}\u{05B0} y",
        "\u{00AB}q\u{00BB}  \u{2033}",
        "\u{1F468}\u{200D}\u{1F469} ok",
    ];
    for case in cases {
        for q in [QuoteMode::Fold, QuoteMode::Keep] {
            assert_eq!(normalize_line(case, q), reference(case, q), "{case:?} {q:?}");
        }
    }
}

#[test]
fn ascii_path_agrees_with_general_path() {
    let cases = [
        "",
        " ",
        "a",
        " a ",
        "a  b",
        "a \t b",
        "\x00a\x01 b\x7f",
        "a\x00 \x00b",
        " \x0b\x0cx\x1c\x1fy ",
        "a b c",
        "  lead and trail  ",
        "x \x07 y",
        "\x1b[0m",
        "tab\there",
        "a b  c   d",
    ];
    for case in cases {
        let mut fast = String::from("prefix:");
        normalize_line_into(case, QuoteMode::Fold, &mut fast);
        assert_eq!(fast, format!("prefix:{}", general(case)), "{case:?}");
    }
    for b in 0u8..0x80 {
        let case = format!("a{}b {} c", b as char, b as char);
        let mut fast = String::new();
        normalize_line_into(&case, QuoteMode::Fold, &mut fast);
        assert_eq!(fast, general(&case), "byte {b:#04x}");
    }
}

#[test]
fn quote_mode_keep_leaves_quotes() {
    let text = "\u{201C}x\u{201D} \u{2018}y\u{2019} \u{00AB}z\u{00BB}";
    assert_eq!(normalize(text, QuoteMode::Keep), text);
}

#[test]
fn every_space_character_becomes_one_ascii_space() {
    let spaces = [
        '\t', '\u{000B}', '\u{000C}', ' ', '\u{00A0}', '\u{1680}', '\u{2000}', '\u{2001}', '\u{2002}', '\u{2003}',
        '\u{2004}', '\u{2005}', '\u{2006}', '\u{2007}', '\u{2008}', '\u{2009}', '\u{200A}', '\u{202F}', '\u{205F}',
        '\u{3000}',
    ];
    for s in spaces {
        assert_eq!(n(&format!("a{s}b")), "a b", "U+{:04X}", s as u32);
        assert_eq!(n(&format!("a{s}{s} {s}b")), "a b", "run of U+{:04X}", s as u32);
    }
}

#[test]
fn lines_are_trimmed_and_whitespace_only_lines_are_blank() {
    assert_eq!(n("  a  b \t\n\u{00A0}\u{3000}\nc"), "a b\n\nc");
}

#[test]
fn leading_bom_is_stripped() {
    assert_eq!(n("\u{FEFF}Hello"), "Hello");
}

#[test]
fn bom_inside_text_is_removed() {
    assert_eq!(n("Hel\u{FEFF}lo"), "Hello");
}

#[test]
fn crlf_cr_nel_and_line_separator_become_lf() {
    assert_eq!(n("a\r\nb\rc\u{0085}d\u{2028}e\n"), "a\nb\nc\nd\ne\n");
}

#[test]
fn paragraph_separator_becomes_a_blank_line() {
    assert_eq!(n("a\u{2029}b"), "a\n\nb");
}

#[test]
fn soft_hyphen_is_removed() {
    assert_eq!(n("news\u{00AD}paper"), "newspaper");
}

#[test]
fn zero_width_space_and_word_joiner_are_removed() {
    assert_eq!(n("a\u{200B}b\u{2060}c"), "abc");
}

#[test]
fn zwj_and_zwnj_are_kept() {
    let family = "\u{1F468}\u{200D}\u{1F469}\u{200D}\u{1F467}";
    assert_eq!(n(family), family);
    assert_eq!(n("\u{0645}\u{200C}\u{0649}"), "\u{0645}\u{200C}\u{0649}");
}

#[test]
fn control_characters_are_removed_but_not_tab_or_newline() {
    assert_eq!(n("a\u{0000}b\u{0007}c\u{001F}d\u{007F}e\u{0080}f\u{009F}g"), "abcdefg");
    assert_eq!(n("a\tb\nc"), "a b\nc");
}

#[test]
fn nfd_input_is_composed_to_nfc() {
    let nfd = "Ju\u{0308}rgen cafe\u{0301}";
    assert_eq!(n(nfd), "J\u{00FC}rgen caf\u{00E9}");
    assert_eq!(n("J\u{00FC}rgen caf\u{00E9}"), "J\u{00FC}rgen caf\u{00E9}");
}

#[test]
fn removal_happens_before_composition() {
    assert_eq!(n("e\u{200B}\u{0301}"), "\u{00E9}");
}

#[test]
fn nfc_does_not_apply_compatibility_mappings() {
    // The output keeps ligatures and full-width letters; only the key uses NFKC.
    assert_eq!(n("\u{FB01}le \u{FF21}"), "\u{FB01}le \u{FF21}");
}

#[test]
fn lines_reports_spans_and_terminators() {
    let text = "ab\r\ncd\u{2029}ef";
    let got: Vec<_> = lines(text).collect();
    assert_eq!(got.len(), 3);
    assert_eq!((got[0].text, got[0].span.clone()), ("ab", 0..2));
    assert_eq!((got[1].text, got[1].span.clone(), got[1].paragraph_break), ("cd", 4..6, true));
    assert_eq!((got[2].text, got[2].terminated), ("ef", false));
    assert_eq!(lines("").count(), 0);
    assert_eq!(lines("a\n").count(), 1);
    assert_eq!(lines("\n\n").count(), 2);
}

#[test]
fn lines_finds_terminators_at_every_offset_of_a_long_line() {
    for term in ["\n", "\r\n", "\r", "\u{0085}", "\u{2028}", "\u{2029}"] {
        for at in 0..40 {
            let head = "\u{00E9}x\u{201C}".repeat(at)[..].chars().take(at).collect::<String>();
            let text = format!("{head}{term}tail with more than sixteen bytes");
            let got: Vec<_> = lines(&text).collect();
            assert_eq!(got.len(), 2, "{term:?} at {at}");
            assert_eq!(got[0].text, head, "{term:?} at {at}");
            assert_eq!(got[1].text, "tail with more than sixteen bytes");
            assert_eq!(got[0].paragraph_break, term == "\u{2029}");
        }
    }
}

#[test]
fn idempotent_on_tricky_examples() {
    for s in ["  \u{0301}x", "e\u{00A0}\u{0301}", "\u{2000}a\u{2029}\u{2029}b", "\u{201C}\u{0301}"] {
        let once = n(s);
        assert_eq!(n(&once), once, "{s:?}");
    }
}

/// Lines by a char-by-char reading of rule 1, as the reference for the
/// block-scanning [`lines`]: (text, paragraph break, terminated).
fn reference_lines(text: &str) -> Vec<(String, bool, bool)> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\r' if chars.peek() == Some(&'\n') => {
                chars.next();
                out.push((std::mem::take(&mut cur), false, true));
            }
            '\n' | '\r' | '\u{85}' | '\u{2028}' => out.push((std::mem::take(&mut cur), false, true)),
            '\u{2029}' => out.push((std::mem::take(&mut cur), true, true)),
            c => cur.push(c),
        }
    }
    if !cur.is_empty() {
        out.push((cur, false, false));
    }
    out
}

proptest::proptest! {
    /// Long lines of mostly plain ASCII, so that the 32-byte blocks of
    /// `collapse_into` and the 16-byte blocks of `lines` are taken and left
    /// at every kind of byte: spaces at a block's edge, double spaces,
    /// controls, DEL, curly quotes and the other 0xE2 characters, NEL, NBSP.
    #[test]
    fn block_steps_agree_with_reference_on_long_mostly_plain_text(
        parts in proptest::collection::vec(proptest::prop_oneof![
            12 => proptest::prelude::Just("ab".to_owned()),
            4 => proptest::prelude::Just(" ".to_owned()),
            4 => "[a-zA-Z0-9.,~!]{1,40}",
            1 => "[ \t\r\n\u{0}\u{1f}\u{7f}\u{85}\u{a0}\u{c2}\u{e9}\u{2019}\u{201c}\u{2026}\u{2028}\u{2029}\u{200b}]{1,3}",
        ], 0..40)
    ) {
        let text: String = parts.concat();
        let got: Vec<_> = lines(&text).map(|l| (l.text.to_owned(), l.paragraph_break, l.terminated)).collect();
        proptest::prop_assert_eq!(got, reference_lines(&text));
        for line in lines(&text) {
            for q in [QuoteMode::Fold, QuoteMode::Keep] {
                proptest::prop_assert_eq!(normalize_line(line.text, q), reference(line.text, q));
            }
        }
    }
}

#[test]
fn plain_ascii_block_takes_exactly_what_eight_byte_steps_take() {
    let alphabet = [b'a', b' ', b'~', b'!', 0x1F, 0x7F, 0x80, 0x20];
    let mut w = [b'a'; 33];
    for seed in 0u32..50_000 {
        let mut x = seed.wrapping_mul(2_654_435_761);
        // Mostly `a`, so that whole blocks pass; a few edge bytes.
        for b in &mut w {
            *b = if x & 0x30 == 0 { alphabet[(x & 7) as usize] } else { b'a' };
            x = x.rotate_left(5) ^ seed;
        }
        for inside in [false, true] {
            let mut at = 0;
            let mut inner = inside;
            while at < 32 {
                let word = u64::from_le_bytes(w[at..at + 8].try_into().unwrap_or_default());
                let n = plain_ascii_prefix(word, inner);
                // The eight-byte step cannot judge a last space; the block can.
                let n = if n == 7 && w[at + 7] == b' ' && (0x21..0x7F).contains(&w[at + 8]) { 8 } else { n };
                if n < 8 {
                    break;
                }
                at += 8;
                inner = true;
            }
            assert_eq!(plain_ascii_block(&w, inside), at == 32, "{w:?} {inside}");
        }
    }
}

proptest::proptest! {
    /// Piecewise NFC is NFC: combining marks after ASCII letters and after
    /// other characters, marks to reorder, Hangul jamo, singletons
    /// (U+212B, U+2126) and a composition exclusion (U+0958).
    #[test]
    fn piecewise_nfc_is_nfc(
        text in "[ae. \u{300}\u{301}\u{316}\u{327}\u{a0}\u{e9}\u{2026}\u{fb01}\u{1100}\u{1161}\u{11a8}\u{ac00}\u{212b}\u{2126}\u{958}\u{1e9b}\u{323}]{0,16}"
    ) {
        let mut got = String::from("kept ");
        by_pieces(&text, &mut got, |piece, out| out.extend(piece.nfc()));
        proptest::prop_assert_eq!(got, format!("kept {}", text.nfc().collect::<String>()));
    }
}

proptest::proptest! {
    #[test]
    fn first_non_ascii_finds_the_first_high_byte(
        bytes in proptest::collection::vec(proptest::sample::select(vec![b'a', b' ', 0x80u8, 0xC3, 0xFF]), 0..40),
    ) {
        proptest::prop_assert_eq!(first_non_ascii(&bytes), bytes.iter().position(|c| !c.is_ascii()));
    }
}
