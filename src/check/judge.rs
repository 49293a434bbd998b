//! How each session is judged against what its rule expects (the table in the check-mode
//! specification).

use super::policy::Expect;
use crate::flow::EndReason;
use crate::session::{Kind, Session, UpgradeVerb, Verdict};
use crate::tls::version_label;

/// The outcome for one session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Meets the rule.
    Pass,
    /// Meets the rule, with something worth saying.
    Warn(String),
    /// Breaks the rule.
    Violation(String),
    /// The capture cannot prove it either way.
    Unproven(String),
    /// Not SMTP: listed, not judged.
    Ignored,
}

impl Outcome {
    /// Name used in NDJSON and JUnit.
    pub fn name(&self) -> &'static str {
        match self {
            Outcome::Pass => "pass",
            Outcome::Warn(_) => "pass-with-warning",
            Outcome::Violation(_) => "violation",
            Outcome::Unproven(_) => "unproven",
            Outcome::Ignored => "ignored",
        }
    }

    /// The explanation, if any.
    pub fn why(&self) -> &str {
        match self {
            Outcome::Warn(w) | Outcome::Violation(w) | Outcome::Unproven(w) => w,
            _ => "",
        }
    }
}

/// Knobs for judging.
#[derive(Debug, Clone, Copy, Default)]
pub struct JudgeOptions {
    /// Under TLS 1.3 the certificate cannot be seen: accept that instead of "unproven".
    pub accept_tls13_cert: bool,
}

fn clear_mail_or_auth(s: &Session) -> bool {
    s.kind == Kind::Smtp && !s.tls_handshake() && (s.mail_transactions > 0 || !s.auth_mechanisms.is_empty())
}

/// What crossed in clear, in words a reason can carry: only what the capture shows.
fn in_clear(s: &Session) -> &'static str {
    match (s.mail_transactions > 0, !s.auth_mechanisms.is_empty()) {
        (true, true) => "mail and AUTH in clear",
        (true, false) => "mail in clear",
        (false, true) => "AUTH in clear",
        (false, false) => "session in clear",
    }
}

/// A cleartext session the capture left before the client said EHLO/HELO, with nothing sent yet:
/// the upgrade would only have come after EHLO, so the capture cannot tell either way. A session
/// that closed (FIN or RST) is over and proves itself.
fn stopped_before_hello(s: &Session) -> bool {
    s.hello.is_none()
        && !clear_mail_or_auth(s)
        && matches!(s.end, EndReason::EndOfCapture | EndReason::Evicted | EndReason::Idle)
        && !s.client_closed
        && !s.server_closed
}

const NO_HELLO: &str = "no EHLO captured: the upgrade could still have come";

/// [`NO_HELLO`], saying so when the session is a record that did not tell how it ended (written
/// before `end_reason` existed) and was therefore taken as cut by the capture's end.
fn no_hello(s: &Session) -> String {
    match &s.record {
        Some(r) if !r.end_known => format!("{NO_HELLO} (the record has no end_reason: judged as end-of-capture)"),
        _ => NO_HELLO.into(),
    }
}

fn has_finding(s: &Session, name: &str) -> bool {
    s.findings.iter().any(|f| f.name == name)
}

/// The forbidden verbs the server's cleartext EHLO reply offered (an offer on the wire, whatever
/// came of it).
fn forbidden_offers(s: &Session, forbid: &[String]) -> Vec<String> {
    let mut v: Vec<String> = s
        .ehlo_reply
        .iter()
        .flat_map(|r| r.extensions.iter())
        .map(|e| String::from_utf8_lossy(&e.keyword).to_ascii_uppercase())
        .filter(|k| forbid.contains(k))
        .collect();
    v.dedup();
    v
}

