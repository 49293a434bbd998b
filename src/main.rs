//! smtpscope command line: tcpdump/tshark conventions (`-r`, trailing BPF expression).

use std::io::{self, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use clap::{Parser, ValueEnum};

use smtpscope::capture::{MergedReader, SourceEnd};
use smtpscope::engine::{Config, Engine, DEFAULT_MAIL_PORTS};
use smtpscope::report::summary::{SourceSummary, Summary};
use smtpscope::report::{self, Format, Options};

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
    #[arg(short = 'r', long = "read", value_name = "FILE", required = true)]
    read: Vec<PathBuf>,

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

const AFTER_HELP: &str = "Exit status: 0 ok, 2 usage or input error.\n\
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

fn run(cli: &Cli) -> Result<ExitCode> {
    let filter = (!cli.filter.is_empty()).then(|| cli.filter.join(" "));
    let mut reader = MergedReader::open(&cli.read, filter.as_deref())?;
    let names: Vec<Arc<str>> = reader.sources().iter().map(|s| s.name().clone()).collect();
    let mut cfg = Config { mail_ports: cli.mail_ports.clone(), ..Config::default() };
    cfg.limits.max_flows = cli.max_flows.max(1);
    cfg.limits.stream.max_buffered = cli.max_buffer;
    let mut engine = Engine::new(cfg, names, None);

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
    let mut writer = report::writer(format, out, Options { color, show_addresses: cli.show_addresses });

    let total = reader.total_size();
    let progress = (!cli.no_progress && io::stderr().is_terminal() && total > 32 << 20).then(|| {
        let pb = indicatif::ProgressBar::new(total);
        pb.set_style(
            indicatif::ProgressStyle::with_template("{bar:40} {bytes}/{total_bytes} {bytes_per_sec} {msg}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        pb
    });
    let io_err: std::cell::RefCell<Option<io::Error>> = std::cell::RefCell::new(None);
    let mut emit = |s: smtpscope::session::Session| {
        let mut err = io_err.borrow_mut();
        if err.is_none() {
            if let Err(e) = writer.write(&s) {
                *err = Some(e);
            }
        }
    };
    let mut read_bytes = 0u64;
    while let Some(p) = reader.next_packet() {
        read_bytes += u64::from(p.data.len() as u32) + 16;
        engine.packet(&p, &mut emit);
        if let Some(pb) = &progress {
            if engine.stats.packets % 4096 == 0 {
                pb.set_position(read_bytes.min(total));
            }
        }
        if io_err.borrow().is_some() {
            break;
        }
    }
    engine.finish(&mut emit);
    if let Some(pb) = progress {
        pb.finish_and_clear();
    }
    if let Some(e) = io_err.into_inner() {
        return Err(e.into());
    }
    writer.finish()?;

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
    if let Some(path) = &cli.summary {
        let mut f = std::fs::File::create(path).with_context(|| format!("cannot write summary {}", path.display()))?;
        writeln!(f, "{}", report::json::to_line(&summary.to_json()))?;
    } else if !cli.quiet {
        eprint!("{}", summary.to_text());
    }
    if !any_read && all_failed {
        bail!("no packet could be read from the input");
    }
    Ok(ExitCode::SUCCESS)
}
