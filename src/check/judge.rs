//! How each session is judged against what its rule expects (the table in the check-mode
//! specification). A wire session and a log session are judged by the same rules, through what
//! each can show ([`Subject`]).

use super::policy::Expect;
use super::subject::Subject;
use crate::session::{UpgradeVerb, Verdict};
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

    /// Pass, warning or violation: the session's evidence settles the rule.
    pub fn decisive(&self) -> bool {
        matches!(self, Outcome::Pass | Outcome::Warn(_) | Outcome::Violation(_))
    }
}

/// Knobs for judging.
#[derive(Debug, Clone, Copy, Default)]
pub struct JudgeOptions {
    /// Under TLS 1.3 the certificate cannot be seen: accept that instead of "unproven".
    pub accept_tls13_cert: bool,
}

fn clear_mail_or_auth<S: Subject + ?Sized>(s: &S) -> bool {
    s.mail_in_clear() || s.auth_in_clear()
}

/// What crossed in clear, in words a reason can carry: only what the capture shows.
fn in_clear<S: Subject + ?Sized>(s: &S) -> &'static str {
    match (s.mail_in_clear(), s.auth_in_clear()) {
        (true, true) => "mail and AUTH in clear",
        (true, false) => "mail in clear",
        (false, true) => "AUTH in clear",
        (false, false) => "session in clear",
    }
}

/// Judges a finished session (wire or log).
pub fn judge<S: Subject + ?Sized>(s: &S, expect: &Expect, opts: JudgeOptions) -> Outcome {
    let Some(v) = s.verdict() else { return Outcome::Unproven("no verdict".into()) };
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
                Verdict::StarttlsOfferedUnused | Verdict::Plaintext if s.stopped_before_hello().is_some() => {
                    Outcome::Unproven(s.stopped_before_hello().unwrap_or_default())
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
                    s.tls_version().map(version_label).unwrap_or_else(|_| "handshake seen".into())
                ));
            }
            if v == Verdict::Incomplete && s.tls_handshake() {
                return Outcome::Violation("incomplete capture, but a TLS handshake was seen".into());
            }
            // Whatever came of the session, the offer itself crossed the wire.
            let offered = s.offered(forbid_offer);
            if let Some(offered) = offered.as_ref().filter(|o| !o.is_empty()) {
                let what = match v {
                    Verdict::StarttlsOfferedUnused | Verdict::Plaintext => String::new(),
                    other => format!(" ({})", other.name()),
                };
                return Outcome::Violation(format!("server offered {}{what}", offered.join(", ")));
            }
            let outcome = match v {
                Verdict::ImplicitTls => Outcome::Warn("implicit TLS attempted but failed".into()),
                Verdict::StarttlsRefused | Verdict::StarttlsFailed => {
                    Outcome::Warn(format!("upgrade attempted ({})", v.name()))
                }
                Verdict::Stripped => {
                    Outcome::Warn("STARTTLS stripped by a middlebox: the middlebox decided, not the policy".into())
                }
                // The same blindness as under `tls`: nothing shows the session would have stayed in clear.
                Verdict::StarttlsOfferedUnused | Verdict::Plaintext if s.stopped_before_hello().is_some() => {
                    Outcome::Unproven(s.stopped_before_hello().unwrap_or_default())
                }
                Verdict::StarttlsOfferedUnused | Verdict::Plaintext => Outcome::Pass,
                _ => Outcome::Unproven("incomplete capture: the outcome is not visible".into()),
            };
            // A log that does not show the server's EHLO reply cannot show the offer was absent.
            if offered.is_none() && outcome.decisive() {
                return Outcome::Unproven(format!(
                    "the log does not show the server's EHLO reply: an offer of {} cannot be ruled out",
                    forbid_offer.join("/")
                ));
            }
            outcome
        }
    }
}

/// A session that did use TLS, against a `tls` rule's refinements. A violation anywhere wins over
/// a requirement the capture cannot show; that one makes the session unproven, never passed.
fn judge_tls<S: Subject + ?Sized>(
    s: &S,
    min_version: Option<u16>,
    cert_valid: bool,
    cert_name: bool,
    opts: JudgeOptions,
) -> Outcome {
    let mut unproven: Option<String> = None;
    let mut warning: Option<String> = None;
    if let Some(min) = min_version {
        match s.tls_version() {
            Err(why) => unproven = Some(why.into()),
            Ok(version) => {
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
        if let Err(why) = s.cert_known() {
            let tls13 = s.has_finding("cert-not-visible-tls13");
            if !(tls13 && opts.accept_tls13_cert) {
                unproven.get_or_insert_with(|| why.into());
            }
        } else {
            if cert_valid && (s.has_finding("cert-expired") || s.has_finding("cert-not-yet-valid")) {
                return Outcome::Violation("certificate outside its validity at the time of the session".into());
            }
            if cert_valid && !s.cert_validity_known() {
                unproven.get_or_insert_with(|| "the certificate's validity dates are not logged".into());
            }
            let anonymous = s.upgrade_verb() == Some(UpgradeVerb::XAnonymousTls);
            if cert_name && s.has_finding("cert-name-mismatch") {
                if !anonymous {
                    return Outcome::Violation("certificate does not cover the server name".into());
                }
                // X-ANONYMOUSTLS authenticates nothing by certificate: Exchange hubs present
                // self-signed certificates by design, so a name mismatch there is no breach.
                warning = Some(
                    "certificate name not required under X-ANONYMOUSTLS (Exchange's self-signed certificate by design)"
                        .into(),
                );
            } else if cert_name && !s.cert_name_checked() && !anonymous {
                unproven.get_or_insert_with(|| {
                    "the log does not show which name the client asked for: certificate name not checked".into()
                });
            }
        }
    }
    match (unproven, warning) {
        (Some(u), _) => Outcome::Unproven(u),
        (None, Some(w)) => Outcome::Warn(w),
        (None, None) => Outcome::Pass,
    }
}
