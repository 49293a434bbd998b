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
fn targets_survive_edge_inputs() {
    let long_line = [b"\x01220 x\r\n\x00".as_slice(), &vec![b'A'; 100_000]].concat();
    let inputs: [&[u8]; 6] = [b"", b"\x00", b"\xff\xff\xff", &[0u8; 300], &[0xffu8; 300], &long_line];
    for (_, f) in TARGETS {
        for i in inputs {
            f(i);
        }
    }
}
