//! The sessions the UI knows: finished records and in-progress snapshots, the filtered and
//! sorted view of them, and verdict counts. Rows are keyed by session id so an in-progress row
//! is replaced in place by its next snapshot and, finally, by its record.
//!
//! Nothing here costs a frame more than its budget: rows arrive ready ([`Row`]: brief made,
//! packed and tested against the display filter on the feed's packer thread), the view takes new
//! rows by merging them in (no full sort while sessions stream in), and a filter that needs whole
//! sessions unpacks a budget of rows a frame ([`Store::work`]), the view filling in meanwhile.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use rustc_hash::FxHashMap;

use super::packed::{Codec, Packer};
use crate::escape::terminal;
use crate::filter::{Expr, Filter, LogAgreement, Term};
use crate::session::{Kind, Session, Verdict};

/// Rows kept by default (`--max-rows`) before the oldest finished ones are dropped from the view
/// (their counts stay, and the header says how many went).
pub const MAX_ROWS: usize = 1_000_000;

/// The session table's columns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Column {
    /// First packet's time.
    Time,
    /// Client `ip:port`.
    Client,
    /// Server address.
    Server,
    /// Server port.
    Port,
    /// HELO/EHLO name.
    Helo,
    /// Verdict.
    Verdict,
    /// Negotiated TLS version.
    Tls,
    /// Messages accepted.
    Msgs,
    /// Payload bytes.
    Bytes,
    /// Findings, by short name.
    Findings,
    /// The sensor that saw the session (records of several sensors, `--sensor`, `-R`).
    Sensor,
    /// The server log's word against the wire's (`--logs`): agree, differ, none.
    Log,
    /// The log a log session comes from (`smtpscope logs`): exchange-receive, postfix-smtpd, …
    Source,
}

impl Column {
    /// Every column, in table order.
    pub const ALL: [Column; 13] = [
        Column::Time,
        Column::Sensor,
        Column::Source,
        Column::Client,
        Column::Server,
        Column::Port,
        Column::Helo,
        Column::Verdict,
        Column::Log,
        Column::Tls,
        Column::Msgs,
        Column::Bytes,
        Column::Findings,
    ];

    /// Header text.
    pub fn title(self) -> &'static str {
        match self {
            Column::Time => "TIME",
            Column::Client => "CLIENT",
            Column::Server => "SERVER",
            Column::Port => "PORT",
            Column::Helo => "HELO",
            Column::Verdict => "VERDICT",
            Column::Tls => "TLS",
            Column::Msgs => "MSGS",
            Column::Bytes => "BYTES",
            Column::Findings => "FINDINGS",
            Column::Sensor => "SENSOR",
            Column::Log => "LOG",
            Column::Source => "SOURCE",
        }
    }

    /// The next column (for `s`).
    pub fn next(self) -> Column {
        let i = Column::ALL.iter().position(|c| *c == self).unwrap_or(0);
        Column::ALL[(i + 1) % Column::ALL.len()]
    }
}

/// The negotiated TLS version, when a handshake completed (a log session: the version its log
/// names).
pub fn tls_version(s: &Session) -> Option<u16> {
    if let Some(r) = &s.from_log {
        return super::logrow::tls_version(r);
    }
    s.tls.version.filter(|_| s.tls.server_hello.is_some())
}

/// Messages accepted in clear, when countable (never for a log session: its log counts MAIL
/// commands, not accepted messages).
pub fn messages(s: &Session) -> Option<u32> {
    (s.from_log.is_none() && s.kind == Kind::Smtp && !s.tls_established()).then_some(s.messages_accepted)
}

/// A row's sort key for one column, compact so sorting a large view stays in cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
struct Key {
    primary: u128,
    secondary: u64,
    time: u64,
    id: u64,
}

fn ip_key(ip: std::net::IpAddr) -> u128 {
    match ip {
        std::net::IpAddr::V4(v) => u128::from(v.to_ipv6_mapped()),
        std::net::IpAddr::V6(v) => u128::from(v),
    }
}

fn time_key(t: i64) -> u64 {
    (t as u64) ^ (1 << 63)
}

/// What the store keeps of every row whole, packed or not: the values sorting needs, so a
/// change of sort column never unpacks a session.
#[derive(Debug, Clone)]
struct Brief {
    id: u64,
    first_seen: i64,
    client: std::net::SocketAddr,
    server: std::net::SocketAddr,
    verdict: Option<Verdict>,
    tls: Option<u16>,
    messages: Option<u32>,
    bytes: u64,
    in_progress: bool,
    /// The HELO name as shown, lower case.
    helo: Box<str>,
    /// Findings weighed by severity (the FINDINGS column's sort key).
    findings: u128,
    /// The sensor's name (the SENSOR column's sort key).
    sensor: Option<Arc<str>>,
    /// The log cross-check's outcome (None: the run has no `--logs`).
    log: Option<LogAgreement>,
    /// What the display filter's `helo:` and `tls:` see.
    hello: Option<Vec<u8>>,
    handshake_version: Option<u16>,
    /// A log session's facts the filter's brief terms read (None: a wire session).
    log_session: Option<Box<LogBrief>>,
}

/// What the display filter's brief terms read of a log session (`smtpscope logs`), kept
/// whole so that a filter on verdicts, hosts, ports, HELO or TLS versions never unpacks a row.
#[derive(Debug, Clone)]
struct LogBrief {
    source: crate::logs::Source,
    client: Option<crate::logs::Endpoint>,
    server: Option<crate::logs::Endpoint>,
    helo: Option<String>,
    tls_version: Option<String>,
}

impl LogBrief {
    fn of(r: &crate::logs::LogRecord) -> Self {
        Self {
            source: r.source,
            client: r.client,
            server: r.server,
            helo: r.helo.clone(),
            tls_version: r.tls_version.clone(),
        }
    }

    /// A record carrying only these facts: the brief terms decide on it as on the whole one.
    fn skeleton(&self, b: &Brief) -> crate::logs::LogRecord {
        let mut r = crate::logs::LogRecord::new(self.source, Arc::from(""), String::new(), b.first_seen, 0);
        r.client = self.client;
        r.server = self.server;
        r.helo = self.helo.clone();
        r.tls_version = self.tls_version.clone();
        r.verdict = b.verdict.unwrap_or(Verdict::Incomplete);
        r
    }
}

