//! Capture files in every form admins bring them: the same capture compressed with gzip or
//! zstd, converted to Network Monitor 2.x by editcap, or piped through standard input, gives
//! exactly the records of the original; bad input of each kind is a clear error or a counted
//! skip, in bounded memory.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;
use smtpscope::capture::{MergedReader, SourceEnd};

/// Every bundled and shared capture (public and foreign corpora).
fn captures() -> Vec<PathBuf> {
    let shared = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/captures");
    let mut dirs = vec![common::bundled()];
    if let Some(d) = common::public_corpus() {
        dirs.push(d);
    }
    dirs.push(shared.join("foreign"));
    let mut v = Vec::new();
    for d in dirs {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            let name = p.to_string_lossy();
            if name.ends_with(".pcap") || name.ends_with(".pcapng") {
                v.push(p);
            }
        }
    }
    v.sort();
    assert!(v.len() >= 20, "only {} captures found", v.len());
    v
}

/// Records of one file as NDJSON values, without `file` (which names the file read), plus the
/// number of packets read and whether the read ended early.
fn records(path: &Path) -> (Vec<Value>, u64, bool) {
    let mut out = Vec::new();
    let mut reader = MergedReader::open(&[path.to_path_buf()], None).unwrap_or_else(|e| panic!("{e}"));
    let mut engine = smtpscope::engine::Engine::new(Default::default(), vec!["x".into()], None);
    while let Some(p) = reader.next_packet() {
        engine.packet(&p, &mut |s| out.push(s));
    }
    engine.finish(&mut |s| out.push(s));
    let src = &reader.sources()[0];
    let truncated = matches!(src.end(), Some(SourceEnd::Truncated(_)));
    let mut recs: Vec<Value> = out.iter().map(|s| smtpscope::report::json::record(s, Default::default())).collect();
    for r in &mut recs {
        r.as_object_mut().unwrap().remove("file");
    }
    (recs, src.frames(), truncated)
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

fn zstd(bytes: &[u8]) -> Vec<u8> {
    zstd::stream::encode_all(bytes, 1).unwrap()
}

#[test]
fn every_capture_compressed_with_gzip_or_zstd_gives_the_records_of_the_original() {
    let dir = common::scratch("compressed");
    for file in captures() {
        let original = records(&file);
        let bytes = std::fs::read(&file).unwrap();
        let name = file.file_name().unwrap().to_string_lossy().to_string();
        for (ext, packed) in [("gz", gzip(&bytes)), ("zst", zstd(&bytes))] {
            let p = dir.path().join(format!("{name}.{ext}"));
            std::fs::write(&p, packed).unwrap();
            let got = records(&p);
            assert_eq!(got.1, original.1, "{name}.{ext}: packets read");
            assert_eq!(got.2, original.2, "{name}.{ext}: truncation");
            assert_eq!(got.0, original.0, "{name}.{ext}: records");
        }
    }
}

/// libpcap link types editcap cannot write as netmon2.
const NOT_NETMON: [i32; 4] = [0, 12, 101, 276];

#[test]
fn every_capture_editcap_writes_as_netmon2_gives_the_records_of_the_original() {
    if Command::new("editcap").arg("-h").output().is_err() {
        assert!(
            std::env::var_os("SMTPSCOPE_REQUIRE_EDITCAP").is_none(),
            "editcap required (SMTPSCOPE_REQUIRE_EDITCAP) but not installed (apt install wireshark-common)"
        );
        eprintln!("SKIPPED: editcap not installed (apt install wireshark-common)");
        return;
    }
    let dir = common::scratch("netmon");
    let (mut converted, mut refused) = (0, Vec::new());
    for file in captures() {
        let linktype = MergedReader::open(std::slice::from_ref(&file), None).unwrap().sources()[0].linktype();
        let name = file.file_name().unwrap().to_string_lossy().to_string();
        let out = dir.path().join(format!("{name}.cap"));
        let ok =
            Command::new("editcap").args(["-F", "netmon2"]).arg(&file).arg(&out).output().unwrap().status.success();
        if NOT_NETMON.contains(&linktype) {
            assert!(!ok, "{name}: editcap wrote link type {linktype} as netmon2; move it to the compared ones");
            refused.push(name);
            continue;
        }
        assert!(ok, "{name}: editcap refused it");
        let mut original = records(&file);
        let mut got = records(&out);
        assert_eq!(got.1, original.1, "{name}.cap: packets read");
        if nanosecond_precision(&file) {
            // NetMon 2.x holds microseconds: editcap rounds a nanosecond time to the nearest one
            // where libpcap (and so the original's records) truncates. Times may differ by 1 µs.
            for (g, o) in got.0.iter_mut().zip(original.0.iter_mut()) {
                for k in ["first_seen", "last_seen"] {
                    let (a, b) = (micros(&g[k]), micros(&o[k]));
                    assert!((a - b).abs() <= 1, "{name}.cap: {k} {} vs {}", g[k], o[k]);
                    g.as_object_mut().unwrap().remove(k);
                    o.as_object_mut().unwrap().remove(k);
                }
            }
        }
        assert_eq!(got.0, original.0, "{name}.cap: records");
        converted += 1;
    }
    eprintln!("netmon2: {converted} converted and identical; refused by editcap as expected: {refused:?}");
    assert!(converted >= 20 && refused.len() >= 3, "{converted} converted, {refused:?} refused");
}

/// Whether the capture's times have sub-microsecond precision (capinfos comes with editcap).
fn nanosecond_precision(file: &Path) -> bool {
    let o = Command::new("capinfos").arg(file).output().unwrap();
    String::from_utf8_lossy(&o.stdout).lines().any(|l| l.contains("precision") && l.contains("nanoseconds"))
}

/// An RFC 3339 time of a record as microseconds since the epoch.
fn micros(v: &Value) -> i64 {
    let t = time::OffsetDateTime::parse(v.as_str().unwrap(), &time::format_description::well_known::Rfc3339).unwrap();
    (t.unix_timestamp_nanos() / 1000) as i64
}

/// A Network Monitor 2.1 file of the frames of `pcap` (`media` 9: raw IP), with a frame of
/// another media (Token Ring) last, written the way the format describes.
fn netmon_of(pcap: &Path, media: u16) -> (Vec<u8>, usize) {
    netmon_as(pcap, media, 1, 0)
}

/// A Network Monitor 2.`minor` file (1 to 3) of the frames of `pcap`, as Network Monitor writes
/// it on a machine `zone` seconds east of UTC: the header's start in that machine's local time,
/// each frame's offset from it, and from 2.2 on the process index (none: all ones), from 2.3 on
/// the frame's UTC `FILETIME` and the time zone index.
fn netmon_as(pcap: &Path, media: u16, minor: u8, zone: i64) -> (Vec<u8>, usize) {
    let mut r = MergedReader::open(&[pcap.to_path_buf()], None).unwrap();
    let mut frames = Vec::new();
    let mut start = None;
    while let Some(p) = r.next_packet() {
        let s = *start.get_or_insert(p.ts - p.ts.rem_euclid(1000));
        frames.push((p.ts - s, p.data.to_vec(), media));
    }
    let last = frames.last().map_or(0, |f| f.0);
    frames.push((last, vec![0u8; 20], 2u16));
    let start = start.unwrap();
    let local = start + zone * 1_000_000;
    let dt = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(local) * 1000).unwrap();
    let mut out = b"GMBU".to_vec();
    out.extend_from_slice(&[minor, 2]);
    out.extend_from_slice(&media.to_le_bytes());
    for v in [
        dt.year() as u16,
        u8::from(dt.month()).into(),
        0,
        dt.day().into(),
        dt.hour().into(),
        dt.minute().into(),
        dt.second().into(),
        dt.millisecond(),
    ] {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out.resize(128, 0);
    let mut table = Vec::new();
    for (t, data, m) in &frames {
        table.push(out.len() as u32);
        out.extend_from_slice(&(*t as u64).to_le_bytes());
        out.extend_from_slice(&(data.len() as u32).to_le_bytes());
        out.extend_from_slice(&(data.len() as u32).to_le_bytes());
        out.extend_from_slice(data);
        out.extend_from_slice(&m.to_le_bytes());
        if minor >= 2 {
            out.extend_from_slice(&u32::MAX.to_le_bytes());
        }
        if minor >= 3 {
            // 100 ns ticks since 1601-01-01 UTC.
            let filetime = ((start + *t) * 10) as u64 + 116_444_736_000_000_000;
            out.extend_from_slice(&filetime.to_le_bytes());
            out.push(0);
        }
    }
    let at = out.len() as u32;
    for o in &table {
        out.extend_from_slice(&o.to_le_bytes());
    }
    out[24..28].copy_from_slice(&at.to_le_bytes());
    out[28..32].copy_from_slice(&((table.len() * 4) as u32).to_le_bytes());
    (out, frames.len())
}

#[test]
fn netmon_2_3_captured_outside_utc_gives_utc_times_from_each_frames_own_time_stamp() {
    // Captured in Porto Alegre (UTC-03:00): the header's start is local time.
    let pcap = common::bundled().join("multi-site.pcap");
    let want = records(&pcap).0;
    assert!(want.len() > 10);
    let (_dir, p) = common::scratch_file("zone.cap");
    for minor in [1u8, 2, 3] {
        let (bytes, _) = netmon_as(&pcap, 1, minor, -3 * 3600);
        std::fs::write(&p, bytes).unwrap();
        let got = records(&p).0;
        assert_eq!(got.len(), want.len(), "2.{minor}");
        if minor == 3 {
            assert_eq!(got, want, "2.3: every record as from the original capture");
        } else {
            // Before 2.3 nothing in the file tells the zone: start plus offset, taken as UTC.
            for (g, w) in got.iter().zip(&want) {
                assert_eq!(micros(&w["first_seen"]) - micros(&g["first_seen"]), 3 * 3600 * 1_000_000, "2.{minor}");
            }
        }
    }
}

#[test]
fn raw_ip_netmon_frames_are_decoded_and_other_media_counted_as_undecodable() {
    let raw = common::bundled().join("raw-ip-tun.pcap");
    let (bytes, n) = netmon_of(&raw, 9);
    let (_dir, p) = common::scratch_file("raw.cap");
    std::fs::write(&p, bytes).unwrap();
    let (got, frames, truncated) = records(&p);
    let (want, _, _) = records(&raw);
    assert_eq!(frames as usize, n);
    assert!(!truncated);
    assert!(!want.is_empty());
    assert_eq!(got, want);
    // The summary counts the Token Ring frame as undecodable.
    let summary = p.with_extension("summary");
    let o = Command::new(env!("CARGO_BIN_EXE_smtpscope"))
        .args(["-q", "-F", "json", "--summary"])
        .arg(&summary)
        .arg("-r")
        .arg(&p)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = std::fs::read_to_string(&summary).unwrap();
    assert!(text.contains("\"unsupported-linktype\":1"), "{text}");
}

fn smtpscope(args: &[&str], stdin: Option<Vec<u8>>) -> std::process::Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_smtpscope"));
    c.args(args).stdout(Stdio::piped()).stderr(Stdio::piped());
    c.stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() });
    let mut child = c.spawn().unwrap();
    if let Some(bytes) = stdin {
        let mut i = child.stdin.take().unwrap();
        std::thread::spawn(move || {
            let _ = i.write_all(&bytes);
        });
    }
    child.wait_with_output().unwrap()
}

