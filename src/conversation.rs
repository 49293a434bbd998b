//! Per-flow application state: the probe that decides what a flow carries, then the SMTP
//! machine or the TLS tracker, filling the flow's [`Session`] record.

use crate::flow::{Chunk, EndReason, FlowMeta, StreamStats};
use crate::session::{verdict, Evidence, Kind, Session, Side, Tunnel};
use crate::smtp::probe::{self, Decision};
use crate::smtp::Machine;
use crate::tls;

/// Bytes per direction the probe holds before judging on what it has.
const PROBE_MAX: usize = 16 * 1024;

#[derive(Debug, Clone, Copy)]
enum Ev {
    Data { len: usize, frame: u64 },
    Gap(u64),
}

/// What a flow without payload probes with.
static NOTHING_YET: ProbeBuf = ProbeBuf { bytes: [Vec::new(), Vec::new()], events: Vec::new(), gap_first: [false; 2] };

#[derive(Default)]
struct ProbeBuf {
    bytes: [Vec<u8>; 2],
    events: Vec<(usize, Ev)>,
    gap_first: [bool; 2],
}

enum Phase {
    /// Probing; the buffer is allocated with the first byte.
    Probe(Option<Box<ProbeBuf>>),
    Smtp(Box<Machine>),
    Implicit(Box<tls::Tracker>),
    Done,
}

/// Application state riding on a flow.
pub struct Conversation {
    phase: Phase,
    client: usize,
    /// A proxy preamble passed, with the port the client asked for: what follows is judged
    /// against that port, and the session (if any) is marked as tunnelled.
    tunnel: Option<(Tunnel, Option<u16>)>,
    session: Option<Box<Session>>,
    /// Changed since its last snapshot (only tracked when the engine is asked to).
    pub(crate) dirty: bool,
}

impl Default for Conversation {
    fn default() -> Self {
        Self::new()
    }
}

/// What the conversation needs to know from the engine's configuration.
#[derive(Debug, Clone, Copy)]
pub struct Ctx<'a> {
    /// Ports on which implicit TLS and non-SMTP payload are reported.
    pub mail_ports: &'a [u16],
    /// Keep AUTH secrets (`--show-credentials`, forensics only).
    pub keep_credentials: bool,
    /// Record a bounded transcript of the dialogue.
    pub transcript: bool,
}

impl Ctx<'_> {
    fn is_mail(&self, port: u16) -> bool {
        self.mail_ports.contains(&port)
    }
}

impl Conversation {
    /// A conversation that has seen nothing.
    pub fn new() -> Self {
        Self { phase: Phase::Probe(None), client: 0, tunnel: None, session: None, dirty: false }
    }

    /// Starts loading the machine and the record this flow's next bytes will touch, while the
    /// reassembler works: with many flows open, each is a cache miss of its own otherwise.
    pub fn prefetch(&self) {
        if let Phase::Smtp(m) = &self.phase {
            crate::flow::prefetch(&**m);
        }
        if let Some(s) = &self.session {
            crate::flow::prefetch(&**s);
        }
    }

    /// Whether the flow is still worth feeding bytes to.
    pub fn wants_bytes(&self) -> bool {
        !matches!(self.phase, Phase::Done)
    }

    fn side(&self, dir: usize) -> Side {
        if dir == self.client {
            Side::Client
        } else {
            Side::Server
        }
    }

    /// One piece of direction `dir`'s stream.
    pub fn on_chunk(&mut self, dir: usize, chunk: Chunk<'_>, frame: u64, meta: &FlowMeta, ctx: Ctx<'_>) {
        if let Phase::Probe(p) = &mut self.phase {
            let p = p.get_or_insert_with(Box::default);
            match chunk {
                Chunk::Data(b) => {
                    let d = dir.min(1);
                    let room = PROBE_MAX.saturating_sub(p.bytes[d].len());
                    let take = b.len().min(room);
                    p.bytes[d].extend_from_slice(b.get(..take).unwrap_or(b));
                    p.events.push((d, Ev::Data { len: take, frame }));
                }
                Chunk::Gap(n) => {
                    let d = dir.min(1);
                    if p.bytes[d].is_empty() {
                        p.gap_first[d] = true;
                    }
                    p.events.push((d, Ev::Gap(n)));
                }
            }
            let full = p.bytes.iter().any(|b| b.len() >= PROBE_MAX);
            self.try_decide(meta, ctx, full);
            return;
        }
        self.dispatch(dir, chunk, frame);
    }

