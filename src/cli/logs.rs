//! `smtpscope logs FILES|globs|-`: sessions from mail-server logs alone, and the `--logs` options
//! of the main command (cross-check with a capture).

use std::io::{self, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};

use smtpscope::capture::Micros;
use smtpscope::filter::Filter;
use smtpscope::logs::follow::{self, Following};
use smtpscope::logs::hold::{Hold, Linked};
use smtpscope::logs::matching::CrossCheck;
use smtpscope::logs::{self, expand_paths, parse_endpoint, LogOptions, LogRecord};
use smtpscope::report::logs::{LogFileSummary, LogFormat, LogSummary, Writer};
use smtpscope::report::Options;

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LogFormatArg {
    Table,
    Json,
    Csv,
}

/// Options that say how log files are read (shared by `logs` and the main command's `--logs`).
#[derive(Debug, Args, Clone)]
pub struct LogReadArgs {
    /// Zone of classic syslog timestamps (`Dec  7 01:40:00`, which carry none), e.g. Europe/Berlin
    /// (default: this machine's zone).
    #[arg(long, value_name = "ZONE")]
    pub log_tz: Option<String>,

    /// Postfix: the listener a syslog name serves, NAME=ADDR[:PORT] (e.g.
    /// postfix/hub10-2525/smtpd=192.0.2.10:2525); repeatable. Postfix never logs its own address.
    #[arg(long, value_name = "NAME=ADDR[:PORT]")]
    pub log_server: Vec<String>,
}

impl LogReadArgs {
    /// Reader options (the year reference is set by the caller).
    pub fn options(&self, show_addresses: bool, show_credentials: bool) -> Result<LogOptions> {
        let tz = match &self.log_tz {
            Some(z) => jiff::tz::TimeZone::get(z).with_context(|| format!("--log-tz {z}: unknown time zone"))?,
            None => jiff::tz::TimeZone::system(),
        };
        let mut servers = Vec::new();
        for m in &self.log_server {
            let Some((name, addr)) = m.split_once('=') else { bail!("--log-server {m}: expected NAME=ADDR[:PORT]") };
            let Some(ep) = parse_endpoint(addr.as_bytes()) else {
                bail!("--log-server {m}: '{addr}' is not an address")
            };
            servers.push((name.to_string(), ep));
        }
        Ok(LogOptions { tz, reference: None, show_addresses, show_credentials, servers })
    }
}

/// `smtpscope logs`.
#[derive(Debug, Args)]
pub struct LogsArgs {
    /// Log files, directories, quoted globs, or - for standard input (Exchange SmtpReceive /
    /// SmtpSend protocol logs, Postfix syslog lines; gzip is read as is).
    #[arg(value_name = "FILE", required = true)]
    pub files: Vec<String>,

    /// Output format: table, json (NDJSON, one object per log session) or csv (default: the
    /// terminal UI when stdout is a terminal, else table).
    #[arg(short = 'F', long, value_enum)]
    pub format: Option<LogFormatArg>,

    /// Display filter, as for the main command; free text matches the session's logged lines,
    /// state: matches nothing. In the terminal UI, the initial filter.
    #[arg(short = 'Y', long = "display-filter", value_name = "FILTER")]
    pub display_filter: Option<String>,

    /// Open the terminal UI even if stdout is not a terminal or a format is given.
    #[arg(long, conflicts_with = "no_tui")]
    pub tui: bool,

    /// Never open the terminal UI: print the table.
    #[arg(long)]
    pub no_tui: bool,

    /// Print envelope addresses in full in the evidence (and the UI's logged lines); by default
    /// only their domains.
    #[arg(long)]
    pub show_addresses: bool,

    /// Print AUTH user names in the evidence (and the UI's logged lines); masked by default.
    #[arg(long)]
    pub show_credentials: bool,

    /// Write the run summary as JSON to FILE instead of text on stderr.
    #[arg(long, value_name = "FILE")]
    pub summary: Option<PathBuf>,

    /// No summary on stderr.
    #[arg(short = 'q', long)]
    pub quiet: bool,

    #[command(flatten)]
    pub read: LogReadArgs,
}

fn display_filter(text: Option<&str>) -> Result<Filter> {
    let text = text.unwrap_or_default();
    Filter::parse(text).map_err(|e| {
        let caret = format!("{}{}", " ".repeat(e.span.start), "^".repeat(e.span.len().max(1)));
        anyhow::anyhow!("bad display filter at column {}: {}\n  {text}\n  {caret}", e.span.start + 1, e.kind)
    })
}

