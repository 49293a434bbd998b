//! The terminal UI drawn into ratatui's TestBackend from real captures: verdict colours, the
//! TLS rule in the transcript, Exchange-style certificate lines, masked AUTH, escaped control
//! characters, filter results and validation, the pairs view, help, small terminals, NO_COLOR,
//! and a selection that stays on its session while rows move.

mod common;

use std::path::Path;
use std::time::Instant;

use ratatui::backend::TestBackend;
use ratatui::buffer::Buffer;
use ratatui::style::{Color, Modifier};
use ratatui::Terminal;
use smtpscope::engine::Config;
use smtpscope::session::Session;
use smtpscope::tui::app::{Action, App, Effect, PacketState, SourceInfo, Tab, View};
use smtpscope::tui::feed::Update;
use smtpscope::tui::packets::{self, Origin};
use smtpscope::tui::render;
use smtpscope::tui::theme::Theme;
use tui_input::InputRequest;

fn sessions(path: &Path) -> Vec<Session> {
    common::sessions_with(path, Config { transcript: true, ..Config::default() })
}

fn app_with(sessions: Vec<Session>, color: bool) -> App {
    let mut app = App::new(
        SourceInfo { label: "file test.pcap".into(), bpf: None, live: false, logs: false },
        Theme { color },
        false,
    );
    app.ingest(Update::Finished(sessions));
    app.ingest(Update::Progress(smtpscope::driver::Progress { done: true, ..Default::default() }));
    app.rebuild(Instant::now());
    app
}

fn demo_path() -> std::path::PathBuf {
    common::bundled().join("demo.pcap")
}

fn demo() -> App {
    app_with(sessions(&demo_path()), true)
}

