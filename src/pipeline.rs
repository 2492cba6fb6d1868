//! The run: walk → parallel prepare → ordered decide → parallel write →
//! report. This is the only module that uses threads.
//!
//! # Determinism
//!
//! Inputs are processed in *windows* of consecutive files in corpus order.
//! Within a window, files are read, decoded, normalised, split and hashed in
//! parallel (`par_iter().map().collect()` keeps input order); then one thread
//! makes every keep/drop decision in corpus order ([`Deduper::decide`]);
//! then the kept text is rendered and written in parallel, each file to its
//! own path. While window *k* is written, window *k+1* is prepared. The
//! output therefore never depends on the number of threads or their timing.
//!
//! # Memory
//!
//! Bounded by the seen-set (see [`crate::dedup`]) plus one window being
//! written and one being prepared: at most [`WINDOW_FILES`] files and about
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
//! a final name. A closed stdout ends the run with [`BrokenPipe`] (the
//! output is incomplete; the exit code says so). On SIGINT/SIGTERM
//! ([`crate::interrupt`]) no new file is read or written, the files in
//! flight are finished, and the run returns [`Error::Interrupted`].
//!
//! A JSONL shard that cannot be read to its end keeps every complete line
//! before the damage (written with `--out` or to stdout); in place it is
//! left as it was. Side files are in [`crate::side`], the backups of
//! in-place runs in [`crate::backups`].

