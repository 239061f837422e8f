//! Rules indexed by what they require of a document, so an event is only evaluated against
//! rules that can match it (plus rules with no such requirement).
//!
//! A rule *requires* groups of keys ([`keys`]): a positive string test each of whose
//! values or patterns needs something of the field gives a group (an exact value for
//! `==`, `in`, `in~`, `:` / `like` / `like~` without wildcards; a literal prefix, suffix or
//! substring for a wildcard pattern's literal run or a regex's required literal); an `and`
//! gives the groups of its operands; an `or` whose every branch has groups gives unions
//! of them (possibly over several fields). No key of a group present: the rule is false.
//! The index keeps up to [`GROUPS`] groups per rule (the most selective; on *common*
//! fields such as `event.action` only when nothing else is available): a rule is a
//! candidate only when every one of its groups has a key present, so skipping it cannot
//! change the result. Negations never give keys.
//!
//! The gates ([`gate`]) drop every rule whose exact requirement on a common field the
//! event fails (an exec-only rule for a fork), all rules at once.
//!
//! Per event the check runs in steps ([`Step`]): cheap exact fields, the gates, then fields
//! with literal keys, stopping as soon as no rule remains possible. Exact keys are hash
//! lookups, literal keys one pass of small fingerprint filters per value of the field
//! (`literals`); hits set bits in one bitset of *slots* (rule × group). Case-insensitive
//! keys are folded: a value is folded on the stack (ASCII), and a value that is not ASCII
//! (whose folding may produce ASCII characters) hits every case-insensitive key of that
//! field.
//!
//! Verdicts about probes that have a key are remembered ([`verdict`]).

mod cands;
mod gate;
pub(crate) mod keys;
mod literals;
#[cfg(test)]
mod literals_dfa;
mod regex_lit;
mod verdict;
pub(crate) mod watch;

use rustc_hash::FxHashMap;

use super::Rule;
use super::eql::matcher::any_str;
use crate::ecs::field::{Document, FieldId, FieldValue};
use cands::Cands;
use gate::Gates;
use keys::{Anchor, requirements};
use literals::Literals;
pub use verdict::VerdictCache;

/// Longest ASCII value folded on the stack for a case-insensitive lookup.
const FOLD_BUF: usize = 256;

/// Most groups of keys (requiring conjuncts) kept per rule: a slot is `rule * GROUPS +
/// group`. Four, so the slots of 16 rules fill one 64-bit word.
const GROUPS: usize = 4;

/// A probe's index pass stops once at most this many rules remain possible: evaluating
/// them over the probe (which only a certainly-false rule survives unevaluated) costs less
/// than the remaining steps' lookups and automaton passes over every argument.
const EVAL_DIRECTLY: usize = 4;

/// Index over one field. Lists hold slots (`rule * GROUPS + group`), not rules.
#[derive(Debug)]
struct FieldIndex {
    field: FieldId,
    exact: FxHashMap<Box<str>, Vec<u32>>,
    folded: FxHashMap<Box<str>, Vec<u32>>,
    /// Longest key of `folded`, in bytes: a longer ASCII value cannot fold to one.
    folded_max: usize,
    /// Literal keys (prefixes, suffixes, substrings).
    lits: Option<Literals>,
    /// Every rule with a case-insensitive key here: the candidates of a value that is not
    /// ASCII (`K`, KELVIN SIGN, folds to `k`) or too long to fold on the stack.
    ci_all: Vec<u32>,
    /// Every slot keyed on this field: all hit when a probe cannot tell its value.
    all: Vec<u32>,
    /// The rules keyed on this field, to skip it when the gates rule out all of them.
    rules: Cands,
}

/// Pushes `i` unless it is already last (slots are added in increasing order).
fn push_once(list: &mut Vec<u32>, i: u32) {
    if list.last() != Some(&i) {
        list.push(i);
    }
}

impl FieldIndex {
    fn new(field: FieldId, n: usize) -> Self {
        FieldIndex {
            rules: Cands::new(n),
            field,
            exact: FxHashMap::default(),
            folded: FxHashMap::default(),
            folded_max: 0,
            lits: None,
            ci_all: Vec::new(),
            all: Vec::new(),
        }
    }

