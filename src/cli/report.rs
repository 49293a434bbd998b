//! The main command: session records as a table, NDJSON or CSV, or the terminal UI.

use std::cell::RefCell;
use std::io::{self, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::{bail, Result};
use clap::{Args, ValueEnum};

use smtpscope::capture::live::list_devices;
use smtpscope::driver;
use smtpscope::filter::Filter;
use smtpscope::privilege;
use smtpscope::report::{self, Format, Options};
use smtpscope::session::Session;

use super::input::{drive_with, driver_options, drop_privileges, open_summary, write_summary, InputArgs};
use super::sensor::{Sensor, SensorArgs, Tap};

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// Output format: table, json (NDJSON, one object per session), csv, or clickhouse (one flat
    /// JSON object per session for INSERT INTO smtpscope.sessions FORMAT JSONEachRow, see
    /// docs/clickhouse/schema.sql) (default: the terminal UI when stdout is a terminal, else table).
    #[arg(short = 'F', long, value_enum)]
    pub format: Option<FormatArg>,

    /// Open the terminal UI even if stdout is not a terminal or a format is given.
    #[arg(long, conflicts_with = "no_tui")]
    pub tui: bool,

    /// Never open the terminal UI: print the table.
    #[arg(long)]
    pub no_tui: bool,

    /// Terminal UI: where exports (e, w) are written; opened at start, before a live capture
    /// gives up root (default: the current directory).
    #[arg(long, value_name = "DIR")]
    pub export_dir: Option<PathBuf>,

    /// Terminal UI, live: MiB of recent packets kept in a temporary spool for the packet view.
    #[arg(long, value_name = "MIB", default_value_t = 128)]
    pub spool_size: u64,

    /// Terminal UI: sessions kept in the table; past it the oldest finished ones are dropped
    /// (still counted by verdict; the header says how many went).
    #[arg(long, value_name = "N", default_value_t = smtpscope::tui::store::MAX_ROWS, value_parser = clap::value_parser!(usize))]
    pub max_rows: usize,

    /// Print envelope addresses (MAIL FROM / RCPT TO) in full; by default only their domains.
    #[arg(long)]
    pub show_addresses: bool,

    /// Colour the table: auto (terminal and NO_COLOR unset), always, never.
    #[arg(long, value_name = "WHEN", default_value = "auto")]
    pub color: ColorArg,

    /// Display filter: only sessions matching FILTER are reported, e.g. 'verdict:plaintext
    /// server:10.1.0.0/16', '!verdict:starttls', 'tls:<1.2 or finding:cert-*', '"free text"' (quoted;
    /// an unquoted word that is no key:value is an error). With -w: their packets (see README).
    #[arg(short = 'Y', long = "display-filter", value_name = "FILTER")]
    pub display_filter: Option<String>,

    #[command(flatten)]
    pub sensor: SensorArgs,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum FormatArg {
    Table,
    Json,
    Csv,
    Clickhouse,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ColorArg {
    Auto,
    Always,
    Never,
}

/// The report writer plus the first write error (a closed pipe ends the run).
struct Sink<'a> {
    writer: Box<dyn report::RecordWriter + 'a>,
    error: Option<io::Error>,
}

impl Sink<'_> {
    fn emit(&mut self, s: Session) {
        if self.error.is_none() {
            if let Err(e) = self.writer.write(&s) {
                self.error = Some(e);
            }
        }
    }
}

