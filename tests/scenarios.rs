//! Protocol scenarios the public captures don't cover, scripted as real TCP/IP packets and run
//! through the whole engine: Exchange's X-ANONYMOUSTLS, a Cisco strip, refusals, failed
//! upgrades, injection, pipelining, hostile bytes, 4-tuple reuse.

mod common;

use common::{client_hello, fatal_alert, opening, server_hello, tls_record, Dialogue};
use serde_json::Value;

const MAIL: &str = "MAIL FROM:<alice@contoso.com>\r\nRCPT TO:<bob@fabrikam.com>\r\nDATA\r\n";
const BODY: &str = "Subject: hi\r\n\r\n..a stuffed dot\r\nbye\r\n.\r\n";

fn finding_names(r: &Value) -> Vec<String> {
    r["findings"].as_array().unwrap().iter().map(|f| f["name"].as_str().unwrap().to_string()).collect()
}

fn plain_mail(d: Dialogue) -> Dialogue {
    d.c("MAIL FROM:<alice@contoso.com>\r\n")
        .s("250 2.1.0 ok\r\n")
        .c("RCPT TO:<bob@fabrikam.com>\r\n")
        .s("250 2.1.5 ok\r\n")
        .c("DATA\r\n")
        .s("354 go ahead\r\n")
        .c(BODY)
        .s("250 2.6.0 queued\r\n")
        .c("QUIT\r\n")
        .s("221 2.0.0 bye\r\n")
        .close()
}

#[test]
fn exchange_x_anonymoustls_with_220_2_0_0_is_starttls() {
    let d = opening(
        Dialogue::new(40000, 25),
        &["PIPELINING", "STARTTLS", "X-ANONYMOUSTLS", "AUTH NTLM", "X-EXPS GSSAPI NTLM", "XEXCH50"],
    )
    .c("X-ANONYMOUSTLS\r\n")
    .s("220 2.0.0 SMTP server ready\r\n")
    .c(client_hello("hub2.contoso.com"))
    .s(server_hello(false))
    .c(tls_record(23, &[0u8; 64]))
    .close();
    let r = d.record();
    assert_eq!(r["verdict"], "starttls");
    assert_eq!(r["upgrade_verb"], "X-ANONYMOUSTLS");
    assert_eq!(r["starttls_reply"], 220);
    assert_eq!(r["starttls_offered"], true);
    assert_eq!(r["tls_version"], "TLS1.2");
    assert_eq!(r["sni"], "hub2.contoso.com");
    assert_eq!(r["mail_transactions"], Value::Null);
}

#[test]
fn suppressed_x_anonymoustls_with_x_exps_in_clear_is_plaintext() {
    let d = opening(Dialogue::new(40000, 25), &["PIPELINING", "X-EXPS GSSAPI NTLM", "XEXCH50"])
        .c("X-EXPS GSSAPI TlRMTVNTUAABAAAAB4IIog==\r\n")
        .s("235 2.7.0 ok\r\n");
    let r = plain_mail(d).record();
    assert_eq!(r["verdict"], "plaintext");
    assert_eq!(r["starttls_offered"], false);
    assert_eq!(r["messages_accepted"], 1);
}

#[test]
fn cisco_mask_xxxxxxxa_is_stripped_with_a_finding() {
    let d = opening(Dialogue::new(40000, 25), &["PIPELINING", "XXXXXXXA", "8BITMIME"])
        .c("STARTTLS\r\n")
        .s("500 5.5.1 Command unrecognized\r\n");
    let r = plain_mail(d).record();
    assert_eq!(r["verdict"], "stripped");
    assert_eq!(r["starttls_offered"], false);
    assert_eq!(r["starttls_reply"], 500);
    assert!(finding_names(&r).contains(&"starttls-stripped".to_string()));
}

#[test]
fn other_masked_extensions_are_only_a_finding() {
    let r = plain_mail(opening(Dialogue::new(40000, 25), &["XXXA", "8BITMIME"])).record();
    assert_eq!(r["verdict"], "plaintext");
    assert_eq!(finding_names(&r), ["ehlo-masked"]);
}