use std::fs::{self, File};
use std::io::{self, BufRead, IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context as _;
use indicatif::{ProgressBar, ProgressStyle};
use rayon::prelude::*;
use serde::Serialize;

use crate::backups;
use crate::config::{Config, Input, Output};
use crate::dedup::{Deduper, EARLIER_RUN, History, Plan, Verdict};
use crate::diag::diag;
use crate::document::Document;
use crate::error::Error;
use crate::interrupt;
use crate::jsonl::{self, Format, Record, RecordError};
use crate::read::{Decoding, decode};
use crate::report::{DroppedRecord, FileRow, Report, Stats, unwritten_status};
use crate::side::{self, SideFile};
use crate::walk::{InputFile, walk};
use crate::write::{
    check_out_dir, create_out_dir, remove_empty_dirs, remove_in_place, replace_in_place, sweep_stale_temps,
    write_atomic,
};

pub mod index_run;
use index_run::{IndexRun, history};

/// Most files in one window.
pub const WINDOW_FILES: usize = 2048;
/// About this many input bytes in one window.
pub const WINDOW_BYTES: u64 = 64 << 20;

/// Runs the configured job and returns its report. Per-input failures are in
/// the report (and printed on stderr); an `Err` is a fatal error.
///
/// Order: every check that can be made (paths, the index opened, locked and
/// probed, the side files' temporaries created); the outputs; the explain
/// and rejects files; the report; the index commit, last, after which
/// nothing can fail.
pub fn run(cfg: &Config) -> anyhow::Result<Report> {
    let pool =
        rayon::ThreadPoolBuilder::new().num_threads(cfg.threads).build().context("cannot start worker threads")?;
    side::check_paths(cfg)?;
    let started = Instant::now();
    let Finished { mut report, report_file, index } = pool.install(|| match &cfg.input {
        Input::Stdin => run_stdin_any(cfg),
        Input::Path(root) => run_tree(cfg, root),
    })?;
    report.threads = pool.current_num_threads();
    report.finish(started.elapsed());
    if let Some(mut out) = report_file {
        // Streamed: the report has a row per file, and a corpus of a
        // million files would otherwise hold its whole JSON text in memory.
        serde_json::to_writer_pretty(&mut out, &report).map_err(|e| side_error(cfg.report.as_deref(), e.into()))?;
        out.write(b"\n").map_err(side_error_of)?;
        out.commit().map_err(side_error_of)?;
    }
    // The last step; nothing after it can fail.
    if let Some(index) = index {
        index.commit(&report)?;
    }
    Ok(report)
}

/// A run whose outputs are written, before its report and index commit.
struct Finished {
    report: Report,
    /// The report's temporary file, created when the run started.
    report_file: Option<SideFile>,
    index: Option<IndexRun>,
}

/// A side-file error; a closed stdout (`--report -`) is a [`BrokenPipe`].
fn side_error(path: Option<&Path>, e: io::Error) -> anyhow::Error {
    if e.kind() == io::ErrorKind::BrokenPipe {
        return BrokenPipe.into();
    }
    Error::io(path.unwrap_or(Path::new("-")), e).into()
}

fn side_error_of(e: Error) -> anyhow::Error {
    match e {
        Error::Io { cause, .. } if cause.kind() == io::ErrorKind::BrokenPipe => BrokenPipe.into(),
        e => e.into(),
    }
}

/// Standard input under `--format auto`: JSON Lines when its first line is
/// a JSON object, one text document otherwise.
fn run_stdin_any(cfg: &Config) -> anyhow::Result<Finished> {
    let mut first = Vec::new();
    if cfg.format == Format::Auto {
        io::stdin().lock().read_until(b'\n', &mut first).context("<stdin>: cannot read")?;
    }
    let jsonl = cfg.format == Format::Jsonl || (cfg.format == Format::Auto && jsonl::looks_like_jsonl(&first));
    let input = io::Cursor::new(first).chain(io::stdin());
    if jsonl { run_stdin_jsonl(cfg, Box::new(input)) } else { run_stdin(cfg, input) }
}

/// A document read and prepared, not yet decided.
struct Prepared {
    file: InputFile,
    doc: Document,
    history: Option<History>,
    bytes_in: u64,
    decoding: Decoding,
}

/// A prepared document with its plan.
struct Decided {
    prepared: Prepared,
    plan: Plan,
    duplicate_of: Option<String>,
}

/// Reads and prepares one file.
fn prepare_file(file: &InputFile, cfg: &Config, ix: Option<&IndexRun>) -> Result<Prepared, Error> {
    prepare_bytes(file, read_limited(file, cfg.max_bytes)?, cfg, ix)
}

/// Decodes, splits, keys and looks up one document read from `file`.
fn prepare_bytes(file: &InputFile, bytes: Vec<u8>, cfg: &Config, ix: Option<&IndexRun>) -> Result<Prepared, Error> {
    let bytes_in = bytes.len() as u64;
    let (text, decoding) =
        decode(bytes, cfg.encoding).map_err(|source| Error::Decode { path: file.path.clone(), cause: source })?;
    let doc = Document::prepare(text, &cfg.text);
    let history = ix.map(|ix| history(ix, &doc));
    Ok(Prepared { file: file.clone(), doc, bytes_in, decoding, history })
}

/// Reads a whole file in four system calls (open, read, read to see the
/// end, close): the size from the walk sizes the buffer, so no `fstat` or
/// `lseek` is needed (`File::read_to_end` would make both). A file that
/// changed size since the walk is still read whole; the limit is enforced on
/// what is actually read.
fn read_limited(file: &InputFile, max: Option<u64>) -> Result<Vec<u8>, Error> {
    let path = &file.path;
    if let Some(limit) = max
        && file.size > limit
    {
        return Err(Error::TooLarge { path: path.to_path_buf(), size: file.size, limit });
    }
    let f = File::open(path).map_err(|e| Error::io(path, e))?;
    let mut buf = Vec::with_capacity(file.size as usize + 1);
    // `Take` has no size-probing specialisation: it reads straight into `buf`.
    f.take(max.map_or(u64::MAX, |limit| limit + 1)).read_to_end(&mut buf).map_err(|e| Error::io(path, e))?;
    if let Some(limit) = max
        && buf.len() as u64 > limit
    {
        return Err(Error::TooLarge { path: path.to_path_buf(), size: buf.len() as u64, limit });
    }
    Ok(buf)
}

/// The sequential part of a run: the seen-set, document names, the explain
/// and rejects files, the report.
struct Decider {
    deduper: Deduper,
    /// Input names (relative paths), by input number.
    inputs: Vec<String>,
    /// Document number -> (input number, line; 0 for a whole file): 16
    /// bytes per document, so names are not stored per record.
    docs: Vec<(u32, u64)>,
    explain: Option<SideFile>,
    /// `--explain-spared`: spared short repeats are listed too.
    explain_spared: bool,
    rejects: Option<SideFile>,
    /// `--report`: created at the start, written after everything else.
    report_file: Option<SideFile>,
    /// The persistent index, when `--index` is given.
    index: Option<IndexRun>,
    /// Folders already rid of stale temporary files.
    swept: std::collections::HashSet<PathBuf>,
    report: Report,
}

#[derive(Serialize)]
struct ExplainLine<'a> {
    file: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    line: Option<u64>,
    paragraph: usize,
    key: String,
    first_file: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    first_line: Option<u64>,
    /// Absent when the first occurrence is in an earlier batch.
    #[serde(skip_serializing_if = "Option::is_none")]
    first_paragraph: Option<u32>,
    /// The earlier batch holding the first occurrence (`first_file` is then `<index>`).
    #[serde(skip_serializing_if = "Option::is_none")]
    first_batch: Option<String>,
    reason: &'static str,
    /// Only on spared lines (`--explain-spared`): the paragraph was kept.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    kept: bool,
}

impl Decider {
    fn new(cfg: &Config) -> anyhow::Result<Decider> {
        let mut deduper = Deduper::new(cfg.rules);
        let index = IndexRun::open(cfg)?;
        if let Some(ix) = &index {
            deduper.set_batch(ix.batch_number());
            if ix.records() {
                deduper.record_new_firsts();
            }
        }
        Ok(Decider {
            deduper,
            inputs: Vec::new(),
            docs: Vec::new(),
            explain: SideFile::create(&cfg.explain)?,
            explain_spared: cfg.explain_spared,
            rejects: SideFile::create(&cfg.rejects)?,
            report_file: SideFile::create(&cfg.report)?,
            index,
            swept: std::collections::HashSet::new(),
            report: Report::default(),
        })
    }

    /// `--in-place` with `--index`: journals the first occurrences decided so
    /// far, before the files holding them are replaced.
    fn journal(&mut self) -> anyhow::Result<()> {
        self.index.as_mut().map_or(Ok(()), IndexRun::flush)
    }

    /// Removes stale temporary files from a folder this run writes to, once.
    fn sweep(&mut self, dir: Option<&Path>) {
        let dir = dir.unwrap_or(Path::new("."));
        if self.swept.insert(dir.to_path_buf()) {
            sweep_stale_temps(dir);
        }
    }

