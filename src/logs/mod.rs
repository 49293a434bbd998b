//! Mail-server logs as a source beside [`crate::capture`]: Exchange SmtpReceive/SmtpSend
//! protocol logs and Postfix syslog lines, read as streams into log session records judged with
//! the wire's verdict vocabulary from what the log alone shows.
//!
//! Files are recognised by content, never by name; gzip is recognised by its magic. Every line
//! that cannot be used is counted by reason in [`Problems`]; nothing here panics on log bytes,
//! and a session is held only while it is open.

pub mod exchange;
pub mod follow;
pub mod hold;
pub mod matching;
pub mod postfix;
pub mod record;
pub mod time;

use std::collections::BTreeMap;
use std::fmt;
use std::io::{self, BufRead, BufReader, Read};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use crate::capture::Micros;
pub use record::{Endpoint, LogCert, LogEvidence, LogRecord, Source};

/// Longest log line kept; the rest of a longer line is skipped and counted.
pub const MAX_LINE: usize = 64 * 1024;

/// Errors at the edge of the log reader.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// The input could not be opened or read.
    #[error("{name}: {error}")]
    Io {
        /// File name.
        name: String,
        /// Cause (in the message, not a chained source: a `{:#}` would say it twice).
        error: io::Error,
    },
}

/// Which parser a file turned out to need.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Exchange protocol log (CSV, with or without its `#` header).
    Exchange,
    /// Postfix lines in syslog form.
    Postfix,
}

/// Per-line problems, counted by reason (never an error: they do not change the exit status).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Problems {
    /// Reason → lines.
    pub counts: BTreeMap<&'static str, u64>,
}

impl Problems {
    /// Counts one line under `reason`.
    pub fn add(&mut self, reason: &'static str) {
        *self.counts.entry(reason).or_default() += 1;
    }

    /// Adds another file's counts.
    pub fn merge(&mut self, other: &Problems) {
        for (k, v) in &other.counts {
            *self.counts.entry(k).or_default() += v;
        }
    }

    /// Lines counted under `reason`.
    pub fn get(&self, reason: &str) -> u64 {
        self.counts.get(reason).copied().unwrap_or(0)
    }
}

/// Reader options.
#[derive(Debug, Clone)]
pub struct LogOptions {
    /// Zone of classic syslog timestamps (which carry none).
    pub tz: jiff::tz::TimeZone,
    /// A time inside the log, for the year classic syslog timestamps lack (the capture's start
    /// when there is one, else the file's mtime).
    pub reference: Option<Micros>,
    /// Keep envelope addresses whole in evidence.
    pub show_addresses: bool,
    /// Keep AUTH user names in evidence.
    pub show_credentials: bool,
    /// Postfix process name (`postfix/hub10-2525/smtpd`) → the listener it serves.
    pub servers: Vec<(String, Endpoint)>,
}

impl Default for LogOptions {
    fn default() -> Self {
        Self {
            tz: jiff::tz::TimeZone::system(),
            reference: None,
            show_addresses: false,
            show_credentials: false,
            servers: Vec::new(),
        }
    }
}

/// What one input gave.
#[derive(Debug, Clone, Default)]
pub struct FileStats {
    /// The parser used (None: no recognisable line).
    pub format: Option<Format>,
    /// Lines read.
    pub lines: u64,
    /// Lines recognised as lines of a supported log.
    pub recognised: u64,
    /// Bytes read (after decompression).
    pub bytes: u64,
    /// Sessions emitted.
    pub sessions: u64,
    /// Problems by reason.
    pub problems: Problems,
}

/// A line parser fed one line at a time; emits records as sessions close.
pub(crate) trait LineParser {
    /// Feeds line `n` (1-based); returns whether it was recognised.
    fn line(&mut self, n: u64, line: &[u8], out: &mut dyn FnMut(LogRecord)) -> bool;
    /// End of input: closes every open session.
    fn finish(&mut self, out: &mut dyn FnMut(LogRecord));
    /// Problems counted so far.
    fn problems(&mut self) -> &mut Problems;
}

