//! detector's kernel side: three `tp_btf` programs on the scheduler's process tracepoints.
//!
//! Each program fills one per-CPU scratch record (header + packed data sections, see
//! `detector-common`) and copies the used part into the `EVENTS` ring buffer with
//! `bpf_ringbuf_output`, so a record costs the ring only the bytes it needs. Every kernel
//! struct field is reached through an offset from the `OFFSETS` global, which the daemon
//! computes from the running kernel's BTF before loading (Rust eBPF has no CO-RE).
//!
//! Verifier notes: every read goes through `bpf_probe_read_kernel*` into memory we own and
//! checks the return value; every variable write offset into the scratch data is compared
//! against `DATA_START_LIMIT` right before the read that uses it, and every variable length
//! against its maximum, so the verifier can bound each access.
#![no_std]
#![no_main]

use core::ffi::c_void;

use aya_ebpf::{
    helpers::generated::{
        bpf_get_current_pid_tgid, bpf_ktime_get_boot_ns, bpf_probe_read_kernel,
        bpf_probe_read_kernel_str, bpf_probe_read_user,
    },
    macros::{btf_tracepoint, map},
    maps::{Array, PerCpuArray, RingBuf},
    programs::BtfTracePointContext,
};
use detector_common::{
    ARGV_MAX, CGROUP_NAME_MAX, DATA_START_LIMIT, DEFAULT_RING_BYTES, EXE_COMPONENT_MAX,
    EXE_DEPTH_MAX, EXE_MAX, EventHeader, FILENAME_MAX, HEADER_SIZE, MISSING, Offsets,
    ScratchRecord, Tuning, counter, flags, kind,
};

/// The one ring buffer; userspace may resize it before loading (`map_max_entries`).
#[map]
static EVENTS: RingBuf = RingBuf::with_byte_size(DEFAULT_RING_BYTES, 0);

/// Per-CPU event counters, indexed by `detector_common::counter`.
#[map]
static COUNTERS: PerCpuArray<u64> = PerCpuArray::with_max_entries(counter::COUNT, 0);

/// One scratch record per CPU: too big for the 512-byte eBPF stack.
#[map]
static SCRATCH: PerCpuArray<ScratchRecord> = PerCpuArray::with_max_entries(1, 0);

/// Kernel struct offsets, filled by the daemon (`EbpfLoader::override_global`). Lives in
/// `.rodata`, so the verifier sees the values as constants and prunes branches on `MISSING`.
#[unsafe(no_mangle)]
static OFFSETS: Offsets = Offsets::missing();

/// Wake-up policy and argv capture, filled by the daemon like `OFFSETS` (see [`Tuning`]).
#[unsafe(no_mangle)]
static TUNING: Tuning = Tuning::immediate();

/// When the reader was last woken (boot ns), shared by all CPUs. Updates race between CPUs;
/// the worst a race does is one extra wake-up.
#[map]
static LAST_WAKE: Array<u64> = Array::with_max_entries(1, 0);

/// `1` while the reader drains the ring on its own timer (set by the daemon, see
/// `detector::sensor::RecordStream`): records then need no wake-up, and skipping it spares
/// the traced process the wake-up's self-IPI (a VM exit under virtualisation) and the
/// shared `LAST_WAKE` write.
#[map]
static READER: Array<u32> = Array::with_max_entries(1, 0);

/// `bpf_ringbuf_output` flags (uapi `BPF_RB_*`).
const RB_NO_WAKEUP: u64 = 1;
const RB_FORCE_WAKEUP: u64 = 2;
const RB_AVAIL_DATA: u64 = 0;

/// Reads one tuning value (volatile, as `off!`).
macro_rules! tuning {
    ($field:ident) => {
        unsafe { core::ptr::read_volatile(&TUNING.$field) }
    };
}

/// Reads one offset from the global (volatile: the compiler must not fold the placeholder).
macro_rules! off {
    ($field:ident) => {
        unsafe { core::ptr::read_volatile(&OFFSETS.$field) }
    };
}

