//! Files with two threads: the caller's thread reads the files, decodes each frame down to its
//! TCP segment and runs the sink (display filter, cross-checks, record formatting and writing);
//! the engine (flows, SMTP/TLS, verdicts) runs on a thread of its own.
//!
//! The engine was the critical path when it also formatted the records while a second thread
//! did nothing but read: this puts the per-record work beside the reading, so each thread has
//! a share of the run. There is still one engine, so sessions end in exactly the order of
//! `--threads 1` and the records are byte-identical.
//!
//! Packets travel in batches from a fixed pool. A batch goes to the engine full and comes back
//! with the sessions that ended while its packets were processed, so the sink sees them in
//! order and one channel each way suffices: the reader never waits for a batch while the engine
//! waits for room to hand back sessions. The reader stops exactly where the engine would with
//! one thread (`-c`, the end of the input, the stop flag), so packet counts and the sources' end
//! states in the summary are those of a single-threaded run.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::Arc;

use super::{progress_of, sources_of, Options, Progress, Sink, Ticker};
use crate::capture::{FileReader, Micros, Packet};
use crate::decode::{Decoder, SegmentAt, Skip};
use crate::engine::Engine;
use crate::session::Session;
use crate::summary::Summary;

/// Packets per batch (a batch is also closed when its bytes pass [`BATCH_BYTES`]). Each batch
/// costs a wake-up of the other thread each way: at 512 packets (6 batches of 256 KiB) those
/// wake-ups (futex) were 1-3 % of all samples on the 2 GB lab capture.
const BATCH_PACKETS: usize = 1024;
/// Option and payload bytes per batch (the frames' headers stay behind: see [`Item::seg`]).
const BATCH_BYTES: usize = 512 * 1024;
/// Batches in all (≈ 2 MiB with their segments, allocated once): one being filled, one being
/// processed, one in flight, so that the engine does not wait on a record write, and records
/// follow their packets closely.
const POOL: usize = 3;
/// Sessions per message when the end of the input finishes every open flow at once.
const FINISH_CHUNK: usize = 256;

struct Item {
    ts: Micros,
    orig_len: u32,
    linktype: i32,
    source: usize,
    frame: u64,
    /// Decoded on the reading thread; its option and payload bytes are in the batch (the
    /// frame itself is not: the engine needs nothing else from it).
    seg: Result<SegmentAt, Skip>,
}

#[derive(Default)]
struct Batch {
    data: Vec<u8>,
    items: Vec<Item>,
    /// Filled by the engine: the sessions that ended in this batch, in order.
    sessions: Vec<Session>,
    /// Filled by the engine: its counters after this batch, for progress ticks.
    progress: Progress,
    /// Nothing follows.
    last: bool,
}

enum Back {
    /// A batch processed, with its sessions.
    Batch(Batch),
    /// Sessions finished at the end of the input.
    Finished(Vec<Session>),
    /// The engine is done.
    Done(Box<Engine>),
}

/// Snapshots of open sessions need the engine itself: a sink that asks for them (the terminal
/// UI) runs with the engine on its own thread, and this pipeline hands out none.
struct NoOpen;

impl super::OpenSessions for NoOpen {
    fn changed_open_sessions(&mut self, _max: usize, _out: &mut dyn FnMut(Session)) -> usize {
        0
    }
}

fn engine_loop(mut engine: Engine, rx: Receiver<Batch>, tx: SyncSender<Back>) {
    let mut last_ts = 0;
    while let Ok(mut b) = rx.recv() {
        let Batch { data, items, sessions, .. } = &mut b;
        for it in items.iter() {
            let p = Packet {
                ts: it.ts,
                data: &[],
                orig_len: it.orig_len,
                linktype: it.linktype,
                source: it.source,
                frame: it.frame,
            };
            last_ts = p.ts;
            // `relocate` put every byte a segment names into the batch (a batch is far below the
            // 4 GiB it can name); were one missing, the packet would be counted as a TCP header
            // cut short, not dropped unseen.
            let seg = it.seg.and_then(|s| s.segment(data).ok_or(Skip::BadTcp));
            engine.decoded(&p, seg, &mut |s| sessions.push(s));
        }
        b.progress = progress_of(&engine, last_ts, None, false);
        let last = b.last;
        if tx.send(Back::Batch(b)).is_err() {
            return;
        }
        if last {
            break;
        }
    }
    // The end of the input, or the reader is gone: every open flow is finished.
    let mut chunk = Vec::new();
    engine.finish(&mut |s| {
        chunk.push(s);
        if chunk.len() >= FINISH_CHUNK {
            let _ = tx.send(Back::Finished(std::mem::take(&mut chunk)));
        }
    });
    if !chunk.is_empty() {
        let _ = tx.send(Back::Finished(chunk));
    }
    let _ = tx.send(Back::Done(Box::new(engine)));
}

