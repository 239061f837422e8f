//! detector's kernel side: three `tp_btf` programs on the scheduler's process tracepoints.
//!
//! Each program fills one per-CPU scratch record (header + packed data sections, see
//! `detector-common`) and copies the used part into the `EVENTS` ring buffer with
//! `bpf_ringbuf_output`, so a record costs the ring only the bytes it needs.
//!
//! - [`kernel`]: typed handles on kernel structs; every field is reached through an offset
//!   from the `OFFSETS` global, which the daemon computes from the running kernel's BTF
//!   before loading (Rust eBPF has no CO-RE), and each handle applies only its own struct's
//!   offsets.
//! - [`record`]: the record being built; the only writer of the scratch data area, and the
//!   ring buffer with its wake-up policy.
//! - [`fill`]: which fields and sections a record gets from a task; [`capture`]: the
//!   working directory, environment and capabilities, each behind a `Tuning` switch;
//!   [`path`]: the path walk `exe` and `cwd` share.
//! - [`counters`]: the per-CPU counters the daemon reports.
//!
//! Verifier notes: the scheduler programs read the fields of their BTF-typed arguments with
//! plain loads at `.rodata`-constant offsets, which the verifier checks against BTF
//! (`kernel::Direct`); everything else — strings, user memory, `container_of`, a pid's
//! number at a variable namespace level, the credential programs' current task — goes
//! through `bpf_probe_read_*` into memory we own, checking the return value
//! (`kernel::Probe`). Every variable write offset into the scratch data is compared
//! against `DATA_START_LIMIT` right before the read that uses it, and every variable length
//! against its maximum, so the verifier can bound each access.
#![no_std]
#![no_main]

mod capture;
mod counters;
mod cred;
mod fill;
mod kernel;
mod path;
mod record;

use aya_ebpf::{macros::btf_tracepoint, programs::BtfTracePointContext};
use detector_common::{FILENAME_MAX, counter, flags, kind};

use crate::{
    capture::{fill_caps, fill_cwd, fill_env},
    counters::bump,
    fill::{fill_argv, fill_exe, fill_task},
    kernel::{Binprm, Direct, Task, exit_has_group_dead},
    record::{Record, capture_argv, capture_caps, capture_cwd, capture_env},
};

#[btf_tracepoint(function = "sched_process_fork")]
pub fn sched_process_fork(ctx: BtfTracePointContext) -> u32 {
    if let (Some(parent), Some(child)) = (Task::from_arg(ctx.arg(0)), Task::from_arg(ctx.arg(1))) {
        on_fork(parent, child);
    }
    0
}

#[inline(always)]
fn on_fork(parent: Task<Direct>, child: Task<Direct>) {
    // A new thread shares its creator's thread group: not a process fork.
    let (Ok(ptgid), Ok(ctgid)) = (parent.tgid(), child.tgid()) else {
        return;
    };
    if ptgid == ctgid {
        return;
    }
    let Some(mut rec) = Record::start(kind::FORK) else {
        return;
    };
    fill_task(&mut rec, child);
    if capture_caps() {
        fill_caps(&mut rec, child);
    }
    match child.mm() {
        Ok(mm) => fill_exe(&mut rec, child, mm),
        Err(_) => rec.flag(flags::NO_MM),
    }
    rec.submit(counter::SENT_FORK, counter::LOST_FORK);
}

#[btf_tracepoint(function = "sched_process_exec")]
pub fn sched_process_exec(ctx: BtfTracePointContext) -> u32 {
    if let Some(task) = Task::from_arg(ctx.arg(0)) {
        on_exec(task, Binprm::from_arg(ctx.arg(2)));
    }
    0
}

#[inline(always)]
fn on_exec(task: Task<Direct>, bprm: Option<Binprm<Direct>>) {
    let Some(mut rec) = Record::start(kind::EXEC) else {
        return;
    };
    let n = match bprm.map(|b| b.filename()) {
        Some(Ok(filename)) => rec.put_kstr::<FILENAME_MAX, _>(filename),
        _ => 0,
    };
    if n == FILENAME_MAX {
        rec.flag(flags::FILENAME_TRUNCATED);
        bump(counter::FILENAME_TRUNCATED);
    }
    rec.header().filename_len = n as u16;
    fill_task(&mut rec, task);
    if capture_caps() {
        fill_caps(&mut rec, task);
    }
    match task.mm() {
        Ok(mm) => {
            fill_exe(&mut rec, task, mm);
            if capture_cwd() {
                fill_cwd(&mut rec, task);
            }
            if capture_argv() {
                fill_argv(&mut rec, mm);
            }
            if capture_env() {
                fill_env(&mut rec, mm);
            }
        }
        Err(_) => rec.flag(flags::NO_MM),
    }
    rec.submit(counter::SENT_EXEC, counter::LOST_EXEC);
}

#[btf_tracepoint(function = "sched_process_exit")]
pub fn sched_process_exit(ctx: BtfTracePointContext) -> u32 {
    let Some(task) = Task::<Direct>::from_arg(ctx.arg(0)) else {
        return 0;
    };
    // `group_dead` is the tracepoint's own verdict (kernel >= 6.16); older kernels only
    // have `signal->live`, which reaches 0 once the last thread has started exiting.
    let group_dead = if exit_has_group_dead() {
        let g: u64 = ctx.arg(1);
        g & 0xff != 0
    } else {
        match task.signal().and_then(|s| s.live()) {
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
fn on_exit(task: Task<Direct>) {
    let Some(mut rec) = Record::start(kind::EXIT) else {
        return;
    };
    fill_task(&mut rec, task);
    // The wait status: the group's code when the group exits as a whole (exit_group, fatal
    // signal, or — since 5.17 — the last thread), else this task's own code.
    let group = task.signal().and_then(|s| s.group_exit_code()).unwrap_or(0);
    rec.header().exit_status = if group != 0 {
        group
    } else {
        task.exit_code().unwrap_or(0)
    };
    rec.submit(counter::SENT_EXIT, counter::LOST_EXIT);
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}
