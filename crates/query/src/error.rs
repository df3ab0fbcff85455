//! Filter errors: what is wrong, and where (a byte span of the source).

use std::fmt;
use thiserror::Error;

/// A byte range of the filter source.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Span {
    /// First byte.
    pub start: usize,
    /// One past the last byte.
    pub end: usize,
}

impl Span {
    /// The range `start..end`.
    pub fn new(start: usize, end: usize) -> Self {
        Span { start, end }
    }

    /// From the start of the one to the end of the other.
    pub fn to(self, other: Span) -> Span {
        Span::new(self.start.min(other.start), self.end.max(other.end))
    }
}

/// A filter that cannot be parsed or does not make sense.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
#[error("{message}")]
pub struct FilterError {
    /// Where the problem is.
    pub span: Span,
    /// What is wrong, in a sentence.
    pub message: String,
}

impl FilterError {
    /// An error at `span`.
    pub fn new(span: Span, message: impl Into<String>) -> Self {
        FilterError {
            span,
            message: message.into(),
        }
    }

    /// The message, the expression, and a caret line under the offending
    /// part (columns counted in characters, so non-ASCII text lines up):
    ///
    /// ```text
    /// bad filter at column 13: expected a value after '='
    ///   proc.name =
    ///               ^
    /// ```
    pub fn render(&self, src: &str) -> String {
        self.render_as(src, "filter")
    }

    /// `render` for other small languages with the same errors (a log
    /// `--format` template, a `--format-ts` timestamp format): "bad WHAT".
    pub fn render_as(&self, src: &str, what: &str) -> String {
        Rendered {
            err: self,
            src,
            what,
        }
        .to_string()
    }
}

struct Rendered<'a> {
    err: &'a FilterError,
    src: &'a str,
    what: &'a str,
}

impl fmt::Display for Rendered<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let src = self.src;
        let start = self.err.span.start.min(src.len());
        let end = self.err.span.end.clamp(start, src.len());
        let col = |b: usize| src.get(..b).map_or(b, |s| s.chars().count());
        let (c0, c1) = (col(start), col(end));
        // tabs and newlines would shift the caret: show them as spaces
        let line: String = src
            .chars()
            .map(|c| if c.is_whitespace() { ' ' } else { c })
            .collect();
        writeln!(
            f,
            "bad {} at column {}: {}",
            self.what,
            c0 + 1,
            self.err.message
        )?;
        writeln!(f, "  {line}")?;
        write!(f, "  {}{}", " ".repeat(c0), "^".repeat((c1 - c0).max(1)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caret_sits_under_the_span() {
        let e = FilterError::new(Span::new(12, 12), "expected a value after '='");
        assert_eq!(
            e.render("proc.name = "),
            "bad filter at column 13: expected a value after '='\n  proc.name = \n              ^"
        );
        // é is two bytes but one column
        let e = FilterError::new(Span::new(7, 12), "unknown field");
        assert_eq!(
            e.render("é and prc.x = 1"),
            "bad filter at column 7: unknown field\n  é and prc.x = 1\n        ^^^^^"
        );
    }
}
