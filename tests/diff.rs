//! The two-point diff: lab captures of real boxes (captures/diff/, made by
//! tests/lab/diff_lab.py, both points captured at once) and bad input.

mod common;

use std::path::{Path, PathBuf};

use serde_json::Value;
use smtpscope::diff::{self, output, Settings};

fn lab(name: &str) -> (PathBuf, PathBuf) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("captures/diff");
    (dir.join(format!("{name}-a.pcap")), dir.join(format!("{name}-b.pcap")))
}

/// The NDJSON lines of `diff A B`: the session lines, then the summary.
fn diff_lines(a: &Path, b: &Path) -> (Vec<Value>, Value) {
    let d = diff::run(&[a.to_path_buf()], &[b.to_path_buf()], None, &Settings::default()).expect("diff runs");
    let mut out = Vec::new();
    output::write_json(&mut out, &d, Default::default()).unwrap();
    let mut lines = common::ndjson(&out);
    let summary = lines.pop().expect("a summary line");
    assert_eq!(summary["type"], "summary");
    (lines, summary)
}

fn kinds(v: &Value) -> Vec<&str> {
    v["changes"].as_array().unwrap().iter().map(|c| c["kind"].as_str().unwrap()).collect()
}

fn change<'a>(v: &'a Value, kind: &str) -> &'a Value {
    v["changes"].as_array().unwrap().iter().find(|c| c["kind"] == kind).unwrap_or_else(|| panic!("no {kind} in {v}"))
}

fn middleboxes(v: &Value) -> Vec<&str> {
    v["middleboxes"].as_array().unwrap().iter().map(|m| m.as_str().unwrap()).collect()
}

#[test]
fn transparent_path_changes_nothing() {
    let (a, b) = lab("transparent");
    check_transparent(&a, &b);
}

fn check_transparent(a: &Path, b: &Path) {
    let (lines, summary) = diff_lines(a, b);
    assert_eq!(lines.len(), 2);
    for l in &lines {
        assert_eq!(kinds(l), Vec::<&str>::new(), "{l}");
        assert_eq!(l["middlebox"], "transparent");
        assert_eq!(middleboxes(l), ["transparent"]);
        assert_eq!(l["server_side"], "b", "the SYN-ACK reaches the server's veth first");
    }
    assert_eq!(
        (summary["matched"].as_u64(), summary["only_a"].as_u64(), summary["only_b"].as_u64()),
        (Some(2), Some(0), Some(0))
    );
    assert!(summary["clock_offset_s"].as_f64().unwrap().abs() < 0.01, "{summary}");
}

#[test]
fn records_are_exactly_what_f_json_writes() {
    let (a, b) = lab("transparent");
    let (lines, _) = diff_lines(&a, &b);
    let at_a = common::records(&a);
    let at_b = common::records(&b);
    // the helper names files by their base name, as `-r NAME` run in their directory would
    let base = |v: &Value| {
        let mut v = v.clone();
        let name = Path::new(v["file"].as_str().unwrap()).file_name().unwrap().to_string_lossy().to_string();
        v["file"] = Value::from(name);
        v
    };
    for l in &lines {
        assert!(at_a.contains(&base(&l["a"])), "a record not as -F json writes it: {}", l["a"]);
        assert!(at_b.contains(&base(&l["b"])), "b record not as -F json writes it: {}", l["b"]);
    }
}

#[test]
fn inline_asa_rewriter_is_esmtp_inspection() {
    let (a, b) = lab("asa");
    check_asa(&a, &b);
}

