//! Packet sources: saved pcap/pcapng files (several merged by timestamp) via libpcap.

pub mod live;
mod readahead;
pub mod ring;
mod savefile;
pub mod spool;

pub use readahead::{FileReader, ReadAhead};

use std::path::{Path, PathBuf};
use std::sync::Arc;

use thiserror::Error;

/// Microseconds since the Unix epoch.
pub type Micros = i64;

/// Errors opening or reading a capture source.
#[derive(Debug, Error)]
pub enum CaptureError {
    /// The file could not be opened as a capture.
    #[error("{path}: {message}")]
    Open { path: String, message: String },
    /// libpcap rejected the BPF expression.
    #[error("bad capture filter '{filter}': {message}")]
    Filter { filter: String, message: String },
}

/// One packet as read from a source; `data` is borrowed from libpcap or the merge buffer.
#[derive(Debug, Clone, Copy)]
pub struct Packet<'a> {
    /// Capture timestamp.
    pub ts: Micros,
    /// Captured bytes (possibly cut by snaplen).
    pub data: &'a [u8],
    /// Length of the packet on the wire.
    pub orig_len: u32,
    /// libpcap link type (DLT) of the source.
    pub linktype: i32,
    /// Index of the source in the reader's list.
    pub source: usize,
    /// 1-based packet number within its source, as tshark counts.
    pub frame: u64,
}

/// What happened at the end of a source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceEnd {
    /// Clean end of file.
    Eof,
    /// libpcap reported an error (typically a truncated file); the readable prefix was used.
    Truncated(String),
}

/// A capture file opened through libpcap.
pub struct FileSource {
    name: Arc<str>,
    cap: pcap::Capture<pcap::Offline>,
    /// The BPF filter, run on each packet read.
    bpf: Option<pcap::BpfProgram>,
    /// The stream's buffer when `savefile` opened it: after `cap`, so it outlives the stream.
    _read_buffer: Option<savefile::ReadBuffer>,
    linktype: i32,
    frames: u64,
    end: Option<SourceEnd>,
    /// Bytes of the file, for progress display.
    pub size: u64,
}

impl FileSource {
    /// Opens `path`, optionally applying a BPF filter.
    pub fn open(path: &Path, filter: Option<&str>) -> Result<Self, CaptureError> {
        let display = path.display().to_string();
        let size = std::fs::metadata(path)
            .map(|m| m.len())
            .map_err(|e| CaptureError::Open { path: display.clone(), message: e.to_string() })?;
        let (cap, read_buffer) = match savefile::open(path) {
            Some((cap, buffer)) => (cap, Some(buffer)),
            None => (
                pcap::Capture::from_file(path)
                    .map_err(|e| CaptureError::Open { path: display.clone(), message: e.to_string() })?,
                None,
            ),
        };
        // Applied here rather than inside libpcap so that frames keep their numbers in the file,
        // as tshark counts them, whatever the filter skips.
        let bpf = match filter {
            Some(f) => Some(
                cap.compile(f, true)
                    .map_err(|e| CaptureError::Filter { filter: f.to_string(), message: e.to_string() })?,
            ),
            None => None,
        };
        let linktype = cap.get_datalink().0;
        Ok(Self {
            name: Arc::from(display.as_str()),
            bpf,
            cap,
            _read_buffer: read_buffer,
            linktype,
            frames: 0,
            end: None,
            size,
        })
    }

    /// The name the user gave for this source.
    pub fn name(&self) -> &Arc<str> {
        &self.name
    }

    /// libpcap link type (DLT) of the file.
    pub fn linktype(&self) -> i32 {
        self.linktype
    }

    /// Why the source ended, once it has.
    pub fn end(&self) -> Option<&SourceEnd> {
        self.end.as_ref()
    }

    /// Packets read so far.
    pub fn frames(&self) -> u64 {
        self.frames
    }

