//! Records in (`-R`): a capture's NDJSON read back gives the same records, the same `check`
//! judgements and the same `pairs` as the capture itself.

mod common;

use std::io::Write as _;
use std::path::{Path, PathBuf};

use common::{bundled, public_corpus, sessions};
use smtpscope::check::{Checker, JudgeOptions, NoTraffic, Policy, Window};
use smtpscope::records::{Records, Skip};
use smtpscope::report::json::write_line;
use smtpscope::report::pairs::Pairs;
use smtpscope::session::Session;

/// Every capture the tests can read: the bundled ones and, when present, the shared public ones.
fn captures() -> Vec<PathBuf> {
    let mut v = Vec::new();
    for dir in [Some(bundled()), public_corpus()].into_iter().flatten() {
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "pcap" || e == "pcapng"))
            .collect();
        files.sort();
        v.extend(files);
    }
    assert!(v.iter().any(|p| p.ends_with("multi-site.pcap")));
    v
}

fn ndjson(sessions: &[Session]) -> Vec<u8> {
    let mut out = Vec::new();
    for s in sessions {
        write_line(&mut out, s, Default::default());
        out.push(b'\n');
    }
    out
}

fn write_tmp(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

fn read_back(path: &Path) -> (Vec<Session>, Records) {
    let mut r = Records::open(&[path.to_str().unwrap()]).unwrap();
    let v: Vec<Session> = r.by_ref().collect();
    (v, r)
}

/// The policies the comparison runs: every outcome and every way a host can be matched.
fn policies() -> Vec<Policy> {
    let mut v = vec![Policy::from_toml(include_str!("../docs/mail-tls.example.toml")).unwrap()];
    for (expect, extra) in [
        ("plaintext", "forbid_offer = [\"X-ANONYMOUSTLS\"]"),
        ("tls", "min_version = \"TLS1.2\"\ncert_valid = true\ncert_name = true"),
        ("tls", ""),
        ("any", ""),
    ] {
        v.push(
            Policy::from_toml(&format!(
                "[groups]\nA = [\"*\"]\nN = [\"helo:*\", \"banner:*\", \"cert:*\"]\n\
                 [[rule]]\nname = \"names\"\nbetween = [\"N\", \"N\"]\nexpect = \"{expect}\"\n{extra}\n\
                 [[rule]]\nname = \"all\"\nbetween = [\"A\", \"A\"]\nexpect = \"{expect}\"\n{extra}\n"
            ))
            .unwrap(),
        );
    }
    v
}

fn check(policy: &Policy, sessions: &[Session]) -> (String, Vec<serde_json::Value>) {
    let mut c = Checker::new(policy.clone(), JudgeOptions::default(), Window::default());
    for s in sessions {
        c.add(s);
    }
    (c.text(NoTraffic::Unproven), c.ndjson(NoTraffic::Unproven))
}

fn pairs(sessions: &[Session]) -> (String, Vec<serde_json::Value>) {
    let mut p = Pairs::default();
    for s in sessions {
        p.add(s);
    }
    (p.text(), p.json())
}

#[test]
fn records_read_back_give_the_same_records_checks_and_pairs_as_the_capture() {
    let tmp = tempfile::tempdir().unwrap();
    for cap in captures() {
        let from_capture = sessions(&cap);
        let lines = ndjson(&from_capture);
        let path = write_tmp(tmp.path(), "r.ndjson", &lines);
        let (from_records, r) = read_back(&path);
        assert_eq!(r.stats()[0].total_skipped(), 0, "{}", cap.display());
        // One input is taken in its own order.
        assert_eq!(
            String::from_utf8_lossy(&ndjson(&from_records)),
            String::from_utf8_lossy(&lines),
            "round trip of {}",
            cap.display()
        );
        for p in policies() {
            assert_eq!(check(&p, &from_records), check(&p, &from_capture), "check on {}", cap.display());
        }
        assert_eq!(pairs(&from_records), pairs(&from_capture), "pairs on {}", cap.display());
    }
}

#[test]
fn gzip_and_zstd_records_read_as_plain_ones() {
    let tmp = tempfile::tempdir().unwrap();
    let lines = ndjson(&sessions(&bundled().join("multi-site.pcap")));
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&lines).unwrap();
    let gz = write_tmp(tmp.path(), "a.gz", &gz.finish().unwrap());
    let zst = write_tmp(tmp.path(), "a.zst", &zstd::encode_all(lines.as_slice(), 3).unwrap());
    let plain = write_tmp(tmp.path(), "a.ndjson", &lines);
    let want = ndjson(&read_back(&plain).0);
    assert!(!want.is_empty());
    assert_eq!(ndjson(&read_back(&gz).0), want);
    assert_eq!(ndjson(&read_back(&zst).0), want);
}

