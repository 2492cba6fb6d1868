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

use super::shard::{BATCH_BYTES, BATCH_LINES, Batch, Parsed, Shard, read_batch};
use crate::config::Config;
use crate::dedup::Plan;
use crate::error::{Error, Result};
use crate::formats::{Parser, Source, dolma};
use crate::jsonl::{self, Compression};
use crate::write::{TempPath, temp_beside};

/// The next batch of raw records; `next_line` is the last line read.
pub(super) fn read(source: &mut Source, next_line: &mut u64) -> Batch {
    read_upto(source, next_line, BATCH_LINES, BATCH_BYTES)
}

/// [`read`] with other batch limits (records, bytes).
pub(super) fn read_upto(source: &mut Source, next_line: &mut u64, lines: usize, bytes: usize) -> Batch {
    match source {
        Source::Jsonl(reader) => read_batch(&mut **reader, next_line, lines, bytes),
        Source::Csv(csv) => {
            let (rows, err) = csv.batch(lines, bytes);
            if let Some((line, raw)) = rows.last() {
                *next_line = line + raw.iter().filter(|&&b| b == b'\n').count().saturating_sub(1) as u64;
            }
            (rows, err)
        }
    }
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