    /// Sets the slots keyed on any element of `v`.
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
        let ascii = s.is_ascii();
        if let Some(l) = &self.lits {
            l.collect(s, ascii, c);
        }
        if self.ci_all.is_empty() {
            return;
        }
        if !ascii {
            c.add_all(&self.ci_all);
            return;
        }
        if !self.folded.is_empty() && s.len() <= self.folded_max {
            if s.len() > FOLD_BUF {
                c.add_all(&self.ci_all);
                return;
            }
            let mut buf = [0u8; FOLD_BUF];
            let b = &mut buf[..s.len()];
            b.copy_from_slice(s.as_bytes());
            b.make_ascii_lowercase();
            if let Some(list) = std::str::from_utf8(b).ok().and_then(|k| self.folded.get(k)) {
                c.add_all(list);
            }
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
    /// The slots of groups a rule does not have (all four for a rule without any).
    absent: Cands,
    /// Rules without any group: candidates for every event the gates let through.
    unindexed: usize,
    /// One entry per field some rule is keyed on.
    fields: Vec<FieldIndex>,
    /// The order in which an event's fields are checked: cheap, selective ones first, so
    /// that once no rule remains possible the rest (a literal pass over every argument) is
    /// skipped.
    steps: Vec<Step>,
}

/// One step of the per-event check.
#[derive(Debug)]
enum Step {
    /// Gate number `0` ([`Gates`]).
    Gate(usize),
    /// The keys of field `index` of [`RuleIndex::fields`]. `not_done`: the slots whose
    /// groups still have keys on later steps (and absent slots): after this step, a rule
    /// with a slot neither hit nor there is no longer possible.
    Field { index: usize, not_done: Cands },
}

impl RuleIndex {
    /// Builds the index. `common` are fields whose values most events share (e.g.
    /// `event.action`): a rule is keyed on them only when it has no other requirement, and
    /// gated on them ([`gate`]) in any case.
    pub fn build(rules: &[Rule], common: &[FieldId]) -> Self {
        let n = rules.len();
        let mut ix = RuleIndex {
            n,
            full: Cands::full(n),
            gates: Gates::build(rules, common),
            absent: Cands::new(n * GROUPS),
            ..RuleIndex::default()
        };
        // (field position, case-insensitive, text, anchor, slot)
        let mut lit_keys: Vec<(usize, bool, String, Anchor, u32)> = Vec::new();
        for (i, r) in rules.iter().enumerate() {
            let groups = requirements(&r.compiled.root, common, GROUPS);
            ix.unindexed += groups.is_empty() as usize;
            for g in groups.len()..GROUPS {
                ix.absent.add((i * GROUPS + g) as u32);
            }
            for (g, keys) in groups.into_iter().enumerate() {
                let slot = (i * GROUPS + g) as u32;
                for key in keys {
                    let p = match ix.fields.iter().position(|f| f.field == key.field) {
                        Some(p) => p,
                        None => {
                            ix.fields.push(FieldIndex::new(key.field, n));
                            ix.fields.len() - 1
                        }
                    };
                    let fi = &mut ix.fields[p];
                    push_once(&mut fi.all, slot);
                    fi.rules.add(i as u32);
                    if key.ci {
                        push_once(&mut fi.ci_all, slot);
                    }
                    if key.anchor == Anchor::Whole {
                        let map = if key.ci {
                            fi.folded_max = fi.folded_max.max(key.text.len());
                            &mut fi.folded
                        } else {
                            &mut fi.exact
                        };
                        push_once(map.entry(key.text.into()).or_default(), slot);
                    } else {
                        lit_keys.push((p, key.ci, key.text, key.anchor, slot));
                    }
                }
            }
        }
        for (p, fi) in ix.fields.iter_mut().enumerate() {
            let keys: Vec<(&str, bool, Anchor, u32)> = lit_keys
                .iter()
                .filter(|k| k.0 == p)
                .map(|k| (k.2.as_str(), k.1, k.3, k.4))
                .collect();
            fi.lits = Literals::build(&keys);
        }
        ix.steps = ix.plan(&lit_keys);
        ix
    }

    /// The order of the per-event steps: mostly-exact fields that most rules (a quarter or
    /// more) are keyed on (hash lookups; the seed rule's `process.name`), then the gates,
    /// then the other fields, mostly-exact ones that most rules are keyed on first (a
    /// corpus's `process.name`, whose hash lookup rules out most rules, so the later fields
    /// of those are never looked at), then by fewest literals (`process.args` with its
    /// dozens of patterns last).
    fn plan(&self, lit_keys: &[(usize, bool, String, Anchor, u32)]) -> Vec<Step> {
        let literals = |p: usize| lit_keys.iter().filter(|k| k.0 == p).count();
        let exact = |p: usize| self.fields[p].exact.len() + self.fields[p].folded.len();
        let many = |p: usize| self.fields[p].rules.len() * 4 >= self.n;
        let early = |p: usize| literals(p) == 0 && many(p);
        let selective = |p: usize| many(p) && literals(p) * 4 <= exact(p);
        let mut order: Vec<usize> = (0..self.fields.len()).collect();
        order.sort_by_key(|&p| {
            let l = literals(p);
            (
                !early(p),
                !selective(p),
                l,
                std::cmp::Reverse(self.fields[p].rules.len()),
            )
        });
        let exact_only = order.iter().take_while(|&&p| early(p)).count();
        let slots_of = |p: usize| {
            let mut c = Cands::new(self.n * GROUPS);
            c.add_all(&self.fields[p].all);
            c
        };
        let mut steps = Vec::new();
        for (k, &p) in order.iter().enumerate() {
            if k == exact_only {
                steps.extend((0..self.gates.len()).map(Step::Gate));
            }
            let mut not_done = self.absent.clone();
            for &later in &order[k + 1..] {
                not_done.or_with(&slots_of(later));
            }
            steps.push(Step::Field { index: p, not_done });
        }
        if exact_only == order.len() {
            steps.extend((0..self.gates.len()).map(Step::Gate));
        }
        steps
    }

