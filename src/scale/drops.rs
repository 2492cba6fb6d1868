//! The `apply` step's history: a shard's drop list (`WORK/drops/shard=R/*.parquet`,
//! written by the decide step) read into the per-document [`History`] the
//! single-node [`crate::dedup::Deduper`] takes.
//!
//! A row names a key row of this shard (`pos`) whose first occurrence is in
//! an earlier shard (`first_pos`, in document `first_doc`, named by
//! `first_file`, `first_line`, `first_id`) or in the cluster index
//! (`first_pos < 0`: batch `-first_pos - 1` named `batch`, document
//! `anchor`). Each document of another shard is given a number from the top
//! of the document-number space (never one of this shard's), so it is judged
//! exactly as the single-node run judges the document that first kept the key.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::parts::Columns;
use crate::dedup::{EARLIER_RUN, Earlier, History, OTHER_SHARD};
use crate::error::{Error, Result};
use crate::key::{Digest, Keyed};
use crate::pipeline::scaled::ShardHistory;

/// The drop list of one shard, sorted by `pos`, consumed in order.
pub(crate) struct DropHistory {
    rank: u32,
    /// (pos, first occurrence), sorted by pos.
    rows: Vec<(i64, Earlier)>,
    next: usize,
    /// The next document's first row number in the shard.
    seq: u64,
    /// Documents of other shards by number: `EARLIER_RUN - 1 - i` is `docs[i]`.
    docs: Vec<(u32, u64, Option<Box<str>>)>,
    /// Names of those documents' files.
    files: Vec<Box<str>>,
    batches: HashMap<u32, String>,
    /// Document scope: no document has a history.
    ignore: bool,
    /// The folder, for errors.
    dir: PathBuf,
}

/// The `*.parquet` files of a folder, sorted (none when it does not exist).
fn parquet_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io(dir, e)),
    };
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| Error::io(dir, e))?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.ends_with(".parquet") && !name.starts_with(['.', '_']) {
            out.push(entry.path());
        }
    }
    out.sort();
    Ok(out)
}

impl DropHistory {
    /// Reads every part of the drop list of shard `rank` in `dir`.
    pub(crate) fn read(dir: &Path, rank: u32, ignore: bool) -> Result<DropHistory> {
        let mut h = DropHistory {
            rank,
            rows: Vec::new(),
            next: 0,
            seq: 0,
            docs: Vec::new(),
            files: Vec::new(),
            batches: HashMap::new(),
            ignore,
            dir: dir.to_path_buf(),
        };
        let mut numbers: HashMap<i64, u32> = HashMap::new();
        let mut names: HashMap<String, u32> = HashMap::new();
        for path in parquet_files(dir)? {
            h.add_part(&path, &mut numbers, &mut names)?;
        }
        h.rows.sort_unstable_by_key(|r| r.0);
        if let Some(w) = h.rows.windows(2).find(|w| w[0].0 == w[1].0 && w[0].1 != w[1].1) {
            return Err(Error::invalid(dir, format!("two different rows for pos {}", w[0].0)));
        }
        h.rows.dedup_by_key(|r| r.0);
        Ok(h)
    }