// tests/lab/asa_nfqueue.py on one TCP connection: swaks -tlso, then smtplib insisting on STARTTLS
fn check_asa(a: &Path, b: &Path) {
    let (lines, _) = diff_lines(a, b);
    assert_eq!(lines.len(), 2);
    for l in &lines {
        assert_eq!(l["server_side"], "b", "the unmasked side is the server's");
        let banner = change(l, "banner-masked");
        assert!(banner["a"].as_str().unwrap().starts_with("220 ****"), "{banner}");
        assert_eq!(banner["b"], "220 mx.lab.example ESMTP Postfix (Debian/GNU)");
        let ehlo = change(l, "ehlo-extension-masked");
        assert_eq!(
            (ehlo["a"].as_str(), ehlo["b"].as_str(), ehlo["hidden"].as_str()),
            (Some("XXXXXXXA"), Some("STARTTLS"), Some("STARTTLS"))
        );
        assert!(ehlo["a_frame"].as_u64().is_some() && ehlo["b_frame"].as_u64().is_some());
        assert_eq!(l["middlebox"], "esmtp-inspection");
        assert_eq!(middleboxes(l), ["esmtp-inspection"]);
    }
    assert_eq!(kinds(&lines[0]), ["banner-masked", "ehlo-extension-masked"], "swaks never sends STARTTLS");
    assert_eq!(kinds(&lines[1]), ["banner-masked", "ehlo-extension-masked", "command-rewritten"]);
    let cmd = change(&lines[1], "command-rewritten");
    assert_eq!(
        (cmd["a"].as_str(), cmd["b"].as_str(), cmd["hidden"].as_str()),
        (Some("STARTTLS"), Some("XXXXXXXX"), Some("STARTTLS"))
    );
}

#[test]
fn nat_with_mss_clamp() {
    let (a, b) = lab("nat");
    check_nat(&a, &b);
}

fn check_nat(a: &Path, b: &Path) {
    let (lines, _) = diff_lines(a, b);
    assert_eq!(lines.len(), 1);
    let l = &lines[0];
    assert_eq!(kinds(l), ["address-translated", "tcp-options", "tcp-options"], "SYN and SYN-ACK clamped");
    let addr = change(l, "address-translated");
    assert!(addr["a"].as_str().unwrap().starts_with("10.233.0.1:"), "{addr}");
    assert!(addr["b"].as_str().unwrap().starts_with("10.233.1.254:"), "{addr}");
    let opts = change(l, "tcp-options");
    assert!(
        opts["a"].as_str().unwrap().starts_with("mss 1460") && opts["b"].as_str().unwrap().starts_with("mss 1200"),
        "{opts}"
    );
    assert_eq!(l["middlebox"], "nat");
    assert_eq!(middleboxes(l), ["nat"]);
}

#[test]
fn stripping_proxy_answers_starttls_itself() {
    let (a, b) = lab("proxy");
    check_proxy(&a, &b);
}

// tests/lab/strip_proxy.py: two TCP connections; the server never sees STARTTLS
fn check_proxy(a: &Path, b: &Path) {
    let (lines, _) = diff_lines(a, b);
    assert_eq!(lines.len(), 1);
    let l = &lines[0];
    assert_eq!(kinds(l), ["address-translated", "ehlo-extension-masked", "command-intercepted"]);
    let c = change(l, "command-intercepted");
    assert_eq!((c["a"].as_str(), c["b"].as_str()), (Some("STARTTLS"), None));
    assert_eq!(c["reply"], "500 5.5.1 Command unrecognized");
    assert!(c["a_frame"].as_u64().is_some());
    assert_eq!(l["server_side"], "b");
    assert_eq!(l["middlebox"], "proxy");
    assert_eq!(middleboxes(l), ["proxy", "esmtp-inspection"]);
}

#[test]
fn tls_terminating_relay_names_both_certificates() {
    let (a, b) = lab("tls-relay");
    check_tls_relay(&a, &b);
}

// Postfix in the middle with its own certificate, relaying over a second STARTTLS session
fn check_tls_relay(a: &Path, b: &Path) {
    let (lines, summary) = diff_lines(a, b);
    assert_eq!(lines.len(), 1, "paired by time order and server port within the relay window");
    let l = &lines[0];
    assert_eq!(kinds(l), ["address-translated", "tls-terminated"]);
    let t = change(l, "tls-terminated");
    assert!(t["a"].as_str().unwrap().contains("CN=relay.lab.example"), "{t}");
    assert!(t["b"].as_str().unwrap().contains("CN=mx.lab.example"), "{t}");
    assert_eq!(l["server_side"], "b");
    assert_eq!(l["middlebox"], "proxy");
    assert_eq!(middleboxes(l), ["proxy", "tls-interception"]);
    assert_eq!(summary["matched"], 1);
}

