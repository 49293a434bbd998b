//! The terminal UI beside server logs (`--logs`), drawn into ratatui's TestBackend from the
//! bundled Postfix lab pair: the LOG column (agree, differ as a warning, none), the `log:`
//! filter, sorting by LOG, and the "5 Log" tab with the matched session and its logged lines,
//! envelope addresses reduced to their domain. Without `--logs` the column is absent and the tab
//! says why; the SENSOR column shows for sessions of more than one sensor.

mod common;

use std::sync::Arc;
use std::time::Instant;

use ratatui::backend::TestBackend;
use ratatui::buffer::Buffer;
use ratatui::Terminal;
use smtpscope::engine::Config;
use smtpscope::logs::matching::CrossCheck;
use smtpscope::logs::{self, LogOptions};
use smtpscope::session::Session;
use smtpscope::tui::app::{Action, App, SourceInfo, Tab};
use smtpscope::tui::feed::Update;
use smtpscope::tui::render;
use smtpscope::tui::store::Column;
use smtpscope::tui::theme::Theme;

/// The lab pair's wire sessions, each linked with the Postfix and Exchange-style logs as
/// `-r postfix-pairs.pcap --logs … --log-tz UTC --log-skew 1s` links them; the server log claims
/// TLS on one session the wire saw in clear, so that one differs.
fn linked() -> Vec<Session> {
    let dir = common::bundled().join("logs");
    let mut wire =
        common::sessions_with(&dir.join("postfix-pairs.pcap"), Config { transcript: true, ..Config::default() });
    let opts = LogOptions {
        tz: jiff::tz::TimeZone::UTC,
        reference: wire.first().map(|s| s.first_seen),
        ..LogOptions::default()
    };
    let mut records = Vec::new();
    let scratch = common::scratch("tuilogs");
    let srv = common::log_claiming_tls(scratch.path());
    for f in [srv, dir.join("postfix-cli.maillog"), dir.join("exchange-RECV.LOG")] {
        logs::read_path(f.to_str().unwrap(), &opts, &mut |r| records.push(r)).unwrap();
    }
    let mut check = CrossCheck::new(records, 1_000_000);
    for s in &mut wire {
        check.link(s);
    }
    wire
}

fn app_with(sessions: Vec<Session>) -> App {
    app_of(SourceInfo { label: "file test.pcap".into(), bpf: None, live: false, logs: false }, sessions)
}

/// A UI over `source` that has read `sessions` to the end.
fn app_of(source: SourceInfo, sessions: Vec<Session>) -> App {
    let mut app = App::new(source, Theme { color: true }, false);
    app.ingest(Update::Finished(sessions));
    app.ingest(Update::Progress(smtpscope::driver::Progress { done: true, ..Default::default() }));
    app.rebuild(Instant::now());
    app
}

fn draw(app: &mut App, w: u16, h: u16) -> Buffer {
    let mut t = Terminal::new(TestBackend::new(w, h)).unwrap();
    t.draw(|f| render::draw(f, app)).unwrap();
    t.backend().buffer().clone()
}

fn lines(b: &Buffer) -> Vec<String> {
    (0..b.area.height).map(|y| (0..b.area.width).map(|x| b[(x, y)].symbol().to_string()).collect::<String>()).collect()
}

fn screen(b: &Buffer) -> String {
    lines(b).join("\n")
}

/// The session table's rows (between its title and the detail pane).
fn table_rows(b: &Buffer) -> Vec<String> {
    let all = lines(b);
    let start = all.iter().position(|l| l.contains("Sessions ")).unwrap() + 2;
    all[start..].iter().take_while(|l| !l.contains("1 Transcript")).cloned().collect()
}

fn agreement(s: &Session) -> &'static str {
    match &s.logs {
        None => "-",
        Some(l) if l.is_empty() => "none",
        Some(l) if l.iter().all(|x| x.agree) => "agree",
        Some(_) => "differ",
    }
}

