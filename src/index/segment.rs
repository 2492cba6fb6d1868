//! Segment files: the format, validation at open, lookup. Writing and the
//! k-way merge are in `writer`.
//!
//! # Segment format (all integers little-endian unless said otherwise)
//! ```text
//! off 0   8 B  magic  "NDDXSEG\0"
//! off 8   4 B  version u32 = 3
//! off 12  4 B  dir_bits u32 (0..=32)
//! off 16  8 B  count u64 (number of keys, n)
//! off 24  8 B  filter_blocks u64 = f = max(1, ceil(10n / 512))
//! off 32  16n  keys, sorted strictly ascending, each u128 BIG-endian
//!              (so byte order == numeric order)
//! ...     12n  values, same order: doc u64, batch u32 (see [`Entry`])
//! ...     8(2^dir_bits+1)  directory: u64 d[b] = index of the first key whose
//!              top dir_bits bits are >= b; d[0] = 0, d[2^dir_bits] = n
//! ...     0..63 B zero padding, so the filter starts at a multiple of 64
//! ...     64f  filter: f blocks of 8 u64 words (see below)
//! end-8   4 B  crc32 (IEEE, crc32fast) of every byte before it
//! end-4   4 B  end magic "NDXE"
//! ```
//! `dir_bits` = floor(log2(n / [`BUCKET_TARGET`])) (at least 0, at most 32),
//! so buckets hold 64..128 keys and the directory is ~1/8 byte per key (1.25 MB
//! for 10M keys: it stays in L2/L3). A lookup reads two directory words, then
//! *interpolates* inside the bucket on the key bits below the bucket number
//! (keys are uniform hashes, expected error ~sqrt(bucket)/2 = 4-6 keys, i.e.
//! the guessed cache line or a neighbour) and steps to the key: about one
//! DRAM miss per segment probed, plus
//! one for the 12 value bytes on a hit. Nothing is built in memory at open.
//!
//! The filter is a blocked Bloom filter of [`FILTER_BITS_PER_KEY`] bits per
//! key: a key's block is `(high 64 bits × f) >> 64` (monotone in the key, so
//! a segment written in key order fills it front to back), and it sets one
//! bit in each of the block's 8 words, bit `(low 64 bits >> 6w) & 63` of word
//! `w`. A key absent from a segment is answered from one cache line with
//! probability ~99%; lookups read the filter before the directory.
//! Version 1 (no filter) and version 2 (values were document and paragraph
//! index, which shift when a file is cleaned in place) segments and
//! manifests are refused by version.
//!

use std::fs::File;
use std::io;
use std::path::Path;

use memmap2::Mmap;

use super::bits::{Bits, Words};
use super::{
    BUCKET_TARGET, Entry, FILTER_BITS_PER_KEY, HDR, IndexError, PIECES, Result, SEG_END, SEG_MAGIC, SEGMENT_VERSION,
    corrupt, io_err,
};

/// Manifest's record of one segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct SegMeta {
    pub(super) id: u64,
    pub(super) count: u64,
    pub(super) len: u64,
    pub(super) crc: u32,
}

/// An open, memory-mapped segment.
pub(super) struct Segment {
    pub(super) meta: SegMeta,
    pub(super) map: Mmap,
    dir_bits: u32,
    pub(super) vals_off: usize,
    pub(super) dir_off: usize,
    filter_off: usize,
    filter_blocks: u64,
}

#[inline]
pub(super) fn rd_u32(m: &[u8], off: usize) -> Option<u32> {
    Some(u32::from_le_bytes(m.get(off..off + 4)?.try_into().ok()?))
}
#[inline]
pub(super) fn rd_u64(m: &[u8], off: usize) -> Option<u64> {
    Some(u64::from_le_bytes(m.get(off..off + 8)?.try_into().ok()?))
}
#[inline]
pub(super) fn rd_key(m: &[u8], off: usize) -> Option<u128> {
    Some(u128::from_be_bytes(m.get(off..off + 16)?.try_into().ok()?))
}

pub(super) fn seg_name(id: u64) -> String {
    format!("seg-{id:016x}.ndx")
}