/// Reads the next line into `buf` (without its `\n` / `\r\n`), keeping at most [`MAX_LINE`]
/// bytes. Returns `None` at end of input, else whether the line was cut.
pub fn next_line(r: &mut impl BufRead, buf: &mut Vec<u8>) -> io::Result<Option<bool>> {
    let mut total = 0;
    next_line_counted(r, buf, &mut total)
}

/// [`next_line`], adding the bytes the line took in the input (cut part and line end too) to
/// `total`.
pub fn next_line_counted(r: &mut impl BufRead, buf: &mut Vec<u8>, total: &mut u64) -> io::Result<Option<bool>> {
    buf.clear();
    let mut cut = false;
    let mut any = false;
    loop {
        let avail = match r.fill_buf() {
            Ok(a) => a,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if avail.is_empty() {
            break;
        }
        any = true;
        let (take, done) = match memchr::memchr(b'\n', avail) {
            Some(p) => (p, true),
            None => (avail.len(), false),
        };
        let room = MAX_LINE.saturating_sub(buf.len());
        if take > room {
            cut = true;
        }
        buf.extend_from_slice(avail.get(..take.min(room)).unwrap_or_default());
        let used = if done { take + 1 } else { take };
        *total += used as u64;
        r.consume(used);
        if done {
            break;
        }
    }
    if !any {
        return Ok(None);
    }
    if buf.last() == Some(&b'\r') {
        buf.pop();
    }
    Ok(Some(cut))
}

/// Wraps `input` in a gzip decoder when it starts with gzip's magic (logrotate's `.gz`).
// The capture side's decompression layer is on another branch; this one function is the seam
// the integrator swaps for it.
pub fn decompress<'a>(mut input: Box<dyn BufRead + 'a>) -> io::Result<Box<dyn BufRead + 'a>> {
    Ok(match crate::decompress::sniff(&mut input)? {
        Some(c) => Box::new(BufReader::with_capacity(256 * 1024, crate::decompress::Decoder::new(c, input)?)),
        None => input,
    })
}

/// Which format a line belongs to, if any.
pub fn sniff(line: &[u8]) -> Option<Format> {
    if exchange::is_header(line) || exchange::looks_like_line(line) {
        return Some(Format::Exchange);
    }
    if postfix::looks_like_line(line) {
        return Some(Format::Postfix);
    }
    None
}

/// One log stream's lines fed to the parser its first recognisable line calls for; shared by
/// the reader of whole files and the follower of growing ones.
pub(crate) struct Feed {
    name: Arc<str>,
    opts: LogOptions,
    parser: Option<Box<dyn LineParser + Send>>,
    /// Problems of the lines before the format was known.
    before: Problems,
    /// What the stream gave so far (`problems` filled by [`Feed::finish`]).
    pub stats: FileStats,
}

impl Feed {
    /// A feed for the stream called `name`.
    pub fn new(name: Arc<str>, opts: LogOptions) -> Self {
        Self { name, opts, parser: None, before: Problems::default(), stats: FileStats::default() }
    }

    /// Feeds one line (without its line end); `cut` says it was longer than [`MAX_LINE`].
    pub fn line(&mut self, line: &[u8], cut: bool, out: &mut dyn FnMut(LogRecord)) {
        self.stats.lines += 1;
        let n = self.stats.lines;
        let probs = match self.parser.as_mut() {
            Some(p) => p.problems(),
            None => &mut self.before,
        };
        if cut {
            probs.add("line-too-long");
        }
        if std::str::from_utf8(line).is_err() {
            probs.add("invalid-utf8");
        }
        if self.parser.is_none() {
            self.parser = match sniff(line) {
                Some(Format::Exchange) => {
                    self.stats.format = Some(Format::Exchange);
                    Some(Box::new(exchange::Parser::new(self.name.clone(), self.opts.clone())))
                }
                Some(Format::Postfix) => {
                    self.stats.format = Some(Format::Postfix);
                    Some(Box::new(postfix::Parser::new(self.name.clone(), self.opts.clone())))
                }
                None => None,
            };
        }
        let sessions = &mut self.stats.sessions;
        let mut count = |r: LogRecord| {
            *sessions += 1;
            out(r);
        };
        match self.parser.as_mut() {
            Some(p) => {
                if p.line(n, line, &mut count) {
                    self.stats.recognised += 1;
                }
            }
            None => self.before.add(if line.iter().all(u8::is_ascii_whitespace) { "blank" } else { "unrecognised" }),
        }
    }