/// Reads every input, calling `on` for each log session; per-file results in the summary.
pub fn read_all(paths: &[String], opts: &LogOptions, summary: &mut LogSummary, on: &mut dyn FnMut(LogRecord)) {
    for p in expand_paths(paths) {
        match p {
            Ok(path) => {
                let r = logs::read_path(&path, opts, &mut |r| {
                    *summary.verdicts.entry(r.verdict).or_default() += 1;
                    on(r)
                });
                summary.files.push(LogFileSummary::read(path, r));
            }
            Err(e) => summary.files.push(LogFileSummary::missing(e)),
        }
    }
}

/// Runs `smtpscope logs`: exit 0 when at least one log line was recognised, 2 otherwise.
pub fn run(a: &LogsArgs) -> Result<ExitCode> {
    let filter = display_filter(a.display_filter.as_deref())?;
    let opts = a.read.options(a.show_addresses, a.show_credentials)?;
    let summary_file = match &a.summary {
        Some(p) => Some(std::fs::File::create(p).with_context(|| format!("cannot write summary {}", p.display()))?),
        None => None,
    };
    // As the main command decides: the UI on a terminal unless a format or --no-tui says
    // otherwise, or when asked. With no input to read at all there is nothing to show: the
    // errors are said as without the UI.
    let tui = a.tui || (!a.no_tui && a.format.is_none() && io::stdout().is_terminal());
    if tui && expand_paths(&a.files).iter().any(Result::is_ok) {
        let summary = run_tui(a, filter, opts)?;
        return finish_summary(a, summary, summary_file);
    }
    let format = match a.format.unwrap_or(LogFormatArg::Table) {
        LogFormatArg::Table => LogFormat::Table,
        LogFormatArg::Json => LogFormat::Json,
        LogFormatArg::Csv => LogFormat::Csv,
    };
    let stdout = io::stdout();
    let term = stdout.is_terminal();
    let color = term && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let out = Box::new(io::BufWriter::with_capacity(64 * 1024, stdout.lock()));
    let mut w = Writer::new(
        out,
        format,
        Options { color, show_addresses: a.show_addresses, line_buffered: false, truncate: term },
    );
    let mut summary = LogSummary::default();
    let mut error: Option<io::Error> = None;
    let mut reported = 0u64;
    read_all(&a.files, &opts, &mut summary, &mut |r| {
        if error.is_some() || !filter.matches_log(&r) {
            return;
        }
        reported += 1;
        if let Err(e) = w.write(&r) {
            error = Some(e);
        }
    });
    summary.reported = reported;
    if let Some(e) = error {
        if e.kind() != io::ErrorKind::BrokenPipe {
            return Err(e.into());
        }
    } else {
        match w.finish() {
            Err(e) if e.kind() != io::ErrorKind::BrokenPipe => return Err(e.into()),
            _ => {}
        }
    }
    finish_summary(a, summary, summary_file)
}

/// Writes the summary of a `logs` run (JSON to `--summary FILE`, else text on stderr unless
/// `-q`) and gives its exit status: 0 when a log line was recognised, 2 otherwise.
fn finish_summary(a: &LogsArgs, summary: LogSummary, summary_file: Option<std::fs::File>) -> Result<ExitCode> {
    if let Some(mut f) = summary_file {
        writeln!(f, "{}", smtpscope::report::json::to_line(&summary.to_json()))?;
    } else if !a.quiet {
        let _ = io::stderr().write_all(summary.to_text().as_bytes());
    }
    if summary.recognised() == 0 {
        for f in &summary.files {
            if let Some(e) = &f.error {
                say!("smtpscope: {e}");
            }
        }
        say!("smtpscope: no input held a recognisable Exchange or Postfix log line");
        return Ok(ExitCode::from(2));
    }
    Ok(ExitCode::SUCCESS)
}

