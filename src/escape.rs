//! Making wire bytes safe for terminals, JSON and spreadsheets.
//!
//! Bytes from port 25 are chosen by strangers: an ESC sequence in a banner must never reach a
//! terminal as a command, a bidi override must not reorder what an admin reads, and a HELO
//! name must not become a spreadsheet formula.

use std::fmt::Write as _;

/// Characters that change how text is laid out or rendered without being visible: Unicode's
/// whole Cf category (bidi embeddings/overrides/isolates, zero-width and other format
/// characters, as of Unicode 15), plus the fillers and joiner that render as nothing though
/// they are letters or marks (Hangul fillers, the combining grapheme joiner).
pub fn is_format_char(c: char) -> bool {
    matches!(c,
        '\u{00AD}' | '\u{0600}'..='\u{0605}' | '\u{061C}' | '\u{06DD}' | '\u{070F}' | '\u{0890}'..='\u{0891}'
        | '\u{08E2}' | '\u{180E}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}'
        | '\u{2060}'..='\u{2064}' | '\u{2066}'..='\u{206F}' | '\u{FEFF}' | '\u{FFF9}'..='\u{FFFB}'
        | '\u{110BD}' | '\u{110CD}' | '\u{13430}'..='\u{1343F}' | '\u{1BCA0}'..='\u{1BCA3}'
        | '\u{1D173}'..='\u{1D17A}' | '\u{E0001}' | '\u{E0020}'..='\u{E007F}'
        // Invisible though not Cf.
        | '\u{034F}' | '\u{115F}' | '\u{1160}' | '\u{3164}' | '\u{FFA0}')
}

/// Whether a character must be escaped before a terminal sees it.
pub fn is_unsafe_char(c: char) -> bool {
    c.is_control() || is_format_char(c) || c == '\u{2028}' || c == '\u{2029}'
}

/// A piece of bytes walked as UTF-8 (see [`utf8_runs`]).
pub(crate) enum Run<'a> {
    Text(&'a str),
    Bad(u8),
}

