//! Who speaks TLS to whom: sessions grouped by client host × server host, with verdict counts,
//! what the server offered and what the client used. Shared by `smtpscope pairs` and the TUI.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::net::IpAddr;

use serde_json::json;

use crate::ports::port_role;
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
    /// Counts a finished session in.
    pub fn add(&mut self, s: &Session) {
        if let Some(v) = s.verdict {
            *self.verdicts.entry(v).or_default() += 1;
        }
        self.ports.insert(s.server.port());
        if let Some(r) = &s.ehlo_reply {
            for e in &r.extensions {
                if e.is("STARTTLS") {
                    self.offered.insert("STARTTLS");
                } else if e.is("X-ANONYMOUSTLS") {
                    self.offered.insert("X-ANONYMOUSTLS");
                }
                if let Some(n) = NOTABLE.iter().find(|n| e.is(n)) {
                    self.extensions.insert(n);
                } else if e.is_masked() {
                    // A middlebox masked an extension (XXXXXXXA where STARTTLS was).
                    self.extensions.insert("XXXXXXXA");
                }
            }
        }
        if let Some(u) = &s.upgrade {
            *self.used.entry(u.verb.name()).or_default() += 1;
        }
        if let (Some(v), true) = (s.tls.version, s.tls_handshake()) {
            *self.tls_versions.entry(version_label(v)).or_default() += 1;
        }
    }

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
    /// The same, split by server port: Exchange runs several services per host (front end on 25,
    /// hub transport on 2525), and one row for both would hide which one spoke TLS.
    pub by_port: BTreeMap<(IpAddr, IpAddr, u16), Pair>,
}

fn port_cell(port: u16) -> String {
    match port_role(port) {
        Some(r) => format!("{port} {r}"),
        None => port.to_string(),
    }
}

impl Pairs {
    /// Adds a finished session.
    pub fn add(&mut self, s: &Session) {
        self.pairs.entry((s.client.ip(), s.server.ip())).or_default().add(s);
        self.by_port.entry((s.client.ip(), s.server.ip(), s.server.port())).or_default().add(s);
    }

    /// Text table: a row per client host × server host × server port.
    pub fn text(&self) -> String {
        let mut o = String::new();
        let _ = writeln!(
            o,
            "{:<39} {:<39} {:<28} {:>5}  {:<34} {:<24} {:<18} TLS",
            "CLIENT HOST", "SERVER HOST", "PORT", "SESS", "VERDICTS", "OFFERED", "USED"
        );
        for ((c, s, port), p) in &self.by_port {
            let cells = p.cells();
            let _ = writeln!(
                o,
                "{:<39} {:<39} {:<28} {:>5}  {:<34} {:<24} {:<18} {}",
                c.to_string(),
                s.to_string(),
                port_cell(*port),
                p.sessions(),
                cells.verdicts,
                cells.offered,
                cells.used,
                cells.tls
            );
        }
        o
    }

    /// One JSON object per host pair, with the same counts per server port in `by_port`.
    pub fn json(&self) -> Vec<serde_json::Value> {
        let counts = |p: &Pair| {
            json!({
                "sessions": p.sessions(),
                "verdicts": p.verdicts.iter().map(|(v, n)| (v.name().to_string(), json!(n))).collect::<serde_json::Map<_, _>>(),
                "offered": p.offered,
                "used": p.used,
                "tls_versions": p.tls_versions,
            })
        };
        self.pairs
            .iter()
            .map(|((c, s), p)| {
                let mut v = json!({
                    "client_host": c.to_string(),
                    "server_host": s.to_string(),
                    "server_ports": p.ports,
                });
                if let (Some(o), serde_json::Value::Object(m)) = (v.as_object_mut(), counts(p)) {
                    o.extend(m);
                }
                let ports: Vec<serde_json::Value> = self
                    .by_port
                    .range((*c, *s, 0)..=(*c, *s, u16::MAX))
                    .map(|((_, _, port), pp)| {
                        let mut row = json!({ "port": port, "port_role": port_role(*port) });
                        if let (Some(o), serde_json::Value::Object(m)) = (row.as_object_mut(), counts(pp)) {
                            o.extend(m);
                        }
                        row
                    })
                    .collect();
                v["by_port"] = json!(ports);
                v
            })
            .collect()
    }
}
