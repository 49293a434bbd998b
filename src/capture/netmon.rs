//! Microsoft Network Monitor 2.x capture files (`.cap`), read natively.
//!
//! Written from Microsoft's published description of the format (`CAPTUREFILE_HEADER_VALUES`,
//! Netmon.h) and from files that `editcap -F netmon2` writes. All integers are little-endian.
//!
//! - The header: `GMBU`, BCD minor and major version (2.x), the media (MAC) type of the capture,
//!   the capture's start time as a Windows `SYSTEMTIME` (taken as UTC, as Wireshark writes it),
//!   then the offset and length in bytes of the frame table.
//! - The frame table: one 32-bit file offset per frame, in frame order. It sits at the end of
//!   the file, which is why a NetMon capture is read from a file, never from a stream.
//! - A frame: its time as microseconds since the start time (64 bits), its length on the wire
//!   and its captured length (32 bits each), the captured bytes; from version 2.1 on, a trailer
//!   follows whose first 16 bits are the frame's own media type. Version 2.2 adds a 32-bit index
//!   into the process table; version 2.3 adds the frame's time as a Windows `FILETIME` (64 bits,
//!   100 ns units since 1601-01-01 00:00 UTC) and an 8-bit index into the time zone table.
//!
//! Media 1 (Ethernet) and 9 (raw IP) are decoded; frames of any other media (Token Ring, FDDI,
//! 802.11 with NetMon's metadata, NetMon's own event and filter records, …) are handed on with
//! a link type no decoder knows, so the engine counts them as `unsupported-linktype`.
//!
//! Times: the header's start is the capturing machine's local time (Network Monitor writes a
//! `SYSTEMTIME`, which carries no zone), so start plus offset is only right for captures made
//! in UTC. Version 2.3 frames carry their own UTC time, which is used whenever a frame has it;
//! older versions have nothing better than start plus offset, taken as UTC.

use time::{Date, Month, PrimitiveDateTime, Time};

use super::input::Input;
use super::source::{Frame, PacketSource, SourceError};
use super::Micros;

/// libpcap's DLT numbers for the media decoded (capture sits before decode: no import back).
mod dlt {
    pub const EN10MB: i32 = 1;
    pub const RAW: i32 = 12;
}

/// The first four bytes of a NetMon 2.x file.
pub const MAGIC: [u8; 4] = *b"GMBU";
/// The first four bytes of a NetMon 1.x file (not read).
pub const MAGIC_1X: [u8; 4] = *b"RTSS";

const HEADER: usize = 32;
/// Frame header: time offset, wire length, captured length.
const FRAME_HEADER: usize = 16;
/// In a 2.3 trailer: where the frame's UTC `FILETIME` starts (after the media type and the
/// process index).
const TRAILER_UTC: usize = 6;
/// `FILETIME` ticks (100 ns) between 1601-01-01 and 1970-01-01.
const FILETIME_UNIX_EPOCH: u64 = 116_444_736_000_000_000;

/// NetMon media types smtpscope decodes.
const MEDIA_ETHERNET: u16 = 1;
const MEDIA_RAW_IP: u16 = 9;
/// Link types handed on for other media: outside libpcap's DLT numbers, so no decoder or BPF
/// program accepts them.
const UNDECODABLE_BASE: i32 = 0x4e4d_0000;

/// The link type a NetMon media type is read as.
pub fn media_linktype(media: u16) -> i32 {
    match media {
        MEDIA_ETHERNET => dlt::EN10MB,
        MEDIA_RAW_IP => dlt::RAW,
        other => UNDECODABLE_BASE | i32::from(other),
    }
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    b.get(at..)?.first_chunk::<2>().map(|s| u16::from_le_bytes(*s))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    b.get(at..)?.first_chunk::<4>().map(|s| u32::from_le_bytes(*s))
}

fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    b.get(at..)?.first_chunk::<8>().map(|s| u64::from_le_bytes(*s))
}