    fn dispatch(&mut self, dir: usize, chunk: Chunk<'_>, frame: u64) {
        let side = self.side(dir);
        let Some(s) = self.session.as_deref_mut() else {
            return;
        };
        match (&mut self.phase, chunk) {
            (Phase::Smtp(m), Chunk::Data(b)) => match side {
                Side::Client => m.client_data(b, frame, s),
                Side::Server => m.server_data(b, frame, s),
            },
            (Phase::Smtp(m), Chunk::Gap(n)) => {
                m.gap(side, s);
                if side == Side::Client {
                    m.client_gap_len(n);
                }
            }
            (Phase::Implicit(t), Chunk::Data(b)) => t.feed(side, b, frame, s),
            (Phase::Implicit(t), Chunk::Gap(_)) => t.gap(side, s),
            _ => {}
        }
    }

    fn try_decide(&mut self, meta: &FlowMeta, ctx: Ctx<'_>, last_call: bool) {
        loop {
            let Phase::Probe(p) = &self.phase else { return };
            let p: &ProbeBuf = p.as_deref().unwrap_or(&NOTHING_YET);
            let mut client_hint = meta.syn_dir.or(meta.synack_dir.map(|d| 1 - d));
            let from_start = [0, 1].map(|d| !p.gap_first[d] && (meta.syn_dir == Some(d) || meta.synack_dir == Some(d)));
            let mut ports = [meta.ends[0].port(), meta.ends[1].port()];
            let mut mail_port = ports.map(|port| ctx.is_mail(port));
            if let Some((_, target)) = self.tunnel {
                // Inside a tunnel the proxy's port says nothing: the target's does.
                let server = 1 - self.client;
                client_hint = Some(self.client);
                ports[server] = target.unwrap_or(0);
                mail_port[server] = target.is_some_and(|t| ctx.is_mail(t));
            }
            let input = probe::Input {
                bytes: [&p.bytes[0], &p.bytes[1]],
                client_hint,
                from_start,
                ports,
                mail_port,
                last_call,
            };
            let decision = probe::decide(&input);
            match decision {
                Decision::Wait => return,
                Decision::Ignore => {
                    self.phase = Phase::Done;
                    return;
                }
                Decision::Tunnel { client, kind, skip, target } => {
                    // No session yet: the tunnel carries SMTP only if what follows does.
                    self.client = client;
                    self.tunnel = Some((kind, target));
                    if let Phase::Probe(Some(p)) = &mut self.phase {
                        strip_prefix(p, skip);
                    }
                }
                Decision::MidTls { client } => {
                    self.client = client;
                    let s = self.session_for(meta, ctx);
                    s.kind = Kind::MidTls;
                    s.note(
                        None,
                        meta.first_frame,
                        "TLS records from the first captured byte, no ClientHello: the capture started inside TLS",
                    );
                    self.phase = Phase::Done;
                    return;
                }
                Decision::NotSmtp { client } => {
                    self.client = client;
                    self.session_for(meta, ctx).kind = Kind::NotSmtp;
                    self.phase = Phase::Done;
                    return;
                }
                Decision::Smtp { client } => {
                    self.client = client;
                    let greeting = meta.handshake_seen();
                    self.session_for(meta, ctx).kind = Kind::Smtp;
                    self.start(Phase::Smtp(Box::new(Machine::new(greeting).keep_credentials(ctx.keep_credentials))));
                    return;
                }
                Decision::ImplicitTls { client } => {
                    self.client = client;
                    self.session_for(meta, ctx).kind = Kind::ImplicitTls;
                    self.start(Phase::Implicit(Box::default()));
                    return;
                }
            }
        }
    }

    fn session_for(&mut self, meta: &FlowMeta, ctx: Ctx<'_>) -> &mut Session {
        let c = self.client;
        self.session.get_or_insert_with(|| {
            let mut s = Box::new(Session::new(meta.ends[c], meta.ends[1 - c]));
            if ctx.transcript {
                s.transcript = Some(Box::default());
            }
            if let Some((kind, _)) = self.tunnel {
                s.tunnel = Some(kind);
                s.note(None, meta.first_frame, format!("{} preamble before SMTP", kind.name()));
            }
            s
        })
    }

