//! Text files in a run: one document each, in *windows* of consecutive
//! files (see [`super`]): a window is read and prepared in parallel,
//! decided in corpus order, then rendered and written in parallel while the
//! next window is prepared.

use indicatif::ProgressBar;
use rayon::prelude::*;

use super::decider::Decider;
use super::index_run::{IndexRun, history};
use super::replay::Recorded;
use crate::config::{Config, Output};
use crate::dedup::{History, Plan};
use crate::diag::diag;
use crate::document::Document;
use crate::error::{Error, Result};
use crate::interrupt;
use crate::key::Digest;
use crate::read::{Decoding, decode, read_limited};
use crate::report::{FileRow, Stats, unwritten_status};
use crate::split::Split;
use crate::walk::InputFile;
use crate::write::stream::write_stdout;
use crate::write::{remove_in_place, replace_in_place, write_atomic, write_new};

/// Most files in one window.
pub const WINDOW_FILES: usize = 2048;
/// About this many input bytes in one window.
pub const WINDOW_BYTES: u64 = 64 << 20;

/// Most files one task of a window's parallel steps (prepare, render,
/// write) takes. Left to itself, rayon cuts a window of 2,048 files into
/// as many pieces as the pool has threads, twice over (four of 512 at
/// `-j2`), and cuts again only a piece that another thread stole: the last
/// piece of a step could hold hundreds of files (5-10 ms) that no idle
/// thread could take, at every step of every window (issue 18). Pieces of
/// at most 16 files end within a fraction of a millisecond of each other.
const FILES_PER_TASK: usize = 16;

/// A document read and prepared, not yet decided.
pub(super) struct Prepared {
    pub(super) file: InputFile,
    pub(super) doc: Document,
    pub(super) history: Option<History>,
    pub(super) bytes_in: u64,
    pub(super) decoding: Decoding,
    /// The record of an earlier run of the batch that replaced this file
    /// in place with exactly these bytes (see [`super::replay`]).
    pub(super) replayed: Option<usize>,
    /// The pool thread that prepared it, where it is freed
    /// ([`crate::threads::Frees`]).
    pub(super) made_on: Option<usize>,
}

/// A prepared document with its plan.
pub(super) struct Decided {
    pub(super) prepared: Prepared,
    pub(super) plan: Plan,
    pub(super) duplicate_of: Option<String>,
    /// Recording (`--in-place --index`): what to record before the file is replaced.
    pub(super) record: Option<Recorded>,
}

/// Decodes, splits, keys and looks up one document read from `file`.
pub(super) fn prepare_bytes(
    file: &InputFile,
    bytes: Vec<u8>,
    cfg: &Config,
    ix: Option<&IndexRun>,
) -> Result<Prepared, Error> {
    let ((original, split), read) = split_bytes(file, bytes, cfg, ix)?;
    Ok(keyed(file, Document::from_split(original, split, &cfg.text), read, ix))
}

/// What reading a file told, besides its text.
struct Read {
    bytes_in: u64,
    decoding: Decoding,
    replayed: Option<usize>,
}

/// Reads and splits one file, not yet keyed.
fn split_file(file: &InputFile, cfg: &Config, ix: Option<&IndexRun>) -> Result<((String, Split), Read), Error> {
    split_bytes(file, read_limited(file, cfg.max_bytes)?, cfg, ix)
}

/// Decodes and splits one document read from `file`, not yet keyed.
fn split_bytes(
    file: &InputFile,
    bytes: Vec<u8>,
    cfg: &Config,
    ix: Option<&IndexRun>,
) -> Result<((String, Split), Read), Error> {
    let bytes_in = bytes.len() as u64;
    let replayed = ix.and_then(|ix| ix.replayed(&file.rel, &bytes));
    // UTF-8 without a NUL (nearly every file) is validated while it is
    // split; anything else is decoded first (reported, or repaired).
    let (part, decoding) = match Document::split_bytes(bytes, &cfg.text) {
        Ok(part) => (part, Decoding::default()),
        Err(bytes) => {
            let (text, decoding) = decode(bytes, cfg.encoding)
                .map_err(|source| Error::Decode { path: file.path.clone(), cause: source })?;
            (Document::split_text(text, &cfg.text), decoding)
        }
    };
    Ok((part, Read { bytes_in, decoding, replayed }))
}

