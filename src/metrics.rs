//! Prometheus / OpenMetrics for a sensor: `--metrics [ADDR:]PORT` serves `/metrics` (404 for
//! anything else) from a thread of its own. Counters count every session the engine reports,
//! whatever a display filter keeps; no client address is ever a label.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Registry;
use thiserror::Error;

use crate::session::{tls_version_name, Session};

/// Most certificate series kept by default (`--metrics-max-certs`).
pub const DEFAULT_MAX_CERTS: usize = 1000;
/// A certificate series not seen for this long is dropped.
pub const CERT_FORGET_SECS: i64 = 30 * 86_400;

/// The OpenMetrics content type served.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SessionLabels {
    verdict: String,
    port: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FindingLabels {
    finding: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct VersionLabels {
    version: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CheckLabels {
    rule: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CertLabels {
    server: String,
    port: String,
    sha1: String,
    subject: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabels {
    version: String,
    sensor: String,
}

type FloatGauge = Gauge<f64, std::sync::atomic::AtomicU64>;

/// Run-wide figures a tick hands over (the engine's counters, the kernel's drops).
#[derive(Debug, Clone, Copy, Default)]
pub struct Figures {
    /// Packets read.
    pub packets: u64,
    /// Bytes on the wire.
    pub bytes: u64,
    /// Kernel/libpcap drops so far.
    pub kernel_drops: u64,
    /// Flows open now.
    pub flows_open: u64,
    /// Flows evicted so far.
    pub flows_evicted: u64,
    /// Reassembly gaps so far.
    pub gaps: u64,
    /// Timestamp of the latest packet (µs since the epoch; 0 before the first).
    pub last_packet_us: i64,
}

/// Raises a counter to a running total taken from elsewhere.
fn raise(c: &Counter, total: u64) {
    let now = c.get();
    if total > now {
        c.inc_by(total - now);
    }
}

/// Every metric smtpscope exports.
pub struct Metrics {
    registry: Registry,
    mail_ports: Vec<u16>,
    sessions: Family<SessionLabels, Counter>,
    findings: Family<FindingLabels, Counter>,
    tls: Family<VersionLabels, Counter>,
    check: Family<CheckLabels, Counter>,
    packets: Counter,
    bytes: Counter,
    kernel_drops: Counter,
    flows_open: Gauge,
    flows_evicted: Counter,
    gaps: Counter,
    output_errors: Counter,
    last_packet: FloatGauge,
    cert_not_after: Family<CertLabels, Gauge>,
    cert_last_seen: Family<CertLabels, Gauge>,
    /// Certificate series and when each was last seen (seconds), to bound and age them.
    certs: Mutex<HashMap<CertLabels, i64>>,
    max_certs: usize,
}

impl Metrics {
    /// The metrics of a run by `sensor` (its name, if any), with `mail_ports` for the `port`
    /// label and at most `max_certs` certificate series.
    pub fn new(sensor: Option<&str>, mail_ports: &[u16], max_certs: usize) -> Self {
        let mut registry = Registry::default();
        let sessions = Family::<SessionLabels, Counter>::default();
        registry.register("smtpscope_sessions", "SMTP sessions reported, by verdict and server port", sessions.clone());
        let findings = Family::<FindingLabels, Counter>::default();
        registry.register("smtpscope_findings", "Findings in reported sessions", findings.clone());
        let tls = Family::<VersionLabels, Counter>::default();
        registry.register("smtpscope_tls_sessions", "Sessions with a TLS handshake, by version", tls.clone());
        let check = Family::<CheckLabels, Counter>::default();
        registry.register("smtpscope_check_sessions", "Sessions judged by check, by rule and outcome", check.clone());
        let packets = Counter::default();
        registry.register("smtpscope_packets", "Packets read", packets.clone());
        let bytes = Counter::default();
        registry.register("smtpscope_bytes", "Bytes on the wire read", bytes.clone());
        let kernel_drops = Counter::default();
        registry.register("smtpscope_kernel_drops", "Packets dropped by the kernel or libpcap", kernel_drops.clone());
        let flows_open = Gauge::default();
        registry.register("smtpscope_flows_open", "TCP flows held now", flows_open.clone());
        let flows_evicted = Counter::default();
        registry.register("smtpscope_flows_evicted", "TCP flows evicted from a full table", flows_evicted.clone());
        let gaps = Counter::default();
        registry.register("smtpscope_reassembly_gaps", "Holes in reassembled TCP streams", gaps.clone());
        let output_errors = Counter::default();
        registry.register("smtpscope_output_errors", "Failed writes of --output records", output_errors.clone());
        let last_packet = FloatGauge::default();
        registry.register(
            "smtpscope_last_packet_timestamp_seconds",
            "Timestamp of the latest packet read",
            last_packet.clone(),
        );
        let build = Info::new(BuildLabels {
            version: env!("CARGO_PKG_VERSION").to_string(),
            sensor: sensor.unwrap_or_default().to_string(),
        });
        registry.register("smtpscope_build", "smtpscope's version and the sensor name", build);
        let cert_not_after = Family::<CertLabels, Gauge>::default();
        registry.register(
            "smtpscope_certificate_not_after_seconds",
            "Expiry of server certificates seen in clear (TLS 1.2 and older)",
            cert_not_after.clone(),
        );
        let cert_last_seen = Family::<CertLabels, Gauge>::default();
        registry.register(
            "smtpscope_certificate_last_seen_timestamp_seconds",
            "When each server certificate was last seen",
            cert_last_seen.clone(),
        );
        Self {
            registry,
            mail_ports: mail_ports.to_vec(),
            sessions,
            findings,
            tls,
            check,
            packets,
            bytes,
            kernel_drops,
            flows_open,
            flows_evicted,
            gaps,
            output_errors,
            last_packet,
            cert_not_after,
            cert_last_seen,
            certs: Mutex::new(HashMap::new()),
            max_certs,
        }
    }

    /// The `port` label: the server port when it is a mail port, else `other`.
    fn port_label(&self, port: u16) -> String {
        if self.mail_ports.contains(&port) {
            port.to_string()
        } else {
            "other".to_string()
        }
    }

    /// Counts a reported session.
    pub fn session(&self, s: &Session) {
        let Some(v) = s.verdict else { return };
        let port = self.port_label(s.server.port());
        self.sessions.get_or_create(&SessionLabels { verdict: v.name().to_string(), port: port.clone() }).inc();
        for f in &s.findings {
            self.findings.get_or_create(&FindingLabels { finding: f.name.to_string() }).inc();
        }
        if let Some(name) = s.tls.version.filter(|_| s.tls_handshake()).and_then(tls_version_name) {
            self.tls.get_or_create(&VersionLabels { version: name.to_string() }).inc();
        }
        if let Some(c) = &s.tls.cert {
            let labels = CertLabels {
                server: s.server.ip().to_string(),
                port,
                sha1: c.sha1.clone(),
                subject: c.subject.clone(),
            };
            let seen = s.last_seen.div_euclid(1_000_000);
            self.cert_not_after.get_or_create(&labels).set(c.not_after);
            self.cert_last_seen.get_or_create(&labels).set(seen);
            if let Ok(mut certs) = self.certs.lock() {
                certs.insert(labels, seen);
                self.trim_certs(&mut certs, seen);
            }
        }
    }

    /// Drops certificate series unseen for 30 days, then the least recently seen past the cap.
    fn trim_certs(&self, certs: &mut HashMap<CertLabels, i64>, now: i64) {
        let old: Vec<CertLabels> =
            certs.iter().filter(|(_, t)| now - **t > CERT_FORGET_SECS).map(|(l, _)| l.clone()).collect();
        for l in old {
            self.forget(certs, &l);
        }
        while certs.len() > self.max_certs {
            let Some(oldest) = certs.iter().min_by_key(|(_, t)| **t).map(|(l, _)| l.clone()) else { break };
            self.forget(certs, &oldest);
        }
    }

    fn forget(&self, certs: &mut HashMap<CertLabels, i64>, l: &CertLabels) {
        certs.remove(l);
        self.cert_not_after.remove(l);
        self.cert_last_seen.remove(l);
    }

    /// Counts a check outcome (`pass`, `pass-with-warning`, `violation`, `unproven`, `ignored`)
    /// under its rule.
    pub fn check_outcome(&self, rule: &str, outcome: &str) {
        self.check.get_or_create(&CheckLabels { rule: rule.to_string(), outcome: outcome.to_string() }).inc();
    }

    /// Counts a failed `--output` write.
    pub fn output_error(&self) {
        self.output_errors.inc();
    }

    /// Brings the run-wide figures up to date.
    pub fn figures(&self, f: &Figures) {
        raise(&self.packets, f.packets);
        raise(&self.bytes, f.bytes);
        raise(&self.kernel_drops, f.kernel_drops);
        raise(&self.flows_evicted, f.flows_evicted);
        raise(&self.gaps, f.gaps);
        self.flows_open.set(i64::try_from(f.flows_open).unwrap_or(i64::MAX));
        if f.last_packet_us > 0 {
            self.last_packet.set(f.last_packet_us as f64 / 1e6);
        }
    }

    /// The exposition, in the OpenMetrics text format.
    pub fn encode(&self) -> String {
        let mut out = String::with_capacity(4096);
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

/// `--metrics` problems, found before capture starts.
#[derive(Debug, Error)]
pub enum MetricsError {
    /// Not `[ADDR:]PORT`.
    #[error("--metrics '{0}': expected [ADDR:]PORT, e.g. 9464, 0.0.0.0:9464 or [::1]:9464")]
    BadAddress(String),
    /// The address is busy or cannot be bound.
    #[error("--metrics {addr}: cannot listen: {message}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        message: String,
    },
}

/// Parses `--metrics [ADDR:]PORT` (ADDR defaults to 127.0.0.1; IPv6 in brackets).
pub fn parse_listen(text: &str) -> Result<SocketAddr, MetricsError> {
    let bad = || MetricsError::BadAddress(text.to_string());
    if let Ok(port) = text.parse::<u16>() {
        return Ok(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port));
    }
    text.parse::<SocketAddr>().map_err(|_| bad())
}

/// The `/metrics` server: bound at once (before privileges are dropped), serving on a thread.
pub struct Server {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Server {
    /// Binds `addr` and serves `metrics` until dropped.
    pub fn start(addr: SocketAddr, metrics: Arc<Metrics>) -> Result<Self, MetricsError> {
        let http = tiny_http::Server::http(addr).map_err(|e| MetricsError::Bind { addr, message: e.to_string() })?;
        let addr = http.server_addr().to_ip().unwrap_or(addr);
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("smtpscope-metrics".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    let Ok(Some(req)) = http.recv_timeout(Duration::from_millis(200)) else { continue };
                    let path = req.url().split('?').next().unwrap_or_default();
                    let resp = if path == "/metrics" && matches!(req.method(), tiny_http::Method::Get) {
                        let mut r = tiny_http::Response::from_string(metrics.encode());
                        if let Ok(ct) = tiny_http::Header::from_bytes("Content-Type", CONTENT_TYPE) {
                            r = r.with_header(ct);
                        }
                        r.boxed()
                    } else {
                        tiny_http::Response::from_string("not found\n").with_status_code(404).boxed()
                    };
                    let _ = req.respond(resp);
                }
            })
            .map_err(|e| MetricsError::Bind { addr, message: e.to_string() })?;
        Ok(Self { addr, stop, thread: Some(thread) })
    }

    /// The address bound (the port chosen, for port 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::{CertInfo, Finding, Verdict};
    use std::io::{Read, Write};

    fn session(verdict: Verdict, port: u16) -> Session {
        let mut s = Session::new("10.0.0.1:40000".parse().unwrap(), SocketAddr::new("10.0.0.2".parse().unwrap(), port));
        s.verdict = Some(verdict);
        s
    }

    fn line<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
        text.lines().find(|l| l.starts_with(prefix))
    }

    #[test]
    fn sessions_are_counted_by_verdict_and_mail_port_without_client_addresses() {
        let m = Metrics::new(Some("tor-hub"), &[25, 587], 10);
        m.session(&session(Verdict::Plaintext, 25));
        m.session(&session(Verdict::Plaintext, 25));
        m.session(&session(Verdict::Starttls, 8025));
        let mut s = session(Verdict::Plaintext, 587);
        s.findings.push(Finding { name: "cleartext-auth", text: String::new(), frame: None });
        m.session(&s);
        let t = m.encode();
        assert!(t.contains("smtpscope_sessions_total{verdict=\"plaintext\",port=\"25\"} 2"), "{t}");
        assert!(t.contains("smtpscope_sessions_total{verdict=\"starttls\",port=\"other\"} 1"), "{t}");
        assert!(t.contains("smtpscope_findings_total{finding=\"cleartext-auth\"} 1"), "{t}");
        assert!(t.contains("smtpscope_build_info{version=\"") && t.contains("sensor=\"tor-hub\"} 1"), "{t}");
        assert!(!t.contains("10.0.0.1"), "a client address became a label: {t}");
        assert!(t.trim_end().ends_with("# EOF"));
    }

    #[test]
    fn running_totals_only_ever_raise_counters() {
        let m = Metrics::new(None, &[25], 10);
        m.figures(&Figures {
            packets: 10,
            kernel_drops: 3,
            flows_open: 4,
            last_packet_us: 1_500_000,
            ..Figures::default()
        });
        m.figures(&Figures { packets: 7, kernel_drops: 5, flows_open: 2, ..Figures::default() });
        let t = m.encode();
        assert_eq!(line(&t, "smtpscope_packets_total"), Some("smtpscope_packets_total 10"));
        assert_eq!(line(&t, "smtpscope_kernel_drops_total"), Some("smtpscope_kernel_drops_total 5"));
        assert_eq!(line(&t, "smtpscope_flows_open"), Some("smtpscope_flows_open 2"));
        assert_eq!(
            line(&t, "smtpscope_last_packet_timestamp_seconds"),
            Some("smtpscope_last_packet_timestamp_seconds 1.5")
        );
    }

    fn with_cert(sha1: &str, seen_secs: i64) -> Session {
        let mut s = session(Verdict::Starttls, 25);
        s.last_seen = seen_secs * 1_000_000;
        s.tls.cert = Some(Box::new(CertInfo {
            subject: "CN=mx.example".into(),
            issuer: String::new(),
            serial: String::new(),
            sha1: sha1.into(),
            sha256: String::new(),
            not_before: 0,
            not_after: 2_000_000_000,
            sans: Vec::new(),
            common_names: Vec::new(),
            self_signed: false,
            key_bits: 2048,
            key_type: "RSA",
            signature: String::new(),
            chain_len: 1,
        }));
        s
    }

    #[test]
    fn certificate_series_are_bounded_and_forgotten_after_thirty_days() {
        let m = Metrics::new(None, &[25], 2);
        m.session(&with_cert("aa", 100));
        m.session(&with_cert("bb", 200));
        m.session(&with_cert("cc", 300));
        let t = m.encode();
        assert!(!t.contains("sha1=\"aa\""), "the oldest past the cap stays: {t}");
        assert!(t.contains(
            "smtpscope_certificate_not_after_seconds{server=\"10.0.0.2\",port=\"25\",sha1=\"cc\",subject=\"CN=mx.example\"} 2000000000"
        ), "{t}");
        m.session(&with_cert("dd", 300 + CERT_FORGET_SECS + 1));
        let t = m.encode();
        assert!(!t.contains("sha1=\"bb\"") && !t.contains("sha1=\"cc\"") && t.contains("sha1=\"dd\""), "{t}");
    }

    #[test]
    fn listen_addresses_default_to_loopback() {
        assert_eq!(parse_listen("9464").unwrap(), "127.0.0.1:9464".parse().unwrap());
        assert_eq!(parse_listen("[::1]:9464").unwrap(), "[::1]:9464".parse().unwrap());
        assert_eq!(parse_listen("0.0.0.0:1").unwrap(), "0.0.0.0:1".parse().unwrap());
        assert!(parse_listen("localhost:x").is_err());
        assert!(parse_listen("99999").is_err());
    }

    fn get(addr: SocketAddr, path: &str) -> String {
        let mut c = std::net::TcpStream::connect(addr).unwrap();
        write!(c, "GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").unwrap();
        let mut s = String::new();
        c.read_to_string(&mut s).unwrap();
        s
    }

    #[test]
    fn the_server_serves_metrics_and_404_for_anything_else_and_a_busy_port_is_an_error() {
        let m = Arc::new(Metrics::new(None, &[25], 10));
        m.session(&session(Verdict::Plaintext, 25));
        let srv = Server::start("127.0.0.1:0".parse().unwrap(), Arc::clone(&m)).unwrap();
        let r = get(srv.addr(), "/metrics");
        assert!(r.starts_with("HTTP/1.1 200") || r.starts_with("HTTP/1.0 200"), "{r}");
        assert!(r.contains("application/openmetrics-text"));
        assert!(r.contains("smtpscope_sessions_total{verdict=\"plaintext\",port=\"25\"} 1"));
        let r = get(srv.addr(), "/");
        assert!(r.contains(" 404"), "{r}");
        assert!(matches!(Server::start(srv.addr(), m), Err(MetricsError::Bind { .. })));
    }
}
