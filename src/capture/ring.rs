//! The `-w` ring buffer as tcpdump keeps it: `-C` starts a new file past N million bytes, `-G`
//! every N seconds (strftime fields in the name, UTC here), `-W` keeps the newest N files. Names
//! are tcpdump's: `FILE`, `FILE1`, `FILE2`, … without `-W`; `FILE0`, `FILE1`, … zero-padded to
//! the digits of N-1 with it. Unlike tcpdump, `-W` never stops the capture.
//!
//! Every file opened is noted in a [`FileMap`] with the capture's frame number at its start, so
//! that a record can name the file holding its first packet and each evidence frame can be
//! counted from 1 in its own file.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::strftime::{period_start, strftime};

/// pcap file header and per-packet record header sizes.
const FILE_HEADER: u64 = 24;
const RECORD_HEADER: u64 = 16;
/// Files remembered in a [`FileMap`]: far more than a session spans.
const MAP_KEEP: usize = 4096;

/// `-C`, `-G` and `-W`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RingSpec {
    /// `-C N`: a new file once the current one exceeds N × 1,000,000 bytes.
    pub megabytes: Option<u64>,
    /// `-G SECS`: a new file every SECS seconds.
    pub seconds: Option<u64>,
    /// `-W N`: keep the newest N files.
    pub files: Option<u32>,
}

impl RingSpec {
    /// Whether any of `-C`, `-G`, `-W` is given.
    pub fn is_ring(&self) -> bool {
        self.megabytes.is_some() || self.seconds.is_some() || self.files.is_some()
    }
}

/// tcpdump's zero padding with `-W N`: the digits of N-1 (none for 1).
pub fn pad_digits(files: u32) -> usize {
    let mut x = files.saturating_sub(1);
    let mut c = 0;
    while x > 0 {
        c += 1;
        x /= 10;
    }
    c
}

/// tcpdump's name for file number `count` of the (already strftime'd) base name.
pub fn file_name(base: &str, count: u64, pad: usize) -> String {
    if count == 0 && pad == 0 {
        base.to_string()
    } else {
        format!("{base}{count:0pad$}")
    }
}

/// Which `-w` file each captured frame went to: (first frame of the file, file name).
#[derive(Debug, Default)]
pub struct FileMap {
    files: VecDeque<(u64, Arc<str>)>,
}

impl FileMap {
    /// Notes that frames from `first_frame` on go to `name`.
    pub fn started(&mut self, first_frame: u64, name: Arc<str>) {
        if self.files.len() >= MAP_KEEP {
            self.files.pop_front();
        }
        self.files.push_back((first_frame, name));
    }

    /// The file holding capture frame `frame` and the frame's number in it (from 1).
    pub fn locate(&self, frame: u64) -> Option<(Arc<str>, u64)> {
        let i = self.files.partition_point(|(first, _)| *first <= frame);
        let (first, name) = self.files.get(i.checked_sub(1)?)?;
        Some((name.clone(), frame - first + 1))
    }
}

/// The map shared between the capture thread (which writes) and the record writer (which reads).
pub type SharedFileMap = Arc<Mutex<FileMap>>;

/// The `-w` writer: one pcap file, or a ring of them.
pub struct Ring {
    pattern: String,
    spec: RingSpec,
    pad: usize,
    save: Option<pcap::Savefile>,
    /// Bytes in the current file.
    len: u64,
    /// Size-rotation counter (tcpdump's Cflag_count).
    count: u64,
    /// The period of the current file (`-G`).
    period: i64,
    /// Files written, oldest first (for `-W`).
    kept: VecDeque<PathBuf>,
    map: SharedFileMap,
    /// The first error opening a new file, not yet reported.
    pub error: Option<String>,
    /// Files that could not be opened or deleted.
    pub errors: u64,
}

impl Ring {
    /// Opens the first file for a capture whose first packet has timestamp `now` (seconds).
    pub fn open<T: pcap::Activated + ?Sized>(
        cap: &pcap::Capture<T>,
        pattern: &Path,
        spec: RingSpec,
        now: i64,
    ) -> Result<Self, String> {
        let pattern = pattern.to_str().ok_or("the -w file name is not UTF-8")?.to_string();
        if spec.seconds.is_some() {
            strftime(&pattern, 0).map_err(|e| e.to_string())?;
        }
        let mut r = Self {
            pattern,
            spec,
            pad: spec.files.map_or(0, pad_digits),
            save: None,
            len: 0,
            count: 0,
            period: spec.seconds.map_or(0, |s| period_start(now, s)),
            kept: VecDeque::new(),
            map: SharedFileMap::default(),
            error: None,
            errors: 0,
        };
        r.start(cap, 1).map_err(|(_, e)| e)?;
        Ok(r)
    }

