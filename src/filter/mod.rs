//! The display-filter language shared by the terminal UI's filter bar and the CLI's `-Y`.
//!
//! ```text
//! verdict:plaintext server:10.1.0.0/16          terms separated by spaces must all hold
//! verdict:starttls or verdict:implicit-tls      `or` between terms (binds looser than spaces)
//! !verdict:starttls   not ext:X-ANONYMOUSTLS     `!` or `not` negates a term
//! (port:25 or port:2525) helo:*.contoso.com      parentheses group; values may be "quoted"
//! "Queued mail"                                  free text: case-insensitive, against the
//!                                                transcript, names, evidence and findings
//! ```
//!
//! Keys: `verdict:` (name or glob), `client:`/`server:`/`host:` (address or CIDR), `port:`
//! (server port, `N` or `N-M`), `helo:`, `banner:`, `sni:`, `cert:` (subject or SAN glob),
//! `ext:` (offered EHLO extension), `finding:`, `auth:` (mechanism used in clear), `upgrade:`
//! (`starttls`, `x-anonymoustls`, `none`), `tls:` (`<1.2`, `>=1.2`, `1.3`, `none`, `any`) and
//! `state:` (`open`, `done`), `sensor:` (glob) and `log:` (`agree`, `differ`, `none`: the server
//! log's word against the wire's, with `--logs`). A filter is parsed once into a typed tree; a parse error carries
//! the byte span to highlight.

mod complete;
mod eval;
mod habit;
mod logs;
mod parse;

use std::net::IpAddr;
use std::ops::Range;

pub use complete::{complete, Completion};
use thiserror::Error;

use crate::session::Verdict;

/// Every key, in the order completion offers them.
pub const KEYS: [&str; 17] = [
    "verdict", "client", "server", "host", "port", "helo", "banner", "sni", "cert", "ext", "finding", "auth",
    "upgrade", "tls", "state", "sensor", "log",
];

/// What went wrong, and where.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{kind} (at {}..{})", span.start, span.end)]
pub struct FilterError {
    /// The problem.
    pub kind: ErrorKind,
    /// Byte range of the input to highlight.
    pub span: Range<usize>,
}

/// The kinds of filter errors.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ErrorKind {
    /// `foo:` where foo is not a key.
    #[error("unknown key '{0}:' (keys: {keys}; quote free text that contains a colon)", keys = KEYS.join(", "))]
    UnknownKey(String),
    /// `key:` with nothing after it.
    #[error("'{0}:' needs a value")]
    MissingValue(String),
    /// A value the key cannot take.
    #[error("{key}: '{value}' is not {expected}")]
    BadValue {
        /// The key.
        key: &'static str,
        /// The value as written.
        value: String,
        /// What would be accepted.
        expected: String,
    },
    /// A `"` without its closing partner.
    #[error("unterminated quote")]
    UnterminatedQuote,
    /// `(` without `)` or the reverse.
    #[error("unbalanced parenthesis")]
    Unbalanced,
    /// An unquoted word that is no `key:value`, operator or parenthesis (free text is quoted).
    #[error("{}", bare_word(word, suggestion.as_deref()))]
    BareWord {
        /// The word as written.
        word: String,
        /// The filter most likely meant (a Wireshark or tcpdump habit rewritten).
        suggestion: Option<String>,
    },
    /// `or`, `not`, `!` or `(` with nothing to apply to.
    #[error("'{0}' needs a term after it")]
    MissingOperand(String),
}

fn bare_word(word: &str, suggestion: Option<&str>) -> String {
    let what = format!("'{word}' is not a key:value, an operator (and or not ! && ||) or a parenthesis");
    match suggestion {
        // The fix first: the TUI's filter bar shows the start of the message.
        Some(s) => format!("did you mean '{s}'? ({what}; free text goes in quotes)"),
        None => format!("{what}; free text goes in quotes: \"{word}\""),
    }
}

/// A network, matched against an address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Net {
    addr: IpAddr,
    prefix: u8,
}

impl Net {
    /// Whether `ip` is inside.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match (self.addr, ip) {
            (IpAddr::V4(_), IpAddr::V6(v6)) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            _ => ip,
        };
        match (self.addr, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(self.prefix)).unwrap_or(0);
                u32::from(n) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let mask = u128::MAX.checked_shl(128 - u32::from(self.prefix)).unwrap_or(0);
                u128::from(n) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }
}

/// How a `tls:` term compares the negotiated version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsTest {
    /// A handshake completed.
    Any,
    /// No handshake.
    None,
    /// Compare the negotiated version (sessions without a handshake never match).
    Cmp(std::cmp::Ordering, bool, u16),
}

