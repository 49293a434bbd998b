//! Drawing: header, session table, detail tabs, pairs view, filter bar, overlays. Reads the
//! [`App`] and records the geometry mouse clicks need; never changes anything else.

use std::sync::Arc;

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Cell, Clear, Paragraph, Row, Table};
use ratatui::Frame;
use unicode_width::{UnicodeWidthChar, UnicodeWidthStr};

use super::app::{App, Mode, PacketState, Pane, Tab, View};
use super::detail::{self, thousands, Look};
use super::keys::HELP;
use super::packets;
use super::store::{self, Column};
use crate::escape::{defuse, terminal};
use crate::filter::LogAgreement;
use crate::report;
use crate::report::rfc3339;
use crate::session::{Session, Side, Verdict};
use crate::tls::version_label;

/// Cuts `s` to `w` columns, ending in `…` when cut.
pub fn fit(s: &str, w: usize) -> String {
    if s.width() <= w {
        return s.to_string();
    }
    let mut out = String::new();
    let mut used = 0;
    for c in s.chars() {
        let cw = c.width().unwrap_or(0);
        if used + cw + 1 > w {
            break;
        }
        used += cw;
        out.push(c);
    }
    if w > 0 {
        out.push('…');
    }
    out
}

/// Cuts an address (`10.1.2.3`, `[2001:db8::1]:25`, `2001:db8::1`) to `w` columns in its
/// middle: the start and the last group stay, and so does the port, which tells sessions apart.
pub fn fit_address(s: &str, w: usize) -> String {
    if s.width() <= w {
        return s.to_string();
    }
    // The port, with the `]` or the last address group before it.
    let port_at = if s.starts_with('[') { s.rfind("]:") } else { s.rfind(':').filter(|_| s.contains('.')) };
    let tail_from = match port_at {
        Some(p) => s.get(..p).and_then(|a| a.rfind([':', '.'])).unwrap_or(p),
        None => s.rfind([':', '.']).unwrap_or(s.len()),
    };
    let tail = s.get(tail_from..).unwrap_or_default();
    let head = w.saturating_sub(tail.width() + 1);
    match s.get(..head) {
        Some(h) if head > 0 => format!("{h}…{tail}"),
        _ => fit(s, w),
    }
}

/// Draws one frame.
pub fn draw(f: &mut Frame<'_>, app: &mut App) {
    let area = f.area();
    let chips = verdict_chips(app, area.width);
    let header_h = u16::try_from(chips.len() + 1).unwrap_or(2);
    let [header, body, footer] =
        Layout::vertical([Constraint::Length(header_h), Constraint::Min(3), Constraint::Length(1)]).areas(area);
    draw_header(f, app, header, chips);
    match app.view {
        View::Pairs => draw_pairs(f, app, body),
        View::Sessions => draw_sessions(f, app, body),
    }
    draw_footer(f, app, footer);
    match app.mode {
        Mode::Help => draw_help(f, app, area),
        Mode::Export => draw_export(f, app, area),
        Mode::Filter => draw_completion(f, app, footer),
        Mode::Normal => {}
    }
}

/// A verdict's name on a chip when the full names do not fit.
fn short_name(v: Verdict) -> &'static str {
    v.short_name()
}

/// Most lines the verdict chips may take.
const MAX_CHIP_LINES: usize = 3;

/// The header's verdict chips (and open sessions), as lines of `width`: full names on one line
/// when they fit, otherwise short names wrapped over up to [`MAX_CHIP_LINES`] lines, so that no
/// count (plaintext and failed come last) falls off the screen.
fn verdict_chips(app: &App, width: u16) -> Vec<Line<'static>> {
    let th = app.theme;
    let width = usize::from(width);
    if app.store.counts.is_empty() && app.store.open == 0 {
        return vec![Line::from(vec![Span::raw(" "), Span::styled("no SMTP session yet", th.dim())])];
    }
    let chips = |short: bool| -> Vec<Span<'static>> {
        let mut out = Vec::new();
        for v in Verdict::ALL {
            if let Some(n) = app.store.counts.get(&v) {
                let name = if short { short_name(v) } else { v.name() };
                out.push(Span::styled(format!(" {name} {} ", thousands(*n)), th.chip(v)));
            }
        }
        if app.store.open > 0 {
            out.push(Span::styled(format!("● open {} ", thousands(app.store.open as u64)), th.warn()));
        }
        out
    };
    // Each chip is preceded by one space.
    let full = chips(false);
    if full.iter().map(|c| c.width() + 1).sum::<usize>() < width {
        return vec![Line::from(full.into_iter().flat_map(|c| [Span::raw(" "), c]).collect::<Vec<_>>())];
    }
    let mut lines: Vec<Vec<Span<'static>>> = vec![Vec::new()];
    let mut used = 0;
    for c in chips(true) {
        let w = c.width() + 1;
        if used > 0 && used + w >= width {
            if lines.len() == MAX_CHIP_LINES {
                break;
            }
            lines.push(Vec::new());
            used = 0;
        }
        if let Some(l) = lines.last_mut() {
            l.push(Span::raw(" "));
            l.push(c);
        }
        used += w;
    }
    lines.into_iter().map(Line::from).collect()
}

