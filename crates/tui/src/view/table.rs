//! A table view: columns fitted to the width, cells formatted, the
//! selected row reversed, idle rows dimmed, the sort column marked.

use super::theme::Theme;
use crate::state::hist::sparkline;
use crate::state::screen::{Cell, ColKind, Column, TableView};
use crate::state::ui::SortKey;
use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Text};
use ratatui::widgets::{Row, Table, TableState};

/// The columns that fit in `width` (dropped by their drop order, highest
/// first) and their widths (flexible ones share what is left).
pub fn fit(cols: &[Column], width: u16) -> Vec<(usize, u16)> {
    let mut keep: Vec<usize> = (0..cols.len()).collect();
    let need = |k: &[usize]| -> u16 {
        k.iter()
            .map(|&i| cols[i].min + 1)
            .sum::<u16>()
            .saturating_sub(1)
    };
    while need(&keep) > width && keep.len() > 1 {
        let Some((pos, _)) = keep
            .iter()
            .enumerate()
            .max_by_key(|(p, i)| (cols[**i].drop_order, *p))
        else {
            break;
        };
        if cols[keep[pos]].drop_order == 0 {
            break;
        }
        keep.remove(pos);
    }
    let mut widths: Vec<(usize, u16)> = keep.iter().map(|&i| (i, cols[i].min)).collect();
    let mut left = width.saturating_sub(need(&keep));
    // grow flexible columns in turn, one cell at a time, up to their max
    while left > 0 {
        let mut grew = false;
        for (i, w) in widths.iter_mut() {
            if left > 0 && *w < cols[*i].max {
                *w += 1;
                left -= 1;
                grew = true;
            }
        }
        if !grew {
            break;
        }
    }
    widths
}

/// One cell as text of `width` columns.
pub fn text(c: &Cell, width: u16, bits: bool) -> String {
    match c {
        // names and command lines are the processes' own: never raw
        Cell::Text(s) => netwho_model::text::visible(s).into_owned(),
        Cell::Num(n) => n.to_string(),
        Cell::Bytes(n) => crate::fmt::bytes(*n),
        Cell::Rate(r) => crate::fmt::rate(*r, bits),
        Cell::Pct(p) => p.map_or_else(|| "-".into(), |p| format!("{p:.1}")),
        Cell::Age(s) => crate::fmt::age(*s),
        Cell::Spark(v) => {
            let n = usize::from(width).min(v.len());
            sparkline(&v[v.len() - n..])
        }
    }
}

fn sorted_by(sort: SortKey, kind: ColKind) -> bool {
    match sort {
        SortKey::Rate => matches!(kind, ColKind::SentRate | ColKind::RecvRate),
        SortKey::Total => matches!(kind, ColKind::Sent | ColKind::Recv),
        SortKey::Col(k) => k == kind,
    }
}

pub fn render(f: &mut Frame<'_>, area: Rect, tv: &TableView, bits: bool, t: &Theme) {
    let fitted = fit(&tv.columns, area.width);
    let mark = if tv.reverse { "▲" } else { "▼" };
    let header = Row::new(fitted.iter().map(|&(i, w)| {
        let c = &tv.columns[i];
        let title = if sorted_by(tv.sort, c.kind) {
            format!("{}{mark}", c.title)
        } else {
            c.title.to_string()
        };
        align(title, w, c.right)
    }))
    .style(t.header);
    let rows = tv.rows.iter().map(|r| {
        let cells = fitted.iter().map(|&(i, w)| {
            let c = &tv.columns[i];
            let s = text(&r.cells[i], w, bits);
            let style = match c.kind {
                ColKind::SentRate | ColKind::Sent | ColKind::SentReset => t.sent,
                ColKind::RecvRate | ColKind::Recv | ColKind::RecvReset => t.recv,
                _ => Style::new(),
            };
            Text::from(Line::styled(align(s, w, c.right), style))
        });
        let row = Row::new(cells);
        if r.dim { row.style(t.dim) } else { row }
    });
    let widths: Vec<Constraint> = fitted.iter().map(|&(_, w)| Constraint::Length(w)).collect();
    let table = Table::new(rows, widths)
        .header(header)
        .column_spacing(1)
        .row_highlight_style(t.selected);
    // only the rows shown were formatted: the window starts at 0
    let mut state = TableState::default().with_selected(tv.selected.map(|s| s - tv.offset));
    if tv.rows.is_empty() {
        f.render_widget(table, area);
        let msg = ratatui::widgets::Paragraph::new(Line::styled(
            "  nothing yet: rows appear when processes send or receive",
            t.hint,
        ));
        if area.height > 1 {
            f.render_widget(
                msg,
                Rect {
                    y: area.y + 1,
                    height: 1,
                    ..area
                },
            );
        }
    } else {
        f.render_stateful_widget(table, area, &mut state);
    }
}

/// Pad or cut to `w` characters (cut text ends with `…`).
pub fn align(s: String, w: u16, right: bool) -> String {
    let w = usize::from(w);
    let n = s.chars().count();
    if n > w {
        let mut cut: String = s.chars().take(w.saturating_sub(1)).collect();
        cut.push('…');
        return cut;
    }
    if right { format!("{s:>w$}") } else { s }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::ViewKind;
    use crate::state::screen::columns;

    #[test]
    fn narrow_terminals_drop_columns_by_their_order_and_wide_ones_grow_names() {
        let cols = columns(ViewKind::Processes, false);
        let titles =
            |w| -> Vec<&str> { fit(&cols, w).iter().map(|(i, _)| cols[*i].title).collect() };
        assert_eq!(
            titles(80),
            [
                "PID", "USER", "PROCESS", "SENT/s", "RECV/s", "SENT", "RECV", "HISTORY"
            ]
        );
        let wide = fit(&cols, 200);
        assert_eq!(wide.len(), cols.len(), "everything fits in 200 columns");
        let used: u16 = wide.iter().map(|(_, w)| w + 1).sum::<u16>() - 1;
        assert_eq!(used, 200, "the flexible columns take the rest");
        // never narrower than the columns that cannot go
        assert_eq!(titles(20), ["PID", "PROCESS", "SENT/s", "RECV/s"]);
    }
}
