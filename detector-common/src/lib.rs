//! Types shared by the kernel programs (`detector-ebpf`) and the daemon (`detector`).
//!
//! Everything here is `no_std` and `#[repr(C)]`: the layout is the wire format of the ring
//! buffer, so both sides must agree byte for byte.
//!
//! A ring-buffer record is one [`EventHeader`] followed by a variable data area. The data
//! area holds, in this order and without padding, the sections whose lengths the header gives:
//! `filename`, `cgroup_path`, `exe`, `cwd`, `argv` and `env`. Each length is the number of
//! bytes the kernel wrote; the record's total length is `size_of::<EventHeader>()` plus their
//! sum. See the field docs for the encoding of each section.
#![no_std]

/// Record kinds (the `kind` field of [`EventHeader`]).
pub mod kind {
    /// A new process (not a thread); the record describes the child.
    pub const FORK: u32 = 1;
    /// A process replaced its image; the record describes it after exec.
    pub const EXEC: u32 = 2;
    /// The last thread of a thread group exited.
    pub const EXIT: u32 = 3;
    /// A `set*uid` syscall succeeded and changed the calling thread's real or effective
    /// uid; the record describes the task after the change (no data sections but the
    /// cgroup names). Emitted by the credential programs (`sensor.credential_events`).
    pub const UID_CHANGE: u32 = 4;
    /// As [`UID_CHANGE`], for the real or effective gid (`set*gid`).
    pub const GID_CHANGE: u32 = 5;
    /// `setsid` succeeded: the task leads a new session (`sid` is the new one).
    pub const SESSION_ID_CHANGE: u32 = 6;
}

/// Bits of the `flags` field of [`EventHeader`].
pub mod flags {
    /// The argv capture hit [`super::ARGV_MAX`](crate::ARGV_MAX): more bytes existed.
    pub const ARGV_TRUNCATED: u32 = 1 << 0;
    /// The executable path walk stopped early (too deep, too long, or a read failed):
    /// the `exe` section holds only the components nearest to the file.
    pub const EXE_PARTIAL: u32 = 1 << 1;
    /// The exec filename was longer than [`super::FILENAME_MAX`](crate::FILENAME_MAX).
    pub const FILENAME_TRUNCATED: u32 = 1 << 2;
    /// The cgroup path walk stopped before the root (deeper than
    /// [`super::CGROUP_DEPTH_MAX`](crate::CGROUP_DEPTH_MAX), longer than
    /// [`super::CGROUP_PATH_MAX`](crate::CGROUP_PATH_MAX), a name longer than
    /// [`super::CGROUP_NAME_MAX`](crate::CGROUP_NAME_MAX), or a failed read): the
    /// `cgroup_path` section holds only the components nearest to the leaf.
    pub const CGROUP_TRUNCATED: u32 = 1 << 3;
    /// The subject has a controlling terminal (`tty_major`/`tty_minor` are valid).
    pub const HAS_TTY: u32 = 1 << 4;
    /// The task has no `mm` (kernel thread or already released): no exe path, no argv.
    pub const NO_MM: u32 = 1 << 5;
    /// A kernel read the record depends on failed; some fields are zero.
    pub const READ_ERROR: u32 = 1 << 6;
    /// The process has no cgroup v2 (default hierarchy) information.
    pub const NO_CGROUP: u32 = 1 << 7;
    /// The working-directory walk stopped early (too deep, too long, or a read failed):
    /// the `cwd` section holds only the components nearest to the directory.
    pub const CWD_PARTIAL: u32 = 1 << 8;
    /// The environment capture hit [`super::ENV_MAX`](crate::ENV_MAX): more bytes existed.
    pub const ENV_TRUNCATED: u32 = 1 << 9;
    /// `cap_effective` and `cap_permitted` of the header are valid.
    pub const HAS_CAPS: u32 = 1 << 10;
}