impl Brief {
    fn of(s: &Session) -> Self {
        Self {
            id: s.id,
            first_seen: s.first_seen,
            client: s.client,
            server: s.server,
            verdict: s.verdict,
            tls: tls_version(s),
            messages: messages(s),
            bytes: s.wire_bytes[0] + s.wire_bytes[1],
            in_progress: s.in_progress,
            helo: s.hello.as_ref().map(|h| terminal(&h.arg).to_lowercase()).unwrap_or_default().into_boxed_str(),
            findings: s
                .findings
                .iter()
                .map(|f| match crate::report::finding::severity(f.name) {
                    crate::report::finding::Severity::High => 1 << 16,
                    crate::report::finding::Severity::Warn => 1 << 8,
                    crate::report::finding::Severity::Info => 1,
                })
                .sum(),
            sensor: s.sensor.clone(),
            log: LogAgreement::of(s),
            hello: s.hello.as_ref().map(|h| h.arg.clone()),
            handshake_version: s.tls.version.filter(|_| s.tls_handshake()),
            log_session: s.from_log.as_deref().map(|r| Box::new(LogBrief::of(r))),
        }
        .with_log_facts(s)
    }

    /// A log session's HELO comes from its record (the row has no wire facts).
    fn with_log_facts(mut self, s: &Session) -> Self {
        if let Some(r) = &s.from_log {
            self.helo = r.helo.as_deref().map(|h| crate::escape::defuse(h).to_lowercase()).unwrap_or_default().into();
        }
        self
    }

    /// The log a log session comes from (None: a wire session).
    fn source(&self) -> Option<crate::logs::Source> {
        self.log_session.as_ref().map(|l| l.source)
    }

    /// Whether `f`, made of [`brief_terms`] only, keeps this row: a wire session judged on its
    /// skeleton, a log session on its record's (as `logs -Y` judges it).
    fn passes(&self, f: &Filter) -> bool {
        match &self.log_session {
            Some(l) => f.matches_log(&l.skeleton(self)),
            None => f.matches(&self.skeleton()),
        }
    }

    /// A session carrying only what the brief knows: enough for the filter terms
    /// [`brief_terms`] accepts, which then decide as they would on the whole session.
    fn skeleton(&self) -> Session {
        let mut s = Session::new(self.client, self.server);
        s.id = self.id;
        s.first_seen = self.first_seen;
        s.verdict = self.verdict;
        s.in_progress = self.in_progress;
        s.hello = self.hello.as_ref().map(|arg| crate::session::Hello { arg: arg.clone(), ..Default::default() });
        if let Some(v) = self.handshake_version {
            s.tls.version = Some(v);
            s.tls.client_hello = Some(0);
            s.tls.server_hello = Some(0);
        }
        s
    }
}

/// Whether every term of `e` reads only what a [`Brief`] keeps (so a new filter is applied
/// without unpacking a single row).
fn brief_terms(e: &Expr) -> bool {
    match e {
        Expr::All => true,
        Expr::Term(t) => matches!(
            t,
            Term::Verdict(_)
                | Term::Client(_)
                | Term::Server(_)
                | Term::Host(_)
                | Term::Port(..)
                | Term::Helo(_)
                | Term::Tls(_)
                | Term::Open(_)
        ),
        Expr::Not(x) => brief_terms(x),
        Expr::And(v) | Expr::Or(v) => v.iter().all(brief_terms),
    }
}

fn key_of(col: Column, s: &Brief) -> Key {
    let (primary, secondary) = match col {
        Column::Time => (0, 0),
        Column::Client => (ip_key(s.client.ip()), u64::from(s.client.port())),
        Column::Server => (ip_key(s.server.ip()), u64::from(s.server.port())),
        Column::Port => (u128::from(s.server.port()), 0),
        // Sorted by name (the HELO and SENSOR columns compare the names themselves).
        Column::Helo | Column::Sensor => (0, 0),
        // Alphabetical by name, as the column reads; wire sessions first.
        Column::Source => (
            s.source().map_or(0, |src| match src {
                crate::logs::Source::ExchangeReceive => 1,
                crate::logs::Source::ExchangeSend => 2,
                crate::logs::Source::PostfixSmtp => 3,
                crate::logs::Source::PostfixSmtpd => 4,
            }),
            0,
        ),
        // Without a log first, then none, agree, differ: reversed, the disagreements lead.
        Column::Log => (s.log.map_or(0, |l| l as u128 + 1), 0),
        // Alphabetical by name, as the column reads.
        Column::Verdict => (
            s.verdict.map_or(0, |v| match v {
                Verdict::ImplicitTls => 1,
                Verdict::Incomplete => 2,
                Verdict::NotSmtp => 3,
                Verdict::Plaintext => 4,
                Verdict::Starttls => 5,
                Verdict::StarttlsFailed => 6,
                Verdict::StarttlsOfferedUnused => 7,
                Verdict::StarttlsRefused => 8,
                Verdict::Stripped => 9,
            }),
            0,
        ),
        Column::Tls => (s.tls.map_or(0, |v| u128::from(v) + 1), 0),
        Column::Msgs => (s.messages.map_or(0, |n| u128::from(n) + 1), 0),
        Column::Bytes => (u128::from(s.bytes), 0),
        // The most serious first when reversed: serious findings count most, then any.
        Column::Findings => (s.findings, 0),
    };
    Key { primary, secondary, time: time_key(s.first_seen), id: s.id }
}

/// A session as the store holds it: whole while open (its snapshots keep changing) and until
/// the packer's dictionary is ready, packed once finished.
#[derive(Clone)]
enum Held {
    Whole(Arc<Session>),
    Packed(Arc<[u8]>),
}

/// The display filter as the feed's packer thread sees it, with a generation number, so a row
/// tested against an older filter is known as such.
pub struct FilterSlot(Mutex<(u64, Arc<Filter>)>);

