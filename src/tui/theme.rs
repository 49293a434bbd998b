//! Colours, and their absence: with `NO_COLOR` set only attributes (bold, reverse, dim) remain.

use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};

use crate::session::Verdict;

/// The palette in use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Theme {
    /// Colours allowed.
    pub color: bool,
}

impl Theme {
    /// Colour unless `NO_COLOR` is set to a non-empty value.
    pub fn from_env() -> Self {
        Self { color: std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()) }
    }

    fn fg(&self, c: Color) -> Style {
        if self.color {
            Style::new().fg(c)
        } else {
            Style::new()
        }
    }

    /// The verdict's colour: TLS green, plaintext/offered-unused yellow, refused/failed/stripped
    /// red, incomplete and not-smtp grey.
    pub fn verdict_color(v: Verdict) -> Color {
        match v {
            Verdict::Starttls | Verdict::ImplicitTls => Color::Green,
            Verdict::Plaintext | Verdict::StarttlsOfferedUnused => Color::Yellow,
            Verdict::Stripped | Verdict::StarttlsRefused | Verdict::StarttlsFailed => Color::Red,
            Verdict::Incomplete | Verdict::NotSmtp => Color::DarkGray,
        }
    }

    /// Text style of a verdict.
    pub fn verdict(&self, v: Verdict) -> Style {
        let s = self.fg(Self::verdict_color(v));
        if !self.color && matches!(v, Verdict::Stripped | Verdict::StarttlsRefused | Verdict::StarttlsFailed) {
            s.add_modifier(Modifier::BOLD)
        } else {
            s
        }
    }

    /// A verdict chip in the header.
    pub fn chip(&self, v: Verdict) -> Style {
        if self.color {
            Style::new().fg(Color::Black).bg(Self::verdict_color(v))
        } else {
            Style::new().add_modifier(Modifier::BOLD)
        }
    }

    /// Client lines.
    pub fn client(&self) -> Style {
        self.fg(Color::Cyan)
    }

    /// Server lines.
    pub fn server(&self) -> Style {
        self.fg(Color::Magenta)
    }

    /// A reply code by class.
    pub fn code(&self, code: Option<u16>) -> Style {
        let c = match code {
            Some(200..=299) => Color::Green,
            Some(300..=399) => Color::Cyan,
            Some(400..=499) => Color::Yellow,
            Some(_) => Color::Red,
            None => Color::DarkGray,
        };
        self.fg(c).add_modifier(Modifier::BOLD)
    }

    /// Secondary text (frame numbers, hints).
    pub fn dim(&self) -> Style {
        if self.color {
            Style::new().fg(Color::DarkGray)
        } else {
            Style::new().add_modifier(Modifier::DIM)
        }
    }

    /// Headings.
    pub fn heading(&self) -> Style {
        self.fg(Color::Blue).add_modifier(Modifier::BOLD)
    }

    /// Warnings.
    pub fn warn(&self) -> Style {
        self.fg(Color::Yellow).add_modifier(Modifier::BOLD)
    }

    /// Errors.
    pub fn error(&self) -> Style {
        self.fg(Color::Red).add_modifier(Modifier::BOLD)
    }

    /// Good news (a valid filter).
    pub fn ok(&self) -> Style {
        self.fg(Color::Green)
    }

    /// The selected row.
    pub fn selected(&self) -> Style {
        if self.color {
            Style::new().bg(Color::DarkGray).add_modifier(Modifier::BOLD)
        } else {
            Style::new().add_modifier(Modifier::REVERSED)
        }
    }

    /// A style on the selected row. Grey text (incomplete, frame numbers, hints) would vanish
    /// into the selection's grey background: it turns light grey there.
    pub fn on_selection(&self, st: Style) -> Style {
        if self.color && st.fg == Some(Color::DarkGray) {
            st.fg(Color::Gray)
        } else {
            st
        }
    }

    /// A line as the selected one: the selection's background, its grey spans lightened.
    pub fn select(&self, line: Line<'static>) -> Line<'static> {
        let spans: Vec<Span<'static>> =
            line.spans.into_iter().map(|sp| Span::styled(sp.content, self.on_selection(sp.style))).collect();
        Line { spans, style: self.on_selection(line.style).patch(self.selected()), alignment: line.alignment }
    }

    /// The border of the focused pane.
    pub fn focus(&self) -> Style {
        self.fg(Color::Cyan).add_modifier(Modifier::BOLD)
    }

    /// A TLS rule line in the transcript.
    pub fn tls_rule(&self) -> Style {
        self.fg(Color::Green).add_modifier(Modifier::BOLD)
    }

    /// The key names in hints and help.
    pub fn key(&self) -> Style {
        self.fg(Color::Cyan).add_modifier(Modifier::BOLD)
    }
}
