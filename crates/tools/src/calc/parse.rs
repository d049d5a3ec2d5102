//! Lexer and Pratt parser for calculator expressions.
//!
//! Grammar (loosest to tightest binding):
//! `+ -` < `* / // %` < unary `- +` < `** ^` (right-associative) < postfix `!`.
//! As in Python, `-2**2` is `-(2**2)` and `2**-1` is `2**(-1)`.
//! `^` means power, not xor: that is what people mean in a calculator.

use super::CalcError;

/// Byte offsets `[start, end)` into the expression.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub start: usize,
    pub end: usize,
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    /// A number literal as written: digits, optional `.digits`, optional exponent.
    Num(String),
    /// A date `YYYY-MM-DD`, optionally with a time `HH:MM[:SS]` after `T` or a space.
    Date(String),
    Ident(String),
    Plus,
    Minus,
    Star,
    Slash,
    SlashSlash,
    Percent,
    Pow,
    Bang,
    LParen,
    RParen,
    Comma,
    End,
}

impl Tok {
    fn describe(&self) -> String {
        match self {
            Tok::Num(s) => format!("number {s}"),
            Tok::Date(s) => format!("date {s}"),
            Tok::Ident(s) => format!("name '{s}'"),
            Tok::End => "end of expression".to_string(),
            Tok::Plus => "'+'".into(),
            Tok::Minus => "'-'".into(),
            Tok::Star => "'*'".into(),
            Tok::Slash => "'/'".into(),
            Tok::SlashSlash => "'//'".into(),
            Tok::Percent => "'%'".into(),
            Tok::Pow => "'**'".into(),
            Tok::Bang => "'!'".into(),
            Tok::LParen => "'('".into(),
            Tok::RParen => "')'".into(),
            Tok::Comma => "','".into(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
    FloorDiv,
    Mod,
    Pow,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ExprKind {
    Num(String),
    Date(String),
    Name(String),
    Neg(Box<Expr>),
    Factorial(Box<Expr>),
    Bin(BinOp, Box<Expr>, Box<Expr>),
    Call(String, Vec<Expr>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Expr {
    pub kind: ExprKind,
    pub span: Span,
}

/// Expressions nest at most this deep, so a hostile `((((...` cannot overflow the stack.
const MAX_DEPTH: usize = 200;
/// Longest expression accepted, in bytes.
pub const MAX_LEN: usize = 10_000;

fn lex(src: &str) -> Result<Vec<(Tok, Span)>, CalcError> {
    let bytes = src.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        let start = i;
        if c.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        let tok = if let Some(n) = date_len(&bytes[i..]) {
            i += n;
            Tok::Date(src[start..i].to_string())
        } else if c.is_ascii_digit()
            || (c == b'.' && bytes.get(i + 1).is_some_and(u8::is_ascii_digit))
        {
            while i < bytes.len() && (bytes[i].is_ascii_digit() || bytes[i] == b'_') {
                i += 1;
            }
            if i < bytes.len() && bytes[i] == b'.' {
                i += 1;
                while i < bytes.len() && (bytes[i].is_ascii_digit() || bytes[i] == b'_') {
                    i += 1;
                }
            }
            // An exponent only if digits follow: `2e` is an error below, `2e3` is 2000.
            if i < bytes.len() && (bytes[i] == b'e' || bytes[i] == b'E') {
                let mut j = i + 1;
                if j < bytes.len() && (bytes[j] == b'+' || bytes[j] == b'-') {
                    j += 1;
                }
                if j < bytes.len() && bytes[j].is_ascii_digit() {
                    while j < bytes.len() && bytes[j].is_ascii_digit() {
                        j += 1;
                    }
                    i = j;
                }
            }
            let text = src[start..i].replace('_', "");
            // As Python: `02` is not a number. Models wrote dates (`2031-11-02 - 1987-03-14`),
            // which would otherwise be integer subtraction with a confident wrong answer.
            if text.len() > 1
                && text.starts_with('0')
                && text.bytes().all(|b| b.is_ascii_digit())
                && text.bytes().any(|b| b != b'0')
            {
                return Err(CalcError::at(
                    src,
                    Span { start, end: i },
                    format!(
                        "'{text}': leading zeros are not allowed in integers (write {}); \
                         write dates as YYYY-MM-DD, e.g. 2031-11-02 - 1987-03-14 for the days between",
                        text.trim_start_matches('0')
                    ),
                ));
            }
            Tok::Num(text)
        } else if c.is_ascii_alphabetic() || c == b'_' {
            while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
                i += 1;
            }
            Tok::Ident(src[start..i].to_ascii_lowercase())
        } else {
            i += 1;
            match c {
                b'+' => Tok::Plus,
                b'-' => Tok::Minus,
                b'*' if bytes.get(i) == Some(&b'*') => {
                    i += 1;
                    Tok::Pow
                }
                b'*' => Tok::Star,
                b'/' if bytes.get(i) == Some(&b'/') => {
                    i += 1;
                    Tok::SlashSlash
                }
                b'/' => Tok::Slash,
                b'%' => Tok::Percent,
                b'^' => Tok::Pow,
                b'!' => Tok::Bang,
                b'(' => Tok::LParen,
                b')' => Tok::RParen,
                b',' => Tok::Comma,
                _ => {
                    let ch = src[start..].chars().next().unwrap_or('?');
                    let hint = match ch {
                        '×' | '·' => " (use '*' for multiplication)",
                        '÷' => " (use '/' for division)",
                        '=' => " (give only the expression, without '=')",
                        '[' | ']' | '{' | '}' => " (use '(' and ')' for grouping)",
                        _ => "",
                    };
                    return Err(CalcError::at(
                        src,
                        Span {
                            start,
                            end: start + ch.len_utf8(),
                        },
                        format!("unexpected character '{ch}'{hint}"),
                    ));
                }
            }
        };
        out.push((tok, Span { start, end: i }));
    }
    out.push((
        Tok::End,
        Span {
            start: src.len(),
            end: src.len(),
        },
    ));
    Ok(out)
}

/// Length of the date literal at the start of `b`: `YYYY-MM-DD`, then
/// optionally `T` or one space and `HH:MM` or `HH:MM:SS`; None if there is
/// none (or more digits follow, as in `2024-03-100`).
fn date_len(b: &[u8]) -> Option<usize> {
    fn shape(b: &[u8], pat: &[u8]) -> bool {
        b.len() >= pat.len()
            && pat.iter().zip(b).all(|(p, c)| match p {
                b'9' => c.is_ascii_digit(),
                _ => p == c,
            })
    }
    let ends = |n: usize| !b.get(n).is_some_and(|c| c.is_ascii_digit() || *c == b'.');
    if !shape(b, b"9999-99-99") || !ends(10) {
        return None;
    }
    for sep in [b'T', b' '] {
        let rest = &b[10..];
        if rest.first() != Some(&sep) {
            continue;
        }
        if shape(&rest[1..], b"99:99:99") && ends(19) {
            return Some(19);
        }
        if shape(&rest[1..], b"99:99") && ends(16) && b.get(16) != Some(&b':') {
            return Some(16);
        }
    }
    Some(10)
}

struct Parser<'a> {
    src: &'a str,
    toks: Vec<(Tok, Span)>,
    pos: usize,
    depth: usize,
}

/// Parse an expression into a tree.
///
/// # Errors
/// [`CalcError`] naming the bad token and its column.
pub fn parse(src: &str) -> Result<Expr, CalcError> {
    if src.len() > MAX_LEN {
        return Err(CalcError::plain(format!(
            "expression is {} bytes long; the limit is {MAX_LEN}: split the calculation into steps",
            src.len()
        )));
    }
    let toks = lex(src)?;
    let mut p = Parser {
        src,
        toks,
        pos: 0,
        depth: 0,
    };
    if p.peek() == &Tok::End {
        return Err(CalcError::plain(
            "empty expression: give an arithmetic expression such as 2**200 / 7".into(),
        ));
    }
    let e = p.expr(0)?;
    match p.peek() {
        Tok::End => Ok(e),
        Tok::RParen => Err(p.err_here("unmatched ')'".into())),
        Tok::Num(_) | Tok::Date(_) | Tok::Ident(_) | Tok::LParen => Err(p.err_here(format!(
            "expected an operator before {} (write '*' for multiplication)",
            p.peek().describe()
        ))),
        t => Err(p.err_here(format!("unexpected {}", t.describe()))),
    }
}

impl Parser<'_> {
    fn peek(&self) -> &Tok {
        &self.toks[self.pos].0
    }

    fn span(&self) -> Span {
        self.toks[self.pos].1
    }

    fn bump(&mut self) -> (Tok, Span) {
        let t = self.toks[self.pos].clone();
        if self.pos + 1 < self.toks.len() {
            self.pos += 1;
        }
        t
    }

    fn err_here(&self, msg: String) -> CalcError {
        CalcError::at(self.src, self.span(), msg)
    }

    /// Binding powers `(left, right)` of an infix operator.
    fn infix(t: &Tok) -> Option<(u8, u8, BinOp)> {
        Some(match t {
            Tok::Plus => (10, 11, BinOp::Add),
            Tok::Minus => (10, 11, BinOp::Sub),
            Tok::Star => (20, 21, BinOp::Mul),
            Tok::Slash => (20, 21, BinOp::Div),
            Tok::SlashSlash => (20, 21, BinOp::FloorDiv),
            Tok::Percent => (20, 21, BinOp::Mod),
            // Right-associative; the right side may start with a unary minus (2**-1).
            Tok::Pow => (41, 40, BinOp::Pow),
            _ => return None,
        })
    }

    const PREFIX_BP: u8 = 30;
    const POSTFIX_BP: u8 = 50;

    fn expr(&mut self, min_bp: u8) -> Result<Expr, CalcError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.err_here(format!("expression nests deeper than {MAX_DEPTH} levels")));
        }
        let mut lhs = self.prefix()?;
        loop {
            let t = self.peek().clone();
            if t == Tok::Bang {
                if Self::POSTFIX_BP < min_bp {
                    break;
                }
                let (_, s) = self.bump();
                let span = Span {
                    start: lhs.span.start,
                    end: s.end,
                };
                lhs = Expr {
                    kind: ExprKind::Factorial(Box::new(lhs)),
                    span,
                };
                continue;
            }
            let Some((l_bp, r_bp, op)) = Self::infix(&t) else {
                break;
            };
            if l_bp < min_bp {
                break;
            }
            self.bump();
            let rhs = self.expr(r_bp)?;
            let span = Span {
                start: lhs.span.start,
                end: rhs.span.end,
            };
            lhs = Expr {
                kind: ExprKind::Bin(op, Box::new(lhs), Box::new(rhs)),
                span,
            };
        }
        self.depth -= 1;
        Ok(lhs)
    }

    fn prefix(&mut self) -> Result<Expr, CalcError> {
        let (t, s) = self.bump();
        match t {
            Tok::Num(text) => Ok(Expr {
                kind: ExprKind::Num(text),
                span: s,
            }),
            Tok::Date(text) => Ok(Expr {
                kind: ExprKind::Date(text),
                span: s,
            }),
            Tok::Minus | Tok::Plus => {
                let inner = self.expr(Self::PREFIX_BP)?;
                let span = Span {
                    start: s.start,
                    end: inner.span.end,
                };
                if t == Tok::Plus {
                    return Ok(Expr { span, ..inner });
                }
                Ok(Expr {
                    kind: ExprKind::Neg(Box::new(inner)),
                    span,
                })
            }
            Tok::LParen => {
                let inner = self.expr(0)?;
                if self.peek() != &Tok::RParen {
                    return Err(self.err_here(format!(
                        "expected ')' to close the '(' at column {}, found {}",
                        col(self.src, s.start),
                        self.peek().describe()
                    )));
                }
                let (_, e) = self.bump();
                Ok(Expr {
                    kind: inner.kind,
                    span: Span {
                        start: s.start,
                        end: e.end,
                    },
                })
            }
            Tok::Ident(name) => {
                if self.peek() != &Tok::LParen {
                    return Ok(Expr {
                        kind: ExprKind::Name(name),
                        span: s,
                    });
                }
                let open = self.bump().1;
                let mut args = Vec::new();
                if self.peek() != &Tok::RParen {
                    loop {
                        args.push(self.expr(0)?);
                        match self.peek() {
                            Tok::Comma => {
                                self.bump();
                            }
                            Tok::RParen => break,
                            t => {
                                return Err(self.err_here(format!(
                                    "expected ',' or ')' in the arguments of {name}( at column {}, found {}",
                                    col(self.src, open.start),
                                    t.describe()
                                )))
                            }
                        }
                    }
                }
                let (_, e) = self.bump();
                Ok(Expr {
                    kind: ExprKind::Call(name, args),
                    span: Span {
                        start: s.start,
                        end: e.end,
                    },
                })
            }
            Tok::End => Err(CalcError::at(
                self.src,
                s,
                "expression ends where a number was expected".into(),
            )),
            t => Err(CalcError::at(
                self.src,
                s,
                format!("expected a number, name or '(', found {}", t.describe()),
            )),
        }
    }
}