#[test]
fn standard_input_is_read_once_plain_or_compressed_and_its_file_is_dash() {
    let demo = common::bundled().join("demo.pcap");
    let want = common::ndjson(&smtpscope(&["-F", "json", "-r", demo.to_str().unwrap()], None).stdout);
    assert!(!want.is_empty());
    let bytes = std::fs::read(&demo).unwrap();
    for input in [bytes.clone(), gzip(&bytes), zstd(&bytes)] {
        let o = smtpscope(&["-F", "json", "-r", "-"], Some(input));
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let got = common::ndjson(&o.stdout);
        assert_eq!(got.len(), want.len());
        for (g, w) in got.iter().zip(&want) {
            assert_eq!(g["file"], "-");
            let (mut g, mut w) = (g.clone(), w.clone());
            g.as_object_mut().unwrap().remove("file");
            w.as_object_mut().unwrap().remove("file");
            assert_eq!(g, w);
        }
    }
}

#[test]
fn a_netmon_capture_on_standard_input_is_a_clear_error() {
    let (bytes, _) = netmon_of(&common::bundled().join("raw-ip-tun.pcap"), 9);
    let o = smtpscope(&["-r", "-"], Some(bytes));
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("Network Monitor") && err.contains("standard input"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
}

/// Exit code, peak resident memory in MiB (from `wait4`) and stderr of a run.
// The child is reaped by `wait4`, which also gives its peak memory.
#[allow(clippy::zombie_processes)]
fn run_measured(args: &[&str]) -> (i32, f64, String) {
    let child = Command::new(env!("CARGO_BIN_EXE_smtpscope"))
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id() as libc::pid_t;
    let mut stderr = child.stderr.unwrap();
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut stderr, &mut s);
        s
    });
    let mut status = 0;
    // SAFETY: plain system call on our own child; `rusage` is plain data.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(r, pid);
    let code = if libc::WIFEXITED(status) { libc::WEXITSTATUS(status) } else { -1 };
    (code, usage.ru_maxrss as f64 / 1024.0, reader.join().unwrap())
}

