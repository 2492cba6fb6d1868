//! JSON Lines records and compressed streams.
//!
//! A record is one line holding a JSON object (the dolma / datatrove schema:
//! `id`, `text`, `source`, `metadata`, ...). The text field is replaced by
//! the clean text (or, with `--annotate`, left alone and a field added);
//! every other field is passed through byte for byte, in its original order
//! (only the whitespace between top-level tokens is not kept).
//!
//! Compression is chosen by the file name: `.gz` (gzip) and `.zst`
//! (zstd), read and written as streams; a shard is never loaded whole. A
//! gzip file may hold several members and end with zero padding (both are
//! accepted, as `gzip -dc` accepts them); any other trailing byte is an
//! error, reported after every complete line before it was read.
//!
//! Bytes are kept as read: a line's fields other than the text field are
//! copied from the raw line, invalid UTF-8 included; only the text field is
//! decoded (by the [`EncodingPolicy`]).

use std::borrow::Cow;
use std::fmt;
use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, Read, Write};
use std::ops::Range;
use std::path::Path;

use serde::Deserialize;

use crate::read::{EncodingPolicy, decode};

mod decode;
mod frames;
mod lines;
mod misfit;
mod scan;
mod surrogate;

pub use decode::TextSink;
pub(crate) use decode::{feed_bytes, feed_text};
use frames::{Gzip, Zstd};
pub use lines::{LineReader, SharedLine};
pub use misfit::{Misfit, field_names, looks_like_jsonl};
pub(crate) use scan::utf8;
use serde::de::{MapAccess, Visitor};
use serde_json::value::RawValue;
use surrogate::lone_surrogate;

/// The format of an input file.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Format {
    /// By file name: JSONL for `.jsonl`, `.ndjson`, `.json` (optionally
    /// `.gz`/`.zst`), text otherwise; standard input and a file named
    /// otherwise that is the whole input: by content ([`looks_like_jsonl`]).
    #[default]
    Auto,
    /// One document per file.
    Text,
    /// One document per line.
    Jsonl,
    /// One document per CSV row (see [`crate::formats::csv`]).
    Csv,
    /// One document per row of a Parquet file.
    Parquet,
}

/// Stream compression.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Compression {
    /// None.
    #[default]
    None,
    /// gzip (flate2).
    Gzip,
    /// zstd.
    Zstd,
}

impl Compression {
    /// From a file name's last extension.
    pub fn of_path(path: &Path) -> Compression {
        match path.extension().and_then(|e| e.to_str()) {
            Some(e) if e.eq_ignore_ascii_case("gz") => Compression::Gzip,
            Some(e) if e.eq_ignore_ascii_case("zst") => Compression::Zstd,
            _ => Compression::None,
        }
    }
}

/// True when a file name says JSON Lines: `.jsonl`, `.ndjson` or `.json`
/// (dolma's shards are `*.json.gz`), optionally followed by `.gz` or `.zst`.
pub fn is_jsonl_name(path: &Path) -> bool {
    let name = path.file_name().map(|n| n.to_string_lossy().to_lowercase()).unwrap_or_default();
    let base = name.strip_suffix(".gz").or_else(|| name.strip_suffix(".zst")).unwrap_or(&name);
    base.ends_with(".jsonl") || base.ends_with(".ndjson") || base.ends_with(".json")
}

/// The first line of a (possibly compressed) file, at most `limit` bytes;
/// empty when the file does not start with `{` (after a byte order mark and
/// whitespace), so a text file is not read further than its first buffer.
pub fn first_line(path: &Path, limit: u64) -> io::Result<Vec<u8>> {
    let mut reader = open(path)?;
    let head = reader.fill_buf()?;
    let head = head.strip_prefix("\u{FEFF}".as_bytes()).unwrap_or(head);
    if head.trim_ascii_start().first() != Some(&b'{') {
        return Ok(Vec::new());
    }
    let mut line = Vec::new();
    reader.take(limit).read_until(b'\n', &mut line)?;
    Ok(line)
}

/// A buffered, decompressing reader.
pub fn reader(inner: Box<dyn Read + Send>, c: Compression) -> io::Result<Box<dyn BufRead + Send>> {
    const BUF: usize = 1 << 20;
    Ok(match c {
        Compression::None => Box::new(BufReader::with_capacity(BUF, inner)),
        Compression::Gzip => Box::new(BufReader::with_capacity(BUF, Gzip::new(BufReader::new(inner)))),
        Compression::Zstd => Box::new(BufReader::with_capacity(BUF, Zstd::new(BufReader::new(inner))?)),
    })
}

