//! `scripts/check_hosts.sh`: no file names a package registry or mirror host (Cargo.lock's
//! generated source lines aside). Host names here are assembled at run time so that this file
//! passes its own check.

use std::path::Path;
use std::process::Command;

fn check(dir: &Path) -> (bool, String) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/check_hosts.sh");
    let out = Command::new("bash").arg(script).arg(dir).output().expect("run bash");
    (out.status.success(), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn a_mirror_host_in_a_script_fails_the_check_and_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let host = ["deb", "debian", "org"].join(".");
    std::fs::write(dir.path().join("setup.sh"), format!("echo deb http://{host}/debian bookworm main\n")).unwrap();
    let (ok, err) = check(dir.path());
    assert!(!ok);
    assert!(err.contains("setup.sh:1:"), "{err}");
}

#[test]
fn cargo_lock_source_lines_are_exempt_but_nothing_else_in_it() {
    let dir = tempfile::tempdir().unwrap();
    let index = ["crates", "io-index"].join(".");
    let lock = format!("[[package]]\nname = \"x\"\nsource = \"registry+https://github.com/rust-lang/{index}\"\n");
    std::fs::write(dir.path().join("Cargo.lock"), &lock).unwrap();
    assert!(check(dir.path()).0);
    let registry = ["registry", "npmjs", "org"].join(".");
    std::fs::write(dir.path().join("Cargo.lock"), format!("{lock}# see https://{registry}\n")).unwrap();
    assert!(!check(dir.path()).0);
}

#[test]
fn the_repository_names_no_registry_host() {
    let (ok, err) = check(Path::new(env!("CARGO_MANIFEST_DIR")));
    assert!(ok, "{err}");
}