    /// Registers an input (file or shard) and returns its number.
    fn input(&mut self, rel: &Path) -> u32 {
        self.inputs.push(rel.to_string_lossy().into_owned());
        u32::try_from(self.inputs.len() - 1).unwrap_or(u32::MAX)
    }

    /// `file`, or `file:line` for a JSONL record.
    fn doc_name(&self, doc: u32) -> String {
        if doc == EARLIER_RUN {
            return "<index>".to_owned();
        }
        let (input, line) = self.docs[doc as usize];
        let name = &self.inputs[input as usize];
        if line == 0 { name.clone() } else { format!("{name}:{line}") }
    }

    /// Decides one document (`line` is 0 for a whole file).
    fn decide(&mut self, input: u32, line: u64, doc: &Document, history: Option<&History>) -> anyhow::Result<Plan> {
        if self.docs.len() >= EARLIER_RUN as usize {
            anyhow::bail!("more than {} documents in one run; split the input into several runs", EARLIER_RUN - 1);
        }
        let plan = self.deduper.decide_with_history(&doc.keys, &doc.whole, history);
        self.docs.push((input, line));
        if let Some(ix) = &mut self.index {
            ix.add(self.deduper.take_new_firsts());
        }
        if self.explain.is_some() {
            self.explain(doc, &plan, history)?;
        }
        Ok(plan)
    }

    /// One explain line per dropped paragraph, and per spared short repeat
    /// with `--explain-spared`.
    fn explain(&mut self, doc: &Document, plan: &Plan, history: Option<&History>) -> anyhow::Result<()> {
        let Some(out) = self.explain.as_mut() else { return Ok(()) };
        let (input, line) = self.docs[plan.doc as usize];
        for (i, v) in plan.verdicts.iter().enumerate() {
            let (first, reason, kept) = match *v {
                Verdict::Drop { reason, first } => (first, reason.as_str(), false),
                Verdict::Spared { first } if self.explain_spared => (first, "spared", true),
                _ => continue,
            };
            let (first_file, first_line, first_batch) = match self.docs.get(first.doc as usize) {
                Some(&(i, l)) => (self.inputs[i as usize].as_str(), l, None),
                None => {
                    let entry = history.and_then(|h| h.paragraphs.get(i).copied().flatten().or(h.document));
                    let batch = entry.zip(self.index.as_ref()).map(|(e, ix)| ix.batch_name(e.batch));
                    ("<index>", 0, batch)
                }
            };
            let entry = ExplainLine {
                file: &self.inputs[input as usize],
                line: (line > 0).then_some(line),
                paragraph: i,
                key: doc.keys[i].digest.to_hex(),
                first_file,
                first_line: (first_line > 0).then_some(first_line),
                first_paragraph: first_batch.is_none().then_some(first.para),
                first_batch,
                reason,
                kept,
            };
            let mut line = serde_json::to_vec(&entry)?;
            line.push(b'\n');
            out.write(&line).map_err(side_error_of)?;
        }
        Ok(())
    }

    /// Records a rejected JSONL line: stderr, the rejects file (the line
    /// exactly as read, with a line break), the row.
    fn reject(&mut self, shard: &Path, line: u64, raw: &[u8], error: &str, row: &mut FileRow) -> anyhow::Result<()> {
        diag!("newsdedup: {}:{line}: {error}", shard.display());
        if let Some(out) = self.rejects.as_mut() {
            out.write(raw).map_err(side_error_of)?;
            out.write(b"\n").map_err(side_error_of)?;
        }
        row.stats.records_rejected += 1;
        row.rejected_lines.push(line);
        Ok(())
    }

    /// Publishes the explain and rejects files; the report and the index
    /// commit are left to [`run`], in that order.
    fn finish(mut self) -> anyhow::Result<Finished> {
        for side in [self.explain.take(), self.rejects.take()].into_iter().flatten() {
            side.commit().map_err(side_error_of)?;
        }
        self.report.distinct_keys = self.deduper.distinct_keys() as u64;
        Ok(Finished { report: self.report, report_file: self.report_file, index: self.index })
    }
}

