//! The SMTP stage: a small state machine over the two reassembled streams.
//!
//! Replies are matched to commands in order (PIPELINING). The upgrade verbs (`STARTTLS`,
//! Exchange's `X-ANONYMOUSTLS`) only *request* TLS: after a 220 the next client bytes must
//! prove it, otherwise the dialogue goes on in clear. Codes are matched, never texts.
//! Message bodies are scanned for the end of data and counted, never stored; AUTH secrets
//! are noted as having crossed, never kept.

pub mod command;
mod pipeline;
pub mod probe;
pub mod reply;

use pipeline::Pipeline;

use command::Verb;

use crate::escape::{concat, terminal};
use crate::session::{EhloReply, Extension, Hello, Proof, Session, Side, Upgrade, UpgradeVerb};
use crate::tls;

/// Longest line kept; longer lines are truncated and counted as an anomaly.
pub const MAX_LINE: usize = 4096;
/// Runs of commands awaiting replies before the newest are not remembered (see [`pipeline`]).
pub const MAX_PENDING: usize = 4096;
/// Client bytes held while waiting for the reply to DATA or an upgrade verb.
const MAX_HELD: usize = 64 * 1024;
/// EHLO extension lines kept.
const MAX_EXTENSIONS: usize = 64;
/// Further lines kept past [`MAX_EXTENSIONS`] when the verdict turns on them.
const MAX_DECISIVE_EXTENSIONS: usize = 8;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pending {
    Hello { first: bool, ehlo: bool },
    Mail,
    Data,
    EndOfData,
    Bdat { last: bool },
    Upgrade { first: bool },
    Auth,
    Quit,
    Other,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ClientMode {
    Command,
    /// Waiting for the reply to DATA or an upgrade verb; bytes are held.
    Hold,
    /// Inside a DATA body; `state` tracks the end-of-data scan.
    Body {
        state: u8,
    },
    /// Inside a BDAT chunk.
    Chunk {
        left: u64,
    },
    /// After a 220 to the upgrade verb: the next bytes decide.
    ExpectTls,
    Tls,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ServerMode {
    Reply,
    ExpectTls,
    Tls,
}

#[derive(Default)]
struct Line {
    buf: Vec<u8>,
    truncated: bool,
    /// After a gap: discard up to the next line end.
    resync: bool,
    /// A gap just happened and no byte has come since: the next bytes may start a line.
    at_gap: bool,
    /// Client side: frame of the buffered partial line's first bytes.
    from: u64,
}

#[derive(Default)]
struct ReplyAcc {
    active: bool,
    code: Option<u16>,
    first: Vec<u8>,
    ehlo: bool,
    exts: Vec<Extension>,
    frame: u64,
}

/// The SMTP state machine for one session.
pub struct Machine {
    cmode: ClientMode,
    smode: ServerMode,
    pending: Pipeline<Pending>,
    lines: [Line; 2],
    acc: ReplyAcc,
    held: Vec<u8>,
    greeting_expected: bool,
    replies_seen: u64,
    server_bytes: u64,
    auth_active: bool,
    keep_credentials: bool,
    /// Boxed: created only at the upgrade, and the many open sessions that never get there stay small.
    tls: Option<Box<tls::Tracker>>,
    frame: u64,
    /// Frame of the first client bytes being fed: earlier than `frame` when held bytes are
    /// released on a server reply.
    data_from: u64,
    /// Frame where the held client bytes started.
    held_from: u64,
    /// Frame where the client line being handled started (it may span segments).
    line_from: u64,
    /// Client bytes of a DATA body were lost: the end of data may have been in the gap.
    body_gap: bool,
}

/// How an authentication exchange is named in evidence: `AUTH PLAIN`, or `X-EXPS GSSAPI` as sent.
fn auth_named(mech: &str) -> String {
    if mech.starts_with("X-EXPS") {
        mech.to_string()
    } else {
        format!("AUTH {mech}")
    }
}

/// Adds an envelope path (cut at 320 bytes). Most sessions carry one sender and one recipient:
/// the first path takes room for one, not the four a `Vec` starts with (72 bytes less per open
/// flow and list).
fn push_path(list: &mut Vec<Vec<u8>>, path: &[u8]) {
    if list.capacity() == 0 {
        list.reserve_exact(1);
    }
    list.push(path.get(..path.len().min(320)).unwrap_or(&[]).to_vec());
}

fn strip_eol(line: &[u8]) -> &[u8] {
    let l = line.strip_suffix(b"\n").unwrap_or(line);
    l.strip_suffix(b"\r").unwrap_or(l)
}

fn quote(b: &[u8]) -> String {
    let s = terminal(b);
    if s.len() > 100 && s.chars().count() > 100 {
        let mut t: String = s.chars().take(100).collect();
        t.push('…');
        t
    } else {
        s
    }
}

impl Machine {
    /// A machine for a session whose server greeting will be the first reply when
    /// `greeting_expected` (the server's stream start was captured).
    pub fn new(greeting_expected: bool) -> Self {
        Self {
            cmode: ClientMode::Command,
            smode: ServerMode::Reply,
            pending: Pipeline::new(MAX_PENDING),
            lines: [Line::default(), Line::default()],
            acc: ReplyAcc::default(),
            held: Vec::new(),
            greeting_expected,
            replies_seen: 0,
            server_bytes: 0,
            auth_active: false,
            keep_credentials: false,
            tls: None,
            frame: 0,
            data_from: 0,
            held_from: 0,
            line_from: 0,
            body_gap: false,
        }
    }

    /// Keeps decoded AUTH secrets in the session (`--show-credentials`); off by default.
    pub fn keep_credentials(mut self, on: bool) -> Self {
        self.keep_credentials = on;
        self
    }

    /// Records an AUTH secret, decoded, when (and only when) asked to.
    fn credential(&self, mech: &str, line: &[u8], s: &mut Session) {
        use base64::Engine as _;
        if !self.keep_credentials || s.credentials.len() >= 8 {
            return;
        }
        let decoded = base64::engine::general_purpose::STANDARD.decode(line).ok();
        let text = match (mech, decoded) {
            ("PLAIN", Some(d)) => {
                let parts: Vec<String> =
                    d.split(|b| *b == 0).map(|p| String::from_utf8_lossy(p).into_owned()).collect();
                match parts.as_slice() {
                    [_, user, pass] => format!("PLAIN user={user} password={pass}"),
                    _ => format!("PLAIN {}", String::from_utf8_lossy(&d)),
                }
            }
            (_, Some(d)) if d.iter().all(|b| b.is_ascii_graphic() || *b == b' ') => {
                format!("{mech} {}", String::from_utf8_lossy(&d))
            }
            _ => format!("{mech} {}", String::from_utf8_lossy(line)),
        };
        s.credentials.push(text);
    }

    /// Whether the outcome is settled, so later gaps no longer matter.
    fn decided(&self, s: &Session) -> bool {
        if s.tls_handshake() {
            return true;
        }
        let hello_done = s.hello.as_ref().is_some_and(|h| h.reply.is_some());
        let upgrade_open = s.upgrade.as_ref().is_some_and(|u| u.reply.is_none() || u.proof == Proof::Pending);
        hello_done && s.commands_after_hello > 0 && !upgrade_open
    }

    /// Bytes were lost from `side`.
    pub fn gap(&mut self, side: Side, s: &mut Session) {
        if !self.decided(s) {
            s.gaps.before_decision = true;
        }
        if let Some(t) = s.transcript.as_deref_mut() {
            t.gap(side);
        }
        match side {
            Side::Client => {
                s.gaps.client += 1;
                match self.cmode {
                    ClientMode::Command | ClientMode::Hold => {
                        let partial = std::mem::take(&mut self.lines[0].buf);
                        if self.cmode == ClientMode::Command && !self.lines[0].resync {
                            self.cut_command(&partial, s);
                        }
                        self.lines[0].resync = true;
                        self.lines[0].at_gap = true;
                    }
                    ClientMode::Body { .. } => {
                        // The end of data may be in the gap; the server's reply will tell.
                        self.body_gap = true;
                        self.cmode = ClientMode::Body { state: 0 };
                    }
                    ClientMode::Tls => {
                        if let Some(t) = &mut self.tls {
                            t.gap(Side::Client, s);
                        }
                    }
                    _ => {}
                }
            }
            Side::Server => {
                s.gaps.server += 1;
                match self.smode {
                    ServerMode::Reply => {
                        // A line cut by the gap: its code still counts if it starts a reply.
                        let partial = std::mem::take(&mut self.lines[1].buf);
                        if !self.acc.active && !self.lines[1].resync && reply::code_of(&partial).is_some() {
                            self.server_line(strip_eol(&partial), s);
                        }
                        if self.acc.active {
                            self.complete_reply(true, s);
                        }
                        self.lines[1].resync = true;
                        self.lines[1].at_gap = true;
                    }
                    _ => {
                        if let Some(t) = &mut self.tls {
                            t.gap(Side::Server, s);
                        }
                    }
                }
            }
        }
    }

    /// A command line cut by a gap: MAIL, RCPT and the like still count (their replies must be
    /// matched); a cut verb that changes the stream's mode (DATA, BDAT, an upgrade, AUTH) only
    /// holds its reply's place, as its argument cannot be trusted.
    fn cut_command(&mut self, partial: &[u8], s: &mut Session) {
        if !command::starts_with_verb(partial) {
            return;
        }
        match command::parse(partial).0 {
            Verb::Data | Verb::Bdat | Verb::Starttls | Verb::XAnonymousTls | Verb::Auth | Verb::XExps => {
                if s.hello.is_some() {
                    s.commands_after_hello = s.commands_after_hello.saturating_add(1);
                }
                self.push(Pending::Other, s);
            }
            Verb::Other => {}
            _ => {
                let paths = (s.mail_from.len(), s.rcpt_to.len());
                self.client_line(strip_eol(partial), &[], s);
                // an envelope path cut short is marked so, not reported as a different address
                for (list, before) in [(&mut s.mail_from, paths.0), (&mut s.rcpt_to, paths.1)] {
                    if list.len() > before {
                        if let Some(p) = list.last_mut() {
                            p.extend_from_slice("…".as_bytes());
                        }
                    }
                }
            }
        }
    }

    /// A BDAT chunk lost in a gap still has to be skipped.
    pub fn client_gap_len(&mut self, n: u64) {
        if let ClientMode::Chunk { left } = &mut self.cmode {
            *left = left.saturating_sub(n);
            if *left == 0 {
                self.cmode = ClientMode::Command;
            }
        }
    }

    /// The session ended: replies still being read were cut.
    pub fn finish(&mut self, s: &mut Session) {
        if self.acc.active {
            self.complete_reply(true, s);
        }
        // A line that outgrew its buffer and never ended is as long as one that did.
        for l in &mut self.lines {
            if std::mem::take(&mut l.truncated) {
                s.anomalies.long_lines += 1;
            }
        }
    }

    /// Bytes from the client.
    pub fn client_data(&mut self, data: &[u8], frame: u64, s: &mut Session) {
        self.client_data_from(data, frame, frame, s);
    }

    /// Client bytes whose first ones came in frame `from` (held bytes released later).
    fn client_data_from(&mut self, mut data: &[u8], from: u64, frame: u64, s: &mut Session) {
        self.frame = frame;
        self.data_from = from;
        while !data.is_empty() {
            match self.cmode {
                ClientMode::Command => {
                    data = self.take_line(0, data, s, |m, line, rest, s| m.client_line(line, rest, s));
                }
                ClientMode::Hold => {
                    let room = MAX_HELD.saturating_sub(self.held.len());
                    if self.held.is_empty() {
                        self.held_from = from;
                    }
                    if data.len() > room {
                        // Nobody holds this much back waiting for a reply: it is a body.
                        self.held.extend_from_slice(data);
                        self.enter_body(s);
                        let held = std::mem::take(&mut self.held);
                        self.client_data_from(&held, self.held_from, frame, s);
                        return;
                    }
                    self.held.extend_from_slice(data);
                    return;
                }
                ClientMode::Body { mut state } => match scan_body(&mut state, data) {
                    Some(used) => {
                        s.message_bytes += used as u64;
                        if let Some(t) = s.transcript.as_deref_mut() {
                            t.body_bytes(self.frame, used as u64, true);
                        }
                        data = data.get(used..).unwrap_or(&[]);
                        self.body_gap = false;
                        self.push(Pending::EndOfData, s);
                        self.cmode = ClientMode::Command;
                    }
                    None => {
                        s.message_bytes += data.len() as u64;
                        if let Some(t) = s.transcript.as_deref_mut() {
                            t.body_bytes(self.frame, data.len() as u64, false);
                        }
                        self.cmode = ClientMode::Body { state };
                        return;
                    }
                },
                ClientMode::Chunk { left } => {
                    let take = (left.min(data.len() as u64)) as usize;
                    s.message_bytes += take as u64;
                    data = data.get(take..).unwrap_or(&[]);
                    let left = left - take as u64;
                    self.cmode = if left == 0 { ClientMode::Command } else { ClientMode::Chunk { left } };
                }
                ClientMode::ExpectTls => {
                    let first = data.first().copied().unwrap_or(0);
                    if (20..=23).contains(&first) {
                        self.cmode = ClientMode::Tls;
                        if let Some(t) = s.transcript.as_deref_mut() {
                            t.tls_start(frame);
                        }
                        if let Some(u) = &mut s.upgrade {
                            if u.proof == Proof::Pending {
                                u.proof = Proof::Tls;
                            }
                        }
                        self.tls.get_or_insert_with(Box::default);
                    } else {
                        if let Some(u) = &mut s.upgrade {
                            if u.proof == Proof::Pending {
                                u.proof = Proof::Cleartext;
                                s.note(Some(Side::Client), frame, "after the 220 the client went on in cleartext SMTP");
                                if let Some(t) = s.transcript.as_deref_mut() {
                                    t.note(frame, "no TLS followed the 220: the client went on in cleartext".into());
                                }
                            }
                        }
                        self.cmode = ClientMode::Command;
                        if self.smode == ServerMode::ExpectTls {
                            self.smode = ServerMode::Reply;
                        }
                    }
                }
                ClientMode::Tls => {
                    if let Some(t) = &mut self.tls {
                        t.feed(Side::Client, data, frame, s);
                    }
                    return;
                }
            }
        }
    }

    /// Bytes from the server.
    pub fn server_data(&mut self, mut data: &[u8], frame: u64, s: &mut Session) {
        self.frame = frame;
        self.server_bytes += data.len() as u64;
        while !data.is_empty() {
            match self.smode {
                ServerMode::Reply => {
                    data = self.take_line(1, data, s, |m, line, _rest, s| m.server_line(line, s));
                }
                ServerMode::ExpectTls => {
                    let first = data.first().copied().unwrap_or(0);
                    if (20..=23).contains(&first) {
                        self.smode = ServerMode::Tls;
                        self.tls.get_or_insert_with(Box::default);
                    } else {
                        if self.cmode != ClientMode::Tls {
                            s.find(
                                "response-injection",
                                Some(frame),
                                format!(
                                    "server sent {} cleartext bytes after the 220 before any ClientHello: {}",
                                    data.len(),
                                    quote(data.split(|b| *b == b'\n').next().unwrap_or(&[]))
                                ),
                            );
                        }
                        return;
                    }
                }
                ServerMode::Tls => {
                    if let Some(t) = &mut self.tls {
                        t.feed(Side::Server, data, frame, s);
                    }
                    return;
                }
            }
        }
    }

    /// Splits off one line (copying only when it spans segments) and hands it to `f`.
    fn take_line<'d>(
        &mut self,
        dir: usize,
        data: &'d [u8],
        s: &mut Session,
        f: impl FnOnce(&mut Self, &[u8], &[u8], &mut Session),
    ) -> &'d [u8] {
        let l = &mut self.lines[dir];
        if l.at_gap {
            l.at_gap = false;
            // Where each command or reply is its own segment (snaplen cuts, lost segments), the
            // bytes after a gap start a new line: no need to throw the line away.
            let starts = if dir == 0 { command::starts_with_verb(data) } else { reply::code_of(data).is_some() };
            if l.resync && starts {
                l.resync = false;
            }
        }
        let Some(pos) = memchr::memchr(b'\n', data) else {
            let l = &mut self.lines[dir];
            if !l.resync {
                if l.buf.is_empty() && dir == 0 {
                    l.from = self.data_from;
                }
                let room = MAX_LINE.saturating_sub(l.buf.len());
                if data.len() > room {
                    l.truncated = true;
                }
                l.buf.extend_from_slice(&data[..data.len().min(room)]);
            }
            return &[];
        };
        let (chunk, rest) = data.split_at(pos + 1);
        let l = &mut self.lines[dir];
        if l.resync {
            l.resync = false;
            l.buf.clear();
            return rest;
        }
        if l.buf.is_empty() {
            if dir == 0 {
                self.line_from = self.data_from;
            }
            f(self, strip_eol(chunk), rest, s);
        } else {
            if dir == 0 {
                self.line_from = l.from;
            }
            let mut buf = std::mem::take(&mut l.buf);
            let room = MAX_LINE.saturating_sub(buf.len());
            if chunk.len() > room {
                l.truncated = true;
            }
            buf.extend_from_slice(&chunk[..chunk.len().min(room)]);
            if l.truncated {
                l.truncated = false;
                s.anomalies.long_lines += 1;
            }
            f(self, strip_eol(&buf), rest, s);
            buf.clear();
            self.lines[dir].buf = buf;
        }
        rest
    }

    fn push(&mut self, p: Pending, s: &mut Session) {
        if !self.pending.push(p) {
            s.anomalies.pipeline_overflow += 1;
        }
    }

    fn client_line(&mut self, line: &[u8], rest: &[u8], s: &mut Session) {
        let frame = self.frame;
        let (verb, arg) = command::parse(line);
        if let Some(t) = s.transcript.as_deref_mut() {
            self.record_command(t, verb, line, arg);
        }
        if self.auth_active && verb == Verb::Other {
            // An AUTH continuation: the secret crossed, it is not kept.
            if line != b"*" && !line.is_empty() {
                let mech = s.auth_mechanisms.last().cloned().unwrap_or_default();
                s.find("cleartext-auth", Some(frame), format!("{} credentials sent in clear", auth_named(&mech)));
                self.credential(&mech, line, s);
            }
            return;
        }
        if s.hello.is_some() {
            s.commands_after_hello = s.commands_after_hello.saturating_add(1);
        }
        match verb {
            Verb::Ehlo | Verb::Helo | Verb::Lhlo => {
                let first = s.hello.is_none();
                let name = match verb {
                    Verb::Ehlo => "EHLO",
                    Verb::Helo => "HELO",
                    _ => "LHLO",
                };
                if first {
                    s.hello = Some(Hello { verb: name, arg: arg.to_vec(), frame, ..Hello::default() });
                    s.note(Some(Side::Client), frame, concat(&[name, " ", &quote(arg)]));
                }
                let ehlo = verb != Verb::Helo;
                if ehlo && !s.ehlo_sent {
                    s.ehlo_sent = true;
                }
                self.push(Pending::Hello { first, ehlo }, s);
            }
            Verb::Mail => {
                s.mail_transactions = s.mail_transactions.saturating_add(1);
                let path = crate::session::envelope_path(arg);
                if s.mail_transactions == 1 {
                    let domain = crate::session::address_domain(path);
                    s.note(Some(Side::Client), frame, concat(&["MAIL FROM in clear (domain ", &quote(domain), ")"]));
                }
                if s.mail_from.len() < crate::session::MAX_ADDRESSES {
                    push_path(&mut s.mail_from, path);
                }
                self.push(Pending::Mail, s);
            }
            Verb::Rcpt => {
                s.rcpt_count = s.rcpt_count.saturating_add(1);
                let path = crate::session::envelope_path(arg);
                if s.rcpt_to.len() < crate::session::MAX_ADDRESSES {
                    push_path(&mut s.rcpt_to, path);
                }
                self.push(Pending::Other, s);
            }
            Verb::Data => {
                self.push(Pending::Data, s);
                // With no server bytes at all (one-sided capture) a body follows DATA.
                if self.server_bytes == 0 {
                    self.enter_body(s);
                } else {
                    self.cmode = ClientMode::Hold;
                }
            }
            Verb::Bdat => {
                s.uses_bdat = true;
                match command::bdat_args(arg) {
                    Some((n, last)) => {
                        self.push(Pending::Bdat { last }, s);
                        if n > 0 {
                            self.cmode = ClientMode::Chunk { left: n };
                        }
                    }
                    None => self.push(Pending::Bdat { last: false }, s),
                }
            }
            Verb::Auth | Verb::XExps => {
                let mut words = arg.split(|b| *b == b' ').filter(|w| !w.is_empty());
                let mech = String::from_utf8_lossy(words.next().unwrap_or(b"")).to_ascii_uppercase();
                let mech: String =
                    mech.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_').take(32).collect();
                // Exchange hubs authenticate with X-EXPS where others say AUTH; the report keeps which.
                let mech = if verb == Verb::XExps { format!("X-EXPS {mech}") } else { mech };
                if !s.auth_mechanisms.contains(&mech) && s.auth_mechanisms.len() < 8 {
                    s.auth_mechanisms.push(mech.clone());
                }
                let named = auth_named(&mech);
                s.note(Some(Side::Client), frame, format!("{named} in clear"));
                if let Some(initial) = words.next().filter(|w| *w != b"=") {
                    s.find("cleartext-auth", Some(frame), format!("{named} credentials sent in clear"));
                    self.credential(&mech, initial, s);
                }
                self.auth_active = true;
                self.push(Pending::Auth, s);
            }
            Verb::Starttls | Verb::XAnonymousTls => {
                let v = if verb == Verb::Starttls { UpgradeVerb::Starttls } else { UpgradeVerb::XAnonymousTls };
                let first = s.upgrade.is_none();
                if first {
                    s.upgrade = Some(Upgrade { verb: v, frame, reply: None, reply_frame: 0, proof: Proof::Pending });
                    s.note(Some(Side::Client), frame, format!("client sent {}", v.name()));
                }
                if !rest.is_empty() {
                    s.find(
                        "starttls-injection",
                        Some(frame),
                        format!("{} bytes followed {} in the same segment (CVE-2011-0411)", rest.len(), v.name()),
                    );
                }
                self.push(Pending::Upgrade { first }, s);
                self.cmode = if self.server_bytes == 0 { ClientMode::ExpectTls } else { ClientMode::Hold };
            }
            Verb::Quit => {
                if s.quit.is_none() {
                    s.quit = Some((frame, None));
                }
                self.push(Pending::Quit, s);
            }
            Verb::Rset | Verb::Known | Verb::Other => self.push(Pending::Other, s),
        }
    }

    fn server_line(&mut self, line: &[u8], s: &mut Session) {
        let r = reply::parse(line);
        if let Some(t) = s.transcript.as_deref_mut() {
            t.reply(self.frame, r.code, line);
        }
        if !self.acc.active {
            if r.code.is_none() {
                s.anomalies.malformed_replies += 1;
            }
            let ehlo = r.code == Some(250)
                && !self.greeting_expected
                && matches!(self.pending.front(), Some(Pending::Hello { first: true, ehlo: true }));
            // The first line's buffer is reused from reply to reply.
            let mut first = std::mem::take(&mut self.acc.first);
            first.clear();
            first.extend_from_slice(r.text.get(..r.text.len().min(512)).unwrap_or(&[]));
            self.acc = ReplyAcc { active: true, code: r.code, first, ehlo, exts: Vec::new(), frame: self.frame };
        } else if self.acc.ehlo && self.acc.exts.len() < MAX_EXTENSIONS + MAX_DECISIVE_EXTENSIONS {
            let text = command::trim(r.text);
            let end = text.iter().position(|b| *b == b' ').unwrap_or(text.len());
            let (kw, params) = text.split_at(end);
            // Past the cap only what the verdict turns on is kept: an offer padded behind a
            // hundred filler lines is still an offer.
            if !kw.is_empty() && (self.acc.exts.len() < MAX_EXTENSIONS || decisive_extension(kw)) {
                self.acc.exts.push(Extension { keyword: kw.to_vec(), params: command::trim(params).to_vec() });
            }
        }
        if !r.more || r.code.is_none() {
            self.complete_reply(false, s);
        }
    }

    fn complete_reply(&mut self, cut: bool, s: &mut Session) {
        let mut acc = std::mem::take(&mut self.acc);
        self.reply_done(&mut acc, cut, s);
        // Keep the text buffer for the next reply.
        acc.first.clear();
        self.acc.first = acc.first;
    }

    fn reply_done(&mut self, acc: &mut ReplyAcc, cut: bool, s: &mut Session) {
        let code = acc.code;
        let frame = acc.frame;
        self.replies_seen += 1;
        let greeting = self.greeting_expected
            || (self.replies_seen == 1 && code == Some(220) && self.pending.is_empty() && s.banner.is_none());
        if greeting {
            self.greeting_expected = false;
            s.banner = Some(acc.first.clone());
            s.banner_code = code;
            let mut n = itoa::Buffer::new();
            let code = code.map_or("???", |c| n.format(c));
            s.note(Some(Side::Server), frame, concat(&["greeting ", code, " ", &quote(&acc.first)]));
            return;
        }
        let Some(front) = self.pending.front() else {
            if self.body_gap && matches!(self.cmode, ClientMode::Body { .. }) {
                // A reply while the body is still open after lost client bytes: the end of data
                // was in the gap, and this is its reply.
                self.body_gap = false;
                self.cmode = ClientMode::Command;
                if code.is_some_and(|c| (200..300).contains(&c)) {
                    s.messages_accepted = s.messages_accepted.saturating_add(1);
                }
                s.note(
                    Some(Side::Server),
                    frame,
                    "end of data lost in a capture gap; the server's reply closes the body",
                );
                return;
            }
            s.anomalies.unsolicited_replies += 1;
            s.note(Some(Side::Server), frame, {
                let mut n = itoa::Buffer::new();
                concat(&["unsolicited reply ", code.map_or("???", |c| n.format(c)), " ", &quote(&acc.first)])
            });
            return;
        };
        if front == Pending::Auth && code == Some(334) {
            return;
        }
        self.pending.pop_front();
        let ok = code.is_some_and(|c| (200..300).contains(&c));
        match front {
            Pending::Hello { first, ehlo } => {
                if first {
                    if let Some(h) = &mut s.hello {
                        h.reply = Some(code);
                        h.reply_frame = frame;
                        h.reply_cut = cut;
                    }
                }
                if first && ehlo && code == Some(250) {
                    let host = acc.first.split(|b| *b == b' ').next().unwrap_or(&[]).to_vec();
                    self.ehlo_evidence(&acc.exts, frame, cut, s);
                    s.ehlo_reply = Some(EhloReply { host, extensions: std::mem::take(&mut acc.exts), frame, cut });
                } else if first {
                    s.note(Some(Side::Server), frame, {
                        let mut n = itoa::Buffer::new();
                        concat(&["hello answered ", code.map_or("without a code", |c| n.format(c))])
                    });
                }
            }
            Pending::Data => {
                if code == Some(354) {
                    self.enter_body(s);
                } else {
                    self.cmode = ClientMode::Command;
                }
                self.release_held(s);
            }
            Pending::EndOfData | Pending::Bdat { last: true } => {
                if let (Pending::EndOfData, Some(t)) = (front, s.transcript.as_deref_mut()) {
                    t.body_reply(code);
                }
                if ok {
                    s.messages_accepted = s.messages_accepted.saturating_add(1);
                    if s.messages_accepted == 1 {
                        let mut n = itoa::Buffer::new();
                        let bytes = n.format(s.message_bytes);
                        s.note(Some(Side::Server), frame, concat(&["message accepted in clear (", bytes, " bytes)"]));
                    }
                }
            }
            Pending::Upgrade { first } => {
                if first {
                    if let Some(u) = &mut s.upgrade {
                        u.reply = Some(code);
                        u.reply_frame = frame;
                    }
                    let mut n = itoa::Buffer::new();
                    let answer = code.map_or("???", |c| n.format(c));
                    s.note(Some(Side::Server), frame, concat(&["upgrade answered ", answer, " ", &quote(&acc.first)]));
                }
                if code == Some(220) {
                    self.cmode = ClientMode::ExpectTls;
                    self.smode = ServerMode::ExpectTls;
                    // Cleartext the client sent after the verb, before this 220, was injected
                    // (CVE-2011-0411): a safe server discards it, so it proves nothing about the
                    // upgrade; the client's next bytes do. A ClientHello sent early still counts.
                    if self.held.first().is_some_and(|b| !(20..=23).contains(b)) {
                        s.find(
                            "starttls-injection",
                            Some(frame),
                            format!(
                                "{} cleartext bytes were sent after the upgrade verb, before its 220",
                                self.held.len()
                            ),
                        );
                        self.held.clear();
                    }
                } else {
                    self.cmode = ClientMode::Command;
                }
                self.release_held(s);
            }
            Pending::Auth => self.auth_active = false,
            Pending::Quit => {
                if let Some(q) = &mut s.quit {
                    if q.1.is_none() {
                        q.1 = Some(code);
                    }
                }
            }
            Pending::Mail | Pending::Bdat { last: false } | Pending::Other => {}
        }
    }

    fn ehlo_evidence(&self, exts: &[Extension], frame: u64, cut: bool, s: &mut Session) {
        let offers: Vec<&str> = exts
            .iter()
            .filter_map(|e| {
                if e.is("STARTTLS") {
                    Some("STARTTLS")
                } else if e.is("X-ANONYMOUSTLS") {
                    Some("X-ANONYMOUSTLS")
                } else {
                    None
                }
            })
            .collect();
        let cut = if cut { " (reply cut short)" } else { "" };
        if offers.is_empty() && !cut.is_empty() {
            s.note(Some(Side::Server), frame, "EHLO reply cut short before any upgrade offer: offer unknown");
        } else if offers.is_empty() {
            s.note(Some(Side::Server), frame, "EHLO reply offers no upgrade");
        } else {
            s.note(Some(Side::Server), frame, concat(&["EHLO reply offers ", &offers.join(", "), cut]));
        }
        for e in exts {
            let kw = &e.keyword;
            let masked = e.is_masked();
            if e.is("XXXXXXXA") && !offers.contains(&"STARTTLS") {
                s.find(
                    "starttls-stripped",
                    Some(frame),
                    "EHLO reply carries XXXXXXXA where STARTTLS was: a middlebox (Cisco ESMTP inspection) masked it",
                );
            } else if masked && !e.is("XXXXXXXA") {
                s.find("ehlo-masked", Some(frame), format!("EHLO reply carries a masked extension {}", quote(kw)));
            }
        }
    }

    /// A DATA body starts.
    fn enter_body(&mut self, s: &mut Session) {
        self.cmode = ClientMode::Body { state: 1 };
        if let Some(t) = s.transcript.as_deref_mut() {
            t.body_start(self.frame);
        }
    }

    /// Records a client line; an AUTH secret (initial response or continuation) is masked
    /// unless credentials are kept.
    fn record_command(&self, t: &mut crate::session::Transcript, verb: Verb, line: &[u8], arg: &[u8]) {
        let frame = self.frame;
        if self.auth_active && verb == Verb::Other {
            if line == b"*" || line.is_empty() {
                t.command(frame, line);
            } else {
                t.secret(self.line_from..=frame, b"", line, self.keep_credentials);
            }
            return;
        }
        if matches!(verb, Verb::Auth | Verb::XExps) {
            // "AUTH MECH [initial-response]": the verb and mechanism are shown, the rest is secret.
            let mech_end = arg.iter().position(|b| *b == b' ').unwrap_or(arg.len());
            let initial = command::trim(arg.get(mech_end..).unwrap_or(&[]));
            if !initial.is_empty() && initial != b"=" {
                // `arg` is a slice of `line`: where it starts is a pointer difference.
                let start = (arg.as_ptr() as usize).wrapping_sub(line.as_ptr() as usize).min(line.len());
                let shown = (start + mech_end).min(line.len());
                t.secret(self.line_from..=frame, line.get(..shown).unwrap_or(line), initial, self.keep_credentials);
                return;
            }
        }
        t.command(frame, line);
    }

    fn release_held(&mut self, s: &mut Session) {
        if self.held.is_empty() {
            return;
        }
        let held = std::mem::take(&mut self.held);
        if self.cmode == ClientMode::Hold {
            self.held = held;
            return;
        }
        let frame = self.frame;
        self.client_data_from(&held, self.held_from, frame, s);
    }
}

