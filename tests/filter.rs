//! The display-filter language on real captures: each key selects what it says, terms combine,
//! and the CLI's `-Y` applies it to the report formats.

mod common;

use std::process::Command;

use smtpscope::engine::Config;
use smtpscope::filter::Filter;
use smtpscope::session::Session;

fn demo() -> Vec<Session> {
    common::sessions(&common::bundled().join("demo.pcap"))
}

/// Client ports of the sessions the filter keeps.
fn kept(sessions: &[Session], filter: &str) -> Vec<u16> {
    let f = Filter::parse(filter).unwrap_or_else(|e| panic!("{filter}: {e}"));
    sessions.iter().filter(|s| f.matches(s)).map(|s| s.client.port()).collect()
}

fn public(name: &str) -> Option<Vec<Session>> {
    let dir = common::public_corpus()?;
    Some(common::sessions_with(&dir.join(name), Config { transcript: true, ..Config::default() }))
}

#[test]
fn verdict_selects_by_verdict_name() {
    assert_eq!(kept(&demo(), "verdict:starttls"), [40001]);
}

#[test]
fn a_bang_negates_a_term() {
    assert_eq!(kept(&demo(), "!verdict:starttls"), [40002, 40003]);
}

#[test]
fn or_unions_terms() {
    assert_eq!(kept(&demo(), "verdict:starttls or verdict:plaintext"), [40001, 40003]);
}

#[test]
fn spaces_intersect_terms() {
    assert_eq!(kept(&demo(), "port:25 !verdict:starttls"), [40002]);
}

#[test]
fn port_matches_the_server_port() {
    assert_eq!(kept(&demo(), "port:2526"), [40003]);
    assert_eq!(kept(&demo(), "port:40001"), Vec::<u16>::new(), "client ports are not server ports");
}

#[test]
fn server_and_client_take_cidrs() {
    assert_eq!(kept(&demo(), "server:10.231.0.0/24").len(), 3);
    assert_eq!(kept(&demo(), "client:10.231.0.2"), Vec::<u16>::new());
    assert_eq!(kept(&demo(), "host:10.231.0.2").len(), 3);
}

#[test]
fn helo_globs_ignore_case() {
    assert_eq!(kept(&demo(), "helo:DEMO-*.example").len(), 3);
    assert!(kept(&demo(), "helo:*.contoso.com").is_empty());
}

#[test]
fn ext_matches_an_offered_extension() {
    let Some(s) = public("zeek-smtp-exchange-x-anonymoustls-xexch50.pcap") else { return };
    assert_eq!(kept(&s, "ext:X-ANONYMOUSTLS"), [35119]);
    assert_eq!(kept(&demo(), "ext:x-anonymoustls"), Vec::<u16>::new());
    assert_eq!(kept(&demo(), "ext:STARTTLS"), [40001, 40002]);
}

#[test]
fn finding_matches_a_finding_name() {
    let Some(s) = public("arkime-smtp-submission-587-auth-plain-aol.pcap") else { return };
    assert_eq!(kept(&s, "finding:cleartext-auth"), [3293]);
    assert_eq!(kept(&s, "auth:PLAIN"), [3293]);
}

#[test]
fn tls_below_a_version_needs_a_handshake_at_that_version() {
    let Some(s) = public("ndpi-smtp-starttls-gmail-tls10-and-ipv6-vlan-tls12.pcap") else { return };
    assert_eq!(kept(&s, "tls:<1.2"), [57406]);
    assert_eq!(kept(&s, "tls:>=1.2"), [7562]);
    assert_eq!(kept(&demo(), "tls:none"), [40002, 40003]);
}

#[test]
fn cert_matches_subject_or_san() {
    let Some(s) = public("zeek-smtp-starttls-gmail-tls12.pcap") else { return };
    assert_eq!(kept(&s, "cert:*mx.google.com*").len(), 1);
    assert!(kept(&s, "cert:*.example").is_empty());
}

