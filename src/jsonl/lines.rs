//! The lines of a JSON Lines shard, read in chunks: a line is a byte range
//! of a large buffer that one `read` filled straight from the
//! (decompressed) input ([`SharedLine`]), shared by every line cut from it,
//! instead of one allocation and one more copy per line. A record keeps its
//! line until it is written (other fields are sliced from it), so a chunk
//! is freed, or taken again for a later read, once the last record cut from
//! it is.

use std::fmt;
use std::io::{self, BufRead};
use std::ops::Deref;
use std::sync::Arc;

/// Bytes asked of the reader at a time: at least the capacity of the
/// shard's buffered reader ([`super::reader`], 1 MiB), so that
/// `BufReader` reads straight into the chunk (it does for a request at
/// least as large as its buffer, once that buffer is empty).
const READ_SIZE: usize = 1 << 20;

/// Chunks that no line holds any more, kept to be read into again.
const SPARE_CHUNKS: usize = 8;

/// One line as read, without its `\n` (a `\r` before it stays): a range of
/// a chunk shared with the other lines read with it, or a buffer of its own
/// ([`SharedLine::from`], as CSV rows are). Dereferences to its bytes.
///
/// A chunk is an `Arc<[u8]>`: the line holds the pointer to the bytes and
/// their length itself, so reading it never touches the cache line of the
/// reference counts, which the reading thread writes as it hands out lines
/// while the other threads read the lines handed out before.
#[derive(Clone)]
pub struct SharedLine(Repr);

#[derive(Clone)]
enum Repr {
    Chunk { chunk: Arc<[u8]>, start: usize, end: usize },
    Own(Vec<u8>),
}

impl SharedLine {
    /// The bytes as a vector of their own (no copy for a line made
    /// [`From`] a vector).
    pub fn into_vec(self) -> Vec<u8> {
        match self.0 {
            Repr::Own(bytes) => bytes,
            Repr::Chunk { chunk, start, end } => chunk[start..end].to_vec(),
        }
    }
}

impl From<Vec<u8>> for SharedLine {
    fn from(bytes: Vec<u8>) -> SharedLine {
        SharedLine(Repr::Own(bytes))
    }
}

impl Deref for SharedLine {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match &self.0 {
            Repr::Chunk { chunk, start, end } => &chunk[*start..*end],
            Repr::Own(bytes) => bytes,
        }
    }
}

impl fmt::Debug for SharedLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SharedLine({:?})", String::from_utf8_lossy(self))
    }
}

impl PartialEq for SharedLine {
    fn eq(&self, other: &SharedLine) -> bool {
        self[..] == other[..]
    }
}

impl Eq for SharedLine {}

/// Reads a stream's lines into shared chunks ([`SharedLine`]).
///
/// A chunk is filled by reads of `READ_SIZE` (1 MiB) bytes after the unfinished
/// line the previous chunk ended with (copied over); lines are handed out
/// from it until none is complete, then the next chunk is read. A read
/// error is returned once the complete lines read before it are handed
/// out; the line it cut short is not (as [`BufRead::read_until`] loses
/// nothing but that line).
pub struct LineReader {
    reader: Box<dyn BufRead + Send>,
    /// The chunk lines are being cut from; its first `filled` bytes are data.
    chunk: Arc<[u8]>,
    filled: usize,
    /// Where the next line starts in `chunk`.
    pos: usize,
    /// Chunks read before, to be read into again once no line holds them.
    spare: Vec<Arc<[u8]>>,
    /// The reader's error, returned once the lines before it are handed out.
    error: Option<io::Error>,
    eof: bool,
    read_size: usize,
}

impl LineReader {
    /// Lines of `reader`, read `READ_SIZE` (1 MiB) bytes at a time.
    pub fn new(reader: Box<dyn BufRead + Send>) -> LineReader {
        LineReader::with_read_size(reader, READ_SIZE)
    }

    /// Lines of `reader`, read `read_size` bytes at a time (tests use small
    /// sizes to put lines across chunks).
    pub fn with_read_size(reader: Box<dyn BufRead + Send>, read_size: usize) -> LineReader {
        let read_size = read_size.max(1);
        LineReader {
            reader,
            chunk: Arc::from(Vec::new()),
            filled: 0,
            pos: 0,
            spare: Vec::new(),
            error: None,
            eof: false,
            read_size,
        }
    }

