//! `-R` on the command line: `check -R` and `pairs -R` over a capture's records say exactly what
//! `check -r` and `pairs -r` say over the capture; records round-trip; bad inputs fail clearly.

mod common;

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Output;

use common::{bundled, scratch};

fn smtpscope(args: &[&str]) -> Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_smtpscope")).args(args).output().expect("run smtpscope")
}

fn captures() -> Vec<PathBuf> {
    let mut v = Vec::new();
    // The bundled captures here (the library test in tests/records.rs adds the shared ones).
    for dir in [Some(bundled())].into_iter().flatten() {
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "pcap" || e == "pcapng"))
            .collect();
        files.sort();
        v.extend(files);
    }
    v
}

/// The records of `cap`, written by the binary.
fn records_of(cap: &Path, dir: &Path) -> PathBuf {
    let o = smtpscope(&["-q", "-r", cap.to_str().unwrap(), "-F", "json"]);
    assert!(o.status.success(), "{}", cap.display());
    let p = dir.join(format!("{}.ndjson", cap.file_name().unwrap().to_string_lossy()));
    std::fs::write(&p, &o.stdout).unwrap();
    p
}

#[test]
fn check_and_pairs_over_records_say_what_they_say_over_the_capture() {
    let tmp = scratch("records-cli");
    let policy = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/mail-tls.example.toml");
    let one_rules: [&[&str]; 4] = [
        &["--policy", policy.to_str().unwrap()],
        &["--expect", "plaintext", "--between", "10.1.0.0/24", "10.2.0.0/24"],
        &["--expect", "plaintext", "--between", "*", "*", "--forbid-offer", "X-ANONYMOUSTLS"],
        &["--expect", "tls", "--between", "*", "banner:*,helo:*,cert:*", "--min-version", "TLS1.2"],
    ];
    let mut compared = 0;
    for cap in captures() {
        let recs = records_of(&cap, tmp.path());
        let (c, r) = (cap.to_str().unwrap(), recs.to_str().unwrap());
        if std::fs::metadata(&recs).unwrap().len() == 0 {
            // A capture without SMTP gives no record, and -R with no record is an input error.
            let o = smtpscope(&["check", "-q", "-R", r, "--expect", "tls", "--between", "*", "*"]);
            assert_eq!(o.status.code(), Some(2), "{c}");
            continue;
        }
        for rule in one_rules {
            for format in ["text", "json"] {
                let run = |input: &[&str]| {
                    let mut args = vec!["check", "-q"];
                    args.extend_from_slice(input);
                    args.extend_from_slice(rule);
                    args.extend_from_slice(&["-F", format]);
                    smtpscope(&args)
                };
                let (from_capture, from_records) = (run(&["-r", c]), run(&["-R", r]));
                assert_eq!(from_records.status.code(), from_capture.status.code(), "{c} {rule:?}");
                assert_eq!(
                    String::from_utf8_lossy(&from_records.stdout),
                    String::from_utf8_lossy(&from_capture.stdout),
                    "check {rule:?} -F {format} on {c}"
                );
                compared += 1;
            }
        }
        for format in ["text", "json"] {
            let a = smtpscope(&["pairs", "-q", "-r", c, "-F", format]);
            let b = smtpscope(&["pairs", "-q", "-R", r, "-F", format]);
            assert_eq!(String::from_utf8_lossy(&b.stdout), String::from_utf8_lossy(&a.stdout), "pairs on {c}");
        }
        // The round trip: -r -> json -> -R -> json is the identity.
        let back = smtpscope(&["-q", "-R", r, "-F", "json"]);
        assert!(back.status.success());
        assert_eq!(String::from_utf8_lossy(&back.stdout), std::fs::read_to_string(&recs).unwrap(), "{c}");
    }
    assert!(compared >= 8 * 20, "{compared}");
    assert!(captures().iter().any(|c| c.ends_with("multi-site.pcap")));
}