#[test]
fn free_text_searches_the_transcript() {
    let Some(s) = public("zeek-smtp-exchange-x-anonymoustls-xexch50.pcap") else { return };
    assert_eq!(kept(&s, r#""queued mail""#), [35119], "text of a 250 reply, any case");
    assert!(kept(&s, r#""no such words""#).is_empty());
}

#[test]
fn free_text_without_a_transcript_still_searches_names_and_evidence() {
    assert_eq!(kept(&demo(), "\"demo-client\"").len(), 3);
    assert_eq!(kept(&demo(), "\"ClientHello\""), [40001]);
}

#[test]
fn state_tells_open_from_finished_sessions() {
    let mut s = demo();
    s[0].in_progress = true;
    assert_eq!(kept(&s, "state:open"), [40001]);
    assert_eq!(kept(&s, "state:done"), [40002, 40003]);
}

fn smtpscope(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_smtpscope")).args(args).output().expect("run smtpscope")
}

fn demo_path() -> String {
    common::bundled().join("demo.pcap").to_string_lossy().into_owned()
}

#[test]
fn cli_y_filters_json_records() {
    let o = smtpscope(&["-q", "-r", &demo_path(), "-F", "json", "-Y", "!verdict:starttls port:25"]);
    assert!(o.status.success());
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(out.lines().count(), 1, "{out}");
    assert!(out.contains("\"starttls-offered-unused\""));
}

#[test]
fn cli_y_filters_csv_and_table_rows() {
    let o = smtpscope(&["-q", "-r", &demo_path(), "-F", "csv", "-Y", "verdict:plaintext"]);
    assert_eq!(String::from_utf8_lossy(&o.stdout).lines().count(), 2, "header and one row");
    let o = smtpscope(&["-q", "-r", &demo_path(), "--color", "never", "-Y", "tls:1.3"]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(out.lines().count(), 2, "{out}");
}

#[test]
fn cli_y_free_text_reads_the_transcript() {
    let Some(dir) = common::public_corpus() else { return };
    let f = dir.join("zeek-smtp-exchange-x-anonymoustls-xexch50.pcap");
    let o = smtpscope(&["-q", "-r", &f.to_string_lossy(), "-F", "json", "-Y", "\"InternalId=97779625\""]);
    assert_eq!(String::from_utf8_lossy(&o.stdout).lines().count(), 1);
}

#[test]
fn cli_y_rejects_a_bad_filter_with_its_position() {
    let o = smtpscope(&["-r", &demo_path(), "-Y", "verdict:starttls or prot:25"]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.starts_with("smtpscope: bad display filter at column 21: unknown key 'prot:'"), "{err}");
    assert!(o.stdout.is_empty());
}

#[test]
fn the_summary_still_counts_every_session() {
    let o = smtpscope(&["-r", &demo_path(), "-F", "json", "-Y", "verdict:plaintext"]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("3 SMTP session(s)"));
}

#[test]
fn cli_y_refuses_wireshark_and_tcpdump_habits_and_says_what_was_meant() {
    for (habit, meant) in [
        ("tcp.port==25", "port:25"),
        ("verdict==plaintext", "verdict:plaintext"),
        ("verdict=starttls", "verdict:starttls"),
        ("port 25", "port:25"),
        ("host 10.1.0.11", "host:10.1.0.11"),
        ("port:25 | port:2525", "port:25 or port:2525"),
    ] {
        let o = smtpscope(&["-r", &demo_path(), "-Y", habit]);
        assert_eq!(o.status.code(), Some(2), "{habit}");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains(&format!("did you mean '{meant}'?")), "{habit}: {err}");
        assert!(o.stdout.is_empty(), "{habit}");
    }
}

#[test]
fn the_packets_of_the_kept_sessions_are_written_in_file_order_and_read_back_the_same() {
    let input = common::bundled().join("demo.pcap");
    let mut all = demo();
    // Sessions name their file as it was given on the command line.
    for s in &mut all {
        s.file = Some(input.display().to_string().into());
    }
    let plain: Vec<&Session> = all.iter().filter(|s| s.client.port() == 40003).collect();
    let mut keep = smtpscope::report::packets::Keep::default();
    for s in &plain {
        keep.add(s);
    }
    let (_dir, out) = common::scratch_file("kept.pcap");
    let written = keep.write(&[input], std::fs::File::create(&out).unwrap()).unwrap();
    assert_eq!(written, plain[0].packets, "every packet of the session, and no other");
    let again = common::sessions(&out);
    assert_eq!(again.len(), 1);
    assert_eq!((again[0].client, again[0].verdict), (plain[0].client, plain[0].verdict));
    // In file order: the timestamps never go back.
    let mut cap = pcap::Capture::from_file(&out).unwrap();
    let mut last = (0, 0);
    while let Ok(p) = cap.next_packet() {
        let t = (p.header.ts.tv_sec, p.header.ts.tv_usec);
        assert!(t >= last);
        last = t;
    }
}
