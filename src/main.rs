//! smtpscope command line: tcpdump/tshark conventions (`-r`, trailing BPF expression).

use std::io::{self, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::{Parser, ValueEnum};

use smtpscope::capture::live::{list_devices, LiveOptions, LiveSource};
use smtpscope::capture::{MergedReader, SourceEnd};
use smtpscope::engine::{Config, Engine, DEFAULT_MAIL_PORTS};
use smtpscope::privilege::{self, Outcome};
use smtpscope::report::summary::{SourceSummary, Summary};
use smtpscope::report::{self, Format, Options};
use smtpscope::session::Session;

#[derive(Debug, Clone, Copy, ValueEnum)]
enum FormatArg {
    Table,
    Json,
    Csv,
}

/// Watch SMTP on the wire: for every session, did mail travel in plaintext or inside TLS — and
/// the evidence.
#[derive(Debug, Parser)]
#[command(name = "smtpscope", version, about, after_help = AFTER_HELP)]
struct Cli {
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

    /// Live: kernel buffer size in KiB (as tcpdump -B).
    #[arg(short = 'B', long = "buffer-size", value_name = "KIB")]
    buffer_kib: Option<i32>,

    /// Live: let the kernel batch packets (immediate mode is on by default).
    #[arg(long)]
    no_immediate: bool,

    /// Live, as root: the user to become once the device and files are open (default: the sudo
    /// caller, else nobody; `root` keeps root).
    #[arg(short = 'Z', long = "relinquish-privileges", value_name = "USER")]
    user: Option<String>,

    /// Output format: table, json (NDJSON, one object per session) or csv.
    #[arg(short = 'F', long, value_enum, default_value = "table")]
    format: FormatArg,

    /// Write the run summary as JSON to FILE instead of text on stderr.
    #[arg(long, value_name = "FILE")]
    summary: Option<PathBuf>,

    /// Mail ports: implicit TLS and non-SMTP payload are reported only on these.
    #[arg(long, value_delimiter = ',', value_name = "PORTS", default_values_t = DEFAULT_MAIL_PORTS)]
    mail_ports: Vec<u16>,

    /// Most TCP flows held at once; the least recently active are evicted (and reported).
    #[arg(long, value_name = "N", default_value_t = 200_000)]
    max_flows: usize,

    /// Out-of-order bytes held per direction while waiting for a hole to fill.
    #[arg(long, value_name = "BYTES", default_value_t = 256 * 1024)]
    max_buffer: usize,

    /// Print envelope addresses (MAIL FROM / RCPT TO) in full; by default only their domains.
    #[arg(long)]
    show_addresses: bool,

    /// No summary on stderr.
    #[arg(short = 'q', long)]
    quiet: bool,

    /// Never show a progress bar.
    #[arg(long)]
    no_progress: bool,

    /// Colour the table: auto (terminal and NO_COLOR unset), always, never.
    #[arg(long, value_name = "WHEN", default_value = "auto")]
    color: ColorArg,

    /// BPF capture filter, as in tcpdump (e.g. 'host 10.1.2.3 and port 25').
    #[arg(value_name = "EXPRESSION", trailing_var_arg = true)]
    filter: Vec<String>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum ColorArg {
    Auto,
    Always,
    Never,
}

const AFTER_HELP: &str = "Exit status: 0 ok, 2 usage or input error. Ctrl-C or SIGTERM ends a live capture \
cleanly (open sessions are reported); a second Ctrl-C exits at once.\n\
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

    fn finish(mut self) -> Result<()> {
        if let Some(e) = self.error.take() {
            return Err(e.into());
        }
        self.writer.finish()?;
        Ok(())
    }
}

fn sink(cli: &Cli) -> Sink<'static> {
    let format = match cli.format {
        FormatArg::Table => Format::Table,
        FormatArg::Json => Format::Json,
        FormatArg::Csv => Format::Csv,
    };
    let stdout = io::stdout();
    let color = match cli.color {
        ColorArg::Always => true,
        ColorArg::Never => false,
        ColorArg::Auto => stdout.is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()),
    };
    let out = Box::new(io::BufWriter::with_capacity(64 * 1024, stdout.lock()));
    Sink { writer: report::writer(format, out, Options { color, show_addresses: cli.show_addresses }), error: None }
}

fn engine_config(cli: &Cli) -> Config {
    let mut cfg = Config { mail_ports: cli.mail_ports.clone(), ..Config::default() };
    cfg.limits.max_flows = cli.max_flows.max(1);
    cfg.limits.stream.max_buffered = cli.max_buffer;
    cfg
}

fn report_summary(cli: &Cli, summary: &Summary) -> Result<()> {
    if let Some(path) = &cli.summary {
        let mut f = std::fs::File::create(path).with_context(|| format!("cannot write summary {}", path.display()))?;
        writeln!(f, "{}", report::json::to_line(&summary.to_json()))?;
    } else if !cli.quiet {
        eprint!("{}", summary.to_text());
    }
    Ok(())
}

