//! The spec's "What carries SMTP", end to end through the engine: tunnels are judged on what
//! follows their preamble, other protocols are never reported off the mail ports.

mod common;

use common::{client_hello, opening, Dialogue};

#[test]
fn a_connect_tunnel_to_443_carrying_tls_is_not_reported() {
    let d = Dialogue::new(40000, 3128)
        .c("CONNECT www.example.org:443 HTTP/1.1\r\nHost: www.example.org:443\r\n\r\n")
        .s("HTTP/1.1 200 Connection established\r\n\r\n")
        .c(client_hello("www.example.org"))
        .close();
    assert!(d.run().is_empty());
}

#[test]
fn a_socks5_tunnel_to_443_with_nothing_after_it_is_not_reported() {
    let d = Dialogue::new(40000, 1080)
        .c([5u8, 1, 0])
        .s([5u8, 0])
        .c([5u8, 1, 0, 1, 93, 184, 216, 34, 1, 187])
        .s([5u8, 0, 0, 1, 0, 0, 0, 0, 0, 0])
        .close();
    assert!(d.run().is_empty());
}

#[test]
fn a_socks4_tunnel_to_a_mail_port_with_nothing_after_it_is_an_incomplete_session() {
    let d = Dialogue::new(40000, 1080).c([4u8, 1, 0, 25, 10, 0, 0, 2, 0]).s([0u8, 0x5a, 0, 0, 0, 0, 0, 0]).close();
    let r = d.record();
    assert_eq!(r["verdict"], "incomplete");
    assert_eq!(r["tunnel"], "socks4");
}

#[test]
fn a_connect_tunnel_to_465_opening_with_tls_is_implicit_tls() {
    let d = Dialogue::new(40000, 3128)
        .c("CONNECT mx.example.org:465 HTTP/1.1\r\n\r\n")
        .s("HTTP/1.1 200 Connection established\r\n\r\n")
        .c(client_hello("mx.example.org"))
        .close();
    let r = d.record();
    assert_eq!(r["verdict"], "implicit-tls");
    assert_eq!(r["tunnel"], "http-connect");
}

#[test]
fn an_http_request_through_a_socks4_proxy_is_not_reported() {
    let d = Dialogue::new(40000, 1080)
        .c([4u8, 1, 0, 80, 93, 184, 216, 34, 0])
        .s([0u8, 0x5a, 0, 0, 0, 0, 0, 0])
        .c("GET / HTTP/1.1\r\nHost: www.example.com\r\n\r\n")
        .s("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
        .close();
    assert!(d.run().is_empty());
}

#[test]
fn smtp_through_a_connect_tunnel_on_a_proxy_port_is_reported() {
    let d = Dialogue::new(40000, 3128)
        .c("CONNECT mx.example.org:25 HTTP/1.1\r\n\r\n")
        .s("HTTP/1.1 200 Connection established\r\n\r\n");
    let r = opening(d, &[]).c("QUIT\r\n").s("221 bye\r\n").close().record();
    assert_eq!(r["verdict"], "plaintext");
    assert_eq!(r["tunnel"], "http-connect");
}

#[test]
fn ftp_on_its_own_port_is_not_reported_and_on_a_mail_port_is_not_smtp() {
    let ftp = |port| {
        Dialogue::new(40000, port)
            .s("220 (vsFTPd 3.0.3)\r\n")
            .c("USER anonymous\r\n")
            .s("331 Please specify the password.\r\n")
            .c("PASS x\r\n")
            .s("230 Login successful.\r\n")
            .c("QUIT\r\n")
            .s("221 Goodbye.\r\n")
            .close()
    };
    assert!(ftp(21).run().is_empty());
    assert_eq!(ftp(587).record()["verdict"], "not-smtp");
}

#[test]
fn pop3_with_auth_and_quit_is_not_smtp() {
    let pop = Dialogue::new(40000, 25)
        .s("+OK Dovecot ready.\r\n")
        .c("AUTH PLAIN AHVzZXIAcGFzcw==\r\n")
        .s("+OK Logged in.\r\n")
        .c("QUIT\r\n")
        .s("+OK Logging out.\r\n")
        .close();
    assert_eq!(pop.record()["verdict"], "not-smtp");
}

#[test]
fn an_irc_starttls_is_not_an_smtp_upgrade() {
    let irc = Dialogue::new(40000, 6667)
        .c("STARTTLS\r\n")
        .s(":irc.example.net 670 * :STARTTLS successful, go ahead with TLS handshake\r\n")
        .c(client_hello("irc.example.net"))
        .close();
    assert!(irc.run().is_empty());
}
