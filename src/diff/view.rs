//! `diff --tui`: the sessions on top, the selected session's two transcripts side by side below,
//! the lines a change names highlighted.

use std::collections::HashSet;
use std::io;
use std::time::Duration;

use ratatui::crossterm::event::{self, Event, KeyCode, KeyEventKind};
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style, Stylize};
use ratatui::text::{Line as TextLine, Span};
use ratatui::widgets::{Block, Borders, List, ListItem, ListState, Paragraph};
use ratatui::Frame;

use crate::escape::terminal;
use crate::report;

use super::{Diff, DiffEntry, Observed};

/// What the view shows: the selected entry and how far its transcripts are scrolled.
#[derive(Debug, Clone, Default)]
pub struct View {
    /// Selected entry.
    pub selected: usize,
    /// Transcript lines scrolled past.
    pub scroll: u16,
    /// Quit asked.
    pub quit: bool,
}

/// A key's effect on the view.
pub fn key(v: &mut View, code: KeyCode, entries: usize) {
    match code {
        KeyCode::Char('q') | KeyCode::Esc => v.quit = true,
        KeyCode::Down | KeyCode::Char('j') => {
            v.selected = (v.selected + 1).min(entries.saturating_sub(1));
            v.scroll = 0;
        }
        KeyCode::Up | KeyCode::Char('k') => {
            v.selected = v.selected.saturating_sub(1);
            v.scroll = 0;
        }
        KeyCode::PageDown | KeyCode::Char(' ') => v.scroll = v.scroll.saturating_add(10),
        KeyCode::PageUp => v.scroll = v.scroll.saturating_sub(10),
        _ => {}
    }
}

fn summary_line(d: &Diff, e: &DiffEntry) -> String {
    let who = |o: Option<&Observed>| {
        o.map_or("-".to_string(), |o| {
            format!("{} > {}", report::endpoint(o.session.client), report::endpoint(o.session.server))
        })
    };
    let a = e.a.and_then(|i| d.a.sessions.get(i));
    let b = e.b.and_then(|i| d.b.sessions.get(i));
    let what = match (&e.comparison, e.reason) {
        (Some(c), _) => {
            let kinds: Vec<&str> = c.changes.iter().map(|c| c.kind).collect();
            format!(
                "{:<16} {}",
                c.middleboxes.first().unwrap_or(&"-"),
                if kinds.is_empty() { "no change".into() } else { kinds.join(", ") }
            )
        }
        (None, Some(r)) => format!("only at {} ({})", if a.is_some() { "a" } else { "b" }, r.name()),
        (None, None) => String::new(),
    };
    format!("{}  |  {}  |  {what}", who(a), who(b))
}

/// What a side's changes name: (frame, the text seen there), and whether its TLS changed.
#[derive(Default)]
struct Marks {
    lines: HashSet<(u64, String)>,
    tls: bool,
}

impl Marks {
    fn names(&self, frame: u64, text: &[u8]) -> bool {
        let text = crate::escape::json_text(text);
        self.lines.iter().any(|(f, t)| *f == frame && !t.is_empty() && text.contains(t.as_str()))
    }
}

/// The transcript of one side, the lines a change names highlighted.
fn transcript(o: Option<&Observed>, marked: &Marks) -> Vec<TextLine<'static>> {
    let Some(o) = o else { return vec![TextLine::from("(not seen at this point)".italic())] };
    let hl = Style::new().add_modifier(Modifier::REVERSED | Modifier::BOLD);
    let line = |prefix: &'static str, text: &[u8], frame: u64| {
        let body = format!("{prefix}{}", terminal(text));
        let span = if marked.names(frame, text) { Span::styled(body, hl) } else { Span::raw(body) };
        TextLine::from(vec![Span::raw(format!("{frame:>6} ")).dim(), span])
    };
    let mut out = Vec::new();
    for l in &o.dialogue.banner {
        out.push(line("S: ", &l.text, l.frame));
    }
    for x in &o.dialogue.exchanges {
        out.push(line("C: ", &x.command.text, x.command.frame));
        for r in &x.reply {
            out.push(line("S: ", &r.text, r.frame));
        }
    }
    if o.session.tls_handshake() {
        let t = &o.session.tls;
        let cert = t
            .cert
            .as_ref()
            .map_or_else(|| "certificate not visible".to_string(), |c| crate::escape::defuse(&c.subject));
        let frame = t.cert_frame.or(t.server_hello).unwrap_or(0);
        let text = format!(
            "-- TLS {} {cert} (frame {frame}) --",
            t.version.map_or_else(String::new, crate::tls::version_label)
        );
        out.push(TextLine::from(if marked.tls { Span::styled(text, hl) } else { Span::raw(text) }));
    }
    out
}

