//! First occurrences in another shard of a scale-out run ([`crate::scale`]):
//! carried to the [`super::Deduper`] in a [`History`](super::History) like
//! the persistent index's, under a reserved batch number.

use super::{Earlier, Occurrence};

/// The [`Earlier::batch`] reserved for a first occurrence in *another shard*
/// of a scale-out run (see [`crate::scale`]) rather than in the persistent
/// index. Its [`Earlier::doc`] is then `n << 32 | para`: the number `n` the
/// caller gave that document (a document number this run never gives
/// itself, see [`Earlier::other_shard`]) and the paragraph of the first
/// occurrence in it. Such a document is judged exactly as a document of
/// this run that first kept the key: [`Source::Run`](super::Source::Run)`(n)`.
pub const OTHER_SHARD: u32 = u32::MAX;

impl Earlier {
    /// A first occurrence at paragraph `para` of document `doc` of another
    /// shard (see [`OTHER_SHARD`]); `doc` must not be a number of a
    /// document of this run.
    pub fn other_shard(doc: u32, para: u32) -> Earlier {
        Earlier { batch: OTHER_SHARD, doc: u64::from(doc) << 32 | u64::from(para) }
    }

    /// The first occurrence, when it is in another shard.
    pub(super) fn in_other_shard(self) -> Option<Occurrence> {
        (self.batch == OTHER_SHARD).then_some(Occurrence { doc: (self.doc >> 32) as u32, para: self.doc as u32 })
    }
}