    /// Reads the next packet; `None` at the end (see [`FileSource::end`]).
    pub fn next_packet(&mut self, source: usize) -> Option<Packet<'_>> {
        if self.end.is_some() {
            return None;
        }
        let cap: *mut pcap::Capture<pcap::Offline> = &mut self.cap;
        loop {
            // SAFETY: `cap` points to `self.cap`, which `&mut self` borrows exclusively for the
            // whole call; each iteration's packet is dropped before the next read, unless it is
            // returned, which ends the loop. The borrow checker cannot see that a borrow returned
            // from one iteration does not overlap the next (NLL's "problem case 3").
            match unsafe { &mut *cap }.next_packet() {
                Ok(p) => {
                    self.frames += 1;
                    if self.bpf.as_ref().is_some_and(|f| !savefile::bpf_accepts(f, p.header, p.data)) {
                        continue;
                    }
                    // time_t/suseconds_t differ in width between platforms.
                    #[allow(clippy::unnecessary_cast)]
                    let ts = p.header.ts.tv_sec as i64 * 1_000_000 + p.header.ts.tv_usec as i64;
                    return Some(Packet {
                        ts,
                        data: p.data,
                        orig_len: p.header.len,
                        linktype: self.linktype,
                        source,
                        frame: self.frames,
                    });
                }
                Err(pcap::Error::NoMorePackets) => {
                    self.end = Some(SourceEnd::Eof);
                    return None;
                }
                Err(e) => {
                    self.end = Some(SourceEnd::Truncated(e.to_string()));
                    return None;
                }
            }
        }
    }
}

/// Reads several files as one trace, packets merged by timestamp (like mergecap).
pub struct MergedReader {
    sources: Vec<FileSource>,
    /// One buffered packet per source (only used with more than one source).
    heads: Vec<Option<Owned>>,
    current: Owned,
    primed: bool,
}

#[derive(Default)]
struct Owned {
    ts: Micros,
    data: Vec<u8>,
    orig_len: u32,
    linktype: i32,
    frame: u64,
}

impl Owned {
    fn fill(&mut self, p: &Packet<'_>) {
        self.ts = p.ts;
        self.data.clear();
        self.data.extend_from_slice(p.data);
        self.orig_len = p.orig_len;
        self.linktype = p.linktype;
        self.frame = p.frame;
    }
}

impl MergedReader {
    /// Opens every path (same filter for all).
    pub fn open(paths: &[PathBuf], filter: Option<&str>) -> Result<Self, CaptureError> {
        let sources = paths.iter().map(|p| FileSource::open(p, filter)).collect::<Result<Vec<_>, _>>()?;
        let n = sources.len();
        Ok(Self { sources, heads: (0..n).map(|_| None).collect(), current: Owned::default(), primed: false })
    }

    /// The opened sources (names, end states, frame counts).
    pub fn sources(&self) -> &[FileSource] {
        &self.sources
    }

    /// Total size of all files in bytes.
    pub fn total_size(&self) -> u64 {
        self.sources.iter().map(|s| s.size).sum()
    }

    /// Next packet in timestamp order across all sources.
    pub fn next_packet(&mut self) -> Option<Packet<'_>> {
        if self.sources.len() == 1 {
            // The common case borrows libpcap's buffer: no copy.
            return self.sources.get_mut(0)?.next_packet(0);
        }
        if !self.primed {
            self.primed = true;
            for i in 0..self.sources.len() {
                self.refill(i);
            }
        }
        // Earliest head wins; ties go to the lower source index so merging is stable.
        let mut best: Option<(usize, Micros)> = None;
        for (i, h) in self.heads.iter().enumerate() {
            if let Some(h) = h {
                if best.is_none_or(|(_, t)| h.ts < t) {
                    best = Some((i, h.ts));
                }
            }
        }
        let (i, _) = best?;
        let head = self.heads.get_mut(i)?.take()?;
        let old = std::mem::replace(&mut self.current, head);
        self.refill_with(i, old);
        let c = &self.current;
        Some(Packet { ts: c.ts, data: &c.data, orig_len: c.orig_len, linktype: c.linktype, source: i, frame: c.frame })
    }

    fn refill(&mut self, i: usize) {
        self.refill_with(i, Owned::default());
    }

    fn refill_with(&mut self, i: usize, mut buf: Owned) {
        let Some(src) = self.sources.get_mut(i) else {
            return;
        };
        let next = src.next_packet(i).map(|p| {
            buf.fill(&p);
            buf
        });
        if let Some(slot) = self.heads.get_mut(i) {
            *slot = next;
        }
    }
}
