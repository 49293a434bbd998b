//! NDJSON records: one object per session, every key on every line, null where unknown.
//!
//! serde_json escapes only what JSON requires; a [`SafeFormatter`] additionally escapes DEL,
//! C1 controls and bidi/format characters as `\uXXXX`, and writes every control as `\u00XX`,
//! so no wire byte can act on a terminal that displays the output.

use std::io::{self, Write};

use serde_json::ser::{CharEscape, Formatter};
use serde_json::{json, Value};

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

fn text(b: &[u8]) -> Value {
    Value::String(json_text(b))
}

fn envelope(list: &[Vec<u8>], opts: Options) -> Value {
    let mut out: Vec<Value> = Vec::new();
    for a in list {
        let v = text(if opts.show_addresses { a } else { address_domain(a) });
        if !out.contains(&v) {
            out.push(v);
        }
    }
    Value::Array(out)
}

/// The NDJSON object for a session.
pub fn record(s: &Session, opts: Options) -> Value {
    let smtp = s.kind == Kind::Smtp;
    // Counts of the cleartext dialogue are unknown once it went inside TLS or was never seen.
    let clear_counts = smtp && !s.tls_handshake();
    let count = |n: u32| if clear_counts { json!(n) } else { Value::Null };
    let hello = if smtp { s.hello.as_ref() } else { None };
    let cert = s.tls.cert.as_ref().map(|c| {
        json!({
            "subject": c.subject, "issuer": c.issuer, "serial": c.serial, "sha1": c.sha1, "sha256": c.sha256,
            "not_before": rfc3339_secs(c.not_before), "not_after": rfc3339_secs(c.not_after),
            "sans": c.sans, "self_signed": c.self_signed, "key_bits": c.key_bits, "signature": c.signature,
        })
    });
    let alert = s.tls.alert.map(|a| {
        json!({"name": alert_name(a.description), "level": if a.level == 2 { "fatal" } else { "warning" }, "from": a.side.name(), "frame": a.frame})
    });
    let capture_complete = s.handshake_seen && (s.client_closed || s.server_closed);
    json!({
        "schema_version": SCHEMA_VERSION,
        "community_id": s.community_id(),
        "file": s.file.as_deref(),
        "interface": s.interface.as_deref(),
        "client": endpoint(s.client),
        "server": endpoint(s.server),
        "first_seen": rfc3339(s.first_seen),
        "last_seen": rfc3339(s.last_seen),
        "tunnel": s.tunnel.map(|t| t.name()),
        "helo": hello.map(|h| text(&h.arg)),
        "banner": if smtp { s.banner.as_deref().map(text) } else { None },
        "ehlo_extensions": s.ehlo_reply.as_ref().filter(|_| smtp).map(|r| {
            r.extensions.iter().map(|e| json!({"keyword": json_text(&e.keyword), "params": json_text(&e.params)})).collect::<Vec<_>>()
        }),
        "starttls_offered": verdict::starttls_offered(s),
        "upgrade_verb": s.upgrade.as_ref().map(|u| u.verb.name()),
        "starttls_sent": s.upgrade.is_some(),
        "starttls_reply": s.upgrade.as_ref().and_then(|u| u.reply.flatten()),
        "tls_handshake": s.tls_handshake(),
        "tls_version": s.tls.version.filter(|_| s.tls.server_hello.is_some()).map(version_label),
        "cipher": s.tls.cipher.filter(|_| s.tls.server_hello.is_some()).map(cipher_name),
        "sni": s.tls.sni.as_deref().map(text),
        "alpn": if s.tls.alpn.is_empty() { Value::Null } else { Value::Array(s.tls.alpn.iter().map(|a| text(a)).collect()) },
        "cert": cert,
        "tls_alert": alert,
        "mail_transactions": count(s.mail_transactions),
        "messages_accepted": count(s.messages_accepted),
        "rcpt_count": count(s.rcpt_count),
        "mail_from": if clear_counts { envelope(&s.mail_from, opts) } else { Value::Null },
        "rcpt_to": if clear_counts { envelope(&s.rcpt_to, opts) } else { Value::Null },
        "bytes_client": s.wire_bytes[0],
        "bytes_server": s.wire_bytes[1],
        "clean_close": if clear_counts { json!(s.quit.is_some_and(|q| q.1 == Some(Some(221)))) } else { Value::Null },
        "auth_mechanisms": if clear_counts { json!(s.auth_mechanisms) } else { Value::Null },
        "credentials": if s.credentials.is_empty() { Value::Null } else { json!(s.credentials) },
        "verdict": s.verdict.map(|v| v.name()),
        "evidence": s.evidence.iter().map(|e| json!({"text": e.text, "frame": e.frame, "dir": e.side.map(|d| d.name())})).collect::<Vec<_>>(),
        "findings": s.findings.iter().map(|f| json!({"name": f.name, "text": f.text, "frame": f.frame})).collect::<Vec<_>>(),
        "capture_complete": capture_complete,
        "uses_bdat": if clear_counts { json!(s.uses_bdat) } else { Value::Null },
        "vlan": s.vlan,
        "packets": s.packets,
        "tcp_anomalies": {
            "retransmissions": s.streams[0].retransmissions + s.streams[1].retransmissions,
            "out_of_order": s.streams[0].out_of_order + s.streams[1].out_of_order,
            "conflicting_overlaps": s.streams[0].conflicting_overlaps + s.streams[1].conflicting_overlaps,
            "gaps": s.streams[0].gaps + s.streams[1].gaps,
            "gap_bytes": s.streams[0].gap_bytes + s.streams[1].gap_bytes,
        },
    })
}

/// NDJSON writer.
pub struct Writer<'a> {
    out: Box<dyn Write + 'a>,
    opts: Options,
}

impl<'a> Writer<'a> {
    /// Writes to `out`.
    pub fn new(out: Box<dyn Write + 'a>, opts: Options) -> Self {
        Self { out, opts }
    }
}

impl super::RecordWriter for Writer<'_> {
    fn write(&mut self, s: &Session) -> io::Result<()> {
        let mut ser = serde_json::Serializer::with_formatter(&mut self.out, SafeFormatter);
        serde::Serialize::serialize(&record(s, self.opts), &mut ser).map_err(io::Error::other)?;
        self.out.write_all(b"\n")?;
        // Streamed as sessions end: a reader of a pipe sees each record at once.
        self.out.flush()
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
