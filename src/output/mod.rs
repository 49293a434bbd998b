//! Records to files for a sensor that runs for weeks: `--output FILE` with `--rotate` by size or
//! by time, strftime names (UTC), reopen on SIGHUP (logrotate), and whole lines only.
//!
//! Each record reaches the file in one `write` and rotation happens only between records, so a
//! crash or a kill leaves whole lines; a write that fails half way (disk full) is cut back to
//! the last whole record.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use thiserror::Error;

mod records;
pub use records::RecordFile;

pub use crate::strftime::{check_pattern, has_fields, period_start, strftime, BadPattern};

/// When to start a new file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rotate {
    /// Once the file would grow past this many bytes.
    Size(u64),
    /// At every multiple of this many seconds (UTC, since the epoch).
    Every(u64),
}

/// A `--rotate` value that cannot be read.
#[derive(Debug, Error, PartialEq, Eq)]
#[error("'{0}' is not a rotation: a size with K, M or G (100M) or a duration with s, m, h or d (1d); a bare number is ambiguous")]
pub struct BadRotate(pub String);

/// Parses `--rotate`: a size with an upper-case unit (`K`, `M`, `G`, powers of 1000) or a
/// duration with a lower-case unit (`s`, `m`, `h`, `d`). `10m` is ten minutes, `10M` ten
/// megabytes; a bare number is refused because it would be a guess.
pub fn parse_rotate(text: &str) -> Result<Rotate, BadRotate> {
    let bad = || BadRotate(text.to_string());
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
    let (num, unit) = t.split_at(split);
    let n: u64 = num.parse().map_err(|_| bad())?;
    if n == 0 {
        return Err(bad());
    }
    let r = match unit {
        "K" => Rotate::Size(n.checked_mul(1_000).ok_or_else(bad)?),
        "M" => Rotate::Size(n.checked_mul(1_000_000).ok_or_else(bad)?),
        "G" => Rotate::Size(n.checked_mul(1_000_000_000).ok_or_else(bad)?),
        "s" => Rotate::Every(n),
        "m" => Rotate::Every(n.checked_mul(60).ok_or_else(bad)?),
        "h" => Rotate::Every(n.checked_mul(3_600).ok_or_else(bad)?),
        "d" => Rotate::Every(n.checked_mul(86_400).ok_or_else(bad)?),
        _ => return Err(bad()),
    };
    Ok(r)
}

/// The highest `N` of the files named `name.N` beside `name` (0 when there is none).
fn highest_suffix(name: &Path) -> u64 {
    let (Some(dir), Some(base)) = (name.parent(), name.file_name()) else { return 0 };
    let dir = if dir.as_os_str().is_empty() { Path::new(".") } else { dir };
    let prefix = format!("{}.", base.to_string_lossy());
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .filter_map(|e| {
                    let n = e.file_name().to_string_lossy().strip_prefix(&prefix)?.to_string();
                    (!n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())).then(|| n.parse::<u64>().ok()).flatten()
                })
                .max()
                .unwrap_or(0)
        })
        .unwrap_or(0)
}

/// A write that failed, and whether it is the first failure of this file (reported once per
/// file; every failure is counted).
#[derive(Debug)]
pub struct WriteFailure {
    /// The file.
    pub path: PathBuf,
    /// The error.
    pub error: io::Error,
    /// The first failure since this file was opened.
    pub first: bool,
}

/// One `--output` file, rotated and reopened as asked.
pub struct RotatingFile {
    pattern: String,
    rotate: Option<Rotate>,
    /// Written at the start of every new (empty) file: CSV's header row.
    header: Vec<u8>,
    file: Option<File>,
    path: PathBuf,
    /// Bytes in the open file.
    len: u64,
    /// The time period the open file belongs to (time rotation).
    period: i64,
    /// Next `N` for `FILE.N` (never reused within a run, and above any left by earlier runs).
    next_n: u64,
    failed: bool,
    /// Failed writes, all files together.
    pub errors: u64,
    /// A closed file that could not be renamed (records went on into the open one): taken and
    /// reported by the caller.
    pub rotate_error: Option<io::Error>,
    /// Bytes of the open file that count as written before a rotation that failed.
    size_base: u64,
    /// Files closed by rotation, oldest first (their final names).
    pub closed: Vec<PathBuf>,
}