/// Opens a (possibly compressed) file for reading.
pub fn open(path: &Path) -> io::Result<Box<dyn BufRead + Send>> {
    reader(Box::new(File::open(path)?), Compression::of_path(path))
}

/// The buffer of a [`Sink`], in bytes (see [`Sink::new`]).
const SINK_BUFFER: usize = 64 << 10;

/// A compressing writer; call [`Sink::finish`] to complete the stream.
pub enum Sink {
    /// Plain.
    Plain(BufWriter<Box<dyn Write + Send>>),
    /// gzip.
    Gzip(flate2::write::GzEncoder<BufWriter<Box<dyn Write + Send>>>),
    /// zstd.
    Zstd(zstd::Encoder<'static, BufWriter<Box<dyn Write + Send>>>),
}

impl Sink {
    /// Wraps `inner` with compression `c`.
    ///
    /// The buffer is small on purpose: `BufWriter` hands a write at least
    /// its capacity long straight to `inner`, and the rendered pieces of 64
    /// records and more (~70 KB of news) went through a 1 MiB one as a copy.
    pub fn new(inner: Box<dyn Write + Send>, c: Compression) -> io::Result<Sink> {
        let buf = BufWriter::with_capacity(SINK_BUFFER, inner);
        Ok(match c {
            Compression::None => Sink::Plain(buf),
            Compression::Gzip => Sink::Gzip(flate2::write::GzEncoder::new(buf, flate2::Compression::default())),
            Compression::Zstd => Sink::Zstd(zstd::Encoder::new(buf, 3)?),
        })
    }

    /// Completes the compressed stream and flushes; returns the inner writer.
    pub fn finish(self) -> io::Result<Box<dyn Write + Send>> {
        let mut buf = match self {
            Sink::Plain(w) => w,
            Sink::Gzip(w) => w.finish()?,
            Sink::Zstd(w) => w.finish()?,
        };
        buf.flush()?;
        buf.into_inner().map_err(|e| e.into_error())
    }
}

impl Write for Sink {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        match self {
            Sink::Plain(w) => w.write(b),
            Sink::Gzip(w) => w.write(b),
            Sink::Zstd(w) => w.write(b),
        }
    }
    fn write_all(&mut self, b: &[u8]) -> io::Result<()> {
        match self {
            Sink::Plain(w) => w.write_all(b),
            Sink::Gzip(w) => w.write_all(b),
            Sink::Zstd(w) => w.write_all(b),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Sink::Plain(w) => w.flush(),
            Sink::Gzip(w) => w.flush(),
            Sink::Zstd(w) => w.flush(),
        }
    }
}

/// A parsed record: the object's fields in order, each value kept as its
/// raw JSON text (a byte range of the line as read).
#[derive(Debug)]
pub struct Record {
    line: SharedLine,
    fields: Vec<(Name, Range<usize>)>,
    text_at: usize,
}

/// A field's name: where it stands in the line when it holds no escape
/// (the name is those bytes, checked UTF-8: no allocation per field), or
/// decoded (the serde path, which also takes escaped names).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Name {
    At(Range<usize>),
    Decoded(String),
}

/// Why a line is not a usable record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordError {
    /// Not a JSON object (message from the parser, with column).
    Json(String),
    /// No field of that name.
    MissingField(String),
    /// The field is not a string.
    NotAString(String),
    /// The field occurs more than once (which one to clean is ambiguous).
    DuplicateField(String),
    /// The field is a string literal that does not decode (a lone surrogate
    /// escape such as `"\ud800"`, a bad escape): field name, parser message.
    BadString(String, String),
    /// Invalid UTF-8 that the encoding policy refuses, or in a field name
    /// (names are re-serialised, so they must be text): byte offset in the line.
    Encoding(usize),
    /// CSV: a row with another number of fields than the header.
    Columns {
        /// Fields in the row.
        found: usize,
        /// Fields in the header.
        expected: usize,
    },
}

impl fmt::Display for RecordError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecordError::Json(m) => write!(f, "not a JSON object: {m}"),
            RecordError::MissingField(n) => write!(f, "no \"{n}\" field"),
            RecordError::NotAString(n) => write!(f, "field \"{n}\" is not a string"),
            RecordError::DuplicateField(n) => write!(f, "field \"{n}\" occurs more than once"),
            RecordError::BadString(n, m) => write!(f, "field \"{n}\" is not a valid JSON string: {m}"),
            RecordError::Encoding(at) => write!(f, "invalid UTF-8 at byte offset {at} of the line"),
            RecordError::Columns { found, expected } => {
                write!(f, "{found} fields where the header has {expected}")
            }
        }
    }
}

