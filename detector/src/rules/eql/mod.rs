//! EQL (Elastic's Event Query Language) for single-event queries, with Elasticsearch's
//! semantics: lexer → parser → compiler → allocation-free matcher.
//!
//! Supported: `process where` and `any where` filters; `==`, `!=` (case-sensitive exact),
//! `<`, `<=`, `>`, `>=` (numbers on long fields, byte order on keyword/date fields), `:`
//! (case-insensitive wildcard), `like` / `like~`, `in` / `in~` / `not in`, `regex` /
//! `regex~` (Lucene syntax, full match), value lists, `not` > `and` > `or`, parentheses,
//! comments, escapes, raw strings, booleans, numbers, `null`, `?optional` fields, and every
//! EQL function of Elasticsearch with its `~` forms ([`func`]), as a condition
//! (`startsWith~(process.name, "py")`) or on the left of a comparison or predicate
//! (`length(process.command_line) > 50`, `substring(process.name, 0, 2) : "py"`).
//! Sequences parse here and compile in [`crate::rules::sequence`] (any event category in
//! their terms); a single-event query refuses them.
//! Rejected with a reason and position: other event categories (this engine only sees
//! process events), joins, samples, pipes, arithmetic operators (the functions
//! `add`, … are supported), comparisons against fields (as in Elasticsearch), array indexes.

pub mod ast;
pub(crate) mod compile;
pub(crate) mod digits;
pub mod func;
#[cfg(test)]
mod func_tests;
pub mod lexer;
pub(crate) mod lucene;
pub mod matcher;
pub mod parser;
mod strfn;
pub mod value;
pub mod wildcard;

use crate::ecs::field::{Document, Schema};
pub use lexer::Span;

/// A query error: byte span within the query text and the reason.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message} (at byte {})", span.start)]
pub struct QueryError {
    pub span: Span,
    pub message: String,
}

impl QueryError {
    /// An error covering `span` of the query.
    pub fn new(span: Span, message: impl Into<String>) -> Self {
        QueryError {
            span,
            message: message.into(),
        }
    }
}

/// A compiled query, ready to evaluate documents of the schema it was compiled against.
#[derive(Debug)]
pub struct CompiledQuery {
    pub(crate) root: matcher::Node,
}

impl CompiledQuery {
    /// Whether `doc` matches. Never allocates.
    #[inline]
    pub fn matches(&self, doc: &dyn Document) -> bool {
        self.root.eval(doc)
    }
}

/// Parses and compiles `text` against `schema`.
/// The operands of `and` / `or` are put cheapest first ([`matcher::Node::order_by_cost`]).
pub fn compile_query(text: &str, schema: &dyn Schema) -> Result<CompiledQuery, QueryError> {
    let mut q = compile_query_as_written(text, schema)?;
    q.root.order_by_cost();
    Ok(q)
}

/// [`compile_query`] keeping the operands in written order (tests of the reordering).
pub(crate) fn compile_query_as_written(
    text: &str,
    schema: &dyn Schema,
) -> Result<CompiledQuery, QueryError> {
    let stmt = parser::parse(text)?;
    let root = compile::compile(&stmt, schema)?;
    Ok(CompiledQuery { root })
}
