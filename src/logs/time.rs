//! Log timestamps: ISO 8601 / RFC 3339 (Exchange's UTC `...Z`, rsyslog, `journalctl -o
//! short-iso`) parsed by hand on the hot path, and classic syslog (`Dec  7 01:40:00`, no year, no
//! zone) turned into UTC with jiff's time-zone database, cached per minute.

use jiff::civil::DateTime;
use jiff::tz::{AmbiguousOffset, TimeZone};

use crate::capture::Micros;

/// Days from 1970-01-01 to a civil date (proleptic Gregorian).
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (i64::from(m) + 9) % 12;
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn digits(b: &[u8]) -> Option<u32> {
    if b.is_empty() || b.len() > 9 {
        return None;
    }
    let mut v = 0u32;
    for &c in b {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v * 10 + u32::from(c - b'0');
    }
    Some(v)
}

/// Parses `YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM|±HHMM)` at the start of `s`; returns the time and
/// the bytes used.
pub fn parse_iso(s: &[u8]) -> Option<(Micros, usize)> {
    let y = digits(s.get(0..4)?)?;
    let mo = digits(s.get(5..7)?)?;
    let d = digits(s.get(8..10)?)?;
    let h = digits(s.get(11..13)?)?;
    let mi = digits(s.get(14..16)?)?;
    let sec = digits(s.get(17..19)?)?;
    if s.get(4) != Some(&b'-') || s.get(7) != Some(&b'-') || !matches!(s.get(10), Some(b'T' | b' ')) {
        return None;
    }
    if s.get(13) != Some(&b':') || s.get(16) != Some(&b':') {
        return None;
    }
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let mut i = 19;
    let mut micros = 0i64;
    if s.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while s.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        let frac = s.get(start..i)?;
        if frac.is_empty() {
            return None;
        }
        let mut v = 0i64;
        for k in 0..6 {
            v = v * 10 + frac.get(k).map_or(0, |c| i64::from(c - b'0'));
        }
        micros = v;
    }
    let offset_secs: i64 = match s.get(i) {
        Some(b'Z' | b'z') => {
            i += 1;
            0
        }
        Some(&sign @ (b'+' | b'-')) => {
            let oh = digits(s.get(i + 1..i + 3)?)?;
            let (om, used) = if s.get(i + 3) == Some(&b':') {
                (digits(s.get(i + 4..i + 6)?)?, 6)
            } else {
                (digits(s.get(i + 3..i + 5)?)?, 5)
            };
            i += used;
            let v = i64::from(oh * 3600 + om * 60);
            if sign == b'-' {
                -v
            } else {
                v
            }
        }
        _ => return None,
    };
    let days = days_from_civil(i64::from(y), mo, d);
    let secs = days * 86_400 + i64::from(h * 3600 + mi * 60 + sec) - offset_secs;
    Some((secs * 1_000_000 + micros, i))
}

const MONTHS: [&[u8; 3]; 12] =
    [b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec"];

/// A classic syslog stamp's fields (`Dec  7 01:40:00`, `Dec 07 01:40:17`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Classic {
    /// 1–12.
    pub month: u32,
    /// 1–31.
    pub day: u32,
    /// 0–23.
    pub hour: u32,
    /// 0–59.
    pub minute: u32,
    /// 0–60.
    pub second: u32,
    /// Fraction, in microseconds (high-precision stamps).
    pub micros: u32,
}

/// Parses a classic syslog stamp at the start of `s`; returns it and the bytes used.
pub fn parse_classic(s: &[u8]) -> Option<(Classic, usize)> {
    let mon = s.get(0..3)?;
    let month = MONTHS.iter().position(|m| m.as_slice() == mon)? as u32 + 1;
    if s.get(3) != Some(&b' ') {
        return None;
    }
    let (day, at) = match (s.get(4)?, s.get(5)?) {
        (b' ', d) if d.is_ascii_digit() => (u32::from(d - b'0'), 6),
        (a, b) if a.is_ascii_digit() && b.is_ascii_digit() => (u32::from(a - b'0') * 10 + u32::from(b - b'0'), 6),
        (a, b' ') if a.is_ascii_digit() => (u32::from(a - b'0'), 5),
        _ => return None,
    };
    if s.get(at) != Some(&b' ') {
        return None;
    }
    let t = s.get(at + 1..at + 9)?;
    if t.get(2) != Some(&b':') || t.get(5) != Some(&b':') {
        return None;
    }
    let (hour, minute, second) = (digits(t.get(0..2)?)?, digits(t.get(3..5)?)?, digits(t.get(6..8)?)?);
    if !(1..=31).contains(&day) || hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let mut i = at + 9;
    let mut micros = 0u32;
    if s.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while s.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        let frac = s.get(start..i).unwrap_or_default();
        for k in 0..6 {
            micros = micros * 10 + frac.get(k).map_or(0, |c| u32::from(c - b'0'));
        }
    }
    Some((Classic { month, day, hour, minute, second, micros }, i))
}

/// (year, month, day, hour, minute) of a local time.
type MinuteKey = (i16, u32, u32, u32, u32);

/// Turns classic stamps of one file into UTC: the year starts from a reference time and goes up
/// when the month goes back; a repeated DST hour takes the earlier offset (counted as a warning).
#[derive(Debug)]
pub struct ClassicClock {
    tz: TimeZone,
    year: Option<i16>,
    reference: Option<(i16, u32)>,
    last_month: u32,
    /// (year, month, day, hour, minute) → UTC seconds of that minute's start, and whether the
    /// local time was ambiguous or skipped.
    cache: Option<(MinuteKey, i64, ClockNote)>,
}

