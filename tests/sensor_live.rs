//! Sensor mode end to end with real components on loopback: rotating `--output` reopened by a
//! real logrotate, the `-w` ring, `--metrics` scraped by a real Prometheus, `check -i`
//! streaming, `kill -9` leaving whole lines, and the systemd unit verified by systemd-analyze.
//!
//! Live parts need root and `SMTPSCOPE_SENSOR_TEST=1`; the Prometheus part also
//! `SMTPSCOPE_PROMETHEUS_TEST=1` (prometheus and promtool installed). `.ci/run` sets them.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

fn enabled() -> bool {
    common::root_and("SMTPSCOPE_SENSOR_TEST", "the live sensor test")
}

/// A port of this test's own (different per test through `salt`).
fn port(salt: u16) -> u16 {
    20_000 + (std::process::id() % 5_000) as u16 * 8 + salt
}

/// Starts smtpscope and waits until it listens; returns the child and its stderr reader.
fn start(args: &[&str]) -> (Child, BufReader<std::process::ChildStderr>) {
    let mut child = common::spawn_piped(args);
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !line.contains("listening on") {
        line.clear();
        assert!(err.read_line(&mut line).unwrap() > 0, "smtpscope ended before listening");
        assert!(Instant::now() < deadline);
    }
    (child, err)
}

/// Two real SMTP sessions (smtplib against smtpd) on 127.0.0.1:`port`.
fn sessions(port: u16) {
    let py = Command::new("python3")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/lab/loopback_smtp.py"))
        .arg(port.to_string())
        .status()
        .unwrap();
    assert!(py.success());
}

fn signal(child: &Child, sig: i32) {
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, sig) };
}

/// Every line of every file whose name starts with `prefix` in `dir`, parsed (a broken line fails).
fn records_in(dir: &Path, prefix: &str) -> Vec<Value> {
    let mut out = Vec::new();
    let mut names: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with(prefix))
        .collect();
    names.sort();
    for p in names {
        let text = std::fs::read_to_string(&p).unwrap();
        assert!(text.is_empty() || text.ends_with('\n'), "{} ends inside a record", p.display());
        for l in text.lines() {
            out.push(
                serde_json::from_str(l).unwrap_or_else(|e| panic!("{}: not a whole record: {e}: {l}", p.display())),
            );
        }
    }
    out
}

