//! The captures Elastic Defend's documents need beyond the process basics, each behind its
//! own [`detector_common::Tuning`] switch so its cost can be measured and turned off:
//! the working directory (`process.working_directory`), the environment
//! (`process.env_vars`, filtered by the daemon) and the capability sets
//! (`process.thread.capabilities.*`). No `unsafe` here.

use detector_common::{CWD_MAX, ENV_MAX, counter, flags};

use crate::{
    counters::bump,
    kernel::{Access, Dentry, Mm, Mount, Probe, R, Task, VfsMount},
    path::walk_path,
    record::Record,
};

/// Reads the task's effective and permitted capability sets into the header
/// (`HAS_CAPS`); leaves them zero when a read fails.
#[inline(always)]
pub fn fill_caps<A: Access>(rec: &mut Record, task: Task<A>) {
    let Ok(cred) = task.real_cred() else {
        return;
    };
    let (Ok(eff), Ok(prm)) = (cred.cap_effective(), cred.cap_permitted()) else {
        return;
    };
    let h = rec.header();
    h.cap_effective = eff;
    h.cap_permitted = prm;
    h.flags |= flags::HAS_CAPS;
}

/// Walks `fs->pwd` up to the task's root like the executable path (same encoding) and
/// appends it as the `cwd` section; sets `CWD_PARTIAL` when the walk stops early. Call
/// before argv (the walk's writes must start below `DATA_START_LIMIT`).
#[inline(always)]
pub fn fill_cwd<A: Access>(rec: &mut Record, task: Task<A>) {
    let start = rec.written();
    let complete = match cwd_start(task) {
        Ok((dentry, mount, root_dentry, root_mnt)) => {
            walk_path::<CWD_MAX>(rec, dentry, mount, root_dentry, root_mnt)
        }
        Err(_) => false,
    };
    if !complete {
        rec.flag(flags::CWD_PARTIAL);
        bump(counter::CWD_PARTIAL);
    } else if rec.written() == start {
        // The root itself: one empty component, which decodes as `/` (an empty section
        // means "not captured").
        rec.put_nul();
    }
    rec.header().cwd_len = (rec.written() - start) as u16;
}

/// Start of the cwd walk: (pwd dentry, its mount, root dentry, root vfsmount).
#[inline(always)]
fn cwd_start<A: Access>(
    task: Task<A>,
) -> R<(Dentry<Probe>, Mount<Probe>, Dentry<Probe>, VfsMount<Probe>)> {
    let fs = task.fs()?.probe();
    let dentry = fs.pwd_dentry()?;
    let mount = fs.pwd_mnt()?.mount()?;
    Ok((dentry, mount, fs.root_dentry()?, fs.root_mnt()?))
}

/// Appends the first `ENV_MAX` bytes of the current task's environment block as the
/// `env` section (after argv); sets `ENV_TRUNCATED` when more existed.
#[inline(always)]
pub fn fill_env<A: Access>(rec: &mut Record, mm: Mm<A>) {
    let (Ok(start), Ok(end)) = (mm.env_start(), mm.env_end()) else {
        rec.flag(flags::READ_ERROR);
        return;
    };
    if end <= start {
        return;
    }
    let mut len = end - start;
    if len > ENV_MAX as u64 {
        len = ENV_MAX as u64;
        rec.flag(flags::ENV_TRUNCATED);
        bump(counter::ENV_TRUNCATED);
    }
    match rec.put_user_env(start, len as u32) {
        Ok(n) => rec.header().env_len = n as u16,
        Err(_) => rec.flag(flags::READ_ERROR),
    }
}
