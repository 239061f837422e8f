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
use std::sync::atomic::{AtomicU32, Ordering::Relaxed};

use crate::ecs::field::Probe;
use crate::rules::generations::{Generations, KEY_MAX, hash_key};

/// What a probe's coarse view leaves possible, remembered by its coarse key.
#[derive(Clone, Debug)]
struct CoarseEntry {
    /// One of `rules` is possible whatever the arguments hold: the verdict is true.
    certain: bool,
    /// The rules the view leaves possible.
    rules: Arc<[u32]>,
    /// Unique among the entries made for one cache (never reused): what the arguments
    /// decide ([`VerdictCache::shapes`], [`VerdictCache::by_args`]) is keyed by it.
    id: u64,
    /// How often the arguments' shape was found, and not found, among those remembered.
    shapes: Arc<[AtomicU32; 2]>,
}

/// Shapes not found that are worked out before the hit rate counts
/// ([`CoarseEntry::shape_worth_it`]).
const SHAPE_MISSES_FREE: u32 = 16;

impl CoarseEntry {
    /// Whether to work out what a new shape leaves possible (every rule left, evaluated
    /// without the index: tens of microseconds) rather than decide the arguments directly
    /// (an index pass: a few). Worth it while shapes recur, as numbers in commands do;
    /// not for a command whose arguments vary in more than digits (random file names), so
    /// at most one shape in four may be new after the first [`SHAPE_MISSES_FREE`] (each
    /// counted before it is asked about). Shapes
    /// found keep counting, so the level comes back when shapes recur again.
    fn shape_worth_it(&self) -> bool {
        let [found, new] = &*self.shapes;
        let (found, new) = (found.load(Relaxed), new.load(Relaxed));
        new <= SHAPE_MISSES_FREE || new <= found / 3
    }

