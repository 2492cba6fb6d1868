//! Writing segments: what [`super::sources`] gives (the k-way merge of
//! sorted sources, or a commit's sorted run) written into a new segment
//! file, in the format of `segment`.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

#[cfg(target_arch = "x86_64")]
use super::bits::Wide;
use super::bits::{Bits, Words};
use super::error::{Result, corrupt, io_err};
use super::key_docs::KeyDoc;
use super::segment::{FilterBuilder, SegMeta, dir_bits_for, filter_blocks_for, layout, seg_name};
use super::sources::{Entries, Merged, Run, Source, run_of};
use super::{HDR, SEG_END, SEG_MAGIC, SEGMENT_VERSION};

/// Sequential writer at a fixed file offset, with a running CRC.
struct RegionWriter<'a> {
    file: &'a File,
    path: &'a Path,
    off: u64,
    buf: Vec<u8>,
    crc: crc32fast::Hasher,
}

impl<'a> RegionWriter<'a> {
    fn new(file: &'a File, path: &'a Path, off: u64) -> Self {
        // Room for the last put before a flush, so the buffer never grows.
        RegionWriter { file, path, off, buf: Vec::with_capacity((1 << 20) + 64), crc: crc32fast::Hasher::new() }
    }
    fn put(&mut self, bytes: &[u8]) -> Result<()> {
        self.buf.extend_from_slice(bytes);
        if self.buf.len() >= 1 << 20 {
            self.flush()?;
        }
        Ok(())
    }
    fn flush(&mut self) -> Result<()> {
        self.crc.update(&self.buf);
        self.file.write_all_at(&self.buf, self.off).map_err(io_err(self.path))?;
        write_behind(self.file, self.off, self.buf.len());
        self.off += self.buf.len() as u64;
        self.buf.clear();
        Ok(())
    }
    fn finish(mut self) -> Result<crc32fast::Hasher> {
        self.flush()?;
        Ok(self.crc)
    }
}

/// Starts the writeback of `len` bytes of `file` at `off` without waiting
/// for it (Linux `sync_file_range`), so that the disk writes a new
/// segment or filter while the rest of it is made, and the `fdatasync`
/// that ends the write has less left to wait for. Durability is still the
/// `fdatasync`'s; an error here is ignored (the `fdatasync` reports it).
pub(super) fn write_behind(file: &File, off: u64, len: usize) {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        let (Ok(off), Ok(len)) = (libc::off64_t::try_from(off), libc::off64_t::try_from(len)) else { return };
        // SAFETY: the descriptor is open for the duration of the call; the
        // call only reads its arguments.
        unsafe { libc::sync_file_range(file.as_raw_fd(), off, len, libc::SYNC_FILE_RANGE_WRITE) };
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (file, off, len);
}

