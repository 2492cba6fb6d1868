//! Parquet shards (`--format parquet`, or `*.parquet` by name): the format
//! Hugging Face datasets ship in.
//!
//! One string column (`--text-field`, `Utf8` or `LargeUtf8`) is cleaned;
//! every other column passes through as it was (values, types, nulls), and
//! the output's Arrow schema, schema metadata included, is the input's. The
//! shard is streamed: record batches of at most [`ROWS`] rows are read
//! from the row groups one at a time, prepared in parallel, decided in row
//! order and written, so memory is bounded by a batch (plus the seen-set),
//! not by the shard. Records not written (duplicates, emptied) are removed
//! from the batch, as in JSONL. The output is compressed with the codec of
//! the input's first column chunk (snappy, gzip, zstd or none; another
//! codec is written as zstd).
//!
//! A record's "line" in explain lines and the report is its row number
//! (1-based). A row whose text is null is passed through and not counted as
//! a document. Not supported for Parquet: `--annotate` (it would change the
//! schema), `--attributes`, standard input and output (Parquet needs a
//! seekable file; use `--out`, `--in-place` or `--dry-run`).

use std::fs::{self, File};
use std::sync::Arc;

use arrow_array::{Array, ArrayRef, BooleanArray, LargeStringArray, RecordBatch, StringArray};
use arrow_schema::DataType;
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::basic::{Compression, GzipLevel, ZstdLevel};
use parquet::file::properties::WriterProperties;
use rayon::prelude::*;

use super::decider::Decider;
use super::index_run::history;
use super::records::{DecidedRecord, account};
use super::shard::{Shard, fail_shard};
use crate::config::{Config, Output};
use crate::dedup::Plan;
use crate::document::Document;
use crate::error::{Error, Result};
use crate::interrupt;
use crate::report::{FileRow, Stats};

/// Rows per record batch read.
pub const ROWS: usize = 4096;

fn invalid(shard: &Shard, msg: impl Into<String>) -> Error {
    Error::invalid(&shard.path, msg)
}

/// Cleans one Parquet shard.
pub(super) fn run(cfg: &Config, decider: &mut Decider, shard: &Shard) -> Result<()> {
    if shard.path.as_os_str() == "-" || cfg.output == Output::Stdout {
        let msg = "Parquet needs a file in and --out, --in-place or --dry-run out (not standard input or output)";
        return Err(Error::invalid(shard.name(), msg));
    }
    if cfg.annotate.is_some() || cfg.attributes.is_some() {
        return Err(invalid(shard, "--annotate and --attributes are not supported for Parquet shards"));
    }
    let input = decider.input(&shard.rel)?;
    let row = FileRow { path: shard.rel.to_string_lossy().into_owned(), ..FileRow::default() };
    let opened = File::open(&shard.path).map_err(|e| Error::io(&shard.path, e)).and_then(|f| {
        ParquetRecordBatchReaderBuilder::try_new(f).map_err(|e| Error::invalid(&shard.path, e.to_string()))
    });
    let builder = match opened {
        Ok(b) => b,
        Err(e) => {
            fail_shard(decider, row, e);
            return Ok(());
        }
    };
    let schema = builder.schema().clone();
    let text_at = schema.index_of(&cfg.text_field).map_err(|_| {
        let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
        invalid(
            shard,
            format!("no column \"{}\" (columns: {}); choose one with --text-field", cfg.text_field, names.join(", ")),
        )
    })?;
    if !matches!(schema.field(text_at).data_type(), DataType::Utf8 | DataType::LargeUtf8) {
        let t = schema.field(text_at).data_type();
        return Err(invalid(shard, format!("column \"{}\" is {t}, not a string column", cfg.text_field)));
    }
    let id_at = schema.index_of(&cfg.id_field).ok();
    let codec = builder
        .metadata()
        .row_groups()
        .first()
        .and_then(|g| g.columns().first())
        .map_or(Compression::SNAPPY, |c| c.compression());
    let reader = builder.with_batch_size(ROWS).build().map_err(|e| invalid(shard, e.to_string()))?;
    let mut out = Out::open(cfg, shard, schema.clone(), codec)?;
    // Cleaned in place by an earlier run of the batch: replayed (see `super::replay`).
    let hit = decider.index.as_ref().and_then(|ix| ix.replayed_file(&shard.rel, &shard.path));
    decider.replay_shard_begin(&shard.rel, hit)?;
    let mut state = ShardState { path: shard.path.clone(), row, next_row: 0, text_at, id_at };
    for batch in reader {
        if interrupt::requested() {
            return Err(Error::Interrupted);
        }
        let batch = match batch {
            Ok(b) => b,
            Err(e) => {
                // Rows before the damage are written (not in place), as for JSONL.
                let in_place = matches!(cfg.output, Output::InPlace { .. });
                if !in_place {
                    state.row.stats.bytes_out = out.commit(|_, _| Ok(()))?;
                }
                let what = if in_place { "the shard was left as it was" } else { "the rows before it were written" };
                let msg = format!("row {}: {e}; {what}", state.next_row + 1);
                fail_shard(decider, state.row, Error::invalid(&shard.path, msg));
                return Ok(());
            }
        };
        let cleaned = clean_batch(cfg, decider, input, &mut state, &batch)?;
        out.write(&cleaned)?;
    }
    decider.journal()?;
    decider.take_removed_records(input, None)?;
    let mut row = state.row;
    // Before the output replaces it, in place.
    row.stats.bytes_in = fs::metadata(&shard.path).map_or(0, |m| m.len());
    row.status = if cfg.output == Output::DryRun { "dry-run" } else { "written" }.into();
    let replayed = decider.replaying_shard().and_then(|i| decider.replayed_row(i));
    row.stats.bytes_out = out.commit(|tmp, size| {
        let mut recorded = row.clone();
        recorded.stats.bytes_out = size;
        decider.record_shard_end(tmp, &recorded)
    })?;
    decider.report.push(replayed.unwrap_or(row));
    Ok(())
}

