//! Live capture on an interface through libpcap.
//!
//! A blocking read on a live Linux capture may never return while no packet arrives, timeout or
//! not, so the handle is non-blocking and polled: a caller can stop promptly (Ctrl-C, `-c`,
//! `--duration`) and still drain what libpcap holds.

use std::os::fd::AsRawFd;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use super::{CaptureError, Packet};

/// How to open the interface.
#[derive(Debug, Clone)]
pub struct LiveOptions {
    /// Promiscuous mode.
    pub promisc: bool,
    /// Bytes captured per packet.
    pub snaplen: i32,
    /// Deliver packets as they arrive (no kernel batching).
    pub immediate: bool,
    /// Kernel buffer size in bytes.
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
    save: Option<pcap::Savefile>,
    linktype: i32,
    frames: u64,
    header: pcap::PacketHeader,
    buf: Vec<u8>,
    immediate: bool,
}

impl LiveSource {
    /// Opens `device` (and the `-w` file) with `opts`.
    pub fn open(device: &str, opts: &LiveOptions, write: Option<&Path>) -> Result<Self, CaptureError> {
        // (see immediate_mode: the batching's block timeout is this read timeout)
        let mut inactive = pcap::Capture::from_device(device)
            .map_err(|e| explain_open(device, &e))?
            .promisc(opts.promisc)
            .snaplen(opts.snaplen)
            .immediate_mode(opts.immediate)
            .timeout(100);
        if let Some(b) = opts.buffer_size {
            inactive = inactive.buffer_size(b);
        }
        let mut cap = inactive.open().map_err(|e| explain_open(device, &e))?;
        if let Some(f) = &opts.filter {
            cap.filter(f, true).map_err(|e| CaptureError::Filter { filter: f.clone(), message: e.to_string() })?;
        }
        let save = match write {
            Some(p) => Some(cap.savefile(p).map_err(|e| CaptureError::Open {
                path: p.display().to_string(),
                message: format!("cannot write the capture file: {e}"),
            })?),
            None => None,
        };
        let cap = cap.setnonblock().map_err(|e| explain_open(device, &e))?;
        let linktype = cap.get_datalink().0;
        let header = pcap::PacketHeader { ts: libc::timeval { tv_sec: 0, tv_usec: 0 }, caplen: 0, len: 0 };
        Ok(Self {
            name: Arc::from(device),
            cap,
            save,
            linktype,
            frames: 0,
            header,
            buf: Vec::with_capacity(65_536),
            immediate: opts.immediate,
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

    /// How long a read must wait, when stopping, to be sure libpcap holds nothing more: with
    /// kernel batching the last packets are handed over when their block times out (100 ms).
    pub fn drain_wait(&self) -> Duration {
        if self.immediate {
            Duration::ZERO
        } else {
            Duration::from_millis(150)
        }
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
                if let Some(s) = &mut self.save {
                    s.write(&p);
                }
                Ok(true)
            }
            Err(pcap::Error::TimeoutExpired) | Err(pcap::Error::NoMorePackets) => Ok(false),
            Err(e) => Err(CaptureError::Open { path: format!("interface {}", self.name), message: e.to_string() }),
        }
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

    /// Flushes and closes the `-w` file.
    pub fn close_savefile(&mut self) -> Result<(), CaptureError> {
        if let Some(mut s) = self.save.take() {
            s.flush().map_err(|e| CaptureError::Open { path: "capture file".into(), message: e.to_string() })?;
        }
        Ok(())
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
