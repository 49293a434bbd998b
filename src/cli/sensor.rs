//! Sensor options shared by the main command and `check`: records to rotating files, the `-w`
//! ring, Prometheus metrics, a pid file, the idle timeout and the sensor's name. Everything that
//! needs privileges (the pid file, the metrics port, the first output file) is set up by
//! [`Sensor::start`], before a live capture gives up root.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::Args;

use smtpscope::capture::ring::RingSpec;
use smtpscope::driver::{self, Progress};
use smtpscope::filter::Filter;
use smtpscope::metrics::{self, Figures, Metrics, Server};
use smtpscope::output::{parse_rotate, RecordFile, Rotate};
use smtpscope::privilege;
use smtpscope::report::{Format, Options};
use smtpscope::session::Session;
use smtpscope::summary::Summary;
use smtpscope::tui::feed::Hooks;

use super::input::{parse_duration, InputArgs};

#[derive(Debug, Args, Default)]
pub struct SensorArgs {
    /// The sensor's name on every record (`sensor`), in the summary and the metrics (default:
    /// the host name when live, none for files).
    #[arg(long, value_name = "NAME")]
    pub sensor: Option<String>,

    /// Write the records (check: the judgements stay on stdout) to FILE in the -F format
    /// (default json) instead of stdout; FILE may hold strftime fields (UTC).
    #[arg(long, value_name = "FILE")]
    pub output: Option<PathBuf>,

    /// With --output: a new file past a size (K, M, G: powers of 1000) or at every multiple of a
    /// time (s, m, h, d, in UTC): 100M is 100 megabytes, 10m ten minutes. The closed file is
    /// renamed FILE.N unless strftime fields name it.
    #[arg(long, value_name = "SIZE|TIME", requires = "output", value_parser = rotate_arg)]
    pub rotate: Option<Rotate>,

    /// Live with -w: start a new capture file once the current one exceeds N × 1,000,000 bytes
    /// (FILE, FILE1, … as tcpdump names them).
    #[arg(short = 'C', value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub ring_megabytes: Option<u64>,

    /// Live with -w: start a new capture file every SECS seconds (strftime fields in FILE, UTC).
    #[arg(short = 'G', value_name = "SECS", value_parser = clap::value_parser!(u64).range(1..))]
    pub ring_seconds: Option<u64>,

    /// Live with -w: keep the newest N capture files and delete older ones (FILE0, FILE1, …
    /// zero-padded as tcpdump pads them; the capture never stops for it).
    #[arg(short = 'W', value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub ring_files: Option<u32>,

    /// Live: serve Prometheus metrics on [ADDR:]PORT at /metrics (ADDR default 127.0.0.1;
    /// [::1]:9464 for IPv6).
    #[arg(long, value_name = "[ADDR:]PORT")]
    pub metrics: Option<String>,

    /// Most certificate series in the metrics (the least recently seen go first).
    #[arg(long, value_name = "N", default_value_t = metrics::DEFAULT_MAX_CERTS)]
    pub metrics_max_certs: usize,

    /// Write the process id to FILE before privileges are dropped; removed at exit.
    #[arg(long, value_name = "FILE")]
    pub pidfile: Option<PathBuf>,

    /// Live: report a session with no packet for this long as it stands (wall clock).
    #[arg(long, value_name = "TIME", value_parser = parse_duration, default_value = "10m")]
    pub idle_timeout: Duration,
}

fn rotate_arg(s: &str) -> Result<Rotate, String> {
    parse_rotate(s).map_err(|e| e.to_string())
}

impl SensorArgs {
    /// A sensor option that needs something not given: one line, exit 2 (as clap's own).
    pub fn misuse(&self, input: &InputArgs) -> Option<String> {
        let ring = [
            (self.ring_megabytes.is_some(), "-C"),
            (self.ring_seconds.is_some(), "-G"),
            (self.ring_files.is_some(), "-W"),
        ];
        if let Some((_, opt)) = ring.iter().find(|(given, _)| *given) {
            if input.write.is_none() || input.interface.is_none() {
                return Some(format!("{opt} needs -i and -w FILE (a live capture's ring)"));
            }
        }
        if input.interface.is_none() && self.metrics.is_some() {
            return Some("--metrics applies to live capture (-i) only".into());
        }
        None
    }

    /// The `-w` ring.
    pub fn ring(&self) -> RingSpec {
        RingSpec { megabytes: self.ring_megabytes, seconds: self.ring_seconds, files: self.ring_files }
    }

    /// The sensor's name: `--sensor`, else the host name when live.
    pub fn name(&self, live: bool) -> Option<String> {
        self.sensor.clone().or_else(|| live.then(host_name).flatten())
    }

