//! One NDJSON line, as smtpscope writes it, parsed into typed structs and turned back into a
//! [`Session`]: as much of one as a record carries, enough for the reports, `check` and `pairs`
//! to reach the same results as on the capture the record came from.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};

use rustc_hash::FxHashMap;
use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;

use crate::capture::Micros;
use crate::flow::{EndReason, StreamStats};
use crate::session::tls_version_name;
use crate::session::{
    Alert, CertInfo, EhloReply, Evidence, Extension, Finding, Hello, Kind, Proof, RecordOrigin, Session, Side, Tunnel,
    Upgrade, UpgradeVerb, Verdict, FINDINGS,
};
use crate::tls::alert_name;

/// The record layout this reader understands.
pub const SCHEMA_VERSION: u32 = 1;

/// A string that borrows from the line when it holds no escape (nearly always), so a record
/// costs few allocations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Str<'a>(pub Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Str<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Str<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Str(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Str(Cow::Owned(v.to_string())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(Str(Cow::Owned(v)))
            }
        }
        d.deserialize_str(V(std::marker::PhantomData))
    }
}

impl Str<'_> {
    fn bytes(&self) -> Vec<u8> {
        self.0.as_bytes().to_vec()
    }
}

/// An EHLO extension line.
#[derive(Debug, Deserialize)]
pub struct RawExtension<'a> {
    /// Keyword.
    #[serde(borrow)]
    pub keyword: Str<'a>,
    /// Parameters.
    #[serde(borrow, default)]
    pub params: Option<Str<'a>>,
}

/// The server certificate.
#[derive(Debug, Deserialize)]
pub struct RawCert<'a> {
    /// Subject, RFC 4514.
    #[serde(borrow)]
    pub subject: Option<Str<'a>>,
    /// Issuer, RFC 4514.
    #[serde(borrow)]
    pub issuer: Option<Str<'a>>,
    /// Serial, hex.
    #[serde(borrow)]
    pub serial: Option<Str<'a>>,
    /// SHA-1 of the DER.
    #[serde(borrow)]
    pub sha1: Option<Str<'a>>,
    /// SHA-256 of the DER.
    #[serde(borrow)]
    pub sha256: Option<Str<'a>>,
    /// Validity start, RFC 3339.
    #[serde(borrow)]
    pub not_before: Option<Str<'a>>,
    /// Validity end, RFC 3339.
    #[serde(borrow)]
    pub not_after: Option<Str<'a>>,
    /// `DNS:…` and other SANs.
    #[serde(borrow)]
    pub sans: Option<Vec<Str<'a>>>,
    /// Issuer equals subject.
    pub self_signed: Option<bool>,
    /// Key size.
    pub key_bits: Option<u32>,
    /// Signature algorithm.
    #[serde(borrow)]
    pub signature: Option<Str<'a>>,
}

/// A cleartext TLS alert.
#[derive(Debug, Deserialize)]
pub struct RawAlert<'a> {
    /// RFC 8446 name.
    #[serde(borrow)]
    pub name: Str<'a>,
    /// `fatal` or `warning`.
    #[serde(borrow)]
    pub level: Option<Str<'a>>,
    /// `client` or `server`.
    #[serde(borrow)]
    pub from: Option<Str<'a>>,
    /// Frame.
    pub frame: Option<u64>,
}

/// One evidence line.
#[derive(Debug, Deserialize)]
pub struct RawEvidence<'a> {
    /// What was seen.
    #[serde(borrow)]
    pub text: Str<'a>,
    /// Frame.
    pub frame: Option<u64>,
    /// `client` or `server`.
    #[serde(borrow)]
    pub dir: Option<Str<'a>>,
    /// Live with `-w`: the capture file holding `frame`.
    #[serde(borrow)]
    pub file: Option<Str<'a>>,
}

