//! The one place that speaks the sequence engine's API ([`crate::rules::sequence`]): the
//! stage drives a [`Correlate`], so the stage's own logic (ordering, bodies, alerts) is
//! tested with a scripted correlator, and the engine's API meets the stage here only.

use std::sync::Arc;

use crate::ecs::EcsDocument;
use crate::ecs::field::Document;
use crate::rules::sequence::{
    KeyValue, SequenceEngine, SequenceLimits, SequenceMatch, TermCategory, TermHits, TermRef,
};
use crate::rules::{Probe, SequenceRule};

use super::Slot;

/// The handle of one event in the engine: shared, so the stage knows from its count whether
/// the engine kept the event (and only then stores its body).
pub type Handle = Arc<Slot>;

/// One completed sequence.
#[derive(Debug)]
pub struct Matched {
    /// The rule's position among the sequence rules.
    pub rule: usize,
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

/// What an event is to the correlator, decided when it arrives (before the reorder
/// window), so that the window need not keep its document.
#[derive(Debug)]
pub enum Prepared {
    /// The real engine: the terms hit, with their join keys.
    Hits(TermHits),
    /// A correlator that reads the document itself when the event's turn comes (tests).
    Doc(Box<EcsDocument>),
}

/// A sequence engine, as the stage drives it.
pub trait Correlate: Send {
    /// Whether no rule is a sequence (the stage then does nothing at all).
    fn is_empty(&self) -> bool;
    /// How many sequence rules run.
    fn rule_count(&self) -> usize;
    /// Whether some term could take an event of `doc`'s category (cheap pre-filter).
    fn wants(&self, doc: &EcsDocument) -> bool;
    /// Whether some term could match the event `probe` describes (false: no sequence needs
    /// its document). Conservative; true by default.
    fn may_match_probe(&self, probe: &dyn Probe) -> bool {
        let _ = probe;
        true
    }
    /// What `doc` is to the rules, computed on arrival; `None` when it changes no sequence
    /// (no term matches it), so it need not wait in the window at all.
    fn prepare(&mut self, doc: &EcsDocument) -> Option<Prepared>;
    /// [`Correlate::prepare`] of any [`Document`] (an event not built yet, seen through
    /// its snapshot): `None` when the correlator reads built documents only.
    fn prepare_from(&mut self, doc: &dyn Document) -> Option<Option<Prepared>> {
        let _ = doc;
        None
    }
    /// The first half of [`Correlate::prepare_from`]: the terms `doc` matches, into `out`,
    /// without reading join keys; false when the correlator reads built documents only.
    fn terms_from(&mut self, doc: &dyn Document, out: &mut Vec<TermRef>) -> bool {
        let _ = (doc, out);
        false
    }
    /// The second half: `terms` (from [`Correlate::terms_from`] of an event with the same
    /// term answers) with `doc`'s join keys; `None` when no hit is left (null keys).
    /// Equal to `prepare_from(doc)` when `terms` is what `terms_from(doc)` gives.
    fn keyed_from(&self, terms: &[TermRef], doc: &dyn Document) -> Option<Prepared> {
        let _ = (terms, doc);
        None
    }
    /// Every term the event `probe` describes may hit, into `out`; false when the
    /// correlator cannot tell (then no event is left out as idle).
    fn possible_terms(&self, probe: &dyn Probe, out: &mut Vec<TermRef>) -> bool {
        let _ = (probe, out);
        false
    }
    /// Whether a hit of `t` changes nothing given the correlator's state
    /// ([`crate::alert::sequence::idle`]); false by default.
    fn idle_hit(&self, t: TermRef) -> bool {
        let _ = t;
        false
    }
    /// [`Correlate::idle_hit`] for one join key (the encoded `key` of the hit): nothing
    /// pending with it; false by default.
    fn idle_hit_keyed(&self, t: TermRef, key: &[u8]) -> bool {
        let _ = (t, key);
        false
    }
    /// Feeds one prepared event, in `@timestamp` order.
    fn on_event(&mut self, ev: &Prepared, ts_ns: i64, event: Handle, out: &mut Vec<Matched>);
    /// Drops what `now_ns` has expired (and reports sequences ending in a missing event
    /// whose time has passed).
    fn expire(&mut self, now_ns: i64, out: &mut Vec<Matched>);
    fn stats(&self) -> EngineStats;
}

/// The sequence rules `rules` (tagged by their position) in an engine with `limits`.
pub fn for_rules(rules: &[SequenceRule], limits: Limits) -> Box<dyn Correlate> {
    Box::new(Engine::new(rules, limits))
}

/// The engine over the sequence rules, and the event categories their terms read.
struct Engine {
    engine: SequenceEngine<Handle>,
    /// The queries, for the pre-document gate without the index.
    queries: Vec<Arc<crate::rules::SequenceQuery>>,
    /// `None`: some term is `any` (every event is wanted).
    categories: Option<Vec<String>>,
    matches: Vec<SequenceMatch<Handle>>,
}

impl Engine {
    fn new(rules: &[SequenceRule], limits: Limits) -> Self {
        let mut engine = SequenceEngine::new(SequenceLimits {
            per_rule: limits.per_rule,
            total: limits.total,
            max_age_ns: limits.max_age_ns,
        });
        let mut categories = Some(Vec::new());
        let mut queries = Vec::new();
        for (tag, r) in rules.iter().enumerate() {
            engine.add_rule(tag, Arc::clone(&r.compiled));
            queries.push(Arc::clone(&r.compiled));
            for (c, _) in r.compiled.categories() {
                match (c, categories.as_mut()) {
                    (TermCategory::Any, _) => categories = None,
                    (TermCategory::Named(n), Some(cs)) if !cs.contains(n) => cs.push(n.clone()),
                    _ => {}
                }
            }
        }
        // One indexed pass per event over every term of every rule (the rules were
        // compiled against the ECS schema, which the documents' field ids are of). Without
        // it every term filter of every rule runs for every event: same matches, slower.
        if !rules.is_empty()
            && let Err(e) = engine.build_index(crate::ecs::schema())
        {
            tracing::warn!(error = %e, "sequence terms not indexed; every term runs for every event");
        }
        Engine {
            engine,
            queries,
            categories,
            matches: Vec::new(),
        }
    }