/// Walks `bytes` as UTF-8: valid text runs, and each invalid byte on its own.
pub(crate) fn utf8_runs(mut bytes: &[u8], mut f: impl FnMut(Run<'_>)) {
    loop {
        match std::str::from_utf8(bytes) {
            Ok(s) => {
                f(Run::Text(s));
                return;
            }
            Err(e) => {
                let (good, rest) = bytes.split_at(e.valid_up_to());
                if let Ok(s) = std::str::from_utf8(good) {
                    f(Run::Text(s));
                }
                let n = e.error_len().unwrap_or(rest.len()).max(1);
                for b in rest.iter().take(n) {
                    f(Run::Bad(*b));
                }
                bytes = rest.get(n..).unwrap_or(&[]);
                if bytes.is_empty() {
                    return;
                }
            }
        }
    }
}

/// The parts joined into one string, allocated once: for evidence texts built on every session,
/// where `format!` costs several times as much (its formatting machinery and a second
/// allocation for each number or name formatted apart).
pub fn concat(parts: &[&str]) -> String {
    let mut s = String::with_capacity(parts.iter().map(|p| p.len()).sum());
    for p in parts {
        s.push_str(p);
    }
    s
}

/// Text for a terminal: controls as `\xNN`, format/bidi characters as `\u{XXXX}`, invalid
/// UTF-8 as `\xNN`, backslash doubled so the escapes are unambiguous.
pub fn terminal(bytes: &[u8]) -> String {
    // Nearly every wire string is printable ASCII without a backslash: nothing to escape.
    if bytes.iter().all(|b| (b' '..=b'~').contains(b) && *b != b'\\') {
        return String::from_utf8(bytes.to_vec()).unwrap_or_default();
    }
    let mut out = String::with_capacity(bytes.len());
    utf8_runs(bytes, |run| match run {
        Run::Text(s) => {
            for c in s.chars() {
                if c == '\\' {
                    out.push_str("\\\\");
                } else if is_unsafe_char(c) {
                    if (c as u32) < 0x100 {
                        let _ = write!(out, "\\x{:02X}", c as u32);
                    } else {
                        let _ = write!(out, "\\u{{{:04X}}}", c as u32);
                    }
                } else {
                    out.push(c);
                }
            }
        }
        Run::Bad(b) => {
            let _ = write!(out, "\\x{b:02X}");
        }
    });
    out
}

/// Text that is already escaped wire text (evidence, findings) or made by smtpscope
/// (certificate names in RFC 4514, whose backslashes are its own escapes): only characters a
/// terminal would act on are escaped; backslashes stay as they are.
pub fn defuse(s: &str) -> String {
    if !s.chars().any(is_unsafe_char) {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if !is_unsafe_char(c) {
            out.push(c);
        } else if (c as u32) < 0x100 {
            let _ = write!(out, "\\x{:02X}", c as u32);
        } else {
            let _ = write!(out, "\\u{{{:04X}}}", c as u32);
        }
    }
    out
}

/// Text for JSON: valid UTF-8 as is (the JSON writer escapes what must be), invalid bytes as
/// the text `\xNN`.
pub fn json_text(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    utf8_runs(bytes, |run| match run {
        Run::Text(s) => out.push_str(s),
        Run::Bad(b) => {
            let _ = write!(out, "\\x{b:02X}");
        }
    });
    out
}

/// A CSV cell that a spreadsheet will not evaluate: a leading `= + - @`, TAB or CR gets a `'`.
pub fn csv_cell(s: &str) -> String {
    match s.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => format!("'{s}"),
        _ => s.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_sequences_never_reach_the_terminal() {
        assert_eq!(terminal(b"220 \x1b[2Jevil"), "220 \\x1B[2Jevil");
        assert_eq!(terminal("a\u{202E}b".as_bytes()), "a\\u{202E}b");
        assert_eq!(terminal(b"bad\xffbyte"), "bad\\xFFbyte");
        assert_eq!(terminal("c1\u{9b}x".as_bytes()), "c1\\x9Bx");
        assert_eq!(terminal(b"back\\slash"), "back\\\\slash");
    }

    #[test]
    fn invisible_characters_outside_the_bidi_block_are_escaped_too() {
        assert_eq!(terminal("a\u{1D173}b".as_bytes()), "a\\u{1D173}b");
        assert_eq!(terminal("mx\u{3164}.example".as_bytes()), "mx\\u{3164}.example");
        assert_eq!(terminal("\u{0600}1".as_bytes()), "\\u{0600}1");
    }

    #[test]
    fn defused_text_keeps_its_backslashes_but_not_its_controls() {
        assert_eq!(defuse("CN=a\\,b"), "CN=a\\,b");
        assert_eq!(defuse("greeting 220 mx\\x1B[2J"), "greeting 220 mx\\x1B[2J");
        assert_eq!(defuse("raw\u{1b}[2J\u{202e}"), "raw\\x1B[2J\\u{202E}");
    }

    #[test]
    fn printable_ascii_passes_through_unchanged() {
        assert_eq!(terminal(b"250-mx.example.org Hello [10.0.0.1]"), "250-mx.example.org Hello [10.0.0.1]");
        assert_eq!(terminal(b"tab\there"), "tab\\x09here");
        assert_eq!(terminal(b"del\x7f"), "del\\x7F");
    }

    #[test]
    fn json_text_marks_invalid_bytes() {
        assert_eq!(json_text(b"ok\xc3"), "ok\\xC3");
        assert_eq!(json_text("é".as_bytes()), "é");
    }

    #[test]
    fn csv_formulas_are_defused() {
        assert_eq!(csv_cell("=cmd|' /C calc'!A0"), "'=cmd|' /C calc'!A0");
        assert_eq!(csv_cell("-1"), "'-1");
        assert_eq!(csv_cell("mx.example"), "mx.example");
    }
}
