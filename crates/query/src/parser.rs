//! Recursive descent: `or` of `and`s of `not`s of tests and parentheses.
//!
//! ```text
//! expr    := and ("or" and)*
//! and     := unary ("and" unary)*
//! unary   := "not" unary | "(" expr ")" | test
//! test    := FIELD [OP value | "in" "(" value ("," value)* ")"]
//! ```

use crate::ast::{Expr, Lit, Op, Test, Value, is_keyword};
use crate::error::{FilterError, Span};
use crate::lexer::{Tok, Token, lex};

const OPERATORS: &str = "=, !=, <, <=, >, >=, contains, startswith, endswith, in (...) or =~";

/// The longest filter accepted, in bytes. Filters come from users of the
/// API and from configuration files: their cost must be bounded.
pub const MAX_LEN: usize = 16 * 1024;

/// How deeply parentheses and `not` may nest. Parsing, checking, printing,
/// evaluating and dropping a filter recurse once per level, so this bounds
/// the stack every one of them uses (`and`/`or` chains are flat lists).
pub const MAX_DEPTH: usize = 64;

/// Parse a filter expression into its syntax tree.
pub fn parse(src: &str) -> Result<Expr, FilterError> {
    if src.len() > MAX_LEN {
        let mut cut = MAX_LEN;
        while !src.is_char_boundary(cut) {
            cut -= 1;
        }
        return Err(FilterError::new(
            Span::new(cut, src.len()),
            format!(
                "the filter is {} bytes long; at most {MAX_LEN} are accepted (use 'in (...)' lists or a regex to shorten it)",
                src.len()
            ),
        ));
    }
    let toks = lex(src)?;
    if toks.is_empty() {
        return Err(FilterError::new(
            Span::new(0, src.len()),
            "the filter is empty: write a condition such as proc.name = curl",
        ));
    }
    let mut p = Parser {
        toks,
        pos: 0,
        end: src.len(),
        depth: 0,
    };
    let e = p.expr()?;
    if let Some(t) = p.peek() {
        let msg = match t.tok {
            Tok::RParen => "this ')' has no '(' to close".to_string(),
            _ => format!(
                "expected 'and', 'or' or the end of the filter, found {}",
                describe(&t.tok)
            ),
        };
        return Err(FilterError::new(t.span, msg));
    }
    Ok(e)
}

fn describe(t: &Tok) -> String {
    match t {
        Tok::LParen => "'('".into(),
        Tok::RParen => "')'".into(),
        Tok::Comma => "','".into(),
        Tok::Op(o) => format!("'{o}'"),
        Tok::Word(w) => format!("'{w}'"),
        Tok::Quoted(s) => format!("the string \"{s}\""),
    }
}

