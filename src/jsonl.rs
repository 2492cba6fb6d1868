//! JSON Lines records and compressed streams.
//!
//! A record is one line holding a JSON object (the dolma / datatrove schema:
//! `id`, `text`, `source`, `metadata`, ...). The text field is replaced by
//! the clean text (or, with `--annotate`, left alone and a field added);
//! every other field is passed through byte for byte, in its original order
//! (only the whitespace between top-level tokens is not kept).
//!
//! Compression is chosen by the file name: `.gz` (gzip) and `.zst`
//! (zstd), read and written as streams; a shard is never loaded whole.

use std::borrow::Cow;
use std::fmt;
use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, Read, Write};
use std::ops::Range;
use std::path::Path;

use serde::Deserialize;
use serde::de::{MapAccess, Visitor};
use serde_json::value::RawValue;

/// The format of an input file.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Format {
    /// By file name: JSONL for `.jsonl`, `.ndjson` (optionally `.gz`/`.zst`), text otherwise.
    #[default]
    Auto,
    /// One document per file.
    Text,
    /// One document per line.
    Jsonl,
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

/// True when a file name says JSON Lines: `.jsonl` or `.ndjson`, optionally
/// followed by `.gz` or `.zst`.
pub fn is_jsonl_name(path: &Path) -> bool {
    let name = path.file_name().map(|n| n.to_string_lossy().to_lowercase()).unwrap_or_default();
    let base = name.strip_suffix(".gz").or_else(|| name.strip_suffix(".zst")).unwrap_or(&name);
    base.ends_with(".jsonl") || base.ends_with(".ndjson")
}

/// A buffered, decompressing reader.
pub fn reader(inner: Box<dyn Read + Send>, c: Compression) -> io::Result<Box<dyn BufRead + Send>> {
    const BUF: usize = 1 << 20;
    Ok(match c {
        Compression::None => Box::new(BufReader::with_capacity(BUF, inner)),
        Compression::Gzip => Box::new(BufReader::with_capacity(BUF, flate2::read::MultiGzDecoder::new(inner))),
        Compression::Zstd => Box::new(BufReader::with_capacity(BUF, zstd::Decoder::new(inner)?)),
    })
}