/// Longest exec filename captured, in bytes including the terminating NUL.
pub const FILENAME_MAX: usize = 512;
/// Longest cgroup (kernfs) name captured, in bytes including the terminating NUL.
pub const CGROUP_NAME_MAX: usize = 256;
/// Room for the cgroup path: its components, leaf first, each NUL-terminated. Real paths
/// (kubepods with the systemd driver, nested containers) stay under 400 bytes.
pub const CGROUP_PATH_MAX: usize = 1024;
/// Deepest cgroup path walked (components below the root). cgroup v2 hosts nest a
/// container's processes at most about 8 levels deep (kubepods slices + a container's own
/// sub-cgroups); 16 leaves room for nesting (docker-in-docker, systemd in a container).
pub const CGROUP_DEPTH_MAX: u32 = 16;
/// Room for the executable path: its components, leaf first, each NUL-terminated.
pub const EXE_MAX: usize = 1024;
/// Longest single path component read (NAME_MAX + NUL).
pub const EXE_COMPONENT_MAX: usize = 256;
/// Deepest executable path walked (components, mount roots not counted).
pub const EXE_DEPTH_MAX: u32 = 32;
/// argv bytes captured: the first `ARGV_MAX` bytes of the NUL-separated argument block.
/// 4 KiB covers ordinary command lines while keeping a record well under 8 KiB.
pub const ARGV_MAX: usize = 4096;
/// Room for the working directory: its components, leaf first, each NUL-terminated (the
/// same encoding as the `exe` section; the root directory is one empty component, so an
/// empty section means "not captured").
pub const CWD_MAX: usize = 1024;
/// Environment bytes captured: the first `ENV_MAX` bytes of the NUL-separated environment
/// block (`mm->env_start..env_end`), read only while the daemon's capture list is not empty
/// (`Tuning::capture_env`); the daemon keeps only the listed variables.
pub const ENV_MAX: usize = 4096;
/// Size of the data area of the kernel's scratch record. Section starts before argv are kept
/// below [`DATA_START_LIMIT`] and each of their reads is at most [`ARGV_MAX`] bytes; the
/// `env` section, after argv, starts below [`ENV_START_LIMIT`] and reads at most
/// [`ENV_MAX`]. These bounds let the verifier prove every write stays inside the buffer.
pub const DATA_MAX: usize = ENV_START_LIMIT + ENV_MAX;
/// Every section but `env` starts below this offset of the data area (see [`DATA_MAX`]).
pub const DATA_START_LIMIT: usize = 4096;
/// The `env` section (after argv) starts below this offset of the data area.
pub const ENV_START_LIMIT: usize = DATA_START_LIMIT + ARGV_MAX;

/// Default size of the ring buffer in bytes (a power of two, multiple of the page size).
pub const DEFAULT_RING_BYTES: u32 = 4 << 20;

/// Name of the ring buffer map in the eBPF object.
pub const RING_MAP: &str = "EVENTS";
/// Name of the one-entry `u32` array the reader sets to `1` while it polls the ring on its
/// own timer, so the programs skip wake-ups (see [`Tuning`]).
pub const READER_MAP: &str = "READER";
/// Name of the per-CPU counters map in the eBPF object.
pub const COUNTERS_MAP: &str = "COUNTERS";
/// The credential programs (`sensor.credential_events`): `cred_enter` notes the calling
/// thread's ids when one of [`CRED_SYSCALLS`] starts, `cred_exit` compares them with the
/// ids after a successful return and records a change (kinds `UID_CHANGE`, `GID_CHANGE`,
/// `SESSION_ID_CHANGE`). Classic syscall tracepoints: they fire only on these syscalls.
pub const CRED_ENTER_PROGRAM: &str = "cred_enter";
pub const CRED_EXIT_PROGRAM: &str = "cred_exit";
/// Syscalls watched, as tracepoints `syscalls:sys_enter_<name>` / `sys_exit_<name>`.
/// `setfsuid`/`setfsgid` (fs ids only) and `setgroups` are not watched.
pub const CRED_SYSCALLS: [&str; 7] = [
    "setuid",
    "setreuid",
    "setresuid",
    "setgid",
    "setregid",
    "setresgid",
    "setsid",
];
/// Offset of `long ret` in a `syscalls:sys_exit_*` record (after the 8-byte common header
/// and the `int __syscall_nr` with its padding); the daemon checks it against the
/// tracepoint's `format` before attaching.
pub const SYSCALL_EXIT_RET_OFFSET: usize = 16;

