//! The pipeline: packets in, finished [`Session`] records out, in the order sessions end.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use crate::capture::{Micros, Packet};
use crate::conversation::{Conversation, Ctx};
use crate::decode::{Decoder, Segment, Skip};
use crate::flow::{EndReason, Flow, FlowTable, Lookup, StreamStats, TableLimits};
use crate::session::{Session, Verdict};

/// Mail ports: where implicit TLS and non-SMTP payload are reported.
pub const DEFAULT_MAIL_PORTS: [u16; 6] = [25, 465, 587, 2525, 475, 717];

/// Engine settings.
#[derive(Debug, Clone)]
pub struct Config {
    /// Mail ports (`--mail-ports`).
    pub mail_ports: Vec<u16>,
    /// Flow-table limits.
    pub limits: TableLimits,
    /// Keep AUTH secrets for `--show-credentials` (forensics only; off by default).
    pub keep_credentials: bool,
    /// Record a bounded SMTP transcript per session (terminal UI, free-text display filters).
    pub transcript: bool,
    /// Track which open sessions changed, for [`Engine::changed_open_sessions`] (live views).
    pub track_open: bool,
    /// The sensor's name, on every record (`--sensor`, else the host name when live).
    pub sensor: Option<Arc<str>>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            mail_ports: DEFAULT_MAIL_PORTS.to_vec(),
            limits: TableLimits::default(),
            keep_credentials: false,
            transcript: false,
            track_open: false,
            sensor: None,
        }
    }
}

/// Run counters for the summary.
#[derive(Debug, Clone, Default)]
pub struct Stats {
    /// Packets read.
    pub packets: u64,
    /// Bytes on the wire (original lengths).
    pub bytes: u64,
    /// TCP segments decoded.
    pub tcp_segments: u64,
    /// Packets not decoded down to TCP, per reason.
    pub undecodable: BTreeMap<Skip, u64>,
    /// Sessions reported, per verdict.
    pub verdicts: BTreeMap<Verdict, u64>,
    /// Sessions reported with each finding, by name.
    pub findings: BTreeMap<&'static str, u64>,
    /// TCP flows on mail ports that carried no payload (scans, aborted connects).
    pub payloadless_mail_flows: u64,
    /// Reassembly: holes declared.
    pub gaps: u64,
    /// Reassembly: retransmitted segments.
    pub retransmissions: u64,
    /// Reassembly: retransmissions whose bytes differed from the first copy.
    pub conflicting_overlaps: u64,
    /// Reassembly: out-of-order bytes dropped at the buffer limit.
    pub buffer_overflows: u64,
    /// Times a flow let go of its out-of-order bytes because all flows together held too many.
    pub held_releases: u64,
    /// SMTP lines over the line limit.
    pub long_lines: u64,
    /// Server lines without a reply code.
    pub malformed_replies: u64,
}

fn ctx_of(cfg: &Config) -> Ctx<'_> {
    Ctx { mail_ports: &cfg.mail_ports, keep_credentials: cfg.keep_credentials, transcript: cfg.transcript }
}

/// The engine: decoder, flow table and per-flow conversations.
pub struct Engine {
    cfg: Config,
    decoder: Decoder,
    table: FlowTable<Conversation>,
    sources: Vec<Arc<str>>,
    interface: Option<Arc<str>>,
    /// Flows changed since their last snapshot: (slot, flow id), oldest first.
    changed: VecDeque<(usize, u64)>,
    /// Index hash of the frame after next at the last look ahead (see [`Engine::prefetch_ahead`]).
    ahead_hash: Option<u32>,
    /// Out-of-order bytes held by all open flows (bounded by `max_held_total`).
    held_total: usize,
    /// Closed flows waiting for the ACK of their last FIN: (slot, flow id, give up after), in
    /// the order they closed.
    closing: VecDeque<(usize, u64, Micros)>,
    /// Counters.
    pub stats: Stats,
}

/// How long (capture time) a closed flow waits for the ACK of its last FIN before it is
/// finished without it.
const LAST_ACK_WAIT: Micros = 1_000_000;

/// Flows open from which the next packet's flow is prefetched: below it the table and the flows
/// it indexes stay in the caches and the look at the next headers would be work for nothing.
const PREFETCH_FROM_FLOWS: usize = 4096;

impl Engine {
    /// An engine reading from the named sources (file names, for the `file` key).
    pub fn new(cfg: Config, sources: Vec<Arc<str>>, interface: Option<Arc<str>>) -> Self {
        let table = FlowTable::new(cfg.limits);
        Self {
            cfg,
            decoder: Decoder::new(),
            table,
            sources,
            interface,
            changed: VecDeque::new(),
            ahead_hash: None,
            held_total: 0,
            closing: VecDeque::new(),
            stats: Stats::default(),
        }
    }