#[test]
fn a_gzip_bomb_is_streamed_in_bounded_memory() {
    // A pcap header, then 1024 records of 256 KiB of zeros: 256 MiB once expanded, from a file
    // of a few hundred KiB (one gzip member per record, repeated: concatenated members are one
    // stream).
    let mut head = Vec::new();
    head.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    head.extend_from_slice(&[2, 0, 4, 0]);
    head.extend_from_slice(&[0; 8]);
    head.extend_from_slice(&262_144u32.to_le_bytes());
    head.extend_from_slice(&1u32.to_le_bytes());
    let mut record = Vec::new();
    record.extend_from_slice(&[0; 8]);
    record.extend_from_slice(&262_144u32.to_le_bytes());
    record.extend_from_slice(&262_144u32.to_le_bytes());
    record.resize(16 + 262_144, 0);
    let member = gzip(&record);
    let mut bomb = gzip(&head);
    for _ in 0..1024 {
        bomb.extend_from_slice(&member);
    }
    assert!(bomb.len() < 2 << 20, "{} bytes", bomb.len());
    let (_dir, p) = common::scratch_file("bomb.pcap.gz");
    std::fs::write(&p, &bomb).unwrap();
    let (code, peak, err) = run_measured(&["-q", "-F", "json", "--threads", "1", "-r", p.to_str().unwrap()]);
    // No SMTP in zeros: nothing could be decoded, which is exit 0 with every frame counted.
    assert_eq!(code, 0, "{err}");
    assert!(peak < 64.0, "peak RSS {peak:.1} MiB while expanding 256 MiB");
}

