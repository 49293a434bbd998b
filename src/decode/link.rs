//! Link layers and the mirror encapsulations a SPAN/TAP feed brings, down to the IP header.

/// libpcap link types this decoder understands.
pub mod dlt {
    /// BSD loopback, host byte order family.
    pub const NULL: i32 = 0;
    /// Ethernet.
    pub const EN10MB: i32 = 1;
    /// Raw IP (most platforms).
    pub const RAW: i32 = 12;
    /// Raw IP (OpenBSD numbering).
    pub const RAW_OPENBSD: i32 = 14;
    /// PPP over serial with HDLC framing is not supported; plain PPP is.
    pub const PPP: i32 = 9;
    /// LINKTYPE_RAW as stored in files.
    pub const LINKTYPE_RAW: i32 = 101;
    /// BSD loopback, network byte order family.
    pub const LOOP: i32 = 108;
    /// Linux cooked capture v1 (`-i any`, older libpcap).
    pub const LINUX_SLL: i32 = 113;
    /// Raw IPv4.
    pub const IPV4: i32 = 228;
    /// Raw IPv6.
    pub const IPV6: i32 = 229;
    /// Linux cooked capture v2 (`tcpdump -i any` today).
    pub const LINUX_SLL2: i32 = 276;
}

/// Why a packet could not be decoded down to TCP; each reason is counted in the summary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Skip {
    /// Link type not supported.
    UnsupportedLinktype,
    /// Link or encapsulation header cut short.
    TruncatedLink,
    /// Ethertype/protocol other than IP (ARP, LLDP…).
    NotIp,
    /// IP header malformed or cut short.
    BadIp,
    /// IP but not TCP (UDP, ICMP…).
    NotTcp,
    /// TCP header malformed or cut by snaplen.
    BadTcp,
    /// IPv4/IPv6 fragment waiting for the rest of its packet.
    FragmentPending,
    /// Fragment that could not be reassembled (overlap, too many pending).
    BadFragment,
    /// Encapsulation nested deeper than the decoder follows.
    TooDeep,
}

impl Skip {
    /// Stable name for the summary.
    pub fn name(self) -> &'static str {
        match self {
            Skip::UnsupportedLinktype => "unsupported-linktype",
            Skip::TruncatedLink => "truncated-link-header",
            Skip::NotIp => "not-ip",
            Skip::BadIp => "bad-ip-header",
            Skip::NotTcp => "not-tcp",
            Skip::BadTcp => "bad-tcp-header",
            Skip::FragmentPending => "fragment-pending",
            Skip::BadFragment => "bad-fragment",
            Skip::TooDeep => "encapsulation-too-deep",
        }
    }
}

/// Where the IP packet starts inside a frame, plus what was peeled off on the way.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LinkInfo {
    /// Outermost 802.1Q VLAN id, if tagged.
    pub vlan: Option<u16>,
    /// A mirror/tunnel encapsulation was removed (GRE, ERSPAN, VXLAN, MPLS, PPPoE).
    pub encapsulated: bool,
}

const ETH_IPV4: u16 = 0x0800;
const ETH_IPV6: u16 = 0x86dd;
const ETH_VLAN: u16 = 0x8100;
const ETH_QINQ: u16 = 0x88a8;
const ETH_QINQ_OLD: u16 = 0x9100;
const ETH_MPLS: u16 = 0x8847;
const ETH_MPLS_MC: u16 = 0x8848;
const ETH_PPPOE: u16 = 0x8864;

#[inline(always)]
fn be16(b: &[u8], at: usize) -> Option<u16> {
    b.get(at..)?.first_chunk::<2>().map(|s| u16::from_be_bytes(*s))
}

/// The IP packet of a frame that needs no peeling beyond a plain Ethernet header (nearly every
/// frame), as [`to_ip`] finds it; None leaves the frame to [`to_ip`], which then decides.
#[inline(always)]
pub fn bare_ip(linktype: i32, frame: &[u8]) -> Option<&[u8]> {
    match linktype {
        dlt::EN10MB => match be16(frame, 12)? {
            ETH_IPV4 | ETH_IPV6 => frame.get(14..),
            _ => None,
        },
        dlt::RAW | dlt::RAW_OPENBSD | dlt::LINKTYPE_RAW | dlt::IPV4 | dlt::IPV6 => Some(frame),
        _ => None,
    }
}

