//! The detail pane's content for one session, as styled lines: transcript, TLS, evidence.
//! Pure functions of the session, so tests can render them on real captures. Every wire string
//! goes through [`terminal`] before it becomes a span.

use std::fmt::Write as _;

use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};

use super::theme::Theme;
use crate::escape::{defuse, terminal};
use crate::report::{rfc3339, rfc3339_secs};
use crate::session::transcript::{BodyOutcome, Entry, Secret};
use crate::session::{address_domain, envelope_path, Finding, Kind, Session, Side};
use crate::tls::{alert_name, cipher_name, version_label};

/// How the detail pane shows things.
#[derive(Debug, Clone, Copy)]
pub struct Look {
    /// Palette.
    pub theme: Theme,
    /// Envelope addresses in full (`--show-addresses`); otherwise only their domains.
    pub show_addresses: bool,
    /// Width available, for rules.
    pub width: u16,
}

/// `48213` as `48,213`.
pub fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `TLS1.3` as `TLS 1.3` (as people write it in prose).
fn spaced(label: &str) -> String {
    match label.strip_prefix("TLS") {
        Some(v) if !v.starts_with(' ') => format!("TLS {v}"),
        _ => label.to_string(),
    }
}

/// A centred rule: `── text ──` across `width`.
pub(super) fn rule(text: &str, width: u16, style: Style) -> Line<'static> {
    let inner = format!(" {text} ");
    let w = usize::from(width);
    let len = inner.chars().count();
    let side = w.saturating_sub(len) / 2;
    let left = "─".repeat(side.max(2));
    let right = "─".repeat(w.saturating_sub(len + side).max(2));
    Line::styled(format!("{left}{inner}{right}"), style)
}

fn gutter(frame: u64, look: &Look) -> Span<'static> {
    Span::styled(if frame > 0 { format!("{frame:>6} ") } else { "       ".into() }, look.theme.dim())
}

fn side_tag(side: Side, look: &Look) -> Span<'static> {
    match side {
        Side::Client => Span::styled("C: ", look.theme.client().add_modifier(Modifier::BOLD)),
        Side::Server => Span::styled("S: ", look.theme.server().add_modifier(Modifier::BOLD)),
    }
}

/// A MAIL FROM / RCPT TO line with the address reduced to its domain unless asked otherwise.
fn envelope_safe(line: &[u8], look: &Look) -> String {
    let upper: Vec<u8> = line.iter().take(9).map(u8::to_ascii_uppercase).collect();
    if look.show_addresses || !(upper.starts_with(b"MAIL FROM") || upper.starts_with(b"RCPT TO")) {
        return terminal(line);
    }
    let path = envelope_path(line);
    if path.is_empty() || !path.contains(&b'@') {
        return terminal(line);
    }
    let start = (path.as_ptr() as usize).wrapping_sub(line.as_ptr() as usize).min(line.len());
    let end = (start + path.len()).min(line.len());
    let (before, after) = (line.get(..start).unwrap_or(&[]), line.get(end..).unwrap_or(&[]));
    format!("{}…@{}{}", terminal(before), terminal(address_domain(path)), terminal(after))
}

/// The TLS rule's words for a session: `TLS 1.3 handshake · 48,213 encrypted bytes`.
fn tls_words(s: &Session) -> String {
    let enc = s.tls.encrypted_bytes[0] + s.tls.encrypted_bytes[1];
    let hs = match (s.tls_handshake(), s.tls.version) {
        (true, Some(v)) => format!("{} handshake", spaced(&version_label(v))),
        // Both hellos seen, cut before their version (a short snaplen): still a handshake.
        (true, None) => "TLS handshake (version not captured)".into(),
        (false, _) if s.tls.client_hello.is_some() => "TLS handshake started, no ServerHello".into(),
        _ => "TLS expected, no handshake seen".into(),
    };
    format!("{hs} · {} encrypted bytes", thousands(enc))
}

