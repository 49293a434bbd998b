//! The input loop shared by every front end: files (merged by time) or a live interface,
//! through the [`Engine`], with periodic progress ticks and a stop flag.
//!
//! Opening and running are two steps so that a live capture can open the device and every
//! output file, give up root, and only then read packets. The report, `check`, `pairs` and the
//! terminal UI (on its own thread) all run through [`Opened::run`].

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use thiserror::Error;

use crate::capture::live::{Drops, LiveOptions, LiveReader, LiveSource};
use crate::capture::ring::RingSpec;
use crate::capture::ring::SharedFileMap;
use crate::capture::spool::Spool;
use crate::capture::{CaptureError, FileReader, MergedReader, Micros, Packet, SourceEnd};
use crate::engine::{Config, Engine};
use crate::session::Session;
use crate::summary::{SourceSummary, Summary};

mod pipeline;

/// How often [`Sink::tick`] is called while packets flow (and when a live capture is idle).
pub const TICK: Duration = Duration::from_millis(50);

/// Where packets come from.
#[derive(Debug, Clone)]
pub enum Source {
    /// Capture files (any format `capture::source` reads; `-` is standard input), merged by timestamp.
    Files(Vec<PathBuf>),
    /// A live interface (the BPF filter is in `options.filter`), optionally saved to `write`.
    Live {
        /// Interface name.
        device: String,
        /// libpcap options.
        options: LiveOptions,
        /// `-w FILE`.
        write: Option<PathBuf>,
        /// `-C`, `-G`, `-W` for the `-w` file.
        ring: RingSpec,
    },
}

/// What to read and how.
#[derive(Debug, Clone)]
pub struct Options {
    /// The input.
    pub source: Source,
    /// BPF filter for files (live: in [`LiveOptions::filter`]).
    pub filter: Option<String>,
    /// Stop after this many packets.
    pub count: Option<u64>,
    /// Live: stop after this long.
    pub duration: Option<Duration>,
    /// Files: 2 runs the engine on a thread of its own while this one reads and hands records
    /// to the sink (with [`Config::track_open`]: reads on a thread of its own); 1 does all on one.
    pub threads: usize,
    /// Engine settings.
    pub engine: Config,
    /// Live: report a session with no packet for this long as it stands (`--idle-timeout`).
    pub idle_timeout: Option<Duration>,
}

