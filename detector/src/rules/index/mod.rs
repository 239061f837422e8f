//! Rules indexed by what they require of a document, so an event is only evaluated against
//! rules that can match it (plus rules with no such requirement).
//!
//! A rule *requires* a set of keys ([`keys`]) when one of its `and` conjuncts is a positive
//! string test each of whose values or patterns needs something of the field: an exact
//! value (`==`, `in`, `in~`, `:` / `like` / `like~` without wildcards), a literal prefix,
//! suffix or substring (a wildcard pattern's literal run, a regex's required literal); or an
//! `or` each of whose branches requires keys (the union, possibly over several fields). Such
//! a conjunct is false when no key is present in the event, so skipping the rule then cannot
//! change the result. Among several requiring conjuncts the most selective one is chosen:
//! requirements on *common* fields (`event.action`, `event.type`, … whose values every exec
//! event shares) only when nothing else is available.
//!
//! Before keys, the gates ([`gate`]) drop every rule whose exact requirement on a common
//! field the event fails (an exec-only rule for a fork), all rules at once.
//!
//! Per event, exact keys are hash lookups and literal keys one Aho-Corasick pass per value
//! of the field. Case-insensitive keys are folded: a value is folded on the stack (ASCII),
//! and a value that is not ASCII (whose folding may produce ASCII characters) makes every
//! case-insensitive rule of that field a candidate.

mod cands;
mod gate;
mod keys;
mod literals;
mod regex_lit;

use rustc_hash::FxHashMap;

use super::Rule;
use super::eql::matcher::any_str;
use crate::ecs::field::{Document, FieldId, FieldValue};
use cands::Cands;
use gate::Gates;
use keys::{Anchor, required};
use literals::Literals;

/// Longest ASCII value folded on the stack for a case-insensitive lookup.
const FOLD_BUF: usize = 256;

/// Index over one field.
#[derive(Debug)]
struct FieldIndex {
    field: FieldId,
    exact: FxHashMap<Box<str>, Vec<u32>>,
    folded: FxHashMap<Box<str>, Vec<u32>>,
    /// Longest key of `folded`, in bytes: a longer ASCII value cannot fold to one.
    folded_max: usize,
    /// Case-sensitive literal keys.
    lits: Option<Literals>,
    /// Case-insensitive literal keys (folded).
    lits_ci: Option<Literals>,
    /// Every rule with a case-insensitive key here: the candidates of a value that is not
    /// ASCII (`K`, KELVIN SIGN, folds to `k`) or too long to fold on the stack.
    ci_all: Vec<u32>,
    /// Every rule keyed on this field: the candidates when a probe cannot tell its value.
    all: Vec<u32>,
    /// `all` as a set, to skip the field when the gates rule out all of them.
    all_set: Cands,
}

/// Pushes `i` unless it is already last (rules are added in increasing order).
fn push_once(list: &mut Vec<u32>, i: u32) {
    if list.last() != Some(&i) {
        list.push(i);
    }
}

impl FieldIndex {
    fn new(field: FieldId, n: usize) -> Self {
        FieldIndex {
            all_set: Cands::new(n),
            field,
            exact: FxHashMap::default(),
            folded: FxHashMap::default(),
            folded_max: 0,
            lits: None,
            lits_ci: None,
            ci_all: Vec::new(),
            all: Vec::new(),
        }
    }

    /// Adds the rules keyed on any element of `v`.
    #[inline]
    fn collect(&self, v: FieldValue<'_>, c: &mut Cands) {
        any_str(v, |s| {
            self.collect_str(s, c);
            false
        });
    }

    fn collect_str(&self, s: &str, c: &mut Cands) {
        if let Some(list) = self.exact.get(s) {
            c.add_all(list);
        }
        if let Some(l) = &self.lits {
            l.collect(s, c);
        }
        if self.ci_all.is_empty() {
            return;
        }
        if !s.is_ascii() {
            c.add_all(&self.ci_all);
            return;
        }
        if !self.folded.is_empty() && s.len() <= self.folded_max {
            if s.len() <= FOLD_BUF {
                let mut buf = [0u8; FOLD_BUF];
                let b = &mut buf[..s.len()];
                b.copy_from_slice(s.as_bytes());
                b.make_ascii_lowercase();
                if let Some(list) = std::str::from_utf8(b).ok().and_then(|k| self.folded.get(k)) {
                    c.add_all(list);
                }
            } else {
                c.add_all(&self.ci_all);
                return;
            }
        }
        if let Some(l) = &self.lits_ci {
            l.collect(s, c);
        }
    }
}

/// The whole index.
#[derive(Debug, Default)]
pub struct RuleIndex {
    /// Number of rules indexed.
    n: usize,
    /// Every rule (the start of each event's gate mask).
    full: Cands,
    /// What rules require of the common fields.
    gates: Gates,
    always: Vec<u32>,
    /// One entry per field some rule is keyed on.
    fields: Vec<FieldIndex>,
}