#[test]
fn several_inputs_merge_by_last_seen_and_a_glob_or_directory_names_them_all() {
    let tmp = tempfile::tempdir().unwrap();
    let all = sessions(&bundled().join("multi-site.pcap"));
    let (a, b): (Vec<_>, Vec<_>) = all.iter().cloned().enumerate().partition(|(i, _)| i % 2 == 0);
    let a: Vec<Session> = a.into_iter().map(|x| x.1).collect();
    let b: Vec<Session> = b.into_iter().map(|x| x.1).collect();
    let dir = tmp.path().join("sites");
    std::fs::create_dir(&dir).unwrap();
    write_tmp(&dir, "a.ndjson", &ndjson(&a));
    write_tmp(&dir, "b.ndjson", &ndjson(&b));
    for spec in [dir.to_str().unwrap().to_string(), format!("{}/*.ndjson", dir.display())] {
        let got: Vec<Session> = Records::open(&[spec.as_str()]).unwrap().collect();
        assert_eq!(got.len(), all.len());
        assert!(got.windows(2).all(|w| w[0].last_seen <= w[1].last_seen), "merged by last_seen");
    }
}

#[test]
fn bad_lines_are_counted_by_reason_and_placed_by_line() {
    let tmp = tempfile::tempdir().unwrap();
    let good = ndjson(&sessions(&bundled().join("demo.pcap")));
    let first = good.split(|b| *b == b'\n').next().unwrap().to_vec();
    let newer = String::from_utf8(first.clone()).unwrap().replace("\"schema_version\":1", "\"schema_version\":2");
    let mut f = Vec::new();
    f.extend_from_slice(&first);
    f.push(b'\n');
    f.extend_from_slice(b"not json at all\n");
    f.extend_from_slice(newer.as_bytes());
    f.push(b'\n');
    f.extend_from_slice(&vec![b'x'; smtpscope::records::MAX_LINE + 10]);
    f.push(b'\n');
    f.extend_from_slice(b"{\"schema_version\":1,\"client\":5}\n");
    f.extend_from_slice(&first[..first.len() / 2]);
    let p = write_tmp(tmp.path(), "mixed.ndjson", &f);
    let (got, r) = read_back(&p);
    assert_eq!(got.len(), 1);
    let st = r.stats()[0].clone();
    assert_eq!(st.skipped, [1, 1, 2, 1], "newer-schema, truncated, not-a-record, too-long");
    assert_eq!(
        st.first,
        vec![
            (2, Skip::NotARecord),
            (3, Skip::NewerSchema),
            (4, Skip::TooLong),
            (5, Skip::NotARecord),
            (6, Skip::Truncated)
        ]
    );
    let msg = st.message().unwrap();
    assert!(msg.contains("mixed.ndjson:4 (too-long)"), "{msg}");
}

#[test]
fn a_capture_given_as_records_says_use_r() {
    let e = Records::open(&[bundled().join("demo.pcap").to_str().unwrap()]).err().unwrap();
    assert!(e.to_string().ends_with("use -r"), "{e}");
    let tmp = tempfile::tempdir().unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&std::fs::read(bundled().join("demo.pcap")).unwrap()).unwrap();
    let p = write_tmp(tmp.path(), "demo.pcap.gz", &gz.finish().unwrap());
    assert!(Records::open(&[p.to_str().unwrap()]).err().unwrap().to_string().ends_with("use -r"));
}

#[test]
fn a_record_without_end_reason_is_judged_as_cut_by_the_capture_and_says_so() {
    let tmp = tempfile::tempdir().unwrap();
    // A server that greeted, then nothing: the capture shows no EHLO.
    let line = r#"{"schema_version":1,"client":"10.0.0.1:40000","server":"10.0.0.2:25","first_seen":"2026-01-01T00:00:00.000000Z","last_seen":"2026-01-01T00:00:01.000000Z","banner":"mx ESMTP","helo":null,"mail_transactions":0,"starttls_offered":null,"verdict":"plaintext","evidence":[{"text":"greeting only","frame":4,"dir":"server"}]}"#;
    let p = write_tmp(tmp.path(), "old.ndjson", format!("{line}\n").as_bytes());
    let (got, _) = read_back(&p);
    let policy =
        Policy::from_toml("[[rule]]\nname = \"r\"\nbetween = [\"*\", \"*\"]\nexpect = \"plaintext\"\n").unwrap();
    let (text, _) = check(&policy, &got);
    assert!(text.contains("no end_reason: judged as end-of-capture"), "{text}");
    // The same record saying the session was closed is judged on what it shows.
    let closed = line.replace("\"verdict\"", "\"end_reason\":\"closed\",\"client_closed\":true,\"verdict\"");
    let p = write_tmp(tmp.path(), "new.ndjson", format!("{closed}\n").as_bytes());
    let (text, _) = check(&policy, &read_back(&p).0);
    assert!(text.contains("1 passed"), "{text}");
}

