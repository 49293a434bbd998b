//! A bounded packet spool for live captures: the last packets are kept in a few pcap segment
//! files in a private temporary directory, so the terminal UI can show a session's packets
//! without holding every packet in memory. The oldest segment is deleted when the bound is
//! reached; what it held is then gone (and the UI says so).

use std::collections::VecDeque;
use std::fs::{self, File};
use std::os::fd::IntoRawFd;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use super::{CaptureError, Packet};

/// Segment files kept at once (the bound is split between them).
const SEGMENTS: usize = 4;

/// One spooled pcap file and the frames it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpoolSegment {
    /// The pcap file.
    pub path: PathBuf,
    /// Frame number of its first packet.
    pub first_frame: u64,
    /// Frame number of its last packet flushed so far (0: none yet).
    pub last_frame: u64,
}

/// What a reader may open: the segments, oldest first. Shared between the capture thread and
/// readers.
#[derive(Debug, Clone, Default)]
pub struct SpoolIndex {
    /// Segments, oldest first.
    pub segments: Vec<SpoolSegment>,
    /// Frames older than this are no longer spooled.
    pub oldest_frame: u64,
}

/// The spool's directory and index, shared by the writer and readers; the files go when the
/// last holder does.
#[derive(Debug)]
pub struct SpoolShared {
    dir: PathBuf,
    index: Mutex<SpoolIndex>,
}

impl SpoolShared {
    /// The segments as last published.
    pub fn index(&self) -> SpoolIndex {
        self.index.lock().map(|i| i.clone()).unwrap_or_default()
    }

    /// The spool's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Drop for SpoolShared {
    fn drop(&mut self) {
        if let Ok(ix) = self.index.lock() {
            for s in &ix.segments {
                let _ = fs::remove_file(&s.path);
            }
        }
        let _ = fs::remove_dir(&self.dir);
    }
}

/// The writer side.
pub struct Spool {
    shared: Arc<SpoolShared>,
    linktype: i32,
    segment_bytes: u64,
    current: Option<(pcap::Savefile, u64)>,
    open: VecDeque<SpoolSegment>,
    next_id: u64,
    failed: bool,
}

impl Spool {
    /// Creates a private directory under `parent` (mode 0700; owned by `owner` when given, so a
    /// process that has dropped root can still rotate segments) keeping about `max_bytes`.
    pub fn create(
        parent: &Path,
        linktype: i32,
        max_bytes: u64,
        owner: Option<(u32, u32)>,
    ) -> Result<Self, CaptureError> {
        use std::os::unix::fs::DirBuilderExt;
        let err = |p: &Path, e: std::io::Error| CaptureError::Open {
            path: p.display().to_string(),
            message: format!("cannot create the packet spool: {e}"),
        };
        let mut dir = None;
        for attempt in 0..100u32 {
            let d = parent.join(format!("smtpscope-spool-{}-{attempt}", std::process::id()));
            match fs::DirBuilder::new().mode(0o700).create(&d) {
                Ok(()) => {
                    dir = Some(d);
                    break;
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(err(&d, e)),
            }
        }
        let dir = dir.ok_or_else(|| err(parent, std::io::Error::other("no free name")))?;
        if let Some((uid, gid)) = owner {
            std::os::unix::fs::chown(&dir, Some(uid), Some(gid)).map_err(|e| err(&dir, e))?;
        }
        Ok(Self {
            shared: Arc::new(SpoolShared { dir, index: Mutex::new(SpoolIndex::default()) }),
            linktype,
            segment_bytes: (max_bytes / SEGMENTS as u64).max(1024),
            current: None,
            open: VecDeque::new(),
            next_id: 0,
            failed: false,
        })
    }

    /// What readers hold on to (the files stay while they do).
    pub fn shared(&self) -> Arc<SpoolShared> {
        Arc::clone(&self.shared)
    }

    fn start_segment(&mut self, frame: u64) -> Option<()> {
        let path = self.shared.dir.join(format!("seg{:06}.pcap", self.next_id));
        self.next_id += 1;
        let file = File::create(&path).ok()?;
        let dead = pcap::Capture::dead(pcap::Linktype(self.linktype)).ok()?;
        // SAFETY: the descriptor comes from a File we give up; the Savefile owns it from here.
        let save = unsafe { dead.savefile_raw_fd(file.into_raw_fd()) }.ok()?;
        self.current = Some((save, 0));
        self.open.push_back(SpoolSegment { path, first_frame: frame, last_frame: 0 });
        while self.open.len() > SEGMENTS {
            if let Some(old) = self.open.pop_front() {
                let _ = fs::remove_file(&old.path);
            }
        }
        Some(())
    }

    /// Appends one packet (a failing spool disables itself; capture goes on).
    pub fn write(&mut self, p: &Packet<'_>) {
        if self.failed {
            return;
        }
        if self.current.as_ref().is_none_or(|(_, n)| *n >= self.segment_bytes) {
            self.sync();
            if self.start_segment(p.frame).is_none() {
                self.failed = true;
                return;
            }
        }
        let Some((save, n)) = &mut self.current else { return };
        let header = pcap::PacketHeader {
            ts: libc::timeval { tv_sec: p.ts.div_euclid(1_000_000) as _, tv_usec: p.ts.rem_euclid(1_000_000) as _ },
            caplen: p.data.len() as u32,
            len: p.orig_len,
        };
        save.write(&pcap::Packet { header: &header, data: p.data });
        *n += p.data.len() as u64 + 16;
        if let Some(seg) = self.open.back_mut() {
            seg.last_frame = p.frame;
        }
    }

    /// Flushes the current segment and publishes the index.
    pub fn sync(&mut self) {
        if let Some((save, _)) = &mut self.current {
            let _ = save.flush();
        }
        if let Ok(mut ix) = self.shared.index.lock() {
            ix.segments = self.open.iter().cloned().collect();
            ix.oldest_frame = self.open.front().map_or(0, |s| s.first_frame);
        }
    }
}

impl Drop for Spool {
    fn drop(&mut self) {
        // Readers may still want the packets: flush and publish; SpoolShared removes the files.
        self.sync();
        self.current = None;
    }
}
