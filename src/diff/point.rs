//! One capture point: its sessions (with transcripts) and what the diff needs from the TCP
//! handshakes, which the session record does not keep (options, windows, SYN-ACK times).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use crate::capture::{MergedReader, Micros};
use crate::decode::Decoder;
use crate::engine::{Config, Engine};
use crate::session::transcript::Entry;
use crate::session::Session;

use super::DiffError;

/// TCP option kinds a WAN optimizer adds (Riverbed 76, 78; Silver Peak / Blue Coat 0x21).
pub const WAN_OPTION_KINDS: [u8; 3] = [76, 78, 0x21];

/// One TCP option as sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TcpOption {
    /// Kind byte.
    pub kind: u8,
    /// Option data (without kind and length).
    pub data: Vec<u8>,
}

/// A SYN or SYN-ACK as one point saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandshakePacket {
    /// Capture time.
    pub ts: Micros,
    /// Frame number in its file.
    pub frame: u64,
    /// Initial sequence number.
    pub isn: u32,
    /// Window field.
    pub window: u16,
    /// Options in order (NOP and EOL left out).
    pub options: Vec<TcpOption>,
}

impl HandshakePacket {
    /// The MSS option's value.
    pub fn mss(&self) -> Option<u16> {
        self.options
            .iter()
            .find(|o| o.kind == 2)
            .and_then(|o| o.data.get(..2))
            .map(|d| u16::from_be_bytes([d[0], d[1]]))
    }

    /// The timestamp option's TSval.
    pub fn tsval(&self) -> Option<u32> {
        self.options
            .iter()
            .find(|o| o.kind == 8)
            .and_then(|o| o.data.get(..4))
            .map(|d| u32::from_be_bytes([d[0], d[1], d[2], d[3]]))
    }

    /// Option kinds in order.
    pub fn kinds(&self) -> Vec<u8> {
        self.options.iter().map(|o| o.kind).collect()
    }

    /// Whether a WAN optimizer's option is present.
    pub fn has_wan_option(&self) -> bool {
        self.options.iter().any(|o| WAN_OPTION_KINDS.contains(&o.kind))
    }

    /// The options in words, `mss 1460, sack-permitted, timestamps, window-scale 7`.
    pub fn describe(&self) -> String {
        let words: Vec<String> = self
            .options
            .iter()
            .map(|o| match (o.kind, o.data.as_slice()) {
                (2, [a, b]) => format!("mss {}", u16::from_be_bytes([*a, *b])),
                (3, [s]) => format!("window-scale {s}"),
                (4, _) => "sack-permitted".into(),
                (5, _) => "sack".into(),
                (8, _) => "timestamps".into(),
                (k, _) => format!("option {k}"),
            })
            .collect();
        words.join(", ")
    }
}

/// Parses TCP option bytes; a malformed tail is left out.
pub fn parse_options(mut bytes: &[u8]) -> Vec<TcpOption> {
    let mut out = Vec::new();
    while let Some((&kind, rest)) = bytes.split_first() {
        match kind {
            0 => break,
            1 => bytes = rest,
            _ => {
                let Some(&len) = rest.first() else { break };
                let len = usize::from(len);
                let Some(data) = bytes.get(2..len.max(2)) else { break };
                if len < 2 {
                    break;
                }
                out.push(TcpOption { kind, data: data.to_vec() });
                bytes = bytes.get(len..).unwrap_or(&[]);
            }
        }
    }
    out
}

/// The handshake of one connection at one point.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Handshake {
    /// The client's SYN.
    pub syn: Option<HandshakePacket>,
    /// The server's SYN-ACK.
    pub synack: Option<HandshakePacket>,
}

/// One line of the dialogue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// Bytes without the line ending.
    pub text: Vec<u8>,
    /// Frame.
    pub frame: u64,
}

/// A client command (or a message body, as `<message N bytes>`) and the reply lines that
/// answered it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exchange {
    /// The command.
    pub command: Line,
    /// The reply's lines.
    pub reply: Vec<Line>,
}

