//! The process model's output: owned records with everything ECS `process.*` needs.
//!
//! Byte strings stay bytes (argv, paths and names may be any bytes); the ECS stage renders
//! them. Shared parts (`ExecImage`, `ContainerInfo`, names) are `Arc`s, so a snapshot costs a
//! few reference-count increments, not copies of argv.

use std::sync::Arc;

use crate::container::ContainerInfo;
use crate::event::EventKind;

/// What a process runs: the image an exec installs (and a fork copies), with what the
/// exec saw of its surroundings (working directory, environment).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExecImage {
    /// `process.name`: the full name of the executable, as Elastic Defend reports it (the
    /// basename of `executable`: `update-ca-certificates`, not the kernel's 15-byte
    /// `comm`); the `comm` when the executable is unknown.
    pub name: Vec<u8>,
    /// `process.thread.name`: the kernel's `comm` (at most 15 bytes) at the exec.
    pub comm: Vec<u8>,
    /// `process.executable`: the real path of the executable (empty when unknown, e.g.
    /// kernel threads).
    pub executable: Vec<u8>,
    /// `process.args`.
    pub args: Vec<Vec<u8>>,
    /// The args were cut at the capture bound: `args_count` is a lower bound.
    pub args_truncated: bool,
    /// `process.working_directory` at the exec (empty when not captured).
    pub working_directory: Vec<u8>,
    /// The working-directory walk stopped early: a path suffix.
    pub working_directory_partial: bool,
    /// `process.env_vars`: the configured variables the exec's environment held, as
    /// `NAME=value`, in environment order.
    pub env_vars: Vec<Vec<u8>>,
    /// The environment capture hit its bound: listed variables may be missing.
    pub env_truncated: bool,
}

/// `process.name` from an executable path: its basename, or `comm` when the path is
/// unknown (kernel threads, unreadable `/proc/<pid>/exe`).
pub fn name_of(executable: &[u8], comm: &[u8]) -> Vec<u8> {
    match executable.rsplit(|&b| b == b'/').next() {
        Some(base) if !base.is_empty() => base.to_vec(),
        _ => comm.to_vec(),
    }
}

impl ExecImage {
    /// The image an exec event installs (see [`choose_executable`]), keeping the
    /// environment variables named in `env_names`.
    pub fn from_exec(ev: &crate::event::ProcessEvent, env_names: &super::EnvNames) -> Self {
        let executable = choose_executable(&ev.comm, &ev.filename, &ev.exe_path, &ev.argv);
        let mut env_vars = Vec::new();
        env_names.filter(&ev.env, &mut env_vars);
        ExecImage {
            name: name_of(&executable, &ev.comm),
            comm: ev.comm.clone(),
            executable,
            args: ev.argv.clone(),
            args_truncated: ev.argv_truncated,
            working_directory: ev.cwd.clone(),
            working_directory_partial: ev.cwd_partial,
            env_vars,
            env_truncated: ev.env_truncated,
        }
    }

    /// `process.args_count`.
    pub fn args_count(&self) -> usize {
        self.args.len()
    }

    /// `process.command_line`: the args joined by single spaces, as Elastic renders it.
    pub fn command_line(&self) -> Vec<u8> {
        self.args.join(&b' ')
    }

    /// Basename of the executable (or the comm when the path is unknown).
    pub fn exe_basename(&self) -> &[u8] {
        if self.executable.is_empty() {
            return if self.comm.is_empty() {
                &self.name
            } else {
                &self.comm
            };
        }
        let e = &self.executable;
        e.rsplit(|&b| b == b'/').next().unwrap_or(e)
    }
}

/// `process.executable` for an exec: the real path of the executable the kernel mapped
/// (`exe_path`), except for `#!` scripts. For a script the kernel maps the interpreter
/// (`/usr/bin/dash`) and rewrites argv to `[interpreter, script path, args…]`; then the
/// script's path (the execve filename) is the executable, as Elastic reports it, when it is
/// absolute. A symlinked binary (`python3` → `python3.11`) keeps its real path. Falls back to
/// the filename when the real path is unknown.
pub fn choose_executable(
    comm: &[u8],
    filename: &[u8],
    exe_path: &[u8],
    argv: &[Vec<u8>],
) -> Vec<u8> {
    if exe_path.is_empty() {
        return filename.to_vec();
    }
    // Borrowed, not copied: this runs for every exec.
    fn base(p: &[u8]) -> &[u8] {
        let b = p.rsplit(|&c| c == b'/').next().unwrap_or(p);
        &b[..b.len().min(15)]
    }
    // `#!/usr/bin/env python3` puts one interpreter argument before the script path.
    let is_script = base(exe_path) != comm && argv.iter().skip(1).take(2).any(|a| a == filename);
    if is_script && filename.starts_with(b"/") {
        filename.to_vec()
    } else {
        exe_path.to_vec()
    }
}

