//! detector: a runtime-detection daemon for Linux container hosts.
//!
//! The library is a pipeline, one module per stage (see ARCHITECTURE.md): `sensor` (kernel
//! to ring buffer), `event` (decoded records), `process` (process model) with `container`
//! (cgroup to container), `ecs` (typed documents), `rules` (compiled EQL), `alert` (alert
//! documents), `sink` (outputs). Each stage owns its state and knows nothing of the stages
//! after it.

pub mod alert;
pub mod cli;
pub mod config;
pub mod container;
pub mod daemon;
pub mod ecs;
pub mod event;
pub mod host;
pub mod process;
pub mod rules;
pub mod sensor;
pub mod sink;
/// Test support (shared material, the prerequisite gate): for this crate's tests only.
#[doc(hidden)]
pub mod testsupport;
