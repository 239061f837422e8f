//! The streaming matcher: pending sequences of every loaded sequence rule.

use std::collections::VecDeque;
use std::sync::Arc;

use rustc_hash::FxHashMap;

use super::SequenceQuery;
use super::key::{self, KeyValue};
use crate::ecs::field::{Document, Schema};
use crate::rules::eql::QueryError;
use crate::rules::{Rule, RuleIdx, RuleSet};

mod idle;

/// Caps on pending state. Defaults keep 100,000 pending sequences well under 64 MiB.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SequenceLimits {
    /// Pending sequences kept per rule; above it the rule's oldest is evicted.
    pub per_rule: usize,
    /// Pending sequences kept over all rules; above it the oldest of the rule that
    /// inserts (or of the fullest rule) is evicted.
    pub total: usize,
    /// Age at which a pending sequence of a rule without `maxspan` expires (Elasticsearch
    /// has no bound there; a daemon must have one).
    pub max_age_ns: i64,
}

impl Default for SequenceLimits {
    fn default() -> Self {
        SequenceLimits {
            per_rule: 50_000,
            total: 100_000,
            max_age_ns: 10 * 60 * 1_000_000_000,
        }
    }
}

/// A completed sequence.
#[derive(Clone, Debug, PartialEq)]
pub struct SequenceMatch<H> {
    /// The tag given to [`SequenceEngine::add_rule`].
    pub rule: usize,
    /// The matched events in sequence order (missing-event positions have none), as the
    /// handles given to [`SequenceEngine::on_event`].
    pub events: Vec<H>,
    /// Their `@timestamp`s, nanoseconds, same order.
    pub timestamps: Vec<i64>,
    /// The join key's values (sequence keys, then the terms' keys); empty without keys.
    pub join_key: Vec<KeyValue>,
}

/// Counters, for metrics and loss reports.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SequenceStats {
    /// Pending sequences now, all rules.
    pub pending: usize,
    /// Pending sequences now, per rule tag (rules with none left out).
    pub pending_per_rule: Vec<(usize, usize)>,
    /// Sequences completed (matches emitted).
    pub completed: u64,
    /// Pending sequences dropped because `maxspan` (or the age bound) passed.
    pub expired: u64,
    /// Pending sequences dropped to stay within [`SequenceLimits`]: LOSS, a sequence that
    /// might have completed. The caller reports it.
    pub evicted: u64,
    /// Evictions per rule tag (rules with none left out).
    pub evicted_per_rule: Vec<(usize, u64)>,
    /// Pending sequences dropped by an `until` event.
    pub until_dropped: u64,
    /// Candidates dropped because an event of a missing-event term (`![…]`) occurred.
    pub missing_rejected: u64,
}

/// `(@timestamp ns, arrival number)`: Elasticsearch's ordinal (timestamp, tiebreaker).
type Ord2 = (i64, u64);

const NIL: u32 = u32::MAX;

/// A pending sequence.
struct Pending<H> {
    /// Shared with the key's [`KeySlots`] entry.
    key: Arc<[u8]>,
    /// Position (among positive stages) of its last matched event.
    pos: u16,
    /// Ordinal of the first event (`first.0` is where `maxspan` counts from).
    first: Ord2,
    last: Ord2,
    events: Vec<(H, i64)>,
    /// Neighbours in the rule's list ordered by first event (oldest first).
    prev: u32,
    next: u32,
}

/// Per join key: the slot of the sequence pending at each positive position but the last
/// (Elasticsearch's `KeyToSequences`: key → one group per stage). Inline for up to four.
enum KeySlots {
    Inline([u32; 4]),
    Heap(Box<[u32]>),
}

impl KeySlots {
    fn new(n: usize) -> Self {
        if n <= 4 {
            KeySlots::Inline([NIL; 4])
        } else {
            KeySlots::Heap(vec![NIL; n].into_boxed_slice())
        }
    }
    fn slots(&self) -> &[u32] {
        match self {
            KeySlots::Inline(a) => a,
            KeySlots::Heap(b) => b,
        }
    }
    fn slots_mut(&mut self) -> &mut [u32] {
        match self {
            KeySlots::Inline(a) => a,
            KeySlots::Heap(b) => b,
        }
    }
    fn is_empty(&self) -> bool {
        self.slots().iter().all(|&s| s == NIL)
    }
}

