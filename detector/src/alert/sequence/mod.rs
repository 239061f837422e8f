//! EQL sequences in the alert stage: events in, completed sequences out, in the same stage
//! that runs single-event rules, so `run` and `replay` give the same sequence alerts for the
//! same events.
//!
//! ```text
//! doc ──engine.prepare: terms hit + join keys (one indexed pass)──► none? not fed
//!   └─► Reorder (by @timestamp, window) ──in order──► engine.on_event(hits)
//!         │ late: counted, not fed                      │ kept? keep the event (once, shared)
//!                                                       ▼
//!                            completed sequence ──► Completed { rule, events' JSON }
//! ```
//! - [`reorder`]: the window that puts events back in `@timestamp` order; late events are
//!   counted (loss) and not fed. An event waits there as what it is to the rules (its
//!   [`engine::Prepared`] hits) and the event itself, not evaluated again.
//! - [`bodies`]: an event the engine kept (its handle is still held after `on_event`),
//!   shared by every sequence holding it: kept as it came while young, compressed once it
//!   has stayed past the `YOUNG` (256) most recent ones (most are dropped before, never
//!   encoded).
//! - [`shape`]: a completed sequence as Elastic's building-block alerts plus a shell alert.
//! - [`engine`]: the engine's API, met here only.
//! - `termcache`: the terms an event's snapshot matches, remembered by its probe key, so
//!   [`SequenceStage::decide`] costs one lookup and the join keys' reads for most events.

pub mod bodies;
pub mod engine;
pub mod idle;
pub mod lazy;
pub mod reorder;
pub mod rules;
pub mod shape;
mod termcache;

#[cfg(test)]
mod tests;

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::Value;

use self::bodies::{Body, BodyStats, BodyStore};
use self::engine::{Correlate, EngineStats, Handle, Limits, Matched, Prepared};
use self::idle::{IdleSkip, IdleStats};
use self::lazy::{LazyEvent, SnapshotDoc, SnapshotFields};
use self::reorder::{Admit, Reorder, ReorderStats};
use self::termcache::{TermCache, Terms};
use super::clock::EventTime;
use crate::config::SequencesConfig;
use crate::ecs::EcsDocument;
use crate::rules::{Probe, SequenceRule, VerdictCache};

/// An event as the engine holds it: filled only when the engine kept it, first with the
/// event as it came (young), compressed into a [`Body`] once it has stayed a while
/// (`YOUNG`).
#[derive(Debug, Default)]
pub struct Slot {
    held: Mutex<Held>,
}

/// What a [`Slot`] holds.
#[derive(Debug, Default)]
enum Held {
    #[default]
    Empty,
    /// The document, not yet encoded.
    Doc(Box<EcsDocument>),
    /// The JSON as read (replay), not yet compressed.
    Raw(Box<[u8]>),
    /// The process snapshot as of the event (`run`): its document not built yet.
    Lazy(Box<LazyEvent>),
    Body(Arc<Body>),
}

impl Slot {
    fn lock(&self) -> std::sync::MutexGuard<'_, Held> {
        self.held.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The event as JSON, as an alert shows it.
    fn value(&self) -> Option<Value> {
        match &*self.lock() {
            Held::Empty => None,
            Held::Doc(d) => serde_json::to_value(&**d).ok(),
            Held::Raw(r) => serde_json::from_slice(r).ok(),
            Held::Lazy(l) => serde_json::to_value(l.doc()).ok(),
            Held::Body(b) => serde_json::from_slice(&b.json().ok()?).ok(),
        }
    }

    /// Compresses a young event into a body (no-op if already one).
    fn settle(&self, bodies: &mut BodyStore) {
        let mut held = self.lock();
        let json = match &*held {
            Held::Doc(d) => serde_json::to_vec(&**d).unwrap_or_default(),
            Held::Raw(r) => r.to_vec(),
            Held::Lazy(l) => serde_json::to_vec(&l.doc()).unwrap_or_default(),
            Held::Empty | Held::Body(_) => return,
        };
        *held = Held::Body(bodies.store(&json));
    }
}

