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

fn policy_file(name: &str, text: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("smtpscope-check-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
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
    assert!(stdout(&o).contains("incomplete capture, but MAIL/AUTH crossed in clear"));
}

#[test]
fn incomplete_sessions_are_unproven() {
    let Some(f) = public("zeek-smtp-snaplen68-no-payload.pcap") else { return };
    let o = smtpscope(&["-r", &f, "--expect", "tls", "--between", "*", "*"]);
    assert_eq!(o.status.code(), Some(3), "{}", stdout(&o));
    assert!(stdout(&o).contains("unproven"));
}

#[test]
fn a_rule_that_matched_nothing_says_so_and_fails_with_require_traffic() {
    let Some(f) = public("packetlife-ipv4-smtp-gmail-ehlo-quit.pcap") else { return };
    let args = ["-r", f.as_str(), "--expect", "plaintext", "--between", "10.1.0.0/24", "10.2.0.0/24"];
    let o = smtpscope(&args);
    assert_eq!(o.status.code(), Some(0));
    assert!(stdout(&o).contains("nothing proven: no SMTP seen between these groups"));
    let mut strict = args.to_vec();
    strict.push("--require-traffic");
    assert_eq!(smtpscope(&strict).status.code(), Some(3));
}

#[test]
fn a_forbidden_offer_of_x_anonymoustls_is_a_violation() {
    let Some(f) = public("zeek-smtp-exchange-x-anonymoustls-xexch50.pcap") else { return };
    let p = policy_file(
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
    let p = policy_file("cert.toml", "[default]\nexpect = \"tls\"\ncert_valid = true\n");
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
    let p = policy_file("bad.toml", "[[rule]]\nbetween = [\"A\", \"B\"]\nexpect = \"tls\"\n");
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