fn public(name: &str) -> Option<(App, std::path::PathBuf)> {
    let path = common::public_corpus()?.join(name);
    Some((app_with(sessions(&path), true), path))
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

/// Where `needle` starts on screen.
fn find(b: &Buffer, needle: &str) -> Option<(u16, u16)> {
    find_below(b, needle, 0)
}

/// Where `needle` starts on screen, on row `min_y` or below.
fn find_below(b: &Buffer, needle: &str, min_y: usize) -> Option<(u16, u16)> {
    for (y, l) in lines(b).iter().enumerate().skip(min_y) {
        if let Some(byte) = l.find(needle) {
            let x = l[..byte].chars().count();
            return Some((x as u16, y as u16));
        }
    }
    None
}

/// Foreground of `needle` below the header (the verdict chips repeat the names).
fn fg_at(b: &Buffer, needle: &str) -> Color {
    let (x, y) = find_below(b, needle, 2).unwrap_or_else(|| panic!("{needle:?} not on screen:\n{}", screen(b)));
    b[(x, y)].fg
}

fn type_filter(app: &mut App, text: &str) {
    app.apply(Action::OpenFilter);
    app.apply(Action::FilterClear);
    for c in text.chars() {
        app.apply(Action::FilterInput(InputRequest::InsertChar(c)));
    }
}

/// Runs queued packet loads right here (the event loop does it on a thread).
fn run_loads(app: &mut App, origin: &Origin) {
    for e in std::mem::take(&mut app.effects) {
        if let Effect::LoadPackets(req) = e {
            let r = packets::load(origin, &req);
            app.packets_loaded(r, req.id);
        }
    }
}

#[test]
fn verdicts_are_coloured_tls_green_clear_yellow() {
    let mut app = demo();
    let b = draw(&mut app, 120, 30);
    assert_eq!(fg_at(&b, "starttls "), Color::Green);
    assert_eq!(fg_at(&b, "starttls-offered-unused"), Color::Yellow);
    assert_eq!(fg_at(&b, "plaintext"), Color::Yellow);
}

#[test]
fn a_failed_upgrade_is_red_and_an_incomplete_session_grey() {
    let Some((mut app, _)) = public("suricata-smtp-starttls-220-then-http.pcap") else { return };
    let b = draw(&mut app, 120, 30);
    assert_eq!(fg_at(&b, "starttls-failed"), Color::Red);
    let Some((mut app, _)) = public("zeek-smtp-client-side-only.pcap") else { return };
    let b = draw(&mut app, 120, 30);
    let (x, y) = find_below(&b, "incomplete", 2).unwrap();
    assert_eq!(app.cursor, 0, "the only session is the selected one");
    assert_eq!(b[(x, y)].fg, Color::Gray, "grey, and lighter than the selection's dark grey background");
    assert_eq!(b[(x, y)].bg, Color::DarkGray);
}

#[test]
fn grey_text_stays_readable_on_the_selected_row() {
    let mut app = demo();
    app.apply(Action::Tab(Tab::Evidence));
    let b = draw(&mut app, 120, 40);
    // Every cell on a selected line (the table's and the evidence tab's) has text lighter than
    // its background.
    let mut selected = 0;
    for y in 0..b.area.height {
        for x in 0..b.area.width {
            let c = &b[(x, y)];
            if c.bg == Color::DarkGray && c.symbol() != " " {
                selected += 1;
                assert_ne!(c.fg, Color::DarkGray, "grey on grey at ({x},{y}):\n{}", screen(&b));
            }
        }
    }
    assert!(selected > 20, "the table row and the evidence line are selected");
    let unselected = find_below(&b, "Evidence", 10).unwrap();
    assert_eq!(b[unselected].bg, Color::Reset);
}

#[test]
fn the_header_counts_sessions_per_verdict() {
    let mut app = demo();
    let b = draw(&mut app, 120, 30);
    let s = screen(&b);
    assert!(
        s.contains(" starttls 1 ") && s.contains(" starttls-offered-unused 1 ") && s.contains(" plaintext 1 "),
        "{s}"
    );
    assert_eq!(b[find(&b, " plaintext 1 ").unwrap()].bg, Color::Yellow, "a chip in the verdict's colour");
    assert!(s.contains("read 101 pkts") || s.contains("read 0 pkts"), "{s}");
}

#[test]
fn the_transcript_marks_where_tls_starts_with_a_rule() {
    let mut app = demo();
    let b = draw(&mut app, 100, 30);
    let s = screen(&b);
    assert!(s.contains("C: STARTTLS"), "{s}");
    let rule = lines(&b).into_iter().find(|l| l.contains("TLS 1.3 handshake")).expect("TLS rule");
    assert!(rule.contains("── TLS 1.3 handshake · 3,673 encrypted bytes ──"), "{rule}");
    assert_eq!(fg_at(&b, "TLS 1.3 handshake"), Color::Green);
    assert_eq!(fg_at(&b, "220 Ready"), Color::Green, "a 2xx code is highlighted green");
}

#[test]
fn a_message_body_is_one_summary_line() {
    let mut app = demo();
    app.apply(Action::Down);
    let b = draw(&mut app, 100, 40);
    let s = screen(&b);
    assert!(s.contains("DATA: 1,125 bytes, accepted (250)"), "{s}");
    assert!(s.contains("C: mail FROM:<…@demo-client.example> size=1122"), "addresses reduced to their domain: {s}");
    assert!(!s.contains("alice"));
}

#[test]
fn auth_secrets_are_masked_in_the_transcript() {
    let Some((mut app, path)) = public("arkime-smtp-submission-587-auth-plain-aol.pcap") else { return };
    let b = draw(&mut app, 100, 50);
    let s = screen(&b);
    assert!(s.contains("C: AUTH PLAIN ‹secret masked›"), "{s}");
    let secret = app.current().unwrap().transcript.clone().unwrap();
    assert!(format!("{secret:?}").contains("Masked"));
    // The secret as it crossed the wire, read from the capture by the test.
    common::wire::secrets(&path).assert_absent(&s, true, "the transcript");
}

/// Captures with AUTH PLAIN, AUTH LOGIN and X-EXPS secrets in clear.
fn secret_captures() -> Vec<std::path::PathBuf> {
    let mut v = vec![common::bundled().join("multi-site.pcap")];
    if let Some(dir) = common::public_corpus() {
        v.push(dir.join("arkime-smtp-submission-587-auth-plain-aol.pcap"));
        v.push(dir.join("suricata-smtp-submission-587-auth-login-yahoo.pcap"));
    }
    v
}

#[test]
fn no_session_shows_an_auth_or_x_exps_secret_in_its_transcript() {
    for path in secret_captures() {
        let secrets = common::wire::secrets(&path);
        assert!(!secrets.wire.is_empty(), "{}: no secret found on the wire", path.display());
        let mut app = app_with(sessions(&path), true);
        app.apply(Action::Tab(Tab::Transcript));
        let n = app.store.visible().count();
        let mut masked = 0;
        for i in 0..n {
            let s = screen(&draw(&mut app, 160, 120));
            secrets.assert_absent(&s, true, &format!("{} session {i}: the transcript", path.display()));
            masked += usize::from(s.contains("‹secret masked›"));
            app.apply(Action::Down);
        }
        assert!(masked >= 1, "{}: no transcript shows a masked secret", path.display());
    }
}

#[test]
fn control_characters_from_the_wire_are_shown_escaped() {
    // Real software sent these (tests/lab/make_hostile.sh): ESC/CSI/OSC, BEL, C1, U+202E, 0xFF.
    let mut app = app_with(sessions(&common::bundled().join("hostile-strings.pcap")), true);
    for tab in [Tab::Transcript, Tab::Evidence, Tab::Tls] {
        app.apply(Action::Tab(tab));
        let b = draw(&mut app, 140, 30);
        let s = screen(&b);
        for l in lines(&b) {
            assert!(!l.chars().any(|c| c.is_control() || c == '\u{202e}'), "raw control on screen: {l:?}");
        }
        assert!(s.contains("evil\\x1B[31m\\x9Bhost\\u{202E}\\xFF"), "HELO escaped in the table ({tab:?}): {s}");
        if tab == Tab::Transcript {
            assert!(s.contains("C: EHLO evil\\x1B[31m\\x9Bhost\\u{202E}\\xFF"), "{s}");
            assert!(s.contains("S: 220 mx\\x1B[2J\\x1B]0;owned\\x07.example \\u{202E}evil"), "{s}");
        }
        if tab == Tab::Evidence {
            assert!(s.contains("greeting 220 mx\\x1B[2J\\x1B]0;owned\\x07.example"), "{s}");
        }
    }
    app.apply(Action::Pairs);
    draw(&mut app, 140, 30);
}

#[test]
fn the_tls_tab_lays_out_the_certificate_like_exchange() {
    let Some((mut app, _)) = public("zeek-smtp-starttls-gmail-tls12.pcap") else { return };
    app.apply(Action::Tab(Tab::Tls));
    let b = draw(&mut app, 120, 40);
    let s = screen(&b);
    let cert = app.current().unwrap().tls.cert.clone().unwrap();
    assert!(s.contains("Sending certificate"), "{s}");
    let thumb = lines(&b).into_iter().find(|l| l.contains("Certificate thumbprint")).unwrap();
    assert!(thumb.contains(&cert.sha1.to_uppercase()), "{thumb}");
    assert!(cert.sha1.chars().any(|c| c.is_ascii_lowercase()), "the test needs hex letters");
    for field in [
        "Certificate subject ",
        "Certificate issuer name",
        "Certificate serial number",
        "Certificate subject alternate names",
        "Certificate valid until",
    ] {
        assert!(s.contains(field), "{field} missing:\n{s}");
    }
    assert!(s.contains("CN=mx.google.com"));
    assert!(s.contains("TLS1.2"), "{s}");
}

#[test]
fn the_tls_tab_says_when_tls13_hides_the_certificate() {
    let mut app = demo();
    app.apply(Action::Tab(Tab::Tls));
    let s = screen(&draw(&mut app, 100, 30));
    assert!(s.contains("certificate not visible (TLS 1.3"), "{s}");
}

#[test]
fn a_session_in_clear_says_so_on_the_tls_tab() {
    let mut app = demo();
    app.apply(Action::Down);
    app.apply(Action::Tab(Tab::Tls));
    let s = screen(&draw(&mut app, 100, 30));
    assert!(s.contains("No TLS in this session"), "{s}");
    assert!(s.contains("the server offered an upgrade; the client never asked"), "{s}");
}

#[test]
fn evidence_enter_jumps_to_its_packet() {
    let mut app = demo();
    let origin = Origin::Files { paths: vec![demo_path()] };
    app.apply(Action::Tab(Tab::Evidence));
    app.apply(Action::NextPane);
    let s = screen(&draw(&mut app, 100, 30));
    assert!(s.contains("Verdict") && s.contains("STARTTLS answered 220, TLS1.3 handshake followed"), "{s}");
    // The third item: "EHLO demo-client.example" at frame 6.
    app.apply(Action::Down);
    app.apply(Action::Down);
    app.apply(Action::Enter);
    assert_eq!(app.tab, Tab::Packets);
    run_loads(&mut app, &origin);
    let b = draw(&mut app, 100, 30);
    let selected = lines(&b).into_iter().find(|l| l.contains("C→S") && l.contains("ehlo demo")).unwrap();
    assert!(selected.trim_start_matches('│').trim_start().starts_with('6'), "{selected}");
    let (x, y) = find(&b, "ehlo demo").unwrap();
    assert!(b[(x, y)].modifier.contains(Modifier::BOLD) || b[(x, y)].bg != Color::Reset, "frame 6 is selected");
    assert!(screen(&b).contains("frame 6 ·"), "the hex dump is frame 6's");
}

#[test]
fn the_packets_tab_reads_the_session_back_with_a_hex_dump() {
    let mut app = demo();
    let origin = Origin::Files { paths: vec![demo_path()] };
    app.apply(Action::Tab(Tab::Packets));
    run_loads(&mut app, &origin);
    let PacketState::Ready(p) = &app.packets.state else { panic!("not loaded") };
    assert_eq!(p.rows.len() as u64, app.current().unwrap().packets);
    let s = screen(&draw(&mut app, 100, 30));
    // tshark -Y "tcp.stream eq 0" counts 45 frames: the ACK of the last FIN included.
    assert!(s.contains("45 packets"), "{s}");
    assert!(s.contains("C→S [S]"), "{s}");
    assert!(s.contains("0000  "), "hex dump: {s}");
}

#[test]
fn the_filter_shows_only_matching_sessions() {
    let mut app = demo();
    type_filter(&mut app, "verdict:starttls");
    app.apply(Action::FilterApply);
    let b = draw(&mut app, 120, 30);
    let s = screen(&b);
    assert!(s.contains("Sessions 1/3 (filtered)"), "{s}");
    assert!(s.contains("filter: verdict:starttls"), "the header shows the active filter: {s}");
    assert!(!s.contains("40002") && !s.contains("40003"));
    type_filter(&mut app, "!verdict:starttls port:25");
    app.apply(Action::FilterApply);
    let s = screen(&draw(&mut app, 120, 30));
    assert!(s.contains("Sessions 1/3") && s.contains("40002"), "{s}");
}

#[test]
fn the_filter_bar_validates_as_you_type() {
    let mut app = demo();
    type_filter(&mut app, "verdict:starttls");
    let b = draw(&mut app, 100, 24);
    assert_eq!(fg_at(&b, "/ verdict:starttls"), Color::Green);
    type_filter(&mut app, "verdict:nope");
    let b = draw(&mut app, 100, 24);
    assert_eq!(fg_at(&b, "/ verdict:"), Color::Red);
    assert_eq!(fg_at(&b, "nope"), Color::Red);
    assert!(screen(&b).contains("'nope' is not a verdict"), "{}", screen(&b));
    app.apply(Action::FilterApply);
    assert!(app.store.filter().is_all(), "an invalid filter is not applied");
}

#[test]
fn a_wireshark_habit_in_the_filter_bar_is_red_with_the_filter_meant() {
    let mut app = demo();
    type_filter(&mut app, "tcp.port==25");
    let b = draw(&mut app, 120, 24);
    assert_eq!(fg_at(&b, "/ tcp.port"), Color::Red);
    assert!(screen(&b).contains("did you mean 'port:25'?"), "{}", screen(&b));
    app.apply(Action::FilterApply);
    assert!(app.store.filter().is_all(), "an invalid filter is not applied");
}

#[test]
fn escape_closes_the_bar_and_keeps_the_applied_filter() {
    let mut app = demo();
    type_filter(&mut app, "port:2526");
    app.apply(Action::FilterApply);
    type_filter(&mut app, "verdict:starttls");
    app.apply(Action::FilterClose);
    assert_eq!(app.store.filter().text(), "port:2526");
    assert_eq!(app.store.len(), 1);
}

#[test]
fn tab_completes_filter_keys_and_values() {
    let mut app = demo();
    type_filter(&mut app, "verd");
    app.apply(Action::FilterComplete);
    assert_eq!(app.input.value(), "verdict:");
    for c in "starttls-o".chars() {
        app.apply(Action::FilterInput(InputRequest::InsertChar(c)));
    }
    app.apply(Action::FilterComplete);
    assert_eq!(app.input.value(), "verdict:starttls-offered-unused ");
    type_filter(&mut app, "verdict:starttls-");
    app.apply(Action::FilterComplete);
    let s = screen(&draw(&mut app, 100, 24));
    assert!(s.contains("verdict:starttls-refused") && s.contains("verdict:starttls-failed"), "{s}");
}

#[test]
fn the_pairs_view_shows_what_each_server_offered() {
    let Some((mut app, _)) = public("zeek-smtp-exchange-x-anonymoustls-xexch50.pcap") else { return };
    app.apply(Action::Pairs);
    let b = draw(&mut app, 140, 20);
    let s = screen(&b);
    assert!(s.contains("188.184.129.157") && s.contains("188.184.36.24"), "{s}");
    assert!(s.contains("STARTTLS X-ANONYMOUSTLS AUTH CHUNKING PIPELINING 8BITMIME"), "the notable extensions:\n{s}");
    assert!(s.contains("starttls-offered-unused 1"), "{s}");
    assert!(s.contains("Pairs: 1 host pair "), "{s}");
    app.apply(Action::Enter);
    assert_eq!(app.view, View::Sessions);
    assert_eq!(app.store.filter().text(), "client:188.184.129.157 server:188.184.36.24");
    assert_eq!(app.store.len(), 1);
    app.apply(Action::Escape);
    assert_eq!(app.view, View::Pairs, "Esc goes back to the pairs");
    assert!(app.store.filter().is_all(), "with the filter they had");
}

#[test]
fn the_pairs_view_keeps_its_columns_at_100_columns() {
    let mut app = demo();
    app.apply(Action::Pairs);
    let s = screen(&draw(&mut app, 100, 20));
    // The extensions give way first (issue 13): the verbs used, versions and findings stay.
    for title in ["CLIENT HOST", "PORTS", "SESS", "VERDICTS", "USED", "TLS", "FINDINGS"] {
        assert!(s.contains(title), "{title}:\n{s}");
    }
    assert!(s.contains("STARTTLS 1") && s.contains("TLS1.3 1"), "{s}");
    assert!(s.contains("starttls 1") && s.contains("plain 1"), "short verdict names make room:\n{s}");
    // A masked extension is listed as the middlebox left it; a filter is named in the title.
    let mut app = all_bundled();
    type_filter(&mut app, "ext:XXXXXXXA");
    app.apply(Action::FilterApply);
    app.apply(Action::Pairs);
    let s = screen(&draw(&mut app, 140, 20));
    assert!(s.contains("XXXXXXXA") && s.contains("(filter: ext:XXXXXXXA)"), "{s}");
}

#[test]
fn the_pairs_view_gives_up_offered_before_used_and_ports_and_shows_findings_when_wide() {
    let mut app = app_with(sessions(&common::bundled().join("multi-site.pcap")), true);
    app.apply(Action::Pairs);
    let s = screen(&draw(&mut app, 80, 24));
    assert!(s.contains("USED") && s.contains("PORTS"), "{s}");
    assert!(!s.contains("OFFERED"), "{s}");
    let s = screen(&draw(&mut app, 160, 24));
    assert!(s.contains("OFFERED") && s.contains("FINDINGS") && s.contains("clear-auth 1"), "{s}");
}

#[test]
fn the_help_overlay_lists_every_key() {
    let mut app = demo();
    app.apply(Action::Help);
    let s = screen(&draw(&mut app, 100, 30));
    for (keys, _) in smtpscope::tui::keys::HELP {
        assert!(s.contains(keys), "{keys} missing from help:\n{s}");
    }
    app.apply(Action::Escape);
    assert!(!screen(&draw(&mut app, 100, 30)).contains("Keys (Esc closes)"));
}

#[test]
fn an_80_by_24_terminal_keeps_the_essentials() {
    let mut app = demo();
    let s = screen(&draw(&mut app, 80, 24));
    for must in ["CLIENT", "SERVER", "VERDICT", "starttls-offered-unused", "10.231.0.1:40003", "1 Transcript", "q quit"]
    {
        assert!(s.contains(must), "{must} missing at 80x24:\n{s}");
    }
}

#[test]
fn tiny_terminals_do_not_panic() {
    let mut app = demo();
    for (w, h) in [(1, 1), (10, 4), (20, 6), (40, 10), (79, 23)] {
        for a in [
            Action::Tab(Tab::Transcript),
            Action::Tab(Tab::Tls),
            Action::Help,
            Action::Help,
            Action::Pairs,
            Action::Pairs,
        ] {
            app.apply(a);
            draw(&mut app, w, h);
        }
    }
}

#[test]
fn no_color_draws_without_colours() {
    let mut app = app_with(sessions(&demo_path()), false);
    for tab in [Tab::Transcript, Tab::Tls, Tab::Evidence] {
        app.apply(Action::Tab(tab));
        let b = draw(&mut app, 100, 30);
        for c in b.content() {
            assert_eq!((c.fg, c.bg), (Color::Reset, Color::Reset), "colour in NO_COLOR mode at {:?}", c.symbol());
        }
        let (x, y) = find(&b, "10.231.0.1:40001").unwrap();
        assert!(b[(x, y)].modifier.contains(Modifier::REVERSED), "the selection is still visible");
    }
}

#[test]
fn the_selection_stays_on_its_session_while_rows_move() {
    let mut all = sessions(&demo_path());
    let last = all.pop().unwrap();
    let mut app = app_with(all, true);
    app.apply(Action::Down);
    let chosen = app.selected.unwrap();
    assert_eq!(app.cursor, 1);
    // A session that sorts first by client port arrives; sort by client.
    let mut early = last.clone();
    early.id = 999;
    early.client.set_port(1);
    app.ingest(Update::Finished(vec![last, early]));
    app.apply(Action::Sort); // client
    app.rebuild(Instant::now());
    assert_eq!(app.selected, Some(chosen));
    assert_eq!(app.current().unwrap().id, chosen);
    assert_eq!(app.cursor, 2, "the row moved, the selection moved with it");
}

#[test]
fn a_session_in_progress_is_marked_and_then_replaced() {
    let all = sessions(&demo_path());
    let mut app = app_with(Vec::new(), true);
    let mut open = all[0].clone();
    open.in_progress = true;
    app.ingest(Update::Open(vec![open]));
    app.rebuild(Instant::now());
    let b = draw(&mut app, 120, 30);
    let (x, y) = find(&b, "● starttls").expect("open marker");
    assert!(b[(x + 2, y)].modifier.contains(Modifier::ITALIC));
    assert!(screen(&b).contains("● open 1"), "{}", screen(&b));
    app.ingest(Update::Finished(vec![all[0].clone()]));
    app.rebuild(Instant::now());
    let s = screen(&draw(&mut app, 120, 30));
    assert!(!s.contains("● starttls") && s.contains(" starttls 1 "), "{s}");
}

#[test]
fn clicking_a_row_selects_it_and_clicking_a_tab_opens_it() {
    let mut app = demo();
    let b = draw(&mut app, 100, 30);
    let (_, y) = find(&b, "10.231.0.1:40003").unwrap();
    app.apply(Action::Click(10, y));
    assert_eq!(app.current().unwrap().client.port(), 40003);
    let b = draw(&mut app, 100, 30);
    let (x, y) = find(&b, "3 Evidence").unwrap();
    app.apply(Action::Click(x + 1, y));
    assert_eq!(app.tab, Tab::Evidence);
}

#[test]
fn pause_holds_updates_until_resumed() {
    let all = sessions(&demo_path());
    let mut app = app_with(Vec::new(), true);
    app.apply(Action::Pause);
    app.ingest(Update::Finished(all));
    app.rebuild(Instant::now());
    assert_eq!(app.store.total(), 0);
    assert!(screen(&draw(&mut app, 100, 24)).contains("paused"));
    app.apply(Action::Pause);
    assert_eq!(app.store.len(), 3);
}

#[test]
fn clicking_a_column_title_sorts_by_it_and_again_reverses() {
    let mut app = demo();
    let b = draw(&mut app, 120, 30);
    let (x, y) = find(&b, "PORT").unwrap();
    app.apply(Action::Click(x, y));
    assert_eq!(app.sort(), (smtpscope::tui::store::Column::Port, false));
    assert_eq!(app.store.get(2).unwrap().server.port(), 2526);
    let b = draw(&mut app, 120, 30);
    assert!(screen(&b).contains("PORT▲"));
    app.apply(Action::Click(x, y));
    assert_eq!(app.sort(), (smtpscope::tui::store::Column::Port, true));
    assert_eq!(app.store.get(0).unwrap().server.port(), 2526);
}

#[test]
fn a_long_dialogue_ends_with_a_counted_marker() {
    let mut d = common::opening(common::Dialogue::new(40000, 25), &["PIPELINING"]);
    for _ in 0..300 {
        d = d.c("NOOP\r\n").s("250 OK\r\n");
    }
    let (s, _) = common::run_packets_with(Config { transcript: true, ..Config::default() }, &d.close().packets(1460));
    let mut app = app_with(s, true);
    app.apply(Action::NextPane);
    app.apply(Action::Bottom);
    let s = screen(&draw(&mut app, 100, 30));
    let kept = smtpscope::session::transcript::MAX_ENTRIES;
    // 220, EHLO, a two-line 250, then 300 NOOP/250 pairs.
    let omitted = 4 + 600 - kept;
    assert!(s.contains(&format!("… {omitted} more lines (the transcript keeps the first {kept})")), "{s}");
}

#[test]
fn the_packets_tab_masks_auth_secrets_and_envelope_local_parts() {
    let name = "suricata-smtp-submission-587-auth-login-yahoo.pcap";
    let Some((mut app, path)) = public(name) else { return };
    let secrets = common::wire::secrets(&path);
    assert!(secrets.wire.len() >= 2, "the capture logs in with a user name and a password: {secrets:?}");
    let origin = Origin::Files { paths: vec![path.clone()] };
    app.apply(Action::Tab(Tab::Packets));
    run_loads(&mut app, &origin);
    let PacketState::Ready(p) = &app.packets.state else { panic!("not loaded") };
    let n = p.rows.len();
    let (mut secret_dumps, mut address_dumps) = (0, 0);
    for i in 0..n {
        app.packets.cursor = i;
        let s = screen(&draw(&mut app, 120, 60));
        for secret in &secrets.wire {
            let head = secret.get(..secret.len().min(6)).unwrap_or(secret);
            assert!(!s.contains(head), "frame row {i} shows the secret {secret:?}:\n{s}");
        }
        // (The message's own headers are the message's: only the envelope is masked.)
        assert!(!s.contains("FROM: <xxxxxx@") && !s.contains("TO: <xxxxxx@"), "row {i} shows a local part:\n{s}");
        secret_dumps += usize::from(s.contains("AUTH secret masked (--show-credentials shows it)"));
        address_dumps += usize::from(s.contains("envelope addresses masked"));
    }
    assert_eq!(secret_dumps, secrets.wire.len(), "each frame that carried a secret says it is masked");
    assert!(address_dumps >= 2, "MAIL FROM and RCPT TO frames say their local parts are masked");
    app.packets.cursor = 0;
    let s = screen(&draw(&mut app, 120, 60));
    assert!(s.contains("MAIL FROM: <******@xxxxx.co.uk>") && s.contains("RCPT TO: <******@xxxxx.co.uk>"), "{s}");
    assert!(s.contains("len    10  ********.."), "the user name's row shows its length, not its bytes:\n{s}");
}

#[test]
fn no_packet_row_shows_an_auth_or_x_exps_secret() {
    for path in secret_captures() {
        let secrets = common::wire::secrets(&path);
        let mut app = app_with(sessions(&path), true);
        let origin = Origin::Files { paths: vec![path.clone()] };
        let n = app.store.visible().count();
        let mut masked = 0;
        for session in 0..n {
            app.apply(Action::Tab(Tab::Packets));
            run_loads(&mut app, &origin);
            let PacketState::Ready(p) = &app.packets.state else { panic!("not loaded") };
            for row in 0..p.rows.len() {
                app.packets.cursor = row;
                let s = screen(&draw(&mut app, 120, 60));
                // The message's own text is shown as it is; the wire forms of the secret never.
                let view = format!("{} session {session} frame row {row}: the packets tab", path.display());
                secrets.assert_absent(&s, false, &view);
                masked += usize::from(s.contains("AUTH secret masked"));
            }
            app.apply(Action::Tab(Tab::Transcript));
            app.apply(Action::Down);
        }
        assert!(masked >= secrets.wire.len(), "{}: {masked} frames say a secret is masked", path.display());
    }
}

#[test]
fn show_addresses_unmasks_envelope_local_parts_in_the_packets_tab() {
    let name = "suricata-smtp-submission-587-auth-login-yahoo.pcap";
    let Some((mut app, path)) = public(name) else { return };
    app.show_addresses = true;
    let origin = Origin::Files { paths: vec![path.clone()] };
    app.apply(Action::Tab(Tab::Packets));
    run_loads(&mut app, &origin);
    let s = screen(&draw(&mut app, 120, 60));
    assert!(s.contains("MAIL FROM: <xxxxxx@"), "{s}");
}

/// Every bundled capture's sessions in one app (ids made unique): every verdict at once.
fn all_bundled() -> App {
    let mut all = Vec::new();
    let mut paths: Vec<_> = std::fs::read_dir(common::bundled())
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "pcap"))
        .collect();
    paths.sort();
    for p in paths {
        all.extend(sessions(&p));
    }
    for (i, s) in all.iter_mut().enumerate() {
        s.id = i as u64 + 1;
    }
    app_with(all, true)
}