    /// Flow-table counters (evictions, late packets, peak flows).
    pub fn table_stats(&self) -> crate::flow::TableStats {
        self.table.stats
    }

    /// Flows currently open.
    pub fn open_flows(&self) -> usize {
        self.table.len()
    }

    /// Out-of-order bytes held by all open flows.
    pub fn held_bytes(&self) -> usize {
        self.held_total
    }

    /// The decoder and the rest of the engine, borrowed apart: a segment may borrow the
    /// decoder's fragment buffer while the rest finishes flows.
    fn split(&mut self) -> (&mut Decoder, Rest<'_>) {
        let rest = Rest {
            cfg: &self.cfg,
            table: &mut self.table,
            sources: &self.sources,
            interface: &self.interface,
            changed: &mut self.changed,
            held_total: &mut self.held_total,
            closing: &mut self.closing,
            stats: &mut self.stats,
        };
        (&mut self.decoder, rest)
    }

    /// Processes one packet; sessions that end are handed to `out`.
    pub fn packet(&mut self, p: &Packet<'_>, out: &mut dyn FnMut(Session)) {
        let (decoder, mut rest) = self.split();
        rest.packet(p, decoder.decode(p.linktype, p.data), out);
    }

    /// Whether the flow table is large enough for [`Engine::prefetch_ahead`] to pay.
    #[inline]
    pub fn wants_lookahead(&self) -> bool {
        self.table.len() >= PREFETCH_FROM_FLOWS
    }

    /// Prefetches for the next two frames, read ahead, in two steps so that neither waits on
    /// memory: the index cell of the one after next, and the flow slot of the next one, whose
    /// cell was asked for a packet ago. Anything but plain TCP/IP is left alone.
    #[inline]
    pub fn prefetch_ahead(&mut self, linktype: i32, ahead: [&[u8]; 2]) {
        let hash_of =
            |f: &[u8]| crate::decode::endpoints(linktype, f).map(|(a, b)| FlowTable::<Conversation>::hash_of(a, b));
        // The next frame was the one after next a packet ago (unless the filter skipped frames
        // since: then this is a wasted hint, nothing worse).
        if let Some(h) = self.ahead_hash.take().or_else(|| hash_of(ahead[0])) {
            self.table.prefetch_flow(h);
        }
        self.ahead_hash = hash_of(ahead[1]);
        if let Some(h) = self.ahead_hash {
            self.table.prefetch_cell(h);
        }
    }

    /// Processes one packet already decoded, in order, by a [`Decoder`] of the caller's (the
    /// two-thread pipeline decodes on its reading thread); the engine's own decoder is not used,
    /// and neither is `p.data`: all the engine reads of the frame is in `seg`.
    pub fn decoded(&mut self, p: &Packet<'_>, seg: Result<Segment<'_>, Skip>, out: &mut dyn FnMut(Session)) {
        let (_, mut rest) = self.split();
        rest.packet(p, seg, out);
    }

    /// Snapshots of up to `max` open sessions that changed since their last snapshot, oldest
    /// change first, marked [`Session::in_progress`] with a provisional verdict. Needs
    /// [`Config::track_open`]. Returns how many changed flows are still waiting.
    pub fn changed_open_sessions(&mut self, max: usize, out: &mut dyn FnMut(Session)) -> usize {
        let mut n = 0;
        while n < max {
            let Some((slot, id)) = self.changed.pop_front() else { break };
            // A stale entry: the flow ended (its final record went out) and the slot moved on.
            let Some(flow) = self.table.get_mut(slot).filter(|f| f.meta.id == id) else { continue };
            flow.app.dirty = false;
            let stats = flow.streams.as_ref().map_or([StreamStats::default(); 2], |s| [s[0].stats, s[1].stats]);
            if let Some(s) = flow.app.snapshot(&flow.meta, stats) {
                out(s);
                n += 1;
            }
        }
        self.changed.len()
    }

    /// Live: reports every flow with no packet since `now - idle` (µs) as it stands; later
    /// packets of its 4-tuple count as late.
    pub fn expire_idle(&mut self, now: Micros, idle: Micros, out: &mut dyn FnMut(Session)) {
        let (_, mut rest) = self.split();
        let flows = rest.table.expire(now.saturating_sub(idle));
        if flows.is_empty() {
            return;
        }
        let note = format!("no packet for {}", idle_text(idle));
        for f in flows {
            rest.finish_flow(f, EndReason::Idle, &mut |mut s: Session| {
                let at = s.evidence.len().min(1);
                s.evidence
                    .insert(at, crate::session::Evidence { text: note.clone(), frame: None, side: None, file: None });
                out(s)
            });
        }
    }

