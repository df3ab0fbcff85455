//! The help overlay (`?`).

use super::theme::Theme;
use ratatui::Frame;
use ratatui::layout::{Constraint, Flex, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Wrap};

/// Keys and what they do, as the overlay lists them.
pub const KEYS: &[(&str, &str)] = &[
    (
        "1-7, Tab",
        "the views, processes … ports (Shift-Tab goes back)",
    ),
    ("↑↓ j k, PgUp PgDn", "move; Home/End: first/last row"),
    ("Enter", "drill down (Esc or Backspace goes back)"),
    (
        "< >",
        "sort by the previous/next column (rate, total, then each column)",
    ),
    ("r", "reverse the sort order"),
    ("/ \\", "filter (the filter language); clear the filter"),
    ("space", "freeze the display (a replay: pause)"),
    ("z", "reset: SENT(R), RECV(R) count from now"),
    ("b", "rates in bit/s or B/s"),
    ("+ - [ ]", "a replay: faster, slower, 10 s back, 10 s on"),
    ("{ }", "a replay: 60 s back, 60 s on"),
    ("?", "this help; any key closes it"),
    ("q, Ctrl-C", "quit"),
];

pub fn render(f: &mut Frame<'_>, area: Rect, t: &Theme) {
    let w = area.width.min(86);
    let h = (KEYS.len() as u16 + 5).min(area.height);
    let [row] = Layout::vertical([Constraint::Length(h)])
        .flex(Flex::Center)
        .areas(area);
    let [rect] = Layout::horizontal([Constraint::Length(w)])
        .flex(Flex::Center)
        .areas(row);
    let mut lines: Vec<Line<'_>> = KEYS
        .iter()
        .map(|(k, what)| {
            Line::from(vec![
                Span::styled(format!("{k:>18}  "), t.label),
                Span::raw(*what),
            ])
        })
        .collect();
    lines.push(Line::styled(
        "dimmed rows: no open flow (exited processes, closed connections)",
        t.hint,
    ));
    lines.push(Line::styled(
        "NAME: what processes resolved, else TLS server name; ~: reverse DNS (-n)",
        t.hint,
    ));
    f.render_widget(Clear, rect);
    f.render_widget(
        Paragraph::new(lines).wrap(Wrap { trim: false }).block(
            Block::default()
                .borders(Borders::ALL)
                .title(" netwho keys "),
        ),
        rect,
    );
}

#[cfg(test)]
mod tests {
    use super::KEYS;

    /// Every key the view acts on is in the help.
    #[test]
    fn every_key_is_listed() {
        let listed: String = KEYS.iter().map(|(k, _)| *k).collect::<Vec<_>>().join(" ");
        for key in [
            "<", ">", "r", "/", "\\", "z", "b", "+", "-", "[", "]", "{", "}", "?", "q",
        ] {
            assert!(
                listed.split([' ', ',']).any(|w| w == key),
                "{key} is not in the help: {listed}"
            );
        }
    }
}
