//! Property tests of the invariants: normalisation is idempotent, cleaning
//! is idempotent, every distinct long paragraph survives exactly once (in
//! the first file that holds it), a short paragraph survives once in every
//! story that repeats it alone, kept paragraphs keep their order, and the
//! cleaner only removes: every output line is a normalised input line.

mod util;

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::path::{Path, PathBuf};

use newsdedup::config::{Config, Input, Output};
use newsdedup::dedup::Rules;
use newsdedup::document::{Emit, TextOptions};
use newsdedup::key::{KeyMode, key};
use newsdedup::normalize::{QuoteMode, normalize, normalize_line};
use newsdedup::split::{SplitMode, split};
use newsdedup::{CleanOptions, clean_text};
use proptest::prelude::*;
use util::{is_subsequence, snapshot};

/// Characters the rules treat specially: quotes, spaces, line breaks,
/// combining marks, invisible and control characters, compatibility forms.
const TRICKY: &[char] = &[
    '"', '\'', '\u{201C}', '\u{201D}', '\u{201E}', '\u{201A}', '\u{2018}', '\u{2019}', '\u{00AB}', '\u{00BB}',
    '\u{2032}', '\u{2033}', '\u{FF02}', ' ', ' ', '\t', '\u{00A0}', '\u{2000}', '\u{202F}', '\u{3000}', '\r', '\n',
    '\n', '\u{0085}', '\u{2028}', '\u{2029}', '\u{000B}', '\u{000C}', '\u{0301}', '\u{0308}', '\u{0316}', '\u{0344}',
    '\u{200B}', '\u{200C}', '\u{200D}', '\u{2060}', '\u{FEFF}', '\u{00AD}', '\u{0000}', '\u{0007}', '\u{007F}',
    '\u{009F}', '\u{FB01}', '\u{FF21}', '\u{2126}', '.', '!', '?', ',', '-', 'e', 'E', '\u{00E9}', '4',
];

fn tricky_char() -> impl Strategy<Value = char> {
    prop_oneof![5 => prop::sample::select(TRICKY), 3 => prop::char::range('a', 'z'), 1 => any::<char>()]
}

fn tricky_string() -> impl Strategy<Value = String> {
    prop::collection::vec(tricky_char(), 0..80).prop_map(|v| v.into_iter().collect())
}

/// Paragraphs that repeat, in variants that must (or must not) compare equal.
const POOL: &[&str] = &[
    "Interpol has identified over 4,000 foreign fighters.",
    "\"We must remember that information is shared,\" he said.",
    "Stock was speaking at the opening of a meeting",
    "he said.",
    "Reuters",
    "A recent UN report showed an increase in fighters.",
    "Le march\u{00E9} de No\u{00EB}l ouvre ses portes.",
];

/// A text made of pool paragraphs (with typographic variants), tricky
/// fragments, and assorted line breaks and indents between them.
fn article() -> impl Strategy<Value = String> {
    let piece = (0..POOL.len() + 1, 0u8..8, tricky_string(), 0usize..9);
    prop::collection::vec(piece, 0..14).prop_map(|pieces| {
        let seps = ["\n", "\n", "\r\n", "\n\n", "\u{2029}", "\u{0085}", "\u{2028}", "\n    ", "\r"];
        let mut text = String::new();
        for (pick, variant, junk, sep) in pieces {
            let mut p = match POOL.get(pick) {
                Some(p) => (*p).to_owned(),
                None => junk,
            };
            if variant & 1 == 1 {
                p = p.replacen('"', "\u{201C}", 1).replacen('"', "\u{201D}", 1);
            }
            if variant & 2 == 2 {
                p = p.replacen(' ', "\u{00A0}\u{00A0}", 2);
            }
            if variant & 4 == 4 {
                p = p.replacen('e', "e\u{0301}\u{200B}", 1).replacen("ar", "a\u{00AD}r", 1);
            }
            text.push_str(&p);
            text.push_str(seps[sep]);
        }
        text
    })
}

