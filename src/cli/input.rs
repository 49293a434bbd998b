//! Input options every subcommand shares (files or a live interface, limits, the summary), and the
//! loop that drives the engine over them.

use std::io::{self, IsTerminal, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::Args;

use smtpscope::capture::live::{immediate_mode, LiveOptions};
use smtpscope::driver;
use smtpscope::engine::Config;
use smtpscope::privilege::{self, Outcome};
use smtpscope::report;
use smtpscope::session::Session;
use smtpscope::summary::Summary;

use super::MAIL_PORTS_TEXT;

#[derive(Debug, Args)]
pub struct InputArgs {
    /// Read packets from a capture file (pcap, pcapng, NetMon 2.x .cap, gzip/zstd-compressed pcap/pcapng; - is
    /// standard input, once); repeat to merge several by timestamp.
    #[arg(short = 'r', long = "read", value_name = "FILE", conflicts_with_all = ["interface", "list_interfaces"])]
    pub read: Vec<PathBuf>,

    /// Read session records (NDJSON written by smtpscope -F json; plain, gzip or zstd): a file, a
    /// directory or a quoted glob; repeat for several, mixed with -r, all merged by last_seen (no
    /// de-duplication). Not tshark's -R read filter: filter records with -Y.
    #[arg(short = 'R', long = "records", value_name = "PATH", conflicts_with_all = ["interface", "list_interfaces"])]
    pub records: Vec<String>,

    /// Capture live on an interface (`any` for all); sessions are reported as they end.
    #[arg(short = 'i', long = "interface", value_name = "IFACE")]
    pub interface: Option<String>,

    /// List the interfaces that can be captured on, like tcpdump -D.
    #[arg(short = 'D', long = "list-interfaces", conflicts_with = "interface")]
    pub list_interfaces: bool,

    /// Live: also write every captured packet to FILE (pcap). With -r (main command): write the
    /// packets of the sessions reported (those -Y keeps), as captured, in file order.
    #[arg(short = 'w', value_name = "FILE")]
    pub write: Option<PathBuf>,

    /// Stop after N packets (live, or the first N of the files, as tcpdump -r -c).
    #[arg(short = 'c', value_name = "N")]
    pub count: Option<u64>,

    /// Live: stop after this long (e.g. 30s, 10m, 1h).
    #[arg(long, value_name = "TIME", value_parser = parse_duration, requires = "interface")]
    pub duration: Option<Duration>,

    /// Live: do not put the interface into promiscuous mode.
    #[arg(short = 'p', long = "no-promiscuous-mode")]
    pub no_promisc: bool,

    /// Live: bytes captured per packet (default 262144).
    #[arg(short = 's', long = "snapshot-length", value_name = "BYTES")]
    pub snaplen: Option<i32>,

    /// Live: kernel buffer size in KiB (as tcpdump -B; default 8192).
    #[arg(short = 'B', long = "buffer-size", value_name = "KIB")]
    pub buffer_kib: Option<i32>,

    /// Live: let the kernel batch packets (delivered within 100 ms) instead of immediate mode,
    /// which is on by default except on `any`. Batching packs small packets densely into the
    /// ring: on a very busy link it rides out longer stalls.
    #[arg(long)]
    pub no_immediate: bool,

    /// Live, as root: the user to become once the device and files are open (default: the sudo
    /// caller, else nobody; `root` keeps root).
    #[arg(short = 'Z', long = "relinquish-privileges", value_name = "USER")]
    pub user: Option<String>,

    /// Mail ports: implicit TLS and non-SMTP payload are reported only on these, and a bare 3-digit greeting counts as SMTP only there (elsewhere a command only SMTP has is needed).
    #[arg(long, value_delimiter = ',', value_name = "PORTS", default_value = MAIL_PORTS_TEXT)]
    pub mail_ports: Vec<u16>,

    /// Most TCP flows held at once; the least recently active are evicted (and reported).
    #[arg(long, value_name = "N", default_value_t = 100_000)]
    pub max_flows: usize,

    /// Out-of-order bytes held per direction while waiting for a hole to fill.
    #[arg(long, value_name = "BYTES", default_value_t = 256 * 1024)]
    pub max_buffer: usize,

    /// Out-of-order bytes held by all flows together; a flow that goes past it lets go of what it
    /// holds (its holes become gaps).
    #[arg(long, value_name = "BYTES", default_value_t = 64 << 20)]
    pub max_buffer_total: usize,

    /// FORENSICS ONLY: decode AUTH PLAIN/LOGIN secrets seen in clear and print them (JSON key
    /// `credentials`). The output then holds passwords: keep it as secret as they are.
    #[arg(long)]
    pub show_credentials: bool,

    /// Files: 2 analyses the capture on a second thread while the first reads it and writes the
    /// records; 1 does all on one thread. The records are the same either way.
    #[arg(long, value_name = "N", default_value_t = 2, value_parser = clap::value_parser!(u8).range(1..=2))]
    pub threads: u8,

    /// Write the run summary as JSON to FILE instead of text on stderr.
    #[arg(long, value_name = "FILE")]
    pub summary: Option<PathBuf>,

    /// No summary on stderr.
    #[arg(short = 'q', long)]
    pub quiet: bool,

    /// Never show a progress bar.
    #[arg(long)]
    pub no_progress: bool,

    /// BPF capture filter, as in tcpdump (e.g. 'host 10.1.2.3 and port 25').
    #[arg(value_name = "EXPRESSION")]
    pub filter: Vec<String>,
}

impl InputArgs {
    /// The snapshot length for a live capture.
    pub fn snaplen(&self) -> i32 {
        match self.snaplen {
            Some(n) if n > 0 => n,
            _ => 262_144,
        }
    }

    /// A live-capture option given without `-i` (clap's `requires` is not checked for arguments
    /// that also conflict with others), which would otherwise be silently ignored. `-w` with
    /// files is allowed where `files_write` says so (the main command writes the reported
    /// sessions' packets).
    pub fn live_only_misuse(&self, files_write: bool) -> Option<&'static str> {
        if self.interface.is_some() {
            return None;
        }
        [
            (self.write.is_some() && !files_write, "-w"),
            (self.snaplen.is_some(), "-s"),
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

pub fn parse_duration(s: &str) -> Result<Duration, String> {
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

pub fn parse_time(s: &str) -> Result<i64, String> {
    let t = time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .map_err(|e| format!("'{s}' is not an RFC 3339 time (2026-11-22T10:00:00Z): {e}"))?;
    Ok((t.unix_timestamp_nanos() / 1000) as i64)
}

pub fn engine_config(input: &InputArgs) -> Config {
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

pub fn write_summary(input: &InputArgs, summary: &Summary, file: Option<std::fs::File>) -> Result<()> {
    if let Some(mut f) = file {
        writeln!(f, "{}", report::json::to_line(&summary.to_json()))?;
    } else if !input.quiet {
        let _ = io::stderr().write_all(summary.to_text().as_bytes());
    }
    Ok(())
}

/// The driver's options for these arguments.
pub fn driver_options(input: &InputArgs) -> Result<driver::Options> {
    let filter = (!input.filter.is_empty()).then(|| input.filter.join(" "));
    let source = match &input.interface {
        Some(dev) => driver::Source::Live {
            device: dev.clone(),
            options: LiveOptions {
                promisc: !input.no_promisc,
                snaplen: input.snaplen(),
                immediate: immediate_mode(dev, !input.no_immediate),
                buffer_size: input.buffer_kib.map(|k| k.saturating_mul(1024)),
                filter: filter.clone(),
            },
            write: input.write.clone(),
            ring: Default::default(),
        },
        None if input.read.is_empty() && input.records.is_empty() => bail!("{}", driver::DriverError::NoInput),
        None => driver::Source::Files(input.read.clone()),
    };
    Ok(driver::Options {
        source,
        filter,
        count: input.count,
        duration: input.duration,
        threads: usize::from(input.threads),
        engine: engine_config(input),
        idle_timeout: None,
    })
}

pub fn open_summary(input: &InputArgs) -> Result<Option<std::fs::File>> {
    Ok(match &input.summary {
        Some(p) => Some(std::fs::File::create(p).with_context(|| format!("cannot write summary {}", p.display()))?),
        None => None,
    })
}

/// Live as root: give up privileges once everything that needs them is open.
pub fn drop_privileges(input: &InputArgs) -> Result<Option<String>> {
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
    on_tick: &'a mut dyn FnMut(&driver::Progress),
    bar: Option<indicatif::ProgressBar>,
}

impl driver::Sink for WithProgress<'_> {
    fn session(&mut self, s: Session) {
        (self.on)(s)
    }

    fn tick(&mut self, _open: &mut dyn driver::OpenSessions, p: &driver::Progress) {
        (self.on_tick)(p);
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
pub fn drive(
    input: &InputArgs,
    opts: driver::Options,
    on: &mut dyn FnMut(Session),
    stop_early: &AtomicBool,
) -> Result<()> {
    drive_with(input, opts, on, &mut |_| {}, &mut |_| {}, stop_early)
}

/// [`drive`], with `on_tick` called about every [`driver::TICK`] and `on_done` given the run
/// summary before it is written.
pub fn drive_with(
    input: &InputArgs,
    opts: driver::Options,
    on: &mut dyn FnMut(Session),
    on_tick: &mut dyn FnMut(&driver::Progress),
    on_done: &mut dyn FnMut(&mut Summary),
    stop_early: &AtomicBool,
) -> Result<()> {
    // Open everything that needs privileges first, then give them up; the summary file before
    // the device, so that a bad path fails before `-w` creates its file.
    let summary_file = open_summary(input)?;
    let mut records = super::records::open(input)?;
    // A record keeps the sensor it names, unless --sensor names another.
    if let (Some(recs), Some(name)) = (records.as_mut(), opts.engine.sensor.clone()) {
        recs.set_sensor(name);
    }
    if let (Some(recs), true) = (records.as_mut(), super::records::only_records(input)) {
        let mut verdicts = std::collections::BTreeMap::new();
        while !stop_early.load(Ordering::Relaxed) {
            let Some(s) = recs.next_session() else { break };
            if let Some(v) = s.verdict {
                *verdicts.entry(v).or_insert(0u64) += 1;
            }
            on(s);
        }
        drop(summary_file);
        let mut summary = super::records::summary_of(&verdicts);
        on_done(&mut summary);
        super::records::finish(input, recs, Some(&summary))?;
        return Ok(());
    }
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
            let snaplen = input.snaplen();
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
    let mut from_records = std::collections::BTreeMap::new();
    let mut sink = WithProgress {
        on: &mut |s| {
            // Records that ended before this session go first: all inputs merged by last_seen.
            while let Some(r) = records.as_mut().and_then(|recs| recs.next_until(s.last_seen)) {
                if let Some(v) = r.verdict {
                    *from_records.entry(v).or_insert(0u64) += 1;
                }
                on(r);
            }
            on(s);
            if stop_early.load(Ordering::Relaxed) {
                stop.store(true, Ordering::Relaxed);
            }
        },
        on_tick,
        bar,
    };
    let mut summary = opened.run(&mut sink, &stop);
    if let Some(recs) = records.as_mut() {
        while !stop_early.load(Ordering::Relaxed) {
            let Some(r) = recs.next_session() else { break };
            if let Some(v) = r.verdict {
                *from_records.entry(v).or_insert(0u64) += 1;
            }
            on(r);
        }
        for (v, n) in from_records {
            *summary.stats.verdicts.entry(v).or_default() += n;
        }
        super::records::finish(input, recs, None)?;
    }
    on_done(&mut summary);
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
    fn durations_take_units() {
        assert_eq!(parse_duration("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert!(parse_duration("5 parsecs").is_err());
    }
}
