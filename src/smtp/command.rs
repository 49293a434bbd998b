//! Client command lines.

/// Verbs the state machine acts on; everything else is `Other`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    /// EHLO.
    Ehlo,
    /// HELO.
    Helo,
    /// LHLO (LMTP).
    Lhlo,
    /// MAIL FROM.
    Mail,
    /// RCPT TO.
    Rcpt,
    /// DATA.
    Data,
    /// BDAT (CHUNKING).
    Bdat,
    /// AUTH.
    Auth,
    /// Exchange's X-EXPS: AUTH by another name (GSSAPI/NTLM between hubs), with 334 continuations.
    XExps,
    /// STARTTLS.
    Starttls,
    /// Exchange's X-ANONYMOUSTLS.
    XAnonymousTls,
    /// QUIT.
    Quit,
    /// RSET.
    Rset,
    /// Any other recognised SMTP verb (NOOP, VRFY, HELP, XEXCH50…).
    Known,
    /// Not an SMTP verb.
    Other,
}

const KNOWN: &[&str] = &[
    "NOOP",
    "VRFY",
    "EXPN",
    "HELP",
    "ETRN",
    "TURN",
    "ATRN",
    "XEXCH50",
    "X-LINK2STATE",
    "XSHADOW",
    "XCLIENT",
    "XFORWARD",
    "SEND",
    "SOML",
    "SAML",
    "ONEX",
    "VERB",
    "XQUE",
    "XEXPS",
];

/// Parses the verb of a command line (case-insensitive); returns it with the argument.
pub fn parse(line: &[u8]) -> (Verb, &[u8]) {
    let end = line.iter().position(|b| *b == b' ' || *b == b'\t').unwrap_or(line.len());
    let (word, rest) = line.split_at(end);
    let arg = trim(rest);
    if word.len() > 16 {
        return (Verb::Other, arg);
    }
    let mut up = [0u8; 16];
    for (d, s) in up.iter_mut().zip(word) {
        *d = s.to_ascii_uppercase();
    }
    let w = &up[..word.len()];
    let verb = match w {
        b"EHLO" => Verb::Ehlo,
        b"HELO" => Verb::Helo,
        b"LHLO" => Verb::Lhlo,
        b"MAIL" => Verb::Mail,
        b"RCPT" => Verb::Rcpt,
        b"DATA" => Verb::Data,
        b"BDAT" => Verb::Bdat,
        b"AUTH" => Verb::Auth,
        b"X-EXPS" => Verb::XExps,
        b"STARTTLS" => Verb::Starttls,
        b"X-ANONYMOUSTLS" => Verb::XAnonymousTls,
        b"QUIT" => Verb::Quit,
        b"RSET" => Verb::Rset,
        _ if KNOWN.iter().any(|k| k.as_bytes() == w) => Verb::Known,
        _ => Verb::Other,
    };
    (verb, arg)
}

/// Whether a line starts with an SMTP verb followed by a separator or the line end.
pub fn is_verb_line(line: &[u8]) -> bool {
    !matches!(parse(line).0, Verb::Other)
}

/// Whether `data` begins with a command verb followed by a space, tab or line end (used after
/// a gap, where a segment may start a new command).
pub fn starts_with_verb(data: &[u8]) -> bool {
    let Some(end) = data.iter().take(17).position(|b| matches!(b, b' ' | b'\t' | b'\r' | b'\n')) else {
        return false;
    };
    end > 0 && !matches!(parse(data.get(..end).unwrap_or(&[])).0, Verb::Other)
}

/// Trims ASCII white space at both ends.
pub fn trim(s: &[u8]) -> &[u8] {
    let start = s.iter().position(|b| !b.is_ascii_whitespace()).unwrap_or(s.len());
    let end = s.iter().rposition(|b| !b.is_ascii_whitespace()).map_or(start, |e| e + 1);
    s.get(start..end).unwrap_or(&[])
}

/// BDAT arguments: chunk size and whether it is the LAST chunk (None if the size is invalid).
pub fn bdat_args(arg: &[u8]) -> Option<(u64, bool)> {
    let mut it = arg.split(|b| *b == b' ').filter(|w| !w.is_empty());
    let size = it.next()?;
    if size.is_empty() || size.len() > 19 || !size.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let n = std::str::from_utf8(size).ok()?.parse().ok()?;
    let last = it.next().is_some_and(|w| w.eq_ignore_ascii_case(b"LAST"));
    Some((n, last))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verbs_are_case_insensitive() {
        assert_eq!(parse(b"ehlo example.org").0, Verb::Ehlo);
        assert_eq!(parse(b"StartTLS").0, Verb::Starttls);
        assert_eq!(parse(b"x-anonymoustls").0, Verb::XAnonymousTls);
    }

    #[test]
    fn helo_argument_is_trimmed_and_may_be_empty() {
        assert_eq!(parse(b"EHLO   host.example  "), (Verb::Ehlo, &b"host.example"[..]));
        assert_eq!(parse(b"ehlo"), (Verb::Ehlo, &b""[..]));
    }

    #[test]
    fn bdat_needs_a_numeric_size() {
        assert_eq!(bdat_args(b"129"), Some((129, false)));
        assert_eq!(bdat_args(b"106 LAST"), Some((106, true)));
        assert_eq!(bdat_args(b"SCRAMBLE"), None);
        assert_eq!(bdat_args(b""), None);
    }

    #[test]
    fn http_is_not_smtp() {
        assert!(!is_verb_line(b"GET / HTTP/1.1"));
        assert!(is_verb_line(b"QUIT"));
    }
}
