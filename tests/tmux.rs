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
    let started = t.cmd(&[
        "new-session",
        "-d",
        "-s",
        "t",
        "-x",
        "100",
        "-y",
        "30",
        "-e",
        "NO_COLOR=",
        "-e",
        "TERM=xterm-256color",
        &shell,
    ]);
    assert!(started.status.success(), "{}", String::from_utf8_lossy(&started.stderr));

    let s = t.wait("the capture to be read", |s| s.contains("read 101 pkts"));
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
    assert!(t.cmd(&["new-session", "-d", "-s", "t", "-x", "80", "-y", "24", &shell]).status.success());
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