#[test]
fn relay_window_bounds_the_pairing() {
    let (a, b) = lab("tls-relay");
    let set = Settings { relay_window: 0, max_skew: 0, ..Settings::default() };
    let d = diff::run(&[a], &[b], None, &set).unwrap();
    assert_eq!((d.matched(), d.only_a(), d.only_b()), (0, 1, 1));
}

// --- bad input ---------------------------------------------------------------------------------

fn bundled(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("captures").join(name)
}

#[test]
fn unrelated_captures_match_nothing_and_say_so() {
    let d =
        diff::run(&[bundled("plaintext.pcap")], &[bundled("offered-unused.pcap")], None, &Settings::default()).unwrap();
    assert_eq!(d.matched(), 0);
    assert_eq!((d.only_a(), d.only_b()), (1, 1));
    assert_eq!(d.offset, None);
    let msg = output::nothing_matched(&d).expect("said plainly");
    assert!(msg.contains("no session at A matches one at B"), "{msg}");
    for e in &d.entries {
        assert!(e.reason.is_some() && e.comparison.is_none());
    }
    let mut out = Vec::new();
    output::write_json(&mut out, &d, Default::default()).unwrap();
    let lines = common::ndjson(&out);
    assert_eq!(lines.last().unwrap()["clock_offset_s"], Value::Null);
    assert!(lines[..2].iter().all(|l| l["middlebox"].is_null() && l["reason"].is_string()));
}

/// A classic pcap header with no packet.
fn empty_pcap(path: &Path) {
    let mut h = Vec::new();
    h.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    h.extend_from_slice(&2u16.to_le_bytes());
    h.extend_from_slice(&4u16.to_le_bytes());
    h.extend_from_slice(&[0; 8]);
    h.extend_from_slice(&65535u32.to_le_bytes());
    h.extend_from_slice(&1u32.to_le_bytes());
    std::fs::write(path, h).unwrap();
}

#[test]
fn an_empty_capture_is_named() {
    let (_dir, empty) = common::scratch_file("empty.pcap");
    empty_pcap(&empty);
    let (a, _) = lab("transparent");
    let err = diff::run(&[a], std::slice::from_ref(&empty), None, &Settings::default()).unwrap_err().to_string();
    assert!(err.contains("empty.pcap") && err.contains("no packets"), "{err}");
    std::fs::write(&empty, b"").unwrap();
    let (a, _) = lab("transparent");
    let err = diff::run(&[a], &[empty], None, &Settings::default()).unwrap_err().to_string();
    assert!(err.contains("empty.pcap"), "{err}");
}

/// A copy of a classic little-endian pcap with every timestamp moved by `secs`.
fn shifted(src: &Path, dst: &Path, secs: i64) {
    let mut b = std::fs::read(src).unwrap();
    let mut at = 24;
    while at + 16 <= b.len() {
        let ts = u32::from_le_bytes(b[at..at + 4].try_into().unwrap());
        b[at..at + 4].copy_from_slice(&((i64::from(ts) + secs) as u32).to_le_bytes());
        let incl = u32::from_le_bytes(b[at + 8..at + 12].try_into().unwrap()) as usize;
        at += 16 + incl;
    }
    std::fs::write(dst, b).unwrap();
}

#[test]
fn clocks_an_hour_apart_are_found_and_reported() {
    let (a, b) = lab("asa");
    let (_dir, late) = common::scratch_file("asa-b-plus-1h.pcap");
    shifted(&b, &late, 3600);
    let (lines, summary) = diff_lines(&a, &late);
    let off = summary["clock_offset_s"].as_f64().unwrap();
    assert!((off - 3600.0).abs() < 0.01, "{summary}");
    assert_eq!(summary["matched"], 2);
    assert_eq!(lines[1]["server_side"], "b");
    assert_eq!(kinds(&lines[1]), ["banner-masked", "ehlo-extension-masked", "command-rewritten"]);
    // b behind a: the offset is negative
    let (_dir2, early) = common::scratch_file("asa-a-plus-1h.pcap");
    shifted(&a, &early, 3600);
    let (_, summary) = diff_lines(&early, &b);
    assert!((summary["clock_offset_s"].as_f64().unwrap() + 3600.0).abs() < 0.01, "{summary}");
}

