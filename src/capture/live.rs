//! Live capture on an interface through libpcap.
//!
//! A blocking read on a live Linux capture may never return while no packet arrives, timeout or
//! not, so the handle is non-blocking and polled: a caller can stop promptly (Ctrl-C, `-c`,
//! `--duration`) and still drain what libpcap holds.

use std::os::fd::AsRawFd;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use super::ring::{Ring, RingSpec, SharedFileMap};
use super::{CaptureError, Packet};

/// Kernel ring size when none is given: 8 MiB, about 70 ms of a busy 1 Gbit/s link (libpcap's
/// 2 MiB is under 20 ms, shorter than a scheduling hiccup on a loaded two-core machine).
pub const DEFAULT_RING_BYTES: i32 = 8 << 20;

/// How to open the interface.
#[derive(Debug, Clone)]
pub struct LiveOptions {
    /// Promiscuous mode.
    pub promisc: bool,
    /// Bytes captured per packet.
    pub snaplen: i32,
    /// Deliver packets as they arrive (no kernel batching), as tcpdump's --immediate-mode. On by
    /// default for sessions to appear as they happen, except where libpcap's Linux ring would be
    /// too small for it (see [`immediate_mode`]).
    pub immediate: bool,
    /// Kernel buffer size in bytes (None: [`DEFAULT_RING_BYTES`]).
    pub buffer_size: Option<i32>,
    /// BPF filter.
    pub filter: Option<String>,
}

impl Default for LiveOptions {
    fn default() -> Self {
        Self { promisc: true, snaplen: 262_144, immediate: true, buffer_size: None, filter: None }
    }
}

/// Whether to ask libpcap for immediate mode on `device` when the user wants it (`requested`).
///
/// In immediate mode libpcap's Linux ring (TPACKET_V2) gives every packet a slot of the snapshot
/// length, bounded by the interface's MTU; the `any` device has no MTU, so with the default
/// snapshot length a 2 MB ring holds eight packets and a burst (a large message) is mostly
/// dropped. tcpdump -i any --immediate-mode drops the same way. Kernel batching (TPACKET_V3)
/// packs packets into blocks and delivers them within the 100 ms read timeout: nothing is lost.
pub fn immediate_mode(device: &str, requested: bool) -> bool {
    requested && device != "any"
}

/// Kernel/libpcap counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Drops {
    /// Packets the kernel received for this capture.
    pub received: u64,
    /// Dropped for lack of buffer space (we read too slowly).
    pub dropped: u64,
    /// Dropped by the interface or its driver.
    pub if_dropped: u64,
}

/// An interface as `-D` lists it.
#[derive(Debug, Clone)]
pub struct DeviceInfo {
    /// Name to pass to `-i`.
    pub name: String,
    /// Description, if libpcap has one.
    pub description: Option<String>,
    /// Flags in tcpdump's words (Up, Running, Loopback, Wireless).
    pub flags: Vec<&'static str>,
}

/// Lists capture devices, like `tcpdump -D`.
pub fn list_devices() -> Result<Vec<DeviceInfo>, CaptureError> {
    let devs =
        pcap::Device::list().map_err(|e| CaptureError::Open { path: "device list".into(), message: e.to_string() })?;
    Ok(devs
        .into_iter()
        .map(|d| {
            let mut flags = Vec::new();
            if d.flags.is_up() {
                flags.push("Up");
            }
            if d.flags.is_running() {
                flags.push("Running");
            }
            if d.flags.is_loopback() {
                flags.push("Loopback");
            }
            if d.flags.is_wireless() {
                flags.push("Wireless");
            }
            DeviceInfo { name: d.name, description: d.desc, flags }
        })
        .collect())
}

