//! The verdict policy: a pure function of the session's facts, following the labelling rules
//! of the shared ground truth (first matching rule wins).

use super::{Kind, Proof, Session};
use crate::flow::EndReason;

/// The verdict labels, in rule order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub enum Verdict {
    /// Payload on a mail port that is neither SMTP nor TLS.
    NotSmtp,
    /// The capture's edges hide the outcome.
    Incomplete,
    /// TLS from the client's first byte.
    ImplicitTls,
    /// Upgraded with STARTTLS/X-ANONYMOUSTLS and a TLS handshake followed.
    Starttls,
    /// A middlebox masked STARTTLS (`XXXXXXXA`) and no TLS followed.
    Stripped,
    /// The upgrade verb was answered with anything but 220.
    StarttlsRefused,
    /// 220 to the upgrade verb but no ServerHello followed.
    StarttlsFailed,
    /// The server offered an upgrade, the client never asked.
    StarttlsOfferedUnused,
    /// Everything else in clear.
    Plaintext,
}

impl Verdict {
    /// Every verdict in rule order.
    pub const ALL: [Verdict; 9] = [
        Verdict::NotSmtp,
        Verdict::Incomplete,
        Verdict::ImplicitTls,
        Verdict::Starttls,
        Verdict::Stripped,
        Verdict::StarttlsRefused,
        Verdict::StarttlsFailed,
        Verdict::StarttlsOfferedUnused,
        Verdict::Plaintext,
    ];

    /// The label used in NDJSON and everywhere else.
    pub fn name(self) -> &'static str {
        match self {
            Verdict::NotSmtp => "not-smtp",
            Verdict::Incomplete => "incomplete",
            Verdict::ImplicitTls => "implicit-tls",
            Verdict::Starttls => "starttls",
            Verdict::Stripped => "stripped",
            Verdict::StarttlsRefused => "starttls-refused",
            Verdict::StarttlsFailed => "starttls-failed",
            Verdict::StarttlsOfferedUnused => "starttls-offered-unused",
            Verdict::Plaintext => "plaintext",
        }
    }

    /// A short name where the full ones do not fit (the UI's chips, `pairs`).
    pub fn short_name(self) -> &'static str {
        match self {
            Verdict::NotSmtp => "not-smtp",
            Verdict::Incomplete => "incompl",
            Verdict::ImplicitTls => "implicit",
            Verdict::Starttls => "starttls",
            Verdict::Stripped => "stripped",
            Verdict::StarttlsRefused => "refused",
            Verdict::StarttlsFailed => "failed",
            Verdict::StarttlsOfferedUnused => "unused",
            Verdict::Plaintext => "plain",
        }
    }

    /// Parses a label.
    pub fn from_name(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.name() == s)
    }

    /// Mail crossed inside TLS.
    pub fn is_encrypted(self) -> bool {
        matches!(self, Verdict::ImplicitTls | Verdict::Starttls)
    }
}

/// The verdict and the sentence that justifies it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Judgement {
    /// Verdict.
    pub verdict: Verdict,
    /// Why, in one line.
    pub reason: String,
    /// The frame the reason points at.
    pub frame: Option<u64>,
}

fn judged(verdict: Verdict, reason: impl Into<String>, frame: Option<u64>) -> Judgement {
    Judgement { verdict, reason: reason.into(), frame }
}

/// `starttls_offered` with the shared null rules.
pub fn starttls_offered(s: &Session) -> Option<bool> {
    if s.kind != Kind::Smtp {
        return None;
    }
    match &s.hello {
        Some(h) if h.verb != "HELO" => match h.reply {
            None => None,
            Some(_) if h.reply_cut => None,
            Some(Some(250)) => match &s.ehlo_reply {
                Some(r) if r.cut => None,
                Some(r) => Some(r.extensions.iter().any(|e| e.is("STARTTLS") || e.is("X-ANONYMOUSTLS"))),
                None => Some(false),
            },
            Some(_) => Some(false),
        },
        Some(_) => match &s.ehlo_reply {
            Some(r) if !r.cut => Some(r.extensions.iter().any(|e| e.is("STARTTLS") || e.is("X-ANONYMOUSTLS"))),
            _ => Some(false),
        },
        None if s.handshake_seen => Some(false),
        None => None,
    }
}

/// Whether the first EHLO reply carries Cisco's `XXXXXXXA` mask in place of STARTTLS.
pub fn starttls_masked(s: &Session) -> bool {
    s.ehlo_reply.as_ref().is_some_and(|r| {
        !r.extensions.iter().any(|e| e.is("STARTTLS")) && r.extensions.iter().any(|e| e.is("XXXXXXXA"))
    })
}

