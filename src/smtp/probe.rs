//! Deciding what a flow carries from its first bytes, as the spec's "What carries SMTP" says:
//! a command only SMTP has (EHLO, HELO, LHLO, `MAIL FROM:`, `RCPT TO:`, X-ANONYMOUSTLS, or a
//! bare STARTTLS answered in SMTP's reply form); on a mail port also a 3-digit greeting when
//! nothing of the client's speaks another protocol. Server lines of another protocol (`+OK`,
//! `* OK`, IRC's `:server ...`) and client commands of FTP, POP3, NNTP or IRC rule SMTP out. TLS
//! from the first byte is implicit TLS on a mail port; a proxy preamble (SOCKS4/5, HTTP CONNECT)
//! is measured and what follows it is judged the same way, against the tunnel's target port.

use super::command::{self, Verb};
use super::reply;
use crate::session::Tunnel;
use crate::tls;

/// What the first bytes show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Not enough bytes yet.
    Wait,
    /// SMTP; `client` is the direction index of the client.
    Smtp { client: usize },
    /// ClientHello first on a mail port.
    ImplicitTls { client: usize },
    /// A proxy preamble: skip `skip[d]` bytes of direction `d`, then decide again on what follows,
    /// with `target` (the port the client asked the proxy for, when it is readable) as the
    /// server's port.
    Tunnel { client: usize, kind: Tunnel, skip: [usize; 2], target: Option<u16> },
    /// Payload that is neither SMTP nor TLS.
    NotSmtp { client: usize },
    /// TLS records on a mail port in a capture that started inside the session (no handshake,
    /// no ClientHello): encrypted SMTP whose beginning was not captured.
    MidTls { client: usize },
    /// Not ours to report (e.g. TLS on a non-mail port, another protocol off the mail ports).
    Ignore,
}

/// What the probe knows about the flow.
#[derive(Debug, Clone, Copy)]
pub struct Input<'a> {
    /// First bytes of each direction.
    pub bytes: [&'a [u8]; 2],
    /// Client direction from the TCP handshake, if seen.
    pub client_hint: Option<usize>,
    /// Whether each direction's bytes start at the stream's beginning.
    pub from_start: [bool; 2],
    /// Port of the sender of each direction.
    pub ports: [u16; 2],
    /// Whether each direction's sender port is a mail port.
    pub mail_port: [bool; 2],
    /// No more bytes will come (flow ended or probe buffer full).
    pub last_call: bool,
}

/// Bytes after which a direction is judged on what it has.
pub const ENOUGH: usize = 2048;

/// Client lines searched for a command that tells the protocol (a pipelining client or a
/// mid-session start may put a few neutral lines first).
const CLIENT_LOOK: usize = 8;

fn lines(b: &[u8], from_start: bool, look: usize) -> impl Iterator<Item = &[u8]> {
    // Mid-stream the first piece may be the tail of a line we never saw; it is looked at
    // anyway (a false start only costs a miss), and so is one more line.
    let look = if from_start { look } else { look + 1 };
    // Only complete lines count (the last piece has no line end yet). The probe runs on every
    // flow, over up to `ENOUGH` bytes a side: line ends are found with memchr, not byte by byte.
    let mut start = 0;
    memchr::memchr_iter(b'\n', b).take(look).map(move |end| {
        let l = b.get(start..end).unwrap_or(&[]);
        start = end + 1;
        l.strip_suffix(b"\r").unwrap_or(l)
    })
}

fn complete_lines(b: &[u8]) -> usize {
    memchr::memchr_iter(b'\n', b).count()
}

/// A first line still without its end after [`ENOUGH`] bytes: judged on how it starts, or a
/// greeting or EHLO padded beyond the probe's patience would hide a real session.
fn unfinished_first_line(b: &[u8], from_start: bool) -> Option<&[u8]> {
    (from_start && b.len() >= ENOUGH && memchr::memchr(b'\n', b).is_none()).then_some(b)
}

