//! What a rule looks at, as both a wire session and a log session can supply it: the hosts and
//! port a rule matches on, and the facts a judgement rests on. A log knows less than the wire in
//! places (Postfix never logs its own address or its STARTTLS offer; a certificate is logged only
//! by Exchange), so every fact a log may lack is an `Option` or says "not logged": a rule or a
//! requirement that needs it is then "not logged" or unproven, never passed.

use std::net::IpAddr;

use crate::filter::Filter;
use crate::flow::EndReason;
use crate::logs::{LogRecord, Source};
use crate::ports::{port_name, port_role, shows_exchange};
use crate::report::endpoint;
use crate::session::{Kind, Session, UpgradeVerb, Verdict};

/// Which side a judgement's proof comes from (`proven_by` in check's output).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProvenBy {
    /// The capture shows it.
    Wire,
    /// A mail server's log shows it.
    Log,
}

impl ProvenBy {
    /// Name in NDJSON.
    pub fn name(self) -> &'static str {
        match self {
            ProvenBy::Wire => "wire",
            ProvenBy::Log => "log",
        }
    }
}

/// A session a policy can judge: a wire [`Session`] or a [`LogRecord`].
pub trait Subject {
    /// The client's address (None: not logged).
    fn client_ip(&self) -> Option<IpAddr>;
    /// The server's address (None: not logged).
    fn server_ip(&self) -> Option<IpAddr>;
    /// The server's port (None: not logged).
    fn server_port(&self) -> Option<u16>;
    /// The client's EHLO/HELO name, lower-case.
    fn helo_name(&self) -> Option<String>;
    /// The server's names from its greeting and EHLO reply, lower-case.
    fn banner_names(&self) -> Vec<String>;
    /// The DNS names of the server certificate, lower-case.
    fn cert_names(&self) -> Vec<String>;
    /// When the session started.
    fn first_seen(&self) -> crate::capture::Micros;

    /// The verdict (None: none reached).
    fn verdict(&self) -> Option<Verdict>;
    /// A TLS handshake completed.
    fn tls_handshake(&self) -> bool;
    /// Messages (`MAIL FROM`) that crossed in clear.
    fn mail_in_clear(&self) -> bool;
    /// AUTH in clear.
    fn auth_in_clear(&self) -> bool;
    /// A cleartext session left before the client's EHLO/HELO with nothing sent, not closed: the
    /// upgrade could still have come. The reason says why it counts as left.
    fn stopped_before_hello(&self) -> Option<String>;
    /// A finding by name.
    fn has_finding(&self, name: &str) -> bool;
    /// The upgrade verbs of `forbid` that the server offered in clear; None when the offer is not
    /// known (a log that does not show the EHLO reply).
    fn offered(&self, forbid: &[String]) -> Option<Vec<String>>;
    /// The negotiated TLS version, or why it is not known.
    fn tls_version(&self) -> Result<u16, &'static str>;
    /// The server certificate is known, or why not.
    fn cert_known(&self) -> Result<(), &'static str>;
    /// The certificate's validity at the session's time is known (both bounds logged or seen).
    fn cert_validity_known(&self) -> bool;
    /// The certificate-name check was made (the wire compares it with SNI and names; a log cannot).
    fn cert_name_checked(&self) -> bool;
    /// The upgrade verb the client used.
    fn upgrade_verb(&self) -> Option<UpgradeVerb>;
    /// The evidence line quoted in reports (with its frame or log line).
    fn evidence_text(&self) -> String;

    /// The client as reports show it (None: not logged).
    fn client_text(&self) -> Option<String>;
    /// The server as reports show it (None: not logged).
    fn server_text(&self) -> Option<String>;
    /// The input file it came from.
    fn file_name(&self) -> Option<String>;
    /// The server port's role (Exchange's when the server shows Exchange).
    fn port_role(&self) -> Option<&'static str>;
    /// The same role in words.
    fn port_name(&self) -> Option<&'static str>;
    /// The display filter (`-Y`) keeps it.
    fn kept_by(&self, f: &Filter) -> bool;
}

fn lower(b: &[u8]) -> String {
    String::from_utf8_lossy(b).to_ascii_lowercase()
}

const NO_HELLO: &str = "no EHLO captured: the upgrade could still have come";