/// Splits the sorted file list into windows.
fn windows(files: &[InputFile]) -> Vec<&[InputFile]> {
    let mut out = Vec::new();
    let (mut start, mut bytes) = (0, 0u64);
    for (i, f) in files.iter().enumerate() {
        if i > start && (i - start >= WINDOW_FILES || bytes + f.size > WINDOW_BYTES) {
            out.push(&files[start..i]);
            start = i;
            bytes = 0;
        }
        bytes += f.size;
    }
    if start < files.len() {
        out.push(&files[start..]);
    }
    out
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

fn run_tree(cfg: &Config, root: &Path) -> anyhow::Result<Finished> {
    let meta = fs::metadata(root).map_err(|e| Error::io(root, e))?;
    let linked = fs::symlink_metadata(root).is_ok_and(|m| m.file_type().is_symlink());
    if linked && meta.is_file() && matches!(cfg.output, Output::InPlace { .. }) {
        anyhow::bail!(
            "{}: is a symbolic link; give --in-place the file itself (the link would be replaced)",
            root.display()
        );
    }
    let created = match &cfg.output {
        Output::Dir(out) => {
            check_out_dir(root, out)?;
            create_out_dir(out)?
        }
        Output::Stdout if meta.is_dir() => {
            anyhow::bail!("{}: is a directory; give --out DIR (or --dry-run, or --in-place)", root.display())
        }
        _ => None,
    };
    let result = run_listing(cfg, root, &meta);
    if let (Err(_), Some(dir)) = (&result, created) {
        // A refused or failed run leaves no empty --out behind.
        remove_empty_dirs(&dir);
    }
    result
}

/// A single input file not named as JSONL whose first line is a JSON
/// object is JSON Lines under `--format auto`.
fn sniff_single_file(cfg: &Config, root: &Path, meta: &fs::Metadata) -> Option<Config> {
    let unnamed = meta.is_file() && cfg.format == Format::Auto && !jsonl::is_jsonl_name(root);
    let first = if unnamed { jsonl::first_line(root, 1 << 24).ok()? } else { return None };
    jsonl::looks_like_jsonl(&first).then(|| Config { format: Format::Jsonl, ..cfg.clone() })
}

fn run_listing(cfg: &Config, root: &Path, meta: &fs::Metadata) -> anyhow::Result<Finished> {
    let sniffed = sniff_single_file(cfg, root, meta);
    let cfg = sniffed.as_ref().unwrap_or(cfg);
    let mut listing = walk(root, &cfg.walk);
    let in_place = matches!(cfg.output, Output::InPlace { .. });
    let left_alone = backups::pass_over(&mut listing.files, meta.is_file(), in_place)?;
    if let Output::InPlace { backup: Some(suffix) } = &cfg.output {
        check_backups(&mut listing, suffix)?;
    }
    let mut decider = Decider::new(cfg)?;
    if let Output::InPlace { backup: Some(suffix) } = &cfg.output {
        backups::record(&listing.files, suffix)?;
    }
    let rels: Vec<PathBuf> =
        listing.skipped.iter().map(|s| s.rel.clone()).chain(listing.files.iter().map(|f| f.rel.clone())).collect();
    for s in listing.skipped {
        if s.failure || !cfg.quiet {
            diag!("newsdedup: {}", s.error);
        }
        decider.report.push(FileRow::skipped(&s.rel, &s.error, s.failure));
    }
    if cfg.output == Output::Stdout && meta.is_dir() && listing.files.iter().any(|f| !is_jsonl(f, cfg)) {
        anyhow::bail!("{}: is a directory of text files; give --out DIR (or --dry-run, or --in-place)", root.display())
    }
    let bar = progress_bar(cfg, listing.files.iter().map(|f| f.size).sum());
    let mut stdout: Option<jsonl::Sink> = None;
    let mut rest = &listing.files[..];
    while let Some(first) = rest.first() {
        if is_jsonl(first, cfg) {
            let shard = Shard { path: first.path.clone(), rel: first.rel.clone() };
            match cfg.max_bytes {
                Some(limit) if first.size > limit => {
                    let err = Error::TooLarge { path: first.path.clone(), size: first.size, limit };
                    decider.input(&first.rel);
                    fail_shard(
                        &mut decider,
                        FileRow { path: first.rel.to_string_lossy().into_owned(), ..FileRow::default() },
                        err,
                    );
                }
                _ => run_shard(cfg, &mut decider, &shard, None, &mut stdout)?,
            }
            bar.inc(first.size);
            rest = &rest[1..];
        } else {
            let n = rest.iter().position(|f| is_jsonl(f, cfg)).unwrap_or(rest.len());
            run_text_files(cfg, &mut decider, &rest[..n], &bar)?;
            rest = &rest[n..];
        }
    }
    finish_stdout(stdout)?;
    bar.finish_and_clear();
    let mut finished = decider.finish()?;
    finished.report.backups_left_alone = left_alone;
    finished.report.sort_rows(&rels);
    Ok(finished)
}

/// `--in-place --backup SUFFIX`: earlier backups are not inputs, and an
/// existing backup is never overwritten (a second run would otherwise
/// replace the original with the first run's output).
fn check_backups(listing: &mut crate::walk::Walk, suffix: &str) -> anyhow::Result<()> {
    let is_backup = |f: &InputFile| f.rel.as_os_str().as_encoded_bytes().ends_with(suffix.as_bytes());
    listing.files.retain(|f| !is_backup(f));
    for f in &listing.files {
        let mut name = f.path.as_os_str().to_owned();
        name.push(suffix);
        if Path::new(&name).exists() {
            anyhow::bail!(
                "{}: backup already exists; move it away or choose another --backup suffix (nothing was changed)",
                Path::new(&name).display()
            );
        }
    }
    Ok(())
}

fn is_jsonl(file: &InputFile, cfg: &Config) -> bool {
    match cfg.format {
        Format::Jsonl => true,
        Format::Text => false,
        Format::Auto => jsonl::is_jsonl_name(&file.rel),
    }
}

/// Text files, one document each, in windows (see the module docs).
fn run_text_files(cfg: &Config, decider: &mut Decider, files: &[InputFile], bar: &ProgressBar) -> anyhow::Result<()> {
    let windows = windows(files);
    let mut next = windows.first().map(|w| prepare_window(w, cfg, decider.index.as_ref()));
    for i in 0..windows.len() {
        if interrupt::requested() {
            return Err(Error::Interrupted.into());
        }
        let prepared = next.take().unwrap_or_default();
        let decided = decide_window(decider, prepared)?;
        decider.journal()?;
        for d in &decided {
            match &cfg.output {
                Output::Dir(out) => decider.sweep(out.join(&d.prepared.file.rel).parent()),
                Output::InPlace { .. } => decider.sweep(d.prepared.file.path.parent()),
                _ => {}
            }
        }
        let (rows, upcoming) = rayon::join(
            || decided.par_iter().map(|d| emit(d, cfg)).collect::<Vec<_>>(),
            || windows.get(i + 1).map(|w| prepare_window(w, cfg, decider.index.as_ref())),
        );
        next = upcoming;
        let mut stopped = None;
        for (d, row) in decided.iter().zip(rows) {
            let row = match row {
                Ok(row) => row,
                Err(e) if is_interruption(&e) => {
                    stopped = Some(e);
                    continue;
                }
                Err(e) => return Err(e),
            };
            bar.inc(d.prepared.bytes_in);
            decider.report.push(row);
        }
        if let Some(e) = stopped {
            return Err(e);
        }
    }
    Ok(())
}

type Window = Vec<Result<Prepared, (InputFile, Error)>>;

/// Prepares a window; once a stop is requested, files are no longer read
/// (the window is then discarded before any decision).
fn prepare_window(files: &[InputFile], cfg: &Config, ix: Option<&IndexRun>) -> Window {
    files
        .par_iter()
        .map(|f| {
            if interrupt::requested() {
                return Err((f.clone(), Error::Interrupted));
            }
            prepare_file(f, cfg, ix).map_err(|e| (f.clone(), e))
        })
        .collect()
}

fn is_interruption(e: &anyhow::Error) -> bool {
    matches!(e.downcast_ref::<Error>(), Some(Error::Interrupted))
}

/// The ordered step: decisions in corpus order; failed inputs are reported here.
fn decide_window(decider: &mut Decider, window: Window) -> anyhow::Result<Vec<Decided>> {
    let mut out = Vec::with_capacity(window.len());
    for item in window {
        match item {
            Ok(p) => {
                let input = decider.input(&p.file.rel);
                let plan = decider.decide(input, 0, &p.doc, p.history.as_ref())?;
                let duplicate_of = plan.duplicate_of.map(|d| decider.doc_name(d));
                out.push(Decided { prepared: p, plan, duplicate_of });
            }
            Err((file, err)) => {
                decider.input(&file.rel);
                diag!("newsdedup: {err}");
                decider.report.push(FileRow::failed(&file.rel, &err));
            }
        }
    }
    Ok(out)
}

/// Renders and writes one decided file; returns its report row. A write
/// error is fatal (`Err`): the run stops, and no partial file is left.
/// Once a stop is requested, nothing more is written (`Err(Interrupted)`).
fn emit(d: &Decided, cfg: &Config) -> anyhow::Result<FileRow> {
    if interrupt::requested() {
        return Err(Error::Interrupted.into());
    }
    let p = &d.prepared;
    let mut stats = Stats::of_plan(&d.plan);
    stats.bytes_in = p.bytes_in;
    stats.inputs_repaired = u64::from(p.decoding.first_invalid.is_some());
    let unwritten = unwritten_status(&d.plan);
    let status = match (unwritten, &cfg.output) {
        (Some(s), _) => s,
        (None, Output::DryRun) => "dry-run",
        (None, _) => "written",
    };
    if unwritten.is_some()
        && let Output::InPlace { backup } = &cfg.output
    {
        // Cleaning in place: a file with nothing left goes away (or becomes
        // its backup), as it would be absent from a mirrored --out tree.
        remove_in_place(&p.file.path, backup.as_deref())?;
    }
    if unwritten.is_none() {
        let mut bytes = Vec::with_capacity(p.doc.original.len());
        p.doc.render_into(&d.plan.verdicts, cfg.emit, &mut bytes);
        stats.bytes_out = bytes.len() as u64;
        match &cfg.output {
            Output::Dir(out) => write_atomic(&out.join(&p.file.rel), &bytes, None)?,
            Output::InPlace { backup } => replace_in_place(&p.file.path, &bytes, backup.as_deref())?,
            Output::Stdout => write_stdout(&bytes)?,
            Output::DryRun => {}
        }
        stats.documents_written = u64::from(cfg.output != Output::DryRun);
    }
    Ok(FileRow {
        path: p.file.rel.to_string_lossy().into_owned(),
        status: status.into(),
        duplicate_of: d.duplicate_of.clone(),
        error: None,
        repaired_at: p.decoding.first_invalid,
        stats,
        ..FileRow::default()
    })
}

/// Writes to stdout; a closed pipe stops the run ([`BrokenPipe`]).
fn write_stdout(bytes: &[u8]) -> anyhow::Result<()> {
    let mut out = io::stdout().lock();
    out.write_all(bytes).and_then(|()| out.flush()).map_err(stdout_error)
}

fn run_stdin(cfg: &Config, mut input: impl Read) -> anyhow::Result<Finished> {
    let mut bytes = Vec::new();
    input.read_to_end(&mut bytes).context("<stdin>: cannot read")?;
    let file = InputFile { path: "<stdin>".into(), rel: "<stdin>".into(), size: bytes.len() as u64 };
    let mut decider = Decider::new(cfg)?;
    let prepared = prepare_bytes(&file, bytes, cfg, decider.index.as_ref()).map_err(|e| (file.clone(), e));
    let decided = decide_window(&mut decider, vec![prepared])?;
    for d in &decided {
        let row = emit(d, cfg)?;
        decider.report.push(row);
    }
    decider.finish()
}

/// Lines read per batch of a JSONL shard, at most.
pub const BATCH_LINES: usize = 8192;
/// About this many bytes read per batch of a JSONL shard.
pub const BATCH_BYTES: usize = 32 << 20;

/// The consumer of stdout closed the pipe before everything was written:
/// the run stops, and the exit code says the output is incomplete.
#[derive(Debug, thiserror::Error)]
#[error(
    "standard output was closed before everything was written: the output is incomplete \
     (the report, the explain and rejects files and the index were not written)"
)]
pub struct BrokenPipe;

