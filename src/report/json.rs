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
use crate::escape::{is_format_char, json_text, utf8_runs, Run};
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

/// `\uXXXX` for `c` (a surrogate pair above the BMP), lower-case hex: the bytes and how many.
fn u_escape(c: u32) -> ([u8; 12], usize) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = [0u8; 12];
    let mut one = |at: usize, u: u32| {
        let hex = |shift: u32| HEX.get(((u >> shift) & 0xf) as usize).copied().unwrap_or(b'0');
        if let Some(dst) = out.get_mut(at..at + 6) {
            dst.copy_from_slice(&[b'\\', b'u', hex(12), hex(8), hex(4), hex(0)]);
        }
    };
    if c > 0xffff {
        let v = c - 0x10000;
        one(0, 0xd800 + (v >> 10));
        one(6, 0xdc00 + (v & 0x3ff));
        (out, 12)
    } else {
        one(0, c);
        (out, 6)
    }
}

fn write_u(w: &mut (impl Write + ?Sized), c: u32) -> io::Result<()> {
    let (b, n) = u_escape(c);
    w.write_all(b.get(..n).unwrap_or_default())
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

/// Whether a byte needs more than a copy inside a JSON string: a control, `"`, `\`, DEL, or any
/// non-ASCII byte (checked char by char). Written with `|` rather than `||` so that a loop over a
/// fixed chunk compiles to vector compares.
#[inline(always)]
fn byte_needs_care(b: u8) -> bool {
    (b.wrapping_sub(0x20) >= 0x5f) | (b == b'"') | (b == b'\\')
}

/// [`byte_needs_care`] for eight bytes at once.
#[inline(always)]
fn word_needs_care(w: u64) -> bool {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    let has_zero = |v: u64| v.wrapping_sub(LO) & !v & HI;
    let below_space = w.wrapping_sub(LO * 0x20) & !w;
    (below_space | w | has_zero(w ^ (LO * b'"' as u64)) | has_zero(w ^ (LO * b'\\' as u64)) | has_zero(w ^ (LO * 0x7f)))
        & HI
        != 0
}

/// Four bytes from `at` (zero where there are none: never clean, see [`all_clean`]).
fn u32_at(b: &[u8], at: usize) -> u64 {
    u64::from(u32::from_le_bytes(b.get(at..at + 4).and_then(|c| c.try_into().ok()).unwrap_or([0; 4])))
}

/// Eight bytes from `at`, as [`u32_at`].
fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b.get(at..at + 8).and_then(|c| c.try_into().ok()).unwrap_or([0; 8]))
}

/// Whether every byte of `b` can be copied as is. Most strings of a record are short and clean:
/// short ones are checked as one or two (overlapping) words instead of byte by byte, long ones 16
/// bytes at a time plus an overlapping last chunk. A read that cannot happen counts as unclean.
#[inline]
fn all_clean(b: &[u8]) -> bool {
    const CHUNK: usize = 16;
    let n = b.len();
    match n {
        0 => true,
        1..=3 => {
            // The first, middle and last byte cover every byte of a string this short; the
            // other five are spaces.
            let pick = |i: usize| u64::from(b.get(i).copied().unwrap_or(0));
            let w = pick(0) | pick(n / 2) << 8 | pick(n - 1) << 16 | 0x2020_2020_2000_0000;
            !word_needs_care(w)
        }
        4..=7 => !word_needs_care(u32_at(b, 0) | u32_at(b, n - 4) << 32),
        8..=16 => !word_needs_care(u64_at(b, 0)) && !word_needs_care(u64_at(b, n - 8)),
        _ => {
            let dirty = |c: &[u8]| match <&[u8; CHUNK]>::try_from(c) {
                Ok(c) => c.iter().fold(false, |acc, &x| acc | byte_needs_care(x)),
                Err(_) => true,
            };
            b.chunks_exact(CHUNK).all(|c| !dirty(c))
                && (n % CHUNK == 0 || !dirty(b.get(n - CHUNK..).unwrap_or_default()))
        }
    }
}

