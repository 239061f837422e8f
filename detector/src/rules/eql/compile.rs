//! Resolves fields against a [`Schema`], checks types and builds the matcher tree.

use regex::RegexBuilder;

use super::QueryError;
use super::ast::*;
use super::func::{self, Ctx, Func, Script, Ty, VExpr};
use super::lexer::Span;
use super::lucene;
use super::matcher::{Node, Num, StrMatcher, Test};
use super::value::Val;
use super::wildcard::{fold_str, has_wildcards};
use crate::ecs::field::{FieldDef, FieldType, Schema};

/// Largest compiled regex program accepted, so a hostile pattern cannot eat memory.
const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// How a field reference resolved.
enum Slot {
    Field(FieldDef),
    /// `?field` that the schema does not know: always missing.
    Absent,
}

/// Compiles a parsed single-event statement; a sequence is refused here (the loader
/// compiles it with [`crate::rules::sequence::compile_sequence`]).
pub fn compile(stmt: &Statement, schema: &dyn Schema) -> Result<Node, QueryError> {
    let q = match stmt {
        Statement::Event(q) => q,
        Statement::Sequence(seq) => {
            let events: usize = seq.terms.iter().map(|t| t.runs).sum();
            let mut what = format!("a sequence of {events} events");
            if !seq.by.is_empty() {
                let keys: Vec<&str> = seq.by.iter().map(|f| f.path.as_str()).collect();
                what.push_str(&format!(" joined by {}", keys.join(", ")));
            }
            if let Some(m) = &seq.maxspan {
                what.push_str(&format!(" within maxspan={}{}", m.value, m.unit));
            }
            if seq.until.is_some() {
                what.push_str(" with an `until` condition");
            }
            return Err(QueryError::new(
                Span::new(seq.span.start, seq.span.start + "sequence".len()),
                format!(
                    "sequences are not supported by the single-event engine: it evaluates one event at a time ({what}); load the rule as a sequence rule"
                ),
            ));
        }
    };
    filter(q, schema, false)
}

/// Compiles one event filter: `any where …`, or `<category> where …` as Elasticsearch
/// does it, a term filter `event.category == "<category>"` (any element of the array)
/// joined to the condition. With `any_category` false only `process` is accepted (the
/// single-event engine sees process events only); sequences pass true, and `run` refuses
/// terms the sensor cannot produce from [`crate::rules::sequence::SequenceQuery::terms`].
pub(crate) fn filter(
    q: &EventQuery,
    schema: &dyn Schema,
    any_category: bool,
) -> Result<Node, QueryError> {
    let body = expr(&q.expr, schema)?;
    match q.category.as_deref() {
        None => Ok(body),
        Some(cat) if cat == "process" || any_category => {
            let Some(def) = schema.resolve("event.category") else {
                return Err(QueryError::new(
                    q.category_span,
                    format!(
                        "`{cat} where` needs the `event.category` field, which this schema lacks"
                    ),
                ));
            };
            let cat = Node::Test(
                def.id,
                Test::Str(StrMatcher::new(false, vec![cat.into()], vec![], None)),
            );
            let mut parts = vec![cat];
            match body {
                Node::And(v) => parts.extend(v.into_vec()),
                other => parts.push(other),
            }
            Ok(Node::And(parts.into_boxed_slice()))
        }
        Some(other) => Err(QueryError::new(
            q.category_span,
            format!(
                "event category `{other}` is not supported: this engine sees only process events (use `process where` or `any where`)"
            ),
        )),
    }
}

fn resolve(f: &FieldRef, schema: &dyn Schema) -> Result<Slot, QueryError> {
    match schema.resolve(&f.path) {
        Some(def) => Ok(Slot::Field(def)),
        None if f.optional => Ok(Slot::Absent),
        None => Err(QueryError::new(
            f.span,
            format!(
                "unknown field `{}` (not in the ECS schema); write `?{}` if it may be absent",
                f.path, f.path
            ),
        )),
    }
}

