//! Reading capture files on a thread of their own: libpcap's read loop (and the kernel copying
//! the file) runs on one core while the engine runs on another.
//!
//! The reader thread copies packets into batches and hands them over a bounded channel; emptied
//! batches come back for reuse, so the steady state allocates nothing. Packets arrive in exactly
//! the order [`MergedReader`] returns them, so the records are the same as a single-threaded run.
//! When the consumer stops early (`-c`, a closed pipe), the sources report what the consumer
//! took — packet counts and end states as a single-threaded reader would have left them — not
//! what the thread had read ahead.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::Arc;
use std::thread::JoinHandle;

use super::{MergedReader, Micros, Packet, SourceEnd};

/// Packets per batch (a batch is also closed when its bytes pass [`BATCH_BYTES`]).
const BATCH_PACKETS: usize = 512;
/// Captured bytes per batch.
const BATCH_BYTES: usize = 256 * 1024;
/// Full batches in flight: enough to ride out a slow record write.
const IN_FLIGHT: usize = 4;
/// Batches in all: in flight, being filled, being read (≈ 2 MiB, allocated once).
const POOL: usize = IN_FLIGHT + 2;

/// What every source looked like right after one packet was read (multi-source only).
type Snapshot = Box<[(u64, Option<SourceEnd>)]>;

struct Item {
    ts: Micros,
    orig_len: u32,
    linktype: i32,
    source: usize,
    frame: u64,
    start: usize,
    len: usize,
    /// Source states after this packet was read, when there are several sources.
    after: Option<Snapshot>,
}

#[derive(Default)]
struct Batch {
    data: Vec<u8>,
    items: Vec<Item>,
    /// Nothing follows: every source has ended.
    last: bool,
}

impl Batch {
    fn clear(&mut self) {
        self.data.clear();
        self.items.clear();
        self.last = false;
    }
}

/// A [`MergedReader`] running on its own thread.
pub struct ReadAhead {
    rx: Option<Receiver<Batch>>,
    recycle: Option<SyncSender<Batch>>,
    thread: Option<JoinHandle<MergedReader>>,
    current: Batch,
    pos: usize,
    /// Frames and ends as the consumer has seen them.
    seen: Vec<(u64, Option<SourceEnd>)>,
    exhausted: bool,
    total_size: u64,
    positions: Vec<Arc<AtomicU64>>,
}

fn snapshot(r: &MergedReader) -> Snapshot {
    r.sources().iter().map(|s| (s.frames(), s.end().cloned())).collect()
}

fn read_loop(mut reader: MergedReader, tx: SyncSender<Batch>, recycle: Receiver<Batch>) -> MergedReader {
    let many = reader.sources().len() > 1;
    loop {
        // A fixed pool of batches circulates: waiting for one to come back is the backpressure,
        // and no buffer is ever freed and faulted in again.
        let Ok(mut b) = recycle.recv() else { return reader };
        b.clear();
        while b.items.len() < BATCH_PACKETS && b.data.len() < BATCH_BYTES {
            let Some(p) = reader.next_packet() else {
                b.last = true;
                break;
            };
            let start = b.data.len();
            b.data.extend_from_slice(p.data);
            let item = Item {
                ts: p.ts,
                orig_len: p.orig_len,
                linktype: p.linktype,
                source: p.source,
                frame: p.frame,
                start,
                len: p.data.len(),
                after: None,
            };
            b.items.push(item);
            if many {
                let snap = snapshot(&reader);
                if let Some(i) = b.items.last_mut() {
                    i.after = Some(snap);
                }
            }
        }
        let last = b.last;
        // The consumer hung up (stopped early): stop reading.
        if tx.send(b).is_err() || last {
            return reader;
        }
    }
}

impl ReadAhead {
    /// Starts reading `reader` on a new thread.
    pub fn new(reader: MergedReader) -> std::io::Result<Self> {
        let n = reader.sources().len();
        let total_size = reader.total_size();
        let positions = reader.positions();
        let (tx, rx) = sync_channel(IN_FLIGHT);
        let (recycle, back) = sync_channel(POOL);
        for _ in 0..POOL {
            let b = Batch {
                data: Vec::with_capacity(BATCH_BYTES + 64 * 1024),
                items: Vec::with_capacity(BATCH_PACKETS),
                last: false,
            };
            let _ = recycle.try_send(b);
        }
        let thread =
            std::thread::Builder::new().name("smtpscope-read".into()).spawn(move || read_loop(reader, tx, back))?;
        Ok(Self {
            rx: Some(rx),
            recycle: Some(recycle),
            thread: Some(thread),
            current: Batch::default(),
            pos: 0,
            seen: vec![(0, None); n],
            exhausted: false,
            total_size,
            positions,
        })
    }

