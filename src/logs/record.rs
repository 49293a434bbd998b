//! The log session record and its verdict, decided only from what the log shows.

use std::net::IpAddr;
use std::sync::Arc;

use crate::capture::Micros;
use crate::session::{Finding, UpgradeVerb, Verdict};

/// Which log and which side a record comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Source {
    /// Exchange SmtpReceive protocol log (this server is the SMTP server).
    ExchangeReceive,
    /// Exchange SmtpSend protocol log (this server is the SMTP client).
    ExchangeSend,
    /// Postfix smtpd (server side).
    PostfixSmtpd,
    /// Postfix smtp (client side).
    PostfixSmtp,
}

impl Source {
    /// Name in records.
    pub fn name(self) -> &'static str {
        match self {
            Source::ExchangeReceive => "exchange-receive",
            Source::ExchangeSend => "exchange-send",
            Source::PostfixSmtpd => "postfix-smtpd",
            Source::PostfixSmtp => "postfix-smtp",
        }
    }

    /// The logging host is the SMTP server of the session.
    pub fn is_server_side(self) -> bool {
        matches!(self, Source::ExchangeReceive | Source::PostfixSmtpd)
    }
}

/// A logged endpoint: an address, with its port where the log has one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Endpoint {
    /// Address.
    pub ip: IpAddr,
    /// Port, when logged.
    pub port: Option<u16>,
}

/// Certificate facts as the log writes them (each `None` where not logged).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LogCert {
    /// SHA-1 thumbprint, lower-case hex.
    pub sha1: Option<String>,
    /// Subject, as logged (.NET DN form on Exchange).
    pub subject: Option<String>,
    /// Issuer, as logged.
    pub issuer: Option<String>,
    /// Serial number, lower-case hex.
    pub serial: Option<String>,
    /// Subject alternative names.
    pub sans: Option<Vec<String>>,
    /// Validity start, RFC 3339.
    pub not_before: Option<String>,
    /// Validity end, RFC 3339.
    pub not_after: Option<String>,
    /// Validity start, for findings.
    pub not_before_us: Option<Micros>,
    /// Validity end, for findings.
    pub not_after_us: Option<Micros>,
}

/// A quoted log line (masked) or a reason, with its line number.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LogEvidence {
    /// Text.
    pub text: String,
    /// 1-based line in the log file.
    pub line: u64,
}

/// Most evidence items kept per record.
pub const MAX_EVIDENCE: usize = 32;
/// Most raw lines kept per record (for the display filter's free text and the Log tab).
pub const MAX_LINES: usize = 64;
/// Longest raw line kept per record.
pub const MAX_LINE_KEPT: usize = 512;

/// One SMTP session as a server log shows it (serde: so the terminal UI can keep it packed).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct LogRecord {
    /// Log kind and side.
    pub source: Source,
    /// The file it was read from (`-` for stdin).
    pub log_file: Arc<str>,
    /// Exchange: the session-id as logged; Postfix: `<host>/<process>[<pid>]@<line>`.
    pub log_session: String,
    /// Time of the first line.
    pub first_seen: Micros,
    /// Time of the last line.
    pub last_seen: Micros,
    /// Line of the session's first line.
    pub first_line: u64,
    /// SMTP client.
    pub client: Option<Endpoint>,
    /// SMTP server.
    pub server: Option<Endpoint>,
    /// Postfix: the process name (`postfix/submission/smtpd`), for `--log-server`.
    pub process: Option<String>,
    /// First EHLO/HELO/LHLO argument the log shows.
    pub helo: Option<String>,
    /// Greeting text (without the code).
    pub banner: Option<String>,
    /// First EHLO reply's extensions (keyword, params).
    pub ehlo_extensions: Option<Vec<(String, String)>>,
    /// Upgrade offered in the first EHLO reply before TLS (None: not logged).
    pub starttls_offered: Option<bool>,
    /// Upgrade verb the client sent (as logged).
    pub upgrade_verb: Option<UpgradeVerb>,
    /// Reply code to the upgrade verb.
    pub upgrade_reply: Option<u16>,
    /// Line of the upgrade verb (or the line that implies it).
    pub upgrade_line: Option<u64>,
    /// Line of the first TLS proof (success line or certificate block).
    pub tls_line: Option<u64>,
    /// The log shows TLS from the first byte (Postfix wrapper mode).
    pub implicit_tls: bool,
    /// Line of a TLS failure (`TLS negotiation failed`, `SSL_accept error`, lost after STARTTLS).
    pub failure_line: Option<u64>,
    /// Postfix `starttls=N/M` of the disconnect summary.
    pub starttls_count: Option<(u32, u32)>,
    /// Negotiated version (`TLS1.2`), only from a success line.
    pub tls_version: Option<String>,
    /// Cipher as logged (never compared).
    pub cipher: Option<String>,
    /// Certificate as logged.
    pub cert: Option<LogCert>,
    /// MAIL FROM commands the log shows (None: not logged).
    pub mail_transactions: Option<u32>,
    /// AUTH mechanisms the client used.
    pub auth_mechanisms: Vec<String>,
    /// An AUTH before the upgrade (mechanism, line).
    pub auth_in_clear: Option<(String, u64)>,
    /// Postfix disconnect summary: (command, succeeded, total).
    pub commands: Option<Vec<(String, u32, u32)>>,
    /// The log shows the session's end.
    pub closed: bool,
    /// Verdict.
    pub verdict: Verdict,
    /// Evidence (masked log lines and the verdict's reason).
    pub evidence: Vec<LogEvidence>,
    /// Findings, with the wire's names; `frame` holds the log line.
    pub findings: Vec<Finding>,
    /// The session's raw lines (bounded), for free-text filtering and display.
    pub lines: Vec<String>,
}