/// A kernel read failed or an offset is missing on this kernel.
struct ReadErr;

type R<T> = Result<T, ReadErr>;

/// Reads a `T` at `base + offset` from kernel memory.
#[inline(always)]
fn rd<T: Copy>(base: u64, offset: u32) -> R<T> {
    if base == 0 || offset == MISSING {
        return Err(ReadErr);
    }
    let mut v = core::mem::MaybeUninit::<T>::uninit();
    // SAFETY: the helper writes at most size_of::<T>() bytes into `v` and faults safely.
    let r = unsafe {
        bpf_probe_read_kernel(
            v.as_mut_ptr() as *mut c_void,
            core::mem::size_of::<T>() as u32,
            (base + offset as u64) as *const c_void,
        )
    };
    if r < 0 {
        return Err(ReadErr);
    }
    // SAFETY: the helper succeeded, so all bytes of `v` were written.
    Ok(unsafe { v.assume_init() })
}

/// Reads a kernel pointer at `base + offset`; NULL is an error.
#[inline(always)]
fn rdp(base: u64, offset: u32) -> R<u64> {
    let p: u64 = rd(base, offset)?;
    if p == 0 { Err(ReadErr) } else { Ok(p) }
}

#[inline(always)]
fn bump(index: u32) {
    if let Some(p) = COUNTERS.get_ptr_mut(index) {
        // SAFETY: per-CPU slot, programs do not preempt each other on one CPU.
        unsafe { *p += 1 };
    }
}

/// Copies a NUL-terminated kernel string of at most `MAX` bytes (NUL included) to
/// `data[cur..]`. Returns the bytes written (NUL included), 0 on failure.
#[inline(always)]
fn put_kstr<const MAX: usize>(data: *mut u8, cur: usize, src: u64) -> usize {
    if cur >= DATA_START_LIMIT || src == 0 {
        return 0;
    }
    // SAFETY: cur < DATA_START_LIMIT and MAX <= ARGV_MAX, so the write stays in `data`.
    let r = unsafe {
        bpf_probe_read_kernel_str(
            data.add(cur) as *mut c_void,
            MAX as u32,
            src as *const c_void,
        )
    };
    if r <= 0 {
        return 0;
    }
    let n = r as usize;
    if n > MAX { MAX } else { n }
}

