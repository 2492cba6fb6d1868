//! The record-shard hooks of the run that are not JSONL-specific: reading
//! raw records from any [`Source`], and the dolma attribute files written
//! beside a shard's output (`--attributes DIR`).
//!
//! An attribute file mirrors its shard under `DIR` by the shard's relative
//! path (same name, same compression), holds one line per record in the
//! shard's order (rejected lines have none: they are not documents), and
//! is written like an output: to a temporary file renamed into place when
//! the shard is done. It is written with `--dry-run` too: the attributes
//! are then the run's only output, as with dolma's own dedup.

use std::fs;
use std::io::Write;
use std::path::PathBuf;

use super::decider::Decider;
use super::shard::{Batch, Parsed, Shard, read_batch};
use crate::config::{Config, Output};
use crate::dedup::Plan;
use crate::document::Document;
use crate::error::{Error, Result};
use crate::formats::{Parser, Source, dolma};
use crate::index::ReplayDoc;
use crate::jsonl::{self, Compression, SharedLine};
use crate::report::{DroppedRecord, FileRow, Stats, unwritten_status};
use crate::write::{TempPath, temp_beside};

/// One decided record of a shard (JSONL, CSV or Parquet), for [`account`].
pub(super) struct DecidedRecord<'a> {
    /// Its line (or row number) in the shard, as reported.
    pub line: u64,
    /// Its id (`--id-field`), when it has one.
    pub id: Option<String>,
    /// The record's document.
    pub doc: &'a Document,
    /// Its decisions.
    pub plan: &'a Plan,
    /// Whether the record is written out.
    pub written: bool,
}

/// The bookkeeping of one decided record: its counts and, when it is not
/// written, its dropped-record entry in the shard's report row; when the run
/// records a replay (`recorded`), its replay entry. `stats` holds what only
/// the caller knows (bytes, repairs).
pub(super) fn account(
    decider: &Decider,
    cfg: &Config,
    r: DecidedRecord<'_>,
    mut stats: Stats,
    row: &mut FileRow,
    recorded: Option<&mut Vec<ReplayDoc>>,
) {
    let DecidedRecord { line, id, doc, plan, written } = r;
    stats.documents_written = u64::from(written && !matches!(cfg.output, Output::DryRun));
    if let Some(recorded) = recorded {
        let remembered = decider.deduper.remembers(&doc.whole, plan.doc);
        let mut rec = super::replay::replay_doc(line, doc, plan, written, remembered);
        rec.id = if written { None } else { id.clone() };
        recorded.push(rec);
    }
    if let (false, Some(status)) = (written, unwritten_status(plan)) {
        let duplicate_of = plan.duplicate_of.map(|d| decider.doc_name(d));
        let duplicate_of_id = plan.duplicate_of.and_then(|d| decider.doc_id(d));
        let status = status.into();
        row.dropped_records.push(DroppedRecord { line, status, duplicate_of, id, duplicate_of_id });
    }
    row.stats += stats;
}

/// The next batch of raw records, at most `lines` of them and about `bytes`
/// bytes ([`super::shard::batch_limits`]); `next_line` is the last line read.
pub(super) fn read_upto(source: &mut Source, next_line: &mut u64, lines: usize, bytes: usize) -> Batch {
    match source {
        Source::Jsonl(reader) => read_batch(reader, next_line, lines, bytes),
        Source::Csv(csv) => {
            let (rows, err) = csv.batch(lines, bytes);
            if let Some((line, raw)) = rows.last() {
                *next_line = line + raw.iter().filter(|&&b| b == b'\n').count().saturating_sub(1) as u64;
            }
            (rows.into_iter().map(|(n, raw)| (n, raw.into())).collect(), err)
        }
    }
}

