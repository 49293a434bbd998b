//! Check mode: prove that TLS is really off (or on) between given hosts. Sessions are judged
//! against the first matching rule of a policy; the result is a per-rule account with every
//! violation on one line, and an exit code a script can trust.

pub mod judge;
pub mod policy;
pub mod subject;

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde_json::json;

use crate::capture::Micros;
use crate::escape::{defuse, terminal};
use crate::logs::LogRecord;
use crate::report::rfc3339;
use crate::session::Session;
pub use judge::{JudgeOptions, Outcome};
pub use policy::{parse_verb, parse_version, UPGRADE_VERBS};
pub use policy::{Expect, MatchedBy, Policy, PolicyError, Rule, RuleFor};
pub use subject::{ProvenBy, Subject};

/// Exit status: every rule passed.
pub const EXIT_PASS: u8 = 0;
/// Exit status: at least one violation.
pub const EXIT_VIOLATION: u8 = 1;
/// Exit status: no violation, but something unproven, or a named rule that matched no session.
pub const EXIT_UNPROVEN: u8 = 3;

/// What a named rule that matched no session means. A typo in a CIDR or a BPF that excluded
/// everything looks exactly like a conforming network with nothing to report, so by default it
/// proves nothing (exit 3); `--allow-no-traffic` accepts it. The `[default]` rule is exempt
/// either way: it only catches what the named rules leave.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum NoTraffic {
    /// Nothing matched, nothing proven (the default; `--require-traffic` says it too).
    #[default]
    Unproven,
    /// `--allow-no-traffic`: a rule that saw nothing does not hold the result back.
    Allowed,
}

/// Most listed sessions kept per rule (counts stay exact).
const MAX_ITEMS: usize = 10_000;

/// One listed session.
#[derive(Debug, Clone)]
pub struct Item {
    /// Outcome.
    pub outcome: Outcome,
    /// Client `ip:port` (None: a log that does not show it).
    pub client: Option<String>,
    /// Server `ip:port` (None: a log that does not show it).
    pub server: Option<String>,
    /// Verdict name.
    pub verdict: &'static str,
    /// Input file, if any.
    pub file: Option<String>,
    /// First packet's time.
    pub first_seen: Micros,
    /// The verdict's reason and frame.
    pub evidence: String,
    /// The hosts were recognised by a name a peer can claim.
    pub spoofable: bool,
    /// The server port's role (Exchange's when the server shows Exchange), if it has one.
    pub port_role: Option<&'static str>,
    /// The same role in words.
    pub port_name: Option<&'static str>,
    /// Which side the outcome rests on (None: unproven or ignored, proven by neither).
    pub proven_by: Option<ProvenBy>,
    /// The log session judged, when a log was (alone, or beside the wire).
    pub log: Option<LogRef>,
}

/// The log session behind a judgement.
#[derive(Debug, Clone)]
pub struct LogRef {
    /// `exchange-receive`, `postfix-smtpd`, ...
    pub source: &'static str,
    /// The log file.
    pub log_file: String,
    /// The log's session id.
    pub log_session: String,
    /// The log's verdict.
    pub verdict: &'static str,
    /// The log's evidence for its outcome (quoted line and its number).
    pub evidence: String,
    /// With the wire: what the wire alone left (its unproven reason), when the log decided.
    pub wire_unproven: Option<String>,
}

impl LogRef {
    fn of(r: &LogRecord, wire_unproven: Option<String>) -> Self {
        Self {
            source: r.source.name(),
            log_file: r.log_file.to_string(),
            log_session: r.log_session.clone(),
            verdict: r.verdict.name(),
            evidence: r.evidence_text(),
            wire_unproven,
        }
    }
}

/// Per-rule account.
#[derive(Debug, Clone, Default)]
pub struct RuleResult {
    /// Rule name.
    pub name: String,
    /// What it expects, in words.
    pub expect: String,
    /// Sessions matched.
    pub matched: u64,
    /// Passed (warnings included).
    pub passed: u64,
    /// Passed with a warning.
    pub warned: u64,
    /// Violations.
    pub violated: u64,
    /// Unproven.
    pub unproven: u64,
    /// Not SMTP, ignored.
    pub ignored: u64,
    /// Matched through an EHLO/banner/certificate name glob (a peer can claim the name).
    pub by_name: u64,
    /// Judged sessions whose outcome rests on a log (`proven_by: "log"`).
    pub by_log: u64,
    /// Log sessions this rule may cover but that lack what would tell, by reason ("server not
    /// logged"): not judged, and counted as unmatched.
    pub not_logged: BTreeMap<&'static str, u64>,
    /// The policy's `[default]` rule (it is not asked to see traffic).
    pub default: bool,
    /// Every session that is not a plain pass by address (bounded): passes matched by name are
    /// listed too, since their proof rests on a name a peer can claim.
    pub items: Vec<Item>,
}

impl RuleResult {
    /// No SMTP session matched the rule.
    pub fn no_traffic(&self) -> bool {
        self.matched == self.ignored
    }

    /// A named rule that saw nothing proves nothing (unless allowed); the default rule does not
    /// count, since it only catches what the named rules leave (a conforming capture may leave nothing).
    pub fn missing_traffic(&self, no_traffic: NoTraffic) -> bool {
        no_traffic == NoTraffic::Unproven && !self.default && self.no_traffic()
    }
}

