//! Check mode: prove that TLS is really off (or on) between given hosts. Sessions are judged
//! against the first matching rule of a policy; the result is a per-rule account with every
//! violation on one line, and an exit code a script can trust.

pub mod judge;
pub mod policy;

use std::fmt::Write as _;

use serde_json::json;

use crate::capture::Micros;
use crate::report::escape::{defuse, terminal};
use crate::report::{endpoint, rfc3339};
use crate::session::Session;
pub use judge::{JudgeOptions, Outcome};
pub use policy::{Expect, MatchedBy, Policy, PolicyError, Rule};

/// Exit status: every rule passed.
pub const EXIT_PASS: u8 = 0;
/// Exit status: at least one violation.
pub const EXIT_VIOLATION: u8 = 1;
/// Exit status: no violation, but something unproven (or, with `--require-traffic`, a rule saw nothing).
pub const EXIT_UNPROVEN: u8 = 3;

/// Most listed sessions kept per rule (counts stay exact).
const MAX_ITEMS: usize = 10_000;

/// One listed session.
#[derive(Debug, Clone)]
pub struct Item {
    /// Outcome.
    pub outcome: Outcome,
    /// Client `ip:port`.
    pub client: String,
    /// Server `ip:port`.
    pub server: String,
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
    /// Every non-plain-pass session (bounded).
    pub items: Vec<Item>,
}

/// Restricts which sessions count (a change-window capture spans before and after a change).
#[derive(Debug, Clone, Copy, Default)]
pub struct Window {
    /// Only sessions starting at or after this time.
    pub since: Option<Micros>,
    /// Only sessions starting before this time.
    pub until: Option<Micros>,
}

/// The check in progress.
pub struct Checker {
    policy: Policy,
    opts: JudgeOptions,
    window: Window,
    /// Per-rule results, in policy order.
    pub results: Vec<RuleResult>,
    /// Sessions no rule matched.
    pub unmatched: u64,
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

/// Exchange's well-known SMTP ports, for reports (classification never depends on them).
pub fn port_name(port: u16) -> Option<&'static str> {
    Some(match port {
        25 => "Exchange front end / MX",
        587 => "submission (Exchange front end)",
        717 => "Exchange front end (outbound proxy)",
        465 => "Exchange client proxy (STARTTLS here, not implicit TLS)",
        2525 => "Exchange hub transport",
        475 => "Exchange mailbox delivery",
        _ => return None,
    })
}

impl Checker {
    /// A checker for `policy`.
    pub fn new(policy: Policy, opts: JudgeOptions, window: Window) -> Self {
        let results = policy
            .rules
            .iter()
            .map(|r| RuleResult { name: r.name.clone(), expect: expect_words(&r.expect), ..Default::default() })
            .collect();
        Self { policy, opts, window, results, unmatched: 0 }
    }

    /// Judges one finished session.
    pub fn add(&mut self, s: &Session) {
        if self.window.since.is_some_and(|t| s.first_seen < t) || self.window.until.is_some_and(|t| s.first_seen >= t) {
            return;
        }
        let Some((i, by)) = self.policy.rule_for(s) else {
            self.unmatched += 1;
            return;
        };
        let (Some(rule), Some(res)) = (self.policy.rules.get(i), self.results.get_mut(i)) else { return };
        let outcome = judge::judge(s, &rule.expect, self.opts);
        res.matched += 1;
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
        if outcome != Outcome::Pass && res.items.len() < MAX_ITEMS {
            let ev = s.evidence.first().map(|e| match e.frame {
                Some(f) => format!("{} (frame {f})", e.text),
                None => e.text.clone(),
            });
            res.items.push(Item {
                outcome,
                client: endpoint(s.client),
                server: endpoint(s.server),
                verdict: s.verdict.map_or("incomplete", |v| v.name()),
                file: s.file.as_deref().map(str::to_string),
                first_seen: s.first_seen,
                evidence: ev.unwrap_or_default(),
                spoofable: by == MatchedBy::Name,
            });
        }
    }

    /// The exit status the results call for.
    pub fn exit_code(&self, require_traffic: bool) -> u8 {
        if self.results.iter().any(|r| r.violated > 0) {
            EXIT_VIOLATION
        } else if self.results.iter().any(|r| r.unproven > 0 || (require_traffic && r.matched == r.ignored)) {
            EXIT_UNPROVEN
        } else {
            EXIT_PASS
        }
    }

