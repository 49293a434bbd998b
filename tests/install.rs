//! What an installed tool brings: man pages and shell completions generated from the same
//! definitions as `--help`, and `make install` putting them where man and the shells look.

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Output};

fn smtpscope(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_smtpscope")).args(args).output().expect("run smtpscope")
}

/// Every `-x` and `--long-option` a help text names.
fn options_named(help: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    for word in help.split(|c: char| c.is_whitespace() || c == ',' || c == '[' || c == ']' || c == '=' || c == '<') {
        let long = word
            .strip_prefix("--")
            .is_some_and(|r| r.len() > 1 && r.chars().all(|c| c.is_ascii_lowercase() || c == '-'));
        let short =
            word.len() == 2 && word.starts_with('-') && word.chars().nth(1).is_some_and(|c| c.is_ascii_alphabetic());
        if long || short {
            found.insert(word.to_string());
        }
    }
    found
}

/// The page as text a reader sees: roff's escaped hyphens are hyphens.
fn page_text(path: &Path) -> String {
    std::fs::read_to_string(path).expect("man page").replace("\\-", "-").replace("\\", "")
}

#[test]
fn every_option_help_names_is_on_the_man_page() {
    let dir = common::scratch("man");
    let o = smtpscope(&["generate", "man", &dir.path().to_string_lossy()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    for (page, args) in [
        ("smtpscope.1", vec!["--help"]),
        ("smtpscope-check.1", vec!["check", "--help"]),
        ("smtpscope-pairs.1", vec!["pairs", "--help"]),
    ] {
        let help = String::from_utf8(smtpscope(&args).stdout).unwrap();
        let options = options_named(&help);
        assert!(options.len() > 5, "{page}: too few options found in --help: {options:?}");
        let text = page_text(&dir.path().join(page));
        let missing: Vec<_> = options.iter().filter(|o| !text.contains(o.as_str())).collect();
        assert!(missing.is_empty(), "{page} does not name {missing:?}");
    }
}

#[test]
fn the_main_page_explains_verdicts_and_exit_status() {
    let dir = common::scratch("man");
    assert!(smtpscope(&["generate", "man", &dir.path().to_string_lossy()]).status.success());
    let text = page_text(&dir.path().join("smtpscope.1"));
    for section in ["VERDICTS", "EXIT STATUS"] {
        assert!(text.contains(&format!(".SH \"{section}\"")) || text.contains(&format!(".SH {section}")), "{section}");
    }
    for verdict in ["not-smtp", "incomplete", "implicit-tls", "stripped", "starttls-offered-unused", "plaintext"] {
        assert!(text.contains(verdict), "{verdict} missing");
    }
}

#[test]
fn completions_are_generated_for_bash_zsh_and_fish() {
    for (shell, marker) in [("bash", "complete -F"), ("zsh", "#compdef smtpscope"), ("fish", "complete -c smtpscope")] {
        let o = smtpscope(&["generate", "completions", shell]);
        assert!(o.status.success(), "{shell}");
        let script = String::from_utf8(o.stdout).unwrap();
        assert!(script.contains(marker), "{shell}: no {marker:?}");
        for opt in ["display-filter", "expect", "between"] {
            assert!(script.contains(opt), "{shell} completes no --{opt}");
        }
    }
}

#[test]
fn make_install_puts_binary_pages_and_completions_in_their_places() {
    let root = common::scratch("install");
    let prefix = root.path().join("usr");
    let o = Command::new("make")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["-s", "install-files"])
        .env("PREFIX", &prefix)
        .env("BIN", env!("CARGO_BIN_EXE_smtpscope"))
        .output()
        .expect("make");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    for file in [
        "bin/smtpscope",
        "share/man/man1/smtpscope.1",
        "share/man/man1/smtpscope-check.1",
        "share/man/man1/smtpscope-pairs.1",
        "share/bash-completion/completions/smtpscope",
        "share/zsh/site-functions/_smtpscope",
        "share/fish/vendor_completions.d/smtpscope.fish",
    ] {
        assert!(prefix.join(file).is_file(), "{file} not installed");
    }
}