/// Hands a returned message's sessions to the sink and keeps its batch for reuse; the engine
/// once it is done.
fn deliver(back: Back, free: &mut Vec<Batch>, progress: &mut Progress, sink: &mut dyn Sink) -> Option<Box<Engine>> {
    match back {
        Back::Batch(mut b) => {
            for s in b.sessions.drain(..) {
                sink.session(s);
            }
            *progress = b.progress;
            free.push(b);
            None
        }
        Back::Finished(v) => {
            for s in v {
                sink.session(s);
            }
            None
        }
        Back::Done(e) => Some(e),
    }
}

/// Runs the files with the engine on a second thread; the reader back if the thread cannot start (the
/// caller then runs on one thread).
pub(super) fn run(
    mut reader: FileReader,
    names: Vec<Arc<str>>,
    opts: &Options,
    sink: &mut dyn Sink,
    stop: &AtomicBool,
) -> Result<Summary, Box<FileReader>> {
    let engine = Engine::new(opts.engine.clone(), names.clone(), None);
    let (to_engine, from_reader) = sync_channel::<Batch>(POOL);
    // Room for every batch and the end-of-input sessions, so that the engine blocks on a send
    // only at the end, when the reader is draining.
    let (to_reader, from_engine) = sync_channel::<Back>(POOL + 2);
    let spawned = std::thread::Builder::new()
        .name("smtpscope-engine".into())
        .spawn(move || engine_loop(engine, from_reader, to_reader));
    let Ok(thread) = spawned else { return Err(Box::new(reader)) };
    let total = reader.total_size();
    let mut ticker = Ticker::new();
    let mut free: Vec<Batch> = (0..POOL)
        .map(|_| Batch {
            data: Vec::with_capacity(BATCH_BYTES + 64 * 1024),
            items: Vec::with_capacity(BATCH_PACKETS),
            ..Batch::default()
        })
        .collect();
    let mut progress = Progress::default();
    let mut decoder = Decoder::new();
    let mut read: u64 = 0;
    let mut engine = None;
    let mut ended = false;
    while !ended {
        let mut b = match free.pop() {
            Some(b) => b,
            None => match from_engine.recv() {
                Ok(back) => {
                    if let Some(e) = deliver(back, &mut free, &mut progress, sink) {
                        engine = Some(e);
                        break;
                    }
                    continue;
                }
                // The engine thread is gone (it panicked).
                Err(_) => break,
            },
        };
        b.data.clear();
        b.items.clear();
        b.last = false;
        while b.items.len() < BATCH_PACKETS && b.data.len() < BATCH_BYTES {
            let Some(p) = reader.next_packet() else {
                ended = true;
                break;
            };
            read += 1;
            // Decoding here takes a tenth of the engine thread's work over to this one, and only
            // the option and payload bytes are copied into the batch, not the headers; the
            // decoder's state (fragments) sees the packets in order still.
            let seg = decoder.decode(p.linktype, p.data).and_then(|s| s.relocate(&mut b.data).ok_or(Skip::BadTcp));
            b.items.push(Item {
                ts: p.ts,
                orig_len: p.orig_len,
                linktype: p.linktype,
                source: p.source,
                frame: p.frame,
                seg,
            });
            // Where a single thread stops: after the packet that reaches -c, or the one after
            // which the stop flag was seen.
            if stop.load(Ordering::Relaxed) || opts.count.is_some_and(|c| read >= c) {
                ended = true;
                break;
            }
        }
        b.last = ended;
        if to_engine.send(b).is_err() {
            break;
        }
        if ticker.due_now() {
            let now =
                Progress { bytes: reader.position().min(total), total, elapsed: ticker.started.elapsed(), ..progress };
            sink.tick(&mut NoOpen, &now);
        }
    }
    drop(to_engine);
    while engine.is_none() {
        let Ok(back) = from_engine.recv() else { break };
        engine = deliver(back, &mut free, &mut progress, sink);
    }
    let _ = thread.join();
    let Some(mut engine) = engine else {
        return Ok(super::failed_summary(names, opts, "the engine thread failed"));
    };
    let done = Progress {
        bytes: total,
        total,
        elapsed: ticker.started.elapsed(),
        ..progress_of(&engine, progress.last_packet_ts, None, true)
    };
    sink.tick(&mut *engine, &done);
    Ok(sources_of(reader, &names, &engine, opts))
}
