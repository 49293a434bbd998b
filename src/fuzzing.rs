//! Entry points for the fuzz targets in `fuzz/`, kept in the library so `cargo test` replays
//! every saved crash input through exactly the code the fuzzers ran. Each takes arbitrary bytes
//! and must neither panic nor hang.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use crate::capture::Packet;
use crate::decode::{link::dlt, Decoder};
use crate::engine::{Config, Engine};
use crate::flow::{Chunk, Limits, Reassembler};
use crate::report::{Format, Options};
use crate::session::{Session, Side};
use crate::smtp::Machine;

const LINKTYPES: [i32; 9] =
    [dlt::EN10MB, dlt::RAW, dlt::NULL, dlt::LOOP, dlt::LINUX_SLL, dlt::LINUX_SLL2, dlt::PPP, dlt::IPV4, dlt::IPV6];

/// Escape byte of the `smtp` and `tls` input formats: `ESC c` is command `c`, `ESC ESC` a
/// literal `0xff`, so every byte value (TLS records are full of `0x00`) can reach the stream.
pub const ESC: u8 = 0xff;

/// Splits an escaped input into pieces of stream bytes, each ended by a command (the last by none).
fn escaped_pieces(data: &[u8]) -> Vec<(Vec<u8>, Option<u8>)> {
    let mut out = Vec::new();
    let mut cur = Vec::new();
    let mut it = data.iter();
    while let Some(&b) = it.next() {
        if b != ESC {
            cur.push(b);
            continue;
        }
        match it.next() {
            Some(&ESC) => cur.push(ESC),
            Some(&c) => out.push((std::mem::take(&mut cur), Some(c))),
            None => {}
        }
    }
    out.push((cur, None));
    out
}

/// Appends `bytes` to an escaped input (the inverse of the splitting above).
pub fn escape_into(out: &mut Vec<u8>, bytes: &[u8]) {
    for &b in bytes {
        out.push(b);
        if b == ESC {
            out.push(ESC);
        }
    }
}

/// Every report format renders the session (escaping of wire strings included).
fn render(s: &Session) {
    let opts = Options { color: true, show_addresses: true, line_buffered: false, truncate: true };
    let _ = crate::report::json::to_line(&crate::report::json::record(s, opts));
    for f in [Format::Table, Format::Csv, Format::Json, Format::ClickHouse] {
        let mut w = crate::report::writer(f, Box::new(std::io::sink()), opts);
        let _ = w.write(s);
        let _ = w.finish();
    }
}

/// Frames through one decoder, so IP fragments are held and reassembled across them: the first
/// byte picks the link type, then records of `len(2) frame`.
pub fn decode_packet(data: &[u8]) {
    let Some((&sel, mut rest)) = data.split_first() else { return };
    let lt = LINKTYPES[usize::from(sel) % LINKTYPES.len()];
    let mut d = Decoder::new();
    while let [h, l, ref body @ ..] = *rest {
        let (frame, after) = body.split_at(usize::from(u16::from_be_bytes([h, l])).min(body.len()));
        rest = after;
        let _ = d.decode(lt, frame);
    }
}

/// Arbitrary segments into one direction: each record is `seq(4) len(1) flags(1) bytes`.
/// Checked after every record: the out-of-order buffer stays within its bound, and the bytes
/// and gaps handed out account for exactly the stream offset reached.
pub fn reassembly(data: &[u8]) {
    let lim = Limits { max_buffered: 4096, tail: 64 };
    let mut r = Reassembler::new();
    let mut handed = 0u64;
    let mut rest = data;
    while rest.len() >= 6 {
        let seq = u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]);
        let len = usize::from(rest[4]).min(rest.len() - 6);
        let flags = rest[5];
        let body = &rest[6..6 + len];
        rest = &rest[6 + len..];
        let mut out = |c: Chunk<'_>| match c {
            Chunk::Data(b) => handed += b.len() as u64,
            Chunk::Gap(n) => handed += n,
        };
        match flags % 4 {
            0 => r.on_syn(seq),
            1 => r.on_peer_ack(seq, &lim, &mut out),
            2 => r.on_fin(seq, len as u32),
            _ => {}
        }
        let wire = len as u32 + u32::from(flags >> 6);
        r.insert(seq, body, wire, &lim, &mut out);
        assert!(r.buffered() <= lim.max_buffered, "buffer bound");
        assert_eq!(handed, r.offset(), "every stream byte handed out once, as data or gap");
    }
    r.flush(&lim, &mut |c| match c {
        Chunk::Data(b) => handed += b.len() as u64,
        Chunk::Gap(n) => handed += n,
    });
    assert_eq!(handed, r.offset(), "after the flush");
}

