//! Remembered early verdicts: whether any rule could match a probe, by the probe's key
//! ([`Probe::key`]).
//!
//! A probe that depends on a few bytes only (the image probe: event kind and subject image)
//! gets the same verdict from the same rule set whenever its key is the same, so the forks
//! of a long-lived shell, the exits of its commands and repeated commands cost one hash
//! lookup instead of an index pass. The cache is bounded in entries and in key bytes
//! (hostile argument lists cost bounded memory), and starts over when asked about another
//! rule set (after a reload).
//!
//! It keeps two generations: when the current one is full it becomes the old one (the
//! older is dropped), and a verdict found in the old one moves back to the current. So a
//! stream of probes seen once (commands with a fresh argument each time: `sleep 37`,
//! `cat /var/log/job-8812.log`) evicts only verdicts not asked for since the last turn,
//! never the hot ones (the forks of a shell, its usual commands), which a cache dropped
//! whole when full would have to decide afresh every time it filled.

use rustc_hash::FxHashMap;

use crate::ecs::field::Probe;

/// Verdicts kept at most, over both generations (each holds half).
const VERDICTS_MAX: usize = 4096;
/// Key bytes kept at most (the same).
const VERDICT_BYTES_MAX: usize = 1 << 20;
/// Probes whose key is longer than this (bytes) are decided afresh every time.
pub(crate) const VERDICT_KEY_MAX: usize = 2048;

/// Verdicts of [`crate::rules::RuleSet::may_match_cached`], for one rule set at a time.
///
/// A key stands for the probe's answers only among probes of one source (one document
/// builder, whose template fields every key leaves out): use one cache per source.
#[derive(Debug, Default)]
pub struct VerdictCache {
    /// [`crate::rules::RuleSet::id`] of the set the verdicts are about.
    rules: u64,
    /// The current generation.
    map: FxHashMap<Box<[u8]>, bool>,
    /// Bytes of the keys in `map`.
    bytes: usize,
    /// The previous generation: looked up on a miss in `map`, dropped at the next turn.
    old: FxHashMap<Box<[u8]>, bool>,
    /// The key being built, reused from probe to probe.
    key: Vec<u8>,
    hits: u64,
}

impl VerdictCache {
    /// The verdict about `probe` for rule set `rules`: remembered when its key was seen
    /// before, else `decide()` (remembered when the probe has a key).
    pub(crate) fn decide(
        &mut self,
        rules: u64,
        probe: &dyn Probe,
        decide: impl FnOnce() -> bool,
    ) -> bool {
        if self.rules != rules {
            self.map.clear();
            self.old.clear();
            self.bytes = 0;
            self.rules = rules;
        }
        let mut key = std::mem::take(&mut self.key);
        let keyed = probe.key(VERDICT_KEY_MAX, &mut key);
        let verdict = match keyed.then(|| self.map.get(key.as_slice()).copied()) {
            Some(Some(b)) => {
                self.hits += 1;
                b
            }
            _ => {
                let old = if keyed {
                    self.old.remove(key.as_slice())
                } else {
                    None
                };
                self.hits += old.is_some() as u64;
                let b = old.unwrap_or_else(decide);
                if keyed {
                    self.insert(&key, b);
                }
                b
            }
        };
        self.key = key;
        verdict
    }

    /// Remembers `b` for `key` in the current generation, turning generations first when
    /// it is full.
    fn insert(&mut self, key: &[u8], b: bool) {
        if self.map.len() >= VERDICTS_MAX / 2 || self.bytes + key.len() > VERDICT_BYTES_MAX / 2 {
            self.old = std::mem::take(&mut self.map);
            self.map.reserve(self.old.len());
            self.bytes = 0;
        }
        self.bytes += key.len();
        self.map.insert(key.into(), b);
    }

    /// How many verdicts came from the cache (stats, tests).
    pub fn hits(&self) -> u64 {
        self.hits
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ecs::field::{FieldId, FieldValue};

    /// A probe whose key is its number, and which knows nothing.
    struct Keyed(u32);

    impl Probe for Keyed {
        fn field(&self, _: FieldId) -> Option<FieldValue<'_>> {
            None
        }
        fn key(&self, _: usize, key: &mut Vec<u8>) -> bool {
            key.clear();
            key.extend_from_slice(&self.0.to_le_bytes());
            true
        }
    }

    /// A hot probe asked between many probes seen once is decided once; verdicts stay
    /// bounded; another rule set starts over.
    #[test]
    fn hot_verdicts_survive_streams_of_fresh_probes() {
        let mut c = VerdictCache::default();
        let mut decided = 0u32;
        for i in 0..20 * VERDICTS_MAX as u32 {
            let hot = c.decide(1, &Keyed(0), || {
                decided += 1;
                true
            });
            assert!(hot);
            let fresh = c.decide(1, &Keyed(i + 1), || i % 2 == 0);
            assert_eq!(fresh, i % 2 == 0);
            assert!(c.map.len() + c.old.len() <= VERDICTS_MAX);
        }
        assert_eq!(decided, 1);
        // A verdict of the old generation is found again, and no other is made up.
        assert!(!c.decide(1, &Keyed(20 * VERDICTS_MAX as u32), || false));
        assert!(c.decide(2, &Keyed(0), || {
            decided += 1;
            true
        }));
        assert_eq!(decided, 2, "another rule set: decided afresh");
    }
}
