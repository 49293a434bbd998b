//! The policy file: named host groups and rules for group pairs, first match wins.
//!
//! ```toml
//! [groups]
//! POA = ["10.1.0.0/24"]
//! TOR = ["10.2.0.0/24", "helo:*.tor.contoso.com"]   # name globs: helo:, banner:, cert:
//!
//! [[rule]]
//! name = "POA-TOR hubs in clear (WAN optimizers)"
//! between = ["POA", "TOR"]
//! expect = "plaintext"
//! forbid_offer = ["X-ANONYMOUSTLS"]
//!
//! [default]
//! expect = "tls"
//! min_version = "TLS1.2"
//! ```

use std::collections::BTreeMap;
use std::net::IpAddr;

use ipnet::IpNet;
use serde::Deserialize;
use thiserror::Error;

use super::subject::Subject;

/// Errors in a policy file or the `--between/--from/--to` arguments.
#[derive(Debug, Error)]
pub enum PolicyError {
    /// Not valid TOML or not the expected shape.
    #[error("policy: {0}")]
    Toml(String),
    /// A group member that is neither an address, a CIDR nor a `helo:/banner:/cert:` glob.
    #[error("policy: group {group}: '{member}' is not an address, a CIDR or a helo:/banner:/cert: glob")]
    Member { group: String, member: String },
    /// A rule names a group that does not exist.
    #[error("policy: rule '{rule}' names unknown group '{group}'")]
    UnknownGroup { rule: String, group: String },
    /// A rule that says neither `between` nor `from`/`to`.
    #[error("policy: rule '{0}' needs `between = [A, B]` or `from`/`to`")]
    NoHosts(String),
    /// Unknown TLS version name.
    #[error("{context}: unknown TLS version '{value}' (TLS1.0, TLS1.1, TLS1.2 or TLS1.3){hint}")]
    Version {
        /// Where it was written (`policy: rule 'x': min_version`, `--min-version`).
        context: String,
        /// The value as written.
        value: String,
        /// `— did you mean …?` when one is near.
        hint: String,
    },
    /// A value outside a closed vocabulary (an upgrade verb, `expect`, a port): a typo there
    /// would otherwise switch a check off without a word.
    #[error("{context}: '{value}' is not {valid}{hint}")]
    Vocabulary {
        /// Where it was written.
        context: String,
        /// The value as written.
        value: String,
        /// What is accepted, in words.
        valid: &'static str,
        /// `— did you mean …?` when one is near.
        hint: String,
    },
    /// `[rule]` (one table) where rules are a list, `[[default]]` where there is one default.
    #[error("policy: line {line}: `{written}` {why}: write `{meant}`")]
    TableForm { line: usize, written: String, meant: String, why: &'static str },
    /// A key that means nothing under the rule's `expect` (it would be silently ignored).
    #[error("policy: rule '{rule}': `{key}` has no meaning with expect = \"{expect}\" ({hint})")]
    Meaningless { rule: String, key: &'static str, expect: String, hint: &'static str },
}

/// What a rule expects of the sessions it matches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expect {
    /// Mail in clear; optionally no offer of these upgrade verbs.
    Plaintext {
        /// Upgrade verbs the server must not offer (e.g. X-ANONYMOUSTLS).
        forbid_offer: Vec<String>,
    },
    /// Mail inside TLS.
    Tls {
        /// Lowest acceptable negotiated version.
        min_version: Option<u16>,
        /// Certificate must be within its validity at the session's time.
        cert_valid: bool,
        /// Certificate must cover the SNI / server name.
        cert_name: bool,
    },
    /// Anything goes (listed only).
    Any,
}

/// One member of a host group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Member {
    /// An address range.
    Net(IpNet),
    /// A glob on the client's HELO name (spoofable).
    Helo(glob::Pattern),
    /// A glob on the server's banner host (spoofable).
    Banner(glob::Pattern),
    /// A glob on the server certificate's names (spoofable unless validated elsewhere).
    Cert(glob::Pattern),
}

/// A named host group.
#[derive(Debug, Clone)]
pub struct Group {
    /// Name.
    pub name: String,
    /// Members; `*` alone matches every host.
    pub members: Vec<Member>,
    /// Matches everything.
    pub all: bool,
}

