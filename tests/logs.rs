//! Server logs: `smtpscope logs` on real samples and bad input, and `--logs` on the lab's paired
//! evidence (real Postfix 3.7 logs written while tcpdump captured the same sessions,
//! captures/logs/, made by tests/lab/log_lab.py).

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;

fn run(args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_smtpscope"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start smtpscope");
    let mut input = c.stdin.take().expect("stdin");
    if let Some(data) = stdin {
        input.write_all(data).expect("write stdin");
    }
    drop(input);
    c.wait_with_output().expect("smtpscope ran")
}

fn data(p: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(p).to_string_lossy().into_owned()
}

fn pairs_dir() -> PathBuf {
    common::bundled().join("logs")
}

const LOG_KEYS: [&str; 20] = [
    "source",
    "log_file",
    "log_session",
    "first_seen",
    "last_seen",
    "client",
    "server",
    "helo",
    "banner",
    "ehlo_extensions",
    "starttls_offered",
    "upgrade_verb",
    "tls_version",
    "cipher",
    "cert",
    "mail_transactions",
    "auth_mechanisms",
    "verdict",
    "evidence",
    "findings",
];

#[test]
fn the_real_exchange_sample_reads_as_one_starttls_session_with_every_key() {
    let out = run(
        &["logs", "-F", "json", &data("tests/data/logs/exchange/recv-2013plus-starttls-tls12-oneline-cert.log")],
        None,
    );
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let recs = common::ndjson(&out.stdout);
    let [r] = recs.as_slice() else { panic!("{recs:?}") };
    let keys: Vec<&str> = r.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(keys, LOG_KEYS);
    assert_eq!(r["verdict"], "starttls");
    assert_eq!(r["tls_version"], "TLS1.2");
    assert_eq!(r["cert"]["sha1"], "12deabc6565646512346abdc1345689413589876");
    assert!(!out.stdout.windows(9).any(|w| w == b"username@"), "AUTH user masked by default");
}

#[test]
fn every_postfix_log_line_of_the_lab_reads_with_every_key_on_every_line() {
    let srv = pairs_dir().join("postfix-srv.maillog");
    let out = run(&["logs", "-F", "json", "--log-tz", "UTC", srv.to_str().unwrap()], None);
    assert_eq!(out.status.code(), Some(0));
    let recs = common::ndjson(&out.stdout);
    assert!(recs.len() >= 13, "{}", recs.len());
    for r in &recs {
        let keys: Vec<&str> = r.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(keys, LOG_KEYS);
        assert_eq!(r["source"], "postfix-smtpd");
        assert!(r["server"].is_null(), "Postfix never logs its own address");
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("recognised"), "{stderr}");
}

#[test]
fn stdin_gzip_display_filter_and_summary() {
    let srv = std::fs::read(pairs_dir().join("postfix-srv.maillog")).unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&srv).unwrap();
    let gz = gz.finish().unwrap();
    let (dir, summary) = common::scratch_file("summary.json");
    let out = run(
        &["logs", "-F", "json", "--log-tz", "UTC", "-Y", "\"SSL_accept\"", "--summary", summary.to_str().unwrap(), "-"],
        Some(&gz),
    );
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let recs = common::ndjson(&out.stdout);
    assert_eq!(recs.len(), 2, "the two failed handshakes");
    assert!(recs.iter().all(|r| r["verdict"] == "starttls-failed"));
    let s: Value = serde_json::from_str(&std::fs::read_to_string(&summary).unwrap()).unwrap();
    assert_eq!(s["reported"], 2);
    assert_eq!(s["files"][0]["format"], "postfix");
    assert!(out.stderr.is_empty(), "--summary FILE replaces the text summary");
    drop(dir);
}

