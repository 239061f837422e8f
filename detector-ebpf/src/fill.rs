//! What goes into a record: the header fields and data sections read from a task.
//!
//! Each `fill_*` reads kernel objects through their typed handles ([`crate::kernel`]) and
//! writes through the [`Record`] (header fields and appended sections), in the section order
//! `detector-common` defines. No `unsafe` here.

use detector_common::{
    ARGV_MAX, CGROUP_DEPTH_MAX, CGROUP_NAME_MAX, CGROUP_PATH_MAX, EXE_MAX, counter, flags,
};

use crate::{
    counters::bump,
    kernel::{Access, Dentry, Mm, Mount, Probe, R, Task, VfsMount},
    path::walk_path,
    record::Record,
};

/// Fills the header fields that describe `task` (ids, creds, comm, namespaces, tty, session,
/// start time, cgroup) and appends the cgroup path. A failed read of a field every task
/// has sets `READ_ERROR`.
#[inline(always)]
pub fn fill_task<A: Access>(rec: &mut Record, task: Task<A>) {
    let mut req = Required::new();
    let h = rec.header();
    h.pid = req.take(task.pid());
    h.tgid = req.take(task.tgid());
    h.ppid = req.take(task.real_parent().and_then(|p| p.tgid()));
    match task.real_cred() {
        Ok(cred) => {
            h.uid = req.take(cred.uid());
            h.gid = req.take(cred.gid());
            h.euid = req.take(cred.euid());
            h.egid = req.take(cred.egid());
        }
        Err(_) => req.fail(),
    }
    h.comm = req.take(task.comm());
    // Leader: start time and the namespace-local tgid.
    let leader = task.group_leader().unwrap_or(task);
    h.start_boot_ns = req.take(leader.start_boottime());
    req.take(fill_pid_ns(rec, leader));
    let h = rec.header();
    if let Ok(mnt_ns) = task.nsproxy().and_then(|n| n.mnt_ns()) {
        h.mnt_ns_ino = mnt_ns.inum().unwrap_or(0);
    }
    match task.signal() {
        Ok(signal) => {
            // The session leader's global pid number (`numbers[0].nr`).
            if let Ok(sid) = signal.sid_pid().and_then(|p| p.upid0()) {
                h.sid = sid.nr().unwrap_or(0);
            }
            // The process group's, likewise (0 when unreadable: the daemon then reads it
            // from /proc as before).
            if let Ok(pgid) = signal.pgid_pid().and_then(|p| p.upid0()) {
                h.pgid = pgid.nr().unwrap_or(0);
            }
            if let Ok(tty) = signal.tty() {
                let index = tty.index().unwrap_or(0);
                if let Ok(driver) = tty.driver() {
                    h.tty_major = driver.major().unwrap_or(0);
                    h.tty_minor = driver.minor_start().unwrap_or(0).wrapping_add(index);
                }
                h.flags |= flags::HAS_TTY;
            }
        }
        Err(_) => req.fail(),
    }
    fill_cgroup(rec, task);
    rec.flag(req.flags());
}

/// pid namespace inode and namespace-local pid of `leader` (its `thread_pid` at its level).
#[inline(always)]
fn fill_pid_ns<A: Access>(rec: &mut Record, leader: Task<A>) -> R<()> {
    let pid = leader.thread_pid()?;
    let level = pid.level()?;
    // Level 0 (the initial namespace) is a constant offset, read like the task; a deeper
    // level is an index the verifier cannot bound as an offset, read through the helper.
    let (nr, ino) = if level == 0 {
        let upid = pid.upid0()?;
        (upid.nr()?, upid.ns()?.inum()?)
    } else {
        let upid = pid.upid(level)?;
        (upid.nr()?, upid.ns()?.inum()?)
    };
    rec.header().ns_pid = nr;
    rec.header().pid_ns_ino = ino;
    Ok(())
}

