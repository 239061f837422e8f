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

/// Entries kept in two generations ([`VerdictCache`]), bounded in entries and key bytes.
#[derive(Debug)]
struct Generations<V> {
    /// The current generation.
    map: FxHashMap<Box<[u8]>, V>,
    /// Bytes of the keys in `map`.
    bytes: usize,
    /// The previous generation: looked up on a miss in `map`, dropped at the next turn.
    old: FxHashMap<Box<[u8]>, V>,
}

impl<V> Default for Generations<V> {
    fn default() -> Self {
        Generations {
            map: FxHashMap::default(),
            bytes: 0,
            old: FxHashMap::default(),
        }
    }
}

impl<V> Generations<V> {
    fn clear(&mut self) {
        self.map.clear();
        self.old.clear();
        self.bytes = 0;
    }

    /// The entry of `key`, moved back to the current generation when found in the old.
    fn get(&mut self, key: &[u8]) -> Option<&V> {
        if !self.map.contains_key(key) {
            let v = self.old.remove(key)?;
            self.insert(key, v);
        }
        self.map.get(key)
    }

    /// Remembers `v` for `key` in the current generation, turning generations first when
    /// it is full.
    fn insert(&mut self, key: &[u8], v: V) {
        if self.map.len() >= VERDICTS_MAX / 2 || self.bytes + key.len() > VERDICT_BYTES_MAX / 2 {
            self.old = std::mem::take(&mut self.map);
            self.map.reserve(self.old.len());
            self.bytes = 0;
        }
        self.bytes += key.len();
        self.map.insert(key.into(), v);
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.map.len() + self.old.len()
    }
}

/// Verdicts of [`crate::rules::RuleSet::may_match_cached`], for one rule set at a time.
///
/// A key stands for the probe's answers only among probes of one source (one document
/// builder, whose template fields every key leaves out): use one cache per source.
///
/// Two levels: by the probe's coarse key ([`Probe::coarse_key`], without the arguments),
/// the rules its coarse view leaves possible, usually none (an exit, most commands), so a
/// command run with a fresh argument each time (`sleep 37`) is decided by one lookup; and,
/// when some remain, by the full key ([`Probe::key`]) the verdict, decided on a miss over
/// those rules only.
#[derive(Debug, Default)]
pub struct VerdictCache {
    /// [`crate::rules::RuleSet::id`] of the set the verdicts are about.
    rules: u64,
    /// Verdicts by full key.
    verdicts: Generations<bool>,
    /// Rules still possible, by coarse key.
    /// (some rule is possible whatever the arguments, the rules), by coarse key.
    coarse: Generations<(bool, Box<[u32]>)>,
    /// The key being built, reused from probe to probe.
    key: Vec<u8>,
    hits: u64,
}

impl VerdictCache {
    /// Forgets everything when `rules` is not the set the verdicts are about.
    fn for_set(&mut self, rules: u64) {
        if self.rules != rules {
            self.verdicts.clear();
            self.coarse.clear();
            self.rules = rules;
        }
    }

    /// The verdict about `probe` for rule set `rules`: remembered when its key was seen
    /// before, else `decide()` (remembered when the probe has a key).
    pub(crate) fn decide(
        &mut self,
        rules: u64,
        probe: &dyn Probe,
        decide: impl FnOnce() -> bool,
    ) -> bool {
        self.for_set(rules);
        let mut key = std::mem::take(&mut self.key);
        let keyed = probe.key(VERDICT_KEY_MAX, &mut key);
        let verdict = match keyed.then(|| self.verdicts.get(&key).copied()) {
            Some(Some(b)) => {
                self.hits += 1;
                b
            }
            _ => {
                let b = decide();
                if keyed {
                    self.verdicts.insert(&key, b);
                }
                b
            }
        };
        self.key = key;
        verdict
    }