/// A case-insensitive glob.
#[derive(Debug, Clone)]
pub struct Glob(glob::Pattern);

impl PartialEq for Glob {
    fn eq(&self, other: &Self) -> bool {
        self.0.as_str() == other.0.as_str()
    }
}

impl Glob {
    fn new(s: &str) -> Option<Self> {
        glob::Pattern::new(s).ok().map(Glob)
    }

    /// Whether `text` matches, ignoring case.
    pub fn matches(&self, text: &str) -> bool {
        self.0.matches_with(text, glob::MatchOptions { case_sensitive: false, ..Default::default() })
    }
}

/// One test on a session.
#[derive(Debug, Clone, PartialEq)]
pub enum Term {
    /// Any of these verdicts.
    Verdict(Vec<Verdict>),
    /// Client address in the network.
    Client(Net),
    /// Server address in the network.
    Server(Net),
    /// Either address in the network.
    Host(Net),
    /// Server port in the range.
    Port(u16, u16),
    /// HELO/EHLO argument.
    Helo(Glob),
    /// The sensor that saw the session (records of several sensors, `-R`).
    Sensor(Glob),
    /// Greeting text.
    Banner(Glob),
    /// SNI.
    Sni(Glob),
    /// Certificate subject or a SAN.
    Cert(Glob),
    /// An extension keyword in the first EHLO reply.
    Ext(Glob),
    /// A finding name.
    Finding(Vec<&'static str>),
    /// An AUTH mechanism used in clear.
    Auth(Glob),
    /// The upgrade verb sent (None: no upgrade attempted).
    Upgrade(Option<crate::session::UpgradeVerb>),
    /// TLS version test.
    Tls(TlsTest),
    /// In progress (true) or finished.
    Open(bool),
    /// How the server's log (`--logs`) compares with the wire.
    Log(LogAgreement),
    /// Free text, lower case.
    Text(String),
}

/// A wire session against its matched server-log sessions (`log:`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LogAgreement {
    /// No log session matched (or the run has no `--logs`).
    None,
    /// Every matched log session agrees.
    Agree,
    /// A matched log session differs.
    Differ,
}

impl LogAgreement {
    /// Where `s` stands; None for a run without `--logs`.
    pub fn of(s: &crate::session::Session) -> Option<Self> {
        let links = s.logs.as_ref()?;
        Some(if links.is_empty() {
            LogAgreement::None
        } else if links.iter().all(|l| l.agree) {
            LogAgreement::Agree
        } else {
            LogAgreement::Differ
        })
    }

    /// As the LOG column and the filter write it.
    pub fn name(self) -> &'static str {
        match self {
            LogAgreement::None => "none",
            LogAgreement::Agree => "agree",
            LogAgreement::Differ => "differ",
        }
    }
}

/// The parsed expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// Matches everything (the empty filter).
    All,
    /// A test.
    Term(Term),
    /// Negation.
    Not(Box<Expr>),
    /// All must hold.
    And(Vec<Expr>),
    /// Any must hold.
    Or(Vec<Expr>),
}

/// A parsed display filter.
#[derive(Debug, Clone, PartialEq)]
pub struct Filter {
    text: String,
    expr: Expr,
}

impl Filter {
    /// Parses `text` (empty or blank: matches everything).
    pub fn parse(text: &str) -> Result<Self, FilterError> {
        Ok(Self { text: text.trim().to_string(), expr: parse::parse(text)? })
    }

    /// The filter as written (trimmed).
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The tree.
    pub fn expr(&self) -> &Expr {
        &self.expr
    }

    /// The empty filter, which matches everything.
    pub fn is_all(&self) -> bool {
        self.expr == Expr::All
    }

    /// Whether `s` passes; a row that is a log session (`from_log`) is judged as its log record.
    pub fn matches(&self, s: &crate::session::Session) -> bool {
        match s.from_log.as_deref() {
            Some(r) => logs::eval(&self.expr, r),
            None => eval::eval(&self.expr, s),
        }
    }

    /// Whether a log record passes (see [`logs`]).
    pub fn matches_log(&self, r: &crate::logs::LogRecord) -> bool {
        logs::eval(&self.expr, r)
    }

    /// Whether free text is used (it is matched against transcripts, which the engine records
    /// only when asked).
    pub fn uses_text(&self) -> bool {
        fn walk(e: &Expr) -> bool {
            match e {
                Expr::Term(Term::Text(_)) => true,
                Expr::Not(x) => walk(x),
                Expr::And(v) | Expr::Or(v) => v.iter().any(walk),
                _ => false,
            }
        }
        walk(&self.expr)
    }
}