#[test]
fn the_log_column_says_agree_differ_or_none_for_each_session() {
    let mut wire = linked();
    // A session no log matched reads `none`.
    let mut lone = wire[0].clone();
    lone.id = 9_999;
    lone.client.set_port(1);
    lone.logs = Some(Vec::new());
    wire.push(lone);
    let want: Vec<&str> = wire.iter().map(agreement).collect();
    assert!(want.contains(&"agree") && want.contains(&"differ"), "the lab pair has both: {want:?}");
    let mut app = app_with(wire);
    let b = draw(&mut app, 200, 60);
    let s = screen(&b);
    assert!(!table_rows(&b).is_empty(), "{s}");
    let header = lines(&b).into_iter().find(|l| l.contains("VERDICT")).unwrap();
    assert!(header.contains("LOG"), "{header}");
    let rows = table_rows(&b);
    let count = |w: &str| rows.iter().filter(|r| r.split_whitespace().any(|c| c == w)).count();
    for w in ["agree", "differ", "none"] {
        assert_eq!(count(w), want.iter().filter(|x| **x == w).count(), "{w}:\n{s}");
    }
    // `differ` is a warning, `agree` is not.
    let at = |w: &str| {
        let (y, l) = lines(&b).into_iter().enumerate().find(|(_, l)| l.split_whitespace().any(|c| c == w)).unwrap();
        let x = l[..l.find(&format!(" {w}")).unwrap() + 1].chars().count();
        b[(x as u16, y as u16)].fg
    };
    assert_eq!(at("differ"), Theme { color: true }.warn().fg.unwrap());
    assert_ne!(at("agree"), at("differ"));
}

#[test]
fn without_logs_there_is_no_log_column_and_the_log_tab_says_how_to_get_one() {
    let mut app = app_with(common::sessions(&common::bundled().join("demo.pcap")));
    let b = draw(&mut app, 200, 40);
    let header = lines(&b).into_iter().find(|l| l.contains("VERDICT")).unwrap();
    assert!(!header.contains("LOG"), "{header}");
    app.apply(Action::Tab(Tab::Log));
    let s = screen(&draw(&mut app, 200, 40));
    assert!(s.contains("5 Log"), "{s}");
    assert!(s.contains("no server logs in this run: add --logs PATH"), "{s}");
}

#[test]
fn the_log_filter_keeps_the_sessions_whose_log_differs_or_agrees() {
    let wire = linked();
    let differ = wire.iter().filter(|s| agreement(s) == "differ").count();
    let agree = wire.iter().filter(|s| agreement(s) == "agree").count();
    assert!(differ > 0 && agree > 0);
    let mut app = app_with(wire);
    for (f, n) in [("log:differ", differ), ("log:agree", agree), ("log:none", 0), ("!log:differ", agree)] {
        app.set_filter_text(f).unwrap();
        assert_eq!(app.store.len(), n, "{f}");
    }
    let mut plain = app_with(common::sessions(&common::bundled().join("demo.pcap")));
    plain.set_filter_text("log:none").unwrap();
    assert_eq!(plain.store.len(), 0, "a run without --logs has no log to compare");
    assert!(app.set_filter_text("log:maybe").is_err());
}

#[test]
fn sorting_by_log_puts_the_disagreements_together() {
    let wire = linked();
    let differ = wire.iter().filter(|s| agreement(s) == "differ").count();
    assert!(differ > 0 && differ < wire.len());
    let mut app = app_with(wire);
    app.store.set_sort(Column::Log, true);
    let order: Vec<&str> = (0..app.store.len()).map(|i| agreement(&app.store.get(i).unwrap())).collect();
    assert!(order[..differ].iter().all(|a| *a == "differ"), "{order:?}");
    assert!(order[differ..].iter().all(|a| *a != "differ"), "{order:?}");
}

