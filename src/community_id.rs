//! Community ID v1 of a TCP flow: the key Zeek, Suricata and Arkime records share, so that a
//! session here can be found in their logs.

use std::net::{IpAddr, SocketAddr};

use base64::Engine as _;
use sha1::Digest as _;

/// Community ID v1 (seed 0) of a TCP flow, as Zeek, Suricata and Arkime emit it.
pub fn community_id(a: SocketAddr, b: SocketAddr) -> String {
    let mut v = Vec::with_capacity(30);
    push_community_id(&mut v, a, b);
    String::from_utf8(v).unwrap_or_default()
}

/// [`community_id`] appended to `out`.
pub fn push_community_id(out: &mut Vec<u8>, a: SocketAddr, b: SocketAddr) {
    let (src, dst) = if (a.ip(), a.port()) <= (b.ip(), b.port()) { (a, b) } else { (b, a) };
    let mut h = sha1::Sha1::new();
    h.update(0u16.to_be_bytes());
    match (src.ip(), dst.ip()) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            h.update(s.octets());
            h.update(d.octets());
        }
        (s, d) => {
            h.update(to16(s));
            h.update(to16(d));
        }
    }
    h.update([6u8, 0]);
    h.update(src.port().to_be_bytes());
    h.update(dst.port().to_be_bytes());
    let mut b64 = [0u8; 28];
    let n = base64::engine::general_purpose::STANDARD.encode_slice(h.finalize(), &mut b64).unwrap_or(0);
    out.extend_from_slice(b"1:");
    out.extend_from_slice(b64.get(..n).unwrap_or_default());
}

fn to16(ip: IpAddr) -> [u8; 16] {
    match ip {
        IpAddr::V4(v) => v.to_ipv6_mapped().octets(),
        IpAddr::V6(v) => v.octets(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn community_id_matches_the_spec_example() {
        // From the Community ID spec's test vectors (tcp, seed 0).
        let a: SocketAddr = "128.232.110.120:34855".parse().unwrap();
        let b: SocketAddr = "66.35.250.204:80".parse().unwrap();
        assert_eq!(community_id(a, b), "1:LQU9qZlK+B5F3KDmev6m5PMibrg=");
        assert_eq!(community_id(b, a), "1:LQU9qZlK+B5F3KDmev6m5PMibrg=");
    }
}
