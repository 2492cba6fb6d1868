//! Replays: what a run that cleaned files in place reported about them,
//! so that a retry over the cleaned files reports what the first run did.
//!
//! A run with `--in-place` replaces its input before its commit; a retry
//! then reads cleaned text (or finds a file removed) and would describe
//! that text. So before a file is replaced, the run appends to
//! `replay-<hash>.rpl` in the index folder (and fsyncs it) a record of the
//! file: its relative path, the SHA-256 of the bytes that replace it (none
//! when the file is removed), its report row and explain lines as the run
//! wrote them, and per document what a retry cannot see in the cleaned text
//! — its original line number, its original whole-document key, the
//! original indexes of the paragraphs written, whether it was written. A
//! later run of the batch loads the records ([`Index::replays`]); a file
//! whose current bytes hash to a record's is one it cleaned, and the
//! record's row and explain lines are used (the pipeline's side is
//! `crate::pipeline`'s `replay` module).
//!
//! Records are facts about bytes, valid whether or not the run that wrote
//! them committed, so there is one file per batch, appended to by each run
//! of it and never rewritten. A run killed while writing a record leaves it
//! torn: a torn frame fails its checksum and ends the file, and the next
//! writer cuts it off first. Bounded: each commit keeps the replays of the
//! [`REPLAYS_KEPT`] batches committed most recently (by their last recorded
//! run; and of batches not yet committed) and deletes the others; an older
//! batch's rerun keeps and records the same, but describes the text it
//! reads.
//!
//! Format: 8 B magic `NDDXRPLY`, u32 version, u32 name length, the batch
//! name; then frames `{ u32 n, u8 tag, n bytes, u32 crc32 of the tag and
//! the bytes }`: `Start` (the relative path), `Explain` (bytes), `Docs`
//! (documents, see [`ReplayDoc`]), `End` (u8 1 + 32-byte SHA-256, or u8 0 for
//! a removed file; then the row's JSON). A file's record is its frames from
//! `Start` to `End`.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};

use super::journal::{batch_file_header, batch_file_path, is_batch_file_name};
use super::{Batch, Index, IndexError, Result, corrupt, fsync_dir, io_err};

const MAGIC: &[u8; 8] = b"NDDXRPLY";
const START: u8 = 1;
const EXPLAIN: u8 = 2;
const DOCS: u8 = 3;
const END: u8 = 4;
/// Largest frame payload written (explain bytes are split).
const MAX_FRAME: usize = 1 << 28;

/// How many committed batches keep their replay (those whose last recorded
/// run is the most recent); see the module docs.
pub const REPLAYS_KEPT: usize = 8;

/// True for a replay's file name.
pub(super) fn is_replay_name(n: &str) -> bool {
    is_batch_file_name(n, "replay-", ".rpl")
}

fn replay_path(dir: &Path, name: &[u8]) -> PathBuf {
    batch_file_path(dir, name, "replay-", ".rpl")
}

fn header(name: &[u8]) -> Vec<u8> {
    batch_file_header(MAGIC, name)
}

/// What became of one document of a replaced file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DocFate {
    /// Written (some of its paragraphs, or all): the cleaned file holds it.
    Written,
    /// Not written (a duplicate, emptied or empty): gone from the file.
    Unwritten,
    /// A rejected JSONL line, left in the shard as it was.
    Rejected,
}

/// One document (a JSONL line, or a whole text file) of a replaced file,
/// in file order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplayDoc {
    /// Its line in the original file (0 for a text file).
    pub line: u64,
    /// What became of it.
    pub fate: DocFate,
    /// Its original whole-document key, when it differs from the one its
    /// cleaned text gives (something was dropped) or it is gone.
    pub whole: Option<[u8; 32]>,
    /// The original indexes of the paragraphs written, when any was dropped.
    pub kept: Option<Vec<u32>>,
    /// Gone: whether the run remembered its whole-document key (a later
    /// copy is its duplicate).
    pub remembered: bool,
    /// Gone: its record id, when it has one.
    pub id: Option<String>,
}

