//! The session record: facts gathered by the SMTP and TLS stages, then judged by
//! [`verdict`] into a verdict with evidence and findings.

mod established;
pub mod logs;
pub mod transcript;
pub mod verdict;

use std::net::SocketAddr;
use std::sync::Arc;

use crate::capture::Micros;
use crate::flow::{EndReason, StreamStats};
pub use logs::LogLink;
pub use transcript::Transcript;

/// A word from a fixed vocabulary (a verb, a key type, a finding name). An alias, so that
/// serde's derive does not take the field for text borrowed from its input.
pub type Word = &'static str;

/// Reads back a `&'static str` field (a verb, a key type, a finding name): each distinct text
/// is leaked once and shared, so a store that unpacks sessions again and again stays bounded by
/// the vocabulary, not by the sessions.
pub fn interned<'de, D: serde::Deserializer<'de>>(d: D) -> Result<&'static str, D::Error> {
    let s = <String as serde::Deserialize>::deserialize(d)?;
    Ok(intern(s))
}

/// [`interned`] for a list of words.
pub fn interned_all<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<&'static str>, D::Error> {
    let v = <Vec<String> as serde::Deserialize>::deserialize(d)?;
    Ok(v.into_iter().map(intern).collect())
}

/// [`interned`] for an optional word.
pub fn interned_opt<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<&'static str>, D::Error> {
    let v = <Option<String> as serde::Deserialize>::deserialize(d)?;
    Ok(v.map(intern))
}

fn intern(s: String) -> &'static str {
    use std::collections::HashSet;
    use std::sync::{Mutex, OnceLock};
    static SEEN: OnceLock<Mutex<HashSet<&'static str>>> = OnceLock::new();
    let mut seen = SEEN.get_or_init(Default::default).lock().unwrap_or_else(|e| e.into_inner());
    if let Some(&k) = seen.get(s.as_str()) {
        return k;
    }
    let k: &'static str = Box::leak(s.into_boxed_str());
    seen.insert(k);
    k
}
pub use verdict::Verdict;

/// Which side a fact came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Side {
    /// The SMTP client.
    Client,
    /// The SMTP server.
    Server,
}

impl Side {
    /// Lower-case name for reports.
    pub fn name(self) -> &'static str {
        match self {
            Side::Client => "client",
            Side::Server => "server",
        }
    }
}

/// What the flow turned out to carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub enum Kind {
    /// Not decided (no or too little payload captured).
    #[default]
    Unknown,
    /// Cleartext SMTP (possibly upgraded later).
    Smtp,
    /// TLS from the client's first byte on a mail port.
    ImplicitTls,
    /// Payload on a mail port that is neither SMTP nor TLS.
    NotSmtp,
    /// TLS records on a mail port, the session's start not captured (capture began inside TLS).
    MidTls,
}

/// A proxy preamble found before SMTP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Tunnel {
    /// SOCKS version 4 (or 4a).
    Socks4,
    /// SOCKS version 5.
    Socks5,
    /// HTTP `CONNECT`.
    HttpConnect,
}

impl Tunnel {
    /// Name used in reports.
    pub fn name(self) -> &'static str {
        match self {
            Tunnel::Socks4 => "socks4",
            Tunnel::Socks5 => "socks5",
            Tunnel::HttpConnect => "http-connect",
        }
    }
}

/// The two verbs that ask for a TLS upgrade.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum UpgradeVerb {
    /// RFC 3207.
    Starttls,
    /// Exchange's hub-to-hub upgrade.
    XAnonymousTls,
}

impl UpgradeVerb {
    /// The verb as sent.
    pub fn name(self) -> &'static str {
        match self {
            UpgradeVerb::Starttls => "STARTTLS",
            UpgradeVerb::XAnonymousTls => "X-ANONYMOUSTLS",
        }
    }
}

/// One EHLO extension line: keyword and parameters, as the server wrote them.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Extension {
    /// Keyword (e.g. `STARTTLS`, `AUTH`), as sent.
    pub keyword: Vec<u8>,
    /// The rest of the line.
    pub params: Vec<u8>,
}

impl Extension {
    /// Case-insensitive keyword comparison.
    pub fn is(&self, kw: &str) -> bool {
        self.keyword.eq_ignore_ascii_case(kw.as_bytes())
    }