    /// The driver's options with the sensor's: name, ring, idle timeout.
    pub fn apply(&self, input: &InputArgs, opts: &mut driver::Options) {
        let live = input.interface.is_some();
        opts.engine.sensor = self.name(live).map(|n| Arc::from(n.as_str()));
        if let driver::Source::Live { ring, .. } = &mut opts.source {
            *ring = self.ring();
        }
        opts.idle_timeout = live.then_some(self.idle_timeout);
    }
}

/// The machine's host name.
fn host_name() -> Option<String> {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname writes at most `len` bytes into the buffer.
    if unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) } != 0 {
        return None;
    }
    let end = buf.iter().position(|b| *b == 0).unwrap_or(buf.len());
    let name = String::from_utf8_lossy(buf.get(..end)?).into_owned();
    (!name.is_empty()).then_some(name)
}

/// The directory a file (or a strftime pattern) goes in.
fn dir_of(p: &Path) -> PathBuf {
    match p.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Whether this process (not root) can create files in `dir`.
fn we_can_create_in(dir: &Path) -> bool {
    let Ok(c) = CString::new(dir.as_os_str().as_bytes()) else { return false };
    // SAFETY: a NUL-terminated path.
    unsafe { libc::access(c.as_ptr(), libc::W_OK | libc::X_OK) == 0 }
}

/// The sensor's state for a run: metrics, the output file, the pid file, the hang-up flag.
pub struct Sensor {
    /// The metrics, when `--metrics` is given.
    pub metrics: Option<Arc<Metrics>>,
    server: Option<Server>,
    output: Option<RecordFile>,
    pidfile: Option<PidFile>,
    hup: Arc<AtomicBool>,
    hup_caught: bool,
    live: bool,
    /// Failed `--output` writes.
    pub output_errors: u64,
    name: Option<String>,
}

/// Seconds since the epoch, now.
fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

impl Sensor {
    /// Sets up what needs privileges (see [`Sensor::open`]); live with `--output`, a hang-up then
    /// reopens the files instead of ending the run.
    pub fn start(args: &SensorArgs, input: &InputArgs, format: Format, opts: Options) -> Result<Self> {
        let mut sensor = Self::open(args, input, format, opts)?;
        if sensor.output.is_some() {
            sensor.catch_hangup()?;
        }
        Ok(sensor)
    }

    /// Sets up what needs privileges: checks the `-Z` user can create files where it must, writes
    /// the pid file, binds the metrics port, opens the first output file. A hang-up is left as
    /// it was (the terminal UI ends on it).
    pub fn open(args: &SensorArgs, input: &InputArgs, format: Format, opts: Options) -> Result<Self> {
        if let Some(m) = args.misuse(input) {
            bail!("{m}");
        }
        let live = input.interface.is_some();
        // SAFETY: a plain getter.
        let root = unsafe { libc::geteuid() } == 0;
        let target = if live && root { privilege::target(input.user.as_deref())? } else { None };
        let mut dirs: Vec<PathBuf> = Vec::new();
        if let Some(o) = &args.output {
            dirs.push(dir_of(o));
        }
        // A plain -w file is opened before the drop and never again: only a ring creates files
        // later, as the user smtpscope becomes.
        if let (Some(w), true, true) =
            (&input.write, live, args.ring_megabytes.is_some() || args.ring_seconds.is_some())
        {
            dirs.push(dir_of(w));
        }
        for d in dirs.iter().filter(|d| !d.to_string_lossy().contains('%')) {
            match &target {
                Some((user, uid, gid)) if !privilege::can_create_in(d, *uid, *gid) => {
                    bail!("user {user} (which smtpscope becomes, -Z) cannot create files in {}", d.display())
                }
                None if !root && !we_can_create_in(d) => bail!("cannot create files in {}", d.display()),
                _ => {}
            }
        }
        let name = args.name(live);
        let (metrics, server) = match &args.metrics {
            Some(text) => {
                let addr = metrics::parse_listen(text)?;
                let m = Arc::new(Metrics::new(name.as_deref(), &input.mail_ports, args.metrics_max_certs));
                let server = Server::start(addr, Arc::clone(&m))?;
                (Some(m), Some(server))
            }
            None => (None, None),
        };
        let output = match &args.output {
            Some(p) => {
                let pattern = p.to_str().context("the --output file name is not UTF-8")?;
                let f = RecordFile::open(pattern, args.rotate, format, opts, now_secs())
                    .with_context(|| format!("cannot write {}", p.display()))?;
                if let Some((_, uid, gid)) = &target {
                    chown(f.path(), *uid, *gid);
                }
                Some(f)
            }
            None => None,
        };
        let pidfile = match &args.pidfile {
            Some(p) => {
                std::fs::write(p, format!("{}\n", std::process::id()))
                    .with_context(|| format!("cannot write the pid file {}", p.display()))?;
                Some(PidFile(p.clone()))
            }
            None => None,
        };
        Ok(Self {
            metrics,
            server,
            output,
            pidfile,
            hup: Arc::new(AtomicBool::new(false)),
            hup_caught: false,
            output_errors: 0,
            name,
            live,
        })
    }

    /// Live: a hang-up (SIGHUP) no longer ends the run but asks for a reload, seen by
    /// [`Sensor::tick`]. Only runs with something to reload catch it (`--output`, a `--policy`):
    /// a plain capture in a terminal still ends when the terminal goes.
    pub fn catch_hangup(&mut self) -> Result<()> {
        if self.live && !self.hup_caught {
            signal_hook::flag::register(signal_hook::consts::SIGHUP, Arc::clone(&self.hup))?;
            self.hup_caught = true;
        }
        Ok(())
    }

    /// Counts a session in the metrics (every session, whatever a display filter keeps).
    pub fn count(&self, s: &Session) {
        if let Some(m) = &self.metrics {
            m.session(s);
        }
    }

    /// Writes a record to `--output`; a failure is reported once per file and counted.
    pub fn write(&mut self, s: &Session) {
        let Some(f) = &mut self.output else { return };
        if let Err(e) = f.write(s, now_secs()) {
            self.output_errors += 1;
            if let Some(m) = &self.metrics {
                m.output_error();
            }
            if e.first {
                say!(
                    "smtpscope: cannot write {}: {} (records are lost until it can; counted)",
                    e.path.display(),
                    e.error
                );
            }
        }
        if let Some(e) = f.take_rotate_error() {
            say!("smtpscope: cannot rename the closed {} aside: {e} (records go on into it)", f.path().display());
        }
    }

    /// Called on every tick: metrics figures, time rotation, and a hang-up's reopen. Returns
    /// whether a hang-up came (a check then re-reads its policy).
    pub fn tick(&mut self, p: &Progress) -> bool {
        if let Some(m) = &self.metrics {
            m.figures(&Figures {
                packets: p.packets,
                bytes: p.bytes,
                kernel_drops: p.drops.map_or(0, |d| d.dropped + d.if_dropped),
                flows_open: p.flows_open as u64,
                flows_evicted: p.evicted,
                gaps: p.gaps,
                last_packet_us: p.last_packet_ts,
            });
        }
        let hup = self.hup.swap(false, Ordering::Relaxed);
        if let Some(f) = &mut self.output {
            let r = if hup { f.reopen(now_secs()) } else { f.tick(now_secs()) };
            if let Err(e) = r {
                self.output_errors += 1;
                if let Some(m) = &self.metrics {
                    m.output_error();
                }
                say!("smtpscope: cannot open {}: {e}", f.path().display());
            }
        }
        hup
    }

    /// The pid file, for a caller that outlives the sensor (the terminal UI outlives its
    /// capture thread: a run over files stays on screen after the last packet).
    pub fn take_pidfile(&mut self) -> Option<PidFile> {
        self.pidfile.take()
    }

    /// Puts the sensor's figures into the run summary.
    pub fn finish(&self, summary: &mut Summary) {
        summary.sensor = self.name.clone();
        summary.output_errors = self.output_errors;
    }
}

fn chown(p: &Path, uid: u32, gid: u32) {
    if let Ok(c) = CString::new(p.as_os_str().as_bytes()) {
        // SAFETY: a NUL-terminated path; the result is not needed (the check at start said the
        // user can create files there, which is what rotation needs).
        unsafe {
            libc::chown(c.as_ptr(), uid, gid);
        }
    }
}

impl Drop for Sensor {
    fn drop(&mut self) {
        // The metrics stop before the pid file goes: a supervisor that sees it gone may start
        // another sensor on the same port.
        self.server.take();
        self.pidfile.take();
    }
}

/// `--pidfile`, removed when dropped.
pub struct PidFile(PathBuf);

impl Drop for PidFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// The sensor's work in the terminal UI, on its capture thread: every session counted in the
/// metrics, those the starting `-Y` keeps written to `--output` (as without the UI; a filter
/// typed in the UI changes the screen only), time rotation and metrics figures on each tick.
pub struct Tap {
    /// The sensor (dropped with the capture thread: the pid file goes, the metrics stop).
    pub sensor: Sensor,
    /// The `-Y` given at start.
    pub filter: Filter,
}

impl Hooks for Tap {
    fn session(&mut self, s: &Session) {
        self.sensor.count(s);
        if self.filter.matches(s) {
            self.sensor.write(s);
        }
    }

    fn tick(&mut self, p: &Progress) {
        // No hang-up is caught in the UI (it ends the run), so there is nothing to reload.
        self.sensor.tick(p);
    }

    fn done(&mut self, summary: &mut Summary) {
        self.sensor.finish(summary);
    }
}
