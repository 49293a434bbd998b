//! `-F clickhouse`: one flat JSON object per session, for `INSERT … FORMAT JSONEachRow` into the
//! table of `docs/clickhouse/schema.sql` with no client settings. Every key is a column of that
//! table (JSONEachRow refuses unknown keys by default); scalars stay scalars, booleans are 0/1
//! (ClickHouse 18.16 has no Bool), times are `YYYY-MM-DD hh:mm:ss` UTC plus microseconds since
//! the epoch, lists of scalars are arrays, EHLO extensions and findings are `Nested` columns
//! under their flattened names, and the evidence is a JSON string.

use std::net::{IpAddr, SocketAddr};

use serde::Serialize;

use super::json::{Fields, SafeFormatter};
use super::Options;
use crate::capture::Micros;
use crate::escape::json_text;
use crate::session::Session;
use crate::tls::alert_name;

/// Latest time a `DateTime` column holds on every ClickHouse release (UInt32 seconds; kept a
/// little short of 2106 so that no release's parser wraps it).
const DATETIME_MAX: i64 = 4_291_747_199; // 2105-12-31 23:59:59

/// `YYYY-MM-DD hh:mm:ss` UTC, clamped to what a `DateTime` column can hold.
pub fn datetime(secs: i64) -> String {
    let secs = secs.clamp(0, DATETIME_MAX);
    match time::OffsetDateTime::from_unix_timestamp(secs) {
        Ok(d) => format!(
            "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
            d.year(),
            u8::from(d.month()),
            d.day(),
            d.hour(),
            d.minute(),
            d.second()
        ),
        Err(_) => "1970-01-01 00:00:00".into(),
    }
}

fn ipv4_number(a: SocketAddr) -> u32 {
    match a.ip() {
        IpAddr::V4(v4) => u32::from(v4),
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(0, u32::from),
    }
}

fn host(a: SocketAddr) -> String {
    a.ip().to_string()
}

fn flag(b: bool) -> u8 {
    u8::from(b)
}

fn micros_secs(t: Micros) -> i64 {
    t.div_euclid(1_000_000)
}

/// One row of `smtpscope.sessions`.
#[derive(Serialize)]
struct Row<'a> {
    schema_version: u32,
    sensor: &'a str,
    community_id: String,
    file: Option<&'a str>,
    interface: Option<&'a str>,
    client: String,
    client_host: String,
    client_port: u16,
    client_ipv4: u32,
    server: String,
    server_host: String,
    server_port: u16,
    server_ipv4: u32,
    first_seen: String,
    first_seen_us: i64,
    last_seen: String,
    last_seen_us: i64,
    tunnel: Option<&'static str>,
    helo: Option<String>,
    banner: Option<String>,
    ehlo_host: Option<String>,
    #[serde(rename = "ehlo_extensions.keyword")]
    ehlo_keyword: Vec<String>,
    #[serde(rename = "ehlo_extensions.params")]
    ehlo_params: Vec<String>,
    starttls_offered: Option<u8>,
    upgrade_verb: Option<&'static str>,
    starttls_sent: u8,
    starttls_reply: Option<u16>,
    tls_handshake: u8,
    tls_version: Option<String>,
    cipher: Option<String>,
    sni: Option<String>,
    alpn: Vec<String>,
    cert_subject: Option<&'a str>,
    cert_issuer: Option<&'a str>,
    cert_serial: Option<&'a str>,
    cert_sha1: Option<&'a str>,
    cert_sha256: Option<&'a str>,
    cert_not_before: Option<String>,
    cert_not_after: Option<String>,
    cert_sans: Vec<&'a str>,
    cert_self_signed: Option<u8>,
    cert_key_bits: Option<u32>,
    cert_signature: Option<&'a str>,
    tls_alert_name: Option<String>,
    tls_alert_level: Option<&'static str>,
    tls_alert_from: Option<&'static str>,
    mail_transactions: Option<u32>,
    messages_accepted: Option<u32>,
    rcpt_count: Option<u32>,
    mail_from: Vec<String>,
    rcpt_to: Vec<String>,
    bytes_client: u64,
    bytes_server: u64,
    clean_close: Option<u8>,
    auth_mechanisms: Vec<&'a str>,
    verdict: &'static str,
    evidence: String,
    #[serde(rename = "findings.name")]
    finding_name: Vec<&'static str>,
    #[serde(rename = "findings.text")]
    finding_text: Vec<&'a str>,
    #[serde(rename = "findings.frame")]
    finding_frame: Vec<u64>,
    capture_complete: u8,
    uses_bdat: Option<u8>,
    vlan: Option<u16>,
    packets: u64,
    retransmissions: u64,
    out_of_order: u64,
    conflicting_overlaps: u64,
    gaps: u64,
    gap_bytes: u64,
    end_reason: &'static str,
    client_closed: u8,
    server_closed: u8,
}

#[derive(Serialize)]
struct EvidenceItem<'a> {
    text: &'a str,
    frame: Option<u64>,
    dir: Option<&'static str>,
}

