//! The command line as a user meets it: exit codes, errors on one line, truncated files,
//! BPF filters, merged inputs, and stdout carrying only records.

mod common;

use std::process::{Command, Output};

fn smtpscope(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_smtpscope")).args(args).output().expect("run smtpscope")
}

fn demo() -> String {
    common::bundled().join("demo.pcap").to_string_lossy().into_owned()
}

fn json_lines(o: &Output) -> Vec<serde_json::Value> {
    common::ndjson(&o.stdout)
}

#[test]
fn table_lists_each_session_with_its_verdict() {
    let o = smtpscope(&["-r", &demo(), "--color", "never"]);
    assert!(o.status.success());
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(out.lines().count(), 4, "{out}");
    for v in ["starttls ", "starttls-offered-unused", "plaintext"] {
        assert!(out.contains(v), "{v} missing in\n{out}");
    }
    assert!(!out.contains('\u{1b}'));
    assert!(String::from_utf8_lossy(&o.stderr).contains("3 SMTP session(s)"));
}

#[test]
fn every_json_line_has_every_schema_key() {
    let o = smtpscope(&["-q", "-r", &demo(), "--format", "json"]);
    assert!(o.status.success());
    let lines = json_lines(&o);
    assert_eq!(lines.len(), 3);
    let keys: Vec<String> = lines[0].as_object().unwrap().keys().cloned().collect();
    for k in [
        "schema_version",
        "community_id",
        "file",
        "client",
        "server",
        "first_seen",
        "last_seen",
        "tunnel",
        "helo",
        "banner",
        "ehlo_extensions",
        "starttls_offered",
        "upgrade_verb",
        "starttls_sent",
        "starttls_reply",
        "tls_handshake",
        "tls_version",
        "cipher",
        "sni",
        "alpn",
        "cert",
        "tls_alert",
        "mail_transactions",
        "messages_accepted",
        "rcpt_count",
        "bytes_client",
        "bytes_server",
        "clean_close",
        "auth_mechanisms",
        "verdict",
        "evidence",
        "findings",
    ] {
        assert!(keys.iter().any(|x| x == k), "missing key {k}");
    }
    for l in &lines {
        let k2: Vec<String> = l.as_object().unwrap().keys().cloned().collect();
        assert_eq!(k2, keys, "every line carries the same keys");
    }
    assert!(lines[0]["first_seen"].as_str().unwrap().ends_with('Z'));
}

