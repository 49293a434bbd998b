//! Helpers shared by the integration tests: run the engine in-process on a capture and
//! compare records with ground truth in the shared corpus format.
#![allow(dead_code)]

pub mod wire;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::Value;
use smtpscope::capture::MergedReader;
use smtpscope::engine::{Config, Engine};
use smtpscope::report::json::record;
use smtpscope::session::Session;

/// The shared public corpus, or None (with a message) when it is absent.
pub fn public_corpus() -> Option<PathBuf> {
    let dir = std::env::var_os("SMTPSCOPE_PUBLIC_CAPTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/captures/public"));
    if dir.join("expected.jsonl").is_file() {
        Some(dir)
    } else {
        assert!(
            std::env::var_os("SMTPSCOPE_REQUIRE_CORPUS").is_none(),
            "public corpus required but not found at {}",
            dir.display()
        );
        skipped("public corpus", &format!("not found at {} (set SMTPSCOPE_PUBLIC_CAPTURES)", dir.display()));
        None
    }
}

/// Every NDJSON line of `out` (blank lines skipped), parsed.
pub fn ndjson(out: &[u8]) -> Vec<Value> {
    String::from_utf8_lossy(out)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).expect("an NDJSON line"))
        .collect()
}

/// Whether a test that needs root and the environment variable `var` = 1 may run; says why not.
pub fn root_and(var: &str, what: &str) -> bool {
    // SAFETY: plain getter.
    let root = unsafe { libc::geteuid() } == 0;
    let value = std::env::var_os(var);
    let asked = value.as_ref().is_some_and(|v| v == "1");
    if value.as_ref().is_some_and(|v| v == "own-step") {
        // .ci/run runs this suite as its own step after `make test`: not a skip.
        eprintln!("{what}: runs in its own step ({var}=own-step)");
        return false;
    }
    if !(root && asked) {
        skipped(what, &format!("needs root and {var}=1"));
    }
    root && asked
}

/// A test returns early because what it needs is missing: says so on stderr and leaves a marker
/// in `<target>/tmp/smtpscope-skipped/<suite>/` that `make test` lists after cargo's output (one
/// line per suite). With `SMTPSCOPE_NO_SKIP=1` (set by .ci/run) a skip is a failure instead.
pub fn skipped(suite: &str, why: &str) {
    assert!(
        std::env::var_os("SMTPSCOPE_NO_SKIP").is_none_or(|v| v != "1"),
        "{suite}: {why}, and SMTPSCOPE_NO_SKIP=1 forbids skipping"
    );
    eprintln!("SKIPPED: {suite}: {why}");
    let slug: String = suite.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '-' }).collect();
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("smtpscope-skipped").join(slug);
    let _ = std::fs::create_dir_all(&dir);
    let _ = std::fs::write(dir.join("why"), format!("{suite}: {why}"));
    let exe = std::env::current_exe().ok().and_then(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()));
    let test = std::thread::current().name().unwrap_or("test").replace("::", "-");
    let _ = std::fs::write(dir.join(format!("{}.{test}", exe.unwrap_or_default())), "");
}

/// Starts the smtpscope binary with `args`, stdout and stderr piped.
pub fn spawn_piped(args: &[&str]) -> std::process::Child {
    std::process::Command::new(env!("CARGO_BIN_EXE_smtpscope"))
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start smtpscope")
}

/// Each line a child writes on `out`, with the time it came, on a channel (a reader thread
/// of its own): for tests that hold a line's arrival against an event.
pub fn timed_lines(
    out: impl std::io::Read + Send + 'static,
) -> std::sync::mpsc::Receiver<(std::time::Instant, String)> {
    use std::io::BufRead;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(out).lines() {
            let Ok(line) = line else { break };
            let _ = tx.send((std::time::Instant::now(), line));
        }
    });
    rx
}

/// A scratch directory for one test, removed (with what the test wrote) when it is dropped.
pub fn scratch(tag: &str) -> tempfile::TempDir {
    tempfile::Builder::new().prefix(&format!("smtpscope-{tag}-")).tempdir().expect("create a scratch directory")
}

/// A path named `name` in a fresh scratch directory; keep the directory alive while the path is used.
pub fn scratch_file(name: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = scratch("test");
    let path = dir.path().join(name);
    (dir, path)
}