/// A completed candidate of a rule with a trailing missing-event term, waiting until
/// `deadline` for an event of that term.
struct Awaiting<H> {
    key: Arc<[u8]>,
    after: Ord2,
    deadline: i64,
    events: Vec<(H, i64)>,
}

struct RuleState<H> {
    q: Arc<SequenceQuery>,
    tag: usize,
    /// Stage indices of the positive (not missing) stages, in order.
    positive: Box<[u16]>,
    /// For each positive position `p`, the missing stages between it and the previous
    /// positive one (before the first for `p = 0`); `trailing` those after the last.
    missing_before: Box<[Box<[u16]>]>,
    trailing: Box<[u16]>,
    /// Age bound: maxspan, or the engine's max age.
    span: i64,
    has_maxspan: bool,
    keys: FxHashMap<Arc<[u8]>, KeySlots>,
    slab: Vec<Option<Pending<H>>>,
    free: Vec<u32>,
    head: u32,
    tail: u32,
    len: usize,
    /// Events of missing-event terms seen recently: per (stage, key), ordinals in order.
    missing_seen: FxHashMap<(u16, Arc<[u8]>), VecDeque<Ord2>>,
    awaiting: VecDeque<Awaiting<H>>,
    evicted: u64,
    /// What [`SequenceEngine::approx_bytes`] counts per key and per pending sequence's
    /// events, kept as they change (the caller reads the estimate per event).
    key_bytes: usize,
    event_bytes: usize,
}

/// The bytes [`SequenceEngine::approx_bytes`] counts for one key of a rule with `nslots`
/// slots per key.
fn key_cost(k: &[u8], nslots: usize) -> usize {
    16 + k.len() + if nslots > 4 { nslots * 4 } else { 0 }
}

impl<H> RuleState<H> {
    /// The terms `doc` matches, in processing order: positive stages last to first (one
    /// event advances a sequence one stage at most), until, missing-event stages.
    fn hits(&self, doc: &dyn Document, hits: &mut Vec<Hit>) {
        let q = &self.q;
        for (pos, &si) in self.positive.iter().enumerate().rev() {
            if q.stages[si as usize].matches(doc) {
                hits.push(Hit::Pos(pos as u16));
            }
        }
        if q.until.as_ref().is_some_and(|u| u.matches(doc)) {
            hits.push(Hit::Until);
        }
        for (si, st) in q.stages.iter().enumerate() {
            if st.missing && st.matches(doc) {
                hits.push(Hit::Missing(si as u16));
            }
        }
    }
}

/// One term of one rule an event matches ([`SequenceEngine::terms`]), before its join key
/// is read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TermRef(u32, Hit);

/// What one event hit in one rule (filled before any state changes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Hit {
    /// A positive stage, by position.
    Pos(u16),
    Until,
    /// A missing-event stage, by stage index.
    Missing(u16),
}

/// What one event is to the rules, decided from its document alone: the terms it hits
/// (by rule, in processing order) with their join keys already encoded. It depends on
/// nothing pending, so the caller computes it when the event arrives
/// ([`SequenceEngine::hits`]) and applies it once the event's turn comes in `@timestamp`
/// order ([`SequenceEngine::on_hits`]), without keeping the document in between. A hit
/// whose non-optional key is null is left out (Elasticsearch leaves the event out of the
/// term).
#[derive(Clone, Debug, Default)]
pub struct TermHits {
    /// `(rule, term, key range in keys)`.
    hits: Vec<(u32, Hit, u32, u32)>,
    keys: Vec<u8>,
}

impl TermHits {
    /// Whether the event hits no term (it changes no sequence).
    pub fn is_empty(&self) -> bool {
        self.hits.is_empty()
    }

    /// Number of (rule, term) hits.
    pub fn len(&self) -> usize {
        self.hits.len()
    }
}

/// Pending sequences of all loaded sequence rules.
///
/// `H` is the caller's cheap handle to an event (an `Arc` of its stored body, an id): the
/// engine keeps one clone per matched event and hands them back in [`SequenceMatch`]; it
/// never copies documents.
pub struct SequenceEngine<H> {
    limits: SequenceLimits,
    rules: Vec<RuleState<H>>,
    /// Arrival counter: the tiebreaker of equal timestamps.
    seq: u64,
    pending: usize,
    completed: u64,
    expired: u64,
    evicted: u64,
    until_dropped: u64,
    missing_rejected: u64,
    keybuf: Vec<u8>,
    hits: Vec<Hit>,
    /// Reused by [`SequenceEngine::on_event`].
    scratch: TermHits,
    /// The shared index over every rule's term filters ([`SequenceEngine::build_index`]).
    index: Option<TermIndex>,
}

