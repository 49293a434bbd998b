//! `smtpscope logs FILES|globs|-`: sessions from mail-server logs alone, and the `--logs` options
//! of the main command (cross-check with a capture).

use std::io::{self, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

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

    /// Output format: table, json (NDJSON, one object per log session) or csv (default table;
    /// the terminal UI does not show log records).
    #[arg(short = 'F', long, value_enum)]
    pub format: Option<LogFormatArg>,

    /// Display filter, as for the main command; free text matches the session's logged lines.
    #[arg(short = 'Y', long = "display-filter", value_name = "FILTER")]
    pub display_filter: Option<String>,

    /// Never open the terminal UI (accepted for symmetry with the main command: `logs` prints).
    #[arg(long)]
    pub no_tui: bool,

    /// Print envelope addresses in full in the evidence; by default only their domains.
    #[arg(long)]
    pub show_addresses: bool,

    /// Print AUTH user names in the evidence (masked by default).
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
                let (stats, error) = match r {
                    Ok(s) => (Some(s), None),
                    Err(e) => (None, Some(e.to_string())),
                };
                summary.files.push(LogFileSummary { name: path, stats, error });
            }
            Err(e) => summary.files.push(LogFileSummary { name: e.clone(), stats: None, error: Some(e) }),
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
                let opts =
                    Options { show_addresses: self.opts.show_addresses, line_buffered: true, ..Options::default() };
                Some(Writer::new(Box::new(io::BufWriter::new(f)), LogFormat::Json, opts))
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
    unmatched: Option<Writer<'static>>,
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

impl LiveCross {
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
        if let Some(mut w) = self.unmatched.take() {
            w.finish()?;
        }
        if let Some(e) = self.error.take() {
            return Err(e).context("--unmatched-logs");
        }
        let summary = self.summary_json(&stats);
        if !quiet {
            let mut problems = smtpscope::logs::Problems::default();
            for (_, s) in &stats.streams {
                problems.merge(&s.problems);
            }
            let per: Vec<String> = problems.counts.iter().map(|(k, v)| format!("{k} {v}")).collect();
            let h = &self.hold;
            say!(
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
            );
            for e in &stats.errors {
                say!("smtpscope: warning: logs: {e}");
            }
        }
        let h = &self.hold;
        Ok(LiveLogs { log_sessions: h.log_sessions, unmatched_in_span: h.unmatched_logs, summary })
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

fn write_unmatched(w: &mut Option<Writer<'static>>, error: &mut Option<io::Error>, r: &LogRecord) {
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
