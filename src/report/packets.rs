//! The packets of the reported sessions, written as a pcap (`smtpscope -r F -Y FILTER -w out.pcap`,
//! as `tshark -r F -Y FILTER -w out.pcap`): the evidence for a violation, ready to attach to a
//! ticket. Nothing is held while the sessions are read; the input files are read a second time and
//! the frames of the kept sessions (their 4-tuple, within their frame span) are copied as
//! captured, in file order.

use std::collections::HashMap;
use std::fs::File;
use std::net::SocketAddr;
use std::os::fd::IntoRawFd;
use std::path::PathBuf;

use thiserror::Error;

use crate::decode::Decoder;
use crate::session::Session;

/// What went wrong writing the pcap.
#[derive(Debug, Error)]
pub enum PacketsError {
    /// An input could not be read again.
    #[error("-w: cannot read {path} again: {why}")]
    Read {
        /// The input.
        path: String,
        /// libpcap's message.
        why: String,
    },
    /// The inputs' link types differ: one pcap holds one.
    #[error("-w: the inputs have different link types ({0} and {1}); write one input at a time")]
    Linktypes(i32, i32),
    /// Writing failed.
    #[error("-w: {0}")]
    Write(String),
}

/// One kept session: its ends (either direction) and frame span in its file.
#[derive(Debug, Clone, Copy)]
struct Span {
    first: u64,
    last: u64,
}

/// The sessions to write, by input file.
#[derive(Debug, Default)]
pub struct Keep {
    by_file: HashMap<String, HashMap<(SocketAddr, SocketAddr), Vec<Span>>>,
    sessions: u64,
}

fn key(a: SocketAddr, b: SocketAddr) -> (SocketAddr, SocketAddr) {
    if a <= b {
        (a, b)
    } else {
        (b, a)
    }
}

impl Keep {
    /// Remembers a reported session (a few dozen bytes; its packets are read later).
    pub fn add(&mut self, s: &Session) {
        let file = s.file.as_deref().unwrap_or_default().to_string();
        let span = Span { first: s.first_frame, last: s.last_frame.max(s.first_frame) };
        self.by_file.entry(file).or_default().entry(key(s.client, s.server)).or_default().push(span);
        self.sessions += 1;
    }

    /// Sessions kept.
    pub fn sessions(&self) -> u64 {
        self.sessions
    }

    /// Reads `inputs` again (in the order given; each file's frames in file order) and writes the
    /// kept sessions' frames to `out`. Returns the number of frames written.
    pub fn write(&self, inputs: &[PathBuf], out: File) -> Result<u64, PacketsError> {
        let mut save: Option<(i32, pcap::Savefile)> = None;
        let mut out = Some(out);
        let mut written = 0u64;
        for path in inputs {
            let name = path.display().to_string();
            let read_err = |e: pcap::Error| PacketsError::Read { path: name.clone(), why: e.to_string() };
            let mut cap = pcap::Capture::from_file(path).map_err(read_err)?;
            let linktype = cap.get_datalink().0;
            match &save {
                Some((lt, _)) if *lt != linktype => return Err(PacketsError::Linktypes(*lt, linktype)),
                Some(_) => {}
                None => {
                    let dead = pcap::Capture::dead(pcap::Linktype(linktype))
                        .map_err(|e| PacketsError::Write(e.to_string()))?;
                    let Some(file) = out.take() else { return Err(PacketsError::Write("no output".into())) };
                    // SAFETY: the descriptor comes from a File given up here; the Savefile owns and
                    // closes it.
                    let s = unsafe { dead.savefile_raw_fd(file.into_raw_fd()) }
                        .map_err(|e| PacketsError::Write(e.to_string()))?;
                    save = Some((linktype, s));
                }
            }
            let (Some(flows), Some((_, sink))) = (self.by_file.get(&name), save.as_mut()) else { continue };
            let last = flows.values().flatten().map(|s| s.last).max().unwrap_or(0);
            let mut decoder = Decoder::new();
            let mut frame = 0u64;
            // A truncated input ends where the first pass ended too.
            while let Ok(p) = cap.next_packet() {
                frame += 1;
                if frame > last {
                    break;
                }
                let Ok(seg) = decoder.decode(linktype, p.data) else { continue };
                let k = key(SocketAddr::new(seg.src, seg.sport), SocketAddr::new(seg.dst, seg.dport));
                if flows.get(&k).is_some_and(|spans| spans.iter().any(|s| (s.first..=s.last).contains(&frame))) {
                    sink.write(&p);
                    written += 1;
                }
            }
        }
        if let Some((_, mut s)) = save {
            s.flush().map_err(|e| PacketsError::Write(e.to_string()))?;
        }
        Ok(written)
    }
}