fn type_name(t: FieldType) -> &'static str {
    match t {
        FieldType::Keyword => "keyword",
        FieldType::Long => "long",
        FieldType::Boolean => "boolean",
        FieldType::Date => "date",
    }
}

fn mismatch(f: &FieldRef, ty: FieldType, lit: &Lit) -> QueryError {
    QueryError::new(
        lit.span,
        format!(
            "cannot compare {} field `{}` with {}",
            type_name(ty),
            f.path,
            lit.value.kind()
        ),
    )
}

/// Wraps a positive test for a resolved slot; an absent field makes it false.
fn leaf(
    slot: &Slot,
    test: impl FnOnce(FieldDef) -> Result<Test, QueryError>,
) -> Result<Node, QueryError> {
    match slot {
        Slot::Field(def) => Ok(Node::Test(def.id, test(*def)?)),
        Slot::Absent => Ok(Node::Const(false)),
    }
}

fn not(n: Node) -> Node {
    match n {
        Node::Const(b) => Node::Const(!b),
        n => Node::Not(Box::new(n)),
    }
}

fn expr(e: &Expr, schema: &dyn Schema) -> Result<Node, QueryError> {
    Ok(cond(e, schema)?.0)
}

/// A compiled condition, and whether it is a function condition that folded to `null`
/// (`startsWith(process.name, null)`): false, and false under `not` too, as Elasticsearch's
/// optimizer folds `not null` to `null` and drops the filter.
fn cond(e: &Expr, schema: &dyn Schema) -> Result<(Node, bool), QueryError> {
    Ok((
        match e {
            Expr::Not(inner) => {
                return Ok(match cond(inner, schema)? {
                    (_, true) => (Node::Const(false), true),
                    (n, false) => (not(n), false),
                });
            }
            Expr::Call(c) => return call_cond(c, schema),
            Expr::Compare {
                left: Value::Call(c),
                op,
                right,
                ..
            } => return call_compare(c, *op, right, schema),
            Expr::In {
                left: Value::Call(c),
                ci,
                negated,
                values,
                op_span,
            } => return call_in(c, *ci, *negated, values, *op_span, schema),
            Expr::Match {
                left: Value::Call(c),
                op,
                values,
                op_span,
            } => return call_match(c, *op, values, *op_span, schema),
            other => plain(other, schema)?,
        },
        false,
    ))
}

/// Conditions without function calls on their left.
fn plain(e: &Expr, schema: &dyn Schema) -> Result<Node, QueryError> {
    Ok(match e {
        Expr::Bool(b) => Node::Const(*b),
        Expr::Not(inner) => not(expr(inner, schema)?),
        Expr::And(v) => {
            let mut parts = Vec::with_capacity(v.len());
            for x in v {
                match expr(x, schema)? {
                    Node::And(inner) => parts.extend(inner.into_vec()),
                    n => parts.push(n),
                }
            }
            Node::And(parts.into_boxed_slice())
        }
        Expr::Or(v) => {
            let mut parts = Vec::with_capacity(v.len());
            for x in v {
                match expr(x, schema)? {
                    Node::Or(inner) => parts.extend(inner.into_vec()),
                    n => parts.push(n),
                }
            }
            Node::Or(parts.into_boxed_slice())
        }
        Expr::Compare {
            left: Value::Field(field),
            op,
            right,
            ..
        } => compare(field, *op, &constant(right, schema)?, schema)?,
        Expr::In {
            left: Value::Field(field),
            ci,
            negated,
            values,
            op_span,
        } => {
            let n = in_list(field, *ci, values, *op_span, schema)?;
            if *negated { not(n) } else { n }
        }
        Expr::Match {
            left: Value::Field(field),
            op,
            values,
            op_span,
        } => pattern(field, *op, values, *op_span, schema)?,
        Expr::Compare { left, .. } | Expr::In { left, .. } | Expr::Match { left, .. } => {
            return Err(QueryError::new(
                left.span(),
                "the left side of a comparison must be a field or a function call",
            ));
        }
        Expr::Call(_) => unreachable!("handled by `cond`"),
    })
}

