//! The TLS stage: frames records per direction, parses the cleartext handshake with
//! tls-parser, and stops interpreting a direction once it is encrypted (after its
//! ChangeCipherSpec in TLS ≤ 1.2, after the ServerHello in TLS 1.3) — from then on records are
//! only counted, because tls-parser would happily "parse" ciphertext.

pub mod cert;

use tls_parser::{
    parse_tls_client_hello_extensions, parse_tls_message_handshake, parse_tls_server_hello_extensions, TlsExtension,
    TlsMessage, TlsMessageHandshake,
};

use crate::escape::concat;
use crate::session::{tls_version_name, Alert, Session, Side};

const CONTENT_CCS: u8 = 20;
const CONTENT_ALERT: u8 = 21;
const CONTENT_HANDSHAKE: u8 = 22;
const CONTENT_APPDATA: u8 = 23;
const HS_CLIENT_HELLO: u8 = 1;
const HS_SERVER_HELLO: u8 = 2;
const HS_CERTIFICATE: u8 = 11;
/// Handshake bytes held per direction while a message is incomplete (certificate chains).
const MAX_HANDSHAKE_BUF: usize = 128 * 1024;

/// SHA-256("HelloRetryRequest"): the ServerHello.random that marks an HRR (RFC 8446 4.1.3).
const HRR_RANDOM: [u8; 32] = [
    0xcf, 0x21, 0xad, 0x74, 0xe5, 0x9a, 0x61, 0x11, 0xbe, 0x1d, 0x8c, 0x02, 0x1e, 0x65, 0xb8, 0x91, 0xc2, 0xa2, 0x11,
    0x16, 0x7a, 0xbb, 0x8c, 0x5e, 0x07, 0x9e, 0x09, 0xe2, 0xc8, 0xa8, 0x33, 0x9c,
];

/// Whether `bytes` start like a TLS record: `Some(true/false)`, or `None` if too short to say.
pub fn looks_like_record(bytes: &[u8]) -> Option<bool> {
    let t = *bytes.first()?;
    if !(CONTENT_CCS..=CONTENT_APPDATA).contains(&t) {
        return Some(false);
    }
    let major = *bytes.get(1)?;
    Some(major == 3)
}

/// Whether `bytes` start with a handshake record carrying a ClientHello.
pub fn looks_like_client_hello(bytes: &[u8]) -> Option<bool> {
    if bytes.first()? != &CONTENT_HANDSHAKE {
        return Some(false);
    }
    if bytes.get(1)? != &3 || *bytes.get(2)? > 4 {
        return Some(false);
    }
    Some(*bytes.get(5)? == HS_CLIENT_HELLO)
}

/// Whether `bytes` read as a run of TLS records from their first byte (a capture that starts
/// inside a TLS session): every complete record header is plausible, and there is at least one.
pub fn looks_like_records(bytes: &[u8]) -> bool {
    let mut at = 0usize;
    let mut records = 0;
    while let Some(&[rtype, major, minor, hi, lo]) = bytes.get(at..at.saturating_add(5)) {
        let len = usize::from(u16::from_be_bytes([hi, lo]));
        if !(20..=23).contains(&rtype) || major != 3 || minor > 4 || len == 0 || len > 16384 + 2048 {
            return false;
        }
        records += 1;
        at = at.saturating_add(5 + len);
    }
    records > 0
}

#[derive(Default)]
struct Direction {
    hdr: [u8; 5],
    hdr_len: usize,
    remaining: usize,
    rtype: u8,
    /// Start of the current record's body, to catch alert bytes split across segments.
    body: Vec<u8>,
    handshake: Vec<u8>,
    encrypted: bool,
    /// Framing lost (gap or garbage): bytes are only counted from here on.
    lost: bool,
    /// Frame of the last bytes fed (what a hello cut by a gap is dated by).
    frame: u64,
}

/// Per-session TLS tracker for both directions.
#[derive(Default)]
pub struct Tracker {
    dirs: [Direction; 2],
}

fn idx(side: Side) -> usize {
    match side {
        Side::Client => 0,
        Side::Server => 1,
    }
}

impl Tracker {
    /// A tracker that has seen nothing.
    pub fn new() -> Self {
        Self::default()
    }

    /// Bytes from `side` were lost: the record framing cannot be trusted any more.
    pub fn gap(&mut self, side: Side, s: &mut Session) {
        let d = &mut self.dirs[idx(side)];
        // A handshake message cut by the gap still tells which hello it was.
        let pending = std::mem::take(&mut d.handshake);
        if !d.encrypted {
            note_partial_hello(side, &pending, s, d.frame);
        }
        d.lost = true;
    }

