//! Bidirectional TCP flows keyed by their 4-tuple, with bounded memory.
//!
//! A new session on a 4-tuple starts only with a new SYN, never because time passed (capture
//! timestamps can jump by decades). Idle eviction exists only to bound memory, and a late
//! packet for an evicted or closed flow is dropped and counted rather than opening a phantom
//! second session.

mod index;
pub mod reassembly;

use std::collections::VecDeque;
use std::hash::BuildHasher;
use std::net::{IpAddr, SocketAddr};

use hashbrown::HashTable;
use rustc_hash::FxBuildHasher;

use self::index::Index;
use crate::capture::Micros;
use crate::decode::Segment;
pub use reassembly::{Chunk, Limits, Reassembler, StreamStats};

/// Canonical (direction-free) flow key: both endpoints as (address, port), lower first, packed
/// into plain words so that hashing and comparing a key is a handful of word operations (40
/// bytes, as small as the `IpAddr` pairs it replaces).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlowKey {
    lo: [u64; 2],
    hi: [u64; 2],
    /// Lower endpoint's port in the high half.
    ports: u32,
    v6: bool,
}

impl std::hash::Hash for FlowKey {
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        // Word by word: the derived impl would also hash the arrays' lengths.
        let [a, b] = self.lo;
        let [c, d] = self.hi;
        h.write_u64(a);
        h.write_u64(b);
        h.write_u64(c);
        h.write_u64(d);
        h.write_u64(u64::from(self.ports) | (u64::from(self.v6) << 32));
    }
}

/// An endpoint as one ordered integer pair: IPv4 and IPv6 addresses never compare equal.
fn endpoint_bits(ip: IpAddr, port: u16) -> (u128, u16, bool) {
    match ip {
        IpAddr::V4(a) => (u128::from(a.to_bits()), port, false),
        IpAddr::V6(a) => (a.to_bits(), port, true),
    }
}

fn words(a: u128) -> [u64; 2] {
    [(a >> 64) as u64, a as u64]
}

impl FlowKey {
    /// Key for the endpoints `a` and `b` in either order, and whether `a` is the lower one.
    pub fn new(a: (IpAddr, u16), b: (IpAddr, u16)) -> (Self, bool) {
        let (aa, ap, v6) = endpoint_bits(a.0, a.1);
        let (ba, bp, _) = endpoint_bits(b.0, b.1);
        let a_lo = (aa, ap) <= (ba, bp);
        let ((lo, lp), (hi, hp)) = if a_lo { ((aa, ap), (ba, bp)) } else { ((ba, bp), (aa, ap)) };
        let ports = (u32::from(lp) << 16) | u32::from(hp);
        (Self { lo: words(lo), hi: words(hi), ports, v6 }, a_lo)
    }

    /// Key for a segment, the same for both directions.
    pub fn of(seg: &Segment<'_>) -> Self {
        Self::new((seg.src, seg.sport), (seg.dst, seg.dport)).0
    }
}

/// Why a flow left the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum EndReason {
    /// Both sides sent FIN and every byte before them was seen.
    Closed,
    /// A RST was seen.
    Reset,
    /// A new SYN reused the 4-tuple.
    Reused,
    /// Evicted to bound memory.
    Evicted,
    /// The capture ended with the flow still open.
    EndOfCapture,
    /// Live: no packet for the idle timeout; reported as it stood.
    Idle,
}

impl EndReason {
    /// Every reason, in the order of [`EndReason::name`]'s table.
    pub const ALL: [EndReason; 6] = [
        EndReason::Closed,
        EndReason::Reset,
        EndReason::Reused,
        EndReason::Evicted,
        EndReason::EndOfCapture,
        EndReason::Idle,
    ];

    /// The `end_reason` label in NDJSON.
    pub fn name(self) -> &'static str {
        match self {
            EndReason::Closed => "closed",
            EndReason::Reset => "reset",
            EndReason::Reused => "reused",
            EndReason::Evicted => "evicted",
            EndReason::EndOfCapture => "end-of-capture",
            EndReason::Idle => "idle",
        }
    }

    /// Parses a label.
    pub fn from_name(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.name() == s)
    }
}