/// Draws the view.
pub fn draw(f: &mut Frame<'_>, d: &Diff, v: &View) {
    let [top, bottom, help] =
        Layout::vertical([Constraint::Percentage(35), Constraint::Min(5), Constraint::Length(1)]).areas(f.area());
    let items: Vec<ListItem<'_>> = d.entries.iter().map(|e| ListItem::new(summary_line(d, e))).collect();
    let title = format!(
        " smtpscope diff — clock offset (b - a) {} — {} matched, {} only at a, {} only at b ",
        super::output::offset_words(d.offset),
        d.matched(),
        d.only_a(),
        d.only_b()
    );
    let mut state = ListState::default().with_selected(Some(v.selected));
    f.render_stateful_widget(
        List::new(items)
            .block(Block::default().borders(Borders::ALL).title(title))
            .highlight_symbol("> ")
            .highlight_style(Style::new().reversed()),
        top,
        &mut state,
    );
    let e = d.entries.get(v.selected);
    let mut marked = [Marks::default(), Marks::default()];
    for c in e.and_then(|e| e.comparison.as_ref()).iter().flat_map(|c| &c.changes) {
        for (m, (frame, text)) in marked.iter_mut().zip([(c.a_frame, &c.a), (c.b_frame, &c.b)]) {
            if let (Some(f), Some(t)) = (frame, text) {
                m.lines.insert((f, t.clone()));
            }
            m.tls |= c.kind == "tls-terminated";
        }
    }
    let [left, right] = Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(bottom);
    let sides = [
        (e.and_then(|e| e.a).and_then(|i| d.a.sessions.get(i)), " a "),
        (e.and_then(|e| e.b).and_then(|i| d.b.sessions.get(i)), " b "),
    ];
    for ((o, name), (area, marks)) in sides.into_iter().zip([left, right].into_iter().zip(&marked)) {
        side(f, area, name, o, marks, v.scroll);
    }
    f.render_widget(
        Paragraph::new(" ↑/↓ j/k session   PgUp/PgDn space scroll   q quit   (highlighted: lines a change names)")
            .dim(),
        help,
    );
}

fn side(f: &mut Frame<'_>, area: Rect, name: &'static str, o: Option<&Observed>, marked: &Marks, scroll: u16) {
    let p = Paragraph::new(transcript(o, marked))
        .block(Block::default().borders(Borders::ALL).title(name))
        .scroll((scroll, 0));
    f.render_widget(p, area);
}

/// Runs the view on the terminal until the user quits.
pub fn run(d: &Diff) -> io::Result<()> {
    let mut terminal = ratatui::try_init()?;
    let mut v = View::default();
    let result = (|| -> io::Result<()> {
        while !v.quit {
            terminal.draw(|f| draw(f, d, &v))?;
            if event::poll(Duration::from_millis(500))? {
                if let Event::Key(k) = event::read()? {
                    if k.kind == KeyEventKind::Press {
                        key(&mut v, k.code, d.entries.len());
                    }
                }
            }
        }
        Ok(())
    })();
    ratatui::restore();
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use ratatui::backend::TestBackend;
    use ratatui::Terminal;

    fn asa() -> Diff {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("captures/diff");
        super::super::run(&[dir.join("asa-a.pcap")], &[dir.join("asa-b.pcap")], None, &Default::default()).unwrap()
    }

    fn screen(d: &Diff, v: &View) -> (Vec<String>, ratatui::buffer::Buffer) {
        let mut t = Terminal::new(TestBackend::new(160, 40)).unwrap();
        t.draw(|f| draw(f, d, v)).unwrap();
        let buf = t.backend().buffer().clone();
        let rows = (0..40).map(|y| (0..160).map(|x| buf[(x, y)].symbol().to_string()).collect::<String>()).collect();
        (rows, buf)
    }

    #[test]
    fn the_masked_and_the_clean_line_stand_side_by_side_highlighted() {
        let d = asa();
        let mut v = View::default();
        key(&mut v, KeyCode::Down, d.entries.len());
        let (rows, buf) = screen(&d, &v);
        let row = rows.iter().position(|r| r.contains("XXXXXXXA")).expect("the masked offer on screen");
        let (left, right) = rows[row].split_at(80);
        assert!(left.contains("S: 250-XXXXXXXA") && right.contains("S: 250-STARTTLS"), "{}", rows[row]);
        let x = u16::try_from(left.find("S: 250-XXXXXXXA").unwrap()).unwrap();
        assert!(buf[(x, row as u16)].modifier.contains(Modifier::REVERSED), "a change's line is highlighted");
        let cmd = rows.iter().find(|r| r.contains("C: XXXXXXXX")).expect("the rewritten command on screen");
        assert!(cmd[..80].contains("C: STARTTLS"), "{cmd}");
        let ok = rows.iter().position(|r| r.contains("S: 250-PIPELINING")).unwrap();
        let x = u16::try_from(rows[ok].find("S: 250-PIPELINING").unwrap()).unwrap();
        assert!(!buf[(x, ok as u16)].modifier.contains(Modifier::REVERSED), "an unchanged line is not");
    }

    #[test]
    fn keys_move_within_the_entries_and_quit() {
        let mut v = View::default();
        key(&mut v, KeyCode::Up, 2);
        assert_eq!(v.selected, 0);
        key(&mut v, KeyCode::Down, 2);
        key(&mut v, KeyCode::Down, 2);
        assert_eq!(v.selected, 1);
        key(&mut v, KeyCode::Char('q'), 2);
        assert!(v.quit);
    }
}
