//! One process as the table keeps it ([`Rec`]), and a link to a leader ([`Link`]).
//!
//! A record is internal state, not output: the output records ([`super::model`]) are built
//! from it when a document is wanted (see `view`). It lives in the live set
//! ([`super::live::LiveSet`]) while the process runs, then briefly in the exited queue
//! ([`super::exited::ExitedQueue`]).

use std::sync::Arc;

use super::entity::IdContext;
use super::model::{EntryType, ExecImage, ProcInfo};
use crate::container::ContainerInfo;

/// A link to a leader: its identity, and what it looked like when last seen (used once it
/// has left the table).
#[derive(Clone, Debug)]
pub(super) struct Link {
    pub tgid: u32,
    pub start_ticks: u64,
    pub last: Arc<ProcInfo>,
}

/// One process. Its identity is `(tgid, start_ticks)`; everything else may change during
/// its life (an exec replaces the image, `setsid` the session, `setuid` the ids).
#[derive(Clone, Debug)]
pub(super) struct Rec {
    pub tgid: u32,
    pub start_ticks: u64,
    pub start_boot_ns: u64,
    /// `process.entity_id`, computed on first use (a SHA-256 per process otherwise, for
    /// the many processes that never reach a document): see [`Rec::entity_id`].
    pub entity_id: std::cell::OnceCell<Arc<str>>,
    /// The record's full [`ProcInfo`] as last built, shared by the snapshots built from it
    /// while it holds (see `shared`); never read without checking it against the record.
    pub info: super::shared::InfoCache,
    pub ppid: u32,
    pub pgid: u32,
    pub sid: u32,
    pub ns_pid: u32,
    pub pid_ns: u64,
    pub mnt_ns: u64,
    pub uid: u32,
    pub euid: u32,
    pub gid: u32,
    pub egid: u32,
    /// Capability sets, when the kernel (or `/proc`) said.
    pub caps: Option<crate::event::Caps>,
    pub tty: Option<(u32, u32)>,
    pub image: Arc<ExecImage>,
    pub cgroup_id: u64,
    pub container: Option<Arc<ContainerInfo>>,
    pub session: Option<Link>,
    pub entry: Option<(Link, EntryType)>,
    pub exit: Option<(i32, u64)>,
}

impl Rec {
    /// `process.entity_id` of this record (computed once, on first use).
    pub fn entity_id(&self, ids: &IdContext) -> Arc<str> {
        self.entity_id
            .get_or_init(|| ids.entity_id(self.tgid, self.start_ticks))
            .clone()
    }
}
