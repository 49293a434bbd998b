//! The cross-check of a live capture: each finished wire record is held until a log session
//! matches it or `--log-wait` has passed, while log sessions arrive from the follower.
//!
//! Order: a record leaves as soon as it is linked (at once when its log session is already
//! there, else when that session arrives) or when its wait is over. Records therefore leave in
//! the order they become ready: one overtakes an earlier record only while that one still waits
//! for its log, and no record is later than its end plus the wait (and one follower poll).
//!
//! A record leaves at its first match: when the logs hold both its server's and its client's
//! side, the other side is attached if it is already there, and counted unmatched if it comes
//! later. A log session waits for its wire session as long as a record waits for its log, plus
//! [`LOG_GRACE`] (the wire may still be closing the flow); then it is unmatched. Both waits bound
//! what is held.
//!
//! A record leaves with the log sessions it was linked to (a [`Linked`]): the record carries
//! their summary in `logs`, and `check` judges the log sessions themselves.

use std::collections::{BTreeMap, VecDeque};
use std::net::IpAddr;
use std::time::{Duration, Instant};

use rustc_hash::{FxHashMap, FxHashSet};

use super::matching::{attach, fits};
use super::LogRecord;
use crate::capture::Micros;
use crate::session::{Session, Verdict};

/// What a released wire record is handed on with: the log sessions it was linked to (empty when
/// none came within the wait), whole, for a consumer that judges them (`check`).
pub type Linked = Vec<LogRecord>;

/// How much longer than a wire record a log session waits for its match.
pub const LOG_GRACE: Duration = Duration::from_secs(60);

/// Most log sessions held at once (each about 1.6 KB with its lines); beyond it the oldest is
/// let go as unmatched.
pub const MAX_HELD_LOGS: usize = 50_000;

/// Live matching of wire records with log sessions as both arrive.
#[derive(Debug)]
pub struct Hold {
    wait: Duration,
    skew: Micros,
    logs: FxHashMap<u64, (LogRecord, Instant)>,
    next_id: u64,
    /// Server-side log sessions by client address; client-side ones by server address.
    by_client: FxHashMap<IpAddr, Vec<u64>>,
    by_server: FxHashMap<IpAddr, Vec<u64>>,
    arrivals: VecDeque<(Instant, u64)>,
    /// Finished wire records in the order they finished, with their deadline (None: gone).
    waiting: VecDeque<Option<(Session, Instant)>>,
    /// Addresses of log sessions that arrived since the waiting records were last tried.
    fresh: FxHashSet<IpAddr>,
    span: Option<(Micros, Micros)>,
    /// Log sessions received.
    pub log_sessions: u64,
    /// Wire records linked to at least one log session.
    pub matched_wire: u64,
    /// Wire records that disagreed with a matched log session.
    pub disagreements: u64,
    /// Wire records that left without a log session (their wait was over).
    pub waited_out: u64,
    /// Log sessions no wire record took, inside the capture's span ± the skew.
    pub unmatched_logs: u64,
    /// Log sessions received, by the log's verdict.
    pub verdicts: BTreeMap<Verdict, u64>,
    /// Log sessions linked to a wire record.
    pub matched_logs: u64,
    /// Disagreeing wire records by the hint of the link that disagreed (`none` without one).
    pub disagreements_by_hint: BTreeMap<&'static str, u64>,
    /// Links by hint, agreeing or not (a stripped session may agree on every fact).
    pub hints: BTreeMap<&'static str, u64>,
}

impl Hold {
    /// Holds wire records up to `wait`; `skew` as for files.
    pub fn new(wait: Duration, skew: Micros) -> Self {
        Self {
            wait,
            skew,
            logs: FxHashMap::default(),
            next_id: 0,
            by_client: FxHashMap::default(),
            by_server: FxHashMap::default(),
            arrivals: VecDeque::new(),
            waiting: VecDeque::new(),
            fresh: FxHashSet::default(),
            span: None,
            log_sessions: 0,
            matched_wire: 0,
            disagreements: 0,
            waited_out: 0,
            unmatched_logs: 0,
            verdicts: BTreeMap::new(),
            matched_logs: 0,
            disagreements_by_hint: BTreeMap::new(),
            hints: BTreeMap::new(),
        }
    }

    /// Wire records waiting now.
    pub fn waiting(&self) -> usize {
        self.waiting.iter().flatten().count()
    }

