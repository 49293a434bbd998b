//! Exchange 2010–2019 SmtpReceive / SmtpSend protocol logs (CSV, header optional).
//!
//! Line shapes, from `../shared/logs/README.md` and the real sample beside it: a field is quoted
//! only when it holds a comma; sessions interleave and are tied by `session-id`; `>` is what this
//! server sent, `<` what it received, `*` information, `+`/`-` connect and disconnect.

use std::borrow::Cow;
use std::sync::Arc;

use rustc_hash::FxHashMap;

use super::record::{version_label, LogCert, LogRecord, Source};
use super::time::parse_exchange;
use super::{mask, parse_endpoint, text, Endpoint, LineParser, LogOptions, Problems};
use crate::capture::Micros;
use crate::session::UpgradeVerb;

/// A session whose id has not appeared for this long (log time) is closed.
pub const IDLE_MICROS: Micros = 10 * 60 * 1_000_000;
/// Most sessions held open at once (~5 KB each); beyond it the longest idle are closed (and
/// counted): 1 M sessions never closed within 10 minutes peaked at 473 MiB with 100 000.
pub const MAX_OPEN: usize = 20_000;

/// The header lines Exchange writes at the top of a file (and after a restart).
pub fn is_header(line: &[u8]) -> bool {
    ["#Software:", "#Version:", "#Log-type:", "#Date:", "#Fields:"].iter().any(|h| line.starts_with(h.as_bytes()))
}

/// A line with the CSV shape of a protocol log line (used to recognise a file without header).
pub fn looks_like_line(line: &[u8]) -> bool {
    let mut f = Vec::new();
    split(line, &mut f).is_ok()
        && f.len() >= 9
        && field(line, &f, 0).is_some_and(|d| parse_exchange(&d).is_some())
        && field(line, &f, 6).is_some_and(|e| matches!(&*e, b"+" | b"-" | b">" | b"<" | b"*"))
}

/// Splits one CSV line into field ranges `(start, end, quoted)`.
fn split(line: &[u8], out: &mut Vec<(usize, usize, bool)>) -> Result<(), &'static str> {
    out.clear();
    let mut i = 0;
    loop {
        if line.get(i) == Some(&b'"') {
            let start = i + 1;
            let mut j = start;
            loop {
                match line.get(j) {
                    None => return Err("unclosed-quote"),
                    Some(b'"') if line.get(j + 1) == Some(&b'"') => j += 2,
                    Some(b'"') => break,
                    Some(_) => j += 1,
                }
            }
            out.push((start, j, true));
            // Tolerate junk between the closing quote and the next comma.
            match memchr::memchr(b',', line.get(j..).unwrap_or_default()) {
                Some(p) => i = j + p + 1,
                None => return Ok(()),
            }
        } else {
            match memchr::memchr(b',', line.get(i..).unwrap_or_default()) {
                Some(p) => {
                    out.push((i, i + p, false));
                    i += p + 1;
                }
                None => {
                    out.push((i, line.len(), false));
                    return Ok(());
                }
            }
        }
        if out.len() > 64 {
            return Err("too-many-fields");
        }
    }
}

fn field<'a>(line: &'a [u8], f: &[(usize, usize, bool)], i: usize) -> Option<Cow<'a, [u8]>> {
    let &(s, e, quoted) = f.get(i)?;
    let v = line.get(s..e)?;
    if quoted && memchr::memmem::find(v, b"\"\"").is_some() {
        let mut o = Vec::with_capacity(v.len());
        let mut k = 0;
        while let Some(&c) = v.get(k) {
            o.push(c);
            k += if c == b'"' && v.get(k + 1) == Some(&b'"') { 2 } else { 1 };
        }
        return Some(Cow::Owned(o));
    }
    Some(Cow::Borrowed(v))
}

/// Column positions (from `#Fields:`, else the documented order).
#[derive(Debug, Clone, Copy)]
struct Columns {
    date: usize,
    session: usize,
    local: usize,
    remote: usize,
    event: usize,
    data: usize,
    context: usize,
}

const DEFAULT_COLUMNS: Columns = Columns { date: 0, session: 2, local: 4, remote: 5, event: 6, data: 7, context: 8 };

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Await {
    Nothing,
    Ehlo,
    Upgrade,
}

#[derive(Debug)]
struct Open {
    rec: LogRecord,
    local: Option<Endpoint>,
    remote: Option<Endpoint>,
    kind: Option<Source>,
    awaiting: Await,
    ehlo_lines: Vec<String>,
    in_tls: bool,
    /// 1: a five-line certificate block is being filled; 2: one was filled.
    cert_block: u8,
    commands_seen: bool,
    mails: u32,
}

