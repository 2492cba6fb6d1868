//! What a segment is written from ([`super::writer`]): the sorted sources
//! of a merge (segments and a commit's new entries) and their k-way merge,
//! or one sorted run taken as it is, each giving every key once, in order.

use super::error::Result;
use super::key_docs::{KeyDoc, each_merged};
use super::segment::{Segment, rd_key};
use super::{Entry, HDR};

/// A sorted input to a merge: an existing segment or the new batch.
pub(super) enum Source<'a> {
    Seg(&'a Segment),
    New(&'a [Entry]),
}

/// Cursor over one merge source, with its current head key cached.
struct Head<'a> {
    keys: &'a [u8],
    vals: &'a [u8],
    new: &'a [Entry],
    pos: usize,
    len: usize,
    key: u128,
}

impl<'a> Head<'a> {
    fn new(src: &Source<'a>) -> Self {
        let (keys, vals, new, len): (&[u8], &[u8], &[Entry], usize) = match src {
            Source::Seg(s) => {
                let n = s.meta.count as usize;
                let m = &s.map[..];
                (m.get(HDR..s.vals_off).unwrap_or_default(), m.get(s.vals_off..s.dir_off).unwrap_or_default(), &[], n)
            }
            Source::New(v) => (&[], &[], v, v.len()),
        };
        let mut h = Head { keys, vals, new, pos: 0, len, key: 0 };
        h.load();
        h
    }
    #[inline]
    fn load(&mut self) {
        if self.pos < self.len {
            self.key = if self.new.is_empty() {
                rd_key(self.keys, 16 * self.pos).unwrap_or(0)
            } else {
                self.new.get(self.pos).map_or(0, |e| e.key)
            };
        }
    }
    /// Steps past every entry whose key is `key` (at most one in a segment).
    #[inline]
    fn skip(&mut self, key: u128) {
        while self.live() && self.key == key {
            self.pos += 1;
            self.load();
        }
    }
    #[inline]
    fn live(&self) -> bool {
        self.pos < self.len
    }
    /// Value bytes of the head: doc u64 LE then batch u32 LE.
    #[inline]
    fn value(&self) -> [u8; 12] {
        let mut v = [0u8; 12];
        if self.new.is_empty() {
            if let Some(b) = self.vals.get(12 * self.pos..12 * self.pos + 12) {
                v.copy_from_slice(b);
            }
        } else if let Some(e) = self.new.get(self.pos) {
            v = value(e);
        }
        v
    }
}

/// K-way merge over sources ordered oldest first; on equal keys the oldest
/// source's entry wins and the others are skipped (so does the first of
/// equal keys within one source). Calls `f(key, value)`. The head with the
/// smallest key is found in one pass that also notes whether another head
/// holds the same key (the rare case that needs skipping); once one source
/// is left, its entries are taken without comparisons. (`f` has one call
/// site, so that it is inlined into the loop.)
fn merge_each(srcs: &[Source<'_>], mut f: impl FnMut(u128, &[u8; 12]) -> Result<()>) -> Result<()> {
    let mut heads: Vec<Head<'_>> = srcs.iter().map(Head::new).collect();
    heads.retain(|h| h.live());
    while let Some(first) = heads.first() {
        let (mut best, mut bk, mut dup) = (0, first.key, false);
        for (s, h) in heads.iter().enumerate().skip(1) {
            if h.key < bk {
                (best, bk, dup) = (s, h.key, false);
            } else if h.key == bk {
                dup = true;
            }
        }
        f(bk, &heads[best].value())?;
        heads[best].skip(bk);
        if dup {
            for h in &mut heads {
                h.skip(bk);
            }
        }
        if dup || !heads[best].live() {
            heads.retain(|h| h.live());
        }
    }
    Ok(())
}

/// The value bytes of an entry in a segment: doc u64 LE then batch u32 LE.
#[inline]
fn value(e: &Entry) -> [u8; 12] {
    let mut v = [0u8; 12];
    v[..8].copy_from_slice(&e.doc.to_le_bytes());
    v[8..].copy_from_slice(&e.batch.to_le_bytes());
    v
}

/// What a segment is written from: the entries, in key order, each key once.
pub(super) trait Entries {
    /// Calls `f(key, value)` for each entry in order.
    fn each(self, f: impl FnMut(u128, &[u8; 12]) -> Result<()>) -> Result<()>;
}

/// The k-way merge of sources, see [`merge_each`].
pub(super) struct Merged<'s, 'a>(pub(super) &'s [Source<'a>]);

impl Entries for Merged<'_, '_> {
    fn each(self, f: impl FnMut(u128, &[u8; 12]) -> Result<()>) -> Result<()> {
        merge_each(self.0, f)
    }
}

/// One sorted run (a commit's new keys), written by [`write_run`] as
/// [`merge_each`] would write it, without its bookkeeping: each key once,
/// the first of equal keys.
pub(super) enum Run<'a> {
    /// Entries in pieces that follow one another in key order (see
    /// [`run_of`]).
    Entries(Vec<&'a [Entry]>),
    /// Sequences of key-docs of one batch, merged ([`each_merged`]).
    KeyDocs(&'a [Vec<&'a [KeyDoc]>], u32),
}

impl Run<'_> {
    /// Calls `f(key, value)` for each entry in key order, the first of
    /// equal keys only.
    pub(super) fn each(&self, mut f: impl FnMut(u128, &[u8; 12]) -> Result<()>) -> Result<()> {
        let mut last = None;
        let mut once = |key: u128, doc: u64, batch: u32| {
            if last == Some(key) {
                return Ok(());
            }
            last = Some(key);
            f(key, &value(&Entry { key, doc, batch }))
        };
        match self {
            Run::Entries(pieces) => pieces.iter().copied().flatten().try_for_each(|e| once(e.key, e.doc, e.batch)),
            Run::KeyDocs(seqs, batch) => each_merged(seqs, |k| once(k.key(), k.doc, *batch)),
        }
    }
}

/// `srcs` as one run when they are all new entries whose pieces follow one
/// another (the last key of each at most the first of the next: a commit's
/// buckets, see [`super::NewKeys`]); `None` when they need the merge.
pub(super) fn run_of<'a>(srcs: &[Source<'a>]) -> Option<Vec<&'a [Entry]>> {
    let mut pieces = Vec::with_capacity(srcs.len());
    for s in srcs {
        match s {
            Source::New(v) => pieces.push(*v),
            Source::Seg(_) => return None,
        }
    }
    let ends = pieces.iter().filter_map(|p| Some((p.first()?.key, p.last()?.key)));
    let mut prev: Option<u128> = None;
    for (first, last) in ends {
        if prev.is_some_and(|p| p > first) {
            return None;
        }
        prev = Some(last);
    }
    Some(pieces)
}
