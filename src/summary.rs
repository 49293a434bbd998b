//! The run summary: what was read, what was reported, what went wrong — on stderr or as JSON.

use std::fmt::Write as _;

use serde_json::{json, Value};

use crate::engine::Stats;
use crate::flow::TableStats;
use crate::session::{Verdict, FINDINGS};

/// One input's end state.
#[derive(Debug, Clone)]
pub struct SourceSummary {
    /// File name or interface.
    pub name: String,
    /// Packets read.
    pub packets: u64,
    /// Truncation or read error, if the input ended early.
    pub error: Option<String>,
}

/// Everything the summary reports.
#[derive(Debug, Clone)]
pub struct Summary {
    /// Inputs.
    pub sources: Vec<SourceSummary>,
    /// Engine counters.
    pub stats: Stats,
    /// Flow-table counters.
    pub table: TableStats,
    /// Kernel/libpcap drops (live).
    pub dropped: Option<u64>,
    /// The sensor's name (`--sensor`, else the host name when live).
    pub sensor: Option<String>,
    /// Failed writes of `--output` records.
    pub output_errors: u64,
    /// The log side of a run with `--logs` (files, line problems, cross-check counts), as the
    /// front end that read the logs put it; the key is absent from runs without logs.
    pub logs: Option<Value>,
}

impl Summary {
    /// No packet could be read from any input and every input failed.
    pub fn nothing_read(&self) -> bool {
        !self.sources.is_empty() && self.sources.iter().all(|s| s.error.is_some() && s.packets == 0)
    }

    /// JSON form (`--summary FILE`).
    pub fn to_json(&self) -> Value {
        let s = &self.stats;
        let mut v = json!({
            "sources": self.sources.iter().map(|x| json!({"name": x.name, "packets": x.packets, "error": x.error})).collect::<Vec<_>>(),
            "packets": s.packets,
            "bytes": s.bytes,
            "tcp_segments": s.tcp_segments,
            "sessions": s.verdicts.values().sum::<u64>(),
            "verdicts": Verdict::ALL.iter().map(|v| (v.name().to_string(), json!(s.verdicts.get(v).copied().unwrap_or(0)))).collect::<serde_json::Map<_, _>>(),
            "findings": FINDINGS.iter().map(|f| (f.to_string(), json!(s.findings.get(f).copied().unwrap_or(0)))).collect::<serde_json::Map<_, _>>(),
            "undecodable": s.undecodable.iter().map(|(k, v)| (k.name().to_string(), json!(v))).collect::<serde_json::Map<_, _>>(),
            "flows": self.table.flows,
            "peak_flows": self.table.peak_flows,
            "evicted_flows": self.table.evicted,
            "late_packets": self.table.late_packets,
            "payloadless_mail_flows": s.payloadless_mail_flows,
            "gaps": s.gaps,
            "retransmissions": s.retransmissions,
            "conflicting_overlaps": s.conflicting_overlaps,
            "reassembly_overflows": s.buffer_overflows,
            "reassembly_budget_releases": s.held_releases,
            "long_lines": s.long_lines,
            "malformed_replies": s.malformed_replies,
            "kernel_drops": self.dropped,
            "sensor": self.sensor,
            "output_errors": self.output_errors,
        });
        if let (Some(logs), Some(map)) = (&self.logs, v.as_object_mut()) {
            map.insert("logs".into(), logs.clone());
        }
        v
    }

    /// Human form for stderr.
    pub fn to_text(&self) -> String {
        let s = &self.stats;
        let mut o = String::new();
        let sessions: u64 = s.verdicts.values().sum();
        let _ = writeln!(o, "smtpscope: {} packets, {} bytes, {} SMTP session(s)", s.packets, s.bytes, sessions);
        let per: Vec<String> =
            Verdict::ALL.iter().filter_map(|v| s.verdicts.get(v).map(|n| format!("{} {n}", v.name()))).collect();
        if !per.is_empty() {
            let _ = writeln!(o, "  verdicts: {}", per.join(", "));
        }
        // In the order of the findings list, with the names the `finding:` filter takes.
        let per: Vec<String> = FINDINGS.iter().filter_map(|f| s.findings.get(f).map(|n| format!("{f} {n}"))).collect();
        if !per.is_empty() {
            let _ = writeln!(o, "  finding: {}", per.join(", "));
        }
        if !s.undecodable.is_empty() {
            let per: Vec<String> = s.undecodable.iter().map(|(k, v)| format!("{} {v}", k.name())).collect();
            let _ = writeln!(o, "  not decoded to TCP: {}", per.join(", "));
        }
        let t = &self.table;
        let _ = writeln!(
            o,
            "  flows {} (peak {}), evicted {}, late packets {}, payload-less mail-port flows {}",
            t.flows, t.peak_flows, t.evicted, t.late_packets, s.payloadless_mail_flows
        );
        let _ = writeln!(
            o,
            "  reassembly: gaps {}, retransmissions {}, conflicting overlaps {}, overflows {} ({} at the total budget); long lines {}, malformed replies {}",
            s.gaps,
            s.retransmissions,
            s.conflicting_overlaps,
            s.buffer_overflows,
            s.held_releases,
            s.long_lines,
            s.malformed_replies
        );
        if let Some(d) = self.dropped {
            let _ = writeln!(o, "  dropped by kernel/libpcap: {d}");
        }
        if self.output_errors > 0 {
            let _ = writeln!(o, "  failed --output writes: {}", self.output_errors);
        }
        o
    }
}
