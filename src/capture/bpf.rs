//! The BPF capture filter on file input: compiled by libpcap for each link type met, run on
//! each frame as libpcap runs it (`pcap_offline_filter`), by the reader, so that frames keep
//! their numbers in the file whatever the filter skips.

use super::CaptureError;

extern "C" {
    // libpcap ≥ 1.0 on every Unix; `pcap` already links the library.
    fn pcap_offline_filter(
        prog: *const libc::c_void,
        header: *const libc::c_void,
        data: *const libc::c_uchar,
    ) -> libc::c_int;
}

/// Whether `filter` accepts the packet, judged as libpcap judges it (with the packet's length on
/// the wire, which `BpfProgram::filter` replaces by the captured length: `greater`/`less` and
/// `len` differ on a snaplen-cut capture).
pub(super) fn accepts(filter: &pcap::BpfProgram, ts: i64, data: &[u8], orig_len: u32) -> bool {
    let Ok(caplen) = u32::try_from(data.len()) else {
        return filter.filter(data);
    };
    let header = pcap::PacketHeader {
        ts: libc::timeval { tv_sec: ts.div_euclid(1_000_000) as _, tv_usec: ts.rem_euclid(1_000_000) as _ },
        caplen,
        len: orig_len,
    };
    // SAFETY: `BpfProgram` is `repr(transparent)` over libpcap's `struct bpf_program` and
    // `PacketHeader` is `repr(C)` with `struct pcap_pkthdr`'s fields; libpcap reads at most
    // `caplen` bytes of `data`, which is exactly `data`'s length.
    unsafe {
        pcap_offline_filter(
            (filter as *const pcap::BpfProgram).cast(),
            (&header as *const pcap::PacketHeader).cast(),
            data.as_ptr(),
        ) != 0
    }
}

/// A BPF expression and its programs, one per link type (most files have one).
pub struct Filter {
    expr: String,
    /// `None` for a link type libpcap cannot compile the expression for: its frames fail.
    programs: Vec<(i32, Option<pcap::BpfProgram>)>,
}

fn compile(expr: &str, linktype: i32) -> Result<pcap::BpfProgram, CaptureError> {
    let err = |e: pcap::Error| CaptureError::Filter { filter: expr.to_string(), message: e.to_string() };
    let dead = pcap::Capture::dead(pcap::Linktype(linktype)).map_err(err)?;
    dead.compile(expr, true).map_err(err)
}

impl Filter {
    /// Compiles `expr` for `linktype` (the file's first); a bad expression is an error here.
    pub fn new(expr: &str, linktype: i32) -> Result<Self, CaptureError> {
        let first = compile(expr, linktype)?;
        Ok(Self { expr: expr.to_string(), programs: vec![(linktype, Some(first))] })
    }

    /// Whether the frame passes; compiles for a link type not met before.
    #[inline]
    pub fn accepts(&mut self, linktype: i32, ts: i64, data: &[u8], orig_len: u32) -> bool {
        let prog = match self.programs.iter().position(|(t, _)| *t == linktype) {
            Some(i) => self.programs.get(i).and_then(|(_, p)| p.as_ref()),
            None => {
                self.programs.push((linktype, compile(&self.expr, linktype).ok()));
                self.programs.last().and_then(|(_, p)| p.as_ref())
            }
        };
        prog.is_some_and(|p| accepts(p, ts, data, orig_len))
    }
}