#[test]
fn every_verdict_count_stays_on_screen_at_80_columns() {
    let mut app = all_bundled();
    let counts: Vec<_> = app.store.counts.iter().map(|(v, n)| (*v, *n)).collect();
    assert!(counts.len() >= 7, "the bundled captures have most verdicts: {counts:?}");
    for w in [80, 100, 200] {
        let b = draw(&mut app, w, 30);
        let top = lines(&b).iter().take(4).cloned().collect::<Vec<_>>().join("\n");
        for (v, n) in &counts {
            let short = match v.name() {
                "starttls-offered-unused" => "unused",
                "starttls-refused" => "refused",
                "starttls-failed" => "failed",
                "implicit-tls" => "implicit",
                "plaintext" => "plain",
                "incomplete" => "incompl",
                other => other,
            };
            assert!(
                top.contains(&format!(" {} {n} ", v.name())) || top.contains(&format!(" {short} {n} ")),
                "{w} columns: the {} count is not in the header:\n{}",
                v.name(),
                screen(&b)
            );
        }
        assert!(lines(&b).iter().any(|l| l.contains("Sessions ")), "the table still follows");
    }
}

#[test]
fn the_last_packet_is_on_screen_when_selected() {
    let mut app = demo();
    let origin = Origin::Files { paths: vec![demo_path()] };
    app.apply(Action::Tab(Tab::Packets));
    run_loads(&mut app, &origin);
    let PacketState::Ready(p) = &app.packets.state else { panic!("not loaded") };
    let (last, first) = (p.rows.len() - 1, p.rows[0].frame);
    let frame = p.rows[last].frame;
    for at in [last, 0] {
        app.packets.cursor = at;
        let b = draw(&mut app, 100, 30);
        let want = format!("│{:>6} ", if at == 0 { first } else { frame });
        let (x, y) = find(&b, &want).unwrap_or_else(|| panic!("row {at} is off screen:\n{}", screen(&b)));
        assert_eq!(b[(x + 3, y)].bg, Color::DarkGray, "and selected");
    }
}

