//! The parsed form of an EQL query, before fields are resolved against a schema.

use super::lexer::Span;

/// A whole query statement.
#[derive(Clone, Debug, PartialEq)]
pub enum Statement {
    /// `<category> where <expr>` or `any where <expr>`.
    Event(EventQuery),
    /// `sequence …`: compiled by [`crate::rules::sequence`], refused by the single-event
    /// compiler.
    Sequence(SequenceAst),
}

/// `sequence [by k, …] [with maxspan=N unit] term term… [until term]`, as written.
#[derive(Clone, Debug, PartialEq)]
pub struct SequenceAst {
    /// The `sequence` keyword.
    pub span: Span,
    /// `sequence by …`: keys every term shares (they come first in the join key).
    pub by: Vec<FieldRef>,
    /// `with maxspan=N unit`.
    pub maxspan: Option<Maxspan>,
    /// The terms in order, `with runs=N` not yet expanded.
    pub terms: Vec<SequenceTerm>,
    /// `until [ … ] [by …]`.
    pub until: Option<SequenceTerm>,
}

/// A `maxspan` value as written.
#[derive(Clone, Debug, PartialEq)]
pub struct Maxspan {
    /// The number (`1.5` in `maxspan=1.5s`).
    pub value: f64,
    /// The unit as written (`ms`, `s`, `m`, `h`, `d`; empty for none).
    pub unit: String,
    /// From the number to the end of the unit.
    pub span: Span,
}

/// One `[filter] [with runs=N] [by keys]` term, or `![filter] [by keys]`.
#[derive(Clone, Debug, PartialEq)]
pub struct SequenceTerm {
    /// From `[` (or `!`) to the last token of the term.
    pub span: Span,
    pub filter: EventQuery,
    /// Per-term join keys, after the sequence's.
    pub by: Vec<FieldRef>,
    /// `with runs=N` (1 when absent).
    pub runs: usize,
    /// `![ … ]`: a missing-event term.
    pub missing: bool,
}

/// One event filter.
#[derive(Clone, Debug, PartialEq)]
pub struct EventQuery {
    /// `None` for `any`.
    pub category: Option<String>,
    pub category_span: Span,
    pub expr: Expr,
}

/// A boolean expression.
#[derive(Clone, Debug, PartialEq)]
pub enum Expr {
    And(Vec<Expr>),
    Or(Vec<Expr>),
    Not(Box<Expr>),
    /// `true` / `false` used as a condition.
    Bool(bool),
    /// `value <op> value`: the left a field or a function call, the right a constant (a
    /// literal, or a call the compiler folds to one; Elasticsearch refuses comparisons
    /// against fields).
    Compare {
        left: Value,
        op: CmpOp,
        right: Value,
        op_span: Span,
    },
    /// `value [not] in[~] (literal, …)`.
    In {
        left: Value,
        ci: bool,
        negated: bool,
        values: Vec<Lit>,
        op_span: Span,
    },
    /// `value :|like|like~|regex|regex~ literal-or-list`.
    Match {
        left: Value,
        op: MatchOp,
        values: Vec<Lit>,
        op_span: Span,
    },
    /// A function call used as a condition (`startsWith(process.name, "py")`).
    Call(Call),
}

/// A value expression: what a function argument or a comparison side can be.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Field(FieldRef),
    Lit(Lit),
    Call(Call),
}

impl Value {
    /// Where the expression is in the query.
    pub fn span(&self) -> Span {
        match self {
            Value::Field(f) => f.span,
            Value::Lit(l) => l.span,
            Value::Call(c) => c.span,
        }
    }
}

/// `name(arg, …)` or `name~(arg, …)` (case-insensitive variant).
#[derive(Clone, Debug, PartialEq)]
pub struct Call {
    /// As written (function names are case-insensitive, as in Elasticsearch).
    pub name: String,
    /// Written `name~(…)`.
    pub ci: bool,
    pub args: Vec<Value>,
    /// The name (and `~`).
    pub name_span: Span,
    /// The whole call, name to closing parenthesis.
    pub span: Span,
}

/// A field reference, dotted path joined.
#[derive(Clone, Debug, PartialEq)]
pub struct FieldRef {
    pub path: String,
    /// Written `?path`: an unknown field reads as missing instead of failing to compile.
    pub optional: bool,
    pub span: Span,
}

/// `==`, `!=`, `<`, `<=`, `>`, `>=`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CmpOp {
    Eq,
    Neq,
    Lt,
    Le,
    Gt,
    Ge,
}

/// The wildcard and regex predicates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MatchOp {
    /// `:` — case-insensitive wildcard.
    Colon,
    Like,
    LikeCi,
    Regex,
    RegexCi,
}

impl MatchOp {
    /// The operator as written.
    pub fn text(self) -> &'static str {
        match self {
            MatchOp::Colon => ":",
            MatchOp::Like => "like",
            MatchOp::LikeCi => "like~",
            MatchOp::Regex => "regex",
            MatchOp::RegexCi => "regex~",
        }
    }
}

/// A literal with its position.
#[derive(Clone, Debug, PartialEq)]
pub struct Lit {
    pub value: LitValue,
    pub span: Span,
    /// For strings written without escapes: where the value's first byte is in the query,
    /// so errors inside a pattern can point at the exact character.
    pub content_start: Option<usize>,
}

/// A literal's value (strings already unescaped).
#[derive(Clone, Debug, PartialEq)]
pub enum LitValue {
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    Null,
}

impl LitValue {
    /// What kind of literal, for error messages.
    pub fn kind(&self) -> &'static str {
        match self {
            LitValue::Str(_) => "a string",
            LitValue::Int(_) | LitValue::Float(_) => "a number",
            LitValue::Bool(_) => "a boolean",
            LitValue::Null => "null",
        }
    }
}
