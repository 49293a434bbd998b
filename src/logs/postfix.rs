//! Postfix 2.x–3.11 syslog lines: smtpd sessions (connect … disconnect with the command-count
//! summary) and smtp client sessions (TLS line or `Host offered STARTTLS`, then delivery lines).
//!
//! Message forms: the real texts quoted in `../shared/logs/postfix/grok-patterns-test-messages.txt`
//! (whyscream/postfix-grok-patterns) and Debian 12's Postfix 3.7 in the lab.

use std::net::IpAddr;
use std::sync::Arc;

use rustc_hash::FxHashMap;

use super::record::{version_label, LogRecord, Source};
use super::time::{parse_classic, parse_iso, ClassicClock, ClockNote};
use super::{mask, text, Endpoint, LineParser, LogOptions, Problems};
use crate::capture::Micros;
use crate::session::UpgradeVerb;

/// Postfix daemon names (the last part of the syslog tag).
const DAEMONS: [&str; 30] = [
    "smtpd",
    "smtp",
    "lmtp",
    "cleanup",
    "qmgr",
    "pickup",
    "postscreen",
    "local",
    "bounce",
    "anvil",
    "master",
    "tlsproxy",
    "dnsblog",
    "pipe",
    "virtual",
    "error",
    "discard",
    "scache",
    "trivial-rewrite",
    "postfix-script",
    "sendmail",
    "postdrop",
    "verify",
    "flush",
    "showq",
    "proxymap",
    "tlsmgr",
    "postqueue",
    "postsuper",
    "oqmgr",
];

/// A syslog line split into its parts.
#[derive(Debug, Clone, Copy)]
pub struct SyslogLine<'a> {
    /// The timestamp bytes.
    pub stamp: &'a [u8],
    /// Reporting host.
    pub host: &'a [u8],
    /// Process name (`postfix/submission/smtpd`).
    pub process: &'a [u8],
    /// Pid, when the tag has one.
    pub pid: Option<u32>,
    /// Message after `: `.
    pub msg: &'a [u8],
}

fn stamp_len(line: &[u8]) -> Option<usize> {
    if line.first().is_some_and(u8::is_ascii_digit) {
        parse_iso(line).map(|(_, n)| n)
    } else {
        parse_classic(line).map(|(_, n)| n)
    }
}

/// Splits `STAMP HOST TAG[PID]: MESSAGE`.
pub fn split_syslog(line: &[u8]) -> Option<SyslogLine<'_>> {
    let n = stamp_len(line)?;
    let stamp = line.get(..n)?;
    let rest = line.get(n..)?.strip_prefix(b" ")?;
    let sp = memchr::memchr(b' ', rest)?;
    let host = rest.get(..sp)?;
    let rest = rest.get(sp + 1..)?;
    let colon = find_colon_space(rest)?;
    let tag = rest.get(..colon)?;
    let msg = rest.get(colon + 2..)?;
    let (process, pid) = match (tag.iter().position(|b| *b == b'['), tag.last()) {
        (Some(open), Some(b']')) => {
            let pid = std::str::from_utf8(tag.get(open + 1..tag.len() - 1)?).ok()?.parse().ok()?;
            (tag.get(..open)?, Some(pid))
        }
        _ => (tag, None),
    };
    if process.is_empty() || process.contains(&b' ') {
        return None;
    }
    Some(SyslogLine { stamp, host, process, pid, msg })
}

/// The daemon part of a Postfix process name (`postfix/submission/smtpd` → `smtpd`), when the
/// name has Postfix's `syslog_name/daemon` form.
pub fn daemon(process: &[u8]) -> Option<&str> {
    let slash = process.iter().rposition(|b| *b == b'/')?;
    let d = std::str::from_utf8(process.get(slash + 1..)?).ok()?;
    DAEMONS.iter().find(|x| **x == d).copied()
}

/// A syslog line from a Postfix daemon.
pub fn looks_like_line(line: &[u8]) -> bool {
    split_syslog(line).is_some_and(|l| daemon(l.process).is_some())
}

/// `host[ip]` or `host[ip]:port` at the start of `s` → (endpoint, bytes used). `unknown[unknown]`
/// or a socket path give no endpoint.
pub fn host_addr(s: &[u8]) -> (Option<Endpoint>, usize) {
    let Some(open) = memchr::memchr(b'[', s) else { return (None, 0) };
    if s.get(..open).is_some_and(|h| h.iter().any(|b| matches!(b, b' ' | b',' | b'('))) {
        return (None, 0);
    }
    let Some(close) = memchr::memchr(b']', s.get(open..).unwrap_or_default()).map(|c| open + c) else {
        return (None, 0);
    };
    let ip =
        std::str::from_utf8(s.get(open + 1..close).unwrap_or_default()).ok().and_then(|v| v.parse::<IpAddr>().ok());
    let mut used = close + 1;
    let mut port = None;
    if s.get(used) == Some(&b':') {
        let start = used + 1;
        let mut e = start;
        while s.get(e).is_some_and(u8::is_ascii_digit) {
            e += 1;
        }
        if e > start {
            port = std::str::from_utf8(s.get(start..e).unwrap_or_default()).ok().and_then(|p| p.parse().ok());
            used = e;
        }
    }
    (ip.map(|ip| Endpoint { ip, port }), used)
}