/// Flow facts the layers above read.
///
/// In declaration order (`repr(C)`), what every packet updates first: with the key and the
/// flow's pointers before it, a packet's work on its slot stays within the slot's first 170
/// bytes (three or four cache lines, as slots do not start on a line); the facts set once
/// (endpoints, handshake, first packet) follow.
#[derive(Debug, Clone)]
#[repr(C)]
pub struct FlowMeta {
    /// Packets in the flow.
    pub packets: u64,
    /// Last packet's timestamp.
    pub last_ts: Micros,
    /// Frame number of the last packet.
    pub last_frame: u64,
    /// Payload bytes on the wire per direction (IP lengths).
    pub wire_bytes: [u64; 2],
    /// Payload bytes captured per direction.
    pub captured_bytes: [u64; 2],
    /// Both sides closed: the direction whose FIN (the second) still waits for its ACK, the
    /// flow's last packet, before the session is finished.
    pub closing: Option<usize>,
    /// FIN seen per direction.
    pub fin: [bool; 2],
    /// RST seen per direction.
    pub rst: [bool; 2],
    /// `ends[0]` is the lower endpoint of the flow key (a segment's direction follows from its
    /// own orientation).
    ends0_lo: bool,
    /// Sequential id (order of creation).
    pub id: u64,
    /// `ends[d]` sends direction `d`; `ends[0]` sent the first packet seen.
    pub ends: [SocketAddr; 2],
    /// Direction that sent a SYN without ACK.
    pub syn_dir: Option<usize>,
    /// Direction that sent a SYN-ACK.
    pub synack_dir: Option<usize>,
    /// ISN of the SYN, to tell a retransmitted SYN from a new connection.
    pub syn_isn: Option<u32>,
    /// Initial sequence number per direction (SYN or SYN-ACK).
    pub isn: [Option<u32>; 2],
    /// First packet's timestamp.
    pub first_ts: Micros,
    /// Source index (file) of the first packet.
    pub source: usize,
    /// Frame number of the first packet.
    pub first_frame: u64,
    /// Outermost VLAN id of the first packet.
    pub vlan: Option<u16>,
}

impl FlowMeta {
    /// Direction of a segment relative to `ends`.
    pub fn dir_of(&self, seg: &Segment<'_>) -> usize {
        usize::from(SocketAddr::new(seg.src, seg.sport) != self.ends[0])
    }

    /// Whether a TCP handshake packet (SYN or SYN-ACK) was captured.
    pub fn handshake_seen(&self) -> bool {
        self.syn_dir.is_some() || self.synack_dir.is_some()
    }
}

/// A flow: its facts, its two byte streams and the application state `A` riding on it.
///
/// `repr(C)`: the pointers a packet follows come before the facts (see [`FlowMeta`]).
#[repr(C)]
pub struct Flow<A> {
    /// `streams[d]` reassembles direction `d`; allocated with the first payload, so the many
    /// flows that never carry a byte (scans, floods) stay small.
    pub streams: Option<Box<[Reassembler; 2]>>,
    /// Application state.
    pub app: A,
    /// Facts.
    pub meta: FlowMeta,
}

/// The flow's reassemblers, created on first use with the ISNs already seen.
pub fn streams<'a>(meta: &FlowMeta, streams: &'a mut Option<Box<[Reassembler; 2]>>) -> &'a mut [Reassembler; 2] {
    streams.get_or_insert_with(|| {
        let mut s = Box::new([Reassembler::new(), Reassembler::new()]);
        for (r, isn) in s.iter_mut().zip(meta.isn) {
            if let Some(isn) = isn {
                r.on_syn(isn);
            }
        }
        s
    })
}

impl<A> Flow<A> {
    /// Both sides finished and nothing before their FINs is missing; or a reset.
    pub fn finished(&self) -> bool {
        self.meta.rst.iter().any(|r| *r)
            || (self.meta.fin[0]
                && self.meta.fin[1]
                && self.streams.as_ref().is_none_or(|s| s.iter().all(|s| s.buffered() == 0)))
    }
}

/// Starts loading the cache line at `p`.
#[inline(always)]
pub fn prefetch<T>(p: &T) {
    prefetch_addr((p as *const T).cast());
}

/// Starts loading the cache lines `*p` spans, at most `max` of them.
#[inline(always)]
pub fn prefetch_lines<T>(p: &T, max: usize) {
    let start: *const u8 = (p as *const T).cast();
    let lines = ((start as usize & 63) + std::mem::size_of::<T>()).div_ceil(64).min(max);
    for i in 0..lines {
        // `start + 64 i` lies in the i-th line `*p` touches.
        prefetch_addr(start.wrapping_add(i * 64));
    }
}

