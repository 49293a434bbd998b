//! smtpscope command line: tcpdump/tshark conventions (`-r`, `-i`, `-w`, trailing BPF), plus the
//! `check` and `pairs` subcommands. Parsing and wiring only: the work is in the library.

use std::io::{self, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand, ValueEnum};

use smtpscope::capture::live::{list_devices, LiveOptions, LiveReader, LiveSource};
use smtpscope::capture::{FileReader, MergedReader, SourceEnd};
use smtpscope::check::{policy, Checker, JudgeOptions, Policy, Window};
use smtpscope::engine::{Config, Engine, DEFAULT_MAIL_PORTS};
use smtpscope::privilege::{self, Outcome};
use smtpscope::report::pairs::Pairs;
use smtpscope::report::summary::{SourceSummary, Summary};
use smtpscope::report::{self, Format, Options};
use smtpscope::session::Session;

/// mimalloc (v2): a session is dozens of small, short-lived allocations (evidence, replies,
/// buffers, the record), and with the reader thread batches cross threads; on the 2 GB lab
/// capture it cut the two-thread wall time by ~11 % for ~7 MB more peak RSS (BENCHMARKS.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

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

    /// Live: deliver every packet at once instead of in kernel batches of at most 100 ms (with
    /// a large snapshot length, raise -B: the ring then holds only buffer/snaplen packets).
    #[arg(long)]
    immediate: bool,

    /// Live: batched delivery, the default (kept for scripts written when immediate was).
    #[arg(long, hide = true, conflicts_with = "immediate")]
    no_immediate: bool,

    /// Live, as root: the user to become once the device and files are open (default: the sudo
    /// caller, else nobody; `root` keeps root).
    #[arg(short = 'Z', long = "relinquish-privileges", value_name = "USER")]
    user: Option<String>,

    /// Mail ports: implicit TLS and non-SMTP payload are reported only on these.
    #[arg(long, value_delimiter = ',', value_name = "PORTS", default_values_t = DEFAULT_MAIL_PORTS)]
    mail_ports: Vec<u16>,

    /// Most TCP flows held at once; the least recently active are evicted (and reported).
    #[arg(long, value_name = "N", default_value_t = 100_000)]
    max_flows: usize,

    /// Out-of-order bytes held per direction while waiting for a hole to fill.
    #[arg(long, value_name = "BYTES", default_value_t = 256 * 1024)]
    max_buffer: usize,

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
    #[arg(value_name = "EXPRESSION", trailing_var_arg = true)]
    filter: Vec<String>,
}

#[derive(Debug, Args)]
struct ReportArgs {
    /// Output format: table, json (NDJSON, one object per session) or csv.
    #[arg(short = 'F', long, value_enum, default_value = "table")]
    format: FormatArg,

    /// Print envelope addresses (MAIL FROM / RCPT TO) in full; by default only their domains.
    #[arg(long)]
    show_addresses: bool,

    /// Colour the table: auto (terminal and NO_COLOR unset), always, never.
    #[arg(long, value_name = "WHEN", default_value = "auto")]
    color: ColorArg,
}

#[derive(Debug, Args)]
struct CheckArgs {
    /// What the sessions must show (with --between or --from/--to).
    #[arg(long, value_enum, conflicts_with = "policy")]
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

