//! Container identity from the whole cgroup path, end to end: `detector run` on the SHIPPED
//! config (its SSH-in-a-container rule), and processes put by hand into cgroups laid out as
//! the runtimes lay them out (`mkdir` under the cgroup v2 root, `echo $pid > cgroup.procs`),
//! then exec'ing the host's `ssh -V`. Hand-made cgroups make each case exact and fast; the
//! real engines are exercised by the container suites.
//!
//! - a process that moves into a container's cgroup and then execs is in that container,
//!   and one that moves out of it and then execs is not (the document's cgroup is the one
//!   of the exec's own kernel record);
//! - a process three levels below a container's cgroup belongs to the container, and
//!   containerd's own layouts (`/default/<name>`, `/k8s.io/<64hex>`) are recognised;
//! - host cgroups named like containers (runtime monitors, look-alike units) give none;
//! - a cgroup removed before the daemon read the exec's record still resolves;
//! - a process in new pid and mount namespaces but in no container (`unshare -pf
//!   --mount-proc`) gets no `container.*` (so the rule does not fire), while its document
//!   still shows its namespaces.
//!
//! Root tests, gated by [`detector::testsupport::require`]; run them under the machine's
//! e2e lock, one at a time (`--test-threads=1`).

mod common;
#[path = "common/daemon.rs"]
mod daemon;
#[path = "common/wait.rs"]
mod wait;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{CgroupGuard, Trace, release};
use daemon::Daemon;
use detector::testsupport::{Need, require};
use serde_json::Value;

/// Bound on an expected alert (a hang guard: alerts arrive in milliseconds here).
const ALERT_BOUND: Duration = Duration::from_secs(30);

const PREREQS: &[Need] = &[Need::Root, Need::Tool("ssh"), Need::Tool("sh")];