/// A keyed document of `file`, looked up in the persistent index.
fn keyed(file: &InputFile, mut doc: Document, read: Read, ix: Option<&IndexRun>) -> Prepared {
    // Cleaned in place by an earlier run: decided as the original document.
    if let Some(whole) = ix.zip(read.replayed).and_then(|(ix, i)| ix.replay(i).docs.first()?.whole) {
        doc.whole = Digest(whole);
    }
    let history = ix.map(|ix| history(ix, &doc.keys, &doc.whole));
    let made_on = crate::threads::here();
    let Read { bytes_in, decoding, replayed } = read;
    Prepared { file: file.clone(), doc, bytes_in, decoding, history, replayed, made_on }
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

/// Text files, one document each, in windows (see the module docs).
///
/// Without an index, the decisions of window `i + 1` are taken on this
/// thread while the pool writes window `i` and prepares window `i + 2`, so
/// the ordered step does not leave a core idle; three windows are then in
/// flight (written, decided, prepared), against two with an index, whose
/// decisions journal, record and replay in step with the writes.
pub(super) fn run_text_files(
    cfg: &Config,
    decider: &mut Decider,
    files: &[InputFile],
    bar: &ProgressBar,
) -> Result<()> {
    let windows = windows(files);
    let ahead = decider.index.is_none();
    let mut next = windows.first().map(|w| prepare_window(w, cfg, decider.index.as_ref()));
    let mut decided_ahead: Option<Result<Vec<Decided>>> = None;
    for i in 0..windows.len() {
        if interrupt::requested() {
            return Err(Error::Interrupted);
        }
        let decided = match decided_ahead.take() {
            Some(decided) => decided?,
            None => decide_window(decider, next.take().unwrap_or_default())?,
        };
        decider.journal()?;
        let fresh = decider.fresh_out;
        if !fresh {
            for d in &decided {
                match &cfg.output {
                    Output::Dir(out) => decider.sweep(out.join(&d.prepared.file.rel).parent()),
                    Output::InPlace { .. } => decider.sweep(d.prepared.file.path.parent()),
                    _ => {}
                }
            }
        }
        // Recording: the window is rendered, recorded, then published.
        let rendered = if decider.recording() { Some(render_and_record(decider, &decided, cfg)?) } else { None };
        let write = || match rendered {
            Some(r) => decided
                .par_iter()
                .zip(r)
                .with_max_len(FILES_PER_TASK)
                .map(|(d, r)| r.and_then(|r| publish(d, cfg, r, fresh)))
                .collect(),
            None => decided.par_iter().with_max_len(FILES_PER_TASK).map(|d| emit(d, cfg, fresh)).collect::<Vec<_>>(),
        };
        let rows = if ahead {
            if next.is_none() {
                next = windows.get(i + 1).map(|w| prepare_window(w, cfg, None));
            }
            let to_decide = next.take();
            let ((rows, upcoming), decided) = rayon::join(
                || rayon::join(write, || windows.get(i + 2).map(|w| prepare_window(w, cfg, None))),
                || to_decide.map(|w| decide_window(decider, w)),
            );
            (next, decided_ahead) = (upcoming, decided);
            rows
        } else {
            let (rows, upcoming) =
                rayon::join(write, || windows.get(i + 1).map(|w| prepare_window(w, cfg, decider.index.as_ref())));
            next = upcoming;
            rows
        };
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
            let row = d.prepared.replayed.and_then(|i| decider.replayed_row(i)).unwrap_or(row);
            decider.report.push(row);
        }
        // Freed by the workers that prepared it, off the ordered step.
        decider.frees.free(decided, |d| d.prepared.made_on);
        if let Some(e) = stopped {
            return Err(e);
        }
    }
    Ok(())
}

/// A prepared window; a file that failed is boxed with its error (rare).
pub(super) type Window = Vec<Result<Prepared, Box<(InputFile, Error)>>>;

/// Prepares a window; once a stop is requested, files are no longer read
/// (the window is then discarded before any decision).
pub(super) fn prepare_window(files: &[InputFile], cfg: &Config, ix: Option<&IndexRun>) -> Window {
    files.par_chunks(FILES_PER_TASK).with_max_len(1).flat_map_iter(|group| prepare_group(group, cfg, ix)).collect()
}

