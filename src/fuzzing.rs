//! Entry points for the fuzz targets in `fuzz/`, kept in the library so `cargo test` replays
//! every saved crash input through exactly the code the fuzzers ran. Each takes arbitrary bytes
//! and must neither panic nor hang.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use crate::capture::Packet;
use crate::decode::{link::dlt, Decoder};
use crate::engine::{Config, Engine};
use crate::flow::{Chunk, Limits, Reassembler};
use crate::session::{Session, Side};
use crate::smtp::Machine;

const LINKTYPES: [i32; 9] =
    [dlt::EN10MB, dlt::RAW, dlt::NULL, dlt::LOOP, dlt::LINUX_SLL, dlt::LINUX_SLL2, dlt::PPP, dlt::IPV4, dlt::IPV6];

/// One frame: the first byte picks the link type, the rest is the frame.
pub fn decode_packet(data: &[u8]) {
    let Some((&sel, frame)) = data.split_first() else { return };
    let lt = LINKTYPES[usize::from(sel) % LINKTYPES.len()];
    let mut d = Decoder::new();
    let _ = d.decode(lt, frame);
}

/// Arbitrary segments into one direction: each record is `seq(4) len(1) flags(1) bytes`.
pub fn reassembly(data: &[u8]) {
    let lim = Limits { max_buffered: 4096, tail: 64 };
    let mut r = Reassembler::new();
    let mut delivered = 0u64;
    let mut rest = data;
    while rest.len() >= 6 {
        let seq = u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]);
        let len = usize::from(rest[4]).min(rest.len() - 6);
        let flags = rest[5];
        let body = &rest[6..6 + len];
        rest = &rest[6 + len..];
        let mut out = |c: Chunk<'_>| {
            if let Chunk::Data(b) = c {
                delivered += b.len() as u64;
            }
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
    }
    r.flush(&lim, &mut |_| {});
}

/// Both sides of an SMTP conversation: `0x00` switches to the client, `0x01` to the server,
/// `0x02` is a gap in the current direction; everything else is stream bytes.
pub fn smtp_streams(data: &[u8]) {
    let addr = |p| SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), p);
    let mut s = Session::new(addr(40000), addr(25));
    let mut m = Machine::new(true);
    let mut side = Side::Server;
    for (i, piece) in data.split_inclusive(|b| *b <= 2).enumerate() {
        let (body, ctl) = match piece.split_last() {
            Some((&c, b)) if c <= 2 => (b, Some(c)),
            _ => (piece, None),
        };
        match side {
            Side::Client => m.client_data(body, i as u64, &mut s),
            Side::Server => m.server_data(body, i as u64, &mut s),
        }
        match ctl {
            Some(0) => side = Side::Client,
            Some(1) => side = Side::Server,
            Some(_) => {
                m.gap(side, &mut s);
                if side == Side::Client {
                    m.client_gap_len(7);
                }
            }
            None => {}
        }
    }
    m.finish(&mut s);
    let _ = crate::session::verdict::judge(&s);
    crate::tls::assess(&mut s);
    let _ = crate::report::json::to_line(&crate::report::json::record(&s, Default::default()));
}

/// TLS records in both directions: the first byte of each `0xff`-separated piece says who.
pub fn tls_records(data: &[u8]) {
    let addr = |p| SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), p);
    let mut s = Session::new(addr(40000), addr(465));
    let mut t = crate::tls::Tracker::new();
    for (i, piece) in data.split(|b| *b == 0xff).enumerate() {
        let Some((&who, bytes)) = piece.split_first() else { continue };
        let side = if who & 1 == 0 { Side::Client } else { Side::Server };
        if who & 0x80 != 0 {
            t.gap(side, &mut s);
        }
        t.feed(side, bytes, i as u64, &mut s);
    }
    crate::tls::assess(&mut s);
    let _ = crate::report::json::record(&s, Default::default());
}

/// A whole trace through the engine: records of `len(2) bytes`, decoded as Ethernet frames.
pub fn engine_packets(data: &[u8]) {
    let mut cfg = Config::default();
    cfg.limits.max_flows = 64;
    cfg.limits.stream.max_buffered = 8192;
    let mut e = Engine::new(cfg, vec![Arc::from("fuzz")], None);
    let mut rest = data;
    let mut frame = 0;
    let mut sink = |s: Session| {
        let _ = crate::report::json::to_line(&crate::report::json::record(&s, Default::default()));
    };
    while rest.len() >= 2 {
        let len = usize::from(u16::from_be_bytes([rest[0], rest[1]])).min(rest.len() - 2);
        let pkt = &rest[2..2 + len];
        rest = &rest[2 + len..];
        frame += 1;
        let p = Packet {
            ts: frame as i64 * 1000,
            data: pkt,
            orig_len: len as u32,
            linktype: dlt::EN10MB,
            source: 0,
            frame,
        };
        e.packet(&p, &mut sink);
    }
    e.finish(&mut sink);
}

/// A whole capture file through libpcap and the engine.
pub fn capture_file(data: &[u8]) {
    let dir = std::env::temp_dir();
    let path = dir.join(format!("smtpscope-fuzz-{}.pcap", std::process::id()));
    if std::fs::write(&path, data).is_err() {
        return;
    }
    if let Ok(mut r) = crate::capture::MergedReader::open(std::slice::from_ref(&path), None) {
        let mut e = Engine::new(Config::default(), vec![Arc::from("fuzz")], None);
        let mut sink = |s: Session| {
            let _ = crate::report::json::record(&s, Default::default());
        };
        while let Some(p) = r.next_packet() {
            e.packet(&p, &mut sink);
        }
        e.finish(&mut sink);
    }
    let _ = std::fs::remove_file(&path);
}
