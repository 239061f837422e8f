//! The seam between cgroup-pattern resolution and the runtimes' own state.

use super::parse::ContainerRef;

/// Runtime-state truth consulted when cgroup name patterns find no container.
pub trait RuntimeLookup: Send {
    fn lookup(&mut self, cgroup_path: &[u8]) -> Option<ContainerRef>;
}
