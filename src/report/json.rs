//! NDJSON records: one object per session, every key on every line, null where unknown.
//!
//! serde_json escapes only what JSON requires; a [`SafeFormatter`] additionally escapes DEL,
//! C1 controls and bidi/format characters as `\uXXXX`, and writes every control as `\u00XX`,
//! so no wire byte can act on a terminal that displays the output.

use std::io::{self, Write};

use serde::Serialize;
use serde_json::ser::{CharEscape, Formatter};
use serde_json::Value;

use super::escape::{is_format_char, json_text};
use super::{endpoint, rfc3339, rfc3339_secs, Options};
use crate::session::{address_domain, verdict, Kind, Session};
use crate::tls::{alert_name, cipher_name, version_label};

/// Version of the record layout.
pub const SCHEMA_VERSION: u32 = 1;

/// A serde_json formatter that escapes everything a terminal could interpret.
#[derive(Debug, Default, Clone, Copy)]
pub struct SafeFormatter;

fn write_u(w: &mut (impl Write + ?Sized), c: u32) -> io::Result<()> {
    if c > 0xffff {
        let v = c - 0x10000;
        write!(w, "\\u{:04x}\\u{:04x}", 0xd800 + (v >> 10), 0xdc00 + (v & 0x3ff))
    } else {
        write!(w, "\\u{c:04x}")
    }
}

impl Formatter for SafeFormatter {
    fn write_string_fragment<W: ?Sized + Write>(&mut self, w: &mut W, fragment: &str) -> io::Result<()> {
        // Nearly every fragment is printable ASCII (serde_json has already cut out C0 controls).
        if fragment.bytes().all(|b| b < 0x7f) {
            return w.write_all(fragment.as_bytes());
        }
        let mut start = 0;
        for (i, c) in fragment.char_indices() {
            let bad = c == '\u{7f}'
                || ('\u{80}'..='\u{9f}').contains(&c)
                || is_format_char(c)
                || c == '\u{2028}'
                || c == '\u{2029}';
            if bad {
                w.write_all(&fragment.as_bytes()[start..i])?;
                write_u(w, c as u32)?;
                start = i + c.len_utf8();
            }
        }
        w.write_all(&fragment.as_bytes()[start..])
    }

    fn write_char_escape<W: ?Sized + Write>(&mut self, w: &mut W, e: CharEscape) -> io::Result<()> {
        let b: u8 = match e {
            CharEscape::Quote => return w.write_all(b"\\\""),
            CharEscape::ReverseSolidus => return w.write_all(b"\\\\"),
            CharEscape::Solidus => b'/',
            CharEscape::Backspace => 0x08,
            CharEscape::FormFeed => 0x0c,
            CharEscape::LineFeed => b'\n',
            CharEscape::CarriageReturn => b'\r',
            CharEscape::Tab => b'\t',
            CharEscape::AsciiControl(b) => b,
        };
        write_u(w, u32::from(b))
    }
}

/// Serialises a value on one line with [`SafeFormatter`].
pub fn to_line(v: &Value) -> String {
    let mut buf = Vec::with_capacity(1024);
    let mut ser = serde_json::Serializer::with_formatter(&mut buf, SafeFormatter);
    let _ = serde::Serialize::serialize(v, &mut ser);
    String::from_utf8(buf).unwrap_or_default()
}

fn envelope(list: &[Vec<u8>], opts: Options) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for a in list {
        let v = json_text(if opts.show_addresses { a } else { address_domain(a) });
        if !out.contains(&v) {
            out.push(v);
        }
    }
    out
}

/// An EHLO extension.
#[derive(Serialize)]
struct Ext {
    keyword: String,
    params: String,
}

/// The server certificate.
#[derive(Serialize)]
struct Cert<'a> {
    subject: &'a str,
    issuer: &'a str,
    serial: &'a str,
    sha1: &'a str,
    sha256: &'a str,
    not_before: String,
    not_after: String,
    sans: &'a [String],
    self_signed: bool,
    key_bits: u32,
    signature: &'a str,
}

/// A cleartext TLS alert.
#[derive(Serialize)]
struct AlertRecord {
    name: String,
    level: &'static str,
    from: &'static str,
    frame: u64,
}