/// `smtpscope logs` in the terminal UI: the log sessions stream in as rows while the files are
/// read on the UI's capture thread; returns the run's summary once the UI is closed.
fn run_tui(a: &LogsArgs, filter: Filter, opts: LogOptions) -> Result<LogSummary> {
    use smtpscope::tui::{self, app::SourceInfo, export::ExportDir, packets::Origin};
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM, signal_hook::consts::SIGHUP] {
        signal_hook::flag::register(sig, Arc::clone(&stop))?;
    }
    let names: Vec<String> = a
        .files
        .iter()
        .map(|p| {
            let path = std::path::Path::new(p);
            path.file_name().map_or_else(|| p.clone(), |n| n.to_string_lossy().into_owned())
        })
        .collect();
    let summary = Arc::new(Mutex::new(LogSummary::default()));
    let input = LogInput { paths: a.files.clone(), opts, filter, summary: Arc::clone(&summary) };
    tui::run(
        None,
        tui::Options {
            source: SourceInfo { label: format!("logs {}", names.join(", ")), bpf: None, live: false, logs: true },
            // A log session has no packets to read again.
            origin: Origin::Files { paths: Vec::new() },
            export: ExportDir::open(std::path::Path::new(".")).map_err(|e| format!(".: {e}")),
            filter: a.display_filter.clone(),
            show_addresses: a.show_addresses,
            show_credentials: a.show_credentials,
            sensor_column: false,
            notes: Vec::new(),
            export_hint: None,
            frame_log: std::env::var_os("SMTPSCOPE_FRAME_LOG").map(PathBuf::from),
            stop,
            records: None,
            max_rows: smtpscope::tui::store::MAX_ROWS,
            hooks: Box::new(()),
            producer: Some(Box::new(input)),
            log_wait: None,
        },
    )?;
    // The capture thread is done (the UI waits for it): the summary is whole.
    let summary = std::mem::take(&mut *summary.lock().unwrap_or_else(|e| e.into_inner()));
    Ok(summary)
}

/// The log files as the terminal UI's input: each log session a row, read on the UI's capture
/// thread with the progress of the bytes read; the run's summary (the one `logs` writes
/// without the UI) is kept for the end.
struct LogInput {
    paths: Vec<String>,
    opts: LogOptions,
    /// `-Y`: the summary counts as reported the sessions it keeps, as without the UI.
    filter: Filter,
    summary: Arc<Mutex<LogSummary>>,
}

/// A log file's reads, counted and cut short once the UI asks to stop.
struct Watched<'a, R> {
    inner: R,
    stop: &'a AtomicBool,
    on_read: &'a mut dyn FnMut(u64),
}

impl<R: io::Read> io::Read for Watched<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        // The end of input: the sessions open so far are handed out, as at a file's end.
        if self.stop.load(Ordering::Relaxed) {
            return Ok(0);
        }
        let n = self.inner.read(buf)?;
        (self.on_read)(n as u64);
        Ok(n)
    }
}

/// Reads one input as [`logs::read_path`] does, through `on_read` and `stop`.
fn read_watched(
    path: &str,
    opts: &LogOptions,
    stop: &AtomicBool,
    on_read: &mut dyn FnMut(u64),
    out: &mut dyn FnMut(LogRecord),
) -> std::result::Result<logs::FileStats, logs::LogError> {
    logs::read_path_with(path, opts, |inner| Box::new(Watched { inner, stop, on_read }), out)
}

impl smtpscope::tui::feed::Producer for LogInput {
    fn run(
        &mut self,
        out: &mut dyn FnMut(smtpscope::session::Session),
        progress: &mut dyn FnMut(smtpscope::driver::Progress),
        stop: &AtomicBool,
    ) -> Option<String> {
        use smtpscope::driver::Progress;
        let started = std::time::Instant::now();
        let paths = expand_paths(&self.paths);
        // Regular files give the bar its total; standard input has none.
        let total: u64 = paths.iter().flatten().filter_map(|p| std::fs::metadata(p).ok()).map(|m| m.len()).sum();
        let mut summary = LogSummary::default();
        let (mut bytes, mut lines, mut id) = (0u64, 0u64, 0u64);
        let mut last = std::time::Instant::now();
        for p in paths {
            if stop.load(Ordering::Relaxed) {
                break;
            }
            let path = match p {
                Ok(path) => path,
                Err(e) => {
                    summary.files.push(LogFileSummary::missing(e));
                    continue;
                }
            };
            let verdicts = &mut summary.verdicts;
            let reported = &mut summary.reported;
            let filter = &self.filter;
            let mut on_read = |n: u64| {
                bytes += n;
                if last.elapsed() >= PROGRESS_EVERY {
                    last = std::time::Instant::now();
                    progress(Progress {
                        packets: lines,
                        bytes,
                        total,
                        elapsed: started.elapsed(),
                        ..Progress::default()
                    });
                }
            };
            let r = read_watched(&path, &self.opts, stop, &mut on_read, &mut |r| {
                *verdicts.entry(r.verdict).or_default() += 1;
                *reported += u64::from(filter.matches_log(&r));
                id += 1;
                out(smtpscope::tui::logrow::row(r, id));
            });
            let file = LogFileSummary::read(path, r);
            lines += file.stats.as_ref().map_or(0, |s| s.lines);
            summary.files.push(file);
        }
        progress(Progress { packets: lines, bytes, total, elapsed: started.elapsed(), ..Progress::default() });
        // What went wrong, in the footer: the summary says it again after the UI.
        let mut notes: Vec<String> = summary.files.iter().filter_map(|f| f.error.clone()).collect();
        if summary.recognised() == 0 && !stop.load(Ordering::Relaxed) {
            notes.push("no input held a recognisable Exchange or Postfix log line".into());
        }
        *self.summary.lock().unwrap_or_else(|e| e.into_inner()) = summary;
        (!notes.is_empty()).then(|| notes.join("; "))
    }
}

