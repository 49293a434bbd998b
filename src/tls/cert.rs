//! Server certificate facts via x509-parser, and the checks a mail admin cares about.

use sha1::Digest as _;
use x509_parser::prelude::*;

use crate::session::CertInfo;

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

fn rfc4514_escape(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    let last = v.chars().count().saturating_sub(1);
    for (i, c) in v.chars().enumerate() {
        let special = matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';')
            || (i == 0 && (c == '#' || c == ' '))
            || (i == last && c == ' ');
        if special {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The attribute type names RFC 4514 section 3 defines; others are written as dotted OIDs.
fn rfc4514_key(oid: &x509_parser::der_parser::oid::Oid<'_>) -> String {
    let id = oid.to_id_string();
    let short = match id.as_str() {
        "2.5.4.3" => "CN",
        "2.5.4.7" => "L",
        "2.5.4.8" => "ST",
        "2.5.4.10" => "O",
        "2.5.4.11" => "OU",
        "2.5.4.6" => "C",
        "2.5.4.9" => "STREET",
        "0.9.2342.19200300.100.1.25" => "DC",
        "0.9.2342.19200300.100.1.1" => "UID",
        _ => return id,
    };
    short.to_string()
}

/// RFC 4514 string: last RDN first, short attribute names, escaped values.
pub fn rfc4514(name: &X509Name<'_>) -> String {
    let rdns: Vec<String> = name
        .iter_rdn()
        .map(|rdn| {
            rdn.iter()
                .map(|atv| {
                    let key = rfc4514_key(atv.attr_type());
                    // TeletexString and friends: x509-parser declines them, but in practice
                    // they carry ASCII/UTF-8; only bytes that are not text become `#hex`.
                    let raw = atv.attr_value().data;
                    let val = match atv.as_str() {
                        Ok(s) => rfc4514_escape(s),
                        Err(_) => match std::str::from_utf8(raw) {
                            Ok(s) if !s.chars().any(char::is_control) => rfc4514_escape(s),
                            _ => format!("#{}", hex(raw)),
                        },
                    };
                    format!("{key}={val}")
                })
                .collect::<Vec<_>>()
                .join("+")
        })
        .collect();
    rdns.into_iter().rev().collect::<Vec<_>>().join(",")
}

/// Distinct certificates remembered per thread by [`parse_cached`].
const CACHE_ENTRIES: usize = 32;
/// Larger certificates are parsed every time rather than held.
const CACHE_MAX_DER: usize = 16 * 1024;

/// DER bytes → parsed facts, oldest first.
type Cache = std::collections::VecDeque<(Box<[u8]>, Option<CertInfo>)>;

thread_local! {
    static CACHE: std::cell::RefCell<Cache> = const { std::cell::RefCell::new(Cache::new()) };
}

/// [`parse`], remembering the last few distinct certificates: a server shows the same
/// certificate to every client, and parsing it (x509 plus two digests) costs as much as the rest
/// of a session. The result is a pure function of the bytes, so the cache changes nothing else.
pub fn parse_cached(der: &[u8], chain_len: usize) -> Option<CertInfo> {
    if der.len() > CACHE_MAX_DER {
        return parse(der, chain_len);
    }
    let hit = CACHE.with(|c| c.borrow().iter().find(|(d, _)| **d == *der).map(|(_, info)| info.clone()));
    let info = match hit {
        Some(info) => info,
        None => {
            let info = parse(der, chain_len);
            CACHE.with(|c| {
                let mut c = c.borrow_mut();
                if c.len() >= CACHE_ENTRIES {
                    c.pop_front();
                }
                c.push_back((der.into(), info.clone()));
            });
            info
        }
    };
    info.map(|i| CertInfo { chain_len, ..i })
}

/// Parses the first certificate of a chain.
pub fn parse(der: &[u8], chain_len: usize) -> Option<CertInfo> {
    let (_, cert) = X509Certificate::from_der(der).ok()?;
    let reg = oid_registry();
    let mut sans = Vec::new();
    if let Ok(Some(ext)) = cert.subject_alternative_name() {
        for n in &ext.value.general_names {
            match n {
                GeneralName::DNSName(d) => sans.push(format!("DNS:{d}")),
                GeneralName::RFC822Name(e) => sans.push(format!("email:{e}")),
                GeneralName::URI(u) => sans.push(format!("URI:{u}")),
                GeneralName::IPAddress(ip) => match ip.len() {
                    4 => sans.push(format!("IP:{}", std::net::Ipv4Addr::new(ip[0], ip[1], ip[2], ip[3]))),
                    16 => {
                        let mut a = [0u8; 16];
                        a.copy_from_slice(ip);
                        sans.push(format!("IP:{}", std::net::Ipv6Addr::from(a)));
                    }
                    _ => {}
                },
                _ => {}
            }
        }
    }
    let common_names =
        cert.subject().iter_common_name().filter_map(|cn| cn.as_str().ok().map(str::to_string)).collect();
    let (key_type, key_bits) = match cert.public_key().parsed() {
        Ok(x509_parser::public_key::PublicKey::RSA(k)) => ("RSA", k.key_size()),
        Ok(x509_parser::public_key::PublicKey::EC(k)) => ("EC", k.key_size()),
        Ok(x509_parser::public_key::PublicKey::DSA(k)) => ("DSA", k.len() * 8),
        Ok(other) => ("other", other.key_size()),
        Err(_) => ("unknown", 0),
    };
    let sig_oid = &cert.signature_algorithm.algorithm;
    let signature = oid2sn(sig_oid, reg).map(str::to_string).unwrap_or_else(|_| sig_oid.to_id_string());
    Some(CertInfo {
        subject: rfc4514(cert.subject()),
        issuer: rfc4514(cert.issuer()),
        serial: hex(cert.raw_serial()),
        sha1: hex(&sha1::Sha1::digest(der)),
        sha256: hex(&sha2::Sha256::digest(der)),
        not_before: cert.validity().not_before.timestamp(),
        not_after: cert.validity().not_after.timestamp(),
        sans,
        common_names,
        self_signed: cert.subject().as_raw() == cert.issuer().as_raw(),
        key_bits: u32::try_from(key_bits).unwrap_or(u32::MAX),
        key_type,
        signature,
        chain_len,
    })
}

/// RFC 6125 host name match: case-insensitive, a wildcard only as the whole left-most label.
pub fn name_matches(pattern: &str, host: &str) -> bool {
    let p = pattern.trim_end_matches('.').to_ascii_lowercase();
    let h = host.trim_end_matches('.').to_ascii_lowercase();
    if let Some(rest) = p.strip_prefix("*.") {
        match h.split_once('.') {
            Some((first, tail)) => !first.is_empty() && tail == rest && rest.contains('.'),
            None => false,
        }
    } else {
        p == h
    }
}

impl CertInfo {
    /// Names the certificate is valid for: DNS SANs, else the subject CNs.
    pub fn dns_names(&self) -> Vec<&str> {
        let sans: Vec<&str> = self.sans.iter().filter_map(|s| s.strip_prefix("DNS:")).collect();
        if sans.is_empty() {
            self.common_names.iter().map(String::as_str).collect()
        } else {
            sans
        }
    }

    /// Whether the certificate covers `host`.
    pub fn covers(&self, host: &str) -> bool {
        self.dns_names().iter().any(|p| name_matches(p, host))
    }

    /// The signature uses SHA-1 or MD5.
    pub fn weak_signature(&self) -> bool {
        let s = self.signature.to_ascii_lowercase();
        s.contains("sha1") || s.contains("md5") || s.contains("md2")
    }

    /// Key too small for today (RSA/DSA < 2048, EC < 224).
    pub fn weak_key(&self) -> bool {
        match self.key_type {
            "RSA" | "DSA" => self.key_bits > 0 && self.key_bits < 2048,
            "EC" => self.key_bits > 0 && self.key_bits < 224,
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcard_covers_exactly_one_label() {
        assert!(name_matches("*.contoso.com", "mail.contoso.com"));
        assert!(!name_matches("*.contoso.com", "a.b.contoso.com"));
        assert!(!name_matches("*.contoso.com", "contoso.com"));
        assert!(!name_matches("*.com", "contoso.com"));
        assert!(name_matches("MX.Example.ORG.", "mx.example.org"));
    }

    /// A self-signed EC certificate made for these tests (openssl req -x509).
    const MX_DER: &[u8] = include_bytes!("testdata/mx.example.org.der");

    #[test]
    fn a_cached_certificate_is_the_parsed_one_with_its_own_chain_length() {
        let first = parse_cached(MX_DER, 1).expect("parses");
        let again = parse_cached(MX_DER, 3).expect("cached");
        let direct = parse(MX_DER, 3).expect("parses");
        assert_eq!((first.chain_len, again.chain_len), (1, 3));
        assert_eq!(format!("{again:?}"), format!("{direct:?}"));
        assert_eq!(again.subject, "CN=mx.example.org");
    }

    #[test]
    fn garbage_is_not_a_certificate_cached_or_not() {
        assert!(parse_cached(&MX_DER[..40], 1).is_none());
        assert!(parse_cached(&MX_DER[..40], 1).is_none());
    }

    #[test]
    fn rfc4514_escapes_specials() {
        assert_eq!(rfc4514_escape("a,b"), "a\\,b");
        assert_eq!(rfc4514_escape(" x "), "\\ x\\ ");
    }
}
