//! The UI's state and what each action does to it. No terminal and no I/O here: actions that
//! need the outside world (loading packets, writing files) are queued as [`Effect`]s for the
//! event loop, so keys → actions → state is testable on its own.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ratatui::layout::Rect;
use tui_input::{Input, InputRequest};

use super::detail;
use super::feed::Update;
use super::packets::{Packets, Request};
use super::store::{Budget, Column, Row, Store};
use super::theme::Theme;
use crate::driver::Progress;
use crate::filter::{complete, Completion, Filter, FilterError};
use crate::report::pairs::Pairs;
use crate::session::Session;
use crate::summary::Summary;

/// What the keys currently drive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Browsing.
    Normal,
    /// Typing a filter.
    Filter,
    /// The help overlay.
    Help,
    /// Choosing an export format.
    Export,
}

/// The main view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    /// Session table and detail.
    Sessions,
    /// Client host × server host.
    Pairs,
}

/// Panes that take focus.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pane {
    /// The session table (or the pairs table).
    Table,
    /// The detail pane.
    Detail,
}

/// Detail tabs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tab {
    /// The SMTP dialogue.
    Transcript,
    /// Handshake and certificate.
    Tls,
    /// Verdict reasons and findings.
    Evidence,
    /// The session's packets.
    Packets,
    /// The matched server-log sessions (`--logs`).
    Log,
}

impl Tab {
    /// In order.
    pub const ALL: [Tab; 5] = [Tab::Transcript, Tab::Tls, Tab::Evidence, Tab::Packets, Tab::Log];

    /// Tab title.
    pub fn title(self) -> &'static str {
        match self {
            Tab::Transcript => "Transcript",
            Tab::Tls => "TLS",
            Tab::Evidence => "Evidence",
            Tab::Packets => "Packets",
            Tab::Log => "Log",
        }
    }

    fn index(self) -> usize {
        Tab::ALL.iter().position(|t| *t == self).unwrap_or(0)
    }
}

/// Export formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    /// NDJSON, the report's schema.
    Ndjson,
    /// CSV, the report's columns.
    Csv,
}

/// Everything a key, a click or a resize can ask for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Leave.
    Quit,
    /// Move up one.
    Up,
    /// Move down one.
    Down,
    /// A page up.
    PageUp,
    /// A page down.
    PageDown,
    /// First row.
    Top,
    /// Last row (and follow new ones).
    Bottom,
    /// Focus the other pane.
    NextPane,
    /// Zoom / jump / drill down.
    Enter,
    /// Unzoom / close / back.
    Escape,
    /// Show a detail tab.
    Tab(Tab),
    /// Previous detail tab.
    PrevTab,
    /// Next detail tab.
    NextTab,
    /// Sort by the next column.
    Sort,
    /// Reverse the sort order.
    SortReverse,
    /// Pause or resume live updates.
    Pause,
    /// Open the filter bar.
    OpenFilter,
    /// Ask for an export format.
    Export,
    /// Write the selected session's packets.
    WritePcap,
    /// Toggle the help overlay.
    Help,
    /// Toggle the pairs view.
    Pairs,
    /// Left click at (column, row).
    Click(u16, u16),
    /// Wheel up at (column, row).
    WheelUp(u16, u16),
    /// Wheel down at (column, row).
    WheelDown(u16, u16),
    /// The terminal changed size.
    Resize,
    /// Edit the filter text.
    FilterInput(InputRequest),
    /// Complete the word being typed; with the candidates on show, pick the next one.
    FilterComplete,
    /// Pick the previous candidate.
    FilterCompletePrev,
    /// Apply the typed filter.
    FilterApply,
    /// Close the bar, keeping the applied filter.
    FilterClose,
    /// Clear the typed text.
    FilterClear,
    /// Export in this format.
    ExportAs(ExportFormat),
}

