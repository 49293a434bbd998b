//! Floors for the benchmark (scripts/bench.sh): what reading a capture costs before any analysis.
//!
//! `read_loop FILE`: libpcap's read loop through the pcap crate, touching nothing but the length.
//! `read_loop --decode FILE`: the least any SMTP analyser must do — that loop plus etherparse down
//! to TCP, a flow hash map lookup per segment, and memchr over the payload for line ends.

use std::collections::HashMap;
use std::hash::BuildHasherDefault;

use rustc_hash::FxHasher;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (decode, path) = match args.as_slice() {
        [flag, p] if flag == "--decode" => (true, p),
        [p] => (false, p),
        _ => {
            eprintln!("usage: read_loop [--decode] FILE");
            std::process::exit(2);
        }
    };
    let mut cap = pcap::Capture::from_file(path).unwrap_or_else(|e| {
        eprintln!("read_loop: {path}: {e}");
        std::process::exit(2)
    });
    let (mut packets, mut bytes, mut lines) = (0u64, 0u64, 0u64);
    let mut flows: HashMap<[u8; 36], u64, BuildHasherDefault<FxHasher>> = HashMap::default();
    while let Ok(p) = cap.next_packet() {
        packets += 1;
        bytes += u64::from(p.header.len);
        if !decode {
            continue;
        }
        let Ok(s) = etherparse::LaxSlicedPacket::from_ethernet(p.data) else { continue };
        let (Some(net), Some(etherparse::TransportSlice::Tcp(tcp))) = (s.net, s.transport) else { continue };
        let mut key = [0u8; 36];
        match net {
            etherparse::LaxNetSlice::Ipv4(v4) => {
                key[..4].copy_from_slice(&v4.header().source());
                key[16..20].copy_from_slice(&v4.header().destination());
            }
            etherparse::LaxNetSlice::Ipv6(v6) => {
                key[..16].copy_from_slice(&v6.header().source());
                key[16..32].copy_from_slice(&v6.header().destination());
            }
            _ => continue,
        }
        key[32..34].copy_from_slice(&tcp.source_port().to_be_bytes());
        key[34..36].copy_from_slice(&tcp.destination_port().to_be_bytes());
        *flows.entry(key).or_default() += 1;
        lines += memchr::memchr_iter(b'\n', tcp.payload()).count() as u64;
    }
    eprintln!("read_loop: {packets} packets, {bytes} bytes, {} flows, {lines} line ends", flows.len());
}