    /// Feeds bytes from `side`.
    pub fn feed(&mut self, side: Side, mut data: &[u8], frame: u64, s: &mut Session) {
        let i = idx(side);
        self.dirs[i].frame = frame;
        if self.dirs[i].lost {
            if let Some(c) = s.tls.encrypted_bytes.get_mut(i) {
                *c += data.len() as u64;
            }
            return;
        }
        while !data.is_empty() {
            let d = &mut self.dirs[i];
            if d.remaining == 0 {
                let need = 5 - d.hdr_len;
                let take = need.min(data.len());
                let (head, rest) = data.split_at(take.min(data.len()));
                if let Some(dst) = d.hdr.get_mut(d.hdr_len..d.hdr_len + head.len()) {
                    dst.copy_from_slice(head);
                }
                d.hdr_len += head.len();
                data = rest;
                if d.hdr_len < 5 {
                    return;
                }
                d.hdr_len = 0;
                if looks_like_record(&d.hdr) != Some(true) {
                    d.lost = true;
                    s.tls.encrypted_bytes[i] += data.len() as u64;
                    return;
                }
                let [rtype, _, _, len_hi, len_lo] = d.hdr;
                d.rtype = rtype;
                d.remaining = usize::from(u16::from_be_bytes([len_hi, len_lo]));
                d.body.clear();
                if d.encrypted {
                    s.tls.encrypted_bytes[i] += 5;
                }
                if d.remaining == 0 {
                    continue;
                }
            }
            let take = d.remaining.min(data.len());
            let (chunk, rest) = data.split_at(take);
            data = rest;
            d.remaining -= take;
            let done = d.remaining == 0;
            if d.encrypted {
                s.tls.encrypted_bytes[i] += take as u64;
                if d.rtype == CONTENT_ALERT && done {
                    s.tls.encrypted_alerts += 1;
                }
                if d.rtype != CONTENT_APPDATA
                    && d.rtype != CONTENT_ALERT
                    && d.rtype != CONTENT_CCS
                    && d.rtype != CONTENT_HANDSHAKE
                {
                    d.lost = true;
                }
                continue;
            }
            match d.rtype {
                CONTENT_HANDSHAKE => {
                    if d.handshake.len() + chunk.len() <= MAX_HANDSHAKE_BUF {
                        d.handshake.extend_from_slice(chunk);
                    } else {
                        d.handshake.clear();
                    }
                    self.handshake_messages(side, frame, s);
                }
                CONTENT_CCS => {
                    if done {
                        self.dirs[i].encrypted = true;
                    }
                }
                CONTENT_ALERT => {
                    d.body.extend_from_slice(chunk);
                    if let (true, Some(&[level, description])) = (done, d.body.first_chunk::<2>()) {
                        let alert = Alert { side, level, description, frame };
                        let replace = match s.tls.alert {
                            None => true,
                            Some(a) => a.level != 2 && alert.level == 2,
                        };
                        if replace {
                            s.tls.alert = Some(alert);
                            s.note(
                                Some(side),
                                frame,
                                format!(
                                    "TLS alert in clear: {} ({})",
                                    alert_name(alert.description),
                                    if alert.level == 2 { "fatal" } else { "warning" }
                                ),
                            );
                        }
                    }
                }
                _ => {
                    // Application data before the handshake finished: nothing to interpret.
                    s.tls.encrypted_bytes[i] += take as u64;
                }
            }
        }
    }

    fn handshake_messages(&mut self, side: Side, frame: u64, s: &mut Session) {
        let i = idx(side);
        loop {
            let d = &mut self.dirs[i];
            let Some(&[_, l0, l1, l2]) = d.handshake.first_chunk::<4>() else { return };
            let len = (usize::from(l0) << 16) | (usize::from(l1) << 8) | usize::from(l2);
            if d.handshake.len() < 4 + len {
                if 4 + len > MAX_HANDSHAKE_BUF {
                    note_partial_hello(side, &d.handshake, s, frame);
                    d.handshake.clear();
                }
                return;
            }
            let msg: Vec<u8> = d.handshake.drain(..4 + len).collect();
            self.message(side, &msg, frame, s);
            if self.dirs[i].encrypted {
                self.dirs[i].handshake.clear();
                return;
            }
        }
    }