    fn take(&mut self, out: &mut Vec<Matched>) {
        out.extend(self.matches.drain(..).map(|m| Matched {
            rule: m.rule,
            events: m.events,
            join_key: m.join_key.iter().map(key_json).collect(),
        }));
    }
}

/// A join key value as JSON (`detector.sequence.join_key`; the line writer makes it a
/// keyword, see `shape::keyword`).
fn key_json(k: &KeyValue) -> serde_json::Value {
    use serde_json::Value;
    match k {
        KeyValue::Null => Value::Null,
        KeyValue::Str(s) => Value::String(s.clone()),
        KeyValue::Long(n) => Value::from(*n),
        KeyValue::Bool(b) => Value::Bool(*b),
        KeyValue::List(v) => Value::Array(v.iter().map(key_json).collect()),
    }
}

impl Correlate for Engine {
    fn is_empty(&self) -> bool {
        self.engine.rule_count() == 0
    }
    fn rule_count(&self) -> usize {
        self.engine.rule_count()
    }
    fn wants(&self, doc: &EcsDocument) -> bool {
        match &self.categories {
            None => true,
            Some(cs) => doc
                .event
                .as_ref()
                .is_some_and(|e| e.category.iter().any(|c| cs.contains(c))),
        }
    }
    fn may_match_probe(&self, probe: &dyn Probe) -> bool {
        if self.engine.is_indexed() {
            self.engine.may_match_probe(probe)
        } else {
            self.queries.iter().any(|q| q.may_match_probe(probe))
        }
    }
    fn prepare(&mut self, doc: &EcsDocument) -> Option<Prepared> {
        let hits = self.engine.hits(doc);
        (!hits.is_empty()).then_some(Prepared::Hits(hits))
    }
    fn prepare_from(&mut self, doc: &dyn Document) -> Option<Option<Prepared>> {
        let hits = self.engine.hits(doc);
        Some((!hits.is_empty()).then_some(Prepared::Hits(hits)))
    }
    fn terms_from(&mut self, doc: &dyn Document, out: &mut Vec<TermRef>) -> bool {
        self.engine.terms(doc, out);
        true
    }
    fn keyed_from(&self, terms: &[TermRef], doc: &dyn Document) -> Option<Prepared> {
        let hits = self.engine.keyed_hits(terms, doc);
        (!hits.is_empty()).then_some(Prepared::Hits(hits))
    }
    fn possible_terms(&self, probe: &dyn Probe, out: &mut Vec<TermRef>) -> bool {
        self.engine.possible_terms(probe, out)
    }
    fn idle_hit(&self, t: TermRef) -> bool {
        self.engine.idle_hit(t)
    }
    fn idle_hit_keyed(&self, t: TermRef, key: &[u8]) -> bool {
        self.engine.idle_hit_keyed(t, key)
    }
    fn on_event(&mut self, ev: &Prepared, ts_ns: i64, event: Handle, out: &mut Vec<Matched>) {
        match ev {
            Prepared::Hits(h) => self.engine.on_hits(h, ts_ns, &event, &mut self.matches),
            Prepared::Doc(d) => self.engine.on_event(&**d, ts_ns, &event, &mut self.matches),
        }
        self.take(out);
    }
    fn expire(&mut self, now_ns: i64, out: &mut Vec<Matched>) {
        self.engine.expire(now_ns, &mut self.matches);
        self.take(out);
    }
    fn stats(&self) -> EngineStats {
        let s = self.engine.totals();
        EngineStats {
            pending: s.pending as u64,
            evicted: s.evicted,
            expired: s.expired,
            matched: s.completed,
            approx_bytes: self.engine.approx_bytes() as u64,
        }
    }
}