fn draw_header(f: &mut Frame<'_>, app: &App, area: Rect, chips: Vec<Line<'static>>) {
    let th = app.theme;
    let p = &app.progress;
    // The label yields to progress on narrow terminals.
    let label = fit(&defuse(&app.source.label), usize::from(area.width).saturating_sub(48).max(12));
    let mut l1 = vec![Span::styled(" smtpscope ", th.heading()), Span::raw(label)];
    if let Some(b) = &app.source.bpf {
        l1.push(Span::styled(format!(" [{}]", defuse(b)), th.dim()));
    }
    l1.push(Span::raw("  "));
    let rate = app.packet_rate();
    if app.source.live {
        if p.done {
            l1.push(Span::styled("capture stopped", th.warn()));
        } else {
            l1.push(Span::styled("● live", th.ok().add_modifier(Modifier::BOLD)));
        }
        l1.push(Span::raw(format!(" {} pkts · {} pkt/s", thousands(p.packets), rate_text(rate))));
        if let Some(d) = p.drops {
            let lost = d.dropped + d.if_dropped;
            let style = if lost > 0 { th.error() } else { th.dim() };
            l1.push(Span::styled(format!(" · kernel drops {}", thousands(lost)), style));
        }
    } else if app.source.logs && p.done {
        l1.push(Span::styled("read", th.ok()));
        l1.push(Span::raw(format!(" {} log lines", thousands(p.packets))));
    } else if app.source.logs {
        // Log lines are counted as each file ends: the bar and the sessions tell the pace.
        let pct = (p.bytes * 100).checked_div(p.total).unwrap_or(0).min(100);
        let filled = (pct as usize * 12).div_ceil(100);
        l1.push(Span::styled("█".repeat(filled), th.ok()));
        l1.push(Span::styled("░".repeat(12 - filled), th.dim()));
        l1.push(Span::raw(format!(" {pct:>3}% · {} log sessions", thousands(app.store.total() as u64))));
    } else if p.done {
        l1.push(Span::styled("read", th.ok()));
        l1.push(Span::raw(format!(" {} pkts", thousands(p.packets))));
    } else {
        let pct = (p.bytes * 100).checked_div(p.total).unwrap_or(0).min(100);
        let filled = (pct as usize * 12).div_ceil(100);
        l1.push(Span::styled("█".repeat(filled), th.ok()));
        l1.push(Span::styled("░".repeat(12 - filled), th.dim()));
        l1.push(Span::raw(format!(" {pct:>3}% · {} pkts · {} pkt/s", thousands(p.packets), rate_text(rate))));
    }
    if app.store.dropped > 0 {
        let n = app.store.dropped;
        let noun = if n == 1 { "row" } else { "rows" };
        l1.push(Span::styled(format!(" · {} oldest {noun} dropped (--max-rows)", thousands(n)), th.warn()));
    }
    if app.paused {
        l1.push(Span::styled("  ⏸ paused", th.warn()));
    }
    // The active filter, right-aligned on the first line (whose left part is short).
    let filter = app.store.filter().text();
    if !filter.is_empty() {
        let used: usize = l1.iter().map(|s| s.content.width()).sum();
        let room = usize::from(area.width).saturating_sub(used + 11);
        let shown = fit(&defuse(filter), room.max(6));
        let pad = usize::from(area.width).saturating_sub(used + 9 + shown.width());
        l1.push(Span::raw(" ".repeat(pad.max(1))));
        l1.push(Span::styled("filter: ", th.dim()));
        l1.push(Span::styled(shown, th.key()));
    }
    let mut lines = vec![Line::from(l1)];
    lines.extend(chips);
    f.render_widget(Paragraph::new(lines), area);
}

fn rate_text(r: f64) -> String {
    if r >= 10_000.0 {
        format!("{:.0}k", r / 1000.0)
    } else if r >= 1000.0 {
        format!("{:.1}k", r / 1000.0)
    } else {
        format!("{r:.0}")
    }
}

fn pane_block<'a>(app: &App, title: Line<'a>, pane: Pane) -> Block<'a> {
    let style = if app.focus == pane && app.mode == Mode::Normal { app.theme.focus() } else { app.theme.dim() };
    Block::bordered().border_style(style).title(title)
}

fn draw_sessions(f: &mut Frame<'_>, app: &mut App, area: Rect) {
    if app.zoom {
        match app.focus {
            Pane::Table => {
                draw_table(f, app, area);
                app.geometry.detail = Rect::default();
            }
            Pane::Detail => {
                app.geometry.table_rows = Rect::default();
                draw_detail(f, app, area);
            }
        }
        return;
    }
    // The table takes what its rows need, up to two fifths; the detail gets the rest.
    let rows = u16::try_from(app.store.len()).unwrap_or(u16::MAX).saturating_add(3);
    let table_h = rows.clamp(5, (area.height * 2 / 5).max(5)).min(area.height.saturating_sub(6).max(3));
    let [top, bottom] = Layout::vertical([Constraint::Length(table_h), Constraint::Min(3)]).areas(area);
    draw_table(f, app, top);
    draw_detail(f, app, bottom);
}

/// How much of a session's start time the TIME column shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeShown {
    /// `HH:MM:SS`: every session started on the same day.
    Clock,
    /// `MM-DD HH:MM:SS`: several days of one year.
    Day,
    /// `YYYY-MM-DD HH:MM:SS`: several years.
    Full,
}

impl TimeShown {
    /// What the store's sessions need: a multi-day capture with clock times only looks
    /// unsorted under TIME▲.
    pub fn of(store: &store::Store) -> Self {
        match store.span {
            _ if !store.spans_days() => TimeShown::Clock,
            Some((a, b)) if rfc3339(a).get(..4) == rfc3339(b).get(..4) => TimeShown::Day,
            _ => TimeShown::Full,
        }
    }

    fn text(self, micros: i64) -> String {
        let t = rfc3339(micros);
        let range = match self {
            TimeShown::Clock => 11..19,
            TimeShown::Day => 5..19,
            TimeShown::Full => 0..19,
        };
        t.get(range).map_or_else(|| t.clone(), |x| x.replacen('T', " ", 1))
    }
}