#[test]
fn an_upgrade_offer_behind_a_hundred_filler_extensions_still_counts() {
    let filler: Vec<String> = (0..100).map(|i| format!("X-FILLER{i}")).collect();
    let with = |last: &'static str| {
        let mut exts: Vec<&str> = filler.iter().map(String::as_str).collect();
        exts.push(last);
        opening(Dialogue::new(40000, 25), &exts)
    };
    let offered = plain_mail(with("STARTTLS")).record();
    assert_eq!(offered["verdict"], "starttls-offered-unused");
    assert_eq!(offered["starttls_offered"], true);
    let masked = plain_mail(with("XXXXXXXA").c("STARTTLS\r\n").s("500 5.5.1 unrecognized\r\n")).record();
    assert_eq!(masked["verdict"], "stripped");
    assert!(finding_names(&masked).contains(&"starttls-stripped".to_string()));
}

#[test]
fn a_454_is_refused_and_the_mail_after_it_counts() {
    let d = opening(Dialogue::new(40000, 25), &["STARTTLS"]).c("STARTTLS\r\n").s("454 4.7.0 TLS not available\r\n");
    let r = plain_mail(d).record();
    assert_eq!(r["verdict"], "starttls-refused");
    assert_eq!(r["starttls_reply"], 454);
    assert_eq!(r["mail_transactions"], 1);
    assert_eq!(r["clean_close"], true);
}

#[test]
fn cleartext_after_220_is_starttls_failed_and_counts_mail() {
    let d = opening(Dialogue::new(40000, 25), &["STARTTLS"])
        .c("STARTTLS\r\n")
        .s("220 2.0.0 Ready to start TLS\r\n")
        .c("EHLO client.example.org\r\n")
        .s("250 mx\r\n");
    let r = plain_mail(d).record();
    assert_eq!(r["verdict"], "starttls-failed");
    assert_eq!(r["mail_transactions"], 1);
    assert!(r["evidence"].to_string().contains("went on in cleartext"));
}

#[test]
fn a_fatal_alert_after_220_is_starttls_failed_with_the_alert() {
    let d = opening(Dialogue::new(40000, 25), &["STARTTLS"])
        .c("STARTTLS\r\n")
        .s("220 Ready\r\n")
        .c(client_hello("mx.example.org"))
        .s(fatal_alert(40))
        .close();
    let r = d.record();
    assert_eq!(r["verdict"], "starttls-failed");
    assert_eq!(r["tls_handshake"], false);
    assert_eq!(r["tls_alert"]["name"], "handshake_failure");
    assert_eq!(r["tls_alert"]["from"], "server");
    assert_eq!(r["mail_transactions"], 0);
}

#[test]
fn tls13_hides_the_certificate_and_says_so() {
    let d = opening(Dialogue::new(40000, 25), &["STARTTLS"])
        .c("STARTTLS\r\n")
        .s("220 go\r\n")
        .c(client_hello("mx.example.org"))
        .s(server_hello(true))
        .close();
    let r = d.record();
    assert_eq!(r["verdict"], "starttls");
    assert_eq!(r["tls_version"], "TLS1.3");
    assert_eq!(r["cert"], Value::Null);
    assert!(finding_names(&r).contains(&"cert-not-visible-tls13".to_string()));
}

#[test]
fn commands_after_starttls_in_one_segment_are_an_injection() {
    let d = opening(Dialogue::new(40000, 25), &["STARTTLS"])
        .c("STARTTLS\r\nMAIL FROM:<x@evil.example>\r\n")
        .s("220 go\r\n")
        .c(client_hello("mx.example.org"))
        .s(server_hello(false))
        .close();
    let r = d.record();
    assert!(finding_names(&r).contains(&"starttls-injection".to_string()), "{}", r["findings"]);
    // The injected command is not the client going on in clear: the handshake that follows counts.
    assert_eq!(r["verdict"], "starttls", "{}", r["evidence"]);
    assert_eq!(r["tls_handshake"], true);
    assert_eq!(r["mail_transactions"], Value::Null);
}

