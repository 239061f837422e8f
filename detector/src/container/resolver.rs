//! A bounded cache from cgroup id to container, in front of parsing, the runtime-state
//! lookup and enrichment.
//!
//! Why a cache: enrichment reads files, parsing a whole path costs a split and a walk,
//! and every event of a container's processes asks for the same cgroup. Why keyed by cgroup
//! id: it is in every kernel event and unique for the life of the boot (kernfs node ids are
//! 64-bit and not reused), so one id always names one path. A hit costs one hash lookup
//! whatever the path's depth (measured by `benches/containers.rs`).
//!
//! Resolution order on a miss: the name patterns ([`parse::from_path`]), then, when they
//! find nothing, the [`RuntimeLookup`]; the answer (a container or none) is cached.
//!
//! Forgetting: the process model counts live processes per cgroup id and calls
//! [`ContainerResolver::forget`] when the last one it knows of exits, so a removed container's
//! entry goes with it. As a backstop against cgroups whose processes we never saw end, the
//! cache is bounded ([`ContainerResolver::new`]'s `capacity`): when full, the entry inserted
//! first is evicted (FIFO). Both kinds of removal are counted.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use super::enrich::{self, ContainerInfo, EnrichRoots};
use super::lookup::{NoRuntimeState, RuntimeLookup};
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
    /// Misses the patterns left silent that the runtime-state lookup recognised.
    pub runtime_lookups_found: u64,
    /// Cached "no container" answers asked again because the runtime state changed since.
    pub requeried: u64,
}

struct Entry {
    value: Option<Arc<ContainerInfo>>,
    generation: u64,
    /// The runtime lookup's generation when a "no container" answer was cached.
    lookup_generation: u64,
}