#[test]
fn no_recognisable_line_or_no_readable_input_is_exit_2() {
    let (dir, junk) = common::scratch_file("junk.log");
    std::fs::write(&junk, b"\x00\x01binary\xff\xfe\nnot a log line\n").unwrap();
    let out = run(&["logs", junk.to_str().unwrap()], None);
    assert_eq!(out.status.code(), Some(2));
    let out = run(&["logs", "/nonexistent/RECV.LOG"], None);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("nonexistent"));
    for line in err.lines() {
        assert!(line.matches("no such file").count() <= 1, "the cause said twice: {line}");
    }
    drop(dir);
}

#[test]
fn bad_lines_are_counted_by_reason_and_never_change_the_exit_status() {
    let sample = std::fs::read(data("tests/data/logs/exchange/recv-2013plus-starttls-tls12-oneline-cert.log")).unwrap();
    let mut log = sample.clone();
    log.extend_from_slice(b"\x00\x01\x02 garbage\n");
    log.extend_from_slice(b"2023-01-11T16:00:11.000Z,C,ABC,1,1.2.3.4:25,5.6.7.8:9,<,\"never closed,\n");
    log.extend_from_slice(&vec![b'A'; 10 << 20]);
    log.extend_from_slice(b"\n2023-01-11T16:00:12.000Z,C,ABD,1,1.2.3.4:25,5.6.7.8:9,<,EHLO caf\xe9,\n");
    let (dir, path) = common::scratch_file("RECV.LOG");
    std::fs::write(&path, &log).unwrap();
    let (_d2, summary) = common::scratch_file("s.json");
    let out = run(&["logs", "-F", "json", "--summary", summary.to_str().unwrap(), path.to_str().unwrap()], None);
    assert_eq!(out.status.code(), Some(0));
    let s: Value = serde_json::from_str(&std::fs::read_to_string(&summary).unwrap()).unwrap();
    let p = &s["line_problems"];
    assert_eq!(p["unclosed-quote"], 1, "{s}");
    assert_eq!(p["line-too-long"], 1, "{s}");
    assert_eq!(p["invalid-utf8"], 1, "{s}");
    assert!(s["files"][0]["bytes"].as_u64().unwrap() > 10 << 20, "bytes read, not bytes kept: {s}");
    let recs = common::ndjson(&out.stdout);
    let legacy = recs.iter().find(|r| r["log_session"] == "ABD").expect("the legacy code page line's session");
    assert_eq!(legacy["helo"], "caf\\xE9");
    drop(dir);
}

/// A session with the lab's Exchange-style server (10.232.0.7 and .9).
fn is_exchange(w: &Value) -> bool {
    ["10.232.0.7:25", "10.232.0.9:25"].contains(&w["server"].as_str().unwrap_or_default())
}