#[test]
fn cleartext_after_the_upgrade_verb_in_a_later_segment_is_an_injection_too() {
    let d = opening(Dialogue::new(40000, 25), &["STARTTLS"])
        .c("STARTTLS\r\n")
        .c("NOOP\r\n")
        .s("220 go\r\n")
        .c(client_hello("mx.example.org"))
        .s(server_hello(true))
        .close();
    let r = d.record();
    assert_eq!(r["verdict"], "starttls", "{}", r["evidence"]);
    assert!(finding_names(&r).contains(&"starttls-injection".to_string()), "{}", r["findings"]);
}

#[test]
fn server_bytes_after_220_before_the_hello_are_a_response_injection() {
    let d = opening(Dialogue::new(40000, 25), &["STARTTLS"]).c("STARTTLS\r\n").s("220 go\r\n250 injected\r\n").close();
    let r = d.record();
    assert_eq!(r["verdict"], "starttls-failed");
    assert!(finding_names(&r).contains(&"response-injection".to_string()));
}

#[test]
fn pipelined_transaction_with_dot_stuffing_is_accepted_once() {
    let d = opening(Dialogue::new(40000, 587), &["PIPELINING", "SIZE 1000"])
        .c(MAIL)
        .s("250 ok\r\n250 ok\r\n354 go\r\n")
        .c(format!("{BODY}QUIT\r\n"))
        .s("250 queued\r\n221 bye\r\n")
        .close();
    let r = d.record();
    assert_eq!(r["verdict"], "plaintext");
    assert_eq!(
        (r["mail_transactions"].as_u64(), r["messages_accepted"].as_u64(), r["rcpt_count"].as_u64()),
        (Some(1), Some(1), Some(1))
    );
    assert_eq!(r["clean_close"], true);
    assert_eq!(r["mail_from"], serde_json::json!(["contoso.com"]));
}

#[test]
fn auth_plain_in_clear_is_a_finding_and_the_secret_never_appears() {
    let secret = "AGFsaWNlAHMzY3IzdA==";
    let d =
        opening(Dialogue::new(40000, 587), &["AUTH PLAIN LOGIN"]).c(format!("AUTH PLAIN {secret}\r\n")).s("235 ok\r\n");
    let r = plain_mail(d).record();
    assert!(finding_names(&r).contains(&"cleartext-auth".to_string()));
    assert_eq!(r["auth_mechanisms"], serde_json::json!(["PLAIN"]));
    assert!(!r.to_string().contains(secret));
}

#[test]
fn auth_login_continuation_lines_are_not_commands() {
    let d = opening(Dialogue::new(40000, 587), &["AUTH LOGIN"])
        .c("AUTH LOGIN\r\n")
        .s("334 VXNlcm5hbWU6\r\n")
        .c("TUFJTCBGUk9NOg==\r\n")
        .s("334 UGFzc3dvcmQ6\r\n")
        .c("c2VjcmV0\r\n")
        .s("235 ok\r\n");
    let r = plain_mail(d).record();
    assert_eq!(r["mail_transactions"], 1);
    assert!(!r.to_string().contains("c2VjcmV0"));
}

#[test]
fn every_segmentation_yields_the_same_record() {
    let d = opening(Dialogue::new(40000, 25), &["PIPELINING", "STARTTLS", "CHUNKING"])
        .c("MAIL FROM:<a@b.example>\r\nRCPT TO:<c@d.example>\r\nBDAT 12 LAST\r\nhello world!QUIT\r\n")
        .s("250 ok\r\n250 ok\r\n250 queued\r\n221 bye\r\n")
        .close();
    let strip = |mut v: Value| {
        // Frame numbers and packet counts change with segmentation; the facts must not.
        for k in ["evidence", "findings", "packets", "last_seen", "tcp_anomalies"] {
            v[k] = Value::Null;
        }
        v
    };
    let whole = strip(smtpscope::report::json::record(&d.run()[0], Default::default()));
    assert_eq!(whole["messages_accepted"], 1);
    for mss in 1..40 {
        let s = d.run_mss(mss);
        assert_eq!(s.len(), 1);
        assert_eq!(strip(smtpscope::report::json::record(&s[0], Default::default())), whole, "mss {mss}");
    }
}

