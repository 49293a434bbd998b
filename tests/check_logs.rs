//! `check` with server logs: the policy judged from logs alone, and a log settling what the wire
//! leaves unproven — on the log lab's paired evidence (real Postfix 3.7 logs and the
//! Exchange-style SmtpReceive log, written while tcpdump captured the same sessions:
//! captures/logs/, made by tests/lab/log_lab.py).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;
use smtpscope::check::judge::{judge, JudgeOptions};
use smtpscope::check::Expect;
use smtpscope::logs::matching::CrossCheck;
use smtpscope::logs::{read_path, LogOptions, LogRecord};

fn pairs(name: &str) -> String {
    common::bundled().join("logs").join(name).to_string_lossy().into_owned()
}

fn smtpscope(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_smtpscope")).args(args).output().expect("smtpscope ran")
}

fn policy(dir: &Path, text: &str) -> String {
    let p = dir.join("policy.toml");
    std::fs::write(&p, text).unwrap();
    p.to_string_lossy().into_owned()
}

/// The lab's clients and servers (tests/lab/log_lab.py: clients on .1, servers from .2).
const GROUPS: &str =
    "[groups]\nLAB = [\"10.232.0.0/24\"]\nSERVERS = [\"10.232.0.2/31\", \"10.232.0.4/30\", \"10.232.0.9\"]\n";

