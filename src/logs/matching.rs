//! Cross-check: wire sessions matched with log sessions, and what differs between the two.
//!
//! Exchange logs the exact 4-tuple; Postfix logs no client port (unless
//! `smtpd_client_port_logging`) and never its own address, so a Postfix smtpd session matches by
//! client address (port and mapped server when known) and time of its connect line; a Postfix
//! smtp session by the server it delivered to and time. Ties go to the earliest unmatched log
//! session.

use std::collections::BTreeMap;
use std::net::IpAddr;

use rustc_hash::FxHashMap;

use super::{LogRecord, Source};
use crate::capture::Micros;
use crate::session::{Kind, LogLink, Session, UpgradeVerb, Verdict};

/// How far a Postfix connect line may be from the wire's SYN beyond the skew.
pub const POSTFIX_SYN_WINDOW: Micros = 1_000_000;

/// The log side of a run with `--logs`.
#[derive(Debug)]
pub struct CrossCheck {
    records: Vec<LogRecord>,
    used: Vec<bool>,
    /// Server-side records by client address; client-side records by server address.
    by_client: FxHashMap<IpAddr, Vec<usize>>,
    by_server: FxHashMap<IpAddr, Vec<usize>>,
    skew: Micros,
    /// Wire records that disagreed with a matched log session.
    pub disagreements: u64,
    /// Wire records with at least one match.
    pub matched_wire: u64,
    /// Disagreeing wire records by the hint of the link that disagreed (`none` without one).
    pub disagreements_by_hint: BTreeMap<&'static str, u64>,
    /// Links by hint, agreeing or not (a stripped session may agree on every fact).
    pub hints: BTreeMap<&'static str, u64>,
}

fn wire_tls(s: &Session) -> Option<bool> {
    match s.verdict {
        Some(Verdict::Incomplete | Verdict::NotSmtp) | None => None,
        Some(v) => Some(v.is_encrypted()),
    }
}

fn log_tls(r: &LogRecord) -> Option<bool> {
    match r.verdict {
        Verdict::Incomplete | Verdict::NotSmtp => None,
        v => Some(v.is_encrypted()),
    }
}

/// The log's upgrade verb where the log would have shown one (None outside: not logged).
fn log_upgrade(r: &LogRecord) -> Option<Option<UpgradeVerb>> {
    match r.source {
        Source::ExchangeReceive | Source::ExchangeSend => Some(r.upgrade_verb),
        Source::PostfixSmtpd => (r.commands.is_some() || r.upgrade_verb.is_some()).then_some(r.upgrade_verb),
        Source::PostfixSmtp => r.upgrade_verb.map(Some),
    }
}

fn wire_upgrade(s: &Session) -> Option<Option<UpgradeVerb>> {
    matches!(s.kind, Kind::Smtp).then(|| s.upgrade.as_ref().map(|u| u.verb))
}

fn wire_mail(s: &Session) -> Option<u32> {
    (s.kind == Kind::Smtp && !s.tls_handshake()).then_some(s.mail_transactions)
}

/// What differs between a wire session and a log session, where both sides know the fact.
pub fn differences(s: &Session, r: &LogRecord) -> Vec<&'static str> {
    let mut d = Vec::new();
    if let (Some(a), Some(b)) = (wire_tls(s), log_tls(r)) {
        if a != b {
            d.push("tls");
        }
    }
    if let (Some(a), Some(b)) = (wire_upgrade(s), log_upgrade(r)) {
        if a != b {
            d.push("upgrade_verb");
        }
    }
    let wire_version = s.tls.version.filter(|_| s.tls.server_hello.is_some()).map(crate::tls::version_label);
    if let (Some(a), Some(b)) = (wire_version, r.tls_version.as_ref()) {
        if &a != b {
            d.push("tls_version");
        }
    }
    if let (Some(a), Some(b)) = (s.tls.cert.as_ref().map(|c| &c.sha1), r.cert.as_ref().and_then(|c| c.sha1.as_ref())) {
        if !a.eq_ignore_ascii_case(b) {
            d.push("cert");
        }
    }
    if let (Some(a), Some(b)) = (wire_mail(s), r.mail_transactions) {
        if a != b {
            d.push("mail_transactions");
        }
    }
    if let (Some(a), Some(b)) = (s.starttls_offered(), r.starttls_offered) {
        if a != b {
            d.push("offer");
        }
    }
    d
}

