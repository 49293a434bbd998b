//! Every bundled and shared capture cut short — at packet boundaries (all of them up to 500
//! packets, 500 spread cuts above) and at pseudo-random byte offsets, headers included — must
//! read without a panic, warn exactly when a record was cut, read every whole packet before the
//! cut, report every session those packets make (the same records as the packets replayed in
//! memory: nothing lost to the cut) and invent none, each with a verdict.

mod common;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use smtpscope::capture::{MergedReader, SourceEnd};
use smtpscope::engine::{Config, Engine};

/// Byte offsets where packet records (pcap) or blocks (pcapng) end.
fn boundaries(bytes: &[u8]) -> Vec<usize> {
    let mut out = Vec::new();
    let u32_at = |b: &[u8], o: usize, le: bool| {
        b.get(o..o + 4).map(|s| {
            let a = [s[0], s[1], s[2], s[3]];
            if le {
                u32::from_le_bytes(a)
            } else {
                u32::from_be_bytes(a)
            }
        })
    };
    let magic = u32_at(bytes, 0, true).unwrap_or(0);
    if magic == 0x0a0d_0d0a {
        // pcapng: the section header's byte-order magic tells the endianness.
        let le = u32_at(bytes, 8, true) == Some(0x1a2b_3c4d);
        let mut at = 0;
        while let Some(len) = u32_at(bytes, at + 4, le) {
            if len < 12 || at + len as usize > bytes.len() {
                break;
            }
            at += len as usize;
            out.push(at);
        }
    } else {
        let le = matches!(magic, 0xa1b2_c3d4 | 0xa1b2_3c4d);
        let mut at = 24;
        out.push(at);
        while let Some(caplen) = u32_at(bytes, at + 8, le) {
            let end = at + 16 + caplen as usize;
            if end > bytes.len() {
                break;
            }
            at = end;
            out.push(at);
        }
    }
    out
}

/// A session as the test compares it: client, server, first frame, verdict.
type Key = (String, String, u64, &'static str);

struct Run {
    keys: Vec<Key>,
    truncated: bool,
    packets: usize,
}

/// An owned packet, to replay a prefix of the whole file.
struct Owned {
    ts: i64,
    data: Vec<u8>,
    orig_len: u32,
    linktype: i32,
    frame: u64,
}

fn key(s: &smtpscope::session::Session) -> Key {
    let v = s.verdict.expect("every session has a verdict").name();
    (s.client.to_string(), s.server.to_string(), s.first_frame, v)
}

fn run(path: &Path, keep: Option<&mut Vec<Owned>>) -> Option<Run> {
    let mut reader = MergedReader::open(&[path.to_path_buf()], None).ok()?;
    let mut engine = Engine::new(Config::default(), vec![Arc::from("cut")], None);
    let mut keys = Vec::new();
    let mut take = |s: smtpscope::session::Session| keys.push(key(&s));
    let mut packets = 0;
    let mut keep = keep;
    while let Some(p) = reader.next_packet() {
        packets += 1;
        if let Some(k) = keep.as_deref_mut() {
            k.push(Owned {
                ts: p.ts,
                data: p.data.to_vec(),
                orig_len: p.orig_len,
                linktype: p.linktype,
                frame: p.frame,
            });
        }
        engine.packet(&p, &mut take);
    }
    engine.finish(&mut take);
    let truncated = matches!(reader.sources()[0].end(), Some(SourceEnd::Truncated(_)));
    Some(Run { keys, truncated, packets })
}

/// What the engine reports for the first `n` packets of the whole file.
fn prefix(packets: &[Owned], n: usize) -> Vec<Key> {
    let mut engine = Engine::new(Config::default(), vec![Arc::from("cut")], None);
    let mut keys = Vec::new();
    let mut take = |s: smtpscope::session::Session| keys.push(key(&s));
    for o in packets.iter().take(n) {
        let p = smtpscope::capture::Packet {
            ts: o.ts,
            data: &o.data,
            orig_len: o.orig_len,
            linktype: o.linktype,
            source: 0,
            frame: o.frame,
        };
        engine.packet(&p, &mut take);
    }
    engine.finish(&mut take);
    keys
}

fn captures() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = Vec::new();
    let mut add = |dir: &Path| {
        if let Ok(rd) = std::fs::read_dir(dir) {
            for e in rd.flatten() {
                let p = e.path();
                if p.to_string_lossy().contains(".pcap") {
                    v.push(p);
                }
            }
        }
    };
    add(&common::bundled());
    if let Some(d) = common::public_corpus() {
        add(&d);
    }
    v.sort();
    v
}

