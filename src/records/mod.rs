//! Records in (`-R`): NDJSON written by smtpscope, read back into [`Session`]s for the same front
//! ends a capture feeds. A source beside [`crate::capture`]: files, directories or globs, plain,
//! gzip or zstd (by magic), several merged by `last_seen` with one record held per input.

pub mod parse;

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use thiserror::Error;

use crate::capture::ring::SharedFileMap;
use crate::capture::{Input, Micros};
use crate::driver::{OpenSessions, Progress, Sink};
use crate::engine::Stats;
use crate::session::Session;
use parse::parse_line_boxed;
pub use parse::{parse_line, Interner, Skip};

/// Longest line read; longer ones are skipped as `too-long` without being held in memory.
pub const MAX_LINE: usize = 1 << 20;
/// Skipped lines reported by position, per file.
pub const MAX_REPORTED: usize = 10;
/// Ids of sessions read from records start here, far above any flow id a capture run reaches,
/// so records and capture sessions mixed in one run never share one.
const FIRST_ID: u64 = 1 << 62;

/// Errors opening record inputs.
#[derive(Debug, Error)]
pub enum RecordError {
    /// A file or directory could not be opened or read.
    #[error("{path}: {error}")]
    Open {
        /// As given.
        path: String,
        /// Why (in the message, not a chained source: the message would say it twice).
        error: io::Error,
    },
    /// A capture file given as records.
    #[error("{0}: a capture file, not smtpscope records: use -r")]
    IsCapture(String),
    /// A glob or directory that names no file.
    #[error("{0}: no such file (nor any file matching it)")]
    NoMatch(String),
    /// A malformed glob pattern.
    #[error("{0}: bad pattern: {1}")]
    Pattern(String, String),
}

/// The paths an `-R` argument names: a file, every file of a directory (sorted), or every
/// file matching a glob (quoted, so that the shell left it alone).
pub fn expand(spec: &str) -> Result<Vec<PathBuf>, RecordError> {
    let p = Path::new(spec);
    if p.is_dir() {
        let rd = std::fs::read_dir(p).map_err(|error| RecordError::Open { path: spec.into(), error })?;
        let mut v: Vec<PathBuf> = rd.filter_map(Result::ok).map(|e| e.path()).filter(|p| p.is_file()).collect();
        v.sort();
        if v.is_empty() {
            return Err(RecordError::NoMatch(spec.into()));
        }
        return Ok(v);
    }
    if p.exists() || !spec.contains(['*', '?', '[']) {
        return Ok(vec![p.to_path_buf()]);
    }
    let paths = glob::glob(spec).map_err(|e| RecordError::Pattern(spec.into(), e.to_string()))?;
    let mut v: Vec<PathBuf> = paths.filter_map(Result::ok).filter(|p| p.is_file()).collect();
    v.sort();
    if v.is_empty() {
        return Err(RecordError::NoMatch(spec.into()));
    }
    Ok(v)
}

/// Magic numbers of capture formats, to say "use -r" rather than count every line as junk.
fn is_capture(head: &[u8]) -> bool {
    const MAGICS: [[u8; 4]; 7] = [
        [0xd4, 0xc3, 0xb2, 0xa1],
        [0xa1, 0xb2, 0xc3, 0xd4],
        [0x4d, 0x3c, 0xb2, 0xa1],
        [0xa1, 0xb2, 0x3c, 0x4d],
        [0x0a, 0x0d, 0x0d, 0x0a],
        *b"GMBU",
        *b"RTSS",
    ];
    head.get(..4).is_some_and(|m| MAGICS.iter().any(|x| x == m))
}

/// The first bytes of a reader, without consuming them.
fn peek(r: &mut BufReader<Box<dyn Read + Send>>) -> io::Result<Vec<u8>> {
    let buf = r.fill_buf()?;
    Ok(buf.get(..4.min(buf.len())).unwrap_or_default().to_vec())
}

/// Wraps a stream, decompressing gzip or zstd by magic; `name` is for messages.
fn open_stream(name: &str, input: Box<dyn Read + Send>) -> Result<BufReader<Box<dyn Read + Send>>, RecordError> {
    let err = |error| RecordError::Open { path: name.to_string(), error };
    let mut raw: BufReader<Box<dyn Read + Send>> = BufReader::with_capacity(1 << 18, input);
    let head = peek(&mut raw).map_err(err)?;
    let inner: Box<dyn Read + Send> = match crate::decompress::Compression::of(&head) {
        Some(c) => Box::new(crate::decompress::Decoder::new(c, raw).map_err(err)?),
        None => {
            if is_capture(&head) {
                return Err(RecordError::IsCapture(name.to_string()));
            }
            return Ok(raw);
        }
    };
    let mut r: BufReader<Box<dyn Read + Send>> = BufReader::with_capacity(1 << 18, inner);
    // A compressed capture is a capture too; a stream that does not decompress is left to the
    // line reader, which counts it.
    if peek(&mut r).is_ok_and(|h| is_capture(&h)) {
        return Err(RecordError::IsCapture(name.to_string()));
    }
    Ok(r)
}