/// Tab 1: the dialogue.
/// Why the Transcript tab is empty: a record read back (`-R`) carries no dialogue.
fn no_transcript(s: &Session) -> String {
    match (&s.record, s.file.as_deref()) {
        (Some(r), Some(f)) => format!(
            "read from records ({}:{}): a record carries no transcript; open the capture it came from with -r {}",
            terminal(r.path.as_bytes()),
            r.line,
            terminal(f.as_bytes())
        ),
        (Some(r), None) => format!(
            "read from records ({}:{}): a record carries no transcript (it came from a live capture)",
            terminal(r.path.as_bytes()),
            r.line
        ),
        (None, _) => "no transcript was recorded for this session".into(),
    }
}

pub fn transcript(s: &Session, look: &Look) -> Vec<Line<'static>> {
    let th = look.theme;
    if s.from_log.is_some() {
        return super::logrow::no_transcript(look);
    }
    let mut out = Vec::new();
    if s.in_progress {
        out.push(Line::styled("● in progress: the dialogue so far", th.warn()));
    }
    match s.kind {
        Kind::ImplicitTls => {
            out.push(rule(
                &format!("TLS from the first byte (implicit TLS) · {}", tls_words(s)),
                look.width,
                th.tls_rule(),
            ));
            return out;
        }
        Kind::NotSmtp => {
            out.push(Line::styled("payload on a mail port is neither SMTP nor TLS: no dialogue", th.dim()));
            return out;
        }
        Kind::Unknown => {
            out.push(Line::styled("too little payload captured to tell what the session carried", th.dim()));
            return out;
        }
        Kind::MidTls => {
            out.push(rule(
                "the capture starts inside TLS: no cleartext dialogue was captured",
                look.width,
                th.tls_rule(),
            ));
            return out;
        }
        Kind::Smtp => {}
    }
    let Some(t) = &s.transcript else {
        out.push(Line::styled(no_transcript(s), th.dim()));
        return out;
    };
    if let Some(tn) = s.tunnel {
        out.push(Line::styled(format!("        ({} preamble before SMTP)", tn.name()), th.dim()));
    }
    // Inside TLS the capture's holes say nothing about the dialogue, and a short snaplen makes
    // one per segment: they are counted on one line where the first one was.
    let tls_at = t.entries.iter().position(|e| matches!(e, Entry::TlsStart { .. }));
    let mut tls_gaps = [0u64; 2];
    for e in t.entries.iter().skip(tls_at.map_or(usize::MAX, |i| i + 1)) {
        if let Entry::Gap { side } = e {
            tls_gaps[*side as usize] += 1;
        }
    }
    let mut tls_gap_shown = false;
    for (i, e) in t.entries.iter().enumerate() {
        let in_tls = tls_at.is_some_and(|at| i > at);
        if in_tls && matches!(e, Entry::Gap { .. }) {
            if !tls_gap_shown {
                tls_gap_shown = true;
                let sides: Vec<String> = [Side::Client, Side::Server]
                    .into_iter()
                    .filter(|sd| tls_gaps[*sd as usize] > 0)
                    .map(|sd| match tls_gaps[sd as usize] {
                        1 => sd.name().to_string(),
                        n => format!("{} ×{n}", sd.name()),
                    })
                    .collect();
                out.push(rule(
                    &format!("bytes missing from the capture inside TLS ({})", sides.join(", ")),
                    look.width,
                    th.warn(),
                ));
            }
            continue;
        }
        out.push(match e {
            Entry::Command { frame, text, secret } => {
                let mut spans = vec![gutter(*frame, look), side_tag(Side::Client, look)];
                let shown = envelope_safe(&text.bytes, look);
                spans.push(Span::styled(shown, th.client()));
                match secret {
                    Some(Secret::Masked) => {
                        let sep = if text.bytes.is_empty() { "" } else { " " };
                        spans.push(Span::styled(format!("{sep}‹secret masked›"), th.warn()));
                    }
                    Some(Secret::Shown(b)) => {
                        let sep = if text.bytes.is_empty() { "" } else { " " };
                        spans.push(Span::styled(format!("{sep}{}", terminal(b)), th.error()));
                        spans.push(Span::styled("  (--show-credentials)", th.dim()));
                    }
                    None => {}
                }
                if text.cut {
                    spans.push(Span::styled(" …(line cut)", th.dim()));
                }
                Line::from(spans)
            }
            Entry::Reply { frame, code, text } => {
                let mut spans = vec![gutter(*frame, look), side_tag(Side::Server, look)];
                let raw = &text.bytes;
                if code.is_some() && raw.len() >= 3 {
                    spans.push(Span::styled(terminal(raw.get(..3).unwrap_or(&[])), th.code(*code)));
                    spans.push(Span::styled(terminal(raw.get(3..).unwrap_or(&[])), th.server()));
                } else {
                    spans.push(Span::styled(terminal(raw), th.server()));
                }
                if text.cut {
                    spans.push(Span::styled(" …(line cut)", th.dim()));
                }
                Line::from(spans)
            }
            Entry::Body { frame, bytes, ended, outcome } => {
                let what = match outcome {
                    BodyOutcome::Accepted(c) => format!("accepted ({c})"),
                    BodyOutcome::Rejected(Some(c)) => format!("rejected ({c})"),
                    BodyOutcome::Rejected(None) => "answered without a code".into(),
                    BodyOutcome::Pending if !ended && s.in_progress => "being sent".into(),
                    BodyOutcome::Pending if !ended => "cut off before its end".into(),
                    BodyOutcome::Pending => "no reply seen".into(),
                };
                let style = match outcome {
                    BodyOutcome::Accepted(_) => th.dim(),
                    _ => th.warn(),
                };
                Line::from(vec![
                    gutter(*frame, look),
                    Span::styled(
                        format!("   DATA: {} bytes, {what}", thousands(*bytes)),
                        style.add_modifier(Modifier::ITALIC),
                    ),
                ])
            }
            Entry::TlsStart { .. } => rule(&tls_words(s), look.width, th.tls_rule()),
            Entry::Gap { side } => {
                rule(&format!("bytes missing from the capture ({})", side.name()), look.width, th.warn())
            }
            Entry::Note { frame, text } => {
                Line::from(vec![gutter(*frame, look), Span::styled(format!("!  {}", defuse(text)), th.warn())])
            }
        });
    }
    if t.omitted > 0 {
        out.push(Line::styled(
            format!("… {} more lines (the transcript keeps the first {})", thousands(t.omitted), t.entries.len()),
            th.dim(),
        ));
    }
    out
}

