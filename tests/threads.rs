//! `--threads 2` runs the engine on a thread of its own while the first reads the files and
//! formats the records: the records and the summary must be those of `--threads 1`, byte for
//! byte, in every format, whatever the capture (reordered, cut, merged, evicting, `-c`).

mod common;

use std::process::Command;

use common::Dialogue;

/// stdout and the JSON summary of a run with `--threads n`.
fn run(n: &str, args: &[&str]) -> (Vec<u8>, String) {
    let (_dir, summary) = common::scratch_file("summary.json");
    let mut all = vec!["--threads", n, "--color", "never", "--show-addresses", "--summary", summary.to_str().unwrap()];
    all.extend_from_slice(args);
    let o = Command::new(env!("CARGO_BIN_EXE_smtpscope")).args(&all).output().expect("run smtpscope");
    assert!(o.status.success(), "{args:?}: {}", String::from_utf8_lossy(&o.stderr));
    (o.stdout, std::fs::read_to_string(summary).unwrap())
}

fn assert_same(args: &[&str]) {
    let one = run("1", args);
    let two = run("2", args);
    assert!(!one.1.is_empty(), "{args:?}: no summary");
    assert!(one == two, "{args:?}: --threads 2 differs from --threads 1");
}

#[test]
fn every_bundled_and_shared_capture_gives_the_same_output_in_every_format() {
    let bundled = common::capture_files(&common::bundled());
    assert!(bundled.len() >= 20, "bundled captures missing: {bundled:?}");
    for f in bundled {
        let f = common::bundled().join(f).to_string_lossy().into_owned();
        for fmt in ["json", "table", "csv", "clickhouse"] {
            assert_same(&["-F", fmt, "-r", &f]);
        }
    }
    for dir in [common::public_corpus(), common::foreign_corpus()].into_iter().flatten() {
        for f in common::capture_files(&dir) {
            let f = dir.join(f).to_string_lossy().into_owned();
            for fmt in ["json", "table"] {
                assert_same(&["-F", fmt, "-r", &f]);
            }
        }
    }
}

#[test]
fn all_bundled_captures_merged_give_the_same_output_whole_and_stopped_by_count() {
    let dir = common::bundled();
    let mut args: Vec<String> = vec!["-F".into(), "json".into()];
    for f in common::capture_files(&dir) {
        args.push("-r".into());
        args.push(dir.join(f).to_string_lossy().into_owned());
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    assert_same(&args);
    for count in ["1", "511", "512", "513", "2000"] {
        let mut with = args.clone();
        with.extend(["-c", count]);
        assert_same(&with);
    }
    // Out-of-order bytes over a tiny budget for all flows: flows let go of their held bytes.
    let mut tight = args.clone();
    tight.extend(["--max-buffer-total", "2000"]);
    assert_same(&tight);
}

/// 900 sessions, many open at once, some closed, some reset, some never ended (finished by the
/// end of the capture): many batches' worth of packets, with sessions ending in every batch.
fn interleaved_capture() -> (tempfile::TempDir, std::path::PathBuf) {
    let mut packets: Vec<(i64, Vec<u8>)> = Vec::new();
    for i in 0..900u16 {
        let mut d = Dialogue::new(20_000 + i, 25)
            .s("220 mx.example ESMTP\r\n")
            .c("EHLO client.example\r\n")
            .s("250-mx.example\r\n250 STARTTLS\r\n")
            .c("MAIL FROM:<a@example.org>\r\n")
            .s("250 ok\r\n");
        d = match i % 3 {
            0 => d.c("QUIT\r\n").s("221 bye\r\n").close(),
            1 => d.rst(),
            _ => d,
        };
        // Each session starts 3 ms after the one before: about 10 are open at any time.
        let shift = i64::from(i) * 3_000;
        packets.extend(d.packets(1460).into_iter().map(|(ts, p)| (ts + shift, p)));
    }
    // Stable: a session's own packets keep their order.
    packets.sort_by_key(|(ts, _)| *ts);
    common::write_pcap("interleaved.pcap", &packets)
}

#[test]
fn interleaved_sessions_give_the_same_output_with_and_without_evictions() {
    let (_dir, path) = interleaved_capture();
    let p = path.to_str().unwrap();
    for fmt in ["json", "csv"] {
        assert_same(&["-F", fmt, "-r", p]);
        // A table of 4 flows: most sessions are evicted before they end.
        assert_same(&["-F", fmt, "-r", p, "--max-flows", "4"]);
    }
    assert_same(&["-F", "json", "-r", p, "-c", "3000"]);
    let (records, _) = run("2", &["-F", "json", "-r", p, "--max-flows", "4"]);
    assert_eq!(common::ndjson(&records).len(), 900, "every session reported once");
}