    /// Only these server ports (comma-separated).
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
    let cli = Cli::parse();
    match run(&cli) {
        Ok(code) => code,
        Err(e) => {
            if e.downcast_ref::<io::Error>().is_some_and(|io| io.kind() == io::ErrorKind::BrokenPipe) {
                return ExitCode::SUCCESS;
            }
            eprintln!("smtpscope: {e:#}");
            ExitCode::from(2)
        }
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
    Ok(Duration::from_secs_f64(secs))
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
        for (n, d) in list_devices()?.iter().enumerate() {
            let desc = d.description.as_deref().map(|x| format!(" ({x})")).unwrap_or_default();
            println!("{}.{}{desc} [{}]", n + 1, d.name, d.flags.join(", "));
        }
        return Ok(ExitCode::SUCCESS);
    }
    let format = match out.format {
        FormatArg::Table => Format::Table,
        FormatArg::Json => Format::Json,
        FormatArg::Csv => Format::Csv,
    };
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
        &mut |s| {
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

fn check_policy(a: &CheckArgs) -> Result<Policy> {
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
    Ok(Policy { rules: vec![policy::Rule { name, hosts, ports: a.port.clone(), expect }] })
}

fn run_check(a: &CheckArgs) -> Result<ExitCode> {
    let pol = check_policy(a)?;
    let opts = JudgeOptions { accept_tls13_cert: a.accept_tls13_cert };
    let mut checker = Checker::new(pol, opts, Window { since: a.since, until: a.until });
    drive(&a.input, &mut |s| checker.add(&s), &AtomicBool::new(false))?;
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
    drive(&a.input, &mut |s| pairs.add(&s), &AtomicBool::new(false))?;
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
    cfg.keep_credentials = input.show_credentials;
    if input.show_credentials {
        eprintln!("smtpscope: warning: --show-credentials: AUTH secrets seen in clear will be printed");
    }
    cfg
}

fn write_summary(input: &InputArgs, summary: &Summary, file: Option<std::fs::File>) -> Result<()> {
    if let Some(mut f) = file {
        writeln!(f, "{}", report::json::to_line(&summary.to_json()))?;
    } else if !input.quiet {
        eprint!("{}", summary.to_text());
    }
    Ok(())
}

/// Reads the input (files or live) through the engine, handing every finished session to `on`.
fn drive(input: &InputArgs, on: &mut dyn FnMut(Session), stop_early: &AtomicBool) -> Result<()> {
    if let Some(dev) = &input.interface {
        return drive_live(input, dev, on, stop_early);
    }
    if input.read.is_empty() {
        bail!("nothing to read: give -r FILE or -i INTERFACE (see --help)");
    }
    let summary_file = match &input.summary {
        Some(p) => Some(std::fs::File::create(p).with_context(|| format!("cannot write summary {}", p.display()))?),
        None => None,
    };
    let filter = (!input.filter.is_empty()).then(|| input.filter.join(" "));
    let reader = MergedReader::open(&input.read, filter.as_deref())?;
    let names: Vec<Arc<str>> = reader.sources().iter().map(|s| s.name().clone()).collect();
    let mut engine = Engine::new(engine_config(input), names, None);
    let mut reader = FileReader::new(reader, usize::from(input.threads)).context("cannot start the reader thread")?;

    let total = reader.total_size();
    let progress = (!input.no_progress && io::stderr().is_terminal() && total > 32 << 20).then(|| {
        let pb = indicatif::ProgressBar::new(total);
        pb.set_style(
            indicatif::ProgressStyle::with_template("{bar:40} {bytes}/{total_bytes} {bytes_per_sec} {msg}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        pb
    });
    let mut read_bytes = 0u64;
    while let Some(p) = reader.next_packet() {
        // pcap record header + captured bytes: close enough to the file offset for progress.
        read_bytes += p.data.len() as u64 + 16;
        engine.packet(&p, on);
        if let Some(pb) = &progress {
            if engine.stats.packets % 4096 == 0 {
                pb.set_position(read_bytes.min(total));
            }
        }
        if stop_early.load(Ordering::Relaxed) || input.count.is_some_and(|c| engine.stats.packets >= c) {
            break;
        }
    }
    engine.finish(on);
    if let Some(pb) = progress {
        pb.finish_and_clear();
    }
    let reader = reader.finish().context("the capture reader thread failed")?;
    let mut sources = Vec::new();
    let mut any_read = false;
    let mut all_failed = true;
    for s in reader.sources() {
        let error = match s.end() {
            Some(SourceEnd::Truncated(m)) => Some(m.clone()),
            _ => None,
        };
        any_read |= s.frames() > 0;
        all_failed &= error.is_some();
        if let Some(m) = &error {
            eprintln!(
                "smtpscope: warning: {}: read stopped after {} packets ({m}); sessions seen so far are reported",
                s.name(),
                s.frames()
            );
        }
        sources.push(SourceSummary { name: s.name().to_string(), packets: s.frames(), error });
    }
    let summary = Summary { sources, stats: engine.stats.clone(), table: engine.table_stats(), dropped: None };
    write_summary(input, &summary, summary_file)?;
    if !any_read && all_failed {
        bail!("no packet could be read from the input");
    }
    Ok(())
}

fn drive_live(input: &InputArgs, dev: &str, on: &mut dyn FnMut(Session), stop_early: &AtomicBool) -> Result<()> {
    let opts = LiveOptions {
        promisc: !input.no_promisc,
        snaplen: input.snaplen,
        immediate: input.immediate && !input.no_immediate,
        buffer_size: input.buffer_kib.map(|k| k.saturating_mul(1024)),
        filter: (!input.filter.is_empty()).then(|| input.filter.join(" ")),
    };
    // Open everything that needs privileges first, then give them up.
    let src = LiveSource::open(dev, &opts, input.write.as_deref())?;
    let summary_file = match &input.summary {
        Some(p) => Some(std::fs::File::create(p).with_context(|| format!("cannot write summary {}", p.display()))?),
        None => None,
    };
    match privilege::drop_root(input.user.as_deref())? {
        Outcome::Dropped { user, uid, gid } => {
            eprintln!("smtpscope: dropped root privileges, running as {user} (uid {uid}, gid {gid})")
        }
        Outcome::KeptRoot => eprintln!("smtpscope: warning: -Z root: still running as root"),
        Outcome::NotRoot => {}
    }
    if !input.quiet {
        eprintln!("smtpscope: listening on {dev}, link-type {}, snapshot length {}", src.linktype(), input.snaplen);
    }
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        // A second signal while stopping exits at once.
        signal_hook::flag::register_conditional_shutdown(sig, 130, Arc::clone(&stop))?;
        signal_hook::flag::register(sig, Arc::clone(&stop))?;
    }
    let mut engine = Engine::new(engine_config(input), Vec::new(), Some(Arc::from(dev)));
    // A capture thread drains the kernel ring (started once privileges are dropped).
    let mut src = LiveReader::new(src, input.count).context("cannot start the capture thread")?;
    let started = Instant::now();
    let counted = |e: &Engine| input.count.is_some_and(|c| e.stats.packets >= c);
    while !stop.load(Ordering::Relaxed)
        && !stop_early.load(Ordering::Relaxed)
        && !counted(&engine)
        && input.duration.is_none_or(|d| started.elapsed() < d)
    {
        if let Some(p) = src.next_packet(Duration::from_millis(100))? {
            engine.packet(&p, on);
        }
    }
    // Drain what libpcap still holds, unless -c says we are done.
    src.stop();
    while !counted(&engine) {
        match src.next_packet(Duration::ZERO)? {
            Some(p) => engine.packet(&p, on),
            None => break,
        }
    }
    engine.finish(on);
    src.close_savefile()?;
    let drops = src.drops();
    let summary = Summary {
        sources: vec![SourceSummary { name: dev.to_string(), packets: src.frames(), error: None }],
        stats: engine.stats.clone(),
        table: engine.table_stats(),
        dropped: drops.map(|d| d.dropped + d.if_dropped),
    };
    write_summary(input, &summary, summary_file)
}

#[cfg(test)]
mod tests {
    use super::*;

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
