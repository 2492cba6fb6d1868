use super::*;

#[test]
fn render_keeps_every_line_break_of_the_input() {
    for text in ["Title\n\n\nBody text.\n\n\n", "\n\nNo final break", "a\n- b\n- c\n", ""] {
        let doc = Document::prepare(text.to_owned(), &TextOptions::default());
        let all = vec![Verdict::Keep; doc.len()];
        let want = if doc.is_empty() { "" } else { text };
        assert_eq!(doc.render(&all, Emit::Normalized), want);
    }
    let doc = Document::prepare("a \r\n\t\r\nb\u{2029}c".to_owned(), &TextOptions::default());
    assert_eq!(doc.render(&[Verdict::Keep; 3], Emit::Normalized), "a\n\nb\n\nc");
}

#[test]
fn rendered_borrows_the_split_text_only_where_it_is_the_rendering() {
    let texts =
        ["Title\n\n\nBody text.\n\n\n", "\n\n", "a\n- b\n- c", "A.\nB.\u{2029}C.\n", "\u{201C}Hi\u{201D}\r\n\r\nNext"];
    for text in texts {
        let doc = Document::prepare(text.to_owned(), &TextOptions::default());
        let n = doc.len();
        let mut cases = vec![vec![Verdict::Keep; n]];
        cases.extend((0..n).map(|k| drop_at(n, &[k])));
        for v in &cases {
            for emit in [Emit::Normalized, Emit::Unwrapped, Emit::Original] {
                let mut buf = String::from("left over");
                assert_eq!(doc.rendered(v, emit, &mut buf), doc.render(v, emit), "{text:?} {v:?} {emit:?}");
            }
        }
    }
    // News paragraphs a line each, longer than any wrap width: the
    // split's text is the rendering when everything is kept.
    let long = format!("{}\n\n{}\n", "word ".repeat(60).trim_end(), "more ".repeat(60).trim_end());
    let doc = Document::prepare(long.clone(), &TextOptions::default());
    let mut buf = String::new();
    let all = vec![Verdict::Keep; doc.len()];
    let got = doc.rendered(&all, Emit::Normalized, &mut buf);
    assert!(std::ptr::eq(got.as_ptr(), doc.split.text.as_ptr()) && got == long);
    assert!(buf.is_empty(), "nothing was built");
    let got = doc.rendered(&drop_at(2, &[0]), Emit::Normalized, &mut buf);
    assert_eq!(got, doc.render(&drop_at(2, &[0]), Emit::Normalized));
    // Blank lines only: no paragraph, so nothing is rendered, though the
    // split's text holds the blank lines.
    let doc = Document::prepare("\n\n".to_owned(), &TextOptions::default());
    assert_eq!(doc.rendered(&[], Emit::Normalized, &mut String::new()), "");
}

#[test]
fn render_original_uses_input_line_endings_and_text() {
    let doc = Document::prepare("\u{201C}Hi\u{201D}\u{a0} \r\nNext\r\n".to_owned(), &TextOptions::default());
    let all = vec![Verdict::Keep; doc.len()];
    assert_eq!(doc.render(&all, Emit::Original), "\u{201C}Hi\u{201D}\u{a0} \r\nNext\r\n");
    assert_eq!(doc.render(&all, Emit::Normalized), "\"Hi\"\nNext\n");
}

fn drop_at(n: usize, dropped: &[usize]) -> Vec<Verdict> {
    let d = Verdict::Drop { reason: crate::dedup::Reason::WithinDocument, first: Default::default() };
    (0..n).map(|i| if dropped.contains(&i) { d } else { Verdict::Keep }).collect()
}

#[test]
fn removal_spans_delete_exactly_the_dropped_paragraphs() {
    let text = "\nA one.\n\nB two.\n\nC three.\n\nD four.";
    let doc = Document::prepare(text.to_owned(), &TextOptions::default());
    let cases: [(&[usize], &str); 5] = [
        (&[1], "\nA one.\n\nC three.\n\nD four."),
        (&[3], "\nA one.\n\nB two.\n\nC three.\n"),
        (&[0, 1], "\nC three.\n\nD four."),
        (&[1, 2], "\nA one.\n\nD four."),
        (&[0, 3], "\nB two.\n\nC three.\n"),
    ];
    for (dropped, want) in cases {
        let v = drop_at(4, dropped);
        assert_eq!(doc.render(&v, Emit::Original), want, "{dropped:?}");
        assert_eq!(doc.render(&v, Emit::Normalized), want, "{dropped:?}");
    }
    let spans = doc.removal_spans(&drop_at(4, &[0, 1, 2, 3]));
    assert_eq!(spans.first().map(|s| s.0.start), Some(0));
    assert_eq!(spans.last().map(|s| s.0.end), Some(text.len()));
}

