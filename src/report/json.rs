//! NDJSON records: one object per session, every key on every line, null where unknown.
//!
//! serde_json escapes only what JSON requires; a [`SafeFormatter`] additionally escapes DEL,
//! C1 controls and bidi/format characters as `\uXXXX`, and writes every control as `\u00XX`,
//! so no wire byte can act on a terminal that displays the output.

use std::io::{self, Write};

use std::net::SocketAddr;

use serde_json::ser::{CharEscape, Formatter};
use serde_json::Value;

use super::{push_community_id, push_endpoint, push_rfc3339, rfc3339_secs, Options};
use crate::capture::Micros;
use crate::escape::{is_format_char, json_text};
use crate::session::{address_domain, verdict, Extension, Kind, Session};
use crate::tls::{alert_name, cipher_name, version_label};

/// Version of the record layout.
pub const SCHEMA_VERSION: u32 = 1;

/// A serde_json formatter that escapes everything a terminal could interpret.
#[derive(Debug, Default, Clone, Copy)]
pub struct SafeFormatter;

/// Characters JSON allows raw that are escaped as `\uXXXX` here: DEL, C1 controls, format and
/// bidi characters, and the line/paragraph separators (which break JavaScript readers).
fn needs_u_escape(c: char) -> bool {
    c == '\u{7f}' || ('\u{80}'..='\u{9f}').contains(&c) || is_format_char(c) || c == '\u{2028}' || c == '\u{2029}'
}

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
        // `is_ascii` works a word at a time and memchr with SIMD, where a byte loop that may stop
        // early compiles to one compare per byte (this is a fifth of NDJSON output's time).
        if fragment.is_ascii() && memchr::memchr(0x7f, fragment.as_bytes()).is_none() {
            return w.write_all(fragment.as_bytes());
        }
        let mut start = 0;
        for (i, c) in fragment.char_indices() {
            if needs_u_escape(c) {
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

fn envelope(list: &[Vec<u8>], opts: Options, show: fn(&[u8]) -> String) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for a in list {
        let v = show(if opts.show_addresses { a } else { address_domain(a) });
        if !out.contains(&v) {
            out.push(v);
        }
    }
    out
}

/// Whether any byte of the word needs more than a copy inside a JSON string: a control, DEL,
/// non-ASCII (checked char by char), `"` or `\`.
#[inline]
fn word_needs_care(w: u64) -> bool {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    let has_zero = |v: u64| v.wrapping_sub(LO) & !v & HI != 0;
    let below_space = w.wrapping_sub(LO * 0x20) & !w & HI != 0;
    below_space
        || w & HI != 0
        || has_zero(w ^ (LO * b'"' as u64))
        || has_zero(w ^ (LO * b'\\' as u64))
        || has_zero(w ^ (LO * 0x7f))
}

/// `\uXXXX` (lower-case hex, surrogate pair above the BMP), as [`SafeFormatter`] writes it.
fn push_u(out: &mut Vec<u8>, c: u32) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut one = |u: u32| {
        out.extend_from_slice(b"\\u");
        for shift in [12, 8, 4, 0] {
            out.push(HEX[((u >> shift) & 0xf) as usize]);
        }
    };
    if c > 0xffff {
        let v = c - 0x10000;
        one(0xd800 + (v >> 10));
        one(0xdc00 + (v & 0x3ff));
    } else {
        one(c);
    }
}

