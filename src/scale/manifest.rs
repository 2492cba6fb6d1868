//! `WORK/manifest.json`: the frozen walk of a scale-out run (contract 1),
//! and the names of the per-shard parts under `WORK`.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::formats::Kind;
use crate::jsonl::Format;
use crate::report::FileRow;
use crate::walk::InputFile;

/// The version of the files of a scale-out run this build writes and reads.
pub const CONTRACT: u32 = 1;

/// `WORK/manifest.json`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Manifest {
    /// [`CONTRACT`].
    pub contract: u32,
    /// The version of newsdedup that planned the run.
    pub newsdedup: String,
    /// The inputs, absolute, in the order given.
    pub roots: Vec<PathBuf>,
    /// The arguments `plan` was given (inputs and clean options): `keys`
    /// and `apply` parse them again, with `roots` as the inputs.
    pub options: Vec<String>,
    /// The shards, by rank (corpus order).
    pub shards: Vec<ShardEntry>,
    /// Report rows of what the walk passed over or could not read.
    #[serde(default)]
    pub skipped: Vec<FileRow>,
    /// Backups of earlier `--in-place` runs passed over by the walk.
    #[serde(default)]
    pub backups_left_alone: u64,
}

/// One shard: a record file, or a run of text files in corpus order.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ShardEntry {
    /// Its rank: its place in corpus order, from 0.
    pub rank: u32,
    /// `text`, `jsonl`, `csv` or `parquet`.
    pub kind: String,
    /// The files, by the relative path printed in explain lines and reports.
    pub files: Vec<String>,
    /// The same files, by absolute path.
    pub paths: Vec<PathBuf>,
    /// Their sizes when the run was planned.
    pub sizes: Vec<u64>,
    /// Their total size.
    pub bytes: u64,
}

impl ShardEntry {
    /// The shard's files as the walk listed them.
    pub(crate) fn files(&self, manifest: &Path) -> Result<Vec<InputFile>> {
        if self.files.len() != self.paths.len() || self.files.len() != self.sizes.len() {
            return Err(Error::invalid(
                manifest,
                format!("shard {}: files, paths and sizes differ in length", self.rank),
            ));
        }
        Ok(self
            .files
            .iter()
            .zip(&self.paths)
            .zip(&self.sizes)
            .map(|((rel, path), &size)| InputFile { path: path.clone(), rel: rel.into(), size })
            .collect())
    }
}

/// The name of a kind in the manifest.
pub(crate) fn kind_name(kind: Option<Kind>) -> &'static str {
    match kind {
        None => "text",
        Some(Kind::Jsonl) => "jsonl",
        Some(Kind::Csv) => "csv",
        Some(Kind::Parquet) => "parquet",
    }
}

/// The format a shard of this kind is read with, when `Auto` would not
/// find it from the name (a single input sniffed as JSON Lines).
pub(crate) fn format_of(kind: &str) -> Option<Format> {
    match kind {
        "jsonl" => Some(Format::Jsonl),
        "csv" => Some(Format::Csv),
        "parquet" => Some(Format::Parquet),
        _ => None,
    }
}

impl Manifest {
    /// Reads `WORK/manifest.json`; an error names the file.
    pub fn read(work: &Path) -> Result<Manifest> {
        let path = manifest_path(work);
        let bytes = std::fs::read(&path).map_err(|e| Error::io(&path, e))?;
        let m: Manifest = serde_json::from_slice(&bytes)
            .map_err(|e| Error::invalid(&path, format!("not a scale-out manifest: {e}")))?;
        if m.contract != CONTRACT {
            let msg = format!("contract {} (this build reads contract {CONTRACT})", m.contract);
            return Err(Error::invalid(&path, msg));
        }
        if m.shards.iter().enumerate().any(|(i, s)| s.rank as usize != i) {
            return Err(Error::invalid(&path, "shard ranks are not 0, 1, 2, ... in order"));
        }
        Ok(m)
    }

    /// The shard of rank `rank`; an error names the manifest.
    pub fn shard(&self, work: &Path, rank: u32) -> Result<&ShardEntry> {
        self.shards.get(rank as usize).ok_or_else(|| {
            let msg = match self.shards.len() {
                0 => format!("no shard {rank}: the manifest has no shards"),
                n => format!("no shard {rank}: the manifest has {n} (ranks 0 to {})", n - 1),
            };
            Error::invalid(&manifest_path(work), msg)
        })
    }
}

/// `WORK/manifest.json`.
pub fn manifest_path(work: &Path) -> PathBuf {
    work.join("manifest.json")
}

/// `WORK/<dir>/part-RRRRRR.<ext>`.
pub fn part(work: &Path, dir: &str, rank: u32, ext: &str) -> PathBuf {
    work.join(dir).join(format!("part-{rank:06}.{ext}"))
}

/// `WORK/drops/shard=R`.
pub fn drops_dir(work: &Path, rank: u32) -> PathBuf {
    work.join("drops").join(format!("shard={rank}"))
}
