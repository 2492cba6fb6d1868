//! The run: walk → parallel prepare → ordered decide → parallel write →
//! report. This module drives the steps; each step is a submodule:
//! `text` (text files in windows), `shard` (JSON Lines streamed in
//! batches), `decider` (the ordered decisions, explain, rejects, report
//! rows), `index_run` (the persistent index during a run). Every thread
//! of a run comes from the budget of [`crate::threads`], built here.
//!
//! # Determinism
//!
//! Inputs are processed in *windows* of consecutive files in corpus order.
//! Within a window, files are read, decoded, normalised, split and hashed in
//! parallel (`par_iter().map().collect()` keeps input order); then one thread
//! makes every keep/drop decision in corpus order ([`crate::dedup::Deduper::decide`]);
//! then the kept text is rendered and written in parallel, each file to its
//! own path. While window *k* is written, window *k+1* is prepared; without
//! an index, window *k+1* is also decided on the ordered thread while window
//! *k* is written and window *k+2* prepared (decisions stay in corpus order:
//! only the step that waits for them moves earlier). The output therefore
//! never depends on the number of threads or their timing.
//!
//! # Memory
//!
//! Bounded by the seen-set (see [`crate::dedup`]) plus one window being
//! written and one being prepared (and, without an index, one decided
//! ahead: three windows in flight): at most [`WINDOW_FILES`] files and about
//! [`WINDOW_BYTES`] of input each (a single larger file forms a window of its
//! own), each held as decoded text plus normalised paragraphs (about 2–3× its
//! size). Per-file report rows and the names of files (for `--explain`)
//! are kept too: `O(files)`, not `O(text)`. One file is held whole, so the
//! largest input (or `--max-bytes`) bounds the peak: a 1 GiB file without a
//! line break is one 1 GiB paragraph, held about three times over.
//!
//! # Faults
//!
//! A file that cannot be read or decoded is reported (path and reason, with
//! the byte offset when known) and skipped; the run goes on and exits 1. A
//! write error is fatal: the run stops with exit 2, the error names the
//! path, and the temporary file is removed, so no partial file ever carries
//! a final name. A closed stdout ends the run with [`Error::BrokenPipe`] (the
//! output is incomplete; the exit code says so). On SIGINT/SIGTERM
//! ([`crate::interrupt`]) no new file is read or written, the files in
//! flight are finished, and the run returns [`Error::Interrupted`].
//!
//! A JSONL shard that cannot be read to its end keeps every complete line
//! before the damage (written with `--out` or to stdout); in place it is
//! left as it was. Side files are in [`crate::side`], the backups of
//! in-place runs in [`crate::backups`].

use std::fs;
use std::io::{self, BufRead, IsTerminal, Read};
use std::path::{Path, PathBuf};
use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};

use crate::backups;
use crate::config::{Config, Input, Output};
use crate::diag::diag;
use crate::error::{Error, Result};
use crate::formats::Kind;
use crate::jsonl::{self, Format};
use crate::report::{FileRow, Report};
use crate::side::SideFile;
use crate::threads::Budget;
use crate::walk::InputFile;
use crate::write::stream::finish_stdout;
use crate::write::{Staged, create_out_dir, remove_empty_dirs};

mod decider;
pub mod index_run;
mod inputs;
mod parquet_run;
mod records;
mod replay;
pub(crate) mod scaled;
mod shard;
mod text;

use decider::Decider;
use index_run::IndexRun;
use shard::{Shard, fail_shard, run_shard};
use text::{decide_window, emit, prepare_bytes, run_text_files};

pub use shard::{BATCH_BYTES_PER_THREAD, BATCH_LINES_PER_THREAD, FIRST_BATCH_BYTES, FIRST_BATCH_LINES, batch_limits};
pub use text::{WINDOW_BYTES, WINDOW_FILES};

/// Runs the configured job and returns its report. Per-input failures are in
/// the report (and printed on stderr); an `Err` is a fatal error.
///
/// Order: every check that can be made (paths, the index opened, locked and
/// probed, the side files' temporaries created); the outputs; the explain
/// and rejects files; the report; the index commit, last, after which
/// nothing can fail.
pub fn run(cfg: &Config) -> Result<Report> {
    cfg.validate()?;
    let budget = Budget::of_run(cfg);
    let pool = budget.pool()?;
    let started = Instant::now();
    let Finished { mut report, report_file, index } = pool.install(|| match &cfg.input {
        Input::Stdin => run_stdin_any(cfg, &budget),
        Input::Path(_) | Input::Paths(_) => run_tree(cfg, &budget, cfg.input.paths()),
    })?;
    report.threads = budget.threads();
    report.finish(started.elapsed());
    if let Some(mut out) = report_file {
        // Streamed: the report has a row per file, and a corpus of a
        // million files would otherwise hold its whole JSON text in memory.
        // The rows are serialised on the run's pool (`json::write_report`).
        pool.install(|| crate::report::json::write_report(&mut out, &report))
            .map_err(|e| Error::write(out.path(), e))?;
        out.write(b"\n")?;
        out.commit()?;
    }
    // The last step; nothing after it can fail.
    if let Some(index) = index {
        pool.install(|| index.commit(&report))?;
    }
    crate::threads::sample();
    Ok(report)
}

