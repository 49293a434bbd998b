//! CSV records: the main keys flattened, cells defused against spreadsheet formulas.

use std::io::{self, Write};

use super::json::Fields;
use super::{endpoint, rfc3339};
use crate::escape::{csv_cell, terminal};
use crate::session::Session;

/// Columns, in order (names as in NDJSON).
pub const COLUMNS: &[&str] = &[
    "first_seen",
    "last_seen",
    "file",
    "interface",
    "sensor",
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
    "pcap_file",
];

/// Wire bytes escaped as the table shows them (controls, bidi and invalid bytes as `\xNN` /
/// `\u{XXXX}`), so a CSV cell reads the same as the table cell.
fn wire(b: &[u8]) -> String {
    terminal(b)
}

fn text(s: &str) -> String {
    terminal(s.as_bytes())
}

fn opt<T>(v: Option<T>, f: impl FnOnce(T) -> String) -> String {
    v.map(f).unwrap_or_default()
}

fn words<'x>(items: impl Iterator<Item = &'x str>) -> String {
    items.map(text).collect::<Vec<_>>().join(" ")
}

/// The row's cells, in [`COLUMNS`] order: the NDJSON record's values, flattened (`null` empty,
/// lists joined by spaces, findings by name, extensions by keyword).
fn row(s: &Session, opts: super::Options) -> [String; 31] {
    let f = Fields::new(s);
    [
        rfc3339(s.first_seen),
        rfc3339(s.last_seen),
        opt(s.file.as_deref(), text),
        opt(s.interface.as_deref(), text),
        opt(s.sensor.as_deref(), text),
        endpoint(s.client),
        endpoint(s.server),
        s.community_id(),
        opt(s.verdict, |v| v.name().to_string()),
        opt(f.helo(), wire),
        opt(f.banner(), wire),
        opt(f.starttls_offered(), |b| b.to_string()),
        opt(f.upgrade_verb(), text),
        s.upgrade.is_some().to_string(),
        opt(f.starttls_reply(), |c| c.to_string()),
        s.tls_handshake().to_string(),
        opt(f.tls_version(), |v| text(&v)),
        opt(f.cipher(), |v| text(&v)),
        opt(s.tls.sni.as_deref(), wire),
        opt(f.mail_transactions(), |n| n.to_string()),
        opt(f.messages_accepted(), |n| n.to_string()),
        opt(f.rcpt_count(), |n| n.to_string()),
        opt(f.mail_from(opts, terminal), |v| v.join(" ")),
        opt(f.rcpt_to(opts, terminal), |v| v.join(" ")),
        s.wire_bytes[0].to_string(),
        s.wire_bytes[1].to_string(),
        opt(f.clean_close(), |b| b.to_string()),
        opt(f.auth_mechanisms(), |v| words(v.iter().map(String::as_str))),
        words(s.findings.iter().map(|x| x.name)),
        opt(f.ehlo_extensions(), |v| v.iter().map(|e| wire(&e.keyword)).collect::<Vec<_>>().join(" ")),
        opt(s.pcap_file.as_deref(), text),
    ]
}

/// CSV writer.
pub struct Writer<W: Write> {
    out: csv::Writer<W>,
    header: bool,
    opts: super::Options,
}

impl<W: Write> Writer<W> {
    /// Writes to `out`.
    pub fn new(out: W, opts: super::Options) -> Self {
        Self { out: csv::Writer::from_writer(out), header: false, opts }
    }
}

impl<W: Write> super::RecordWriter for Writer<W> {
    fn write(&mut self, s: &Session) -> io::Result<()> {
        if !self.header {
            self.header = true;
            self.out.write_record(COLUMNS)?;
        }
        let row = row(s, self.opts).map(|c| csv_cell(&c));
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::{EhloReply, Extension, Hello, Kind};
    use serde_json::Value;

    /// The specification: a cell is the NDJSON value of its column, flattened (`null` empty, lists
    /// joined by spaces, findings by name, extensions by keyword) — except that text from the wire
    /// is escaped from its bytes as the table escapes it, so an invalid byte reads `\xFE` in both
    /// (NDJSON writes it as that text, which escaped again would read `\\xFE`).
    fn flat(v: &Value) -> String {
        match v {
            Value::Null => String::new(),
            Value::String(s) => terminal(s.as_bytes()),
            Value::Array(items) => items
                .iter()
                .map(|i| match i {
                    Value::Object(o) => o.get("name").or_else(|| o.get("keyword")).map(flat).unwrap_or_default(),
                    other => flat(other),
                })
                .collect::<Vec<_>>()
                .join(" "),
            other => other.to_string(),
        }
    }

    /// The wire-text columns of the session below, escaped from their bytes.
    fn wire_cells(s: &Session, opts: super::super::Options) -> Vec<(&'static str, String)> {
        let paths = |l: &[Vec<u8>]| {
            let mut v: Vec<String> = Vec::new();
            for a in l {
                let t = terminal(if opts.show_addresses { a } else { crate::session::address_domain(a) });
                if !v.contains(&t) {
                    v.push(t);
                }
            }
            v.join(" ")
        };
        let ehlo = s.ehlo_reply.as_ref().map(|r| r.extensions.iter().map(|e| terminal(&e.keyword)).collect::<Vec<_>>());
        vec![
            ("helo", terminal(&s.hello.as_ref().unwrap().arg)),
            ("banner", terminal(s.banner.as_deref().unwrap())),
            ("mail_from", paths(&s.mail_from)),
            ("ehlo_extensions", ehlo.unwrap().join(" ")),
        ]
    }

    #[test]
    fn every_cell_is_the_ndjson_value_of_its_column_flattened() {
        let mut s = Session::new("10.0.0.1:40000".parse().unwrap(), "[fd00::2]:25".parse().unwrap());
        s.kind = Kind::Smtp;
        s.file = Some("a\u{1b}b.pcap".into());
        s.hello =
            Some(Hello { verb: "EHLO", arg: b"=evil\xff\x1b[2J".to_vec(), reply: Some(Some(250)), ..Hello::default() });
        s.banner = Some(b"mx \\ \xc3".to_vec());
        s.ehlo_reply = Some(EhloReply {
            extensions: vec![
                Extension { keyword: b"STARTTLS".to_vec(), params: vec![] },
                Extension { keyword: b"X\x07".to_vec(), params: b"p".to_vec() },
            ],
            ..EhloReply::default()
        });
        s.mail_from = vec![b"a@one.example".to_vec(), b"b@two\xfe.example".to_vec()];
        s.mail_transactions = 2;
        s.auth_mechanisms = vec!["PLAIN".into(), "LOGIN".into()];
        s.find("cleartext-auth", Some(3), "x");
        s.find("ehlo-masked", None, "y");
        s.verdict = Some(crate::session::Verdict::Plaintext);
        for opts in
            [super::super::Options::default(), super::super::Options { show_addresses: true, ..Default::default() }]
        {
            let rec = crate::report::json::record(&s, opts);
            let wire = wire_cells(&s, opts);
            let want: Vec<String> = COLUMNS
                .iter()
                .map(|c| match wire.iter().find(|(k, _)| k == c) {
                    Some((_, cell)) => cell.clone(),
                    None => flat(rec.get(*c).expect(c)),
                })
                .collect();
            assert_eq!(row(&s, opts).to_vec(), want);
            assert!(row(&s, opts).iter().all(|c| !c.contains("\\\\x")), "no escape escaped twice");
        }
    }
}