struct Fields<'a>(Vec<(Cow<'a, str>, &'a RawValue)>);

impl<'de> Deserialize<'de> for Fields<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Fields<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Fields<'de>, A::Error> {
                let mut out = Vec::new();
                while let Some((k, v)) = map.next_entry::<Cow<'de, str>, &'de RawValue>()? {
                    out.push((k, v));
                }
                Ok(Fields(out))
            }
        }
        d.deserialize_map(V)
    }
}

/// A parsed line before the text field is decoded.
#[allow(clippy::type_complexity)]
type Parsed = (Vec<(Name, Range<usize>)>, usize);

impl Record {
    /// Parses one line (without its line break); returns the record and the
    /// JSON-decoded text of `text_field`. On error the line is handed back.
    pub fn parse(line: String, text_field: &str) -> Result<(Record, String), (String, RecordError)> {
        match Record::parse_bytes(line.into_bytes(), text_field, EncodingPolicy::Strict) {
            Ok((record, text, _)) => Ok((record, text)),
            // The bytes came from a `String`: they are UTF-8.
            Err((raw, e)) => Err((String::from_utf8_lossy(&raw).into_owned(), e)),
        }
    }

    /// Parses one line as read (a UTF-8 byte order mark, a CR before the
    /// line break and invalid UTF-8 allowed); returns the record, the
    /// decoded text of `text_field` and whether invalid UTF-8 in it was
    /// repaired by `policy`. Invalid UTF-8 elsewhere in a value is kept as it
    /// is; in a field name, or anywhere under the strict policy, it is an
    /// error. On error the line is handed back unchanged.
    pub fn parse_bytes(
        line: Vec<u8>,
        text_field: &str,
        policy: EncodingPolicy,
    ) -> Result<(Record, String, bool), (Vec<u8>, RecordError)> {
        match Self::parse_fed(line, text_field, policy, &mut ()) {
            Ok((record, text, _, repaired)) => Ok((record, text, repaired)),
            Err((line, e)) => Err((line.into_vec(), e)),
        }
    }

    #[allow(clippy::type_complexity)]
    fn parse_at<S: TextSink>(
        line: &[u8],
        start: usize,
        text_field: &str,
        policy: EncodingPolicy,
        sink: &mut S,
    ) -> Result<(Vec<(Name, Range<usize>)>, usize, String, bool, bool), RecordError> {
        // The common case without serde's pass over the text (src/jsonl/scan.rs).
        if let Some((fields, text_at, text)) = scan::scan(line, start, text_field, sink) {
            return Ok((fields, text_at, text, true, false));
        }
        let body = &line[start..];
        // Invalid bytes become `?` (same length) for the parser, so that value
        // ranges index the raw line; they can only be valid inside strings.
        let mut invalid = Vec::new();
        let parsed = match std::str::from_utf8(body) {
            Ok(text) => Self::parse_fields(text, text_field)?,
            Err(e) => {
                if policy == EncodingPolicy::Strict {
                    return Err(RecordError::Encoding(start + e.valid_up_to()));
                }
                let mut masked = Vec::with_capacity(body.len());
                for chunk in body.utf8_chunks() {
                    masked.extend_from_slice(chunk.valid().as_bytes());
                    if !chunk.invalid().is_empty() {
                        invalid.push(masked.len());
                    }
                    masked.resize(masked.len() + chunk.invalid().len(), b'?');
                }
                let masked = String::from_utf8(masked).map_err(|_| RecordError::Encoding(start))?;
                Self::parse_fields(&masked, text_field)?
            }
        };
        let (mut fields, text_at) = parsed;
        for (_, r) in &mut fields {
            *r = r.start + start..r.end + start;
        }
        let inside = |at: usize| fields.iter().any(|(_, r)| r.contains(&(at + start)));
        if let Some(&at) = invalid.iter().find(|&&at| !inside(at)) {
            return Err(RecordError::Encoding(start + at));
        }
        let raw = &line[fields[text_at].1.clone()];
        let (literal, repaired) = match std::str::from_utf8(raw) {
            Ok(t) => (Cow::Borrowed(t), false),
            Err(_) => match decode(raw.to_vec(), policy) {
                Ok((t, _)) => (Cow::Owned(t), true),
                Err(e) => return Err(RecordError::BadString(text_field.to_owned(), e.to_string())),
            },
        };
        let text = Self::decode_string(&literal, text_field)?;
        Ok((fields, text_at, text, false, repaired))
    }