#[test]
fn the_log_tab_shows_the_matched_session_its_differences_and_its_masked_lines() {
    let wire = linked();
    let pick = wire.iter().position(|s| agreement(s) == "differ").unwrap();
    let link = wire[pick].logs.as_ref().unwrap().iter().find(|l| !l.agree).unwrap().clone();
    let mut app = app_with(wire);
    app.set_filter_text("log:differ").unwrap();
    app.apply(Action::Tab(Tab::Log));
    let s = screen(&draw(&mut app, 200, 70));
    assert!(s.contains(&format!("{} · differs", link.source)), "{s}");
    assert!(s.contains(&link.log_session), "{s}");
    assert!(s.contains(&format!("Log verdict   {}", link.verdict.name())), "{s}");
    assert!(s.contains(&format!("Differences   {}", link.differences.join(", "))), "{s}");
    assert!(s.contains("logged line(s)"), "{s}");
    assert!(s.contains("connect from"), "the matched log lines are shown:\n{s}");
    // An envelope address in a logged line keeps only its domain.
    let with_address = link.lines.iter().find(|l| l.contains("from=<"));
    if let Some(l) = with_address {
        let local = &l[l.find("from=<").unwrap() + 6..l.find('@').unwrap()];
        assert!(!s.contains(&format!("{local}@")), "{s}");
    }
}

#[test]
fn the_log_tab_scrolls_through_long_lines_lists() {
    let wire = linked();
    let pick =
        wire.iter().max_by_key(|s| s.logs.as_ref().map_or(0, |l| l.iter().map(|x| x.lines.len()).sum())).unwrap();
    let last = pick.logs.as_ref().unwrap().iter().flat_map(|l| l.lines.iter()).last().unwrap().clone();
    let id = pick.id;
    let mut app = app_with(wire);
    let row = app.store.position(id).unwrap();
    for _ in 0..row {
        app.apply(Action::Down);
    }
    assert_eq!(app.current().unwrap().id, id);
    app.apply(Action::Tab(Tab::Log));
    app.apply(Action::NextPane);
    // A short pane cannot show every line: scrolling down reaches the last one.
    let tail = |app: &mut App| screen(&draw(app, 220, 24)).contains(&last[last.len().saturating_sub(30)..]);
    let shown_first = tail(&mut app);
    for _ in 0..200 {
        app.apply(Action::Down);
    }
    assert!(tail(&mut app), "the last logged line is reached by scrolling");
    assert!(!shown_first || last.len() < 30, "the pane was too tall to prove scrolling");
}

#[test]
fn the_sensor_column_shows_for_sessions_of_more_than_one_sensor() {
    let mut wire = common::sessions(&common::bundled().join("demo.pcap"));
    let mut app = app_with(wire.clone());
    let header = |app: &mut App| lines(&draw(app, 200, 40)).into_iter().find(|l| l.contains("VERDICT")).unwrap();
    assert!(!header(&mut app).contains("SENSOR"));
    for (i, s) in wire.iter_mut().enumerate() {
        s.sensor = Some(Arc::from(if i == 0 { "poa-hub" } else { "tor-hub" }));
    }
    let mut app = app_with(wire.clone());
    assert!(header(&mut app).contains("SENSOR"));
    let s = screen(&draw(&mut app, 200, 40));
    assert!(s.contains("poa-hub") && s.contains("tor-hub"), "{s}");
    // One sensor: a column only when the run named it (--sensor, -R).
    for s in &mut wire {
        s.sensor = Some(Arc::from("tor-hub"));
    }
    let mut app = app_with(wire.clone());
    assert!(!header(&mut app).contains("SENSOR"));
    let mut app = app_with(Vec::new());
    app.store.set_sensor_column(true);
    app.ingest(Update::Finished(wire));
    app.rebuild(Instant::now());
    assert!(header(&mut app).contains("SENSOR"));
}

/// The first demo session with one matched log session whose lines are `lines`.
fn with_log_lines(lines: &[&str]) -> Session {
    let mut s = common::sessions(&common::bundled().join("demo.pcap")).remove(0);
    s.logs = Some(vec![smtpscope::session::logs::LogLink {
        source: "exchange-receive",
        log_file: "RECV2026120716-1.LOG".into(),
        log_session: "08DE5A0000000009".into(),
        verdict: smtpscope::session::Verdict::Starttls,
        agree: true,
        differences: Vec::new(),
        hint: None,
        hint_text: None,
        lines: lines.iter().map(|l| l.to_string()).collect(),
    }]);
    s
}

