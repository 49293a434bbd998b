//! ClickHouse as the central store: Debian's clickhouse-server (18.16 on Debian 12) started on
//! loopback from a private configuration and data directory, `docs/clickhouse/schema.sql` loaded
//! unchanged, the multi-site capture's rows loaded with the documented command (twice: FINAL
//! must count them once), and the documented queries checked against `pairs` and `check`.
//! Needs root and SMTPSCOPE_CLICKHOUSE_TEST=1 (`.ci/run` sets both); installs the packages with
//! apt-get when they are missing.

mod common;

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{bundled, root_and, scratch};

fn repo(p: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(p)
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// The server, stopped (by its own pid) when dropped.
struct Server {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    fn start() -> Server {
        let dir = scratch("clickhouse");
        let d = dir.path();
        for sub in ["data", "tmp", "log", "user_files"] {
            std::fs::create_dir_all(d.join(sub)).unwrap();
        }
        let (port, http) = (free_port(), free_port());
        let config = format!(
            "<yandex>\n\
             <logger><level>warning</level><log>{d}/log/server.log</log><errorlog>{d}/log/error.log</errorlog><console>0</console></logger>\n\
             <listen_host>127.0.0.1</listen_host><tcp_port>{port}</tcp_port><http_port>{http}</http_port>\n\
             <path>{d}/data/</path><tmp_path>{d}/tmp/</tmp_path><user_files_path>{d}/user_files/</user_files_path>\n\
             <users_config>{d}/users.xml</users_config><default_profile>default</default_profile>\n\
             <default_database>default</default_database><mark_cache_size>268435456</mark_cache_size>\n\
             </yandex>\n",
            d = d.display()
        );
        std::fs::write(d.join("config.xml"), config).unwrap();
        std::fs::write(
            d.join("users.xml"),
            "<yandex><profiles><default/></profiles><quotas><default/></quotas><users><default>\
             <password></password><networks><ip>127.0.0.1</ip></networks><profile>default</profile>\
             <quota>default</quota></default></users></yandex>\n",
        )
        .unwrap();
        let child = Command::new("clickhouse-server")
            .arg(format!("--config-file={}", d.join("config.xml").display()))
            .current_dir(d)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start clickhouse-server");
        let server = Server { child, port, _dir: dir };
        let deadline = Instant::now() + Duration::from_secs(60);
        while server.query("SELECT 1").trim() != "1" {
            assert!(Instant::now() < deadline, "clickhouse-server did not answer on 127.0.0.1:{port}");
            std::thread::sleep(Duration::from_millis(250));
        }
        server
    }

    fn client(&self) -> Command {
        let mut c = Command::new("clickhouse-client");
        c.args(["--host", "127.0.0.1", "--port", &self.port.to_string()]);
        c
    }

    /// Runs a query; its TabSeparated output (empty on error).
    fn query(&self, q: &str) -> String {
        let o = self.client().args(["--query", q]).stderr(Stdio::null()).output().expect("run clickhouse-client");
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    fn multiquery(&self, sql: &Path) {
        let st = self.client().arg("--multiquery").stdin(std::fs::File::open(sql).unwrap()).status().unwrap();
        assert!(st.success(), "{} failed", sql.display());
    }
}

/// A documented query by its `-- name:` line, without comments.
fn named_query(name: &str) -> String {
    let text = std::fs::read_to_string(repo("docs/clickhouse/queries.sql")).unwrap();
    let stmt = text
        .split(';')
        .find(|s| s.lines().any(|l| l.trim() == format!("-- name: {name}")))
        .unwrap_or_else(|| panic!("no query named {name}"));
    stmt.lines().filter(|l| !l.trim_start().starts_with("--")).collect::<Vec<_>>().join("\n")
}

fn smtpscope(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_smtpscope")).args(args).output().unwrap()
}

fn ensure_installed() {
    let have = |b: &str| Command::new("sh").args(["-c", &format!("command -v {b}")]).output().unwrap().status.success();
    if !(have("clickhouse-server") && have("clickhouse-client")) {
        let st = Command::new("apt-get")
            .args(["install", "-y", "--no-install-recommends", "clickhouse-server", "clickhouse-client"])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()
            .expect("apt-get");
        assert!(st.success(), "apt-get install clickhouse-server failed");
    }
}

#[test]
fn the_documented_schema_load_and_queries_agree_with_pairs_and_check() {
    if !root_and("SMTPSCOPE_CLICKHOUSE_TEST", "the ClickHouse test") {
        return;
    }
    ensure_installed();
    let server = Server::start();
    server.multiquery(&repo("docs/clickhouse/schema.sql"));
    let cap = bundled().join("multi-site.pcap");
    let cap = cap.to_str().unwrap();
    // The documented command, twice: the second load must not count twice.
    let load = format!(
        "'{}' -q -r '{cap}' -F clickhouse | clickhouse-client --host 127.0.0.1 --port {} --query 'INSERT INTO smtpscope.sessions FORMAT JSONEachRow'",
        env!("CARGO_BIN_EXE_smtpscope"),
        server.port
    );
    for _ in 0..2 {
        let st = Command::new("sh").args(["-c", &load]).status().unwrap();
        assert!(st.success(), "loading failed");
    }
    assert_eq!(server.query("SELECT count() FROM smtpscope.sessions FINAL").trim(), "12");

    // Pairs: per client host x server host x server port, sessions per verdict, as `pairs -F json`'s by_port.
    let mut from_sql: BTreeMap<(String, String, u16), BTreeMap<String, u64>> = BTreeMap::new();
    for line in server.query(&named_query("pairs_per_week")).lines() {
        let f: Vec<&str> = line.split('\t').collect();
        let [_week, client, server_host, port, verdict, n] = f[..] else { panic!("bad row {line}") };
        *from_sql
            .entry((client.into(), server_host.into(), port.parse().unwrap()))
            .or_default()
            .entry(verdict.into())
            .or_default() += n.parse::<u64>().unwrap();
    }
    let mut from_pairs: BTreeMap<(String, String, u16), BTreeMap<String, u64>> = BTreeMap::new();
    let o = smtpscope(&["pairs", "-q", "-r", cap, "-F", "json"]);
    for pair in common::ndjson(&o.stdout) {
        for bp in pair["by_port"].as_array().unwrap() {
            let key = (
                pair["client_host"].as_str().unwrap().to_string(),
                pair["server_host"].as_str().unwrap().to_string(),
                bp["port"].as_u64().unwrap() as u16,
            );
            let verdicts = bp["verdicts"].as_object().unwrap().iter().map(|(k, v)| (k.clone(), v.as_u64().unwrap()));
            from_pairs.entry(key).or_default().extend(verdicts);
        }
    }
    assert!(!from_pairs.is_empty());
    assert_eq!(from_sql, from_pairs);

    // Violations between POA and TOR: the documented query against check over the records.
    let tmp = scratch("clickhouse-records");
    let recs = tmp.path().join("ms.ndjson");
    std::fs::write(&recs, smtpscope(&["-q", "-r", cap, "-F", "json"]).stdout).unwrap();
    for (name, expect) in [("violations_plaintext", "plaintext"), ("violations_tls", "tls")] {
        let mut sql: Vec<(String, String, String)> = server
            .query(&named_query(name))
            .lines()
            .map(|l| {
                let f: Vec<&str> = l.split('\t').collect();
                let us: i64 = f[3].parse().unwrap();
                (f[0].to_string(), f[1].to_string(), smtpscope::timefmt::rfc3339(us))
            })
            .collect();
        let o = smtpscope(&[
            "check",
            "-q",
            "-R",
            recs.to_str().unwrap(),
            "--expect",
            expect,
            "--between",
            "10.1.0.0/24",
            "10.2.0.0/24",
            "-F",
            "json",
        ]);
        let mut check: Vec<(String, String, String)> = common::ndjson(&o.stdout)
            .into_iter()
            .filter(|l| l["type"] == "session" && l["outcome"] == "violation")
            .map(|l| {
                let s = |k: &str| l[k].as_str().unwrap().to_string();
                (s("client"), s("server"), s("first_seen"))
            })
            .collect();
        sql.sort();
        check.sort();
        assert!(!check.is_empty(), "{expect}: the capture has violations to find");
        assert_eq!(sql, check, "{name}");
    }

    // The other documented queries run and answer.
    assert!(server.query(&named_query("tls_versions_per_server")).contains("TLS1.2"));
    assert!(server
        .query(&format!("SELECT count() FROM ({})", named_query("certificates_expiring")))
        .trim()
        .parse::<u64>()
        .is_ok());
}