/// Every term filter of every rule as one [`RuleSet`]: one indexed pass per event finds
/// the terms an event matches, instead of evaluating every filter of every rule.
struct TermIndex {
    set: RuleSet,
    /// Per pseudo-rule: its rule and term; grouped by rule, in [`Hit`] processing order.
    owner: Vec<(u32, Hit)>,
    matched: Vec<RuleIdx>,
}

impl<H: Clone> SequenceEngine<H> {
    /// An engine without rules.
    pub fn new(limits: SequenceLimits) -> Self {
        SequenceEngine {
            limits,
            rules: Vec::new(),
            seq: 0,
            pending: 0,
            completed: 0,
            expired: 0,
            evicted: 0,
            until_dropped: 0,
            missing_rejected: 0,
            keybuf: Vec::with_capacity(128),
            hits: Vec::new(),
            scratch: TermHits::default(),
            index: None,
        }
    }

    /// Builds the shared index over every term of every rule added so far, compiled again
    /// against `schema` (the one the queries were compiled against). Same matches as
    /// without it, at the cost of an indexed lookup per event instead of every filter of
    /// every rule; [`SequenceEngine::add_rule`] drops it (call this again after adding).
    pub fn build_index(&mut self, schema: &dyn Schema) -> Result<(), QueryError> {
        let mut rules = Vec::new();
        let mut owner = Vec::new();
        for (r, rule) in self.rules.iter().enumerate() {
            let ast = &rule.q.ast;
            // The written terms, `with runs` expanded, in stage order.
            let terms: Vec<_> = ast
                .terms
                .iter()
                .flat_map(|t| std::iter::repeat_n(t, t.runs))
                .collect();
            let mut push = |t: &crate::rules::eql::ast::SequenceTerm, hit: Hit| {
                super::compile::term_filter(t, schema).map(|root| {
                    rules.push(Rule {
                        meta: Default::default(),
                        query: String::new(),
                        path: Default::default(),
                        compiled: crate::rules::CompiledQuery { root },
                    });
                    owner.push((r as u32, hit));
                })
            };
            for (pos, &si) in rule.positive.iter().enumerate().rev() {
                push(terms[si as usize], Hit::Pos(pos as u16))?;
            }
            if let Some(u) = &ast.until {
                push(u, Hit::Until)?;
            }
            for (si, st) in rule.q.stages.iter().enumerate() {
                if st.missing {
                    push(terms[si], Hit::Missing(si as u16))?;
                }
            }
        }
        self.index = Some(TermIndex {
            set: RuleSet::new(rules, schema),
            owner,
            matched: Vec::new(),
        });
        Ok(())
    }

    /// Whether any term of any rule could match the event `probe` describes (false: the
    /// caller may skip building its document for the sequence rules). Conservative: true
    /// without the index ([`SequenceEngine::build_index`]) when any rule is loaded. The
    /// daemon must ask this beside `RuleSet::may_match_probe`, or events only sequence
    /// terms need are never built.
    pub fn may_match_probe(&self, probe: &dyn crate::rules::Probe) -> bool {
        match &self.index {
            Some(ix) => ix.set.may_match_probe(probe),
            None => !self.rules.is_empty(),
        }
    }

    /// How many term filters the index evaluates for `doc` (index effectiveness; 0
    /// without the index).
    pub fn candidate_count(&self, doc: &dyn Document) -> usize {
        self.index
            .as_ref()
            .map_or(0, |ix| ix.set.candidate_count(doc))
    }

    /// Whether [`SequenceEngine::build_index`] is in effect.
    pub fn is_indexed(&self) -> bool {
        self.index.is_some()
    }

