//! Micro-benchmarks of the hot path, one stage at a time: decode, reassembly insert, SMTP line
//! parsing and body scanning, TLS record framing, the NDJSON record, and the whole engine over
//! the bundled capture. `cargo bench` (criterion); throughput is reported per byte or element.
//! Not run in CI: timings belong to a quiet machine (see BENCHMARKS.md).

use std::hint::black_box;
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use etherparse::PacketBuilder;

use smtpscope::capture::{MergedReader, Micros};
use smtpscope::decode::{link::dlt, Decoder};
use smtpscope::engine::{Config, Engine};
use smtpscope::flow::{Limits, Reassembler};
use smtpscope::report::json::write_line;
use smtpscope::session::{Session, Side};
use smtpscope::smtp::{command, reply, Machine};
use smtpscope::tls::Tracker;

/// An Ethernet frame carrying TCP with `payload` (IPv4 or IPv6).
fn frame(v6: bool, payload: &[u8]) -> Vec<u8> {
    let eth = PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2]);
    let b = if v6 {
        eth.ipv6([0xfd; 16], [0xfe; 16], 64).tcp(40000, 25, 1, 65535)
    } else {
        eth.ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64).tcp(40000, 25, 1, 65535)
    };
    let mut v = Vec::new();
    b.write(&mut v, payload).expect("build frame");
    v
}

fn decode(c: &mut Criterion) {
    let mut g = c.benchmark_group("decode");
    g.throughput(Throughput::Elements(1));
    for (name, v6) in [("ipv4_tcp_1460", false), ("ipv6_tcp_1440", true)] {
        let f = frame(v6, &vec![b'x'; if v6 { 1440 } else { 1460 }]);
        let mut d = Decoder::new();
        g.bench_function(name, |b| b.iter(|| black_box(d.decode(dlt::EN10MB, black_box(&f)).map(|s| s.wire_len))));
    }
    g.finish();
}