/// Columns that fit `width` (the table's inside), with their widths: each as wide as the
/// widest value on screen needs (capped), the least important left out when narrow, and the
/// room left to the HELO name. `natural` gives a column's widest value on screen; `shown` says
/// whether the run has a column at all (SENSOR, LOG).
pub fn columns(width: u16, natural: &dyn Fn(Column) -> usize, shown: &dyn Fn(Column) -> bool) -> Vec<(Column, u16)> {
    // (column, cap, importance: lower stays longer)
    let all = [
        (Column::Time, 19, 3),
        (Column::Sensor, 16, 4),
        (Column::Source, 16, 3),
        (Column::Client, 47, 1),
        (Column::Server, 39, 1),
        (Column::Port, 5, 1),
        (Column::Helo, 6, 5),
        (Column::Verdict, 25, 0),
        (Column::Log, 6, 2),
        (Column::Tls, 6, 2),
        (Column::Msgs, 5, 7),
        (Column::Bytes, 14, 6),
        (Column::Findings, 40, 4),
    ];
    // A title with its sort mark always fits.
    let sized = |c: Column, cap: usize| natural(c).min(cap).max(c.title().width() + 1) as u16;
    let avail = usize::from(width);
    let mut keep: Vec<(Column, u16, u8)> =
        all.iter().filter(|c| shown(c.0)).map(|&(c, cap, imp)| (c, sized(c, cap), imp)).collect();
    // Widths plus one space between columns.
    let need = |k: &[(Column, u16, u8)]| k.iter().map(|c| usize::from(c.1) + 1).sum::<usize>().saturating_sub(1);
    while need(&keep) > avail && keep.len() > 1 {
        // Messages, bytes, HELO, then findings go first; then long (IPv6) addresses lose
        // their middle down to 17 and 12 columns (an 80-column screen keeps the time with two
        // IPv6 ends); only then does the time or the TLS version go.
        let least = keep.iter().enumerate().max_by_key(|(i, c)| (c.2, *i)).map(|(i, c)| (i, c.2));
        // The address with the most to spare gives a column at a time, so both keep what they can.
        let min = |c: Column| if c == Column::Client { 17 } else { 12 };
        let shrink = keep
            .iter_mut()
            .filter(|c| matches!(c.0, Column::Client | Column::Server) && c.1 > min(c.0))
            .max_by_key(|c| c.1 - min(c.0));
        match (least, shrink) {
            (Some((i, imp)), _) if imp >= 4 => {
                keep.remove(i);
            }
            (_, Some(c)) => c.1 -= 1,
            (Some((i, _)), None) => {
                keep.remove(i);
            }
            (None, None) => break,
        }
    }
    let mut spare = avail.saturating_sub(need(&keep)) as u16;
    let mut out: Vec<(Column, u16)> = keep.iter().map(|c| (c.0, c.1)).collect();
    // Room left goes to the HELO name, as far as the names on screen need (up to 48), then
    // back to addresses cut above before a column went.
    for (grow, cap) in [(Column::Helo, 48), (Column::Client, 47), (Column::Server, 39)] {
        if let Some(c) = out.iter_mut().find(|c| c.0 == grow) {
            let add = spare.min(sized(grow, cap).saturating_sub(c.1));
            c.1 += add;
            spare -= add;
        }
    }
    out
}

fn cell_text(col: Column, s: &Session, time: TimeShown) -> String {
    if let Some(r) = &s.from_log {
        return match col {
            Column::Time => time.text(r.first_seen),
            _ => super::logrow::cell(col, r),
        };
    }
    match col {
        Column::Time => time.text(s.first_seen),
        Column::Client => s.client.to_string(),
        Column::Server => s.server.ip().to_string(),
        Column::Port => s.server.port().to_string(),
        Column::Helo => {
            s.hello.as_ref().map(|h| terminal(&h.arg)).filter(|h| !h.is_empty()).unwrap_or_else(|| "-".into())
        }
        Column::Verdict => s.verdict.map_or("-", |v| v.name()).to_string(),
        Column::Tls => store::tls_version(s).map(version_label).unwrap_or_else(|| "-".into()),
        Column::Msgs => store::messages(s).map_or("-".into(), |n| n.to_string()),
        Column::Bytes => thousands(s.wire_bytes[0] + s.wire_bytes[1]),
        Column::Findings => report::finding::short_list(s),
        Column::Sensor => s.sensor.as_deref().map_or_else(|| "-".into(), |n| terminal(n.as_bytes())),
        // An open session is linked once it ends.
        Column::Log if s.in_progress => "-".into(),
        // A finished session with no link yet in a run that follows the logs waits for its log
        // lines (a run with logs read from files links every session as it ends).
        Column::Log => LogAgreement::of(s).map_or("-", LogAgreement::name).into(),
        Column::Source => "-".into(),
    }
}

/// A cell as shown: open sessions carry a `●` before their verdict; in a live run that follows
/// the logs, a finished session not linked yet reads `wait` in the LOG column.
fn shown_text(col: Column, s: &Session, time: TimeShown, following: bool) -> String {
    if col == Column::Log && waits_for_log(s, following) {
        return "wait".into();
    }
    let text = cell_text(col, s, time);
    if col == Column::Verdict && s.in_progress {
        format!("● {text}")
    } else {
        text
    }
}

