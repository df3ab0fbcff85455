//! Styles that read on dark and light terminals: the terminal's own
//! foreground for text, the eight basic colours for accents (terminals
//! adapt those to their background), and modifiers (bold, dim, reverse)
//! that also carry the meaning without colour (`--no-color`, NO_COLOR).

use ratatui::style::{Color, Modifier, Style};

#[derive(Clone, Copy, Debug)]
pub struct Theme {
    pub title: Style,
    pub tabs: Style,
    pub tab_selected: Style,
    pub header: Style,
    pub selected: Style,
    pub dim: Style,
    pub error: Style,
    pub warn: Style,
    pub hint: Style,
    pub sent: Style,
    pub recv: Style,
    pub label: Style,
}

impl Theme {
    pub fn new(color: bool) -> Self {
        let c = |col: Color| {
            if color {
                Style::new().fg(col)
            } else {
                Style::new()
            }
        };
        let bold = Modifier::BOLD;
        Theme {
            title: c(Color::Cyan).add_modifier(bold),
            tabs: Style::new(),
            tab_selected: c(Color::Cyan).add_modifier(bold | Modifier::REVERSED),
            header: c(Color::Cyan).add_modifier(bold | Modifier::UNDERLINED),
            selected: Style::new().add_modifier(Modifier::REVERSED),
            dim: Style::new().add_modifier(Modifier::DIM),
            error: c(Color::Red).add_modifier(bold),
            warn: c(Color::Yellow),
            hint: Style::new().add_modifier(Modifier::DIM),
            sent: c(Color::Green),
            recv: c(Color::Blue),
            label: Style::new().add_modifier(bold),
        }
    }
}