/// Opens a (possibly compressed) file for reading.
pub fn open(path: &Path) -> io::Result<Box<dyn BufRead + Send>> {
    reader(Box::new(File::open(path)?), Compression::of_path(path))
}

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
    pub fn new(inner: Box<dyn Write + Send>, c: Compression) -> io::Result<Sink> {
        let buf = BufWriter::with_capacity(1 << 20, inner);
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
/// raw JSON text (a byte range of the line).
#[derive(Debug)]
pub struct Record {
    line: String,
    fields: Vec<(String, Range<usize>)>,
    text_at: usize,
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
}

impl fmt::Display for RecordError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecordError::Json(m) => write!(f, "not a JSON object: {m}"),
            RecordError::MissingField(n) => write!(f, "no \"{n}\" field"),
            RecordError::NotAString(n) => write!(f, "field \"{n}\" is not a string"),
            RecordError::DuplicateField(n) => write!(f, "field \"{n}\" occurs more than once"),
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

impl Record {
    /// Parses one line (without its line break); returns the record and the
    /// JSON-decoded text of `text_field`. On error the line is handed back.
    pub fn parse(line: String, text_field: &str) -> Result<(Record, String), (String, RecordError)> {
        let parsed = Self::parse_fields(&line, text_field);
        match parsed {
            Ok((fields, text_at, text)) => Ok((Record { line, fields, text_at }, text)),
            Err(e) => Err((line, e)),
        }
    }

    #[allow(clippy::type_complexity)]
    fn parse_fields(line: &str, text_field: &str) -> Result<(Vec<(String, Range<usize>)>, usize, String), RecordError> {
        let Fields(raw) = serde_json::from_str(line).map_err(|e| {
            // serde_json says "at line 1 column N"; the line is ours to name.
            let msg = e.to_string();
            let msg = msg.split(" at line ").next().unwrap_or(&msg).to_owned();
            RecordError::Json(format!("{msg} (column {})", e.column()))
        })?;
        let base = line.as_ptr() as usize;
        let fields: Vec<(String, Range<usize>)> = raw
            .iter()
            .map(|(k, v)| {
                // RawValue borrows from `line`: its text is a sub-slice.
                let start = v.get().as_ptr() as usize - base;
                (k.clone().into_owned(), start..start + v.get().len())
            })
            .collect();
        let mut at = fields.iter().enumerate().filter(|(_, (k, _))| k == text_field).map(|(i, _)| i);
        let text_at = at.next().ok_or_else(|| RecordError::MissingField(text_field.to_owned()))?;
        if at.next().is_some() {
            return Err(RecordError::DuplicateField(text_field.to_owned()));
        }
        let text: String =
            serde_json::from_str(raw[text_at].1.get()).map_err(|_| RecordError::NotAString(text_field.to_owned()))?;
        Ok((fields, text_at, text))
    }

    /// The line as read.
    pub fn line(&self) -> &str {
        &self.line
    }

    /// Writes the record with the text field replaced by `text`.
    pub fn write_with_text(&self, text: &str, out: &mut Vec<u8>) {
        self.write(Some(text), None, out);
    }

    /// Writes the record unchanged but for an added (or replaced) field
    /// `name` holding `value`.
    pub fn write_with_field(&self, name: &str, value: &serde_json::Value, out: &mut Vec<u8>) {
        self.write(None, Some((name, value)), out);
    }

    fn write(&self, text: Option<&str>, extra: Option<(&str, &serde_json::Value)>, out: &mut Vec<u8>) {
        out.push(b'{');
        let mut first = true;
        for (i, (k, v)) in self.fields.iter().enumerate() {
            if extra.is_some_and(|(name, _)| name == k) {
                continue;
            }
            if !first {
                out.push(b',');
            }
            first = false;
            write_json(out, k.as_str());
            out.push(b':');
            match text {
                Some(t) if i == self.text_at => write_json(out, t),
                _ => out.extend_from_slice(self.line[v.clone()].as_bytes()),
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
mod tests {
    use super::*;

    #[test]
    fn replaces_text_and_keeps_other_fields_in_order_byte_for_byte() {
        let line = r#"{"id": "a1", "text": "x\ny", "metadata": {"n": 1.50, "z": [1,2]}, "source":"s"}"#;
        let (rec, text) = Record::parse(line.to_owned(), "text").unwrap();
        assert_eq!(text, "x\ny");
        let mut out = Vec::new();
        rec.write_with_text("clean \u{e9}", &mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "{\"id\":\"a1\",\"text\":\"clean \u{e9}\",\"metadata\":{\"n\": 1.50, \"z\": [1,2]},\"source\":\"s\"}\n"
        );
    }

    #[test]
    fn errors_for_bad_lines() {
        let err = |l: &str| Record::parse(l.to_owned(), "text").unwrap_err();
        assert!(matches!(err("{nope"), (_, RecordError::Json(_))));
        assert!(matches!(err("[1,2]"), (_, RecordError::Json(_))));
        assert_eq!(err(r#"{"body":"x"}"#), (r#"{"body":"x"}"#.to_owned(), RecordError::MissingField("text".into())));
        assert_eq!(err(r#"{"text":3}"#).1, RecordError::NotAString("text".into()));
        assert_eq!(err(r#"{"text":"a","text":"b"}"#).1, RecordError::DuplicateField("text".into()));
    }

    #[test]
    fn annotation_field_is_added_or_replaced() {
        let (rec, _) = Record::parse(r#"{"text":"t","newsdedup":1,"id":2}"#.to_owned(), "text").unwrap();
        let mut out = Vec::new();
        rec.write_with_field("newsdedup", &serde_json::json!({"k": 1}), &mut out);
        assert_eq!(String::from_utf8(out).unwrap(), "{\"text\":\"t\",\"id\":2,\"newsdedup\":{\"k\":1}}\n");
    }

    #[test]
    fn names_and_compression() {
        assert!(is_jsonl_name(Path::new("a/b.jsonl.gz")));
        assert!(is_jsonl_name(Path::new("b.NDJSON")));
        assert!(!is_jsonl_name(Path::new("b.txt")));
        assert_eq!(Compression::of_path(Path::new("x.jsonl.zst")), Compression::Zstd);
    }

    #[test]
    fn gzip_and_zstd_round_trip() {
        for c in [Compression::Gzip, Compression::Zstd, Compression::None] {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("x");
            let mut sink = Sink::new(Box::new(File::create(&path).unwrap()), c).unwrap();
            sink.write_all(b"{\"text\":\"hi\"}\n").unwrap();
            sink.finish().unwrap();
            let mut s = String::new();
            reader(Box::new(File::open(&path).unwrap()), c).unwrap().read_to_string(&mut s).unwrap();
            assert_eq!(s, "{\"text\":\"hi\"}\n");
        }
    }
}