/// The right side of a comparison as a literal: a literal, or a call folded to one.
fn constant(v: &Value, schema: &dyn Schema) -> Result<Lit, QueryError> {
    match v {
        Value::Lit(l) => Ok(l.clone()),
        Value::Call(c) => match Ctx::new(schema).call(c)?.0 {
            VExpr::Const(v) => Ok(func::val_lit(v, c.span)),
            _ => Err(QueryError::new(
                c.span,
                "the right side of a comparison must be a constant: comparisons against fields are not supported",
            )),
        },
        Value::Field(f) => Err(QueryError::new(
            f.span,
            "comparing two fields is not supported; compare a field with a literal",
        )),
    }
}

/// A condition leaf on function results: folded when constant (a null result is flagged,
/// see [`cond`]), else a [`Script`].
fn script(ctx: Ctx<'_>, e: VExpr) -> (Node, bool) {
    match func::fold_const(e) {
        VExpr::Const(Val::Bool(b)) => (Node::Const(b), false),
        VExpr::Const(_) => (Node::Const(false), true),
        e => (
            Node::Script(Box::new(Script::new(e, ctx.into_fields()))),
            false,
        ),
    }
}

fn negate((n, null): (Node, bool)) -> (Node, bool) {
    if null {
        (Node::Const(false), true)
    } else {
        (not(n), false)
    }
}

fn call_text(c: &Call) -> String {
    format!("{}{}(…)", c.name, if c.ci { "~" } else { "" })
}

/// `startsWith(field, "lit")`, `endsWith(field, "lit")`, `stringContains(field, "lit")` as
/// the prefix and wildcard queries Elasticsearch pushes them down to
/// (`ExpressionTranslators.Scalars.doKnownTranslate`, EQL `QueryTranslator`): any element of
/// a multi-valued field matches, the rule index can key on the literal. Like
/// Elasticsearch's wildcard query built from the unescaped literal, `*` and `?` in an
/// `endsWith` / `stringContains` literal are wildcards, and `stringContains(field, "")`
/// matches any value. `None` when the call does not have that shape (then it runs as a
/// [`Script`], with the same results); literals with a backslash (an escape in Lucene's
/// wildcard syntax) are left to the script too.
fn pushdown(c: &Call, schema: &dyn Schema) -> Option<Node> {
    let f = Func::lookup(&c.name)?;
    let [Value::Field(field), Value::Lit(lit)] = c.args.as_slice() else {
        return None;
    };
    let LitValue::Str(text) = &lit.value else {
        return None;
    };
    let def = schema.resolve(&field.path)?;
    if def.ty != FieldType::Keyword || text.contains('\\') {
        return None;
    }
    let pat = match f {
        Func::StartsWith if !has_wildcards(text) => format!("{text}*"),
        Func::EndsWith => format!("*{text}"),
        Func::StringContains => format!("*{text}*"),
        _ => return None,
    };
    Some(Node::Test(
        def.id,
        Test::Str(StrMatcher::new(c.ci, vec![], vec![pat], None)),
    ))
}

/// A boolean function used as a condition.
fn call_cond(c: &Call, schema: &dyn Schema) -> Result<(Node, bool), QueryError> {
    let mut ctx = Ctx::new(schema);
    let (e, ty) = ctx.call(c)?;
    if ty != Ty::Bool {
        return Err(QueryError::new(
            c.span,
            format!(
                "`{}` returns {}, not a condition; compare it with a value",
                call_text(c),
                ty.describe()
            ),
        ));
    }
    if !matches!(e, VExpr::Const(_))
        && let Some(n) = pushdown(c, schema)
    {
        return Ok((n, false));
    }
    Ok(script(ctx, e))
}