/// The Exchange parser for one file.
pub struct Parser {
    file: Arc<str>,
    opts: LogOptions,
    log_type: Option<Source>,
    cols: Columns,
    sessions: FxHashMap<Vec<u8>, Open>,
    problems: Problems,
    last_sweep: Micros,
    fields: Vec<(usize, usize, bool)>,
}

fn is_reply(d: &[u8]) -> bool {
    d.len() >= 3 && d.iter().take(3).all(u8::is_ascii_digit) && matches!(d.get(3), None | Some(b' ' | b'-'))
}

fn reply_code(d: &[u8]) -> u16 {
    d.iter().take(3).fold(0u16, |a, c| a * 10 + u16::from(c.wrapping_sub(b'0')))
}

fn contains(h: &[u8], n: &str) -> bool {
    memchr::memmem::find(h, n.as_bytes()).is_some()
}

const SASL: [&str; 14] = [
    "GSSAPI",
    "NTLM",
    "LOGIN",
    "PLAIN",
    "CRAM-MD5",
    "DIGEST-MD5",
    "SCRAM-SHA-1",
    "SCRAM-SHA-256",
    "XOAUTH2",
    "OAUTHBEARER",
    "EXCHANGEAUTH",
    "ANONYMOUS",
    "KERBEROS_V4",
    "EXTERNAL",
];

/// The 2013+ one-line EHLO reply (`250  host Hello [ip] SIZE 37748736 ... AUTH NTLM ...`): each
/// token after `Hello [..]` is a keyword, except all-digit tokens and SASL mechanism names after
/// `AUTH`/`X-EXPS`, which are that keyword's params.
pub fn one_line_extensions(reply: &str) -> Vec<(String, String)> {
    let body = reply.get(3..).unwrap_or_default().trim_start_matches(['-', ' ']);
    let toks: Vec<&str> = body.split_whitespace().collect();
    let start = match toks.iter().position(|t| *t == "Hello") {
        Some(p) if toks.get(p + 1).is_some_and(|t| t.starts_with('[')) => p + 2,
        Some(p) => p + 1,
        None => 1,
    };
    let mut out: Vec<(String, String)> = Vec::new();
    for t in toks.iter().skip(start) {
        let param = t.bytes().all(|b| b.is_ascii_digit())
            || out.last().is_some_and(|(k, _)| {
                (k == "AUTH" || k == "X-EXPS") && SASL.contains(&t.to_ascii_uppercase().as_str())
            });
        match out.last_mut() {
            Some((_, p)) if param => {
                if !p.is_empty() {
                    p.push(' ');
                }
                p.push_str(t);
            }
            _ => out.push(((*t).to_string(), String::new())),
        }
    }
    out
}

fn dn_start(t: &str) -> bool {
    let Some(eq) = t.find('=') else { return false };
    eq > 0 && t[..eq].bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.')
}

fn iso_secs(t: &str) -> Option<(String, Micros)> {
    let us = parse_exchange(t.as_bytes())?;
    Some((crate::timefmt::rfc3339_secs(us.div_euclid(1_000_000)), us))
}

/// The one-line certificate form: ` Subject Issuer Serial Thumbprint NotBefore NotAfter SANs`,
/// split from the right; Subject and Issuer only where they split unambiguously.
pub fn one_line_cert(data: &str) -> LogCert {
    let toks: Vec<&str> = data.split_whitespace().collect();
    let mut cert = LogCert::default();
    let Some(nb) = (0..toks.len().saturating_sub(1)).rev().find(|&i| {
        toks.get(i).is_some_and(|t| parse_exchange(t.as_bytes()).is_some())
            && toks.get(i + 1).is_some_and(|t| parse_exchange(t.as_bytes()).is_some())
    }) else {
        return cert;
    };
    if let Some((s, us)) = toks.get(nb).and_then(|t| iso_secs(t)) {
        cert.not_before = Some(s);
        cert.not_before_us = Some(us);
    }
    if let Some((s, us)) = toks.get(nb + 1).and_then(|t| iso_secs(t)) {
        cert.not_after = Some(s);
        cert.not_after_us = Some(us);
    }
    let sans = toks.get(nb + 2..).unwrap_or_default().join(" ");
    cert.sans = Some(sans.split(';').filter(|s| !s.is_empty()).map(str::to_string).collect());
    let hex = |t: &&&str| t.bytes().all(|b| b.is_ascii_hexdigit());
    if nb >= 2 {
        cert.sha1 = toks.get(nb - 1).filter(hex).map(|t| t.to_ascii_lowercase());
        cert.serial = toks.get(nb - 2).filter(hex).map(|t| t.to_ascii_lowercase());
        let names = toks.get(..nb - 2).unwrap_or_default();
        let splits: Vec<usize> =
            (1..names.len()).filter(|&j| dn_start(names[j]) && !names[j - 1].ends_with(',')).collect();
        if let [j] = splits.as_slice() {
            cert.subject = Some(names[..*j].join(" "));
            cert.issuer = Some(names[*j..].join(" "));
        }
    }
    cert
}

