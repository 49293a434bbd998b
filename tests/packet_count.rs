//! A session's `packets` counts every frame of its flow as tshark does, the ACK of the last FIN
//! included; a session whose last ACK never comes still ends as closed.

mod common;

use std::sync::Arc;

use common::{opening, Dialogue};
use smtpscope::capture::MergedReader;
use smtpscope::engine::{Config, Engine};

fn frames_in(path: &std::path::Path) -> u64 {
    let mut r = MergedReader::open(&[path.to_path_buf()], None).unwrap();
    let mut n = 0;
    while r.next_packet().is_some() {
        n += 1;
    }
    n
}

#[test]
fn a_one_session_capture_counts_every_frame_as_the_sessions() {
    let mut files = vec![common::bundled().join("plaintext.pcap"), common::bundled().join("starttls-454.pcap")];
    if let Some(dir) = common::public_corpus() {
        files.push(dir.join("arkime-smtp-submission-587-auth-plain-aol.pcap"));
    }
    for f in files {
        let s = common::sessions(&f);
        assert_eq!(s.len(), 1, "{}", f.display());
        assert_eq!(s[0].packets, frames_in(&f), "{}: the session's packets against the file's frames", f.display());
        assert_eq!(s[0].last_frame, frames_in(&f), "{}: the last ACK is the session's last frame", f.display());
    }
}

#[test]
fn the_session_ends_with_the_ack_of_the_last_fin_not_at_the_end_of_input() {
    let d = opening(Dialogue::new(40000, 25), &[]).c("QUIT\r\n").s("221 bye\r\n").close();
    let pkts = d.packets(1460);
    let mut engine = Engine::new(Config::default(), vec![Arc::from("t")], None);
    let mut out = Vec::new();
    common::feed_packets(&mut engine, &pkts, usize::MAX, &mut |s| out.push(s));
    assert_eq!(out.len(), 1, "finished by its last ACK, before the input ends");
    assert_eq!(out[0].packets, pkts.len() as u64);
    assert_eq!(out[0].end, smtpscope::flow::EndReason::Closed);
}

#[test]
fn a_last_ack_that_never_comes_still_ends_the_session_as_closed() {
    let d = opening(Dialogue::new(40000, 25), &[]).c("QUIT\r\n").s("221 bye\r\n").close();
    let mut pkts = d.packets(1460);
    pkts.pop();
    let s = common::run_packets(&pkts);
    assert_eq!(s.len(), 1);
    assert_eq!(s[0].packets, pkts.len() as u64);
    assert_eq!(s[0].end, smtpscope::flow::EndReason::Closed);
    assert_eq!(s[0].verdict.map(|v| v.name()), Some("plaintext"));
    // ... and a later packet of another flow, past the wait, finishes it before the input ends.
    let later = Dialogue::new(40001, 25).jump(5);
    let mut both = pkts.clone();
    both.extend(later.packets(1460).into_iter().map(|(ts, p)| (ts + 5_000_000, p)));
    let mut engine = Engine::new(Config::default(), vec![Arc::from("t")], None);
    let mut out = Vec::new();
    common::feed_packets(&mut engine, &both, usize::MAX, &mut |s| out.push(s));
    assert_eq!(out.len(), 1, "the closed flow gave up waiting");
}
