//! The packets of one session, read again on demand: no packet is kept in memory while
//! capturing. Files are re-read over the session's frame window (its first to last frame, in
//! its own input file, with the user's BPF applied again so frame numbers agree with the
//! evidence); a live capture is read back from its bounded spool. Packets are matched to the
//! session's 4-tuple with smtpscope's own decoder, which also sees through the VLAN, GRE/ERSPAN,
//! VXLAN, MPLS and PPPoE encapsulations a libpcap filter cannot look inside.

use std::fmt::Write as _;
use std::fs::File;
use std::net::SocketAddr;
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
    /// The first payload bytes (for the one-line preview).
    pub preview: Vec<u8>,
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
        }
    }
}

struct Matcher {
    req: Request,
    decoder: Decoder,
    out: Packets,
}

impl Matcher {
    fn new(req: &Request, linktype: i32) -> Self {
        Self {
            req: req.clone(),
            decoder: Decoder::new(),
            out: Packets { id: req.id, expected: req.packets, linktype, rows: Vec::new(), more: 0, note: None },
        }
    }

    fn offer(&mut self, frame: u64, ts: i64, orig_len: u32, data: &[u8]) {
        let Ok(seg) = self.decoder.decode(self.out.linktype, data) else { return };
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
        let preview = seg.payload.get(..seg.payload.len().min(64)).unwrap_or(&[]).to_vec();
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
            preview,
        });
    }
}

fn ts_of(h: &pcap::PacketHeader) -> i64 {
    #[allow(clippy::unnecessary_cast)]
    let t = h.ts.tv_sec as i64 * 1_000_000 + h.ts.tv_usec as i64;
    t
}

/// Reads frames `first..=last` of one file.
fn scan_file(path: &Path, req: &Request, m: &mut Option<Matcher>) -> Result<(), String> {
    let mut cap = pcap::Capture::from_file(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let m = m.get_or_insert_with(|| Matcher::new(req, cap.get_datalink().0));
    let mut frame = 0u64;
    loop {
        match cap.next_packet() {
            Ok(p) => {
                frame += 1;
                if frame < req.first_frame {
                    continue;
                }
                if frame > req.last_frame {
                    break;
                }
                m.offer(frame, ts_of(p.header), p.header.len, p.data);
            }
            Err(pcap::Error::NoMorePackets) => break,
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
                        m.offer(frame, ts_of(p.header), p.header.len, p.data);
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
    b.iter().map(|&c| if (0x20..0x7f).contains(&c) { c as char } else { '.' }).collect()
}

/// A hex/ASCII dump, 16 bytes per line: `0000  45 00 …  E..<`.
pub fn hexdump(data: &[u8]) -> Vec<String> {
    data.chunks(16)
        .enumerate()
        .map(|(i, c)| {
            let mut hex = String::with_capacity(49);
            for (j, b) in c.iter().enumerate() {
                if j == 8 {
                    hex.push(' ');
                }
                let _ = write!(hex, "{b:02x} ");
            }
            format!("{:04x}  {hex:<49} {}", i * 16, ascii(c))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hexdump_shows_offsets_hex_and_safe_ascii() {
        let d = hexdump(b"220 mx\x1b[2J\r\n0123456789abcdef");
        assert_eq!(d.len(), 2);
        assert!(d[0].starts_with("0000  32 32 30 20 6d 78 1b 5b  32 4a 0d 0a"), "{}", d[0]);
        assert!(d[0].ends_with("220 mx.[2J..0123"), "{}", d[0]);
        assert!(!d.concat().contains('\x1b'));
    }

    #[test]
    fn flags_read_like_tcpdump() {
        let f = TcpFlags { syn: true, ack: true, fin: false, rst: false };
        assert_eq!(flags(f, false), "[S.]");
        assert_eq!(flags(TcpFlags { ack: true, ..Default::default() }, true), "[P.]");
    }
}
