//! A report's result as a table, and its three renderings: aligned text for
//! people (bytes in binary units), CSV and JSON for programs (exact
//! numbers).

use crate::fmt;
use serde_json::{Map, Value};
use std::fmt::Write as _;

/// What a column holds (how it is aligned and printed).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ColKind {
    Text,
    Count,
    Bytes,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Cell {
    Text(String),
    Num(u64),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Table {
    pub title: String,
    pub columns: Vec<(&'static str, ColKind)>,
    pub rows: Vec<Vec<Cell>>,
    /// Lines printed under a text table (totals, notes).
    pub notes: Vec<String>,
}

impl Table {
    pub fn new(title: impl Into<String>, columns: Vec<(&'static str, ColKind)>) -> Self {
        Table {
            title: title.into(),
            columns,
            rows: Vec::new(),
            notes: Vec::new(),
        }
    }

    fn text_cell(&self, i: usize, c: &Cell) -> String {
        match (c, self.columns.get(i).map(|c| c.1)) {
            (Cell::Num(n), Some(ColKind::Bytes)) => fmt::bytes(*n),
            (Cell::Num(n), _) => n.to_string(),
            (Cell::Text(s), _) => s.clone(),
        }
    }

    /// Aligned columns; the last text column is not padded.
    pub fn text(&self) -> String {
        let cells: Vec<Vec<String>> = self
            .rows
            .iter()
            .map(|r| {
                r.iter()
                    .enumerate()
                    .map(|(i, c)| self.text_cell(i, c))
                    .collect()
            })
            .collect();
        let mut width: Vec<usize> = self.columns.iter().map(|c| c.0.len()).collect();
        for r in &cells {
            for (i, c) in r.iter().enumerate() {
                if let Some(w) = width.get_mut(i) {
                    *w = (*w).max(c.chars().count());
                }
            }
        }
        let last = self.columns.len().saturating_sub(1);
        let line = |out: &mut String, vals: &mut dyn Iterator<Item = &str>| {
            let mut l = String::new();
            for (i, v) in vals.enumerate() {
                let w = width.get(i).copied().unwrap_or(0);
                let right = self.columns.get(i).is_some_and(|c| c.1 != ColKind::Text);
                if i > 0 {
                    l.push_str("  ");
                }
                if right {
                    let _ = write!(l, "{v:>w$}");
                } else if i == last {
                    l.push_str(v);
                } else {
                    let _ = write!(l, "{v:<w$}");
                }
            }
            out.push_str(l.trim_end());
            out.push('\n');
        };
        let mut out = String::new();
        if !self.title.is_empty() {
            out.push_str(&self.title);
            out.push('\n');
        }
        line(&mut out, &mut self.columns.iter().map(|c| c.0));
        for r in &cells {
            line(&mut out, &mut r.iter().map(String::as_str));
        }
        if self.rows.is_empty() {
            out.push_str("(no matching traffic)\n");
        }
        for n in &self.notes {
            out.push_str(n);
            out.push('\n');
        }
        out
    }

    /// RFC 4180 CSV with a header line; numbers exact.
    pub fn csv(&self) -> String {
        let mut out = String::new();
        let names: Vec<String> = self.columns.iter().map(|c| csv_field(&key(c.0))).collect();
        out.push_str(&names.join(","));
        out.push('\n');
        for r in &self.rows {
            let vals: Vec<String> = r
                .iter()
                .map(|c| match c {
                    Cell::Num(n) => n.to_string(),
                    Cell::Text(s) => csv_field(s),
                })
                .collect();
            out.push_str(&vals.join(","));
            out.push('\n');
        }
        out
    }

    /// One JSON object per row, keyed by lower-case column names.
    pub fn json_rows(&self) -> Vec<Value> {
        self.rows
            .iter()
            .map(|r| {
                let mut m = Map::new();
                for (i, c) in r.iter().enumerate() {
                    let Some((name, _)) = self.columns.get(i) else {
                        continue;
                    };
                    let v = match c {
                        Cell::Num(n) => Value::from(*n),
                        Cell::Text(s) => Value::from(s.as_str()),
                    };
                    m.insert(key(name), v);
                }
                Value::Object(m)
            })
            .collect()
    }
}

/// A column name as a JSON/CSV key: `SENT` → `sent`, `PEER PORTS` →
/// `peer_ports`.
fn key(name: &str) -> String {
    name.to_ascii_lowercase().replace([' ', '-'], "_")
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_text_csv_and_json() {
        let mut t = Table::new(
            "Top",
            vec![
                ("PID", ColKind::Count),
                ("SENT", ColKind::Bytes),
                ("COMM", ColKind::Text),
            ],
        );
        t.rows.push(vec![
            Cell::Num(42),
            Cell::Num(2048),
            Cell::Text("a,\"b\"".into()),
        ]);
        t.rows
            .push(vec![Cell::Num(7), Cell::Num(5), Cell::Text("x".into())]);
        assert_eq!(
            t.text(),
            "Top\nPID     SENT  COMM\n 42  2.0 KiB  a,\"b\"\n  7      5 B  x\n"
        );
        assert_eq!(t.csv(), "pid,sent,comm\n42,2048,\"a,\"\"b\"\"\"\n7,5,x\n");
        assert_eq!(
            serde_json::to_string(&t.json_rows()[1]).unwrap(),
            r#"{"pid":7,"sent":5,"comm":"x"}"#
        );
    }
}