/// One finding.
#[derive(Debug, Deserialize)]
pub struct RawFinding<'a> {
    /// Stable name.
    #[serde(borrow)]
    pub name: Str<'a>,
    /// Explanation.
    #[serde(borrow)]
    pub text: Option<Str<'a>>,
    /// Frame.
    pub frame: Option<u64>,
}

/// TCP reassembly counters, both directions together.
#[derive(Debug, Default, Deserialize)]
pub struct RawAnomalies {
    /// Retransmitted segments.
    pub retransmissions: Option<u64>,
    /// Out-of-order segments.
    pub out_of_order: Option<u64>,
    /// Overlaps whose bytes differ.
    pub conflicting_overlaps: Option<u64>,
    /// Gaps.
    pub gaps: Option<u64>,
    /// Bytes in gaps.
    pub gap_bytes: Option<u64>,
}

/// A record as written (schema 1). Keys this reader does not know are ignored (a newer writer
/// may append some); keys it knows but that are missing are unknown, as `null` would be.
#[derive(Debug, Deserialize)]
pub struct RawRecord<'a> {
    /// Record layout.
    pub schema_version: u32,
    /// Input file of the capture.
    #[serde(borrow)]
    pub file: Option<Str<'a>>,
    /// Capture interface.
    #[serde(borrow)]
    pub interface: Option<Str<'a>>,
    /// Sensor name (written by sensors that have one).
    #[serde(borrow)]
    pub sensor: Option<Str<'a>>,
    /// Client `ip:port`.
    #[serde(borrow)]
    pub client: Str<'a>,
    /// Server `ip:port`.
    #[serde(borrow)]
    pub server: Str<'a>,
    /// First packet, RFC 3339.
    #[serde(borrow)]
    pub first_seen: Str<'a>,
    /// Last packet, RFC 3339.
    #[serde(borrow)]
    pub last_seen: Str<'a>,
    /// Proxy preamble.
    #[serde(borrow)]
    pub tunnel: Option<Str<'a>>,
    /// EHLO/HELO argument.
    #[serde(borrow)]
    pub helo: Option<Str<'a>>,
    /// Greeting.
    #[serde(borrow)]
    pub banner: Option<Str<'a>>,
    /// First EHLO reply's extensions.
    #[serde(borrow)]
    pub ehlo_extensions: Option<Vec<RawExtension<'a>>>,
    /// STARTTLS or X-ANONYMOUSTLS offered.
    pub starttls_offered: Option<bool>,
    /// Upgrade verb sent.
    #[serde(borrow)]
    pub upgrade_verb: Option<Str<'a>>,
    /// An upgrade verb was sent.
    pub starttls_sent: Option<bool>,
    /// Its reply code.
    pub starttls_reply: Option<u16>,
    /// ClientHello and ServerHello seen.
    pub tls_handshake: Option<bool>,
    /// Negotiated version label.
    #[serde(borrow)]
    pub tls_version: Option<Str<'a>>,
    /// Cipher suite name.
    #[serde(borrow)]
    pub cipher: Option<Str<'a>>,
    /// SNI.
    #[serde(borrow)]
    pub sni: Option<Str<'a>>,
    /// ALPN offered.
    #[serde(borrow)]
    pub alpn: Option<Vec<Str<'a>>>,
    /// Server certificate.
    #[serde(borrow)]
    pub cert: Option<RawCert<'a>>,
    /// First cleartext alert.
    #[serde(borrow)]
    pub tls_alert: Option<RawAlert<'a>>,
    /// MAIL FROM commands in clear.
    pub mail_transactions: Option<u32>,
    /// Messages accepted.
    pub messages_accepted: Option<u32>,
    /// RCPT TO commands.
    pub rcpt_count: Option<u32>,
    /// Envelope senders.
    #[serde(borrow)]
    pub mail_from: Option<Vec<Str<'a>>>,
    /// Envelope recipients.
    #[serde(borrow)]
    pub rcpt_to: Option<Vec<Str<'a>>>,
    /// Client payload bytes.
    pub bytes_client: Option<u64>,
    /// Server payload bytes.
    pub bytes_server: Option<u64>,
    /// QUIT answered 221 in clear.
    pub clean_close: Option<bool>,
    /// AUTH mechanisms used in clear.
    #[serde(borrow)]
    pub auth_mechanisms: Option<Vec<Str<'a>>>,
    /// Decoded secrets (forensics runs only).
    #[serde(borrow)]
    pub credentials: Option<Vec<Str<'a>>>,
    /// Verdict.
    #[serde(borrow)]
    pub verdict: Option<Str<'a>>,
    /// Evidence.
    #[serde(borrow)]
    pub evidence: Option<Vec<RawEvidence<'a>>>,
    /// Findings.
    #[serde(borrow)]
    pub findings: Option<Vec<RawFinding<'a>>>,
    /// SYN/SYN-ACK and FIN/RST seen.
    pub capture_complete: Option<bool>,
    /// CHUNKING used.
    pub uses_bdat: Option<bool>,
    /// Outer VLAN id.
    pub vlan: Option<u16>,
    /// Packets in the flow.
    pub packets: Option<u64>,
    /// Reassembly counters.
    pub tcp_anomalies: Option<RawAnomalies>,
    /// The host on the EHLO reply's first line.
    #[serde(borrow)]
    pub ehlo_host: Option<Str<'a>>,
    /// How the flow ended.
    #[serde(borrow)]
    pub end_reason: Option<Str<'a>>,
    /// The client sent FIN or RST.
    pub client_closed: Option<bool>,
    /// The server sent FIN or RST.
    pub server_closed: Option<bool>,
    /// Live with `-w`: the file holding the session's first packet.
    #[serde(borrow)]
    pub pcap_file: Option<Str<'a>>,
}

