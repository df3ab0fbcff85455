//! Numbers for people.

use netwho_model::text;
use std::borrow::Cow;

/// `n` with its noun, singular or plural: "1 flow", "2 flows", "0 flows".
pub fn count(n: impl Into<u64>, one: &str, many: &str) -> String {
    let n = n.into();
    format!("{n} {}", if n == 1 { one } else { many })
}

/// Bytes in binary units: `512 B`, `1.5 KiB`, `3.0 GiB`.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut v = n as f64;
    let mut i = 0;
    while v >= 1024.0 && i + 1 < UNITS.len() {
        v /= 1024.0;
        i += 1;
    }
    format!("{v:.1} {}", UNITS[i])
}

/// A rate in bytes per second, or bits per second if `bits`.
pub fn rate(bytes_per_s: f64, bits: bool) -> String {
    if bits {
        let mut v = bytes_per_s * 8.0;
        for unit in ["bit/s", "kbit/s", "Mbit/s", "Gbit/s"] {
            if v < 1000.0 {
                return if unit == "bit/s" {
                    format!("{v:.0} {unit}")
                } else {
                    format!("{v:.1} {unit}")
                };
            }
            v /= 1000.0;
        }
        return format!("{v:.1} Tbit/s");
    }
    format!("{}/s", bytes(bytes_per_s.max(0.0).round() as u64))
}

/// A process-controlled text in a column of `width` characters: control
/// characters escaped, cut (never inside an escape) and padded on the
/// right.
pub fn column(s: &str, width: usize) -> String {
    let v = text::visible_cut(s, width);
    let pad = width.saturating_sub(v.chars().count());
    format!("{v}{}", " ".repeat(pad))
}

/// A command line for one line of text: arguments joined by spaces,
/// those with spaces, quotes or control characters quoted (control
/// characters escaped, so a record never spans two lines), the whole cut
/// at `max` characters, never inside an escape.
pub fn cmdline(args: &[String], max: usize) -> String {
    let mut pieces: Vec<Cow<'_, str>> = Vec::new();
    for (i, a) in args.iter().enumerate() {
        if i > 0 {
            pieces.push(Cow::Borrowed(" "));
        }
        let quote = a.is_empty()
            || a.chars()
                .any(|c| c == ' ' || c == '"' || c == '\'' || text::needs_escape(c));
        if !quote {
            pieces.push(Cow::Borrowed(a));
            continue;
        }
        pieces.push(Cow::Borrowed("\""));
        for c in a.chars() {
            let mut p = String::new();
            match c {
                '"' => p.push_str("\\\""),
                '\\' => p.push_str("\\\\"),
                c => text::push_escaped(&mut p, c),
            }
            pieces.push(Cow::Owned(p));
        }
        pieces.push(Cow::Borrowed("\""));
    }
    let len: usize = pieces.iter().map(|p| p.chars().count()).sum();
    if len <= max {
        return pieces.concat();
    }
    // an argument that fits stays whole: cut at word pieces, not escapes
    text::cut_pieces(pieces.into_iter().flat_map(split_plain), max)
}

/// A plain piece as its characters (so a cut may fall inside a word), an
/// escape or quote as it is.
fn split_plain(p: Cow<'_, str>) -> Vec<Cow<'_, str>> {
    if p.starts_with('\\') {
        return vec![p];
    }
    p.chars().map(|c| Cow::Owned(c.to_string())).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_thing_is_singular() {
        assert_eq!(count(1u64, "flow", "flows"), "1 flow");
        assert_eq!(count(0u64, "flow", "flows"), "0 flows");
        assert_eq!(count(2u32, "process", "processes"), "2 processes");
    }

    #[test]
    fn units() {
        assert_eq!(bytes(0), "0 B");
        assert_eq!(bytes(1023), "1023 B");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(3 << 30), "3.0 GiB");
        assert_eq!(rate(2048.0, false), "2.0 KiB/s");
        assert_eq!(rate(125.0, true), "1.0 kbit/s");
        assert_eq!(rate(10.0, true), "80 bit/s");
        assert_eq!(rate(1.25e8, true), "1.0 Gbit/s");
    }

    #[test]
    fn command_lines() {
        let a = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(cmdline(&a(&["curl", "-s", "a b"]), 80), "curl -s \"a b\"");
        assert_eq!(cmdline(&a(&["x", ""]), 80), "x \"\"");
        assert_eq!(cmdline(&a(&["abcdefgh"]), 5), "abcd…");
        // a record is one line, whatever the arguments hold
        let multi = cmdline(
            &a(&["python3", "-c", "import os\nprint(\"x\")\t\u{1b}"]),
            200,
        );
        assert_eq!(
            multi,
            "python3 -c \"import os\\nprint(\\\"x\\\")\\t\\u{1b}\""
        );
        assert!(!multi.contains('\n'));
        // a cut never leaves half an escape
        let cut = cmdline(&a(&["sh", "-c", "ab\u{1b}[2Jcd"]), 12);
        assert_eq!(cut, "sh -c \"ab…");
        assert_eq!(
            cmdline(&a(&["sh", "-c", "ab\u{1b}[2Jcd"]), 16),
            "sh -c \"ab\\u{1b}…"
        );
    }
}