    /// The literal keys of every field that has some (tests).
    #[cfg(test)]
    fn literal_sets(&self) -> impl Iterator<Item = &Literals> {
        self.fields.iter().filter_map(|f| f.lits.as_ref())
    }

    /// The fields rules are keyed on, with how many rules each.
    pub fn keyed_fields(&self) -> Vec<(FieldId, usize)> {
        self.fields
            .iter()
            .map(|f| (f.field, f.rules.len()))
            .collect()
    }

    /// Number of rules evaluated for every event (that the gates let through).
    pub fn unindexed(&self) -> usize {
        self.unindexed
    }

    /// The candidate rules of an event whose fields `value_of` gives (`None`: unknown, then
    /// every key of the field counts as present): the rules the gates let through all of
    /// whose groups have a key present.
    /// Stops early once at most `enough` rules remain possible (a superset of the
    /// candidates, for a caller that evaluates each anyway).
    /// `start`: only these rules (all when `None`).
    fn candidates_by<'v>(
        &self,
        enough: usize,
        start: Option<&[u32]>,
        mut value_of: impl FnMut(FieldId) -> Option<FieldValue<'v>>,
    ) -> Cands {
        let mut possible = match start {
            None => self.full.clone(),
            Some(rules) => {
                let mut c = Cands::new(self.n);
                c.add_all(rules);
                c
            }
        };
        let mut hit = self.absent.clone();
        for step in &self.steps {
            if possible.is_empty() || (enough > 0 && possible.len() <= enough) {
                break;
            }
            match step {
                Step::Gate(g) => self.gates.restrict(*g, &mut possible, &mut value_of),
                Step::Field { index, not_done } => {
                    let fi = &self.fields[*index];
                    if !fi.rules.intersects(&possible) {
                        continue;
                    }
                    match value_of(fi.field) {
                        Some(v) => fi.collect(v, &mut hit),
                        None => hit.add_all(&fi.all),
                    }
                    possible.retain_complete::<GROUPS>(&hit, Some(not_done));
                }
            }
        }
        possible
    }

    /// How many rules [`RuleIndex::matches`] evaluates for `doc`: the index's
    /// effectiveness, for stats.
    pub fn candidates(&self, doc: &dyn Document) -> usize {
        self.candidates_by(0, None, |f| Some(doc.field(f))).len()
    }

    /// Whether some rule could match the event `probe` partly describes: the candidates
    /// [`RuleIndex::matches`] would evaluate (keys on a field the probe cannot tell count as
    /// present; or, once at most [`EVAL_DIRECTLY`] rules remain possible, those), each
    /// evaluated over the probe in three-valued logic; true unless every one is certainly
    /// false.
    pub fn may_match(&self, rules: &[Rule], probe: &dyn super::Probe) -> bool {
        self.candidates_by(EVAL_DIRECTLY, None, |f| probe.field(f))
            .iter()
            .any(|i| rules[i as usize].compiled.root.eval3(probe) != Some(false))
    }

    /// [`RuleIndex::may_match`] among `start` only: true unless every rule of `start` is
    /// certainly false for `probe` (the rules left are known to be false).
    pub fn may_match_among(&self, rules: &[Rule], start: &[u32], probe: &dyn super::Probe) -> bool {
        !start.is_empty()
            && self
                .candidates_by(EVAL_DIRECTLY, Some(start), |f| probe.field(f))
                .iter()
                .any(|i| rules[i as usize].compiled.root.eval3(probe) != Some(false))
    }

    /// How many candidates [`RuleIndex::may_match`] evaluates over `probe` (diagnostics).
    pub fn probe_candidates(&self, probe: &dyn super::Probe) -> usize {
        self.candidates_by(EVAL_DIRECTLY, None, |f| probe.field(f))
            .len()
    }

    /// The candidate rules of `probe` that it cannot rule out (their three-valued verdict
    /// is not false): the rules that make [`RuleIndex::may_match`] true. Diagnostics
    /// (which rules force events off the fast path), not the per-event path.
    pub fn undecided(&self, rules: &[Rule], probe: &dyn super::Probe) -> Vec<super::RuleIdx> {
        self.candidates_by(EVAL_DIRECTLY, None, |f| probe.field(f))
            .iter()
            .filter(|&i| rules[i as usize].compiled.root.eval3(probe) != Some(false))
            .map(super::RuleIdx)
            .collect()
    }

    /// Evaluates candidate rules and pushes the indices of the matching ones in rule order,
    /// without duplicates. `out` is cleared first.
    pub fn matches(&self, rules: &[Rule], doc: &dyn Document, out: &mut Vec<super::RuleIdx>) {
        out.clear();
        for i in self.candidates_by(0, None, |f| Some(doc.field(f))).iter() {
            if rules[i as usize].compiled.matches(doc) {
                out.push(super::RuleIdx(i));
            }
        }
    }
}
