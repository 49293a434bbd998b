//! Keys and mouse events to actions, per mode. Pure, so the key map is tested without a
//! terminal; the help overlay lists the same bindings.

use ratatui::crossterm::event::{Event, KeyCode, KeyEvent, KeyEventKind, KeyModifiers, MouseButton, MouseEventKind};
use tui_input::InputRequest;

use super::app::{Action, ExportFormat, Mode, Tab};

/// Every binding as the help overlay shows it: (keys, what they do).
pub const HELP: &[(&str, &str)] = &[
    ("j k ↓ ↑", "move the selection / scroll the focused pane"),
    ("PgDn PgUp", "page down / up (also Ctrl-F, Ctrl-B)"),
    ("g G Home End", "first / last row (G follows new rows)"),
    ("Tab", "next pane: sessions ⇄ detail"),
    ("Enter", "zoom; on evidence: its packet; on a pair: its sessions"),
    ("Esc", "unzoom, close, back from pairs"),
    ("1 2 3 4 5", "detail tab: transcript, TLS, evidence, packets, server log"),
    ("h l ← →", "previous / next detail tab"),
    ("/", "filter: Tab completes (Tab/↓/↑ walk the list), Enter applies, Ctrl-U clears"),
    ("s S", "sort by the next column / reverse the order"),
    ("P", "pairs view: client host × server host"),
    ("p", "pause / resume live updates"),
    ("e", "export the filtered sessions (NDJSON or CSV)"),
    ("w", "write the selected session's packets to a pcap"),
    ("mouse", "click a row, tab, pane or column title; wheel"),
    ("?", "this help"),
    ("q Ctrl-C", "quit"),
];

fn key_action(k: KeyEvent, mode: Mode) -> Option<Action> {
    let ctrl = k.modifiers.contains(KeyModifiers::CONTROL);
    if ctrl && k.code == KeyCode::Char('c') {
        return Some(Action::Quit);
    }
    match mode {
        Mode::Filter => Some(match (k.code, ctrl) {
            (KeyCode::Enter, _) => Action::FilterApply,
            (KeyCode::Esc, _) => Action::FilterClose,
            (KeyCode::Char('u'), true) => Action::FilterClear,
            (KeyCode::Tab | KeyCode::Down, _) => Action::FilterComplete,
            (KeyCode::BackTab | KeyCode::Up, _) => Action::FilterCompletePrev,
            _ => Action::FilterInput(tui_input::backend::crossterm::to_input_request(&Event::Key(k))?),
        }),
        Mode::Help => match k.code {
            KeyCode::Esc | KeyCode::Char('?' | 'q') | KeyCode::Enter => Some(Action::Escape),
            _ => None,
        },
        Mode::Export => match k.code {
            KeyCode::Char('n' | 'j') => Some(Action::ExportAs(ExportFormat::Ndjson)),
            KeyCode::Char('c') => Some(Action::ExportAs(ExportFormat::Csv)),
            KeyCode::Esc | KeyCode::Char('q') => Some(Action::Escape),
            _ => None,
        },
        Mode::Normal => Some(match (k.code, ctrl) {
            (KeyCode::Char('q'), false) => Action::Quit,
            (KeyCode::Char('j') | KeyCode::Down, _) => Action::Down,
            (KeyCode::Char('k') | KeyCode::Up, _) => Action::Up,
            (KeyCode::PageDown, _) | (KeyCode::Char('f' | 'd'), true) => Action::PageDown,
            (KeyCode::PageUp, _) | (KeyCode::Char('b' | 'u'), true) => Action::PageUp,
            (KeyCode::Char('g') | KeyCode::Home, _) => Action::Top,
            (KeyCode::Char('G') | KeyCode::End, _) => Action::Bottom,
            (KeyCode::Tab | KeyCode::BackTab, _) => Action::NextPane,
            (KeyCode::Enter, _) => Action::Enter,
            (KeyCode::Esc, _) => Action::Escape,
            (KeyCode::Char('1'), _) => Action::Tab(Tab::Transcript),
            (KeyCode::Char('2'), _) => Action::Tab(Tab::Tls),
            (KeyCode::Char('3'), _) => Action::Tab(Tab::Evidence),
            (KeyCode::Char('4'), _) => Action::Tab(Tab::Packets),
            (KeyCode::Char('5'), _) => Action::Tab(Tab::Log),
            (KeyCode::Char('h') | KeyCode::Left, _) => Action::PrevTab,
            (KeyCode::Char('l') | KeyCode::Right, _) => Action::NextTab,
            (KeyCode::Char('s'), false) => Action::Sort,
            (KeyCode::Char('S'), false) => Action::SortReverse,
            (KeyCode::Char('p'), false) => Action::Pause,
            (KeyCode::Char('/'), false) => Action::OpenFilter,
            (KeyCode::Char('e'), false) => Action::Export,
            (KeyCode::Char('w'), false) => Action::WritePcap,
            (KeyCode::Char('?'), false) => Action::Help,
            (KeyCode::Char('P'), false) => Action::Pairs,
            _ => return None,
        }),
    }
}

