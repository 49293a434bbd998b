//! Finished sessions kept packed, so the UI holds a week of them in little memory.
//!
//! A finished session is serialized (CBOR, with ciborium) and compressed with zstd against a
//! dictionary trained on the run's own first sessions: sessions of one capture share most of
//! their words (EHLO lines, replies, certificate names, key names), which a per-session frame
//! cannot exploit but a dictionary can. Rows are unpacked when they are shown (a screenful a
//! frame), filtered again or exported. Until the dictionary is ready (trained on a thread of
//! its own, so no frame waits for it) rows stay whole, and are packed once it is.

use std::io;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use zstd::bulk::{Compressor, Decompressor};
use zstd::dict::{DecoderDictionary, EncoderDictionary};

use crate::session::Session;

/// Finished sessions sampled before the dictionary is trained.
pub const SAMPLES: usize = 512;
/// Dictionary size.
const DICT_BYTES: usize = 64 * 1024;
/// zstd level: packing runs on the UI thread, within its frame budget.
const LEVEL: i32 = 3;

/// Reads packed sessions back; shared with export threads.
pub struct Codec {
    dec: Mutex<Decompressor<'static>>,
}

impl Codec {
    /// The session in `blob`, or None if it does not read back (never expected).
    pub fn unpack(&self, blob: &[u8]) -> Option<Session> {
        let (len, frame) = blob.split_first_chunk::<4>()?;
        let len = u32::from_le_bytes(*len) as usize;
        let raw = self.dec.lock().unwrap_or_else(|e| e.into_inner()).decompress(frame, len).ok()?;
        ciborium::from_reader(raw.as_slice()).ok()
    }
}

enum State {
    Sampling(Vec<Vec<u8>>),
    Training(JoinHandle<io::Result<Vec<u8>>>),
    Ready(Compressor<'static>, Arc<Codec>),
    /// Training failed: rows stay whole.
    Off,
}

/// Packs finished sessions.
pub struct Packer {
    state: State,
    buf: Vec<u8>,
    samples: usize,
}

impl Default for Packer {
    fn default() -> Self {
        Self::new()
    }
}

fn serialize(s: &Session, buf: &mut Vec<u8>) -> bool {
    buf.clear();
    ciborium::into_writer(s, &mut *buf).is_ok()
}

impl Packer {
    /// A packer that starts by sampling.
    pub fn new() -> Self {
        Self::with_samples(SAMPLES)
    }

    /// A packer that trains its dictionary on the first `n` finished sessions.
    pub fn with_samples(n: usize) -> Self {
        Self { state: State::Sampling(Vec::new()), buf: Vec::new(), samples: n.max(1) }
    }

    /// The codec, once the dictionary is ready.
    pub fn codec(&self) -> Option<&Arc<Codec>> {
        match &self.state {
            State::Ready(_, c) => Some(c),
            _ => None,
        }
    }

    /// Packs `s` (None while the dictionary is not ready: keep it whole).
    pub fn pack(&mut self, s: &Session) -> Option<Arc<[u8]>> {
        match &mut self.state {
            State::Ready(comp, _) => {
                if !serialize(s, &mut self.buf) {
                    return None;
                }
                let len = u32::try_from(self.buf.len()).ok()?;
                let frame = comp.compress(&self.buf).ok()?;
                let mut blob = Vec::with_capacity(4 + frame.len());
                blob.extend_from_slice(&len.to_le_bytes());
                blob.extend_from_slice(&frame);
                Some(Arc::from(blob))
            }
            State::Sampling(samples) => {
                if serialize(s, &mut self.buf) {
                    samples.push(self.buf.clone());
                }
                if samples.len() >= self.samples {
                    let samples = std::mem::take(samples);
                    let train = std::thread::Builder::new()
                        .name("smtpscope-dict".into())
                        .spawn(move || zstd::dict::from_samples(&samples, DICT_BYTES));
                    self.state = match train {
                        Ok(h) => State::Training(h),
                        Err(_) => State::Off,
                    };
                }
                None
            }
            State::Training(_) | State::Off => None,
        }
    }

    /// Takes the trained dictionary if it is there; true when it just became ready (the rows
    /// kept whole meanwhile can now be packed).
    pub fn poll(&mut self) -> bool {
        let State::Training(h) = &self.state else { return false };
        if !h.is_finished() {
            return false;
        }
        let State::Training(h) = std::mem::replace(&mut self.state, State::Off) else { return false };
        let ready = h.join().ok().and_then(Result::ok).and_then(|dict| {
            // Digested once: a raw dictionary is digested again for every frame. Leaked, so
            // the contexts can borrow it for the rest of the run (one per run, ≈ 64 KiB).
            let enc: &'static EncoderDictionary<'static> = Box::leak(Box::new(EncoderDictionary::copy(&dict, LEVEL)));
            let dec: &'static DecoderDictionary<'static> = Box::leak(Box::new(DecoderDictionary::copy(&dict)));
            let comp = Compressor::with_prepared_dictionary(enc).ok()?;
            let dec = Decompressor::with_prepared_dictionary(dec).ok()?;
            Some((comp, Arc::new(Codec { dec: Mutex::new(dec) })))
        });
        if let Some((comp, codec)) = ready {
            self.state = State::Ready(comp, codec);
            return true;
        }
        false
    }

    /// Waits for the dictionary (tests, and a store that must pack now).
    pub fn wait(&mut self) -> bool {
        if let State::Training(h) = &self.state {
            while !h.is_finished() {
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
        }
        self.poll()
    }
}