/// The cleartext dialogue, commands paired with replies in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Dialogue {
    /// The greeting's lines.
    pub banner: Vec<Line>,
    /// Commands and their replies until TLS or the end.
    pub exchanges: Vec<Exchange>,
    /// Message body sizes, in order.
    pub bodies: Vec<u64>,
}

fn is_last_line(text: &[u8]) -> bool {
    text.get(3) != Some(&b'-')
}

impl Dialogue {
    /// Pairs the transcript's replies with its commands first in, first out (pipelining keeps
    /// the order), a multi-line reply ending with its `NNN ` line.
    pub fn of(s: &Session) -> Self {
        let mut d = Dialogue::default();
        let Some(t) = s.transcript.as_deref() else { return d };
        let mut banner_done = false;
        let mut next = 0usize;
        for e in &t.entries {
            match e {
                Entry::Command { frame, text, .. } => {
                    banner_done = true;
                    d.exchanges
                        .push(Exchange { command: Line { text: text.bytes.clone(), frame: *frame }, reply: vec![] });
                }
                Entry::Body { frame, bytes, .. } => {
                    banner_done = true;
                    d.bodies.push(*bytes);
                    let text = format!("<message {bytes} bytes>").into_bytes();
                    d.exchanges.push(Exchange { command: Line { text, frame: *frame }, reply: vec![] });
                }
                Entry::Reply { frame, text, .. } => {
                    let line = Line { text: text.bytes.clone(), frame: *frame };
                    let last = is_last_line(&line.text);
                    if !banner_done {
                        d.banner.push(line);
                        banner_done = last;
                        continue;
                    }
                    let i = next.min(d.exchanges.len().saturating_sub(1));
                    if let Some(x) = d.exchanges.get_mut(i) {
                        x.reply.push(line);
                    }
                    if last && next < d.exchanges.len() {
                        next += 1;
                    }
                }
                Entry::TlsStart { .. } => break,
                Entry::Gap { .. } | Entry::Note { .. } => {}
            }
        }
        d
    }
}

/// A session as one point saw it.
#[derive(Debug, Clone)]
pub struct Observed {
    /// The record (its transcript dropped once read into the dialogue).
    pub session: Session,
    /// Its TCP handshake at this point.
    pub handshake: Handshake,
    /// Its cleartext dialogue.
    pub dialogue: Dialogue,
}

impl Observed {
    /// The session's start: its SYN when seen, else its first packet.
    pub fn start(&self) -> Micros {
        self.handshake.syn.as_ref().map_or(self.session.first_seen, |p| p.ts)
    }
}

/// Everything read at one capture point.
#[derive(Debug, Clone, Default)]
pub struct Point {
    /// Sessions in the order they started.
    pub sessions: Vec<Observed>,
    /// First and last packet times.
    pub span: Option<(Micros, Micros)>,
    /// Packets read.
    pub packets: u64,
    /// SYNs never answered by a SYN-ACK at this point: (time, server), in time order.
    pub unanswered: Vec<(Micros, SocketAddr)>,
}

#[derive(Default)]
struct Pending {
    started: Micros,
    hs: Handshake,
}