    /// A log session arrived (matched with the waiting records at the next [`Hold::release`]).
    pub fn log(&mut self, r: LogRecord, now: Instant, unmatched: &mut dyn FnMut(LogRecord)) {
        self.log_sessions += 1;
        *self.verdicts.entry(r.verdict).or_default() += 1;
        let id = self.next_id;
        self.next_id += 1;
        let index = if r.source.is_server_side() {
            r.client.map(|c| (&mut self.by_client, c.ip))
        } else {
            r.server.map(|sv| (&mut self.by_server, sv.ip))
        };
        // A log session without the address it is found by can match nothing.
        let Some((index, ip)) = index else {
            self.let_go(r, unmatched);
            return;
        };
        index.entry(ip).or_default().push(id);
        self.fresh.insert(ip);
        self.logs.insert(id, (r, now));
        self.arrivals.push_back((now, id));
        while self.logs.len() > MAX_HELD_LOGS {
            let Some((_, old)) = self.arrivals.pop_front() else { break };
            if let Some(r) = self.take(old) {
                self.let_go(r, unmatched);
            }
        }
    }

    /// A wire record finished: it leaves at once when its log session is there (or nothing is
    /// waited for), else it waits.
    pub fn finished(&mut self, mut s: Session, now: Instant, out: &mut dyn FnMut(Session, Linked)) {
        self.span = Some(match self.span {
            Some((a, b)) => (a.min(s.first_seen), b.max(s.last_seen)),
            None => (s.first_seen, s.last_seen),
        });
        if let Some(logs) = self.try_link(&mut s) {
            out(s, logs);
        } else if self.wait.is_zero() {
            self.leave_unlinked(&mut s);
            out(s, Vec::new());
        } else {
            self.waiting.push_back(Some((s, now + self.wait)));
        }
    }

    /// Links waiting records whose log session has arrived, lets go those whose wait is over,
    /// and log sessions that waited too long for their wire record.
    pub fn release(
        &mut self,
        now: Instant,
        out: &mut dyn FnMut(Session, Linked),
        unmatched: &mut dyn FnMut(LogRecord),
    ) {
        self.link_arrived(out);
        // Deadlines grow in the order records finished: the front is due first.
        while let Some(front) = self.waiting.front() {
            match front {
                None => {
                    self.waiting.pop_front();
                }
                Some((_, deadline)) if *deadline <= now => {
                    if let Some(Some((mut s, _))) = self.waiting.pop_front() {
                        self.leave_unlinked(&mut s);
                        out(s, Vec::new());
                    }
                }
                Some(_) => break,
            }
        }
        let keep = self.wait + LOG_GRACE;
        while let Some(&(arrived, id)) = self.arrivals.front() {
            if now.duration_since(arrived) < keep {
                break;
            }
            self.arrivals.pop_front();
            if let Some(r) = self.take(id) {
                self.let_go(r, unmatched);
            }
        }
    }

    /// Links the waiting records whose log session has arrived since the last call; lets
    /// nothing go unlinked (at the end of a run the records wait for the follower's last round,
    /// which closes the log sessions still open).
    pub fn link_arrived(&mut self, out: &mut dyn FnMut(Session, Linked)) {
        if self.fresh.is_empty() {
            return;
        }
        let fresh = std::mem::take(&mut self.fresh);
        for i in 0..self.waiting.len() {
            let Some(Some((s, _))) = self.waiting.get(i) else { continue };
            if !fresh.contains(&s.client.ip()) && !fresh.contains(&s.server.ip()) {
                continue;
            }
            let Some(slot) = self.waiting.get_mut(i) else { continue };
            let Some((mut s, deadline)) = slot.take() else { continue };
            if let Some(logs) = self.try_link(&mut s) {
                out(s, logs);
            } else if let Some(slot) = self.waiting.get_mut(i) {
                *slot = Some((s, deadline));
            }
        }
    }

    /// When the wait of the last record waiting now is over (None: none waits).
    pub fn last_deadline(&self) -> Option<Instant> {
        // Deadlines grow in the order records finished.
        self.waiting.iter().rev().flatten().map(|(_, deadline)| *deadline).next()
    }