/// Work for the event loop.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// Load a session's packets.
    LoadPackets(Request),
    /// Write these sessions.
    Export(ExportFormat),
    /// Write a session's packets to a pcap.
    WritePcap(Request),
}

/// Where packets stand for the selected session.
#[derive(Debug, Clone)]
pub enum PacketState {
    /// Not asked for.
    Idle,
    /// Being read.
    Loading,
    /// Read.
    Ready(Arc<Packets>),
    /// Could not be read.
    Failed(String),
}

/// The packets tab's state.
#[derive(Debug, Clone)]
pub struct PacketView {
    /// Session the state is for.
    pub id: Option<u64>,
    /// Loading state.
    pub state: PacketState,
    /// Selected packet.
    pub cursor: usize,
    /// A frame to select once loaded (Enter on evidence).
    pub want_frame: Option<u64>,
}

/// A message for the footer.
#[derive(Debug, Clone)]
pub struct Status {
    /// Text.
    pub text: String,
    /// An error (shown in red).
    pub error: bool,
    /// When it was set.
    pub at: Instant,
}

/// What the header says about the input.
#[derive(Debug, Clone, Default)]
pub struct SourceInfo {
    /// `file a.pcap` or `interface eth0`.
    pub label: String,
    /// The BPF filter, if any.
    pub bpf: Option<String>,
    /// A live capture.
    pub live: bool,
    /// The input is server logs (`smtpscope logs`): rows are log sessions, progress counts
    /// log lines.
    pub logs: bool,
}

/// Screen areas from the last frame, for mouse hits and page sizes.
#[derive(Debug, Clone, Default)]
pub struct Geometry {
    /// The table's rows (without header).
    pub table_rows: Rect,
    /// The detail pane.
    pub detail: Rect,
    /// Tab titles: (x from, x to, tab) on the tab line.
    pub tabs: Vec<(u16, u16, Tab)>,
    /// The tab line's row.
    pub tabs_y: u16,
    /// First table row shown.
    pub table_offset: usize,
    /// Column titles: (x from, x to, column) on the header row.
    pub header: Vec<(u16, u16, Column)>,
    /// The header row.
    pub header_y: u16,
    /// Rows of detail content shown.
    pub detail_height: usize,
}

/// How often the view is rebuilt while sessions stream in.
pub const REBUILD_EVERY: Duration = Duration::from_millis(200);

/// What a frame may spend testing rows against a new filter.
pub const WORK_BUDGET: Duration = Duration::from_millis(6);

/// The UI state.
pub struct App {
    /// Sessions.
    pub store: Store,
    /// Key mode.
    pub mode: Mode,
    /// Main view.
    pub view: View,
    /// Focused pane.
    pub focus: Pane,
    /// Detail tab.
    pub tab: Tab,
    /// The focused pane fills the body.
    pub zoom: bool,
    /// Selected session id.
    pub selected: Option<u64>,
    /// Selected row in the view.
    pub cursor: usize,
    /// The selection follows the last row as rows arrive.
    pub follow: bool,
    /// Transcript/TLS scroll.
    pub detail_scroll: usize,
    /// Evidence cursor.
    pub evidence_cursor: usize,
    /// Packets tab.
    pub packets: PacketView,
    /// Pairs of the filtered sessions.
    pub pairs: Pairs,
    /// Selected pair.
    pub pairs_cursor: usize,
    pairs_dirty: bool,
    /// Drilled into a pair: the filter to go back to on Esc (then the pairs view).
    pair_return: Option<String>,
    /// The filter bar's text.
    pub input: Input,
    /// The filter bar's parse error.
    pub input_error: Option<FilterError>,
    /// Completion candidates on show.
    pub completion: Option<Completion>,
    /// The candidate picked (Tab/↓/↑) and put into the input.
    pub completion_pick: Option<usize>,
    /// Live updates paused (still collected).
    pub paused: bool,
    held_finished: Vec<Row>,
    held_open: BTreeMap<u64, Row>,
    held_repacked: Vec<(u64, Arc<[u8]>)>,
    /// A filter was being applied at the last tick (its result is said once it is done).
    filtering: bool,
    /// Latest progress.
    pub progress: Progress,
    /// Progress a second ago (for packets per second).
    rate: (Instant, u64, f64),
    /// The run's summary, once done.
    pub summary: Option<Summary>,
    /// Footer message.
    pub status: Option<Status>,
    /// The input, for the header.
    pub source: SourceInfo,
    /// Palette.
    pub theme: Theme,
    /// Full envelope addresses.
    pub show_addresses: bool,
    /// AUTH user names in full in log lines (`--show-credentials`).
    pub show_credentials: bool,
    /// A live run following the logs: how long a finished session waits for its log lines.
    pub log_wait: Option<Duration>,
    /// Leave the loop.
    pub quit: bool,
    /// Last frame's geometry.
    pub geometry: Geometry,
    /// Work for the event loop.
    pub effects: Vec<Effect>,
    last_rebuild: Instant,
}

