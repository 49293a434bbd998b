//! The capture thread: runs the driver and hands on batches of finished sessions, snapshots of
//! open ones and progress. The packer thread behind it makes each session a ready [`Row`]
//! (brief, zstd-packed CBOR once finished, tested against the display filter), so the UI thread
//! only appends rows: no serializing or compressing on it. A live capture never waits for the
//! UI: its channels are unbounded and batches are sent once per driver tick (about every 50 ms),
//! so the UI drains a few messages a frame. Files can wait: each channel holds a few batches, so
//! memory stays bounded whatever the UI's pace.
//! [`Hooks`] see every session and tick on that thread too, whatever the UI is doing: a sensor
//! run's records files, metrics and rotation go on while the screen shows the sessions; a live
//! run's log cross-check hands back sessions it linked after they were shown
//! ([`Update::Revised`]), and may go on a little once the input has ended ([`Hooks::waiting`]).
//! Instead of a capture, a [`Producer`] may feed the rows (`smtpscope logs`: log sessions).

use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, Sender, SyncSender};
use std::sync::Arc;
use std::thread::JoinHandle;

use super::packed::{Codec, Packer};
use super::store::{FilterSlot, Row};
use crate::capture::ring::SharedFileMap;
use crate::driver::{locate_files, OpenSessions, Opened, Progress, Sink};
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

/// What the capture thread reports (sessions made [`Update::Rows`] by the packer thread).
#[derive(Debug)]
pub enum Update {
    /// Sessions that ended.
    Finished(Vec<Session>),
    /// Snapshots of sessions still open.
    Open(Vec<Session>),
    /// Finished sessions shown before that now carry more (a live run's server-log links, made
    /// when the log lines arrived): each replaces its row, none adds one.
    Revised(Vec<Session>),
    /// Sessions ready for the store (finished and open alike, in order).
    Rows(Vec<Row>),
    /// The packer's dictionary is ready: packed rows read back with this.
    Codec(Arc<Codec>),
    /// Rows sent whole while the dictionary was trained, now packed, by session id.
    Repacked(Vec<(u64, Arc<[u8]>)>),
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

/// What a run does with its sessions besides showing them (sensor mode: records to files,
/// metrics, rotation), called on the capture thread.
pub trait Hooks: Send {
    /// Adds to a finished session before the UI or [`Hooks::session`] sees it (the server-log
    /// cross-check).
    fn annotate(&mut self, _s: &mut Session) {}
    /// A session ended (with `-w`: its record names the files holding its packets).
    fn session(&mut self, s: &Session);
    /// About every driver tick and once at the end.
    fn tick(&mut self, p: &Progress);
    /// The run is over: add to its summary.
    fn done(&mut self, summary: &mut Summary);
    /// Hands on sessions shown before that now carry more (the live log cross-check links a
    /// record once its log lines arrive); called after every tick and at the end.
    fn revised(&mut self, _out: &mut dyn FnMut(Session)) {}
    /// The input has ended: does what still waits for more (records waiting for their log
    /// lines) and says whether to be called again, [`LINGER_POLL`] later, before
    /// [`Hooks::done`].
    fn waiting(&mut self) -> bool {
        false
    }
}

/// How often hooks that still wait at the end of the input are called again.
pub const LINGER_POLL: std::time::Duration = std::time::Duration::from_millis(100);

/// Sessions from another input than a capture or records, read on the capture thread:
/// `smtpscope logs` shows each server-log session as a row of its own.
pub trait Producer: Send {
    /// Hands every session to `out` and progress to `progress` now and then (`done` left to the
    /// caller); returns early once `stop` is set. Returns what the footer should say at the end
    /// (an input that could not be read), escaped by the feed.
    fn run(
        &mut self,
        out: &mut dyn FnMut(Session),
        progress: &mut dyn FnMut(Progress),
        stop: &AtomicBool,
    ) -> Option<String>;
}

/// No hooks: the UI alone.
impl Hooks for () {
    fn session(&mut self, _: &Session) {}
    fn tick(&mut self, _: &Progress) {}
    fn done(&mut self, _: &mut Summary) {}
}

struct Forward {
    tx: Tx,
    batch: Vec<Session>,
    hooks: Box<dyn Hooks>,
}

impl Forward {
    fn flush(&mut self) {
        if !self.batch.is_empty() {
            let b = std::mem::take(&mut self.batch);
            let _ = self.tx.send(Update::Finished(b));
        }
    }