/// The queue id (or `NOQUEUE`) before a message, and the message after it.
fn strip_queue_id(msg: &[u8]) -> (Option<&[u8]>, &[u8]) {
    if let Some(p) = find_colon_space(msg) {
        let id = msg.get(..p).unwrap_or_default();
        if id.len() >= 5
            && id.iter().all(u8::is_ascii_alphanumeric)
            && id.iter().any(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
        {
            return (Some(id), msg.get(p + 2..).unwrap_or_default());
        }
    }
    (None, msg)
}

/// `disconnect from` summary counts: `ehlo=2 starttls=0/1 commands=5/7` → (name, ok, total).
pub fn command_counts(s: &str) -> Vec<(String, u32, u32)> {
    s.split_whitespace()
        .filter_map(|t| {
            let (k, v) = t.split_once('=')?;
            let (ok, all) = match v.split_once('/') {
                Some((a, b)) => (a.parse().ok()?, b.parse().ok()?),
                None => {
                    let n: u32 = v.parse().ok()?;
                    (n, n)
                }
            };
            Some((k.to_string(), ok, all))
        })
        .collect()
}

/// A TLS line's parts: trust level, peer, version label, cipher.
pub type TlsLine<'a> = (&'a str, Option<Endpoint>, Option<String>, Option<String>);

/// A TLS line's `TRUST TLS connection established (from|to) host[ip][:port]: PROTO with cipher
/// CIPHER (...)` → (trust level, endpoint, version, cipher).
pub fn tls_established(msg: &str) -> Option<TlsLine<'_>> {
    // The trust word opens the message, so the four prefixes are the whole test (no substring
    // search per line: this runs on every smtpd line).
    let (trust, rest) = ["Anonymous", "Untrusted", "Trusted", "Verified"].into_iter().find_map(|t| {
        msg.strip_prefix(t).and_then(|r| r.strip_prefix(" TLS connection established ")).map(|r| (t, r))
    })?;
    let rest = rest.strip_prefix("from ").or_else(|| rest.strip_prefix("to "))?;
    let (ep, used) = host_addr(rest.as_bytes());
    let after = rest.get(used..)?.strip_prefix(": ")?;
    let proto = after.split_whitespace().next().and_then(version_label);
    let cipher = after.split(" with cipher ").nth(1).and_then(|c| c.split_whitespace().next()).map(str::to_string);
    Some((trust, ep, proto, cipher))
}

#[derive(Debug)]
struct Open {
    rec: LogRecord,
    last_queue_id: Option<Vec<u8>>,
    mails: u32,
}

/// The Postfix parser for one file.
pub struct Parser {
    file: Arc<str>,
    opts: LogOptions,
    clock: ClassicClock,
    sessions: FxHashMap<String, Open>,
    problems: Problems,
    key: String,
}

fn contains(h: &[u8], n: &str) -> bool {
    memchr::memmem::find(h, n.as_bytes()).is_some()
}

/// The first `": "` in `h`: a byte search for the colon, where a substring searcher would be
/// built anew for every line.
fn find_colon_space(h: &[u8]) -> Option<usize> {
    memchr::memchr_iter(b':', h).find(|&i| h.get(i + 1) == Some(&b' '))
}

/// Whether an smtpd line is a TLS success line (searcher built once).
fn tls_success_line(body: &[u8]) -> bool {
    static FINDER: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
        std::sync::LazyLock::new(|| memchr::memmem::Finder::new(" TLS connection established from "));
    FINDER.find(body).is_some()
}

impl Parser {
    /// A parser for `file`.
    pub fn new(file: Arc<str>, opts: LogOptions) -> Self {
        let clock = ClassicClock::new(opts.tz.clone(), opts.reference);
        Self { file, opts, clock, sessions: FxHashMap::default(), problems: Problems::default(), key: String::new() }
    }

    fn time(&mut self, stamp: &[u8]) -> Option<Micros> {
        if stamp.first().is_some_and(u8::is_ascii_digit) {
            return parse_iso(stamp).map(|(t, _)| t);
        }
        let (c, _) = parse_classic(stamp)?;
        let (t, note) = self.clock.to_utc(c)?;
        match note {
            ClockNote::None => {}
            ClockNote::Ambiguous => self.problems.add("ambiguous-local-time"),
            ClockNote::Skipped => self.problems.add("nonexistent-local-time"),
        }
        Some(t)
    }

