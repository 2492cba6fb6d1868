//! The index-wide filter: one blocked Bloom filter over every key of the
//! index, so that a key the index does not hold (most keys of a day's run)
//! costs one cache line, not one per segment.
//!
//! # Why a file of its own, written at every commit
//! Each segment keeps its own filter (it tells a present key's segment
//! apart), but a lookup of an absent key used to read one filter line per
//! segment: three on a settled 10M-key index, ~80–96 ms of a 1.1M-key day
//! (`benches/INDEX.md`, fifth pass). Considered:
//! * folding the segment filters into one at open: filters fold only from
//!   more blocks to fewer, so the result has the blocks of the *smallest*
//!   segment (a useless false-positive rate), or must be rebuilt from the
//!   keys of all but the largest segment at every open (tens of ms for
//!   10M keys, growing with the index while a day's work does not);
//! * a filter per tier rebuilt at merge: still one line per tier;
//! * this: a filter file named in the manifest next to the segments. A
//!   commit copies the current filter and sets the new keys' bits (they are
//!   sorted, so the filter is filled front to back), writes it beside the
//!   new segment (into the file of the filter before the current one, see
//!   "The spare" below) and publishes both with one manifest rename. A merge or a
//!   compaction leaves the set of keys and so the filter unchanged. When
//!   the index outgrows the filter ([`FILTER_BITS_PER_KEY`] bits per key),
//!   the commit builds a filter twice the size from every segment's keys
//!   (sequential reads, once per doubling of the index).
//!
//! # Filter file format (`filter-XXXXXXXXXXXXXXXX.ndf`, little-endian)
//! ```text
//! off 0   8 B  magic "NDDXFLT\0"
//! off 8   4 B  version u32 = 4 (the index format that introduced it)
//! off 12  4 B  block_bits u32 (0..=40): the filter has 2^block_bits blocks
//! off 16  8 B  keys u64: the keys it was built for (sizing only)
//! off 24  40 B zero (the blocks start on a cache-line boundary)
//! off 64  64 * 2^block_bits  blocks of 8 u64 words
//! end-8   4 B  crc32 (IEEE) of every byte before it
//! end-4   4 B  end magic "NDXE"
//! ```
//! A key's block is its top `block_bits` bits; in it the key sets the same 8
//! bits as in a segment's filter (one per word, from bits 0..48 of the
//! key's low half, independent of the block). Sizes are powers of two of at
//! least [`FILTER_BITS_PER_KEY`] bits per key, so 10–20 bits per key: a
//! false-positive rate of ~0.1–1%.
//!
//! # Safety of the answers
//! The filter only ever says "certainly absent" or "look in the segments";
//! it is a superset of the index's keys by construction (every commit sets
//! the bits of every key it adds, a rebuild reads every key), so it cannot
//! make a run drop a new paragraph or miss a duplicate. Like a segment it
//! is checked at open against the manifest (length, checksum, header): a
//! damaged or missing filter is [`IndexError::Corrupt`] naming the file,
//! never a wrong answer. An index of format 3 (no filter) opens and is
//! looked up through its segment filters; its next commit writes the
//! filter and the format 4 manifest (the same atomic rename as any commit).
//!
//! # The spare: the filter before the current one, written over
//! A commit writes the whole filter again (16 MiB for 10M keys). Once the
//! new manifest is in place, the previous filter's file is not deleted but
//! renamed to [`SPARE`], and the next commit of a filter of the same size
//! renames the spare to its new name and writes every byte of it again in
//! place, instead of creating a file and deleting the old one. On ext4
//! (mounted `discard`, no journal, as the bench disk is), a 16 MiB filter
//! written over the spare was durable ~4 ms sooner (no blocks to allocate)
//! and no deletion had to free and discard 16 MiB (~4 ms): a typical
//! `--index` day's commit took ~31 instead of ~36 ms
//! (`benches/INDEX.md`, nineteenth pass). The price is one filter's size of
//! disk. The spare is never read: it is named in no manifest, is written
//! whole (header, every block, checksum) before any manifest names it under
//! its new name, and a crash before that manifest leaves it an orphan under
//! the new name, deleted by the next open like any other. A spare of
//! another size (the index outgrew its filter), that is not a plain file or
//! that has another name too (a hard link, as a snapshot by `cp -al` makes)
//! is deleted instead, never written over. A lookup view
//! ([`super::IndexView`]) keeps reading the file it mapped: the old filter
//! becomes the spare only when no view of the `Index` still maps it, and a
//! spare is written over only when no filter of this process maps its file
//! (`MAPPED`: a view may outlive its `Index`). A view another process kept
//! after its lock was released is not known here; it would see the file
//! written over at the same length with every bit it had still set (a
//! filter only gains bits), so it would miss no key it held.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::ops::Range;
use std::os::unix::fs::FileExt;
use std::path::Path;