/// The hint a disagreement (or a stripped wire session) gives.
pub fn hint(s: &Session, r: &LogRecord) -> Option<(&'static str, String)> {
    if s.verdict == Some(Verdict::Stripped) && r.upgrade_verb.is_none() {
        return Some((
            "stripped-before-server",
            "the wire shows STARTTLS masked and the server's log shows no upgrade: a box between the capture point and the server stripped it".into(),
        ));
    }
    match (wire_tls(s), log_tls(r)) {
        (Some(false), Some(true)) => Some((
            "tls-terminated-before-server",
            "the log shows TLS, the wire shows the session in clear: TLS was added between the capture point and the server".into(),
        )),
        (Some(true), Some(false)) => Some((
            "different-hop",
            "the wire shows TLS, the log shows the session in clear: the log is of another hop (a TLS terminator in front of the server)".into(),
        )),
        _ => None,
    }
}

/// Whether the log's command counts fit what the wire shows in clear.
fn counts_agree(s: &Session, r: &LogRecord) -> bool {
    let Some(counts) = &r.commands else { return true };
    if s.tls_handshake() || r.tls_ok() || s.kind != Kind::Smtp {
        return true;
    }
    let total = |k: &str| counts.iter().find(|c| c.0 == k).map_or(0, |c| c.2);
    // Behind a box that masks STARTTLS the server never sees the client's STARTTLS.
    let upgrade_ok = (s.upgrade.is_some() == (total("starttls") > 0)) || s.verdict == Some(Verdict::Stripped);
    total("mail") == s.mail_transactions && upgrade_ok
}

/// Whether log session `r` may be wire session `s`'s, with the clocks up to `skew` apart.
pub fn fits(s: &Session, r: &LogRecord, skew: Micros) -> bool {
    let port_ok = |log: Option<u16>, wire: u16| log.is_none_or(|p| p == wire);
    match r.source {
        Source::ExchangeReceive | Source::ExchangeSend => {
            let (Some(c), Some(sv)) = (r.client, r.server) else { return false };
            // A Send log may lack the local endpoint before the connect: then the server
            // and time must do.
            c.ip == s.client.ip()
                && c.port == Some(s.client.port())
                && sv.ip == s.server.ip()
                && sv.port == Some(s.server.port())
                && (r.first_seen - s.first_seen).abs() <= skew
        }
        Source::PostfixSmtpd => {
            let Some(c) = r.client else { return false };
            let server_ok = r.server.is_none_or(|sv| sv.ip == s.server.ip() && port_ok(sv.port, s.server.port()));
            c.ip == s.client.ip()
                && port_ok(c.port, s.client.port())
                && server_ok
                && (r.first_seen - s.first_seen).abs() <= skew + POSTFIX_SYN_WINDOW
                && counts_agree(s, r)
        }
        Source::PostfixSmtp => {
            let Some(sv) = r.server else { return false };
            sv.ip == s.server.ip()
                && port_ok(sv.port, s.server.port())
                && r.first_seen >= s.first_seen - skew - POSTFIX_SYN_WINDOW
                && r.first_seen <= s.last_seen + skew + POSTFIX_SYN_WINDOW
        }
    }
}

