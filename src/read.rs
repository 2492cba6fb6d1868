//! Bytes to text: the encoding policy.
//!
//! * UTF-16 with a byte order mark (`FF FE` or `FE FF`) is decoded as UTF-16.
//! * Valid UTF-8 is taken as it is, without copying.
//! * Otherwise, by [`EncodingPolicy`]:
//!   - `repair` (default): each byte that is not part of valid UTF-8 is decoded
//!     as Windows-1252, the usual origin of stray bytes in news text (a
//!     Latin-1 `0xA3` becomes "£", `0x93`/`0x94` become curly quotes). The
//!     five bytes Windows-1252 leaves undefined map to the C1 controls of the
//!     same value (as in the WHATWG Encoding Standard).
//!   - `strict`: the file is refused, with the byte offset of the first
//!     invalid byte.
//!   - `lossy`: each invalid sequence becomes U+FFFD.
//!
//! Binary detection: a NUL byte in a file that is not UTF-16 marks it as
//! binary; such a file is refused with the offset of the NUL.

use std::fmt;
use std::fs::File;
use std::io::Read;
use std::path::Path;

use crate::error::Error;
use crate::walk::InputFile;

/// Reads a whole file, on Unix in three system calls (open, read, close):
/// the size from the walk sizes the buffer, so no `fstat` or `lseek` is
/// needed (`File::read_to_end` would make both), and the one `read` asks
/// for a byte more than that size. When it comes back short with exactly
/// the size, that is the end of the file, and the second `read` that
/// `read_to_end` makes to see a 0 is skipped (one system call in four,
/// 182,715 on the bench tree). A local file system reads a regular file
/// short only at its end; where one may read short anywhere (a network or
/// FUSE file system), skipping would take a short read of exactly the walk's
/// size from a file that grew since. A file whose first read returns
/// anything else (it grew or shrank since the walk) is read on to a 0; the
/// limit is enforced on what is actually read.
pub fn read_limited(file: &InputFile, max: Option<u64>) -> Result<Vec<u8>, Error> {
    let path = &file.path;
    if let Some(limit) = max
        && file.size > limit
    {
        return Err(Error::TooLarge { path: path.to_path_buf(), size: file.size, limit });
    }
    let f = open(path).map_err(|e| Error::io(path, e))?;
    let mut buf = Vec::with_capacity(file.size as usize + 1);
    let cap = max.map_or(u64::MAX, |limit| limit.saturating_add(1));
    let short = short_first_read(&f, &mut buf).map_err(|e| Error::io(path, e))?;
    if short != Some(file.size) {
        // `Take` has no size-probing specialisation: it reads straight into `buf`.
        f.take(cap.saturating_sub(buf.len() as u64)).read_to_end(&mut buf).map_err(|e| Error::io(path, e))?;
    }
    if let Some(limit) = max
        && buf.len() as u64 > limit
    {
        return Err(Error::TooLarge { path: path.to_path_buf(), size: buf.len() as u64, limit });
    }
    Ok(buf)
}

/// Opens `path` for reading; on Linux by its name in its folder, kept open
/// from the thread's last read ([`crate::folder`]).
fn open(path: &Path) -> std::io::Result<File> {
    #[cfg(target_os = "linux")]
    if let Some(name) = path.file_name() {
        use crate::folder::{self, READ};
        let dir = crate::write::folder_of(path);
        let name = folder::c_path(Path::new(name))?;
        let by_folder = || folder::open(&READ, dir).and_then(|d| folder::open_at(&d, &name, libc::O_RDONLY, 0));
        return by_folder()
            .or_else(|_| {
                // The kept folder may be gone: it is asked for by its path again.
                folder::forget(&READ);
                by_folder()
            })
            .map(File::from);
    }
    File::open(path)
}

/// The most one `read` asks for (as `std` caps it: macOS refuses more than
/// `INT_MAX`, Linux reads at most ~2 GiB at once).
const MAX_READ: usize = i32::MAX as usize - 1;