/// The lab's paired run: (wire records, unmatched log records).
fn paired() -> (Vec<Value>, Vec<Value>) {
    let d = pairs_dir();
    let (dir, unmatched) = common::scratch_file("unmatched.json");
    let out = run(
        &[
            "-r",
            d.join("postfix-pairs.pcap").to_str().unwrap(),
            "--logs",
            d.join("postfix-srv.maillog").to_str().unwrap(),
            "--logs",
            d.join("postfix-cli.maillog").to_str().unwrap(),
            "--logs",
            d.join("exchange-RECV.LOG").to_str().unwrap(),
            "--log-tz",
            "UTC",
            "--log-skew",
            "1s",
            "--unmatched-logs",
            unmatched.to_str().unwrap(),
            "-F",
            "json",
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let wire = common::ndjson(&out.stdout);
    let unmatched = common::ndjson(&std::fs::read(&unmatched).unwrap());
    drop(dir);
    (wire, unmatched)
}

#[test]
fn every_lab_session_matches_its_postfix_log_sessions_and_every_verdict_agrees() {
    let (wire, unmatched) = paired();
    let meant: Vec<Value> = common::ndjson(&std::fs::read(pairs_dir().join("postfix-pairs.jsonl")).unwrap());
    assert_eq!(wire.len(), meant.len(), "one wire session per lab session");
    assert_eq!(wire.iter().filter(|w| is_exchange(w)).count(), 3, "the Exchange-style server's, checked below");
    let mut client_side = 0;
    for w in wire.iter().filter(|w| !is_exchange(w)) {
        let links = w["logs"].as_array().expect("'logs' on every wire line");
        let smtpd: Vec<&Value> = links.iter().filter(|l| l["source"] == "postfix-smtpd").collect();
        assert_eq!(smtpd.len(), 1, "{w}");
        for l in links {
            assert_eq!(l["agree"], true, "{w}");
            assert!(l["differences"].as_array().unwrap().is_empty());
            assert!(l["hint"].is_null());
            // Postfix smtpd does not log its STARTTLS offer: offered-and-unused is plaintext to it.
            let same = l["verdict"] == w["verdict"]
                || (l["source"] == "postfix-smtpd"
                    && l["verdict"] == "plaintext"
                    && w["verdict"] == "starttls-offered-unused");
            assert!(same, "log {} vs wire {}: {w}", l["verdict"], w["verdict"]);
        }
        client_side += links.iter().filter(|l| l["source"] == "postfix-smtp").count();
    }
    let want_client = meant.iter().filter(|m| m["log_side"] == "postfix-smtp").count();
    assert_eq!(client_side, want_client, "every sending-Postfix session matched");
    let verdicts: std::collections::BTreeSet<&str> = wire.iter().filter_map(|w| w["verdict"].as_str()).collect();
    for v in ["plaintext", "starttls-offered-unused", "starttls", "starttls-refused", "starttls-failed", "implicit-tls"]
    {
        assert!(verdicts.contains(v), "the lab pairs cover {v}");
    }
    // Only the submissions to the sending Postfix over its loopback smtpd were not on the wire.
    assert!(!unmatched.is_empty());
    for u in &unmatched {
        assert_eq!(u["client"], "127.0.0.1", "{u}");
    }
}

fn exchange_link<'a>(wire: &'a [Value], helo: &str) -> (&'a Value, &'a Value) {
    let w = wire.iter().find(|w| w["helo"] == helo).unwrap_or_else(|| panic!("no wire session with EHLO {helo}"));
    let links = w["logs"].as_array().unwrap();
    assert_eq!(links.len(), 1, "{w}");
    assert_eq!(links[0]["source"], "exchange-receive");
    (w, &links[0])
}

#[test]
fn the_exchange_style_servers_starttls_session_matches_by_4_tuple_and_agrees_on_verb_version_and_cert_sha1() {
    // Every line of this session has the shape of a line in the real 2013+ sample.
    let (wire, _) = paired();
    let (w, l) = exchange_link(&wire, "EXHUB04.contoso.com");
    assert_eq!(w["verdict"], "starttls");
    assert_eq!(l["verdict"], "starttls");
    assert_eq!(l["agree"], true, "upgrade verb, TLS 1.2 and the certificate's SHA-1 agree: {w}");
    assert!(w["cert"]["sha1"].is_string(), "the wire saw the certificate, so `cert` was compared");
}

#[test]
fn inferred_x_anonymoustls_line_and_inferred_disconnect_line_sessions_agree_too() {
    // X-ANONYMOUSTLS (same code path and reply as STARTTLS) and the `-` line have no real sample.
    let (wire, _) = paired();
    let (w, l) = exchange_link(&wire, "EXHUB02.contoso.com");
    assert_eq!(
        (w["upgrade_verb"].as_str(), l["verdict"].as_str(), &l["agree"]),
        (Some("X-ANONYMOUSTLS"), Some("starttls"), &Value::Bool(true))
    );
    let (w, l) = exchange_link(&wire, "EXHUB03.contoso.com");
    assert_eq!(w["verdict"], "starttls-offered-unused");
    assert_eq!((l["verdict"].as_str(), &l["agree"]), (Some("starttls-offered-unused"), &Value::Bool(true)));
}

#[test]
fn without_logs_the_wire_records_have_no_logs_key() {
    let out = run(&["-r", pairs_dir().join("postfix-pairs.pcap").to_str().unwrap(), "-F", "json", "-q"], None);
    let wire = common::ndjson(&out.stdout);
    assert!(!wire.is_empty());
    assert!(wire.iter().all(|w| w.get("logs").is_none()));
}

#[test]
fn the_log_lab_rebuilt_afresh_pairs_the_same_way() {
    if !common::root_and("SMTPSCOPE_LOG_LAB", "the log lab (real Postfix between network namespaces)") {
        return;
    }
    let dir = common::scratch("loglab");
    let st = Command::new("python3")
        .arg(data("tests/lab/log_lab.py"))
        .args(["pairs", dir.path().to_str().unwrap()])
        .status()
        .expect("python3");
    assert!(st.success());
    let out = run(
        &[
            "-r",
            dir.path().join("postfix-pairs.pcap").to_str().unwrap(),
            "--logs",
            dir.path().join("*.maillog").to_str().unwrap(),
            "--logs",
            dir.path().join("exchange-RECV.LOG").to_str().unwrap(),
            "--log-tz",
            "UTC",
            "--log-skew",
            "1s",
            "-F",
            "json",
            "-q",
        ],
        None,
    );
    let wire = common::ndjson(&out.stdout);
    assert_eq!(wire.len(), 16);
    for w in &wire {
        let links = w["logs"].as_array().unwrap();
        let server_side = if is_exchange(w) { "exchange-receive" } else { "postfix-smtpd" };
        assert!(links.iter().any(|l| l["source"] == server_side), "{w}");
        assert!(links.iter().all(|l| l["agree"] == true), "{w}");
    }
}

/// Runs `tests/lab/log_lab.py MODE DIR` with this smtpscope and asserts the lab itself succeeded
/// (smtpscope's stderr in the message); returns a reader of the files it left in `dir`.
fn run_log_lab<'a>(mode: &str, dir: &'a Path) -> impl Fn(&str) -> String + 'a {
    let st = Command::new("python3")
        .arg(data("tests/lab/log_lab.py"))
        .args([mode, dir.to_str().unwrap(), env!("CARGO_BIN_EXE_smtpscope")])
        .status()
        .expect("python3");
    let read = move |name: &str| std::fs::read_to_string(dir.join(name)).unwrap_or_default();
    assert!(st.success(), "the lab failed; smtpscope said:\n{}", read("live.err"));
    read
}