fn lit_ty(l: &Lit) -> Ty {
    match l.value {
        LitValue::Str(_) => Ty::Str,
        LitValue::Int(_) | LitValue::Float(_) => Ty::Num,
        LitValue::Bool(_) => Ty::Bool,
        LitValue::Null => Ty::Null,
    }
}

fn call_mismatch(c: &Call, ty: Ty, l: &Lit) -> QueryError {
    QueryError::new(
        l.span,
        format!(
            "cannot compare `{}` ({}) with {}",
            call_text(c),
            ty.describe(),
            l.value.kind()
        ),
    )
}

/// `call <op> constant`; `!=` is `not ==`, as Elasticsearch parses it.
fn call_compare(
    c: &Call,
    op: CmpOp,
    right: &Value,
    schema: &dyn Schema,
) -> Result<(Node, bool), QueryError> {
    let mut ctx = Ctx::new(schema);
    let (l, ty) = ctx.call(c)?;
    let lit = constant(right, schema)?;
    if lit.value == LitValue::Null {
        let is_null = VExpr::IsNull(Box::new(l));
        return match op {
            CmpOp::Eq => Ok(script(ctx, is_null)),
            CmpOp::Neq => Ok(negate(script(ctx, is_null))),
            _ => Err(QueryError::new(
                lit.span,
                "null can only be compared with `==` or `!=`",
            )),
        };
    }
    let rty = lit_ty(&lit);
    if ty != Ty::Null && ty != rty {
        return Err(call_mismatch(c, ty, &lit));
    }
    if rty == Ty::Bool && !matches!(op, CmpOp::Eq | CmpOp::Neq) {
        return Err(QueryError::new(
            lit.span,
            "booleans can only be compared with `==` or `!=`",
        ));
    }
    let r = func::lit_val(&lit.value);
    Ok(if op == CmpOp::Neq {
        negate(script(ctx, VExpr::Cmp(CmpOp::Eq, Box::new(l), r)))
    } else {
        script(ctx, VExpr::Cmp(op, Box::new(l), r))
    })
}

/// `call [not] in[~] (…)`.
fn call_in(
    c: &Call,
    ci: bool,
    negated: bool,
    values: &[Lit],
    op_span: Span,
    schema: &dyn Schema,
) -> Result<(Node, bool), QueryError> {
    no_null(values)?;
    let mut ctx = Ctx::new(schema);
    let (l, ty) = ctx.call(c)?;
    let e = match ty {
        Ty::Null => VExpr::Const(Val::Null),
        Ty::Str => {
            let mut exact = Vec::with_capacity(values.len());
            for v in values {
                match &v.value {
                    LitValue::Str(s) => {
                        exact.push(if ci { fold_str(s) } else { s.clone() }.into_boxed_str())
                    }
                    _ => return Err(call_mismatch(c, ty, v)),
                }
            }
            VExpr::StrTest(Box::new(l), StrMatcher::new(ci, exact, vec![], None))
        }
        _ => {
            if ci {
                return Err(QueryError::new(
                    op_span,
                    format!(
                        "`in~` needs a string; `{}` returns {}",
                        call_text(c),
                        ty.describe()
                    ),
                ));
            }
            let mut list = Vec::with_capacity(values.len());
            for v in values {
                if lit_ty(v) != ty {
                    return Err(call_mismatch(c, ty, v));
                }
                list.push(func::lit_val(&v.value));
            }
            VExpr::InList(Box::new(l), list.into_boxed_slice())
        }
    };
    let n = script(ctx, e);
    Ok(if negated { negate(n) } else { n })
}