/// Errors of the input loop.
#[derive(Debug, Error)]
pub enum DriverError {
    /// Opening or reading a source failed.
    #[error(transparent)]
    Capture(#[from] CaptureError),
    /// Neither `-r` nor `-i` was given.
    #[error("nothing to read: give -r FILE or -i INTERFACE (see --help)")]
    NoInput,
    /// `-r -` given more than once.
    #[error("standard input can be read only once: give -r - once")]
    StdinTwice,
    /// The reader thread could not be started.
    #[error("cannot start the capture reader thread: {0}")]
    Thread(#[from] std::io::Error),
}

/// Progress of a run, handed to [`Sink::tick`].
#[derive(Debug, Clone, Copy, Default)]
pub struct Progress {
    /// Packets read.
    pub packets: u64,
    /// Bytes of the input consumed (files: the position in the files as stored, compressed or not;
    /// live: captured bytes).
    pub bytes: u64,
    /// Total bytes of the input files (0 when live).
    pub total: u64,
    /// Time since the run started.
    pub elapsed: Duration,
    /// Live: kernel/libpcap counters.
    pub drops: Option<Drops>,
    /// The input is exhausted (or stopped) and every session has been handed out.
    pub done: bool,
    /// Flows open now.
    pub flows_open: usize,
    /// Flows evicted so far.
    pub evicted: u64,
    /// Reassembly gaps so far (counted as flows end).
    pub gaps: u64,
    /// Timestamp of the latest packet (µs since the epoch; 0 before the first).
    pub last_packet_ts: Micros,
}

/// Where a live view gets snapshots of open sessions: the engine, or whatever runs engines
/// (a threaded pipeline implements it over its workers).
pub trait OpenSessions {
    /// Up to `max` open sessions that changed since they were last handed out (see
    /// [`Engine::changed_open_sessions`]); returns how many changed ones still wait.
    fn changed_open_sessions(&mut self, max: usize, out: &mut dyn FnMut(Session)) -> usize;
}

impl OpenSessions for Engine {
    fn changed_open_sessions(&mut self, max: usize, out: &mut dyn FnMut(Session)) -> usize {
        Engine::changed_open_sessions(self, max, out)
    }
}

/// Receives what a run produces.
pub trait Sink {
    /// A session ended.
    fn session(&mut self, s: Session);
    /// Called about every [`TICK`] and once at the end; may take snapshots of open sessions.
    fn tick(&mut self, _open: &mut dyn OpenSessions, _progress: &Progress) {}
    /// A session ended in a run with `-w`: by default its record names the files holding its
    /// packets (frames counted from 1 in each, see [`locate_files`]); a sink that reads the
    /// packets back by capture frame (the terminal UI's spool) keeps the session as it is.
    fn session_in_files(&mut self, mut s: Session, files: &SharedFileMap) {
        locate_files(files, &mut s);
        self.session(s);
    }
}

/// Any closure over finished sessions is a sink.
impl<F: FnMut(Session)> Sink for F {
    fn session(&mut self, s: Session) {
        self(s)
    }
}

enum Input {
    /// Files, read ahead on a thread of their own (`threads` 2) or not.
    Files(FileReader),
    /// The device; its capture thread starts in [`Opened::run`], once privileges are dropped.
    Live { src: LiveSource, device: String },
}

/// An input opened and ready to run (privileges may be dropped in between).
pub struct Opened {
    input: Input,
    opts: Options,
    spool: Option<Spool>,
    names: Vec<Arc<str>>,
    linktype: i32,
}

impl Opened {
    /// Opens the files or the device (and the `-w` file).
    pub fn open(opts: Options) -> Result<Self, DriverError> {
        let (input, names, linktype) = match &opts.source {
            Source::Files(paths) if paths.is_empty() => return Err(DriverError::NoInput),
            Source::Files(paths) if paths.iter().filter(|p| p.as_os_str() == "-").count() > 1 => {
                return Err(DriverError::StdinTwice)
            }
            Source::Files(paths) => {
                let reader = MergedReader::open(paths, opts.filter.as_deref())?;
                let names = reader.sources().iter().map(|s| s.name().clone()).collect();
                let linktype = reader.sources().first().map_or(0, |s| s.linktype());
                // With two threads the engine gets a thread of its own (`pipeline`) and the files
                // are read beside the sink; a sink that snapshots open sessions keeps the engine
                // on its thread and has the files read ahead instead.
                let read_ahead = if opts.engine.track_open { opts.threads } else { 1 };
                (Input::Files(FileReader::new(reader, read_ahead)?), names, linktype)
            }
            Source::Live { device, options, write, ring } => {
                let src = LiveSource::open(device, options, write.as_deref().map(|w| (w, *ring)))?;
                let (names, linktype) = (vec![src.name().clone()], src.linktype());
                (Input::Live { src, device: device.clone() }, names, linktype)
            }
        };
        Ok(Self { input, opts, spool: None, names, linktype })
    }

    /// Live: also keep the last packets in `spool` (for the terminal UI's packet view).
    pub fn with_spool(mut self, spool: Spool) -> Self {
        self.spool = Some(spool);
        self
    }

    /// Whether this is a live capture.
    pub fn is_live(&self) -> bool {
        matches!(self.input, Input::Live { .. })
    }

    /// Link type of the (first) source.
    pub fn linktype(&self) -> i32 {
        self.linktype
    }

    /// Names of the inputs (file names as given, or the interface).
    pub fn names(&self) -> Vec<Arc<str>> {
        self.names.clone()
    }

    /// Reads everything (or until `stop`, `-c`, `--duration`), handing sessions to `sink`.
    pub fn run(self, sink: &mut dyn Sink, stop: &AtomicBool) -> Summary {
        let Opened { input, opts, spool, names, .. } = self;
        match input {
            Input::Files(reader) => run_files(reader, names, &opts, sink, stop),
            Input::Live { src, device } => run_live(src, &device, &opts, spool, sink, stop),
        }
    }
}

struct Ticker {
    started: Instant,
    last: Instant,
}

impl Ticker {
    fn new() -> Self {
        let now = Instant::now();
        Self { started: now, last: now }
    }

    /// Whether a tick is due (checked every 1024 packets to keep the clock off the hot path).
    fn due(&mut self, packets: u64) -> bool {
        if packets % 1024 != 0 {
            return false;
        }
        self.due_now()
    }

    fn due_now(&mut self) -> bool {
        let now = Instant::now();
        if now.duration_since(self.last) >= TICK {
            self.last = now;
            true
        } else {
            false
        }
    }
}

fn run_files(
    reader: FileReader,
    names: Vec<Arc<str>>,
    opts: &Options,
    sink: &mut dyn Sink,
    stop: &AtomicBool,
) -> Summary {
    // Two threads: the engine on one, reading, decoding and the sink on the other; unless the sink
    // snapshots open sessions (the terminal UI), which needs the engine on its own thread:
    // then the files are read ahead (`Opened::open` made the reader so).
    let reader = match reader {
        FileReader::Direct(_) if opts.threads > 1 => match pipeline::run(reader, names.clone(), opts, sink, stop) {
            Ok(summary) => return summary,
            Err(reader) => *reader,
        },
        reader => reader,
    };
    run_files_here(reader, names, opts, sink, stop)
}

/// Runs the engine on this thread (the files read on it too, or ahead on a second one).
fn run_files_here(
    mut reader: FileReader,
    names: Vec<Arc<str>>,
    opts: &Options,
    sink: &mut dyn Sink,
    stop: &AtomicBool,
) -> Summary {
    let mut engine = Engine::new(opts.engine.clone(), names.clone(), None);
    let total = reader.total_size();
    let mut ticker = Ticker::new();
    let mut last_ts = 0;
    loop {
        // Looking ahead costs a glance at the next headers: only a table past the caches pays.
        let p = if engine.wants_lookahead() {
            reader.next_packet_with(|linktype, ahead| engine.prefetch_ahead(linktype, ahead))
        } else {
            reader.next_packet()
        };
        let Some(p) = p else { break };
        last_ts = p.ts;
        engine.packet(&p, &mut |s| sink.session(s));
        if ticker.due(engine.stats.packets) {
            let progress = Progress {
                // The files' positions: compressed bytes for a compressed file.
                bytes: reader.position().min(total),
                total,
                elapsed: ticker.started.elapsed(),
                ..progress_of(&engine, last_ts, None, false)
            };
            sink.tick(&mut engine, &progress);
        }
        if stop.load(Ordering::Relaxed) || opts.count.is_some_and(|c| engine.stats.packets >= c) {
            break;
        }
    }
    engine.finish(&mut |s| sink.session(s));
    let progress = Progress {
        bytes: total,
        total,
        elapsed: ticker.started.elapsed(),
        ..progress_of(&engine, last_ts, None, true)
    };
    sink.tick(&mut engine, &progress);
    sources_of(reader, &names, &engine, opts)
}

/// The run's summary once the engine is done: the sources as far as the engine took packets (a
/// read-ahead thread may have read further).
fn sources_of(reader: FileReader, names: &[Arc<str>], engine: &Engine, opts: &Options) -> Summary {
    let sources = match reader.finish() {
        Some(r) => r
            .sources()
            .iter()
            .map(|s| SourceSummary {
                name: s.name().to_string(),
                packets: s.frames(),
                error: match s.end() {
                    Some(SourceEnd::Truncated(m)) => Some(m.clone()),
                    _ => None,
                },
            })
            .collect(),
        None => names
            .iter()
            .map(|n| SourceSummary {
                name: n.to_string(),
                packets: engine.stats.packets,
                error: Some("the reader thread failed".into()),
            })
            .collect(),
    };
    Summary {
        sources,
        stats: engine.stats.clone(),
        table: engine.table_stats(),
        dropped: None,
        sensor: opts.engine.sensor.as_deref().map(str::to_string),
        output_errors: 0,
        logs: None,
    }
}

/// The summary of a run whose engine thread died: every source carries `why`.
fn failed_summary(names: Vec<Arc<str>>, opts: &Options, why: &str) -> Summary {
    Summary {
        sources: names
            .iter()
            .map(|n| SourceSummary { name: n.to_string(), packets: 0, error: Some(why.into()) })
            .collect(),
        stats: Default::default(),
        table: Default::default(),
        dropped: None,
        sensor: opts.engine.sensor.as_deref().map(str::to_string),
        output_errors: 0,
        logs: None,
    }
}

/// The engine's side of a [`Progress`].
fn progress_of(engine: &Engine, last_packet_ts: Micros, drops: Option<Drops>, done: bool) -> Progress {
    let table = engine.table_stats();
    Progress {
        packets: engine.stats.packets,
        bytes: 0,
        total: 0,
        elapsed: Duration::ZERO,
        drops,
        done,
        flows_open: engine.open_flows(),
        evicted: table.evicted,
        gaps: engine.stats.gaps,
        last_packet_ts,
    }
}

/// Names the `-w` file holding the session's first packet, and each evidence frame's file with
/// the frame counted from 1 in it.
pub fn locate_files(map: &SharedFileMap, s: &mut Session) {
    let Ok(m) = map.lock() else { return };
    s.pcap_file = m.locate(s.first_frame).map(|(f, _)| f);
    for e in &mut s.evidence {
        if let Some((f, n)) = e.frame.and_then(|fr| m.locate(fr)) {
            e.file = Some(f);
            e.frame = Some(n);
        }
    }
}

struct Live<'a> {
    engine: Engine,
    spool: Option<Spool>,
    sink: &'a mut dyn Sink,
    bytes: u64,
    started: Instant,
    last_ts: Micros,
    /// `-w`: which file each frame went to.
    files: Option<SharedFileMap>,
}

/// Hands a finished session to the sink, naming its `-w` files first.
fn hand_over(sink: &mut dyn Sink, files: &Option<SharedFileMap>, s: Session) {
    match files {
        Some(m) => sink.session_in_files(s, m),
        None => sink.session(s),
    }
}

impl Live<'_> {
    fn feed(&mut self, p: &Packet<'_>) {
        self.bytes += p.data.len() as u64;
        self.last_ts = p.ts;
        if let Some(sp) = &mut self.spool {
            sp.write(p);
        }
        let (sink, files) = (&mut *self.sink, &self.files);
        self.engine.packet(p, &mut |s| hand_over(sink, files, s));
    }

