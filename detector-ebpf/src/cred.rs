//! Credential changes: two classic tracepoint programs on the `set*uid`, `set*gid` and
//! `setsid` syscalls (`detector_common::CRED_SYSCALLS`), attached only when the daemon's
//! `sensor.credential_events` is on.
//!
//! Why syscall tracepoints: this kernel has no kprobes or fentry (so no `commit_creds`
//! hook), and the raw `sys_exit` tracepoint would run on every syscall of every process.
//! The per-syscall tracepoints fire only on the syscalls watched.
//!
//! `cred_enter` notes the calling thread's ids (real and effective uid and gid, session id)
//! in [`CRED_BEFORE`], keyed by thread id; `cred_exit` takes the note back and, when the
//! syscall succeeded and an id differs, sends one record (`UID_CHANGE`, `GID_CHANGE` or
//! `SESSION_ID_CHANGE`) describing the task after the change — the same header fields
//! and cgroup names as an exit record. A successful call that changed nothing (`setuid` to
//! the current uid) is only counted (`CRED_UNCHANGED`). A thread whose note is missing (the
//! map was full, or the programs were attached while it was inside the syscall) is
//! reported as changed: userspace compares with its process model anyway (glibc applies
//! `setuid` to every thread of a process, one syscall each, and the model reports the
//! process's change once).

use aya_ebpf::{
    helpers::generated::{bpf_get_current_pid_tgid, bpf_get_current_task},
    macros::{map, tracepoint},
    maps::HashMap,
    programs::TracePointContext,
};
use detector_common::{SYSCALL_EXIT_RET_OFFSET, counter, kind};

use crate::{
    counters::bump,
    fill::fill_task,
    kernel::{Probe, Task},
    record::Record,
};

/// The ids a credential syscall may change, as noted on entry.
#[repr(C)]
#[derive(Clone, Copy, PartialEq, Eq)]
struct Ids {
    uid: u32,
    euid: u32,
    gid: u32,
    egid: u32,
    sid: u32,
}

/// Threads inside a watched syscall, by thread id. Bounded: a thread that finds the map full
/// is reported as changed (see the module docs).
#[map]
static CRED_BEFORE: HashMap<u32, Ids> = HashMap::with_max_entries(8192, 0);

/// The current task (`bpf_get_current_task`: an untyped address to the verifier, so read
/// through the helper); `None` should not happen.
#[inline(always)]
fn current() -> Option<Task<Probe>> {
    // SAFETY: helper without preconditions.
    Task::from_arg(unsafe { bpf_get_current_task() })
}

/// The current thread id.
#[inline(always)]
fn tid() -> u32 {
    // SAFETY: helper without preconditions.
    unsafe { bpf_get_current_pid_tgid() as u32 }
}

/// The ids of `task` now; `None` when a read failed.
#[inline(always)]
fn ids(task: Task<Probe>) -> Option<Ids> {
    let cred = task.real_cred().ok()?;
    let sid = task
        .signal()
        .and_then(|s| s.sid_pid())
        .and_then(|p| p.upid0())
        .and_then(|u| u.nr())
        .ok()?;
    Some(Ids {
        uid: cred.uid().ok()?,
        euid: cred.euid().ok()?,
        gid: cred.gid().ok()?,
        egid: cred.egid().ok()?,
        sid,
    })
}

#[tracepoint]
pub fn cred_enter(_ctx: TracePointContext) -> u32 {
    if let Some(before) = current().and_then(ids) {
        // A full map leaves no note: the exit then reports the call as a change.
        let _ = CRED_BEFORE.insert(&tid(), &before, 0);
    }
    0
}

#[tracepoint]
pub fn cred_exit(ctx: TracePointContext) -> u32 {
    let tid = tid();
    // SAFETY: the map value is copied out before the entry is removed; only this thread
    // writes its own key.
    let before = unsafe { CRED_BEFORE.get(&tid) }.copied();
    if before.is_some() {
        let _ = CRED_BEFORE.remove(&tid);
    }
    // SAFETY: `ret` is a `long` at this offset of every `sys_exit_*` record (checked by the
    // daemon against the tracepoint's format); the helper bounds the read.
    let ret: i64 = match unsafe { ctx.read_at::<i64>(SYSCALL_EXIT_RET_OFFSET) } {
        Ok(r) => r,
        Err(_) => return 0,
    };
    if ret < 0 {
        return 0;
    }
    let Some(task) = current() else {
        return 0;
    };
    let kind = match (before, ids(task)) {
        (Some(b), Some(a)) => {
            if a.uid != b.uid || a.euid != b.euid {
                kind::UID_CHANGE
            } else if a.gid != b.gid || a.egid != b.egid {
                kind::GID_CHANGE
            } else if a.sid != b.sid {
                kind::SESSION_ID_CHANGE
            } else {
                bump(counter::CRED_UNCHANGED);
                return 0;
            }
        }
        // No note or unreadable ids: report the call; userspace compares every id with
        // its model and keeps only what changed. `setsid` returns the new session id
        // (> 0), the `set*id` calls 0.
        _ if ret > 0 => kind::SESSION_ID_CHANGE,
        _ => kind::UID_CHANGE,
    };
    let Some(mut rec) = Record::start(kind) else {
        return 0;
    };
    fill_task(&mut rec, task);
    rec.submit(counter::SENT_CRED, counter::LOST_CRED);
    0
}