/// A certificate field: its label dim, padded so the values line up.
pub(super) fn field(name: &str, value: impl Into<String>, look: &Look) -> Line<'static> {
    // The longest label ("Certificate subject alternate names") and one space: a SHA-1
    // thumbprint still fits on one line at 80 columns.
    Line::from(vec![Span::styled(format!("  {name:<36}"), look.theme.dim()), Span::raw(value.into())])
}

/// A labelled line: the label as a heading, padded so the values line up.
pub(super) fn pair(name: &str, value: impl Into<String>, look: &Look) -> Line<'static> {
    Line::from(vec![Span::styled(format!("{name:<14}"), look.theme.heading()), Span::raw(value.into())])
}

/// What a run knows of server logs, for the Log tab of a session that carries no log link yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogsInRun {
    /// The run has no `--logs`.
    None,
    /// The logs were read (files): finished sessions are linked as they end.
    Read,
    /// A live run follows the logs: a finished session waits up to this long for its log lines.
    Followed(std::time::Duration),
}

/// One logged line as the Log tab shows it: masked field by field (an Exchange line holds the
/// command, `AUTH …` or `MAIL FROM:<…>`, in a CSV field) unless asked, then defused.
pub(super) fn logged_line(line: &str, look: &Look, show_credentials: bool) -> Line<'static> {
    let masked: Vec<String> =
        line.split(',').map(|f| crate::logs::mask(f, look.show_addresses, show_credentials)).collect();
    Line::raw(defuse(&masked.join(",")))
}

/// Tab 5: the server-log sessions matched with this one (`--logs`), each with what differs and
/// its logged lines (masked unless asked). Log text is valid UTF-8 with invalid bytes already
/// written as `\xNN`, so it is defused (the log's own backslashes stay, as in the file).
pub fn log(s: &Session, look: &Look, show_credentials: bool) -> Vec<Line<'static>> {
    let run = if s.logs.is_some() { LogsInRun::Read } else { LogsInRun::None };
    log_in(s, look, show_credentials, run)
}

