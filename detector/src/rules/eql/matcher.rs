//! The compiled form of a query: a tree of tests over field ids, evaluated without
//! allocation.
//!
//! Every leaf is a *positive* test: true when at least one element of the field's value
//! satisfies it, false when the field is missing. Negations (`!=`, `not in`, `not`) are a
//! [`Node::Not`] around the positive test, which gives Elasticsearch's semantics for free:
//! true when no element matches, and true when the field is missing.
//!
//! Conditions on functions ([`Node::Script`]) follow the same rule: positive, true when some
//! choice of elements satisfies them (see [`super::func::Script`]).

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
    /// A condition on function results (`length(process.command_line) > 50`); never a
    /// source of index keys.
    Script(Box<super::func::Script>),
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
    /// All of `wild` as one anchored byte regex, used for ASCII values: one pass over the
    /// value instead of one per pattern (rules list dozens of `*…*` patterns). Only built
    /// when every pattern is ASCII, so ASCII case-insensitivity equals [`fold`]'s.
    ///
    /// [`fold`]: super::wildcard::fold
    wild_ascii: Option<regex::bytes::Regex>,
    regex: Option<Regex>,
    /// When some value, pattern or the regex tells ASCII digits apart: how to answer for
    /// every value of one shape ([`super::digits`]).
    pub(crate) shape: Option<Box<super::digits::DigitShape>>,
}

/// Fewer patterns than this are matched one by one (cheaper than a regex search).
const COMBINE_THRESHOLD: usize = 3;

/// One anchored byte regex for ASCII wildcard patterns (`*` → `.*`, `?` → `.`).
fn combine_ascii(patterns: &[String], ci: bool) -> Option<regex::bytes::Regex> {
    if patterns.len() < COMBINE_THRESHOLD || !patterns.iter().all(|p| p.is_ascii()) {
        return None;
    }
    let mut re = String::from(if ci {
        "(?s-u)(?i)\\A(?:"
    } else {
        "(?s-u)\\A(?:"
    });
    for (i, p) in patterns.iter().enumerate() {
        if i > 0 {
            re.push('|');
        }
        for c in p.chars() {
            match c {
                '*' => re.push_str(".*"),
                '?' => re.push('.'),
                c => re.push_str(&regex::escape(c.encode_utf8(&mut [0; 4]))),
            }
        }
    }
    re.push_str(")\\z");
    regex::bytes::RegexBuilder::new(&re)
        .size_limit(8 << 20)
        .build()
        .ok()
}

impl StrMatcher {
    /// Builds a matcher; `exact` must already be folded when `ci`; `wild` are wildcard
    /// patterns as written.
    pub fn new(ci: bool, exact: Vec<Box<str>>, wild: Vec<String>, regex: Option<Regex>) -> Self {
        let set = (exact.len() > SET_THRESHOLD).then(|| exact.iter().cloned().collect());
        let wild_ascii = combine_ascii(&wild, ci);
        let shape = super::digits::DigitShape::of(ci, &exact, &wild, regex.as_ref());
        let wild = wild.iter().map(|p| Wildcard::new(p, ci)).collect();
        StrMatcher {
            ci,
            exact,
            set,
            wild,
            wild_ascii,
            regex,
            shape,
        }
    }

    /// Whether `s` matches one of the wildcard patterns.
    #[inline]
    fn wild_match(&self, s: &str) -> bool {
        match &self.wild_ascii {
            Some(re) if s.is_ascii() => re.is_match(s.as_bytes()),
            _ => self.wild.iter().any(|w| w.matches(s)),
        }
    }

    /// Relative cost for [`Node::order_by_cost`].
    fn cost(&self) -> u32 {
        let exact = match &self.set {
            Some(_) => 2,
            None => self.exact.len().div_ceil(2) as u32,
        };
        let wild = match &self.wild_ascii {
            Some(_) => 16,
            None => 6 * self.wild.len() as u32,
        };
        2 + exact + wild + if self.regex.is_some() { 40 } else { 0 }
    }

    /// Only exact values.
    pub fn is_exact_only(&self) -> bool {
        self.wild.is_empty() && self.regex.is_none() && !self.exact.is_empty()
    }

    /// The wildcard patterns (what the rule index takes required literals from).
    pub(crate) fn wildcards(&self) -> &[Wildcard] {
        &self.wild
    }

    /// The combined regex of `regex` / `regex~` values, if any.
    pub(crate) fn regex(&self) -> Option<&Regex> {
        self.regex.as_ref()
    }