    /// Total size of all files in bytes.
    pub fn total_size(&self) -> u64 {
        self.total_size
    }

    /// Next packet in timestamp order across all sources.
    pub fn next_packet(&mut self) -> Option<Packet<'_>> {
        while self.pos >= self.current.items.len() {
            if self.current.last || self.exhausted {
                self.exhausted = true;
                return None;
            }
            let next = self.rx.as_ref().and_then(|rx| rx.recv().ok());
            let Some(next) = next else {
                // The reader thread is gone (it panicked): what it read is all there is.
                self.exhausted = true;
                return None;
            };
            let done = std::mem::replace(&mut self.current, next);
            if let (Some(r), true) = (&self.recycle, done.data.capacity() > 0) {
                let _ = r.try_send(done);
            }
            self.pos = 0;
        }
        let item = self.current.items.get_mut(self.pos)?;
        self.pos += 1;
        match item.after.take() {
            Some(snap) => self.seen = snap.into_vec(),
            None => {
                if let Some(s) = self.seen.get_mut(item.source) {
                    s.0 = item.frame;
                }
            }
        }
        let data = self.current.data.get(item.start..item.start + item.len)?;
        Some(Packet {
            ts: item.ts,
            data,
            orig_len: item.orig_len,
            linktype: item.linktype,
            source: item.source,
            frame: item.frame,
        })
    }

    /// Stops reading and gives the reader back, its sources as the consumer saw them: after the
    /// last packet, with their end states; after an early stop, as far as the consumer read.
    pub fn finish(mut self) -> Option<MergedReader> {
        // Hanging up makes the thread stop at its next send.
        self.rx = None;
        self.recycle = None;
        let mut reader = self.thread.take()?.join().ok()?;
        if !self.exhausted {
            for (src, (frames, end)) in reader.sources.iter_mut().zip(&self.seen) {
                src.frames = *frames;
                src.end = end.clone();
            }
        }
        Some(reader)
    }
}

fn sum(positions: &[Arc<AtomicU64>]) -> u64 {
    positions.iter().map(|p| p.load(Ordering::Relaxed)).sum()
}

/// Capture files read on the engine's thread or on a thread of their own.
pub enum FileReader {
    /// Read by the caller's thread.
    Direct(MergedReader),
    /// Read ahead by a second thread.
    Threaded(ReadAhead),
}

impl FileReader {
    /// `threads` 1 reads on the caller's thread; 2 (or more) reads on a second thread.
    pub fn new(reader: MergedReader, threads: usize) -> std::io::Result<Self> {
        Ok(if threads > 1 { Self::Threaded(ReadAhead::new(reader)?) } else { Self::Direct(reader) })
    }

    /// Total size of all files in bytes.
    pub fn total_size(&self) -> u64 {
        match self {
            Self::Direct(r) => r.total_size(),
            Self::Threaded(r) => r.total_size(),
        }
    }

    /// Bytes of the files (as stored) read so far, for progress; a thread reading ahead is a
    /// little further than the packets handed out.
    pub fn position(&self) -> u64 {
        match self {
            Self::Direct(r) => sum(&r.positions()),
            Self::Threaded(r) => sum(&r.positions),
        }
    }

    /// Next packet in timestamp order across all sources.
    pub fn next_packet(&mut self) -> Option<Packet<'_>> {
        self.next_packet_with(|_, _| {})
    }

    /// [`FileReader::next_packet`], showing `ahead` the next frame when it is read on this thread
    /// (see [`MergedReader::next_packet_with`]).
    #[inline]
    pub fn next_packet_with(&mut self, ahead: impl FnMut(i32, [&[u8]; 2])) -> Option<Packet<'_>> {
        match self {
            Self::Direct(r) => r.next_packet_with(ahead),
            Self::Threaded(r) => r.next_packet(),
        }
    }

    /// The reader, its sources as far as packets were taken (None if the reader thread died).
    pub fn finish(self) -> Option<MergedReader> {
        match self {
            Self::Direct(r) => Some(r),
            Self::Threaded(r) => r.finish(),
        }
    }
}