/// One `read` of `f` into the spare capacity of the empty `buf` (the bytes
/// read stay in `buf`); the count when it came back short of what was
/// asked, `None` otherwise (a full read, nothing done off Unix, or an
/// interruption before any byte: the caller reads on).
fn short_first_read(f: &File, buf: &mut Vec<u8>) -> std::io::Result<Option<u64>> {
    #[cfg(unix)]
    {
        use std::os::unix::io::AsRawFd;
        debug_assert!(buf.is_empty());
        let spare = buf.spare_capacity_mut();
        let asked = spare.len().min(MAX_READ);
        // SAFETY: `spare` is writable memory of at least `asked` bytes, and
        // `read` writes at most `asked` bytes into it.
        let n = unsafe { libc::read(f.as_raw_fd(), spare.as_mut_ptr().cast(), asked) };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            return if e.kind() == std::io::ErrorKind::Interrupted { Ok(None) } else { Err(e) };
        }
        let n = n as usize;
        // SAFETY: `buf` was empty and `read` initialised its first `n` bytes.
        unsafe { buf.set_len(n) };
        Ok((n < asked).then_some(n as u64))
    }
    #[cfg(not(unix))]
    {
        let _ = (f, buf, MAX_READ);
        Ok(None)
    }
}

/// What to do with bytes that are not valid UTF-8.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum EncodingPolicy {
    /// Decode invalid bytes as Windows-1252.
    #[default]
    Repair,
    /// Refuse the file.
    Strict,
    /// Replace invalid sequences with U+FFFD.
    Lossy,
}

/// How a text was decoded.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Decoding {
    /// Byte offset of the first invalid UTF-8 byte, when there was one
    /// (and the policy repaired or replaced it).
    pub first_invalid: Option<usize>,
    /// Number of invalid bytes repaired or replaced.
    pub invalid_bytes: usize,
    /// The input was UTF-16 (with a BOM).
    pub utf16: bool,
}

/// Why bytes could not be decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// Not valid UTF-8 under the strict policy.
    InvalidUtf8 {
        /// Byte offset of the first invalid byte.
        offset: usize,
    },
    /// Invalid UTF-16 (odd length or unpaired surrogate) under the strict policy.
    InvalidUtf16 {
        /// Byte offset of the first invalid code unit.
        offset: usize,
    },
    /// A NUL byte: the file is binary.
    Binary {
        /// Byte offset of the first NUL.
        offset: usize,
    },
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::InvalidUtf8 { offset } => write!(f, "invalid UTF-8 at byte offset {offset}"),
            DecodeError::InvalidUtf16 { offset } => write!(f, "invalid UTF-16 at byte offset {offset}"),
            DecodeError::Binary { offset } => write!(f, "binary file (NUL byte at byte offset {offset})"),
        }
    }
}

impl std::error::Error for DecodeError {}

/// Windows-1252 for the bytes 0x80–0x9F; 0xA0–0xFF equal their code point.
const CP1252_HIGH: [char; 32] = [
    '\u{20AC}', '\u{0081}', '\u{201A}', '\u{0192}', '\u{201E}', '\u{2026}', '\u{2020}', '\u{2021}', '\u{02C6}',
    '\u{2030}', '\u{0160}', '\u{2039}', '\u{0152}', '\u{008D}', '\u{017D}', '\u{008F}', '\u{0090}', '\u{2018}',
    '\u{2019}', '\u{201C}', '\u{201D}', '\u{2022}', '\u{2013}', '\u{2014}', '\u{02DC}', '\u{2122}', '\u{0161}',
    '\u{203A}', '\u{0153}', '\u{009D}', '\u{017E}', '\u{0178}',
];

/// The Windows-1252 character for one byte.
pub fn cp1252(b: u8) -> char {
    match b {
        0x80..=0x9F => CP1252_HIGH[usize::from(b - 0x80)],
        _ => char::from(b),
    }
}

