//! The flood captures of `make floods` (examples/make_floods.rs) at the CI scale (0.01: 10 k
//! SYN-only flows, a 10 MB line, 1 k pipelined commands, 1 k tiny out-of-order segments), each
//! with a real session interleaved, checked as scripts/floods.sh checks them at full scale. Time
//! and peak RSS are measured by the script, not here.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use smtpscope::capture::MergedReader;
use smtpscope::engine::{Config, Engine};
use smtpscope::session::Session;

#[allow(dead_code)]
#[path = "../examples/make_floods.rs"]
mod make_floods;

fn floods() -> PathBuf {
    static ONCE: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    ONCE.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("floods-0.01");
        make_floods::write_all(&dir, 0.01);
        dir
    })
    .clone()
}

fn run(file: &str, cfg: Config) -> (Vec<Session>, Engine) {
    let path: PathBuf = floods().join(file);
    let mut r = MergedReader::open(&[path], None).expect("flood capture opens");
    let mut e = Engine::new(cfg, vec![Arc::from(file)], None);
    let mut out = Vec::new();
    while let Some(p) = r.next_packet() {
        e.packet(&p, &mut |s| out.push(s));
    }
    e.finish(&mut |s| out.push(s));
    (out, e)
}

/// The real session interleaved with every flood is found and classified.
fn real_session_survives(out: &[Session]) {
    let real: Vec<_> = out.iter().filter(|s| s.client.ip().to_string() == "10.200.0.1").collect();
    assert_eq!(real.len(), 1, "one real session");
    assert_eq!(real[0].verdict.map(|v| v.name()), Some("starttls-offered-unused"));
    assert_eq!(real[0].messages_accepted, 1);
}

fn flood_session<'a>(out: &'a [Session], net: &str) -> &'a Session {
    out.iter().find(|s| s.client.ip().to_string().starts_with(net)).expect("the flood's own session is reported")
}

#[test]
fn syn_only_flows_are_counted_not_printed_and_evicted_within_the_cap() {
    let mut cfg = Config::default();
    // The full run holds 100 k flows against 1 M; the same ratio here.
    cfg.limits.max_flows = 1000;
    let (out, e) = run("syn-flood.pcap", cfg);
    real_session_survives(&out);
    assert_eq!(out.len(), 1, "payload-less flows are not records");
    assert_eq!(e.stats.payloadless_mail_flows, 10_000);
    assert!(e.table_stats().evicted >= 9000);
    assert!(e.table_stats().peak_flows <= 1000);
}

#[test]
fn a_line_without_end_is_counted_and_not_stored() {
    let (out, e) = run("long-line.pcap", Config::default());
    real_session_survives(&out);
    assert_eq!(out.len(), 2);
    assert_eq!(e.stats.long_lines, 1);
    let s = flood_session(&out, "10.201.");
    assert_eq!(s.anomalies.long_lines, 1);
    assert!(s.captured_bytes[0] > 9_000_000, "the 10 MB line was read");
}

#[test]
fn pipelined_commands_stay_bounded() {
    let (out, _) = run("pipelined.pcap", Config::default());
    real_session_survives(&out);
    assert_eq!(out.len(), 2);
    let s = flood_session(&out, "10.202.");
    assert_eq!(s.streams[0].gaps, 0);
    assert_eq!(s.anomalies.unsolicited_replies, 0, "every reply matched a pending command");
}

#[test]
fn tiny_out_of_order_segments_are_reassembled_within_the_buffer() {
    let (out, e) = run("out-of-order.pcap", Config::default());
    real_session_survives(&out);
    assert_eq!(out.len(), 2);
    let s = flood_session(&out, "10.203.");
    assert!(s.streams[0].out_of_order >= 999, "{:?}", s.streams[0]);
    assert_eq!(s.streams[0].delivered, 1000 + 14, "every byte delivered once");
    // With a buffer too small for the window, holes are declared and counted instead.
    let mut small = Config::default();
    small.limits.stream.max_buffered = 100;
    let (out, e2) = run("out-of-order.pcap", small);
    real_session_survives(&out);
    assert!(e2.stats.buffer_overflows > 0 && e2.stats.gaps > 0);
    assert_eq!(e.stats.buffer_overflows, 0);
}
