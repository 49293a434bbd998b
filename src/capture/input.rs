//! The bytes of a capture as the format parsers see them: a window over the input that can be
//! widened to hold the next record. A capture read front to back (a file, standard input, a
//! decompressor) goes through a bounded buffer, so memory stays the same whatever its length or
//! the compression's expansion; one that must be addressed by offset (a NetMon file, records read
//! in place) is memory-mapped and the window is the whole rest of it.

use std::fs::File;
use std::io::{self, Read};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use memmap2::{Advice, Mmap, UncheckedAdvice};

/// First buffer of a stream, and the size of each read into it.
const STREAM_CHUNK: usize = 1 << 20;

/// A mapped file's pages behind the reader are let go in steps of this many bytes: mapped pages
/// count in the process's resident memory, and a 2 GB file would otherwise end at 2 GB of RSS
/// (the page cache keeps them either way).
const RELEASE_STEP: usize = 2 << 20;

/// The largest record a stream may ask to hold at once. libpcap's largest snapshot length is
/// 256 KiB and its largest pcapng block 16 MiB; a record claiming more is refused before any of
/// it is buffered (a bomb cannot make the buffer grow past this).
pub const MAX_RECORD: usize = 16 << 20;

/// Where the bytes come from.
enum Backing {
    /// All of it in memory: a mapped file, or bytes handed over (fuzzing, tests).
    Whole(Whole),
    /// Read as it comes, through `buf[start..end]`.
    Stream { reader: Box<dyn Read + Send>, buf: Vec<u8>, start: usize, end: usize, eof: bool },
}

/// Bytes held in full.
pub enum Whole {
    /// A memory-mapped file.
    Mapped(Mmap),
    /// Bytes owned in memory.
    Owned(Vec<u8>),
}

impl Whole {
    fn bytes(&self) -> &[u8] {
        match self {
            Whole::Mapped(m) => m,
            Whole::Owned(v) => v,
        }
    }
}

/// A window over the input: [`Input::fill`] widens it, [`Input::window`] reads it, and
/// [`Input::consume`] moves its start past what was parsed.
pub struct Input {
    backing: Backing,
    /// Start of the window (whole inputs only).
    pos: usize,
    /// Mapped bytes before this offset were given back to the kernel.
    released: usize,
    /// Bytes consumed so far.
    consumed: u64,
    /// Where the file itself stands, when it is not this input (a decompressed stream).
    file_position: Option<Arc<AtomicU64>>,
}

impl Input {
    /// Maps `file` (a regular file); `Err` for what cannot be mapped (pipes, empty files).
    pub fn map(file: &File) -> io::Result<Self> {
        // SAFETY: the mapping is read-only and private to this process. A file that another
        // process truncates while it is read would fault, as with any mapped reader; capture
        // files are written once and then read.
        let map = unsafe { Mmap::map(file)? };
        // The kernel reads ahead more aggressively and drops pages behind sooner.
        let _ = map.advise(Advice::Sequential);
        Ok(Self::whole(Whole::Mapped(map)))
    }

    /// An input already in memory.
    pub fn owned(bytes: Vec<u8>) -> Self {
        Self::whole(Whole::Owned(bytes))
    }

    fn whole(w: Whole) -> Self {
        Self { backing: Backing::Whole(w), pos: 0, released: 0, consumed: 0, file_position: None }
    }

    /// A stream read through a bounded buffer.
    pub fn stream(reader: Box<dyn Read + Send>) -> Self {
        Self {
            backing: Backing::Stream { reader, buf: vec![0; STREAM_CHUNK], start: 0, end: 0, eof: false },
            pos: 0,
            released: 0,
            consumed: 0,
            file_position: None,
        }
    }

    /// A stream whose file position is kept elsewhere: `position` counts the bytes of the file
    /// (compressed) that made what this input holds.
    pub fn with_file_position(mut self, position: Arc<AtomicU64>) -> Self {
        self.file_position = Some(position);
        self
    }

    /// Whether the whole input is addressable (random access by offset, as NetMon needs).
    pub fn whole_bytes(&self) -> Option<&[u8]> {
        match &self.backing {
            Backing::Whole(w) => Some(w.bytes()),
            Backing::Stream { .. } => None,
        }
    }

    /// Widens the window to at least `n` bytes when the input has them; returns the window's
    /// length (less than `n` only at the end of the input). `n` above [`MAX_RECORD`] is an error
    /// for a stream.
    #[inline]
    pub fn fill(&mut self, n: usize) -> io::Result<usize> {
        match &mut self.backing {
            Backing::Whole(w) => Ok(w.bytes().len().saturating_sub(self.pos)),
            // Nearly every call: the record is in the buffer already.
            Backing::Stream { start, end, eof, .. } if *end - *start >= n || *eof => Ok(*end - *start),
            Backing::Stream { reader, buf, start, end, eof } => Self::refill(reader, buf, start, end, eof, n),
        }
    }

