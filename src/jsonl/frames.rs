//! Compressed input read as the reference tools read it, member by member
//! (gzip) or frame by frame (zstd), so that every byte decoded before a
//! damaged or foreign tail is delivered before the error.
//!
//! gzip (`gzip -dc`): one or more members, optionally followed by zero bytes
//! (padding); any other trailing byte is an error. zstd (`zstd -dc`): one or
//! more frames; any trailing byte is an error (zstd accepts no padding).

use std::io::{self, BufRead, Read};

/// A gzip stream of one or more members, optionally followed by zero bytes
/// (padding, as tape and some writers leave; `gzip -dc` ignores it). Any
/// other byte after a member that does not start a new member is an error.
pub(super) struct Gzip<R: BufRead> {
    member: Option<flate2::bufread::GzDecoder<R>>,
}

impl<R: BufRead> Gzip<R> {
    pub(super) fn new(inner: R) -> Gzip<R> {
        Gzip { member: Some(flate2::bufread::GzDecoder::new(inner)) }
    }
}

impl<R: BufRead> Read for Gzip<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            let Some(member) = self.member.as_mut() else { return Ok(0) };
            let n = member.read(buf)?;
            if n > 0 || buf.is_empty() {
                return Ok(n);
            }
            // The member ended: EOF, zero padding, or the next member.
            let Some(mut inner) = self.member.take().map(flate2::bufread::GzDecoder::into_inner) else {
                return Ok(0);
            };
            let rest = inner.fill_buf()?;
            match rest.first() {
                None => return Ok(0),
                Some(0) => return zero_padding(&mut inner),
                Some(_) => self.member = Some(flate2::bufread::GzDecoder::new(inner)),
            }
        }
    }
}

/// A zstd stream of one or more frames, decoded one frame at a time: the
/// multi-frame decoder drops what it decoded in a call that then meets a
/// bad frame header, so junk after a valid frame cost the data before it.
pub(super) struct Zstd<R: BufRead> {
    frame: Option<zstd::stream::read::Decoder<'static, R>>,
}

impl<R: BufRead> Zstd<R> {
    pub(super) fn new(inner: R) -> io::Result<Zstd<R>> {
        Ok(Zstd { frame: Some(zstd::stream::read::Decoder::with_buffer(inner)?.single_frame()) })
    }
}

impl<R: BufRead> Read for Zstd<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            let Some(frame) = self.frame.as_mut() else { return Ok(0) };
            let n = frame.read(buf)?;
            if n > 0 || buf.is_empty() {
                return Ok(n);
            }
            let Some(mut inner) = self.frame.take().map(zstd::stream::read::Decoder::into_inner) else {
                return Ok(0);
            };
            if inner.fill_buf()?.is_empty() {
                return Ok(0);
            }
            self.frame = Some(zstd::stream::read::Decoder::with_buffer(inner)?.single_frame());
        }
    }
}

/// Reads to the end, accepting only zero bytes.
fn zero_padding(inner: &mut impl BufRead) -> io::Result<usize> {
    loop {
        let rest = inner.fill_buf()?;
        if rest.is_empty() {
            return Ok(0);
        }
        if rest.iter().any(|&b| b != 0) {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "trailing bytes after the gzip stream"));
        }
        let n = rest.len();
        inner.consume(n);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write as _;

    fn gz(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn read(bytes: &[u8]) -> io::Result<String> {
        let mut s = String::new();
        Gzip::new(bytes).read_to_string(&mut s).map(|_| s)
    }

    #[test]
    fn members_and_zero_padding_are_read_and_junk_is_an_error() {
        let mut two = gz(b"a\n");
        two.extend(gz(b"b\n"));
        assert_eq!(read(&two).unwrap(), "a\nb\n");
        two.extend([0u8; 100]);
        assert_eq!(read(&two).unwrap(), "a\nb\n");
        two.extend(b"junk");
        assert_eq!(read(&two).unwrap_err().kind(), io::ErrorKind::InvalidData);
    }

    #[test]
    fn zstd_frames_are_all_read_and_junk_after_them_keeps_what_came_before() {
        let body: String = (0..50_000).map(|i| format!("line {i}\n")).collect();
        let mut z = zstd::encode_all(body.as_bytes(), 3).unwrap();
        z.extend(zstd::encode_all(&b"last\n"[..], 3).unwrap());
        let mut s = String::new();
        Zstd::new(&z[..]).unwrap().read_to_string(&mut s).unwrap();
        assert_eq!(s, format!("{body}last\n"));
        z.extend(b"junkjun");
        let mut got = Vec::new();
        let mut r = Zstd::new(&z[..]).unwrap();
        let mut buf = [0u8; 1 << 16];
        let err = loop {
            match r.read(&mut buf) {
                Ok(0) => panic!("junk accepted"),
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(e) => break e,
            }
        };
        assert_eq!(String::from_utf8(got).unwrap(), format!("{body}last\n"), "{err}");
    }
}