    fn message(&mut self, side: Side, msg: &[u8], frame: u64, s: &mut Session) {
        let Ok((_, TlsMessage::Handshake(hs))) = parse_tls_message_handshake(msg) else {
            note_partial_hello(side, msg, s, frame);
            return;
        };
        match (side, hs) {
            (Side::Client, TlsMessageHandshake::ClientHello(ch)) => {
                let first = s.tls.client_hello.is_none();
                s.tls.client_hello.get_or_insert(frame);
                let mut max = ch.version.0;
                if let Some(ext) = ch.ext {
                    if let Ok((_, exts)) = parse_tls_client_hello_extensions(ext) {
                        for e in exts {
                            match e {
                                TlsExtension::SNI(names) => {
                                    if let Some((_, name)) = names.first() {
                                        s.tls.sni.get_or_insert_with(|| name.to_vec());
                                    }
                                }
                                TlsExtension::ALPN(protos) if s.tls.alpn.is_empty() => {
                                    s.tls.alpn = protos.iter().map(|p| p.to_vec()).collect();
                                }
                                TlsExtension::SupportedVersions(vs) => {
                                    if let Some(v) = vs.iter().map(|v| v.0).filter(|v| v & 0x0f0f != 0x0a0a).max() {
                                        max = max.max(v);
                                    }
                                }
                                _ => {}
                            }
                        }
                    }
                }
                s.tls.client_max_version = Some(max);
                if first {
                    let sni = s.tls.sni.as_deref().map(crate::escape::terminal);
                    let text = match &sni {
                        Some(n) => concat(&["ClientHello (offers up to ", &version_label(max), ", SNI ", n, ")"]),
                        None => concat(&["ClientHello (offers up to ", &version_label(max), ")"]),
                    };
                    s.note(Some(Side::Client), frame, text);
                }
            }
            (Side::Server, TlsMessageHandshake::ServerHello(sh)) => {
                if sh.random == HRR_RANDOM {
                    s.tls.hello_retry = true;
                    s.note(Some(Side::Server), frame, "HelloRetryRequest (not the ServerHello)");
                    return;
                }
                let mut version = sh.version.0;
                if let Some(ext) = sh.ext {
                    if let Ok((_, exts)) = parse_tls_server_hello_extensions(ext) {
                        for e in exts {
                            if let TlsExtension::SupportedVersions(vs) = e {
                                if let Some(v) = vs.first() {
                                    version = v.0;
                                }
                            }
                        }
                    }
                }
                if s.tls.server_hello.is_none() {
                    s.tls.server_hello = Some(frame);
                    s.tls.version = Some(version);
                    s.tls.cipher = Some(sh.cipher.0);
                    let cipher = cipher_name(sh.cipher.0);
                    s.note(
                        Some(Side::Server),
                        frame,
                        concat(&["ServerHello: ", &version_label(version), ", ", &cipher]),
                    );
                }
                if is_tls13(version) {
                    for d in &mut self.dirs {
                        d.encrypted = true;
                        d.handshake.clear();
                    }
                }
            }
            (Side::Server, TlsMessageHandshake::ServerHelloV13Draft18(sh)) => {
                if s.tls.server_hello.is_none() {
                    s.tls.server_hello = Some(frame);
                    s.tls.version = Some(0x0304);
                    s.tls.cipher = Some(sh.cipher.0);
                }
                for d in &mut self.dirs {
                    d.encrypted = true;
                }
            }
            (Side::Server, TlsMessageHandshake::Certificate(c)) if s.tls.cert.is_none() => {
                if let Some(first) = c.cert_chain.first() {
                    s.tls.cert = cert::parse_cached(first.data, c.cert_chain.len()).map(Box::new);
                    s.tls.cert_frame = Some(frame);
                    if let Some(ci) = &s.tls.cert {
                        let subject = ci.subject.clone();
                        s.note(Some(Side::Server), frame, format!("certificate: {subject}"));
                    }
                }
            }
            _ => {}
        }
    }
}