#[test]
fn logged_lines_are_defused_and_auth_users_and_envelope_addresses_masked_unless_asked() {
    let lines = [
        "2026-12-07T03:13:53.293Z,EXHUB09\\Default EXHUB09,08DE5A0000000009,4,10.232.0.9:25,10.232.0.1:47128,<,AUTH PLAIN dXNlcgBwYXNz,",
        "2026-12-07T03:13:53.293Z,EXHUB09\\Default EXHUB09,08DE5A0000000009,6,10.232.0.9:25,10.232.0.1:47128,<,MAIL FROM:<alice@contoso.com>,",
        "2026-12-07T03:13:53.294Z,EXHUB09\\Default EXHUB09,08DE5A0000000009,7,10.232.0.9:25,10.232.0.1:47128,>,250 \u{1b}[2J\u{202e}OK,",
    ];
    let mut app = app_with(vec![with_log_lines(&lines)]);
    app.apply(Action::Tab(Tab::Log));
    let s = screen(&draw(&mut app, 220, 40));
    assert!(s.contains("EXHUB09\\Default EXHUB09"), "the log's own backslash as in the file:\n{s}");
    assert!(s.contains("<,AUTH PLAIN ***,") && !s.contains("dXNlcgBwYXNz"), "{s}");
    assert!(s.contains("contoso.com") && !s.contains("alice"), "{s}");
    assert!(s.contains("250 \\x1B[2J\\u{202E}OK") && !s.contains('\u{1b}') && !s.contains('\u{202e}'), "{s}");
    let mut app = app_with(vec![with_log_lines(&lines)]);
    app.show_addresses = true;
    app.show_credentials = true;
    app.apply(Action::Tab(Tab::Log));
    let s = screen(&draw(&mut app, 220, 40));
    assert!(s.contains("dXNlcgBwYXNz") && s.contains("alice@contoso.com"), "{s}");
}

/// The log sessions `smtpscope logs --log-tz UTC` reads from the real samples: the lab's
/// Postfix server and client logs, its Exchange-style protocol log and the published Exchange
/// 2013+ excerpt; each a row as the `logs` UI makes it.
fn log_rows() -> (Vec<Session>, Vec<smtpscope::logs::LogRecord>) {
    let dir = common::bundled().join("logs");
    let sample = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/logs/exchange/recv-2013plus-starttls-tls12-oneline-cert.log");
    let opts = LogOptions { tz: jiff::tz::TimeZone::UTC, ..LogOptions::default() };
    let mut records = Vec::new();
    for f in [dir.join("postfix-srv.maillog"), dir.join("postfix-cli.maillog"), dir.join("exchange-RECV.LOG"), sample] {
        logs::read_path(f.to_str().unwrap(), &opts, &mut |r| records.push(r)).unwrap();
    }
    let rows = records.iter().cloned().zip(1..).map(|(r, id)| smtpscope::tui::logrow::row(r, id)).collect();
    (rows, records)
}

fn logs_app(rows: Vec<Session>) -> App {
    app_of(SourceInfo { label: "logs postfix-srv.maillog".into(), bpf: None, live: false, logs: true }, rows)
}