/// [`log`] knowing what the run does with logs: a session still open, or finished and waiting
/// for its log lines in a live run, says so instead of "no server logs"; a row that is a log
/// session itself (`smtpscope logs`) shows that session and its lines.
pub fn log_in(s: &Session, look: &Look, show_credentials: bool, run: LogsInRun) -> Vec<Line<'static>> {
    let th = look.theme;
    if let Some(r) = &s.from_log {
        return super::logrow::log(r, look, show_credentials);
    }
    let Some(links) = &s.logs else {
        let why = match run {
            LogsInRun::Read | LogsInRun::Followed(_) if s.in_progress => {
                return vec![Line::styled("● in progress: the logs are matched when the session ends", th.warn())]
            }
            LogsInRun::Followed(wait) => format!(
                "waiting for this session's log lines: the logs are followed as they grow, and a finished session waits up to {} s for its log session (then the LOG column says none)",
                wait.as_secs_f64()
            ),
            _ if s.record.is_some() => {
                "this record was read back without a log cross-check: run -r with --logs PATH to compare the server's log".to_string()
            }
            LogsInRun::None => {
                "no server logs in this run: add --logs PATH (an Exchange protocol log or a Postfix log) to compare the server's word with the wire's".to_string()
            }
            LogsInRun::Read => "this session was not compared with the server logs".to_string(),
        };
        return vec![Line::styled(why, th.dim())];
    };
    if s.in_progress {
        return vec![Line::styled("● in progress: the logs are matched when the session ends", th.warn())];
    }
    if links.is_empty() {
        return vec![Line::styled(
            "no log session matched this session (none with its addresses, time and command counts)",
            th.dim(),
        )];
    }
    let mut out = Vec::new();
    for (i, l) in links.iter().enumerate() {
        if i > 0 {
            out.push(Line::raw(""));
        }
        let title = format!("{} · {}", defuse(l.source), if l.agree { "agrees" } else { "differs" });
        out.push(rule(&title, look.width, if l.agree { th.heading() } else { th.warn() }));
        out.push(pair("Log file", defuse(&l.log_file), look));
        out.push(pair("Session", defuse(&l.log_session), look));
        out.push(pair("Log verdict", l.verdict.name(), look));
        let wire = s.verdict.map_or("-", |v| v.name());
        out.push(pair("Wire verdict", wire, look));
        if l.agree {
            out.push(pair("Agree", "yes: every fact known on both sides is the same", look));
        } else {
            let diffs: Vec<String> = l.differences.iter().map(|d| defuse(d)).collect();
            out.push(Line::from(vec![
                Span::styled(format!("{:<14}", "Differences"), th.heading()),
                Span::styled(diffs.join(", "), th.warn()),
            ]));
        }
        if let Some(h) = &l.hint {
            let text = l.hint_text.as_deref().map(|t| format!(": {}", defuse(t))).unwrap_or_default();
            out.push(Line::from(vec![
                Span::styled(format!("{:<14}", "Hint"), th.heading()),
                Span::styled(format!("{}{text}", defuse(h)), th.warn()),
            ]));
        }
        out.push(rule(&format!("{} logged line(s)", l.lines.len()), look.width, th.dim()));
        for line in &l.lines {
            out.push(logged_line(line, look, show_credentials));
        }
    }
    out
}

/// Upper-case hex with no separators, as Exchange prints thumbprints.
fn upper_hex(h: &str) -> String {
    h.to_ascii_uppercase()
}

