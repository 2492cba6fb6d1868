//! A bare JSON Lines → JSON Lines dedup by SHA-256, the yardstick of
//! issue 18's JSONL rows (`benches/bench.sh` runs it beside newsdedup):
//! `cargo run --release --example jsonl_bare -- FILE [THREADS] > OUT`.
//!
//! What any tool that drops repeated lines of a JSONL corpus's text by their
//! SHA-256 must do, done plainly, and nothing more: read the file, cut it
//! into records, find the `"text"` field's string, unescape it, cut it at
//! its line breaks,
//! hash every non-blank line with SHA-256 (in parallel, a batch of records
//! at a time), keep the first occurrence of each digest in file order, and
//! write each record, its text escaped again with the repeated lines left
//! out (a record with nothing dropped is written as read). No normalisation,
//! no paragraphs of several lines, no context rules, no report, no checks
//! beyond what the bench file needs (`"text":` comes once, its value the
//! last field; a lone surrogate escape becomes U+FFFD; a file that cannot be
//! opened is named in the message, exit 1); blank lines are
//! not written back in a record that lost a line. The batches are pipelined
//! as newsdedup's were until its fifty-third session: one is prepared while
//! the one before is decided and written and the next one read, a
//! `rayon::join` per batch (newsdedup's batches now go through a pipe with
//! no barrier per batch, src/pipeline/shard/pipe.rs; this yardstick is kept
//! as it was, so that its figures compare across sessions); the allocator is
//! newsdedup's (mimalloc, with the options `newsdedup::allocator::tune` sets).
//!
//! It is not newsdedup and not a floor (its seen-set is `std`'s, without
//! prefetching): it says how far newsdedup's JSONL path is from a plain
//! pipeline on the same machine in the same minutes, which the host's load
//! moves as it moves newsdedup (benches/JSONL.md, twentieth pass).

use std::collections::HashSet;
use std::hash::{BuildHasherDefault, Hasher};
use std::io::{Read, Write};
use std::ops::Range;

use rayon::prelude::*;
use sha2::{Digest, Sha256};

/// The allocator newsdedup runs with.
#[global_allocator]
static GLOBAL: newsdedup::allocator::Mimalloc = newsdedup::allocator::Mimalloc;

/// The read size: a batch is the whole records of one read.
const CHUNK: usize = 1 << 20;

/// A digest prefix is already uniform: its first 64 bits are its hash.
#[derive(Default)]
struct Prefix(u64);

impl Hasher for Prefix {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        self.0 = u64::from_le_bytes(bytes[..8].try_into().unwrap());
    }
}

/// A record prepared in parallel: where it stands in its batch, where its
/// text's string stands in it (without the quotes), the text decoded, its
/// non-blank lines and their digests.
struct Prepared {
    record: Range<usize>,
    string: Range<usize>,
    text: String,
    lines: Vec<(Range<usize>, u128)>,
}

type Seen = HashSet<u128, BuildHasherDefault<Prefix>>;

fn main() {
    newsdedup::allocator::tune();
    let args: Vec<String> = std::env::args().collect();
    let path = args.get(1).expect("usage: jsonl_bare FILE [THREADS]");
    let threads = args.get(2).map_or(2, |t| t.parse().expect("THREADS: a number"));
    let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
    let mut file = std::fs::File::open(path).unwrap_or_else(|e| {
        eprintln!("jsonl_bare: {path}: {e}");
        std::process::exit(1)
    });
    let stdout = std::io::stdout();
    let mut seen = Seen::default();
    let mut out = Vec::with_capacity(2 * CHUNK);
    // A batch is prepared while the one before is decided and written and
    // the next one read (on the pool's threads, all three).
    let (mut chunk, mut left, mut done) = read_batch(&mut file, Vec::new());
    let mut pending: Option<(Vec<u8>, Vec<Prepared>)> = None;
    pool.install(|| {
        loop {
            let (prepared, next) = rayon::join(
                || records(&chunk).into_par_iter().map(|r| prepare(&chunk, r)).collect(),
                || {
                    if let Some((c, p)) = &pending {
                        decide(c, p, &mut seen, &mut out);
                        stdout.lock().write_all(&out).unwrap();
                    }
                    (!done).then(|| read_batch(&mut file, std::mem::take(&mut left)))
                },
            );
            pending = Some((std::mem::take(&mut chunk), prepared));
            let Some(next) = next else {
                let (c, p) = pending.take().unwrap();
                decide(&c, &p, &mut seen, &mut out);
                stdout.lock().write_all(&out).unwrap();
                return;
            };
            (chunk, left, done) = next;
        }
    });
}

/// The next batch: whole records read after `left` (the last read's
/// unfinished record), what is left of this read, and whether the file
/// ended.
fn read_batch(file: &mut std::fs::File, mut chunk: Vec<u8>) -> (Vec<u8>, Vec<u8>, bool) {
    chunk.reserve(CHUNK);
    let n = file.take(CHUNK as u64).read_to_end(&mut chunk).unwrap();
    let end = if n == 0 { chunk.len() } else { memchr::memrchr(b'\n', &chunk).map_or(0, |i| i + 1) };
    let left = chunk[end..].to_vec();
    chunk.truncate(end);
    (chunk, left, n == 0)
}

