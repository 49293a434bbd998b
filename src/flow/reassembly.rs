//! One direction of a TCP connection turned back into a byte stream.
//!
//! Conventions (shared with the ground truth): the first copy of any byte wins; a
//! retransmission that disagrees with it is an anomaly, not data; holes that cannot be filled
//! become explicit gaps so the layer above can resynchronise.

use std::collections::btree_map::Entry;
use std::collections::BTreeMap;

/// A piece of the reassembled stream, in order.
#[derive(Debug, PartialEq, Eq)]
pub enum Chunk<'a> {
    /// Contiguous bytes.
    Data(&'a [u8]),
    /// Bytes that were sent but are not in the capture.
    Gap(u64),
}

/// Counters kept per direction.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct StreamStats {
    /// Segments (or parts) that repeated bytes already delivered.
    pub retransmissions: u64,
    /// Retransmitted bytes that differed from the first copy.
    pub conflicting_overlaps: u64,
    /// Segments that arrived ahead of a hole.
    pub out_of_order: u64,
    /// Holes declared.
    pub gaps: u64,
    /// Bytes missing in those holes.
    pub gap_bytes: u64,
    /// Bytes delivered in order.
    pub delivered: u64,
    /// Out-of-order bytes dropped because the per-flow buffer was full.
    pub buffer_overflows: u64,
}

/// Limits for one direction.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Most out-of-order bytes held while waiting for a hole to fill.
    pub max_buffered: usize,
    /// How many delivered bytes are remembered to check retransmissions against.
    pub tail: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self { max_buffered: 256 * 1024, tail: 2048 }
    }
}

/// The last delivered bytes, kept to compare retransmissions with: a ring of at most
/// `Limits::tail` bytes (grown with the stream up to the limit, never zeroed), so delivering a
/// segment costs one bounded copy and, once the ring is full, no allocation.
/// Bytes the tail first reserves.
const TAIL_FIRST: usize = 128;

#[derive(Default)]
struct Tail {
    /// Filled from 0 up to the limit, then overwritten in place from `end`.
    ring: Vec<u8>,
    /// Where the next byte goes once the ring is full.
    end: usize,
}

impl Tail {
    fn clear(&mut self) {
        self.ring.clear();
        self.end = 0;
    }

    fn len(&self) -> usize {
        self.ring.len()
    }

    fn push(&mut self, data: &[u8], cap: usize) {
        let mut data = data.get(data.len().saturating_sub(cap)..).unwrap_or(data);
        if self.ring.len() < cap {
            let (fill, rest) = data.split_at(data.len().min(cap - self.ring.len()));
            // A short first reservation, doubled up to the limit: a short dialogue keeps a short
            // tail (many flows open at once), a long stream reallocates a few times at most.
            let need = self.ring.len() + fill.len();
            if need > self.ring.capacity() {
                let target = need.max(TAIL_FIRST).max(2 * self.ring.capacity());
                self.ring.reserve_exact(target.min(cap) - self.ring.len());
            }
            self.ring.extend_from_slice(fill);
            data = rest;
            if data.is_empty() {
                return;
            }
        }
        // Full: overwrite the oldest bytes.
        let cap = self.ring.len();
        let first = data.len().min(cap - self.end);
        let (a, b) = data.split_at(first);
        // Most segments fit before the ring's edge: no second (empty) copy call for them.
        if let Some(dst) = self.ring.get_mut(self.end..self.end + a.len()) {
            dst.copy_from_slice(a);
        }
        if !b.is_empty() {
            if let Some(dst) = self.ring.get_mut(..b.len()) {
                dst.copy_from_slice(b);
            }
        }
        if cap > 0 {
            self.end = (self.end + data.len()) % cap;
        }
    }

    /// The `i`-th byte held, oldest first.
    fn get(&self, i: usize) -> Option<u8> {
        let len = self.ring.len();
        if i >= len {
            return None;
        }
        self.ring.get((self.end + i) % len).copied()
    }
}

struct Pending {
    off: u64,
    data: Vec<u8>,
    /// Bytes after `data` that were on the wire but cut by snaplen.
    missing: u64,
}

