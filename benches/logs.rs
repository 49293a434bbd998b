//! Log reading throughput (`cargo bench --bench logs`): synthetic Exchange SmtpReceive and
//! Postfix logs, each ~32 MiB, read through the whole reader (line splitting, parsing, sessions,
//! verdicts). The target is ≥ 100 MB/s of log on one core (BENCHMARKS.md).

use std::fmt::Write as _;
use std::hint::black_box;
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};

use smtpscope::logs::{read_stream, LogOptions};

const TARGET: usize = 32 << 20;

/// Interleaved Exchange 2013+ Receive sessions in the real sample's line shapes.
fn exchange() -> Vec<u8> {
    let mut s = String::with_capacity(TARGET + 4096);
    s.push_str("#Software: Microsoft Exchange Server\n#Version: 15.0.0.0\n#Log-type: SMTP Receive Protocol Log\n#Date: 2023-01-11T16:00:04.113Z\n#Fields: date-time,connector-id,session-id,sequence-number,local-endpoint,remote-endpoint,event,data,context\n");
    let mut n = 0u64;
    while s.len() < TARGET {
        let (a, b) = (n, n + 1);
        let t =
            |k: u64| format!("2023-01-11T{:02}:{:02}:{:02}.{:03}Z", (k / 3600) % 24, (k / 60) % 60, k % 60, k % 1000);
        for (i, (ev, data, ctx)) in [
            (">", "\"220 HUB.EXAMPLE.TEST Microsoft ESMTP MAIL Service ready at Wed, 11 Jan 2023 16:59:51 +0100\"", ""),
            ("<", "EHLO [10.1.2.3]", ""),
            (">", "250  HUB.EXAMPLE.TEST Hello [10.1.2.3] SIZE 37748736 PIPELINING DSN ENHANCEDSTATUSCODES STARTTLS X-ANONYMOUSTLS AUTH NTLM X-EXPS GSSAPI NTLM 8BITMIME BINARYMIME CHUNKING XRDST", ""),
            ("<", "STARTTLS", ""),
            (">", "220 2.0.0 SMTP server ready", ""),
            ("*", " CN=HUB CN=HUB 12DEABC6565646512346ABDC13456894 12DEABC6565646512346ABDC1345689413589876 2020-01-17T15:15:33.000Z 2025-01-17T15:15:33.000Z HUB;HUB.EXAMPLE.TEST", "Sending certificate Subject Issuer name Serial number Thumbprint Not before Not after Subject alternate names"),
            ("*", "", "\"TLS protocol SP_PROT_TLS1_2_SERVER negotiation succeeded using bulk encryption algorithm CALG_AES_128 with strength 128 bits, MAC hash algorithm CALG_SHA_256 with strength 0 bits and key exchange algorithm CALG_ECDH_EPHEM with strength 256 bits\""),
            ("<", "EHLO [10.1.2.3]", ""),
            (">", "250  HUB.EXAMPLE.TEST Hello [10.1.2.3] SIZE 37748736 PIPELINING DSN ENHANCEDSTATUSCODES AUTH NTLM LOGIN 8BITMIME BINARYMIME CHUNKING XRDST", ""),
            ("<", "MAIL FROM:<someone@example.org> SIZE=2048", ""),
            (">", "250 2.1.0 Sender OK", ""),
            ("-", "", "Local"),
        ]
        .iter()
        .enumerate()
        {
            // Two sessions interleaved, as on a busy hub.
            for id in [a, b] {
                let _ = writeln!(
                    s,
                    "{},HUB\\Default HUB,{:016X},{},10.0.0.1:25,10.1.{}.{}:{},{ev},{data},{ctx}",
                    t(id),
                    id,
                    i,
                    (id >> 8) & 255,
                    id & 255,
                    1024 + id % 60000
                );
            }
        }
        n += 2;
    }
    s.into_bytes()
}

/// Postfix smtpd and smtp sessions in Debian 3.7's line shapes, classic syslog stamps.
fn postfix() -> Vec<u8> {
    let mut s = String::with_capacity(TARGET + 4096);
    let mut n = 0u64;
    while s.len() < TARGET {
        let ts = format!("Dec  7 {:02}:{:02}:{:02}", (n / 3600) % 24, (n / 60) % 60, n % 60);
        let pid = 1000 + n % 50;
        let ip = format!("10.1.{}.{}", (n >> 8) & 255, n & 255);
        let _ = writeln!(s, "{ts} mx postfix/smtpd[{pid}]: connect from client{n}.example[{ip}]");
        let _ = writeln!(s, "{ts} mx postfix/smtpd[{pid}]: Anonymous TLS connection established from client{n}.example[{ip}]: TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits) key-exchange X25519 server-signature RSA-PSS (2048 bits) server-digest SHA256");
        let _ = writeln!(s, "{ts} mx postfix/smtpd[{pid}]: 4A2B3C{n:06X}: client=client{n}.example[{ip}]");
        let _ = writeln!(s, "{ts} mx postfix/cleanup[77]: 4A2B3C{n:06X}: message-id=<{n}@example.org>");
        let _ = writeln!(
            s,
            "{ts} mx postfix/qmgr[78]: 4A2B3C{n:06X}: from=<a@example.org>, size=2048, nrcpt=1 (queue active)"
        );
        let _ = writeln!(s, "{ts} mx postfix/smtpd[{pid}]: disconnect from client{n}.example[{ip}] ehlo=2 starttls=1 mail=1 rcpt=1 data=1 quit=1 commands=7");
        let _ = writeln!(s, "{ts} mx postfix/smtp[{}]: Untrusted TLS connection established to relay.example[192.0.2.{}]:25: TLSv1.2 with cipher ECDHE-RSA-AES256-GCM-SHA384 (256/256 bits)", pid + 1, n % 250);
        let _ = writeln!(s, "{ts} mx postfix/smtp[{}]: 4A2B3C{n:06X}: to=<b@example.net>, relay=relay.example[192.0.2.{}]:25, delay=0.2, delays=0.1/0/0.05/0.05, dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as 99{n:X})", pid + 1, n % 250);
        n += 1;
    }
    s.into_bytes()
}

fn read(c: &mut Criterion) {
    let mut g = c.benchmark_group("logs");
    g.sample_size(10);
    let opts = LogOptions {
        tz: jiff::tz::TimeZone::get("Europe/Berlin").expect("tzdb"),
        reference: Some(1_796_000_000_000_000),
        ..LogOptions::default()
    };
    for (name, data) in [("exchange_receive", exchange()), ("postfix", postfix())] {
        g.throughput(Throughput::Bytes(data.len() as u64));
        g.bench_function(name, |b| {
            b.iter(|| {
                let mut sessions = 0u64;
                let stats = read_stream(black_box(data.as_slice()), Arc::from("bench"), &opts, &mut |_| sessions += 1)
                    .expect("in memory");
                assert!(stats.problems.counts.is_empty(), "{:?}", stats.problems);
                black_box(sessions)
            })
        });
    }
    g.finish();
}

criterion_group!(benches, read);
criterion_main!(benches);
