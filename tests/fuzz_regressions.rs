//! Every input a fuzzer ever crashed on (`fuzz/regressions/<target>/`) is replayed through the
//! same library function the target calls, so a fixed crash stays fixed without libFuzzer.

use std::path::Path;

type Target = fn(&[u8]);

const TARGETS: &[(&str, Target)] = &[
    ("decode", smtpscope::fuzzing::decode_packet),
    ("reassembly", smtpscope::fuzzing::reassembly),
    ("smtp", smtpscope::fuzzing::smtp_streams),
    ("tls", smtpscope::fuzzing::tls_records),
    ("engine", smtpscope::fuzzing::engine_packets),
    ("capture_file", smtpscope::fuzzing::capture_file),
    ("records", smtpscope::fuzzing::records),
    ("exchange_log", smtpscope::fuzzing::exchange_log),
    ("postfix_log", smtpscope::fuzzing::postfix_log),
    ("netmon", smtpscope::fuzzing::netmon_file),
];

#[test]
fn every_saved_crash_input_runs_clean() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/regressions");
    let mut ran = 0;
    for (name, f) in TARGETS {
        let Ok(dir) = std::fs::read_dir(root.join(name)) else { continue };
        for entry in dir.flatten() {
            if entry.file_name() == ".gitkeep" {
                continue;
            }
            let bytes = std::fs::read(entry.path()).unwrap();
            f(&bytes);
            ran += 1;
        }
    }
    eprintln!("replayed {ran} regression input(s)");
}

#[test]
fn the_committed_corpora_run_clean() {
    // The minimised corpora are what the fuzzers found interesting: each input exercises a path,
    // so replaying them keeps those paths panic-free between campaigns.
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus-min");
    let mut ran = 0;
    for (name, f) in TARGETS {
        let Ok(dir) = std::fs::read_dir(root.join(name)) else { continue };
        for entry in dir.flatten() {
            f(&std::fs::read(entry.path()).unwrap());
            ran += 1;
        }
    }
    assert!(ran > 1000, "only {ran} corpus inputs");
}

#[test]
fn targets_survive_edge_inputs() {
    let long_line = [b"220 x\r\n\xff\x00".as_slice(), &vec![b'A'; 100_000]].concat();
    let inputs: [&[u8]; 6] = [b"", b"\x00", b"\xff\xff\xff", &[0u8; 300], &[0xffu8; 300], &long_line];
    for (_, f) in TARGETS {
        for i in inputs {
            f(i);
        }
    }
}

/// One scripted segment of the engine target: `op conn delta len payload`.
fn seg(out: &mut Vec<u8>, op: u8, delta: u8, payload: &[u8]) {
    out.extend_from_slice(&[op, 0, delta, payload.len() as u8]);
    out.extend_from_slice(payload);
}

fn scripted_starttls(hole_before_hello: u8) -> Vec<u8> {
    let (c, s) = (0x80, 0x81);
    let mut t = Vec::new();
    seg(&mut t, c | 0x12, 0, b"");
    seg(&mut t, s | 0x02, 0, b"");
    seg(&mut t, s, 0, b"220 mx ESMTP\r\n");
    seg(&mut t, c, 0, b"EHLO a\r\n");
    seg(&mut t, s, 0, b"250-mx\r\n250 STARTTLS\r\n");
    seg(&mut t, c, 0, b"STARTTLS\r\n");
    seg(&mut t, s, 0, b"220 2.0.0 SMTP server ready\r\n");
    let mut hello = vec![0x16, 3, 1, 0, 0x2d, 1, 0, 0, 0x29, 3, 3];
    hello.extend_from_slice(&[7; 32]);
    hello.extend_from_slice(&[0, 0, 2, 0, 0x2f, 1, 0]);
    seg(&mut t, c, hole_before_hello, &hello);
    let mut server_hello = vec![0x16, 3, 3, 0, 0x2a, 2, 0, 0, 0x26, 3, 3];
    server_hello.extend_from_slice(&[9; 32]);
    server_hello.extend_from_slice(&[0, 0, 0x2f, 0]);
    seg(&mut t, s, 0, &server_hello);
    seg(&mut t, c | 0x04, 0, b"");
    seg(&mut t, s | 0x04, 0, b"");
    t
}

#[test]
fn scripted_engine_input_drives_a_starttls_upgrade_through_the_pipeline() {
    let mut sessions = Vec::new();
    smtpscope::fuzzing::engine_trace(&scripted_starttls(0), &mut |s| sessions.push(s));
    assert_eq!(sessions.len(), 1);
    let j = smtpscope::session::verdict::judge(&sessions[0]);
    assert_eq!(j.verdict, smtpscope::session::Verdict::Starttls, "{:?}", sessions[0]);
}

#[test]
fn scripted_engine_delta_makes_a_hole() {
    let mut sessions = Vec::new();
    smtpscope::fuzzing::engine_trace(&scripted_starttls(5), &mut |s| sessions.push(s));
    assert_eq!(sessions.len(), 1);
    assert!(sessions[0].gaps.client > 0, "{:?}", sessions[0].gaps);
}