/// cgroup v2 id and the whole path of `task`'s default-hierarchy cgroup: the kernfs node's
/// names up to the root, leaf first, each NUL-terminated (the root cgroup itself: no
/// component). Read here, at the event, so the first exec in a new container is attributed
/// with no race and a cgroup removed before userspace looks still resolves. Sets
/// `CGROUP_TRUNCATED` (and bumps its counter) when the walk stops before the root.
#[inline(always)]
fn fill_cgroup<A: Access>(rec: &mut Record, task: Task<A>) {
    let Ok(kn) = task
        .cgroups()
        .and_then(|css| css.dfl_cgrp())
        .and_then(|cg| cg.kn())
    else {
        rec.flag(flags::NO_CGROUP);
        return;
    };
    rec.header().cgroup_id = kn.id().unwrap_or(0);
    let start = rec.written();
    let mut node = kn;
    let mut complete = false;
    let mut i = 0u32;
    while i <= CGROUP_DEPTH_MAX {
        i += 1;
        rec.settle_cursor();
        let parent = match node.parent() {
            Ok(Some(parent)) => parent,
            // The root: its name is not part of the path.
            Ok(None) => {
                complete = true;
                break;
            }
            Err(_) => break,
        };
        if i > CGROUP_DEPTH_MAX || rec.written() - start > CGROUP_PATH_MAX - CGROUP_NAME_MAX {
            break;
        }
        let Ok(name) = node.name() else {
            break;
        };
        // kernfs names of cgroups are at most NAME_MAX bytes, so CGROUP_NAME_MAX holds
        // any of them whole.
        if rec.put_kstr::<CGROUP_NAME_MAX, _>(name) == 0 {
            break;
        }
        node = parent;
    }
    if !complete {
        rec.flag(flags::CGROUP_TRUNCATED);
        bump(counter::CGROUP_TRUNCATED);
    }
    rec.header().cgroup_path_len = (rec.written() - start) as u16;
}

/// Walks `mm->exe_file->f_path` up to the task's root (`fs->root`), crossing mounts, and
/// appends the components leaf first, each NUL-terminated. Sets `EXE_PARTIAL` when it
/// cannot reach the root within its bounds.
#[inline(always)]
pub fn fill_exe<A: Access>(rec: &mut Record, task: Task<A>, mm: Mm<A>) {
    let start = rec.written();
    let complete = match exe_start(task, mm) {
        Ok((dentry, mount, root_dentry, root_mnt)) => {
            walk_path::<EXE_MAX>(rec, dentry, mount, root_dentry, root_mnt)
        }
        Err(_) => false,
    };
    if !complete {
        rec.flag(flags::EXE_PARTIAL);
        bump(counter::EXE_PARTIAL);
    }
    rec.header().exe_len = (rec.written() - start) as u16;
}

/// Start of the exe walk: (dentry, its mount, root dentry, root vfsmount), all read
/// through the helper from here on (the walk reaches mounts by `container_of`).
#[inline(always)]
fn exe_start<A: Access>(
    task: Task<A>,
    mm: Mm<A>,
) -> R<(Dentry<Probe>, Mount<Probe>, Dentry<Probe>, VfsMount<Probe>)> {
    let file = mm.exe_file()?.probe();
    let dentry = file.path_dentry()?;
    let mount = file.path_mnt()?.mount()?;
    let fs = task.fs()?.probe();
    Ok((dentry, mount, fs.root_dentry()?, fs.root_mnt()?))
}

/// Appends the first `ARGV_MAX` bytes of the current task's argument block.
#[inline(always)]
pub fn fill_argv<A: Access>(rec: &mut Record, mm: Mm<A>) {
    let (Ok(start), Ok(end)) = (mm.arg_start(), mm.arg_end()) else {
        rec.flag(flags::READ_ERROR);
        return;
    };
    if end <= start {
        return;
    }
    let mut len = end - start;
    if len > ARGV_MAX as u64 {
        len = ARGV_MAX as u64;
        rec.flag(flags::ARGV_TRUNCATED);
        bump(counter::ARGV_TRUNCATED);
    }
    match rec.put_user(start, len as u32) {
        Ok(n) => rec.header().argv_len = n as u16,
        Err(_) => rec.flag(flags::READ_ERROR),
    }
}

/// Tracks the reads a record depends on: [`Required::take`] yields a read's value, or the
/// default after noting the failure, so a record can say it has zeroed fields
/// (`flags::READ_ERROR`) without aborting at the first failed read.
///
/// The note is the flag bit itself, ORed into the header without a branch: a branch on a
/// known 0/1 "ok" value makes the verifier track it precisely, which splits its states on
/// every combination of failed reads.
struct Required {
    flags: u32,
}

impl Required {
    #[inline(always)]
    fn new() -> Self {
        Required { flags: 0 }
    }

    /// Notes that a required read failed.
    #[inline(always)]
    fn fail(&mut self) {
        self.flags = flags::READ_ERROR;
    }

    /// The value of `read`, or `T::default()` after noting that a required read failed.
    #[inline(always)]
    fn take<T: Default>(&mut self, read: R<T>) -> T {
        match read {
            Ok(v) => v,
            Err(_) => {
                self.fail();
                T::default()
            }
        }
    }

    /// `flags::READ_ERROR` if a required read failed, else 0.
    #[inline(always)]
    fn flags(&self) -> u32 {
        self.flags
    }
}