/// Write segment `id` holding the merge of `srcs`; returns its manifest record.
/// `cancel` is polled while merging: once set, the write stops with an
/// `Interrupted` error (the partial file is the caller's to remove).
pub(super) fn write_segment(dir: &Path, id: u64, srcs: &[Source<'_>], cancel: &AtomicBool) -> Result<SegMeta> {
    let path = dir.join(seg_name(id));
    // Optimistically assume no key occurs in two sources (the contract); if
    // one does, the result is shorter and we write again with the exact count.
    let bound: u64 = srcs
        .iter()
        .map(|s| match s {
            Source::Seg(s) => s.meta.count,
            Source::New(v) => v.len() as u64,
        })
        .sum();
    match write_segment_with(&path, id, srcs, bound, cancel)? {
        Ok(meta) => Ok(meta),
        Err(actual) => match write_segment_with(&path, id, srcs, actual, cancel)? {
            Ok(meta) => Ok(meta),
            Err(_) => Err(corrupt(&path, "merge produced inconsistent counts")),
        },
    }
}

/// Write segment `id` holding the key-docs of `seqs` (each pieces in key
/// order, see [`super::SortedKeyDocs`]), all of batch `batch`, merged as
/// they are written (a key in two sequences is written once, with the
/// lesser document); returns its manifest record.
pub(super) fn write_key_docs(
    dir: &Path,
    id: u64,
    seqs: &[Vec<&[KeyDoc]>],
    batch: u32,
    cancel: &AtomicBool,
) -> Result<SegMeta> {
    let path = dir.join(seg_name(id));
    let run = Run::KeyDocs(seqs, batch);
    // As `write_segment`: the count assumes no key is in two sequences.
    let bound = seqs.iter().flatten().map(|p| p.len() as u64).sum();
    match write_run(&path, id, &run, bound, cancel)? {
        Ok(meta) => Ok(meta),
        Err(actual) => match write_run(&path, id, &run, actual, cancel)? {
            Ok(meta) => Ok(meta),
            Err(_) => Err(corrupt(&path, "merge produced inconsistent counts")),
        },
    }
}

/// [`write_segment`] through the k-way merge even where the sources are one
/// run (the reference the run's copy is tested against).
#[cfg(test)]
pub(super) fn write_segment_merged(dir: &Path, id: u64, srcs: &[Source<'_>]) -> Result<SegMeta> {
    let never = AtomicBool::new(false);
    let count = srcs.iter().map(|s| if let Source::New(v) = s { v.len() as u64 } else { 0 }).sum();
    match write_entries(&dir.join(seg_name(id)), id, Merged(srcs), count, &never)? {
        Ok(meta) => Ok(meta),
        Err(actual) => write_entries(&dir.join(seg_name(id)), id, Merged(srcs), actual, &never)?
            .map_err(|_| corrupt(dir, "merge produced inconsistent counts")),
    }
}

/// Inner write; `Ok(Err(actual))` if the merge yielded `actual != count` keys.
/// A commit's run of new keys is copied without the merge's bookkeeping
/// (the same bytes: see the test `one_run_is_written_as_its_merge`).
fn write_segment_with(
    path: &Path,
    id: u64,
    srcs: &[Source<'_>],
    count: u64,
    cancel: &AtomicBool,
) -> Result<std::result::Result<SegMeta, u64>> {
    match run_of(srcs) {
        Some(run) => write_run(path, id, &Run::Entries(run), count, cancel),
        None => write_entries(path, id, Merged(srcs), count, cancel),
    }
}

/// A segment file being written: its header is in place; the regions
/// follow at the offsets `layout` gives for its count.
struct SegFile<'a> {
    path: &'a Path,
    file: File,
    id: u64,
    count: u64,
    bits: u32,
    hdr_crc: crc32fast::Hasher,
    vals_off: u64,
    filter_off: u64,
    crc_off: u64,
}

impl<'a> SegFile<'a> {
    fn create(path: &'a Path, id: u64, count: u64) -> Result<SegFile<'a>> {
        let bits = dir_bits_for(count);
        let file = OpenOptions::new().write(true).create(true).truncate(true).open(path).map_err(io_err(path))?;
        let mut hdr = [0u8; HDR];
        hdr[..8].copy_from_slice(SEG_MAGIC);
        hdr[8..12].copy_from_slice(&SEGMENT_VERSION.to_le_bytes());
        hdr[12..16].copy_from_slice(&bits.to_le_bytes());
        hdr[16..24].copy_from_slice(&count.to_le_bytes());
        hdr[24..32].copy_from_slice(&filter_blocks_for(count).to_le_bytes());
        let (_, _, filter_off, crc_off) = layout(count, bits).ok_or_else(|| corrupt(path, "segment too large"))?;
        let mut hw = RegionWriter::new(&file, path, 0);
        hw.put(&hdr)?;
        let hdr_crc = hw.finish()?;
        let vals_off = HDR as u64 + 16 * count;
        Ok(SegFile { path, file, id, count, bits, hdr_crc, vals_off, filter_off, crc_off })
    }

    /// The bucket of `key` in the directory.
    #[inline]
    fn bucket(&self, key: u128) -> usize {
        if self.bits == 0 { 0 } else { (key >> (128 - self.bits)) as usize }
    }

    /// Writes the directory (`dirv`: the first entry of each bucket so far)
    /// and the filter after the keys and values (whose checksums are `keys`
    /// and `vals`), then the footer; fsyncs. `Ok(Err(i))` when the entries
    /// were `i`, not the count the layout was made for.
    fn finish(
        self,
        (keys, vals): (crc32fast::Hasher, crc32fast::Hasher),
        mut dirv: Vec<u64>,
        filter: &FilterBuilder,
        i: u64,
    ) -> Result<std::result::Result<SegMeta, u64>> {
        let path = self.path;
        if i != self.count {
            return Ok(Err(i));
        }
        while dirv.len() <= 1usize << self.bits {
            dirv.push(i);
        }
        let mut dw = RegionWriter::new(&self.file, path, self.vals_off + 12 * self.count);
        for d in &dirv {
            dw.put(&d.to_le_bytes())?;
        }
        let dir_end = dw.off + dw.buf.len() as u64;
        dw.put(&vec![0; (self.filter_off - dir_end) as usize])?;
        dw.put(filter.bytes())?;
        let end_off = dw.off + dw.buf.len() as u64;
        if end_off != self.crc_off {
            return Err(corrupt(path, format!("wrote {end_off} bytes, layout says {}", self.crc_off)));
        }
        let mut crc = self.hdr_crc;
        crc.combine(&keys);
        crc.combine(&vals);
        crc.combine(&dw.finish()?);
        let crc = crc.finalize();
        let mut foot = [0u8; 8];
        foot[..4].copy_from_slice(&crc.to_le_bytes());
        foot[4..].copy_from_slice(SEG_END);
        self.file.write_all_at(&foot, end_off).map_err(io_err(path))?;
        self.file.sync_data().map_err(io_err(path))?;
        Ok(Ok(SegMeta { id: self.id, count: self.count, len: end_off + 8, crc }))
    }
}

/// The keys region of a [`SegFile`] being written, with the directory (the
/// index of the first entry of each bucket so far) and the entries' count.
struct KeyWriter<'a> {
    seg: &'a SegFile<'a>,
    kw: RegionWriter<'a>,
    dirv: Vec<u64>,
    i: u64,
    cancel: &'a AtomicBool,
}

impl<'a> KeyWriter<'a> {
    fn new(seg: &'a SegFile<'a>, cancel: &'a AtomicBool) -> KeyWriter<'a> {
        let kw = RegionWriter::new(&seg.file, seg.path, HDR as u64);
        KeyWriter { seg, kw, dirv: Vec::with_capacity((1 << seg.bits) + 1), i: 0, cancel }
    }

    /// Writes the next key (in key order); stops when `cancel` is set.
    #[inline]
    fn push(&mut self, key: u128) -> Result<()> {
        let b = self.seg.bucket(key);
        while self.dirv.len() <= b {
            self.dirv.push(self.i);
        }
        self.kw.put(&key.to_be_bytes())?;
        self.i += 1;
        if self.i.is_multiple_of(1 << 16) && self.cancel.load(Ordering::Relaxed) {
            return Err(io_err(self.seg.path)(io::Error::new(io::ErrorKind::Interrupted, "merge cancelled")));
        }
        Ok(())
    }

    /// The keys region's checksum, the directory so far and the count.
    fn finish(self) -> Result<(crc32fast::Hasher, Vec<u64>, u64)> {
        Ok((self.kw.finish()?, self.dirv, self.i))
    }
}

/// [`write_segment_with`] from `entries` (one instance per kind of
/// [`Entries`], so that the per-key closure has one call site in each and
/// is inlined into its loop).
fn write_entries(
    path: &Path,
    id: u64,
    entries: impl Entries,
    count: u64,
    cancel: &AtomicBool,
) -> Result<std::result::Result<SegMeta, u64>> {
    let seg = SegFile::create(path, id, count)?;
    let mut filter = FilterBuilder::new(count);
    let mut keys = KeyWriter::new(&seg, cancel);
    let mut vw = RegionWriter::new(&seg.file, path, seg.vals_off);
    entries.each(|key, val| {
        keys.push(key)?;
        vw.put(val)?;
        filter.insert(key);
        Ok(())
    })?;
    let (k, dirv, i) = keys.finish()?;
    let v = vw.finish()?;
    seg.finish((k, v), dirv, &filter, i)
}

/// [`write_entries`] for one run (a commit's new keys): its keys with the
/// directory, its values and its filter are made in three passes over the
/// run at once, on the caller's rayon pool (the regions are apart in the
/// file and their checksums combine; the same bytes as one pass: see the
/// test `one_run_is_written_as_its_merge`). A day's segment (1.1M keys)
/// took one thread ~45 ms while the index-wide filter's write, beside it,
/// took ~30.
fn write_run(
    path: &Path,
    id: u64,
    run: &Run<'_>,
    count: u64,
    cancel: &AtomicBool,
) -> Result<std::result::Result<SegMeta, u64>> {
    let seg = SegFile::create(path, id, count)?;
    let keys = || {
        let mut keys = KeyWriter::new(&seg, cancel);
        run.each(|key, _| keys.push(key))?;
        keys.finish()
    };
    let vals = || -> Result<crc32fast::Hasher> {
        let mut vw = RegionWriter::new(&seg.file, path, seg.vals_off);
        run.each(|_, v| vw.put(v))?;
        vw.finish()
    };
    let (k, (v, filter)) = rayon::join(keys, || rayon::join(vals, || run_filter(run, count)));
    let (k, dirv, i) = k?;
    seg.finish((k, v?), dirv, &filter?, i)
}

/// The filter of a segment of `count` keys, the keys of `run`.
fn run_filter(run: &Run<'_>, count: u64) -> Result<FilterBuilder> {
    #[cfg(target_arch = "x86_64")]
    if let Some(wide) = Wide::new() {
        // SAFETY: a `Wide` says the processor has AVX-512F.
        return unsafe { run_filter_wide(run, count, wide) };
    }
    run_filter_with(run, count, Words)
}

/// [`run_filter`] compiled for AVX-512F, the bits set in a register.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn run_filter_wide(run: &Run<'_>, count: u64, wide: Wide) -> Result<FilterBuilder> {
    run_filter_with(run, count, wide)
}

/// The body of [`run_filter`], the bits set `way`.
#[inline(always)]
fn run_filter_with(run: &Run<'_>, count: u64, way: impl Bits) -> Result<FilterBuilder> {
    let mut filter = FilterBuilder::new(count);
    run.each(|key, _| {
        filter.insert_with(key, way);
        Ok(())
    })?;
    Ok(filter)
}
