//! A bounded map of decisions by probe key, in two generations: what the rules'
//! verdict cache (`rules::index::verdict`) and the sequence term cache
//! (`alert::sequence::termcache`) both remember.
//!
//! When the current generation is full it becomes the old one (the older is dropped), and
//! an entry found in the old one moves back to the current. So a stream of keys seen once
//! (commands with a fresh argument each time: `sleep 37`, `cat /var/log/job-8812.log`)
//! evicts only entries not asked for since the last turn, never the hot ones (the forks of
//! a shell, its usual commands), which a map dropped whole when full would have to decide
//! afresh every time it filled. Bounded in entries and in key bytes: hostile argument
//! lists cost bounded memory.
//!
//! A key's bytes are hashed once per lookup (keys carry an environment block and several
//! images: a few hundred bytes), and the maps are keyed by that hash, each entry keeping
//! its key's bytes beside it: an entry is only taken for a key whose bytes are equal, so
//! two keys with the same hash never share a decision (the later one replaces the earlier).

use std::hash::Hasher;

use rustc_hash::{FxHashMap, FxHasher};

/// Entries kept at most, over both generations (each holds half).
pub(crate) const ENTRIES_MAX: usize = 4096;
/// Key bytes kept at most (the same).
const BYTES_MAX: usize = 1 << 20;
/// Keys longer than this (bytes) are not remembered: their probes are decided afresh.
pub(crate) const KEY_MAX: usize = 2048;

#[cfg(test)]
thread_local! {
    /// Every key hashes to 0 (on this test thread) while set.
    pub(crate) static COLLIDE: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// The hash a key is looked up by.
pub(crate) fn hash_key(key: &[u8]) -> u64 {
    #[cfg(test)]
    if COLLIDE.with(std::cell::Cell::get) {
        return 0;
    }
    let mut h = FxHasher::default();
    h.write(key);
    h.finish()
}

/// Entries by the hash of their key, each with its key's bytes (the equality check).
type ByHash<V> = FxHashMap<u64, (Box<[u8]>, V)>;

/// Entries kept in two generations, bounded in entries and key bytes.
#[derive(Debug)]
pub(crate) struct Generations<V> {
    /// The current generation.
    map: ByHash<V>,
    /// Bytes of the keys in `map`.
    bytes: usize,
    /// The previous generation: looked up on a miss in `map`, dropped at the next turn.
    old: ByHash<V>,
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
    pub(crate) fn clear(&mut self) {
        self.map.clear();
        self.old.clear();
        self.bytes = 0;
    }

    /// The entry of `key` (whose hash is `hash`), moved back to the current generation
    /// when found in the old. An entry with the same hash but other key bytes is not it.
    pub(crate) fn get(&mut self, hash: u64, key: &[u8]) -> Option<&V> {
        if !self.map.contains_key(&hash) {
            match self.old.get(&hash) {
                Some((k, _)) if **k == *key => {}
                _ => return None,
            }
            let (k, v) = self.old.remove(&hash)?;
            self.insert_owned(hash, k, v);
        }
        match self.map.get(&hash) {
            Some((k, v)) if **k == *key => Some(v),
            _ => None,
        }
    }

    /// Remembers `v` for `key` (whose hash is `hash`) in the current generation, turning
    /// generations first when it is full; an entry of another key with the same hash is
    /// replaced. A key longer than [`KEY_MAX`] is not remembered.
    pub(crate) fn insert(&mut self, hash: u64, key: &[u8], v: V) {
        if key.len() <= KEY_MAX {
            self.insert_owned(hash, key.into(), v);
        }
    }

    fn insert_owned(&mut self, hash: u64, key: Box<[u8]>, v: V) {
        if self.map.len() >= ENTRIES_MAX / 2 || self.bytes + key.len() > BYTES_MAX / 2 {
            self.old = std::mem::take(&mut self.map);
            self.map.reserve(self.old.len());
            self.bytes = 0;
        }
        self.bytes += key.len();
        if let Some((k, _)) = self.map.insert(hash, (key, v)) {
            self.bytes -= k.len();
        }
    }

    /// Entries over both generations.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.map.len() + self.old.len()
    }

    /// Entries and key bytes over both generations.
    #[cfg(test)]
    pub(crate) fn held(&self) -> (usize, usize) {
        let bytes = |m: &ByHash<V>| m.values().map(|(k, _)| k.len()).sum::<usize>();
        (self.len(), bytes(&self.map) + bytes(&self.old))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Keys whose hashes are equal are told apart by their bytes: each gets its own
    /// entry, in the current generation and in the old, and replacing one does not make
    /// the other's up.
    #[test]
    fn colliding_hashes_never_share_an_entry() {
        let mut g = Generations::<bool>::default();
        g.insert(1, b"a", true);
        assert_eq!(g.get(1, b"b"), None, "same hash, other bytes");
        assert_eq!(g.get(1, b"a"), Some(&true));
        g.insert(1, b"b", false);
        assert_eq!(g.get(1, b"a"), None, "replaced by the other key");
        assert_eq!(g.get(1, b"b"), Some(&false));
        assert_eq!(g.bytes, 1, "the replaced key's bytes are not counted");
        // Turn generations: the entry of hash 1 is now in the old one.
        for h in 2..(ENTRIES_MAX / 2 + 2) as u64 {
            g.insert(h, &h.to_le_bytes(), true);
        }
        assert!(!g.map.contains_key(&1) && g.old.contains_key(&1));
        assert_eq!(
            g.get(1, b"a"),
            None,
            "same hash in the old generation, other bytes"
        );
        assert!(
            g.old.contains_key(&1),
            "a mismatch leaves the old entry alone"
        );
        assert_eq!(g.get(1, b"b"), Some(&false), "found in the old, moved back");
        assert!(g.map.contains_key(&1) && !g.old.contains_key(&1));
    }

    /// A hot key asked for between many keys seen once survives every turn; the map
    /// stays bounded; a key longer than the bound is not remembered.
    #[test]
    fn hot_entries_survive_streams_of_fresh_keys() {
        let mut g = Generations::<u32>::default();
        g.insert(hash_key(b"hot"), b"hot", 7);
        for i in 0..(3 * ENTRIES_MAX) {
            let k = format!("cold-{i}");
            g.insert(hash_key(k.as_bytes()), k.as_bytes(), 0);
            assert_eq!(g.get(hash_key(b"hot"), b"hot"), Some(&7), "{i}");
            assert!(g.len() <= ENTRIES_MAX);
        }
        assert_eq!(g.get(hash_key(b"cold-0"), b"cold-0"), None);
        let long = vec![b'x'; KEY_MAX + 1];
        g.insert(hash_key(&long), &long, 1);
        assert_eq!(g.get(hash_key(&long), &long), None);
    }
}
