//! Exact alerts of the shipped SSH rule on real containers.

use std::collections::BTreeMap;
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use crate::containers::{PodmanContainer, RuncContainer};
use crate::daemon::{Daemon, Stopped};
use crate::{
    Need, args_of, assert_ecs, assert_ssh_rule, brief, docker_path, kubepods_path, require,
    runc_run, settle,
};

/// The programs each container runs, and the alerts the rule implies for each:
/// `process where container.id: "*" and event.type == "start" and event.action in ("fork",
/// "exec") and process.name: ("sshd", "ssh", "autossh")` matches every exec of a program
/// named so, and every fork whose child (a copy of its parent, same name) is named so.
///
/// - `ssh -V`, `sshd -t`: one exec each; neither forks.
/// - autossh: `/usr/bin/autossh` is a `#!/bin/sh` wrapper (its process is named `autossh`),
///   run with `AUTOSSH_PORT` set so it skips its random-port guessing (whose fork count
///   depends on which random ports are free). It then runs one pipeline,
///   `echo "$@" | egrep -q …`: two forks (a shell runs every pipeline element in its own
///   child), both still named `autossh` when forked → 2 fork alerts; the `egrep` exec is
///   named `egrep` → none. Finally it execs the real `/usr/lib/autossh/autossh -V` (named
///   `autossh`) in the same process → a second exec alert; `-V` prints and exits, no fork.
///   `env` (busybox) sets the variable and execs the wrapper: named `env`, no alert.
struct Program {
    argv: &'static [&'static str],
    /// (action, executable, args) → count.
    expect: &'static [(&'static str, &'static str, &'static [&'static str], usize)],
}

const SSH: Program = Program {
    argv: &["/usr/bin/ssh", "-V"],
    expect: &[("exec", "/usr/bin/ssh", &["/usr/bin/ssh", "-V"], 1)],
};
const SSHD: Program = Program {
    argv: &["/usr/sbin/sshd", "-t"],
    expect: &[("exec", "/usr/sbin/sshd", &["/usr/sbin/sshd", "-t"], 1)],
};
const AUTOSSH: Program = Program {
    argv: &["/bin/env", "AUTOSSH_PORT=20000", "/usr/bin/autossh", "-V"],
    expect: &[
        (
            "exec",
            "/usr/bin/autossh",
            &["/bin/sh", "/usr/bin/autossh", "-V"],
            1,
        ),
        (
            "fork",
            "/usr/bin/autossh",
            &["/bin/sh", "/usr/bin/autossh", "-V"],
            2,
        ),
        (
            "exec",
            "/usr/lib/autossh/autossh",
            &["/usr/lib/autossh/autossh", "-V"],
            1,
        ),
    ],
};

fn name_of(exe: &str) -> &str {
    exe.rsplit('/').next().unwrap()
}

/// Asserts that `container_id` got exactly the alerts `p` implies, with every field right.
fn assert_exact(s: &Stopped, container_id: &str, runtime: &str, p: &Program) {
    let got = s.alerts_for(container_id);
    let ctx = || {
        format!(
            "container {container_id} ran {:?}:\n{}",
            p.argv,
            brief(&got)
        )
    };
    let mut counts: BTreeMap<(String, String, Vec<String>), usize> = BTreeMap::new();
    for a in &got {
        assert_ssh_rule(a);
        assert_eq!(a["container"]["id"], container_id);
        assert_eq!(a["container"]["runtime"], runtime, "{}", ctx());
        let exe = a["process"]["executable"].as_str().unwrap_or("").to_owned();
        assert_eq!(a["process"]["name"], name_of(&exe), "{}", ctx());
        *counts
            .entry((
                a["event"]["action"].as_str().unwrap_or("").to_owned(),
                exe,
                args_of(a),
            ))
            .or_default() += 1;
    }
    let want: BTreeMap<(String, String, Vec<String>), usize> = p
        .expect
        .iter()
        .map(|(action, exe, args, n)| {
            (
                (
                    action.to_string(),
                    exe.to_string(),
                    args.iter().map(|s| s.to_string()).collect(),
                ),
                *n,
            )
        })
        .collect();
    assert_eq!(counts, want, "{}", ctx());
    // Forks are children of the process whose exec alerted; the second exec replaced it.
    let execs: Vec<&&Value> = got
        .iter()
        .filter(|a| a["event"]["action"] == "exec")
        .collect();
    let exec_pid = &execs[0]["process"]["pid"];
    assert!(
        execs.iter().all(|a| &a["process"]["pid"] == exec_pid),
        "{}",
        ctx()
    );
    for f in got.iter().filter(|a| a["event"]["action"] == "fork") {
        assert_eq!(&f["process"]["parent"]["pid"], exec_pid, "{}", ctx());
        assert_ne!(&f["process"]["pid"], exec_pid, "{}", ctx());
    }
}