/// What reading one file gave.
#[derive(Debug, Clone, Default)]
pub struct FileStats {
    /// The file.
    pub path: String,
    /// Records read.
    pub records: u64,
    /// Lines skipped per reason, in [`Skip::ALL`] order.
    pub skipped: [u64; 4],
    /// The first [`MAX_REPORTED`] skipped lines: line number and reason.
    pub first: Vec<(u64, Skip)>,
    /// The stream broke off with a read error (a corrupt compressed file).
    pub error: Option<String>,
}

impl FileStats {
    /// Lines skipped, all reasons.
    pub fn total_skipped(&self) -> u64 {
        self.skipped.iter().sum()
    }

    fn skip(&mut self, line: u64, why: Skip) {
        if let Some(n) = Skip::ALL.iter().position(|s| *s == why).and_then(|i| self.skipped.get_mut(i)) {
            *n += 1;
        }
        if self.first.len() < MAX_REPORTED {
            self.first.push((line, why));
        }
    }

    /// One line for stderr: counts per reason, then `file:line (reason)` for the first few.
    pub fn message(&self) -> Option<String> {
        if self.total_skipped() == 0 && self.error.is_none() {
            return None;
        }
        let counts: Vec<String> = Skip::ALL
            .iter()
            .zip(self.skipped)
            .filter(|(_, n)| *n > 0)
            .map(|(s, n)| format!("{} {n}", s.name()))
            .collect();
        let at: Vec<String> = self.first.iter().map(|(l, s)| format!("{}:{l} ({})", self.path, s.name())).collect();
        let mut m = format!("{}: {} record(s) read, {} line(s) skipped", self.path, self.records, self.total_skipped());
        if !counts.is_empty() {
            m.push_str(&format!(" ({}): {}", counts.join(", "), at.join(", ")));
        }
        if let Some(e) = &self.error {
            m.push_str(&format!("; reading stopped: {e}"));
        }
        Some(m)
    }
}

/// One records file, read a line at a time.
pub struct RecordFile {
    /// A plain regular file, mapped: lines are parsed where they lie, with no copy out of the
    /// page cache, and pages behind the reader are given back (see [`Input`]).
    mapped: Option<Input>,
    r: BufReader<Box<dyn Read + Send>>,
    line: Vec<u8>,
    names: Interner,
    stats: FileStats,
    done: bool,
}

impl RecordFile {
    /// Opens one file.
    pub fn open(path: &Path) -> Result<Self, RecordError> {
        let shown = path.display().to_string();
        let f = File::open(path).map_err(|error| RecordError::Open { path: shown.clone(), error })?;
        // Pipes, empty and compressed files are streamed; mapping leaves the file's offset at 0.
        if let Ok(input) = Input::map(&f) {
            let head = input.window().get(..4).unwrap_or_default();
            if crate::decompress::Compression::of(head).is_none() {
                if is_capture(head) {
                    return Err(RecordError::IsCapture(shown));
                }
                let mut me = Self::from_reader(&shown, Box::new(io::empty()))?;
                me.mapped = Some(input);
                return Ok(me);
            }
        }
        Self::from_reader(&shown, Box::new(f))
    }

    /// Reads records from any stream (plain, gzip or zstd); `name` is shown in messages.
    pub fn from_reader(name: &str, input: Box<dyn Read + Send>) -> Result<Self, RecordError> {
        let r = open_stream(name, input)?;
        let shown = name.to_string();
        let names = Interner::for_path(&shown);
        Ok(Self {
            mapped: None,
            r,
            line: Vec::with_capacity(4096),
            names,
            stats: FileStats { path: shown, ..FileStats::default() },
            done: false,
        })
    }

    /// What was read so far.
    pub fn stats(&self) -> &FileStats {
        &self.stats
    }