fn draw_table(f: &mut Frame<'_>, app: &mut App, area: Rect) {
    let th = app.theme;
    let (sort, desc) = app.sort();
    let inner_h = usize::from(area.height.saturating_sub(3));
    let len = app.store.len();
    let time = TimeShown::of(&app.store);
    // Keep the cursor on screen; the offset only moves when it must.
    let mut offset = app.geometry.table_offset.min(len.saturating_sub(1));
    if app.cursor < offset {
        offset = app.cursor;
    } else if inner_h > 0 && app.cursor >= offset + inner_h {
        offset = app.cursor + 1 - inner_h;
    }
    // A taller window shows more rows above rather than blank ones below.
    offset = offset.min(len.saturating_sub(inner_h));
    app.geometry.table_offset = offset;
    // Columns sized from the rows on screen.
    let on_screen: Vec<Arc<Session>> = (offset..(offset + inner_h).min(len)).filter_map(|i| app.store.get(i)).collect();
    let following = app.log_wait.is_some();
    let natural = |c: Column| on_screen.iter().map(|s| shown_text(c, s, time, following).width()).max().unwrap_or(0);
    let cols = columns(area.width.saturating_sub(2), &natural, &|c| app.store.shows(c));
    app.geometry.table_rows =
        Rect { x: area.x + 1, y: area.y + 2, width: area.width.saturating_sub(2), height: inner_h as u16 };
    app.geometry.header_y = area.y + 1;
    app.geometry.header.clear();
    let mut x = area.x + 1;
    for (c, w) in &cols {
        app.geometry.header.push((x, x + w, *c));
        x += w + 1;
    }
    let header = Row::new(cols.iter().map(|(c, _)| {
        let mark = if *c == sort {
            if desc {
                "▼"
            } else {
                "▲"
            }
        } else {
            ""
        };
        Cell::from(format!("{}{mark}", c.title()))
    }))
    .style(th.heading());
    let mut rows = Vec::with_capacity(inner_h);
    // The rows were unpacked once, above.
    for (i, s) in (offset..).zip(&on_screen) {
        let cells = cols.iter().map(|(c, w)| {
            let full = shown_text(*c, s, time, following);
            let text = match c {
                Column::Client | Column::Server => fit_address(&full, usize::from(*w)),
                _ => fit(&full, usize::from(*w)),
            };
            if *c == Column::Findings && !s.findings.is_empty() {
                return Cell::from(findings_line(&th, s, usize::from(*w), i == app.cursor));
            }
            let style = match c {
                Column::Verdict => {
                    let st = s.verdict.map_or(th.dim(), |v| th.verdict(v));
                    if s.in_progress {
                        st.add_modifier(Modifier::ITALIC)
                    } else {
                        st
                    }
                }
                Column::Tls if store::tls_version(s).is_some_and(|v| v < 0x0303) => th.warn(),
                Column::Log if !s.in_progress && LogAgreement::of(s) == Some(LogAgreement::Differ) => th.warn(),
                Column::Log if !s.in_progress && LogAgreement::of(s) == Some(LogAgreement::None) => th.dim(),
                Column::Log if waits_for_log(s, following) => th.dim(),
                _ => Style::new(),
            };
            let style = if i == app.cursor { th.on_selection(style) } else { style };
            let right = matches!(c, Column::Msgs | Column::Bytes | Column::Port);
            let line = if right {
                Line::from(Span::styled(text, style)).right_aligned()
            } else {
                Line::from(Span::styled(text, style))
            };
            Cell::from(line)
        });
        let mut row = Row::new(cells);
        if i == app.cursor {
            row = row.style(th.selected());
        }
        rows.push(row);
    }
    let filtered = if app.store.filter().is_all() { String::new() } else { " (filtered)".into() };
    let mut title = vec![Span::styled(
        format!(" Sessions {}/{}{filtered} ", thousands(len as u64), thousands(app.store.total() as u64)),
        Style::new().add_modifier(Modifier::BOLD),
    )];
    if app.store.dropped > 0 {
        title.push(Span::styled(format!("· {} oldest dropped from view ", thousands(app.store.dropped)), th.dim()));
    }
    if app.follow {
        title.push(Span::styled("· following ", th.dim()));
    }
    let widths: Vec<Constraint> = cols.iter().map(|(_, w)| Constraint::Length(*w)).collect();
    let table = Table::new(rows, widths).header(header).column_spacing(1).block(pane_block(
        app,
        Line::from(title),
        Pane::Table,
    ));
    f.render_widget(table, area);
    // Across the table's inside, not in the first column's cell, where it would be clipped.
    if len == 0 && area.height > 3 {
        let msg = match (app.store.total(), app.source.logs, app.progress.done) {
            (0, true, false) => "reading the logs…",
            (0, true, true) => "no SMTP session in these logs",
            (0, false, _) => "waiting for SMTP sessions…",
            _ => "no session matches the filter",
        };
        let at = Rect { x: area.x + 1, y: area.y + 2, width: area.width.saturating_sub(2), height: 1 };
        f.render_widget(Paragraph::new(Span::styled(msg, th.dim())), at);
    }
}

/// A finished wire session with no log link yet, in a run that follows the logs.
fn waits_for_log(s: &Session, following: bool) -> bool {
    following && !s.in_progress && s.logs.is_none() && s.from_log.is_none()
}

/// A session's findings by short name, each coloured by how serious it is, cut to `w` columns.
fn findings_line(th: &super::theme::Theme, s: &Session, w: usize, selected: bool) -> Line<'static> {
    use report::finding::{severity, short, Severity};
    let mut spans = Vec::new();
    let mut used = 0;
    for (n, f) in s.findings.iter().enumerate() {
        let name = short(f.name);
        let sep = usize::from(n > 0);
        if used + sep + name.width() > w {
            spans.push(Span::styled("…", th.dim()));
            break;
        }
        if sep == 1 {
            spans.push(Span::raw(","));
        }
        let style = match severity(f.name) {
            Severity::High => th.error(),
            Severity::Warn => th.warn(),
            Severity::Info => th.dim(),
        };
        spans.push(Span::styled(name.to_string(), if selected { th.on_selection(style) } else { style }));
        used += sep + name.width();
    }
    Line::from(spans)
}