/// Raw IPv4 packets (as [`Dialogue::packets`] makes them) written as a classic pcap
/// (LINKTYPE_RAW) named `name` in a fresh scratch directory; keep the directory alive.
pub fn write_pcap(name: &str, packets: &[(i64, Vec<u8>)]) -> (tempfile::TempDir, PathBuf) {
    // Classic pcap header: magic, version 2.4, zone, sigfigs, snaplen, link type RAW (101).
    let mut b: Vec<u8> = 0xa1b2_c3d4u32.to_le_bytes().to_vec();
    b.extend_from_slice(&2u16.to_le_bytes());
    b.extend_from_slice(&4u16.to_le_bytes());
    for v in [0u32, 0, 65535, 101] {
        b.extend_from_slice(&v.to_le_bytes());
    }
    for (ts, data) in packets {
        for v in [(ts / 1_000_000) as u32, (ts % 1_000_000) as u32, data.len() as u32, data.len() as u32] {
            b.extend_from_slice(&v.to_le_bytes());
        }
        b.extend_from_slice(data);
    }
    let (dir, p) = scratch_file(name);
    std::fs::write(&p, b).expect("write the pcap");
    (dir, p)
}

/// The project's own captures.
pub fn bundled() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("captures")
}

/// The shared captures of other protocols (no session expected in any), or None (with a
/// message) when they are absent.
pub fn foreign_corpus() -> Option<PathBuf> {
    let dir = std::env::var_os("SMTPSCOPE_FOREIGN_CAPTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/captures/foreign"));
    if !capture_files(&dir).is_empty() {
        Some(dir)
    } else {
        assert!(
            std::env::var_os("SMTPSCOPE_REQUIRE_CORPUS").is_none(),
            "foreign corpus required but not found at {}",
            dir.display()
        );
        skipped("foreign corpus", &format!("not found at {} (set SMTPSCOPE_FOREIGN_CAPTURES)", dir.display()));
        None
    }
}

/// Every capture file (`.pcap`, `.pcapng`) of `dir`, sorted by name.
pub fn capture_files(dir: &Path) -> Vec<String> {
    let mut files: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.ends_with(".pcap") || n.ends_with(".pcapng"))
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}

/// Runs the engine over one file and returns the finished sessions.
pub fn sessions(path: &Path) -> Vec<Session> {
    sessions_with(path, Config::default())
}

/// Same, with an engine configuration.
pub fn sessions_with(path: &Path, cfg: Config) -> Vec<Session> {
    let mut reader = MergedReader::open(&[path.to_path_buf()], None).expect("open capture");
    let name: Arc<str> = Arc::from(path.file_name().unwrap().to_string_lossy().as_ref());
    let mut engine = Engine::new(cfg, vec![name], None);
    let mut out = Vec::new();
    while let Some(p) = reader.next_packet() {
        engine.packet(&p, &mut |s| out.push(s));
    }
    engine.finish(&mut |s| out.push(s));
    out
}

/// NDJSON records for one file.
pub fn records(path: &Path) -> Vec<Value> {
    sessions(path).iter().map(|s| record(s, Default::default())).collect()
}

/// Reads an expected.jsonl; a directory without one expects no session at all.
pub fn expected(dir: &Path) -> Vec<Value> {
    let path = dir.join("expected.jsonl");
    if !path.exists() {
        return Vec::new();
    }
    std::fs::read_to_string(path)
        .expect("read expected.jsonl")
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).expect("expected.jsonl line"))
        .collect()
}

/// Keys compared with the ground truth (`label` is compared with `verdict`).
pub const COMPARED: &[&str] = &[
    "client",
    "server",
    "helo",
    "starttls_offered",
    "upgrade_verb",
    "starttls_sent",
    "starttls_reply",
    "tls_handshake",
    "tls_version",
    "sni",
    "mail_transactions",
    "clean_close",
];

/// Compares every capture of a corpus (those its expected.jsonl names and every other capture
/// file in the directory, which then must report nothing); returns one line per disagreement.
pub fn disagreements(dir: &Path) -> (usize, Vec<String>) {
    let exp = expected(dir);
    let mut files: Vec<String> = exp.iter().map(|e| e["file"].as_str().unwrap().to_string()).collect();
    files.extend(capture_files(dir));
    files.sort();
    files.dedup();
    let mut problems = Vec::new();
    let mut checked = 0;
    for file in &files {
        let got = records(&dir.join(file));
        let want: Vec<&Value> = exp.iter().filter(|e| e["file"] == file.as_str()).collect();
        for w in &want {
            let found = got.iter().find(|g| g["client"] == w["client"] && g["server"] == w["server"]);
            let Some(g) = found else {
                problems.push(format!("{file}: missing session {} -> {}", w["client"], w["server"]));
                continue;
            };
            checked += 1;
            if g["verdict"] != w["label"] {
                problems.push(format!("{file} {}: verdict {} != label {}", w["client"], g["verdict"], w["label"]));
            }
            for k in COMPARED {
                if g[*k] != w[*k] {
                    problems.push(format!("{file} {}: {k} {} != {}", w["client"], g[*k], w[*k]));
                }
            }
        }
        for g in &got {
            if !want.iter().any(|w| g["client"] == w["client"] && g["server"] == w["server"]) {
                problems
                    .push(format!("{file}: unexpected session {} -> {} ({})", g["client"], g["server"], g["verdict"]));
            }
        }
    }
    (checked, problems)
}

