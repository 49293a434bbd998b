//! `pairs`: who speaks TLS to whom, host pairs with verdict counts.

use std::io::{self, Write};
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;

use anyhow::Result;
use clap::{Args, ValueEnum};

use smtpscope::report::{self, pairs::Pairs};

use super::input::{drive, driver_options, InputArgs};

#[derive(Debug, Args)]
pub struct PairsArgs {
    /// Output: text or json (NDJSON, one object per pair).
    #[arg(short = 'F', long, value_enum, default_value = "text")]
    pub format: PairsFormat,

    #[command(flatten)]
    pub input: InputArgs,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum PairsFormat {
    Text,
    Json,
}

pub fn run(a: &PairsArgs) -> Result<ExitCode> {
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
