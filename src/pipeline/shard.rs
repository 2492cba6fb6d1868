//! JSON Lines in a run: one shard (a file, or standard input) streamed in
//! batches of lines. Each batch is read, parsed and prepared by any thread,
//! then decided in line order by the [`Decider`], rendered in parallel and
//! written in order ([`ShardOut`]); every thread takes whichever of these
//! is due ([`pipe`]).

use std::io::{self, BufRead};
use std::path::{Path, PathBuf};

use rayon::prelude::*;

use super::decider::Decider;
use super::index_run::IndexRun;
use super::records::{DecidedRecord, account};
use crate::config::{Config, Output};
use crate::diag::diag;
use crate::error::{Error, Result};
use crate::formats::{Kind, Parser, Source};
use crate::interrupt;
use crate::jsonl::{self, Format, LineReader, SharedLine};
use crate::report::{FileRow, Stats};
use crate::write::stream::ShardOut;

mod expect;
mod pipe;
mod prepare;
mod render;
use expect::{records_expected, reserve_for_shard};
pub(super) use prepare::Parsed;
use prepare::{look_up, prepare_batch, prepare_lines};
use render::render_line;

/// Records read per batch of a record shard (JSONL, CSV), at most, for
/// each thread of the pool ([`batch_limits`]).
pub const BATCH_LINES_PER_THREAD: usize = 192;
/// About this many bytes read per batch of a record shard, for each thread
/// of the pool ([`batch_limits`]).
pub const BATCH_BYTES_PER_THREAD: usize = 768 << 10;

/// The limits of a batch of a record shard on a pool of `threads` (counted
/// as two at least): records, and about this many bytes read.
///
/// A batch is read, then prepared (parsed, split, keyed: about four times
/// its bytes), decided and rendered, each step walking all of it. Small
/// enough that what a step leaves is still in the cache when the next step
/// reads it: on the bench's JSONL, 384 records (1.5 MiB) against the former
/// 2,048 (8 MiB) cut the user time of a run by a fifth (benches/JSONL.md,
/// fifteenth pass). Large enough that a batch's fixed costs (a turn in the
/// pipe, `pipe.rs`; a write) stay small; the limits grow with the pool, as its
/// caches do. After the first, the pipe reads half batches: one thread
/// prepares each while another decides the one before. A shard's first
/// batch is larger ([`FIRST_BATCH_LINES`]).
pub fn batch_limits(threads: usize) -> (usize, usize) {
    let threads = threads.max(2);
    (BATCH_LINES_PER_THREAD * threads, BATCH_BYTES_PER_THREAD * threads)
}

/// Records read in a shard's first batch, at most, whatever the pool: the
/// check for a misconfiguration ([`jsonl::Misfit`]: no record is a JSON
/// object, or none has the text field) looks at that batch, so how many
/// records it sees does not depend on the thread count. Once checked, it is
/// prepared in pieces of [`batch_limits`] like every later batch (prepared
/// whole, its 2,048 records took 11 MB more of peak RSS).
pub const FIRST_BATCH_LINES: usize = 2048;
/// About this many bytes read in a shard's first batch.
pub const FIRST_BATCH_BYTES: usize = 8 << 20;

/// Records rendered (in parallel) and written per step of a batch.
const RENDER_CHUNK: usize = 1024;
/// Consecutive records rendered into one buffer, at least.
const RENDER_RUN: usize = 64;

/// A record shard (JSONL, CSV or Parquet): a file or stdin (`-`).
pub(super) struct Shard {
    pub(super) path: PathBuf,
    pub(super) rel: PathBuf,
    pub(super) kind: Kind,
    /// Its size on disk as the walk found it; none for stdin.
    pub(super) size: Option<u64>,
}

impl Shard {
    /// The name used in messages: the path, or `<stdin>`.
    pub(super) fn name(&self) -> &Path {
        if self.path.as_os_str() == "-" { &self.rel } else { &self.path }
    }
}

/// A batch of lines (number, bytes as read without the `\n`) and, when
/// reading stopped on an error, that error: the lines before it are whole.
pub(super) type Batch = (Vec<(u64, SharedLine)>, Option<io::Error>);

