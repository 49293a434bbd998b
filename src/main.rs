//! smtpscope command line: tcpdump/tshark conventions (`-r`, `-i`, `-w`, trailing BPF), plus the
//! `check` and `pairs` subcommands. Parsing and wiring only: the work is in the library.

use std::io::{self, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand, ValueEnum};

use smtpscope::capture::live::{immediate_mode, list_devices, LiveOptions};
use smtpscope::check::{policy, Checker, JudgeOptions, Policy, Window};
use smtpscope::driver;
use smtpscope::engine::Config;
use smtpscope::filter::Filter;
use smtpscope::privilege::{self, Outcome};
use smtpscope::report::pairs::Pairs;
use smtpscope::report::{self, Format, Options};
use smtpscope::session::Session;
use smtpscope::summary::Summary;

/// mimalloc (v2): a session is dozens of small, short-lived allocations (evidence, replies,
/// buffers, the record), and with the reader thread batches cross threads; on the 2 GB lab
/// capture it cut the two-thread wall time by ~11 % for ~7 MB more peak RSS (BENCHMARKS.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

extern "C" {
    // mimalloc's C API (always in the library the `mimalloc` crate links).
    fn mi_option_set(option: libc::c_int, value: libc::c_long);
    #[cfg(test)]
    fn mi_option_get(option: libc::c_int) -> libc::c_long;
}

/// `mi_option_purge_delay` in mimalloc 2.x's `mi_option_e`.
const MI_OPTION_PURGE_DELAY: libc::c_int = 15;

/// Freed memory goes back to the system at once rather than after mimalloc's 10 ms delay: under
/// a flood of flows evicted in batches, the delayed pages were a quarter of the peak RSS with two
/// threads (1 M SYN-only flows: 129 → 94 MB), for ~150 more `madvise` calls per 2 GB otherwise.
fn tune_allocator() {
    // SAFETY: sets a plain integer option; mimalloc reads it when it next purges.
    unsafe { mi_option_set(MI_OPTION_PURGE_DELAY, 0) };
}

/// `eprintln!` that never panics: a closed stderr (`2>&-`, a reader that went away) must not turn
/// a run whose records went out into a crash.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

/// The engine's default mail ports as `--help` shows them: in the comma form the option takes.
const MAIL_PORTS_TEXT: &str = "25,465,587,2525,475,717";

/// Watch SMTP on the wire: for every session, did mail travel in plaintext or inside TLS — and
/// the evidence.
#[derive(Debug, Parser)]
#[command(name = "smtpscope", version, about, after_help = AFTER_HELP, args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    cmd: Option<Cmd>,
    #[command(flatten)]
    input: InputArgs,
    #[command(flatten)]
    out: ReportArgs,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Prove TLS is really off (or on) between given hosts; exit 0 pass, 1 violation, 3 unproven.
    Check(CheckArgs),
    /// Who speaks TLS to whom: host pairs with verdict counts, offered and used upgrade verbs.
    Pairs(PairsArgs),
}

#[derive(Debug, Args)]
struct InputArgs {
    /// Read packets from a pcap/pcapng file; repeat to merge several by timestamp.
    #[arg(short = 'r', long = "read", value_name = "FILE", conflicts_with_all = ["interface", "list_interfaces"])]
    read: Vec<PathBuf>,

    /// Capture live on an interface (`any` for all); sessions are reported as they end.
    #[arg(short = 'i', long = "interface", value_name = "IFACE")]
    interface: Option<String>,

    /// List the interfaces that can be captured on, like tcpdump -D.
    #[arg(short = 'D', long = "list-interfaces", conflicts_with = "interface")]
    list_interfaces: bool,

    /// Live: also write every captured packet to FILE (pcap).
    #[arg(short = 'w', value_name = "FILE", requires = "interface")]
    write: Option<PathBuf>,

    /// Stop after N packets.
    #[arg(short = 'c', value_name = "N")]
    count: Option<u64>,