#[test]
fn an_offset_beyond_max_offset_is_not_looked_for() {
    let (a, b) = lab("asa");
    let (_dir, late) = common::scratch_file("asa-b-plus-2d.pcap");
    shifted(&b, &late, 2 * 86_400);
    let d = diff::run(&[a], &[late], None, &Settings::default()).unwrap();
    assert_eq!(d.offset, None);
    assert_eq!(d.matched(), 0);
    assert!(d.entries.iter().all(|e| e.reason == Some(diff::Reason::OutsideOtherCapture)));
}

// --- synthetic: WAN-optimizer options (no WAN optimizer runs here; crafted packets) -------------

/// Writes one SMTP session (raw IPv4) whose SYN carries `syn_options`.
fn crafted_session(path: &Path, syn_options: &[u8], t0: i64) {
    let cap = pcap::Capture::dead(pcap::Linktype(12)).unwrap();
    let mut save = cap.savefile(path).unwrap();
    let (c, s) = (([192, 0, 2, 10], 40_000u16), ([198, 51, 100, 25], 25u16));
    let (mut cs, mut ss, mut t) = (100u32, 900u32, t0);
    let mut put = |from_client: bool, seq: u32, ack: Option<u32>, syn: bool, opts: &[u8], data: &[u8]| {
        let (src, dst) = if from_client { (c, s) } else { (s, c) };
        let mut b = etherparse::PacketBuilder::ipv4(src.0, dst.0, 64).tcp(src.1, dst.1, seq, 64240);
        if syn {
            b = b.syn();
        }
        if let Some(a) = ack {
            b = b.ack(a);
        }
        let b = if opts.is_empty() { b } else { b.options_raw(opts).unwrap() };
        let mut v = Vec::new();
        b.write(&mut v, data).unwrap();
        t += 100;
        let h = pcap::PacketHeader {
            ts: libc::timeval { tv_sec: t / 1_000_000, tv_usec: t % 1_000_000 },
            caplen: v.len() as u32,
            len: v.len() as u32,
        };
        save.write(&pcap::Packet::new(&h, &v));
    };
    put(true, cs, None, true, syn_options, b"");
    put(false, ss, Some(cs + 1), true, &[2, 4, 5, 0xb4], b"");
    cs += 1;
    ss += 1;
    let mut talk = |from_client: bool, data: &[u8], cs: &mut u32, ss: &mut u32| {
        if from_client {
            put(true, *cs, Some(*ss), false, &[], data);
            *cs += data.len() as u32;
        } else {
            put(false, *ss, Some(*cs), false, &[], data);
            *ss += data.len() as u32;
        }
    };
    talk(false, b"220 mx.example ESMTP\r\n", &mut cs, &mut ss);
    talk(true, b"EHLO wan.example\r\n", &mut cs, &mut ss);
    talk(false, b"250-mx.example\r\n250 STARTTLS\r\n", &mut cs, &mut ss);
    talk(true, b"QUIT\r\n", &mut cs, &mut ss);
    talk(false, b"221 Bye\r\n", &mut cs, &mut ss);
    save.flush().unwrap();
}

#[test]
fn synthetic_wan_optimizer_option_on_one_side() {
    let dir = common::scratch("diff-wan");
    let (a, b) = (dir.path().join("wan-a.pcap"), dir.path().join("wan-b.pcap"));
    crafted_session(&a, &[2, 4, 5, 0xb4], 1_700_000_000_000_000);
    // Riverbed's option 76 between the optimizers: on the WAN side only
    crafted_session(&b, &[2, 4, 5, 0xb4, 76, 6, 0, 0, 0, 1, 1, 1], 1_700_000_000_000_400);
    let (lines, _) = diff_lines(&a, &b);
    assert_eq!(lines.len(), 1);
    let l = &lines[0];
    assert_eq!(kinds(l), ["tcp-options"]);
    let o = change(l, "tcp-options");
    assert_eq!((o["a"].as_str(), o["b"].as_str()), (Some("mss 1460"), Some("mss 1460, option 76")));
    assert_eq!(l["middlebox"], "wan-optimizer");
    assert_eq!(middleboxes(l), ["wan-optimizer"]);
}

