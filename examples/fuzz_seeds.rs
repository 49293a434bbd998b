//! Writes seed corpora for the fuzz targets from capture files (bundled and shared), at run
//! time, so no capture is copied into the repository: `cargo run --example fuzz_seeds -- OUT FILE...`.

use std::path::PathBuf;

use smtpscope::capture::MergedReader;

fn main() {
    let mut args = std::env::args().skip(1);
    let out = PathBuf::from(args.next().expect("usage: fuzz_seeds OUT_DIR CAPTURE..."));
    for t in ["decode", "engine", "capture_file"] {
        std::fs::create_dir_all(out.join(t)).expect("create seed dir");
    }
    let mut n = 0usize;
    for file in args {
        let path = PathBuf::from(&file);
        let Ok(bytes) = std::fs::read(&path) else { continue };
        if bytes.len() <= 64 * 1024 {
            let _ = std::fs::write(out.join("capture_file").join(format!("{n}")), &bytes);
        }
        let Ok(mut r) = MergedReader::open(std::slice::from_ref(&path), None) else { continue };
        let mut trace = Vec::new();
        let mut k = 0;
        while let Some(p) = r.next_packet() {
            let sel =
                [1i32, 12, 0, 108, 113, 276, 9, 228, 229].iter().position(|l| *l == p.linktype).unwrap_or(0) as u8;
            if k < 64 {
                let mut seed = vec![sel];
                seed.extend_from_slice(p.data);
                let _ = std::fs::write(out.join("decode").join(format!("{n}-{k}")), seed);
            }
            if p.linktype == 1 && trace.len() < 32 * 1024 {
                trace.extend_from_slice(&(p.data.len() as u16).to_be_bytes());
                trace.extend_from_slice(p.data);
            }
            k += 1;
        }
        if !trace.is_empty() {
            let _ = std::fs::write(out.join("engine").join(format!("{n}")), trace);
        }
        n += 1;
    }
    eprintln!("seeds from {n} captures in {}", out.display());
}
