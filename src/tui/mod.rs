//! The terminal UI: an SMTP-aware network monitor (ratatui + crossterm).
//!
//! Capture and parsing run on their own thread ([`feed`]) and never wait for the UI; a packer
//! thread makes their sessions ready rows, which the UI appends each frame to a
//! [`store::Store`] within a budget, and draws. State and actions are
//! pure ([`app`], [`keys`]); drawing is separate ([`render`], [`detail`]); this module is the
//! thin loop that ties them to the terminal and runs the effects (packet reads, exports).

pub mod app;
pub mod detail;
pub mod export;
pub mod feed;
pub mod keys;
pub mod logrow;
pub mod packed;
pub mod packets;
pub mod render;
pub mod store;
pub mod theme;

use std::io::{self, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ratatui::crossterm::event::{self, DisableMouseCapture, EnableMouseCapture};
use ratatui::crossterm::execute;
use ratatui::crossterm::terminal::{BeginSynchronizedUpdate, EndSynchronizedUpdate};

use crate::driver::Opened;
use crate::report::{Format, Options as ReportOptions};
use crate::summary::Summary;
use app::{App, Effect, ExportFormat, SourceInfo};
use export::ExportDir;
use packets::{Origin, Packets, Request};

/// How the UI is set up.
pub struct Options {
    /// What the header says about the input.
    pub source: SourceInfo,
    /// Where packets can be read again.
    pub origin: Origin,
    /// Export directory, opened before privileges were dropped (or why it could not be).
    pub export: Result<ExportDir, String>,
    /// Initial display filter (`-Y`).
    pub filter: Option<String>,
    /// Envelope addresses in full.
    pub show_addresses: bool,
    /// AUTH user names in full in log lines.
    pub show_credentials: bool,
    /// A SENSOR column even for one sensor (`--sensor` or `-R` given).
    pub sensor_column: bool,
    /// Messages to show at start (privileges dropped, …).
    pub notes: Vec<String>,
    /// Added to an export that fails for want of permission: who the process runs as and the fix
    /// (a live run that gave up root writes as that user).
    pub export_hint: Option<String>,
    /// Write one line per frame (time, work µs, updates) here: for benchmarks.
    pub frame_log: Option<PathBuf>,
    /// Set by SIGTERM/SIGINT/SIGHUP: leave cleanly. Set by the UI too once it has closed, so
    /// that work done on the capture thread only for the screen can stop.
    pub stop: Arc<AtomicBool>,
    /// Records (`-R`), merged with the capture by `last_seen` or shown alone.
    pub records: Option<crate::records::Records>,
    /// Rows kept before the oldest finished ones are dropped (`--max-rows`).
    pub max_rows: usize,
    /// Sensor mode's work on the capture thread (records to files, metrics), or `()`.
    pub hooks: Box<dyn feed::Hooks>,
    /// Sessions from elsewhere, read instead of a capture (`smtpscope logs`: log sessions).
    pub producer: Option<Box<dyn feed::Producer>>,
    /// A live run that follows server logs: how long a finished session waits for its log
    /// lines (its LOG column reads `wait` meanwhile).
    pub log_wait: Option<Duration>,
}

/// Results of background work.
enum Done {
    Packets(u64, Result<Packets, String>),
    Status(String, bool),
}

/// Runs the effects the app queues: a packet loader that always serves the newest request, and
/// one thread per export.
struct Runtime {
    origin: Origin,
    export: Option<Arc<ExportDir>>,
    export_error: Option<String>,
    export_hint: Option<String>,
    show_addresses: bool,
    loader: Sender<Request>,
    tx: Sender<Done>,
    rx: Receiver<Done>,
}

impl Runtime {
    fn new(origin: Origin, export: Result<ExportDir, String>, show_addresses: bool) -> io::Result<Self> {
        let (tx, rx) = mpsc::channel();
        let (loader, requests) = mpsc::channel::<Request>();
        let o = origin.clone();
        let out = tx.clone();
        std::thread::Builder::new().name("smtpscope-packets".into()).spawn(move || {
            while let Ok(mut req) = requests.recv() {
                // Only the newest request matters: the user has moved on from the others.
                while let Ok(r) = requests.try_recv() {
                    req = r;
                }
                let r = packets::load(&o, &req);
                if out.send(Done::Packets(req.id, r)).is_err() {
                    break;
                }
            }
        })?;
        let (export, export_error) = match export {
            Ok(d) => (Some(Arc::new(d)), None),
            Err(e) => (None, Some(e)),
        };
        Ok(Self { origin, export, export_error, export_hint: None, show_addresses, loader, tx, rx })
    }

    fn dir(&self, app: &mut App) -> Option<Arc<ExportDir>> {
        if self.export.is_none() {
            let why = self.export_error.clone().unwrap_or_default();
            app.say(format!("exports are off: {why}"), true);
        }
        self.export.clone()
    }

    fn execute(&self, app: &mut App) {
        for e in std::mem::take(&mut app.effects) {
            match e {
                Effect::LoadPackets(req) => {
                    let _ = self.loader.send(req);
                }
                Effect::Export(fmt) => {
                    let Some(dir) = self.dir(app) else { continue };
                    let sessions = app.store.finished_for_export();
                    let opts = ReportOptions { show_addresses: self.show_addresses, ..ReportOptions::default() };
                    let tx = self.tx.clone();
                    let (format, ext) = match fmt {
                        ExportFormat::Ndjson => (Format::Json, "ndjson"),
                        ExportFormat::Csv => (Format::Csv, "csv"),
                    };
                    app.say(format!("exporting {} sessions…", sessions.len()), false);
                    let hint = self.export_hint.clone();
                    std::thread::spawn(move || {
                        let r = dir.create_unique(&format!("smtpscope-sessions-{}", export::stamp()), ext).and_then(
                            |(name, file)| {
                                export::write_sessions(sessions.iter().filter_map(|s| s.session()), format, opts, file)
                                    .map(|n| (name, n))
                            },
                        );
                        let msg = match r {
                            Ok((name, n)) => {
                                (format!("wrote {n} sessions to {}", dir.path().join(name).display()), false)
                            }
                            Err(e) => (
                                format!("export failed in {}: {e}{}", dir.path().display(), denied_hint(&e, &hint)),
                                true,
                            ),
                        };
                        let _ = tx.send(Done::Status(msg.0, msg.1));
                    });
                }
                Effect::WritePcap(req) => {
                    let Some(dir) = self.dir(app) else { continue };
                    let origin = self.origin.clone();
                    let tx = self.tx.clone();
                    app.say("writing the session's packets…", false);
                    let hint = self.export_hint.clone();
                    std::thread::spawn(move || {
                        let stem = format!(
                            "smtpscope-{}-{}-{}",
                            req.client.to_string().replace([':', '[', ']'], "_"),
                            req.server.to_string().replace([':', '[', ']'], "_"),
                            req.first_frame
                        );
                        let r = packets::load(&origin, &req).and_then(|p| {
                            if p.rows.is_empty() {
                                return Err(p.note.unwrap_or_else(|| "no packet found".into()));
                            }
                            let (name, file) = dir
                                .create_unique(&stem, "pcap")
                                .map_err(|e| format!("{e} in {}{}", dir.path().display(), denied_hint(&e, &hint)))?;
                            packets::write_pcap(&p, file)?;
                            Ok((name, p.rows.len()))
                        });
                        let msg = match r {
                            Ok((name, n)) => {
                                (format!("wrote {n} packets to {}", dir.path().join(name).display()), false)
                            }
                            Err(e) => (format!("cannot write the pcap: {e}"), true),
                        };
                        let _ = tx.send(Done::Status(msg.0, msg.1));
                    });
                }
            }
        }
    }
}

/// Restores the terminal however the UI ends (error or panic included).
struct TerminalGuard;

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        let _ = execute!(io::stdout(), DisableMouseCapture);
        ratatui::restore();
    }
}