fn any_text() -> impl Strategy<Value = String> {
    prop_oneof![tricky_string(), article()]
}

fn text_options(splits: &'static [SplitMode]) -> impl Strategy<Value = CleanOptions> {
    let quotes = prop::sample::select(&[QuoteMode::Fold, QuoteMode::Keep][..]);
    let keys = prop::sample::select(&[KeyMode::Exact, KeyMode::Loose][..]);
    (prop::sample::select(splits), quotes, keys, 0usize..30).prop_map(|(split, quotes, key, min_chars_within)| {
        CleanOptions {
            text: TextOptions { split, quotes, key },
            rules: Rules { min_chars_within, ..Rules::default() },
            emit: Emit::Normalized,
        }
    })
}

const ALL_SPLITS: &[SplitMode] = &[SplitMode::Auto, SplitMode::Line, SplitMode::Blank];

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn normalize_is_idempotent(text in any_text()) {
        for q in [QuoteMode::Fold, QuoteMode::Keep] {
            let once = normalize(&text, q);
            prop_assert_eq!(normalize(&once, q), once);
        }
    }

    #[test]
    fn every_distinct_long_key_survives_exactly_once_in_order(text in any_text(), opts in text_options(ALL_SPLITS)) {
        let out = clean_text(&text, &opts);
        let input = split(&text, opts.text.split, opts.text.quotes);
        let input_paras: Vec<String> = input.paragraphs().map(String::from).collect();
        let kept: Vec<String> = split(&out, opts.text.split, opts.text.quotes).paragraphs().map(String::from).collect();
        prop_assert!(is_subsequence(&kept, &input_paras), "output {:?} is not a subsequence of {:?}", kept, input_paras);
        let mut count: HashMap<String, usize> = HashMap::new();
        for p in &kept {
            *count.entry(key(p, opts.text.key)).or_default() += 1;
        }
        for p in &input_paras {
            let k = key(p, opts.text.key);
            let n = count.get(&k).copied().unwrap_or(0);
            // The first occurrence of every key is kept; long keys only once.
            prop_assert!(n >= 1, "key {:?} lost", k);
            if k.chars().count() >= opts.rules.min_chars_within.max(1) {
                prop_assert_eq!(n, 1, "long key {:?} kept {} times", k, n);
            }
        }
    }

    #[test]
    fn cleaning_clean_text_changes_nothing(text in any_text(), opts in text_options(ALL_SPLITS), unwrap: bool) {
        let opts = CleanOptions { emit: if unwrap { Emit::Unwrapped } else { Emit::Normalized }, ..opts };
        let once = clean_text(&text, &opts);
        prop_assert_eq!(clean_text(&once, &opts), once);
    }

    /// Without `--unwrap`, every output line is a normalised input line of
    /// the same document, in order (blank lines aside: one may separate two
    /// kept paragraphs that would otherwise read as one).
    #[test]
    fn every_output_line_is_a_normalised_input_line_in_order(text in any_text(), opts in text_options(ALL_SPLITS)) {
        let out = clean_text(&text, &opts);
        let input: Vec<String> = newsdedup::normalize::lines(&text)
            .map(|l| normalize_line(l.text, opts.text.quotes))
            .filter(|l| !l.is_empty())
            .collect();
        let output: Vec<String> = out.split('\n').filter(|l| !l.is_empty()).map(str::to_owned).collect();
        prop_assert!(is_subsequence(&output, &input), "output lines {:?} are not input lines {:?}", output, input);
    }
}

/// `auto` must read the cleaned text the way it read the input: "Reuters"
/// (short) never continues onto the next line, so nothing is added.
#[test]
fn auto_mode_reads_clean_output_back_the_same() {
    let opts = CleanOptions::default();
    let text = "Reuters\nThe minister resigned on Monday evening.\nThe minister resigned on Monday evening.\n";
    let once = clean_text(text, &opts);
    assert_eq!(once, "Reuters\nThe minister resigned on Monday evening.\n");
    assert_eq!(clean_text(&once, &opts), once);
}