/// Restricts which sessions count (a change-window capture spans before and after a change; a
/// port narrows a policy to, say, the hubs' 2525). Sessions outside are counted, never judged.
#[derive(Debug, Clone, Default)]
pub struct Window {
    /// Only sessions starting at or after this time.
    pub since: Option<Micros>,
    /// Only sessions starting before this time.
    pub until: Option<Micros>,
    /// Only sessions to these server ports (empty: all).
    pub ports: Vec<u16>,
    /// Only sessions this display filter (`-Y`) keeps.
    pub filter: crate::filter::Filter,
}

/// The check in progress.
pub struct Checker {
    policy: Policy,
    opts: JudgeOptions,
    window: Window,
    /// Per-rule results, in policy order (then those of replaced policies' rules).
    pub results: Vec<RuleResult>,
    /// The current policy's rule `i` counts in `results[rule_results[i]]`.
    rule_results: Vec<usize>,
    /// Sessions no rule matched (those not logged well enough to tell included).
    pub unmatched: u64,
    /// Of the unmatched, log sessions a rule may cover but that lack what would tell, by reason.
    pub not_logged: BTreeMap<&'static str, u64>,
    /// Log sessions read, when the check runs on logs (alone or beside the wire).
    pub log_sessions: Option<u64>,
    /// Beside the wire: log sessions no wire session matched within the capture's span (not
    /// judged: the capture sets what is checked).
    pub logs_unmatched_in_span: Option<u64>,
    /// Sessions left out because they started outside `--since/--until`.
    pub outside_window: u64,
    /// Sessions left out because their server port is not one of `--port`.
    pub outside_ports: u64,
    /// Sessions left out because the display filter (`-Y`) dropped them.
    pub filtered_out: u64,
}

/// The check's overall result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckResult {
    /// Every rule passed.
    Pass,
    /// At least one violation.
    Fail,
    /// No violation, but a named rule matched no session.
    NothingProven,
    /// No violation, but a session could not be proven either way.
    Unproven,
}

impl CheckResult {
    /// Name in NDJSON.
    pub fn name(self) -> &'static str {
        match self {
            CheckResult::Pass => "pass",
            CheckResult::Fail => "fail",
            CheckResult::NothingProven => "nothing-proven",
            CheckResult::Unproven => "unproven",
        }
    }
}

fn expect_words(e: &Expect) -> String {
    match e {
        Expect::Any => "any".into(),
        Expect::Plaintext { forbid_offer } if forbid_offer.is_empty() => "plaintext".into(),
        Expect::Plaintext { forbid_offer } => format!("plaintext, no offer of {}", forbid_offer.join("/")),
        Expect::Tls { min_version, cert_valid, cert_name } => {
            let mut s = String::from("tls");
            if let Some(v) = min_version {
                let _ = write!(s, " ≥ {}", crate::tls::version_label(*v));
            }
            if *cert_valid {
                s.push_str(", certificate valid");
            }
            if *cert_name {
                s.push_str(", name matches");
            }
            s
        }
    }
}

pub use crate::ports::{port_name, port_role, shows_exchange};

impl Checker {
    /// A checker for `policy`.
    pub fn new(policy: Policy, opts: JudgeOptions, window: Window) -> Self {
        let results = policy
            .rules
            .iter()
            .map(|r| RuleResult {
                name: r.name.clone(),
                expect: expect_words(&r.expect),
                default: r.default,
                ..Default::default()
            })
            .collect();
        let rule_results = (0..policy.rules.len()).collect();
        Self {
            policy,
            opts,
            window,
            results,
            rule_results,
            unmatched: 0,
            not_logged: BTreeMap::new(),
            log_sessions: None,
            logs_unmatched_in_span: None,
            outside_window: 0,
            outside_ports: 0,
            filtered_out: 0,
        }
    }

    /// Judges one finished session.
    pub fn add(&mut self, s: &Session) {
        let _ = self.add_judged(s);
    }

    /// Judges one finished session and says how (None: left out or matched no rule), for a
    /// check that reports as it goes.
    pub fn add_judged(&mut self, s: &Session) -> Option<Judged> {
        self.add_with_logs(s, &[])
    }

    /// Judges a wire session beside the log sessions matched with it: the wire first; a session
    /// the wire leaves unproven is decided by a log that shows what is needed (`proven_by:
    /// "log"`), and a log that shows a violation makes the session one whatever the wire shows.
    pub fn add_with_logs(&mut self, s: &Session, logs: &[&LogRecord]) -> Option<Judged> {
        let (i, by) = self.select(s)?;
        let expect = &self.policy.rules.get(i)?.expect;
        let wire = judge::judge(s, expect, self.opts);
        let judged: Vec<(Outcome, &LogRecord)> =
            logs.iter().map(|r| (judge::judge(*r, expect, self.opts), *r)).collect();
        let (outcome, proven_by, log) = combine(wire, &judged);
        // A pass the wire alone could not prove is listed, so that it can say what proved it.
        let list = proven_by == Some(ProvenBy::Log);
        self.record(i, by, s, outcome, proven_by, log, list)
    }