/// The characters of `s` inside a JSON string, escaped exactly as serde_json with
/// [`SafeFormatter`] escapes them (the two are compared in the tests).
fn push_escaped(out: &mut Vec<u8>, s: &str) {
    let b = s.as_bytes();
    let mut i = 0;
    // Printable ASCII is copied eight bytes at a time.
    while let Some(chunk) = b.get(i..i + 8) {
        let w = u64::from_le_bytes(chunk.try_into().unwrap_or([0; 8]));
        if word_needs_care(w) {
            break;
        }
        i += 8;
    }
    let (done, rest) = s.split_at(i);
    out.extend_from_slice(done.as_bytes());
    let mut start = 0;
    for (at, c) in rest.char_indices() {
        let esc: Option<&[u8]> = match c {
            '"' => Some(b"\\\""),
            '\\' => Some(b"\\\\"),
            ' '..='~' => continue,
            _ => None,
        };
        let bad = esc.is_some() || c < ' ' || needs_u_escape(c);
        if !bad {
            continue;
        }
        out.extend_from_slice(rest.get(start..at).unwrap_or_default().as_bytes());
        match esc {
            Some(e) => out.extend_from_slice(e),
            None => push_u(out, c as u32),
        }
        start = at + c.len_utf8();
    }
    out.extend_from_slice(rest.get(start..).unwrap_or_default().as_bytes());
}

/// Builds one NDJSON line. Keys are written in schema order; a comma goes before every key and
/// array item that does not open its object or array.
struct Line<'b> {
    out: &'b mut Vec<u8>,
}

impl Line<'_> {
    fn sep(&mut self) {
        if !matches!(self.out.last(), Some(b'{' | b'[') | None) {
            self.out.push(b',');
        }
    }

    fn key(&mut self, k: &str) {
        self.sep();
        self.out.push(b'"');
        self.out.extend_from_slice(k.as_bytes());
        self.out.extend_from_slice(b"\":");
    }

    fn open(&mut self, k: &str, bracket: u8) {
        self.key(k);
        self.out.push(bracket);
    }

    fn close(&mut self, bracket: u8) {
        self.out.push(bracket);
    }

    fn null(&mut self, k: &str) {
        self.key(k);
        self.out.extend_from_slice(b"null");
    }

    fn string(&mut self, s: &str) {
        self.out.push(b'"');
        push_escaped(self.out, s);
        self.out.push(b'"');
    }

    /// Wire bytes as [`json_text`] shows them: valid UTF-8 as is, invalid bytes as `\xNN`.
    fn text(&mut self, bytes: &[u8]) {
        self.out.push(b'"');
        let mut rest = bytes;
        loop {
            match std::str::from_utf8(rest) {
                Ok(s) => {
                    push_escaped(self.out, s);
                    break;
                }
                Err(e) => {
                    let (good, bad) = rest.split_at(e.valid_up_to());
                    push_escaped(self.out, std::str::from_utf8(good).unwrap_or_default());
                    let n = e.error_len().unwrap_or(bad.len()).max(1);
                    for b in bad.iter().take(n) {
                        // The text `\xNN`, its backslash escaped for JSON.
                        const HEX: &[u8; 16] = b"0123456789ABCDEF";
                        self.out.extend_from_slice(b"\\\\x");
                        self.out.push(HEX[usize::from(b >> 4)]);
                        self.out.push(HEX[usize::from(b & 0xf)]);
                    }
                    rest = bad.get(n..).unwrap_or_default();
                    if rest.is_empty() {
                        break;
                    }
                }
            }
        }
        self.out.push(b'"');
    }

    fn str(&mut self, k: &str, v: &str) {
        self.key(k);
        self.string(v);
    }

    fn opt_str(&mut self, k: &str, v: Option<&str>) {
        match v {
            Some(v) => self.str(k, v),
            None => self.null(k),
        }
    }

    fn opt_text(&mut self, k: &str, v: Option<&[u8]>) {
        self.key(k);
        match v {
            Some(v) => self.text(v),
            None => self.out.extend_from_slice(b"null"),
        }
    }

    fn item_str(&mut self, v: &str) {
        self.sep();
        self.string(v);
    }

    fn num(&mut self, k: &str, v: impl itoa::Integer) {
        self.key(k);
        self.out.extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
    }

    fn opt_num(&mut self, k: &str, v: Option<impl itoa::Integer>) {
        match v {
            Some(v) => self.num(k, v),
            None => self.null(k),
        }
    }

    fn bool(&mut self, k: &str, v: bool) {
        self.key(k);
        self.out.extend_from_slice(if v { b"true" } else { b"false" });
    }

    fn opt_bool(&mut self, k: &str, v: Option<bool>) {
        match v {
            Some(v) => self.bool(k, v),
            None => self.null(k),
        }
    }

    fn strings(&mut self, k: &str, v: &[String]) {
        self.open(k, b'[');
        for s in v {
            self.item_str(s);
        }
        self.close(b']');
    }

    fn opt_strings(&mut self, k: &str, v: Option<&[String]>) {
        match v {
            Some(v) => self.strings(k, v),
            None => self.null(k),
        }
    }

    /// An RFC 3339 time, written without an intermediate string.
    fn time(&mut self, k: &str, t: Micros) {
        self.key(k);
        self.out.push(b'"');
        push_rfc3339(self.out, t);
        self.out.push(b'"');
    }

    fn endpoint(&mut self, k: &str, a: SocketAddr) {
        self.key(k);
        self.out.push(b'"');
        push_endpoint(self.out, a);
        self.out.push(b'"');
    }
}