fn shows_reply(b: &[u8], from_start: bool) -> bool {
    lines(b, from_start, 3).chain(unfinished_first_line(b, from_start)).any(|l| reply::code_of(l).is_some())
}

fn shows_verb(b: &[u8], from_start: bool) -> bool {
    lines(b, from_start, 3).any(command::is_verb_line)
        || unfinished_first_line(b, from_start).is_some_and(command::starts_with_verb)
}

/// What one client line says about the protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Says {
    /// A command only SMTP has.
    Smtp,
    /// STARTTLS alone: SMTP only if the server answers in SMTP's reply form.
    Starttls,
    /// A command of FTP, POP3, NNTP or IRC.
    Foreign,
    /// Nothing either way (AUTH, QUIT, NOOP, RSET, DATA, message text, ...).
    Nothing,
}

/// FTP, POP3, NNTP and IRC commands that SMTP does not have, by their verb alone.
const FOREIGN_VERBS: &[&[u8]] = &[
    // FTP
    b"USER",
    b"PASS",
    b"FEAT",
    b"SYST",
    b"PASV",
    b"EPSV",
    b"LIST",
    b"RETR",
    b"CWD",
    // POP3
    b"APOP",
    b"STLS",
    b"CAPA",
    // NNTP
    b"CAPABILITIES",
    b"GROUP",
    b"ARTICLE",
    // IRC
    b"NICK",
    b"CAP",
];

/// Classifies one client line. `any_case`: a client stream read from its start holds commands,
/// whose verbs are case-insensitive; mid-stream the line may be message text ("List of ..."), so
/// another protocol's verbs count there only in the upper case their clients send.
fn client_says(line: &[u8], any_case: bool) -> Says {
    let (verb, arg) = command::parse(line);
    let starts_ci = |s: &[u8], p: &[u8]| s.get(..p.len()).is_some_and(|h| h.eq_ignore_ascii_case(p));
    match verb {
        Verb::Ehlo | Verb::Helo | Verb::Lhlo | Verb::XAnonymousTls => return Says::Smtp,
        Verb::Mail if starts_ci(arg, b"FROM:") => return Says::Smtp,
        Verb::Rcpt if starts_ci(arg, b"TO:") => return Says::Smtp,
        Verb::Starttls => return Says::Starttls,
        _ => {}
    }
    let end = line.iter().position(|b| *b == b' ' || *b == b'\t').unwrap_or(line.len());
    let word = line.get(..end).unwrap_or(&[]);
    let is = |w: &[u8]| if any_case { word.eq_ignore_ascii_case(w) } else { word == w };
    let arg_is = |a: &[u8]| if any_case { arg.eq_ignore_ascii_case(a) } else { arg == a };
    let foreign = FOREIGN_VERBS.iter().any(|v| is(v))
        || (is(b"MODE") && arg_is(b"READER"))
        // FTP's AUTH TLS / AUTH SSL and GridFTP's AUTH GSSAPI, before any EHLO (the first telling
        // line wins, so one after an EHLO never gets here).
        || (is(b"AUTH") && (arg_is(b"TLS") || arg_is(b"SSL") || arg_is(b"TLS-C") || (any_case && arg_is(b"GSSAPI"))));
    if foreign {
        Says::Foreign
    } else {
        Says::Nothing
    }
}

/// What the client's first lines say: the first line that tells either way.
fn client_verdict(b: &[u8], from_start: bool) -> Says {
    let mut said = Says::Nothing;
    for l in lines(b, from_start, CLIENT_LOOK).chain(unfinished_first_line(b, from_start)) {
        match client_says(l, from_start) {
            Says::Nothing => {}
            // A bare STARTTLS waits for its reply; what comes after it is TLS or SMTP.
            Says::Starttls => return Says::Starttls,
            s => {
                said = s;
                break;
            }
        }
    }
    said
}

/// Whether a line is text (a TLS record or other binary after a line end is not a line).
fn is_text(l: &[u8]) -> bool {
    l.iter().all(|b| *b >= 0x20 || *b == b'\t')
}

