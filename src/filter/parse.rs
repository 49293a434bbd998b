//! Tokens and the recursive-descent parser: `or` binds loosest, then juxtaposition (and), then
//! `!`/`not`.

use std::net::IpAddr;
use std::ops::Range;

use super::{ErrorKind, Expr, FilterError, Glob, LogAgreement, Net, Term, TlsTest, KEYS};
use crate::session::{UpgradeVerb, Verdict, FINDINGS};

#[derive(Debug, Clone, PartialEq)]
pub(super) enum Tok {
    Open,
    Close,
    Not,
    Or,
    And,
    /// `key:value` (value unquoted).
    Pair {
        key: String,
        value: String,
        value_at: usize,
    },
    /// An unquoted word that is none of the above (an error, with a suggestion).
    Word(String),
    /// A quoted string: free text.
    Text(String),
}

fn err(kind: ErrorKind, span: Range<usize>) -> FilterError {
    FilterError { kind, span }
}

/// Reads a quoted string starting at `at` (on the quote); returns the text and the end.
fn quoted(s: &str, at: usize) -> Result<(String, usize), FilterError> {
    let mut out = String::new();
    let mut chars = s[at + 1..].char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Ok((out, at + 1 + i + 1)),
            '\\' => match chars.next() {
                Some((_, c)) => out.push(c),
                None => break,
            },
            c => out.push(c),
        }
    }
    Err(err(ErrorKind::UnterminatedQuote, at..s.len()))
}

pub(super) fn lex(s: &str) -> Result<Vec<(Tok, Range<usize>)>, FilterError> {
    let mut out = Vec::new();
    let mut i = 0;
    let bytes = s.as_bytes();
    while i < s.len() {
        let c = s[i..].chars().next().unwrap_or(' ');
        if c.is_whitespace() {
            i += c.len_utf8();
            continue;
        }
        match c {
            '(' => {
                out.push((Tok::Open, i..i + 1));
                i += 1;
                continue;
            }
            ')' => {
                out.push((Tok::Close, i..i + 1));
                i += 1;
                continue;
            }
            '!' => {
                out.push((Tok::Not, i..i + 1));
                i += 1;
                continue;
            }
            '"' => {
                let (text, end) = quoted(s, i)?;
                out.push((Tok::Text(text), i..end));
                i = end;
                continue;
            }
            _ => {}
        }
        // A word runs to white space or a closing parenthesis; `key:"quoted value"` too.
        let start = i;
        let mut end = i;
        while end < s.len() {
            let ch = s[end..].chars().next().unwrap_or(' ');
            if ch.is_whitespace() || ch == ')' || ch == '(' {
                break;
            }
            if ch == '"' && bytes.get(end.wrapping_sub(1)) == Some(&b':') {
                break;
            }
            end += ch.len_utf8();
        }
        let word = &s[start..end];
        if let Some(colon) = word.find(':') {
            let key = &word[..colon];
            if !key.is_empty() && key.chars().all(|c| c.is_ascii_alphabetic() || c == '_' || c == '-') {
                let (value, stop) = if s[end..].starts_with('"') && end == start + colon + 1 {
                    let (v, e) = quoted(s, end)?;
                    (v, e)
                } else {
                    (word[colon + 1..].to_string(), end)
                };
                out.push((
                    Tok::Pair { key: key.to_ascii_lowercase(), value, value_at: start + colon + 1 },
                    start..stop,
                ));
                i = stop;
                continue;
            }
        }
        let tok = match word.to_ascii_lowercase().as_str() {
            "or" | "||" => Tok::Or,
            "and" | "&&" => Tok::And,
            "not" => Tok::Not,
            _ => Tok::Word(word.to_string()),
        };
        out.push((tok, start..end));
        i = end;
    }
    Ok(out)
}

pub(super) fn parse(s: &str) -> Result<Expr, FilterError> {
    let toks = lex(s)?;
    if toks.is_empty() {
        return Ok(Expr::All);
    }
    let mut p = Parser { toks: &toks, at: 0, len: s.len(), src: s };
    let e = p.or()?;
    if let Some((_, span)) = toks.get(p.at) {
        return Err(err(ErrorKind::Unbalanced, span.clone()));
    }
    Ok(e)
}

struct Parser<'a> {
    toks: &'a [(Tok, Range<usize>)],
    at: usize,
    len: usize,
    src: &'a str,
}