/// The record's derived fields, shared by the NDJSON and CSV writers so that both apply the same
/// rules (what is shown only for SMTP, only while in clear, only after a ServerHello).
pub(crate) struct Fields<'a> {
    /// The session.
    pub s: &'a Session,
    smtp: bool,
    clear: bool,
    hello_seen: bool,
}

impl<'a> Fields<'a> {
    pub(crate) fn new(s: &'a Session) -> Self {
        let smtp = s.kind == Kind::Smtp;
        // Counts of the cleartext dialogue are unknown once it went inside TLS or was never seen;
        // a handshake aborted in clear never took it inside.
        let clear = smtp && !s.tls_established();
        Self { s, smtp, clear, hello_seen: s.tls.server_hello.is_some() }
    }

    pub(crate) fn helo(&self) -> Option<&'a [u8]> {
        self.s.hello.as_ref().filter(|_| self.smtp).map(|h| h.arg.as_slice())
    }

    pub(crate) fn banner(&self) -> Option<&'a [u8]> {
        self.s.banner.as_deref().filter(|_| self.smtp)
    }

    /// The host the server named on the first line of its EHLO reply.
    pub(crate) fn ehlo_host(&self) -> Option<&'a [u8]> {
        self.s.ehlo_reply.as_ref().filter(|_| self.smtp).map(|r| r.host.as_slice())
    }

    pub(crate) fn ehlo_extensions(&self) -> Option<&'a [Extension]> {
        self.s.ehlo_reply.as_ref().filter(|_| self.smtp).map(|r| r.extensions.as_slice())
    }

    pub(crate) fn starttls_offered(&self) -> Option<bool> {
        verdict::starttls_offered(self.s)
    }

    pub(crate) fn upgrade_verb(&self) -> Option<&'static str> {
        self.s.upgrade.as_ref().map(|u| u.verb.name())
    }

    pub(crate) fn starttls_reply(&self) -> Option<u16> {
        self.s.upgrade.as_ref().and_then(|u| u.reply.flatten())
    }

    pub(crate) fn tls_version(&self) -> Option<String> {
        self.s.tls.version.filter(|_| self.hello_seen).map(version_label)
    }

    pub(crate) fn cipher(&self) -> Option<String> {
        self.s.tls.cipher.filter(|_| self.hello_seen).map(cipher_name)
    }

    fn when_clear(&self, v: u32) -> Option<u32> {
        self.clear.then_some(v)
    }

    pub(crate) fn mail_transactions(&self) -> Option<u32> {
        self.when_clear(self.s.mail_transactions)
    }

    pub(crate) fn messages_accepted(&self) -> Option<u32> {
        self.when_clear(self.s.messages_accepted)
    }

    pub(crate) fn rcpt_count(&self) -> Option<u32> {
        self.when_clear(self.s.rcpt_count)
    }

    /// Envelope senders (domains unless `show_addresses`), distinct, each made text by `show`.
    pub(crate) fn mail_from(&self, opts: Options, show: fn(&[u8]) -> String) -> Option<Vec<String>> {
        self.clear.then(|| envelope(&self.s.mail_from, opts, show))
    }

    /// Envelope recipients, as [`Fields::mail_from`].
    pub(crate) fn rcpt_to(&self, opts: Options, show: fn(&[u8]) -> String) -> Option<Vec<String>> {
        self.clear.then(|| envelope(&self.s.rcpt_to, opts, show))
    }

    pub(crate) fn clean_close(&self) -> Option<bool> {
        self.clear.then(|| self.s.quit.is_some_and(|q| q.1 == Some(Some(221))))
    }

    pub(crate) fn auth_mechanisms(&self) -> Option<&'a [String]> {
        self.clear.then_some(self.s.auth_mechanisms.as_slice())
    }

    pub(crate) fn credentials(&self) -> Option<&'a [String]> {
        (!self.s.credentials.is_empty()).then_some(self.s.credentials.as_slice())
    }

    pub(crate) fn capture_complete(&self) -> bool {
        self.s.handshake_seen && (self.s.client_closed || self.s.server_closed)
    }

    pub(crate) fn uses_bdat(&self) -> Option<bool> {
        self.clear.then_some(self.s.uses_bdat)
    }
}