/// Reads one point's files (merged by time, `filter` applied) into sessions with transcripts
/// and handshakes.
pub fn load(paths: &[PathBuf], filter: Option<&str>) -> Result<Point, DiffError> {
    let mut reader = MergedReader::open(paths, filter)?;
    let names: Vec<Arc<str>> = reader.sources().iter().map(|s| s.name().clone()).collect();
    let cfg = Config { transcript: true, ..Config::default() };
    let mut engine = Engine::new(cfg, names.clone(), None);
    let mut decoder = Decoder::new();
    // (client, server) -> handshakes in the order their SYN (or SYN-ACK) came
    let mut shakes: HashMap<(SocketAddr, SocketAddr), Vec<Pending>> = HashMap::new();
    let mut sessions = Vec::new();
    let mut point = Point::default();
    let mut per_file = vec![0u64; names.len()];
    while let Some(p) = reader.next_packet() {
        point.packets += 1;
        if let Some(n) = per_file.get_mut(p.source) {
            *n += 1;
        }
        point.span = Some(point.span.map_or((p.ts, p.ts), |(a, b)| (a.min(p.ts), b.max(p.ts))));
        if let Ok(seg) = decoder.decode(p.linktype, p.data) {
            if seg.flags.syn {
                let src = SocketAddr::new(seg.src, seg.sport);
                let dst = SocketAddr::new(seg.dst, seg.dport);
                let pkt = HandshakePacket {
                    ts: p.ts,
                    frame: p.frame,
                    isn: seg.seq,
                    window: seg.window,
                    options: parse_options(seg.options),
                };
                if seg.flags.ack {
                    let list = shakes.entry((dst, src)).or_default();
                    match list.last_mut() {
                        Some(last) if last.hs.synack.is_none() => last.hs.synack = Some(pkt),
                        Some(_) => {} // a retransmitted SYN-ACK
                        None => list.push(Pending { started: p.ts, hs: Handshake { syn: None, synack: Some(pkt) } }),
                    }
                } else {
                    let list = shakes.entry((src, dst)).or_default();
                    let retransmit = list.last().and_then(|l| l.hs.syn.as_ref()).is_some_and(|s| s.isn == pkt.isn);
                    if !retransmit {
                        list.push(Pending { started: p.ts, hs: Handshake { syn: Some(pkt), synack: None } });
                    }
                }
            }
        }
        engine.packet(&p, &mut |s| sessions.push(s));
    }
    engine.finish(&mut |s| sessions.push(s));
    for (name, n) in names.iter().zip(&per_file) {
        if *n == 0 {
            return Err(DiffError::Empty(name.to_string()));
        }
    }
    for ((_, server), list) in &shakes {
        for h in list.iter().filter(|h| h.hs.synack.is_none()) {
            if let Some(syn) = &h.hs.syn {
                point.unanswered.push((syn.ts, *server));
            }
        }
    }
    point.unanswered.sort_unstable();
    for s in sessions {
        let handshake = shakes
            .get(&(s.client, s.server))
            .and_then(|l| l.iter().rev().find(|h| h.started <= s.first_seen))
            .map(|h| h.hs.clone())
            .unwrap_or_default();
        let dialogue = Dialogue::of(&s);
        // the dialogue holds what the diff reads; the transcript would double the memory
        let mut session = s;
        session.transcript = None;
        point.sessions.push(Observed { session, handshake, dialogue });
    }
    point.sessions.sort_by_key(|o| (o.start(), o.session.id));
    Ok(point)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_are_parsed_with_nops_left_out_and_a_bad_tail_dropped() {
        let bytes = [2, 4, 0x05, 0xb4, 1, 1, 4, 2, 8, 10, 0, 0, 0, 7, 0, 0, 0, 0, 1, 3, 3, 7, 76, 9];
        let o = parse_options(&bytes);
        assert_eq!(o.iter().map(|o| o.kind).collect::<Vec<_>>(), vec![2, 4, 8, 3]);
        let p = HandshakePacket { ts: 0, frame: 1, isn: 0, window: 0, options: o };
        assert_eq!(p.mss(), Some(1460));
        assert_eq!(p.tsval(), Some(7));
        assert_eq!(p.describe(), "mss 1460, sack-permitted, timestamps, window-scale 7");
    }

    #[test]
    fn a_wan_optimizer_option_is_recognised() {
        let p = HandshakePacket { ts: 0, frame: 1, isn: 0, window: 0, options: parse_options(&[76, 4, 1, 2]) };
        assert!(p.has_wan_option());
        assert_eq!(p.describe(), "option 76");
    }
}