/// Which hosts a rule is about.
#[derive(Debug, Clone)]
pub enum Hosts {
    /// Either direction between two groups.
    Between(Group, Group),
    /// Directed: client in the first, server in the second.
    Directed(Group, Group),
    /// Everything (the default rule).
    All,
}

/// A rule.
#[derive(Debug, Clone)]
pub struct Rule {
    /// Name shown in reports.
    pub name: String,
    /// Hosts it covers.
    pub hosts: Hosts,
    /// Server ports it covers (empty: all).
    pub ports: Vec<u16>,
    /// What it expects.
    pub expect: Expect,
    /// The policy's `[default]` rule: it catches what the named rules leave, so seeing nothing
    /// there is good news, not a gap (`--require-traffic` ignores it).
    pub default: bool,
}

/// A parsed policy.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    /// Rules in order; the first that matches a session judges it.
    pub rules: Vec<Rule>,
}

/// How a session matched a group: by address, or by a spoofable name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchedBy {
    /// Address or CIDR.
    Address,
    /// HELO, banner or certificate name: a peer can claim it.
    Name,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    #[serde(default)]
    groups: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    rule: Vec<RawRule>,
    default: Option<RawRule>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    name: Option<String>,
    between: Option<[String; 2]>,
    from: Option<String>,
    to: Option<String>,
    // Values, not u16: a port out of range or a name gets an error that says which.
    #[serde(default)]
    ports: Vec<toml::Value>,
    expect: String,
    #[serde(default)]
    forbid_offer: Vec<String>,
    min_version: Option<String>,
    // Options, not plain bools: a key given under the wrong `expect` is an error even when false.
    cert_valid: Option<bool>,
    cert_name: Option<bool>,
}

/// The upgrade verbs a server can offer and a client send (`forbid_offer`).
pub const UPGRADE_VERBS: [&str; 2] = ["STARTTLS", "X-ANONYMOUSTLS"];

/// What `expect` takes.
pub const EXPECTATIONS: [&str; 3] = ["plaintext", "tls", "any"];

const VERSIONS: [&str; 4] = ["TLS1.0", "TLS1.1", "TLS1.2", "TLS1.3"];

/// Parses `TLS1.2` (also `1.2`, `tls1.2`, `TLSv1.2`); `context` says where it was written.
pub fn parse_version(s: &str, context: &str) -> Result<u16, PolicyError> {
    let t = s.to_ascii_lowercase().replace("tlsv", "").replace("tls", "");
    Ok(match t.trim() {
        "1.0" | "1" => 0x0301,
        "1.1" => 0x0302,
        "1.2" => 0x0303,
        "1.3" => 0x0304,
        _ => {
            return Err(PolicyError::Version {
                context: context.into(),
                value: s.to_string(),
                hint: crate::suggest::did_you_mean(s, &VERSIONS),
            })
        }
    })
}

/// An upgrade verb in any case, as its upper-case name; anything else is an error naming the
/// nearest verb (`X-ANONYMOUSTSL` would otherwise forbid nothing).
pub fn parse_verb(s: &str, context: &str) -> Result<String, PolicyError> {
    let up = s.trim().to_ascii_uppercase();
    if UPGRADE_VERBS.contains(&up.as_str()) {
        return Ok(up);
    }
    Err(PolicyError::Vocabulary {
        context: context.into(),
        value: s.to_string(),
        valid: "an upgrade verb (STARTTLS or X-ANONYMOUSTLS)",
        hint: crate::suggest::did_you_mean(&up, &UPGRADE_VERBS),
    })
}

/// A server port: 1 to 65535 (0 is no port a session can have).
pub fn parse_port(v: &toml::Value, context: &str) -> Result<u16, PolicyError> {
    v.as_integer().and_then(|n| u16::try_from(n).ok()).filter(|p| *p != 0).ok_or_else(|| PolicyError::Vocabulary {
        context: context.into(),
        value: v.as_str().map_or_else(|| v.to_string(), str::to_string),
        valid: "a port number (1-65535)",
        hint: String::new(),
    })
}