    /// Live: stop after this long (e.g. 30s, 10m, 1h).
    #[arg(long, value_name = "TIME", value_parser = parse_duration, requires = "interface")]
    duration: Option<Duration>,

    /// Live: do not put the interface into promiscuous mode.
    #[arg(short = 'p', long = "no-promiscuous-mode")]
    no_promisc: bool,

    /// Live: bytes captured per packet.
    #[arg(short = 's', long = "snapshot-length", value_name = "BYTES", default_value_t = 262_144)]
    snaplen: i32,

    /// Live: kernel buffer size in KiB (as tcpdump -B; default 8192).
    #[arg(short = 'B', long = "buffer-size", value_name = "KIB")]
    buffer_kib: Option<i32>,

    /// Live: let the kernel batch packets (delivered within 100 ms) instead of immediate mode,
    /// which is on by default except on `any`. Batching packs small packets densely into the
    /// ring: on a very busy link it rides out longer stalls.
    #[arg(long)]
    no_immediate: bool,

    /// Live, as root: the user to become once the device and files are open (default: the sudo
    /// caller, else nobody; `root` keeps root).
    #[arg(short = 'Z', long = "relinquish-privileges", value_name = "USER")]
    user: Option<String>,

    /// Mail ports: implicit TLS and non-SMTP payload are reported only on these.
    #[arg(long, value_delimiter = ',', value_name = "PORTS", default_value = MAIL_PORTS_TEXT)]
    mail_ports: Vec<u16>,

    /// Most TCP flows held at once; the least recently active are evicted (and reported).
    #[arg(long, value_name = "N", default_value_t = 100_000)]
    max_flows: usize,

    /// Out-of-order bytes held per direction while waiting for a hole to fill.
    #[arg(long, value_name = "BYTES", default_value_t = 256 * 1024)]
    max_buffer: usize,

    /// Out-of-order bytes held by all flows together; a flow that goes past it lets go of what it
    /// holds (its holes become gaps).
    #[arg(long, value_name = "BYTES", default_value_t = 64 << 20)]
    max_buffer_total: usize,

    /// FORENSICS ONLY: decode AUTH PLAIN/LOGIN secrets seen in clear and print them (JSON key
    /// `credentials`). The output then holds passwords: keep it as secret as they are.
    #[arg(long)]
    show_credentials: bool,

    /// Files: 2 reads the capture on a second thread while the first analyses it; 1 does both on
    /// one thread. The records are the same either way.
    #[arg(long, value_name = "N", default_value_t = 2, value_parser = clap::value_parser!(u8).range(1..=2))]
    threads: u8,

    /// Write the run summary as JSON to FILE instead of text on stderr.
    #[arg(long, value_name = "FILE")]
    summary: Option<PathBuf>,

    /// No summary on stderr.
    #[arg(short = 'q', long)]
    quiet: bool,

    /// Never show a progress bar.
    #[arg(long)]
    no_progress: bool,

    /// BPF capture filter, as in tcpdump (e.g. 'host 10.1.2.3 and port 25').
    #[arg(value_name = "EXPRESSION")]
    filter: Vec<String>,
}

#[derive(Debug, Args)]
struct ReportArgs {
    /// Output format: table, json (NDJSON, one object per session) or csv (default: the
    /// terminal UI when stdout is a terminal, else table).
    #[arg(short = 'F', long, value_enum)]
    format: Option<FormatArg>,

    /// Open the terminal UI even if stdout is not a terminal or a format is given.
    #[arg(long, conflicts_with = "no_tui")]
    tui: bool,

    /// Never open the terminal UI: print the table.
    #[arg(long)]
    no_tui: bool,

    /// Terminal UI: where exports (e, w) are written; opened at start, before a live capture
    /// gives up root (default: the current directory).
    #[arg(long, value_name = "DIR")]
    export_dir: Option<PathBuf>,

    /// Terminal UI, live: MiB of recent packets kept in a temporary spool for the packet view.
    #[arg(long, value_name = "MIB", default_value_t = 128)]
    spool_size: u64,