/// A server line of another protocol: POP3's `+OK`/`-ERR`, IMAP's untagged `* `, IRC's
/// `:prefix` or unprefixed NOTICE, an HTTP status line, an SSH banner.
fn foreign_server_line(l: &[u8]) -> bool {
    const STARTS: &[&[u8]] = &[b"+OK", b"-ERR", b"+ ", b"* ", b"NOTICE ", b"PING :", b"HTTP/", b"SSH-"];
    STARTS.iter().any(|s| l.starts_with(s)) || (l.first() == Some(&b':') && l.get(1).is_some_and(|c| *c > b' '))
}

/// Whether the server's first text lines rule SMTP out.
fn server_is_foreign(b: &[u8], from_start: bool) -> bool {
    let skip = usize::from(!from_start);
    lines(b, from_start, CLIENT_LOOK).skip(skip).take_while(|l| is_text(l)).any(foreign_server_line)
}

/// Whether the server's replies include an SMTP answer to a STARTTLS: 220 (go ahead) or a
/// 4xx/5xx refusal, after its greeting (a stream read from its start opens with one).
fn answers_starttls(b: &[u8], from_start: bool) -> bool {
    lines(b, from_start, CLIENT_LOOK)
        .take_while(|l| is_text(l))
        .map(reply::parse)
        .filter(|r| r.code.is_some() && !r.more)
        .filter_map(|r| r.code)
        .skip(usize::from(from_start))
        .any(|c| c == 220 || (400..600).contains(&c))
}

/// Decides from the input.
pub fn decide(i: &Input<'_>) -> Decision {
    let [b0, b1] = i.bytes;
    let has = [!b0.is_empty(), !b1.is_empty()];
    // What each side's bytes show, each looked at only where a decision needs it: the probe
    // runs on every new flow, and with the client known from the handshake most of these are
    // never asked (pure functions of the bytes, so asking later changes nothing).
    let ch = |d: usize| tls::looks_like_client_hello(i.bytes[d]);
    let reply = |d: usize| shows_reply(i.bytes[d], i.from_start[d]);
    let verb = |d: usize| shows_verb(i.bytes[d], i.from_start[d]);
    // Who is the client?
    let client = i.client_hint.unwrap_or_else(|| {
        let reply = [reply(0), reply(1)];
        if ch(0) == Some(true) && i.from_start[0] {
            0
        } else if (ch(1) == Some(true) && i.from_start[1]) || (reply[0] && !reply[1]) {
            1
        } else if reply[1] && !reply[0] {
            0
        } else if verb(0) != verb(1) {
            usize::from(verb(1))
        } else if i.mail_port[1] != i.mail_port[0] {
            usize::from(i.mail_port[0])
        } else {
            // The higher port is usually the ephemeral one.
            usize::from(i.ports[1] > i.ports[0])
        }
    });
    let server = 1 - client;
    let cb = i.bytes[client];
    let sb = i.bytes[server];
    let mail_server = i.mail_port[server];
    let not_smtp = if mail_server { Decision::NotSmtp { client } } else { Decision::Ignore };

    if i.from_start[client] {
        match ch(client) {
            Some(true) => return if mail_server { Decision::ImplicitTls { client } } else { Decision::Ignore },
            None if has[client] && !i.last_call => return Decision::Wait,
            _ => {}
        }
        if let Some(t) = tunnel(cb, sb, client) {
            return t;
        }
    }
    if server_is_foreign(sb, i.from_start[server]) {
        return not_smtp;
    }
    match client_verdict(cb, i.from_start[client]) {
        Says::Foreign => return not_smtp,
        Says::Smtp => return Decision::Smtp { client },
        Says::Starttls if answers_starttls(sb, i.from_start[server]) => return Decision::Smtp { client },
        Says::Starttls | Says::Nothing => {}
    }
    // The client's first line, complete (or as long as the probe waits for one): what it did not
    // say about the protocol, it will not say later.
    let client_judged = complete_lines(cb) >= 1 || cb.len() >= ENOUGH;
    let server_replies = reply(server);
    if mail_server && server_replies {
        // A greeting alone does not settle it: the client may still open with a ClientHello
        // (implicit TLS against a cleartext server) or another protocol's command.
        if !(client_judged || i.last_call) {
            return Decision::Wait;
        }
        return Decision::Smtp { client };
    }
    let judged = |d: usize| memchr::memchr(b'\n', i.bytes[d]).is_some() || i.bytes[d].len() >= ENOUGH;
    // Off the mail ports a client whose first lines hint at SMTP (a neutral verb against a
    // 3-digit greeting) gets a few more lines to show a command only SMTP has.
    let hinting =
        !mail_server && (server_replies || verb(client)) && complete_lines(cb) < CLIENT_LOOK && cb.len() < ENOUGH;
    if i.last_call || (judged(0) && judged(1) && !hinting) || b0.len() + b1.len() >= 4 * ENOUGH {
        if !has[0] && !has[1] {
            return Decision::Wait;
        }
        let mid_tls =
            !i.from_start[0] && !i.from_start[1] && i.bytes.iter().all(|b| b.is_empty() || tls::looks_like_records(b));
        return match (mail_server, mid_tls) {
            (false, _) => Decision::Ignore,
            (true, true) => Decision::MidTls { client },
            (true, false) => Decision::NotSmtp { client },
        };
    }
    Decision::Wait
}