impl Parser {
    /// A parser for `file`.
    pub fn new(file: Arc<str>, opts: LogOptions) -> Self {
        Self {
            file,
            opts,
            log_type: None,
            cols: DEFAULT_COLUMNS,
            sessions: FxHashMap::default(),
            problems: Problems::default(),
            last_sweep: Micros::MIN,
            fields: Vec::with_capacity(16),
        }
    }

    fn header(&mut self, line: &[u8]) {
        if let Some(v) = line.strip_prefix(b"#Log-type:") {
            if contains(v, "Receive") {
                self.log_type = Some(Source::ExchangeReceive);
            } else if contains(v, "Send") {
                self.log_type = Some(Source::ExchangeSend);
            }
        } else if let Some(v) = line.strip_prefix(b"#Fields:") {
            let names: Vec<String> = String::from_utf8_lossy(v).split(',').map(|s| s.trim().to_string()).collect();
            let at = |n: &str, d: usize| names.iter().position(|x| x == n).unwrap_or(d);
            self.cols = Columns {
                date: at("date-time", 0),
                session: at("session-id", 2),
                local: at("local-endpoint", 4),
                remote: at("remote-endpoint", 5),
                event: at("event", 6),
                data: at("data", 7),
                context: at("context", 8),
            };
        }
    }

    fn close(&mut self, mut o: Open, out: &mut dyn FnMut(LogRecord)) {
        let source = self.log_type.or(o.kind).unwrap_or(Source::ExchangeReceive);
        o.rec.source = source;
        let (server, client) = if source == Source::ExchangeSend { (o.remote, o.local) } else { (o.local, o.remote) };
        o.rec.server = server;
        o.rec.client = client;
        o.rec.mail_transactions = Some(o.mails);
        o.rec.judge();
        out(o.rec);
    }

    fn sweep(&mut self, now: Micros, out: &mut dyn FnMut(LogRecord)) {
        let idle: Vec<Vec<u8>> = self
            .sessions
            .iter()
            .filter(|(_, o)| now.saturating_sub(o.rec.last_seen) > IDLE_MICROS)
            .map(|(k, _)| k.clone())
            .collect();
        for k in idle {
            if let Some(o) = self.sessions.remove(&k) {
                self.close(o, out);
            }
        }
    }

    fn shed(&mut self, out: &mut dyn FnMut(LogRecord)) {
        let mut ages: Vec<(Micros, Vec<u8>)> =
            self.sessions.iter().map(|(k, o)| (o.rec.last_seen, k.clone())).collect();
        let n = ages.len() / 10 + 1;
        let nth = n.min(ages.len().saturating_sub(1));
        if !ages.is_empty() {
            ages.select_nth_unstable(nth);
        }
        for (_, k) in ages.into_iter().take(n) {
            if let Some(o) = self.sessions.remove(&k) {
                self.problems.add("open-session-limit");
                self.close(o, out);
            }
        }
    }
}

impl Open {
    fn finish_ehlo(&mut self, n: u64, opts: &LogOptions) {
        let lines = std::mem::take(&mut self.ehlo_lines);
        if self.rec.ehlo_extensions.is_some() {
            return;
        }
        let exts: Vec<(String, String)> = if let [one] = lines.as_slice() {
            one_line_extensions(one)
        } else {
            lines
                .iter()
                .skip(1)
                .map(|l| {
                    let body = l.get(4..).unwrap_or_default().trim();
                    match body.split_once(' ') {
                        Some((k, p)) => (k.to_string(), p.to_string()),
                        None => (body.to_string(), String::new()),
                    }
                })
                .collect()
        };
        let offered =
            exts.iter().any(|(k, _)| k.eq_ignore_ascii_case("STARTTLS") || k.eq_ignore_ascii_case("X-ANONYMOUSTLS"));
        if !self.in_tls {
            self.rec.starttls_offered = Some(offered);
            if offered {
                let first = lines.first().map(String::as_str).unwrap_or_default();
                self.rec.note(
                    n,
                    format!(
                        "EHLO reply offers the upgrade: {}",
                        mask(first, opts.show_addresses, opts.show_credentials)
                    ),
                );
            }
        }
        self.rec.ehlo_extensions = Some(exts);
    }