/// How often reading logs in the UI reports its progress.
const PROGRESS_EVERY: std::time::Duration = std::time::Duration::from_millis(100);

/// The main command's `--logs` options.
#[derive(Debug, Args, Clone)]
pub struct CrossArgs {
    /// Server logs to cross-check the capture with (file, directory or quoted glob; repeatable):
    /// each wire record gains `logs`, the matched log sessions and what differs; with -i the
    /// files are followed as they grow and as logrotate replaces them. With `check`: beside -r or
    /// -i a log settles what the wire leaves unproven; without a capture the logs alone are judged.
    #[arg(long = "logs", value_name = "PATH")]
    pub logs: Vec<String>,

    /// Largest clock difference between the logs and the capture (e.g. 5m, 30s).
    #[arg(long, value_name = "TIME", default_value = "5m", value_parser = parse_skew)]
    pub log_skew: Micros,

    /// With -i: how long each finished wire record waits for its log session to appear in the
    /// logs (e.g. 10s, 1m; default 10s) before it is written anyway (with `check`: judged). The
    /// logs are followed as they grow and as logrotate replaces them.
    #[arg(long, value_name = "TIME", requires = "logs", value_parser = super::input::parse_duration)]
    pub log_wait: Option<std::time::Duration>,

    /// Write log sessions no wire session matched (within the capture's span) to FILE as NDJSON
    /// log records.
    #[arg(long, value_name = "FILE", requires = "logs")]
    pub unmatched_logs: Option<PathBuf>,

    #[command(flatten)]
    pub read: LogReadArgs,
}

fn parse_skew(s: &str) -> Result<Micros, String> {
    // The durations every other option takes, in the log clock's unit.
    super::input::parse_duration(s).map(|d| Micros::try_from(d.as_micros()).unwrap_or(Micros::MAX))
}

/// The log side of a capture run: loaded at the first wire session (whose time gives classic
/// syslog stamps their year), then every wire session is linked.
pub struct CrossRun {
    args: CrossArgs,
    opts: LogOptions,
    check: Option<CrossCheck>,
    summary: LogSummary,
    span: Option<(Micros, Micros)>,
}

impl CrossRun {
    /// None when no `--logs` was given.
    pub fn new(args: &CrossArgs, show_addresses: bool, show_credentials: bool) -> Result<Option<Self>> {
        if args.logs.is_empty() {
            if args.unmatched_logs.is_some() || !args.read.log_server.is_empty() || args.read.log_tz.is_some() {
                bail!("--unmatched-logs, --log-server and --log-tz need --logs");
            }
            return Ok(None);
        }
        let opts = args.read.options(show_addresses, show_credentials)?;
        for p in expand_paths(&args.logs) {
            if let Err(e) = p {
                bail!("--logs {e}");
            }
        }
        Ok(Some(Self { args: args.clone(), opts, check: None, summary: LogSummary::default(), span: None }))
    }

    /// Reads the logs once; `reference` gives classic syslog stamps their year (the first wire
    /// session's time; without one, each file's mtime).
    fn load(&mut self, reference: Option<Micros>) {
        if self.check.is_some() {
            return;
        }
        let mut opts = self.opts.clone();
        opts.reference = reference;
        let mut records = Vec::new();
        read_all(&self.args.logs, &opts, &mut self.summary, &mut |r| records.push(r));
        self.check = Some(CrossCheck::new(records, self.args.log_skew));
    }

    /// For a live capture: starts following the logs (the files there now are opened at once,
    /// while privileges last).
    pub fn live(self) -> Result<LiveCross> {
        let wait = self.args.log_wait.unwrap_or(DEFAULT_LOG_WAIT);
        let unmatched = match &self.args.unmatched_logs {
            Some(path) => {
                let f = std::fs::File::create(path).with_context(|| format!("cannot write {}", path.display()))?;
                Some(UnmatchedOut { out: io::BufWriter::new(f), line: Vec::with_capacity(2048) })
            }
            None => None,
        };
        let following = follow::spawn(self.args.logs.clone(), self.opts.clone(), follow::POLL)
            .context("cannot start the log follower thread")?;
        Ok(LiveCross {
            following: Some(following),
            hold: Hold::new(wait, self.args.log_skew),
            wait,
            unmatched,
            error: None,
        })
    }

    /// Links one finished wire session.
    pub fn link(&mut self, s: &mut smtpscope::session::Session) {
        self.link_matched(s);
    }