/// `\uXXXX`, as [`SafeFormatter`] writes it.
fn push_u(out: &mut Vec<u8>, c: u32) {
    let (b, n) = u_escape(c);
    out.extend_from_slice(b.get(..n).unwrap_or_default());
}

/// The characters of `b` inside a JSON string (without the quotes). Valid UTF-8 is escaped
/// exactly as serde_json with [`SafeFormatter`] escapes it, and each byte of an invalid sequence
/// becomes the text `\xNN` as [`json_text`] writes it (the three are compared in the tests).
/// A `&str` therefore comes out as serde_json would write it.
fn push_escaped(out: &mut Vec<u8>, b: &[u8]) {
    if all_clean(b) {
        out.extend_from_slice(b);
    } else {
        push_escaped_slow(out, b);
    }
}

/// [`push_escaped`] for text with something to escape or non-ASCII characters to check: walked
/// as UTF-8 as [`json_text`] walks it.
#[cold]
fn push_escaped_slow(out: &mut Vec<u8>, b: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    utf8_runs(b, |run| match run {
        Run::Text(s) => push_escaped_str(out, s),
        Run::Bad(x) => {
            let hex = |v: u8| HEX.get(usize::from(v)).copied().unwrap_or(b'0');
            // The text `\xNN`, its backslash escaped for JSON.
            out.extend_from_slice(&[b'\\', b'\\', b'x', hex(x >> 4), hex(x & 0xf)]);
        }
    });
}

/// Valid text inside a JSON string, escaped as serde_json with [`SafeFormatter`] escapes it.
fn push_escaped_str(out: &mut Vec<u8>, s: &str) {
    let mut start = 0;
    for (i, c) in s.char_indices() {
        let escaped: Option<&[u8]> = match c {
            '"' => Some(b"\\\""),
            '\\' => Some(b"\\\\"),
            _ => None,
        };
        if escaped.is_none() && c >= ' ' && !needs_u_escape(c) {
            continue;
        }
        out.extend_from_slice(s.as_bytes().get(start..i).unwrap_or_default());
        match escaped {
            Some(e) => out.extend_from_slice(e),
            None => push_u(out, u32::from(c)),
        }
        start = i + c.len_utf8();
    }
    out.extend_from_slice(s.as_bytes().get(start..).unwrap_or_default());
}

/// A key with its punctuation, built at compile time so that writing it (and often its value's
/// first byte or the whole `null`) is one copy of a constant rather than several pushes.
#[derive(Clone, Copy)]
struct Key {
    /// `,"name":` (`{"name":` for a key that opens its object).
    colon: &'static [u8],
    /// The same followed by the opening quote of a string value.
    quote: &'static [u8],
    /// The same followed by `null`.
    null: &'static [u8],
}

/// `key!("name")` for a key after another; `key!({ "name" })` for the first key of an object,
/// which opens it.
macro_rules! key {
    ($name:literal) => {
        key!(@ ",", $name)
    };
    ({ $name:literal }) => {
        key!(@ "{", $name)
    };
    (@ $before:literal, $name:literal) => {
        Key {
            colon: concat!($before, "\"", $name, "\":").as_bytes(),
            quote: concat!($before, "\"", $name, "\":\"").as_bytes(),
            null: concat!($before, "\"", $name, "\":null").as_bytes(),
        }
    };
}

/// Builds one NDJSON line. The caller writes keys in schema order with the separators they
/// need: a key built by `key!("name")` brings its comma, and array items are separated by
/// their index.
struct Line<'b> {
    out: &'b mut Vec<u8>,
}

