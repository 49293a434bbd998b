//! Live capture end to end, with real SMTP software on loopback: the records printed live
//! equal those from reading the `-w` file afterwards (but for `file`/`interface`), Ctrl-C ends
//! the run cleanly, and root is given up once the device is open.
//!
//! Needs root; runs when `SMTPSCOPE_LIVE_TEST=1` (set by `.ci/run`), else says it skipped.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn enabled() -> bool {
    common::root_and("SMTPSCOPE_LIVE_TEST", "the live capture test")
}

fn records(out: &[u8]) -> Vec<serde_json::Value> {
    common::ndjson(out)
}

/// Reads the child's stderr (which it takes) until smtpscope says it listens, for at most 10 s.
/// Returns the reader: keep it while the child runs, or its later messages meet a closed pipe.
fn wait_until_listening(child: &mut std::process::Child) -> BufReader<std::process::ChildStderr> {
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !line.contains("listening on") {
        line.clear();
        assert!(err.read_line(&mut line).unwrap() > 0, "smtpscope ended before listening");
        assert!(Instant::now() < deadline);
    }
    err
}

/// Starts smtpscope with `args`, waits until it listens, runs the real loopback sessions on
/// `port`, lets it see them, then sends `signal`. Returns the pid (while running) check and the output.
fn capture_around_sessions(
    args: &[&str],
    port: u16,
    signal: i32,
    while_running: impl FnOnce(u32),
) -> std::process::Output {
    let mut child = common::spawn_piped(args);
    let pid = child.id();
    let _stderr = wait_until_listening(&mut child);
    while_running(pid);
    let py = Command::new("python3")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/lab/loopback_smtp.py"))
        .arg(port.to_string())
        .status()
        .unwrap();
    assert!(py.success());
    std::thread::sleep(Duration::from_millis(1500));
    // SAFETY: signalling our own child.
    unsafe { libc::kill(pid as i32, signal) };
    child.wait_with_output().unwrap()
}

fn status_field(pid: u32, name: &str) -> String {
    field(&std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default(), name)
}

#[test]
fn live_records_equal_the_written_file_and_root_is_dropped() {
    if !enabled() {
        return;
    }
    let scratch = common::scratch("live");
    let dir = scratch.path();
    let pcap = dir.join("live.pcap");
    let summary = dir.join("summary.json");
    let port = 20_000 + (std::process::id() % 20_000) as u16;
    let filter = format!("tcp port {port}");
    let args =
        ["-i", "lo", "-F", "json", "-w", pcap.to_str().unwrap(), "--summary", summary.to_str().unwrap(), &filter];
    let out = capture_around_sessions(&args, port, libc::SIGINT, |pid| {
        // Least privilege: no longer root (real, effective, saved), no group of root's, no
        // capabilities left, effective or permitted.
        assert_eq!(status_field(pid, "Uid:").split_whitespace().collect::<Vec<_>>(), ["65534"; 4]);
        assert!(status_field(pid, "Gid:").split_whitespace().all(|g| g != "0"));
        assert!(status_field(pid, "Groups:").split_whitespace().all(|g| g != "0"));
        assert_eq!(status_field(pid, "CapEff:"), "0000000000000000");
        assert_eq!(status_field(pid, "CapPrm:"), "0000000000000000");
        assert_eq!(status_field(pid, "NoNewPrivs:"), "1");
    });
    assert!(out.status.success());

    let live = records(&out.stdout);
    let verdicts: Vec<&str> = live.iter().map(|r| r["verdict"].as_str().unwrap()).collect();
    assert_eq!(verdicts, ["plaintext", "starttls-refused"]);
    assert_eq!(live[0]["helo"], "live-client.example");
    assert_eq!(live[1]["starttls_reply"].as_u64().map(|c| c >= 500), Some(true));
    assert_eq!(live[0]["interface"], "lo");
    assert_eq!(live[0]["file"], serde_json::Value::Null);

    let again = Command::new(env!("CARGO_BIN_EXE_smtpscope"))
        .args(["-q", "-F", "json", "-r", pcap.to_str().unwrap()])
        .output()
        .unwrap();
    let mut from_file = records(&again.stdout);
    assert_eq!(from_file.len(), live.len());
    for (l, f) in live.iter().zip(from_file.iter_mut()) {
        // The -w file is named by the live record, with the frames of the file.
        assert_eq!(l["pcap_file"], pcap.to_str().unwrap());
        assert_eq!(l["evidence"][1]["file"], pcap.to_str().unwrap());
        let mut l = l.clone();
        common::without_capture_keys(&mut l);
        common::without_capture_keys(f);
        assert_eq!(&l, f);
    }
    let s: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&summary).unwrap()).unwrap();
    assert_eq!(s["kernel_drops"], 0);
}