impl Subject for Session {
    fn client_ip(&self) -> Option<IpAddr> {
        Some(self.client.ip())
    }
    fn server_ip(&self) -> Option<IpAddr> {
        Some(self.server.ip())
    }
    fn server_port(&self) -> Option<u16> {
        Some(self.server.port())
    }
    fn helo_name(&self) -> Option<String> {
        self.hello.as_ref().map(|h| lower(&h.arg))
    }
    fn banner_names(&self) -> Vec<String> {
        let host = self.banner.as_ref().and_then(|b| b.split(|c| *c == b' ').next()).map(lower);
        let ehlo = self.ehlo_reply.as_ref().map(|r| lower(&r.host));
        host.into_iter().chain(ehlo).collect()
    }
    fn cert_names(&self) -> Vec<String> {
        self.tls
            .cert
            .as_ref()
            .map(|c| c.dns_names().iter().map(|n| n.to_ascii_lowercase()).collect())
            .unwrap_or_default()
    }
    fn first_seen(&self) -> crate::capture::Micros {
        self.first_seen
    }
    fn verdict(&self) -> Option<Verdict> {
        self.verdict
    }
    fn tls_handshake(&self) -> bool {
        Session::tls_handshake(self)
    }
    fn mail_in_clear(&self) -> bool {
        self.kind == Kind::Smtp && !Session::tls_handshake(self) && self.mail_transactions > 0
    }
    fn auth_in_clear(&self) -> bool {
        self.kind == Kind::Smtp && !Session::tls_handshake(self) && !self.auth_mechanisms.is_empty()
    }
    fn stopped_before_hello(&self) -> Option<String> {
        // A session that closed (FIN or RST) is over and proves itself.
        let left = self.hello.is_none()
            && !self.mail_in_clear()
            && !self.auth_in_clear()
            && matches!(self.end, EndReason::EndOfCapture | EndReason::Evicted | EndReason::Idle)
            && !self.client_closed
            && !self.server_closed;
        left.then(|| match &self.record {
            Some(r) if !r.end_known => format!("{NO_HELLO} (the record has no end_reason: judged as end-of-capture)"),
            _ => NO_HELLO.into(),
        })
    }
    fn has_finding(&self, name: &str) -> bool {
        self.findings.iter().any(|f| f.name == name)
    }
    fn offered(&self, forbid: &[String]) -> Option<Vec<String>> {
        let mut v: Vec<String> = self
            .ehlo_reply
            .iter()
            .flat_map(|r| r.extensions.iter())
            .map(|e| String::from_utf8_lossy(&e.keyword).to_ascii_uppercase())
            .filter(|k| forbid.contains(k))
            .collect();
        v.dedup();
        Some(v)
    }
    fn tls_version(&self) -> Result<u16, &'static str> {
        // A ServerHello cut by the snaplen proves the handshake, not its version.
        self.tls.version.ok_or("TLS version not captured")
    }
    fn cert_known(&self) -> Result<(), &'static str> {
        match self.tls.cert {
            Some(_) => Ok(()),
            None if self.has_finding("cert-not-visible-tls13") => Err("certificate not visible (TLS 1.3)"),
            None => Err("certificate not captured"),
        }
    }
    fn cert_validity_known(&self) -> bool {
        self.tls.cert.is_some()
    }
    fn cert_name_checked(&self) -> bool {
        true
    }
    fn upgrade_verb(&self) -> Option<UpgradeVerb> {
        self.upgrade.as_ref().map(|u| u.verb)
    }
    fn client_text(&self) -> Option<String> {
        Some(endpoint(self.client))
    }
    fn server_text(&self) -> Option<String> {
        Some(endpoint(self.server))
    }
    fn file_name(&self) -> Option<String> {
        self.file.as_deref().map(str::to_string)
    }
    fn port_role(&self) -> Option<&'static str> {
        port_role(self.server.port(), shows_exchange(self))
    }
    fn port_name(&self) -> Option<&'static str> {
        port_name(self.server.port(), shows_exchange(self))
    }
    fn kept_by(&self, f: &Filter) -> bool {
        f.matches(self)
    }
    fn evidence_text(&self) -> String {
        self.evidence
            .first()
            .map(|e| match e.frame {
                Some(f) => format!("{} (frame {f})", e.text),
                None => e.text.clone(),
            })
            .unwrap_or_default()
    }
}

/// A Receive log is the server's own: its ports take Exchange's roles.
fn exchange_server(r: &LogRecord) -> bool {
    r.source == Source::ExchangeReceive
}

