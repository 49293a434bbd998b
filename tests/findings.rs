//! Evidence and findings on real captures: what a mail admin is told beyond the verdict.

mod common;

use serde_json::Value;

fn record(file: &str, client: &str) -> Option<Value> {
    let dir = common::public_corpus()?;
    let r = common::records(&dir.join(file)).into_iter().find(|r| r["client"] == client);
    Some(r.unwrap_or_else(|| panic!("no session {client} in {file}")))
}

fn names(r: &Value) -> Vec<&str> {
    r["findings"].as_array().unwrap().iter().map(|f| f["name"].as_str().unwrap()).collect()
}

#[test]
fn auth_plain_in_clear_is_reported_without_the_secret() {
    let Some(r) = record("arkime-smtp-submission-587-auth-plain-aol.pcap", "10.0.0.1:3293") else { return };
    assert!(names(&r).contains(&"cleartext-auth"));
    assert_eq!(r["auth_mechanisms"], serde_json::json!(["PLAIN"]));
    assert!(!r.to_string().contains("ADEyMzQ1Njc4QGFvbC5jb20AcGFzc3dk"));
    assert!(!r.to_string().contains("12345678@aol.com"), "addresses only with --show-addresses");
    assert_eq!(r["mail_from"], serde_json::json!(["aol.com"]));
}

#[test]
fn implicit_tls_1_0_is_weak_and_its_certificate_is_read() {
    let Some(r) = record("certgrep-implicit-tls-on-port-587.pcapng", "10.74.5.100:1212") else { return };
    assert!(names(&r).contains(&"weak-tls-version"));
    assert!(names(&r).contains(&"cert-sha1-signature"));
    let subject = r["cert"]["subject"].as_str().unwrap();
    assert!(subject.starts_with("CN=mobile.charter.net,"), "{subject}");
    assert_eq!(r["cert"]["sha1"].as_str().unwrap().len(), 40);
    assert_eq!(r["cipher"], "TLS_RSA_WITH_RC4_128_MD5");
    assert!(names(&r).contains(&"weak-cipher"), "RC4 is a weak cipher: {}", r["findings"]);
}

#[test]
fn a_certificate_that_does_not_cover_the_sni_is_a_mismatch() {
    let Some(r) = record(
        "ndpi-smtp-starttls-gmail-tls10-and-ipv6-vlan-tls12.pcap",
        "[2003:de:2016:125:fc36:8317:4e86:cb72]:7562",
    ) else {
        return;
    };
    assert!(names(&r).contains(&"cert-name-mismatch"));
    assert!(names(&r).contains(&"cert-self-signed"));
    assert_eq!(r["vlan"], 125);
    assert_eq!(r["tcp_anomalies"]["gap_bytes"], 5760, "the lost client segment inside TLS");
}

#[test]
fn tls13_session_says_the_certificate_is_not_visible() {
    let Some(r) = record("suricata-smtp-starttls-postfix-tls13.pcap", "10.16.1.11:34634") else { return };
    assert_eq!(names(&r), ["cert-not-visible-tls13"]);
    assert_eq!(r["cipher"], "TLS_AES_256_GCM_SHA384");
}

#[test]
fn exchange_ehlo_reply_keeps_x_anonymoustls_in_order() {
    let Some(r) = record("zeek-smtp-exchange-x-anonymoustls-xexch50.pcap", "188.184.129.157:35119") else { return };
    let kws: Vec<&str> =
        r["ehlo_extensions"].as_array().unwrap().iter().map(|e| e["keyword"].as_str().unwrap()).collect();
    assert_eq!(&kws[4..6], ["STARTTLS", "X-ANONYMOUSTLS"]);
    assert!(r["evidence"].to_string().contains("offers STARTTLS, X-ANONYMOUSTLS"));
    assert!(r["evidence"].to_string().contains("unsolicited reply 451"));
}

#[test]
fn snaplen_cut_session_explains_itself() {
    let Some(r) = record("zeek-smtp-snaplen68-no-payload.pcap", "201.186.157.67:60827") else { return };
    assert!(r["evidence"][0]["text"].as_str().unwrap().contains("snaplen"));
    assert_eq!(r["bytes_client"], 128);
    assert_eq!(r["bytes_server"], 477);
}

#[test]
fn retransmissions_are_counted_not_delivered_twice() {
    let Some(r) = record("zeek-smtp-exim-auth-login-retransmissions.pcap", "10.10.1.4:1470") else { return };
    assert!(r["tcp_anomalies"]["retransmissions"].as_u64().unwrap() >= 4);
    assert_eq!(r["tcp_anomalies"]["conflicting_overlaps"], 0);
    assert_eq!(r["messages_accepted"], 1);
}