    /// Adds a rule; its matches carry `tag` (the caller's index of the rule).
    pub fn add_rule(&mut self, tag: usize, q: Arc<SequenceQuery>) {
        let mut positive = Vec::new();
        let mut missing_before = Vec::new();
        let mut run = Vec::new();
        for (i, s) in q.stages.iter().enumerate() {
            if s.missing {
                run.push(i as u16);
            } else {
                positive.push(i as u16);
                missing_before.push(std::mem::take(&mut run).into_boxed_slice());
            }
        }
        let span = q.maxspan_ns.unwrap_or(self.limits.max_age_ns);
        self.index = None;
        self.rules.push(RuleState {
            has_maxspan: q.maxspan_ns.is_some(),
            q,
            tag,
            positive: positive.into_boxed_slice(),
            missing_before: missing_before.into_boxed_slice(),
            trailing: run.into_boxed_slice(),
            span,
            keys: FxHashMap::default(),
            slab: Vec::new(),
            free: Vec::new(),
            head: NIL,
            tail: NIL,
            len: 0,
            missing_seen: FxHashMap::default(),
            awaiting: VecDeque::new(),
            evicted: 0,
            key_bytes: 0,
            event_bytes: 0,
        });
    }

    /// Number of rules added.
    pub fn rule_count(&self) -> usize {
        self.rules.len()
    }

    /// Offers one event to every rule. Events must come in `@timestamp` order (equal
    /// timestamps in arrival order); `ts_ns` is the event's `@timestamp`. Completed
    /// sequences are appended to `out`. Pending sequences older than their span at `ts_ns`
    /// expire first.
    pub fn on_event<D: Document + ?Sized>(
        &mut self,
        doc: &D,
        ts_ns: i64,
        event: &H,
        out: &mut Vec<SequenceMatch<H>>,
    ) {
        let mut hits = std::mem::take(&mut self.scratch);
        self.hits_into(doc, &mut hits);
        self.on_hits(&hits, ts_ns, event, out);
        self.scratch = hits;
    }

    /// The terms `doc` hits and their join keys ([`TermHits`]): one indexed pass with
    /// [`SequenceEngine::build_index`], every filter of every rule without. Changes no
    /// state; apply the result with [`SequenceEngine::on_hits`] in `@timestamp` order.
    pub fn hits<D: Document + ?Sized>(&mut self, doc: &D) -> TermHits {
        let mut out = TermHits::default();
        self.hits_into(doc, &mut out);
        out
    }

    fn hits_into<D: Document + ?Sized>(&mut self, doc: &D, out: &mut TermHits) {
        out.hits.clear();
        out.keys.clear();
        let doc = DocRef(doc);
        let doc = doc.dyn_doc();
        let mut found = std::mem::take(&mut self.hits);
        found.clear();
        if let Some(mut ix) = self.index.take() {
            // One indexed pass; the matches come grouped by rule, in processing order.
            ix.set.matches(doc, &mut ix.matched);
            for m in &ix.matched {
                let (r, hit) = ix.owner[m.get()];
                self.push_hit(r, hit, doc, out);
            }
            self.index = Some(ix);
        } else {
            for r in 0..self.rules.len() {
                found.clear();
                self.rules[r].hits(doc, &mut found);
                for &hit in &found {
                    self.push_hit(r as u32, hit, doc, out);
                }
            }
        }
        self.hits = found;
    }

    /// The terms `doc` matches, without their join keys: the first half of
    /// [`SequenceEngine::hits`], which reads only the fields the term conditions read.
    /// A caller that knows those answers depend on a key of its own (a probe's) may
    /// remember them by it, and finish each event with [`SequenceEngine::keyed_hits`].
    pub fn terms<D: Document + ?Sized>(&mut self, doc: &D, out: &mut Vec<TermRef>) {
        out.clear();
        let doc = DocRef(doc);
        let doc = doc.dyn_doc();
        if let Some(mut ix) = self.index.take() {
            ix.set.matches(doc, &mut ix.matched);
            out.extend(ix.matched.iter().map(|m| {
                let (r, hit) = ix.owner[m.get()];
                TermRef(r, hit)
            }));
            self.index = Some(ix);
        } else {
            let mut found = std::mem::take(&mut self.hits);
            for r in 0..self.rules.len() {
                found.clear();
                self.rules[r].hits(doc, &mut found);
                out.extend(found.iter().map(|&hit| TermRef(r as u32, hit)));
            }
            self.hits = found;
        }
    }

    /// The second half of [`SequenceEngine::hits`]: `terms` (from
    /// [`SequenceEngine::terms`] of the same event, or remembered for an event whose term
    /// answers are the same) with `doc`'s join keys. Equal to `hits(doc)`.
    pub fn keyed_hits<D: Document + ?Sized>(&self, terms: &[TermRef], doc: &D) -> TermHits {
        // Sized once: a join key is a few dozen bytes (an entity id, a host id).
        let mut out = TermHits {
            hits: Vec::with_capacity(terms.len()),
            keys: Vec::with_capacity(terms.len() * 64),
        };
        let doc = DocRef(doc);
        let doc = doc.dyn_doc();
        for &TermRef(r, hit) in terms {
            self.push_hit(r, hit, doc, &mut out);
        }
        out
    }