    /// Judges a log session alone (`check --logs` without a capture).
    pub fn add_log(&mut self, r: &LogRecord) -> Option<Judged> {
        let (i, by) = self.select(r)?;
        let outcome = judge::judge(r, &self.policy.rules.get(i)?.expect, self.opts);
        let proven_by = outcome.decisive().then_some(ProvenBy::Log);
        let log = Some(LogRef::of(r, None));
        self.record(i, by, r, outcome, proven_by, log, false)
    }

    /// The window, the display filter and the policy: the rule that judges `s`, or None (left
    /// out, no rule, or not logged well enough to tell), counted.
    fn select<S: Subject + ?Sized>(&mut self, s: &S) -> Option<(usize, MatchedBy)> {
        let t = s.first_seen();
        if self.window.since.is_some_and(|since| t < since) || self.window.until.is_some_and(|until| t >= until) {
            self.outside_window += 1;
            return None;
        }
        if !self.window.ports.is_empty() {
            match s.server_port() {
                Some(p) if self.window.ports.contains(&p) => {}
                Some(_) => {
                    self.outside_ports += 1;
                    return None;
                }
                None => {
                    self.unmatched += 1;
                    let why = if s.server_ip().is_none() {
                        policy::SERVER_NOT_LOGGED
                    } else {
                        policy::SERVER_PORT_NOT_LOGGED
                    };
                    *self.not_logged.entry(why).or_default() += 1;
                    return None;
                }
            }
        }
        if !s.kept_by(&self.window.filter) {
            self.filtered_out += 1;
            return None;
        }
        let (i, by) = match self.policy.rule_for_logged(s) {
            RuleFor::Matched(i, by) => (i, by),
            RuleFor::NotLogged(i, why) => {
                self.unmatched += 1;
                *self.not_logged.entry(why).or_default() += 1;
                let ri = self.rule_results.get(i).copied().unwrap_or(i);
                if let Some(res) = self.results.get_mut(ri) {
                    *res.not_logged.entry(why).or_default() += 1;
                }
                return None;
            }
            RuleFor::None => {
                self.unmatched += 1;
                return None;
            }
        };
        Some((i, by))
    }

    /// Counts a judgement under rule `i` and lists it when it is worth a line.
    #[allow(clippy::too_many_arguments)]
    fn record<S: Subject + ?Sized>(
        &mut self,
        i: usize,
        by: MatchedBy,
        s: &S,
        outcome: Outcome,
        proven_by: Option<ProvenBy>,
        log: Option<LogRef>,
        list: bool,
    ) -> Option<Judged> {
        let i = self.rule_results.get(i).copied().unwrap_or(i);
        let res = self.results.get_mut(i)?;
        res.matched += 1;
        let spoofable = by == MatchedBy::Name;
        res.by_name += u64::from(spoofable);
        res.by_log += u64::from(proven_by == Some(ProvenBy::Log) && log.is_some());
        match &outcome {
            Outcome::Pass => res.passed += 1,
            Outcome::Warn(_) => {
                res.passed += 1;
                res.warned += 1;
            }
            Outcome::Violation(_) => res.violated += 1,
            Outcome::Unproven(_) => res.unproven += 1,
            Outcome::Ignored => res.ignored += 1,
        }
        let item = Item {
            outcome,
            client: s.client_text(),
            server: s.server_text(),
            verdict: s.verdict().map_or("incomplete", |v| v.name()),
            file: s.file_name(),
            first_seen: s.first_seen(),
            evidence: s.evidence_text(),
            spoofable,
            port_role: s.port_role(),
            port_name: s.port_name(),
            proven_by,
            log,
        };
        if (item.outcome != Outcome::Pass || spoofable || list) && res.items.len() < MAX_ITEMS {
            res.items.push(item.clone());
        }
        Some(Judged { rule: res.name.clone(), item })
    }

    /// A new policy (SIGHUP): its rules judge from now on. A rule of the old policy with the
    /// same name and expectation goes on counting; the other old rules that judged anything
    /// stay in the report, after them.
    pub fn replace_policy(&mut self, policy: Policy) {
        let mut old: Vec<Option<RuleResult>> = std::mem::take(&mut self.results).into_iter().map(Some).collect();
        let mut results = Vec::new();
        for r in &policy.rules {
            let expect = expect_words(&r.expect);
            let same = old.iter_mut().find(|o| o.as_ref().is_some_and(|o| o.name == r.name && o.expect == expect));
            results.push(same.and_then(Option::take).unwrap_or_else(|| RuleResult {
                name: r.name.clone(),
                expect,
                default: r.default,
                ..Default::default()
            }));
        }
        self.rule_results = (0..results.len()).collect();
        results.extend(old.into_iter().flatten().filter(|o| o.matched > 0));
        self.results = results;
        self.policy = policy;
    }

    /// The exit status the results call for.
    pub fn exit_code(&self, no_traffic: NoTraffic) -> u8 {
        match self.result(no_traffic) {
            CheckResult::Fail => EXIT_VIOLATION,
            CheckResult::NothingProven | CheckResult::Unproven => EXIT_UNPROVEN,
            CheckResult::Pass => EXIT_PASS,
        }
    }