/// Turns libpcap's open errors into what the user must do about them.
fn explain_open(device: &str, e: &pcap::Error) -> CaptureError {
    let msg = e.to_string();
    let lower = msg.to_ascii_lowercase();
    let message = if lower.contains("no such device") || lower.contains("doesn't exist") {
        format!("no such capture device (list them with smtpscope -D): {msg}")
    } else if lower.contains("permission") || lower.contains("not permitted") {
        format!(
            "no permission to capture: needs CAP_NET_RAW (and CAP_NET_ADMIN for promiscuous mode or the kernel \
             buffer size); run as root, or grant them with setcap cap_net_raw,cap_net_admin=eip on the binary ({msg})"
        )
    } else {
        msg
    };
    CaptureError::Open { path: format!("interface {device}"), message }
}

/// A live capture, optionally writing every packet it returns to a pcap file.
pub struct LiveSource {
    name: Arc<str>,
    cap: pcap::Capture<pcap::Active>,
    save: Option<super::ring::Ring>,
    /// Packets written to `save` since its last flush.
    unflushed: bool,
    linktype: i32,
    frames: u64,
    header: pcap::PacketHeader,
    buf: Vec<u8>,
}

impl LiveSource {
    /// Opens `device` (and the `-w` file, or the first file of its ring) with `opts`.
    pub fn open(device: &str, opts: &LiveOptions, write: Option<(&Path, RingSpec)>) -> Result<Self, CaptureError> {
        // (see immediate_mode: the batching's block timeout is this read timeout)
        let mut inactive = pcap::Capture::from_device(device)
            .map_err(|e| explain_open(device, &e))?
            .promisc(opts.promisc)
            .snaplen(opts.snaplen)
            .immediate_mode(opts.immediate)
            .timeout(100);
        inactive = inactive.buffer_size(opts.buffer_size.unwrap_or(DEFAULT_RING_BYTES));
        let mut cap = inactive.open().map_err(|e| explain_open(device, &e))?;
        if let Some(f) = &opts.filter {
            cap.filter(f, true).map_err(|e| CaptureError::Filter { filter: f.clone(), message: e.to_string() })?;
        }
        let save = match write {
            Some((p, spec)) => {
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
                let ring = Ring::open(&cap, p, spec, now)
                    .map_err(|message| CaptureError::Open { path: p.display().to_string(), message })?;
                Some(ring)
            }
            None => None,
        };
        let cap = cap.setnonblock().map_err(|e| explain_open(device, &e))?;
        let linktype = cap.get_datalink().0;
        let header = pcap::PacketHeader { ts: libc::timeval { tv_sec: 0, tv_usec: 0 }, caplen: 0, len: 0 };
        Ok(Self {
            name: Arc::from(device),
            cap,
            save,
            unflushed: false,
            linktype,
            frames: 0,
            header,
            buf: Vec::with_capacity(65_536),
        })
    }

    /// The interface name.
    pub fn name(&self) -> &Arc<str> {
        &self.name
    }

    /// The link type libpcap opened the interface with.
    pub fn linktype(&self) -> i32 {
        self.linktype
    }

    /// Packets returned so far.
    pub fn frames(&self) -> u64 {
        self.frames
    }