    /// Whether one string matches any exact value, pattern or the regex.
    #[inline]
    pub fn matches(&self, s: &str) -> bool {
        self.exact_match(s)
            || self.wild_match(s)
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
    /// Evaluates the test on one field value (any element for arrays).
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
            Node::Script(s) => s.eval(doc),
        }
    }

    /// A rough relative cost of evaluating this node: exact and numeric tests are cheap,
    /// wildcard patterns cost more, regexes most.
    pub fn cost(&self) -> u32 {
        match self {
            Node::Const(_) => 0,
            Node::Not(n) => n.cost(),
            Node::And(v) | Node::Or(v) => v.iter().map(Node::cost).sum(),
            Node::Test(_, t) => match t {
                Test::IsNull | Test::Bool(_) | Test::NumCmp(..) | Test::NumIn(_) => 1,
                Test::StrCmp(..) => 2,
                Test::Str(m) => m.cost(),
            },
            Node::Script(s) => s.cost(),
        }
    }

    /// Puts the operands of every `and` / `or` cheapest first (stable), so a cheap exact
    /// test that decides the node runs before wildcard and regex scans. Evaluation has no
    /// side effects, so the order of operands never changes a result.
    pub fn order_by_cost(&mut self) {
        match self {
            Node::And(v) | Node::Or(v) => {
                for n in v.iter_mut() {
                    n.order_by_cost();
                }
                v.sort_by_cached_key(Node::cost);
            }
            Node::Not(n) => n.order_by_cost(),
            Node::Const(_) | Node::Test(..) | Node::Script(_) => {}
        }
    }

    /// Evaluates the tree over a partial view (Kleene three-valued logic): `Some(b)` when
    /// the result is `b` whatever the unknown fields hold, `None` when it depends on them.
    /// Agrees with [`Node::eval`] on any document that holds the probe's known values.
    pub fn eval3(&self, probe: &dyn crate::rules::Probe) -> Option<bool> {
        self.kleene(&|leaf| match leaf {
            Node::Test(id, t) => probe.field(*id).map(|v| t.eval(v)),
            Node::Script(s) => s.eval3(probe),
            _ => unreachable!("kleene passes leaves only"),
        })
    }

    /// The tree in Kleene three-valued logic over the answers `leaf` gives for its tests
    /// and scripts: what [`Node::eval3`] and its variants share.
    #[inline]
    pub(crate) fn kleene<F: Fn(&Node) -> Option<bool>>(&self, leaf: &F) -> Option<bool> {
        match self {
            Node::Const(b) => Some(*b),
            Node::And(v) => {
                let mut known = true;
                for n in v.iter() {
                    match n.kleene(leaf) {
                        Some(false) => return Some(false),
                        Some(true) => {}
                        None => known = false,
                    }
                }
                known.then_some(true)
            }
            Node::Or(v) => {
                let mut known = true;
                for n in v.iter() {
                    match n.kleene(leaf) {
                        Some(true) => return Some(true),
                        Some(false) => {}
                        None => known = false,
                    }
                }
                known.then_some(false)
            }
            Node::Not(n) => n.kleene(leaf).map(|b| !b),
            Node::Test(..) | Node::Script(_) => leaf(self),
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The combined ASCII regex and the one-by-one wildcard matchers agree.
    #[test]
    fn combined_wildcards_agree_with_individual_ones() {
        const ALPHABET: &[u8] = b"aAbB-*?. \\\n";
        let mut seed = 0x2545F4914F6CDD1Du64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let word = |next: &mut dyn FnMut() -> u64, wild: bool| -> String {
            let len = (next() % 6) as usize;
            (0..len)
                .map(|_| {
                    let c = ALPHABET[(next() % ALPHABET.len() as u64) as usize] as char;
                    if !wild && (c == '*' || c == '?') {
                        'x'
                    } else {
                        c
                    }
                })
                .collect()
        };
        let mut checked = 0;
        for round in 0..300 {
            let ci = round % 2 == 0;
            let pats: Vec<String> = (0..4).map(|_| word(&mut next, true)).collect();
            let m = StrMatcher::new(ci, vec![], pats.clone(), None);
            assert!(m.wild_ascii.is_some());
            for _ in 0..50 {
                let v = word(&mut next, false);
                let combined = m.wild_match(&v);
                let single = m.wild.iter().any(|w| w.matches(&v));
                assert_eq!(combined, single, "{pats:?} ci={ci} {v:?}");
                checked += combined as usize;
            }
        }
        assert!(checked > 100, "some values match: {checked}");
    }
}
