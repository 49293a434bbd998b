//! Front-end independent reporting: record formats (NDJSON, CSV, table), the run summary, and
//! the helpers they share.

pub mod clickhouse;
pub mod csv;
pub mod finding;
pub mod json;
pub mod logs;
pub mod packets;
pub mod pairs;
pub mod table;

// Lower modules the formats build on, re-exported where front ends have always found them.
pub use crate::community_id::{community_id, push_community_id};
pub use crate::timefmt::{push_rfc3339, rfc3339, rfc3339_secs};

use std::io::{self, Write};
use std::net::SocketAddr;

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
    /// One flat JSON object per session for ClickHouse's `FORMAT JSONEachRow`.
    ClickHouse,
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
    /// Cut table values to their columns (a terminal); otherwise every value is written whole.
    pub truncate: bool,
}

/// A streaming writer of session records.
pub trait RecordWriter {
    /// Writes one session.
    fn write(&mut self, s: &Session) -> io::Result<()>;
    /// Flushes at the end.
    fn finish(&mut self) -> io::Result<()>;
}

/// A writer of one line per session, built by `render` into a reused buffer and written at once
/// (a record is one write: a crash or a rotation never leaves half a line).
pub struct LineWriter<W> {
    out: W,
    opts: Options,
    render: fn(&mut Vec<u8>, &Session, Options),
    line: Vec<u8>,
}

impl<W: Write> LineWriter<W> {
    /// Lines rendered by `render`, written to `out`.
    pub fn new(out: W, opts: Options, render: fn(&mut Vec<u8>, &Session, Options)) -> Self {
        Self { out, opts, render, line: Vec::with_capacity(4096) }
    }
}

impl<W: Write> RecordWriter for LineWriter<W> {
    fn write(&mut self, s: &Session) -> io::Result<()> {
        self.line.clear();
        (self.render)(&mut self.line, s, self.opts);
        self.line.push(b'\n');
        self.out.write_all(&self.line)?;
        if self.opts.line_buffered {
            self.out.flush()?;
        }
        Ok(())
    }

    fn finish(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

/// A writer for `format` over `out`.
pub fn writer<'a>(format: Format, out: Box<dyn Write + 'a>, opts: Options) -> Box<dyn RecordWriter + 'a> {
    match format {
        Format::Json => Box::new(LineWriter::new(out, opts, json::write_line)),
        Format::Csv => Box::new(csv::Writer::new(out, opts)),
        Format::Table => Box::new(table::Writer::new(out, opts)),
        Format::ClickHouse => Box::new(LineWriter::new(out, opts, clickhouse::write_row)),
    }
}

/// [`writer`] that can move to another thread with its `out`.
pub fn sendable_writer<W: Write + Send + 'static>(
    format: Format,
    out: W,
    opts: Options,
) -> Box<dyn RecordWriter + Send> {
    match format {
        Format::Json => Box::new(LineWriter::new(out, opts, json::write_line)),
        Format::Csv => Box::new(csv::Writer::new(out, opts)),
        Format::Table => Box::new(table::Writer::new(out, opts)),
        Format::ClickHouse => Box::new(LineWriter::new(out, opts, clickhouse::write_row)),
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
            // Built on the stack and copied once: a copy per octet cost more than the digits.
            let mut buf = [0u8; 21]; // 255.255.255.255:65535
            let mut len = 0;
            let mut put = |b: u8| {
                if let Some(slot) = buf.get_mut(len) {
                    *slot = b;
                    len += 1;
                }
            };
            for (i, o) in v4.ip().octets().into_iter().enumerate() {
                if i > 0 {
                    put(b'.');
                }
                if o >= 100 {
                    put(b'0' + o / 100);
                }
                if o >= 10 {
                    put(b'0' + o / 10 % 10);
                }
                put(b'0' + o % 10);
            }
            put(b':');
            let port = v4.port();
            let mut started = false;
            for div in [10_000, 1_000, 100, 10, 1] {
                let d = (port / div % 10) as u8;
                if started || d != 0 || div == 1 {
                    put(b'0' + d);
                    started = true;
                }
            }
            out.extend_from_slice(buf.get(..len).unwrap_or_default());
        }
        SocketAddr::V6(_) => {
            let _ = write!(out, "{a}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_print_as_socket_addresses() {
        for a in ["10.0.0.1:25", "255.255.255.255:65535", "0.0.0.0:0", "[fd00::1]:587", "[::ffff:1.2.3.4]:25"] {
            let a: SocketAddr = a.parse().unwrap();
            assert_eq!(endpoint(a), a.to_string());
        }
        for o in 0..=255u8 {
            for port in [0, 1, 9, 10, 99, 100, 999, 1000, 9999, 10000, 65535] {
                let a = SocketAddr::from(([o, 255 - o, o / 3, o.wrapping_mul(7)], port));
                assert_eq!(endpoint(a), a.to_string());
            }
        }
    }
}