    /// Next packet, waiting at most `wait` for one (`Ok(None)` when none came).
    pub fn next_packet(&mut self, wait: Duration) -> Result<Option<Packet<'_>>, CaptureError> {
        let mut got = self.read_one()?;
        if !got && !wait.is_zero() {
            self.poll(wait);
            got = self.read_one()?;
        }
        if !got {
            return Ok(None);
        }
        #[allow(clippy::unnecessary_cast)]
        let ts = self.header.ts.tv_sec as i64 * 1_000_000 + self.header.ts.tv_usec as i64;
        Ok(Some(Packet {
            ts,
            data: &self.buf,
            orig_len: self.header.len,
            linktype: self.linktype,
            source: 0,
            frame: self.frames,
        }))
    }

    /// Reads one packet into `buf` (live rates allow the copy; it keeps the borrow simple).
    fn read_one(&mut self) -> Result<bool, CaptureError> {
        match self.cap.next_packet() {
            Ok(p) => {
                self.frames += 1;
                self.header = *p.header;
                self.buf.clear();
                self.buf.extend_from_slice(p.data);
            }
            Err(pcap::Error::TimeoutExpired) | Err(pcap::Error::NoMorePackets) => {
                // A quiet moment: what was written reaches the file, so that a run killed hard
                // (a second Ctrl-C, SIGKILL) loses at most the packets of the last busy stretch.
                if std::mem::take(&mut self.unflushed) {
                    if let Some(s) = &mut self.save {
                        let _ = s.flush();
                    }
                }
                return Ok(false);
            }
            Err(e) => {
                return Err(CaptureError::Open { path: format!("interface {}", self.name), message: e.to_string() })
            }
        }
        // Written from the copy: a new ring file is opened through the capture handle.
        if let Some(s) = &mut self.save {
            s.write(&self.cap, &self.header, &self.buf, self.frames);
            self.unflushed = true;
        }
        Ok(true)
    }

    /// Which `-w` file each frame went to (None without `-w`).
    pub fn file_map(&self) -> Option<SharedFileMap> {
        self.save.as_ref().map(Ring::map)
    }

    fn poll(&self, wait: Duration) {
        let mut fds = libc::pollfd { fd: self.cap.as_raw_fd(), events: libc::POLLIN, revents: 0 };
        let ms = i32::try_from(wait.as_millis()).unwrap_or(i32::MAX);
        // SAFETY: one valid pollfd for the duration of the call.
        unsafe {
            libc::poll(&mut fds, 1, ms);
        }
    }

    /// Kernel/libpcap counters, if the platform has them.
    pub fn drops(&mut self) -> Option<Drops> {
        self.cap.stats().ok().map(|s| Drops {
            received: u64::from(s.received),
            dropped: u64::from(s.dropped),
            if_dropped: u64::from(s.if_dropped),
        })
    }

    /// Flushes and closes the `-w` file; a ring file that could not be opened is reported here.
    pub fn close_savefile(&mut self) -> Result<(), CaptureError> {
        if let Some(mut s) = self.save.take() {
            s.flush().map_err(|e| CaptureError::Open { path: "capture file".into(), message: e.to_string() })?;
            if let Some(e) = s.error.take() {
                return Err(CaptureError::Open {
                    path: "capture file".into(),
                    message: format!("{e} ({} ring file error(s); packets went on into the previous file)", s.errors),
                });
            }
        }
        Ok(())
    }
}

/// Packets per batch handed from the capture thread to the engine.
const LIVE_BATCH_PACKETS: usize = 256;
/// Captured bytes per batch.
const LIVE_BATCH_BYTES: usize = 256 * 1024;
/// Batches queued between the threads (up to 64 MiB): the kernel ring only has to ride out the
/// capture thread's own wake-ups, not the engine's stalls (a slow disk for the records, a burst
/// of sessions ending).
const LIVE_QUEUE: usize = 256;

/// How long the ring must stay empty before a stopping capture is done: past the 100 ms block
/// timeout the capture is opened with.
const DRAIN_QUIET: Duration = Duration::from_millis(150);
/// Longest drain on a link that keeps delivering after the stop.
const DRAIN_MAX: Duration = Duration::from_millis(500);
/// How often the capture thread publishes the kernel's counters for a live view.
const COUNTERS_EVERY: Duration = Duration::from_millis(250);

/// One captured packet inside a batch.
struct LiveItem {
    ts: super::Micros,
    orig_len: u32,
    start: usize,
    len: usize,
}

#[derive(Default)]
struct LiveBatch {
    data: Vec<u8>,
    items: Vec<LiveItem>,
}

enum LiveMsg {
    Batch(LiveBatch),
    Failed(CaptureError),
}

