//! Following log files during a live capture, as `tail -F` does: each `--logs` file, directory
//! or glob is looked at again every poll, files are told apart by device and inode (never by
//! name), and only whole lines are parsed.
//!
//! - A file that grows is read from where the last poll stopped; a last line without its `\n`
//!   waits for it (kept up to [`MAX_LINE`] bytes, the rest counted as `line-too-long`).
//! - logrotate's create mode (rename, then a new file under the old name): the renamed file is
//!   read on until it has not grown for [`Follower::linger`] (the writer reopens at its own pace),
//!   and the new file is read from its start. Both feed the same parser, so a session whose lines
//!   straddle the rotation stays one session.
//! - copytruncate (the same file shrinks): reading starts again at 0 and the cut is counted
//!   (`truncated`); what the writer wrote between logrotate's copy and its truncation is lost to
//!   every reader, this one too.
//! - A file that vanishes is read to its end and dropped; one that appears later (a new match of a
//!   glob) is read from its start. Files there when following starts are read from their end:
//!   what they hold is older than the capture.
//! - Compressed files (logrotate's `.gz`, told by their first bytes) are old: never read.
//!
//! Polling rather than inotify: one `stat` per file per poll (250 ms by default) is cheap, sees
//! renames and truncation the same way on every file system (NFS and overlay too, where inotify
//! is blind to other hosts' writes), and its latency is far below `--log-wait`.

use std::collections::{BTreeMap, HashSet};
use std::fs::File;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{Feed, FileStats, LogOptions, LogRecord, MAX_LINE};
use crate::decompress::Compression;

/// How often a followed file is looked at by default.
pub const POLL: Duration = Duration::from_millis(250);

/// How long a rotated-away or deleted file is still read after it last grew, by default.
pub const LINGER: Duration = Duration::from_secs(5);

/// Bytes read from one file per read call.
const CHUNK: usize = 256 * 1024;

/// A file's identity: device and inode.
type Id = (u64, u64);

/// One open file being followed.
struct Handle {
    file: File,
    id: Id,
    /// The stream (the path it was first seen under) whose parser its lines go to.
    stream: Arc<str>,
    /// Bytes read so far.
    pos: u64,
    /// The last line so far, still without its `\n`.
    partial: Vec<u8>,
    /// The partial line was longer than [`MAX_LINE`].
    cut: bool,
    /// Nothing has been read yet: the first bytes still decide whether it is compressed.
    fresh: bool,
    /// When it last grew (or was opened).
    grew: Instant,
    /// No followed path names it any more (rotated away by a pattern that does not match the new
    /// name, or deleted).
    gone: bool,
}

/// What following has seen, per stream and overall.
#[derive(Debug, Clone, Default)]
pub struct FollowStats {
    /// Per stream (the path a file was first seen under): what its lines gave.
    pub streams: Vec<(String, FileStats)>,
    /// Files replaced under their name (logrotate's create mode) or deleted.
    pub rotations: u64,
    /// Files that shrank (copytruncate).
    pub truncations: u64,
    /// Compressed files left unread.
    pub compressed: u64,
    /// Files that could not be opened or read (each named once in `errors`).
    pub errors: Vec<String>,
}

/// Follows `--logs` paths; call [`Follower::poll`] at an interval (or run it with [`spawn`]).
pub struct Follower {
    patterns: Vec<String>,
    opts: LogOptions,
    handles: Vec<Handle>,
    streams: BTreeMap<Arc<str>, Feed>,
    /// Compressed files: looked at once, never read.
    skipped: HashSet<Id>,
    /// Files that failed to open, named once.
    failed: HashSet<String>,
    stats: FollowStats,
    /// The first poll has not run: files found then are read from their end.
    first: bool,
    buf: Vec<u8>,
    /// How long a file no path names any more is still read after it last grew.
    pub linger: Duration,
}

impl Follower {
    /// A follower of `patterns` (files, directories or globs); nothing is opened before the first
    /// [`Follower::poll`].
    pub fn new(patterns: Vec<String>, opts: LogOptions) -> Self {
        Self {
            patterns,
            opts,
            handles: Vec::new(),
            streams: BTreeMap::new(),
            skipped: HashSet::new(),
            failed: HashSet::new(),
            stats: FollowStats::default(),
            first: true,
            buf: vec![0; CHUNK],
            linger: LINGER,
        }
    }

