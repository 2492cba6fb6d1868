//! The BBC News corpus (2,225 articles, 98 byte-identical duplicates), run
//! end to end when it is present next to the repository: ignored by default
//! (`cargo test -- --ignored needs_corpora_`, which `.ci/run` does when
//! `../shared/corpora` exists; see `tests/util/env.rs`). The corpus is read-only research data: it is read in
//! place and never copied into the repository.

mod util;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use newsdedup::dedup::Rules;
use newsdedup::key::{KeyMode, key};
use newsdedup::normalize::{QuoteMode, lines, normalize_line};
use newsdedup::read::{EncodingPolicy, decode};
use newsdedup::split::{SplitMode, split};
use util::{TestDir, is_subsequence, read_report, snapshot};

/// The normalised paragraphs of an input file, decoded as the tool does.
fn input_paragraphs(bytes: &[u8]) -> Vec<String> {
    let (text, _) = decode(bytes.to_vec(), EncodingPolicy::Repair).expect("decodable");
    split(&text, SplitMode::Auto, QuoteMode::Fold).paragraphs().map(String::from).collect()
}

/// The non-blank normalised lines of an input file.
fn input_lines(bytes: &[u8]) -> Vec<String> {
    let (text, _) = decode(bytes.to_vec(), EncodingPolicy::Repair).expect("decodable");
    lines(&text).map(|l| normalize_line(l.text, QuoteMode::Fold)).filter(|l| !l.is_empty()).collect()
}