impl Subject for LogRecord {
    fn client_ip(&self) -> Option<IpAddr> {
        self.client.map(|e| e.ip)
    }
    fn server_ip(&self) -> Option<IpAddr> {
        self.server.map(|e| e.ip)
    }
    fn server_port(&self) -> Option<u16> {
        self.server.and_then(|e| e.port)
    }
    fn helo_name(&self) -> Option<String> {
        self.helo.as_ref().map(|h| h.to_ascii_lowercase())
    }
    fn banner_names(&self) -> Vec<String> {
        self.banner.as_deref().and_then(|b| b.split(' ').next()).map(str::to_ascii_lowercase).into_iter().collect()
    }
    fn cert_names(&self) -> Vec<String> {
        let Some(c) = &self.cert else { return Vec::new() };
        let sans: Vec<String> = c
            .sans
            .iter()
            .flatten()
            .map(|s| s.strip_prefix("DNS:").unwrap_or(s).trim().to_ascii_lowercase())
            .filter(|s| !s.is_empty())
            .collect();
        if !sans.is_empty() {
            return sans;
        }
        // The subject's CN, where the log split the subject out.
        let cn = c
            .subject
            .as_deref()
            .and_then(|s| s.split(',').map(str::trim).find_map(|p| p.strip_prefix("CN=").map(str::to_ascii_lowercase)));
        cn.into_iter().collect()
    }
    fn first_seen(&self) -> crate::capture::Micros {
        self.first_seen
    }
    fn verdict(&self) -> Option<Verdict> {
        Some(self.verdict)
    }
    fn tls_handshake(&self) -> bool {
        self.tls_ok()
    }
    fn mail_in_clear(&self) -> bool {
        // The log counts MAIL inside TLS too: without TLS, every one crossed in clear.
        !self.tls_ok() && self.mail_transactions.unwrap_or(0) > 0
    }
    fn auth_in_clear(&self) -> bool {
        self.auth_in_clear.is_some() || (!self.tls_ok() && !self.auth_mechanisms.is_empty())
    }
    fn stopped_before_hello(&self) -> Option<String> {
        // A log session is judged plaintext only once the log shows its end: it proves itself.
        None
    }
    fn has_finding(&self, name: &str) -> bool {
        self.findings.iter().any(|f| f.name == name)
    }
    fn offered(&self, forbid: &[String]) -> Option<Vec<String>> {
        if forbid.is_empty() {
            return Some(Vec::new());
        }
        // `starttls_offered` is set only from a cleartext EHLO reply (or Postfix's client note).
        let offered = self.starttls_offered?;
        match &self.ehlo_extensions {
            Some(exts) => {
                let mut v: Vec<String> =
                    exts.iter().map(|(k, _)| k.to_ascii_uppercase()).filter(|k| forbid.contains(k)).collect();
                v.dedup();
                Some(v)
            }
            // Postfix's client notes the STARTTLS offer only: other verbs are not known.
            None if forbid.iter().all(|f| f == "STARTTLS") => {
                Some(if offered { vec!["STARTTLS".to_string()] } else { Vec::new() })
            }
            None => None,
        }
    }
    fn tls_version(&self) -> Result<u16, &'static str> {
        self.tls_version.as_deref().and_then(crate::session::tls_version_number).ok_or("TLS version not logged")
    }
    fn cert_known(&self) -> Result<(), &'static str> {
        match self.cert {
            Some(_) => Ok(()),
            None if matches!(self.source, Source::PostfixSmtpd | Source::PostfixSmtp) => {
                Err("certificate not logged (Postfix logs no certificate at TLS log level 1)")
            }
            None => Err("certificate not logged"),
        }
    }
    fn cert_validity_known(&self) -> bool {
        self.cert.as_ref().is_some_and(|c| c.not_before_us.is_some() && c.not_after_us.is_some())
    }
    fn cert_name_checked(&self) -> bool {
        false
    }
    fn upgrade_verb(&self) -> Option<UpgradeVerb> {
        self.upgrade_verb
    }
    fn evidence_text(&self) -> String {
        self.evidence.first().map(|e| format!("{} (line {})", e.text, e.line)).unwrap_or_default()
    }
    fn client_text(&self) -> Option<String> {
        self.client.map(|e| e.to_string())
    }
    fn server_text(&self) -> Option<String> {
        self.server.map(|e| e.to_string())
    }
    fn file_name(&self) -> Option<String> {
        Some(self.log_file.to_string())
    }
    fn port_role(&self) -> Option<&'static str> {
        port_role(self.server_port()?, exchange_server(self))
    }
    fn port_name(&self) -> Option<&'static str> {
        port_name(self.server_port()?, exchange_server(self))
    }
    fn kept_by(&self, f: &Filter) -> bool {
        f.matches_log(self)
    }
}
