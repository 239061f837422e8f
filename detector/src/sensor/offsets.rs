//! Computes the [`Offsets`] block from the running kernel's BTF.
//!
//! Every offset the programs use comes from here; nothing is hard-coded. A field the
//! kernel lacks is a named error for the fields the sensor cannot work without, and
//! [`MISSING`] (the programs then leave the value zero and flag it) for optional ones.

use detector_common::{MISSING, Offsets};

use super::btf::{Btf, BtfError};

/// Reads the offsets the programs need from `btf`.
pub fn compute(btf: &Btf) -> Result<Offsets, BtfError> {
    let f = |ty: &str, path: &str| btf.offset_of(ty, path);
    // Optional fields: a missing one degrades a value, never the sensor.
    let opt = |ty: &str, paths: &[&str]| btf.offset_of_any(ty, paths).unwrap_or(MISSING);
    let sid = btf.enum_value("pid_type", "PIDTYPE_SID").ok();
    let signal_sid_pid = match (sid, btf.offset_of("signal_struct", "pids")) {
        (Some(sid), Ok(pids)) if (0..16).contains(&sid) => pids + 8 * sid as u32,
        _ => MISSING,
    };
    let pgid = btf.enum_value("pid_type", "PIDTYPE_PGID").ok();
    let signal_pgid_pid = match (pgid, btf.offset_of("signal_struct", "pids")) {
        (Some(pgid), Ok(pids)) if (0..16).contains(&pgid) => pids + 8 * pgid as u32,
        _ => MISSING,
    };
    let exit_params = btf.typedef_fn_params("btf_trace_sched_process_exit")?;
    Ok(Offsets {
        task_pid: f("task_struct", "pid")?,
        task_tgid: f("task_struct", "tgid")?,
        task_real_parent: f("task_struct", "real_parent")?,
        task_group_leader: f("task_struct", "group_leader")?,
        task_comm: f("task_struct", "comm")?,
        task_real_cred: f("task_struct", "real_cred")?,
        task_mm: f("task_struct", "mm")?,
        task_fs: f("task_struct", "fs")?,
        task_cgroups: f("task_struct", "cgroups")?,
        task_signal: f("task_struct", "signal")?,
        task_nsproxy: f("task_struct", "nsproxy")?,
        task_thread_pid: f("task_struct", "thread_pid")?,
        task_start_boottime: btf
            .offset_of_any("task_struct", &["start_boottime", "real_start_time"])?,
        task_exit_code: f("task_struct", "exit_code")?,
        cred_uid: f("cred", "uid")?,
        cred_gid: f("cred", "gid")?,
        cred_euid: f("cred", "euid")?,
        cred_egid: f("cred", "egid")?,
        mm_exe_file: f("mm_struct", "exe_file")?,
        mm_arg_start: f("mm_struct", "arg_start")?,
        mm_arg_end: f("mm_struct", "arg_end")?,
        file_path_mnt: f("file", "f_path.mnt")?,
        file_path_dentry: f("file", "f_path.dentry")?,
        fs_root_mnt: f("fs_struct", "root.mnt")?,
        fs_root_dentry: f("fs_struct", "root.dentry")?,
        dentry_parent: f("dentry", "d_parent")?,
        dentry_name: f("dentry", "d_name.name")?,
        mount_mnt: f("mount", "mnt")?,
        mount_parent: f("mount", "mnt_parent")?,
        mount_mountpoint: f("mount", "mnt_mountpoint")?,
        vfsmount_root: f("vfsmount", "mnt_root")?,
        css_set_dfl_cgrp: f("css_set", "dfl_cgrp")?,
        cgroup_kn: f("cgroup", "kn")?,
        kernfs_id: f("kernfs_node", "id")?,
        kernfs_name: f("kernfs_node", "name")?,
        // Renamed to `__parent` in 6.15 (RCU-protected accessor).
        kernfs_parent: opt("kernfs_node", &["__parent", "parent"]),
        signal_live: f("signal_struct", "live")?,
        signal_group_exit_code: f("signal_struct", "group_exit_code")?,
        signal_tty: opt("signal_struct", &["tty"]),
        signal_sid_pid,
        signal_pgid_pid,
        tty_driver: opt("tty_struct", &["driver"]),
        tty_index: opt("tty_struct", &["index"]),
        tty_driver_major: opt("tty_driver", &["major"]),
        tty_driver_minor_start: opt("tty_driver", &["minor_start"]),
        pid_level: f("pid", "level")?,
        pid_numbers: f("pid", "numbers")?,
        upid_size: btf.struct_size("upid")?,
        upid_nr: f("upid", "nr")?,
        upid_ns: f("upid", "ns")?,
        pid_ns_inum: opt("pid_namespace", &["ns.inum"]),
        nsproxy_mnt_ns: opt("nsproxy", &["mnt_ns"]),
        mnt_ns_inum: opt("mnt_namespace", &["ns.inum"]),
        binprm_filename: f("linux_binprm", "filename")?,
        // (void *ctx, task, group_dead) since 6.16; (void *ctx, task) before.
        exit_has_group_dead: u32::from(exit_params >= 3),
        fs_pwd_mnt: opt("fs_struct", &["pwd.mnt"]),
        fs_pwd_dentry: opt("fs_struct", &["pwd.dentry"]),
        mm_env_start: opt("mm_struct", &["env_start"]),
        mm_env_end: opt("mm_struct", &["env_end"]),
        cred_cap_effective: opt("cred", &["cap_effective"]),
        cred_cap_permitted: opt("cred", &["cap_permitted"]),
    })
}

