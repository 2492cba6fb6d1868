//! CSV shards: one document per row, the text in one column.
//!
//! Records are found by the [`csv`] crate (RFC 4180: quoted fields,
//! doubled quotes, line breaks inside quotes, `\n` or `\r\n` between rows),
//! but bytes are kept as read: every row is held as its raw bytes, and a
//! row is written back either exactly as read (nothing in its text changed)
//! or with the raw bytes of the text field alone replaced by the clean text
//! (quoted when the original field was quoted or the text needs it). So
//! every other column passes through byte for byte, quoting included, and
//! so does the header.
//!
//! A row with a number of fields other than the header's is malformed: it
//! is rejected with its line (see `--rejects`), never guessed at.
//!
//! Memory: the reader keeps only the bytes of the rows not yet handed out
//! (one batch), so a shard is streamed, whatever its size.

use std::io::{self, BufRead, Read};
use std::ops::Range;
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};

use crate::jsonl::RecordError;
use crate::read::{DecodeError, EncodingPolicy, decode};

/// True when a file name says CSV: `.csv` (optionally `.gz` or `.zst`).
pub fn is_csv_name(path: &Path) -> bool {
    let name = path.file_name().map(|n| n.to_string_lossy().to_lowercase()).unwrap_or_default();
    let base = name.strip_suffix(".gz").or_else(|| name.strip_suffix(".zst")).unwrap_or(&name);
    base.ends_with(".csv")
}

/// The header of a CSV shard.
#[derive(Clone, Debug)]
pub struct Header {
    /// The header row as read, its line break included.
    pub raw: Vec<u8>,
    /// Column names (lossily decoded).
    pub names: Vec<String>,
    /// The line break used after the header (`\n` or `\r\n`), for a last
    /// row that has none.
    pub newline: &'static [u8],
}

impl Header {
    /// The index of a column.
    pub fn column(&self, name: &str) -> Option<usize> {
        self.names.iter().position(|n| n == name)
    }
}

/// A byte sink shared between the CSV reader's input and [`Source`]: the
/// bytes read but not yet handed out as rows.
#[derive(Clone, Default)]
struct Tee(Arc<Mutex<Vec<u8>>>);

struct TeeReader {
    inner: Box<dyn BufRead + Send>,
    tee: Tee,
}

impl Read for TeeReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.tee.0.lock().unwrap_or_else(PoisonError::into_inner).extend_from_slice(&buf[..n]);
        Ok(n)
    }
}

/// Reads a CSV shard row by row, each row as raw bytes.
pub struct Source {
    reader: csv::Reader<TeeReader>,
    tee: Tee,
    /// Byte offset of the first byte held in the tee.
    base: u64,
    /// The line the next byte handed out is on (1-based).
    line: u64,
    record: csv::ByteRecord,
}

impl Source {
    /// Opens a shard over a (decompressed) byte stream and reads its header.
    /// An empty stream has an empty header.
    pub fn new(inner: Box<dyn BufRead + Send>) -> io::Result<(Source, Header)> {
        let tee = Tee::default();
        let reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .buffer_capacity(1 << 16)
            .from_reader(TeeReader { inner, tee: tee.clone() });
        let mut source = Source { reader, tee, base: 0, line: 1, record: csv::ByteRecord::new() };
        let header = match source.next_raw()? {
            Some((_, raw)) => {
                let names = source.record.iter().map(|f| String::from_utf8_lossy(f).into_owned()).collect();
                let newline: &'static [u8] = if raw.ends_with(b"\r\n") { b"\r\n" } else { b"\n" };
                Header { raw, names, newline }
            }
            None => Header { raw: Vec::new(), names: Vec::new(), newline: b"\n" },
        };
        Ok((source, header))
    }

    /// The next row: its first line and its raw bytes (line break included
    /// when there is one); `None` at the end.
    pub fn next_raw(&mut self) -> io::Result<Option<(u64, Vec<u8>)>> {
        let more = self.reader.read_byte_record(&mut self.record).map_err(csv_io)?;
        if !more {
            return Ok(None);
        }
        let start = self.record.position().map_or(self.base, csv::Position::byte);
        let end = self.reader.position().byte();
        let mut held = self.tee.0.lock().unwrap_or_else(PoisonError::into_inner);
        let from = usize::try_from(start.saturating_sub(self.base)).unwrap_or(usize::MAX).min(held.len());
        let to = usize::try_from(end.saturating_sub(self.base)).unwrap_or(usize::MAX).min(held.len()).max(from);
        let mut raw = held[from..to].to_vec();
        held.drain(..to);
        self.base += to as u64;
        // A `\n` left over from the row before's `\r\n` belongs to it: the
        // reader ends a row at `\r`. Blank lines are not rows either.
        let lead = raw.iter().take_while(|b| matches!(b, b'\r' | b'\n')).count();
        self.line += raw.drain(..lead).filter(|&b| b == b'\n').count() as u64;
        let line = self.line;
        // The row's own line break: the reader stops after `\r`, so the
        // `\n` of a `\r\n` is still in the tee; take it now.
        if raw.last() == Some(&b'\r') && held.first() == Some(&b'\n') {
            raw.push(b'\n');
            held.drain(..1);
            self.base += 1;
        }
        self.line += raw.iter().filter(|&&b| b == b'\n').count() as u64;
        Ok(Some((line, raw)))
    }