/// Reassembler for one direction.
#[derive(Default)]
pub struct Reassembler {
    /// Sequence number of stream offset 0, once known.
    base: Option<u32>,
    /// Next expected stream offset.
    next: u64,
    /// Out-of-order segments by stream offset.
    pending: BTreeMap<u64, Pending>,
    pending_bytes: usize,
    tail: Tail,
    fin_off: Option<u64>,
    peer_ack: Option<u64>,
    /// Counters.
    pub stats: StreamStats,
}

/// Window inside which a sequence number is believed at all (beyond it: a bogus segment).
const WINDOW: i64 = 1 << 30;

impl Reassembler {
    /// A reassembler that has seen nothing yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether the stream's origin is known (SYN seen or first byte seen).
    pub fn synced(&self) -> bool {
        self.base.is_some()
    }

    /// Next expected stream offset (bytes delivered or skipped so far).
    pub fn offset(&self) -> u64 {
        self.next
    }

    /// Out-of-order bytes currently held.
    pub fn buffered(&self) -> usize {
        self.pending_bytes
    }

    /// The SYN fixes the origin: the first data byte is `isn + 1`.
    pub fn on_syn(&mut self, isn: u32) {
        if self.base.is_none() {
            self.base = Some(isn.wrapping_add(1));
        }
    }

    fn offset_of(&mut self, seq: u32) -> i64 {
        let base = *self.base.get_or_insert(seq);
        // Relative to the next expected byte so that sequence wrap-around is free.
        let next_seq = base.wrapping_add(self.next as u32);
        self.next as i64 + i64::from(seq.wrapping_sub(next_seq) as i32)
    }

    /// Records the FIN's position (`seq` of the FIN segment plus its payload length).
    pub fn on_fin(&mut self, seq: u32, payload_len: u32) {
        let off = self.offset_of(seq) + i64::from(payload_len);
        if off >= 0 && self.fin_off.is_none() {
            self.fin_off = Some(off as u64);
        }
    }

