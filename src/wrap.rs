//! The hard-wrap rule: when a line break falls inside a paragraph.
//!
//! Text wrapped at a fixed width (wire copy, e-mail, old web pages) breaks
//! every paragraph into lines of about the same length. Such a break is not a
//! paragraph boundary, and the dedup key must not depend on it. For
//! `--split auto` the break between two consecutive non-blank lines `a` and
//! `b` of a document is **inside a paragraph** (`b` continues `a`) when all
//! of these hold ([`continues`]):
//!
//! * the document's **wrap width** `W` — its longest normalised line, in
//!   characters — is at most [`MAX_WRAP_WIDTH`]: a document with a longer
//!   line has one paragraph per line (BBC and most web text);
//! * `a` does not end a sentence ([`crate::normalize::SENTENCE_END`], quotes
//!   folded; a line ending with an initialism such as `U.S.` or a title such
//!   as `Mr.` does not end one);
//! * either `b` starts with a lower-case letter or `a` ends on an article,
//!   preposition or conjunction ([`MID_PHRASE`]) — the break falls inside a
//!   sentence, and a paragraph boundary there would let a drop cut it — or
//!   both of these hold:
//!   * `a` is not shorter than half the width (`2·len(a) ≥ W`): a short
//!     line was ended on purpose;
//!   * `b`'s first word would not have fitted on `a`: `len(a) + 1 +
//!     len(first word of b) + WRAP_SLACK > W` ([`WRAP_SLACK`] columns for
//!     an indent that normalisation trimmed and for uneven wrapping);
//! * `b` is not a **list item** (`-`, `*`, `•`, `–`, `—`, `·`, `+`, `1.`,
//!   `1)`, `a)`, `(a)`, … followed by a space);
//! * neither line is a **block line**, never joined to either side: a
//!   *table row* (column gaps inside the original line: a run of three or
//!   more spaces, a tab, or two runs of two spaces; a `|`; or at least three
//!   words of which half or more are numbers), a *heading* (starts with `#`, or has letters and none of them
//!   lower-case) or *not prose* (a line of JSON, CSV or markup: starts with
//!   `{`, `[` or a tag, ends with `}`, `]` or a closing tag, or is
//!   comma-separated without spaces).
//!
//! A blank line always ends a paragraph. Indentation is not a signal here
//! (it is for `--split blank`): normalisation trims it, so the clean output
//! could not show it, and a paragraph boundary marked only by an indent
//! would need a blank line in the output (measured on Reuters-21578: 165 of
//! 18,737 stories would gain one with nothing dropped; without the indent
//! rule 27 do, all around tables whose column gaps normalisation collapses).
//!
//! # Why every rule is per line
//!
//! Cleaning removes lines, so the clean output must split into the very
//! paragraphs that were kept, or cleaning it again would key (and maybe drop)
//! different units. Every test above only gets *more* permissive when lines
//! are removed or normalised: the width (a maximum) can only shrink, which
//! makes the fit test pass more often and the half-width test fail less often;
//! the original-only signal (column gaps) disappears. So reading
//! the output can only join *more*, never split a kept paragraph; where it
//! would join two kept paragraphs, the renderer writes a blank line between
//! them (see [`crate::document`]). A whole-document vote ("most lines are
//! wrapped") would not have this property — dropping paragraphs can swing a
//! vote either way — which is why "lines mostly short of the width" is
//! judged line by line, by the half-width and fit tests.

use crate::normalize::{SENTENCE_END, fold_quote};

/// A document whose longest line (normalised, in characters) is longer than
/// this is not hard-wrapped.
pub const MAX_WRAP_WIDTH: usize = 100;

/// Columns of slack in the fit test: the first line of a Reuters paragraph
/// is indented by 4 spaces, which counted towards the wrap but are not in
/// the normalised line, and wrappers are not exactly greedy. Measured on
/// Reuters-21578 as JSONL: drops that cut a sentence (outside tables) were 15
/// with 4 columns, 8 with 6, 7 with 8.
pub const WRAP_SLACK: usize = 6;

/// Abbreviations that end a line without ending a sentence ("The Federal
/// Reserve entered the U.S." / "Government securities market ..."), besides
/// initialisms with inner dots such as `U.S.` or `p.m.`.
const ABBREVIATIONS: [&str; 14] =
    ["Mr.", "Mrs.", "Ms.", "Dr.", "St.", "Prof.", "Gen.", "Sen.", "Rep.", "Gov.", "Lt.", "Col.", "No.", "vs."];