#[test]
fn growing_the_window_fills_the_table_again() {
    let mut app = all_bundled();
    let len = app.store.len();
    app.apply(Action::Bottom);
    assert_eq!(app.cursor, len - 1);
    app.zoom = true; // the table alone: its height is the window's
    draw(&mut app, 120, 20);
    assert!(app.geometry.table_offset > 0, "a small window scrolls to the last row");
    app.apply(Action::Resize);
    let b = draw(&mut app, 120, 60);
    let rows = app.geometry.table_rows;
    let shown = (rows.y..rows.y + rows.height).filter(|y| lines(&b)[usize::from(*y)].contains(':')).count();
    assert_eq!(shown, len.min(usize::from(rows.height)), "no blank rows below the last one:\n{}", screen(&b));
}

#[test]
fn cut_hellos_still_read_as_a_handshake_and_holes_inside_tls_are_one_line() {
    let mut app = app_with(sessions(&common::bundled().join("snaplen-96.pcap")), true);
    let i = (0..app.store.len()).find(|i| app.store.get(*i).unwrap().tls_handshake()).expect("a handshake");
    app.cursor = i;
    app.selected = app.store.get(i).map(|s| s.id);
    app.zoom = true;
    app.focus = smtpscope::tui::app::Pane::Detail;
    let s = screen(&draw(&mut app, 120, 60));
    assert!(s.contains("TLS handshake (version not captured)"), "{s}");
    assert!(!s.contains("no handshake seen"), "the verdict says starttls and the TLS tab shows both hellos:\n{s}");
    let after_tls = s.split_once("TLS handshake").map_or("", |(_, rest)| rest);
    assert_eq!(after_tls.matches("bytes missing from the capture").count(), 1, "{s}");
    assert!(after_tls.contains("bytes missing from the capture inside TLS (client ×9, server ×9)"), "{s}");
}

