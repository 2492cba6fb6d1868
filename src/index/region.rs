//! Writing an index file region by region: [`RegionWriter`] buffers the
//! bytes of one region (a segment's keys, values, directory and filter; the
//! index-wide filter cuts its own pieces the same way), writes them in
//! pieces that end at the file's 2 MiB boundaries, keeps their checksum and
//! starts their writeback.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

use super::error::{Result, io_err};

/// The file offsets at which a [`RegionWriter`] (and the index-wide
/// filter's writer) cut their writes: 2 MiB, a huge page. Linux's page
/// cache (ext4 and others with large folios) gives a write of a whole
/// aligned 2 MiB one 2 MiB folio, which a later run's mapping of the file
/// maps with one page-table entry: opening a 10M-key index then costs its
/// checksum only, not the mapping of 72,000 pages of 4 KiB (and their TLB
/// misses)
/// (issue 18, thirty-eighth session: populating the mapping of a 223 MB
/// segment took 0.2 ms instead of 8-15 ms).
pub(super) const PIECE: usize = 2 << 20;

/// Bytes from `off` to the next multiple of [`PIECE`] (1 to `PIECE`).
pub(super) fn to_boundary(off: u64) -> usize {
    PIECE - (off % PIECE as u64) as usize
}

/// Sequential writer at a fixed file offset, with a running CRC. Its
/// writes end at the file's [`PIECE`] boundaries (the first may start
/// between two), so that every whole 2 MiB of the region is one write.
pub(super) struct RegionWriter<'a> {
    file: &'a File,
    path: &'a Path,
    /// Where `buf` goes in the file.
    off: u64,
    buf: Vec<u8>,
    /// Bytes `buf` takes before it reaches the next boundary (and is written).
    left: usize,
    crc: crc32fast::Hasher,
    /// Offset and length of each write (tests).
    #[cfg(test)]
    writes: Vec<(u64, usize)>,
}