#[test]
fn a_new_syn_on_the_same_four_tuple_is_a_new_session() {
    let a = plain_mail(opening(Dialogue::new(40000, 25), &[]));
    let b = plain_mail(opening(Dialogue::new(40000, 25).with_isn(777_777, 888_888), &["STARTTLS"]));
    let mut pkts = a.packets(1460);
    pkts.extend(b.packets(1460).into_iter().map(|(t, p)| (t + 10_000_000, p)));
    let s = common::run_packets(&pkts);
    let v: Vec<_> = s.iter().map(|s| s.verdict.unwrap().name()).collect();
    assert_eq!(v, ["plaintext", "starttls-offered-unused"]);
}

#[test]
fn a_timestamp_jump_of_decades_does_not_split_a_session() {
    let d = plain_mail(opening(Dialogue::new(40000, 25), &["STARTTLS"]).jump(30 * 365 * 86_400));
    assert_eq!(d.run().len(), 1);
}

#[test]
fn late_packets_after_a_close_do_not_make_a_phantom_session() {
    let d = plain_mail(opening(Dialogue::new(40000, 25), &[]));
    let mut pkts = d.packets(1460);
    let late = pkts[pkts.len() - 4].clone();
    pkts.push((late.0 + 5_000_000, late.1));
    assert_eq!(common::run_packets(&pkts).len(), 1);
}

#[test]
fn mid_stream_start_without_a_hello_is_incomplete() {
    let d = Dialogue::mid_stream(40000, 25).c("MAIL FROM:<a@b>\r\n").s("250 ok\r\n").c("QUIT\r\n").s("221 bye\r\n");
    let r = d.record();
    assert_eq!(r["verdict"], "incomplete");
    assert_eq!(r["server"], "10.9.0.2:25");
}

#[test]
fn smtp_is_found_by_content_on_any_port() {
    let r = plain_mail(opening(Dialogue::new(40000, 8025), &["STARTTLS"])).record();
    assert_eq!(r["verdict"], "starttls-offered-unused");
}

#[test]
fn client_hello_first_on_a_non_mail_port_is_not_reported() {
    let d = Dialogue::new(40000, 443).c(client_hello("www.example.org")).s(server_hello(false)).close();
    assert!(d.run().is_empty());
}

#[test]
fn client_hello_first_on_465_is_implicit_tls() {
    let d = Dialogue::new(40000, 465).c(client_hello("mail.example.org")).s(server_hello(false)).close();
    let r = d.record();
    assert_eq!(r["verdict"], "implicit-tls");
    assert_eq!(r["helo"], Value::Null);
    assert_eq!(r["mail_transactions"], Value::Null);
}

#[test]
fn garbage_on_port_25_is_not_smtp() {
    let d = Dialogue::new(40000, 25).c([0u8, 1, 2, 3, 0xff, 0xfe, b'\n']).s([9u8, 9, 9, b'\n']).close();
    assert_eq!(d.record()["verdict"], "not-smtp");
}

#[test]
fn an_absurd_line_is_truncated_and_counted_not_stored() {
    let long = vec![b'A'; 10 * 1024 * 1024];
    let d = opening(Dialogue::new(40000, 25), &["STARTTLS"])
        .c(&long)
        .c("\r\nQUIT\r\n")
        .s("500 too long\r\n221 bye\r\n")
        .close();
    let s = d.run();
    assert_eq!(s.len(), 1);
    assert_eq!(s[0].anomalies.long_lines, 1);
    assert_eq!(s[0].quit.map(|q| q.1), Some(Some(Some(221))));
}

#[test]
fn a_line_that_never_ends_is_counted_when_the_session_does() {
    let d = opening(Dialogue::new(40000, 25), &["STARTTLS"]).c(vec![b'A'; 1024 * 1024]).close();
    let s = d.run();
    assert_eq!(s.len(), 1);
    assert_eq!(s[0].anomalies.long_lines, 1);
}

