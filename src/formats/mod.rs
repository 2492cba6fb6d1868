//! Record formats: JSON Lines and CSV shards behind one interface.
//!
//! A *record shard* holds one document per record; the pipeline reads a
//! shard as a stream of raw records ([`Source`]), parses each into a [`Row`]
//! and its text ([`Parser`]), and writes each kept row back with only its
//! text replaced. JSON Lines lives in [`crate::jsonl`]; CSV in [`mod@csv`].
//! [`dolma`] writes dolma attribute files beside the output.

use std::io::{self, BufRead};
use std::path::Path;

use crate::jsonl::{self, Format, LineReader, Record, RecordError, SharedLine, TextSink};
use crate::read::EncodingPolicy;

pub mod csv;
pub mod dolma;

/// The kind of a record shard.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// One JSON object per line.
    Jsonl,
    /// One CSV row per record, after a header row.
    Csv,
    /// One row of a Parquet file per record (read by record batches, not
    /// through [`Source`]).
    Parquet,
}

impl Kind {
    /// The kind of an input file under `format`; `None` for a text file
    /// (one document per file).
    pub fn of(path: &Path, format: Format) -> Option<Kind> {
        match format {
            Format::Jsonl => Some(Kind::Jsonl),
            Format::Csv => Some(Kind::Csv),
            Format::Parquet => Some(Kind::Parquet),
            Format::Text => None,
            Format::Auto if jsonl::is_jsonl_name(path) => Some(Kind::Jsonl),
            Format::Auto if csv::is_csv_name(path) => Some(Kind::Csv),
            Format::Auto if path.extension().is_some_and(|e| e.eq_ignore_ascii_case("parquet")) => Some(Kind::Parquet),
            Format::Auto => None,
        }
    }
}

/// A record read from a shard, its text not yet cleaned.
#[derive(Debug)]
pub enum Row {
    /// A JSON Lines record.
    Json(Record),
    /// A CSV row.
    Csv(csv::Row),
}

/// How the records of one shard are parsed: the text field and, for CSV,
/// the header.
#[derive(Clone, Debug)]
pub struct Parser {
    /// The field (JSONL) or column (CSV) holding the text.
    pub text_field: String,
    /// The field or column naming each record, when the shard has it.
    pub id_field: Option<String>,
    /// What to do with invalid UTF-8 in the text.
    pub policy: EncodingPolicy,
    /// CSV: the header and the text column's index.
    pub csv: Option<(csv::Header, usize)>,
}

impl Parser {
    /// Parses one raw record; returns the row, its decoded text and whether
    /// invalid UTF-8 in it was repaired. On error the bytes are handed back.
    pub fn parse(&self, raw: SharedLine) -> Result<(Row, String, bool), (SharedLine, RecordError)> {
        match &self.csv {
            Some((header, at)) => match csv::Row::parse(raw.into_vec(), header, *at, self.policy) {
                Ok((r, t, x)) => Ok((Row::Csv(r), t, x)),
                Err((raw, e)) => Err((raw.into(), e)),
            },
            None => {
                Record::parse_fed(raw, &self.text_field, self.policy, &mut ()).map(|(r, t, _, x)| (Row::Json(r), t, x))
            }
        }
    }

    /// [`Parser::parse`], telling `sink` a JSON Lines record's text while
    /// it is decoded (see [`Record::parse_fed`]). The first flag says
    /// whether `sink` was told all of the text (never for CSV), the second
    /// whether invalid UTF-8 was repaired.
    #[allow(clippy::type_complexity)]
    pub fn parse_fed<S: TextSink>(
        &self,
        raw: SharedLine,
        sink: &mut S,
    ) -> Result<(Row, String, bool, bool), (SharedLine, RecordError)> {
        if self.csv.is_some() {
            return self.parse(raw).map(|(r, t, x)| (r, t, false, x));
        }
        Record::parse_fed(raw, &self.text_field, self.policy, sink).map(|(r, t, f, x)| (Row::Json(r), t, f, x))
    }

    /// The line break a CSV row without one is given.
    fn newline(&self) -> &[u8] {
        self.csv.as_ref().map_or(b"\n", |(h, _)| h.newline)
    }

