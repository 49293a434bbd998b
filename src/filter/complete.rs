//! Completion for the word under the cursor (at the end of the input): keys, then the values a
//! key takes.

use super::KEYS;
use crate::session::{Verdict, FINDINGS};

/// Candidates for the last word of an input.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Completion {
    /// Byte offset where the completed word starts (the rest of the input is kept).
    pub start: usize,
    /// Full replacements for the word, in order.
    pub candidates: Vec<String>,
}

impl Completion {
    /// The longest common prefix of the candidates (what Tab inserts when several match).
    pub fn common_prefix(&self) -> String {
        let mut it = self.candidates.iter();
        let Some(first) = it.next() else { return String::new() };
        let mut len = first.len();
        for c in it {
            len = first.bytes().zip(c.bytes()).take(len).take_while(|(a, b)| a.eq_ignore_ascii_case(b)).count();
        }
        while !first.is_char_boundary(len) {
            len -= 1;
        }
        first[..len].to_string()
    }

    /// The input with the word replaced by `with`.
    pub fn apply(&self, input: &str, with: &str) -> String {
        format!("{}{with}", input.get(..self.start).unwrap_or(input))
    }
}

/// Common EHLO extension keywords, for `ext:`.
const EXTENSIONS: [&str; 16] = [
    "STARTTLS",
    "X-ANONYMOUSTLS",
    "AUTH",
    "PIPELINING",
    "CHUNKING",
    "SMTPUTF8",
    "8BITMIME",
    "BINARYMIME",
    "SIZE",
    "DSN",
    "ENHANCEDSTATUSCODES",
    "REQUIRETLS",
    "XEXCH50",
    "X-EXPS",
    "XXXXXXXA",
    "XSHADOW",
];

/// Values offered after `key:`.
fn values(key: &str) -> Vec<String> {
    let owned = |v: &[&str]| v.iter().map(|s| s.to_string()).collect();
    match key {
        "verdict" => Verdict::ALL.iter().map(|v| v.name().to_string()).collect(),
        "finding" => owned(&FINDINGS),
        "ext" => owned(&EXTENSIONS),
        "tls" => owned(&["<1.2", "<=1.2", "1.2", "1.3", ">=1.2", "none", "any"]),
        "upgrade" => owned(&["starttls", "x-anonymoustls", "none"]),
        "state" => owned(&["open", "done"]),
        "log" => owned(&["agree", "differ", "none"]),
        "auth" => owned(&["PLAIN", "LOGIN", "CRAM-MD5", "NTLM", "XOAUTH2", "GSSAPI"]),
        _ => Vec::new(),
    }
}

/// Completes the last word of `input`.
pub fn complete(input: &str) -> Completion {
    let start = input.rfind(|c: char| c.is_whitespace() || c == '(' || c == '!').map_or(0, |i| i + 1);
    let word = &input[start..];
    let lower = word.to_ascii_lowercase();
    let mut candidates = Vec::new();
    if let Some((key, val)) = lower.split_once(':') {
        let prefix = &word[..key.len() + 1];
        let val_lower = val.to_ascii_lowercase();
        for v in values(key) {
            if v.to_ascii_lowercase().starts_with(&val_lower) {
                candidates.push(format!("{prefix}{v}"));
            }
        }
    } else {
        for k in KEYS {
            if k.starts_with(&lower) {
                candidates.push(format!("{k}:"));
            }
        }
        if !lower.is_empty() {
            for op in ["or", "not"] {
                if op.starts_with(&lower) && op != lower {
                    candidates.push(op.to_string());
                }
            }
        }
    }
    Completion { start, candidates }
}