    /// The end of the run: every waiting record is tried once more and leaves; every log
    /// session left is unmatched.
    pub fn finish(&mut self, out: &mut dyn FnMut(Session, Linked), unmatched: &mut dyn FnMut(LogRecord)) {
        while let Some(slot) = self.waiting.pop_front() {
            let Some((mut s, _)) = slot else { continue };
            let logs = self.try_link(&mut s).unwrap_or_else(|| {
                self.leave_unlinked(&mut s);
                Vec::new()
            });
            out(s, logs);
        }
        while let Some((_, id)) = self.arrivals.pop_front() {
            if let Some(r) = self.take(id) {
                self.let_go(r, unmatched);
            }
        }
    }

    fn leave_unlinked(&mut self, s: &mut Session) {
        self.waited_out += 1;
        attach(s, &[]);
    }

    /// A log session nobody took: counted (and handed on) when it is inside the capture's span.
    fn let_go(&mut self, r: LogRecord, unmatched: &mut dyn FnMut(LogRecord)) {
        let skew = self.skew;
        if self.span.is_some_and(|(a, b)| r.first_seen >= a - skew && r.first_seen <= b + skew) {
            self.unmatched_logs += 1;
            unmatched(r);
        }
    }

    fn take(&mut self, id: u64) -> Option<LogRecord> {
        let (r, _) = self.logs.remove(&id)?;
        let index = if r.source.is_server_side() {
            r.client.map(|c| (&mut self.by_client, c.ip))
        } else {
            r.server.map(|sv| (&mut self.by_server, sv.ip))
        };
        if let Some((index, ip)) = index {
            if let Some(ids) = index.get_mut(&ip) {
                ids.retain(|&x| x != id);
                if ids.is_empty() {
                    index.remove(&ip);
                }
            }
        }
        Some(r)
    }

    /// The earliest held log session in `ids` that fits `s`.
    fn best(&self, s: &Session, ids: Option<&Vec<u64>>) -> Option<u64> {
        ids?.iter()
            .filter_map(|id| self.logs.get(id).map(|(r, _)| (id, r)))
            .filter(|(_, r)| fits(s, r, self.skew))
            .min_by_key(|(id, r)| (r.first_seen, **id))
            .map(|(id, _)| *id)
    }

