//! Events that can change no sequence now, left out before they wait (`run` only).
//!
//! A broad later term (a child of a shell, say) takes most execs, while its rule's first
//! term (a git hook, a `curl`) is rare. Such a hit has nothing to advance while the rule
//! has no sequence pending and no event that starts it is waiting in the reorder window:
//! the engine would feed it and drop it. Left out early, the event needs no snapshot, no
//! document and no place in the window ([`IdleSkip::wanted`], asked before the
//! snapshot with what the lineage probe says the event may hit; [`IdleSkip::prune`] after,
//! with what it did hit).
//!
//! The one thing a left-out event could have done: be advanced by a start of its rule that
//! reaches the daemon *after* it but is older (events from two CPUs cross in the ring
//! buffer). Causally linked events cannot cross: a process's events, and its children's,
//! are written after those of the exec that made it. So such a start and a left-out event
//! are concurrent and unrelated; it is counted ([`IdleStats::crossed`]) as a sequence that
//! might have been missed, never silently.
//!
//! `replay` never leaves an event out: a recorded file may be out of order by far more.

mod keys;
mod terms;

use super::engine::{Correlate, Prepared};
use crate::rules::Probe;
use crate::rules::sequence::TermRef;
use keys::ByKey;
use terms::TermMemory;

/// What [`IdleSkip`] counted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct IdleStats {
    /// Events left out: every term they may hit was a later term of a rule with nothing
    /// under way.
    pub skipped: u64,
    /// Starts of a rule that arrived after a left-out event of that rule with a later
    /// `@timestamp`: a sequence that event might have completed may be missed.
    pub crossed: u64,
}

/// Per rule: what is held back, what was left out; and what probes may hit.
#[derive(Default)]
pub struct IdleSkip {
    /// Waiting events (reorder window) that start the rule.
    starting: Vec<u32>,
    /// The latest `@timestamp` of an event left out for the rule.
    left_out: Vec<i64>,
    /// What lineage probes may hit.
    memory: TermMemory,
    /// Per join key: waiting starts and left-out events.
    by_key: ByKey,
    terms: Vec<TermRef>,
    stats: IdleStats,
}

impl IdleSkip {
    pub fn new(rules: usize) -> Self {
        IdleSkip {
            starting: vec![0; rules],
            left_out: vec![i64::MIN; rules],
            memory: TermMemory::new(),
            ..IdleSkip::default()
        }
    }

    pub fn stats(&self) -> IdleStats {
        self.stats
    }

    /// Before the snapshot: whether the event `probe` describes (at `ts_ns`) is needed by
    /// a sequence: some term may hit it, and not every such term is idle (then it is left
    /// out, counted). What a probe may hit is remembered ([`terms`]); `None` when the
    /// engine cannot tell (the caller asks its own gate).
    pub fn wanted(
        &mut self,
        engine: &dyn Correlate,
        probe: &dyn Probe,
        ts_ns: i64,
    ) -> Option<bool> {
        if !self.memory.terms(engine, probe, &mut self.terms) {
            return None;
        }
        let IdleSkip {
            starting,
            left_out,
            terms,
            stats,
            ..
        } = self;
        if terms.is_empty() {
            return Some(false);
        }
        if !terms.iter().all(|&t| idle(starting, engine, t)) {
            return Some(true);
        }
        for t in terms {
            leave_out(left_out, t.rule(), ts_ns);
        }
        stats.skipped += 1;
        Some(false)
    }

    /// After the snapshot: drops `prepared`'s idle hits; true when none is left (the
    /// event is left out, counted).
    pub fn prune(&mut self, engine: &dyn Correlate, prepared: &mut Prepared, ts_ns: i64) -> bool {
        let Prepared::Hits(hits) = prepared else {
            return false;
        };
        let (starting, left_out, by_key) = (&self.starting, &mut self.left_out, &mut self.by_key);
        let empty = hits.prune(|t, key| {
            // Idle for the whole rule, or for its key only: recorded where a crossing
            // start will look.
            if idle(starting, engine, t) {
                leave_out(left_out, t.rule(), ts_ns);
                true
            } else if !by_key.waiting(t.rule(), key) && engine.idle_hit_keyed(t, key) {
                by_key.leave_out(t.rule(), key, ts_ns, left_out);
                true
            } else {
                false
            }
        });
        self.stats.skipped += empty as u64;
        empty
    }

    /// An event at `ts_ns` enters the window: the rules it starts are live until it is
    /// fed ([`IdleSkip::left`], also when the window turns it away as late). Returns how
    /// many of its starts are older than an event already left out of their rule: count
    /// them with [`IdleSkip::crossed`] once the window took it.
    #[must_use]
    pub fn entered(&mut self, prepared: &Prepared, ts_ns: i64) -> u64 {
        let mut crossed = 0;
        if let Prepared::Hits(hits) = prepared {
            for (r, key) in hits.starts_keyed() {
                let by_key = self.by_key.entered(r, key, ts_ns);
                let r = r as usize;
                if let Some(n) = self.starting.get_mut(r) {
                    *n += 1;
                }
                if by_key || self.left_out.get(r).is_some_and(|&t| ts_ns < t) {
                    crossed += 1;
                }
            }
        }
        crossed
    }

    /// Counts starts [`IdleSkip::entered`] found crossed.
    pub fn crossed(&mut self, n: u64) {
        if n > 0 {
            tracing::debug!(
                starts = n,
                "a sequence start arrived after a left-out event of its rule with a later @timestamp"
            );
        }
        self.stats.crossed += n;
    }

    /// An event left the window (fed to the engine): what it started is the engine's now.
    pub fn left(&mut self, prepared: &Prepared) {
        if let Prepared::Hits(hits) = prepared {
            for (r, key) in hits.starts_keyed() {
                self.by_key.left(r, key);
                if let Some(n) = self.starting.get_mut(r as usize) {
                    *n = n.saturating_sub(1);
                }
            }
        }
    }
}

/// Whether a hit of `t` changes nothing now: idle in the engine, and no waiting event
/// (`starting`, per rule) starts its rule.
fn idle(starting: &[u32], engine: &dyn Correlate, t: TermRef) -> bool {
    starting.get(t.rule() as usize) == Some(&0) && engine.idle_hit(t)
}

/// Records that an event at `ts_ns` was left out for `rule` (what a crossing start is
/// checked against).
fn leave_out(left_out: &mut [i64], rule: u32, ts_ns: i64) {
    if let Some(t) = left_out.get_mut(rule as usize) {
        *t = (*t).max(ts_ns);
    }
}

#[cfg(test)]
mod tests;