/// Names of the optional fields this kernel lacks (their values will be zero or absent).
pub fn missing_optional(o: &Offsets) -> Vec<&'static str> {
    [
        ("kernfs_node.parent (cgroup parent name)", o.kernfs_parent),
        ("signal_struct.tty (tty)", o.signal_tty),
        (
            "signal_struct.pids[PIDTYPE_SID] (session id)",
            o.signal_sid_pid,
        ),
        (
            "signal_struct.pids[PIDTYPE_PGID] (process group id)",
            o.signal_pgid_pid,
        ),
        ("tty_struct.driver (tty numbers)", o.tty_driver),
        ("tty_struct.index (tty minor)", o.tty_index),
        ("tty_driver.major (tty major)", o.tty_driver_major),
        (
            "tty_driver.minor_start (tty minor)",
            o.tty_driver_minor_start,
        ),
        ("pid_namespace.ns.inum (pid namespace)", o.pid_ns_inum),
        ("nsproxy.mnt_ns (mount namespace)", o.nsproxy_mnt_ns),
        ("mnt_namespace.ns.inum (mount namespace)", o.mnt_ns_inum),
        ("fs_struct.pwd (working directory)", o.fs_pwd_dentry),
        ("mm_struct.env_start (environment)", o.mm_env_start),
        ("cred.cap_effective (capabilities)", o.cred_cap_effective),
    ]
    .into_iter()
    .filter(|&(_, v)| v == MISSING)
    .map(|(name, _)| name)
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// On a machine with kernel BTF, every required offset resolves and the well-known
    /// layout facts hold (arg_start inside an anonymous member on 6.x, etc.).
    #[test]
    fn host_kernel_offsets_resolve() {
        use crate::testsupport::{Need, require};
        let vmlinux = "/sys/kernel/btf/vmlinux";
        if !require(
            "sensor::offsets::tests::host_kernel_offsets_resolve",
            &[Need::Path(vmlinux)],
        ) {
            return;
        }
        let data = std::fs::read(vmlinux).unwrap();
        let btf = Btf::parse(data).unwrap();
        let o = compute(&btf).unwrap();
        assert!(o.task_tgid > o.task_pid || o.task_tgid == o.task_pid + 4);
        assert!(o.mm_arg_end == o.mm_arg_start + 8);
        assert!(o.mm_env_end == o.mm_env_start + 8);
        assert_eq!(o.fs_pwd_dentry, o.fs_pwd_mnt + 8);
        assert_eq!(o.upid_nr, 0);
        assert_eq!(o.upid_size, 16);
        assert_ne!(o.kernfs_parent, MISSING);
        assert_ne!(o.signal_sid_pid, MISSING);
        assert_ne!(o.signal_pgid_pid, MISSING);
        assert_eq!(o.signal_pgid_pid + 8, o.signal_sid_pid);
        assert!(
            missing_optional(&o).is_empty(),
            "{:?}",
            missing_optional(&o)
        );
    }
}