#[test]
fn hostile_records_are_counted_skips() {
    let tmp = tempfile::tempdir().unwrap();
    // A 50 MB line: skipped as too long without being held.
    let mut big = b"{\"schema_version\":1,\"banner\":\"".to_vec();
    big.resize(50 << 20, b'a');
    big.extend_from_slice(b"\"}\n");
    let p = write_tmp(tmp.path(), "big.ndjson", &big);
    let (got, r) = read_back(&p);
    assert!(got.is_empty());
    assert_eq!(r.stats()[0].skipped, [0, 0, 0, 1]);

    // Every key of the wrong type, one key per line: every line is skipped as not a record.
    let good = ndjson(&sessions(&bundled().join("starttls-tls12-cert.pcap")));
    let rec: serde_json::Value = serde_json::from_slice(good.split(|b| *b == b'\n').next().unwrap()).unwrap();
    let mut lines = Vec::new();
    let mut all_wrong = rec.clone();
    for (k, v) in rec.as_object().unwrap() {
        let wrong = match v {
            serde_json::Value::Object(_) | serde_json::Value::Array(_) | serde_json::Value::Number(_) => {
                serde_json::json!("text")
            }
            _ => serde_json::json!({"x": [1]}),
        };
        all_wrong[k] = wrong.clone();
        if k == "community_id" {
            continue; // derived from the endpoints, not read
        }
        let mut one = rec.clone();
        one[k] = wrong;
        lines.push(serde_json::to_string(&one).unwrap());
    }
    lines.push(serde_json::to_string(&all_wrong).unwrap());
    let p = write_tmp(tmp.path(), "wrong.ndjson", (lines.join("\n") + "\n").as_bytes());
    let (got, r) = read_back(&p);
    assert!(got.is_empty(), "{} read", got.len());
    assert_eq!(r.stats()[0].skipped[2], lines.len() as u64, "all not-a-record");

    // A gzip bomb: 64 MiB without a line end from about 64 KiB.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let chunk = vec![b'{'; 1 << 20];
    for _ in 0..64 {
        gz.write_all(&chunk).unwrap();
    }
    let bomb = gz.finish().unwrap();
    assert!(bomb.len() < 1 << 20);
    let p = write_tmp(tmp.path(), "bomb.ndjson.gz", &bomb);
    let (got, r) = read_back(&p);
    assert!(got.is_empty());
    assert_eq!(r.stats()[0].skipped, [0, 0, 0, 1]);

    // A truncated gzip stream: what was read counts, the rest is reported.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&good).unwrap();
    let gz = gz.finish().unwrap();
    let p = write_tmp(tmp.path(), "cut.ndjson.gz", &gz[..gz.len() * 2 / 3]);
    let (_, r) = read_back(&p);
    assert!(r.stats()[0].error.is_some() || r.stats()[0].skipped[1] > 0, "{:?}", r.stats()[0]);
}

#[test]
fn the_tui_says_what_a_record_cannot_carry() {
    use smtpscope::tui::detail::{transcript, Look};
    use smtpscope::tui::packets::{load, Origin, Request};
    let tmp = tempfile::tempdir().unwrap();
    let p = write_tmp(tmp.path(), "r.ndjson", &ndjson(&sessions(&bundled().join("demo.pcap"))));
    let (got, _) = read_back(&p);
    let look = Look { theme: smtpscope::tui::theme::Theme { color: false }, show_addresses: false, width: 100 };
    let text: String = transcript(&got[0], &look).iter().map(|l| l.to_string()).collect::<Vec<_>>().join("\n");
    assert!(
        text.contains("r.ndjson:1") && text.contains("carries no transcript") && text.contains("-r demo.pcap"),
        "{text}"
    );
    let e = load(&Origin::Files { paths: vec![bundled().join("demo.pcap")] }, &Request::of(&got[0])).err().unwrap();
    assert!(e.contains("carries no packets") && e.contains("open demo.pcap with -r"), "{e}");
}
