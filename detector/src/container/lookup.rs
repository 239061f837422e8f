//! The hook through which the runtimes' own state recognises containers that cgroup names
//! cannot (a containerd namespace other than `default` and `k8s.io`, a docker
//! `--cgroup-parent`, anything a pattern leaves silent).
//!
//! The resolver ([`super::ContainerResolver`]) asks its [`RuntimeLookup`] only when the name
//! patterns ([`super::parse`]) find no container in a cgroup path, and caches the answer by
//! cgroup id like any other, so a lookup runs once per cgroup, not per event. It runs on the
//! event path: an implementation must answer from memory it keeps fresh elsewhere (never
//! block on a slow disk or a socket here), and must be cheap for the common host cgroup
//! that is in no container.

use super::parse::ContainerRef;
use super::state::{ContainerInfo, EnrichOutcome};

/// Knows containers from a runtime's state, by cgroup path.
pub trait RuntimeLookup: Send {
    /// The container whose cgroup holds `cgroup_path` (root-relative `/a/b/c`, or partial
    /// `b/c` when the kernel's walk stopped early — see `ProcessEvent::cgroup_path`), at any
    /// depth below it; `None` when no runtime knows one.
    fn lookup(&self, cgroup_path: &[u8]) -> Option<ContainerRef>;

    /// Fills the metadata of a container found either way, from the state this lookup keeps
    /// in memory (else from that container's own files). `None`: this lookup keeps no
    /// state, and the resolver reads the runtimes' files itself.
    fn enrich(&self, _info: &mut ContainerInfo) -> Option<EnrichOutcome> {
        None
    }

    /// Changes whenever the state this lookup answers from changed: a cached "no container"
    /// answer from an older generation is asked again (a container created with a custom
    /// cgroup parent is then found at the next scan, not never).
    fn generation(&self) -> u64 {
        0
    }
}

/// No runtime state: patterns alone decide (the default, and for tests).
#[derive(Clone, Copy, Debug, Default)]
pub struct NoRuntimeState;

impl RuntimeLookup for NoRuntimeState {
    fn lookup(&self, _cgroup_path: &[u8]) -> Option<ContainerRef> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_runtime_state_knows_nothing() {
        assert_eq!(NoRuntimeState.lookup(b"/default/web"), None);
        assert_eq!(NoRuntimeState.lookup(b""), None);
    }
}