    fn close(&mut self, key: &str, out: &mut dyn FnMut(LogRecord)) {
        if let Some(o) = self.sessions.remove(key) {
            self.emit(o, out);
        }
    }

    fn emit(&self, mut o: Open, out: &mut dyn FnMut(LogRecord)) {
        let r = &mut o.rec;
        if r.source == Source::PostfixSmtp {
            r.mail_transactions = Some(o.mails);
        }
        if r.tls_line.is_some() && !r.implicit_tls && r.upgrade_verb.is_none() {
            r.upgrade_verb = Some(UpgradeVerb::Starttls);
            r.upgrade_line = r.tls_line;
        }
        if r.source == Source::PostfixSmtpd && r.server.is_none() {
            if let Some(p) = r.process.as_deref() {
                let prefix = p.rsplit_once('/').map_or(p, |(a, _)| a);
                r.server = self.opts.servers.iter().find(|(n, _)| n == p || n == prefix).map(|(_, e)| *e);
            }
        }
        r.judge();
        out(o.rec);
    }

    fn open(&mut self, source: Source, l: &SyslogLine, n: u64, t: Micros, out: &mut dyn FnMut(LogRecord)) {
        let key = self.key.clone();
        self.close(&key, out);
        let id = format!("{}/{}[{}]@{}", text(l.host), text(l.process), l.pid.unwrap_or(0), n);
        let mut rec = LogRecord::new(source, self.file.clone(), id, t, n);
        rec.process = Some(text(l.process));
        self.sessions.insert(key, Open { rec, last_queue_id: None, mails: 0 });
    }

    fn smtpd(&mut self, l: &SyslogLine, raw: &[u8], n: u64, t: Micros, out: &mut dyn FnMut(LogRecord)) {
        let (_qid, body) = strip_queue_id(l.msg);
        let show = (self.opts.show_addresses, self.opts.show_credentials);
        if let Some(rest) = body.strip_prefix(b"connect from ") {
            self.open(Source::PostfixSmtpd, l, n, t, out);
            if let Some(o) = self.sessions.get_mut(&self.key) {
                o.rec.client = host_addr(rest).0;
                o.rec.note(n, text(body));
            }
            return;
        }
        let starts = |p: &str| body.starts_with(p.as_bytes());
        let relevant = starts("disconnect from ")
            || tls_success_line(body)
            || starts("SSL_accept error from ")
            || starts("lost connection after STARTTLS");
        if !self.sessions.contains_key(&self.key) {
            if !relevant {
                return;
            }
            // An excerpt: the session's connect line is not in the log.
            self.open(Source::PostfixSmtpd, l, n, t, out);
        }
        let key = self.key.clone();
        let Some(o) = self.sessions.get_mut(&key) else { return };
        let r = &mut o.rec;
        r.saw(t);
        let b = text(body);
        if let Some(rest) = b.strip_prefix("disconnect from ") {
            let (ep, used) = host_addr(rest.as_bytes());
            if r.client.is_none() {
                r.client = ep;
            }
            let counts = command_counts(rest.get(used..).unwrap_or_default());
            if let Some((_, ok, all)) = counts.iter().find(|(k, _, _)| k == "starttls") {
                r.starttls_count = Some((*ok, *all));
                r.upgrade_verb = Some(UpgradeVerb::Starttls);
                r.upgrade_line.get_or_insert(n);
                if *ok > 0 {
                    // smtpd counts STARTTLS as done only once its handshake completed.
                    r.upgrade_reply = Some(220);
                    r.tls_line.get_or_insert(n);
                }
            } else if r.tls_line.is_some() && !counts.is_empty() {
                r.implicit_tls = true;
            }
            if let Some((_, _, all)) = counts.iter().find(|(k, _, _)| k == "mail") {
                r.mail_transactions = Some(*all);
            } else if !counts.is_empty() {
                r.mail_transactions = Some(0);
            }
            if !counts.is_empty() {
                r.commands = Some(counts);
            }
            r.closed = true;
            r.note(n, b.clone());
            // Kept here: the session is handed on before the caller keeps its lines.
            r.keep(&text(raw));
            self.close(&key, out);
        } else if let Some((_, ep, proto, cipher)) = tls_established(&b) {
            if r.client.is_none() {
                r.client = ep;
            }
            r.tls_line.get_or_insert(n);
            r.tls_version = proto;
            r.cipher = cipher;
            r.note(n, b);
        } else if b.starts_with("SSL_accept error from ") {
            r.failure_line = Some(n);
            r.note(n, b);
        } else if b.starts_with("lost connection after STARTTLS") {
            r.failure_line = Some(n);
            r.upgrade_verb = Some(UpgradeVerb::Starttls);
            r.upgrade_line.get_or_insert(n);
            r.note(n, b);
        } else if b.starts_with("lost connection after ") || b.starts_with("timeout after ") {
            r.note(n, b);
        } else if let Some(rest) = b.strip_prefix("client=") {
            if let Some(m) = rest.split(", ").find_map(|f| f.strip_prefix("sasl_method=")) {
                let m = m.to_ascii_uppercase();
                if !r.auth_mechanisms.contains(&m) {
                    r.auth_mechanisms.push(m.clone());
                }
                if r.tls_line.is_none() && r.auth_in_clear.is_none() {
                    r.auth_in_clear = Some((m, n));
                }
                r.note(n, mask(&b, show.0, show.1));
            }
        } else if contains(body, "SASL ") && contains(body, " authentication failed") {
            if let Some(m) = b.split("SASL ").nth(1).and_then(|x| x.split_whitespace().next()) {
                let m = m.to_ascii_uppercase();
                if !r.auth_mechanisms.contains(&m) {
                    r.auth_mechanisms.push(m.clone());
                }
                if r.tls_line.is_none() && r.auth_in_clear.is_none() {
                    r.auth_in_clear = Some((m, n));
                }
            }
            r.note(n, mask(&b, show.0, show.1));
        } else if let Some(h) = b.split(" helo=<").nth(1) {
            if r.helo.is_none() {
                r.helo = Some(h.split('>').next().unwrap_or_default().to_string());
            }
            r.note(n, mask(&b, show.0, show.1));
        }
    }