    /// The join key fields of a hit of rule `r` (`None`: the rule has no such term).
    fn term_keys(&self, r: u32, hit: Hit) -> Option<&[super::KeyField]> {
        let rule = &self.rules[r as usize];
        Some(match hit {
            Hit::Pos(pos) => &rule.q.stages[rule.positive[pos as usize] as usize].keys,
            Hit::Until => &rule.q.until.as_ref()?.keys,
            Hit::Missing(si) => &rule.q.stages[si as usize].keys,
        })
    }

    /// Records `hit` of rule `r` with its join key, unless a non-optional key is null.
    fn push_hit(&self, r: u32, hit: Hit, doc: &dyn Document, out: &mut TermHits) {
        let Some(keys) = self.term_keys(r, hit) else {
            return;
        };
        let start = out.keys.len();
        if key::encode_append(keys, doc, &mut out.keys) {
            out.hits.push((r, hit, start as u32, out.keys.len() as u32));
        } else {
            out.keys.truncate(start);
        }
    }

    /// Applies an event's [`TermHits`] (from [`SequenceEngine::hits`]): events must come in
    /// `@timestamp` order (equal timestamps in arrival order); `ts_ns` is the event's
    /// `@timestamp`. Completed sequences are appended to `out`. Pending sequences older
    /// than their span at `ts_ns` expire first. Same as [`SequenceEngine::on_event`] on the
    /// document the hits came from.
    pub fn on_hits(
        &mut self,
        hits: &TermHits,
        ts_ns: i64,
        event: &H,
        out: &mut Vec<SequenceMatch<H>>,
    ) {
        self.seq += 1;
        let now: Ord2 = (ts_ns, self.seq);
        for r in 0..self.rules.len() {
            self.expire_rule(r, ts_ns, out);
        }
        for &(r, hit, a, b) in &hits.hits {
            self.keybuf.clear();
            self.keybuf
                .extend_from_slice(&hits.keys[a as usize..b as usize]);
            self.apply(r as usize, hit, now, event, out);
        }
    }

    /// Expires what is older than its span at `now_ns` and reports candidates whose
    /// trailing missing-event window has passed. Call it with the time up to which every
    /// event has been delivered (the reorder window's watermark), never ahead of it.
    pub fn expire(&mut self, now_ns: i64, out: &mut Vec<SequenceMatch<H>>) {
        for r in 0..self.rules.len() {
            self.expire_rule(r, now_ns, out);
            let rule = &mut self.rules[r];
            let span = rule.span;
            rule.missing_seen.retain(|_, v| {
                while v.front().is_some_and(|o| now_ns.saturating_sub(o.0) > span) {
                    v.pop_front();
                }
                !v.is_empty()
            });
        }
    }

    /// Counters and current pending counts.
    pub fn stats(&self) -> SequenceStats {
        SequenceStats {
            pending_per_rule: self
                .rules
                .iter()
                .filter(|r| r.len > 0)
                .map(|r| (r.tag, r.len))
                .collect(),
            evicted_per_rule: self
                .rules
                .iter()
                .filter(|r| r.evicted > 0)
                .map(|r| (r.tag, r.evicted))
                .collect(),
            ..self.totals()
        }
    }

    /// [`SequenceEngine::stats`] without the per-rule lists (no allocation: read for every
    /// evaluated event); the per-rule lists stay empty.
    pub fn totals(&self) -> SequenceStats {
        SequenceStats {
            pending: self.pending,
            pending_per_rule: Vec::new(),
            completed: self.completed,
            expired: self.expired,
            evicted: self.evicted,
            evicted_per_rule: Vec::new(),
            until_dropped: self.until_dropped,
            missing_rejected: self.missing_rejected,
        }
    }

