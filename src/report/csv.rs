//! CSV records: the main keys flattened, cells defused against spreadsheet formulas.

use std::io::{self, Write};

use serde_json::Value;

use super::escape::csv_cell;
use crate::session::Session;

/// Columns, in order (names as in NDJSON).
pub const COLUMNS: &[&str] = &[
    "first_seen",
    "last_seen",
    "file",
    "interface",
    "client",
    "server",
    "community_id",
    "verdict",
    "helo",
    "banner",
    "starttls_offered",
    "upgrade_verb",
    "starttls_sent",
    "starttls_reply",
    "tls_handshake",
    "tls_version",
    "cipher",
    "sni",
    "mail_transactions",
    "messages_accepted",
    "rcpt_count",
    "mail_from",
    "rcpt_to",
    "bytes_client",
    "bytes_server",
    "clean_close",
    "auth_mechanisms",
    "findings",
    "ehlo_extensions",
];

fn cell(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        // Controls, bidi and format characters are escaped as in the table.
        Value::String(s) => super::escape::terminal(s.as_bytes()),
        Value::Array(items) => items
            .iter()
            .map(|i| match i {
                Value::Object(o) => o.get("name").or_else(|| o.get("keyword")).map(cell).unwrap_or_default(),
                other => cell(other),
            })
            .collect::<Vec<_>>()
            .join(" "),
        other => other.to_string(),
    }
}

/// CSV writer.
pub struct Writer<'a> {
    out: csv::Writer<Box<dyn Write + 'a>>,
    header: bool,
    opts: super::Options,
}

impl<'a> Writer<'a> {
    /// Writes to `out`.
    pub fn new(out: Box<dyn Write + 'a>, opts: super::Options) -> Self {
        Self { out: csv::Writer::from_writer(out), header: false, opts }
    }
}

impl super::RecordWriter for Writer<'_> {
    fn write(&mut self, s: &Session) -> io::Result<()> {
        if !self.header {
            self.header = true;
            self.out.write_record(COLUMNS)?;
        }
        let rec = super::json::record(s, self.opts);
        let row: Vec<String> = COLUMNS.iter().map(|c| csv_cell(&rec.get(*c).map(cell).unwrap_or_default())).collect();
        self.out.write_record(&row)?;
        if self.opts.line_buffered {
            self.out.flush()?;
        }
        Ok(())
    }

    fn finish(&mut self) -> io::Result<()> {
        if !self.header {
            self.header = true;
            self.out.write_record(COLUMNS)?;
        }
        self.out.flush()
    }
}