#[derive(Serialize)]
struct EvidenceRecord<'a> {
    text: &'a str,
    frame: Option<u64>,
    dir: Option<&'static str>,
}

#[derive(Serialize)]
struct FindingRecord<'a> {
    name: &'static str,
    text: &'a str,
    frame: Option<u64>,
}

#[derive(Serialize)]
struct Anomalies {
    retransmissions: u64,
    out_of_order: u64,
    conflicting_overlaps: u64,
    gaps: u64,
    gap_bytes: u64,
}

/// One NDJSON record; field order is the key order on the wire, `None` is `null`.
#[derive(Serialize)]
pub struct Record<'a> {
    schema_version: u32,
    community_id: String,
    file: Option<&'a str>,
    interface: Option<&'a str>,
    client: String,
    server: String,
    first_seen: String,
    last_seen: String,
    tunnel: Option<&'static str>,
    helo: Option<String>,
    banner: Option<String>,
    ehlo_extensions: Option<Vec<Ext>>,
    starttls_offered: Option<bool>,
    upgrade_verb: Option<&'static str>,
    starttls_sent: bool,
    starttls_reply: Option<u16>,
    tls_handshake: bool,
    tls_version: Option<String>,
    cipher: Option<String>,
    sni: Option<String>,
    alpn: Option<Vec<String>>,
    cert: Option<Cert<'a>>,
    tls_alert: Option<AlertRecord>,
    mail_transactions: Option<u32>,
    messages_accepted: Option<u32>,
    rcpt_count: Option<u32>,
    mail_from: Option<Vec<String>>,
    rcpt_to: Option<Vec<String>>,
    bytes_client: u64,
    bytes_server: u64,
    clean_close: Option<bool>,
    auth_mechanisms: Option<&'a [String]>,
    credentials: Option<&'a [String]>,
    verdict: Option<&'static str>,
    evidence: Vec<EvidenceRecord<'a>>,
    findings: Vec<FindingRecord<'a>>,
    capture_complete: bool,
    uses_bdat: Option<bool>,
    vlan: Option<u16>,
    packets: u64,
    tcp_anomalies: Anomalies,
}

