//! Findings as the table, the terminal UI and `pairs` show them: a short name per finding (the
//! stable names stay in JSON, CSV and the filter's `finding:`) and how serious each is.

use crate::session::Session;

/// How serious a finding is (the UI's colour).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// Informational: something the capture cannot show (the TLS 1.3 certificate).
    Info,
    /// Weak, worth fixing.
    Warn,
    /// Secrets or mail exposed, or the upgrade tampered with.
    High,
}

/// Every finding: stable name, short name, severity.
const TABLE: [(&str, &str, Severity); 15] = [
    ("cleartext-auth", "clear-auth", Severity::High),
    ("starttls-injection", "stls-inject", Severity::High),
    ("response-injection", "resp-inject", Severity::High),
    ("starttls-stripped", "stripped", Severity::High),
    ("ehlo-masked", "masked", Severity::Warn),
    ("weak-tls-version", "old-tls", Severity::Warn),
    ("weak-cipher", "weak-cipher", Severity::High),
    ("cert-expired", "expired", Severity::High),
    ("cert-not-yet-valid", "not-yet-valid", Severity::Warn),
    ("cert-self-signed", "self-signed", Severity::Warn),
    ("cert-weak-key", "weak-key", Severity::Warn),
    ("cert-sha1-signature", "sha1-sig", Severity::Warn),
    ("cert-name-mismatch", "name-mismatch", Severity::Warn),
    ("cert-not-visible-tls13", "cert-hidden", Severity::Info),
    ("log-disagrees", "log-differs", Severity::Warn),
];

/// The short name of a finding (the name itself if it has none).
pub fn short(name: &str) -> &str {
    TABLE.iter().find(|(n, ..)| *n == name).map_or(name, |(_, s, _)| s)
}

/// How serious a finding is.
pub fn severity(name: &str) -> Severity {
    TABLE.iter().find(|(n, ..)| *n == name).map_or(Severity::Warn, |(.., sev)| *sev)
}

/// A session's findings by short name, comma-separated; `-` when it has none.
pub fn short_list(s: &Session) -> String {
    if s.findings.is_empty() {
        return "-".into();
    }
    s.findings.iter().map(|f| short(f.name)).collect::<Vec<_>>().join(",")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::FINDINGS;

    #[test]
    fn every_finding_has_one_short_name_and_no_two_share_it() {
        let names: Vec<&str> = TABLE.iter().map(|t| t.0).collect();
        assert_eq!(names, FINDINGS, "same findings, same order");
        let mut shorts: Vec<&str> = TABLE.iter().map(|t| t.1).collect();
        shorts.sort_unstable();
        shorts.dedup();
        assert_eq!(shorts.len(), TABLE.len());
        assert!(shorts.iter().all(|s| s.len() <= 13), "short names stay short");
    }
}
