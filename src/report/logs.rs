//! Log session records out: NDJSON (every key on every line), table and CSV, and the summary of
//! a `logs` run (files, sessions by verdict, per-line problems by reason).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{self, Write};

use serde_json::{json, Value};

use super::json::SafeFormatter;
use super::table::verdict_color;
use super::{rfc3339, Options};
use crate::escape::{csv_cell, terminal};
use crate::logs::{FileStats, LogError, LogRecord, Problems};
use crate::session::Verdict;
use serde::Serialize;

/// The NDJSON keys of a log record, in order.
pub const KEYS: [&str; 20] = [
    "source",
    "log_file",
    "log_session",
    "first_seen",
    "last_seen",
    "client",
    "server",
    "helo",
    "banner",
    "ehlo_extensions",
    "starttls_offered",
    "upgrade_verb",
    "tls_version",
    "cipher",
    "cert",
    "mail_transactions",
    "auth_mechanisms",
    "verdict",
    "evidence",
    "findings",
];

#[derive(Serialize)]
struct Cert<'a> {
    sha1: &'a Option<String>,
    subject: &'a Option<String>,
    issuer: &'a Option<String>,
    serial: &'a Option<String>,
    sans: &'a Option<Vec<String>>,
    not_before: &'a Option<String>,
    not_after: &'a Option<String>,
}

#[derive(Serialize)]
struct Ext<'a> {
    keyword: &'a str,
    params: &'a str,
}

#[derive(Serialize)]
struct Ev<'a> {
    text: &'a str,
    line: u64,
}

#[derive(Serialize)]
struct Found<'a> {
    name: &'a str,
    text: &'a str,
    line: Option<u64>,
}

/// The NDJSON record, fields in [`KEYS`] order (serialised directly: no `Value` per record).
#[derive(Serialize)]
struct Record<'a> {
    source: &'static str,
    log_file: &'a str,
    log_session: &'a str,
    first_seen: String,
    last_seen: String,
    client: Option<String>,
    server: Option<String>,
    helo: &'a Option<String>,
    banner: &'a Option<String>,
    ehlo_extensions: Option<Vec<Ext<'a>>>,
    starttls_offered: Option<bool>,
    upgrade_verb: Option<&'static str>,
    tls_version: &'a Option<String>,
    cipher: &'a Option<String>,
    cert: Option<Cert<'a>>,
    mail_transactions: Option<u32>,
    auth_mechanisms: &'a [String],
    verdict: &'static str,
    evidence: Vec<Ev<'a>>,
    findings: Vec<Found<'a>>,
}

impl<'a> Record<'a> {
    fn of(r: &'a LogRecord) -> Self {
        Record {
            source: r.source.name(),
            log_file: &r.log_file,
            log_session: &r.log_session,
            first_seen: rfc3339(r.first_seen),
            last_seen: rfc3339(r.last_seen),
            client: r.client.map(|e| e.to_string()),
            server: r.server.map(|e| e.to_string()),
            helo: &r.helo,
            banner: &r.banner,
            ehlo_extensions: r
                .ehlo_extensions
                .as_ref()
                .map(|v| v.iter().map(|(k, p)| Ext { keyword: k, params: p }).collect()),
            starttls_offered: r.starttls_offered,
            upgrade_verb: r.upgrade_verb.map(|v| v.name()),
            tls_version: &r.tls_version,
            cipher: &r.cipher,
            cert: r.cert.as_ref().map(|c| Cert {
                sha1: &c.sha1,
                subject: &c.subject,
                issuer: &c.issuer,
                serial: &c.serial,
                sans: &c.sans,
                not_before: &c.not_before,
                not_after: &c.not_after,
            }),
            mail_transactions: r.mail_transactions,
            auth_mechanisms: &r.auth_mechanisms,
            verdict: r.verdict.name(),
            evidence: r.evidence.iter().map(|e| Ev { text: &e.text, line: e.line }).collect(),
            findings: r.findings.iter().map(|f| Found { name: f.name, text: &f.text, line: f.frame }).collect(),
        }
    }
}

/// Writes the record's NDJSON line (without the line end) with the terminal-safe escaping.
pub fn write_line(out: &mut Vec<u8>, r: &LogRecord) {
    let mut ser = serde_json::Serializer::with_formatter(out, SafeFormatter);
    let _ = Record::of(r).serialize(&mut ser);
}