pub fn run(input: &InputArgs, out: &ReportArgs, logs: &super::logs::CrossArgs) -> Result<ExitCode> {
    if input.list_interfaces {
        // Written, not printed: `smtpscope -D | head -1` closes the pipe, which is no error.
        let mut stdout = io::stdout().lock();
        for (n, d) in list_devices()?.iter().enumerate() {
            let desc = d.description.as_deref().map(|x| format!(" ({x})")).unwrap_or_default();
            writeln!(stdout, "{}.{}{desc} [{}]", n + 1, d.name, d.flags.join(", "))?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    if let Some(m) = out.sensor.misuse(input) {
        bail!("{m}");
    }
    // With --output, stdout carries no records and the terminal UI opens only when asked.
    let to_file = out.sensor.output.is_some();
    let tui = out.tui || (!out.no_tui && out.format.is_none() && !to_file && io::stdout().is_terminal());
    // -w with files: the reported sessions' packets (live, -w saves every packet as it comes).
    let kept_pcap = match (&input.write, &input.interface) {
        (Some(_), None) if tui => {
            bail!("-w with -r writes the reported sessions' packets: add --no-tui or -F (in the terminal UI, w writes the selected session's)")
        }
        (Some(path), None) => Some((path.clone(), create_kept_pcap(path, &input.read)?)),
        _ => None,
    };
    let mut cross = super::logs::CrossRun::new(logs, out.show_addresses, input.show_credentials)?;
    if let Some(c) = &cross {
        c.check_wait(input.interface.is_some())?;
    }
    if tui {
        return run_tui(input, out, cross);
    }
    let default = if to_file { FormatArg::Json } else { FormatArg::Table };
    let format = match out.format.unwrap_or(default) {
        FormatArg::Table => Format::Table,
        FormatArg::Json => Format::Json,
        FormatArg::Csv => Format::Csv,
        FormatArg::Clickhouse => Format::ClickHouse,
    };
    let filter = display_filter(out.display_filter.as_deref())?;
    let mut opts = driver_options(input)?;
    out.sensor.apply(input, &mut opts);
    // Free text is matched against transcripts, which the engine records only when asked.
    opts.engine.transcript = filter.uses_text();
    let sensor = RefCell::new(Sensor::start(
        &out.sensor,
        input,
        format,
        Options { color: false, show_addresses: out.show_addresses, line_buffered: true, truncate: false },
    )?);
    let stdout = io::stdout();
    let color = match out.color {
        ColorArg::Always => true,
        ColorArg::Never => false,
        ColorArg::Auto => stdout.is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()),
    };
    let w = Box::new(io::BufWriter::with_capacity(64 * 1024, stdout.lock()));
    let mut sink = Sink {
        writer: report::writer(
            format,
            w,
            Options {
                color,
                show_addresses: out.show_addresses,
                line_buffered: input.interface.is_some(),
                truncate: stdout.is_terminal(),
            },
        ),
        error: None,
    };
    let stopped = AtomicBool::new(false);
    let mut keep = report::packets::Keep::default();
    // Live, the logs are followed from now on (before privileges go) and each record is held
    // for its log session; over files every log line is read at the first record.
    let live_cross = match cross.take() {
        Some(c) if input.interface.is_some() => Some(c.live()?),
        c => {
            cross = c;
            None
        }
    };
    let live_cross = RefCell::new(live_cross);
    // Linked as sessions come; its counts go into the run summary at the end.
    let cross = RefCell::new(cross);
    let mut live_error = None;
    let emit = RefCell::new(|s: Session| {
        let mut sensor = sensor.borrow_mut();
        // Metrics count every session, whatever -Y keeps.
        sensor.count(&s);
        if !filter.matches(&s) {
            return;
        }
        if kept_pcap.is_some() {
            keep.add(&s);
        }
        if to_file {
            sensor.write(&s);
            return;
        }
        sink.emit(s);
        if sink.error.is_some() {
            stopped.store(true, Ordering::Relaxed);
        }
    });
    drive_with(
        input,
        opts,
        &mut |mut s| {
            if let Some(c) = cross.borrow_mut().as_mut() {
                c.link(&mut s);
            }
            match live_cross.borrow_mut().as_mut() {
                Some(l) => l.session(s, &mut |s, _| (emit.borrow_mut())(s)),
                None => (emit.borrow_mut())(s),
            }
        },
        &mut |p| {
            if let Some(l) = live_cross.borrow_mut().as_mut() {
                l.tick(&mut |s, _| (emit.borrow_mut())(s));
            }
            sensor.borrow_mut().tick(p);
        },
        &mut |summary| {
            // Records still waiting for their logs go out before the summary.
            if let Some(l) = live_cross.borrow_mut().take() {
                match l.finish(&mut |s, _| (emit.borrow_mut())(s), input.quiet) {
                    Ok(logs) => summary.logs = Some(logs.summary),
                    Err(e) => live_error = Some(e),
                }
            }
            sensor.borrow().finish(summary);
            if let Some(c) = cross.borrow_mut().as_mut() {
                summary.logs = Some(c.summary_json());
            }
        },
        &stopped,
    )?;
    if let Some(e) = live_error {
        return Err(e);
    }
    if let Some(e) = sink.error.take() {
        return Err(e.into());
    }
    if !to_file {
        sink.writer.finish()?;
    }
    if let Some((path, file)) = kept_pcap {
        let frames = keep.write(&input.read, file)?;
        if !input.quiet {
            say!("smtpscope: wrote {frames} packets of {} session(s) to {}", keep.sessions(), path.display());
        }
    }
    if let Some(c) = cross.into_inner() {
        c.finish(input.quiet)?;
    }
    if sensor.borrow().output_errors > 0 {
        return Ok(ExitCode::from(2));
    }
    Ok(ExitCode::SUCCESS)
}

/// Creates the `-w` file of a run over files, refusing to write over one of the inputs (the
/// evidence itself); created now, so that a path that cannot be written fails before the run.
fn create_kept_pcap(path: &std::path::Path, inputs: &[PathBuf]) -> Result<std::fs::File> {
    use std::os::unix::fs::MetadataExt;
    // The packets are read again once the sessions are known: a pipe cannot be.
    if let Some(p) = inputs.iter().find(|p| p.as_os_str() == "-" || std::fs::metadata(p).is_ok_and(|m| !m.is_file())) {
        bail!(
            "-w {}: {} cannot be read a second time (not a regular file); save it to a file first",
            path.display(),
            p.display()
        );
    }
    if let Ok(out) = std::fs::metadata(path) {
        let same = |p: &PathBuf| std::fs::metadata(p).is_ok_and(|m| (m.dev(), m.ino()) == (out.dev(), out.ino()));
        if let Some(p) = inputs.iter().find(|p| same(p)) {
            bail!("-w {}: that is the input {}; write the packets to another file", path.display(), p.display());
        }
    }
    std::fs::File::create(path).map_err(|e| anyhow::anyhow!("-w {}: {e}", path.display()))
}

/// The log cross-check on the UI's capture thread, before the sensor's hooks see a session;
/// handed back once the UI is closed, for its summary line and `--unmatched-logs`.
struct Linking {
    cross: Arc<std::sync::Mutex<Option<super::logs::CrossRun>>>,
    inner: Box<dyn smtpscope::tui::feed::Hooks>,
}

impl smtpscope::tui::feed::Hooks for Linking {
    fn annotate(&mut self, s: &mut Session) {
        if let Some(c) = self.cross.lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
            c.link(s);
        }
        self.inner.annotate(s);
    }

    fn session(&mut self, s: &Session) {
        self.inner.session(s);
    }

    fn tick(&mut self, p: &driver::Progress) {
        self.inner.tick(p);
    }

    fn done(&mut self, summary: &mut smtpscope::summary::Summary) {
        self.inner.done(summary);
    }
}

