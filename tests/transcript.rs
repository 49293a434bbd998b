//! The SMTP transcript the terminal UI shows: recorded only when asked, bounded, bodies counted
//! not stored, AUTH secrets masked, the TLS start marked; and in-progress snapshots of open
//! sessions for live views. On real captures.

mod common;

use std::path::Path;
use std::sync::Arc;

use smtpscope::capture::MergedReader;
use smtpscope::engine::{Config, Engine};
use smtpscope::session::transcript::{BodyOutcome, Entry, Secret};
use smtpscope::session::{Session, Verdict};

fn with_transcripts(path: &Path) -> Vec<Session> {
    common::sessions_with(path, Config { transcript: true, ..Config::default() })
}

fn demo() -> Vec<Session> {
    with_transcripts(&common::bundled().join("demo.pcap"))
}

fn commands(s: &Session) -> Vec<String> {
    s.transcript
        .as_ref()
        .unwrap()
        .entries
        .iter()
        .filter_map(|e| match e {
            Entry::Command { text, .. } => Some(String::from_utf8_lossy(&text.bytes).into_owned()),
            _ => None,
        })
        .collect()
}

#[test]
fn the_report_path_records_no_transcript() {
    for s in common::sessions(&common::bundled().join("demo.pcap")) {
        assert!(s.transcript.is_none());
    }
}

#[test]
fn the_tls_start_follows_the_220_to_starttls() {
    let s = demo().into_iter().find(|s| s.verdict == Some(Verdict::Starttls)).unwrap();
    let t = s.transcript.unwrap();
    let pos = t.entries.iter().position(|e| matches!(e, Entry::TlsStart { .. })).expect("TLS start marked");
    assert!(matches!(&t.entries[pos - 1], Entry::Reply { code: Some(220), .. }));
    assert!(matches!(&t.entries[pos - 2], Entry::Command { text, .. } if text.bytes == b"STARTTLS"));
    assert_eq!(pos, t.entries.len() - 1, "nothing is recorded once the dialogue is encrypted");
}

#[test]
fn a_body_is_summarised_as_a_count_with_its_outcome() {
    let s = demo().into_iter().find(|s| s.verdict == Some(Verdict::Plaintext)).unwrap();
    let t = s.transcript.as_ref().unwrap();
    let body = t.entries.iter().find_map(|e| match e {
        Entry::Body { bytes, ended, outcome, .. } => Some((*bytes, *ended, *outcome)),
        _ => None,
    });
    assert_eq!(body, Some((s.message_bytes, true, BodyOutcome::Accepted(250))));
    let text: usize = t
        .entries
        .iter()
        .map(|e| match e {
            Entry::Command { text, .. } | Entry::Reply { text, .. } => text.bytes.len(),
            _ => 0,
        })
        .sum();
    assert!(text < 600, "the body's {} bytes are not stored ({text} bytes of lines)", s.message_bytes);
}

#[test]
fn commands_and_replies_keep_their_order_and_frames() {
    let s = demo().into_iter().find(|s| s.verdict == Some(Verdict::StarttlsOfferedUnused)).unwrap();
    assert_eq!(
        commands(&s),
        [
            "ehlo demo-client.example",
            "mail FROM:<alice@demo-client.example> size=1122",
            "rcpt TO:<bob@test.local>",
            "data",
            "quit"
        ]
    );
    let greeting = s.evidence.iter().find(|e| e.text.starts_with("greeting")).and_then(|e| e.frame).unwrap();
    let frames: Vec<u64> = s
        .transcript
        .unwrap()
        .entries
        .iter()
        .filter_map(|e| match e {
            Entry::Command { frame, .. } | Entry::Reply { frame, .. } => Some(*frame),
            _ => None,
        })
        .collect();
    assert!(frames.windows(2).all(|w| w[0] <= w[1]), "{frames:?}");
    assert_eq!(frames.first(), Some(&greeting));
}

fn auth_plain_capture() -> Option<std::path::PathBuf> {
    Some(common::public_corpus()?.join("arkime-smtp-submission-587-auth-plain-aol.pcap"))
}

#[test]
fn auth_plain_secrets_are_masked_and_not_kept() {
    let Some(path) = auth_plain_capture() else { return };
    let s = with_transcripts(&path).remove(0);
    let t = s.transcript.as_ref().unwrap();
    let auth = t
        .entries
        .iter()
        .find_map(|e| match e {
            Entry::Command { text, secret: Some(sec), .. } => Some((text.bytes.clone(), sec.clone())),
            _ => None,
        })
        .expect("the AUTH line is recorded");
    assert_eq!(auth, (b"AUTH PLAIN".to_vec(), Secret::Masked));
    // The secret as it crossed the wire, read from the capture by the test, is nowhere in it.
    let secrets = common::wire::secrets(&path);
    assert!(!secrets.wire.is_empty(), "the capture's AUTH PLAIN secret was not found");
    secrets.assert_absent(&format!("{t:?}"), true, "the transcript");
}

#[test]
fn show_credentials_keeps_the_secret_in_the_transcript() {
    let Some(path) = auth_plain_capture() else { return };
    let cfg = Config { transcript: true, keep_credentials: true, ..Config::default() };
    let s = common::sessions_with(&path, cfg).remove(0);
    let kept = s
        .transcript
        .unwrap()
        .entries
        .into_iter()
        .any(|e| matches!(e, Entry::Command { secret: Some(Secret::Shown(b)), .. } if !b.is_empty()));
    assert!(kept);
}

