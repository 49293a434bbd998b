//! pcap and pcapng files, parsed with rusticata's `pcap-parser` over an [`Input`] window.
//!
//! What a frame is follows libpcap's savefile reader, so that records do not change with the
//! reader: link types as libpcap maps them (LINKTYPE_RAW is DLT_RAW), timestamps cut to
//! microseconds, a pcap record longer than the file's snapshot length cut to it, frames numbered
//! by every packet record or block in the file. Unlike libpcap, the interfaces of a pcapng file
//! may have different link types (each frame carries its own).

use pcap_parser::pcapng::{
    parse_enhancedpacketblock_be, parse_enhancedpacketblock_le, parse_interfacedescriptionblock_be,
    parse_interfacedescriptionblock_le, parse_sectionheaderblock, parse_simplepacketblock_be,
    parse_simplepacketblock_le,
};
use pcap_parser::{parse_pcap_frame, parse_pcap_frame_be, parse_pcap_frame_modified, parse_pcap_header};

use super::input::{Input, MAX_RECORD};
use super::source::{Frame, PacketSource, Reader, SourceError};
use super::Micros;

/// libpcap's largest snapshot length for the link types smtpscope reads.
pub const MAX_SNAPLEN: u32 = 262_144;

const SHB: u32 = 0x0A0D_0D0A;
const IDB: u32 = 0x0000_0001;
/// The obsolete Packet Block, which libpcap still reads.
const OLD_PB: u32 = 0x0000_0002;
const SPB: u32 = 0x0000_0003;
const EPB: u32 = 0x0000_0006;
const BOM: u32 = 0x1A2B_3C4D;

/// The libpcap DLT for a link type as stored in a file (libpcap's `linktype_to_dlt`, for the
/// values whose numbers differ).
pub fn linktype_to_dlt(linktype: i32) -> i32 {
    match linktype {
        100 => 11, // ATM_RFC1483
        101 => 12, // RAW
        102 => 15, // SLIP_BSDOS
        103 => 16, // PPP_BSDOS
        106 => 19, // ATM_CLIP
        other => other,
    }
}

fn short(what: &str, wanted: usize, got: usize) -> SourceError {
    SourceError::Truncated(format!("truncated capture file; tried to read {wanted} {what} bytes, only got {got}"))
}

fn u32_at(b: &[u8], at: usize, be: bool) -> Option<u32> {
    let s = *b.get(at..)?.first_chunk::<4>()?;
    Some(if be { u32::from_be_bytes(s) } else { u32::from_le_bytes(s) })
}

/// Microseconds from seconds and microseconds, wrapping where a hostile file would overflow.
fn micros(sec: i64, usec: i64) -> Micros {
    sec.wrapping_mul(1_000_000).wrapping_add(usec)
}

/// Whether `magic` (the first four bytes, little-endian) opens a pcap or pcapng file.
pub fn is_pcap_magic(magic: [u8; 4]) -> bool {
    matches!(
        u32::from_le_bytes(magic),
        0xa1b2_c3d4 | 0xd4c3_b2a1 | 0xa1b2_3c4d | 0x4d3c_b2a1 | 0xa1b2_cd34 | 0x34cd_b2a1 | SHB
    )
}

/// Opens a pcap or pcapng file whose first bytes are in `input`.
pub fn open(mut input: Input) -> Result<Reader, String> {
    let n = input.fill(4).map_err(|e| e.to_string())?;
    let magic = input.window().first_chunk::<4>().copied().ok_or_else(|| "empty file".to_string())?;
    if n >= 4 && u32::from_le_bytes(magic) == SHB {
        Ok(Reader::Other(Box::new(Pcapng::open(input)?)))
    } else {
        Ok(Reader::Pcap(Legacy::open(input)?))
    }
}

/// A classic pcap file.
pub struct Legacy {
    input: Input,
    big_endian: bool,
    nanos: bool,
    /// Record header length: 16, or 24 in the "modified" (Kuznetzov) format.
    header: usize,
    snapshot: u32,
    linktype: i32,
    /// Bytes of the last frame returned, consumed at the next call.
    pending: usize,
}