// ---- corpora -------------------------------------------------------------

/// Relative paths in byte-wise corpus order ('-' < '/').
const NAMES: [&str; 6] = ["a.txt", "b-x.txt", "b/a/d.txt", "b/c.txt", "c.txt", "z/y.txt"];

/// Paragraphs of the corpus tests: long ones (at least the default
/// `--min-chars`, 60), short facts that recur in unrelated stories, and tiny
/// lines (under `--min-chars-within`, 20).
const CORPUS_POOL: &[&str] = &[
    "Interpol has identified over 4,000 foreign fighters who have joined jihadist groups.",
    "\"We must remember that information is shared across many borders,\" he said.",
    "Stock was speaking at the opening of a meeting of police forces in Barcelona.",
    "Qtly div 10 cts vs 10 cts prior",
    "Lansdowne Road, Dublin",
    "Le march\u{00E9} de No\u{00EB}l ouvre ses portes.",
    "he said.",
    "Reuters",
];

/// Up to six files of pool paragraphs, line or blank-line separated.
fn corpus() -> impl Strategy<Value = Vec<String>> {
    const POOL: &[&str] = CORPUS_POOL;
    let file = (prop::collection::vec((0..POOL.len(), 0u8..4), 0..8), any::<bool>(), any::<bool>());
    prop::collection::vec(file, 1..=NAMES.len()).prop_map(|files| {
        files
            .into_iter()
            .map(|(paras, blank, crlf)| {
                let eol = if crlf { "\r\n" } else { "\n" };
                let sep = if blank { format!("{eol}{eol}") } else { eol.to_owned() };
                let texts: Vec<String> = paras
                    .into_iter()
                    .map(|(i, v)| {
                        let p = POOL[i];
                        match v {
                            1 => p.replacen('"', "\u{201C}", 1).replacen('"', "\u{201D}", 1),
                            2 => p.replacen(' ', "\u{00A0}", 3),
                            _ => p.to_owned(),
                        }
                    })
                    .collect();
                if texts.is_empty() { String::new() } else { texts.join(&sep) + eol }
            })
            .collect()
    })
}

fn clean_tree(input: &Path, out: &Path) {
    let mut cfg = Config::new(Input::Path(input.to_owned()), Output::Dir(out.to_owned()));
    cfg.text.split = SplitMode::Line;
    cfg.quiet = true;
    cfg.progress = false;
    cfg.threads = 2;
    let report = newsdedup::pipeline::run(&cfg).expect("run");
    assert_eq!(report.totals.inputs_failed, 0);
}

fn paragraphs_of(bytes: &[u8]) -> Vec<String> {
    let text = std::str::from_utf8(bytes).expect("UTF-8");
    split(text, SplitMode::Line, QuoteMode::Fold).paragraphs().map(String::from).collect()
}