    /// The file map, for the record writer.
    pub fn map(&self) -> SharedFileMap {
        Arc::clone(&self.map)
    }

    fn name(&self) -> String {
        let base = if self.spec.seconds.is_some() {
            strftime(&self.pattern, self.period).unwrap_or_else(|_| self.pattern.clone())
        } else {
            self.pattern.clone()
        };
        // tcpdump numbers files only for -C; -G alone names them by time.
        let pad = if self.spec.megabytes.is_some() { self.pad } else { 0 };
        file_name(&base, self.count, pad)
    }

    /// Opens the next file; the error names the file and what went wrong.
    fn start<T: pcap::Activated + ?Sized>(
        &mut self,
        cap: &pcap::Capture<T>,
        frame: u64,
    ) -> Result<(), (String, String)> {
        let name = self.name();
        // A name the ring comes back to is unlinked first: the first file was created before
        // root was given up, and the user the capture runs as may replace it but not rewrite it.
        if self.kept.iter().any(|p| p.as_os_str() == name.as_str()) {
            let _ = std::fs::remove_file(&name);
        }
        let mut save =
            cap.savefile(&name).map_err(|e| (name.clone(), format!("cannot write the capture file: {e}")))?;
        // The header on disk at once: a run killed now still leaves a readable file.
        save.flush().map_err(|e| (name.clone(), format!("cannot write the capture file: {e}")))?;
        self.save = Some(save);
        self.len = FILE_HEADER;
        let path = PathBuf::from(&name);
        self.kept.retain(|p| *p != path);
        self.kept.push_back(path);
        if let Some(n) = self.spec.files {
            while self.kept.len() > n as usize {
                if let Some(old) = self.kept.pop_front() {
                    if std::fs::remove_file(&old).is_err() && old.exists() {
                        self.errors += 1;
                    }
                }
            }
        }
        if let Ok(mut m) = self.map.lock() {
            m.started(frame, Arc::from(name.as_str()));
        }
        Ok(())
    }

    /// Writes packet `frame` (capture numbering), starting a new file first when one is due.
    pub fn write<T: pcap::Activated + ?Sized>(
        &mut self,
        cap: &pcap::Capture<T>,
        header: &pcap::PacketHeader,
        data: &[u8],
        frame: u64,
    ) {
        #[allow(clippy::unnecessary_cast)]
        let secs = header.ts.tv_sec as i64;
        let mut due = false;
        if let Some(s) = self.spec.seconds {
            let p = period_start(secs, s);
            if p > self.period {
                self.period = p;
                self.count = 0;
                due = true;
            }
        }
        if let Some(mb) = self.spec.megabytes {
            if !due && self.len > mb.saturating_mul(1_000_000) {
                self.count += 1;
                if let (Some(n), None) = (self.spec.files, self.spec.seconds) {
                    if self.count >= u64::from(n) {
                        self.count = 0;
                    }
                }
                due = true;
            }
        }
        if due {
            // The old file is closed only once the new one is open: on failure packets go on
            // into the old one.
            if let Err((name, e)) = self.start(cap, frame) {
                self.errors += 1;
                self.error.get_or_insert(format!("{name}: {e}"));
            }
        }
        if let Some(s) = &mut self.save {
            s.write(&pcap::Packet::new(header, data));
            self.len += RECORD_HEADER + data.len() as u64;
        }
    }