fn draw_detail(f: &mut Frame<'_>, app: &mut App, area: Rect) {
    let th = app.theme;
    let mut title = vec![Span::raw(" ")];
    let mut x = area.x + 2;
    app.geometry.tabs.clear();
    app.geometry.tabs_y = area.y;
    for (i, t) in Tab::ALL.iter().enumerate() {
        let text = format!("{} {}", i + 1, t.title());
        let w = text.width() as u16;
        app.geometry.tabs.push((x, x + w, *t));
        let style = if *t == app.tab { th.key().add_modifier(Modifier::REVERSED) } else { th.dim() };
        title.push(Span::styled(text, style));
        title.push(Span::styled(" │ ", th.dim()));
        x += w + 3;
    }
    title.pop();
    title.push(Span::raw(" "));
    let block = pane_block(app, Line::from(title), Pane::Detail);
    let inner = block.inner(area);
    f.render_widget(block, area);
    app.geometry.detail = area;
    app.geometry.detail_height = usize::from(inner.height.saturating_sub(1));
    let Some(s) = app.current() else {
        f.render_widget(Paragraph::new(Line::styled("no session selected", th.dim())), inner);
        return;
    };
    let look = Look { theme: th, show_addresses: app.show_addresses, width: inner.width };
    let [top, rest] = Layout::vertical([Constraint::Length(1), Constraint::Min(0)]).areas(inner);
    f.render_widget(Paragraph::new(detail::summary_line(&s, &look)), top);
    let w = rest.width;
    let (lines, scroll) = match app.tab {
        Tab::Transcript => (detail::wrap(detail::transcript(&s, &look), w, 10).0, app.detail_scroll),
        Tab::Tls => (detail::wrap_hanging(detail::tls(&s, &look), w, 14).0, app.detail_scroll),
        // A long logged line continues a little indented.
        Tab::Log => {
            let run = match app.log_wait {
                Some(wait) => detail::LogsInRun::Followed(wait),
                None if app.store.shows(Column::Log) => detail::LogsInRun::Read,
                None => detail::LogsInRun::None,
            };
            (detail::wrap_hanging(detail::log_in(&s, &look, app.show_credentials, run), w, 4).0, app.detail_scroll)
        }
        Tab::Evidence => {
            let (lines, at) = detail::evidence(&s, app.evidence_cursor, &look);
            let (lines, starts) = detail::wrap(lines, w, 10);
            let at = starts.get(at).copied().unwrap_or(0);
            let h = usize::from(rest.height);
            (lines, at.saturating_sub(h.saturating_sub(2)))
        }
        Tab::Packets if s.from_log.is_some() => {
            (detail::wrap(vec![Line::styled(super::logrow::no_packets(), th.dim())], w, 2).0, 0)
        }
        Tab::Packets => {
            draw_packets(f, app, &s, rest);
            return;
        }
    };
    let max = lines.len().saturating_sub(usize::from(rest.height));
    let scroll = scroll.min(max);
    if matches!(app.tab, Tab::Transcript | Tab::Tls | Tab::Log) {
        app.detail_scroll = scroll;
    }
    f.render_widget(Paragraph::new(lines).scroll((scroll as u16, 0)), rest);
}

fn draw_packets(f: &mut Frame<'_>, app: &App, s: &Session, area: Rect) {
    let th = app.theme;
    let p = match &app.packets.state {
        PacketState::Ready(p) if p.id == s.id => p.clone(),
        PacketState::Failed(e) => {
            f.render_widget(
                Paragraph::new(Line::styled(format!("cannot read the packets: {}", defuse(e)), th.error())),
                area,
            );
            return;
        }
        _ => {
            f.render_widget(Paragraph::new(Line::styled("reading the session's packets…", th.dim())), area);
            return;
        }
    };
    if p.rows.is_empty() {
        let why = p.note.clone().unwrap_or_else(|| "no packet of this session found in the input".into());
        f.render_widget(Paragraph::new(Line::styled(why, th.warn())), area);
        return;
    }
    let list_h = (area.height / 2).max(3).min(area.height);
    let [list, dump] = Layout::vertical([Constraint::Length(list_h), Constraint::Min(0)]).areas(area);
    let base = p.rows.first().map_or(0, |r| r.ts);
    // Relative sequence numbers, as Wireshark shows them: from each side's first one.
    let first_seq = |side| p.rows.iter().find(|r| r.side == side).map_or(0, |r| r.seq);
    let isn = [first_seq(crate::session::Side::Client), first_seq(crate::session::Side::Server)];
    // The list's first line is its header: `n` packet rows fit below it.
    let n = usize::from(list.height).saturating_sub(1);
    let cursor = app.packets.cursor.min(p.rows.len() - 1);
    let start = cursor.saturating_sub(n.saturating_sub(1) / 2).min(p.rows.len().saturating_sub(n));
    let mut lines = Vec::new();
    let mut header = format!("{} packets", thousands(p.rows.len() as u64));
    if p.more > 0 {
        header.push_str(&format!(" (+{} more not listed)", thousands(p.more)));
    }
    if let Some(note) = &p.note {
        header.push_str(&format!(" · {note}"));
    }
    lines.push(Line::styled(header, th.dim()));
    // The transcript masks AUTH secrets and envelope local parts; so do the packets.
    let hide = |r: &packets::PacketRow| {
        let secret = s.transcript.as_ref().is_some_and(|t| t.secret_in(r.frame));
        packets::hidden(r, secret, app.show_addresses)
    };
    for (i, r) in p.rows.iter().enumerate().skip(start).take(n) {
        let (tag, style) = match r.side {
            crate::session::Side::Client => ("C→S", th.client()),
            crate::session::Side::Server => ("S→C", th.server()),
        };
        let rel = (r.ts - base) as f64 / 1e6;
        let (mine, theirs) = match r.side {
            crate::session::Side::Client => (isn[0], isn[1]),
            crate::session::Side::Server => (isn[1], isn[0]),
        };
        let ack = if r.flags.ack { r.ack.wrapping_sub(theirs).to_string() } else { "-".into() };
        let text = format!(
            "{:>6} {:>+10.6} {tag} {:<5} seq {:<7} ack {:<7} len {:>5}  {}",
            r.frame,
            rel,
            packets::flags(r.flags, r.payload_len > 0),
            r.seq.wrapping_sub(mine),
            ack,
            r.payload_len,
            packets::preview(r, &hide(r))
        );
        let mut line = Line::styled(text, style);
        if i == cursor {
            line = th.select(line);
        }
        lines.push(line);
    }
    f.render_widget(Paragraph::new(lines), list);
    if let Some(r) = p.rows.get(cursor) {
        let hidden = hide(r);
        let mut head = vec![Span::styled(
            format!("frame {} · {} bytes on the wire, {} captured", r.frame, r.orig_len, r.data.len()),
            th.heading(),
        )];
        if !hidden.is_empty() {
            let why = if s.transcript.as_ref().is_some_and(|t| t.secret_in(r.frame)) && r.side == Side::Client {
                "AUTH secret masked (--show-credentials shows it)"
            } else {
                "envelope addresses masked (--show-addresses shows them)"
            };
            head.push(Span::styled(format!(" · {why}"), th.warn()));
        }
        let mut d = vec![Line::from(head)];
        d.extend(packets::hexdump_masked(&r.data, &hidden).into_iter().map(Line::raw));
        f.render_widget(Paragraph::new(d), dump);
    }
}

