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

    /// `sequence [by k, …] [with maxspan=N[unit]] term term+ [until term]`, as
    /// Elasticsearch's grammar (`sequence`, `sequenceTerm`): `by` before `with`, a term is
    /// `[filter]` or `![filter]` (a missing event) followed by `by keys` and
    /// `with runs=N` in either order.
    fn sequence(&mut self) -> Result<Statement, QueryError> {
        let span = self.bump().span;
        let mut by = Vec::new();
        let mut maxspan = None;
        if self.peek() == &Tok::By {
            by = self.join_keys()?;
        }
        if self.eat(&Tok::With) {
            self.expect(Tok::Maxspan, "`maxspan`")?;
            self.expect(Tok::Assign, "`=`")?;
            let num = self.bump();
            let value = match num.tok {
                Tok::Int(n) => n as f64,
                Tok::Float(f) => f,
                _ => {
                    return Err(QueryError::new(
                        num.span,
                        "expected a number after `maxspan=`",
                    ));
                }
            };
            let mut end = num.span;
            let unit = match self.peek().clone() {
                Tok::Ident(u) => {
                    end = self.bump().span;
                    u
                }
                _ => String::new(),
            };
            maxspan = Some(Maxspan {
                value,
                unit,
                span: num.span.to(end),
            });
            if self.peek() == &Tok::By {
                return Err(QueryError::new(
                    self.span(),
                    "write `sequence by …` before `with maxspan=…`, not after",
                ));
            }
        }
        let mut terms = Vec::new();
        while matches!(self.peek(), Tok::LBracket | Tok::Bang) {
            terms.push(self.sequence_term()?);
        }
        if terms.is_empty() {
            return Err(self.unexpected("a `[…]` sequence term"));
        }
        if terms.iter().map(|t| t.runs).sum::<usize>() < 2 {
            return Err(QueryError::new(
                span,
                "a sequence needs at least two events",
            ));
        }
        let until = if self.eat(&Tok::Until) {
            let t = self.sequence_term()?;
            if t.missing || t.runs != 1 {
                return Err(QueryError::new(
                    t.span,
                    "an `until` term is a plain `[…]` term (no `!`, no `with runs`)",
                ));
            }
            Some(t)
        } else {
            None
        };
        Ok(Statement::Sequence(SequenceAst {
            span,
            by,
            maxspan,
            terms,
            until,
        }))
    }

    /// One `[filter]` or `![filter]` term with its optional `by keys` and `with runs=N`.
    fn sequence_term(&mut self) -> Result<SequenceTerm, QueryError> {
        let start = self.span();
        let missing = self.eat(&Tok::Bang);
        self.expect(Tok::LBracket, "`[`")?;
        let filter = self.event_filter(1)?;
        let mut end = self.expect(Tok::RBracket, "`]`")?;
        let mut runs = 1;
        let mut by = Vec::new();
        let mut seen_by = false;
        let mut seen_runs = false;
        loop {
            if self.peek() == &Tok::By && !seen_by {
                seen_by = true;
                by = self.join_keys()?;
                end = by.last().map(|f| f.span).unwrap_or(end);
            } else if self.peek() == &Tok::With
                && !seen_runs
                && matches!(self.peek_at(1), Tok::Ident(s) if s == "runs")
            {
                seen_runs = true;
                self.bump();
                self.bump();
                self.expect(Tok::Assign, "`=`")?;
                let n = self.bump();
                match n.tok {
                    Tok::Int(v) if (1..=MAX_RUNS as i64).contains(&v) => runs = v as usize,
                    _ => {
                        return Err(QueryError::new(
                            n.span,
                            format!("`runs` takes a whole number from 1 to {MAX_RUNS}"),
                        ));
                    }
                }
                end = n.span;
            } else if self.peek() == &Tok::With && !seen_runs {
                let t = self.bump();
                return Err(QueryError::new(
                    self.span(),
                    format!(
                        "expected `runs=N` after `{}`",
                        &self.src[t.span.start..t.span.end]
                    ),
                ));
            } else {
                break;
            }
        }
        Ok(SequenceTerm {
            span: start.to(end),
            filter,
            by,
            runs,
            missing,
        })
    }

    /// `by key, …`: fields, `?optional` allowed.
    fn join_keys(&mut self) -> Result<Vec<FieldRef>, QueryError> {
        self.bump();
        let mut keys = vec![self.join_key()?];
        while self.eat(&Tok::Comma) {
            keys.push(self.join_key()?);
        }
        Ok(keys)
    }

    fn join_key(&mut self) -> Result<FieldRef, QueryError> {
        let start = self.span();
        if self.eat(&Tok::Optional) {
            let mut f = self.field_path(true)?;
            f.span = start.to(f.span);
            return Ok(f);
        }
        self.field_path(false)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn expr(q: &str) -> Expr {
        match parse(q).unwrap_or_else(|e| panic!("{q}: {e:?}")) {
            Statement::Event(e) => e.expr,
            s => panic!("{s:?}"),
        }
    }

    fn show_value(v: &Value) -> String {
        match v {
            Value::Field(f) => f.path.clone(),
            Value::Lit(l) => format!("{:?}", l.value),
            Value::Call(c) => format!(
                "{}{}({})",
                c.name,
                if c.ci { "~" } else { "" },
                c.args.iter().map(show_value).collect::<Vec<_>>().join(",")
            ),
        }
    }

    /// Renders an expression compactly so precedence is visible.
    fn show(e: &Expr) -> String {
        match e {
            Expr::And(v) => format!("(and {})", v.iter().map(show).collect::<Vec<_>>().join(" ")),
            Expr::Or(v) => format!("(or {})", v.iter().map(show).collect::<Vec<_>>().join(" ")),
            Expr::Not(e) => format!("(not {})", show(e)),
            Expr::Bool(b) => b.to_string(),
            Expr::Compare { left, op, .. } => format!("{}{:?}", show_value(left), op),
            Expr::Call(c) => show_value(&Value::Call(c.clone())),
            Expr::In {
                left,
                ci,
                negated,
                values,
                ..
            } => {
                format!(
                    "{}{}in{}{}",
                    show_value(left),
                    if *negated { "!" } else { "" },
                    if *ci { "~" } else { "" },
                    values.len()
                )
            }
            Expr::Match {
                left, op, values, ..
            } => format!("{}{}{}", show_value(left), op.text(), values.len()),
        }
    }

    #[test]
    fn precedence_not_and_or() {
        let cases = [
            (
                "any where a == 1 or b == 1 and c == 1",
                "(or aEq (and bEq cEq))",
            ),
            (
                "any where a == 1 and b == 1 or c == 1",
                "(or (and aEq bEq) cEq)",
            ),
            ("any where not a == 1 and b == 1", "(and (not aEq) bEq)"),
            ("any where not (a == 1 and b == 1)", "(not (and aEq bEq))"),
            ("any where not not a == 1", "(not (not aEq))"),
            (
                "any where (a == 1 or b == 1) and c == 1",
                "(and (or aEq bEq) cEq)",
            ),
            ("any where a not in (1, 2)", "a!in2"),
            ("any where not a in~ (\"x\")", "(not ain~1)"),
            (
                "any where a : (\"x\", \"y\") or a like~ \"z\"",
                "(or a:2 alike~1)",
            ),
            ("any where true", "true"),
            ("any where x.sequence == 1", "x.sequenceEq"),
            (
                "any where `a.b/c` == 1 and ?d.e != null",
                "(and a.b/cEq d.eNeq)",
            ),
            (
                "any where a regex~ \"x\" and a < 3 and a >= -2",
                "(and aregex~1 aLt aGe)",
            ),
        ];
        for (q, want) in cases {
            assert_eq!(show(&expr(q)), want, "{q}");
        }
    }

    #[test]
    fn optional_field_is_marked() {
        match expr("any where ?a.b == 1") {
            Expr::Compare {
                left: Value::Field(field),
                ..
            } => {
                assert!(field.optional);
                assert_eq!(field.path, "a.b");
                assert_eq!(field.span, Span::new(10, 14));
            }
            e => panic!("{e:?}"),
        }
    }

    #[test]
    fn category_and_sequence() {
        match parse("process where true").unwrap() {
            Statement::Event(e) => assert_eq!(e.category.as_deref(), Some("process")),
            s => panic!("{s:?}"),
        }
        match parse("sequence by a.b, ?c with maxspan=3s [process where true] [file where true] by d with runs=2 ![any where true] until [any where true]")
            .unwrap()
        {
            Statement::Sequence(q) => {
                let m = q.maxspan.as_ref().unwrap();
                assert_eq!((m.value, m.unit.as_str()), (3.0, "s"));
                assert_eq!(q.by.len(), 2);
                assert!(q.by[1].optional && !q.by[0].optional);
                assert_eq!(q.span.start, 0);
                assert_eq!(q.terms.len(), 3);
                assert_eq!(q.terms[1].runs, 2);
                assert_eq!(q.terms[1].by[0].path, "d");
                assert_eq!(q.terms[1].filter.category.as_deref(), Some("file"));
                assert!(q.terms[2].missing && !q.terms[0].missing);
                assert!(q.until.is_some());
            }
            s => panic!("{s:?}"),
        }
        // `with runs` before `by` is accepted too.
        match parse("sequence [any where true] with runs=3 by x").unwrap() {
            Statement::Sequence(q) => assert_eq!((q.terms[0].runs, q.terms[0].by.len()), (3, 1)),
            s => panic!("{s:?}"),
        }
    }

    #[test]
    fn errors_point_at_the_offending_token() {
        let cases: &[(&str, usize, &str)] = &[
            ("process where", 13, "expected a field"),
            ("process a == 1", 8, "expected `where`"),
            ("process where a == 1 b == 2", 21, "expected `and`, `or`"),
            ("process where (a == 1", 21, "expected `)`"),
            ("process where a", 14, "a field alone"),
            ("process where a = 1", 16, "use `==`"),
            ("process where a == b", 19, "comparing two fields"),
            ("process where 1 == a", 14, "left side"),
            ("process where a + 1 == 2", 16, "arithmetic"),
            (
                "process where length(a + 1) > 2",
                23,
                "arithmetic operators",
            ),
            ("process where length(a > 2", 23, "expected `,` or `)`"),
            ("process where length(a", 20, "unclosed `(`"),
            ("process where f(a,) == 1", 18, "a field, a literal"),
            ("process where length(a) == b", 27, "comparing two fields"),
            ("process where f~ == 1", 14, "unexpected `f~`"),
            ("process where a in ()", 20, "expected a literal"),
            ("process where a in (\"x\",)", 24, "expected a literal"),
            ("process where a == 1 | head 1", 21, "pipes"),
            ("process where a[0] == 1", 15, "array indexes"),
            ("process where a == 1 == 2", 21, "chained"),
            ("join [a where true] [b where true]", 0, "joins"),
            ("sequence [a where true]", 0, "at least two"),
            (
                "sequence with maxspan=1s by a [a where true] [b where true]",
                25,
                "before",
            ),
            (
                "sequence [a where true] with runs=0 [b where true]",
                34,
                "from 1 to 100",
            ),
            ("sequence [a where true] with runs=101", 34, "from 1 to 100"),
            (
                "sequence [a where true] [b where true] until ![c where true]",
                45,
                "until",
            ),
            ("sequence by a", 13, "sequence term"),
            ("process where a : b", 18, "comparing two fields"),
            ("process where \"x\"", 14, "not a condition"),
        ];
        for (q, at, msg) in cases {
            let e = parse(q).unwrap_err();
            assert_eq!(e.span.start, *at, "{q}: {e:?}");
            assert!(e.message.contains(msg), "{q}: {}", e.message);
        }
    }

    #[test]
    fn function_calls_parse_anywhere_a_value_goes() {
        let cases = [
            (
                "any where startsWith~(process.name, \"py\")",
                "startsWith~(process.name,Str(\"py\"))",
            ),
            (
                "any where length(a) > 50 and not endswith(b, c)",
                "(and length(a)Gt (not endswith(b,c)))",
            ),
            (
                "any where substring(a, 0, -2) : \"py*\"",
                "substring(a,Int(0),Int(-2)):1",
            ),
            ("any where a == string(1)", "aEq"),
            (
                "any where f(g(h(?x)), true, null, 1.5) not in (1)",
                "f(g(h(x)),Bool(true),Null,Float(1.5))!in1",
            ),
            ("any where f() == 1", "f()Eq"),
        ];
        for (q, want) in cases {
            assert_eq!(show(&expr(q)), want, "{q}");
        }
        match expr("any where  between~( a , \"x\",\"y\")") {
            Expr::Call(c) => {
                assert!(c.ci);
                assert_eq!(c.name_span, Span::new(11, 19));
                assert_eq!(c.span, Span::new(11, 33));
            }
            e => panic!("{e:?}"),
        }
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        let q = format!("any where {}a == 1{}", "(".repeat(5000), ")".repeat(5000));
        assert!(parse(&q).unwrap_err().message.contains("too deeply"));
        let q = format!("any where {}a == 1", "not ".repeat(5000));
        assert!(parse(&q).unwrap_err().message.contains("too deeply"));
        let q = format!("any where {}a{}", "f(".repeat(5000), ")".repeat(5000));
        assert!(parse(&q).unwrap_err().message.contains("too deeply"));
    }
}