    /// Up to `max_rows` rows or about `max_bytes` bytes; reading stops at
    /// the first error, which is returned with the rows before it.
    pub fn batch(&mut self, max_rows: usize, max_bytes: usize) -> (Vec<(u64, Vec<u8>)>, Option<io::Error>) {
        let (mut rows, mut bytes) = (Vec::new(), 0);
        while rows.len() < max_rows && bytes < max_bytes {
            match self.next_raw() {
                Ok(Some((line, raw))) => {
                    bytes += raw.len();
                    rows.push((line, raw));
                }
                Ok(None) => break,
                Err(e) => return (rows, Some(e)),
            }
        }
        (rows, None)
    }
}

fn csv_io(e: csv::Error) -> io::Error {
    match e.into_kind() {
        csv::ErrorKind::Io(e) => e,
        other => io::Error::new(io::ErrorKind::InvalidData, format!("{other:?}")),
    }
}

/// One CSV row: its raw bytes and the byte range of each field in them.
#[derive(Debug)]
pub struct Row {
    raw: Vec<u8>,
    fields: Vec<Range<usize>>,
    /// Length of the row without its line break.
    body: usize,
    text_at: usize,
}

/// Splits a row's raw bytes (without line break) into raw fields: commas
/// outside quotes separate fields (a doubled quote toggles twice, so it
/// needs no special case).
fn raw_fields(body: &[u8]) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let (mut start, mut quoted) = (0, false);
    for (i, &b) in body.iter().enumerate() {
        match b {
            b'"' => quoted = !quoted,
            b',' if !quoted => {
                out.push(start..i);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(start..body.len());
    out
}

/// The value of field `at` of a raw row that may be malformed (for the id
/// of a rejected row).
pub fn raw_value(raw: &[u8], at: usize) -> Option<String> {
    let body = &raw[..raw.len() - raw.iter().rev().take_while(|b| matches!(b, b'\r' | b'\n')).count()];
    let range = raw_fields(body).into_iter().nth(at)?;
    Some(String::from_utf8_lossy(&unquote(&body[range])).into_owned())
}

/// The value of a raw field: outer quotes removed, doubled quotes undone.
fn unquote(raw: &[u8]) -> Vec<u8> {
    match raw.strip_prefix(b"\"") {
        Some(inner) => {
            let inner = inner.strip_suffix(b"\"").unwrap_or(inner);
            let mut out = Vec::with_capacity(inner.len());
            let mut prev_quote = false;
            for &b in inner {
                if b == b'"' && prev_quote {
                    prev_quote = false;
                    continue;
                }
                prev_quote = b == b'"';
                out.push(b);
            }
            out
        }
        None => raw.to_vec(),
    }
}

impl Row {
    /// Parses a row read by [`Source`] against its header; returns the row,
    /// the decoded text of column `text_at` and whether invalid UTF-8 in it
    /// was repaired. On error the raw bytes are handed back.
    pub fn parse(
        raw: Vec<u8>,
        header: &Header,
        text_at: usize,
        policy: EncodingPolicy,
    ) -> Result<(Row, String, bool), (Vec<u8>, RecordError)> {
        let body = raw.len() - raw.iter().rev().take_while(|b| matches!(b, b'\r' | b'\n')).count();
        let fields = raw_fields(&raw[..body]);
        if fields.len() != header.names.len() {
            let e = RecordError::Columns { found: fields.len(), expected: header.names.len() };
            return Err((raw, e));
        }
        let value = unquote(&raw[fields[text_at].clone()]);
        let offset = fields[text_at].start;
        match decode(value, policy) {
            Ok((text, decoding)) => {
                let repaired = decoding.first_invalid.is_some();
                Ok((Row { raw, fields, body, text_at }, text, repaired))
            }
            Err(
                DecodeError::InvalidUtf8 { offset: at }
                | DecodeError::InvalidUtf16 { offset: at }
                | DecodeError::Binary { offset: at },
            ) => Err((raw, RecordError::Encoding(offset + at))),
        }
    }

    /// The row as read, its line break included (when it had one).
    pub fn raw(&self) -> &[u8] {
        &self.raw
    }

    /// The value of column `at`, lossily decoded (for record ids).
    pub fn value(&self, at: usize) -> Option<String> {
        let range = self.fields.get(at)?;
        Some(String::from_utf8_lossy(&unquote(&self.raw[range.clone()])).into_owned())
    }

    /// Writes the row with the text field replaced by `text`, its line
    /// break (or `newline` when it had none) at the end.
    pub fn write_with_text(&self, text: &str, newline: &[u8], out: &mut Vec<u8>) {
        let field = &self.fields[self.text_at];
        out.extend_from_slice(&self.raw[..field.start]);
        let was_quoted = self.raw[field.clone()].first() == Some(&b'"');
        write_field(text, was_quoted, out);
        out.extend_from_slice(&self.raw[field.end..self.body]);
        self.line_break(newline, out);
    }

    /// Writes the row as read with one more field, `value`, at the end.
    pub fn write_with_extra(&self, value: &str, newline: &[u8], out: &mut Vec<u8>) {
        out.extend_from_slice(&self.raw[..self.body]);
        out.push(b',');
        write_field(value, false, out);
        self.line_break(newline, out);
    }

    fn line_break(&self, newline: &[u8], out: &mut Vec<u8>) {
        match &self.raw[self.body..] {
            [] => out.extend_from_slice(newline),
            end => out.extend_from_slice(end),
        }
    }
}

/// Writes one field, quoted when `quote` or when the value needs it.
pub fn write_field(value: &str, quote: bool, out: &mut Vec<u8>) {
    let needs = value.bytes().any(|b| matches!(b, b',' | b'"' | b'\r' | b'\n'));
    if !(quote || needs) {
        out.extend_from_slice(value.as_bytes());
        return;
    }
    out.push(b'"');
    for b in value.bytes() {
        if b == b'"' {
            out.push(b'"');
        }
        out.push(b);
    }
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(input: &str) -> (Header, Vec<(u64, Vec<u8>)>) {
        let (mut src, header) = Source::new(Box::new(io::Cursor::new(input.as_bytes().to_vec()))).unwrap();
        let mut out = Vec::new();
        while let Some(r) = src.next_raw().unwrap() {
            out.push(r);
        }
        (header, out)
    }

    #[test]
    fn rows_are_their_raw_bytes_with_line_numbers() {
        let input = "id,text\r\n1,\"a\r\nb\"\r\n\r\n2,plain\r\n3,\"x \"\"q\"\"\"";
        let (header, rows) = rows(input);
        assert_eq!(header.raw, b"id,text\r\n");
        assert_eq!(header.names, ["id", "text"]);
        assert_eq!(header.newline, b"\r\n");
        let raw: Vec<&[u8]> = rows.iter().map(|(_, r)| r.as_slice()).collect();
        assert_eq!(raw, [&b"1,\"a\r\nb\"\r\n"[..], b"2,plain\r\n", b"3,\"x \"\"q\"\"\""]);
        let lines: Vec<u64> = rows.iter().map(|(l, _)| *l).collect();
        assert_eq!(lines, [2, 5, 6]);
        // Everything read is handed out: the rows and the header are the input.
        let mut all = header.raw.clone();
        rows.iter().for_each(|(_, r)| all.extend_from_slice(r));
        assert_eq!(all, input.replace("\r\n\r\n2", "\r\n2").as_bytes());
    }

    #[test]
    fn a_row_rewritten_changes_only_its_text_field() {
        let (header, rows) = rows("a,text,c\n\"x, y\",\"old \"\"t\"\"\",  z \n");
        let (row, text, _) = Row::parse(rows[0].1.clone(), &header, 1, EncodingPolicy::Repair).unwrap();
        assert_eq!(text, "old \"t\"");
        let mut out = Vec::new();
        row.write_with_text("new, \"t\"\n", b"\n", &mut out);
        assert_eq!(out, b"\"x, y\",\"new, \"\"t\"\"\n\",  z \n");
        assert_eq!(row.value(0).as_deref(), Some("x, y"));
    }

    #[test]
    fn a_row_with_the_wrong_number_of_fields_is_refused() {
        let (header, rows) = rows("id,text\n1,a,extra\n");
        let err = Row::parse(rows[0].1.clone(), &header, 1, EncodingPolicy::Repair).unwrap_err();
        assert_eq!(err.0, b"1,a,extra\n");
        assert_eq!(err.1, RecordError::Columns { found: 3, expected: 2 });
    }

    #[test]
    fn names() {
        assert!(is_csv_name(Path::new("a/News.CSV")));
        assert!(is_csv_name(Path::new("a.csv.gz")));
        assert!(!is_csv_name(Path::new("a.jsonl")));
    }
}
