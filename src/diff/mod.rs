//! The two-point diff: the same sessions captured on both sides of a firewall, WAN optimizer
//! or gateway, matched by their SMTP content, and what the box between changed.
//!
//! A front end over two sets of session records ([`point::load`]), beside `report`, `check`
//! and `pairs`: the clock offset between the captures first ([`matching`]), then pairs within
//! the skew, then per pair the changes and the kind of box that explains them ([`compare`]).

pub mod compare;
pub mod matching;
pub mod output;
pub mod point;
pub mod view;

use std::path::PathBuf;

use thiserror::Error;

use crate::capture::{CaptureError, Micros};
pub use compare::{Change, Comparison, Which};
pub use matching::PairedBy;
pub use point::{Observed, Point};

/// Errors reading a capture point.
#[derive(Debug, Error)]
pub enum DiffError {
    /// A file could not be opened or read.
    #[error(transparent)]
    Capture(#[from] CaptureError),
    /// A file held no packet (after the filter).
    #[error("{0}: no packets (an empty capture, or nothing passed the filter)")]
    Empty(String),
    /// A side was given no file.
    #[error("point {0} has no capture file")]
    NoInput(&'static str),
    /// A directory or glob named no capture file.
    #[error("{0}: no capture file there")]
    NoFiles(String),
    /// A glob that does not parse.
    #[error("{0}: {1}")]
    BadGlob(String, String),
}

/// The files one `A`/`B` argument names: a file as it is, a directory's `.pcap`/`.pcapng`/`.cap`
/// files, or the files a (quoted) glob matches; sorted by name (their packets are merged by time).
pub fn expand_input(arg: &std::path::Path) -> Result<Vec<PathBuf>, DiffError> {
    let shown = arg.display().to_string();
    if arg.is_dir() {
        let mut v: Vec<PathBuf> = std::fs::read_dir(arg)
            .map_err(|e| DiffError::NoFiles(format!("{shown} ({e})")))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.is_file()
                    && p.extension()
                        .and_then(|x| x.to_str())
                        .is_some_and(|x| ["pcap", "pcapng", "cap"].contains(&x.to_ascii_lowercase().as_str()))
            })
            .collect();
        v.sort();
        return if v.is_empty() { Err(DiffError::NoFiles(shown)) } else { Ok(v) };
    }
    if arg.exists() || !shown.contains(['*', '?', '[']) {
        // a missing plain path is named by the capture layer when it fails to open
        return Ok(vec![arg.to_path_buf()]);
    }
    let paths = glob::glob(&shown).map_err(|e| DiffError::BadGlob(shown.clone(), e.to_string()))?;
    let mut v: Vec<PathBuf> = paths.filter_map(Result::ok).filter(|p| p.is_file()).collect();
    v.sort();
    if v.is_empty() {
        return Err(DiffError::NoFiles(shown));
    }
    Ok(v)
}

/// Matching settings.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// Largest clock offset looked for (`--max-offset`, default 24 h).
    pub max_offset: Micros,
    /// Largest difference of corrected start times within a pair (`--max-skew`, default 2 s).
    pub max_skew: Micros,
    /// How long after a session a relay's onward session may start (`--relay-window`, 30 s).
    pub relay_window: Micros,
}

impl Default for Settings {
    fn default() -> Self {
        Self { max_offset: 24 * 3600 * 1_000_000, max_skew: 2_000_000, relay_window: 30_000_000 }
    }
}

/// Why a session was seen at one point only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// A SYN without SYN-ACK at that point.
    Blocked,
    /// Seen at the client's side only, while the other capture ran: the box answered it.
    AnsweredByBox,
    /// Its time lies outside the other capture.
    OutsideOtherCapture,
    /// None of the above.
    Unknown,
}

impl Reason {
    /// Name in the output.
    pub fn name(self) -> &'static str {
        match self {
            Reason::Blocked => "blocked",
            Reason::AnsweredByBox => "answered-by-box",
            Reason::OutsideOtherCapture => "outside-other-capture",
            Reason::Unknown => "unknown",
        }
    }
}

/// One line of the result: a session at both points, or at one with the reason.
#[derive(Debug, Clone)]
pub struct DiffEntry {
    /// Index in point a's sessions.
    pub a: Option<usize>,
    /// Index in point b's sessions.
    pub b: Option<usize>,
    /// For a pair: what changed.
    pub comparison: Option<Comparison>,
    /// For a session seen at one point only.
    pub reason: Option<Reason>,
}