/// Reads up to `max_lines` non-blank lines (or about `max_bytes`);
/// `next_line` counts every line.
/// Blank lines (a byte order mark and whitespace only) carry no record and
/// are skipped. A line cut short by a read error is not returned.
pub(super) fn read_batch(reader: &mut LineReader, next_line: &mut u64, max_lines: usize, max_bytes: usize) -> Batch {
    let mut batch = Vec::new();
    let mut bytes = 0;
    while batch.len() < max_lines && bytes < max_bytes {
        match reader.next_line() {
            Ok(None) => break,
            Ok(Some((line, len))) => {
                *next_line += 1;
                bytes += len;
                let body = line.strip_prefix("\u{FEFF}".as_bytes()).unwrap_or(&line);
                if !body.iter().all(u8::is_ascii_whitespace) {
                    batch.push((*next_line, line));
                }
            }
            Err(e) => return (batch, Some(e)),
        }
    }
    (batch, None)
}

/// Streams one JSONL shard: batches of lines are prepared in parallel,
/// decided in line order, rendered in parallel and written in order, while
/// the next batch is read.
pub(super) fn run_shard(
    cfg: &Config,
    decider: &mut Decider,
    shard: &Shard,
    stdin: Option<Box<dyn BufRead + Send>>,
    stdout: &mut Option<jsonl::Sink>,
) -> Result<()> {
    if shard.kind == Kind::Parquet {
        return super::parquet_run::run(cfg, decider, shard);
    }
    let input = decider.input(&shard.rel)?;
    let mut row = FileRow { path: shard.rel.to_string_lossy().into_owned(), ..FileRow::default() };
    let opened = match stdin {
        Some(r) => Ok(r),
        None => jsonl::open(&shard.path),
    };
    let reader = match opened {
        Ok(r) => r,
        Err(e) => {
            fail_shard(decider, row, Error::io(&shard.path, e));
            return Ok(());
        }
    };
    let (mut source, parser) =
        match Source::open(shard.kind, reader, &cfg.text_field, Some(&cfg.id_field), cfg.encoding) {
            Ok(opened) => opened,
            // The text column is missing: the configuration does not fit the data.
            Err(e) if e.kind() == io::ErrorKind::InvalidData => {
                return Err(Error::invalid(shard.name(), e.to_string()));
            }
            Err(e) => {
                fail_shard(decider, row, Error::io(shard.name(), e));
                return Ok(());
            }
        };
    if let (Some(field), Some((header, _))) = (&cfg.annotate, &parser.csv)
        && header.column(field).is_some()
    {
        let msg = format!("the header already has a column \"{field}\"; --annotate never overwrites a field");
        return Err(Error::invalid(shard.name(), msg));
    }
    let mut attributes = super::records::Attributes::open(cfg, shard)?;
    match &cfg.output {
        Output::Dir(out) => decider.sweep(out.join(&shard.rel).parent()),
        Output::InPlace { .. } => decider.sweep(shard.path.parent()),
        _ => {}
    }
    let mut out = ShardOut::open(&cfg.output, cfg.compress, &shard.path, &shard.rel, stdout)?;
    // Cleaned in place by an earlier run of the batch (hashed whole first,
    // only when a record names it): replayed (see `super::replay`).
    let hit = match &decider.index {
        Some(ix) if shard.path.as_os_str() != "-" => ix.replayed_file(&shard.rel, &shard.path),
        _ => None,
    };
    decider.replay_shard_begin(&shard.rel, hit)?;
    let header = parser.header(cfg.annotate.as_deref());
    row.stats.bytes_in += parser.csv.as_ref().map_or(0, |(h, _)| h.raw.len() as u64);
    row.stats.bytes_out += header.len() as u64;
    out.write(&header)?;
    let mut next_line = 0u64;
    let limits = batch_limits(rayon::current_num_threads());
    let mut batch = super::records::read_upto(&mut source, &mut next_line, FIRST_BATCH_LINES, FIRST_BATCH_BYTES);
    // With an index, the lookups are made while a batch is prepared: the
    // index's segments and pending keys do not change before the run's
    // commit. A shard cleaned in place by an earlier run is not run through
    // the pipe: its records are paired in order with what that run recorded
    // (see `super::replay`), a batch at a time.
    let lookup = decider.index.as_ref().map(IndexRun::lookup);
    let pipelined = decider.replaying_shard().is_none();
    let mut buffers = Vec::new();
    let mut first = true;
    // The records the shard is expected to hold, from its first batch; the
    // room for them is made once some are decided (`reserve_for_shard`).
    let mut expected: Option<usize> = None;
    let ids_before = decider.ids.len();
    // What is left of the first batch, last record first.
    let mut held = Vec::new();
    let damage = loop {
        before_batch(decider, &mut row, &mut expected, ids_before)?;
        let (mut current, damage) = batch;
        if first
            && shard.kind == Kind::Jsonl
            && let Some(misfit) = jsonl::Misfit::of(&current, &cfg.text_field)
        {
            let fatal = cfg.format == Format::Jsonl || shard.path.as_os_str() == "-" || misfit.is_config();
            let err = Error::invalid(shard.name(), misfit.to_string());
            if fatal {
                return Err(err);
            }
            fail_shard(decider, row, err);
            return Ok(()); // the temporary output is dropped: nothing written
        }
        if first && damage.is_none() {
            expected = shard.size.map(|size| records_expected(size, &current));
            // Checked: the rest of the first batch is read back as the
            // next batches are (`records::next_raw`).
            let mut size = 0;
            let cut = current.iter().take(limits.0).position(|(_, raw)| {
                size += raw.len();
                size >= limits.1
            });
            let mut rest = current.split_off(cut.map_or(current.len().min(limits.0), |i| i + 1));
            rest.reverse();
            held = rest;
        }
        first = false;
        let mut sink = BatchOut { out: &mut out, attributes: attributes.as_mut(), buffers: &mut buffers };
        if let Some(e) = damage {
            // Every complete line before the damage is cleaned and written.
            process_batch(cfg, decider, input, (shard, &parser), current, &mut sink, &mut row)?;
            break Some(e);
        }
        if pipelined {
            // The rest of the shard through the pipe, half batches at a
            // time: the batch decided and the next ones prepared overlap.
            let half = (limits.0 / 2, limits.1 / 2);
            let mut first_part = Some(current);
            let (held, source, next_line) = (&mut held, &mut source, &mut next_line);
            let read = move || match first_part.take() {
                Some(part) if !part.is_empty() => (part, None),
                _ => super::records::next_raw(held, source, next_line, half),
            };
            let parser = &parser;
            let prepare = |raw| prepare_batch(cfg, parser, lookup.as_ref(), raw);
            let row = &mut row;
            let finish = |lines| {
                before_batch(decider, row, &mut expected, ids_before)?;
                finish_batch(cfg, decider, input, (shard, parser), (lines, &[]), &mut sink, row)
            };
            break pipe::run(read, prepare, finish)?;
        }
        if current.is_empty() {
            break None;
        }
        let (done, upcoming) = rayon::join(
            || process_batch(cfg, decider, input, (shard, &parser), current, &mut sink, &mut row),
            || super::records::next_raw(&mut held, &mut source, &mut next_line, limits),
        );
        done?;
        batch = upcoming;
    };
    if let Some(e) = damage {
        // Every complete line before the damage was cleaned and written (so
        // no paragraph kept from them is lost), except in place: a shard
        // that could not be read to its end is never replaced.
        let in_place = out.is_in_place();
        let what = if in_place {
            drop(out);
            "the shard was left as it was"
        } else {
            out.commit()?;
            attributes.map_or(Ok(()), super::records::Attributes::commit)?;
            "the records before it were cleaned and written"
        };
        let kind = if e.kind() == io::ErrorKind::InvalidData { "invalid" } else { "io" };
        let err = Error::Record {
            path: shard.name().to_path_buf(),
            line: next_line + 1,
            message: format!("{e}; {what}"),
            kind,
        };
        fail_shard(decider, row, err);
        return Ok(());
    }
    decider.journal()?;
    decider.take_removed_records(input, None)?;
    row.status = if cfg.output == Output::DryRun { "dry-run" } else { "written" }.into();
    let replayed = decider.replaying_shard().and_then(|i| decider.replayed_row(i));
    out.commit_with(|tmp| decider.record_shard_end(tmp, &row))?;
    attributes.map_or(Ok(()), super::records::Attributes::commit)?;
    decider.report.push(replayed.unwrap_or(row));
    Ok(())
}