/// TOML reads `[rule]` as one table and then complains of a duplicate key or a type: find the
/// line and say what was meant.
fn table_form(text: &str) -> Result<(), PolicyError> {
    for (i, line) in text.lines().enumerate() {
        let t: String = line.split('#').next().unwrap_or_default().chars().filter(|c| !c.is_whitespace()).collect();
        let (meant, why) = match t.as_str() {
            "[rule]" => ("[[rule]]", "declares a single table, but rules are a list"),
            "[[default]]" => ("[default]", "declares a list, but there is one default rule"),
            "[[groups]]" => ("[groups]", "declares a list, but groups are one table of names"),
            _ => continue,
        };
        return Err(PolicyError::TableForm { line: i + 1, written: line.trim().into(), meant: meant.into(), why });
    }
    Ok(())
}

fn glob(group: &str, m: &str) -> Result<glob::Pattern, PolicyError> {
    glob::Pattern::new(&m.to_ascii_lowercase())
        .map_err(|_| PolicyError::Member { group: group.into(), member: m.into() })
}

/// Parses one group member.
pub fn parse_member(group: &str, m: &str) -> Result<Member, PolicyError> {
    let m = m.trim();
    if let Some(g) = m.strip_prefix("helo:") {
        return Ok(Member::Helo(glob(group, g)?));
    }
    if let Some(g) = m.strip_prefix("banner:") {
        return Ok(Member::Banner(glob(group, g)?));
    }
    if let Some(g) = m.strip_prefix("cert:") {
        return Ok(Member::Cert(glob(group, g)?));
    }
    if let Ok(net) = m.parse::<IpNet>() {
        return Ok(Member::Net(net));
    }
    if let Ok(ip) = m.parse::<IpAddr>() {
        return Ok(Member::Net(IpNet::from(ip)));
    }
    Err(PolicyError::Member { group: group.into(), member: m.into() })
}

/// A group from members given on the command line (`--between 10.1.0.0/24 10.2.0.0/24`).
pub fn group(name: &str, members: &[&str]) -> Result<Group, PolicyError> {
    let all = members.iter().any(|m| m.trim() == "*");
    let members =
        members.iter().filter(|m| m.trim() != "*").map(|m| parse_member(name, m)).collect::<Result<_, _>>()?;
    Ok(Group { name: name.to_string(), members, all })
}

