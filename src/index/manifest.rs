//! The manifest: encoding, bounds-checked decoding and atomic replacement.
//!
//! # Manifest format
//! ```text
//! 8 B magic "NDDXMANI", u32 version = 4, u32 reserved = 0,
//! u64 generation (incremented by every write), u64 next_segment_id,
//! u32 nseg, nseg x { u64 id, u64 count, u64 file_len, u32 file_crc32 }   (oldest first)
//! u8 has_filter (0 or 1), if 1: { u64 id, u64 file_len, u32 file_crc32 }
//!                              (the index-wide filter file, see `global`)
//! u32 nbatches, nbatches x { u8 kind (0 anonymous, 1 named), u32 name_len,
//!                            name_len B raw name }     (batch number = position)
//! u32 nruns, nruns x { u64 timestamp, u64 docs, u64 paragraphs, u64 new_keys,
//!                      u64 total_keys, u32 batch, u32 label_len, label_len B UTF-8 label }
//! u32 crc32 of all preceding bytes; the file must end exactly there.
//! ```
//! Version 3 (written before the index-wide filter) is the same without the
//! filter field; it is read, and the next commit writes version 4 with a
//! filter (ids of segments and filters share `next_segment_id`).
//!

use std::fs::{self, File};
use std::io::Write;
use std::path::Path;

use super::global::FilterMeta;
use super::segment::{SegMeta, rd_u32};
use super::{
    Batch, FORMAT_VERSION, IndexError, MAN_MAGIC, MANIFEST, MANIFEST_TMP, Result, RunRecord, SEGMENT_VERSION, corrupt,
    fsync_dir, io_err,
};

/// In-memory copy of the manifest.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct Manifest {
    pub(super) generation: u64,
    pub(super) next_id: u64,
    pub(super) segs: Vec<SegMeta>,
    /// The index-wide filter (`None`: an empty index, or one of format 3).
    pub(super) filter: Option<FilterMeta>,
    /// Batch number = position.
    pub(super) batches: Vec<Batch>,
    pub(super) runs: Vec<RunRecord>,
}

impl Manifest {
    pub(super) fn encode(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(64 + self.segs.len() * 28 + self.runs.len() * 64);
        v.extend_from_slice(MAN_MAGIC);
        v.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        v.extend_from_slice(&0u32.to_le_bytes());
        v.extend_from_slice(&self.generation.to_le_bytes());
        v.extend_from_slice(&self.next_id.to_le_bytes());
        v.extend_from_slice(&(self.segs.len() as u32).to_le_bytes());
        for s in &self.segs {
            for x in [s.id, s.count, s.len] {
                v.extend_from_slice(&x.to_le_bytes());
            }
            v.extend_from_slice(&s.crc.to_le_bytes());
        }
        match &self.filter {
            None => v.push(0),
            Some(f) => {
                v.push(1);
                v.extend_from_slice(&f.id.to_le_bytes());
                v.extend_from_slice(&f.len.to_le_bytes());
                v.extend_from_slice(&f.crc.to_le_bytes());
            }
        }
        v.extend_from_slice(&(self.batches.len() as u32).to_le_bytes());
        for b in &self.batches {
            let (kind, name): (u8, &[u8]) = match b {
                Batch::Anonymous => (0, &[]),
                Batch::Named(n) => (1, n),
            };
            v.push(kind);
            v.extend_from_slice(&(name.len() as u32).to_le_bytes());
            v.extend_from_slice(name);
        }
        v.extend_from_slice(&(self.runs.len() as u32).to_le_bytes());
        for r in &self.runs {
            for x in [r.timestamp, r.docs, r.paragraphs, r.new_keys, r.total_keys] {
                v.extend_from_slice(&x.to_le_bytes());
            }
            v.extend_from_slice(&r.batch.to_le_bytes());
            v.extend_from_slice(&(r.label.len() as u32).to_le_bytes());
            v.extend_from_slice(r.label.as_bytes());
        }
        let crc = crc32fast::hash(&v);
        v.extend_from_slice(&crc.to_le_bytes());
        v
    }

