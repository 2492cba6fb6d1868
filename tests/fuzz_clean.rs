//! The fuzz target's invariant check, and its stable smoke run.
//!
//! `fuzz/fuzz_targets/clean.rs` includes this file (`#[path]`) and calls
//! [`check`] on every input libFuzzer makes; the `#[test]` below feeds the
//! same function seeded random and mutated inputs, so `cargo test` on stable
//! Rust exercises the same invariants without a fuzzer.
//!
//! [`check`] takes arbitrary bytes through the whole text path —
//! `read::decode` → `Document::prepare` → `Deduper::decide` → `render` — and
//! asserts that nothing panics and that:
//! 1. every distinct key keeps its first occurrence (`Keep`), and a key of at
//!    least `min_chars_within` characters (and at least one) is kept nowhere
//!    else (one document: every repeat is a repeat within it);
//! 2. the output holds the kept paragraphs in input order (cleaning the
//!    output again keeps all of them: same keys, same order);
//! 3. cleaning is idempotent: cleaning the output changes nothing.
//!
//! 2 and 3 read the output back with the same options, `auto` included: the
//! output's lines must split into exactly the kept paragraphs.

use newsdedup::dedup::{Deduper, Rules, Scope, Verdict};
use newsdedup::document::{Document, Emit, TextOptions};
use newsdedup::key::{Digest, KeyMode};
use newsdedup::normalize::QuoteMode;
use newsdedup::read::{EncodingPolicy, decode};
use newsdedup::split::SplitMode;

/// Options picked by the first input byte, so every mode is explored.
pub struct Picked {
    /// Invalid UTF-8 policy.
    pub policy: EncodingPolicy,
    /// Split, quotes, key.
    pub text: TextOptions,
    /// Dedup rules (one document, so the scope hardly matters).
    pub rules: Rules,
}

/// Decodes the option byte.
pub fn pick(b: u8) -> Picked {
    let policy = [EncodingPolicy::Repair, EncodingPolicy::Lossy, EncodingPolicy::Strict][usize::from(b % 3)];
    let split = [SplitMode::Auto, SplitMode::Line, SplitMode::Blank][usize::from(b / 3 % 3)];
    let quotes = if b & 0x10 == 0 { QuoteMode::Fold } else { QuoteMode::Keep };
    let key = if b & 0x20 == 0 { KeyMode::Exact } else { KeyMode::Loose };
    let min_chars = [20, 0, 5, 80][usize::from(b >> 6)];
    let scope = if b & 0x01 == 0 { Scope::Corpus } else { Scope::Document };
    Picked {
        policy,
        text: TextOptions { split, quotes, key },
        rules: Rules { scope, min_chars, min_chars_within: min_chars },
    }
}

/// Cleans `text` as one document; returns the document, its verdicts and the output.
fn clean(text: String, p: &Picked) -> (Document, Vec<Verdict>, String) {
    let doc = Document::prepare(text, &p.text);
    let plan = Deduper::new(p.rules).decide(&doc.keys, &doc.whole);
    assert_eq!(plan.verdicts.len(), doc.len(), "one verdict per paragraph");
    let out = doc.render(&plan.verdicts, Emit::Normalized);
    (doc, plan.verdicts, out)
}

/// Runs the invariants on one input; panics when one fails.
pub fn check(data: &[u8]) {
    let Some((&b, body)) = data.split_first() else { return };
    let p = pick(b);
    let Ok((text, _)) = decode(body.to_vec(), p.policy) else { return };
    let (doc, verdicts, out) = clean(text, &p);
    let _ = doc.render(&verdicts, Emit::Original);
    fused_split_agrees(&doc, &p);

    let mut seen = std::collections::HashSet::new();
    let mut kept: Vec<Digest> = Vec::new();
    for (k, v) in doc.keys.iter().zip(&verdicts) {
        let first = seen.insert(k.digest);
        if first {
            assert_eq!(*v, Verdict::Keep, "first occurrence of a key not kept");
        } else if k.chars >= p.rules.min_chars_within.max(1) {
            assert!(!v.is_kept(), "a repeat of a long key was kept");
        }
        if v.is_kept() {
            kept.push(k.digest);
        }
    }

    // Read back with the same options: the output must split the same way,
    // `auto` included (see `auto_split_reads_clean_output_back_the_same`).
    let (again, again_verdicts, out2) = clean(out.clone(), &p);
    let again_keys: Vec<Digest> = again.keys.iter().map(|k| k.digest).collect();
    assert!(again_verdicts.iter().all(|v| v.is_kept()), "cleaning the output dropped something\n{out:?}");
    assert_eq!(again_keys, kept, "output paragraphs are not the kept ones in order\n{out:?}");
    assert_eq!(out2, out, "cleaning is not idempotent");
}