#[test]
fn tab_walks_the_completion_list_and_enter_takes_the_pick() {
    let mut app = demo();
    type_filter(&mut app, "");
    app.apply(Action::FilterComplete);
    let keys = app.completion.as_ref().map_or(0, |c| c.candidates.len());
    assert!(keys > 10, "every key is a candidate: {keys}");
    let s = screen(&draw(&mut app, 100, 30));
    assert!(s.contains(&format!("+{} more ↓", keys - 10)), "the list says what it leaves out:\n{s}");
    // Tab/↓ walk down, wrapping; ↑ walks back.
    let mut seen = Vec::new();
    for _ in 0..keys {
        app.apply(Action::FilterComplete);
        seen.push(app.input.value().to_string());
    }
    assert_eq!(seen.len(), keys);
    assert!(seen.iter().all(|v| v.ends_with(':')), "{seen:?}");
    let last = seen.last().unwrap().clone();
    let s = screen(&draw(&mut app, 100, 30));
    assert!(s.contains(&last) && s.contains("more ↑"), "the pick scrolls into view:\n{s}");
    app.apply(Action::FilterComplete);
    assert_eq!(app.input.value(), seen[0], "it wraps to the first");
    app.apply(Action::FilterCompletePrev);
    assert_eq!(app.input.value(), last);
    // Enter takes the pick and leaves the bar open; a value completes the same way.
    type_filter(&mut app, "verdict:starttls-");
    app.apply(Action::FilterComplete);
    app.apply(Action::FilterComplete);
    app.apply(Action::FilterComplete);
    let picked = app.input.value().to_string();
    assert!(picked.starts_with("verdict:starttls-") && picked.len() > "verdict:starttls-".len(), "{picked}");
    app.apply(Action::FilterApply);
    assert_eq!(app.input.value(), format!("{picked} "));
    assert!(app.completion.is_none());
    assert_eq!(app.mode, smtpscope::tui::app::Mode::Filter, "the first Enter only took the pick");
    app.apply(Action::FilterApply);
    assert_eq!(app.store.filter().text(), picked);
}