struct Parser {
    toks: Vec<Token>,
    pos: usize,
    end: usize,
    /// Parentheses and `not`s open around the current position.
    depth: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.toks.get(self.pos)
    }

    fn next(&mut self) -> Option<Token> {
        let t = self.toks.get(self.pos).cloned();
        self.pos += 1;
        t
    }

    /// Where a missing token would have been.
    fn here(&self) -> Span {
        match self.peek() {
            Some(t) => t.span,
            None => Span::new(self.end, self.end),
        }
    }

    fn keyword(&self, kw: &str) -> bool {
        matches!(self.peek(), Some(Token { tok: Tok::Word(w), .. }) if w.eq_ignore_ascii_case(kw))
    }

    fn expr(&mut self) -> Result<Expr, FilterError> {
        let mut xs = vec![self.and()?];
        while self.keyword("or") {
            self.next();
            xs.push(self.and()?);
        }
        Ok(if xs.len() == 1 {
            xs.remove(0)
        } else {
            Expr::Or(xs)
        })
    }

    fn and(&mut self) -> Result<Expr, FilterError> {
        let mut xs = vec![self.unary()?];
        while self.keyword("and") {
            self.next();
            xs.push(self.unary()?);
        }
        Ok(if xs.len() == 1 {
            xs.remove(0)
        } else {
            Expr::And(xs)
        })
    }

    /// One more level of nesting at `span`, refused past [`MAX_DEPTH`].
    fn deeper(&mut self, span: Span) -> Result<(), FilterError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(FilterError::new(
                span,
                format!(
                    "the filter nests deeper than {MAX_DEPTH} levels of parentheses and 'not' here: write it flatter"
                ),
            ));
        }
        Ok(())
    }

    fn unary(&mut self) -> Result<Expr, FilterError> {
        if self.keyword("not") {
            self.deeper(self.here())?;
            self.next();
            let inner = self.unary()?;
            self.depth -= 1;
            return Ok(Expr::Not(Box::new(inner)));
        }
        let here = self.here();
        match self.next() {
            Some(Token {
                tok: Tok::LParen,
                span,
            }) => {
                self.deeper(span)?;
                let e = self.expr()?;
                self.depth -= 1;
                match self.next() {
                    Some(Token {
                        tok: Tok::RParen, ..
                    }) => Ok(e),
                    Some(t) => Err(FilterError::new(
                        t.span,
                        format!("expected 'and', 'or' or ')', found {}", describe(&t.tok)),
                    )),
                    None => Err(FilterError::new(span, "this '(' is never closed")),
                }
            }
            Some(Token {
                tok: Tok::Word(w),
                span,
            }) if !is_keyword(&w) => self.test(w, span),
            Some(t) => Err(FilterError::new(
                t.span,
                format!(
                    "expected a field name (such as proc.name), 'not' or '(', found {}",
                    describe(&t.tok)
                ),
            )),
            None => Err(FilterError::new(
                here,
                "the filter ends here: expected a field name, 'not' or '('",
            )),
        }
    }

    fn test(&mut self, field: String, field_span: Span) -> Result<Expr, FilterError> {
        let op = match self.peek() {
            Some(Token {
                tok: Tok::Op(o),
                span,
            }) => Op::from_text(o).map(|op| (op, *span)),
            Some(Token {
                tok: Tok::Word(w),
                span,
            }) => match Op::from_text(&w.to_ascii_lowercase()) {
                Some(op) => Some((op, *span)),
                None if w.eq_ignore_ascii_case("and") || w.eq_ignore_ascii_case("or") => None,
                None => {
                    return Err(FilterError::new(
                        *span,
                        format!("expected an operator after {field} ({OPERATORS}), found '{w}'"),
                    ));
                }
            },
            Some(Token {
                tok: Tok::Quoted(_) | Tok::LParen | Tok::Comma,
                span,
            }) => {
                return Err(FilterError::new(
                    *span,
                    format!("expected an operator after {field} ({OPERATORS})"),
                ));
            }
            _ => None,
        };
        let Some((op, op_span)) = op else {
            return Ok(Expr::Test(Test {
                field,
                field_span,
                op: None,
                values: Vec::new(),
            }));
        };
        self.next();
        let values = if op == Op::In {
            self.list(op_span)?
        } else {
            vec![self.value(op)?]
        };
        Ok(Expr::Test(Test {
            field,
            field_span,
            op: Some((op, op_span)),
            values,
        }))
    }

    fn value(&mut self, after: Op) -> Result<Value, FilterError> {
        let here = self.here();
        match self.next() {
            Some(Token {
                tok: Tok::Word(w),
                span,
            }) => Ok(Value {
                lit: Lit::Word(w),
                span,
            }),
            Some(Token {
                tok: Tok::Quoted(s),
                span,
            }) => Ok(Value {
                lit: Lit::Quoted(s),
                span,
            }),
            Some(t) => Err(FilterError::new(
                t.span,
                format!(
                    "expected a value after '{}', found {} (quote values that hold ( ) , = ! < > or spaces)",
                    after.text(),
                    describe(&t.tok)
                ),
            )),
            None => Err(FilterError::new(
                here,
                format!("expected a value after '{}'", after.text()),
            )),
        }
    }

    fn list(&mut self, in_span: Span) -> Result<Vec<Value>, FilterError> {
        match self.next() {
            Some(Token {
                tok: Tok::LParen, ..
            }) => {}
            Some(t) => {
                return Err(FilterError::new(
                    t.span,
                    "expected '(' after 'in': write in (a, b, c)",
                ));
            }
            None => {
                return Err(FilterError::new(
                    Span::new(in_span.end, in_span.end),
                    "expected '(' after 'in': write in (a, b, c)",
                ));
            }
        }
        let mut values = vec![self.value(Op::In)?];
        loop {
            let here = self.here();
            match self.next() {
                Some(Token {
                    tok: Tok::Comma, ..
                }) => values.push(self.value(Op::In)?),
                Some(Token {
                    tok: Tok::RParen, ..
                }) => return Ok(values),
                Some(t) => {
                    return Err(FilterError::new(
                        t.span,
                        format!(
                            "expected ',' or ')' in the list, found {}",
                            describe(&t.tok)
                        ),
                    ));
                }
                None => {
                    return Err(FilterError::new(
                        here,
                        "the list after 'in' is never closed",
                    ));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round(s: &str) -> String {
        parse(s).unwrap().to_string()
    }

    #[test]
    fn precedence_and_printing() {
        assert_eq!(round("a=1 or b=2 and c=3"), "a = 1 or b = 2 and c = 3");
        assert_eq!(round("(a=1 or b=2) and c=3"), "(a = 1 or b = 2) and c = 3");
        assert_eq!(round("not a = 1 and b"), "not a = 1 and b");
        assert_eq!(round("not (a = 1 and b)"), "not (a = 1 and b)");
        assert_eq!(
            round("x in (1,'two', \"3 4\")"),
            "x in (1, \"two\", \"3 4\")"
        );
        assert_eq!(
            round("proc.cmdline contains '--token'"),
            "proc.cmdline contains \"--token\""
        );
        assert_eq!(round("a=1 OR b CONTAINS x"), "a = 1 or b contains x");
        assert!(matches!(parse("a or b or c").unwrap(), Expr::Or(v) if v.len() == 3));
    }

    fn err(s: &str) -> (Span, String) {
        let e = parse(s).unwrap_err();
        (e.span, e.message)
    }

    #[test]
    fn errors_point_at_the_problem() {
        let (sp, m) = err("proc.name = ");
        assert_eq!(sp, Span::new(12, 12));
        assert!(m.contains("expected a value after '='"), "{m}");
        let (sp, m) = err("proc.name is curl");
        assert_eq!(sp, Span::new(10, 12));
        assert!(m.contains("expected an operator after proc.name"), "{m}");
        let (sp, m) = err("(a = 1 or b = 2");
        assert_eq!(sp, Span::new(0, 1));
        assert!(m.contains("never closed"), "{m}");
        let (sp, _) = err("a = 1 b = 2");
        assert_eq!(sp, Span::new(6, 7));
        let (sp, m) = err("a = 1)");
        assert_eq!(sp, Span::new(5, 6));
        assert!(m.contains("no '('"), "{m}");
        let (_, m) = err("a in 1");
        assert!(m.contains("expected '(' after 'in'"), "{m}");
        let (_, m) = err("a in (1 2)");
        assert!(m.contains("expected ',' or ')'"), "{m}");
        let (_, m) = err("a = 1 and");
        assert!(m.contains("the filter ends here"), "{m}");
        let (_, m) = err("   ");
        assert!(m.contains("empty"), "{m}");
        let (_, m) = err("a = (");
        assert!(m.contains("quote values"), "{m}");
    }

    /// Runs `f` on a thread with a small stack, as a hostile input would
    /// reach the parser on an API thread: unbounded recursion would
    /// overflow it and abort the test binary.
    fn small_stack<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
        std::thread::Builder::new()
            .stack_size(512 * 1024)
            .spawn(f)
            .unwrap()
            .join()
            .unwrap()
    }

    #[test]
    fn deep_and_long_filters_are_errors_at_a_column_not_crashes() {
        let (sp, m) = small_stack(|| err(&"(".repeat(10_000)));
        assert!(m.contains("deeper than 64 levels"), "{m}");
        assert_eq!(sp, Span::new(64, 65), "the first '(' too many");
        let (sp, m) = small_stack(|| err(&"not ".repeat(4_000)));
        assert!(m.contains("deeper than 64 levels"), "{m}");
        assert_eq!(sp.start, 64 * 4);
        let (sp, m) = small_stack(|| err(&format!("{}a = 1", "not (".repeat(40))));
        assert!(m.contains("deeper than"), "{m}");
        assert_eq!(sp.start, 32 * 5);
        // the limit itself parses, prints and parses the same
        // the limit itself parses, checks, prints, scopes and drops
        let deep = format!("{}proc.pid = 1{}", "(not ".repeat(32), ")".repeat(32));
        small_stack(move || {
            let e = parse(&deep).unwrap();
            assert_eq!(parse(&e.to_string()).unwrap(), e);
            let f = crate::Filter::parse(&deep).unwrap();
            let _ = f.scope();
            assert!(f.uses(crate::Field::ProcPid));
        });
        let long = format!("a in ({})", vec!["1"; 9_000].join(","));
        let (sp, m) = err(&long);
        assert!(m.contains("at most 16384"), "{m}");
        assert_eq!(sp, Span::new(MAX_LEN, long.len()));
        let (_, m) = small_stack(|| err(&"(".repeat(30_000)));
        assert!(m.contains("at most 16384"), "{m}");
        // a limit never falls inside a character
        let wide = format!("a = \"{}\"", "é".repeat(MAX_LEN));
        let (sp, _) = err(&wide);
        assert!(wide.is_char_boundary(sp.start));
        // long flat chains are fine below the length limit
        assert!(parse(&vec!["a = 1"; 1_500].join(" and ")).is_ok());
    }
}