/// Trailer bytes after each frame's data, by version (major × 10 + minor).
fn trailer_len(version: u16) -> usize {
    match version {
        ..=20 => 0,
        21 => 2,
        22 => 6,
        _ => 15,
    }
}

/// A Windows `FILETIME` as microseconds since the epoch. Zero (no time written) is None: it
/// would be 1601, which no capture is from.
fn filetime_micros(ft: u64) -> Option<Micros> {
    if ft == 0 {
        return None;
    }
    // Below the epoch the difference wraps into a large u64; as i64 it is the right negative.
    Some((ft.wrapping_sub(FILETIME_UNIX_EPOCH) as i64) / 10)
}

/// The capture's start as microseconds since the epoch, from a `SYSTEMTIME` (year, month, day
/// of week, day, hour, minute, second, milliseconds; 16 bits each).
fn start_time(st: &[u8]) -> Option<Micros> {
    let f = |i: usize| u16_at(st, i * 2);
    let date = Date::from_calendar_date(
        i32::from(f(0)?),
        Month::try_from(u8::try_from(f(1)?).ok()?).ok()?,
        u8::try_from(f(3)?).ok()?,
    )
    .ok()?;
    let time =
        Time::from_hms_milli(u8::try_from(f(4)?).ok()?, u8::try_from(f(5)?).ok()?, u8::try_from(f(6)?).ok()?, f(7)?)
            .ok()?;
    let t = PrimitiveDateTime::new(date, time).assume_utc();
    i64::try_from(t.unix_timestamp_nanos() / 1000).ok()
}

/// A NetMon 2.x file, read frame by frame through its frame table.
pub struct Netmon {
    input: Input,
    /// Version as major × 10 + minor (BCD): 20, 21, 22, 23.
    version: u16,
    media: u16,
    start: Micros,
    table: usize,
    frames: usize,
    next: usize,
    consumed: u64,
}

/// Opens a NetMon capture held whole in `input` (a mapped file or bytes in memory).
pub fn open(input: Input) -> Result<Box<dyn PacketSource>, String> {
    Ok(Box::new(Netmon::open(input)?))
}

impl Netmon {
    fn open(input: Input) -> Result<Self, String> {
        let bytes = input.whole_bytes().ok_or("a Network Monitor capture must be a regular file")?;
        let size = bytes.len();
        let head = bytes
            .get(..HEADER)
            .ok_or_else(|| format!("truncated Network Monitor header: {size} bytes, the header alone is {HEADER}"))?;
        if head.get(..4) != Some(MAGIC.as_slice()) {
            return Err("not a Network Monitor 2.x capture".into());
        }
        let bcd = |b: u8| u16::from(b >> 4) * 10 + u16::from(b & 0x0f);
        let (minor, major) = (head.get(4).copied().unwrap_or(0), head.get(5).copied().unwrap_or(0));
        if major != 2 {
            return Err(format!("Network Monitor format version {}.{} is not read (only 2.x)", bcd(major), bcd(minor)));
        }
        let media = u16_at(head, 6).unwrap_or(0);
        let start = start_time(head.get(8..24).unwrap_or_default())
            .ok_or("the Network Monitor header's start time is not a valid date")?;
        let table = u32_at(head, 24).unwrap_or(0) as usize;
        let table_len = u32_at(head, 28).unwrap_or(0) as usize;
        if table.checked_add(table_len).is_none_or(|end| end > size) {
            return Err(format!(
                "the Network Monitor frame table (offset {table}, {table_len} bytes) points past the end of the file ({size} bytes)"
            ));
        }
        Ok(Self {
            version: bcd(major) * 10 + bcd(minor),
            media,
            start,
            table,
            frames: table_len / 4,
            next: 0,
            consumed: HEADER as u64,
            input,
        })
    }
}