    fn smtp(&mut self, l: &SyslogLine, n: u64, t: Micros, out: &mut dyn FnMut(LogRecord)) {
        let (qid, body) = strip_queue_id(l.msg);
        let b = text(body);
        let show = (self.opts.show_addresses, self.opts.show_credentials);
        if let Some((_, ep, proto, cipher)) = tls_established(&b) {
            self.open(Source::PostfixSmtp, l, n, t, out);
            let Some(o) = self.sessions.get_mut(&self.key) else { return };
            let r = &mut o.rec;
            r.server = ep;
            r.starttls_offered = Some(true);
            r.tls_line = Some(n);
            r.tls_version = proto;
            r.cipher = cipher;
            r.note(n, b);
            return;
        }
        if b.starts_with("Host offered STARTTLS") {
            self.open(Source::PostfixSmtp, l, n, t, out);
            let Some(o) = self.sessions.get_mut(&self.key) else { return };
            o.rec.starttls_offered = Some(true);
            o.rec.note(n, b);
            return;
        }
        let ssl_err = b.strip_prefix("SSL_connect error to ");
        let delivery = b.starts_with("to=").then(|| b.split(", relay=").nth(1)).flatten();
        let peer = match (ssl_err, delivery) {
            (Some(rest), _) | (None, Some(rest)) => host_addr(rest.as_bytes()).0,
            _ => None,
        };
        if (ssl_err.is_some() || delivery.is_some()) && peer.is_none() {
            // relay=local, relay=dovecot, relay=none, a socket path: not an SMTP session.
            return;
        }
        // A connection delivers a message at most once; after a failed handshake only the
        // delivery line that reports it (`Cannot start TLS`) still belongs to it, and an
        // `SSL_connect error` always starts a connection's TLS.
        let cannot = b.contains("Cannot start TLS");
        let same = self.sessions.get(&self.key).is_some_and(|o| {
            let fresh = if ssl_err.is_some() {
                o.rec.tls_line.is_none() && o.rec.failure_line.is_none() && o.last_queue_id.is_none()
            } else {
                (o.rec.failure_line.is_none() || cannot) && (qid.is_none() || o.last_queue_id.as_deref() != qid)
            };
            fresh
                && match (o.rec.server, peer) {
                    (Some(a), Some(b)) => a.ip == b.ip,
                    (None, _) => true,
                    _ => false,
                }
        });
        if peer.is_some() && !same {
            self.open(Source::PostfixSmtp, l, n, t, out);
        }
        let Some(o) = self.sessions.get_mut(&self.key) else { return };
        let r = &mut o.rec;
        r.saw(t);
        if r.server.is_none() {
            r.server = peer;
        }
        if ssl_err.is_some() {
            r.failure_line = Some(n);
            r.upgrade_verb = Some(UpgradeVerb::Starttls);
            r.upgrade_line.get_or_insert(n);
            r.note(n, b);
        } else if delivery.is_some() {
            if b.contains("Cannot start TLS") {
                // `status=deferred (Cannot start TLS: handshake failure)`: no mail crossed.
                r.failure_line = Some(n);
                r.upgrade_verb = Some(UpgradeVerb::Starttls);
                r.upgrade_line.get_or_insert(n);
            } else if qid.is_some() && o.last_queue_id.as_deref() != qid {
                o.mails += 1;
                o.last_queue_id = qid.map(<[u8]>::to_vec);
            }
            r.closed = true;
            r.note(n, mask(&b, show.0, show.1));
        } else if b.starts_with("lost connection with ") || b.contains("TLS library problem") || cannot {
            r.note(n, b);
        }
    }
}