/// Both sides of an SMTP conversation, starting with the server. Commands (`ESC c`):
/// `c % 4 == 0` the client speaks next, `1` the server, `2` a gap of `c >> 2` bytes in the
/// current direction, `3` a new frame. Everything else is stream bytes.
pub fn smtp_streams(data: &[u8]) {
    let addr = |p| SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), p);
    let mut s = Session::new(addr(40000), addr(25));
    let mut m = Machine::new(true).keep_credentials(true);
    let mut side = Side::Server;
    for (i, (body, cmd)) in escaped_pieces(data).into_iter().enumerate() {
        match side {
            Side::Client => m.client_data(&body, i as u64, &mut s),
            Side::Server => m.server_data(&body, i as u64, &mut s),
        }
        match cmd.map(|c| (c % 4, c >> 2)) {
            Some((0, _)) => side = Side::Client,
            Some((1, _)) => side = Side::Server,
            Some((2, n)) => {
                m.gap(side, &mut s);
                if side == Side::Client {
                    m.client_gap_len(u64::from(n));
                }
            }
            _ => {}
        }
    }
    m.finish(&mut s);
    let _ = crate::session::verdict::judge(&s);
    crate::tls::assess(&mut s);
    render(&s);
}

/// TLS records in both directions, starting with the client. Commands (`ESC c`): bit 0 picks
/// the side of the bytes that follow (0 client, 1 server), bit 7 declares a gap on that side first.
pub fn tls_records(data: &[u8]) {
    let addr = |p| SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), p);
    let mut s = Session::new(addr(40000), addr(465));
    let mut t = crate::tls::Tracker::new();
    let mut side = Side::Client;
    for (i, (bytes, cmd)) in escaped_pieces(data).into_iter().enumerate() {
        t.feed(side, &bytes, i as u64, &mut s);
        if let Some(c) = cmd {
            side = if c & 1 == 0 { Side::Client } else { Side::Server };
            if c & 0x80 != 0 {
                t.gap(side, &mut s);
            }
        }
    }
    crate::tls::assess(&mut s);
    render(&s);
}

/// Sequence-number state of the scripted connections of [`engine_packets`].
struct Script {
    next: [[u32; 2]; CONNS],
    ts: i64,
    frame: u64,
}

const CONNS: usize = 64;
const SERVER_PORTS: [u16; 4] = [25, 587, 465, 2525];

impl Script {
    fn new() -> Self {
        // Server ISNs just below the wrap, so every connection crosses it.
        let next = std::array::from_fn(|c| [1_000_000 * (c as u32 + 1), 0xffff_ff00u32.wrapping_sub(c as u32 * 977)]);
        Self { next, ts: 1_000_000, frame: 0 }
    }