fn draw_pairs(f: &mut Frame<'_>, app: &mut App, area: Rect) {
    let th = app.theme;
    app.geometry.header.clear();
    let inner_h = usize::from(area.height.saturating_sub(3));
    let n = app.pairs.pairs.len();
    let offset = app.pairs_cursor.saturating_sub(inner_h.saturating_sub(1)).min(n.saturating_sub(inner_h.max(1)));
    app.geometry.table_offset = offset;
    app.geometry.table_rows =
        Rect { x: area.x + 1, y: area.y + 2, width: area.width.saturating_sub(2), height: inner_h as u16 };
    app.geometry.detail = Rect::default();
    // Columns sized from what they hold (hosts, ports, extensions, verbs, versions, findings).
    // When they do not all fit, the verdicts take short names, the findings go, the extensions
    // are cut (down to 10 columns) and then go, and only then do versions, verbs used and ports.
    let visible: Vec<_> = app.pairs.pairs.iter().enumerate().skip(offset).take(inner_h).collect();
    let cells: Vec<_> = visible.iter().map(|(_, (_, p))| p.cells()).collect();
    let col = |title: &str, len: &dyn Fn(usize) -> usize, cap: usize| -> usize {
        (0..cells.len()).map(len).max().unwrap_or(0).max(title.width()).min(cap)
    };
    let name = |v: Verdict, short: bool| if short { short_name(v) } else { v.name() };
    let verdicts_w = |p: &report::pairs::Pair, short: bool| {
        p.verdicts.iter().map(|(v, k)| name(*v, short).len() + k.to_string().len() + 2).sum::<usize>().saturating_sub(1)
    };
    let client_w = col("CLIENT HOST", &|i| visible[i].1 .0 .0.to_string().width(), 39);
    let server_w = col("SERVER HOST", &|i| visible[i].1 .0 .1.to_string().width(), 39);
    let offered_full = col("OFFERED", &|i| cells[i].extensions.width(), 80);
    let ports_w = col("PORTS", &|i| cells[i].ports.width(), 16);
    let used_w = col("USED", &|i| cells[i].used.width(), 24);
    let tls_w = col("TLS", &|i| cells[i].tls.width(), 24);
    let findings_full = col("FINDINGS", &|i| cells[i].findings.width(), 48);
    let avail = usize::from(area.width.saturating_sub(2));
    let mut short = false;
    let mut verdict_w = col("VERDICTS", &|i| verdicts_w(visible[i].1 .1, false), 80);
    let (mut offered_w, mut findings_w) = (offered_full, findings_full);
    // Optional columns, in the order they give way.
    const OFFERED: usize = 0;
    const FINDINGS: usize = 1;
    let mut show = [true; 5]; // offered, findings, tls, used, ports
    let need = |show: &[bool; 5], verdicts: usize, offered: usize, findings: usize| {
        let opt = [offered, findings, tls_w, used_w, ports_w]
            .iter()
            .zip(show)
            .filter(|(_, s)| **s)
            .map(|(w, _)| w + 1)
            .sum::<usize>();
        client_w + server_w + 5 + verdicts + 3 + opt
    };
    if need(&show, verdict_w, offered_w, findings_w) > avail {
        short = true;
        verdict_w = col("VERDICTS", &|i| verdicts_w(visible[i].1 .1, true), 80);
    }
    // Cut the extensions, then the findings, before any column goes.
    let over = need(&show, verdict_w, offered_w, findings_w).saturating_sub(avail);
    offered_w = offered_w.saturating_sub(over).max(10.min(offered_full));
    let over = need(&show, verdict_w, offered_w, findings_w).saturating_sub(avail);
    findings_w = findings_w.saturating_sub(over).max(12.min(findings_full));
    for drop in [OFFERED, FINDINGS, 2, 3, 4] {
        if need(&show, verdict_w, offered_w, findings_w) > avail {
            show[drop] = false;
        }
    }
    // What is left goes back to the extensions, then the findings.
    let mut spare = avail.saturating_sub(need(&show, verdict_w, offered_w, findings_w));
    for (on, w, full) in
        [(show[OFFERED], &mut offered_w, offered_full), (show[FINDINGS], &mut findings_w, findings_full)]
    {
        if on {
            let add = spare.min(full - *w);
            *w += add;
            spare -= add;
        }
    }
    let len16 = |w: usize| Constraint::Length(u16::try_from(w).unwrap_or(u16::MAX));
    let mut widths = vec![len16(client_w), len16(server_w)];
    let mut titles = vec!["CLIENT HOST", "SERVER HOST"];
    let optional = [
        (show[4], ports_w, "PORTS"),
        (true, 5, "SESS"),
        (true, verdict_w, "VERDICTS"),
        (show[OFFERED], offered_w, "OFFERED"),
        (show[3], used_w, "USED"),
        (show[2], tls_w, "TLS"),
        (show[FINDINGS], findings_w, "FINDINGS"),
    ];
    for (on, w, title) in optional {
        if on {
            widths.push(len16(w));
            titles.push(title);
        }
    }
    let header = Row::new(titles.iter().map(|t| Cell::from(*t))).style(th.heading());
    let mut rows = Vec::new();
    for ((i, ((c, s), p)), cells) in visible.iter().zip(cells) {
        let mut verdicts = Vec::new();
        for (v, k) in &p.verdicts {
            let style = if *i == app.pairs_cursor { th.on_selection(th.verdict(*v)) } else { th.verdict(*v) };
            verdicts.push(Span::styled(format!("{} {k}", name(*v, short)), style));
            verdicts.push(Span::raw(" "));
        }
        let mut row: Vec<Cell> =
            vec![Cell::from(fit(&c.to_string(), client_w)), Cell::from(fit(&s.to_string(), server_w))];
        if show[4] {
            row.push(Cell::from(cells.ports));
        }
        row.push(Cell::from(Line::from(p.sessions().to_string()).right_aligned()));
        row.push(Cell::from(Line::from(verdicts)));
        if show[OFFERED] {
            row.push(Cell::from(fit(&cells.extensions, offered_w)));
        }
        if show[3] {
            row.push(Cell::from(cells.used));
        }
        if show[2] {
            row.push(Cell::from(cells.tls));
        }
        if show[FINDINGS] {
            let style = if p.findings.keys().any(|f| report::finding::severity(f) == report::finding::Severity::High) {
                th.error()
            } else if p.findings.keys().any(|f| report::finding::severity(f) == report::finding::Severity::Warn) {
                th.warn()
            } else {
                th.dim()
            };
            let style = if *i == app.pairs_cursor { th.on_selection(style) } else { style };
            row.push(Cell::from(Span::styled(fit(&cells.findings, findings_w), style)));
        }
        let mut r = Row::new(row);
        if *i == app.pairs_cursor {
            r = r.style(th.selected());
        }
        rows.push(r);
    }
    let noun = if n == 1 { "host pair" } else { "host pairs" };
    let filter = app.store.filter().text();
    let filtered = if filter.is_empty() { String::new() } else { format!(" (filter: {})", fit(&defuse(filter), 40)) };
    let title = Line::from(vec![
        Span::styled(format!(" Pairs: {n} {noun}{filtered} "), Style::new().add_modifier(Modifier::BOLD)),
        Span::styled("· Enter shows their sessions · Esc/P back ", th.dim()),
    ]);
    let table = Table::new(rows, widths).header(header).column_spacing(1).block(pane_block(app, title, Pane::Table));
    f.render_widget(table, area);
}