/// The live log cross-check on the UI's capture thread. A live UI shows what the wire saw as
/// soon as a session ends: each finished session becomes its row at once (its LOG column reads
/// `wait`) and is held up to `--log-wait` for its log lines; once linked, or when its wait is
/// over, its row is revised (agree, differ, none) and the sensor's hooks get the record with
/// `logs` filled, exactly as records leave without the UI. Holding the row back instead would
/// leave a finished session missing (or shown open, with a provisional verdict) for seconds
/// though the wire had decided it.
struct LiveLinking {
    /// Taken at the end.
    cross: Option<super::logs::LiveCross>,
    /// Records as the sensor takes them where they differ from the row (a `-w` ring names its
    /// files and counts frames in them), by session id, while the row's session waits.
    located: rustc_hash::FxHashMap<u64, Session>,
    /// Linked (or waited out) since the sensor last got them.
    released: Vec<Session>,
    /// Linked since the UI last got them.
    revised: Vec<Session>,
    inner: Box<dyn smtpscope::tui::feed::Hooks>,
    /// Set once the UI has closed.
    ui_closed: Arc<AtomicBool>,
    /// Records go to files or metrics: once the input ends they still wait for their logs (as
    /// without the UI), even after the UI has closed.
    records_elsewhere: bool,
    /// Once the input has ended: the longest the waiting goes on.
    linger_until: Option<std::time::Instant>,
    /// What the cross-check says at the end, said after the UI.
    report: Arc<std::sync::Mutex<Option<super::logs::LiveReport>>>,
}

