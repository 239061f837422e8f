//! Elastic detection rules: TOML files as published, EQL compiled into matchers.
//!
//! ```text
//! files/dirs ──loader──► Rule { meta, query, compiled } ──► RuleSet (indexed) ──matches(doc)──► RuleIdx…
//! ```
//! A match is a [`RuleIdx`], the rule's position in its set: per-rule tables kept beside a
//! set (alert templates, counters, suppression state) are indexed by it.
//! Sequence rules (`sequence by … [..] [..]`) load as [`LoadedRule::Sequence`] through
//! [`load_all_kinds`] / [`parse_any_rule`] and run on a [`SequenceEngine`] ([`sequence`]);
//! the single-event path ([`load_all`], [`RuleSet::load`]) refuses them as before.
//! The engine reads documents only through [`crate::ecs::field::Document`] and resolves
//! field names through a [`Schema`], so it serves live events, replay and tests alike.

pub mod eql;
pub mod error;
pub(crate) mod generations;
pub(crate) mod index;
pub mod loader;
pub mod meta;
pub mod sequence;
#[cfg(test)]
pub(crate) mod testkit;
#[cfg(test)]
mod tests;

use std::path::PathBuf;

use crate::ecs::field::{Document, Schema};
pub use eql::{CompiledQuery, QueryError, compile_query};
pub use error::RuleError;
pub use loader::{collect_rule_files, load_any_file, load_file, parse_any_rule, parse_rule};
pub use meta::RuleMeta;
pub use sequence::{
    SequenceEngine, SequenceLimits, SequenceMatch, SequenceQuery, SequenceStats, compile_sequence,
};

/// One compiled rule.
#[derive(Debug)]
pub struct Rule {
    /// What alerts carry.
    pub meta: RuleMeta,
    /// The EQL query text as written in the file.
    pub query: String,
    /// The file it came from.
    pub path: PathBuf,
    pub(crate) compiled: CompiledQuery,
}

impl Rule {
    /// Whether this rule alone matches `doc` (no index involved).
    #[inline]
    pub fn matches(&self, doc: &dyn Document) -> bool {
        self.compiled.matches(doc)
    }
}

/// One compiled sequence rule ([`sequence`]): run by a [`SequenceEngine`], not a
/// [`RuleSet`].
#[derive(Debug)]
pub struct SequenceRule {
    /// What alerts carry.
    pub meta: RuleMeta,
    /// The EQL query text as written in the file.
    pub query: String,
    /// The file it came from.
    pub path: PathBuf,
    /// Shared with the engine ([`SequenceEngine::add_rule`]).
    pub compiled: std::sync::Arc<SequenceQuery>,
}

/// A rule file's rule, of either kind ([`load_all_kinds`], [`parse_any_rule`]).
#[derive(Debug)]
pub enum LoadedRule {
    Event(Rule),
    Sequence(SequenceRule),
}

/// The position of a rule in its [`RuleSet`] (load order): what [`RuleSet::matches`]
/// returns, and what per-rule tables kept beside a set (alert templates, counters) are
/// indexed by, so that no caller has to recover a position from a reference. Meaningful only
/// for the set that produced it: a reload makes a new set and new indices.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RuleIdx(u32);

impl RuleIdx {
    /// The index of the `i`-th rule (rule sets index their rules with `u32` slots).
    pub(crate) const fn new(i: usize) -> Self {
        assert!(
            i <= u32::MAX as usize,
            "a rule set holds fewer than 2^32 rules"
        );
        RuleIdx(i as u32)
    }

    /// The position, for indexing a table parallel to [`RuleSet::rules`].
    #[inline]
    pub fn get(self) -> usize {
        self.0 as usize
    }
}

/// The outcome of loading one file, in the order files were found.
pub type LoadOutcome = Result<Rule, RuleError>;

/// Loads every rule file under `paths`, one outcome per file (or unreadable path).
pub fn load_all(paths: &[PathBuf], schema: &dyn Schema) -> Vec<LoadOutcome> {
    let (files, errors) = collect_rule_files(paths);
    let mut out: Vec<LoadOutcome> = errors.into_iter().map(Err).collect();
    out.extend(files.iter().map(|f| load_file(f, schema)));
    out
}