fn hint(th: &super::theme::Theme, key: &str, what: &str) -> Vec<Span<'static>> {
    vec![Span::styled(key.to_string(), th.key()), Span::styled(format!(" {what}  "), th.dim())]
}

fn draw_footer(f: &mut Frame<'_>, app: &App, area: Rect) {
    let th = app.theme;
    if app.mode == Mode::Filter {
        let value = app.input.value();
        let width = usize::from(area.width.saturating_sub(3));
        let scroll = app.input.visual_scroll(width);
        let (ok, msg) = match &app.input_error {
            None => (true, String::new()),
            Some(e) => (false, e.kind.to_string()),
        };
        let base = if ok { th.ok() } else { Style::new() };
        let mut spans = vec![Span::styled("/ ", if ok { th.ok() } else { th.error() })];
        // The bad part of the input in red, the rest as typed.
        let (a, b) = app
            .input_error
            .as_ref()
            .map_or((value.len(), value.len()), |e| (e.span.start.min(value.len()), e.span.end.min(value.len())));
        let (a, b) = (floor_char(value, a), floor_char(value, b.max(a)));
        // Typed or pasted text is the user's, but a pasted bidi override still must not act.
        spans.push(Span::styled(defuse(&value[..a]), base));
        spans.push(Span::styled(defuse(&value[a..b]), th.error().add_modifier(Modifier::UNDERLINED)));
        spans.push(Span::styled(defuse(&value[b..]), base));
        let used = 2 + value.width();
        if !ok && usize::from(area.width) > used + 4 {
            spans.push(Span::styled(format!("  {}", fit(&msg, usize::from(area.width) - used - 2)), th.error()));
        }
        f.render_widget(Paragraph::new(Line::from(spans)).scroll((0, scroll as u16)), area);
        let cursor = app.input.visual_cursor().saturating_sub(scroll) as u16;
        f.set_cursor_position((area.x + 2 + cursor, area.y));
        return;
    }
    if let Some(st) = &app.status {
        let style = if st.error { th.error() } else { th.ok() };
        f.render_widget(Paragraph::new(Line::styled(format!(" {}", defuse(&st.text)), style)), area);
        return;
    }
    let mut spans = vec![Span::raw(" ")];
    for (k, w) in [
        ("/", "filter"),
        ("1-5", "tabs"),
        ("s", "sort"),
        ("P", "pairs"),
        ("e", "export"),
        ("w", "pcap"),
        ("p", "pause"),
        ("?", "help"),
        ("q", "quit"),
    ] {
        spans.extend(hint(&th, k, w));
    }
    f.render_widget(Paragraph::new(Line::from(spans)), area);
}