fn expect(r: &RawRule, name: &str) -> Result<Expect, PolicyError> {
    // A key the rule's expectation cannot use would pass unnoticed and let an admin believe
    // something is checked that is not: refuse it.
    let given: [(&'static str, bool); 4] = [
        ("forbid_offer", !r.forbid_offer.is_empty()),
        ("min_version", r.min_version.is_some()),
        ("cert_valid", r.cert_valid.is_some()),
        ("cert_name", r.cert_name.is_some()),
    ];
    let allowed: &[&str] = match r.expect.as_str() {
        "plaintext" => &["forbid_offer"],
        "tls" => &["min_version", "cert_valid", "cert_name"],
        "any" => &[],
        other => {
            return Err(PolicyError::Vocabulary {
                context: format!("policy: rule '{name}': expect"),
                value: other.into(),
                valid: "plaintext, tls or any",
                hint: crate::suggest::did_you_mean(other, &EXPECTATIONS),
            })
        }
    };
    if let Some((key, _)) = given.iter().find(|(k, set)| *set && !allowed.contains(k)) {
        let hint = if *key == "forbid_offer" {
            "forbid_offer belongs to a plaintext rule"
        } else {
            "min_version, cert_valid and cert_name belong to a tls rule"
        };
        return Err(PolicyError::Meaningless { rule: name.into(), key, expect: r.expect.clone(), hint });
    }
    Ok(match r.expect.as_str() {
        "plaintext" => Expect::Plaintext {
            forbid_offer: r
                .forbid_offer
                .iter()
                .map(|v| parse_verb(v, &format!("policy: rule '{name}': forbid_offer")))
                .collect::<Result<_, _>>()?,
        },
        "tls" => Expect::Tls {
            min_version: r
                .min_version
                .as_deref()
                .map(|v| parse_version(v, &format!("policy: rule '{name}': min_version")))
                .transpose()?,
            cert_valid: r.cert_valid.unwrap_or(false),
            cert_name: r.cert_name.unwrap_or(false),
        },
        _ => Expect::Any,
    })
}

fn ports(r: &RawRule, name: &str) -> Result<Vec<u16>, PolicyError> {
    r.ports.iter().map(|p| parse_port(p, &format!("policy: rule '{name}': ports"))).collect()
}

impl Policy {
    /// Parses a policy file's text.
    pub fn from_toml(text: &str) -> Result<Self, PolicyError> {
        table_form(text)?;
        let raw: RawPolicy = toml::from_str(text).map_err(|e| PolicyError::Toml(e.to_string().trim().to_string()))?;
        let mut groups = BTreeMap::new();
        for (name, members) in &raw.groups {
            let m: Vec<&str> = members.iter().map(String::as_str).collect();
            groups.insert(name.clone(), group(name, &m)?);
        }
        let find = |rule: &str, g: &str| -> Result<Group, PolicyError> {
            if g == "*" {
                return Ok(Group { name: "*".into(), members: Vec::new(), all: true });
            }
            groups.get(g).cloned().ok_or_else(|| PolicyError::UnknownGroup { rule: rule.into(), group: g.into() })
        };
        let mut rules = Vec::new();
        for (i, r) in raw.rule.iter().enumerate() {
            let name = r.name.clone().unwrap_or_else(|| format!("rule {}", i + 1));
            let hosts = match (&r.between, &r.from, &r.to) {
                (Some([a, b]), None, None) => Hosts::Between(find(&name, a)?, find(&name, b)?),
                (None, Some(a), Some(b)) => Hosts::Directed(find(&name, a)?, find(&name, b)?),
                _ => return Err(PolicyError::NoHosts(name)),
            };
            let ports = ports(r, &name)?;
            rules.push(Rule { expect: expect(r, &name)?, name, hosts, ports, default: false });
        }
        if let Some(d) = &raw.default {
            let name = d.name.clone().unwrap_or_else(|| "default".into());
            let ports = ports(d, &name)?;
            rules.push(Rule { expect: expect(d, &name)?, name, hosts: Hosts::All, ports, default: true });
        }
        Ok(Self { rules })
    }

    /// The first rule that matches `s`, with how its hosts were recognised.
    pub fn rule_for<S: Subject + ?Sized>(&self, s: &S) -> Option<(usize, MatchedBy)> {
        match self.rule_for_logged(s) {
            RuleFor::Matched(i, by) => Some((i, by)),
            RuleFor::NotLogged(..) | RuleFor::None => None,
        }
    }

    /// The first rule that matches `s`; a rule that may cover `s` but needs a fact `s` does not
    /// hold (a Postfix log session has no server address) stops the search there: a later rule
    /// would judge a session the earlier one may own.
    pub fn rule_for_logged<S: Subject + ?Sized>(&self, s: &S) -> RuleFor {
        for (i, r) in self.rules.iter().enumerate() {
            match r.matches_logged(s) {
                Match::Yes(by) => return RuleFor::Matched(i, by),
                Match::Unknown(why) => return RuleFor::NotLogged(i, why),
                Match::No => {}
            }
        }
        RuleFor::None
    }
}

/// Which rule covers a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleFor {
    /// Rule `i`, with how its hosts were recognised.
    Matched(usize, MatchedBy),
    /// Rule `i` may cover it, but the session lacks what would tell (the reason).
    NotLogged(usize, &'static str),
    /// No rule.
    None,
}

/// Whether a rule (or a group) covers a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Match {
    /// Yes, and how.
    Yes(MatchedBy),
    /// No.
    No,
    /// Cannot tell: the session does not hold the fact (the reason).
    Unknown(&'static str),
}

/// The reason a log session without a server address is not judged by a rule naming servers.
pub const SERVER_NOT_LOGGED: &str = "server not logged";
/// The same for a log without the server's port, under a rule limited to ports.
pub const SERVER_PORT_NOT_LOGGED: &str = "server port not logged";
/// The same for a log without the client's address (Postfix's own client).
pub const CLIENT_NOT_LOGGED: &str = "client not logged";

impl Group {
    /// Whether `s`'s client (`client` true) or server is in the group, and how; a session
    /// without that side's address matches only `*` (or a name the session shows).
    pub fn contains<S: Subject + ?Sized>(&self, s: &S, client: bool) -> Option<MatchedBy> {
        match self.contains_logged(s, client) {
            Match::Yes(by) => Some(by),
            Match::No | Match::Unknown(_) => None,
        }
    }

    /// [`Group::contains`], saying when the session does not hold the address.
    pub fn contains_logged<S: Subject + ?Sized>(&self, s: &S, client: bool) -> Match {
        if self.all {
            return Match::Yes(MatchedBy::Address);
        }
        let ip = if client { s.client_ip() } else { s.server_ip() };
        let ip = ip.map(|ip| match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(IpAddr::V6(v6)),
            v4 => v4,
        });
        let mut by_name = false;
        for m in &self.members {
            match m {
                Member::Net(n) if ip.is_some_and(|ip| n.contains(&ip)) => return Match::Yes(MatchedBy::Address),
                Member::Helo(p) if client => {
                    by_name |= s.helo_name().is_some_and(|h| p.matches(&h));
                }
                Member::Banner(p) if !client => {
                    by_name |= s.banner_names().iter().any(|h| p.matches(h));
                }
                Member::Cert(p) if !client => {
                    by_name |= s.cert_names().iter().any(|n| p.matches(n));
                }
                _ => {}
            }
        }
        match (by_name, ip) {
            (true, _) => Match::Yes(MatchedBy::Name),
            (false, Some(_)) => Match::No,
            (false, None) if client => Match::Unknown(CLIENT_NOT_LOGGED),
            (false, None) => Match::Unknown(SERVER_NOT_LOGGED),
        }
    }
}