#[test]
fn each_log_session_is_a_row_with_its_source_endpoints_verdict_and_tls_and_no_wire_columns() {
    let (rows, records) = log_rows();
    let n = records.len();
    let mut app = logs_app(rows);
    // Tall enough for every row in the table's two fifths.
    let b = draw(&mut app, 200, 100);
    let s = screen(&b);
    assert!(s.contains(&format!("Sessions {n}/{n}")), "{s}");
    let header = lines(&b).into_iter().find(|l| l.contains("VERDICT")).unwrap();
    for col in ["TIME", "SOURCE", "CLIENT", "SERVER", "PORT", "HELO", "VERDICT", "TLS", "FINDINGS"] {
        assert!(header.contains(col), "{col}: {header}");
    }
    // A log counts neither accepted messages nor bytes, and is not compared with itself.
    for col in ["MSGS", "BYTES", "LOG ", "SENSOR"] {
        assert!(!header.contains(col), "{col}: {header}");
    }
    let table = table_rows(&b);
    for r in &records {
        let time = smtpscope::report::rfc3339(r.first_seen)[..19].replace('T', " ");
        // What the log does not name reads `-`: Postfix smtpd never logs its own address, nor
        // Postfix's client the port it connects from.
        let client = r.client.map_or("-".to_string(), |c| c.to_string());
        let server = r.server.map_or("-".to_string(), |e| e.ip.to_string());
        let cells = |l: &str| l.trim_matches('│').split_whitespace().map(String::from).collect::<Vec<_>>();
        let row = table
            .iter()
            .map(|l| cells(l))
            .find(|c| {
                c.len() > 8
                    && format!("{} {}", c[0], c[1]) == time
                    && c[2] == r.source.name()
                    && c[3] == client
                    && c[4] == server
                    && c.contains(&r.verdict.name().to_string())
            })
            .unwrap_or_else(|| panic!("no row for {} {}:\n{s}", r.log_session, r.verdict.name()));
        let port = r.server.and_then(|e| e.port).map_or("-".to_string(), |p| p.to_string());
        assert_eq!(row[5], port, "{row:?}");
        assert!(row.contains(&r.tls_version.clone().unwrap_or("-".into())), "{row:?}");
    }
    // The published Exchange excerpt: its endpoints, HELO and TLS version as logged.
    let ex = table.iter().find(|l| l.contains("95.10.20.33:56026")).expect("the Exchange sample's session");
    assert!(ex.contains("exchange-receive") && ex.contains("10.10.10.10") && ex.contains("   25 "), "{ex}");
    assert!(ex.contains("[95.10.20.33]") && ex.contains("starttls") && ex.contains("TLS1.2"), "{ex}");
    // The verdict chips count the log sessions.
    let failed = records.iter().filter(|r| r.verdict == smtpscope::session::Verdict::StarttlsFailed).count();
    assert!(s.contains(&format!("starttls-failed {failed}")), "{s}");
}

#[test]
fn the_filter_bar_judges_a_log_session_on_its_record_as_logs_y_does() {
    let (rows, records) = log_rows();
    let mut app = logs_app(rows);
    for f in [
        "verdict:starttls",
        "verdict:starttls-failed or verdict:starttls-refused",
        "tls:>=1.3",
        "client:10.232.0.0/16 !verdict:plaintext",
        "server:10.232.0.9",
        "port:25",
        // Free text matches the session's logged lines (and nothing of a wire session's).
        "\"SSL_accept error\"",
        "\"Queued mail\"",
        "\"X-ANONYMOUSTLS\"",
        "helo:*.contoso.com",
        "finding:cleartext-auth",
        "!verdict:plaintext",
    ] {
        let filter = smtpscope::filter::Filter::parse(f).unwrap();
        let want = records.iter().filter(|r| filter.matches_log(r)).count();
        app.set_filter_text(f).unwrap();
        while app.store.filtering().is_some() {
            app.tick(Instant::now());
        }
        app.rebuild(Instant::now());
        assert_eq!(app.store.len(), want, "{f}");
    }
    // A log session is never open or done in the wire's sense, and has no log to compare.
    for f in ["state:open", "state:done", "log:agree", "log:none", "sensor:*"] {
        app.set_filter_text(f).unwrap();
        assert_eq!(app.store.len(), 0, "{f} matches nothing");
    }
    app.set_filter_text("\"SSL_accept error\"").unwrap();
    let b = draw(&mut app, 200, 50);
    let rows: Vec<String> = table_rows(&b).into_iter().filter(|r| r.contains("postfix-")).collect();
    assert!(screen(&b).contains("(filtered)"));
    assert!(!rows.is_empty() && rows.iter().all(|r| r.contains("starttls-failed")), "{rows:#?}");
}