/// What comes before each batch of a shard is decided: a stop asked for
/// (Ctrl-C) ends the run, the temporary output dropped (removed) and the
/// index not touched; once some records are decided, room is made for the
/// rest of the shard (`expected` records, see `reserve_for_shard`).
fn before_batch(
    decider: &mut Decider,
    row: &mut FileRow,
    expected: &mut Option<usize>,
    ids_before: usize,
) -> Result<()> {
    if interrupt::requested() {
        return Err(Error::Interrupted);
    }
    if let Some(records) = expected.take_if(|_| row.stats.documents_read > 0) {
        reserve_for_shard(decider, row, records, ids_before);
    }
    Ok(())
}

pub(super) fn fail_shard(decider: &mut Decider, row: FileRow, err: Error) {
    if decider.prints_inputs() {
        diag!("newsdedup: {err}");
    }
    let mut failed = FileRow::failed(Path::new(&row.path), &err);
    failed.stats += row.stats;
    failed.dropped_records = row.dropped_records;
    failed.rejected_lines = row.rejected_lines;
    failed.rejected_ids = row.rejected_ids;
    decider.report.push(failed);
}

/// Where a decided batch goes: the shard's output and its attribute file.
struct BatchOut<'a, 'b> {
    out: &'a mut ShardOut<'b>,
    attributes: Option<&'a mut super::records::Attributes>,
    /// The render's buffers (clean text, rendered run), reused.
    buffers: &'a mut Vec<(String, Vec<u8>)>,
}

