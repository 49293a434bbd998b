//! The sessions the UI knows: finished records and in-progress snapshots, the filtered and
//! sorted view of them, and verdict counts. Rows are keyed by session id so an in-progress row
//! is replaced in place by its next snapshot and, finally, by its record.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::sync::Arc;

use rustc_hash::FxHashMap;

use crate::filter::Filter;
use crate::report::escape::terminal;
use crate::session::{Kind, Session, Verdict};

/// Rows kept before the oldest finished ones are dropped from the view (their counts stay).
pub const MAX_ROWS: usize = 200_000;

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
}

impl Column {
    /// Every column, in table order.
    pub const ALL: [Column; 9] = [
        Column::Time,
        Column::Client,
        Column::Server,
        Column::Port,
        Column::Helo,
        Column::Verdict,
        Column::Tls,
        Column::Msgs,
        Column::Bytes,
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
    (s.kind == Kind::Smtp && !s.tls_handshake()).then_some(s.messages_accepted)
}

fn cmp_by(col: Column, a: &Session, b: &Session) -> Ordering {
    match col {
        Column::Time => a.first_seen.cmp(&b.first_seen),
        Column::Client => (a.client.ip(), a.client.port()).cmp(&(b.client.ip(), b.client.port())),
        Column::Server => (a.server.ip(), a.server.port()).cmp(&(b.server.ip(), b.server.port())),
        Column::Port => a.server.port().cmp(&b.server.port()),
        Column::Helo => {
            let h = |s: &Session| s.hello.as_ref().map(|h| terminal(&h.arg).to_lowercase());
            h(a).cmp(&h(b))
        }
        Column::Verdict => a.verdict.map(|v| v.name()).cmp(&b.verdict.map(|v| v.name())),
        Column::Tls => tls_version(a).cmp(&tls_version(b)),
        Column::Msgs => messages(a).cmp(&messages(b)),
        Column::Bytes => (a.wire_bytes[0] + a.wire_bytes[1]).cmp(&(b.wire_bytes[0] + b.wire_bytes[1])),
    }
}

/// Sessions, view and counts.
pub struct Store {
    rows: Vec<Arc<Session>>,
    by_id: FxHashMap<u64, usize>,
    view: Vec<usize>,
    filter: Filter,
    sort: Column,
    descending: bool,
    /// Finished sessions per verdict (dropped rows included).
    pub counts: BTreeMap<Verdict, u64>,
    /// Rows in progress.
    pub open: usize,
    /// Finished rows dropped to bound memory.
    pub dropped: u64,
    dirty: bool,
}

impl Default for Store {
    fn default() -> Self {
        Self::new()
    }
}

impl Store {
    /// An empty store, sorted by time.
    pub fn new() -> Self {
        Self {
            rows: Vec::new(),
            by_id: FxHashMap::default(),
            view: Vec::new(),
            filter: Filter::default(),
            sort: Column::Time,
            descending: false,
            counts: BTreeMap::new(),
            open: 0,
            dropped: 0,
            dirty: false,
        }
    }

    /// Adds or replaces a session (a snapshot never replaces a finished record).
    pub fn upsert(&mut self, s: Session) {
        match self.by_id.get(&s.id).copied() {
            Some(i) => {
                let Some(old) = self.rows.get(i) else { return };
                if !old.in_progress {
                    return;
                }
                if !s.in_progress {
                    self.open = self.open.saturating_sub(1);
                    self.count(&s);
                }
                self.rows[i] = Arc::new(s);
            }
            None => {
                if s.in_progress {
                    self.open += 1;
                } else {
                    self.count(&s);
                }
                self.by_id.insert(s.id, self.rows.len());
                self.rows.push(Arc::new(s));
            }
        }
        self.dirty = true;
        if self.rows.len() > MAX_ROWS + MAX_ROWS / 10 {
            self.trim();
        }
    }

    fn count(&mut self, s: &Session) {
        if let Some(v) = s.verdict {
            *self.counts.entry(v).or_default() += 1;
        }
    }

    /// Drops the oldest finished rows down to [`MAX_ROWS`].
    fn trim(&mut self) {
        let mut excess = self.rows.len().saturating_sub(MAX_ROWS);
        let mut dropped = 0;
        self.rows.retain(|s| {
            if excess > 0 && !s.in_progress {
                excess -= 1;
                dropped += 1;
                false
            } else {
                true
            }
        });
        self.dropped += dropped;
        self.by_id = self.rows.iter().enumerate().map(|(i, s)| (s.id, i)).collect();
        self.view.clear();
        self.dirty = true;
    }

    /// Whether rows changed since the view was last rebuilt.
    pub fn is_dirty(&self) -> bool {
        self.dirty
    }

    /// Recomputes the filtered, sorted view.
    pub fn rebuild(&mut self) {
        let rows = &self.rows;
        let filter = &self.filter;
        let mut view: Vec<usize> = (0..rows.len()).filter(|&i| filter.matches(&rows[i])).collect();
        let (col, desc) = (self.sort, self.descending);
        let cmp = |a: &usize, b: &usize| {
            let (x, y) = (&rows[*a], &rows[*b]);
            let o = cmp_by(col, x, y).then_with(|| x.first_seen.cmp(&y.first_seen)).then_with(|| x.id.cmp(&y.id));
            if desc {
                o.reverse()
            } else {
                o
            }
        };
        if col == Column::Helo {
            // Escaping and lower-casing per comparison would dominate: compute the keys once.
            view.sort_by_cached_key(|&i| {
                rows[i].hello.as_ref().map(|h| terminal(&h.arg).to_lowercase()).unwrap_or_default()
            });
            view.sort_by(|a, b| cmp(a, b));
        } else {
            view.sort_unstable_by(cmp);
        }
        self.view = view;
        self.dirty = false;
    }

    /// Sets the display filter (the view is rebuilt).
    pub fn set_filter(&mut self, f: Filter) {
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

    /// The `i`-th session of the view.
    pub fn get(&self, i: usize) -> Option<&Arc<Session>> {
        self.view.get(i).and_then(|&r| self.rows.get(r))
    }

    /// A session by id (visible or not).
    pub fn by_id(&self, id: u64) -> Option<&Arc<Session>> {
        self.by_id.get(&id).and_then(|&r| self.rows.get(r))
    }

    /// Position of session `id` in the view.
    pub fn position(&self, id: u64) -> Option<usize> {
        let r = *self.by_id.get(&id)?;
        self.view.iter().position(|&v| v == r)
    }

    /// The sessions of the view, in order.
    pub fn visible(&self) -> impl Iterator<Item = &Arc<Session>> {
        self.view.iter().filter_map(|&r| self.rows.get(r))
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
