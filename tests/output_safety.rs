//! Wire strings chosen by strangers never act on the user's terminal or spreadsheet: ESC
//! sequences, C0/C1 controls, bidi overrides and invalid UTF-8 in banners and HELO names come out
//! escaped in the table, JSON and CSV.

mod common;

use common::Dialogue;
use smtpscope::report::{self, Format, Options};

const HOSTILE_HELO: &[u8] = b"=cmd|'/C calc'!A0\x1b[31mred\x1b]0;title\x07\xc2\x9b\xe2\x80\xaeevil\xff";

fn session() -> smtpscope::session::Session {
    let d = Dialogue::new(40000, 25)
        .s(b"220 mx\x1b[2J\x1b[H.example ESMTP \xe2\x80\xae\r\n".as_slice())
        .c([b"EHLO ".as_slice(), HOSTILE_HELO, b"\r\n"].concat())
        .s("250 mx\r\n")
        .c("QUIT\r\n")
        .s("221 bye\r\n")
        .close();
    d.run().remove(0)
}

fn render(format: Format) -> String {
    let mut buf = Vec::new();
    {
        let mut w = report::writer(
            format,
            Box::new(&mut buf),
            Options { color: true, show_addresses: false, line_buffered: true },
        );
        w.write(&session()).unwrap();
        w.finish().unwrap();
    }
    String::from_utf8(buf).expect("output is valid UTF-8")
}

fn assert_no_raw_controls(s: &str, allowed_esc: usize) {
    let esc = s.matches('\u{1b}').count();
    assert_eq!(esc, allowed_esc, "raw ESC in output: {s:?}");
    assert!(!s.chars().any(|c| ('\u{80}'..='\u{9f}').contains(&c) || c == '\u{202e}' || c == '\u{7}'), "{s:?}");
}

#[test]
fn the_table_shows_hostile_helo_names_escaped() {
    let t = render(Format::Table);
    // Only the table's own colour codes (one on, one off) may be ESC.
    assert_no_raw_controls(&t, 2);
    assert!(t.contains("!A0\\x"), "the HELO is shown with its ESC escaped: {t}");
}

#[test]
fn json_escapes_controls_bidi_and_invalid_bytes() {
    let j = render(Format::Json);
    assert_no_raw_controls(&j, 0);
    assert!(j.contains("\\u001b[31m"), "{j}");
    assert!(j.contains("\\u009b"));
    assert!(j.contains("\\u202e"));
    assert!(j.contains("\\\\xFF"), "invalid byte written as the text \\xFF: {j}");
    let v: serde_json::Value = serde_json::from_str(j.trim()).unwrap();
    assert!(v["banner"].as_str().unwrap().contains('\u{1b}'), "escaped, not dropped");
}

#[test]
fn csv_defuses_formulas_and_escapes_controls() {
    let c = render(Format::Csv);
    assert_no_raw_controls(&c, 0);
    let row = c.lines().nth(1).unwrap();
    assert!(row.contains(",'=cmd|"), "{row}");
    assert!(row.contains("\\x1B[31m") && row.contains("\\u{202E}"), "{row}");
}