    /// The next line and the bytes it took in the stream (with its `\n`,
    /// when it has one); `None` at the end of the stream.
    pub fn next_line(&mut self) -> io::Result<Option<(SharedLine, usize)>> {
        loop {
            let rest = &self.chunk[self.pos..self.filled];
            if let Some(i) = memchr::memchr(b'\n', rest) {
                let start = self.pos;
                self.pos += i + 1;
                return Ok(Some((self.line(start, start + i), i + 1)));
            }
            if let Some(e) = self.error.take() {
                // The line the error cut short is lost, and nothing after it is read.
                self.pos = self.filled;
                self.eof = true;
                return Err(e);
            }
            if self.eof {
                if rest.is_empty() {
                    return Ok(None);
                }
                let (start, end) = (self.pos, self.filled);
                self.pos = end;
                return Ok(Some((self.line(start, end), end - start)));
            }
            self.refill();
        }
    }

    fn line(&self, start: usize, end: usize) -> SharedLine {
        SharedLine(Repr::Chunk { chunk: Arc::clone(&self.chunk), start, end })
    }

    /// Reads the next chunk: the unfinished line at the end of this one,
    /// then up to `read_size` bytes, or as many as that line has when it is
    /// longer (so that a line of any length is copied a bounded number of
    /// times in all). Reading stops at the end of the stream, at an error
    /// (kept for [`LineReader::next_line`]), when the chunk is full, or when
    /// a short read (a pipe, a decompressor) has completed a line: its lines
    /// are handed out as soon as a `BufRead` would hand them out, and such a
    /// chunk, mostly empty, is copied into one of its size.
    fn refill(&mut self) {
        let tail = self.filled - self.pos;
        let want = tail + self.read_size.max(tail);
        // A little room over the read, so that a spare chunk still takes
        // the read after a longer unfinished line.
        let mut next = self.take_chunk(want, want.max(self.read_size + self.read_size / 4));
        let buf = Arc::get_mut(&mut next).expect("a chunk taken is held by no line");
        buf[..tail].copy_from_slice(&self.chunk[self.pos..self.filled]);
        let mut filled = tail;
        while filled < want {
            match self.reader.read(&mut buf[filled..want]) {
                Ok(0) => {
                    self.eof = true;
                    break;
                }
                Ok(n) => {
                    filled += n;
                    if filled < want && memchr::memchr(b'\n', &buf[filled - n..filled]).is_some() {
                        break;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.error = Some(e);
                    break;
                }
            }
        }
        if filled < buf.len() / 2 {
            let small = Arc::from(&buf[..filled]);
            let large = std::mem::replace(&mut next, small);
            self.keep(large);
        }
        let old = std::mem::replace(&mut self.chunk, next);
        self.keep(old);
        (self.filled, self.pos) = (filled, 0);
    }

    /// Keeps `chunk` to be read into again, the oldest kept dropped past
    /// [`SPARE_CHUNKS`]; a chunk grown for a long line, or one of a short
    /// read's size, is not kept.
    fn keep(&mut self, chunk: Arc<[u8]>) {
        if (self.read_size..=2 * self.read_size).contains(&chunk.len()) {
            if self.spare.len() == SPARE_CHUNKS {
                self.spare.remove(0);
            }
            self.spare.push(chunk);
        }
    }

    /// A chunk of at least `len` bytes that no line holds: a spare one when
    /// there is one, else a new one of `new_len` zero bytes (`Read::read`
    /// takes initialised bytes).
    fn take_chunk(&mut self, len: usize, new_len: usize) -> Arc<[u8]> {
        let free = self.spare.iter_mut().position(|c| c.len() >= len && Arc::get_mut(c).is_some());
        match free {
            Some(i) => self.spare.swap_remove(i),
            None => {
                // Zeroed in place: `Arc::from(vec![0; n])` would copy the
                // zeroes once more.
                let mut fresh = Arc::<[u8]>::new_uninit_slice(new_len);
                let bytes = Arc::get_mut(&mut fresh).expect("a new chunk is held by no one");
                // SAFETY: writes a zero to each of the slice's `len()` bytes.
                unsafe { std::ptr::write_bytes(bytes.as_mut_ptr(), 0, bytes.len()) };
                // SAFETY: every byte was written just above.
                unsafe { fresh.assume_init() }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufReader, Read};

    /// All the lines of `data` read with chunks of `read_size` bytes.
    fn lines(data: &[u8], read_size: usize, cap: usize) -> Vec<(Vec<u8>, usize)> {
        let reader = BufReader::with_capacity(cap, io::Cursor::new(data.to_vec()));
        let mut r = LineReader::with_read_size(Box::new(reader), read_size);
        let mut out = Vec::new();
        while let Some((line, n)) = r.next_line().expect("no error") {
            out.push((line.to_vec(), n));
        }
        out
    }

    #[test]
    fn lines_are_those_read_until_finds_whatever_the_chunk_size() {
        let data = b"{\"a\":1}\n\nlong line without a break at first\r\nx\n\nlast without break";
        let mut expected = Vec::new();
        let mut r = &data[..];
        loop {
            let mut line = Vec::new();
            let n = r.read_until(b'\n', &mut line).unwrap();
            if n == 0 {
                break;
            }
            let body = line.strip_suffix(b"\n").unwrap_or(&line).to_vec();
            expected.push((body, n));
        }
        assert_eq!(expected.len(), 6);
        for read_size in [1, 2, 3, 7, 9, 64, 1 << 20] {
            for cap in [1, 4, 64, 1 << 20] {
                assert_eq!(lines(data, read_size, cap), expected, "read size {read_size}, capacity {cap}");
            }
        }
        assert!(lines(b"", 4, 4).is_empty());
        assert_eq!(lines(b"\n", 4, 4), vec![(Vec::new(), 1)]);
        assert_eq!(lines(b"a\n", 1, 1), vec![(b"a".to_vec(), 2)]);
    }

    #[test]
    fn chunks_are_read_into_again_once_no_line_holds_them() {
        let data: Vec<u8> = (0..2000).flat_map(|i| format!("line {i}\n").into_bytes()).collect();
        let reader = BufReader::with_capacity(64, io::Cursor::new(data.clone()));
        let mut r = LineReader::with_read_size(Box::new(reader), 64);
        let (mut count, mut kept) = (0, Vec::new());
        while let Some((line, _)) = r.next_line().unwrap() {
            assert_eq!(*line, format!("line {count}").into_bytes()[..]);
            // One line in a hundred is held to the end: its chunk is not reused.
            if count % 100 == 0 {
                kept.push((count, line));
            }
            count += 1;
        }
        assert_eq!(count, 2000);
        for (i, line) in kept {
            assert_eq!(*line, format!("line {i}").into_bytes()[..], "a held line was overwritten");
        }
        assert!(r.spare.len() <= SPARE_CHUNKS);
    }

    /// A reader that counts the reads asked of it.
    struct Counting<'a>(&'a [u8], std::sync::Arc<std::sync::atomic::AtomicUsize>);

    impl Read for Counting<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            self.1.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            self.0.read(buf)
        }
    }