/// How many kept events stay young (uncompressed) before they are compressed: most
/// pending sequences are replaced within a few events (a newer match of the same key, the
/// next stage), and a young event dropped before it settles is never encoded at all; the
/// few that stay are compressed, so memory at 100,000 pending sequences stays that of the
/// compressed bodies plus this many documents.
const YOUNG: usize = 256;

/// How sequences run (from `[sequences]`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SequenceSettings {
    pub reorder_window_ns: i64,
    pub reorder_max_events: usize,
    pub limits: Limits,
}

impl SequenceSettings {
    pub fn from_config(c: &SequencesConfig) -> Self {
        let ms = i64::try_from(c.reorder_window_ms).unwrap_or(i64::MAX / 1_000_000);
        SequenceSettings {
            reorder_window_ns: ms.saturating_mul(1_000_000),
            reorder_max_events: c.reorder_max_events,
            limits: Limits {
                total: c.max_pending,
                per_rule: c.max_pending_per_rule,
                max_age_ns: i64::try_from(c.max_span_secs)
                    .unwrap_or(i64::MAX)
                    .saturating_mul(1_000_000_000),
            },
        }
    }
}

impl Default for SequenceSettings {
    fn default() -> Self {
        Self::from_config(&SequencesConfig::default())
    }
}

/// Everything the sequence side counted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct SequenceStats {
    /// Sequence rules loaded.
    pub rules: u64,
    pub reorder: ReorderStats,
    /// Events without a readable `@timestamp` (cannot be ordered: not fed).
    pub untimed: u64,
    pub bodies: BodyStats,
    pub engine: EngineStats,
    /// Completed sequences whose events' bodies could not be read back (none expected).
    pub unreadable: u64,
    /// Events decided on their process snapshot, without a document
    /// ([`SequenceStage::decide`]).
    pub decided: u64,
    /// Events left out because they could change no sequence ([`idle`]).
    pub idle: IdleStats,
}

impl SequenceStats {
    /// Events lost to sequences: late beyond the window, or without a time.
    pub fn events_lost(&self) -> u64 {
        self.reorder.late + self.untimed
    }
}

/// One completed sequence, ready for the policy and the alert lines.
#[derive(Debug)]
pub struct Completed {
    /// The rule's position among the sequence rules.
    pub rule: usize,
    /// The events' documents (as stored), in sequence order.
    pub events: Vec<Value>,
    pub join_key: Vec<Value>,
    /// The last event as a typed document (what the policy looks at: exceptions,
    /// suppression key, event time).
    pub last: EcsDocument,
}

/// An event waiting in the window: what it is to the rules, and the event itself in case
/// the engine keeps it.
struct Waiting {
    prepared: Prepared,
    /// Its JSON as it came (replay), kept instead of `doc`.
    event: Held,
}

/// The reorder window, the engine and the bodies.
pub struct SequenceStage {
    /// Unique per stage built in this process: what caches of gate verdicts are keyed on.
    id: u64,
    engine: Box<dyn Correlate>,
    window: Reorder<Waiting>,
    bodies: Bodies,
    matched: Vec<Matched>,
    rules: u64,
    untimed: u64,
    unreadable: u64,
    /// The fields [`SnapshotDoc`] reads from snapshots themselves.
    identity: SnapshotFields,
    decided: u64,
    /// Term passes by snapshot probe key ([`termcache`]).
    term_cache: TermCache,
    /// Reused: the probe key, the terms found.
    probe_key: Vec<u8>,
    terms: Vec<crate::rules::sequence::TermRef>,
    /// What is under way per rule, and the events left out as idle ([`idle`]).
    idle: IdleSkip,
}

/// What the sequence rules make of an event, decided on its snapshot
/// ([`SequenceStage::decide`]).
#[derive(Debug)]
pub enum Decision {
    /// Some term reads a field the snapshot cannot tell: build the document and offer it.
    Undecided,
    /// No term takes the event (or only with a null key): it changes no sequence.
    NoTerm,
    /// The terms it hits, with their keys: offer it with [`SequenceStage::offer_lazy`].
    Hits(Prepared),
}