    /// Files the patterns name now (a pattern that names nothing yet is no error: its file may
    /// appear later).
    fn paths(&self) -> Vec<String> {
        let mut out = Vec::new();
        for a in &self.patterns {
            let p = Path::new(a);
            if p.is_dir() {
                if let Ok(rd) = std::fs::read_dir(p) {
                    let mut files: Vec<String> = rd
                        .filter_map(|e| e.ok())
                        .filter(|e| e.path().is_file())
                        .map(|e| e.path().to_string_lossy().into_owned())
                        .collect();
                    files.sort();
                    out.extend(files);
                }
            } else if p.is_file() {
                out.push(a.clone());
            } else if let Ok(paths) = glob::glob(a) {
                let mut found: Vec<String> = paths
                    .filter_map(|r| r.ok())
                    .filter(|p| p.is_file())
                    .map(|p| p.to_string_lossy().into_owned())
                    .collect();
                found.sort();
                out.extend(found);
            }
        }
        out
    }

    /// One round: finds new, rotated, truncated and vanished files, and parses every whole line
    /// written since the last round; `out` gets each log session as it closes.
    pub fn poll(&mut self, out: &mut dyn FnMut(LogRecord)) {
        let first = std::mem::replace(&mut self.first, false);
        let mut named: HashSet<Id> = HashSet::new();
        for path in self.paths() {
            let Ok(meta) = std::fs::metadata(&path) else { continue };
            let id = (meta.dev(), meta.ino());
            named.insert(id);
            if self.skipped.contains(&id) || self.handles.iter().any(|h| h.id == id) {
                continue;
            }
            let file = match File::open(&path) {
                Ok(f) => f,
                Err(e) => {
                    if self.failed.insert(path.clone()) {
                        self.stats.errors.push(format!("{path}: {e}"));
                    }
                    continue;
                }
            };
            // A file that takes the name of one followed before is its successor: same parser.
            let stream: Arc<str> = Arc::from(path.as_str());
            let pos = if first { meta.len() } else { 0 };
            self.streams.entry(stream.clone()).or_insert_with(|| {
                let mut o = self.opts.clone();
                if o.reference.is_none() {
                    o.reference = Some(now_micros());
                }
                Feed::new(stream.clone(), o)
            });
            self.handles.push(Handle {
                file,
                id,
                stream,
                pos,
                partial: Vec::new(),
                cut: false,
                fresh: pos == 0,
                grew: Instant::now(),
                gone: false,
            });
        }
        let now = Instant::now();
        let mut i = 0;
        while i < self.handles.len() {
            let keep = match self.handles.get_mut(i) {
                Some(h) => {
                    if !named.contains(&h.id) && !h.gone {
                        h.gone = true;
                        self.stats.rotations += 1;
                    }
                    let feed = self.streams.get_mut(&h.stream);
                    match feed {
                        Some(feed) => read_new(h, feed, &mut self.buf, &mut self.stats, &mut self.skipped, out),
                        None => false,
                    }
                }
                None => false,
            };
            let linger = self.linger;
            let drop = !keep || self.handles.get(i).is_some_and(|h| h.gone && now.duration_since(h.grew) >= linger);
            if drop {
                let h = self.handles.swap_remove(i);
                if !h.partial.is_empty() {
                    if let Some(feed) = self.streams.get_mut(&h.stream) {
                        feed.problem("unfinished-line");
                    }
                }
                // A compressed file's stream never held a line: not a followed file.
                let alone = !self.handles.iter().any(|o| o.stream == h.stream);
                if alone && self.streams.get(&h.stream).is_some_and(|f| f.stats.bytes == 0) {
                    self.streams.remove(&h.stream);
                }
            } else {
                i += 1;
            }
        }
    }

    /// Files open now (rotated-away ones still being read included).
    pub fn open_files(&self) -> usize {
        self.handles.len()
    }

    /// Ends following: closes every session still open (as at the end of a file) and returns
    /// what was seen.
    pub fn finish(mut self, out: &mut dyn FnMut(LogRecord)) -> FollowStats {
        for (name, feed) in std::mem::take(&mut self.streams) {
            let stats = feed.finish(out);
            self.stats.streams.push((name.to_string(), stats));
        }
        self.stats
    }
}

fn now_micros() -> crate::capture::Micros {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| crate::capture::Micros::try_from(d.as_micros()).unwrap_or(crate::capture::Micros::MAX))
}