    #[test]
    fn a_long_line_is_read_in_a_few_growing_chunks() {
        let long = vec![b'x'; 300_000];
        let mut data = b"{\"a\":1}\n".to_vec();
        data.extend_from_slice(&long);
        data.extend_from_slice(b"\nend\n");
        let data: &'static [u8] = data.leak();
        let reads = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let reader = BufReader::with_capacity(16, Counting(data, reads.clone()));
        let mut r = LineReader::with_read_size(Box::new(reader), 16);
        assert_eq!(&*r.next_line().unwrap().unwrap().0, b"{\"a\":1}");
        let (line, n) = r.next_line().unwrap().unwrap();
        assert_eq!((line.len(), n), (long.len(), long.len() + 1));
        assert!(line.iter().all(|&b| b == b'x'));
        assert_eq!(&*r.next_line().unwrap().unwrap().0, b"end");
        assert!(r.next_line().unwrap().is_none());
        // The chunk doubles while the line does not end (about 15 reads),
        // instead of 16 bytes more each time (about 19,000).
        let reads = reads.load(std::sync::atomic::Ordering::Relaxed);
        assert!(reads < 40, "{reads} reads for a line of 300,000 bytes");
        assert!(r.spare.iter().all(|c| c.len() <= 32), "a grown chunk was kept");
    }