/// The next batch of raw records: the first batch's records `held` back
/// (in reverse order) while there are any, then the source's.
pub(super) fn next_raw(
    held: &mut Vec<(u64, SharedLine)>,
    source: &mut Source,
    next_line: &mut u64,
    (lines, bytes): (usize, usize),
) -> Batch {
    if held.is_empty() {
        return read_upto(source, next_line, lines, bytes);
    }
    let (mut batch, mut size) = (Vec::new(), 0);
    while batch.len() < lines && size < bytes {
        let Some(record) = held.pop() else { break };
        size += record.1.len();
        batch.push(record);
    }
    (batch, None)
}

/// A shard's attribute file being written.
pub(super) struct Attributes {
    sink: jsonl::Sink,
    tmp: TempPath,
    dest: PathBuf,
}

impl Attributes {
    /// Opens the attribute file of `shard` (`None` without `--attributes`).
    pub(super) fn open(cfg: &Config, shard: &Shard) -> Result<Option<Attributes>> {
        let Some(dir) = &cfg.attributes else { return Ok(None) };
        if shard.path.as_os_str() == "-" {
            let msg = "--attributes needs file or directory inputs (standard input has no name to mirror)";
            return Err(crate::check::ConfigError::Usage(msg.into()).into());
        }
        let dest = dir.join(&shard.rel);
        if let Some(parent) = dest.parent() {
            fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
        }
        let (file, tmp) = temp_beside(&dest)?;
        let sink = jsonl::Sink::new(Box::new(file), Compression::of_path(&dest)).map_err(|e| Error::io(&dest, e))?;
        Ok(Some(Attributes { sink, tmp, dest }))
    }

    /// Writes the attribute lines of a decided batch.
    pub(super) fn write(&mut self, parser: &Parser, lines: &[Parsed], plans: &[Option<Plan>]) -> Result<()> {
        let mut buf = Vec::new();
        for (l, p) in lines.iter().zip(plans) {
            let (Parsed::Doc { record, doc, .. }, Some(plan)) = (l, p) else { continue };
            let spans: Vec<_> = doc.removal_spans(&plan.verdicts).into_iter().map(|(r, _)| r).collect();
            dolma::attribute_line(parser.id_json(record).as_deref(), &doc.original, &spans, &mut buf);
        }
        self.sink.write_all(&buf).map_err(|e| Error::io(&self.dest, e))?;
        Ok(())
    }

    /// Completes the file and gives it its name.
    pub(super) fn commit(self) -> Result<()> {
        let file = self.sink.finish().map_err(|e| Error::io(&self.dest, e))?;
        drop(file);
        self.tmp.persist(&self.dest)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io;

    #[test]
    fn the_first_batch_is_read_back_in_order_before_the_source() {
        let text = "{\"n\":6}\n{\"n\":7}\n";
        let mut source =
            Source::Jsonl(Box::new(jsonl::LineReader::new(Box::new(io::Cursor::new(text.as_bytes().to_vec())))));
        let mut next_line = 5;
        let record = |n: u64| (n, format!("{{\"n\":{n}}}").into_bytes().into());
        let mut held: Vec<_> = (1..=5).rev().map(record).collect();
        let lines = |b: Batch| b.0.into_iter().map(|(n, _)| n).collect::<Vec<_>>();
        assert_eq!(lines(next_raw(&mut held, &mut source, &mut next_line, (2, 1 << 20))), [1, 2]);
        // The byte limit counts too: the record that reaches it is the last.
        assert_eq!(lines(next_raw(&mut held, &mut source, &mut next_line, (9, 8))), [3, 4]);
        // What is held is given alone, short, before the source is read.
        assert_eq!(lines(next_raw(&mut held, &mut source, &mut next_line, (9, 1 << 20))), [5]);
        assert_eq!(next_line, 5, "the source not read yet");
        assert_eq!(lines(next_raw(&mut held, &mut source, &mut next_line, (9, 1 << 20))), [6, 7]);
        assert_eq!(next_line, 7);
        assert!(next_raw(&mut held, &mut source, &mut next_line, (9, 1 << 20)).0.is_empty());
    }
}