/// A JSONL input: a file or stdin (`-`).
struct Shard {
    path: PathBuf,
    rel: PathBuf,
}

impl Shard {
    /// The name used in messages: the path, or `<stdin>`.
    fn name(&self) -> &Path {
        if self.path.as_os_str() == "-" { &self.rel } else { &self.path }
    }
}

/// One line of a shard after preparation (parallel step).
// Nearly every line is a `Doc`; boxing it would only add an allocation.
#[allow(clippy::large_enum_variant)]
enum Line {
    Doc { line: u64, record: Record, doc: Document, history: Option<History>, repaired: bool, bytes: u64 },
    Rejected { line: u64, raw: Vec<u8>, error: RecordError },
}

/// Parses and prepares one line (`raw` exactly as read, without the `\n`).
fn prepare_line(line: u64, raw: Vec<u8>, cfg: &Config, ix: Option<&IndexRun>) -> Line {
    let bytes = raw.len() as u64 + 1;
    match Record::parse_bytes(raw, &cfg.text_field, cfg.encoding) {
        Ok((record, text, repaired)) => {
            let doc = Document::prepare(text, &cfg.text);
            let history = ix.map(|ix| history(ix, &doc));
            Line::Doc { line, record, doc, history, repaired, bytes }
        }
        Err((raw, error)) => Line::Rejected { line, raw, error },
    }
}

