//! Who speaks TLS to whom: sessions grouped by client host × server host, with verdict counts,
//! what the server offered and what the client used. Shared by `smtpscope pairs` and the TUI.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::net::IpAddr;

use serde_json::json;

use crate::session::{Session, Verdict};
use crate::tls::version_label;

/// One client-host × server-host pair.
#[derive(Debug, Clone, Default)]
pub struct Pair {
    /// Sessions per verdict.
    pub verdicts: BTreeMap<Verdict, u64>,
    /// Server ports seen.
    pub ports: BTreeSet<u16>,
    /// Upgrade verbs the server offered in EHLO replies (STARTTLS, X-ANONYMOUSTLS).
    pub offered: BTreeSet<&'static str>,
    /// Upgrade verbs clients sent, with counts.
    pub used: BTreeMap<&'static str, u64>,
    /// Negotiated TLS versions, with counts.
    pub tls_versions: BTreeMap<String, u64>,
    /// The notable EHLO extensions the server offered (see [`NOTABLE`]), masked ones as
    /// `XXXXXXXA`: what the terminal UI's OFFERED column lists.
    pub extensions: BTreeSet<&'static str>,
}

/// EHLO extensions worth a column: the upgrade verbs, TLS policy, AUTH, and the ones that change
/// how mail crosses (in this order on screen).
pub const NOTABLE: [&str; 8] =
    ["STARTTLS", "X-ANONYMOUSTLS", "REQUIRETLS", "AUTH", "CHUNKING", "SMTPUTF8", "PIPELINING", "8BITMIME"];

/// A pair's columns as text (`-` when empty), as `smtpscope pairs` and the TUI show them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PairCells {
    /// `starttls 3, plaintext 1`.
    pub verdicts: String,
    /// Upgrade verbs offered.
    pub offered: String,
    /// Upgrade verbs used, with counts.
    pub used: String,
    /// TLS versions, with counts.
    pub tls: String,
    /// Server ports.
    pub ports: String,
    /// Notable extensions offered, in [`NOTABLE`] order, masked ones last.
    pub extensions: String,
}

impl Pair {
    /// Sessions in the pair.
    pub fn sessions(&self) -> u64 {
        self.verdicts.values().sum()
    }

    /// The pair's columns as text.
    pub fn cells(&self) -> PairCells {
        let dash = |v: String| if v.is_empty() { "-".to_string() } else { v };
        let verdicts: Vec<String> = self.verdicts.iter().map(|(v, n)| format!("{} {n}", v.name())).collect();
        let offered: Vec<&str> = self.offered.iter().copied().collect();
        let used: Vec<String> = self.used.iter().map(|(v, n)| format!("{v} {n}")).collect();
        let tls: Vec<String> = self.tls_versions.iter().map(|(v, n)| format!("{v} {n}")).collect();
        let ports: Vec<String> = self.ports.iter().map(u16::to_string).collect();
        let mut extensions: Vec<&str> = NOTABLE.iter().copied().filter(|e| self.extensions.contains(e)).collect();
        if self.extensions.contains("XXXXXXXA") {
            extensions.push("XXXXXXXA");
        }
        PairCells {
            extensions: dash(extensions.join(" ")),
            verdicts: verdicts.join(", "),
            offered: dash(offered.join(", ")),
            used: dash(used.join(", ")),
            tls: dash(tls.join(", ")),
            ports: dash(ports.join(",")),
        }
    }
}

/// The pairs table, built from sessions as they end.
#[derive(Debug, Clone, Default)]
pub struct Pairs {
    /// By (client host, server host).
    pub pairs: BTreeMap<(IpAddr, IpAddr), Pair>,
}

impl Pairs {
    /// Adds a finished session.
    pub fn add(&mut self, s: &Session) {
        let p = self.pairs.entry((s.client.ip(), s.server.ip())).or_default();
        if let Some(v) = s.verdict {
            *p.verdicts.entry(v).or_default() += 1;
        }
        p.ports.insert(s.server.port());
        if let Some(r) = &s.ehlo_reply {
            for e in &r.extensions {
                if e.is("STARTTLS") {
                    p.offered.insert("STARTTLS");
                } else if e.is("X-ANONYMOUSTLS") {
                    p.offered.insert("X-ANONYMOUSTLS");
                }
                if let Some(n) = NOTABLE.iter().find(|n| e.is(n)) {
                    p.extensions.insert(n);
                } else if e.keyword.len() >= 3
                    && e.keyword.iter().take(e.keyword.len() - 1).all(|b| b.eq_ignore_ascii_case(&b'X'))
                {
                    // A middlebox masked an extension (XXXXXXXA where STARTTLS was).
                    p.extensions.insert("XXXXXXXA");
                }
            }
        }
        if let Some(u) = &s.upgrade {
            *p.used.entry(u.verb.name()).or_default() += 1;
        }
        if let (Some(v), true) = (s.tls.version, s.tls_handshake()) {
            *p.tls_versions.entry(version_label(v)).or_default() += 1;
        }
    }

    /// Text table.
    pub fn text(&self) -> String {
        let mut o = String::new();
        let _ = writeln!(
            o,
            "{:<39} {:<39} {:>5}  {:<34} {:<24} {:<18} TLS",
            "CLIENT HOST", "SERVER HOST", "SESS", "VERDICTS", "OFFERED", "USED"
        );
        for ((c, s), p) in &self.pairs {
            let cells = p.cells();
            let _ = writeln!(
                o,
                "{:<39} {:<39} {:>5}  {:<34} {:<24} {:<18} {}",
                c.to_string(),
                s.to_string(),
                p.sessions(),
                cells.verdicts,
                cells.offered,
                cells.used,
                cells.tls
            );
        }
        o
    }

    /// One JSON object per pair.
    pub fn json(&self) -> Vec<serde_json::Value> {
        self.pairs
            .iter()
            .map(|((c, s), p)| {
                json!({
                    "client_host": c.to_string(),
                    "server_host": s.to_string(),
                    "server_ports": p.ports,
                    "sessions": p.sessions(),
                    "verdicts": p.verdicts.iter().map(|(v, n)| (v.name().to_string(), json!(n))).collect::<serde_json::Map<_, _>>(),
                    "offered": p.offered,
                    "used": p.used,
                    "tls_versions": p.tls_versions,
                })
            })
            .collect()
    }
}
