//! What lineage probes may hit, remembered: by the probe's coarse key (the one the rules'
//! verdict cache made, [`Probe::coarse_key_hashed`]), the terms its coarse view leaves
//! possible; when the arguments decide among those (the view asked an argument field), by
//! that entry and the probe's arguments ([`Probe::args_key`]), the terms the probe itself
//! leaves possible. A fork, an exit or an `ls` is then one lookup of a key already hashed;
//! a shell exec with fresh arguments one more of a few dozen bytes.

use rustc_hash::FxHashMap;

use crate::alert::sequence::engine::Correlate;
use crate::ecs::field::FieldId;
use crate::rules::Probe;
use crate::rules::generations::{KEY_MAX, hash_key};
use crate::rules::index::watch::Watch;
use crate::rules::sequence::TermRef;

/// Keys remembered at most, over both levels; past it the memory starts over.
pub(super) const REMEMBERED: usize = 8192;
/// Key bytes remembered at most (hostile command lines cost at most this much).
pub(super) const REMEMBERED_BYTES: usize = 1 << 20;

/// What a coarse view leaves possible.
struct Coarse {
    terms: Box<[TermRef]>,
    /// The view asked an argument field: the probe's arguments decide among `terms`.
    by_args: bool,
    /// Unique per entry (never reused): the second level is keyed by it.
    id: u64,
}

/// A key and the terms a probe with it may hit.
type Remembered = (Box<[u8]>, Box<[TermRef]>);

/// The two levels, bounded together.
#[derive(Default)]
pub(super) struct TermMemory {
    /// By coarse key's hash, with the key.
    coarse: FxHashMap<u64, (Box<[u8]>, Coarse)>,
    /// By the hash of a coarse entry's id and the arguments key, with that key.
    by_args: FxHashMap<u64, Remembered>,
    /// Bytes of the keys of both levels.
    pub(super) key_bytes: usize,
    next_id: u64,
    /// The coarse key, for a probe that does not keep one.
    coarse_key: Vec<u8>,
    args_key: Vec<u8>,
    /// The argument fields (what the coarse view leaves unknown).
    args_fields: Vec<FieldId>,
}

impl TermMemory {
    pub(super) fn new() -> Self {
        use crate::ecs::field::Schema;
        let schema = crate::ecs::schema();
        TermMemory {
            args_fields: crate::ecs::ARGS_FIELDS
                .iter()
                .filter_map(|p| schema.resolve(p).map(|d| d.id))
                .collect(),
            ..TermMemory::default()
        }
    }

    /// Fills `out` with the terms `probe` may hit (a superset); false when the engine
    /// cannot tell.
    pub(super) fn terms(
        &mut self,
        engine: &dyn Correlate,
        probe: &dyn Probe,
        out: &mut Vec<TermRef>,
    ) -> bool {
        let kept = probe.coarse_key_hashed(KEY_MAX);
        let (hash, key) = match kept {
            Some(k) => k,
            None if probe.coarse_key(KEY_MAX, &mut self.coarse_key) => {
                (hash_key(&self.coarse_key), self.coarse_key.as_slice())
            }
            None => return engine.possible_terms(probe, out),
        };
        let found = self.coarse.get(&hash).filter(|(k, _)| **k == *key);
        let id = match found {
            Some((_, e)) if !e.by_args => {
                out.clear();
                out.extend_from_slice(&e.terms);
                return true;
            }
            Some((_, e)) => e.id,
            None => {
                let (mut known, mut asked) = (false, false);
                let args_fields = &self.args_fields;
                let viewed = probe.with_coarse(&mut |view| {
                    let watch = Watch::new(view, args_fields);
                    known = engine.possible_terms(&watch, out);
                    asked = watch.asked();
                });
                if !viewed {
                    return engine.possible_terms(probe, out);
                }
                if !known {
                    return false;
                }
                let id = self.next_id;
                self.next_id += 1;
                let entry = Coarse {
                    terms: out.as_slice().into(),
                    by_args: asked,
                    id,
                };
                let key: Box<[u8]> = key.into();
                self.make_room(key.len());
                self.coarse.insert(hash, (key, entry));
                if !asked {
                    return true;
                }
                id
            }
        };
        // The arguments decide: by this entry and the probe's arguments.
        self.args_key.clear();
        self.args_key.extend_from_slice(&id.to_le_bytes());
        if !probe.args_key(KEY_MAX, &mut self.args_key) {
            return engine.possible_terms(probe, out);
        }
        let hash = hash_key(&self.args_key);
        if let Some((_, t)) = self
            .by_args
            .get(&hash)
            .filter(|(k, _)| **k == *self.args_key)
        {
            out.clear();
            out.extend_from_slice(t);
            return true;
        }
        if !engine.possible_terms(probe, out) {
            return false;
        }
        self.make_room(self.args_key.len());
        let remembered = (self.args_key.as_slice().into(), out.as_slice().into());
        self.by_args.insert(hash, remembered);
        true
    }

    /// Counts `n` more key bytes, starting over first when they would pass a bound.
    fn make_room(&mut self, n: usize) {
        if self.coarse.len() + self.by_args.len() >= REMEMBERED
            || self.key_bytes + n > REMEMBERED_BYTES
        {
            self.coarse.clear();
            self.by_args.clear();
            self.key_bytes = 0;
        }
        self.key_bytes += n;
    }

    /// The key bytes held (tests: the count is right).
    #[cfg(test)]
    pub(super) fn held_bytes(&self) -> usize {
        let coarse: usize = self.coarse.values().map(|(k, _)| k.len()).sum();
        coarse + self.by_args.values().map(|(k, _)| k.len()).sum::<usize>()
    }
}