impl Parser<'_> {
    fn peek(&self) -> Option<&(Tok, Range<usize>)> {
        self.toks.get(self.at)
    }

    fn or(&mut self) -> Result<Expr, FilterError> {
        let mut parts = vec![self.and()?];
        while let Some((Tok::Or, span)) = self.peek() {
            let span = span.clone();
            self.at += 1;
            if self.peek().is_none_or(|(t, _)| matches!(t, Tok::Close | Tok::Or | Tok::And)) {
                return Err(err(ErrorKind::MissingOperand("or".into()), span));
            }
            parts.push(self.and()?);
        }
        Ok(if parts.len() == 1 { parts.remove(0) } else { Expr::Or(parts) })
    }

    fn and(&mut self) -> Result<Expr, FilterError> {
        let mut parts = Vec::new();
        loop {
            match self.peek() {
                None | Some((Tok::Close | Tok::Or, _)) => break,
                Some((Tok::And, span)) => {
                    let span = span.clone();
                    self.at += 1;
                    if parts.is_empty() || self.peek().is_none_or(|(t, _)| matches!(t, Tok::Close | Tok::Or | Tok::And))
                    {
                        return Err(err(ErrorKind::MissingOperand("and".into()), span));
                    }
                }
                Some(_) => parts.push(self.unary()?),
            }
        }
        match parts.len() {
            0 => {
                let span = self.peek().map_or(self.len..self.len, |(_, s)| s.clone());
                Err(err(ErrorKind::MissingOperand("or".into()), span))
            }
            1 => Ok(parts.remove(0)),
            _ => Ok(Expr::And(parts)),
        }
    }

    fn unary(&mut self) -> Result<Expr, FilterError> {
        let Some((tok, span)) = self.peek().cloned() else {
            return Err(err(ErrorKind::MissingOperand("not".into()), self.len..self.len));
        };
        self.at += 1;
        match tok {
            Tok::Not => {
                if self.peek().is_none_or(|(t, _)| matches!(t, Tok::Close | Tok::Or | Tok::And)) {
                    return Err(err(ErrorKind::MissingOperand("!".into()), span));
                }
                Ok(Expr::Not(Box::new(self.unary()?)))
            }
            Tok::Open => {
                if matches!(self.peek(), Some((Tok::Close, _))) {
                    return Err(err(ErrorKind::MissingOperand("(".into()), span));
                }
                let e = self.or()?;
                match self.peek() {
                    Some((Tok::Close, _)) => {
                        self.at += 1;
                        Ok(e)
                    }
                    _ => Err(err(ErrorKind::Unbalanced, span)),
                }
            }
            Tok::Close => Err(err(ErrorKind::Unbalanced, span)),
            Tok::Text(w) => Ok(Expr::Term(Term::Text(w.to_lowercase()))),
            Tok::Word(w) => Err(self.bare_word(w, span)),
            Tok::Pair { key, value, value_at } => term(&key, &value, span, value_at).map(Expr::Term),
            Tok::Or | Tok::And => Err(err(ErrorKind::MissingOperand("or".into()), span)),
        }
    }
}

impl Parser<'_> {
    /// An unquoted word the language does not know: free text must be quoted, so that
    /// `tcp.port==25` is an error that says `port:25` instead of a filter matching nothing.
    fn bare_word(&self, word: String, span: Range<usize>) -> FilterError {
        let at = self.at - 1;
        let local = super::habit::habit(self.toks, at);
        let end = local
            .as_ref()
            .and_then(|h| self.toks.get(at + h.tokens - 1))
            .map_or(span.end, |(_, s)| s.end.max(span.end));
        // The whole filter rewritten, when that parses; else the fix for this word alone.
        let suggestion =
            super::habit::rewrite(self.src, self.toks).filter(|r| parse(r).is_ok()).or_else(|| local.map(|h| h.text));
        err(ErrorKind::BareWord { word, suggestion }, span.start..end)
    }
}

fn bad(key: &'static str, value: &str, expected: &str, span: Range<usize>) -> FilterError {
    err(ErrorKind::BadValue { key, value: value.to_string(), expected: expected.to_string() }, span)
}

/// An address or CIDR.
pub(super) fn net(v: &str) -> Option<Net> {
    let (a, p) = match v.split_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (v, None),
    };
    let a = a.trim_start_matches('[').trim_end_matches(']');
    let addr: IpAddr = a.parse().ok()?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let prefix = match p {
        Some(p) => p.parse::<u8>().ok().filter(|p| *p <= max)?,
        None => max,
    };
    Some(Net { addr, prefix })
}

/// A TLS version as `1.2`, `TLS1.2`, `tls1.2`, `ssl3`.
pub(super) fn version(v: &str) -> Option<u16> {
    let v = v.to_ascii_lowercase();
    let v = v.strip_prefix("tls").unwrap_or(&v);
    let v = v.strip_prefix('v').unwrap_or(v);
    Some(match v {
        "1.0" | "1" | "10" => 0x0301,
        "1.1" | "11" => 0x0302,
        "1.2" | "12" => 0x0303,
        "1.3" | "13" => 0x0304,
        "ssl3" | "ssl3.0" => 0x0300,
        _ => return None,
    })
}