impl FilterSlot {
    /// A slot holding the empty filter, generation 0.
    pub fn new() -> Arc<Self> {
        Arc::new(Self(Mutex::new((0, Arc::new(Filter::default())))))
    }

    /// The filter in use and its generation.
    pub fn get(&self) -> (u64, Arc<Filter>) {
        let g = self.0.lock().unwrap_or_else(|e| e.into_inner());
        (g.0, Arc::clone(&g.1))
    }

    fn set(&self, generation: u64, f: Arc<Filter>) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = (generation, f);
    }
}

/// A session made ready for the store off the UI thread: its brief, the session packed if it is
/// finished (and the dictionary ready), and whether it passed the display filter of a generation.
pub struct Row {
    brief: Brief,
    held: Held,
    pass: Option<(u64, bool)>,
    /// Replaces the finished row of its session (a revision), never adds one.
    revises: bool,
}

impl std::fmt::Debug for Row {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Row")
            .field("id", &self.brief.id)
            .field("in_progress", &self.brief.in_progress)
            .field("packed", &self.packed().is_some())
            .field("pass", &self.pass)
            .finish()
    }
}

impl Row {
    /// Prepares `s` on the feed's side: brief, packing, and the filter in `slot` tested while
    /// the session is whole.
    pub fn prepare(s: Session, packer: &mut Packer, slot: &FilterSlot) -> Self {
        let (generation, filter) = slot.get();
        let pass = Some((generation, filter.matches(&s)));
        let brief = Brief::of(&s);
        let held = match (!s.in_progress).then(|| packer.pack(&s)).flatten() {
            Some(b) => Held::Packed(b),
            None => Held::Whole(Arc::new(s)),
        };
        Self { brief, held, pass, revises: false }
    }

    /// `s` kept whole, to be tested by the store (tests, rows held while paused).
    pub fn whole(s: Session) -> Self {
        Self { brief: Brief::of(&s), held: Held::Whole(Arc::new(s)), pass: None, revises: false }
    }

    /// This row as a revision: it replaces the finished row of its session (and adds none when
    /// that row is gone).
    pub fn revising(mut self) -> Self {
        self.revises = true;
        self
    }

    /// Whether this row replaces the finished row of its session.
    pub fn revises(&self) -> bool {
        self.revises
    }

    /// The session's id.
    pub fn id(&self) -> u64 {
        self.brief.id
    }

    /// A snapshot of a session still open.
    pub fn in_progress(&self) -> bool {
        self.brief.in_progress
    }

    /// The packed bytes, if the row is packed.
    pub fn packed(&self) -> Option<&Arc<[u8]>> {
        match &self.held {
            Held::Packed(b) => Some(b),
            Held::Whole(_) => None,
        }
    }
}

/// How much a frame may spend on deferred store work, in units of one brief test; unpacking a
/// row costs [`UNPACK_COST`] units. A deadline, when set, ends it early.
#[derive(Debug, Clone)]
pub struct Budget {
    units: u64,
    deadline: Option<Instant>,
    tally: u64,
}

/// Units one unpacked row costs (≈ 60 µs against ≈ 1 µs for a brief test).
pub const UNPACK_COST: u64 = 64;

impl Budget {
    /// `units` of work, whatever the time.
    pub fn units(units: u64) -> Self {
        Self { units, deadline: None, tally: 0 }
    }

    /// Work until `deadline`.
    pub fn until(deadline: Instant) -> Self {
        Self { units: u64::MAX, deadline: Some(deadline), tally: 0 }
    }

    /// Takes `cost` units if they are left (the clock is read every 64 units).
    fn spend(&mut self, cost: u64) -> bool {
        if self.units < cost {
            return false;
        }
        self.units -= cost;
        self.tally += cost;
        if self.tally >= 64 {
            self.tally = 0;
            if self.deadline.is_some_and(|d| Instant::now() >= d) {
                self.units = 0;
            }
        }
        true
    }
}

/// Work a new filter does at once (the rest goes to [`Store::work`] over the next frames):
/// a small capture is filtered before the next frame is drawn.
const FILTER_AT_ONCE: u64 = 128 * UNPACK_COST;

/// A row fails the filter, passes it, or is still to be tested.
const FAIL: u8 = 0;
const PASS: u8 = 1;
const PENDING: u8 = 2;

fn mark(p: bool) -> u8 {
    if p {
        PASS
    } else {
        FAIL
    }
}

/// A row handed to another thread (exports): unpacked there, not on the UI thread.
#[derive(Clone)]
pub struct Shipped {
    held: Held,
    codec: Option<Arc<Codec>>,
}

impl Shipped {
    /// The session, unpacked if need be.
    pub fn session(&self) -> Option<Arc<Session>> {
        match &self.held {
            Held::Whole(s) => Some(Arc::clone(s)),
            Held::Packed(b) => self.codec.as_ref()?.unpack(b).map(Arc::new),
        }
    }
}

/// Sessions, view and counts.
pub struct Store {
    rows: Vec<Held>,
    briefs: Vec<Brief>,
    /// Per row: [`FAIL`], [`PASS`] or [`PENDING`] for the filter in use.
    pass: Vec<u8>,
    /// Per row: key for the sort column.
    keys: Vec<Key>,
    by_id: FxHashMap<u64, usize>,
    /// Rows passing the filter, ascending by the sort column (reversed when read descending).
    view: Vec<u32>,
    /// Rows added, replaced or newly passing since the view was last brought up to date.
    changed: Vec<u32>,
    /// Some changed row may already be in the view (replaced in place).
    moved: bool,
    filter: Arc<Filter>,
    /// The filter's generation, shared with the packer thread through `slot`.
    generation: u64,
    slot: Arc<FilterSlot>,
    /// Every term of the filter reads only the brief.
    brief_only: bool,
    /// Rows still to be tested, and where the test goes on.
    pending: usize,
    scan: usize,
    codec: Option<Arc<Codec>>,
    sort: Column,
    descending: bool,
    /// Finished sessions per verdict (dropped rows included).
    pub counts: BTreeMap<Verdict, u64>,
    /// Rows in progress.
    pub open: usize,
    /// Finished rows dropped to bound memory.
    pub dropped: u64,
    /// Earliest and latest session start seen (µs), dropped rows included.
    pub span: Option<(i64, i64)>,
    /// Rows kept before the oldest finished ones are dropped.
    max_rows: usize,
    dirty: bool,
    /// A session carried the log cross-check (the run has `--logs`): the LOG column shows.
    logs_seen: bool,
    /// The first sensor name seen, and whether another one came after it.
    sensors: (Option<Arc<str>>, bool),
    /// The SENSOR column shows even for one sensor (`--sensor`, `-R`).
    sensor_column: bool,
    /// Rows of log sessions and of wire sessions were seen (SOURCE, MSGS and BYTES columns).
    log_rows: bool,
    wire_rows: bool,
}