#[test]
fn s_sorts_only_by_columns_on_screen() {
    let mut app = demo();
    let b = draw(&mut app, 80, 24);
    assert!(!screen(&b).contains("HELO"), "80 columns leave HELO out:\n{}", screen(&b));
    let shown: Vec<_> = app.geometry.header.iter().map(|h| h.2).collect();
    let mut sorted = Vec::new();
    for _ in 0..shown.len() {
        app.apply(Action::Sort);
        let (col, _) = app.sort();
        assert!(shown.contains(&col), "sorted by {col:?}, which is not on screen ({shown:?})");
        sorted.push(col);
        draw(&mut app, 80, 24);
    }
    sorted.sort_by_key(|c| c.title());
    sorted.dedup();
    assert_eq!(sorted.len(), shown.len(), "every column on screen is reached");
}

#[test]
fn columns_are_as_wide_as_what_they_show() {
    // demo.pcap at 100 columns: short IPv4 addresses leave room for the HELO name.
    let mut app = demo();
    let s = screen(&draw(&mut app, 100, 30));
    assert!(s.contains("HELO") && s.contains("demo-clie"), "{s}");
    // An IPv6 client is shown whole when the screen has room for it; at 80x24 the (dated) time
    // of this 2013-2018 capture stays and the address loses its middle, never its port.
    let Some((mut app, _)) = public("ndpi-smtp-starttls-gmail-tls10-and-ipv6-vlan-tls12.pcap") else { return };
    let s = screen(&draw(&mut app, 130, 30));
    assert!(s.contains("[2003:de:2016:125:fc36:8317:4e86:cb72]:7562"), "130 columns:\n{s}");
    let s = screen(&draw(&mut app, 80, 24));
    assert!(s.contains("TIME") && s.contains("2018-04-26 12:49:28"), "80 columns keep the time:\n{s}");
    let client = s.lines().find(|l| l.contains("2018-04-26")).unwrap();
    assert!(client.contains("[2003:de") && client.contains("…") && client.contains("]:7562 "), "{client}");
}

