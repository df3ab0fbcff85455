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

/// Parse a filter expression into its syntax tree.
pub fn parse(src: &str) -> Result<Expr, FilterError> {
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

    fn unary(&mut self) -> Result<Expr, FilterError> {
        if self.keyword("not") {
            self.next();
            return Ok(Expr::Not(Box::new(self.unary()?)));
        }
        let here = self.here();
        match self.next() {
            Some(Token {
                tok: Tok::LParen,
                span,
            }) => {
                let e = self.expr()?;
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
}