/// Recognises a proxy preamble and measures it in both directions.
fn tunnel(c: &[u8], s: &[u8], client: usize) -> Option<Decision> {
    let (kind, cskip, sskip) = if c.starts_with(b"CONNECT ") {
        (Tunnel::HttpConnect, http_head(c), http_head(s))
    } else if c.first() == Some(&4) && c.get(1) == Some(&1) {
        (Tunnel::Socks4, socks4_request(c), if s.len() >= 8 { Some(8) } else { None })
    } else if c.first() == Some(&5) && c.get(1).is_some_and(|n| (1..=16).contains(n)) {
        let (cs, ss) = socks5(c, s);
        (Tunnel::Socks5, cs, ss)
    } else {
        return None;
    };
    match (cskip, sskip) {
        (Some(a), Some(b)) => {
            let mut skip = [0; 2];
            skip[client] = a;
            skip[1 - client] = b;
            let target = match kind {
                Tunnel::HttpConnect => connect_port(c),
                Tunnel::Socks4 => c.get(2..4).map(|p| u16::from_be_bytes([p[0], p[1]])),
                Tunnel::Socks5 => c.get(a.checked_sub(2)?..a).map(|p| u16::from_be_bytes([p[0], p[1]])),
            };
            Some(Decision::Tunnel { client, kind, skip, target })
        }
        _ => Some(Decision::Wait),
    }
}

/// The port of `CONNECT host:port HTTP/1.x` (IPv6 hosts in brackets).
fn connect_port(c: &[u8]) -> Option<u16> {
    let line = c.split(|b| *b == b'\r' || *b == b'\n').next()?;
    let target = line.split(|b| *b == b' ').nth(1)?;
    let port = target.rsplit(|b| *b == b':').next()?;
    std::str::from_utf8(port).ok()?.parse().ok()
}

fn http_head(b: &[u8]) -> Option<usize> {
    memchr::memmem::find(b, b"\r\n\r\n").map(|p| p + 4)
}

fn socks4_request(c: &[u8]) -> Option<usize> {
    // VN CD DSTPORT(2) DSTIP(4) USERID NUL [DOMAIN NUL for 4a]
    let user_end = 8 + c.get(8..)?.iter().position(|b| *b == 0)? + 1;
    let ip = c.get(4..8)?;
    if ip[0] == 0 && ip[1] == 0 && ip[2] == 0 && ip[3] != 0 {
        let dom_end = user_end + c.get(user_end..)?.iter().position(|b| *b == 0)? + 1;
        return Some(dom_end);
    }
    Some(user_end)
}

