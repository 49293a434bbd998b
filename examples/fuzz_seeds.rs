//! Writes seed corpora for the fuzz targets from capture files (bundled and shared), at run
//! time, so no capture is copied into the repository: `cargo run --example fuzz_seeds -- OUT FILE...`.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use smtpscope::capture::MergedReader;
use smtpscope::decode::Decoder;
use smtpscope::fuzzing::{escape_into, ESC};

/// Largest seed written for the stream targets.
const MAX_SEED: usize = 64 * 1024;

/// One TCP connection's payload, packet by packet, retransmissions left out.
#[derive(Default)]
struct Conn {
    client: Option<SocketAddr>,
    chunks: Vec<(usize, Vec<u8>)>,
    end: [Option<u32>; 2],
}

fn main() {
    let mut args = std::env::args().skip(1);
    let out = PathBuf::from(args.next().expect("usage: fuzz_seeds OUT_DIR CAPTURE..."));
    for t in ["decode", "engine", "capture_file", "smtp", "tls"] {
        std::fs::create_dir_all(out.join(t)).expect("create seed dir");
    }
    let mut n = 0usize;
    for file in args {
        let path = PathBuf::from(&file);
        let Ok(bytes) = std::fs::read(&path) else { continue };
        if bytes.len() <= 64 * 1024 {
            let _ = std::fs::write(out.join("capture_file").join(format!("{n}")), &bytes);
        }
        let Ok(mut r) = MergedReader::open(std::slice::from_ref(&path), None) else { continue };
        let mut trace = Vec::new();
        let mut conns: HashMap<(SocketAddr, SocketAddr), Conn> = HashMap::new();
        let mut decoder = Decoder::new();
        let mut decode_seeds: Vec<(Vec<u8>, usize)> = Vec::new();
        let mut k = 0;
        while let Some(p) = r.next_packet() {
            let sel =
                [1i32, 12, 0, 108, 113, 276, 9, 228, 229].iter().position(|l| *l == p.linktype).unwrap_or(0) as u8;
            // The decode target's input: link type, then `len(2) frame` records. Each seed holds
            // one frame and, while the file has them, the three after it (IP fragments complete).
            if k < 64 {
                decode_seeds.push((vec![sel], 0));
            }
            for (seed, frames) in decode_seeds.iter_mut().rev().take(4).filter(|(_, f)| *f < 4) {
                seed.extend_from_slice(&(p.data.len() as u16).to_be_bytes());
                seed.extend_from_slice(p.data);
                *frames += 1;
            }
            // The engine target's raw-frame records: op 0, length, Ethernet frame.
            if p.linktype == 1 && trace.len() < 32 * 1024 {
                trace.push(0);
                trace.extend_from_slice(&(p.data.len() as u16).to_be_bytes());
                trace.extend_from_slice(p.data);
            }
            k += 1;
            let Ok(seg) = decoder.decode(p.linktype, p.data) else { continue };
            let (a, b) = (SocketAddr::new(seg.src, seg.sport), SocketAddr::new(seg.dst, seg.dport));
            let key = if a < b { (a, b) } else { (b, a) };
            let c = conns.entry(key).or_default();
            if seg.flags.syn && !seg.flags.ack {
                c.client = Some(a);
            }
            let client = *c.client.get_or_insert(if seg.dport < seg.sport { a } else { b });
            let dir = usize::from(a != client);
            if seg.payload.is_empty() {
                continue;
            }
            let end = seg.seq.wrapping_add(seg.payload.len() as u32);
            if c.end[dir].is_some_and(|e| end.wrapping_sub(e) as i32 <= 0) {
                continue;
            }
            c.end[dir] = Some(end);
            c.chunks.push((dir, seg.payload.to_vec()));
        }
        for (k, (seed, _)) in decode_seeds.iter().enumerate() {
            let _ = std::fs::write(out.join("decode").join(format!("{n}-{k}")), seed);
        }
        if !trace.is_empty() {
            let _ = std::fs::write(out.join("engine").join(format!("{n}")), trace);
        }
        for (i, c) in conns.values().enumerate() {
            write_stream_seeds(&out, &format!("{n}-{i}"), c);
        }
        n += 1;
    }
    write_script_seeds(&out);
    eprintln!("seeds from {n} captures in {}", out.display());
}