/// CRC-32 of `bytes`, computed in 8 pieces on the caller's rayon pool
/// (the run's thread budget, see [`crate::threads`]) and combined:
/// verifying a 10M-key index at open reads ~290 MB.
///
/// Every open still verifies every byte (issue 18, fifth pass, decided
/// against the alternatives): checking only the parts a lookup reads and
/// the rest lazily does not help a daily run, whose first keys the
/// index-wide filter admits (present keys, ~0.3% false positives) land in
/// random places of every segment within the first thousands of lookups,
/// so the whole file is needed almost at once; a faster checksum than
/// `crc32fast`'s PCLMUL/AVX-512 path would save little of a cost that is
/// mostly faulting the mapped pages in; a checksum trusted from an earlier
/// open would let damage done since go unreported.
pub(super) fn crc32_parallel(bytes: &[u8]) -> u32 {
    use rayon::prelude::*;
    let per = bytes.len().div_ceil(PIECES).max(8 << 20);
    let parts: Vec<crc32fast::Hasher> = bytes
        .par_chunks(per)
        .map(|c| {
            let mut h = crc32fast::Hasher::new();
            h.update(c);
            h
        })
        .collect();
    let mut all = crc32fast::Hasher::new();
    for p in &parts {
        all.combine(p);
    }
    all.finalize()
}

/// Filter blocks (64 bytes each) for a segment of `count` keys.
pub(super) fn filter_blocks_for(count: u64) -> u64 {
    count.saturating_mul(FILTER_BITS_PER_KEY).div_ceil(512).max(1)
}

/// Byte offsets of the regions of a segment of `count` keys with a
/// directory of `2^dir_bits` buckets: `(vals, dir, filter, crc)`.
pub(super) fn layout(count: u64, dir_bits: u32) -> Option<(u64, u64, u64, u64)> {
    let vals = (HDR as u64).checked_add(count.checked_mul(16)?)?;
    let dir = vals.checked_add(count.checked_mul(12)?)?;
    let dir_end = dir.checked_add(((1u64 << dir_bits) + 1) * 8)?;
    let filter = dir_end.checked_next_multiple_of(64)?;
    let crc = filter.checked_add(filter_blocks_for(count).checked_mul(64)?)?;
    Some((vals, dir, filter, crc))
}

/// The filter block of `key`, chosen by its high 64 bits: monotone in the
/// key, so a segment written in key order fills its filter front to back.
#[inline]
fn filter_block(key: u128, blocks: u64) -> u64 {
    ((u128::from((key >> 64) as u64) * u128::from(blocks)) >> 64) as u64
}

/// The bit `key` sets in each of the 8 words of its block: 6 bits each from
/// bits 0..48 of the low half (SHA-256 bits are independent, so these are
/// independent of the block).
#[inline]
fn filter_bit(key: u128, word: usize) -> u64 {
    1 << ((key as u64 >> (6 * word)) & 63)
}

/// The 8 bits a key sets in its filter block, one per word.
pub(super) struct FilterMask([u64; 8]);

impl FilterMask {
    #[inline]
    pub(super) fn of(key: u128) -> FilterMask {
        let mut m = [0u64; 8];
        for (w, bit) in m.iter_mut().enumerate() {
            *bit = filter_bit(key, w);
        }
        FilterMask(m)
    }

    /// The bit of each of the block's 8 words.
    #[inline]
    pub(super) fn bits(&self) -> &[u64; 8] {
        &self.0
    }

    /// True when every bit of the mask is set in `block` (64 bytes, 8
    /// little-endian words).
    #[inline]
    pub(super) fn admitted_by(&self, block: &[u8]) -> bool {
        let mut all = true;
        for (word, bit) in block.chunks_exact(8).zip(&self.0) {
            let word = u64::from_le_bytes(word.try_into().unwrap_or_default());
            all &= word & bit == *bit;
        }
        all
    }
}

/// Builds the filter of a segment while its keys are written.
pub(super) struct FilterBuilder {
    blocks: u64,
    /// The blocks, 64 bytes each: eight little-endian words.
    bytes: Vec<u8>,
}

