//! Sequence syntax: `sequence [by …] [with maxspan=…]`, its terms, `until`, join keys.

use super::*;

impl Parser<'_> {
    /// `sequence [by k, …] [with maxspan=N[unit]] term term+ [until term]`, as
    /// Elasticsearch's grammar (`sequence`, `sequenceTerm`): `by` before `with`, a term is
    /// `[filter]` or `![filter]` (a missing event) followed by `by keys` and
    /// `with runs=N` in either order.
    pub(super) fn sequence(&mut self) -> Result<Statement, QueryError> {
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
}