/// A scenario's assertions over its two points.
type Check = fn(&Path, &Path);

// --- the lab, run afresh (root; real Postfix, swaks, smtplib, nftables, NFQUEUE) ---------------

#[test]
fn fresh_lab_captures_give_the_same_changes_and_judgements() {
    if !common::root_and("SMTPSCOPE_DIFF_LAB", "the two-point lab (tests/lab/diff_lab.py)") {
        return;
    }
    let dir = common::scratch("diff-lab");
    // NetfilterQueue is installed for the system's Python (pip), which runs the rewriter
    let python = std::env::var("SMTPSCOPE_LAB_PYTHON").unwrap_or_else(|_| "/usr/bin/python3".into());
    let lab = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/lab/diff_lab.py");
    let out =
        std::process::Command::new(python).arg(lab).arg("captures").arg(dir.path()).output().expect("run the lab");
    assert!(out.status.success(), "diff_lab.py failed:\n{}", String::from_utf8_lossy(&out.stderr));
    let pair = |n: &str| (dir.path().join(format!("{n}-a.pcap")), dir.path().join(format!("{n}-b.pcap")));
    let checks: [(&str, Check); 5] = [
        ("transparent", check_transparent),
        ("asa", check_asa),
        ("nat", check_nat),
        ("proxy", check_proxy),
        ("tls-relay", check_tls_relay),
    ];
    for (name, check) in checks {
        let (a, b) = pair(name);
        check(&a, &b);
    }
}

#[test]
fn a_side_is_a_file_a_directory_or_a_glob() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("captures/diff");
    let files = diff::expand_input(&dir).unwrap();
    assert_eq!(files.len(), 10, "{files:?}");
    let glob = dir.join("asa-*.pcap");
    let files = diff::expand_input(&glob).unwrap();
    assert_eq!(files, [dir.join("asa-a.pcap"), dir.join("asa-b.pcap")]);
    let none = dir.join("nothing-*.pcap");
    let err = diff::expand_input(&none).unwrap_err().to_string();
    assert!(err.contains("nothing-*.pcap") && err.contains("no capture file"), "{err}");
    let empty_dir = common::scratch("diff-empty-dir");
    assert!(diff::expand_input(empty_dir.path()).is_err());
}

// --- the command line ----------------------------------------------------------------------------

fn smtpscope(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_smtpscope")).args(args).output().expect("run smtpscope")
}

fn lab_str(name: &str) -> (String, String) {
    let (a, b) = lab(name);
    (a.to_string_lossy().into_owned(), b.to_string_lossy().into_owned())
}

