//! The real binary in a real terminal: tmux at a fixed size runs `smtpscope -r demo.pcap`, and
//! the test types as a user would (filter `verdict:starttls`, open the TLS tab, quit), polling
//! the screen up to a deadline instead of sleeping. Needs tmux (`.ci/run` installs it and sets
//! SMTPSCOPE_REQUIRE_TMUX); without it the test says it skipped.

mod common;

use std::process::{Command, Output};
use std::time::{Duration, Instant};

struct Tmux {
    socket: String,
}

impl Tmux {
    fn cmd(&self, args: &[&str]) -> Output {
        Command::new("tmux").arg("-L").arg(&self.socket).args(args).output().expect("run tmux")
    }

    /// Opens session `t`, `cols`×`rows`, with `env` (`NAME=VALUE` each), running `shell`.
    fn start(&self, cols: u16, rows: u16, env: &[&str], shell: &str) {
        let (cols, rows) = (cols.to_string(), rows.to_string());
        let mut args = vec!["new-session", "-d", "-s", "t", "-x", &cols, "-y", &rows];
        for e in env {
            args.extend(["-e", e]);
        }
        args.push(shell);
        let started = self.cmd(&args);
        assert!(started.status.success(), "{}", String::from_utf8_lossy(&started.stderr));
    }

    fn screen(&self) -> String {
        String::from_utf8_lossy(&self.cmd(&["capture-pane", "-p", "-t", "t"]).stdout).into_owned()
    }

    fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", "t"];
        args.extend_from_slice(keys);
        assert!(self.cmd(&args).status.success());
    }

    /// Polls the screen until `pred` holds, failing with the last screen at the deadline.
    fn wait(&self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let s = self.screen();
            if pred(&s) {
                return s;
            }
            assert!(Instant::now() < deadline, "timed out waiting for {what}; screen:\n{s}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.cmd(&["kill-server"]);
    }
}

fn tmux_available() -> bool {
    let ok = Command::new("tmux").arg("-V").output().is_ok_and(|o| o.status.success());
    if !ok {
        assert!(std::env::var_os("SMTPSCOPE_REQUIRE_TMUX").is_none(), "tmux required but not installed");
        common::skipped("tmux end-to-end test", "tmux is not installed");
    }
    ok
}

#[test]
fn filter_then_tls_tab_then_quit_in_a_real_terminal() {
    if !tmux_available() {
        return;
    }
    let t = Tmux { socket: format!("smtpscope-test-{}", std::process::id()) };
    let demo = common::bundled().join("demo.pcap");
    let shell = format!(
        "cd {} && {} -r {}; echo SMTPSCOPE-EXIT $?; sleep 60",
        std::env::temp_dir().display(),
        env!("CARGO_BIN_EXE_smtpscope"),
        demo.display()
    );
    t.start(100, 30, &["NO_COLOR=", "TERM=xterm-256color"], &shell);

    // The whole frame: tmux may show one the terminal is still painting (header before rows).
    let s = t.wait("the capture to be read", |s| s.contains("read 101 pkts") && s.contains("40003"));
    assert!(s.contains("Sessions 3/3"), "{s}");
    for port in ["40001", "40002", "40003"] {
        assert!(s.contains(port), "{port} missing:\n{s}");
    }

    t.keys(&["/"]);
    t.keys(&["-l", "verdict:starttls"]);
    t.wait("live validation", |s| s.lines().last().is_some_and(|l| l.starts_with("/ verdict:starttls")));
    t.keys(&["Enter"]);
    let s = t.wait("the filter to apply", |s| s.contains("Sessions 1/3 (filtered)"));
    assert!(s.contains("filter: verdict:starttls"), "{s}");
    assert!(s.contains("10.231.0.1:40001") && !s.contains("40002") && !s.contains("40003"), "{s}");

    t.keys(&["2"]);
    let s = t.wait("the TLS tab", |s| s.contains("Sending certificate"));
    assert!(s.contains("certificate not visible (TLS 1.3"), "{s}");
    assert!(s.contains("ServerHello") && s.contains("TLS1.3"), "{s}");

    t.keys(&["q"]);
    let s = t.wait("smtpscope to exit", |s| s.contains("SMTPSCOPE-EXIT"));
    assert!(s.contains("SMTPSCOPE-EXIT 0"), "{s}");
    assert!(s.contains("3 SMTP session(s)"), "the summary follows the UI on stderr:\n{s}");
}