    /// The overall result: a violation anywhere fails; then a named rule that matched nothing
    /// (unless allowed) leaves the whole check unproven, named as such.
    pub fn result(&self, no_traffic: NoTraffic) -> CheckResult {
        if self.results.iter().any(|r| r.violated > 0) {
            CheckResult::Fail
        } else if self.results.iter().any(|r| r.missing_traffic(no_traffic)) {
            CheckResult::NothingProven
        } else if self.results.iter().any(|r| r.unproven > 0) {
            CheckResult::Unproven
        } else {
            CheckResult::Pass
        }
    }

    /// Human report.
    pub fn text(&self, no_traffic: NoTraffic) -> String {
        let mut o = String::new();
        for r in &self.results {
            let _ = writeln!(
                o,
                "rule \"{}\" (expect {}): {} matched{}, {} passed, {} violated, {} unproven{}{}",
                terminal(r.name.as_bytes()),
                r.expect,
                r.matched,
                if r.by_name > 0 { format!(" ({} by name: spoofable)", r.by_name) } else { String::new() },
                r.passed,
                r.violated,
                r.unproven,
                if r.ignored > 0 { format!(", {} not SMTP (ignored)", r.ignored) } else { String::new() },
                if r.by_log > 0 { format!("; {} proven by a log", r.by_log) } else { String::new() },
            );
            for (why, n) in &r.not_logged {
                let _ =
                    writeln!(o, "  {n} log session(s) this rule may cover not judged: {why}{}", not_logged_hint(why));
            }
            if r.no_traffic() && r.default {
                let _ = writeln!(o, "  no session fell through to the default rule");
            } else if r.no_traffic() {
                let _ = writeln!(
                    o,
                    "  nothing proven: no SMTP seen between these groups — check the addresses and the capture filter; if a WAN optimizer sits there, capture on its LAN side{}",
                    if no_traffic == NoTraffic::Allowed { " (allowed by --allow-no-traffic)" } else { "" }
                );
            }
            for it in &r.items {
                let _ = writeln!(o, "  {}", item_line(it));
            }
        }
        let not_logged: u64 = self.not_logged.values().sum();
        if self.unmatched > not_logged {
            let _ = writeln!(
                o,
                "{} session(s) matched no rule (add a [default] rule to judge them)",
                self.unmatched - not_logged
            );
        }
        for (why, n) in &self.not_logged {
            let _ = writeln!(o, "{n} log session(s) unmatched: {why}{}", not_logged_hint(why));
        }
        if let Some(n) = self.log_sessions {
            let _ = writeln!(o, "{n} log session(s) read");
        }
        if let Some(n) = self.logs_unmatched_in_span {
            let _ = writeln!(
                o,
                "{n} log session(s) in the capture's span matched no wire session (not judged: the capture sets what is checked)"
            );
        }
        if self.outside_window > 0 {
            let _ = writeln!(o, "{} session(s) left out: started outside --since/--until", self.outside_window);
        }
        if self.outside_ports > 0 {
            let _ = writeln!(o, "{} session(s) left out: server port not in --port", self.outside_ports);
        }
        if self.filtered_out > 0 {
            let _ = writeln!(o, "{} session(s) left out: dropped by the display filter (-Y)", self.filtered_out);
        }
        let verdict = match self.result(no_traffic) {
            CheckResult::Pass => "PASS",
            CheckResult::Fail => "FAIL (violations)",
            CheckResult::NothingProven => "NOTHING PROVEN (a rule matched no session; --allow-no-traffic accepts that)",
            CheckResult::Unproven => "UNPROVEN (no violation, but not everything could be proven)",
        };
        let _ = writeln!(o, "result: {verdict}");
        o
    }

    /// NDJSON: one line per listed session, then one per rule, then a summary (the result and
    /// exit status, sessions no rule matched, sessions left out by `--since/--until` and `--port`).
    pub fn ndjson(&self, no_traffic: NoTraffic) -> Vec<serde_json::Value> {
        let mut out = Vec::new();
        for r in &self.results {
            for it in &r.items {
                out.push(item_json(&r.name, it));
            }
        }
        for r in &self.results {
            out.push(json!({
                "type": "rule", "rule": r.name, "expect": r.expect, "matched": r.matched, "passed": r.passed,
                "warned": r.warned, "violated": r.violated, "unproven": r.unproven, "ignored": r.ignored,
                "matched_by_name": r.by_name, "no_traffic": r.no_traffic(), "default": r.default,
                "nothing_proven": r.missing_traffic(no_traffic), "proven_by_log": r.by_log,
                "not_logged": r.not_logged,
            }));
        }
        out.push(json!({
            "type": "summary", "unmatched": self.unmatched,
            "left_out": { "outside_window": self.outside_window, "outside_ports": self.outside_ports,
                          "display_filter": self.filtered_out },
            "result": self.result(no_traffic).name(), "exit": self.exit_code(no_traffic),
            "not_logged": self.not_logged, "log_sessions": self.log_sessions,
            "logs_unmatched_in_span": self.logs_unmatched_in_span,
        }));
        out
    }