    /// Switches from probing to `phase` and replays what the probe held.
    fn start(&mut self, phase: Phase) {
        let Phase::Probe(Some(p)) = std::mem::replace(&mut self.phase, phase) else {
            return;
        };
        let mut at = [0usize; 2];
        for (d, ev) in &p.events {
            match *ev {
                Ev::Data { len, frame } => {
                    let a = at[*d];
                    at[*d] += len;
                    if let Some(b) = p.bytes[*d].get(a..a + len) {
                        self.dispatch(*d, Chunk::Data(b), frame);
                    }
                }
                Ev::Gap(n) => self.dispatch(*d, Chunk::Gap(n), 0),
            }
        }
    }

    /// The flow ended: finish the record. None when there is nothing to report.
    pub fn finish(
        mut self,
        meta: &FlowMeta,
        streams: [StreamStats; 2],
        end: EndReason,
        ctx: Ctx<'_>,
    ) -> Option<Session> {
        if matches!(self.phase, Phase::Probe(_)) {
            self.try_decide(meta, ctx, true);
        }
        match &mut self.phase {
            Phase::Smtp(m) => {
                if let Some(s) = self.session.as_deref_mut() {
                    m.finish(s);
                }
            }
            Phase::Probe(_) => {
                // Still undecided: report only what the incomplete procedure (a) covers.
                let client = match self.tunnel {
                    Some(_) => self.client,
                    None => meta.syn_dir.or(meta.synack_dir.map(|d| 1 - d)).unwrap_or_else(|| {
                        usize::from(ctx.is_mail(meta.ends[0].port()) && !ctx.is_mail(meta.ends[1].port()))
                    }),
                };
                self.client = client;
                let server_port = meta.ends[1 - client].port();
                // A tunnel with nothing after its preamble counts when it leads to a mail port.
                let mail = match self.tunnel {
                    Some((_, target)) => target.is_some_and(|t| ctx.is_mail(t)),
                    None => ctx.is_mail(server_port),
                };
                if meta.wire_bytes.iter().sum::<u64>() == 0 || !mail {
                    return None;
                }
                self.session_for(meta, ctx).kind = Kind::Unknown;
            }
            _ => {}
        }
        let mut s = *self.session?;
        fill(&mut s, self.client, meta, streams, end);
        Some(s)
    }

    /// A copy of the session as it stands, with a provisional verdict ("if the capture ended
    /// now"), marked in progress. None while the flow is not known to be SMTP or TLS.
    pub fn snapshot(&self, meta: &FlowMeta, streams: [StreamStats; 2]) -> Option<Session> {
        if matches!(self.phase, Phase::Probe(_)) {
            return None;
        }
        let mut s = self.session.as_deref()?.clone();
        fill(&mut s, self.client, meta, streams, EndReason::EndOfCapture);
        s.in_progress = true;
        Some(s)
    }
}

/// Copies the flow's facts into the record, then judges it.
fn fill(s: &mut Session, c: usize, meta: &FlowMeta, streams: [StreamStats; 2], end: EndReason) {
    s.id = meta.id;
    s.first_seen = meta.first_ts;
    s.last_seen = meta.last_ts;
    s.first_frame = meta.first_frame;
    s.last_frame = meta.last_frame;
    s.packets = meta.packets;
    s.vlan = meta.vlan;
    s.handshake_seen = meta.handshake_seen();
    s.client_closed = meta.fin[c] || meta.rst[c];
    s.server_closed = meta.fin[1 - c] || meta.rst[1 - c];
    s.end = end;
    s.wire_bytes = [meta.wire_bytes[c], meta.wire_bytes[1 - c]];
    s.captured_bytes = [meta.captured_bytes[c], meta.captured_bytes[1 - c]];
    s.streams = [streams[c], streams[1 - c]];
    tls::assess(s);
    let j = verdict::judge(s);
    let text = crate::escape::concat(&["verdict: ", &j.reason]);
    s.evidence.insert(0, Evidence { text, frame: j.frame, side: None, file: None });
    s.verdict = Some(j.verdict);
}

fn strip_prefix(p: &mut ProbeBuf, skip: [usize; 2]) {
    for (d, &skip) in skip.iter().enumerate() {
        let n = skip.min(p.bytes[d].len());
        p.bytes[d].drain(..n);
        let mut left = n;
        for (ed, ev) in p.events.iter_mut() {
            if *ed != d || left == 0 {
                continue;
            }
            if let Ev::Data { len, .. } = ev {
                let cut = (*len).min(left);
                *len -= cut;
                left -= cut;
            }
        }
    }
    p.events.retain(|(_, e)| !matches!(e, Ev::Data { len: 0, .. }));
}
