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
    /// A command line ([`Cell::Args`]): cut to [`CMDLINE_TEXT`] characters
    /// in text tables, whole in CSV (one escaped string) and JSON (an
    /// array of the arguments).
    Args,
    /// A duration ([`Cell::Secs`]): `3.000s` or `open` in text; seconds as
    /// a number in CSV (empty while open) and JSON (`null` while open),
    /// under the column's key with `_s` appended.
    Secs,
    /// Distinct values ([`Cell::List`]): the first [`LIST_TEXT`] and `...`
    /// in text; all that were kept in CSV (comma-separated) and JSON (an
    /// array).
    List,
    /// A count of distinct values ([`Cell::Many`]), right-aligned.
    Many,
    /// A picture for people: in text tables only, never in CSV or JSON.
    Chart,
    /// An identifier for programs (a Community ID): in CSV and JSON only
    /// (`null` when empty), never in text tables.
    Id,
}

/// Characters of a command line a text table shows.
pub const CMDLINE_TEXT: usize = 60;
/// Values of a list a text table shows.
pub const LIST_TEXT: usize = 5;

#[derive(Clone, Debug, PartialEq)]
/// One cell of a row.
pub enum Cell {
    /// Text.
    Text(String),
    /// A count or bytes.
    Num(u64),
    /// Payload bytes.
    Data(Vec<u8>),
    /// A command line, argument by argument.
    Args(Vec<String>),
    /// A duration in nanoseconds; None: still open.
    Secs(Option<u64>),
    /// Distinct values, and whether more were seen than were kept (a
    /// report keeps at most 1000 per row: its memory is bounded by its
    /// rows, not by the data).
    List(Vec<String>, bool),
    /// How many distinct values, and whether there were more than were
    /// counted.
    Many(u64, bool),
}

impl Cell {
    /// A CSV field.
    fn csv(&self, t: &Table) -> String {
        match self {
            Cell::Num(n) => n.to_string(),
            Cell::Text(s) => csv_field(s),
            Cell::Data(b) => csv_field(&t.data_string(b)),
            Cell::Args(a) => csv_field(&fmt::cmdline(a, usize::MAX)),
            Cell::Secs(ns) => ns.map(secs).unwrap_or_default(),
            Cell::List(items, more) => {
                let mut v = items.join(",");
                if *more {
                    v.push_str(",...");
                }
                csv_field(&v)
            }
            Cell::Many(n, more) => format!("{n}{}", if *more { "+" } else { "" }),
        }
    }

    /// A JSON value.
    fn json(&self, t: &Table) -> Value {
        match self {
            Cell::Num(n) => Value::from(*n),
            Cell::Text(s) => Value::from(s.as_str()),
            Cell::Data(b) => Value::from(t.data_string(b)),
            Cell::Args(a) => Value::from(a.clone()),
            Cell::Secs(ns) => ns.map_or(Value::Null, |ns| Value::from(ns as f64 / 1e9)),
            Cell::List(items, _) => Value::from(items.clone()),
            Cell::Many(n, _) => Value::from(*n),
        }
    }

    /// Whether it holds less than the data had (a bounded list).
    fn more(&self) -> bool {
        matches!(self, Cell::List(_, true) | Cell::Many(_, true))
    }
}