    /// A reader that gives at most `step` bytes a read, as a pipe does.
    struct Pipe(Vec<u8>, usize, usize);

    impl Read for Pipe {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = buf.len().min(self.2).min(self.0.len() - self.1);
            buf[..n].copy_from_slice(&self.0[self.1..self.1 + n]);
            self.1 += n;
            Ok(n)
        }
    }

    #[test]
    fn a_short_read_hands_out_its_lines_at_once_in_a_chunk_of_its_size() {
        let data: Vec<u8> = (0..500).flat_map(|i| format!("{{\"n\":{i}}}\n").into_bytes()).collect();
        let reads = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let data: &'static [u8] = data.leak();
        // Reads of 24 bytes at most: a line is complete after the first.
        let pipe = Pipe(data.to_vec(), 0, 24);
        let counted = Counting(data, reads.clone());
        let mut r = LineReader::with_read_size(Box::new(BufReader::with_capacity(8, pipe)), 1 << 16);
        assert_eq!(&*r.next_line().unwrap().unwrap().0, b"{\"n\":0}");
        assert!(r.chunk.len() <= 24, "a chunk of {} bytes for a read of 24", r.chunk.len());
        let mut n = 1;
        while let Some((line, _)) = r.next_line().unwrap() {
            assert_eq!(*line, format!("{{\"n\":{n}}}").into_bytes()[..]);
            n += 1;
        }
        assert_eq!(n, 500);
        assert!(r.spare.iter().all(|c| c.len() >= 1 << 16), "small chunks are not kept");
        // A file gives the whole read at once: one read per chunk.
        let mut r = LineReader::with_read_size(Box::new(BufReader::with_capacity(8, counted)), 1 << 16);
        while r.next_line().unwrap().is_some() {}
        assert!(reads.load(std::sync::atomic::Ordering::Relaxed) <= 3);
    }

    /// A reader that fails after `good` bytes.
    struct Failing {
        data: Vec<u8>,
        at: usize,
        good: usize,
    }

    impl Read for Failing {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.at >= self.good {
                return Err(io::Error::other("disk on fire"));
            }
            let n = buf.len().min(self.good - self.at).min(5);
            buf[..n].copy_from_slice(&self.data[self.at..self.at + n]);
            self.at += n;
            Ok(n)
        }
    }

    #[test]
    fn a_read_error_comes_after_the_complete_lines_before_it() {
        let data = b"one\ntwo\nthree\nfour\n".to_vec();
        // The error comes in the middle of "three".
        for read_size in [1, 3, 8, 64] {
            let failing = Failing { data: data.clone(), at: 0, good: 10 };
            let mut r = LineReader::with_read_size(Box::new(BufReader::with_capacity(2, failing)), read_size);
            assert_eq!(&*r.next_line().unwrap().unwrap().0, b"one");
            assert_eq!(&*r.next_line().unwrap().unwrap().0, b"two");
            let err = r.next_line().unwrap_err();
            assert_eq!(err.to_string(), "disk on fire", "read size {read_size}");
            assert!(r.next_line().unwrap().is_none(), "nothing is read after the error");
        }
    }

    #[test]
    fn a_line_made_from_a_vector_gives_it_back_without_a_copy() {
        let v = b"{\"text\":\"x\"}".to_vec();
        let ptr = v.as_ptr();
        let line = SharedLine::from(v);
        assert_eq!(&*line, b"{\"text\":\"x\"}");
        assert_eq!(line.clone().into_vec(), b"{\"text\":\"x\"}");
        let back = line.into_vec();
        assert_eq!(back.as_ptr(), ptr);
        let data = b"ab\ncd\n";
        let mut r = LineReader::with_read_size(Box::new(&data[..]), 64);
        let first = r.next_line().unwrap().unwrap().0;
        assert_eq!(first.clone().into_vec(), b"ab");
        assert_eq!(first, SharedLine::from(b"ab".to_vec()));
    }
}
