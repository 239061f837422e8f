//! Container resolution: which container (if any) a process's cgroup belongs to.
//!
//! - [`parse`]: the pure function from a whole cgroup path to a [`ContainerRef`]
//!   (id + runtime): any component may name the container, the innermost wins; table-tested
//!   against real paths of every runtime we support. The fast path.
//! - [`state`]: the runtimes' own local state (containerd tasks in every namespace, docker,
//!   podman, CRI-O, LXC, systemd-nspawn), indexed by cgroup path and id and kept fresh in
//!   the background: the truth where patterns are silent (`ctr run` in `/default/<name>`),
//!   and the source of names, images, the privileged flag and Kubernetes pods.
//! - [`lookup`]: the [`RuntimeLookup`] hook through which runtime state recognises what
//!   the patterns cannot.
//! - [`enrich`]: the resolver's metadata entry points (now in [`state`]).
//! - [`resolver`]: a bounded cache keyed by cgroup id in front of all of them (patterns
//!   first, then the lookup, then enrichment), which forgets a cgroup when told its last
//!   process is gone.
//!
//! A process in a non-host pid or mount namespace (`unshare -pf --mount-proc`, a sandbox)
//! whose cgroup no pattern and no runtime knows is **not** in a container: it gets no
//! `container.*` fields, so rules on `container.id` do not fire on a plain `unshare`. Its
//! namespaces are still in its document (`process.vpid`, its pid in its own namespace, and
//! `detector.process.mnt_ns_ino`).

pub mod enrich;
pub mod lookup;
pub mod parse;
pub mod resolver;
pub mod state;

pub use enrich::{ContainerInfo, EnrichRoots};
pub use lookup::{NoRuntimeState, RuntimeLookup};
pub use parse::{ContainerRef, Runtime, from_components, from_path};
pub use resolver::{ContainerResolver, ResolverStats};
pub use state::{RuntimeState, StateHandle, StateRoots, StateStats};