/// Fills the header fields that describe `task` (ids, creds, comm, namespaces, tty, session,
/// start time, cgroup) and writes the cgroup names at `data[cur..]`; returns the new cursor.
#[inline(always)]
fn fill_task(h: &mut EventHeader, data: *mut u8, mut cur: usize, task: u64) -> usize {
    let mut ok = true;
    h.pid = rd::<u32>(task, off!(task_pid)).unwrap_or_else(|_| {
        ok = false;
        0
    });
    h.tgid = rd::<u32>(task, off!(task_tgid)).unwrap_or_else(|_| {
        ok = false;
        0
    });
    match rdp(task, off!(task_real_parent)).and_then(|p| rd::<u32>(p, off!(task_tgid))) {
        Ok(v) => h.ppid = v,
        Err(_) => ok = false,
    }
    if let Ok(cred) = rdp(task, off!(task_real_cred)) {
        h.uid = rd::<u32>(cred, off!(cred_uid)).unwrap_or_else(|_| {
            ok = false;
            0
        });
        h.gid = rd::<u32>(cred, off!(cred_gid)).unwrap_or_else(|_| {
            ok = false;
            0
        });
        h.euid = rd::<u32>(cred, off!(cred_euid)).unwrap_or_else(|_| {
            ok = false;
            0
        });
        h.egid = rd::<u32>(cred, off!(cred_egid)).unwrap_or_else(|_| {
            ok = false;
            0
        });
    } else {
        ok = false;
    }
    match rd::<[u8; 16]>(task, off!(task_comm)) {
        Ok(c) => h.comm = c,
        Err(_) => ok = false,
    }
    // Leader: start time and the namespace-local tgid.
    let leader = rdp(task, off!(task_group_leader)).unwrap_or(task);
    h.start_boot_ns = rd::<u64>(leader, off!(task_start_boottime)).unwrap_or_else(|_| {
        ok = false;
        0
    });
    if fill_pid_ns(h, leader).is_err() {
        ok = false;
    }
    if let Ok(nsproxy) = rdp(task, off!(task_nsproxy)) {
        if let Ok(mnt_ns) = rdp(nsproxy, off!(nsproxy_mnt_ns)) {
            h.mnt_ns_ino = rd::<u32>(mnt_ns, off!(mnt_ns_inum)).unwrap_or(0);
        }
    }
    if let Ok(signal) = rdp(task, off!(task_signal)) {
        if let Ok(sid_pid) = rdp(signal, off!(signal_sid_pid)) {
            // pid->numbers[0].nr: the global pid number.
            h.sid = rd::<u32>(sid_pid, off!(pid_numbers).wrapping_add(off!(upid_nr))).unwrap_or(0);
        }
        if let Ok(tty) = rdp(signal, off!(signal_tty)) {
            let index = rd::<u32>(tty, off!(tty_index)).unwrap_or(0);
            if let Ok(driver) = rdp(tty, off!(tty_driver)) {
                h.tty_major = rd::<u32>(driver, off!(tty_driver_major)).unwrap_or(0);
                h.tty_minor = rd::<u32>(driver, off!(tty_driver_minor_start))
                    .unwrap_or(0)
                    .wrapping_add(index);
            }
            h.flags |= flags::HAS_TTY;
        }
    } else {
        ok = false;
    }
    cur = fill_cgroup(h, data, cur, task);
    if !ok {
        h.flags |= flags::READ_ERROR;
    }
    cur
}

/// pid namespace inode and namespace-local pid of `leader` (its `thread_pid` at its level).
#[inline(always)]
fn fill_pid_ns(h: &mut EventHeader, leader: u64) -> R<()> {
    let pid = rdp(leader, off!(task_thread_pid))?;
    let level: u32 = rd(pid, off!(pid_level))?;
    if level > 31 {
        return Err(ReadErr);
    }
    let upid_size = off!(upid_size);
    if upid_size > 64 {
        return Err(ReadErr);
    }
    let upid = pid + off!(pid_numbers) as u64 + (level * upid_size) as u64;
    h.ns_pid = rd(upid, off!(upid_nr))?;
    let ns = rdp(upid, off!(upid_ns))?;
    h.pid_ns_ino = rd(ns, off!(pid_ns_inum))?;
    Ok(())
}

/// cgroup v2 id and the leaf and parent names of `task`'s default-hierarchy cgroup.
#[inline(always)]
fn fill_cgroup(h: &mut EventHeader, data: *mut u8, mut cur: usize, task: u64) -> usize {
    let kn = match rdp(task, off!(task_cgroups))
        .and_then(|css| rdp(css, off!(css_set_dfl_cgrp)))
        .and_then(|cg| rdp(cg, off!(cgroup_kn)))
    {
        Ok(kn) => kn,
        Err(_) => {
            h.flags |= flags::NO_CGROUP;
            return cur;
        }
    };
    h.cgroup_id = rd::<u64>(kn, off!(kernfs_id)).unwrap_or(0);
    let name = rdp(kn, off!(kernfs_name)).unwrap_or(0);
    let n = put_kstr::<CGROUP_NAME_MAX>(data, cur, name);
    if n == CGROUP_NAME_MAX {
        h.flags |= flags::CGROUP_TRUNCATED;
    }
    h.cgroup_leaf_len = n as u16;
    cur += n;
    if let Ok(parent) = rdp(kn, off!(kernfs_parent)) {
        let name = rdp(parent, off!(kernfs_name)).unwrap_or(0);
        let n = put_kstr::<CGROUP_NAME_MAX>(data, cur, name);
        if n == CGROUP_NAME_MAX {
            h.flags |= flags::CGROUP_TRUNCATED;
        }
        h.cgroup_parent_len = n as u16;
        cur += n;
    }
    cur
}