#[inline(always)]
fn prefetch_addr(p: *const u8) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch is a hint: it never faults, whatever the address, and reads nothing
    // into the program.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(p.cast());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// Limits of the flow table.
#[derive(Debug, Clone, Copy)]
pub struct TableLimits {
    /// Most flows held at once; beyond it the least recently active are evicted.
    pub max_flows: usize,
    /// Per-direction reassembly limits.
    pub stream: Limits,
    /// Closed/evicted 4-tuples remembered so late packets don't resurrect them.
    pub max_tombstones: usize,
    /// Out-of-order bytes held by all flows together; the flow that goes past it lets go of
    /// what it holds (its holes become gaps).
    pub max_held_total: usize,
}

impl Default for TableLimits {
    fn default() -> Self {
        Self { max_flows: 100_000, stream: Limits::default(), max_tombstones: 65_536, max_held_total: 64 << 20 }
    }
}

/// Flow-table counters for the run summary.
#[derive(Debug, Clone, Copy, Default)]
pub struct TableStats {
    /// Flows created.
    pub flows: u64,
    /// Flows evicted for memory.
    pub evicted: u64,
    /// Packets with payload for a closed or evicted flow, dropped.
    pub late_packets: u64,
    /// Most flows held at once.
    pub peak_flows: usize,
}

/// What [`FlowTable::lookup`] found for a segment.
pub enum Lookup {
    /// The flow's slot and the segment's direction.
    Flow(usize, usize),
    /// The segment belongs to a finished flow: ignore it.
    Late,
}

/// The key's hash folded to 32 bits (what an index entry keeps).
fn hash32(key: &FlowKey) -> u32 {
    let h = FxBuildHasher.hash_one(key);
    (h ^ (h >> 32)) as u32
}

/// A held flow with its key: confirming a lookup reads the memory the packet then works on.
#[repr(C)]
struct Slot<A> {
    key: FlowKey,
    flow: Flow<A>,
}

/// Finished 4-tuples, the oldest let go first, each remembered by a keyed 64-bit hash of its key
/// rather than the 40-byte key: 16 bytes with its insertion number in the set and in the order,
/// so the default 65,536 take about 3.2 MB instead of 8 (the 2 GB lab capture fills them). Two
/// 4-tuples share a hash with odds of 1 in 2^64 per pair, and the hash key is drawn anew each
/// run, so no one can aim a 4-tuple at another's tombstone.
///
/// Each tombstone carries the number of its insertion, in the set and in the order: a 4-tuple
/// reopened by a new SYN and finished again leaves an old entry in the order, which then neither
/// removes the newer tombstone when it comes up nor lets the order outgrow the set (it is
/// compacted at twice the limit), however often one 4-tuple is reopened.
struct Tombstones {
    /// (hash, insertion number).
    set: HashTable<(u64, u64)>,
    order: VecDeque<(u64, u64)>,
    next: u64,
    hasher: std::hash::RandomState,
}

impl Tombstones {
    fn new() -> Self {
        Self { set: HashTable::new(), order: VecDeque::new(), next: 0, hasher: std::hash::RandomState::new() }
    }

    fn id(&self, key: &FlowKey) -> u64 {
        self.hasher.hash_one(key)
    }

    /// The insertion number of `id`'s tombstone in `set`, if it has one.
    fn seq_in(set: &HashTable<(u64, u64)>, id: u64) -> Option<u64> {
        set.find(id, |e| e.0 == id).map(|e| e.1)
    }

    fn seq_of(&self, id: u64) -> Option<u64> {
        Self::seq_in(&self.set, id)
    }

    /// Removes `id`'s tombstone if it is the one inserted as `seq` (any, for None).
    fn remove(&mut self, id: u64, seq: Option<u64>) {
        if let Ok(e) = self.set.find_entry(id, |e| e.0 == id && seq.is_none_or(|n| e.1 == n)) {
            e.remove();
        }
    }

    fn contains(&self, key: &FlowKey) -> bool {
        self.seq_of(self.id(key)).is_some()
    }

    /// A new connection on the 4-tuple: it is no longer finished.
    fn forget(&mut self, key: &FlowKey) {
        self.remove(self.id(key), None);
    }