    /// [`CrossRun::link`], giving the log sessions matched (for `check`).
    pub fn link_matched(&mut self, s: &mut smtpscope::session::Session) -> Vec<&LogRecord> {
        self.load(Some(s.first_seen));
        self.span = Some(match self.span {
            Some((a, b)) => (a.min(s.first_seen), b.max(s.last_seen)),
            None => (s.first_seen, s.last_seen),
        });
        match self.check.as_mut() {
            Some(c) => c.link_matched(s),
            None => Vec::new(),
        }
    }

    /// Log sessions read.
    pub fn log_sessions(&mut self) -> u64 {
        self.load(None);
        self.check.as_ref().map_or(0, |c| c.len() as u64)
    }

    /// Log sessions no wire session matched within the capture's span (± the skew).
    pub fn unmatched_in_span(&mut self) -> u64 {
        self.load(None);
        self.check.as_ref().map_or(0, |c| c.unmatched(self.span).count() as u64)
    }

    /// The `logs` object of the run summary (`--summary FILE`): what the `logs` subcommand's
    /// summary says of the files (sessions, verdicts, line problems by reason), and the
    /// cross-check's counts that stderr gives in one line.
    pub fn summary_json(&mut self) -> serde_json::Value {
        let unmatched = self.unmatched_in_span();
        let mut v = self.summary.to_json();
        if let (Some(c), Some(map)) = (&self.check, v.as_object_mut()) {
            // Every log session is read; none is "reported" on its own in a wire run.
            map.remove("reported");
            map.insert("matched_wire".into(), c.matched_wire.into());
            map.insert("matched_log_sessions".into(), (c.matched_logs() as u64).into());
            map.insert("unmatched_in_span".into(), unmatched.into());
            map.insert("disagreements".into(), c.disagreements.into());
            map.insert("disagreements_by_hint".into(), serde_json::json!(c.disagreements_by_hint));
            map.insert("hints".into(), serde_json::json!(c.hints));
        }
        v
    }

    /// Refuses `--log-wait` where nothing is followed.
    pub fn check_wait(&self, live: bool) -> Result<()> {
        if !live && self.args.log_wait.is_some() {
            bail!("--log-wait is for a live capture (-i): with files every log line is already there");
        }
        Ok(())
    }

    /// Writes the unmatched log sessions and the summary line.
    pub fn finish(mut self, quiet: bool) -> Result<()> {
        // No wire session at all: the logs are still read, so their problems are reported.
        self.load(None);
        let Some(c) = &self.check else { return Ok(()) };
        let unmatched: Vec<&LogRecord> = c.unmatched(self.span).collect();
        if let Some(path) = &self.args.unmatched_logs {
            let f = std::fs::File::create(path).with_context(|| format!("cannot write {}", path.display()))?;
            let opts = Options { show_addresses: self.opts.show_addresses, ..Options::default() };
            let mut w = Writer::new(Box::new(io::BufWriter::new(f)), LogFormat::Json, opts);
            for r in &unmatched {
                w.write(r)?;
            }
            w.finish()?;
        }
        if !quiet {
            let problems = self.summary.problems();
            let per: Vec<String> = problems.counts.iter().map(|(k, v)| format!("{k} {v}")).collect();
            say!(
                "smtpscope: logs: {} log session(s) from {} file(s), {} wire session(s) matched, {} disagree, {} log session(s) unmatched in the capture's span{}",
                c.len(),
                self.summary.files.len(),
                c.matched_wire,
                c.disagreements,
                unmatched.len(),
                if per.is_empty() { String::new() } else { format!("; line problems: {}", per.join(", ")) }
            );
            for f in &self.summary.files {
                if let Some(e) = &f.error {
                    say!("smtpscope: warning: {e}");
                }
            }
        }
        Ok(())
    }
}

/// How long a finished wire record waits for its log session by default.
pub const DEFAULT_LOG_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// The log side of a live capture: the logs followed on a thread of their own, each finished
/// wire record held up to `--log-wait` for its log session (see `smtpscope::logs::hold` for the
/// order records leave in).
pub struct LiveCross {
    following: Option<Following>,
    hold: Hold,
    wait: std::time::Duration,
    unmatched: Option<UnmatchedOut>,
    error: Option<io::Error>,
}

/// What following the logs came to, once the capture and the last waits are over.
pub struct LiveLogs {
    /// Log sessions received from the followed files.
    pub log_sessions: u64,
    /// Log sessions no wire record took, inside the capture's span ± the skew.
    pub unmatched_in_span: u64,
    /// The `logs` object of the run summary (`--summary FILE`).
    pub summary: serde_json::Value,
}

