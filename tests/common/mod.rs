//! Helpers shared by the integration tests: run the engine in-process on a capture and
//! compare records with ground truth in the shared corpus format.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::Value;
use smtpscope::capture::MergedReader;
use smtpscope::engine::{Config, Engine};
use smtpscope::report::json::record;
use smtpscope::session::Session;

/// The shared public corpus, or None (with a message) when it is absent.
pub fn public_corpus() -> Option<PathBuf> {
    let dir = std::env::var_os("SMTPSCOPE_PUBLIC_CAPTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/captures/public"));
    if dir.join("expected.jsonl").is_file() {
        Some(dir)
    } else {
        eprintln!("SKIPPED: public corpus not found at {} (set SMTPSCOPE_PUBLIC_CAPTURES)", dir.display());
        None
    }
}

/// The project's own captures.
pub fn bundled() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("captures")
}

/// Runs the engine over one file and returns the finished sessions.
pub fn sessions(path: &Path) -> Vec<Session> {
    let mut reader = MergedReader::open(&[path.to_path_buf()], None).expect("open capture");
    let name: Arc<str> = Arc::from(path.file_name().unwrap().to_string_lossy().as_ref());
    let mut engine = Engine::new(Config::default(), vec![name], None);
    let mut out = Vec::new();
    while let Some(p) = reader.next_packet() {
        engine.packet(&p, &mut |s| out.push(s));
    }
    engine.finish(&mut |s| out.push(s));
    out
}

/// NDJSON records for one file.
pub fn records(path: &Path) -> Vec<Value> {
    sessions(path).iter().map(|s| record(s, Default::default())).collect()
}

/// Reads an expected.jsonl.
pub fn expected(dir: &Path) -> Vec<Value> {
    std::fs::read_to_string(dir.join("expected.jsonl"))
        .expect("read expected.jsonl")
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).expect("expected.jsonl line"))
        .collect()
}

/// Keys compared with the ground truth (`label` is compared with `verdict`).
pub const COMPARED: &[&str] = &[
    "client",
    "server",
    "helo",
    "starttls_offered",
    "upgrade_verb",
    "starttls_sent",
    "starttls_reply",
    "tls_handshake",
    "tls_version",
    "sni",
    "mail_transactions",
    "clean_close",
];

/// Compares every file of a corpus; returns one line per disagreement.
pub fn disagreements(dir: &Path) -> (usize, Vec<String>) {
    let exp = expected(dir);
    let mut files: Vec<String> = exp.iter().map(|e| e["file"].as_str().unwrap().to_string()).collect();
    files.dedup();
    let mut problems = Vec::new();
    let mut checked = 0;
    for file in &files {
        let got = records(&dir.join(file));
        let want: Vec<&Value> = exp.iter().filter(|e| e["file"] == file.as_str()).collect();
        for w in &want {
            let found = got.iter().find(|g| g["client"] == w["client"] && g["server"] == w["server"]);
            let Some(g) = found else {
                problems.push(format!("{file}: missing session {} -> {}", w["client"], w["server"]));
                continue;
            };
            checked += 1;
            if g["verdict"] != w["label"] {
                problems.push(format!("{file} {}: verdict {} != label {}", w["client"], g["verdict"], w["label"]));
            }
            for k in COMPARED {
                if g[*k] != w[*k] {
                    problems.push(format!("{file} {}: {k} {} != {}", w["client"], g[*k], w[*k]));
                }
            }
        }
        for g in &got {
            if !want.iter().any(|w| g["client"] == w["client"] && g["server"] == w["server"]) {
                problems
                    .push(format!("{file}: unexpected session {} -> {} ({})", g["client"], g["server"], g["verdict"]));
            }
        }
    }
    (checked, problems)
}