    /// Sends what the hooks revised, after the rows it revises (flushed first).
    fn revise(&mut self) {
        let mut v = Vec::new();
        self.hooks.revised(&mut |s| v.push(s));
        if !v.is_empty() {
            self.flush();
            for chunk in v.chunks(FINISHED_BATCH) {
                let _ = self.tx.send(Update::Revised(chunk.to_vec()));
            }
        }
    }

    /// Progress of an input with no engine behind it (a [`Producer`]).
    fn progress(&mut self, p: &Progress) {
        self.flush();
        self.hooks.tick(p);
        self.revise();
        let _ = self.tx.send(Update::Progress(*p));
    }

    /// The input has ended: hooks that still wait go on until they are done, their revisions
    /// shown as they come.
    fn linger(&mut self) {
        self.flush();
        while self.hooks.waiting() {
            self.revise();
            std::thread::sleep(LINGER_POLL);
        }
        self.revise();
    }
}

impl Sink for Forward {
    fn session(&mut self, mut s: Session) {
        self.hooks.annotate(&mut s);
        self.hooks.session(&s);
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
        self.hooks.tick(p);
        self.revise();
        let _ = self.tx.send(Update::Progress(*p));
    }

    fn session_in_files(&mut self, mut s: Session, files: &SharedFileMap) {
        self.hooks.annotate(&mut s);
        // The record names the -w files (frames from 1 in each); the UI keeps the capture's
        // frame numbers, by which its packet view reads the spool.
        let mut record = s.clone();
        locate_files(files, &mut record);
        self.hooks.session(&record);
        self.batch.push(s);
        if self.batch.len() >= FINISHED_BATCH {
            self.flush();
        }
    }
}

/// What a feed reads: a capture, records, both, or a [`Producer`].
struct Inputs {
    opened: Option<Opened>,
    records: Option<Records>,
    producer: Option<Box<dyn Producer>>,
}

/// Sessions kept serialized while the dictionary trains before the packer thread waits for it.
const BACKLOG_MAX: usize = 2048;

/// The packer thread's work: sessions into ready rows, the rest passed on in order.
pub struct Stage {
    packer: Packer,
    slot: Arc<FilterSlot>,
}

impl Stage {
    /// Packs with `packer`, testing rows against the filter in `slot`.
    pub fn new(packer: Packer, slot: Arc<FilterSlot>) -> Self {
        Self { packer, slot }
    }

    /// Hands `u` to `out`, sessions made rows, the dictionary announced once it is ready (and
    /// waited for before the end is passed on); false once `out` refuses.
    pub fn pass(&mut self, u: Update, out: &mut dyn FnMut(Update) -> bool) -> bool {
        let more = match u {
            Update::Finished(v) | Update::Open(v) => {
                // A file read faster than the dictionary trains waits for it here, rather than
                // piling up serialized sessions.
                if self.packer.backlog() >= BACKLOG_MAX && !self.ready(true, out) {
                    return false;
                }
                let rows = v.into_iter().map(|s| Row::prepare(s, &mut self.packer, &self.slot)).collect();
                out(Update::Rows(rows))
            }
            Update::Revised(v) => {
                let rows = v.into_iter().map(|s| Row::prepare(s, &mut self.packer, &self.slot).revising()).collect();
                out(Update::Rows(rows))
            }
            Update::Done(summary) => self.ready(true, out) && out(Update::Done(summary)),
            other => out(other),
        };
        more && self.ready(false, out)
    }

