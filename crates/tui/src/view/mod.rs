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
    let st = &s.status;
    let mut parts: Vec<Span<'_>> = vec![Span::styled(st.attribution.clone(), t.title)];
    let sep = || Span::styled(" │ ", t.hint);
    parts.push(sep());
    parts.push(if st.drops > 0 {
        Span::styled(format!("{} LOST", st.drops), t.error)
    } else {
        Span::raw("no loss")
    });
    parts.push(sep());
    parts.push(Span::raw(match st.coverage {
        Some(c) => format!("coverage {:.1}%", c * 100.0),
        None => "coverage -".into(),
    }));
    if !st.degradations.is_empty() {
        parts.push(sep());
        parts.push(Span::styled(
            format!("{} degraded", st.degradations.len()),
            t.warn,
        ));
    }
    parts.push(sep());
    parts.push(match &st.filter {
        Some(fl) => Span::styled(format!("filter: {fl}"), t.warn),
        None => Span::raw("no filter"),
    });
    if st.frozen {
        parts.push(sep());
        parts.push(Span::styled("FROZEN", t.error));
    }
    if let Some(r) = &st.replay {
        parts.push(sep());
        parts.push(Span::styled(r.clone(), t.warn));
    }
    if let Some(m) = &st.message {
        parts.push(sep());
        parts.push(Span::styled(m.clone(), t.hint));
    }
    parts.push(sep());
    parts.push(Span::styled("? help  q quit", t.hint));
    f.render_widget(Paragraph::new(Line::from(parts)), area);
}