impl Line<'_> {
    #[inline(always)]
    fn raw(&mut self, b: &[u8]) {
        self.out.extend_from_slice(b);
    }

    /// A key whose value is an array or object, opened by `bracket`.
    #[inline(always)]
    fn open(&mut self, k: Key, bracket: u8) {
        self.raw(k.colon);
        self.out.push(bracket);
    }

    /// The comma between array items.
    #[inline(always)]
    fn comma_unless(&mut self, first: bool) {
        if !first {
            self.out.push(b',');
        }
    }

    /// A string value: wire bytes as [`json_text`] shows them (valid UTF-8 as is, invalid bytes
    /// as `\xNN`), so a `&str` as serde_json writes it.
    #[inline(always)]
    fn text(&mut self, k: Key, v: &[u8]) {
        self.raw(k.quote);
        push_escaped(self.out, v);
        self.out.push(b'"');
    }

    #[inline(always)]
    fn str(&mut self, k: Key, v: &str) {
        self.text(k, v.as_bytes());
    }

    #[inline(always)]
    fn opt_str(&mut self, k: Key, v: Option<&str>) {
        self.opt_text(k, v.map(str::as_bytes));
    }

    #[inline(always)]
    fn opt_text(&mut self, k: Key, v: Option<&[u8]>) {
        match v {
            Some(v) => self.text(k, v),
            None => self.raw(k.null),
        }
    }

    /// An array item: `"…"`, after a comma unless it is the first.
    fn item(&mut self, first: bool, v: &[u8]) {
        self.raw(if first { b"\"" } else { b",\"" });
        push_escaped(self.out, v);
        self.out.push(b'"');
    }

    #[inline(always)]
    fn num(&mut self, k: Key, v: impl Into<u64>) {
        self.raw(k.colon);
        let v: u64 = v.into();
        // Most counts are a single digit: one push instead of formatting and a copy.
        match u8::try_from(v) {
            Ok(d @ 0..=9) => self.out.push(b'0' + d),
            _ => self.raw(itoa::Buffer::new().format(v).as_bytes()),
        }
    }

    #[inline(always)]
    fn opt_num(&mut self, k: Key, v: Option<impl Into<u64>>) {
        match v {
            Some(v) => self.num(k, v),
            None => self.raw(k.null),
        }
    }

    #[inline(always)]
    fn bool(&mut self, k: Key, v: bool) {
        self.raw(k.colon);
        self.raw(if v { b"true" } else { b"false" });
    }

    #[inline(always)]
    fn opt_bool(&mut self, k: Key, v: Option<bool>) {
        match v {
            Some(v) => self.bool(k, v),
            None => self.raw(k.null),
        }
    }

    #[inline(always)]
    fn strings(&mut self, k: Key, v: &[impl AsRef<str>]) {
        self.raw(k.colon);
        self.out.push(b'[');
        for (i, s) in v.iter().enumerate() {
            self.item(i == 0, s.as_ref().as_bytes());
        }
        self.out.push(b']');
    }

    #[inline(always)]
    fn opt_strings(&mut self, k: Key, v: Option<&[String]>) {
        match v {
            Some(v) => self.strings(k, v),
            None => self.raw(k.null),
        }
    }

    /// An RFC 3339 time, written without an intermediate string.
    #[inline(always)]
    fn time(&mut self, k: Key, t: Micros) {
        self.raw(k.quote);
        push_rfc3339(self.out, t);
        self.out.push(b'"');
    }

    #[inline(always)]
    fn endpoint(&mut self, k: Key, a: SocketAddr) {
        self.raw(k.quote);
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
    let mut j = Line { out };
    j.num(key!({ "schema_version" }), SCHEMA_VERSION);
    j.raw(key!("community_id").quote);
    push_community_id(j.out, s.client, s.server);
    j.out.push(b'"');
    j.opt_str(key!("file"), s.file.as_deref());
    j.opt_str(key!("interface"), s.interface.as_deref());
    j.opt_str(key!("sensor"), s.sensor.as_deref());
    j.endpoint(key!("client"), s.client);
    j.endpoint(key!("server"), s.server);
    j.time(key!("first_seen"), s.first_seen);
    j.time(key!("last_seen"), s.last_seen);
    j.opt_str(key!("tunnel"), s.tunnel.map(|t| t.name()));
    j.opt_text(key!("helo"), f.helo());
    j.opt_text(key!("banner"), f.banner());
    match f.ehlo_extensions() {
        Some(exts) => {
            j.open(key!("ehlo_extensions"), b'[');
            for (i, e) in exts.iter().enumerate() {
                j.comma_unless(i == 0);
                j.text(key!({ "keyword" }), &e.keyword);
                j.text(key!("params"), &e.params);
                j.out.push(b'}');
            }
            j.out.push(b']');
        }
        None => j.raw(key!("ehlo_extensions").null),
    }
    j.opt_bool(key!("starttls_offered"), f.starttls_offered());
    j.opt_str(key!("upgrade_verb"), f.upgrade_verb());
    j.bool(key!("starttls_sent"), s.upgrade.is_some());
    j.opt_num(key!("starttls_reply"), f.starttls_reply());
    j.bool(key!("tls_handshake"), s.tls_handshake());
    j.opt_str(key!("tls_version"), f.tls_version().as_deref());
    j.opt_str(key!("cipher"), f.cipher().as_deref());
    j.opt_text(key!("sni"), s.tls.sni.as_deref());
    if s.tls.alpn.is_empty() {
        j.raw(key!("alpn").null);
    } else {
        j.open(key!("alpn"), b'[');
        for (i, a) in s.tls.alpn.iter().enumerate() {
            j.item(i == 0, a);
        }
        j.out.push(b']');
    }
    match &s.tls.cert {
        Some(c) => {
            j.raw(key!("cert").colon);
            j.str(key!({ "subject" }), &c.subject);
            j.str(key!("issuer"), &c.issuer);
            j.str(key!("serial"), &c.serial);
            j.str(key!("sha1"), &c.sha1);
            j.str(key!("sha256"), &c.sha256);
            j.str(key!("not_before"), &rfc3339_secs(c.not_before));
            j.str(key!("not_after"), &rfc3339_secs(c.not_after));
            j.strings(key!("sans"), &c.sans);
            j.bool(key!("self_signed"), c.self_signed);
            j.num(key!("key_bits"), c.key_bits);
            j.str(key!("signature"), &c.signature);
            j.out.push(b'}');
        }
        None => j.raw(key!("cert").null),
    }
    match s.tls.alert {
        Some(a) => {
            j.raw(key!("tls_alert").colon);
            j.str(key!({ "name" }), &alert_name(a.description));
            j.str(key!("level"), if a.level == 2 { "fatal" } else { "warning" });
            j.str(key!("from"), a.side.name());
            j.num(key!("frame"), a.frame);
            j.out.push(b'}');
        }
        None => j.raw(key!("tls_alert").null),
    }
    j.opt_num(key!("mail_transactions"), f.mail_transactions());
    j.opt_num(key!("messages_accepted"), f.messages_accepted());
    j.opt_num(key!("rcpt_count"), f.rcpt_count());
    j.opt_strings(key!("mail_from"), f.mail_from(opts, json_text).as_deref());
    j.opt_strings(key!("rcpt_to"), f.rcpt_to(opts, json_text).as_deref());
    j.num(key!("bytes_client"), s.wire_bytes[0]);
    j.num(key!("bytes_server"), s.wire_bytes[1]);
    j.opt_bool(key!("clean_close"), f.clean_close());
    j.opt_strings(key!("auth_mechanisms"), f.auth_mechanisms());
    j.opt_strings(key!("credentials"), f.credentials());
    j.opt_str(key!("verdict"), s.verdict.map(|v| v.name()));
    j.open(key!("evidence"), b'[');
    for (i, e) in s.evidence.iter().enumerate() {
        j.comma_unless(i == 0);
        j.str(key!({ "text" }), &e.text);
        j.opt_num(key!("frame"), e.frame);
        j.opt_str(key!("dir"), e.side.map(|d| d.name()));
        j.opt_str(key!("file"), e.file.as_deref());
        j.out.push(b'}');
    }
    j.out.push(b']');
    j.open(key!("findings"), b'[');
    for (i, x) in s.findings.iter().enumerate() {
        j.comma_unless(i == 0);
        j.str(key!({ "name" }), x.name);
        j.str(key!("text"), &x.text);
        j.opt_num(key!("frame"), x.frame);
        j.out.push(b'}');
    }
    j.out.push(b']');
    j.bool(key!("capture_complete"), f.capture_complete());
    j.opt_bool(key!("uses_bdat"), f.uses_bdat());
    j.opt_num(key!("vlan"), s.vlan);
    j.num(key!("packets"), s.packets);
    j.raw(key!("tcp_anomalies").colon);
    j.num(key!({ "retransmissions" }), st[0].retransmissions + st[1].retransmissions);
    j.num(key!("out_of_order"), st[0].out_of_order + st[1].out_of_order);
    j.num(key!("conflicting_overlaps"), st[0].conflicting_overlaps + st[1].conflicting_overlaps);
    j.num(key!("gaps"), st[0].gaps + st[1].gaps);
    j.num(key!("gap_bytes"), st[0].gap_bytes + st[1].gap_bytes);
    j.out.push(b'}');
    j.opt_str(key!("pcap_file"), s.pcap_file.as_deref());
    // Appended after tcp_anomalies (schema rule): what `check` needs to judge a record exactly
    // as it judges the capture.
    j.opt_text(key!("ehlo_host"), f.ehlo_host());
    j.str(key!("end_reason"), s.end.name());
    j.bool(key!("client_closed"), s.client_closed);
    j.bool(key!("server_closed"), s.server_closed);
    if let Some(logs) = &s.logs {
        j.open(key!("logs"), b'[');
        for (i, l) in logs.iter().enumerate() {
            j.comma_unless(i == 0);
            j.str(key!({ "source" }), l.source);
            j.str(key!("log_file"), &l.log_file);
            j.str(key!("log_session"), &l.log_session);
            j.str(key!("verdict"), l.verdict.name());
            j.bool(key!("agree"), l.agree);
            j.strings(key!("differences"), &l.differences);
            j.opt_str(key!("hint"), l.hint);
            j.opt_str(key!("hint_text"), l.hint_text.as_deref());
            j.out.push(b'}');
        }
        j.out.push(b']');
    }
    j.out.push(b'}');
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

    fn quoted(b: &[u8]) -> String {
        let mut v = vec![b'"'];
        push_escaped(&mut v, b);
        v.push(b'"');
        String::from_utf8(v).unwrap()
    }

    fn direct(s: &str) -> String {
        quoted(s.as_bytes())
    }

    fn direct_text(b: &[u8]) -> String {
        quoted(b)
    }

    /// Clean runs of every length up to past two chunks, with one awkward piece at every
    /// position: the word and chunk checks of `all_clean` must see it wherever it falls, and the
    /// escaping must match serde_json and `json_text` byte for byte.
    #[test]
    fn the_fast_path_agrees_with_the_simple_escaping_on_tricky_input() {
        let pieces: [&[u8]; 16] = [
            b"",
            b"\"",
            b"\\",
            b"\x00",
            b"\n",
            b"\x1f",
            b"\x7f",
            b"\x80",
            "\u{e9}".as_bytes(),
            "\u{85}".as_bytes(),
            "\u{202e}".as_bytes(),
            "\u{E0041}".as_bytes(),
            b"\xf0\x9f",
            b"\xed\xa0\x80",
            b"\xf4\x90\x80\x80",
            b"\xc3",
        ];
        let alphabet = b"abc XYZ.-_~!#09/'";
        for len in 0..70 {
            let clean: Vec<u8> = alphabet.iter().copied().cycle().take(len).collect();
            for piece in pieces {
                for at in 0..=len {
                    let mut b = clean.clone();
                    b.splice(at..at, piece.iter().copied());
                    assert_eq!(all_clean(&b), !b.iter().any(|&x| byte_needs_care(x)), "{b:?}");
                    assert_eq!(quoted(&b), to_line(&Value::String(json_text(&b))), "{b:?}");
                }
            }
        }
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