impl App {
    /// A fresh UI for `source`.
    pub fn new(source: SourceInfo, theme: Theme, show_addresses: bool) -> Self {
        Self {
            store: Store::new(),
            mode: Mode::Normal,
            view: View::Sessions,
            focus: Pane::Table,
            tab: Tab::Transcript,
            zoom: false,
            selected: None,
            cursor: 0,
            follow: false,
            detail_scroll: 0,
            evidence_cursor: 0,
            packets: PacketView { id: None, state: PacketState::Idle, cursor: 0, want_frame: None },
            pairs: Pairs::default(),
            pairs_cursor: 0,
            pairs_dirty: true,
            pair_return: None,
            input: Input::default(),
            input_error: None,
            completion: None,
            completion_pick: None,
            paused: false,
            held_finished: Vec::new(),
            held_open: BTreeMap::new(),
            held_repacked: Vec::new(),
            filtering: false,
            progress: Progress::default(),
            rate: (Instant::now(), 0, 0.0),
            summary: None,
            status: None,
            source,
            theme,
            show_addresses,
            show_credentials: false,
            log_wait: None,
            quit: false,
            geometry: Geometry::default(),
            effects: Vec::new(),
            last_rebuild: Instant::now() - REBUILD_EVERY,
        }
    }

    /// Applies an initial display filter (`-Y`).
    pub fn set_filter_text(&mut self, text: &str) -> Result<(), FilterError> {
        let f = Filter::parse(text)?;
        self.store.set_filter(f);
        self.input = Input::new(text.to_string());
        self.after_rebuild();
        Ok(())
    }

    /// The selected session.
    pub fn current(&self) -> Option<Arc<Session>> {
        self.store.get(self.cursor)
    }

    /// Packets per second over the last second or so.
    pub fn packet_rate(&self) -> f64 {
        self.rate.2
    }

    /// Shows a message in the footer.
    pub fn say(&mut self, text: impl Into<String>, error: bool) {
        self.status = Some(Status { text: text.into(), error, at: Instant::now() });
    }

    /// Takes one update from the capture side (rows come ready: nothing is packed here).
    pub fn ingest(&mut self, u: Update) {
        match u {
            Update::Finished(v) | Update::Open(v) => self.rows(v.into_iter().map(Row::whole).collect()),
            Update::Revised(v) => self.rows(v.into_iter().map(|s| Row::whole(s).revising()).collect()),
            Update::Rows(v) => self.rows(v),
            Update::Codec(c) => self.store.set_codec(c),
            Update::Repacked(v) if self.paused => self.held_repacked.extend(v),
            Update::Repacked(v) => self.store.repack(v),
            Update::Progress(p) => {
                // Packets per second over the last half second or more.
                let (t, n, r) = self.rate;
                let dt = t.elapsed().as_secs_f64();
                self.rate = if p.done {
                    (Instant::now(), p.packets, 0.0)
                } else if dt >= 0.5 {
                    (Instant::now(), p.packets, p.packets.saturating_sub(n) as f64 / dt)
                } else if r == 0.0 && p.elapsed.as_secs_f64() > 0.1 {
                    (t, n, p.packets as f64 / p.elapsed.as_secs_f64())
                } else {
                    (t, n, r)
                };
                self.progress = p;
            }
            Update::Done(s) => {
                self.progress.done = true;
                self.summary = Some(*s);
            }
            Update::Note(text) => self.say(text, true),
        }
    }

