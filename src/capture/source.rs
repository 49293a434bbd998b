//! The packet-source trait every capture file goes through, and opening a file by what its
//! first bytes say it is: pcap or pcapng, the same compressed with gzip or zstd, standard input
//! (`-`), all streamed through one bounded buffer; Microsoft Network Monitor 2.x memory-mapped.

use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use thiserror::Error;

use super::input::Input;
use super::{netmon, pcapfile, Micros};
use crate::decompress::{Compression, Decoder};

/// One frame as a file holds it, before any filter.
#[derive(Debug, Clone, Copy)]
pub struct Frame<'a> {
    /// Capture timestamp.
    pub ts: Micros,
    /// Captured bytes.
    pub data: &'a [u8],
    /// Length on the wire.
    pub orig_len: u32,
    /// libpcap link type (DLT) of this frame.
    pub linktype: i32,
    /// The next two records' captured bytes, each when the input already holds all of it (empty
    /// otherwise, and from formats that do not look ahead): hints for prefetching the flows the
    /// next packets will touch, never packets in themselves.
    pub ahead: [&'a [u8]; 2],
}

/// Why a source ended before its clean end; what was read before stays valid.
#[derive(Debug, Error)]
pub enum SourceError {
    /// The input ends inside a record.
    #[error("{0}")]
    Truncated(String),
    /// A record the format does not allow.
    #[error("{0}")]
    Malformed(String),
    /// Reading (or decompressing) failed.
    #[error("{0}")]
    Io(#[from] io::Error),
}

/// A capture file's frames, in file order.
pub trait PacketSource: Send {
    /// The next frame; `Ok(None)` at the clean end of the input.
    fn next_frame(&mut self) -> Result<Option<Frame<'_>>, SourceError>;
    /// Link type of the first interface (what the BPF filter is compiled for first).
    fn linktype(&self) -> i32;
    /// Bytes of the file as stored (compressed or not) read so far, for progress.
    fn position(&self) -> u64;
}

/// An opened capture file: classic pcap, nearly every capture, is called directly so that its
/// reader inlines into the packet loop; every other format goes through the trait object.
pub enum Reader {
    /// A classic pcap file.
    Pcap(pcapfile::Legacy),
    /// Any other format.
    Other(Box<dyn PacketSource>),
}

impl Reader {
    /// The next frame; `Ok(None)` at the clean end of the input.
    #[inline(always)]
    pub fn next_frame(&mut self) -> Result<Option<Frame<'_>>, SourceError> {
        match self {
            Reader::Pcap(p) => p.next_frame(),
            Reader::Other(s) => s.next_frame(),
        }
    }

    /// Link type of the first interface.
    pub fn linktype(&self) -> i32 {
        match self {
            Reader::Pcap(p) => p.linktype(),
            Reader::Other(s) => s.linktype(),
        }
    }

    /// Bytes of the file as stored read so far.
    pub fn position(&self) -> u64 {
        match self {
            Reader::Pcap(p) => p.position(),
            Reader::Other(s) => s.position(),
        }
    }

    /// The reader as a trait object, whatever its format.
    pub fn boxed(self) -> Box<dyn PacketSource> {
        match self {
            Reader::Pcap(p) => Box::new(p),
            Reader::Other(s) => s,
        }
    }
}

/// What a file's first bytes say it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// pcap or pcapng.
    Pcap,
    /// gzip-compressed (the content is checked after decompression).
    Gzip,
    /// zstd-compressed.
    Zstd,
    /// Network Monitor 2.x.
    Netmon,
}

/// Tells the format from the first four bytes, or says what the file is not.
pub fn sniff(magic: &[u8]) -> Result<Format, String> {
    let m: [u8; 4] = match magic.first_chunk::<4>() {
        Some(m) => *m,
        None if magic.is_empty() => return Err("empty file".into()),
        None => return Err(format!("too short to be a capture ({} bytes)", magic.len())),
    };
    if pcapfile::is_pcap_magic(m) {
        return Ok(Format::Pcap);
    }
    match m {
        [0x1f, 0x8b, _, _] => Ok(Format::Gzip),
        [0x28, 0xb5, 0x2f, 0xfd] => Ok(Format::Zstd),
        netmon::MAGIC => Ok(Format::Netmon),
        netmon::MAGIC_1X => Err("Network Monitor 1.x capture: only the 2.x format is read".into()),
        _ => Err(unknown(magic)),
    }
}