/// Decodes `bytes` by `policy`.
///
/// ```
/// use newsdedup::read::{decode, EncodingPolicy};
/// let (text, info) = decode(b"costs \xA3600m".to_vec(), EncodingPolicy::Repair).unwrap();
/// assert_eq!(text, "costs \u{00A3}600m");
/// assert_eq!(info.first_invalid, Some(6));
/// ```
pub fn decode(bytes: Vec<u8>, policy: EncodingPolicy) -> Result<(String, Decoding), DecodeError> {
    if let Some(big_endian) = utf16_bom(&bytes) {
        return decode_utf16(&bytes[2..], big_endian, policy);
    }
    if let Some(offset) = memchr_nul(&bytes) {
        return Err(DecodeError::Binary { offset });
    }
    match String::from_utf8(bytes) {
        Ok(text) => Ok((text, Decoding::default())),
        Err(e) => {
            let offset = e.utf8_error().valid_up_to();
            let bytes = e.into_bytes();
            match policy {
                EncodingPolicy::Strict => Err(DecodeError::InvalidUtf8 { offset }),
                EncodingPolicy::Lossy => Ok(lossy(&bytes, offset)),
                EncodingPolicy::Repair => Ok(repair(&bytes, offset)),
            }
        }
    }
}

/// Reads a whole file and decodes it by `policy`, as `newsdedup clean FILE`
/// does; errors name the file (and the byte offset for a decoding error).
pub fn read_file(path: &std::path::Path, policy: EncodingPolicy) -> Result<String, crate::error::Error> {
    let bytes = std::fs::read(path).map_err(|e| crate::error::Error::io(path, e))?;
    decode(bytes, policy)
        .map(|(text, _)| text)
        .map_err(|cause| crate::error::Error::Decode { path: path.into(), cause })
}

fn memchr_nul(bytes: &[u8]) -> Option<usize> {
    // `contains` on bytes is core's word-at-a-time memchr; `position` alone
    // is a byte loop. Text rarely has a NUL, so the second pass is rare.
    if bytes.contains(&0) { bytes.iter().position(|&b| b == 0) } else { None }
}

fn utf16_bom(bytes: &[u8]) -> Option<bool> {
    match bytes {
        [0xFF, 0xFE, ..] => Some(false),
        [0xFE, 0xFF, ..] => Some(true),
        _ => None,
    }
}

fn repair(bytes: &[u8], first: usize) -> (String, Decoding) {
    let mut text = String::with_capacity(bytes.len() + 16);
    let mut invalid = 0;
    for chunk in bytes.utf8_chunks() {
        text.push_str(chunk.valid());
        invalid += chunk.invalid().len();
        text.extend(chunk.invalid().iter().map(|&b| cp1252(b)));
    }
    (text, Decoding { first_invalid: Some(first), invalid_bytes: invalid, utf16: false })
}

fn lossy(bytes: &[u8], first: usize) -> (String, Decoding) {
    let invalid = bytes.utf8_chunks().map(|c| c.invalid().len()).sum();
    let text = String::from_utf8_lossy(bytes).into_owned();
    (text, Decoding { first_invalid: Some(first), invalid_bytes: invalid, utf16: false })
}