/// Returns the IP packet inside a link-layer frame of type `linktype`.
pub fn to_ip<'a>(linktype: i32, frame: &'a [u8], info: &mut LinkInfo) -> Result<&'a [u8], Skip> {
    match linktype {
        dlt::EN10MB => ethernet(frame, info, 0),
        dlt::RAW | dlt::RAW_OPENBSD | dlt::LINKTYPE_RAW | dlt::IPV4 | dlt::IPV6 => Ok(frame),
        dlt::NULL | dlt::LOOP => {
            let fam = frame.get(..4).ok_or(Skip::TruncatedLink)?;
            let fam = if linktype == dlt::NULL {
                // Host byte order of the capturing machine: accept either.
                let le = u32::from_le_bytes([fam[0], fam[1], fam[2], fam[3]]);
                if le < 256 {
                    le
                } else {
                    u32::from_be_bytes([fam[0], fam[1], fam[2], fam[3]])
                }
            } else {
                u32::from_be_bytes([fam[0], fam[1], fam[2], fam[3]])
            };
            match fam {
                // AF_INET everywhere; AF_INET6 is 24 (NetBSD/OpenBSD), 28 (FreeBSD), 30 (macOS), 10 (Linux).
                2 | 10 | 24 | 28 | 30 => frame.get(4..).ok_or(Skip::TruncatedLink),
                _ => Err(Skip::NotIp),
            }
        }
        dlt::LINUX_SLL => {
            let proto = be16(frame, 14).ok_or(Skip::TruncatedLink)?;
            ethertype_payload(proto, frame.get(16..).ok_or(Skip::TruncatedLink)?, info, 0)
        }
        dlt::LINUX_SLL2 => {
            // SLL2 puts the protocol first; etherparse has no parser for this 20-byte header.
            let proto = be16(frame, 0).ok_or(Skip::TruncatedLink)?;
            ethertype_payload(proto, frame.get(20..).ok_or(Skip::TruncatedLink)?, info, 0)
        }
        dlt::PPP => {
            let proto = be16(frame, 0).ok_or(Skip::TruncatedLink)?;
            ppp_payload(proto, frame.get(2..).ok_or(Skip::TruncatedLink)?)
        }
        _ => Err(Skip::UnsupportedLinktype),
    }
}

const MAX_DEPTH: u8 = 8;

/// Parses an Ethernet frame (also used for frames carried inside GRE/VXLAN/ERSPAN).
pub fn ethernet<'a>(frame: &'a [u8], info: &mut LinkInfo, depth: u8) -> Result<&'a [u8], Skip> {
    let proto = be16(frame, 12).ok_or(Skip::TruncatedLink)?;
    ethertype_payload(proto, frame.get(14..).ok_or(Skip::TruncatedLink)?, info, depth)
}

fn ethertype_payload<'a>(proto: u16, mut rest: &'a [u8], info: &mut LinkInfo, depth: u8) -> Result<&'a [u8], Skip> {
    if depth > MAX_DEPTH {
        return Err(Skip::TooDeep);
    }
    let mut proto = proto;
    loop {
        match proto {
            ETH_IPV4 | ETH_IPV6 => return Ok(rest),
            ETH_VLAN | ETH_QINQ | ETH_QINQ_OLD => {
                let tci = be16(rest, 0).ok_or(Skip::TruncatedLink)?;
                if info.vlan.is_none() {
                    info.vlan = Some(tci & 0x0fff);
                }
                proto = be16(rest, 2).ok_or(Skip::TruncatedLink)?;
                rest = rest.get(4..).ok_or(Skip::TruncatedLink)?;
            }
            ETH_MPLS | ETH_MPLS_MC => {
                info.encapsulated = true;
                return mpls(rest, info, depth + 1);
            }
            ETH_PPPOE => {
                info.encapsulated = true;
                let ppp = be16(rest, 6).ok_or(Skip::TruncatedLink)?;
                return ppp_payload(ppp, rest.get(8..).ok_or(Skip::TruncatedLink)?);
            }
            _ => return Err(Skip::NotIp),
        }
    }
}

fn ppp_payload(proto: u16, rest: &[u8]) -> Result<&[u8], Skip> {
    match proto {
        0x0021 | 0x0057 => Ok(rest),
        _ => Err(Skip::NotIp),
    }
}

fn mpls<'a>(mut rest: &'a [u8], info: &mut LinkInfo, depth: u8) -> Result<&'a [u8], Skip> {
    // Walk the label stack to its bottom, then guess the payload from its first nibble,
    // as Wireshark does: 4/6 is IP, 0 is a pseudowire control word before Ethernet.
    for _ in 0..16 {
        let entry = rest.get(..4).ok_or(Skip::TruncatedLink)?;
        rest = rest.get(4..).ok_or(Skip::TruncatedLink)?;
        if entry[2] & 0x01 != 0 {
            return match rest.first().map(|b| b >> 4) {
                Some(4) | Some(6) => Ok(rest),
                Some(0) => ethernet(rest.get(4..).ok_or(Skip::TruncatedLink)?, info, depth + 1),
                Some(_) => ethernet(rest, info, depth + 1),
                None => Err(Skip::TruncatedLink),
            };
        }
    }
    Err(Skip::TooDeep)
}

