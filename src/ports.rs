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