/// A batch of lines (number, bytes as read without the `\n`) and, when
/// reading stopped on an error, that error: the lines before it are whole.
type Batch = (Vec<(u64, Vec<u8>)>, Option<io::Error>);

/// Reads up to a batch of non-blank lines; `next_line` counts every line.
/// Blank lines (a byte order mark and whitespace only) carry no record and
/// are skipped. A line cut short by a read error is not returned.
fn read_batch(reader: &mut dyn io::BufRead, next_line: &mut u64) -> Batch {
    let mut batch = Vec::new();
    let mut bytes = 0;
    while batch.len() < BATCH_LINES && bytes < BATCH_BYTES {
        let mut buf = Vec::new();
        match reader.read_until(b'\n', &mut buf) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) => return (batch, Some(e)),
        }
        *next_line += 1;
        bytes += buf.len();
        if buf.last() == Some(&b'\n') {
            buf.pop();
        }
        let body = buf.strip_prefix("\u{FEFF}".as_bytes()).unwrap_or(&buf);
        if !body.iter().all(u8::is_ascii_whitespace) {
            batch.push((*next_line, buf));
        }
    }
    (batch, None)
}

/// What a decided record becomes.
fn render_line(line: &Line, plan: Option<&Plan>, cfg: &Config, out: &mut Vec<u8>) {
    let (Line::Doc { record, doc, .. }, Some(plan)) = (line, plan) else { return };
    if let Some(field) = &cfg.annotate {
        record.write_with_field(field, &annotation(doc, plan), out);
        return;
    }
    if plan.kept() == 0 && !cfg.keep_empty {
        return;
    }
    let mut text = Vec::with_capacity(doc.original.len());
    doc.render_into(&plan.verdicts, cfg.emit, &mut text);
    if text == doc.original.as_bytes() {
        // Nothing dropped, nothing normalised: the record as it was read.
        out.extend_from_slice(record.line());
        out.push(b'\n');
        return;
    }
    // Only whole `str` slices and ASCII line breaks were rendered: valid UTF-8.
    let text = String::from_utf8(text).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
    record.write_with_text(&text, out);
}

/// The `--annotate` value: dropped paragraphs as `[start, end, reason]` byte
/// spans of the text (deleting them gives the `--emit original` clean
/// text; see [`Document::removal_spans`]), plus counts.
fn annotation(doc: &Document, plan: &Plan) -> serde_json::Value {
    let spans: Vec<serde_json::Value> = doc
        .removal_spans(&plan.verdicts)
        .into_iter()
        .map(|(r, i)| {
            let reason = match plan.verdicts[i] {
                Verdict::Drop { reason, .. } => reason.as_str(),
                _ => "",
            };
            serde_json::json!([r.start, r.end, reason])
        })
        .collect();
    serde_json::json!({
        "spans": spans,
        "paragraphs": plan.verdicts.len(),
        "kept": plan.kept(),
        "dropped": plan.verdicts.len() - plan.kept(),
    })
}

/// Where a shard's output goes: a temporary file renamed into place at the
/// end (tree output, in-place), the shared stdout stream, or nowhere.
/// In place: the original's permissions, and the backup suffix if any.
struct InPlace {
    like: fs::Metadata,
    backup: Option<String>,
}