/// Prepares, decides, renders and writes a batch.
fn process_batch(
    cfg: &Config,
    decider: &mut Decider,
    input: u32,
    (shard, parser): (&Shard, &Parser),
    batch: Vec<(u64, SharedLine)>,
    sink: &mut BatchOut<'_, '_>,
    row: &mut FileRow,
) -> Result<()> {
    // A cleaned shard's records under their original line numbers (see
    // `super::replay`; `paired` is empty for any other shard).
    let paired = decider.pair_records(batch.len());
    let lookup = decider.index.as_ref().map(IndexRun::lookup);
    let ix = lookup.as_ref();
    let lines: Vec<Parsed> = if paired.is_empty() {
        prepare_batch(cfg, parser, ix, batch)
    } else {
        let original = |(n, raw): (u64, SharedLine), at| match decider.paired(at) {
            Some(d) => (d.line, raw, d.whole),
            None => (n, raw, None),
        };
        let items: Vec<_> = batch.into_iter().zip(paired.iter().copied()).map(|(b, at)| original(b, at)).collect();
        let mut lines = prepare_lines(items, cfg, parser);
        look_up(ix, &mut lines);
        lines
    };
    let lines = finish_batch(cfg, decider, input, (shard, parser), (lines, &paired), sink, row)?;
    // Freed by the workers that prepared it, off the ordered step.
    decider.frees.free(lines, |l| match l {
        Parsed::Doc { made_on, .. } => *made_on,
        Parsed::Rejected { .. } => None,
    });
    Ok(())
}