/// Per-shard bookkeeping across batches.
struct ShardState {
    /// The shard's path, for errors.
    path: std::path::PathBuf,
    row: FileRow,
    next_row: u64,
    text_at: usize,
    id_at: Option<usize>,
}

/// The text column's values (`None` for null).
fn texts(column: &ArrayRef) -> Vec<Option<&str>> {
    if let Some(a) = column.as_any().downcast_ref::<StringArray>() {
        return a.iter().collect();
    }
    if let Some(a) = column.as_any().downcast_ref::<LargeStringArray>() {
        return a.iter().collect();
    }
    vec![None; column.len()]
}

/// A row's id: a string or integer column's value.
fn id_of(column: &ArrayRef, i: usize) -> Option<String> {
    use arrow_array::{Int32Array, Int64Array, UInt64Array};
    if column.is_null(i) {
        return None;
    }
    let any = column.as_any();
    if let Some(a) = any.downcast_ref::<StringArray>() {
        return Some(a.value(i).to_owned());
    }
    if let Some(a) = any.downcast_ref::<LargeStringArray>() {
        return Some(a.value(i).to_owned());
    }
    if let Some(a) = any.downcast_ref::<Int64Array>() {
        return Some(a.value(i).to_string());
    }
    if let Some(a) = any.downcast_ref::<Int32Array>() {
        return Some(a.value(i).to_string());
    }
    any.downcast_ref::<UInt64Array>().map(|a| a.value(i).to_string())
}