    fn server_line(&mut self, n: u64, d: &[u8], opts: &LogOptions) {
        if !is_reply(d) {
            return;
        }
        let code = reply_code(d);
        let t = text(d);
        match self.awaiting {
            Await::Upgrade => {
                self.rec.upgrade_reply = Some(code);
                if code == 220 {
                    self.in_tls = true;
                }
                self.rec.note(n, format!("upgrade answered: {t}"));
                self.awaiting = Await::Nothing;
            }
            Await::Ehlo => {
                let last = d.get(3) != Some(&b'-');
                if code != 250 {
                    self.ehlo_lines.clear();
                    self.awaiting = Await::Nothing;
                    return;
                }
                if self.ehlo_lines.len() < 64 {
                    self.ehlo_lines.push(t);
                }
                if last {
                    self.finish_ehlo(n, opts);
                    self.awaiting = Await::Nothing;
                }
            }
            Await::Nothing => {
                if self.rec.banner.is_none() && code == 220 && !self.commands_seen && !self.in_tls {
                    self.rec.banner = Some(t.get(4..).unwrap_or_default().to_string());
                }
            }
        }
    }

    fn client_line(&mut self, n: u64, d: &[u8], opts: &LogOptions) {
        let t = text(d);
        let mut words = t.split_whitespace();
        let verb = words.next().unwrap_or_default().to_ascii_uppercase();
        match verb.as_str() {
            "EHLO" | "HELO" | "LHLO" => {
                self.commands_seen = true;
                if self.rec.helo.is_none() {
                    self.rec.helo = Some(words.next().unwrap_or_default().to_string());
                }
                if verb == "HELO" {
                    if !self.in_tls && self.rec.starttls_offered.is_none() {
                        self.rec.starttls_offered = Some(false);
                    }
                    self.awaiting = Await::Nothing;
                } else {
                    self.ehlo_lines.clear();
                    self.awaiting = Await::Ehlo;
                }
            }
            "STARTTLS" | "X-ANONYMOUSTLS" => {
                self.commands_seen = true;
                if self.rec.upgrade_verb.is_none() {
                    self.rec.upgrade_verb =
                        Some(if verb == "STARTTLS" { UpgradeVerb::Starttls } else { UpgradeVerb::XAnonymousTls });
                    self.rec.upgrade_line = Some(n);
                    self.rec.note(n, format!("client: {verb}"));
                }
                self.awaiting = Await::Upgrade;
            }
            "MAIL" => {
                self.commands_seen = true;
                self.mails += 1;
                self.rec.note(n, format!("client: {}", mask(&t, opts.show_addresses, opts.show_credentials)));
                self.awaiting = Await::Nothing;
            }
            "AUTH" | "X-EXPS" => {
                self.commands_seen = true;
                let m = words.next().unwrap_or_default().to_ascii_uppercase();
                // Exchange's X-EXPS named as the wire names it (`X-EXPS GSSAPI`).
                let mech = if verb == "X-EXPS" { format!("X-EXPS {m}") } else { m };
                if !self.rec.auth_mechanisms.contains(&mech) && self.rec.auth_mechanisms.len() < 8 {
                    self.rec.auth_mechanisms.push(mech.clone());
                }
                if !self.in_tls && self.rec.tls_line.is_none() && self.rec.auth_in_clear.is_none() {
                    self.rec.auth_in_clear = Some((mech, n));
                }
                self.rec.note(n, format!("client: {}", mask(&t, opts.show_addresses, opts.show_credentials)));
                self.awaiting = Await::Nothing;
            }
            _ => {
                self.commands_seen = true;
                self.awaiting = Await::Nothing;
            }
        }
    }