/// Where the records of a batch stand in it.
fn records(chunk: &[u8]) -> Vec<Range<usize>> {
    let mut start = 0;
    let mut records = Vec::new();
    for end in memchr::memchr_iter(b'\n', chunk).chain([chunk.len()]) {
        if end > start {
            records.push(start..end);
        }
        start = end + 1;
    }
    records
}

/// A batch's records decided in order, written into `out` (cleared first).
fn decide(chunk: &[u8], prepared: &[Prepared], seen: &mut Seen, out: &mut Vec<u8>) {
    out.clear();
    let mut kept = Vec::new();
    for p in prepared {
        let line = &chunk[p.record.clone()];
        kept.clear();
        kept.extend(p.lines.iter().map(|(_, d)| seen.insert(*d)));
        if kept.iter().all(|&k| k) {
            out.extend_from_slice(line);
        } else {
            out.extend_from_slice(&line[..p.string.start]);
            let mut first = true;
            for ((r, _), _) in p.lines.iter().zip(&kept).filter(|(_, k)| **k) {
                if !first {
                    out.extend_from_slice(b"\\n");
                }
                first = false;
                escape(&p.text[r.clone()], out);
            }
            out.extend_from_slice(&line[p.string.end..]);
        }
        out.push(b'\n');
    }
}

/// Finds, decodes, cuts and hashes the text of record `chunk[record]`.
fn prepare(chunk: &[u8], record: Range<usize>) -> Prepared {
    let line = &chunk[record.clone()];
    let key = memchr::memmem::find(line, b"\"text\":").expect("a \"text\" field");
    let open = key + 7 + memchr::memchr(b'"', &line[key + 7..]).expect("a string value");
    let (text, close) = unescape(line, open + 1);
    let mut lines = Vec::new();
    let mut start = 0;
    for end in memchr::memchr_iter(b'\n', text.as_bytes()).chain([text.len()]) {
        let l = &text[start..end];
        if !l.trim().is_empty() {
            let d = Sha256::digest(l.as_bytes());
            lines.push((start..end, u128::from_le_bytes(d[..16].try_into().unwrap())));
        }
        start = end + 1;
    }
    Prepared { record, string: open + 1..close, text, lines }
}

/// The JSON string whose content starts at `line[from]`, decoded, and
/// where its closing quote is.
fn unescape(line: &[u8], from: usize) -> (String, usize) {
    let mut out = Vec::with_capacity(line.len() - from);
    let mut i = from;
    loop {
        let stop = i + memchr::memchr2(b'"', b'\\', &line[i..]).expect("a closed string");
        out.extend_from_slice(&line[i..stop]);
        if line[stop] == b'"' {
            return (String::from_utf8(out).expect("UTF-8"), stop);
        }
        let (c, len) = match line[stop + 1] {
            b'n' => ('\n', 2),
            b'r' => ('\r', 2),
            b't' => ('\t', 2),
            b'b' => ('\u{8}', 2),
            b'f' => ('\u{c}', 2),
            b'u' => {
                let unit =
                    |at: usize| u32::from_str_radix(std::str::from_utf8(&line[at..at + 4]).unwrap(), 16).unwrap();
                match unit(stop + 2) {
                    // A surrogate pair: two escapes, one character.
                    hi @ 0xD800..0xDC00 if line.get(stop + 6..stop + 8) == Some(b"\\u") => {
                        let lo = unit(stop + 8);
                        (char::from_u32(0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00)).unwrap(), 12)
                    }
                    u => (char::from_u32(u).unwrap_or('\u{fffd}'), 6),
                }
            }
            c => (char::from(c), 2),
        };
        out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes());
        i = stop + len;
    }
}

/// `s` escaped as inside a JSON string; eight bytes at a time to the next
/// byte to escape (a quote, a backslash, a control character).
fn escape(s: &str, out: &mut Vec<u8>) {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let zero = |x: u64| x.wrapping_sub(ONES) & !x & HIGH;
    let special =
        |x: u64| zero(x ^ (ONES * 0x22)) | zero(x ^ (ONES * 0x5c)) | (x.wrapping_sub(ONES * 0x20) & !x & HIGH);
    let b = s.as_bytes();
    let (mut run, mut i) = (0, 0);
    while i < b.len() {
        if let Some(w) = b.get(i..i + 8)
            && special(u64::from_le_bytes(w.try_into().unwrap())) == 0
        {
            i += 8;
            continue;
        }
        let c = b[i];
        if !matches!(c, b'"' | b'\\' | 0..0x20) {
            i += 1;
            continue;
        }
        out.extend_from_slice(&b[run..i]);
        match c {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            _ => out.extend_from_slice(format!("\\u{c:04x}").as_bytes()),
        }
        i += 1;
        run = i;
    }
    out.extend_from_slice(&b[run..]);
}