    /// Counts a problem that belongs to no line the parser saw (e.g. a line cut by a rotation).
    pub fn problem(&mut self, reason: &'static str) {
        match self.parser.as_mut() {
            Some(p) => p.problems().add(reason),
            None => self.before.add(reason),
        }
    }

    /// Problems counted so far.
    pub fn problems(&mut self) -> Problems {
        let mut all = self.parser.as_mut().map(|p| p.problems().clone()).unwrap_or_default();
        all.merge(&self.before);
        all
    }

    /// End of input: closes every open session and returns the stream's figures.
    pub fn finish(mut self, out: &mut dyn FnMut(LogRecord)) -> FileStats {
        let sessions = &mut self.stats.sessions;
        if let Some(p) = self.parser.as_mut() {
            p.finish(&mut |r| {
                *sessions += 1;
                out(r);
            });
        }
        self.stats.problems = self.problems();
        self.stats
    }
}

/// Reads one log stream to the end, calling `out` for every session as it closes.
pub fn read_stream(
    input: impl Read,
    name: Arc<str>,
    opts: &LogOptions,
    out: &mut dyn FnMut(LogRecord),
) -> io::Result<FileStats> {
    let reader: Box<dyn BufRead + '_> = Box::new(BufReader::with_capacity(256 * 1024, input));
    let mut reader = decompress(reader)?;
    let mut feed = Feed::new(name, opts.clone());
    let mut buf = Vec::with_capacity(4096);
    let mut bytes = 0;
    while let Some(cut) = next_line_counted(&mut reader, &mut buf, &mut bytes)? {
        feed.line(&buf, cut, out);
    }
    let mut stats = feed.finish(out);
    stats.bytes = bytes;
    Ok(stats)
}

/// Opens `path` (or stdin for `-`) and reads it with [`read_stream`]; classic syslog years come
/// from `opts.reference`, else from the file's mtime.
pub fn read_path(path: &str, opts: &LogOptions, out: &mut dyn FnMut(LogRecord)) -> Result<FileStats, LogError> {
    read_path_with(path, opts, |input| input, out)
}

/// [`read_path`], the opened input handed to `wrap` first (a caller that counts the bytes read
/// or cuts the read short reads through its own wrapper).
pub fn read_path_with<'a>(
    path: &str,
    opts: &LogOptions,
    wrap: impl FnOnce(Box<dyn Read + 'a>) -> Box<dyn Read + 'a>,
    out: &mut dyn FnMut(LogRecord),
) -> Result<FileStats, LogError> {
    let io_err = |error| LogError::Io { name: path.to_string(), error };
    if path == "-" {
        return read_stream(wrap(Box::new(io::stdin().lock())), Arc::from("-"), opts, out).map_err(io_err);
    }
    let file = std::fs::File::open(path).map_err(io_err)?;
    let meta = file.metadata().map_err(io_err)?;
    if meta.is_dir() {
        return Err(io_err(io::Error::new(io::ErrorKind::InvalidInput, "is a directory")));
    }
    let mut o = opts.clone();
    if o.reference.is_none() {
        o.reference = meta
            .modified()
            .ok()
            .and_then(|m| m.duration_since(std::time::UNIX_EPOCH).ok())
            .map(|d| d.as_micros() as Micros);
    }
    read_stream(wrap(Box::new(file)), Arc::from(path), &o, out).map_err(io_err)
}