/// The record of one replaced file.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReplayFile {
    /// Its relative path, raw bytes.
    pub rel: Vec<u8>,
    /// SHA-256 of the bytes that replaced it; `None`: it was removed.
    pub hash: Option<[u8; 32]>,
    /// Its report row (JSON), as the run wrote it.
    pub row: Vec<u8>,
    /// Its explain lines, as the run wrote them.
    pub explain: Vec<u8>,
    /// Its documents, in file order.
    pub docs: Vec<ReplayDoc>,
}

fn encode_doc(d: &ReplayDoc, v: &mut Vec<u8>) {
    let fate = match d.fate {
        DocFate::Written => 0u8,
        DocFate::Unwritten => 1,
        DocFate::Rejected => 2,
    };
    let flags = fate
        | u8::from(d.remembered) << 2
        | u8::from(d.whole.is_some()) << 3
        | u8::from(d.kept.is_some()) << 4
        | u8::from(d.id.is_some()) << 5;
    v.push(flags);
    v.extend_from_slice(&d.line.to_le_bytes());
    if let Some(w) = &d.whole {
        v.extend_from_slice(w);
    }
    if let Some(k) = &d.kept {
        v.extend_from_slice(&(k.len() as u32).to_le_bytes());
        k.iter().for_each(|i| v.extend_from_slice(&i.to_le_bytes()));
    }
    if let Some(id) = &d.id {
        v.extend_from_slice(&(id.len() as u32).to_le_bytes());
        v.extend_from_slice(id.as_bytes());
    }
}

/// Reads the documents of a `Docs` frame; `None` when it does not parse.
fn decode_docs(mut b: &[u8]) -> Option<Vec<ReplayDoc>> {
    fn take<'a>(b: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
        let (head, rest) = (b.get(..n)?, b.get(n..)?);
        *b = rest;
        Some(head)
    }
    let u32_of = |s: &[u8]| s.try_into().ok().map(u32::from_le_bytes);
    let mut out = Vec::new();
    while !b.is_empty() {
        let flags = take(&mut b, 1)?[0];
        let fate = match flags & 3 {
            0 => DocFate::Written,
            1 => DocFate::Unwritten,
            2 => DocFate::Rejected,
            _ => return None,
        };
        let line = u64::from_le_bytes(take(&mut b, 8)?.try_into().ok()?);
        let whole = if flags & 8 != 0 { Some(take(&mut b, 32)?.try_into().ok()?) } else { None };
        let kept = if flags & 16 != 0 {
            let n = u32_of(take(&mut b, 4)?)? as usize;
            let raw = take(&mut b, n.checked_mul(4)?)?;
            Some(raw.chunks_exact(4).filter_map(u32_of).collect())
        } else {
            None
        };
        let id = if flags & 32 != 0 {
            let n = u32_of(take(&mut b, 4)?)? as usize;
            Some(String::from_utf8_lossy(take(&mut b, n)?).into_owned())
        } else {
            None
        };
        out.push(ReplayDoc { line, fate, whole, kept, remembered: flags & 4 != 0, id });
    }
    Some(out)
}

/// The replay of a batch, open for appending records (see the module docs).
pub struct ReplayLog {
    file: File,
    path: PathBuf,
    buf: Vec<u8>,
}

impl ReplayLog {
    fn frame(&mut self, tag: u8, payload: &[u8]) {
        let start = self.buf.len();
        self.buf.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        self.buf.push(tag);
        self.buf.extend_from_slice(payload);
        let crc = crc32fast::hash(&self.buf[start + 4..]);
        self.buf.extend_from_slice(&crc.to_le_bytes());
    }

    /// Begins the record of the file at `rel` (raw bytes).
    pub fn start(&mut self, rel: &[u8]) {
        self.frame(START, rel);
    }

    /// Adds explain lines to the file's record.
    pub fn explain(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(MAX_FRAME) {
            self.frame(EXPLAIN, chunk);
        }
    }

    /// Adds documents to the file's record.
    pub fn docs(&mut self, docs: &[ReplayDoc]) {
        let mut v = Vec::new();
        for d in docs {
            encode_doc(d, &mut v);
            if v.len() >= MAX_FRAME / 2 {
                self.frame(DOCS, &std::mem::take(&mut v));
            }
        }
        if !v.is_empty() {
            self.frame(DOCS, &v);
        }
    }

