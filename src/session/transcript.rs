//! A bounded SMTP transcript: the dialogue as it crossed the wire, for the terminal UI.
//!
//! Recorded only when the engine is asked to (the report path never pays for it). Message
//! bodies are summarised as byte counts, never stored; AUTH secrets are masked unless the user
//! asked for credentials (`--show-credentials`). Lines beyond the bounds are counted, not kept.

use super::Side;

/// Most entries kept per session.
pub const MAX_ENTRIES: usize = 256;
/// Most text bytes kept per session.
pub const MAX_BYTES: usize = 32 * 1024;
/// Longest line kept; longer lines are cut (and marked).
pub const MAX_LINE: usize = 512;
/// Most frame spans of masked secrets remembered; beyond them every later client frame counts
/// as carrying one (masking too much beats showing a password).
pub const MAX_SECRET_SPANS: usize = 32;

/// A line's text, cut at [`MAX_LINE`].
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct Text {
    /// The bytes as sent (without the line ending), up to [`MAX_LINE`].
    pub bytes: Vec<u8>,
    /// The line was longer.
    pub cut: bool,
}

impl Text {
    fn of(line: &[u8]) -> Self {
        let cut = line.len() > MAX_LINE;
        Self { bytes: line.get(..line.len().min(MAX_LINE)).unwrap_or(line).to_vec(), cut }
    }
}

/// An AUTH secret on a command line.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Secret {
    /// Crossed, not kept.
    Masked,
    /// Kept because the user asked (`--show-credentials`): the raw (base64) text.
    Shown(Vec<u8>),
}

/// How the server answered the end of a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum BodyOutcome {
    /// No reply seen (yet).
    Pending,
    /// 2xx after the end of data.
    Accepted(u16),
    /// Anything else (None: a reply without a code).
    Rejected(Option<u16>),
}

/// One line (or summary) of the dialogue.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Entry {
    /// A client line. AUTH lines keep their verb and mechanism; the secret is in `secret`.
    Command {
        /// Frame.
        frame: u64,
        /// Text (for AUTH: without the secret).
        text: Text,
        /// An AUTH secret on this line.
        secret: Option<Secret>,
    },
    /// A server reply line.
    Reply {
        /// Frame.
        frame: u64,
        /// Reply code, None for a line without one.
        code: Option<u16>,
        /// The whole line, code included.
        text: Text,
    },
    /// A DATA body: counted, never stored.
    Body {
        /// Frame where the body started.
        frame: u64,
        /// Body bytes (the terminating dot line included).
        bytes: u64,
        /// The body's end (`CRLF.CRLF`) was seen.
        ended: bool,
        /// The server's answer.
        outcome: BodyOutcome,
    },
    /// The client's next bytes after the upgrade's 220 were TLS: the dialogue goes encrypted.
    TlsStart {
        /// Frame of the first TLS bytes.
        frame: u64,
    },
    /// Bytes missing from the capture on one side.
    Gap {
        /// Which side.
        side: Side,
    },
    /// Something the SMTP machine noticed, in words.
    Note {
        /// Frame.
        frame: u64,
        /// Text.
        text: String,
    },
}

/// The transcript of one session.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Transcript {
    /// Entries in the order they were seen.
    pub entries: Vec<Entry>,
    /// Entries dropped once the bounds were reached.
    pub omitted: u64,
    /// Frames (first to last) of the client lines whose AUTH secret was masked, kept even
    /// when the entry itself was dropped: the packet view masks those frames too.
    pub secret_frames: Vec<(u64, u64)>,
    /// Past [`MAX_SECRET_SPANS`]: every client frame from this one on may carry a secret.
    pub secrets_beyond: Option<u64>,
    bytes: usize,
    body: Option<usize>,
}

impl Transcript {
    /// An empty transcript.
    pub fn new() -> Self {
        Self::default()
    }

    fn push(&mut self, e: Entry, len: usize) {
        if self.entries.len() >= MAX_ENTRIES || self.bytes + len > MAX_BYTES {
            self.omitted += 1;
            return;
        }
        self.bytes += len;
        self.entries.push(e);
    }

    /// A client line.
    pub fn command(&mut self, frame: u64, line: &[u8]) {
        let text = Text::of(line);
        let n = text.bytes.len();
        self.push(Entry::Command { frame, text, secret: None }, n);
    }

    /// A client line carrying an AUTH secret, sent over `frames` (a line may span segments):
    /// `visible` is shown, the secret masked unless `keep` (then its raw text is kept).
    pub fn secret(&mut self, frames: std::ops::RangeInclusive<u64>, visible: &[u8], secret: &[u8], keep: bool) {
        let (first, frame) = (*frames.start(), *frames.end());
        if !keep {
            if self.secret_frames.len() < MAX_SECRET_SPANS {
                self.secret_frames.push((first.min(frame), frame));
            } else {
                self.secrets_beyond.get_or_insert(first.min(frame));
            }
        }
        let text = Text::of(visible);
        let secret = if keep { Secret::Shown(Text::of(secret).bytes) } else { Secret::Masked };
        let n = text.bytes.len() + if let Secret::Shown(b) = &secret { b.len() } else { 0 };
        self.push(Entry::Command { frame, text, secret: Some(secret) }, n);
    }

