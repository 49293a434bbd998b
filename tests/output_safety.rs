//! Wire strings chosen by strangers never act on the user's terminal or spreadsheet: ESC
//! sequences, C0/C1 controls, bidi overrides and invalid UTF-8 in banners and HELO names come out
//! escaped in the table, JSON and CSV; so do envelope addresses and the transcript lines quoted
//! in the evidence. CSV cells never start with a formula lead.

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
            Options { color: true, show_addresses: false, line_buffered: true, truncate: true },
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

#[test]
fn check_text_shows_escaped_evidence_once_and_defuses_raw_controls() {
    use smtpscope::check::{policy, Checker, Policy};
    let mut s = session();
    // Evidence holds wire text escaped once already (`\x1B` as four characters), and a stray raw ESC.
    s.evidence.insert(
        0,
        smtpscope::session::Evidence {
            text: "banner mx\\x1B[2J \u{1b}[31m".into(),
            frame: Some(1),
            side: None,
            file: None,
        },
    );
    let rule = policy::Rule {
        name: "all".into(),
        hosts: policy::Hosts::All,
        ports: Vec::new(),
        default: true,
        expect: policy::Expect::Tls { min_version: None, cert_valid: false, cert_name: false },
    };
    let mut c = Checker::new(Policy { rules: vec![rule] }, Default::default(), Default::default());
    c.add(&s);
    let out = c.text(Default::default());
    assert!(out.contains("banner mx\\x1B[2J"), "escaped once, not doubled: {out}");
    assert!(!out.contains("\\\\x1B"), "{out}");
    assert_no_raw_controls(&out, 0);
}

fn render_session(s: &smtpscope::session::Session, format: Format, show_addresses: bool) -> String {
    let mut buf = Vec::new();
    {
        let mut w = report::writer(
            format,
            Box::new(&mut buf),
            Options { color: false, show_addresses, line_buffered: false, truncate: true },
        );
        w.write(s).unwrap();
        w.finish().unwrap();
    }
    String::from_utf8(buf).expect("output is valid UTF-8")
}

/// Addresses with ESC, DEL, BEL, C1, zero-width and bidi isolate characters and an invalid byte.
fn hostile_envelope() -> smtpscope::session::Session {
    let d = Dialogue::new(40000, 25)
        .s(b"220 mx\x07\x7f ESMTP\r\n".as_slice())
        .c("EHLO client.example\r\n")
        .s("250 mx\r\n")
        .c(b"MAIL FROM:<\x1b[5m=x@evil\x7f.example\xe2\x80\x8b>\r\n".as_slice())
        .s("250 ok\r\n")
        .c(b"RCPT TO:<@\xc2\x9b\xe2\x81\xa6x\xfe@d.example>\r\n".as_slice())
        .s("250 ok\r\n")
        .c("QUIT\r\n")
        .s("221 bye\r\n")
        .close();
    d.run().remove(0)
}

#[test]
fn json_escapes_addresses_and_transcript_lines() {
    let j = render_session(&hostile_envelope(), Format::Json, true);
    assert_no_raw_controls(&j, 0);
    assert!(!j.contains('\u{7f}') && !j.contains('\u{200b}') && !j.contains('\u{2066}'), "{j}");
    for esc in ["\\u001b[5m", "\\u007f", "\\u200b", "\\u009b", "\\u2066", "\\\\xFE", "\\u0007"] {
        assert!(j.contains(esc), "{esc} missing in {j}");
    }
    let v: serde_json::Value = serde_json::from_str(j.trim()).unwrap();
    assert!(v["mail_from"][0].as_str().unwrap().starts_with("\u{1b}[5m=x@"), "{}", v["mail_from"]);
    // The transcript (evidence) quotes the banner escaped for a terminal.
    let evidence = v["evidence"].to_string();
    assert!(evidence.contains("mx\\\\x07\\\\x7F ESMTP"), "{evidence}");
}

#[test]
fn csv_escapes_addresses_and_defuses_them() {
    let c = render_session(&hostile_envelope(), Format::Csv, true);
    assert_no_raw_controls(&c, 0);
    assert!(!c.contains('\u{7f}') && !c.contains('\u{200b}') && !c.contains('\u{2066}'), "{c}");
    assert!(c.contains("\\x1B[5m=x@evil\\x7F.example\\u{200B}"), "{c}");
    // The invalid byte is written as in the table: `\xFE`, once.
    assert!(c.contains(",'@\\x9B\\u{2066}x\\xFE@d.example"), "{c}");
}

#[test]
fn every_formula_lead_in_a_csv_cell_is_defused() {
    for lead in ["=", "+", "-", "@", "\t", "\r"] {
        let d = Dialogue::new(40000, 25)
            .s("220 mx ESMTP\r\n")
            .c("EHLO client.example\r\n")
            .s("250 mx\r\n")
            .c(format!("MAIL FROM:<{lead}SUM(1)@x.example>\r\n"))
            .s("250 ok\r\n")
            .close();
        let c = render_session(&d.run()[0], Format::Csv, true);
        let mut r = csv::Reader::from_reader(c.as_bytes());
        let head = r.headers().unwrap().clone();
        let row = r.records().next().unwrap().unwrap();
        let cell = &row[head.iter().position(|h| h == "mail_from").unwrap()];
        // TAB and CR never reach a cell raw: they are escaped as text first.
        let safe = cell.starts_with('\'') || cell.starts_with("\\x09") || cell.starts_with("\\x0D");
        assert!(safe, "{lead:?}: {cell:?}");
        assert!(cell.ends_with("SUM(1)@x.example"), "{cell:?}");
    }
}