/// Expands `--logs`/`logs` arguments: `-`, files, directories (their files, sorted) and globs.
pub fn expand_paths(args: &[String]) -> Vec<Result<String, String>> {
    let mut out = Vec::new();
    for a in args {
        if a == "-" {
            out.push(Ok(a.clone()));
            continue;
        }
        let p = std::path::Path::new(a);
        if p.is_dir() {
            match std::fs::read_dir(p) {
                Ok(rd) => {
                    let mut files: Vec<String> = rd
                        .filter_map(|e| e.ok())
                        .filter(|e| e.path().is_file())
                        .map(|e| e.path().to_string_lossy().into_owned())
                        .collect();
                    files.sort();
                    out.extend(files.into_iter().map(Ok));
                }
                Err(e) => out.push(Err(format!("{a}: {e}"))),
            }
            continue;
        }
        if p.exists() {
            out.push(Ok(a.clone()));
            continue;
        }
        match glob::glob(a) {
            Ok(paths) => {
                let mut found: Vec<String> = paths
                    .filter_map(|r| r.ok())
                    .filter(|p| p.is_file())
                    .map(|p| p.to_string_lossy().into_owned())
                    .collect();
                if found.is_empty() {
                    out.push(Err(format!("{a}: no such file")));
                }
                found.sort();
                out.extend(found.into_iter().map(Ok));
            }
            Err(e) => out.push(Err(format!("{a}: {e}"))),
        }
    }
    out
}

/// Parses `ip:port`, `[v6]:port`, a bare v6 address with a port after its last colon, or a bare
/// address. Masked (`10.**.**.31:37964`) or blank endpoints give `None`.
pub fn parse_endpoint(s: &[u8]) -> Option<Endpoint> {
    let s = std::str::from_utf8(s).ok()?.trim();
    if s.is_empty() {
        return None;
    }
    if let Ok(a) = s.parse::<SocketAddr>() {
        return Some(Endpoint { ip: a.ip(), port: Some(a.port()) });
    }
    if let Ok(ip) = s.trim_start_matches('[').trim_end_matches(']').parse::<IpAddr>() {
        return Some(Endpoint { ip, port: None });
    }
    let (ip, port) = s.rsplit_once(':')?;
    let ip = ip.trim_start_matches('[').trim_end_matches(']').parse::<IpAddr>().ok()?;
    Some(Endpoint { ip, port: Some(port.parse().ok()?) })
}

/// Log text as it is shown: valid UTF-8 as is, other bytes (legacy code pages) as `\xNN`.
pub fn text(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(s) => s.to_string(),
        Err(_) => crate::escape::json_text(bytes),
    }
}

/// Characters that end the local part of an address when walking back from its `@`.
fn ends_local_part(c: u8) -> bool {
    matches!(c, b' ' | b'<' | b':' | b'=' | b',' | b'"' | b'\'' | b'(' | b'[' | b'\t' | b';')
}

