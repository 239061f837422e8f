//! EQL sequences with Elasticsearch's semantics, evaluated as events stream in.
//!
//! ```text
//! query text ──compile_sequence──► SequenceQuery (stages, keys, maxspan, until)
//!                                        │ Arc
//! events in @timestamp order ──► SequenceEngine::on_event ──► SequenceMatch { rule, events, join_key }
//!                                        └── expire(now) / stats(): bounded pending state
//! ```
//!
//! # Syntax
//! `sequence [by k1, k2…] [with maxspan=N(ms|s|m|h|d)] term term… [until term]`, where a term
//! is `[category where cond] [by k…] [with runs=N]` or a missing-event term
//! `![category where cond] [by k…]`. Keys may be `?optional`. Per-term keys follow the
//! sequence's keys, and the join key of an event at a term is the values of
//! (sequence keys ++ term keys) in order: terms are joined *positionally*, so every term
//! must have the same number of keys (as in Elasticsearch). `with runs=N` stands for N
//! copies of the term (N ≤ 100). A term's category is a filter on `event.category` (any
//! element equal, case-sensitive), `any` none; see [`SequenceQuery::terms`] for what the
//! caller may refuse (the live sensor produces process events only).
//!
//! # Matching semantics (Elasticsearch's `SequenceMatcher`, streaming form)
//! Elasticsearch keeps, per join key and per stage, the in-flight sequences; a hit at stage
//! `s` takes the *latest* sequence of stage `s-1` ordered before it and drops every older
//! one (`OrdinalGroup::trimBefore`). Over a stream in `@timestamp` order that is exactly
//! "one pending sequence per key per stage": a newer match at stage `s-1` replaces the
//! pending one, and a sequence advancing to stage `s` overrides the one pending there.
//! - Events are ordered by `(@timestamp, arrival)`: the caller feeds them in timestamp
//!   order (a reorder window) and arrival breaks ties, like Elasticsearch's tiebreaker. An
//!   event never follows itself: it is offered to the stages last to first, so one event
//!   advances each pending sequence by at most one stage.
//! - `maxspan`: from the first event to the last, inclusive (`last - first <= maxspan`;
//!   Elasticsearch rejects when the delta is greater). A too-old pending sequence taken by a
//!   hit is dropped with the older ones, as in Elasticsearch.
//! - `until`: an event matching the until term with key K drops every pending sequence of
//!   K, including one the same event has just advanced (Elasticsearch's
//!   `Ordinal::between` is inclusive at the sequence's last event); sequences it completed
//!   stand.
//! - Join keys: a missing (null) value of a non-optional key removes the event from that
//!   term (Elasticsearch filters non-optional keys on non-null, #79677); an `?optional`
//!   key's null is a value that equals null. Values compare exactly: case-sensitive
//!   strings, longs, booleans; a string never equals a number. A multi-valued key compares
//!   as the whole list (a one-element list as its element).
//! - Missing events `![…]` (Elasticsearch 8.x; `maxspan` required): a candidate matches only
//!   if no event of that term with the same join key lies strictly between its positive
//!   neighbours; a leading one looks back from the first positive event to `last - maxspan`,
//!   a trailing one looks forward from the last positive event to `first + maxspan`, so a
//!   sequence ending in a missing term is reported once that time has passed
//!   ([`SequenceEngine::expire`]).
//!
//! # Cost
//! [`SequenceEngine::build_index`] puts every term filter of every rule into one rule index
//! (the single-event engine's), so an event costs one indexed pass, not every filter of
//! every rule; [`SequenceEngine::may_match_probe`] lets the caller skip building documents
//! no rule, single-event or sequence, can match. What an event hits depends on the event
//! alone: [`SequenceEngine::hits`] computes it (terms and encoded join keys) when the event
//! arrives, and [`SequenceEngine::on_hits`] applies it in `@timestamp` order, so a caller
//! that reorders events need not keep their documents, and an event hitting nothing
//! (or only with a null non-optional key) need not be fed at all. Call [`SequenceEngine::expire`] on a
//! timer: it also prunes the history of missing-event terms.
//!
//! # Bounded state
//! Pending sequences expire with `maxspan` (or [`SequenceLimits::max_age_ns`] without one);
//! at most [`SequenceLimits::per_rule`] per rule and [`SequenceLimits::total`] overall are
//! kept, the oldest (by first event) evicted first. Every eviction is counted in
//! [`SequenceStats`]: it is loss the caller reports. A pending sequence costs its join key,
//! one handle and one timestamp per matched event, and ~100 bytes of bookkeeping
//! ([`SequenceEngine::approx_bytes`]).

mod compile;
mod engine;
mod key;
#[cfg(test)]
mod tests;

pub use compile::{compile_sequence, is_sequence};
pub use engine::{SequenceEngine, SequenceLimits, SequenceMatch, SequenceStats, TermHits, TermRef};
pub use key::KeyValue;

use super::eql::lexer::Span;
use super::eql::matcher::Node;
use crate::ecs::field::{Document, FieldId};