/// Writes the NDJSON object for a session (without the line end) to `out`. Every key is on
/// every line, `null` where unknown; the key order is the schema's.
pub fn write_line(out: &mut Vec<u8>, s: &Session, opts: Options) {
    let f = Fields::new(s);
    let st = &s.streams;
    out.push(b'{');
    let mut j = Line { out };
    j.num("schema_version", SCHEMA_VERSION);
    j.key("community_id");
    j.out.push(b'"');
    push_community_id(j.out, s.client, s.server);
    j.out.push(b'"');
    j.opt_str("file", s.file.as_deref());
    j.opt_str("interface", s.interface.as_deref());
    j.opt_str("sensor", s.sensor.as_deref());
    j.endpoint("client", s.client);
    j.endpoint("server", s.server);
    j.time("first_seen", s.first_seen);
    j.time("last_seen", s.last_seen);
    j.opt_str("tunnel", s.tunnel.map(|t| t.name()));
    j.opt_text("helo", f.helo());
    j.opt_text("banner", f.banner());
    match f.ehlo_extensions() {
        Some(exts) => {
            j.open("ehlo_extensions", b'[');
            for e in exts {
                j.sep();
                j.out.push(b'{');
                j.key("keyword");
                j.text(&e.keyword);
                j.key("params");
                j.text(&e.params);
                j.close(b'}');
            }
            j.close(b']');
        }
        None => j.null("ehlo_extensions"),
    }
    j.opt_bool("starttls_offered", f.starttls_offered());
    j.opt_str("upgrade_verb", f.upgrade_verb());
    j.bool("starttls_sent", s.upgrade.is_some());
    j.opt_num("starttls_reply", f.starttls_reply());
    j.bool("tls_handshake", s.tls_handshake());
    j.opt_str("tls_version", f.tls_version().as_deref());
    j.opt_str("cipher", f.cipher().as_deref());
    j.opt_text("sni", s.tls.sni.as_deref());
    if s.tls.alpn.is_empty() {
        j.null("alpn");
    } else {
        j.open("alpn", b'[');
        for a in &s.tls.alpn {
            j.sep();
            j.text(a);
        }
        j.close(b']');
    }
    match &s.tls.cert {
        Some(c) => {
            j.open("cert", b'{');
            j.str("subject", &c.subject);
            j.str("issuer", &c.issuer);
            j.str("serial", &c.serial);
            j.str("sha1", &c.sha1);
            j.str("sha256", &c.sha256);
            j.str("not_before", &rfc3339_secs(c.not_before));
            j.str("not_after", &rfc3339_secs(c.not_after));
            j.strings("sans", &c.sans);
            j.bool("self_signed", c.self_signed);
            j.num("key_bits", c.key_bits);
            j.str("signature", &c.signature);
            j.close(b'}');
        }
        None => j.null("cert"),
    }
    match s.tls.alert {
        Some(a) => {
            j.open("tls_alert", b'{');
            j.str("name", &alert_name(a.description));
            j.str("level", if a.level == 2 { "fatal" } else { "warning" });
            j.str("from", a.side.name());
            j.num("frame", a.frame);
            j.close(b'}');
        }
        None => j.null("tls_alert"),
    }
    j.opt_num("mail_transactions", f.mail_transactions());
    j.opt_num("messages_accepted", f.messages_accepted());
    j.opt_num("rcpt_count", f.rcpt_count());
    j.opt_strings("mail_from", f.mail_from(opts, json_text).as_deref());
    j.opt_strings("rcpt_to", f.rcpt_to(opts, json_text).as_deref());
    j.num("bytes_client", s.wire_bytes[0]);
    j.num("bytes_server", s.wire_bytes[1]);
    j.opt_bool("clean_close", f.clean_close());
    j.opt_strings("auth_mechanisms", f.auth_mechanisms());
    j.opt_strings("credentials", f.credentials());
    j.opt_str("verdict", s.verdict.map(|v| v.name()));
    j.open("evidence", b'[');
    for e in &s.evidence {
        j.sep();
        j.out.push(b'{');
        j.str("text", &e.text);
        j.opt_num("frame", e.frame);
        j.opt_str("dir", e.side.map(|d| d.name()));
        j.opt_str("file", e.file.as_deref());
        j.close(b'}');
    }
    j.close(b']');
    j.open("findings", b'[');
    for x in &s.findings {
        j.sep();
        j.out.push(b'{');
        j.str("name", x.name);
        j.str("text", &x.text);
        j.opt_num("frame", x.frame);
        j.close(b'}');
    }
    j.close(b']');
    j.bool("capture_complete", f.capture_complete());
    j.opt_bool("uses_bdat", f.uses_bdat());
    j.opt_num("vlan", s.vlan);
    j.num("packets", s.packets);
    j.open("tcp_anomalies", b'{');
    j.num("retransmissions", st[0].retransmissions + st[1].retransmissions);
    j.num("out_of_order", st[0].out_of_order + st[1].out_of_order);
    j.num("conflicting_overlaps", st[0].conflicting_overlaps + st[1].conflicting_overlaps);
    j.num("gaps", st[0].gaps + st[1].gaps);
    j.num("gap_bytes", st[0].gap_bytes + st[1].gap_bytes);
    j.close(b'}');
    j.opt_str("pcap_file", s.pcap_file.as_deref());
    // Appended after tcp_anomalies (schema rule): what `check` needs to judge a record exactly
    // as it judges the capture.
    j.opt_text("ehlo_host", f.ehlo_host());
    j.str("end_reason", s.end.name());
    j.bool("client_closed", s.client_closed);
    j.bool("server_closed", s.server_closed);
    if let Some(logs) = &s.logs {
        j.open("logs", b'[');
        for l in logs {
            j.sep();
            j.out.push(b'{');
            j.str("source", l.source);
            j.str("log_file", &l.log_file);
            j.str("log_session", &l.log_session);
            j.str("verdict", l.verdict.name());
            j.bool("agree", l.agree);
            j.open("differences", b'[');
            for d in &l.differences {
                j.item_str(d);
            }
            j.close(b']');
            j.opt_str("hint", l.hint);
            j.opt_str("hint_text", l.hint_text.as_deref());
            j.close(b'}');
        }
        j.close(b']');
    }
    j.close(b'}');
}