/// For a process read from `/proc` (no execve filename): the script path in its argv, if
/// it runs a `#!` script whose name is its `comm`.
pub fn script_path_in_args(comm: &[u8], argv: &[Vec<u8>]) -> Option<Vec<u8>> {
    argv.iter()
        .skip(1)
        .take(2)
        .find(|a| {
            let b = a.rsplit(|&c| c == b'/').next().unwrap_or(a);
            a.starts_with(b"/") && !comm.is_empty() && b[..b.len().min(15)] == *comm
        })
        .cloned()
}

/// A reference to a process by its ECS identity: enough for `*.parent.*`/nested leader
/// fields (`entity_id`, `pid`, `vpid`, `start`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProcRef {
    pub entity_id: Arc<str>,
    pub pid: u32,
    pub vpid: u32,
    /// ns since boot (CLOCK_BOOTTIME); `HostInfo::boot_to_unix_ns` makes it a date.
    pub start_boot_ns: u64,
}

/// User or group ids with names resolved where the passwd/group file knew them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Id {
    pub id: u32,
    pub name: Option<Arc<str>>,
}

/// Credentials: ECS `user` is the effective id, `real_user` the real one.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Creds {
    /// `process.thread.capabilities.{effective,permitted}`, when known.
    pub caps: Option<crate::event::Caps>,
    /// `process.user.*` (effective uid).
    pub user: Id,
    /// `process.real_user.*`.
    pub real_user: Id,
    /// `process.group.*` (effective gid).
    pub group: Id,
    /// `process.real_group.*`.
    pub real_group: Id,
}

/// One process at one level of a document (`process`, `process.parent`, a leader).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProcInfo {
    /// `*.entity_id`: stable across daemon restarts (see `entity`).
    pub entity_id: Arc<str>,
    /// `*.pid`: the tgid in the host's pid namespace.
    pub pid: u32,
    /// `*.vpid`: the pid in the process's own pid namespace.
    pub vpid: u32,
    /// Host pid of the parent (`real_parent`), 0 when unknown.
    pub ppid: u32,
    /// Process group and session ids (host pids).
    pub pgid: u32,
    pub sid: u32,
    /// `*.name`, `*.executable`, `*.args`, `*.args_count`, `*.command_line`.
    pub image: Arc<ExecImage>,
    /// `*.start` (ns since boot).
    pub start_boot_ns: u64,
    /// `*.end` (ns since boot): set on the exit event.
    pub end_boot_ns: Option<u64>,
    /// `*.exit_code`: set on the exit event.
    pub exit_code: Option<i32>,
    /// `*.interactive`: the process has a controlling terminal.
    pub interactive: bool,
    /// `*.tty.char_device.{major,minor}`.
    pub tty: Option<(u32, u32)>,
    pub creds: Creds,
    /// Namespaces (not ECS; custom fields if wanted).
    pub pid_ns_ino: u64,
    pub mnt_ns_ino: u64,
    pub cgroup_id: u64,
    /// `*.parent.{entity_id,pid,vpid,start}` for nested leader fields.
    pub parent: Option<ProcRef>,
}

impl ProcInfo {
    /// The short reference to this process.
    pub fn proc_ref(&self) -> ProcRef {
        ProcRef {
            entity_id: self.entity_id.clone(),
            pid: self.pid,
            vpid: self.vpid,
            start_boot_ns: self.start_boot_ns,
        }
    }
}

/// Elastic's `process.entry_leader.entry_meta.type` values (plus `container`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EntryType {
    Unknown,
    Init,
    Sshd,
    Ssm,
    Kubelet,
    Teleport,
    Terminal,
    Console,
    Container,
}

impl EntryType {
    /// The ECS keyword.
    pub fn as_str(self) -> &'static str {
        match self {
            EntryType::Unknown => "unknown",
            EntryType::Init => "init",
            EntryType::Sshd => "sshd",
            EntryType::Ssm => "ssm",
            EntryType::Kubelet => "kubelet",
            EntryType::Teleport => "teleport",
            EntryType::Terminal => "terminal",
            EntryType::Console => "console",
            EntryType::Container => "container",
        }
    }
}

/// An entry leader and how the session entered the system.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EntryLeader {
    pub info: Arc<ProcInfo>,
    /// `process.entry_leader.entry_meta.type`.
    pub entry_type: EntryType,
}