/// The action for a terminal event in `mode`, if any.
pub fn action(ev: &Event, mode: Mode) -> Option<Action> {
    match ev {
        Event::Key(k) if k.kind != KeyEventKind::Release => key_action(*k, mode),
        Event::Mouse(m) if mode == Mode::Normal => match m.kind {
            MouseEventKind::Down(MouseButton::Left) => Some(Action::Click(m.column, m.row)),
            MouseEventKind::ScrollUp => Some(Action::WheelUp(m.column, m.row)),
            MouseEventKind::ScrollDown => Some(Action::WheelDown(m.column, m.row)),
            _ => None,
        },
        Event::Resize(..) => Some(Action::Resize),
        _ => None,
    }
}

/// Whether an input request edits text (for live validation).
pub fn edits(r: &InputRequest) -> bool {
    matches!(
        r,
        InputRequest::InsertChar(_)
            | InputRequest::DeletePrevChar
            | InputRequest::DeleteNextChar
            | InputRequest::DeletePrevWord
            | InputRequest::DeleteNextWord
            | InputRequest::DeleteLine
            | InputRequest::DeleteTillEnd
            | InputRequest::Yank
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(c: KeyCode) -> Event {
        Event::Key(KeyEvent::new(c, KeyModifiers::NONE))
    }

    #[test]
    fn vim_and_arrow_keys_move_alike() {
        assert_eq!(action(&key(KeyCode::Char('j')), Mode::Normal), Some(Action::Down));
        assert_eq!(action(&key(KeyCode::Down), Mode::Normal), Some(Action::Down));
        assert_eq!(action(&key(KeyCode::Char('k')), Mode::Normal), Some(Action::Up));
        assert_eq!(action(&key(KeyCode::Char('l')), Mode::Normal), Some(Action::NextTab));
        assert_eq!(action(&key(KeyCode::Left), Mode::Normal), Some(Action::PrevTab));
    }

    #[test]
    fn letters_type_into_the_filter_bar_instead_of_acting() {
        let a = action(&key(KeyCode::Char('q')), Mode::Filter);
        assert_eq!(a, Some(Action::FilterInput(InputRequest::InsertChar('q'))));
        assert_eq!(action(&key(KeyCode::Tab), Mode::Filter), Some(Action::FilterComplete));
        let ctrl_u = Event::Key(KeyEvent::new(KeyCode::Char('u'), KeyModifiers::CONTROL));
        assert_eq!(action(&ctrl_u, Mode::Filter), Some(Action::FilterClear));
    }

    #[test]
    fn ctrl_c_quits_from_any_mode() {
        let e = Event::Key(KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL));
        for m in [Mode::Normal, Mode::Filter, Mode::Help, Mode::Export] {
            assert_eq!(action(&e, m), Some(Action::Quit));
        }
    }

    #[test]
    fn key_releases_are_ignored() {
        let mut k = KeyEvent::new(KeyCode::Char('q'), KeyModifiers::NONE);
        k.kind = KeyEventKind::Release;
        assert_eq!(action(&Event::Key(k), Mode::Normal), None);
    }
}
