//! Heap bytes an open flow costs while the engine works: `flow_bytes FILE` runs the engine with a
//! counting allocator and prints live heap per open flow at the most flows held (run it on
//! `make_floods --concurrent` output; under `valgrind --tool=dhat` the sites show too).

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};
use std::sync::Arc;

use smtpscope::capture::MergedReader;
use smtpscope::engine::{Config, Engine};

struct Counting;
static LIVE: AtomicIsize = AtomicIsize::new(0);
static BLOCKS: AtomicIsize = AtomicIsize::new(0);

// SAFETY: forwards to the system allocator, only counting.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        LIVE.fetch_add(l.size() as isize, Ordering::Relaxed);
        BLOCKS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same layout.
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        LIVE.fetch_sub(l.size() as isize, Ordering::Relaxed);
        BLOCKS.fetch_sub(1, Ordering::Relaxed);
        // SAFETY: same pointer and layout.
        unsafe { System.dealloc(p, l) }
    }
}

#[global_allocator]
static A: Counting = Counting;

fn main() {
    let paths: Vec<std::path::PathBuf> = std::env::args_os().skip(1).map(Into::into).collect();
    let mut r = MergedReader::open(&paths, None).expect("input opens");
    let base = LIVE.load(Ordering::Relaxed);
    let base_blocks = BLOCKS.load(Ordering::Relaxed);
    let mut e = Engine::new(Config::default(), vec![Arc::from("x")], None);
    let (mut best, mut at) = (0usize, (0isize, 0isize));
    let mut peak = 0isize;
    let mut n = 0u64;
    while let Some(p) = r.next_packet() {
        e.packet(&p, &mut drop);
        n += 1;
        let live = LIVE.load(Ordering::Relaxed) - base;
        peak = peak.max(live);
        // The largest heap among the samples with the most flows open (both from one moment).
        let open = e.open_flows();
        if n % 1000 == 0 && open >= best {
            let now = (live, BLOCKS.load(Ordering::Relaxed) - base_blocks);
            at = if open > best { now } else { at.max(now) };
            best = open;
        }
    }
    e.finish(&mut drop);
    let k = best.max(1) as isize;
    println!(
        "packets {n}; most flows open {best}: heap {} B, {} blocks per open flow; peak heap {} MB",
        at.0 / k,
        at.1 / k,
        peak >> 20
    );
}