/// Prepares, decides and renders one record batch; returns the rows to write.
fn clean_batch(
    cfg: &Config,
    decider: &mut Decider,
    input: u32,
    state: &mut ShardState,
    batch: &RecordBatch,
) -> Result<RecordBatch> {
    let column = batch.column(state.text_at);
    // A cleaned shard's rows under their original numbers and keys.
    let paired = decider.pair_records(batch.num_rows());
    let originals: Vec<(Option<u64>, Option<[u8; 32]>)> = (0..batch.num_rows())
        .map(|i| decider.paired(paired.get(i).copied().flatten()))
        .map(|d| d.map_or((None, None), |d| (Some(d.line), d.whole)))
        .collect();
    let ix = decider.index.as_ref();
    let docs: Vec<Option<(Document, Option<crate::dedup::History>)>> = texts(column)
        .into_par_iter()
        .zip(&originals)
        .map(|(t, (_, whole))| {
            t.map(|t| {
                let mut doc = Document::prepare(t.to_owned(), &cfg.text);
                if let Some(whole) = whole {
                    doc.whole = crate::key::Digest(*whole);
                }
                let h = ix.map(|ix| history(ix, &doc.keys, &doc.whole));
                (doc, h)
            })
        })
        .collect();
    let mut plans: Vec<Option<Plan>> = Vec::with_capacity(docs.len());
    let mut recorded = Vec::new();
    let recording = decider.recording() && decider.replaying_shard().is_none();
    for (i, d) in docs.iter().enumerate() {
        let at = paired.get(i).copied().flatten();
        decider.take_removed_records(input, at)?;
        let line = originals.get(i).and_then(|o| o.0).unwrap_or(state.next_row + i as u64 + 1);
        let Some((doc, hist)) = d else {
            // Passed through as it was, like a rejected line.
            if recording {
                recorded.push(super::replay::rejected_doc(line));
            }
            plans.push(None);
            continue;
        };
        let id = state.id_at.and_then(|at| id_of(batch.column(at), i));
        let plan = decider.decide(input, (line, id.as_deref()), doc, hist.as_ref())?;
        decider.replay_record_end(at, &plan);
        let written = plan.kept() > 0 || cfg.keep_empty;
        let r = DecidedRecord { line, id, doc, plan: &plan, written };
        account(decider, cfg, r, Stats::of_plan(&plan), &mut state.row, recording.then_some(&mut recorded));
        plans.push(Some(plan));
    }
    state.next_row += docs.len() as u64;
    if recording {
        decider.record_batch(&recorded)?;
    }
    let rendered: Vec<Option<String>> = docs
        .par_iter()
        .zip(plans.par_iter())
        .map(|(d, p)| match (d, p) {
            (Some((doc, _)), Some(plan)) => Some(doc.render(&plan.verdicts, cfg.emit)),
            _ => None,
        })
        .collect();
    let keep: BooleanArray =
        plans.iter().map(|p| Some(p.as_ref().is_none_or(|p| p.kept() > 0 || cfg.keep_empty))).collect();
    let new_text: ArrayRef = match column.data_type() {
        DataType::LargeUtf8 => Arc::new(LargeStringArray::from(rendered)),
        _ => Arc::new(StringArray::from(rendered)),
    };
    let mut columns = batch.columns().to_vec();
    columns[state.text_at] = new_text;
    let arrow = |e: arrow_schema::ArrowError| Error::invalid(&state.path, e.to_string());
    let rebuilt = RecordBatch::try_new(batch.schema(), columns).map_err(arrow)?;
    arrow_select::filter::filter_record_batch(&rebuilt, &keep).map_err(arrow)
}

/// The shard's output: a temporary file renamed into place at the end.
enum Out {
    File {
        writer: Box<ArrowWriter<File>>,
        tmp: crate::write::TempPath,
        dest: std::path::PathBuf,
        /// In place: the original's metadata and the backup suffix.
        like: Option<Box<(fs::Metadata, Option<String>)>>,
    },
    Nowhere,
}

impl Out {
    fn open(cfg: &Config, shard: &Shard, schema: arrow_schema::SchemaRef, codec: Compression) -> Result<Out> {
        let (dest, like) = match &cfg.output {
            Output::Dir(out) => (out.join(&shard.rel), None),
            Output::InPlace { backup } => {
                let like = fs::metadata(&shard.path).map_err(|e| Error::io(&shard.path, e))?;
                (shard.path.clone(), Some(Box::new((like, backup.clone()))))
            }
            _ => return Ok(Out::Nowhere),
        };
        let (file, tmp) = crate::write::temp_beside(&dest)?;
        let codec = match codec {
            Compression::UNCOMPRESSED | Compression::SNAPPY => codec,
            Compression::GZIP(_) => Compression::GZIP(GzipLevel::default()),
            _ => Compression::ZSTD(ZstdLevel::default()),
        };
        let props = WriterProperties::builder().set_compression(codec).build();
        let writer = ArrowWriter::try_new(file, schema, Some(props)).map_err(|e| invalid(shard, e.to_string()))?;
        Ok(Out::File { writer: Box::new(writer), tmp, dest, like })
    }

    fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        if let Out::File { writer, dest, .. } = self {
            writer.write(batch).map_err(|e| Error::io(dest, std::io::Error::other(e.to_string())))?;
        }
        Ok(())
    }

    /// Completes the file and gives it its name; returns its size.
    /// `before` is called with the complete temporary file and its size
    /// just before the rename (an in-place run records what replaces the
    /// shard, see [`crate::index::ReplayLog`]).
    fn commit(self, before: impl FnOnce(&std::path::Path, u64) -> Result<()>) -> Result<u64> {
        let Out::File { writer, tmp, dest, like } = self else { return Ok(0) };
        writer.close().map_err(|e| Error::io(&dest, std::io::Error::other(e.to_string())))?;
        let size = fs::metadata(tmp.path()).map_or(0, |m| m.len());
        before(tmp.path(), size)?;
        if let Some((like, backup)) = like.map(|b| *b) {
            fs::set_permissions(tmp.path(), like.permissions()).map_err(|e| Error::io(&dest, e))?;
            if let Some(suffix) = backup {
                crate::write::make_backup(&dest, &suffix)?;
            }
        }
        tmp.persist(&dest)?;
        Ok(size)
    }
}
