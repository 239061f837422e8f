//! Owned, typed process events decoded from the kernel's ring-buffer records.
//!
//! This is the contract between the sensor (which fills it) and the process model (which
//! consumes it). Byte strings stay bytes here: argv, paths and cgroup names from containers
//! may hold any bytes, and only the ECS stage decides how to render them.

/// What happened to the process.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EventKind {
    /// A new process (not a thread) was created; the event describes the child.
    Fork,
    /// A process replaced its image; the event describes the process after exec.
    Exec,
    /// The whole thread group ended; the event carries the exit code.
    Exit,
    /// A `set*uid` call changed the real or effective uid (`event.action: uid_change`);
    /// the event carries the ids after the change.
    #[serde(rename = "uid_change")]
    UidChange,
    /// A `set*gid` call changed the real or effective gid (`gid_change`).
    #[serde(rename = "gid_change")]
    GidChange,
    /// `setsid` made the process lead a new session (`session_id_change`).
    #[serde(rename = "session_id_change")]
    SessionIdChange,
}

impl EventKind {
    /// Every kind, in the order of the per-kind counters (stats, metrics).
    pub const ALL: [EventKind; 6] = [
        EventKind::Fork,
        EventKind::Exec,
        EventKind::Exit,
        EventKind::UidChange,
        EventKind::GidChange,
        EventKind::SessionIdChange,
    ];

    /// Position in [`EventKind::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }

    /// The name used in stats, metrics labels and `trace` (ECS `event.action` for the
    /// credential kinds).
    pub fn name(self) -> &'static str {
        match self {
            EventKind::Fork => "fork",
            EventKind::Exec => "exec",
            EventKind::Exit => "exit",
            EventKind::UidChange => "uid_change",
            EventKind::GidChange => "gid_change",
            EventKind::SessionIdChange => "session_id_change",
        }
    }

    /// A credential change (uid, gid or session), reported by the credential programs.
    pub fn is_cred_change(self) -> bool {
        matches!(
            self,
            EventKind::UidChange | EventKind::GidChange | EventKind::SessionIdChange
        )
    }
}

/// One process event, as the kernel saw it.
///
/// For `Fork` the subject (`pid`, `tgid`, cgroup, start time, namespaces) is the *child*,
/// and `ppid` is the forking process; for `Exec` and `Exit` it is the current process.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProcessEvent {
    pub kind: Option<EventKind>,
    /// `bpf_ktime_get_boot_ns()` when the event fired (CLOCK_BOOTTIME, ns).
    pub boot_ns: u64,
    /// Subject's thread id and thread-group id (the "pid" users know is `tgid`).
    pub pid: u32,
    pub tgid: u32,
    /// `real_parent->tgid` of the subject.
    pub ppid: u32,
    /// The thread that caused the event (for fork: the parent thread).
    pub actor_pid: u32,
    pub uid: u32,
    pub gid: u32,
    pub euid: u32,
    pub egid: u32,
    /// `task->comm`, without the trailing NULs.
    pub comm: Vec<u8>,
    /// Exec only: the filename passed to execve (as the caller wrote it).
    pub filename: Vec<u8>,
    /// The executable's real path (d_path of `mm->exe_file`), as seen in the task's mount
    /// namespace. Empty when unknown.
    pub exe_path: Vec<u8>,
    /// The path walk stopped early (too deep / too long): `exe_path` is a suffix.
    pub exe_path_partial: bool,
    /// Exec only: argv as captured (bounded).
    pub argv: Vec<Vec<u8>>,
    /// The argv capture hit its bound: more arguments or bytes existed.
    pub argv_truncated: bool,
    /// cgroup v2 id (the inode number of the cgroup directory).
    pub cgroup_id: u64,
    /// The subject's whole cgroup v2 path, read in the kernel at the event: root-relative
    /// (`/a/b/c`; `/` for the root cgroup), whatever the subject's cgroup namespace. When
    /// `cgroup_path_partial`, only the components nearest the leaf, without the leading
    /// slash (`b/c`). Empty when the kernel had no cgroup for the subject.
    pub cgroup_path: Vec<u8>,
    /// The kernel's walk stopped before the root (too deep, too long, a failed read).
    pub cgroup_path_partial: bool,
    /// Inode numbers of the subject's pid and mount namespaces.
    pub pid_ns_ino: u32,
    pub mnt_ns_ino: u32,
    /// The subject's tgid as seen inside its own pid namespace.
    pub ns_pid: u32,
    /// The subject has a controlling terminal; `tty_major`/`tty_minor` name it.
    pub tty: Option<(u32, u32)>,
    /// Session id (global pid of the session leader).
    pub sid: u32,
    /// Process group id (global pid of the group leader) at the event; 0 when the kernel
    /// could not read it (the process model then reads it from `/proc`).
    pub pgid: u32,
    /// `task->start_boottime` of the subject's thread-group leader (ns since boot).
    pub start_boot_ns: u64,
    /// Exit only: the `wait(2)` status code (exit code, or 128 + signal like a shell).
    pub exit_code: Option<i32>,
    /// Exec only: the working directory (the walk of `fs->pwd`, encoded like `exe_path`).
    /// Empty when not captured (`sensor.cwd_capture = false`, fork and exit records).
    pub cwd: Vec<u8>,
    /// The working-directory walk stopped early: `cwd` is a suffix.
    pub cwd_partial: bool,
    /// Exec only: the first bytes of the environment block (NUL-separated `NAME=value`),
    /// captured while `sensor.capture_env_vars` is not empty; the process model keeps only
    /// the listed variables.
    pub env: Vec<u8>,
    /// The environment capture hit its bound: later variables are missing.
    pub env_truncated: bool,
    /// The effective and permitted capability sets (bit n = capability n), when captured.
    pub caps: Option<Caps>,
}

/// A process's capability sets, as the kernel keeps them (`kernel_cap_t`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Caps {
    pub effective: u64,
    pub permitted: u64,
}

mod decode;

pub use decode::{DecodeError, Decoder, decode, decode_into, wait_status_to_exit_code};
