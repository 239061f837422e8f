//! Rules indexed by exact string values they require, so an event is only evaluated
//! against rules that can match it (plus rules with no such requirement).
//!
//! A rule *requires* a set of `(field, value)` keys when one of its `and` conjuncts is a
//! positive exact test of a string field (`==`, `in`, `in~`, or `:` / `like` / `like~`
//! without wildcards), or an `or` each of whose branches requires keys (the union, possibly
//! over several fields). Such a conjunct is false when no key is present in the event, so
//! skipping the rule then cannot change the result. Among several requiring conjuncts the
//! most selective one is chosen: requirements on *common* fields (`event.action`,
//! `event.type`, … whose values every exec event shares) only when nothing else is
//! available. Case-insensitive values are keyed by their folded form; a document value that
//! cannot be folded on the stack (non-ASCII or very long) is conservatively checked against
//! every case-insensitive entry of that field.

use rustc_hash::FxHashMap;

use super::Rule;
use super::eql::matcher::{Node, Test, any_str};
use crate::ecs::field::{Document, FieldId};

const FOLD_BUF: usize = 256;

/// One required key: field, case-insensitive, value (folded when case-insensitive).
type Key<'a> = (FieldId, bool, &'a str);

/// The keys that `node` requires (at least one must be present in a matching document):
/// from a positive exact test of a string field, from the best `and` operand that has a
/// requirement, or from an `or` whose every branch has one (the union). `None` when the node
/// can be true whatever the document holds.
fn required<'a>(node: &'a Node, common: &[FieldId]) -> Option<Vec<Key<'a>>> {
    match node {
        Node::Test(id, Test::Str(m)) if m.is_exact_only() => {
            Some(m.exact.iter().map(|v| (*id, m.ci, &**v)).collect())
        }
        Node::And(parts) => parts
            .iter()
            .filter_map(|p| required(p, common))
            .min_by_key(|req| rank(req, common)),
        Node::Or(parts) => {
            let mut all = Vec::new();
            for p in parts.iter() {
                all.extend(required(p, common)?);
            }
            Some(all)
        }
        Node::Const(false) => Some(Vec::new()),
        _ => None,
    }
}

/// Lower is more selective: keys on common fields last, then fewer keys first.
fn rank(req: &[Key<'_>], common: &[FieldId]) -> (bool, usize) {
    (req.iter().any(|k| common.contains(&k.0)), req.len())
}

/// Index over one field.
#[derive(Debug)]
struct FieldIndex {
    field: FieldId,
    exact: FxHashMap<Box<str>, Vec<u32>>,
    folded: FxHashMap<Box<str>, Vec<u32>>,
    /// Every rule in `folded`, for values that cannot be folded on the stack.
    folded_all: Vec<u32>,
}

/// The whole index.
#[derive(Debug, Default)]
pub struct RuleIndex {
    always: Vec<u32>,
    /// One entry per field some rule is keyed on.
    fields: Vec<FieldIndex>,
}

impl RuleIndex {
    /// Builds the index. `common` are fields whose values most events share (e.g.
    /// `event.action`): a rule is keyed on them only when it has no other requirement.
    pub fn build(rules: &[Rule], common: &[FieldId]) -> Self {
        let mut ix = RuleIndex::default();
        for (i, r) in rules.iter().enumerate() {
            let i = i as u32;
            let Some(req) = required(&r.compiled.root, common) else {
                ix.always.push(i);
                continue;
            };
            for (field, ci, v) in req {
                let fi = match ix.fields.iter().position(|f| f.field == field) {
                    Some(p) => &mut ix.fields[p],
                    None => {
                        ix.fields.push(FieldIndex {
                            field,
                            exact: FxHashMap::default(),
                            folded: FxHashMap::default(),
                            folded_all: Vec::new(),
                        });
                        ix.fields.last_mut().expect("just pushed")
                    }
                };
                let map = if ci { &mut fi.folded } else { &mut fi.exact };
                let list = map.entry(v.into()).or_default();
                if list.last() != Some(&i) {
                    list.push(i);
                }
                if ci && fi.folded_all.last() != Some(&i) {
                    fi.folded_all.push(i);
                }
            }
        }
        ix
    }

    /// Number of rules evaluated for every event.
    /// Whether every indexed rule is keyed on one of `fields`, so that a probe document
    /// carrying only those fields finds every candidate.
    pub fn keys_only(&self, fields: &[FieldId]) -> bool {
        self.fields.iter().all(|f| fields.contains(&f.field))
    }

    /// The fields rules are keyed on, with how many rules each.
    pub fn keyed_fields(&self) -> Vec<(FieldId, usize)> {
        self.fields
            .iter()
            .map(|f| {
                let mut rules: Vec<u32> = f
                    .exact
                    .values()
                    .chain(f.folded.values())
                    .flatten()
                    .copied()
                    .collect();
                rules.sort_unstable();
                rules.dedup();
                (f.field, rules.len())
            })
            .collect()
    }

    pub fn unindexed(&self) -> usize {
        self.always.len()
    }

    /// How many rule evaluations [`RuleIndex::matches`] performs for `doc` (a rule reached
    /// through several keys counts each time): the index's effectiveness, for stats.
    pub fn candidates(&self, doc: &dyn Document) -> usize {
        let mut n = self.always.len();
        for fi in &self.fields {
            any_str(doc.field(fi.field), |s| {
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

    /// Whether some rule could match the event `probe` partly describes: the candidates
    /// [`RuleIndex::matches`] would evaluate, each evaluated over the probe in three-valued
    /// logic; true unless every one is certainly false. True when a key field is unknown.
    pub fn may_match(&self, rules: &[Rule], probe: &dyn super::Probe) -> bool {
        let possible = |list: &[u32]| {
            list.iter()
                .any(|&i| rules[i as usize].compiled.root.eval3(probe) != Some(false))
        };
        if possible(&self.always) {
            return true;
        }
        for fi in &self.fields {
            let Some(v) = probe.field(fi.field) else {
                return true;
            };
            let hit = any_str(v, |s| {
                if fi.exact.get(s).is_some_and(|l| possible(l)) {
                    return true;
                }
                if fi.folded.is_empty() {
                    return false;
                }
                if s.is_ascii() && s.len() <= FOLD_BUF {
                    let mut buf = [0u8; FOLD_BUF];
                    let b = &mut buf[..s.len()];
                    b.copy_from_slice(s.as_bytes());
                    b.make_ascii_lowercase();
                    std::str::from_utf8(b)
                        .ok()
                        .and_then(|k| fi.folded.get(k))
                        .is_some_and(|l| possible(l))
                } else {
                    possible(&fi.folded_all)
                }
            });
            if hit {
                return true;
            }
        }
        false
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
            any_str(doc.field(fi.field), |s| {
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