    fn info_line(&mut self, n: u64, data: &[u8], context: &[u8], opts: &LogOptions) {
        let five = |label: &str| context == label.as_bytes();
        for part in [data, context] {
            if contains(part, "negotiation succeeded") && contains(part, "TLS protocol ") {
                let t = text(part);
                let after = t.split("TLS protocol ").nth(1).unwrap_or_default();
                let proto = after.split_whitespace().next().unwrap_or_default();
                if self.rec.tls_line.is_none() || self.rec.tls_version.is_none() {
                    self.rec.tls_line.get_or_insert(n);
                    self.rec.tls_version = version_label(proto);
                    self.rec.cipher = after.split("succeeded using ").nth(1).map(str::to_string);
                    self.rec.note(n, t.clone());
                }
                self.in_tls = true;
                return;
            }
            if contains(part, "TLS negotiation failed") {
                self.rec.failure_line = Some(n);
                self.rec.note(n, text(part));
                return;
            }
        }
        let is_cert_label = ["Sending certificate", "Remote certificate", "Received certificate"]
            .iter()
            .any(|l| context.starts_with(l.as_bytes()));
        if is_cert_label {
            self.rec.tls_line.get_or_insert(n);
            self.in_tls = true;
            let d = text(data);
            if !d.trim().is_empty() {
                if self.rec.cert.is_none() {
                    self.rec.cert = Some(one_line_cert(&d));
                    self.rec.note(
                        n,
                        format!("{}: {}", text(context).split(" Subject").next().unwrap_or_default(), d.trim()),
                    );
                }
            } else {
                self.cert_block = if self.rec.cert.is_none() { 1 } else { 2 };
                if self.cert_block == 1 {
                    self.rec.cert = Some(LogCert::default());
                    self.rec.note(n, text(context));
                }
            }
            return;
        }
        if self.cert_block == 1 {
            let v = text(data);
            if let Some(c) = self.rec.cert.as_mut() {
                if five("Certificate subject") {
                    c.subject = Some(v);
                } else if five("Certificate issuer name") {
                    c.issuer = Some(v);
                } else if five("Certificate serial number") {
                    c.serial = Some(v.to_ascii_lowercase());
                } else if five("Certificate thumbprint") {
                    c.sha1 = Some(v.to_ascii_lowercase());
                } else if five("Certificate alternate names") {
                    c.sans = Some(v.split(';').map(str::trim).filter(|s| !s.is_empty()).map(str::to_string).collect());
                    self.cert_block = 2;
                } else {
                    self.cert_block = 2;
                }
            }
            return;
        }
        for part in [data, context] {
            if part.starts_with(b"User Name:") || contains(part, "AUTH") {
                self.rec.note(n, mask(&text(part), opts.show_addresses, opts.show_credentials));
                return;
            }
        }
    }
}

impl LineParser for Parser {
    fn line(&mut self, n: u64, line: &[u8], out: &mut dyn FnMut(LogRecord)) -> bool {
        if line.first() == Some(&b'#') {
            if is_header(line) {
                self.header(line);
                return true;
            }
            self.problems.add("unrecognised");
            return false;
        }
        if line.iter().all(u8::is_ascii_whitespace) {
            self.problems.add("blank");
            return false;
        }
        let mut fields = std::mem::take(&mut self.fields);
        let ok = self.line_fields(n, line, &mut fields, out);
        self.fields = fields;
        ok
    }

    fn finish(&mut self, out: &mut dyn FnMut(LogRecord)) {
        let mut open: Vec<Open> = self.sessions.drain().map(|(_, o)| o).collect();
        open.sort_by_key(|o| o.rec.first_line);
        for o in open {
            self.close(o, out);
        }
    }

    fn problems(&mut self) -> &mut Problems {
        &mut self.problems
    }
}