/// `--unmatched-logs` of a live run: each log session nobody took as an NDJSON log record
/// (what `logs -F json` writes), written whole as it goes. Its own small writer rather than the
/// report's, which is not `Send`: the terminal UI runs the cross-check on its capture thread.
struct UnmatchedOut {
    out: io::BufWriter<std::fs::File>,
    line: Vec<u8>,
}

impl UnmatchedOut {
    fn write(&mut self, r: &LogRecord) -> io::Result<()> {
        self.line.clear();
        smtpscope::report::logs::write_line(&mut self.line, r);
        self.line.push(b'\n');
        self.out.write_all(&self.line)?;
        self.out.flush()
    }
}

/// What a live cross-check has to say once it is over (its summary line and warnings), said
/// when the terminal is free: after the terminal UI, not over it.
pub struct LiveReport {
    lines: Vec<String>,
    error: Option<anyhow::Error>,
    logs: LiveLogs,
}

impl LiveReport {
    /// The `logs` object of the run summary (null when `--unmatched-logs` could not be written).
    pub fn summary(&self) -> &serde_json::Value {
        &self.logs.summary
    }

    /// Says the lines on stderr (unless `quiet`) and gives what following came to; an
    /// `--unmatched-logs` write error instead.
    pub fn say(self, quiet: bool) -> Result<LiveLogs> {
        if let Some(e) = self.error {
            return Err(e);
        }
        if !quiet {
            for l in &self.lines {
                say!("{l}");
            }
        }
        Ok(self.logs)
    }
}

impl LiveCross {
    /// Finished wire records still waiting for their log session.
    pub fn waiting(&self) -> usize {
        self.hold.waiting()
    }

    /// How long a finished wire record waits for its log session (`--log-wait`).
    pub fn wait(&self) -> std::time::Duration {
        self.wait
    }

    /// Takes in the log sessions the follower sent, then links and lets go what is due; with
    /// `expire` false (the end of the run) only links.
    fn drain(&mut self, expire: bool, out: &mut dyn FnMut(smtpscope::session::Session, Linked)) {
        let now = std::time::Instant::now();
        let Self { following, hold, unmatched, error, .. } = self;
        let mut gone = |r: LogRecord| write_unmatched(unmatched, error, &r);
        if let Some(f) = following.as_ref() {
            for r in f.sessions.try_iter() {
                hold.log(r, now, &mut gone);
            }
        }
        if expire {
            hold.release(now, out, &mut gone);
        } else {
            hold.link_arrived(out);
        }
    }

    /// A wire session finished: `out` gets it, with the log sessions linked to it, when linked or
    /// when its wait is over.
    pub fn session(
        &mut self,
        s: smtpscope::session::Session,
        out: &mut dyn FnMut(smtpscope::session::Session, Linked),
    ) {
        // Log sessions that arrived first are there to be found.
        self.drain(true, out);
        self.hold.finished(s, std::time::Instant::now(), out);
    }

    /// Called on the driver's ticks: links and lets go what is due.
    pub fn tick(&mut self, out: &mut dyn FnMut(smtpscope::session::Session, Linked)) {
        self.drain(true, out);
    }

    /// The capture has ended: the logs are followed on while records still wait (at most
    /// `--log-wait`), then every record left goes out, linked to what the logs show by then
    /// (sessions still open in a log are closed as at the end of a file), the unmatched log
    /// sessions are written and the summary line said.
    pub fn finish(mut self, out: &mut dyn FnMut(smtpscope::session::Session, Linked), quiet: bool) -> Result<LiveLogs> {
        // Each record waiting keeps its own deadline (its end plus the wait), but none leaves
        // unlinked before the follower's last round: that round closes the log sessions still
        // open (the capture ended one mid-way), and the record is linked to what they show.
        while self.hold.last_deadline().is_some_and(|until| std::time::Instant::now() < until) {
            std::thread::sleep(follow::POLL / 2);
            self.drain(false, out);
        }
        self.end(out).say(quiet)
    }