use memmap2::Mmap;

#[cfg(target_arch = "x86_64")]
use super::bits::Wide;
use super::bits::{Bits, Words};
use super::key_docs::KeyDoc;
use super::merge::Fresh;
use super::segment::{Segment, prefetch, rd_u32, rd_u64};
use super::{Entry, FILTER_BITS_PER_KEY, HDR, IndexError, Result, SEG_END, corrupt, io_err};

const MAGIC: &[u8; 8] = b"NDDXFLT\0";
/// The filter file's version.
const VERSION: u32 = 4;
/// Header bytes (the blocks start on a cache line).
const FHDR: usize = 64;

/// Manifest's record of the filter file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct FilterMeta {
    pub(super) id: u64,
    pub(super) len: u64,
    pub(super) crc: u32,
}

/// The previous filter's file, kept to be written over by the next commit
/// (see "The spare" in the module docs).
pub(super) const SPARE: &str = "filter.spare";

/// `filter-` + 16 lowercase hex digits + `.ndf`.
pub(super) fn filter_name(id: u64) -> String {
    format!("filter-{id:016x}.ndf")
}

/// True for names of the form [`filter_name`] makes.
pub(super) fn is_filter_name(n: &str) -> bool {
    n.strip_prefix("filter-")
        .and_then(|r| r.strip_suffix(".ndf"))
        .is_some_and(|hex| hex.len() == 16 && hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)))
}

/// Block bits of a filter for `keys` keys: the fewest blocks with at least
/// [`FILTER_BITS_PER_KEY`] bits per key.
pub(super) fn block_bits_for(keys: u64) -> u32 {
    let blocks = keys.saturating_mul(FILTER_BITS_PER_KEY).div_ceil(512).max(1);
    blocks.next_power_of_two().trailing_zeros().min(40)
}

#[inline]
fn block_of(key: u128, bits: u32) -> usize {
    if bits == 0 { 0 } else { (key >> (128 - bits)) as usize }
}

/// An open, verified, memory-mapped filter file.
pub(super) struct GlobalFilter {
    pub(super) meta: FilterMeta,
    map: Mmap,
    bits: u32,
    /// The file's (device, inode), listed in [`MAPPED`] while mapped.
    file_id: (u64, u64),
}

/// The (device, inode) of every filter file this process has mapped, one
/// entry a [`GlobalFilter`]: a spare listed here is never written over
/// (a lookup view may outlive the `Index` it was taken from).
static MAPPED: std::sync::Mutex<Vec<(u64, u64)>> = std::sync::Mutex::new(Vec::new());

fn mapped() -> std::sync::MutexGuard<'static, Vec<(u64, u64)>> {
    MAPPED.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A file's (device, inode), as [`MAPPED`] lists it.
fn file_id(meta: &fs::Metadata) -> (u64, u64) {
    use std::os::unix::fs::MetadataExt;
    (meta.dev(), meta.ino())
}

/// Takes one entry of `id` off [`MAPPED`].
fn unlist(id: (u64, u64)) {
    let mut m = mapped();
    if let Some(i) = m.iter().position(|&e| e == id) {
        m.swap_remove(i);
    }
}

impl Drop for GlobalFilter {
    fn drop(&mut self) {
        unlist(self.file_id);
    }
}