/// The record as a JSON value, keys in [`KEYS`] order (parsed from the very line the writer
/// writes, so the two cannot drift apart).
pub fn record(r: &LogRecord) -> Value {
    let mut line = Vec::with_capacity(1024);
    write_line(&mut line, r);
    serde_json::from_slice(&line).unwrap_or(Value::Null)
}

/// Output format of log records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Fixed-width table.
    Table,
    /// NDJSON.
    Json,
    /// CSV.
    Csv,
}

/// Writes log records as they close.
pub struct Writer<'a> {
    out: Box<dyn Write + 'a>,
    format: LogFormat,
    opts: Options,
    header: bool,
    /// The line being built, reused.
    line: Vec<u8>,
}

fn fit(s: &str, w: usize) -> String {
    let n = s.chars().count();
    if n <= w {
        format!("{s:<w$}")
    } else {
        let mut t: String = s.chars().take(w.saturating_sub(1)).collect();
        t.push('…');
        t
    }
}

/// CSV columns (names as in NDJSON; lists joined by spaces, cert as its SHA-1).
pub const CSV_COLUMNS: [&str; 16] = [
    "first_seen",
    "last_seen",
    "source",
    "log_file",
    "log_session",
    "client",
    "server",
    "verdict",
    "helo",
    "starttls_offered",
    "upgrade_verb",
    "tls_version",
    "cipher",
    "cert",
    "mail_transactions",
    "findings",
];

impl<'a> Writer<'a> {
    /// Writes `format` to `out`.
    pub fn new(out: Box<dyn Write + 'a>, format: LogFormat, opts: Options) -> Self {
        Self { out, format, opts, header: false, line: Vec::with_capacity(2048) }
    }

    /// Writes one record.
    pub fn write(&mut self, r: &LogRecord) -> io::Result<()> {
        match self.format {
            LogFormat::Json => {
                self.line.clear();
                write_line(&mut self.line, r);
                self.line.push(b'\n');
                self.out.write_all(&self.line)?;
            }
            LogFormat::Table => {
                if !self.header {
                    self.header = true;
                    writeln!(
                        self.out,
                        "{} {} {} {} {} {} SESSION",
                        fit("TIME (UTC)", 19),
                        fit("SOURCE", 16),
                        fit("CLIENT", 23),
                        fit("SERVER", 23),
                        fit("VERDICT", 23),
                        fit("TLS", 6),
                    )?;
                }
                // Values are cut to their columns only for a terminal; elsewhere written whole.
                let trunc = self.opts.truncate;
                let fit = |s: &str, w: usize| if trunc { fit(s, w) } else { format!("{s:<w$}") };
                let t = rfc3339(r.first_seen);
                let ep = |e: Option<crate::logs::Endpoint>| e.map_or_else(|| "-".to_string(), |e| e.to_string());
                let verdict = fit(r.verdict.name(), 23);
                let verdict =
                    if self.opts.color { format!("{}{verdict}\x1b[0m", verdict_color(r.verdict)) } else { verdict };
                writeln!(
                    self.out,
                    "{} {} {} {} {} {} {}",
                    fit(t.get(..19).unwrap_or(&t), 19),
                    fit(r.source.name(), 16),
                    fit(&ep(r.client), 23),
                    fit(&ep(r.server), 23),
                    verdict,
                    fit(r.tls_version.as_deref().unwrap_or("-"), 6),
                    terminal(format!("{}:{}", r.log_file, r.log_session).as_bytes())
                )?;
            }
            LogFormat::Csv => {
                if !self.header {
                    self.header = true;
                    writeln!(self.out, "{}", CSV_COLUMNS.join(","))?;
                }
                let v = record(r);
                let cell = |k: &str| -> String {
                    let s = match (k, &v[k]) {
                        ("cert", c) => c["sha1"].as_str().unwrap_or_default().to_string(),
                        ("findings", Value::Array(a)) => {
                            a.iter().filter_map(|f| f["name"].as_str()).collect::<Vec<_>>().join(" ")
                        }
                        (_, Value::String(s)) => s.clone(),
                        (_, Value::Null) => String::new(),
                        (_, other) => other.to_string(),
                    };
                    let s = csv_cell(&terminal(s.as_bytes()));
                    if s.contains([',', '"', '\n']) {
                        format!("\"{}\"", s.replace('"', "\"\""))
                    } else {
                        s
                    }
                };
                let row: Vec<String> = CSV_COLUMNS.iter().map(|k| cell(k)).collect();
                writeln!(self.out, "{}", row.join(","))?;
            }
        }
        if self.opts.line_buffered {
            self.out.flush()?;
        }
        Ok(())
    }