#[test]
fn the_empty_table_message_spans_the_table() {
    let mut app = demo();
    type_filter(&mut app, "verdict:stripped");
    app.apply(Action::FilterApply);
    let s = screen(&draw(&mut app, 80, 24));
    assert!(s.contains("no session matches the filter"), "whole, not cut to the first column:\n{s}");
}

#[test]
fn findings_have_a_column_coloured_by_how_serious_they_are() {
    let mut app = app_with(sessions(&common::bundled().join("expired-cert.pcap")), true);
    let b = draw(&mut app, 130, 30);
    let s = screen(&b);
    assert!(s.contains("FINDINGS") && s.contains("expired,self-signed"), "{s}");
    assert_eq!(fg_at(&b, "expired,"), Color::Red);
    assert_eq!(fg_at(&b, "self-signed"), Color::Yellow);
}

#[test]
fn times_carry_their_date_when_sessions_span_days() {
    let Some((mut app, _)) = public("ndpi-smtp-starttls-gmail-tls10-and-ipv6-vlan-tls12.pcap") else { return };
    let s = screen(&draw(&mut app, 130, 30));
    assert!(s.contains("2013-12-26 00:18:44") && s.contains("2018-04-26 12:49:28"), "2013 and 2018:\n{s}");
    let mut app = demo();
    let s = screen(&draw(&mut app, 130, 30));
    assert!(s.contains("│11:22:55 "), "one day: clock times only:\n{s}");
}