fn socks5_addr_len(b: &[u8], at: usize) -> Option<usize> {
    // ATYP then address then port
    match b.get(at)? {
        1 => Some(1 + 4 + 2),
        4 => Some(1 + 16 + 2),
        3 => Some(1 + 1 + usize::from(*b.get(at + 1)?) + 2),
        _ => None,
    }
}

fn socks5(c: &[u8], s: &[u8]) -> (Option<usize>, Option<usize>) {
    let client = || -> Option<usize> {
        let n = usize::from(*c.get(1)?);
        let mut at = 2 + n;
        let method = *s.get(1)?;
        if method == 2 {
            // RFC 1929 username/password sub-negotiation.
            let ulen = usize::from(*c.get(at + 1)?);
            let plen = usize::from(*c.get(at + 2 + ulen)?);
            at += 3 + ulen + plen;
        }
        let req_end = at + 3 + socks5_addr_len(c, at + 3)?;
        (c.len() >= req_end).then_some(req_end)
    };
    let server = || -> Option<usize> {
        let mut at = 2;
        if *s.get(1)? == 2 {
            at += 2;
        }
        let end = at + 3 + socks5_addr_len(s, at + 3)?;
        (s.len() >= end).then_some(end)
    };
    (client(), server())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input<'a>(c: &'a [u8], s: &'a [u8]) -> Input<'a> {
        Input {
            bytes: [c, s],
            client_hint: Some(0),
            from_start: [true, true],
            ports: [40000, 25],
            mail_port: [false, true],
            last_call: false,
        }
    }

    #[test]
    fn tls_records_without_their_start_on_a_mail_port_are_mid_session_tls() {
        let c = [23, 3, 3, 0, 4, 1, 2, 3, 4];
        let s = [23, 3, 3, 0, 2, 9, 9, 21, 3, 3, 0, 2, 1, 0];
        let i = Input { from_start: [false, false], client_hint: None, last_call: true, ..input(&c, &s) };
        assert_eq!(decide(&i), Decision::MidTls { client: 0 });
        // Not records: a length of zero, a bad version.
        let bad = [23, 3, 3, 0, 0];
        let i = Input { from_start: [false, false], client_hint: None, last_call: true, ..input(&bad, &s) };
        assert_eq!(decide(&i), Decision::NotSmtp { client: 0 });
    }

    #[test]
    fn greeting_then_ehlo_is_smtp() {
        assert_eq!(decide(&input(b"EHLO x\r\n", b"220 mx ESMTP\r\n")), Decision::Smtp { client: 0 });
    }

    #[test]
    fn a_greeting_longer_than_the_probe_waits_for_still_shows_a_reply() {
        let mut greeting = b"220 ".to_vec();
        greeting.resize(ENOUGH + 100, b'B');
        let i = Input { client_hint: None, ..input(b"", &greeting) };
        assert_eq!(decide(&Input { last_call: true, ..i }), Decision::Smtp { client: 0 });
        let mut junk = b"22O ".to_vec();
        junk.resize(ENOUGH + 100, b'B');
        let i = Input { client_hint: None, last_call: true, ..input(b"", &junk) };
        assert_eq!(decide(&i), Decision::NotSmtp { client: 0 });
    }

    #[test]
    fn banner_alone_waits_for_the_client() {
        assert_eq!(decide(&input(b"", b"220 mx ESMTP\r\n")), Decision::Wait);
    }

    #[test]
    fn client_hello_first_on_a_mail_port_is_implicit_tls() {
        let ch = [0x16, 3, 1, 0, 100, 1, 0, 0];
        assert_eq!(decide(&input(&ch, b"220 mx\r\n")), Decision::ImplicitTls { client: 0 });
        let mut i = input(&ch, b"");
        i.mail_port = [false, false];
        assert_eq!(decide(&i), Decision::Ignore);
    }

    #[test]
    fn junk_from_the_client_waits_for_the_server() {
        assert_eq!(decide(&input(b"\x01\x02garbage\r\n", b"")), Decision::Wait);
        assert_eq!(decide(&input(b"\x01\x02garbage\r\n", b"220 mx\r\n")), Decision::Smtp { client: 0 });
        assert_eq!(decide(&input(b"\x01\x02garbage\r\n", b"\x00\x01\n")), Decision::NotSmtp { client: 0 });
    }

    #[test]
    fn server_role_without_handshake_comes_from_the_replies() {
        let mut i = input(b"250 OK\r\n", b"MAIL FROM:<a@b>\r\n");
        i.client_hint = None;
        i.from_start = [false, false];
        i.bytes = [b"x\r\n250 OK\r\n", b"y\r\nMAIL FROM:<a@b>\r\n"];
        assert_eq!(decide(&i), Decision::Smtp { client: 1 });
    }

    #[test]
    fn http_connect_preamble_is_measured() {
        let c = b"CONNECT mx:25 HTTP/1.1\r\nHost: mx\r\n\r\nEHLO x\r\n";
        let s = b"HTTP/1.1 200 Connection established\r\n\r\n220 mx\r\n";
        match decide(&input(c, s)) {
            Decision::Tunnel { kind: Tunnel::HttpConnect, skip, .. } => {
                assert_eq!(&c[skip[0]..], b"EHLO x\r\n");
                assert_eq!(&s[skip[1]..], b"220 mx\r\n");
            }
            d => panic!("{d:?}"),
        }
    }

    #[test]
    fn socks5_preamble_is_measured() {
        let c = [&[5u8, 1, 0][..], &[5, 1, 0, 1, 10, 0, 0, 2, 0, 25], b"EHLO x\r\n"].concat();
        let s = [&[5u8, 0][..], &[5, 0, 0, 1, 0, 0, 0, 0, 0, 0], b"220 mx\r\n"].concat();
        match decide(&input(&c, &s)) {
            Decision::Tunnel { kind: Tunnel::Socks5, skip, target, .. } => {
                assert_eq!(skip, [13, 12]);
                assert_eq!(target, Some(25));
            }
            d => panic!("{d:?}"),
        }
    }

    fn off_mail_port<'a>(c: &'a [u8], s: &'a [u8]) -> Input<'a> {
        Input { ports: [40000, 2121], mail_port: [false, false], ..input(c, s) }
    }

    #[test]
    fn a_3_digit_greeting_proves_smtp_only_on_a_mail_port() {
        let ftp = b"220 ProFTPD Server ready\r\n";
        assert_eq!(decide(&input(b"NOOP\r\n", ftp)), Decision::Smtp { client: 0 });
        assert_eq!(decide(&Input { last_call: true, ..off_mail_port(b"NOOP\r\n", ftp) }), Decision::Ignore);
        // Off the mail ports a command only SMTP has settles it.
        assert_eq!(decide(&off_mail_port(b"EHLO a\r\n", ftp)), Decision::Smtp { client: 0 });
        assert_eq!(decide(&off_mail_port(b"NOOP\r\nMAIL FROM:<a@b>\r\n", ftp)), Decision::Smtp { client: 0 });
    }

    #[test]
    fn another_protocols_client_commands_rule_smtp_out() {
        let greeting = b"220 service ready\r\n";
        for c in [
            &b"USER anonymous\r\n"[..],
            b"AUTH TLS\r\n",
            b"AUTH GSSAPI\r\n",
            b"feat\r\n",
            b"SYST\r\n",
            b"CAPA\r\n",
            b"STLS\r\n",
            b"APOP mrose c4c9334bac560ecc979e58001b3e22fb\r\n",
            b"MODE READER\r\n",
            b"CAPABILITIES\r\n",
            b"GROUP misc.test\r\n",
            b"NICK alice\r\nUSER alice 0 * :Alice\r\n",
            b"CAP LS 302\r\n",
        ] {
            assert_eq!(
                decide(&input(c, greeting)),
                Decision::NotSmtp { client: 0 },
                "{:?}",
                String::from_utf8_lossy(c)
            );
            assert_eq!(decide(&off_mail_port(c, greeting)), Decision::Ignore);
        }
    }

    #[test]
    fn smtp_commands_that_other_protocols_share_prove_nothing() {
        let greeting = b"200 news.example.org ready\r\n";
        for c in [&b"AUTH PLAIN AGEAYg==\r\n"[..], b"QUIT\r\n", b"NOOP\r\n", b"RSET\r\n", b"DATA\r\n"] {
            let i = Input { last_call: true, ..off_mail_port(c, greeting) };
            assert_eq!(decide(&i), Decision::Ignore, "{:?}", String::from_utf8_lossy(c));
        }
    }

    #[test]
    fn a_bare_starttls_counts_only_when_answered_in_smtps_reply_form() {
        let c = b"STARTTLS\r\n";
        let smtp = b"220 mx ready\r\n220 2.0.0 go ahead\r\n";
        assert_eq!(decide(&off_mail_port(c, smtp)), Decision::Smtp { client: 0 });
        let refused = b"220 mx ready\r\n454 4.7.0 TLS not available\r\n";
        assert_eq!(decide(&off_mail_port(c, refused)), Decision::Smtp { client: 0 });
        // NNTP answers 382; IRC answers with a prefixed numeric.
        let nntp = b"200 news ready\r\n382 Continue with TLS negotiation\r\n";
        assert_eq!(decide(&Input { last_call: true, ..off_mail_port(c, nntp) }), Decision::Ignore);
        // A capture that starts just before the upgrade: the first reply seen is the answer.
        let mid = Input {
            from_start: [false, false],
            client_hint: None,
            ..off_mail_port(b"x\r\nSTARTTLS\r\n", b"y\r\n220 go ahead\r\n")
        };
        assert_eq!(decide(&mid), Decision::Smtp { client: 0 });
        let irc = b":irc.example.net 670 alice :STARTTLS successful\r\n";
        assert_eq!(decide(&input(c, irc)), Decision::NotSmtp { client: 0 });
    }

    #[test]
    fn server_lines_of_other_protocols_rule_smtp_out_even_after_ehlo() {
        for s in [&b"+OK POP3 ready\r\n"[..], b"* OK IMAP4rev1 ready\r\n", b":irc.example.net NOTICE * :hi\r\n"] {
            assert_eq!(decide(&input(b"EHLO a\r\n", s)), Decision::NotSmtp { client: 0 });
            assert_eq!(decide(&off_mail_port(b"EHLO a\r\n", s)), Decision::Ignore);
        }
        // TLS after a 220 is not a line of another protocol.
        let s = [&b"220 mx\r\n220 go ahead\r\n"[..], &[0x16, 3, 3, 0, 2, b'\n', b'+', b'O', b'K', b'\n']].concat();
        assert_eq!(decide(&input(b"EHLO a\r\n", &s)), Decision::Smtp { client: 0 });
    }

    #[test]
    fn message_text_mid_session_is_not_another_protocols_command() {
        let i = Input {
            from_start: [false, false],
            client_hint: None,
            ..input(b"the tail\r\nList of things\r\nuser manual\r\n", b"x\r\n250 2.0.0 Ok\r\n")
        };
        assert_eq!(decide(&i), Decision::Smtp { client: 0 });
    }

    #[test]
    fn a_tunnel_names_the_port_it_leads_to() {
        let c = b"CONNECT apache.org:443 HTTP/1.1\r\nHost: apache.org:443\r\n\r\n";
        let s = b"HTTP/1.0 200 Connection Established\r\n\r\n";
        assert!(matches!(decide(&input(c, s)), Decision::Tunnel { target: Some(443), .. }));
        let c = b"CONNECT [2001:db8::1]:587 HTTP/1.1\r\n\r\n";
        assert!(matches!(decide(&input(c, s)), Decision::Tunnel { target: Some(587), .. }));
        let c = [4u8, 1, 0, 25, 10, 0, 0, 2, 0];
        let s = [0u8, 0x5a, 0, 0, 0, 0, 0, 0];
        assert!(matches!(decide(&input(&c, &s)), Decision::Tunnel { kind: Tunnel::Socks4, target: Some(25), .. }));
    }
}
