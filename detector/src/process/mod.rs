//! The process model: every live process, its ancestry, leaders and container.
//!
//! Kernel events ([`crate::event::ProcessEvent`]) go in through [`ProcessTable::apply`];
//! out comes a [`Snapshot`] with everything ECS `process.*`, `container.*` and
//! `orchestrator.*` need (see [`Snapshot`] for the field mapping). The table is seeded from
//! `/proc` at start ([`ProcessTable::seed_from_proc`]) and bounded ([`TableConfig`]).
//!
//! - [`table`]: fork/exec/exit, composing the parts below.
//! - `live`: the running processes, their last-seen order and cgroup counts, and the one
//!   identity-checked lookup (tgid + start time); `exited`: recently exited processes,
//!   for late events; `admit`: what leaves a full table (the eviction policy);
//!   `record`: one process as the table keeps it; `shared`: its output record, built once
//!   and shared by snapshots while the process does not change.
//! - [`entry`]: the entry-leader rules.
//! - [`entity`]: entity ids stable across restarts.
//! - [`procfs`]: `/proc` parsers; [`seed`]: seeding from them.
//! - [`users`]: uid/gid names from the host's or the container's files.
//! - [`model`]: the output records; [`env`]: which environment variables an exec keeps.

mod admit;
mod cred;
pub mod entity;
pub mod entry;
pub mod env;
mod exited;
mod leaders;
mod live;
pub mod model;
pub mod procfs;
mod record;
pub mod seed;
mod shared;
pub mod table;
pub mod users;
mod view;

pub use entity::IdContext;
pub use env::EnvNames;
pub use model::{Creds, EntryLeader, EntryType, ExecImage, Id, ProcInfo, ProcRef, Snapshot};
pub use seed::SeedReport;
pub use table::{CredIds, Lineage, ProcessTable, TableConfig, TableStats};

#[cfg(test)]
mod tests;