#[test]
fn log_wait_is_for_a_live_capture_only() {
    let pcap = pairs_dir().join("postfix-pairs.pcap");
    let log = pairs_dir().join("postfix-srv.maillog");
    let out =
        run(&["-r", pcap.to_str().unwrap(), "--logs", log.to_str().unwrap(), "--log-wait", "5s", "-F", "json"], None);
    assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--log-wait is for a live capture (-i)"));
    let out = run(&["-r", pcap.to_str().unwrap(), "--log-wait", "5s", "-F", "json"], None);
    assert_eq!(out.status.code(), Some(2), "--log-wait without --logs is a usage error");
}

#[test]
fn following_logs_during_a_live_capture_survives_logrotate() {
    if !common::root_and("SMTPSCOPE_LOG_LAB", "the log lab (real Postfix between network namespaces)") {
        return;
    }
    let dir = common::scratch("logfollow");
    let read = run_log_lab("follow", dir.path());
    assert_eq!(read("live.rc").trim(), "0", "{}", read("live.err"));
    // Two real rotations: the first rotated file compressed by the second (delaycompress).
    let rotated = read("rotated.txt");
    assert!(rotated.lines().any(|l| l == "maillog.1") && rotated.lines().any(|l| l == "maillog.2.gz"), "{rotated}");
    let meant: Vec<Value> = common::ndjson(read("follow.jsonl").as_bytes());
    let wire = common::ndjson(read("live.jsonl").as_bytes());
    assert_eq!(wire.len(), meant.len(), "{}", read("live.err"));
    for w in &wire {
        let links = w["logs"].as_array().unwrap();
        assert_eq!(links.len(), 1, "{w}");
        assert_eq!(links[0]["source"], "postfix-smtpd", "{w}");
        assert_eq!(links[0]["agree"], true, "{w}");
    }
    let mut got: Vec<&str> = wire.iter().map(|w| w["verdict"].as_str().unwrap()).collect();
    let mut want: Vec<&str> = meant.iter().map(|m| m["verdict"].as_str().unwrap()).collect();
    got.sort_unstable();
    want.sort_unstable();
    assert_eq!(got, want);
    // The session whose connect line went with the rotated file and its disconnect to the new one.
    assert!(wire.iter().any(|w| w["helo"] == "straddle.lab.example"), "{wire:?}");
    let err = read("live.err");
    eprintln!("smtpscope said:\n{err}");
    assert!(err.contains("followed in 1 file(s) (1 rotated away, 0 truncated, 1 compressed left unread)"), "{err}");
    assert!(err.contains("0 left without one"), "{err}");
    assert!(read("unmatched.jsonl").is_empty(), "{}", read("unmatched.jsonl"));
    // The live run's --summary has the logs object of a run over files, and what following saw.
    let s: Value = serde_json::from_str(&read("summary.json")).unwrap();
    let l = &s["logs"];
    assert_eq!((&l["matched_wire"], &l["matched_log_sessions"]), (&wire.len().into(), &wire.len().into()), "{l}");
    assert_eq!((&l["unmatched_in_span"], &l["disagreements"]), (&0.into(), &0.into()), "{l}");
    assert_eq!(l["files"].as_array().unwrap().len(), 1, "one stream through both rotations: {l}");
    let f = &l["follow"];
    assert_eq!((&f["rotations"], &f["compressed_unread"], &f["waited_out"]), (&1.into(), &1.into(), &0.into()), "{l}");
}

