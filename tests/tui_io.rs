//! What the terminal UI reads and writes besides the screen: a session's packets read back from
//! its input (frame numbers as in the evidence, the run's BPF honoured, VLAN-tagged traffic
//! found), the live spool (bounded, rotating, cleaned up), and exports (NDJSON/CSV through the
//! export directory, pcaps that read back to the same session).

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use smtpscope::capture::spool::Spool;
use smtpscope::capture::MergedReader;
use smtpscope::engine::{Config, Engine};
use smtpscope::report::{Format, Options};
use smtpscope::session::Session;
use smtpscope::tui::export::{self, ExportDir};
use smtpscope::tui::packets::{self, Origin, Request};

fn demo() -> PathBuf {
    common::bundled().join("demo.pcap")
}

fn run(path: &Path, bpf: Option<&str>) -> Vec<Session> {
    let mut reader = MergedReader::open(&[path.to_path_buf()], bpf).unwrap();
    let name: Arc<str> = Arc::from(path.display().to_string().as_str());
    let mut engine = Engine::new(Config::default(), vec![name], None);
    let mut out = Vec::new();
    while let Some(p) = reader.next_packet() {
        engine.packet(&p, &mut |s| out.push(s));
    }
    engine.finish(&mut |s| out.push(s));
    out
}

#[test]
fn a_sessions_packets_are_read_back_with_its_frame_numbers() {
    let origin = Origin::Files { paths: vec![demo()] };
    for s in run(&demo(), None) {
        let p = packets::load(&origin, &Request::of(&s)).unwrap();
        assert_eq!(p.rows.len() as u64, s.packets, "{}", s.client);
        assert_eq!(p.rows.first().unwrap().frame, s.first_frame);
        assert_eq!(p.rows.last().unwrap().frame, s.last_frame);
        for e in s.evidence.iter().filter_map(|e| e.frame).filter(|f| *f > 0) {
            assert!(p.rows.iter().any(|r| r.frame == e), "evidence frame {e} is among the packets");
        }
    }
}

#[test]
fn frames_filtered_by_the_runs_bpf_keep_their_numbers_in_the_file() {
    let bpf = Some("tcp port 2526");
    let s = run(&demo(), bpf).remove(0);
    assert_eq!(s.first_frame, 75, "frame numbers count every packet of the file");
    let p = packets::load(&Origin::Files { paths: vec![demo()] }, &Request::of(&s)).unwrap();
    assert_eq!(p.rows.len() as u64, s.packets);
    assert!(p.rows.iter().all(|r| r.data.windows(2).any(|w| w == 2526u16.to_be_bytes())));
}

#[test]
fn vlan_tagged_sessions_are_matched_by_decoding() {
    let Some(dir) = common::public_corpus() else { return };
    let path = dir.join("ndpi-smtp-starttls-gmail-tls10-and-ipv6-vlan-tls12.pcap");
    let origin = Origin::Files { paths: vec![path.clone()] };
    let s = run(&path, None).into_iter().find(|s| s.vlan.is_some()).expect("a VLAN session");
    let p = packets::load(&origin, &Request::of(&s)).unwrap();
    assert_eq!(p.rows.len() as u64, s.packets);
}

#[test]
fn the_spool_keeps_the_latest_packets_and_says_what_it_lost() {
    let scratch = common::scratch("spool");
    let dir = scratch.path();
    let mut reader = MergedReader::open(&[demo()], None).unwrap();
    let lt = reader.sources()[0].linktype();
    let mut spool = Spool::create(dir, lt, 8 * 1024, None).unwrap();
    let shared = spool.shared();
    let mut engine = Engine::new(Config::default(), Vec::new(), Some(Arc::from("lo")));
    let mut sessions = Vec::new();
    while let Some(p) = reader.next_packet() {
        spool.write(&p);
        engine.packet(&p, &mut |s| sessions.push(s));
    }
    engine.finish(&mut |s| sessions.push(s));
    spool.sync();
    let ix = shared.index();
    assert!(ix.oldest_frame > 1, "the bound forced a rotation: {ix:?}");
    let size: u64 = ix.segments.iter().map(|s| std::fs::metadata(&s.path).unwrap().len()).sum();
    assert!(size <= 8 * 1024 + 4 * 1024, "spool stays near its bound: {size}");
    let origin = Origin::Spool(Arc::clone(&shared));
    let last = sessions.last().unwrap();
    let p = packets::load(&origin, &Request::of(last)).unwrap();
    assert_eq!(p.rows.len() as u64, last.packets, "the latest session is whole");
    let first = &sessions[0];
    let p = packets::load(&origin, &Request::of(first)).unwrap();
    assert!(p.note.as_deref().is_some_and(|n| n.contains("no longer in the spool")), "{:?}", p.note);
    let spool_dir = shared.dir().to_path_buf();
    drop(spool);
    assert!(spool_dir.is_dir(), "readers keep the spool");
    drop(origin);
    drop(shared);
    assert!(!spool_dir.exists(), "the last holder removes it");
}

#[test]
fn exports_write_the_report_formats_into_the_opened_directory() {
    let scratch = common::scratch("export");
    let dir = scratch.path();
    let x = ExportDir::open(dir).unwrap();
    let sessions = run(&demo(), None);
    let (name, f) = x.create_unique("smtpscope-sessions-test", "ndjson").unwrap();
    let n = export::write_sessions(sessions.iter().skip(1), Format::Json, Options::default(), f).unwrap();
    assert_eq!(n, 2);
    let text = std::fs::read_to_string(dir.join(&name)).unwrap();
    let verdicts: Vec<String> =
        text.lines().map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["verdict"].to_string()).collect();
    assert_eq!(verdicts, ["\"starttls-offered-unused\"", "\"plaintext\""]);
    let (name, f) = x.create_unique("smtpscope-sessions-test", "csv").unwrap();
    export::write_sessions(sessions.iter(), Format::Csv, Options::default(), f).unwrap();
    let csv = std::fs::read_to_string(dir.join(name)).unwrap();
    assert_eq!(csv.lines().count(), 4, "header and three rows");
}

#[test]
fn a_written_pcap_reads_back_to_the_same_session() {
    let scratch = common::scratch("pcap");
    let dir = scratch.path();
    let x = ExportDir::open(dir).unwrap();
    let s = run(&demo(), None).remove(0);
    let p = packets::load(&Origin::Files { paths: vec![demo()] }, &Request::of(&s)).unwrap();
    let (name, f) = x.create_unique("one", "pcap").unwrap();
    packets::write_pcap(&p, f).unwrap();
    let back = run(&dir.join(name), None);
    assert_eq!(back.len(), 1);
    assert_eq!((back[0].verdict, back[0].client, back[0].packets), (s.verdict, s.client, s.packets));
}