impl Legacy {
    fn open(mut input: Input) -> Result<Self, String> {
        let n = input.fill(24).map_err(|e| e.to_string())?;
        if n < 24 {
            return Err(format!("truncated capture file; tried to read 24 file header bytes, only got {n}"));
        }
        let h = match parse_pcap_header(input.window()) {
            Ok((_, h)) => h,
            Err(_)
                if u32::from_le_bytes(input.window().first_chunk::<4>().copied().unwrap_or_default())
                    == 0x34cd_b2a1 =>
            {
                return Err("big-endian \"modified\" pcap files are not supported".into())
            }
            Err(_) => return Err("unknown file format".into()),
        };
        if h.version_major != 2 && h.version_major != 543 {
            return Err(format!("unsupported pcap savefile version {}.{}", h.version_major, h.version_minor));
        }
        let snapshot = if h.snaplen == 0 || h.snaplen > MAX_SNAPLEN { MAX_SNAPLEN } else { h.snaplen };
        let legacy = Self {
            big_endian: h.is_bigendian(),
            nanos: h.is_nanosecond_precision(),
            header: if h.is_modified_format() { 24 } else { 16 },
            snapshot,
            // The upper bits carry the FCS length, not the link type.
            linktype: linktype_to_dlt(h.network.0 & 0x03ff_ffff),
            pending: 0,
            input,
        };
        let mut legacy = legacy;
        legacy.input.consume(24);
        Ok(legacy)
    }
}

impl Legacy {
    /// Makes the window hold the next whole record when the input has it, as libpcap reads
    /// it: the window's length (`Ok(None)` at a clean end), or why the file ends here.
    /// Out of line: the window nearly always holds the record already.
    #[cold]
    #[inline(never)]
    fn fill_record(&mut self) -> Result<Option<usize>, SourceError> {
        let hl = self.header;
        let n = self.input.fill(hl)?;
        if n == 0 {
            return Ok(None);
        }
        if n < hl {
            return Err(short("header", hl, n));
        }
        let caplen = u32_at(self.input.window(), 8, self.big_endian).unwrap_or(0);
        if caplen > MAX_SNAPLEN {
            return Err(SourceError::Malformed(format!(
                "invalid packet capture length {caplen}, bigger than maximum of {MAX_SNAPLEN}"
            )));
        }
        Ok(Some(self.input.fill(hl + caplen as usize)?))
    }
}

/// The captured bytes of the record `b` starts with and the record's whole length, if `b` holds
/// all of it (`hl`: the record header's length).
fn record_in(b: &[u8], hl: usize, big_endian: bool) -> Option<(&[u8], usize)> {
    let end = hl.checked_add(u32_at(b, 8, big_endian)? as usize)?;
    Some((b.get(hl..end)?, end))
}

impl PacketSource for Legacy {
    #[inline(always)]
    fn next_frame(&mut self) -> Result<Option<Frame<'_>>, SourceError> {
        self.input.consume(std::mem::take(&mut self.pending));
        let hl = self.header;
        // One look at the record's length tells whether the window holds all of it (and that
        // the length is allowed); only otherwise is the input read and the length judged.
        let w = self.input.window();
        let ready = record_in(w, hl, self.big_endian).is_some_and(|(data, _)| data.len() <= MAX_SNAPLEN as usize);
        if !ready && self.fill_record()?.is_none() {
            return Ok(None);
        }
        let window = self.input.window();
        let parsed = match (hl, self.big_endian) {
            (24, _) => parse_pcap_frame_modified(window),
            (_, true) => parse_pcap_frame_be(window),
            (_, false) => parse_pcap_frame(window),
        };
        let block = match parsed {
            Ok((_, b)) => b,
            Err(_) => {
                let caplen = u32_at(window, 8, self.big_endian).unwrap_or(0);
                return Err(short("captured", caplen as usize, window.len().saturating_sub(hl)));
            }
        };
        let frac = if self.nanos { block.ts_usec / 1000 } else { block.ts_usec };
        let ts = micros(i64::from(block.ts_sec), i64::from(frac));
        // A record longer than the file's snapshot length: libpcap keeps the snapshot's bytes.
        let keep = block.data.len().min(self.snapshot as usize);
        let data = block.data.get(..keep).unwrap_or_default();
        self.pending = hl + block.data.len();
        // The next two records, as far as the window holds them whole.
        let after = window.get(self.pending..).unwrap_or_default();
        let (next, len) = record_in(after, hl, self.big_endian).unwrap_or_default();
        let (next2, _) = after.get(len..).and_then(|a| record_in(a, hl, self.big_endian)).unwrap_or_default();
        Ok(Some(Frame { ts, data, orig_len: block.origlen, linktype: self.linktype, ahead: [next, next2] }))
    }

    fn linktype(&self) -> i32 {
        self.linktype
    }

    fn position(&self) -> u64 {
        self.input.position()
    }
}

