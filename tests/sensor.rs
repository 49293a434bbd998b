//! Sensor mode in the engine and the records: idle sessions reported as they stand, the
//! `sensor` key, the `-w` file keys.

mod common;

use std::sync::Arc;

use common::Dialogue;
use smtpscope::engine::{Config, Engine};
use smtpscope::report::{json, Options};

const MIN: i64 = 60_000_000;

#[test]
fn a_session_idle_past_the_timeout_is_reported_as_it_stands_and_later_packets_are_late() {
    let d = Dialogue::new(40001, 25)
        .s("220 mx.example ESMTP\r\n")
        .c("EHLO client.example\r\n")
        .s("250-mx.example\r\n250 STARTTLS\r\n")
        .c("MAIL FROM:<a@example.org>\r\n");
    let pkts = d.packets(1400);
    let (first, rest) = pkts.split_at(pkts.len() - 1);
    let last_ts = first.last().unwrap().0;
    let mut engine = Engine::new(Config::default(), vec![Arc::from("x")], None);
    let mut out = Vec::new();
    common::feed_packets(&mut engine, first, usize::MAX, &mut |s| out.push(s));
    engine.expire_idle(last_ts + 9 * MIN, 10 * MIN, &mut |s| out.push(s));
    assert!(out.is_empty(), "not idle for ten minutes yet");
    engine.expire_idle(last_ts + 11 * MIN, 10 * MIN, &mut |s| out.push(s));
    assert_eq!(out.len(), 1, "reported once idle");
    assert_eq!(engine.open_flows(), 0);
    let texts: Vec<&str> = out[0].evidence.iter().map(|e| e.text.as_str()).collect();
    assert!(texts.contains(&"no packet for 10 min"), "{texts:?}");
    // The client's next command arrives after all: it is late, not a second session.
    let late: Vec<_> = rest.iter().map(|(_, p)| (last_ts + 12 * MIN, p.clone())).collect();
    common::feed_packets(&mut engine, &late, usize::MAX, &mut |s| out.push(s));
    engine.finish(&mut |s| out.push(s));
    assert_eq!(out.len(), 1, "no phantom second session");
    assert_eq!(engine.table_stats().late_packets, 1);
}

#[test]
fn a_session_idle_right_after_the_ehlo_reply_is_incomplete() {
    let d = Dialogue::new(40002, 25)
        .s("220 mx.example ESMTP\r\n")
        .c("EHLO client.example\r\n")
        .s("250-mx.example\r\n250 STARTTLS\r\n");
    let pkts = d.packets(1400);
    let mut engine = Engine::new(Config::default(), vec![Arc::from("x")], None);
    let mut out = Vec::new();
    common::feed_packets(&mut engine, &pkts, usize::MAX, &mut |s| out.push(s));
    engine.expire_idle(pkts.last().unwrap().0 + 11 * MIN, 10 * MIN, &mut |s| out.push(s));
    assert_eq!(out.len(), 1);
    let r = json::record(&out[0], Options::default());
    assert_eq!(r["verdict"], "incomplete");
    let reason = r["evidence"][0]["text"].as_str().unwrap();
    assert!(reason.contains("idle"), "{reason}");
    assert_eq!(r["evidence"][1]["text"], "no packet for 10 min");
}

#[test]
fn the_sensor_key_follows_interface_on_every_record_and_pcap_file_follows_tcp_anomalies() {
    let d = Dialogue::new(40003, 25).s("220 mx ESMTP\r\n").c("QUIT\r\n").s("221 bye\r\n").close();
    let cfg = Config { sensor: Some(Arc::from("tor-hub")), ..Config::default() };
    let (sessions, _) = common::run_packets_with(cfg, &d.packets(1400));
    let r = json::record(&sessions[0], Options::default());
    let keys: Vec<&String> = r.as_object().unwrap().keys().collect();
    let at = keys.iter().position(|k| *k == "interface").unwrap();
    assert_eq!(keys[at + 1], "sensor");
    assert_eq!(r["sensor"], "tor-hub");
    // Appended keys follow tcp_anomalies in the order they were added: pcap_file first.
    let anomalies = keys.iter().position(|k| *k == "tcp_anomalies").unwrap();
    assert_eq!(keys[anomalies + 1], "pcap_file");
    assert!(r["pcap_file"].is_null());
    assert!(r["evidence"][0].as_object().unwrap().contains_key("file"));
    let (sessions, _) = common::run_packets_with(Config::default(), &d.packets(1400));
    assert!(json::record(&sessions[0], Options::default())["sensor"].is_null(), "files: null unless --sensor");
}

fn smtpscope(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_smtpscope")).args(args).output().unwrap()
}

fn demo() -> String {
    common::bundled().join("demo.pcap").to_str().unwrap().to_string()
}

#[test]
fn output_takes_the_records_off_stdout_and_each_rotated_file_is_whole() {
    let dir = common::scratch("output");
    let out = dir.path().join("s.ndjson");
    let o = smtpscope(&["-q", "-r", &demo(), "--output", out.to_str().unwrap(), "--rotate", "1K", "--sensor", "lab"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(o.stdout.is_empty(), "no records on stdout with --output");
    let mut n = 0;
    for e in std::fs::read_dir(dir.path()).unwrap() {
        let text = std::fs::read_to_string(e.unwrap().path()).unwrap();
        for r in common::ndjson(text.as_bytes()) {
            assert_eq!(r["sensor"], "lab");
            n += 1;
        }
    }
    assert_eq!(n, 3, "the demo's three sessions, each once");
    assert!(dir.path().join("s.ndjson.1").exists(), "1K rotated");
}

#[test]
fn sensor_options_given_wrongly_are_usage_errors() {
    let d = demo();
    for (args, says) in [
        (vec!["-r", &d, "--output", "/tmp/x", "--rotate", "100"], "bare number"),
        (vec!["-r", &d, "--metrics", "9464"], "--metrics applies to live capture"),
        (vec!["-r", &d, "-C", "10"], "-C"),
        (vec!["-r", &d, "-w", "/tmp/never-written.pcap", "-G", "10"], "-G needs -i"),
        (vec!["-r", &d, "--rotate", "1d"], "--output"),
    ] {
        let o = smtpscope(&args);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(says), "{args:?}: {err}");
    }
    assert!(!std::path::Path::new("/tmp/never-written.pcap").exists(), "refused before any file is written");
}