/// ssh, sshd and autossh in runc containers (docker- and kubepods-style cgroup paths) and
/// in a podman container: exactly the alerts the rule implies, per container, and every
/// line of the alert file is JSON and valid ECS 9.4.
#[test]
fn ssh_programs_in_containers_give_exactly_the_implied_alerts() {
    if !require(
        "alerts::ssh_programs_in_containers_give_exactly_the_implied_alerts",
        &[Need::Root, Need::Tool("runc"), Need::Tool("podman")],
    ) {
        return;
    }
    let programs = [("ssh", &SSH), ("sshd", &SSHD), ("autossh", &AUTOSSH)];
    // Warm the shared rootfs and podman image before the daemon starts.
    crate::containers::podman_image().unwrap();
    let (podman, podman_id, _) = PodmanContainer::start(&["/bin/sleep", "120"]).unwrap();
    // Every match an alert: this test counts them.
    let (_config_dir, config) = crate::daemon::unsuppressed_config();
    let d = Daemon::start_with(crate::daemon::Opts {
        config: Some(config),
        ..crate::daemon::Opts::default()
    });
    let mut ran = vec![];
    for (label, p) in programs {
        let (path, id) = docker_path();
        runc_run(p.argv, &path);
        ran.push((format!("runc docker {label}"), id, "docker", p));
        let (path, id) = kubepods_path();
        runc_run(p.argv, &path);
        ran.push((format!("runc kubepods {label}"), id, "containerd", p));
    }
    // One podman container, each program by `podman exec` (runc exec: the process joins
    // the container's cgroup).
    for (_, p) in programs {
        let out = crate::wait::output_timeout(
            Command::new("podman")
                .arg("exec")
                .arg(&podman.name)
                .args(p.argv),
            crate::wait::CONTAINER,
            "podman exec",
        );
        assert!(out.status.success(), "podman exec {:?}: {out:?}", p.argv);
    }
    // Every alert is in before the daemon is stopped (the drain is tested elsewhere).
    let total: usize = programs
        .iter()
        .map(|(_, p)| p.expect.iter().map(|e| e.3).sum::<usize>())
        .sum();
    let got = d.wait_alerts(&podman_id, |a| a.len() >= total, Duration::from_secs(10));
    assert_eq!(
        got.len(),
        total,
        "podman: {}",
        brief(&got.iter().collect::<Vec<_>>())
    );
    // Every event before this point evaluated: an extra alert anywhere would be in.
    settle(&d, SSH.argv);
    let s = d.stop();
    assert!(
        s.status.success(),
        "{:?}\n{}",
        s.status,
        s.stderr.join("\n")
    );
    for (label, id, runtime, p) in &ran {
        eprintln!("checking {label}");
        assert_exact(&s, id, runtime, p);
    }
    // The podman container ran all three: its alerts are the union.
    let union: Vec<_> = [SSH, SSHD, AUTOSSH].iter().flat_map(|p| p.expect).collect();
    let got = s.alerts_for(&podman_id);
    for a in &got {
        assert_ssh_rule(a);
        assert_eq!(a["container"]["runtime"], "podman");
        assert_eq!(
            a["container"]["image"]["name"], "localhost/detector-test",
            "{a}"
        );
    }
    let mut counts: BTreeMap<(String, String), usize> = BTreeMap::new();
    for a in &got {
        *counts
            .entry((
                a["event"]["action"].as_str().unwrap().into(),
                a["process"]["executable"].as_str().unwrap().into(),
            ))
            .or_default() += 1;
    }
    let mut want: BTreeMap<(String, String), usize> = BTreeMap::new();
    for (action, exe, _, n) in union {
        *want
            .entry((action.to_string(), exe.to_string()))
            .or_default() += n;
    }
    assert_eq!(counts, want, "podman:\n{}", brief(&got));
    drop(podman);
    // The whole alert file (also other tests' alerts and loss reports) is ECS 9.4.
    assert_ecs(&s.docs);
}

