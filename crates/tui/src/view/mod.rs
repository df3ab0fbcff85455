//! Pure rendering: [`render`] draws one [`ViewState`] into a frame. No
//! state is kept here and nothing but the frame is written.

mod detail;
mod help;
mod table;
mod theme;

use crate::state::ViewKind;
use crate::state::screen::{Body, ViewState};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Position, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Tabs};
use theme::Theme;

/// Rows the frame gives the body's table (for paging), for a terminal of
/// `height` rows.
/// `detail`: the drill-down's number of facts.
pub fn body_rows(height: u16, bar_open: bool, detail: Option<usize>) -> usize {
    let detail = detail.map_or(0, |n| n as u16 + 1 + detail::CHART);
    let chrome = 4 + if bar_open { 2 } else { 0 } + detail;
    usize::from(height.saturating_sub(chrome)).max(1)
}

/// Draw one frame (pure: what is drawn depends on `s` alone).
pub fn render(f: &mut Frame<'_>, s: &ViewState) {
    let t = Theme::new(s.color);
    let bar = if s.bar.is_some() { 2 } else { 0 };
    let [tabs, summary, body, bar_area, status] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(1),
        Constraint::Min(1),
        Constraint::Length(bar),
        Constraint::Length(1),
    ])
    .areas(f.area());
    render_tabs(f, tabs, s, &t);
    render_summary(f, summary, s, &t);
    match &s.body {
        Body::Table(tv) => table::render(f, body, tv, s.bits, &t),
        Body::Detail(d) => detail::render(f, body, d, s.bits, &t),
    }
    if let Some(b) = &s.bar {
        render_bar(f, bar_area, b, &t);
    }
    render_status(f, status, s, &t);
    if s.help {
        help::render(f, f.area(), &t);
    }
}

fn render_tabs(f: &mut Frame<'_>, area: Rect, s: &ViewState, t: &Theme) {
    let long: usize = ViewKind::ALL
        .iter()
        .map(|v| v.title().len() + 5)
        .sum::<usize>()
        + 7;
    let short = usize::from(area.width) < long;
    let titles: Vec<Line<'_>> = ViewKind::ALL
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let name = if short { v.short() } else { v.title() };
            Line::from(format!("{} {name}", i + 1))
        })
        .collect();
    let tabs = Tabs::new(titles)
        .select(s.view.index())
        .style(t.tabs)
        .highlight_style(t.tab_selected)
        .divider("│")
        .padding(" ", " ");
    let [name, rest] = Layout::horizontal([
        Constraint::Length(if short { 0 } else { 7 }),
        Constraint::Min(1),
    ])
    .areas(area);
    f.render_widget(Paragraph::new(Span::styled("netwho ", t.title)), name);
    f.render_widget(tabs, rest);
}

fn render_summary(f: &mut Frame<'_>, area: Rect, s: &ViewState, t: &Theme) {
    let line = Line::from(vec![
        Span::styled(s.clock.clone(), t.title),
        Span::raw("  "),
        Span::raw(s.summary.clone()),
    ]);
    f.render_widget(Paragraph::new(line), area);
}

fn render_bar(f: &mut Frame<'_>, area: Rect, b: &crate::state::ui::FilterBar, t: &Theme) {
    let [input, err] = Layout::vertical([Constraint::Length(1), Constraint::Length(1)]).areas(area);
    let line = Line::from(vec![
        Span::styled("filter> ", t.title),
        Span::raw(b.input.clone()),
    ]);
    f.render_widget(Paragraph::new(line), input);
    let x = input.x + 8 + u16::try_from(b.cursor).unwrap_or(u16::MAX);
    f.set_cursor_position(Position::new(
        x.min(input.right().saturating_sub(1)),
        input.y,
    ));
    let msg = match &b.error {
        Some((start, end, m)) => Line::from(vec![
            Span::raw(" ".repeat(8 + start)),
            Span::styled(format!("{} {m}", "^".repeat(end - start)), t.error),
        ]),
        None => Line::styled(
            "Enter applies, Esc cancels; e.g. proc.name = curl and fd.rport = 443",
            t.hint,
        ),
    };
    f.render_widget(Paragraph::new(msg), err);
}

fn render_status(f: &mut Frame<'_>, area: Rect, s: &ViewState, t: &Theme) {
    let line = status_line(s, t, usize::from(area.width));
    f.render_widget(Paragraph::new(line), area);
}

/// The status line in `width` columns: when it does not fit, a long
/// filter is cut first, then the least important parts go (the help hint,
/// coverage, "no filter", the degraded count) so that losses, the replay's
/// place and messages stay visible.
fn status_line<'a>(s: &'a ViewState, t: &Theme, width: usize) -> Line<'a> {
    let st = &s.status;
    // (text, style, importance: the lowest goes first)
    let mut parts: Vec<(String, ratatui::style::Style, u8)> =
        vec![(st.attribution.clone(), t.title, 9)];
    parts.push(if st.drops > 0 {
        (format!("{} LOST", st.drops), t.error, 10)
    } else {
        ("no loss".into(), ratatui::style::Style::default(), 8)
    });
    parts.push((
        match st.coverage {
            Some(c) => format!("coverage {:.1}%", c * 100.0),
            None => "coverage -".into(),
        },
        ratatui::style::Style::default(),
        2,
    ));
    if !st.degradations.is_empty() {
        parts.push((format!("{} degraded", st.degradations.len()), t.warn, 4));
    }
    parts.push(match &st.filter {
        Some(fl) => (format!("filter: {fl}"), t.warn, 6),
        None => ("no filter".into(), ratatui::style::Style::default(), 3),
    });
    if st.frozen {
        parts.push(("FROZEN".into(), t.error, 10));
    }
    if let Some(r) = &st.replay {
        parts.push((r.clone(), t.warn, 7));
    }
    if let Some(m) = &st.message {
        parts.push((m.clone(), t.hint, 7));
    }
    parts.push(("? help  q quit".into(), t.hint, 1));
    const SEP: usize = 3;
    let used = |p: &[(String, ratatui::style::Style, u8)]| -> usize {
        p.iter().map(|x| x.0.chars().count()).sum::<usize>() + SEP * p.len().saturating_sub(1)
    };
    if used(&parts) > width
        && let Some(fl) = parts.iter_mut().find(|p| p.0.starts_with("filter: "))
        && fl.0.chars().count() > 40
    {
        fl.0 = fl.0.chars().take(39).chain(['…']).collect();
    }
    while used(&parts) > width {
        let Some((i, _)) = parts
            .iter()
            .enumerate()
            .filter(|(_, p)| p.2 < 6)
            .min_by_key(|(_, p)| p.2)
        else {
            break;
        };
        parts.remove(i);
    }
    let mut spans = Vec::new();
    for (i, (text, style, _)) in parts.into_iter().enumerate() {
        if i > 0 {
            spans.push(Span::styled(" │ ", t.hint));
        }
        spans.push(Span::styled(text, style));
    }
    Line::from(spans)
}