fn row<'a>(s: &'a Session, opts: Options) -> Row<'a> {
    let f = Fields::new(s);
    let st = &s.streams;
    let text = |b: Option<&[u8]>| b.map(json_text);
    let evidence: Vec<EvidenceItem> = s
        .evidence
        .iter()
        .map(|e| EvidenceItem { text: &e.text, frame: e.frame, dir: e.side.map(|d| d.name()) })
        .collect();
    let exts = f.ehlo_extensions().unwrap_or_default();
    let cert = s.tls.cert.as_ref();
    Row {
        schema_version: super::json::SCHEMA_VERSION,
        sensor: s.sensor.as_deref().unwrap_or_default(),
        community_id: s.community_id(),
        file: s.file.as_deref(),
        interface: s.interface.as_deref(),
        client: super::endpoint(s.client),
        client_host: host(s.client),
        client_port: s.client.port(),
        client_ipv4: ipv4_number(s.client),
        server: super::endpoint(s.server),
        server_host: host(s.server),
        server_port: s.server.port(),
        server_ipv4: ipv4_number(s.server),
        first_seen: datetime(micros_secs(s.first_seen)),
        first_seen_us: s.first_seen,
        last_seen: datetime(micros_secs(s.last_seen)),
        last_seen_us: s.last_seen,
        tunnel: s.tunnel.map(|t| t.name()),
        helo: text(f.helo()),
        banner: text(f.banner()),
        ehlo_host: text(f.ehlo_host()),
        ehlo_keyword: exts.iter().map(|e| json_text(&e.keyword)).collect(),
        ehlo_params: exts.iter().map(|e| json_text(&e.params)).collect(),
        starttls_offered: f.starttls_offered().map(flag),
        upgrade_verb: f.upgrade_verb(),
        starttls_sent: flag(s.upgrade.is_some()),
        starttls_reply: f.starttls_reply(),
        tls_handshake: flag(s.tls_handshake()),
        tls_version: f.tls_version(),
        cipher: f.cipher(),
        sni: text(s.tls.sni.as_deref()),
        alpn: s.tls.alpn.iter().map(|a| json_text(a)).collect(),
        cert_subject: cert.map(|c| c.subject.as_str()),
        cert_issuer: cert.map(|c| c.issuer.as_str()),
        cert_serial: cert.map(|c| c.serial.as_str()),
        cert_sha1: cert.map(|c| c.sha1.as_str()),
        cert_sha256: cert.map(|c| c.sha256.as_str()),
        cert_not_before: cert.map(|c| datetime(c.not_before)),
        cert_not_after: cert.map(|c| datetime(c.not_after)),
        cert_sans: cert.map(|c| c.sans.iter().map(String::as_str).collect()).unwrap_or_default(),
        cert_self_signed: cert.map(|c| flag(c.self_signed)),
        cert_key_bits: cert.map(|c| c.key_bits),
        cert_signature: cert.map(|c| c.signature.as_str()),
        tls_alert_name: s.tls.alert.map(|a| alert_name(a.description)),
        tls_alert_level: s.tls.alert.map(|a| if a.level == 2 { "fatal" } else { "warning" }),
        tls_alert_from: s.tls.alert.map(|a| a.side.name()),
        mail_transactions: f.mail_transactions(),
        messages_accepted: f.messages_accepted(),
        rcpt_count: f.rcpt_count(),
        mail_from: f.mail_from(opts, json_text).unwrap_or_default(),
        rcpt_to: f.rcpt_to(opts, json_text).unwrap_or_default(),
        bytes_client: s.wire_bytes[0],
        bytes_server: s.wire_bytes[1],
        clean_close: f.clean_close().map(flag),
        auth_mechanisms: f.auth_mechanisms().unwrap_or_default().iter().map(String::as_str).collect(),
        verdict: s.verdict.map_or("incomplete", |v| v.name()),
        evidence: serde_json::to_string(&evidence).unwrap_or_default(),
        finding_name: s.findings.iter().map(|x| x.name).collect(),
        finding_text: s.findings.iter().map(|x| x.text.as_str()).collect(),
        finding_frame: s.findings.iter().map(|x| x.frame.unwrap_or(0)).collect(),
        capture_complete: flag(f.capture_complete()),
        uses_bdat: f.uses_bdat().map(flag),
        vlan: s.vlan,
        packets: s.packets,
        retransmissions: st[0].retransmissions + st[1].retransmissions,
        out_of_order: st[0].out_of_order + st[1].out_of_order,
        conflicting_overlaps: st[0].conflicting_overlaps + st[1].conflicting_overlaps,
        gaps: st[0].gaps + st[1].gaps,
        gap_bytes: st[0].gap_bytes + st[1].gap_bytes,
        end_reason: s.end.name(),
        client_closed: flag(s.client_closed),
        server_closed: flag(s.server_closed),
    }
}

/// Writes the row for a session (without the line end), escaped as the NDJSON writer escapes.
pub fn write_row(out: &mut Vec<u8>, s: &Session, opts: Options) {
    let mut ser = serde_json::Serializer::with_formatter(&mut *out, SafeFormatter);
    let _ = row(s, opts).serialize(&mut ser);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datetimes_are_utc_and_clamped_to_the_column() {
        assert_eq!(datetime(1_795_346_575), "2026-11-22 11:22:55");
        assert_eq!(datetime(-5), "1970-01-01 00:00:00");
        assert_eq!(datetime(253_402_300_799), "2105-12-31 23:59:59");
    }
}