impl RotatingFile {
    /// Opens (appends to) the file `pattern` names at `now` (seconds since the epoch).
    pub fn open(pattern: &str, rotate: Option<Rotate>, header: Vec<u8>, now: i64) -> io::Result<Self> {
        check_pattern(pattern).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        let period = match rotate {
            Some(Rotate::Every(s)) => period_start(now, s),
            _ => now,
        };
        let mut f = Self {
            pattern: pattern.to_string(),
            rotate,
            header,
            file: None,
            path: PathBuf::new(),
            len: 0,
            period,
            next_n: 1,
            failed: false,
            errors: 0,
            rotate_error: None,
            size_base: 0,
            closed: Vec::new(),
        };
        f.open_current(period)?;
        Ok(f)
    }

    /// The file being written.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn name_at(&self, secs: i64) -> PathBuf {
        PathBuf::from(strftime(&self.pattern, secs).unwrap_or_else(|_| self.pattern.clone()))
    }

    fn open_current(&mut self, secs: i64) -> io::Result<()> {
        let path = self.name_at(secs);
        let mut file = OpenOptions::new().create(true).append(true).open(&path)?;
        let mut len = file.metadata()?.len();
        if len == 0 && !self.header.is_empty() {
            file.write_all(&self.header)?;
            len = self.header.len() as u64;
        }
        self.file = Some(file);
        self.path = path;
        self.len = len;
        self.size_base = 0;
        self.failed = false;
        Ok(())
    }

    /// Closes the open file and starts the next one (for the period starting at `secs`).
    /// A rename that failed leaves records going on into the same file (reported through
    /// [`RotatingFile::rotate_error`], not retried before the next rotation is due).
    fn rotate_now(&mut self, secs: i64) -> io::Result<()> {
        self.file = None;
        let next = self.name_at(secs);
        let old = self.path.clone();
        self.period = secs;
        // Names without strftime fields (or one that names the same file again) keep FILE as
        // the open file: the closed one moves aside to FILE.N.
        if next == old {
            let n = self.next_n.max(highest_suffix(&old) + 1);
            self.next_n = n + 1;
            let mut moved = old.clone().into_os_string();
            moved.push(format!(".{n}"));
            let moved = PathBuf::from(moved);
            match std::fs::rename(&old, &moved) {
                Ok(()) => self.closed.push(moved),
                Err(e) => {
                    self.rotate_error.get_or_insert(e);
                }
            }
        } else {
            self.closed.push(old);
        }
        self.open_current(secs)?;
        // After a failed rename the size counts from here, so the next try comes a size later.
        self.size_base = self.len.saturating_sub(self.header.len() as u64);
        Ok(())
    }

    /// Time rotation, when the period has moved on at `now` (between records only).
    pub fn tick(&mut self, now: i64) -> io::Result<()> {
        if let Some(Rotate::Every(s)) = self.rotate {
            let p = period_start(now, s);
            if p > self.period && self.len > self.header.len() as u64 {
                return self.rotate_now(p);
            }
            // An empty file just takes the new period (and its name, if the name has fields).
            if p > self.period {
                self.period = p;
                if self.name_at(p) != self.path {
                    self.file = None;
                    let _ = std::fs::remove_file(&self.path);
                    return self.open_current(p);
                }
            }
        }
        Ok(())
    }

    /// Writes one record (whole lines) in one write, rotating first when it is due. A failed
    /// write is cut back so the file still ends on a whole record.
    pub fn write_record(&mut self, rec: &[u8], now: i64) -> Result<(), WriteFailure> {
        let mut result = self.tick(now);
        if result.is_ok() {
            if let Some(Rotate::Size(max)) = self.rotate {
                let len = self.len.saturating_sub(self.size_base);
                if len > self.header.len() as u64 && len + rec.len() as u64 > max {
                    result = self.rotate_now(now);
                }
            }
        }
        if result.is_ok() && self.file.is_none() {
            // A file that could not be reopened is tried again with each record.
            result = self.open_current(if matches!(self.rotate, Some(Rotate::Every(_))) { self.period } else { now });
        }
        if result.is_ok() {
            if let Some(f) = self.file.as_mut() {
                result = f.write_all(rec);
                match &result {
                    Ok(()) => self.len += rec.len() as u64,
                    Err(_) => {
                        let _ = f.set_len(self.len);
                    }
                }
            }
        }
        result.map_err(|error| {
            self.errors += 1;
            let first = !std::mem::replace(&mut self.failed, true);
            WriteFailure { path: self.path.clone(), error, first }
        })
    }

    /// Closes and opens FILE again (after logrotate moved it away): SIGHUP.
    pub fn reopen(&mut self, now: i64) -> io::Result<()> {
        self.file = None;
        let secs = if matches!(self.rotate, Some(Rotate::Every(_))) { self.period } else { now };
        let r = self.open_current(secs);
        if r.is_err() {
            self.path = self.name_at(secs);
        }
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upper_case_units_are_sizes_and_lower_case_units_are_durations() {
        assert_eq!(parse_rotate("10m"), Ok(Rotate::Every(600)));
        assert_eq!(parse_rotate("10M"), Ok(Rotate::Size(10_000_000)));
        assert_eq!(parse_rotate("1d"), Ok(Rotate::Every(86_400)));
        assert_eq!(parse_rotate("2h"), Ok(Rotate::Every(7_200)));
        assert_eq!(parse_rotate("30s"), Ok(Rotate::Every(30)));
        assert_eq!(parse_rotate("5K"), Ok(Rotate::Size(5_000)));
        assert_eq!(parse_rotate("1G"), Ok(Rotate::Size(1_000_000_000)));
    }

    #[test]
    fn a_bare_number_or_an_unknown_unit_is_refused() {
        for bad in ["100", "", "M", "10k", "10D", "1.5h", "0M", "-1d", "10 MB"] {
            assert!(parse_rotate(bad).is_err(), "{bad:?}");
        }
    }

    fn read(p: &Path) -> String {
        std::fs::read_to_string(p).unwrap()
    }

    #[test]
    fn size_rotation_moves_closed_files_to_increasing_suffixes_and_keeps_whole_lines() {
        let d = tempfile::tempdir().unwrap();
        let file = d.path().join("s.ndjson");
        let mut f = RotatingFile::open(file.to_str().unwrap(), Some(Rotate::Size(26)), Vec::new(), 0).unwrap();
        for i in 0..7 {
            f.write_record(format!("{{\"record\":{i}}}\n").as_bytes(), 0).unwrap();
        }
        // 13 bytes a record: two per file.
        assert_eq!(read(&file), "{\"record\":6}\n");
        assert_eq!(read(&d.path().join("s.ndjson.1")), "{\"record\":0}\n{\"record\":1}\n");
        assert_eq!(read(&d.path().join("s.ndjson.3")), "{\"record\":4}\n{\"record\":5}\n");
        assert!(!d.path().join("s.ndjson.4").exists());
    }

    #[test]
    fn suffixes_are_never_reused_across_runs() {
        let d = tempfile::tempdir().unwrap();
        let file = d.path().join("s.ndjson");
        std::fs::write(d.path().join("s.ndjson.7"), "old\n").unwrap();
        let mut f = RotatingFile::open(file.to_str().unwrap(), Some(Rotate::Size(5)), Vec::new(), 0).unwrap();
        f.write_record(b"aaaa\n", 0).unwrap();
        f.write_record(b"bbbb\n", 0).unwrap();
        assert_eq!(read(&d.path().join("s.ndjson.8")), "aaaa\n");
        assert_eq!(read(&d.path().join("s.ndjson.7")), "old\n");
    }

    #[test]
    fn time_rotation_happens_at_the_boundary_and_strftime_names_each_file() {
        let d = tempfile::tempdir().unwrap();
        let pat = d.path().join("s-%H%M.ndjson");
        let mut f = RotatingFile::open(pat.to_str().unwrap(), Some(Rotate::Every(600)), Vec::new(), 590).unwrap();
        f.write_record(b"a\n", 595).unwrap();
        f.write_record(b"b\n", 600).unwrap();
        f.write_record(b"c\n", 1199).unwrap();
        f.write_record(b"d\n", 1300).unwrap();
        assert_eq!(read(&d.path().join("s-0000.ndjson")), "a\n");
        assert_eq!(read(&d.path().join("s-0010.ndjson")), "b\nc\n");
        assert_eq!(read(&d.path().join("s-0020.ndjson")), "d\n");
        assert_eq!(f.path(), d.path().join("s-0020.ndjson"));
    }

    #[test]
    fn time_rotation_without_fields_renames_the_closed_file() {
        let d = tempfile::tempdir().unwrap();
        let file = d.path().join("s.ndjson");
        let mut f = RotatingFile::open(file.to_str().unwrap(), Some(Rotate::Every(60)), Vec::new(), 0).unwrap();
        f.write_record(b"a\n", 10).unwrap();
        f.tick(61).unwrap();
        f.write_record(b"b\n", 70).unwrap();
        assert_eq!(read(&d.path().join("s.ndjson.1")), "a\n");
        assert_eq!(read(&file), "b\n");
    }

    #[test]
    fn a_rotation_whose_rename_fails_loses_no_record() {
        let d = tempfile::tempdir().unwrap();
        let file = d.path().join("s.ndjson");
        let mut f = RotatingFile::open(file.to_str().unwrap(), Some(Rotate::Size(3)), Vec::new(), 0).unwrap();
        f.write_record(b"a\n", 0).unwrap();
        // Moved away by someone else: the rename finds nothing to rename.
        std::fs::rename(&file, d.path().join("moved")).unwrap();
        f.write_record(b"b\n", 0).unwrap();
        assert!(f.rotate_error.take().is_some(), "the failed rename is reported");
        assert_eq!(read(&d.path().join("moved")), "a\n");
        assert_eq!(read(&file), "b\n");
    }

    #[test]
    fn every_csv_file_starts_with_its_header() {
        let d = tempfile::tempdir().unwrap();
        let file = d.path().join("s.csv");
        let mut f = RotatingFile::open(file.to_str().unwrap(), Some(Rotate::Size(12)), b"h1,h2\n".to_vec(), 0).unwrap();
        f.write_record(b"1,2\n", 0).unwrap();
        f.write_record(b"3,4\n", 0).unwrap();
        assert_eq!(read(&d.path().join("s.csv.1")), "h1,h2\n1,2\n");
        assert_eq!(read(&file), "h1,h2\n3,4\n");
    }

    #[test]
    fn reopen_starts_a_new_file_after_it_was_moved_away() {
        let d = tempfile::tempdir().unwrap();
        let file = d.path().join("s.ndjson");
        let mut f = RotatingFile::open(file.to_str().unwrap(), None, Vec::new(), 0).unwrap();
        f.write_record(b"a\n", 0).unwrap();
        std::fs::rename(&file, d.path().join("moved")).unwrap();
        f.write_record(b"b\n", 0).unwrap();
        f.reopen(0).unwrap();
        f.write_record(b"c\n", 0).unwrap();
        assert_eq!(read(&d.path().join("moved")), "a\nb\n");
        assert_eq!(read(&file), "c\n");
    }

    #[test]
    fn a_failed_write_is_counted_and_reported_once_per_file() {
        // /dev/full fails every write with ENOSPC.
        if !Path::new("/dev/full").exists() {
            return;
        }
        let mut f = RotatingFile::open("/dev/full", None, Vec::new(), 0).unwrap();
        let e1 = f.write_record(b"a\n", 0).unwrap_err();
        let e2 = f.write_record(b"b\n", 0).unwrap_err();
        assert!(e1.first && !e2.first);
        assert_eq!(e1.error.raw_os_error(), Some(libc::ENOSPC));
        assert_eq!(f.errors, 2);
        f.reopen(0).unwrap();
        assert!(f.write_record(b"c\n", 0).unwrap_err().first);
    }
}