    /// An estimate of the bytes the pending state holds (tables, keys, handles), for
    /// metrics; tests measure the real figure with a counting allocator.
    pub fn approx_bytes(&self) -> usize {
        let mut n = 0;
        for r in &self.rules {
            n += r.slab.capacity() * std::mem::size_of::<Option<Pending<H>>>();
            n += r.keys.capacity() * (std::mem::size_of::<(Arc<[u8]>, KeySlots)>() + 1);
            n += r.free.capacity() * 4;
            // Per key and per pending sequence's events: kept as they change, so this
            // costs O(rules), not O(pending).
            n += r.key_bytes + r.event_bytes;
            for (k, v) in &r.missing_seen {
                n += 16 + k.1.len() + v.capacity() * 16 + 64;
            }
        }
        n
    }

    /// [`SequenceEngine::approx_bytes`] by scanning every key and pending sequence (what
    /// the running counts must equal).
    #[cfg(test)]
    pub(crate) fn approx_bytes_scanned(&self) -> usize {
        let mut n = 0;
        for r in &self.rules {
            n += r.slab.capacity() * std::mem::size_of::<Option<Pending<H>>>();
            n += r.keys.capacity() * (std::mem::size_of::<(Arc<[u8]>, KeySlots)>() + 1);
            n += r.free.capacity() * 4;
            for (k, s) in &r.keys {
                n += 16 + k.len();
                if let KeySlots::Heap(b) = s {
                    n += b.len() * 4;
                }
            }
            for p in r.slab.iter().flatten() {
                n += p.events.capacity() * std::mem::size_of::<(H, i64)>();
            }
            for (k, v) in &r.missing_seen {
                n += 16 + k.1.len() + v.capacity() * 16 + 64;
            }
        }
        n
    }

    fn expire_rule(&mut self, r: usize, now: i64, out: &mut Vec<SequenceMatch<H>>) {
        loop {
            let rule = &self.rules[r];
            let h = rule.head;
            if h == NIL {
                break;
            }
            let start = rule.slab[h as usize]
                .as_ref()
                .map_or(i64::MAX, |p| p.first.0);
            if now.saturating_sub(start) <= rule.span {
                break;
            }
            self.remove(r, h);
            self.expired += 1;
        }
        let rule = &mut self.rules[r];
        while rule.awaiting.front().is_some_and(|a| a.deadline < now) {
            if let Some(a) = rule.awaiting.pop_front() {
                self.completed += 1;
                out.push(make_match(rule.tag, &a.key, a.events));
            }
        }
    }

    /// Applies one hit of rule `r` whose join key is in `keybuf`.
    fn apply(&mut self, r: usize, hit: Hit, now: Ord2, event: &H, out: &mut Vec<SequenceMatch<H>>) {
        match hit {
            Hit::Pos(0) => self.start(r, now, event, out),
            Hit::Pos(pos) => self.advance(r, pos as usize, now, event, out),
            Hit::Until => self.until(r),
            Hit::Missing(si) => self.missing(r, si, now),
        }
    }

    /// The key in `keybuf` as a shared key: the existing one when the key has pending
    /// sequences (no allocation), else a new one.
    fn shared_key(&self, r: usize) -> Arc<[u8]> {
        match self.rules[r].keys.get_key_value(self.keybuf.as_slice()) {
            Some((k, _)) => Arc::clone(k),
            None => Arc::from(self.keybuf.as_slice()),
        }
    }

    /// A first-stage hit: a new pending sequence replacing the key's one (or, with one
    /// positive stage, a candidate).
    fn start(&mut self, r: usize, now: Ord2, event: &H, out: &mut Vec<SequenceMatch<H>>) {
        let k = self.shared_key(r);
        let npos = self.rules[r].positive.len();
        if npos == 1 {
            let events = vec![(event.clone(), now.0)];
            self.complete(r, k, now, now, events, out);
            return;
        }
        if let Some(old) = self.slot_at(r, &k, 0) {
            self.remove(r, old);
        }
        let mut events = Vec::with_capacity(npos);
        events.push((event.clone(), now.0));
        self.insert(
            r,
            Pending {
                key: k,
                pos: 0,
                first: now,
                last: now,
                events,
                prev: NIL,
                next: NIL,
            },
        );
    }

    /// The slot pending at `pos` for key `k`.
    fn slot_at(&self, r: usize, k: &[u8], pos: usize) -> Option<u32> {
        let s = *self.rules[r].keys.get(k)?.slots().get(pos)?;
        (s != NIL).then_some(s)
    }