#[test]
fn auth_login_continuation_lines_are_masked() {
    let Some(dir) = common::public_corpus() else { return };
    let s = with_transcripts(&dir.join("suricata-smtp-submission-587-auth-login-yahoo.pcap")).remove(0);
    let t = s.transcript.unwrap();
    let masked = t.entries.iter().filter(|e| matches!(e, Entry::Command { secret: Some(Secret::Masked), .. })).count();
    assert!(masked >= 2, "user name and password lines masked: {masked}");
}

/// Reads `path` through an engine tracking open sessions, taking snapshots every `every` packets.
fn with_snapshots(path: &Path, every: u64) -> (Vec<Session>, Vec<Session>) {
    let mut reader = MergedReader::open(&[path.to_path_buf()], None).unwrap();
    let cfg = Config { track_open: true, transcript: true, ..Config::default() };
    let mut engine = Engine::new(cfg, vec![Arc::from("x")], None);
    let (mut snaps, mut done) = (Vec::new(), Vec::new());
    while let Some(p) = reader.next_packet() {
        engine.packet(&p, &mut |s| done.push(s));
        if engine.stats.packets % every == 0 {
            engine.changed_open_sessions(usize::MAX, &mut |s| snaps.push(s));
        }
    }
    engine.finish(&mut |s| done.push(s));
    (snaps, done)
}

#[test]
fn open_sessions_are_snapshotted_in_progress_with_the_final_id() {
    let (snaps, done) = with_snapshots(&common::bundled().join("demo.pcap"), 5);
    assert!(!snaps.is_empty());
    assert!(snaps.iter().all(|s| s.in_progress && s.verdict.is_some()));
    assert!(done.iter().all(|s| !s.in_progress));
    for s in &snaps {
        assert!(done.iter().any(|d| d.id == s.id && d.client == s.client), "snapshot {} has a final record", s.id);
    }
    let ids: std::collections::BTreeSet<u64> = done.iter().map(|s| s.id).collect();
    assert_eq!(ids.len(), done.len(), "ids are unique");
}

#[test]
fn a_snapshot_grows_as_the_dialogue_goes_on() {
    let (snaps, _) = with_snapshots(&common::bundled().join("demo.pcap"), 3);
    let first = snaps.iter().filter(|s| s.client.port() == 40002).map(|s| s.transcript.as_ref().unwrap().entries.len());
    let lens: Vec<usize> = first.collect();
    assert!(lens.len() >= 3 && lens.windows(2).all(|w| w[0] <= w[1]) && lens.last() > lens.first(), "{lens:?}");
}

#[test]
fn unchanged_sessions_are_not_snapshotted_again() {
    let mut reader = MergedReader::open(&[common::bundled().join("demo.pcap")], None).unwrap();
    let cfg = Config { track_open: true, ..Config::default() };
    let mut engine = Engine::new(cfg, vec![Arc::from("x")], None);
    for _ in 0..20 {
        let p = reader.next_packet().unwrap();
        engine.packet(&p, &mut |_| {});
    }
    let mut n = 0;
    engine.changed_open_sessions(usize::MAX, &mut |_| n += 1);
    assert_eq!(n, 1);
    let mut again = 0;
    engine.changed_open_sessions(usize::MAX, &mut |_| again += 1);
    assert_eq!(again, 0);
}

#[test]
fn snapshots_come_in_bounded_batches() {
    let a = common::opening(common::Dialogue::new(40000, 25), &["STARTTLS"]).packets(1460);
    let b = common::opening(common::Dialogue::new(40001, 25), &["STARTTLS"]).packets(1460);
    let mut engine = Engine::new(Config { track_open: true, ..Config::default() }, vec![Arc::from("x")], None);
    let interleaved: Vec<(i64, Vec<u8>)> = a.into_iter().zip(b).flat_map(|(x, y)| [x, y]).collect();
    common::feed_packets(&mut engine, &interleaved, usize::MAX, &mut |_| {});
    let mut batch = 0;
    let left = engine.changed_open_sessions(1, &mut |_| batch += 1);
    assert_eq!((batch, left), (1, 1), "one now, the other waits for the next call");
    let left = engine.changed_open_sessions(1, &mut |_| batch += 1);
    assert_eq!((batch, left), (2, 0));
}

#[test]
fn exchange_x_exps_blobs_are_masked_like_auth() {
    // Hubs with X-ANONYMOUSTLS suppressed authenticate with X-EXPS GSSAPI/NTLM in clear.
    let s = with_transcripts(&common::bundled().join("multi-site.pcap"))
        .into_iter()
        .find(|s| s.client.to_string() == "10.1.0.11:39639")
        .expect("the POA → TOR session");
    let t = s.transcript.as_ref().unwrap();
    let xexps = t
        .entries
        .iter()
        .find_map(|e| match e {
            Entry::Command { text, secret: Some(sec), .. } => Some((text.bytes.clone(), sec.clone())),
            _ => None,
        })
        .expect("the X-EXPS line is recorded");
    assert_eq!(xexps, (b"X-EXPS GSSAPI".to_vec(), Secret::Masked));
    assert!(!format!("{t:?}").contains("TlRMTVNT"), "no trace of the NTLM blob");
}