/// Walks `mm->exe_file->f_path` up to the task's root (`fs->root`), crossing mounts, and
/// writes the components leaf first, each NUL-terminated. Sets `EXE_PARTIAL` when it cannot
/// reach the root within its bounds.
#[inline(always)]
fn fill_exe(h: &mut EventHeader, data: *mut u8, cur: usize, task: u64, mm: u64) -> usize {
    let start = cur;
    let mut cur = cur;
    let mut complete = false;
    if let Ok(walk) = exe_start(task, mm) {
        let (mut dentry, mut mount, root_dentry, root_mnt) = walk;
        let mount_mnt = off!(mount_mnt) as u64;
        let mut i = 0u32;
        while i < EXE_DEPTH_MAX + 8 {
            i += 1;
            // A no-op (cur stays below the limit, see the bound check below) that gives
            // every path through one iteration the same range for `cur`, so the verifier
            // can prune states instead of exploring 2^depth paths.
            cur &= DATA_START_LIMIT - 1;
            let mnt = mount + mount_mnt;
            if dentry == root_dentry && mnt == root_mnt {
                complete = true;
                break;
            }
            let Ok(mnt_root) = rdp(mnt, off!(vfsmount_root)) else {
                break;
            };
            let Ok(parent) = rdp(dentry, off!(dentry_parent)) else {
                break;
            };
            if dentry == mnt_root || dentry == parent {
                // Top of this mount: continue from its mountpoint in the parent mount.
                let Ok(mparent) = rdp(mount, off!(mount_parent)) else {
                    break;
                };
                if mparent == mount {
                    // The namespace's root mount, above the task's root: path is complete
                    // relative to the global root (the task is outside its own root).
                    complete = true;
                    break;
                }
                let Ok(mp) = rdp(mount, off!(mount_mountpoint)) else {
                    break;
                };
                dentry = mp;
                mount = mparent;
                continue;
            }
            if cur - start > EXE_MAX - EXE_COMPONENT_MAX {
                break;
            }
            let Ok(name) = rdp(dentry, off!(dentry_name)) else {
                break;
            };
            let n = put_kstr::<EXE_COMPONENT_MAX>(data, cur, name);
            if n == 0 {
                break;
            }
            cur += n;
            dentry = parent;
        }
    }
    if !complete {
        h.flags |= flags::EXE_PARTIAL;
        bump(counter::EXE_PARTIAL);
    }
    h.exe_len = (cur - start) as u16;
    cur
}

/// Start of the exe walk: (dentry, struct mount of the file, root dentry, root vfsmount).
#[inline(always)]
fn exe_start(task: u64, mm: u64) -> R<(u64, u64, u64, u64)> {
    let file = rdp(mm, off!(mm_exe_file))?;
    let dentry = rdp(file, off!(file_path_dentry))?;
    let mnt = rdp(file, off!(file_path_mnt))?;
    let fs = rdp(task, off!(task_fs))?;
    let root_dentry = rdp(fs, off!(fs_root_dentry))?;
    let root_mnt = rdp(fs, off!(fs_root_mnt))?;
    let mount_mnt = off!(mount_mnt);
    if mount_mnt == MISSING {
        return Err(ReadErr);
    }
    // container_of(mnt, struct mount, mnt)
    Ok((dentry, mnt - mount_mnt as u64, root_dentry, root_mnt))
}

