//! Frame → TCP segment: link layer, encapsulations, IPv4/IPv6 (with extension headers and
//! fragments) and the TCP header. Checksums are never verified: offload on the capturing host
//! makes them wrong in perfectly good captures.

pub mod link;

use std::collections::VecDeque;
use std::net::IpAddr;

use etherparse::{IpNumber, LaxIpSlice, TcpSlice};
use rustc_hash::FxHashMap;

pub use link::{LinkInfo, Skip};

/// The TCP flags the flow layer cares about.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TcpFlags {
    /// SYN.
    pub syn: bool,
    /// ACK (the acknowledgment number is valid).
    pub ack: bool,
    /// FIN.
    pub fin: bool,
    /// RST.
    pub rst: bool,
}

/// A decoded TCP segment; `payload` borrows the frame or the decoder's fragment buffer.
#[derive(Debug, Clone, Copy)]
pub struct Segment<'a> {
    /// Source address.
    pub src: IpAddr,
    /// Destination address.
    pub dst: IpAddr,
    /// Source port.
    pub sport: u16,
    /// Destination port.
    pub dport: u16,
    /// Sequence number.
    pub seq: u32,
    /// Acknowledgment number (valid when `flags.ack`).
    pub ack: u32,
    /// Flags.
    pub flags: TcpFlags,
    /// Window field (unscaled).
    pub window: u16,
    /// TCP option bytes as sent (read by the two-point diff on handshake segments).
    pub options: &'a [u8],
    /// Captured payload bytes (may be shorter than `wire_len` when snaplen cut the frame).
    pub payload: &'a [u8],
    /// Payload length on the wire, from the IP length fields.
    pub wire_len: u32,
    /// What the link layer peeled off.
    pub link: LinkInfo,
}

/// A decoded segment whose option and payload bytes are named by their place in a buffer its
/// holder keeps: how a segment decoded on one thread travels to another.
#[derive(Debug, Clone, Copy)]
pub struct SegmentAt {
    /// The header facts; its own `options` and `payload` are empty.
    head: Segment<'static>,
    /// Start and length in the buffer.
    options: (u32, u32),
    payload: (u32, u32),
}

impl Segment<'_> {
    /// The segment with its option and payload bytes appended to `buf`, which it then names
    /// them by: the link, IP and TCP headers are not copied, the facts taken from them travel
    /// in the `SegmentAt`. None if `buf` outgrew 4 GiB.
    pub fn relocate(&self, buf: &mut Vec<u8>) -> Option<SegmentAt> {
        let mut put = |b: &[u8]| {
            let start = u32::try_from(buf.len()).ok()?;
            buf.extend_from_slice(b);
            Some((start, u32::try_from(b.len()).ok()?))
        };
        let (options, payload) = (put(self.options)?, put(self.payload)?);
        Some(SegmentAt { head: Segment { options: &[], payload: &[], ..*self }, options, payload })
    }
}

impl SegmentAt {
    /// The segment again, its bytes borrowed from `buf` (the buffer it was relocated for).
    pub fn segment<'a>(&self, buf: &'a [u8]) -> Option<Segment<'a>> {
        let get = |(start, len): (u32, u32)| {
            let start = start as usize;
            buf.get(start..start.checked_add(len as usize)?)
        };
        Some(Segment { options: get(self.options)?, payload: get(self.payload)?, ..self.head })
    }
}

const MAX_FRAGMENT_SETS: usize = 1024;
const MAX_FRAGMENT_BYTES: usize = 65_535 + 64;
const UDP_VXLAN: u16 = 4789;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct FragKey {
    src: IpAddr,
    dst: IpAddr,
    id: u32,
    proto: u8,
}

#[derive(Default)]
struct FragSet {
    /// Payload bytes placed at their offsets.
    data: Vec<u8>,
    /// Byte ranges received, kept sorted and merged.
    have: Vec<(usize, usize)>,
    /// Total length once the last fragment arrived.
    end: Option<usize>,
}