/// The message for a file of no format smtpscope reads, naming the usual `.cap` formats of
/// other vendors so that a user knows what they have.
fn unknown(head: &[u8]) -> String {
    let other = [
        (b"XCP\0".as_slice(), "a NetXRay / Sniffer (Windows) capture"),
        (b"TRSNIFF data", "a Sniffer (DOS) capture"),
        (b"\xaa\xaa\xaa\xaa", "a 5Views capture"),
        (b"\x7fver", "a Cisco Secure IDS iplog"),
        (b"Session Transcript", "a Catapult DCT2000 log"),
        (b"\x00\x00\x1a\x00", "a Shomiti/Finisar Surveyor capture"),
        (b"RF5\0", "a Lucent/Ascend capture"),
        (b"\xd4\xc3\xb2\xa1\x02\x00", "a pcap file"),
    ];
    let what = other.iter().find(|(m, _)| head.starts_with(m)).map(|(_, w)| *w);
    let hint = "smtpscope reads pcap, pcapng, Network Monitor 2.x and their gzip/zstd-compressed forms; \
                `editcap -F pcapng IN OUT` converts the formats Wireshark reads";
    match what {
        Some(w) => format!("{w}, which smtpscope does not read ({hint})"),
        None => format!("unknown file format ({hint})"),
    }
}

/// Bytes read ahead of the format check.
const HEAD: usize = 32;

/// Opens a capture file, or standard input for `-`.
pub fn open(path: &Path) -> Result<Box<dyn PacketSource>, String> {
    open_reader(path).map(Reader::boxed)
}

/// [`open`], the reader kept as what it is.
pub fn open_reader(path: &Path) -> Result<Reader, String> {
    if path.as_os_str() == "-" {
        return open_stream(Box::new(io::stdin()), true);
    }
    let file = File::open(path).map_err(|e| e.to_string())?;
    let regular = file.metadata().map(|m| m.is_file() && m.len() > 0).unwrap_or(false);
    if regular && is_netmon(&file) {
        // Its frames are found through a table at the end of the file: random access.
        let input = Input::map(&file).map_err(|e| e.to_string())?;
        return open_input(input);
    }
    // Everything else, regular file or not, is read front to back through one bounded buffer.
    // Not mapped: the parser then touches each packet first in a buffer the kernel has just
    // filled and the cache still holds, where a mapped file costs a page fault per 64 KiB and a
    // memory stall per packet; read(2) took a fifth off the single-threaded time of the 2 GB lab
    // capture (BENCHMARKS.md).
    open_stream(Box::new(file), false)
}

/// Whether a regular file starts with Network Monitor's magic (read without moving its offset).
fn is_netmon(file: &File) -> bool {
    use std::os::unix::fs::FileExt;
    let mut head = [0u8; 4];
    file.read_exact_at(&mut head, 0).is_ok() && matches!(sniff(&head), Ok(Format::Netmon))
}

/// Opens a capture held in memory (fuzzing, tests): any format `open` reads.
pub fn open_bytes(bytes: Vec<u8>) -> Result<Box<dyn PacketSource>, String> {
    open_input(Input::owned(bytes)).map(Reader::boxed)
}

fn open_input(mut input: Input) -> Result<Reader, String> {
    input.fill(HEAD).map_err(|e| e.to_string())?;
    match sniff(input.window())? {
        Format::Pcap => pcapfile::open(input),
        Format::Netmon => netmon::open(input).map(Reader::Other),
        Format::Gzip | Format::Zstd => {
            // Decompress from the bytes in memory: the mapping (or the buffer) stays alive as
            // the decompressor's source.
            open_stream(Box::new(InputReader { input, position: None }), false)
        }
    }
}

/// Reads an [`Input`] as a byte stream (what is left of it after the format check), telling
/// `position` how far it has read.
struct InputReader {
    input: Input,
    position: Option<Arc<AtomicU64>>,
}