#[test]
fn the_ui_exits_when_its_terminal_goes_away() {
    if !tmux_available() {
        return;
    }
    let t = Tmux { socket: format!("smtpscope-hup-{}", std::process::id()) };
    let pidfile = std::env::temp_dir().join(format!("smtpscope-hup-{}.pid", std::process::id()));
    let shell = format!(
        "echo $$ > {}; exec {} -r {}",
        pidfile.display(),
        env!("CARGO_BIN_EXE_smtpscope"),
        common::bundled().join("demo.pcap").display()
    );
    t.start(80, 24, &[], &shell);
    t.wait("the UI", |s| s.contains("read 101 pkts"));
    let pid: i32 = std::fs::read_to_string(&pidfile).unwrap().trim().parse().unwrap();
    let _ = std::fs::remove_file(&pidfile);
    t.cmd(&["kill-server"]);
    let deadline = Instant::now() + Duration::from_secs(10);
    // SAFETY: signal 0 only checks that the process exists.
    while unsafe { libc::kill(pid, 0) } == 0 {
        let zombie = std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| s.contains(") Z "));
        if zombie {
            break;
        }
        assert!(Instant::now() < deadline, "smtpscope {pid} still runs after its terminal went away");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Held by each live test: one's loopback sessions would show in the other's UI.
static LOOPBACK: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[test]
fn a_live_run_that_gave_up_root_names_the_user_and_the_fix_when_it_cannot_export() {
    if !tmux_available() || !common::root_and("SMTPSCOPE_LIVE_TEST", "the live export test") {
        return;
    }
    let _lo = LOOPBACK.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    // A directory only root may write: the run becomes nobody, who may not.
    let dir = std::env::temp_dir().join(format!("smtpscope-rootonly-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let t = Tmux { socket: format!("smtpscope-test-export-{}", std::process::id()) };
    let shell = format!(
        "cd {} && {} -i lo -Z nobody --tui; echo SMTPSCOPE-EXIT $?; sleep 60",
        dir.display(),
        env!("CARGO_BIN_EXE_smtpscope")
    );
    // Wide enough for the whole advice whatever the length of the temporary path in it.
    t.start(240, 30, &["TERM=xterm-256color"], &shell);
    let s = t.wait("the start note", |s| s.contains("exports cannot be written"));
    assert!(s.contains("as nobody (uid 65534)") && s.contains("--export-dir"), "{s}");
    smtp_on_loopback();
    t.wait("the session", |s| s.contains("Sessions 1/1"));
    t.keys(&["e"]);
    t.keys(&["n"]);
    let s = t.wait("the export to fail", |s| s.contains("export failed"));
    assert!(s.contains("this live run writes as nobody (uid 65534) since it gave up root: use --export"), "{s}");
    t.keys(&["q"]);
    t.wait("smtpscope to exit", |s| s.contains("SMTPSCOPE-EXIT"));
    // An --export-dir that user may not write is refused at start.
    let o = Command::new(env!("CARGO_BIN_EXE_smtpscope"))
        .args(["-i", "lo", "-Z", "nobody", "--tui", "--export-dir", dir.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("not writable by nobody (uid 65534)") && err.contains("-Z USER"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// One short SMTP dialogue over loopback (greeting, EHLO, QUIT), so that a live run has a
/// session to export.
fn smtp_on_loopback() {
    smtp_dialogue(std::net::TcpListener::bind("127.0.0.1:0").unwrap());
}

/// [`smtp_on_loopback`] to a server listening on `listener`.
fn smtp_dialogue(listener: std::net::TcpListener) {
    use std::io::{BufRead, BufReader, Write};
    let addr = listener.local_addr().unwrap();
    let server = std::thread::spawn(move || {
        let (sock, _) = listener.accept().unwrap();
        let mut w = sock.try_clone().unwrap();
        let mut r = BufReader::new(sock);
        w.write_all(b"220 mx.test ESMTP\r\n").unwrap();
        for reply in [&b"250 mx.test\r\n"[..], b"221 bye\r\n"] {
            let mut line = String::new();
            r.read_line(&mut line).unwrap();
            w.write_all(reply).unwrap();
        }
    });
    let sock = std::net::TcpStream::connect(addr).unwrap();
    let mut w = sock.try_clone().unwrap();
    let mut r = BufReader::new(sock);
    let mut line = String::new();
    r.read_line(&mut line).unwrap();
    for cmd in [&b"EHLO client.test\r\n"[..], b"QUIT\r\n"] {
        w.write_all(cmd).unwrap();
        line.clear();
        r.read_line(&mut line).unwrap();
    }
    drop((w, r));
    server.join().unwrap();
}

/// Whole NDJSON records of `path` (empty while it does not exist); a broken line fails.
fn records(path: &std::path::Path) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    assert!(text.is_empty() || text.ends_with('\n'), "{} ends inside a record", path.display());
    text.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"))).collect()
}

/// Polls until `path` holds `n` records (records are written as sessions end, not at exit).
fn wait_records(path: &std::path::Path, n: usize) -> Vec<serde_json::Value> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = records(path);
        if r.len() >= n || Instant::now() > deadline {
            assert_eq!(r.len(), n, "{}", path.display());
            return r;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn with_output_the_ui_opens_only_when_asked_and_then_writes_the_records_and_the_pid_file() {
    if !tmux_available() {
        return;
    }
    let scratch = common::scratch("tui-output");
    let dir = scratch.path();
    let (plain, shown, pid) = (dir.join("plain.ndjson"), dir.join("tui.ndjson"), dir.join("smtpscope.pid"));
    let bin = env!("CARGO_BIN_EXE_smtpscope");
    let demo = common::bundled().join("demo.pcap");
    // The first run must end by itself (no UI to quit) for the second to start.
    let shell = format!(
        "cd {d} && {bin} -q -r {demo} --output {plain}; {bin} -r {demo} --tui --output {shown} --pidfile {pid}; echo SMTPSCOPE-EXIT $?; sleep 60",
        d = dir.display(),
        demo = demo.display(),
        plain = plain.display(),
        shown = shown.display(),
        pid = pid.display()
    );
    let t = Tmux { socket: format!("smtpscope-tui-output-{}", std::process::id()) };
    t.start(100, 30, &["TERM=xterm-256color"], &shell);
    let s = t.wait("the UI of the second run", |s| s.contains("read 101 pkts"));
    assert!(s.contains("Sessions 3/3"), "{s}");
    assert_eq!(records(&plain).len(), 3, "without --tui: the records went to the file, no UI opened");
    let written = wait_records(&shown, 3);
    assert!(written.iter().all(|r| r["verdict"].is_string()));
    let running: u32 = std::fs::read_to_string(&pid).expect("the pid file while the UI runs").trim().parse().unwrap();
    assert!(std::path::Path::new(&format!("/proc/{running}")).exists());
    t.keys(&["q"]);
    let s = t.wait("smtpscope to exit", |s| s.contains("SMTPSCOPE-EXIT"));
    assert!(s.contains("SMTPSCOPE-EXIT 0"), "{s}");
    assert!(!pid.exists(), "the pid file is removed at exit");
    assert_eq!(records(&shown).len(), 3, "each record once");
}

#[test]
fn a_live_ui_with_sensor_options_writes_the_ring_the_records_and_the_metrics_and_ends_on_a_hang_up() {
    if !tmux_available() || !common::root_and("SMTPSCOPE_SENSOR_TEST", "the live sensor UI test") {
        return;
    }
    let _lo = LOOPBACK.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    use std::io::{Read, Write};
    use std::os::unix::fs::PermissionsExt;
    let scratch = common::scratch("tui-sensor");
    let dir = scratch.path();
    // The run becomes nobody: rotation and the ring create files as that user.
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    let (out, ring, pid) = (dir.join("s.ndjson"), dir.join("ring.pcap"), dir.join("smtpscope.pid"));
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let smtp = listener.local_addr().unwrap().port();
    let metrics = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let shell = format!(
        "{bin} -i lo -Z nobody --tui --sensor tui-sensor --output {out} --rotate 1K -w {ring} -C 1 -W 3 --metrics {metrics} --pidfile {pid} 'tcp port {smtp}'; echo SMTPSCOPE-EXIT $?; sleep 60",
        bin = env!("CARGO_BIN_EXE_smtpscope"),
        out = out.display(),
        ring = ring.display(),
        pid = pid.display()
    );
    let t = Tmux { socket: format!("smtpscope-tui-sensor-{}", std::process::id()) };
    t.start(160, 30, &["TERM=xterm-256color"], &shell);
    t.wait("the UI", |s| s.contains("interface lo"));
    smtp_dialogue(listener);
    t.wait("the session", |s| s.contains("Sessions 1/1"));
    let recs = wait_records(&out, 1);
    assert_eq!(recs[0]["sensor"], "tui-sensor");
    let pcap_file = recs[0]["pcap_file"].as_str().expect("pcap_file names the ring file");
    assert!(pcap_file.starts_with(ring.to_str().unwrap()), "{pcap_file}");
    let mut c = std::net::TcpStream::connect(("127.0.0.1", metrics)).unwrap();
    write!(c, "GET /metrics HTTP/1.0\r\n\r\n").unwrap();
    let mut exposition = String::new();
    c.read_to_string(&mut exposition).unwrap();
    let sessions: f64 = exposition
        .lines()
        .filter(|l| l.starts_with("smtpscope_sessions_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert_eq!(sessions, 1.0, "{exposition}");
    let running: i32 = std::fs::read_to_string(&pid).unwrap().trim().parse().unwrap();
    // SAFETY: a hang-up to the smtpscope this test started.
    unsafe { libc::kill(running, libc::SIGHUP) };
    let s = t.wait("the hang-up to end the run", |s| s.contains("SMTPSCOPE-EXIT"));
    assert!(s.contains("SMTPSCOPE-EXIT 0"), "{s}");
    assert!(!pid.exists(), "the pid file is removed at exit");
    assert_eq!(records(&out).len(), 1, "the record once, nothing lost at exit");
    let again =
        Command::new(env!("CARGO_BIN_EXE_smtpscope")).args(["-q", "-F", "json", "-r", pcap_file]).output().unwrap();
    assert!(again.status.success(), "the ring file reads back");
    assert_eq!(common::ndjson(&again.stdout).len(), 1);
}

#[test]
fn with_logs_the_ui_shows_log_agreement_and_the_log_tab_in_a_real_terminal() {
    if !tmux_available() {
        return;
    }
    let t = Tmux { socket: format!("smtpscope-logs-{}", std::process::id()) };
    let d = common::bundled().join("logs");
    // The server's log claims TLS on one session the wire saw in clear: that one differs.
    let scratch = common::scratch("tmuxlogs");
    let srv = common::log_claiming_tls(scratch.path());
    let shell = format!(
        "cd {} && {} -r {} --logs {} --logs {} --log-tz UTC --log-skew 1s; echo SMTPSCOPE-EXIT $?; sleep 60",
        std::env::temp_dir().display(),
        env!("CARGO_BIN_EXE_smtpscope"),
        d.join("postfix-pairs.pcap").display(),
        srv.display(),
        d.join("postfix-cli.maillog").display(),
    );
    t.start(200, 50, &["NO_COLOR=", "TERM=xterm-256color"], &shell);
    let s = t.wait("the capture and its logs", |s| s.contains("Sessions 16/16") && s.contains("agree"));
    assert!(s.lines().any(|l| l.contains("VERDICT") && l.contains("LOG")), "{s}");
    assert!(s.contains("differ"), "{s}");

    t.keys(&["/"]);
    t.keys(&["-l", "log:differ"]);
    t.keys(&["Enter"]);
    t.wait("the log filter", |s| s.contains("(filtered)") && !s.contains(" agree "));
    t.keys(&["5"]);
    let s = t.wait("the Log tab", |s| s.contains("logged line(s)"));
    assert!(s.contains("postfix-smtpd · differs") && s.contains("Differences"), "{s}");
    assert!(s.contains("connect from"), "{s}");

    t.keys(&["q"]);
    let s = t.wait("smtpscope to exit", |s| s.contains("SMTPSCOPE-EXIT"));
    assert!(s.contains("SMTPSCOPE-EXIT 0"), "{s}");
    assert!(s.contains("wire session(s) matched"), "the cross-check's line follows the UI on stderr:\n{s}");
}

/// The real logs `smtpscope logs` is pointed at in the tests: the lab's Postfix server log and
/// Exchange-style protocol log, and the published Exchange 2013+ excerpt (as in ../shared/logs).
fn real_logs() -> Vec<std::path::PathBuf> {
    let d = common::bundled().join("logs");
    vec![
        d.join("postfix-srv.maillog"),
        d.join("exchange-RECV.LOG"),
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data/logs/exchange/recv-2013plus-starttls-tls12-oneline-cert.log"),
    ]
}

fn joined(paths: &[std::path::PathBuf]) -> String {
    paths.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(" ")
}

#[test]
fn logs_on_a_terminal_opens_the_ui_with_each_log_session_a_row_its_filter_and_its_log_tab() {
    if !tmux_available() {
        return;
    }
    let t = Tmux { socket: format!("smtpscope-logsui-{}", std::process::id()) };
    let shell = format!(
        "cd {} && {} logs {} --log-tz UTC; echo SMTPSCOPE-EXIT $?; sleep 60",
        std::env::temp_dir().display(),
        env!("CARGO_BIN_EXE_smtpscope"),
        joined(&real_logs())
    );
    t.start(160, 45, &["NO_COLOR=", "TERM=xterm-256color"], &shell);
    // 13 Postfix sessions, 3 of the lab's Exchange-style server, the published one.
    // Waited for as a whole: the header can count the last rows a frame before the detail pane
    // has drawn the selected one.
    let s = t.wait("the logs read and the first row's Log tab drawn", |s| {
        s.contains("read 192 log lines") && s.contains("Sessions 17/17") && s.contains("logged line(s)")
    });
    assert!(s.lines().any(|l| l.contains("SOURCE") && l.contains("VERDICT") && !l.contains("BYTES")), "{s}");
    assert!(s.contains("exchange-receive") && s.contains("postfix-smtpd"), "{s}");
    assert!(s.contains("95.10.20.33:56026") && s.contains("starttls-failed"), "{s}");
    // The Log tab is the first a log session shows: its file, session and lines.
    assert!(s.contains("5 Log") && s.contains("· log session") && s.contains("logged line(s)"), "{s}");

    t.keys(&["/"]);
    t.keys(&["-l", "verdict:starttls-faild"]);
    t.wait("live validation of a typo", |s| s.lines().last().is_some_and(|l| l.contains("not a verdict")));
    t.keys(&["C-u"]);
    t.keys(&["-l", "verdict:starttls-failed"]);
    t.wait("live validation", |s| s.lines().last().is_some_and(|l| l.starts_with("/ verdict:starttls-failed")));
    t.keys(&["Enter"]);
    // Waited for, not asserted on the first frame that counts 2: a capture can catch the
    // terminal half way through drawing a frame (where synchronized output is not honoured),
    // the old table's rows still below the new one.
    t.wait("the filter to apply and the other rows to go", |s| {
        s.contains("Sessions 2/17 (filtered)")
            && !s.lines().any(|l| l.contains(" plaintext ") && l.contains("postfix-smtpd"))
    });
    let s = t.wait("the Log tab of the first failed session", |s| {
        s.contains("SSL_accept error") && s.contains("postfix-smtpd · log session")
    });
    assert!(s.contains("postfix-smtpd · log session") && s.contains("mx12/postfix/smtpd[6519]"), "{s}");
    t.keys(&["1"]);
    t.wait("the Transcript tab saying there is none", |s| s.contains("a log session carries no transcript"));

    t.keys(&["q"]);
    let s = t.wait("smtpscope to exit", |s| s.contains("SMTPSCOPE-EXIT"));
    assert!(s.contains("SMTPSCOPE-EXIT 0"), "{s}");
    assert!(
        s.contains("smtpscope logs: 3 file(s), 192 lines, 192 recognised, 17 session(s)"),
        "the summary follows:\n{s}"
    );
}

#[test]
fn logs_prints_as_before_when_piped_or_given_a_format_and_its_ui_exits_2_on_nothing_recognised() {
    let bin = env!("CARGO_BIN_EXE_smtpscope");
    let logs = real_logs();
    let paths: Vec<&str> = logs.iter().map(|p| p.to_str().unwrap()).collect();
    // Piped: the table (no UI), and -F json the log records, byte for byte what the reader makes.
    let mut args = vec!["logs", "--log-tz", "UTC", "-q"];
    args.extend(&paths);
    let table = Command::new(bin).args(&args).output().unwrap();
    assert!(table.status.success());
    let table = String::from_utf8(table.stdout).unwrap();
    assert!(table.starts_with("TIME (UTC)          SOURCE"), "{table}");
    assert_eq!(table.lines().count(), 18, "{table}");
    args.extend(["-F", "json"]);
    let json = Command::new(bin).args(&args).output().unwrap();
    let opts = smtpscope::logs::LogOptions { tz: jiff::tz::TimeZone::UTC, ..Default::default() };
    let mut want = Vec::new();
    for p in &paths {
        smtpscope::logs::read_path(p, &opts, &mut |r| {
            smtpscope::report::logs::write_line(&mut want, &r);
            want.push(b'\n');
        })
        .unwrap();
    }
    assert_eq!(String::from_utf8_lossy(&json.stdout), String::from_utf8_lossy(&want));
    if !tmux_available() {
        return;
    }
    let scratch = common::scratch("logs-tui-none");
    let junk = scratch.path().join("notes.txt");
    std::fs::write(&junk, "not a mail log\n").unwrap();
    let t = Tmux { socket: format!("smtpscope-logsprint-{}", std::process::id()) };
    // On a terminal -F and --no-tui print; then a UI over a file with no log line in it.
    let shell = format!(
        "{bin} logs -q -F json {srv} --log-tz UTC | head -c 0; {bin} logs -q -F csv {srv} --log-tz UTC | tail -1; echo PRINTED-$?; {bin} logs -q --no-tui {srv} --log-tz UTC | tail -1; {bin} logs {junk}; echo SMTPSCOPE-EXIT $?; sleep 60",
        srv = paths[0],
        junk = junk.display()
    );
    t.start(200, 40, &["TERM=xterm-256color"], &shell);
    let s = t.wait("the UI over a file with no log line", |s| s.contains("no input held a recognisable"));
    assert!(s.contains("no SMTP session in these logs"), "{s}");
    t.keys(&["q"]);
    let s = t.wait("smtpscope to exit", |s| s.contains("SMTPSCOPE-EXIT"));
    assert!(s.contains("SMTPSCOPE-EXIT 2"), "{s}");
    assert!(s.contains("PRINTED-0"), "{s}");
    assert!(s.lines().any(|l| l.starts_with("2026-12-07T03:13:57") && l.contains("plaintext")), "the table: {s}");
}
