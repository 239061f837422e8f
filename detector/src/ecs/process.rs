//! `process.*` and its related processes (`parent`, the three leaders, `previous`).
//!
//! ECS gives each position a slightly different field set, mirrored here exactly: the
//! fields all positions share are [`ProcessCore`] (flattened into each), and each position
//! adds its own (`parent.end`, leaders' `same_as_process`, `entry_leader.entry_meta`, …).
//! The process model fills a `ProcessCore` once per process and reuses it for every position.

use super::IdName;
use super::doc::ecs_object;

impl ProcessCore {
    /// This process as a `{entity_id, pid, vpid, start}` reference
    /// (`process.parent.group_leader`, a leader's `parent`, …).
    pub fn to_ref(&self) -> ProcessRef {
        ProcessRef {
            entity_id: self.entity_id.clone(),
            pid: self.pid,
            vpid: self.vpid,
            start: self.start.clone(),
        }
    }
}

impl Tty {
    /// The controlling terminal's device numbers.
    pub fn char_device(major: u32, minor: u32) -> Self {
        Tty {
            char_device: Some(CharDevice {
                major: Some(major),
                minor: Some(minor),
            }),
        }
    }
}

impl LeaderParent {
    /// A leader's parent, with that parent's session leader when known.
    pub fn new(parent: &ProcessCore, session_leader: Option<&ProcessCore>) -> Self {
        let r = parent.to_ref();
        LeaderParent {
            entity_id: r.entity_id,
            pid: r.pid,
            vpid: r.vpid,
            start: r.start,
            session_leader: session_leader.map(ProcessCore::to_ref),
        }
    }
}

ecs_object! {
    /// Fields every process position of ECS has.
    pub struct ProcessCore {
        pub pid: Option<u32>,
        /// The pid as seen inside the process's own pid namespace.
        pub vpid: Option<u32>,
        pub entity_id: Option<String>,
        pub name: Option<String>,
        pub executable: Option<String>,
        pub args: Vec<String>,
        pub args_count: Option<u64>,
        pub command_line: Option<String>,
        /// Process start (RFC 3339).
        pub start: Option<String>,
        pub working_directory: Option<String>,
        pub interactive: Option<bool>,
        pub tty: Option<Tty>,
        /// Effective user and group.
        pub user: Option<IdName>,
        pub group: Option<IdName>,
        pub real_user: Option<IdName>,
        pub real_group: Option<IdName>,
        pub saved_user: Option<IdName>,
        pub saved_group: Option<IdName>,
    }
}

ecs_object! {
    /// `process.tty` (an object in ECS).
    pub struct Tty {
        pub char_device: Option<CharDevice>,
    }
}

ecs_object! {
    /// `process.tty.char_device`.
    pub struct CharDevice {
        pub major: Option<u32>,
        pub minor: Option<u32>,
    }
}

ecs_object! {
    /// `process.thread.*` and `process.parent.thread.*`: the kernel's `comm` (the name of
    /// the thread that exec'd, at most 15 bytes) and the capability sets.
    pub struct Thread {
        pub name: Option<String>,
        pub capabilities: Option<Capabilities>,
    }
}

ecs_object! {
    /// `*.thread.capabilities`: capability names (`CAP_SYS_ADMIN`, …), as Elastic Defend
    /// writes them.
    pub struct Capabilities {
        pub effective: Vec<String>,
        pub permitted: Vec<String>,
    }
}

ecs_object! {
    /// `process.*`: the event's subject.
    pub struct Process {
        #[serde(flatten)]
        pub core: ProcessCore,
        pub thread: Option<Thread>,
        /// The configured environment variables, `NAME=value` (`sensor.capture_env_vars`).
        pub env_vars: Vec<String>,
        /// `end` events: when it ended, and its exit code.
        pub end: Option<String>,
        pub exit_code: Option<i32>,
        pub parent: Option<Parent>,
        pub group_leader: Option<GroupLeader>,
        pub session_leader: Option<SessionLeader>,
        pub entry_leader: Option<EntryLeader>,
        /// `exec` events: the image the exec replaced.
        pub previous: Option<Previous>,
    }
}

ecs_object! {
    /// `process.parent.*`.
    pub struct Parent {
        #[serde(flatten)]
        pub core: ProcessCore,
        pub thread: Option<Thread>,
        pub end: Option<String>,
        pub exit_code: Option<i32>,
        pub group_leader: Option<ProcessRef>,
    }
}

ecs_object! {
    /// `process.group_leader.*`.
    pub struct GroupLeader {
        #[serde(flatten)]
        pub core: ProcessCore,
        /// The leader is the event's subject itself.
        pub same_as_process: Option<bool>,
    }
}

ecs_object! {
    /// `process.session_leader.*`.
    pub struct SessionLeader {
        #[serde(flatten)]
        pub core: ProcessCore,
        pub same_as_process: Option<bool>,
        pub parent: Option<LeaderParent>,
    }
}

ecs_object! {
    /// `process.entry_leader.*`: the first process of the session's entry (a container's
    /// init, sshd's child, a terminal's login shell, …).
    pub struct EntryLeader {
        #[serde(flatten)]
        pub core: ProcessCore,
        pub same_as_process: Option<bool>,
        pub parent: Option<LeaderParent>,
        pub entry_meta: Option<EntryMeta>,
    }
}

ecs_object! {
    /// A reference to a process by identity only (`process.parent.group_leader`, …).
    pub struct ProcessRef {
        pub entity_id: Option<String>,
        pub pid: Option<u32>,
        pub vpid: Option<u32>,
        pub start: Option<String>,
    }
}

ecs_object! {
    /// `process.{session,entry}_leader.parent`.
    pub struct LeaderParent {
        pub entity_id: Option<String>,
        pub pid: Option<u32>,
        pub vpid: Option<u32>,
        pub start: Option<String>,
        pub session_leader: Option<ProcessRef>,
    }
}

ecs_object! {
    /// `process.entry_leader.entry_meta`.
    pub struct EntryMeta {
        /// `init`, `sshd`, `ssm`, `kthread`, `terminal`, `console`, `container`, `unknown`, ….
        pub r#type: Option<String>,
        pub source: Option<EntryMetaSource>,
    }
}

ecs_object! {
    /// `process.entry_leader.entry_meta.source`.
    pub struct EntryMetaSource {
        /// Remote address of an sshd session (`ip`).
        pub ip: Option<String>,
    }
}

ecs_object! {
    /// `process.previous`: the image an exec replaced.
    pub struct Previous {
        pub executable: Option<String>,
        pub args: Vec<String>,
        pub args_count: Option<u64>,
    }
}