impl SequenceStage {
    /// The sequence rules `rules` (matches name a rule by its position there).
    pub fn new(rules: &[SequenceRule], settings: SequenceSettings) -> Self {
        Self::with_engine(engine::for_rules(rules, settings.limits), settings)
    }

    /// A stage over any correlator (tests).
    pub fn with_engine(engine: Box<dyn Correlate>, settings: SequenceSettings) -> Self {
        static NEXT_ID: AtomicU64 = AtomicU64::new(1 << 62);
        SequenceStage {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            rules: engine.rule_count() as u64,
            idle: IdleSkip::new(engine.rule_count()),
            engine,
            window: Reorder::new(settings.reorder_window_ns, settings.reorder_max_events),
            bodies: Bodies::default(),
            matched: Vec::new(),
            untimed: 0,
            unreadable: 0,
            identity: SnapshotFields::new(),
            decided: 0,
            term_cache: TermCache::default(),
            probe_key: Vec::new(),
            terms: Vec::new(),
        }
    }

    /// Whether any sequence rule runs (else every call is a no-op).
    #[inline]
    pub fn is_active(&self) -> bool {
        !self.engine.is_empty()
    }

    /// Whether some term of some sequence rule (an `until` term included) could match the
    /// event `probe` describes: false means no sequence needs the event, so the caller may
    /// skip building its document (as [`crate::rules::RuleSet::may_match_probe`] says for
    /// single-event rules). Conservative: true when a tested field is unknown; always true
    /// for a scripted engine.
    pub fn may_match_probe(&self, probe: &dyn Probe) -> bool {
        !self.engine.is_empty() && self.engine.may_match_probe(probe)
    }

    /// [`SequenceStage::may_match_probe`], remembered in `cache` by the probe's key (one
    /// cache per document source, as for the single-event rules).
    pub fn may_match_cached(&self, probe: &dyn Probe, cache: &mut VerdictCache) -> bool {
        if self.engine.is_empty() {
            return false;
        }
        cache.decide(self.id, probe, || self.may_match_probe(probe))
    }

    /// Takes one event (in arrival order): it waits in the window, and what the window
    /// releases goes through the engine; completed sequences are appended to `out`.
    /// `raw`: the event's JSON as read (replay), kept instead of re-encoding `doc`.
    pub fn offer(&mut self, doc: &EcsDocument, raw: Option<&[u8]>, out: &mut Vec<Completed>) {
        if self.engine.is_empty() || !self.engine.wants(doc) {
            return;
        }
        // The terms it hits and their keys, now: it waits without its document's
        // evaluation, and an event no term takes (or only with a null key) changes no
        // sequence, so it need not wait at all.
        let Some(prepared) = self.engine.prepare(doc) else {
            return;
        };
        let Some(ts) = doc
            .timestamp
            .as_deref()
            .and_then(EventTime::parse)
            .map(EventTime::unix_nanos)
        else {
            self.untimed += 1;
            return;
        };
        let waiting = Waiting {
            prepared,
            event: match raw {
                Some(r) => Held::Raw(Box::from(r)),
                None => Held::Doc(Box::new(doc.clone())),
            },
        };
        self.push(ts, waiting, out);
    }

