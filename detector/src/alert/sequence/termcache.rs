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
//! Bounded like the verdict cache: two generations (a full current one becomes the old
//! one; an entry found in the old one moves back), bounded in entries and key bytes, and
//! keys longer than `KEY_MAX` are not remembered.

use rustc_hash::FxHashMap;

use crate::rules::sequence::TermRef;

/// Entries kept at most, over both generations (each holds half).
const ENTRIES_MAX: usize = 4096;
/// Key bytes kept at most (the same).
const BYTES_MAX: usize = 1 << 20;
/// Probe keys longer than this (bytes) are decided afresh every time.
pub(super) const KEY_MAX: usize = 2048;

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
    map: FxHashMap<Box<[u8]>, Terms>,
    bytes: usize,
    old: FxHashMap<Box<[u8]>, Terms>,
    /// Lookups answered.
    pub(super) hits: u64,
}

impl TermCache {
    /// What was remembered for `key`.
    pub(super) fn get(&mut self, key: &[u8]) -> Option<&Terms> {
        if !self.map.contains_key(key) {
            let v = self.old.remove(key)?;
            self.insert(key, v);
        }
        self.hits += 1;
        self.map.get(key)
    }

    /// Remembers `terms` for `key` (not when the key is too long).
    pub(super) fn insert(&mut self, key: &[u8], terms: Terms) {
        if key.len() > KEY_MAX {
            return;
        }
        if self.map.len() >= ENTRIES_MAX / 2 || self.bytes + key.len() > BYTES_MAX / 2 {
            self.old = std::mem::take(&mut self.map);
            self.map.reserve(self.old.len());
            self.bytes = 0;
        }
        self.bytes += key.len();
        self.map.insert(key.into(), terms);
    }

    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.map.len() + self.old.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
