//! Server-log sessions as rows of the terminal UI (`smtpscope logs`). A log record becomes a
//! session row that carries the record itself ([`Session::from_log`]), so the store, the view,
//! sorting, the filter bar and the exports take log sessions as they take wire sessions; what
//! the columns and the detail tabs show of such a row is read from the record here. Log text is
//! valid UTF-8 with invalid bytes already written as `\xNN` (and its evidence masked as the
//! reader was asked), so it is defused; logged lines are masked here, as on the Log tab of a
//! wire session.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};

use super::detail::{field, logged_line, pair, rule, thousands, EvidenceItem, EvidenceKind, Look};
use super::store::Column;
use crate::escape::defuse;
use crate::logs::{Endpoint, LogRecord};
use crate::report::rfc3339;
use crate::session::{Finding, Session, Side};

/// `r` as a row whose session id is `id`. The row's client and server are the logged ones
/// where the log names them (port 0 where it has none), `0.0.0.0:0` otherwise: they only order
/// rows, while what is shown and filtered is read from the record.
pub fn row(r: LogRecord, id: u64) -> Session {
    let addr = |e: Option<Endpoint>| {
        e.map_or(SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0), |e| SocketAddr::new(e.ip, e.port.unwrap_or(0)))
    };
    let mut s = Session::new(addr(r.client), addr(r.server));
    s.id = id;
    s.first_seen = r.first_seen;
    s.last_seen = r.last_seen;
    s.verdict = Some(r.verdict);
    // The FINDINGS column, its colours and its sort read the session's findings.
    s.findings = r.findings.clone();
    s.from_log = Some(Box::new(r));
    s
}

/// The TLS version the log names (`TLS1.2` → 0x0303), for the TLS column and its sort.
pub fn tls_version(r: &LogRecord) -> Option<u16> {
    crate::session::tls_version_number(r.tls_version.as_deref()?)
}

fn endpoint(e: Option<Endpoint>) -> String {
    e.map_or_else(|| "-".into(), |e| e.to_string())
}

/// A log session's cell (the TIME column is the table's own: its width depends on the rows).
pub fn cell(col: Column, r: &LogRecord) -> String {
    match col {
        Column::Time => rfc3339(r.first_seen),
        Column::Source => r.source.name().into(),
        Column::Client => endpoint(r.client),
        Column::Server => r.server.map_or_else(|| "-".into(), |e| e.ip.to_string()),
        Column::Port => r.server.and_then(|e| e.port).map_or_else(|| "-".into(), |p| p.to_string()),
        Column::Helo => r.helo.as_deref().filter(|h| !h.is_empty()).map_or_else(|| "-".into(), defuse),
        Column::Verdict => r.verdict.name().into(),
        Column::Tls => r.tls_version.as_deref().map_or_else(|| "-".into(), defuse),
        Column::Findings => {
            if r.findings.is_empty() {
                "-".into()
            } else {
                let names: Vec<&str> = r.findings.iter().map(|f| crate::report::finding::short(f.name)).collect();
                names.join(",")
            }
        }
        // A log counts neither accepted messages nor bytes, names no sensor and is not compared
        // with itself.
        Column::Msgs | Column::Bytes | Column::Sensor | Column::Log => "-".into(),
    }
}

/// The detail pane's first line: who, what, when, and which log.
pub fn summary_line(r: &LogRecord, look: &Look) -> Line<'static> {
    let th = look.theme;
    let when = rfc3339(r.first_seen).replacen('T', " ", 1);
    let when = when.trim_end_matches('Z').to_string();
    Line::from(vec![
        Span::styled(
            format!("{} → {}", endpoint(r.client), endpoint(r.server)),
            Style::new().add_modifier(Modifier::BOLD),
        ),
        Span::raw("  "),
        Span::styled(r.verdict.name(), th.verdict(r.verdict)),
        Span::styled(
            format!("  {when} · {} log session · {} logged line(s)", r.source.name(), thousands(r.lines.len() as u64)),
            th.dim(),
        ),
    ])
}