/// `call :|like|like~|regex|regex~ pattern(s)`.
fn call_match(
    c: &Call,
    op: MatchOp,
    values: &[Lit],
    op_span: Span,
    schema: &dyn Schema,
) -> Result<(Node, bool), QueryError> {
    let strs = pattern_strs(op, values)?;
    let mut ctx = Ctx::new(schema);
    let (l, ty) = ctx.call(c)?;
    let e = match ty {
        Ty::Null => VExpr::Const(Val::Null),
        Ty::Str => VExpr::StrTest(Box::new(l), str_matcher(op, &strs)?),
        _ => {
            return Err(QueryError::new(
                op_span,
                format!(
                    "`{}` needs a string; `{}` returns {}",
                    op.text(),
                    call_text(c),
                    ty.describe()
                ),
            ));
        }
    };
    Ok(script(ctx, e))
}

fn compare(f: &FieldRef, op: CmpOp, lit: &Lit, schema: &dyn Schema) -> Result<Node, QueryError> {
    let slot = resolve(f, schema)?;
    if lit.value == LitValue::Null {
        let is_null = match &slot {
            Slot::Field(def) => Node::Test(def.id, Test::IsNull),
            Slot::Absent => Node::Const(true),
        };
        return match op {
            CmpOp::Eq => Ok(is_null),
            CmpOp::Neq => Ok(not(is_null)),
            _ => Err(QueryError::new(
                lit.span,
                "null can only be compared with `==` or `!=`",
            )),
        };
    }
    // `!=` is the negation of `==`: true when no element equals, or the field is missing.
    let (pos_op, negate) = if op == CmpOp::Neq {
        (CmpOp::Eq, true)
    } else {
        (op, false)
    };
    let n = leaf(&slot, |def| match (def.ty, &lit.value) {
        (FieldType::Keyword | FieldType::Date, LitValue::Str(s)) => Ok(if pos_op == CmpOp::Eq {
            Test::Str(StrMatcher::new(
                false,
                vec![s.as_str().into()],
                vec![],
                None,
            ))
        } else {
            Test::StrCmp(pos_op, s.as_str().into())
        }),
        (FieldType::Long, LitValue::Int(n)) => Ok(Test::NumCmp(pos_op, Num::Int(*n))),
        (FieldType::Long, LitValue::Float(x)) => Ok(Test::NumCmp(pos_op, Num::Float(*x))),
        (FieldType::Boolean, LitValue::Bool(b)) if pos_op == CmpOp::Eq => Ok(Test::Bool(*b)),
        (FieldType::Boolean, LitValue::Bool(_)) => Err(QueryError::new(
            lit.span,
            format!(
                "boolean field `{}` can only be compared with `==` or `!=`",
                f.path
            ),
        )),
        (ty, _) => Err(mismatch(f, ty, lit)),
    })?;
    Ok(if negate { not(n) } else { n })
}

fn no_null(values: &[Lit]) -> Result<(), QueryError> {
    match values.iter().find(|l| l.value == LitValue::Null) {
        Some(l) => Err(QueryError::new(
            l.span,
            "null is not allowed in a list; use `field == null`",
        )),
        None => Ok(()),
    }
}

fn in_list(
    f: &FieldRef,
    ci: bool,
    values: &[Lit],
    op_span: Span,
    schema: &dyn Schema,
) -> Result<Node, QueryError> {
    no_null(values)?;
    let slot = resolve(f, schema)?;
    if let Slot::Field(FieldDef {
        id,
        ty: FieldType::Boolean,
    }) = slot
    {
        if ci {
            return Err(QueryError::new(
                op_span,
                format!("`in~` needs a keyword field; `{}` is boolean", f.path),
            ));
        }
        let mut alts = Vec::new();
        for l in values {
            match l.value {
                LitValue::Bool(b) => alts.push(Node::Test(id, Test::Bool(b))),
                _ => return Err(mismatch(f, FieldType::Boolean, l)),
            }
        }
        return Ok(Node::Or(alts.into_boxed_slice()));
    }
    leaf(&slot, |def| match def.ty {
        FieldType::Keyword | FieldType::Date => {
            let mut exact = Vec::with_capacity(values.len());
            for l in values {
                match &l.value {
                    LitValue::Str(s) => {
                        exact.push(if ci { fold_str(s) } else { s.clone() }.into_boxed_str())
                    }
                    _ => return Err(mismatch(f, def.ty, l)),
                }
            }
            Ok(Test::Str(StrMatcher::new(ci, exact, vec![], None)))
        }
        FieldType::Long => {
            if ci {
                return Err(QueryError::new(
                    op_span,
                    format!("`in~` needs a keyword field; `{}` is long", f.path),
                ));
            }
            let mut ns = Vec::with_capacity(values.len());
            for l in values {
                match l.value {
                    LitValue::Int(n) => ns.push(Num::Int(n)),
                    LitValue::Float(x) => ns.push(Num::Float(x)),
                    _ => return Err(mismatch(f, def.ty, l)),
                }
            }
            Ok(Test::NumIn(ns.into_boxed_slice()))
        }
        FieldType::Boolean => unreachable!("handled above"),
    })
}