/// Writes the files, cleans them, checks the corpus invariants; returns the
/// temp dir (input, out) for further checks.
fn check_corpus(files: &[String]) -> Result<(util::TestDir, BTreeMap<PathBuf, Vec<u8>>), TestCaseError> {
    let t = util::TestDir::new();
    for (name, text) in NAMES.iter().zip(files) {
        t.write(&format!("in/{name}"), text);
    }
    clean_tree(&t.join("in"), &t.join("out"));
    let inputs = snapshot(&t.join("in"));
    let outputs = snapshot(&t.join("out"));
    let rules = Rules::default();
    let long = rules.min_chars.max(rules.min_chars_within);
    // Files in corpus order: a `BTreeMap<PathBuf, _>` iterates
    // component-wise; corpus order is byte-wise.
    let mut ordered: Vec<_> = inputs.iter().collect();
    ordered.sort_by(|a, b| a.0.as_os_str().as_encoded_bytes().cmp(b.0.as_os_str().as_encoded_bytes()));
    // Where each key first occurs: long keys must survive there only.
    let mut home: HashMap<String, PathBuf> = HashMap::new();
    for (rel, bytes) in &ordered {
        for p in paragraphs_of(bytes) {
            home.entry(key(&p, KeyMode::Exact)).or_insert_with(|| (*rel).clone());
        }
    }
    let mut found: HashMap<String, Vec<PathBuf>> = HashMap::new();
    for (rel, bytes) in &outputs {
        let kept = paragraphs_of(bytes);
        let input = paragraphs_of(inputs.get(rel).expect("output file without input"));
        prop_assert!(is_subsequence(&kept, &input), "{}: {:?} not a subsequence of {:?}", rel.display(), kept, input);
        for p in kept {
            let k = key(&p, KeyMode::Exact);
            if k.chars().count() >= long {
                found.entry(k).or_default().push(rel.clone());
            }
        }
    }
    for (k, rel) in home.iter().filter(|(k, _)| k.chars().count() >= long) {
        prop_assert_eq!(found.get(k), Some(&vec![rel.clone()]), "key {:?}", k);
    }
    for (rel, bytes) in &ordered {
        let keys: Vec<String> = paragraphs_of(bytes).iter().map(|p| key(p, KeyMode::Exact)).collect();
        let out: Vec<String> = outputs
            .get(*rel)
            .map(|b| paragraphs_of(b).iter().map(|p| key(p, KeyMode::Exact)).collect())
            .unwrap_or_default();
        check_short_repeats(rel, &keys, &out, &home, &rules)?;
    }
    Ok((t, outputs))
}

/// The short keys of one story that repeat another story's: kept once
/// where the story repeats nothing else; dropped where the story repeats
/// another key of at least `min_chars_within` characters from the same
/// earlier story (each checked for keys occurring once in the story).
fn check_short_repeats(
    rel: &Path,
    keys: &[String],
    out: &[String],
    home: &HashMap<String, PathBuf>,
    rules: &Rules,
) -> Result<(), TestCaseError> {
    let once = |k: &String| keys.iter().filter(|x| *x == k).count() == 1;
    let source = |k: &String| home.get(k).filter(|h| h.as_path() != rel);
    let repeats: Vec<&String> = keys.iter().filter(|k| source(k).is_some()).collect();
    let all_unique = keys.iter().all(once);
    for k in keys.iter().filter(|k| source(k).is_some() && k.chars().count() < rules.min_chars && once(k)) {
        let kept = out.iter().filter(|x| *x == k).count();
        if repeats.len() == 1 && all_unique {
            prop_assert_eq!(kept, 1, "{}: short key {:?} repeated alone was not kept once", rel.display(), k);
        }
        let evidence =
            repeats.iter().any(|o| *o != k && source(o) == source(k) && o.chars().count() >= rules.min_chars_within);
        if evidence {
            prop_assert_eq!(kept, 0, "{}: short key {:?} kept with more of its source story", rel.display(), k);
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn corpus_keeps_every_long_key_once_in_its_first_file(files in corpus()) {
        check_corpus(&files)?;
    }

    #[test]
    fn cleaning_a_clean_tree_changes_nothing(files in corpus()) {
        let (t, outputs) = check_corpus(&files)?;
        clean_tree(&t.join("out"), &t.join("again"));
        prop_assert_eq!(util::diff_trees(&outputs, &snapshot(&t.join("again"))), None);
    }
}

/// Outputs made only of short paragraphs are never duplicate documents, so a
/// second run keeps what the first spared.
#[test]
fn recleaning_keeps_short_only_outputs() {
    let t = util::TestDir::new();
    t.write("in/a.txt", "A long paragraph here for the test.\n");
    t.write("in/b.txt", "he said.\nA long paragraph here for the test.\n");
    t.write("in/c.txt", "he said.\n");
    clean_tree(&t.join("in"), &t.join("out"));
    let outputs = snapshot(&t.join("out"));
    assert_eq!(outputs.len(), 3);
    clean_tree(&t.join("out"), &t.join("again"));
    assert_eq!(util::diff_trees(&outputs, &snapshot(&t.join("again"))), None);
    assert!(fs::metadata(t.join("again/c.txt")).is_ok());
}