    /// Adds a segment: `data` is what was captured, `wire_len` what was sent.
    pub fn insert(&mut self, seq: u32, data: &[u8], wire_len: u32, lim: &Limits, out: &mut dyn FnMut(Chunk<'_>)) {
        let wire_len = u64::from(wire_len.max(data.len() as u32));
        if wire_len == 0 {
            return;
        }
        let off = self.offset_of(seq);
        let rel = off - self.next as i64;
        if !(-WINDOW..WINDOW).contains(&rel) {
            self.stats.buffer_overflows += 1;
            return;
        }
        let missing = wire_len - data.len() as u64;
        if rel == 0 && self.pending.is_empty() {
            // The usual segment: the next bytes, nothing held to merge with.
            self.deliver(data, missing, lim, out);
            return;
        }
        if rel <= 0 {
            let skip = (-rel) as u64;
            if skip >= wire_len {
                self.stats.retransmissions += 1;
                self.check_overlap(off, data);
                return;
            }
            if skip > 0 {
                self.stats.retransmissions += 1;
                let overlap = data.get(..(skip as usize).min(data.len())).unwrap_or(&[]);
                self.check_overlap(off, overlap);
            }
            let fresh = data.get((skip as usize).min(data.len())..).unwrap_or(&[]);
            self.deliver_in_order(fresh, missing.min(wire_len - skip), lim, out);
            self.drain(lim, out);
        } else {
            self.stats.out_of_order += 1;
            let off = off as u64;
            if self.peer_ack.is_some_and(|a| a > self.next) {
                // The receiver already acknowledged bytes we never saw: they are lost to the
                // capture, not late.
                let upto = self.peer_ack.unwrap_or(off).min(off);
                self.gap(upto - self.next, out);
            }
            // Make room by closing the oldest holes until the segment fits.
            while self.pending_bytes + data.len() > lim.max_buffered && !self.pending.is_empty() {
                self.stats.buffer_overflows += 1;
                self.force_gap(lim, out);
            }
            if self.next > off {
                // Closing holes delivered bytes this segment overlaps: handle it as a late copy.
                return self.insert(seq, data, wire_len as u32, lim, out);
            }
            if off == self.next || self.pending_bytes + data.len() > lim.max_buffered {
                // In order, or too large to hold even alone: whatever is before it is lost, and
                // in the second case because of the limit (an overflow, as when holes are closed).
                if off > self.next {
                    self.stats.buffer_overflows += 1;
                }
                self.gap(off - self.next, out);
                self.deliver_in_order(data, missing, lim, out);
            } else {
                self.hold(off, data, missing);
            }
            self.drain(lim, out);
        }
    }

    /// Delivers bytes that start at the next expected offset (`data`, then `missing` uncaptured
    /// bytes). Where an earlier out-of-order copy is held for the same bytes, that copy wins.
    fn deliver_in_order(&mut self, mut data: &[u8], mut missing: u64, lim: &Limits, out: &mut dyn FnMut(Chunk<'_>)) {
        while !data.is_empty() || missing > 0 {
            match self.pending.first_key_value().map(|(k, _)| *k) {
                Some(k) if k <= self.next => {
                    let before = self.next;
                    self.drain(lim, out);
                    let covered = self.next - before;
                    let n = (covered as usize).min(data.len());
                    if n > 0 {
                        self.stats.retransmissions += 1;
                        self.check_overlap(before as i64, data.get(..n).unwrap_or(&[]));
                    }
                    data = data.get(n..).unwrap_or(&[]);
                    missing = missing.saturating_sub(covered - n as u64);
                }
                held => {
                    let room = held.map_or(u64::MAX, |k| k - self.next);
                    if data.is_empty() {
                        let m = missing.min(room);
                        self.gap(m, out);
                        missing -= m;
                    } else {
                        let n = (room.min(data.len() as u64)) as usize;
                        let (now, rest) = data.split_at(n);
                        self.deliver(now, 0, lim, out);
                        data = rest;
                    }
                }
            }
        }
    }

    /// Holds an out-of-order segment (the caller made room for all of `data`). Held pieces never
    /// overlap: bytes an earlier copy already holds keep that copy, whatever its offset (the first
    /// copy wins), and only the uncovered parts of `data` are stored.
    fn hold(&mut self, off: u64, data: &[u8], missing: u64) {
        if data.is_empty() {
            if let Entry::Vacant(v) = self.pending.entry(off) {
                v.insert(Pending { off, data: Vec::new(), missing });
            }
            return;
        }
        let end = off + data.len() as u64;
        // Only the piece starting at or before `off` can reach into it: pieces are disjoint.
        let from = self.pending.range(..=off).next_back().map_or(off, |(k, _)| *k);
        let mut uncovered = Vec::new();
        let mut at = off;
        let mut overlapped = false;
        let mut conflict = false;
        for p in self.pending.range(from..end).map(|(_, p)| p) {
            let p_end = p.off + p.data.len() as u64;
            if p_end <= at {
                continue;
            }
            if p.off > at {
                uncovered.push((at, p.off));
            }
            let (a, b) = (p.off.max(at), p_end.min(end));
            overlapped = true;
            let held = p.data.get((a - p.off) as usize..(b - p.off) as usize);
            let new = data.get((a - off) as usize..(b - off) as usize);
            conflict |= held != new;
            at = p_end;
            if at >= end {
                break;
            }
        }
        if at < end {
            uncovered.push((at, end));
        }
        if overlapped {
            self.stats.retransmissions += 1;
            if conflict {
                self.stats.conflicting_overlaps += 1;
            }
        }
        for (a, b) in uncovered {
            let Some(bytes) = data.get((a - off) as usize..(b - off) as usize) else { continue };
            // Real bytes replace an earlier piece's claim of uncaptured (snaplen-cut) bytes.
            if let Some((_, prev)) = self.pending.range_mut(..a).next_back() {
                let prev_end = prev.off + prev.data.len() as u64;
                prev.missing = prev.missing.min(a.saturating_sub(prev_end));
            }
            // This segment's own uncaptured tail stands only where no held piece follows.
            let tail = if b == end {
                let next = self.pending.range(b..).next().map_or(u64::MAX, |(k, _)| *k);
                missing.min(next - b)
            } else {
                0
            };
            self.pending_bytes += bytes.len();
            self.pending.insert(a, Pending { off: a, data: bytes.to_vec(), missing: tail });
        }
    }

    /// The peer acknowledged up to `ack`: bytes below it that never showed up are lost.
    pub fn on_peer_ack(&mut self, ack: u32, lim: &Limits, out: &mut dyn FnMut(Chunk<'_>)) {
        if self.base.is_none() {
            return;
        }
        let mut off = self.offset_of(ack);
        if self.fin_off.is_some_and(|f| off as u64 == f + 1) {
            off -= 1;
        }
        let rel = off - self.next as i64;
        if rel <= 0 || rel >= WINDOW {
            return;
        }
        let off = off as u64;
        self.peer_ack = Some(self.peer_ack.map_or(off, |a| a.max(off)));
        if let Some(first) = self.pending.first_key_value().map(|(_, p)| p) {
            let upto = first.off.min(off);
            if upto > self.next {
                self.gap(upto - self.next, out);
                self.drain(lim, out);
            }
        }
    }

    /// Lets go of every out-of-order byte held: the holes before them become gaps (counted as an
    /// overflow). For a budget shared by all flows, when this one tips it over.
    pub fn release_held(&mut self, lim: &Limits, out: &mut dyn FnMut(Chunk<'_>)) {
        if !self.pending.is_empty() {
            self.stats.buffer_overflows += 1;
        }
        while !self.pending.is_empty() {
            self.force_gap(lim, out);
        }
    }

    /// End of the connection or of the capture: declare the remaining holes, deliver the rest.
    pub fn flush(&mut self, lim: &Limits, out: &mut dyn FnMut(Chunk<'_>)) {
        while !self.pending.is_empty() {
            self.force_gap(lim, out);
        }
        // Data the peer acknowledged (or before the FIN) that never appeared.
        let end = self.peer_ack.into_iter().chain(self.fin_off).max();
        if let Some(end) = end {
            if end > self.next {
                self.gap(end - self.next, out);
            }
        }
    }

    fn force_gap(&mut self, lim: &Limits, out: &mut dyn FnMut(Chunk<'_>)) {
        if let Some(first) = self.pending.first_key_value().map(|(_, p)| p) {
            if first.off > self.next {
                let n = first.off - self.next;
                self.gap(n, out);
            }
            self.drain(lim, out);
        }
    }

    fn gap(&mut self, n: u64, out: &mut dyn FnMut(Chunk<'_>)) {
        if n == 0 {
            return;
        }
        self.stats.gaps += 1;
        self.stats.gap_bytes += n;
        self.next += n;
        self.tail.clear();
        out(Chunk::Gap(n));
    }

    fn deliver(&mut self, data: &[u8], missing: u64, lim: &Limits, out: &mut dyn FnMut(Chunk<'_>)) {
        if !data.is_empty() {
            self.next += data.len() as u64;
            self.stats.delivered += data.len() as u64;
            self.remember(data, lim);
            out(Chunk::Data(data));
        }
        self.gap(missing, out);
    }

    fn drain(&mut self, lim: &Limits, out: &mut dyn FnMut(Chunk<'_>)) {
        while let Some(first) = self.pending.first_key_value().map(|(_, p)| p) {
            if first.off > self.next {
                break;
            }
            let Some((_, p)) = self.pending.pop_first() else { break };
            self.pending_bytes -= p.data.len();
            let skip = (self.next - p.off) as usize;
            let total = p.data.len() as u64 + p.missing;
            if skip as u64 >= total {
                self.stats.retransmissions += 1;
                continue;
            }
            if skip > 0 {
                let overlap = p.data.get(..skip.min(p.data.len())).unwrap_or(&[]);
                self.check_overlap(p.off as i64, overlap);
            }
            let fresh = p.data.get(skip.min(p.data.len())..).unwrap_or(&[]);
            let missing = p.missing.min(total - skip as u64);
            self.deliver(fresh, missing, lim, out);
        }
    }

    fn remember(&mut self, data: &[u8], lim: &Limits) {
        if lim.tail == 0 {
            return;
        }
        self.tail.push(data, lim.tail);
    }

    /// Compares bytes at stream offset `off` with the remembered first copy.
    fn check_overlap(&mut self, off: i64, bytes: &[u8]) {
        let tail_start = self.next as i64 - self.tail.len() as i64;
        for (i, b) in bytes.iter().enumerate() {
            let at = off + i as i64 - tail_start;
            if at < 0 {
                continue;
            }
            match self.tail.get(at as usize) {
                Some(first) if first != *b => {
                    self.stats.conflicting_overlaps += 1;
                    return;
                }
                Some(_) => {}
                None => return,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(r: &mut Reassembler, segs: &[(u32, &[u8])]) -> (Vec<u8>, u64) {
        let lim = Limits::default();
        let mut out = Vec::new();
        let mut gaps = 0;
        for (seq, d) in segs {
            r.insert(*seq, d, d.len() as u32, &lim, &mut |c| match c {
                Chunk::Data(b) => out.extend_from_slice(b),
                Chunk::Gap(n) => gaps += n,
            });
        }
        r.flush(&lim, &mut |c| match c {
            Chunk::Data(b) => out.extend_from_slice(b),
            Chunk::Gap(n) => gaps += n,
        });
        (out, gaps)
    }

    #[test]
    fn a_held_copy_wins_over_a_later_one_that_starts_earlier() {
        let mut r = Reassembler::new();
        r.on_syn(999);
        // 10..15 arrives first; a conflicting copy of 5..15 comes later, then the head.
        let (s, g) = run(&mut r, &[(1010, b"BBBBB"), (1005, b"aaaaaCCCCC"), (1000, b"00000")]);
        assert_eq!(s, b"00000aaaaaBBBBB");
        assert_eq!(g, 0);
        assert_eq!(r.stats.conflicting_overlaps, 1);
    }

    #[test]
    fn out_of_order_segments_are_put_back_in_order() {
        let mut r = Reassembler::new();
        r.on_syn(99);
        let (s, g) = run(&mut r, &[(106, b"world"), (100, b"hello ")]);
        assert_eq!(s, b"hello world");
        assert_eq!(g, 0);
        assert_eq!(r.stats.out_of_order, 1);
    }

    #[test]
    fn first_copy_wins_and_a_different_retransmission_is_counted() {
        let mut r = Reassembler::new();
        r.on_syn(0);
        let (s, _) = run(&mut r, &[(1, b"MAIL"), (1, b"RCPT FROM")]);
        assert_eq!(s, b"MAIL FROM");
        assert_eq!(r.stats.conflicting_overlaps, 1);
        assert_eq!(r.stats.retransmissions, 1);
    }

    #[test]
    fn identical_retransmission_is_not_a_conflict() {
        let mut r = Reassembler::new();
        r.on_syn(0);
        let (s, _) = run(&mut r, &[(1, b"QUIT\r\n"), (1, b"QUIT\r\n")]);
        assert_eq!(s, b"QUIT\r\n");
        assert_eq!(r.stats.conflicting_overlaps, 0);
        assert_eq!(r.stats.retransmissions, 1);
    }

    #[test]
    fn sequence_numbers_wrap() {
        let mut r = Reassembler::new();
        r.on_syn(u32::MAX - 2);
        let (s, _) = run(&mut r, &[(u32::MAX - 1, b"ab"), (0, b"cd")]);
        assert_eq!(s, b"abcd");
    }

    #[test]
    fn a_hole_that_never_fills_becomes_a_gap_at_flush() {
        let mut r = Reassembler::new();
        r.on_syn(0);
        let (s, g) = run(&mut r, &[(1, b"one"), (10, b"two")]);
        assert_eq!(s, b"onetwo");
        assert_eq!(g, 6);
    }

    #[test]
    fn mid_stream_start_takes_the_first_segment_as_origin() {
        let mut r = Reassembler::new();
        let (s, _) = run(&mut r, &[(5000, b"250 ok\r\n"), (5008, b"221 bye\r\n")]);
        assert_eq!(s, b"250 ok\r\n221 bye\r\n");
    }

    #[test]
    fn peer_ack_beyond_a_hole_declares_it_lost() {
        let mut r = Reassembler::new();
        r.on_syn(0);
        let lim = Limits::default();
        let mut chunks = Vec::new();
        r.insert(1, b"aa", 2, &lim, &mut |c| chunks.push(format!("{c:?}")));
        r.insert(10, b"bb", 2, &lim, &mut |c| chunks.push(format!("{c:?}")));
        r.on_peer_ack(12, &lim, &mut |c| chunks.push(format!("{c:?}")));
        assert_eq!(chunks, ["Data([97, 97])", "Gap(7)", "Data([98, 98])"]);
    }

    #[test]
    fn snaplen_cut_payload_is_a_gap_after_the_captured_part() {
        let mut r = Reassembler::new();
        r.on_syn(0);
        let lim = Limits::default();
        let mut chunks = Vec::new();
        r.insert(1, b"EH", 10, &lim, &mut |c| chunks.push(format!("{c:?}")));
        assert_eq!(chunks, ["Data([69, 72])", "Gap(8)"]);
    }

    #[test]
    fn many_tiny_segments_in_reverse_order_reassemble() {
        let mut r = Reassembler::new();
        r.on_syn(0);
        let data: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
        let segs: Vec<(u32, &[u8])> = data.chunks(1).enumerate().rev().map(|(i, c)| (1 + i as u32, c)).collect();
        let (s, g) = run(&mut r, &segs);
        assert_eq!(g, 0);
        assert_eq!(s, data);
    }

    #[test]
    fn a_longer_copy_of_a_held_segment_adds_only_its_tail() {
        let mut r = Reassembler::new();
        r.on_syn(0);
        let (s, _) = run(&mut r, &[(5, b"ef"), (5, b"XYgh"), (1, b"abcd")]);
        assert_eq!(s, b"abcdefgh");
    }

    #[test]
    fn the_tail_keeps_the_last_bytes_across_the_ring_edge() {
        let mut t = Tail::default();
        t.push(b"abc", 4);
        t.push(b"de", 4);
        assert_eq!((0..4).map(|i| t.get(i).unwrap()).collect::<Vec<_>>(), b"bcde");
        assert_eq!(t.get(4), None);
        t.push(b"0123456789", 4);
        assert_eq!((0..4).map(|i| t.get(i).unwrap()).collect::<Vec<_>>(), b"6789");
        t.clear();
        assert_eq!(t.get(0), None);
    }

    #[test]
    fn a_conflicting_retransmission_is_found_behind_many_deliveries() {
        let mut r = Reassembler::new();
        r.on_syn(0);
        let lim = Limits { max_buffered: 1024, tail: 8 };
        let mut seq = 1;
        for chunk in [b"abcde".as_slice(), b"fgh", b"ijklm"] {
            r.insert(seq, chunk, chunk.len() as u32, &lim, &mut |_| {});
            seq += chunk.len() as u32;
        }
        r.insert(7, b"gh", 2, &lim, &mut |_| {});
        assert_eq!(r.stats.conflicting_overlaps, 0);
        r.insert(7, b"gX", 2, &lim, &mut |_| {});
        assert_eq!(r.stats.conflicting_overlaps, 1);
    }

    #[test]
    fn buffer_limit_forces_a_gap_instead_of_growing() {
        let mut r = Reassembler::new();
        r.on_syn(0);
        let lim = Limits { max_buffered: 8, tail: 16 };
        let mut gaps = 0;
        for i in 0..10u32 {
            r.insert(100 + i * 5, b"xxxxx", 5, &lim, &mut |c| {
                if let Chunk::Gap(n) = c {
                    gaps += n
                }
            });
            assert!(r.buffered() <= 8);
        }
        assert!(gaps > 0);
    }

    #[test]
    fn a_segment_too_large_to_hold_alone_is_an_overflow() {
        let mut r = Reassembler::new();
        r.on_syn(0);
        let lim = Limits { max_buffered: 8, tail: 16 };
        let mut gaps = 0;
        r.insert(11, b"0123456789ab", 12, &lim, &mut |c| {
            if let Chunk::Gap(n) = c {
                gaps += n
            }
        });
        assert_eq!(gaps, 10, "the hole before it is given up");
        assert_eq!(r.stats.buffer_overflows, 1, "because of the limit");
    }
}