impl LogRecord {
    /// A blank record.
    pub fn new(source: Source, log_file: Arc<str>, log_session: String, t: Micros, line: u64) -> Self {
        Self {
            source,
            log_file,
            log_session,
            first_seen: t,
            last_seen: t,
            first_line: line,
            client: None,
            server: None,
            process: None,
            helo: None,
            banner: None,
            ehlo_extensions: None,
            starttls_offered: None,
            upgrade_verb: None,
            upgrade_reply: None,
            upgrade_line: None,
            tls_line: None,
            implicit_tls: false,
            failure_line: None,
            starttls_count: None,
            tls_version: None,
            cipher: None,
            cert: None,
            mail_transactions: None,
            auth_mechanisms: Vec::new(),
            auth_in_clear: None,
            commands: None,
            closed: false,
            verdict: Verdict::Incomplete,
            evidence: Vec::new(),
            findings: Vec::new(),
            lines: Vec::new(),
        }
    }

    /// Adds an evidence item (bounded).
    pub fn note(&mut self, line: u64, text: impl Into<String>) {
        if self.evidence.len() < MAX_EVIDENCE {
            self.evidence.push(LogEvidence { text: text.into(), line });
        }
    }

    /// Keeps a raw line (bounded).
    pub fn keep(&mut self, line: &str) {
        if self.lines.len() < MAX_LINES {
            let mut end = line.len().min(MAX_LINE_KEPT);
            while !line.is_char_boundary(end) {
                end -= 1;
            }
            self.lines.push(line[..end].to_string());
        }
    }

    /// Updates the time span with a line's time.
    pub fn saw(&mut self, t: Micros) {
        self.first_seen = self.first_seen.min(t);
        self.last_seen = self.last_seen.max(t);
    }

    /// The log shows a completed TLS handshake not undone by a later failure.
    pub fn tls_ok(&self) -> bool {
        match (self.tls_line, self.failure_line) {
            (Some(t), Some(f)) => f < t,
            (Some(_), None) => true,
            _ => false,
        }
    }

    fn find(&mut self, name: &'static str, line: Option<u64>, text: String) {
        if !self.findings.iter().any(|f| f.name == name) {
            self.findings.push(Finding { name, text, frame: line });
        }
    }