/// Copies the first `ARGV_MAX` bytes of the current task's argument block.
#[inline(always)]
fn fill_argv(h: &mut EventHeader, data: *mut u8, cur: usize, mm: u64) -> usize {
    let (Ok(start), Ok(end)) = (
        rd::<u64>(mm, off!(mm_arg_start)),
        rd::<u64>(mm, off!(mm_arg_end)),
    ) else {
        h.flags |= flags::READ_ERROR;
        return cur;
    };
    if end <= start {
        return cur;
    }
    let mut len = end - start;
    if len > ARGV_MAX as u64 {
        len = ARGV_MAX as u64;
        h.flags |= flags::ARGV_TRUNCATED;
        bump(counter::ARGV_TRUNCATED);
    }
    if cur >= DATA_START_LIMIT {
        return cur;
    }
    // Clamp once more right before the read, in the register the helper gets.
    let len = len as u32;
    if len == 0 || len > ARGV_MAX as u32 {
        return cur;
    }
    // SAFETY: cur < DATA_START_LIMIT and len <= ARGV_MAX keep the write inside `data`.
    let r =
        unsafe { bpf_probe_read_user(data.add(cur) as *mut c_void, len, start as *const c_void) };
    if r < 0 {
        h.flags |= flags::READ_ERROR;
        return cur;
    }
    h.argv_len = len as u16;
    cur + len as usize
}

/// Copies the used part of the scratch record into the ring buffer, counting the outcome.
#[inline(always)]
fn submit(rec: *mut ScratchRecord, data_len: usize, sent: u32, lost: u32) {
    // SAFETY: `rec` is the per-CPU scratch value (valid for its whole size).
    let h = unsafe { &(*rec).header };
    if h.flags & flags::READ_ERROR != 0 {
        bump(counter::READ_ERROR);
    }
    let mut len = HEADER_SIZE + data_len;
    if len > core::mem::size_of::<ScratchRecord>() {
        len = core::mem::size_of::<ScratchRecord>();
    }
    // SAFETY: len is clamped to the scratch record's size.
    let bytes = unsafe { core::slice::from_raw_parts(rec as *const u8, len) };
    match EVENTS.output::<[u8]>(bytes, wake_flags()) {
        Ok(()) => bump(sent),
        Err(_) => bump(lost),
    }
}

/// Whether this record wakes the reader: never while the reader polls (unless the ring
/// fills up), else at most once per `wake_interval_ns`, or at once when the ring fills up
/// (see [`Tuning`]); every time when the interval is 0.
#[inline(always)]
fn wake_flags() -> u64 {
    let interval = tuning!(wake_interval_ns);
    if interval == 0 {
        return 0;
    }
    let full = EVENTS.query(RB_AVAIL_DATA) >= tuning!(wake_avail_bytes);
    if !full && READER.get(0).is_some_and(|polling| *polling == 1) {
        return RB_NO_WAKEUP;
    }
    let Some(last) = LAST_WAKE.get_ptr_mut(0) else {
        return 0;
    };
    // SAFETY: helper without preconditions.
    let now = unsafe { bpf_ktime_get_boot_ns() };
    // SAFETY: `last` points at the map's one u64 value; a racing CPU can only make the
    // value another CPU's recent time.
    unsafe {
        if full || now.wrapping_sub(*last) >= interval {
            *last = now;
            bump(counter::WAKEUPS);
            RB_FORCE_WAKEUP
        } else {
            RB_NO_WAKEUP
        }
    }
}

/// The scratch record with a fresh header of `kind`.
#[inline(always)]
fn scratch(k: u32) -> Option<*mut ScratchRecord> {
    let Some(rec) = SCRATCH.get_ptr_mut(0) else {
        bump(counter::SCRATCH_MISSING);
        return None;
    };
    // SAFETY: per-CPU map value, exclusively ours while this program runs on this CPU.
    unsafe {
        (*rec).header = EventHeader {
            kind: k,
            // SAFETY: helper without preconditions.
            boot_ns: bpf_ktime_get_boot_ns(),
            actor_pid: bpf_get_current_pid_tgid() as u32,
            ..EventHeader::default()
        };
    }
    Some(rec)
}

#[btf_tracepoint(function = "sched_process_fork")]
pub fn sched_process_fork(ctx: BtfTracePointContext) -> u32 {
    let parent: u64 = ctx.arg(0);
    let child: u64 = ctx.arg(1);
    on_fork(parent, child);
    0
}

