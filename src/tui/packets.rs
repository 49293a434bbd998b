//! The packets of one session, read again on demand: no packet is kept in memory while
//! capturing. Files are re-read over the session's frame window (its first to last frame, in
//! its own input file, with the user's BPF applied again so frame numbers agree with the
//! evidence); a live capture is read back from its bounded spool. Packets are matched to the
//! session's 4-tuple with smtpscope's own decoder, which also sees through the VLAN, GRE/ERSPAN,
//! VXLAN, MPLS and PPPoE encapsulations a libpcap filter cannot look inside.

use std::fmt::Write as _;
use std::fs::File;
use std::net::SocketAddr;
use std::ops::Range;
use std::os::fd::IntoRawFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::capture::spool::SpoolShared;
use crate::decode::{Decoder, TcpFlags};
use crate::session::{Session, Side};

/// Most packets listed per session (the rest are counted).
pub const MAX_PACKETS: usize = 10_000;

/// One packet of the session.
#[derive(Debug, Clone)]
pub struct PacketRow {
    /// Frame number in its input (as in the evidence).
    pub frame: u64,
    /// Capture time (µs).
    pub ts: i64,
    /// Length on the wire.
    pub orig_len: u32,
    /// Captured bytes.
    pub data: Vec<u8>,
    /// Who sent it.
    pub side: Side,
    /// TCP flags.
    pub flags: TcpFlags,
    /// Sequence number.
    pub seq: u32,
    /// Acknowledgment number.
    pub ack: u32,
    /// TCP payload length on the wire.
    pub payload_len: u32,
    /// The captured TCP payload within `data` (empty when there is none, or when the decoder
    /// had to put it together from several pieces).
    pub payload: Range<usize>,
    /// Bytes of `data` holding envelope local parts (`MAIL FROM:<user@…>`), hidden from the
    /// screen unless `--show-addresses`.
    pub local_parts: Vec<Range<usize>>,
}

/// A session's packets as loaded.
#[derive(Debug, Clone)]
pub struct Packets {
    /// Session id.
    pub id: u64,
    /// Packets the session had when the load was asked for.
    pub expected: u64,
    /// Link type of the packets.
    pub linktype: i32,
    /// The packets (at most [`MAX_PACKETS`]).
    pub rows: Vec<PacketRow>,
    /// Matching packets beyond [`MAX_PACKETS`].
    pub more: u64,
    /// Something the user should know (spool rotated, file gone).
    pub note: Option<String>,
}

/// Where packets can be read again.
#[derive(Debug, Clone)]
pub enum Origin {
    /// The input files. Frames are numbered in the file, whatever the run's BPF filter skipped,
    /// so no filter is needed to find them again.
    Files {
        /// Paths as given on the command line.
        paths: Vec<PathBuf>,
    },
    /// The live capture's spool.
    Spool(Arc<SpoolShared>),
}

/// What to load.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// Session id.
    pub id: u64,
    /// Client endpoint.
    pub client: SocketAddr,
    /// Server endpoint.
    pub server: SocketAddr,
    /// The session's input file (name as given), None when live.
    pub file: Option<Arc<str>>,
    /// First frame.
    pub first_frame: u64,
    /// Last frame.
    pub last_frame: u64,
    /// Packets the session had.
    pub packets: u64,
    /// The session was read from records (`-R`): the records file and line.
    pub record: Option<(Arc<str>, u64)>,
}

impl Request {
    /// The request for a session.
    pub fn of(s: &Session) -> Self {
        Self {
            id: s.id,
            client: s.client,
            server: s.server,
            file: s.file.clone(),
            first_frame: s.first_frame,
            last_frame: s.last_frame.max(s.first_frame),
            packets: s.packets,
            record: s.record.as_ref().map(|r| (r.path.clone(), r.line)),
        }
    }
}

struct Matcher {
    req: Request,
    decoder: Decoder,
    out: Packets,
    envelope: Envelope,
}

impl Matcher {
    fn new(req: &Request, linktype: i32) -> Self {
        Self {
            req: req.clone(),
            decoder: Decoder::new(),
            out: Packets { id: req.id, expected: req.packets, linktype, rows: Vec::new(), more: 0, note: None },
            envelope: Envelope::default(),
        }
    }

