//! `pairs`: who speaks TLS to whom, host pairs with verdict counts.

use std::io::{self, Write};
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;

use anyhow::Result;
use clap::{Args, ValueEnum};

use smtpscope::report::{self, pairs::Pairs};

use smtpscope::session::Session;

use super::input::{drive, driver_options, InputArgs};
use super::report::display_filter;

#[derive(Debug, Args)]
pub struct PairsArgs {
    /// Output: text, json (NDJSON, one object per pair) or csv (a row per pair and server port).
    #[arg(short = 'F', long, value_enum, default_value = "text")]
    pub format: PairsFormat,

    /// Display filter: only the sessions it keeps are counted; the others are left out (said on stderr).
    #[arg(short = 'Y', long = "display-filter", value_name = "FILTER")]
    pub display_filter: Option<String>,

    /// Count every session under this sensor name (records from -R keep their own otherwise).
    #[arg(long, value_name = "NAME")]
    pub sensor: Option<String>,

    #[command(flatten)]
    pub input: InputArgs,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum PairsFormat {
    Text,
    Json,
    Csv,
}

pub fn run(a: &PairsArgs) -> Result<ExitCode> {
    let filter = display_filter(a.display_filter.as_deref())?;
    let mut driver = driver_options(&a.input)?;
    driver.engine.transcript = filter.uses_text();
    driver.engine.sensor = a.sensor.as_deref().map(std::sync::Arc::from);
    let mut pairs = Pairs::default();
    let mut left_out = 0u64;
    let mut add = |s: Session| {
        if filter.matches(&s) {
            pairs.add(&s);
        } else {
            left_out += 1;
        }
    };
    drive(&a.input, driver, &mut add, &AtomicBool::new(false))?;
    if left_out > 0 && !a.input.quiet {
        say!("smtpscope: {left_out} session(s) left out: dropped by the display filter (-Y)");
    }
    let mut out = io::stdout().lock();
    match a.format {
        PairsFormat::Text => out.write_all(pairs.text().as_bytes())?,
        PairsFormat::Json => {
            for v in pairs.json() {
                writeln!(out, "{}", report::json::to_line(&v))?;
            }
        }
        PairsFormat::Csv => out.write_all(&pairs.csv()?)?,
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}
