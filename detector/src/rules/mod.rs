//! Elastic detection rules: TOML files as published, EQL compiled into matchers.
//!
//! ```text
//! files/dirs ──loader──► Rule { meta, query, compiled } ──► RuleSet (indexed) ──matches(doc)──► &Rule…
//! ```
//! The engine reads documents only through [`crate::ecs::field::Document`] and resolves
//! field names through a [`Schema`], so it serves live events, replay and tests alike.

pub mod eql;
pub mod error;
mod index;
pub mod loader;
pub mod meta;
#[cfg(test)]
pub(crate) mod testkit;
#[cfg(test)]
mod tests;

use std::path::PathBuf;

use crate::ecs::field::{Document, Schema};
pub use eql::{CompiledQuery, QueryError, compile_query};
pub use error::RuleError;
pub use loader::{collect_rule_files, load_file, parse_rule};
pub use meta::RuleMeta;

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

/// The outcome of loading one file, in the order files were found.
pub type LoadOutcome = Result<Rule, RuleError>;

/// Loads every rule file under `paths`, one outcome per file (or unreadable path).
pub fn load_all(paths: &[PathBuf], schema: &dyn Schema) -> Vec<LoadOutcome> {
    let (files, errors) = collect_rule_files(paths);
    let mut out: Vec<LoadOutcome> = errors.into_iter().map(Err).collect();
    out.extend(files.iter().map(|f| load_file(f, schema)));
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

/// A set of compiled rules with an index by the exact values they require
/// (`process.name`, `process.args`, … and `event.action` as a last resort).
#[derive(Debug)]
pub struct RuleSet {
    rules: Vec<Rule>,
    index: index::RuleIndex,
}

impl RuleSet {
    /// Indexes `rules`, which must have been compiled against `schema`.
    pub fn new(rules: Vec<Rule>, schema: &dyn Schema) -> Self {
        let common: Vec<_> = COMMON_FIELDS
            .iter()
            .filter_map(|f| schema.resolve(f).map(|d| d.id))
            .collect();
        let index = index::RuleIndex::build(&rules, &common);
        RuleSet { rules, index }
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

    /// Clears `out` and fills it with the rules matching `doc`, in rule order. Only rules
    /// whose required values fit the event are evaluated.
    /// Allocation-free once `out` has grown to the largest number of matches.
    #[inline]
    pub fn matches<'r>(&'r self, doc: &dyn Document, out: &mut Vec<&'r Rule>) {
        self.index.matches(&self.rules, doc, out);
    }

    /// Same result as [`RuleSet::matches`], evaluating every rule (for tests and benches).
    pub fn matches_unindexed<'r>(&'r self, doc: &dyn Document, out: &mut Vec<&'r Rule>) {
        out.clear();
        out.extend(self.rules.iter().filter(|r| r.matches(doc)));
    }

    /// The compiled rules, in load order (the order of [`RuleSet::matches`] results).
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

    /// How many rules have no indexable requirement and run for every event.
    pub fn unindexed_count(&self) -> usize {
        self.index.unindexed()
    }
}
