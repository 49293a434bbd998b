//! Who speaks TLS to whom: sessions grouped by client host × server host, with verdict counts,
//! what the server offered and what the client used. Shared by `smtpscope pairs` and the TUI.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::net::IpAddr;

use serde_json::json;

use crate::ports::{port_role, shows_exchange};
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
    /// Sessions per finding name.
    pub findings: BTreeMap<&'static str, u64>,
    /// Sessions per sensor that saw them (records of several sites read together).
    pub sensors: BTreeMap<String, u64>,
    /// A server of the pair showed Exchange (banner or Exchange-only verbs): its ports take
    /// Exchange's role names.
    pub exchange: bool,
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
    /// Findings by short name, with counts.
    pub findings: String,
}

impl Pair {
    /// Counts a finished session in.
    pub fn add(&mut self, s: &Session) {
        if let Some(v) = s.verdict {
            *self.verdicts.entry(v).or_default() += 1;
        }
        if let Some(name) = &s.sensor {
            match self.sensors.get_mut(name.as_ref()) {
                Some(n) => *n += 1,
                None => {
                    self.sensors.insert(name.to_string(), 1);
                }
            }
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
        for f in &s.findings {
            *self.findings.entry(f.name).or_default() += 1;
        }
        self.exchange |= shows_exchange(s);
    }

    /// Findings in the order of the findings list (stable names), with counts.
    fn findings_ordered(&self) -> Vec<(&'static str, u64)> {
        crate::session::FINDINGS.iter().filter_map(|f| self.findings.get_key_value(f).map(|(k, n)| (*k, *n))).collect()
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
            findings: dash(
                self.findings_ordered()
                    .iter()
                    .map(|(f, n)| format!("{} {n}", super::finding::short(f)))
                    .collect::<Vec<_>>()
                    .join(", "),
            ),
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

fn port_cell(port: u16, exchange: bool) -> String {
    match port_role(port, exchange) {
        Some(r) => format!("{port} {r}"),
        None => port.to_string(),
    }
}

/// Widest line of the text table when it can be helped: verdicts take short names beyond it.
const TEXT_WIDTH: usize = 120;

impl Pairs {
    /// Adds a finished session.
    pub fn add(&mut self, s: &Session) {
        self.pairs.entry((s.client.ip(), s.server.ip())).or_default().add(s);
        self.by_port.entry((s.client.ip(), s.server.ip(), s.server.port())).or_default().add(s);
    }

    /// Text table: a row per client host × server host × server port, columns as wide as their
    /// values, within 120 columns where the values allow (nothing is cut: the verdicts take short
    /// names first).
    pub fn text(&self) -> String {
        let titles = ["CLIENT HOST", "SERVER HOST", "PORT", "SESS", "VERDICTS", "OFFERED", "USED", "TLS", "FINDINGS"];
        let rows = |short: bool| -> Vec<[String; 9]> {
            self.by_port
                .iter()
                .map(|((c, s, port), p)| {
                    let cells = p.cells();
                    let verdicts: Vec<String> = p
                        .verdicts
                        .iter()
                        .map(|(v, n)| format!("{} {n}", if short { v.short_name() } else { v.name() }))
                        .collect();
                    [
                        c.to_string(),
                        s.to_string(),
                        port_cell(*port, p.exchange),
                        p.sessions().to_string(),
                        verdicts.join(", "),
                        cells.offered,
                        cells.used,
                        cells.tls,
                        cells.findings,
                    ]
                })
                .collect()
        };
        let widths = |rows: &[[String; 9]]| -> [usize; 9] {
            let mut w = titles.map(str::len);
            for r in rows {
                for (w, cell) in w.iter_mut().zip(r) {
                    *w = (*w).max(cell.chars().count());
                }
            }
            w
        };
        // What a row needs before its findings (they wrap at commas), and the longest finding.
        let longest = |rows: &[[String; 9]]| {
            rows.iter().flat_map(|r| r[8].split(", ")).map(|f| f.chars().count() + 1).max().unwrap_or(0)
        };
        let total = |w: &[usize; 9], rows: &[[String; 9]]| {
            w.iter().take(8).sum::<usize>() + 8 + longest(rows).max(titles[8].len())
        };
        let mut table = rows(false);
        let mut w = widths(&table);
        if total(&w, &table) > TEXT_WIDTH {
            table = rows(true);
            w = widths(&table);
        }
        // FINDINGS comes last and wraps at its commas under its own column, so a row with several
        // findings does not push the table past the width.
        let start = w.iter().take(8).sum::<usize>() + 8;
        let room = TEXT_WIDTH.saturating_sub(start).max(titles[8].len());
        let mut o = String::new();
        let line = |o: &mut String, cells: [&str; 9]| {
            let mut l = String::new();
            for (i, (cell, width)) in cells.iter().zip(w).enumerate().take(8) {
                if i > 0 {
                    l.push(' ');
                }
                // SESS is a count: right-aligned.
                if i == 3 {
                    let _ = write!(l, "{cell:>width$}");
                } else {
                    let _ = write!(l, "{cell:<width$}");
                }
            }
            let mut parts: Vec<String> = Vec::new();
            for item in cells[8].split(", ") {
                match parts.last_mut() {
                    Some(last) if last.chars().count() + 2 + item.chars().count() <= room => {
                        last.push_str(", ");
                        last.push_str(item);
                    }
                    _ => parts.push(item.to_string()),
                }
            }
            let n = parts.len();
            for (k, part) in parts.iter().enumerate() {
                let more = if k + 1 < n { "," } else { "" };
                if k == 0 {
                    let _ = writeln!(o, "{l} {part}{more}");
                } else {
                    let _ = writeln!(o, "{:start$}{part}{more}", "");
                }
            }
        };
        line(&mut o, titles);
        for r in &table {
            line(&mut o, [&r[0], &r[1], &r[2], &r[3], &r[4], &r[5], &r[6], &r[7], &r[8]].map(String::as_str));
        }
        o
    }

    /// CSV: a row per client host × server host × server port, a column per verdict and per
    /// finding (counts), cells defused against spreadsheet formulas.
    pub fn csv(&self) -> std::io::Result<Vec<u8>> {
        let mut w = ::csv::Writer::from_writer(Vec::new());
        let mut header: Vec<String> =
            ["client_host", "server_host", "server_port", "port_role", "sessions"].map(String::from).to_vec();
        header.extend(Verdict::ALL.iter().map(|v| v.name().to_string()));
        header.extend(["offered", "used", "tls_versions", "sensors"].map(String::from));
        header.extend(crate::session::FINDINGS.iter().map(|f| format!("finding:{f}")));
        w.write_record(&header)?;
        for ((c, s, port), p) in &self.by_port {
            let mut row = vec![
                c.to_string(),
                s.to_string(),
                port.to_string(),
                port_role(*port, p.exchange).unwrap_or_default().to_string(),
                p.sessions().to_string(),
            ];
            row.extend(Verdict::ALL.iter().map(|v| p.verdicts.get(v).copied().unwrap_or(0).to_string()));
            let counts = |m: &BTreeMap<&str, u64>| m.iter().map(|(k, n)| format!("{k} {n}")).collect::<Vec<_>>();
            row.push(p.offered.iter().copied().collect::<Vec<_>>().join(" "));
            row.push(counts(&p.used).join(", "));
            row.push(p.tls_versions.iter().map(|(k, n)| format!("{k} {n}")).collect::<Vec<_>>().join(", "));
            row.push(p.sensors.iter().map(|(k, n)| format!("{k} {n}")).collect::<Vec<_>>().join(", "));
            row.extend(crate::session::FINDINGS.iter().map(|f| p.findings.get(f).copied().unwrap_or(0).to_string()));
            w.write_record(row.iter().map(|c| crate::escape::csv_cell(c)))?;
        }
        w.into_inner().map_err(|e| e.into_error())
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
                "sensors": p.sensors,
                "findings": p.findings_ordered().into_iter().map(|(f, n)| (f.to_string(), json!(n))).collect::<serde_json::Map<_, _>>(),
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
                        let mut row = json!({ "port": port, "port_role": port_role(*port, pp.exchange) });
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
