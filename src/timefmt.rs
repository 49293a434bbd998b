//! RFC 3339 timestamps in UTC, as every record, evidence text and summary writes them.

use std::io::Write as _;

use crate::capture::Micros;

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
    fn timestamps_are_utc_microseconds() {
        assert_eq!(rfc3339(1_000_000_123_456), "1970-01-12T13:46:40.123456Z");
        assert_eq!(rfc3339(-1), "1969-12-31T23:59:59.999999Z");
        assert_eq!(rfc3339(i64::MAX), format!("@{}us", i64::MAX));
    }
}
