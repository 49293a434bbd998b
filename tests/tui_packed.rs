//! The terminal UI keeps finished sessions packed (serialized, compressed against a dictionary
//! trained on the run's first sessions): what comes back out must be the session that went in.

use std::path::PathBuf;
use std::sync::Arc;

use smtpscope::capture::MergedReader;
use smtpscope::engine::{Config, Engine};
use smtpscope::filter::Filter;
use smtpscope::session::Session;
use smtpscope::tui::feed::{Stage, Update};
use smtpscope::tui::packed::Packer;
use smtpscope::tui::store::{Budget, Store};

/// Every session of every bundled capture, with transcripts, as the UI's engine makes them.
fn bundled() -> Vec<Session> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("captures");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "pcap"))
        .collect();
    files.sort();
    let mut out = Vec::new();
    for f in files {
        let mut r = MergedReader::open(std::slice::from_ref(&f), None).expect("capture opens");
        let cfg = Config { transcript: true, ..Config::default() };
        let mut e = Engine::new(cfg, vec![Arc::from(f.display().to_string())], None);
        while let Some(p) = r.next_packet() {
            e.packet(&p, &mut |s| out.push(s));
        }
        e.finish(&mut |s| out.push(s));
    }
    out
}

/// Renumbered copies, enough to train a dictionary on.
fn many(base: &[Session], n: usize) -> Vec<Session> {
    (0..n)
        .map(|i| {
            let mut s = base[i % base.len()].clone();
            s.id = i as u64;
            s
        })
        .collect()
}

/// What the feed's packer thread hands the UI for `sessions` (dictionary trained on the first
/// `samples`, waited for at the end as at the end of a run).
fn staged(st: &Store, sessions: &[Session], samples: usize) -> Vec<Update> {
    let mut stage = Stage::new(Packer::with_samples(samples), st.filter_slot());
    let mut out = Vec::new();
    for batch in sessions.chunks(64) {
        stage.pass(Update::Finished(batch.to_vec()), &mut |u| {
            out.push(u);
            true
        });
    }
    stage.flush(&mut |u| {
        out.push(u);
        true
    });
    out
}

/// A store fed as the UI feeds it.
fn store_of(sessions: &[Session], samples: usize) -> Store {
    let mut st = Store::new();
    for u in staged(&st, sessions, samples) {
        feed(&mut st, u);
    }
    st.rebuild();
    st
}

fn feed(st: &mut Store, u: Update) {
    match u {
        Update::Rows(v) => v.into_iter().for_each(|r| st.ingest(r)),
        Update::Codec(c) => st.set_codec(c),
        Update::Repacked(v) => st.repack(v),
        _ => {}
    }
}

#[test]
fn packed_rows_read_back_as_the_sessions_that_went_in() {
    let base = bundled();
    assert!(base.len() > 40, "the bundled captures hold their sessions");
    let sessions = many(&base, 600);
    let st = store_of(&sessions, 256);
    assert_eq!(st.packed(), sessions.len(), "every finished row is packed once the dictionary is ready");
    for want in &sessions {
        let got = st.by_id(want.id).expect("row reads back");
        assert_eq!(format!("{got:?}"), format!("{want:?}"), "session {} changed in the packing", want.id);
    }
}

#[test]
fn filters_set_later_still_see_the_packed_transcripts() {
    let base = bundled();
    let sessions = many(&base, 600);
    let word = "STARTTLS";
    let want = sessions.iter().filter(|s| Filter::parse(&format!("\"{word}\"")).unwrap().matches(s)).count();
    assert!(want > 0 && want < sessions.len());
    let mut st = store_of(&sessions, 256);
    st.set_filter(Filter::parse(&format!("\"{word}\"")).unwrap());
    while !st.work(&mut Budget::units(u64::MAX)) {}
    st.rebuild();
    assert_eq!(st.len(), want);
}

#[test]
fn filters_on_the_table_columns_decide_as_on_the_whole_sessions() {
    let base = bundled();
    let sessions = many(&base, 600);
    let mut st = store_of(&sessions, 256);
    for text in [
        "verdict:starttls",
        "!verdict:plaintext or verdict:starttls-offered-unused",
        "tls:>=1.2",
        "tls:none",
        "tls:any or port:465",
        "helo:*example*",
        "client:10.0.0.0/8 and !server:10.231.0.2",
        "host:fd00::/8",
        "state:open",
    ] {
        let f = Filter::parse(text).unwrap();
        let want = sessions.iter().filter(|s| f.matches(s)).count();
        st.set_filter(f);
        assert_eq!(st.len(), want, "{text}");
    }
}