    fn add_part(
        &mut self,
        path: &Path,
        numbers: &mut HashMap<i64, u32>,
        names: &mut HashMap<String, u32>,
    ) -> Result<()> {
        let c = Columns::read(path)?;
        let (pos, first_pos) = (c.ints_not_null("pos")?, c.ints_not_null("first_pos")?);
        let (first_doc, first_line) = (c.ints("first_doc")?, c.ints("first_line")?);
        let (first_file, first_id) = (c.strings("first_file")?, c.strings("first_id")?);
        let (anchor, batch) = (c.ints("anchor")?, c.strings("batch")?);
        let bad = |row: usize, what: &str| Error::invalid(path, format!("row {row}: {what}"));
        for row in 0..pos.len() {
            let (p, f) = (pos[row], first_pos[row]);
            if p >> 32 != i64::from(self.rank) || p < 0 {
                return Err(bad(row, &format!("pos {p} is not in shard {}", self.rank)));
            }
            let earlier = if f < 0 {
                let b =
                    u32::try_from(-(f + 1)).ok().filter(|&b| b != OTHER_SHARD).ok_or_else(|| bad(row, "bad batch"))?;
                let a = anchor[row].ok_or_else(|| bad(row, "an index first occurrence without an anchor"))?;
                let name = batch[row].clone().unwrap_or_else(|| "<anonymous>".to_owned());
                self.batches.entry(b).or_insert(name);
                Earlier { batch: b, doc: a as u64 }
            } else {
                let d = first_doc[row].ok_or_else(|| bad(row, "first_doc is null"))?;
                if f >= p || f >> 32 == p >> 32 || d > f || d >> 32 != f >> 32 {
                    return Err(bad(
                        row,
                        &format!("first_pos {f} / first_doc {d} cannot be the first occurrence of pos {p}"),
                    ));
                }
                let number = match numbers.get(&d) {
                    Some(&n) => n,
                    None => {
                        let n = EARLIER_RUN
                            - 1
                            - u32::try_from(self.docs.len()).map_err(|_| bad(row, "too many documents"))?;
                        let file = first_file[row].clone().ok_or_else(|| bad(row, "first_file is null"))?;
                        let next = u32::try_from(self.files.len()).unwrap_or(u32::MAX);
                        let file = *names.entry(file.clone()).or_insert_with(|| {
                            self.files.push(file.into());
                            next
                        });
                        let line = first_line[row].unwrap_or(0).max(0) as u64;
                        self.docs.push((file, line, first_id[row].clone().map(Into::into)));
                        numbers.insert(d, n);
                        n
                    }
                };
                let para = if f == d { 0 } else { u32::try_from(f - d - 1).map_err(|_| bad(row, "bad first_pos"))? };
                Earlier::other_shard(number, para)
            };
            self.rows.push((p, earlier));
        }
        Ok(())
    }

    /// The lowest number given to a document of another shard.
    fn lowest(&self) -> u32 {
        EARLIER_RUN - u32::try_from(self.docs.len()).unwrap_or(EARLIER_RUN)
    }
}

impl ShardHistory for DropHistory {
    fn history(&mut self, keys: &[Keyed], _whole: &Digest, local: u32) -> Result<Option<History>> {
        if keys.is_empty() {
            return Ok(None);
        }
        if local >= self.lowest() {
            return Err(Error::TooManyDocuments { limit: u64::from(self.lowest()) });
        }
        let base = (i64::from(self.rank) << 32) | self.seq as i64;
        let end = base + 1 + keys.len() as i64;
        self.seq += keys.len() as u64 + 1;
        if let Some(&(p, _)) = self.rows.get(self.next).filter(|r| r.0 < base) {
            return Err(self.mismatch(p));
        }
        let mut h = History::default();
        while let Some(&(p, e)) = self.rows.get(self.next).filter(|r| r.0 < end) {
            self.next += 1;
            match (p - base) as usize {
                0 => h.document = Some(e),
                i => {
                    if h.paragraphs.is_empty() {
                        h.paragraphs = vec![None; keys.len()];
                    }
                    h.paragraphs[i - 1] = Some(e);
                }
            }
        }
        let found = h.document.is_some() || !h.paragraphs.is_empty();
        Ok((found && !self.ignore).then_some(h))
    }

    fn document(&self, number: u32) -> Option<(&str, u64, Option<&str>)> {
        let i = (EARLIER_RUN - 1).checked_sub(number)? as usize;
        let (file, line, id) = self.docs.get(i)?;
        Some((&self.files[*file as usize], *line, id.as_deref()))
    }

    fn batch_name(&self, batch: u32) -> Option<String> {
        self.batches.get(&batch).cloned()
    }

    fn finish(&self) -> Result<()> {
        match self.rows.get(self.next) {
            Some(&(p, _)) => Err(self.mismatch(p)),
            None => Ok(()),
        }
    }
}

impl DropHistory {
    fn mismatch(&self, pos: i64) -> Error {
        let msg = format!(
            "the drop list names pos {pos} (row {} of shard {}), which is no key row of the shard: \
             the shard changed since its keys were written, or the drop list is from another run",
            pos & 0xffff_ffff,
            self.rank
        );
        Error::invalid(&self.dir, msg)
    }
}
