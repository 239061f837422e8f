//! Evaluation over the *shape* of the arguments: what a query answers for every argument
//! list that differs from a probe's only in which ASCII digits it holds.
//!
//! Commands differ from run to run mostly in numbers: `sleep 37`, `kill -9 4242`, a job id
//! in a URL. [`Node::eval3_shape`] evaluates a rule in three-valued logic with each string
//! test of the argument fields answering for the value's whole *shape* (the value with
//! every ASCII digit written as `0`): true when it holds for every value of that shape,
//! false when for none, unknown otherwise. A rule it finds false is false for every run
//! of the command with other numbers, and [`crate::rules::RuleSet`] remembers that by the
//! shape ([`crate::rules::Probe::args_shape_key`]).
//!
//! A string test's parts that cannot tell digits apart answer for the whole shape:
//! - an exact value or a wildcard pattern without a digit: a value matching it has no digit
//!   where its literal characters are, so the same value with other digits matches too, and
//!   `?` takes one character, a digit or another (case folding never makes a digit);
//! - a regex whose every literal and class takes all ten ASCII digits or none (`.`, `\d`,
//!   `[0-9]`, `[a-z]`; parsed, not guessed from its text).
//!
//! The other parts (values and patterns naming a digit, other regexes) can only match a
//! value whose shape matches their shape (matching commutes with writing digits as `0`):
//! when it does not, they match no value of the shape either. Null, numeric and boolean
//! tests compare no digit (the arguments' count and presence do not change); byte-order
//! comparisons and functions of those fields are taken as unknown.

use std::borrow::Cow;

use regex::Regex;
use regex_syntax::hir::{Class, Hir, HirKind};

use super::matcher::{Node, StrMatcher, Test, any_str};
use super::wildcard::{Wildcard, eq_folded};
use crate::ecs::field::{FieldId, FieldValue};
use crate::rules::Probe;

/// How a string test that tells digits apart answers for a shape.
#[derive(Debug)]
pub(crate) struct DigitShape {
    /// Its values, patterns and regex that cannot tell digits apart.
    free: StrMatcher,
    /// The shapes of its values naming a digit (folded when case-insensitive, as the
    /// test's values are).
    exact: Vec<Box<str>>,
    /// Its patterns naming a digit, digits written as `0`.
    wild: Vec<Wildcard>,
    /// Its regex tells digits apart.
    regex: bool,
}

/// `s` with every ASCII digit written as `0`.
fn shape_of(s: &str) -> Cow<'_, str> {
    if !s.bytes().any(|b| b.is_ascii_digit()) {
        return Cow::Borrowed(s);
    }
    Cow::Owned(
        s.chars()
            .map(|c| if c.is_ascii_digit() { '0' } else { c })
            .collect(),
    )
}

fn names_digit(s: &str) -> bool {
    s.bytes().any(|b| b.is_ascii_digit())
}

/// Whether every literal and class of the regex takes all ten ASCII digits or none.
fn digit_uniform(re: &str) -> bool {
    fn uniform(h: &Hir) -> bool {
        let all_or_none = |n: usize| n == 0 || n == 10;
        match h.kind() {
            HirKind::Empty | HirKind::Look(_) => true,
            HirKind::Literal(l) => !l.0.iter().any(u8::is_ascii_digit),
            HirKind::Class(Class::Unicode(c)) => all_or_none(
                ('0'..='9')
                    .filter(|&d| c.ranges().iter().any(|r| r.start() <= d && d <= r.end()))
                    .count(),
            ),
            HirKind::Class(Class::Bytes(c)) => all_or_none(
                (b'0'..=b'9')
                    .filter(|&d| c.ranges().iter().any(|r| r.start() <= d && d <= r.end()))
                    .count(),
            ),
            HirKind::Repetition(r) => uniform(&r.sub),
            HirKind::Capture(c) => uniform(&c.sub),
            HirKind::Concat(v) | HirKind::Alternation(v) => v.iter().all(uniform),
        }
    }
    regex_syntax::Parser::new()
        .parse(re)
        .is_ok_and(|h| uniform(&h))
}

