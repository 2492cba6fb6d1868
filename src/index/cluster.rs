//! The cluster index of a scale-out run, and its conversion to and from the
//! single-node index (`newsdedup index export/import`).
//!
//! A cluster index is a folder:
//!
//! ```text
//! INDEX/manifest.json         {"contract": 1, "batches": [{"seq": 0, "name": "...", "file": "batch-000000.parquet", "keys": N}, ...]}
//! INDEX/batch-000000.parquet  k_hi INT64, k_lo INT64, anchor INT64: one row per key first kept by that batch
//! ```
//!
//! A batch's `seq` is its number in the single-node index; `name` is the
//! batch name (`null` for an anonymous batch); `anchor` the anchor of the
//! document that first kept the key (see [`crate::dedup::anchor`]). Export
//! and import keep all three, so a corpus cleaned on one side continues on
//! the other as if it had never moved.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{Batch, Entry, Index, RunInfo, corrupt, unix_now};
use crate::error::{Error, Result};
use crate::scale::parts::{Columns, PartWriter, schema};
use crate::write::write_atomic;

/// `INDEX/manifest.json` of a cluster index.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ClusterManifest {
    /// [`crate::scale::CONTRACT`].
    pub contract: u32,
    /// The batches, by `seq`.
    pub batches: Vec<ClusterBatch>,
}

/// One batch of a cluster index.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ClusterBatch {
    /// Its number: its place in the list, from 0.
    pub seq: u32,
    /// Its name (`None`: anonymous).
    pub name: Option<String>,
    /// Its Parquet file, relative to the index folder.
    pub file: String,
    /// Its number of keys.
    pub keys: u64,
}

impl ClusterManifest {
    /// Reads `dir/manifest.json`; an error names the file.
    pub fn read(dir: &Path) -> Result<ClusterManifest> {
        let path = dir.join("manifest.json");
        let bytes = std::fs::read(&path).map_err(|e| Error::io(&path, e))?;
        let m: ClusterManifest = serde_json::from_slice(&bytes)
            .map_err(|e| Error::invalid(&path, format!("not a cluster index manifest: {e}")))?;
        if m.contract != crate::scale::CONTRACT {
            return Err(Error::invalid(
                &path,
                format!("contract {} (this build reads {})", m.contract, crate::scale::CONTRACT),
            ));
        }
        if m.batches.iter().enumerate().any(|(i, b)| b.seq as usize != i) {
            return Err(Error::invalid(&path, "batch seq numbers are not 0, 1, 2, ... in order"));
        }
        Ok(m)
    }
}

/// Refuses to write into a folder that holds anything.
fn fresh_dir(dir: &Path) -> Result<()> {
    match std::fs::read_dir(dir) {
        Ok(entries) => match entries.count() {
            0 => Ok(()),
            _ => Err(Error::invalid(dir, "exists and is not empty")),
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))
        }
        Err(e) => Err(Error::io(dir, e)),
    }
}

/// Writes the single-node index at `from` as a new cluster index `to`;
/// returns a JSON summary `{"batches","keys"}`.
pub fn export(from: &Path, to: &Path) -> Result<String> {
    let ix = Index::open_existing(from)?;
    let mut by_batch: HashMap<u32, Vec<(u128, u64)>> = HashMap::new();
    for s in &ix.segs {
        let seg = from.join(super::segment::seg_name(s.meta.id));
        for i in 0..s.meta.count as usize {
            let e = s.entry(i).ok_or_else(|| corrupt(&seg, "entry out of range"))?;
            // The live entry of a key (a later segment may hold it again).
            if ix.get(e.key) == Some((e.doc, e.batch)) {
                by_batch.entry(e.batch).or_default().push((e.key, e.doc));
            }
        }
    }
    fresh_dir(to)?;
    let mut m = ClusterManifest { contract: crate::scale::CONTRACT, batches: Vec::new() };
    for (seq, batch) in ix.manifest.batches.iter().enumerate() {
        let seq = u32::try_from(seq).map_err(|_| Error::invalid(from, "too many batches"))?;
        let name = match batch {
            Batch::Named(bytes) => Some(String::from_utf8(bytes.clone()).map_err(|_| {
                Error::invalid(from, format!("batch {seq} has a name that is not UTF-8 ({})", batch.display()))
            })?),
            Batch::Anonymous => None,
        };
        let mut keys = by_batch.remove(&seq).unwrap_or_default();
        keys.sort_unstable();
        keys.dedup_by_key(|k| k.0);
        let file = format!("batch-{seq:06}.parquet");
        write_batch(&to.join(&file), &keys)?;
        m.batches.push(ClusterBatch { seq, name, file, keys: keys.len() as u64 });
    }
    let total: u64 = m.batches.iter().map(|b| b.keys).sum();
    write_manifest(to, &m)?;
    Ok(serde_json::json!({"batches": m.batches.len(), "keys": total}).to_string())
}