#[test]
fn a_live_check_following_real_postfix_logs_streams_each_judgement_within_the_wait_and_loses_none_at_the_stop() {
    if !common::root_and("SMTPSCOPE_LOG_LAB", "the log lab (real Postfix between network namespaces)") {
        return;
    }
    let dir = common::scratch("logcheck");
    let read = run_log_lab("check", dir.path());
    let err = read("live.err");
    eprintln!("smtpscope said:\n{err}");
    // A violation: exit 1.
    assert_eq!(read("live.rc").trim(), "1", "{err}");
    let stop: Value = serde_json::from_str(&read("stop.json")).unwrap();
    let wait = stop["log_wait"].as_f64().unwrap();
    let ran = common::ndjson(read("check.jsonl").as_bytes());
    let ended = |scenario: &str| ran.iter().find(|s| s["scenario"] == scenario).unwrap()["ended"].as_f64().unwrap();
    let stream = common::ndjson(read("stream.jsonl").as_bytes());
    let lines: Vec<(f64, &Value)> = stream.iter().map(|l| (l["at"].as_f64().unwrap(), &l["line"])).collect();
    // Streamed the moment they were judged: each violation and unproven session, once.
    let judged: Vec<&(f64, &Value)> = lines
        .iter()
        .filter(|(_, v)| v["type"] == "session" && ["violation", "unproven"].contains(&v["outcome"].as_str().unwrap()))
        .collect();
    let shown: Vec<(&str, &str, &str)> = judged
        .iter()
        .map(|(_, v)| {
            (v["server"].as_str().unwrap(), v["outcome"].as_str().unwrap(), v["proven_by"].as_str().unwrap_or("-"))
        })
        .collect();
    assert_eq!(
        shown,
        [
            ("10.232.0.2:25", "violation", "wire"),
            ("10.232.0.7:25", "unproven", "-"),
            ("10.232.0.2:25", "unproven", "-")
        ],
        "{stream:?}"
    );
    // The offered-unused session's log came at once: judged within the wait after its end (and
    // well before it).
    let late = judged[0].0 - ended("offered-unused");
    assert!((0.0..=wait + 2.0).contains(&late), "the violation came {late:.2} s after the session ended");
    // The Exchange-style server's log is not followed: the session waited out its wait, then was
    // judged on the wire alone (TLS 1.2, the version beyond the snapshot length).
    let late = judged[1].0 - ended("exchange");
    assert!((wait - 0.5..=wait + 2.0).contains(&late), "the unproven session came {late:.2} s after its end");
    assert_eq!(judged[1].1["reason"], "TLS version not captured");
    // Still open at the SIGINT: judged at the stop, before the final report, and the run ends
    // within the wait.
    let signalled = stop["signalled"].as_f64().unwrap();
    assert!(judged[2].0 >= signalled && judged[2].0 - signalled <= wait + 2.0, "{stop} {:?}", judged[2]);
    assert!(stop["exited"].as_f64().unwrap() - signalled <= wait + 2.0, "{stop}");
    let first_rule = lines.iter().position(|(_, v)| v["type"] == "rule").expect("the final report");
    assert!(lines.iter().take(first_rule).filter(|(_, v)| v["type"] == "session").count() >= 3);

    // The final report: the TLS 1.3 session the wire could not prove (version beyond -s 120),
    // proven by the receiving Postfix's log; counts per rule.
    let by_log: Vec<&Value> = lines.iter().map(|(_, v)| *v).filter(|v| v["proven_by"] == "log").collect();
    let [pass] = by_log.as_slice() else { panic!("{stream:?}") };
    assert_eq!((&pass["outcome"], &pass["server"]), (&Value::from("pass"), &Value::from("10.232.0.2:25")), "{pass}");
    assert_eq!(
        (&pass["log"]["source"], &pass["log"]["verdict"]),
        (&Value::from("postfix-smtpd"), &Value::from("starttls"))
    );
    assert_eq!(pass["log"]["wire_unproven"], "TLS version not captured", "{pass}");
    let rule = |name: &str| lines.iter().map(|(_, v)| *v).find(|v| v["type"] == "rule" && v["rule"] == name).unwrap();
    let counts =
        |r: &Value| ["matched", "passed", "violated", "unproven", "proven_by_log"].map(|k| r[k].as_u64().unwrap());
    assert_eq!(counts(rule("lab to the MX")), [3, 1, 1, 1, 1]);
    assert_eq!(counts(rule("lab to the hub")), [1, 0, 0, 1, 0]);
    let summary = lines.last().unwrap().1;
    assert_eq!((&summary["type"], &summary["result"]), (&Value::from("summary"), &Value::from("fail")));
    assert_eq!((&summary["log_sessions"], &summary["logs_unmatched_in_span"]), (&Value::from(3), &Value::from(0)));

    // --summary: the live logs object; --output: every record, the open one linked to the log
    // session Postfix had only begun when the capture stopped.
    let s: Value = serde_json::from_str(&read("summary.json")).unwrap();
    let l = &s["logs"];
    assert_eq!(
        (&l["sessions"], &l["matched_wire"], &l["matched_log_sessions"]),
        (&3.into(), &3.into(), &3.into()),
        "{l}"
    );
    assert_eq!(
        (&l["unmatched_in_span"], &l["disagreements"], &l["follow"]["waited_out"]),
        (&0.into(), &0.into(), &1.into())
    );
    assert_eq!(l["files"][0]["format"], "postfix", "{l}");
    let records = common::ndjson(read("records/records.jsonl").as_bytes());
    assert_eq!(records.len(), ran.len(), "{records:?}");
    let open = records.iter().find(|r| r["end_reason"] == "end-of-capture").expect("the open session");
    let links = open["logs"].as_array().unwrap();
    assert_eq!((links.len(), &links[0]["source"]), (1, &Value::from("postfix-smtpd")), "{open}");
    assert!(read("unmatched.jsonl").is_empty(), "{}", read("unmatched.jsonl"));
    assert!(err.contains("3 wire session(s) matched, 0 disagree, 1 left without one after waiting 5 s"), "{err}");
}