/// A 64-hex id unique to this run and call.
fn hex64() -> String {
    use sha2::Digest;
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let seed = format!(
        "{}-{}-{:?}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed),
        std::time::SystemTime::now()
    );
    sha2::Sha256::digest(seed.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A short name unique to this run and call (a containerd id, an LXC or machine name).
fn name(prefix: &str) -> String {
    format!("{prefix}-{}", &hex64()[..12])
}

/// `sh` waiting for one line per step on stdin; each step is a `read` followed by the
/// shell text of the step (the last one should `exec`).
fn stepped_shell(steps: &[&str]) -> Child {
    let script: String = steps.iter().map(|s| format!("read _; {s}\n")).collect();
    Command::new("sh")
        .arg("-c")
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawning sh")
}

/// Runs `ssh -V <marker>` with its exec inside cgroup `cg` (moved there before the exec);
/// returns its pid.
fn ssh_in(cg: &CgroupGuard, marker: &str) -> u32 {
    let mut child = stepped_shell(&[&format!("exec ssh -V {marker}")]);
    let pid = child.id();
    cg.add(pid).expect("moving the shell into the test cgroup");
    release(&mut child, "go\n");
    wait::wait_timeout(&mut child, wait::TOOL, "ssh -V");
    pid
}

/// The cgroup this test runs in (a host cgroup), root-relative.
fn own_cgroup() -> String {
    let text = std::fs::read_to_string("/proc/self/cgroup").unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix("0::"))
        .expect("a cgroup v2 line")
        .to_string()
}

/// A guard for the cgroup the test already runs in (nothing created, nothing removed).
fn own_cgroup_guard() -> CgroupGuard {
    CgroupGuard::new(own_cgroup().trim_start_matches('/')).unwrap()
}

/// Alerts of the daemon whose `process.args` contain `marker`.
fn alerts_with(d: &Daemon, marker: &str) -> Vec<Value> {
    d.docs()
        .into_iter()
        .filter(|a| a["event"]["kind"] == "alert" && has_arg(a, marker))
        .collect()
}

fn has_arg(doc: &Value, marker: &str) -> bool {
    doc["process"]["args"]
        .as_array()
        .is_some_and(|a| a.iter().any(|x| x == marker))
}

/// A barrier on the daemon's event stream: `ssh -V` in a fresh docker-style cgroup, and its
/// alert waited for. Events are evaluated in the kernel's order, so once it is written
/// every earlier event has been evaluated too.
fn settle(d: &Daemon) {
    let id = hex64();
    let cg = CgroupGuard::new(&format!("docker/{id}")).unwrap();
    let marker = name("settle");
    ssh_in(&cg, &marker);
    let got = d.wait_alerts(&id, |a| !a.is_empty(), ALERT_BOUND);
    assert!(!got.is_empty(), "barrier: no alert for ssh in /docker/{id}");
}

/// Waits for the one alert carrying `marker` and checks it names `container_id`.
fn expect_alert(d: &Daemon, marker: &str, container_id: &str, runtime: &str) -> Value {
    let got = d.wait_alerts(
        container_id,
        |a| a.iter().any(|x| has_arg(x, marker)),
        ALERT_BOUND,
    );
    let mine: Vec<&Value> = got.iter().filter(|a| has_arg(a, marker)).collect();
    assert_eq!(
        mine.len(),
        1,
        "one alert for {marker} in {container_id}: {mine:#?}\nall with marker: {:#?}",
        alerts_with(d, marker)
    );
    let a = mine[0].clone();
    assert_eq!(a["rule"]["id"], daemon::SSH_RULE_ID, "{a}");
    assert_eq!(a["container"]["id"], container_id, "{a}");
    assert_eq!(a["container"]["runtime"], runtime, "{a}");
    assert_eq!(a["process"]["name"], "ssh", "{a}");
    a
}

/// The stale-cgroup case: a process exec'd in one cgroup, moved to another, exec'd again.
/// Its new exec's document must carry the new cgroup (and container), both ways.
#[test]
fn moving_then_exec_takes_the_new_cgroup() {
    if !require("moving_then_exec_takes_the_new_cgroup", PREREQS) {
        return;
    }
    let d = Daemon::start();
    let host = own_cgroup_guard();

    // Host → container: sh exec'd on the host, moved into /docker/<id>, then exec's ssh.
    let id = hex64();
    let cg = CgroupGuard::new(&format!("docker/{id}")).unwrap();
    let into = name("into");
    let mut child = stepped_shell(&[&format!("exec ssh -V {into}")]);
    // Let the shell's own exec be seen on the host first (its document: no container).
    std::thread::sleep(Duration::from_millis(100));
    cg.add(child.id()).unwrap();
    release(&mut child, "go\n");
    wait::wait_timeout(&mut child, wait::TOOL, "ssh -V");
    let a = expect_alert(&d, &into, &id, "docker");
    assert_eq!(
        a["detector"]["cgroup"]["path"],
        format!("/docker/{id}"),
        "{a}"
    );
    assert_eq!(a["detector"]["cgroup"]["id"], cg.id(), "{a}");

    // Container → host: a shell exec'd in the container (`exec sh`, its document says the
    // container), moved back to the host's cgroup, then exec's ssh: no container, no alert.
    let id2 = hex64();
    let cg2 = CgroupGuard::new(&format!("docker/{id2}")).unwrap();
    let out = name("out");
    let mut child = stepped_shell(&[&format!("exec sh -c 'read _; exec ssh -V {out}'")]);
    let pid = child.id();
    cg2.add(pid).unwrap();
    release(&mut child, "go\n");
    // The inner shell is exec'd in the container; the model now has the process there.
    wait::until(Duration::from_secs(10), "the inner sh exec", || {
        // The inner shell's command line names only the ssh step; the outer's both.
        let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
        let has = |s: &[u8]| cmd.windows(s.len()).any(|w| w == s);
        (has(b"exec ssh") && !has(b"exec sh -c")).then_some(())
    });
    // A barrier so the inner shell's exec is evaluated (its container recorded) before the
    // move back.
    settle(&d);
    host.add(pid).unwrap();
    release(&mut child, "go\n");
    wait::wait_timeout(&mut child, wait::TOOL, "ssh -V");
    settle(&d);
    let stale = alerts_with(&d, &out);
    assert!(
        stale.is_empty(),
        "ssh exec'd after leaving /docker/{id2} still alerted with its old container: {stale:#?}"
    );
    drop(cg2);
    drop(cg);
    let stopped = d.stop();
    assert!(
        stopped.alerts_for(&id2).iter().all(|a| !has_arg(a, &out)),
        "no alert for the exec outside the container"
    );
}

/// A process three levels below its container's cgroup belongs to the container; so do
/// processes in containerd's own layouts, at any depth below.
#[test]
fn deep_and_containerd_layouts_alert_with_the_container() {
    if !require(
        "deep_and_containerd_layouts_alert_with_the_container",
        PREREQS,
    ) {
        return;
    }
    let d = Daemon::start();
    // (cgroup relative to the root, expected container.id, runtime)
    let id = hex64();
    let k8s = hex64();
    let ctr = name("sshbox");
    let lxc = name("web");
    let cases: Vec<(String, String, &str)> = vec![
        (format!("docker/{id}/a/b/c"), id.clone(), "docker"),
        (format!("default/{ctr}"), ctr.clone(), "containerd"),
        (
            format!("default/{ctr}x/init.scope/x"),
            format!("{ctr}x"),
            "containerd",
        ),
        (format!("k8s.io/{k8s}"), k8s.clone(), "containerd"),
        (format!("lxc.payload.{lxc}/.lxc"), lxc.clone(), "lxc"),
    ];
    for (path, cid, runtime) in &cases {
        let cg = CgroupGuard::new(path).unwrap();
        let marker = name("deep");
        ssh_in(&cg, &marker);
        let a = expect_alert(&d, &marker, cid, runtime);
        assert_eq!(a["detector"]["cgroup"]["path"], format!("/{path}"), "{a}");
        assert_eq!(a["detector"]["cgroup"]["id"], cg.id(), "{a}");
    }
    d.stop();
}

/// Host cgroups that look like containers: the runtimes' monitors and units named alike.
#[test]
fn look_alike_host_cgroups_give_no_container() {
    if !require("look_alike_host_cgroups_give_no_container", PREREQS) {
        return;
    }
    let d = Daemon::start();
    let id = hex64();
    let m = name("m");
    let paths = [
        format!("detector-test.slice/crio-conmon-{id}.scope"),
        format!("detector-test.slice/libpod-conmon-{id}.scope"),
        "libpod_parent/conmon".to_string(),
        format!("detector-test.slice/docker-{id}.service"),
        format!("detector-test.slice/lxc.payload.{m}"),
        format!("lxc.monitor.{m}"),
        format!("detector-test.slice/default/{m}"),
        format!("machine.slice/machine-{m}.scope/supervisor"),
    ];
    let mut markers = Vec::new();
    for path in &paths {
        let cg = CgroupGuard::new(path).unwrap();
        let marker = name("lookalike");
        ssh_in(&cg, &marker);
        markers.push((path, marker));
    }
    settle(&d);
    for (path, marker) in &markers {
        let got = alerts_with(&d, marker);
        assert!(got.is_empty(), "host cgroup /{path} alerted: {got:#?}");
    }
    d.stop();
}

/// The cgroup is gone before the daemon reads the exec's record (the daemon is stopped
/// meanwhile): the path came with the record, so the alert still names the container.
#[test]
fn vanished_cgroup_still_resolves() {
    if !require("vanished_cgroup_still_resolves", PREREQS) {
        return;
    }
    let d = Daemon::start();
    let id = hex64();
    let marker = name("vanished");
    {
        let _paused = d.pause();
        let cg = CgroupGuard::new(&format!("docker/{id}/inner")).unwrap();
        ssh_in(&cg, &marker);
        drop(cg);
        assert!(
            !common::cgroup2_root().join(format!("docker/{id}")).exists(),
            "the cgroup is removed while the daemon is stopped"
        );
    }
    expect_alert(&d, &marker, &id, "docker");
    d.stop();
}

/// `unshare -pf --mount-proc` on the host cgroup: new pid and mount namespaces, no
/// container any runtime knows. No `container.*` (the container rule stays silent), but the
/// document shows the namespaces: `process.vpid` 1, another `detector.process.mnt_ns_ino`.
#[test]
fn namespaces_without_a_container_are_not_a_container() {
    if !require(
        "namespaces_without_a_container_are_not_a_container",
        &[Need::Root, Need::Tool("ssh"), Need::Tool("unshare")],
    ) {
        return;
    }
    let marker = name("unshared");
    let trace = Trace::start_ecs(&[]);
    let st = wait::status_timeout(
        Command::new("unshare")
            .args(["-pf", "--mount-proc", "ssh", "-V", &marker])
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
        wait::TOOL,
        "unshare ssh -V",
    );
    assert!(st.success() || st.code() == Some(255), "unshare: {st:?}");
    let doc = trace
        .wait_for(Duration::from_secs(30), |v| {
            v["event"]["action"] == "exec" && v["process"]["name"] == "ssh" && has_arg(v, &marker)
        })
        .expect("the document of the unshared ssh exec");
    let out = trace.stop();
    assert!(doc.get("container").is_none(), "no container: {doc}");
    assert_eq!(
        doc["process"]["vpid"], 1,
        "pid 1 of its own namespace: {doc}"
    );
    let host_mnt = std::fs::read_link("/proc/self/ns/mnt").unwrap();
    let host_mnt: u64 = host_mnt
        .to_string_lossy()
        .trim_start_matches("mnt:[")
        .trim_end_matches(']')
        .parse()
        .unwrap();
    let mnt = doc["detector"]["process"]["mnt_ns_ino"].as_u64();
    assert!(
        mnt.is_some_and(|m| m != host_mnt),
        "its own mount namespace ({mnt:?}, host {host_mnt}): {doc}"
    );
    drop(out);

    // And the shipped rule does not fire on it.
    let d = Daemon::start();
    let marker = name("unshared");
    wait::status_timeout(
        Command::new("unshare")
            .args(["-pf", "--mount-proc", "ssh", "-V", &marker])
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
        wait::TOOL,
        "unshare ssh -V",
    );
    settle(&d);
    let got = alerts_with(&d, &marker);
    assert!(
        got.is_empty(),
        "a plain unshare is not a container: {got:#?}"
    );
    d.stop();
}