fn lines(out: &Output, kind: &str) -> Vec<Value> {
    common::ndjson(&out.stdout).into_iter().filter(|v| v["type"] == kind).collect()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn log_records(name: &str) -> Vec<LogRecord> {
    let opts = LogOptions { tz: jiff::tz::TimeZone::UTC, ..LogOptions::default() };
    let mut v = Vec::new();
    // Classic syslog stamps take their year from the capture, as a run with -r does.
    let opts = LogOptions { reference: Some(1_796_613_195_000_000), ..opts };
    read_path(&pairs(name), &opts, &mut |r| v.push(r)).unwrap();
    v
}

#[test]
fn every_log_session_the_wire_matched_is_judged_as_its_wire_session_under_every_expectation() {
    let mut logs = log_records("postfix-srv.maillog");
    logs.extend(log_records("postfix-cli.maillog"));
    logs.extend(log_records("exchange-RECV.LOG"));
    let mut x = CrossCheck::new(logs, 1_000_000);
    let expectations = [
        Expect::Any,
        Expect::Tls { min_version: None, cert_valid: false, cert_name: false },
        Expect::Tls { min_version: Some(0x0303), cert_valid: false, cert_name: false },
        Expect::Tls { min_version: Some(0x0304), cert_valid: false, cert_name: false },
        Expect::Plaintext { forbid_offer: Vec::new() },
    ];
    let mut compared = 0;
    for mut s in common::sessions(Path::new(&pairs("postfix-pairs.pcap"))) {
        let matched: Vec<LogRecord> = x.link_matched(&mut s).into_iter().cloned().collect();
        assert!(!matched.is_empty(), "every lab session has its log session: {:?}", s.client);
        for r in &matched {
            for e in &expectations {
                let (w, l) = (judge(&s, e, JudgeOptions::default()), judge(r, e, JudgeOptions::default()));
                assert_eq!(w.name(), l.name(), "{e:?}: wire {w:?} vs {} {} {l:?}", r.source.name(), r.log_session);
                compared += 1;
            }
        }
    }
    assert!(compared >= 16 * expectations.len(), "{compared}");
}

#[test]
fn a_log_that_does_not_show_the_ehlo_reply_leaves_forbid_offer_unproven_never_passed() {
    // Postfix smtpd logs neither its EHLO reply nor its offer; Exchange logs both.
    let e = Expect::Plaintext { forbid_offer: vec!["STARTTLS".into()] };
    for r in log_records("postfix-srv.maillog").iter().filter(|r| r.verdict.name() == "plaintext") {
        let o = judge(r, &e, JudgeOptions::default());
        assert_eq!(o.name(), "unproven", "{}: {o:?}", r.log_session);
        assert!(o.why().contains("EHLO reply"), "{o:?}");
    }
    let offered = log_records("exchange-RECV.LOG").into_iter().find(|r| r.verdict.name() == "starttls-offered-unused");
    let o = judge(&offered.expect("the suppressed session"), &e, JudgeOptions::default());
    assert_eq!(o, smtpscope::check::Outcome::Violation("server offered STARTTLS".into()));
}

#[test]
fn logs_alone_a_session_without_a_server_address_is_judged_only_by_a_rule_whose_server_side_is_any() {
    let dir = common::scratch("checklogs");
    let p = policy(
        dir.path(),
        &format!(
            "{GROUPS}[[rule]]\nname = \"lab to servers\"\nbetween = [\"LAB\", \"SERVERS\"]\nexpect = \"tls\"\n\
             [[rule]]\nname = \"lab to anyone\"\nfrom = \"LAB\"\nto = \"*\"\nexpect = \"tls\"\n"
        ),
    );
    let srv = pairs("postfix-srv.maillog");
    let out = smtpscope(&["check", "--logs", &srv, "--log-tz", "UTC", "--policy", &p, "-F", "json", "-q"]);
    assert_eq!(out.status.code(), Some(3), "a named rule that matched nothing proves nothing: {}", stderr(&out));
    let rules = lines(&out, "rule");
    assert_eq!(rules[0]["matched"], 0);
    assert_eq!(rules[0]["not_logged"]["server not logged"], 13, "{:?}", rules[0]);
    assert_eq!(rules[0]["nothing_proven"], true);
    // First match wins: the second rule never sees what the first may own.
    assert_eq!(rules[1]["matched"], 0);
    let summary = lines(&out, "summary").pop().unwrap();
    assert_eq!(summary["unmatched"], 13);
    assert_eq!(summary["not_logged"]["server not logged"], 13);
    assert_eq!(summary["log_sessions"], 13);

    // Text names the reason and the way out.
    let out = smtpscope(&["check", "--logs", &srv, "--log-tz", "UTC", "--policy", &p, "-q"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("13 log session(s) unmatched: server not logged"), "{text}");
    assert!(text.contains("--log-server NAME=ADDR[:PORT]"), "{text}");

    // Mapped to its listener, Postfix's sessions are judged by the first rule.
    let out = smtpscope(&[
        "check",
        "--logs",
        &srv,
        "--log-tz",
        "UTC",
        "--log-server",
        "postfix/smtpd=10.232.0.2",
        "--policy",
        &p,
        "-F",
        "json",
        "-q",
    ]);
    let rules = lines(&out, "rule");
    assert_eq!(rules[0]["matched"], 13, "{:?}", rules[0]);
    assert_eq!(rules[0]["not_logged"], serde_json::json!({}));
    drop(dir);
}

#[test]
fn logs_alone_a_rule_limited_to_ports_cannot_judge_a_listener_mapped_without_its_port() {
    let dir = common::scratch("checklogs");
    let p = policy(dir.path(), "[default]\nexpect = \"any\"\nports = [25]\n");
    let srv = pairs("postfix-srv.maillog");
    let out = smtpscope(&[
        "check",
        "--logs",
        &srv,
        "--log-tz",
        "UTC",
        "--log-server",
        "postfix/smtpd=10.232.0.2",
        "--policy",
        &p,
        "-F",
        "json",
        "-q",
    ]);
    let summary = lines(&out, "summary").pop().unwrap();
    assert_eq!(summary["not_logged"]["server port not logged"], 13, "{summary}");
    let out = smtpscope(&[
        "check",
        "--logs",
        &srv,
        "--log-tz",
        "UTC",
        "--log-server",
        "postfix/smtpd=10.232.0.2:25",
        "--policy",
        &p,
        "-F",
        "json",
        "-q",
    ]);
    assert_eq!(lines(&out, "rule")[0]["matched"], 13);
    assert_eq!(out.status.code(), Some(0));
    drop(dir);
}

#[test]
fn logs_alone_every_session_is_judged_like_a_wire_session_and_says_the_log_proved_it() {
    let dir = common::scratch("checklogs");
    let p = policy(
        dir.path(),
        &format!("{GROUPS}[[rule]]\nname = \"lab\"\nfrom = \"LAB\"\nto = \"*\"\nexpect = \"tls\"\n"),
    );
    let srv = pairs("postfix-srv.maillog");
    let out = smtpscope(&["check", "--logs", &srv, "--log-tz", "UTC", "--policy", &p, "-F", "json", "-q"]);
    assert_eq!(out.status.code(), Some(1), "plaintext sessions violate a tls rule: {}", stderr(&out));
    let rule = lines(&out, "rule").pop().unwrap();
    // 4 STARTTLS + 1 wrapper-mode pass; 5 plaintext and the refused one (mail in clear) violate;
    // the 2 failed handshakes sent no mail in clear: unproven, as on the wire.
    assert_eq!(
        (&rule["matched"], &rule["passed"], &rule["violated"], &rule["unproven"]),
        (&Value::from(13), &Value::from(5), &Value::from(6), &Value::from(2)),
        "{rule}"
    );
    assert_eq!(rule["proven_by_log"], 11);
    let sessions = lines(&out, "session");
    assert_eq!(sessions.len(), 8);
    for s in &sessions {
        assert!(s["server"].is_null(), "Postfix never logs its own address: {s}");
        assert_eq!(s["client"], "10.232.0.1");
        assert_eq!(s["file"], srv.as_str());
        assert!(s["log"]["log_session"].as_str().unwrap().contains("/postfix/smtpd["), "{s}");
        assert!(s["evidence"].as_str().unwrap().contains("(line "), "the log line, as frames are for the wire: {s}");
        let want = if s["outcome"] == "unproven" { Value::Null } else { Value::from("log") };
        assert_eq!(s["proven_by"], want, "{s}");
    }
    // The display filter narrows the logs as it narrows the wire; what it drops is counted.
    let out = smtpscope(&[
        "check",
        "--logs",
        &srv,
        "--log-tz",
        "UTC",
        "--policy",
        &p,
        "-F",
        "json",
        "-q",
        "-Y",
        "verdict:starttls",
    ]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(lines(&out, "rule")[0]["matched"], 4);
    assert_eq!(lines(&out, "summary")[0]["left_out"]["display_filter"], 9);
    // The same run as text and JUnit.
    let out = smtpscope(&["check", "--logs", &srv, "--log-tz", "UTC", "--policy", &p, "-q"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("VIOLATION 10.232.0.1 → (server not logged)  plaintext"), "{text}");
    assert!(text.contains("(proven by the log: postfix-smtpd mx/postfix/smtpd["), "{text}");
    assert!(text.ends_with("result: FAIL (violations)\n"), "{text}");
    let out = smtpscope(&["check", "--logs", &srv, "--log-tz", "UTC", "--policy", &p, "-F", "junit", "-q"]);
    let xml = String::from_utf8_lossy(&out.stdout);
    assert_eq!(xml.matches("<property name=\"proven_by\" value=\"log\"/>").count(), 6, "{xml}");
    drop(dir);
}

#[test]
fn logs_alone_the_summary_is_the_logs_subcommands_and_bad_input_is_exit_2() {
    let dir = common::scratch("checklogs");
    let p = policy(dir.path(), "[default]\nexpect = \"any\"\n");
    let summary = dir.path().join("summary.json");
    let out = smtpscope(&[
        "check",
        "--logs",
        &pairs("exchange-RECV.LOG"),
        "--policy",
        &p,
        "--summary",
        summary.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).ends_with("result: PASS\n"));
    let s: Value = serde_json::from_str(&std::fs::read_to_string(&summary).unwrap()).unwrap();
    assert_eq!((&s["sessions"], &s["files"][0]["format"]), (&Value::from(3), &Value::from("exchange")), "{s}");
    assert!(s["line_problems"].is_object());

    let junk = dir.path().join("junk.log");
    std::fs::write(&junk, b"\x00\x01binary\nnot a log line\n").unwrap();
    let out = smtpscope(&["check", "--logs", junk.to_str().unwrap(), "--policy", &p]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("no input held a recognisable"), "{}", stderr(&out));
    let out = smtpscope(&["check", "--logs", &pairs("exchange-RECV.LOG"), "--policy", &p, "--unmatched-logs", "x"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("it needs a capture (-r, -R or -i)"), "{}", stderr(&out));
    drop(dir);
}

/// The paired capture as a sensor with a short snapshot length would have kept it: every frame
/// cut to `snaplen` bytes (legacy pcap: 24-byte file header, 16-byte record headers).
fn snaplen_cut(snaplen: u32, dir: &Path) -> PathBuf {
    let data = std::fs::read(pairs("postfix-pairs.pcap")).unwrap();
    assert_eq!(data.get(..4), Some(&[0xd4, 0xc3, 0xb2, 0xa1][..]), "little-endian microsecond pcap");
    let mut out = data[..24].to_vec();
    out[16..20].copy_from_slice(&snaplen.to_le_bytes());
    let mut at = 24;
    while at + 16 <= data.len() {
        let incl = u32::from_le_bytes(data[at + 8..at + 12].try_into().unwrap());
        let keep = incl.min(snaplen);
        out.extend_from_slice(&data[at..at + 8]);
        out.extend_from_slice(&keep.to_le_bytes());
        out.extend_from_slice(&data[at + 12..at + 16]);
        out.extend_from_slice(&data[at + 16..at + 16 + keep as usize]);
        at += 16 + incl as usize;
    }
    let p = dir.join(format!("pairs-snap{snaplen}.pcap"));
    std::fs::write(&p, out).unwrap();
    p
}

fn check_cut(dir: &Path, cut: &Path, min: &str, extra: &[&str]) -> Output {
    let p = policy(
        dir,
        &format!("{GROUPS}[[rule]]\nname = \"lab\"\nbetween = [\"LAB\", \"LAB\"]\nexpect = \"tls\"\nmin_version = \"{min}\"\n"),
    );
    let (srv, cli, exch) = (pairs("postfix-srv.maillog"), pairs("postfix-cli.maillog"), pairs("exchange-RECV.LOG"));
    let mut args = vec!["check", "-r", cut.to_str().unwrap(), "--policy", &p, "-q"];
    args.extend(extra.iter().copied().filter(|a| *a != "--no-logs"));
    if !extra.contains(&"--no-logs") {
        let logs = ["--logs", &srv, "--logs", &cli, "--logs", &exch, "--log-tz", "UTC", "--log-skew", "1s"];
        args.extend(logs);
    }
    smtpscope(&args)
}

#[test]
fn with_the_wire_a_tls_version_the_snaplen_cut_is_decided_by_the_log_and_marked_proven_by_log() {
    let dir = common::scratch("checklogs");
    let cut = snaplen_cut(120, dir.path());
    // The wire alone: the seven handshakes' versions were cut off.
    let out = check_cut(dir.path(), &cut, "TLS1.2", &["-F", "json", "--no-logs"]);
    let rule = lines(&out, "rule").pop().unwrap();
    assert_eq!(rule["unproven"], 9, "{rule}");
    let wire_unproven: Vec<Value> = lines(&out, "session").into_iter().filter(|s| s["outcome"] == "unproven").collect();
    assert!(wire_unproven.iter().all(|s| s["proven_by"].is_null()));

    // With the logs: each of the seven is settled by the log's success line.
    let out = check_cut(dir.path(), &cut, "TLS1.2", &["-F", "json"]);
    let rule = lines(&out, "rule").pop().unwrap();
    assert_eq!(rule["unproven"], 2, "only the two failed handshakes stay unproven: {rule}");
    assert_eq!(rule["proven_by_log"], 7, "{rule}");
    let by_log: Vec<Value> = lines(&out, "session").into_iter().filter(|s| s["proven_by"] == "log").collect();
    assert_eq!(by_log.len(), 7);
    for s in &by_log {
        assert_eq!(s["outcome"], "pass", "{s}");
        assert_eq!(s["log"]["wire_unproven"], "TLS version not captured", "{s}");
        assert!(["postfix-smtpd", "exchange-receive"].contains(&s["log"]["source"].as_str().unwrap()), "{s}");
    }
    // Violations the wire proves say so.
    let wire: Vec<Value> = lines(&out, "session").into_iter().filter(|s| s["outcome"] == "violation").collect();
    assert_eq!(wire.len(), 7);
    assert!(wire.iter().all(|s| s["proven_by"] == "wire"), "{wire:?}");
    let summary = lines(&out, "summary").pop().unwrap();
    assert!(summary["log_sessions"].as_u64().unwrap() >= 16, "{summary}");
    drop(dir);
}

#[test]
fn with_the_wire_a_log_showing_a_version_below_the_minimum_is_a_violation_proven_by_the_log() {
    let dir = common::scratch("checklogs");
    let cut = snaplen_cut(120, dir.path());
    let out = check_cut(dir.path(), &cut, "TLS1.3", &["-F", "json"]);
    assert_eq!(out.status.code(), Some(1));
    let by_log: Vec<Value> = lines(&out, "session").into_iter().filter(|s| s["proven_by"] == "log").collect();
    let mut outcomes: Vec<(String, String)> = by_log
        .iter()
        .map(|s| (s["outcome"].as_str().unwrap().to_string(), s["server"].as_str().unwrap().to_string()))
        .collect();
    outcomes.sort();
    // TLS 1.2 on the TLS-1.2-only Postfix (.6), the expired one (.5) and both Exchange sessions
    // (.7); TLS 1.3 on the main Postfix (.2: STARTTLS twice and port 465).
    let want = [
        ("pass", "10.232.0.2:25"),
        ("pass", "10.232.0.2:25"),
        ("pass", "10.232.0.2:465"),
        ("violation", "10.232.0.5:25"),
        ("violation", "10.232.0.6:25"),
        ("violation", "10.232.0.7:25"),
        ("violation", "10.232.0.7:25"),
    ];
    assert_eq!(outcomes, want.map(|(a, b)| (a.to_string(), b.to_string())));
    let v = by_log.iter().find(|s| s["outcome"] == "violation").unwrap();
    assert_eq!(v["reason"], "negotiated TLS1.2 below the required TLS1.3", "{v}");

    let out = check_cut(dir.path(), &cut, "TLS1.3", &[]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("negotiated TLS1.2 below the required TLS1.3") && text.contains("(proven by the log: "),
        "{text}"
    );
    assert!(text.contains("the wire alone: TLS version not captured"), "{text}");
    let out = check_cut(dir.path(), &cut, "TLS1.3", &["-F", "junit"]);
    let xml = String::from_utf8_lossy(&out.stdout);
    assert_eq!(xml.matches("<property name=\"proven_by\" value=\"log\"/>").count(), 7, "{xml}");
    drop(dir);
}

#[test]
fn summary_json_of_runs_with_logs_carries_the_cross_check_counts() {
    let dir = common::scratch("checklogs");
    let summary = dir.path().join("s.json");
    let read = |p: &Path| -> Value { serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap() };
    // The stripped pair: both sessions carry the hint; the insisting client's also disagrees.
    let out = smtpscope(&[
        "-r",
        &pairs("stripped.pcap"),
        "--logs",
        &pairs("stripped-srv.maillog"),
        "--log-tz",
        "UTC",
        "--log-skew",
        "10s",
        "-F",
        "json",
        "--summary",
        summary.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let s = read(&summary);
    let logs = &s["logs"];
    assert_eq!(logs["matched_wire"], 2, "{s}");
    assert_eq!(logs["matched_log_sessions"], 2);
    assert_eq!(logs["disagreements"], 1);
    assert_eq!(logs["disagreements_by_hint"], serde_json::json!({"stripped-before-server": 1}));
    assert_eq!(logs["hints"], serde_json::json!({"stripped-before-server": 2}));
    assert_eq!(logs["files"][0]["format"], "postfix");
    assert!(logs["line_problems"].is_object());
    assert!(s["packets"].as_u64().unwrap() > 0, "the wire summary is all there too");

    // The lab pairs through check: every wire session matched; the loopback submissions to the
    // sending Postfix never crossed the wire, and they are inside the capture's span.
    let p = policy(dir.path(), "[default]\nexpect = \"any\"\n");
    let out = smtpscope(&[
        "check",
        "-r",
        &pairs("postfix-pairs.pcap"),
        "--logs",
        &pairs("postfix-srv.maillog"),
        "--logs",
        &pairs("postfix-cli.maillog"),
        "--logs",
        &pairs("exchange-RECV.LOG"),
        "--log-tz",
        "UTC",
        "--log-skew",
        "1s",
        "--policy",
        &p,
        "--summary",
        summary.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let logs = read(&summary)["logs"].clone();
    assert_eq!(logs["matched_wire"], 16, "{logs}");
    assert_eq!(logs["disagreements"], 0);
    assert_eq!(logs["sessions"], 26);
    assert_eq!(logs["unmatched_in_span"], 4, "{logs}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("4 log session(s) in the capture's span matched no wire session"), "{text}");

    // Without --logs the key is absent.
    let out = smtpscope(&["-r", &pairs("stripped.pcap"), "-F", "json", "--summary", summary.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0));
    assert!(read(&summary).get("logs").is_none());
    drop(dir);
}

#[test]
fn with_the_wire_a_log_that_violates_makes_the_session_a_violation_even_when_the_wire_passes() {
    // The lab's first session (swaks to the plaintext Postfix, .3), as its log would read had a
    // box between the capture point and the server added TLS: the TLS line and the summary are
    // the shapes of the same file's TLS 1.3 session (lines 39 and 41).
    let real = std::fs::read_to_string(pairs("postfix-srv.maillog")).unwrap();
    let mut edited = String::new();
    for (n, line) in real.lines().enumerate() {
        match n + 1 {
            19 => {
                edited.push_str(line);
                edited.push('\n');
                edited.push_str("Dec 07 03:13:15 mx postfix/smtpd[5481]: Anonymous TLS connection established from unknown[10.232.0.1]: TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits) key-exchange X25519 server-signature RSA-PSS (2048 bits) server-digest SHA256\n");
                continue;
            }
            25 => edited.push_str(
                &line.replace("ehlo=1 mail=1", "ehlo=2 starttls=1 mail=1").replace("commands=5", "commands=7"),
            ),
            _ => edited.push_str(line),
        }
        edited.push('\n');
    }
    let dir = common::scratch("checklogs");
    let log = dir.path().join("terminated.maillog");
    std::fs::write(&log, edited).unwrap();
    let p = policy(dir.path(), "[groups]\nPLAIN = [\"10.232.0.3\"]\nLAB = [\"10.232.0.1\"]\n[[rule]]\nname = \"to the plaintext MX\"\nfrom = \"LAB\"\nto = \"PLAIN\"\nexpect = \"plaintext\"\n");
    let cap = pairs("postfix-pairs.pcap");
    let run = |logs: bool| {
        let mut args = vec!["check", "-r", cap.as_str(), "--policy", &p, "-F", "json", "-q"];
        if logs {
            args.extend(["--logs", log.to_str().unwrap(), "--log-tz", "UTC", "--log-skew", "1s"]);
        }
        smtpscope(&args)
    };
    // The wire alone: both sessions to .3 are in clear, as the rule expects.
    let out = run(false);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stdout));
    // The log of the first says TLS: a violation, proven by the log.
    let out = run(true);
    assert_eq!(out.status.code(), Some(1));
    let s = lines(&out, "session");
    let [v] = s.as_slice() else { panic!("{s:?}") };
    assert_eq!(
        (&v["outcome"], &v["proven_by"], &v["verdict"]),
        (&Value::from("violation"), &Value::from("log"), &Value::from("plaintext"))
    );
    assert_eq!(v["reason"], "TLS used (TLS1.3) (the log disagrees with the wire, which shows pass)", "{v}");
    assert_eq!(v["log"]["log_session"], "mx/postfix/smtpd[5481]@19");
    assert!(v["log"]["wire_unproven"].is_null());
    drop(dir);
}

#[test]
fn the_real_exchange_sample_proves_version_and_certificate_validity_but_not_the_certificate_name() {
    // An Exchange 2013+ SmtpReceive log (the shared sample): STARTTLS, the TLS 1.2 success line,
    // the one-line certificate with NotBefore/NotAfter (2020-01-17 .. 2025-01-17), session in 2023.
    let sample = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/logs/exchange/recv-2013plus-starttls-tls12-oneline-cert.log")
        .to_string_lossy()
        .into_owned();
    let dir = common::scratch("checklogs");
    let judged = |keys: &str| {
        let p = policy(
            dir.path(),
            &format!("[groups]\nMX = [\"10.10.10.10\"]\n[[rule]]\nname = \"to the MX\"\nfrom = \"*\"\nto = \"MX\"\nexpect = \"tls\"\n{keys}"),
        );
        let out = smtpscope(&["check", "--logs", &sample, "--policy", &p, "-F", "json", "-q"]);
        (out.status.code(), lines(&out, "rule").pop().unwrap(), lines(&out, "session"))
    };
    let (code, rule, _) = judged("min_version = \"TLS1.2\"\ncert_valid = true\n");
    assert_eq!((code, &rule["passed"], &rule["proven_by_log"]), (Some(0), &Value::from(1), &Value::from(1)), "{rule}");
    let (code, _, s) = judged("min_version = \"TLS1.3\"\n");
    assert_eq!(code, Some(1));
    assert_eq!(s[0]["reason"], "negotiated TLS1.2 below the required TLS1.3");
    assert_eq!((&s[0]["client"], &s[0]["server"]), (&Value::from("95.10.20.33:56026"), &Value::from("10.10.10.10:25")));
    let (code, _, s) = judged("cert_name = true\n");
    assert_eq!(code, Some(3));
    assert_eq!(s[0]["reason"], "the log does not show which name the client asked for: certificate name not checked");
    assert!(s[0]["proven_by"].is_null());
    drop(dir);
}

#[test]
fn records_read_back_with_logs_give_the_same_summary_counts_as_the_capture() {
    let dir = common::scratch("checklogs");
    let recs = dir.path().join("pairs.json");
    let out = smtpscope(&["-r", &pairs("postfix-pairs.pcap"), "-F", "json", "-q"]);
    std::fs::write(&recs, &out.stdout).unwrap();
    let summary = dir.path().join("s.json");
    let logs = |input: &[&str]| {
        let mut args = input.to_vec();
        let (srv, cli, exch) = (pairs("postfix-srv.maillog"), pairs("postfix-cli.maillog"), pairs("exchange-RECV.LOG"));
        args.extend(["--logs", &srv, "--logs", &cli, "--logs", &exch, "--log-tz", "UTC", "--log-skew", "1s"]);
        args.extend(["-F", "json", "--summary", summary.to_str().unwrap()]);
        let out = smtpscope(&args);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        let s: Value = serde_json::from_str(&std::fs::read_to_string(&summary).unwrap()).unwrap();
        s["logs"].clone()
    };
    let from_capture = logs(&["-r", &pairs("postfix-pairs.pcap")]);
    let from_records = logs(&["-R", recs.to_str().unwrap()]);
    assert_eq!(from_capture["matched_wire"], 16, "{from_capture}");
    assert_eq!(from_records, from_capture);
    drop(dir);
}

/// Microseconds since the epoch, now.
fn now_micros() -> i64 {
    let d = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap();
    i64::try_from(d.as_micros()).unwrap()
}

/// A Postfix smtpd log line stamped `t` (RFC 3339, as rsyslog writes it).
fn smtpd_line(t: i64, pid: u32, msg: &str) -> String {
    format!("{} mx postfix/smtpd[{pid}]: {msg}\n", jiff::Timestamp::from_microsecond(t).unwrap())
}

fn append(path: impl AsRef<Path>, text: &str) {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new().append(true).open(path).unwrap();
    f.write_all(text.as_bytes()).unwrap();
}

/// A small SMTP server on loopback: it offers STARTTLS only to a client whose EHLO name starts
/// with `offer`, accepts every command and closes after QUIT.
fn loopback_server() -> u16 {
    use std::io::{BufRead, BufReader, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut w) = conn else { return };
            std::thread::spawn(move || {
                let r = BufReader::new(w.try_clone().unwrap());
                let _ = w.write_all(b"220 loop.example ESMTP\r\n");
                let mut data = false;
                for line in r.lines() {
                    let Ok(line) = line else { return };
                    let reply: &[u8] = match line.to_ascii_uppercase().as_str() {
                        "." if data => {
                            data = false;
                            b"250 2.0.0 queued\r\n"
                        }
                        _ if data => continue,
                        l if l.starts_with("EHLO OFFER") => b"250-loop.example\r\n250-STARTTLS\r\n250 8BITMIME\r\n",
                        l if l.starts_with("EHLO") => b"250-loop.example\r\n250 8BITMIME\r\n",
                        "DATA" => {
                            data = true;
                            b"354 go ahead\r\n"
                        }
                        "QUIT" => {
                            let _ = w.write_all(b"221 2.0.0 bye\r\n");
                            return;
                        }
                        _ => b"250 2.1.0 ok\r\n",
                    };
                    if w.write_all(reply).is_err() {
                        return;
                    }
                }
            });
        }
    });
    port
}

/// A client of [`loopback_server`]: greeting and EHLO, then (with `mail`) one message and QUIT,
/// read to the server's close. Returns the connection (still open without `mail`), its client
/// port and when it connected.
fn loopback_client(port: u16, helo: &str, mail: bool) -> (std::net::TcpStream, u16, i64) {
    use std::io::{BufRead, BufReader, Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    let at = now_micros();
    let mut r = BufReader::new(s.try_clone().unwrap());
    let mut reply = || loop {
        let mut l = String::new();
        assert!(r.read_line(&mut l).unwrap() > 0, "the server closed early");
        if l.as_bytes().get(3) != Some(&b'-') {
            break;
        }
    };
    reply();
    let mut say = |cmd: &str| {
        s.write_all(format!("{cmd}\r\n").as_bytes()).unwrap();
    };
    say(&format!("EHLO {helo}"));
    reply();
    if mail {
        for cmd in ["MAIL FROM:<alice@contoso.example>", "RCPT TO:<bob@fabrikam.example>", "DATA"] {
            say(cmd);
            reply();
        }
        say("Subject: live\r\n\r\nhello\r\n.");
        reply();
        say("QUIT");
        reply();
        let mut rest = Vec::new();
        let _ = r.read_to_end(&mut rest);
    }
    let client_port = s.local_addr().unwrap().port();
    (s, client_port, at)
}

#[test]
fn live_check_with_logs_judges_each_session_with_the_log_it_waited_for_and_loses_none_when_stopped() {
    use std::io::{BufRead, BufReader};
    use std::time::{Duration, Instant};
    if !common::root_and("SMTPSCOPE_LIVE_TEST", "the live capture test") {
        return;
    }
    use std::os::unix::fs::PermissionsExt;
    let dir = common::scratch("checklive");
    // The user smtpscope becomes (nobody) writes the records there.
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let at = |name: &str| dir.path().join(name).to_string_lossy().into_owned();
    let (log, records, summary, unmatched) = (at("mail.log"), at("records.ndjson"), at("s.json"), at("left.json"));
    std::fs::write(&log, "").unwrap();
    std::fs::set_permissions(&log, std::fs::Permissions::from_mode(0o644)).unwrap();
    let port = loopback_server();
    let filter = format!("tcp port {port}");
    let wait = Duration::from_secs(3);
    let mut child = common::spawn_piped(&[
        "check",
        "-i",
        "lo",
        "--expect",
        "plaintext",
        "--forbid-offer",
        "STARTTLS",
        "--between",
        "127.0.0.1",
        "127.0.0.1",
        "--logs",
        &log,
        "--log-tz",
        "UTC",
        "--log-skew",
        "2s",
        "--log-wait",
        "3s",
        "--unmatched-logs",
        &unmatched,
        "--output",
        &records,
        "--summary",
        &summary,
        "-F",
        "json",
        &filter,
    ]);
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let mut said = String::new();
    while !said.contains("listening on") {
        said.clear();
        assert!(err.read_line(&mut said).unwrap() > 0, "smtpscope ended before listening");
    }
    let err_rest = std::thread::spawn(move || {
        let mut rest = String::new();
        let _ = std::io::Read::read_to_string(&mut err, &mut rest);
        rest
    });
    let stdout = child.stdout.take().unwrap();
    let rx = common::timed_lines(stdout);
    let next = |what: &str| -> (Instant, Value) {
        let (t, l) = rx.recv_timeout(wait + Duration::from_secs(4)).unwrap_or_else(|_| panic!("no line for {what}"));
        (t, serde_json::from_str(&l).unwrap())
    };

    // A: in clear on the wire, as the rule wants; its server's log, written a second after the
    // session ended, shows TLS (a box in between added it): a violation, proven by the log.
    let (_, a_port, a_at) = loopback_client(port, "a.example", true);
    let a_end = Instant::now();
    std::thread::sleep(Duration::from_secs(1));
    let peer = format!("localhost[127.0.0.1]:{a_port}");
    append(
        &log,
        &[
            smtpd_line(a_at, 101, &format!("connect from {peer}")),
            smtpd_line(a_at + 1_000, 101, &format!("Anonymous TLS connection established from {peer}: TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits)")),
            smtpd_line(a_at + 2_000, 101, &format!("disconnect from {peer} ehlo=2 starttls=1 mail=1 rcpt=1 data=1 quit=1 commands=7")),
            // A log session no wire session matches, inside the capture's span.
            smtpd_line(a_at + 3_000, 102, "connect from other.example[192.0.2.77]"),
            smtpd_line(a_at + 4_000, 102, "disconnect from other.example[192.0.2.77] ehlo=1 quit=1 commands=2"),
        ]
        .concat(),
    );
    let a_logged = Instant::now();
    let (t, v) = next("A");
    assert_eq!(v["client"], format!("127.0.0.1:{a_port}"), "{v}");
    assert_eq!((&v["outcome"], &v["proven_by"]), (&Value::from("violation"), &Value::from("log")), "{v}");
    assert_eq!(v["reason"], "TLS used (TLS1.3) (the log disagrees with the wire, which shows pass)", "{v}");
    assert!(t >= a_logged && t - a_logged <= Duration::from_secs(2), "judged {:?} after its log", t - a_logged);
    assert!(t - a_end <= wait + Duration::from_secs(2));

    // B: the server offers STARTTLS, which the rule forbids: a violation on the wire alone, judged
    // once its wait for a log that never comes is over.
    let (_, b_port, _) = loopback_client(port, "offer.example", true);
    let b_end = Instant::now();
    let (t, v) = next("B");
    assert_eq!(v["client"], format!("127.0.0.1:{b_port}"), "{v}");
    assert_eq!((&v["outcome"], &v["proven_by"]), (&Value::from("violation"), &Value::from("wire")), "{v}");
    assert_eq!(v["reason"], "server offered STARTTLS", "{v}");
    let late = t - b_end;
    assert!(late >= wait - Duration::from_millis(500) && late <= wait + Duration::from_secs(2), "{late:?}");

    // C: still open when the check is stopped; its log has the connect line only. It is judged at
    // the stop, linked to what its log shows by then, and written before the final report.
    let (c_conn, c_port, c_at) = loopback_client(port, "c.example", false);
    append(&log, &smtpd_line(c_at, 103, &format!("connect from localhost[127.0.0.1]:{c_port}")));
    std::thread::sleep(Duration::from_millis(500));
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let stopped = Instant::now();
    let status = child.wait().unwrap();
    assert!(stopped.elapsed() <= wait + Duration::from_secs(2), "{:?}", stopped.elapsed());
    drop(c_conn);
    let stderr = err_rest.join().unwrap();
    assert_eq!(status.code(), Some(1), "{stderr}");
    let rest: Vec<Value> = rx.iter().map(|(_, l)| serde_json::from_str(&l).unwrap()).collect();
    let sessions: Vec<&Value> = rest.iter().filter(|v| v["type"] == "session").collect();
    let [c] = sessions.as_slice() else { panic!("C, and nothing listed twice: {rest:?}") };
    assert_eq!((&c["client"], &c["outcome"]), (&Value::from(format!("127.0.0.1:{c_port}")), &Value::from("unproven")));
    let rule = rest.iter().find(|v| v["type"] == "rule").unwrap();
    let counts = ["matched", "passed", "violated", "unproven", "proven_by_log"].map(|k| rule[k].as_u64().unwrap());
    assert_eq!(counts, [3, 0, 2, 1, 1], "{rule}");
    let last = rest.last().unwrap();
    assert_eq!((&last["type"], &last["result"]), (&Value::from("summary"), &Value::from("fail")), "{last}");
    assert_eq!((&last["log_sessions"], &last["logs_unmatched_in_span"]), (&Value::from(3), &Value::from(1)), "{last}");

    // Every record went to --output with its links: A's disagrees, B's none, C's its open session.
    let recs = common::ndjson(&std::fs::read(&records).unwrap());
    let by_port = |p: u16| recs.iter().find(|r| r["client"] == format!("127.0.0.1:{p}")).unwrap();
    assert_eq!(recs.len(), 3, "{recs:?}");
    let a = &by_port(a_port)["logs"][0];
    assert_eq!((&a["agree"], &a["hint"]), (&Value::from(false), &Value::from("tls-terminated-before-server")));
    assert_eq!(by_port(b_port)["logs"], serde_json::json!([]));
    assert_eq!(by_port(c_port)["logs"][0]["log_session"], format!("mx/postfix/smtpd[103]@6"));
    let s: Value = serde_json::from_str(&std::fs::read_to_string(&summary).unwrap()).unwrap();
    let l = &s["logs"];
    assert_eq!(
        (&l["sessions"], &l["matched_wire"], &l["matched_log_sessions"]),
        (&3.into(), &2.into(), &2.into()),
        "{l}"
    );
    assert_eq!((&l["unmatched_in_span"], &l["disagreements"]), (&1.into(), &1.into()), "{l}");
    assert_eq!(l["disagreements_by_hint"], serde_json::json!({"tls-terminated-before-server": 1}));
    assert_eq!((&l["follow"]["waited_out"], &l["files"][0]["name"]), (&1.into(), &Value::from(log.as_str())), "{l}");
    let left = common::ndjson(&std::fs::read(&unmatched).unwrap());
    assert_eq!(left.len(), 1);
    assert_eq!(left[0]["client"], "192.0.2.77");
    assert!(stderr.contains("2 wire session(s) matched, 1 disagree, 1 left without one"), "{stderr}");
    drop(dir);
}

#[test]
fn log_wait_is_a_usage_error_where_nothing_is_followed() {
    let dir = common::scratch("checklogs");
    let p = policy(dir.path(), "[default]\nexpect = \"any\"\n");
    let (cap, log) = (pairs("postfix-pairs.pcap"), pairs("postfix-srv.maillog"));
    for input in [&["-r", cap.as_str()][..], &[]] {
        let mut args = vec!["check", "--logs", &log, "--log-wait", "5s", "--policy", &p];
        args.extend(input);
        let out = smtpscope(&args);
        assert_eq!(out.status.code(), Some(2), "{input:?}: {}", stderr(&out));
        assert!(stderr(&out).contains("--log-wait is for a live capture (-i)"), "{}", stderr(&out));
    }
    drop(dir);
}