impl FilterBuilder {
    pub(super) fn new(count: u64) -> Self {
        let blocks = filter_blocks_for(count);
        FilterBuilder { blocks, bytes: vec![0; blocks as usize * 64] }
    }
    #[inline]
    pub(super) fn insert(&mut self, key: u128) {
        self.insert_with(key, Words);
    }
    /// [`FilterBuilder::insert`], the bits set `way`.
    #[inline(always)]
    pub(super) fn insert_with(&mut self, key: u128, way: impl Bits) {
        let b = filter_block(key, self.blocks) as usize * 64;
        if let Some(Ok(block)) = self.bytes.get_mut(b..b + 64).map(<&mut [u8; 64]>::try_from) {
            way.set(block, key);
        }
    }
    /// The filter region, little-endian words.
    pub(super) fn bytes(&self) -> &[u8] {
        &self.bytes
    }
}

pub(super) fn dir_bits_for(count: u64) -> u32 {
    let buckets = (count / BUCKET_TARGET).max(1);
    (63 - buckets.leading_zeros()).min(32)
}

impl Segment {
    /// Map and validate a segment file against its manifest record.
    pub(super) fn open(path: &Path, meta: SegMeta, verify_crc: bool) -> Result<Segment> {
        let file = File::open(path).map_err(|e| {
            if e.kind() == io::ErrorKind::NotFound {
                corrupt(path, "segment listed in MANIFEST is missing")
            } else {
                io_err(path)(e)
            }
        })?;
        // The size is checked before mapping: touching a mapped page past
        // the end of a file truncated behind our back raises SIGBUS, so a
        // short file must be refused before its pages are read.
        let size = file.metadata().map_err(io_err(path))?.len();
        if size != meta.len {
            return Err(corrupt(path, format!("length {size}, manifest says {} (truncated or replaced?)", meta.len)));
        }
        // SAFETY: segment files are immutable once written and only this
        // (locked) index deletes them, after unmapping by reopen/drop. (A
        // process that ignores the lock and truncates one while it is mapped
        // is outside what a memory map can defend against.)
        // (Not MAP_POPULATE: it maps the pages serially in the mmap call,
        // where the checksum's pieces fault them in on every thread of the
        // pool: 38 against 27 ms to open a 10M-key index.)
        let map = unsafe { Mmap::map(&file) }.map_err(io_err(path))?;
        let m = &map[..];
        let len = m.len();
        if len as u64 != meta.len {
            return Err(corrupt(path, format!("length {len}, manifest says {}", meta.len)));
        }
        if len < 8 || &m[..8] != SEG_MAGIC {
            return Err(IndexError::Foreign { path: path.to_path_buf() });
        }
        let short = || corrupt(path, "truncated");
        let version = rd_u32(m, 8).ok_or_else(short)?;
        if version != SEGMENT_VERSION {
            return Err(IndexError::UnsupportedVersion { path: path.to_path_buf(), found: version });
        }
        let dir_bits = rd_u32(m, 12).ok_or_else(short)?;
        let count = rd_u64(m, 16).ok_or_else(short)?;
        if dir_bits > 32 {
            return Err(corrupt(path, format!("dir_bits {dir_bits} > 32")));
        }
        if count != meta.count {
            return Err(corrupt(path, format!("count {count}, manifest says {}", meta.count)));
        }
        let filter_blocks = rd_u64(m, 24).ok_or_else(short)?;
        if filter_blocks != filter_blocks_for(count) {
            return Err(corrupt(
                path,
                format!("{filter_blocks} filter blocks, {count} keys need {}", filter_blocks_for(count)),
            ));
        }
        let (vals_off, dir_off, filter_off, crc_off) = layout(count, dir_bits).ok_or_else(short)?;
        if crc_off.checked_add(8) != Some(len as u64) {
            return Err(corrupt(path, format!("length {len}, header implies {}", crc_off.saturating_add(8))));
        }
        if &m[len - 4..] != SEG_END {
            return Err(corrupt(path, "bad end marker (truncated?)"));
        }
        let stored = rd_u32(m, len - 8).ok_or_else(short)?;
        if stored != meta.crc {
            return Err(corrupt(path, "checksum differs from manifest"));
        }
        if verify_crc {
            let got = crc32_parallel(&m[..len - 8]);
            if got != stored {
                return Err(corrupt(path, format!("checksum mismatch: stored {stored:08x}, computed {got:08x}")));
            }
        }
        let (vals_off, dir_off, filter_off) = (vals_off as usize, dir_off as usize, filter_off as usize);
        // The directory must be monotone and bounded so lookups stay in range.
        let mut prev = 0u64;
        for b in 0..=(1usize << dir_bits) {
            let d = rd_u64(m, dir_off + 8 * b).ok_or_else(short)?;
            if d < prev || d > count || (b == 0 && d != 0) {
                return Err(corrupt(path, format!("bad directory entry {b}")));
            }
            prev = d;
        }
        if prev != count {
            return Err(corrupt(path, "directory does not end at count"));
        }
        Ok(Segment { meta, map, dir_bits, vals_off, dir_off, filter_off, filter_blocks })
    }

