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
//! are kept too: `O(files)`, not `O(text)`.

use std::fs::{self, File};
use std::io::{self, BufWriter, IsTerminal, Read, Write};
use std::path::Path;
use std::time::Instant;

use anyhow::Context as _;
use indicatif::{ProgressBar, ProgressStyle};
use rayon::prelude::*;
use serde::Serialize;

use crate::config::{Config, Input, Output};
use crate::dedup::{Deduper, Plan, Verdict};
use crate::document::Document;
use crate::error::Error;
use crate::read::{Decoding, decode};
use crate::report::{FileRow, Report, Stats};
use crate::walk::{InputFile, walk};
use crate::write::{check_out_dir, remove_stale_temps, replace_in_place, write_atomic, write_atomic_with};

/// Most files in one window.
pub const WINDOW_FILES: usize = 2048;
/// About this many input bytes in one window.
pub const WINDOW_BYTES: u64 = 64 << 20;

/// Runs the configured job and returns its report. Per-input failures are in
/// the report (and printed on stderr); an `Err` is a fatal error.
pub fn run(cfg: &Config) -> anyhow::Result<Report> {
    let pool =
        rayon::ThreadPoolBuilder::new().num_threads(cfg.threads).build().context("cannot start worker threads")?;
    let started = Instant::now();
    let mut report = pool.install(|| match &cfg.input {
        Input::Stdin => run_stdin(cfg),
        Input::Path(root) => run_tree(cfg, root),
    })?;
    report.threads = pool.current_num_threads();
    report.finish(started.elapsed());
    if let Some(path) = &cfg.report {
        // Streamed: the report has a row per file, and a corpus of a
        // million files would otherwise hold its whole JSON text in memory.
        write_atomic_with(path, None, |f| {
            let mut out = BufWriter::with_capacity(1 << 16, f);
            serde_json::to_writer_pretty(&mut out, &report)?;
            out.flush()
        })?;
    }
    Ok(report)
}

/// A document read and prepared, not yet decided.
struct Prepared {
    file: InputFile,
    doc: Document,
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
fn prepare_file(file: &InputFile, cfg: &Config) -> Result<Prepared, Error> {
    let bytes = read_limited(file, cfg.max_bytes)?;
    let bytes_in = bytes.len() as u64;
    let (text, decoding) =
        decode(bytes, cfg.encoding).map_err(|source| Error::Decode { path: file.path.clone(), source })?;
    let doc = Document::prepare(text, &cfg.text);
    Ok(Prepared { file: file.clone(), doc, bytes_in, decoding })
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

/// The sequential part of a run: the seen-set, the explain file, the report.
struct Decider {
    deduper: Deduper,
    names: Vec<String>,
    explain: Option<BufWriter<File>>,
    explain_path: Option<std::path::PathBuf>,
    report: Report,
}

#[derive(Serialize)]
struct ExplainLine<'a> {
    file: &'a str,
    paragraph: usize,
    key: String,
    first_file: &'a str,
    first_paragraph: u32,
    reason: &'static str,
}

impl Decider {
    fn new(cfg: &Config) -> anyhow::Result<Decider> {
        let explain = match &cfg.explain {
            Some(p) => {
                Some(BufWriter::new(File::create(p).with_context(|| format!("{}: cannot create", p.display()))?))
            }
            None => None,
        };
        Ok(Decider {
            deduper: Deduper::new(cfg.rules),
            names: Vec::new(),
            explain,
            explain_path: cfg.explain.clone(),
            report: Report::default(),
        })
    }

    fn decide(&mut self, p: Prepared) -> anyhow::Result<Decided> {
        let name = p.file.rel.to_string_lossy().into_owned();
        let plan = self.deduper.decide(&p.doc.keys, &p.doc.whole);
        self.names.push(name);
        if self.explain.is_some() {
            self.explain(&p, &plan)?;
        }
        let duplicate_of = plan.duplicate_of.map(|d| self.names[d as usize].clone());
        Ok(Decided { prepared: p, plan, duplicate_of })
    }

    fn explain(&mut self, p: &Prepared, plan: &Plan) -> anyhow::Result<()> {
        let (Some(out), Some(path)) = (self.explain.as_mut(), self.explain_path.as_ref()) else {
            return Ok(());
        };
        let file = &self.names[plan.doc as usize];
        for (i, v) in plan.verdicts.iter().enumerate() {
            if let Verdict::Drop { reason, first } = v {
                let line = ExplainLine {
                    file,
                    paragraph: i,
                    key: p.doc.keys[i].digest.to_hex(),
                    first_file: &self.names[first.doc as usize],
                    first_paragraph: first.para,
                    reason: reason.as_str(),
                };
                serde_json::to_writer(&mut *out, &line)?;
                out.write_all(b"\n").with_context(|| format!("{}: cannot write", path.display()))?;
            }
        }
        Ok(())
    }