impl LineParser for Parser {
    fn line(&mut self, n: u64, line: &[u8], out: &mut dyn FnMut(LogRecord)) -> bool {
        let Some(l) = split_syslog(line) else {
            self.problems.add(if line.iter().all(u8::is_ascii_whitespace) { "blank" } else { "unrecognised" });
            return false;
        };
        let Some(d) = daemon(l.process) else {
            self.problems.add("not-postfix");
            return false;
        };
        if d != "smtpd" && d != "smtp" {
            return true;
        }
        let Some(t) = self.time(l.stamp) else {
            self.problems.add("bad-timestamp");
            return false;
        };
        self.key.clear();
        self.key.push_str(&String::from_utf8_lossy(l.host));
        self.key.push('/');
        self.key.push_str(&String::from_utf8_lossy(l.process));
        self.key.push('[');
        self.key.push_str(itoa::Buffer::new().format(l.pid.unwrap_or(0)));
        self.key.push(']');
        if d == "smtpd" {
            self.smtpd(&l, line, n, t, out);
        } else {
            self.smtp(&l, n, t, out);
        }
        if let Some(o) = self.sessions.get_mut(&self.key) {
            o.rec.saw(t);
            o.rec.keep(&text(line));
        }
        true
    }

    fn finish(&mut self, out: &mut dyn FnMut(LogRecord)) {
        let mut open: Vec<Open> = self.sessions.drain().map(|(_, o)| o).collect();
        open.sort_by_key(|o| o.rec.first_line);
        for o in open {
            self.emit(o, out);
        }
    }