#[test]
fn a_truncated_compressed_file_keeps_what_it_read_and_says_where_it_stopped() {
    // Large enough for several compressed blocks before the cut.
    let demo = common::bundled().join("message-1mb.pcap");
    let bytes = std::fs::read(&demo).unwrap();
    let (whole, _, _) = records(&demo);
    let dir = common::scratch("cut");
    for (ext, packed) in [("gz", gzip(&bytes)), ("zst", zstd(&bytes))] {
        let p = dir.path().join(format!("cut.pcap.{ext}"));
        std::fs::write(&p, &packed[..packed.len() * 3 / 4]).unwrap();
        let (got, frames, truncated) = records(&p);
        assert!(truncated, "{ext}: the cut is reported");
        assert!(frames > 0 && got.len() <= whole.len(), "{ext}: {frames} frames, {} records", got.len());
        let o = smtpscope(&["-F", "json", "-r", p.to_str().unwrap()], None);
        assert!(o.status.success(), "{ext}: {}", String::from_utf8_lossy(&o.stderr));
        let err = String::from_utf8_lossy(&o.stderr);
        let codec = if ext == "gz" { "gzip" } else { "zstd" };
        assert!(err.contains("read stopped") && err.contains(codec), "{ext}: {err}");
    }
    // Cut inside the first bytes: nothing to read is an input error.
    let p = dir.path().join("head.pcap.gz");
    std::fs::write(&p, &gzip(&bytes)[..12]).unwrap();
    assert_eq!(smtpscope(&["-r", p.to_str().unwrap()], None).status.code(), Some(2));
}