    fn count_shape(&self, found: bool) {
        self.shapes[!found as usize].fetch_add(1, Relaxed);
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
/// when some remain, those the arguments' *shape* leaves possible, by the coarse entry
/// and the shape ([`Probe::args_shape_key`], every digit `0`: `sleep 37` and `sleep 38`
/// are one shape), usually none again; and when some remain, the verdict over them, by
/// the coarse entry and the arguments ([`Probe::args_key`], a few dozen bytes), or by
/// the full key ([`Probe::key`]) when the arguments are too long for a key.
#[derive(Debug, Default)]
pub struct VerdictCache {
    /// [`crate::rules::RuleSet::id`] of the set the verdicts are about.
    rules: u64,
    /// Verdicts by full key.
    verdicts: Generations<bool>,
    /// What the arguments' shape leaves possible, by coarse entry ([`CoarseEntry::id`])
    /// and shape key.
    shapes: Generations<Arc<[u32]>>,
    /// Verdicts by coarse entry and arguments key.
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
            self.shapes.clear();
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
    /// coarse key), `shape(rules)` those of them not certainly false for any probe with the
    /// probe's coarse view and the shape of its arguments, `among(rules)` whether one of
    /// them could match the probe, `decide()` the verdict when the probe has no coarse view.
    pub(crate) fn decide_coarse(
        &mut self,
        rules: u64,
        probe: &dyn Probe,
        possible: impl FnOnce(&dyn Probe) -> (bool, Vec<u32>),
        shape: impl FnOnce(&[u32]) -> Vec<u32>,
        among: impl FnOnce(&[u32]) -> bool,
        decide: impl FnOnce() -> bool,
    ) -> bool {
        self.for_set(rules);
        let mut key = std::mem::take(&mut self.key);
        let kept = probe.coarse_key_hashed(KEY_MAX);
        let (hash, coarse) = match kept {
            Some(k) => k,
            None if probe.coarse_key(KEY_MAX, &mut key) => (hash_key(&key), key.as_slice()),
            None => {
                self.key = key;
                return self.decide(rules, probe, decide);
            }
        };
        let entry = match self.coarse.get(hash, coarse).cloned() {
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
                    shapes: Arc::default(),
                };
                self.next_id += 1;
                self.coarse.insert(hash, coarse, e.clone());
                if e.certain || e.rules.is_empty() {
                    self.key = key;
                    return e.certain;
                }
                e
            }
        };
        // Some rules are left: what the arguments' shape leaves of them, by this entry.
        key.clear();
        key.extend_from_slice(&entry.id.to_le_bytes());
        let mut remembered = true;
        let left = if probe.args_shape_key(KEY_MAX, &mut key) {
            let hash = hash_key(&key);
            let found = self.shapes.get(hash, &key).cloned();
            entry.count_shape(found.is_some());
            match found {
                Some(left) => left,
                None if entry.shape_worth_it() => {
                    remembered = false;
                    let left: Arc<[u32]> = shape(&entry.rules).into();
                    self.shapes.insert(hash, &key, left.clone());
                    left
                }
                None => entry.rules.clone(),
            }
        } else {
            entry.rules.clone()
        };
        if left.is_empty() {
            self.hits += remembered as u64;
            self.key = key;
            return false;
        }
        // The verdict over those is the arguments', by this entry.
        key.truncate(8);
        if !probe.args_key(KEY_MAX, &mut key) {
            self.key = key;
            return self.decide(rules, probe, || among(&left));
        }
        let hash = hash_key(&key);
        let verdict = match self.by_args.get(hash, &key).copied() {
            Some(b) => {
                self.hits += remembered as u64;
                b
            }
            None => {
                let b = among(&left);
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

    /// A probe whose coarse key is its first number, full key both numbers, and arguments'
    /// shape the second divided by 10.
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
        /// The argument divided by 10 (`sleep 31` and `sleep 37` are one shape).
        fn args_shape_key(&self, _: usize, key: &mut Vec<u8>) -> bool {
            key.extend_from_slice(&(self.1 / 10).to_le_bytes());
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

    /// What a shape leaves possible is worked out once per shape; a shape that leaves
    /// nothing is false without an index pass; one that leaves rules is decided over those
    /// only, once per arguments key.
    #[test]
    fn shapes_decide_fresh_numbers_by_one_lookup() {
        let mut c = VerdictCache::default();
        let (mut shapes, mut among) = (0u32, 0u32);
        for round in 0..3 {
            for arg in 0..40u32 {
                // Shapes 0 and 2 leave nothing; shape 1 leaves rule 5, true for odd args.
                let want = arg / 10 == 1 && arg % 2 == 1;
                let got = c.decide_coarse(
                    7,
                    &Coarse(2, arg),
                    |_| (false, vec![3, 5]),
                    |left| {
                        shapes += 1;
                        assert_eq!(left, &[3, 5]);
                        if arg / 10 == 1 { vec![5] } else { vec![] }
                    },
                    |start| {
                        among += 1;
                        assert_eq!(start, &[5]);
                        arg % 2 == 1
                    },
                    || unreachable!(),
                );
                assert_eq!(got, want, "round {round} arg {arg}");
            }
        }
        assert_eq!(shapes, 4, "once per shape");
        assert_eq!(among, 10, "once per arguments key of shape 1");
    }

    /// Arguments whose shape is new every time (random names) stop costing a shape's
    /// evaluation once few shapes recur: they are decided over every rule left, and stay
    /// right.
    #[test]
    fn shapes_that_never_recur_are_not_worked_out() {
        let mut c = VerdictCache::default();
        let (mut shapes, mut among) = (0u32, 0u32);
        for arg in 0..1000u32 {
            let got = c.decide_coarse(
                7,
                &Coarse(2, arg * 10),
                |_| (false, vec![3, 5]),
                |_| {
                    shapes += 1;
                    vec![5]
                },
                |_| {
                    among += 1;
                    arg % 3 == 0
                },
                || unreachable!(),
            );
            assert_eq!(got, arg % 3 == 0, "arg {arg}");
        }
        assert_eq!(
            shapes, SHAPE_MISSES_FREE,
            "worked out until the free misses are spent"
        );
        assert_eq!(among, 1000, "every arguments key decided once");
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
                        |r| r.to_vec(),
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
                |r| r.to_vec(),
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
                    |r| r.to_vec(),
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
