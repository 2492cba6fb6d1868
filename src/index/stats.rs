//! What `newsdedup index stats` shows: [`IndexStats`] and its display.

use std::fs;

use super::{Batch, Index, MANIFEST, RunRecord};

/// Summary returned by [`Index::stats`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IndexStats {
    /// Keys held.
    pub keys: u64,
    /// Bytes of the manifest, the segments and the index-wide filter.
    pub bytes_on_disk: u64,
    /// Live segment files.
    pub segments: usize,
    /// Keys per segment, oldest first.
    pub segment_keys: Vec<u64>,
    /// Runs recorded.
    pub runs: u64,
    /// Batches known.
    pub batches: u64,
    /// The most recent run.
    pub last_run: Option<RunRecord>,
    /// The most recent run's batch.
    pub last_batch: Option<Batch>,
}

impl std::fmt::Display for IndexStats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "keys: {}", self.keys)?;
        writeln!(
            f,
            "bytes on disk: {} ({:.1} per key)",
            self.bytes_on_disk,
            self.bytes_on_disk as f64 / self.keys.max(1) as f64
        )?;
        writeln!(f, "segments: {} (keys per segment, oldest first: {:?})", self.segments, self.segment_keys)?;
        writeln!(f, "runs recorded: {}", self.runs)?;
        writeln!(f, "batches: {}", self.batches)?;
        match &self.last_run {
            Some(r) => writeln!(
                f,
                "last run: unix time {}, {} documents, {} paragraphs, {} new keys, label {:?}, batch {}",
                r.timestamp,
                r.docs,
                r.paragraphs,
                r.new_keys,
                r.label,
                self.last_batch.as_ref().map_or_else(|| "?".to_owned(), Batch::display)
            ),
            None => writeln!(f, "last run: none"),
        }
    }
}

impl Index {
    /// Keys, bytes on disk (the manifest, the segments, the filter and its
    /// spare), segments, runs.
    pub fn stats(&self) -> IndexStats {
        let spare = fs::symlink_metadata(self.dir.join(super::global::SPARE));
        let files = fs::metadata(self.dir.join(MANIFEST)).map_or(0, |m| m.len())
            + spare.map_or(0, |m| if m.is_file() { m.len() } else { 0 });
        IndexStats {
            keys: self.len(),
            bytes_on_disk: files
                + self.manifest.segs.iter().map(|s| s.len).sum::<u64>()
                + self.manifest.filter.map_or(0, |f| f.len),
            segments: self.segs.len(),
            segment_keys: self.manifest.segs.iter().map(|s| s.count).collect(),
            runs: self.manifest.runs.len() as u64,
            batches: self.manifest.batches.len() as u64,
            last_run: self.manifest.runs.last().cloned(),
            last_batch: self.manifest.runs.last().and_then(|r| self.batch(r.batch)).cloned(),
        }
    }
}