#[test]
#[ignore = "needs ../shared/corpora/bbc-news; .ci/run runs it when present"]
fn needs_corpora_bbc_news_end_to_end() {
    let bbc = util::env::corpus("bbc-news");
    let t = TestDir::new();
    let flags = ["--glob", "*/*.txt", "--out", "out", "--report", "report.json", "--quiet"];
    let run = t.clean(&bbc, &flags).expect(0);
    let report = read_report(&t.join("report.json"));
    let totals = &report["totals"];
    eprintln!("bbc-news totals: {totals}");
    assert_eq!(totals["documents_read"], 2225);
    assert_eq!(totals["documents_duplicate"], 98);
    assert_eq!(totals["inputs_failed"], 0);

    // Inputs in corpus order (byte-wise relative paths), as the tool sees them.
    let mut inputs: Vec<(PathBuf, Vec<u8>)> = snapshot(&bbc)
        .into_iter()
        .filter(|(rel, _)| rel.components().count() == 2 && rel.extension().is_some_and(|e| e == "txt"))
        .collect();
    inputs.sort_by(|a, b| a.0.as_os_str().as_encoded_bytes().cmp(b.0.as_os_str().as_encoded_bytes()));
    assert_eq!(inputs.len(), 2225);
    let position: HashMap<&Path, usize> = inputs.iter().enumerate().map(|(i, (p, _))| (p.as_path(), i)).collect();
    let bytes_of: HashMap<&Path, &[u8]> = inputs.iter().map(|(p, b)| (p.as_path(), b.as_slice())).collect();

    // Every duplicate names a byte-identical earlier file; and the duplicates
    // are exactly the files whose bytes equal an earlier file's.
    let rows = report["files"].as_array().unwrap();
    let mut duplicates = Vec::new();
    for row in rows.iter().filter(|r| r["status"] == "duplicate") {
        let (path, first) = (Path::new(row["path"].as_str().unwrap()), row["duplicate_of"].as_str().unwrap());
        let first = Path::new(first);
        assert_eq!(bytes_of[path], bytes_of[first], "{} is not byte-identical to {}", path.display(), first.display());
        assert!(position[first] < position[path], "{} is not earlier than {}", first.display(), path.display());
        duplicates.push(path.to_path_buf());
    }
    let mut seen_bytes = std::collections::HashSet::new();
    let identical: Vec<PathBuf> =
        inputs.iter().filter(|(_, b)| !seen_bytes.insert(b.as_slice())).map(|(p, _)| p.clone()).collect();
    assert_eq!(duplicates, identical);

    // sport/199.txt: Latin-1 0xA3 at byte 257, repaired to £.
    let row = rows.iter().find(|r| r["path"] == "sport/199.txt").expect("sport/199.txt row");
    assert_eq!(row["repaired_at"], 257);
    assert_eq!(bytes_of[Path::new("sport/199.txt")][257], 0xA3);
    let out199 = std::fs::read_to_string(t.join("out/sport/199.txt")).expect("sport/199.txt written as UTF-8");
    assert!(out199.contains("\u{00A3}15.8m"), "no £ in sport/199.txt output");

    // Short facts repeated from another story stay in both (issue 19): a
    // referee, a venue, a date of two different match previews.
    for (line, files) in [
        ("P Dowd (Staffordshire).", ["sport/163.txt", "sport/240.txt"]),
        ("Lansdowne Road, Dublin", ["sport/323.txt", "sport/378.txt"]),
        ("Saturday, 26 February", ["sport/320.txt", "sport/322.txt"]),
    ] {
        for f in files {
            let out = std::fs::read_to_string(t.join("out").join(f)).expect("written");
            assert!(out.lines().any(|l| l == line), "{f}: {line:?} was dropped");
        }
    }

    // Invariants: every distinct long key survives exactly once, in the first
    // file holding it; every output is an in-order subsequence of its input.
    let outputs = snapshot(&t.join("out"));
    let min = Rules::default().min_chars;
    let mut home: HashMap<String, &Path> = HashMap::new();
    let mut paragraphs_in = 0;
    for (rel, bytes) in &inputs {
        for p in input_paragraphs(bytes) {
            paragraphs_in += 1;
            let k = key(&p, KeyMode::Exact);
            if k.chars().count() >= min {
                home.entry(k).or_insert(rel);
            }
        }
    }
    let mut found: HashMap<String, Vec<&Path>> = HashMap::new();
    let mut paragraphs_kept = 0;
    let mut reshaped = Vec::new();
    for (rel, bytes) in &outputs {
        let text = std::str::from_utf8(bytes).expect("output is UTF-8");
        // Fidelity: every output line is a normalised line of the same input
        // file, in order.
        let out_lines: Vec<&str> = text.split('\n').filter(|l| !l.is_empty()).collect();
        let in_lines = input_lines(bytes_of[rel.as_path()]);
        if !is_subsequence(&out_lines, &in_lines.iter().map(String::as_str).collect::<Vec<_>>()) {
            reshaped.push(rel.clone());
        }
        let kept = input_paragraphs(bytes);
        paragraphs_kept += kept.len();
        let input = input_paragraphs(bytes_of[rel.as_path()]);
        assert!(is_subsequence(&kept, &input), "{}: output is not a subsequence of the input", rel.display());
        for p in kept {
            let k = key(&p, KeyMode::Exact);
            if k.chars().count() >= min {
                found.entry(k).or_default().push(rel);
            }
        }
    }
    for (k, rel) in &home {
        let got = found.get(k).map(Vec::as_slice).unwrap_or_default();
        if got != [*rel] {
            run.fail(&format!("long key {k:?}: first in {}, found in {got:?}", rel.display()));
        }
    }
    assert_eq!(found.len(), home.len());
    assert_eq!(reshaped, Vec::<PathBuf>::new(), "outputs with a line that is not a normalised input line");
    // A list item that politics/067.txt has among other items and
    // politics/390.txt has too: one paragraph, kept once (in 067).
    let item = "- Parenting plans to give advice on access arrangements, based on real-life examples that have worked in the past";
    let holders: Vec<&PathBuf> = outputs
        .iter()
        .filter(|(_, b)| std::str::from_utf8(b).is_ok_and(|t| t.lines().any(|l| l == item)))
        .map(|(rel, _)| rel)
        .collect();
    assert_eq!(holders, [Path::new("politics/067.txt")], "the list item is kept once");
    assert_eq!(totals["paragraphs_in"], paragraphs_in);
    assert_eq!(totals["paragraphs_kept"], paragraphs_kept);
    assert_eq!(totals["documents_written"], outputs.len());
    assert_eq!(totals["bytes_out"], outputs.values().map(Vec::len).sum::<usize>());
}