impl Rule {
    /// Whether the rule covers `s`.
    pub fn matches<S: Subject + ?Sized>(&self, s: &S) -> Option<MatchedBy> {
        match self.matches_logged(s) {
            Match::Yes(by) => Some(by),
            Match::No | Match::Unknown(_) => None,
        }
    }

    /// [`Rule::matches`], saying when the session does not hold what would tell.
    pub fn matches_logged<S: Subject + ?Sized>(&self, s: &S) -> Match {
        let port = if self.ports.is_empty() {
            Match::Yes(MatchedBy::Address)
        } else {
            match s.server_port() {
                Some(p) if self.ports.contains(&p) => Match::Yes(MatchedBy::Address),
                Some(_) => return Match::No,
                None if s.server_ip().is_none() => Match::Unknown(SERVER_NOT_LOGGED),
                None => Match::Unknown(SERVER_PORT_NOT_LOGGED),
            }
        };
        let both = |a: Match, b: Match| match (a, b) {
            (Match::No, _) | (_, Match::No) => Match::No,
            (Match::Unknown(w), _) | (_, Match::Unknown(w)) => Match::Unknown(w),
            (Match::Yes(MatchedBy::Address), Match::Yes(MatchedBy::Address)) => Match::Yes(MatchedBy::Address),
            (Match::Yes(_), Match::Yes(_)) => Match::Yes(MatchedBy::Name),
        };
        let hosts = match &self.hosts {
            Hosts::All => Match::Yes(MatchedBy::Address),
            Hosts::Directed(a, b) => both(a.contains_logged(s, true), b.contains_logged(s, false)),
            Hosts::Between(a, b) => {
                let there = both(a.contains_logged(s, true), b.contains_logged(s, false));
                let back = both(b.contains_logged(s, true), a.contains_logged(s, false));
                match (there, back) {
                    (Match::Yes(x), _) => Match::Yes(x),
                    (_, Match::Yes(y)) => Match::Yes(y),
                    (Match::Unknown(w), _) | (_, Match::Unknown(w)) => Match::Unknown(w),
                    (Match::No, Match::No) => Match::No,
                }
            }
        };
        both(port, hosts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_policy_with_groups_rules_and_default_parses() {
        let p = Policy::from_toml(
            r#"
            [groups]
            POA = ["10.1.0.0/24", "helo:*.poa.contoso.com"]
            TOR = ["10.2.0.7"]
            [[rule]]
            name = "hubs"
            between = ["POA", "TOR"]
            expect = "plaintext"
            forbid_offer = ["x-anonymoustls"]
            [default]
            expect = "tls"
            min_version = "TLS1.2"
            "#,
        )
        .unwrap();
        assert_eq!(p.rules.len(), 2);
        assert_eq!(p.rules[0].expect, Expect::Plaintext { forbid_offer: vec!["X-ANONYMOUSTLS".into()] });
        assert!(matches!(p.rules[1].expect, Expect::Tls { min_version: Some(0x0303), .. }));
    }

    #[test]
    fn unknown_groups_and_bad_members_are_errors() {
        assert!(matches!(
            Policy::from_toml("[[rule]]\nbetween = [\"A\", \"B\"]\nexpect = \"tls\""),
            Err(PolicyError::UnknownGroup { .. })
        ));
        assert!(matches!(Policy::from_toml("[groups]\nA = [\"not an address\"]"), Err(PolicyError::Member { .. })));
        assert!(matches!(Policy::from_toml("[[rule]]\nexpect = \"tls\""), Err(PolicyError::NoHosts(_))));
    }

    #[test]
    fn a_key_the_rules_expectation_cannot_use_is_an_error_not_ignored() {
        let rule = |expect: &str, key: &str| format!("[default]\nexpect = \"{expect}\"\n{key}\n");
        for (expect, key) in [
            ("tls", "forbid_offer = [\"X-ANONYMOUSTLS\"]"),
            ("plaintext", "min_version = \"TLS1.2\""),
            ("plaintext", "cert_valid = true"),
            ("plaintext", "cert_name = false"),
            ("any", "forbid_offer = [\"STARTTLS\"]"),
            ("any", "min_version = \"TLS1.2\""),
        ] {
            let e = Policy::from_toml(&rule(expect, key)).unwrap_err();
            assert!(matches!(e, PolicyError::Meaningless { .. }), "{expect} {key}: {e}");
            assert!(!e.to_string().contains('\n'), "one line: {e}");
        }
        assert!(
            Policy::from_toml(&rule("tls", "min_version = \"TLS1.2\"\ncert_valid = true\ncert_name = true")).is_ok()
        );
        assert!(Policy::from_toml(&rule("plaintext", "forbid_offer = [\"X-ANONYMOUSTLS\"]")).is_ok());
    }

    fn error(toml: &str) -> String {
        let e = Policy::from_toml(toml).unwrap_err().to_string();
        assert!(!e.contains('\n'), "one line: {e}");
        e
    }

    #[test]
    fn a_misspelt_upgrade_verb_is_an_error_naming_the_verb_meant() {
        let e = error("[default]\nexpect = \"plaintext\"\nforbid_offer = [\"X-ANONYMOUSTSL\"]");
        assert!(e.contains("'X-ANONYMOUSTSL' is not an upgrade verb"), "{e}");
        assert!(e.contains("did you mean X-ANONYMOUSTLS?"), "{e}");
        let p = Policy::from_toml("[default]\nexpect = \"plaintext\"\nforbid_offer = [\"StartTLS\"]").unwrap();
        assert_eq!(p.rules[0].expect, Expect::Plaintext { forbid_offer: vec!["STARTTLS".into()] });
    }

    #[test]
    fn every_closed_vocabulary_refuses_what_is_not_in_it() {
        let e = error("[default]\nexpect = \"plaintxt\"");
        assert!(e.contains("'plaintxt' is not plaintext, tls or any — did you mean plaintext?"), "{e}");
        let e = error("[default]\nexpect = \"tls\"\nmin_version = \"TLS12\"");
        assert!(e.contains("unknown TLS version 'TLS12'") && e.contains("did you mean TLS1.2?"), "{e}");
        for bad in ["0", "65536", "\"smtp\"", "-25"] {
            let e = error(&format!("[default]\nexpect = \"any\"\nports = [25, {bad}]"));
            assert!(e.contains("ports") && e.contains("is not a port number (1-65535)"), "{bad}: {e}");
        }
    }

    #[test]
    fn a_rule_written_as_one_table_says_to_write_a_list() {
        let one = "[groups]\nA = [\"10.0.0.1\"]\n[rule]\nbetween = [\"A\", \"A\"]\nexpect = \"tls\"\n";
        for text in [one.to_string(), format!("{one}[rule]\nbetween = [\"A\", \"A\"]\nexpect = \"any\"\n")] {
            let e = error(&text);
            assert!(e.contains("line 3") && e.contains("write `[[rule]]`"), "{e}");
            assert!(!e.contains("duplicate"), "{e}");
        }
        assert!(error("[[default]]\nexpect = \"tls\"").contains("write `[default]`"));
    }
}
