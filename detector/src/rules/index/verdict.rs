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
//! The entries live in [`crate::rules::generations`]: two generations, bounded, looked up
//! by one hash of the key with its bytes compared.

use std::sync::Arc;

use crate::ecs::field::Probe;
use crate::rules::generations::{Generations, KEY_MAX, hash_key};

/// What a probe's coarse view leaves possible, remembered by its coarse key.
#[derive(Clone, Debug)]
struct CoarseEntry {
    /// One of `rules` is possible whatever the arguments hold: the verdict is true.
    certain: bool,
    /// The rules the view leaves possible.
    rules: Arc<[u32]>,
    /// Unique among the entries made for one cache (never reused): verdicts by arguments
    /// ([`VerdictCache::by_args`]) are keyed by it and the arguments.
    id: u64,
}

/// Verdicts of [`crate::rules::RuleSet::may_match_cached`], for one rule set at a time.
///
/// A key stands for the probe's answers only among probes of one source (one document
/// builder, whose template fields every key leaves out): use one cache per source.
///
/// Two levels: by the probe's coarse key ([`Probe::coarse_key`], without the arguments),
/// the rules its coarse view leaves possible, usually none (an exit, most commands), so a
/// command run with a fresh argument each time (`sleep 37`) is decided by one lookup; and,
/// when some remain, the verdict, decided on a miss over those rules only, by the coarse
/// entry and the probe's arguments ([`Probe::args_key`], a few dozen bytes), or by its
/// full key ([`Probe::key`]) when it has no arguments key.
#[derive(Debug, Default)]
pub struct VerdictCache {
    /// [`crate::rules::RuleSet::id`] of the set the verdicts are about.
    rules: u64,
    /// Verdicts by full key.
    verdicts: Generations<bool>,
    /// Verdicts by coarse entry ([`CoarseEntry::id`]) and arguments key.
    by_args: Generations<bool>,
    /// What the coarse view leaves possible, by coarse key.
    coarse: Generations<CoarseEntry>,
    /// The next [`CoarseEntry::id`].
    next_id: u64,
    /// The key being built, reused from probe to probe.
    key: Vec<u8>,
    hits: u64,
}