impl FragSet {
    fn add(&mut self, off: usize, more: bool, bytes: &[u8]) -> Result<bool, Skip> {
        let stop = off.checked_add(bytes.len()).ok_or(Skip::BadFragment)?;
        if stop > MAX_FRAGMENT_BYTES {
            return Err(Skip::BadFragment);
        }
        if !more {
            self.end = Some(stop);
        }
        if self.data.len() < stop {
            self.data.resize(stop, 0);
        }
        // First copy wins, as for TCP: only fill what no earlier fragment covered.
        let mut pos = off;
        let mut holes = Vec::new();
        for &(a, b) in &self.have {
            if b <= pos || a >= stop {
                continue;
            }
            if a > pos {
                holes.push((pos, a));
            }
            pos = pos.max(b);
        }
        if pos < stop {
            holes.push((pos, stop));
        }
        for (a, b) in holes {
            if let (Some(dst), Some(src)) = (self.data.get_mut(a..b), bytes.get(a - off..b - off)) {
                dst.copy_from_slice(src);
            }
        }
        self.have.push((off, stop));
        self.have.sort_unstable();
        let mut merged: Vec<(usize, usize)> = Vec::with_capacity(self.have.len());
        for &(a, b) in &self.have {
            match merged.last_mut() {
                Some(last) if a <= last.1 => last.1 = last.1.max(b),
                _ => merged.push((a, b)),
            }
        }
        self.have = merged;
        Ok(matches!((self.end, self.have.as_slice()), (Some(e), [(0, b)]) if *b >= e))
    }
}

/// Stateful decoder: holds IP fragment buffers between packets.
#[derive(Default)]
pub struct Decoder {
    frags: FxHashMap<FragKey, FragSet>,
    frag_order: VecDeque<FragKey>,
    done: Vec<u8>,
}

impl Decoder {
    /// A decoder with no pending fragments.
    pub fn new() -> Self {
        Self::default()
    }

    /// Decodes one frame of link type `linktype` to a TCP segment.
    #[inline]
    pub fn decode<'a>(&'a mut self, linktype: i32, frame: &'a [u8]) -> Result<Segment<'a>, Skip> {
        let mut info = LinkInfo::default();
        let ip = match link::bare_ip(linktype, frame) {
            Some(ip) => ip,
            None => link::to_ip(linktype, frame, &mut info)?,
        };
        self.ip(ip, info, 0)
    }

    /// Inlined (into `decode` and the tunnels' recursion) so that the fast path's segment is
    /// built once, in the caller's place.
    #[inline(always)]
    fn ip<'a>(&'a mut self, ip: &'a [u8], info: LinkInfo, depth: u8) -> Result<Segment<'a>, Skip> {
        match plain_ip(ip) {
            Some((src, dst, body, declared)) => tcp(src, dst, body, declared, info),
            None => self.lax_ip(ip, info, depth),
        }
    }

