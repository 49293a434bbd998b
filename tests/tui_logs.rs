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
    let mut app =
        App::new(SourceInfo { label: "file test.pcap".into(), bpf: None, live: false }, Theme { color: true }, false);
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