/// GET `path` from 127.0.0.1:`port` (HTTP/1.0), the body.
fn http_get(port: u16, path: &str) -> String {
    let mut c = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(c, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").unwrap();
    let mut s = String::new();
    c.read_to_string(&mut s).unwrap();
    s.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default()
}

/// A directory the user smtpscope becomes (nobody) can write.
fn open_scratch(tag: &str) -> tempfile::TempDir {
    use std::os::unix::fs::PermissionsExt;
    let d = common::scratch(tag);
    std::fs::set_permissions(d.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    d
}

#[test]
fn a_sensor_rotates_by_logrotate_reopens_on_sighup_keeps_a_ring_and_serves_metrics() {
    if !enabled() {
        return;
    }
    let scratch = open_scratch("sensor");
    let dir = scratch.path();
    let out = dir.join("sessions.ndjson");
    let ring = dir.join("ring.pcap");
    let pid = dir.join("smtpscope.pid");
    let (smtp, metrics) = (port(0), port(1));
    let filter = format!("tcp port {smtp}");
    let metrics_arg = metrics.to_string();
    let (mut child, _err) = start(&[
        "-i",
        "lo",
        "-Z",
        "nobody",
        "--sensor",
        "test-sensor",
        "--output",
        out.to_str().unwrap(),
        "-w",
        ring.to_str().unwrap(),
        "-C",
        "1",
        "-W",
        "3",
        "--metrics",
        &metrics_arg,
        "--pidfile",
        pid.to_str().unwrap(),
        &filter,
    ]);
    assert_eq!(std::fs::read_to_string(&pid).unwrap().trim(), child.id().to_string());
    sessions(smtp);
    std::thread::sleep(Duration::from_millis(800));
    // logrotate with the documented configuration (paths and reload adapted), or a move and
    // a hang-up where logrotate is missing.
    let conf = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/smtpscope.logrotate")).unwrap();
    let conf = conf
        .replace("/var/log/smtpscope/sessions.ndjson", out.to_str().unwrap())
        .replace("systemctl reload smtpscope", &format!("kill -HUP {}", child.id()))
        .replace("su smtpscope smtpscope", "su root root")
        .replace("create 0640 smtpscope smtpscope", "nocreate")
        .replace("    compress\n", "")
        .replace("notifempty", "ifempty");
    let conf_path = dir.join("logrotate.conf");
    std::fs::write(&conf_path, conf).unwrap();
    let rotated = Command::new("logrotate")
        .args(["-f", "-s", dir.join("logrotate.state").to_str().unwrap(), conf_path.to_str().unwrap()])
        .status();
    match rotated {
        Ok(s) => assert!(s.success(), "logrotate failed"),
        Err(_) => {
            eprintln!("logrotate missing: rotating by hand");
            std::fs::rename(&out, dir.join("sessions.ndjson.1")).unwrap();
            signal(&child, libc::SIGHUP);
        }
    }
    std::thread::sleep(Duration::from_millis(500));
    sessions(smtp);
    std::thread::sleep(Duration::from_millis(1500));
    let exposition = http_get(metrics, "/metrics");
    assert!(http_get(metrics, "/").is_empty() || !http_get(metrics, "/").contains("smtpscope_"));
    signal(&child, libc::SIGINT);
    let status = child.wait().unwrap();
    assert!(status.success(), "{status}");
    assert!(!pid.exists(), "the pid file is removed at exit");

    assert!(dir.join("sessions.ndjson.1").exists(), "rotated");
    {
        use std::os::unix::fs::MetadataExt;
        // Reopened after the drop: created by the user smtpscope became.
        assert_eq!(std::fs::metadata(&out).unwrap().uid(), 65534, "the reopened file belongs to nobody");
    }
    let all = records_in(dir, "sessions.ndjson");
    let verdicts: Vec<&str> = all.iter().map(|r| r["verdict"].as_str().unwrap()).collect();
    assert_eq!(verdicts.len(), 4, "no record lost or written twice: {verdicts:?}");
    assert_eq!(records_in(dir, "sessions.ndjson.1").len(), 2, "two before the rotation");
    for r in &all {
        assert_eq!(r["sensor"], "test-sensor");
        let pcap_file = r["pcap_file"].as_str().unwrap();
        assert!(pcap_file.starts_with(ring.to_str().unwrap()), "{pcap_file}");
        let ev = &r["evidence"][0];
        if !ev["frame"].is_null() {
            assert!(ev["file"].as_str().unwrap().starts_with(ring.to_str().unwrap()));
        }
    }
    // The ring file holds the sessions, readable, with the frames the evidence names.
    let first = all[0]["pcap_file"].as_str().unwrap();
    let again = Command::new(env!("CARGO_BIN_EXE_smtpscope")).args(["-q", "-F", "json", "-r", first]).output().unwrap();
    assert!(again.status.success());
    let from_file = common::ndjson(&again.stdout);
    assert_eq!(from_file[0]["evidence"][0]["frame"], all[0]["evidence"][0]["frame"]);

    let count = |verdict: &str| -> u64 {
        exposition
            .lines()
            .find(|l| l.starts_with(&format!("smtpscope_sessions_total{{verdict=\"{verdict}\",port=\"other\"}}")))
            .and_then(|l| l.rsplit(' ').next()?.parse().ok())
            .unwrap_or(0)
    };
    assert_eq!(count("plaintext"), 2, "{exposition}");
    assert_eq!(count("starttls-refused"), 2, "{exposition}");
    assert!(exposition.contains("smtpscope_build_info{version=\"") && exposition.contains("sensor=\"test-sensor\""));
}

#[test]
fn check_i_writes_a_violation_within_two_seconds_of_the_sessions_end() {
    if !enabled() {
        return;
    }
    let smtp = port(2);
    let filter = format!("tcp port {smtp}");
    let (mut child, _err) =
        start(&["check", "-i", "lo", "--expect", "tls", "--between", "127.0.0.1", "127.0.0.1", &filter]);
    let stdout = child.stdout.take().unwrap();
    let rx = common::timed_lines(stdout);
    sessions(smtp);
    let ended = Instant::now();
    let mut lines = Vec::new();
    while lines.len() < 2 {
        match rx.recv_timeout(Duration::from_secs(3)) {
            Ok(l) => lines.push(l),
            Err(_) => break,
        }
    }
    assert_eq!(lines.len(), 2, "both violations written while the check runs: {lines:?}");
    for (at, line) in &lines {
        assert!(line.starts_with("rule \"127.0.0.1 <-> 127.0.0.1\": VIOLATION"), "{line}");
        assert!(at.saturating_duration_since(ended) <= Duration::from_secs(2), "{line} came late");
    }
    signal(&child, libc::SIGTERM);
    assert_eq!(child.wait().unwrap().code(), Some(1));
    let rest: Vec<String> = rx.iter().map(|(_, l)| l).collect();
    let text = rest.join("\n");
    assert!(text.contains("2 matched, 0 passed, 2 violated"), "{text}");
    assert!(!text.contains("VIOLATION"), "a violation listed twice: {text}");
}

#[test]
fn kill_9_leaves_whole_records_and_readable_capture_files() {
    if !enabled() {
        return;
    }
    let scratch = open_scratch("kill9");
    let dir = scratch.path();
    let out = dir.join("s.ndjson");
    let ring = dir.join("r.pcap");
    let smtp = port(3);
    let filter = format!("tcp port {smtp}");
    let (mut child, _err) = start(&[
        "-i",
        "lo",
        "--output",
        out.to_str().unwrap(),
        "--rotate",
        "2K",
        "-w",
        ring.to_str().unwrap(),
        "-C",
        "1",
        &filter,
    ]);
    sessions(smtp);
    sessions(smtp);
    std::thread::sleep(Duration::from_millis(1000));
    signal(&child, libc::SIGKILL);
    let _ = child.wait();
    let recs = records_in(dir, "s.ndjson");
    assert_eq!(recs.len(), 4, "every finished session was written whole before the kill");
    assert!(dir.join("s.ndjson.1").exists(), "2K rotation happened");
    let rc = Command::new(env!("CARGO_BIN_EXE_smtpscope"))
        .args(["-q", "-F", "json", "-r", ring.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(rc.status.success(), "{}", String::from_utf8_lossy(&rc.stderr));
}

#[test]
fn the_systemd_unit_verifies() {
    let Ok(probe) = Command::new("systemd-analyze").arg("--version").output() else {
        eprintln!("SKIPPED: systemd-analyze missing");
        return;
    };
    assert!(probe.status.success());
    let unit = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/smtpscope.service")).unwrap();
    assert!(unit.contains("ExecStart=/usr/local/bin/smtpscope "));
    let scratch = common::scratch("unit");
    let copy = scratch.path().join("smtpscope.service");
    std::fs::write(&copy, unit.replace("/usr/local/bin/smtpscope", env!("CARGO_BIN_EXE_smtpscope"))).unwrap();
    let o = Command::new("systemd-analyze").arg("verify").arg(&copy).stderr(Stdio::piped()).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    for key in [
        "User=smtpscope",
        "AmbientCapabilities=CAP_NET_RAW CAP_NET_ADMIN",
        "ProtectSystem=strict",
        "ReadWritePaths=/var/log/smtpscope /var/spool/smtpscope",
        "NoNewPrivileges=yes",
        "Restart=on-failure",
        "ExecReload=/bin/kill -HUP $MAINPID",
    ] {
        assert!(unit.lines().any(|l| l == key), "{key} missing from the unit");
    }
}

fn prometheus_enabled() -> bool {
    enabled() && common::root_and("SMTPSCOPE_PROMETHEUS_TEST", "the Prometheus test")
}

/// Runs a Prometheus query against the server on `port`: (labels, value) per series.
fn query(port: u16, q: &str) -> Vec<(serde_json::Map<String, Value>, f64)> {
    let enc: String = q
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"_.-".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    let body = http_get(port, &format!("/api/v1/query?query={enc}"));
    let v: Value = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"));
    assert_eq!(v["status"], "success", "{body}");
    v["data"]["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["metric"].as_object().unwrap().clone(), r["value"][1].as_str().unwrap().parse().unwrap()))
        .collect()
}

#[test]
fn prometheus_scraping_a_check_sees_the_sessions_and_outcomes_of_the_records() {
    if !prometheus_enabled() {
        return;
    }
    let scratch = open_scratch("prometheus");
    let dir = scratch.path();
    let (smtp, metrics, prom) = (port(4), port(5), port(6));
    let policy = dir.join("policy.toml");
    std::fs::write(
        &policy,
        "[groups]\nLO = [\"127.0.0.1\"]\n\n[[rule]]\nname = \"loopback over TLS\"\nbetween = [\"LO\", \"LO\"]\nexpect = \"tls\"\n",
    )
    .unwrap();
    let alerts = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/prometheus/alerts.yml");
    let config = dir.join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files:\n  - {alerts}\nscrape_configs:\n  - job_name: smtpscope\n    static_configs:\n      - targets: [\"127.0.0.1:{metrics}\"]\n"
        ),
    )
    .unwrap();
    let mut server = Command::new("prometheus")
        .arg(format!("--config.file={}", config.display()))
        .arg(format!("--storage.tsdb.path={}", dir.join("data").display()))
        .arg(format!("--web.listen-address=127.0.0.1:{prom}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start prometheus");
    let out = dir.join("sessions.ndjson");
    let filter = format!("tcp port {smtp}");
    let (metrics_arg, policy_arg) = (metrics.to_string(), policy.to_str().unwrap().to_string());
    let (mut child, _err) = start(&[
        "check",
        "-i",
        "lo",
        "--policy",
        &policy_arg,
        "--sensor",
        "prom-test",
        "--output",
        out.to_str().unwrap(),
        "--metrics",
        &metrics_arg,
        &filter,
    ]);
    sessions(smtp);
    // Scraped every second: wait until Prometheus has the sessions (at most 20 s).
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut sessions_seen = Vec::new();
    while Instant::now() < deadline {
        std::thread::sleep(Duration::from_secs(1));
        let ready = std::net::TcpStream::connect(("127.0.0.1", prom)).is_ok();
        if !ready {
            continue;
        }
        sessions_seen = query(prom, "smtpscope_sessions_total");
        if sessions_seen.iter().map(|(_, v)| v).sum::<f64>() >= 2.0 {
            break;
        }
    }
    let outcomes = query(prom, "smtpscope_check_sessions_total");
    let info = query(prom, "smtpscope_build_info");
    signal(&child, libc::SIGTERM);
    let _ = child.wait();
    let _ = server.kill();
    let _ = server.wait();

    let records = records_in(dir, "sessions.ndjson");
    assert_eq!(records.len(), 2);
    for (labels, value) in &sessions_seen {
        let verdict = labels["verdict"].as_str().unwrap();
        let n = records.iter().filter(|r| r["verdict"] == verdict).count() as f64;
        assert_eq!(*value, n, "sessions per verdict {verdict}: Prometheus {value}, records {n}");
    }
    assert_eq!(sessions_seen.iter().map(|(_, v)| v).sum::<f64>(), records.len() as f64);
    assert_eq!(outcomes.len(), 1, "{outcomes:?}");
    assert_eq!(outcomes[0].0["rule"], "loopback over TLS");
    assert_eq!(outcomes[0].0["outcome"], "violation");
    assert_eq!(outcomes[0].1, 2.0, "both cleartext sessions violate the TLS rule");
    assert_eq!(info[0].0["sensor"], "prom-test");
}

#[test]
fn the_alert_rules_pass_their_promtool_tests() {
    if !prometheus_enabled() {
        return;
    }
    // The test file is what the generator makes of the real run's scrape kept beside it.
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/prometheus");
    let made = Command::new("python3")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/alerts_series.py"))
        .arg(format!("{dir}/metrics-sample.txt"))
        .output()
        .unwrap();
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    assert_eq!(
        String::from_utf8_lossy(&made.stdout),
        std::fs::read_to_string(format!("{dir}/alerts_test.yml")).unwrap(),
        "alerts_test.yml is not what scripts/alerts_series.py makes of metrics-sample.txt: rerun scripts/alerts_series.sh"
    );
    let o = Command::new("promtool")
        .args(["test", "rules", "alerts_test.yml"])
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/prometheus"))
        .output()
        .expect("promtool");
    assert!(o.status.success(), "{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
}

#[test]
fn a_session_idle_past_the_timeout_is_reported_while_the_capture_runs_and_its_end_is_late() {
    if !enabled() {
        return;
    }
    let scratch = common::scratch("idle");
    let summary = scratch.path().join("summary.json");
    let smtp = port(7);
    let filter = format!("tcp port {smtp}");
    let (mut child, _err) =
        start(&["-i", "lo", "-F", "json", "--idle-timeout", "2s", "--summary", summary.to_str().unwrap(), &filter]);
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let _ = tx.send(line);
        }
    });
    // A client that says EHLO, then waits six seconds before MAIL FROM and QUIT.
    let script = format!(
        r#"
import smtplib, threading, time, warnings
warnings.simplefilter("ignore", DeprecationWarning)
import asyncore, smtpd
class Sink(smtpd.SMTPServer):
    def process_message(self, *a, **k):
        return None
server = Sink(("127.0.0.1", {smtp}), None, decode_data=False)
threading.Thread(target=asyncore.loop, kwargs={{"timeout": 0.1}}, daemon=True).start()
with smtplib.SMTP("127.0.0.1", {smtp}, local_hostname="idle.example") as c:
    c.ehlo()
    time.sleep(6)
    c.sendmail("a@contoso.com", ["b@fabrikam.com"], b"Subject: late\r\n\r\nlate\r\n")
time.sleep(0.3)
"#
    );
    let started = Instant::now();
    let py = Command::new("python3").arg("-c").arg(&script).spawn().unwrap();
    let line = rx.recv_timeout(Duration::from_secs(6)).expect("the idle session is reported while it is still open");
    assert!(started.elapsed() < Duration::from_secs(6), "reported before the client went on");
    let r: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(r["verdict"], "incomplete", "{line}");
    assert_eq!(r["evidence"][1]["text"], "no packet for 2 s", "{line}");
    let mut py = py;
    assert!(py.wait().unwrap().success());
    std::thread::sleep(Duration::from_millis(500));
    signal(&child, libc::SIGINT);
    assert!(child.wait().unwrap().success());
    let rest: Vec<String> = rx.iter().collect();
    assert!(rest.is_empty(), "the rest of the idle session is late, not a second session: {rest:?}");
    let s: Value = serde_json::from_str(&std::fs::read_to_string(&summary).unwrap()).unwrap();
    assert!(s["late_packets"].as_u64().unwrap() > 0, "{s}");
}

#[test]
fn sighup_re_reads_the_policy_keeps_the_old_one_when_bad_and_reports_the_rules_of_both() {
    if !enabled() {
        return;
    }
    let scratch = common::scratch("hup");
    let policy = scratch.path().join("policy.toml");
    let rule = |name: &str, expect: &str| {
        format!("[groups]\nLO = [\"127.0.0.1\"]\n\n[[rule]]\nname = \"{name}\"\nbetween = [\"LO\", \"LO\"]\nexpect = \"{expect}\"\n")
    };
    std::fs::write(&policy, rule("old over TLS", "tls")).unwrap();
    let smtp = port(8);
    let filter = format!("tcp port {smtp}");
    let (child, err) = start(&["check", "-i", "lo", "--policy", policy.to_str().unwrap(), &filter]);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in err.lines() {
            let Ok(line) = line else { break };
            let _ = tx.send(line);
        }
    });
    let said = |what: &str| {
        let deadline = Instant::now() + Duration::from_secs(5);
        while let Ok(l) = rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            if l.contains(what) {
                return l;
            }
        }
        panic!("smtpscope never said '{what}'");
    };
    sessions(smtp);
    std::thread::sleep(Duration::from_millis(500));
    std::fs::write(&policy, "[[rule]]\nbetween = [\"NOPE\", \"LO\"]\nexpect = \"tls\"\n").unwrap();
    signal(&child, libc::SIGHUP);
    said("keeping the old policy");
    std::fs::write(&policy, rule("new in clear", "plaintext")).unwrap();
    signal(&child, libc::SIGHUP);
    said("policy re-read");
    sessions(smtp);
    std::thread::sleep(Duration::from_millis(1500));
    signal(&child, libc::SIGTERM);
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("rule \"old over TLS\" (expect tls): 2 matched, 0 passed, 2 violated"), "{text}");
    assert!(text.contains("rule \"new in clear\" (expect plaintext): 2 matched"), "{text}");
}

#[test]
fn a_busy_metrics_port_or_a_directory_the_user_cannot_write_is_an_error_before_capture() {
    if !enabled() {
        return;
    }
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = busy.local_addr().unwrap().port().to_string();
    let o = Command::new(env!("CARGO_BIN_EXE_smtpscope")).args(["-i", "lo", "--metrics", &port]).output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("--metrics") && err.contains(&port) && !err.contains("listening on"), "{err}");

    // A directory only root can write: nobody (-Z) could not rotate or reopen there.
    let closed = common::scratch("closed");
    let out = closed.path().join("s.ndjson");
    let o = Command::new(env!("CARGO_BIN_EXE_smtpscope"))
        .args(["-i", "lo", "-Z", "nobody", "--output", out.to_str().unwrap()])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("user nobody") && err.contains(closed.path().to_str().unwrap()), "{err}");
    assert!(!out.exists(), "nothing created");
}
