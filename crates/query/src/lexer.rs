//! Tokens of a filter expression, each with the byte span it came from.

use crate::error::{FilterError, Span};

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Tok {
    LParen,
    RParen,
    Comma,
    /// `=`, `!=`, `<`, `<=`, `>`, `>=`, `=~`
    Op(&'static str),
    /// A bare word: a field name, a keyword, a number, an address.
    Word(String),
    /// A quoted string, unescaped.
    Quoted(String),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Token {
    pub tok: Tok,
    pub span: Span,
}

/// Characters that end a bare word.
fn ends_word(c: char) -> bool {
    c.is_whitespace() || matches!(c, '(' | ')' | ',' | '"' | '\'' | '=' | '!' | '<' | '>')
}

pub fn lex(src: &str) -> Result<Vec<Token>, FilterError> {
    let mut out = Vec::new();
    let mut it = src.char_indices().peekable();
    while let Some(&(i, c)) = it.peek() {
        let single = |tok: Tok| Token {
            tok,
            span: Span::new(i, i + c.len_utf8()),
        };
        match c {
            c if c.is_whitespace() => {
                it.next();
            }
            '(' => {
                out.push(single(Tok::LParen));
                it.next();
            }
            ')' => {
                out.push(single(Tok::RParen));
                it.next();
            }
            ',' => {
                out.push(single(Tok::Comma));
                it.next();
            }
            '=' | '!' | '<' | '>' => {
                it.next();
                let next = it.peek().map(|&(_, n)| n);
                let (op, len) = match (c, next) {
                    ('=', Some('~')) => ("=~", 2),
                    ('=', Some('=')) => ("=", 2),
                    ('=', _) => ("=", 1),
                    ('!', Some('=')) => ("!=", 2),
                    ('<', Some('=')) => ("<=", 2),
                    ('>', Some('=')) => (">=", 2),
                    ('<', _) => ("<", 1),
                    ('>', _) => (">", 1),
                    _ => {
                        return Err(FilterError::new(
                            Span::new(i, i + 1),
                            "'!' alone is not an operator: write 'not' or '!='",
                        ));
                    }
                };
                if len == 2 {
                    it.next();
                }
                out.push(Token {
                    tok: Tok::Op(op),
                    span: Span::new(i, i + len),
                });
            }
            '"' | '\'' => {
                let quote = c;
                it.next();
                let mut s = String::new();
                let mut end = None;
                while let Some((j, d)) = it.next() {
                    if d == quote {
                        end = Some(j + 1);
                        break;
                    }
                    if d == '\\' {
                        match it.next() {
                            Some((_, e)) => s.push(e),
                            None => break,
                        }
                    } else {
                        s.push(d);
                    }
                }
                let Some(end) = end else {
                    return Err(FilterError::new(
                        Span::new(i, src.len()),
                        format!("this string has no closing {quote}"),
                    ));
                };
                out.push(Token {
                    tok: Tok::Quoted(s),
                    span: Span::new(i, end),
                });
            }
            _ => {
                let mut end = i;
                let mut s = String::new();
                while let Some(&(j, d)) = it.peek() {
                    if ends_word(d) {
                        break;
                    }
                    s.push(d);
                    end = j + d.len_utf8();
                    it.next();
                }
                out.push(Token {
                    tok: Tok::Word(s),
                    span: Span::new(i, end),
                });
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(s: &str) -> Vec<Tok> {
        lex(s).unwrap().into_iter().map(|t| t.tok).collect()
    }

    #[test]
    fn words_operators_and_strings() {
        assert_eq!(
            toks("fd.rip=fd00:231::1 and x!='a b\\'c'"),
            vec![
                Tok::Word("fd.rip".into()),
                Tok::Op("="),
                Tok::Word("fd00:231::1".into()),
                Tok::Word("and".into()),
                Tok::Word("x".into()),
                Tok::Op("!="),
                Tok::Quoted("a b'c".into()),
            ]
        );
        assert_eq!(
            toks("a in (1,2) b=~\"^c\" c>=3"),
            vec![
                Tok::Word("a".into()),
                Tok::Word("in".into()),
                Tok::LParen,
                Tok::Word("1".into()),
                Tok::Comma,
                Tok::Word("2".into()),
                Tok::RParen,
                Tok::Word("b".into()),
                Tok::Op("=~"),
                Tok::Quoted("^c".into()),
                Tok::Word("c".into()),
                Tok::Op(">="),
                Tok::Word("3".into()),
            ]
        );
    }

    #[test]
    fn spans_are_byte_ranges() {
        let t = lex("  proc.name = \"é\"").unwrap();
        assert_eq!(t[0].span, Span::new(2, 11));
        assert_eq!(t[2].span, Span::new(14, 18));
    }

    #[test]
    fn unterminated_strings_and_lone_bangs_fail() {
        let e = lex("a = \"abc").unwrap_err();
        assert_eq!(e.span, Span::new(4, 8));
        assert!(lex("! a").is_err());
    }
}