#[test]
fn a_greeting_padded_beyond_the_probes_patience_is_still_smtp() {
    let d = Dialogue::new(40000, 25)
        .s(format!("220 {}\r\n", "B".repeat(9000)))
        .c("EHLO client.example.org\r\n")
        .s("250 mx.example.org\r\n")
        .c("QUIT\r\n")
        .s("221 bye\r\n")
        .close();
    let s = d.run();
    assert_eq!(s.len(), 1);
    assert_eq!(s[0].verdict.map(|v| v.name()), Some("plaintext"));
    assert_eq!(s[0].anomalies.long_lines, 1, "the greeting is truncated and counted");
}

#[test]
fn socks5_preamble_before_smtp_is_a_tunnel() {
    let d = Dialogue::new(40000, 1080)
        .c([5u8, 1, 0])
        .s([5u8, 0])
        .c([5u8, 1, 0, 1, 10, 0, 0, 2, 0, 25])
        .s([5u8, 0, 0, 1, 0, 0, 0, 0, 0, 0]);
    let r = plain_mail(opening(d, &["STARTTLS"])).record();
    assert_eq!(r["tunnel"], "socks5");
    assert_eq!(r["verdict"], "starttls-offered-unused");
    assert_eq!(r["helo"], "client.example.org");
}

#[test]
fn a_reset_ends_the_session_with_what_was_seen() {
    let d = opening(Dialogue::new(40000, 25), &["STARTTLS"]).c("MAIL FROM:<a@b.example>\r\n").s("250 ok\r\n").rst();
    let r = d.record();
    assert_eq!(r["verdict"], "starttls-offered-unused");
    assert_eq!(r["clean_close"], false);
}

#[test]
fn a_hello_retry_request_is_not_the_server_hello() {
    // ServerHello whose random is SHA-256("HelloRetryRequest").
    let mut hrr = common::server_hello(true);
    let random: [u8; 32] = [
        0xcf, 0x21, 0xad, 0x74, 0xe5, 0x9a, 0x61, 0x11, 0xbe, 0x1d, 0x8c, 0x02, 0x1e, 0x65, 0xb8, 0x91, 0xc2, 0xa2,
        0x11, 0x16, 0x7a, 0xbb, 0x8c, 0x5e, 0x07, 0x9e, 0x09, 0xe2, 0xc8, 0xa8, 0x33, 0x9c,
    ];
    hrr[11..43].copy_from_slice(&random);
    let d = opening(Dialogue::new(40000, 25), &["STARTTLS"])
        .c("STARTTLS\r\n")
        .s("220 go\r\n")
        .c(client_hello("mx.example.org"))
        .s(&hrr)
        .close();
    let r = d.record();
    assert_eq!(r["tls_handshake"], false);
    assert_eq!(r["verdict"], "starttls-failed");
    assert!(r["evidence"].to_string().contains("HelloRetryRequest"));
}

#[test]
fn a_syn_flood_is_counted_not_printed_and_the_real_session_survives() {
    let real = plain_mail(opening(Dialogue::new(40000, 25), &["STARTTLS"])).packets(1460);
    // More SYN-only flows between two steps of the real session than the table holds: under
    // plain LRU the real session would be evicted, and its next packets would open phantoms.
    let mut pkts = Vec::new();
    let mut ts = 1_700_000_000_000_000i64;
    let mut real_iter = real.iter();
    for i in 0..10_000u32 {
        let b = etherparse::PacketBuilder::ipv4([10, 66, (i >> 8) as u8, i as u8], [10, 9, 0, 2], 64)
            .tcp(1024 + (i % 60000) as u16, 25, i, 1024)
            .syn();
        let mut v = Vec::new();
        b.write(&mut v, &[]).unwrap();
        ts += 10;
        pkts.push((ts, v));
        if i % 2500 == 0 {
            for (_, p) in real_iter.by_ref().take(5) {
                ts += 10;
                pkts.push((ts, p.clone()));
            }
        }
    }
    for (_, p) in real_iter {
        ts += 10;
        pkts.push((ts, p.clone()));
    }
    let mut cfg = smtpscope::engine::Config::default();
    cfg.limits.max_flows = 1000;
    let (out, engine) = common::run_packets_with(cfg, &pkts);
    let v: Vec<_> = out.iter().map(|s| s.verdict.unwrap().name()).collect();
    assert_eq!(v, ["starttls-offered-unused"]);
    assert_eq!(engine.stats.payloadless_mail_flows, 10_000);
    assert!(engine.table_stats().evicted >= 9000);
    assert!(engine.table_stats().peak_flows <= 1000);
}

