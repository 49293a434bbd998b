//! Server reply lines.

/// One reply line: code (if it has one), whether more lines follow, and the text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplyLine<'a> {
    /// Three-digit code 200–599, None for a line without one.
    pub code: Option<u16>,
    /// `-` after the code: the reply continues.
    pub more: bool,
    /// Text after the code and separator.
    pub text: &'a [u8],
}

/// The code of a line that starts like an SMTP reply: `[2-5]dd` then space, dash or end.
pub fn code_of(line: &[u8]) -> Option<u16> {
    let &[a, b, c] = line.first_chunk::<3>()?;
    if !(b'2'..=b'5').contains(&a) || !b.is_ascii_digit() || !c.is_ascii_digit() {
        return None;
    }
    match line.get(3) {
        None | Some(b' ') | Some(b'-') | Some(b'\r') | Some(b'\t') => {}
        _ => return None,
    }
    Some(u16::from(a - b'0') * 100 + u16::from(b - b'0') * 10 + u16::from(c - b'0'))
}

/// Parses one line (without its line ending).
pub fn parse(line: &[u8]) -> ReplyLine<'_> {
    match code_of(line) {
        Some(code) => {
            ReplyLine { code: Some(code), more: line.get(3) == Some(&b'-'), text: line.get(4..).unwrap_or(&[]) }
        }
        None => ReplyLine { code: None, more: false, text: line },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multiline_reply_lines_continue_with_a_dash() {
        let l = parse(b"250-STARTTLS");
        assert_eq!((l.code, l.more, l.text), (Some(250), true, &b"STARTTLS"[..]));
        let l = parse(b"250 OK");
        assert_eq!((l.code, l.more), (Some(250), false));
    }

    #[test]
    fn a_bare_code_is_a_reply() {
        assert_eq!(parse(b"220").code, Some(220));
    }

    #[test]
    fn lines_without_a_code_are_malformed() {
        assert_eq!(parse(b"4.7.0 [IPTS04] deferred").code, None);
        assert_eq!(parse(b"HTTP/1.1 101").code, None);
        assert_eq!(code_of(b"2500 x"), None);
        assert_eq!(code_of(b"650 x"), None);
    }
}
