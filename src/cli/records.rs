//! `-R` inputs for every subcommand: opening them, merging them with a capture, and what is said
//! about them on stderr.

use std::collections::BTreeMap;
use std::io::{self, Write};

use anyhow::{bail, Result};

use smtpscope::records::Records;
use smtpscope::session::Verdict;
use smtpscope::summary::Summary;

use super::input::InputArgs;

/// The `-R` inputs, opened (None without `-R`). A BPF expression with only `-R` inputs is a usage
/// error: it filters packets, and records have none.
pub fn open(input: &InputArgs) -> Result<Option<Records>> {
    if input.records.is_empty() {
        return Ok(None);
    }
    if input.read.is_empty() && !input.filter.is_empty() {
        bail!(
            "a BPF expression ('{}') filters packets, and -R inputs are records: filter them with -Y",
            input.filter.join(" ")
        );
    }
    Ok(Some(Records::open(&input.records)?))
}

/// Only records: no capture to run.
pub fn only_records(input: &InputArgs) -> bool {
    !input.records.is_empty() && input.read.is_empty() && input.interface.is_none()
}

/// Reports skipped lines per file on stderr (the first few by `file:line`), and fails when no
/// record at all could be read from the `-R` inputs. `alone`: the run read only records, whose
/// verdict counts (and log side, with `--logs`) are then the whole summary (there were no packets).
pub fn finish(input: &InputArgs, records: &Records, alone: Option<&Summary>) -> Result<()> {
    let mut err = io::stderr().lock();
    for st in records.stats() {
        if let Some(m) = st.message() {
            let _ = writeln!(err, "smtpscope: warning: {}", smtpscope::escape::terminal(m.as_bytes()));
        }
    }
    let files = records.stats().len();
    let read = records.records_read();
    if read == 0 {
        bail!("no record could be read from the -R input(s) ({files} file(s))");
    }
    if let (Some(path), Some(summary)) = (&input.summary, alone) {
        let mut json = summary.to_json();
        json["records"] = serde_json::json!({ "read": read, "files": files });
        let mut f = std::fs::File::create(path)?;
        writeln!(f, "{}", smtpscope::report::json::to_line(&json))?;
    } else if !input.quiet && input.summary.is_none() {
        let _ = writeln!(err, "smtpscope: {read} record(s) read from {files} file(s)");
        if let Some(summary) = alone {
            let verdicts = &summary.stats.verdicts;
            let per: Vec<String> =
                Verdict::ALL.iter().filter_map(|v| verdicts.get(v).map(|n| format!("{} {n}", v.name()))).collect();
            let _ = writeln!(err, "  verdicts: {}", per.join(", "));
        }
    }
    Ok(())
}

/// The summary of a run over records alone: the verdicts of the sessions read.
pub fn summary_of(counts: &BTreeMap<Verdict, u64>) -> Summary {
    let mut s = Summary {
        sources: Vec::new(),
        stats: Default::default(),
        table: Default::default(),
        dropped: None,
        sensor: None,
        output_errors: 0,
        logs: None,
    };
    s.stats.verdicts = counts.clone();
    s
}