/// A line start followed by a dot: the only place the end of data can begin.
static LINE_DOT: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
    std::sync::LazyLock::new(|| memchr::memmem::Finder::new(b"\n."));

/// Scans a DATA body for `CRLF.CRLF` (bare LF tolerated). `state`: 0 mid-line, 1 at the
/// start of a line, 2 after a leading dot, 3 after the dot and CR. Returns the offset just past
/// the terminator, or None (with `state` updated) when `data` ends first.
///
/// Mid-line, the state can only move on at a `\n` followed by `.`, so the body is searched for
/// that pair (SIMD) instead of line by line; the byte-wise machine takes over from there.
fn scan_body(state: &mut u8, data: &[u8]) -> Option<usize> {
    let mut i = 0;
    while let Some(&b) = data.get(i) {
        match *state {
            0 => {
                let rest = data.get(i..).unwrap_or(&[]);
                match LINE_DOT.find(rest) {
                    Some(p) => {
                        i += p + 2;
                        *state = 2;
                    }
                    None => {
                        *state = u8::from(rest.last() == Some(&b'\n'));
                        return None;
                    }
                }
            }
            1 => {
                *state = match b {
                    b'.' => 2,
                    b'\n' => 1,
                    _ => 0,
                };
                i += 1;
            }
            2 => {
                match b {
                    b'\r' => *state = 3,
                    b'\n' => return Some(i + 1),
                    _ => *state = 0,
                }
                i += 1;
            }
            _ => {
                if b == b'\n' {
                    return Some(i + 1);
                }
                *state = 0;
                i += 1;
            }
        }
    }
    None
}