/// The whole diff.
#[derive(Debug, Clone)]
pub struct Diff {
    /// Point a.
    pub a: Point,
    /// Point b.
    pub b: Point,
    /// b's clock minus a's, when sessions with the same content gave one.
    pub offset: Option<Micros>,
    /// Entries in time order (a's clock).
    pub entries: Vec<DiffEntry>,
}

impl Diff {
    /// Sessions seen at both points.
    pub fn matched(&self) -> usize {
        self.entries.iter().filter(|e| e.a.is_some() && e.b.is_some()).count()
    }

    /// Sessions seen only at a.
    pub fn only_a(&self) -> usize {
        self.entries.iter().filter(|e| e.b.is_none()).count()
    }

    /// Sessions seen only at b.
    pub fn only_b(&self) -> usize {
        self.entries.iter().filter(|e| e.a.is_none()).count()
    }

    /// Any change or unmatched session (`--exit-code`).
    pub fn differs(&self) -> bool {
        self.entries.iter().any(|e| e.reason.is_some() || e.comparison.as_ref().is_some_and(|c| !c.changes.is_empty()))
    }
}

/// Reads both points and diffs them.
pub fn run(a: &[PathBuf], b: &[PathBuf], filter: Option<&str>, set: &Settings) -> Result<Diff, DiffError> {
    if a.is_empty() {
        return Err(DiffError::NoInput("A"));
    }
    if b.is_empty() {
        return Err(DiffError::NoInput("B"));
    }
    let pa = point::load(a, filter)?;
    let pb = point::load(b, filter)?;
    Ok(diff(pa, pb, set))
}

/// Diffs two points already read.
pub fn diff(a: Point, b: Point, set: &Settings) -> Diff {
    let m = matching::match_points(&a, &b, set);
    let off = m.offset.unwrap_or(0);
    let mut entries = Vec::with_capacity(a.sessions.len() + b.sessions.len());
    let (mut seen_a, mut seen_b) = (vec![false; a.sessions.len()], vec![false; b.sessions.len()]);
    let mut votes = [0usize; 2];
    for &(i, j, by) in &m.pairs {
        seen_a[i] = true;
        seen_b[j] = true;
        let c = compare::compare(&a.sessions[i], &b.sessions[j], by, off);
        match c.server_side {
            Some(Which::A) => votes[0] += 1,
            Some(Which::B) => votes[1] += 1,
            None => {}
        }
        entries.push((a.sessions[i].start(), DiffEntry { a: Some(i), b: Some(j), comparison: Some(c), reason: None }));
    }
    // the point nearer the server, as most pairs say: a session seen only at the other one
    // while both captures ran was answered by the box
    let server = match votes[0].cmp(&votes[1]) {
        std::cmp::Ordering::Greater => Some(Which::A),
        std::cmp::Ordering::Less => Some(Which::B),
        std::cmp::Ordering::Equal => None,
    };
    for (i, o) in a.sessions.iter().enumerate().filter(|(i, _)| !seen_a[*i]) {
        let r = reason(o, o.start() + off, &b, server == Some(Which::B), set);
        entries.push((o.start(), DiffEntry { a: Some(i), b: None, comparison: None, reason: Some(r) }));
    }
    for (j, o) in b.sessions.iter().enumerate().filter(|(j, _)| !seen_b[*j]) {
        let r = reason(o, o.start() - off, &a, server == Some(Which::A), set);
        entries.push((o.start() - off, DiffEntry { a: None, b: Some(j), comparison: None, reason: Some(r) }));
    }
    entries.sort_by_key(|e| e.0);
    Diff { a, b, offset: m.offset, entries: entries.into_iter().map(|e| e.1).collect() }
}

/// Why `o` (starting at `t_other` on the other point's clock) was not seen there.
fn reason(o: &Observed, t_other: Micros, other: &Point, client_side: bool, set: &Settings) -> Reason {
    // the other point saw a SYN towards the same port go unanswered then
    let from = other.unanswered.partition_point(|(t, _)| *t < t_other - set.max_skew);
    let port = o.session.server.port();
    let mut near = other.unanswered.get(from..).unwrap_or(&[]).iter().take_while(|(t, _)| *t <= t_other + set.max_skew);
    if near.any(|(_, s)| s.port() == port) {
        return Reason::Blocked;
    }
    match other.span {
        Some((first, last)) if t_other < first || t_other > last => Reason::OutsideOtherCapture,
        None => Reason::OutsideOtherCapture,
        Some(_) if client_side && o.session.banner_code.is_some() => Reason::AnsweredByBox,
        Some(_) => Reason::Unknown,
    }
}