    /// JUnit XML: a test suite per rule, a test case per listed session.
    pub fn junit(&self, allow: NoTraffic) -> String {
        let mut o = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"smtpscope check\">\n");
        for r in &self.results {
            let no_traffic = r.no_traffic();
            let missing = r.missing_traffic(allow);
            let cases = r.items.len() as u64 + 1;
            let failures = r.violated + u64::from(missing);
            let skipped = r.unproven + u64::from(no_traffic && !missing);
            let rule = xml(&r.name);
            let _ = writeln!(
                o,
                "  <testsuite name=\"{rule}\" tests=\"{cases}\" failures=\"{failures}\" skipped=\"{skipped}\">"
            );
            let _ = writeln!(
                o,
                "    <testcase classname=\"{rule}\" name=\"{} session(s) passed of {} matched\">",
                r.passed, r.matched
            );
            if no_traffic {
                let msg = if r.default {
                    "no session fell through to the default rule"
                } else if missing {
                    "nothing proven: no SMTP session matched this rule (--allow-no-traffic accepts that)"
                } else {
                    "nothing proven: no SMTP seen between these groups (allowed by --allow-no-traffic)"
                };
                let tag = if missing { "failure" } else { "skipped" };
                let _ = writeln!(o, "      <{tag} message=\"{msg}\"/>");
            }
            o.push_str("    </testcase>\n");
            for it in &r.items {
                let name = format!(
                    "{} -> {} ({})",
                    it.client.as_deref().unwrap_or("(client not logged)"),
                    it.server.as_deref().unwrap_or("(server not logged)"),
                    it.verdict
                );
                let _ = write!(o, "    <testcase classname=\"{rule}\" name=\"{}\">", xml(&name));
                if let Some(p) = it.proven_by {
                    let _ = write!(o, "<properties><property name=\"proven_by\" value=\"{}\"/></properties>", p.name());
                }
                let spoof = if it.spoofable { " (hosts matched by name: spoofable)" } else { "" };
                let log = it.log.as_ref().map(|l| format!(" {}", log_words(it, l))).unwrap_or_default();
                let why = xml(&format!("{}{spoof}{log}", it.outcome.why()));
                let ev = xml(&it.evidence);
                match it.outcome {
                    Outcome::Violation(_) => {
                        let _ = write!(o, "<failure message=\"{why}\">{ev}</failure>");
                    }
                    Outcome::Unproven(_) => {
                        let _ = write!(o, "<skipped message=\"{why}\"/>");
                    }
                    Outcome::Warn(_) | Outcome::Ignored | Outcome::Pass => {
                        let _ = write!(o, "<system-out>{} {why} {ev}</system-out>", it.outcome.name());
                    }
                }
                o.push_str("</testcase>\n");
            }
            o.push_str("  </testsuite>\n");
        }
        o.push_str("</testsuites>\n");
        o
    }
}

/// What to do about a log session that lacks what a rule needs.
fn not_logged_hint(why: &str) -> &'static str {
    match why {
        policy::SERVER_NOT_LOGGED | policy::SERVER_PORT_NOT_LOGGED => {
            " (Postfix never logs its own address: map its syslog name with --log-server NAME=ADDR[:PORT], or write the rule's server side as \"*\")"
        }
        _ => " (write the rule's client side as \"*\" to judge it)",
    }
}

/// The wire's outcome and the matched logs' outcomes as one judgement, with the side it rests
/// on: a violation on either side is a violation (the wire's first); else what the wire proves;
/// else what a log proves; else unproven.
fn combine(wire: Outcome, logs: &[(Outcome, &LogRecord)]) -> (Outcome, Option<ProvenBy>, Option<LogRef>) {
    let wire_unproven = match &wire {
        Outcome::Unproven(w) => Some(w.clone()),
        _ => None,
    };
    match wire {
        Outcome::Violation(_) => return (wire, Some(ProvenBy::Wire), None),
        Outcome::Ignored => return (wire, None, None),
        _ => {}
    }
    if let Some((Outcome::Violation(why), r)) = logs.iter().find(|(o, _)| matches!(o, Outcome::Violation(_))) {
        let why = match &wire_unproven {
            Some(_) => why.clone(),
            None => format!("{why} (the log disagrees with the wire, which shows {})", wire.name()),
        };
        return (Outcome::Violation(why), Some(ProvenBy::Log), Some(LogRef::of(r, wire_unproven)));
    }
    if wire.decisive() {
        return (wire, Some(ProvenBy::Wire), None);
    }
    if let Some((o, r)) = logs.iter().find(|(o, _)| o.decisive()) {
        return (o.clone(), Some(ProvenBy::Log), Some(LogRef::of(r, wire_unproven)));
    }
    (wire, None, None)
}