    /// Flushes.
    pub fn finish(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

/// One input of a `logs` run.
#[derive(Debug, Clone)]
pub struct LogFileSummary {
    /// Path (or `-`).
    pub name: String,
    /// What was read (None: the file could not be read).
    pub stats: Option<FileStats>,
    /// Why it could not be read.
    pub error: Option<String>,
}

impl LogFileSummary {
    /// The input `name` as reading it went: what was read, or why nothing was (the error names
    /// the file).
    pub fn read(name: String, r: Result<FileStats, LogError>) -> Self {
        match r {
            Ok(s) => Self { name, stats: Some(s), error: None },
            Err(e) => Self { name, stats: None, error: Some(e.to_string()) },
        }
    }

    /// An argument that named no file to read (the error, which names it, is also its name).
    pub fn missing(error: String) -> Self {
        Self { name: error.clone(), stats: None, error: Some(error) }
    }
}

/// The summary of a `logs` run.
#[derive(Debug, Clone, Default)]
pub struct LogSummary {
    /// Inputs in order.
    pub files: Vec<LogFileSummary>,
    /// Records by verdict.
    pub verdicts: BTreeMap<Verdict, u64>,
    /// Records reported (after the display filter).
    pub reported: u64,
}

impl LogSummary {
    /// Lines recognised in all inputs.
    pub fn recognised(&self) -> u64 {
        self.files.iter().filter_map(|f| f.stats.as_ref()).map(|s| s.recognised).sum()
    }

    /// Problems of all inputs.
    pub fn problems(&self) -> Problems {
        let mut p = Problems::default();
        for s in self.files.iter().filter_map(|f| f.stats.as_ref()) {
            p.merge(&s.problems);
        }
        p
    }

    /// JSON form (`--summary FILE`).
    pub fn to_json(&self) -> Value {
        json!({
            "files": self.files.iter().map(|f| json!({
                "name": f.name,
                "format": f.stats.as_ref().and_then(|s| s.format).map(|x| format!("{x:?}").to_lowercase()),
                "lines": f.stats.as_ref().map(|s| s.lines),
                "recognised_lines": f.stats.as_ref().map(|s| s.recognised),
                "bytes": f.stats.as_ref().map(|s| s.bytes),
                "sessions": f.stats.as_ref().map(|s| s.sessions),
                "error": f.error,
            })).collect::<Vec<_>>(),
            "sessions": self.verdicts.values().sum::<u64>(),
            "reported": self.reported,
            "verdicts": Verdict::ALL.iter().map(|v| (v.name().to_string(), json!(self.verdicts.get(v).copied().unwrap_or(0)))).collect::<serde_json::Map<_, _>>(),
            "line_problems": self.problems().counts.iter().map(|(k, v)| (k.to_string(), json!(v))).collect::<serde_json::Map<_, _>>(),
        })
    }

    /// Human form for stderr.
    pub fn to_text(&self) -> String {
        let mut o = String::new();
        let lines: u64 = self.files.iter().filter_map(|f| f.stats.as_ref()).map(|s| s.lines).sum();
        let sessions: u64 = self.verdicts.values().sum();
        let _ = writeln!(
            o,
            "smtpscope logs: {} file(s), {lines} lines, {} recognised, {sessions} session(s), {} reported",
            self.files.len(),
            self.recognised(),
            self.reported
        );
        let per: Vec<String> =
            Verdict::ALL.iter().filter_map(|v| self.verdicts.get(v).map(|n| format!("{} {n}", v.name()))).collect();
        if !per.is_empty() {
            let _ = writeln!(o, "  verdicts: {}", per.join(", "));
        }
        let p = self.problems();
        if !p.counts.is_empty() {
            let per: Vec<String> = p.counts.iter().map(|(k, v)| format!("{k} {v}")).collect();
            let _ = writeln!(o, "  line problems: {}", per.join(", "));
        }
        for f in &self.files {
            if let Some(e) = &f.error {
                // The error names its file already.
                let _ = writeln!(o, "  {}", terminal(e.as_bytes()));
            } else if f.stats.as_ref().is_some_and(|s| s.format.is_none()) {
                let _ = writeln!(o, "  {}: no Exchange or Postfix log line", terminal(f.name.as_bytes()));
            }
        }
        o
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn every_key_on_every_line_in_order() {
        let mut r = LogRecord::new(crate::logs::Source::PostfixSmtpd, Arc::from("m"), "h/p[1]@1".into(), 0, 1);
        r.judge();
        let v = record(&r);
        let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(keys, KEYS);
    }
}