impl Default for Store {
    fn default() -> Self {
        Self::new()
    }
}

impl Store {
    /// The sessions started on more than one (UTC) day: times need their date.
    pub fn spans_days(&self) -> bool {
        const DAY: i64 = 86_400_000_000;
        self.span.is_some_and(|(a, b)| a.div_euclid(DAY) != b.div_euclid(DAY))
    }

    /// An empty store, sorted by time.
    pub fn new() -> Self {
        Self {
            rows: Vec::new(),
            briefs: Vec::new(),
            pass: Vec::new(),
            keys: Vec::new(),
            by_id: FxHashMap::default(),
            view: Vec::new(),
            changed: Vec::new(),
            moved: false,
            filter: Arc::new(Filter::default()),
            generation: 0,
            slot: FilterSlot::new(),
            brief_only: true,
            pending: 0,
            scan: 0,
            codec: None,
            sort: Column::Time,
            descending: false,
            counts: BTreeMap::new(),
            open: 0,
            dropped: 0,
            span: None,
            max_rows: MAX_ROWS,
            dirty: false,
            logs_seen: false,
            sensors: (None, false),
            sensor_column: false,
            log_rows: false,
            wire_rows: false,
        }
    }

    /// The display filter as the feed's packer thread must see it.
    pub fn filter_slot(&self) -> Arc<FilterSlot> {
        Arc::clone(&self.slot)
    }

    /// Finished rows held packed.
    pub fn packed(&self) -> usize {
        self.rows.iter().filter(|h| matches!(h, Held::Packed(_))).count()
    }

    /// Whether the row of session `id` holds exactly these packed bytes (no copy, no repacking).
    pub fn holds_packed(&self, id: u64, blob: &Arc<[u8]>) -> bool {
        matches!(self.by_id.get(&id).and_then(|&i| self.rows.get(i)), Some(Held::Packed(b)) if Arc::ptr_eq(b, blob))
    }

    /// Keeps at most `n` rows (at least one): beyond it the oldest finished rows are dropped.
    pub fn set_max_rows(&mut self, n: usize) {
        self.max_rows = n.max(1);
        if self.rows.len() > self.max_rows {
            self.trim();
        }
    }

    /// The packer's dictionary is ready: packed rows can be read.
    pub fn set_codec(&mut self, c: Arc<Codec>) {
        self.codec = Some(c);
    }

    /// Rows sent whole while the dictionary was trained, now packed: swapped in.
    pub fn repack(&mut self, packed: Vec<(u64, Arc<[u8]>)>) {
        for (id, blob) in packed {
            let Some(&i) = self.by_id.get(&id) else { continue };
            if let Some(h @ Held::Whole(_)) = self.rows.get_mut(i) {
                if self.briefs.get(i).is_some_and(|b| !b.in_progress) {
                    *h = Held::Packed(blob);
                }
            }
        }
    }

    /// Shows the SENSOR column even when every session names the same sensor (the run named
    /// it, or read records).
    pub fn set_sensor_column(&mut self, on: bool) {
        self.sensor_column = on;
    }

    /// Shows the LOG column before any session carries a log link (a live run that follows
    /// the logs: rows wait for their log lines).
    pub fn set_log_column(&mut self, on: bool) {
        self.logs_seen |= on;
    }

    /// Whether the table has `col`: SENSOR for sessions named by more than one sensor (or when
    /// asked, and some session names one), LOG for a run with `--logs`, SOURCE for log
    /// sessions, MSGS and BYTES unless every row is a log session (a log counts neither); the
    /// others always.
    pub fn shows(&self, col: Column) -> bool {
        match col {
            Column::Sensor => self.sensors.1 || (self.sensor_column && self.sensors.0.is_some()),
            Column::Log => self.logs_seen,
            Column::Source => self.log_rows,
            Column::Msgs | Column::Bytes => !self.logs_only(),
            _ => true,
        }
    }

    /// Every row is a server-log session (`smtpscope logs`).
    pub fn logs_only(&self) -> bool {
        self.log_rows && !self.wire_rows
    }

    fn note_columns(&mut self, b: &Brief) {
        self.logs_seen |= b.log.is_some();
        self.log_rows |= b.log_session.is_some();
        self.wire_rows |= b.log_session.is_none();
        if let Some(name) = &b.sensor {
            match &self.sensors.0 {
                None => self.sensors.0 = Some(Arc::clone(name)),
                Some(first) if first != name => self.sensors.1 = true,
                Some(_) => {}
            }
        }
    }

    /// Adds or replaces a session (a snapshot never replaces a finished record), tested here.
    pub fn upsert(&mut self, s: Session) {
        self.ingest(Row::whole(s));
    }

    /// Whether a row passes the filter in use: the packer's answer if it tested this filter,
    /// else the brief or the whole session if that is enough, else to be tested later.
    fn decide(&self, row: &Row) -> u8 {
        match row.pass {
            Some((g, p)) if g == self.generation => mark(p),
            _ if self.brief_only => mark(row.brief.passes(&self.filter)),
            _ => match &row.held {
                Held::Whole(s) => mark(self.filter.matches(s)),
                Held::Packed(_) => PENDING,
            },
        }
    }

