//! Finished sessions kept packed, so the UI holds a week of them in little memory.
//!
//! A finished session is serialized (CBOR, with ciborium) and compressed with zstd against a
//! dictionary trained on the run's own first sessions: sessions of one capture share most of
//! their words (EHLO lines, replies, certificate names, key names), which a per-session frame
//! cannot exploit but a dictionary can. Packing runs beside the capture (the feed's packer
//! thread), never on the UI thread; rows are unpacked when they are shown (a screenful a frame),
//! filtered again (a budget of rows a frame) or exported. Until the dictionary is ready (trained
//! on a thread of its own) rows go out whole; the packer keeps their serialized form and packs
//! it once the dictionary is there ([`Packer::take_repacked`]).

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
/// zstd level: fast, as packing keeps pace with the capture.
const LEVEL: i32 = 3;

/// Reads packed sessions back; shared with export threads.
pub struct Codec {
    dec: Mutex<Decompressor<'static>>,
}

impl std::fmt::Debug for Codec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Codec")
    }
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

/// Serialized samples with their session ids.
type Samples = (Vec<u64>, Vec<Vec<u8>>);

enum State {
    Sampling(Samples),
    Training(JoinHandle<(io::Result<Vec<u8>>, Samples)>),
    Ready(Compressor<'static>, Arc<Codec>),
    /// Training failed: rows stay whole.
    Off,
}

/// Packs finished sessions.
pub struct Packer {
    state: State,
    buf: Vec<u8>,
    samples: usize,
    /// Sessions serialized while the dictionary was trained, to be packed once it is ready.
    waiting: Samples,
    /// The samples and the waiting sessions packed once the dictionary was ready, by id.
    repacked: Vec<(u64, Arc<[u8]>)>,
}

impl Default for Packer {
    fn default() -> Self {
        Self::new()
    }
}

/// A packed row: the serialized length, then the zstd frame.
fn compress(comp: &mut Compressor<'static>, raw: &[u8]) -> Option<Arc<[u8]>> {
    let len = u32::try_from(raw.len()).ok()?;
    let frame = comp.compress(raw).ok()?;
    let mut blob = Vec::with_capacity(4 + frame.len());
    blob.extend_from_slice(&len.to_le_bytes());
    blob.extend_from_slice(&frame);
    Some(Arc::from(blob))
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
        Self {
            state: State::Sampling((Vec::new(), Vec::new())),
            buf: Vec::new(),
            samples: n.max(1),
            waiting: (Vec::new(), Vec::new()),
            repacked: Vec::new(),
        }
    }

    /// The codec, once the dictionary is ready.
    pub fn codec(&self) -> Option<&Arc<Codec>> {
        match &self.state {
            State::Ready(_, c) => Some(c),
            _ => None,
        }
    }

    /// Packs `s` (None while the dictionary is not ready: keep it whole; a sampled session is
    /// packed later, see [`Packer::take_repacked`]).
    pub fn pack(&mut self, s: &Session) -> Option<Arc<[u8]>> {
        match &mut self.state {
            State::Ready(comp, _) => {
                if !serialize(s, &mut self.buf) {
                    return None;
                }
                compress(comp, &self.buf)
            }
            State::Sampling((ids, samples)) => {
                if serialize(s, &mut self.buf) {
                    ids.push(s.id);
                    samples.push(self.buf.clone());
                }
                if samples.len() >= self.samples {
                    let taken = (std::mem::take(ids), std::mem::take(samples));
                    let train = std::thread::Builder::new().name("smtpscope-dict".into()).spawn(move || {
                        let dict = zstd::dict::from_samples(&taken.1, DICT_BYTES);
                        (dict, taken)
                    });
                    self.state = match train {
                        Ok(h) => State::Training(h),
                        Err(_) => State::Off,
                    };
                }
                None
            }
            State::Training(_) => {
                if serialize(s, &mut self.buf) {
                    self.waiting.0.push(s.id);
                    self.waiting.1.push(self.buf.clone());
                }
                None
            }
            State::Off => None,
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
        let waiting = std::mem::take(&mut self.waiting);
        let Ok((dict, (ids, samples))) = h.join() else { return false };
        let ready = dict.ok().and_then(|dict| {
            // Digested once: a raw dictionary is digested again for every frame. Leaked, so
            // the contexts can borrow it for the rest of the run (one per run, ≈ 64 KiB).
            let enc: &'static EncoderDictionary<'static> = Box::leak(Box::new(EncoderDictionary::copy(&dict, LEVEL)));
            let dec: &'static DecoderDictionary<'static> = Box::leak(Box::new(DecoderDictionary::copy(&dict)));
            let comp = Compressor::with_prepared_dictionary(enc).ok()?;
            let dec = Decompressor::with_prepared_dictionary(dec).ok()?;
            Some((comp, Arc::new(Codec { dec: Mutex::new(dec) })))
        });
        let Some((mut comp, codec)) = ready else { return false };
        self.repacked = ids
            .into_iter()
            .chain(waiting.0)
            .zip(samples.iter().chain(&waiting.1))
            .filter_map(|(id, raw)| Some((id, compress(&mut comp, raw)?)))
            .collect();
        self.state = State::Ready(comp, codec);
        true
    }

    /// Sessions serialized and waiting for the dictionary.
    pub fn backlog(&self) -> usize {
        self.waiting.0.len()
    }

    /// The sessions sent on whole while there was no dictionary, packed now that it is ready.
    pub fn take_repacked(&mut self) -> Vec<(u64, Arc<[u8]>)> {
        std::mem::take(&mut self.repacked)
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