impl LiveLinking {
    /// Lets go what is due in the cross-check (linked, or waited out), then passes it on.
    fn release_due(&mut self) {
        if let Some(c) = self.cross.as_mut() {
            let released = &mut self.released;
            c.tick(&mut |x, _| released.push(x));
        }
        self.pass_on();
    }

    /// Hands the released records to the sensor and their sessions to the UI.
    fn pass_on(&mut self) {
        for linked in std::mem::take(&mut self.released) {
            let record = match self.located.remove(&linked.id) {
                Some(mut r) => {
                    // Linking adds the links and the log-disagrees finding: the same on the record.
                    r.logs = linked.logs.clone();
                    r.findings = linked.findings.clone();
                    r
                }
                None => linked.clone(),
            };
            self.inner.session(&record);
            self.revised.push(linked);
        }
    }
}

impl smtpscope::tui::feed::Hooks for LiveLinking {
    fn annotate(&mut self, s: &mut Session) {
        self.inner.annotate(s);
        if let Some(c) = self.cross.as_mut() {
            let released = &mut self.released;
            c.session(s.clone(), &mut |x, _| released.push(x));
        }
    }

    fn session(&mut self, s: &Session) {
        if self.cross.is_none() {
            self.inner.session(s);
            return;
        }
        // Only a `-w` ring's record differs from the row (it names the ring file).
        if s.pcap_file.is_some() {
            self.located.insert(s.id, s.clone());
        }
        self.pass_on();
    }

    fn tick(&mut self, p: &driver::Progress) {
        self.release_due();
        self.inner.tick(p);
    }

    fn revised(&mut self, out: &mut dyn FnMut(Session)) {
        self.inner.revised(out);
        for s in std::mem::take(&mut self.revised) {
            out(s);
        }
    }

    fn waiting(&mut self) -> bool {
        let inner = self.inner.waiting();
        self.release_due();
        let Some(c) = self.cross.as_ref() else { return inner };
        let (waiting, wait) = (c.waiting(), c.wait());
        let now = std::time::Instant::now();
        let until = *self.linger_until.get_or_insert(now + wait);
        let someone = self.records_elsewhere || !self.ui_closed.load(Ordering::Relaxed);
        inner || (waiting > 0 && now < until && someone)
    }

    fn done(&mut self, summary: &mut smtpscope::summary::Summary) {
        if let Some(c) = self.cross.take() {
            let released = &mut self.released;
            let report = c.end(&mut |x, _| released.push(x));
            self.pass_on();
            // The live summary gets the logs object a run without the UI has.
            if !report.summary().is_null() {
                summary.logs = Some(report.summary().clone());
            }
            *self.report.lock().unwrap_or_else(|e| e.into_inner()) = Some(report);
        }
        self.inner.done(summary);
    }
}

