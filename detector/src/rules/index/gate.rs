//! Gates: what rules require of the *common* fields (`event.action == "exec"`,
//! `event.type == "start"`, `host.os.type == "linux"` …), checked for all rules at once.
//!
//! A rule's gate on a field is the set of values one of its top-level `and` conjuncts allows
//! (a positive, case-sensitive test of exact values only; several such conjuncts intersect).
//! The conjunct is false for a document whose field holds none of them, and so is the rule.
//! Per event, each gated field costs one lookup and yields the set of rules its value
//! allows: a fork or exit event thus rules out every exec-only rule before any key is
//! looked up or any rule evaluated.

use rustc_hash::FxHashMap;

use super::cands::Cands;
use crate::ecs::field::{FieldId, FieldValue};
use crate::rules::Rule;
use crate::rules::eql::matcher::{Node, Test, any_str};

/// The gates on one field.
#[derive(Debug)]
struct Gate {
    field: FieldId,
    /// For each value some gate allows: the gated rules that allow it.
    by_value: FxHashMap<Box<str>, Cands>,
    /// The rules without a gate on this field.
    free: Cands,
}

/// The gates of a rule set, over the fields given at build.
#[derive(Debug, Default)]
pub struct Gates {
    gates: Vec<Gate>,
}

/// The values each of `fields` must take for `root` to be true, from its top-level
/// conjuncts; `None` for a field without such a conjunct.
fn rule_gate<'a>(root: &'a Node, fields: &[FieldId]) -> Vec<Option<Vec<&'a str>>> {
    let mut out: Vec<Option<Vec<&str>>> = vec![None; fields.len()];
    for c in root.conjuncts() {
        let Node::Test(id, Test::Str(m)) = c else {
            continue;
        };
        let Some(p) = fields.iter().position(|f| f == id) else {
            continue;
        };
        if m.ci || !m.is_exact_only() {
            continue;
        }
        let values: Vec<&str> = m.exact.iter().map(|v| &**v).collect();
        out[p] = Some(match out[p].take() {
            None => values,
            Some(prev) => prev.into_iter().filter(|v| values.contains(v)).collect(),
        });
    }
    out
}

impl Gates {
    /// The gates of `rules` on `fields` (fields no rule gates on are left out).
    pub fn build(rules: &[Rule], fields: &[FieldId]) -> Self {
        let n = rules.len();
        let per_rule: Vec<_> = rules
            .iter()
            .map(|r| rule_gate(&r.compiled.root, fields))
            .collect();
        let mut gates = Vec::new();
        for (p, &field) in fields.iter().enumerate() {
            if per_rule.iter().all(|g| g[p].is_none()) {
                continue;
            }
            let mut by_value: FxHashMap<Box<str>, Cands> = FxHashMap::default();
            let mut free = Cands::new(n);
            for (i, g) in per_rule.iter().enumerate() {
                match &g[p] {
                    None => free.add(i as u32),
                    Some(values) => {
                        for v in values {
                            by_value
                                .entry((*v).into())
                                .or_insert_with(|| Cands::new(n))
                                .add(i as u32);
                        }
                    }
                }
            }
            gates.push(Gate {
                field,
                by_value,
                free,
            });
        }
        Gates { gates }
    }

    /// Removes from `mask` the rules whose gates `value_of` rules out. `value_of` gives a
    /// field's value, or `None` when it is unknown (then that field rules nothing out).
    #[inline]
    pub fn restrict<'v>(
        &self,
        mask: &mut Cands,
        mut value_of: impl FnMut(FieldId) -> Option<FieldValue<'v>>,
    ) {
        for g in &self.gates {
            let Some(v) = value_of(g.field) else {
                continue;
            };
            let mut allowed = g.free.clone();
            any_str(v, |s| {
                if let Some(c) = g.by_value.get(s) {
                    allowed.or_with(c);
                }
                false
            });
            mask.and_with(&allowed);
        }
    }
}
