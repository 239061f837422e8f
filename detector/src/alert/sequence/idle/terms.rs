//! What lineage probes may hit, remembered: by the probe's coarse key (the one the rules'
//! verdict cache made, [`Probe::coarse_key_hashed`]), the terms its coarse view leaves
//! possible; when the arguments decide among those (the view asked an argument field), by
//! that entry and the probe's arguments ([`Probe::args_key`]), the terms the probe itself
//! leaves possible. A fork, an exit or an `ls` is then one lookup of a key already hashed;
//! a shell exec with fresh arguments one more of a few dozen bytes.

use crate::alert::sequence::engine::Correlate;
use crate::ecs::field::FieldId;
use crate::rules::Probe;
use crate::rules::generations::{Generations, KEY_MAX, hash_key};
use crate::rules::index::watch::Watch;
use crate::rules::sequence::TermRef;

/// What a coarse view leaves possible.
struct Coarse {
    terms: Box<[TermRef]>,
    /// The view asked an argument field: the probe's arguments decide among `terms`.
    by_args: bool,
    /// Unique per entry (never reused): the second level is keyed by it.
    id: u64,
}

/// The two levels, each bounded as the rules' verdict cache is ([`Generations`]).
#[derive(Default)]
pub(super) struct TermMemory {
    /// By coarse key.
    coarse: Generations<Coarse>,
    /// By a coarse entry's id and the arguments key.
    by_args: Generations<Box<[TermRef]>>,
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
        let id = match self.coarse.get(hash, key) {
            Some(e) if !e.by_args => {
                out.clear();
                out.extend_from_slice(&e.terms);
                return true;
            }
            Some(e) => e.id,
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
                self.coarse.insert(hash, key, entry);
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
        if let Some(t) = self.by_args.get(hash, &self.args_key) {
            out.clear();
            out.extend_from_slice(t);
            return true;
        }
        if !engine.possible_terms(probe, out) {
            return false;
        }
        self.by_args
            .insert(hash, &self.args_key, out.as_slice().into());
        true
    }

    /// Entries and key bytes held over both levels (tests: the bounds hold).
    #[cfg(test)]
    pub(super) fn held(&self) -> (usize, usize) {
        let (a, b) = (self.coarse.held(), self.by_args.held());
        (a.0 + b.0, a.1 + b.1)
    }
}