fn pattern(
    f: &FieldRef,
    op: MatchOp,
    values: &[Lit],
    op_span: Span,
    schema: &dyn Schema,
) -> Result<Node, QueryError> {
    let slot = resolve(f, schema)?;
    let strs = pattern_strs(op, values)?;
    leaf(&slot, |def| {
        if def.ty != FieldType::Keyword {
            return Err(QueryError::new(
                op_span,
                format!(
                    "`{}` needs a keyword field; `{}` is {}",
                    op.text(),
                    f.path,
                    type_name(def.ty)
                ),
            ));
        }
        Ok(Test::Str(str_matcher(op, &strs)?))
    })
}

/// A pattern literal: text, span, where its content starts in the query.
type PatternLit<'a> = (&'a str, Span, Option<usize>);

fn pattern_strs(op: MatchOp, values: &[Lit]) -> Result<Vec<PatternLit<'_>>, QueryError> {
    let mut strs = Vec::with_capacity(values.len());
    for l in values {
        match &l.value {
            LitValue::Str(s) => strs.push((s.as_str(), l.span, l.content_start)),
            v => {
                return Err(QueryError::new(
                    l.span,
                    format!("`{}` needs a string pattern, found {}", op.text(), v.kind()),
                ));
            }
        }
    }
    Ok(strs)
}

/// The matcher of a `:` / `like` / `like~` / `regex` / `regex~` predicate.
fn str_matcher(op: MatchOp, strs: &[PatternLit<'_>]) -> Result<StrMatcher, QueryError> {
    match op {
        MatchOp::Colon | MatchOp::Like | MatchOp::LikeCi => {
            let ci = op != MatchOp::Like;
            let mut exact = Vec::new();
            let mut wild = Vec::new();
            for (s, _, _) in strs {
                if has_wildcards(s) {
                    wild.push(s.to_string());
                } else {
                    exact.push(if ci { fold_str(s) } else { s.to_string() }.into_boxed_str());
                }
            }
            Ok(StrMatcher::new(ci, exact, wild, None))
        }
        MatchOp::Regex | MatchOp::RegexCi => {
            let ci = op == MatchOp::RegexCi;
            let mut alts = Vec::with_capacity(strs.len());
            for (s, span, content) in strs {
                let t = lucene::translate(s, ci).map_err(|e| match content {
                    Some(c) => QueryError::new(
                        Span::new(c + e.offset, c + e.offset + 1),
                        format!("regex: {}", e.message),
                    ),
                    None => QueryError::new(
                        *span,
                        format!(
                            "regex: {} (at offset {} of the pattern)",
                            e.message, e.offset
                        ),
                    ),
                })?;
                alts.push(t);
            }
            let re = RegexBuilder::new(&alts.join("|"))
                .size_limit(REGEX_SIZE_LIMIT)
                .build()
                .map_err(|e| {
                    QueryError::new(strs[0].1, format!("regex cannot be compiled: {e}"))
                })?;
            Ok(StrMatcher::new(ci, vec![], vec![], Some(re)))
        }
    }
}
