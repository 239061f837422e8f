//! Container resolution: which container (if any) a process's cgroup belongs to.
//!
//! - [`parse`]: the pure function from cgroup path components to a [`ContainerRef`]
//!   (id + runtime), table-tested against real paths of every runtime we support: the fast
//!   path.
//! - [`state`]: the runtimes' own local state (containerd tasks in every namespace, docker,
//!   podman, CRI-O, LXC, systemd-nspawn), indexed by cgroup path and id and kept fresh in
//!   the background: the truth where patterns are silent (`ctr run` in `/default/<name>`),
//!   and the source of names, images, the privileged flag and Kubernetes pods.
//! - [`lookup`]: the [`RuntimeLookup`] seam the resolver consults when patterns find nothing.
//! - [`enrich`]: the resolver's metadata entry points (now in [`state`]).
//! - [`resolver`]: a bounded cache keyed by cgroup id in front of both, which forgets a
//!   cgroup when told its last process is gone.

pub mod enrich;
pub mod lookup;
pub mod parse;
pub mod resolver;
pub mod state;

pub use enrich::{ContainerInfo, EnrichRoots};
pub use lookup::RuntimeLookup;
pub use parse::{ContainerRef, Runtime, from_components, from_leaf_parent, from_path};
pub use resolver::{ContainerResolver, ResolverStats};
pub use state::{RuntimeState, StateHandle, StateRoots, StateStats};