    fn finish(mut self) -> anyhow::Result<Report> {
        if let (Some(mut out), Some(path)) = (self.explain.take(), self.explain_path.as_ref()) {
            out.flush().with_context(|| format!("{}: cannot write", path.display()))?;
        }
        self.report.distinct_keys = self.deduper.distinct_keys() as u64;
        Ok(self.report)
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

fn run_tree(cfg: &Config, root: &Path) -> anyhow::Result<Report> {
    let meta = fs::metadata(root).map_err(|e| Error::io(root, e))?;
    match &cfg.output {
        Output::Dir(out) => {
            check_out_dir(root, out)?;
            fs::create_dir_all(out).map_err(|e| Error::io(out, e))?;
        }
        Output::Stdout if meta.is_dir() => {
            anyhow::bail!("{}: is a directory; give --out DIR (or --dry-run, or --in-place)", root.display())
        }
        _ => {}
    }
    let listing = walk(root, &cfg.walk);
    let mut decider = Decider::new(cfg)?;
    for s in listing.skipped {
        if s.failure || !cfg.quiet {
            eprintln!("newsdedup: {}", s.error);
        }
        let status = if s.failure { "failed" } else { "passed-over" };
        let stats = Stats {
            inputs_failed: u64::from(s.failure),
            inputs_passed_over: u64::from(!s.failure),
            ..Stats::default()
        };
        let row = FileRow {
            path: s.rel.to_string_lossy().into_owned(),
            status: status.into(),
            error: Some(s.error.to_string()),
            stats,
            ..FileRow::default()
        };
        decider.report.push(row);
    }
    let bar = progress_bar(cfg, listing.files.iter().map(|f| f.size).sum());
    let windows = windows(&listing.files);
    let mut cleaned_dirs = std::collections::HashSet::new();
    let mut next = windows.first().map(|w| prepare_window(w, cfg));
    for i in 0..windows.len() {
        let prepared = next.take().unwrap_or_default();
        let decided = decide_window(&mut decider, prepared)?;
        if let Output::Dir(out) = &cfg.output {
            for d in &decided {
                let dir = out.join(&d.prepared.file.rel);
                if let Some(parent) = dir.parent()
                    && cleaned_dirs.insert(parent.to_path_buf())
                {
                    let _ = remove_stale_temps(parent);
                }
            }
        }
        let (rows, upcoming) = rayon::join(
            || decided.par_iter().map(|d| emit(d, cfg)).collect::<Vec<_>>(),
            || windows.get(i + 1).map(|w| prepare_window(w, cfg)),
        );
        next = upcoming;
        for (d, row) in decided.iter().zip(rows) {
            let row = row?;
            bar.inc(d.prepared.bytes_in);
            if let Some(err) = &row.error {
                eprintln!("newsdedup: {err}");
            }
            decider.report.push(row);
        }
    }
    bar.finish_and_clear();
    decider.finish()
}

type Window = Vec<Result<Prepared, (InputFile, Error)>>;

fn prepare_window(files: &[InputFile], cfg: &Config) -> Window {
    files.par_iter().map(|f| prepare_file(f, cfg).map_err(|e| (f.clone(), e))).collect()
}

/// The ordered step: decisions in corpus order; failed inputs are reported here.
fn decide_window(decider: &mut Decider, window: Window) -> anyhow::Result<Vec<Decided>> {
    let mut out = Vec::with_capacity(window.len());
    for item in window {
        match item {
            Ok(p) => out.push(decider.decide(p)?),
            Err((file, err)) => {
                eprintln!("newsdedup: {err}");
                let row = FileRow {
                    path: file.rel.to_string_lossy().into_owned(),
                    status: "failed".into(),
                    error: Some(format!("{err} [{}]", err.kind())),
                    stats: Stats { inputs_failed: 1, ..Stats::default() },
                    ..FileRow::default()
                };
                decider.report.push(row);
            }
        }
    }
    Ok(out)
}

/// Renders and writes one decided file; returns its report row. A write
/// error is fatal (`Err`): the run stops, and no partial file is left.
fn emit(d: &Decided, cfg: &Config) -> anyhow::Result<FileRow> {
    let p = &d.prepared;
    let mut stats = Stats::of_plan(&d.plan);
    stats.bytes_in = p.bytes_in;
    stats.inputs_repaired = u64::from(p.decoding.first_invalid.is_some());
    let kept = stats.paragraphs_kept > 0;
    let status = if d.plan.duplicate_of.is_some() {
        "duplicate"
    } else if p.doc.is_empty() {
        "empty"
    } else if !kept {
        "emptied"
    } else if cfg.output == Output::DryRun {
        "dry-run"
    } else {
        "written"
    };
    if kept {
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
    })
}

/// Writes to stdout; a closed pipe is not an error (the reader is done).
fn write_stdout(bytes: &[u8]) -> anyhow::Result<()> {
    let mut out = io::stdout().lock();
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Err(e) if e.kind() != io::ErrorKind::BrokenPipe => Err(anyhow::Error::new(e).context("<stdout>: cannot write")),
        _ => Ok(()),
    }
}

fn run_stdin(cfg: &Config) -> anyhow::Result<Report> {
    let mut bytes = Vec::new();
    io::stdin().lock().read_to_end(&mut bytes).context("<stdin>: cannot read")?;
    let file = InputFile { path: "<stdin>".into(), rel: "<stdin>".into(), size: bytes.len() as u64 };
    let bytes_in = bytes.len() as u64;
    let mut decider = Decider::new(cfg)?;
    let prepared = match decode(bytes, cfg.encoding) {
        Ok((text, decoding)) => {
            Ok(Prepared { doc: Document::prepare(text, &cfg.text), file: file.clone(), bytes_in, decoding })
        }
        Err(source) => Err((file.clone(), Error::Decode { path: file.path.clone(), source })),
    };
    let decided = decide_window(&mut decider, vec![prepared])?;
    for d in &decided {
        let row = emit(d, cfg)?;
        decider.report.push(row);
    }
    decider.finish()
}