#[test]
fn the_live_ui_follows_the_logs_through_logrotate_and_revises_each_row_when_its_log_lines_arrive() {
    if !common::root_and("SMTPSCOPE_LOG_LAB", "the live UI following logs (real Postfix between network namespaces)") {
        return;
    }
    if !Command::new("tmux").arg("-V").output().is_ok_and(|o| o.status.success()) {
        assert!(std::env::var_os("SMTPSCOPE_REQUIRE_TMUX").is_none(), "tmux required but not installed");
        common::skipped("the live UI following logs", "tmux is not installed");
        return;
    }
    let dir = common::scratch("logfollowtui");
    // The run becomes nobody: its --output file is created (and rotated) as that user.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let read = run_log_lab("follow-tui", dir.path());
    assert_eq!(read("live.rc").trim(), "0", "{}", read("live.err"));
    let meant: Vec<Value> = common::ndjson(read("follow.jsonl").as_bytes());
    let postfix = meant.iter().filter(|m| m["log_side"] == "postfix-smtpd").count();
    assert!(postfix >= 4 && meant.len() == postfix + 1, "{meant:?}");
    // The table's rows on a saved screen (between the column titles and the box's bottom).
    let rows = |screen: &str| -> Vec<String> {
        let lines: Vec<&str> = screen.lines().collect();
        let at = lines.iter().position(|l| l.contains("VERDICT") && l.contains("LOG")).expect("the LOG column");
        lines[at + 1..].iter().take_while(|l| !l.starts_with('└')).map(|l| l.to_string()).collect()
    };
    let log_cell =
        |row: &str| row.split_whitespace().find(|c| ["wait", "agree", "differ", "none"].contains(c)).map(String::from);
    // The session to the Exchange-style server was shown as it ended, its log lines awaited.
    let waiting = read("screen-wait.txt");
    let ex = rows(&waiting).into_iter().find(|r| r.contains("EXHUB02")).expect("the Exchange session's row");
    assert_eq!(log_cell(&ex).as_deref(), Some("wait"), "{waiting}");
    assert!(ex.contains("starttls"), "its verdict is the wire's, at once: {ex}");
    // Settled: every Postfix session (before and after the rotation) agrees with its log
    // session; the Exchange one waited out its --log-wait.
    let settled = read("screen-final.txt");
    let all = rows(&settled);
    let cells: Vec<Option<String>> = all.iter().map(|r| log_cell(r)).collect();
    assert_eq!(cells.iter().filter(|c| c.as_deref() == Some("agree")).count(), postfix, "{settled}");
    assert_eq!(cells.iter().filter(|c| c.as_deref() == Some("none")).count(), 1, "{settled}");
    assert!(all.iter().any(|r| r.contains("EXHUB02") && log_cell(r).as_deref() == Some("none")), "{settled}");
    let agree = read("screen-agree.txt");
    assert!(agree.contains(&format!("Sessions {postfix}/{}", meant.len())), "{agree}");
    let tab = read("screen-logtab.txt");
    assert!(tab.contains("postfix-smtpd · agrees") && tab.contains("connect from"), "{tab}");
    // The records went to --output as without the UI: each once, with its log links, and
    // naming the -w ring file that holds its packets.
    let recs = common::ndjson(read("live.jsonl").as_bytes());
    assert_eq!(recs.len(), meant.len(), "{}", read("live.err"));
    let ring = dir.path().join("ring.pcap").display().to_string();
    for r in &recs {
        assert!(r["pcap_file"].as_str().is_some_and(|f| f.starts_with(&ring)), "{r}");
        let links = r["logs"].as_array().unwrap();
        if r["helo"] == "EXHUB02.contoso.com" {
            assert!(links.is_empty(), "{r}");
        } else {
            assert_eq!(links.len(), 1, "{r}");
            assert_eq!((&links[0]["source"], &links[0]["agree"]), (&Value::from("postfix-smtpd"), &Value::from(true)));
        }
    }
    let err = read("live.err");
    eprintln!("smtpscope said:\n{err}");
    // A real rotation happened mid-run (the glob also follows maillog.1), and the sessions
    // after it were linked from the new file.
    assert!(read("rotated.txt").lines().any(|l| l == "maillog.1"), "{}", read("rotated.txt"));
    assert!(meant.iter().any(|m| m["note"] == "after the rotation"));
    assert!(err.contains(&format!("{postfix} wire session(s) matched, 0 disagree, 1 left without one")), "{err}");
    // The UI's --summary has the logs object a run without the UI writes, with the same counts.
    let summary: Value = serde_json::from_str(&read("summary.json")).expect("--summary is JSON");
    let logs = &summary["logs"];
    assert_eq!(logs["matched_wire"], postfix, "{summary}");
    assert_eq!(logs["disagreements"], 0, "{summary}");
    assert_eq!(logs["follow"]["waited_out"], 1, "{summary}");
    assert!(logs["follow"]["rotations"].as_u64().is_some(), "{summary}");
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]

    /// Real lines cut, spliced and corrupted at random go through both parsers without a panic,
    /// every record with every key and its bounds (the fuzz targets' checks).
    #[test]
    fn mangled_real_lines_never_panic(
        picks in proptest::collection::vec((0usize..64, 0usize..400, proptest::num::u8::ANY, 0usize..400), 1..40)
    ) {
        let exchange = include_str!("data/logs/exchange/recv-2013plus-starttls-tls12-oneline-cert.log");
        let postfix = include_str!("../captures/logs/postfix-srv.maillog");
        for source in [exchange, postfix] {
            let lines: Vec<&str> = source.lines().collect();
            let mut data = Vec::new();
            for (i, cut, byte, at) in &picks {
                let mut l = lines[i % lines.len()].as_bytes().to_vec();
                l.truncate(*cut.max(&1));
                if !l.is_empty() {
                    let k = at % l.len();
                    l[k] = *byte;
                }
                data.extend_from_slice(&l);
                data.push(b'\n');
            }
            smtpscope::fuzzing::exchange_log(&data);
            smtpscope::fuzzing::postfix_log(&data);
        }
    }
}