/// Just the version, to tell a newer record from a broken one.
#[derive(Deserialize)]
struct VersionOnly {
    schema_version: u32,
}

/// Why a line was not turned into a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Skip {
    /// `schema_version` above the one this reader knows.
    NewerSchema,
    /// Cut off (a killed writer, a truncated compressed file).
    Truncated,
    /// Not a JSON object of this schema (another format, a key of the wrong type, ...).
    NotARecord,
    /// Longer than [`super::MAX_LINE`].
    TooLong,
    /// An empty line: passed over, not counted.
    Blank,
}

impl Skip {
    /// Every reason, in report order.
    pub const ALL: [Skip; 4] = [Skip::NewerSchema, Skip::Truncated, Skip::NotARecord, Skip::TooLong];

    /// Name used in messages.
    pub fn name(self) -> &'static str {
        match self {
            Skip::NewerSchema => "newer-schema",
            Skip::Truncated => "truncated",
            Skip::NotARecord => "not-a-record",
            Skip::TooLong => "too-long",
            Skip::Blank => "blank",
        }
    }
}

/// Parses one line (without its line end) into a session. `complete` is false for a last line
/// without a line end (a writer killed mid-line).
pub fn parse_line(line: &[u8], complete: bool, origin: &mut Interner) -> Result<Session, Skip> {
    parse_line_boxed(line, complete, origin).map(|s| *s)
}

/// [`parse_line`], the session boxed: the reader hands it on through a few layers (the file,
/// the merge), and a pointer moves for less than a whole `Session` does.
pub(crate) fn parse_line_boxed(line: &[u8], complete: bool, origin: &mut Interner) -> Result<Box<Session>, Skip> {
    // One UTF-8 check of the whole line is cheaper than serde_json's check of every string.
    let Ok(text) = std::str::from_utf8(line) else {
        return Err(if complete { Skip::NotARecord } else { Skip::Truncated });
    };
    match serde_json::from_str::<RawRecord>(text) {
        Ok(r) => from_raw(&r, origin),
        Err(e) => {
            // A newer layout may change a key's type: its version still tells it apart.
            if serde_json::from_slice::<VersionOnly>(line).is_ok_and(|v| v.schema_version > SCHEMA_VERSION) {
                Err(Skip::NewerSchema)
            } else if e.is_eof() || !complete {
                Err(Skip::Truncated)
            } else {
                Err(Skip::NotARecord)
            }
        }
    }
}