    /// Masked by a middlebox: all `X` but perhaps the last letter (Cisco writes `XXXXXXXA` for
    /// `STARTTLS`).
    pub fn is_masked(&self) -> bool {
        is_masked_keyword(&self.keyword)
    }
}

/// See [`Extension::is_masked`]; for a keyword not yet stored.
pub fn is_masked_keyword(kw: &[u8]) -> bool {
    kw.len() >= 3 && kw.iter().take(kw.len() - 1).all(|b| b.eq_ignore_ascii_case(&b'X'))
}

/// The first EHLO/HELO/LHLO and what came back.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct Hello {
    /// The verb used (upper case).
    #[serde(deserialize_with = "crate::session::interned")]
    pub verb: Word,
    /// Argument, trimmed.
    pub arg: Vec<u8>,
    /// Frame of the command.
    pub frame: u64,
    /// Reply code (None for a reply without a code).
    pub reply: Option<Option<u16>>,
    /// Frame of the reply.
    pub reply_frame: u64,
    /// The reply was cut (snaplen, gap, end) before its last line.
    pub reply_cut: bool,
}

/// The first EHLO's 250 reply.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct EhloReply {
    /// Host the server named on its first line.
    pub host: Vec<u8>,
    /// Extensions in order.
    pub extensions: Vec<Extension>,
    /// Frame of the reply.
    pub frame: u64,
    /// The reply was cut before its last line.
    pub cut: bool,
}

/// What followed a 220 to the upgrade verb.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub enum Proof {
    /// Nothing (yet).
    #[default]
    Pending,
    /// The client's next bytes were TLS.
    Tls,
    /// The client went on in cleartext SMTP.
    Cleartext,
}

/// The first upgrade attempt.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Upgrade {
    /// Verb used.
    pub verb: UpgradeVerb,
    /// Frame of the command.
    pub frame: u64,
    /// Reply code, once seen (inner None: a reply without a code).
    pub reply: Option<Option<u16>>,
    /// Frame of the reply.
    pub reply_frame: u64,
    /// What the next client bytes proved.
    pub proof: Proof,
}

/// Parsed certificate facts (first certificate of the server's chain).
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct CertInfo {
    /// Subject, RFC 4514.
    pub subject: String,
    /// Issuer, RFC 4514.
    pub issuer: String,
    /// Serial number, lower-case hex.
    pub serial: String,
    /// SHA-1 of the DER, lower-case hex.
    pub sha1: String,
    /// SHA-256 of the DER, lower-case hex.
    pub sha256: String,
    /// Validity start (seconds since the epoch).
    pub not_before: i64,
    /// Validity end (seconds since the epoch).
    pub not_after: i64,
    /// Subject alternative names, `DNS:…`, `IP:…`, `email:…`.
    pub sans: Vec<String>,
    /// Common names of the subject.
    pub common_names: Vec<String>,
    /// Issuer equals subject.
    pub self_signed: bool,
    /// Public key size in bits.
    pub key_bits: u32,
    /// Key algorithm (`RSA`, `EC`, …).
    #[serde(deserialize_with = "crate::session::interned")]
    pub key_type: Word,
    /// Signature algorithm name.
    pub signature: String,
    /// Certificates in the chain.
    pub chain_len: usize,
}

/// A cleartext TLS alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Alert {
    /// Who sent it.
    pub side: Side,
    /// 1 warning, 2 fatal.
    pub level: u8,
    /// Description code.
    pub description: u8,
    /// Frame.
    pub frame: u64,
}

/// TLS facts.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct TlsFacts {
    /// Frame of the client's ClientHello.
    pub client_hello: Option<u64>,
    /// Frame of the server's ServerHello (not a HelloRetryRequest).
    pub server_hello: Option<u64>,
    /// A HelloRetryRequest was seen.
    pub hello_retry: bool,
    /// Highest version the client offered.
    pub client_max_version: Option<u16>,
    /// Negotiated version.
    pub version: Option<u16>,
    /// Negotiated cipher suite id.
    pub cipher: Option<u16>,
    /// SNI host name.
    pub sni: Option<Vec<u8>>,
    /// ALPN protocols the client offered.
    pub alpn: Vec<Vec<u8>>,
    /// Server certificate, when visible (TLS ≤ 1.2).
    pub cert: Option<Box<CertInfo>>,
    /// Frame of the Certificate message.
    pub cert_frame: Option<u64>,
    /// First cleartext fatal alert (or first warning if no fatal).
    pub alert: Option<Alert>,
    /// Encrypted bytes per side (client, server).
    pub encrypted_bytes: [u64; 2],
    /// Encrypted alerts seen (end of session, usually close_notify).
    pub encrypted_alerts: u32,
}