/// Links wire session `s` to the log sessions matched with it: sets `logs` and, on a
/// disagreement, the `log-disagrees` finding; returns whether any disagreed.
pub fn attach(s: &mut Session, matched: &[&LogRecord]) -> bool {
    let mut links = Vec::new();
    for r in matched {
        let differences = differences(s, r);
        let hint = hint(s, r);
        links.push(LogLink {
            source: r.source.name(),
            log_file: r.log_file.to_string(),
            log_session: r.log_session.clone(),
            verdict: r.verdict,
            agree: differences.is_empty(),
            differences,
            hint: hint.as_ref().map(|h| h.0),
            hint_text: hint.map(|h| h.1),
            lines: r.lines.clone(),
        });
    }
    let bad = links
        .iter()
        .find(|l| !l.agree)
        .map(|bad| format!("{} session {} differs: {}", bad.source, bad.log_session, bad.differences.join(", ")));
    if let Some(text) = &bad {
        s.find("log-disagrees", None, text.clone());
    }
    s.logs = Some(links);
    bad.is_some()
}

impl CrossCheck {
    /// Indexes `records`; `skew` is the largest clock difference between logs and the wire.
    pub fn new(mut records: Vec<LogRecord>, skew: Micros) -> Self {
        records.sort_by_key(|r| r.first_seen);
        let mut by_client: FxHashMap<IpAddr, Vec<usize>> = FxHashMap::default();
        let mut by_server: FxHashMap<IpAddr, Vec<usize>> = FxHashMap::default();
        for (i, r) in records.iter().enumerate() {
            if r.source.is_server_side() {
                if let Some(c) = r.client {
                    by_client.entry(c.ip).or_default().push(i);
                }
            } else if let Some(sv) = r.server {
                by_server.entry(sv.ip).or_default().push(i);
            }
        }
        let used = vec![false; records.len()];
        Self {
            records,
            used,
            by_client,
            by_server,
            skew,
            disagreements: 0,
            matched_wire: 0,
            disagreements_by_hint: BTreeMap::new(),
            hints: BTreeMap::new(),
        }
    }

