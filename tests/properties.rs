//! Properties that must hold for any input the generator can find.

mod common;

use common::{client_hello, opening, server_hello, Dialogue};
use proptest::prelude::*;
use serde_json::Value;
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
    fn a_held_segment_keeps_its_bytes_when_a_different_copy_arrives_while_it_waits(
        data in proptest::collection::vec(any::<u8>(), 4..2000),
        cuts in proptest::collection::vec(any::<usize>(), 1..20),
        which in any::<usize>(),
        trim in (any::<usize>(), any::<usize>()),
        key in 1u8..=255,
    ) {
        // The out-of-order path: segment k (not the first) arrives before the hole in front of
        // it is filled and is held; then a different copy of (part of) its range arrives, also
        // out of order; then the rest of the stream in order. The first copy wins.
        let segs = segments(&data, &cuts);
        prop_assume!(segs.len() >= 2);
        let k = 1 + which % (segs.len() - 1);
        let (seq, first) = segs[k].clone();
        let a = trim.0 % first.len();
        let b = a + 1 + trim.1 % (first.len() - a);
        let copy: Vec<u8> = first[a..b].iter().map(|x| x ^ key).collect();
        let lim = Limits::default();
        let mut r = Reassembler::new();
        r.on_syn(999);
        let mut out = Vec::new();
        let mut gaps = 0;
        let mut take = |c: Chunk<'_>| match c {
            Chunk::Data(b) => out.extend_from_slice(b),
            Chunk::Gap(n) => gaps += n,
        };
        r.insert(seq, &first, first.len() as u32, &lim, &mut take);
        prop_assert!(r.buffered() > 0, "segment {} is held", k);
        r.insert(seq.wrapping_add(a as u32), &copy, copy.len() as u32, &lim, &mut take);
        for (i, (s, d)) in segs.iter().enumerate() {
            if i != k {
                r.insert(*s, d, d.len() as u32, &lim, &mut take);
            }
        }
        r.flush(&lim, &mut take);
        prop_assert_eq!(gaps, 0);
        prop_assert_eq!(out, data);
        prop_assert!(r.stats.conflicting_overlaps >= 1, "the different copy is an anomaly");
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
        let strip = segmentation_free;
        let one = strip(smtpscope::report::json::record(&d.run_mss(1460)[0], Default::default()));
        let s = d.run_mss(mss);
        prop_assert_eq!(s.len(), 1);
        let r = strip(smtpscope::report::json::record(&s[0], Default::default()));
        prop_assert_eq!(&r, &one);
        prop_assert_eq!(&r["messages_accepted"], &serde_json::json!(1));
    }
}

/// A record without what legitimately depends on segmentation: frame numbers, packet counts,
/// the last packet's time and TCP anomaly counters.
fn segmentation_free(mut v: Value) -> Value {
    fn drop_frames(v: &mut Value) {
        match v {
            Value::Object(m) => {
                m.remove("frame");
                m.values_mut().for_each(drop_frames);
            }
            Value::Array(a) => a.iter_mut().for_each(drop_frames),
            _ => {}
        }
    }
    for k in ["packets", "last_seen", "tcp_anomalies"] {
        v[k] = Value::Null;
    }
    drop_frames(&mut v);
    v
}

/// Dialogues with the record fields that show they were understood.
fn dialogues() -> Vec<(&'static str, Dialogue, Value)> {
    let plain = opening(Dialogue::new(40000, 25), &["PIPELINING", "STARTTLS", "AUTH PLAIN LOGIN"])
        .c("AUTH LOGIN\r\n")
        .s("334 VXNlcm5hbWU6\r\n")
        .c("dXNlcg==\r\n")
        .s("334 UGFzc3dvcmQ6\r\n")
        .c("cGFzcw==\r\n")
        .s("235 2.7.0 ok\r\n")
        .c("MAIL FROM:<a@b.example>\r\nRCPT TO:<c@d.example>\r\nDATA\r\n")
        .s("250 ok\r\n250 ok\r\n354 go\r\n")
        .c("Subject: x\r\n\r\n..dot\r\n.\r\nQUIT\r\n")
        .s("250 queued\r\n221 bye\r\n")
        .close();
    let bdat = opening(Dialogue::new(40001, 25), &["PIPELINING", "CHUNKING"])
        .c("MAIL FROM:<a@b.example>\r\nRCPT TO:<c@d.example>\r\nBDAT 8\r\nQUIT\r\nabBDAT 4 LAST\r\nxyzw")
        .s("250 ok\r\n250 ok\r\n250 ok\r\n250 queued\r\n")
        .c("QUIT\r\n")
        .s("221 bye\r\n")
        .close();
    let starttls = opening(Dialogue::new(40002, 587), &["STARTTLS"])
        .c("STARTTLS\r\n")
        .s("220 2.0.0 SMTP server ready\r\n")
        .c(client_hello("mx.example.org"))
        .s(server_hello(false))
        .close();
    vec![
        (
            "plain AUTH LOGIN + pipelined DATA",
            plain,
            serde_json::json!({"verdict": "starttls-offered-unused", "messages_accepted": 1, "auth_mechanisms": ["LOGIN"]}),
        ),
        ("BDAT", bdat, serde_json::json!({"verdict": "plaintext", "messages_accepted": 1, "rcpt_count": 1})),
        ("STARTTLS", starttls, serde_json::json!({"verdict": "starttls", "tls_handshake": true})),
    ]
}

#[test]
fn an_smtp_dialogue_cut_at_any_single_byte_boundary_gives_the_same_record() {
    for (name, d, facts) in dialogues() {
        let whole = segmentation_free(smtpscope::report::json::record(&d.run()[0], Default::default()));
        for (k, v) in facts.as_object().unwrap() {
            assert_eq!(&whole[k], v, "{name}: {k} in {whole}");
        }
        let mut cuts = 0;
        for (step, len) in d.data_steps().into_iter().enumerate() {
            for at in 1..len {
                let s = common::run_packets(&d.packets_split(1460, Some((step, at))));
                assert_eq!(s.len(), 1, "{name}: step {step} cut at {at}");
                let r = segmentation_free(smtpscope::report::json::record(&s[0], Default::default()));
                assert_eq!(r, whole, "{name}: step {step} cut at {at}");
                cuts += 1;
            }
        }
        assert!(cuts > 100, "{name}: only {cuts} cuts");
    }
}