/// A handshake message we could not read whole still says which hello it was (snaplen cuts).
fn note_partial_hello(side: Side, msg: &[u8], s: &mut Session, frame: u64) {
    match (side, msg.first()) {
        (Side::Client, Some(&HS_CLIENT_HELLO)) if s.tls.client_hello.is_none() => {
            s.tls.client_hello = Some(frame);
            s.note(Some(side), frame, "ClientHello (cut short in the capture)");
        }
        (Side::Server, Some(&HS_SERVER_HELLO)) => {
            let hrr = msg.get(6..38).is_some_and(|r| r == HRR_RANDOM);
            if !hrr && s.tls.server_hello.is_none() {
                s.tls.server_hello = Some(frame);
                // legacy_version: below TLS 1.2 it is the version; 0x0303 may be TLS 1.2 or, with
                // a supported_versions extension the cut hid, TLS 1.3: unknown then
                if let Some(&[hi, lo]) = msg.get(4..6) {
                    let v = u16::from_be_bytes([hi, lo]);
                    s.tls.version = (v < 0x0303).then_some(v);
                }
                s.note(Some(side), frame, "ServerHello (cut short in the capture)");
            }
        }
        (Side::Server, Some(&HS_CERTIFICATE)) => {}
        _ => {}
    }
}

fn is_tls13(v: u16) -> bool {
    v == 0x0304 || (v & 0xff00) == 0x7f00
}

/// `TLS1.2` style name, or hex for unknown values.
pub fn version_label(v: u16) -> String {
    if (v & 0xff00) == 0x7f00 {
        return "TLS1.3".into();
    }
    tls_version_name(v).map_or_else(|| format!("0x{v:04x}"), str::to_string)
}

/// IANA name of a cipher suite, or its hex id.
pub fn cipher_name(id: u16) -> String {
    tls_parser::TlsCipherSuite::from_id(id).map_or_else(|| format!("0x{id:04X}"), |c| c.name.to_string())
}

/// Why a negotiated cipher suite is weak, judged by its IANA name (the registry spells every
/// property out: `TLS_RSA_WITH_RC4_128_SHA`, `TLS_DH_anon_WITH_AES_128_CBC_SHA`,
/// `TLS_RSA_EXPORT_WITH_DES40_CBC_SHA`, `TLS_RSA_WITH_NULL_SHA`); `None` for a sound one.
pub fn weak_cipher(name: &str) -> Option<&'static str> {
    let parts: Vec<&str> = name.split('_').collect();
    let has = |p: &str| parts.contains(&p);
    Some(if has("NULL") {
        "NULL encryption or authentication"
    } else if has("anon") {
        "anonymous key exchange (aNULL: no server authentication)"
    } else if name.contains("EXPORT") {
        "export-grade"
    } else if has("RC4") {
        "RC4"
    } else if has("3DES") {
        "3DES (64-bit blocks)"
    } else if has("DES") || has("DES40") {
        "single DES"
    } else {
        return None;
    })
}

