//! A wire session's link to a matched server-log session (filled by [`crate::logs::matching`]).

use super::Verdict;

/// One matched log session, as the wire record's `logs` list shows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LogLink {
    /// `exchange-receive`, `exchange-send`, `postfix-smtpd`, `postfix-smtp`.
    #[serde(deserialize_with = "crate::session::interned")]
    pub source: crate::session::Word,
    /// The log file.
    pub log_file: String,
    /// The log session's id.
    pub log_session: String,
    /// The log's verdict.
    pub verdict: Verdict,
    /// No difference.
    pub agree: bool,
    /// Facts known on both sides that differ: `tls`, `upgrade_verb`, `tls_version`, `cert`,
    /// `mail_transactions`, `offer`.
    #[serde(deserialize_with = "crate::session::interned_all")]
    pub differences: Vec<crate::session::Word>,
    /// `stripped-before-server`, `tls-terminated-before-server`, `different-hop`.
    #[serde(deserialize_with = "crate::session::interned_opt")]
    pub hint: Option<crate::session::Word>,
    /// The hint in a sentence.
    pub hint_text: Option<String>,
    /// The matched log lines (bounded), for display.
    pub lines: Vec<String>,
}
