//! Container resolution: which container (if any) a process's cgroup belongs to.
//!
//! - [`parse`]: the pure function from cgroup path components to a [`ContainerRef`]
//!   (id + runtime), table-tested against real paths of every runtime we support.
//! - [`enrich`]: optional names, images and Kubernetes pod facts from the runtimes' local
//!   state files (no network, missing state is not an error).
//! - [`resolver`]: a bounded cache keyed by cgroup id in front of both, which forgets a
//!   cgroup when told its last process is gone.

pub mod enrich;
pub mod parse;
pub mod resolver;

pub use enrich::{ContainerInfo, EnrichRoots};
pub use parse::{ContainerRef, Runtime, from_components, from_leaf_parent, from_path};
pub use resolver::{ContainerResolver, ResolverStats};