/// Tab 2: the handshake and the certificate, laid out like the "Sending certificate" lines of
/// an Exchange SMTP protocol log.
pub fn tls(s: &Session, look: &Look) -> Vec<Line<'static>> {
    let th = look.theme;
    if let Some(r) = &s.from_log {
        return super::logrow::tls(r, &s.findings, look);
    }
    let mut out = Vec::new();
    match (&s.upgrade, s.kind) {
        (_, Kind::ImplicitTls) => {
            out.push(pair("Mode", "implicit TLS (ClientHello as the client's first bytes)", look))
        }
        (Some(u), _) => {
            let reply = match u.reply {
                Some(Some(c)) => format!("answered {c} (frame {})", u.reply_frame),
                Some(None) => format!("answered without a code (frame {})", u.reply_frame),
                None => "no reply seen".into(),
            };
            out.push(pair("Upgrade", format!("{} (frame {}) {reply}", u.verb.name(), u.frame), look));
        }
        (None, _) => {
            let offered = match s.starttls_offered() {
                Some(true) => "the server offered an upgrade; the client never asked",
                Some(false) => "no upgrade offered",
                None => "no upgrade seen",
            };
            out.push(pair("Upgrade", offered, look));
        }
    }
    let t = &s.tls;
    if t.client_hello.is_none() && t.server_hello.is_none() {
        out.push(Line::raw(""));
        out.push(Line::styled("No TLS in this session: everything crossed in clear.", th.warn()));
        return out;
    }
    let mut ch = String::new();
    if let Some(f) = t.client_hello {
        let _ = write!(ch, "frame {f}");
        if let Some(v) = t.client_max_version {
            let _ = write!(ch, " · offers up to {}", version_label(v));
        }
        let sni = t.sni.as_deref().map_or_else(|| "-".to_string(), terminal);
        let _ = write!(ch, " · SNI {sni}");
        if !t.alpn.is_empty() {
            let alpn: Vec<String> = t.alpn.iter().map(|a| terminal(a)).collect();
            let _ = write!(ch, " · ALPN {}", alpn.join(","));
        }
    } else {
        ch.push_str("not seen");
    }
    out.push(pair("ClientHello", ch, look));
    let sh = match (t.server_hello, t.version) {
        (Some(f), Some(v)) => {
            let cipher = t.cipher.map(cipher_name).unwrap_or_else(|| "-".into());
            format!("frame {f} · {} · {cipher}", version_label(v))
        }
        (Some(f), None) => format!("frame {f}"),
        _ if t.hello_retry => "HelloRetryRequest only".into(),
        _ => "not seen".into(),
    };
    out.push(pair("ServerHello", sh, look));
    out.push(pair(
        "Encrypted",
        format!("client {} bytes · server {} bytes", thousands(t.encrypted_bytes[0]), thousands(t.encrypted_bytes[1])),
        look,
    ));
    if let Some(a) = t.alert {
        let level = if a.level == 2 { "fatal" } else { "warning" };
        out.push(Line::from(vec![
            Span::styled(format!("{:<14}", "Alert"), th.heading()),
            Span::styled(
                format!("{} ({level}) from the {} · frame {}", alert_name(a.description), a.side.name(), a.frame),
                th.error(),
            ),
        ]));
    }
    out.push(Line::raw(""));
    let tls13 = t.version.is_some_and(|v| v == 0x0304 || v & 0xff00 == 0x7f00);
    match &t.cert {
        Some(c) => {
            let frame = t.cert_frame.map(|f| format!("frame {f} · ")).unwrap_or_default();
            out.push(Line::from(vec![
                Span::styled("Sending certificate", th.heading()),
                Span::styled(format!("   {frame}chain of {}", c.chain_len), th.dim()),
            ]));
            out.push(field("Certificate subject", defuse(&c.subject), look));
            out.push(field("Certificate issuer name", defuse(&c.issuer), look));
            out.push(field("Certificate serial number", upper_hex(&c.serial), look));
            out.push(field("Certificate thumbprint", upper_hex(&c.sha1), look));
            let sans: Vec<String> =
                c.sans.iter().map(|n| defuse(n.split_once(':').map_or(n.as_str(), |(_, v)| v))).collect();
            out.push(field(
                "Certificate subject alternate names",
                if sans.is_empty() { "-".into() } else { sans.join(", ") },
                look,
            ));
            out.push(field("Certificate valid from", rfc3339_secs(c.not_before), look));
            out.push(field("Certificate valid until", rfc3339_secs(c.not_after), look));
            out.push(field(
                "Public key",
                format!("{} {} bits · signed {}", c.key_type, c.key_bits, defuse(&c.signature)),
                look,
            ));
            out.push(field("Self-signed", if c.self_signed { "yes" } else { "no" }, look));
        }
        None if tls13 => {
            out.push(Line::from(vec![
                Span::styled("Sending certificate", th.heading()),
                Span::styled("   certificate not visible (TLS 1.3 encrypts it)", th.warn()),
            ]));
        }
        None => {
            out.push(Line::from(vec![
                Span::styled("Sending certificate", th.heading()),
                Span::styled("   no certificate captured", th.dim()),
            ]));
        }
    }
    certificate_warnings(&s.findings, &mut out, look);
    out
}

