//! Packet sources: capture files (pcap, pcapng, Network Monitor 2.x, gzip/zstd-compressed,
//! standard input) through one [`PacketSource`] trait, several merged by timestamp; live
//! interfaces through libpcap.

mod bpf;
mod input;
pub mod live;
pub mod netmon;
pub mod pcapfile;
mod readahead;
pub mod ring;
pub mod source;
pub mod spool;

pub(crate) use input::Input;
pub use readahead::{FileReader, ReadAhead};
pub use source::{Frame, PacketSource, SourceError};

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
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

/// One packet as read from a source; `data` is borrowed from the source or the merge buffer.
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
    /// The file ended early or was malformed past some point; the readable prefix was used.
    Truncated(String),
}

/// A capture file, opened through [`source::open`] whatever its format, with the BPF filter.
pub struct FileSource {
    name: Arc<str>,
    src: source::Reader,
    /// The BPF filter, run on each frame read.
    bpf: Option<bpf::Filter>,
    linktype: i32,
    frames: u64,
    end: Option<SourceEnd>,
    /// Bytes of the file read so far (compressed bytes for a compressed file), for progress;
    /// shared so that the engine's thread can read it while another thread reads the file.
    position: Arc<AtomicU64>,
    /// Bytes of the file, for progress display (0 for standard input).
    pub size: u64,
}

impl FileSource {
    /// Opens `path` (`-` is standard input), optionally applying a BPF filter.
    pub fn open(path: &Path, filter: Option<&str>) -> Result<Self, CaptureError> {
        let display = path.display().to_string();
        let size = if path.as_os_str() == "-" {
            0
        } else {
            std::fs::metadata(path)
                .map(|m| m.len())
                .map_err(|e| CaptureError::Open { path: display.clone(), message: e.to_string() })?
        };
        let src = source::open_reader(path).map_err(|message| CaptureError::Open { path: display.clone(), message })?;
        let linktype = src.linktype();
        // Applied here rather than inside the parser so that frames keep their numbers in the
        // file, as tshark counts them, whatever the filter skips.
        let bpf = filter.map(|f| bpf::Filter::new(f, linktype)).transpose()?;
        Ok(Self {
            name: Arc::from(display.as_str()),
            src,
            bpf,
            linktype,
            frames: 0,
            end: None,
            position: Arc::new(AtomicU64::new(0)),
            size,
        })
    }

    /// The name the user gave for this source.
    pub fn name(&self) -> &Arc<str> {
        &self.name
    }

    /// Link type (DLT) of the file's first interface.
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

    /// Bytes of the file read so far (see [`MergedReader::positions`]).
    pub fn position(&self) -> &Arc<AtomicU64> {
        &self.position
    }

    /// Reads the next packet; `None` at the end (see [`FileSource::end`]).
    #[inline(always)]
    pub fn next_packet(&mut self, source: usize) -> Option<Packet<'_>> {
        self.next_packet_with(source, |_, _| {})
    }

    /// [`FileSource::next_packet`], showing `ahead` the link type and the next two frames' bytes
    /// as far as the input already holds them: hints, which the filter has not judged.
    #[inline(always)]
    pub fn next_packet_with(&mut self, source: usize, mut ahead: impl FnMut(i32, [&[u8]; 2])) -> Option<Packet<'_>> {
        if self.end.is_some() {
            return None;
        }
        if self.frames % 256 == 0 {
            self.position.store(self.src.position(), Ordering::Relaxed);
        }
        let src: *mut source::Reader = &mut self.src;
        loop {
            // SAFETY: `src` points to `self.src`, which `&mut self` borrows exclusively for the
            // whole call; each iteration's frame is dropped before the next read, unless it is
            // returned, which ends the loop. The borrow checker cannot see that a borrow returned
            // from one iteration does not overlap the next (NLL's "problem case 3").
            match unsafe { &mut *src }.next_frame() {
                Ok(Some(f)) => {
                    self.frames += 1;
                    if self.bpf.as_mut().is_some_and(|b| !b.accepts(f.linktype, f.ts, f.data, f.orig_len)) {
                        continue;
                    }
                    if !f.ahead[0].is_empty() {
                        ahead(f.linktype, f.ahead);
                    }
                    return Some(Packet {
                        ts: f.ts,
                        data: f.data,
                        orig_len: f.orig_len,
                        linktype: f.linktype,
                        source,
                        frame: self.frames,
                    });
                }
                Ok(None) => {
                    self.end = Some(SourceEnd::Eof);
                    self.position.store(self.size, Ordering::Relaxed);
                    return None;
                }
                Err(e) => {
                    self.end = Some(SourceEnd::Truncated(e.to_string()));
                    self.position.store(self.size, Ordering::Relaxed);
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

    /// Where each file's reading stands (bytes of the file as stored), readable from any thread.
    pub fn positions(&self) -> Vec<Arc<AtomicU64>> {
        self.sources.iter().map(|s| s.position.clone()).collect()
    }

    /// Next packet in timestamp order across all sources.
    #[inline]
    pub fn next_packet(&mut self) -> Option<Packet<'_>> {
        self.next_packet_with(|_, _| {})
    }

    /// [`MergedReader::next_packet`], showing `ahead` the next frame of a single source (see
    /// [`FileSource::next_packet_with`]); several sources give no hint.
    #[inline]
    pub fn next_packet_with(&mut self, ahead: impl FnMut(i32, [&[u8]; 2])) -> Option<Packet<'_>> {
        if self.sources.len() == 1 {
            // The common case borrows the source's bytes (its read buffer): no copy.
            return self.sources.get_mut(0)?.next_packet_with(0, ahead);
        }
        self.next_merged()
    }

    /// [`MergedReader::next_packet`] for several sources: each packet is copied out of its
    /// source, which reads on to its next one to compare timestamps.
    #[inline(never)]
    fn next_merged(&mut self) -> Option<Packet<'_>> {
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
