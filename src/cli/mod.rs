//! The command line: one module per subcommand (`report` is the main command), the input options
//! they share in [`input`], and the exit status every runner's result maps to.

/// `eprintln!` that never panics: a closed stderr (`2>&-`, a reader that went away) must not turn
/// a run whose records went out into a crash.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

pub mod check;
pub mod diff;
pub mod generate;
pub mod input;
pub mod logs;
pub mod pairs;
pub mod records;
pub mod report;
pub mod sensor;

use std::io;
use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};

use check::CheckArgs;
use input::InputArgs;
use pairs::PairsArgs;
use report::ReportArgs;

/// The engine's default mail ports as `--help` shows them: in the comma form the option takes.
pub const MAIL_PORTS_TEXT: &str = "25,465,587,2525,475,717";

/// Watch SMTP on the wire: for every session, did mail travel in plaintext or inside TLS — and
/// the evidence.
#[derive(Debug, Parser)]
#[command(name = "smtpscope", version, about, after_help = AFTER_HELP, args_conflicts_with_subcommands = true)]
pub struct Cli {
    #[command(subcommand)]
    pub cmd: Option<Cmd>,
    #[command(flatten)]
    pub input: InputArgs,
    #[command(flatten)]
    pub out: ReportArgs,
    #[command(flatten)]
    pub logs: logs::CrossArgs,
}

// Parsed once per run: the size of its largest variant costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// Prove TLS is really off (or on) between given hosts; exit 0 pass, 1 violation, 3 unproven or
    /// a rule that matched no session.
    Check(CheckArgs),
    /// Who speaks TLS to whom: host pairs with verdict counts, offered and used upgrade verbs.
    Pairs(PairsArgs),
    /// Two capture points of one path: each session at both, and what the box between changed.
    Diff(diff::DiffArgs),
    /// Sessions from mail-server logs (Exchange protocol logs, Postfix); exit 0 when a log line was
    /// recognised, 2 when none was.
    Logs(logs::LogsArgs),
    /// Write the man pages or a shell's completions, generated from these definitions.
    #[command(hide = true)]
    Generate(generate::GenerateArgs),
}

const AFTER_HELP: &str = "Exit status: 0 ok, 2 usage or input error (check: 1 violation, 3 unproven, or a named rule \
that matched no session unless --allow-no-traffic). Options go after a subcommand: smtpscope check -r FILE ...\n\
Ctrl-C or SIGTERM ends a live capture cleanly (open sessions are reported); a second Ctrl-C exits at once.\n\
Verdicts: not-smtp, incomplete, implicit-tls, starttls, stripped, starttls-refused, starttls-failed,\n\
starttls-offered-unused, plaintext. The NDJSON schema is described in README.md.";

impl Cli {
    /// Usage errors clap cannot express: exits 2 with clap's usage message.
    pub fn reject_misuse(&self) {
        let input = match &self.cmd {
            None => &self.input,
            Some(Cmd::Check(a)) => &a.input,
            Some(Cmd::Pairs(a)) => &a.input,
            Some(Cmd::Generate(_) | Cmd::Diff(_) | Cmd::Logs(_)) => return,
        };
        if let Some(opt) = input.live_only_misuse(self.cmd.is_none()) {
            let only = if opt == "-w" {
                "applies to live capture (-i), or to `smtpscope -r FILE [-Y FILTER] -w OUT` (the reported sessions' packets)"
            } else {
                "applies to live capture (-i) only"
            };
            Cli::command().error(clap::error::ErrorKind::ArgumentConflict, format!("{opt} {only}")).exit();
        }
    }
}

/// Options given before a subcommand (`smtpscope -r f check --expect tls`) would otherwise be
/// read as the main command's, and the subcommand's name as a capture filter: the error says
/// where they go, with the command line reordered. `None` when the arguments are in order.
pub fn misplaced_subcommand(args: &[std::ffi::OsString]) -> Option<String> {
    let cmd = Cli::command();
    let subcommands: Vec<&str> = cmd.get_subcommands().map(|c| c.get_name()).collect();
    let takes_value = |a: &clap::Arg| a.get_action().takes_values();
    let long_takes = |name: &str| cmd.get_arguments().any(|a| a.get_long() == Some(name) && takes_value(a));
    let short_takes = |c: char| cmd.get_arguments().any(|a| a.get_short() == Some(c) && takes_value(a));
    let words: Vec<String> = args.iter().skip(1).map(|a| a.to_string_lossy().into_owned()).collect();
    let mut i = 0;
    while let Some(w) = words.get(i) {
        if w == "--" {
            return None;
        }
        if let Some(long) = w.strip_prefix("--") {
            i += if !long.contains('=') && long_takes(long) { 2 } else { 1 };
            continue;
        }
        if let Some(cluster) = w.strip_prefix('-').filter(|c| !c.is_empty()) {
            // The first short option that takes a value takes the rest of the word, or the next.
            let value_at = cluster.char_indices().find(|(_, c)| short_takes(*c));
            i += match value_at {
                Some((at, c)) if at + c.len_utf8() == cluster.len() => 2,
                _ => 1,
            };
            continue;
        }
        // The first word that is no option: a subcommand here comes too late.
        if i == 0 || !subcommands.contains(&w.as_str()) {
            return None;
        }
        let before = words.get(..i).unwrap_or_default().join(" ");
        let after = words.get(i + 1..).unwrap_or_default().join(" ");
        return Some(format!(
            "options go after the subcommand: `smtpscope {w} {before}{}{after}` (the main command's options before `{w}` would be read as its own, and `{w}` as a capture filter)",
            if after.is_empty() { "" } else { " " }
        ));
    }
    None
}

/// The exit status for a runner's result: errors are one line on stderr and exit 2; a reader that
/// closed our stdout is no error.
pub fn exit_code(result: anyhow::Result<ExitCode>) -> ExitCode {
    match result {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mail_ports_shown_in_help_are_the_engines_defaults() {
        let parsed: Vec<u16> = MAIL_PORTS_TEXT.split(',').map(|p| p.parse().unwrap()).collect();
        assert_eq!(parsed, smtpscope::engine::DEFAULT_MAIL_PORTS);
    }

    fn misplaced(args: &[&str]) -> Option<String> {
        let v: Vec<std::ffi::OsString> = args.iter().map(Into::into).collect();
        misplaced_subcommand(&v)
    }

    #[test]
    fn options_before_a_subcommand_are_named_with_the_order_meant() {
        let e = misplaced(&["smtpscope", "-r", "f.pcap", "check", "--expect", "tls"]).unwrap();
        assert!(e.starts_with("options go after the subcommand: `smtpscope check -r f.pcap --expect tls`"), "{e}");
        assert!(misplaced(&["smtpscope", "-q", "pairs", "-r", "f.pcap"]).is_some());
        assert!(misplaced(&["smtpscope", "-qr", "f.pcap", "pairs"]).is_some());
        // In order, or a file or a filter word that only looks like one: no error.
        assert_eq!(misplaced(&["smtpscope", "check", "-r", "f.pcap", "--expect", "tls"]), None);
        assert_eq!(misplaced(&["smtpscope", "-r", "check"]), None);
        assert_eq!(misplaced(&["smtpscope", "-r", "f.pcap", "host", "check"]), None);
        assert_eq!(misplaced(&["smtpscope", "--read=f.pcap", "-Y", "port:25"]), None);
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
}