    /// Builds the Ethernet frame of one scripted segment; returns it with its wire length.
    fn segment(&mut self, op: u8, conn: u8, delta: u8, payload: &[u8]) -> Option<(Vec<u8>, u32)> {
        let c = usize::from(conn) % CONNS;
        let dir = usize::from(op & 1);
        let (syn, fin, rst, ack) = (op & 2 != 0, op & 4 != 0, op & 8 != 0, op & 0x10 == 0);
        let cport = 40_000 + u16::from(conn & 7);
        let sport = SERVER_PORTS[usize::from((conn >> 3) & 3)];
        let v6 = conn & 0x20 != 0;
        let next = self.next.get_mut(c)?;
        // Small deltas: overlaps and holes near the edge; the sign bit makes it a retransmission.
        let seq = next[dir].wrapping_add(i32::from(delta as i8) as u32);
        let end = seq.wrapping_add(payload.len() as u32 + u32::from(syn) + u32::from(fin));
        if end.wrapping_sub(next[dir]) as i32 > 0 {
            next[dir] = end;
        }
        let peer = next[1 - dir];
        let (mac_a, mac_b) = ([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2]);
        let b = if dir == 0 {
            etherparse::PacketBuilder::ethernet2(mac_a, mac_b)
        } else {
            etherparse::PacketBuilder::ethernet2(mac_b, mac_a)
        };
        let (a4, b4) = ([10, 0, 0, 1], [10, 0, 0, 2]);
        let (a6, b6) =
            (Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 1).octets(), Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 2).octets());
        let b = match (v6, dir) {
            (false, 0) => b.ipv4(a4, b4, 64),
            (false, _) => b.ipv4(b4, a4, 64),
            (true, 0) => b.ipv6(a6, b6, 64),
            (true, _) => b.ipv6(b6, a6, 64),
        };
        let (sp, dp) = if dir == 0 { (cport, sport) } else { (sport, cport) };
        let mut t = b.tcp(sp, dp, seq, 65_535);
        if syn {
            t = t.syn();
        }
        if fin {
            t = t.fin();
        }
        if rst {
            t = t.rst();
        }
        if ack {
            t = t.ack(peer);
        }
        let mut frame = Vec::with_capacity(t.size(payload.len()));
        t.write(&mut frame, payload).ok()?;
        let wire = frame.len() as u32;
        if op & 0x20 != 0 {
            // Snaplen: the headers say more than was captured.
            frame.truncate(frame.len() - payload.len() / 2);
        }
        Some((frame, wire))
    }
}

/// A trace through the engine, as records. `op & 0x80 == 0`: a raw Ethernet frame,
/// `op len(2) bytes`. Otherwise a TCP segment built for one of 64 scripted connections,
/// `op conn(1) delta(1) len(1) payload`: op bit 0 server→client, 1 SYN, 2 FIN, 3 RST, 4 no
/// ACK, 5 snaplen cut (half the payload captured), 6 a second passes first; conn bits 0-2 the
/// client port, 3-4 the server port (25, 587, 465, 2525), 5 IPv6; delta a signed offset from
/// the direction's next sequence number (0 in order, > 0 a hole, < 0 a retransmission).
/// The flow table is small, so eviction and tombstones are reached too.
pub fn engine_packets(data: &[u8]) {
    engine_trace(data, &mut |s| render(&s));
}

/// The sessions [`engine_packets`] reports for `data`, handed to `out`.
pub fn engine_trace(data: &[u8], out: &mut dyn FnMut(Session)) {
    let mut cfg = Config { keep_credentials: true, ..Config::default() };
    cfg.limits.max_flows = 16;
    cfg.limits.max_tombstones = 8;
    cfg.limits.stream.max_buffered = 8192;
    let mut e = Engine::new(cfg, vec![Arc::from("fuzz")], None);
    let mut script = Script::new();
    let mut rest = data;
    while let Some((&op, tail)) = rest.split_first() {
        let (frame, orig_len) = if op & 0x80 == 0 {
            let [h, l, ref body @ ..] = *tail else { break };
            let len = usize::from(u16::from_be_bytes([h, l])).min(body.len());
            let (pkt, after) = body.split_at(len);
            rest = after;
            (pkt.to_vec(), len as u32)
        } else {
            let [conn, delta, len, ref body @ ..] = *tail else { break };
            let (payload, after) = body.split_at(usize::from(len).min(body.len()));
            rest = after;
            if op & 0x40 != 0 {
                script.ts += 1_000_000;
            }
            match script.segment(op, conn, delta, payload) {
                Some(f) => f,
                None => continue,
            }
        };
        script.frame += 1;
        script.ts += 1000;
        let p = Packet { ts: script.ts, data: &frame, orig_len, linktype: dlt::EN10MB, source: 0, frame: script.frame };
        e.packet(&p, out);
    }
    e.finish(out);
}