    fn parse_fields(line: &str, text_field: &str) -> Result<Parsed, RecordError> {
        let Fields(raw) = serde_json::from_str(line).map_err(|e| {
            // serde_json says "at line 1 column N"; the line is ours to name.
            let msg = e.to_string();
            let msg = msg.split(" at line ").next().unwrap_or(&msg).to_owned();
            RecordError::Json(format!("{msg} (column {})", e.column()))
        })?;
        let base = line.as_ptr() as usize;
        let fields: Vec<(Name, Range<usize>)> = raw
            .iter()
            .map(|(k, v)| {
                // RawValue borrows from `line`: its text is a sub-slice.
                let start = v.get().as_ptr() as usize - base;
                (Name::Decoded(k.clone().into_owned()), start..start + v.get().len())
            })
            .collect();
        let mut at = raw.iter().enumerate().filter(|(_, (k, _))| k == text_field).map(|(i, _)| i);
        let text_at = at.next().ok_or_else(|| RecordError::MissingField(text_field.to_owned()))?;
        if at.next().is_some() {
            return Err(RecordError::DuplicateField(text_field.to_owned()));
        }
        Ok((fields, text_at))
    }

    /// Decodes a JSON string literal, saying what is wrong when it is not one.
    fn decode_string(literal: &str, name: &str) -> Result<String, RecordError> {
        if !literal.starts_with('"') {
            return Err(RecordError::NotAString(name.to_owned()));
        }
        serde_json::from_str(literal).map_err(|e| {
            let msg = match lone_surrogate(literal) {
                Some((at, esc)) => format!(
                    "the escape {esc} at byte {at} of the value is a lone UTF-16 surrogate, which is not a character"
                ),
                None => {
                    let msg = e.to_string();
                    msg.split(" at line ").next().unwrap_or(&msg).to_owned()
                }
            };
            RecordError::BadString(name.to_owned(), msg)
        })
    }

    /// The line as read (without its line break).
    pub fn line(&self) -> &[u8] {
        &self.line
    }

    /// The raw JSON text of a field's value, when the record has it.
    pub fn raw_field(&self, name: &str) -> Option<&[u8]> {
        self.fields.iter().find(|(k, _)| self.name(k) == name).map(|(_, v)| &self.line[v.clone()])
    }

    /// True when the record has a field named `name`.
    pub fn has_field(&self, name: &str) -> bool {
        self.fields.iter().any(|(k, _)| self.name(k) == name)
    }

    /// The text of a field's name.
    fn name<'a>(&'a self, name: &'a Name) -> &'a str {
        match name {
            // SAFETY: the scan made a name `At` only after `from_utf8`
            // accepted its bytes (`scan::scan`), and `line` has not
            // changed since.
            Name::At(at) => unsafe { std::str::from_utf8_unchecked(&self.line[at.clone()]) },
            Name::Decoded(name) => name,
        }
    }

    /// Writes the record with the text field replaced by `text`.
    pub fn write_with_text(&self, text: &str, out: &mut Vec<u8>) {
        self.write(Some(text), None, out);
    }

    /// Writes the record unchanged but for an added field `name` holding
    /// `value`. The caller checks [`Record::has_field`] first: an existing
    /// field is never replaced (it would be written twice).
    pub fn write_with_field(&self, name: &str, value: &serde_json::Value, out: &mut Vec<u8>) {
        self.write(None, Some((name, value)), out);
    }

    fn write(&self, text: Option<&str>, extra: Option<(&str, &serde_json::Value)>, out: &mut Vec<u8>) {
        // The new text replaces the old one, which is rarely shorter: one allocation.
        out.reserve(self.line.len() + 64);
        out.push(b'{');
        let mut first = true;
        for (i, (k, v)) in self.fields.iter().enumerate() {
            if !first {
                out.push(b',');
            }
            first = false;
            match k {
                // The name as written, quotes and all: the scan made it
                // `At` only when it holds no quote, backslash or control
                // character, so that is what `write_str` would write.
                Name::At(at) => out.extend_from_slice(&self.line[at.start - 1..at.end + 1]),
                Name::Decoded(name) => scan::write_str(out, name),
            }
            out.push(b':');
            match text {
                Some(t) if i == self.text_at => scan::write_str(out, t),
                _ => out.extend_from_slice(&self.line[v.clone()]),
            }
        }
        if let Some((name, value)) = extra {
            if !first {
                out.push(b',');
            }
            write_json(out, name);
            out.push(b':');
            write_json(out, value);
        }
        out.extend_from_slice(b"}\n");
    }
}

fn write_json<T: serde::Serialize + ?Sized>(out: &mut Vec<u8>, v: &T) {
    // Serialising a str or a Value into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, v);
}

#[cfg(test)]
mod tests;
