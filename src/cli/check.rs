//! `check`: prove TLS is really off (or on) between given hosts, from a policy or one rule.

use std::cell::RefCell;
use std::io::{self, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;

use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};

use smtpscope::check::{policy, Checker, JudgeOptions, NoTraffic, Outcome, Policy, Window};
use smtpscope::logs::hold::Linked;
use smtpscope::logs::LogRecord;
use smtpscope::report;
use smtpscope::report::logs::LogSummary;
use smtpscope::session::Session;

use super::input::{drive_with, driver_options, parse_time, InputArgs};
use super::report::display_filter;
use super::sensor::{Sensor, SensorArgs};

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// What the sessions must show (with --between or --from/--to).
    #[arg(long, value_enum)]
    pub expect: Option<ExpectArg>,

    /// Two host groups (addresses, CIDRs, helo:/banner:/cert: globs; comma-separated), either direction.
    #[arg(long, num_args = 2, value_names = ["A", "B"], conflicts_with_all = ["from", "to"])]
    pub between: Vec<String>,

    /// Client group (directed rule, with --to).
    #[arg(long, value_name = "A", requires = "to")]
    pub from: Option<String>,

    /// Server group (directed rule, with --from).
    #[arg(long, value_name = "B", requires = "from")]
    pub to: Option<String>,

    /// Only sessions to these server ports (comma-separated, 1-65535); with --policy too.
    #[arg(long, value_delimiter = ',', value_parser = clap::value_parser!(u16).range(1..))]
    pub port: Vec<u16>,

    /// With --expect plaintext: upgrade verbs the server must not offer (e.g. X-ANONYMOUSTLS).
    #[arg(long, value_delimiter = ',')]
    pub forbid_offer: Vec<String>,

    /// With --expect tls: lowest acceptable version (TLS1.2).
    #[arg(long)]
    pub min_version: Option<String>,

    /// Policy file (TOML): host groups and rules, first match wins.
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,

    /// Only sessions that start at or after this time (RFC 3339).
    #[arg(long, value_parser = parse_time)]
    pub since: Option<i64>,

    /// Only sessions that start before this time (RFC 3339).
    #[arg(long, value_parser = parse_time)]
    pub until: Option<i64>,

    /// A named rule that matched no session proves nothing: exit 3, "result: NOTHING PROVEN".
    /// This is the default; the option stays accepted.
    #[arg(long, conflicts_with = "allow_no_traffic")]
    pub require_traffic: bool,

    /// Let a named rule that matched no session pass (a typo in a CIDR or a capture filter that
    /// excluded everything looks the same: use with care). The [default] rule may always see nothing.
    #[arg(long)]
    pub allow_no_traffic: bool,

    /// Display filter: only the sessions it keeps are judged; the others are counted as left out.
    #[arg(short = 'Y', long = "display-filter", value_name = "FILTER")]
    pub display_filter: Option<String>,

    /// Accept TLS 1.3 sessions for certificate requirements (the certificate is not visible).
    #[arg(long)]
    accept_tls13_cert: bool,

    /// Output: text, json (NDJSON) or junit (JUnit XML).
    #[arg(short = 'F', long, value_enum, default_value = "text")]
    pub format: CheckFormat,

    #[command(flatten)]
    pub input: InputArgs,

    #[command(flatten)]
    pub sensor: SensorArgs,

    /// Server logs: alone (no -r/-R/-i), every log session is judged; beside -r or -i, a session
    /// the wire leaves unproven is decided by its matched log session (`proven_by: "log"`); with
    /// -i the files are followed and each finished session waits up to --log-wait for its log.
    #[command(flatten)]
    pub logs: super::logs::CrossArgs,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ExpectArg {
    Plaintext,
    Tls,
    Any,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum CheckFormat {
    Text,
    Json,
    Junit,
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
            let verbs = a.forbid_offer.iter().map(|v| policy::parse_verb(v, "check: --forbid-offer"));
            policy::Expect::Plaintext { forbid_offer: verbs.collect::<Result<_, _>>()? }
        }
        ExpectArg::Tls => policy::Expect::Tls {
            min_version: a
                .min_version
                .as_deref()
                .map(|v| policy::parse_version(v, "check: --min-version"))
                .transpose()?,
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

/// `check --logs` without a capture: the logs alone.
fn logs_alone(a: &CheckArgs) -> bool {
    !a.logs.logs.is_empty() && a.input.read.is_empty() && a.input.records.is_empty() && a.input.interface.is_none()
}

/// Every log session judged like a wire session; the summary is the `logs` subcommand's.
fn run_logs(a: &CheckArgs, checker: &mut Checker) -> Result<u64> {
    if a.logs.unmatched_logs.is_some() {
        bail!("--unmatched-logs lists the log sessions no wire session matched: it needs a capture (-r, -R or -i)");
    }
    if a.sensor.output.is_some() || a.input.write.is_some() {
        bail!("check --logs without -r reads no packets: --output and -w have nothing to write");
    }
    if a.logs.log_wait.is_some() {
        bail!("--log-wait is for a live capture (-i): the logs alone are read to their end, nothing waits");
    }
    let opts = a.logs.read.options(false, a.input.show_credentials)?;
    let summary_file = super::input::open_summary(&a.input)?;
    let mut summary = LogSummary::default();
    super::logs::read_all(&a.logs.logs, &opts, &mut summary, &mut |r| {
        checker.add_log(&r);
    });
    let read: u64 = summary.verdicts.values().sum();
    checker.log_sessions = Some(read);
    summary.reported = read - checker.filtered_out;
    if let Some(mut f) = summary_file {
        writeln!(f, "{}", report::json::to_line(&summary.to_json()))?;
    } else if !a.input.quiet {
        let _ = io::stderr().write_all(summary.to_text().as_bytes());
    }
    if summary.recognised() == 0 {
        for f in &summary.files {
            if let Some(e) = &f.error {
                say!("smtpscope: {e}");
            }
        }
        bail!("no input held a recognisable Exchange or Postfix log line");
    }
    Ok(read)
}

/// Writes the check's report in the chosen format.
fn write_report(a: &CheckArgs, checker: &Checker, no_traffic: NoTraffic) -> Result<()> {
    let mut out = io::stdout().lock();
    match a.format {
        CheckFormat::Text => out.write_all(checker.text(no_traffic).as_bytes())?,
        CheckFormat::Json => {
            for v in checker.ndjson(no_traffic) {
                writeln!(out, "{}", report::json::to_line(&v))?;
            }
        }
        CheckFormat::Junit => out.write_all(checker.junit(no_traffic).as_bytes())?,
    }
    out.flush()?;
    Ok(())
}

pub fn run(a: &CheckArgs) -> Result<ExitCode> {
    let pol = check_policy(a)?;
    let filter = display_filter(a.display_filter.as_deref())?;
    let no_traffic = if a.allow_no_traffic { NoTraffic::Allowed } else { NoTraffic::Unproven };
    let opts = JudgeOptions { accept_tls13_cert: a.accept_tls13_cert };
    if logs_alone(a) {
        let window = Window { since: a.since, until: a.until, ports: a.port.clone(), filter };
        let mut checker = Checker::new(pol, opts, window);
        run_logs(a, &mut checker)?;
        write_report(a, &checker, no_traffic)?;
        return Ok(ExitCode::from(checker.exit_code(no_traffic)));
    }
    let cross = super::logs::CrossRun::new(&a.logs, false, a.input.show_credentials)?;
    let live = a.input.interface.is_some();
    if let Some(c) = &cross {
        c.check_wait(live)?;
    }
    let mut driver = driver_options(&a.input)?;
    // Free text is matched against transcripts, which the engine records only when asked.
    driver.engine.transcript = filter.uses_text();
    a.sensor.apply(&a.input, &mut driver);
    let window = Window { since: a.since, until: a.until, ports: a.port.clone(), filter };
    let checker = RefCell::new(Checker::new(pol, opts, window));
    // The records go to --output as NDJSON; stdout keeps the judgements.
    let mut sensor = Sensor::start(&a.sensor, &a.input, report::Format::Json, report::Options::default())?;
    if a.policy.is_some() {
        // SIGHUP re-reads it.
        sensor.catch_hangup()?;
    }
    let sensor = RefCell::new(sensor);
    // Live, the logs are followed from now on (the files there now are opened before privileges
    // go) and each finished session waits up to --log-wait for its log sessions before it is
    // judged; over files every log line is read at the first session.
    let (cross, live_cross) = match cross {
        Some(c) if live => (None, Some(c.live()?)),
        c => (c, None),
    };
    let cross = RefCell::new(cross);
    let live_cross = RefCell::new(live_cross);
    // Live, violations and unproven sessions are written the moment they are judged (JUnit is
    // one document: it is written at the end only).
    let streaming = live && !matches!(a.format, CheckFormat::Junit);
    let stream_error = RefCell::new(None);
    // A reader that went away ends the run (as for the main command's records).
    let stopped = AtomicBool::new(false);
    // Judges a finished session beside the log sessions matched with it, counts and writes its
    // record, and streams its line.
    let judge = RefCell::new(|s: &Session, logs: &[&LogRecord]| {
        let judged = checker.borrow_mut().add_with_logs(s, logs);
        let mut sensor = sensor.borrow_mut();
        sensor.count(s);
        sensor.write(s);
        let Some(j) = judged else { return };
        if let Some(m) = &sensor.metrics {
            m.check_outcome(&j.rule, j.item.outcome.name());
        }
        if !streaming {
            return;
        }
        let Some(line) = j.streamed_line(matches!(a.format, CheckFormat::Json)) else { return };
        let mut out = io::stdout().lock();
        if let Err(e) = writeln!(out, "{line}").and_then(|()| out.flush()) {
            stream_error.borrow_mut().get_or_insert(e);
            stopped.store(true, std::sync::atomic::Ordering::Relaxed);
        }
    });
    // A session let go by the live cross-check, with the log sessions linked to it.
    let judge_linked = |s: Session, logs: Linked| {
        let logs: Vec<&LogRecord> = logs.iter().collect();
        (judge.borrow_mut())(&s, &logs);
    };
    let mut live_logs = None;
    let mut live_error = None;
    drive_with(
        &a.input,
        driver,
        &mut |mut s| {
            if let Some(l) = live_cross.borrow_mut().as_mut() {
                l.session(s, &mut |s, logs| judge_linked(s, logs));
                return;
            }
            let mut cross = cross.borrow_mut();
            let logs = match cross.as_mut() {
                Some(c) => c.link_matched(&mut s),
                None => Vec::new(),
            };
            (judge.borrow_mut())(&s, &logs);
        },
        &mut |p| {
            if let Some(l) = live_cross.borrow_mut().as_mut() {
                l.tick(&mut |s, logs| judge_linked(s, logs));
            }
            if sensor.borrow_mut().tick(p) && a.policy.is_some() {
                // SIGHUP: the policy is read again; a bad one leaves the old one judging.
                match check_policy(a) {
                    Ok(p) => {
                        checker.borrow_mut().replace_policy(p);
                        say!("smtpscope: policy re-read");
                    }
                    Err(e) => say!("smtpscope: keeping the old policy: {e:#}"),
                }
            }
        },
        &mut |summary| {
            // Sessions still waiting for their logs are judged (with what the logs show by
            // then) before the summary: stopping never loses one.
            if let Some(l) = live_cross.borrow_mut().take() {
                match l.finish(&mut |s, logs| judge_linked(s, logs), a.input.quiet) {
                    Ok(logs) => {
                        summary.logs = Some(logs.summary);
                        live_logs = Some((logs.log_sessions, logs.unmatched_in_span));
                    }
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
    if let Some(e) = stream_error.into_inner() {
        return Err(e.into());
    }
    let mut checker = checker.into_inner();
    if let Some((read, unmatched)) = live_logs {
        checker.log_sessions = Some(read);
        checker.logs_unmatched_in_span = Some(unmatched);
    }
    if let Some(mut c) = cross.into_inner() {
        checker.log_sessions = Some(c.log_sessions());
        checker.logs_unmatched_in_span = Some(c.unmatched_in_span());
        c.finish(a.input.quiet)?;
    }
    if streaming {
        // What was written as it was judged is not written again: the final report gives the
        // counts, and the sessions not yet listed (warnings, passes by a spoofable name).
        for r in &mut checker.results {
            r.items.retain(|it| !matches!(it.outcome, Outcome::Violation(_) | Outcome::Unproven(_)));
        }
    }
    write_report(a, &checker, no_traffic)?;
    if sensor.borrow().output_errors > 0 {
        return Ok(ExitCode::from(2));
    }
    Ok(ExitCode::from(checker.exit_code(no_traffic)))
}