#[test]
fn thousands_of_commands_pipelined_behind_the_ehlo_keep_its_reply_matched() {
    let n = 10_000;
    let d = Dialogue::new(40000, 25)
        .s("220 mx.example.org ESMTP\r\n")
        .c(format!("EHLO client.example.org\r\n{}", "NOOP\r\n".repeat(n)))
        .s(format!("250-mx.example.org\r\n250-PIPELINING\r\n250 STARTTLS\r\n{}", "250 ok\r\n".repeat(n)))
        .c("MAIL FROM:<a@b.example>\r\n")
        .s("250 ok\r\n")
        .close();
    let s = d.run();
    assert_eq!(s.len(), 1);
    assert_eq!(s[0].verdict.map(|v| v.name()), Some("starttls-offered-unused"));
    assert_eq!(s[0].mail_transactions, 1);
    assert_eq!(s[0].anomalies.pipeline_overflow, 0, "repeats of one command take one slot");
}

#[test]
fn thousands_of_pipelined_recipients_then_data_are_one_accepted_message() {
    let n = 5_000;
    let d = opening(Dialogue::new(40000, 25), &["PIPELINING"])
        .c(format!("MAIL FROM:<a@b.example>\r\n{}DATA\r\n", "RCPT TO:<r@c.example>\r\n".repeat(n)))
        .s(format!("250 ok\r\n{}354 go\r\n", "250 ok\r\n".repeat(n)))
        .c(BODY)
        .s("250 queued\r\n")
        .c("QUIT\r\n")
        .s("221 bye\r\n")
        .close();
    let r = d.record();
    assert_eq!(r["verdict"], "plaintext");
    assert_eq!(r["messages_accepted"], 1);
    assert_eq!(r["rcpt_count"], n);
    assert_eq!(r["clean_close"], true);
}

#[test]
fn a_pipeline_beyond_the_bound_forgets_its_newest_commands_not_the_oldest() {
    // Alternating commands cannot share a slot: 10 000 transactions exceed the bound.
    let n = 10_000;
    let d = Dialogue::new(40000, 25)
        .s("220 mx.example.org ESMTP\r\n")
        .c(format!("EHLO client.example.org\r\n{}", "MAIL FROM:<a@b.example>\r\nRSET\r\n".repeat(n)))
        .s(format!("250-mx.example.org\r\n250 STARTTLS\r\n{}", "250 ok\r\n".repeat(2 * n)))
        .close();
    let s = d.run();
    assert_eq!(s.len(), 1);
    assert_eq!(s[0].verdict.map(|v| v.name()), Some("starttls-offered-unused"), "the EHLO reply is still matched");
    assert!(s[0].anomalies.pipeline_overflow > 0, "commands beyond the bound are counted");
    assert!(s[0].anomalies.unsolicited_replies > 0, "their replies read as unsolicited");
}

#[test]
fn out_of_order_bytes_held_by_all_flows_together_stay_within_the_total_budget() {
    let budget = 64 * 1024;
    let mut cfg = smtpscope::engine::Config::default();
    cfg.limits.max_held_total = budget;
    let mut engine = smtpscope::engine::Engine::new(cfg, vec![std::sync::Arc::from("synthetic")], None);
    let mut out = Vec::new();
    // Twenty sessions each lose the segment with their EHLO; the 50 KB after it waits for the hole.
    for i in 0..20 {
        let d = Dialogue::new(41000 + i, 25)
            .s("220 mx.example.org ESMTP\r\n")
            .c("EHLO lost.example\r\n")
            .c(vec![b'x'; 50_000]);
        let pkts: Vec<_> = d.packets(1000).into_iter().filter(|(_, p)| !p.windows(4).any(|w| w == b"EHLO")).collect();
        for pkt in &pkts {
            common::feed_packets(&mut engine, std::slice::from_ref(pkt), usize::MAX, &mut |s| out.push(s));
            assert!(engine.held_bytes() <= budget + 1000, "{} bytes held", engine.held_bytes());
        }
    }
    assert!(engine.stats.held_releases > 0, "the budget was reached");
    engine.finish(&mut |s| out.push(s));
    assert_eq!(out.len(), 20, "every session is still reported");
    assert!(out.iter().all(|s| s.verdict.is_some()));
}