/// Everything the ECS stage needs for one process event.
///
/// Mapping (ECS field ← snapshot):
/// - `event.action`/`event.type` ← `kind` (fork → `fork`/`[start]`, exec → `exec`/`[start]`,
///   exit → `end`/`[end]`); `@timestamp` ← `event_boot_ns`.
/// - `process.*` ← `subject`; `process.parent.*` ← `parent`; `process.group_leader.*`,
///   `process.session_leader.*`, `process.entry_leader.*` ← the leaders (with
///   `same_as_process` = leader's `entity_id == subject.entity_id`, see
///   [`Snapshot::same_as_process`]); `process.entry_leader.entry_meta.type` ←
///   `entry_leader.entry_type`; `process.parent.group_leader.*` ← `parent_group_leader`;
///   `process.*_leader.parent.*` ← the leader's `parent`; `process.session_leader.parent.
///   session_leader.*` and `process.entry_leader.parent.session_leader.*` ←
///   `session_leader_parent_session_leader` / `entry_leader_parent_session_leader`.
/// - When `parent` is `None` (never seen, evicted), `process.parent.pid` can still be
///   `subject.ppid`.
/// - Times are ns since boot: `HostInfo::boot_to_unix_ns` turns them into dates
///   (`process.start`, `process.end`, `@timestamp`).
/// - `process.previous.{executable,args,args_count}` ← `previous` (exec only).
/// - `container.*`, `orchestrator.*` ← `container`.
///
/// The processes are shared (`Arc<ProcInfo>`): the model builds a process's info once and
/// hands the same one to every snapshot while the process does not change, so a snapshot
/// costs reference counts, not copies; an info never changes once built (a changed process
/// gets a new one), so a snapshot keeps what the processes were when it was taken.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Snapshot {
    pub kind: EventKind,
    /// When the event happened (ns since boot).
    pub event_boot_ns: u64,
    pub subject: Arc<ProcInfo>,
    pub parent: Option<Arc<ProcInfo>>,
    pub group_leader: Option<Arc<ProcInfo>>,
    pub session_leader: Option<Arc<ProcInfo>>,
    pub entry_leader: Option<EntryLeader>,
    pub parent_group_leader: Option<ProcRef>,
    pub session_leader_parent_session_leader: Option<ProcRef>,
    pub entry_leader_parent_session_leader: Option<ProcRef>,
    /// The image an exec replaced.
    pub previous: Option<Arc<ExecImage>>,
    pub container: Option<Arc<ContainerInfo>>,
}

impl Snapshot {
    /// `process.<leader>.same_as_process` for a leader of this snapshot.
    pub fn same_as_process(&self, leader: &ProcInfo) -> bool {
        leader.entity_id == self.subject.entity_id
    }
}

#[cfg(test)]
mod tests {
    use super::{choose_executable, name_of};

    #[test]
    fn name_is_the_executable_basename() {
        assert_eq!(
            name_of(b"/usr/sbin/update-ca-certificates", b"update-ca-certi"),
            b"update-ca-certificates"
        );
        assert_eq!(name_of(b"", b"kworker/0:1"), b"kworker/0:1");
        assert_eq!(name_of(b"x/true", b"true"), b"true");
        assert_eq!(name_of(b"/", b"init"), b"init");
    }

    #[test]
    #[rustfmt::skip]
    fn executable_choice() {
        let table: &[(&str, &str, &str, &[&str], &str)] = &[
            // (comm, filename, exe_path, argv, expected)
            ("ls", "/bin/ls", "/usr/bin/ls", &["ls", "-l"], "/usr/bin/ls"),
            ("ls", "ls", "/usr/bin/ls", &["ls"], "/usr/bin/ls"),
            ("autossh", "/usr/bin/autossh", "/usr/bin/dash", &["/bin/sh", "/usr/bin/autossh", "-V"], "/usr/bin/autossh"),
            ("run.sh", "./run.sh", "/usr/bin/bash", &["/bin/bash", "./run.sh"], "/usr/bin/bash"),
            ("python3", "/usr/bin/python3", "/usr/bin/python3.11", &["python3", "-c", "1"], "/usr/bin/python3.11"),
            ("a_very_long_nam", "/opt/a_very_long_name", "/opt/a_very_long_name", &["x"], "/opt/a_very_long_name"),
            ("x", "/bin/x", "", &[], "/bin/x"),
            ("tool", "/opt/tool", "/usr/bin/python3.11", &["/usr/bin/env", "python3", "/opt/tool"], "/opt/tool"),
            ("", "/bin/x", "/bin/y", &[], "/bin/y"),
        ];
        for (comm, filename, exe, argv, want) in table {
            let argv: Vec<Vec<u8>> = argv.iter().map(|a| a.as_bytes().to_vec()).collect();
            let got = choose_executable(comm.as_bytes(), filename.as_bytes(), exe.as_bytes(), &argv);
            assert_eq!(String::from_utf8(got).unwrap(), *want, "{comm} {filename} {exe}");
        }
    }
}