/// A whole capture file, of any format smtpscope reads, through its source and the engine.
pub fn capture_file(data: &[u8]) {
    if let Ok(src) = crate::capture::source::open_bytes(data.to_vec()) {
        frames_through_engine(src);
    }
}

/// A Network Monitor 2.x file through the NetMon reader and the engine (the input is taken as
/// NetMon whatever its first bytes, so that the fuzzer need not find the magic).
pub fn netmon_file(data: &[u8]) {
    let mut bytes = crate::capture::netmon::MAGIC.to_vec();
    bytes.extend_from_slice(data.get(4..).unwrap_or_default());
    if let Ok(src) = crate::capture::source::open_bytes(bytes) {
        frames_through_engine(src);
    }
}

fn frames_through_engine(mut src: Box<dyn crate::capture::PacketSource>) {
    let mut e = Engine::new(Config::default(), vec![Arc::from("fuzz")], None);
    let mut sink = |s: Session| render(&s);
    let mut frame = 0;
    while let Ok(Some(f)) = src.next_frame() {
        frame += 1;
        let p = Packet { ts: f.ts, data: f.data, orig_len: f.orig_len, linktype: f.linktype, source: 0, frame };
        e.packet(&p, &mut sink);
    }
    e.finish(&mut sink);
}

/// The record reader (`-R`): arbitrary bytes as a records file (plain, gzip or zstd by magic),
/// every record read written back as NDJSON and as a ClickHouse row.
pub fn records(data: &[u8]) {
    let input: Box<dyn std::io::Read + Send> = Box::new(std::io::Cursor::new(data.to_vec()));
    let Ok(mut f) = crate::records::RecordFile::from_reader("fuzz", input) else { return };
    let mut line = Vec::new();
    while let Some(s) = f.next_session() {
        line.clear();
        crate::report::json::write_line(&mut line, &s, Options::default());
        crate::report::clickhouse::write_row(&mut line, &s, Options::default());
    }
    let _ = f.stats().message();
}

/// Lines through one log parser, every record rendered in every format; records must carry every
/// key and no more evidence or lines than their bounds.
fn log_lines(data: &[u8], format: crate::logs::Format) {
    use crate::logs::{exchange, next_line, postfix, record, LineParser, LogOptions};
    let opts = LogOptions { tz: jiff::tz::TimeZone::UTC, reference: Some(0), ..LogOptions::default() };
    let name: Arc<str> = Arc::from("fuzz.log");
    let mut p: Box<dyn LineParser> = match format {
        crate::logs::Format::Exchange => Box::new(exchange::Parser::new(name, opts)),
        crate::logs::Format::Postfix => Box::new(postfix::Parser::new(name, opts)),
    };
    let mut check = |r: crate::logs::LogRecord| {
        assert!(r.evidence.len() <= record::MAX_EVIDENCE && r.lines.len() <= record::MAX_LINES);
        let v = crate::report::logs::record(&r);
        assert_eq!(v.as_object().map(|o| o.len()), Some(crate::report::logs::KEYS.len()));
        let _ = crate::report::json::to_line(&v);
        for f in [crate::report::logs::LogFormat::Table, crate::report::logs::LogFormat::Csv] {
            let opts = Options { color: true, ..Options::default() };
            let mut w = crate::report::logs::Writer::new(Box::new(std::io::sink()), f, opts);
            let _ = w.write(&r);
        }
    };
    let mut input = std::io::Cursor::new(data);
    let mut buf = Vec::new();
    let mut n = 0;
    while let Ok(Some(_)) = next_line(&mut input, &mut buf) {
        n += 1;
        p.line(n, &buf, &mut check);
    }
    p.finish(&mut check);
}

/// An Exchange protocol log.
pub fn exchange_log(data: &[u8]) {
    log_lines(data, crate::logs::Format::Exchange);
}

/// Postfix syslog lines.
pub fn postfix_log(data: &[u8]) {
    log_lines(data, crate::logs::Format::Postfix);
}