/// One step of a scripted TCP conversation.
#[derive(Debug, Clone)]
enum Op {
    Handshake,
    Client(Vec<u8>),
    Server(Vec<u8>),
    Close,
    ClientRst,
    TimeJump(i64),
}

/// A scripted SMTP conversation turned into real IPv4/TCP packets (link type RAW), run through
/// the whole engine. Used where no real capture of a behaviour exists yet.
#[derive(Debug, Clone)]
pub struct Dialogue {
    client: ([u8; 4], u16),
    server: ([u8; 4], u16),
    isn: (u32, u32),
    ops: Vec<Op>,
}

impl Dialogue {
    /// A conversation from 10.9.0.1:`cport` to 10.9.0.2:`sport`, opened with a handshake.
    pub fn new(cport: u16, sport: u16) -> Self {
        Self {
            client: ([10, 9, 0, 1], cport),
            server: ([10, 9, 0, 2], sport),
            isn: (1000, 5000),
            ops: vec![Op::Handshake],
        }
    }

    /// Same, but the capture starts after the handshake.
    pub fn mid_stream(cport: u16, sport: u16) -> Self {
        Self { ops: Vec::new(), ..Self::new(cport, sport) }
    }

    /// Uses other initial sequence numbers (a new connection on the same 4-tuple).
    pub fn with_isn(mut self, c: u32, s: u32) -> Self {
        self.isn = (c, s);
        self
    }

    /// Client sends `b`.
    pub fn c(mut self, b: impl AsRef<[u8]>) -> Self {
        self.ops.push(Op::Client(b.as_ref().to_vec()));
        self
    }

    /// Server sends `b`.
    pub fn s(mut self, b: impl AsRef<[u8]>) -> Self {
        self.ops.push(Op::Server(b.as_ref().to_vec()));
        self
    }

    /// Both sides FIN.
    pub fn close(mut self) -> Self {
        self.ops.push(Op::Close);
        self
    }

    /// The client resets.
    pub fn rst(mut self) -> Self {
        self.ops.push(Op::ClientRst);
        self
    }

    /// Later packets are dated `secs` seconds later (or earlier).
    pub fn jump(mut self, secs: i64) -> Self {
        self.ops.push(Op::TimeJump(secs));
        self
    }

    /// Raw IPv4 packets with timestamps; data split into segments of at most `mss` bytes.
    pub fn packets(&self, mss: usize) -> Vec<(i64, Vec<u8>)> {
        self.packets_split(mss, None)
    }

    /// How many data-carrying steps (`c`/`s`) the dialogue has, with each one's length.
    pub fn data_steps(&self) -> Vec<usize> {
        self.ops
            .iter()
            .filter_map(|op| match op {
                Op::Client(d) | Op::Server(d) => Some(d.len()),
                _ => None,
            })
            .collect()
    }

