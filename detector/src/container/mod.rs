//! Container resolution: which container (if any) a process's cgroup belongs to.
//!
//! - [`parse`]: the pure function from a whole cgroup path to a [`ContainerRef`]
//!   (id + runtime): any component may name the container, the innermost wins; table-tested
//!   against real paths of every runtime we support.
//! - [`lookup`]: the [`RuntimeLookup`] hook through which runtime state recognises what
//!   the patterns cannot.
//! - [`enrich`]: optional names, images and Kubernetes pod facts from the runtimes' local
//!   state files (no network, missing state is not an error).
//! - [`resolver`]: a bounded cache keyed by cgroup id in front of all three (patterns
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

pub use enrich::{ContainerInfo, EnrichRoots};
pub use lookup::{NoRuntimeState, RuntimeLookup};
pub use parse::{ContainerRef, Runtime, from_components, from_path};
pub use resolver::{ContainerResolver, ResolverStats};