/// ` — <hint>` for a refused write, when there is a hint.
fn denied_hint(e: &io::Error, hint: &Option<String>) -> String {
    match hint {
        Some(h) if e.kind() == io::ErrorKind::PermissionDenied => format!(" — {h}"),
        _ => String::new(),
    }
}

/// The terminal's input, watched directly: crossterm's reader spins forever on a terminal that
/// hung up (a read error that is neither WouldBlock nor Interrupted is retried), so input is
/// only handed to crossterm once a poll of our own says it is there and the line is alive.
struct Tty {
    fd: i32,
    _own: Option<std::fs::File>,
}

impl Tty {
    fn open() -> io::Result<Self> {
        use std::os::fd::AsRawFd;
        // Where crossterm reads keys from: standard input if it is a terminal, else /dev/tty.
        // SAFETY: isatty on a descriptor number has no other effect.
        if unsafe { libc::isatty(0) } == 1 {
            return Ok(Self { fd: 0, _own: None });
        }
        // Without a controlling terminal the kernel says "No such device or address": say what it means.
        let f = std::fs::File::open("/dev/tty").map_err(|e| match e.raw_os_error() {
            Some(libc::ENXIO) => io::Error::new(
                e.kind(),
                "no terminal for the UI (standard input is not one and there is no controlling terminal): use --no-tui or -F",
            ),
            _ => e,
        })?;
        Ok(Self { fd: f.as_raw_fd(), _own: Some(f) })
    }

    /// Waits up to `wait` for input; false once the terminal has hung up.
    fn wait(&self, wait: Duration) -> bool {
        let mut p = libc::pollfd { fd: self.fd, events: libc::POLLIN, revents: 0 };
        let ms = i32::try_from(wait.as_millis()).unwrap_or(i32::MAX);
        // SAFETY: one valid pollfd for the duration of the call.
        let n = unsafe { libc::poll(&mut p, 1, ms) };
        !(n > 0 && p.revents & (libc::POLLHUP | libc::POLLERR | libc::POLLNVAL) != 0)
    }
}