/// RFC 8446 name of an alert description (snake_case of tls-parser's names).
pub fn alert_name(code: u8) -> String {
    let debug = tls_parser::TlsAlertDescription(code).to_string();
    if debug.starts_with("TlsAlertDescription") || debug.chars().all(|c| c.is_ascii_digit()) {
        return format!("alert_{code}");
    }
    let mut out = String::new();
    for (i, c) in debug.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// Adds the TLS findings for a finished session.
pub fn assess(s: &mut Session) {
    let Some(version) = s.tls.version else { return };
    if !s.tls_handshake() {
        return;
    }
    let frame = s.tls.server_hello;
    if version < 0x0303 && (version & 0xff00) != 0x7f00 {
        s.find("weak-tls-version", frame, format!("negotiated {} (below TLS1.2)", version_label(version)));
    }
    if let Some(id) = s.tls.cipher {
        let name = cipher_name(id);
        if let Some(why) = weak_cipher(&name) {
            s.find("weak-cipher", frame, format!("negotiated {name}: {why}"));
        }
    }
    if is_tls13(version) {
        s.find("cert-not-visible-tls13", frame, "TLS1.3 encrypts the certificate: it cannot be checked on the wire");
        return;
    }
    let Some(c) = s.tls.cert.clone() else { return };
    let at = s.first_seen / 1_000_000;
    if at > c.not_after {
        s.find("cert-expired", frame, format!("certificate expired {}", crate::timefmt::rfc3339_secs(c.not_after)));
    }
    if at < c.not_before {
        s.find(
            "cert-not-yet-valid",
            frame,
            format!("certificate valid only from {}", crate::timefmt::rfc3339_secs(c.not_before)),
        );
    }
    let anonymous = s.upgrade.as_ref().is_some_and(|u| u.verb == crate::session::UpgradeVerb::XAnonymousTls);
    let info = if anonymous { " (informational: X-ANONYMOUSTLS uses self-signed certificates by design)" } else { "" };
    if c.self_signed {
        s.find("cert-self-signed", frame, format!("self-signed certificate{info}"));
    }
    if c.weak_key() {
        s.find("cert-weak-key", frame, format!("{} key of {} bits", c.key_type, c.key_bits));
    }
    if c.weak_signature() {
        s.find("cert-sha1-signature", frame, format!("signed with {}", c.signature));
    }
    let expected = s
        .tls
        .sni
        .as_ref()
        .map(|n| String::from_utf8_lossy(n).into_owned())
        .or_else(|| {
            s.ehlo_reply.as_ref().map(|r| String::from_utf8_lossy(&r.host).into_owned()).filter(|h| !h.is_empty())
        })
        .or_else(|| {
            s.banner
                .as_ref()
                .and_then(|b| b.split(|c| *c == b' ').next())
                .map(|h| String::from_utf8_lossy(h).into_owned())
        });
    if let Some(host) = expected.filter(|h| h.contains('.')) {
        if !c.covers(&host) {
            let names = c.dns_names().join(", ");
            s.find(
                "cert-name-mismatch",
                frame,
                format!(
                    "certificate names [{}] do not cover {}{info}",
                    crate::escape::terminal(names.as_bytes()),
                    crate::escape::terminal(host.as_bytes())
                ),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weak_ciphers_are_known_by_their_iana_names() {
        for (name, why) in [
            ("TLS_RSA_WITH_RC4_128_MD5", "RC4"),
            ("TLS_ECDHE_RSA_WITH_RC4_128_SHA", "RC4"),
            ("TLS_RSA_WITH_NULL_SHA256", "NULL encryption or authentication"),
            ("TLS_NULL_WITH_NULL_NULL", "NULL encryption or authentication"),
            ("TLS_RSA_EXPORT_WITH_DES40_CBC_SHA", "export-grade"),
            ("TLS_DH_anon_WITH_AES_128_CBC_SHA", "anonymous key exchange (aNULL: no server authentication)"),
            ("TLS_ECDH_anon_WITH_AES_256_CBC_SHA", "anonymous key exchange (aNULL: no server authentication)"),
            ("TLS_RSA_WITH_3DES_EDE_CBC_SHA", "3DES (64-bit blocks)"),
            ("TLS_RSA_WITH_DES_CBC_SHA", "single DES"),
        ] {
            assert_eq!(weak_cipher(name), Some(why), "{name}");
        }
        for sound in ["TLS_AES_256_GCM_SHA384", "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "TLS_CHACHA20_POLY1305_SHA256"]
        {
            assert_eq!(weak_cipher(sound), None, "{sound}");
        }
        // Every name tls-parser knows with a weak part is caught by the same words.
        assert_eq!(weak_cipher(&cipher_name(0x000a)), Some("3DES (64-bit blocks)"));
        assert_eq!(weak_cipher(&cipher_name(0x0018)), Some("anonymous key exchange (aNULL: no server authentication)"));
    }

    #[test]
    fn a_session_that_negotiated_rc4_has_the_weak_cipher_finding() {
        let mut s = Session::new("10.0.0.1:1025".parse().unwrap(), "10.0.0.2:25".parse().unwrap());
        s.tls.client_hello = Some(4);
        s.tls.server_hello = Some(5);
        s.tls.version = Some(0x0303);
        s.tls.cipher = Some(0x0005);
        assess(&mut s);
        let f = s.findings.iter().find(|f| f.name == "weak-cipher").expect("weak-cipher");
        assert_eq!(f.text, "negotiated TLS_RSA_WITH_RC4_128_SHA: RC4");
        assert_eq!(f.frame, Some(5));
    }

    #[test]
    fn alert_names_follow_rfc8446() {
        assert_eq!(alert_name(40), "handshake_failure");
        assert_eq!(alert_name(0), "close_notify");
        assert_eq!(alert_name(112), "unrecognized_name");
    }

    #[test]
    fn client_hello_is_recognised_from_six_bytes() {
        assert_eq!(looks_like_client_hello(&[0x16, 3, 1, 0, 200, 1]), Some(true));
        assert_eq!(looks_like_client_hello(&[0x16, 3, 1]), None);
        assert_eq!(looks_like_client_hello(b"EHLO x"), Some(false));
    }

    #[test]
    fn tls13_drafts_are_tls13() {
        assert_eq!(version_label(0x7f1c), "TLS1.3");
        assert_eq!(version_label(0x0303), "TLS1.2");
    }
}