/// The TLS tab's closing "Warnings": the certificate and weak-version findings, wire or log.
pub(super) fn certificate_warnings(findings: &[Finding], out: &mut Vec<Line<'static>>, look: &Look) {
    let th = look.theme;
    let warns: Vec<_> =
        findings.iter().filter(|f| f.name.starts_with("cert-") || f.name == "weak-tls-version").collect();
    if !warns.is_empty() {
        out.push(Line::raw(""));
        out.push(Line::styled("Warnings", th.heading()));
        for f in warns {
            out.push(Line::from(vec![
                Span::styled(format!("  ⚠ {:<24}", f.name), th.warn()),
                Span::raw(defuse(&f.text)),
            ]));
        }
    }
}

/// One line of the evidence tab; `frame` is where Enter jumps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvidenceItem {
    /// What kind of line.
    pub kind: EvidenceKind,
    /// Text (escaped).
    pub text: String,
    /// Frame it points at.
    pub frame: Option<u64>,
    /// Side it came from.
    pub side: Option<Side>,
}

/// The evidence tab's sections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EvidenceKind {
    /// The verdict's reason.
    Reason,
    /// What was seen, in order.
    Seen,
    /// A finding.
    Finding,
}

/// Tab 3's items: the verdict's reason, the evidence in order, then the findings.
pub fn evidence_items(s: &Session) -> Vec<EvidenceItem> {
    if let Some(r) = &s.from_log {
        return super::logrow::evidence_items(r);
    }
    let mut out = Vec::new();
    for (i, e) in s.evidence.iter().enumerate() {
        let kind = if i == 0 && e.text.starts_with("verdict: ") { EvidenceKind::Reason } else { EvidenceKind::Seen };
        let text = e.text.strip_prefix("verdict: ").filter(|_| kind == EvidenceKind::Reason).unwrap_or(&e.text);
        out.push(EvidenceItem { kind, text: defuse(text), frame: e.frame, side: e.side });
    }
    for f in &s.findings {
        out.push(EvidenceItem {
            kind: EvidenceKind::Finding,
            text: format!("{}: {}", f.name, defuse(&f.text)),
            frame: f.frame,
            side: None,
        });
    }
    out
}

/// Tab 3 as lines, the cursor's line highlighted; returns the lines and the cursor's line index.
pub fn evidence(s: &Session, cursor: usize, look: &Look) -> (Vec<Line<'static>>, usize) {
    let th = look.theme;
    let items = evidence_items(s);
    let mut out = Vec::new();
    let mut at = 0;
    let verdict = s.verdict.map_or("-", |v| v.name());
    let vstyle = s.verdict.map_or(th.dim(), |v| th.verdict(v)).add_modifier(Modifier::BOLD);
    let mut section = None;
    for (i, it) in items.iter().enumerate() {
        if section != Some(it.kind) {
            section = Some(it.kind);
            if i > 0 {
                out.push(Line::raw(""));
            }
            out.push(Line::styled(
                match it.kind {
                    EvidenceKind::Reason if s.in_progress => "Verdict (provisional: the session is still open)",
                    EvidenceKind::Reason => "Verdict",
                    EvidenceKind::Seen if s.from_log.is_some() => "Evidence (numbered by line of the log file)",
                    EvidenceKind::Seen => "Evidence",
                    EvidenceKind::Finding => "Findings",
                },
                th.heading(),
            ));
        }
        if i == cursor {
            at = out.len();
        }
        let frame = it.frame.filter(|f| *f > 0).map_or("       ".to_string(), |f| format!("{f:>6} "));
        let mut spans = vec![Span::styled(frame, th.dim())];
        match it.kind {
            EvidenceKind::Reason => {
                spans.push(Span::styled(format!("{verdict} "), vstyle));
                spans.push(Span::raw(format!("— {}", it.text)));
            }
            EvidenceKind::Seen => {
                spans.push(it.side.map_or(Span::raw("   "), |sd| side_tag(sd, look)));
                spans.push(Span::raw(it.text.clone()));
            }
            EvidenceKind::Finding => spans.push(Span::styled(format!("⚠ {}", it.text), th.warn())),
        }
        let mut line = Line::from(spans);
        if i == cursor {
            line = th.select(line);
        }
        out.push(line);
    }
    if items.is_empty() {
        out.push(Line::styled("no evidence", th.dim()));
    }
    (out, at)
}