impl Default for Filter {
    fn default() -> Self {
        Self { text: String::new(), expr: Expr::All }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(s: &str) -> ErrorKind {
        Filter::parse(s).unwrap_err().kind
    }

    #[test]
    fn an_empty_filter_matches_everything() {
        assert!(Filter::parse("   ").unwrap().is_all());
    }

    #[test]
    fn spaces_bind_tighter_than_or() {
        let f = Filter::parse("port:25 verdict:plaintext or port:2525").unwrap();
        assert!(matches!(f.expr(), Expr::Or(v) if v.len() == 2 && matches!(&v[0], Expr::And(a) if a.len() == 2)));
    }

    #[test]
    fn not_and_bang_negate_one_term() {
        let a = Filter::parse("!verdict:starttls port:25").unwrap();
        let b = Filter::parse("not verdict:starttls port:25").unwrap();
        assert_eq!(a.expr(), b.expr());
        assert!(matches!(a.expr(), Expr::And(v) if matches!(v[0], Expr::Not(_))));
    }

    #[test]
    fn parentheses_group() {
        let f = Filter::parse("(port:25 or port:2525) verdict:plaintext").unwrap();
        assert!(matches!(f.expr(), Expr::And(v) if matches!(v[0], Expr::Or(_))));
    }

    #[test]
    fn verdict_globs_expand_to_the_names_they_match() {
        let f = Filter::parse("verdict:starttls-*").unwrap();
        let Expr::Term(Term::Verdict(v)) = f.expr() else { panic!() };
        assert_eq!(v, &[Verdict::StarttlsRefused, Verdict::StarttlsFailed, Verdict::StarttlsOfferedUnused]);
    }

    #[test]
    fn an_unknown_verdict_is_an_error_on_its_value() {
        let e = Filter::parse("verdict:tlsss").unwrap_err();
        assert!(matches!(e.kind, ErrorKind::BadValue { key: "verdict", .. }));
        assert_eq!(e.span, 8..13);
    }

    #[test]
    fn an_unknown_key_is_an_error_on_the_key() {
        let e = Filter::parse("port:25 verdcit:plaintext").unwrap_err();
        assert_eq!(e.kind, ErrorKind::UnknownKey("verdcit".into()));
        assert_eq!(e.span, 8..15);
    }

    #[test]
    fn a_key_without_value_is_an_error() {
        assert_eq!(kind("server:"), ErrorKind::MissingValue("server".into()));
    }

    #[test]
    fn cidrs_and_addresses_parse_for_both_families() {
        assert!(Filter::parse("server:10.1.0.0/16 client:2001:db8::/32 host:192.0.2.1").is_ok());
        assert!(matches!(kind("server:10.1.0.0/33"), ErrorKind::BadValue { key: "server", .. }));
        assert!(matches!(kind("client:mx.example"), ErrorKind::BadValue { key: "client", .. }));
    }

    #[test]
    fn a_cidr_contains_the_addresses_under_its_prefix() {
        let n = parse::net("10.1.0.0/16").unwrap();
        assert!(n.contains("10.1.255.3".parse().unwrap()));
        assert!(!n.contains("10.2.0.1".parse().unwrap()));
        assert!(n.contains("::ffff:10.1.2.3".parse().unwrap()), "v4-mapped v6 matches a v4 network");
        assert!(parse::net("0.0.0.0/0").unwrap().contains("203.0.113.9".parse().unwrap()));
    }

    #[test]
    fn port_ranges_must_be_ordered() {
        assert_eq!(Filter::parse("port:1-1024").unwrap().expr(), &Expr::Term(Term::Port(1, 1024)));
        assert!(matches!(kind("port:1024-1"), ErrorKind::BadValue { key: "port", .. }));
        assert!(matches!(kind("port:smtp"), ErrorKind::BadValue { key: "port", .. }));
    }

    #[test]
    fn tls_tests_take_comparisons_and_names() {
        use std::cmp::Ordering::*;
        let t = |s: &str| match Filter::parse(s).unwrap().expr() {
            Expr::Term(Term::Tls(t)) => *t,
            e => panic!("{e:?}"),
        };
        assert_eq!(t("tls:<1.2"), TlsTest::Cmp(Less, false, 0x0303));
        assert_eq!(t("tls:>=TLS1.2"), TlsTest::Cmp(Greater, true, 0x0303));
        assert_eq!(t("tls:1.3"), TlsTest::Cmp(Equal, true, 0x0304));
        assert_eq!(t("tls:none"), TlsTest::None);
        assert!(matches!(kind("tls:<2.0"), ErrorKind::BadValue { key: "tls", .. }));
    }

    #[test]
    fn findings_must_exist() {
        assert!(Filter::parse("finding:cert-*").is_ok());
        assert!(matches!(kind("finding:cert-bogus"), ErrorKind::BadValue { key: "finding", .. }));
    }

    #[test]
    fn quoted_values_and_free_text_keep_spaces() {
        let f = Filter::parse(r#"helo:"my host" "Queued mail""#).unwrap();
        let Expr::And(v) = f.expr() else { panic!() };
        assert!(matches!(&v[0], Expr::Term(Term::Helo(g)) if g.matches("MY HOST")));
        assert_eq!(v[1], Expr::Term(Term::Text("queued mail".into())));
        assert!(f.uses_text());
    }

    fn suggestion(s: &str) -> Option<String> {
        match kind(s) {
            ErrorKind::BareWord { suggestion, .. } => suggestion,
            k => panic!("{s}: {k:?}"),
        }
    }

    #[test]
    fn an_unquoted_word_is_an_error_not_free_text() {
        for f in ["tcp.port==25", "verdict==plaintext", "verdict=starttls", "port 25", "host 10.1.0.11", "banana"] {
            assert!(matches!(kind(f), ErrorKind::BareWord { .. }), "{f}");
        }
        assert!(matches!(kind("port:25 | port:2525"), ErrorKind::BareWord { ref word, .. } if word == "|"));
        assert!(kind("banana").to_string().contains("free text goes in quotes: \"banana\""));
        assert!(Filter::parse("\"banana\"").unwrap().uses_text());
    }

    #[test]
    fn wireshark_and_tcpdump_habits_get_the_filter_meant() {
        for (habit, meant) in [
            ("tcp.port==25", "port:25"),
            ("tcp.port == 25", "port:25"),
            ("host 10.1.0.11", "host:10.1.0.11"),
            ("verdict==plaintext", "verdict:plaintext"),
            ("verdict=starttls", "verdict:starttls"),
            ("verdict!=starttls", "!verdict:starttls"),
            ("port 25", "port:25"),
            ("tcp port 25", "port:25"),
            ("src host 10.0.0.1", "client:10.0.0.1"),
            ("ip.dst==10.0.0.2 and tcp.dstport==2525", "server:10.0.0.2 and port:2525"),
            ("port:25 | port:2525", "port:25 or port:2525"),
            ("(port 25 || port 2525) plaintext", "(port:25 || port:2525) verdict:plaintext"),
            ("cert-expired", "finding:cert-expired"),
        ] {
            assert_eq!(suggestion(habit).as_deref(), Some(meant), "{habit}");
            assert!(Filter::parse(meant).is_ok(), "{meant}");
        }
        assert_eq!(suggestion("banana"), None);
    }

    proptest::proptest! {
        #[test]
        fn any_text_parses_or_errs_within_its_bounds(text in "[a-z.:=!|&()\" 0-9-]{0,40}") {
            if let Err(e) = Filter::parse(&text) {
                proptest::prop_assert!(e.span.start <= e.span.end && e.span.end <= text.len(), "{:?}", e);
                let _ = e.kind.to_string();
            }
        }
    }

    #[test]
    fn the_error_covers_the_words_of_the_habit() {
        assert_eq!(Filter::parse("port:25 host 10.1.0.11").unwrap_err().span, 8..22);
    }

    #[test]
    fn an_unterminated_quote_is_an_error() {
        assert_eq!(kind(r#"helo:"open"#), ErrorKind::UnterminatedQuote);
    }

    #[test]
    fn dangling_operators_are_errors() {
        assert_eq!(kind("port:25 or"), ErrorKind::MissingOperand("or".into()));
        assert_eq!(kind("!"), ErrorKind::MissingOperand("!".into()));
        assert_eq!(kind("(port:25"), ErrorKind::Unbalanced);
        assert_eq!(kind("port:25)"), ErrorKind::Unbalanced);
    }

    #[test]
    fn keys_complete_from_their_prefix() {
        let c = complete("port:25 ver");
        assert_eq!(c.start, 8);
        assert_eq!(c.candidates, ["verdict:"]);
        assert_eq!(c.apply("port:25 ver", &c.candidates[0]), "port:25 verdict:");
    }

    #[test]
    fn values_complete_after_their_key() {
        let c = complete("!verdict:starttls-");
        assert_eq!(c.start, 1);
        assert_eq!(
            c.candidates,
            ["verdict:starttls-refused", "verdict:starttls-failed", "verdict:starttls-offered-unused"]
        );
        assert_eq!(c.common_prefix(), "verdict:starttls-");
        assert_eq!(complete("ext:x-an").candidates, ["ext:X-ANONYMOUSTLS"]);
    }

    #[test]
    fn every_completed_value_parses() {
        for k in KEYS {
            for c in complete(&format!("{k}:")).candidates {
                assert!(Filter::parse(&c).is_ok(), "{c}");
            }
        }
    }
}
