//! AUTH secrets read straight from a capture's bytes, independently of the engine: what the
//! "the secret never appears" assertions search every view for.

use std::collections::HashMap;
use std::path::Path;

use base64::Engine as _;
use smtpscope::capture::MergedReader;

/// The secrets one capture carries in clear.
#[derive(Debug, Default, Clone)]
pub struct Secrets {
    /// Base64 lines and arguments as they crossed the wire (AUTH initial responses, the lines
    /// answering 334, X-EXPS blobs).
    pub wire: Vec<String>,
    /// Their decoded printable parts (user names, passwords) of four bytes or more.
    pub decoded: Vec<String>,
}

impl Secrets {
    /// Every string that must never be shown: each wire secret, and for long ones also their
    /// first 16 characters (a truncated column still leaks them); with `decoded`, the decoded parts.
    pub fn needles(&self, decoded: bool) -> Vec<String> {
        let mut n = Vec::new();
        for w in &self.wire {
            n.push(w.clone());
            if w.len() > 16 {
                n.push(w[..16].to_string());
            }
        }
        if decoded {
            n.extend(self.decoded.iter().cloned());
        }
        n
    }

    /// Fails naming the first needle found in `text`.
    pub fn assert_absent(&self, text: &str, decoded: bool, view: &str) {
        for s in self.needles(decoded) {
            assert!(!text.contains(&s), "{view} shows the secret {s:?}");
        }
    }
}

fn is_base64(l: &str) -> bool {
    l.len() >= 4 && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/' || b == b'=')
}

/// The sender (`ip:port`) and TCP payload of an Ethernet or raw-IP frame.
fn payload(linktype: i32, data: &[u8]) -> Option<(Vec<u8>, Vec<u8>)> {
    use etherparse::{SlicedPacket, TransportSlice};
    let p = match linktype {
        1 => SlicedPacket::from_ethernet(data).ok()?,
        12 | 14 | 101 => SlicedPacket::from_ip(data).ok()?,
        _ => return None,
    };
    let Some(TransportSlice::Tcp(t)) = &p.transport else { return None };
    let src = match &p.net {
        Some(etherparse::NetSlice::Ipv4(ip)) => format!("{}:{}", ip.header().source_addr(), t.source_port()),
        Some(etherparse::NetSlice::Ipv6(ip)) => format!("[{}]:{}", ip.header().source_addr(), t.source_port()),
        _ => return None,
    };
    Some((src.into_bytes(), t.payload().to_vec()))
}

/// Reads every client line of `path` (per sender, in capture order; a retransmitted copy of a
/// line is read twice, which finds the same secret twice) and collects what follows AUTH and
/// X-EXPS: the initial response and the base64 lines after it.
pub fn secrets(path: &Path) -> Secrets {
    let mut reader = MergedReader::open(&[path.to_path_buf()], None).expect("open capture");
    let mut pending: HashMap<Vec<u8>, Vec<u8>> = HashMap::new();
    let mut in_auth: HashMap<Vec<u8>, bool> = HashMap::new();
    let mut out = Secrets::default();
    while let Some(p) = reader.next_packet() {
        let Some((src, data)) = payload(p.linktype, p.data) else { continue };
        let buf = pending.entry(src.clone()).or_default();
        buf.extend_from_slice(&data);
        while let Some(end) = buf.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = buf.drain(..=end).collect();
            let line = String::from_utf8_lossy(&line).trim_end_matches(['\r', '\n']).to_string();
            let words: Vec<&str> = line.split(' ').collect();
            let verb = words.first().map(|w| w.to_ascii_uppercase()).unwrap_or_default();
            let auth = in_auth.entry(src.clone()).or_default();
            if verb == "AUTH" || verb == "X-EXPS" {
                *auth = true;
                if let Some(arg) = words.get(2).filter(|a| is_base64(a)) {
                    out.wire.push(arg.to_string());
                }
            } else if *auth && is_base64(&line) {
                out.wire.push(line.clone());
            } else {
                *auth = false;
            }
        }
        // A data stream never holds a line this long before its end: keep the buffer small.
        if buf.len() > 1 << 16 {
            buf.clear();
        }
    }
    out.wire.sort();
    out.wire.dedup();
    for w in &out.wire {
        let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(w) else { continue };
        for part in bytes.split(|b| *b == 0) {
            if part.len() >= 4 && part.iter().all(|b| b.is_ascii_graphic()) {
                out.decoded.push(String::from_utf8_lossy(part).into_owned());
            }
        }
    }
    out.decoded.sort();
    out.decoded.dedup();
    out
}