/// The header line of the detail pane: who, when, what.
pub fn summary_line(s: &Session, look: &Look) -> Line<'static> {
    let th = look.theme;
    if let Some(r) = &s.from_log {
        return super::logrow::summary_line(r, look);
    }
    let v = s.verdict;
    let mut spans = vec![
        Span::styled(format!("{} → {}", s.client, s.server), Style::new().add_modifier(Modifier::BOLD)),
        Span::raw("  "),
        Span::styled(v.map_or("-", |v| v.name()).to_string(), v.map_or(th.dim(), |v| th.verdict(v))),
    ];
    if s.in_progress {
        spans.push(Span::styled(" (in progress)", th.warn()));
    }
    let when = rfc3339(s.first_seen).replacen('T', " ", 1);
    let when = when.trim_end_matches('Z');
    spans.push(Span::styled(format!("  {when} · {} pkts", thousands(s.packets)), th.dim()));
    Line::from(spans)
}

/// Wraps styled lines at `width` columns (continuations indented by `indent`); returns the
/// wrapped lines and, for each input line, the index of its first wrapped line.
pub fn wrap(lines: Vec<Line<'static>>, width: u16, indent: usize) -> (Vec<Line<'static>>, Vec<usize>) {
    wrap_with(lines, width, |_| indent)
}

/// [`wrap`] with each line's continuations under its value: indented by the width of its first
/// span when it has more (a label, as on the TLS tab) and room is left, by `fallback` otherwise.
pub fn wrap_hanging(lines: Vec<Line<'static>>, width: u16, fallback: usize) -> (Vec<Line<'static>>, Vec<usize>) {
    // A label that leaves fewer than 16 columns for its value hangs at `fallback` instead.
    let room = usize::from(width).saturating_sub(16);
    wrap_with(lines, width, |l| match l.spans.as_slice() {
        [first, _, ..] if first.width() <= room => first.width(),
        _ => fallback.min(room),
    })
}

fn wrap_with(
    lines: Vec<Line<'static>>,
    width: u16,
    indent_of: impl Fn(&Line<'static>) -> usize,
) -> (Vec<Line<'static>>, Vec<usize>) {
    use unicode_width::UnicodeWidthChar;
    let mut out = Vec::with_capacity(lines.len());
    let mut starts = Vec::with_capacity(lines.len());
    for line in lines {
        let indent = indent_of(&line);
        let width = usize::from(width).max(indent + 8);
        starts.push(out.len());
        if line.width() <= width {
            out.push(line);
            continue;
        }
        let style = line.style;
        let mut cur: Vec<Span<'static>> = Vec::new();
        let mut used = 0;
        for span in line.spans {
            let mut buf = String::new();
            for c in span.content.chars() {
                let cw = c.width().unwrap_or(0);
                if used + cw > width {
                    if !buf.is_empty() {
                        cur.push(Span::styled(std::mem::take(&mut buf), span.style));
                    }
                    out.push(Line::from(std::mem::take(&mut cur)).style(style));
                    cur.push(Span::raw(" ".repeat(indent)));
                    used = indent;
                }
                buf.push(c);
                used += cw;
            }
            if !buf.is_empty() {
                cur.push(Span::styled(buf, span.style));
            }
        }
        if !cur.is_empty() {
            out.push(Line::from(cur).style(style));
        }
    }
    (out, starts)
}