    /// Like [`Self::packets`], and data step `split.0` (counting `c`/`s` steps from 0) is also
    /// cut after byte `split.1`.
    pub fn packets_split(&self, mss: usize, split: Option<(usize, usize)>) -> Vec<(i64, Vec<u8>)> {
        let mut out = Vec::new();
        let (mut cs, mut ss) = self.isn;
        let mut ts: i64 = 1_700_000_000_000_000;
        let mut step = 0;
        let mut push = |from_client: bool, seq: u32, ack: u32, flags: &str, data: &[u8], ts: &mut i64| {
            let (src, dst) = if from_client { (self.client, self.server) } else { (self.server, self.client) };
            let mut b = etherparse::PacketBuilder::ipv4(src.0, dst.0, 64).tcp(src.1, dst.1, seq, 65535);
            if flags.contains('S') {
                b = b.syn();
            }
            if flags.contains('A') {
                b = b.ack(ack);
            }
            if flags.contains('F') {
                b = b.fin();
            }
            if flags.contains('R') {
                b = b.rst();
            }
            if flags.contains('P') {
                b = b.psh();
            }
            let mut v = Vec::new();
            b.write(&mut v, data).unwrap();
            *ts += 1000;
            out.push((*ts, v));
        };
        for op in &self.ops {
            match op {
                Op::Handshake => {
                    push(true, cs, 0, "S", &[], &mut ts);
                    push(false, ss, cs.wrapping_add(1), "SA", &[], &mut ts);
                    cs = cs.wrapping_add(1);
                    ss = ss.wrapping_add(1);
                    push(true, cs, ss, "A", &[], &mut ts);
                }
                Op::Client(d) | Op::Server(d) => {
                    let from_client = matches!(op, Op::Client(_));
                    let cut = split.filter(|s| s.0 == step).map(|s| s.1.min(d.len()));
                    step += 1;
                    let parts = match cut {
                        Some(at) => vec![&d[..at], &d[at..]],
                        None => vec![&d[..]],
                    };
                    for part in parts {
                        for chunk in part.chunks(mss.max(1)) {
                            if from_client {
                                push(true, cs, ss, "AP", chunk, &mut ts);
                                cs = cs.wrapping_add(chunk.len() as u32);
                            } else {
                                push(false, ss, cs, "AP", chunk, &mut ts);
                                ss = ss.wrapping_add(chunk.len() as u32);
                            }
                        }
                    }
                }
                Op::Close => {
                    push(true, cs, ss, "AF", &[], &mut ts);
                    cs = cs.wrapping_add(1);
                    push(false, ss, cs, "AF", &[], &mut ts);
                    ss = ss.wrapping_add(1);
                    push(true, cs, ss, "A", &[], &mut ts);
                }
                Op::ClientRst => push(true, cs, ss, "R", &[], &mut ts),
                Op::TimeJump(s) => ts += s * 1_000_000,
            }
        }
        out
    }

    /// Runs the packets (segments of at most `mss` bytes) through a fresh engine.
    pub fn run_mss(&self, mss: usize) -> Vec<Session> {
        run_packets(&self.packets(mss))
    }

    /// Runs with 1460-byte segments.
    pub fn run(&self) -> Vec<Session> {
        self.run_mss(1460)
    }

    /// The single session this dialogue should produce, as its NDJSON record.
    pub fn record(&self) -> Value {
        let s = self.run();
        assert_eq!(s.len(), 1, "expected one session, got {}", s.len());
        record(&s[0], Default::default())
    }
}

/// Runs raw IPv4 packets through a fresh engine.
pub fn run_packets(pkts: &[(i64, Vec<u8>)]) -> Vec<Session> {
    run_packets_with(Config::default(), pkts).0
}

/// Runs raw IPv4 packets through a fresh engine as a capture with snapshot length `snaplen`
/// would store them: each cut to `snaplen` bytes, its original length kept.
pub fn run_packets_snaplen(pkts: &[(i64, Vec<u8>)], snaplen: usize) -> Vec<Session> {
    let mut engine = Engine::new(Config::default(), vec![Arc::from("synthetic")], None);
    let mut out = Vec::new();
    feed_packets(&mut engine, pkts, snaplen, &mut |s| out.push(s));
    engine.finish(&mut |s| out.push(s));
    out
}

/// Runs raw IPv4 packets through a fresh engine with `cfg`; returns the sessions and the engine
/// (for its counters).
pub fn run_packets_with(cfg: Config, pkts: &[(i64, Vec<u8>)]) -> (Vec<Session>, Engine) {
    let mut engine = Engine::new(cfg, vec![Arc::from("synthetic")], None);
    let mut out = Vec::new();
    feed_packets(&mut engine, pkts, usize::MAX, &mut |s| out.push(s));
    engine.finish(&mut |s| out.push(s));
    (out, engine)
}

/// Feeds raw IPv4 packets (frames numbered from 1) to `engine`, each cut to `snaplen` bytes.
pub fn feed_packets(engine: &mut Engine, pkts: &[(i64, Vec<u8>)], snaplen: usize, out: &mut dyn FnMut(Session)) {
    for (i, (ts, data)) in pkts.iter().enumerate() {
        let p = smtpscope::capture::Packet {
            ts: *ts,
            data: data.get(..snaplen.min(data.len())).unwrap(),
            orig_len: data.len() as u32,
            linktype: smtpscope::decode::link::dlt::RAW,
            source: 0,
            frame: i as u64 + 1,
        };
        engine.packet(&p, out);
    }
}

