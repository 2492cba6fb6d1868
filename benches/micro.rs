//! Micro-benchmarks of the per-paragraph hot path: normalise, split, key +
//! SHA-256. Quick by design (each benchmark stops after half a second):
//!
//! ```text
//! cargo bench --bench micro
//! ```
//!
//! Inputs are the `doubled-article` fixture (plain ASCII news text) and
//! typographic variants of it: curly quotes and NBSP, CRLF, hard-wrapped wire
//! copy, decomposed (NFD) accents; and the same text in other scripts, its
//! letters replaced one for one by Cyrillic letters and by CJK ideographs
//! (what a text in those scripts asks of the normaliser and the keyer: every
//! letter a character outside ASCII). Throughput is in input bytes.

use divan::counter::BytesCount;
use divan::{Bencher, black_box};
use newsdedup::document::{Document, TextOptions};
use newsdedup::key::{Digest, KeyMode, Keyer, digest_each};
use newsdedup::normalize::{QuoteMode, normalize, normalize_line};
use newsdedup::split::{SplitMode, split};

const ARTICLE: &str = include_str!("../fixtures/doubled-article/input/doubled-article.txt");

fn main() {
    divan::main();
}

/// The fixture with the typography of a web outlet: curly quotes, NBSP after
/// full stops, CRLF.
fn typographic() -> String {
    let mut out = String::new();
    let mut open = true;
    for c in ARTICLE.chars() {
        match c {
            '"' => {
                out.push(if open { '\u{201C}' } else { '\u{201D}' });
                open = !open;
            }
            '\'' => out.push('\u{2019}'),
            '\n' => out.push_str("\r\n"),
            _ => out.push(c),
        }
    }
    out.replace(". ", ".\u{00A0} ")
}

/// The fixture hard-wrapped at 64 columns, paragraphs marked by a 4-space
/// indent (Reuters wire copy).
fn wrapped() -> String {
    let mut out = String::new();
    for para in ARTICLE.lines() {
        let mut col = 0;
        out.push_str("    ");
        for word in para.split(' ') {
            if col > 0 && col + word.len() > 64 {
                out.push('\n');
                col = 0;
            } else if col > 0 {
                out.push(' ');
            }
            out.push_str(word);
            col += word.len() + 1;
        }
        out.push('\n');
    }
    out
}

/// The fixture with each ASCII letter replaced by the letter of `alphabet`
/// at its place (a–z, then A–Z).
fn transliterated(alphabet: &[char; 52]) -> String {
    ARTICLE
        .chars()
        .map(|c| match c {
            'a'..='z' => alphabet[c as usize - 'a' as usize],
            'A'..='Z' => alphabet[26 + c as usize - 'A' as usize],
            _ => c,
        })
        .collect()
}

/// The first twenty-six letters of the Russian alphabet without Ё (U+0430 on,
/// U+0410 on for the capitals) for a–z and A–Z.
fn cyrillic() -> String {
    let lower: Vec<char> = ('\u{430}'..='\u{44F}').collect();
    let upper: Vec<char> = ('\u{410}'..='\u{42F}').collect();
    let alphabet: Vec<char> = lower[..26].iter().chain(&upper[..26]).copied().collect();
    transliterated(&alphabet.try_into().unwrap_or(['\u{416}'; 52]))
}

/// Fifty-two CJK ideographs, every seventh from U+4E00.
fn cjk() -> String {
    let alphabet: Vec<char> = (0..52).filter_map(|i| char::from_u32(0x4E00 + 7 * i)).collect();
    transliterated(&alphabet.try_into().unwrap_or(['\u{4E2D}'; 52]))
}