/// Name of the global that holds the [`Offsets`] block.
pub const OFFSETS_GLOBAL: &str = "OFFSETS";
/// Name of the global that holds the [`Tuning`] block.
pub const TUNING_GLOBAL: &str = "TUNING";

/// Default [`Tuning::wake_interval_ns`]: 1 ms.
pub const DEFAULT_WAKE_INTERVAL_NS: u64 = 1_000_000;

/// How the programs behave, set by the daemon before loading (a read-only global, like
/// [`Offsets`]).
///
/// Why `wake_interval_ns` exists: waking the reader is most of what an event costs the
/// traced process. Each wake-up is a cross-CPU wake of the daemon's thread (an IPI, a VM exit
/// under virtualisation): measured here at 12–16 µs of the 15–20 µs a program ran per event,
/// against 2–3 µs without it. So a record wakes the reader only when no wake-up was sent in
/// the last `wake_interval_ns`, or when the ring holds more than `wake_avail_bytes`
/// unread; the daemon, once woken, polls the ring every `wake_interval_ns` until it has been
/// idle for two intervals (see the reader in `detector::sensor`), so no record waits longer
/// than about one interval. While the reader polls it says so in [`READER_MAP`], and the
/// programs then send no wake-up at all unless the ring fills up: a storm costs no wake-ups
/// after its first record. `0` wakes the reader for every record (the kernel's default).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tuning {
    /// Minimum time between two wake-ups of the reader, in ns; `0`: wake for every record.
    pub wake_interval_ns: u64,
    /// Wake the reader at once when more than this many bytes are unread.
    pub wake_avail_bytes: u64,
    /// `1`: copy each exec's argv; `0`: leave it out (`config: sensor.argv_capture`).
    pub capture_argv: u32,
    /// Keeps the struct free of implicit padding.
    pub reserved: u32,
    /// `1`: walk each exec's working directory (`fs->pwd`) into the `cwd` section
    /// (`config: sensor.cwd_capture`).
    pub capture_cwd: u32,
    /// `1`: copy the first [`ENV_MAX`] bytes of each exec's environment into the `env`
    /// section; set while `sensor.capture_env_vars` is not empty.
    pub capture_env: u32,
    /// `1`: read `cred->cap_effective`/`cap_permitted` into every record
    /// (`config: sensor.caps_capture`).
    pub capture_caps: u32,
    /// Keeps the struct free of implicit padding.
    pub reserved2: u32,
}

impl Tuning {
    /// Every record wakes the reader, argv captured: the kernel's behaviour without tuning.
    pub const fn immediate() -> Self {
        Tuning {
            wake_interval_ns: 0,
            wake_avail_bytes: u64::MAX,
            capture_argv: 1,
            reserved: 0,
            capture_cwd: 1,
            capture_env: 0,
            capture_caps: 1,
            reserved2: 0,
        }
    }
}