    /// Adds or replaces a prepared row (a snapshot never replaces a finished record; a
    /// revision replaces only a finished record, and adds nothing when it is gone).
    pub fn ingest(&mut self, row: Row) {
        let existing = self.by_id.get(&row.brief.id).copied();
        if row.revises && existing.is_none_or(|i| self.briefs.get(i).is_none_or(|b| b.in_progress)) {
            return;
        }
        self.note_columns(&row.brief);
        let t = row.brief.first_seen;
        self.span = Some(self.span.map_or((t, t), |(a, b)| (a.min(t), b.max(t))));
        let pass = self.decide(&row);
        let Row { brief, held, revises, .. } = row;
        let key = key_of(self.sort, &brief);
        match existing {
            Some(i) => {
                let Some(old) = self.briefs.get(i) else { return };
                let old_verdict = old.verdict;
                if revises {
                    // Its verdict was counted when it finished: counted again only if it changed.
                    if old_verdict != brief.verdict {
                        if let Some(n) = old_verdict.and_then(|v| self.counts.get_mut(&v)) {
                            *n = n.saturating_sub(1);
                        }
                        self.count(brief.verdict);
                    }
                } else if !old.in_progress {
                    return;
                } else if !brief.in_progress {
                    self.open = self.open.saturating_sub(1);
                    self.count(brief.verdict);
                }
                if self.pass[i] == PENDING {
                    self.pending -= 1;
                }
                self.rows[i] = held;
                self.briefs[i] = brief;
                self.pass[i] = pass;
                self.keys[i] = key;
                self.changed.push(i as u32);
                self.moved = true;
            }
            None => {
                if brief.in_progress {
                    self.open += 1;
                } else {
                    self.count(brief.verdict);
                }
                let i = self.rows.len();
                self.by_id.insert(brief.id, i);
                self.rows.push(held);
                self.briefs.push(brief);
                self.pass.push(pass);
                self.keys.push(key);
                self.changed.push(i as u32);
            }
        }
        if pass == PENDING {
            self.pending += 1;
        }
        self.dirty = true;
        // Trimmed in steps of a tenth, so a full table does not rebuild its index per row.
        if self.rows.len() > self.max_rows + self.max_rows / 10 {
            self.trim();
        }
    }

    fn count(&mut self, v: Option<Verdict>) {
        if let Some(v) = v {
            *self.counts.entry(v).or_default() += 1;
        }
    }

    /// Drops the oldest finished rows down to the row limit.
    fn trim(&mut self) {
        let mut excess = self.rows.len().saturating_sub(self.max_rows);
        let keep: Vec<bool> = self
            .briefs
            .iter()
            .map(|b| {
                if excess > 0 && !b.in_progress {
                    excess -= 1;
                    false
                } else {
                    true
                }
            })
            .collect();
        // Old row number to new, so the view keeps its order without being sorted again.
        let mut next = 0u32;
        let renumber: Vec<u32> = keep
            .iter()
            .map(|&k| {
                if k {
                    next += 1;
                    next - 1
                } else {
                    u32::MAX
                }
            })
            .collect();
        let mut it = keep.iter();
        self.rows.retain(|_| *it.next().unwrap_or(&true));
        let mut it = keep.iter();
        self.briefs.retain(|_| *it.next().unwrap_or(&true));
        let mut it = keep.iter();
        self.pass.retain(|_| *it.next().unwrap_or(&true));
        let mut it = keep.iter();
        self.keys.retain(|_| *it.next().unwrap_or(&true));
        let map = |v: &mut Vec<u32>| {
            v.retain_mut(|r| match renumber.get(*r as usize) {
                Some(&n) if n != u32::MAX => {
                    *r = n;
                    true
                }
                _ => false,
            })
        };
        map(&mut self.view);
        map(&mut self.changed);
        self.dropped += keep.iter().filter(|k| !**k).count() as u64;
        self.by_id = self.briefs.iter().enumerate().map(|(i, b)| (b.id, i)).collect();
        self.pending = self.pass.iter().filter(|&&p| p == PENDING).count();
        self.scan = 0;
        self.dirty = true;
    }

    /// Whether rows changed since the view was last rebuilt.
    pub fn is_dirty(&self) -> bool {
        self.dirty
    }

    /// Order of two rows by the sort column (ascending; the id makes it total).
    fn order(&self, a: u32, b: u32) -> Ordering {
        let (a, b) = (a as usize, b as usize);
        if self.sort == Column::Helo {
            self.briefs[a].helo.cmp(&self.briefs[b].helo).then(self.keys[a].cmp(&self.keys[b]))
        } else if self.sort == Column::Sensor {
            self.briefs[a].sensor.cmp(&self.briefs[b].sensor).then(self.keys[a].cmp(&self.keys[b]))
        } else {
            self.keys[a].cmp(&self.keys[b])
        }
    }

    /// Brings the view up to date with the rows changed since the last call: they are taken
    /// out where they were, and those that pass are sorted among themselves and merged in
    /// (O(view + changed · log changed), never a sort of the whole view).
    pub fn rebuild(&mut self) {
        let mut changed = std::mem::take(&mut self.changed);
        changed.sort_unstable();
        changed.dedup();
        let mut view = std::mem::take(&mut self.view);
        if self.moved {
            view.retain(|r| changed.binary_search(r).is_err());
        }
        changed.retain(|&r| self.pass.get(r as usize) == Some(&PASS));
        changed.sort_unstable_by(|&a, &b| self.order(a, b));
        // Merged from the back: rows that sort after every view row (a capture read in time
        // order) cost no move at all.
        let (mut i, mut j) = (view.len(), changed.len());
        view.resize(i + j, 0);
        let mut w = view.len();
        while j > 0 {
            w -= 1;
            if i > 0 && self.order(view[i - 1], changed[j - 1]) == Ordering::Greater {
                view[w] = view[i - 1];
                i -= 1;
            } else {
                view[w] = changed[j - 1];
                j -= 1;
            }
        }
        changed.clear();
        self.changed = changed;
        self.view = view;
        self.moved = false;
        self.dirty = false;
    }

    fn session_at(&self, row: usize) -> Option<Arc<Session>> {
        match self.rows.get(row)? {
            Held::Whole(s) => Some(Arc::clone(s)),
            Held::Packed(b) => self.codec.as_ref()?.unpack(b).map(Arc::new),
        }
    }

