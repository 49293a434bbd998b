//! AUTH secrets never appear in any view unless asked for: AUTH PLAIN (public corpus), AUTH LOGIN
//! (public corpus) and Exchange's X-EXPS (bundled multi-site capture). The secrets are read from
//! the capture's bytes by the test itself (tests/common/wire.rs), not taken from the engine.

mod common;

use std::path::PathBuf;

use common::wire::{self, Secrets};
use smtpscope::report::{Format, Options};

/// The captures with a secret in clear, each with what it must hold.
fn captures() -> Vec<(PathBuf, &'static str)> {
    let mut v = vec![(common::bundled().join("multi-site.pcap"), "X-EXPS")];
    if let Some(dir) = common::public_corpus() {
        v.push((dir.join("arkime-smtp-submission-587-auth-plain-aol.pcap"), "PLAIN"));
        v.push((dir.join("suricata-smtp-submission-587-auth-login-yahoo.pcap"), "LOGIN"));
    }
    v
}

fn secrets_of(path: &std::path::Path, mech: &str) -> Secrets {
    let s = wire::secrets(path);
    let want = match mech {
        "PLAIN" => 1,
        "LOGIN" => 2,
        _ => 1,
    };
    assert!(s.wire.len() >= want, "{}: the test found no {mech} secret on the wire: {s:?}", path.display());
    s
}

#[test]
fn the_wire_reader_finds_the_secrets_the_engine_keeps_with_show_credentials() {
    use smtpscope::engine::Config;
    use smtpscope::session::transcript::{Entry, Secret};
    for (path, mech) in captures() {
        let s = secrets_of(&path, mech);
        let kept =
            common::sessions_with(&path, Config { transcript: true, keep_credentials: true, ..Config::default() });
        let shown: Vec<String> = kept
            .iter()
            .filter_map(|s| s.transcript.as_deref())
            .flat_map(|t| t.entries.iter())
            .filter_map(|e| match e {
                Entry::Command { secret: Some(Secret::Shown(b)), .. } => Some(String::from_utf8_lossy(b).into_owned()),
                _ => None,
            })
            .collect();
        for w in &s.wire {
            assert!(shown.iter().any(|k| k.contains(w.as_str())), "{mech}: {w:?} not among {shown:?}");
        }
    }
}

#[test]
fn table_json_and_csv_never_show_a_secret() {
    for (path, mech) in captures() {
        let s = secrets_of(&path, mech);
        let f = path.to_str().unwrap();
        for format in ["table", "json", "csv"] {
            let o = std::process::Command::new(env!("CARGO_BIN_EXE_smtpscope"))
                .args(["--no-tui", "-F", format, "-r", f])
                .output()
                .unwrap();
            assert_eq!(o.status.code(), Some(0), "{format}: {o:?}");
            let text = String::from_utf8_lossy(&[o.stdout, o.stderr].concat()).into_owned();
            s.assert_absent(&text, true, &format!("{mech} -F {format}"));
        }
    }
}

#[test]
fn exports_never_show_a_secret() {
    for (path, mech) in captures() {
        let s = secrets_of(&path, mech);
        let sessions = common::sessions(&path);
        let dir = common::scratch("secrets-export");
        for (format, name) in [(Format::Json, "x.ndjson"), (Format::Csv, "x.csv")] {
            let file = std::fs::File::create(dir.path().join(name)).unwrap();
            smtpscope::tui::export::write_sessions(sessions.iter(), format, Options::default(), file).unwrap();
            let text = std::fs::read_to_string(dir.path().join(name)).unwrap();
            s.assert_absent(&text, true, &format!("{mech} export {name}"));
        }
    }
}