/// The NDJSON object for a session, as a value (for tests and the fuzzers; parsed from the very
/// line the writer writes, so the two cannot drift apart).
pub fn record(s: &Session, opts: Options) -> Value {
    let mut line = Vec::with_capacity(2048);
    write_line(&mut line, s, opts);
    serde_json::from_slice(&line).unwrap_or(Value::Null)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_c1_and_bidi_are_escaped() {
        let v = Value::String("a\u{1b}[31m\u{7f}\u{85}\u{202e}\n".into());
        assert_eq!(to_line(&v), "\"a\\u001b[31m\\u007f\\u0085\\u202e\\u000a\"");
    }

    fn direct(s: &str) -> String {
        let mut v = Vec::new();
        Line { out: &mut v }.string(s);
        String::from_utf8(v).unwrap()
    }

    fn direct_text(b: &[u8]) -> String {
        let mut v = Vec::new();
        Line { out: &mut v }.text(b);
        String::from_utf8(v).unwrap()
    }

    #[test]
    fn the_direct_writer_escapes_like_serde_json_with_the_safe_formatter() {
        for s in [
            "",
            "plain ascii longer than eight bytes",
            "q\"uote\\",
            "\u{1b}[2J\u{7f}\u{85}",
            "a\u{202e}b\u{2028}",
            "\u{E0041}x",
            "é…✓",
        ] {
            assert_eq!(direct(s), to_line(&Value::String(s.into())), "{s:?}");
        }
    }

    proptest::proptest! {
        #[test]
        fn direct_strings_match_serde_json(s in "\\PC*|[\\x00-\\x{a0}\\u{2028}\\u{202e}\\u{feff}\\u{e0020}]{0,40}") {
            proptest::prop_assert_eq!(direct(&s), to_line(&Value::String(s.clone())));
        }

        #[test]
        fn direct_wire_text_matches_json_text(b in proptest::collection::vec(proptest::num::u8::ANY, 0..64)) {
            proptest::prop_assert_eq!(direct_text(&b), to_line(&Value::String(json_text(&b))));
        }
    }

    /// A STARTTLS session whose TLS 1.2 (or 1.3) handshake got as far as the ServerHello, then
    /// `alert` (side, level) in clear.
    fn upgraded(version: u16, alert: Option<(crate::session::Side, u8)>) -> Session {
        let mut s = Session::new("10.0.0.1:40000".parse().unwrap(), "10.0.0.2:25".parse().unwrap());
        s.kind = Kind::Smtp;
        s.tls.client_hello = Some(8);
        s.tls.server_hello = Some(9);
        s.tls.version = Some(version);
        s.tls.alert = alert.map(|(side, level)| crate::session::Alert { side, level, description: 45, frame: 10 });
        s
    }

    #[test]
    fn a_tls12_handshake_the_client_aborts_in_clear_keeps_the_cleartext_counts() {
        let s = upgraded(0x0303, Some((crate::session::Side::Client, 2)));
        let f = Fields::new(&s);
        assert_eq!(f.mail_transactions(), Some(0));
        assert_eq!(f.clean_close(), Some(false));
        let mut line = Vec::new();
        write_line(&mut line, &s, Options::default());
        let v: Value = serde_json::from_slice(&line).unwrap();
        assert_eq!(v["tls_handshake"], true);
        assert_eq!(v["mail_transactions"], 0);
        assert_eq!(v["clean_close"], false);
    }

    #[test]
    fn an_established_or_tls13_handshake_leaves_the_cleartext_counts_unknown() {
        for s in [
            upgraded(0x0303, None),
            upgraded(0x0303, Some((crate::session::Side::Client, 1))),
            upgraded(0x0304, Some((crate::session::Side::Client, 2))),
        ] {
            let f = Fields::new(&s);
            assert_eq!(f.mail_transactions(), None, "{:?}", s.tls);
            assert_eq!(f.clean_close(), None, "{:?}", s.tls);
        }
    }

    #[test]
    fn astral_format_chars_use_surrogate_pairs() {
        assert_eq!(to_line(&Value::String("\u{E0041}".into())), "\"\\udb40\\udc41\"");
    }
}