    /// Sets the display filter. Rows are tested again a budget at a time: some now, the rest
    /// by [`Store::work`] over the next frames, the view filling in as they pass.
    pub fn set_filter(&mut self, f: Filter) {
        self.brief_only = brief_terms(f.expr());
        self.filter = Arc::new(f);
        self.generation += 1;
        self.slot.set(self.generation, Arc::clone(&self.filter));
        self.pass.iter_mut().for_each(|p| *p = PENDING);
        self.pending = self.pass.len();
        self.scan = 0;
        self.view.clear();
        self.changed.clear();
        self.moved = false;
        self.work(&mut Budget::units(FILTER_AT_ONCE));
        self.rebuild();
    }

    /// Tests rows still pending against the filter, within `budget`; true when none is left.
    /// Rows that pass wait for the next [`Store::rebuild`] to join the view.
    pub fn work(&mut self, budget: &mut Budget) -> bool {
        let n = self.pass.len();
        let mut seen = 0;
        while self.pending > 0 && seen < n {
            if self.scan >= n {
                self.scan = 0;
            }
            let i = self.scan;
            if self.pass[i] == PENDING {
                let whole = self.brief_only || matches!(self.rows[i], Held::Whole(_));
                if !budget.spend(if whole { 1 } else { UNPACK_COST }) {
                    return false;
                }
                let p = if self.brief_only {
                    self.briefs[i].passes(&self.filter)
                } else {
                    self.session_at(i).is_some_and(|s| self.filter.matches(&s))
                };
                self.pass[i] = mark(p);
                self.pending -= 1;
                if p {
                    self.changed.push(i as u32);
                    self.dirty = true;
                }
            }
            self.scan += 1;
            seen += 1;
        }
        self.pending == 0
    }

    /// While a new filter is still being applied: rows tested and rows in all.
    pub fn filtering(&self) -> Option<(usize, usize)> {
        (self.pending > 0).then(|| (self.rows.len() - self.pending, self.rows.len()))
    }

    /// The display filter in use.
    pub fn filter(&self) -> &Filter {
        &self.filter
    }

    /// Sort column and direction.
    pub fn sort(&self) -> (Column, bool) {
        (self.sort, self.descending)
    }

    /// Sorts by `col` (descending when `desc`: the same order read backwards, free).
    pub fn set_sort(&mut self, col: Column, desc: bool) {
        if col != self.sort {
            self.keys = self.briefs.iter().map(|b| key_of(col, b)).collect();
            self.sort = col;
            let mut view = std::mem::take(&mut self.view);
            view.sort_unstable_by(|&a, &b| self.order(a, b));
            self.view = view;
        }
        self.descending = desc;
        self.rebuild();
    }

    /// Rows in the view.
    pub fn len(&self) -> usize {
        self.view.len()
    }

    /// Whether the view is empty.
    pub fn is_empty(&self) -> bool {
        self.view.is_empty()
    }

    /// Every row known (filtered or not).
    pub fn total(&self) -> usize {
        self.rows.len()
    }

    /// The row number of the `i`-th row of the view.
    fn row_of(&self, i: usize) -> Option<usize> {
        let n = self.view.len();
        let at = if self.descending { n.checked_sub(i + 1)? } else { i };
        self.view.get(at).map(|&r| r as usize)
    }

    /// The `i`-th session of the view (unpacked if it was packed).
    pub fn get(&self, i: usize) -> Option<Arc<Session>> {
        self.row_of(i).and_then(|r| self.session_at(r))
    }

    /// The id of the `i`-th session of the view.
    pub fn id_at(&self, i: usize) -> Option<u64> {
        self.row_of(i).and_then(|r| self.briefs.get(r)).map(|b| b.id)
    }

    /// A session by id (visible or not).
    pub fn by_id(&self, id: u64) -> Option<Arc<Session>> {
        self.by_id.get(&id).and_then(|&r| self.session_at(r))
    }

    /// Position of session `id` in the view (a binary search: the view is sorted).
    pub fn position(&self, id: u64) -> Option<usize> {
        let r = *self.by_id.get(&id)? as u32;
        let at = self.view.binary_search_by(|&v| self.order(v, r)).ok()?;
        Some(if self.descending { self.view.len() - 1 - at } else { at })
    }