/// An EHLO keyword the verdict or a finding turns on: an upgrade offer or a masked one.
fn decisive_extension(kw: &[u8]) -> bool {
    kw.eq_ignore_ascii_case(b"STARTTLS")
        || kw.eq_ignore_ascii_case(b"X-ANONYMOUSTLS")
        || crate::session::is_masked_keyword(kw)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_sent_over_two_segments_marks_both_frames() {
        let mut s = Session::new("10.0.0.1:1000".parse().unwrap(), "10.0.0.2:587".parse().unwrap());
        s.transcript = Some(Box::default());
        let mut m = Machine::new(true);
        m.server_data(b"220 mx ESMTP\r\n", 1, &mut s);
        m.client_data(b"EHLO c\r\n", 2, &mut s);
        m.server_data(b"250-mx\r\n250 AUTH PLAIN\r\n", 3, &mut s);
        m.client_data(b"AUTH PLAIN AGpvZQBz", 4, &mut s);
        m.client_data(b"ZWNyZXQ=\r\n", 5, &mut s);
        m.server_data(b"235 ok\r\n", 6, &mut s);
        m.client_data(b"QUIT\r\n", 7, &mut s);
        let t = s.transcript.as_deref().unwrap();
        assert!(t.secret_in(4) && t.secret_in(5), "{:?}", t.secret_frames);
        assert!(!t.secret_in(2) && !t.secret_in(7), "{:?}", t.secret_frames);
    }

    fn scan_all(parts: &[&[u8]]) -> Option<(usize, usize)> {
        let mut st = 1;
        for (k, p) in parts.iter().enumerate() {
            if let Some(n) = scan_body(&mut st, p) {
                return Some((k, n));
            }
        }
        None
    }

    #[test]
    fn end_of_data_is_found_across_segments() {
        assert_eq!(scan_all(&[b"Subject: x\r\n\r\nbody\r", b"\n.", b"\r\nQUIT\r\n"]), Some((2, 2)));
    }

    #[test]
    fn a_dot_inside_a_line_is_not_the_end() {
        assert_eq!(scan_all(&[b"a.b\r\n..stuffed\r\n"]), None);
    }

    #[test]
    fn an_empty_body_ends_at_once() {
        assert_eq!(scan_all(&[b".\r\n"]), Some((0, 3)));
    }

    /// The byte-at-a-time machine the fast scan must agree with.
    fn scan_bytewise(state: &mut u8, data: &[u8]) -> Option<usize> {
        for (i, &b) in data.iter().enumerate() {
            *state = match (*state, b) {
                (0, b'\n') => 1,
                (0, _) => 0,
                (1, b'.') => 2,
                (1, b'\n') => 1,
                (1, _) => 0,
                (2, b'\r') => 3,
                (2 | 3, b'\n') => return Some(i + 1),
                _ => 0,
            };
        }
        None
    }

    proptest::proptest! {
        #[test]
        fn the_fast_body_scan_agrees_with_the_bytewise_machine(
            parts in proptest::collection::vec(proptest::collection::vec(proptest::sample::select(b"\r\n.aX".to_vec()), 0..24), 1..6),
            start in 0u8..4,
        ) {
            let (mut fast, mut slow) = (start, start);
            for p in &parts {
                let (a, b) = (scan_body(&mut fast, p), scan_bytewise(&mut slow, p));
                proptest::prop_assert_eq!(a, b);
                if a.is_some() {
                    break;
                }
                proptest::prop_assert_eq!(fast, slow);
            }
        }
    }
}