/// A run whose outputs are written, before its report and index commit.
struct Finished {
    report: Report,
    /// The report's temporary file, created when the run started.
    report_file: Option<SideFile>,
    index: Option<IndexRun>,
}

/// Standard input under `--format auto`: JSON Lines when its first line is
/// a JSON object, one text document otherwise.
fn run_stdin_any(cfg: &Config, budget: &Budget) -> Result<Finished> {
    let mut first = Vec::new();
    if cfg.format == Format::Auto {
        io::stdin().lock().read_until(b'\n', &mut first).map_err(|e| Error::io(Path::new("<stdin>"), e))?;
    }
    let jsonl = cfg.format == Format::Jsonl || (cfg.format == Format::Auto && jsonl::looks_like_jsonl(&first));
    let input = io::Cursor::new(first).chain(io::stdin());
    match (jsonl, cfg.format) {
        (_, Format::Csv) => run_stdin_jsonl(cfg, budget, Kind::Csv, Box::new(input)),
        (_, Format::Parquet) => run_stdin_jsonl(cfg, budget, Kind::Parquet, Box::new(input)),
        (true, _) => run_stdin_jsonl(cfg, budget, Kind::Jsonl, Box::new(input)),
        _ => run_stdin(cfg, budget, input),
    }
}

fn progress_bar(cfg: &Config, total: u64) -> ProgressBar {
    if cfg.quiet || !cfg.progress || !io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(total);
    let style = ProgressStyle::with_template("{bar:40} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}")
        .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style);
    bar
}

fn run_tree(cfg: &Config, budget: &Budget, roots: &[PathBuf]) -> Result<Finished> {
    let mut metas = Vec::with_capacity(roots.len());
    for root in roots {
        let meta = fs::metadata(root).map_err(|e| Error::io(root, e))?;
        let linked = fs::symlink_metadata(root).is_ok_and(|m| m.file_type().is_symlink());
        if linked && meta.is_file() && matches!(cfg.output, Output::InPlace { .. }) {
            return Err(Error::Invalid {
                path: root.to_path_buf(),
                message: "is a symbolic link; give --in-place the file itself (the link would be replaced)".into(),
            });
        }
        metas.push(meta);
    }
    if roots.len() > 1 {
        inputs::check_names(roots)?;
    }
    // A new --out is staged: written under a hidden name, renamed when the
    // run ends (`write/stage.rs`). An existing one is written in place.
    let staged = match &cfg.output {
        Output::Dir(out) => Staged::create(out)?,
        _ => None,
    };
    if let Some(staged) = staged {
        let cfg = Config { output: Output::Dir(staged.path().to_path_buf()), ..cfg.clone() };
        return staged.finish(run_listing(&cfg, budget, roots, &metas, true));
    }
    let created = match &cfg.output {
        Output::Dir(out) => create_out_dir(out)?,
        _ => None,
    };
    let result = run_listing(cfg, budget, roots, &metas, false);
    if let (Err(_), Some(dir)) = (&result, created) {
        // A refused or failed run leaves no empty --out behind.
        remove_empty_dirs(&dir);
    }
    result
}

/// A single input file not named as JSONL whose first line is a JSON
/// object is JSON Lines under `--format auto`.
fn sniff_single_file(cfg: &Config, root: &Path, meta: &fs::Metadata) -> Option<Config> {
    let unnamed = meta.is_file() && cfg.format == Format::Auto && Kind::of(root, cfg.format).is_none();
    let first = if unnamed { jsonl::first_line(root, 1 << 24).ok()? } else { return None };
    jsonl::looks_like_jsonl(&first).then(|| Config { format: Format::Jsonl, ..cfg.clone() })
}