/// Reads what `h` gained since the last round and feeds its whole lines; false when the handle
/// is to be dropped (compressed, or unreadable).
fn read_new(
    h: &mut Handle,
    feed: &mut Feed,
    buf: &mut [u8],
    stats: &mut FollowStats,
    skipped: &mut HashSet<Id>,
    out: &mut dyn FnMut(LogRecord),
) -> bool {
    let Ok(meta) = h.file.metadata() else { return false };
    if meta.len() < h.pos {
        // copytruncate: the same file starts again.
        stats.truncations += 1;
        if !h.partial.is_empty() {
            feed.problem("unfinished-line");
        }
        h.partial.clear();
        h.cut = false;
        h.pos = 0;
        h.fresh = true;
    }
    while h.pos < meta.len() {
        let n = match h.file.read_at(buf, h.pos) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                stats.errors.push(format!("{}: {e}", h.stream));
                return false;
            }
        };
        let Some(data) = buf.get(..n) else { break };
        if h.fresh {
            // The first bytes say whether this is a compressed (so old) file; too few to tell
            // wait for more (logrotate writes its .gz after creating it).
            let head = data.get(..4).unwrap_or(data);
            if Compression::of(head).is_some() {
                stats.compressed += 1;
                skipped.insert(h.id);
                return false;
            }
            let undecided = [&[0x1f, 0x8b][..], &[0x28, 0xb5, 0x2f, 0xfd][..]]
                .iter()
                .any(|m| head.len() < m.len() && m.starts_with(head));
            if undecided {
                return true;
            }
            h.fresh = false;
        }
        h.pos += n as u64;
        h.grew = Instant::now();
        feed.stats.bytes += n as u64;
        split_lines(h, data, feed, out);
    }
    true
}

/// Feeds every line `data` completes; keeps the unfinished rest in the handle.
fn split_lines(h: &mut Handle, mut data: &[u8], feed: &mut Feed, out: &mut dyn FnMut(LogRecord)) {
    while !data.is_empty() {
        let (take, done) = match memchr::memchr(b'\n', data) {
            Some(p) => (p, true),
            None => (data.len(), false),
        };
        let piece = data.get(..take).unwrap_or_default();
        let room = MAX_LINE.saturating_sub(h.partial.len());
        if piece.len() > room {
            h.cut = true;
        }
        h.partial.extend_from_slice(piece.get(..piece.len().min(room)).unwrap_or_default());
        data = data.get(take + usize::from(done)..).unwrap_or_default();
        if done {
            if h.partial.last() == Some(&b'\r') {
                h.partial.pop();
            }
            feed.line(&h.partial, h.cut, out);
            h.partial.clear();
            h.cut = false;
        }
    }
}

/// A follower on a thread of its own, polling every `interval` and sending each log session
/// down a bounded channel (a slow reader makes the follower wait, never grow).
pub struct Following {
    /// Log sessions as they close.
    pub sessions: Receiver<LogRecord>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<FollowStats>>,
}