#[test]
fn cli_records_are_byte_for_byte_those_of_f_json() {
    let (a, b) = lab_str("asa");
    let out = smtpscope(&["diff", &a, &b, "-F", "json"]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    for (file, key) in [(&a, "{\"a\":"), (&b, ",\"b\":")] {
        let own = smtpscope(&["-r", file, "-F", "json"]);
        for record in String::from_utf8(own.stdout).unwrap().lines() {
            assert!(text.contains(&format!("{key}{record}")), "{record} not in the diff as written");
        }
    }
    assert!(text.lines().last().unwrap().starts_with("{\"type\":\"summary\",\"clock_offset_s\":"));
}

#[test]
fn cli_exit_status() {
    let (a, b) = lab_str("asa");
    assert_eq!(smtpscope(&["diff", &a, &b]).status.code(), Some(0), "changes found, no --exit-code");
    assert_eq!(smtpscope(&["diff", &a, &b, "--exit-code"]).status.code(), Some(1));
    let (ta, tb) = lab_str("transparent");
    assert_eq!(smtpscope(&["diff", &ta, &tb, "--exit-code"]).status.code(), Some(0), "nothing changed");
    let csv = smtpscope(&["diff", &a, &b, "-F", "csv"]);
    assert_eq!(csv.status.code(), Some(2), "csv is a usage error");
    let (_dir, empty) = common::scratch_file("empty-side.pcap");
    empty_pcap(&empty);
    let out = smtpscope(&["diff", &a, empty.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("empty-side.pcap") && err.lines().count() == 1, "{err}");
    let missing = smtpscope(&["diff", &a]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("point B is missing"));
}

#[test]
fn cli_sides_from_flags_take_the_expression_as_positional() {
    let (a, b) = lab_str("asa");
    let out = smtpscope(&["diff", "-a", &a, "-b", &b, "-F", "json", "port 25"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let lines = common::ndjson(&out.stdout);
    assert_eq!(lines.last().unwrap()["matched"], 2);
    // an expression that passes nothing leaves a point without packets: named, exit 2
    let out = smtpscope(&["diff", "-a", &a, "-b", &b, "port 2525"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no packets"));
}

#[test]
fn cli_unrelated_captures_say_so_plainly() {
    let (a, b) = (bundled("plaintext.pcap"), bundled("offered-unused.pcap"));
    let out = smtpscope(&["diff", a.to_str().unwrap(), b.to_str().unwrap()]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("0 matched, 1 only at a, 1 only at b"), "{text}");
    assert!(text.contains("these captures do not look like two points of one path"), "{text}");
}

#[test]
fn a_capture_against_itself_is_transparent_for_every_bundled_capture() {
    // no change invented: every session pairs with itself, offset 0, nothing changed
    let mut checked = 0;
    for entry in std::fs::read_dir(bundled("")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|x| x != "pcap") {
            continue;
        }
        let d =
            diff::run(std::slice::from_ref(&path), std::slice::from_ref(&path), None, &Settings::default()).unwrap();
        assert_eq!((d.only_a(), d.only_b()), (0, 0), "{}: unpaired sessions", path.display());
        for e in &d.entries {
            let c = e.comparison.as_ref().unwrap();
            assert_eq!(c.changes, [], "{}: {:?}", path.display(), c.changes);
            assert_eq!(c.middleboxes, ["transparent"], "{}", path.display());
            assert_eq!(e.a, e.b, "{}: paired with another session", path.display());
        }
        checked += d.matched();
    }
    assert!(checked > 40, "only {checked} sessions checked");
}

/// One SYN (retransmitted once), never answered.
fn crafted_syn_only(path: &Path, t0: i64) {
    let cap = pcap::Capture::dead(pcap::Linktype(12)).unwrap();
    let mut save = cap.savefile(path).unwrap();
    for k in 0..2 {
        let b =
            etherparse::PacketBuilder::ipv4([192, 0, 2, 10], [198, 51, 100, 25], 64).tcp(40_000, 25, 100, 64240).syn();
        let mut v = Vec::new();
        b.write(&mut v, b"").unwrap();
        let t = t0 + k * 1_000_000;
        let h = pcap::PacketHeader {
            ts: libc::timeval { tv_sec: t / 1_000_000, tv_usec: t % 1_000_000 },
            caplen: v.len() as u32,
            len: v.len() as u32,
        };
        save.write(&pcap::Packet::new(&h, &v));
    }
    save.flush().unwrap();
}

#[test]
fn synthetic_a_syn_unanswered_at_the_other_point_is_blocked() {
    // the client's side saw a whole session; the server's side only its SYN, never answered
    let dir = common::scratch("diff-blocked");
    let (a, b) = (dir.path().join("blocked-a.pcap"), dir.path().join("blocked-b.pcap"));
    crafted_session(&a, &[2, 4, 5, 0xb4], 1_700_000_000_000_000);
    crafted_syn_only(&b, 1_700_000_000_000_300);
    let d = diff::run(&[a], &[b], None, &Settings::default()).unwrap();
    assert_eq!((d.matched(), d.only_a(), d.only_b()), (0, 1, 0));
    assert_eq!(d.entries[0].reason, Some(diff::Reason::Blocked));
}