/// A parsed record of a schema this reader knows, as a session.
fn from_raw(r: &RawRecord, origin: &mut Interner) -> Result<Box<Session>, Skip> {
    match r.schema_version {
        v if v > SCHEMA_VERSION => Err(Skip::NewerSchema),
        0 => Err(Skip::NotARecord),
        _ => to_boxed(r, origin).ok_or(Skip::NotARecord),
    }
}

/// Shares one `Arc<str>` among the many records that name the same file, interface or path.
#[derive(Debug, Default)]
pub struct Interner {
    last: Vec<Arc<str>>,
    /// The records file being read and the current line, for [`RecordOrigin`].
    pub path: Option<Arc<str>>,
    /// Current 1-based line.
    pub line: u64,
}

impl Interner {
    /// For the records file `path`.
    pub fn for_path(path: &str) -> Self {
        Self { path: Some(Arc::from(path)), ..Self::default() }
    }

    fn get(&mut self, s: &str) -> Arc<str> {
        if let Some(a) = self.last.iter().find(|a| ***a == *s) {
            return a.clone();
        }
        let a: Arc<str> = Arc::from(s);
        if self.last.len() >= 8 {
            self.last.remove(0);
        }
        self.last.push(a.clone());
        a
    }
}

fn side(s: Option<&Str>) -> Option<Side> {
    match s.map(|s| s.0.as_ref()) {
        Some("client") => Some(Side::Client),
        Some("server") => Some(Side::Server),
        _ => None,
    }
}

/// Days from 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn digits(b: &[u8]) -> Option<i64> {
    if b.is_empty() || !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(b.iter().fold(0i64, |n, d| n * 10 + i64::from(d - b'0')))
}

/// An RFC 3339 UTC time as the writer writes it (`YYYY-MM-DDTHH:MM:SS[.ffffff]Z`, or `@Nus` /
/// `@N` outside the years it can spell), in microseconds. `unit` scales the `@N` form.
pub fn parse_time(s: &str, unit: i64) -> Option<Micros> {
    if let Some(n) = s.strip_prefix('@') {
        return n.strip_suffix("us").unwrap_or(n).parse::<i64>().ok().and_then(|v| v.checked_mul(unit));
    }
    let b = s.as_bytes();
    let at = |r: std::ops::Range<usize>| b.get(r).and_then(digits);
    // The fast path: the writer's own four-digit-year form.
    if b.get(4) == Some(&b'-') && b.get(7) == Some(&b'-') && b.get(10) == Some(&b'T') && b.last() == Some(&b'Z') {
        let (y, mo, d) = (at(0..4)?, at(5..7)?, at(8..10)?);
        let (h, mi, sec) = (at(11..13)?, at(14..16)?, at(17..19)?);
        if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || sec > 60 {
            return None;
        }
        let us = match b.get(19..b.len() - 1) {
            Some([]) => 0,
            Some([b'.', frac @ ..]) if (1..=9).contains(&frac.len()) => {
                let v = digits(frac)?;
                let scale = 10i64.pow(6u32.abs_diff(frac.len() as u32));
                if frac.len() <= 6 {
                    v * scale
                } else {
                    v / scale
                }
            }
            _ => return None,
        };
        let secs = days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + sec;
        return secs.checked_mul(1_000_000)?.checked_add(us);
    }
    let t = time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok()?;
    let us = i64::try_from(t.unix_timestamp_nanos() / 1000).ok()?;
    Some(us)
}