impl<'a> RegionWriter<'a> {
    pub(super) fn new(file: &'a File, path: &'a Path, off: u64) -> Self {
        let left = to_boundary(off);
        // The buffer grows to a piece as it fills (a header's writer puts 32 bytes).
        RegionWriter {
            file,
            path,
            off,
            buf: Vec::with_capacity(left.min(64 << 10)),
            left,
            crc: crc32fast::Hasher::new(),
            #[cfg(test)]
            writes: Vec::new(),
        }
    }
    #[inline]
    pub(super) fn put(&mut self, bytes: &[u8]) -> Result<()> {
        if bytes.len() < self.left {
            self.buf.extend_from_slice(bytes);
            self.left -= bytes.len();
            return Ok(());
        }
        self.put_across(bytes)
    }
    /// [`RegionWriter::put`] of bytes that reach the next boundary: the
    /// buffer is filled to it and written (or, empty, the bytes to it
    /// written straight from `bytes`), then whole pieces straight from
    /// `bytes`, and the rest buffered.
    #[cold]
    fn put_across(&mut self, bytes: &[u8]) -> Result<()> {
        let (head, mut rest) = bytes.split_at(self.left);
        if self.buf.is_empty() {
            self.write(head)?;
        } else {
            self.buf.extend_from_slice(head);
            let buf = std::mem::take(&mut self.buf);
            self.write(&buf)?;
            self.buf = buf;
            self.buf.clear();
        }
        while rest.len() >= PIECE {
            let (piece, after) = rest.split_at(PIECE);
            self.write(piece)?;
            rest = after;
        }
        self.buf.extend_from_slice(rest);
        self.left = PIECE - rest.len();
        Ok(())
    }
    /// Writes `bytes` at `off` (the buffer's place) and moves `off` on.
    fn write(&mut self, bytes: &[u8]) -> Result<()> {
        self.crc.update(bytes);
        #[cfg(test)]
        self.writes.push((self.off, bytes.len()));
        self.file.write_all_at(bytes, self.off).map_err(io_err(self.path))?;
        write_behind(self.file, self.off, bytes.len());
        self.off += bytes.len() as u64;
        Ok(())
    }
    /// The offset of the next byte put.
    pub(super) fn end(&self) -> u64 {
        self.off + self.buf.len() as u64
    }
    /// Writes what is buffered.
    fn flush(&mut self) -> Result<()> {
        let buf = std::mem::take(&mut self.buf);
        if !buf.is_empty() {
            self.write(&buf)?;
        }
        Ok(())
    }
    /// Writes what is buffered; the checksum of every byte put.
    pub(super) fn finish(mut self) -> Result<crc32fast::Hasher> {
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

#[cfg(test)]
mod tests {
    use super::*;

    /// What [`written`] gives: the file's bytes from the writer's offset,
    /// the bytes put, the checksum and the writes made (offset, length).
    type Written = (Vec<u8>, Vec<u8>, u32, Vec<(u64, usize)>);

    /// Puts `sizes` (bytes of a running counter) through a writer at `at`.
    fn written(at: u64, sizes: &[usize]) -> Written {
        let tmp = tempfile::tempdir().expect("tempdir");
        let path = tmp.path().join("region");
        let file = File::create(&path).expect("create");
        let mut w = RegionWriter::new(&file, &path, at);
        let mut want = Vec::new();
        for (i, &n) in sizes.iter().enumerate() {
            let bytes: Vec<u8> = (0..n).map(|j| (i * 31 + j * 7) as u8).collect();
            w.put(&bytes).expect("put");
            assert_eq!(w.end(), at + (want.len() + n) as u64);
            want.extend_from_slice(&bytes);
        }
        w.flush().expect("flush");
        let writes = w.writes.clone();
        let crc = w.finish().expect("finish").finalize();
        let got = std::fs::read(&path).expect("read");
        // (Nothing put, nothing written.)
        let end = if want.is_empty() { 0 } else { at + want.len() as u64 };
        assert_eq!(got.len() as u64, end);
        (got.get(at as usize..).unwrap_or_default().to_vec(), want, crc, writes)
    }

    #[test]
    fn writes_end_at_the_files_2_mib_boundaries_and_keep_every_byte() {
        let p = PIECE;
        let cases: Vec<(u64, Vec<usize>)> = vec![
            // A segment's keys after its 32-byte header: 16 bytes a key.
            (32, vec![16; 3 * p / 16 + 5]),
            // Values of 12 bytes from an offset that is no multiple of 12.
            ((5 * p + 40) as u64, vec![12; p / 4]),
            // Puts larger than a piece, from a boundary and from between two.
            (0, vec![3, 2 * p + 7, 1, p, p - 4, 5]),
            (p as u64 - 1, vec![1, 1, 3 * p]),
            // Nothing put, and less than a piece.
            (100, vec![]),
            (100, vec![10, 20]),
        ];
        for (at, sizes) in cases {
            let (got, want, crc, writes) = written(at, &sizes);
            assert!(got == want, "bytes differ from {at}");
            assert_eq!(crc, crc32fast::hash(&want), "checksum from {at}");
            // The writes follow each other from `at` and cover the bytes.
            let mut next = at;
            for &(off, len) in &writes {
                assert_eq!(off, next, "writes from {at}: {writes:?}");
                assert!(len > 0 && len <= p);
                next += len as u64;
            }
            assert_eq!(next, at + want.len() as u64);
            // Each ends at a boundary but the last; so each starts at one but
            // the first, and every whole 2 MiB between is a write of its own.
            for &(off, len) in writes.iter().rev().skip(1) {
                assert_eq!((off + len as u64) % p as u64, 0, "writes from {at}: {writes:?}");
            }
            let whole = (at.next_multiple_of(p as u64)..next).step_by(p).filter(|b| b + p as u64 <= next).count();
            assert_eq!(writes.iter().filter(|&&(_, len)| len == p).count(), whole, "writes from {at}: {writes:?}");
        }
    }
}
