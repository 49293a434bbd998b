//! `smtpscope check` and `pairs` on real captures: exit codes, violations listed with their
//! evidence, unproven sessions, rules that saw nothing, JUnit that parses back.

mod common;

use std::path::PathBuf;
use std::process::{Command, Output};

fn public(name: &str) -> Option<String> {
    common::public_corpus().map(|d| d.join(name).to_string_lossy().into_owned())
}

fn smtpscope(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_smtpscope")).arg("check").arg("-q").args(args).output().expect("run")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// A policy file with `text`, in a scratch directory that lives as long as the returned guard.
fn policy_file(name: &str, text: &str) -> (tempfile::TempDir, PathBuf) {
    let (dir, p) = common::scratch_file(name);
    std::fs::write(&p, text).unwrap();
    (dir, p)
}

#[test]
fn plaintext_expected_and_seen_passes() {
    let Some(f) = public("suricata-smtp-submission-587-auth-login-yahoo.pcap") else { return };
    let o = smtpscope(&["-r", &f, "--expect", "plaintext", "--between", "192.168.1.0/24", "217.12.11.66"]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    assert!(stdout(&o).contains("1 matched, 1 passed, 0 violated"));
}

#[test]
fn tls_expected_but_plaintext_is_a_violation_listed_with_its_evidence() {
    let Some(f) = public("zeek-smtp-exim-auth-login-retransmissions.pcap") else { return };
    let o = smtpscope(&["-r", &f, "--expect", "tls", "--from", "10.10.1.4", "--to", "74.53.140.153"]);
    assert_eq!(o.status.code(), Some(1));
    let out = stdout(&o);
    assert!(out.contains("VIOLATION 10.10.1.4:1470 → 74.53.140.153:25  starttls-offered-unused"), "{out}");
    assert!(out.contains("frame"), "{out}");
}

#[test]
fn starttls_passes_a_tls_rule_with_a_minimum_version() {
    let Some(f) = public("zeek-smtp-starttls-gmail-tls12.pcap") else { return };
    let ok = smtpscope(&["-r", &f, "--expect", "tls", "--min-version", "TLS1.2", "--between", "192.168.4.0/24", "*"]);
    assert_eq!(ok.status.code(), Some(0), "{}", stdout(&ok));
    let Some(old) = public("certgrep-implicit-tls-on-port-587.pcapng") else { return };
    let bad = smtpscope(&["-r", &old, "--expect", "tls", "--min-version", "TLS1.2", "--between", "*", "*"]);
    assert_eq!(bad.status.code(), Some(1));
    assert!(stdout(&bad).contains("negotiated TLS1.0 below the required TLS1.2"));
}

#[test]
fn a_one_sided_capture_with_cleartext_mail_proves_a_violation() {
    let Some(f) = public("zeek-smtp-client-side-only.pcap") else { return };
    let o = smtpscope(&["-r", &f, "--expect", "tls", "--between", "*", "*"]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    assert!(stdout(&o).contains("incomplete capture, but mail in clear"));
}

#[test]
fn incomplete_sessions_are_unproven() {
    let Some(f) = public("zeek-smtp-snaplen68-no-payload.pcap") else { return };
    let o = smtpscope(&["-r", &f, "--expect", "tls", "--between", "*", "*"]);
    assert_eq!(o.status.code(), Some(3), "{}", stdout(&o));
    assert!(stdout(&o).contains("unproven"));
}

#[test]
fn a_rule_that_matched_nothing_proves_nothing_unless_allowed() {
    let Some(f) = public("packetlife-ipv4-smtp-gmail-ehlo-quit.pcap") else { return };
    let args = ["-r", f.as_str(), "--expect", "plaintext", "--between", "10.1.0.0/24", "10.2.0.0/24"];
    let o = smtpscope(&args);
    assert_eq!(o.status.code(), Some(3), "{}", stdout(&o));
    assert!(stdout(&o).contains("nothing proven: no SMTP seen between these groups"));
    assert!(stdout(&o).contains("result: NOTHING PROVEN"), "{}", stdout(&o));
    let mut strict = args.to_vec();
    strict.push("--require-traffic");
    assert_eq!(smtpscope(&strict).status.code(), Some(3), "--require-traffic stays accepted");
    let mut allowed = args.to_vec();
    allowed.push("--allow-no-traffic");
    let o = smtpscope(&allowed);
    assert_eq!(o.status.code(), Some(0));
    assert!(stdout(&o).contains("result: PASS"), "{}", stdout(&o));
}

#[test]
fn a_typo_in_a_cidr_is_not_a_pass() {
    // The issue's case: 10.9 for 10.1 — nothing matches, and the check must not say PASS.
    let args = ["-r", &multi_site(), "--expect", "plaintext", "--between", "10.9.0.0/24", "10.2.0.0/24"];
    let o = smtpscope(&args);
    assert_eq!(o.status.code(), Some(3), "{}", stdout(&o));
    assert!(!stdout(&o).contains("result: PASS"), "{}", stdout(&o));
    let mut junit = args.to_vec();
    junit.extend(["-F", "junit"]);
    assert!(stdout(&smtpscope(&junit)).contains("<failure message=\"nothing proven"));
    let mut json = args.to_vec();
    json.extend(["-F", "json"]);
    let lines = json_lines(&smtpscope(&json));
    let summary = lines.iter().find(|l| l["type"] == "summary").unwrap();
    assert_eq!((summary["result"].as_str(), summary["exit"].as_u64()), (Some("nothing-proven"), Some(3)));
}

#[test]
fn a_misspelt_verb_or_version_on_the_command_line_is_exit_2_with_the_word_meant() {
    let o = smtpscope(&[
        "-r",
        &multi_site(),
        "--expect",
        "plaintext",
        "--forbid-offer",
        "X-ANONYMOUSTSL",
        "--between",
        "10.1.0.0/24",
        "10.2.0.0/24",
    ]);
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert!(err.contains("'X-ANONYMOUSTSL' is not an upgrade verb") && err.contains("X-ANONYMOUSTLS?"), "{err}");
    let o = smtpscope(&["-r", &multi_site(), "--expect", "any", "--port", "25,0", "--between", "*", "*"]);
    assert_eq!(o.status.code(), Some(2), "port 0 is no port");
    let o = smtpscope(&["-r", &multi_site(), "--expect", "tls", "--min-version", "TLS1.4", "--between", "*", "*"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("unknown TLS version 'TLS1.4'"), "{}", stderr(&o));
    let (_d, p) = policy_file("typo.toml", "[default]\nexpect = \"plaintext\"\nforbid_offer = [\"x-anonymoustsl\"]\n");
    let o = smtpscope(&["-r", &multi_site(), "--policy", p.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("did you mean X-ANONYMOUSTLS?"), "{}", stderr(&o));
}

#[test]
fn check_and_pairs_take_a_display_filter_and_count_what_it_leaves_out() {
    let o = smtpscope(&[
        "-r",
        &multi_site(),
        "--policy",
        EXAMPLE_POLICY,
        "-Y",
        "port:2525",
        "--allow-no-traffic",
        "-F",
        "json",
    ]);
    let lines = json_lines(&o);
    let summary = lines.iter().find(|l| l["type"] == "summary").unwrap();
    assert_eq!(summary["left_out"]["display_filter"], 11, "{lines:?}");
    let o = smtpscope(&["-r", &multi_site(), "--policy", EXAMPLE_POLICY, "-Y", "port:2525"]);
    assert!(stdout(&o).contains("11 session(s) left out: dropped by the display filter (-Y)"), "{}", stdout(&o));
    let o = smtpscope(&["-r", &multi_site(), "--policy", EXAMPLE_POLICY, "-Y", "tcp.port==2525"]);
    assert_eq!(o.status.code(), Some(2));
    let o = Command::new(env!("CARGO_BIN_EXE_smtpscope"))
        .args(["pairs", "-r", &multi_site(), "-Y", "port:2525"])
        .output()
        .unwrap();
    assert_eq!(stdout(&o).lines().count(), 2, "{}", stdout(&o));
    assert!(stderr(&o).contains("11 session(s) left out: dropped by the display filter (-Y)"), "{}", stderr(&o));
}

#[test]
fn pairs_csv_has_a_row_per_pair_and_port_with_counts() {
    let o = Command::new(env!("CARGO_BIN_EXE_smtpscope"))
        .args(["pairs", "-q", "-F", "csv", "-r", &multi_site()])
        .output()
        .unwrap();
    assert!(o.status.success());
    let mut r = csv::Reader::from_reader(&o.stdout[..]);
    let header: Vec<String> = r.headers().unwrap().iter().map(String::from).collect();
    assert_eq!(&header[..5], ["client_host", "server_host", "server_port", "port_role", "sessions"]);
    assert!(header.contains(&"finding:cleartext-auth".to_string()));
    let rows: Vec<csv::StringRecord> = r.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 12);
    let hub = rows.iter().find(|r| &r[2] == "2525").unwrap();
    assert_eq!((&hub[0], &hub[1], &hub[3], &hub[4]), ("10.2.0.11", "10.1.0.21", "hub", "1"));
}

#[test]
fn a_forbidden_offer_of_x_anonymoustls_is_a_violation() {
    let Some(f) = public("zeek-smtp-exchange-x-anonymoustls-xexch50.pcap") else { return };
    let (_dir, p) = policy_file(
        "anon.toml",
        "[groups]\nCERN = [\"188.184.0.0/16\"]\n[[rule]]\nname = \"hubs in clear\"\nbetween = [\"CERN\", \"CERN\"]\nexpect = \"plaintext\"\nforbid_offer = [\"X-ANONYMOUSTLS\"]\n",
    );
    let o = smtpscope(&["-r", &f, "--policy", p.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stdout(&o).contains("server offered X-ANONYMOUSTLS"));
    // Without the forbidden offer the same session passes: STARTTLS offered is fine.
    let o = smtpscope(&["-r", &f, "--expect", "plaintext", "--between", "188.184.0.0/16", "188.184.0.0/16"]);
    assert_eq!(o.status.code(), Some(0));
}

#[test]
fn tls13_certificate_requirements_are_unproven_unless_accepted() {
    let Some(f) = public("suricata-smtp-starttls-postfix-tls13.pcap") else { return };
    let (_dir, p) = policy_file("cert.toml", "[default]\nexpect = \"tls\"\ncert_valid = true\n");
    let o = smtpscope(&["-r", &f, "--policy", p.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(3));
    assert!(stdout(&o).contains("certificate not visible (TLS 1.3)"));
    let o = smtpscope(&["-r", &f, "--policy", p.to_str().unwrap(), "--accept-tls13-cert"]);
    assert_eq!(o.status.code(), Some(0));
}

#[test]
fn a_time_window_selects_sessions() {
    let Some(f) = public("zeek-smtp-exim-auth-login-retransmissions.pcap") else { return };
    // The 2009 session is before the window; only the 2015 plaintext one counts.
    let o = smtpscope(&["-r", &f, "--expect", "plaintext", "--between", "*", "*", "--since", "2015-01-01T00:00:00Z"]);
    assert_eq!(o.status.code(), Some(0));
    assert!(stdout(&o).contains("1 matched"), "{}", stdout(&o));
}

#[test]
fn junit_output_parses_back_with_the_right_counts() {
    let Some(f) = public("zeek-smtp-exim-auth-login-retransmissions.pcap") else { return };
    let o = smtpscope(&["-r", &f, "--expect", "tls", "--between", "*", "*", "--format", "junit"]);
    assert_eq!(o.status.code(), Some(1));
    let xml = stdout(&o);
    let mut reader = quick_xml::Reader::from_str(&xml);
    let (mut failures, mut suites) = (0, 0);
    loop {
        match reader.read_event().expect("well-formed XML") {
            quick_xml::events::Event::Start(e) | quick_xml::events::Event::Empty(e) => match e.name().as_ref() {
                b"testsuite" => {
                    suites += 1;
                    let f = e.try_get_attribute("failures").unwrap().unwrap();
                    assert_eq!(f.unescape_value().unwrap(), "2");
                }
                b"failure" => failures += 1,
                _ => {}
            },
            quick_xml::events::Event::Eof => break,
            _ => {}
        }
    }
    assert_eq!((suites, failures), (1, 2));
}

#[test]
fn json_output_has_a_line_per_listed_session_and_per_rule() {
    let Some(f) = public("zeek-smtp-exim-auth-login-retransmissions.pcap") else { return };
    let o = smtpscope(&["-r", &f, "--expect", "tls", "--between", "*", "*", "-F", "json"]);
    let lines: Vec<serde_json::Value> = stdout(&o).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.iter().filter(|l| l["type"] == "session" && l["outcome"] == "violation").count(), 2);
    assert_eq!(lines.iter().filter(|l| l["type"] == "rule").count(), 1);
}

#[test]
fn the_documented_example_policy_parses() {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/mail-tls.example.toml")).unwrap();
    let p = smtpscope::check::Policy::from_toml(&text).unwrap();
    assert_eq!(p.rules.len(), 5);
}

#[test]
fn a_bad_policy_is_exit_2_with_the_reason() {
    let (_dir, p) = policy_file("bad.toml", "[[rule]]\nbetween = [\"A\", \"B\"]\nexpect = \"tls\"\n");
    let Some(f) = public("packetlife-ipv4-smtp-gmail-ehlo-quit.pcap") else { return };
    let o = smtpscope(&["-r", &f, "--policy", p.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("unknown group 'A'"));
}

#[test]
fn pairs_counts_verdicts_per_host_pair() {
    let Some(f) = public("chrissanders-postfix-relay-chain.pcapng") else { return };
    let o =
        Command::new(env!("CARGO_BIN_EXE_smtpscope")).args(["pairs", "-q", "-F", "json", "-r", &f]).output().unwrap();
    assert!(o.status.success());
    let lines: Vec<serde_json::Value> = stdout(&o).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 2);
    assert!(lines
        .iter()
        .all(|l| l["verdicts"]["starttls-offered-unused"] == 1 && l["offered"] == serde_json::json!(["STARTTLS"])));
}

// --- The lab's multi-site capture (captures/multi-site.pcap): Exchange hubs in the five sites of
// docs/mail-tls.example.toml, made by tests/lab/lab.py. POA<->TOR in clear by design, branches over
// TLS; one violation each way plus a forbidden offer, and one session the capture cut short.

fn multi_site() -> String {
    concat!(env!("CARGO_MANIFEST_DIR"), "/captures/multi-site.pcap").to_string()
}

const EXAMPLE_POLICY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/mail-tls.example.toml");

fn json_lines(o: &Output) -> Vec<serde_json::Value> {
    common::ndjson(&o.stdout)
}

/// (client address, server, verdict, reason) of every session line with this outcome.
fn outcomes(lines: &[serde_json::Value], outcome: &str) -> Vec<(String, String, String, String)> {
    let mut v: Vec<_> = lines
        .iter()
        .filter(|l| l["type"] == "session" && l["outcome"] == outcome)
        .map(|l| {
            let client = l["client"].as_str().unwrap();
            let host = client.rsplit_once(':').unwrap().0.to_string();
            let s = |k: &str| l[k].as_str().unwrap().to_string();
            (host, s("server"), s("verdict"), s("reason"))
        })
        .collect();
    v.sort();
    v
}

fn rule<'a>(lines: &'a [serde_json::Value], name: &str) -> &'a serde_json::Value {
    lines.iter().find(|l| l["type"] == "rule" && l["rule"] == name).unwrap_or_else(|| panic!("no rule {name}"))
}

#[test]
fn the_example_policy_fails_on_the_multi_site_capture_with_exactly_its_violations() {
    let o = smtpscope(&["-r", &multi_site(), "--policy", EXAMPLE_POLICY, "-F", "json"]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    let lines = json_lines(&o);
    let t = |a: &str, b: &str, c: &str, d: &str| (a.to_string(), b.to_string(), c.to_string(), d.to_string());
    assert_eq!(
        outcomes(&lines, "violation"),
        vec![
            // a POA hub upgraded with X-ANONYMOUSTLS where the WAN optimizer needs clear text
            t("10.1.0.12", "10.2.0.22:25", "starttls", "TLS used (TLS1.2)"),
            // a TOR hub sent in clear, as it should, to a POA hub that still offers X-ANONYMOUSTLS
            t("10.2.0.12", "10.1.0.22:25", "starttls-offered-unused", "server offered X-ANONYMOUSTLS"),
            // a branch sent in clear where TLS is required
            t(
                "10.3.2.11",
                "10.2.0.21:25",
                "starttls-offered-unused",
                "TLS offered but not used: mail and AUTH in clear"
            ),
        ]
    );
    assert_eq!(
        outcomes(&lines, "unproven"),
        vec![t("10.3.3.12", "10.2.0.21:25", "incomplete", "incomplete capture: the outcome is not visible")]
    );
    let counts = |r: &serde_json::Value| ["matched", "passed", "violated", "unproven"].map(|k| r[k].as_u64().unwrap());
    assert_eq!(counts(rule(&lines, "POA <-> TOR hubs in clear (WAN optimizers)")), [5, 3, 2, 0]);
    assert_eq!(counts(rule(&lines, "BR01 <-> hubs over TLS")), [2, 2, 0, 0]);
    assert_eq!(counts(rule(&lines, "BR02 <-> hubs over TLS")), [2, 1, 1, 0]);
    assert_eq!(counts(rule(&lines, "BR03 <-> hubs over TLS")), [3, 2, 0, 1]);
    assert_eq!(rule(&lines, "default")["no_traffic"], true);
}

#[test]
fn the_example_policy_text_report_lists_each_violation_on_one_line_with_its_evidence() {
    let o = smtpscope(&["-r", &multi_site(), "--policy", EXAMPLE_POLICY]);
    assert_eq!(o.status.code(), Some(1));
    let out = stdout(&o);
    let violations: Vec<&str> = out.lines().filter(|l| l.trim_start().starts_with("VIOLATION")).collect();
    assert_eq!(violations.len(), 3, "{out}");
    assert!(violations.iter().all(|l| l.contains(" → ") && l.contains("(frame ")), "{out}");
    assert!(out.contains(
        "rule \"BR03 <-> hubs over TLS\" (expect tls ≥ TLS1.2): 3 matched, 2 passed, 0 violated, 1 unproven"
    ));
    assert!(out.contains("result: FAIL"), "{out}");
}

#[test]
fn a_policy_the_capture_keeps_passes() {
    // The compliant hubs only: POA/TOR pairs in clear without an X-ANONYMOUSTLS offer, BR01 over
    // TLS 1.2 or better, everything else allowed.
    let (_dir, p) = policy_file(
        "kept.toml",
        "[groups]\nPOA = [\"10.1.0.11\", \"10.1.0.21\"]\nTOR = [\"10.2.0.11\", \"10.2.0.21\"]\nBR01 = [\"10.3.1.0/24\"]\n\
         [[rule]]\nname = \"hubs in clear\"\nbetween = [\"POA\", \"TOR\"]\nports = [25, 2525]\nexpect = \"plaintext\"\n\
         forbid_offer = [\"X-ANONYMOUSTLS\"]\n\
         [[rule]]\nname = \"BR01 over TLS\"\nbetween = [\"BR01\", \"*\"]\nexpect = \"tls\"\nmin_version = \"TLS1.2\"\n\
         [default]\nexpect = \"any\"\n",
    );
    let o = smtpscope(&["-r", &multi_site(), "--policy", p.to_str().unwrap(), "-F", "json"]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    let lines = json_lines(&o);
    assert_eq!(rule(&lines, "hubs in clear")["passed"], 3);
    assert_eq!(rule(&lines, "BR01 over TLS")["passed"], 2);
    assert!(outcomes(&lines, "violation").is_empty());
}

#[test]
fn branch_to_branch_traffic_is_a_rule_that_matches_nothing() {
    let args = ["-r", &multi_site(), "--expect", "tls", "--between", "10.3.2.0/24", "10.3.3.0/24"];
    let o = smtpscope(&args);
    assert_eq!(o.status.code(), Some(3), "{}", stdout(&o));
    assert!(stdout(&o).contains("nothing proven: no SMTP seen between these groups"));
    let mut allowed = args.to_vec();
    allowed.push("--allow-no-traffic");
    assert_eq!(smtpscope(&allowed).status.code(), Some(0));
}

#[test]
fn a_session_the_capture_cut_short_is_unproven_not_passed() {
    // BR03's sessions: two over TLS, one whose capture ends after the EHLO reply.
    let o = smtpscope(&["-r", &multi_site(), "--expect", "tls", "--between", "10.3.3.0/24", "*", "-F", "json"]);
    assert_eq!(o.status.code(), Some(3), "{}", stdout(&o));
    let lines = json_lines(&o);
    let unproven = outcomes(&lines, "unproven");
    assert_eq!(unproven.len(), 1);
    assert_eq!(unproven[0].2, "incomplete");
    assert_eq!(rule(&lines, "10.3.3.0/24 <-> *")["passed"], 2);
}

#[test]
fn a_helo_glob_matches_by_name_and_is_reported_spoofable() {
    let o = smtpscope(&[
        "-r",
        &multi_site(),
        "--expect",
        "tls",
        "--from",
        "helo:*.br03.contoso.com",
        "--to",
        "*",
        "-F",
        "json",
    ]);
    let lines = json_lines(&o);
    let sessions: Vec<_> = lines.iter().filter(|l| l["type"] == "session").collect();
    assert!(!sessions.is_empty());
    assert!(sessions.iter().all(|l| l["spoofable"] == true && l["client"].as_str().unwrap().starts_with("10.3.3.")));
}

#[test]
fn junit_for_the_example_policy_parses_back_with_a_suite_per_rule() {
    let o = smtpscope(&["-r", &multi_site(), "--policy", EXAMPLE_POLICY, "--format", "junit"]);
    assert_eq!(o.status.code(), Some(1));
    let xml = stdout(&o);
    let mut reader = quick_xml::Reader::from_str(&xml);
    let mut suites: Vec<(String, u64, u64)> = Vec::new();
    let (mut failures, mut skipped) = (Vec::new(), 0);
    loop {
        match reader.read_event().expect("well-formed XML") {
            quick_xml::events::Event::Start(e) | quick_xml::events::Event::Empty(e) => {
                let attr = |k: &str| e.try_get_attribute(k).unwrap().map(|a| a.unescape_value().unwrap().into_owned());
                match e.name().as_ref() {
                    b"testsuite" => suites.push((
                        attr("name").unwrap(),
                        attr("failures").unwrap().parse().unwrap(),
                        attr("skipped").unwrap().parse().unwrap(),
                    )),
                    b"failure" => failures.push(attr("message").unwrap()),
                    b"skipped" => skipped += 1,
                    _ => {}
                }
            }
            quick_xml::events::Event::Eof => break,
            _ => {}
        }
    }
    let names: Vec<&str> = suites.iter().map(|s| s.0.as_str()).collect();
    assert_eq!(
        names,
        [
            "POA <-> TOR hubs in clear (WAN optimizers)",
            "BR01 <-> hubs over TLS",
            "BR02 <-> hubs over TLS",
            "BR03 <-> hubs over TLS",
            "default"
        ]
    );
    assert_eq!(suites.iter().map(|s| s.1).collect::<Vec<_>>(), [2, 0, 1, 0, 0]);
    failures.sort();
    assert_eq!(
        failures,
        ["TLS offered but not used: mail and AUTH in clear", "TLS used (TLS1.2)", "server offered X-ANONYMOUSTLS"]
    );
    // the unproven BR03 session and the default rule that saw nothing
    assert_eq!(skipped, 2);
}

#[test]
fn pairs_on_the_multi_site_capture_shows_who_offers_and_uses_x_anonymoustls() {
    let o = Command::new(env!("CARGO_BIN_EXE_smtpscope"))
        .args(["pairs", "-q", "-F", "json", "-r", &multi_site()])
        .output()
        .unwrap();
    assert!(o.status.success());
    let lines = json_lines(&o);
    let pair = |c: &str, s: &str| {
        lines
            .iter()
            .find(|l| l["client_host"] == c && l["server_host"] == s)
            .unwrap_or_else(|| panic!("no pair {c} {s}: {lines:?}"))
    };
    let up = pair("10.1.0.12", "10.2.0.22");
    assert_eq!(up["offered"], serde_json::json!(["STARTTLS", "X-ANONYMOUSTLS"]));
    assert_eq!(up["used"], serde_json::json!({"X-ANONYMOUSTLS": 1}));
    assert_eq!(up["tls_versions"], serde_json::json!({"TLS1.2": 1}));
    let clear = pair("10.1.0.11", "10.2.0.21");
    assert_eq!(clear["offered"], serde_json::json!(["STARTTLS"]));
    assert_eq!(clear["verdicts"]["starttls-offered-unused"], 1);
}

// --- Audit of check mode: each test below failed before its fix.

fn bundled(name: &str) -> String {
    format!("{}/captures/{name}", env!("CARGO_MANIFEST_DIR"))
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A scripted dialogue written as a classic pcap (LINKTYPE_RAW), for behaviours no bundled
/// capture holds; the check then runs on it like on any file.
fn dialogue_pcap(name: &str, d: &common::Dialogue) -> (tempfile::TempDir, PathBuf) {
    // Classic pcap header: magic, version 2.4, zone, sigfigs, snaplen, link type RAW (101).
    let mut b: Vec<u8> = 0xa1b2_c3d4u32.to_le_bytes().to_vec();
    b.extend_from_slice(&2u16.to_le_bytes());
    b.extend_from_slice(&4u16.to_le_bytes());
    for v in [0u32, 0, 65535, 101] {
        b.extend_from_slice(&v.to_le_bytes());
    }
    for (ts, data) in d.packets(1460) {
        for v in [(ts / 1_000_000) as u32, (ts % 1_000_000) as u32, data.len() as u32, data.len() as u32] {
            b.extend_from_slice(&v.to_le_bytes());
        }
        b.extend_from_slice(&data);
    }
    let (dir, p) = common::scratch_file(name);
    std::fs::write(&p, b).unwrap();
    (dir, p)
}

#[test]
fn a_tls_version_the_snaplen_cut_off_is_unproven_not_below_the_minimum() {
    // snaplen-96: STARTTLS, its 220 and the handshake are seen, the ServerHello's version is not.
    let f = bundled("snaplen-96.pcap");
    let o = smtpscope(&["-r", &f, "--expect", "tls", "--min-version", "TLS1.2", "--between", "*", "10.232.0.2"]);
    assert_eq!(o.status.code(), Some(3), "{}", stdout(&o));
    let out = stdout(&o);
    assert!(out.contains("unproven  10.232.0.1:32866 → 10.232.0.2:25  starttls  TLS version not captured"), "{out}");
    assert!(!out.contains("0x0000"), "{out}");
}

#[test]
fn a_session_the_capture_left_after_the_greeting_is_unproven_under_expect_tls() {
    // The spec labels it plaintext; but no EHLO was sent, so the upgrade could still have come.
    let greeting = common::Dialogue::new(40001, 25).s("220 mx.example.org ESMTP\r\n");
    let (_d, p) = dialogue_pcap("greeting.pcap", &greeting);
    let o = smtpscope(&["-r", p.to_str().unwrap(), "--expect", "tls", "--between", "*", "*"]);
    assert_eq!(o.status.code(), Some(3), "{}", stdout(&o));
    assert!(stdout(&o).contains("plaintext  no EHLO captured: the upgrade could still have come"), "{}", stdout(&o));
    // Not a pass under plaintext either: nothing shows it would have stayed in clear.
    let o = smtpscope(&["-r", p.to_str().unwrap(), "--expect", "plaintext", "--between", "*", "*"]);
    assert_eq!(o.status.code(), Some(3), "{}", stdout(&o));
    // Closed without a word: the session is over, in clear, and the reason says only what crossed.
    let closed = greeting.close();
    let (_d, p) = dialogue_pcap("closed.pcap", &closed);
    let o = smtpscope(&["-r", p.to_str().unwrap(), "--expect", "tls", "--between", "*", "*"]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    let out = stdout(&o);
    assert!(out.contains("plaintext  session in clear, no upgrade"), "{out}");
    assert!(!out.contains("mail in clear"), "{out}");
}

#[test]
fn one_rule_options_with_a_policy_are_a_one_line_usage_error() {
    let f = multi_site();
    for extra in [
        &["--between", "10.1.0.0/24", "*"][..],
        &["--from", "10.1.0.0/24", "--to", "*"],
        &["--expect", "tls"],
        &["--forbid-offer", "X-ANONYMOUSTLS"],
        &["--min-version", "TLS1.2"],
    ] {
        let mut args = vec!["-r", f.as_str(), "--policy", EXAMPLE_POLICY];
        args.extend_from_slice(extra);
        let o = smtpscope(&args);
        assert_eq!(o.status.code(), Some(2), "{extra:?}: {}", stdout(&o));
        assert_eq!(stderr(&o).trim_end().lines().count(), 1, "{extra:?}: {}", stderr(&o));
        assert!(stderr(&o).contains("cannot be used with --policy"), "{}", stderr(&o));
    }
    let o = smtpscope(&["-r", &f, "--expect", "plaintext", "--min-version", "TLS1.2", "--between", "*", "*"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--min-version needs --expect tls"), "{}", stderr(&o));
    let o = smtpscope(&["-r", &f, "--expect", "tls", "--forbid-offer", "X-ANONYMOUSTLS", "--between", "*", "*"]);
    assert_eq!(o.status.code(), Some(2));
    // A policy key its rule's expectation cannot use is refused, not ignored.
    let (_d, p) = policy_file("mixed.toml", "[default]\nexpect = \"tls\"\nforbid_offer = [\"X-ANONYMOUSTLS\"]\n");
    let o = smtpscope(&["-r", &f, "--policy", p.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("`forbid_offer` has no meaning with expect = \"tls\""), "{}", stderr(&o));
}

#[test]
fn port_since_and_until_select_sessions_under_a_policy_and_say_how_many_they_left_out() {
    // Only the hub transport port: one POA<->TOR session on 2525, the other eleven left out.
    let o = smtpscope(&[
        "-r",
        &multi_site(),
        "--policy",
        EXAMPLE_POLICY,
        "--port",
        "2525",
        "--allow-no-traffic",
        "-F",
        "json",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    let lines = json_lines(&o);
    assert_eq!(rule(&lines, "POA <-> TOR hubs in clear (WAN optimizers)")["passed"], 1);
    let summary = lines.iter().find(|l| l["type"] == "summary").expect("a summary line");
    assert_eq!(summary["left_out"]["outside_ports"], 11);
    let o = smtpscope(&["-r", &multi_site(), "--policy", EXAMPLE_POLICY, "--until", "2000-01-01T00:00:00Z"]);
    assert!(stdout(&o).contains("12 session(s) left out: started outside --since/--until"), "{}", stdout(&o));
}

#[test]
fn a_forbidden_offer_counts_whatever_became_of_the_session() {
    // handshake-alert-retry: STARTTLS offered each time; twice the upgrade failed, once unused.
    let f = bundled("handshake-alert-retry.pcap");
    let o = smtpscope(&["-r", &f, "--expect", "plaintext", "--forbid-offer", "STARTTLS", "--between", "*", "*"]);
    assert_eq!(o.status.code(), Some(1));
    let out = stdout(&o);
    assert!(out.contains("3 matched, 0 passed, 3 violated"), "{out}");
    assert_eq!(out.matches("starttls-failed  server offered STARTTLS (starttls-failed)").count(), 2, "{out}");
    let f = bundled("starttls-454.pcap");
    let o = smtpscope(&["-r", &f, "--expect", "plaintext", "--forbid-offer", "STARTTLS", "--between", "*", "*"]);
    assert!(stdout(&o).contains("server offered STARTTLS (starttls-refused)"), "{}", stdout(&o));
}

#[test]
fn a_certificate_name_mismatch_under_x_anonymoustls_is_a_warning_not_a_violation() {
    let (_d, p) = policy_file("name.toml", "[default]\nexpect = \"tls\"\ncert_name = true\n");
    let o = smtpscope(&["-r", &bundled("x-anonymoustls.pcap"), "--policy", p.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    assert!(stdout(&o).contains(
        "warning   10.232.0.1:50584 → 10.232.0.7:25  starttls  certificate name not required under X-ANONYMOUSTLS"
    ));
}

#[test]
fn passes_matched_by_a_name_glob_are_listed_spoofable_and_counted() {
    let args = ["-r", &multi_site(), "--expect", "tls", "--from", "helo:*.br03.contoso.com", "--to", "*"];
    let o = smtpscope(&args);
    assert!(stdout(&o).contains("2 matched (2 by name: spoofable), 1 passed"), "{}", stdout(&o));
    assert!(
        stdout(&o).contains("pass      10.3.3.11:51121 → 10.1.0.22:25  starttls  (hosts matched by name: spoofable)")
    );
    let mut json = args.to_vec();
    json.extend(["-F", "json"]);
    let lines = json_lines(&smtpscope(&json));
    let passes: Vec<_> = lines.iter().filter(|l| l["type"] == "session" && l["outcome"] == "pass").collect();
    assert_eq!(passes.len(), 1);
    assert!(passes.iter().all(|l| l["spoofable"] == true));
    assert_eq!(rule(&lines, "helo:*.br03.contoso.com -> *")["matched_by_name"], 2);
}

#[test]
fn junit_stays_well_formed_xml_with_control_characters_in_a_rule_name() {
    let (_d, p) = policy_file(
        "ctl.toml",
        "[groups]\nBR02 = [\"10.3.2.0/24\"]\n[[rule]]\nname = \"bad\\u001b[31mname\\u0001\"\nbetween = [\"BR02\", \"*\"]\nexpect = \"tls\"\n",
    );
    let o = smtpscope(&["-r", &multi_site(), "--policy", p.to_str().unwrap(), "-F", "junit"]);
    assert_eq!(o.status.code(), Some(1));
    let xml = stdout(&o);
    let forbidden =
        |c: char| matches!(c, '\u{0}'..='\u{8}' | '\u{b}' | '\u{c}' | '\u{e}'..='\u{1f}' | '\u{fffe}' | '\u{ffff}');
    assert!(!xml.chars().any(forbidden), "{xml:?}");
    let mut reader = quick_xml::Reader::from_str(&xml);
    let mut names = Vec::new();
    loop {
        match reader.read_event().expect("well-formed XML") {
            quick_xml::events::Event::Start(e) if e.name().as_ref() == b"testsuite" => {
                names.push(e.try_get_attribute("name").unwrap().unwrap().unescape_value().unwrap().into_owned());
            }
            quick_xml::events::Event::Eof => break,
            _ => {}
        }
    }
    assert_eq!(names, ["bad\\u{1b}[31mname\\u{1}"]);
}

#[test]
fn require_traffic_does_not_ask_the_default_rule_to_see_anything() {
    // Every session matched by a named rule that passes: the default rule sees nothing, as it should.
    let (_d, p) = policy_file(
        "all.toml",
        "[[rule]]\nname = \"all\"\nbetween = [\"*\", \"*\"]\nexpect = \"any\"\n[default]\nexpect = \"tls\"\n",
    );
    let o = smtpscope(&["-r", &multi_site(), "--policy", p.to_str().unwrap(), "--require-traffic"]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    assert!(stdout(&o).contains("no session fell through to the default rule"), "{}", stdout(&o));
    let o = smtpscope(&["-r", &multi_site(), "--policy", p.to_str().unwrap(), "--require-traffic", "-F", "junit"]);
    assert_eq!(o.status.code(), Some(0));
    assert!(!stdout(&o).contains("<failure"), "{}", stdout(&o));
}

#[test]
fn exchange_port_roles_reach_check_json_and_pairs_shows_each_port() {
    let o = smtpscope(&["-r", &multi_site(), "--policy", EXAMPLE_POLICY, "-F", "json"]);
    let lines = json_lines(&o);
    assert!(lines.iter().filter(|l| l["type"] == "session").all(|l| l["port_role"] == "front-end"), "{lines:?}");
    let o = Command::new(env!("CARGO_BIN_EXE_smtpscope")).args(["pairs", "-q", "-r", &multi_site()]).output().unwrap();
    let out = stdout(&o);
    // 10.2.0.11 spoke to 10.1.0.21 on the front end and on the hub port: two rows, not one.
    let rows: Vec<&str> = out.lines().filter(|l| l.starts_with("10.2.0.11 ") && l.contains(" 10.1.0.21 ")).collect();
    assert_eq!(rows.len(), 2, "{out}");
    assert!(rows[0].contains("25 front-end") && rows[1].contains("2525 hub"), "{out}");
    let o = Command::new(env!("CARGO_BIN_EXE_smtpscope"))
        .args(["pairs", "-q", "-F", "json", "-r", &multi_site()])
        .output()
        .unwrap();
    let lines = json_lines(&o);
    let pair = lines.iter().find(|l| l["client_host"] == "10.2.0.11" && l["server_host"] == "10.1.0.21").unwrap();
    assert_eq!(pair["by_port"][1]["port"], 2525);
    assert_eq!(pair["by_port"][1]["port_role"], "hub");
    assert_eq!(pair["by_port"][1]["sessions"], 1);
}

#[test]
fn every_policy_key_is_documented_in_the_readme_and_the_example_policy() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let section = readme.split("### Proving the policy").nth(1).unwrap().split("\n### ").next().unwrap();
    let example = std::fs::read_to_string(EXAMPLE_POLICY).unwrap();
    for key in
        ["name", "between", "from", "to", "ports", "expect", "forbid_offer", "min_version", "cert_valid", "cert_name"]
    {
        assert!(section.contains(&format!("`{key}")), "README.md's check section lacks {key}");
        assert!(example.lines().any(|l| l.trim_start_matches(['#', ' ']).starts_with(key)), "example lacks {key}");
    }
}

#[test]
fn only_a_server_that_shows_exchange_gets_exchange_role_names_in_pairs() {
    let o = Command::new(env!("CARGO_BIN_EXE_smtpscope")).args(["pairs", "-q", "-r", &multi_site()]).output().unwrap();
    let out = stdout(&o);
    // 10.3.3.21 is the Postfix relay of the capture: its port 25 is plain `smtp`.
    let postfix = out.lines().find(|l| l.starts_with("10.1.0.11 ") && l.contains(" 10.3.3.21 ")).unwrap();
    assert!(postfix.contains(" 25 smtp ") && !postfix.contains("front-end"), "{out}");
    let exchange = out.lines().find(|l| l.starts_with("10.1.0.11 ") && l.contains(" 10.3.1.21 ")).unwrap();
    assert!(exchange.contains(" 25 front-end "), "{out}");
}

#[test]
fn pairs_text_fits_120_columns_and_names_the_findings() {
    let o = Command::new(env!("CARGO_BIN_EXE_smtpscope")).args(["pairs", "-q", "-r", &multi_site()]).output().unwrap();
    let out = stdout(&o);
    assert!(out.lines().all(|l| l.chars().count() <= 120), "{out}");
    assert!(out.lines().next().unwrap().ends_with(" FINDINGS"), "{out}");
    assert!(out.contains("clear-auth 1") && out.contains("name-mismatch 1"), "{out}");
    let o = Command::new(env!("CARGO_BIN_EXE_smtpscope"))
        .args(["pairs", "-q", "-F", "json", "-r", &multi_site()])
        .output()
        .unwrap();
    let lines = json_lines(&o);
    let pair = lines.iter().find(|l| l["client_host"] == "10.2.0.11" && l["server_host"] == "10.1.0.21").unwrap();
    assert_eq!(pair["findings"], serde_json::json!({"cleartext-auth": 2}));
}

#[test]
fn help_and_readme_say_a_rule_that_matched_nothing_proves_nothing() {
    let o = Command::new(env!("CARGO_BIN_EXE_smtpscope")).args(["check", "--help"]).output().unwrap();
    let help = stdout(&o);
    assert!(help.contains("--allow-no-traffic") && help.contains("NOTHING PROVEN"), "{help}");
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    assert!(readme.contains("**A rule that matched nothing is not a pass.**") && readme.contains("--allow-no-traffic"));
}
