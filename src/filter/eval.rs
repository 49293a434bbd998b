//! Evaluating a filter on a session.

use super::{Expr, Term, TlsTest};
use crate::escape::terminal;
use crate::session::transcript::Entry;
use crate::session::Session;

pub(super) fn eval(e: &Expr, s: &Session) -> bool {
    match e {
        Expr::All => true,
        Expr::Term(t) => term(t, s),
        Expr::Not(x) => !eval(x, s),
        Expr::And(v) => v.iter().all(|x| eval(x, s)),
        Expr::Or(v) => v.iter().any(|x| eval(x, s)),
    }
}

/// Wire bytes as the user sees them (escaped), for glob matching.
fn shown(b: &[u8]) -> String {
    terminal(b)
}

/// Case-insensitive (ASCII) substring test; `needle` is lower case.
fn contains(hay: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || hay.windows(needle.len()).any(|w| w.eq_ignore_ascii_case(needle))
}

fn term(t: &Term, s: &Session) -> bool {
    match t {
        Term::Verdict(vs) => s.verdict.is_some_and(|v| vs.contains(&v)),
        Term::Client(n) => n.contains(s.client.ip()),
        Term::Server(n) => n.contains(s.server.ip()),
        Term::Host(n) => n.contains(s.client.ip()) || n.contains(s.server.ip()),
        Term::Port(a, b) => (*a..=*b).contains(&s.server.port()),
        Term::Helo(g) => s.hello.as_ref().is_some_and(|h| g.matches(&shown(&h.arg))),
        Term::Sensor(g) => s.sensor.as_deref().is_some_and(|n| g.matches(&shown(n.as_bytes()))),
        Term::Banner(g) => s.banner.as_deref().is_some_and(|b| g.matches(&shown(b))),
        Term::Sni(g) => s.tls.sni.as_deref().is_some_and(|b| g.matches(&shown(b))),
        Term::Cert(g) => s.tls.cert.as_ref().is_some_and(|c| {
            g.matches(&c.subject)
                || c.common_names.iter().any(|n| g.matches(n))
                || c.sans.iter().any(|n| g.matches(n) || g.matches(n.split_once(':').map_or(n.as_str(), |(_, v)| v)))
        }),
        Term::Ext(g) => {
            s.ehlo_reply.as_ref().is_some_and(|r| r.extensions.iter().any(|e| g.matches(&shown(&e.keyword))))
        }
        Term::Finding(names) => s.findings.iter().any(|f| names.contains(&f.name)),
        Term::Auth(g) => s.auth_mechanisms.iter().any(|m| g.matches(m)),
        Term::Upgrade(v) => match v {
            Some(v) => s.upgrade.as_ref().is_some_and(|u| u.verb == *v),
            None => s.upgrade.is_none(),
        },
        Term::Tls(t) => {
            let version = s.tls.version.filter(|_| s.tls_handshake());
            match t {
                TlsTest::Any => version.is_some(),
                TlsTest::None => version.is_none(),
                TlsTest::Cmp(ord, eq, want) => version.is_some_and(|v| {
                    // TLS 1.3 drafts (0x7fxx) count as 1.3.
                    let v = if v & 0xff00 == 0x7f00 { 0x0304 } else { v };
                    let c = v.cmp(want);
                    c == *ord || (*eq && c == std::cmp::Ordering::Equal)
                }),
            }
        }
        Term::Open(open) => s.in_progress == *open,
        // A run without --logs has nothing to compare: no session is `none` there either.
        Term::Log(want) => super::LogAgreement::of(s) == Some(*want),
        Term::Text(needle) => text(s, needle.as_bytes()),
    }
}

/// Free text: the transcript, then the names, evidence and findings.
fn text(s: &Session, needle: &[u8]) -> bool {
    if let Some(t) = &s.transcript {
        let hit = t.entries.iter().any(|e| match e {
            Entry::Command { text, .. } | Entry::Reply { text, .. } => contains(&text.bytes, needle),
            Entry::Note { text, .. } => contains(text.as_bytes(), needle),
            _ => false,
        });
        if hit {
            return true;
        }
    }
    s.hello.as_ref().is_some_and(|h| contains(&h.arg, needle))
        || s.banner.as_deref().is_some_and(|b| contains(b, needle))
        || s.tls.sni.as_deref().is_some_and(|b| contains(b, needle))
        || s.evidence.iter().any(|e| contains(e.text.as_bytes(), needle))
        || s.findings.iter().any(|f| contains(f.name.as_bytes(), needle) || contains(f.text.as_bytes(), needle))
}
