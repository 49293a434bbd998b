//! Accuracy bar: every key the ground truth defines agrees on every session — on the shared
//! public corpus and on the project's own captures.

mod common;

#[test]
fn public_corpus_agrees_with_ground_truth_on_every_session() {
    let Some(dir) = common::public_corpus() else {
        return;
    };
    assert_every_session_agrees(&dir);
}

#[test]
fn bundled_captures_agree_with_their_ground_truth() {
    let dir = common::bundled();
    // Every line of captures/expected.jsonl (the demo and every lab scenario) is checked.
    let checked = assert_every_session_agrees(&dir);
    assert!(checked >= 40, "the lab's captures are missing: {checked} sessions");
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