/// The text as a JSON Lines record's string (escaped as serde writes it)
/// goes through the fused pass: its split is the document's.
fn fused_split_agrees(doc: &Document, p: &Picked) {
    let mut line = br#"{"text":""#.to_vec();
    for c in doc.original.chars() {
        match c {
            '"' => line.extend_from_slice(br#"\""#),
            '\\' => line.extend_from_slice(br"\\"),
            '\n' => line.extend_from_slice(br"\n"),
            '\r' => line.extend_from_slice(br"\r"),
            '\t' => line.extend_from_slice(br"\t"),
            c if c < ' ' => line.extend_from_slice(format!("\\u{:04x}", u32::from(c)).as_bytes()),
            c => line.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes()),
        }
    }
    line.extend_from_slice(br#""}"#);
    let mut lines = newsdedup::split::LineBuilder::new(line.len(), p.text.split, p.text.quotes);
    let parsed = newsdedup::jsonl::Record::parse_fed(line, "text", EncodingPolicy::Strict, &mut lines);
    let (_, text, fed, _) = parsed.expect("a JSON string of valid text is a record");
    assert_eq!(text, doc.original);
    assert!(fed, "the one-pass scan decides a string serde wrote");
    assert_eq!(lines.finish(&text), doc.split, "the fused split differs from split()");
}

/// Pieces that exercise the normaliser, splitter and decoder.
#[cfg(test)]
const PIECES: &[&[u8]] = &[
    b"The minister said the budget would balance.",
    b"he said.",
    b"Reuters",
    b"\n",
    b"\n\n",
    b"\r\n",
    b"\r",
    b" ",
    b"\t",
    b"  ",
    "\u{a0}".as_bytes(),
    "\u{201C}quoted\u{201D}".as_bytes(),
    "\u{2018}x\u{2019}".as_bytes(),
    "\u{ab}guillemets\u{bb}".as_bytes(),
    "\u{2028}".as_bytes(),
    "\u{2029}".as_bytes(),
    "\u{85}".as_bytes(),
    "\u{200b}".as_bytes(),
    "\u{feff}".as_bytes(),
    "\u{fb01}ne".as_bytes(),
    "e\u{301}".as_bytes(),
    "\u{3000}".as_bytes(),
    b"\xA3600m",
    b"\x93Hi\x94",
    b"\xC3",
    b"\xFF\xFE",
    b"4,000 fighters!",
    b"...",
    b"- ",
    b"    indented",
    b"\x0b",
    b"\x0c",
    b"Mr.",
    b"?",
];

#[cfg(test)]
fn generate(rng: &mut u64, out: &mut Vec<u8>) {
    let mut next = || {
        *rng ^= *rng << 13;
        *rng ^= *rng >> 7;
        *rng ^= *rng << 17;
        *rng
    };
    out.clear();
    out.push(next() as u8);
    let n = next() % 60;
    for _ in 0..n {
        let r = next();
        match r % 10 {
            // Repeat an earlier stretch: duplicates are what matters here.
            0 | 1 if out.len() > 2 => {
                let a = 1 + (next() as usize) % (out.len() - 1);
                let len = (next() as usize % 80).min(out.len() - a);
                let copy = out[a..a + len].to_vec();
                out.extend_from_slice(&copy);
            }
            2 => out.push(next() as u8),
            3 if out.len() > 1 => {
                let i = 1 + (next() as usize) % (out.len() - 1);
                out[i] ^= 1 << (next() % 8);
            }
            _ => out.extend_from_slice(PIECES[(r >> 8) as usize % PIECES.len()]),
        }
    }
}

/// The panic message of `check(input)`, if it panics.
#[cfg(test)]
fn failure(input: &[u8]) -> Option<String> {
    let caught = std::panic::catch_unwind(|| check(input)).err()?;
    let msg = caught.downcast_ref::<String>().cloned();
    Some(msg.or_else(|| caught.downcast_ref::<&str>().map(|s| s.to_string())).unwrap_or_default())
}

/// Removes chunks (halves down to single bytes) while the input still fails.
#[cfg(test)]
fn shrink(mut input: Vec<u8>) -> Vec<u8> {
    let mut chunk = input.len() / 2;
    while chunk > 0 {
        let mut i = 1;
        while i + chunk <= input.len() {
            let mut smaller = input.clone();
            smaller.drain(i..i + chunk);
            if failure(&smaller).is_some() {
                input = smaller;
            } else {
                i += chunk;
            }
        }
        chunk /= 2;
    }
    input
}

/// The stable stand-in for `cargo fuzz run clean`: seeded inputs through
/// [`check`]; a failing input is shrunk before it is shown.
/// `FUZZ_SMOKE_RUNS` sets the count (default 20,000).
#[test]
fn fuzz_smoke_clean_invariants() {
    let runs: u64 = std::env::var("FUZZ_SMOKE_RUNS").ok().and_then(|s| s.parse().ok()).unwrap_or(20_000);
    let mut rng = 0x2545_F491_4F6C_DD1D_u64;
    let mut input = Vec::new();
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    for i in 0..runs {
        generate(&mut rng, &mut input);
        if failure(&input).is_some() {
            let small = shrink(input.clone());
            let msg = failure(&small).unwrap_or_default();
            std::panic::set_hook(hook);
            panic!("input #{i} fails; shrunk to {small:?} = {:?}:\n{msg}", String::from_utf8_lossy(&small));
        }
    }
    std::panic::set_hook(hook);
}

/// `auto` decides from the lines; the clean output's lines must split the
/// same way (the renderer puts a blank line between kept paragraphs only
/// where they would otherwise read as one).
#[test]
fn auto_split_reads_clean_output_back_the_same() {
    let p = pick(0);
    let input = "Breaking news\nIt rained all day in the city.\nIt rained all day in the city.\n\
                 It rained all day in the city.\n";
    let (_, _, out) = clean(input.to_owned(), &p);
    // "Breaking news" is shorter than half the width: never continued, so
    // the kept lines are written as they were, and read back the same.
    assert_eq!(out, "Breaking news\nIt rained all day in the city.\n");
    let (_, _, again) = clean(out.clone(), &p);
    assert_eq!(again, out);
}