#[test]
fn a_session_evicted_after_its_ehlo_reply_says_it_was_evicted() {
    let mut cfg = smtpscope::engine::Config::default();
    cfg.limits.max_flows = 1;
    let first = opening(Dialogue::new(41000, 25), &["STARTTLS"]).packets(1000);
    let second = opening(Dialogue::new(41001, 25), &["STARTTLS"]).packets(1000);
    let (out, _) = common::run_packets_with(cfg, &[first, second].concat());
    let evicted = out.iter().find(|s| s.client.port() == 41000).expect("the evicted session is reported");
    assert_eq!(evicted.verdict.map(|v| v.name()), Some("incomplete"));
    assert!(evicted.evidence.iter().any(|e| e.text.contains("evicted")), "{:?}", evicted.evidence);
}

#[test]
fn a_capture_that_starts_inside_tls_is_incomplete_not_garbage() {
    let d = Dialogue::mid_stream(40000, 25)
        .c(tls_record(23, &[0x5a; 40]))
        .s(tls_record(23, &[0xa5; 90]))
        .c(tls_record(21, &[0x11; 26]))
        .close();
    let r = d.record();
    assert_eq!(r["verdict"], "incomplete", "{}", r["evidence"]);
    assert!(r["evidence"][0]["text"].as_str().unwrap().contains("inside TLS"), "{}", r["evidence"]);
    assert_eq!(r["tls_handshake"], false);
    assert_eq!(r["helo"], Value::Null);
    assert_eq!(r["mail_transactions"], Value::Null);
}

/// 40 bytes of IPv4 + TCP headers, then 30 bytes of payload: what `tcpdump -s 96` keeps of an
/// Ethernet frame with TCP timestamps.
const SNAP_30: usize = 70;

fn snap_record(d: &Dialogue) -> Value {
    let s = common::run_packets_snaplen(&d.packets(1460), SNAP_30);
    assert_eq!(s.len(), 1);
    smtpscope::report::json::record(&s[0], Default::default())
}

const POSTFIX_EHLO: &str = "250-mx.lab.example\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n250-STARTTLS\r\n\
                            250-ENHANCEDSTATUSCODES\r\n250 CHUNKING\r\n";

#[test]
fn a_snaplen_cut_upgrade_is_still_proven_by_its_220_and_both_hellos() {
    let d = Dialogue::new(40000, 25)
        .s("220 mx.lab.example ESMTP Postfix (Debian/GNU)\r\n")
        .c("EHLO s96.lab.example\r\n")
        .s(POSTFIX_EHLO)
        .c("STARTTLS\r\n")
        .s("220 2.0.0 Ready to start TLS\r\n")
        .c(client_hello("mx.lab.example"))
        .s(server_hello(true))
        .c(tls_record(23, &[7; 300]))
        .close();
    let r = snap_record(&d);
    assert_eq!(r["verdict"], "starttls", "{}", r["evidence"]);
    assert_eq!(r["helo"], "s96.lab.example");
    assert_eq!(r["starttls_offered"], Value::Null, "the EHLO reply was cut");
    assert_eq!(r["starttls_reply"], 220);
    assert_eq!(r["tls_handshake"], true);
    // legacy_version 0x0303 of a ServerHello cut before its extensions: 1.2 or 1.3, unknown
    assert_eq!(r["tls_version"], Value::Null);
    assert_eq!(r["sni"], Value::Null, "beyond the snaplen");
    let frames: Vec<u64> = r["evidence"].as_array().unwrap().iter().filter_map(|e| e["frame"].as_u64()).collect();
    assert!(!frames.contains(&0), "frames are 1-based: {}", r["evidence"]);
}