#[test]
fn check_runs_live_and_exits_with_the_policy_result() {
    if !enabled() {
        return;
    }
    let port = 40_000 + (std::process::id() % 20_000) as u16;
    let filter = format!("tcp port {port}");
    let args =
        ["check", "-i", "lo", "--expect", "tls", "--between", "127.0.0.1", "127.0.0.1", "--duration", "30s", &filter];
    let out = capture_around_sessions(&args, port, libc::SIGTERM, |_| {});
    let text = String::from_utf8_lossy(&out.stdout);
    // Both loopback sessions carried mail in clear: a TLS policy is violated.
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("2 matched, 0 passed, 2 violated"), "{text}");
}

/// Starts a live capture with `args` and `env`, and returns its uid and gid lines once it listens.
fn ids_once_listening(args: &[&str], env: &[(&str, &str)]) -> (String, String) {
    let status = status_once_listening(Command::new(env!("CARGO_BIN_EXE_smtpscope")), args, env);
    (field(&status, "Uid:"), field(&status, "Gid:"))
}

fn field(status: &str, name: &str) -> String {
    status.lines().find_map(|l| l.strip_prefix(name)).map(|v| v.trim().to_string()).unwrap_or_default()
}

/// Runs `cmd` with `args` and `env`, and returns its /proc status once it listens.
fn status_once_listening(mut cmd: Command, args: &[&str], env: &[(&str, &str)]) -> String {
    cmd.args(args).stdout(Stdio::null()).stderr(Stdio::piped());
    for k in ["SUDO_UID", "SUDO_GID", "SUDO_USER"] {
        cmd.env_remove(k);
    }
    cmd.envs(env.iter().copied());
    let mut child = cmd.spawn().unwrap();
    let pid = child.id();
    let _stderr = wait_until_listening(&mut child);
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    // SAFETY: signalling our own child.
    unsafe { libc::kill(pid as i32, libc::SIGINT) };
    child.wait().unwrap();
    status
}

#[test]
fn a_non_root_capture_given_capabilities_gives_them_up_once_listening() {
    if !enabled() {
        return;
    }
    // As after `setcap cap_net_raw,cap_net_admin=eip`: an unprivileged user with the two
    // capabilities a capture needs (setpriv passes them on as ambient capabilities).
    let mut cmd = Command::new("setpriv");
    cmd.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=+net_raw,+net_admin"])
        .args(["--ambient-caps=+net_raw,+net_admin", env!("CARGO_BIN_EXE_smtpscope")]);
    let status = status_once_listening(cmd, &["-i", "lo", "-F", "json", "tcp port 9"], &[]);
    assert_eq!(field(&status, "Uid:").split_whitespace().next(), Some("65534"));
    for set in ["CapEff:", "CapPrm:", "CapInh:", "CapAmb:"] {
        assert_eq!(field(&status, set), "0000000000000000", "{set}");
    }
    assert_eq!(field(&status, "NoNewPrivs:"), "1");
}

#[test]
fn root_drops_to_the_sudo_caller_and_z_overrides_it() {
    if !enabled() {
        return;
    }
    let live = ["-i", "lo", "-F", "json", "tcp port 9"];
    let sudo = [("SUDO_UID", "4321"), ("SUDO_GID", "4322"), ("SUDO_USER", "someone")];
    let (uid, gid) = ids_once_listening(&live, &sudo);
    assert_eq!(uid.split_whitespace().collect::<Vec<_>>(), ["4321"; 4]);
    assert_eq!(gid.split_whitespace().collect::<Vec<_>>(), ["4322"; 4]);
    let with_z = [&["-Z", "nobody"][..], &live[..]].concat();
    let (uid, _) = ids_once_listening(&with_z, &sudo);
    assert_eq!(uid.split_whitespace().next(), Some("65534"), "-Z wins over the sudo caller");
}
