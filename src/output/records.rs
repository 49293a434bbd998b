//! Session records in any report format to a [`RotatingFile`]: each record one write, and every
//! new file starting with the format's header (CSV's column row, the table's heading).

use std::io::{self, Write};
use std::sync::{Arc, Mutex, PoisonError};

use super::{Rotate, RotatingFile, WriteFailure};
use crate::report::{self, Format, Options, RecordWriter};
use crate::session::Session;

/// A `Write` into a buffer the owner empties after each record (shared with the format writer;
/// a mutex, never contended, so that a record file can move to a capture thread).
#[derive(Clone, Default)]
struct Shared(Arc<Mutex<Vec<u8>>>);

impl Shared {
    fn take(&self) -> Vec<u8> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

impl Write for Shared {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).extend_from_slice(b);
        Ok(b.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// What `format` writes before its first record (empty for NDJSON).
fn header(format: Format, opts: Options) -> Vec<u8> {
    let buf = Shared::default();
    let mut w = report::writer(format, Box::new(buf.clone()), opts);
    let _ = w.finish();
    drop(w);
    buf.take()
}

/// `--output FILE`: records in `format`, rotated as asked.
pub struct RecordFile {
    file: RotatingFile,
    writer: Box<dyn RecordWriter + Send>,
    buf: Shared,
    header: Vec<u8>,
    first: bool,
}

impl RecordFile {
    /// Opens the file `pattern` names at `now` (seconds since the epoch).
    pub fn open(pattern: &str, rotate: Option<Rotate>, format: Format, opts: Options, now: i64) -> io::Result<Self> {
        // Every record leaves the format writer at once (the CSV writer buffers otherwise).
        let opts = Options { line_buffered: true, color: false, truncate: false, ..opts };
        let header = header(format, opts);
        let file = RotatingFile::open(pattern, rotate, header.clone(), now)?;
        let buf = Shared::default();
        let writer = report::sendable_writer(format, buf.clone(), opts);
        Ok(Self { file, writer, buf, header, first: true })
    }

    /// Writes one record (at `now`, for time rotation).
    pub fn write(&mut self, s: &Session, now: i64) -> Result<(), WriteFailure> {
        let _ = self.writer.write(s);
        let mut bytes = self.buf.take();
        // The format writer puts its header before its first record; the file writes it itself,
        // at the top of every file.
        if std::mem::take(&mut self.first) && !self.header.is_empty() && bytes.starts_with(&self.header) {
            bytes.drain(..self.header.len());
        }
        self.file.write_record(&bytes, now)
    }

    /// Time rotation when no record comes.
    pub fn tick(&mut self, now: i64) -> io::Result<()> {
        self.file.tick(now)
    }

    /// Reopens the file (SIGHUP, after logrotate moved it).
    pub fn reopen(&mut self, now: i64) -> io::Result<()> {
        self.file.reopen(now)
    }

    /// The file being written.
    pub fn path(&self) -> &std::path::Path {
        self.file.path()
    }

    /// A closed file that could not be renamed since last asked (records went on).
    pub fn take_rotate_error(&mut self) -> Option<io::Error> {
        self.file.rotate_error.take()
    }

    /// Failed writes so far.
    pub fn errors(&self) -> u64 {
        self.file.errors
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(port: u16) -> Session {
        let mut s = Session::new("10.0.0.1:40000".parse().unwrap(), format!("10.0.0.2:{port}").parse().unwrap());
        s.verdict = Some(crate::session::Verdict::Plaintext);
        s
    }

    #[test]
    fn ndjson_records_are_whole_lines_across_rotations() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("r.ndjson");
        let mut f =
            RecordFile::open(p.to_str().unwrap(), Some(Rotate::Size(3000)), Format::Json, Options::default(), 0)
                .unwrap();
        for i in 0..20 {
            f.write(&session(1000 + i), 0).unwrap();
        }
        let mut n = 0;
        for e in std::fs::read_dir(d.path()).unwrap() {
            let text = std::fs::read_to_string(e.unwrap().path()).unwrap();
            assert!(text.ends_with('\n'));
            for l in text.lines() {
                let v: serde_json::Value = serde_json::from_str(l).unwrap();
                assert_eq!(v["verdict"], "plaintext");
                n += 1;
            }
        }
        assert_eq!(n, 20, "no record lost or repeated");
        assert!(d.path().join("r.ndjson.1").exists(), "it did rotate");
    }

    #[test]
    fn each_csv_file_has_one_header_row() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("r.csv");
        let mut f = RecordFile::open(p.to_str().unwrap(), Some(Rotate::Size(1000)), Format::Csv, Options::default(), 0)
            .unwrap();
        for i in 0..6 {
            f.write(&session(1000 + i), 0).unwrap();
        }
        let mut rows = 0;
        for e in std::fs::read_dir(d.path()).unwrap() {
            let text = std::fs::read_to_string(e.unwrap().path()).unwrap();
            let mut lines = text.lines();
            assert!(lines.next().unwrap().starts_with("first_seen,last_seen,file,interface,sensor,"));
            for l in lines {
                assert!(!l.starts_with("first_seen"), "a second header row");
                rows += 1;
            }
        }
        assert_eq!(rows, 6);
    }
}
