//! The capture thread: runs the driver and hands the UI batches of finished sessions, snapshots
//! of open ones and progress. A live capture never waits for the UI: its channel is unbounded
//! and batches are sent once per driver tick (about every 50 ms), so the UI drains a few
//! messages a frame. Files can wait: their channel holds a few batches, so sessions read faster
//! than the UI packs them wait whole in the channel only that far (memory stays bounded).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, Sender, SyncSender};
use std::sync::Arc;
use std::thread::JoinHandle;

use crate::driver::{OpenSessions, Opened, Progress, Sink};
use crate::engine::Stats;
use crate::flow::TableStats;
use crate::records::{Merged, Records};
use crate::session::Session;
use crate::summary::Summary;

/// Open-session snapshots taken per tick (the rest wait for the next one).
pub const OPEN_BATCH: usize = 256;
/// Finished sessions sent in one message at most.
const FINISHED_BATCH: usize = 512;
/// Messages a file's capture thread may be ahead of the UI.
const FILE_BACKLOG: usize = 16;

/// The channel's sending end: unbounded live, bounded for files.
#[derive(Clone)]
enum Tx {
    Live(Sender<Update>),
    File(SyncSender<Update>),
}

impl Tx {
    fn send(&self, u: Update) -> Result<(), mpsc::SendError<Update>> {
        match self {
            Tx::Live(t) => t.send(u),
            Tx::File(t) => t.send(u),
        }
    }
}

/// What the capture thread reports.
#[derive(Debug)]
pub enum Update {
    /// Sessions that ended.
    Finished(Vec<Session>),
    /// Snapshots of sessions still open.
    Open(Vec<Session>),
    /// Progress.
    Progress(Progress),
    /// The run is over.
    Done(Box<Summary>),
    /// Something the footer should say (lines skipped in `-R` inputs, already escaped).
    Note(String),
}

/// Counts the records handed on after the capture into the summary's verdicts.
struct Counting<'a> {
    inner: &'a mut Forward,
    stats: &'a mut Stats,
}

impl Sink for Counting<'_> {
    fn session(&mut self, s: Session) {
        Records::count_into(self.stats, &s);
        self.inner.session(s);
    }
}

struct Forward {
    tx: Tx,
    batch: Vec<Session>,
}

impl Forward {
    fn flush(&mut self) {
        if !self.batch.is_empty() {
            let b = std::mem::take(&mut self.batch);
            let _ = self.tx.send(Update::Finished(b));
        }
    }
}

impl Sink for Forward {
    fn session(&mut self, s: Session) {
        self.batch.push(s);
        if self.batch.len() >= FINISHED_BATCH {
            self.flush();
        }
    }

    fn tick(&mut self, engine: &mut dyn OpenSessions, p: &Progress) {
        self.flush();
        let mut open = Vec::new();
        engine.changed_open_sessions(OPEN_BATCH, &mut |s| open.push(s));
        if !open.is_empty() {
            let _ = self.tx.send(Update::Open(open));
        }
        let _ = self.tx.send(Update::Progress(*p));
    }
}

/// The running capture.
pub struct Feed {
    /// Updates, in order.
    pub rx: Receiver<Update>,
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

impl Feed {
    /// Starts reading `opened` on its own thread.
    pub fn start(opened: Opened) -> std::io::Result<Self> {
        Self::start_with(Some(opened), None)
    }

    /// Starts reading a capture, records (`-R`), or both merged by `last_seen`, on its own thread.
    pub fn start_with(opened: Option<Opened>, records: Option<Records>) -> std::io::Result<Self> {
        let (tx, rx) = if opened.as_ref().is_some_and(Opened::is_live) {
            let (tx, rx) = mpsc::channel();
            (Tx::Live(tx), rx)
        } else {
            let (tx, rx) = mpsc::sync_channel(FILE_BACKLOG);
            (Tx::File(tx), rx)
        };
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let handle = std::thread::Builder::new().name("smtpscope-capture".into()).spawn(move || {
            let mut sink = Forward { tx: tx.clone(), batch: Vec::new() };
            let mut records = records;
            let summary = match (opened, records.as_mut()) {
                (Some(o), Some(r)) => o.run(&mut Merged { records: r, inner: &mut sink }, &flag),
                (Some(o), None) => o.run(&mut sink, &flag),
                (None, _) => Summary {
                    sources: Vec::new(),
                    stats: Stats::default(),
                    table: TableStats::default(),
                    dropped: None,
                    sensor: None,
                    output_errors: 0,
                },
            };
            let mut summary = summary;
            if let Some(r) = records.as_mut() {
                let mut counting = Counting { inner: &mut sink, stats: &mut summary.stats };
                r.drain(&mut counting, &flag);
                let notes: Vec<String> = r.stats().iter().filter_map(|st| st.message()).collect();
                let note = match (r.records_read(), notes.is_empty()) {
                    (0, _) => Some("no record could be read from the -R input(s)".to_string()),
                    (_, false) => Some(notes.join("; ")),
                    (_, true) => None,
                };
                if let Some(n) = note {
                    let _ = tx.send(Update::Note(crate::escape::terminal(n.as_bytes())));
                }
                let _ = tx.send(Update::Progress(Progress { done: true, ..Progress::default() }));
            }
            sink.flush();
            let _ = tx.send(Update::Done(Box::new(summary)));
        })?;
        Ok(Self { rx, stop, handle: Some(handle) })
    }

    /// Asks the capture to stop (it finishes open sessions and reports Done).
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }

    /// Stops and waits for the thread; returns the summary if it arrived.
    pub fn finish(mut self) -> Option<Summary> {
        self.stop();
        let mut summary = None;
        let mut drain = |rx: &Receiver<Update>| {
            while let Ok(u) = rx.try_recv() {
                if let Update::Done(s) = u {
                    summary = Some(*s);
                }
            }
        };
        if let Some(h) = self.handle.take() {
            // A file's thread may be waiting for room in its channel: keep making room.
            while !h.is_finished() {
                drain(&self.rx);
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            let _ = h.join();
        }
        drain(&self.rx);
        summary
    }
}