    /// The end, without waiting any more: the follower stops, every record still waiting is
    /// tried once more and goes out, the unmatched log sessions are written; what is to be
    /// said is returned.
    pub fn end(mut self, out: &mut dyn FnMut(smtpscope::session::Session, Linked)) -> LiveReport {
        let (stats, rest) = match self.following.take() {
            Some(f) => f.stop(),
            None => Default::default(),
        };
        let now = std::time::Instant::now();
        {
            let Self { hold, unmatched, error, .. } = &mut self;
            let mut gone = |r: LogRecord| write_unmatched(unmatched, error, &r);
            for r in rest {
                hold.log(r, now, &mut gone);
            }
            hold.finish(out, &mut gone);
        }
        let mut error = self.error.take();
        if let Some(mut w) = self.unmatched.take() {
            if let Err(e) = w.out.flush() {
                error.get_or_insert(e);
            }
        }
        if let Some(e) = error {
            let logs = LiveLogs { log_sessions: 0, unmatched_in_span: 0, summary: serde_json::Value::Null };
            return LiveReport {
                lines: Vec::new(),
                error: Some(anyhow::Error::new(e).context("--unmatched-logs")),
                logs,
            };
        }
        let summary = self.summary_json(&stats);
        let mut lines = Vec::new();
        {
            let mut problems = smtpscope::logs::Problems::default();
            for (_, s) in &stats.streams {
                problems.merge(&s.problems);
            }
            let per: Vec<String> = problems.counts.iter().map(|(k, v)| format!("{k} {v}")).collect();
            let h = &self.hold;
            lines.push(format!(
                "smtpscope: logs: {} log session(s) followed in {} file(s) ({} rotated away, {} truncated, {} compressed left unread), {} wire session(s) matched, {} disagree, {} left without one after waiting {} s, {} log session(s) unmatched{}",
                h.log_sessions,
                stats.streams.len(),
                stats.rotations,
                stats.truncations,
                stats.compressed,
                h.matched_wire,
                h.disagreements,
                h.waited_out,
                self.wait.as_secs_f64(),
                h.unmatched_logs,
                if per.is_empty() { String::new() } else { format!("; line problems: {}", per.join(", ")) }
            ));
            for e in &stats.errors {
                lines.push(format!("smtpscope: warning: logs: {e}"));
            }
        }
        let h = &self.hold;
        let logs = LiveLogs { log_sessions: h.log_sessions, unmatched_in_span: h.unmatched_logs, summary };
        LiveReport { lines, error: None, logs }
    }

    /// The `logs` object of a live run's summary: the keys a run over files gives (each followed
    /// stream as one file: a rotated file and its successor are one stream), and under `follow`
    /// what only following has (rotations, truncations, compressed files left unread, files that
    /// could not be read, records that left without a log session).
    fn summary_json(&self, stats: &follow::FollowStats) -> serde_json::Value {
        let h = &self.hold;
        let files = stats
            .streams
            .iter()
            .map(|(name, s)| LogFileSummary { name: name.clone(), stats: Some(s.clone()), error: None })
            .collect();
        let mut v = LogSummary { files, verdicts: h.verdicts.clone(), reported: 0 }.to_json();
        if let Some(map) = v.as_object_mut() {
            // As over files: every log session is read, none is "reported" on its own.
            map.remove("reported");
            map.insert("matched_wire".into(), h.matched_wire.into());
            map.insert("matched_log_sessions".into(), h.matched_logs.into());
            map.insert("unmatched_in_span".into(), h.unmatched_logs.into());
            map.insert("disagreements".into(), h.disagreements.into());
            map.insert("disagreements_by_hint".into(), serde_json::json!(h.disagreements_by_hint));
            map.insert("hints".into(), serde_json::json!(h.hints));
            map.insert(
                "follow".into(),
                serde_json::json!({
                    "rotations": stats.rotations,
                    "truncations": stats.truncations,
                    "compressed_unread": stats.compressed,
                    "errors": stats.errors,
                    "log_wait_s": self.wait.as_secs_f64(),
                    "waited_out": h.waited_out,
                }),
            );
        }
        v
    }
}