#[test]
fn a_blank_line_keeps_apart_kept_lines_that_would_read_as_one_paragraph() {
    // Line 1 ends mid-sentence but "Pay" would have fitted on it (width
    // 63, from line 2), so it ends a paragraph. With line 2 dropped the
    // width is 50, "Northbay," no longer fits: read again, lines 1 and 3
    // would be one paragraph, so a blank line goes between them.
    let text = "Dock workers ended a two-week strike on Tuesday as\n\
                Pay talks, they said, had gone on for six long days and nights.\n\
                Northbay harbour, officials said.\n";
    let doc = Document::prepare(text.to_owned(), &TextOptions::default());
    assert_eq!(doc.len(), 3);
    let once = doc.render(&drop_at(3, &[1]), Emit::Normalized);
    assert_eq!(once, "Dock workers ended a two-week strike on Tuesday as\n\nNorthbay harbour, officials said.\n");
    assert_eq!(crate::clean_text(&once, &crate::CleanOptions::default()), once);
    // `--emit original` only ever cuts.
    let last = doc.render(&drop_at(3, &[2]), Emit::Original);
    assert_eq!(
        last,
        "Dock workers ended a two-week strike on Tuesday as\nPay talks, they said, had gone on for six long days and nights.\n"
    );
    let original = doc.render(&drop_at(3, &[1]), Emit::Original);
    assert_eq!(original, "Dock workers ended a two-week strike on Tuesday as\nNorthbay harbour, officials said.\n");
}

#[test]
fn unwrapped_writes_each_paragraph_on_one_line() {
    let text = "  The harbour authority said on Tuesday that it\nwould raise pay.\n- one item\n- another item\n";
    let doc = Document::prepare(text.to_owned(), &TextOptions::default());
    let all = vec![Verdict::Keep; doc.len()];
    assert_eq!(doc.len(), 3);
    let want = "The harbour authority said on Tuesday that it would raise pay.\n- one item\n- another item\n";
    assert_eq!(doc.render(&all, Emit::Unwrapped), want);
    let kept_lines = "The harbour authority said on Tuesday that it\nwould raise pay.\n- one item\n- another item\n";
    assert_eq!(doc.render(&all, Emit::Normalized), kept_lines);
}

proptest::proptest! {
    /// The shortcut of [`Document::rendered_as_split`] gives what the
    /// line-by-line rendering gives, whenever it is taken.
    #[test]
    fn a_document_kept_whole_renders_as_its_split_text(
        parts in proptest::collection::vec(proptest::prop_oneof![
            proptest::prelude::Just("The harbour authority said on Tuesday that it would raise pay for the dock workers by four percent from May.".to_owned()),
            proptest::prelude::Just("short line".to_owned()),
            proptest::prelude::Just("Wheat   2.55   2.40".to_owned()),
            proptest::prelude::Just("  indented \u{201c}quote\u{201d}\u{a0} ".to_owned()),
            proptest::prelude::Just("- a list item".to_owned()),
            proptest::prelude::Just(" \t ".to_owned()),
            "[\n\r\u{85}\u{2028}\u{2029}]|\r\n",
        ], 0..12),
        mode in proptest::prop_oneof![
            proptest::prelude::Just(SplitMode::Auto),
            proptest::prelude::Just(SplitMode::Line),
            proptest::prelude::Just(SplitMode::Blank),
        ],
    ) {
        let text: String = parts.concat();
        let doc = Document::prepare(text, &TextOptions { split: mode, ..TextOptions::default() });
        let all = vec![Verdict::Keep; doc.len()];
        let mut slow = String::new();
        if !all.is_empty() {
            doc.render_lines(&all, false, &mut slow);
        }
        proptest::prop_assert_eq!(doc.render(&all, Emit::Normalized), slow);
    }
}

/// The case the property test above once shrank to: one sentence,
/// no line break, the wrap rule in charge.
#[test]
fn one_unbroken_sentence_renders_as_its_split_text() {
    let text =
        "The harbour authority said on Tuesday that it would raise pay for the dock workers by four percent from May.";
    let doc = Document::prepare(text.to_owned(), &TextOptions::default());
    let all = vec![Verdict::Keep; doc.len()];
    let mut slow = String::new();
    doc.render_lines(&all, false, &mut slow);
    assert_eq!(doc.render(&all, Emit::Normalized), slow);
    assert_eq!(slow, text);
}

#[test]
fn nothing_kept_renders_nothing() {
    let doc = Document::prepare("a\nb\n".to_owned(), &TextOptions::default());
    let none = vec![Verdict::Drop { reason: crate::dedup::Reason::WithinDocument, first: Default::default() }; 2];
    assert_eq!(doc.render(&none, Emit::Normalized), "");
}