/// Indices of the per-CPU `u64` counters in [`COUNTERS_MAP`].
pub mod counter {
    /// Records the ring buffer had no room for (fork, exec, exit).
    pub const LOST_FORK: u32 = 0;
    pub const LOST_EXEC: u32 = 1;
    pub const LOST_EXIT: u32 = 2;
    /// Records submitted to the ring buffer (fork, exec, exit).
    pub const SENT_FORK: u32 = 3;
    pub const SENT_EXEC: u32 = 4;
    pub const SENT_EXIT: u32 = 5;
    /// Records whose argv was truncated.
    pub const ARGV_TRUNCATED: u32 = 6;
    /// Records whose executable path is partial.
    pub const EXE_PARTIAL: u32 = 7;
    /// Records whose exec filename was truncated.
    pub const FILENAME_TRUNCATED: u32 = 8;
    /// Records with a truncated cgroup path (see [`crate::flags::CGROUP_TRUNCATED`]).
    pub const CGROUP_TRUNCATED: u32 = 9;
    /// Records where some kernel read failed.
    pub const READ_ERROR: u32 = 10;
    /// The per-CPU scratch record was unavailable (should never happen).
    pub const SCRATCH_MISSING: u32 = 11;
    /// Records that woke the reader (see [`crate::Tuning`]): with the wake interval, far
    /// fewer than the records sent under load.
    pub const WAKEUPS: u32 = 12;
    /// Credential-change records (uid, gid, session) submitted / the ring had no room for.
    pub const SENT_CRED: u32 = 13;
    pub const LOST_CRED: u32 = 14;
    /// Successful `set*id`/`setsid` calls that changed no id the records report (e.g.
    /// `setuid` to the current uid): filtered in the kernel, no record.
    pub const CRED_UNCHANGED: u32 = 15;
    /// Number of counters.
    /// Records whose working directory is partial.
    pub const CWD_PARTIAL: u32 = 16;
    /// Records whose environment capture was truncated.
    pub const ENV_TRUNCATED: u32 = 17;
    /// Number of counters.
    pub const COUNT: u32 = 18;
    /// Stable names of the counters, by index (used in logs and `detector trace`).
    pub const NAMES: [&str; COUNT as usize] = [
        "lost_fork",
        "lost_exec",
        "lost_exit",
        "sent_fork",
        "sent_exec",
        "sent_exit",
        "argv_truncated",
        "exe_partial",
        "filename_truncated",
        "cgroup_truncated",
        "read_error",
        "scratch_missing",
        "wakeups",
        "sent_cred",
        "lost_cred",
        "cred_unchanged",
        "cwd_partial",
        "env_truncated",
    ];
}

/// Fixed part of every ring-buffer record.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EventHeader {
    /// One of [`kind`].
    pub kind: u32,
    /// Bits from [`flags`].
    pub flags: u32,
    /// `bpf_ktime_get_boot_ns()` when the event fired.
    pub boot_ns: u64,
    /// `start_boottime` of the subject's thread-group leader.
    pub start_boot_ns: u64,
    /// cgroup v2 id (kernfs node id = inode number of the cgroup directory).
    pub cgroup_id: u64,
    /// Subject thread id and thread-group id.
    pub pid: u32,
    pub tgid: u32,
    /// `real_parent->tgid` of the subject.
    pub ppid: u32,
    /// The thread that caused the event (fork: the forking thread).
    pub actor_pid: u32,
    /// Real and effective ids from `real_cred`.
    pub uid: u32,
    pub gid: u32,
    pub euid: u32,
    pub egid: u32,
    /// Inode numbers of the subject's active pid namespace and its mount namespace.
    pub pid_ns_ino: u32,
    pub mnt_ns_ino: u32,
    /// The subject's tgid inside its own pid namespace.
    pub ns_pid: u32,
    /// Session id (global pid number of the session leader).
    pub sid: u32,
    /// Controlling terminal, valid when [`flags::HAS_TTY`] is set.
    pub tty_major: u32,
    pub tty_minor: u32,
    /// Exit only: the raw wait status (`(code << 8) | signal`).
    pub exit_status: u32,
    /// Lengths of the data-area sections, in order.
    pub filename_len: u16,
    /// The whole default-hierarchy cgroup path, read in the kernel by walking the cgroup's
    /// kernfs node up to the root: components leaf first, each NUL-terminated (the root
    /// cgroup: no component). Root-relative and independent of the task's cgroup
    /// namespace. Partial when [`flags::CGROUP_TRUNCATED`] is set.
    pub cgroup_path_len: u16,
    pub _reserved: u16,
    pub exe_len: u16,
    pub argv_len: u16,
    pub _pad: u16,
    /// `task->comm`, NUL padded.
    pub comm: [u8; 16],
    /// Lengths of the `cwd` and `env` sections (see the crate docs for the order).
    pub cwd_len: u16,
    pub env_len: u16,
    /// Process group id (global pid number of the group leader) at the event; 0 when it
    /// could not be read. Read here because `setpgid` after fork changes it and the daemon
    /// would otherwise have to read it back from `/proc`.
    pub pgid: u32,
    /// `real_cred->cap_effective` and `cap_permitted` (bit n = capability n), valid with
    /// [`flags::HAS_CAPS`].
    pub cap_effective: u64,
    pub cap_permitted: u64,
}

