//! Remembered early verdicts: whether any rule could match a probe, by the probe's key
//! ([`Probe::key`]).
//!
//! A probe that depends on a few bytes only (the image probe: event kind and subject image)
//! gets the same verdict from the same rule set whenever its key is the same, so the forks
//! of a long-lived shell, the exits of its commands and repeated commands cost one hash
//! lookup instead of an index pass. The cache is bounded in entries and in key bytes
//! (hostile argument lists cost bounded memory), and starts over when asked about another
//! rule set (after a reload).

use rustc_hash::FxHashMap;

use crate::ecs::field::Probe;

/// Verdicts kept at most (then all are dropped and the cache refills).
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
    map: FxHashMap<Box<[u8]>, bool>,
    /// Bytes of the keys in `map`.
    bytes: usize,
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
                let b = decide();
                if keyed {
                    if self.map.len() >= VERDICTS_MAX || self.bytes + key.len() > VERDICT_BYTES_MAX
                    {
                        self.map.clear();
                        self.bytes = 0;
                    }
                    self.bytes += key.len();
                    self.map.insert(key.as_slice().into(), b);
                }
                b
            }
        };
        self.key = key;
        verdict
    }

    /// How many verdicts came from the cache (stats, tests).
    pub fn hits(&self) -> u64 {
        self.hits
    }
}