#[test]
fn a_truncated_capture_warns_reports_what_it_saw_and_exits_0() {
    let bytes = std::fs::read(demo()).unwrap();
    let (_dir, cut) = common::scratch_file("cut.pcap");
    // Cut inside the second session, in the middle of a packet.
    std::fs::write(&cut, &bytes[..bytes.len() * 2 / 3 + 7]).unwrap();
    let o = smtpscope(&["-r", cut.to_str().unwrap(), "-F", "json"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("warning") && err.contains("read stopped"), "{err}");
    let lines = json_lines(&o);
    assert!(lines.len() >= 2, "sessions seen before the cut are reported");
    assert_eq!(lines[0]["verdict"], "starttls");
}

#[test]
fn a_missing_file_is_a_one_line_error_and_exit_2() {
    let o = smtpscope(&["-r", "/nonexistent/x.pcap"]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("/nonexistent/x.pcap"));
}

#[test]
fn a_file_that_is_not_a_capture_is_exit_2() {
    let (_dir, p) = common::scratch_file("garbage.pcap");
    std::fs::write(&p, b"this is not a pcap file at all, just text\n").unwrap();
    let o = smtpscope(&["-r", p.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn a_bad_bpf_expression_is_exit_2_with_libpcaps_message() {
    let o = smtpscope(&["-r", &demo(), "port", "notaport"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("bad capture filter"));
}

#[test]
fn a_bpf_filter_selects_sessions() {
    let o = smtpscope(&["-q", "-r", &demo(), "-F", "json", "tcp", "port", "2526"]);
    assert!(o.status.success());
    let lines = json_lines(&o);
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["verdict"], "plaintext");
}

#[test]
fn frames_keep_their_numbers_in_the_file_whatever_the_bpf_filter_skips() {
    let demo_path = demo();
    let frames = |extra: &[&str]| -> Vec<serde_json::Value> {
        let mut args = vec!["-q", "-r", &demo_path, "-F", "json"];
        args.extend_from_slice(extra);
        let o = smtpscope(&args);
        let port_2526 = json_lines(&o).into_iter().find(|r| r["server"] == "10.231.0.2:2526").expect("session");
        port_2526["evidence"].as_array().unwrap().iter().map(|e| e["frame"].clone()).collect()
    };
    let unfiltered = frames(&[]);
    assert!(unfiltered.iter().any(|f| f.as_u64().is_some_and(|n| n > 70)), "{unfiltered:?}");
    assert_eq!(frames(&["tcp", "port", "2526"]), unfiltered);
}

#[test]
fn a_bpf_filter_judges_length_on_the_wire_as_tcpdump_does() {
    // tcpdump -r captures/demo.pcap 'greater 1000' lists 4 of its 101 frames.
    let (_dir, sum) = common::scratch_file("summary.json");
    let o = smtpscope(&["-q", "-r", &demo(), "-F", "json", "--summary", sum.to_str().unwrap(), "greater", "1000"]);
    assert!(o.status.success());
    let summary: serde_json::Value = serde_json::from_slice(&std::fs::read(&sum).unwrap()).unwrap();
    assert_eq!(summary["packets"], 4, "packets the filter kept");
    assert_eq!(summary["sources"][0]["packets"], 101, "packets read from the file");
}

#[test]
fn options_may_follow_the_bpf_expression_as_with_tcpdump() {
    let o = smtpscope(&["-r", &demo(), "tcp port 2526", "-F", "json", "-q"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(json_lines(&o).len(), 1);
    assert!(o.stderr.is_empty(), "-q after the expression is an option, not filter text");
}

#[test]
fn live_only_options_without_an_interface_are_a_usage_error() {
    for args in [&["--duration", "3s"][..], &["-Z", "nobody"], &["-p"], &["-s", "96"], &["-s", "262144"]] {
        let mut all = vec!["-r", "captures/demo.pcap"];
        all.extend_from_slice(args);
        let o = smtpscope(&all);
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        assert!(String::from_utf8_lossy(&o.stderr).contains("applies to live capture (-i) only"), "{args:?}");
    }
    // -w with files belongs to the main command (the reported sessions' packets).
    let o = smtpscope(&["check", "-r", "captures/demo.pcap", "-w", "x.pcap", "--expect", "tls", "--between", "*", "*"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("-w applies to live capture (-i), or to `smtpscope -r FILE"));
}

#[test]
fn a_packet_count_applies_to_files_as_with_tcpdump() {
    let o = smtpscope(&["-r", &demo(), "-c", "50", "-F", "json"]);
    assert!(o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).starts_with("smtpscope: 50 packets,"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
fn w_with_r_writes_the_packets_of_the_sessions_the_filter_keeps() {
    let (_dir, out) = common::scratch_file("kept.pcap");
    let o = smtpscope(&["-r", &demo(), "-Y", "port:2526", "-w", out.to_str().unwrap(), "-F", "json"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let kept = json_lines(&o);
    assert_eq!(kept.len(), 1);
    assert!(
        String::from_utf8_lossy(&o.stderr).contains(&format!("wrote {} packets of 1 session(s)", kept[0]["packets"]))
    );
    // Reading the written file gives the kept session back, whole.
    let again = smtpscope(&["-q", "-r", out.to_str().unwrap(), "-F", "json"]);
    let again = json_lines(&again);
    assert_eq!(again.len(), 1);
    for key in ["client", "server", "verdict", "packets", "bytes_client", "bytes_server"] {
        assert_eq!(again[0][key], kept[0][key], "{key}");
    }
    // Never over an input.
    let o = smtpscope(&["-r", out.to_str().unwrap(), "-w", out.to_str().unwrap(), "-F", "json"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("that is the input"));
    assert_eq!(json_lines(&smtpscope(&["-q", "-r", out.to_str().unwrap(), "-F", "json"])).len(), 1, "input intact");
    // Standard input cannot be read a second time: said before anything is read.
    let o = smtpscope(&["-r", "-", "-w", out.to_str().unwrap(), "-F", "json"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("cannot be read a second time"));
}

#[test]
fn an_absurd_duration_is_a_usage_error_not_a_panic() {
    let o = smtpscope(&["-i", "lo", "--duration", "99999999999999999999999h"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("not a duration"));
}

#[test]
fn a_closed_stderr_does_not_crash_a_run_whose_records_went_out() {
    use std::io::Read;
    let mut child = common::spawn_piped(&["-r", &demo(), "-F", "json"]);
    drop(child.stderr.take());
    let mut out = String::new();
    child.stdout.take().unwrap().read_to_string(&mut out).unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}");
    assert_eq!(out.lines().count(), 3);
}

#[test]
fn listing_interfaces_into_a_closed_pipe_is_not_an_error() {
    let (status, err) = into_closed_pipe(&["-D"]);
    assert!(!err.contains("panicked"), "{err}");
    // Listing may also fail for want of permission (exit 2); a panic is what must not happen.
    assert!(status.code().is_some_and(|c| c == 0 || c == 2), "{status:?} {err}");
}

/// Runs smtpscope with its stdout closed before it writes; returns its status and stderr.
fn into_closed_pipe(args: &[&str]) -> (std::process::ExitStatus, String) {
    use std::io::Read;
    let mut child = common::spawn_piped(args);
    drop(child.stdout.take());
    let status = child.wait().unwrap();
    let mut err = String::new();
    child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    (status, err)
}

#[test]
fn several_files_are_merged_and_each_record_names_its_file() {
    let Some(dir) = common::public_corpus() else { return };
    let other = dir.join("packetlife-ipv4-smtp-gmail-ehlo-quit.pcap");
    let o = smtpscope(&["-q", "-r", &demo(), "-r", other.to_str().unwrap(), "-F", "json"]);
    assert!(o.status.success());
    let lines = json_lines(&o);
    assert_eq!(lines.len(), 4);
    assert!(lines.iter().any(|l| l["file"].as_str().unwrap().ends_with("packetlife-ipv4-smtp-gmail-ehlo-quit.pcap")));
    // Merged by timestamp: the 2014 session ends before the 2026 ones.
    assert!(lines[0]["file"].as_str().unwrap().contains("packetlife"));
}

#[test]
fn the_summary_goes_to_its_file_never_into_stdout() {
    let (_dir, sum) = common::scratch_file("summary.json");
    let o = smtpscope(&["-r", &demo(), "-F", "json", "--summary", sum.to_str().unwrap()]);
    assert!(o.status.success());
    assert_eq!(json_lines(&o).len(), 3);
    assert!(o.stderr.is_empty(), "{}", String::from_utf8_lossy(&o.stderr));
    let s: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&sum).unwrap()).unwrap();
    assert_eq!(s["sessions"], 3);
    assert_eq!(s["verdicts"]["starttls"], 1);
    assert_eq!(s["packets"], 101);
}

#[test]
fn csv_has_a_header_and_a_row_per_session() {
    let o = smtpscope(&["-q", "-r", &demo(), "-F", "csv"]);
    assert!(o.status.success());
    let out = String::from_utf8_lossy(&o.stdout);
    let mut lines = out.lines();
    assert!(lines.next().unwrap().starts_with("first_seen,last_seen,file"));
    assert_eq!(lines.count(), 3);
}

#[test]
fn closing_stdout_early_is_not_an_error() {
    let (status, err) = into_closed_pipe(&["-q", "-r", &demo(), "-F", "json"]);
    assert!(status.success(), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

/// Runs with `--threads N` and returns stdout, stderr and the JSON summary.
fn run_threads(n: &str, args: &[&str]) -> (Vec<u8>, Vec<u8>, String) {
    let (_dir, summary) = common::scratch_file("summary.json");
    let mut all = vec!["--threads", n, "-F", "json", "--summary", summary.to_str().unwrap()];
    all.extend_from_slice(args);
    let o = smtpscope(&all);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    (o.stdout, o.stderr, std::fs::read_to_string(summary).unwrap())
}

#[test]
fn reading_on_a_second_thread_gives_the_same_records_and_summary() {
    let demo = demo();
    let (_dir, cut) = common::scratch_file("threads-cut.pcap");
    let bytes = std::fs::read(&demo).unwrap();
    std::fs::write(&cut, &bytes[..bytes.len() * 2 / 3]).unwrap();
    let cut = cut.to_string_lossy().into_owned();
    let cases: [&[&str]; 6] = [
        &["-r", &demo],
        &["-r", &demo, "-c", "1"],
        &["-r", &demo, "-c", "40"],
        &["-r", &cut],
        &["-r", &cut, "-r", &demo, "-c", "70"],
        &["-r", &demo, "-r", &cut],
    ];
    for args in cases {
        let one = run_threads("1", args);
        let two = run_threads("2", args);
        assert_eq!(one, two, "{args:?}");
    }
}

// --- Engine limits and mail ports reach the engine (issue 13, item 14) ---

/// Runs `args` with `-F json` and a JSON summary; returns the records and the summary.
fn records_and_summary(args: &[&str]) -> (Vec<serde_json::Value>, serde_json::Value) {
    let (_dir, summary) = common::scratch_file("summary.json");
    let mut all = vec!["-F", "json", "--summary", summary.to_str().unwrap()];
    all.extend_from_slice(args);
    let o = smtpscope(&all);
    assert!(o.status.success(), "{args:?}: {}", String::from_utf8_lossy(&o.stderr));
    let sum = serde_json::from_str(&std::fs::read_to_string(summary).unwrap()).unwrap();
    (json_lines(&o), sum)
}

#[test]
fn mail_ports_decide_where_implicit_tls_and_other_payload_are_reported() {
    let implicit = common::bundled().join("implicit-tls-465.pcap").to_string_lossy().into_owned();
    let (r, _) = records_and_summary(&["-r", &implicit]);
    assert_eq!(r.len(), 1);
    assert_eq!(r[0]["verdict"], "implicit-tls");
    let (r, _) = records_and_summary(&["-r", &implicit, "--mail-ports", "25,587"]);
    assert!(r.is_empty(), "465 is not a mail port here: {r:?}");
    // Something that is not SMTP on a port made a mail port is reported as such.
    let d = common::Dialogue::new(40000, 2121).s("* hello\r\n").c("garbage\r\n").close();
    let (_dir, f) = common::write_pcap("not-smtp.pcap", &d.packets(1460));
    let f = f.to_string_lossy().into_owned();
    let (r, _) = records_and_summary(&["-r", &f]);
    assert!(r.is_empty(), "{r:?}");
    let (r, _) = records_and_summary(&["-r", &f, "--mail-ports", "25,2121"]);
    assert_eq!(r.len(), 1);
    assert_eq!(r[0]["verdict"], "not-smtp");
}

#[test]
fn max_flows_evicts_the_least_recently_active_flow() {
    // Two sessions open at once: their packets interleaved by timestamp.
    let session =
        |port| common::opening(common::Dialogue::new(port, 25), &["STARTTLS"]).c("QUIT\r\n").s("221 bye\r\n").close();
    let mut pkts = session(40001).packets(1460);
    pkts.extend(session(40002).packets(1460));
    pkts.sort_by_key(|(ts, _)| *ts);
    let (_dir, f) = common::write_pcap("two-at-once.pcap", &pkts);
    let f = f.to_string_lossy().into_owned();
    let (r, sum) = records_and_summary(&["-r", &f]);
    assert_eq!((r.len(), &sum["peak_flows"], &sum["evicted_flows"]), (2, &2.into(), &0.into()));
    let (_, sum) = records_and_summary(&["-r", &f, "--max-flows", "1"]);
    assert_eq!(sum["peak_flows"], 1, "{sum}");
    assert!(sum["evicted_flows"].as_u64().unwrap() >= 1, "{sum}");
}

#[test]
fn max_buffer_bounds_what_one_flow_holds_out_of_order() {
    // The lab's lossy capture: the client's data out of order, holes filled by retransmissions.
    let f = common::bundled().join("loss-reorder.pcap").to_string_lossy().into_owned();
    let (_, sum) = records_and_summary(&["-r", &f]);
    assert_eq!((&sum["gaps"], &sum["reassembly_overflows"]), (&0.into(), &0.into()), "{sum}");
    let (_, sum) = records_and_summary(&["-r", &f, "--max-buffer", "100"]);
    assert!(sum["gaps"].as_u64().unwrap() > 0, "{sum}");
    assert!(sum["reassembly_overflows"].as_u64().unwrap() > 0, "{sum}");
    assert_eq!(sum["reassembly_budget_releases"], 0, "the shared budget was not what gave way: {sum}");
}

#[test]
fn max_buffer_total_bounds_what_all_flows_hold_together() {
    let f = common::bundled().join("loss-reorder.pcap").to_string_lossy().into_owned();
    let (_, sum) = records_and_summary(&["-r", &f, "--max-buffer-total", "100"]);
    assert!(sum["reassembly_budget_releases"].as_u64().unwrap() > 0, "{sum}");
    assert!(sum["gaps"].as_u64().unwrap() > 0, "{sum}");
}

#[test]
fn options_before_a_subcommand_are_an_error_that_says_where_they_go() {
    let o = smtpscope(&["-r", &demo(), "check", "--expect", "tls", "--between", "*", "*"]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.starts_with("smtpscope: options go after the subcommand: `smtpscope check -r "), "{err}");
    let o = smtpscope(&["-q", "-r", &demo(), "pairs"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("`smtpscope pairs -q -r"), "not a capture filter 'pairs'");
}

#[test]
fn the_ui_without_a_terminal_says_no_terminal() {
    // setsid: no controlling terminal, as under cron or a CI runner.
    let Ok(o) = Command::new("setsid")
        .args(["-w", env!("CARGO_BIN_EXE_smtpscope"), "--tui", "-r", &demo()])
        .stdin(std::process::Stdio::null())
        .output()
    else {
        return;
    };
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("no terminal") && !err.contains("No such device or address"), "{err}");
}

#[test]
fn an_export_dir_that_cannot_be_used_is_refused_at_start() {
    let o = smtpscope(&["--tui", "-r", &demo(), "--export-dir", "/nonexistent/smtpscope-exports"]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.starts_with("smtpscope: --export-dir /nonexistent/smtpscope-exports: No such file"), "{err}");
}