/// A compiled sequence query, shared (`Arc`) between the rule that owns it and the engine.
#[derive(Debug)]
pub struct SequenceQuery {
    /// `with runs=N` expanded: one stage per event position, missing-event stages included.
    pub(crate) stages: Box<[Stage]>,
    pub(crate) until: Option<Stage>,
    /// `None`: no maxspan (the engine bounds age with [`SequenceLimits::max_age_ns`]).
    pub(crate) maxspan_ns: Option<i64>,
    /// The terms as written, for callers that check categories.
    pub(crate) terms: Box<[TermInfo]>,
    /// Number of values in every join key.
    pub(crate) key_len: usize,
    /// The join keys' field names (sequence keys, then the first term's).
    pub(crate) key_names: Box<[String]>,
    /// The parsed query, from which [`SequenceEngine::build_index`] compiles the engine's
    /// own copy of every filter for the shared rule index.
    pub(crate) ast: crate::rules::eql::ast::SequenceAst,
}

/// One stage of a compiled sequence: a filter and its join key fields.
#[derive(Debug)]
pub(crate) struct Stage {
    pub(crate) filter: Node,
    pub(crate) keys: Box<[KeyField]>,
    pub(crate) missing: bool,
}

/// A join-key field of one term.
#[derive(Clone, Copy, Debug)]
pub(crate) struct KeyField {
    /// `None`: an `?optional` field the schema does not know (always null).
    pub(crate) field: Option<FieldId>,
    /// Written `?field`: null is a value; otherwise null drops the event from the term.
    pub(crate) optional: bool,
}

impl Stage {
    /// Whether `doc` matches this stage's filter (keys not checked).
    #[inline]
    pub(crate) fn matches(&self, doc: &dyn Document) -> bool {
        self.filter.eval(doc)
    }
}

/// The event category a term filters on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TermCategory {
    /// `any where`: every event.
    Any,
    /// `<name> where`: events whose `event.category` holds `name` (`process`, `file`,
    /// `network`, …).
    Named(String),
}

impl TermCategory {
    /// Whether a sensor that only produces events of `categories` can ever match it.
    pub fn producible_by(&self, categories: &[&str]) -> bool {
        match self {
            TermCategory::Any => true,
            TermCategory::Named(n) => categories.contains(&n.as_str()),
        }
    }
}

/// What kind of term.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TermKind {
    /// `[…]`, possibly `with runs=N`.
    Event,
    /// `![…]`.
    Missing,
    /// `until […]`.
    Until,
}

/// One term as written: what `run` needs to refuse terms the sensor never produces.
#[derive(Clone, Debug)]
pub struct TermInfo {
    pub category: TermCategory,
    /// Byte span of the category word (or `any`) within the query text.
    pub category_span: Span,
    /// Byte span of the whole term (`[` … `]` and its `by` / `with runs`).
    pub span: Span,
    pub kind: TermKind,
    /// `with runs=N` (1 otherwise).
    pub runs: usize,
}

impl SequenceQuery {
    /// The terms as written, in order, the `until` term last.
    pub fn terms(&self) -> &[TermInfo] {
        &self.terms
    }

    /// Per term: the category it can match, with the span of the category word (to name
    /// the term in an error with file:line:column).
    pub fn categories(&self) -> impl Iterator<Item = (&TermCategory, Span)> + '_ {
        self.terms.iter().map(|t| (&t.category, t.category_span))
    }

    /// The terms a sensor producing only `categories` can never match (`run` refuses a
    /// rule with any; a missing-event or until term that can never match would silently
    /// change the rule's meaning, so they count too).
    pub fn unproducible_terms<'a>(
        &'a self,
        categories: &'a [&'a str],
    ) -> impl Iterator<Item = &'a TermInfo> + 'a {
        self.terms
            .iter()
            .filter(move |t| !t.category.producible_by(categories))
    }

    /// Whether some term of this sequence (its `until` term included) could match the
    /// event `probe` describes, in three-valued logic (unknown fields unknown): false means
    /// no term can, so the event changes none of its sequences. Conservative.
    pub fn may_match_probe(&self, probe: &dyn crate::rules::Probe) -> bool {
        self.stages
            .iter()
            .chain(self.until.iter())
            .any(|s| s.filter.eval3(probe) != Some(false))
    }

    /// Whether some term of this sequence (its `until` term included) matches `doc` (join
    /// keys not checked).
    pub fn some_term_matches(&self, doc: &dyn Document) -> bool {
        self.stages
            .iter()
            .chain(self.until.iter())
            .any(|s| s.matches(doc))
    }

    /// `maxspan` in nanoseconds, if the query has one.
    pub fn maxspan_ns(&self) -> Option<i64> {
        self.maxspan_ns
    }

    /// Number of events in a match (runs expanded, missing-event terms included: their
    /// positions are absent in [`SequenceMatch::events`]).
    pub fn stage_count(&self) -> usize {
        self.stages.len()
    }

    /// Whether stage `i` is a missing-event stage.
    pub fn is_missing_stage(&self, i: usize) -> bool {
        self.stages.get(i).is_some_and(|s| s.missing)
    }

    /// The join key's field names, as written for the sequence and the first positive
    /// term (labels for [`SequenceMatch::join_key`]).
    pub fn key_names(&self) -> &[String] {
        &self.key_names
    }

    /// Number of values in a join key.
    pub fn key_len(&self) -> usize {
        self.key_len
    }
}