    /// Waits for the dictionary if it is being trained and hands on what it packs (the end of
    /// a run; tests).
    pub fn flush(&mut self, out: &mut dyn FnMut(Update) -> bool) -> bool {
        self.ready(true, out)
    }

    fn ready(&mut self, wait: bool, out: &mut dyn FnMut(Update) -> bool) -> bool {
        let now = if wait { self.packer.wait() } else { self.packer.poll() };
        match self.packer.codec() {
            Some(c) if now => out(Update::Codec(Arc::clone(c))) && out(Update::Repacked(self.packer.take_repacked())),
            _ => true,
        }
    }
}

/// The running capture.
pub struct Feed {
    /// Updates, in order.
    pub rx: Receiver<Update>,
    stop: Arc<AtomicBool>,
    handles: Vec<JoinHandle<()>>,
}

impl Feed {
    /// Starts reading `opened` on its own thread, `hooks` seeing every session and tick.
    pub fn start(opened: Opened, hooks: Box<dyn Hooks>) -> std::io::Result<Self> {
        Self::start_with(Some(opened), None, hooks, FilterSlot::new())
    }

    /// Starts reading a capture, records (`-R`), or both merged by `last_seen`, on its own
    /// thread, `hooks` seeing every session and tick; rows are tested against the filter in
    /// `filter` (the store's).
    pub fn start_with(
        opened: Option<Opened>,
        records: Option<Records>,
        hooks: Box<dyn Hooks>,
        filter: Arc<FilterSlot>,
    ) -> std::io::Result<Self> {
        Self::spawn(Inputs { opened, records, producer: None }, hooks, Stage::new(Packer::new(), filter))
    }

    /// Starts `producer` (server-log sessions) on its own thread, as [`Feed::start_with`] a
    /// capture.
    pub fn start_producer(
        producer: Box<dyn Producer>,
        hooks: Box<dyn Hooks>,
        filter: Arc<FilterSlot>,
    ) -> std::io::Result<Self> {
        let inputs = Inputs { opened: None, records: None, producer: Some(producer) };
        Self::spawn(inputs, hooks, Stage::new(Packer::new(), filter))
    }