    /// Remembers `key`, letting the oldest go when `max` are held.
    fn insert(&mut self, key: &FlowKey, max: usize) {
        let id = self.id(key);
        if self.seq_of(id).is_some() {
            return;
        }
        while self.set.len() >= max {
            let Some((old, seq)) = self.order.pop_front() else { break };
            self.remove(old, Some(seq));
        }
        if self.order.len() >= 2 * max {
            let set = &self.set;
            self.order.retain(|&(id, seq)| Self::seq_in(set, id) == Some(seq));
        }
        let seq = self.next;
        self.next += 1;
        self.set.insert_unique(id, (id, seq), |e| e.0);
        self.order.push_back((id, seq));
    }
}

/// Slots per chunk of [`Slots`]: about a third of a megabyte of flows.
const SLOT_CHUNK: usize = 1024;

/// The slots, in fixed chunks rather than one vector: a growing vector copies every held flow
/// each time it doubles (at 100 k flows, 21 MB read cold and written again) and holds both
/// copies while it does; a chunk is added in place, and a slot never moves.
struct Slots<A> {
    /// Fixed-size arrays: a slot's place in its chunk needs no bounds check.
    chunks: Vec<Box<[Option<Slot<A>>; SLOT_CHUNK]>>,
    /// Slots handed out so far (the next new one's number).
    len: usize,
}

impl<A> Slots<A> {
    fn new() -> Self {
        Self { chunks: Vec::new(), len: 0 }
    }

    fn get(&self, i: usize) -> Option<&Slot<A>> {
        self.place(i)?.as_ref()
    }

    /// Where slot `i` lives, without reading it.
    fn place(&self, i: usize) -> Option<&Option<Slot<A>>> {
        self.chunks.get(i / SLOT_CHUNK)?.get(i % SLOT_CHUNK)
    }

    fn get_mut(&mut self, i: usize) -> Option<&mut Option<Slot<A>>> {
        self.chunks.get_mut(i / SLOT_CHUNK)?.get_mut(i % SLOT_CHUNK)
    }

    /// Puts `x` in a new slot at the end and returns its number (None only if a new chunk could
    /// not be made an array, which a chunk collected from `SLOT_CHUNK` slots always can).
    fn push(&mut self, x: Slot<A>) -> Option<usize> {
        let i = self.len;
        if i / SLOT_CHUNK >= self.chunks.len() {
            let chunk: Box<[Option<Slot<A>>]> = (0..SLOT_CHUNK).map(|_| None).collect();
            // Built on the heap as a slice (an array this size would pass through the stack).
            self.chunks.push(chunk.try_into().ok()?);
        }
        *self.get_mut(i)? = Some(x);
        self.len += 1;
        Some(i)
    }

    /// Every held slot with its number.
    fn iter(&self) -> impl Iterator<Item = (usize, &Slot<A>)> {
        self.chunks.iter().flat_map(|c| c.iter()).enumerate().filter_map(|(i, s)| s.as_ref().map(|s| (i, s)))
    }

    /// Takes every held slot out and forgets the chunks.
    fn drain(&mut self) -> Vec<Slot<A>> {
        let all = self.chunks.iter_mut().flat_map(|c| c.iter_mut()).filter_map(Option::take).collect();
        self.chunks.clear();
        self.len = 0;
        all
    }
}

/// The flow table.
pub struct FlowTable<A> {
    /// Key hash → slot.
    index: Index,
    slots: Slots<A>,
    free: Vec<usize>,
    tombstones: Tombstones,
    next_id: u64,
    /// The slot the last lookup found: a packet's flow is often the previous packet's (a
    /// segment and its ACK, a burst of one transfer), and confirming it by its key costs less
    /// than hashing and probing the index. Checked by the key alone: a slot since freed or
    /// reused for another flow simply does not match.
    last: usize,
    /// Limits.
    pub limits: TableLimits,
    /// Counters.
    pub stats: TableStats,
}

impl<A> FlowTable<A> {
    /// An empty table.
    pub fn new(mut limits: TableLimits) -> Self {
        // Index entries name their slot in 32 bits.
        limits.max_flows = limits.max_flows.min(u32::MAX as usize);
        Self {
            index: Index::default(),
            slots: Slots::new(),
            free: Vec::new(),
            tombstones: Tombstones::new(),
            next_id: 0,
            last: usize::MAX,
            limits,
            stats: TableStats::default(),
        }
    }

    /// Flows currently held.
    pub fn len(&self) -> usize {
        self.index.len()
    }