/// A session as the text report lists it (`VIOLATION client → server  verdict  reason  [evidence]`).
pub fn item_line(it: &Item) -> String {
    let tag = match it.outcome {
        Outcome::Violation(_) => "VIOLATION",
        Outcome::Unproven(_) => "unproven ",
        Outcome::Warn(_) => "warning  ",
        Outcome::Ignored => "ignored  ",
        Outcome::Pass => "pass     ",
    };
    let port = it.port_name;
    let mut line = format!(
        "{tag} {} → {}  {}  {}{}  [{}]",
        it.client.as_deref().map_or_else(|| "(client not logged)".into(), defuse),
        it.server.as_deref().map_or_else(|| "(server not logged)".into(), defuse),
        it.verdict,
        // A pass has no reason of its own: then the spoofable mark stands alone.
        [defuse(it.outcome.why()), if it.spoofable { "(hosts matched by name: spoofable)" } else { "" }.into()]
            .into_iter()
            .filter(|t| !t.is_empty())
            .collect::<Vec<_>>()
            .join(" "),
        port.map(|p| format!(" ({p})")).unwrap_or_default(),
        // Evidence is wire text escaped once already: only defused here, not escaped again.
        defuse(&it.evidence),
    );
    if let Some(l) = &it.log {
        let _ = write!(line, "  {}", log_words(it, l));
    }
    line
}

/// What a log-based judgement says in text: the log session, and what it settled.
fn log_words(it: &Item, l: &LogRef) -> String {
    let proven = match it.proven_by {
        Some(ProvenBy::Log) => "proven by the log",
        _ => "log",
    };
    let mut o = format!(
        "({proven}: {} {} in {}, {} [{}]",
        l.source,
        terminal(l.log_session.as_bytes()),
        terminal(l.log_file.as_bytes()),
        l.verdict,
        defuse(&l.evidence)
    );
    if let Some(w) = &l.wire_unproven {
        let _ = write!(o, "; the wire alone: {}", defuse(w));
    }
    o.push(')');
    o
}

/// A session as the NDJSON report lists it (`"type": "session"`).
pub fn item_json(rule: &str, it: &Item) -> serde_json::Value {
    json!({
        "type": "session", "rule": rule, "outcome": it.outcome.name(), "reason": it.outcome.why(),
        "client": it.client, "server": it.server, "verdict": it.verdict, "file": it.file,
        "first_seen": rfc3339(it.first_seen), "evidence": it.evidence, "spoofable": it.spoofable,
        "port_role": it.port_role, "proven_by": it.proven_by.map(ProvenBy::name),
        "log": it.log.as_ref().map(|l| json!({
            "source": l.source, "log_file": l.log_file, "log_session": l.log_session, "verdict": l.verdict,
            "evidence": l.evidence, "wire_unproven": l.wire_unproven,
        })),
    })
}

/// How one session was judged: under which rule, and its line in the report.
#[derive(Debug, Clone)]
pub struct Judged {
    /// The rule's name.
    pub rule: String,
    /// The session as the report lists it.
    pub item: Item,
}

impl Judged {
    /// The line a streaming check (`check -i`) writes the moment the session is judged: for a
    /// violation or an unproven session only (None otherwise, they wait for the final report),
    /// the report's line with the rule name in front, or with `json` the NDJSON `session` line.
    pub fn streamed_line(&self, json: bool) -> Option<String> {
        if !matches!(self.item.outcome, Outcome::Violation(_) | Outcome::Unproven(_)) {
            return None;
        }
        Some(if json {
            crate::report::json::to_line(&item_json(&self.rule, &self.item))
        } else {
            format!("rule \"{}\": {}", terminal(self.rule.as_bytes()), item_line(&self.item))
        })
    }
}