fn run(cli: &Cli) -> Result<ExitCode> {
    if cli.list_interfaces {
        for (n, d) in list_devices()?.iter().enumerate() {
            let desc = d.description.as_deref().map(|x| format!(" ({x})")).unwrap_or_default();
            println!("{}.{}{desc} [{}]", n + 1, d.name, d.flags.join(", "));
        }
        return Ok(ExitCode::SUCCESS);
    }
    if let Some(dev) = &cli.interface {
        return run_live(cli, dev);
    }
    if cli.read.is_empty() {
        bail!("nothing to read: give -r FILE or -i INTERFACE (see --help)");
    }
    run_files(cli)
}

fn run_files(cli: &Cli) -> Result<ExitCode> {
    let filter = (!cli.filter.is_empty()).then(|| cli.filter.join(" "));
    let mut reader = MergedReader::open(&cli.read, filter.as_deref())?;
    let names: Vec<Arc<str>> = reader.sources().iter().map(|s| s.name().clone()).collect();
    let mut engine = Engine::new(engine_config(cli), names, None);
    let mut sink = sink(cli);

    let total = reader.total_size();
    let progress = (!cli.no_progress && io::stderr().is_terminal() && total > 32 << 20).then(|| {
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
        engine.packet(&p, &mut |s| sink.emit(s));
        if let Some(pb) = &progress {
            if engine.stats.packets % 4096 == 0 {
                pb.set_position(read_bytes.min(total));
            }
        }
        if sink.error.is_some() || cli.count.is_some_and(|c| engine.stats.packets >= c) {
            break;
        }
    }
    engine.finish(&mut |s| sink.emit(s));
    if let Some(pb) = progress {
        pb.finish_and_clear();
    }
    sink.finish()?;

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
    report_summary(cli, &summary)?;
    if !any_read && all_failed {
        bail!("no packet could be read from the input");
    }
    Ok(ExitCode::SUCCESS)
}

fn run_live(cli: &Cli, dev: &str) -> Result<ExitCode> {
    let opts = LiveOptions {
        promisc: !cli.no_promisc,
        snaplen: cli.snaplen,
        immediate: !cli.no_immediate,
        buffer_size: cli.buffer_kib.map(|k| k.saturating_mul(1024)),
        filter: (!cli.filter.is_empty()).then(|| cli.filter.join(" ")),
    };
    // Open everything that needs privileges first, then give them up.
    let mut src = LiveSource::open(dev, &opts, cli.write.as_deref())?;
    let summary_file = match &cli.summary {
        Some(p) => Some(std::fs::File::create(p).with_context(|| format!("cannot write summary {}", p.display()))?),
        None => None,
    };
    match privilege::drop_root(cli.user.as_deref())? {
        Outcome::Dropped { user, uid, gid } => {
            eprintln!("smtpscope: dropped root privileges, running as {user} (uid {uid}, gid {gid})")
        }
        Outcome::KeptRoot => eprintln!("smtpscope: warning: -Z root: still running as root"),
        Outcome::NotRoot => {}
    }
    if !cli.quiet {
        eprintln!("smtpscope: listening on {dev}, link-type {}, snapshot length {}", src.linktype(), cli.snaplen);
    }

    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        // A second signal while stopping exits at once.
        signal_hook::flag::register_conditional_shutdown(sig, 130, Arc::clone(&stop))?;
        signal_hook::flag::register(sig, Arc::clone(&stop))?;
    }
    let mut engine = Engine::new(engine_config(cli), Vec::new(), Some(Arc::from(dev)));
    let mut sink = sink(cli);
    let started = Instant::now();
    let done = |engine: &Engine| {
        cli.count.is_some_and(|c| engine.stats.packets >= c) || cli.duration.is_some_and(|d| started.elapsed() >= d)
    };
    while !stop.load(Ordering::Relaxed) && !done(&engine) && sink.error.is_none() {
        if let Some(p) = src.next_packet(Duration::from_millis(100))? {
            engine.packet(&p, &mut |s| sink.emit(s));
        }
    }
    // Drain what libpcap still holds, unless -c says we are done.
    while cli.count.is_none_or(|c| engine.stats.packets < c) {
        match src.next_packet(Duration::ZERO)? {
            Some(p) => engine.packet(&p, &mut |s| sink.emit(s)),
            None => break,
        }
    }
    engine.finish(&mut |s| sink.emit(s));
    src.close_savefile()?;
    let drops = src.drops();
    sink.finish()?;
    let summary = Summary {
        sources: vec![SourceSummary { name: dev.to_string(), packets: src.frames(), error: None }],
        stats: engine.stats.clone(),
        table: engine.table_stats(),
        dropped: drops.map(|d| d.dropped + d.if_dropped),
    };
    if let Some(mut f) = summary_file {
        writeln!(f, "{}", report::json::to_line(&summary.to_json()))?;
    } else if !cli.quiet {
        eprint!("{}", summary.to_text());
    }
    Ok(ExitCode::SUCCESS)
}