    /// [`Input::fill`] for a stream whose buffer lacks bytes: moves what is left to the front
    /// and reads; kept out of line so that the common case inlines into the parsers.
    #[cold]
    #[inline(never)]
    fn refill(
        reader: &mut Box<dyn Read + Send>,
        buf: &mut Vec<u8>,
        start: &mut usize,
        end: &mut usize,
        eof: &mut bool,
        n: usize,
    ) -> io::Result<usize> {
        if n > MAX_RECORD {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("a record of {n} bytes is larger than the {MAX_RECORD}-byte limit"),
            ));
        }
        if *start + n > buf.len() {
            // Move what is left to the front; grow only for a record larger than the buffer.
            buf.copy_within(*start..*end, 0);
            *end -= *start;
            *start = 0;
            if n > buf.len() {
                buf.resize(n.next_power_of_two().min(MAX_RECORD), 0);
            }
        }
        while *end - *start < n {
            let Some(space) = buf.get_mut(*end..) else { break };
            if space.is_empty() {
                break;
            }
            match reader.read(space) {
                Ok(0) => {
                    *eof = true;
                    break;
                }
                Ok(k) => *end += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(*end - *start)
    }

    /// The current window (what [`Input::fill`] made available).
    #[inline]
    pub fn window(&self) -> &[u8] {
        match &self.backing {
            Backing::Whole(w) => w.bytes().get(self.pos..).unwrap_or_default(),
            Backing::Stream { buf, start, end, .. } => buf.get(*start..*end).unwrap_or_default(),
        }
    }

    /// Moves the window's start `n` bytes on (at most to its end).
    #[inline]
    pub fn consume(&mut self, n: usize) {
        // The window's length is taken as `window` takes it, without building the slice.
        match &mut self.backing {
            Backing::Whole(w) => {
                let n = n.min(w.bytes().len().saturating_sub(self.pos));
                self.consumed += n as u64;
                self.pos += n;
                self.release_before(self.pos);
            }
            Backing::Stream { buf, start, end, .. } => {
                let n = n.min(buf.get(*start..*end).map_or(0, <[u8]>::len));
                self.consumed += n as u64;
                *start += n;
            }
        }
    }

    /// Gives the mapped pages before offset `at` back to the kernel, in steps of
    /// [`RELEASE_STEP`]: for readers that address a mapped file by offset (NetMon's frame table)
    /// rather than through [`Input::consume`]. Nothing happens for other inputs.
    #[inline]
    pub fn release_before(&mut self, at: usize) {
        if at.saturating_sub(self.released) < RELEASE_STEP {
            return;
        }
        if let Backing::Whole(Whole::Mapped(m)) = &self.backing {
            // Whole pages only (page size divides 64 KiB), and never past the mapping.
            let end = at.min(m.len()) & !0xffff;
            if end > self.released {
                // SAFETY: the mapping is private and read-only, so MADV_DONTNEED only drops
                // page-table entries: a later access (none is expected behind the reader)
                // faults the file's bytes in again, it never sees zeros.
                let _ =
                    unsafe { m.unchecked_advise_range(UncheckedAdvice::DontNeed, self.released, end - self.released) };
                self.released = end;
            }
        }
    }

    /// Bytes consumed so far (the offset in the uncompressed input).
    pub fn consumed(&self) -> u64 {
        self.consumed
    }

    /// Bytes of the file read so far: [`Input::consumed`], or the compressed file's position.
    pub fn position(&self) -> u64 {
        self.file_position.as_ref().map_or(self.consumed, |p| p.load(Ordering::Relaxed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reader that hands out at most `step` bytes per call, as a pipe may.
    struct Trickle {
        data: Vec<u8>,
        at: usize,
        step: usize,
    }

    impl Read for Trickle {
        fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
            let n = self.step.min(out.len()).min(self.data.len() - self.at);
            out[..n].copy_from_slice(&self.data[self.at..self.at + n]);
            self.at += n;
            Ok(n)
        }
    }

    #[test]
    fn a_stream_window_holds_a_record_across_short_reads_and_buffer_ends() {
        let data: Vec<u8> = (0..3 * STREAM_CHUNK + 17).map(|i| (i % 251) as u8).collect();
        let mut input = Input::stream(Box::new(Trickle { data: data.clone(), at: 0, step: 1000 }));
        let mut at = 0;
        // Records of awkward sizes, one larger than the first buffer.
        for len in [10usize, STREAM_CHUNK - 3, 7, STREAM_CHUNK + 5, 100] {
            assert_eq!(input.fill(len).unwrap().min(len), len);
            assert_eq!(&input.window()[..len], &data[at..at + len]);
            input.consume(len);
            at += len;
        }
        let rest = input.fill(usize::MAX >> 40).unwrap();
        assert_eq!(rest, data.len() - at, "the end of the input is a short window");
        assert_eq!(input.consumed(), at as u64);
    }

    #[test]
    fn a_stream_refuses_a_record_past_the_limit_without_buffering_it() {
        let mut input = Input::stream(Box::new(io::repeat(0)));
        assert!(input.fill(MAX_RECORD + 1).is_err());
        assert!(input.fill(16).unwrap() >= 16);
    }

    #[test]
    fn a_whole_input_is_one_window() {
        let mut input = Input::owned(vec![1, 2, 3, 4]);
        assert_eq!(input.fill(100).unwrap(), 4);
        input.consume(3);
        assert_eq!(input.window(), &[4]);
        input.consume(9);
        assert!(input.window().is_empty());
        assert_eq!(input.consumed(), 4);
    }
}