/// Scripted-connection records for the `engine` target (see `smtpscope::fuzzing::engine_packets`):
/// a STARTTLS upgrade with a ClientHello, and a plaintext session with AUTH, pipelining and BDAT.
fn write_script_seeds(out: &std::path::Path) {
    const C: u8 = 0x80; // client to server, ACK set
    const S: u8 = 0x81; // server to client
    let mut hello = vec![0x16, 3, 1, 0, 0x2d, 1, 0, 0, 0x29, 3, 3];
    hello.extend_from_slice(&[0xff; 32]);
    hello.extend_from_slice(&[0, 0, 2, 0, 0x2f, 1, 0]);
    let mut server_hello = vec![0x16, 3, 3, 0, 0x2a, 2, 0, 0, 0x26, 3, 3];
    server_hello.extend_from_slice(&[9; 32]);
    server_hello.extend_from_slice(&[0, 0, 0x2f, 0]);
    let starttls: &[(u8, u8, &[u8])] = &[
        (C | 0x12, 0, b""),
        (S | 0x02, 0, b""),
        (C, 0, b""),
        (S, 0, b"220 mx ESMTP\r\n"),
        (C, 0, b"EHLO a\r\n"),
        (S, 0, b"250-mx\r\n250-PIPELINING\r\n250 STARTTLS\r\n"),
        (C, 0, b"STARTTLS\r\n"),
        (S, 0, b"220 2.0.0 SMTP server ready\r\n"),
        (C, 0, &hello),
        (S, 0, &server_hello),
        (C | 0x04, 0, b""),
        (S | 0x04, 0, b""),
    ];
    let plain: &[(u8, u8, &[u8])] = &[
        (C | 0x12, 0, b""),
        (S | 0x02, 0, b""),
        (S, 0, b"220 mx ESMTP\r\n"),
        (C, 0, b"EHLO a\r\n"),
        (S, 0, b"250-mx\r\n250-PIPELINING\r\n250-CHUNKING\r\n250 AUTH PLAIN LOGIN\r\n"),
        (C, 0, b"AUTH PLAIN AHVzZXIAcGFzcw==\r\n"),
        (S, 0, b"235 ok\r\n"),
        (C, 20, b"RCPT TO:<c@d>\r\nBDAT 3 LAST\r\nabcQUIT\r\n"),
        (C, 0, b"MAIL FROM:<a@b>\r\n"),
        (S, 0, b"250 ok\r\n250 ok\r\n250 ok\r\n221 bye\r\n"),
        (C | 0x08, 0, b""),
    ];
    for (name, script, conn) in [("script-starttls", starttls, 0u8), ("script-plain-auth-bdat", plain, 0x21)] {
        let mut seed = Vec::new();
        for (op, delta, payload) in script {
            seed.extend_from_slice(&[*op, conn, *delta, payload.len() as u8]);
            seed.extend_from_slice(payload);
        }
        let _ = std::fs::write(out.join("engine").join(name), seed);
    }
}

/// The connection as the `smtp` target's input (server first) and, from the first TLS record
/// on each side, as the `tls` target's input (client first).
fn write_stream_seeds(out: &std::path::Path, name: &str, c: &Conn) {
    let mut smtp = Vec::new();
    let mut side = 1;
    let mut tls = Vec::new();
    let mut tls_side = 0;
    let mut tls_on = [false; 2];
    for (dir, bytes) in &c.chunks {
        if smtp.len() < MAX_SEED {
            if *dir != side {
                smtp.extend_from_slice(&[ESC, *dir as u8]);
                side = *dir;
            }
            escape_into(&mut smtp, bytes);
        }
        let from =
            if tls_on[*dir] { Some(0) } else { bytes.windows(3).position(|w| w[0] == 0x16 && w[1] == 3 && w[2] <= 4) };
        if let (Some(at), true) = (from, tls.len() < MAX_SEED) {
            tls_on[*dir] = true;
            if *dir != tls_side {
                tls.extend_from_slice(&[ESC, *dir as u8]);
                tls_side = *dir;
            }
            escape_into(&mut tls, &bytes[at..]);
        }
    }
    if !smtp.is_empty() {
        let _ = std::fs::write(out.join("smtp").join(name), smtp);
    }
    if !tls.is_empty() {
        let _ = std::fs::write(out.join("tls").join(name), tls);
    }
}