    /// Whether no flow is held.
    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// The flow in `slot`.
    pub fn get_mut(&mut self, slot: usize) -> Option<&mut Flow<A>> {
        self.slots.get_mut(slot).and_then(Option::as_mut).map(|s| &mut s.flow)
    }

    /// The index hash of the flow between `a` and `b`.
    #[inline]
    pub fn hash_of(a: (IpAddr, u16), b: (IpAddr, u16)) -> u32 {
        hash32(&FlowKey::new(a, b).0)
    }

    /// Starts loading the index cell where the flow with index hash `hash` would be found.
    #[inline]
    pub fn prefetch_cell(&self, hash: u32) {
        self.index.prefetch(hash);
    }

    /// Starts loading the first lines of the slot of the flow with index hash `hash` (the first
    /// with that hash: the key is not compared, the slot not read).
    #[inline]
    pub fn prefetch_flow(&self, hash: u32) {
        if let Some(s) = self.index.find(hash, |_| true).and_then(|slot| self.slots.place(slot)) {
            prefetch_lines(s, 3);
        }
    }

    /// The slot holding `key`, if any.
    fn find(&self, key: &FlowKey, hash: u32) -> Option<usize> {
        let slots = &self.slots;
        self.index.find(hash, |slot| slots.get(slot).is_some_and(|s| s.key == *key))
    }

    /// Finds or creates the flow for `seg`. Flows pushed out (4-tuple reuse, eviction) are
    /// handed to `ended`.
    pub fn lookup(
        &mut self,
        seg: &Segment<'_>,
        ts: Micros,
        source: usize,
        frame: u64,
        make: impl FnOnce() -> A,
        ended: &mut dyn FnMut(Flow<A>, EndReason),
    ) -> Lookup {
        let (key, src_lo) = FlowKey::new((seg.src, seg.sport), (seg.dst, seg.dport));
        let pure_syn = seg.flags.syn && !seg.flags.ack;
        let last = self.last;
        let found =
            if self.slots.get(last).is_some_and(|s| s.key == key) { Some(last) } else { self.find(&key, hash32(&key)) };
        if let Some(slot) = found {
            let reused = pure_syn
                && self.get_mut(slot).is_some_and(|f| {
                    let m = &f.meta;
                    m.syn_isn.is_some_and(|isn| isn != seg.seq)
                        || m.fin.iter().any(|x| *x)
                        || m.rst.iter().any(|x| *x)
                        || (m.syn_isn.is_none() && m.packets > 0)
                });
            if !reused {
                let first_lo = self.get_mut(slot).is_none_or(|f| f.meta.ends0_lo);
                self.last = slot;
                return Lookup::Flow(slot, usize::from(src_lo != first_lo));
            }
            if let Some(old) = self.remove(slot) {
                ended(old, EndReason::Reused);
            }
        } else if self.tombstones.contains(&key) {
            if !pure_syn {
                // The last ACK of a close is normal; only late bytes are worth counting.
                if seg.wire_len > 0 {
                    self.stats.late_packets += 1;
                }
                return Lookup::Late;
            }
            self.tombstones.forget(&key);
        }
        if self.index.len() >= self.limits.max_flows {
            self.evict_oldest(ended);
        }
        let meta = FlowMeta {
            id: self.next_id,
            ends: [SocketAddr::new(seg.src, seg.sport), SocketAddr::new(seg.dst, seg.dport)],
            syn_dir: None,
            synack_dir: None,
            syn_isn: None,
            isn: [None; 2],
            fin: [false; 2],
            rst: [false; 2],
            first_ts: ts,
            last_ts: ts,
            packets: 0,
            wire_bytes: [0; 2],
            captured_bytes: [0; 2],
            source,
            first_frame: frame,
            last_frame: frame,
            vlan: seg.link.vlan,
            closing: None,
            ends0_lo: src_lo,
        };
        self.next_id += 1;
        self.stats.flows += 1;
        let held = Slot { key, flow: Flow { meta, streams: None, app: make() } };
        let slot = match self.free.pop() {
            Some(s) => {
                if let Some(x) = self.slots.get_mut(s) {
                    *x = Some(held);
                }
                s
            }
            None => match self.slots.push(held) {
                Some(s) => s,
                // Cannot happen (see `Slots::push`); the packet is then dropped as if late.
                None => return Lookup::Late,
            },
        };
        // Slots never outnumber u32: `max_flows` is clamped to it in `new`.
        let hash = hash32(&key);
        self.index.insert(hash, slot as u32);
        self.stats.peak_flows = self.stats.peak_flows.max(self.index.len());
        self.last = slot;
        Lookup::Flow(slot, 0)
    }