/// The row of the published Exchange excerpt, selected.
fn on_exchange_sample(app: &mut App) {
    let id = (0..app.store.len())
        .find(|i| app.store.get(*i).unwrap().from_log.as_ref().unwrap().log_session == "123453EC62278461")
        .map(|i| app.store.id_at(i).unwrap())
        .unwrap();
    let row = app.store.position(id).unwrap();
    for _ in 0..row {
        app.apply(Action::Down);
    }
}

#[test]
fn the_log_tab_of_a_log_session_shows_its_file_its_verdict_and_its_masked_lines() {
    let (rows, _) = log_rows();
    let mut app = logs_app(rows.clone());
    on_exchange_sample(&mut app);
    app.apply(Action::Tab(Tab::Log));
    let s = screen(&draw(&mut app, 240, 70));
    assert!(s.contains("exchange-receive · log session"), "{s}");
    assert!(s.contains("recv-2013plus-starttls-tls12-oneline-cert.log") && s.contains("123453EC62278461"), "{s}");
    assert!(s.contains("Log verdict   starttls — the log shows a TLS handshake"), "{s}");
    assert!(s.contains("16 logged line(s)"), "{s}");
    assert!(s.contains("<,STARTTLS,") && s.contains("SP_PROT_TLS1_2_SERVER"), "the logged lines:\n{s}");
    // The AUTH user name the log wrote is masked unless asked.
    assert!(!s.contains("username@domain.com"), "{s}");
    let mut shown = logs_app(rows);
    shown.show_addresses = true;
    shown.show_credentials = true;
    on_exchange_sample(&mut shown);
    shown.apply(Action::Tab(Tab::Log));
    assert!(screen(&draw(&mut shown, 240, 70)).contains("username@domain.com"));
}

#[test]
fn tabs_a_log_session_cannot_fill_say_so_and_the_others_read_the_log() {
    let (rows, _) = log_rows();
    let mut app = logs_app(rows);
    on_exchange_sample(&mut app);
    app.apply(Action::Tab(Tab::Transcript));
    let s = screen(&draw(&mut app, 200, 50));
    assert!(s.contains("a log session carries no transcript"), "{s}");
    app.apply(Action::Tab(Tab::Packets));
    let s = screen(&draw(&mut app, 200, 50));
    assert!(s.contains("a log session carries no packets"), "{s}");
    assert!(app.effects.is_empty(), "no packet read is asked for");
    app.apply(Action::WritePcap);
    assert!(app.effects.is_empty());
    assert!(app.status.as_ref().unwrap().text.contains("no packets"));
    app.apply(Action::Pairs);
    assert_eq!(app.view, smtpscope::tui::app::View::Sessions, "the pairs view groups wire sessions");
    // The TLS tab: the upgrade, version and certificate as the log names them.
    app.apply(Action::Tab(Tab::Tls));
    let s = screen(&draw(&mut app, 200, 50));
    assert!(s.contains("STARTTLS (line 9) answered 220") && s.contains("TLS1.2"), "{s}");
    assert!(s.contains("Certificate thumbprint              12DEABC6565646512346ABDC1345689413589876"), "{s}");
    // The evidence: the verdict's reason and what the log showed, by line of the file; Enter
    // on one goes to the Log tab (a log line has no packet).
    app.apply(Action::Tab(Tab::Evidence));
    let s = screen(&draw(&mut app, 200, 50));
    assert!(s.contains("numbered by line of the log file") && s.contains("    10    upgrade answered: 220"), "{s}");
    app.apply(Action::NextPane);
    app.apply(Action::Enter);
    assert_eq!(app.tab, Tab::Log);
    assert!(app.effects.is_empty());
}