    /// Print envelope addresses (MAIL FROM / RCPT TO) in full; by default only their domains.
    #[arg(long)]
    show_addresses: bool,

    /// Colour the table: auto (terminal and NO_COLOR unset), always, never.
    #[arg(long, value_name = "WHEN", default_value = "auto")]
    color: ColorArg,

    /// Display filter: only sessions matching FILTER are reported, e.g. 'verdict:plaintext
    /// server:10.1.0.0/16', '!verdict:starttls', 'tls:<1.2 or finding:cert-*' (see README).
    #[arg(short = 'Y', long = "display-filter", value_name = "FILTER")]
    display_filter: Option<String>,
}

#[derive(Debug, Args)]
struct CheckArgs {
    /// What the sessions must show (with --between or --from/--to).
    #[arg(long, value_enum)]
    expect: Option<ExpectArg>,

    /// Two host groups (addresses, CIDRs, helo:/banner:/cert: globs; comma-separated), either direction.
    #[arg(long, num_args = 2, value_names = ["A", "B"], conflicts_with_all = ["from", "to"])]
    between: Vec<String>,

    /// Client group (directed rule, with --to).
    #[arg(long, value_name = "A", requires = "to")]
    from: Option<String>,

    /// Server group (directed rule, with --from).
    #[arg(long, value_name = "B", requires = "from")]
    to: Option<String>,

    /// Only sessions to these server ports (comma-separated); with --policy too.
    #[arg(long, value_delimiter = ',')]
    port: Vec<u16>,

    /// With --expect plaintext: upgrade verbs the server must not offer (e.g. X-ANONYMOUSTLS).
    #[arg(long, value_delimiter = ',')]
    forbid_offer: Vec<String>,

    /// With --expect tls: lowest acceptable version (TLS1.2).
    #[arg(long)]
    min_version: Option<String>,

    /// Policy file (TOML): host groups and rules, first match wins.
    #[arg(long, value_name = "FILE")]
    policy: Option<PathBuf>,

    /// Only sessions that start at or after this time (RFC 3339).
    #[arg(long, value_parser = parse_time)]
    since: Option<i64>,

    /// Only sessions that start before this time (RFC 3339).
    #[arg(long, value_parser = parse_time)]
    until: Option<i64>,

    /// A rule that matched no SMTP at all makes the check unproven (exit 3).
    #[arg(long)]
    require_traffic: bool,

    /// Accept TLS 1.3 sessions for certificate requirements (the certificate is not visible).
    #[arg(long)]
    accept_tls13_cert: bool,

    /// Output: text, json (NDJSON) or junit (JUnit XML).
    #[arg(short = 'F', long, value_enum, default_value = "text")]
    format: CheckFormat,

    #[command(flatten)]
    input: InputArgs,
}

#[derive(Debug, Args)]
struct PairsArgs {
    /// Output: text or json (NDJSON, one object per pair).
    #[arg(short = 'F', long, value_enum, default_value = "text")]
    format: PairsFormat,

