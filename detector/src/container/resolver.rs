//! A bounded cache from cgroup id to container, in front of parsing and enrichment.
//!
//! Why a cache: enrichment reads files, and every event of a container's processes asks for
//! the same cgroup. Why keyed by cgroup id: it is in every kernel event and unique for the
//! life of the boot (kernfs node ids are 64-bit and not reused).
//!
//! Forgetting: the process model counts live processes per cgroup id and calls
//! [`ContainerResolver::forget`] when the last one it knows of exits, so a removed container's
//! entry goes with it. As a backstop against cgroups whose processes we never saw end, the
//! cache is bounded ([`ContainerResolver::new`]'s `capacity`): when full, the entry inserted
//! first is evicted (FIFO). Both kinds of removal are counted.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use super::enrich::{self, ContainerInfo, EnrichRoots};
use super::parse;

/// Counters a caller reports with its periodic stats.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ResolverStats {
    pub hits: u64,
    pub misses: u64,
    /// Entries dropped because the cache was full.
    pub evictions: u64,
    /// Entries dropped because their cgroup's last process exited.
    pub forgotten: u64,
    /// Runtime state files found and used.
    pub enriched: u64,
    /// Runtime state files present but unparsable (skipped).
    pub enrich_malformed: u64,
    /// Entries currently cached (host cgroups included, as `None`).
    pub entries: u64,
}

struct Entry {
    value: Option<Arc<ContainerInfo>>,
    generation: u64,
}

/// Resolves cgroups to containers, caching by cgroup id.
pub struct ContainerResolver {
    cache: HashMap<u64, Entry>,
    /// Insertion order, `(cgroup id, generation)`; stale pairs are skipped lazily.
    order: VecDeque<(u64, u64)>,
    capacity: usize,
    generation: u64,
    roots: Option<EnrichRoots>,
    stats: ResolverStats,
}

/// Default bound on cached cgroups.
pub const DEFAULT_CAPACITY: usize = 8192;

impl ContainerResolver {
    /// `roots: None` disables enrichment (ids and runtimes only).
    pub fn new(capacity: usize, roots: Option<EnrichRoots>) -> Self {
        ContainerResolver {
            cache: HashMap::new(),
            order: VecDeque::new(),
            capacity: capacity.max(1),
            generation: 0,
            roots,
            stats: ResolverStats::default(),
        }
    }

    /// Resolve from the kernel's parent and leaf cgroup names.
    pub fn resolve_names(
        &mut self,
        cgroup_id: u64,
        parent: &[u8],
        leaf: &[u8],
    ) -> Option<Arc<ContainerInfo>> {
        self.resolve_with(cgroup_id, || parse::from_leaf_parent(parent, leaf))
    }

    /// Resolve from a whole cgroup path (from `/proc/<pid>/cgroup`).
    pub fn resolve_path(&mut self, cgroup_id: u64, path: &[u8]) -> Option<Arc<ContainerInfo>> {
        self.resolve_with(cgroup_id, || parse::from_path(path))
    }

    fn resolve_with(
        &mut self,
        cgroup_id: u64,
        parse: impl FnOnce() -> Option<parse::ContainerRef>,
    ) -> Option<Arc<ContainerInfo>> {
        if let Some(e) = self.cache.get(&cgroup_id) {
            self.stats.hits += 1;
            return e.value.clone();
        }
        self.stats.misses += 1;
        let value = parse().map(|r| {
            let mut info = ContainerInfo::bare(r);
            if let Some(roots) = &self.roots {
                let out = enrich::enrich(roots, &mut info);
                self.stats.enriched += out.found as u64;
                self.stats.enrich_malformed += out.malformed as u64;
            }
            Arc::new(info)
        });
        // Id 0 means "unknown" (a seeded process whose cgroup we could not stat): not cached.
        if cgroup_id != 0 {
            self.insert(cgroup_id, value.clone());
        }
        value
    }

    fn insert(&mut self, id: u64, value: Option<Arc<ContainerInfo>>) {
        while self.cache.len() >= self.capacity {
            let Some((old, generation)) = self.order.pop_front() else {
                break;
            };
            if self
                .cache
                .get(&old)
                .is_some_and(|e| e.generation == generation)
            {
                self.cache.remove(&old);
                self.stats.evictions += 1;
            }
        }
        self.generation += 1;
        self.cache.insert(
            id,
            Entry {
                value,
                generation: self.generation,
            },
        );
        self.order.push_back((id, self.generation));
        // Keep the lazy queue from growing without bound when many entries are forgotten.
        if self.order.len() > 2 * self.capacity + 16 {
            let cache = &self.cache;
            self.order
                .retain(|(id, g)| cache.get(id).is_some_and(|e| e.generation == *g));
        }
    }

    /// The cgroup's last known process is gone: drop its entry.
    pub fn forget(&mut self, cgroup_id: u64) {
        if self.cache.remove(&cgroup_id).is_some() {
            self.stats.forgotten += 1;
        }
    }

    /// Counters and current size.
    pub fn stats(&self) -> ResolverStats {
        ResolverStats {
            entries: self.cache.len() as u64,
            ..self.stats
        }
    }

    /// Queue length, for leak tests.
    #[doc(hidden)]
    pub fn queue_len(&self) -> usize {
        self.order.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u64) -> String {
        format!("{n:064x}")
    }

    #[test]
    fn hits_misses_and_host() {
        let mut r = ContainerResolver::new(16, None);
        let leaf = format!("docker-{}.scope", id(7));
        let c = r
            .resolve_names(100, b"system.slice", leaf.as_bytes())
            .unwrap();
        assert_eq!(c.reference.id, id(7));
        assert_eq!(c.reference.runtime.as_str(), "docker");
        // Cached by id: even different names give the cached answer.
        assert!(Arc::ptr_eq(&c, &r.resolve_names(100, b"", b"").unwrap()));
        assert!(r.resolve_names(1, b"", b"").is_none());
        assert!(r.resolve_names(1, b"", b"").is_none());
        let s = r.stats();
        assert_eq!((s.hits, s.misses, s.entries), (2, 2, 2));
        // Id 0 is never cached.
        r.resolve_names(0, b"", b"");
        r.resolve_names(0, b"", b"");
        assert_eq!(r.stats().misses, 4);
    }

    #[test]
    fn bounded_and_forgets() {
        let mut r = ContainerResolver::new(100, None);
        for n in 0..10_000u64 {
            let path = format!("/docker/{}", id(n));
            r.resolve_path(n + 10, path.as_bytes());
            if n % 2 == 0 {
                r.forget(n + 10);
            }
            assert!(r.stats().entries <= 100);
            assert!(r.queue_len() <= 2 * 100 + 17);
        }
        let s = r.stats();
        assert_eq!(s.forgotten, 5_000);
        assert_eq!(s.entries, 100);
        assert_eq!(s.evictions, 5_000 - 100);
        // The newest survive.
        let last = format!("/docker/{}", id(9_999));
        let before = r.stats().hits;
        r.resolve_path(9_999 + 10, last.as_bytes());
        assert_eq!(r.stats().hits, before + 1);
        r.forget(123_456_789);
        assert_eq!(r.stats().forgotten, 5_000);
    }
}