    /// Reads the next line into `self.line`, at most [`MAX_LINE`] bytes kept. Returns None at
    /// the end, else whether the line ended with a line end and whether it was too long.
    fn read_line(&mut self) -> Option<(bool, bool)> {
        self.line.clear();
        let mut too_long = false;
        let mut any = false;
        loop {
            let buf = match self.r.fill_buf() {
                Ok(b) => b,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    self.stats.error = Some(e.to_string());
                    self.done = true;
                    return any.then_some((false, too_long));
                }
            };
            if buf.is_empty() {
                self.done = true;
                return any.then_some((false, too_long));
            }
            any = true;
            let (take, end) = match memchr::memchr(b'\n', buf) {
                Some(i) => (i, true),
                None => (buf.len(), false),
            };
            if !too_long {
                if self.line.len() + take > MAX_LINE {
                    too_long = true;
                    self.line.clear();
                    self.line.shrink_to(4096);
                } else {
                    self.line.extend_from_slice(buf.get(..take).unwrap_or_default());
                }
            }
            self.r.consume(take + usize::from(end));
            if end {
                return Some((true, too_long));
            }
        }
    }

    /// A whole line waiting in the read buffer, parsed where it lies (no copy); None when the
    /// buffer holds no complete line (then [`RecordFile::read_line`] gathers it).
    fn parse_buffered(&mut self) -> Option<Result<Box<Session>, Skip>> {
        if self.r.buffer().is_empty() {
            // A read error is left for read_line to record.
            let _ = self.r.fill_buf();
        }
        let buf = self.r.buffer();
        let end = memchr::memchr(b'\n', buf)?;
        let line = buf.get(..end)?;
        let text = line.strip_suffix(b"\r").unwrap_or(line);
        self.names.line += 1;
        let r = if text.iter().all(u8::is_ascii_whitespace) {
            None
        } else {
            Some(parse_line_boxed(text, true, &mut self.names))
        };
        self.r.consume(end + 1);
        Some(r.unwrap_or(Err(Skip::Blank)))
    }

    /// The next line of a mapped file, parsed where it lies; None at the end of the file.
    fn parse_mapped(&mut self) -> Option<Result<Box<Session>, Skip>> {
        let input = self.mapped.as_mut()?;
        let rest = input.window();
        if rest.is_empty() {
            self.done = true;
            return None;
        }
        // A line end is looked for within one line's limit only.
        let head = rest.get(..=MAX_LINE).unwrap_or(rest);
        self.names.line += 1;
        let (len, complete) = match memchr::memchr(b'\n', head) {
            Some(i) => (i, true),
            None if head.len() > MAX_LINE => {
                // Too long: passed over a step at a time, so that its pages are let go as the
                // reader moves (a 50 MB line stays out of memory).
                loop {
                    let w = input.window();
                    let step = w.get(..1 << 20).unwrap_or(w);
                    if step.is_empty() {
                        break;
                    }
                    match memchr::memchr(b'\n', step) {
                        Some(i) => {
                            input.consume(i + 1);
                            break;
                        }
                        None => {
                            let n = step.len();
                            input.consume(n);
                        }
                    }
                }
                return Some(Err(Skip::TooLong));
            }
            None => (rest.len(), false),
        };
        let r = match rest.get(..len) {
            _ if len > MAX_LINE => Err(Skip::TooLong),
            Some(line) => {
                let text = line.strip_suffix(b"\r").unwrap_or(line);
                if text.iter().all(u8::is_ascii_whitespace) {
                    Err(Skip::Blank)
                } else {
                    parse_line_boxed(text, complete, &mut self.names)
                }
            }
            None => Err(Skip::TooLong),
        };
        input.consume(len + usize::from(complete));
        Some(r)
    }

    /// The next record, skipping (and counting) lines that are not one.
    pub fn next_session(&mut self) -> Option<Session> {
        self.next_boxed().map(|s| *s)
    }

    /// [`RecordFile::next_session`], boxed (see [`parse_line_boxed`]).
    fn next_boxed(&mut self) -> Option<Box<Session>> {
        while self.mapped.is_some() && !self.done {
            match self.parse_mapped()? {
                Ok(s) => {
                    self.stats.records += 1;
                    return Some(s);
                }
                Err(Skip::Blank) => {}
                Err(why) => {
                    let line = self.names.line;
                    self.stats.skip(line, why);
                }
            }
        }
        while !self.done {
            match self.parse_buffered() {
                Some(Ok(s)) => {
                    self.stats.records += 1;
                    return Some(s);
                }
                Some(Err(Skip::Blank)) => continue,
                Some(Err(why)) => {
                    let line = self.names.line;
                    self.stats.skip(line, why);
                    continue;
                }
                None => {}
            }
            let (complete, too_long) = self.read_line()?;
            self.names.line += 1;
            let line = self.names.line;
            if too_long {
                self.stats.skip(line, Skip::TooLong);
                continue;
            }
            let text = self.line.strip_suffix(b"\r").unwrap_or(&self.line);
            if text.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            match parse_line_boxed(text, complete, &mut self.names) {
                Ok(s) => {
                    self.stats.records += 1;
                    return Some(s);
                }
                Err(why) => self.stats.skip(line, why),
            }
        }
        None
    }
}