/// Resolves cgroups to containers, caching by cgroup id.
pub struct ContainerResolver {
    cache: HashMap<u64, Entry>,
    /// Insertion order, `(cgroup id, generation)`; stale pairs are skipped lazily.
    order: VecDeque<(u64, u64)>,
    capacity: usize,
    generation: u64,
    roots: Option<EnrichRoots>,
    lookup: Box<dyn RuntimeLookup>,
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
            lookup: Box::new(NoRuntimeState),
            stats: ResolverStats::default(),
        }
    }

    /// Consult `lookup` for cgroups the name patterns say nothing about (replaces the
    /// no-op default). Entries already cached keep their answer.
    pub fn set_runtime_lookup(&mut self, lookup: Box<dyn RuntimeLookup>) {
        self.lookup = lookup;
    }

    /// The container of cgroup `cgroup_id`, whose whole path is `path` (root-relative, as
    /// the kernel sends it with every event or `/proc/<pid>/cgroup` gives it; or partial,
    /// see [`parse::from_path`]). Cached by id: `path` is looked at on a miss only.
    /// [`ContainerResolver::resolve`], under the name seeding callers use.
    pub fn resolve_path(&mut self, cgroup_id: u64, path: &[u8]) -> Option<Arc<ContainerInfo>> {
        self.resolve(cgroup_id, path)
    }

    pub fn resolve(&mut self, cgroup_id: u64, path: &[u8]) -> Option<Arc<ContainerInfo>> {
        if let Some(e) = self.cache.get(&cgroup_id) {
            // A "no container" answer holds while the runtime state it was read from does:
            // a container whose state appeared later (a custom cgroup parent the first
            // probe could not find) is found after the next scan.
            if e.value.is_some() || e.lookup_generation == self.lookup.generation() {
                self.stats.hits += 1;
                return e.value.clone();
            }
            self.stats.requeried += 1;
        }
        self.stats.misses += 1;
        let found = parse::from_path(path).or_else(|| {
            let r = self.lookup.lookup(path);
            self.stats.runtime_lookups_found += r.is_some() as u64;
            r
        });
        let value = found.map(|r| {
            let mut info = ContainerInfo::bare(r);
            if let Some(roots) = &self.roots {
                let out = match self.lookup.enrich(&mut info) {
                    Some(out) => out,
                    None => enrich::enrich(roots, &mut info),
                };
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
        while self.cache.len() >= self.capacity && !self.cache.contains_key(&id) {
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
        let lookup_generation = self.lookup.generation();
        self.cache.insert(
            id,
            Entry {
                value,
                generation: self.generation,
                lookup_generation,
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
    use crate::container::{ContainerRef, Runtime};

    fn id(n: u64) -> String {
        format!("{n:064x}")
    }

    #[test]
    fn hits_misses_and_host() {
        let mut r = ContainerResolver::new(16, None);
        let path = format!("/system.slice/docker-{}.scope", id(7));
        let c = r.resolve(100, path.as_bytes()).unwrap();
        assert_eq!(c.reference.id, id(7));
        assert_eq!(c.reference.runtime.as_str(), "docker");
        // Cached by id: even another path gives the cached answer.
        assert!(Arc::ptr_eq(&c, &r.resolve(100, b"/").unwrap()));
        assert!(r.resolve(1, b"/").is_none());
        assert!(r.resolve(1, b"/").is_none());
        let s = r.stats();
        assert_eq!((s.hits, s.misses, s.entries), (2, 2, 2));
        // Id 0 is never cached.
        r.resolve(0, b"");
        r.resolve(0, b"");
        assert_eq!(r.stats().misses, 4);
    }

    /// A process deep below its container's cgroup resolves to the container.
    #[test]
    fn deep_paths_resolve() {
        let mut r = ContainerResolver::new(16, None);
        let path = format!("/docker/{}/a/b/c", id(9));
        assert_eq!(r.resolve(5, path.as_bytes()).unwrap().reference.id, id(9));
    }

    /// Knows `/tenant-a/<name>` (a containerd namespace no pattern names), counting calls.
    struct Tenant(std::sync::Arc<std::sync::atomic::AtomicU64>);

    impl RuntimeLookup for Tenant {
        fn lookup(&self, path: &[u8]) -> Option<ContainerRef> {
            self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let name = path.strip_prefix(b"/tenant-a/")?;
            Some(ContainerRef {
                id: String::from_utf8_lossy(name).into_owned(),
                runtime: Runtime::Containerd,
                pod_uid: None,
            })
        }
    }

    #[test]
    fn runtime_lookup_only_where_patterns_are_silent_and_cached() {
        let calls = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let mut r = ContainerResolver::new(16, None);
        r.set_runtime_lookup(Box::new(Tenant(calls.clone())));
        let c = r.resolve(10, b"/tenant-a/web").unwrap();
        assert_eq!(c.reference.id, "web");
        assert!(r.resolve(10, b"/tenant-a/web").is_some());
        assert_eq!(calls.load(std::sync::atomic::Ordering::Relaxed), 1);
        // Patterns first: the lookup is not asked about a path they recognise.
        let docker = format!("/docker/{}", id(3));
        assert_eq!(
            r.resolve(11, docker.as_bytes()).unwrap().reference.id,
            id(3)
        );
        assert_eq!(calls.load(std::sync::atomic::Ordering::Relaxed), 1);
        // A host cgroup: asked once, cached as none.
        assert!(r.resolve(12, b"/system.slice/cron.service").is_none());
        assert!(r.resolve(12, b"/system.slice/cron.service").is_none());
        assert_eq!(calls.load(std::sync::atomic::Ordering::Relaxed), 2);
        assert_eq!(r.stats().runtime_lookups_found, 1);
    }

    /// Knows `/late/<name>` once its state generation has moved past 0 (a container whose
    /// state appeared after its cgroup's first event).
    struct Late(std::sync::Arc<std::sync::atomic::AtomicU64>);

    impl RuntimeLookup for Late {
        fn lookup(&self, path: &[u8]) -> Option<ContainerRef> {
            if self.generation() == 0 {
                return None;
            }
            let name = path.strip_prefix(b"/late/")?;
            Some(ContainerRef {
                id: String::from_utf8_lossy(name).into_owned(),
                runtime: Runtime::Containerd,
                pod_uid: None,
            })
        }

        fn generation(&self) -> u64 {
            self.0.load(std::sync::atomic::Ordering::Relaxed)
        }
    }

    #[test]
    fn a_cached_miss_is_asked_again_when_the_runtime_state_changed() {
        let generation = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let mut r = ContainerResolver::new(16, None);
        r.set_runtime_lookup(Box::new(Late(generation.clone())));
        assert!(r.resolve(7, b"/late/web").is_none());
        assert!(
            r.resolve(7, b"/late/web").is_none(),
            "cached while unchanged"
        );
        assert_eq!(r.stats().requeried, 0);
        generation.store(1, std::sync::atomic::Ordering::Relaxed);
        assert_eq!(r.resolve(7, b"/late/web").unwrap().reference.id, "web");
        assert_eq!(r.stats().requeried, 1);
        // Found answers are not asked again, and the entry was replaced, not duplicated.
        generation.store(2, std::sync::atomic::Ordering::Relaxed);
        assert!(r.resolve(7, b"/late/web").is_some());
        assert_eq!((r.stats().requeried, r.stats().entries), (1, 1));
    }

    #[test]
    fn bounded_and_forgets() {
        let mut r = ContainerResolver::new(100, None);
        for n in 0..10_000u64 {
            let path = format!("/docker/{}", id(n));
            r.resolve(n + 10, path.as_bytes());
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
        r.resolve(9_999 + 10, last.as_bytes());
        assert_eq!(r.stats().hits, before + 1);
        r.forget(123_456_789);
        assert_eq!(r.stats().forgotten, 5_000);
    }
}
