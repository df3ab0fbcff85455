//! A drill-down: the row's facts, a chart of sent and received bytes per
//! second over the last ten minutes, and its connections.

use super::theme::Theme;
use crate::state::screen::DetailView;
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::symbols::Marker;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Axis, Block, Borders, Chart, Dataset, GraphType, Paragraph};

/// Rows of the chart.
pub const CHART: u16 = 8;

pub fn render(f: &mut Frame<'_>, area: Rect, d: &DetailView, bits: bool, t: &Theme) {
    let facts = d.facts.len() as u16 + 1;
    let [head, chart, flows] = Layout::vertical([
        Constraint::Length(facts),
        Constraint::Length(CHART),
        Constraint::Min(2),
    ])
    .areas(area);
    let title_style = if d.dim { t.title.patch(t.dim) } else { t.title };
    let mut lines = vec![Line::from(vec![
        Span::styled(
            netwho_model::text::visible(&d.title).into_owned(),
            title_style,
        ),
        Span::styled(
            if d.dim {
                "  (no open flow)  Esc: back"
            } else {
                "  Esc: back"
            },
            t.hint,
        ),
    ])];
    lines.extend(d.facts.iter().map(|(k, v)| {
        Line::from(vec![
            Span::styled(format!("{k:>11}  "), t.label),
            Span::raw(netwho_model::text::visible(v).into_owned()),
        ])
    }));
    f.render_widget(Paragraph::new(lines), head);
    render_chart(f, chart, d, bits, t);
    super::table::render(f, flows, &d.flows, bits, t);
}

fn render_chart(f: &mut Frame<'_>, area: Rect, d: &DetailView, bits: bool, t: &Theme) {
    let n = d.chart.len();
    let slot = d.slot_s.max(1) as f64;
    let per_s = |b: u64| b as f64 / slot;
    let series = |i: usize| -> Vec<(f64, f64)> {
        d.chart
            .iter()
            .enumerate()
            .map(|(x, s)| ((x as f64 - (n as f64 - 1.0)) * slot, per_s(s[i])))
            .collect()
    };
    let (sent, recv) = (series(0), series(1));
    let max = sent
        .iter()
        .chain(&recv)
        .map(|p| p.1)
        .fold(0.0_f64, f64::max)
        .max(1.0);
    let span = (n.saturating_sub(1)) as f64 * slot;
    let chart = Chart::new(vec![
        Dataset::default()
            .name("sent")
            .marker(Marker::Braille)
            .graph_type(GraphType::Line)
            .style(t.sent)
            .data(&sent),
        Dataset::default()
            .name("recv")
            .marker(Marker::Braille)
            .graph_type(GraphType::Line)
            .style(t.recv)
            .data(&recv),
    ])
    .block(Block::default().borders(Borders::TOP).title(format!(
        " per second, the last {} min ({} s steps) ",
        (span / 60.0).round(),
        d.slot_s
    )))
    .x_axis(
        Axis::default()
            .bounds([-span, 0.0])
            .labels([format!("-{}m", (span / 60.0).round()), "now".to_string()]),
    )
    .y_axis(
        Axis::default()
            .bounds([0.0, max])
            .labels(["0".to_string(), crate::fmt::rate(max, bits)]),
    );
    f.render_widget(chart, area);
}