    fn rows(&mut self, v: Vec<Row>) {
        if self.paused {
            for r in v {
                if r.in_progress() {
                    self.held_open.insert(r.id(), r);
                } else {
                    self.held_open.remove(&r.id());
                    self.held_finished.push(r);
                }
            }
        } else {
            for r in v {
                self.store.ingest(r);
            }
        }
    }

    /// Periodic work within `budget`: test rows against a new filter (the footer says how far
    /// it got), bring the view up to date when rows changed (at most every [`REBUILD_EVERY`]
    /// while they stream in), expire the footer message.
    pub fn tick_within(&mut self, now: Instant, budget: &mut Budget) {
        let done = self.store.work(budget);
        match self.store.filtering() {
            Some((n, total)) => {
                self.filtering = true;
                self.say(format!("filtering {}/{}…", n, total), false);
            }
            None if self.filtering => {
                self.filtering = false;
                self.rebuild(now);
                self.say_matches();
            }
            None => {}
        }
        let due = now.duration_since(self.last_rebuild) >= REBUILD_EVERY || self.progress.done && done;
        if self.store.is_dirty() && due {
            self.rebuild(now);
        }
        if self.status.as_ref().is_some_and(|s| now.duration_since(s.at) > Duration::from_secs(6)) {
            self.status = None;
        }
    }

    /// Periodic work, as much as a frame allows.
    pub fn tick(&mut self, now: Instant) {
        self.tick_within(now, &mut Budget::until(now + WORK_BUDGET));
    }

    /// The footer's word on the filter just applied.
    fn say_matches(&mut self) {
        let n = self.store.len();
        let text = self.store.filter().text().to_string();
        if let Some((tested, total)) = self.store.filtering() {
            self.filtering = true;
            self.say(format!("filtering {tested}/{total}…"), false);
        } else if text.is_empty() {
            self.say(format!("filter cleared: {n} sessions"), false);
        } else {
            let noun = if n == 1 { "session matches" } else { "sessions match" };
            self.say(format!("{n} {noun} {text}"), false);
        }
    }

    /// Rebuilds the view now.
    pub fn rebuild(&mut self, now: Instant) {
        self.store.rebuild();
        self.last_rebuild = now;
        self.pairs_dirty = true;
        self.after_rebuild();
    }

    /// Puts the cursor back on the selected session after rows moved.
    fn after_rebuild(&mut self) {
        let len = self.store.len();
        if len == 0 {
            self.cursor = 0;
            self.select_at(0);
            return;
        }
        if self.follow || self.selected.is_none() && self.source.live {
            self.follow = true;
            self.cursor = len - 1;
        } else if let Some(p) = self.selected.and_then(|id| self.store.position(id)) {
            self.cursor = p;
        } else {
            self.cursor = self.cursor.min(len - 1);
        }
        self.select_at(self.cursor);
        if self.view == View::Pairs {
            self.refresh_pairs();
        }
    }

    fn select_at(&mut self, i: usize) {
        let id = self.store.id_at(i);
        if id != self.selected {
            self.selected = id;
            self.detail_scroll = 0;
            self.evidence_cursor = 0;
            self.packets = PacketView { id, state: PacketState::Idle, cursor: 0, want_frame: None };
        }
        if self.tab == Tab::Packets {
            self.want_packets();
        }
    }