    /// Log sessions read.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// No log session was read.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    fn best(&self, s: &Session, candidates: Option<&Vec<usize>>) -> Option<usize> {
        // Records are sorted by time: the first fitting unmatched one is the earliest.
        candidates?
            .iter()
            .copied()
            .find(|&i| !self.used[i] && self.records.get(i).is_some_and(|r| fits(s, r, self.skew)))
    }

    /// Matches a finished wire session: sets its `logs` list and, on a disagreement, the
    /// `log-disagrees` finding.
    pub fn link(&mut self, s: &mut Session) {
        self.link_matched(s);
    }

    /// [`CrossCheck::link`], giving the log sessions matched (server side first).
    pub fn link_matched(&mut self, s: &mut Session) -> Vec<&LogRecord> {
        let server_side = self.best(s, self.by_client.get(&s.client.ip()));
        let client_side = self.best(s, self.by_server.get(&s.server.ip()));
        let matched: Vec<usize> = [server_side, client_side].into_iter().flatten().collect();
        for &i in &matched {
            self.used[i] = true;
        }
        if !matched.is_empty() {
            self.matched_wire += 1;
        }
        let records: Vec<&LogRecord> = matched.iter().filter_map(|&i| self.records.get(i)).collect();
        let disagreed = attach(s, &records);
        let links = s.logs.as_deref().unwrap_or_default();
        for h in links.iter().filter_map(|l| l.hint) {
            *self.hints.entry(h).or_default() += 1;
        }
        if disagreed {
            self.disagreements += 1;
            let hint = links.iter().find(|l| !l.agree).and_then(|l| l.hint);
            *self.disagreements_by_hint.entry(hint.unwrap_or("none")).or_default() += 1;
        }
        records
    }

    /// Log sessions some wire session matched.
    pub fn matched_logs(&self) -> usize {
        self.used.iter().filter(|u| **u).count()
    }

    /// Log sessions no wire session matched, within `[first, last]` ± the skew.
    pub fn unmatched(&self, span: Option<(Micros, Micros)>) -> impl Iterator<Item = &LogRecord> {
        let skew = self.skew;
        self.records.iter().zip(&self.used).filter_map(move |(r, used)| {
            let inside = span.is_some_and(|(a, b)| r.first_seen >= a - skew && r.first_seen <= b + skew);
            (!used && inside).then_some(r)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::SocketAddr;
    use std::sync::Arc;

    fn wire(client: &str, server: &str, t: Micros, verdict: Verdict) -> Session {
        let mut s = Session::new(client.parse::<SocketAddr>().unwrap(), server.parse().unwrap());
        s.first_seen = t;
        s.last_seen = t + 2_000_000;
        s.kind = Kind::Smtp;
        s.verdict = Some(verdict);
        s
    }

    fn smtpd(client: &str, t: Micros, verdict: Verdict) -> LogRecord {
        let mut r =
            LogRecord::new(Source::PostfixSmtpd, Arc::from("mail.log"), format!("mx/postfix/smtpd[1]@{t}"), t, 1);
        r.client = Some(crate::logs::Endpoint { ip: client.parse().unwrap(), port: None });
        r.verdict = verdict;
        r
    }

    #[test]
    fn postfix_matches_by_client_address_and_time_ties_to_the_earliest() {
        let logs = vec![
            smtpd("192.0.2.1", 10_000_000, Verdict::Plaintext),
            smtpd("192.0.2.1", 10_500_000, Verdict::Plaintext),
        ];
        let mut x = CrossCheck::new(logs, 0);
        let mut a = wire("192.0.2.1:4000", "192.0.2.10:25", 10_200_000, Verdict::Plaintext);
        let mut b = wire("192.0.2.1:4001", "192.0.2.10:25", 10_300_000, Verdict::Plaintext);
        x.link(&mut a);
        x.link(&mut b);
        assert_eq!(a.logs.as_ref().unwrap()[0].log_session, "mx/postfix/smtpd[1]@10000000");
        assert_eq!(b.logs.as_ref().unwrap()[0].log_session, "mx/postfix/smtpd[1]@10500000");
        let mut c = wire("192.0.2.1:4002", "192.0.2.10:25", 30_000_000, Verdict::Plaintext);
        x.link(&mut c);
        assert_eq!(c.logs.as_deref(), Some(&[][..]), "outside ±1 s: empty list");
    }

    #[test]
    fn log_tls_with_wire_clear_disagrees_with_the_termination_hint() {
        let mut x = CrossCheck::new(vec![smtpd("192.0.2.1", 0, Verdict::Starttls)], 0);
        let mut s = wire("192.0.2.1:4000", "192.0.2.10:25", 0, Verdict::Plaintext);
        x.link(&mut s);
        let l = &s.logs.as_ref().unwrap()[0];
        assert_eq!(l.differences, ["tls"]);
        assert!(!l.agree);
        assert_eq!(l.hint, Some("tls-terminated-before-server"));
        assert_eq!(s.findings[0].name, "log-disagrees");
        assert_eq!(x.disagreements, 1);
    }

    #[test]
    fn a_stripped_wire_session_whose_log_shows_no_upgrade_gets_the_stripped_hint() {
        let mut r = smtpd("192.0.2.1", 0, Verdict::Plaintext);
        r.commands = Some(vec![("ehlo".into(), 1, 1), ("mail".into(), 1, 1)]);
        r.mail_transactions = Some(1);
        let mut x = CrossCheck::new(vec![r], 0);
        let mut s = wire("192.0.2.1:4000", "192.0.2.10:25", 0, Verdict::Stripped);
        s.mail_transactions = 1;
        x.link(&mut s);
        let l = &s.logs.as_ref().unwrap()[0];
        assert!(l.agree, "{:?}", l.differences);
        assert_eq!(l.hint, Some("stripped-before-server"));
    }

    #[test]
    fn unmatched_log_sessions_inside_the_capture_span_are_listed() {
        let x = CrossCheck::new(
            vec![
                smtpd("192.0.2.1", 5_000_000, Verdict::Plaintext),
                smtpd("192.0.2.2", 900_000_000, Verdict::Plaintext),
            ],
            1_000_000,
        );
        let n: Vec<_> = x.unmatched(Some((0, 10_000_000))).map(|r| r.first_seen).collect();
        assert_eq!(n, [5_000_000]);
    }
}