/// Prepares consecutive files, keyed together: their paragraphs, and then
/// their document keys, go through the lanes of SHA-256 together
/// ([`Document::from_splits`]), as a JSONL shard's records do. A bench
/// file has about nine paragraphs: one at a time, it took the four lanes
/// of the SHA extensions where sixteen files fill the sixteen of AVX-512.
fn prepare_group(files: &[InputFile], cfg: &Config, ix: Option<&IndexRun>) -> Window {
    let mut parts = Vec::with_capacity(files.len());
    let read: Vec<_> = files
        .iter()
        .map(|f| {
            if interrupt::requested() {
                return Err(Error::Interrupted);
            }
            let (part, read) = split_file(f, cfg, ix)?;
            parts.push(part);
            Ok(read)
        })
        .collect();
    let mut docs = Document::from_splits(parts, &cfg.text).into_iter();
    files
        .iter()
        .zip(read)
        .map(|(f, read)| match read {
            Ok(read) => Ok(keyed(f, docs.next().expect("one document per file split"), read, ix)),
            Err(e) => Err(Box::new((f.clone(), e))),
        })
        .collect()
}

fn is_interruption(e: &Error) -> bool {
    matches!(e, Error::Interrupted)
}

/// The ordered step: decisions in corpus order; failed inputs are reported
/// here. A window prepared after a stop was requested holds an
/// [`Error::Interrupted`] for each file it no longer read: it is discarded
/// before any decision (the run is ending), never reported file by file.
/// (Without an index the next window is decided while this one is written,
/// so a window can reach this step after the stop.)
pub(super) fn decide_window(decider: &mut Decider, window: Window) -> Result<Vec<Decided>> {
    if window.iter().any(|item| item.as_ref().is_err_and(|failed| is_interruption(&failed.1))) {
        return Err(Error::Interrupted);
    }
    let mut out = Vec::with_capacity(window.len());
    for item in window {
        match item {
            Ok(p) => {
                let input = decider.input(&p.file.rel)?;
                decider.replay_doc_begin(p.replayed)?;
                let plan = decider.decide(input, (0, None), &p.doc, p.history.as_ref())?;
                let record = decider.replay_doc_end(p.replayed, &p.doc, &plan);
                let duplicate_of = plan.duplicate_of.map(|d| decider.doc_name(d));
                out.push(Decided { prepared: p, plan, duplicate_of, record });
            }
            Err(failed) => {
                let (file, err) = *failed;
                decider.input(&file.rel)?;
                if decider.prints_inputs() {
                    diag!("newsdedup: {err}");
                }
                decider.report.push(FileRow::failed(&file.rel, &err));
            }
        }
    }
    Ok(out)
}

/// Renders and writes one decided file; returns its report row. A write
/// error is fatal (`Err`): the run stops, and no partial file is left.
/// Once a stop is requested, nothing more is written (`Err(Interrupted)`).
/// `fresh`: the `--out` folder is staged ([`publish`]).
pub(super) fn emit(d: &Decided, cfg: &Config, fresh: bool) -> Result<FileRow> {
    render(d, cfg).and_then(|r| publish(d, cfg, r, fresh))
}

/// A decided file rendered: the bytes to write (`None`: nothing is written,
/// and in place the file is removed) and its report row.
pub(super) struct Rendered {
    bytes: Option<Vec<u8>>,
    row: FileRow,
}

/// What replaces a file: the SHA-256 of its new bytes, `None` when it is removed.
type Replacement = Option<[u8; 32]>;