    /// Human report.
    pub fn text(&self, require_traffic: bool) -> String {
        let mut o = String::new();
        for r in &self.results {
            let _ = writeln!(
                o,
                "rule \"{}\" (expect {}): {} matched, {} passed, {} violated, {} unproven{}",
                terminal(r.name.as_bytes()),
                r.expect,
                r.matched,
                r.passed,
                r.violated,
                r.unproven,
                if r.ignored > 0 { format!(", {} not SMTP (ignored)", r.ignored) } else { String::new() }
            );
            if r.matched == r.ignored {
                let _ = writeln!(
                    o,
                    "  nothing proven: no SMTP seen between these groups — if a WAN optimizer sits there, capture on its LAN side"
                );
            }
            for it in &r.items {
                let tag = match it.outcome {
                    Outcome::Violation(_) => "VIOLATION",
                    Outcome::Unproven(_) => "unproven ",
                    Outcome::Warn(_) => "warning  ",
                    Outcome::Ignored => "ignored  ",
                    Outcome::Pass => continue,
                };
                let port = it.server.rsplit(':').next().and_then(|p| p.parse().ok()).and_then(port_name);
                let _ = writeln!(
                    o,
                    "  {tag} {} → {}  {}  {}{}{}  [{}]",
                    it.client,
                    it.server,
                    it.verdict,
                    defuse(it.outcome.why()),
                    if it.spoofable { " (hosts matched by name: spoofable)" } else { "" },
                    port.map(|p| format!(" ({p})")).unwrap_or_default(),
                    // Evidence is wire text escaped once already: only defused here, not escaped again.
                    defuse(&it.evidence),
                );
            }
        }
        if self.unmatched > 0 {
            let _ = writeln!(o, "{} session(s) matched no rule (add a [default] rule to judge them)", self.unmatched);
        }
        let verdict = match self.exit_code(require_traffic) {
            EXIT_PASS => "PASS",
            EXIT_VIOLATION => "FAIL (violations)",
            _ => "UNPROVEN (no violation, but not everything could be proven)",
        };
        let _ = writeln!(o, "result: {verdict}");
        o
    }

    /// NDJSON: one line per listed session, then one per rule.
    pub fn ndjson(&self) -> Vec<serde_json::Value> {
        let mut out = Vec::new();
        for r in &self.results {
            for it in &r.items {
                out.push(json!({
                    "type": "session", "rule": r.name, "outcome": it.outcome.name(), "reason": it.outcome.why(),
                    "client": it.client, "server": it.server, "verdict": it.verdict, "file": it.file,
                    "first_seen": rfc3339(it.first_seen), "evidence": it.evidence, "spoofable": it.spoofable,
                }));
            }
        }
        for r in &self.results {
            out.push(json!({
                "type": "rule", "rule": r.name, "expect": r.expect, "matched": r.matched, "passed": r.passed,
                "warned": r.warned, "violated": r.violated, "unproven": r.unproven, "ignored": r.ignored,
                "no_traffic": r.matched == r.ignored,
            }));
        }
        out
    }

    /// JUnit XML: a test suite per rule, a test case per listed session.
    pub fn junit(&self, require_traffic: bool) -> String {
        use quick_xml::escape::escape;
        let mut o = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"smtpscope check\">\n");
        for r in &self.results {
            let no_traffic = r.matched == r.ignored;
            let cases = r.items.len() as u64 + 1;
            let failures = r.violated + u64::from(no_traffic && require_traffic);
            let skipped = r.unproven + u64::from(no_traffic && !require_traffic);
            let _ = writeln!(
                o,
                "  <testsuite name=\"{}\" tests=\"{cases}\" failures=\"{failures}\" skipped=\"{skipped}\">",
                escape(r.name.as_str())
            );
            let _ = writeln!(
                o,
                "    <testcase classname=\"{}\" name=\"{} session(s) passed of {} matched\">",
                escape(r.name.as_str()),
                r.passed,
                r.matched
            );
            if no_traffic {
                let msg = "nothing proven: no SMTP seen between these groups";
                let tag = if require_traffic { "failure" } else { "skipped" };
                let _ = writeln!(o, "      <{tag} message=\"{msg}\"/>");
            }
            o.push_str("    </testcase>\n");
            for it in &r.items {
                let name = format!("{} -> {} ({})", it.client, it.server, it.verdict);
                let _ = write!(
                    o,
                    "    <testcase classname=\"{}\" name=\"{}\">",
                    escape(r.name.as_str()),
                    escape(name.as_str())
                );
                let why = escape(it.outcome.why()).into_owned();
                let ev = escape(it.evidence.as_str()).into_owned();
                match it.outcome {
                    Outcome::Violation(_) => {
                        let _ = write!(o, "<failure message=\"{why}\">{ev}</failure>");
                    }
                    Outcome::Unproven(_) => {
                        let _ = write!(o, "<skipped message=\"{why}\"/>");
                    }
                    Outcome::Warn(_) | Outcome::Ignored => {
                        let _ = write!(o, "<system-out>{} {why} {ev}</system-out>", it.outcome.name());
                    }
                    Outcome::Pass => {}
                }
                o.push_str("</testcase>\n");
            }
            o.push_str("  </testsuite>\n");
        }
        o.push_str("</testsuites>\n");
        o
    }
}