/// Writes `dir/manifest.json` atomically.
pub fn write_manifest(dir: &Path, m: &ClusterManifest) -> Result<()> {
    let mut text = serde_json::to_vec_pretty(m).map_err(|e| Error::invalid(dir, e.to_string()))?;
    text.push(b'\n');
    write_atomic(&dir.join("manifest.json"), &text, None)
}

/// Writes one batch file (`k_hi, k_lo, anchor`) atomically.
pub fn write_batch(path: &Path, keys: &[(u128, u64)]) -> Result<()> {
    let mut w = PartWriter::create(path, schema(&["k_hi", "k_lo", "anchor"], &[]), &[])?;
    for chunk in keys.chunks(crate::scale::parts::BATCH_ROWS) {
        let mut cols: [Vec<i64>; 3] = Default::default();
        for &(k, a) in chunk {
            cols[0].push((k >> 64) as u64 as i64);
            cols[1].push(k as u64 as i64);
            cols[2].push(a as i64);
        }
        w.write_ints(&mut cols)?;
    }
    w.commit().map(|_| ())
}

/// Reads one batch file: `(key, anchor)` per row.
pub fn read_batch(path: &Path) -> Result<Vec<(u128, u64)>> {
    let c = Columns::read(path)?;
    let (hi, lo, anchor) = (c.ints_not_null("k_hi")?, c.ints_not_null("k_lo")?, c.ints_not_null("anchor")?);
    Ok(hi
        .iter()
        .zip(&lo)
        .zip(&anchor)
        .map(|((&h, &l), &a)| ((u128::from(h as u64) << 64) | u128::from(l as u64), a as u64))
        .collect())
}

/// Makes a new single-node index at `to` from the cluster index at `from`,
/// batch by batch in `seq` order (a key two batches hold stays with the
/// earlier); returns a JSON summary `{"batches","keys"}`.
pub fn import(from: &Path, to: &Path) -> Result<String> {
    let m = ClusterManifest::read(from)?;
    fresh_dir(to)?;
    let mut ix = Index::open(to)?;
    let mut total = 0u64;
    for b in &m.batches {
        let path: PathBuf = from.join(&b.file);
        let batch = b.name.as_ref().map_or(Batch::Anonymous, |n| Batch::Named(n.clone().into_bytes()));
        let number = ix.batch_id(&batch).number;
        let mut keys = read_batch(&path)?;
        keys.sort_unstable();
        keys.dedup_by_key(|k| k.0);
        let entries: Vec<Entry> = keys
            .into_iter()
            .filter(|&(key, _)| ix.get(key).is_none())
            .map(|(key, doc)| Entry { key, doc, batch: number })
            .collect();
        total += entries.len() as u64;
        let label = "index import (from a cluster index)".to_owned();
        let run = RunInfo { timestamp: unix_now(), docs: 0, paragraphs: 0, label, batch };
        ix.commit_in_place(entries, run)?;
    }
    Ok(serde_json::json!({"batches": m.batches.len(), "keys": total}).to_string())
}

/// The driver's last step, the commit of a scale-out run (`WORK` planned by
/// [`crate::scale::plan_args`], every shard applied): the union of the
/// shards' new keys (`WORK/newkeys/part-*.parquet`) becomes batch `name`
/// of the cluster index at `index` (created if absent). The batch file is
/// written first, then `manifest.json` is replaced atomically: a run killed
/// before that leaves the index as it was. A batch of that name already
/// listed is a retry of a committed run: nothing is written. Returns a JSON
/// summary `{"seq","keys","committed"}`.
pub fn append(index: &Path, work: &Path, name: &str) -> Result<String> {
    let mut m = match index.join("manifest.json").exists() {
        true => ClusterManifest::read(index)?,
        false => ClusterManifest { contract: crate::scale::CONTRACT, batches: Vec::new() },
    };
    if let Some(b) = m.batches.iter().find(|b| b.name.as_deref() == Some(name)) {
        return Ok(serde_json::json!({"seq": b.seq, "keys": b.keys, "committed": false}).to_string());
    }
    let plan = crate::scale::Manifest::read(work)?;
    let mut keys = Vec::new();
    for shard in &plan.shards {
        keys.extend(read_batch(&crate::scale::manifest::part(work, "newkeys", shard.rank, "parquet"))?);
    }
    keys.sort_unstable();
    keys.dedup_by_key(|k| k.0);
    let seq = u32::try_from(m.batches.len()).map_err(|_| Error::invalid(index, "too many batches"))?;
    let file = format!("batch-{seq:06}.parquet");
    std::fs::create_dir_all(index).map_err(|e| Error::io(index, e))?;
    write_batch(&index.join(&file), &keys)?;
    m.batches.push(ClusterBatch { seq, name: Some(name.to_owned()), file, keys: keys.len() as u64 });
    write_manifest(index, &m)?;
    Ok(serde_json::json!({"seq": seq, "keys": keys.len(), "committed": true}).to_string())
}