    fn offer(&mut self, frame: u64, ts: i64, orig_len: u32, linktype: i32, data: &[u8]) {
        let Ok(seg) = self.decoder.decode(linktype, data) else { return };
        let (src, dst) = (SocketAddr::new(seg.src, seg.sport), SocketAddr::new(seg.dst, seg.dport));
        let side = if (src, dst) == (self.req.client, self.req.server) {
            Side::Client
        } else if (src, dst) == (self.req.server, self.req.client) {
            Side::Server
        } else {
            return;
        };
        if self.out.rows.len() >= MAX_PACKETS {
            self.out.more += 1;
            return;
        }
        // The payload is a slice of `data` unless the decoder reassembled it: where it starts
        // is a pointer difference.
        let at = (seg.payload.as_ptr() as usize).wrapping_sub(data.as_ptr() as usize);
        let inside = at.checked_add(seg.payload.len()).is_some_and(|end| end <= data.len());
        let payload = if inside { at..at + seg.payload.len() } else { 0..0 };
        let mut local_parts = Vec::new();
        if side == Side::Client {
            local_parts = self.envelope.scan(seg.payload);
            if inside {
                for r in &mut local_parts {
                    *r = r.start + at..r.end + at;
                }
            } else if !local_parts.is_empty() {
                // Cannot tell where in the frame the address lies: hide the whole frame.
                local_parts = std::iter::once(0..data.len()).collect();
            }
        }
        self.out.rows.push(PacketRow {
            frame,
            ts,
            orig_len,
            data: data.to_vec(),
            side,
            flags: seg.flags,
            seq: seg.seq,
            ack: seg.ack,
            payload_len: seg.wire_len,
            payload,
            local_parts,
        });
    }
}

