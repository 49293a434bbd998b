//! Whether the dialogue went inside TLS. `tls_handshake` (both hellos seen) is not enough: a
//! TLS ≤ 1.2 handshake can still be aborted after the ServerHello by a cleartext fatal alert (a
//! client rejecting the certificate), and then the cleartext dialogue is all there was, so its
//! counts stay known (the shared spec's rule for `mail_transactions` and `clean_close`).

use super::Session;

/// Fatal alert level (RFC 5246 7.2).
const FATAL: u8 = 2;

/// TLS 1.3 or one of its drafts (0x7fxx): there every alert after the ServerHello is encrypted.
fn is_tls13(v: u16) -> bool {
    v == 0x0304 || (v & 0xff00) == 0x7f00
}

impl Session {
    /// A TLS ≤ 1.2 handshake that a cleartext fatal alert from either side ended after the
    /// ServerHello. An unknown version (a ServerHello cut by the snaplen) does not qualify: under
    /// TLS 1.3 the handshake is already encrypted there.
    pub fn handshake_aborted(&self) -> bool {
        let (Some(hello), Some(alert), Some(version)) = (self.tls.server_hello, self.tls.alert, self.tls.version)
        else {
            return false;
        };
        alert.level == FATAL && alert.frame >= hello && !is_tls13(version)
    }

    /// TLS was established: both hellos seen and the handshake not aborted in clear. From then
    /// on the cleartext counts (`mail_transactions`, `clean_close`, …) are unknown.
    pub fn tls_established(&self) -> bool {
        self.tls_handshake() && !self.handshake_aborted()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::{Alert, Side};

    const TLS12: u16 = 0x0303;
    const TLS13: u16 = 0x0304;

    fn session(server_hello: Option<u64>, version: Option<u16>, alert: Option<(Side, u8, u64)>) -> Session {
        let mut s = Session::new("10.0.0.1:40000".parse().unwrap(), "10.0.0.2:25".parse().unwrap());
        s.tls.client_hello = Some(10);
        s.tls.server_hello = server_hello;
        s.tls.version = version;
        s.tls.alert = alert.map(|(side, level, frame)| Alert { side, level, description: 42, frame });
        s
    }

    #[test]
    fn a_client_rejecting_the_certificate_under_tls12_aborts_the_handshake() {
        let s = session(Some(12), Some(TLS12), Some((Side::Client, 2, 14)));
        assert!(s.tls_handshake());
        assert!(s.handshake_aborted());
        assert!(!s.tls_established());
    }

    #[test]
    fn a_server_fatal_alert_after_its_server_hello_aborts_it_too() {
        let s = session(Some(12), Some(0x0301), Some((Side::Server, 2, 16)));
        assert!(!s.tls_established());
    }

    #[test]
    fn a_completed_handshake_is_established() {
        assert!(session(Some(12), Some(TLS12), None).tls_established());
        assert!(session(Some(12), Some(TLS13), None).tls_established());
    }

    #[test]
    fn a_warning_alert_does_not_abort() {
        let s = session(Some(12), Some(TLS12), Some((Side::Client, 1, 14)));
        assert!(s.tls_established());
    }

    #[test]
    fn under_tls13_the_handshake_after_the_server_hello_counts_as_encrypted() {
        let s = session(Some(12), Some(TLS13), Some((Side::Client, 2, 14)));
        assert!(!s.handshake_aborted());
        assert!(s.tls_established());
        let draft = session(Some(12), Some(0x7f1c), Some((Side::Client, 2, 14)));
        assert!(draft.tls_established());
    }

    #[test]
    fn an_unknown_version_is_not_taken_for_tls12() {
        let s = session(Some(12), None, Some((Side::Client, 2, 14)));
        assert!(s.tls_established());
    }

    #[test]
    fn an_alert_before_the_server_hello_never_established_anything() {
        let s = session(None, None, Some((Side::Server, 2, 11)));
        assert!(!s.handshake_aborted());
        assert!(!s.tls_established());
        // An alert crossing a ServerHello in flight: the spec's rule is about alerts after it.
        let crossing = session(Some(12), Some(TLS12), Some((Side::Client, 2, 11)));
        assert!(!crossing.handshake_aborted());
    }
}