    /// Ends the file's record: the SHA-256 of the bytes that replace it
    /// (`None`: it is removed) and its report row (JSON).
    pub fn end(&mut self, hash: Option<[u8; 32]>, row: &[u8]) {
        let mut v = Vec::with_capacity(33 + row.len());
        match hash {
            Some(h) => {
                v.push(1);
                v.extend_from_slice(&h);
            }
            None => v.push(0),
        }
        v.extend_from_slice(row);
        self.frame(END, &v);
    }

    /// Writes what was added and makes it durable: called before the files
    /// recorded are replaced.
    pub fn sync(&mut self) -> Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        self.file.write_all(&self.buf).map_err(io_err(&self.path))?;
        self.buf.clear();
        self.file.sync_data().map_err(io_err(&self.path))
    }

    /// Writes what was added, without waiting for the disk (a record whose
    /// `End` is not yet written need not be durable).
    pub fn write_out(&mut self) -> Result<()> {
        if self.buf.len() < 1 << 20 {
            return Ok(());
        }
        self.file.write_all(&self.buf).map_err(io_err(&self.path))?;
        self.buf.clear();
        Ok(())
    }
}

/// The records of a replay file, and the length of its whole frames.
fn parse(path: &Path, bytes: &[u8], head: &[u8]) -> Result<(Vec<ReplayFile>, usize)> {
    if !bytes.starts_with(head) {
        return Err(if bytes.starts_with(MAGIC) {
            corrupt(path, "replay of another batch or version")
        } else {
            IndexError::Foreign { path: path.to_path_buf() }
        });
    }
    let (mut files, mut current) = (Vec::new(), None::<ReplayFile>);
    let mut at = head.len();
    while let Some(len) = bytes.get(at..at + 4) {
        let n = u32::from_le_bytes([len[0], len[1], len[2], len[3]]) as usize;
        let Some(body) = bytes.get(at + 4..at + 5 + n) else { break };
        let Some(crc) = bytes.get(at + 5 + n..at + 9 + n) else { break };
        if crc32fast::hash(body).to_le_bytes() != crc {
            break;
        }
        at += 9 + n;
        let (tag, payload) = (body[0], &body[1..]);
        match (tag, current.as_mut()) {
            (START, _) => current = Some(ReplayFile { rel: payload.to_vec(), ..ReplayFile::default() }),
            (EXPLAIN, Some(f)) => f.explain.extend_from_slice(payload),
            (DOCS, Some(f)) => match decode_docs(payload) {
                Some(d) => f.docs.extend(d),
                None => current = None,
            },
            (END, Some(_)) => {
                let Some(mut f) = current.take() else { continue };
                f.hash = match payload.first() {
                    Some(1) => payload.get(1..33).and_then(|h| h.try_into().ok()),
                    _ => None,
                };
                let row_at = if f.hash.is_some() { 33 } else { 1 };
                f.row = payload.get(row_at..).unwrap_or_default().to_vec();
                files.push(f);
            }
            _ => current = None,
        }
    }
    Ok((files, at))
}