    #[command(flatten)]
    input: InputArgs,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum FormatArg {
    Table,
    Json,
    Csv,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum ColorArg {
    Auto,
    Always,
    Never,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum ExpectArg {
    Plaintext,
    Tls,
    Any,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum CheckFormat {
    Text,
    Json,
    Junit,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum PairsFormat {
    Text,
    Json,
}

const AFTER_HELP: &str = "Exit status: 0 ok, 2 usage or input error (check: 1 violation, 3 unproven). Ctrl-C or \
SIGTERM ends a live capture cleanly (open sessions are reported); a second Ctrl-C exits at once.\n\
Verdicts: not-smtp, incomplete, implicit-tls, starttls, stripped, starttls-refused, starttls-failed,\n\
starttls-offered-unused, plaintext. The NDJSON schema is described in README.md.";

fn main() -> ExitCode {
    tune_allocator();
    let cli = Cli::parse();
    let input = match &cli.cmd {
        None => &cli.input,
        Some(Cmd::Check(a)) => &a.input,
        Some(Cmd::Pairs(a)) => &a.input,
    };
    if let Some(opt) = input.live_only_misuse() {
        use clap::CommandFactory;
        Cli::command()
            .error(clap::error::ErrorKind::ArgumentConflict, format!("{opt} applies to live capture (-i) only"))
            .exit();
    }
    match run(&cli) {
        Ok(code) => code,
        Err(e) => {
            if e.downcast_ref::<io::Error>().is_some_and(|io| io.kind() == io::ErrorKind::BrokenPipe) {
                return ExitCode::SUCCESS;
            }
            say!("smtpscope: {e:#}");
            ExitCode::from(2)
        }
    }
}

impl InputArgs {
    /// A live-capture option given without `-i` (clap's `requires` is not checked for arguments
    /// that also conflict with others), which would otherwise be silently ignored.
    fn live_only_misuse(&self) -> Option<&'static str> {
        if self.interface.is_some() {
            return None;
        }
        [
            (self.write.is_some(), "-w"),
            (self.duration.is_some(), "--duration"),
            (self.user.is_some(), "-Z"),
            (self.buffer_kib.is_some(), "-B"),
            (self.no_immediate, "--no-immediate"),
            (self.no_promisc, "-p"),
        ]
        .into_iter()
        .find_map(|(given, opt)| given.then_some(opt))
    }
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit() && c != '.').unwrap_or(s.len()));
    let n: f64 = num.parse().map_err(|_| format!("'{s}' is not a duration (e.g. 30s, 10m, 1h)"))?;
    let secs = match unit {
        "" | "s" => n,
        "ms" => n / 1000.0,
        "m" | "min" => n * 60.0,
        "h" => n * 3600.0,
        _ => return Err(format!("'{s}': unknown unit '{unit}' (ms, s, m, h)")),
    };
    Duration::try_from_secs_f64(secs).map_err(|_| format!("'{s}' is not a duration this side of forever"))
}

fn parse_time(s: &str) -> Result<i64, String> {
    let t = time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .map_err(|e| format!("'{s}' is not an RFC 3339 time (2026-11-22T10:00:00Z): {e}"))?;
    Ok((t.unix_timestamp_nanos() / 1000) as i64)
}

fn run(cli: &Cli) -> Result<ExitCode> {
    match &cli.cmd {
        None => run_report(&cli.input, &cli.out),
        Some(Cmd::Check(a)) => run_check(a),
        Some(Cmd::Pairs(a)) => run_pairs(a),
    }
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

fn run_report(input: &InputArgs, out: &ReportArgs) -> Result<ExitCode> {
    if input.list_interfaces {
        // Written, not printed: `smtpscope -D | head -1` closes the pipe, which is no error.
        let mut stdout = io::stdout().lock();
        for (n, d) in list_devices()?.iter().enumerate() {
            let desc = d.description.as_deref().map(|x| format!(" ({x})")).unwrap_or_default();
            writeln!(stdout, "{}.{}{desc} [{}]", n + 1, d.name, d.flags.join(", "))?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    let tui = out.tui || (!out.no_tui && out.format.is_none() && io::stdout().is_terminal());
    if tui {
        return run_tui(input, out);
    }
    let format = match out.format.unwrap_or(FormatArg::Table) {
        FormatArg::Table => Format::Table,
        FormatArg::Json => Format::Json,
        FormatArg::Csv => Format::Csv,
    };
    let filter = display_filter(out.display_filter.as_deref())?;
    let mut opts = driver_options(input)?;
    // Free text is matched against transcripts, which the engine records only when asked.
    opts.engine.transcript = filter.uses_text();
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
            Options { color, show_addresses: out.show_addresses, line_buffered: input.interface.is_some() },
        ),
        error: None,
    };
    let stopped = AtomicBool::new(false);
    drive(
        input,
        opts,
        &mut |s| {
            if !filter.matches(&s) {
                return;
            }
            sink.emit(s);
            if sink.error.is_some() {
                stopped.store(true, Ordering::Relaxed);
            }
        },
        &stopped,
    )?;
    if let Some(e) = sink.error.take() {
        return Err(e.into());
    }
    sink.writer.finish()?;
    Ok(ExitCode::SUCCESS)
}

/// The terminal UI over files or a live interface.
fn run_tui(input: &InputArgs, out: &ReportArgs) -> Result<ExitCode> {
    use smtpscope::capture::spool::Spool;
    use smtpscope::tui::{self, app::SourceInfo, export::ExportDir, packets::Origin};

    // A bad filter is a usage error before the screen changes.
    display_filter(out.display_filter.as_deref())?;
    let mut opts = driver_options(input)?;
    opts.engine.transcript = true;
    opts.engine.track_open = true;
    let bpf = opts.filter.clone();
    let summary_file = open_summary(input)?;
    let opened = driver::Opened::open(opts)?;
    let live = opened.is_live();
    let dir = out.export_dir.clone().unwrap_or_else(|| PathBuf::from("."));
    let export = ExportDir::open(&dir).map_err(|e| format!("{}: {e}", dir.display()));
    let mut notes = Vec::new();
    let (opened, origin) = if live {
        // The spool's directory belongs to the user we become, so it can still rotate segments.
        // SAFETY: a plain getter.
        let owner = if unsafe { libc::geteuid() } == 0 {
            privilege::target(input.user.as_deref())?.map(|(_, uid, gid)| (uid, gid))
        } else {
            None
        };
        let spool = Spool::create(&std::env::temp_dir(), opened.linktype(), out.spool_size << 20, owner)?;
        let shared = spool.shared();
        (opened.with_spool(spool), Origin::Spool(shared))
    } else {
        (opened, Origin::Files { paths: input.read.clone() })
    };
    if live {
        if let Some(msg) = drop_privileges(input)? {
            notes.push(msg);
        }
    }
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM, signal_hook::consts::SIGHUP] {
        signal_hook::flag::register(sig, Arc::clone(&stop))?;
    }
    let label = match &input.interface {
        Some(dev) => format!("interface {dev}"),
        None => {
            let names: Vec<String> = input
                .read
                .iter()
                .map(|p| p.file_name().map_or_else(|| p.display().to_string(), |n| n.to_string_lossy().into_owned()))
                .collect();
            format!("file {}", names.join(", "))
        }
    };
    let summary = tui::run(
        opened,
        tui::Options {
            source: SourceInfo { label, bpf, live },
            origin,
            export,
            filter: out.display_filter.clone(),
            show_addresses: out.show_addresses,
            notes,
            frame_log: std::env::var_os("SMTPSCOPE_FRAME_LOG").map(PathBuf::from),
            stop,
        },
    )?;
    let Some(summary) = summary else { return Ok(ExitCode::SUCCESS) };
    for s in &summary.sources {
        if let Some(m) = &s.error {
            say!("smtpscope: warning: {}: read stopped after {} packets ({m})", s.name, s.packets);
        }
    }
    write_summary(input, &summary, summary_file)?;
    if summary.nothing_read() {
        bail!("no packet could be read from the input");
    }
    Ok(ExitCode::SUCCESS)
}

/// Parses `-Y`; a bad filter is a usage error that points at the problem.
fn display_filter(text: Option<&str>) -> Result<Filter> {
    let text = text.unwrap_or_default();
    Filter::parse(text).map_err(|e| {
        let caret = format!("{}{}", " ".repeat(e.span.start), "^".repeat(e.span.len().max(1)));
        anyhow::anyhow!("bad display filter at column {}: {}\n  {text}\n  {caret}", e.span.start + 1, e.kind)
    })
}

fn check_policy(a: &CheckArgs) -> Result<Policy> {
    // An option the check would not use must not pass as if it were checked: one line, exit 2.
    // (--port, --since and --until select sessions and work with a policy too.)
    let one_rule = [
        ("--expect", a.expect.is_some()),
        ("--between", !a.between.is_empty()),
        ("--from", a.from.is_some()),
        ("--to", a.to.is_some()),
        ("--forbid-offer", !a.forbid_offer.is_empty()),
        ("--min-version", a.min_version.is_some()),
    ];
    if let (Some(_), Some((opt, _))) = (&a.policy, one_rule.iter().find(|(_, set)| *set)) {
        bail!("check: {opt} cannot be used with --policy (the policy file says it, per rule)")
    }
    match a.expect {
        Some(ExpectArg::Plaintext | ExpectArg::Any) if a.min_version.is_some() => {
            bail!("check: --min-version needs --expect tls")
        }
        Some(ExpectArg::Tls | ExpectArg::Any) if !a.forbid_offer.is_empty() => {
            bail!("check: --forbid-offer needs --expect plaintext")
        }
        _ => {}
    }
    if let Some(p) = &a.policy {
        let text = std::fs::read_to_string(p).with_context(|| format!("cannot read policy {}", p.display()))?;
        return Ok(Policy::from_toml(&text)?);
    }
    let Some(expect) = a.expect else {
        bail!("check needs --policy FILE, or --expect with --between A B or --from A --to B")
    };
    let side = |name: &str, v: &str| -> Result<policy::Group> {
        let members: Vec<&str> = v.split(',').map(str::trim).filter(|m| !m.is_empty()).collect();
        Ok(policy::group(name, &members)?)
    };
    let hosts = match (a.between.as_slice(), &a.from, &a.to) {
        ([x, y], None, None) => policy::Hosts::Between(side(x, x)?, side(y, y)?),
        ([], Some(f), Some(t)) => policy::Hosts::Directed(side(f, f)?, side(t, t)?),
        _ => bail!("check --expect needs --between A B or --from A --to B"),
    };
    let expect = match expect {
        ExpectArg::Plaintext => {
            policy::Expect::Plaintext { forbid_offer: a.forbid_offer.iter().map(|v| v.to_ascii_uppercase()).collect() }
        }
        ExpectArg::Tls => policy::Expect::Tls {
            min_version: a.min_version.as_deref().map(policy::parse_version).transpose()?,
            cert_valid: false,
            cert_name: false,
        },
        ExpectArg::Any => policy::Expect::Any,
    };
    let name = match &hosts {
        policy::Hosts::Between(x, y) => format!("{} <-> {}", x.name, y.name),
        policy::Hosts::Directed(x, y) => format!("{} -> {}", x.name, y.name),
        policy::Hosts::All => "all".into(),
    };
    // --port is applied by the checker's window, as with a policy.
    Ok(Policy { rules: vec![policy::Rule { name, hosts, ports: Vec::new(), expect, default: false }] })
}

fn run_check(a: &CheckArgs) -> Result<ExitCode> {
    let pol = check_policy(a)?;
    let opts = JudgeOptions { accept_tls13_cert: a.accept_tls13_cert };
    let mut checker = Checker::new(pol, opts, Window { since: a.since, until: a.until, ports: a.port.clone() });
    drive(&a.input, driver_options(&a.input)?, &mut |s| checker.add(&s), &AtomicBool::new(false))?;
    let mut out = io::stdout().lock();
    match a.format {
        CheckFormat::Text => out.write_all(checker.text(a.require_traffic).as_bytes())?,
        CheckFormat::Json => {
            for v in checker.ndjson() {
                writeln!(out, "{}", report::json::to_line(&v))?;
            }
        }
        CheckFormat::Junit => out.write_all(checker.junit(a.require_traffic).as_bytes())?,
    }
    out.flush()?;
    Ok(ExitCode::from(checker.exit_code(a.require_traffic)))
}

fn run_pairs(a: &PairsArgs) -> Result<ExitCode> {
    let mut pairs = Pairs::default();
    drive(&a.input, driver_options(&a.input)?, &mut |s| pairs.add(&s), &AtomicBool::new(false))?;
    let mut out = io::stdout().lock();
    match a.format {
        PairsFormat::Text => out.write_all(pairs.text().as_bytes())?,
        PairsFormat::Json => {
            for v in pairs.json() {
                writeln!(out, "{}", report::json::to_line(&v))?;
            }
        }
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

fn engine_config(input: &InputArgs) -> Config {
    let mut cfg = Config { mail_ports: input.mail_ports.clone(), ..Config::default() };
    cfg.limits.max_flows = input.max_flows.max(1);
    cfg.limits.stream.max_buffered = input.max_buffer;
    cfg.limits.max_held_total = input.max_buffer_total;
    cfg.keep_credentials = input.show_credentials;
    if input.show_credentials {
        say!("smtpscope: warning: --show-credentials: AUTH secrets seen in clear will be printed");
    }
    cfg
}

fn write_summary(input: &InputArgs, summary: &Summary, file: Option<std::fs::File>) -> Result<()> {
    if let Some(mut f) = file {
        writeln!(f, "{}", report::json::to_line(&summary.to_json()))?;
    } else if !input.quiet {
        let _ = io::stderr().write_all(summary.to_text().as_bytes());
    }
    Ok(())
}

/// The driver's options for these arguments.
fn driver_options(input: &InputArgs) -> Result<driver::Options> {
    let filter = (!input.filter.is_empty()).then(|| input.filter.join(" "));
    let source = match &input.interface {
        Some(dev) => driver::Source::Live {
            device: dev.clone(),
            options: LiveOptions {
                promisc: !input.no_promisc,
                snaplen: input.snaplen,
                immediate: immediate_mode(dev, !input.no_immediate),
                buffer_size: input.buffer_kib.map(|k| k.saturating_mul(1024)),
                filter: filter.clone(),
            },
            write: input.write.clone(),
        },
        None if input.read.is_empty() => bail!("{}", driver::DriverError::NoInput),
        None => driver::Source::Files(input.read.clone()),
    };
    Ok(driver::Options {
        source,
        filter,
        count: input.count,
        duration: input.duration,
        threads: usize::from(input.threads),
        engine: engine_config(input),
    })
}

fn open_summary(input: &InputArgs) -> Result<Option<std::fs::File>> {
    Ok(match &input.summary {
        Some(p) => Some(std::fs::File::create(p).with_context(|| format!("cannot write summary {}", p.display()))?),
        None => None,
    })
}

/// Live as root: give up privileges once everything that needs them is open.
fn drop_privileges(input: &InputArgs) -> Result<Option<String>> {
    Ok(match privilege::drop_root(input.user.as_deref())? {
        Outcome::Dropped { user, uid, gid } => {
            Some(format!("dropped root privileges, running as {user} (uid {uid}, gid {gid})"))
        }
        Outcome::KeptRoot => Some("warning: -Z root: still running as root".to_string()),
        Outcome::NotRoot => None,
    })
}

/// A sink that shows an indicatif bar on stderr for long files.
struct WithProgress<'a> {
    on: &'a mut dyn FnMut(Session),
    bar: Option<indicatif::ProgressBar>,
}

impl driver::Sink for WithProgress<'_> {
    fn session(&mut self, s: Session) {
        (self.on)(s)
    }

    fn tick(&mut self, _open: &mut dyn driver::OpenSessions, p: &driver::Progress) {
        if let Some(pb) = &self.bar {
            if p.done {
                pb.finish_and_clear();
            } else {
                pb.set_position(p.bytes);
            }
        }
    }
}

/// Reads the input (files or live) through the engine, handing every finished session to `on`.
fn drive(input: &InputArgs, opts: driver::Options, on: &mut dyn FnMut(Session), stop_early: &AtomicBool) -> Result<()> {
    // Open everything that needs privileges first, then give them up; the summary file before
    // the device, so that a bad path fails before `-w` creates its file.
    let summary_file = open_summary(input)?;
    let opened = driver::Opened::open(opts)?;
    let live = opened.is_live();
    if live {
        if let Some(msg) = drop_privileges(input)? {
            say!("smtpscope: {msg}");
        }
        if !input.quiet {
            let dev = input.interface.as_deref().unwrap_or_default();
            let batching =
                if immediate_mode(dev, !input.no_immediate) { "" } else { ", kernel batching (up to 100 ms)" };
            // As tcpdump words it: the link type by name, and `-s 0` as the length it means.
            let lt = pcap::Linktype(opened.linktype());
            let link = match (lt.get_name(), lt.get_description()) {
                (Ok(name), Ok(desc)) => format!("{name} ({desc})"),
                _ => lt.0.to_string(),
            };
            let snaplen = if input.snaplen <= 0 { 262_144 } else { input.snaplen };
            say!("smtpscope: listening on {dev}, link-type {link}, snapshot length {snaplen} bytes{batching}");
        }
    }
    let stop = Arc::new(AtomicBool::new(false));
    if live {
        for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
            // A second signal while stopping exits at once.
            signal_hook::flag::register_conditional_shutdown(sig, 130, Arc::clone(&stop))?;
            signal_hook::flag::register(sig, Arc::clone(&stop))?;
        }
    }
    let total: u64 = input.read.iter().filter_map(|p| std::fs::metadata(p).ok()).map(|m| m.len()).sum();
    let bar = (!live && !input.no_progress && io::stderr().is_terminal() && total > 32 << 20).then(|| {
        let pb = indicatif::ProgressBar::new(total);
        pb.set_style(
            indicatif::ProgressStyle::with_template("{bar:40} {bytes}/{total_bytes} {bytes_per_sec} {msg}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        pb
    });
    let mut sink = WithProgress {
        on: &mut |s| {
            on(s);
            if stop_early.load(Ordering::Relaxed) {
                stop.store(true, Ordering::Relaxed);
            }
        },
        bar,
    };
    let summary = opened.run(&mut sink, &stop);
    let mut live_error = None;
    for s in &summary.sources {
        if let Some(m) = &s.error {
            if live {
                live_error = Some(format!("interface {}: {m}", s.name));
            } else {
                say!(
                    "smtpscope: warning: {}: read stopped after {} packets ({m}); sessions seen so far are reported",
                    s.name,
                    s.packets
                );
            }
        }
    }
    write_summary(input, &summary, summary_file)?;
    if let Some(e) = live_error {
        bail!("{e}");
    }
    if summary.nothing_read() {
        bail!("no packet could be read from the input");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_purge_delay_option_is_the_one_tuned() {
        // mimalloc 2.x documents 10 ms as purge_delay's default: the index names that option.
        if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
            assert_eq!(unsafe { mi_option_get(MI_OPTION_PURGE_DELAY) }, 10);
        }
        tune_allocator();
        assert_eq!(unsafe { mi_option_get(MI_OPTION_PURGE_DELAY) }, 0);
    }

    #[test]
    fn the_mail_ports_shown_in_help_are_the_engines_defaults() {
        let parsed: Vec<u16> = MAIL_PORTS_TEXT.split(',').map(|p| p.parse().unwrap()).collect();
        assert_eq!(parsed, smtpscope::engine::DEFAULT_MAIL_PORTS);
    }

    #[test]
    fn durations_take_units() {
        assert_eq!(parse_duration("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert!(parse_duration("5 parsecs").is_err());
    }

    #[test]
    fn the_command_line_parses_as_documented() {
        Cli::command().debug_assert();
        let c = Cli::try_parse_from(["smtpscope", "-r", "a.pcap", "host", "10.1.2.3"]).unwrap();
        assert_eq!(c.input.filter, ["host", "10.1.2.3"]);
        let c = Cli::try_parse_from([
            "smtpscope",
            "check",
            "-r",
            "a.pcap",
            "--expect",
            "plaintext",
            "--between",
            "10.1.0.0/24",
            "10.2.0.0/24",
        ])
        .unwrap();
        assert!(matches!(c.cmd, Some(Cmd::Check(_))));
    }

    use clap::CommandFactory;
}