    fn problems(&mut self) -> &mut Problems {
        &mut self.problems
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::Verdict;

    fn opts() -> LogOptions {
        LogOptions { tz: jiff::tz::TimeZone::UTC, reference: Some(1_796_000_000_000_000), ..LogOptions::default() }
    }

    fn read_with(data: &str, o: LogOptions) -> (Vec<LogRecord>, Problems) {
        let mut p = Parser::new(Arc::from("mail.log"), o);
        let mut recs = Vec::new();
        for (i, l) in data.lines().enumerate() {
            p.line(i as u64 + 1, l.as_bytes(), &mut |r| recs.push(r));
        }
        p.finish(&mut |r| recs.push(r));
        (recs, p.problems.clone())
    }

    fn read(data: &str) -> Vec<LogRecord> {
        read_with(data, opts()).0
    }

    /// Every message of the quoted corpus, by its source file name.
    fn corpus() -> Vec<(String, String)> {
        let mut out = Vec::new();
        let mut name = String::new();
        for l in include_str!("../../tests/data/logs/postfix/grok-patterns-test-messages.txt").lines() {
            if let Some(f) = l.strip_prefix("# test/") {
                name = f.trim_end_matches(".yaml").to_string();
            } else if !l.starts_with('#') && !l.is_empty() {
                out.push((name.clone(), l.to_string()));
            }
        }
        out
    }

    fn msg(name: &str) -> String {
        corpus().into_iter().find(|(n, _)| n == name).map(|(_, m)| m).unwrap_or_else(|| panic!("{name}"))
    }

    fn smtpd_line(m: &str) -> String {
        format!("Dec  7 01:40:00 mx postfix/smtpd[100]: {m}")
    }

    fn smtp_line(m: &str) -> String {
        format!("Dec  7 01:40:00 mx postfix/smtp[200]: {m}")
    }

    #[test]
    fn every_corpus_message_parses_as_a_postfix_syslog_line_without_a_problem() {
        for (name, m) in corpus() {
            let daemon = if name.starts_with("smtpd") || name.starts_with("command") { "smtpd" } else { "smtp" };
            let line = format!("Dec  7 01:40:00 mx postfix/{daemon}[1]: {m}");
            assert!(looks_like_line(line.as_bytes()), "{name}");
            let (_, problems) = read_with(&line, opts());
            assert!(problems.counts.is_empty(), "{name}: {problems:?}");
        }
    }

    #[test]
    fn a_session_keeps_its_disconnect_line_with_the_others() {
        let log = [smtpd_line(&msg("smtpd_0001")), smtpd_line(&msg("smtpd_0002"))].join("\n");
        let [r] = read(&log).try_into().unwrap();
        assert_eq!(r.lines, log.lines().collect::<Vec<_>>());
    }

    #[test]
    fn smtpd_0001_connect_and_0002_disconnect_without_summary_make_one_plaintext_session() {
        let log = [smtpd_line(&msg("smtpd_0001")), smtpd_line(&msg("smtpd_0002"))].join("\n");
        let [r] = read(&log).try_into().unwrap();
        assert_eq!(r.source, Source::PostfixSmtpd);
        assert_eq!(r.client.unwrap().to_string(), "61.238.241.86");
        assert_eq!(r.server, None);
        assert_eq!(r.log_session, "mx/postfix/smtpd[100]@1");
        assert_eq!(r.starttls_offered, None, "smtpd does not log its offer");
        assert_eq!(r.verdict, Verdict::Plaintext);
        assert!(r.evidence[0].text.contains("does not log its offer"));
        assert_eq!(r.mail_transactions, None);
    }

    #[test]
    fn smtpd_0010_tls12_without_tail_and_0028_summary_with_starttls_1() {
        let log = [
            smtpd_line("connect from unknown[72.10.165.66]"),
            smtpd_line(&msg("smtpd_0010").replace("julie.example.com[10.163.89.202]", "unknown[72.10.165.66]")),
            smtpd_line(&msg("smtpd_0028")),
        ]
        .join("\n");
        let [r] = read(&log).try_into().unwrap();
        assert_eq!(r.verdict, Verdict::Starttls);
        assert_eq!(r.tls_version.as_deref(), Some("TLS1.2"));
        assert_eq!(r.cipher.as_deref(), Some("AECDH-AES256-SHA"));
        assert_eq!(r.upgrade_verb, Some(UpgradeVerb::Starttls));
        assert_eq!(r.mail_transactions, Some(1));
        assert_eq!(r.commands.as_ref().unwrap().iter().find(|c| c.0 == "rcpt"), Some(&("rcpt".to_string(), 0, 1)));
    }

    #[test]
    fn smtpd_0037_tls13_with_the_3_4_tail_in_an_excerpt_is_starttls() {
        let [r] = read(&smtpd_line(&msg("smtpd_0037"))).try_into().unwrap();
        assert_eq!(r.verdict, Verdict::Starttls);
        assert_eq!(r.tls_version.as_deref(), Some("TLS1.3"));
        assert_eq!(r.cipher.as_deref(), Some("TLS_AES_256_GCM_SHA384"));
        assert_eq!(r.client.unwrap().to_string(), "10.163.89.202");
    }

    #[test]
    fn smtpd_0019_0023_0024_0025_ssl_accept_errors_are_starttls_failed() {
        for name in ["smtpd_0019", "smtpd_0023", "smtpd_0024", "smtpd_0025"] {
            let log = [
                smtpd_line("connect from unknown[72.13.58.7]"),
                smtpd_line(&msg(name)),
                smtpd_line("disconnect from unknown[72.13.58.7] ehlo=1 starttls=0/1 commands=1/2"),
            ]
            .join("\n");
            let [r] = read(&log).try_into().unwrap();
            assert_eq!(r.verdict, Verdict::StarttlsFailed, "{name}");
            assert_eq!(r.starttls_count, Some((0, 1)));
        }
    }

    #[test]
    fn smtpd_0005_lost_connection_after_starttls_with_and_without_the_3_10_prefix() {
        for m in
            [msg("smtpd_0005"), format!("NOQUEUE: {}", msg("smtpd_0005")), format!("4Xyz1A2b3C: {}", msg("smtpd_0005"))]
        {
            let [r] = read(&smtpd_line(&m)).try_into().unwrap();
            assert_eq!(r.verdict, Verdict::StarttlsFailed, "{m}");
            assert_eq!(r.upgrade_verb, Some(UpgradeVerb::Starttls));
        }
    }

    #[test]
    fn starttls_0_of_1_without_a_failure_line_is_refused() {
        let log = [
            smtpd_line("connect from a.example[192.0.2.7]"),
            smtpd_line("disconnect from a.example[192.0.2.7] ehlo=1 starttls=0/1 quit=1 commands=2/3"),
        ]
        .join("\n");
        let [r] = read(&log).try_into().unwrap();
        assert_eq!(r.verdict, Verdict::StarttlsRefused);
    }

    #[test]
    fn smtpd_0032_0034_0035_summaries_and_the_command_counter() {
        assert_eq!(command_counts(&msg("command_counter_data_0001")).last(), Some(&("commands".to_string(), 5, 7)));
        let [r] = read(&smtpd_line(&msg("smtpd_0032"))).try_into().unwrap();
        assert_eq!(r.client, None, "unknown[unknown]");
        assert_eq!(r.verdict, Verdict::Plaintext);
        for name in ["smtpd_0034", "smtpd_0035"] {
            let [r] = read(&smtpd_line(&msg(name))).try_into().unwrap();
            assert_eq!(r.starttls_count, Some((1, 1)), "{name}");
            assert_eq!(r.mail_transactions, Some(1));
            assert_eq!(r.verdict, Verdict::Starttls, "{name}: starttls=1 counts a completed handshake");
            assert_eq!(r.tls_version, None, "only a TLS line names the version");
        }
    }

    #[test]
    fn smtpd_0007_0011_0012_0013_0016_0033_0036_lost_and_timeout_lines_are_evidence_only() {
        for name in ["smtpd_0007", "smtpd_0011", "smtpd_0012", "smtpd_0013", "smtpd_0016", "smtpd_0033", "smtpd_0036"] {
            let log = [smtpd_line("connect from unknown[72.13.58.7]"), smtpd_line(&msg(name))].join("\n");
            let [r] = read(&log).try_into().unwrap();
            assert_eq!(r.verdict, Verdict::Incomplete, "{name}: no disconnect line");
            assert_eq!(r.lines.len(), 2, "{name}");
        }
    }

    #[test]
    fn smtp_0003_0004_0015_0016_0035_0036_client_tls_lines_at_every_trust_level() {
        for (name, v) in [
            ("smtp_0003", "TLS1.2"),
            ("smtp_0004", "TLS1.2"),
            ("smtp_0015", "TLS1.2"),
            ("smtp_0016", "TLS1.0"),
            ("smtp_0035", "TLS1.3"),
            ("smtp_0036", "TLS1.3"),
        ] {
            let [r] = read(&smtp_line(&msg(name))).try_into().unwrap();
            assert_eq!(r.source, Source::PostfixSmtp);
            assert_eq!(r.verdict, Verdict::Starttls, "{name}");
            assert_eq!(r.tls_version.as_deref(), Some(v), "{name}");
            assert_eq!(r.server.unwrap().port, Some(if name == "smtp_0004" { 2525 } else { 25 }), "{name}");
            if name == "smtp_0016" {
                assert_eq!(r.findings[0].name, "weak-tls-version");
            }
        }
    }

    #[test]
    fn smtp_0029_0030_ssl_connect_errors_are_starttls_failed() {
        for name in ["smtp_0029", "smtp_0030"] {
            let [r] = read(&smtp_line(&msg(name))).try_into().unwrap();
            assert_eq!(r.verdict, Verdict::StarttlsFailed, "{name}");
            assert_eq!(r.server.unwrap().to_string(), "112.63.65.2:25");
        }
    }

    #[test]
    fn host_offered_starttls_then_a_delivery_is_offered_unused() {
        let log = [smtp_line("Host offered STARTTLS: [mail1.example.net]"), smtp_line(&msg("smtp_0002"))].join("\n");
        let [r] = read(&log).try_into().unwrap();
        assert_eq!(r.verdict, Verdict::StarttlsOfferedUnused);
        assert_eq!(r.server.unwrap().to_string(), "10.74.103.11:25");
        assert_eq!(r.mail_transactions, Some(1));
        assert!(r.evidence.iter().any(|e| e.text.contains("to=<example.com>")), "{:?}", r.evidence);
    }

    #[test]
    fn a_failed_handshake_its_deferral_a_retry_and_the_fallback_in_clear_are_three_sessions() {
        // Debian 12's Postfix 3.7 in the lab (tests/lab/log_lab.py, alert-retry).
        let log = "\
Dec 07 02:58:28 relay postfix/smtp[11630]: SSL_connect error to 10.232.0.6[10.232.0.6]:25: -1
Dec 07 02:58:28 relay postfix/smtp[11630]: warning: TLS library problem: error:0A00042E:SSL routines::tlsv1 alert protocol version:../ssl/record/rec_layer_s3.c:1602:SSL alert number 70:
Dec 07 02:58:28 relay postfix/smtp[11630]: E2CB59926AB: to=<bob@lab.example>, relay=10.232.0.6[10.232.0.6]:25, delay=0.01, delays=0.01/0/0/0, dsn=4.7.5, status=deferred (Cannot start TLS: handshake failure)
Dec 07 02:58:29 relay postfix/smtp[11630]: SSL_connect error to 10.232.0.6[10.232.0.6]:25: -1
Dec 07 02:58:29 relay postfix/smtp[11630]: E2CB59926AB: Cannot start TLS: handshake failure
Dec 07 02:58:29 relay postfix/smtp[11630]: Host offered STARTTLS: [10.232.0.6]
Dec 07 02:58:29 relay postfix/smtp[11630]: E2CB59926AB: to=<bob@lab.example>, relay=10.232.0.6[10.232.0.6]:25, delay=1, delays=1/0/0/0.01, dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as E693F9926D3)";
        let v: Vec<Verdict> = read(log).iter().map(|r| r.verdict).collect();
        assert_eq!(v, [Verdict::StarttlsFailed, Verdict::StarttlsFailed, Verdict::StarttlsOfferedUnused]);
    }