#[test]
fn a_snaplen_cut_plaintext_session_keeps_its_commands_and_replies_aligned() {
    let body = "Subject: x\r\n\r\n".to_string() + &"filler line of a message body\r\n".repeat(40) + ".\r\n";
    let d = Dialogue::new(40000, 25)
        .s("220 mx.lab.example ESMTP Postfix (Debian/GNU)\r\n")
        .c("EHLO p96.lab.example\r\n")
        .s(POSTFIX_EHLO)
        .c("MAIL FROM:<alice@p96.lab.example> SIZE=1400\r\n")
        .s("250 2.1.0 Ok\r\n")
        .c("RCPT TO:<bob@lab.example>\r\n")
        .s("250 2.1.5 Ok\r\n")
        .c("DATA\r\n")
        .s("354 End data with <CR><LF>.<CR><LF>\r\n")
        .c(body)
        .s("250 2.0.0 Ok: queued as 1234\r\n")
        .c("QUIT\r\n")
        .s("221 2.0.0 Bye\r\n")
        .close();
    let r = snap_record(&d);
    // The cut EHLO reply hides whether STARTTLS was offered: rule f.
    assert_eq!(r["verdict"], "incomplete", "{}", r["evidence"]);
    assert!(r["evidence"][0]["text"].as_str().unwrap().contains("(f)"), "{}", r["evidence"]);
    assert_eq!(r["mail_transactions"], 1);
    assert_eq!(r["messages_accepted"], 1, "the end of data was lost with the body's last segment");
    assert_eq!(r["clean_close"], true);
    assert_eq!(r["mail_from"], serde_json::json!(["p96.lab.examp…"]), "a cut path is marked cut");
}

/// STARTTLS, 220, both hellos, then `alert` in clear from the client (a certificate it rejects).
fn upgrade_then_client_alert(tls13: bool) -> Value {
    opening(Dialogue::new(40000, 25), &["STARTTLS"])
        .c("STARTTLS\r\n")
        .s("220 2.0.0 Ready to start TLS\r\n")
        .c(client_hello("mx.example.org"))
        .s(server_hello(tls13))
        .c(fatal_alert(45))
        .close()
        .record()
}

#[test]
fn a_client_rejecting_the_certificate_in_clear_under_tls12_keeps_the_cleartext_counts() {
    let r = upgrade_then_client_alert(false);
    assert_eq!(r["verdict"], "starttls");
    assert_eq!(r["tls_handshake"], true);
    assert_eq!(r["tls_alert"]["name"], "certificate_expired");
    assert_eq!(r["tls_alert"]["from"], "client");
    assert_eq!(r["mail_transactions"], 0);
    assert_eq!(r["clean_close"], false);
    let reason = r["evidence"][0]["text"].as_str().unwrap();
    assert!(reason.ends_with("aborted in clear by the client's certificate_expired alert"), "{reason}");
}

#[test]
fn a_server_alert_after_its_tls12_server_hello_keeps_the_counts_of_the_mail_before_it() {
    let d = opening(Dialogue::new(40000, 25), &["STARTTLS"])
        .c("MAIL FROM:<alice@contoso.com>\r\n")
        .s("250 2.1.0 ok\r\n")
        .c("STARTTLS\r\n")
        .s("220 go\r\n")
        .c(client_hello("mx.example.org"))
        .s([server_hello(false), fatal_alert(40)].concat())
        .close();
    let r = d.record();
    assert_eq!(r["tls_handshake"], true);
    assert_eq!(r["mail_transactions"], 1);
    assert_eq!(r["clean_close"], false);
}

#[test]
fn after_a_tls13_server_hello_the_alert_is_encrypted_and_the_counts_stay_unknown() {
    let r = upgrade_then_client_alert(true);
    assert_eq!(r["tls_handshake"], true);
    assert_eq!(r["mail_transactions"], Value::Null);
    assert_eq!(r["clean_close"], Value::Null);
}