    fn spawn(inputs: Inputs, hooks: Box<dyn Hooks>, mut stage: Stage) -> std::io::Result<Self> {
        let Inputs { opened, records, producer } = inputs;
        let live = opened.as_ref().is_some_and(Opened::is_live);
        let channel = || {
            if live {
                let (tx, rx) = mpsc::channel();
                (Tx::Live(tx), rx)
            } else {
                let (tx, rx) = mpsc::sync_channel(FILE_BACKLOG);
                (Tx::File(tx), rx)
            }
        };
        let (tx, sessions) = channel();
        let (to_ui, rx) = channel();
        let packing = std::thread::Builder::new().name("smtpscope-packer".into()).spawn(move || {
            for u in sessions.iter() {
                if !stage.pass(u, &mut |u| to_ui.send(u).is_ok()) {
                    break;
                }
            }
        })?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let handle = std::thread::Builder::new().name("smtpscope-capture".into()).spawn(move || {
            let mut sink = Forward { tx: tx.clone(), batch: Vec::new(), hooks };
            let mut records = records;
            let mut producer = producer;
            let summary = match (opened, records.as_mut()) {
                (Some(o), Some(r)) => o.run(&mut Merged { records: r, inner: &mut sink }, &flag),
                (Some(o), None) => o.run(&mut sink, &flag),
                (None, _) => {
                    if let Some(p) = producer.as_mut() {
                        let sink = RefCell::new(&mut sink);
                        let note = p.run(
                            &mut |s| sink.borrow_mut().session(s),
                            &mut |pr| sink.borrow_mut().progress(&pr),
                            &flag,
                        );
                        if let Some(n) = note {
                            let _ = tx.send(Update::Note(crate::escape::terminal(n.as_bytes())));
                        }
                    }
                    Summary {
                        sources: Vec::new(),
                        stats: Stats::default(),
                        table: TableStats::default(),
                        dropped: None,
                        sensor: None,
                        output_errors: 0,
                        logs: None,
                    }
                }
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
            sink.linger();
            sink.hooks.done(&mut summary);
            sink.revise();
            let _ = tx.send(Update::Done(Box::new(summary)));
        })?;
        Ok(Self { rx, stop, handles: vec![handle, packing] })
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
        for h in std::mem::take(&mut self.handles) {
            // A file's threads may be waiting for room in their channels: keep making room.
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::ring::FileMap;
    use crate::session::Evidence;
    use std::sync::Mutex;

    /// Hooks that note what they saw.
    #[derive(Clone, Default)]
    struct Seen(Arc<Mutex<(Vec<Session>, u64, bool)>>);

    impl Hooks for Seen {
        fn session(&mut self, s: &Session) {
            self.0.lock().unwrap().0.push(s.clone());
        }
        fn tick(&mut self, _: &Progress) {
            self.0.lock().unwrap().1 += 1;
        }
        fn done(&mut self, summary: &mut Summary) {
            self.0.lock().unwrap().2 = true;
            summary.output_errors = 7;
        }
    }

    #[test]
    fn hooks_see_every_session_and_the_end_on_the_capture_thread_as_the_ui_does() {
        let demo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("captures/demo.pcap");
        let opts = crate::driver::Options {
            source: crate::driver::Source::Files(vec![demo]),
            filter: None,
            count: None,
            duration: None,
            threads: 1,
            engine: crate::engine::Config::default(),
            idle_timeout: None,
        };
        let seen = Seen::default();
        let feed = Feed::start(Opened::open(opts).unwrap(), Box::new(seen.clone())).unwrap();
        let (mut shown, mut summary) = (0, None);
        for u in feed.rx.iter() {
            match u {
                Update::Rows(v) => shown += v.iter().filter(|r| !r.in_progress()).count(),
                Update::Done(s) => {
                    summary = Some(s);
                    break;
                }
                _ => {}
            }
        }
        let (hooked, ticks, done) = seen.0.lock().unwrap().clone();
        assert_eq!((shown, hooked.len()), (3, 3), "the demo's three sessions, to the UI and the hooks");
        assert!(ticks >= 1 && done, "ticked at least at the end, then told the run is over");
        assert_eq!(summary.unwrap().output_errors, 7, "the hooks add to the summary the UI gets");
    }

    /// A producer of `n` sessions (ids from 1), and hooks that revise each session once the
    /// input has ended, after waiting twice.
    struct Made(u64);

    impl Producer for Made {
        fn run(
            &mut self,
            out: &mut dyn FnMut(Session),
            progress: &mut dyn FnMut(Progress),
            _stop: &AtomicBool,
        ) -> Option<String> {
            for id in 1..=self.0 {
                let mut s = Session::new("10.0.0.1:40000".parse().unwrap(), "10.0.0.2:25".parse().unwrap());
                s.id = id;
                s.verdict = Some(crate::session::Verdict::Plaintext);
                out(s);
                progress(Progress { packets: id, ..Progress::default() });
            }
            Some("a note for the footer".into())
        }
    }

    #[derive(Default)]
    struct Late {
        seen: Vec<Session>,
        waits: u32,
        revised: Vec<Session>,
    }

    impl Hooks for Late {
        fn session(&mut self, s: &Session) {
            self.seen.push(s.clone());
        }
        fn tick(&mut self, _: &Progress) {}
        fn done(&mut self, _: &mut Summary) {}
        fn waiting(&mut self) -> bool {
            self.waits += 1;
            if self.waits == 2 {
                for mut s in std::mem::take(&mut self.seen) {
                    s.logs = Some(Vec::new());
                    self.revised.push(s);
                }
            }
            self.waits < 3
        }
        fn revised(&mut self, out: &mut dyn FnMut(Session)) {
            self.revised.drain(..).for_each(out);
        }
    }

    #[test]
    fn a_producer_feeds_rows_and_revisions_made_while_hooks_wait_come_after_them_before_the_end() {
        let feed = Feed::start_producer(Box::new(Made(3)), Box::new(Late::default()), FilterSlot::new()).unwrap();
        let (mut first, mut revised, mut note) = (Vec::new(), Vec::new(), None);
        for u in feed.rx.iter() {
            match u {
                Update::Rows(v) => {
                    for r in v {
                        if r.revises() {
                            assert!(first.contains(&r.id()), "a revision after its row");
                            revised.push(r.id());
                        } else {
                            first.push(r.id());
                        }
                    }
                }
                Update::Note(n) => note = Some(n),
                Update::Done(_) => break,
                _ => {}
            }
        }
        assert_eq!(first, [1, 2, 3]);
        assert_eq!(revised, [1, 2, 3], "each session revised once, before the end");
        assert_eq!(note.as_deref(), Some("a note for the footer"));
    }

    #[test]
    fn with_w_files_the_record_names_its_file_and_the_ui_keeps_capture_frames() {
        let mut map = FileMap::default();
        map.started(1, Arc::from("ring0.pcap"));
        map.started(11, Arc::from("ring1.pcap"));
        let map = Arc::new(Mutex::new(map));
        let mut s = Session::new("10.0.0.1:40000".parse().unwrap(), "10.0.0.2:25".parse().unwrap());
        s.first_frame = 12;
        s.evidence.push(Evidence { text: "STARTTLS".into(), frame: Some(14), side: None, file: None });
        let (tx, rx) = mpsc::channel();
        let seen = Seen::default();
        let mut fwd = Forward { tx: Tx::Live(tx), batch: Vec::new(), hooks: Box::new(seen.clone()) };
        fwd.session_in_files(s, &map);
        fwd.flush();
        let record = seen.0.lock().unwrap().0.remove(0);
        assert_eq!(record.pcap_file.as_deref(), Some("ring1.pcap"));
        assert_eq!((record.evidence[0].file.as_deref(), record.evidence[0].frame), (Some("ring1.pcap"), Some(4)));
        let Ok(Update::Finished(shown)) = rx.try_recv() else { panic!("the UI got no session") };
        assert_eq!(shown[0].evidence[0].frame, Some(14), "the packet view reads the spool by capture frame");
        assert!(shown[0].evidence[0].file.is_none());
    }

    #[test]
    fn the_ui_gets_rows_the_packer_thread_packed_and_the_dictionary_before_them() {
        let demo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("captures/multi-site.pcap");
        let opts = crate::driver::Options {
            source: crate::driver::Source::Files(vec![demo]),
            filter: None,
            count: None,
            duration: None,
            threads: 1,
            engine: crate::engine::Config { transcript: true, ..crate::engine::Config::default() },
            idle_timeout: None,
        };
        let stage = Stage::new(Packer::with_samples(8), FilterSlot::new());
        let inputs = Inputs { opened: Some(Opened::open(opts).unwrap()), records: None, producer: None };
        let feed = Feed::spawn(inputs, Box::new(()), stage).unwrap();
        let (mut codec, mut packed, mut whole, mut repacked) = (false, Vec::new(), Vec::new(), Vec::new());
        for u in feed.rx.iter() {
            match u {
                Update::Codec(_) => codec = true,
                Update::Rows(v) => {
                    for r in v.iter().filter(|r| !r.in_progress()) {
                        assert!(r.packed().is_none() || codec, "a packed row came before the means to read it");
                        if r.packed().is_some() {
                            packed.push(r.id())
                        } else {
                            whole.push(r.id())
                        }
                    }
                }
                Update::Repacked(v) => repacked.extend(v.into_iter().map(|(id, _)| id)),
                Update::Done(_) => break,
                _ => {}
            }
        }
        assert!(codec, "the dictionary was announced before the end");
        assert_eq!(packed.len() + whole.len(), 12, "the capture's twelve sessions");
        whole.sort_unstable();
        repacked.sort_unstable();
        assert_eq!(whole, repacked, "every session sent whole was sent again packed");
    }
}