    /// What the sequence terms make of the event whose snapshot is `snap` and snapshot
    /// probe `probe` (`DocBuilder::probe`), without its document: exactly what
    /// [`SequenceStage::offer`] of its document would compute, or
    /// [`Decision::Undecided`] when a term or key reads a field the snapshot cannot tell.
    ///
    /// The terms matched are remembered by the probe's key when no term read a field the
    /// key does not determine ([`termcache`]); the join keys are read for each event.
    pub fn decide(&mut self, probe: &dyn Probe, snap: &crate::process::Snapshot) -> Decision {
        if self.engine.is_empty() {
            return Decision::NoTerm;
        }
        let doc = SnapshotDoc::new(probe, snap, &self.identity);
        let keyed = probe.key(termcache::KEY_MAX, &mut self.probe_key);
        if keyed {
            doc.key_suffix(&mut self.probe_key);
        }
        match keyed
            .then(|| self.term_cache.get(&self.probe_key))
            .flatten()
        {
            Some(Terms::Undecided) => return Decision::Undecided,
            Some(Terms::Hit(t)) => {
                self.terms.clear();
                self.terms.extend_from_slice(t);
            }
            None => {
                if !self.engine.terms_from(&doc, &mut self.terms) {
                    // A correlator that reads documents only (tests) cannot tell.
                    return Decision::Undecided;
                }
                if keyed && !doc.identity_read() {
                    let terms = if doc.undecided() {
                        Terms::Undecided
                    } else {
                        Terms::Hit(self.terms.as_slice().into())
                    };
                    self.term_cache.insert(&self.probe_key, terms);
                }
                if doc.undecided() {
                    return Decision::Undecided;
                }
            }
        }
        let prepared = if self.terms.is_empty() {
            None
        } else {
            self.engine.keyed_from(&self.terms, &doc)
        };
        if doc.undecided() {
            return Decision::Undecided;
        }
        self.decided += 1;
        match prepared {
            None => Decision::NoTerm,
            Some(p) => Decision::Hits(p),
        }
    }

    /// Takes one event [`SequenceStage::decide`] found hits for, at `ts_ns` (its
    /// `@timestamp`), kept as its snapshot if the engine keeps it: as
    /// [`SequenceStage::offer`] of its document.
    /// Hits that can change nothing now are dropped first ([`idle`]); an event left with
    /// none does not wait.
    pub fn offer_lazy(
        &mut self,
        mut prepared: Prepared,
        ts_ns: i64,
        event: LazyEvent,
        out: &mut Vec<Completed>,
    ) {
        if self.idle.prune(self.engine.as_ref(), &mut prepared, ts_ns) {
            return;
        }
        let waiting = Waiting {
            prepared,
            event: Held::Lazy(Box::new(event)),
        };
        self.push(ts_ns, waiting, out);
    }

    /// Before its snapshot (`run`): whether the event `probe` describes, at `ts_ns`, is
    /// needed by a sequence: some term may hit it ([`SequenceStage::may_match_probe`]) and
    /// not every such term is idle ([`idle`]; an idle one is counted and left out). What a
    /// probe may hit is remembered by its key in the stage; `cache` serves a correlator
    /// that cannot list the terms (tests).
    pub fn wants_lineage(
        &mut self,
        probe: &dyn Probe,
        ts_ns: i64,
        cache: &mut VerdictCache,
    ) -> bool {
        if self.engine.is_empty() {
            return false;
        }
        match self.idle.wanted(self.engine.as_ref(), probe, ts_ns) {
            Some(w) => w,
            None => self.may_match_cached(probe, cache),
        }
    }

    /// Puts one prepared event in the window; what the window releases goes through the
    /// engine.
    fn push(&mut self, ts: i64, waiting: Waiting, out: &mut Vec<Completed>) {
        let Self {
            engine,
            window,
            bodies,
            matched,
            unreadable,
            idle,
            ..
        } = self;
        let crossed = idle.entered(&waiting.prepared, ts);
        let mut feed = |ts: i64, w: Waiting| {
            idle.left(&w.prepared);
            feed_one(engine.as_mut(), bodies, matched, ts, w);
            complete(matched, unreadable, out);
        };
        match window.push(ts, waiting, &mut feed) {
            Admit::Late(w) => {
                idle.left(&w.prepared);
                tracing::debug!(
                    timestamp_ns = ts,
                    "an event arrived later than the sequence reorder window: not fed to sequences"
                );
            }
            Admit::Queued => idle.crossed(crossed),
        }
    }

    /// Periodic work of a live stream at wall-clock `now_ns`: releases what the window
    /// holds past `now - window` (a quiet stream still completes its sequences), then
    /// expires what `now` has.
    pub fn tick(&mut self, now_ns: i64, out: &mut Vec<Completed>) {
        if self.engine.is_empty() {
            return;
        }
        let Self {
            engine,
            window,
            bodies,
            matched,
            unreadable,
            idle,
            ..
        } = self;
        window.flush_idle(now_ns, &mut |ts, w| {
            idle.left(&w.prepared);
            feed_one(engine.as_mut(), bodies, matched, ts, w);
            complete(matched, unreadable, out);
        });
        // Only up to what was released: a waiting event may still extend a sequence.
        let horizon = now_ns.saturating_sub(window.window_ns());
        engine.expire(horizon, matched);
        complete(matched, unreadable, out);
    }

