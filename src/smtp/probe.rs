//! Deciding what a flow carries from its first bytes: SMTP (either direction shows it, on any
//! port), TLS from the first byte (implicit TLS on a mail port), a proxy preamble (SOCKS4/5,
//! HTTP CONNECT) in front of SMTP, or none of these.

use super::command;
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
    /// A proxy preamble: skip `skip[d]` bytes of direction `d`, then decide again.
    Tunnel { client: usize, kind: Tunnel, skip: [usize; 2] },
    /// Payload that is neither SMTP nor TLS.
    NotSmtp { client: usize },
    /// TLS records on a mail port in a capture that started inside the session (no handshake,
    /// no ClientHello): encrypted SMTP whose beginning was not captured.
    MidTls { client: usize },
    /// Not ours to report (e.g. TLS on a non-mail port).
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

fn lines(b: &[u8], from_start: bool) -> impl Iterator<Item = &[u8]> {
    // Mid-stream the first piece may be the tail of a line we never saw; it is looked at
    // anyway (a false start only costs a miss), and so are a few more lines.
    let look = if from_start { 3 } else { 4 };
    // Only complete lines count (the last piece has no line end yet).
    let complete = b.iter().filter(|c| **c == b'\n').count();
    b.split(|c| *c == b'\n').take(complete.min(look)).map(|l| l.strip_suffix(b"\r").unwrap_or(l))
}

/// A first line still without its end after [`ENOUGH`] bytes: judged on how it starts, or a
/// greeting or EHLO padded beyond the probe's patience would hide a real session.
fn unfinished_first_line(b: &[u8], from_start: bool) -> Option<&[u8]> {
    (from_start && b.len() >= ENOUGH && !b.contains(&b'\n')).then_some(b)
}

fn shows_reply(b: &[u8], from_start: bool) -> bool {
    lines(b, from_start).chain(unfinished_first_line(b, from_start)).any(|l| reply::code_of(l).is_some())
}

fn shows_verb(b: &[u8], from_start: bool) -> bool {
    lines(b, from_start).any(command::is_verb_line)
        || unfinished_first_line(b, from_start).is_some_and(command::starts_with_verb)
}

/// Decides from the input.
pub fn decide(i: &Input<'_>) -> Decision {
    let [b0, b1] = i.bytes;
    let has = [!b0.is_empty(), !b1.is_empty()];
    // Who is the client?
    let ch = [tls::looks_like_client_hello(b0), tls::looks_like_client_hello(b1)];
    let reply = [shows_reply(b0, i.from_start[0]), shows_reply(b1, i.from_start[1])];
    let verb = [shows_verb(b0, i.from_start[0]), shows_verb(b1, i.from_start[1])];
    let client = i.client_hint.unwrap_or_else(|| {
        if ch[0] == Some(true) && i.from_start[0] {
            0
        } else if (ch[1] == Some(true) && i.from_start[1]) || (reply[0] && !reply[1]) {
            1
        } else if reply[1] && !reply[0] {
            0
        } else if verb[0] != verb[1] {
            usize::from(verb[1])
        } else if i.mail_port[1] != i.mail_port[0] {
            usize::from(i.mail_port[0])
        } else {
            // The higher port is usually the ephemeral one.
            usize::from(i.ports[1] > i.ports[0])
        }
    });
    let server = 1 - client;
    let cb = i.bytes[client];
    let mail_server = i.mail_port[server];

    if i.from_start[client] {
        match ch[client] {
            Some(true) => return if mail_server { Decision::ImplicitTls { client } } else { Decision::Ignore },
            None if has[client] && !i.last_call => return Decision::Wait,
            _ => {}
        }
        if let Some(t) = tunnel(cb, i.bytes[server], client) {
            return t;
        }
    }
    if reply[server] || verb[client] {
        // A server banner alone does not settle it: the client may still open with a
        // ClientHello (implicit TLS against a cleartext server).
        if !has[client] && !i.last_call {
            return Decision::Wait;
        }
        return Decision::Smtp { client };
    }
    let judged = |d: usize| i.bytes[d].contains(&b'\n') || i.bytes[d].len() >= ENOUGH;
    if i.last_call || (judged(0) && judged(1)) || b0.len() + b1.len() >= 4 * ENOUGH {
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
            Some(Decision::Tunnel { client, kind, skip })
        }
        _ => Some(Decision::Wait),
    }
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
            Decision::Tunnel { kind: Tunnel::Socks5, skip, .. } => assert_eq!(skip, [13, 12]),
            d => panic!("{d:?}"),
        }
    }
}