#[test]
fn behind_an_inline_masking_box_both_stripped_sessions_carry_stripped_before_server() {
    // captures/logs/stripped.pcap: captured on the client's side of asa_nfqueue.py, which masks
    // STARTTLS as XXXXXXXA in place and keeps the client's address; the server's Postfix log.
    let d = pairs_dir();
    let out = run(
        &[
            "-r",
            d.join("stripped.pcap").to_str().unwrap(),
            "--logs",
            d.join("stripped-srv.maillog").to_str().unwrap(),
            "--log-tz",
            "UTC",
            // The second client's connection waited ~5 s in the listen queue before Postfix's
            // smtpd accepted it and logged `connect from`: the skew covers that delay too.
            "--log-skew",
            "10s",
            "-F",
            "json",
            "-q",
        ],
        None,
    );
    let wire = common::ndjson(&out.stdout);
    assert_eq!(wire.len(), 2);
    for w in &wire {
        assert_eq!(w["verdict"], "stripped");
        let links = w["logs"].as_array().unwrap();
        assert_eq!(links.len(), 1, "{w}");
        assert_eq!(links[0]["verdict"], "plaintext", "the server never saw STARTTLS");
        assert_eq!(links[0]["hint"], "stripped-before-server", "{w}");
    }
    // The client that sent STARTTLS anyway: the wire shows the verb, the server's log does not.
    let insist = wire.iter().find(|w| w["upgrade_verb"] == "STARTTLS").expect("the insisting client");
    assert_eq!(insist["logs"][0]["differences"], serde_json::json!(["upgrade_verb"]));
    assert!(insist["findings"].as_array().unwrap().iter().any(|f| f["name"] == "log-disagrees"));
}
