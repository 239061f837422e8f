//! From the parsed `sequence` statement to a [`SequenceQuery`].

use super::{KeyField, SequenceQuery, Stage, TermCategory, TermInfo, TermKind};
use crate::ecs::field::Schema;
use crate::rules::eql::QueryError;
use crate::rules::eql::ast::{FieldRef, Maxspan, SequenceAst, SequenceTerm, Statement};
use crate::rules::eql::{compile, parser};

/// Parses and compiles a `sequence` query against `schema`. A single-event query is an
/// error here (use [`crate::rules::compile_query`]); [`is_sequence`] tells them apart.
pub fn compile_sequence(text: &str, schema: &dyn Schema) -> Result<SequenceQuery, QueryError> {
    match parser::parse(text)? {
        Statement::Sequence(seq) => compile_ast(&seq, schema),
        Statement::Event(q) => Err(QueryError::new(
            q.category_span,
            "not a sequence: a single-event query",
        )),
    }
}

/// Compiles a parsed sequence.
pub(crate) fn compile_ast(
    seq: &SequenceAst,
    schema: &dyn Schema,
) -> Result<SequenceQuery, QueryError> {
    let maxspan_ns = seq.maxspan.as_ref().map(maxspan).transpose()?;
    let key_len = seq.by.len() + seq.terms[0].by.len();
    let mut stages = Vec::new();
    let mut terms = Vec::new();
    for t in &seq.terms {
        check_key_count(seq, t, key_len)?;
        let info = term_info(
            t,
            if t.missing {
                TermKind::Missing
            } else {
                TermKind::Event
            },
        );
        for _ in 0..t.runs {
            stages.push(stage(seq, t, schema)?);
        }
        terms.push(info);
    }
    let positive = seq.terms.iter().filter(|t| !t.missing).count();
    if positive == 0 {
        return Err(QueryError::new(
            seq.span,
            "a sequence needs at least one term that is not a missing event (`![…]`)",
        ));
    }
    if seq.terms.iter().any(|t| t.missing) && maxspan_ns.is_none() {
        return Err(QueryError::new(
            seq.span,
            "a sequence with missing-event terms (`![…]`) needs `with maxspan=…`",
        ));
    }
    let until = match &seq.until {
        Some(t) => {
            check_key_count(seq, t, key_len)?;
            terms.push(term_info(t, TermKind::Until));
            Some(stage(seq, t, schema)?)
        }
        None => None,
    };
    let key_names = seq
        .by
        .iter()
        .chain(&seq.terms[0].by)
        .map(|f| f.path.clone())
        .collect();
    Ok(SequenceQuery {
        stages: stages.into_boxed_slice(),
        until,
        maxspan_ns,
        terms: terms.into_boxed_slice(),
        key_len,
        key_names,
    })
}

fn check_key_count(seq: &SequenceAst, t: &SequenceTerm, want: usize) -> Result<(), QueryError> {
    let have = seq.by.len() + t.by.len();
    if have != want {
        return Err(QueryError::new(
            t.span,
            format!(
                "inconsistent number of join keys: the first term has {want}, this one {have} (terms are joined by position)"
            ),
        ));
    }
    Ok(())
}

fn term_info(t: &SequenceTerm, kind: TermKind) -> TermInfo {
    TermInfo {
        category: match &t.filter.category {
            None => TermCategory::Any,
            Some(c) => TermCategory::Named(c.clone()),
        },
        category_span: t.filter.category_span,
        span: t.span,
        kind,
        runs: t.runs,
    }
}

fn stage(seq: &SequenceAst, t: &SequenceTerm, schema: &dyn Schema) -> Result<Stage, QueryError> {
    let mut filter = compile::filter(&t.filter, schema, true)?;
    filter.order_by_cost();
    let keys = seq
        .by
        .iter()
        .chain(&t.by)
        .map(|f| key_field(f, schema))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Stage {
        filter,
        keys: keys.into_boxed_slice(),
        missing: t.missing,
    })
}

fn key_field(f: &FieldRef, schema: &dyn Schema) -> Result<KeyField, QueryError> {
    match schema.resolve(&f.path) {
        Some(def) => Ok(KeyField {
            field: Some(def.id),
            optional: f.optional,
        }),
        None if f.optional => Ok(KeyField {
            field: None,
            optional: true,
        }),
        None => Err(QueryError::new(
            f.span,
            format!(
                "unknown join key field `{}` (not in the ECS schema); write `?{}` if it may be absent",
                f.path, f.path
            ),
        )),
    }
}

/// `maxspan` in nanoseconds: a positive number with a unit of `ms`, `s`, `m`, `h` or `d`
/// (Elasticsearch's time units for EQL; fractions such as `0.5s` are allowed).
fn maxspan(m: &Maxspan) -> Result<i64, QueryError> {
    let unit: f64 = match m.unit.as_str() {
        "ms" => 1e6,
        "s" => 1e9,
        "m" => 60e9,
        "h" => 3600e9,
        "d" => 86400e9,
        "" => {
            return Err(QueryError::new(
                m.span,
                "`maxspan` needs a time unit: ms, s, m, h or d",
            ));
        }
        u => {
            return Err(QueryError::new(
                m.span,
                format!("unknown time unit `{u}` in `maxspan`; use ms, s, m, h or d"),
            ));
        }
    };
    let ns = m.value * unit;
    if !(ns >= 1.0 && ns < i64::MAX as f64) {
        return Err(QueryError::new(
            m.span,
            "`maxspan` must be positive and at most a few centuries",
        ));
    }
    Ok(ns.round() as i64)
}

/// Whether `text` is a sequence query (its first token is `sequence`), without compiling.
pub fn is_sequence(text: &str) -> bool {
    crate::rules::eql::lexer::tokenize(text)
        .ok()
        .and_then(|t| t.into_iter().next())
        .is_some_and(|t| t.tok == crate::rules::eql::lexer::Tok::Sequence)
}