#[test]
fn the_tls_tab_wraps_values_under_their_column() {
    let mut app = app_with(sessions(&common::bundled().join("expired-cert.pcap")), true);
    app.apply(Action::Tab(Tab::Tls));
    let sha1 = app.current().unwrap().tls.cert.clone().unwrap().sha1.to_uppercase();
    let b = draw(&mut app, 80, 40);
    let thumb = lines(&b).into_iter().find(|l| l.contains("Certificate thumbprint")).unwrap();
    assert!(thumb.contains(&sha1), "the thumbprint on one line at 80 columns: {thumb}");
    // Narrow: a warning's text continues under its text, not under the certificate values.
    let b = draw(&mut app, 52, 40);
    let all = lines(&b);
    let at = all.iter().position(|l| l.contains("⚠ cert-expired")).unwrap_or_else(|| panic!("{}", screen(&b)));
    let byte = all[at].find("certificate expired").unwrap_or_else(|| panic!("{}", screen(&b)));
    let text_col = all[at][..byte].chars().count();
    let next = &all[at + 1];
    let indent = next.chars().skip(1).take_while(|c| *c == ' ').count() + 1;
    assert!(!next.trim_matches(|c| c == '│' || c == ' ').is_empty(), "the warning wraps:\n{}", screen(&b));
    assert_eq!(indent, text_col, "continuation of a wrapped warning:\n{}", screen(&b));
}

#[test]
fn the_open_marker_does_not_cut_the_longest_verdict() {
    let all = sessions(&demo_path());
    let mut app = app_with(Vec::new(), true);
    let mut open =
        all.iter().find(|s| s.verdict.is_some_and(|v| v.name() == "starttls-offered-unused")).unwrap().clone();
    open.in_progress = true;
    app.ingest(Update::Open(vec![open]));
    app.rebuild(Instant::now());
    for w in [80, 100] {
        let s = screen(&draw(&mut app, w, 24));
        assert!(s.contains("● starttls-offered-unused "), "{w} columns:\n{s}");
    }
}

#[test]
fn at_80_by_24_the_time_stays_and_ipv6_ends_lose_their_middle_not_their_port() {
    // Demo sessions moved to long IPv6 addresses (no capture needed): the longest verdict too.
    let mut all = sessions(&demo_path());
    for (i, s) in all.iter_mut().enumerate() {
        s.client = format!("[2003:de:2016:125:fc36:8317:4e86:cb7{i}]:4000{i}").parse().unwrap();
        s.server = "[2a00:1450:4001:81c::1b]:25".parse().unwrap();
    }
    let mut app = app_with(all, true);
    let s = screen(&draw(&mut app, 80, 24));
    assert!(s.contains("TIME") && s.contains("11:22:56"), "{s}");
    let row = s.lines().find(|l| l.starts_with("│11:22:56") && l.contains("unused")).unwrap();
    assert!(row.contains("…") && row.contains("]:40001 "), "the port stays: {row}");
    assert!(row.contains("[2003…"), "the start stays: {row}");
}