#[test]
fn exported_log_sessions_are_the_log_records_logs_writes() {
    let (rows, records) = log_rows();
    let dir = common::scratch("logexport");
    for (format, file) in [(smtpscope::report::Format::Json, "x.ndjson"), (smtpscope::report::Format::Csv, "x.csv")] {
        let path = dir.path().join(file);
        let f = std::fs::File::create(&path).unwrap();
        let opts = smtpscope::report::Options::default();
        let n = smtpscope::tui::export::write_sessions(rows.iter(), format, opts, f).unwrap();
        assert_eq!(n as usize, records.len());
        let mut want = Vec::new();
        let log_format = if file.ends_with("csv") {
            smtpscope::report::logs::LogFormat::Csv
        } else {
            smtpscope::report::logs::LogFormat::Json
        };
        let mut w = smtpscope::report::logs::Writer::new(Box::new(&mut want), log_format, opts);
        records.iter().for_each(|r| w.write(r).unwrap());
        w.finish().unwrap();
        drop(w);
        assert_eq!(std::fs::read(&path).unwrap(), want, "{file}");
    }
}

#[test]
fn live_a_finished_session_waits_for_its_log_lines_then_its_row_is_revised() {
    let wire = linked();
    let pick = wire.iter().find(|s| agreement(s) == "differ").unwrap().clone();
    let mut waiting = pick.clone();
    waiting.logs = None;
    waiting.findings.retain(|f| f.name != "log-disagrees");
    let mut app = app_with(Vec::new());
    app.log_wait = Some(std::time::Duration::from_secs(10));
    app.store.set_log_column(true);
    app.ingest(Update::Finished(vec![waiting]));
    app.rebuild(Instant::now());
    let b = draw(&mut app, 200, 40);
    let row = table_rows(&b).into_iter().next().unwrap();
    assert!(row.split_whitespace().any(|c| c == "wait"), "the LOG column waits: {row}");
    app.apply(Action::Tab(Tab::Log));
    let s = screen(&draw(&mut app, 200, 40));
    assert!(s.contains("waiting for this session's log lines") && s.contains("up to 10 s"), "{s}");
    // Neither agree, differ nor none while it waits.
    for f in ["log:none", "log:agree", "log:differ"] {
        app.set_filter_text(f).unwrap();
        assert_eq!(app.store.len(), 0, "{f}");
    }
    app.set_filter_text("").unwrap();
    // The log lines arrived: the row is revised in place, counted once.
    app.ingest(Update::Revised(vec![pick.clone()]));
    app.rebuild(Instant::now());
    assert_eq!(app.store.total(), 1);
    assert_eq!(app.store.counts.values().sum::<u64>(), 1);
    let s = screen(&draw(&mut app, 200, 40));
    let row = table_rows(&draw(&mut app, 200, 40)).into_iter().next().unwrap();
    let short = smtpscope::report::finding::short("log-disagrees");
    assert!(row.split_whitespace().any(|c| c == "differ") && row.contains(short), "with its finding: {row}");
    assert!(s.contains("postfix-smtpd · differs") && s.contains("connect from"), "{s}");
    app.set_filter_text("log:differ").unwrap();
    assert_eq!(app.store.len(), 1);
    // One waited out: `none`.
    let mut lone = pick.clone();
    lone.id += 1_000;
    lone.logs = None;
    app.set_filter_text("").unwrap();
    app.ingest(Update::Finished(vec![lone.clone()]));
    lone.logs = Some(Vec::new());
    app.ingest(Update::Revised(vec![lone]));
    app.set_filter_text("log:none").unwrap();
    assert_eq!(app.store.len(), 1);
}

#[test]
fn an_open_session_in_a_run_with_logs_says_its_logs_are_matched_when_it_ends() {
    let wire = linked();
    let mut open = wire[0].clone();
    open.id = 77_777;
    open.in_progress = true;
    open.logs = None;
    let mut app = app_with(wire);
    app.ingest(Update::Open(vec![open]));
    app.rebuild(Instant::now());
    let row = app.store.position(77_777).unwrap();
    for _ in 0..row {
        app.apply(Action::Down);
    }
    app.apply(Action::Tab(Tab::Log));
    let s = screen(&draw(&mut app, 200, 60));
    assert!(s.contains("● in progress: the logs are matched when the session ends"), "{s}");
}