#[test]
fn records_are_refiltered_and_reformatted() {
    let tmp = scratch("records-filter");
    let recs = records_of(&bundled().join("multi-site.pcap"), tmp.path());
    let r = recs.to_str().unwrap();
    let cap = bundled().join("multi-site.pcap");
    // -Y keeps the same sessions over records as over the capture, free text included (helo,
    // banner, sni, evidence, findings).
    for filter in
        ["verdict:starttls", "server:10.2.0.0/24 !tls:none", "\"contoso\"", "\"cleartext-auth\"", "\"self-signed\""]
    {
        let a = smtpscope(&["-q", "-r", cap.to_str().unwrap(), "-F", "csv", "-Y", filter]);
        let b = smtpscope(&["-q", "-R", r, "-F", "csv", "-Y", filter]);
        assert!(b.status.success());
        assert!(b.stdout.split(|c| *c == b'\n').count() > 2, "{filter} keeps something");
        assert_eq!(String::from_utf8_lossy(&b.stdout), String::from_utf8_lossy(&a.stdout), "-Y {filter}");
    }
    // The dialogue itself is not in a record: free text finds X-EXPS where the evidence names it
    // (AUTH in clear), not in every EHLO reply as over the capture's transcripts.
    let b = smtpscope(&["-q", "-R", r, "-F", "json", "-Y", "\"X-EXPS\""]);
    let kept = common::ndjson(&b.stdout);
    assert_eq!(kept.len(), 5);
    assert!(kept.iter().all(|l| l["evidence"].to_string().contains("X-EXPS")));
    let open = smtpscope(&["-q", "-R", r, "-F", "json", "-Y", "state:open"]);
    assert!(open.status.success() && open.stdout.is_empty(), "a record is never an open session");
    // Mixed with -r: both inputs, merged by last_seen.
    let mixed = smtpscope(&["-q", "-r", bundled().join("demo.pcap").to_str().unwrap(), "-R", r, "-F", "json"]);
    let lines = common::ndjson(&mixed.stdout);
    assert_eq!(lines.len(), 3 + 12);
    let ends: Vec<&str> = lines.iter().map(|l| l["last_seen"].as_str().unwrap()).collect();
    assert!(ends.windows(2).all(|w| w[0] <= w[1]), "{ends:?}");
}

#[test]
fn clickhouse_rows_are_flat() {
    let o = smtpscope(&["-q", "-r", bundled().join("starttls-tls12-cert.pcap").to_str().unwrap(), "-F", "clickhouse"]);
    assert!(o.status.success());
    for row in common::ndjson(&o.stdout) {
        for (k, v) in row.as_object().unwrap() {
            let flat = match v {
                serde_json::Value::Object(_) => false,
                serde_json::Value::Array(a) => a.iter().all(|x| !x.is_object() && !x.is_array()),
                _ => true,
            };
            assert!(flat, "{k} is not a scalar or an array of scalars: {v}");
        }
        assert!(row["first_seen"].as_str().unwrap().len() == 19, "YYYY-MM-DD hh:mm:ss");
        assert!(row["cert_sha1"].is_string() && row["cert_not_after"].is_string());
        assert!(serde_json::from_str::<serde_json::Value>(row["evidence"].as_str().unwrap()).unwrap().is_array());
        assert_eq!(
            row["ehlo_extensions.keyword"].as_array().unwrap().len(),
            row["ehlo_extensions.params"].as_array().unwrap().len()
        );
    }
}