/// One interface of a pcapng section.
#[derive(Debug, Clone, Copy)]
struct Interface {
    linktype: i32,
    /// Timestamp units per second.
    units: u64,
    /// Seconds added to every timestamp.
    offset: i64,
    snaplen: u32,
}

/// A pcapng file.
pub struct Pcapng {
    input: Input,
    big_endian: bool,
    interfaces: Vec<Interface>,
    linktype: i32,
    pending: usize,
}

/// What one block held, owned, so that the window can move on.
enum Seen {
    Packet { at: usize, len: usize, ts: Micros, orig_len: u32, linktype: i32 },
    Other,
}

impl Pcapng {
    fn open(input: Input) -> Result<Self, String> {
        let mut ng = Self { input, big_endian: false, interfaces: Vec::new(), linktype: 1, pending: 0 };
        // libpcap needs the first interface before any packet: read up to it, so that the link
        // type is known for the BPF filter. Blocks before it carry no packets.
        loop {
            let Some(len) = ng.block().map_err(|e| e.to_string())? else {
                return Err("the capture file has no Interface Description Blocks".into());
            };
            match ng.parse(len).map_err(|e| e.to_string())? {
                Seen::Packet { .. } => {
                    return Err("a packet arrived before any Interface Description Block".into());
                }
                Seen::Other => {
                    ng.pending = len;
                    if let Some(first) = ng.interfaces.first() {
                        ng.linktype = first.linktype;
                        return Ok(ng);
                    }
                }
            }
        }
    }

    /// Makes the next whole block the window's start; its length, or `None` at a clean end.
    fn block(&mut self) -> Result<Option<usize>, SourceError> {
        self.input.consume(std::mem::take(&mut self.pending));
        let n = self.input.fill(12)?;
        if n == 0 {
            return Ok(None);
        }
        if n < 12 {
            return Err(short("block header", 12, n));
        }
        let w = self.input.window();
        let kind = u32_at(w, 0, false).unwrap_or(0);
        if kind == SHB {
            // A new section may change the byte order.
            self.big_endian = match u32_at(w, 8, false) {
                Some(BOM) => false,
                Some(b) if b == BOM.swap_bytes() => true,
                _ => return Err(SourceError::Malformed("pcapng section header with a bad byte-order magic".into())),
            };
        }
        let len = u32_at(w, 4, self.big_endian).unwrap_or(0) as usize;
        if len < 12 || len % 4 != 0 || len > MAX_RECORD {
            return Err(SourceError::Malformed(format!("pcapng block of invalid length {len}")));
        }
        let n = self.input.fill(len)?;
        if n < len {
            return Err(short("block", len, n));
        }
        Ok(Some(len))
    }