    /// End of input: every open flow is finished.
    pub fn finish(&mut self, out: &mut dyn FnMut(Session)) {
        let (_, mut rest) = self.split();
        rest.changed.clear();
        rest.closing.clear();
        for f in rest.table.drain() {
            rest.finish_flow(f, EndReason::EndOfCapture, out);
        }
    }
}

/// The engine without its decoder.
struct Rest<'e> {
    cfg: &'e Config,
    table: &'e mut FlowTable<Conversation>,
    sources: &'e [Arc<str>],
    interface: &'e Option<Arc<str>>,
    changed: &'e mut VecDeque<(usize, u64)>,
    held_total: &'e mut usize,
    closing: &'e mut VecDeque<(usize, u64, Micros)>,
    stats: &'e mut Stats,
}

impl Rest<'_> {
    fn packet(&mut self, p: &Packet<'_>, seg: Result<Segment<'_>, Skip>, out: &mut dyn FnMut(Session)) {
        self.stats.packets += 1;
        self.stats.bytes += u64::from(p.orig_len);
        self.expire_closing(p.ts, out);
        match seg {
            Ok(seg) => self.segment(&seg, p, out),
            Err(skip) => *self.stats.undecodable.entry(skip).or_default() += 1,
        }
    }

    /// Finishes the closed flows whose last ACK did not come in time.
    fn expire_closing(&mut self, now: Micros, out: &mut dyn FnMut(Session)) {
        while let Some(&(slot, id, deadline)) = self.closing.front() {
            if deadline > now {
                break;
            }
            self.closing.pop_front();
            // A stale entry: the flow already finished with its last ACK.
            let waiting = self.table.get_mut(slot).is_some_and(|f| f.meta.id == id && f.meta.closing.is_some());
            if waiting {
                if let Some(f) = self.table.remove(slot) {
                    self.finish_flow(f, EndReason::Closed, out);
                }
            }
        }
    }

    fn segment(&mut self, seg: &Segment<'_>, p: &Packet<'_>, out: &mut dyn FnMut(Session)) {
        self.stats.tcp_segments += 1;
        // Flows pushed out by this packet (reuse, eviction) are finished after the lookup.
        let mut ended: Vec<(Flow<Conversation>, EndReason)> = Vec::new();
        let lookup = self.table.lookup(seg, p.ts, p.source, p.frame, Conversation::new, &mut |f, r| ended.push((f, r)));
        if !ended.is_empty() {
            for (f, r) in ended {
                self.finish_flow(f, r, out);
            }
        }
        let Lookup::Flow(slot, dir) = lookup else {
            return;
        };
        let lim = self.table.limits.stream;
        let max_held_total = self.table.limits.max_held_total;
        let ctx = ctx_of(self.cfg);
        let Some(flow) = self.table.get_mut(slot) else {
            return;
        };
        let Flow { meta, streams, app } = flow;
        if let Some(r) = streams.as_deref().and_then(|s| s.get(dir)) {
            crate::flow::prefetch(r);
        }
        app.prefetch();
        meta.packets += 1;
        meta.last_ts = p.ts;
        meta.last_frame = p.frame;
        if self.cfg.track_open && !app.dirty {
            app.dirty = true;
            self.changed.push_back((slot, meta.id));
        }
        let f = seg.flags;
        if f.syn {
            if f.ack {
                meta.synack_dir.get_or_insert(dir);
            } else {
                meta.syn_dir.get_or_insert(dir);
                meta.syn_isn.get_or_insert(seg.seq);
            }
            meta.isn[dir].get_or_insert(seg.seq);
            if let Some(s) = streams.as_deref_mut() {
                s[dir].on_syn(seg.seq);
            }
        }
        if f.rst {
            meta.rst[dir] = true;
        }
        let data_seq = if f.syn { seg.seq.wrapping_add(1) } else { seg.seq };
        if seg.wire_len > 0 && !f.rst {
            meta.wire_bytes[dir] += u64::from(seg.wire_len);
            meta.captured_bytes[dir] += seg.payload.len() as u64;
            if app.wants_bytes() {
                let st = crate::flow::streams(meta, streams);
                let m: &crate::flow::FlowMeta = meta;
                let before = st[dir].buffered();
                st[dir]
                    .insert(data_seq, seg.payload, seg.wire_len, &lim, &mut |c| app.on_chunk(dir, c, p.frame, m, ctx));
                *self.held_total = self.held_total.saturating_sub(before) + st[dir].buffered();
                if *self.held_total > max_held_total {
                    *self.held_total = self.held_total.saturating_sub(st[dir].buffered());
                    st[dir].release_held(&lim, &mut |c| app.on_chunk(dir, c, p.frame, m, ctx));
                    self.stats.held_releases += 1;
                }
            }
        }
        if let (true, true, Some(st)) = (f.ack, app.wants_bytes(), streams.as_deref_mut()) {
            let m: &crate::flow::FlowMeta = meta;
            let other = 1 - dir;
            let before = st[other].buffered();
            st[other].on_peer_ack(seg.ack, &lim, &mut |c| app.on_chunk(other, c, p.frame, m, ctx));
            *self.held_total = self.held_total.saturating_sub(before) + st[other].buffered();
        }
        if f.fin {
            meta.fin[dir] = true;
            if let Some(st) = streams.as_deref_mut() {
                st[dir].on_fin(data_seq, seg.wire_len);
            }
        }
        let reset = flow.meta.rst.iter().any(|r| *r);
        if let Some(d) = flow.meta.closing {
            // The peer's ACK of the last FIN is the flow's last packet (tshark counts it too).
            if reset || (dir != d && f.ack) {
                if let Some(f) = self.table.remove(slot) {
                    self.finish_flow(f, EndReason::Closed, out);
                }
            }
        } else if flow.finished() {
            if !reset && f.fin {
                // This segment carried the second FIN: wait for its ACK before finishing.
                flow.meta.closing = Some(dir);
                self.closing.push_back((slot, flow.meta.id, p.ts.saturating_add(LAST_ACK_WAIT)));
                return;
            }
            let reason = if reset { EndReason::Reset } else { EndReason::Closed };
            if let Some(f) = self.table.remove(slot) {
                self.finish_flow(f, reason, out);
            }
        }
    }

    fn finish_flow(&mut self, flow: Flow<Conversation>, reason: EndReason, out: &mut dyn FnMut(Session)) {
        let Flow { meta, mut streams, mut app } = flow;
        // A flow waiting for its last ACK had closed, whatever ends the wait.
        let reason = if meta.closing.is_some() { EndReason::Closed } else { reason };
        let lim = self.table.limits.stream;
        let ctx = ctx_of(self.cfg);
        if let Some(st) = streams.as_deref() {
            *self.held_total = self.held_total.saturating_sub(st[0].buffered() + st[1].buffered());
        }
        if let (true, Some(streams)) = (app.wants_bytes(), streams.as_deref_mut()) {
            for (d, st) in streams.iter_mut().enumerate() {
                st.flush(&lim, &mut |c| app.on_chunk(d, c, 0, &meta, ctx));
            }
        }
        let stats = streams.as_ref().map_or([StreamStats::default(); 2], |s| [s[0].stats, s[1].stats]);
        for s in &stats {
            self.stats.gaps += s.gaps;
            self.stats.retransmissions += s.retransmissions;
            self.stats.conflicting_overlaps += s.conflicting_overlaps;
            self.stats.buffer_overflows += s.buffer_overflows;
        }
        let Some(mut session) = app.finish(&meta, stats, reason, ctx) else {
            let mail = ctx.mail_ports.contains(&meta.ends[0].port()) || ctx.mail_ports.contains(&meta.ends[1].port());
            if mail && meta.wire_bytes.iter().sum::<u64>() == 0 {
                self.stats.payloadless_mail_flows += 1;
            }
            return;
        };
        session.file = self.sources.get(meta.source).cloned();
        session.interface = self.interface.clone();
        session.sensor = self.cfg.sensor.clone();
        self.stats.long_lines += u64::from(session.anomalies.long_lines);
        self.stats.malformed_replies += u64::from(session.anomalies.malformed_replies);
        if let Some(v) = session.verdict {
            *self.stats.verdicts.entry(v).or_default() += 1;
        }
        for f in &session.findings {
            *self.stats.findings.entry(f.name).or_default() += 1;
        }
        out(session);
    }
}

/// An idle timeout in words: whole minutes as `10 min`, else seconds.
fn idle_text(us: Micros) -> String {
    let secs = us / 1_000_000;
    if secs >= 60 && secs % 60 == 0 {
        format!("{} min", secs / 60)
    } else {
        format!("{secs} s")
    }
}
