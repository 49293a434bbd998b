//! Evaluating a filter on a log record: the same terms where the log has the fact; free text
//! matches the session's logged lines; `state:` matches nothing (a log record is never open).

use super::{Expr, Term, TlsTest};
use crate::logs::{Endpoint, LogRecord};

pub(super) fn eval(e: &Expr, r: &LogRecord) -> bool {
    match e {
        Expr::All => true,
        Expr::Term(t) => term(t, r),
        Expr::Not(x) => !eval(x, r),
        Expr::And(v) => v.iter().all(|x| eval(x, r)),
        Expr::Or(v) => v.iter().any(|x| eval(x, r)),
    }
}

fn ip_in(n: &super::Net, e: Option<Endpoint>) -> bool {
    e.is_some_and(|e| n.contains(e.ip))
}

fn term(t: &Term, r: &LogRecord) -> bool {
    match t {
        Term::Verdict(vs) => vs.contains(&r.verdict),
        Term::Client(n) => ip_in(n, r.client),
        Term::Server(n) => ip_in(n, r.server),
        Term::Host(n) => ip_in(n, r.client) || ip_in(n, r.server),
        Term::Port(a, b) => r.server.and_then(|e| e.port).is_some_and(|p| (*a..=*b).contains(&p)),
        Term::Helo(g) => r.helo.as_deref().is_some_and(|h| g.matches(h)),
        Term::Banner(g) => r.banner.as_deref().is_some_and(|b| g.matches(b)),
        Term::Sni(_) => false,
        Term::Cert(g) => r.cert.as_ref().is_some_and(|c| {
            c.subject.as_deref().is_some_and(|s| g.matches(s)) || c.sans.iter().flatten().any(|s| g.matches(s))
        }),
        Term::Ext(g) => r.ehlo_extensions.iter().flatten().any(|(k, _)| g.matches(k)),
        Term::Finding(names) => r.findings.iter().any(|f| names.contains(&f.name)),
        Term::Auth(g) => r.auth_mechanisms.iter().any(|m| g.matches(m)),
        Term::Upgrade(v) => r.upgrade_verb == *v,
        Term::Tls(t) => {
            let tls = r.verdict.is_encrypted();
            let v = r.tls_version.as_deref().and_then(crate::session::tls_version_number).filter(|_| tls);
            match t {
                TlsTest::Any => tls,
                TlsTest::None => !tls,
                TlsTest::Cmp(ord, eq, want) => v.is_some_and(|v| {
                    let c = v.cmp(want);
                    c == *ord || (*eq && c == std::cmp::Ordering::Equal)
                }),
            }
        }
        Term::Open(_) => false,
        // A log record is the log itself, not compared with a wire session.
        Term::Log(_) => false,
        // A log record is the server's own word, not a sensor's.
        Term::Sensor(_) => false,
        Term::Text(needle) => {
            let n = needle.as_bytes();
            r.lines.iter().any(|l| n.is_empty() || l.as_bytes().windows(n.len()).any(|w| w.eq_ignore_ascii_case(n)))
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::filter::Filter;
    use crate::logs::{LogRecord, Source};
    use std::sync::Arc;

    #[test]
    fn free_text_matches_logged_lines_and_state_matches_nothing() {
        let mut r = LogRecord::new(Source::PostfixSmtpd, Arc::from("m"), "x".into(), 0, 1);
        r.keep("Dec  7 01:40:00 mx postfix/smtpd[1]: connect from a.example[192.0.2.1]");
        r.client = Some(crate::logs::Endpoint { ip: "192.0.2.1".parse().unwrap(), port: None });
        r.closed = true;
        r.judge();
        assert!(Filter::parse("\"a.example\"").unwrap().matches_log(&r));
        assert!(!Filter::parse("\"b.example\"").unwrap().matches_log(&r));
        assert!(Filter::parse("verdict:plaintext client:192.0.2.0/24").unwrap().matches_log(&r));
        assert!(!Filter::parse("state:open").unwrap().matches_log(&r));
        assert!(!Filter::parse("state:closed").unwrap().matches_log(&r));
    }
}
