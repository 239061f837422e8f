//! Hits that can change nothing: a later term of a rule with no sequence under way has
//! nothing to advance. Most events a broad later term takes (`process.parent.name` a
//! shell, say) are such hits while the rule's rare first term has not been seen, and an
//! event with only such hits need not be kept, built, or even snapshot.
//!
//! The engine answers for its own state; the caller must add what it holds back (an event
//! waiting to be fed that starts the rule makes its later terms live again).

use super::{Hit, SequenceEngine, TermHits, TermRef};

impl TermRef {
    /// The rule, by its position among the engine's rules.
    pub fn rule(self) -> u32 {
        self.0
    }

    /// Whether this is a rule's first positive term: an event of it starts a sequence.
    pub fn starts(self) -> bool {
        matches!(self.1, Hit::Pos(0))
    }
}

impl TermHits {
    /// The rules whose first term the event hits, each with the join key of its hit.
    pub fn starts_keyed(&self) -> impl Iterator<Item = (u32, &[u8])> + '_ {
        self.hits
            .iter()
            .filter(|h| matches!(h.1, Hit::Pos(0)))
            .map(|h| (h.0, &self.keys[h.2 as usize..h.3 as usize]))
    }

    /// Drops every hit `idle` says changes nothing (given its join key; `idle` records
    /// what it drops); true when no hit is left (the event changes no sequence).
    pub fn prune(&mut self, mut idle: impl FnMut(TermRef, &[u8]) -> bool) -> bool {
        let keys = &self.keys;
        self.hits
            .retain(|&(r, hit, a, b)| !idle(TermRef(r, hit), &keys[a as usize..b as usize]));
        self.hits.is_empty()
    }
}

impl<H: Clone> SequenceEngine<H> {
    /// Every term the event `probe` describes may hit (each term the index cannot rule out
    /// for it), into `out`; false without the index ([`SequenceEngine::build_index`]), when
    /// the engine cannot tell.
    pub fn possible_terms(&self, probe: &dyn crate::rules::Probe, out: &mut Vec<TermRef>) -> bool {
        out.clear();
        let Some(ix) = &self.index else {
            return false;
        };
        out.extend(ix.set.undecided(probe).iter().map(|m| {
            let (r, hit) = ix.owner[m.get()];
            TermRef(r, hit)
        }));
        // A term whose join key the probe already knows is null takes no event
        // (`push_hit`): a rule joined on `container.id` never hits a host process.
        out.retain(|&TermRef(r, hit)| {
            self.term_keys(r, hit)
                .is_some_and(|keys| !super::super::key::known_null(keys, probe))
        });
        true
    }

    /// Whether a hit of `t` now changes nothing, as far as the engine's state goes: a
    /// later positive term of a rule with no sequence pending (nothing to advance) and
    /// no missing-event term (whose events are remembered for sequences to come). A first
    /// term starts a sequence and an `until` term drops one: never idle.
    pub fn idle_hit(&self, t: TermRef) -> bool {
        self.later_plain_term(t).is_some_and(|rule| rule.len == 0)
    }

    /// [`SequenceEngine::idle_hit`] for one join key: no sequence of the rule is pending
    /// with `key` (at any stage), so a later term's hit with that key has nothing to
    /// advance, whatever other keys have under way.
    pub fn idle_hit_keyed(&self, t: TermRef, key: &[u8]) -> bool {
        self.later_plain_term(t)
            .is_some_and(|rule| !rule.keys.contains_key(key))
    }

    /// The rule of `t` when `t` is a later positive term of a rule without missing-event
    /// terms and with no completed candidate awaiting one.
    fn later_plain_term(&self, t: TermRef) -> Option<&super::RuleState<H>> {
        let TermRef(r, Hit::Pos(pos)) = t else {
            return None;
        };
        let rule = &self.rules[r as usize];
        (pos > 0
            && rule.awaiting.is_empty()
            && rule.trailing.is_empty()
            && rule.missing_before.iter().all(|m| m.is_empty()))
        .then_some(rule)
    }
}