/// A [`LiveSource`] drained by a capture thread of its own (as RustNet and dumpcap do): the
/// thread does nothing but move packets from the kernel ring into a queue, so the ring never
/// waits for the engine or for the output. The engine side reads the queue with the same calls
/// as [`LiveSource`].
pub struct LiveReader {
    rx: std::sync::mpsc::Receiver<LiveMsg>,
    counters: Arc<std::sync::Mutex<Option<Drops>>>,
    stop: Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<LiveSource>>,
    source: Option<LiveSource>,
    current: LiveBatch,
    pos: usize,
    linktype: i32,
    frames: u64,
}

fn capture_loop(
    mut src: LiveSource,
    tx: std::sync::mpsc::SyncSender<LiveMsg>,
    stop: Arc<std::sync::atomic::AtomicBool>,
    limit: Option<u64>,
    counters: Arc<std::sync::Mutex<Option<Drops>>>,
) -> LiveSource {
    use std::sync::atomic::Ordering;
    let mut batch = LiveBatch::default();
    let mut draining: Option<std::time::Instant> = None;
    let mut published = std::time::Instant::now();
    loop {
        if published.elapsed() >= COUNTERS_EVERY {
            published = std::time::Instant::now();
            let now = src.drops();
            if let Ok(mut c) = counters.lock() {
                *c = now;
            }
        }
        if draining.is_none() && stop.load(Ordering::Relaxed) {
            draining = Some(std::time::Instant::now());
        }
        let at_limit = limit.is_some_and(|l| src.frames() >= l);
        // Waiting briefly keeps the thread asleep while the link is quiet and lets it notice a
        // stop request. Once stopping, the ring is read until it stays empty for longer than
        // the kernel's block timeout (the last, partly filled block is only handed over then),
        // or for half a second on a link that keeps talking.
        let wait = match draining {
            Some(since) if since.elapsed() > DRAIN_MAX => Duration::ZERO,
            Some(_) => DRAIN_QUIET,
            None => Duration::from_millis(50),
        };
        let got = if at_limit {
            Ok(None)
        } else {
            src.next_packet(wait).map(|p| {
                p.map(|p| {
                    let start = batch.data.len();
                    batch.data.extend_from_slice(p.data);
                    batch.items.push(LiveItem { ts: p.ts, orig_len: p.orig_len, start, len: p.data.len() });
                })
            })
        };
        match got {
            Ok(Some(())) if batch.items.len() < LIVE_BATCH_PACKETS && batch.data.len() < LIVE_BATCH_BYTES => continue,
            Ok(got) => {
                // A full batch, or the ring is empty for now: hand over what there is.
                if !batch.items.is_empty() && tx.send(LiveMsg::Batch(std::mem::take(&mut batch))).is_err() {
                    return src;
                }
                if got.is_none() && (draining.is_some() || at_limit) {
                    return src;
                }
            }
            Err(e) => {
                if !batch.items.is_empty() {
                    let _ = tx.send(LiveMsg::Batch(std::mem::take(&mut batch)));
                }
                let _ = tx.send(LiveMsg::Failed(e));
                return src;
            }
        }
    }
}

impl LiveReader {
    /// Starts the capture thread on `src`; it stops reading after `limit` packets (`-c`).
    pub fn new(src: LiveSource, limit: Option<u64>) -> std::io::Result<Self> {
        let linktype = src.linktype();
        let (tx, rx) = std::sync::mpsc::sync_channel(LIVE_QUEUE);
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let counters = Arc::new(std::sync::Mutex::new(None));
        let published = Arc::clone(&counters);
        let thread = std::thread::Builder::new()
            .name("smtpscope-capture".into())
            .spawn(move || capture_loop(src, tx, flag, limit, published))?;
        Ok(Self {
            rx,
            counters,
            stop,
            thread: Some(thread),
            source: None,
            current: LiveBatch::default(),
            pos: 0,
            linktype,
            frames: 0,
        })
    }

    /// The link type libpcap opened the interface with.
    pub fn linktype(&self) -> i32 {
        self.linktype
    }