#[test]
fn bad_record_inputs_fail_clearly() {
    let tmp = scratch("records-bad");
    let demo = bundled().join("demo.pcap");
    let o = smtpscope(&["-R", demo.to_str().unwrap(), "-F", "json"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("use -r"));

    let recs = records_of(&demo, tmp.path());
    let o = smtpscope(&["-R", recs.to_str().unwrap(), "-F", "json", "port", "25"]);
    assert_eq!(o.status.code(), Some(2), "BPF with only records is a usage error");
    assert!(String::from_utf8_lossy(&o.stderr).contains("-Y"));

    let junk = tmp.path().join("junk.ndjson");
    std::fs::write(&junk, "not a record\n{\"schema_version\":9}\n").unwrap();
    let o = smtpscope(&["check", "-R", junk.to_str().unwrap(), "--expect", "tls", "--between", "*", "*"]);
    assert_eq!(o.status.code(), Some(2), "no record from any -R input");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("junk.ndjson:1 (not-a-record)") && err.contains("junk.ndjson:2 (newer-schema)"), "{err}");

    // One good input among bad ones: exit 0, the skips counted.
    let o = smtpscope(&["-R", junk.to_str().unwrap(), "-R", recs.to_str().unwrap(), "-F", "json"]);
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(common::ndjson(&o.stdout).len(), 3);
    assert!(String::from_utf8_lossy(&o.stderr).contains("2 line(s) skipped"));

    let o = smtpscope(&["-R", tmp.path().join("absent.ndjson").to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert_eq!(err.matches("os error 2").count(), 1, "the cause said once: {err}");

    let o = smtpscope(&["--help"]);
    let help = String::from_utf8_lossy(&o.stdout);
    assert!(help.contains("--records") && help.contains("clickhouse") && help.contains("Not tshark's -R"));
}

#[test]
#[allow(clippy::zombie_processes)] // reaped by wait4, which clippy does not see
fn hostile_record_files_keep_memory_bounded() {
    let tmp = scratch("records-hostile");
    let big = tmp.path().join("big.ndjson");
    // Written in pieces: a forked child starts with this process's memory, which must stay small.
    let mut f = std::io::BufWriter::new(std::fs::File::create(&big).unwrap());
    f.write_all(b"{\"schema_version\":1,\"banner\":\"").unwrap();
    for _ in 0..50 {
        f.write_all(&[b'a'; 1 << 20]).unwrap();
    }
    f.write_all(b"\"}\n").unwrap();
    drop(f);
    let bomb = tmp.path().join("bomb.ndjson.zst");
    std::fs::write(&bomb, zstd::encode_all(std::io::repeat(b'[').take_bytes(64 << 20), 1).unwrap()).unwrap();
    for p in [&big, &bomb] {
        let err = tmp.path().join("stderr");
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_smtpscope"))
            .args(["-R", p.to_str().unwrap(), "-F", "json"])
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(&err).unwrap())
            .spawn()
            .unwrap();
        // wait4 (not Child::wait) gives this child's own peak RSS (tests run side by side).
        let (mut status, mut ru) = (0, unsafe { std::mem::zeroed::<libc::rusage>() });
        // SAFETY: waits for our own child and fills the structs it is given.
        let pid = unsafe { libc::wait4(child.id() as libc::pid_t, &mut status, 0, &mut ru) };
        assert_eq!(pid, child.id() as libc::pid_t);
        assert_eq!(libc::WEXITSTATUS(status), 2);
        let msg = std::fs::read_to_string(&err).unwrap();
        assert!(msg.contains("too-long 1"), "{msg}");
        assert!(ru.ru_maxrss < 40 * 1024, "{}: peak RSS {} KiB", p.display(), ru.ru_maxrss);
    }
}

trait TakeBytes: std::io::Read + Sized {
    fn take_bytes(self, n: u64) -> std::io::Take<Self> {
        std::io::Read::take(self, n)
    }
}
impl<R: std::io::Read> TakeBytes for R {}

#[test]
fn a_record_keeps_its_sensor_unless_sensor_is_given() {
    let tmp = scratch("records-sensor");
    let recs = records_of(&bundled().join("demo.pcap"), tmp.path());
    let text = std::fs::read_to_string(&recs).unwrap().replace("\"sensor\":null", "\"sensor\":\"tor-hub\"");
    std::fs::write(&recs, text).unwrap();
    let r = recs.to_str().unwrap();
    let sensors = |extra: &[&str]| -> Vec<String> {
        let mut args = vec!["-q", "-R", r, "-F", "json"];
        args.extend_from_slice(extra);
        common::ndjson(&smtpscope(&args).stdout).iter().map(|l| l["sensor"].as_str().unwrap().to_string()).collect()
    };
    assert_eq!(sensors(&[]), ["tor-hub"; 3]);
    assert_eq!(sensors(&["--sensor", "poa"]), ["poa"; 3]);
    assert_eq!(sensors(&["-Y", "sensor:tor-*"]).len(), 3);
    assert!(sensors(&["-Y", "sensor:poa"]).is_empty());
}

#[test]
fn pairs_count_sessions_per_sensor_and_sensor_renames_them() {
    let tmp = scratch("records-pairs-sensor");
    let recs = records_of(&bundled().join("demo.pcap"), tmp.path());
    let text = std::fs::read_to_string(&recs).unwrap().replacen("\"sensor\":null", "\"sensor\":\"poa-hub\"", 1);
    let text = text.replace("\"sensor\":null", "\"sensor\":\"tor-hub\"");
    std::fs::write(&recs, text).unwrap();
    let r = recs.to_str().unwrap();
    let sensors = |extra: &[&str]| -> serde_json::Value {
        let mut args = vec!["pairs", "-q", "-R", r, "-F", "json"];
        args.extend_from_slice(extra);
        let lines = common::ndjson(&smtpscope(&args).stdout);
        assert_eq!(lines.len(), 1, "demo.pcap is one host pair");
        lines[0]["sensors"].clone()
    };
    assert_eq!(sensors(&[]), serde_json::json!({"poa-hub": 1, "tor-hub": 2}));
    assert_eq!(sensors(&["--sensor", "br01"]), serde_json::json!({"br01": 3}));
    let csv = String::from_utf8(smtpscope(&["pairs", "-q", "-R", r, "-F", "csv"]).stdout).unwrap();
    assert!(csv.lines().next().unwrap().contains(",sensors,"), "{csv}");
    // A row per server port: 25 saw both sensors' sessions, 2526 one of tor-hub's.
    assert!(csv.contains("\"poa-hub 1, tor-hub 1\"") && csv.contains(",tor-hub 1,"), "{csv}");
    // check takes --sensor too: the display filter sees the name it gives.
    let matched = |extra: &[&str]| -> u64 {
        let mut args = vec!["check", "-q", "-R", r, "--expect", "any", "--between", "0.0.0.0/0", "0.0.0.0/0"];
        args.extend_from_slice(extra);
        args.extend_from_slice(&["-Y", "sensor:br01", "-F", "json"]);
        let lines = common::ndjson(&smtpscope(&args).stdout);
        lines.iter().find(|l| l["type"] == "rule").unwrap()["matched"].as_u64().unwrap()
    };
    assert_eq!(matched(&["--sensor", "br01"]), 3);
    assert_eq!(matched(&[]), 0);
}
