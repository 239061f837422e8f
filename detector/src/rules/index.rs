//! Rules indexed by the `process.name` or `event.action` values they require, so an event
//! is only evaluated against rules that can match it (plus rules with no such requirement).
//!
//! A rule *requires* a set of values for a field when one of its `and` conjuncts is a
//! positive exact test of that field (`==`, `in`, `in~`, or `:` / `like` / `like~` without
//! wildcards), or an `or` each of whose branches requires values (the set is the union).
//! Such a conjunct is false when no element of the field is in the set, so skipping the
//! rule then cannot change the result. Case-insensitive values are keyed by
//! their folded form; a document value that cannot be folded on the stack (non-ASCII or
//! very long) is conservatively checked against every case-insensitive entry.

use rustc_hash::FxHashMap;

use super::Rule;
use super::eql::matcher::{Node, Test, any_str};
use crate::ecs::field::{Document, FieldId};

const FOLD_BUF: usize = 256;

/// The values of `field` that `node` requires, as `(case-insensitive, value)` pairs (the
/// value folded when case-insensitive): from a positive exact test of the field, from the
/// first `and` operand that has a requirement, or from an `or` whose every branch has one
/// (the union). `None` when the node can be true whatever the field holds.
fn required(node: &Node, field: FieldId) -> Option<Vec<(bool, &str)>> {
    match node {
        Node::Test(id, Test::Str(m)) if *id == field && m.is_exact_only() => {
            Some(m.exact.iter().map(|v| (m.ci, &**v)).collect())
        }
        Node::And(parts) => parts.iter().find_map(|p| required(p, field)),
        Node::Or(parts) => {
            let mut all = Vec::new();
            for p in parts.iter() {
                all.extend(required(p, field)?);
            }
            Some(all)
        }
        Node::Const(false) => Some(Vec::new()),
        _ => None,
    }
}

/// Index over one field.
#[derive(Debug, Default)]
struct FieldIndex {
    field: Option<FieldId>,
    exact: FxHashMap<Box<str>, Vec<u32>>,
    folded: FxHashMap<Box<str>, Vec<u32>>,
    /// Every rule in `folded`, for values that cannot be folded on the stack.
    folded_all: Vec<u32>,
}

/// The whole index.
#[derive(Debug, Default)]
pub struct RuleIndex {
    always: Vec<u32>,
    fields: [FieldIndex; 2],
}

impl RuleIndex {
    /// Builds the index; `fields` are the ids of `process.name` and `event.action` when the
    /// schema has them, in order of preference.
    pub fn build(rules: &[Rule], fields: [Option<FieldId>; 2]) -> Self {
        let mut ix = RuleIndex {
            always: Vec::new(),
            fields: [
                FieldIndex {
                    field: fields[0],
                    ..Default::default()
                },
                FieldIndex {
                    field: fields[1],
                    ..Default::default()
                },
            ],
        };
        'rules: for (i, r) in rules.iter().enumerate() {
            let i = i as u32;
            for fi in ix.fields.iter_mut() {
                let Some(field) = fi.field else { continue };
                let Some(req) = required(&r.compiled.root, field) else {
                    continue;
                };
                for (ci, v) in req {
                    let map = if ci { &mut fi.folded } else { &mut fi.exact };
                    let list = map.entry(v.into()).or_default();
                    if list.last() != Some(&i) {
                        list.push(i);
                    }
                    if ci && fi.folded_all.last() != Some(&i) {
                        fi.folded_all.push(i);
                    }
                }
                continue 'rules;
            }
            ix.always.push(i);
        }
        ix
    }

    /// Number of rules evaluated for every event.
    pub fn unindexed(&self) -> usize {
        self.always.len()
    }

    /// How many rule evaluations [`RuleIndex::matches`] performs for `doc` (a rule reached
    /// through several keys counts each time): the index's effectiveness, for stats.
    pub fn candidates(&self, doc: &dyn Document) -> usize {
        let mut n = self.always.len();
        for fi in &self.fields {
            let Some(field) = fi.field else { continue };
            any_str(doc.field(field), |s| {
                n += fi.exact.get(s).map_or(0, Vec::len);
                if !fi.folded.is_empty() {
                    if s.is_ascii() && s.len() <= FOLD_BUF {
                        let mut buf = [0u8; FOLD_BUF];
                        let b = &mut buf[..s.len()];
                        b.copy_from_slice(s.as_bytes());
                        b.make_ascii_lowercase();
                        n += std::str::from_utf8(b)
                            .ok()
                            .and_then(|k| fi.folded.get(k))
                            .map_or(0, Vec::len);
                    } else {
                        n += fi.folded_all.len();
                    }
                }
                false
            });
        }
        n
    }

    /// Evaluates candidate rules and pushes the matching ones in rule order, without
    /// duplicates. `out` is cleared first.
    pub fn matches<'r>(&self, rules: &'r [Rule], doc: &dyn Document, out: &mut Vec<&'r Rule>) {
        out.clear();
        let eval = |list: &[u32], out: &mut Vec<&'r Rule>| {
            for &i in list {
                let r = &rules[i as usize];
                if r.compiled.matches(doc) {
                    out.push(r);
                }
            }
        };
        eval(&self.always, out);
        let mut sources = 1;
        for fi in &self.fields {
            let Some(field) = fi.field else { continue };
            if fi.exact.is_empty() && fi.folded.is_empty() {
                continue;
            }
            any_str(doc.field(field), |s| {
                if let Some(list) = fi.exact.get(s) {
                    eval(list, out);
                    sources += 1;
                }
                if !fi.folded.is_empty() {
                    if s.is_ascii() && s.len() <= FOLD_BUF {
                        let mut buf = [0u8; FOLD_BUF];
                        let b = &mut buf[..s.len()];
                        b.copy_from_slice(s.as_bytes());
                        b.make_ascii_lowercase();
                        if let Some(list) =
                            std::str::from_utf8(b).ok().and_then(|k| fi.folded.get(k))
                        {
                            eval(list, out);
                            sources += 1;
                        }
                    } else {
                        eval(&fi.folded_all, out);
                        sources += 1;
                    }
                }
                false
            });
        }
        if sources > 1 && out.len() > 1 {
            out.sort_unstable_by_key(|r| *r as *const Rule as usize);
            out.dedup_by(|a, b| std::ptr::eq(*a, *b));
        }
    }
}
