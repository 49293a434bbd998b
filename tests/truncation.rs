//! Every bundled and shared capture cut short — at packet boundaries (all of them up to 500
//! packets, 500 spread cuts above) and at pseudo-random byte offsets, headers included — must
//! read without a panic, warn exactly when a record was cut, and report only sessions the whole
//! file also has (no phantoms), each with a verdict.

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

struct Run {
    keys: Vec<(String, String)>,
    truncated: bool,
}

fn run(path: &Path) -> Option<Run> {
    let mut reader = MergedReader::open(&[path.to_path_buf()], None).ok()?;
    let mut engine = Engine::new(Config::default(), vec![Arc::from("cut")], None);
    let mut keys = Vec::new();
    let mut take = |s: smtpscope::session::Session| {
        assert!(s.verdict.is_some());
        keys.push((s.client.to_string(), s.server.to_string()));
    };
    while let Some(p) = reader.next_packet() {
        engine.packet(&p, &mut take);
    }
    engine.finish(&mut take);
    let truncated = matches!(reader.sources()[0].end(), Some(SourceEnd::Truncated(_)));
    Some(Run { keys, truncated })
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
    let tmp = std::env::temp_dir().join(format!("smtpscope-trunc-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).unwrap();
    let cut_path = tmp.join("cut");
    let mut rng: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut cuts = 0;
    for file in captures() {
        let bytes = std::fs::read(&file).unwrap();
        let whole = run(&file).expect("whole file reads");
        let known: HashSet<_> = whole.keys.iter().cloned().collect();
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
            let Some(r) = run(&p) else {
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
            for k in &r.keys {
                assert!(known.contains(k), "{} cut at {off}: phantom session {k:?}", file.display());
            }
        }
    }
    assert!(cuts > 1000, "only {cuts} cuts");
}