fn floor_char(s: &str, mut i: usize) -> usize {
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

fn centered(area: Rect, w: u16, h: u16) -> Rect {
    let w = w.min(area.width);
    let h = h.min(area.height);
    Rect { x: area.x + (area.width - w) / 2, y: area.y + (area.height - h) / 2, width: w, height: h }
}

fn draw_help(f: &mut Frame<'_>, app: &App, area: Rect) {
    let th = app.theme;
    let h = (HELP.len() as u16 + 4).min(area.height);
    let r = centered(area, 78, h);
    f.render_widget(Clear, r);
    let mut lines = vec![Line::styled("smtpscope: one row per SMTP session, its verdict and the evidence", th.dim())];
    for (k, what) in HELP {
        lines.push(Line::from(vec![Span::styled(format!("{k:>13}  "), th.key()), Span::raw(*what)]));
    }
    lines.push(Line::styled("filter: verdict: client: server: host: port: helo: banner: sni: cert:", th.dim()));
    lines.push(Line::styled("        ext: finding: auth: upgrade: tls: state:, \"free text\", ! or ( )", th.dim()));
    let (lines, _) = detail::wrap(lines, r.width.saturating_sub(2), 15);
    let r = centered(area, 78, (lines.len() as u16 + 2).min(area.height));
    f.render_widget(Clear, r);
    let block = Block::bordered().title(Span::styled(" Keys (Esc closes) ", th.heading())).border_style(th.focus());
    f.render_widget(Paragraph::new(lines).block(block), r);
}

fn draw_export(f: &mut Frame<'_>, app: &App, area: Rect) {
    let th = app.theme;
    let (n, open) = app.store.visible_counts();
    let r = centered(area, 64, 7);
    f.render_widget(Clear, r);
    let mut lines = vec![Line::raw(format!("Export the {} finished sessions of the view as:", thousands(n as u64)))];
    if open > 0 {
        lines.push(Line::styled(format!("({open} still open are left out: their verdict is not final)"), th.dim()));
    }
    lines.push(Line::from(vec![
        Span::styled(" n ", th.key().add_modifier(Modifier::REVERSED)),
        Span::raw(" NDJSON   "),
        Span::styled(" c ", th.key().add_modifier(Modifier::REVERSED)),
        Span::raw(" CSV   "),
        Span::styled("Esc", th.key()),
        Span::raw(" cancel"),
    ]));
    let block =
        Block::bordered().borders(Borders::ALL).title(Span::styled(" Export ", th.heading())).border_style(th.focus());
    f.render_widget(Paragraph::new(lines).block(block), r);
}

fn draw_completion(f: &mut Frame<'_>, app: &App, footer: Rect) {
    let Some(c) = &app.completion else { return };
    if c.candidates.is_empty() {
        return;
    }
    let th = app.theme;
    // A window of the list around the pick, with what lies beyond it counted.
    let room = usize::from(footer.y.saturating_sub(2)).clamp(1, 10);
    let n = c.candidates.len();
    let pick = app.completion_pick.filter(|p| *p < n);
    let first = pick.map_or(0, |p| p.saturating_sub(room - 1)).min(n.saturating_sub(room));
    let shown: Vec<(usize, &String)> = c.candidates.iter().enumerate().skip(first).take(room).collect();
    let (above, below) = (first, n - first - shown.len());
    let more = match (above, below) {
        (0, 0) => None,
        (0, b) => Some(format!("+{b} more ↓")),
        (a, 0) => Some(format!("+{a} more ↑")),
        (a, b) => Some(format!("+{a} ↑ +{b} ↓")),
    };
    let w = shown.iter().map(|(_, s)| s.width()).chain(more.iter().map(|m| m.width())).max().unwrap_or(0) as u16 + 2;
    let h = (shown.len() + usize::from(more.is_some())) as u16 + 2;
    let x = (footer.x + 2 + app.input.value()[..c.start.min(app.input.value().len())].width() as u16)
        .min(footer.width.saturating_sub(w));
    let r = Rect { x, y: footer.y.saturating_sub(h), width: w.min(footer.width), height: h.min(footer.y) };
    f.render_widget(Clear, r);
    let mut lines: Vec<Line> = shown
        .iter()
        .map(|(i, s)| {
            let line = Line::raw(defuse(s));
            if Some(*i) == pick {
                line.style(th.selected())
            } else {
                line
            }
        })
        .collect();
    if let Some(m) = more {
        lines.push(Line::styled(m, th.dim()));
    }
    let title = Span::styled(" Tab/↓/↑ pick, Enter takes ", th.dim());
    let block = Block::bordered().border_style(th.dim());
    let block = if w >= 30 { block.title(title) } else { block };
    f.render_widget(Paragraph::new(lines).block(block), r);
}
