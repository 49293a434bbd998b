//! Verdict edges that slipped through before (issue 13, item 14): the Cisco mask in lower case,
//! a reply offering both STARTTLS and the mask, and a 2xx other than 220 to STARTTLS.

mod common;

use common::{client_hello, opening, server_hello, Dialogue};

fn quit(d: Dialogue) -> Dialogue {
    d.c("MAIL FROM:<alice@contoso.com>\r\n").s("250 ok\r\n").c("QUIT\r\n").s("221 bye\r\n").close()
}

#[test]
fn a_lower_case_mask_is_stripped() {
    let r = quit(opening(Dialogue::new(40000, 25), &["PIPELINING", "xxxxxxxa", "8BITMIME"])).record();
    assert_eq!(r["verdict"], "stripped");
    assert_eq!(r["starttls_offered"], false);
    assert!(r["findings"].to_string().contains("starttls-stripped"), "{}", r["findings"]);
}

#[test]
fn a_reply_offering_both_starttls_and_the_mask_is_not_stripped() {
    let r = quit(opening(Dialogue::new(40000, 25), &["XXXXXXXA", "STARTTLS"])).record();
    assert_eq!(r["verdict"], "starttls-offered-unused");
    assert_eq!(r["starttls_offered"], true);
    assert_eq!(r["upgrade_verb"], serde_json::Value::Null);
    assert!(!r["findings"].to_string().contains("starttls-stripped"), "{}", r["findings"]);
}

#[test]
fn a_2xx_other_than_220_to_starttls_is_not_a_go_ahead() {
    for code in ["250", "221", "200"] {
        let d =
            opening(Dialogue::new(40000, 25), &["STARTTLS"]).c("STARTTLS\r\n").s(format!("{code} 2.0.0 whatever\r\n"));
        let r = quit(d).record();
        assert_eq!(r["verdict"], "starttls-refused", "{code}");
        assert_eq!(r["starttls_reply"], code.parse::<u16>().unwrap(), "{code}");
        assert_eq!(r["mail_transactions"], 1, "{code}");
        let ev = r["evidence"].to_string();
        assert!(!ev.contains("after the 220"), "{code}: {ev}");
    }
}

#[test]
fn a_2xx_other_than_220_followed_by_a_handshake_is_still_not_a_go_ahead_reply() {
    let d = opening(Dialogue::new(40000, 25), &["STARTTLS"])
        .c("STARTTLS\r\n")
        .s("250 2.0.0 go on\r\n")
        .c(client_hello("mx.example.org"))
        .s(server_hello(true))
        .close();
    let r = d.record();
    assert_eq!(r["starttls_reply"], 250);
    assert_ne!(r["verdict"], "starttls", "{r}");
}
