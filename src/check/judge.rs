//! How each session is judged against what its rule expects (the table in the check-mode
//! specification).

use super::policy::Expect;
use crate::session::{Kind, Session, Verdict};
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

fn has_finding(s: &Session, name: &str) -> bool {
    s.findings.iter().any(|f| f.name == name)
}

/// Judges a finished session against an expectation.
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
                let version = s.tls.version.unwrap_or(0);
                if let Some(min) = min_version {
                    // TLS 1.3 drafts (0x7fxx) count as 1.3.
                    let effective = if version & 0xff00 == 0x7f00 { 0x0304 } else { version };
                    if effective < *min {
                        return Outcome::Violation(format!(
                            "negotiated {} below the required {}",
                            version_label(version),
                            version_label(*min)
                        ));
                    }
                }
                if *cert_valid || *cert_name {
                    if s.tls.cert.is_none() {
                        let tls13 = has_finding(s, "cert-not-visible-tls13");
                        if tls13 && opts.accept_tls13_cert {
                            return Outcome::Pass;
                        }
                        return Outcome::Unproven(if tls13 {
                            "certificate not visible (TLS 1.3)".into()
                        } else {
                            "certificate not captured".into()
                        });
                    }
                    if *cert_valid && (has_finding(s, "cert-expired") || has_finding(s, "cert-not-yet-valid")) {
                        return Outcome::Violation(
                            "certificate outside its validity at the time of the session".into(),
                        );
                    }
                    if *cert_name && has_finding(s, "cert-name-mismatch") {
                        return Outcome::Violation("certificate does not cover the server name".into());
                    }
                }
                return Outcome::Pass;
            }
            match v {
                Verdict::ImplicitTls => Outcome::Unproven("TLS attempt failed (no ServerHello)".into()),
                Verdict::StarttlsRefused | Verdict::StarttlsFailed => {
                    if clear_mail_or_auth(s) {
                        Outcome::Violation(format!("{}: mail or AUTH then crossed in clear", v.name()))
                    } else {
                        Outcome::Unproven(format!("{}: the upgrade failed but no mail was seen in clear", v.name()))
                    }
                }
                Verdict::Stripped => Outcome::Violation("STARTTLS stripped by a middlebox (XXXXXXXA)".into()),
                Verdict::StarttlsOfferedUnused => Outcome::Violation("TLS offered but not used: mail in clear".into()),
                Verdict::Plaintext => Outcome::Violation("mail in clear: no upgrade".into()),
                Verdict::Incomplete if clear_mail_or_auth(s) => {
                    Outcome::Violation("incomplete capture, but MAIL/AUTH crossed in clear".into())
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
            match v {
                Verdict::ImplicitTls => Outcome::Warn("implicit TLS attempted but failed".into()),
                Verdict::StarttlsRefused | Verdict::StarttlsFailed => {
                    Outcome::Warn(format!("upgrade attempted ({})", v.name()))
                }
                Verdict::Stripped => {
                    Outcome::Warn("STARTTLS stripped by a middlebox: the middlebox decided, not the policy".into())
                }
                Verdict::StarttlsOfferedUnused | Verdict::Plaintext => {
                    let offered: Vec<String> = s
                        .ehlo_reply
                        .iter()
                        .flat_map(|r| r.extensions.iter())
                        .map(|e| String::from_utf8_lossy(&e.keyword).to_ascii_uppercase())
                        .filter(|k| forbid_offer.contains(k))
                        .collect();
                    if offered.is_empty() {
                        Outcome::Pass
                    } else {
                        Outcome::Violation(format!("server offered {}", offered.join(", ")))
                    }
                }
                Verdict::Incomplete if s.tls_handshake() => {
                    Outcome::Violation("incomplete capture, but a TLS handshake was seen".into())
                }
                _ => Outcome::Unproven("incomplete capture: the outcome is not visible".into()),
            }
        }
    }
}