/// One line as the rule sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WrapLine<'a> {
    /// The normalised line (empty: blank).
    pub norm: &'a str,
    /// The same line as it was in the input (for the column gaps that
    /// normalisation collapses); the normalised line when reading output.
    pub orig: &'a str,
    /// Length of `norm` in characters.
    pub chars: usize,
}

impl<'a> WrapLine<'a> {
    /// A line of clean output, where the normalised text is the original.
    pub fn of_output(norm: &'a str) -> WrapLine<'a> {
        WrapLine { norm, orig: norm, chars: norm.chars().count() }
    }
}

/// True when the break between `a` and the next line `b` falls inside a
/// paragraph of a document of wrap width `width` (see the module docs).
/// The cheap tests come first: most breaks are decided by the width.
pub fn continues(a: &WrapLine<'_>, b: &WrapLine<'_>, width: usize) -> bool {
    fits_a_wrap(a, b, width) && !is_block(a) && !is_block(b)
}

/// [`continues`] without the block-line test (the costly part, which a
/// caller walking a document can compute once per line).
pub fn fits_a_wrap(a: &WrapLine<'_>, b: &WrapLine<'_>, width: usize) -> bool {
    if width > MAX_WRAP_WIDTH || a.chars == 0 || b.chars == 0 {
        return false;
    }
    let first_word = char_len(first_word(b.norm));
    let wrapped_here = a.chars * 2 >= width && a.chars + 1 + first_word + WRAP_SLACK > width;
    (wrapped_here || starts_lower_case(b.norm) || ends_mid_phrase(a.norm))
        && !ends_sentence(a.norm)
        && !is_list_item(b.norm)
}

/// Words that never end a sentence or a title: a line ending on one breaks
/// a phrase ("Atari Corp said it filed with the" / "Securities and Exchange
/// Commission ...").
pub const MID_PHRASE: [&str; 16] =
    ["the", "a", "an", "of", "to", "in", "on", "at", "for", "with", "by", "from", "and", "or", "its", "than"];

/// The line's last word is one of [`MID_PHRASE`].
fn ends_mid_phrase(norm: &str) -> bool {
    MID_PHRASE.contains(&last_word(norm))
}

/// The text before the first space (all of `norm` when it has none).
/// A short scan: called for every line break, where `str::split` set up a
/// searcher each time.
fn first_word(norm: &str) -> &str {
    &norm[..norm.bytes().position(|c| c == b' ').unwrap_or(norm.len())]
}

/// The text after the last space (all of `norm` when it has none).
fn last_word(norm: &str) -> &str {
    &norm[norm.bytes().rposition(|c| c == b' ').map_or(0, |p| p + 1)..]
}

/// Length in characters (ASCII: the length in bytes).
fn char_len(s: &str) -> usize {
    if s.is_ascii() { s.len() } else { s.chars().count() }
}

/// The line starts with a lower-case letter: it carries on a sentence, so
/// the break before it is never a paragraph boundary, however short the
/// line before it (a Reuters body whose first line shared its row with the
/// dateline: "Chicago Mercantile Exchange floor" / "traders and commission
/// house ...").
fn starts_lower_case(norm: &str) -> bool {
    norm.chars().next().is_some_and(char::is_lowercase)
}

/// The last character (quote-folded) is one of [`SENTENCE_END`], and the
/// last word is not an abbreviation.
pub fn ends_sentence(norm: &str) -> bool {
    norm.chars().next_back().is_some_and(|c| SENTENCE_END.contains(&fold_quote(c))) && !ends_with_abbreviation(norm)
}

/// A table row, heading or non-prose line: never joined to a neighbour.
pub fn is_block(line: &WrapLine<'_>) -> bool {
    is_table_row(line.norm, line.orig) || is_heading(line.norm) || is_not_prose(line.norm)
}

/// The last word is an initialism (`U.S.`, `p.m.`) or one of
/// [`ABBREVIATIONS`].
fn ends_with_abbreviation(norm: &str) -> bool {
    let last = last_word(norm);
    let initialism = last.len() >= 4
        && last.ends_with('.')
        && last[..last.len() - 1].contains('.')
        && last.split('.').all(|p| p.chars().count() <= 2 && p.chars().all(char::is_alphabetic));
    initialism || ABBREVIATIONS.contains(&last)
}

/// `-`, `*`, `•`, `–`, `—`, `·`, `+`, `1.`, `1)`, `a)`, `(a)`, `(12)`
/// followed by a space.
pub fn is_list_item(norm: &str) -> bool {
    // The first word, found by a short byte scan (`split_once` set up a
    // searcher for every line the wrap rule looked at).
    let marker = first_word(norm);
    if marker.len() == norm.len() {
        return false; // no space: no marker followed by a space
    }
    let bullet = matches!(marker, "-" | "--" | "*" | "\u{2022}" | "\u{2013}" | "\u{2014}" | "\u{00B7}" | "+");
    let numbered = |m: &str| {
        (1..=3).contains(&m.len()) && m.bytes().all(|b| b.is_ascii_digit())
            || m.len() == 1 && m.bytes().all(|b| b.is_ascii_lowercase())
    };
    let enumerated = match marker.strip_prefix('(').and_then(|m| m.strip_suffix(')')) {
        Some(inner) => numbered(inner),
        None => marker.strip_suffix(['.', ')']).is_some_and(numbered),
    };
    bullet || enumerated
}

/// Column gaps inside the original line (a run of three or more spaces, a
/// tab, or two runs of two spaces: prose has at most one double space, after
/// a full stop or by mistake), a `|`, or at least three words of which half
/// or more are numbers (a digit and no letter).
pub fn is_table_row(norm: &str, orig: &str) -> bool {
    column_gaps(orig.trim(), norm) || mostly_numbers_or_bar(norm)
}

/// A tab, a run of three or more spaces, or two runs of two spaces in the
/// trimmed original line `inner`. This runs on every line of hard-wrapped
/// text, so the common case is settled by fast whole-line tests: when
/// normalisation did not shorten the line, no run of spaces was collapsed.
fn column_gaps(inner: &str, norm: &str) -> bool {
    // The `memchr` crate's vector search: `str::contains` takes a `char`
    // through the standard library's word-at-a-time search.
    if memchr::memchr(b'\t', inner.as_bytes()).is_some() {
        return true;
    }
    if inner.len() == norm.len() && inner.is_ascii() {
        // ASCII only shrinks under normalisation: nothing was collapsed.
        return false;
    }
    // Runs of two or more spaces, found by a substring search (`inner` is
    // trimmed: a run ends before its end).
    let b = inner.as_bytes();
    let (mut from, mut doubles) = (0, 0);
    while let Some(at) = memchr::memmem::find(&b[from..], b"  ").map(|p| from + p) {
        let run = b[at..].iter().take_while(|&&c| c == b' ').count();
        doubles += 1;
        if run >= 3 || doubles >= 2 {
            return true;
        }
        from = at + run;
    }
    false
}

/// A `|`, or at least three words, half or more of them numbers (an ASCII
/// digit and no letter; any non-ASCII character counts as a letter).
fn mostly_numbers_or_bar(norm: &str) -> bool {
    let b = norm.as_bytes();
    // One counting pass for the bar and the quick reject: there cannot be
    // more numbers than digits. Byte counters over pieces of 255 bytes, so
    // that it vectorises a byte per lane (`usize` counters had every byte
    // widened to 64 bits: 2.9% of a JSONL run's samples).
    let (mut digits, mut spaces, mut bars) = (0usize, 0usize, 0usize);
    for piece in b.chunks(255) {
        let (mut d, mut s, mut v) = (0u8, 0u8, 0u8);
        for &c in piece {
            d += u8::from(c.is_ascii_digit());
            s += u8::from(c == b' ');
            v += u8::from(c == b'|');
        }
        (digits, spaces, bars) = (digits + usize::from(d), spaces + usize::from(s), bars + usize::from(v));
    }
    if bars > 0 {
        return true;
    }
    let words = spaces + 1;
    if words < 3 || digits * 2 < words {
        return false;
    }
    // Split as bytes: `str::split(' ')` sets up a `CharSearcher` and asks
    // it for every word (0.8% of a JSONL run's samples).
    let numbers = b
        .split(|&c| c == b' ')
        .filter(|w| w.iter().any(u8::is_ascii_digit) && !w.iter().any(|&c| c.is_ascii_alphabetic() || c >= 0x80))
        .count();
    numbers * 2 >= words
}

/// Starts with `#`, or has at least two letters and no lower-case one
/// ("NORTHBAY DOCK STRIKE ENDS").
pub fn is_heading(norm: &str) -> bool {
    if norm.starts_with('#') {
        return true;
    }
    let mut letters = 0usize;
    for c in norm.chars().filter(|c| c.is_alphabetic()) {
        if c.is_lowercase() {
            return false;
        }
        letters += 1;
    }
    letters >= 2
}

/// A line of JSON, CSV or markup: starts with `{`, `[` or a tag (`<p>`,
/// `</div>`, `<!--`), ends with `}`, `]`, `/>` or a closing tag, or holds
/// two or more commas none of which is followed by a space or sits between
/// two digits (`a,b,c`).
pub fn is_not_prose(norm: &str) -> bool {
    if norm.starts_with(['{', '[']) || norm.ends_with(['}', ']']) || starts_with_tag(norm) || ends_with_tag(norm) {
        return true;
    }
    let b = norm.as_bytes();
    let (mut commas, mut spaced) = (0usize, false);
    // The commas found by a vector search (prose has few), not byte by byte.
    for i in memchr::memchr_iter(b',', b) {
        let prev = i.checked_sub(1).map(|p| b[p]);
        let next = b.get(i + 1).copied();
        if prev == Some(b'"') && next == Some(b'"') {
            return true;
        }
        spaced |= next == Some(b' ');
        let numeric = prev.is_some_and(|p| p.is_ascii_digit()) && next.is_some_and(|n| n.is_ascii_digit());
        commas += usize::from(!numeric);
    }
    !spaced && commas >= 2
}

/// `<` then `/`, `!` or a lower-case tag name ended by `>`, `/` or a space.
fn starts_with_tag(s: &str) -> bool {
    let Some(rest) = s.strip_prefix('<') else { return false };
    if rest.starts_with(['/', '!']) {
        return true;
    }
    let name = rest.bytes().take_while(|b| b.is_ascii_lowercase() || b.is_ascii_digit()).count();
    name > 0 && rest.as_bytes().get(name).is_some_and(|b| matches!(b, b'>' | b'/' | b' '))
}

/// Ends with `/>` or with `</name>`.
fn ends_with_tag(s: &str) -> bool {
    if s.ends_with("/>") {
        return true;
    }
    s.strip_suffix('>')
        .and_then(|r| r.rfind("</").map(|i| &r[i + 2..]))
        .is_some_and(|name| !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The counts of [`mostly_numbers_or_bar`] as first written (one
    /// `usize` counter per byte test), for the vectorised pieces.
    fn mostly_numbers_or_bar_reference(norm: &str) -> bool {
        let b = norm.as_bytes();
        let digits = b.iter().filter(|c| c.is_ascii_digit()).count();
        let words = b.iter().filter(|&&c| c == b' ').count() + 1;
        if b.contains(&b'|') {
            return true;
        }
        if words < 3 || digits * 2 < words {
            return false;
        }
        let number = |w: &&str| {
            w.bytes().any(|c| c.is_ascii_digit()) && !w.bytes().any(|c| c.is_ascii_alphabetic() || c >= 0x80)
        };
        norm.split(' ').filter(number).count() * 2 >= words
    }

    proptest::proptest! {
        #[test]
        fn number_and_bar_counts_hold_across_the_255_byte_pieces(
            mut words in proptest::collection::vec(proptest::sample::select(vec!["12", "3.5", "ab", "x1", "--", "\u{e9}"]), 0..400),
            bar in proptest::option::of(0usize..400),
        ) {
            if let Some(at) = bar {
                words.insert(at.min(words.len()), "|");
            }
            let line = words.join(" ");
            proptest::prop_assert_eq!(mostly_numbers_or_bar(&line), mostly_numbers_or_bar_reference(&line), "{}", line);
        }
    }

    fn c(line: &str) -> WrapLine<'_> {
        WrapLine::of_output(line)
    }

    #[test]
    fn list_items() {
        for l in ["- Increased spending", "* x y", "\u{2022} bullet", "1. First", "12) Twelfth", "a) one", "(b) two"] {
            assert!(is_list_item(l), "{l}");
        }
        for l in ["-5 degrees", "1.5 billion dlrs", "A. Smith said", "Dock workers", "2005-6 target", "-"] {
            assert!(!is_list_item(l), "{l}");
        }
    }

    #[test]
    fn table_rows() {
        assert!(is_table_row("Wheat 2.55 2.40 IV 4.65 --", " Wheat   2.55   2.40       IV     4.65     --"));
        assert!(is_table_row("Arsenal 38 26 9 3 73 26 87", "Arsenal 38 26 9 3 73 26 87"));
        assert!(is_table_row("| a | b |", "| a | b |"));
        assert!(!is_table_row("23, 1981 for wheat. Level V wheat/barley after 5/14/82,", "23, 1981 for wheat."));
        assert!(!is_table_row("indented line", "    indented line  "));
    }

    #[test]
    fn column_gaps_are_a_tab_a_run_of_three_or_two_runs_of_two() {
        for (line, want) in [
            ("a b c", false),
            ("a  b c", false),
            ("a  b  c", true),
            ("a   b", true),
            ("a\tb", true),
            ("caf\u{e9}  au lait", false),
            ("caf\u{e9}  au  lait", true),
            ("\u{201c}x\u{201d}    y", true),
            ("x \u{a0} y", false),
        ] {
            assert_eq!(column_gaps(line, &line.split_whitespace().collect::<Vec<_>>().join(" ")), want, "{line:?}");
        }
    }

    #[test]
    fn headings_and_non_prose() {
        assert!(is_heading("NORTHBAY DOCK STRIKE ENDS AFTER PAY DEAL"));
        assert!(is_heading("# Title"));
        assert!(!is_heading("U.S. Government securities market"));
        assert!(!is_heading("1987"));
        for l in [r#"{"id":1,"text":"a b"}"#, "[1, 2]", "<p>Hello", "</div>", "text here</p>", "a,b,c", r#""x","y""#] {
            assert!(is_not_prose(l), "{l}");
        }
        for l in ["<Chrysler Corp> said it", "a, b, c", "4,000,000 dlrs of", "one,two"] {
            assert!(!is_not_prose(l), "{l}");
        }
    }

    #[test]
    fn a_wrapped_line_continues_when_the_next_word_would_not_fit() {
        let a = c("The Federal Reserve entered the U.S.");
        let a2 = c("Government securities market to arrange 1.5 billion dlrs of");
        let b = c("system repurchase agreements for its own account.");
        assert!(continues(&a, &a2, 50), "U.S. does not end the sentence");
        assert!(!continues(&c("The Fed entered the market."), &a2, 30), "ends a sentence");
        assert!(continues(&a2, &b, 64));
        let capital = c("System repurchase agreements for its own account.");
        let a3 = c("Government securities market to arrange 1.5 billion dlrs");
        assert!(!continues(&a3, &capital, 72), "'System' would have fitted in 72 columns");
        assert!(continues(&a2, &capital, 72), "a line ending on 'of' carries on");
        assert!(!continues(&a2, &b, 101), "too wide to be hard-wrapped");
        assert!(!continues(&c("Short line"), &capital, 60), "shorter than half the width");
        assert!(!continues(&a2, &c("- a list item"), 64));
        assert!(!continues(&a2, &c("HEADLINE HERE"), 64));
    }

    #[test]
    fn a_line_starting_lower_case_carries_on_the_sentence_before_it() {
        let b = c("traders and commission house representatives are guesstimating");
        assert!(continues(&c("Chicago Mercantile Exchange floor"), &b, 66), "shorter than half the width");
        assert!(continues(&c("Japan, which has been accused of dumping"), &c("everything from steel to"), 70));
        assert!(!continues(&c("The market closed higher."), &b, 66), "ends a sentence");
        assert!(!continues(&c("Chicago Mercantile Exchange floor"), &c("a) a list item"), 66));
        assert!(!continues(&c("Chicago Mercantile Exchange floor"), &b, 101), "too wide to be hard-wrapped");
    }

    #[test]
    fn a_line_ending_on_an_article_or_preposition_carries_on() {
        let b = c("Securities and Exchange Commission a registration statement");
        assert!(continues(&c("Atari Corp said it filed with the"), &b, 68));
        assert!(continues(&c("The U.S. Is willing to drop tariffs on"), &c("Japanese electronic imports"), 68));
        assert!(!continues(&c("Atari files with the SEC"), &b, 68), "a short line ended on purpose");
        assert!(!continues(&c("Atari Corp said it filed with the."), &b, 68), "ends a sentence");
    }
}