/// Text for an XML attribute or element: characters XML 1.0 cannot carry at all (C0 controls other
/// than tab/LF/CR, U+FFFE/U+FFFF; a policy name or wire text may hold them) are written as
/// `\u{..}`, so the document stays well-formed; then the markup characters are escaped.
fn xml(s: &str) -> String {
    let allowed =
        |c: char| matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{d7ff}' | '\u{e000}'..='\u{fffd}' | '\u{10000}'..);
    let mut clean = String::with_capacity(s.len());
    for c in s.chars() {
        if allowed(c) {
            clean.push(c);
        } else {
            let _ = write!(clean, "\\u{{{:x}}}", u32::from(c));
        }
    }
    quick_xml::escape::escape(clean.as_str()).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn checker(policy: &str) -> Checker {
        Checker::new(Policy::from_toml(policy).unwrap(), JudgeOptions::default(), Window::default())
    }

    const ONE_RULE: &str = "[groups]\nA = [\"10.9.0.0/24\"]\nB = [\"10.2.0.0/24\"]\n\
        [[rule]]\nname = \"hubs\"\nbetween = [\"A\", \"B\"]\nexpect = \"plaintext\"\n";

    #[test]
    fn a_named_rule_that_matched_nothing_proves_nothing_by_default() {
        let c = checker(ONE_RULE);
        assert_eq!(c.exit_code(NoTraffic::Unproven), EXIT_UNPROVEN);
        assert!(c
            .text(NoTraffic::Unproven)
            .ends_with("result: NOTHING PROVEN (a rule matched no session; --allow-no-traffic accepts that)\n"));
        let summary = c.ndjson(NoTraffic::Unproven).pop().unwrap();
        assert_eq!((summary["result"].as_str(), summary["exit"].as_u64()), (Some("nothing-proven"), Some(3)));
        assert_eq!(c.ndjson(NoTraffic::Unproven)[0]["nothing_proven"], true);
        assert!(c.junit(NoTraffic::Unproven).contains("failures=\"1\""));
    }

    #[test]
    fn allow_no_traffic_lets_an_empty_rule_pass_and_says_so() {
        let c = checker(ONE_RULE);
        assert_eq!(c.exit_code(NoTraffic::Allowed), EXIT_PASS);
        let text = c.text(NoTraffic::Allowed);
        assert!(text.contains("(allowed by --allow-no-traffic)") && text.ends_with("result: PASS\n"), "{text}");
        assert!(c.junit(NoTraffic::Allowed).contains("failures=\"0\" skipped=\"1\""));
    }

    #[test]
    fn the_default_rule_may_see_nothing() {
        let c = checker("[default]\nexpect = \"tls\"\n");
        assert_eq!(c.exit_code(NoTraffic::Unproven), EXIT_PASS);
        assert!(c.text(NoTraffic::Unproven).contains("no session fell through to the default rule"));
    }

    fn policy(rules: &str) -> Policy {
        Policy::from_toml(&format!("[groups]\nA = [\"10.0.0.0/24\"]\nB = [\"10.9.0.0/24\"]\n{rules}")).unwrap()
    }

    fn plaintext_session() -> Session {
        let mut s = Session::new("10.0.0.1:40000".parse().unwrap(), "10.9.0.2:25".parse().unwrap());
        s.verdict = Some(crate::session::Verdict::Plaintext);
        s
    }

    #[test]
    fn a_replaced_policy_keeps_the_old_rules_that_judged_and_counts_under_the_judging_rule() {
        let old = "[[rule]]\nname = \"kept\"\nbetween = [\"A\", \"B\"]\nexpect = \"any\"\n";
        let gone = "[[rule]]\nname = \"gone\"\nbetween = [\"A\", \"B\"]\nexpect = \"plaintext\"\n";
        let mut c = Checker::new(policy(gone), JudgeOptions::default(), Window::default());
        let j = c.add_judged(&plaintext_session()).unwrap();
        assert_eq!(j.rule, "gone");
        c.replace_policy(policy(&format!(
            "{old}[[rule]]\nname = \"new\"\nbetween = [\"*\", \"*\"]\nexpect = \"tls\"\n"
        )));
        let j = c.add_judged(&plaintext_session()).unwrap();
        assert_eq!(j.rule, "kept");
        let names: Vec<(&str, u64)> = c.results.iter().map(|r| (r.name.as_str(), r.matched)).collect();
        assert_eq!(names, [("kept", 1), ("new", 0), ("gone", 1)]);
        c.replace_policy(policy(old));
        c.add(&plaintext_session());
        let names: Vec<(&str, u64)> = c.results.iter().map(|r| (r.name.as_str(), r.matched)).collect();
        assert_eq!(names, [("kept", 2), ("gone", 1)], "a rule kept by name and expectation goes on counting");
    }

    fn log(verdict: crate::session::Verdict) -> LogRecord {
        let mut r = LogRecord::new(crate::logs::Source::PostfixSmtpd, std::sync::Arc::from("m"), "h".into(), 0, 7);
        r.client = Some(crate::logs::Endpoint { ip: "10.0.0.1".parse().unwrap(), port: None });
        r.verdict = verdict;
        r
    }

    #[test]
    fn beside_the_wire_a_violation_on_either_side_is_a_violation_and_says_which_side_proved_it() {
        let v = |w: &str| Outcome::Violation(w.into());
        let plain = log(crate::session::Verdict::Plaintext);
        // The wire passes, the log violates: a violation, proven by the log.
        let (o, by, l) = combine(Outcome::Pass, &[(v("TLS used"), &plain)]);
        assert_eq!(o, v("TLS used (the log disagrees with the wire, which shows pass)"));
        assert_eq!((by, l.map(|l| l.log_session)), (Some(ProvenBy::Log), Some("h".to_string())));
        // The wire violates: the wire's violation, whatever the log says.
        let (o, by, l) = combine(v("mail in clear"), &[(Outcome::Pass, &plain)]);
        assert_eq!((o, by, l.is_none()), (v("mail in clear"), Some(ProvenBy::Wire), true));
        // The wire proves a pass, the log proves nothing more: the wire's.
        let (o, by, _) = combine(Outcome::Pass, &[(Outcome::Unproven("x".into()), &plain)]);
        assert_eq!((o, by), (Outcome::Pass, Some(ProvenBy::Wire)));
        // The wire leaves it open, a log settles it; no log settles it: unproven, by neither.
        let gap = Outcome::Unproven("TLS version not captured".into());
        let (o, by, l) = combine(gap.clone(), &[(Outcome::Pass, &plain)]);
        assert_eq!((o, by), (Outcome::Pass, Some(ProvenBy::Log)));
        assert_eq!(l.unwrap().wire_unproven.as_deref(), Some("TLS version not captured"));
        assert_eq!(combine(gap.clone(), &[(gap.clone(), &plain)]).1, None);
        assert_eq!(combine(Outcome::Ignored, &[(v("x"), &plain)]).0, Outcome::Ignored, "not SMTP stays ignored");
    }

    #[test]
    fn a_log_session_without_a_server_stops_at_the_first_rule_that_names_servers_and_counts_there() {
        let p = policy(
            "[[rule]]\nname = \"named\"\nbetween = [\"A\", \"B\"]\nexpect = \"tls\"\n\
             [[rule]]\nname = \"any server\"\nfrom = \"A\"\nto = \"*\"\nexpect = \"tls\"\n",
        );
        let mut c = Checker::new(p.clone(), JudgeOptions::default(), Window::default());
        let r = log(crate::session::Verdict::Starttls);
        assert!(c.add_log(&r).is_none());
        assert_eq!(c.results[0].not_logged.get("server not logged"), Some(&1));
        assert_eq!((c.results[1].matched, c.unmatched), (0, 1), "a later rule never judges what an earlier may own");
        // Only a `*` server side judges it.
        let star = Policy { rules: p.rules[1..].to_vec() };
        let mut c = Checker::new(star, JudgeOptions::default(), Window::default());
        let j = c.add_log(&r).expect("judged under the `*` rule");
        assert_eq!((j.rule.as_str(), j.item.server.as_deref()), ("any server", None));
        // A client outside every group is no match at all, not "not logged".
        let mut other = r.clone();
        other.client = Some(crate::logs::Endpoint { ip: "192.0.2.1".parse().unwrap(), port: None });
        let mut c = Checker::new(p, JudgeOptions::default(), Window::default());
        assert!(c.add_log(&other).is_none());
        assert!(c.not_logged.is_empty() && c.unmatched == 1);
    }

    #[test]
    fn live_a_session_held_for_its_log_is_judged_by_the_log_that_arrives_and_streamed_as_the_log_proved_it() {
        use crate::logs::hold::{Hold, Linked};
        use crate::session::{Kind, Verdict};
        use std::time::{Duration, Instant};
        let wait = Duration::from_secs(10);
        let t0 = Instant::now();
        let mut hold = Hold::new(wait, 0);
        let mut c = Checker::new(
            policy("[[rule]]\nname = \"hubs\"\nbetween = [\"A\", \"B\"]\nexpect = \"plaintext\"\n"),
            JudgeOptions::default(),
            Window::default(),
        );
        let streamed = std::cell::RefCell::new(Vec::new());
        let mut judge = |s: Session, logs: Linked| {
            let logs: Vec<&LogRecord> = logs.iter().collect();
            let j = c.add_with_logs(&s, &logs).expect("judged under the rule");
            streamed.borrow_mut().push((s.client.port(), j.streamed_line(true), j.streamed_line(false)));
        };
        // A session the wire cannot settle (the capture ended after the EHLO reply), whose log
        // comes a second after it ended and shows TLS; and one the wire settles, whose log never
        // comes.
        let mut open = plaintext_session();
        (open.kind, open.verdict) = (Kind::Smtp, Some(Verdict::Incomplete));
        let mut clear = plaintext_session();
        (clear.client, clear.kind) = ("10.0.0.1:40001".parse().unwrap(), Kind::Smtp);
        (clear.first_seen, clear.client_closed, clear.server_closed) = (60_000_000, true, true);
        hold.finished(open, t0, &mut judge);
        hold.finished(clear, t0, &mut judge);
        assert!(streamed.borrow().is_empty(), "both wait for their logs");
        let mut tls = log(Verdict::Starttls);
        tls.tls_version = Some("TLS1.3".into());
        hold.log(tls, t0 + Duration::from_secs(1), &mut |_| panic!("taken"));
        hold.release(t0 + Duration::from_secs(1), &mut judge, &mut |_| panic!("taken"));
        let first = streamed.borrow().clone();
        let [(40000, Some(json), Some(text))] = first.as_slice() else { panic!("{first:?}") };
        let v: serde_json::Value = serde_json::from_str(json).unwrap();
        assert_eq!((&v["type"], &v["rule"], &v["outcome"]), (&json!("session"), &json!("hubs"), &json!("violation")));
        assert_eq!((&v["proven_by"], &v["reason"]), (&json!("log"), &json!("TLS used (TLS1.3)")), "{v}");
        assert_eq!(v["log"]["wire_unproven"], "incomplete capture: the outcome is not visible", "{v}");
        assert!(text.starts_with("rule \"hubs\": VIOLATION 10.0.0.1:40000 → 10.9.0.2:25  incomplete"), "{text}");
        assert!(text.contains("(proven by the log: postfix-smtpd h in m, starttls"), "{text}");
        // The other leaves when its wait is over, judged on the wire alone: a pass is not streamed.
        hold.release(t0 + wait, &mut judge, &mut |_| {});
        assert_eq!(streamed.borrow().get(1), Some(&(40001, None, None)));
        let r = &c.results[0];
        assert_eq!((r.matched, r.violated, r.passed, r.by_log), (2, 1, 1, 1));
    }

    #[test]
    fn xml_text_never_carries_a_character_xml_1_0_forbids() {
        assert_eq!(xml("bad\u{1b}[31mname\u{1}"), "bad\\u{1b}[31mname\\u{1}");
        assert_eq!(xml("a<b & \"c\"\u{fffe}"), "a&lt;b &amp; &quot;c&quot;\\u{fffe}");
        assert_eq!(xml("tab\there é ✓"), "tab\there é ✓");
    }
}