    /// A hit at positive position `pos > 0`: takes the key's sequence pending at `pos - 1`.
    fn advance(
        &mut self,
        r: usize,
        pos: usize,
        now: Ord2,
        event: &H,
        out: &mut Vec<SequenceMatch<H>>,
    ) {
        let Some(slot) = self.slot_at(r, &self.keybuf, pos - 1) else {
            return;
        };
        let rule = &self.rules[r];
        let Some(p) = rule.slab[slot as usize].as_ref() else {
            return;
        };
        let (first, last, k) = (p.first, p.last, Arc::clone(&p.key));
        if rule.has_maxspan && now.0 - first.0 > rule.span {
            self.remove(r, slot);
            self.expired += 1;
            return;
        }
        // A missing-event term between the two positive ones: no event of it in between.
        if rule.missing_before[pos].iter().any(|&ms| {
            rule.missing_seen
                .get(&(ms, Arc::clone(&k)))
                .and_then(|v| v.back())
                .is_some_and(|o| *o > last && *o < now)
        }) {
            self.remove(r, slot);
            self.missing_rejected += 1;
            return;
        }
        if pos + 1 == rule.positive.len() {
            let Some(mut p) = self.remove(r, slot) else {
                return;
            };
            p.events.push((event.clone(), now.0));
            self.complete(r, p.key, p.first, now, p.events, out);
            return;
        }
        // Move it from `pos - 1` to `pos`, overriding the key's sequence pending there.
        if let Some(old) = self.slot_at(r, &k, pos) {
            self.remove(r, old);
        }
        let rule = &mut self.rules[r];
        if let Some(s) = rule.keys.get_mut(&*k) {
            s.slots_mut()[pos - 1] = NIL;
            s.slots_mut()[pos] = slot;
        }
        if let Some(p) = rule.slab[slot as usize].as_mut() {
            p.pos = pos as u16;
            p.last = now;
            let cap = p.events.capacity();
            p.events.push((event.clone(), now.0));
            rule.event_bytes += (p.events.capacity() - cap) * std::mem::size_of::<(H, i64)>();
        }
    }

    /// An `until` hit: drops every pending sequence of the key.
    fn until(&mut self, r: usize) {
        let Some(slots) = self.rules[r].keys.get(self.keybuf.as_slice()) else {
            return;
        };
        let victims: Vec<u32> = slots
            .slots()
            .iter()
            .copied()
            .filter(|&s| s != NIL)
            .collect();
        for s in victims {
            self.remove(r, s);
            self.until_dropped += 1;
        }
    }

    /// A missing-event term's hit: remembered for later checks; rejects candidates waiting
    /// on it.
    fn missing(&mut self, r: usize, si: u16, now: Ord2) {
        let k: Arc<[u8]> = Arc::from(self.keybuf.as_slice());
        let rule = &mut self.rules[r];
        if rule.trailing.contains(&si) {
            let before = rule.awaiting.len();
            rule.awaiting
                .retain(|a| !(a.key == k && now > a.after && now.0 <= a.deadline));
            self.missing_rejected += (before - rule.awaiting.len()) as u64;
        }
        let span = rule.span;
        let seen = rule.missing_seen.entry((si, k)).or_default();
        while seen
            .front()
            .is_some_and(|o| now.0.saturating_sub(o.0) > span)
        {
            seen.pop_front();
        }
        seen.push_back(now);
    }

    /// A candidate with every positive event (`first`, `now`: ordinals of its first and
    /// last): check leading missing-event terms, then report it or, with trailing ones,
    /// wait for their window to pass.
    fn complete(
        &mut self,
        r: usize,
        k: Arc<[u8]>,
        first: Ord2,
        now: Ord2,
        events: Vec<(H, i64)>,
        out: &mut Vec<SequenceMatch<H>>,
    ) {
        let rule = &mut self.rules[r];
        if !rule.missing_before[0].is_empty() {
            // Leading: no event of the term from `last - maxspan` up to the first event.
            let lo = now.0.saturating_sub(rule.span);
            let hit = rule.missing_before[0].iter().any(|&ms| {
                rule.missing_seen
                    .get(&(ms, Arc::clone(&k)))
                    .is_some_and(|v| v.iter().any(|o| o.0 >= lo && *o < first))
            });
            if hit {
                self.missing_rejected += 1;
                return;
            }
        }
        if !rule.trailing.is_empty() {
            rule.awaiting.push_back(Awaiting {
                key: k,
                after: now,
                deadline: first.0.saturating_add(rule.span),
                events,
            });
            return;
        }
        self.completed += 1;
        out.push(make_match(rule.tag, &k, events));
    }