/// What a conversion noticed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClockNote {
    /// Nothing.
    None,
    /// A repeated (DST) hour: the earlier offset was taken.
    Ambiguous,
    /// A skipped (DST) hour: the time does not exist locally; the offset before the gap was used.
    Skipped,
}

impl ClassicClock {
    /// A clock for zone `tz`; `reference` is a time inside the log (capture start or mtime).
    pub fn new(tz: TimeZone, reference: Option<Micros>) -> Self {
        let reference = reference.and_then(|r| {
            let ts = jiff::Timestamp::from_microsecond(r).ok()?;
            let dt = tz.to_datetime(ts);
            Some((dt.year(), dt.month() as u32))
        });
        Self { tz, year: None, reference, last_month: 0, cache: None }
    }

    /// UTC microseconds of a classic stamp.
    pub fn to_utc(&mut self, c: Classic) -> Option<(Micros, ClockNote)> {
        let year = match self.year {
            Some(y) if c.month < self.last_month => {
                let y = y.checked_add(1)?;
                self.year = Some(y);
                y
            }
            Some(y) => y,
            None => {
                let (ry, rm) = self.reference.unwrap_or((1970, 1));
                // A log that starts in a later month than its reference began the year before.
                let y = if c.month > rm { ry - 1 } else { ry };
                self.year = Some(y);
                y
            }
        };
        self.last_month = c.month;
        let key = (year, c.month, c.day, c.hour, c.minute);
        let (minute_start, note) = match self.cache {
            Some((k, v, n)) if k == key => (v, n),
            _ => {
                let dt = DateTime::new(year, c.month as i8, c.day as i8, c.hour as i8, c.minute as i8, 0, 0).ok()?;
                let amb = self.tz.to_ambiguous_timestamp(dt);
                let (ts, note) = match amb.offset() {
                    AmbiguousOffset::Unambiguous { .. } => (amb.compatible().ok()?, ClockNote::None),
                    AmbiguousOffset::Fold { .. } => (amb.earlier().ok()?, ClockNote::Ambiguous),
                    AmbiguousOffset::Gap { .. } => (amb.earlier().ok()?, ClockNote::Skipped),
                };
                let v = ts.as_second();
                self.cache = Some((key, v, note));
                (v, note)
            }
        };
        Some(((minute_start + i64::from(c.second)) * 1_000_000 + i64::from(c.micros), note))
    }
}

/// Parses an Exchange `date-time` (`2023-01-11T15:59:51.433Z`).
pub fn parse_exchange(s: &[u8]) -> Option<Micros> {
    let (t, used) = parse_iso(s)?;
    (used == s.len()).then_some(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_forms() {
        assert_eq!(parse_exchange(b"1970-01-01T00:00:01.5Z"), Some(1_500_000));
        assert_eq!(
            parse_iso(b"2026-12-07T01:40:00.123456+01:00 x").unwrap().0,
            parse_iso(b"2026-12-07T00:40:00.123456Z").unwrap().0
        );
        assert_eq!(
            parse_iso(b"2026-12-07T01:40:00+0100 h").unwrap(),
            (parse_iso(b"2026-12-07T00:40:00Z").unwrap().0, 24)
        );
        assert_eq!(parse_iso(b"2026-13-07T01:40:00Z"), None);
        assert_eq!(parse_iso(b"2026-12-07T01:40"), None);
    }

    #[test]
    fn classic_stamps_space_and_zero_padded() {
        let (c, used) = parse_classic(b"Dec  7 01:40:00 host").unwrap();
        assert_eq!((c.month, c.day, c.hour, used), (12, 7, 1, 15));
        let (c, _) = parse_classic(b"Dec 07 01:40:17 mail").unwrap();
        assert_eq!((c.day, c.second), (7, 17));
        assert!(parse_classic(b"Foo  7 01:40:00 x").is_none());
    }

    fn micros(s: &str) -> Micros {
        parse_iso(s.as_bytes()).unwrap().0
    }

    #[test]
    fn the_year_comes_from_the_reference_and_goes_up_when_the_month_goes_back() {
        let tz = TimeZone::get("Europe/Berlin").unwrap();
        let mut clock = ClassicClock::new(tz, Some(micros("2027-01-02T00:00:00Z")));
        let (dec, _) = parse_classic(b"Dec 31 23:59:00 ").unwrap();
        let (jan, _) = parse_classic(b"Jan  1 00:01:00 ").unwrap();
        assert_eq!(clock.to_utc(dec).unwrap().0, micros("2026-12-31T22:59:00Z"));
        assert_eq!(clock.to_utc(jan).unwrap().0, micros("2026-12-31T23:01:00Z"));
    }

    #[test]
    fn a_repeated_dst_hour_takes_the_earlier_offset_with_a_warning() {
        let tz = TimeZone::get("Europe/Berlin").unwrap();
        let mut clock = ClassicClock::new(tz, Some(micros("2026-10-25T12:00:00Z")));
        let (c, _) = parse_classic(b"Oct 25 02:30:00 ").unwrap();
        let (t, note) = clock.to_utc(c).unwrap();
        assert_eq!(t, micros("2026-10-25T00:30:00Z"));
        assert_eq!(note, ClockNote::Ambiguous);
    }
}