/// sshd in a container forks for a real connection (client and server inside the
/// container's own network namespace, over its loopback): the fork alerts.
#[test]
fn sshd_forking_for_a_connection_alerts_on_the_fork() {
    if !require(
        "alerts::sshd_forking_for_a_connection_alerts_on_the_fork",
        &[Need::Root, Need::Tool("runc")],
    ) {
        return;
    }
    // Wait for the listener (port 2222 = 0x08AE in LISTEN state, 0A), connect once
    // (authentication fails in BatchMode: the connection alone makes sshd fork), stop.
    let script = "/usr/sbin/sshd -D -e -p 2222 & \
        for i in $(seq 100); do grep -q ':08AE 00000000:0000 0A' /proc/net/tcp && break; sleep 0.1; done; \
        /usr/bin/ssh -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null \
          -o ConnectTimeout=5 -p 2222 root@127.0.0.1 true; \
        kill %1; wait";
    // Every match an alert: this test counts them.
    let (_config_dir, config) = crate::daemon::unsuppressed_config();
    let d = Daemon::start_with(crate::daemon::Opts {
        config: Some(config),
        ..crate::daemon::Opts::default()
    });
    let (path, id) = docker_path();
    let mut c = RuncContainer::new(&["/bin/sh", "-c", script], Some(&path)).unwrap();
    let out = c.run().unwrap();
    let log = String::from_utf8_lossy(&out.stderr).into_owned();
    drop(c);
    d.wait_alerts(
        &id,
        |a| {
            a.iter()
                .any(|a| a["event"]["action"] == "fork" && a["process"]["name"] == "sshd")
        },
        Duration::from_secs(10),
    );
    let s = d.stop();
    assert!(s.status.success());
    let got = s.alerts_for(&id);
    let listener = got
        .iter()
        .find(|a| a["event"]["action"] == "exec" && args_of(a).contains(&"-D".to_owned()))
        .unwrap_or_else(|| panic!("no exec alert for sshd -D:\n{}\n{log}", brief(&got)));
    let forks: Vec<&&Value> = got
        .iter()
        .filter(|a| {
            a["event"]["action"] == "fork"
                && a["process"]["name"] == "sshd"
                && a["process"]["parent"]["pid"] == listener["process"]["pid"]
        })
        .collect();
    assert!(
        !forks.is_empty(),
        "no fork alert of the listening sshd:\n{}\nsshd log:\n{log}",
        brief(&got)
    );
    for f in &forks {
        assert_ssh_rule(f);
        assert_eq!(f["process"]["executable"], "/usr/sbin/sshd");
        assert_eq!(f["container"]["id"], id.as_str());
    }
    // The client alerted too (once: it does not fork).
    let clients: Vec<_> = got
        .iter()
        .filter(|a| a["process"]["name"] == "ssh")
        .collect();
    assert_eq!(clients.len(), 1, "{}", brief(&got));
    assert_ecs(&s.docs);
}

/// The same programs on the host give no alert (the rule wants a container); ssh-keygen in
/// a container gives none (not one of the rule's names), while ssh in that same container
/// still does (the daemon was watching).
#[test]
fn host_programs_and_ssh_keygen_give_no_alert() {
    if !require(
        "alerts::host_programs_and_ssh_keygen_give_no_alert",
        &[Need::Root, Need::Tool("runc")],
    ) {
        return;
    }
    let d = Daemon::start();
    let mut host_pids = vec![];
    for argv in [SSH.argv, SSHD.argv, AUTOSSH.argv] {
        let mut child = Command::new(argv[0])
            .args(&argv[1..])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        host_pids.push(child.id() as u64);
        crate::wait::wait_timeout(&mut child, crate::wait::TOOL, argv[0]);
    }
    // ssh-keygen from the host, bind-mounted (with a scratch dir for its key) at /root.
    let keydir = tempfile::tempdir().unwrap();
    std::fs::copy("/usr/bin/ssh-keygen", keydir.path().join("ssh-keygen")).unwrap();
    let (path, id) = docker_path();
    let mut c = RuncContainer::new(
        &[
            "/bin/sh",
            "-c",
            "/root/ssh-keygen -q -t ed25519 -N '' -f /root/key && test -s /root/key.pub && /usr/bin/ssh -V",
        ],
        Some(&path),
    )
    .unwrap();
    let src = keydir.path().to_string_lossy().into_owned();
    c.edit_config(|cfg| {
        cfg["mounts"]
            .as_array_mut()
            .unwrap()
            .push(serde_json::json!({
                "destination": "/root", "type": "bind", "source": src, "options": ["rbind", "rw"]
            }))
    })
    .unwrap();
    let out = c.run().unwrap();
    assert!(out.status.success(), "{out:?}");
    drop(c);
    assert!(
        keydir.path().join("key.pub").exists(),
        "ssh-keygen did not run"
    );
    d.wait_alerts(&id, |a| !a.is_empty(), Duration::from_secs(10));
    // Every event before this point evaluated (a host or ssh-keygen alert would be in).
    settle(&d, SSH.argv);
    let s = d.stop();
    assert!(s.status.success());
    let got = s.alerts_for(&id);
    assert_eq!(got.len(), 1, "{}", brief(&got));
    assert_eq!(got[0]["process"]["name"], "ssh");
    let keygen: Vec<&Value> = s
        .docs
        .iter()
        .filter(|d| d["process"]["name"] == "ssh-keygen")
        .collect();
    assert!(keygen.is_empty(), "{}", brief(&keygen));
    let from_host: Vec<&Value> = s
        .docs
        .iter()
        .filter(|d| {
            d["event"]["kind"] == "alert"
                && (host_pids.contains(&d["process"]["pid"].as_u64().unwrap_or(0))
                    || host_pids.contains(&d["process"]["parent"]["pid"].as_u64().unwrap_or(0)))
        })
        .collect();
    assert!(
        from_host.is_empty(),
        "host programs alerted:\n{}",
        brief(&from_host)
    );
    let without_container: Vec<&Value> = s
        .docs
        .iter()
        .filter(|d| d["event"]["kind"] == "alert" && d["container"]["id"].is_null())
        .collect();
    assert!(
        without_container.is_empty(),
        "alerts without a container:\n{}",
        brief(&without_container)
    );
    assert_ecs(&s.docs);
}