    /// Links `s` when a held log session fits it: the log sessions taken, or None.
    fn try_link(&mut self, s: &mut Session) -> Option<Linked> {
        let server_side = self.best(s, self.by_client.get(&s.client.ip()));
        let client_side = self.best(s, self.by_server.get(&s.server.ip()));
        let matched: Vec<LogRecord> =
            [server_side, client_side].into_iter().flatten().filter_map(|id| self.take(id)).collect();
        if matched.is_empty() {
            return None;
        }
        self.matched_wire += 1;
        self.matched_logs += matched.len() as u64;
        let refs: Vec<&LogRecord> = matched.iter().collect();
        let disagreed = attach(s, &refs);
        // Counted as the files' cross-check counts them (`CrossCheck::link_matched`).
        let links = s.logs.as_deref().unwrap_or_default();
        for h in links.iter().filter_map(|l| l.hint) {
            *self.hints.entry(h).or_default() += 1;
        }
        if disagreed {
            self.disagreements += 1;
            let hint = links.iter().find(|l| !l.agree).and_then(|l| l.hint);
            *self.disagreements_by_hint.entry(hint.unwrap_or("none")).or_default() += 1;
        }
        Some(matched)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logs::{Endpoint, Source};
    use crate::session::{Kind, Verdict};
    use std::net::SocketAddr;
    use std::sync::Arc;

    fn wire(client: &str, t: Micros) -> Session {
        let mut s = Session::new(client.parse::<SocketAddr>().unwrap(), "192.0.2.10:25".parse().unwrap());
        s.first_seen = t;
        s.last_seen = t + 2_000_000;
        s.kind = Kind::Smtp;
        s.verdict = Some(Verdict::Plaintext);
        s
    }

    fn smtpd(client: &str, t: Micros) -> LogRecord {
        let mut r =
            LogRecord::new(Source::PostfixSmtpd, Arc::from("mail.log"), format!("mx/postfix/smtpd[1]@{t}"), t, 1);
        r.client = Some(Endpoint { ip: client.parse().unwrap(), port: None });
        r.verdict = Verdict::Plaintext;
        r
    }

    fn ips(out: &[Session]) -> Vec<String> {
        out.iter().map(|s| s.client.ip().to_string()).collect()
    }

    #[test]
    fn a_record_whose_log_is_there_leaves_at_once_linked() {
        let now = Instant::now();
        let mut h = Hold::new(Duration::from_secs(10), 0);
        h.log(smtpd("192.0.2.1", 10_000_000), now, &mut |_| panic!());
        let mut out = Vec::new();
        h.finished(wire("192.0.2.1:4000", 10_000_000), now, &mut |s, _| out.push(s));
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].logs.as_ref().unwrap().len(), 1);
        assert_eq!(h.waiting(), 0);
    }

    #[test]
    fn a_record_waits_for_its_log_and_may_be_overtaken_only_by_a_later_one_whose_log_came() {
        let t0 = Instant::now();
        let mut h = Hold::new(Duration::from_secs(10), 0);
        let mut out = Vec::new();
        h.finished(wire("192.0.2.1:4000", 10_000_000), t0, &mut |s, _| out.push(s));
        h.finished(wire("192.0.2.2:4000", 11_000_000), t0, &mut |s, _| out.push(s));
        assert!(out.is_empty());
        h.log(smtpd("192.0.2.2", 11_000_000), t0 + Duration::from_secs(1), &mut |_| panic!());
        h.release(t0 + Duration::from_secs(1), &mut |s, _| out.push(s), &mut |_| panic!());
        assert_eq!(ips(&out), ["192.0.2.2"]);
        h.log(smtpd("192.0.2.1", 10_000_000), t0 + Duration::from_secs(2), &mut |_| panic!());
        h.release(t0 + Duration::from_secs(2), &mut |s, _| out.push(s), &mut |_| panic!());
        assert_eq!(ips(&out), ["192.0.2.2", "192.0.2.1"]);
        assert!(out.iter().all(|s| s.logs.as_ref().is_some_and(|l| l.len() == 1)));
        assert_eq!(h.matched_wire, 2);
    }

    #[test]
    fn a_record_whose_log_never_comes_leaves_after_the_wait_with_an_empty_list() {
        let t0 = Instant::now();
        let mut h = Hold::new(Duration::from_secs(10), 0);
        let mut out = Vec::new();
        h.finished(wire("192.0.2.1:4000", 10_000_000), t0, &mut |s, _| out.push(s));
        h.release(t0 + Duration::from_millis(9_999), &mut |s, _| out.push(s), &mut |_| {});
        assert!(out.is_empty());
        h.release(t0 + Duration::from_secs(10), &mut |s, _| out.push(s), &mut |_| {});
        assert_eq!(out[0].logs.as_deref(), Some(&[][..]));
        assert_eq!(h.waited_out, 1);
    }

    #[test]
    fn a_log_session_no_record_takes_is_let_go_after_the_wait_and_the_grace() {
        let t0 = Instant::now();
        let mut h = Hold::new(Duration::from_secs(10), 1_000_000);
        let mut out = Vec::new();
        h.finished(wire("192.0.2.1:4000", 10_000_000), t0, &mut |s, _| out.push(s));
        h.log(smtpd("192.0.2.9", 10_500_000), t0, &mut |_| panic!());
        let mut gone = Vec::new();
        h.release(t0 + Duration::from_secs(69), &mut |s, _| out.push(s), &mut |r| gone.push(r));
        assert!(gone.is_empty());
        h.release(t0 + Duration::from_secs(70), &mut |s, _| out.push(s), &mut |r| gone.push(r));
        assert_eq!(gone.len(), 1);
        assert_eq!(h.unmatched_logs, 1);
        assert!(h.logs.is_empty() && h.by_client.is_empty() && h.arrivals.is_empty(), "nothing held");
    }

    #[test]
    fn at_the_end_every_waiting_record_leaves_in_order() {
        let t0 = Instant::now();
        let mut h = Hold::new(Duration::from_secs(10), 0);
        let mut out = Vec::new();
        h.finished(wire("192.0.2.1:4000", 10_000_000), t0, &mut |s, _| out.push(s));
        h.finished(wire("192.0.2.2:4000", 11_000_000), t0, &mut |s, _| out.push(s));
        h.log(smtpd("192.0.2.2", 11_000_000), t0, &mut |_| panic!());
        h.finish(&mut |s, _| out.push(s), &mut |_| panic!());
        assert_eq!(ips(&out), ["192.0.2.1", "192.0.2.2"]);
        assert_eq!(out[1].logs.as_ref().unwrap().len(), 1);
    }

    #[test]
    fn a_released_record_comes_with_the_log_sessions_it_was_linked_to_whole() {
        let t0 = Instant::now();
        let mut h = Hold::new(Duration::from_secs(10), 0);
        let mut out: Vec<(Session, Linked)> = Vec::new();
        // Linked at once, linked later, and never linked.
        h.log(smtpd("192.0.2.1", 10_000_000), t0, &mut |_| panic!());
        h.finished(wire("192.0.2.1:4000", 10_000_000), t0, &mut |s, l| out.push((s, l)));
        h.finished(wire("192.0.2.2:4000", 11_000_000), t0, &mut |s, l| out.push((s, l)));
        h.finished(wire("192.0.2.3:4000", 12_000_000), t0, &mut |s, l| out.push((s, l)));
        let mut late = smtpd("192.0.2.2", 11_000_000);
        late.tls_version = Some("TLS1.3".into());
        h.log(late, t0 + Duration::from_secs(1), &mut |_| panic!());
        h.release(t0 + Duration::from_secs(1), &mut |s, l| out.push((s, l)), &mut |_| panic!());
        h.finish(&mut |s, l| out.push((s, l)), &mut |_| panic!());
        let got: Vec<(String, Vec<String>, Option<String>)> = out
            .iter()
            .map(|(s, l)| {
                let ids = l.iter().map(|r| r.log_session.clone()).collect();
                (s.client.ip().to_string(), ids, l.first().and_then(|r| r.tls_version.clone()))
            })
            .collect();
        assert_eq!(
            got,
            [
                ("192.0.2.1".into(), vec!["mx/postfix/smtpd[1]@10000000".to_string()], None),
                ("192.0.2.2".into(), vec!["mx/postfix/smtpd[1]@11000000".to_string()], Some("TLS1.3".into())),
                ("192.0.2.3".into(), vec![], None),
            ]
        );
        assert_eq!(out[2].0.logs.as_deref(), Some(&[][..]), "the record itself says none came");
    }

    #[test]
    fn the_counts_for_the_summary_are_those_of_the_files_cross_check() {
        let t0 = Instant::now();
        let mut h = Hold::new(Duration::from_secs(10), 0);
        // The log shows TLS, the wire shows the session in clear: a disagreement with its hint.
        let mut tls = smtpd("192.0.2.1", 10_000_000);
        tls.verdict = Verdict::Starttls;
        h.log(tls, t0, &mut |_| panic!());
        h.log(smtpd("192.0.2.2", 11_000_000), t0, &mut |_| panic!());
        h.log(smtpd("192.0.2.9", 11_000_000), t0, &mut |_| panic!());
        h.finished(wire("192.0.2.1:4000", 10_000_000), t0, &mut |_, _| {});
        h.finished(wire("192.0.2.2:4000", 11_000_000), t0, &mut |_, _| {});
        let mut gone = 0;
        h.finish(&mut |_, _| {}, &mut |_| gone += 1);
        assert_eq!((h.log_sessions, h.matched_wire, h.matched_logs, h.disagreements), (3, 2, 2, 1));
        assert_eq!(h.verdicts, BTreeMap::from([(Verdict::Starttls, 1), (Verdict::Plaintext, 2)]));
        assert_eq!(h.disagreements_by_hint, BTreeMap::from([("tls-terminated-before-server", 1)]));
        assert_eq!(h.hints, BTreeMap::from([("tls-terminated-before-server", 1)]));
        assert_eq!((h.unmatched_logs, gone), (1, 1), "192.0.2.9 is inside the span");
    }

    #[test]
    fn linking_arrivals_lets_nothing_go_and_the_last_deadline_is_the_newest_records() {
        let t0 = Instant::now();
        let mut h = Hold::new(Duration::from_secs(10), 0);
        assert_eq!(h.last_deadline(), None);
        let mut out = Vec::new();
        h.finished(wire("192.0.2.1:4000", 10_000_000), t0, &mut |s, _| out.push(s));
        h.finished(wire("192.0.2.2:4000", 11_000_000), t0 + Duration::from_secs(1), &mut |s, _| out.push(s));
        assert_eq!(h.last_deadline(), Some(t0 + Duration::from_secs(11)));
        h.log(smtpd("192.0.2.2", 11_000_000), t0 + Duration::from_secs(30), &mut |_| panic!());
        h.link_arrived(&mut |s, _| out.push(s));
        assert_eq!(ips(&out), ["192.0.2.2"], "linked; the other, past its wait, still waits");
        assert_eq!((h.waiting(), h.waited_out), (1, 0));
        assert_eq!(h.last_deadline(), Some(t0 + Duration::from_secs(10)));
    }
}
