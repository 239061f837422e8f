//! Recursive-descent EQL parser: `not` binds tighter than `and`, `and` tighter than `or`.
//!
//! Function calls (`startsWith(process.name, "py")`, `length(process.command_line) > 50`)
//! parse into [`Value::Call`]; the compiler checks names, arity and argument types.
//! Everything the grammar allows but this engine cannot evaluate (arithmetic operators,
//! field-to-field comparisons, pipes, joins, sample, array indexes) is parsed far enough to
//! point at it and then rejected with a reason.

use super::QueryError;
use super::ast::*;
use super::lexer::{Span, Tok, Token, tokenize};

/// Parses a whole query text.
pub fn parse(src: &str) -> Result<Statement, QueryError> {
    let toks = tokenize(src)?;
    let mut p = Parser { src, toks, pos: 0 };
    let stmt = p.statement()?;
    if p.peek() == &Tok::Pipe {
        return Err(QueryError::new(
            p.span(),
            "pipes (`| head`, `| tail`, `| filter`, …) are not supported",
        ));
    }
    p.expect_eof()?;
    Ok(stmt)
}

/// Nesting limit so a hostile query cannot overflow the stack.
const MAX_DEPTH: usize = 64;

/// Largest `with runs=N`: Elasticsearch expands a term into N stages and caps N at 100.
pub const MAX_RUNS: usize = 100;

struct Parser<'s> {
    src: &'s str,
    toks: Vec<Token>,
    pos: usize,
}

/// An operand before we know what it is used for.
enum Operand {
    Field(FieldRef),
    Lit(Lit),
    Call(Call),
    Paren(Expr, Span),
}

