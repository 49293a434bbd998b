//! strftime names for files that rotate (`--output`, `-w` with `-G`): the common fields, in UTC.

use thiserror::Error;

/// A strftime field smtpscope does not know.
#[derive(Debug, Error, PartialEq, Eq)]
#[error("unknown strftime field %{0} in '{1}' (known: %Y %y %m %d %H %M %S %j %s %F %T %%)")]
pub struct BadPattern(pub char, pub String);

/// Whether `pattern` holds strftime fields (`%%` alone is not one).
pub fn has_fields(pattern: &str) -> bool {
    let mut it = pattern.chars();
    while let Some(c) = it.next() {
        if c == '%' && it.next().is_some_and(|n| n != '%') {
            return true;
        }
    }
    false
}

/// Checks every field of `pattern` is one [`strftime`] knows.
pub fn check_pattern(pattern: &str) -> Result<(), BadPattern> {
    strftime(pattern, 0).map(|_| ())
}

/// `pattern` with its strftime fields filled in for `secs` since the epoch, in UTC.
pub fn strftime(pattern: &str, secs: i64) -> Result<String, BadPattern> {
    let t = time::OffsetDateTime::from_unix_timestamp(secs).unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let mut out = String::with_capacity(pattern.len() + 16);
    let mut it = pattern.chars();
    while let Some(c) = it.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let Some(f) = it.next() else {
            out.push('%');
            break;
        };
        let s = match f {
            'Y' => format!("{:04}", t.year()),
            'y' => format!("{:02}", t.year().rem_euclid(100)),
            'm' => format!("{:02}", u8::from(t.month())),
            'd' => format!("{:02}", t.day()),
            'H' => format!("{:02}", t.hour()),
            'M' => format!("{:02}", t.minute()),
            'S' => format!("{:02}", t.second()),
            'j' => format!("{:03}", t.ordinal()),
            's' => secs.to_string(),
            'F' => format!("{:04}-{:02}-{:02}", t.year(), u8::from(t.month()), t.day()),
            'T' => format!("{:02}:{:02}:{:02}", t.hour(), t.minute(), t.second()),
            '%' => "%".to_string(),
            other => return Err(BadPattern(other, pattern.to_string())),
        };
        out.push_str(&s);
    }
    Ok(out)
}

/// The start of the rotation period holding `secs` (a multiple of `every`).
pub fn period_start(secs: i64, every: u64) -> i64 {
    let every = i64::try_from(every.max(1)).unwrap_or(i64::MAX);
    secs.div_euclid(every) * every
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strftime_fields_are_filled_in_utc() {
        // 2026-12-07T03:04:05Z
        let t = 1_796_612_645;
        assert_eq!(strftime("s-%Y%m%d-%H%M%S.ndjson", t).unwrap(), "s-20261207-030405.ndjson");
        assert_eq!(strftime("%F %T %j %y 100%%", t).unwrap(), "2026-12-07 03:04:05 341 26 100%");
        assert!(strftime("%Q", t).is_err());
        assert!(has_fields("a-%Y"));
        assert!(!has_fields("100%%.log"));
    }

    #[test]
    fn time_periods_are_multiples_of_the_interval() {
        assert_eq!(period_start(86_400 * 3 + 5, 86_400), 86_400 * 3);
        assert_eq!(period_start(599, 600), 0);
        assert_eq!(period_start(600, 600), 600);
    }
}