/// Nanoseconds as exact decimal seconds: `0.004217`, `3`.
fn secs(ns: u64) -> String {
    let frac = format!("{:09}", ns % 1_000_000_000);
    let frac = frac.trim_end_matches('0');
    if frac.is_empty() {
        (ns / 1_000_000_000).to_string()
    } else {
        format!("{}.{frac}", ns / 1_000_000_000)
    }
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

    pub(crate) fn text_cell(&self, i: usize, c: &Cell) -> String {
        match (c, self.columns.get(i).map(|c| c.1)) {
            (Cell::Num(n), Some(ColKind::Bytes)) => fmt::bytes(*n),
            (Cell::Num(n), _) => n.to_string(),
            // names and command lines are the processes' own: never raw
            (Cell::Text(s), _) => netwho_model::text::visible(s).into_owned(),
            (Cell::Data(b), _) => self.data_string(b),
            (Cell::Args(a), _) => fmt::cmdline(a, CMDLINE_TEXT),
            (Cell::Secs(Some(ns)), _) => format!("{:.3}s", *ns as f64 / 1e9),
            (Cell::Secs(None), _) => "open".into(),
            (Cell::List(items, more), _) => {
                let mut v: Vec<String> = items
                    .iter()
                    .take(LIST_TEXT)
                    .map(|s| netwho_model::text::visible(s).into_owned())
                    .collect();
                if items.len() > LIST_TEXT || *more {
                    v.push("...".into());
                }
                v.join(",")
            }
            (Cell::Many(n, more), _) => format!("{n}{}", if *more { "+" } else { "" }),
        }
    }

    /// The columns CSV and JSON carry (not the charts).
    fn machine_columns(&self) -> impl Iterator<Item = (usize, &(&'static str, ColKind))> {
        self.columns
            .iter()
            .enumerate()
            .filter(|(_, c)| c.1 != ColKind::Chart)
    }

    /// Aligned columns; the last text column is not padded; data columns
    /// as blocks under their row.
    pub fn text(&self) -> String {
        let shown: Vec<usize> = (0..self.columns.len())
            .filter(|i| !matches!(self.columns[*i].1, ColKind::Data | ColKind::Id))
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
                let right = columns.get(i).is_some_and(|c| {
                    matches!(
                        c.1,
                        ColKind::Count | ColKind::Bytes | ColKind::Secs | ColKind::Many
                    )
                });
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

    /// RFC 4180 CSV with a header line; numbers exact, values whole,
    /// durations in seconds, no charts.
    pub fn csv(&self) -> String {
        let mut out = String::new();
        let names: Vec<String> = self
            .machine_columns()
            .map(|(_, c)| csv_field(&machine_key(c)))
            .collect();
        out.push_str(&names.join(","));
        out.push('\n');
        for r in &self.rows {
            let vals: Vec<String> = self
                .machine_columns()
                .filter_map(|(i, _)| r.get(i).map(|c| c.csv(self)))
                .collect();
            out.push_str(&vals.join(","));
            out.push('\n');
        }
        out
    }

    /// One JSON object per row, keyed by lower-case column names (a
    /// duration's with `_s`); values whole, command lines and lists as
    /// arrays; `KEY_more: true` where a list or count was bounded.
    pub fn json_rows(&self) -> Vec<Value> {
        self.rows
            .iter()
            .map(|r| {
                let mut m = Map::new();
                for (i, c) in self.machine_columns() {
                    let Some(cell) = r.get(i) else {
                        continue;
                    };
                    let k = machine_key(c);
                    if cell.more() {
                        m.insert(format!("{k}_more"), Value::Bool(true));
                    }
                    let v = match cell {
                        Cell::Text(s) if c.1 == ColKind::Id && s.is_empty() => Value::Null,
                        _ => cell.json(self),
                    };
                    m.insert(k, v);
                }
                Value::Object(m)
            })
            .collect()
    }
}

/// A column's CSV/JSON key.
fn machine_key(c: &(&str, ColKind)) -> String {
    match c.1 {
        ColKind::Secs => format!("{}_s", key(c.0)),
        _ => key(c.0),
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

    /// Only text tables are cut, for people: CSV and JSON carry every
    /// argument and every kept value, durations as numbers, no charts.
    #[test]
    fn machine_readable_output_is_whole() {
        let mut t = Table::new(
            "",
            vec![
                ("CMDLINE", ColKind::Args),
                ("DURATION", ColKind::Secs),
                ("PROCS", ColKind::List),
                ("PEERS", ColKind::Many),
                ("CHART", ColKind::Chart),
            ],
        );
        let long = "x".repeat(58);
        let args = vec![
            "python3".to_string(),
            format!("{long}\u{1b}end"),
            "-m".into(),
        ];
        let procs: Vec<String> = (0..7).map(|i| format!("p{i}")).collect();
        t.rows.push(vec![
            Cell::Args(args.clone()),
            Cell::Secs(Some(4_217_000)),
            Cell::List(procs.clone(), false),
            Cell::Many(1000, true),
            Cell::Text(">>>|<<".into()),
        ]);
        t.rows.push(vec![
            Cell::Args(vec!["a".into()]),
            Cell::Secs(None),
            Cell::List(vec!["q".into()], true),
            Cell::Many(2, false),
            Cell::Text("|".into()),
        ]);
        let text = t.text();
        let first = text.lines().nth(1).unwrap();
        // cut for people at 60 characters, never inside an escape
        assert!(first.contains("…") && !first.contains("\\u{1b"), "{text}");
        assert!(first.contains("0.004s") && first.contains("p0,p1,p2,p3,p4,..."));
        assert!(
            first.contains("1000+") && first.contains(">>>|<<"),
            "{text}"
        );
        let csv = t.csv();
        assert!(csv.starts_with("cmdline,duration_s,procs,peers\n"), "{csv}");
        assert!(csv.contains(&long) && csv.contains(",0.004217,"), "{csv}");
        assert!(csv.contains("\"p0,p1,p2,p3,p4,p5,p6\",1000+"), "{csv}");
        assert!(csv.ends_with("a,,\"q,...\",2\n"), "{csv}");
        let rows = t.json_rows();
        assert_eq!(rows[0]["cmdline"], serde_json::json!(args));
        assert_eq!(rows[0]["duration_s"], 0.004217);
        assert_eq!(rows[0]["procs"], serde_json::json!(procs));
        assert_eq!(
            (rows[0]["peers"].as_u64(), rows[0]["peers_more"].as_bool()),
            (Some(1000), Some(true))
        );
        assert!(rows[0].get("chart").is_none());
        assert!(rows[1]["duration_s"].is_null() && rows[1]["procs_more"] == true);
        assert!(rows[1].get("peers_more").is_none());
    }
}
