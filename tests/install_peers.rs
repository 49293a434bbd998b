//! `scripts/install_peers.sh --print-sources`: the private apt configuration comes from the
//! machine's own apt entries for its release (deb822 or one-line), adds `<codename>-backports` on
//! the codename entry's URIs, keeps the security entry as configured, and stops when the machine
//! has no entry for its codename: there is no built-in mirror to fall back to.

use std::path::Path;
use std::process::Command;

const BOOKWORM: &str = "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nVERSION_CODENAME=bookworm\nID=debian\n";

/// Runs the script on a fake /etc (os-release text, files under etc/apt) and returns
/// (success, stdout, stderr).
fn print_sources(os_release: &str, files: &[(&str, &str)]) -> (bool, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let apt = dir.path().join("apt");
    std::fs::create_dir_all(apt.join("sources.list.d")).unwrap();
    for (name, text) in files {
        std::fs::write(apt.join(name), text).unwrap();
    }
    let os = dir.path().join("os-release");
    std::fs::write(&os, os_release).unwrap();
    run(&[("APT_ETC", apt.as_path()), ("OS_RELEASE", os.as_path())])
}

fn run(env: &[(&str, &Path)]) -> (bool, String, String) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/install_peers.sh");
    let mut cmd = Command::new("bash");
    cmd.arg(script).arg("--print-sources");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run bash");
    (out.status.success(), String::from_utf8(out.stdout).unwrap(), String::from_utf8(out.stderr).unwrap())
}

const DEB822: &str = "\
Types: deb deb-src
# a comment inside the stanza
URIs: http://apt.lab.example/debian
Suites: bookworm bookworm-updates
Components: main contrib
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://apt-security.lab.example/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://other.lab.example/debian
Suites: trixie
Components: main
";

#[test]
fn a_deb822_stanza_gives_its_uris_to_backports_and_the_security_stanza_is_kept() {
    let (ok, out, err) = print_sources(BOOKWORM, &[("sources.list.d/debian.sources", DEB822)]);
    assert!(ok, "{err}");
    let backports = "Types: deb\nURIs: http://apt.lab.example/debian\nSuites: bookworm-backports\n\
                     Components: main contrib\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n";
    assert!(out.contains(backports), "{out}");
    assert!(
        out.contains("URIs: http://apt-security.lab.example/debian-security\nSuites: bookworm-security\n"),
        "{out}"
    );
    assert!(out.contains("Suites: bookworm bookworm-updates\n"), "{out}");
    assert!(!out.contains("trixie") && !out.contains("other.lab.example"), "{out}");
    assert!(!out.contains("# a comment"), "{out}");
}

#[test]
fn one_line_deb_entries_keep_their_options_and_get_a_backports_line() {
    let list = "\
# deb http://commented.lab.example/debian bookworm main
deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://apt.lab.example/debian bookworm main non-free-firmware
deb-src http://apt.lab.example/debian bookworm main
deb http://apt.lab.example/debian bookworm-updates main
deb http://apt-security.lab.example/debian-security bookworm-security main
deb http://other.lab.example/debian trixie main
";
    let (ok, out, err) = print_sources(BOOKWORM, &[("sources.list", list)]);
    assert!(ok, "{err}");
    let lines: Vec<&str> = out.lines().filter(|l| !l.starts_with('#')).collect();
    assert_eq!(
        lines,
        [
            "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://apt.lab.example/debian bookworm main non-free-firmware",
            "deb http://apt.lab.example/debian bookworm-updates main",
            "deb http://apt-security.lab.example/debian-security bookworm-security main",
            "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://apt.lab.example/debian bookworm-backports main non-free-firmware",
        ]
    );
}

#[test]
fn a_configured_backports_entry_is_kept_not_doubled() {
    let text = format!(
        "{DEB822}\nTypes: deb\nURIs: http://backports.lab.example/debian\nSuites: bookworm-backports\nComponents: main\n"
    );
    let (ok, out, err) = print_sources(BOOKWORM, &[("sources.list.d/debian.sources", &text)]);
    assert!(ok, "{err}");
    assert_eq!(out.matches("bookworm-backports").count(), 1, "{out}");
    assert!(out.contains("URIs: http://backports.lab.example/debian"), "{out}");
}

#[test]
fn no_entry_for_the_codename_stops_with_a_message_and_invents_no_mirror() {
    let disabled = "Types: deb\nURIs: http://apt.lab.example/debian\nSuites: bookworm\nComponents: main\nEnabled: no\n";
    for files in [
        vec![],
        vec![("sources.list", "deb http://other.lab.example/debian trixie main\n")],
        vec![("sources.list.d/debian.sources", disabled)],
    ] {
        let (ok, out, err) = print_sources(BOOKWORM, &files);
        assert!(!ok, "{files:?}: {out}");
        assert!(out.is_empty(), "{out}");
        assert!(err.contains("no apt entry for 'bookworm'"), "{err}");
    }
}

#[test]
fn an_os_release_without_a_codename_stops() {
    let (ok, _, err) = print_sources("ID=debian\n", &[("sources.list.d/debian.sources", DEB822)]);
    assert!(!ok);
    assert!(err.contains("no VERSION_CODENAME"), "{err}");
}

/// This machine's own configuration: every URI printed is one the machine's apt files name.
#[test]
fn on_this_machine_only_configured_uris_are_printed() {
    let (ok, out, err) = run(&[]);
    if !ok {
        // a machine without an entry for its codename: the script must say so, not guess
        assert!(
            err.contains("no apt entry") || err.contains("VERSION_CODENAME") || err.contains("cannot read"),
            "{err}"
        );
        return;
    }
    let mut configured = std::fs::read_to_string("/etc/apt/sources.list").unwrap_or_default();
    for e in std::fs::read_dir("/etc/apt/sources.list.d").into_iter().flatten().flatten() {
        configured.push_str(&std::fs::read_to_string(e.path()).unwrap_or_default());
    }
    let uris: Vec<&str> = out.split_whitespace().filter(|w| w.contains("://")).collect();
    assert!(!uris.is_empty(), "{out}");
    for u in uris {
        assert!(configured.contains(u), "{u} is not in the machine's apt configuration");
    }
    assert!(out.contains("-backports"), "{out}");
}