enum ShardOut<'a> {
    File { sink: Box<jsonl::Sink>, tmp: crate::write::TempPath, dest: PathBuf, in_place: Option<Box<InPlace>> },
    Stdout(&'a mut Option<jsonl::Sink>),
    Nowhere,
}

impl ShardOut<'_> {
    fn write(&mut self, bytes: &[u8]) -> anyhow::Result<()> {
        match self {
            ShardOut::File { sink, dest, .. } => sink.write_all(bytes).map_err(|e| Error::io(dest, e).into()),
            ShardOut::Stdout(Some(sink)) => sink.write_all(bytes).map_err(stdout_error),
            _ => Ok(()),
        }
    }

    fn commit(self) -> anyhow::Result<()> {
        if let ShardOut::File { sink, tmp, dest, in_place } = self {
            let file = sink.finish().map_err(|e| Error::io(&dest, e))?;
            drop(file);
            if let Some(InPlace { like, backup }) = in_place.map(|b| *b) {
                fs::set_permissions(tmp.path(), like.permissions()).map_err(|e| Error::io(&dest, e))?;
                if let Some(suffix) = backup {
                    crate::write::make_backup(&dest, &suffix)?;
                }
            }
            tmp.persist(&dest)?;
        }
        Ok(())
    }
}

fn stdout_error(e: io::Error) -> anyhow::Error {
    if e.kind() == io::ErrorKind::BrokenPipe {
        anyhow::Error::new(BrokenPipe)
    } else {
        anyhow::Error::new(e).context("<stdout>: cannot write")
    }
}

fn finish_stdout(stdout: Option<jsonl::Sink>) -> anyhow::Result<()> {
    match stdout {
        Some(sink) => sink.finish().map(drop).map_err(stdout_error),
        None => Ok(()),
    }
}

fn open_shard_out<'a>(
    cfg: &Config,
    shard: &Shard,
    stdout: &'a mut Option<jsonl::Sink>,
) -> anyhow::Result<ShardOut<'a>> {
    let (dest, in_place) = match &cfg.output {
        Output::DryRun => return Ok(ShardOut::Nowhere),
        Output::Stdout => {
            if stdout.is_none() {
                *stdout = Some(jsonl::Sink::new(Box::new(io::stdout()), cfg.compress).context("<stdout>")?);
            }
            return Ok(ShardOut::Stdout(stdout));
        }
        Output::Dir(out) => (out.join(&shard.rel), None),
        Output::InPlace { backup } => {
            let like = fs::metadata(&shard.path).map_err(|e| Error::io(&shard.path, e))?;
            (shard.path.clone(), Some(Box::new(InPlace { like, backup: backup.clone() })))
        }
    };
    let (file, tmp) = crate::write::temp_beside(&dest)?;
    let sink = jsonl::Sink::new(Box::new(file), jsonl::Compression::of_path(&dest)).map_err(|e| Error::io(&dest, e))?;
    Ok(ShardOut::File { sink: Box::new(sink), tmp, dest, in_place })
}

/// Streams one JSONL shard: batches of lines are prepared in parallel,
/// decided in line order, rendered in parallel and written in order, while
/// the next batch is read.
fn run_shard(
    cfg: &Config,
    decider: &mut Decider,
    shard: &Shard,
    stdin: Option<Box<dyn BufRead + Send>>,
    stdout: &mut Option<jsonl::Sink>,
) -> anyhow::Result<()> {
    let input = decider.input(&shard.rel);
    let mut row = FileRow { path: shard.rel.to_string_lossy().into_owned(), ..FileRow::default() };
    let opened = match stdin {
        Some(r) => Ok(r),
        None => jsonl::open(&shard.path),
    };
    let mut reader = match opened {
        Ok(r) => r,
        Err(e) => {
            fail_shard(decider, row, Error::io(&shard.path, e));
            return Ok(());
        }
    };
    match &cfg.output {
        Output::Dir(out) => decider.sweep(out.join(&shard.rel).parent()),
        Output::InPlace { .. } => decider.sweep(shard.path.parent()),
        _ => {}
    }
    let mut out = open_shard_out(cfg, shard, stdout)?;
    let mut next_line = 0u64;
    let mut batch = read_batch(&mut *reader, &mut next_line);
    let mut first = true;
    loop {
        if interrupt::requested() {
            // The temporary output is dropped (removed); the index is not touched.
            return Err(Error::Interrupted.into());
        }
        let (current, damage) = batch;
        if first && let Some(misfit) = jsonl::Misfit::of(&current, &cfg.text_field) {
            let fatal = cfg.format == Format::Jsonl || shard.path.as_os_str() == "-" || misfit.is_config();
            let err = Error::invalid(shard.name(), misfit.to_string());
            if fatal {
                return Err(err.into());
            }
            fail_shard(decider, row, err);
            return Ok(()); // the temporary output is dropped: nothing written
        }
        first = false;
        let Some(e) = damage else {
            if current.is_empty() {
                break;
            }
            let (done, upcoming) = rayon::join(
                || process_batch(cfg, decider, input, shard, current, &mut out, &mut row),
                || read_batch(&mut *reader, &mut next_line),
            );
            done?;
            batch = upcoming;
            continue;
        };
        // Every complete line before the damage is cleaned and written (so
        // no paragraph kept from them is lost), except in place: a shard
        // that could not be read to its end is never replaced.
        process_batch(cfg, decider, input, shard, current, &mut out, &mut row)?;
        let in_place = matches!(&out, ShardOut::File { in_place: Some(_), .. });
        let what = if in_place {
            drop(out);
            "the shard was left as it was"
        } else {
            out.commit()?;
            "the records before it were cleaned and written"
        };
        let cause = io::Error::new(e.kind(), format!("line {}: {e}; {what}", next_line + 1));
        fail_shard(decider, row, Error::io(shard.name(), cause));
        return Ok(());
    }
    decider.journal()?;
    out.commit()?;
    row.status = if cfg.output == Output::DryRun { "dry-run" } else { "written" }.into();
    decider.report.push(row);
    Ok(())
}