/// Decapsulates GRE (incl. ERSPAN I/II/III and transparent Ethernet bridging) to an IP packet.
pub fn gre<'a>(payload: &'a [u8], info: &mut LinkInfo, depth: u8) -> Result<&'a [u8], Skip> {
    if depth > MAX_DEPTH {
        return Err(Skip::TooDeep);
    }
    info.encapsulated = true;
    let flags = be16(payload, 0).ok_or(Skip::TruncatedLink)?;
    let proto = be16(payload, 2).ok_or(Skip::TruncatedLink)?;
    let mut off = 4usize;
    if flags & 0x8000 != 0 || flags & 0x4000 != 0 {
        off += 4; // checksum (+ reserved), or routing present
    }
    if flags & 0x2000 != 0 {
        off += 4; // key
    }
    let has_seq = flags & 0x1000 != 0;
    if has_seq {
        off += 4;
    }
    let inner = payload.get(off..).ok_or(Skip::TruncatedLink)?;
    match proto {
        0x6558 => ethernet(inner, info, depth + 1),
        // ERSPAN type II: 8-byte header. Type I (no sequence number) has none.
        0x88be => {
            let inner = if has_seq { inner.get(8..).ok_or(Skip::TruncatedLink)? } else { inner };
            ethernet(inner, info, depth + 1)
        }
        // ERSPAN type III: 12-byte header, plus an 8-byte platform subheader when O is set.
        0x22eb => {
            let o = inner.get(11).ok_or(Skip::TruncatedLink)? & 0x01 != 0;
            let skip = if o { 20 } else { 12 };
            ethernet(inner.get(skip..).ok_or(Skip::TruncatedLink)?, info, depth + 1)
        }
        0x0800 | 0x86dd => Ok(inner),
        other => ethertype_payload(other, inner, info, depth + 1),
    }
}

/// Decapsulates VXLAN (UDP 4789): an 8-byte header before an Ethernet frame.
pub fn vxlan<'a>(udp_payload: &'a [u8], info: &mut LinkInfo, depth: u8) -> Result<&'a [u8], Skip> {
    info.encapsulated = true;
    ethernet(udp_payload.get(8..).ok_or(Skip::TruncatedLink)?, info, depth + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sll2_has_its_protocol_first() {
        let mut f = vec![0x08, 0x00];
        f.extend_from_slice(&[0u8; 18]);
        f.extend_from_slice(&[0x45, 0, 0, 20]);
        let mut info = LinkInfo::default();
        let ip = to_ip(dlt::LINUX_SLL2, &f, &mut info).unwrap();
        assert_eq!(ip.first(), Some(&0x45));
    }

    #[test]
    fn qinq_records_the_outer_vlan() {
        let mut f = vec![0u8; 12];
        f.extend_from_slice(&[0x88, 0xa8, 0x00, 0x7d, 0x81, 0x00, 0x00, 0x05, 0x86, 0xdd, 0x60]);
        let mut info = LinkInfo::default();
        let ip = to_ip(dlt::EN10MB, &f, &mut info).unwrap();
        assert_eq!(ip, &[0x60]);
        assert_eq!(info.vlan, Some(125));
    }

    #[test]
    fn mpls_bottom_of_stack_then_ip() {
        let mut f = vec![0u8; 12];
        f.extend_from_slice(&[0x88, 0x47, 0, 0x01, 0x00, 0x40, 0, 0x01, 0x01, 0x40, 0x45]);
        let mut info = LinkInfo::default();
        assert_eq!(to_ip(dlt::EN10MB, &f, &mut info).unwrap(), &[0x45]);
        assert!(info.encapsulated);
    }

    #[test]
    fn the_bare_ip_shortcut_finds_what_to_ip_finds() {
        let mut frames = Vec::new();
        for ethertype in [[0x08, 0x00], [0x86, 0xdd], [0x81, 0x00], [0x88, 0x47], [0x08, 0x06]] {
            for len in [0usize, 12, 13, 14, 15, 40] {
                let mut f = vec![0x45u8; len];
                if let Some(t) = f.get_mut(12..14) {
                    t.copy_from_slice(&ethertype);
                }
                frames.push(f);
            }
        }
        let types = [
            dlt::EN10MB,
            dlt::RAW,
            dlt::RAW_OPENBSD,
            dlt::LINKTYPE_RAW,
            dlt::IPV4,
            dlt::IPV6,
            dlt::NULL,
            dlt::LINUX_SLL,
        ];
        for lt in types {
            for f in &frames {
                let mut info = LinkInfo::default();
                let full = to_ip(lt, f, &mut info);
                if let Some(ip) = bare_ip(lt, f) {
                    assert_eq!(full, Ok(ip), "linktype {lt}, frame {f:?}");
                    assert_eq!(info, LinkInfo::default(), "the shortcut peels nothing to note");
                }
            }
        }
    }

    #[test]
    fn truncated_frames_are_skipped_not_panicking() {
        let mut info = LinkInfo::default();
        for lt in [dlt::EN10MB, dlt::LINUX_SLL, dlt::LINUX_SLL2, dlt::NULL, dlt::LOOP, dlt::PPP] {
            for n in 0..22 {
                let _ = to_ip(lt, &vec![0x81u8; n], &mut info);
            }
        }
    }
}