    /// Decides the verdict (first matching rule wins), puts its reason first in the evidence and
    /// adds the findings.
    pub fn judge(&mut self) {
        let (verdict, reason, line): (Verdict, String, Option<u64>) = if self.tls_ok() {
            if self.implicit_tls {
                (
                    Verdict::ImplicitTls,
                    "TLS from the first byte (no STARTTLS in the disconnect summary)".into(),
                    self.tls_line,
                )
            } else {
                (Verdict::Starttls, "the log shows a TLS handshake and no failure after it".into(), self.tls_line)
            }
        } else if let Some(code) = self.upgrade_reply.filter(|c| *c != 220) {
            (Verdict::StarttlsRefused, format!("the upgrade verb was answered with {code}"), self.upgrade_line)
        } else if self.failure_line.is_some() {
            (Verdict::StarttlsFailed, "the log shows the TLS handshake failing".into(), self.failure_line)
        } else if self.starttls_count.is_some_and(|(ok, all)| all > ok) {
            (
                Verdict::StarttlsRefused,
                "STARTTLS tried and not accepted (starttls=N/M), no handshake failure logged".into(),
                self.upgrade_line,
            )
        } else if self.upgrade_reply == Some(220) && self.closed {
            (Verdict::StarttlsFailed, "220 to the upgrade verb, then no TLS logged".into(), self.upgrade_line)
        } else if !self.closed {
            (Verdict::Incomplete, "the log does not show how the session ended".into(), None)
        } else if self.upgrade_verb.is_some() {
            (Verdict::Incomplete, "the upgrade verb's outcome is not logged".into(), self.upgrade_line)
        } else if self.starttls_offered == Some(true) && self.mail_transactions.unwrap_or(0) > 0 {
            (Verdict::StarttlsOfferedUnused, "the upgrade was offered, never used, and mail went in clear".into(), None)
        } else if self.source == Source::PostfixSmtpd {
            (Verdict::Plaintext, "no STARTTLS in the session (Postfix smtpd does not log its offer)".into(), None)
        } else {
            (Verdict::Plaintext, "no upgrade in the session".into(), None)
        };
        self.verdict = verdict;
        self.evidence.insert(0, LogEvidence { text: reason, line: line.unwrap_or(self.first_line) });
        self.evidence.truncate(MAX_EVIDENCE);
        if verdict.is_encrypted() {
            if let Some(v) = self.tls_version.clone().filter(|v| matches!(v.as_str(), "SSL3.0" | "TLS1.0" | "TLS1.1")) {
                self.find("weak-tls-version", self.tls_line, format!("negotiated {v} (below TLS1.2)"));
            }
        }
        if let Some((mech, l)) = self.auth_in_clear.clone() {
            self.find("cleartext-auth", Some(l), format!("AUTH {mech} before any TLS"));
        }
        let at = self.first_seen;
        let line = self.tls_line;
        if let Some(c) = self.cert.clone() {
            if let (Some(na), Some(text)) = (c.not_after_us, c.not_after.as_ref()) {
                if na < at {
                    self.find("cert-expired", line, format!("certificate expired {text}"));
                }
            }
            if let (Some(nb), Some(text)) = (c.not_before_us, c.not_before.as_ref()) {
                if nb > at {
                    self.find("cert-not-yet-valid", line, format!("certificate valid only from {text}"));
                }
            }
        }
    }
}

/// `TLS1.2` from the forms logs write: Exchange `SP_PROT_TLS1_2_SERVER`, Postfix `TLSv1.2`,
/// `TLSv1`, `SSLv3`.
pub fn version_label(v: &str) -> Option<String> {
    let v = v.trim();
    if let Some(rest) = v.strip_prefix("SP_PROT_") {
        let core = rest.trim_end_matches("_SERVER").trim_end_matches("_CLIENT");
        return Some(match core {
            "SSL2" => "SSL2.0".into(),
            "SSL3" => "SSL3.0".into(),
            "TLS1" | "TLS1_0" => "TLS1.0".into(),
            "TLS1_1" => "TLS1.1".into(),
            "TLS1_2" => "TLS1.2".into(),
            "TLS1_3" => "TLS1.3".into(),
            _ => return None,
        });
    }
    Some(match v {
        "SSLv2" => "SSL2.0".into(),
        "SSLv3" => "SSL3.0".into(),
        "TLSv1" | "TLSv1.0" => "TLS1.0".into(),
        "TLSv1.1" => "TLS1.1".into(),
        "TLSv1.2" => "TLS1.2".into(),
        "TLSv1.3" => "TLS1.3".into(),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec() -> LogRecord {
        LogRecord::new(Source::ExchangeReceive, Arc::from("f"), "s".into(), 0, 1)
    }

    #[test]
    fn a_failure_after_the_handshake_proof_undoes_it() {
        let mut r = rec();
        r.tls_line = Some(5);
        r.failure_line = Some(6);
        r.closed = true;
        r.judge();
        assert_eq!(r.verdict, Verdict::StarttlsFailed);
    }

    #[test]
    fn offered_unused_needs_mail() {
        let mut r = rec();
        r.closed = true;
        r.starttls_offered = Some(true);
        r.mail_transactions = Some(0);
        r.judge();
        assert_eq!(r.verdict, Verdict::Plaintext);
        let mut r = rec();
        r.closed = true;
        r.starttls_offered = Some(true);
        r.mail_transactions = Some(1);
        r.judge();
        assert_eq!(r.verdict, Verdict::StarttlsOfferedUnused);
    }

    #[test]
    fn versions_from_both_logs() {
        assert_eq!(version_label("SP_PROT_TLS1_2_SERVER").as_deref(), Some("TLS1.2"));
        assert_eq!(version_label("SP_PROT_TLS1_0_CLIENT").as_deref(), Some("TLS1.0"));
        assert_eq!(version_label("TLSv1").as_deref(), Some("TLS1.0"));
        assert_eq!(version_label("TLSv1.3").as_deref(), Some("TLS1.3"));
        assert_eq!(version_label("bogus"), None);
    }
}
