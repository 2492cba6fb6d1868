//! Batches: which runs are retries of one another.
//!
//! Every run belongs to a *batch*. The manifest keeps a table of the batches
//! it has seen (a batch's number is its position in the table) and each run
//! record and each key entry carry a batch number. A run of a batch the
//! table already holds is a *retry*: the pipeline keeps again what that
//! batch kept first (see [`crate::dedup`]). An anonymous batch (standard
//! input without `--batch`) gets a fresh number every time, so no later run
//! is ever its retry.

use super::{Index, IndexError, Result};

/// The batch of a run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Batch {
    /// A named batch: the raw bytes of the name (by default the canonical
    /// input path, never converted lossily, so two names that differ only
    /// in invalid UTF-8 are two batches).
    Named(Vec<u8>),
    /// A batch no later run can be a retry of.
    #[default]
    Anonymous,
}

impl Batch {
    /// The name for messages (lossy UTF-8; `<anonymous>`).
    pub fn display(&self) -> String {
        match self {
            Batch::Named(n) => String::from_utf8_lossy(n).into_owned(),
            Batch::Anonymous => "<anonymous>".to_owned(),
        }
    }
}

/// What [`Index::batch_id`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchId {
    /// The number entries of this run must carry.
    pub number: u32,
    /// True when the index already holds a committed run of this batch.
    pub retry: bool,
}

impl Index {
    /// The number of `batch`: its place in the table if a committed run
    /// belongs to it (a retry), else the number the next commit gives it.
    pub fn batch_id(&self, batch: &Batch) -> BatchId {
        let known = match batch {
            Batch::Named(_) => self.manifest.batches.iter().position(|b| b == batch),
            Batch::Anonymous => None,
        };
        let number = |i: usize| u32::try_from(i).unwrap_or(u32::MAX);
        match known {
            Some(i) => BatchId { number: number(i), retry: true },
            None => BatchId { number: number(self.manifest.batches.len()), retry: false },
        }
    }

    /// The batch with this number, if the index holds it.
    pub fn batch(&self, number: u32) -> Option<&Batch> {
        self.manifest.batches.get(number as usize)
    }

    /// The batch table after a commit of a run of `batch`, and that run's
    /// number; refuses entries naming (in `new`) a batch that does not exist.
    pub(super) fn batches_with(&self, batch: Batch, mut new: impl Iterator<Item = u32>) -> Result<(Vec<Batch>, u32)> {
        let id = self.batch_id(&batch);
        let mut table = self.manifest.batches.clone();
        if !id.retry {
            table.push(batch);
        }
        if table.len() > u32::MAX as usize {
            return Err(IndexError::Invalid { path: self.dir.clone(), reason: "too many batches".into() });
        }
        if let Some(b) = new.find(|&b| b as usize >= table.len()) {
            return Err(IndexError::Invalid {
                path: self.dir.clone(),
                reason: format!("entry names batch {b} but the index has {}", table.len()),
            });
        }
        Ok((table, id.number))
    }

    /// For [`Index::merge_from`]: this index's number for each of `other`'s
    /// batches (named batches are matched by name, anonymous ones added),
    /// and the table with the added ones.
    pub(super) fn adopt_batches(&self, other: &[Batch]) -> (Vec<Batch>, Vec<u32>) {
        let mut table = self.manifest.batches.clone();
        let map = other
            .iter()
            .map(|b| {
                let found = match b {
                    Batch::Named(_) => table.iter().position(|t| t == b),
                    Batch::Anonymous => None,
                };
                let i = found.unwrap_or_else(|| {
                    table.push(b.clone());
                    table.len() - 1
                });
                u32::try_from(i).unwrap_or(u32::MAX)
            })
            .collect();
        (table, map)
    }
}