#[test]
fn cut_captures_never_panic_warn_when_cut_and_invent_no_session() {
    let (_dir, cut_path) = common::scratch_file("cut");
    let mut rng: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut cuts = 0;
    for file in captures() {
        let bytes = std::fs::read(&file).unwrap();
        let mut packets = Vec::new();
        let whole = run(&file, Some(&mut packets)).expect("whole file reads");
        let known: HashSet<_> = whole.keys.iter().map(|k| (k.0.clone(), k.1.clone(), k.2)).collect();
        let pcapng = bytes.starts_with(&[0x0a, 0x0d, 0x0d, 0x0a]);
        let b = boundaries(&bytes);
        let step = (b.len() / 500).max(1);
        let mut offsets: Vec<(usize, bool)> = b.iter().step_by(step).map(|&o| (o, false)).collect();
        for _ in 0..40 {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            let o = (rng % bytes.len() as u64) as usize;
            offsets.push((o, !b.contains(&o)));
        }
        for (off, mid_record) in offsets {
            let ext = if file.to_string_lossy().ends_with(".pcapng") { "pcapng" } else { "pcap" };
            let p = cut_path.with_extension(ext);
            std::fs::write(&p, &bytes[..off]).unwrap();
            cuts += 1;
            let Some(r) = run(&p, None) else {
                // Cut inside the file header: libpcap refuses to open it, which the CLI reports
                // as an input error (exit 2).
                // pcap: the 24-byte header; pcapng: the section header and first interface block.
                let header_end = if ext == "pcapng" { b.get(1).copied().unwrap_or(0) } else { 24 };
                assert!(off < header_end, "{} cut at {off} would not open", file.display());
                continue;
            };
            if mid_record && off > b.first().copied().unwrap_or(0) {
                assert!(r.truncated, "{} cut at {off}: no truncation warning", file.display());
            }
            let at = format!("{} cut at {off}", file.display());
            if !pcapng {
                // Every whole packet record before the cut is read; nothing is lost at the end.
                let whole_records = b.iter().skip(1).filter(|&&e| e <= off).count();
                assert_eq!(r.packets, whole_records, "{at}: packets read");
            }
            // Every session the packets before the cut make is reported, with the same verdict
            // as from those packets in memory: the cut loses nothing.
            let mut got = r.keys.clone();
            let mut want = prefix(&packets, r.packets);
            got.sort();
            want.sort();
            assert_eq!(got, want, "{at}: sessions");
            for k in &r.keys {
                let id = (k.0.clone(), k.1.clone(), k.2);
                assert!(known.contains(&id), "{at}: phantom session {k:?}");
            }
        }
    }
    assert!(cuts > 1000, "only {cuts} cuts");
}

#[test]
fn a_capture_ending_inside_the_deciding_exchange_is_incomplete() {
    use common::{opening, Dialogue};
    let d = || Dialogue::new(40000, 25);
    // README rules c, d, e: the file ends (no FIN/RST) where the outcome is not yet known.
    let cases = [
        ("EHLO unanswered", d().s("220 mx ESMTP\r\n").c("EHLO a.example\r\n")),
        ("STARTTLS unanswered", opening(d(), &["STARTTLS"]).c("STARTTLS\r\n")),
        ("nothing after the EHLO reply", opening(d(), &["STARTTLS"])),
    ];
    for (name, dialogue) in cases {
        let r = dialogue.record();
        assert_eq!(r["verdict"], "incomplete", "{name}: {r}");
        assert_eq!(r["capture_complete"], false, "{name}");
    }
    // Once the client committed to cleartext, the cut keeps the cleartext label.
    let r = opening(d(), &["STARTTLS"]).c("MAIL FROM:<a@b.example>\r\n").record();
    assert_eq!(r["verdict"], "starttls-offered-unused");
    assert_eq!(r["capture_complete"], false);
}