    fn move_cursor(&mut self, delta: isize) {
        let len = self.store.len();
        if len == 0 {
            return;
        }
        let to = (self.cursor as isize + delta).clamp(0, len as isize - 1) as usize;
        self.follow = delta > 0 && to == len - 1 && self.follow;
        self.cursor = to;
        self.select_at(to);
    }

    fn page(&self) -> usize {
        match self.focus {
            Pane::Table => usize::from(self.geometry.table_rows.height).max(1),
            Pane::Detail => self.geometry.detail_height.max(1),
        }
    }

    /// Asks for the selected session's packets unless they are loaded and current (a log
    /// session has none to ask for).
    fn want_packets(&mut self) {
        let Some(s) = self.current().filter(|s| s.from_log.is_none()) else { return };
        let stale = match &self.packets.state {
            PacketState::Idle | PacketState::Failed(_) => true,
            PacketState::Ready(p) => p.id != s.id || p.expected != s.packets,
            PacketState::Loading => false,
        };
        if stale {
            self.packets.id = Some(s.id);
            self.packets.state = PacketState::Loading;
            self.effects.push(Effect::LoadPackets(Request::of(&s)));
        }
    }

    /// Packets arrived from the loader.
    pub fn packets_loaded(&mut self, r: Result<Packets, String>, id: u64) {
        if self.packets.id != Some(id) {
            return;
        }
        match r {
            Ok(p) => {
                if let Some(f) = self.packets.want_frame.take() {
                    self.packets.cursor = p.rows.iter().position(|r| r.frame >= f).unwrap_or(0);
                } else {
                    self.packets.cursor = self.packets.cursor.min(p.rows.len().saturating_sub(1));
                }
                self.packets.state = PacketState::Ready(Arc::new(p));
            }
            Err(e) => self.packets.state = PacketState::Failed(e),
        }
    }

    fn refresh_pairs(&mut self) {
        if !self.pairs_dirty {
            return;
        }
        let mut p = Pairs::default();
        for s in self.store.visible() {
            p.add(&s);
        }
        self.pairs = p;
        self.pairs_dirty = false;
        self.pairs_cursor = self.pairs_cursor.min(self.pairs.pairs.len().saturating_sub(1));
    }

    fn detail_move(&mut self, delta: isize) {
        let step = |v: usize, max: usize| (v as isize + delta).clamp(0, max as isize) as usize;
        match self.tab {
            Tab::Transcript | Tab::Tls | Tab::Log => self.detail_scroll = step(self.detail_scroll, usize::MAX / 2),
            Tab::Evidence => {
                let n = self.current().map_or(0, |s| detail::evidence_items(&s).len());
                self.evidence_cursor = step(self.evidence_cursor, n.saturating_sub(1));
            }
            Tab::Packets => {
                if let PacketState::Ready(p) = &self.packets.state {
                    let n = p.rows.len();
                    self.packets.cursor = step(self.packets.cursor, n.saturating_sub(1));
                }
            }
        }
    }

    fn vertical(&mut self, delta: isize) {
        match (self.view, self.focus) {
            (View::Pairs, _) => {
                let n = self.pairs.pairs.len();
                self.pairs_cursor =
                    (self.pairs_cursor as isize + delta).clamp(0, n.saturating_sub(1) as isize) as usize;
            }
            (View::Sessions, Pane::Table) => self.move_cursor(delta),
            (View::Sessions, Pane::Detail) => self.detail_move(delta),
        }
    }

    fn set_tab(&mut self, t: Tab) {
        if self.tab != t {
            self.tab = t;
            self.detail_scroll = 0;
        }
        if t == Tab::Packets {
            self.want_packets();
        }
    }