#[test]
fn evidence_points_at_frames_tshark_would_show() {
    let Some(r) = record("zeek-smtp-starttls-gmail-tls12.pcap", "192.168.4.149:54170") else { return };
    let ev = r["evidence"].as_array().unwrap();
    let frame_of =
        |needle: &str| ev.iter().find(|e| e["text"].as_str().unwrap().contains(needle)).map(|e| e["frame"].clone());
    assert_eq!(frame_of("client sent STARTTLS"), Some(Value::from(10)));
    assert_eq!(frame_of("upgrade answered 220"), Some(Value::from(11)));
}

#[test]
fn show_credentials_decodes_secrets_only_when_asked() {
    let Some(dir) = common::public_corpus() else { return };
    let f = dir.join("arkime-smtp-submission-587-auth-plain-aol.pcap");
    let run = |extra: &[&str]| {
        let o = std::process::Command::new(env!("CARGO_BIN_EXE_smtpscope"))
            .args(["-q", "-F", "json", "-r", f.to_str().unwrap()])
            .args(extra)
            .output()
            .unwrap();
        (String::from_utf8_lossy(&o.stdout).into_owned(), String::from_utf8_lossy(&o.stderr).into_owned())
    };
    let (plain, _) = run(&[]);
    let v: Value = serde_json::from_str(plain.trim()).unwrap();
    assert_eq!(v["credentials"], Value::Null);
    assert!(!plain.contains("passwd"));
    let (shown, warn) = run(&["--show-credentials"]);
    let v: Value = serde_json::from_str(shown.trim()).unwrap();
    assert_eq!(v["credentials"], serde_json::json!(["PLAIN user=12345678@aol.com password=passwd"]));
    assert!(warn.contains("--show-credentials"));
}

#[test]
fn no_output_format_carries_auth_secrets_by_default() {
    let Some(dir) = common::public_corpus() else { return };
    let plain = dir.join("arkime-smtp-submission-587-auth-plain-aol.pcap");
    let login = dir.join("suricata-smtp-submission-587-auth-login-yahoo.pcap");
    // AUTH PLAIN's blob, its decoded password and user; AUTH LOGIN's user and password lines.
    let secrets = ["ADEyMzQ1Njc4QGFvbC5jb20AcGFzc3dk", "passwd", "12345678@aol.com"];
    for (file, mech) in [(&plain, "PLAIN"), (&login, "LOGIN")] {
        let f = file.to_str().unwrap();
        let mut login_lines = Vec::new();
        if mech == "LOGIN" {
            let o = std::process::Command::new(env!("CARGO_BIN_EXE_smtpscope"))
                .args(["-q", "-F", "json", "--show-credentials", "-r", f])
                .output()
                .unwrap();
            let v: Value = serde_json::from_str(String::from_utf8_lossy(&o.stdout).trim()).unwrap();
            for c in v["credentials"].as_array().unwrap() {
                login_lines.push(c.as_str().unwrap().trim_start_matches("LOGIN ").to_string());
            }
            assert_eq!(login_lines.len(), 2);
        }
        let runs: [&[&str]; 4] = [
            &["-F", "json", "-r", f],
            &["-F", "csv", "-r", f],
            &["-F", "table", "-r", f],
            &["check", "--expect", "tls", "--from", "0.0.0.0/0", "--to", "0.0.0.0/0", "-r", f],
        ];
        for args in runs {
            let o = std::process::Command::new(env!("CARGO_BIN_EXE_smtpscope")).args(args).output().unwrap();
            assert!(matches!(o.status.code(), Some(0 | 1)), "{args:?}: {o:?}");
            let all = [o.stdout, o.stderr].concat();
            let text = String::from_utf8_lossy(&all);
            for s in secrets.iter().copied().chain(login_lines.iter().map(String::as_str)) {
                assert!(!text.contains(s), "{args:?} printed the secret {s:?}");
            }
        }
        // What is reported: the mechanism, and that it crossed in clear.
        let o = std::process::Command::new(env!("CARGO_BIN_EXE_smtpscope"))
            .args(["-q", "-F", "json", "-r", f])
            .output()
            .unwrap();
        let v: Value = serde_json::from_str(String::from_utf8_lossy(&o.stdout).trim()).unwrap();
        assert_eq!(v["auth_mechanisms"], serde_json::json!([mech]));
        assert!(v["findings"].to_string().contains("cleartext-auth"), "{}", v["findings"]);
    }
}