    /// Takes a flow out of the table and remembers its 4-tuple as finished.
    pub fn remove(&mut self, slot: usize) -> Option<Flow<A>> {
        let Slot { key, flow } = self.slots.get_mut(slot)?.take()?;
        let hash = hash32(&key);
        self.index.remove(hash, slot);
        self.free.push(slot);
        // Only flows that carried payload can turn into a (phantom) session: a flood of
        // SYN-only flows must not push their tombstones out.
        let carried = flow.meta.wire_bytes.iter().any(|b| *b > 0);
        if carried && self.limits.max_tombstones > 0 {
            self.tombstones.insert(&key, self.limits.max_tombstones);
        }
        Some(flow)
    }

    /// Evicts a sixteenth of the table: flows that never carried payload first (scans, SYN
    /// floods), then the least recently active.
    fn evict_oldest(&mut self, ended: &mut dyn FnMut(Flow<A>, EndReason)) {
        let mut ages: Vec<((bool, Micros), usize)> = self
            .slots
            .iter()
            .map(|(i, s)| ((s.flow.meta.wire_bytes.iter().any(|b| *b > 0), s.flow.meta.last_ts), i))
            .collect();
        let n = (ages.len() / 16).max(1);
        if n < ages.len() {
            ages.select_nth_unstable(n);
        }
        for &(_, slot) in ages.iter().take(n) {
            if let Some(f) = self.remove(slot) {
                self.stats.evicted += 1;
                ended(f, EndReason::Evicted);
            }
        }
    }

    /// Takes out every flow whose last packet is older than `before`, in creation order; their
    /// 4-tuples are remembered, so later packets count as late (as for evicted flows).
    pub fn expire(&mut self, before: Micros) -> Vec<Flow<A>> {
        let idle: Vec<usize> =
            self.slots.iter().filter(|(_, s)| s.flow.meta.last_ts < before).map(|(i, _)| i).collect();
        let mut out: Vec<Flow<A>> = idle.into_iter().filter_map(|slot| self.remove(slot)).collect();
        out.sort_by_key(|f| f.meta.id);
        out
    }