/// Size in bytes of [`EventHeader`] on the wire.
pub const HEADER_SIZE: usize = core::mem::size_of::<EventHeader>();

/// The kernel's scratch record: header plus the largest possible data area.
#[repr(C)]
pub struct ScratchRecord {
    pub header: EventHeader,
    pub data: [u8; DATA_MAX],
}

/// Marks an offset or value the running kernel's BTF does not have.
pub const MISSING: u32 = u32::MAX;

/// Kernel struct field offsets (bytes), computed by the daemon from `/sys/kernel/btf/vmlinux`
/// and handed to the programs as a read-only global. Names are `<struct>_<field>`; a value of
/// [`MISSING`] means this kernel lacks the field (the programs then flag or skip it).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Offsets {
    pub task_pid: u32,
    pub task_tgid: u32,
    pub task_real_parent: u32,
    pub task_group_leader: u32,
    pub task_comm: u32,
    pub task_real_cred: u32,
    pub task_mm: u32,
    pub task_fs: u32,
    pub task_cgroups: u32,
    pub task_signal: u32,
    pub task_nsproxy: u32,
    pub task_thread_pid: u32,
    pub task_start_boottime: u32,
    pub task_exit_code: u32,
    pub cred_uid: u32,
    pub cred_gid: u32,
    pub cred_euid: u32,
    pub cred_egid: u32,
    pub mm_exe_file: u32,
    pub mm_arg_start: u32,
    pub mm_arg_end: u32,
    /// `file.f_path.mnt` and `file.f_path.dentry`.
    pub file_path_mnt: u32,
    pub file_path_dentry: u32,
    /// `fs_struct.root.mnt` and `fs_struct.root.dentry`.
    pub fs_root_mnt: u32,
    pub fs_root_dentry: u32,
    pub dentry_parent: u32,
    /// `dentry.d_name.name` (a pointer).
    pub dentry_name: u32,
    /// Offset of `mnt` (the embedded `struct vfsmount`) inside `struct mount`.
    pub mount_mnt: u32,
    pub mount_parent: u32,
    pub mount_mountpoint: u32,
    pub vfsmount_root: u32,
    pub css_set_dfl_cgrp: u32,
    pub cgroup_kn: u32,
    pub kernfs_id: u32,
    pub kernfs_name: u32,
    pub kernfs_parent: u32,
    pub signal_live: u32,
    pub signal_group_exit_code: u32,
    pub signal_tty: u32,
    /// `signal_struct.pids[PIDTYPE_SID]`.
    pub signal_sid_pid: u32,
    /// `signal_struct.pids[PIDTYPE_PGID]`.
    pub signal_pgid_pid: u32,
    pub tty_driver: u32,
    pub tty_index: u32,
    pub tty_driver_major: u32,
    pub tty_driver_minor_start: u32,
    pub pid_level: u32,
    pub pid_numbers: u32,
    pub upid_size: u32,
    pub upid_nr: u32,
    pub upid_ns: u32,
    /// `pid_namespace.ns.inum`.
    pub pid_ns_inum: u32,
    pub nsproxy_mnt_ns: u32,
    /// `mnt_namespace.ns.inum`.
    pub mnt_ns_inum: u32,
    pub binprm_filename: u32,
    /// 1 when `sched_process_exit` passes `group_dead` as its second argument.
    pub exit_has_group_dead: u32,
    /// `fs_struct.pwd.mnt` and `fs_struct.pwd.dentry` (the working directory).
    pub fs_pwd_mnt: u32,
    pub fs_pwd_dentry: u32,
    /// User-space bounds of the environment block.
    pub mm_env_start: u32,
    pub mm_env_end: u32,
    /// `cred.cap_effective` and `cred.cap_permitted` (`kernel_cap_t`, 64 bits).
    pub cred_cap_effective: u32,
    pub cred_cap_permitted: u32,
}