impl VerdictCache {
    /// Forgets everything when `rules` is not the set the verdicts are about.
    fn for_set(&mut self, rules: u64) {
        if self.rules != rules {
            self.verdicts.clear();
            self.by_args.clear();
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
        let keyed = probe.key(KEY_MAX, &mut key);
        let hash = if keyed { hash_key(&key) } else { 0 };
        let verdict = match keyed.then(|| self.verdicts.get(hash, &key).copied()) {
            Some(Some(b)) => {
                self.hits += 1;
                b
            }
            _ => {
                let b = decide();
                if keyed {
                    self.verdicts.insert(hash, &key, b);
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
        if !probe.coarse_key(KEY_MAX, &mut key) {
            self.key = key;
            return self.decide(rules, probe, decide);
        }
        let hash = hash_key(&key);
        let entry = match self.coarse.get(hash, &key).cloned() {
            Some(e) if e.certain || e.rules.is_empty() => {
                self.hits += 1;
                self.key = key;
                return e.certain;
            }
            Some(e) => e,
            None => {
                let mut found = None;
                let mut possible = Some(possible);
                probe.with_coarse(&mut |view| {
                    found = possible.take().map(|p| p(view));
                });
                let Some((certain, left)) = found else {
                    self.key = key;
                    return self.decide(rules, probe, decide);
                };
                let e = CoarseEntry {
                    certain,
                    rules: left.into(),
                    id: self.next_id,
                };
                self.next_id += 1;
                self.coarse.insert(hash, &key, e.clone());
                if e.certain || e.rules.is_empty() {
                    self.key = key;
                    return e.certain;
                }
                e
            }
        };
        // Some rules are left: the verdict is the arguments', by this coarse entry.
        key.clear();
        key.extend_from_slice(&entry.id.to_le_bytes());
        if !probe.args_key(KEY_MAX, &mut key) {
            self.key = key;
            return self.decide(rules, probe, || among(&entry.rules));
        }
        let hash = hash_key(&key);
        let verdict = match self.by_args.get(hash, &key).copied() {
            Some(b) => {
                self.hits += 1;
                b
            }
            None => {
                let b = among(&entry.rules);
                self.by_args.insert(hash, &key, b);
                b
            }
        };
        self.key = key;
        verdict
    }

    /// How many verdicts came from the cache (stats, tests): by the full key, by the
    /// coarse key when its view leaves no rule possible, or by the arguments.
    pub fn hits(&self) -> u64 {
        self.hits
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::ecs::field::{FieldId, FieldValue};
    use crate::rules::generations::{COLLIDE, ENTRIES_MAX};

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
        fn args_key(&self, _: usize, key: &mut Vec<u8>) -> bool {
            key.extend_from_slice(&self.1.to_le_bytes());
            true
        }
        fn with_coarse(&self, f: &mut dyn FnMut(&dyn Probe)) -> bool {
            f(self);
            true
        }
    }

    /// [`Coarse`] without an arguments key: verdicts by its full key.
    struct NoArgsKey(Coarse);

    impl Probe for NoArgsKey {
        fn field(&self, _: FieldId) -> Option<FieldValue<'_>> {
            None
        }
        fn key(&self, max: usize, key: &mut Vec<u8>) -> bool {
            self.0.key(max, key)
        }
        fn coarse_key(&self, max: usize, key: &mut Vec<u8>) -> bool {
            self.0.coarse_key(max, key)
        }
        fn with_coarse(&self, f: &mut dyn FnMut(&dyn Probe)) -> bool {
            f(self);
            true
        }
    }

    /// With every key hashing alike, each level still gives every probe its own verdict.
    #[test]
    fn verdicts_stay_right_when_every_hash_collides() {
        COLLIDE.with(|c| c.set(true));
        let mut c = VerdictCache::default();
        for round in 0..3 {
            for cmd in 1..4u32 {
                for arg in 0..5u32 {
                    let want = cmd == 2 || (cmd == 3 && arg % 2 == 0);
                    let got = c.decide_coarse(
                        7,
                        &Coarse(cmd, arg),
                        |_| match cmd {
                            1 => (false, Vec::new()),
                            2 => (true, vec![1]),
                            _ => (false, vec![3]),
                        },
                        |_| arg % 2 == 0,
                        || unreachable!(),
                    );
                    assert_eq!(got, want, "round {round} cmd {cmd} arg {arg}");
                    let full = c.decide(7, &Keyed(cmd * 10 + arg), || arg == 1);
                    assert_eq!(full, arg == 1, "round {round} full key {cmd} {arg}");
                }
            }
        }
        COLLIDE.with(|c| c.set(false));
    }

    /// A probe without an arguments key is decided by its full key among the rules left.
    #[test]
    fn without_an_arguments_key_the_full_key_decides() {
        let mut c = VerdictCache::default();
        let mut among = 0;
        for arg in 0..30u32 {
            let got = c.decide_coarse(
                7,
                &NoArgsKey(Coarse(2, arg % 3)),
                |_| (false, vec![3]),
                |_| {
                    among += 1;
                    arg % 3 == 1
                },
                || unreachable!(),
            );
            assert_eq!(got, arg % 3 == 1);
        }
        assert_eq!(among, 3, "once per full key");
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
        for i in 0..20 * ENTRIES_MAX as u32 {
            let hot = c.decide(1, &Keyed(0), || {
                decided += 1;
                true
            });
            assert!(hot);
            let fresh = c.decide(1, &Keyed(i + 1), || i % 2 == 0);
            assert_eq!(fresh, i % 2 == 0);
            assert!(c.verdicts.len() <= ENTRIES_MAX);
        }
        assert_eq!(decided, 1);
        // A verdict of the old generation is found again, and no other is made up.
        assert!(!c.decide(1, &Keyed(20 * ENTRIES_MAX as u32), || false));
        assert!(c.decide(2, &Keyed(0), || {
            decided += 1;
            true
        }));
        assert_eq!(decided, 2, "another rule set: decided afresh");
    }
}
