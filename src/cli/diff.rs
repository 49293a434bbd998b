//! `diff`: the same sessions captured at two points, and what the box between them changed.

use std::io::{self, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Result};
use clap::{Args, ValueEnum};

use smtpscope::diff::{self, output, Settings};
use smtpscope::report;

use super::input::parse_duration;

#[derive(Debug, Args)]
pub struct DiffArgs {
    /// A B [EXPRESSION]: the two points (each a capture file, a directory or a quoted glob, its
    /// files merged by time; a side given with -a/-b takes no positional), then a BPF expression
    /// applied to both.
    #[arg(value_name = "A B [EXPRESSION]", num_args = 0..)]
    pub args: Vec<String>,

    /// Add a capture file to point A (repeatable).
    #[arg(short = 'a', value_name = "FILE")]
    pub a: Vec<PathBuf>,

    /// Add a capture file to point B (repeatable).
    #[arg(short = 'b', value_name = "FILE")]
    pub b: Vec<PathBuf>,

    /// Output: table, or json (NDJSON: one object per session, then a summary line).
    #[arg(short = 'F', long, value_enum, default_value = "table")]
    pub format: DiffFormat,

    /// Side-by-side transcripts in the terminal, the lines a change names highlighted.
    #[arg(long, conflicts_with = "format")]
    pub tui: bool,

    /// Exit 1 when any change or a session seen at one point only exists (as git diff --exit-code).
    #[arg(long)]
    pub exit_code: bool,

    /// Largest clock offset between the captures looked for.
    #[arg(long, value_name = "TIME", value_parser = parse_duration, default_value = "24h")]
    pub max_offset: Duration,

    /// Largest difference of a session's start times at the two points once the offset is removed.
    #[arg(long, value_name = "TIME", value_parser = parse_duration, default_value = "2s")]
    pub max_skew: Duration,

    /// How long after a session a TLS-terminating relay's onward session may start.
    #[arg(long, value_name = "TIME", value_parser = parse_duration, default_value = "30s")]
    pub relay_window: Duration,

    /// Print envelope addresses in the records in full; by default only their domains.
    #[arg(long)]
    pub show_addresses: bool,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum DiffFormat {
    Table,
    Json,
}

fn micros(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

/// The two sides' files and the expression, from the positionals and -a/-b.
fn sides(a: &DiffArgs) -> Result<(Vec<PathBuf>, Vec<PathBuf>, Option<String>)> {
    let mut rest = a.args.iter();
    let mut side = |given: &[PathBuf], name: &str| -> Result<Vec<PathBuf>> {
        let mut files = Vec::new();
        for f in given {
            files.extend(diff::expand_input(f)?);
        }
        if given.is_empty() {
            let Some(arg) = rest.next() else {
                bail!("point {name} is missing: smtpscope diff A B [EXPRESSION] (or -{})", name.to_lowercase())
            };
            files = diff::expand_input(arg.as_ref())?;
        }
        Ok(files)
    };
    let (fa, fb) = (side(&a.a, "A")?, side(&a.b, "B")?);
    let expr: Vec<&str> = rest.map(String::as_str).collect();
    Ok((fa, fb, (!expr.is_empty()).then(|| expr.join(" "))))
}

pub fn run(a: &DiffArgs) -> Result<ExitCode> {
    let (fa, fb, filter) = sides(a)?;
    let set = Settings {
        max_offset: micros(a.max_offset),
        max_skew: micros(a.max_skew),
        relay_window: micros(a.relay_window),
    };
    let d = diff::run(&fa, &fb, filter.as_deref(), &set)?;
    if a.tui {
        diff::view::run(&d)?;
        return Ok(if a.exit_code && d.differs() { ExitCode::from(1) } else { ExitCode::SUCCESS });
    }
    let mut out = io::BufWriter::new(io::stdout().lock());
    match a.format {
        DiffFormat::Table => output::write_table(&mut out, &d)?,
        DiffFormat::Json => {
            let opts = report::Options { show_addresses: a.show_addresses, ..Default::default() };
            output::write_json(&mut out, &d, opts)?;
            if let Some(s) = output::nothing_matched(&d) {
                say!("smtpscope diff: {s}");
            }
        }
    }
    out.flush()?;
    Ok(if a.exit_code && d.differs() { ExitCode::from(1) } else { ExitCode::SUCCESS })
}