fn write_unmatched(w: &mut Option<UnmatchedOut>, error: &mut Option<io::Error>, r: &LogRecord) {
    if let (Some(w), None) = (w.as_mut(), error.as_ref()) {
        if let Err(e) = w.write(r) {
            *error = Some(e);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use smtpscope::session::{Kind, Session, Verdict};
    use std::time::{Duration, Instant};

    fn now_micros() -> Micros {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| Micros::try_from(d.as_micros()).unwrap_or(Micros::MAX))
    }

    /// A Postfix smtpd line stamped `t` (RFC 3339, as rsyslog writes it).
    fn line(t: Micros, pid: u32, msg: &str) -> String {
        format!("{} mx postfix/smtpd[{pid}]: {msg}\n", jiff::Timestamp::from_microsecond(t).unwrap())
    }

    fn append(path: &std::path::Path, text: &str) {
        let mut f = std::fs::OpenOptions::new().append(true).open(path).unwrap();
        f.write_all(text.as_bytes()).unwrap();
    }

    fn live(log: &std::path::Path, wait: Duration) -> LiveCross {
        let args = CrossArgs {
            logs: vec![log.to_string_lossy().into_owned()],
            log_skew: 1_000_000,
            log_wait: Some(wait),
            unmatched_logs: None,
            read: LogReadArgs { log_tz: Some("UTC".into()), log_server: Vec::new() },
        };
        CrossRun::new(&args, false, false).unwrap().unwrap().live().unwrap()
    }

    fn wire(client: &str, t: Micros) -> Session {
        let mut s = Session::new(client.parse().unwrap(), "192.0.2.10:25".parse().unwrap());
        (s.first_seen, s.last_seen, s.kind, s.verdict) = (t, t + 1_000, Kind::Smtp, Some(Verdict::Plaintext));
        s
    }

    #[test]
    fn at_the_end_a_record_whose_log_session_is_still_open_is_linked_to_what_the_log_shows_by_then() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("mail.log");
        std::fs::write(&log, "").unwrap();
        let wait = Duration::from_secs(1);
        let mut lx = live(&log, wait);
        let t = now_micros();
        let mut out: Vec<(Session, Linked)> = Vec::new();
        // The capture ends while the session is open: the server has logged its connect line
        // only. Its wait runs out during the final wait; the follower's last round closes the
        // log session, and the record leaves linked to it.
        lx.session(wire("192.0.2.1:40000", t), &mut |s, l| out.push((s, l)));
        append(&log, &line(t, 7, "connect from c.example[192.0.2.1]:40000"));
        let stopped = Instant::now();
        let logs = lx.finish(&mut |s, l| out.push((s, l)), true).unwrap();
        assert!(stopped.elapsed() < wait + Duration::from_secs(2), "{:?}", stopped.elapsed());
        let [(s, linked)] = out.as_slice() else { panic!("one record, once: {}", out.len()) };
        assert_eq!(linked.len(), 1, "the log session came with it");
        assert_eq!(linked[0].client.map(|c| c.port), Some(Some(40000)));
        assert_eq!(s.logs.as_ref().map(Vec::len), Some(1));
        assert_eq!((logs.log_sessions, logs.unmatched_in_span), (1, 0));
        assert_eq!(logs.summary["matched_wire"], 1, "{}", logs.summary);
        assert_eq!(logs.summary["follow"]["waited_out"], 0, "{}", logs.summary);
    }

    #[test]
    fn the_summary_of_a_live_run_has_the_keys_of_a_run_over_files_and_what_following_saw() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("mail.log");
        std::fs::write(&log, "").unwrap();
        let mut lx = live(&log, Duration::from_millis(200));
        let t = now_micros();
        let mut out: Vec<(Session, Linked)> = Vec::new();
        // One record with its log session (written before the wire session ended), one
        // without, and a log session no wire session took inside the capture's span.
        append(&log, &line(t, 1, "connect from a.example[192.0.2.1]"));
        append(&log, &line(t, 1, "disconnect from a.example[192.0.2.1] ehlo=1 quit=1 commands=2"));
        append(&log, &line(t, 2, "connect from z.example[192.0.2.9]"));
        append(&log, &line(t, 2, "disconnect from z.example[192.0.2.9] ehlo=1 quit=1 commands=2"));
        std::thread::sleep(follow::POLL * 3);
        lx.session(wire("192.0.2.1:40000", t), &mut |s, l| out.push((s, l)));
        lx.session(wire("192.0.2.2:40000", t), &mut |s, l| out.push((s, l)));
        let logs = lx.finish(&mut |s, l| out.push((s, l)), true).unwrap();
        let linked: Vec<usize> = out.iter().map(|(_, l)| l.len()).collect();
        assert_eq!(linked, [1, 0]);
        let v = &logs.summary;
        assert_eq!(v["sessions"], 2, "{v}");
        assert_eq!(v["verdicts"]["plaintext"], 2, "{v}");
        assert_eq!(v["files"][0]["name"], log.to_string_lossy().as_ref(), "{v}");
        assert_eq!(v["files"][0]["format"], "postfix", "{v}");
        assert_eq!(v["files"][0]["sessions"], 2, "{v}");
        assert!(v["line_problems"].is_object() && v.get("reported").is_none(), "{v}");
        assert_eq!((&v["matched_wire"], &v["matched_log_sessions"]), (&1.into(), &1.into()), "{v}");
        assert_eq!((&v["unmatched_in_span"], &v["disagreements"]), (&1.into(), &0.into()), "{v}");
        assert_eq!(v["disagreements_by_hint"], serde_json::json!({}));
        assert_eq!(v["follow"]["waited_out"], 1, "{v}");
        assert_eq!(v["follow"]["rotations"], 0, "{v}");
        assert_eq!((logs.log_sessions, logs.unmatched_in_span), (2, 1));
    }
}