/// CPU time of this thread, in µs: separates the UI's own work from time the scheduler gave
/// to other threads (the frame log records both).
fn thread_cpu_micros() -> u64 {
    let mut t = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: a valid timespec to fill.
    if unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut t) } != 0 {
        return 0;
    }
    (t.tv_sec as u64) * 1_000_000 + (t.tv_nsec as u64) / 1000
}

/// Longest time a frame spends taking in updates before it draws (rows come ready, so this is
/// appending only; a message is at most 512 rows).
const INGEST_BUDGET: Duration = Duration::from_millis(8);

/// Runs the UI over an opened input until the user quits; returns the run's summary.
pub fn run(opened: Option<Opened>, opts: Options) -> io::Result<Option<Summary>> {
    let Options {
        source,
        origin,
        export,
        filter,
        show_addresses,
        show_credentials,
        sensor_column,
        notes,
        export_hint,
        frame_log,
        stop,
        records,
        max_rows,
        hooks,
        producer,
        log_wait,
    } = opts;
    let logs_input = source.logs;
    let mut app = App::new(source, theme::Theme::from_env(), show_addresses);
    app.store.set_max_rows(max_rows);
    app.store.set_sensor_column(sensor_column);
    app.show_credentials = show_credentials;
    app.log_wait = log_wait;
    app.store.set_log_column(log_wait.is_some());
    if logs_input {
        // A log session has no transcript: its logged lines come first.
        app.apply(app::Action::Tab(app::Tab::Log));
    }
    if let Some(f) = filter.as_deref() {
        if let Err(e) = app.set_filter_text(f) {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, format!("bad display filter: {}", e.kind)));
        }
    }
    if let Some(n) = notes.last() {
        app.say(n.clone(), false);
    }
    let mut runtime = Runtime::new(origin, export, show_addresses)?;
    runtime.export_hint = export_hint;
    let mut log = match frame_log {
        Some(p) => Some(io::BufWriter::new(std::fs::File::create(p)?)),
        None => None,
    };
    let feed = match producer {
        Some(p) => feed::Feed::start_producer(p, hooks, app.store.filter_slot())?,
        None => feed::Feed::start_with(opened, records, hooks, app.store.filter_slot())?,
    };
    let tty = Tty::open()?;
    let mut terminal = ratatui::try_init()?;
    let _guard = TerminalGuard;
    execute!(io::stdout(), EnableMouseCapture)?;
    let started = Instant::now();
    loop {
        let t0 = Instant::now();
        let cpu0 = thread_cpu_micros();
        let mut updates = 0;
        while t0.elapsed() < INGEST_BUDGET {
            match feed.rx.try_recv() {
                Ok(u) => {
                    app.ingest(u);
                    updates += 1;
                }
                Err(_) => break,
            }
        }
        while let Ok(d) = runtime.rx.try_recv() {
            match d {
                Done::Packets(id, r) => app.packets_loaded(r, id),
                Done::Status(text, error) => app.say(text, error),
            }
        }
        app.tick(Instant::now());
        runtime.execute(&mut app);
        // One frame, one update on terminals that know synchronized output (others ignore the
        // mode): a slow link or a screen grab never shows half of one frame over the last.
        execute!(io::stdout(), BeginSynchronizedUpdate)?;
        terminal.draw(|f| render::draw(f, &mut app))?;
        execute!(io::stdout(), EndSynchronizedUpdate)?;
        if let Some(l) = &mut log {
            let _ = writeln!(
                l,
                "{} {} {updates} {} {}",
                started.elapsed().as_millis(),
                t0.elapsed().as_micros(),
                app.store.total(),
                thread_cpu_micros().saturating_sub(cpu0)
            );
        }
        if app.quit || stop.load(Ordering::Relaxed) {
            break;
        }
        let busy = !app.progress.done || updates > 0;
        // A filter being applied goes on at once, each frame within its budget.
        let wait = if app.store.filtering().is_some() {
            Duration::from_millis(4)
        } else if busy {
            Duration::from_millis(40)
        } else {
            Duration::from_millis(250)
        };
        if !tty.wait(wait) {
            // The terminal is gone (hang-up): nobody is left to quit by hand.
            break;
        }
        while event::poll(Duration::ZERO)? {
            let ev = event::read()?;
            if let Some(a) = keys::action(&ev, app.mode) {
                app.apply(a);
            }
            if app.quit {
                break;
            }
        }
        runtime.execute(&mut app);
    }
    drop(_guard);
    drop(terminal);
    // Nobody looks any more: the capture thread may stop what it did only for the screen.
    stop.store(true, Ordering::Relaxed);
    let summary = app.summary.take();
    let last = feed.finish();
    if let Some(l) = &mut log {
        let _ = l.flush();
    }
    Ok(summary.or(last))
}
