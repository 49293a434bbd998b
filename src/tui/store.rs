//! The sessions the UI knows: finished records and in-progress snapshots, the filtered and
//! sorted view of them, and verdict counts. Rows are keyed by session id so an in-progress row
//! is replaced in place by its next snapshot and, finally, by its record.

use std::collections::BTreeMap;
use std::sync::Arc;

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
}

impl Column {
    /// Every column, in table order.
    pub const ALL: [Column; 12] = [
        Column::Time,
        Column::Sensor,
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
        }
    }

    /// The next column (for `s`).
    pub fn next(self) -> Column {
        let i = Column::ALL.iter().position(|c| *c == self).unwrap_or(0);
        Column::ALL[(i + 1) % Column::ALL.len()]
    }
}

/// The negotiated TLS version, when a handshake completed.
pub fn tls_version(s: &Session) -> Option<u16> {
    s.tls.version.filter(|_| s.tls.server_hello.is_some())
}

/// Messages accepted in clear, when countable.
pub fn messages(s: &Session) -> Option<u32> {
    (s.kind == Kind::Smtp && !s.tls_established()).then_some(s.messages_accepted)
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
/// the packer is ready, packed once finished.
#[derive(Clone)]
enum Held {
    Whole(Arc<Session>),
    Packed(Arc<[u8]>),
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
    /// Per row: passes the filter (kept current as rows change).
    pass: Vec<bool>,
    /// Per row: key for the sort column.
    keys: Vec<Key>,
    by_id: FxHashMap<u64, usize>,
    view: Vec<u32>,
    filter: Filter,
    sort: Column,
    descending: bool,
    packer: Packer,
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
            filter: Filter::default(),
            sort: Column::Time,
            descending: false,
            packer: Packer::new(),
            counts: BTreeMap::new(),
            open: 0,
            dropped: 0,
            span: None,
            max_rows: MAX_ROWS,
            dirty: false,
            logs_seen: false,
            sensors: (None, false),
            sensor_column: false,
        }
    }

    /// An empty store whose packer trains on the first `n` finished sessions (tests).
    pub fn with_samples(n: usize) -> Self {
        Self { packer: Packer::with_samples(n), ..Self::new() }
    }

    /// Finished rows held packed.
    pub fn packed(&self) -> usize {
        self.rows.iter().filter(|h| matches!(h, Held::Packed(_))).count()
    }

    /// Keeps at most `n` rows (at least one): beyond it the oldest finished rows are dropped.
    pub fn set_max_rows(&mut self, n: usize) {
        self.max_rows = n.max(1);
        if self.rows.len() > self.max_rows {
            self.trim();
        }
    }

    fn hold(&mut self, s: Session) -> Held {
        if !s.in_progress {
            if let Some(b) = self.packer.pack(&s) {
                return Held::Packed(b);
            }
        }
        Held::Whole(Arc::new(s))
    }

    /// Packs the finished rows kept whole while the dictionary was trained, once it is ready.
    fn pack_pending(&mut self) {
        if !self.packer.poll() {
            return;
        }
        self.pack_whole();
    }

    fn pack_whole(&mut self) {
        for i in 0..self.rows.len() {
            let Some(Held::Whole(s)) = self.rows.get(i) else { continue };
            if s.in_progress {
                continue;
            }
            if let Some(b) = self.packer.pack(&Arc::clone(s)) {
                self.rows[i] = Held::Packed(b);
            }
        }
    }

    /// Waits for the packer's dictionary and packs what waited (tests, measurements).
    pub fn pack_now(&mut self) {
        if self.packer.wait() {
            self.pack_whole();
        }
    }

    /// Shows the SENSOR column even when every session names the same sensor (the run named
    /// it, or read records).
    pub fn set_sensor_column(&mut self, on: bool) {
        self.sensor_column = on;
    }

    /// Whether the table has `col`: SENSOR for sessions named by more than one sensor (or when
    /// asked, and some session names one), LOG for a run with `--logs`; the others always.
    pub fn shows(&self, col: Column) -> bool {
        match col {
            Column::Sensor => self.sensors.1 || (self.sensor_column && self.sensors.0.is_some()),
            Column::Log => self.logs_seen,
            _ => true,
        }
    }

    fn note_columns(&mut self, s: &Session) {
        self.logs_seen |= s.logs.is_some();
        if let Some(name) = &s.sensor {
            match &self.sensors.0 {
                None => self.sensors.0 = Some(Arc::clone(name)),
                Some(first) if first != name => self.sensors.1 = true,
                Some(_) => {}
            }
        }
    }

    /// Adds or replaces a session (a snapshot never replaces a finished record).
    pub fn upsert(&mut self, s: Session) {
        self.pack_pending();
        self.note_columns(&s);
        let t = s.first_seen;
        self.span = Some(self.span.map_or((t, t), |(a, b)| (a.min(t), b.max(t))));
        let pass = self.filter.matches(&s);
        let brief = Brief::of(&s);
        let key = key_of(self.sort, &brief);
        match self.by_id.get(&s.id).copied() {
            Some(i) => {
                let Some(old) = self.briefs.get(i) else { return };
                if !old.in_progress {
                    return;
                }
                if !s.in_progress {
                    self.open = self.open.saturating_sub(1);
                    self.count(&s);
                }
                self.rows[i] = self.hold(s);
                self.briefs[i] = brief;
                self.pass[i] = pass;
                self.keys[i] = key;
            }
            None => {
                if s.in_progress {
                    self.open += 1;
                } else {
                    self.count(&s);
                }
                self.by_id.insert(s.id, self.rows.len());
                let held = self.hold(s);
                self.rows.push(held);
                self.briefs.push(brief);
                self.pass.push(pass);
                self.keys.push(key);
            }
        }
        self.dirty = true;
        // Trimmed in steps of a tenth, so a full table does not rebuild its index per row.
        if self.rows.len() > self.max_rows + self.max_rows / 10 {
            self.trim();
        }
    }

    fn count(&mut self, s: &Session) {
        if let Some(v) = s.verdict {
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
        let mut it = keep.iter();
        self.rows.retain(|_| *it.next().unwrap_or(&true));
        let mut it = keep.iter();
        self.briefs.retain(|_| *it.next().unwrap_or(&true));
        let mut it = keep.iter();
        self.pass.retain(|_| *it.next().unwrap_or(&true));
        let mut it = keep.iter();
        self.keys.retain(|_| *it.next().unwrap_or(&true));
        self.dropped += keep.iter().filter(|k| !**k).count() as u64;
        self.by_id = self.briefs.iter().enumerate().map(|(i, b)| (b.id, i)).collect();
        self.view.clear();
        self.dirty = true;
    }

    /// Whether rows changed since the view was last rebuilt.
    pub fn is_dirty(&self) -> bool {
        self.dirty
    }

    /// Recomputes the filtered, sorted view from the cached filter results and sort keys.
    pub fn rebuild(&mut self) {
        self.pack_pending();
        let mut view: Vec<u32> = (0..self.rows.len() as u32).filter(|&i| self.pass[i as usize]).collect();
        let (keys, briefs) = (&self.keys, &self.briefs);
        if self.sort == Column::Helo {
            view.sort_unstable_by(|&a, &b| {
                let (a, b) = (a as usize, b as usize);
                briefs[a].helo.cmp(&briefs[b].helo).then(keys[a].cmp(&keys[b]))
            });
        } else if self.sort == Column::Sensor {
            view.sort_unstable_by(|&a, &b| {
                let (a, b) = (a as usize, b as usize);
                briefs[a].sensor.cmp(&briefs[b].sensor).then(keys[a].cmp(&keys[b]))
            });
        } else {
            view.sort_unstable_by_key(|&i| keys[i as usize]);
        }
        if self.descending {
            view.reverse();
        }
        self.view = view;
        self.dirty = false;
    }

    fn session_at(&self, row: usize) -> Option<Arc<Session>> {
        match self.rows.get(row)? {
            Held::Whole(s) => Some(Arc::clone(s)),
            Held::Packed(b) => self.packer.codec()?.unpack(b).map(Arc::new),
        }
    }

    /// Sets the display filter (every row is tested again, packed rows unpacked one at a time;
    /// the view is rebuilt).
    pub fn set_filter(&mut self, f: Filter) {
        self.pass = if brief_terms(f.expr()) {
            self.briefs.iter().map(|b| f.matches(&b.skeleton())).collect()
        } else {
            (0..self.rows.len()).map(|i| self.session_at(i).is_some_and(|s| f.matches(&s))).collect()
        };
        self.filter = f;
        self.rebuild();
    }

    /// The display filter in use.
    pub fn filter(&self) -> &Filter {
        &self.filter
    }

    /// Sort column and direction.
    pub fn sort(&self) -> (Column, bool) {
        (self.sort, self.descending)
    }

    /// Sorts by `col` (descending when `desc`).
    pub fn set_sort(&mut self, col: Column, desc: bool) {
        if col != self.sort {
            self.keys = self.briefs.iter().map(|b| key_of(col, b)).collect();
        }
        self.sort = col;
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

    /// The `i`-th session of the view (unpacked if it was packed).
    pub fn get(&self, i: usize) -> Option<Arc<Session>> {
        self.view.get(i).and_then(|&r| self.session_at(r as usize))
    }

    /// The id of the `i`-th session of the view.
    pub fn id_at(&self, i: usize) -> Option<u64> {
        self.view.get(i).and_then(|&r| self.briefs.get(r as usize)).map(|b| b.id)
    }

    /// A session by id (visible or not).
    pub fn by_id(&self, id: u64) -> Option<Arc<Session>> {
        self.by_id.get(&id).and_then(|&r| self.session_at(r))
    }

    /// Position of session `id` in the view.
    pub fn position(&self, id: u64) -> Option<usize> {
        let r = *self.by_id.get(&id)? as u32;
        self.view.iter().position(|&v| v == r)
    }

    /// The sessions of the view, in order (each unpacked as it comes).
    pub fn visible(&self) -> impl Iterator<Item = Arc<Session>> + '_ {
        self.view.iter().filter_map(|&r| self.session_at(r as usize))
    }

    /// Finished and open sessions in the view, without unpacking any.
    pub fn visible_counts(&self) -> (usize, usize) {
        let open = self.view.iter().filter(|&&r| self.briefs.get(r as usize).is_some_and(|b| b.in_progress)).count();
        (self.view.len() - open, open)
    }

    /// The finished sessions of the view, as they are held: to be unpacked on another thread.
    pub fn finished_for_export(&self) -> Vec<Shipped> {
        let codec = self.packer.codec().cloned();
        self.view
            .iter()
            .filter(|&&r| self.briefs.get(r as usize).is_some_and(|b| !b.in_progress))
            .filter_map(|&r| self.rows.get(r as usize))
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
    fn past_the_row_limit_the_oldest_finished_rows_go_and_are_counted() {
        let mut st = Store::new();
        st.set_max_rows(10);
        st.upsert(session(0, 999, Verdict::Incomplete, true));
        for id in 1..=11 {
            st.upsert(session(id, 1000 + id as u16, Verdict::Plaintext, false));
        }
        st.rebuild();
        assert_eq!((st.total(), st.dropped), (10, 2));
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
}