    /// A server reply line.
    pub fn reply(&mut self, frame: u64, code: Option<u16>, line: &[u8]) {
        let text = Text::of(line);
        let n = text.bytes.len();
        self.push(Entry::Reply { frame, code, text }, n);
    }

    /// A DATA body starts.
    pub fn body_start(&mut self, frame: u64) {
        let before = self.entries.len();
        self.push(Entry::Body { frame, bytes: 0, ended: false, outcome: BodyOutcome::Pending }, 0);
        self.body = (self.entries.len() > before).then_some(before);
    }

    /// `n` more body bytes from `at`; `ended` when the terminating dot line was among them.
    pub fn body_bytes(&mut self, at: u64, n: u64, end: bool) {
        if let Some(Entry::Body { frame, bytes, ended, .. }) = self.body.and_then(|i| self.entries.get_mut(i)) {
            if *bytes == 0 {
                // The body starts with its first bytes, not with the 354 that invited it.
                *frame = at;
            }
            *bytes += n;
            *ended |= end;
        }
    }

    /// The server answered the end of the current body.
    pub fn body_reply(&mut self, code: Option<u16>) {
        if let Some(Entry::Body { outcome, .. }) = self.body.take().and_then(|i| self.entries.get_mut(i)) {
            *outcome = match code {
                Some(c) if (200..300).contains(&c) => BodyOutcome::Accepted(c),
                c => BodyOutcome::Rejected(c),
            };
        }
    }

    /// TLS starts here.
    pub fn tls_start(&mut self, frame: u64) {
        self.push(Entry::TlsStart { frame }, 0);
    }

    /// Bytes were lost on `side`.
    pub fn gap(&mut self, side: Side) {
        self.push(Entry::Gap { side }, 0);
    }

    /// A remark of the SMTP machine.
    pub fn note(&mut self, frame: u64, text: String) {
        let n = text.len();
        self.push(Entry::Note { frame, text }, n);
    }

    /// Whether client frame `frame` carried a masked AUTH secret.
    pub fn secret_in(&self, frame: u64) -> bool {
        self.secrets_beyond.is_some_and(|f| frame >= f)
            || self.secret_frames.iter().any(|(a, b)| (*a..=*b).contains(&frame))
    }

    /// Text bytes held.
    pub fn bytes(&self) -> usize {
        self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_beyond_the_bound_are_counted_not_kept() {
        let mut t = Transcript::new();
        for i in 0..MAX_ENTRIES + 10 {
            t.command(i as u64, b"NOOP");
        }
        assert_eq!(t.entries.len(), MAX_ENTRIES);
        assert_eq!(t.omitted, 10);
    }

    #[test]
    fn bytes_are_bounded_too() {
        let mut t = Transcript::new();
        let long = vec![b'x'; 4000];
        for _ in 0..200 {
            t.command(1, &long);
        }
        assert!(t.bytes() <= MAX_BYTES);
        assert!(t.omitted > 0);
        assert!(matches!(&t.entries[0], Entry::Command { text, .. } if text.cut && text.bytes.len() == MAX_LINE));
    }

    #[test]
    fn a_masked_secret_keeps_no_bytes_of_it() {
        let mut t = Transcript::new();
        t.secret(2..=3, b"AUTH PLAIN", b"AGpvZQBzZWNyZXQ=", false);
        let Entry::Command { text, secret, .. } = &t.entries[0] else { panic!() };
        assert_eq!(text.bytes, b"AUTH PLAIN");
        assert_eq!(secret, &Some(Secret::Masked));
        assert!(t.secret_in(2) && t.secret_in(3) && !t.secret_in(4), "its frames are remembered");
    }

    #[test]
    fn secret_frames_stay_bounded_and_err_towards_masking() {
        let mut t = Transcript::new();
        for f in 0..MAX_SECRET_SPANS as u64 + 5 {
            t.secret(f * 10..=f * 10, b"", b"c2VjcmV0", false);
        }
        assert_eq!(t.secret_frames.len(), MAX_SECRET_SPANS);
        assert!(t.secret_in(MAX_SECRET_SPANS as u64 * 10 + 1), "past the bound every later frame counts");
        t.secret(1000..=1000, b"", b"c2VjcmV0", true);
        assert!(t.secret_frames.len() == MAX_SECRET_SPANS, "a secret kept on request is not masked");
    }

    #[test]
    fn a_body_is_a_count_with_its_outcome() {
        let mut t = Transcript::new();
        t.body_start(6);
        t.body_bytes(7, 1000, false);
        t.body_bytes(8, 5, true);
        t.body_reply(Some(250));
        assert_eq!(
            t.entries,
            [Entry::Body { frame: 7, bytes: 1005, ended: true, outcome: BodyOutcome::Accepted(250) }]
        );
    }
}
