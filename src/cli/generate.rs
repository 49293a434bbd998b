//! `generate`: the man pages and shell completions, generated from the clap definitions so that
//! they never disagree with `--help` (`make install` runs it).

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Args, CommandFactory, Subcommand, ValueEnum};
use roff::{bold, roman, Roff};

use super::Cli;

#[derive(Debug, Args)]
pub struct GenerateArgs {
    #[command(subcommand)]
    pub what: What,
}

#[derive(Debug, Subcommand)]
pub enum What {
    /// smtpscope(1) and a page per subcommand (smtpscope-check(1), ...) into DIR.
    Man {
        /// Directory the pages are written to (created if missing).
        dir: PathBuf,
    },
    /// A shell's completion script, on stdout.
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: Shell,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
}

/// The verdicts, first matching rule wins: what `smtpscope(1)` says under VERDICTS.
const VERDICTS: [(&str, &str); 9] = [
    ("not-smtp", "a stream on a mail port whose payload is neither SMTP nor TLS."),
    (
        "incomplete",
        "the capture's edges hide the outcome: (a) payload sent but none captured (snaplen); (b) no TCP handshake \
         and no cleartext reply to EHLO/HELO captured (mid-session start); (c) EHLO/HELO/LHLO sent, no reply \
         captured; (d) upgrade verb sent, no reply captured; (e) the capture ends after the EHLO reply before any \
         further command or close; (f) the EHLO reply was cut before its last line and the session did not \
         upgrade; (g) a gap in the captured bytes covers what would decide (a)-(f).",
    ),
    ("implicit-tls", "the client's first bytes are a TLS ClientHello on a mail port."),
    ("starttls", "STARTTLS or X-ANONYMOUSTLS, answered 220, then ClientHello and ServerHello."),
    (
        "stripped",
        "the first cleartext EHLO reply lacks STARTTLS and carries XXXXXXXA (any case), or STARTTLS after such a \
         reply got 500/502, and no TLS followed.",
    ),
    ("starttls-refused", "the upgrade verb was answered with anything but 220."),
    ("starttls-failed", "220 to the upgrade verb, but no ServerHello follows."),
    ("starttls-offered-unused", "STARTTLS or X-ANONYMOUSTLS offered, never sent; the client went on in clear."),
    ("plaintext", "everything else in clear (STARTTLS not offered, HELO only, ...)."),
];

/// Writes what was asked for.
pub fn run(a: &GenerateArgs) -> Result<ExitCode> {
    match &a.what {
        What::Man { dir } => write_man_pages(dir)?,
        What::Completions { shell } => {
            let shell = match shell {
                Shell::Bash => clap_complete::Shell::Bash,
                Shell::Zsh => clap_complete::Shell::Zsh,
                Shell::Fish => clap_complete::Shell::Fish,
            };
            // Into memory first: the generator panics on a write error (`| head`).
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "smtpscope", &mut script);
            let mut out = io::stdout().lock();
            out.write_all(&script)?;
            out.flush()?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// One page per command, as clap_mangen names them; the main page also gets VERDICTS and EXIT
/// STATUS, which `--help` only summarises.
fn write_man_pages(dir: &Path) -> Result<()> {
    fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let cmd = Cli::command();
    clap_mangen::generate_to(cmd.clone(), dir)
        .with_context(|| format!("cannot write man pages to {}", dir.display()))?;
    let main = dir.join("smtpscope.1");
    let mut page = fs::OpenOptions::new().append(true).open(&main).with_context(|| main.display().to_string())?;
    page.write_all(extra_sections().as_bytes())?;
    Ok(())
}

fn extra_sections() -> String {
    let mut r = Roff::new();
    r.control("SH", ["VERDICTS"]);
    r.text([roman(
        "Each session gets one verdict, the first rule that matches (docs/verdicts.md has the full rules and \
         the evidence each one cites):",
    )]);
    for (name, rule) in VERDICTS {
        r.control("TP", []);
        r.text([bold(name)]);
        r.text([roman(rule)]);
    }
    r.control("SH", ["EXIT STATUS"]);
    r.text([roman(
        "0 ok; 2 usage or input error. check: 0 pass, 1 violation, 3 unproven, or a named rule that matched no \
         session (NOTHING PROVEN; --allow-no-traffic accepts it). A reader that closes the output early is no error.",
    )]);
    r.control("SH", ["SEE ALSO"]);
    r.text([roman("tcpdump(1), tshark(1), pcap-filter(7)")]);
    r.render()
}