    /// Enter on the evidence tab: the item's frame in the packets tab.
    fn jump_to_evidence(&mut self) {
        let Some(s) = self.current() else { return };
        let items = detail::evidence_items(&s);
        if let Some(r) = &s.from_log {
            // A log session's evidence points at lines of its file: the Log tab shows them.
            let line = items.get(self.evidence_cursor).and_then(|i| i.frame);
            let file = crate::escape::defuse(&r.log_file);
            self.set_tab(Tab::Log);
            match line {
                Some(l) => {
                    self.say(format!("line {l} of {file}: the session's logged lines are on the Log tab"), false)
                }
                None => self.say(format!("the session's logged lines ({file}) are on the Log tab"), false),
            }
            return;
        }
        let Some(frame) = items.get(self.evidence_cursor).and_then(|i| i.frame).filter(|f| *f > 0) else {
            self.say("this line has no frame to jump to", true);
            return;
        };
        self.packets.want_frame = Some(frame);
        if let PacketState::Ready(p) = &self.packets.state {
            if p.id == s.id {
                self.packets.cursor = p.rows.iter().position(|r| r.frame >= frame).unwrap_or(0);
                self.packets.want_frame = None;
            }
        }
        self.set_tab(Tab::Packets);
    }

    /// Enter on a pair: its sessions.
    fn drill_into_pair(&mut self) {
        let Some(((c, s), _)) = self.pairs.pairs.iter().nth(self.pairs_cursor) else { return };
        let extra = format!("client:{c} server:{s}");
        let current = self.store.filter().text().to_string();
        let text = if current.is_empty() { extra } else { format!("({current}) {extra}") };
        if self.set_filter_text(&text).is_ok() {
            self.pair_return = Some(current);
            self.view = View::Sessions;
            self.focus = Pane::Table;
            self.cursor = 0;
            self.selected = None;
            self.after_rebuild();
            self.say(format!("filter: {text}"), false);
        }
    }

    /// Moves the pick among the candidates on show by `step` (wrapping) and puts it into the
    /// input, so the list can be walked with Tab/↓ and ↑.
    fn pick_completion(&mut self, step: isize) {
        let Some(c) = &self.completion else { return };
        let n = c.candidates.len();
        if n == 0 {
            return;
        }
        let next = match self.completion_pick {
            None if step < 0 => n - 1,
            None => 0,
            Some(i) => (i as isize + step).rem_euclid(n as isize) as usize,
        };
        if let Some(cand) = c.candidates.get(next) {
            let v = c.apply(self.input.value(), cand);
            self.input = Input::new(v);
            self.completion_pick = Some(next);
            self.revalidate();
        }
    }

    fn revalidate(&mut self) {
        self.input_error = Filter::parse(self.input.value()).err();
    }

    fn click(&mut self, x: u16, y: u16) {
        let g = &self.geometry;
        let inside = |r: Rect| x >= r.x && x < r.x + r.width && y >= r.y && y < r.y + r.height;
        if y == g.tabs_y && self.view == View::Sessions {
            if let Some(&(_, _, t)) = g.tabs.iter().find(|(a, b, _)| x >= *a && x < *b) {
                self.focus = Pane::Detail;
                self.set_tab(t);
                return;
            }
        }
        if self.view == View::Sessions && y == g.header_y && !g.header.is_empty() {
            if let Some(&(_, _, col)) = g.header.iter().find(|(a, b, _)| x >= *a && x < *b) {
                let (cur, desc) = self.store.sort();
                self.store.set_sort(col, cur == col && !desc);
                self.after_rebuild();
                return;
            }
        }
        if inside(g.table_rows) {
            let row = g.table_offset + usize::from(y - g.table_rows.y);
            self.focus = Pane::Table;
            match self.view {
                View::Pairs => self.pairs_cursor = row.min(self.pairs.pairs.len().saturating_sub(1)),
                View::Sessions => {
                    if row < self.store.len() {
                        self.follow = false;
                        self.cursor = row;
                        self.select_at(row);
                    }
                }
            }
        } else if inside(g.detail) {
            self.focus = Pane::Detail;
        }
    }

