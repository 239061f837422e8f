//! Gates: what rules require of the *common* fields (`event.action == "exec"`,
//! `event.type == "start"`, `host.os.type == "linux"` …), checked for all rules at once.
//!
//! A rule's gate on a field is a set of values one of which some element of the field must
//! equal (case-sensitively, or after folding for `:`, `in~`, `like~`) for the rule to be
//! true: from a positive test of exact values only; from the smallest gate among the
//! operands of an `and`; from the union of the gates of an `or` all of whose branches have
//! one. Per event, each gated field costs a lookup or two and yields the set of rules its
//! value allows: a fork or exit event thus rules out every exec-only rule before any key
//! is looked up or any rule evaluated.

use rustc_hash::FxHashMap;

use super::cands::Cands;
use crate::ecs::field::{FieldId, FieldValue};
use crate::rules::Rule;
use crate::rules::eql::matcher::{Node, Test, any_str};

/// Longest ASCII value folded on the stack for a case-insensitive lookup.
const FOLD_BUF: usize = 64;

/// A gate is checked only when at least this many of the possible rules depend on it.
const GATE_MIN: usize = 3;

/// The gates on one field.
#[derive(Debug)]
struct Gate {
    field: FieldId,
    /// For each value of a case-sensitive gate: the rules allowing it.
    exact: FxHashMap<Box<str>, Cands>,
    /// For each (folded) value of a case-insensitive gate: the rules allowing it.
    folded: FxHashMap<Box<str>, Cands>,
    /// Every rule with a case-insensitive value: allowed by a value that cannot be folded
    /// on the stack (not ASCII, or long).
    folded_all: Cands,
    /// The rules without a gate on this field.
    free: Cands,
    /// The rules with one.
    gated: Cands,
}

/// The gates of a rule set, over the fields given at build.
#[derive(Debug, Default)]
pub struct Gates {
    gates: Vec<Gate>,
}

/// The values (`(case-insensitive, value)`, folded when case-insensitive) one of which
/// some element of `field` must take for `node` to be true; `None` when there is no such
/// set.
fn gate(node: &Node, field: FieldId) -> Option<Vec<(bool, &str)>> {
    match node {
        Node::Test(id, Test::Str(m)) if *id == field && m.is_exact_only() => {
            Some(m.exact.iter().map(|v| (m.ci, &**v)).collect())
        }
        Node::And(parts) => parts
            .iter()
            .filter_map(|p| gate(p, field))
            .min_by_key(Vec::len),
        Node::Or(parts) => {
            let mut all = Vec::new();
            for p in parts.iter() {
                all.extend(gate(p, field)?);
            }
            Some(all)
        }
        Node::Const(false) => Some(Vec::new()),
        _ => None,
    }
}

impl Gates {
    /// The gates of `rules` on `fields` (fields no rule gates on are left out).
    pub fn build(rules: &[Rule], fields: &[FieldId]) -> Self {
        let n = rules.len();
        let mut gates = Vec::new();
        for &field in fields {
            let per_rule: Vec<_> = rules
                .iter()
                .map(|r| gate(&r.compiled.root, field))
                .collect();
            if per_rule.iter().all(Option::is_none) {
                continue;
            }
            let mut g = Gate {
                field,
                exact: FxHashMap::default(),
                folded: FxHashMap::default(),
                folded_all: Cands::new(n),
                free: Cands::new(n),
                gated: Cands::new(n),
            };
            for (i, values) in per_rule.iter().enumerate() {
                let i = i as u32;
                let Some(values) = values else {
                    g.free.add(i);
                    continue;
                };
                g.gated.add(i);
                for &(ci, v) in values {
                    let map = if ci {
                        g.folded_all.add(i);
                        &mut g.folded
                    } else {
                        &mut g.exact
                    };
                    map.entry(v.into()).or_insert_with(|| Cands::new(n)).add(i);
                }
            }
            gates.push(g);
        }
        Gates { gates }
    }

    /// Number of gated fields.
    pub fn len(&self) -> usize {
        self.gates.len()
    }

    /// Removes from `mask` the rules whose gate number `g` rules out, unless `value_of`
    /// does not know the field's value (`None`). Skipped when fewer than [`GATE_MIN`]
    /// rules of `mask` are gated on that field: evaluating those few costs no more.
    #[inline]
    pub fn restrict<'v>(
        &self,
        g: usize,
        mask: &mut Cands,
        value_of: &mut impl FnMut(FieldId) -> Option<FieldValue<'v>>,
    ) {
        let g = &self.gates[g];
        if g.gated.count_common(mask) < GATE_MIN {
            return;
        }
        let Some(v) = value_of(g.field) else {
            return;
        };
        let mut allowed = g.free.clone();
        any_str(v, |s| {
            if let Some(c) = g.exact.get(s) {
                allowed.or_with(c);
            }
            if g.folded.is_empty() {
                return false;
            }
            if s.is_ascii() && s.len() <= FOLD_BUF {
                let mut buf = [0u8; FOLD_BUF];
                let b = &mut buf[..s.len()];
                b.copy_from_slice(s.as_bytes());
                b.make_ascii_lowercase();
                if let Some(c) = std::str::from_utf8(b).ok().and_then(|k| g.folded.get(k)) {
                    allowed.or_with(c);
                }
            } else {
                allowed.or_with(&g.folded_all);
            }
            false
        });
        mask.and_with(&allowed);
    }
}