    /// Packets returned so far.
    pub fn frames(&self) -> u64 {
        self.frames
    }

    /// Next packet, waiting at most `wait` for one (`Ok(None)` when none came, and for good
    /// once the capture thread has stopped and everything it read was returned).
    pub fn next_packet(&mut self, wait: Duration) -> Result<Option<Packet<'_>>, CaptureError> {
        use std::sync::mpsc::RecvTimeoutError;
        while self.pos >= self.current.items.len() {
            let msg = if wait.is_zero() {
                self.rx.try_recv().map_err(|e| match e {
                    std::sync::mpsc::TryRecvError::Empty => RecvTimeoutError::Timeout,
                    std::sync::mpsc::TryRecvError::Disconnected => RecvTimeoutError::Disconnected,
                })
            } else {
                self.rx.recv_timeout(wait)
            };
            match msg {
                Ok(LiveMsg::Batch(b)) => {
                    self.current = b;
                    self.pos = 0;
                }
                Ok(LiveMsg::Failed(e)) => return Err(e),
                Err(RecvTimeoutError::Timeout) => {
                    // While stopping, "nothing yet" is not "nothing more": wait for the thread.
                    if self.stop.load(std::sync::atomic::Ordering::Relaxed) && self.thread.is_some() {
                        match self.rx.recv() {
                            Ok(LiveMsg::Batch(b)) => {
                                self.current = b;
                                self.pos = 0;
                                continue;
                            }
                            Ok(LiveMsg::Failed(e)) => return Err(e),
                            Err(_) => {
                                self.join();
                                return Ok(None);
                            }
                        }
                    }
                    return Ok(None);
                }
                Err(RecvTimeoutError::Disconnected) => {
                    self.join();
                    return Ok(None);
                }
            }
        }
        let Some(item) = self.current.items.get(self.pos) else { return Ok(None) };
        self.pos += 1;
        self.frames += 1;
        let data = self.current.data.get(item.start..item.start + item.len).unwrap_or_default();
        Ok(Some(Packet {
            ts: item.ts,
            data,
            orig_len: item.orig_len,
            linktype: self.linktype,
            source: 0,
            frame: self.frames,
        }))
    }

    /// Asks the capture thread to read what the kernel still holds and stop; [`next_packet`]
    /// then returns the rest, then None.
    ///
    /// [`next_packet`]: LiveReader::next_packet
    pub fn stop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
    }

    fn join(&mut self) {
        if let Some(t) = self.thread.take() {
            self.source = t.join().ok();
        }
    }

    /// The source back from the capture thread (stopping it first).
    fn source(&mut self) -> Option<&mut LiveSource> {
        if self.thread.is_some() {
            self.stop();
            // Batches nobody will read are dropped, so a thread waiting to hand one over can end.
            loop {
                match self.rx.recv_timeout(Duration::from_millis(20)) {
                    Ok(_) => {}
                    Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                        if self.thread.as_ref().is_none_or(|t| t.is_finished()) {
                            break;
                        }
                    }
                    Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
                }
            }
            self.join();
        }
        self.source.as_mut()
    }

    /// The kernel's counters as the capture thread last read them (at most a quarter second
    /// old), without stopping the capture.
    pub fn drops_so_far(&self) -> Option<Drops> {
        self.counters.lock().ok().and_then(|c| *c)
    }

    /// Kernel/libpcap counters, if the platform has them (stops the capture).
    pub fn drops(&mut self) -> Option<Drops> {
        self.source()?.drops()
    }

    /// Flushes and closes the `-w` file (stops the capture).
    pub fn close_savefile(&mut self) -> Result<(), CaptureError> {
        match self.source() {
            Some(s) => s.close_savefile(),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_any_device_is_read_with_kernel_batching() {
        assert!(!immediate_mode("any", true));
        assert!(immediate_mode("eth0", true));
        assert!(!immediate_mode("eth0", false));
    }
}