    pub(super) fn decode(path: &Path, b: &[u8]) -> Result<Manifest> {
        if b.len() < 8 || &b[..8] != MAN_MAGIC {
            return Err(if MAN_MAGIC.starts_with(b) {
                corrupt(path, "truncated")
            } else {
                IndexError::Foreign { path: path.to_path_buf() }
            });
        }
        let short = || corrupt(path, "truncated");
        let version = rd_u32(b, 8).ok_or_else(short)?;
        if version != FORMAT_VERSION && version != SEGMENT_VERSION {
            return Err(IndexError::UnsupportedVersion { path: path.to_path_buf(), found: version });
        }
        let body = b.len().checked_sub(4).ok_or_else(short)?;
        let stored = rd_u32(b, body).ok_or_else(short)?;
        if crc32fast::hash(&b[..body]) != stored {
            return Err(corrupt(path, "checksum mismatch (truncated or damaged)"));
        }
        let mut c = Cursor { b: &b[..body], off: 16, path };
        let generation = c.u64()?;
        let next_id = c.u64()?;
        let nseg = c.u32()? as usize;
        let mut segs: Vec<SegMeta> = Vec::new();
        for _ in 0..nseg {
            let (id, count, len, crc) = (c.u64()?, c.u64()?, c.u64()?, c.u32()?);
            if id >= next_id || segs.iter().any(|s| s.id == id) {
                return Err(corrupt(path, format!("bad segment id {id}")));
            }
            segs.push(SegMeta { id, count, len, crc });
        }
        let filter = match version {
            FORMAT_VERSION => match c.bytes(1)?[0] {
                0 => None,
                1 => {
                    let (id, len, crc) = (c.u64()?, c.u64()?, c.u32()?);
                    if id >= next_id || segs.iter().any(|s| s.id == id) {
                        return Err(corrupt(path, format!("bad filter id {id}")));
                    }
                    Some(FilterMeta { id, len, crc })
                }
                _ => return Err(corrupt(path, "bad filter record")),
            },
            _ => None,
        };
        let nbatches = c.u32()? as usize;
        let mut batches = Vec::new();
        for _ in 0..nbatches {
            let kind = c.bytes(1)?[0];
            let len = c.u32()? as usize;
            let name = c.bytes(len)?;
            batches.push(match kind {
                0 if name.is_empty() => Batch::Anonymous,
                1 => Batch::Named(name.to_vec()),
                _ => return Err(corrupt(path, format!("bad batch record {}", batches.len()))),
            });
        }
        let nruns = c.u32()? as usize;
        let mut runs = Vec::new();
        for _ in 0..nruns {
            let (timestamp, docs, paragraphs) = (c.u64()?, c.u64()?, c.u64()?);
            let (new_keys, total_keys) = (c.u64()?, c.u64()?);
            let batch = c.u32()?;
            if batch as usize >= batches.len() {
                return Err(corrupt(path, format!("run names unknown batch {batch}")));
            }
            let ll = c.u32()? as usize;
            let lb = c.bytes(ll)?;
            let label = String::from_utf8(lb.to_vec()).map_err(|_| corrupt(path, "run label is not UTF-8"))?;
            runs.push(RunRecord { timestamp, docs, paragraphs, new_keys, total_keys, batch, label });
        }
        let (b, off) = (c.b, c.off);
        if off != b.len() {
            return Err(corrupt(path, "trailing bytes"));
        }
        Ok(Manifest { generation, next_id, segs, filter, batches, runs })
    }
}

/// Bounds-checked little-endian reader over manifest bytes.
struct Cursor<'a> {
    b: &'a [u8],
    off: usize,
    path: &'a Path,
}

impl<'a> Cursor<'a> {
    fn bytes(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self.off.saturating_add(n);
        let r = self.b.get(self.off..end).ok_or_else(|| corrupt(self.path, "truncated"))?;
        self.off = end;
        Ok(r)
    }
    fn u32(&mut self) -> Result<u32> {
        let mut a = [0u8; 4];
        a.copy_from_slice(self.bytes(4)?);
        Ok(u32::from_le_bytes(a))
    }
    fn u64(&mut self) -> Result<u64> {
        let mut a = [0u8; 8];
        a.copy_from_slice(self.bytes(8)?);
        Ok(u64::from_le_bytes(a))
    }
}

/// Write `MANIFEST.tmp`, fsync, rename over `MANIFEST`, fsync the directory.
pub(super) fn write_manifest(dir: &Path, m: &Manifest) -> Result<()> {
    let tmp = dir.join(MANIFEST_TMP);
    let mut f = File::create(&tmp).map_err(io_err(&tmp))?;
    f.write_all(&m.encode()).map_err(io_err(&tmp))?;
    f.sync_all().map_err(io_err(&tmp))?;
    drop(f);
    let dst = dir.join(MANIFEST);
    fs::rename(&tmp, &dst).map_err(io_err(&dst))?;
    fsync_dir(dir)
}