impl Offsets {
    /// An all-missing block: the value compiled into the object before the daemon fills it.
    pub const fn missing() -> Self {
        Self {
            task_pid: MISSING,
            task_tgid: MISSING,
            task_real_parent: MISSING,
            task_group_leader: MISSING,
            task_comm: MISSING,
            task_real_cred: MISSING,
            task_mm: MISSING,
            task_fs: MISSING,
            task_cgroups: MISSING,
            task_signal: MISSING,
            task_nsproxy: MISSING,
            task_thread_pid: MISSING,
            task_start_boottime: MISSING,
            task_exit_code: MISSING,
            cred_uid: MISSING,
            cred_gid: MISSING,
            cred_euid: MISSING,
            cred_egid: MISSING,
            mm_exe_file: MISSING,
            mm_arg_start: MISSING,
            mm_arg_end: MISSING,
            file_path_mnt: MISSING,
            file_path_dentry: MISSING,
            fs_root_mnt: MISSING,
            fs_root_dentry: MISSING,
            dentry_parent: MISSING,
            dentry_name: MISSING,
            mount_mnt: MISSING,
            mount_parent: MISSING,
            mount_mountpoint: MISSING,
            vfsmount_root: MISSING,
            css_set_dfl_cgrp: MISSING,
            cgroup_kn: MISSING,
            kernfs_id: MISSING,
            kernfs_name: MISSING,
            kernfs_parent: MISSING,
            signal_live: MISSING,
            signal_group_exit_code: MISSING,
            signal_tty: MISSING,
            signal_sid_pid: MISSING,
            signal_pgid_pid: MISSING,
            tty_driver: MISSING,
            tty_index: MISSING,
            tty_driver_major: MISSING,
            tty_driver_minor_start: MISSING,
            pid_level: MISSING,
            pid_numbers: MISSING,
            upid_size: MISSING,
            upid_nr: MISSING,
            upid_ns: MISSING,
            pid_ns_inum: MISSING,
            nsproxy_mnt_ns: MISSING,
            mnt_ns_inum: MISSING,
            binprm_filename: MISSING,
            exit_has_group_dead: 0,
            fs_pwd_mnt: MISSING,
            fs_pwd_dentry: MISSING,
            mm_env_start: MISSING,
            mm_env_end: MISSING,
            cred_cap_effective: MISSING,
            cred_cap_permitted: MISSING,
        }
    }
}

#[cfg(feature = "user")]
// SAFETY: `Offsets` is `repr(C)`, made only of `u32`s (no padding, any bit pattern valid).
unsafe impl aya::Pod for Offsets {}

#[cfg(feature = "user")]
// SAFETY: `Tuning` is `repr(C)` integers without padding (2 × u64 + 6 × u32), any bit
// pattern valid.
unsafe impl aya::Pod for Tuning {}

#[cfg(feature = "user")]
// SAFETY: `EventHeader` is `repr(C)` plain integers; its fields are laid out without padding
// (checked by the size assertion below), and every bit pattern is valid.
unsafe impl aya::Pod for EventHeader {}

// The header has no implicit padding: 4+4 + 8*3 + 4*15 + 2*6 + 16 = 120 bytes, then
// 2*2 + 4 + 8*2 = 24 for the cwd/env lengths and capabilities.
const _: () = assert!(HEADER_SIZE == 144);
const _: () = assert!(core::mem::size_of::<Tuning>() == 40);
const _: () = assert!(ENV_START_LIMIT + ENV_MAX <= DATA_MAX);
const _: () = assert!(DATA_START_LIMIT + ARGV_MAX <= DATA_MAX);
const _: () = assert!(CGROUP_NAME_MAX <= CGROUP_PATH_MAX);
const _: () = assert!(
    FILENAME_MAX + CGROUP_PATH_MAX + EXE_MAX + CWD_MAX <= DATA_START_LIMIT,
    "argv must start below DATA_START_LIMIT"
);