    #[test]
    fn smtp_0001_0002_0018_0026_lmtp_0001_deliveries_alone_are_plaintext_sessions() {
        for name in ["smtp_0001", "smtp_0002", "smtp_0018", "smtp_0026", "lmtp_0001"] {
            let [r] = read(&smtp_line(&msg(name))).try_into().unwrap();
            assert_eq!(r.verdict, Verdict::Plaintext, "{name}");
            assert_eq!(r.starttls_offered, None);
        }
    }

    #[test]
    fn smtp_0006_0033_lost_connection_and_tls_features_3_11_fields() {
        for name in ["smtp_0006", "smtp_0033"] {
            assert!(read(&smtp_line(&msg(name))).is_empty(), "{name}: no session without a peer line");
        }
        for name in [
            "tls_features_0001",
            "tls_features_0002",
            "tls_features_0003",
            "tls_features_0004",
            "tls_features_0005",
            "tls_features_0006",
        ] {
            let [r] = read(&smtp_line(&msg(name))).try_into().unwrap();
            assert!(r.evidence.iter().any(|e| e.text.contains("tls=")), "{name}");
            assert_eq!(r.server.unwrap().to_string(), "1.2.3.4:25");
        }
    }

    #[test]
    fn smtp_0017_and_local_pipe_virtual_discard_error_deliveries_are_not_smtp_sessions() {
        for name in [
            "smtp_0017",
            "discard_0001",
            "error_0001",
            "error_0002",
            "local_0001",
            "local_0002",
            "pipe_0001",
            "pipe_0002",
            "pipe_0003",
            "pipe_0004",
            "virtual_0001",
        ] {
            assert!(read(&smtp_line(&msg(name))).is_empty(), "{name}");
        }
    }