#[test]
fn another_vendors_cap_file_is_a_one_line_error_that_says_what_it_is() {
    let dir = common::scratch("vendor");
    let cases: [(&[u8], &str); 4] = [
        (b"XCP\0\x00\x00\x00\x00 rest of a NetXRay header", "NetXRay"),
        (b"TRSNIFF data    \x1a\x00\x00\x00", "Sniffer"),
        (b"RTSS\x00\x01\x01\x00 NetMon 1.x", "1.x"),
        (b"just some text, not a capture at all", "unknown file format"),
    ];
    for (i, (bytes, says)) in cases.iter().enumerate() {
        let p = dir.path().join(format!("trace{i}.cap"));
        std::fs::write(&p, bytes).unwrap();
        let o = smtpscope(&["-r", p.to_str().unwrap()], None);
        assert_eq!(o.status.code(), Some(2), "{says}");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains(says), "{says}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{err}");
    }
}

#[test]
fn a_netmon_frame_table_past_the_end_is_a_clear_error() {
    let (mut bytes, _) = netmon_of(&common::bundled().join("raw-ip-tun.pcap"), 9);
    let len = bytes.len() as u32;
    bytes[24..28].copy_from_slice(&(len - 8).to_le_bytes());
    let (_dir, p) = common::scratch_file("table.cap");
    std::fs::write(&p, &bytes).unwrap();
    let o = smtpscope(&["-r", p.to_str().unwrap()], None);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("frame table") && err.contains("past the end"), "{err}");
}

#[test]
fn standard_input_given_twice_is_a_usage_error() {
    let o = smtpscope(&["-r", "-", "-r", "-"], Some(Vec::new()));
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("only once"));
}

#[test]
fn mutated_netmon_and_compressed_files_never_panic() {
    // A small deterministic mutation run over the readers (the fuzz targets go further): byte
    // flips anywhere, header and table fields set to extremes, cuts at every region.
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus-min/netmon");
    let demo = std::fs::read(common::bundled().join("demo.pcap")).unwrap();
    let mut seeds: Vec<Vec<u8>> =
        std::fs::read_dir(dir).unwrap().flatten().map(|e| std::fs::read(e.path()).unwrap()).collect();
    seeds.push(gzip(&demo));
    seeds.push(zstd(&demo));
    let mut rng: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    for seed in &seeds {
        for _ in 0..100 {
            let mut b = seed.clone();
            match next() % 4 {
                0 => {
                    for _ in 0..1 + next() % 8 {
                        let i = (next() % b.len() as u64) as usize;
                        b[i] ^= 1 << (next() % 8);
                    }
                }
                1 => {
                    // A header field (version, media, time, table offset/length) to an extreme.
                    let i = (4 + next() % 28) as usize & !3;
                    let v = [0u32, 1, 0xffff_ffff, 0x7fff_ffff, b.len() as u32][(next() % 5) as usize];
                    b[i..i + 4].copy_from_slice(&v.to_le_bytes());
                }
                2 => b.truncate((next() % b.len() as u64) as usize),
                _ => {
                    // A frame table entry or a frame length.
                    let i = (next() % (b.len() as u64 - 4)) as usize;
                    b[i..i + 4].copy_from_slice(&(next() as u32).to_le_bytes());
                }
            }
            smtpscope::fuzzing::capture_file(&b);
            smtpscope::fuzzing::netmon_file(&b);
        }
    }
}