fn reassembly(c: &mut Criterion) {
    let mut g = c.benchmark_group("reassembly_insert");
    let seg = vec![b'a'; 1460];
    let lim = Limits::default();
    g.throughput(Throughput::Bytes(64 * 1460));
    g.bench_function("in_order_64x1460", |b| {
        b.iter_batched(
            || {
                let mut r = Reassembler::new();
                r.on_syn(0);
                r
            },
            |mut r| {
                for i in 0..64u32 {
                    r.insert(1 + i * 1460, &seg, 1460, &lim, &mut |c| {
                        black_box(c);
                    });
                }
                r
            },
            BatchSize::SmallInput,
        )
    });
    g.bench_function("pairwise_swapped_64x1460", |b| {
        b.iter_batched(
            || {
                let mut r = Reassembler::new();
                r.on_syn(0);
                r
            },
            |mut r| {
                for i in (0..64u32).step_by(2) {
                    for k in [i + 1, i] {
                        r.insert(1 + k * 1460, &seg, 1460, &lim, &mut |c| {
                            black_box(c);
                        });
                    }
                }
                r
            },
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

const CLIENT: &[&[u8]] = &[
    b"EHLO client.example.org",
    b"MAIL FROM:<alice@client.example.org> SIZE=12345",
    b"RCPT TO:<bob@mx.example.net>",
    b"DATA",
    b"QUIT",
    b"STARTTLS",
    b"NOOP",
    b"XYZZY something",
];
const SERVER: &[&[u8]] = &[
    b"220 mx.example.net ESMTP Postfix",
    b"250-mx.example.net",
    b"250-PIPELINING",
    b"250-SIZE 10240000",
    b"250 STARTTLS",
    b"354 End data with <CR><LF>.<CR><LF>",
    b"550 5.7.1 relay denied",
];

fn smtp(c: &mut Criterion) {
    let mut g = c.benchmark_group("smtp");
    g.throughput(Throughput::Elements(CLIENT.len() as u64));
    g.bench_function("command_parse", |b| {
        b.iter(|| {
            for l in CLIENT {
                black_box(command::parse(black_box(l)));
            }
        })
    });
    g.throughput(Throughput::Elements(SERVER.len() as u64));
    g.bench_function("reply_parse", |b| {
        b.iter(|| {
            for l in SERVER {
                black_box(reply::parse(black_box(l)));
            }
        })
    });
    // A whole cleartext dialogue through the state machine, evidence included.
    let dialogue: [(Side, &[u8]); 12] = [
        (Side::Server, b"220 mx.example.net ESMTP\r\n"),
        (Side::Client, b"EHLO client.example.org\r\n"),
        (Side::Server, b"250-mx.example.net\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n250 STARTTLS\r\n"),
        (Side::Client, b"MAIL FROM:<alice@client.example.org>\r\n"),
        (Side::Server, b"250 2.1.0 Ok\r\n"),
        (Side::Client, b"RCPT TO:<bob@mx.example.net>\r\n"),
        (Side::Server, b"250 2.1.5 Ok\r\n"),
        (Side::Client, b"DATA\r\n"),
        (Side::Server, b"354 go ahead\r\n"),
        (Side::Client, b"Subject: hi\r\n\r\nhello\r\n.\r\n"),
        (Side::Server, b"250 2.0.0 queued\r\n"),
        (Side::Client, b"QUIT\r\n"),
    ];
    let bytes: usize = dialogue.iter().map(|(_, d)| d.len()).sum();
    g.throughput(Throughput::Bytes(bytes as u64));
    let ends = ("10.0.0.1:40000".parse().unwrap(), "10.0.0.2:25".parse().unwrap());
    g.bench_function("dialogue", |b| {
        b.iter(|| {
            let mut m = Machine::new(true);
            let mut s = Session::new(ends.0, ends.1);
            for (i, (side, d)) in dialogue.iter().enumerate() {
                match side {
                    Side::Client => m.client_data(d, i as u64, &mut s),
                    Side::Server => m.server_data(d, i as u64, &mut s),
                }
            }
            black_box(s.evidence.len())
        })
    });
    // A 64 KiB base64 body, in 1460-byte segments, scanned for the end of data.
    let mut body = Vec::new();
    while body.len() < 64 * 1024 {
        body.extend_from_slice(b"VGhlIHF1aWNrIGJyb3duIGZveCBqdW1wcyBvdmVyIHRoZSBsYXp5IGRvZy4gVGhlIHF1aWNrIGJyb3du\r\n");
    }
    body.extend_from_slice(b".\r\n");
    g.throughput(Throughput::Bytes(body.len() as u64));
    g.bench_function("body_scan_64k", |b| {
        b.iter_batched(
            || {
                let mut m = Machine::new(true);
                let mut s = Session::new(ends.0, ends.1);
                m.server_data(b"220 mx\r\n", 1, &mut s);
                m.client_data(b"DATA\r\n", 2, &mut s);
                m.server_data(b"354 go\r\n", 3, &mut s);
                (m, s)
            },
            |(mut m, mut s)| {
                for chunk in body.chunks(1460) {
                    m.client_data(chunk, 4, &mut s);
                }
                black_box(s.message_bytes)
            },
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

fn tls(c: &mut Criterion) {
    let mut g = c.benchmark_group("tls");
    // After ChangeCipherSpec: 16 KiB application-data records arriving in 1460-byte segments.
    let mut stream = Vec::new();
    for _ in 0..8 {
        stream.extend_from_slice(&[23, 3, 3, 0x40, 0x00]);
        stream.extend(std::iter::repeat_n(0x5a, 0x4000));
    }
    g.throughput(Throughput::Bytes(stream.len() as u64));
    let ends = ("10.0.0.1:40000".parse().unwrap(), "10.0.0.2:25".parse().unwrap());
    g.bench_function("record_scan_128k", |b| {
        b.iter_batched(
            || {
                let mut t = Tracker::new();
                let mut s = Session::new(ends.0, ends.1);
                t.feed(Side::Client, &[20, 3, 3, 0, 1, 1], 1, &mut s);
                (t, s)
            },
            |(mut t, mut s)| {
                for seg in stream.chunks(1460) {
                    t.feed(Side::Client, seg, 2, &mut s);
                }
                black_box(s.tls.encrypted_bytes)
            },
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

/// The bundled capture's packets, in memory.
fn demo_packets() -> (i32, Vec<(Micros, u32, Vec<u8>)>) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("captures/demo.pcap");
    let mut r = MergedReader::open(&[path], None).expect("open demo.pcap");
    let mut v = Vec::new();
    let mut linktype = 0;
    while let Some(p) = r.next_packet() {
        linktype = p.linktype;
        v.push((p.ts, p.orig_len, p.data.to_vec()));
    }
    (linktype, v)
}

fn engine_and_record(c: &mut Criterion) {
    let (linktype, packets) = demo_packets();
    let run = || {
        let mut e = Engine::new(Config::default(), vec![Arc::from("demo.pcap")], None);
        let mut out = Vec::new();
        for (i, (ts, orig_len, data)) in packets.iter().enumerate() {
            let p = smtpscope::capture::Packet {
                ts: *ts,
                data,
                orig_len: *orig_len,
                linktype,
                source: 0,
                frame: i as u64 + 1,
            };
            e.packet(&p, &mut |s| out.push(s));
        }
        e.finish(&mut |s| out.push(s));
        out
    };
    let mut g = c.benchmark_group("engine");
    g.throughput(Throughput::Elements(packets.len() as u64));
    g.bench_function("demo_pcap_packets", |b| b.iter(|| black_box(run().len())));
    g.finish();

    let sessions = run();
    let mut g = c.benchmark_group("report");
    g.throughput(Throughput::Elements(sessions.len() as u64));
    let mut line = Vec::with_capacity(4096);
    g.bench_function("json_records_demo", |b| {
        b.iter(|| {
            for s in &sessions {
                line.clear();
                write_line(&mut line, s, Default::default());
                black_box(line.len());
            }
        })
    });
    g.finish();
}

/// `-R`: records read back, a mix of every bundled capture's records (plain NDJSON in memory),
/// parsed into typed structs and turned into sessions.
fn records_in(c: &mut Criterion) {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("captures");
    let mut one = Vec::new();
    let mut names: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    names.sort();
    for path in names.into_iter().filter(|p| p.extension().is_some_and(|e| e == "pcap")) {
        let mut r = MergedReader::open(std::slice::from_ref(&path), None).unwrap();
        let mut e = Engine::new(Config::default(), vec![Arc::from("x.pcap")], None);
        let mut out = Vec::new();
        while let Some(p) = r.next_packet() {
            e.packet(&p, &mut |s| out.push(s));
        }
        e.finish(&mut |s| out.push(s));
        for s in &out {
            write_line(&mut one, s, Default::default());
            one.push(b'\n');
        }
    }
    let per = one.iter().filter(|b| **b == b'\n').count();
    let copies = 10_000 / per.max(1) + 1;
    let data: Vec<u8> = one.repeat(copies);
    let n = (per * copies) as u64;
    let mut g = c.benchmark_group("records");
    g.throughput(Throughput::Elements(n));
    g.sample_size(20);
    g.bench_function("read_bundled_mix", |b| {
        b.iter(|| {
            let input: Box<dyn std::io::Read + Send> = Box::new(std::io::Cursor::new(data.clone()));
            let mut f = smtpscope::records::RecordFile::from_reader("bench", input).unwrap();
            let mut k = 0u64;
            while let Some(s) = f.next_session() {
                k += black_box(s.packets) | 1;
            }
            assert_eq!(f.stats().records, n);
            k
        })
    });
    g.finish();
}

criterion_group!(benches, decode, reassembly, smtp, tls, engine_and_record, records_in);
criterion_main!(benches);