impl GlobalFilter {
    /// Map and check a filter file against its manifest record (with
    /// `verify_crc`, its whole checksum: 16 MB for a 10M-key index).
    pub(super) fn open(path: &Path, meta: FilterMeta, verify_crc: bool) -> Result<GlobalFilter> {
        let file = File::open(path).map_err(|e| {
            if e.kind() == io::ErrorKind::NotFound {
                corrupt(path, "filter listed in MANIFEST is missing")
            } else {
                io_err(path)(e)
            }
        })?;
        let stat = file.metadata().map_err(io_err(path))?;
        let size = stat.len();
        if size != meta.len {
            return Err(corrupt(path, format!("length {size}, manifest says {} (truncated or replaced?)", meta.len)));
        }
        let file_id = file_id(&stat);
        // Listed before it is mapped, so that no commit of this process
        // writes over it as a spare while it is (see `take_spare`).
        mapped().push(file_id);
        // SAFETY: as for segments (see `Segment::open`): not modified while
        // this process maps it (a spare is written over only when no
        // `GlobalFilter` of this process maps that file, `MAPPED`, and only
        // by the lock holder), deleted only by the lock holder.
        let map = unsafe { Mmap::map(&file) };
        let map = map.map_err(|e| {
            unlist(file_id);
            io_err(path)(e)
        })?;
        // From here on, dropping it (an early return) takes it off the list.
        let mut filter = GlobalFilter { meta, map, bits: 0, file_id };
        let m = &filter.map[..];
        let len = m.len();
        if len < 8 || &m[..8] != MAGIC {
            return Err(IndexError::Foreign { path: path.to_path_buf() });
        }
        let short = || corrupt(path, "truncated");
        let version = rd_u32(m, 8).ok_or_else(short)?;
        if version != VERSION {
            return Err(IndexError::UnsupportedVersion { path: path.to_path_buf(), found: version });
        }
        let bits = rd_u32(m, 12).ok_or_else(short)?;
        if bits > 40 {
            return Err(corrupt(path, format!("block_bits {bits} > 40")));
        }
        rd_u64(m, 16).ok_or_else(short)?;
        let want = (FHDR as u64 + 8) + (64u64 << bits);
        if len as u64 != want {
            return Err(corrupt(path, format!("length {len}, header implies {want}")));
        }
        if &m[len - 4..] != SEG_END {
            return Err(corrupt(path, "bad end marker (truncated?)"));
        }
        let stored = rd_u32(m, len - 8).ok_or_else(short)?;
        if stored != meta.crc {
            return Err(corrupt(path, "checksum differs from manifest"));
        }
        if verify_crc {
            let got = super::segment::crc32_parallel(&m[..len - 8]);
            if got != stored {
                return Err(corrupt(path, format!("checksum mismatch: stored {stored:08x}, computed {got:08x}")));
            }
        }
        filter.bits = bits;
        Ok(filter)
    }

    /// False when `key` is certainly in no segment of the index (its bits
    /// tested `way`).
    #[inline(always)]
    pub(super) fn admits(&self, key: u128, way: impl Bits) -> bool {
        let off = FHDR + 64 * block_of(key, self.bits);
        let Some(Ok(block)) = self.map.get(off..off + 64).map(<&[u8; 64]>::try_from) else { return true };
        way.admitted(block, key)
    }

    /// Hint the CPU to fetch the line [`GlobalFilter::admits`] reads.
    #[inline]
    pub(super) fn prefetch(&self, key: u128) {
        prefetch(&self.map, FHDR + 64 * block_of(key, self.bits));
    }

    /// The keys the filter was sized for.
    fn keys(&self) -> u64 {
        rd_u64(&self.map, 16).unwrap_or(0)
    }

    /// Blocks `from..to` of the filter (64 bytes each).
    fn blocks(&self, from: usize, to: usize) -> Option<&[u8]> {
        self.map.get(FHDR + 64 * from..FHDR + 64 * to)
    }
}

