//! Compressed inputs, told by their first bytes, never by a file name: one layer for captures,
//! records and server logs (logrotate's `.gz`, `tcpdump -w - | gzip`, zstd archives).

use std::io::{self, BufRead, Read};

/// A compression format smtpscope reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// gzip (RFC 1952); concatenated members read as one stream, as `gzip -d` reads them.
    Gzip,
    /// Zstandard.
    Zstd,
}

impl Compression {
    /// The compression the first bytes of a stream announce, if any.
    pub fn of(head: &[u8]) -> Option<Self> {
        match head {
            [0x1f, 0x8b, ..] => Some(Self::Gzip),
            [0x28, 0xb5, 0x2f, 0xfd, ..] => Some(Self::Zstd),
            _ => None,
        }
    }

    /// The format's usual name, for messages.
    pub fn name(self) -> &'static str {
        match self {
            Self::Gzip => "gzip",
            Self::Zstd => "zstd",
        }
    }
}

/// A streaming decoder: memory stays bounded whatever the expansion (a bomb is read, not held).
pub enum Decoder<R: BufRead> {
    /// gzip, all members.
    Gzip(flate2::bufread::MultiGzDecoder<R>),
    /// Zstandard, with the library's default window limit.
    Zstd(zstd::stream::read::Decoder<'static, R>),
}

impl<R: BufRead> Decoder<R> {
    /// A decoder for `c` reading from `raw`.
    pub fn new(c: Compression, raw: R) -> io::Result<Self> {
        Ok(match c {
            Compression::Gzip => Self::Gzip(flate2::bufread::MultiGzDecoder::new(raw)),
            Compression::Zstd => Self::Zstd(zstd::stream::read::Decoder::with_buffer(raw)?),
        })
    }
}

impl<R: BufRead> Read for Decoder<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Self::Gzip(d) => d.read(buf),
            Self::Zstd(d) => d.read(buf),
        }
    }
}

/// Looks at the first bytes of `raw` (without consuming them): the decoder they call for, or
/// `None` when the stream is not compressed.
pub fn sniff<R: BufRead>(raw: &mut R) -> io::Result<Option<Compression>> {
    Ok(Compression::of(raw.fill_buf()?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn the_magic_decides_not_the_name() {
        assert_eq!(Compression::of(&gzip(b"x")), Some(Compression::Gzip));
        assert_eq!(Compression::of(&zstd::encode_all(&b"x"[..], 1).unwrap()), Some(Compression::Zstd));
        assert_eq!(Compression::of(b"\xd4\xc3\xb2\xa1"), None);
        assert_eq!(Compression::of(b""), None);
    }

    #[test]
    fn concatenated_gzip_members_read_as_one_stream() {
        let mut two = gzip(b"first\n");
        two.extend(gzip(b"second\n"));
        let mut out = String::new();
        Decoder::new(Compression::Gzip, &two[..]).unwrap().read_to_string(&mut out).unwrap();
        assert_eq!(out, "first\nsecond\n");
    }

    #[test]
    fn sniffing_consumes_nothing() {
        let z = zstd::encode_all(&b"records\n"[..], 1).unwrap();
        let mut raw = std::io::BufReader::new(&z[..]);
        let c = sniff(&mut raw).unwrap().unwrap();
        let mut out = String::new();
        Decoder::new(c, raw).unwrap().read_to_string(&mut out).unwrap();
        assert_eq!(out, "records\n");
    }
}