    /// The id of a row: the id field's value (a JSON string decoded, any
    /// other JSON value as written).
    pub fn id(&self, row: &Row) -> Option<String> {
        let name = self.id_field.as_deref()?;
        match (row, &self.csv) {
            (Row::Json(r), _) => r.raw_field(name).map(json_id),
            (Row::Csv(r), Some((h, _))) => h.column(name).and_then(|at| r.value(at)),
            (Row::Csv(_), None) => None,
        }
    }

    /// The id of a row as raw JSON (for dolma attribute lines).
    pub fn id_json(&self, row: &Row) -> Option<Vec<u8>> {
        let name = self.id_field.as_deref()?;
        match row {
            Row::Json(r) => r.raw_field(name).map(<[u8]>::to_vec),
            Row::Csv(_) => self.id(row).and_then(|v| serde_json::to_vec(&v).ok()),
        }
    }

    /// The id of a record that could not be parsed, when it can be found.
    pub fn id_of_raw(&self, raw: &[u8]) -> Option<String> {
        let name = self.id_field.as_deref()?;
        match &self.csv {
            Some((header, _)) => csv::raw_value(raw, header.column(name)?),
            None => {
                let v: serde_json::Value = serde_json::from_slice(raw).ok()?;
                v.get(name).map(|v| json_id(v.to_string().as_bytes()))
            }
        }
    }

    /// Writes a row exactly as read, with its line break.
    pub fn write_as_read(&self, row: &Row, out: &mut Vec<u8>) {
        match row {
            Row::Json(r) => {
                out.extend_from_slice(r.line());
                out.push(b'\n');
            }
            Row::Csv(r) => {
                out.extend_from_slice(r.raw());
                if !r.raw().ends_with(b"\n") {
                    out.extend_from_slice(self.newline());
                }
            }
        }
    }

    /// Writes a row with its text replaced.
    pub fn write_with_text(&self, row: &Row, text: &str, out: &mut Vec<u8>) {
        match row {
            Row::Json(r) => r.write_with_text(text, out),
            Row::Csv(r) => r.write_with_text(text, self.newline(), out),
        }
    }

    /// Writes a row with a field added (`--annotate`): a JSON field, or a
    /// last CSV column holding the JSON text.
    pub fn write_with_field(&self, row: &Row, name: &str, value: &serde_json::Value, out: &mut Vec<u8>) {
        match row {
            Row::Json(r) => r.write_with_field(name, value, out),
            Row::Csv(r) => r.write_with_extra(&value.to_string(), self.newline(), out),
        }
    }

    /// True when the row already has a field `name`.
    pub fn has_field(&self, row: &Row, name: &str) -> bool {
        match (row, &self.csv) {
            (Row::Json(r), _) => r.has_field(name),
            (Row::Csv(_), Some((h, _))) => h.column(name).is_some(),
            (Row::Csv(_), None) => false,
        }
    }

    /// The header to write first: with `--annotate FIELD`, one more column.
    pub fn header(&self, annotate: Option<&str>) -> Vec<u8> {
        let Some((h, _)) = &self.csv else { return Vec::new() };
        let Some(field) = annotate else { return h.raw.clone() };
        let body = h.raw.len() - h.raw.iter().rev().take_while(|b| matches!(b, b'\r' | b'\n')).count();
        let mut out = h.raw[..body].to_vec();
        out.push(b',');
        csv::write_field(field, false, &mut out);
        out.extend_from_slice(h.newline);
        out
    }
}

/// An id from a raw JSON value: a string decoded, anything else as written.
fn json_id(raw: &[u8]) -> String {
    // Most ids are a string with nothing to unescape: its bytes between the
    // quotes are the id, when they are UTF-8 (what serde would decode them
    // to, without setting up its deserializer for each record: ~0.2% of a
    // JSONL run, benches/JSONL.md, thirty-sixth pass). Anything else takes
    // serde's path below.
    if let [b'"', inner @ .., b'"'] = raw
        && !inner.iter().any(|&c| c == b'"' || c == b'\\' || c < 0x20)
        && let Some(id) = crate::jsonl::utf8(inner)
    {
        return id.to_owned();
    }
    // Only a JSON string is read as one; anything else (most often a
    // number) is kept as written, without building serde's error first.
    let string = match raw.trim_ascii_start().first() {
        Some(b'"') => serde_json::from_slice::<String>(raw).ok(),
        _ => None,
    };
    string.unwrap_or_else(|| String::from_utf8_lossy(raw).into_owned())
}