/// Several record inputs merged by `last_seen`, each taken in its own order, one record held
/// per input.
pub struct Records {
    /// Replaces every record's own sensor (`--sensor`).
    sensor: Option<std::sync::Arc<str>>,
    files: Vec<RecordFile>,
    heads: Vec<Option<Box<Session>>>,
    heap: BinaryHeap<Reverse<(Micros, usize)>>,
    next_id: u64,
}

impl Records {
    /// Opens every file the `-R` arguments name (files, directories, globs).
    pub fn open<S: AsRef<str>>(specs: &[S]) -> Result<Self, RecordError> {
        let mut files = Vec::new();
        for spec in specs {
            for p in expand(spec.as_ref())? {
                files.push(RecordFile::open(&p)?);
            }
        }
        let mut me = Self { sensor: None, heads: Vec::new(), files, heap: BinaryHeap::new(), next_id: FIRST_ID };
        for i in 0..me.files.len() {
            me.heads.push(None);
            me.refill(i);
        }
        Ok(me)
    }

    fn refill(&mut self, i: usize) {
        let Some(f) = self.files.get_mut(i) else { return };
        let next = f.next_boxed();
        if let Some(s) = &next {
            self.heap.push(Reverse((s.last_seen, i)));
        }
        if let Some(h) = self.heads.get_mut(i) {
            *h = next;
        }
    }

    /// The next record in `last_seen` order, if its `last_seen` is at most `until`.
    pub fn next_until(&mut self, until: Micros) -> Option<Session> {
        let Reverse((t, i)) = *self.heap.peek()?;
        if t > until {
            return None;
        }
        self.heap.pop();
        let mut s = self.heads.get_mut(i)?.take()?;
        self.refill(i);
        s.id = self.next_id;
        self.next_id += 1;
        if let Some(name) = &self.sensor {
            s.sensor = Some(name.clone());
        }
        Some(*s)
    }

    /// Every record read from now on names this sensor instead of its own.
    pub fn set_sensor(&mut self, name: std::sync::Arc<str>) {
        self.sensor = Some(name);
    }

    /// The next record in `last_seen` order.
    pub fn next_session(&mut self) -> Option<Session> {
        self.next_until(Micros::MAX)
    }

    /// Per-file accounts, in the order the files were opened.
    pub fn stats(&self) -> Vec<&FileStats> {
        self.files.iter().map(RecordFile::stats).collect()
    }

    /// Records read from every input so far.
    pub fn records_read(&self) -> u64 {
        self.files.iter().map(|f| f.stats.records).sum()
    }
}

impl Iterator for Records {
    type Item = Session;
    fn next(&mut self) -> Option<Session> {
        self.next_session()
    }
}

/// A driver sink that hands on records between a capture's sessions, in `last_seen` order: each
/// session from the capture is preceded by the records that ended before it.
pub struct Merged<'a> {
    /// The records.
    pub records: &'a mut Records,
    /// Where both go.
    pub inner: &'a mut dyn Sink,
}

impl Sink for Merged<'_> {
    fn session(&mut self, s: Session) {
        while let Some(r) = self.records.next_until(s.last_seen) {
            self.inner.session(r);
        }
        self.inner.session(s);
    }

    fn tick(&mut self, open: &mut dyn OpenSessions, progress: &Progress) {
        self.inner.tick(open, progress);
    }

    fn session_in_files(&mut self, s: Session, files: &SharedFileMap) {
        // The inner sink decides where -w frame numbers apply (the UI keeps capture frames).
        while let Some(r) = self.records.next_until(s.last_seen) {
            self.inner.session(r);
        }
        self.inner.session_in_files(s, files);
    }
}

impl Records {
    /// Hands every remaining record to `sink` (after the capture, or alone), until `stop`.
    pub fn drain(&mut self, sink: &mut dyn Sink, stop: &AtomicBool) {
        while !stop.load(Ordering::Relaxed) {
            let Some(s) = self.next_session() else { break };
            sink.session(s);
        }
    }

    /// Sessions read from records per verdict, for the run summary.
    pub fn count_into(stats: &mut Stats, s: &Session) {
        if let Some(v) = s.verdict {
            *stats.verdicts.entry(v).or_default() += 1;
        }
    }
}