/// 1-based column (in characters) of byte offset `at`.
pub fn col(src: &str, at: usize) -> usize {
    src.get(..at).map_or(at, |s| s.chars().count()) + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(e: &Expr) -> String {
        match &e.kind {
            ExprKind::Num(n) => n.clone(),
            ExprKind::Date(d) => format!("<{d}>"),
            ExprKind::Name(n) => n.clone(),
            ExprKind::Neg(x) => format!("(-{})", shape(x)),
            ExprKind::Factorial(x) => format!("({}!)", shape(x)),
            ExprKind::Bin(op, a, b) => format!("({} {:?} {})", shape(a), op, shape(b)),
            ExprKind::Call(f, args) => format!(
                "{f}({})",
                args.iter().map(shape).collect::<Vec<_>>().join(", ")
            ),
        }
    }

    fn p(s: &str) -> String {
        shape(
            &parse(s)
                .map_err(|e| e.to_string())
                .unwrap_or_else(|e| panic!("{s}: {e}")),
        )
    }

    #[test]
    fn precedence_matches_python() {
        assert_eq!(p("1 + 2 * 3"), "(1 Add (2 Mul 3))");
        assert_eq!(p("-2**2"), "(-(2 Pow 2))");
        assert_eq!(p("2**-1"), "(2 Pow (-1))");
        assert_eq!(p("2**3**2"), "(2 Pow (3 Pow 2))");
        assert_eq!(p("2**-3*4"), "((2 Pow (-3)) Mul 4)");
        assert_eq!(p("1 - 2 - 3"), "((1 Sub 2) Sub 3)");
        assert_eq!(p("-3!"), "(-(3!))");
        assert_eq!(p("2^10 % 7"), "((2 Pow 10) Mod 7)");
        assert_eq!(p("gcd(12, 18) // 4"), "(gcd(12, 18) FloorDiv 4)");
        assert_eq!(p("1_000.5e-3"), "1000.5e-3");
    }

    #[test]
    fn dates_are_literals_not_subtractions() {
        assert_eq!(
            p("2031-11-02 - 1987-03-14"),
            "(<2031-11-02> Sub <1987-03-14>)"
        );
        assert_eq!(
            p("2031-11-02-1987-03-14"),
            "(<2031-11-02> Sub <1987-03-14>)"
        );
        assert_eq!(
            p("2024-03-12 17:40:30 - 2024-03-10T08:15"),
            "(<2024-03-12 17:40:30> Sub <2024-03-10T08:15>)"
        );
        assert_eq!(p("2024-02-29 + 1000"), "(<2024-02-29> Add 1000)");
        // not dates: other shapes stay arithmetic, or are errors
        assert_eq!(p("2024-3-1"), "((2024 Sub 3) Sub 1)");
        assert!(parse("2024-03-100").is_err());
        let e = parse("2031 - 11 - 02")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            e.contains("'02'") && e.contains("YYYY-MM-DD") && e.contains("column 13"),
            "{e}"
        );
        assert_eq!(p("0 + 00 + 0.5 + 0e3"), "(((0 Add 00) Add 0.5) Add 0e3)");
        assert_eq!(p("01.5"), "01.5");
    }

    #[test]
    fn errors_name_the_column() {
        let e = parse("1 + * 2")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains("column 5") && e.contains("'*'"), "{e}");
        let e = parse("(1 + 2")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains("expected ')'") && e.contains("column 1"), "{e}");
        let e = parse("2 3")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains("column 3") && e.contains("'*'"), "{e}");
        let e = parse("2 × 3")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains("'×'") && e.contains("use '*'"), "{e}");
        let deep = "(".repeat(500) + "1" + &")".repeat(500);
        assert!(parse(&deep).is_err());
    }
}