impl RuleIndex {
    /// Builds the index. `common` are fields whose values most events share (e.g.
    /// `event.action`): a rule is keyed on them only when it has no other requirement.
    pub fn build(rules: &[Rule], common: &[FieldId]) -> Self {
        let mut ix = RuleIndex {
            n: rules.len(),
            full: Cands::full(rules.len()),
            gates: Gates::build(rules, common),
            ..RuleIndex::default()
        };
        // (field position, case-insensitive, text, anchor, rule)
        let mut lit_keys: Vec<(usize, bool, String, Anchor, u32)> = Vec::new();
        for (i, r) in rules.iter().enumerate() {
            let i = i as u32;
            let Some(req) = required(&r.compiled.root, common) else {
                ix.always.push(i);
                continue;
            };
            for key in req {
                let p = match ix.fields.iter().position(|f| f.field == key.field) {
                    Some(p) => p,
                    None => {
                        ix.fields.push(FieldIndex::new(key.field, rules.len()));
                        ix.fields.len() - 1
                    }
                };
                let fi = &mut ix.fields[p];
                push_once(&mut fi.all, i);
                fi.all_set.add(i);
                if key.ci {
                    push_once(&mut fi.ci_all, i);
                }
                if key.anchor == Anchor::Whole {
                    let map = if key.ci {
                        fi.folded_max = fi.folded_max.max(key.text.len());
                        &mut fi.folded
                    } else {
                        &mut fi.exact
                    };
                    push_once(map.entry(key.text.into()).or_default(), i);
                } else {
                    lit_keys.push((p, key.ci, key.text, key.anchor, i));
                }
            }
        }
        for (p, fi) in ix.fields.iter_mut().enumerate() {
            for ci in [false, true] {
                let keys: Vec<(&str, Anchor, u32)> = lit_keys
                    .iter()
                    .filter(|k| k.0 == p && k.1 == ci)
                    .map(|k| (k.2.as_str(), k.3, k.4))
                    .collect();
                let l = Literals::build(&keys, ci);
                if ci {
                    fi.lits_ci = l;
                } else {
                    fi.lits = l;
                }
            }
        }
        ix
    }

    /// The fields rules are keyed on, with how many rules each.
    pub fn keyed_fields(&self) -> Vec<(FieldId, usize)> {
        self.fields.iter().map(|f| (f.field, f.all.len())).collect()
    }

    /// Number of rules evaluated for every event.
    pub fn unindexed(&self) -> usize {
        self.always.len()
    }

    /// The candidate rules of `doc`: unindexed rules and those a key of `doc` selects,
    /// less those the gates rule out.
    fn candidates_of(&self, doc: &dyn Document) -> Cands {
        let mut mask = self.full.clone();
        self.gates.restrict(&mut mask, |f| Some(doc.field(f)));
        let mut c = Cands::new(self.n);
        if mask.is_empty() {
            return c;
        }
        c.add_all(&self.always);
        for fi in &self.fields {
            if fi.all_set.intersects(&mask) {
                fi.collect(doc.field(fi.field), &mut c);
            }
        }
        c.and_with(&mask);
        c
    }

    /// How many rules [`RuleIndex::matches`] evaluates for `doc`: the index's
    /// effectiveness, for stats.
    pub fn candidates(&self, doc: &dyn Document) -> usize {
        self.candidates_of(doc).len()
    }

    /// Whether some rule could match the event `probe` partly describes: the candidates
    /// [`RuleIndex::matches`] would evaluate (every rule keyed on a field the probe cannot
    /// tell; no gate on such a field), each evaluated over the probe in three-valued
    /// logic; true unless every one is certainly false.
    pub fn may_match(&self, rules: &[Rule], probe: &dyn super::Probe) -> bool {
        let mut mask = self.full.clone();
        self.gates.restrict(&mut mask, |f| probe.field(f));
        if mask.is_empty() {
            return false;
        }
        let mut c = Cands::new(self.n);
        c.add_all(&self.always);
        for fi in &self.fields {
            if !fi.all_set.intersects(&mask) {
                continue;
            }
            match probe.field(fi.field) {
                Some(v) => fi.collect(v, &mut c),
                None => c.add_all(&fi.all),
            }
        }
        c.and_with(&mask);
        c.iter()
            .any(|i| rules[i as usize].compiled.root.eval3(probe) != Some(false))
    }

    /// Evaluates candidate rules and pushes the matching ones in rule order, without
    /// duplicates. `out` is cleared first.
    pub fn matches<'r>(&self, rules: &'r [Rule], doc: &dyn Document, out: &mut Vec<&'r Rule>) {
        out.clear();
        for i in self.candidates_of(doc).iter() {
            let r = &rules[i as usize];
            if r.compiled.matches(doc) {
                out.push(r);
            }
        }
    }
}