/// A piece of evidence: what was seen, where.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Evidence {
    /// What was seen (escaped wire text where quoted).
    pub text: String,
    /// 1-based frame number in its input.
    pub frame: Option<u64>,
    /// Who sent it.
    pub side: Option<Side>,
    /// Live with `-w`: the capture file holding `frame` (which then counts from 1 in it).
    pub file: Option<Arc<str>>,
}

/// A finding: something a mail admin should know, with a stable name.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Finding {
    /// Stable name (part of the schema), e.g. `cleartext-auth`.
    #[serde(deserialize_with = "crate::session::interned")]
    pub name: Word,
    /// Human explanation.
    pub text: String,
    /// Frame where it was seen.
    pub frame: Option<u64>,
}

/// SMTP-level anomalies, counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SmtpAnomalies {
    /// Lines longer than the line limit (truncated).
    pub long_lines: u32,
    /// Server lines without a reply code.
    pub malformed_replies: u32,
    /// Replies with no command waiting for them.
    pub unsolicited_replies: u32,
    /// Commands dropped because too many were pipelined without replies.
    pub pipeline_overflow: u32,
}

/// Where the capture's edges left holes that matter for the verdict.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Gaps {
    /// A gap fell before the outcome was decided (procedure g).
    pub before_decision: bool,
    /// Gaps in the client stream.
    pub client: u64,
    /// Gaps in the server stream.
    pub server: u64,
}

