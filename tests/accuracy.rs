//! Accuracy bar: every key the ground truth defines agrees on every session — on the shared
//! public corpus and on the project's own captures — and no session is reported that the ground
//! truth does not list (the shared captures of other protocols list none).

mod common;

#[test]
fn public_corpus_agrees_with_ground_truth_on_every_session() {
    let Some(dir) = common::public_corpus() else {
        return;
    };
    assert_every_session_agrees(&dir);
}

#[test]
fn other_protocols_report_no_session() {
    let Some(dir) = common::foreign_corpus() else {
        return;
    };
    assert!(common::expected(&dir).is_empty(), "the foreign corpus expects no session");
    assert_every_session_agrees(&dir);
}

/// Bundled captures of other protocols (FTP, POP3, NNTP, IRC, proxies): no session expected.
const BUNDLED_WITHOUT_SESSIONS: &[&str] = &["foreign-protocols.pcap"];

#[test]
fn bundled_captures_agree_with_their_ground_truth() {
    let dir = common::bundled();
    // Every line of captures/expected.jsonl (the demo and every lab scenario) is checked, and every
    // capture file in captures/ is run: one that expected.jsonl does not name must report nothing.
    let checked = assert_every_session_agrees(&dir);
    assert!(checked >= 40, "the lab's captures are missing: {checked} sessions");
    let expected = common::expected(&dir);
    for file in common::capture_files(&dir) {
        let lines = expected.iter().filter(|e| e["file"] == file.as_str()).count();
        if BUNDLED_WITHOUT_SESSIONS.contains(&file.as_str()) {
            assert_eq!(lines, 0, "{file} expects no session");
        } else {
            assert!(
                lines > 0,
                "{file} has no line in captures/expected.jsonl (or belongs in BUNDLED_WITHOUT_SESSIONS)"
            );
        }
    }
}

/// Runs every capture of `dir` and fails listing each disagreement; every expected line must be
/// checked. Returns how many sessions were.
fn assert_every_session_agrees(dir: &std::path::Path) -> usize {
    let (checked, problems) = common::disagreements(dir);
    assert!(
        problems.is_empty(),
        "{} disagreement(s) over {checked} sessions:\n{}",
        problems.len(),
        problems.join("\n")
    );
    assert_eq!(checked, common::expected(dir).len());
    checked
}