    /// Reports the sessions idle for `idle` by the wall clock.
    fn expire(&mut self, idle: Duration) {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX));
        let idle = i64::try_from(idle.as_micros()).unwrap_or(i64::MAX);
        let (sink, files) = (&mut *self.sink, &self.files);
        self.engine.expire_idle(now, idle, &mut |s| hand_over(sink, files, s));
    }

    fn finish(&mut self) {
        let (sink, files) = (&mut *self.sink, &self.files);
        self.engine.finish(&mut |s| hand_over(sink, files, s));
    }

    fn tick(&mut self, drops: Option<Drops>, done: bool) {
        if let Some(sp) = &mut self.spool {
            sp.sync();
        }
        let progress = Progress {
            bytes: self.bytes,
            elapsed: self.started.elapsed(),
            ..progress_of(&self.engine, self.last_ts, drops, done)
        };
        self.sink.tick(&mut self.engine, &progress);
    }
}

fn run_live(
    src: LiveSource,
    dev: &str,
    opts: &Options,
    spool: Option<Spool>,
    sink: &mut dyn Sink,
    stop: &AtomicBool,
) -> Summary {
    let engine = Engine::new(opts.engine.clone(), Vec::new(), Some(Arc::from(dev)));
    let mut ticker = Ticker::new();
    let files = src.file_map();
    let mut live = Live { engine, spool, sink, bytes: 0, started: ticker.started, last_ts: 0, files };
    let sensor = opts.engine.sensor.as_deref().map(str::to_string);
    let mut last_expiry = Instant::now();
    // A capture thread drains the kernel ring while the engine works, so the ring never waits
    // for the engine or the output.
    let mut src = match LiveReader::new(src, opts.count) {
        Ok(r) => r,
        Err(e) => {
            live.tick(None, true);
            return Summary {
                sources: vec![SourceSummary {
                    name: dev.to_string(),
                    packets: 0,
                    error: Some(format!("cannot start the capture thread: {e}")),
                }],
                stats: live.engine.stats.clone(),
                table: live.engine.table_stats(),
                dropped: None,
                sensor,
                output_errors: 0,
                logs: None,
            };
        }
    };
    let mut error = None;
    let counted = |e: &Engine| opts.count.is_some_and(|c| e.stats.packets >= c);
    while !stop.load(Ordering::Relaxed)
        && !counted(&live.engine)
        && opts.duration.is_none_or(|d| ticker.started.elapsed() < d)
    {
        match src.next_packet(Duration::from_millis(100)) {
            Ok(Some(p)) => live.feed(&p),
            Ok(None) => {}
            Err(e) => {
                error = Some(e.to_string());
                break;
            }
        }
        if ticker.due_now() {
            // Idle flows are looked for once a second: a walk over the whole table.
            if let Some(idle) = opts.idle_timeout.filter(|_| last_expiry.elapsed() >= Duration::from_secs(1)) {
                last_expiry = Instant::now();
                live.expire(idle);
            }
            live.tick(src.drops_so_far(), false);
        }
    }
    // The capture thread reads what the kernel still holds, then ends; unless -c says we are done.
    src.stop();
    while error.is_none() && !counted(&live.engine) {
        match src.next_packet(Duration::ZERO) {
            Ok(Some(p)) => live.feed(&p),
            Ok(None) => break,
            Err(e) => error = Some(e.to_string()),
        }
    }
    live.finish();
    if let Err(e) = src.close_savefile() {
        error.get_or_insert(e.to_string());
    }
    let drops = src.drops();
    live.tick(drops, true);
    Summary {
        sources: vec![SourceSummary { name: dev.to_string(), packets: src.frames(), error }],
        stats: live.engine.stats.clone(),
        table: live.engine.table_stats(),
        dropped: drops.map(|d| d.dropped + d.if_dropped),
        sensor,
        output_errors: 0,
        logs: None,
    }
}
