//! Heap bytes a finished session costs when kept whole (as the terminal UI's store kept it), and
//! how they split: `cargo run --release --example session_bytes -- FILE...`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};
use std::sync::Arc;

use smtpscope::capture::MergedReader;
use smtpscope::engine::{Config, Engine};
use smtpscope::session::Session;
use smtpscope::tui::feed::{Stage, Update};
use smtpscope::tui::packed::Packer;

struct Counting;
static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: forwards to the system allocator, only counting.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        LIVE.fetch_add(l.size() as isize, Ordering::Relaxed);
        // SAFETY: same layout.
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        LIVE.fetch_sub(l.size() as isize, Ordering::Relaxed);
        // SAFETY: same pointer and layout.
        unsafe { System.dealloc(p, l) }
    }
}

#[global_allocator]
static A: Counting = Counting;

fn main() {
    let paths: Vec<std::path::PathBuf> = std::env::args_os().skip(1).map(Into::into).collect();
    let before = LIVE.load(Ordering::Relaxed);
    let mut r = MergedReader::open(&paths, None).expect("input opens");
    let cfg = Config { transcript: true, ..Config::default() };
    let mut e = Engine::new(cfg, vec![Arc::from("x")], None);
    let mut kept: Vec<Arc<Session>> = Vec::new();
    let mut n = 0usize;
    while let Some(p) = r.next_packet() {
        e.packet(&p, &mut |s| kept.push(Arc::new(s)));
        n += 1;
    }
    e.finish(&mut |s| kept.push(Arc::new(s)));
    drop(e);
    drop(r);
    kept.shrink_to_fit();
    let whole = LIVE.load(Ordering::Relaxed) - before;
    let k = kept.len().max(1) as isize;
    println!("packets {n}, sessions {}, size_of Session {} B", kept.len(), std::mem::size_of::<Session>());
    println!("kept whole: {} B per session", whole / k);
    // The UI's store: every session packed once the dictionary is trained.
    let t0 = LIVE.load(Ordering::Relaxed);
    // Packed as the feed's packer thread packs them, then taken in as the UI takes them.
    let mut store = smtpscope::tui::store::Store::new();
    let mut stage = Stage::new(Packer::new(), store.filter_slot());
    let mut out = Vec::new();
    for s in &kept {
        stage.pass(Update::Finished(vec![(**s).clone()]), &mut |u| {
            out.push(u);
            true
        });
    }
    stage.flush(&mut |u| {
        out.push(u);
        true
    });
    for u in out {
        match u {
            Update::Rows(v) => v.into_iter().for_each(|r| store.ingest(r)),
            Update::Codec(c) => store.set_codec(c),
            Update::Repacked(v) => store.repack(v),
            _ => {}
        }
    }
    store.rebuild();
    let packed = LIVE.load(Ordering::Relaxed) - t0;
    println!("in the UI's store (packed {} of {}): {} B per session", store.packed(), store.total(), packed / k);
    let t = std::time::Instant::now();
    let mut n = 0;
    for i in 0..store.len() {
        n += usize::from(store.get(i).is_some());
    }
    println!("unpacking every row: {:.1} µs per row", t.elapsed().as_secs_f64() * 1e6 / n.max(1) as f64);
    drop(store);
    for s in &mut kept {
        if let Some(s) = Arc::get_mut(s) {
            s.transcript = None;
        }
    }
    let a = LIVE.load(Ordering::Relaxed) - before;
    println!("without transcripts: {} B per session", a / k);
    for s in &mut kept {
        if let Some(s) = Arc::get_mut(s) {
            s.evidence = Vec::new();
        }
    }
    let b = LIVE.load(Ordering::Relaxed) - before;
    println!("without transcripts and evidence: {} B per session", b / k);
}