fn version_from_label(s: &str) -> Option<u16> {
    if let Some(h) = s.strip_prefix("0x") {
        return u16::from_str_radix(h, 16).ok();
    }
    [0x0200, 0x0300, 0x0301, 0x0302, 0x0303, 0x0304].into_iter().find(|v| tls_version_name(*v) == Some(s))
}

fn cipher_from_name(s: &str) -> Option<u16> {
    if let Some(h) = s.strip_prefix("0x") {
        return u16::from_str_radix(h, 16).ok();
    }
    // tls-parser looks names up one by one; a record names its cipher every time (and the
    // names are ours, not an attacker's: no need for SipHash).
    static TABLE: OnceLock<FxHashMap<&'static str, u16>> = OnceLock::new();
    let t = TABLE.get_or_init(|| {
        (0..=u16::MAX).filter_map(tls_parser::TlsCipherSuite::from_id).map(|c| (c.name, c.id.0)).collect()
    });
    t.get(s).copied()
}

fn alert_from_name(s: &str) -> Option<u8> {
    static TABLE: OnceLock<HashMap<String, u8>> = OnceLock::new();
    let t = TABLE.get_or_init(|| (0..=255u8).map(|c| (alert_name(c), c)).collect());
    t.get(s).copied()
}

/// The `CN=` values of an RFC 4514 name (the record keeps the subject, not its parts): what a
/// certificate without DNS SANs is matched by.
fn common_names(subject: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut parts = Vec::new();
    let mut esc = false;
    for c in subject.chars() {
        if esc {
            cur.push(c);
            esc = false;
        } else if c == '\\' {
            esc = true;
        } else if c == ',' || c == '+' {
            parts.push(std::mem::take(&mut cur));
        } else {
            cur.push(c);
        }
    }
    parts.push(cur);
    for p in parts {
        if let Some(v) = p.trim().strip_prefix("CN=") {
            out.push(v.to_string());
        }
    }
    out
}

fn finding_name(s: &str) -> Option<&'static str> {
    FINDINGS.iter().copied().find(|n| *n == s)
}

fn strings(v: &Option<Vec<Str>>) -> Vec<String> {
    v.iter().flatten().map(|s| s.0.to_string()).collect()
}

/// An `ip:port` endpoint. The writer's IPv4 form (`a.b.c.d:port`, no leading zeros) is read
/// here, a few times faster than the standard parser, which reads everything else (IPv6, and
/// whatever it accepts that this does not: the same address either way).
fn endpoint(s: &str) -> Option<SocketAddr> {
    fn v4(s: &[u8]) -> Option<SocketAddr> {
        // Four octets and the port: each 1 to 3 (5) digits, no leading zero.
        let mut parts = [0u32; 5];
        let (mut at, mut cur, mut len) = (0usize, 0u32, 0u32);
        for &c in s {
            match c {
                b'0'..=b'9' if len < 5 && !(len > 0 && cur == 0) => {
                    cur = cur * 10 + u32::from(c - b'0');
                    len += 1;
                }
                b'.' | b':' if (c == b':') == (at == 3) && (1..=3).contains(&len) && cur <= 255 => {
                    *parts.get_mut(at)? = cur;
                    (at, cur, len) = (at + 1, 0, 0);
                }
                _ => return None,
            }
        }
        if at != 4 || len == 0 {
            return None;
        }
        let [a, b, c, d, _] = parts.map(|p| p as u8);
        Some(SocketAddr::from(([a, b, c, d], u16::try_from(cur).ok()?)))
    }
    v4(s.as_bytes()).or_else(|| s.parse().ok())
}

/// The session a record describes, or None when a key the reports cannot do without (the
/// endpoints, the times) does not parse.
pub fn to_session(r: &RawRecord, names: &mut Interner) -> Option<Session> {
    to_boxed(r, names).map(|s| *s)
}