/// Judges a finished session.
pub fn judge(s: &Session, expect: &Expect, opts: JudgeOptions) -> Outcome {
    let Some(v) = s.verdict else { return Outcome::Unproven("no verdict".into()) };
    if v == Verdict::NotSmtp {
        return Outcome::Ignored;
    }
    let tls = v == Verdict::Starttls || (v == Verdict::ImplicitTls && s.tls_handshake());
    match expect {
        Expect::Any => Outcome::Pass,
        Expect::Tls { min_version, cert_valid, cert_name } => {
            if tls {
                return judge_tls(s, *min_version, *cert_valid, *cert_name, opts);
            }
            match v {
                Verdict::ImplicitTls => Outcome::Unproven("TLS attempt failed (no ServerHello)".into()),
                Verdict::StarttlsRefused | Verdict::StarttlsFailed => {
                    if clear_mail_or_auth(s) {
                        Outcome::Violation(format!("{}: then {}", v.name(), in_clear(s)))
                    } else {
                        Outcome::Unproven(format!("{}: the upgrade failed but no mail was seen in clear", v.name()))
                    }
                }
                Verdict::Stripped => Outcome::Violation("STARTTLS stripped by a middlebox (XXXXXXXA)".into()),
                Verdict::StarttlsOfferedUnused | Verdict::Plaintext if stopped_before_hello(s) => {
                    Outcome::Unproven(no_hello(s))
                }
                Verdict::StarttlsOfferedUnused => {
                    Outcome::Violation(format!("TLS offered but not used: {}", in_clear(s)))
                }
                Verdict::Plaintext => Outcome::Violation(format!("{}, no upgrade", in_clear(s))),
                Verdict::Incomplete if clear_mail_or_auth(s) => {
                    Outcome::Violation(format!("incomplete capture, but {}", in_clear(s)))
                }
                _ => Outcome::Unproven("incomplete capture: the outcome is not visible".into()),
            }
        }
        Expect::Plaintext { forbid_offer } => {
            if tls {
                return Outcome::Violation(format!(
                    "TLS used ({})",
                    s.tls.version.map(version_label).unwrap_or_else(|| "handshake seen".into())
                ));
            }
            if v == Verdict::Incomplete && s.tls_handshake() {
                return Outcome::Violation("incomplete capture, but a TLS handshake was seen".into());
            }
            // Whatever came of the session, the offer itself crossed the wire.
            let offered = forbidden_offers(s, forbid_offer);
            if !offered.is_empty() {
                let what = match v {
                    Verdict::StarttlsOfferedUnused | Verdict::Plaintext => String::new(),
                    other => format!(" ({})", other.name()),
                };
                return Outcome::Violation(format!("server offered {}{what}", offered.join(", ")));
            }
            match v {
                Verdict::ImplicitTls => Outcome::Warn("implicit TLS attempted but failed".into()),
                Verdict::StarttlsRefused | Verdict::StarttlsFailed => {
                    Outcome::Warn(format!("upgrade attempted ({})", v.name()))
                }
                Verdict::Stripped => {
                    Outcome::Warn("STARTTLS stripped by a middlebox: the middlebox decided, not the policy".into())
                }
                // The same blindness as under `tls`: nothing shows the session would have stayed in clear.
                Verdict::StarttlsOfferedUnused | Verdict::Plaintext if stopped_before_hello(s) => {
                    Outcome::Unproven(no_hello(s))
                }
                Verdict::StarttlsOfferedUnused | Verdict::Plaintext => Outcome::Pass,
                _ => Outcome::Unproven("incomplete capture: the outcome is not visible".into()),
            }
        }
    }
}

/// A session that did use TLS, against a `tls` rule's refinements. A violation anywhere wins over
/// a requirement the capture cannot show; that one makes the session unproven, never passed.
fn judge_tls(s: &Session, min_version: Option<u16>, cert_valid: bool, cert_name: bool, opts: JudgeOptions) -> Outcome {
    let mut unproven: Option<String> = None;
    let mut warning: Option<String> = None;
    if let Some(min) = min_version {
        match s.tls.version {
            // A ServerHello cut by the snaplen proves the handshake, not its version.
            None => unproven = Some("TLS version not captured".into()),
            Some(version) => {
                // TLS 1.3 drafts (0x7fxx) count as 1.3.
                let effective = if version & 0xff00 == 0x7f00 { 0x0304 } else { version };
                if effective < min {
                    return Outcome::Violation(format!(
                        "negotiated {} below the required {}",
                        version_label(version),
                        version_label(min)
                    ));
                }
            }
        }
    }
    if cert_valid || cert_name {
        if s.tls.cert.is_none() {
            let tls13 = has_finding(s, "cert-not-visible-tls13");
            if !(tls13 && opts.accept_tls13_cert) {
                unproven.get_or_insert_with(|| {
                    if tls13 { "certificate not visible (TLS 1.3)" } else { "certificate not captured" }.into()
                });
            }
        } else {
            if cert_valid && (has_finding(s, "cert-expired") || has_finding(s, "cert-not-yet-valid")) {
                return Outcome::Violation("certificate outside its validity at the time of the session".into());
            }
            if cert_name && has_finding(s, "cert-name-mismatch") {
                let anonymous = s.upgrade.as_ref().is_some_and(|u| u.verb == UpgradeVerb::XAnonymousTls);
                if !anonymous {
                    return Outcome::Violation("certificate does not cover the server name".into());
                }
                // X-ANONYMOUSTLS authenticates nothing by certificate: Exchange hubs present
                // self-signed certificates by design, so a name mismatch there is no breach.
                warning = Some(
                    "certificate name not required under X-ANONYMOUSTLS (Exchange's self-signed certificate by design)"
                        .into(),
                );
            }
        }
    }
    match (unproven, warning) {
        (Some(u), _) => Outcome::Unproven(u),
        (None, Some(w)) => Outcome::Warn(w),
        (None, None) => Outcome::Pass,
    }
}