/// Loads every rule file under `paths`, single-event and sequence rules alike, one outcome
/// per file (or unreadable path). [`load_all`] is the single-event path: there a sequence
/// is an error, as before.
pub fn load_all_kinds(
    paths: &[PathBuf],
    schema: &dyn Schema,
) -> Vec<Result<LoadedRule, RuleError>> {
    let (files, errors) = collect_rule_files(paths);
    let mut out: Vec<Result<LoadedRule, RuleError>> = errors.into_iter().map(Err).collect();
    out.extend(files.iter().map(|f| load_any_file(f, schema)));
    out
}

/// Fields whose values most process events share: the index keys a rule on them only when
/// the rule requires no other exact value (`event.action == "exec"` alone selects nearly
/// every event).
const COMMON_FIELDS: &[&str] = &[
    "event.action",
    "event.type",
    "event.category",
    "event.kind",
    "event.module",
    "event.dataset",
    "host.os.type",
    "host.os.name",
    "host.os.family",
    "host.os.platform",
    "host.architecture",
];

/// A partial view of an event before its document is built ([`RuleSet::may_match_probe`]);
/// defined beside [`Document`], whose fields it foretells.
pub use crate::ecs::field::Probe;
pub use index::VerdictCache;

/// A set of compiled rules with an index by what they require (exact values, literals of
/// patterns; `process.name`, `process.args`, … and `event.action` as a last resort).
#[derive(Debug)]
pub struct RuleSet {
    rules: Vec<Rule>,
    index: index::RuleIndex,
    /// `process.name` and `event.action` in the schema the rules were compiled against.
    fields: [Option<crate::ecs::field::FieldId>; 2],
    /// Unique per set built in this process ([`RuleSet::id`]).
    id: u64,
    /// The fields a probe's coarse view leaves unknown ([`Probe::with_coarse`]).
    args_fields: Vec<crate::ecs::field::FieldId>,
}

/// A probe that knows only the process name and the event action: enough to ask the index
/// whether an event could match before paying for anything else.
struct IndexProbe<'a> {
    fields: [Option<crate::ecs::field::FieldId>; 2],
    values: [&'a str; 2],
}

impl Probe for IndexProbe<'_> {
    fn field(&self, id: crate::ecs::field::FieldId) -> Option<crate::ecs::field::FieldValue<'_>> {
        use crate::ecs::field::FieldValue;
        let i = self.fields.iter().position(|f| *f == Some(id))?;
        Some(FieldValue::Str(self.values[i]))
    }
}

impl RuleSet {
    /// Indexes `rules`, which must have been compiled against `schema`.
    pub fn new(rules: Vec<Rule>, schema: &dyn Schema) -> Self {
        let common: Vec<_> = COMMON_FIELDS
            .iter()
            .filter_map(|f| schema.resolve(f).map(|d| d.id))
            .collect();
        let index = index::RuleIndex::build(&rules, &common);
        let fields = [
            schema.resolve("process.name").map(|d| d.id),
            schema.resolve("event.action").map(|d| d.id),
        ];
        static NEXT_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        let args_fields: Vec<_> = crate::ecs::ARGS_FIELDS
            .iter()
            .filter_map(|f| schema.resolve(f).map(|d| d.id))
            .collect();
        RuleSet {
            rules,
            index,
            fields,
            args_fields,
            id: NEXT_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        }
    }

    /// Loads files and directories of `.toml` rules; every rule that fails is reported and
    /// left out, the rest are compiled and indexed.
    pub fn load(paths: &[PathBuf], schema: &dyn Schema) -> (RuleSet, Vec<RuleError>) {
        let mut rules = Vec::new();
        let mut errors = Vec::new();
        for o in load_all(paths, schema) {
            match o {
                Ok(r) => rules.push(r),
                Err(e) => errors.push(e),
            }
        }
        (RuleSet::new(rules, schema), errors)
    }

    /// Clears `out` and fills it with the indices of the rules matching `doc`, in rule
    /// order. Only rules whose required values fit the event are evaluated.
    /// Allocation-free once `out` has grown to the largest number of matches.
    #[inline]
    pub fn matches(&self, doc: &dyn Document, out: &mut Vec<RuleIdx>) {
        self.index.matches(&self.rules, doc, out);
    }