    /// Links a new pending sequence at the tail (newest first event), evicting first if a
    /// cap is reached.
    fn insert(&mut self, r: usize, p: Pending<H>) {
        while self.rules[r].len >= self.limits.per_rule.max(1) {
            let h = self.rules[r].head;
            if !self.evict(r, h) {
                break;
            }
        }
        while self.pending >= self.limits.total.max(1) {
            let victim = if self.rules[r].len > 0 {
                r
            } else {
                match (0..self.rules.len()).max_by_key(|&i| self.rules[i].len) {
                    Some(i) => i,
                    None => break,
                }
            };
            let h = self.rules[victim].head;
            if !self.evict(victim, h) {
                break;
            }
        }
        let nslots = self.rules[r].positive.len().saturating_sub(1);
        let rule = &mut self.rules[r];
        let slot = match rule.free.pop() {
            Some(s) => s,
            None => {
                rule.slab.push(None);
                (rule.slab.len() - 1) as u32
            }
        };
        let mut p = p;
        p.prev = rule.tail;
        p.next = NIL;
        if rule.tail != NIL {
            if let Some(t) = rule.slab[rule.tail as usize].as_mut() {
                t.next = slot;
            }
        } else {
            rule.head = slot;
        }
        rule.tail = slot;
        let pos = p.pos as usize;
        let entry = match rule.keys.entry(Arc::clone(&p.key)) {
            std::collections::hash_map::Entry::Occupied(o) => o.into_mut(),
            std::collections::hash_map::Entry::Vacant(v) => {
                rule.key_bytes += key_cost(&p.key, nslots);
                v.insert(KeySlots::new(nslots))
            }
        };
        entry.slots_mut()[pos] = slot;
        rule.event_bytes += p.events.capacity() * std::mem::size_of::<(H, i64)>();
        rule.slab[slot as usize] = Some(p);
        rule.len += 1;
        self.pending += 1;
    }

    /// Evicts a pending sequence to stay within the caps (counted as loss).
    fn evict(&mut self, r: usize, slot: u32) -> bool {
        if slot == NIL || self.remove(r, slot).is_none() {
            return false;
        }
        self.evicted += 1;
        self.rules[r].evicted += 1;
        true
    }

    /// Removes a pending sequence: its key slot (and the key when it has no other), list
    /// links, slot; returns it.
    fn remove(&mut self, r: usize, slot: u32) -> Option<Pending<H>> {
        let rule = &mut self.rules[r];
        let p = rule.slab[slot as usize].take()?;
        rule.event_bytes -= p.events.capacity() * std::mem::size_of::<(H, i64)>();
        if let Some(s) = rule.keys.get_mut(&*p.key) {
            if let Some(x) = s.slots_mut().get_mut(p.pos as usize)
                && *x == slot
            {
                *x = NIL;
            }
            if s.is_empty() {
                rule.keys.remove(&*p.key);
                rule.key_bytes -= key_cost(&p.key, rule.positive.len().saturating_sub(1));
            }
        }
        if p.prev != NIL {
            if let Some(x) = rule.slab[p.prev as usize].as_mut() {
                x.next = p.next;
            }
        } else {
            rule.head = p.next;
        }
        if p.next != NIL {
            if let Some(x) = rule.slab[p.next as usize].as_mut() {
                x.prev = p.prev;
            }
        } else {
            rule.tail = p.prev;
        }
        rule.free.push(slot);
        rule.len -= 1;
        self.pending -= 1;
        Some(p)
    }
}

fn make_match<H>(tag: usize, k: &[u8], events: Vec<(H, i64)>) -> SequenceMatch<H> {
    let (events, timestamps) = events.into_iter().unzip();
    SequenceMatch {
        rule: tag,
        events,
        timestamps,
        join_key: key::decode(k),
    }
}

/// A document seen as `&dyn Document` whatever the caller's type.
struct DocRef<'a, D: ?Sized>(&'a D);

impl<D: Document + ?Sized> DocRef<'_, D> {
    #[inline]
    fn dyn_doc(&self) -> &dyn Document {
        self
    }
}

impl<D: Document + ?Sized> Document for DocRef<'_, D> {
    #[inline]
    fn field(&self, id: crate::ecs::field::FieldId) -> crate::ecs::field::FieldValue<'_> {
        self.0.field(id)
    }
}