    /// Parses the block of `len` bytes at the window's start.
    fn parse(&mut self, len: usize) -> Result<Seen, SourceError> {
        let w = self.input.window();
        let block = w.get(..len).unwrap_or_default();
        let be = self.big_endian;
        let bad = |what: &str| SourceError::Malformed(format!("malformed pcapng {what} block"));
        let kind = u32_at(block, 0, be).unwrap_or(0);
        let (ts_ticks, if_id, data, orig_len) = match kind {
            SHB => {
                parse_sectionheaderblock(block).map_err(|_| bad("section header"))?;
                self.interfaces.clear();
                return Ok(Seen::Other);
            }
            IDB => {
                let idb = if be {
                    parse_interfacedescriptionblock_be(block)
                } else {
                    parse_interfacedescriptionblock_le(block)
                }
                .map_err(|_| bad("interface description"))?
                .1;
                let units = idb.ts_resolution().ok_or_else(|| bad("interface description (if_tsresol)"))?;
                let snaplen = if idb.snaplen == 0 || idb.snaplen > MAX_SNAPLEN { MAX_SNAPLEN } else { idb.snaplen };
                self.interfaces.push(Interface {
                    linktype: linktype_to_dlt(idb.linktype.0),
                    units,
                    offset: idb.ts_offset(),
                    snaplen,
                });
                return Ok(Seen::Other);
            }
            EPB => {
                let epb = if be { parse_enhancedpacketblock_be(block) } else { parse_enhancedpacketblock_le(block) }
                    .map_err(|_| bad("enhanced packet"))?
                    .1;
                let data = epb.data.get(..epb.caplen as usize).ok_or_else(|| bad("enhanced packet"))?;
                let ticks = (u64::from(epb.ts_high) << 32) | u64::from(epb.ts_low);
                (Some(ticks), epb.if_id, data, epb.origlen)
            }
            SPB => {
                let spb = if be { parse_simplepacketblock_be(block) } else { parse_simplepacketblock_le(block) }
                    .map_err(|_| bad("simple packet"))?
                    .1;
                let snaplen = self.interfaces.first().map_or(MAX_SNAPLEN, |i| i.snaplen) as usize;
                let keep = (spb.origlen as usize).min(spb.data.len()).min(snaplen);
                (None, 0, spb.data.get(..keep).unwrap_or_default(), spb.origlen)
            }
            OLD_PB => {
                // Interface (16 bits), drops (16 bits), timestamp, captured and wire lengths.
                let if_id = u32_at(block, 8, be).map(|v| if be { v >> 16 } else { v & 0xffff });
                let (Some(if_id), Some(hi), Some(lo), Some(caplen), Some(orig)) =
                    (if_id, u32_at(block, 12, be), u32_at(block, 16, be), u32_at(block, 20, be), u32_at(block, 24, be))
                else {
                    return Err(bad("packet"));
                };
                let data = block.get(28..28 + caplen as usize).filter(|_| 28 + caplen as usize + 4 <= len);
                (Some((u64::from(hi) << 32) | u64::from(lo)), if_id, data.ok_or_else(|| bad("packet"))?, orig)
            }
            _ => return Ok(Seen::Other),
        };
        let iface = self.interfaces.get(if_id as usize).copied().ok_or_else(|| {
            SourceError::Malformed(format!(
                "a packet arrived on interface {if_id}, but there's no Interface Description Block for that interface"
            ))
        })?;
        if data.len() > MAX_SNAPLEN as usize {
            return Err(SourceError::Malformed(format!(
                "invalid packet capture length {}, bigger than maximum of {MAX_SNAPLEN}",
                data.len()
            )));
        }
        let ts = match ts_ticks {
            Some(t) => {
                let sec = (t / iface.units) as i64;
                let frac = t % iface.units;
                let usec = if iface.units == 1_000_000 {
                    frac
                } else {
                    (u128::from(frac) * 1_000_000 / u128::from(iface.units)) as u64
                };
                micros(sec.wrapping_add(iface.offset), usec as i64)
            }
            None => 0,
        };
        let at = (data.as_ptr() as usize).wrapping_sub(w.as_ptr() as usize);
        Ok(Seen::Packet { at, len: data.len(), ts, orig_len, linktype: iface.linktype })
    }
}

impl PacketSource for Pcapng {
    fn next_frame(&mut self) -> Result<Option<Frame<'_>>, SourceError> {
        loop {
            let Some(len) = self.block()? else { return Ok(None) };
            let seen = self.parse(len)?;
            self.pending = len;
            if let Seen::Packet { at, len, ts, orig_len, linktype } = seen {
                let data = self.input.window().get(at..at + len).unwrap_or_default();
                return Ok(Some(Frame { ts, data, orig_len, linktype, ahead: [&[]; 2] }));
            }
        }
    }

    fn linktype(&self) -> i32 {
        self.linktype
    }

    fn position(&self) -> u64 {
        self.input.position()
    }
}