impl Read for InputReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        self.input.fill(1)?;
        let w = self.input.window();
        let n = w.len().min(out.len());
        out.get_mut(..n).unwrap_or_default().copy_from_slice(w.get(..n).unwrap_or_default());
        self.input.consume(n);
        if let Some(p) = &self.position {
            p.store(self.input.position(), Ordering::Relaxed);
        }
        Ok(n)
    }
}

/// Opens a stream: decompressed when its magic says so, then pcap or pcapng.
fn open_stream(reader: Box<dyn Read + Send>, stdin: bool) -> Result<Reader, String> {
    let mut input = Input::stream(reader);
    input.fill(HEAD).map_err(|e| e.to_string())?;
    let inner = match sniff(input.window())? {
        Format::Pcap => return pcapfile::open(input),
        Format::Netmon => {
            return Err(if stdin {
                "a Network Monitor capture cannot be read from standard input (its frame table is at the end): \
                 give the file itself"
                    .into()
            } else {
                "a Network Monitor capture must be a regular file (its frame table is at the end)".into()
            })
        }
        f => f,
    };
    // The file's own position, for progress: what the decompressor has taken of it.
    let position = Arc::new(AtomicU64::new(0));
    let reader: Box<dyn Read + Send> = Box::new(InputReader { input, position: Some(position.clone()) });
    let compression = if inner == Format::Gzip { Compression::Gzip } else { Compression::Zstd };
    let decoded: Box<dyn Read + Send> = Box::new(
        Decoder::new(compression, BufReader::with_capacity(1 << 16, reader))
            .map_err(|e| format!("{}: {e}", compression.name()))?,
    );
    let mut input = Input::stream(Box::new(Named { inner: decoded, what: inner })).with_file_position(position);
    input.fill(HEAD).map_err(|e| e.to_string())?;
    match sniff(input.window()) {
        Ok(Format::Pcap) => pcapfile::open(input),
        Ok(Format::Netmon) => {
            Err("a compressed Network Monitor capture: decompress it first (its frame table is at the end)".into())
        }
        Ok(_) => Err("compressed twice: decompress it once first".into()),
        Err(e) => Err(format!("the decompressed data is not a capture: {e}")),
    }
}

/// A decompressor whose errors say which format they are from.
struct Named {
    inner: Box<dyn Read + Send>,
    what: Format,
}

impl Read for Named {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        self.inner.read(out).map_err(|e| {
            let what = if self.what == Format::Gzip { "gzip" } else { "zstd" };
            let msg = if e.kind() == io::ErrorKind::UnexpectedEof {
                "the compressed file ends early".to_string()
            } else {
                e.to_string()
            };
            io::Error::new(e.kind(), format!("{what}: {msg}"))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A little-endian microsecond pcap of Ethernet frames with the given bytes.
    fn pcap(frames: &[&[u8]]) -> Vec<u8> {
        let mut b = vec![0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0, 1, 0, 0, 0];
        for (i, f) in frames.iter().enumerate() {
            let len = (f.len() as u32).to_le_bytes();
            b.extend_from_slice(&(i as u32).to_le_bytes());
            b.extend_from_slice(&[0; 4]);
            b.extend_from_slice(&len);
            b.extend_from_slice(&len);
            b.extend_from_slice(f);
        }
        b
    }

    #[test]
    fn a_classic_pcap_frame_shows_the_next_two_records_held_whole_and_nothing_past_the_end() {
        let bytes = pcap(&[b"first", b"second", b"third!"]);
        let mut src = open_bytes(bytes.clone()).expect("a pcap");
        let f = src.next_frame().expect("readable").expect("a frame");
        assert_eq!((f.data, f.ahead), (&b"first"[..], [&b"second"[..], &b"third!"[..]]));
        let f = src.next_frame().expect("readable").expect("a frame");
        let none: &[u8] = &[];
        assert_eq!(f.ahead, [&b"third!"[..], none]);
        let f = src.next_frame().expect("readable").expect("a frame");
        assert_eq!(f.ahead, [none; 2]);
        // A record cut short is no hint.
        let cut = bytes.get(..bytes.len() - 2).unwrap_or_default().to_vec();
        let mut src = open_bytes(cut).expect("a pcap");
        let f = src.next_frame().expect("readable").expect("a frame");
        assert_eq!(f.ahead, [&b"second"[..], none]);
    }
}
