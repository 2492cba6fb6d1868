//! Pending first occurrences of a run that changes its input (`--in-place`).
//!
//! Such a run replaces input files before its commit, so a run killed in
//! between leaves files cleaned by a batch the index knows nothing of. To let
//! the next run of the batch recognise them (and record the document keys
//! of files already removed), the run appends the first occurrences of the
//! documents it is about to publish to `pending-<hash>.jnl` in the index
//! folder and fsyncs it first; the next run of that batch that is not a
//! retry reads them as its own ([`Index::pending`]), and a commit of the
//! batch removes the file. The index proper is still changed only by the
//! commit.
//!
//! Format: 8 B magic `NDDXJRNL`, u32 version, u32 name length, the batch
//! name; then chunks `{ u32 n, n x { u128 key BE, u64 doc LE }, u32 crc32 of
//! the chunk before it }`. A chunk torn by a crash fails its checksum and
//! ends the journal: its documents were not published yet.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use super::{Batch, Entry, Index, IndexError, Result, SEGMENT_VERSION, corrupt, fsync_dir, io_err};

const MAGIC: &[u8; 8] = b"NDDXJRNL";

/// True for a journal's file name.
pub(super) fn is_journal_name(n: &str) -> bool {
    is_batch_file_name(n, "pending-", ".jnl")
}

fn journal_path(dir: &Path, name: &[u8]) -> PathBuf {
    batch_file_path(dir, name, "pending-", ".jnl")
}

fn header(name: &[u8]) -> Vec<u8> {
    batch_file_header(MAGIC, name)
}

/// True for the name of a per-batch file of the index (the journal, the
/// replay): `PREFIX` + 16 lower-case hex digits + `SUFFIX`.
pub(super) fn is_batch_file_name(n: &str, prefix: &str, suffix: &str) -> bool {
    n.strip_prefix(prefix)
        .and_then(|r| r.strip_suffix(suffix))
        .is_some_and(|hex| hex.len() == 16 && hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)))
}

/// The path of a batch's per-batch file: named by the first 64 bits of the
/// SHA-256 of the batch name (raw bytes, never lossy).
pub(super) fn batch_file_path(dir: &Path, name: &[u8], prefix: &str, suffix: &str) -> PathBuf {
    use sha2::{Digest, Sha256};
    let h = Sha256::digest(name);
    let id = u64::from_be_bytes([h[0], h[1], h[2], h[3], h[4], h[5], h[6], h[7]]);
    dir.join(format!("{prefix}{id:016x}{suffix}"))
}

/// A per-batch file's header: magic, format version, the batch name.
pub(super) fn batch_file_header(magic: &[u8; 8], name: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(16 + name.len());
    v.extend_from_slice(magic);
    v.extend_from_slice(&SEGMENT_VERSION.to_le_bytes());
    v.extend_from_slice(&(name.len() as u32).to_le_bytes());
    v.extend_from_slice(name);
    v
}

/// An open journal, appended to by [`Journal::append`].
pub struct Journal {
    file: File,
    path: PathBuf,
}

impl Journal {
    /// Appends entries (`(key, document anchor)`) and makes them durable.
    pub fn append(&mut self, entries: &[(u128, u64)]) -> Result<()> {
        if entries.is_empty() {
            return Ok(());
        }
        for chunk in entries.chunks(1 << 16) {
            let mut v = Vec::with_capacity(8 + 24 * chunk.len());
            v.extend_from_slice(&(chunk.len() as u32).to_le_bytes());
            for &(key, doc) in chunk {
                v.extend_from_slice(&key.to_be_bytes());
                v.extend_from_slice(&doc.to_le_bytes());
            }
            let crc = crc32fast::hash(&v);
            v.extend_from_slice(&crc.to_le_bytes());
            self.file.write_all(&v).map_err(io_err(&self.path))?;
        }
        self.file.sync_data().map_err(io_err(&self.path))
    }
}

impl Index {
    /// The first occurrences a killed run of the named `batch` journaled
    /// (empty for an anonymous batch or when there is no journal), with
    /// `number` as their batch.
    pub fn pending(&self, batch: &Batch, number: u32) -> Result<Vec<Entry>> {
        let Batch::Named(name) = batch else { return Ok(Vec::new()) };
        let path = journal_path(&self.dir, name);
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io_err(&path)(e)),
        };
        let head = header(name);
        if head.starts_with(&bytes) {
            return Ok(Vec::new()); // created, header torn or not yet written
        }
        if !bytes.starts_with(&head) {
            return Err(if bytes.starts_with(MAGIC) {
                corrupt(&path, "journal of another batch or version")
            } else {
                IndexError::Foreign { path }
            });
        }
        let mut out = Vec::new();
        let mut rest = &bytes[head.len()..];
        while rest.len() >= 4 {
            let n = u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
            let Some(end) = n.checked_mul(24).and_then(|b| b.checked_add(4)) else { break };
            let Some(crc) = rest.get(end..end + 4) else { break };
            if crc32fast::hash(&rest[..end]).to_le_bytes() != crc {
                break;
            }
            for rec in rest[4..end].chunks_exact(24) {
                let mut k = [0u8; 16];
                k.copy_from_slice(&rec[..16]);
                let mut d = [0u8; 8];
                d.copy_from_slice(&rec[16..]);
                out.push(Entry { key: u128::from_be_bytes(k), doc: u64::from_le_bytes(d), batch: number });
            }
            rest = &rest[end + 4..];
        }
        Ok(out)
    }

    /// Opens (creating) the journal of the named `batch` for appending;
    /// `None` for an anonymous batch (no later run can use it).
    pub fn journal(&self, batch: &Batch) -> Result<Option<Journal>> {
        let Batch::Named(name) = batch else { return Ok(None) };
        let path = journal_path(&self.dir, name);
        let head = header(name);
        let mut file = OpenOptions::new().create(true).append(true).open(&path).map_err(io_err(&path))?;
        if file.metadata().map_err(io_err(&path))?.len() < head.len() as u64 {
            // New, or its header was torn: start it over.
            file.set_len(0).map_err(io_err(&path))?;
            file.write_all(&head).map_err(io_err(&path))?;
            file.sync_data().map_err(io_err(&path))?;
            fsync_dir(&self.dir)?;
        }
        Ok(Some(Journal { file, path }))
    }

    /// Removes the journal of `batch` (done by its commit; best effort: a
    /// leftover is ignored by retries and removed by the next commit).
    pub fn drop_journal(&self, batch: &Batch) {
        if let Batch::Named(name) = batch {
            let _ = fs::remove_file(journal_path(&self.dir, name));
        }
    }
}