/// Sends `r`, waiting while the channel is full, unless following stops or nobody listens.
fn send(tx: &SyncSender<LogRecord>, stop: &AtomicBool, mut r: LogRecord) {
    loop {
        match tx.try_send(r) {
            Ok(()) | Err(TrySendError::Disconnected(_)) => return,
            Err(TrySendError::Full(back)) => {
                if stop.load(Ordering::Relaxed) {
                    return;
                }
                r = back;
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }
}

/// Starts following `patterns` on a thread of its own; its first poll (which opens the files
/// there now, at their end) has run when this returns.
pub fn spawn(patterns: Vec<String>, opts: LogOptions, interval: Duration) -> std::io::Result<Following> {
    let (tx, rx) = std::sync::mpsc::sync_channel::<LogRecord>(4096);
    let stop = Arc::new(AtomicBool::new(false));
    let mut follower = Follower::new(patterns, opts);
    // The first round here, so that files there now are opened (while privileges last).
    let mut early = Vec::new();
    follower.poll(&mut |r| early.push(r));
    let flag = Arc::clone(&stop);
    let thread = std::thread::Builder::new().name("smtpscope-logs".into()).spawn(move || {
        for r in early {
            send(&tx, &flag, r);
        }
        loop {
            let stopping = flag.load(Ordering::Relaxed);
            follower.poll(&mut |r| send(&tx, &flag, r));
            if stopping {
                break;
            }
            std::thread::sleep(interval);
        }
        follower.finish(&mut |r| send(&tx, &flag, r))
    })?;
    Ok(Following { sessions: rx, stop, thread: Some(thread) })
}

impl Following {
    /// Stops after one last round (what was written until now is read) and returns what was
    /// seen; the sessions still open are sent before this returns, so drain `sessions` after.
    pub fn stop(mut self) -> (FollowStats, Vec<LogRecord>) {
        self.stop.store(true, Ordering::Relaxed);
        let mut rest = Vec::new();
        let stats = match self.thread.take() {
            Some(t) => {
                // Drained while the thread finishes, so a full channel cannot stall it.
                while !t.is_finished() {
                    rest.extend(self.sessions.try_iter());
                    std::thread::sleep(Duration::from_millis(5));
                }
                t.join().unwrap_or_default()
            }
            None => FollowStats::default(),
        };
        rest.extend(self.sessions.try_iter());
        (stats, rest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn opts() -> LogOptions {
        LogOptions { tz: jiff::tz::TimeZone::UTC, reference: Some(1_796_000_000_000_000), ..LogOptions::default() }
    }

    /// One whole Postfix smtpd session from `client`, pid `pid`.
    fn session(pid: u32, client: &str) -> String {
        format!(
            "Dec  7 01:40:00 mx postfix/smtpd[{pid}]: connect from c[{client}]\n\
             Dec  7 01:40:01 mx postfix/smtpd[{pid}]: disconnect from c[{client}] ehlo=1 mail=1 rcpt=1 data=1 quit=1 commands=5\n"
        )
    }

    fn append(path: &Path, text: &str) {
        let mut f = std::fs::OpenOptions::new().create(true).append(true).open(path).unwrap();
        f.write_all(text.as_bytes()).unwrap();
    }

    fn poll(f: &mut Follower) -> Vec<String> {
        let mut got = Vec::new();
        f.poll(&mut |r| got.push(r.client.map(|c| c.ip.to_string()).unwrap_or_default()));
        got
    }

    fn started(dir: &Path, pattern: &str) -> Follower {
        let mut f = Follower::new(vec![dir.join(pattern).to_string_lossy().into_owned()], opts());
        assert!(poll(&mut f).is_empty());
        f
    }

    #[test]
    fn a_file_there_at_the_start_is_read_from_its_end_and_then_as_it_grows() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("mail.log");
        append(&log, &session(1, "192.0.2.1"));
        let mut f = started(dir.path(), "mail.log");
        append(&log, &session(2, "192.0.2.2"));
        assert_eq!(poll(&mut f), ["192.0.2.2"]);
        assert!(poll(&mut f).is_empty(), "nothing new, nothing again");
        append(&log, &session(3, "192.0.2.3"));
        assert_eq!(poll(&mut f), ["192.0.2.3"]);
    }

    #[test]
    fn a_last_line_without_its_newline_waits_for_it() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("mail.log");
        append(&log, "");
        let mut f = started(dir.path(), "mail.log");
        let s = session(1, "192.0.2.1");
        let (a, b) = s.split_at(s.len() - 20);
        append(&log, a);
        assert!(poll(&mut f).is_empty(), "the disconnect line is not whole yet");
        append(&log, b);
        assert_eq!(poll(&mut f), ["192.0.2.1"]);
        assert_eq!(f.finish(&mut |_| {}).streams[0].1.problems.counts.len(), 0, "no line was cut");
    }

    #[test]
    fn create_mode_rotation_finishes_the_old_file_then_reads_the_new_one_from_its_start() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("mail.log");
        append(&log, "");
        let mut f = started(dir.path(), "mail.log");
        f.linger = Duration::ZERO;
        // A session whose connect line is in the old file and its disconnect in the new one.
        let straddling = session(7, "192.0.2.7");
        let (connect, disconnect) = straddling.split_at(straddling.find('\n').unwrap() + 1);
        append(&log, &session(1, "192.0.2.1"));
        append(&log, connect);
        std::fs::rename(&log, dir.path().join("mail.log.1")).unwrap();
        // The writer has not reopened yet: it still writes to the renamed file.
        append(&dir.path().join("mail.log.1"), &session(2, "192.0.2.2"));
        append(&log, disconnect);
        append(&log, &session(3, "192.0.2.3"));
        assert_eq!(poll(&mut f), ["192.0.2.1", "192.0.2.2", "192.0.2.7", "192.0.2.3"]);
        assert_eq!(f.open_files(), 1, "the renamed file, no longer named and not growing, is let go");
        append(&log, &session(4, "192.0.2.4"));
        assert_eq!(poll(&mut f), ["192.0.2.4"]);
        let stats = f.finish(&mut |_| {});
        assert_eq!(stats.rotations, 1);
        assert_eq!(stats.streams.len(), 1, "both files are one stream: {:?}", stats.streams);
        assert_eq!(stats.streams[0].1.sessions, 5);
    }

    #[test]
    fn a_glob_also_matching_the_rotated_name_reads_each_file_once_and_never_a_compressed_one() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("mail.log");
        append(&log, "");
        let mut f = started(dir.path(), "mail.log*");
        append(&log, &session(1, "192.0.2.1"));
        std::fs::rename(&log, dir.path().join("mail.log.1")).unwrap();
        append(&log, &session(2, "192.0.2.2"));
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(session(9, "192.0.2.9").as_bytes()).unwrap();
        std::fs::write(dir.path().join("mail.log.2.gz"), gz.finish().unwrap()).unwrap();
        let mut got = poll(&mut f);
        got.sort();
        assert_eq!(got, ["192.0.2.1", "192.0.2.2"]);
        append(&dir.path().join("mail.log.1"), &session(3, "192.0.2.3"));
        assert_eq!(poll(&mut f), ["192.0.2.3"]);
        let stats = f.finish(&mut |_| {});
        assert_eq!(stats.compressed, 1);
        assert_eq!(stats.streams.len(), 1, "the .gz is no followed stream: {:?}", stats.streams);
        assert_eq!(stats.rotations, 0, "mail.log.1 is still named by the glob");
    }

    #[test]
    fn copytruncate_starts_again_at_the_beginning() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("mail.log");
        append(&log, &session(1, "192.0.2.1"));
        let mut f = started(dir.path(), "mail.log");
        append(&log, &session(2, "192.0.2.2"));
        assert_eq!(poll(&mut f), ["192.0.2.2"]);
        // logrotate copies the file, then truncates it in place; the writer goes on appending.
        std::fs::copy(&log, dir.path().join("mail.log.1")).unwrap();
        std::fs::OpenOptions::new().write(true).open(&log).unwrap().set_len(0).unwrap();
        append(&log, &session(3, "192.0.2.3"));
        assert_eq!(poll(&mut f), ["192.0.2.3"]);
        assert_eq!(f.finish(&mut |_| {}).truncations, 1);
    }

    #[test]
    fn a_vanished_file_is_read_to_its_end_and_one_that_appears_later_from_its_start() {
        let dir = tempfile::tempdir().unwrap();
        let mut f = started(dir.path(), "*.log");
        f.linger = Duration::ZERO;
        let a = dir.path().join("a.log");
        append(&a, &session(1, "192.0.2.1"));
        assert_eq!(poll(&mut f), ["192.0.2.1"], "a file that appears later is read from its start");
        let mut w = std::fs::OpenOptions::new().append(true).open(&a).unwrap();
        std::fs::remove_file(&a).unwrap();
        w.write_all(session(2, "192.0.2.2").as_bytes()).unwrap();
        assert_eq!(poll(&mut f), ["192.0.2.2"], "what was written before it vanished");
        assert_eq!(f.open_files(), 0);
        let stats = f.finish(&mut |_| {});
        assert_eq!(stats.rotations, 1);
        assert!(stats.errors.is_empty());
    }

    #[test]
    fn a_partial_line_cut_off_by_a_rotation_is_counted_and_memory_stays_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("mail.log");
        append(&log, "");
        let mut f = started(dir.path(), "mail.log");
        f.linger = Duration::ZERO;
        append(&log, &"x".repeat(3 * MAX_LINE));
        assert!(poll(&mut f).is_empty());
        assert!(f.handles.iter().all(|h| h.partial.len() <= MAX_LINE));
        std::fs::remove_file(&log).unwrap();
        poll(&mut f);
        let stats = f.finish(&mut |_| {});
        assert_eq!(stats.streams[0].1.problems.get("unfinished-line"), 1);
    }

    #[test]
    fn the_thread_sends_sessions_and_its_last_round_reads_what_was_written_before_stop() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("mail.log");
        append(&log, "");
        let following = spawn(vec![log.to_string_lossy().into_owned()], opts(), Duration::from_millis(10)).unwrap();
        append(&log, &session(1, "192.0.2.1"));
        let first = following.sessions.recv_timeout(Duration::from_secs(10)).unwrap();
        assert_eq!(first.client.unwrap().ip.to_string(), "192.0.2.1");
        append(&log, &session(2, "192.0.2.2"));
        // An open session too: closed by the end of following.
        append(&log, "Dec  7 01:40:00 mx postfix/smtpd[3]: connect from c[192.0.2.3]\n");
        let (stats, rest) = following.stop();
        let ips: Vec<String> = rest.iter().map(|r| r.client.unwrap().ip.to_string()).collect();
        assert_eq!(ips, ["192.0.2.2", "192.0.2.3"]);
        assert_eq!(stats.streams[0].1.sessions, 3);
    }
}