impl PacketSource for Netmon {
    fn next_frame(&mut self) -> Result<Option<Frame<'_>>, SourceError> {
        if self.next >= self.frames {
            return Ok(None);
        }
        // The frames read so far are behind the reader: their pages can go (frames are stored in
        // table order; one stored out of order is read back from the file, never lost).
        self.input.release_before(self.consumed as usize);
        let bytes = self.input.whole_bytes().unwrap_or_default();
        let n = self.next + 1;
        self.next += 1;
        let entry = self.table + (n - 1) * 4;
        let at = u32_at(bytes, entry).unwrap_or(0) as usize;
        let past = |what: &str| {
            SourceError::Malformed(format!("frame {n}'s {what} (at offset {at}) lies past the end of the file"))
        };
        let (Some(offset), Some(orig_len), Some(caplen)) =
            (u64_at(bytes, at), u32_at(bytes, at + 8), u32_at(bytes, at + 12))
        else {
            return Err(past("header"));
        };
        let data_at = at + FRAME_HEADER;
        let data = bytes.get(data_at..data_at.saturating_add(caplen as usize)).ok_or_else(|| past("data"))?;
        let trailer = data_at + data.len();
        let media = if self.version >= 21 {
            // The trailer's media type; a frame without one keeps the file's.
            u16_at(bytes, trailer).unwrap_or(self.media)
        } else {
            self.media
        };
        self.consumed = (trailer + trailer_len(self.version)).min(bytes.len()) as u64;
        // 2.3: the frame's own UTC time. Else microseconds past the start; a hostile offset
        // wraps rather than panics.
        let utc =
            if self.version >= 23 { u64_at(bytes, trailer + TRAILER_UTC).and_then(filetime_micros) } else { None };
        let ts = utc.unwrap_or_else(|| self.start.wrapping_add(offset as i64));
        Ok(Some(Frame { ts, data, orig_len, linktype: media_linktype(media), ahead: [&[]; 2] }))
    }

    fn linktype(&self) -> i32 {
        media_linktype(self.media)
    }

    fn position(&self) -> u64 {
        self.consumed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A NetMon 2.`minor` file of `media` with the given frames (offset µs, bytes, trailer media).
    pub(crate) fn build(minor: u8, media: u16, frames: &[(u64, &[u8], Option<u16>)]) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&MAGIC);
        out.extend_from_slice(&[minor, 2]);
        out.extend_from_slice(&media.to_le_bytes());
        // 2026-11-22 11:22:55.844 (a Sunday).
        for v in [2026u16, 11, 0, 22, 11, 22, 55, 844] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out.resize(128, 0);
        let mut offsets = Vec::new();
        for (t, data, m) in frames {
            offsets.push(out.len() as u32);
            out.extend_from_slice(&t.to_le_bytes());
            out.extend_from_slice(&(data.len() as u32).to_le_bytes());
            out.extend_from_slice(&(data.len() as u32).to_le_bytes());
            out.extend_from_slice(data);
            if let Some(m) = m {
                out.extend_from_slice(&m.to_le_bytes());
            }
        }
        let table = out.len() as u32;
        for o in &offsets {
            out.extend_from_slice(&o.to_le_bytes());
        }
        out[24..28].copy_from_slice(&table.to_le_bytes());
        out[28..32].copy_from_slice(&((offsets.len() * 4) as u32).to_le_bytes());
        out
    }

    /// A frame as read: time, bytes, link type.
    type Read = (Micros, Vec<u8>, i32);

    fn read_all(bytes: Vec<u8>) -> (Vec<Read>, Option<String>) {
        let mut src = Netmon::open(Input::owned(bytes)).unwrap();
        let mut out = Vec::new();
        loop {
            match src.next_frame() {
                Ok(Some(f)) => out.push((f.ts, f.data.to_vec(), f.linktype)),
                Ok(None) => return (out, None),
                Err(e) => return (out, Some(e.to_string())),
            }
        }
    }

    const START: Micros = 1_795_346_575_844_000;

    #[test]
    fn frames_come_in_table_order_with_the_header_start_plus_their_offset() {
        let (frames, end) = read_all(build(0, 1, &[(673, b"first", None), (5, b"second", None)]));
        assert_eq!(end, None);
        assert_eq!(frames.len(), 2);
        assert_eq!(frames[0], (START + 673, b"first".to_vec(), dlt::EN10MB));
        assert_eq!(frames[1].0, START + 5, "the table's order is the frames' order, whatever the times");
    }

    #[test]
    fn from_2_1_on_each_frame_names_its_media_and_unknown_media_are_undecodable() {
        let (frames, _) = read_all(build(1, 1, &[(0, b"ip", Some(9)), (1, b"tr", Some(2)), (2, b"eth", Some(1))]));
        let types: Vec<i32> = frames.iter().map(|f| f.2).collect();
        assert_eq!(types, [dlt::RAW, UNDECODABLE_BASE | 2, dlt::EN10MB]);
        // Version 2.0 has no trailer: every frame is the file's media.
        let (frames, _) = read_all(build(0, 9, &[(0, b"ip", None)]));
        assert_eq!(frames[0].2, dlt::RAW);
    }

    #[test]
    fn a_filetime_is_100_ns_ticks_since_1601_utc() {
        assert_eq!(filetime_micros(FILETIME_UNIX_EPOCH), Some(0));
        assert_eq!(filetime_micros(START as u64 * 10 + FILETIME_UNIX_EPOCH + 9), Some(START));
        assert_eq!(filetime_micros(FILETIME_UNIX_EPOCH - 10), Some(-1));
        assert_eq!(filetime_micros(0), None, "no time written");
    }

    #[test]
    fn a_2_3_frame_cut_before_its_utc_time_keeps_the_start_plus_its_offset() {
        // A 2.3 trailer of the media type alone: the file ends inside the trailer.
        let (frames, end) = read_all(build(3, 1, &[(7, b"x", Some(1))]));
        assert_eq!(end, None);
        assert_eq!(frames[0].0, START + 7);
    }

    #[test]
    fn a_frame_table_past_the_end_is_refused_at_open() {
        let mut b = build(0, 1, &[(0, b"x", None)]);
        let len = b.len() as u32;
        b[28..32].copy_from_slice(&(len).to_le_bytes());
        let e = Netmon::open(Input::owned(b)).err().unwrap();
        assert!(e.contains("points past the end"), "{e}");
    }

    #[test]
    fn a_frame_entry_past_the_end_stops_the_read_after_the_frames_before_it() {
        let mut b = build(0, 1, &[(0, b"ok", None), (1, b"gone", None)]);
        let table = u32::from_le_bytes(b[24..28].try_into().unwrap()) as usize;
        b[table + 4..table + 8].copy_from_slice(&u32::MAX.to_le_bytes());
        let (frames, end) = read_all(b);
        assert_eq!(frames.len(), 1);
        assert!(end.unwrap().contains("frame 2"));
    }

    #[test]
    fn a_captured_length_past_the_end_is_an_error_not_a_panic() {
        let mut b = build(0, 1, &[(0, b"data", None)]);
        b[128 + 12..128 + 16].copy_from_slice(&u32::MAX.to_le_bytes());
        let (frames, end) = read_all(b);
        assert!(frames.is_empty());
        assert!(end.is_some());
    }

    #[test]
    fn other_versions_and_bad_dates_are_clear_errors() {
        let mut b = build(0, 1, &[]);
        b[5] = 3;
        assert!(Netmon::open(Input::owned(b)).err().unwrap().contains("3.0"));
        let mut b = build(0, 1, &[]);
        b[10] = 13; // month 13
        assert!(Netmon::open(Input::owned(b)).err().unwrap().contains("start time"));
        assert!(Netmon::open(Input::owned(b"GMBU".to_vec())).err().unwrap().contains("truncated"));
    }
}