impl Parser<'_> {
    fn peek(&self) -> &Tok {
        &self.toks[self.pos].tok
    }
    fn peek_at(&self, k: usize) -> &Tok {
        &self.toks[(self.pos + k).min(self.toks.len() - 1)].tok
    }
    fn span(&self) -> Span {
        self.toks[self.pos].span
    }
    fn bump(&mut self) -> Token {
        let t = self.toks[self.pos].clone();
        if self.pos + 1 < self.toks.len() {
            self.pos += 1;
        }
        t
    }
    fn eat(&mut self, t: &Tok) -> bool {
        if self.peek() == t {
            self.bump();
            true
        } else {
            false
        }
    }
    fn unexpected(&self, wanted: &str) -> QueryError {
        QueryError::new(
            self.span(),
            format!("expected {wanted}, found {}", self.peek().describe()),
        )
    }
    fn expect(&mut self, t: Tok, wanted: &str) -> Result<Span, QueryError> {
        if self.peek() == &t {
            Ok(self.bump().span)
        } else {
            Err(self.unexpected(wanted))
        }
    }
    fn expect_eof(&self) -> Result<(), QueryError> {
        if self.peek() == &Tok::Eof {
            Ok(())
        } else {
            Err(self.unexpected("`and`, `or` or end of query"))
        }
    }

    fn statement(&mut self) -> Result<Statement, QueryError> {
        match self.peek() {
            Tok::Sequence => self.sequence(),
            Tok::Join => Err(QueryError::new(
                self.span(),
                "joins are not supported: this engine evaluates single events",
            )),
            Tok::Ident(s) if s == "sample" => Err(QueryError::new(
                self.span(),
                "samples are not supported: this engine evaluates single events",
            )),
            _ => Ok(Statement::Event(self.event_filter(0)?)),
        }
    }

    fn event_filter(&mut self, depth: usize) -> Result<EventQuery, QueryError> {
        let t = self.bump();
        let category = match t.tok {
            Tok::Any => None,
            Tok::Ident(s) | Tok::Quoted(s) => Some(s),
            Tok::Str(s) => Some(s),
            other => {
                return Err(QueryError::new(
                    t.span,
                    format!(
                        "expected an event category (`process`, `any`, …), found {}",
                        other.describe()
                    ),
                ));
            }
        };
        self.expect(Tok::Where, "`where`")?;
        let expr = self.or(depth)?;
        Ok(EventQuery {
            category,
            category_span: t.span,
            expr,
        })
    }

    fn or(&mut self, depth: usize) -> Result<Expr, QueryError> {
        let mut parts = vec![self.and(depth)?];
        while self.eat(&Tok::Or) {
            parts.push(self.and(depth)?);
        }
        Ok(if parts.len() == 1 {
            parts.pop().unwrap_or(Expr::Bool(false))
        } else {
            Expr::Or(parts)
        })
    }

    fn and(&mut self, depth: usize) -> Result<Expr, QueryError> {
        let mut parts = vec![self.not(depth)?];
        while self.eat(&Tok::And) {
            parts.push(self.not(depth)?);
        }
        Ok(if parts.len() == 1 {
            parts.pop().unwrap_or(Expr::Bool(false))
        } else {
            Expr::And(parts)
        })
    }

    fn not(&mut self, depth: usize) -> Result<Expr, QueryError> {
        if depth > MAX_DEPTH {
            return Err(QueryError::new(self.span(), "expression nested too deeply"));
        }
        if self.eat(&Tok::Not) {
            return Ok(Expr::Not(Box::new(self.not(depth + 1)?)));
        }
        self.predicate(depth)
    }

    /// An operand optionally followed by a comparison or predicate.
    fn predicate(&mut self, depth: usize) -> Result<Expr, QueryError> {
        let left_span = self.span();
        let left = self.operand(depth)?;
        self.reject_arithmetic()?;
        let op_span = self.span();
        let cmp = match self.peek() {
            Tok::Eq => Some(CmpOp::Eq),
            Tok::Neq => Some(CmpOp::Neq),
            Tok::Lt => Some(CmpOp::Lt),
            Tok::Le => Some(CmpOp::Le),
            Tok::Gt => Some(CmpOp::Gt),
            Tok::Ge => Some(CmpOp::Ge),
            Tok::Assign => {
                return Err(QueryError::new(
                    op_span,
                    "`=` is not a comparison; use `==` (or `:`)",
                ));
            }
            _ => None,
        };
        if let Some(op) = cmp {
            self.bump();
            let left = Self::need_left(left, left_span, op_span)?;
            let right_span = self.span();
            let right = match self.operand(depth)? {
                Operand::Lit(l) => Value::Lit(l),
                Operand::Call(c) => Value::Call(c),
                Operand::Field(f) => {
                    return Err(QueryError::new(
                        f.span,
                        "comparing two fields is not supported; compare a field with a literal",
                    ));
                }
                Operand::Paren(..) => {
                    return Err(QueryError::new(right_span, "expected a literal value"));
                }
            };
            self.reject_arithmetic()?;
            if matches!(
                self.peek(),
                Tok::Eq | Tok::Neq | Tok::Lt | Tok::Le | Tok::Gt | Tok::Ge
            ) {
                return Err(QueryError::new(
                    self.span(),
                    "comparisons cannot be chained",
                ));
            }
            return Ok(Expr::Compare {
                left,
                op,
                right,
                op_span,
            });
        }
        // `not in` after the field.
        if self.peek() == &Tok::Not && matches!(self.peek_at(1), Tok::In | Tok::InCi) {
            self.bump();
            let ci = self.bump().tok == Tok::InCi;
            let left = Self::need_left(left, left_span, op_span)?;
            let values = self.literal_list(true)?;
            return Ok(Expr::In {
                left,
                ci,
                negated: true,
                values,
                op_span,
            });
        }
        let mop = match self.peek() {
            Tok::In | Tok::InCi => {
                let ci = self.bump().tok == Tok::InCi;
                let left = Self::need_left(left, left_span, op_span)?;
                let values = self.literal_list(true)?;
                return Ok(Expr::In {
                    left,
                    ci,
                    negated: false,
                    values,
                    op_span,
                });
            }
            Tok::Colon => Some(MatchOp::Colon),
            Tok::Like => Some(MatchOp::Like),
            Tok::LikeCi => Some(MatchOp::LikeCi),
            Tok::Regex => Some(MatchOp::Regex),
            Tok::RegexCi => Some(MatchOp::RegexCi),
            _ => None,
        };
        if let Some(op) = mop {
            self.bump();
            let left = Self::need_left(left, left_span, op_span)?;
            let values = if self.peek() == &Tok::LParen {
                self.literal_list(false)?
            } else {
                vec![self.literal()?]
            };
            return Ok(Expr::Match {
                left,
                op,
                values,
                op_span,
            });
        }
        match left {
            Operand::Paren(e, _) => Ok(e),
            Operand::Call(c) => Ok(Expr::Call(c)),
            Operand::Lit(Lit {
                value: LitValue::Bool(b),
                ..
            }) => Ok(Expr::Bool(b)),
            Operand::Lit(l) => Err(QueryError::new(
                l.span,
                format!("{} is not a condition", l.value.kind()),
            )),
            Operand::Field(f) => Err(QueryError::new(
                f.span,
                format!(
                    "a field alone is not a condition; expected an operator after `{}` (write `{} == true` for a boolean)",
                    f.path, f.path
                ),
            )),
        }
    }

    /// The left side of a comparison or predicate: a field or a function call.
    fn need_left(left: Operand, left_span: Span, op_span: Span) -> Result<Value, QueryError> {
        match left {
            Operand::Field(f) => Ok(Value::Field(f)),
            Operand::Call(c) => Ok(Value::Call(c)),
            Operand::Lit(l) => Err(QueryError::new(
                l.span,
                "the left side of a comparison must be a field or a function call (write `field <op> literal`)",
            )),
            Operand::Paren(_, s) => Err(QueryError::new(
                left_span.to(s).to(op_span),
                "the left side of a comparison must be a field or a function call, not a parenthesized expression",
            )),
        }
    }

    fn reject_arithmetic(&self) -> Result<(), QueryError> {
        if matches!(
            self.peek(),
            Tok::Plus | Tok::Minus | Tok::Star | Tok::Slash | Tok::Percent
        ) {
            return Err(QueryError::new(self.span(), "arithmetic is not supported"));
        }
        Ok(())
    }

    fn operand(&mut self, depth: usize) -> Result<Operand, QueryError> {
        let start = self.span();
        match self.peek().clone() {
            Tok::LParen => {
                self.bump();
                let e = self.or(depth + 1)?;
                let end = self.expect(Tok::RParen, "`)`")?;
                Ok(Operand::Paren(e, start.to(end)))
            }
            Tok::Str(_)
            | Tok::Int(_)
            | Tok::Float(_)
            | Tok::True
            | Tok::False
            | Tok::Null
            | Tok::Minus => Ok(Operand::Lit(self.literal()?)),
            Tok::Ident(_) | Tok::TildeIdent(_) if self.peek_at(1) == &Tok::LParen => {
                Ok(Operand::Call(self.call(depth)?))
            }
            Tok::TildeIdent(name) => Err(QueryError::new(start, format!("unexpected `{name}~`"))),
            Tok::Optional => {
                self.bump();
                let mut f = self.field_path(true)?;
                f.span = start.to(f.span);
                Ok(Operand::Field(f))
            }
            Tok::Ident(_) | Tok::Quoted(_) => Ok(Operand::Field(self.field_path(false)?)),
            _ => Err(self.unexpected("a field, a literal or `(`")),
        }
    }

    /// `name(arg, …)` / `name~(arg, …)`; the current token is the name.
    fn call(&mut self, depth: usize) -> Result<Call, QueryError> {
        if depth > MAX_DEPTH {
            return Err(QueryError::new(self.span(), "expression nested too deeply"));
        }
        let name_tok = self.bump();
        let (name, ci) = match name_tok.tok {
            Tok::Ident(n) => (n, false),
            Tok::TildeIdent(n) => (n, true),
            other => {
                return Err(QueryError::new(
                    name_tok.span,
                    format!("expected a function name, found {}", other.describe()),
                ));
            }
        };
        let open = self.expect(Tok::LParen, "`(`")?;
        let mut args = Vec::new();
        if self.peek() != &Tok::RParen {
            args.push(self.argument(depth + 1)?);
            while self.eat(&Tok::Comma) {
                args.push(self.argument(depth + 1)?);
            }
        }
        let close = match self.peek() {
            Tok::RParen => self.bump().span,
            Tok::Eof => return Err(QueryError::new(open, "unclosed `(`")),
            _ => return Err(self.unexpected("`,` or `)`")),
        };
        Ok(Call {
            name,
            ci,
            args,
            name_span: name_tok.span,
            span: name_tok.span.to(close),
        })
    }

    /// One function argument: a field, a literal or a call (arithmetic operators are not
    /// supported; the `add`, `subtract`, … functions are).
    fn argument(&mut self, depth: usize) -> Result<Value, QueryError> {
        let start = self.span();
        let v = match self.operand(depth)? {
            Operand::Field(f) => Value::Field(f),
            Operand::Lit(l) => Value::Lit(l),
            Operand::Call(c) => Value::Call(c),
            Operand::Paren(_, s) => {
                return Err(QueryError::new(
                    start.to(s),
                    "a function argument must be a field, a literal or a function call",
                ));
            }
        };
        if matches!(
            self.peek(),
            Tok::Plus | Tok::Minus | Tok::Star | Tok::Slash | Tok::Percent
        ) {
            return Err(QueryError::new(
                self.span(),
                "arithmetic operators are not supported; use add(), subtract(), multiply(), divide() or modulo()",
            ));
        }
        Ok(v)
    }

    /// `ident(.ident)*`; keywords are allowed after a dot (`event.sequence`).
    fn field_path(&mut self, optional: bool) -> Result<FieldRef, QueryError> {
        let first = self.bump();
        let mut path = match first.tok {
            Tok::Ident(s) | Tok::Quoted(s) => s,
            other => {
                return Err(QueryError::new(
                    first.span,
                    format!("expected a field name, found {}", other.describe()),
                ));
            }
        };
        let mut span = first.span;
        loop {
            match self.peek() {
                Tok::Dot => {
                    self.bump();
                    let t = self.bump();
                    let piece = match &t.tok {
                        Tok::Ident(s) | Tok::Quoted(s) => s.clone(),
                        k => match k.keyword_text() {
                            Some(w) => w.to_string(),
                            None => {
                                return Err(QueryError::new(
                                    t.span,
                                    format!(
                                        "expected a field name after `.`, found {}",
                                        k.describe()
                                    ),
                                ));
                            }
                        },
                    };
                    path.push('.');
                    path.push_str(&piece);
                    span = span.to(t.span);
                }
                Tok::LBracket if matches!(self.peek_at(1), Tok::Int(_)) => {
                    return Err(QueryError::new(
                        self.span(),
                        "array indexes (`field[0]`) are not supported",
                    ));
                }
                _ => break,
            }
        }
        Ok(FieldRef {
            path,
            optional,
            span,
        })
    }

    fn literal(&mut self) -> Result<Lit, QueryError> {
        let t = self.bump();
        let value = match t.tok {
            Tok::Str(s) => LitValue::Str(s),
            Tok::Int(n) => LitValue::Int(n),
            Tok::Float(f) => LitValue::Float(f),
            Tok::True => LitValue::Bool(true),
            Tok::False => LitValue::Bool(false),
            Tok::Null => LitValue::Null,
            Tok::Minus => {
                let n = self.bump();
                let v = match n.tok {
                    Tok::Int(i) => LitValue::Int(-i),
                    Tok::Float(f) => LitValue::Float(-f),
                    _ => return Err(QueryError::new(t.span, "arithmetic is not supported")),
                };
                return Ok(Lit {
                    value: v,
                    span: t.span.to(n.span),
                    content_start: None,
                });
            }
            Tok::Ident(_) | Tok::Quoted(_) | Tok::Optional => {
                return Err(QueryError::new(
                    t.span,
                    "expected a literal value; comparing two fields is not supported",
                ));
            }
            other => {
                return Err(QueryError::new(
                    t.span,
                    format!("expected a literal value, found {}", other.describe()),
                ));
            }
        };
        let content_start = match &value {
            LitValue::Str(v) => {
                let raw = &self.src[t.span.start..t.span.end];
                let quote = if raw.starts_with("\"\"\"") && raw.len() >= 6 {
                    3
                } else {
                    1
                };
                (raw.get(quote..raw.len() - quote) == Some(v.as_str()))
                    .then_some(t.span.start + quote)
            }
            _ => None,
        };
        Ok(Lit {
            value,
            span: t.span,
            content_start,
        })
    }

    /// `( literal, … )`, at least one element; a trailing comma is an error.
    fn literal_list(&mut self, _in_list: bool) -> Result<Vec<Lit>, QueryError> {
        self.expect(Tok::LParen, "`(`")?;
        let mut out = vec![self.literal()?];
        while self.eat(&Tok::Comma) {
            out.push(self.literal()?);
        }
        self.expect(Tok::RParen, "`,` or `)`")?;
        Ok(out)
    }
}

mod sequence;
#[cfg(test)]
mod tests;