/// SHA-256 of a file's bytes, read in pieces.
pub fn hash_file(path: &Path) -> io::Result<[u8; 32]> {
    let mut file = File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => hasher.update(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(hasher.finalize().into())
}

/// SHA-256 of `bytes`.
pub fn hash_bytes(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

impl Index {
    /// The records of the named `batch`'s replay, in the order written
    /// (empty for an anonymous batch or when there is none).
    pub fn replays(&self, batch: &Batch) -> Result<Vec<ReplayFile>> {
        let Batch::Named(name) = batch else { return Ok(Vec::new()) };
        let path = replay_path(&self.dir, name);
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io_err(&path)(e)),
        };
        let head = header(name);
        if head.starts_with(&bytes) {
            return Ok(Vec::new()); // created, header torn or not yet written
        }
        Ok(parse(&path, &bytes, &head)?.0)
    }

    /// Opens (creating) the replay of the named `batch` for appending,
    /// cutting off a torn tail; `None` for an anonymous batch.
    pub fn replay_log(&self, batch: &Batch) -> Result<Option<ReplayLog>> {
        let Batch::Named(name) = batch else { return Ok(None) };
        let path = replay_path(&self.dir, name);
        let head = header(name);
        let mut file = OpenOptions::new().create(true).read(true).append(true).open(&path).map_err(io_err(&path))?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).map_err(io_err(&path))?;
        let keep = if bytes.len() < head.len() { 0 } else { parse(&path, &bytes, &head)?.1 };
        if keep < bytes.len() || keep == 0 {
            file.set_len(keep as u64).map_err(io_err(&path))?;
            if keep == 0 {
                file.write_all(&head).map_err(io_err(&path))?;
            }
            file.sync_data().map_err(io_err(&path))?;
            fsync_dir(&self.dir)?;
        }
        Ok(Some(ReplayLog { file, path, buf: Vec::new() }))
    }

    /// Deletes the replays of committed batches but those of the
    /// [`REPLAYS_KEPT`] batches whose last recorded run is the most recent
    /// (best effort: done after a commit, which must not fail).
    pub fn prune_replays(&self) {
        let Ok(names) = Self::list_dir(&self.dir) else { return };
        let mut committed: Vec<(usize, PathBuf)> = Vec::new();
        for n in names.iter().filter(|n| is_replay_name(n)) {
            let path = self.dir.join(n);
            let Some(name) = batch_name_of(&path) else { continue };
            let id = self.batch_id(&Batch::Named(name));
            if id.retry {
                let last = self.manifest.runs.iter().rposition(|r| r.batch == id.number);
                committed.push((last.unwrap_or(0), path));
            }
        }
        committed.sort_by_key(|c| std::cmp::Reverse(c.0));
        for (_, path) in committed.into_iter().skip(REPLAYS_KEPT) {
            let _ = fs::remove_file(path);
        }
    }
}

/// The batch name in a replay file's header.
fn batch_name_of(path: &Path) -> Option<Vec<u8>> {
    let mut file = File::open(path).ok()?;
    let mut head = [0u8; 16];
    file.read_exact(&mut head).ok()?;
    if &head[..8] != MAGIC {
        return None;
    }
    let len = u32::from_le_bytes([head[12], head[13], head[14], head[15]]) as usize;
    let mut name = vec![0u8; len];
    file.read_exact(&mut name).ok()?;
    Some(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(line: u64, fate: DocFate) -> ReplayDoc {
        ReplayDoc { line, fate, whole: None, kept: None, remembered: false, id: None }
    }

    #[test]
    fn records_round_trip_and_a_torn_tail_is_cut_off() {
        let head = header(b"day1");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.rpl");
        let mut log = ReplayLog { file: File::create(&path).unwrap(), path: path.clone(), buf: head.clone() };
        let docs = vec![
            ReplayDoc { whole: Some([7; 32]), kept: Some(vec![0, 2]), ..doc(1, DocFate::Written) },
            ReplayDoc { remembered: true, id: Some("x".into()), whole: Some([9; 32]), ..doc(3, DocFate::Unwritten) },
            doc(4, DocFate::Rejected),
        ];
        log.start(b"a.jsonl");
        log.explain(b"{\"line\":1}\n");
        log.docs(&docs);
        log.end(Some([1; 32]), b"{\"path\":\"a.jsonl\"}");
        log.start(b"b.txt");
        log.end(None, b"{}");
        log.start(b"torn.txt");
        log.sync().unwrap();
        let bytes = fs::read(&path).unwrap();
        let (files, whole) = parse(&path, &bytes, &head).unwrap();
        assert_eq!(whole, bytes.len());
        assert_eq!(files.len(), 2, "the record without an End is not a record");
        assert_eq!(files[0].docs, docs);
        assert_eq!(files[0].hash, Some([1; 32]));
        assert_eq!(files[0].explain, b"{\"line\":1}\n");
        assert_eq!(files[1].hash, None);
        assert_eq!(files[1].row, b"{}");
        // A torn frame ends the file.
        let (files, whole) = parse(&path, &bytes[..bytes.len() - 3], &head).unwrap();
        assert_eq!(files.len(), 2);
        assert!(whole < bytes.len() - 3);
        assert!(is_replay_name("replay-0123456789abcdef.rpl"));
        assert!(!is_replay_name("replay-0123.rpl"));
    }
}
