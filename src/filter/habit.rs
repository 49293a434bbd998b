//! Wireshark and tcpdump habits in a display filter (`tcp.port==25`, `host 10.1.0.11`,
//! `verdict==plaintext`, `|`): an unquoted word the language does not know is an error, and this
//! finds what the user most likely meant, so the error can say it.

use std::ops::Range;

use super::parse::{net, Tok};
use super::KEYS;
use crate::session::{Verdict, FINDINGS};

/// A rewrite of the tokens from `at`: the filter text meant, and how many tokens it replaces.
pub(super) struct Habit {
    pub text: String,
    pub tokens: usize,
}

/// The filter key a Wireshark field or a tcpdump primitive stands for.
fn key_for(field: &str) -> Option<&'static str> {
    let f = field.to_ascii_lowercase();
    Some(match f.as_str() {
        "tcp.port" | "tcp.dstport" | "port" | "dst port" => "port",
        "ip.addr" | "ipv6.addr" | "ip.host" | "host" | "net" => "host",
        "ip.src" | "ipv6.src" | "src" | "src host" | "src net" => "client",
        "ip.dst" | "ipv6.dst" | "dst" | "dst host" | "dst net" => "server",
        "tls.handshake.extensions_server_name" | "tls.sni" => "sni",
        "smtp.req.parameter" => "helo",
        _ => return KEYS.iter().find(|k| **k == f).copied(),
    })
}

const EQUALS: [&str; 4] = ["==", "=", "eq", "==="];
const NOT_EQUALS: [&str; 3] = ["!=", "ne", "~="];

fn word(t: Option<&(Tok, Range<usize>)>) -> Option<&str> {
    match t {
        Some((Tok::Word(w), _)) => Some(w.as_str()),
        _ => None,
    }
}

/// A value token: a bare word that is no comparison, or a quoted string (re-quoted).
fn value(t: Option<&(Tok, Range<usize>)>) -> Option<String> {
    match t {
        Some((Tok::Word(w), _)) if !EQUALS.contains(&w.as_str()) && !NOT_EQUALS.contains(&w.as_str()) => {
            Some(w.clone())
        }
        Some((Tok::Text(t), _)) => Some(quote(t)),
        _ => None,
    }
}

fn quote(t: &str) -> String {
    if t.is_empty() || t.contains(|c: char| c.is_whitespace() || "()\"".contains(c)) {
        format!("\"{}\"", t.replace('\\', "\\\\").replace('"', "\\\""))
    } else {
        t.to_string()
    }
}

fn pair(negate: bool, key: &str, v: &str) -> String {
    let v = v.trim_matches(|c| c == '\'' || c == '"');
    format!("{}{key}:{}", if negate { "!" } else { "" }, quote(v))
}

/// What the bare word at `at` (and the words after it) most likely meant.
pub(super) fn habit(toks: &[(Tok, Range<usize>)], at: usize) -> Option<Habit> {
    let w = word(toks.get(at))?;
    let h = |text: String, tokens| Some(Habit { text, tokens });
    match w {
        "|" => return h("or".into(), 1),
        "&" => return h("and".into(), 1),
        _ => {}
    }
    // `field==value`, `field!=value` written as one word (or with the value after a space).
    for (op, negate) in [("!=", true), ("==", false), ("=", false)] {
        if let Some((lhs, rhs)) = w.split_once(op) {
            let key = key_for(lhs)?;
            return match (rhs.is_empty(), value(toks.get(at + 1))) {
                (false, _) => h(pair(negate, key, rhs), 1),
                (true, Some(v)) => h(pair(negate, key, &v), 2),
                (true, None) => None,
            };
        }
    }
    // tcpdump's `[tcp|ip] [src|dst] [host|net|port] VALUE`; Wireshark's `field == value`.
    let mut i = at;
    let mut phrase = Vec::new();
    if matches!(w.to_ascii_lowercase().as_str(), "tcp" | "ip" | "ip6") {
        i += 1;
    }
    for allowed in [&["src", "dst"][..], &["host", "net", "port"][..]] {
        if let Some(x) = word(toks.get(i)).filter(|x| allowed.contains(&x.to_ascii_lowercase().as_str())) {
            phrase.push(x.to_ascii_lowercase());
            i += 1;
        }
    }
    let field = if phrase.is_empty() {
        let f = word(toks.get(i))?;
        i += 1;
        f.to_string()
    } else {
        phrase.join(" ")
    };
    if let Some(key) = key_for(&field) {
        let op = word(toks.get(i));
        let negate = op.is_some_and(|o| NOT_EQUALS.contains(&o));
        if op.is_some_and(|o| EQUALS.contains(&o) || NOT_EQUALS.contains(&o)) {
            i += 1;
        }
        return value(toks.get(i)).and_then(|v| h(pair(negate, key, &v), i + 1 - at));
    }
    if i != at + 1 {
        return None;
    }
    // A value without its key: a verdict, a finding, an address, a port.
    let lower = w.to_ascii_lowercase();
    let key = if Verdict::ALL.iter().any(|v| v.name() == lower) {
        "verdict"
    } else if FINDINGS.contains(&lower.as_str()) {
        "finding"
    } else if net(w).is_some() {
        "host"
    } else if w.parse::<u16>().is_ok() {
        "port"
    } else {
        return None;
    };
    h(pair(false, key, w), 1)
}

/// The whole filter with every habit rewritten, if each bare word has one.
pub(super) fn rewrite(src: &str, toks: &[(Tok, Range<usize>)]) -> Option<String> {
    let mut out = Vec::new();
    let mut i = 0;
    while let Some((tok, span)) = toks.get(i) {
        if matches!(tok, Tok::Word(_)) {
            let hb = habit(toks, i)?;
            out.push(hb.text);
            i += hb.tokens;
        } else {
            out.push(src.get(span.clone()).unwrap_or_default().to_string());
            i += 1;
        }
    }
    Some(out.join(" ").replace("( ", "(").replace(" )", ")"))
}
