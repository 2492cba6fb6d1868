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

/// The rendering as it was first written, one line at a time (each line's
/// text, then its break unless a removal span holds it): the oracle for
/// [`Document::for_each_piece`], which steps a paragraph at a time.
fn render_line_by_line(doc: &Document, verdicts: &[Verdict], unwrap: bool) -> String {
    let mut out = String::new();
    if !verdicts.iter().any(|v| v.is_kept()) {
        return out;
    }
    let (split, lines, spans) = (&doc.split, &doc.split.lines, &doc.split.spans);
    let text = |para: usize, line: usize| if unwrap { split.paragraph(para) } else { Cow::Borrowed(split.line(line)) };
    let width = (spans.iter().zip(verdicts).enumerate())
        .filter(|(_, (_, v))| v.is_kept())
        .map(|(p, (span, _))| match unwrap {
            true => doc.output_chars(p, span.lines.start, true),
            false => lines[span.lines.clone()].iter().map(|l| l.chars).max().unwrap_or(0),
        })
        .max()
        .unwrap_or(0);
    let (mut prev, mut breaks): (Option<(usize, usize)>, usize) = (None, 0);
    let mut next = 0;
    let mut removals = doc.removals(verdicts).peekable();
    for (i, line) in lines.iter().enumerate() {
        while spans.get(next).is_some_and(|s| s.lines.end <= i) {
            next += 1;
        }
        let span = spans
            .get(next)
            .filter(|s| s.lines.contains(&i) && verdicts.get(next).is_some_and(|v| v.is_kept()))
            .map(|s| (next, &s.lines));
        if let Some((para, range)) = span
            && (!unwrap || i == range.start)
        {
            let t = text(para, i);
            if let Some((p, l)) = prev
                && p != para
                && breaks == 1
                && would_join(&doc.as_output(&text(p, l), l, unwrap), &doc.as_output(&t, i, unwrap), split.mode, width)
            {
                out.push('\n');
            }
            out.push_str(&t);
            (prev, breaks) = (Some((para, i)), 0);
        }
        if line.terminator == Terminator::None || span.is_some_and(|(_, range)| unwrap && i + 1 < range.end) {
            continue;
        }
        let at = line.orig.end;
        while removals.next_if(|(range, _)| range.end <= at).is_some() {}
        if removals.peek().is_none_or(|(range, _)| at < range.start) {
            let brk = if line.terminator == Terminator::Paragraph { "\n\n" } else { "\n" };
            out.push_str(brk);
            breaks += brk.len();
        }
    }
    out
}

proptest::proptest! {
    /// Stepping a paragraph at a time renders what the line-by-line walk
    /// renders, for any paragraphs dropped: hard-wrapped paragraphs (the
    /// wrap rule joins their lines), blank lines, every kind of break.
    #[test]
    fn rendering_a_paragraph_at_a_time_is_rendering_line_by_line(
        parts in proptest::collection::vec(proptest::prop_oneof![
            proptest::prelude::Just("Atari Corp said it filed with the".to_owned()),
            proptest::prelude::Just("Securities and Exchange Commission for an offering of".to_owned()),
            proptest::prelude::Just("shares, the company said.".to_owned()),
            proptest::prelude::Just("short line".to_owned()),
            proptest::prelude::Just("Wheat   2.55   2.40".to_owned()),
            proptest::prelude::Just("  indented \u{201c}quote\u{201d}\u{a0} ".to_owned()),
            proptest::prelude::Just("- a list item".to_owned()),
            proptest::prelude::Just(" \t ".to_owned()),
            "[\n\r\u{85}\u{2028}\u{2029}]|\r\n|\n\n",
        ], 0..16),
        mode in proptest::prop_oneof![
            proptest::prelude::Just(SplitMode::Auto),
            proptest::prelude::Just(SplitMode::Line),
            proptest::prelude::Just(SplitMode::Blank),
        ],
        mask in proptest::prelude::any::<u16>(),
    ) {
        let text: String = parts.concat();
        let doc = Document::prepare(text, &TextOptions { split: mode, ..TextOptions::default() });
        let dropped: Vec<usize> = (0..doc.len()).filter(|k| mask >> (k % 16) & 1 == 1).collect();
        let verdicts = drop_at(doc.len(), &dropped);
        for unwrap in [false, true] {
            let emit = if unwrap { Emit::Unwrapped } else { Emit::Normalized };
            proptest::prop_assert_eq!(doc.render(&verdicts, emit), render_line_by_line(&doc, &verdicts, unwrap));
        }
    }
}

/// The rule that keeps two kept paragraphs apart looks at the *last* line
/// of the first: here its first line ends mid-phrase (it would read as
/// continued), its last ends a sentence (it does not).
#[test]
fn the_line_before_a_cut_is_the_kept_paragraphs_last() {
    let text = "Atari Corp said it filed with the\nSecurities and Exchange Commission for an offering of\n\
                shares, the company said.\nshort line\nPay rose four percent.\n";
    let doc = Document::prepare(text.to_owned(), &TextOptions::default());
    assert_eq!(doc.len(), 3, "{:?}", doc.split.spans);
    let want = "Atari Corp said it filed with the\nSecurities and Exchange Commission for an offering of\n\
                shares, the company said.\nPay rose four percent.\n";
    assert_eq!(doc.render(&drop_at(3, &[1]), Emit::Normalized), want);
    assert_eq!(render_line_by_line(&doc, &drop_at(3, &[1]), false), want);
}

/// Documents keyed together ([`Document::from_splits`], as the JSONL
/// pipeline keys a group of records) are the documents keyed one at a time:
/// with enough paragraphs between them for the sixteen AVX-512 lanes where
/// the process takes them (`.ci/run` runs the library's tests with
/// `NEWSDEDUP_SHA_LANES=wide` and `=ni`), keys hashed where they lie and
/// gathered ones (wrapped lines joined, NFKC, loose keys) side by side.
#[test]
fn documents_keyed_together_are_documents_keyed_one_at_a_time() {
    let texts: Vec<String> = (0..12)
        .map(|d| {
            (0..d + 3)
                .map(|p| match (d + p) % 4 {
                    0 => format!("Paragraph {p} of document {d}: {}", "words and more words ".repeat(p * 3 % 17)),
                    1 => format!("A wrapped\nparagraph {p}, \u{FB01}ne print of {d}"),
                    2 => "Reuter".to_owned(),
                    _ => format!("“Quoted,” said {d}. {}", "x".repeat(p * 29 % 200)),
                })
                .collect::<Vec<_>>()
                .join("\n\n")
        })
        .collect();
    for key in [KeyMode::Exact, KeyMode::Loose] {
        let opts = TextOptions { key, ..TextOptions::default() };
        let split = |t: &String| {
            let mut lines = LineBuilder::new(t.len(), opts.split, opts.quotes);
            crate::jsonl::feed_text(t, &mut lines);
            (t.clone(), lines.finish(t))
        };
        let together = Document::from_splits(texts.iter().map(split).collect(), &opts);
        assert_eq!(together.len(), texts.len());
        let paragraphs: usize = together.iter().map(Document::len).sum();
        assert!(paragraphs > 2 * crate::key::WIDE_MIN, "{paragraphs} paragraphs");
        for (doc, text) in together.iter().zip(&texts) {
            let alone = Document::prepare(text.clone(), &opts);
            let keys = |d: &Document| d.keys.iter().map(|k| (k.digest, k.chars)).collect::<Vec<_>>();
            assert_eq!(keys(doc), keys(&alone), "{text:?}");
            assert_eq!(doc.whole, alone.whole);
            assert_eq!(doc.original, alone.original);
        }
    }
}