/// `fresh_out`: the `--out` folder is staged by this run (see
/// [`Decider::fresh_out`]).
fn run_listing(
    cfg: &Config,
    budget: &Budget,
    roots: &[PathBuf],
    metas: &[fs::Metadata],
    fresh_out: bool,
) -> Result<Finished> {
    let sniffed = match (roots, metas) {
        ([root], [meta]) => sniff_single_file(cfg, root, meta),
        _ => None,
    };
    let cfg = sniffed.as_ref().unwrap_or(cfg);
    let in_place = matches!(cfg.output, Output::InPlace { .. });
    let (mut listing, left_alone) = inputs::walk_all(roots, metas, &cfg.walk, in_place)?;
    if cfg.output == Output::Stdout && roots.len() > 1 && listing.files.iter().any(|f| !is_jsonl(f, cfg)) {
        let names: Vec<_> = roots.iter().map(|r| r.display().to_string()).collect();
        let msg = format!("{}: several text files; give --out DIR (or --dry-run, or --in-place)", names.join(", "));
        return Err(crate::check::ConfigError::Usage(msg).into());
    }
    if let Output::InPlace { backup: Some(suffix) } = &cfg.output {
        backups::check(&mut listing, suffix)?;
    }
    let mut decider = Decider::new(cfg, budget)?;
    decider.fresh_out = fresh_out;
    decider.start_replay(inputs::mirrored_names(roots)?);
    if let Output::InPlace { backup: Some(suffix) } = &cfg.output {
        backups::record(&listing.files, suffix)?;
    }
    // The names the report's rows are sorted by that their rows' (lossy)
    // paths do not spell (see `Report::sort_rows`).
    let mut rels: Vec<PathBuf> = listing
        .skipped
        .iter()
        .map(|s| &s.rel)
        .chain(listing.files.iter().map(|f| &f.rel))
        .filter(|r| r.to_str().is_none())
        .cloned()
        .collect();
    // One row per input, reserved at once: grown by doubling, the rows of the
    // bench tree (182,715 of 336 bytes, 61 MB) were copied into fresh pages at
    // each step, twice their size touched on the ordered step (~7% of a run's
    // samples, most of them page zeroing; 3% with the reservation).
    decider.report.files.reserve(listing.skipped.len() + listing.files.len());
    // Their pages faulted in on the pool now, not row by row on the
    // ordered step between two windows.
    crate::threads::touch_spare(&mut decider.report.files);
    // And a document a file, at least.
    decider.expect_documents(listing.files.len(), 0);
    for s in listing.skipped {
        if s.failure || !cfg.quiet {
            diag!("newsdedup: {}", s.error);
        }
        decider.report.push(FileRow::skipped(&s.rel, &s.error, s.failure));
    }
    let bytes = listing.files.iter().map(|f| f.size).sum();
    decider.expect_input(bytes);
    let bar = progress_bar(cfg, bytes);
    run_files(cfg, &mut decider, &listing.files, &bar)?;
    bar.finish_and_clear();
    // Files removed in place by an earlier run of the batch, sorting last.
    decider.replay_before(None)?;
    rels.append(&mut decider.replay.rels);
    let mut finished = decider.finish()?;
    finished.report.backups_left_alone = left_alone;
    finished.report.sort_rows(&rels);
    Ok(finished)
}

/// The files of a listing, in corpus order: runs of text files in windows,
/// record shards one by one (also one shard of a scale-out run, see
/// [`scaled`]).
fn run_files(cfg: &Config, decider: &mut Decider, files: &[InputFile], bar: &ProgressBar) -> Result<()> {
    let mut stdout: Option<jsonl::Sink> = None;
    let mut rest = files;
    while let Some(first) = rest.first() {
        if is_jsonl(first, cfg) {
            let kind = Kind::of(&first.rel, cfg.format).unwrap_or(Kind::Jsonl);
            let shard = Shard { path: first.path.clone(), rel: first.rel.clone(), kind, size: Some(first.size) };
            match cfg.max_bytes {
                Some(limit) if first.size > limit => {
                    let err = Error::TooLarge { path: first.path.clone(), size: first.size, limit };
                    decider.input(&first.rel)?;
                    fail_shard(
                        decider,
                        FileRow { path: first.rel.to_string_lossy().into_owned(), ..FileRow::default() },
                        err,
                    );
                }
                _ => run_shard(cfg, decider, &shard, None, &mut stdout)?,
            }
            bar.inc(first.size);
            rest = &rest[1..];
        } else {
            let n = rest.iter().position(|f| is_jsonl(f, cfg)).unwrap_or(rest.len());
            run_text_files(cfg, decider, &rest[..n], bar)?;
            rest = &rest[n..];
        }
    }
    finish_stdout(stdout)
}

/// True for a record shard (JSON Lines, CSV or Parquet), false for a text file.
fn is_jsonl(file: &InputFile, cfg: &Config) -> bool {
    Kind::of(&file.rel, cfg.format).is_some()
}

fn run_stdin(cfg: &Config, budget: &Budget, mut input: impl Read) -> Result<Finished> {
    let mut bytes = Vec::new();
    input.read_to_end(&mut bytes).map_err(|e| Error::io(Path::new("<stdin>"), e))?;
    let file = InputFile { path: "<stdin>".into(), rel: "<stdin>".into(), size: bytes.len() as u64 };
    let mut decider = Decider::new(cfg, budget)?;
    let prepared = prepare_bytes(&file, bytes, cfg, decider.index.as_ref()).map_err(|e| Box::new((file.clone(), e)));
    let decided = decide_window(&mut decider, vec![prepared])?;
    for d in &decided {
        let row = emit(d, cfg, false)?;
        decider.report.push(row);
    }
    decider.finish()
}

fn run_stdin_jsonl(cfg: &Config, budget: &Budget, kind: Kind, input: Box<dyn Read + Send>) -> Result<Finished> {
    let mut decider = Decider::new(cfg, budget)?;
    let mut stdout = None;
    let shard = Shard { path: "-".into(), rel: "<stdin>".into(), kind, size: None };
    let reader = jsonl::reader(input, jsonl::Compression::None).map_err(|e| Error::io(Path::new("<stdin>"), e))?;
    run_shard(cfg, &mut decider, &shard, Some(reader), &mut stdout)?;
    finish_stdout(stdout)?;
    decider.finish()
}
