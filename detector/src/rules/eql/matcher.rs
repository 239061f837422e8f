//! The compiled form of a query: a tree of tests over field ids, evaluated without
//! allocation.
//!
//! Every leaf is a *positive* test: true when at least one element of the field's value
//! satisfies it, false when the field is missing. Negations (`!=`, `not in`, `not`) are a
//! [`Node::Not`] around the positive test, which gives Elasticsearch's semantics for free:
//! true when no element matches, and true when the field is missing.

use regex::Regex;
use rustc_hash::FxHashSet;

use super::ast::CmpOp;
use super::wildcard::{Wildcard, eq_folded};
use crate::ecs::field::{Document, FieldId, FieldValue};

/// A node of the compiled expression tree.
#[derive(Debug)]
pub enum Node {
    Const(bool),
    And(Box<[Node]>),
    Or(Box<[Node]>),
    Not(Box<Node>),
    Test(FieldId, Test),
}

/// A test of one field's value.
#[derive(Debug)]
pub enum Test {
    /// `field == null`: the field is absent (or an empty array).
    IsNull,
    /// Exact, wildcard and regex string matching.
    Str(StrMatcher),
    /// `<`, `<=`, `>`, `>=` on a keyword or date: byte-wise (lexicographic) order, as
    /// Elasticsearch's range query on keywords.
    StrCmp(CmpOp, Box<str>),
    /// Numeric comparison (`==` is `Cmp(Eq, n)`).
    NumCmp(CmpOp, Num),
    /// Numeric `in`.
    NumIn(Box<[Num]>),
    Bool(bool),
}

/// A numeric literal.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Num {
    Int(i64),
    Float(f64),
}

impl Num {
    fn cmp_long(self, v: i64, op: CmpOp) -> bool {
        let ord = match self {
            Num::Int(n) => v.partial_cmp(&n),
            Num::Float(f) => (v as f64).partial_cmp(&f),
        };
        let Some(ord) = ord else { return false };
        use std::cmp::Ordering::*;
        match op {
            CmpOp::Eq => ord == Equal,
            CmpOp::Neq => ord != Equal,
            CmpOp::Lt => ord == Less,
            CmpOp::Le => ord != Greater,
            CmpOp::Gt => ord == Greater,
            CmpOp::Ge => ord != Less,
        }
    }
}

/// Above this many exact values a hash set is faster than a scan.
const SET_THRESHOLD: usize = 4;

/// Longest ASCII value folded on the stack for a case-insensitive set lookup.
const FOLD_BUF: usize = 256;

/// Matches a string against exact values, wildcard patterns and one combined regex.
#[derive(Debug, Default)]
pub struct StrMatcher {
    /// Case-insensitive: `exact` holds folded values and lookups fold the input.
    pub(crate) ci: bool,
    pub(crate) exact: Vec<Box<str>>,
    set: Option<FxHashSet<Box<str>>>,
    wild: Vec<Wildcard>,
    regex: Option<Regex>,
}

impl StrMatcher {
    /// Builds a matcher; `exact` must already be folded when `ci`.
    pub fn new(ci: bool, exact: Vec<Box<str>>, wild: Vec<Wildcard>, regex: Option<Regex>) -> Self {
        let set = (exact.len() > SET_THRESHOLD).then(|| exact.iter().cloned().collect());
        StrMatcher {
            ci,
            exact,
            set,
            wild,
            regex,
        }
    }

    /// Only exact values (what the rule index can use).
    pub fn is_exact_only(&self) -> bool {
        self.wild.is_empty() && self.regex.is_none() && !self.exact.is_empty()
    }

    #[inline]
    pub fn matches(&self, s: &str) -> bool {
        self.exact_match(s)
            || self.wild.iter().any(|w| w.matches(s))
            || self.regex.as_ref().is_some_and(|r| r.is_match(s))
    }

    #[inline]
    fn exact_match(&self, s: &str) -> bool {
        if self.exact.is_empty() {
            return false;
        }
        if !self.ci {
            return match &self.set {
                Some(set) => set.contains(s),
                None => self.exact.iter().any(|e| &**e == s),
            };
        }
        match &self.set {
            Some(set) if s.is_ascii() && s.len() <= FOLD_BUF => {
                let mut buf = [0u8; FOLD_BUF];
                let b = &mut buf[..s.len()];
                b.copy_from_slice(s.as_bytes());
                b.make_ascii_lowercase();
                std::str::from_utf8(b).is_ok_and(|k| set.contains(k))
            }
            _ => self.exact.iter().any(|e| eq_folded(s, e)),
        }
    }
}

/// Whether any string element of `v` satisfies `f`.
#[inline]
pub fn any_str(v: FieldValue<'_>, mut f: impl FnMut(&str) -> bool) -> bool {
    match v {
        FieldValue::Str(s) => f(s),
        FieldValue::Strs(a) => a.iter().any(|s| f(s)),
        FieldValue::StaticStrs(a) => a.iter().any(|s| f(s)),
        _ => false,
    }
}

impl Test {
    #[inline]
    pub fn eval(&self, v: FieldValue<'_>) -> bool {
        match self {
            Test::IsNull => match v {
                FieldValue::Missing => true,
                FieldValue::Strs(a) => a.is_empty(),
                FieldValue::StaticStrs(a) => a.is_empty(),
                _ => false,
            },
            Test::Str(m) => any_str(v, |s| m.matches(s)),
            Test::StrCmp(op, lit) => any_str(v, |s| {
                let o = s.cmp(lit);
                use std::cmp::Ordering::*;
                match op {
                    CmpOp::Eq => o == Equal,
                    CmpOp::Neq => o != Equal,
                    CmpOp::Lt => o == Less,
                    CmpOp::Le => o != Greater,
                    CmpOp::Gt => o == Greater,
                    CmpOp::Ge => o != Less,
                }
            }),
            Test::NumCmp(op, n) => matches!(v, FieldValue::Long(x) if n.cmp_long(x, *op)),
            Test::NumIn(ns) => {
                matches!(v, FieldValue::Long(x) if ns.iter().any(|n| n.cmp_long(x, CmpOp::Eq)))
            }
            Test::Bool(b) => v == FieldValue::Bool(*b),
        }
    }
}

impl Node {
    /// Evaluates the tree against one document.
    pub fn eval(&self, doc: &dyn Document) -> bool {
        match self {
            Node::Const(b) => *b,
            Node::And(v) => v.iter().all(|n| n.eval(doc)),
            Node::Or(v) => v.iter().any(|n| n.eval(doc)),
            Node::Not(n) => !n.eval(doc),
            Node::Test(id, t) => t.eval(doc.field(*id)),
        }
    }

    /// The top-level conjuncts (the node itself unless it is an `And`).
    pub fn conjuncts(&self) -> &[Node] {
        match self {
            Node::And(v) => v,
            other => std::slice::from_ref(other),
        }
    }
}