/// A log line as evidence: AUTH user names masked unless `show_credentials`, envelope
/// addresses reduced to their domain unless `show_addresses`.
pub fn mask(line: &str, show_addresses: bool, show_credentials: bool) -> String {
    let mut s = line.to_string();
    if !show_credentials {
        for key in ["User Name: ", "sasl_username="] {
            if let Some(p) = s.find(key) {
                let from = p + key.len();
                let end = s[from..].find([',', ' ']).map_or(s.len(), |e| from + e);
                s.replace_range(from..end, "***");
            }
        }
        // An initial response after the mechanism (`AUTH PLAIN dXNlcg==`) carries the user.
        if s.get(..5).is_some_and(|v| v.eq_ignore_ascii_case("AUTH ")) {
            if let Some(sp) = s[5..].find(' ') {
                let from = 5 + sp + 1;
                let end = s[from..].find([',', ' ']).map_or(s.len(), |e| from + e);
                if end > from && !s[from..end].starts_with('<') {
                    s.replace_range(from..end, "***");
                }
            }
        }
    }
    if !show_addresses {
        let mut out = String::with_capacity(s.len());
        let b = s.as_bytes();
        let mut start = 0;
        for (i, &c) in b.iter().enumerate() {
            if c != b'@' {
                continue;
            }
            let mut j = i;
            while j > start && !ends_local_part(b[j - 1]) {
                j -= 1;
            }
            out.push_str(&s[start..j]);
            start = i + 1;
        }
        out.push_str(&s[start..]);
        s = out;
    }
    s
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.ip, self.port) {
            (IpAddr::V6(v6), Some(p)) => write!(f, "[{v6}]:{p}"),
            (ip, Some(p)) => write!(f, "{ip}:{p}"),
            (ip, None) => write!(f, "{ip}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_masked_or_blank_are_null_and_v6_reads_with_or_without_brackets() {
        assert_eq!(parse_endpoint(b"10.**.**.31:37964"), None);
        assert_eq!(parse_endpoint(b""), None);
        assert_eq!(parse_endpoint(b"10.1.2.3:25").unwrap().to_string(), "10.1.2.3:25");
        assert_eq!(parse_endpoint(b"[2001:db8::1]:25").unwrap().to_string(), "[2001:db8::1]:25");
        assert_eq!(parse_endpoint(b"2001:db8::1:25").unwrap().to_string(), "2001:db8::1:25");
        assert_eq!(parse_endpoint(b"2001:db8::1").unwrap().port, None);
    }

    #[test]
    fn evidence_keeps_the_domain_of_envelope_addresses_and_masks_auth_users() {
        assert_eq!(mask("MAIL FROM:<alice@example.org> SIZE=10", false, false), "MAIL FROM:<example.org> SIZE=10");
        assert_eq!(mask("to=<bob@b.example>, relay=x", false, false), "to=<b.example>, relay=x");
        assert_eq!(mask("User Name: username@domain.com", false, false), "User Name: ***");
        assert!(!mask("client=a[1.2.3.4], sasl_method=PLAIN, sasl_username=joe", false, false).contains("joe"));
        assert_eq!(mask("AUTH PLAIN dXNlcgB1c2VyAHB3", false, false), "AUTH PLAIN ***");
        assert_eq!(mask("AUTH LOGIN", false, false), "AUTH LOGIN");
        assert_eq!(mask("User Name: u@d.com", true, true), "User Name: u@d.com");
        assert_eq!(mask("MAIL FROM:<a@b.c>", true, false), "MAIL FROM:<a@b.c>");
    }

    #[test]
    fn long_lines_are_cut_and_the_rest_skipped() {
        let mut data = vec![b'a'; MAX_LINE + 10];
        data.extend_from_slice(b"\r\nnext\n");
        let mut r = io::Cursor::new(data);
        let mut buf = Vec::new();
        assert_eq!(next_line(&mut r, &mut buf).unwrap(), Some(true));
        assert_eq!(buf.len(), MAX_LINE);
        assert_eq!(next_line(&mut r, &mut buf).unwrap(), Some(false));
        assert_eq!(buf, b"next");
        assert_eq!(next_line(&mut r, &mut buf).unwrap(), None);
    }

    #[test]
    fn gzip_is_recognised_by_its_magic() {
        use std::io::Write;
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(b"Dec  7 01:40:00 mx postfix/smtpd[1]: connect from a[10.0.0.1]\n").unwrap();
        let data = gz.finish().unwrap();
        let opts = LogOptions { tz: jiff::tz::TimeZone::UTC, ..LogOptions::default() };
        let stats = read_stream(io::Cursor::new(data), Arc::from("x.gz"), &opts, &mut |_| {}).unwrap();
        assert_eq!(stats.format, Some(Format::Postfix));
        assert_eq!(stats.recognised, 1);
        assert_eq!(stats.sessions, 1);
    }
}