/// A sorted stream of keys to set: a segment's key region or a commit's
/// sorted entries.
enum Keys<'a> {
    Seg(&'a [u8]),
    New(&'a [Entry]),
    KeyDocs(&'a [KeyDoc]),
}

impl Keys<'_> {
    #[inline]
    fn get(&self, i: usize) -> Option<u128> {
        match self {
            Keys::Seg(b) => b.get(16 * i..16 * i + 16).map(|k| u128::from_be_bytes(k.try_into().unwrap_or_default())),
            Keys::New(v) => v.get(i).map(|e| e.key),
            Keys::KeyDocs(v) => v.get(i).map(KeyDoc::key),
        }
    }
}

/// Blocks per piece written (1 MiB): the file is made piece by piece in one
/// reused buffer, so a commit allocates (and has the kernel zero) 1 MiB, not
/// the filter's size.
const PIECE: usize = 1 << 14;

/// Writes filter file `id` in `dir` for an index that will hold the keys of
/// `segs` and of `new` (each chunk sorted; `total` keys in all): `old`'s
/// bits plus `new`'s when `old` is big enough, else rebuilt from every key.
/// Fsynced; returns its manifest record.
pub(super) fn write_filter(
    dir: &Path,
    id: u64,
    old: Option<&GlobalFilter>,
    segs: &[std::sync::Arc<Segment>],
    new: Fresh<'_>,
    total: u64,
) -> Result<FilterMeta> {
    let path = dir.join(filter_name(id));
    let base = old.filter(|f| f.bits >= block_bits_for(total));
    let bits = base.map_or_else(|| block_bits_for(total), |f| f.bits);
    // Every source is sorted and a key's block is its top bits, so each
    // piece of the filter takes the next run of every source's keys.
    let mut srcs: Vec<(Keys<'_>, usize)> = Vec::new();
    if base.is_none() {
        srcs.extend(segs.iter().map(|s| (Keys::Seg(s.map.get(HDR..s.vals_off).unwrap_or_default()), 0)));
    }
    match new {
        Fresh::Entries(pieces) => srcs.extend(pieces.iter().map(|c| (Keys::New(c), 0))),
        Fresh::KeyDocs(seqs, _) => srcs.extend(seqs.iter().flatten().map(|c| (Keys::KeyDocs(c), 0))),
    }
    let keys = old.map_or(0, GlobalFilter::keys).max(total);
    let mut hdr = [0u8; FHDR];
    hdr[..8].copy_from_slice(MAGIC);
    hdr[8..12].copy_from_slice(&VERSION.to_le_bytes());
    hdr[12..16].copy_from_slice(&bits.to_le_bytes());
    hdr[16..24].copy_from_slice(&keys.to_le_bytes());
    let file = match take_spare(dir, &path, file_len(bits)) {
        Some(file) => file,
        None => OpenOptions::new().write(true).create(true).truncate(true).open(&path).map_err(io_err(&path))?,
    };
    let mut crc = crc32fast::Hasher::new();
    crc.update(&hdr);
    file.write_all_at(&hdr, 0).map_err(io_err(&path))?;
    let mut off = FHDR as u64;
    let blocks = 1usize << bits;
    let mut buf = vec![0u8; 64 * PIECE.min(blocks)];
    for from in (0..blocks).step_by(PIECE) {
        let to = (from + PIECE).min(blocks);
        let piece = &mut buf[..64 * (to - from)];
        match base {
            Some(f) => piece.copy_from_slice(f.blocks(from, to).ok_or_else(|| corrupt(&path, "filter too short"))?),
            None => piece.fill(0),
        }
        if !set_piece(&mut srcs, piece, from..to, bits) {
            // An unsorted source would leave a key out: refuse instead.
            return Err(corrupt(&path, "keys for the filter are not sorted"));
        }
        crc.update(piece);
        file.write_all_at(piece, off).map_err(io_err(&path))?;
        super::writer::write_behind(&file, off, piece.len());
        off += piece.len() as u64;
    }
    let crc = crc.finalize();
    let mut foot = [0u8; 8];
    foot[..4].copy_from_slice(&crc.to_le_bytes());
    foot[4..].copy_from_slice(SEG_END);
    file.write_all_at(&foot, off).map_err(io_err(&path))?;
    file.sync_data().map_err(io_err(&path))?;
    Ok(FilterMeta { id, len: off + 8, crc })
}

/// Sets in `piece` (blocks `blocks` of a filter of `2^bits` blocks) the
/// bits of the keys of `srcs` that fall in it, each source taken on from
/// its position and left at its first key past the piece. False when a
/// key falls before the piece (a source not sorted).
fn set_piece(srcs: &mut [(Keys<'_>, usize)], piece: &mut [u8], blocks: Range<usize>, bits: u32) -> bool {
    #[cfg(target_arch = "x86_64")]
    if let Some(wide) = Wide::new() {
        // SAFETY: a `Wide` says the processor has AVX-512F.
        return unsafe { set_piece_wide(srcs, piece, blocks, bits, wide) };
    }
    set_piece_with(srcs, piece, blocks, bits, Words)
}

/// [`set_piece`] compiled for AVX-512F, the bits set in a register.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn set_piece_wide(
    srcs: &mut [(Keys<'_>, usize)],
    piece: &mut [u8],
    blocks: Range<usize>,
    bits: u32,
    wide: Wide,
) -> bool {
    set_piece_with(srcs, piece, blocks, bits, wide)
}

/// The body of [`set_piece`], the bits set `way`.
#[inline(always)]
fn set_piece_with(
    srcs: &mut [(Keys<'_>, usize)],
    piece: &mut [u8],
    blocks: Range<usize>,
    bits: u32,
    way: impl Bits,
) -> bool {
    for (src, at) in srcs {
        while let Some(k) = src.get(*at) {
            let b = block_of(k, bits);
            if b >= blocks.end {
                break;
            }
            let Some(Ok(block)) = b
                .checked_sub(blocks.start)
                .and_then(|i| piece.get_mut(64 * i..64 * i + 64))
                .map(<&mut [u8; 64]>::try_from)
            else {
                return false;
            };
            way.set(block, k);
            *at += 1;
        }
    }
    true
}

/// The length of a filter file of `2^bits` blocks.
fn file_len(bits: u32) -> u64 {
    FHDR as u64 + (64u64 << bits) + 8
}

/// The spare in `dir`, renamed to `path` and opened for writing, when it is
/// a plain file of `len` bytes with no other name that this process does
/// not map (every byte of it is then written again); `None` when there is
/// none or it cannot be taken (a spare of another length, not a plain file
/// or with another name is deleted: the filter only grows).
fn take_spare(dir: &Path, path: &Path, len: u64) -> Option<File> {
    use std::os::unix::fs::MetadataExt;
    let spare = dir.join(SPARE);
    let meta = fs::symlink_metadata(&spare).ok()?;
    // A spare with another name too (a hard link: a snapshot by `cp -al`
    // or `rsync --link-dest`, say) is not written over: that name would
    // change with it.
    if !meta.is_file() || meta.len() != len || meta.nlink() != 1 {
        let _ = fs::remove_file(&spare);
        return None;
    }
    if mapped().contains(&file_id(&meta)) {
        return None;
    }
    fs::rename(&spare, path).ok()?;
    match OpenOptions::new().write(true).open(path) {
        Ok(file) => Some(file),
        Err(_) => {
            // Not writable (its mode, say): a new file instead.
            let _ = fs::remove_file(path);
            None
        }
    }
}

/// After a commit published a new filter: the file of the one it replaced
/// (`old`, at `path`) becomes the spare when nothing else maps it, and is
/// deleted otherwise (or when the rename fails). Errors are ignored: the
/// commit is done, and a file left behind is an orphan for the next open.
pub(super) fn retire(old: std::sync::Arc<GlobalFilter>, path: &Path, dir: &Path) {
    let unmapped = std::sync::Arc::try_unwrap(old).map(drop).is_ok();
    if !(unmapped && fs::rename(path, dir.join(SPARE)).is_ok()) {
        let _ = fs::remove_file(path);
    }
}