    #[test]
    fn postscreen_tlsproxy_and_bare_feature_strings_make_no_session() {
        for name in [
            "postscreen_0002",
            "postscreen_0023",
            "postscreen_0024",
            "tlsproxy_0002",
            "tls_features_0010",
            "tls_features_0011",
            "tls_features_0012",
        ] {
            let line = format!("Dec  7 01:40:00 mx postfix/postscreen[9]: {}", msg(name));
            let (recs, problems) = read_with(&line, opts());
            assert!(recs.is_empty() && problems.counts.is_empty(), "{name}");
        }
    }

    #[test]
    fn custom_syslog_names_rfc3339_and_short_iso_and_log_server_mapping() {
        let log = "\
2026-12-07T01:40:00.123456+01:00 hub10 postfix/hub10-2525/smtpd[7]: connect from a.example[192.0.2.1]:40000
2026-12-07T01:40:01+0100 hub10 postfix/hub10-2525/smtpd[7]: disconnect from a.example[192.0.2.1]:40000 ehlo=1 mail=1 rcpt=1 data=1 quit=1 commands=5";
        let mut o = opts();
        o.servers.push((
            "postfix/hub10-2525/smtpd".into(),
            Endpoint { ip: "192.0.2.10".parse().unwrap(), port: Some(2525) },
        ));
        let (recs, _) = read_with(log, o);
        let [r] = recs.try_into().unwrap();
        assert_eq!(r.client.unwrap().to_string(), "192.0.2.1:40000");
        assert_eq!(r.server.unwrap().to_string(), "192.0.2.10:2525");
        assert_eq!(r.first_seen, parse_iso(b"2026-12-07T00:40:00.123456Z").unwrap().0);
        assert_eq!(r.last_seen, parse_iso(b"2026-12-07T00:40:01Z").unwrap().0);
        assert_eq!(r.log_session, "hub10/postfix/hub10-2525/smtpd[7]@1");
    }

    #[test]
    fn wrapper_mode_tls_without_starttls_in_the_summary_is_implicit_tls() {
        let log = [
            "Dec  7 01:40:00 mx postfix/smtps/smtpd[5]: connect from a[192.0.2.1]",
            "Dec  7 01:40:00 mx postfix/smtps/smtpd[5]: Anonymous TLS connection established from a[192.0.2.1]: TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits)",
            "Dec  7 01:40:01 mx postfix/smtps/smtpd[5]: disconnect from a[192.0.2.1] ehlo=1 auth=1 mail=1 rcpt=1 data=1 quit=1 commands=6",
        ]
        .join("\n");
        let [r] = read(&log).try_into().unwrap();
        assert_eq!(r.verdict, Verdict::ImplicitTls);
        assert_eq!(r.upgrade_verb, None);
    }

    #[test]
    fn a_new_connect_on_the_same_pid_ends_the_previous_session_and_sasl_in_clear_is_found() {
        let log = [
            smtpd_line("connect from a[192.0.2.1]"),
            smtpd_line("ABCDEF1234: client=a[192.0.2.1], sasl_method=PLAIN, sasl_username=joe@example.org"),
            smtpd_line("connect from b[192.0.2.2]"),
        ]
        .join("\n");
        let recs = read(&log);
        assert_eq!(recs.len(), 2);
        assert_eq!(recs[0].auth_mechanisms, ["PLAIN"]);
        assert_eq!(recs[0].findings[0].name, "cleartext-auth");
        assert!(recs[0].evidence.iter().all(|e| !e.text.contains("joe")));
    }
}