fn decode_utf16(body: &[u8], big_endian: bool, policy: EncodingPolicy) -> Result<(String, Decoding), DecodeError> {
    let units = body.chunks_exact(2).map(|p| {
        let pair = [p[0], p[1]];
        if big_endian { u16::from_be_bytes(pair) } else { u16::from_le_bytes(pair) }
    });
    let mut text = String::with_capacity(body.len());
    let mut info = Decoding { utf16: true, ..Decoding::default() };
    let mut offset = 2;
    for r in char::decode_utf16(units) {
        match r {
            Ok(c) => {
                text.push(c);
                offset += 2 * c.len_utf16();
            }
            Err(_) if policy == EncodingPolicy::Strict => return Err(DecodeError::InvalidUtf16 { offset }),
            Err(_) => {
                info.first_invalid.get_or_insert(offset);
                info.invalid_bytes += 2;
                text.push(char::REPLACEMENT_CHARACTER);
                offset += 2;
            }
        }
    }
    if body.len() % 2 == 1 {
        let at = body.len() + 1;
        if policy == EncodingPolicy::Strict {
            return Err(DecodeError::InvalidUtf16 { offset: at });
        }
        info.first_invalid.get_or_insert(at);
        info.invalid_bytes += 1;
        text.push(char::REPLACEMENT_CHARACTER);
    }
    Ok((text, info))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `read_limited` of a file holding `content` that the walk saw at `size` bytes.
    fn read_sized(content: &[u8], size: u64, max: Option<u64>) -> Result<Vec<u8>, Error> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.txt");
        std::fs::write(&path, content).unwrap();
        read_limited(&InputFile { path, rel: "f.txt".into(), size }, max)
    }

    #[test]
    fn a_file_is_read_whole_whatever_size_the_walk_saw() {
        let text = b"one paragraph\n\nanother one\n";
        let n = text.len() as u64;
        for size in [n, 0, 1, n - 1, n + 1, n * 3] {
            assert_eq!(read_sized(text, size, None).unwrap(), text, "walk size {size}");
        }
        assert_eq!(read_sized(b"", 0, None).unwrap(), b"");
        assert_eq!(read_sized(b"", 5, None).unwrap(), b"");
        // A file bigger than the buffer's one read (it grew since the walk).
        let big = vec![b'x'; 1 << 20];
        assert_eq!(read_sized(&big, 10, None).unwrap(), big);
    }

    #[test]
    fn the_limit_holds_on_what_is_read() {
        let text = b"0123456789";
        assert_eq!(read_sized(text, 10, Some(10)).unwrap(), text);
        // The walk saw 4 bytes, under the limit; the file has 10.
        assert!(matches!(read_sized(text, 4, Some(8)), Err(Error::TooLarge { size: 9, limit: 8, .. })));
        assert!(matches!(read_sized(text, 10, Some(8)), Err(Error::TooLarge { size: 10, limit: 8, .. })));
        // The largest limit is no limit (its "one byte more" must not wrap).
        assert_eq!(read_sized(text, 4, Some(u64::MAX)).unwrap(), text);
    }

    #[test]
    fn valid_utf8_is_unchanged() {
        let (t, info) = decode("caf\u{e9} \u{201C}x\u{201D}".as_bytes().to_vec(), EncodingPolicy::Strict).unwrap();
        assert_eq!(t, "caf\u{e9} \u{201C}x\u{201D}");
        assert_eq!(info, Decoding::default());
    }

    #[test]
    fn repair_decodes_stray_bytes_as_windows_1252() {
        let (t, info) = decode(b"\x93Hi\x94 \xA3600m \x80".to_vec(), EncodingPolicy::Repair).unwrap();
        assert_eq!(t, "\u{201C}Hi\u{201D} \u{a3}600m \u{20AC}");
        assert_eq!(info.first_invalid, Some(0));
        assert_eq!(info.invalid_bytes, 4);
    }

    #[test]
    fn strict_refuses_with_offset() {
        assert_eq!(decode(b"abc\xA3".to_vec(), EncodingPolicy::Strict), Err(DecodeError::InvalidUtf8 { offset: 3 }));
    }

    #[test]
    fn lossy_uses_replacement_character() {
        let (t, info) = decode(b"a\xA3b".to_vec(), EncodingPolicy::Lossy).unwrap();
        assert_eq!(t, "a\u{FFFD}b");
        assert_eq!(info.first_invalid, Some(1));
    }

    #[test]
    fn nul_byte_means_binary() {
        assert_eq!(decode(b"ab\0c".to_vec(), EncodingPolicy::Repair), Err(DecodeError::Binary { offset: 2 }));
    }

    #[test]
    fn utf16_with_bom_is_decoded() {
        let mut le = vec![0xFF, 0xFE];
        le.extend("h\u{e9}\u{1F600}".encode_utf16().flat_map(u16::to_le_bytes));
        assert_eq!(decode(le, EncodingPolicy::Strict).unwrap().0, "h\u{e9}\u{1F600}");
        let mut be = vec![0xFE, 0xFF];
        be.extend("ok".encode_utf16().flat_map(u16::to_be_bytes));
        assert_eq!(decode(be, EncodingPolicy::Strict).unwrap().0, "ok");
    }

    #[test]
    fn broken_utf16_is_reported_or_replaced() {
        let bytes = vec![0xFF, 0xFE, b'a', 0, 0x00, 0xD8, b'b', 0];
        assert_eq!(decode(bytes.clone(), EncodingPolicy::Strict), Err(DecodeError::InvalidUtf16 { offset: 4 }));
        assert_eq!(decode(bytes, EncodingPolicy::Repair).unwrap().0, "a\u{FFFD}b");
    }
}