    /// Pushes what was written to the file.
    pub fn flush(&mut self) -> Result<(), pcap::Error> {
        match &mut self.save {
            Some(s) => s.flush(),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_tcpdumps() {
        assert_eq!(pad_digits(1), 0);
        assert_eq!(pad_digits(10), 1);
        assert_eq!(pad_digits(11), 2);
        assert_eq!(pad_digits(20), 2);
        assert_eq!(pad_digits(101), 3);
        assert_eq!(file_name("ring.pcap", 0, 0), "ring.pcap");
        assert_eq!(file_name("ring.pcap", 1, 0), "ring.pcap1");
        assert_eq!(file_name("ring.pcap", 0, 2), "ring.pcap00");
        assert_eq!(file_name("ring.pcap", 7, 2), "ring.pcap07");
    }

    #[test]
    fn frames_are_located_in_their_file_and_counted_from_one() {
        let mut m = FileMap::default();
        m.started(1, Arc::from("a"));
        m.started(101, Arc::from("b"));
        assert_eq!(m.locate(1), Some((Arc::from("a"), 1)));
        assert_eq!(m.locate(100), Some((Arc::from("a"), 100)));
        assert_eq!(m.locate(101), Some((Arc::from("b"), 1)));
        assert_eq!(m.locate(5000), Some((Arc::from("b"), 4900)));
        assert_eq!(m.locate(0), None);
    }

    fn packet(sec: i64, len: usize) -> (pcap::PacketHeader, Vec<u8>) {
        let h = pcap::PacketHeader {
            ts: libc::timeval { tv_sec: sec as libc::time_t, tv_usec: 0 },
            caplen: len as u32,
            len: len as u32,
        };
        (h, vec![0u8; len])
    }

    fn frames(p: &Path) -> usize {
        let mut c = pcap::Capture::from_file(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        let mut n = 0;
        while c.next_packet().is_ok() {
            n += 1;
        }
        n
    }

    #[test]
    fn size_rotation_with_w_keeps_the_newest_files_under_cycling_names() {
        let d = tempfile::tempdir().unwrap();
        let cap = pcap::Capture::dead(pcap::Linktype::ETHERNET).unwrap();
        let base = d.path().join("ring.pcap");
        let spec = RingSpec { megabytes: Some(1), seconds: None, files: Some(3) };
        let mut r = Ring::open(&cap, &base, spec, 0).unwrap();
        // 60 kB packets: 17 per file (a file is closed once it exceeds 1 MB).
        for f in 1..=(17 * 4 + 1) {
            let (h, d) = packet(0, 60_000);
            r.write(&cap, &h, &d, f);
        }
        r.flush().unwrap();
        let names: Vec<String> = {
            let mut v: Vec<String> =
                std::fs::read_dir(d.path()).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
            v.sort();
            v
        };
        // Files 0, 1, 2, then 0 again and 1 (the last frame): 0 and 1 rewritten, 2 the oldest.
        assert_eq!(names, ["ring.pcap0", "ring.pcap1", "ring.pcap2"]);
        assert_eq!(frames(&d.path().join("ring.pcap0")), 17);
        assert_eq!(frames(&d.path().join("ring.pcap1")), 1);
        let m = r.map();
        let m = m.lock().unwrap();
        assert_eq!(m.locate(69).unwrap(), (Arc::from(format!("{}1", base.display()).as_str()), 1));
        assert_eq!(m.locate(68).unwrap().1, 17);
    }

    #[test]
    fn without_w_files_are_numbered_from_the_bare_name_on() {
        let d = tempfile::tempdir().unwrap();
        let cap = pcap::Capture::dead(pcap::Linktype::ETHERNET).unwrap();
        let base = d.path().join("ring.pcap");
        let mut r = Ring::open(&cap, &base, RingSpec { megabytes: Some(1), ..RingSpec::default() }, 0).unwrap();
        for f in 1..=35u64 {
            let (h, d) = packet(0, 60_000);
            r.write(&cap, &h, &d, f);
        }
        r.flush().unwrap();
        assert_eq!(frames(&base), 17);
        assert_eq!(frames(&d.path().join("ring.pcap1")), 17);
        assert_eq!(frames(&d.path().join("ring.pcap2")), 1);
    }

    #[test]
    fn time_rotation_names_files_by_strftime_and_deletes_beyond_w() {
        let d = tempfile::tempdir().unwrap();
        let cap = pcap::Capture::dead(pcap::Linktype::ETHERNET).unwrap();
        let base = d.path().join("r-%H%M%S.pcap");
        let spec = RingSpec { megabytes: None, seconds: Some(10), files: Some(2) };
        let mut r = Ring::open(&cap, &base, spec, 0).unwrap();
        for (f, t) in [(1u64, 0i64), (2, 5), (3, 10), (4, 25), (5, 31)] {
            let (h, d) = packet(t, 60);
            r.write(&cap, &h, &d, f);
        }
        r.flush().unwrap();
        assert!(!d.path().join("r-000000.pcap").exists());
        assert!(!d.path().join("r-000010.pcap").exists());
        assert_eq!(frames(&d.path().join("r-000020.pcap")), 1);
        assert_eq!(frames(&d.path().join("r-000030.pcap")), 1);
    }
}
