//! A report's result as a table, and its three renderings: aligned text for
//! people (bytes in binary units), CSV and JSON for programs (exact
//! numbers).

use netwho_sink::fmt;
use serde_json::{Map, Value};
use std::fmt::Write as _;

/// What a column holds (how it is aligned and printed).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ColKind {
    /// Text, left-aligned.
    Text,
    /// A number, right-aligned.
    Count,
    /// Bytes, right-aligned, in units for people.
    Bytes,
    /// Payload bytes: a block under the row in text, a string in CSV and
    /// JSON (hex, or printable text with [`Table::printable`]).
    Data,
}

#[derive(Clone, Debug, PartialEq)]
/// One cell of a row.
pub enum Cell {
    /// Text.
    Text(String),
    /// A count or bytes.
    Num(u64),
    /// Payload bytes.
    Data(Vec<u8>),
}

#[derive(Clone, Debug, PartialEq)]
/// A report's rows, printed as text, CSV or JSON.
pub struct Table {
    /// What the table is of.
    pub title: String,
    /// Column names and kinds.
    pub columns: Vec<(&'static str, ColKind)>,
    /// The rows, a cell per column.
    pub rows: Vec<Vec<Cell>>,
    /// Lines printed under a text table (totals, notes).
    pub notes: Vec<String>,
    /// Data cells as printable text (`-A`) rather than hex.
    pub printable: bool,
}

impl Table {
    /// An empty table.
    pub fn new(title: impl Into<String>, columns: Vec<(&'static str, ColKind)>) -> Self {
        Table {
            title: title.into(),
            columns,
            rows: Vec::new(),
            notes: Vec::new(),
            printable: false,
        }
    }

    fn data_string(&self, b: &[u8]) -> String {
        if self.printable {
            printable(b)
        } else {
            netwho_auditlog::chain::hex(b)
        }
    }

    /// The data cells of a row as indented blocks: a hex dump, or the
    /// printable text line by line.
    fn data_blocks(&self, row: &[Cell], out: &mut String) {
        for (i, c) in row.iter().enumerate() {
            let (Cell::Data(b), Some((name, _))) = (c, self.columns.get(i)) else {
                continue;
            };
            if b.is_empty() {
                continue;
            }
            let _ = writeln!(
                out,
                "    {} ({}):",
                name.to_ascii_lowercase(),
                fmt::bytes(b.len() as u64)
            );
            if self.printable {
                for l in printable(b).lines() {
                    let _ = writeln!(out, "{}", format!("      {l}").trim_end());
                }
            } else {
                hex_dump(b, out);
            }
        }
    }

    fn text_cell(&self, i: usize, c: &Cell) -> String {
        match (c, self.columns.get(i).map(|c| c.1)) {
            (Cell::Num(n), Some(ColKind::Bytes)) => fmt::bytes(*n),
            (Cell::Num(n), _) => n.to_string(),
            // names and command lines are the processes' own: never raw
            (Cell::Text(s), _) => netwho_model::text::visible(s).into_owned(),
            (Cell::Data(b), _) => self.data_string(b),
        }
    }

    /// Aligned columns; the last text column is not padded; data columns
    /// as blocks under their row.
    pub fn text(&self) -> String {
        let shown: Vec<usize> = (0..self.columns.len())
            .filter(|i| self.columns[*i].1 != ColKind::Data)
            .collect();
        let cells: Vec<Vec<String>> = self
            .rows
            .iter()
            .map(|r| {
                shown
                    .iter()
                    .filter_map(|i| r.get(*i).map(|c| self.text_cell(*i, c)))
                    .collect()
            })
            .collect();
        let columns: Vec<(&str, ColKind)> = shown.iter().map(|i| self.columns[*i]).collect();
        let mut width: Vec<usize> = columns.iter().map(|c| c.0.len()).collect();
        for r in &cells {
            for (i, c) in r.iter().enumerate() {
                if let Some(w) = width.get_mut(i) {
                    *w = (*w).max(c.chars().count());
                }
            }
        }
        let last = columns.len().saturating_sub(1);
        let line = |out: &mut String, vals: &mut dyn Iterator<Item = &str>| {
            let mut l = String::new();
            for (i, v) in vals.enumerate() {
                let w = width.get(i).copied().unwrap_or(0);
                let right = columns.get(i).is_some_and(|c| c.1 != ColKind::Text);
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
            out.push_str(&netwho_model::text::visible(&self.title));
            out.push('\n');
        }
        line(&mut out, &mut columns.iter().map(|c| c.0));
        for (r, row) in cells.iter().zip(&self.rows) {
            line(&mut out, &mut r.iter().map(String::as_str));
            self.data_blocks(row, &mut out);
        }
        if self.rows.is_empty() {
            out.push_str("(no matching traffic)\n");
        }
        for n in &self.notes {
            out.push_str(&netwho_model::text::visible(n));
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
                    Cell::Data(b) => csv_field(&self.data_string(b)),
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
                        Cell::Data(b) => Value::from(self.data_string(b)),
                    };
                    m.insert(key(name), v);
                }
                Value::Object(m)
            })
            .collect()
    }
}

/// Bytes as text the way `tcpdump -A` shows them: printable ASCII, tabs
/// and line ends as they are (CR LF as one line end), anything else as '.'.
pub fn printable(b: &[u8]) -> String {
    let mut s = String::with_capacity(b.len());
    let mut it = b.iter().peekable();
    while let Some(&x) = it.next() {
        match x {
            b'\r' if it.peek() == Some(&&b'\n') => {}
            b'\n' | b'\t' | 0x20..=0x7e => s.push(char::from(x)),
            _ => s.push('.'),
        }
    }
    s
}

/// `hexdump -C` style lines, indented: offset, 16 bytes in hex, ASCII.
fn hex_dump(b: &[u8], out: &mut String) {
    for (n, chunk) in b.chunks(16).enumerate() {
        let _ = write!(out, "      {:04x} ", n * 16);
        for i in 0..16 {
            if i == 8 {
                out.push(' ');
            }
            match chunk.get(i) {
                Some(x) => {
                    let _ = write!(out, " {x:02x}");
                }
                None => out.push_str("   "),
            }
        }
        out.push_str("  ");
        for x in chunk {
            out.push(if (0x20..=0x7e).contains(x) {
                char::from(*x)
            } else {
                '.'
            });
        }
        out.push('\n');
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
    fn text_tables_escape_what_processes_named_themselves() {
        let mut t = Table::new("spy \u{1b}[2J", vec![("COMM", ColKind::Text)]);
        t.rows.push(vec![Cell::Text("a\nroot  99 GiB".into())]);
        t.notes.push("unit x\u{9b}1m".into());
        let text = t.text();
        assert_eq!(text.lines().count(), 4, "{text}");
        assert!(!text.chars().any(|c| c.is_control() && c != '\n'), "{text}");
        assert!(text.contains("a\\nroot"), "{text}");
        // machine formats keep the value as it is (they escape by their rules)
        assert_eq!(t.json_rows()[0]["comm"], "a\nroot  99 GiB");
    }

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