    /// Every IP packet the fast path declines: options beyond the basic headers, extension
    /// headers, fragments, tunnels, lengths that disagree with the capture.
    #[inline(never)]
    fn lax_ip<'a>(&'a mut self, ip: &'a [u8], mut info: LinkInfo, depth: u8) -> Result<Segment<'a>, Skip> {
        if depth > 8 {
            return Err(Skip::TooDeep);
        }
        let (slice, _ext_err) = LaxIpSlice::from_slice(ip).map_err(|_| Skip::BadIp)?;
        let src = slice.source_addr();
        let dst = slice.destination_addr();
        let payload = slice.payload();
        let proto = payload.ip_number;
        // The payload length the IP header declares, even when snaplen cut the frame.
        let header_len = (payload.payload.as_ptr() as usize).saturating_sub(ip.as_ptr() as usize);
        let declared_total = match &slice {
            LaxIpSlice::Ipv4(v4) => usize::from(v4.header().total_len()),
            LaxIpSlice::Ipv6(v6) => match v6.header().payload_length() {
                0 => ip.len(),
                n => usize::from(n) + 40,
            },
        };
        let declared_payload = declared_total.saturating_sub(header_len);

        if payload.fragmented {
            let (id, off, more) = fragment_fields(&slice).ok_or(Skip::BadFragment)?;
            let key = FragKey { src, dst, id, proto: proto.0 };
            let bytes = payload.payload;
            return self.fragment(key, off, more, bytes, proto, src, dst, info, depth);
        }
        let body = payload.payload;
        match proto {
            IpNumber::TCP => tcp(src, dst, body, declared_payload, info),
            IpNumber::GRE => {
                let inner = link::gre(body, &mut info, depth)?;
                self.ip(inner, info, depth + 1)
            }
            IpNumber::IPV4 | IpNumber::IPV6 => {
                info.encapsulated = true;
                self.ip(body, info, depth + 1)
            }
            IpNumber::UDP => {
                let dport = body.get(2..).and_then(|b| b.first_chunk::<2>()).map(|b| u16::from_be_bytes(*b));
                if dport == Some(UDP_VXLAN) {
                    let inner = link::vxlan(body.get(8..).ok_or(Skip::TruncatedLink)?, &mut info, depth)?;
                    self.ip(inner, info, depth + 1)
                } else {
                    Err(Skip::NotTcp)
                }
            }
            _ => Err(Skip::NotTcp),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn fragment<'a>(
        &'a mut self,
        key: FragKey,
        off: usize,
        more: bool,
        bytes: &[u8],
        proto: IpNumber,
        src: IpAddr,
        dst: IpAddr,
        info: LinkInfo,
        depth: u8,
    ) -> Result<Segment<'a>, Skip> {
        if !self.frags.contains_key(&key) {
            if self.frags.len() >= MAX_FRAGMENT_SETS {
                if let Some(old) = self.frag_order.pop_front() {
                    self.frags.remove(&old);
                }
            }
            self.frag_order.push_back(key.clone());
        }
        let set = self.frags.entry(key.clone()).or_default();
        let complete = match set.add(off, more, bytes) {
            Ok(c) => c,
            Err(e) => {
                self.frags.remove(&key);
                return Err(e);
            }
        };
        if !complete {
            return Err(Skip::FragmentPending);
        }
        let set = self.frags.remove(&key).unwrap_or_default();
        self.frag_order.retain(|k| k != &key);
        let end = set.end.unwrap_or(set.data.len());
        self.done = set.data;
        self.done.truncate(end);
        let body: &[u8] = &self.done;
        match proto {
            IpNumber::TCP => tcp(src, dst, body, body.len(), info),
            _ => {
                let _ = depth;
                Err(Skip::NotTcp)
            }
        }
    }
}

/// The two endpoints of a plain TCP/IP frame (no tunnel, fragment or VLAN), as a quick look
/// ahead: `None` for anything else, which the decoder then handles in full.
#[inline]
pub fn endpoints(linktype: i32, frame: &[u8]) -> Option<((IpAddr, u16), (IpAddr, u16))> {
    let (src, dst, body, _) = plain_ip(link::bare_ip(linktype, frame)?)?;
    let [s0, s1, d0, d1] = *body.first_chunk::<4>()?;
    Some(((src, u16::from_be_bytes([s0, s1])), (dst, u16::from_be_bytes([d0, d1]))))
}

/// The common case, read with etherparse's plain header slices: an unfragmented IPv4 packet or
/// an IPv6 packet without extension headers, carrying TCP, whose length field agrees with what
/// was captured; its addresses, the TCP bytes and their length as the IP header declares it.
/// None hands the packet to the general (lax) path, which decides the same way for these packets
/// (a property test compares the two).
#[inline(always)]
fn plain_ip(ip: &[u8]) -> Option<(IpAddr, IpAddr, &[u8], usize)> {
    match ip.first()? >> 4 {
        4 => {
            let h = etherparse::Ipv4HeaderSlice::from_slice(ip).ok()?;
            let total = usize::from(h.total_len());
            let hl = h.slice().len();
            if h.is_fragmenting_payload() || h.protocol() != IpNumber::TCP || total < hl || total > ip.len() {
                return None;
            }
            let body = ip.get(hl..total)?;
            Some((IpAddr::V4(h.source_addr()), IpAddr::V4(h.destination_addr()), body, total - hl))
        }
        6 => {
            let h = etherparse::Ipv6HeaderSlice::from_slice(ip).ok()?;
            let total = usize::from(h.payload_length()) + 40;
            if h.next_header() != IpNumber::TCP || total == 40 || total > ip.len() {
                return None;
            }
            let body = ip.get(40..total)?;
            Some((IpAddr::V6(h.source_addr()), IpAddr::V6(h.destination_addr()), body, total - 40))
        }
        _ => None,
    }
}

