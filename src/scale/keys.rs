//! The `keys` step's sink: every prepared document of a shard becomes one
//! row for its whole-document key followed by one row per paragraph, in
//! `WORK/keys/part-RRRRRR.parquet` (`k_hi, k_lo, pos, doc`), and one row in
//! `WORK/docs/part-RRRRRR.parquet` (`doc, line, file, id`).
//!
//! `pos = rank << 32 | seq`, `seq` counting the shard's rows from 0, so a
//! shard holds fewer than 2³² rows. A document without paragraphs writes
//! nothing (the single-node run ignores its document key too).
//!
//! Document keys hash the concatenated 32-byte paragraph digests, paragraph
//! keys the normalised text: the two are not separated by construction (a
//! paragraph whose normalised text *is* such a concatenation would share a
//! document's key). They share one 128-bit space exactly as they do in the
//! single-node persistent index; the difference is only that, without an
//! index, the single-node run keeps them in two tables.

use std::path::Path;
use std::sync::Arc;

use arrow_array::ArrayRef;
use arrow_array::builder::StringBuilder;

use super::parts::{BATCH_ROWS, PartWriter, schema};
use crate::error::{Error, Result};
use crate::key::{Digest, Keyed};
use crate::pipeline::scaled::KeySink;

/// The key rows and document rows of one shard being written.
pub(crate) struct KeysWriter {
    rank: u32,
    seq: u64,
    keys: PartWriter,
    docs: PartWriter,
    /// k_hi, k_lo, pos, doc.
    key_cols: [Vec<i64>; 4],
    /// doc, line.
    doc_cols: [Vec<i64>; 2],
    files: StringBuilder,
    ids: StringBuilder,
    documents: u64,
    /// The keys part, for errors.
    dest: std::path::PathBuf,
}

/// The largest row number of a shard: `seq` is the low 32 bits of `pos`.
const MAX_SEQ: u64 = u32::MAX as u64;

impl KeysWriter {
    /// Starts the two parts of shard `rank`.
    pub(crate) fn create(keys: &Path, docs: &Path, rank: u32) -> Result<KeysWriter> {
        Ok(KeysWriter {
            rank,
            seq: 0,
            keys: PartWriter::create(keys, schema(&["k_hi", "k_lo", "pos", "doc"], &[]), &["pos", "doc"])?,
            docs: PartWriter::create(docs, schema(&["doc", "line"], &["file", "id"]), &["doc"])?,
            key_cols: Default::default(),
            doc_cols: Default::default(),
            files: StringBuilder::new(),
            ids: StringBuilder::new(),
            documents: 0,
            dest: keys.to_path_buf(),
        })
    }

    fn push_key(&mut self, key: u128, pos: i64, doc: i64) {
        self.key_cols[0].push((key >> 64) as u64 as i64);
        self.key_cols[1].push(key as u64 as i64);
        self.key_cols[2].push(pos);
        self.key_cols[3].push(doc);
    }

    fn flush_docs(&mut self) -> Result<()> {
        let [doc, line] = std::mem::take(&mut self.doc_cols);
        if doc.is_empty() {
            return Ok(());
        }
        let ints = [doc, line].map(|c| Arc::new(arrow_array::Int64Array::from(c)) as ArrayRef);
        let [doc, line] = ints;
        self.docs.write(vec![doc, line, Arc::new(self.files.finish()), Arc::new(self.ids.finish())])
    }
}

impl KeySink for KeysWriter {
    fn finish(mut self: Box<Self>) -> Result<String> {
        self.keys.write_ints(&mut self.key_cols)?;
        self.flush_docs()?;
        let KeysWriter { keys, docs, rank, documents, seq, .. } = *self;
        let bytes = keys.commit()? + docs.commit()?;
        Ok(serde_json::json!({"rank": rank, "documents": documents, "rows": seq, "bytes": bytes}).to_string())
    }

    fn document(&mut self, file: &str, (line, id): (u64, Option<&str>), keys: &[Keyed], whole: &Digest) -> Result<()> {
        if keys.is_empty() {
            return Ok(());
        }
        let n = keys.len() as u64 + 1;
        if self.seq + n > MAX_SEQ {
            let msg = format!(
                "shard {} has more than {MAX_SEQ} keys (at {file}): plan with a smaller --shard-bytes, or split the file",
                self.rank
            );
            return Err(Error::invalid(&self.dest, msg));
        }
        let base = i64::from(self.rank) << 32;
        let doc = base | self.seq as i64;
        self.push_key(whole.prefix(), doc, doc);
        for (i, k) in keys.iter().enumerate() {
            self.push_key(k.digest.prefix(), doc + 1 + i as i64, doc);
        }
        self.seq += n;
        self.doc_cols[0].push(doc);
        self.doc_cols[1].push(i64::try_from(line).unwrap_or(i64::MAX));
        self.files.append_value(file);
        self.ids.append_option(id);
        self.documents += 1;
        if self.key_cols[0].len() >= BATCH_ROWS {
            self.keys.write_ints(&mut self.key_cols)?;
        }
        if self.doc_cols[0].len() >= BATCH_ROWS / 8 {
            self.flush_docs()?;
        }
        Ok(())
    }
}