/// Where a shard's raw records come from.
pub enum Source {
    /// JSON Lines: one record per non-blank line.
    Jsonl(Box<LineReader>),
    /// CSV rows after the header.
    Csv(Box<csv::Source>),
}

impl Source {
    /// Opens a shard's record stream over a (decompressed) reader; for CSV
    /// also reads the header and finds the text column, and returns the
    /// [`Parser`] for its records.
    pub fn open(
        kind: Kind,
        reader: Box<dyn BufRead + Send>,
        text_field: &str,
        id_field: Option<&str>,
        policy: EncodingPolicy,
    ) -> io::Result<(Source, Parser)> {
        let mut parser =
            Parser { text_field: text_field.to_owned(), id_field: id_field.map(str::to_owned), policy, csv: None };
        match kind {
            Kind::Jsonl | Kind::Parquet => Ok((Source::Jsonl(Box::new(LineReader::new(reader))), parser)),
            Kind::Csv => {
                let (source, header) = csv::Source::new(reader)?;
                // An empty file has no header and no row: nothing to look up.
                let found = if header.raw.is_empty() { Some(0) } else { header.column(text_field) };
                let Some(at) = found else {
                    let msg = format!(
                        "no column \"{text_field}\" in the header (columns: {}); choose one with --text-field",
                        header.names.join(", ")
                    );
                    return Err(io::Error::new(io::ErrorKind::InvalidData, msg));
                };
                if id_field.is_some_and(|id| header.column(id).is_none()) && id_field != Some("id") {
                    let msg = format!("no column \"{}\" for --id-field in the header", id_field.unwrap_or_default());
                    return Err(io::Error::new(io::ErrorKind::InvalidData, msg));
                }
                parser.csv = Some((header, at));
                Ok((Source::Csv(Box::new(source)), parser))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::json_id;

    #[test]
    fn an_id_is_the_string_it_holds_or_the_value_as_written() {
        assert_eq!(json_id(br#""globe-wire/0001.txt""#), "globe-wire/0001.txt");
        assert_eq!(json_id(br#""caf\u00e9 \"7\"""#), "café \"7\"");
        assert_eq!(json_id(br#" "spaced""#), "spaced");
        assert_eq!(json_id(b"42"), "42");
        assert_eq!(json_id(b"-1.50e3"), "-1.50e3");
        assert_eq!(json_id(b"null"), "null");
        assert_eq!(json_id(br#"{"a": 1}"#), r#"{"a": 1}"#);
        // A string that does not decode is kept as written too.
        assert_eq!(json_id(br#""bad \x""#), r#""bad \x""#);
        // Raw control characters and invalid UTF-8 are not a string serde
        // decodes: kept as written, whichever path looks first.
        assert_eq!(json_id(b"\"tab\there\""), "\"tab\there\"");
        assert_eq!(json_id(b"\"caf\xe9\""), "\"caf\u{fffd}\"");
        assert_eq!(json_id(br#""""#), "");
        assert_eq!(json_id(br#"""#), r#"""#);
    }

    /// The id of a JSON string value as serde decodes it, else the value as
    /// written (lossy): the old path alone, the oracle of the fast one.
    fn by_serde(raw: &[u8]) -> String {
        let string = match raw.trim_ascii_start().first() {
            Some(b'"') => serde_json::from_slice::<String>(raw).ok(),
            _ => None,
        };
        string.unwrap_or_else(|| String::from_utf8_lossy(raw).into_owned())
    }

    proptest::proptest! {
        #[test]
        fn an_id_is_what_serde_makes_of_it(
            inner in proptest::collection::vec(proptest::sample::select(
                vec![b'a', b'7', b' ', b'/', b'"', b'\\', b'n', b'u', b'0', b'\t', b'\n', 0x7f, 0xc3, 0xa9, 0xe2, 0x80, 0x9c, 0xff],
            ), 0..12),
            quoted in proptest::bool::ANY,
        ) {
            let raw = if quoted { [&b"\""[..], &inner, b"\""].concat() } else { inner };
            proptest::prop_assert_eq!(json_id(&raw), by_serde(&raw));
        }
    }
}
