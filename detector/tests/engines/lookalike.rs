//! Host processes in cgroups that look like containers but are not: a host service with a
//! 64-hex sub-cgroup, CRI-O's and podman's container monitors (`crio-conmon-<id>.scope`,
//! `libpod-conmon-<id>.scope`, `/libpod_parent/conmon`), and the engines' own service
//! cgroups. `ssh -V` there gives NO alert; the same procedure at a docker container's
//! cgroup path does (the control: the method can tell the two apart).

use std::ffi::CString;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

use detector::testsupport::{Need, require};

use crate::common::CgroupGuard;
use crate::containers::hex_id;
use crate::{Checks, alerts_of_pid, settle, wait};

/// Runs `/usr/bin/ssh -V` as a host process that moves itself into cgroup `rel` (relative to
/// the cgroup v2 root) between fork and exec, so its only exec happens there. Returns its
/// pid once it has exited.
fn ssh_in_cgroup(rel: &str) -> u32 {
    let procs = crate::containers::cgroup2_root()
        .join(rel)
        .join("cgroup.procs");
    let path = CString::new(procs.to_string_lossy().into_owned()).unwrap();
    let mut cmd = Command::new("/usr/bin/ssh");
    cmd.arg("-V").stdout(Stdio::null()).stderr(Stdio::null());
    // SAFETY: the hook runs in the forked child before exec and only makes
    // async-signal-safe calls (open, write, close) on a path allocated before the fork;
    // writing "0" to cgroup.procs moves the writing process itself.
    unsafe {
        cmd.pre_exec(move || {
            let fd = libc::open(path.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
            if fd < 0 {
                return Err(std::io::Error::last_os_error());
            }
            let n = libc::write(fd, b"0".as_ptr().cast(), 1);
            let err = std::io::Error::last_os_error();
            libc::close(fd);
            if n == 1 { Ok(()) } else { Err(err) }
        });
    }
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("ssh -V in {rel}: {e}"));
    let pid = child.id();
    let st = wait::wait_timeout(&mut child, wait::TOOL, "ssh -V in a hand-made cgroup");
    assert!(st.success(), "ssh -V in {rel}: {st:?}");
    pid
}

#[test]
fn host_processes_in_look_alike_cgroups_give_no_alert() {
    if !require(
        "lookalike::host_processes_in_look_alike_cgroups_give_no_alert",
        &[Need::Root, Need::Tool("runc")],
    ) {
        return;
    }
    let hex = hex_id();
    let lookalikes = [
        // A host service that made a sub-cgroup named like a container id.
        format!(
            "system.slice/dte-{}-backup.service/{hex}",
            std::process::id()
        ),
        // CRI-O's container monitor (conmon), a host process.
        format!("system.slice/crio-conmon-{hex}.scope"),
        // podman's container monitor under systemd, and under cgroupfs.
        format!("machine.slice/libpod-conmon-{hex}.scope"),
        "libpod_parent/conmon".to_string(),
        // The engines' own daemons.
        "system.slice/docker.service".to_string(),
        "system.slice/containerd.service".to_string(),
    ];
    let control_id = hex_id();
    let control = format!("docker/{control_id}");
    let (_config, d) = crate::start_daemon(&Default::default());
    let mut ran = vec![];
    for rel in lookalikes.iter().chain([&control]) {
        let guard = CgroupGuard::new(rel).unwrap();
        ran.push((rel.clone(), ssh_in_cgroup(rel)));
        drop(guard);
    }
    let control_pid = ran.last().unwrap().1;
    let mut checks = Checks::default();
    let got = d.wait_alerts(&control_id, |a| !a.is_empty(), crate::ALERT_BOUND);
    checks.check(
        got.iter().any(|a| a["process"]["pid"] == control_pid),
        || {
            format!(
                "control: no alert for ssh -V (pid {control_pid}) at /{control}; {}",
                crate::ssh_alerts_seen(&d)
            )
        },
    );
    settle(&d);
    let s = d.stop();
    assert!(s.status.success(), "daemon exit: {:?}", s.status);
    for (rel, pid) in &ran[..ran.len() - 1] {
        let got = alerts_of_pid(&s.docs, *pid);
        checks.check(got.is_empty(), || {
            format!(
                "host ssh -V in look-alike cgroup /{rel} (pid {pid}) alerted:\n{}",
                got.iter()
                    .map(|a| crate::brief(a))
                    .collect::<Vec<_>>()
                    .join("\n")
            )
        });
    }
    checks.finish();
}