impl<'a> Record<'a> {
    /// The record for a session.
    pub fn new(s: &'a Session, opts: Options) -> Self {
        let smtp = s.kind == Kind::Smtp;
        // Counts of the cleartext dialogue are unknown once it went inside TLS or was never seen.
        let clear = smtp && !s.tls_handshake();
        let when = |v| if clear { Some(v) } else { None };
        let hello_seen = s.tls.server_hello.is_some();
        let st = &s.streams;
        Record {
            schema_version: SCHEMA_VERSION,
            community_id: s.community_id(),
            file: s.file.as_deref(),
            interface: s.interface.as_deref(),
            client: endpoint(s.client),
            server: endpoint(s.server),
            first_seen: rfc3339(s.first_seen),
            last_seen: rfc3339(s.last_seen),
            tunnel: s.tunnel.map(|t| t.name()),
            helo: s.hello.as_ref().filter(|_| smtp).map(|h| json_text(&h.arg)),
            banner: s.banner.as_deref().filter(|_| smtp).map(json_text),
            ehlo_extensions: s.ehlo_reply.as_ref().filter(|_| smtp).map(|r| {
                r.extensions
                    .iter()
                    .map(|e| Ext { keyword: json_text(&e.keyword), params: json_text(&e.params) })
                    .collect()
            }),
            starttls_offered: verdict::starttls_offered(s),
            upgrade_verb: s.upgrade.as_ref().map(|u| u.verb.name()),
            starttls_sent: s.upgrade.is_some(),
            starttls_reply: s.upgrade.as_ref().and_then(|u| u.reply.flatten()),
            tls_handshake: s.tls_handshake(),
            tls_version: s.tls.version.filter(|_| hello_seen).map(version_label),
            cipher: s.tls.cipher.filter(|_| hello_seen).map(cipher_name),
            sni: s.tls.sni.as_deref().map(json_text),
            alpn: (!s.tls.alpn.is_empty()).then(|| s.tls.alpn.iter().map(|a| json_text(a)).collect()),
            cert: s.tls.cert.as_ref().map(|c| Cert {
                subject: &c.subject,
                issuer: &c.issuer,
                serial: &c.serial,
                sha1: &c.sha1,
                sha256: &c.sha256,
                not_before: rfc3339_secs(c.not_before),
                not_after: rfc3339_secs(c.not_after),
                sans: &c.sans,
                self_signed: c.self_signed,
                key_bits: c.key_bits,
                signature: &c.signature,
            }),
            tls_alert: s.tls.alert.map(|a| AlertRecord {
                name: alert_name(a.description),
                level: if a.level == 2 { "fatal" } else { "warning" },
                from: a.side.name(),
                frame: a.frame,
            }),
            mail_transactions: when(s.mail_transactions),
            messages_accepted: when(s.messages_accepted),
            rcpt_count: when(s.rcpt_count),
            mail_from: clear.then(|| envelope(&s.mail_from, opts)),
            rcpt_to: clear.then(|| envelope(&s.rcpt_to, opts)),
            bytes_client: s.wire_bytes[0],
            bytes_server: s.wire_bytes[1],
            clean_close: clear.then(|| s.quit.is_some_and(|q| q.1 == Some(Some(221)))),
            auth_mechanisms: clear.then_some(s.auth_mechanisms.as_slice()),
            credentials: (!s.credentials.is_empty()).then_some(s.credentials.as_slice()),
            verdict: s.verdict.map(|v| v.name()),
            evidence: s
                .evidence
                .iter()
                .map(|e| EvidenceRecord { text: &e.text, frame: e.frame, dir: e.side.map(|d| d.name()) })
                .collect(),
            findings: s
                .findings
                .iter()
                .map(|f| FindingRecord { name: f.name, text: &f.text, frame: f.frame })
                .collect(),
            capture_complete: s.handshake_seen && (s.client_closed || s.server_closed),
            uses_bdat: clear.then_some(s.uses_bdat),
            vlan: s.vlan,
            packets: s.packets,
            tcp_anomalies: Anomalies {
                retransmissions: st[0].retransmissions + st[1].retransmissions,
                out_of_order: st[0].out_of_order + st[1].out_of_order,
                conflicting_overlaps: st[0].conflicting_overlaps + st[1].conflicting_overlaps,
                gaps: st[0].gaps + st[1].gaps,
                gap_bytes: st[0].gap_bytes + st[1].gap_bytes,
            },
        }
    }
}

/// The NDJSON object for a session, as a value (for CSV and tests; the writer streams [`Record`]).
pub fn record(s: &Session, opts: Options) -> Value {
    serde_json::to_value(Record::new(s, opts)).unwrap_or(Value::Null)
}

/// NDJSON writer.
pub struct Writer<'a> {
    out: Box<dyn Write + 'a>,
    opts: Options,
    /// The line being built: serde_json writes token by token, which is cheap into a `Vec` and
    /// costly through a `dyn Write`.
    line: Vec<u8>,
}

impl<'a> Writer<'a> {
    /// Writes to `out`.
    pub fn new(out: Box<dyn Write + 'a>, opts: Options) -> Self {
        Self { out, opts, line: Vec::with_capacity(4096) }
    }
}

impl super::RecordWriter for Writer<'_> {
    fn write(&mut self, s: &Session) -> io::Result<()> {
        self.line.clear();
        let mut ser = serde_json::Serializer::with_formatter(&mut self.line, SafeFormatter);
        serde::Serialize::serialize(&Record::new(s, self.opts), &mut ser).map_err(io::Error::other)?;
        self.line.push(b'\n');
        self.out.write_all(&self.line)?;
        if self.opts.line_buffered {
            self.out.flush()?;
        }
        Ok(())
    }

    fn finish(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_c1_and_bidi_are_escaped() {
        let v = Value::String("a\u{1b}[31m\u{7f}\u{85}\u{202e}\n".into());
        assert_eq!(to_line(&v), "\"a\\u001b[31m\\u007f\\u0085\\u202e\\u000a\"");
    }

    #[test]
    fn astral_format_chars_use_surrogate_pairs() {
        assert_eq!(to_line(&Value::String("\u{E0041}".into())), "\"\\udb40\\udc41\"");
    }
}
