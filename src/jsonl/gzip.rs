//! gzip input as `gzip -dc` reads it: one or more members, optionally
//! followed by zero bytes (padding); any other trailing byte is an error.

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
}