/// Renders a window, records its files that are about to be replaced in
/// place and changed (see [`super::replay`]), durably, and returns the
/// renderings to publish.
fn render_and_record(decider: &mut Decider, decided: &[Decided], cfg: &Config) -> Result<Vec<Result<Rendered>>> {
    // Rendered, and the SHA-256 of what replaces each changed file.
    let rendered: Vec<(Result<Rendered>, Option<Replacement>)> = decided
        .par_iter()
        .with_max_len(FILES_PER_TASK)
        .map(|d| {
            let r = render(d, cfg);
            let p = &d.prepared;
            let plain = p.decoding.first_invalid.is_none() && !p.decoding.utf16;
            let hash = match &r {
                // Unchanged: a rerun reads what this run read.
                Ok(r) if plain && r.bytes.as_deref() == Some(p.doc.original.as_bytes()) => None,
                Ok(r) if d.record.is_some() => Some(r.bytes.as_deref().map(crate::index::hash_bytes)),
                _ => None,
            };
            (r, hash)
        })
        .collect();
    let mut records = Vec::new();
    for (d, (r, hash)) in decided.iter().zip(&rendered) {
        if let (Some(rec), Ok(r), Some(hash)) = (&d.record, r, hash) {
            records.push((d.prepared.file.rel.as_path(), rec, *hash, &r.row));
        }
    }
    decider.record_files(records)?;
    Ok(rendered.into_iter().map(|(r, _)| r).collect())
}

/// Writes (or, in place, removes) a rendered file; returns its row. In a
/// staged `--out` (`fresh`, [`crate::write::Staged`]) a file is created
/// under its name ([`write_new`]); elsewhere it replaces what is there
/// atomically ([`write_atomic`]).
pub(super) fn publish(d: &Decided, cfg: &Config, r: Rendered, fresh: bool) -> Result<FileRow> {
    if interrupt::requested() {
        return Err(Error::Interrupted);
    }
    let p = &d.prepared;
    if r.bytes.is_none()
        && let Output::InPlace { backup } = &cfg.output
    {
        // Cleaning in place: a file with nothing left goes away (or becomes
        // its backup), as it would be absent from a mirrored --out tree.
        remove_in_place(&p.file.path, backup.as_deref())?;
    }
    if let Some(bytes) = &r.bytes {
        match &cfg.output {
            Output::Dir(out) if fresh => write_new(&out.join(&p.file.rel), bytes)?,
            Output::Dir(out) => write_atomic(&out.join(&p.file.rel), bytes, None)?,
            Output::InPlace { backup } => replace_in_place(&p.file.path, bytes, backup.as_deref())?,
            Output::Stdout => write_stdout(bytes)?,
            Output::DryRun => {}
        }
    }
    Ok(r.row)
}