/// Everything known about one session; the record reports are made from.
///
/// In declaration order (`repr(C)`): what the SMTP machine updates line by line comes first, so
/// with many flows open a dialogue's writes land in a few cache lines of the record rather than
/// all over it; what is filled once at the end (flow facts, verdict, sources) follows.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[repr(C)]
pub struct Session {
    /// The dialogue, when the engine records transcripts (terminal UI).
    pub transcript: Option<Box<Transcript>>,
    /// First hello command.
    pub hello: Option<Hello>,
    /// First 250 reply to EHLO.
    pub ehlo_reply: Option<EhloReply>,
    /// Evidence in order of appearance.
    pub evidence: Vec<Evidence>,
    /// Findings.
    pub findings: Vec<Finding>,
    /// Envelope senders (MAIL FROM paths) in clear, first few.
    pub mail_from: Vec<Vec<u8>>,
    /// Envelope recipients (RCPT TO paths) in clear, first few.
    pub rcpt_to: Vec<Vec<u8>>,
    /// First upgrade attempt.
    pub upgrade: Option<Upgrade>,
    /// Greeting text (first line, without code).
    pub banner: Option<Vec<u8>>,
    /// QUIT sent (frame) and its reply.
    pub quit: Option<(u64, Option<Option<u16>>)>,
    /// Gap facts.
    pub gaps: Gaps,
    /// Message bytes seen in clear.
    pub message_bytes: u64,
    /// SMTP anomalies.
    pub anomalies: SmtpAnomalies,
    /// Client commands after the first hello command (pipelined ones included).
    pub commands_after_hello: u32,
    /// MAIL FROM commands in clear.
    pub mail_transactions: u32,
    /// RCPT TO commands in clear.
    pub rcpt_count: u32,
    /// Messages accepted (250 after end of data / BDAT LAST).
    pub messages_accepted: u32,
    /// Greeting code.
    pub banner_code: Option<u16>,
    /// What the flow carried.
    pub kind: Kind,
    /// Proxy preamble before SMTP.
    pub tunnel: Option<Tunnel>,
    /// An EHLO (not HELO) was sent in clear.
    pub ehlo_sent: bool,
    /// BDAT was used.
    pub uses_bdat: bool,
    /// Flow id, unique within a run (the same for a session's in-progress snapshots and its
    /// final record).
    pub id: u64,
    /// Input file (None when live).
    pub file: Option<Arc<str>>,
    /// Capture interface (live).
    pub interface: Option<Arc<str>>,
    /// The sensor that saw it (`--sensor`, else the host name when live).
    pub sensor: Option<Arc<str>>,
    /// Client endpoint.
    pub client: SocketAddr,
    /// Server endpoint.
    pub server: SocketAddr,
    /// First packet.
    pub first_seen: Micros,
    /// Last packet.
    pub last_seen: Micros,
    /// First frame.
    pub first_frame: u64,
    /// Last frame.
    pub last_frame: u64,
    /// Packets.
    pub packets: u64,
    /// Payload on the wire (client, server).
    pub wire_bytes: [u64; 2],
    /// Payload captured (client, server).
    pub captured_bytes: [u64; 2],
    /// Reassembly counters (client, server).
    pub streams: [StreamStats; 2],
    /// AUTH mechanisms the client used in clear.
    pub auth_mechanisms: Vec<String>,
    /// Decoded AUTH secrets, only with `--show-credentials` (forensics).
    pub credentials: Vec<String>,
    /// TLS facts.
    pub tls: TlsFacts,
    /// Live with `-w`: the file holding the session's first packet.
    pub pcap_file: Option<Arc<str>>,
    /// Set when the session was read back from an NDJSON record (`-R`) instead of a capture.
    pub record: Option<Box<RecordOrigin>>,
    /// Matched server-log sessions, in a run with `--logs` (None: no logs were given).
    pub logs: Option<Vec<LogLink>>,
    /// Set when this is no wire session but a server-log session shown as a row of its own
    /// (`smtpscope logs` in the terminal UI): the log record, which the row's columns, tabs and
    /// filter read instead of the wire facts. Never set on a wire record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_log: Option<Box<crate::logs::LogRecord>>,
    /// Outer VLAN.
    pub vlan: Option<u16>,
    /// A snapshot of a session still open: the verdict is provisional ("if the capture ended
    /// now"). Reports only ever see finished sessions.
    pub in_progress: bool,
    /// SYN or SYN-ACK captured.
    pub handshake_seen: bool,
    /// Client closed (FIN or RST).
    pub client_closed: bool,
    /// Server closed (FIN or RST).
    pub server_closed: bool,
    /// How the flow ended.
    pub end: EndReason,
    /// Verdict, set when the session is finished (provisional in a snapshot).
    pub verdict: Option<Verdict>,
}

/// Where a session read back from an NDJSON record came from, and what the record did not say.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RecordOrigin {
    /// The records file, as given.
    pub path: Arc<str>,
    /// 1-based line in it.
    pub line: u64,
    /// The record carried `end_reason`; records written before it existed are judged as if the
    /// capture had ended with the session open (and the reason says so).
    pub end_known: bool,
}

/// Every finding name, as the schema lists them.
pub const FINDINGS: [&str; 15] = [
    "cleartext-auth",
    "starttls-injection",
    "response-injection",
    "starttls-stripped",
    "ehlo-masked",
    "weak-tls-version",
    "weak-cipher",
    "cert-expired",
    "cert-not-yet-valid",
    "cert-self-signed",
    "cert-weak-key",
    "cert-sha1-signature",
    "cert-name-mismatch",
    "cert-not-visible-tls13",
    "log-disagrees",
];

/// Most evidence lines kept per session.
pub const MAX_EVIDENCE: usize = 48;
/// Evidence lines a session's first note makes room for: a whole dialogue's notes and the verdict
/// line come to 6–9 (3,400 lab sessions), so one allocation, not a copy at the fifth, holds them
/// — with 100 k flows open that copy is two cold cache lines read and four written per session.
const EVIDENCE_FIRST: usize = 8;
/// Most envelope addresses kept per session and list.
pub const MAX_ADDRESSES: usize = 32;

/// The path inside `<…>` of a MAIL FROM / RCPT TO argument (or the bare word after the colon).
pub fn envelope_path(arg: &[u8]) -> &[u8] {
    let after = arg.iter().position(|b| *b == b':').and_then(|p| arg.get(p + 1..)).unwrap_or(arg);
    let after = crate::smtp::command::trim(after);
    if let Some(rest) = after.strip_prefix(b"<") {
        let end = rest.iter().position(|b| *b == b'>').unwrap_or(rest.len());
        return rest.get(..end).unwrap_or(rest);
    }
    let end = after.iter().position(|b| *b == b' ').unwrap_or(after.len());
    after.get(..end).unwrap_or(after)
}

