//! The one place that speaks the sequence engine's API ([`crate::rules::sequence`]): the
//! stage drives a [`Correlate`], so the stage's own logic (ordering, bodies, alerts) is
//! tested with a scripted correlator, and the engine's API meets the stage here only.

use std::sync::Arc;

use crate::ecs::EcsDocument;
use crate::rules::{RuleIdx, RuleSet};

use super::Slot;

/// The handle of one event in the engine: shared, so the stage knows from its count whether
/// the engine kept the event (and only then stores its body).
pub type Handle = Arc<Slot>;

/// One completed sequence.
#[derive(Debug)]
pub struct Matched {
    pub rule: RuleIdx,
    /// The events, in sequence order (missing-event terms have none).
    pub events: Vec<Handle>,
    /// The join key's values, as JSON.
    pub join_key: Vec<serde_json::Value>,
}

/// What the engine counted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct EngineStats {
    /// Sequences pending now.
    pub pending: u64,
    /// Pending sequences evicted by the caps (loss).
    pub evicted: u64,
    /// Pending sequences dropped when their maxspan (or the age bound) passed.
    pub expired: u64,
    /// Sequences completed.
    pub matched: u64,
    /// The engine's estimate of its own memory, bytes.
    pub approx_bytes: u64,
}

/// Bounds of the engine's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    pub total: usize,
    pub per_rule: usize,
    /// Age bound of a sequence without maxspan, ns.
    pub max_age_ns: i64,
}

/// A sequence engine, as the stage drives it.
pub trait Correlate: Send {
    /// Whether no rule is a sequence (the stage then does nothing at all).
    fn is_empty(&self) -> bool;
    /// How many sequence rules run.
    fn rule_count(&self) -> usize;
    /// Whether some term could take an event of `doc`'s category (cheap pre-filter).
    fn wants(&self, doc: &EcsDocument) -> bool;
    /// Feeds one event, in `@timestamp` order.
    fn on_event(&mut self, doc: &EcsDocument, ts_ns: i64, event: Handle, out: &mut Vec<Matched>);
    /// Drops what `now_ns` has expired (and reports sequences ending in a missing event
    /// whose time has passed).
    fn expire(&mut self, now_ns: i64, out: &mut Vec<Matched>);
    fn stats(&self) -> EngineStats;
}

/// The sequence rules of `rules` in an engine with `limits`.
pub fn for_rules(rules: &RuleSet, limits: Limits) -> Box<dyn Correlate> {
    Box::new(Engine::new(rules, limits))
}

/// Stand-in until the engine lands (merge of `seqengine`): knows no sequence rule.
struct Engine;

impl Engine {
    fn new(_rules: &RuleSet, _limits: Limits) -> Self {
        Engine
    }
}

impl Correlate for Engine {
    fn is_empty(&self) -> bool {
        true
    }
    fn rule_count(&self) -> usize {
        0
    }
    fn wants(&self, _doc: &EcsDocument) -> bool {
        false
    }
    fn on_event(&mut self, _: &EcsDocument, _: i64, _: Handle, _: &mut Vec<Matched>) {}
    fn expire(&mut self, _: i64, _: &mut Vec<Matched>) {}
    fn stats(&self) -> EngineStats {
        EngineStats::default()
    }
}