    /// Same result as [`RuleSet::matches`], evaluating every rule (for tests and benches).
    pub fn matches_unindexed(&self, doc: &dyn Document, out: &mut Vec<RuleIdx>) {
        out.clear();
        out.extend(self.iter().filter(|(_, r)| r.matches(doc)).map(|(i, _)| i));
    }

    /// The rule at `idx` (an index this set returned).
    #[inline]
    pub fn rule(&self, idx: RuleIdx) -> &Rule {
        &self.rules[idx.get()]
    }

    /// Every rule with its index, in load order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (RuleIdx, &Rule)> {
        self.rules
            .iter()
            .enumerate()
            .map(|(i, r)| (RuleIdx::new(i), r))
    }

    /// An id no other rule set built by this process has: what caches of verdicts about
    /// this set (which change when the rules are reloaded) are keyed on.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The compiled rules, in load order ([`RuleIdx::get`] indexes this slice).
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// Number of compiled rules.
    pub fn len(&self) -> usize {
        self.rules.len()
    }

    /// Whether no rule compiled.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// How many rules [`RuleSet::matches`] evaluates for `doc` (index effectiveness).
    pub fn candidate_count(&self, doc: &dyn Document) -> usize {
        self.index.candidates(doc)
    }

    /// Whether any rule could match an event whose `process.name` and `event.action` are
    /// these: false means no rule can, so the caller may skip building the document at all.
    /// Conservative (never false when a rule could match): every other field is unknown
    /// ([`RuleSet::may_match_probe`] with a probe of these two fields).
    pub fn may_match(&self, process_name: &str, event_action: &str) -> bool {
        let probe = IndexProbe {
            fields: self.fields,
            values: [process_name, event_action],
        };
        self.index.may_match(&self.rules, &probe)
    }

    /// Whether any rule could match the event `probe` describes: false means no rule can,
    /// so the caller may skip building its document. Each candidate rule of the index is
    /// evaluated over the probe in three-valued logic (unknown fields unknown): false only
    /// when every candidate is false whatever the unknown fields hold. Conservative: true
    /// when a key field is unknown.
    pub fn may_match_probe(&self, probe: &dyn Probe) -> bool {
        self.index.may_match(&self.rules, probe)
    }

    /// The rules [`RuleSet::may_match_probe`] cannot rule out for `probe` (diagnostics:
    /// which rules make an event need its document).
    pub fn undecided(&self, probe: &dyn Probe) -> Vec<RuleIdx> {
        self.index.undecided(&self.rules, probe)
    }

    /// How many rules the index leaves [`RuleSet::may_match_probe`] to evaluate over
    /// `probe` (diagnostics).
    pub fn probe_candidate_count(&self, probe: &dyn Probe) -> usize {
        self.index.probe_candidates(probe)
    }

    /// [`RuleSet::may_match_probe`], remembered in `cache` by the probe's key
    /// ([`Probe::key`]) for as long as the cache is used with this set: a probe with a key
    /// seen before (the forks of a long-lived shell, the exits of its commands, repeated
    /// commands) is decided by one hash lookup. A probe without a key is decided afresh.
    pub fn may_match_cached(&self, probe: &dyn Probe, cache: &mut VerdictCache) -> bool {
        cache.decide_coarse(
            self.id,
            probe,
            |view| {
                let undecided = self.index.undecided(&self.rules, view);
                let undecided = undecided.iter().map(|r| r.0).collect();
                index::watch::possible(&self.rules, undecided, view, &self.args_fields)
            },
            |left| {
                let shape = |&i: &u32| {
                    let root = &self.rules[i as usize].compiled.root;
                    root.eval3_shape(probe, &self.args_fields) != Some(false)
                };
                left.iter().copied().filter(shape).collect()
            },
            |start| self.index.may_match_among(&self.rules, start, probe),
            || self.may_match_probe(probe),
        )
    }

    /// The fields the index keys rules on, with how many rules each (diagnostics: a field
    /// a pre-document probe cannot read makes every event a candidate).
    pub fn keyed_fields(&self) -> Vec<(crate::ecs::field::FieldId, usize)> {
        self.index.keyed_fields()
    }

    /// How many rules have no indexable requirement and run for every event.
    pub fn unindexed_count(&self) -> usize {
        self.index.unindexed()
    }
}