/// A TLS record of content type `ct` carrying `body`.
pub fn tls_record(ct: u8, body: &[u8]) -> Vec<u8> {
    let mut v = vec![ct, 3, 3];
    v.extend_from_slice(&(body.len() as u16).to_be_bytes());
    v.extend_from_slice(body);
    v
}

fn handshake(kind: u8, body: &[u8]) -> Vec<u8> {
    let mut v = vec![kind];
    v.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
    v.extend_from_slice(body);
    v
}

/// A minimal TLS 1.2 ClientHello record with an SNI extension.
pub fn client_hello(sni: &str) -> Vec<u8> {
    let mut b = vec![3, 3];
    b.extend_from_slice(&[7u8; 32]);
    b.push(0); // session id
    b.extend_from_slice(&[0, 4, 0xc0, 0x2f, 0x13, 0x01]); // cipher suites
    b.extend_from_slice(&[1, 0]); // compression
    let name = sni.as_bytes();
    let mut sni_ext = Vec::new();
    sni_ext.extend_from_slice(&((name.len() + 3) as u16).to_be_bytes());
    sni_ext.push(0);
    sni_ext.extend_from_slice(&(name.len() as u16).to_be_bytes());
    sni_ext.extend_from_slice(name);
    let mut exts = vec![0, 0];
    exts.extend_from_slice(&(sni_ext.len() as u16).to_be_bytes());
    exts.extend_from_slice(&sni_ext);
    b.extend_from_slice(&(exts.len() as u16).to_be_bytes());
    b.extend_from_slice(&exts);
    tls_record(22, &handshake(1, &b))
}

/// A minimal ServerHello record: TLS 1.2 (`tls13` false) or TLS 1.3 via supported_versions.
pub fn server_hello(tls13: bool) -> Vec<u8> {
    let mut b = vec![3, 3];
    b.extend_from_slice(&[9u8; 32]);
    b.push(0);
    if tls13 {
        b.extend_from_slice(&[0x13, 0x01, 0]);
        b.extend_from_slice(&[0, 6, 0, 0x2b, 0, 2, 3, 4]);
    } else {
        b.extend_from_slice(&[0xc0, 0x2f, 0]);
    }
    tls_record(22, &handshake(2, &b))
}

/// A cleartext fatal alert.
pub fn fatal_alert(desc: u8) -> Vec<u8> {
    tls_record(21, &[2, desc])
}

/// The usual opening: greeting, EHLO and a reply advertising `exts`.
pub fn opening(d: Dialogue, exts: &[&str]) -> Dialogue {
    let mut reply = String::from("250-mx.example.org Hello\r\n");
    for (i, e) in exts.iter().enumerate() {
        let sep = if i + 1 == exts.len() { ' ' } else { '-' };
        reply.push_str(&format!("250{sep}{e}\r\n"));
    }
    if exts.is_empty() {
        reply = "250 mx.example.org Hello\r\n".into();
    }
    d.s("220 mx.example.org ESMTP\r\n").c("EHLO client.example.org\r\n").s(reply)
}

/// A live record as the same session read back from its `-w` file shows it: the keys that say
/// where and by whom it was captured (`file`, `interface`, `sensor`, `pcap_file`, each evidence
/// item's `file`) set to null.
pub fn without_capture_keys(r: &mut Value) {
    for k in ["file", "interface", "sensor", "pcap_file"] {
        r[k] = Value::Null;
    }
    if let Some(ev) = r["evidence"].as_array_mut() {
        for e in ev {
            e["file"] = Value::Null;
        }
    }
}

/// The bundled lab's Postfix server log with one line added: a TLS success line inside the
/// first session, which the wire saw in clear (as when TLS ends at a box before the server).
/// The log and the wire then differ on `tls`. Written into `dir`.
#[allow(dead_code)]
pub fn log_claiming_tls(dir: &Path) -> PathBuf {
    let text = std::fs::read_to_string(bundled().join("logs/postfix-srv.maillog")).expect("read the lab log");
    let mut out = String::new();
    let mut added = false;
    for line in text.lines() {
        if !added && line.contains("postfix/smtpd[5481]: disconnect from") {
            out.push_str(
                "Dec 07 03:13:16 mx postfix/smtpd[5481]: Anonymous TLS connection established from unknown[10.232.0.1]: TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits)\n",
            );
            added = true;
        }
        out.push_str(line);
        out.push('\n');
    }
    assert!(added, "the lab log's first session is where the test expects it");
    let path = dir.join("postfix-srv.maillog");
    std::fs::write(&path, out).expect("write the log");
    path
}