fn glob(key: &'static str, v: &str, span: Range<usize>) -> Result<Glob, FilterError> {
    Glob::new(v).ok_or_else(|| bad(key, v, "a valid glob (*, ?, [a-z])", span))
}

fn term(key: &str, v: &str, span: Range<usize>, value_at: usize) -> Result<Term, FilterError> {
    let vspan = value_at..span.end.max(value_at);
    let Some(k) = KEYS.iter().find(|k| **k == key).copied() else {
        return Err(err(ErrorKind::UnknownKey(key.to_string()), span.start..value_at.saturating_sub(1)));
    };
    if v.is_empty() && !matches!(k, "helo" | "banner") {
        return Err(err(ErrorKind::MissingValue(k.to_string()), span));
    }
    let lower = v.to_ascii_lowercase();
    Ok(match k {
        "verdict" => {
            let g = glob(k, &lower, vspan.clone())?;
            let vs: Vec<Verdict> = Verdict::ALL.into_iter().filter(|x| g.matches(x.name())).collect();
            if vs.is_empty() {
                let names: Vec<&str> = Verdict::ALL.iter().map(|x| x.name()).collect();
                return Err(bad(k, v, &format!("a verdict ({})", names.join(", ")), vspan));
            }
            Term::Verdict(vs)
        }
        "client" | "server" | "host" => {
            let n = net(v).ok_or_else(|| bad(k, v, "an address or CIDR (10.1.0.0/16, 2001:db8::/32)", vspan))?;
            match k {
                "client" => Term::Client(n),
                "server" => Term::Server(n),
                _ => Term::Host(n),
            }
        }
        "port" => {
            let p = |x: &str| x.parse::<u16>().ok();
            let range = match v.split_once('-') {
                Some((a, b)) => p(a).zip(p(b)).filter(|(a, b)| a <= b),
                None => p(v).map(|x| (x, x)),
            };
            let (a, b) = range.ok_or_else(|| bad(k, v, "a port or range (25, 2525, 1-1024)", vspan))?;
            Term::Port(a, b)
        }
        "helo" => Term::Helo(glob(k, v, vspan)?),
        "sensor" => Term::Sensor(glob(k, v, vspan)?),
        "banner" => Term::Banner(glob(k, v, vspan)?),
        "sni" => Term::Sni(glob(k, v, vspan)?),
        "cert" => Term::Cert(glob(k, v, vspan)?),
        "ext" => Term::Ext(glob(k, v, vspan)?),
        "auth" => Term::Auth(glob(k, v, vspan)?),
        "finding" => {
            let g = glob(k, &lower, vspan.clone())?;
            let fs: Vec<&'static str> = FINDINGS.iter().copied().filter(|f| g.matches(f)).collect();
            if fs.is_empty() {
                return Err(bad(k, v, &format!("a finding ({})", FINDINGS.join(", ")), vspan));
            }
            Term::Finding(fs)
        }
        "upgrade" => Term::Upgrade(match lower.as_str() {
            "starttls" => Some(UpgradeVerb::Starttls),
            "x-anonymoustls" | "xanonymoustls" => Some(UpgradeVerb::XAnonymousTls),
            "none" => None,
            _ => return Err(bad(k, v, "starttls, x-anonymoustls or none", vspan)),
        }),
        "log" => Term::Log(match lower.as_str() {
            "agree" | "agrees" => LogAgreement::Agree,
            "differ" | "differs" | "disagree" | "disagrees" => LogAgreement::Differ,
            "none" => LogAgreement::None,
            _ => return Err(bad(k, v, "agree, differ or none", vspan)),
        }),
        "state" => Term::Open(match lower.as_str() {
            "open" | "live" | "in-progress" => true,
            "done" | "closed" | "finished" => false,
            _ => return Err(bad(k, v, "open or done", vspan)),
        }),
        "tls" => Term::Tls(match lower.as_str() {
            "any" | "yes" => TlsTest::Any,
            "none" | "no" => TlsTest::None,
            _ => {
                use std::cmp::Ordering::{Equal, Greater, Less};
                let (ord, eq, rest) = if let Some(r) = lower.strip_prefix("<=") {
                    (Less, true, r)
                } else if let Some(r) = lower.strip_prefix(">=") {
                    (Greater, true, r)
                } else if let Some(r) = lower.strip_prefix('<') {
                    (Less, false, r)
                } else if let Some(r) = lower.strip_prefix('>') {
                    (Greater, false, r)
                } else {
                    (Equal, true, lower.strip_prefix('=').unwrap_or(&lower))
                };
                let ver =
                    version(rest).ok_or_else(|| bad(k, v, "a version test (<1.2, >=1.2, 1.3, none, any)", vspan))?;
                TlsTest::Cmp(ord, eq, ver)
            }
        }),
        _ => return Err(err(ErrorKind::UnknownKey(key.to_string()), span)),
    })
}
