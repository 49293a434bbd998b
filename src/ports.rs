//! Names of the well-known SMTP ports, shared by the reports and the check.

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

/// Exchange's role for a well-known SMTP port, as a short key.
pub fn port_role(port: u16) -> Option<&'static str> {
    EXCHANGE_PORTS.iter().find(|(p, ..)| *p == port).map(|(_, role, _)| *role)
}

/// Exchange's name for a well-known SMTP port, in words.
pub fn port_name(port: u16) -> Option<&'static str> {
    EXCHANGE_PORTS.iter().find(|(p, ..)| *p == port).map(|(.., name)| *name)
}