impl Parser {
    fn line_fields(
        &mut self,
        n: u64,
        line: &[u8],
        f: &mut Vec<(usize, usize, bool)>,
        out: &mut dyn FnMut(LogRecord),
    ) -> bool {
        if let Err(reason) = split(line, f) {
            self.problems.add(reason);
            return false;
        }
        let c = self.cols;
        let (Some(date), Some(sid), Some(event)) =
            (field(line, f, c.date), field(line, f, c.session), field(line, f, c.event))
        else {
            self.problems.add("missing-fields");
            return false;
        };
        let Some(t) = parse_exchange(&date) else {
            self.problems.add("bad-timestamp");
            return false;
        };
        let ev = match &*event {
            [e @ (b'+' | b'-' | b'>' | b'<' | b'*')] => *e,
            _ => {
                self.problems.add("bad-event");
                return false;
            }
        };
        if sid.is_empty() {
            self.problems.add("missing-session-id");
            return false;
        }
        if t.saturating_sub(self.last_sweep) > 60 * 1_000_000 {
            if self.last_sweep != Micros::MIN {
                self.sweep(t, out);
            }
            self.last_sweep = t;
        }
        if !self.sessions.contains_key(&*sid) && self.sessions.len() >= MAX_OPEN {
            self.shed(out);
        }
        let data = field(line, f, c.data).unwrap_or_default();
        let context = field(line, f, c.context).unwrap_or_default();
        let local = field(line, f, c.local).and_then(|v| parse_endpoint(&v));
        let remote = field(line, f, c.remote).and_then(|v| parse_endpoint(&v));
        let file = &self.file;
        // Looked up by slice first: no key allocation per line of an open session.
        if !self.sessions.contains_key(&*sid) {
            let open = Open {
                rec: LogRecord::new(Source::ExchangeReceive, file.clone(), text(&sid), t, n),
                local: None,
                remote: None,
                kind: None,
                awaiting: Await::Nothing,
                ehlo_lines: Vec::new(),
                in_tls: false,
                cert_block: 0,
                commands_seen: false,
                mails: 0,
            };
            self.sessions.insert(sid.to_vec(), open);
        }
        let Some(o) = self.sessions.get_mut(&*sid) else { return false };
        o.rec.saw(t);
        o.rec.keep(&text(line));
        if o.local.is_none() {
            o.local = local;
        }
        if o.remote.is_none() {
            o.remote = remote;
        }
        if (ev == b'>' || ev == b'<') && o.kind.is_none() {
            // Without a header: a Receive log's `>` lines are replies, a Send log's are commands.
            o.kind = Some(match (ev, is_reply(&data)) {
                (b'>', true) | (b'<', false) => Source::ExchangeReceive,
                _ => Source::ExchangeSend,
            });
        }
        let kind = self.log_type.or(o.kind).unwrap_or(Source::ExchangeReceive);
        let from_server = (ev == b'>') == (kind == Source::ExchangeReceive);
        match ev {
            b'-' => {
                o.rec.closed = true;
                o.rec.note(n, format!("disconnect ({})", text(&context)));
                if let Some(o) = self.sessions.remove(&*sid) {
                    self.close(o, out);
                }
            }
            b'+' => {}
            b'*' => o.info_line(n, &data, &context, &self.opts),
            _ if from_server => o.server_line(n, &data, &self.opts),
            _ => o.client_line(n, &data, &self.opts),
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::Verdict;

    fn read(data: &str) -> (Vec<LogRecord>, Problems) {
        let mut p = Parser::new(Arc::from("t.log"), LogOptions::default());
        let mut recs = Vec::new();
        for (i, l) in data.lines().enumerate() {
            p.line(i as u64 + 1, l.as_bytes(), &mut |r| recs.push(r));
        }
        p.finish(&mut |r| recs.push(r));
        (recs, p.problems.clone())
    }

    const SAMPLE: &str = include_str!("../../tests/data/logs/exchange/recv-2013plus-starttls-tls12-oneline-cert.log");

    #[test]
    fn the_real_2013_receive_sample_reads_right() {
        let (recs, problems) = read(SAMPLE);
        assert_eq!(problems.counts.len(), 0, "{problems:?}");
        let [r] = recs.as_slice() else { panic!("{recs:?}") };
        assert_eq!(r.source, Source::ExchangeReceive);
        assert_eq!(r.log_session, "123453EC62278461");
        assert_eq!(r.server.unwrap().to_string(), "10.10.10.10:25");
        assert_eq!(r.client.unwrap().to_string(), "95.10.20.33:56026");
        assert_eq!(r.helo.as_deref(), Some("[95.10.20.33]"));
        assert!(r
            .banner
            .as_deref()
            .unwrap()
            .starts_with("SERVER-HOSTNAME.DOMAIN.TEST Microsoft ESMTP MAIL Service ready"));
        let exts = r.ehlo_extensions.as_ref().unwrap();
        let kws: Vec<&str> = exts.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            kws,
            [
                "SIZE",
                "PIPELINING",
                "DSN",
                "ENHANCEDSTATUSCODES",
                "STARTTLS",
                "X-ANONYMOUSTLS",
                "AUTH",
                "X-EXPS",
                "8BITMIME",
                "BINARYMIME",
                "CHUNKING",
                "XRDST"
            ]
        );
        assert_eq!(exts[0].1, "37748736");
        assert_eq!(exts[6].1, "NTLM");
        assert_eq!(exts[7].1, "GSSAPI NTLM");
        assert_eq!(r.starttls_offered, Some(true));
        assert_eq!(r.upgrade_verb, Some(UpgradeVerb::Starttls));
        assert_eq!(r.upgrade_reply, Some(220));
        assert_eq!(r.tls_version.as_deref(), Some("TLS1.2"));
        let c = r.cert.as_ref().unwrap();
        assert_eq!(c.sha1.as_deref(), Some("12deabc6565646512346abdc1345689413589876"));
        assert_eq!(c.serial.as_deref(), Some("12deabc6565646512346abdc13456894"));
        assert_eq!(c.subject.as_deref(), Some("CN=SERVER-HOSTNAME"));
        assert_eq!(c.issuer.as_deref(), Some("CN=SERVER-HOSTNAME"));
        assert_eq!(c.not_before.as_deref(), Some("2020-01-17T15:15:33Z"));
        assert_eq!(c.not_after.as_deref(), Some("2025-01-17T15:15:33Z"));
        assert_eq!(c.sans.as_deref(), Some(&["SERVER-HOSTNAME".to_string(), "SERVER-HOSTNAME.DOMAIN.TEST".into()][..]));
        assert_eq!(r.auth_mechanisms, ["LOGIN"]);
        assert!(r.auth_in_clear.is_none(), "AUTH came inside TLS");
        assert_eq!(r.verdict, Verdict::Starttls);
        assert!(r.findings.is_empty(), "{:?}", r.findings);
        assert!(r.evidence.iter().all(|e| !e.text.contains("username@")), "{:?}", r.evidence);
    }

    #[test]
    fn the_2010_form_multi_line_ehlo_five_line_cert_and_a_failure() {
        let log = "\
2010-06-01T10:00:00.000Z,HUB\\In,08CD0000000000A1,0,10.0.0.2:25,10.0.0.9:40000,+,,
2010-06-01T10:00:00.010Z,HUB\\In,08CD0000000000A1,1,10.0.0.2:25,10.0.0.9:40000,>,\"220 hub.example Microsoft ESMTP MAIL Service ready at Tue, 1 Jun 2010 12:00:00 +0200\",
2010-06-01T10:00:00.020Z,HUB\\In,08CD0000000000A1,2,10.0.0.2:25,10.0.0.9:40000,<,EHLO other.example,
2010-06-01T10:00:00.021Z,HUB\\In,08CD0000000000A1,3,10.0.0.2:25,10.0.0.9:40000,>,250-hub.example Hello [10.0.0.9],
2010-06-01T10:00:00.021Z,HUB\\In,08CD0000000000A1,4,10.0.0.2:25,10.0.0.9:40000,>,250-SIZE,
2010-06-01T10:00:00.021Z,HUB\\In,08CD0000000000A1,5,10.0.0.2:25,10.0.0.9:40000,>,250-STARTTLS,
2010-06-01T10:00:00.021Z,HUB\\In,08CD0000000000A1,6,10.0.0.2:25,10.0.0.9:40000,>,250 XSHADOW,
2010-06-01T10:00:00.030Z,HUB\\In,08CD0000000000A1,7,10.0.0.2:25,10.0.0.9:40000,<,STARTTLS,
2010-06-01T10:00:00.031Z,HUB\\In,08CD0000000000A1,8,10.0.0.2:25,10.0.0.9:40000,>,220 2.0.0 SMTP server ready,
2010-06-01T10:00:00.032Z,HUB\\In,08CD0000000000A1,9,10.0.0.2:25,10.0.0.9:40000,*,,Sending certificate
2010-06-01T10:00:00.032Z,HUB\\In,08CD0000000000A1,10,10.0.0.2:25,10.0.0.9:40000,*,\"CN=hub.example, O=Ex\",Certificate subject
2010-06-01T10:00:00.032Z,HUB\\In,08CD0000000000A1,11,10.0.0.2:25,10.0.0.9:40000,*,CN=CA,Certificate issuer name
2010-06-01T10:00:00.032Z,HUB\\In,08CD0000000000A1,12,10.0.0.2:25,10.0.0.9:40000,*,0A1B,Certificate serial number
2010-06-01T10:00:00.032Z,HUB\\In,08CD0000000000A1,13,10.0.0.2:25,10.0.0.9:40000,*,ABCDEF0123456789ABCDEF0123456789ABCDEF01,Certificate thumbprint
2010-06-01T10:00:00.032Z,HUB\\In,08CD0000000000A1,14,10.0.0.2:25,10.0.0.9:40000,*,hub.example;mail.example,Certificate alternate names
2010-06-01T10:00:00.040Z,HUB\\In,08CD0000000000A1,15,10.0.0.2:25,10.0.0.9:40000,*,,TLS negotiation failed with error UnknownCredentials
2010-06-01T10:00:00.041Z,HUB\\In,08CD0000000000A1,16,10.0.0.2:25,10.0.0.9:40000,-,,Local
";
        let (recs, problems) = read(log);
        assert!(problems.counts.is_empty(), "{problems:?}");
        let [r] = recs.as_slice() else { panic!() };
        assert_eq!(r.starttls_offered, Some(true));
        assert_eq!(r.ehlo_extensions.as_ref().unwrap().len(), 3);
        let c = r.cert.as_ref().unwrap();
        assert_eq!(c.subject.as_deref(), Some("CN=hub.example, O=Ex"));
        assert_eq!(c.sha1.as_deref(), Some("abcdef0123456789abcdef0123456789abcdef01"));
        assert_eq!(c.sans.as_ref().unwrap().len(), 2);
        assert_eq!(r.tls_version, None, "2010 logs no success line");
        assert_eq!(r.verdict, Verdict::StarttlsFailed);
    }

    #[test]
    fn a_send_log_excerpt_without_header_is_recognised_by_its_commands() {
        let log = "\
2019-03-01T08:00:00.000Z,Out,08D6000000000001,0,,203.0.113.5:25,+,,
2019-03-01T08:00:00.100Z,Out,08D6000000000001,1,192.0.2.1:51000,203.0.113.5:25,<,220 mx.example ESMTP,
2019-03-01T08:00:00.200Z,Out,08D6000000000001,2,192.0.2.1:51000,203.0.113.5:25,>,EHLO hub.example,
2019-03-01T08:00:00.300Z,Out,08D6000000000001,3,192.0.2.1:51000,203.0.113.5:25,<,250-mx.example,
2019-03-01T08:00:00.300Z,Out,08D6000000000001,4,192.0.2.1:51000,203.0.113.5:25,<,250-STARTTLS,
2019-03-01T08:00:00.300Z,Out,08D6000000000001,5,192.0.2.1:51000,203.0.113.5:25,<,250 8BITMIME,
2019-03-01T08:00:00.400Z,Out,08D6000000000001,6,192.0.2.1:51000,203.0.113.5:25,>,MAIL FROM:<a@hub.example>,
2019-03-01T08:00:00.500Z,Out,08D6000000000001,7,192.0.2.1:51000,203.0.113.5:25,-,,Local
";
        let (recs, _) = read(log);
        let [r] = recs.as_slice() else { panic!() };
        assert_eq!(r.source, Source::ExchangeSend);
        assert_eq!(r.server.unwrap().to_string(), "203.0.113.5:25");
        assert_eq!(r.client.unwrap().to_string(), "192.0.2.1:51000");
        assert_eq!(r.verdict, Verdict::StarttlsOfferedUnused);
        assert!(r.evidence.iter().any(|e| e.text.contains("<hub.example>")));
    }

    #[test]
    fn refused_upgrade_and_idle_close() {
        let log = "\
2019-03-01T08:00:00.000Z,In,A1,1,10.0.0.1:25,10.0.0.2:4000,<,STARTTLS,
2019-03-01T08:00:00.001Z,In,A1,2,10.0.0.1:25,10.0.0.2:4000,>,454 4.7.0 TLS not available,
2019-03-01T08:20:00.001Z,In,B2,1,10.0.0.1:25,10.0.0.3:4000,<,QUIT,
";
        let (recs, _) = read(log);
        assert_eq!(recs.len(), 2);
        assert_eq!(recs[0].log_session, "A1");
        assert_eq!(recs[0].verdict, Verdict::StarttlsRefused);
        assert_eq!(recs[1].verdict, Verdict::Incomplete);
    }

    #[test]
    fn bad_lines_are_counted_not_fatal() {
        let log =
            "garbage\n\"never closed,\n2019-03-01T08:00:00Z,a\n2019-03-01T08:00:00Z,In,A1,1,x,y,?,d,c\n\u{fffd}\n";
        let (recs, problems) = read(log);
        assert!(recs.is_empty());
        assert_eq!(problems.get("unclosed-quote"), 1);
        assert_eq!(problems.get("bad-event"), 1);
        assert!(problems.get("missing-fields") + problems.get("bad-timestamp") >= 2, "{problems:?}");
    }

    #[test]
    fn one_line_cert_with_commas_in_the_names_splits_once() {
        let c = one_line_cert(" CN=a.example, O=Org CN=CA One, O=Org 0A 00112233445566778899AABBCCDDEEFF00112233 2020-01-01T00:00:00.000Z 2030-01-01T00:00:00.000Z a.example");
        assert_eq!(c.subject.as_deref(), Some("CN=a.example, O=Org"));
        assert_eq!(c.issuer.as_deref(), Some("CN=CA One, O=Org"));
        let c = one_line_cert(" CN=a CN=b CN=c 0A 00112233445566778899AABBCCDDEEFF00112233 2020-01-01T00:00:00.000Z 2030-01-01T00:00:00.000Z a");
        assert_eq!((c.subject, c.issuer), (None, None), "three names: ambiguous");
    }
}