/// Which step of the `incomplete` procedure (a–g) applies, with its explanation.
pub fn incomplete_reason(s: &Session) -> Option<(char, String, Option<u64>)> {
    let payload_sent = s.wire_bytes.iter().sum::<u64>() > 0;
    let payload_seen = s.captured_bytes.iter().sum::<u64>() > 0;
    if s.kind == Kind::Unknown {
        if payload_sent && !payload_seen {
            return Some((
                'a',
                format!(
                    "{} payload bytes crossed the wire but none were captured (snaplen)",
                    s.wire_bytes.iter().sum::<u64>()
                ),
                None,
            ));
        }
        return Some(('a', "too little payload captured to tell what the session carried".into(), None));
    }
    if s.kind == Kind::MidTls {
        return Some((
            'b',
            "capture starts mid-session inside TLS: encrypted records only, no handshake, greeting or EHLO".into(),
            None,
        ));
    }
    if s.kind != Kind::Smtp {
        return None;
    }
    let hello_replied = s.hello.as_ref().is_some_and(|h| h.reply.is_some());
    if !s.handshake_seen && !hello_replied {
        return Some(('b', "capture starts mid-session: no TCP handshake and no reply to EHLO/HELO".into(), None));
    }
    if let Some(h) = &s.hello {
        if h.reply.is_none() {
            return Some(('c', format!("{} sent, no reply captured", h.verb), Some(h.frame)));
        }
    }
    if let Some(u) = &s.upgrade {
        if u.reply.is_none() {
            return Some(('d', format!("{} sent, no reply captured", u.verb.name()), Some(u.frame)));
        }
    }
    let open_at_end = matches!(s.end, EndReason::EndOfCapture | EndReason::Evicted | EndReason::Idle);
    if hello_replied && open_at_end && s.commands_after_hello == 0 && !s.client_closed && !s.server_closed {
        let ends = match s.end {
            EndReason::Evicted => "the flow was evicted (flow table full)",
            EndReason::Idle => "the flow went idle (no packet for the idle timeout)",
            _ => "the capture ends",
        };
        return Some((
            'e',
            format!("{ends} after the EHLO reply, before the client's next command"),
            s.hello.as_ref().map(|h| h.reply_frame),
        ));
    }
    let cut = s.hello.as_ref().is_some_and(|h| h.reply_cut) || s.ehlo_reply.as_ref().is_some_and(|r| r.cut);
    if cut && s.upgrade.is_none() {
        return Some((
            'f',
            "the EHLO reply was cut before its last line".into(),
            s.hello.as_ref().map(|h| h.reply_frame),
        ));
    }
    // An upgrade proven by its 220 and both hellos is positive evidence no earlier gap can undo
    // (hellos cut by a snaplen included).
    let upgrade_proven = s.upgrade.as_ref().is_some_and(|u| u.reply == Some(Some(220))) && s.tls_handshake();
    if s.gaps.before_decision && !upgrade_proven {
        return Some(('g', "bytes missing from the capture before the outcome was decided".into(), None));
    }
    None
}

/// Judges a finished session.
pub fn judge(s: &Session) -> Judgement {
    if s.kind == Kind::NotSmtp {
        return judged(Verdict::NotSmtp, "payload on a mail port is neither SMTP nor TLS", Some(s.first_frame));
    }
    if let Some((step, why, frame)) = incomplete_reason(s) {
        return judged(Verdict::Incomplete, format!("incomplete ({step}): {why}"), frame);
    }
    if s.kind == Kind::ImplicitTls {
        let why = match (s.tls_handshake(), s.tls.version.and_then(super::tls_version_name)) {
            (true, Some(v)) => format!("TLS from the first byte, {v} handshake"),
            (true, None) => "TLS from the first byte, handshake completed".to_string(),
            (false, _) => "ClientHello as the client's first bytes, but no ServerHello followed".to_string(),
        };
        return judged(Verdict::ImplicitTls, why, s.tls.client_hello);
    }
    let upgrade = s.upgrade.as_ref();
    if let Some(u) = upgrade {
        if u.reply == Some(Some(220)) && s.tls_handshake() {
            let v = s.tls.version.and_then(super::tls_version_name).unwrap_or("TLS");
            // The verdict stays (both hellos crossed), but the reason must not read as a success.
            let aborted = match s.tls.alert.filter(|_| s.handshake_aborted()) {
                Some(a) => format!(
                    ", aborted in clear by the {}'s {} alert",
                    a.side.name(),
                    crate::tls::alert_name(a.description)
                ),
                None => String::new(),
            };
            let why = crate::escape::concat(&[u.verb.name(), " answered 220, ", v, " handshake followed", &aborted]);
            return judged(Verdict::Starttls, why, s.tls.server_hello);
        }
    }
    if starttls_masked(s) && !s.tls_handshake() {
        return judged(
            Verdict::Stripped,
            "EHLO reply carries XXXXXXXA in place of STARTTLS: a middlebox masked the offer",
            s.ehlo_reply.as_ref().map(|r| r.frame),
        );
    }
    if let Some(u) = upgrade {
        match u.reply {
            Some(Some(220)) => {
                let what = match u.proof {
                    Proof::Cleartext => "the client went on in cleartext",
                    _ if s.tls.client_hello.is_some() => "no ServerHello followed",
                    _ => "no TLS handshake followed",
                };
                return judged(
                    Verdict::StarttlsFailed,
                    format!("{} answered 220 but {what}", u.verb.name()),
                    Some(u.reply_frame),
                );
            }
            Some(code) => {
                let code = code.map_or_else(|| "a reply without a code".to_string(), |c| c.to_string());
                return judged(
                    Verdict::StarttlsRefused,
                    format!("{} answered {code}", u.verb.name()),
                    Some(u.reply_frame),
                );
            }
            None => {}
        }
    }
    if starttls_offered(s) == Some(true) {
        return judged(
            Verdict::StarttlsOfferedUnused,
            "the server offered an upgrade; the client never asked and went on in clear",
            s.ehlo_reply.as_ref().map(|r| r.frame),
        );
    }
    let why = match &s.hello {
        Some(h) if h.verb == "HELO" => "HELO only: no extensions, no upgrade possible; mail in clear",
        Some(_) if starttls_offered(s) == Some(false) => "no upgrade offered; session in clear",
        _ => "session in clear",
    };
    judged(Verdict::Plaintext, why, None)
}