fn fragment_fields(slice: &LaxIpSlice<'_>) -> Option<(u32, usize, bool)> {
    match slice {
        LaxIpSlice::Ipv4(v4) => {
            let h = v4.header();
            Some((u32::from(h.identification()), usize::from(h.fragments_offset().value()) * 8, h.more_fragments()))
        }
        LaxIpSlice::Ipv6(v6) => {
            for ext in v6.extensions().clone().into_iter() {
                if let etherparse::Ipv6ExtensionSlice::Fragment(f) = ext {
                    return Some((
                        f.identification(),
                        usize::from(f.fragment_offset().value()) * 8,
                        f.more_fragments(),
                    ));
                }
            }
            None
        }
    }
}

#[inline(always)]
fn tcp<'a>(src: IpAddr, dst: IpAddr, body: &'a [u8], declared: usize, link: LinkInfo) -> Result<Segment<'a>, Skip> {
    let t = TcpSlice::from_slice(body).map_err(|_| Skip::BadTcp)?;
    let hl = usize::from(t.data_offset()) * 4;
    let wire_len = declared.saturating_sub(hl);
    let payload = t.payload();
    let payload = payload.get(..wire_len.min(payload.len())).unwrap_or(payload);
    Ok(Segment {
        src,
        dst,
        sport: t.source_port(),
        dport: t.destination_port(),
        seq: t.sequence_number(),
        ack: t.acknowledgment_number(),
        flags: TcpFlags { syn: t.syn(), ack: t.ack(), fin: t.fin(), rst: t.rst() },
        window: t.window_size(),
        options: body.get(20..hl).unwrap_or(&[]),
        payload,
        wire_len: u32::try_from(wire_len.max(payload.len())).unwrap_or(u32::MAX),
        link,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ipv4_tcp(payload: &[u8]) -> Vec<u8> {
        let b = etherparse::PacketBuilder::ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64).tcp(40000, 25, 7, 1000);
        let mut out = Vec::new();
        b.write(&mut out, payload).unwrap();
        out
    }

    #[test]
    fn raw_ipv4_tcp_decodes_ports_and_payload() {
        let pkt = ipv4_tcp(b"EHLO x\r\n");
        let mut d = Decoder::new();
        let s = d.decode(link::dlt::RAW, &pkt).unwrap();
        assert_eq!((s.sport, s.dport, s.seq), (40000, 25, 7));
        assert_eq!(s.payload, b"EHLO x\r\n");
        assert_eq!(s.wire_len, 8);
    }

    #[test]
    fn snaplen_cut_keeps_the_wire_length() {
        let pkt = ipv4_tcp(b"EHLO example.org\r\n");
        let mut d = Decoder::new();
        let s = d.decode(link::dlt::RAW, &pkt[..44]).unwrap();
        assert_eq!(s.payload, b"EHLO");
        assert_eq!(s.wire_len, 18);
    }

    #[test]
    fn bad_checksum_is_not_a_reason_to_drop() {
        let mut pkt = ipv4_tcp(b"QUIT\r\n");
        pkt[10] ^= 0xff; // IPv4 header checksum
        pkt[36] ^= 0xff; // TCP checksum
        let mut d = Decoder::new();
        assert!(d.decode(link::dlt::RAW, &pkt).is_ok());
    }

    #[test]
    fn ipv4_fragments_are_reassembled() {
        let whole = ipv4_tcp(b"MAIL FROM:<a@b>\r\n");
        let tcp = &whole[20..];
        let (first, second) = tcp.split_at(24);
        let frag = |off: u16, more: bool, data: &[u8]| {
            let mut h = etherparse::Ipv4Header::new(data.len() as u16, 64, IpNumber::TCP, [10, 0, 0, 1], [10, 0, 0, 2])
                .unwrap();
            h.identification = 99;
            h.more_fragments = more;
            h.fragment_offset = etherparse::IpFragOffset::try_new(off / 8).unwrap();
            let mut out = Vec::new();
            h.write(&mut out).unwrap();
            out.extend_from_slice(data);
            out
        };
        let mut d = Decoder::new();
        assert_eq!(d.decode(link::dlt::RAW, &frag(24, false, second)).unwrap_err(), Skip::FragmentPending);
        let head = frag(0, true, first);
        let s = d.decode(link::dlt::RAW, &head).unwrap();
        assert_eq!(s.payload, b"MAIL FROM:<a@b>\r\n");

        // Handed to another thread: the put-together payload travels in the batch.
        let mut batch = b"earlier segment".to_vec();
        let moved = s.relocate(&mut batch).unwrap().segment(&batch).unwrap();
        assert_eq!((moved.payload, moved.options, moved.seq), (s.payload, s.options, s.seq));
    }

    #[test]
    fn a_relocated_segment_carries_its_options_and_payload_but_not_its_headers() {
        let b = etherparse::PacketBuilder::ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
            .tcp(40000, 25, 7, 1000)
            .options(&[etherparse::TcpOptionElement::MaximumSegmentSize(1460)])
            .unwrap();
        let mut pkt = Vec::new();
        b.write(&mut pkt, b"EHLO x\r\n").unwrap();
        let mut d = Decoder::new();
        let s = d.decode(link::dlt::RAW, &pkt).unwrap();
        let mut batch = vec![0u8; 100];
        let moved = s.relocate(&mut batch).unwrap();
        assert_eq!(batch.len(), 100 + 4 + 8, "four option bytes and the payload, no header");
        let back = moved.segment(&batch).unwrap();
        assert_eq!((back.payload, back.options), (&b"EHLO x\r\n"[..], &[2u8, 4, 0x05, 0xb4][..]));
        assert_eq!((back.sport, back.seq, back.wire_len, back.src), (40000, 7, 8, s.src));
        assert!(moved.segment(&batch[..110]).is_none(), "a buffer without the bytes gives no segment");
    }

    fn ethernet(ethertype: u16, payload: &[u8]) -> Vec<u8> {
        let mut f = vec![0u8; 12];
        f.extend_from_slice(&ethertype.to_be_bytes());
        f.extend_from_slice(payload);
        f
    }

    fn ip_wrapping(proto: u8, inner: &[u8]) -> Vec<u8> {
        let h = etherparse::Ipv4Header::new(inner.len() as u16, 64, IpNumber(proto), [192, 0, 2, 1], [192, 0, 2, 2])
            .unwrap();
        let mut out = Vec::new();
        h.write(&mut out).unwrap();
        out.extend_from_slice(inner);
        out
    }

    #[test]
    fn erspan_type_ii_inside_gre_reaches_the_mirrored_segment() {
        let inner = ethernet(0x0800, &ipv4_tcp(b"EHLO a\r\n"));
        let mut gre = vec![0x10, 0x00, 0x88, 0xbe, 0, 0, 0, 1]; // S bit, ERSPAN II, sequence
        gre.extend_from_slice(&[0x10, 0, 0, 1, 0, 0, 0, 0]); // ERSPAN II header
        gre.extend_from_slice(&inner);
        let frame = ethernet(0x0800, &ip_wrapping(47, &gre));
        let mut d = Decoder::new();
        let s = d.decode(link::dlt::EN10MB, &frame).unwrap();
        assert_eq!(s.payload, b"EHLO a\r\n");
        assert!(s.link.encapsulated);
    }

    #[test]
    fn vxlan_reaches_the_inner_segment() {
        let inner = ethernet(0x0800, &ipv4_tcp(b"QUIT\r\n"));
        let mut vx = vec![0x08, 0, 0, 0, 0, 0, 1, 0];
        vx.extend_from_slice(&inner);
        let b = etherparse::PacketBuilder::ipv4([1, 1, 1, 1], [2, 2, 2, 2], 9).udp(50000, 4789);
        let mut outer = Vec::new();
        b.write(&mut outer, &vx).unwrap();
        let mut d = Decoder::new();
        assert_eq!(d.decode(link::dlt::RAW, &outer).unwrap().payload, b"QUIT\r\n");
    }

    #[test]
    fn pppoe_session_carries_ip() {
        let mut p = vec![0x11, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x21];
        p.extend_from_slice(&ipv4_tcp(b"DATA\r\n"));
        let frame = ethernet(0x8864, &p);
        let mut d = Decoder::new();
        assert_eq!(d.decode(link::dlt::EN10MB, &frame).unwrap().payload, b"DATA\r\n");
    }

    /// The fast path alone: None where it declines the packet.
    fn plain_tcp(ip: &[u8], info: LinkInfo) -> Option<Result<Segment<'_>, Skip>> {
        plain_ip(ip).map(|(src, dst, body, declared)| tcp(src, dst, body, declared, info))
    }

    fn summary(r: Result<Segment<'_>, Skip>) -> String {
        match r {
            Ok(s) => format!(
                "{} {} {} {} {} {} {:?} {:?} {} {:?}",
                s.src, s.dst, s.sport, s.dport, s.seq, s.ack, s.flags, s.payload, s.wire_len, s.link
            ),
            Err(e) => format!("{e:?}"),
        }
    }

    proptest::proptest! {
        #[test]
        fn the_fast_path_decodes_like_the_lax_path(
            v6 in proptest::bool::ANY,
            payload in proptest::collection::vec(proptest::num::u8::ANY, 0..40),
            cut in 0usize..120,
            pad in 0usize..8,
            flips in proptest::collection::vec((0usize..64, proptest::num::u8::ANY), 0..3),
        ) {
            let b = if v6 {
                etherparse::PacketBuilder::ipv6([0xfd; 16], [0xfe; 16], 64).tcp(40000, 25, 7, 1000)
            } else {
                etherparse::PacketBuilder::ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64).tcp(40000, 25, 7, 1000)
            };
            let mut pkt = Vec::new();
            b.write(&mut pkt, &payload).unwrap();
            pkt.extend(std::iter::repeat_n(0u8, pad)); // Ethernet padding
            for (at, x) in flips {
                if let Some(byte) = pkt.get_mut(at) {
                    *byte ^= x;
                }
            }
            pkt.truncate(cut.min(pkt.len()));
            let info = LinkInfo::default();
            if let Some(fast) = plain_tcp(&pkt, info) {
                let fast = summary(fast);
                let lax = summary(Decoder::new().lax_ip(&pkt, info, 0));
                proptest::prop_assert_eq!(fast, lax);
            }
        }
    }

    #[test]
    fn edge_lengths_decode_as_on_the_lax_path() {
        let mut cases = Vec::new();
        let v4 = ipv4_tcp(b"EHLO x\r\n");
        let mut v6 = Vec::new();
        etherparse::PacketBuilder::ipv6([0xfd; 16], [0xfe; 16], 64)
            .tcp(1, 25, 7, 9)
            .write(&mut v6, b"QUIT\r\n")
            .unwrap();
        cases.push(v4.clone());
        cases.push(v6.clone());
        let mut zero_total = v4.clone(); // TSO captures: total length 0
        zero_total[2..4].copy_from_slice(&[0, 0]);
        cases.push(zero_total);
        let mut jumbo = v6.clone(); // IPv6 payload length 0
        jumbo[4..6].copy_from_slice(&[0, 0]);
        cases.push(jumbo);
        let mut padded = v4.clone();
        padded.extend_from_slice(&[0; 6]);
        cases.push(padded);
        cases.push(v4[..v4.len() - 3].to_vec());
        let mut short_total = v4.clone(); // total length inside the IP header
        short_total[2..4].copy_from_slice(&[0, 12]);
        cases.push(short_total);
        for pkt in cases {
            let fast = summary(Decoder::new().decode(link::dlt::RAW, &pkt));
            let lax = summary(Decoder::new().lax_ip(&pkt, LinkInfo::default(), 0));
            assert_eq!(fast, lax, "{pkt:?}");
        }
    }

    #[test]
    fn udp_is_counted_not_tcp() {
        let b = etherparse::PacketBuilder::ipv4([1, 1, 1, 1], [2, 2, 2, 2], 9).udp(53, 53);
        let mut out = Vec::new();
        b.write(&mut out, b"x").unwrap();
        assert_eq!(Decoder::new().decode(link::dlt::RAW, &out).unwrap_err(), Skip::NotTcp);
    }
}