#[test]
fn the_help_warns_about_show_credentials() {
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_smtpscope")).arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&o.stdout);
    let line = help.lines().find(|l| l.contains("--show-credentials")).expect("--show-credentials in --help");
    assert!(line.contains("FORENSICS ONLY") && line.contains("passwords"), "{line}");
}

#[test]
fn auth_login_secrets_are_decoded_line_by_line_when_asked() {
    let Some(dir) = common::public_corpus() else { return };
    let f = dir.join("suricata-smtp-submission-587-auth-login-yahoo.pcap");
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_smtpscope"))
        .args(["-q", "-F", "json", "--show-credentials", "-r", f.to_str().unwrap()])
        .output()
        .unwrap();
    let v: Value = serde_json::from_str(String::from_utf8_lossy(&o.stdout).trim()).unwrap();
    let creds = v["credentials"].as_array().unwrap();
    assert_eq!(creds.len(), 2, "{creds:?}");
    assert!(creds.iter().all(|c| c.as_str().unwrap().starts_with("LOGIN ")));
}

#[test]
fn exchange_x_exps_is_an_authentication_in_clear() {
    let r = common::records(&common::bundled().join("multi-site.pcap"))
        .into_iter()
        .find(|r| r["client"] == "10.1.0.11:39639")
        .expect("the POA → TOR session");
    assert_eq!(r["auth_mechanisms"], serde_json::json!(["X-EXPS GSSAPI"]));
    assert!(names(&r).contains(&"cleartext-auth"));
    assert!(r["evidence"].to_string().contains("X-EXPS GSSAPI in clear"));
}

fn run(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_smtpscope")).args(args).output().expect("run smtpscope")
}

fn bundled(name: &str) -> String {
    common::bundled().join(name).to_string_lossy().into_owned()
}

#[test]
fn the_table_has_a_findings_column_and_the_summary_counts_each_finding() {
    let o = run(&["-r", &bundled("expired-cert.pcap"), "--color", "never"]);
    assert!(o.status.success());
    let out = String::from_utf8_lossy(&o.stdout);
    let mut lines = out.lines();
    assert!(lines.next().unwrap().ends_with(" FINDINGS"), "{out}");
    assert!(lines.next().unwrap().ends_with(" expired,self-signed"), "{out}");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("\n  finding: cert-expired 1, cert-self-signed 1\n"), "{err}");
    let (_dir, sum) = common::scratch_file("summary.json");
    run(&["-r", &bundled("expired-cert.pcap"), "-F", "json", "--summary", sum.to_str().unwrap()]);
    let s: Value = serde_json::from_str(&std::fs::read_to_string(&sum).unwrap()).unwrap();
    assert_eq!(s["findings"]["cert-expired"], 1);
    assert_eq!(s["findings"]["weak-cipher"], 0, "every finding is a key");
}

#[test]
fn the_demo_table_shows_findings() {
    let o = run(&["-r", &bundled("demo.pcap"), "--no-tui"]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.lines().next().unwrap().ends_with("FINDINGS"), "{out}");
    assert!(out.lines().nth(1).unwrap().ends_with(" cert-hidden"), "{out}");
}

#[test]
fn into_a_pipe_the_table_cuts_nothing() {
    // 40-character HELO names and IPv6 addresses would be cut on a terminal.
    let Some(dir) = common::public_corpus() else { return };
    let f = dir.join("ndpi-smtp-starttls-gmail-tls10-and-ipv6-vlan-tls12.pcap");
    let o = run(&["-r", &f.to_string_lossy(), "--no-tui"]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(!out.contains('…'), "{out}");
    assert!(out.contains("[2003:de:2016:125:fc36:8317:4e86:cb72]:"), "{out}");
}

#[test]
fn the_verdict_rules_and_every_finding_are_documented_inside_the_project() {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/verdicts.md")).unwrap();
    for v in smtpscope::session::Verdict::ALL {
        assert!(doc.contains(&format!("**`{}`**", v.name())), "{} missing", v.name());
    }
    for step in 'a'..='g' {
        assert!(doc.contains(&format!("**({step})**")), "incomplete step ({step}) missing");
    }
    for f in smtpscope::session::FINDINGS {
        let short = smtpscope::report::finding::short(f);
        assert!(doc.contains(&format!("`{f}` (`{short}`)")), "{f} missing");
    }
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    assert!(readme.contains("docs/verdicts.md"), "README points users at it");
    for f in smtpscope::session::FINDINGS {
        assert!(readme.contains(&format!("`{f}`")), "README's findings list lacks {f}");
    }
}