/// Tab 1 of a log session: there is no dialogue to show, and where its lines are.
pub fn no_transcript(look: &Look) -> Vec<Line<'static>> {
    vec![
        Line::styled("a log session carries no transcript: this row is the server's log, not a capture", look.theme.dim()),
        Line::styled("its logged lines are on the Log tab (5); to see the dialogue on the wire beside them, capture the traffic and run smtpscope -r CAPTURE --logs LOG", look.theme.dim()),
    ]
}

/// Tab 4 of a log session: there are no packets.
pub fn no_packets() -> &'static str {
    "a log session carries no packets: this row is the server's log, not a capture; to see the packets beside the log, capture the traffic and run smtpscope -r CAPTURE --logs LOG"
}

/// Tab 5 of a log session: the session as its log names it (file, session id, verdict and its
/// reason, endpoints, HELO) and its logged lines, masked unless asked.
pub fn log(r: &LogRecord, look: &Look, show_credentials: bool) -> Vec<Line<'static>> {
    let th = look.theme;
    let mut out = vec![rule(&format!("{} · log session", r.source.name()), look.width, th.heading())];
    out.push(pair("Log file", defuse(&r.log_file), look));
    out.push(pair("Session", defuse(&r.log_session), look));
    out.push(Line::from(vec![
        Span::styled(format!("{:<14}", "Log verdict"), th.heading()),
        Span::styled(r.verdict.name(), th.verdict(r.verdict)),
        Span::raw(r.evidence.first().map(|e| format!(" — {}", defuse(&e.text))).unwrap_or_default()),
    ]));
    out.push(pair("Client", endpoint(r.client), look));
    let server = match (r.server, &r.process) {
        (Some(e), _) => e.to_string(),
        (None, Some(p)) => format!("- (not logged by {}; --log-server NAME=ADDR[:PORT] names it)", defuse(p)),
        (None, None) => "-".into(),
    };
    out.push(pair("Server", server, look));
    out.push(pair("HELO", r.helo.as_deref().map_or_else(|| "-".into(), defuse), look));
    out.push(pair("First seen", rfc3339(r.first_seen), look));
    out.push(pair("Last seen", rfc3339(r.last_seen), look));
    let kept = if r.lines.len() >= crate::logs::record::MAX_LINES {
        format!("{} logged line(s), the first ones kept", r.lines.len())
    } else {
        format!("{} logged line(s)", r.lines.len())
    };
    out.push(rule(&kept, look.width, th.dim()));
    for line in &r.lines {
        out.push(logged_line(line, look, show_credentials));
    }
    out
}