/// Decides a prepared batch in line order (`paired`: see [`process_batch`];
/// empty but for a replayed shard), renders it in parallel and writes it
/// in order; returns the batch, to be freed where it was made (a dozen
/// allocations per record: freed on another thread, each goes through
/// mimalloc's cross-thread path).
fn finish_batch(
    cfg: &Config,
    decider: &mut Decider,
    input: u32,
    (shard, parser): (&Shard, &Parser),
    (mut lines, paired): (Vec<Parsed>, &[Option<usize>]),
    sink: &mut BatchOut<'_, '_>,
    row: &mut FileRow,
) -> Result<Vec<Parsed>> {
    if let Some(field) = &cfg.annotate {
        for l in &lines {
            if let Parsed::Doc { line, record, .. } = l
                && parser.has_field(record, field)
            {
                let message = format!(
                    "the record already has a field \"{field}\"; --annotate never overwrites a field \
                     (choose another name with --annotate=FIELD); this shard is not written under its name"
                );
                return Err(Error::Record { path: shard.name().to_path_buf(), line: *line, message, kind: "invalid" });
            }
        }
    }
    let mut plans = Vec::with_capacity(lines.len());
    let mut recorded = Vec::new();
    let recording = decider.recording() && decider.replaying_shard().is_none();
    for k in 0..lines.len() {
        if let Some(Parsed::Doc { doc, .. }) = lines.get(k + 1) {
            decider.deduper.warm(&doc.keys, &doc.whole);
            if let Some(ix) = &decider.index
                && !decider.deduper.keeps_firsts_in_tables()
            {
                ix.warm(&doc.keys, &doc.whole);
            }
        }
        let at = paired.get(k).copied().flatten();
        decider.take_removed_records(input, at)?;
        match &mut lines[k] {
            Parsed::Doc { line, doc, history, repaired, bytes, id, .. } => {
                let id = id.take();
                let plan = decider.decide(input, (*line, id.as_deref()), doc, history.as_ref())?;
                decider.replay_record_end(at, &plan);
                let mut stats = Stats::of_plan(&plan);
                stats.bytes_in = *bytes;
                stats.inputs_repaired = u64::from(*repaired);
                let written = cfg.annotate.is_some() || plan.kept() > 0 || cfg.keep_empty;
                let r = DecidedRecord { line: *line, id, doc, plan: &plan, written };
                account(decider, cfg, r, stats, row, recording.then_some(&mut recorded));
                plans.push(Some(plan));
            }
            Parsed::Rejected { line, raw, error } => {
                if recording {
                    recorded.push(super::replay::rejected_doc(*line));
                }
                let id = parser.id_of_raw(raw);
                decider.reject(shard.name(), (*line, id), raw, &error.to_string(), row)?;
                plans.push(None);
            }
        }
    }
    // In place, a rejected line stays in the shard exactly as read: the
    // shard is its only copy (with --out, the input still holds it).
    let in_place = matches!(cfg.output, Output::InPlace { .. });
    // Rendered and written a slice at a time, so that a whole batch of
    // rendered records is never held besides the batch itself. Each worker
    // renders a run of consecutive records into one buffer of the shard's
    // (kept from batch to batch, so that steady state allocates none: a
    // buffer grown afresh for each run faulted in and zeroed new pages, a
    // tenth of a run's time); the runs are written in line order.
    for (lines, plans) in lines.chunks(RENDER_CHUNK).zip(plans.chunks(RENDER_CHUNK)) {
        let run = RENDER_RUN.max(lines.len().div_ceil(4 * rayon::current_num_threads()));
        let runs = lines.len().div_ceil(run);
        if sink.buffers.len() < runs {
            sink.buffers.resize_with(runs, Default::default);
        }
        let buffers = &mut sink.buffers[..runs];
        lines.par_chunks(run).zip(plans.par_chunks(run)).zip(buffers.par_iter_mut()).for_each(
            |((lines, plans), (text, out))| {
                out.clear();
                for (l, p) in lines.iter().zip(plans) {
                    render_line(l, p.as_ref(), (cfg, parser), text, out);
                    if let (true, Parsed::Rejected { raw, .. }) = (in_place, l) {
                        out.extend_from_slice(raw);
                        if parser.csv.is_none() {
                            out.push(b'\n');
                        }
                    }
                }
            },
        );
        for (_, out) in buffers.iter() {
            row.stats.bytes_out += out.len() as u64;
            sink.out.write(out)?;
        }
    }
    if let Some(attributes) = sink.attributes.as_mut() {
        attributes.write(parser, &lines, &plans)?;
    }
    if recording {
        decider.record_batch(&recorded)?;
    }
    // The plans (one list each) were made here.
    drop(plans);
    Ok(lines)
}