/// Renders one decided file (see [`Rendered`]).
pub(super) fn render(d: &Decided, cfg: &Config) -> Result<Rendered> {
    if interrupt::requested() {
        return Err(Error::Interrupted);
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
    let mut out = None;
    if unwritten.is_none() {
        let mut bytes = Vec::with_capacity(p.doc.original.len());
        p.doc.render_into(&d.plan.verdicts, cfg.emit, &mut bytes);
        stats.bytes_out = bytes.len() as u64;
        stats.documents_written = u64::from(cfg.output != Output::DryRun);
        out = Some(bytes);
    }
    let row = FileRow {
        path: p.file.rel.to_string_lossy().into_owned(),
        status: status.into(),
        duplicate_of: d.duplicate_of.clone(),
        error: None,
        repaired_at: p.decoding.first_invalid,
        stats,
        ..FileRow::default()
    };
    Ok(Rendered { bytes: out, row })
}

#[cfg(test)]
mod tests {
    use std::fs;

    use super::*;
    use crate::config::Input;

    /// What happens when a listed file vanishes, or is replaced by a folder,
    /// between the walk and the read (a race a test cannot time from outside).
    #[test]
    fn a_file_gone_or_replaced_after_the_walk_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = Config::new(Input::Path(dir.path().into()), Output::DryRun);
        let file = |name: &str| InputFile { path: dir.path().join(name), rel: name.into(), size: 10 };
        fs::write(dir.path().join("a.txt"), "A paragraph still there.\n").unwrap();
        fs::create_dir(dir.path().join("now-a-dir.txt")).unwrap();
        let files = [file("a.txt"), file("gone.txt"), file("now-a-dir.txt")];
        let mut window = prepare_window(&files, &cfg, None).into_iter();
        let kept = window.next().unwrap().map_err(|e| e.1.to_string()).unwrap();
        assert_eq!(kept.doc.original, "A paragraph still there.\n");
        let gone = window.next().unwrap().err().unwrap();
        assert_eq!(gone.0.rel, files[1].rel);
        assert_eq!(gone.1.kind(), "not-found");
        assert!(gone.1.to_string().contains("gone.txt: No such file or directory"), "{}", gone.1);
        let dir_err = window.next().unwrap().err().unwrap();
        assert!(dir_err.1.to_string().contains("now-a-dir.txt: Is a directory"), "{}", dir_err.1);
        assert!(window.next().is_none());
    }

    /// A window's files are keyed together, sixteen at a time: each file's
    /// document is the one it gives alone, across the groups' edges, with
    /// files that cannot be read (no document) and files that are not UTF-8
    /// (decoded first) among them.
    #[test]
    fn files_keyed_together_are_keyed_as_alone() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = Config::new(Input::Path(dir.path().into()), Output::DryRun);
        let file = |name: String| InputFile { path: dir.path().join(&name), rel: name.into(), size: 10 };
        let mut files = Vec::new();
        for i in 0..53 {
            let name = format!("{i:02}.txt");
            let text: String =
                (0..i % 7).map(|p| format!("Paragraph {p} of file {i}, {}.\n", "long ".repeat(i * p % 40))).collect();
            match i {
                15 | 16 | 40 => {} // never written: not found
                9 | 33 => fs::write(dir.path().join(&name), [text.as_bytes(), b"\xa3 Latin-1\n"].concat()).unwrap(),
                _ => fs::write(dir.path().join(&name), &text).unwrap(),
            }
            files.push(file(name));
        }
        let window = prepare_window(&files, &cfg, None);
        assert_eq!(window.len(), files.len());
        for (i, (f, got)) in files.iter().zip(window).enumerate() {
            let Ok(bytes) = fs::read(&f.path) else {
                assert_eq!(got.err().map(|e| e.1.kind()), Some("not-found"), "{:?}", f.rel);
                continue;
            };
            let (alone, got) = match (prepare_bytes(f, bytes, &cfg, None), got) {
                (Ok(alone), Ok(got)) => (alone, got),
                (alone, got) => {
                    let (alone, got) = (alone.err().map(|e| e.to_string()), got.err().map(|e| e.1.to_string()));
                    assert!(alone.is_some() && alone == got, "{:?}: {alone:?} against {got:?}", f.rel);
                    continue;
                }
            };
            assert_eq!(got.file.rel, f.rel);
            assert_eq!(got.doc.original, alone.doc.original, "{:?}", f.rel);
            assert_eq!(got.doc.keys, alone.doc.keys, "{:?}", f.rel);
            assert_eq!(got.doc.whole, alone.doc.whole, "{:?}", f.rel);
            assert_eq!(got.bytes_in, alone.bytes_in);
            assert_eq!(got.decoding.first_invalid, alone.decoding.first_invalid, "{:?}", f.rel);
            assert_eq!(got.decoding.first_invalid.is_some(), i == 9 || i == 33, "{:?}", f.rel);
        }
    }

    /// A window prepared after a stop was requested: its files not read are
    /// neither printed nor reported one by one (a signal used to flood
    /// stderr with one "interrupted" line per file, and a caller reading
    /// stderr only after the exit could block the run on a full pipe).
    #[test]
    fn a_window_prepared_after_a_stop_is_discarded_not_reported_file_by_file() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("a.txt"), "A paragraph that was read before the stop.\n").unwrap();
        let cfg = Config::new(Input::Path(dir.path().into()), Output::DryRun);
        let file = |name: &str| InputFile { path: dir.path().join(name), rel: name.into(), size: 10 };
        let mut decider = Decider::new(&cfg, &crate::threads::Budget::new(1)).unwrap();
        let read = prepare_window(&[file("a.txt")], &cfg, None).pop().unwrap();
        let stopped = |name: &str| Err(Box::new((file(name), Error::Interrupted)));
        let window: Window = vec![read, stopped("b.txt"), stopped("c.txt")];
        let got = decide_window(&mut decider, window);
        assert!(matches!(got, Err(Error::Interrupted)), "{:?}", got.err());
        assert!(decider.report.files.is_empty(), "rows: {:?}", decider.report.files);
        assert_eq!(decider.deduper.distinct_keys(), 0, "a document of a discarded window was decided");
    }
}
