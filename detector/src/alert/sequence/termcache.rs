//! The sequence terms an event's snapshot matches, remembered by its probe key
//! ([`crate::rules::Probe::key`]), as the single-event rules' verdicts are
//! (`rules::index::verdict`).
//!
//! A snapshot probe's key determines every answer of the probe; the term conditions of the
//! sequence rules read the event through [`super::lazy::SnapshotDoc`], which answers from
//! the probe except for a few fields it reads from the snapshot itself. Of those, the
//! `*.interactive` flags and the capability sets (which terms do read: "an interactive
//! shell", "a process with CAP_SYS_ADMIN") are appended to the key
//! ([`super::lazy::SnapshotDoc::key_suffix`]); a pass that read an identity
//! (`*.entity_id`, `*.pid`) is not remembered. So the terms found (or that the snapshot
//! could not tell) are the key's alone: the forks of one shell, its usual commands and
//! their execs cost one lookup instead of an indexed pass over every term of every rule
//! (most of what a loaded sequence rule set cost per event). The join keys are read for
//! each event anyway (they are the event's identities).
//!
//! Bounded like the verdict cache, by the same map ([`crate::rules::generations`]): two
//! generations, bounded in entries and key bytes; keys longer than `KEY_MAX` are not
//! remembered.

use crate::rules::generations::{Generations, hash_key};
use crate::rules::sequence::TermRef;

/// Probe keys longer than this (bytes) are decided afresh every time.
pub(super) use crate::rules::generations::KEY_MAX;

/// What the term pass made of a key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Terms {
    /// Some term reads a field the probe cannot tell: the document must decide.
    Undecided,
    /// The terms matched (none: no term takes such an event).
    Hit(Box<[TermRef]>),
}

/// Term passes by probe key.
#[derive(Debug, Default)]
pub(super) struct TermCache {
    entries: Generations<Terms>,
    /// Lookups answered.
    pub(super) hits: u64,
}

impl TermCache {
    /// What was remembered for `key`.
    pub(super) fn get(&mut self, key: &[u8]) -> Option<&Terms> {
        let found = self.entries.get(hash_key(key), key);
        self.hits += u64::from(found.is_some());
        found
    }

    /// Remembers `terms` for `key` (not when the key is too long).
    pub(super) fn insert(&mut self, key: &[u8], terms: Terms) {
        self.entries.insert(hash_key(key), key, terms);
    }

    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::generations::ENTRIES_MAX;

    #[test]
    fn remembers_and_stays_bounded_keeping_what_is_asked_for() {
        let mut c = TermCache::default();
        c.insert(b"hot", Terms::Undecided);
        for i in 0..(3 * ENTRIES_MAX) {
            c.insert(format!("cold-{i}").as_bytes(), Terms::Hit(Box::new([])));
            // The hot key is asked for all along: it survives every turn.
            assert_eq!(c.get(b"hot"), Some(&Terms::Undecided), "{i}");
        }
        assert!(c.len() <= ENTRIES_MAX);
        assert_eq!(c.get(b"cold-0"), None);
        c.insert(&vec![b'x'; KEY_MAX + 1], Terms::Undecided);
        assert_eq!(c.get(&vec![b'x'; KEY_MAX + 1]), None);
    }
}
