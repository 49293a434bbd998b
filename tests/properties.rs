//! Properties that must hold for any input the generator can find.

mod common;

use proptest::prelude::*;
use smtpscope::flow::{Chunk, Limits, Reassembler};

fn reassemble(segs: &[(u32, Vec<u8>)]) -> (Vec<u8>, u64) {
    let lim = Limits::default();
    let mut r = Reassembler::new();
    r.on_syn(999);
    let mut out = Vec::new();
    let mut gaps = 0;
    let mut take = |c: Chunk<'_>| match c {
        Chunk::Data(b) => out.extend_from_slice(b),
        Chunk::Gap(n) => gaps += n,
    };
    for (seq, d) in segs {
        r.insert(*seq, d, d.len() as u32, &lim, &mut take);
    }
    r.flush(&lim, &mut take);
    (out, gaps)
}

/// Cuts `data` into segments (seq, bytes) at the given cut points.
fn segments(data: &[u8], cuts: &[usize]) -> Vec<(u32, Vec<u8>)> {
    let mut points: Vec<usize> = cuts.iter().map(|c| c % (data.len() + 1)).collect();
    points.push(0);
    points.push(data.len());
    points.sort_unstable();
    points.dedup();
    points.windows(2).map(|w| (1000u32.wrapping_add(w[0] as u32), data[w[0]..w[1]].to_vec())).collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn any_order_and_duplication_delivers_the_same_stream(
        data in proptest::collection::vec(any::<u8>(), 1..3000),
        cuts in proptest::collection::vec(any::<usize>(), 0..40),
        order in proptest::collection::vec(any::<u32>(), 0..80),
        dups in proptest::collection::vec(any::<usize>(), 0..20),
    ) {
        let mut segs = segments(&data, &cuts);
        for d in &dups {
            let s = segs[d % segs.len()].clone();
            segs.push(s);
        }
        // A permutation driven by `order` (Fisher–Yates with the given numbers).
        for (i, o) in order.iter().enumerate() {
            let n = segs.len();
            segs.swap(i % n, *o as usize % n);
        }
        let (out, gaps) = reassemble(&segs);
        prop_assert_eq!(gaps, 0);
        prop_assert_eq!(out, data);
    }

    #[test]
    fn a_conflicting_late_copy_never_replaces_the_first(
        data in proptest::collection::vec(any::<u8>(), 2..2000),
        cuts in proptest::collection::vec(any::<usize>(), 0..20),
        which in any::<usize>(),
    ) {
        let mut segs = segments(&data, &cuts);
        let (seq, mut forged) = segs[which % segs.len()].clone();
        for b in &mut forged {
            *b ^= 0x5a;
        }
        segs.push((seq, forged));
        let (out, _) = reassemble(&segs);
        prop_assert_eq!(out, data);
    }

    #[test]
    fn overlapping_copies_in_any_order_deliver_the_first_arrival_of_every_byte(
        data in proptest::collection::vec(any::<u8>(), 1..2000),
        cuts in proptest::collection::vec(any::<usize>(), 0..30),
        extra in proptest::collection::vec((any::<usize>(), 1usize..400, any::<u8>()), 0..30),
        order in proptest::collection::vec(any::<u32>(), 0..120),
    ) {
        // Segments covering the stream, plus copies of arbitrary ranges whose bytes may differ
        // (xor with a non-zero key): partial overlaps in every arrangement.
        let mut segs = segments(&data, &cuts);
        for (start, len, key) in &extra {
            let a = start % data.len();
            let b = (a + len).min(data.len());
            let bytes: Vec<u8> = data[a..b].iter().map(|x| x ^ key).collect();
            segs.push((1000u32.wrapping_add(a as u32), bytes));
        }
        for (i, o) in order.iter().enumerate() {
            let n = segs.len();
            segs.swap(i % n, *o as usize % n);
        }
        // The model: every byte is the one the first arriving segment that covers it carried.
        let mut want: Vec<Option<u8>> = vec![None; data.len()];
        for (seq, bytes) in &segs {
            let at = seq.wrapping_sub(1000) as usize;
            for (i, b) in bytes.iter().enumerate() {
                want[at + i].get_or_insert(*b);
            }
        }
        let want: Vec<u8> = want.into_iter().map(|b| b.expect("covered")).collect();
        let (out, gaps) = reassemble(&segs);
        prop_assert_eq!(gaps, 0);
        prop_assert_eq!(out, want);
    }

    #[test]
    fn an_smtp_dialogue_gives_one_record_whatever_the_segment_size(mss in 1usize..200) {
        let d = common::opening(common::Dialogue::new(40000, 25), &["PIPELINING", "STARTTLS", "AUTH PLAIN"])
            .c("AUTH PLAIN AGEAYg==\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<c@d.example>\r\nDATA\r\n")
            .s("235 ok\r\n250 ok\r\n250 ok\r\n354 go\r\n")
            .c("Subject: x\r\n\r\n.dot\r\n.\r\nQUIT\r\n")
            .s("250 queued\r\n221 bye\r\n")
            .close();
        let strip = |mut v: serde_json::Value| {
            for k in ["evidence", "findings", "packets", "last_seen", "tcp_anomalies"] {
                v[k] = serde_json::Value::Null;
            }
            v
        };
        let one = strip(smtpscope::report::json::record(&d.run_mss(1460)[0], Default::default()));
        let s = d.run_mss(mss);
        prop_assert_eq!(s.len(), 1);
        let r = strip(smtpscope::report::json::record(&s[0], Default::default()));
        prop_assert_eq!(&r, &one);
        prop_assert_eq!(&r["messages_accepted"], &serde_json::json!(1));
    }
}
