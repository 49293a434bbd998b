//! Reading a savefile through libpcap: opened with a read buffer sized for streaming, and the
//! BPF filter run on each packet by the reader so that frames keep their numbers in the file.
//!
//! libpcap reads a savefile through stdio, whose buffer is the file system's block size (4 KiB): one
//! `read` system call per 4 KiB was the largest single cost of the reader. Opening the file here lets
//! the buffer be set before libpcap's first read, as C requires; libpcap then owns the stream.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::ptr::NonNull;

/// stdio buffer for a savefile: 256 system calls per 256 MiB instead of 65 536.
const READ_BUFFER: usize = 1 << 20;

extern "C" {
    // libpcap ≥ 0.9 on every Unix; `pcap` already links the library.
    fn pcap_fopen_offline(fp: *mut libc::FILE, errbuf: *mut libc::c_char) -> *mut libc::c_void;
    fn pcap_offline_filter(
        prog: *const libc::c_void,
        header: *const libc::c_void,
        data: *const libc::c_uchar,
    ) -> libc::c_int;
}

/// Whether `filter` accepts the packet, judged as libpcap judges it (with the packet's length on
/// the wire, which `BpfProgram::filter` replaces by the captured length: `greater`/`less` and
/// `len` differ on a snaplen-cut capture).
pub(super) fn bpf_accepts(filter: &pcap::BpfProgram, header: &pcap::PacketHeader, data: &[u8]) -> bool {
    if usize::try_from(header.caplen).map_or(true, |n| n > data.len()) {
        return filter.filter(data);
    }
    // SAFETY: `BpfProgram` is `repr(transparent)` over libpcap's `struct bpf_program` and
    // `PacketHeader` is `repr(C)` with `struct pcap_pkthdr`'s fields; libpcap reads at most
    // `caplen` bytes of `data`, checked above to be in bounds.
    unsafe {
        pcap_offline_filter(
            (filter as *const pcap::BpfProgram).cast(),
            (header as *const pcap::PacketHeader).cast(),
            data.as_ptr(),
        ) != 0
    }
}

/// The stdio buffer of an offline capture opened by [`open`]: keep it alive, declared after the
/// capture (fields drop in order), so that closing the stream happens while it still exists.
pub(super) struct ReadBuffer {
    _buffer: Box<[u8]>,
}

/// Opens `path` with a large read buffer; `None` when that is not possible (standard input, a path
/// with a NUL byte, a file libpcap refuses), and the caller opens it the usual way, which also
/// produces libpcap's own error message.
pub(super) fn open(path: &Path) -> Option<(pcap::Capture<pcap::Offline>, ReadBuffer)> {
    if path.as_os_str() == "-" {
        return None;
    }
    let c_path = CString::new(path.as_os_str().as_bytes()).ok()?;
    // SAFETY: both strings are NUL-terminated and live across the call.
    let file = unsafe { libc::fopen(c_path.as_ptr(), c"rb".as_ptr()) };
    if file.is_null() {
        return None;
    }
    let mut buffer = vec![0u8; READ_BUFFER].into_boxed_slice();
    // libpcap's PCAP_ERRBUF_SIZE.
    let mut errbuf = [0 as libc::c_char; 256];
    // SAFETY: `file` is a fresh stream with no I/O yet, so setvbuf is allowed; the buffer's heap
    // allocation does not move when the Box does and outlives the stream (see `ReadBuffer`). On
    // success libpcap owns `file` and closes it in pcap_close; on failure it is still ours.
    unsafe {
        if libc::setvbuf(file, buffer.as_mut_ptr().cast(), libc::_IOFBF, buffer.len()) != 0 {
            libc::fclose(file);
            return None;
        }
        match NonNull::new(pcap_fopen_offline(file, errbuf.as_mut_ptr())) {
            // The pcap crate wraps a raw handle through `From`, as its own constructors do.
            Some(handle) => Some((pcap::Capture::from(handle.cast()), ReadBuffer { _buffer: buffer })),
            None => {
                libc::fclose(file);
                None
            }
        }
    }
}
