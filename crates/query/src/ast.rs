//! The syntax tree of a filter, with spans, and its printer. Printing and
//! parsing again gives the same tree (the property tests check it).

use crate::error::Span;
use std::fmt;

/// A comparison operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Op {
    /// `=`
    Eq,
    /// `!=`
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `contains`
    Contains,
    /// `startswith`
    StartsWith,
    /// `endswith`
    EndsWith,
    /// `in (a, b, ...)`
    In,
    /// `=~` (a regular expression)
    Regex,
}

impl Op {
    /// Every operator.
    pub const ALL: [Op; 11] = [
        Op::Eq,
        Op::Ne,
        Op::Lt,
        Op::Le,
        Op::Gt,
        Op::Ge,
        Op::Contains,
        Op::StartsWith,
        Op::EndsWith,
        Op::In,
        Op::Regex,
    ];

    /// The operator as written.
    pub fn text(self) -> &'static str {
        match self {
            Op::Eq => "=",
            Op::Ne => "!=",
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::Contains => "contains",
            Op::StartsWith => "startswith",
            Op::EndsWith => "endswith",
            Op::In => "in",
            Op::Regex => "=~",
        }
    }

    /// The operator a token spells, if any.
    pub fn from_text(s: &str) -> Option<Op> {
        Op::ALL.into_iter().find(|o| o.text() == s)
    }
}

/// A literal as written: a bare word, or a quoted string.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Lit {
    /// A bare word.
    Word(String),
    /// A quoted string (quotes and escapes removed).
    Quoted(String),
}

impl Lit {
    /// The text, unquoted.
    pub fn text(&self) -> &str {
        match self {
            Lit::Word(s) | Lit::Quoted(s) => s,
        }
    }
}

/// A value with where it was written.
#[derive(Clone, Debug)]
pub struct Value {
    /// The literal.
    pub lit: Lit,
    /// Where it was written.
    pub span: Span,
}

/// `field`, `field OP value` or `field in (v, ...)`.
#[derive(Clone, Debug)]
pub struct Test {
    /// The field's name as written.
    pub field: String,
    /// Where.
    pub field_span: Span,
    /// None: a bare boolean field (`fd.is_local`).
    pub op: Option<(Op, Span)>,
    /// The values (one, or the list of `in`).
    pub values: Vec<Value>,
}

impl Test {
    /// From the field to the last value.
    pub fn span(&self) -> Span {
        let mut s = self.field_span;
        if let Some((_, o)) = self.op {
            s = s.to(o);
        }
        if let Some(v) = self.values.last() {
            s = s.to(v.span);
        }
        s
    }
}

#[derive(Clone, Debug)]
/// A parsed filter expression, with spans.
pub enum Expr {
    /// Two or more alternatives.
    Or(Vec<Expr>),
    /// Two or more conditions.
    And(Vec<Expr>),
    /// `not` ...
    Not(Box<Expr>),
    /// One test of a field.
    Test(Test),
}

/// Structural equality, spans ignored.
impl PartialEq for Expr {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Expr::Or(a), Expr::Or(b)) | (Expr::And(a), Expr::And(b)) => a == b,
            (Expr::Not(a), Expr::Not(b)) => a == b,
            (Expr::Test(a), Expr::Test(b)) => {
                a.field == b.field
                    && a.op.map(|o| o.0) == b.op.map(|o| o.0)
                    && a.values.len() == b.values.len()
                    && a.values.iter().zip(&b.values).all(|(x, y)| x.lit == y.lit)
            }
            _ => false,
        }
    }
}

/// Words that cannot be bare values (quote them).
pub const KEYWORDS: [&str; 7] = [
    "and",
    "or",
    "not",
    "in",
    "contains",
    "startswith",
    "endswith",
];

/// Whether `w` is a keyword (any case).
pub fn is_keyword(w: &str) -> bool {
    KEYWORDS.iter().any(|k| k.eq_ignore_ascii_case(w))
}

/// A word that lexes back as the same single bare word.
pub fn is_bare_word(w: &str) -> bool {
    !w.is_empty()
        && !is_keyword(w)
        && !w.chars().any(|c| {
            c.is_whitespace() || matches!(c, '(' | ')' | ',' | '"' | '\'' | '=' | '!' | '<' | '>')
        })
}

impl fmt::Display for Lit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Lit::Word(w) if is_bare_word(w) => f.write_str(w),
            Lit::Word(s) | Lit::Quoted(s) => {
                f.write_str("\"")?;
                for c in s.chars() {
                    if c == '"' || c == '\\' {
                        f.write_str("\\")?;
                    }
                    write!(f, "{c}")?;
                }
                f.write_str("\"")
            }
        }
    }
}

impl fmt::Display for Test {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.field)?;
        match self.op {
            None => Ok(()),
            Some((Op::In, _)) => {
                f.write_str(" in (")?;
                for (i, v) in self.values.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{}", v.lit)?;
                }
                f.write_str(")")
            }
            Some((op, _)) => {
                write!(f, " {}", op.text())?;
                for v in &self.values {
                    write!(f, " {}", v.lit)?;
                }
                Ok(())
            }
        }
    }
}

impl Expr {
    /// Binding strength: or < and < not < test.
    fn level(&self) -> u8 {
        match self {
            Expr::Or(_) => 0,
            Expr::And(_) => 1,
            Expr::Not(_) => 2,
            Expr::Test(_) => 3,
        }
    }

    fn fmt_child(&self, f: &mut fmt::Formatter<'_>, parent: u8) -> fmt::Result {
        // a child as loose as its parent needs parentheses to stay a child
        if self.level() <= parent && parent < 2 || parent == 2 && self.level() < 2 {
            write!(f, "({self})")
        } else {
            write!(f, "{self}")
        }
    }
}

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expr::Or(xs) | Expr::And(xs) => {
                let sep = if matches!(self, Expr::Or(_)) {
                    " or "
                } else {
                    " and "
                };
                for (i, x) in xs.iter().enumerate() {
                    if i > 0 {
                        f.write_str(sep)?;
                    }
                    x.fmt_child(f, self.level())?;
                }
                Ok(())
            }
            Expr::Not(x) => {
                f.write_str("not ")?;
                x.fmt_child(f, 2)
            }
            Expr::Test(t) => write!(f, "{t}"),
        }
    }
}