impl DigitShape {
    /// The shape answers of a string test (`wild` as written), `None` when no part of it
    /// tells digits apart.
    pub(crate) fn of(
        ci: bool,
        exact: &[Box<str>],
        wild: &[String],
        regex: Option<&Regex>,
    ) -> Option<Box<DigitShape>> {
        let regex_tells = regex.is_some_and(|r| !digit_uniform(r.as_str()));
        let (digit_exact, free_exact): (Vec<&Box<str>>, Vec<&Box<str>>) =
            exact.iter().partition(|e| names_digit(e));
        let (digit_wild, free_wild): (Vec<&String>, Vec<&String>) =
            wild.iter().partition(|p| names_digit(p));
        if digit_exact.is_empty() && digit_wild.is_empty() && !regex_tells {
            return None;
        }
        Some(Box::new(DigitShape {
            free: StrMatcher::new(
                ci,
                free_exact.into_iter().cloned().collect(),
                free_wild.into_iter().cloned().collect(),
                regex.filter(|_| !regex_tells).cloned(),
            ),
            exact: digit_exact
                .into_iter()
                .map(|e| shape_of(e).into())
                .collect(),
            wild: digit_wild
                .into_iter()
                .map(|p| Wildcard::new(&shape_of(p), ci))
                .collect(),
            regex: regex_tells,
        }))
    }

    /// Whether a part that tells digits apart may match some value of the shape of `s`.
    fn may_match(&self, s: &str, ci: bool) -> bool {
        if self.regex {
            return true;
        }
        let shape = shape_of(s);
        let exact = |e: &str| match ci {
            true => eq_folded(&shape, e),
            false => e == shape,
        };
        self.exact.iter().any(|e| exact(e)) || self.wild.iter().any(|w| w.matches(&shape))
    }
}

impl StrMatcher {
    /// The test's answer for every value of the shape of `v` (see the module).
    fn eval_shape(&self, v: FieldValue<'_>) -> Option<bool> {
        let Some(d) = &self.shape else {
            return Some(any_str(v, |s| self.matches(s)));
        };
        let mut answer = Some(false);
        any_str(v, |s| {
            if d.free.matches(s) {
                answer = Some(true);
                return true;
            }
            if d.may_match(s, self.ci) {
                answer = None;
            }
            false
        });
        answer
    }
}

impl Node {
    /// [`Node::eval3`] with every string test of one of `fields` answering for the shape
    /// of the probe's values (see the module): the same for every probe that differs from
    /// `probe` only in the digits of those fields, and, when known, their [`Node::eval3`].
    pub fn eval3_shape(&self, probe: &dyn Probe, fields: &[FieldId]) -> Option<bool> {
        self.kleene(&|leaf| match leaf {
            Node::Test(id, t) if fields.contains(id) => match t {
                Test::Str(m) => m.eval_shape(probe.field(*id)?),
                Test::StrCmp(..) => None,
                t => probe.field(*id).map(|v| t.eval(v)),
            },
            Node::Script(s) if s.fields().iter().any(|f| fields.contains(f)) => None,
            leaf => leaf.eval3(probe),
        })
    }

    /// Whether no test of one of `fields` tells digits apart: then [`Node::eval3_shape`]
    /// is [`Node::eval3`].
    #[cfg(test)]
    pub fn digit_blind(&self, fields: &[FieldId]) -> bool {
        match self {
            Node::Const(_) => true,
            Node::And(v) | Node::Or(v) => v.iter().all(|n| n.digit_blind(fields)),
            Node::Not(n) => n.digit_blind(fields),
            Node::Test(f, t) => {
                !fields.contains(f)
                    || match t {
                        Test::Str(m) => m.shape.is_none(),
                        Test::StrCmp(..) => false,
                        _ => true,
                    }
            }
            Node::Script(s) => !s.fields().iter().any(|f| fields.contains(f)),
        }
    }
}

#[cfg(test)]
mod tests;