    fn wheel(&mut self, x: u16, y: u16, delta: isize) {
        let d = self.geometry.detail;
        let over_detail = x >= d.x && x < d.x + d.width && y >= d.y && y < d.y + d.height;
        if over_detail && self.view == View::Sessions {
            self.detail_move(delta);
        } else if self.view == View::Pairs {
            self.vertical(delta);
        } else {
            self.move_cursor(delta);
        }
    }

    /// Does what `a` asks.
    pub fn apply(&mut self, a: Action) {
        match a {
            Action::Quit => self.quit = true,
            Action::Up => self.vertical(-1),
            Action::Down => self.vertical(1),
            Action::PageUp => self.vertical(-(self.page() as isize)),
            Action::PageDown => self.vertical(self.page() as isize),
            Action::Top => {
                self.follow = false;
                self.vertical(isize::MIN / 2);
            }
            Action::Bottom => {
                self.vertical(isize::MAX / 2);
                self.follow = self.view == View::Sessions && self.focus == Pane::Table;
            }
            Action::NextPane => {
                self.focus = match (self.view, self.focus) {
                    (View::Pairs, _) => Pane::Table,
                    (_, Pane::Table) => Pane::Detail,
                    (_, Pane::Detail) => Pane::Table,
                };
            }
            Action::Enter => match (self.view, self.focus, self.tab) {
                (View::Pairs, _, _) => self.drill_into_pair(),
                (View::Sessions, Pane::Detail, Tab::Evidence) => self.jump_to_evidence(),
                _ => self.zoom = !self.zoom,
            },
            Action::Escape => {
                if self.mode != Mode::Normal {
                    self.mode = Mode::Normal;
                } else if self.zoom {
                    self.zoom = false;
                } else if self.view == View::Pairs {
                    self.view = View::Sessions;
                } else if let Some(before) = self.pair_return.take() {
                    // Back from a pair's sessions: the pairs again, with the filter they had.
                    let _ = self.set_filter_text(&before);
                    self.pairs_dirty = true;
                    self.view = View::Pairs;
                    self.refresh_pairs();
                }
            }
            Action::Tab(t) => {
                self.view = View::Sessions;
                self.set_tab(t);
            }
            Action::PrevTab => self.set_tab(Tab::ALL[(self.tab.index() + Tab::ALL.len() - 1) % Tab::ALL.len()]),
            Action::NextTab => self.set_tab(Tab::ALL[(self.tab.index() + 1) % Tab::ALL.len()]),
            Action::Sort => {
                let (col, _) = self.store.sort();
                // Only to columns on screen (as last drawn): a sort by a hidden column looks
                // like no order at all.
                // Before the first frame: the columns the run has (no SENSOR or LOG without them).
                let shown = |c: Column| {
                    if self.geometry.header.is_empty() {
                        self.store.shows(c)
                    } else {
                        self.geometry.header.iter().any(|h| h.2 == c)
                    }
                };
                let mut next = col.next();
                for _ in 0..Column::ALL.len() {
                    if shown(next) {
                        break;
                    }
                    next = next.next();
                }
                self.store.set_sort(next, false);
                self.after_rebuild();
                self.say(format!("sorted by {}", next.title().to_lowercase()), false);
            }
            Action::SortReverse => {
                let (col, desc) = self.store.sort();
                self.store.set_sort(col, !desc);
                self.after_rebuild();
                let dir = if desc { "ascending" } else { "descending" };
                self.say(format!("sorted by {} ({dir})", col.title().to_lowercase()), false);
            }
            Action::Pause => {
                self.paused = !self.paused;
                if !self.paused {
                    for r in std::mem::take(&mut self.held_finished) {
                        self.store.ingest(r);
                    }
                    for (_, r) in std::mem::take(&mut self.held_open) {
                        self.store.ingest(r);
                    }
                    self.store.repack(std::mem::take(&mut self.held_repacked));
                    self.rebuild(Instant::now());
                }
                self.say(if self.paused { "paused: updates are held" } else { "resumed" }, false);
            }
            Action::OpenFilter => {
                self.mode = Mode::Filter;
                self.input = Input::new(self.store.filter().text().to_string());
                self.completion = None;
                self.revalidate();
            }
            Action::FilterInput(r) => {
                let edits = super::keys::edits(&r);
                self.input.handle(r);
                if edits {
                    self.completion = None;
                    self.revalidate();
                }
            }
            Action::FilterClear => {
                self.input.reset();
                self.completion = None;
                self.revalidate();
            }
            Action::FilterComplete if self.completion.is_some() => self.pick_completion(1),
            Action::FilterCompletePrev if self.completion.is_some() => self.pick_completion(-1),
            Action::FilterCompletePrev => {}
            Action::FilterApply if self.completion_pick.is_some() && self.completion.is_some() => {
                // Enter on a picked candidate takes it; the next Enter applies the filter.
                let mut v = self.input.value().to_string();
                if !v.ends_with(':') {
                    v.push(' ');
                }
                self.input = Input::new(v);
                self.completion = None;
                self.completion_pick = None;
                self.revalidate();
            }
            Action::FilterComplete => {
                let value = self.input.value().to_string();
                let c = complete(&value);
                match c.candidates.len() {
                    0 => self.completion = None,
                    1 => {
                        let mut v = c.apply(&value, &c.candidates[0]);
                        if !v.ends_with(':') {
                            v.push(' ');
                        }
                        self.input = Input::new(v);
                        self.completion = None;
                    }
                    _ => {
                        let prefix = c.common_prefix();
                        if prefix.len() > value.len() - c.start {
                            self.input = Input::new(c.apply(&value, &prefix));
                        }
                        self.completion = Some(c);
                        self.completion_pick = None;
                    }
                }
                self.revalidate();
            }
            Action::FilterApply => match Filter::parse(self.input.value()) {
                Ok(f) => {
                    self.pair_return = None;
                    self.store.set_filter(f);
                    self.mode = Mode::Normal;
                    self.completion = None;
                    self.pairs_dirty = true;
                    self.after_rebuild();
                    self.say_matches();
                }
                Err(e) => {
                    self.input_error = Some(e.clone());
                    self.say(format!("filter not applied: {}", e.kind), true);
                }
            },
            Action::FilterClose => {
                self.mode = Mode::Normal;
                self.completion = None;
                self.input_error = None;
            }
            Action::Export => {
                if self.store.is_empty() {
                    self.say("nothing to export: no session matches the filter", true);
                } else {
                    self.mode = Mode::Export;
                }
            }
            Action::ExportAs(f) => {
                self.mode = Mode::Normal;
                self.effects.push(Effect::Export(f));
            }
            Action::WritePcap => match self.current() {
                Some(s) if s.from_log.is_some() => self.say("a log session carries no packets to write", true),
                Some(s) => self.effects.push(Effect::WritePcap(Request::of(&s))),
                None => self.say("no session selected", true),
            },
            Action::Help => self.mode = if self.mode == Mode::Help { Mode::Normal } else { Mode::Help },
            Action::Pairs if self.store.logs_only() => self.say(
                "the pairs view groups wire sessions by host: for log sessions, sort by CLIENT or SERVER (s) or filter by host:",
                true,
            ),
            Action::Pairs => {
                self.pair_return = None;
                self.view = if self.view == View::Pairs { View::Sessions } else { View::Pairs };
                self.focus = Pane::Table;
                self.zoom = false;
                if self.view == View::Pairs {
                    self.pairs_dirty = true;
                    self.refresh_pairs();
                }
            }
            Action::Click(x, y) => self.click(x, y),
            Action::WheelUp(x, y) => self.wheel(x, y, -3),
            Action::WheelDown(x, y) => self.wheel(x, y, 3),
            Action::Resize => {}
        }
    }

    /// The sort column and direction, for the table header.
    pub fn sort(&self) -> (Column, bool) {
        self.store.sort()
    }
}