    /// [`VerdictCache::decide`] through the coarse level: `possible(view)` gives the rules
    /// not certainly false for the probe's coarse view, and whether one of them is not
    /// false whatever the arguments hold (then the verdict is true; remembered by the
    /// coarse key),
    /// `among(rules)` whether one of them could match the probe, `decide()` the verdict
    /// when the probe has no coarse view.
    pub(crate) fn decide_coarse(
        &mut self,
        rules: u64,
        probe: &dyn Probe,
        possible: impl FnOnce(&dyn Probe) -> (bool, Vec<u32>),
        among: impl FnOnce(&[u32]) -> bool,
        decide: impl FnOnce() -> bool,
    ) -> bool {
        self.for_set(rules);
        let mut key = std::mem::take(&mut self.key);
        if !probe.coarse_key(VERDICT_KEY_MAX, &mut key) {
            self.key = key;
            return self.decide(rules, probe, decide);
        }
        let start: Option<Box<[u32]>> = match self.coarse.get(&key) {
            Some((certain, s)) if *certain || s.is_empty() => {
                let v = *certain;
                self.hits += 1;
                self.key = key;
                return v;
            }
            Some((_, s)) => Some(s.clone()),
            None => {
                let mut found = None;
                let mut possible = Some(possible);
                probe.with_coarse(&mut |view| {
                    found = possible.take().map(|p| {
                        let (certain, rules) = p(view);
                        (certain, rules.into_boxed_slice())
                    });
                });
                let Some(found) = found else {
                    self.key = key;
                    return self.decide(rules, probe, decide);
                };
                self.coarse.insert(&key, found.clone());
                if found.0 {
                    self.key = key;
                    return true;
                }
                (!found.1.is_empty()).then_some(found.1)
            }
        };
        self.key = key;
        match start {
            None => false,
            Some(start) => self.decide(rules, probe, || among(&start)),
        }
    }

    /// How many verdicts came from the cache (stats, tests): by the full key, or by the
    /// coarse key when its view leaves no rule possible.
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

    /// A probe whose coarse key is its first number and full key both numbers.
    struct Coarse(u32, u32);

    impl Probe for Coarse {
        fn field(&self, _: FieldId) -> Option<FieldValue<'_>> {
            None
        }
        fn key(&self, _: usize, key: &mut Vec<u8>) -> bool {
            key.clear();
            key.extend_from_slice(&self.0.to_le_bytes());
            key.extend_from_slice(&self.1.to_le_bytes());
            true
        }
        fn coarse_key(&self, _: usize, key: &mut Vec<u8>) -> bool {
            key.clear();
            key.extend_from_slice(&self.0.to_le_bytes());
            true
        }
        fn with_coarse(&self, f: &mut dyn FnMut(&dyn Probe)) -> bool {
            f(self);
            true
        }
    }

    /// The rules a coarse view leaves possible are found once per coarse key; a probe whose
    /// view leaves none is false without its full key; otherwise the full verdict is
    /// decided over those rules only, once per full key.
    #[test]
    fn coarse_level_decides_fresh_arguments_by_one_lookup() {
        let mut c = VerdictCache::default();
        let (mut possible, mut among) = (0u32, 0u32);
        for arg in 0..100 {
            for (cmd, want) in [(1u32, false), (2, true)] {
                let got = c.decide_coarse(
                    7,
                    &Coarse(cmd, arg % 10),
                    |_| {
                        possible += 1;
                        if cmd == 1 {
                            (false, Vec::new())
                        } else {
                            (false, vec![3, 5])
                        }
                    },
                    |start| {
                        among += 1;
                        assert_eq!(start, &[3, 5]);
                        true
                    },
                    || unreachable!("the probe has a coarse view"),
                );
                assert_eq!(got, want);
            }
        }
        assert_eq!(possible, 2, "once per coarse key");
        assert_eq!(among, 10, "once per full key with rules left");
        assert_eq!(
            c.hits(),
            200 - 1 - 10,
            "the first of command 1, each full key of command 2"
        );
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
            assert!(c.verdicts.len() <= VERDICTS_MAX);
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