/// The terminal UI over files or a live interface.
fn run_tui(input: &InputArgs, out: &ReportArgs, cross: Option<super::logs::CrossRun>) -> Result<ExitCode> {
    use smtpscope::capture::spool::Spool;
    use smtpscope::tui::{self, app::SourceInfo, export::ExportDir, packets::Origin};

    // A bad filter is a usage error before the screen changes.
    let filter = display_filter(out.display_filter.as_deref())?;
    let sensor = &out.sensor;
    if let Some(m) = sensor.misuse(input) {
        bail!("{m}");
    }
    let mut opts = driver_options(input)?;
    sensor.apply(input, &mut opts);
    opts.engine.transcript = true;
    opts.engine.track_open = true;
    let bpf = opts.filter.clone();
    let summary_file = open_summary(input)?;
    // Sensor mode as without the UI: the pid file, the metrics port and the first --output file
    // before the device opens and privileges go.
    let mut pidfile = None;
    let hooks: Box<dyn smtpscope::tui::feed::Hooks> = if sensor_wanted(sensor) {
        let format = match out.format.unwrap_or(FormatArg::Json) {
            FormatArg::Table => Format::Table,
            FormatArg::Json => Format::Json,
            FormatArg::Csv => Format::Csv,
            FormatArg::Clickhouse => Format::ClickHouse,
        };
        let opts = Options { color: false, show_addresses: out.show_addresses, line_buffered: true, truncate: false };
        let mut sensor = Sensor::open(sensor, input, format, opts)?;
        pidfile = sensor.take_pidfile();
        Box::new(Tap { sensor, filter })
    } else {
        Box::new(())
    };
    let stop = Arc::new(AtomicBool::new(false));
    let mut live_report = None;
    let mut log_wait = None;
    let mut cross_files = None;
    let hooks: Box<dyn smtpscope::tui::feed::Hooks> = match cross {
        // Live, the logs are followed from now on (the files there now opened before
        // privileges go).
        Some(c) if input.interface.is_some() => {
            let c = c.live()?;
            log_wait = Some(c.wait());
            let report = Arc::new(std::sync::Mutex::new(None));
            live_report = Some(Arc::clone(&report));
            Box::new(LiveLinking {
                cross: Some(c),
                located: rustc_hash::FxHashMap::default(),
                released: Vec::new(),
                revised: Vec::new(),
                inner: hooks,
                ui_closed: Arc::clone(&stop),
                records_elsewhere: sensor_wanted(sensor),
                linger_until: None,
                report,
            })
        }
        // Over files every log line is read at the first session.
        Some(c) => {
            let c = Arc::new(std::sync::Mutex::new(Some(c)));
            cross_files = Some(Arc::clone(&c));
            Box::new(Linking { cross: c, inner: hooks })
        }
        None => hooks,
    };
    let records = super::records::open(input)?;
    let opened = if super::records::only_records(input) { None } else { Some(driver::Opened::open(opts)?) };
    let live = opened.as_ref().is_some_and(driver::Opened::is_live);
    let dir = out.export_dir.clone().unwrap_or_else(|| PathBuf::from("."));
    let export = ExportDir::open(&dir).map_err(|e| format!("{}: {e}", dir.display()));
    // A directory asked for must be usable: said now, not at the first export.
    if let (Some(_), Err(e)) = (&out.export_dir, &export) {
        bail!("--export-dir {e}");
    }
    if let (Some(d), Ok(x)) = (&out.export_dir, &export) {
        if !x.writable() {
            bail!("--export-dir {}: not writable", d.display());
        }
    }
    // A live run as root writes its exports as the user it becomes.
    // SAFETY: a plain getter.
    let becomes = if live && unsafe { libc::geteuid() } == 0 {
        privilege::target(input.user.as_deref())?.map(|(user, uid, _)| (user, uid))
    } else {
        None
    };
    let mut notes = Vec::new();
    let (opened, origin) = match opened {
        Some(opened) if live => {
            // The spool's directory belongs to the user we become, so it can still rotate segments.
            // SAFETY: a plain getter.
            let owner = if unsafe { libc::geteuid() } == 0 {
                privilege::target(input.user.as_deref())?.map(|(_, uid, gid)| (uid, gid))
            } else {
                None
            };
            let spool = Spool::create(&std::env::temp_dir(), opened.linktype(), out.spool_size << 20, owner)?;
            let shared = spool.shared();
            (Some(opened.with_spool(spool)), Origin::Spool(shared))
        }
        opened => (opened, Origin::Files { paths: input.read.clone() }),
    };
    if live {
        if let Some(msg) = drop_privileges(input)? {
            notes.push(msg);
        }
    }
    let export_hint = becomes.as_ref().map(|(user, uid)| {
        format!(
            "this live run writes as {user} (uid {uid}) since it gave up root: use --export-dir DIR that {user} may write, or -Z USER"
        )
    });
    if let (Some((user, uid)), Ok(x)) = (&becomes, &export) {
        if !x.writable() {
            let fix = format!("use --export-dir DIR that {user} may write, or -Z USER");
            if out.export_dir.is_some() {
                bail!(
                    "--export-dir {}: not writable by {user} (uid {uid}), the user this live run becomes after giving up root: {fix}",
                    x.path().display()
                );
            }
            notes.push(format!("exports cannot be written to {} as {user} (uid {uid}): {fix}", x.path().display()));
        }
    }
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM, signal_hook::consts::SIGHUP] {
        signal_hook::flag::register(sig, Arc::clone(&stop))?;
    }
    let label = match &input.interface {
        Some(dev) => format!("interface {dev}"),
        None => {
            let base = |p: &std::path::Path| {
                p.file_name().map_or_else(|| p.display().to_string(), |n| n.to_string_lossy().into_owned())
            };
            let files: Vec<String> = input.read.iter().map(|p| base(p)).collect();
            let recs: Vec<String> = input.records.iter().map(|p| base(std::path::Path::new(p))).collect();
            match (files.is_empty(), recs.is_empty()) {
                (false, true) => format!("file {}", files.join(", ")),
                (true, false) => format!("records {}", recs.join(", ")),
                _ => format!("file {}; records {}", files.join(", "), recs.join(", ")),
            }
        }
    };
    let summary = tui::run(
        opened,
        tui::Options {
            source: SourceInfo { label, bpf, live, logs: false },
            origin,
            export,
            filter: out.display_filter.clone(),
            show_addresses: out.show_addresses,
            show_credentials: input.show_credentials,
            sensor_column: !input.records.is_empty() || sensor.sensor.is_some(),
            notes,
            export_hint,
            frame_log: std::env::var_os("SMTPSCOPE_FRAME_LOG").map(PathBuf::from),
            stop,
            records,
            max_rows: out.max_rows,
            hooks,
            producer: None,
            log_wait,
        },
    )?;
    // Removed once the UI is closed and the capture thread done (a run over files stays on
    // screen long after its last packet).
    drop(pidfile);
    if let Some(c) = cross_files.and_then(|c| c.lock().unwrap_or_else(|e| e.into_inner()).take()) {
        c.finish(input.quiet)?;
    }
    if let Some(r) = live_report.and_then(|r| r.lock().unwrap_or_else(|e| e.into_inner()).take()) {
        r.say(input.quiet)?;
    }
    let Some(summary) = summary else { return Ok(ExitCode::SUCCESS) };
    for s in &summary.sources {
        if let Some(m) = &s.error {
            say!("smtpscope: warning: {}: read stopped after {} packets ({m})", s.name, s.packets);
        }
    }
    write_summary(input, &summary, summary_file)?;
    if super::records::only_records(input) && summary.stats.verdicts.values().sum::<u64>() == 0 {
        bail!("no record could be read from the -R input(s)");
    }
    if summary.nothing_read() {
        bail!("no packet could be read from the input");
    }
    if summary.output_errors > 0 {
        return Ok(ExitCode::from(2));
    }
    Ok(ExitCode::SUCCESS)
}

/// Whether a sensor option that does work during the run is given (the sensor's name and the
/// idle timeout are engine options).
fn sensor_wanted(s: &SensorArgs) -> bool {
    s.output.is_some() || s.metrics.is_some() || s.pidfile.is_some()
}

/// Parses `-Y`; a bad filter is a usage error that points at the problem.
pub fn display_filter(text: Option<&str>) -> Result<Filter> {
    let text = text.unwrap_or_default();
    Filter::parse(text).map_err(|e| {
        let caret = format!("{}{}", " ".repeat(e.span.start), "^".repeat(e.span.len().max(1)));
        anyhow::anyhow!("bad display filter at column {}: {}\n  {text}\n  {caret}", e.span.start + 1, e.kind)
    })
}
