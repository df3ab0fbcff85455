//! Process-controlled text made safe for a line of output.
//!
//! Command lines, process names, executable paths, cgroup and unit names
//! are chosen by whoever runs a process, including an unprivileged local
//! user. Printed raw, a newline in them would split one log record into
//! two (forging the second), and terminal escape sequences would repaint
//! the administrator's screen. Every text output (the text log, `top
//! --text`, report tables, the interactive view, headers of payload
//! dumps) passes such strings through [`visible`]: control characters
//! (C0, DEL, C1) and the bidirectional-text controls that reorder what a
//! terminal shows become visible escapes (`\n`, `\t`, `\r`, `\u{1b}`), so
//! a value never breaks a line, never moves the cursor and always reads
//! as what it is. JSON outputs escape by their own rules.

use std::borrow::Cow;
use std::fmt::Write as _;

/// Characters that must not reach a terminal or a line-oriented file as
/// they are: control characters and bidirectional overrides/isolates.
pub fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'
        )
}

/// How `c` is written: itself, or its escape.
pub fn push_escaped(out: &mut String, c: char) {
    match c {
        '\n' => out.push_str("\\n"),
        '\t' => out.push_str("\\t"),
        '\r' => out.push_str("\\r"),
        c if needs_escape(c) => {
            let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
        }
        c => out.push(c),
    }
}

/// `s` with every character of [`needs_escape`] escaped; borrowed when
/// there is none (the common case costs one scan).
pub fn visible(s: &str) -> Cow<'_, str> {
    if !s.chars().any(needs_escape) {
        return Cow::Borrowed(s);
    }
    let mut o = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        push_escaped(&mut o, c);
    }
    Cow::Owned(o)
}

/// [`visible`], then at most `max` characters: a longer text is cut at a
/// character that is not inside an escape and ends with `…` (so the cut
/// never leaves half an escape that reads as something else).
pub fn visible_cut(s: &str, max: usize) -> Cow<'_, str> {
    let v = visible(s);
    if v.chars().count() <= max {
        return v;
    }
    Cow::Owned(cut_pieces(s.chars().map(escaped_char), max))
}

/// One character as the text it prints as.
fn escaped_char(c: char) -> Cow<'static, str> {
    if needs_escape(c) {
        let mut o = String::new();
        push_escaped(&mut o, c);
        Cow::Owned(o)
    } else {
        let mut b = [0u8; 4];
        Cow::Owned(c.encode_utf8(&mut b).to_string())
    }
}

/// Joins whole pieces while they fit in `max - 1` characters, then `…`.
/// A piece (an escape, a character) is never split.
pub fn cut_pieces<'a>(pieces: impl Iterator<Item = Cow<'a, str>>, max: usize) -> String {
    let room = max.saturating_sub(1);
    let mut out = String::new();
    let mut n = 0;
    for p in pieces {
        let len = p.chars().count();
        if n + len > room {
            break;
        }
        n += len;
        out.push_str(&p);
    }
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_and_bidi_characters_become_visible_escapes() {
        assert!(matches!(visible("curl"), Cow::Borrowed("curl")));
        assert_eq!(visible("a\nb\tc\rd"), "a\\nb\\tc\\rd");
        assert_eq!(visible("\u{1b}[2J\u{7f}\u{9b}"), "\\u{1b}[2J\\u{7f}\\u{9b}");
        assert_eq!(visible("x\u{202e}gpj.exe"), "x\\u{202e}gpj.exe");
        assert_eq!(visible("naïve – ok"), "naïve – ok");
        let forged = "python3\n2026-01-01T00:00:00Z open  tcp/ipv4 root";
        assert!(!visible(forged).contains('\n'));
    }

    #[test]
    fn cuts_never_split_an_escape() {
        assert_eq!(visible_cut("abcdef", 6), "abcdef");
        assert_eq!(visible_cut("abcdefg", 6), "abcde…");
        // the escape would straddle the cut: it goes whole
        assert_eq!(visible_cut("abc\u{1b}xyz", 6), "abc…");
        assert_eq!(visible_cut("ab\nxyz", 6), "ab\\nx…");
        assert_eq!(visible_cut("ééééé", 3), "éé…");
    }
}