/// Tab 2 of a log session: the upgrade and TLS as the log shows them, and the certificate
/// where the log names it (Exchange does, Postfix does not).
pub fn tls(r: &LogRecord, findings: &[Finding], look: &Look) -> Vec<Line<'static>> {
    let th = look.theme;
    let mut out = Vec::new();
    let line_of = |l: Option<u64>| l.map(|l| format!(" (line {l})")).unwrap_or_default();
    let upgrade = match (r.upgrade_verb, r.upgrade_reply) {
        (Some(v), Some(code)) => format!("{}{} answered {code}", v.name(), line_of(r.upgrade_line)),
        (Some(v), None) => format!("{}{}, its reply not logged", v.name(), line_of(r.upgrade_line)),
        (None, _) if r.implicit_tls => "none: TLS from the first byte (wrapper mode)".into(),
        (None, _) => "none logged".into(),
    };
    out.push(pair("Upgrade", upgrade, look));
    let offered = match r.starttls_offered {
        Some(true) => "offered in the first EHLO reply",
        Some(false) => "not offered in the first EHLO reply",
        None => "not logged (Postfix smtpd does not log its own offer)",
    };
    out.push(pair("Offer", offered, look));
    if !r.tls_ok() {
        out.push(Line::raw(""));
        let why = match r.failure_line {
            Some(l) => format!("The log shows the TLS handshake failing (line {l})."),
            None => "The log shows no TLS in this session.".into(),
        };
        out.push(Line::styled(why, th.warn()));
    } else {
        let version = r.tls_version.as_deref().map_or_else(|| "version not logged".into(), defuse);
        out.push(pair("TLS", format!("{version}{}", line_of(r.tls_line)), look));
        out.push(pair("Cipher", r.cipher.as_deref().map_or_else(|| "not logged".into(), defuse), look));
    }
    out.push(Line::raw(""));
    match &r.cert {
        Some(c) => {
            out.push(Line::from(vec![
                Span::styled("Sending certificate", th.heading()),
                Span::styled("   as logged", th.dim()),
            ]));
            let v = |x: &Option<String>| x.as_deref().map_or_else(|| "not logged".into(), defuse);
            out.push(field("Certificate subject", v(&c.subject), look));
            out.push(field("Certificate issuer name", v(&c.issuer), look));
            out.push(field("Certificate serial number", v(&c.serial).to_ascii_uppercase(), look));
            out.push(field("Certificate thumbprint", v(&c.sha1).to_ascii_uppercase(), look));
            let sans = c
                .sans
                .as_ref()
                .map_or_else(|| "not logged".into(), |s| s.iter().map(|n| defuse(n)).collect::<Vec<_>>().join(", "));
            out.push(field("Certificate subject alternate names", sans, look));
            out.push(field("Certificate valid from", v(&c.not_before), look));
            out.push(field("Certificate valid until", v(&c.not_after), look));
        }
        None => out.push(Line::from(vec![
            Span::styled("Sending certificate", th.heading()),
            Span::styled("   not in the log", th.dim()),
        ])),
    }
    super::detail::certificate_warnings(findings, &mut out, look);
    out
}

/// Tab 3 of a log session: the verdict's reason (the record's first evidence item), what the
/// log showed in order, then the findings; each numbered by its line in the log file.
pub fn evidence_items(r: &LogRecord) -> Vec<EvidenceItem> {
    let mut out = Vec::new();
    for (i, e) in r.evidence.iter().enumerate() {
        let kind = if i == 0 { EvidenceKind::Reason } else { EvidenceKind::Seen };
        out.push(EvidenceItem { kind, text: defuse(&e.text), frame: Some(e.line), side: None });
    }
    for f in &r.findings {
        out.push(EvidenceItem {
            kind: EvidenceKind::Finding,
            text: format!("{}: {}", f.name, defuse(&f.text)),
            frame: f.frame,
            side: None::<Side>,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn record() -> LogRecord {
        let mut r = LogRecord::new(
            crate::logs::Source::PostfixSmtpd,
            Arc::from("mail.log"),
            "mx/postfix/smtpd[7]@3".into(),
            5,
            3,
        );
        r.client = Some(Endpoint { ip: "192.0.2.7".parse().unwrap(), port: None });
        r.helo = Some("a.example".into());
        r.keep("Dec  7 01:40:00 mx postfix/smtpd[7]: connect from a.example[192.0.2.7]");
        r.closed = true;
        r.judge();
        r
    }

    #[test]
    fn a_row_carries_its_record_and_shows_what_the_log_does_not_name_as_a_dash() {
        let s = row(record(), 42);
        assert_eq!((s.id, s.verdict), (42, Some(crate::session::Verdict::Plaintext)));
        let r = s.from_log.as_deref().unwrap();
        assert_eq!(cell(Column::Client, r), "192.0.2.7");
        assert_eq!((cell(Column::Server, r), cell(Column::Port, r)), ("-".into(), "-".into()));
        assert_eq!(cell(Column::Source, r), "postfix-smtpd");
        assert_eq!(cell(Column::Bytes, r), "-");
    }

    #[test]
    fn the_row_survives_packing_with_its_record() {
        let s = row(record(), 1);
        let mut buf = Vec::new();
        ciborium::into_writer(&s, &mut buf).unwrap();
        let back: Session = ciborium::from_reader(buf.as_slice()).unwrap();
        let r = back.from_log.unwrap();
        assert_eq!(r.lines, record().lines);
        assert_eq!(r.client, record().client);
    }
}
