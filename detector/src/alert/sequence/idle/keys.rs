//! Idle hits per join key: while a rule has sequences under way for some keys, a later
//! term's hit with a key none of them has (nor any start waiting in the window) has
//! nothing to advance either. A shell's exit with a `curl` pending under another shell,
//! say: it is left out after its snapshot instead of waiting in the window to be dropped.
//!
//! Keys are tracked by hash: two keys with one hash make a hit look live (kept) or a start
//! look crossed (counted), never the other way.

use rustc_hash::FxHashMap;

use crate::rules::generations::hash_key;

/// Left-out records kept per key at most; past it they are folded into the rule's.
const LEFT_OUT_MAX: usize = 4096;

/// What is held back and what was left out, per (rule, join key hash).
#[derive(Default)]
pub(super) struct ByKey {
    /// Starts waiting in the reorder window.
    starting: FxHashMap<(u32, u64), u32>,
    /// The latest `@timestamp` of an event left out for the key.
    left_out: FxHashMap<(u32, u64), i64>,
}

impl ByKey {
    /// Whether a start of `rule` with `key` is waiting in the window.
    pub(super) fn waiting(&self, rule: u32, key: &[u8]) -> bool {
        !self.starting.is_empty() && self.starting.contains_key(&(rule, hash_key(key)))
    }

    /// A start of `rule` with `key` entered the window; true when it is older than an
    /// event left out for that key (a crossing).
    pub(super) fn entered(&mut self, rule: u32, key: &[u8], ts_ns: i64) -> bool {
        let k = (rule, hash_key(key));
        *self.starting.entry(k).or_default() += 1;
        self.left_out.get(&k).is_some_and(|&t| ts_ns < t)
    }

    /// A start of `rule` with `key` left the window.
    pub(super) fn left(&mut self, rule: u32, key: &[u8]) {
        let k = (rule, hash_key(key));
        if let Some(n) = self.starting.get_mut(&k) {
            *n -= 1;
            if *n == 0 {
                self.starting.remove(&k);
            }
        }
    }

    /// An event at `ts_ns` was left out for `rule` and `key`. Past the bound the records
    /// are folded into `by_rule` (the rule's latest: a crossing is then counted for any
    /// key of the rule, more than happened, never fewer).
    pub(super) fn leave_out(&mut self, rule: u32, key: &[u8], ts_ns: i64, by_rule: &mut [i64]) {
        if self.left_out.len() >= LEFT_OUT_MAX {
            for (&(r, _), &t) in &self.left_out {
                if let Some(x) = by_rule.get_mut(r as usize) {
                    *x = (*x).max(t);
                }
            }
            self.left_out.clear();
        }
        let t = self
            .left_out
            .entry((rule, hash_key(key)))
            .or_insert(i64::MIN);
        *t = (*t).max(ts_ns);
    }

    /// Records held (tests: the bound holds).
    #[cfg(test)]
    pub(super) fn held(&self) -> (usize, usize) {
        (self.starting.len(), self.left_out.len())
    }
}
