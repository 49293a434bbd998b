//! Writes the flood captures `scripts/floods.sh` measures: SYN-only flows, one line without a
//! line end, pipelined commands, tiny out-of-order segments — each with a real SMTP session
//! interleaved that must still be classified (starttls-offered-unused).
//!
//! `cargo run --release --example make_floods -- OUT_DIR SCALE` (SCALE 1 = the full sizes:
//! 1 M flows, a 1 GB line, 100 k commands, 100 k segments; 0.01 = the CI sizes).
//!
//! `make_floods --concurrent OPEN SESSIONS OUT.pcap` writes the flows-scaling workload instead:
//! SESSIONS real-shaped sessions, OPEN of them in progress at any time, their packets
//! interleaved round-robin (a finished session is replaced by a new one), so the per-packet cost
//! can be compared at 1 k and 100 k concurrent flows with the same packets per session.

use std::path::Path;

use etherparse::PacketBuilder;

struct Writer {
    save: pcap::Savefile,
    ts: i64,
}

impl Writer {
    fn new(path: &Path) -> Self {
        let cap = pcap::Capture::dead(pcap::Linktype(12)).expect("dead capture");
        Self { save: cap.savefile(path).expect("create pcap"), ts: 1_700_000_000_000_000 }
    }

    fn tcp(&mut self, src: ([u8; 4], u16), dst: ([u8; 4], u16), seq: u32, ack: Option<u32>, flags: &str, data: &[u8]) {
        let mut b = PacketBuilder::ipv4(src.0, dst.0, 64).tcp(src.1, dst.1, seq, 65535);
        if flags.contains('S') {
            b = b.syn();
        }
        if let Some(a) = ack {
            b = b.ack(a);
        }
        if flags.contains('F') {
            b = b.fin();
        }
        let mut v = Vec::with_capacity(60 + data.len());
        b.write(&mut v, data).expect("build packet");
        self.ts += 10;
        let h = pcap::PacketHeader {
            ts: libc::timeval { tv_sec: self.ts / 1_000_000, tv_usec: self.ts % 1_000_000 },
            caplen: v.len() as u32,
            len: v.len() as u32,
        };
        self.save.write(&pcap::Packet::new(&h, &v));
    }
}

/// A real-shaped session, in steps, so floods can be interleaved between them.
struct Session {
    c: ([u8; 4], u16),
    s: ([u8; 4], u16),
    cs: u32,
    ss: u32,
    step: usize,
}

const CLIENT_LINES: [&[u8]; 5] = [
    b"EHLO real.example\r\n",
    b"MAIL FROM:<a@real.example>\r\n",
    b"RCPT TO:<b@mx.example>\r\n",
    b"DATA\r\n",
    b"hello\r\n.\r\nQUIT\r\n",
];
const SERVER_LINES: [&[u8]; 5] =
    [b"250-mx.example\r\n250 STARTTLS\r\n", b"250 ok\r\n", b"250 ok\r\n", b"354 go\r\n", b"250 queued\r\n221 bye\r\n"];

impl Session {
    fn new(port: u16) -> Self {
        Self { c: ([10, 200, 0, 1], port), s: ([10, 200, 0, 2], 25), cs: 100, ss: 900, step: 0 }
    }

    /// Session number `i` of the concurrency workload: its own client address.
    fn numbered(i: u32) -> Self {
        let c = [10, (i >> 16) as u8, (i >> 8) as u8, i as u8];
        Self { c: (c, 40000 + (i % 20000) as u16), s: ([192, 0, 2, 25], 25), cs: i, ss: i.wrapping_mul(7), step: 0 }
    }

    /// Writes the next step; false when done.
    fn next(&mut self, w: &mut Writer) -> bool {
        let (c, s) = (self.c, self.s);
        match self.step {
            0 => {
                w.tcp(c, s, self.cs, None, "S", &[]);
                w.tcp(s, c, self.ss, Some(self.cs + 1), "S", &[]);
                self.cs += 1;
                self.ss += 1;
                let g = b"220 mx.example ESMTP\r\n";
                w.tcp(s, c, self.ss, Some(self.cs), "", g);
                self.ss += g.len() as u32;
            }
            1..=5 => {
                let (cl, sl) = (CLIENT_LINES[self.step - 1], SERVER_LINES[self.step - 1]);
                w.tcp(c, s, self.cs, Some(self.ss), "", cl);
                self.cs += cl.len() as u32;
                w.tcp(s, c, self.ss, Some(self.cs), "", sl);
                self.ss += sl.len() as u32;
            }
            6 => {
                w.tcp(c, s, self.cs, Some(self.ss), "F", &[]);
                w.tcp(s, c, self.ss, Some(self.cs + 1), "F", &[]);
                w.tcp(c, s, self.cs + 1, Some(self.ss + 1), "", &[]);
            }
            _ => return false,
        }
        self.step += 1;
        true
    }
}

fn syn_flood(dir: &Path, n: u64) {
    let mut w = Writer::new(&dir.join("syn-flood.pcap"));
    let mut real = Session::new(40001);
    let every = (n / 8).max(1);
    for i in 0..n {
        let src = [10, 100 + (i >> 24) as u8, (i >> 16) as u8, (i >> 8) as u8];
        w.tcp((src, 1024 + (i % 50_000) as u16), ([10, 200, 0, 2], 25), i as u32, None, "S", &[]);
        if i % every == 0 {
            real.next(&mut w);
        }
    }
    while real.next(&mut w) {}
}