    /// The view's row numbers, in the order shown.
    fn shown(&self) -> Box<dyn Iterator<Item = usize> + '_> {
        let it = self.view.iter().map(|&r| r as usize);
        if self.descending {
            Box::new(it.rev())
        } else {
            Box::new(it)
        }
    }

    /// The sessions of the view, in order (each unpacked as it comes).
    pub fn visible(&self) -> impl Iterator<Item = Arc<Session>> + '_ {
        self.shown().filter_map(|r| self.session_at(r))
    }

    /// Finished and open sessions in the view, without unpacking any.
    pub fn visible_counts(&self) -> (usize, usize) {
        let open = self.view.iter().filter(|&&r| self.briefs.get(r as usize).is_some_and(|b| b.in_progress)).count();
        (self.view.len() - open, open)
    }

    /// The finished sessions of the view, as they are held: to be unpacked on another thread.
    pub fn finished_for_export(&self) -> Vec<Shipped> {
        let codec = self.codec.clone();
        self.shown()
            .filter(|&r| self.briefs.get(r).is_some_and(|b| !b.in_progress))
            .filter_map(|r| self.rows.get(r))
            .map(|h| Shipped { held: h.clone(), codec: codec.clone() })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(id: u64, port: u16, v: Verdict, open: bool) -> Session {
        let mut s = Session::new(format!("10.0.0.1:{port}").parse().unwrap(), "10.0.0.2:25".parse().unwrap());
        s.id = id;
        s.first_seen = id as i64;
        s.verdict = Some(v);
        s.in_progress = open;
        s
    }

    #[test]
    fn a_snapshot_is_replaced_by_its_record_and_counted_once() {
        let mut st = Store::new();
        st.upsert(session(1, 1000, Verdict::Incomplete, true));
        assert_eq!((st.open, st.counts.len()), (1, 0));
        st.upsert(session(1, 1000, Verdict::Starttls, false));
        st.upsert(session(1, 1000, Verdict::Plaintext, true));
        st.rebuild();
        assert_eq!(st.len(), 1);
        assert_eq!(st.get(0).unwrap().verdict, Some(Verdict::Starttls), "a late snapshot is ignored");
        assert_eq!((st.open, st.counts.get(&Verdict::Starttls)), (0, Some(&1)));
    }

    #[test]
    fn a_revision_replaces_only_a_finished_record_and_never_adds_a_row() {
        let mut st = Store::new();
        st.upsert(session(1, 1000, Verdict::Plaintext, false));
        let mut linked = session(1, 1000, Verdict::Plaintext, false);
        linked.logs = Some(Vec::new());
        // Without being a revision, a second record of a finished session is ignored.
        st.upsert(linked.clone());
        st.rebuild();
        assert!(st.get(0).unwrap().logs.is_none());
        st.ingest(Row::whole(linked.clone()).revising());
        st.rebuild();
        assert_eq!(st.len(), 1);
        assert_eq!(st.get(0).unwrap().logs, Some(Vec::new()), "the revision took the row's place");
        assert_eq!(st.counts.get(&Verdict::Plaintext), Some(&1), "counted once");
        // A revision of a session the store does not hold, or holds only open, adds nothing.
        st.ingest(Row::whole(session(2, 2000, Verdict::Starttls, false)).revising());
        st.upsert(session(3, 3000, Verdict::Incomplete, true));
        st.ingest(Row::whole(session(3, 3000, Verdict::Starttls, false)).revising());
        st.rebuild();
        assert_eq!((st.total(), st.open), (2, 1));
        assert!(st.get(1).unwrap().in_progress);
        assert_eq!(st.counts.get(&Verdict::Starttls), None);
        // A revision with another verdict moves the count.
        st.ingest(Row::whole(session(1, 1000, Verdict::Stripped, false)).revising());
        assert_eq!((st.counts.get(&Verdict::Plaintext), st.counts.get(&Verdict::Stripped)), (Some(&0), Some(&1)));
    }

    #[test]
    fn past_the_row_limit_the_oldest_finished_rows_go_and_are_counted() {
        let mut st = Store::new();
        st.set_max_rows(10);
        st.upsert(session(0, 999, Verdict::Incomplete, true));
        for id in 1..=11 {
            st.upsert(session(id, 1000 + id as u16, Verdict::Plaintext, false));
        }
        st.rebuild();
        assert_eq!((st.total(), st.dropped), (10, 2));
        let ids: Vec<u64> = st.visible().map(|s| s.id).collect();
        assert_eq!(ids, [0, 3, 4, 5, 6, 7, 8, 9, 10, 11], "the view keeps its rows and order through the trim");
        assert!(st.by_id(0).is_some(), "a session in progress is never dropped");
        assert!(st.by_id(1).is_none() && st.by_id(2).is_none() && st.by_id(3).is_some());
        assert_eq!(st.counts.get(&Verdict::Plaintext), Some(&11), "dropped rows stay counted");
    }

    #[test]
    fn verdict_ranks_follow_the_names() {
        let mut names: Vec<&str> = Verdict::ALL.iter().map(|v| v.name()).collect();
        names.sort_unstable();
        let mut by_rank: Vec<Verdict> = Verdict::ALL.to_vec();
        by_rank.sort_by_key(|v| key_of(Column::Verdict, &Brief::of(&session(1, 1, *v, false))).primary);
        assert_eq!(by_rank.iter().map(|v| v.name()).collect::<Vec<_>>(), names);
    }

    #[test]
    fn the_view_is_filtered_and_sorted() {
        let mut st = Store::new();
        for (id, port, v) in
            [(1, 3000, Verdict::Plaintext), (2, 1000, Verdict::Starttls), (3, 2000, Verdict::Plaintext)]
        {
            st.upsert(session(id, port, v, false));
        }
        st.set_filter(Filter::parse("verdict:plaintext").unwrap());
        st.set_sort(Column::Client, false);
        let ports: Vec<u16> = st.visible().map(|s| s.client.port()).collect();
        assert_eq!(ports, [2000, 3000]);
        st.set_sort(Column::Client, true);
        assert_eq!(st.get(0).unwrap().client.port(), 3000);
        assert_eq!(st.position(1), Some(0));
    }

    /// Finished sessions with an SNI of seven kinds and scattered client ports.
    fn many(n: u64) -> Vec<Session> {
        (0..n)
            .map(|id| {
                let mut s = session(id, 1024 + (id * 7919 % 50_000) as u16, Verdict::Starttls, false);
                s.tls.sni = Some(format!("mx{}.example", id % 7).into_bytes());
                s
            })
            .collect()
    }

    /// Rows as the feed's packer thread makes them, and the codec to read them.
    fn prepared(sessions: &[Session], slot: &FilterSlot) -> (Vec<Row>, Arc<Codec>) {
        let mut packer = Packer::with_samples(16);
        let mut rows: Vec<Row> = sessions[..16].iter().map(|s| Row::prepare(s.clone(), &mut packer, slot)).collect();
        assert!(packer.wait(), "the dictionary trains");
        rows.extend(sessions[16..].iter().map(|s| Row::prepare(s.clone(), &mut packer, slot)));
        let codec = Arc::clone(packer.codec().unwrap());
        let repacked: FxHashMap<u64, Arc<[u8]>> = packer.take_repacked().into_iter().collect();
        // The samples went out whole: swap in their packed form as the store would.
        for r in &mut rows {
            if let Some(b) = repacked.get(&r.id()) {
                r.held = Held::Packed(Arc::clone(b));
            }
        }
        (rows, codec)
    }

    fn ids(st: &Store) -> Vec<u64> {
        (0..st.len()).filter_map(|i| st.id_at(i)).collect()
    }

    #[test]
    fn packed_rows_are_kept_as_they_came_without_packing_on_the_ui_side() {
        let sessions = many(300);
        let mut st = Store::new();
        let (rows, codec) = prepared(&sessions, &st.filter_slot());
        let blobs: Vec<(u64, Arc<[u8]>)> = rows.iter().map(|r| (r.id(), Arc::clone(r.packed().unwrap()))).collect();
        st.set_codec(codec);
        for r in rows {
            st.ingest(r);
        }
        st.rebuild();
        assert_eq!(st.packed(), 300);
        assert!(blobs.iter().all(|(id, b)| st.holds_packed(*id, b)), "every row holds the very bytes it came with");
        assert_eq!(st.get(5).unwrap().tls.sni.as_deref(), Some(&b"mx5.example"[..]), "and reads back");
    }

    #[test]
    fn a_filter_needing_whole_sessions_fills_in_over_several_budgets_and_ends_as_a_one_shot_filter() {
        let sessions = many(2000);
        let f = Filter::parse("sni:mx3* or sni:mx5*").unwrap();
        let want: Vec<u64> = sessions.iter().filter(|s| f.matches(s)).map(|s| s.id).collect();
        let mut st = Store::new();
        let (rows, codec) = prepared(&sessions, &st.filter_slot());
        st.set_codec(codec);
        rows.into_iter().for_each(|r| st.ingest(r));
        st.set_sort(Column::Client, false);
        st.set_filter(f.clone());
        let (tested, total) = st.filtering().expect("2000 packed rows are more than a filter does at once");
        assert!(tested < total && total == 2000);
        let mut steps = 0;
        let mut shown = st.len();
        while !st.work(&mut Budget::units(100 * UNPACK_COST)) {
            st.rebuild();
            assert!(st.len() >= shown, "the view only fills in");
            shown = st.len();
            steps += 1;
        }
        st.rebuild();
        assert!(steps >= 10, "no budget did it all: {steps} steps");
        assert_eq!(st.filtering(), None);
        // One shot: the same sessions whole, tested at once.
        let mut whole = Store::new();
        sessions.into_iter().for_each(|s| whole.upsert(s));
        whole.set_sort(Column::Client, false);
        whole.set_filter(f);
        assert_eq!(whole.filtering(), None);
        assert_eq!(ids(&st), ids(&whole), "same rows in the same order");
        let mut got = ids(&st);
        got.sort_unstable();
        assert_eq!(got, want);
    }

    #[test]
    fn a_filter_on_verdicts_hosts_or_tls_decides_packed_log_sessions_without_unpacking_them() {
        use crate::logs::{Endpoint, LogRecord, Source};
        let sessions: Vec<Session> = (0..2000u64)
            .map(|i| {
                let mut r =
                    LogRecord::new(Source::PostfixSmtpd, Arc::from("mail.log"), format!("mx[{i}]"), i as i64, i);
                r.client = Some(Endpoint { ip: format!("192.0.2.{}", i % 200).parse().unwrap(), port: None });
                r.keep(&format!("connect from c{i}.example[192.0.2.{}]", i % 200));
                if i % 3 == 0 {
                    r.tls_line = Some(i);
                    r.tls_version = Some("TLS1.2".into());
                }
                r.closed = true;
                r.judge();
                super::super::logrow::row(r, i)
            })
            .collect();
        let mut st = Store::new();
        let (rows, codec) = prepared(&sessions, &st.filter_slot());
        st.set_codec(codec);
        rows.into_iter().for_each(|r| st.ingest(r));
        for (text, want) in
            [("verdict:starttls tls:1.2", 667), ("client:192.0.2.7 or client:192.0.2.8", 20), ("port:25", 0)]
        {
            let f = Filter::parse(text).unwrap();
            let expected = sessions.iter().filter(|s| f.matches_log(s.from_log.as_ref().unwrap())).count();
            assert_eq!(expected, want, "{text}");
            st.set_filter(f);
            assert_eq!(st.filtering(), None, "{text}: decided at once, no row unpacked");
            assert_eq!(st.len(), want, "{text}");
        }
        // Free text needs the logged lines: those rows are unpacked, a budget at a time.
        st.set_filter(Filter::parse("\"c7.example\"").unwrap());
        assert!(st.filtering().is_some());
        while !st.work(&mut Budget::units(100 * UNPACK_COST)) {}
        st.rebuild();
        assert_eq!(ids(&st), [7]);
    }

    #[test]
    fn rows_the_packer_tested_against_an_older_filter_are_tested_again() {
        let sessions = many(400);
        let mut st = Store::new();
        let (rows, codec) = prepared(&sessions, &st.filter_slot());
        st.set_codec(codec);
        // The filter changed while these rows were on their way.
        st.set_filter(Filter::parse("sni:mx2*").unwrap());
        rows.into_iter().for_each(|r| st.ingest(r));
        assert!(st.filtering().is_some(), "packed rows tested against the old filter wait for a test");
        while !st.work(&mut Budget::units(50 * UNPACK_COST)) {}
        st.rebuild();
        let want: Vec<u64> = (0..400).filter(|id| id % 7 == 2).collect();
        assert_eq!(ids(&st), want);
    }

    #[test]
    fn a_view_brought_up_to_date_in_steps_is_the_view_sorted_at_once() {
        let all = many(600);
        let mut stepwise = Store::new();
        stepwise.set_sort(Column::Client, true);
        for (k, chunk) in all.chunks(50).enumerate() {
            for s in chunk {
                // Each session shows up open first, its record replacing it a batch later.
                let mut open = s.clone();
                open.in_progress = true;
                open.verdict = Some(Verdict::Incomplete);
                stepwise.upsert(open);
            }
            if k > 0 {
                all[(k - 1) * 50..k * 50].iter().for_each(|s| stepwise.upsert(s.clone()));
            }
            stepwise.rebuild();
        }
        all[550..].iter().for_each(|s| stepwise.upsert(s.clone()));
        stepwise.rebuild();
        let mut once = Store::new();
        all.iter().for_each(|s| once.upsert(s.clone()));
        once.set_sort(Column::Client, true);
        assert_eq!(stepwise.open, 0);
        assert_eq!(ids(&stepwise), ids(&once));
        for (i, id) in ids(&once).into_iter().enumerate() {
            assert_eq!(stepwise.position(id), Some(i), "session {id} is found where it is shown");
        }
    }
}