    /// Releases every waiting event (end of a replay, shutdown, reload); with `end_of_data`
    /// (a replay's input ended) also reports what only the end of the data settles
    /// (sequences ending in a missing event: nothing follows).
    pub fn finish(&mut self, end_of_data: bool, out: &mut Vec<Completed>) {
        if self.engine.is_empty() {
            return;
        }
        let Self {
            engine,
            window,
            bodies,
            matched,
            unreadable,
            idle,
            ..
        } = self;
        window.drain(&mut |ts, w| {
            idle.left(&w.prepared);
            feed_one(engine.as_mut(), bodies, matched, ts, w);
            complete(matched, unreadable, out);
        });
        if end_of_data {
            engine.expire(i64::MAX, matched);
            complete(matched, unreadable, out);
        }
    }

    /// What was counted.
    pub fn stats(&self) -> SequenceStats {
        SequenceStats {
            rules: self.rules,
            reorder: self.window.stats(),
            untimed: self.untimed,
            bodies: self.bodies.stats(),
            engine: self.engine.stats(),
            unreadable: self.unreadable,
            decided: self.decided,
            idle: self.idle.stats(),
        }
    }
}

/// Events the engine keeps: young ones as they came, older ones compressed.
#[derive(Default)]
struct Bodies {
    store: BodyStore,
    /// Kept events not yet compressed, oldest first.
    young: VecDeque<Handle>,
    /// Events kept (one per event, however many sequences hold it).
    kept: u64,
    /// The handle of the last event the engine did not keep, still empty: the next event's
    /// (most fed events are not kept; this spares an allocation for each).
    spare: Option<Handle>,
}

impl Bodies {
    /// Keeps `event` (the engine holds `handle`): young first; the oldest young event is
    /// compressed if the engine still holds it, else simply dropped.
    fn keep(&mut self, handle: Handle, event: Held) {
        *handle.lock() = event;
        self.kept += 1;
        self.young.push_back(handle);
        while self.young.len() > YOUNG {
            if let Some(h) = self.young.pop_front()
                && Arc::strong_count(&h) > 1
            {
                h.settle(&mut self.store);
            }
        }
    }

    fn stats(&self) -> BodyStats {
        BodyStats {
            kept: self.kept,
            ..self.store.stats()
        }
    }
}

/// One event through the engine; it is kept only if the engine kept its handle.
fn feed_one(
    engine: &mut dyn Correlate,
    bodies: &mut Bodies,
    matched: &mut Vec<Matched>,
    ts: i64,
    w: Waiting,
) {
    let handle: Handle = bodies.spare.take().unwrap_or_default();
    engine.on_event(&w.prepared, ts, handle.clone(), matched);
    if Arc::strong_count(&handle) > 1 {
        bodies.keep(handle, w.event);
    } else {
        // Nobody else holds it and nothing was put in it: as good as new.
        bodies.spare = Some(handle);
    }
}

/// Turns the engine's matches into completed sequences (events read back).
fn complete(matched: &mut Vec<Matched>, unreadable: &mut u64, out: &mut Vec<Completed>) {
    for m in matched.drain(..) {
        let mut events = Vec::with_capacity(m.events.len());
        let mut ok = true;
        for h in &m.events {
            match h.value() {
                Some(v) => events.push(v),
                None => ok = false,
            }
        }
        let last = events
            .last()
            .and_then(|v| serde_json::from_value::<EcsDocument>(v.clone()).ok());
        match (ok, last) {
            (true, Some(last)) => out.push(Completed {
                rule: m.rule,
                events,
                join_key: m.join_key,
                last,
            }),
            _ => {
                *unreadable += 1;
                tracing::error!(
                    rule = m.rule,
                    "a completed sequence's events could not be read back; no alert"
                );
            }
        }
    }
}