fn fail_shard(decider: &mut Decider, row: FileRow, err: Error) {
    diag!("newsdedup: {err}");
    let mut failed = FileRow::failed(Path::new(&row.path), &err);
    failed.stats += row.stats;
    failed.dropped_records = row.dropped_records;
    failed.rejected_lines = row.rejected_lines;
    decider.report.push(failed);
}

fn process_batch(
    cfg: &Config,
    decider: &mut Decider,
    input: u32,
    shard: &Shard,
    batch: Vec<(u64, Vec<u8>)>,
    out: &mut ShardOut<'_>,
    row: &mut FileRow,
) -> anyhow::Result<()> {
    let ix = decider.index.as_ref();
    let lines: Vec<Line> = batch.into_par_iter().map(|(n, raw)| prepare_line(n, raw, cfg, ix)).collect();
    if let Some(field) = &cfg.annotate {
        for l in &lines {
            if let Line::Doc { line, record, .. } = l
                && record.has_field(field)
            {
                let msg = format!(
                    "line {line}: the record already has a field \"{field}\"; --annotate never overwrites a field \
                     (choose another name with --annotate=FIELD); this shard is not written under its name"
                );
                return Err(Error::invalid(shard.name(), msg).into());
            }
        }
    }
    let mut plans = Vec::with_capacity(lines.len());
    for l in &lines {
        match l {
            Line::Doc { line, doc, history, repaired, bytes, .. } => {
                let plan = decider.decide(input, *line, doc, history.as_ref())?;
                let mut stats = Stats::of_plan(&plan);
                stats.bytes_in = *bytes;
                stats.inputs_repaired = u64::from(*repaired);
                let written = cfg.annotate.is_some() || plan.kept() > 0 || cfg.keep_empty;
                stats.documents_written = u64::from(written && cfg.output != Output::DryRun);
                if let (false, Some(status)) = (written, unwritten_status(&plan)) {
                    let duplicate_of = plan.duplicate_of.map(|d| decider.doc_name(d));
                    row.dropped_records.push(DroppedRecord { line: *line, status: status.into(), duplicate_of });
                }
                row.stats += stats;
                plans.push(Some(plan));
            }
            Line::Rejected { line, raw, error } => {
                decider.reject(shard.name(), *line, raw, &error.to_string(), row)?;
                plans.push(None);
            }
        }
    }
    let rendered: Vec<Vec<u8>> = lines
        .par_iter()
        .zip(plans.par_iter())
        .map(|(l, p)| {
            let mut buf = Vec::new();
            render_line(l, p.as_ref(), cfg, &mut buf);
            buf
        })
        .collect();
    // In place, a rejected line stays in the shard exactly as read: the
    // shard is its only copy (with --out, the input still holds it).
    let in_place = matches!(cfg.output, Output::InPlace { .. });
    for (l, mut r) in lines.iter().zip(rendered) {
        if let (true, Line::Rejected { raw, .. }) = (in_place, l) {
            r.extend_from_slice(raw);
            r.push(b'\n');
        }
        row.stats.bytes_out += r.len() as u64;
        out.write(&r)?;
    }
    Ok(())
}

fn run_stdin_jsonl(cfg: &Config, input: Box<dyn Read + Send>) -> anyhow::Result<Finished> {
    let mut decider = Decider::new(cfg)?;
    let mut stdout = None;
    let shard = Shard { path: "-".into(), rel: "<stdin>".into() };
    let reader = jsonl::reader(input, jsonl::Compression::None).context("<stdin>")?;
    run_shard(cfg, &mut decider, &shard, Some(reader), &mut stdout)?;
    finish_stdout(stdout)?;
    decider.finish()
}
#[cfg(test)]
mod tests {
    use super::*;

    /// What happens when a listed file vanishes, or is replaced by a folder,
    /// between the walk and the read (a race a test cannot time from outside).
    #[test]
    fn a_file_gone_or_replaced_after_the_walk_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = Config::new(Input::Path(dir.path().into()), Output::DryRun);
        let file = |name: &str| InputFile { path: dir.path().join(name), rel: name.into(), size: 10 };
        let gone = prepare_file(&file("gone.txt"), &cfg, None).err().unwrap();
        assert_eq!(gone.kind(), "not-found");
        assert!(gone.to_string().contains("gone.txt: No such file or directory"), "{gone}");
        fs::create_dir(dir.path().join("now-a-dir.txt")).unwrap();
        let dir_err = prepare_file(&file("now-a-dir.txt"), &cfg, None).err().unwrap();
        assert!(dir_err.to_string().contains("now-a-dir.txt: Is a directory"), "{dir_err}");
    }
}
