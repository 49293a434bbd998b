//! Writes a two-point capture pair for the diff benchmark: N SMTP sessions seen on the client's
//! side of an ASA-style box (banner masked, `XXXXXXXA` in the EHLO reply) at `A`, and on the
//! server's side behind NAT at `B`, whose clock runs one hour ahead.
//!
//! `cargo run --release --example make_diff_pair -- N A.pcap B.pcap`
//! Addresses are documentation ranges, written into the files only.

use std::path::Path;

use etherparse::PacketBuilder;

struct Writer {
    save: pcap::Savefile,
}

impl Writer {
    fn new(path: &Path) -> Self {
        let cap = pcap::Capture::dead(pcap::Linktype(12)).expect("dead capture");
        Self { save: cap.savefile(path).expect("create pcap") }
    }

    #[allow(clippy::too_many_arguments)]
    fn tcp(
        &mut self,
        ts: i64,
        src: ([u8; 4], u16),
        dst: ([u8; 4], u16),
        seq: u32,
        ack: Option<u32>,
        syn: bool,
        fin: bool,
        data: &[u8],
    ) {
        let mut b = PacketBuilder::ipv4(src.0, dst.0, 64).tcp(src.1, dst.1, seq, 64240);
        if syn {
            b = b.syn();
        }
        if let Some(a) = ack {
            b = b.ack(a);
        }
        if fin {
            b = b.fin();
        }
        let b = if syn { b.options_raw(&[2, 4, 5, 0xb4]).expect("options") } else { b };
        let mut v = Vec::with_capacity(60 + data.len());
        b.write(&mut v, data).expect("build packet");
        let h = pcap::PacketHeader { ts: libc_timeval(ts), caplen: v.len() as u32, len: v.len() as u32 };
        self.save.write(&pcap::Packet::new(&h, &v));
    }
}

fn libc_timeval(ts: i64) -> libc::timeval {
    libc::timeval { tv_sec: (ts / 1_000_000) as libc::time_t, tv_usec: (ts % 1_000_000) as libc::suseconds_t }
}

/// One session at one point: `masked` is the client's side of the box.
fn session(w: &mut Writer, i: u32, t0: i64, client: ([u8; 4], u16), masked: bool) {
    let server = ([198, 51, 100, 25], 25);
    let (mut cs, mut ss) = (1000u32.wrapping_mul(i + 1), 7000u32.wrapping_mul(i + 3));
    let mut t = t0;
    let mut step = |w: &mut Writer, from_client: bool, data: &[u8], cs: &mut u32, ss: &mut u32| {
        t += 150;
        if from_client {
            w.tcp(t, client, server, *cs, Some(*ss), false, false, data);
            *cs = cs.wrapping_add(data.len() as u32);
        } else {
            w.tcp(t, server, client, *ss, Some(*cs), false, false, data);
            *ss = ss.wrapping_add(data.len() as u32);
        }
    };
    w.tcp(t0, client, server, cs, None, true, false, &[]);
    w.tcp(t0 + 50, server, client, ss, Some(cs + 1), true, false, &[]);
    cs += 1;
    ss += 1;
    let clean = b"220 mx.bench.example ESMTP Postfix (Debian/GNU) 2020\r\n";
    // as an ASA masks it: every byte of the text but 2s and 0s; the code and line end kept
    let asa: Vec<u8> = clean
        .iter()
        .enumerate()
        .map(|(k, &c)| if k < 4 || k >= clean.len() - 2 || c == b'2' || c == b'0' { c } else { b'*' })
        .collect();
    let banner: &[u8] = if masked { &asa } else { clean };
    let offer: &[u8] = if masked { b"250-XXXXXXXA\r\n" } else { b"250-STARTTLS\r\n" };
    step(w, true, b"", &mut cs, &mut ss);
    step(w, false, banner, &mut cs, &mut ss);
    step(w, true, format!("EHLO host-{i}.bench.example\r\n").as_bytes(), &mut cs, &mut ss);
    let mut reply = b"250-mx.bench.example\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n".to_vec();
    reply.extend_from_slice(offer);
    reply.extend_from_slice(b"250 8BITMIME\r\n");
    step(w, false, &reply, &mut cs, &mut ss);
    step(w, true, format!("MAIL FROM:<user{i}@bench.example>\r\n").as_bytes(), &mut cs, &mut ss);
    step(w, false, b"250 2.1.0 Ok\r\n", &mut cs, &mut ss);
    step(w, true, b"RCPT TO:<postmaster@bench.example>\r\n", &mut cs, &mut ss);
    step(w, false, b"250 2.1.5 Ok\r\n", &mut cs, &mut ss);
    step(w, true, b"DATA\r\n", &mut cs, &mut ss);
    step(w, false, b"354 End data with <CR><LF>.<CR><LF>\r\n", &mut cs, &mut ss);
    step(w, true, format!("Subject: bench {i}\r\n\r\nhello\r\n.\r\n").as_bytes(), &mut cs, &mut ss);
    step(w, false, b"250 2.0.0 Ok: queued\r\n", &mut cs, &mut ss);
    step(w, true, b"QUIT\r\n", &mut cs, &mut ss);
    step(w, false, b"221 2.0.0 Bye\r\n", &mut cs, &mut ss);
    w.tcp(t0 + 3000, client, server, cs, Some(ss), false, true, &[]);
    w.tcp(t0 + 3050, server, client, ss, Some(cs + 1), false, true, &[]);
    w.tcp(t0 + 3100, client, server, cs + 1, Some(ss + 1), false, false, &[]);
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, n, a, b] = args.as_slice() else {
        eprintln!("usage: make_diff_pair N A.pcap B.pcap");
        std::process::exit(2);
    };
    let n: u32 = n.parse().expect("N");
    let (mut wa, mut wb) = (Writer::new(Path::new(a)), Writer::new(Path::new(b)));
    for i in 0..n {
        let t0 = 1_700_000_000_000_000 + i64::from(i) * 5_000;
        let cport = 20_000 + (i % 40_000) as u16;
        let c = ([192, 0, 2, (i % 250 + 1) as u8], cport);
        session(&mut wa, i, t0, c, true);
        // the box translates the client to one address, ports from 30000; b's clock is 1 h ahead
        session(&mut wb, i, t0 + 3_600_000_000 + 300, ([203, 0, 113, 1], 30_000 + (i % 30_000) as u16), false);
    }
    wa.save.flush().expect("flush");
    wb.save.flush().expect("flush");
}