#[inline(always)]
fn on_fork(parent: u64, child: u64) {
    // A new thread shares its creator's thread group: not a process fork.
    let (Ok(ptgid), Ok(ctgid)) = (
        rd::<u32>(parent, off!(task_tgid)),
        rd::<u32>(child, off!(task_tgid)),
    ) else {
        return;
    };
    if ptgid == ctgid {
        return;
    }
    let Some(rec) = scratch(kind::FORK) else {
        return;
    };
    // SAFETY: see `scratch`.
    let (h, data) = unsafe { (&mut (*rec).header, (*rec).data.as_mut_ptr()) };
    let mut cur = fill_task(h, data, 0, child);
    match rdp(child, off!(task_mm)) {
        Ok(mm) => cur = fill_exe(h, data, cur, child, mm),
        Err(_) => h.flags |= flags::NO_MM,
    }
    submit(rec, cur, counter::SENT_FORK, counter::LOST_FORK);
}

#[btf_tracepoint(function = "sched_process_exec")]
pub fn sched_process_exec(ctx: BtfTracePointContext) -> u32 {
    let task: u64 = ctx.arg(0);
    let bprm: u64 = ctx.arg(2);
    on_exec(task, bprm);
    0
}

#[inline(always)]
fn on_exec(task: u64, bprm: u64) {
    let Some(rec) = scratch(kind::EXEC) else {
        return;
    };
    // SAFETY: see `scratch`.
    let (h, data) = unsafe { (&mut (*rec).header, (*rec).data.as_mut_ptr()) };
    let filename = rdp(bprm, off!(binprm_filename)).unwrap_or(0);
    let n = put_kstr::<FILENAME_MAX>(data, 0, filename);
    if n == FILENAME_MAX {
        h.flags |= flags::FILENAME_TRUNCATED;
        bump(counter::FILENAME_TRUNCATED);
    }
    h.filename_len = n as u16;
    let mut cur = fill_task(h, data, n, task);
    match rdp(task, off!(task_mm)) {
        Ok(mm) => {
            cur = fill_exe(h, data, cur, task, mm);
            if tuning!(capture_argv) != 0 {
                cur = fill_argv(h, data, cur, mm);
            }
        }
        Err(_) => h.flags |= flags::NO_MM,
    }
    submit(rec, cur, counter::SENT_EXEC, counter::LOST_EXEC);
}

#[btf_tracepoint(function = "sched_process_exit")]
pub fn sched_process_exit(ctx: BtfTracePointContext) -> u32 {
    let task: u64 = ctx.arg(0);
    // `group_dead` is the tracepoint's own verdict (kernel >= 6.16); older kernels only
    // have `signal->live`, which reaches 0 once the last thread has started exiting.
    let group_dead = if off!(exit_has_group_dead) == 1 {
        let g: u64 = ctx.arg(1);
        g & 0xff != 0
    } else {
        match rdp(task, off!(task_signal)).and_then(|s| rd::<u32>(s, off!(signal_live))) {
            Ok(live) => live == 0,
            Err(_) => false,
        }
    };
    if group_dead {
        on_exit(task);
    }
    0
}

#[inline(always)]
fn on_exit(task: u64) {
    let Some(rec) = scratch(kind::EXIT) else {
        return;
    };
    // SAFETY: see `scratch`.
    let (h, data) = unsafe { (&mut (*rec).header, (*rec).data.as_mut_ptr()) };
    let cur = fill_task(h, data, 0, task);
    // The wait status: the group's code when the group exits as a whole (exit_group, fatal
    // signal, or — since 5.17 — the last thread), else this task's own code.
    let group = rdp(task, off!(task_signal))
        .and_then(|s| rd::<u32>(s, off!(signal_group_exit_code)))
        .unwrap_or(0);
    h.exit_status = if group != 0 {
        group
    } else {
        rd::<u32>(task, off!(task_exit_code)).unwrap_or(0)
    };
    submit(rec, cur, counter::SENT_EXIT, counter::LOST_EXIT);
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}