/// Where the client's envelope local parts are, across segment boundaries: a small machine over
/// the client's bytes that recognises `MAIL FROM:` and `RCPT TO:` lines and marks the bytes
/// before the `@` of their path. A line cut over two segments is still found.
#[derive(Debug, Default)]
struct Envelope {
    /// The line's first bytes, upper-cased (until the verb is told).
    prefix: Vec<u8>,
    state: EnvState,
    quoted: bool,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum EnvState {
    /// Reading the verb.
    #[default]
    Verb,
    /// After `MAIL FROM:` / `RCPT TO:`, before the path's first character.
    Path,
    /// Inside a local part (hidden).
    Local,
    /// In the domain (shown); a `:` ends a source route and a local part follows.
    Domain,
    /// Anything else up to the line's end.
    Other,
}

impl Envelope {
    /// The ranges of `payload` that hold local parts.
    fn scan(&mut self, payload: &[u8]) -> Vec<Range<usize>> {
        const VERBS: [&[u8]; 2] = [b"MAIL FROM:", b"RCPT TO:"];
        let mut out: Vec<Range<usize>> = Vec::new();
        for (i, &b) in payload.iter().enumerate() {
            if b == b'\n' {
                *self = Self::default();
                continue;
            }
            let hide = match self.state {
                EnvState::Verb => {
                    self.prefix.push(b.to_ascii_uppercase());
                    if VERBS.contains(&self.prefix.as_slice()) {
                        self.state = EnvState::Path;
                    } else if !VERBS.iter().any(|v| v.starts_with(&self.prefix)) {
                        self.state = EnvState::Other;
                    }
                    false
                }
                EnvState::Path if matches!(b, b' ' | b'<') => false,
                EnvState::Path | EnvState::Local if b == b'@' && !self.quoted => {
                    self.state = EnvState::Domain;
                    false
                }
                EnvState::Path | EnvState::Local => {
                    if b == b'"' {
                        self.quoted = !self.quoted;
                    }
                    if matches!(b, b'>' | b'\r') || (b == b' ' && !self.quoted) {
                        self.state = EnvState::Other;
                        false
                    } else {
                        self.state = EnvState::Local;
                        true
                    }
                }
                EnvState::Domain => {
                    if b == b':' {
                        self.state = EnvState::Local;
                    } else if matches!(b, b'>' | b' ' | b'\r') {
                        self.state = EnvState::Other;
                    }
                    false
                }
                EnvState::Other => false,
            };
            if hide {
                match out.last_mut() {
                    Some(r) if r.end == i => r.end = i + 1,
                    _ => out.push(i..i + 1),
                }
            }
        }
        out
    }
}

/// Bytes of a row hidden from the screen: envelope local parts unless `show_addresses`, and
/// the AUTH secret when the session's transcript says this client frame carried one (`secret`).
/// An AUTH line keeps its verb and mechanism, line ends stay, everything else is hidden.
pub fn hidden(r: &PacketRow, secret: bool, show_addresses: bool) -> Vec<Range<usize>> {
    let mut out = if show_addresses { Vec::new() } else { r.local_parts.clone() };
    if !secret || r.side != Side::Client {
        return out;
    }
    if r.payload.is_empty() {
        // The payload is not where the frame's bytes can show it: hide the frame past its
        // first bytes (the link and IP headers stay readable).
        out.push(r.data.len().min(54)..r.data.len());
        return out;
    }
    let payload = r.data.get(r.payload.clone()).unwrap_or(&[]);
    let mut at = 0;
    for line in payload.split_inclusive(|b| *b == b'\n') {
        let body = line.len() - line.iter().rev().take_while(|b| matches!(b, b'\r' | b'\n')).count();
        // "AUTH PLAIN <secret>": the verb and mechanism stay.
        let keep = if line.len() >= 5 && line.get(..5).is_some_and(|v| v.eq_ignore_ascii_case(b"AUTH ")) {
            line.iter().skip(5).position(|b| *b == b' ').map_or(body, |p| 5 + p + 1).min(body)
        } else {
            0
        };
        if keep < body {
            out.push(r.payload.start + at + keep..r.payload.start + at + body);
        }
        at += line.len();
    }
    out
}

fn ts_of(h: &pcap::PacketHeader) -> i64 {
    #[allow(clippy::unnecessary_cast)]
    let t = h.ts.tv_sec as i64 * 1_000_000 + h.ts.tv_usec as i64;
    t
}

/// Reads frames `first..=last` of one file, through the same sources the run read it with.
fn scan_file(path: &Path, req: &Request, m: &mut Option<Matcher>) -> Result<(), String> {
    if path.as_os_str() == "-" {
        let m = m.get_or_insert_with(|| Matcher::new(req, 1));
        m.out.note = Some("standard input cannot be read again: its packets are not kept".into());
        return Ok(());
    }
    let mut src = crate::capture::source::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let m = m.get_or_insert_with(|| Matcher::new(req, src.linktype()));
    let mut frame = 0u64;
    loop {
        match src.next_frame() {
            Ok(Some(p)) => {
                frame += 1;
                if frame < req.first_frame {
                    continue;
                }
                if frame > req.last_frame {
                    break;
                }
                m.offer(frame, p.ts, p.orig_len, p.linktype, p.data);
            }
            Ok(None) => break,
            Err(e) => {
                m.out.note = Some(format!("the file ends early after frame {frame}: {e}"));
                break;
            }
        }
    }
    Ok(())
}

/// Loads a session's packets (blocking: run it off the UI thread).
pub fn load(origin: &Origin, req: &Request) -> Result<Packets, String> {
    if let Some((path, line)) = &req.record {
        // The file name comes from the record: escaped like any wire text.
        let from = req.file.as_deref().map(|f| {
            format!(": open {} with -r; the evidence keeps its frame numbers", crate::escape::terminal(f.as_bytes()))
        });
        return Err(format!(
            "read from records ({}:{line}): a record carries no packets{}",
            crate::escape::terminal(path.as_bytes()),
            from.unwrap_or_else(|| " (it came from a live capture)".into())
        ));
    }
    let mut m = None;
    match origin {
        Origin::Files { paths } => {
            let file = req.file.as_deref().unwrap_or_default();
            let path = paths
                .iter()
                .find(|p| p.display().to_string() == file)
                .or(paths.first().filter(|_| paths.len() == 1))
                .ok_or_else(|| format!("input file {file} is not among the inputs"))?;
            scan_file(path, req, &mut m)?;
        }
        Origin::Spool(spool) => {
            let ix = spool.index();
            let mut note = None;
            if req.first_frame < ix.oldest_frame {
                note = Some(format!(
                    "packets before frame {} are no longer in the spool (it keeps the most recent ones)",
                    ix.oldest_frame
                ));
            }
            for seg in &ix.segments {
                if seg.last_frame < req.first_frame || seg.first_frame > req.last_frame || seg.last_frame == 0 {
                    continue;
                }
                let mut cap = match pcap::Capture::from_file(&seg.path) {
                    Ok(c) => c,
                    Err(_) => continue, // rotated away meanwhile
                };
                let m = m.get_or_insert_with(|| Matcher::new(req, cap.get_datalink().0));
                let mut frame = seg.first_frame - 1;
                while let Ok(p) = cap.next_packet() {
                    frame += 1;
                    if frame > req.last_frame || frame > seg.last_frame {
                        break;
                    }
                    if frame >= req.first_frame {
                        m.offer(frame, ts_of(p.header), p.header.len, m.out.linktype, p.data);
                    }
                }
            }
            let m = m.get_or_insert_with(|| Matcher::new(req, 1));
            if m.out.note.is_none() {
                m.out.note = note;
            }
        }
    }
    Ok(m.map(|m| m.out).unwrap_or(Packets {
        id: req.id,
        expected: req.packets,
        linktype: 1,
        rows: Vec::new(),
        more: 0,
        note: None,
    }))
}

/// Writes packets to `file` as a pcap.
pub fn write_pcap(p: &Packets, file: File) -> Result<(), String> {
    let dead = pcap::Capture::dead(pcap::Linktype(p.linktype)).map_err(|e| e.to_string())?;
    // SAFETY: the descriptor comes from a File we give up; the Savefile owns and closes it.
    let mut save = unsafe { dead.savefile_raw_fd(file.into_raw_fd()) }.map_err(|e| e.to_string())?;
    for r in &p.rows {
        let header = pcap::PacketHeader {
            ts: libc::timeval { tv_sec: r.ts.div_euclid(1_000_000) as _, tv_usec: r.ts.rem_euclid(1_000_000) as _ },
            caplen: r.data.len() as u32,
            len: r.orig_len,
        };
        save.write(&pcap::Packet { header: &header, data: &r.data });
    }
    save.flush().map_err(|e| e.to_string())
}

/// TCP flags the way tcpdump prints them: `[S.]`, `[P.]`, `[F.]`, `[R]`.
pub fn flags(f: TcpFlags, payload: bool) -> String {
    let mut s = String::from("[");
    if f.syn {
        s.push('S');
    }
    if f.fin {
        s.push('F');
    }
    if f.rst {
        s.push('R');
    }
    if payload {
        s.push('P');
    }
    if f.ack {
        s.push('.');
    }
    s.push(']');
    s
}

/// Printable ASCII for a preview or dump: anything else is a dot, so no byte acts on the
/// terminal.
pub fn ascii(b: &[u8]) -> String {
    ascii_masked(b, 0, &[])
}

fn is_hidden(i: usize, hidden: &[Range<usize>]) -> bool {
    hidden.iter().any(|r| r.contains(&i))
}

/// [`ascii`] of `b` (which starts at offset `at` of its frame), `*` for the `hidden` bytes.
pub fn ascii_masked(b: &[u8], at: usize, hidden: &[Range<usize>]) -> String {
    b.iter()
        .enumerate()
        .map(|(i, &c)| {
            if is_hidden(at + i, hidden) {
                '*'
            } else if (0x20..0x7f).contains(&c) {
                c as char
            } else {
                '.'
            }
        })
        .collect()
}

/// The one-line preview of a row: its first 64 payload bytes, hidden ones as `*`.
pub fn preview(r: &PacketRow, hidden: &[Range<usize>]) -> String {
    let end = r.payload.end.min(r.payload.start + 64);
    ascii_masked(r.data.get(r.payload.start..end).unwrap_or(&[]), r.payload.start, hidden)
}

/// A hex/ASCII dump, 16 bytes per line: `0000  45 00 …  E..<`.
pub fn hexdump(data: &[u8]) -> Vec<String> {
    hexdump_masked(data, &[])
}

/// [`hexdump`] with the `hidden` bytes shown as `**` and `*`.
pub fn hexdump_masked(data: &[u8], hidden: &[Range<usize>]) -> Vec<String> {
    data.chunks(16)
        .enumerate()
        .map(|(i, c)| {
            let mut hex = String::with_capacity(49);
            for (j, b) in c.iter().enumerate() {
                if j == 8 {
                    hex.push(' ');
                }
                if is_hidden(i * 16 + j, hidden) {
                    hex.push_str("** ");
                } else {
                    let _ = write!(hex, "{b:02x} ");
                }
            }
            format!("{:04x}  {hex:<49} {}", i * 16, ascii_masked(c, i * 16, hidden))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(file: &str, first: u64, last: u64) -> Request {
        Request {
            id: 1,
            client: "10.231.0.1:40001".parse().unwrap(),
            server: "10.231.0.2:25".parse().unwrap(),
            file: Some(Arc::from(file)),
            first_frame: first,
            last_frame: last,
            packets: 10,
            record: None,
        }
    }

    #[test]
    fn standard_input_cannot_be_read_again_and_the_tab_says_so() {
        let origin = Origin::Files { paths: vec![PathBuf::from("-")] };
        let p = load(&origin, &request("-", 1, 10)).unwrap();
        assert!(p.rows.is_empty());
        assert!(p.note.unwrap().contains("standard input cannot be read again"));
    }

    #[test]
    fn a_compressed_file_is_read_again_through_its_source() {
        use std::io::Write;
        let demo = Path::new(env!("CARGO_MANIFEST_DIR")).join("captures/demo.pcap");
        let dir = tempfile::tempdir().unwrap();
        let gz = dir.path().join("demo.pcap.gz");
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(&std::fs::read(&demo).unwrap()).unwrap();
        std::fs::write(&gz, e.finish().unwrap()).unwrap();
        let name = gz.display().to_string();
        let plain = load(&Origin::Files { paths: vec![demo.clone()] }, &request(&demo.display().to_string(), 1, 40));
        let packed = load(&Origin::Files { paths: vec![gz] }, &request(&name, 1, 40)).unwrap();
        let plain = plain.unwrap();
        assert!(!plain.rows.is_empty());
        let frames = |p: &Packets| p.rows.iter().map(|r| (r.frame, r.ts, r.data.clone())).collect::<Vec<_>>();
        assert_eq!(frames(&plain), frames(&packed));
    }

    #[test]
    fn hexdump_shows_offsets_hex_and_safe_ascii() {
        let d = hexdump(b"220 mx\x1b[2J\r\n0123456789abcdef");
        assert_eq!(d.len(), 2);
        assert!(d[0].starts_with("0000  32 32 30 20 6d 78 1b 5b  32 4a 0d 0a"), "{}", d[0]);
        assert!(d[0].ends_with("220 mx.[2J..0123"), "{}", d[0]);
        assert!(!d.concat().contains('\x1b'));
    }

    fn local_parts(chunks: &[&[u8]]) -> Vec<String> {
        let mut e = Envelope::default();
        chunks
            .iter()
            .map(|c| {
                let hidden = e.scan(c);
                ascii_masked(c, 0, &hidden)
            })
            .collect()
    }

    #[test]
    fn envelope_local_parts_are_found_even_across_segments() {
        assert_eq!(
            local_parts(&[b"MAIL FROM:<alice@example.org> SIZE=10\r\nrcpt to: <bob@x.net>\r\n"]),
            ["MAIL FROM:<*****@example.org> SIZE=10..rcpt to: <***@x.net>.."]
        );
        assert_eq!(local_parts(&[b"RCPT TO:<ca", b"rol@x.net>\r\n"]), ["RCPT TO:<**", "***@x.net>.."]);
        assert_eq!(local_parts(&[b"MAIL FROM:<>\r\nEHLO a@b\r\n"]), ["MAIL FROM:<>..EHLO a@b.."]);
        assert_eq!(local_parts(&[b"MAIL FROM:<\"a b\"@x>\r\n"]), ["MAIL FROM:<*****@x>.."]);
    }

    #[test]
    fn flags_read_like_tcpdump() {
        let f = TcpFlags { syn: true, ack: true, fin: false, rst: false };
        assert_eq!(flags(f, false), "[S.]");
        assert_eq!(flags(TcpFlags { ack: true, ..Default::default() }, true), "[P.]");
    }
}