fn inputs() -> [(&'static str, String); 6] {
    [
        ("ascii", ARTICLE.to_owned()),
        ("typographic", typographic()),
        ("wrapped", wrapped()),
        ("nfd", ARTICLE.replace('e', "e\u{0301}")),
        ("cyrillic", cyrillic()),
        ("cjk", cjk()),
    ]
}

fn input(name: &str) -> String {
    inputs().into_iter().find(|(n, _)| *n == name).map(|(_, t)| t).unwrap_or_default()
}

const KINDS: [&str; 6] = ["ascii", "typographic", "wrapped", "nfd", "cyrillic", "cjk"];

/// `normalize` over a whole document.
#[divan::bench(args = KINDS, max_time = 0.5)]
fn normalize_document(bencher: Bencher, kind: &str) {
    let text = input(kind);
    bencher.counter(BytesCount::of_str(&text)).bench(|| normalize(black_box(&text), QuoteMode::Fold));
}

/// `normalize_line` on one paragraph-sized line.
#[divan::bench(args = KINDS, max_time = 0.5)]
fn normalize_one_line(bencher: Bencher, kind: &str) {
    let text = input(kind);
    let line = text.lines().nth(1).unwrap_or_default().trim_end_matches('\r').to_owned();
    bencher.counter(BytesCount::of_str(&line)).bench(|| normalize_line(black_box(&line), QuoteMode::Fold));
}

/// `split` (auto mode): lines, normalisation, paragraph assembly.
#[divan::bench(args = KINDS, max_time = 0.5)]
fn split_document(bencher: Bencher, kind: &str) {
    let text = input(kind);
    bencher.counter(BytesCount::of_str(&text)).bench(|| split(black_box(&text), SplitMode::Auto, QuoteMode::Fold));
}

/// Key (NFKC quick check) + SHA-256 of every paragraph of a split document.
#[divan::bench(args = KINDS, max_time = 0.5)]
fn key_and_hash_paragraphs(bencher: Bencher, kind: &str) {
    let text = input(kind);
    let s = split(&text, SplitMode::Auto, QuoteMode::Fold);
    let mut keyer = Keyer::new(KeyMode::Exact);
    bencher.counter(BytesCount::of_str(&s.text)).bench_local(|| {
        for p in s.paragraphs() {
            black_box(keyer.keyed(black_box(&p)));
        }
    });
}

/// Raw SHA-256 (sha2 picks SHA-NI at run time where the CPU has it).
#[divan::bench(args = [64, 256, 4096], max_time = 0.5)]
fn sha256(bencher: Bencher, len: usize) {
    let bytes = vec![b'x'; len];
    bencher.counter(BytesCount::new(len)).bench(|| Digest::of(black_box(&bytes)));
}

/// SHA-256 of ten paragraphs of `len` ± 50% bytes (a news document's), one
/// at a time (`false`) or in the interleaved lanes of `key::digest_each`
/// (`true`): what the lanes gain on this processor (benches/JSONL.md,
/// twenty-sixth pass).
#[divan::bench(args = [(230, false), (230, true), (1000, false), (1000, true)], max_time = 0.5)]
fn sha256_ten_paragraphs(bencher: Bencher, (len, lanes): (usize, bool)) {
    let lens: Vec<usize> = (0..10).map(|i| len / 2 + (i * 7919) % (len + 1)).collect();
    let bytes = vec![b'x'; lens.iter().sum()];
    let msgs = cut(&bytes, &lens);
    bencher.counter(BytesCount::new(bytes.len())).bench_local(|| {
        let mut acc = 0u8;
        if lanes {
            digest_each(msgs.len(), |i| black_box(msgs[i]), |_, d| acc ^= d.0[0]);
        } else {
            for m in &msgs {
                acc ^= Digest::of(black_box(m)).0[0];
            }
        }
        acc
    });
}

/// `bytes` cut into consecutive messages of `lens` bytes.
fn cut<'a>(bytes: &'a [u8], lens: &[usize]) -> Vec<&'a [u8]> {
    let mut at = 0;
    lens.iter()
        .map(|n| {
            at += n;
            &bytes[at - n..at]
        })
        .collect()
}

/// SHA-256 of eighty paragraphs in the bench corpus's mix of lengths (eight
/// news documents', as the pipeline keys them together) in the lanes of `key::digest_each`:
/// run with `NEWSDEDUP_SHA_LANES=wide` or `=ni` to compare AVX-512's sixteen
/// lanes with the SHA extensions' four (benches/JSONL.md, thirty-second pass).
#[divan::bench(max_time = 0.5)]
fn sha256_eighty_paragraphs(bencher: Bencher) {
    // The bench corpus's mix: a quarter of one block, a median of 3-4.
    let lens: Vec<usize> = (0..80).map(|i| [30, 90, 160, 220, 290, 350, 420, 40, 500, 180][i % 10] + i % 7).collect();
    let bytes = vec![b'x'; lens.iter().sum()];
    let msgs = cut(&bytes, &lens);
    bencher.counter(BytesCount::new(bytes.len())).bench_local(|| {
        let mut acc = 0u8;
        digest_each(msgs.len(), |i| black_box(msgs[i]), |_, d| acc ^= d.0[0]);
        acc
    });
}

/// The whole per-document preparation: split + keys + document key.
#[divan::bench(args = KINDS, max_time = 0.5)]
fn prepare_document(bencher: Bencher, kind: &str) {
    let text = input(kind);
    bencher
        .counter(BytesCount::of_str(&text))
        .with_inputs(|| text.clone())
        .bench_values(|t| Document::prepare(t, &TextOptions::default()));
}
