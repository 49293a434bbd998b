//! Names of the well-known SMTP ports, shared by the reports and the check: Exchange's role
//! names for a server that shows Exchange, the standard service names otherwise.

use crate::session::Session;

/// Exchange's well-known SMTP ports: the port, its role as a short key (JSON, the pairs table)
/// and as words (check's text). Reports only: classification never depends on them.
const EXCHANGE_PORTS: [(u16, &str, &str); 6] = [
    (25, "front-end", "Exchange front end / MX"),
    (587, "front-end-submission", "submission (Exchange front end)"),
    (717, "front-end-outbound-proxy", "Exchange front end (outbound proxy)"),
    (465, "client-proxy", "Exchange client proxy (STARTTLS here, not implicit TLS)"),
    (2525, "hub", "Exchange hub transport"),
    (475, "mailbox-delivery", "Exchange mailbox delivery"),
];

/// The standard names of the mail ports (IANA's service names; `smtps` for 465, as mail
/// administrators say it), for servers that show nothing of Exchange.
const STANDARD_PORTS: [(u16, &str, &str); 3] = [
    (25, "smtp", "SMTP relay / MX"),
    (587, "submission", "message submission"),
    (465, "smtps", "SMTP over implicit TLS"),
];

/// Whether the server shows it is Exchange: its greeting names "Microsoft ESMTP MAIL Service",
/// or its EHLO reply offers a verb only Exchange has (X-ANONYMOUSTLS, XEXCH50, X-EXPS). Only then
/// do Exchange's role names fit its ports: a Postfix relay on 25 is no "front end".
pub fn shows_exchange(s: &Session) -> bool {
    let banner = s
        .banner
        .as_deref()
        .is_some_and(|b| b.windows(28).any(|w| w.eq_ignore_ascii_case(b"Microsoft ESMTP MAIL Service")));
    banner
        || s.ehlo_reply
            .iter()
            .flat_map(|r| r.extensions.iter())
            .any(|e| e.is("X-ANONYMOUSTLS") || e.is("XEXCH50") || e.is("X-EXPS"))
}

fn port_entry(port: u16, exchange: bool) -> Option<&'static (u16, &'static str, &'static str)> {
    let table: &'static [(u16, &str, &str)] = if exchange { &EXCHANGE_PORTS } else { &STANDARD_PORTS };
    table.iter().find(|(p, ..)| *p == port)
}

/// The role of a server port as a short key: Exchange's (`hub`, `front-end`, …) for a server
/// that shows Exchange, else the port's standard name (`smtp`, `submission`, `smtps`).
pub fn port_role(port: u16, exchange: bool) -> Option<&'static str> {
    port_entry(port, exchange).map(|(_, role, _)| *role)
}

/// The same role in words.
pub fn port_name(port: u16, exchange: bool) -> Option<&'static str> {
    port_entry(port, exchange).map(|(.., name)| *name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::{EhloReply, Extension};

    fn server(banner: &str, extensions: &[&str]) -> Session {
        let mut s = Session::new("10.0.0.1:1025".parse().unwrap(), "10.0.0.2:25".parse().unwrap());
        s.banner = Some(banner.as_bytes().to_vec());
        let extensions =
            extensions.iter().map(|k| Extension { keyword: k.as_bytes().to_vec(), params: Vec::new() }).collect();
        s.ehlo_reply = Some(EhloReply { extensions, ..Default::default() });
        s
    }

    #[test]
    fn exchange_shows_itself_by_its_banner_or_its_own_verbs() {
        assert!(shows_exchange(&server("hub.contoso.com Microsoft ESMTP MAIL Service ready", &["STARTTLS"])));
        for verb in ["X-ANONYMOUSTLS", "XEXCH50", "x-exps"] {
            assert!(shows_exchange(&server("mx.example ESMTP", &["STARTTLS", verb])), "{verb}");
        }
        assert!(!shows_exchange(&server("relay.example ESMTP Postfix", &["STARTTLS", "PIPELINING"])));
    }

    #[test]
    fn only_an_exchange_server_gets_exchange_role_names() {
        assert_eq!(port_role(25, true), Some("front-end"));
        assert_eq!(port_role(2525, true), Some("hub"));
        assert_eq!(port_role(25, false), Some("smtp"));
        assert_eq!(port_role(587, false), Some("submission"));
        assert_eq!(port_role(465, false), Some("smtps"));
        assert_eq!(port_role(2525, false), None);
        assert_eq!(port_name(465, true), Some("Exchange client proxy (STARTTLS here, not implicit TLS)"));
    }
}
