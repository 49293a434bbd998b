//! Front-end independent reporting: record formats (NDJSON, CSV, table), the run summary, and
//! the helpers they share.

pub mod csv;
pub mod escape;
pub mod json;
pub mod pairs;
pub mod summary;
pub mod table;

use std::io::{self, Write};
use std::net::{IpAddr, SocketAddr};

use base64::Engine as _;
use sha1::Digest as _;

use crate::capture::Micros;
use crate::session::Session;

/// Output format of the report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Fixed-width table.
    Table,
    /// One JSON object per session.
    Json,
    /// CSV with a header row.
    Csv,
}

/// What the writers may show.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// Colour the table (terminal and `NO_COLOR` unset).
    pub color: bool,
    /// Print envelope addresses in full (otherwise only their domains).
    pub show_addresses: bool,
    /// Flush after every record, so a reader of a pipe sees each session as it ends (live
    /// capture); otherwise output is written in large blocks (files: a syscall per record costs
    /// more than the record).
    pub line_buffered: bool,
}

/// A streaming writer of session records.
pub trait RecordWriter {
    /// Writes one session.
    fn write(&mut self, s: &Session) -> io::Result<()>;
    /// Flushes at the end.
    fn finish(&mut self) -> io::Result<()>;
}

/// A writer for `format` over `out`.
pub fn writer<'a>(format: Format, out: Box<dyn Write + 'a>, opts: Options) -> Box<dyn RecordWriter + 'a> {
    match format {
        Format::Json => Box::new(json::Writer::new(out, opts)),
        Format::Csv => Box::new(csv::Writer::new(out, opts)),
        Format::Table => Box::new(table::Writer::new(out, opts)),
    }
}

/// `ip:port`, IPv6 as `[addr]:port`.
pub fn endpoint(a: SocketAddr) -> String {
    let mut v = Vec::with_capacity(24);
    push_endpoint(&mut v, a);
    String::from_utf8(v).unwrap_or_default()
}

/// [`endpoint`] appended to `out`.
pub fn push_endpoint(out: &mut Vec<u8>, a: SocketAddr) {
    match a {
        SocketAddr::V4(v4) => {
            let mut n = itoa::Buffer::new();
            for (i, o) in v4.ip().octets().into_iter().enumerate() {
                if i > 0 {
                    out.push(b'.');
                }
                out.extend_from_slice(n.format(o).as_bytes());
            }
            out.push(b':');
            out.extend_from_slice(n.format(v4.port()).as_bytes());
        }
        SocketAddr::V6(_) => {
            let _ = write!(out, "{a}");
        }
    }
}

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

/// RFC 3339 UTC with microseconds.
pub fn rfc3339(t: Micros) -> String {
    let mut v = Vec::with_capacity(27);
    push_rfc3339(&mut v, t);
    String::from_utf8(v).unwrap_or_default()
}

fn push_digits(out: &mut Vec<u8>, v: u32, width: usize) {
    let mut d = [b'0'; 10];
    let mut v = v;
    for slot in d.iter_mut().rev() {
        *slot = b'0' + (v % 10) as u8;
        v /= 10;
    }
    out.extend_from_slice(d.get(10 - width..).unwrap_or_default());
}

/// [`rfc3339`] appended to `out`.
pub fn push_rfc3339(out: &mut Vec<u8>, t: Micros) {
    let secs = t.div_euclid(1_000_000);
    let us = t.rem_euclid(1_000_000);
    match time::OffsetDateTime::from_unix_timestamp(secs) {
        Ok(d) if (0..=9999).contains(&d.year()) => {
            push_digits(out, d.year() as u32, 4);
            out.push(b'-');
            push_digits(out, u32::from(u8::from(d.month())), 2);
            out.push(b'-');
            push_digits(out, u32::from(d.day()), 2);
            out.push(b'T');
            push_digits(out, u32::from(d.hour()), 2);
            out.push(b':');
            push_digits(out, u32::from(d.minute()), 2);
            out.push(b':');
            push_digits(out, u32::from(d.second()), 2);
            out.push(b'.');
            push_digits(out, us as u32, 6);
            out.push(b'Z');
        }
        Ok(d) => push_utc(out, d, Some(us)),
        Err(_) => {
            let _ = write!(out, "@{t}us");
        }
    }
}

/// `YYYY-MM-DDTHH:MM:SS`, `.ffffff` when `us` is given, `Z`: for any year (the fast path above
/// only writes four-digit ones).
fn push_utc(out: &mut Vec<u8>, d: time::OffsetDateTime, us: Option<i64>) {
    let (month, day, hour, minute, second) = (u8::from(d.month()), d.day(), d.hour(), d.minute(), d.second());
    let _ = write!(out, "{:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}", d.year());
    if let Some(us) = us {
        let _ = write!(out, ".{us:06}");
    }
    out.push(b'Z');
}

/// RFC 3339 UTC, whole seconds.
pub fn rfc3339_secs(t: i64) -> String {
    match time::OffsetDateTime::from_unix_timestamp(t) {
        Ok(d) => {
            let mut out = Vec::with_capacity(20);
            push_utc(&mut out, d, None);
            String::from_utf8_lossy(&out).into_owned()
        }
        Err(_) => format!("@{t}"),
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

    #[test]
    fn timestamps_are_utc_microseconds() {
        assert_eq!(rfc3339(1_000_000_123_456), "1970-01-12T13:46:40.123456Z");
        assert_eq!(rfc3339(-1), "1969-12-31T23:59:59.999999Z");
        assert_eq!(rfc3339(i64::MAX), format!("@{}us", i64::MAX));
    }

    #[test]
    fn endpoints_print_as_socket_addresses() {
        for a in ["10.0.0.1:25", "255.255.255.255:65535", "0.0.0.0:0", "[fd00::1]:587", "[::ffff:1.2.3.4]:25"] {
            let a: SocketAddr = a.parse().unwrap();
            assert_eq!(endpoint(a), a.to_string());
        }
    }
}