    #[inline]
    pub(super) fn key(&self, i: usize) -> Option<u128> {
        rd_key(&self.map, HDR + 16 * i)
    }

    #[inline]
    pub(super) fn value(&self, i: usize) -> Option<(u64, u32)> {
        let off = self.vals_off + 12 * i;
        Some((rd_u64(&self.map, off)?, rd_u32(&self.map, off + 8)?))
    }

    pub(super) fn entry(&self, i: usize) -> Option<Entry> {
        let (doc, batch) = self.value(i)?;
        Some(Entry { key: self.key(i)?, doc, batch })
    }

    /// Bucket bounds and interpolated position for `key`: `(lo, guess, hi)`
    /// with `lo <= guess < hi`, or `None` if the bucket is empty.
    #[inline]
    pub(super) fn guess(&self, key: u128) -> Option<(usize, usize, usize)> {
        let m = &self.map[..];
        let b = if self.dir_bits == 0 { 0 } else { (key >> (128 - self.dir_bits)) as usize };
        let lo = rd_u64(m, self.dir_off + 8 * b)? as usize;
        let hi = rd_u64(m, self.dir_off + 8 * b + 8)? as usize;
        if lo >= hi {
            return None;
        }
        // Keys are uniform: interpolate on the bits below the bucket number
        // (expected error ~sqrt(bucket)/2 positions).
        let frac = ((key << self.dir_bits) >> 64) as u64;
        Some((lo, lo + ((frac as u128 * (hi - lo) as u128) >> 64) as usize, hi))
    }

    /// False when `key` (whose filter bits are `mask`) is certainly not in
    /// this segment; the filter admits about 1% of absent keys (see
    /// [`FILTER_BITS_PER_KEY`]).
    #[inline]
    pub(super) fn admits(&self, key: u128, mask: &FilterMask) -> bool {
        let off = self.filter_off + 64 * filter_block(key, self.filter_blocks) as usize;
        let Some(block) = self.map.get(off..off + 64) else { return true };
        mask.admitted_by(block)
    }

    /// Hint the CPU to fetch the filter block [`Segment::admits`] reads.
    #[inline]
    pub(super) fn prefetch_filter(&self, key: u128) {
        prefetch(&self.map, self.filter_off + 64 * filter_block(key, self.filter_blocks) as usize);
    }

    /// Hint the CPU to fetch the cache line where `key` probably is.
    #[inline]
    pub(super) fn prefetch(&self, key: u128) {
        if let Some((lo, g, hi)) = self.guess(key) {
            // The step from the guess usually stays within +-4 keys, which
            // may cross into a neighbouring cache line.
            let off = HDR + 16 * g;
            prefetch(&self.map, off);
            if g > lo
                && let Some(before) = off.checked_sub(64)
            {
                prefetch(&self.map, before);
            }
            if g + 1 < hi {
                prefetch(&self.map, off + 64);
            }
        }
    }

    /// Position of `key` in this segment.
    #[inline]
    pub(super) fn locate(&self, key: u128) -> Option<usize> {
        let (lo, g, hi) = self.guess(key)?;
        let k = self.key(g)?;
        if k == key {
            return Some(g);
        }
        if k < key {
            for i in g + 1..hi {
                let k = self.key(i)?;
                if k >= key {
                    return (k == key).then_some(i);
                }
            }
        } else {
            for i in (lo..g).rev() {
                let k = self.key(i)?;
                if k <= key {
                    return (k == key).then_some(i);
                }
            }
        }
        None
    }
}

/// Prefetch the cache line holding `m[off]` (no-op off x86_64 or out of range).
#[inline(always)]
pub(super) fn prefetch(m: &[u8], off: usize) {
    if let Some(p) = m.get(off) {
        crate::prefetch::read(p);
    }
}
