//! End to end against the lab (tests/lab/lab.py): real Postfix, swaks, openssl, smtplib and an
//! Exchange-style server between network namespaces. smtpscope captures live (`-i any` inside
//! the client namespace, `-w` to a file) while the lab's clients run every live scenario; Ctrl-C
//! ends it with one session still open. Every record must say what the lab knows it did, no
//! record may be a phantom, the live records must equal those read back from the `-w` file, and a
//! live `check` with the documented example policy must list exactly the multi-site violations.
//!
//! Needs root, network namespaces and the lab's software (postfix, swaks, openssl, iproute2,
//! ethtool, python3 ≥ 3.11); runs when `SMTPSCOPE_LAB_TEST=1` (set by `.ci/run`), else says it
//! skipped.

mod common;

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStderr, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

const LAB: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/lab/lab.py");
const POLICY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/mail-tls.example.toml");
fn enabled() -> bool {
    common::root_and("SMTPSCOPE_LAB_TEST", "the lab end-to-end test (see README, the lab)")
}

fn log_of(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// Waits until `done` holds, panicking with `what` (and the log) after `secs`.
fn wait_for(secs: u64, what: &str, log: &Path, mut done: impl FnMut() -> bool) {
    // (the test's state directory, with every log, is kept when it fails)
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}; log {}:\n{}", log.display(), log_of(log));
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Waits for a child to exit, killing it after `secs`.
fn reap(child: &mut Child, secs: u64) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Ok(Some(st)) = child.try_wait() {
            return Some(st);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The lab held up by `lab.py up`; torn down (stdin closed) when dropped, also on a panic.
struct Lab {
    child: Option<Child>,
    log: PathBuf,
}

impl Lab {
    fn up(state: &Path, suffix: &str) -> Lab {
        let log = state.join("lab-up.log");
        let out = File::create(&log).unwrap();
        let child = Command::new("python3")
            .args([LAB, "up", state.to_str().unwrap()])
            .env("LAB_SUFFIX", suffix)
            .stdin(Stdio::piped())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .expect("python3 tests/lab/lab.py");
        let mut lab = Lab { child: Some(child), log };
        let ready = state.join("lab.json");
        let log = lab.log.clone();
        let child = lab.child.as_mut().unwrap();
        wait_for(120, "the lab to come up", &log, || {
            assert!(child.try_wait().unwrap().is_none(), "the lab exited:\n{}", log_of(&log));
            ready.exists()
        });
        lab
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            drop(c.stdin.take());
            if reap(&mut c, 60).is_none() {
                eprintln!("the lab did not stop in time; log:\n{}", log_of(&self.log));
            }
        }
    }
}

/// smtpscope run inside the client namespace, stdout to `out`.
fn start_smtpscope(netns: &str, args: &[&str], out: &Path) -> (Child, BufReader<ChildStderr>) {
    let mut child = Command::new("ip")
        .args(["netns", "exec", netns, env!("CARGO_BIN_EXE_smtpscope")])
        .args(args)
        .stdout(File::create(out).unwrap())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !line.contains("listening on") {
        line.clear();
        assert!(err.read_line(&mut line).unwrap() > 0, "smtpscope {args:?} ended before listening");
        assert!(Instant::now() < deadline);
    }
    (child, err)
}

fn stop(mut child: Child, mut err: BufReader<ChildStderr>) -> (Option<i32>, String) {
    // SAFETY: signalling our own child (ip netns exec execs smtpscope in place).
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let st = reap(&mut child, 60).expect("smtpscope did not stop after SIGINT");
    let mut rest = String::new();
    let _ = std::io::Read::read_to_string(&mut err, &mut rest);
    (st.code(), rest)
}

fn host(endpoint: &str) -> &str {
    endpoint.rsplit_once(':').map_or(endpoint, |(h, _)| h)
}

#[test]
fn live_capture_on_the_lab_says_what_the_lab_did() {
    if !enabled() {
        return;
    }
    let pid = std::process::id();
    let suffix = format!("e{}", pid % 1_000_000);
    let state = std::env::temp_dir().join(format!("smtpscope-lab-e2e-{pid}"));
    let _ = std::fs::remove_dir_all(&state);
    std::fs::create_dir_all(&state).unwrap();
    let lab = Lab::up(&state, &suffix);
    let info: Value = serde_json::from_str(&std::fs::read_to_string(state.join("lab.json")).unwrap()).unwrap();
    let cli = info["cli"].as_str().unwrap().to_string();

    // The report run: every TCP session of the client namespace but its loopback (the sending
    // Postfix takes its mail there); and a live check of the five sites against the example policy.
    let pcap = state.join("live.pcap");
    let summary = state.join("summary.json");
    let (live_out, check_out) = (state.join("live.ndjson"), state.join("check.ndjson"));
    let report_args = [
        "-i",
        "any",
        "-F",
        "json",
        "-w",
        pcap.to_str().unwrap(),
        "--summary",
        summary.to_str().unwrap(),
        "tcp and not net 127.0.0.0/8",
    ];
    let (report, report_err) = start_smtpscope(&cli, &report_args, &live_out);
    let check_args = ["check", "-i", "any", "--policy", POLICY, "-F", "json", "tcp and net 10.0.0.0/14"];
    let (check, check_err) = start_smtpscope(&cli, &check_args, &check_out);

    // The clients. The last multi-site session parks after its EHLO and the driver says so
    // (file `hold`): then smtpscope is stopped with that session open, and the driver released.
    let manifest = state.join("manifest.jsonl");
    let drive_log = state.join("drive.log");
    let out = File::create(&drive_log).unwrap();
    let mut drive = Command::new("python3")
        .args([LAB, "drive", state.to_str().unwrap(), manifest.to_str().unwrap()])
        .env("LAB_SUFFIX", &suffix)
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .spawn()
        .unwrap();
    let hold = state.join("hold");
    wait_for(300, "the lab's clients", &drive_log, || {
        assert!(drive.try_wait().unwrap().is_none(), "the driver ended early:\n{}", log_of(&drive_log));
        hold.exists()
    });
    std::thread::sleep(Duration::from_millis(1500));
    let (report_code, report_stderr) = stop(report, report_err);
    let (check_code, check_stderr) = stop(check, check_err);
    File::create(state.join("release")).unwrap();
    let st = reap(&mut drive, 120).expect("the driver did not finish");
    assert!(st.success(), "the driver failed:\n{}", log_of(&drive_log));
    drop(lab);

    assert_eq!(report_code, Some(0), "{report_stderr}");
    let meant = common::ndjson(&std::fs::read(&manifest).unwrap());
    let mut live = common::ndjson(&std::fs::read(&live_out).unwrap());
    live.sort_by(|a, b| a["first_seen"].as_str().cmp(&b["first_seen"].as_str()));
    assert!(meant.len() >= 30, "{} sessions in the manifest", meant.len());

    // Every session the lab ran, in order per client host and server, as the lab meant it.
    let mut problems = Vec::new();
    let mut used = vec![false; live.len()];
    for m in &meant {
        let (ip, server) = (m["client_ip"].as_str().unwrap(), m["server"].as_str().unwrap());
        let found = live
            .iter()
            .enumerate()
            .find(|(i, r)| !used[*i] && host(r["client"].as_str().unwrap()) == ip && r["server"] == server);
        let Some((i, r)) = found else {
            problems.push(format!("{} {ip} -> {server}: no live record", m["scenario"]));
            continue;
        };
        used[i] = true;
        let at = format!("{} {} -> {server}", m["scenario"], r["client"]);
        if r["verdict"] != m["label"] {
            problems.push(format!("{at}: verdict {} but the lab did {}", r["verdict"], m["label"]));
        }
        // The ground truth's keys; the lab knows client hosts and servers, not client ports.
        for &k in common::COMPARED.iter().filter(|k| !matches!(**k, "client" | "server")) {
            if r[k] != m[k] {
                problems.push(format!("{at}: {k} {} but the lab did {}", r[k], m[k]));
            }
        }
        if m.get("uses_bdat").is_some_and(|b| b == true) && r["uses_bdat"] != true {
            problems.push(format!("{at}: BDAT not seen"));
        }
        if m.get("server_certificate_seen").is_some_and(|b| b == true) && r["cert"].is_null() {
            problems.push(format!("{at}: certificate not read"));
        }
        if let Some(alerts) = m.get("tls_alerts").and_then(Value::as_array) {
            if r["tls_alert"]["name"] != alerts[0] {
                problems.push(format!("{at}: alert {} but the lab saw {}", r["tls_alert"], alerts[0]));
            }
        }
        if r["interface"] != "any" || !r["file"].is_null() {
            problems.push(format!("{at}: live record with file {} interface {}", r["file"], r["interface"]));
        }
    }
    for (r, u) in live.iter().zip(&used) {
        if !u {
            problems.push(format!("phantom session {} -> {} ({})", r["client"], r["server"], r["verdict"]));
        }
    }
    assert!(problems.is_empty(), "{} problem(s):\n{}", problems.len(), problems.join("\n"));

    // Ctrl-C came while the last session was parked after its EHLO: reported, incomplete (e).
    let open = meant.last().unwrap();
    assert_eq!(open["label"], "incomplete");
    let s: Value = serde_json::from_str(&std::fs::read_to_string(&summary).unwrap()).unwrap();
    assert_eq!(s["kernel_drops"], 0, "{s}");

    // The -w file read back gives the same records but for file/interface.
    let again = Command::new(env!("CARGO_BIN_EXE_smtpscope"))
        .args(["-q", "-F", "json", "-r", pcap.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(again.status.success());
    let mut from_file = common::ndjson(&again.stdout);
    from_file.sort_by(|a, b| a["first_seen"].as_str().cmp(&b["first_seen"].as_str()));
    assert_eq!(from_file.len(), live.len());
    for (l, f) in live.iter_mut().zip(from_file.iter_mut()) {
        common::without_capture_keys(l);
        common::without_capture_keys(f);
        assert_eq!(l, f);
    }

    // The live check: the multi-site violations, each way, and the session Ctrl-C cut short.
    assert_eq!(check_code, Some(1), "{check_stderr}");
    let lines = common::ndjson(&std::fs::read(&check_out).unwrap());
    let listed = |outcome: &str| {
        let mut v: Vec<(String, String, String)> = lines
            .iter()
            .filter(|l| l["type"] == "session" && l["outcome"] == outcome)
            .map(|l| {
                let s = |k: &str| l[k].as_str().unwrap().to_string();
                (host(&s("client")).to_string(), s("server"), s("verdict"))
            })
            .collect();
        v.sort();
        v
    };
    let t = |a: &str, b: &str, c: &str| (a.to_string(), b.to_string(), c.to_string());
    assert_eq!(
        listed("violation"),
        [
            t("10.1.0.12", "10.2.0.22:25", "starttls"),
            t("10.2.0.12", "10.1.0.22:25", "starttls-offered-unused"),
            t("10.3.2.11", "10.2.0.21:25", "starttls-offered-unused"),
        ]
    );
    assert_eq!(listed("unproven"), [t("10.3.3.12", "10.2.0.21:25", "incomplete")]);
    // (kept when the test fails: logs, manifest, records and the capture are there)
    let _ = std::fs::remove_dir_all(&state);
}