/// The domain of an address (after the last `@`), or the whole path when it has none.
pub fn address_domain(path: &[u8]) -> &[u8] {
    path.iter().rposition(|b| *b == b'@').and_then(|p| path.get(p + 1..)).unwrap_or(path)
}

impl Session {
    /// A blank record for a flow between `client` and `server`.
    pub fn new(client: SocketAddr, server: SocketAddr) -> Self {
        Self {
            id: 0,
            in_progress: false,
            file: None,
            interface: None,
            sensor: None,
            client,
            server,
            first_seen: 0,
            last_seen: 0,
            first_frame: 0,
            last_frame: 0,
            packets: 0,
            vlan: None,
            handshake_seen: false,
            client_closed: false,
            server_closed: false,
            end: EndReason::EndOfCapture,
            wire_bytes: [0; 2],
            captured_bytes: [0; 2],
            streams: [StreamStats::default(); 2],
            kind: Kind::Unknown,
            tunnel: None,
            banner: None,
            banner_code: None,
            hello: None,
            ehlo_sent: false,
            ehlo_reply: None,
            commands_after_hello: 0,
            upgrade: None,
            mail_transactions: 0,
            rcpt_count: 0,
            mail_from: Vec::new(),
            rcpt_to: Vec::new(),
            messages_accepted: 0,
            message_bytes: 0,
            uses_bdat: false,
            quit: None,
            auth_mechanisms: Vec::new(),
            credentials: Vec::new(),
            tls: TlsFacts::default(),
            gaps: Gaps::default(),
            anomalies: SmtpAnomalies::default(),
            evidence: Vec::new(),
            findings: Vec::new(),
            verdict: None,
            transcript: None,
            pcap_file: None,
            record: None,
            logs: None,
            from_log: None,
        }
    }

    /// Adds evidence (bounded).
    pub fn note(&mut self, side: Option<Side>, frame: u64, text: impl Into<String>) {
        if self.evidence.len() < MAX_EVIDENCE {
            if self.evidence.capacity() == 0 {
                self.evidence.reserve_exact(EVIDENCE_FIRST);
            }
            self.evidence.push(Evidence { text: text.into(), frame: Some(frame), side, file: None });
        }
    }

    /// Adds a finding once per name.
    pub fn find(&mut self, name: &'static str, frame: Option<u64>, text: impl Into<String>) {
        debug_assert!(FINDINGS.contains(&name), "finding {name} missing from FINDINGS");
        if !self.findings.iter().any(|f| f.name == name) {
            self.findings.push(Finding { name, text: text.into(), frame });
        }
    }

    /// STARTTLS or X-ANONYMOUSTLS offered in the first EHLO reply (None: unknowable).
    pub fn starttls_offered(&self) -> Option<bool> {
        verdict::starttls_offered(self)
    }

    /// Whether the session became encrypted (handshake completed).
    pub fn tls_handshake(&self) -> bool {
        self.tls.client_hello.is_some() && self.tls.server_hello.is_some()
    }

    /// Community ID v1 of the flow (seed 0, TCP).
    pub fn community_id(&self) -> String {
        crate::community_id::community_id(self.client, self.server)
    }
}

/// The protocol versions smtpscope names, with their `TLS1.2` style names.
const TLS_VERSIONS: [(u16, &str); 6] = [
    (0x0200, "SSL2.0"),
    (0x0300, "SSL3.0"),
    (0x0301, "TLS1.0"),
    (0x0302, "TLS1.1"),
    (0x0303, "TLS1.2"),
    (0x0304, "TLS1.3"),
];

/// Human name of a TLS protocol version, `TLS1.2` style.
pub fn tls_version_name(v: u16) -> Option<&'static str> {
    TLS_VERSIONS.iter().find(|(n, _)| *n == v).map(|(_, name)| *name)
}

/// The version a `TLS1.2` style name stands for (as logs are labelled).
pub fn tls_version_number(name: &str) -> Option<u16> {
    TLS_VERSIONS.iter().find(|(_, n)| *n == name).map(|(v, _)| *v)
}