/// [`to_session`], built in a box.
fn to_boxed(r: &RawRecord, names: &mut Interner) -> Option<Box<Session>> {
    let client = endpoint(&r.client.0)?;
    let server = endpoint(&r.server.0)?;
    let mut s = Box::new(Session::new(client, server));
    s.first_seen = parse_time(&r.first_seen.0, 1)?;
    s.last_seen = parse_time(&r.last_seen.0, 1)?;
    s.file = r.file.as_ref().map(|f| names.get(&f.0));
    s.interface = r.interface.as_ref().map(|f| names.get(&f.0));
    s.sensor = r.sensor.as_ref().map(|f| names.get(&f.0));
    s.pcap_file = r.pcap_file.as_ref().map(|f| names.get(&f.0));
    s.tunnel = match r.tunnel.as_ref().map(|t| t.0.as_ref()) {
        Some("socks4") => Some(Tunnel::Socks4),
        Some("socks5") => Some(Tunnel::Socks5),
        Some("http-connect") => Some(Tunnel::HttpConnect),
        _ => None,
    };
    s.verdict = match &r.verdict {
        Some(v) => Some(Verdict::from_name(&v.0)?),
        None => None,
    };
    let handshake = r.tls_handshake.unwrap_or(false);
    // What the flow carried is not a key of its own; the writer shows the cleartext dialogue's
    // keys only for SMTP, and its counts only while in clear.
    s.kind = match s.verdict {
        Some(Verdict::NotSmtp) => Kind::NotSmtp,
        Some(Verdict::ImplicitTls) => Kind::ImplicitTls,
        _ if r.mail_transactions.is_some()
            || r.helo.is_some()
            || r.banner.is_some()
            || r.ehlo_extensions.is_some()
            || r.starttls_offered.is_some()
            || s.verdict == Some(Verdict::Starttls) =>
        {
            Kind::Smtp
        }
        _ if handshake || r.tls_version.is_some() => Kind::MidTls,
        _ => Kind::Unknown,
    };
    s.banner = r.banner.as_ref().map(Str::bytes);
    let offered = r.starttls_offered;
    let closed = [r.client_closed, r.server_closed];
    s.client_closed = closed[0].unwrap_or(false);
    s.server_closed = closed[1].unwrap_or(false);
    // Rebuild the hello and its reply so that `starttls_offered` comes out as recorded.
    let exts: Option<Vec<Extension>> = r.ehlo_extensions.as_ref().map(|v| {
        v.iter()
            .map(|e| Extension {
                keyword: e.keyword.bytes(),
                params: e.params.as_ref().map(Str::bytes).unwrap_or_default(),
            })
            .collect()
    });
    if let Some(exts) = exts {
        s.ehlo_reply = Some(EhloReply {
            host: r.ehlo_host.as_ref().map(Str::bytes).unwrap_or_default(),
            extensions: exts,
            frame: 0,
            // A reply the capture cut leaves the offer unknown.
            cut: offered.is_none(),
        });
    }
    if let Some(h) = &r.helo {
        let reply_250 = offered.is_some() && s.ehlo_reply.is_some();
        s.hello = Some(Hello {
            verb: if offered == Some(false) && s.ehlo_reply.is_none() { "HELO" } else { "EHLO" },
            arg: h.bytes(),
            reply: reply_250.then_some(Some(250)),
            ..Hello::default()
        });
        s.ehlo_sent = s.hello.as_ref().is_some_and(|h| h.verb == "EHLO");
    }
    s.handshake_seen = r.capture_complete.unwrap_or(false) || (s.hello.is_none() && offered == Some(false));
    if r.starttls_sent.unwrap_or(false) || r.upgrade_verb.is_some() {
        let verb = match r.upgrade_verb.as_ref().map(|v| v.0.as_ref()) {
            Some("X-ANONYMOUSTLS") => UpgradeVerb::XAnonymousTls,
            _ => UpgradeVerb::Starttls,
        };
        s.upgrade = Some(Upgrade {
            verb,
            frame: 0,
            reply: r.starttls_reply.map(Some),
            reply_frame: 0,
            proof: if handshake { Proof::Tls } else { Proof::Pending },
        });
    }
    let version = r.tls_version.as_ref().and_then(|v| version_from_label(&v.0));
    let cipher = r.cipher.as_ref().and_then(|c| cipher_from_name(&c.0));
    s.tls.client_hello = handshake.then_some(0);
    s.tls.server_hello = (handshake || version.is_some() || cipher.is_some()).then_some(0);
    s.tls.version = version;
    s.tls.cipher = cipher;
    s.tls.sni = r.sni.as_ref().map(Str::bytes);
    s.tls.alpn = r.alpn.iter().flatten().map(Str::bytes).collect();
    if let Some(c) = &r.cert {
        let text = |v: &Option<Str>| v.as_ref().map(|s| s.0.to_string()).unwrap_or_default();
        let subject = text(&c.subject);
        let issuer = text(&c.issuer);
        let secs =
            |v: &Option<Str>| v.as_ref().and_then(|t| parse_time(&t.0, 1_000_000)).map_or(0, |us| us / 1_000_000);
        s.tls.cert = Some(Box::new(CertInfo {
            common_names: common_names(&subject),
            subject,
            issuer,
            serial: text(&c.serial),
            sha1: text(&c.sha1),
            sha256: text(&c.sha256),
            not_before: secs(&c.not_before),
            not_after: secs(&c.not_after),
            sans: strings(&c.sans),
            self_signed: c.self_signed.unwrap_or(false),
            key_bits: c.key_bits.unwrap_or(0),
            key_type: "",
            signature: text(&c.signature),
            chain_len: 1,
        }));
    }
    if let Some(a) = &r.tls_alert {
        s.tls.alert = Some(Alert {
            side: side(a.from.as_ref()).unwrap_or(Side::Server),
            level: if a.level.as_ref().is_some_and(|l| l.0 == "fatal") { 2 } else { 1 },
            description: alert_from_name(&a.name.0)
                .or_else(|| a.name.0.strip_prefix("alert_").and_then(|n| n.parse().ok()))
                .unwrap_or(0),
            frame: a.frame.unwrap_or(0),
        });
    }
    s.mail_transactions = r.mail_transactions.unwrap_or(0);
    s.messages_accepted = r.messages_accepted.unwrap_or(0);
    s.rcpt_count = r.rcpt_count.unwrap_or(0);
    s.mail_from = r.mail_from.iter().flatten().map(Str::bytes).collect();
    s.rcpt_to = r.rcpt_to.iter().flatten().map(Str::bytes).collect();
    s.wire_bytes = [r.bytes_client.unwrap_or(0), r.bytes_server.unwrap_or(0)];
    s.captured_bytes = s.wire_bytes;
    if r.clean_close == Some(true) {
        s.quit = Some((0, Some(Some(221))));
    }
    s.auth_mechanisms = strings(&r.auth_mechanisms);
    s.credentials = strings(&r.credentials);
    s.evidence = r
        .evidence
        .iter()
        .flatten()
        .map(|e| Evidence {
            text: e.text.0.to_string(),
            frame: e.frame,
            side: side(e.dir.as_ref()),
            file: e.file.as_ref().map(|f| names.get(&f.0)),
        })
        .collect();
    s.findings = r
        .findings
        .iter()
        .flatten()
        .filter_map(|f| {
            Some(Finding {
                name: finding_name(&f.name.0)?,
                text: f.text.as_ref().map(|t| t.0.to_string()).unwrap_or_default(),
                frame: f.frame,
            })
        })
        .collect();
    s.uses_bdat = r.uses_bdat.unwrap_or(false);
    s.vlan = r.vlan;
    s.packets = r.packets.unwrap_or(0);
    if let Some(a) = &r.tcp_anomalies {
        // The record sums both directions; the sums are kept on the client's side.
        s.streams[0] = StreamStats {
            retransmissions: a.retransmissions.unwrap_or(0),
            out_of_order: a.out_of_order.unwrap_or(0),
            conflicting_overlaps: a.conflicting_overlaps.unwrap_or(0),
            gaps: a.gaps.unwrap_or(0),
            gap_bytes: a.gap_bytes.unwrap_or(0),
            ..StreamStats::default()
        };
    }
    let end = r.end_reason.as_ref().map(|e| EndReason::from_name(&e.0));
    s.end = end.flatten().unwrap_or(EndReason::EndOfCapture);
    s.record = Some(Box::new(RecordOrigin {
        path: names.path.clone().unwrap_or_else(|| Arc::from("")),
        line: names.line,
        end_known: matches!(end, Some(Some(_))),
    }));
    Some(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_parse_as_the_writer_writes_them() {
        for t in [0i64, 1_000_000_123_456, -1, 1_764_000_000_000_001, 253_402_300_799_999_999] {
            assert_eq!(parse_time(&crate::timefmt::rfc3339(t), 1), Some(t), "{t}");
        }
        assert_eq!(parse_time("2026-11-22T11:22:55Z", 1), Some(1_795_346_575_000_000));
        assert_eq!(
            parse_time(&crate::timefmt::rfc3339_secs(-62_135_596_900), 1_000_000),
            Some(-62_135_596_900_000_000)
        );
        assert_eq!(parse_time("@-5us", 1), Some(-5));
        for bad in ["", "2026-13-01T00:00:00Z", "2026-01-01T00:00:00.Z", "x026-01-01T00:00:00Z", "@x"] {
            assert_eq!(parse_time(bad, 1), None, "{bad}");
        }
    }

    #[test]
    fn endpoints_parse_as_the_standard_parser_parses_them() {
        for e in [
            "10.1.2.3:25",
            "0.0.0.0:0",
            "255.255.255.255:65535",
            "1.2.3.4:65536",
            "256.1.1.1:25",
            "01.1.1.1:25",
            "1.1.1.1:025",
            "1.1.1.1:00025",
            "1.1.1.1:",
            "1.1.1:25",
            "1.1.1.1.1:25",
            "1.1.1.1:25x",
            "1.1.1.1 :25",
            "[fd00::1]:587",
            "[::ffff:1.2.3.4]:25",
            "1000.1.1.1:25",
            "",
        ] {
            assert_eq!(endpoint(e), e.parse().ok(), "{e}");
        }
    }

    proptest::proptest! {
        #[test]
        fn any_endpoint_text_parses_as_the_standard_parser_parses_it(e in "[0-9.:]{0,24}") {
            proptest::prop_assert_eq!(endpoint(&e), e.parse().ok());
        }

        #[test]
        fn any_v4_endpoint_round_trips(a: [u8; 4], port: u16) {
            let sa = SocketAddr::from((a, port));
            proptest::prop_assert_eq!(endpoint(&sa.to_string()), Some(sa));
        }
    }

    #[test]
    fn labels_parse_back_to_their_codes() {
        assert_eq!(version_from_label("TLS1.2"), Some(0x0303));
        assert_eq!(version_from_label("0x7e01"), Some(0x7e01));
        assert_eq!(cipher_from_name("TLS_AES_128_GCM_SHA256"), Some(0x1301));
        assert_eq!(cipher_from_name(&crate::tls::cipher_name(0xfefe)), Some(0xfefe));
        assert_eq!(alert_from_name("handshake_failure"), Some(40));
    }

    #[test]
    fn common_names_come_from_the_subject() {
        assert_eq!(common_names("CN=mx.example.org,O=Example\\, Inc."), ["mx.example.org"]);
        assert!(common_names("O=x").is_empty());
    }
}