    /// Removes every flow (end of capture), in creation order.
    pub fn drain(&mut self) -> Vec<Flow<A>> {
        let mut all: Vec<Flow<A>> = self.slots.drain().into_iter().map(|s| s.flow).collect();
        all.sort_by_key(|f| f.meta.id);
        self.index.clear();
        self.free.clear();
        all
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;
    use crate::decode::TcpFlags;

    fn seg(client: u32, port: u16, flags: TcpFlags, payload: &[u8]) -> Segment<'_> {
        Segment {
            src: IpAddr::V4(Ipv4Addr::from_bits(client)),
            dst: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 25)),
            sport: port,
            dport: 25,
            seq: 1000,
            ack: 0,
            flags,
            window: 0,
            options: &[],
            payload,
            wire_len: payload.len() as u32,
            link: Default::default(),
        }
    }

    fn data(client: u32, port: u16) -> Segment<'static> {
        seg(client, port, TcpFlags { ack: true, ..Default::default() }, b"x")
    }

    fn slot_of(t: &mut FlowTable<()>, s: &Segment<'_>) -> Option<usize> {
        match t.lookup(s, 0, 0, 0, || (), &mut |_, _| {}) {
            Lookup::Flow(slot, _) => Some(slot),
            Lookup::Late => None,
        }
    }

    #[test]
    fn every_flow_is_found_again_in_its_own_slot_after_others_leave() {
        let mut t = FlowTable::new(TableLimits::default());
        let slots: Vec<usize> = (0..5000).filter_map(|i| slot_of(&mut t, &data(i, 1024))).collect();
        assert_eq!(t.len(), 5000);
        for &s in slots.iter().step_by(2) {
            assert!(t.remove(s).is_some());
        }
        assert_eq!(t.len(), 2500);
        for (i, &s) in slots.iter().enumerate().skip(1).step_by(2) {
            assert_eq!(slot_of(&mut t, &data(i as u32, 1024)), Some(s));
        }
        assert_eq!(t.len(), 2500);
        assert_eq!(t.stats.flows, 5000);
    }

    #[test]
    fn a_reused_slot_answers_only_to_its_new_key() {
        let mut t = FlowTable::new(TableLimits::default());
        let a = slot_of(&mut t, &data(1, 1024)).unwrap_or(usize::MAX);
        if let Some(f) = t.get_mut(a) {
            f.meta.wire_bytes[0] = 1;
        }
        t.remove(a);
        let b = slot_of(&mut t, &data(2, 1024)).unwrap_or(usize::MAX);
        assert_eq!(a, b, "the freed slot is reused");
        // The removed 4-tuple carried payload: its late bytes are dropped, not a new flow.
        assert_eq!(slot_of(&mut t, &data(1, 1024)), None);
        assert_eq!(t.stats.late_packets, 1);
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn finished_4_tuples_are_remembered_up_to_the_limit_oldest_forgotten_first() {
        let limits = TableLimits { max_tombstones: 3, ..Default::default() };
        let mut t = FlowTable::new(limits);
        for i in 1..=4 {
            let slot = slot_of(&mut t, &data(i, 1024)).unwrap_or(usize::MAX);
            if let Some(f) = t.get_mut(slot) {
                f.meta.wire_bytes[0] = 1;
            }
            t.remove(slot);
        }
        // 1 was let go for 4; 2, 3 and 4 are still finished: their late bytes are dropped.
        for i in 2..=4 {
            assert_eq!(slot_of(&mut t, &data(i, 1024)), None, "client {i}");
        }
        assert_eq!(t.stats.late_packets, 3);
        assert!(slot_of(&mut t, &data(1, 1024)).is_some(), "the oldest tombstone was let go");
        // A new SYN on a finished 4-tuple is a new connection.
        let syn = seg(3, 1024, TcpFlags { syn: true, ..Default::default() }, b"");
        assert!(slot_of(&mut t, &syn).is_some());
    }

    #[test]
    fn a_4_tuple_reopened_again_and_again_keeps_one_tombstone_and_a_bounded_order() {
        let mut t: Tombstones = Tombstones::new();
        let (a, _) =
            FlowKey::new((IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)), 1024), (IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)), 25));
        let (b, _) =
            FlowKey::new((IpAddr::V4(Ipv4Addr::new(10, 0, 0, 3)), 1024), (IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)), 25));
        t.insert(&b, 4);
        for _ in 0..10_000 {
            t.insert(&a, 4);
            t.forget(&a);
        }
        t.insert(&a, 4);
        assert!(t.order.len() <= 8, "order compacted: {}", t.order.len());
        assert!(t.contains(&a) && t.contains(&b));
        // The stale entries of `a` that come up first no longer take its live tombstone with them.
        for i in 0..3u32 {
            let (k, _) = FlowKey::new(
                (IpAddr::V4(Ipv4Addr::from_bits(i + 100)), 1),
                (IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)), 25),
            );
            t.insert(&k, 4);
        }
        assert!(t.set.len() <= 4);
        assert!(t.contains(&a), "the newest tombstone of a stays while newer ones fit");
    }

    #[test]
    fn both_directions_find_the_same_flow() {
        let mut t = FlowTable::new(TableLimits::default());
        let fwd = data(7, 4000);
        let mut back = fwd;
        std::mem::swap(&mut back.src, &mut back.dst);
        std::mem::swap(&mut back.sport, &mut back.dport);
        let (a, b) = (t.lookup(&fwd, 0, 0, 0, || (), &mut |_, _| {}), t.lookup(&back, 0, 0, 0, || (), &mut |_, _| {}));
        assert!(matches!((a, b), (Lookup::Flow(x, 0), Lookup::Flow(y, 1)) if x == y));
    }

    #[test]
    fn a_full_table_evicts_and_keeps_its_index_whole() {
        let limits = TableLimits { max_flows: 64, ..Default::default() };
        let mut t = FlowTable::new(limits);
        let mut evicted = 0;
        for i in 0..1000 {
            t.lookup(&data(i, 1024), i64::from(i), 0, 0, || (), &mut |_, r| {
                assert_eq!(r, EndReason::Evicted);
                evicted += 1;
            });
        }
        assert!(t.len() <= 64);
        assert_eq!(evicted, t.stats.evicted);
        assert_eq!(1000 - evicted as usize, t.len());
        // The newest flow is still held and found, not created again.
        let flows = t.stats.flows;
        assert!(slot_of(&mut t, &data(999, 1024)).is_some());
        assert_eq!(t.stats.flows, flows);
    }
}