fn long_line(dir: &Path, bytes: u64) {
    let mut w = Writer::new(&dir.join("long-line.pcap"));
    let (c, s) = (([10, 201, 0, 1], 40002), ([10, 201, 0, 2], 25));
    w.tcp(c, s, 0, None, "S", &[]);
    w.tcp(s, c, 0, Some(1), "S", &[]);
    w.tcp(s, c, 1, Some(1), "", b"220 mx ESMTP\r\n");
    let chunk = vec![b'A'; 1460];
    let mut seq = 1u32;
    let mut real = Session::new(40003);
    let steps = bytes / 1460;
    let every = (steps / 8).max(1);
    for k in 0..steps {
        w.tcp(c, s, seq, Some(15), "", &chunk);
        seq = seq.wrapping_add(1460);
        if k % every == 0 {
            real.next(&mut w);
        }
    }
    w.tcp(c, s, seq, Some(15), "", b"\r\nQUIT\r\n");
    while real.next(&mut w) {}
}

fn pipelined(dir: &Path, n: u64) {
    let mut w = Writer::new(&dir.join("pipelined.pcap"));
    let mut real = Session::new(40005);
    real.next(&mut w);
    real.next(&mut w);
    let (c, s) = (([10, 202, 0, 1], 40004), ([10, 202, 0, 2], 25));
    w.tcp(c, s, 0, None, "S", &[]);
    w.tcp(s, c, 0, Some(1), "S", &[]);
    w.tcp(s, c, 1, Some(1), "", b"220 mx ESMTP\r\n");
    let mut cseq = 1u32;
    let mut sseq = 15u32;
    let burst = b"NOOP\r\n".repeat(200);
    let replies = b"250 ok\r\n".repeat(200);
    for _ in 0..(n / 200).max(1) {
        w.tcp(c, s, cseq, Some(sseq), "", &burst);
        cseq = cseq.wrapping_add(burst.len() as u32);
        w.tcp(s, c, sseq, Some(cseq), "", &replies);
        sseq = sseq.wrapping_add(replies.len() as u32);
    }
    while real.next(&mut w) {}
}

fn out_of_order(dir: &Path, n: u64) {
    let mut w = Writer::new(&dir.join("out-of-order.pcap"));
    let mut real = Session::new(40007);
    let (c, s) = (([10, 203, 0, 1], 40006), ([10, 203, 0, 2], 25));
    w.tcp(c, s, 0, None, "S", &[]);
    w.tcp(s, c, 0, Some(1), "S", &[]);
    w.tcp(s, c, 1, Some(1), "", b"220 mx ESMTP\r\n");
    w.tcp(c, s, 1, Some(15), "", b"EHLO x\r\nDATA\r\n");
    w.tcp(s, c, 15, Some(15), "", b"250 ok\r\n354 go\r\n");
    // Tiny segments sent in reverse order within windows of 1000.
    let base = 15u32;
    let every = (n / 8).max(1);
    for win in 0..(n / 1000).max(1) {
        for k in (0..1000u64).rev() {
            let i = win * 1000 + k;
            w.tcp(c, s, base + i as u32, Some(31), "", b"x");
            if i % every == 0 {
                real.next(&mut w);
            }
        }
    }
    while real.next(&mut w) {}
}

/// Writes the four flood captures into `dir` at `scale` (1 = the full sizes).
pub fn write_all(dir: &Path, scale: f64) {
    std::fs::create_dir_all(dir).expect("create dir");
    let n = |full: f64| (full * scale).max(1.0) as u64;
    syn_flood(dir, n(1_000_000.0));
    long_line(dir, n(1_000_000_000.0));
    pipelined(dir, n(100_000.0));
    out_of_order(dir, n(100_000.0));
}

#[allow(dead_code)] // tests/floods.rs includes this file for `write_all`
fn concurrent(path: &std::path::Path, open: usize, sessions: u32) {
    let mut w = Writer::new(path);
    let mut next = 0u32;
    let mut live: Vec<Session> = Vec::with_capacity(open);
    while (live.len() < open) && next < sessions {
        live.push(Session::numbered(next));
        next += 1;
    }
    while !live.is_empty() {
        let mut k = 0;
        while k < live.len() {
            if live[k].next(&mut w) {
                k += 1;
            } else if next < sessions {
                live[k] = Session::numbered(next);
                next += 1;
            } else {
                live.swap_remove(k);
            }
        }
    }
}

#[allow(dead_code)] // tests/floods.rs includes this file for `write_all`
fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let [flag, open, sessions, out] = args.as_slice() {
        if flag == "--concurrent" {
            let open = open.parse().expect("OPEN: a number");
            let sessions = sessions.parse().expect("SESSIONS: a number");
            concurrent(std::path::Path::new(out), open, sessions);
            eprintln!("{sessions} sessions, {open} open at a time, written to {out}");
            return;
        }
    }
    let mut a = args.into_iter();
    let dir = std::path::PathBuf::from(a.next().expect("usage: make_floods OUT_DIR SCALE"));
    let scale: f64 = a.next().and_then(|s| s.parse().ok()).unwrap_or(1.0);
    write_all(&dir, scale);
    eprintln!("floods written to {}", dir.display());
}
