//! End-to-end tests of the process model, container attribution and ECS documents, on real
//! processes and containers, through `detector trace` (ECS mode) and `detector run`.
//!
//! Root tests: each starts with the prerequisite gate ([`detector::testsupport::require`]:
//! root and the tools it uses; under `CI=true` a missing one fails the test). The host is
//! shared, so every test filters the documents by the pids or container ids it created; but
//! every document a trace printed is validated against ECS 9.4.
//!
//! What is asserted, and why it is right:
//! - A container's entrypoint (the first exec, `runc init` becoming the command) is
//!   attributed to its container: `container.id` is the full 64-hex id and
//!   `container.runtime` the runtime named by the cgroup path (docker for `/docker/<id>`,
//!   containerd for both kubepods forms, podman for libpod). It is pid 1 of its namespace
//!   (`process.vpid` 1), its own entry leader (`entry_meta.type: container`, the process
//!   entered the container's pid namespace from outside), and it replaced `runc init`
//!   (`process.previous.executable` is runc). Its parent is outside the container.
//! - A command run by the container's shell has that shell (the container init) as parent,
//!   session leader (runc init calls setsid) and entry leader.
//! - The same commands on the host carry no `container` at all.

#[path = "common/mod.rs"]
mod common;
#[path = "common/containers.rs"]
mod containers;
#[path = "common/ecs_validate.rs"]
mod ecs_validate;
#[path = "common/wait.rs"]
mod wait;

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{PrivateBin, Trace, TraceOutput, ebpf_lock, release};
use containers::{PodmanContainer, RuncContainer, hex_id};
use detector::testsupport::{Need, require};
use serde_json::Value;

/// Every document the trace printed must be valid ECS 9.4.
fn validate_all(out: &TraceOutput) {
    let mut bad = vec![];
    for d in &out.events {
        let errors = ecs_validate::validate_ecs(d);
        if !errors.is_empty() {
            bad.push(format!("{errors:?} in {d}"));
        }
    }
    assert!(
        bad.is_empty(),
        "{} of {} documents are not ECS 9.4:\n{}",
        bad.len(),
        out.events.len(),
        bad.iter().take(5).cloned().collect::<Vec<_>>().join("\n")
    );
    // The host is shared: another engineer's fork storm can overflow the ring. That is
    // counted (and our own processes' documents are asserted on anyway); say so.
    if out.summary["lost"] != 0 {
        eprintln!(
            "note: the trace lost events (others' load): {}",
            out.summary
        );
    }
}

fn action(d: &Value) -> &str {
    d["event"]["action"].as_str().unwrap_or("")
}

fn pid(v: &Value) -> u32 {
    v["pid"].as_u64().unwrap_or(0) as u32
}

fn strs(v: &Value) -> Vec<&str> {
    v.as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

/// Documents of container `id`.
fn of_container<'a>(out: &'a TraceOutput, id: &str) -> Vec<&'a Value> {
    out.events
        .iter()
        .filter(|d| d["container"]["id"] == id)
        .collect()
}

/// The one exec document among `docs` whose executable is `exe`.
fn exec_of<'a>(docs: &[&'a Value], exe: &str) -> &'a Value {
    let found: Vec<&&Value> = docs
        .iter()
        .filter(|d| action(d) == "exec" && d["process"]["executable"] == exe)
        .collect();
    assert_eq!(
        found.len(),
        1,
        "expected one exec of {exe}; documents:\n{}",
        docs.iter()
            .map(|d| format!(
                "{} {} {} {}",
                action(d),
                d["process"]["pid"],
                d["process"]["executable"],
                d["process"]["args"]
            ))
            .collect::<Vec<_>>()
            .join("\n")
    );
    found[0]
}

/// The exec document of the container's init (pid 1 in its namespace) becoming the
/// entrypoint: the last exec of vpid 1 (runc's own stages exec first).
fn init_exec<'a>(docs: &[&'a Value]) -> &'a Value {
    docs.iter()
        .rfind(|d| action(d) == "exec" && d["process"]["vpid"] == 1)
        .unwrap_or_else(|| {
            panic!(
                "no exec of the container init among {} documents",
                docs.len()
            )
        })
}

/// Asserts a container entrypoint's exec document: attributed, pid 1 inside, its own entry
/// leader of type container, replaced runc's init.
fn assert_entrypoint(d: &Value, id: &str, runtime: &str, exe: &str, args_tail: &[&str]) {
    let p = &d["process"];
    assert_eq!(d["container"]["id"], id, "{d}");
    assert_eq!(id.len(), 64);
    assert_eq!(d["container"]["runtime"], runtime, "{d}");
    assert_eq!(p["executable"], exe);
    assert!(
        strs(&p["args"]).ends_with(args_tail),
        "args {} end with {args_tail:?}",
        p["args"]
    );
    assert_eq!(p["args_count"], p["args"].as_array().unwrap().len());
    assert_eq!(
        p["vpid"], 1,
        "the entrypoint is pid 1 in its namespace: {d}"
    );
    assert_ne!(p["pid"], 1);
    let e = &p["entry_leader"];
    assert_eq!(pid(e), pid(p), "its own entry leader: {d}");
    assert_eq!(e["entity_id"], p["entity_id"]);
    assert_eq!(e["entry_meta"]["type"], "container", "{d}");
    assert_eq!(e["same_as_process"], true);
    assert!(
        p["previous"]["executable"]
            .as_str()
            .is_some_and(|x| x.ends_with("/runc")),
        "replaced runc init: {d}"
    );
    // The parent (runc, or podman's conmon) is a host process, known to the model.
    assert!(pid(&p["parent"]) > 1, "{d}");
    assert!(p["parent"]["entity_id"].is_string(), "{d}");
    assert!(p["parent"]["executable"].is_string(), "{d}");
}

/// Asserts a command run by the container's init shell (`init`: its exec document).
fn assert_child_of_init(d: &Value, init: &Value, id: &str, runtime: &str) {
    let (p, ip) = (&d["process"], &init["process"]);
    assert_eq!(d["container"]["id"], id, "{d}");
    assert_eq!(d["container"]["runtime"], runtime);
    assert!(p["vpid"].as_u64().unwrap() > 1, "{d}");
    for leader in ["parent", "session_leader", "entry_leader"] {
        assert_eq!(
            pid(&p[leader]),
            pid(ip),
            "{leader} is the container init: {d}"
        );
        assert_eq!(p[leader]["entity_id"], ip["entity_id"], "{leader}: {d}");
    }
    assert_eq!(p["parent"]["executable"], "/bin/busybox");
    assert_eq!(p["parent"]["args"][0], "/bin/sh");
    assert_eq!(p["entry_leader"]["entry_meta"]["type"], "container");
    assert_eq!(p["entry_leader"]["same_as_process"], false);
}

const SHELL_CMDS: &str = "/usr/bin/ssh -V; /usr/sbin/sshd -t; /usr/bin/autossh -V; echo done";

/// Checks all the documents of one container that ran the three commands as children of
/// its init shell.
fn assert_shell_container(docs: &[&Value], id: &str, runtime: &str) {
    let init = init_exec(docs);
    assert_entrypoint(
        init,
        id,
        runtime,
        "/bin/busybox",
        &["/bin/sh", "-c", SHELL_CMDS],
    );
    let ssh = exec_of(docs, "/usr/bin/ssh");
    assert_eq!(strs(&ssh["process"]["args"]), ["/usr/bin/ssh", "-V"]);
    assert_child_of_init(ssh, init, id, runtime);
    let sshd = exec_of(docs, "/usr/sbin/sshd");
    assert_eq!(strs(&sshd["process"]["args"]), ["/usr/sbin/sshd", "-t"]);
    assert_child_of_init(sshd, init, id, runtime);
    // autossh is a shell script: the kernel runs it through /bin/sh, then it execs the
    // real binary in the same process.
    let script = exec_of(docs, "/usr/bin/autossh");
    assert!(strs(&script["process"]["args"]).ends_with(&["/usr/bin/autossh", "-V"]));
    assert_child_of_init(script, init, id, runtime);
    let real = exec_of(docs, "/usr/lib/autossh/autossh");
    assert_eq!(
        strs(&real["process"]["args"]),
        ["/usr/lib/autossh/autossh", "-V"]
    );
    assert_eq!(pid(&real["process"]), pid(&script["process"]));
    assert_eq!(
        real["process"]["previous"]["executable"],
        "/usr/bin/autossh"
    );
    assert_child_of_init(real, init, id, runtime);
    // The fork of each child carries the shell's image until it execs.
    let fork = docs
        .iter()
        .find(|d| action(d) == "fork" && pid(&d["process"]) == pid(&ssh["process"]))
        .expect("fork document of ssh");
    assert_eq!(fork["process"]["executable"], "/bin/busybox");
    assert_eq!(strs(&fork["event"]["type"]), ["start"]);
    // Every process of the container ends, with an exit code.
    for d in docs.iter().filter(|d| action(d) == "exec") {
        let p = pid(&d["process"]);
        let end = docs
            .iter()
            .find(|e| action(e) == "end" && pid(&e["process"]) == p)
            .unwrap_or_else(|| panic!("no end document for {d}"));
        assert_eq!(strs(&end["event"]["type"]), ["end"]);
        assert!(end["process"]["exit_code"].is_i64(), "{end}");
        assert_eq!(end["container"]["id"], id);
    }
}

/// The three commands as entrypoints and as children of a shell, in runc containers whose
/// cgroup path is `form(id)`.
fn runc_form(test: &str, form: impl Fn(&str) -> String, runtime: &str) {
    if !require(test, &[Need::Root, Need::Tool("runc")]) {
        return;
    }
    let _lock = ebpf_lock();
    let entrypoints: [(&str, &[&str]); 3] = [
        ("/usr/bin/ssh", &["/usr/bin/ssh", "-V"]),
        ("/usr/sbin/sshd", &["/usr/sbin/sshd", "-t"]),
        ("/usr/bin/autossh", &["/usr/bin/autossh", "-V"]),
    ];
    // Build the bundles (and the cached rootfs) before tracing.
    let mut runs = vec![];
    for (exe, args) in entrypoints {
        let id = hex_id();
        let c = RuncContainer::new(args, Some(&form(&id))).unwrap();
        runs.push((exe, args, id, c));
    }
    let shell_id = hex_id();
    let mut shell =
        RuncContainer::new(&["/bin/sh", "-c", SHELL_CMDS], Some(&form(&shell_id))).unwrap();

    let trace = Trace::start_ecs(&[]);
    let mut runc_pids = vec![];
    for (exe, _, _, c) in &mut runs {
        let (runc_pid, out) = c.run_with_pid().unwrap();
        assert!(
            out.status.success(),
            "{exe} in runc: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        runc_pids.push(runc_pid);
    }
    let (shell_runc, out) = shell.run_with_pid().unwrap();
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("done"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = trace.stop();
    let ids: Vec<(&str, &[&str], String)> = runs
        .iter()
        .map(|(e, a, i, _)| (*e, *a, i.clone()))
        .collect();
    drop(runs);
    drop(shell);
    validate_all(&out);

    for ((exe, args, id), runc_pid) in ids.iter().zip(runc_pids) {
        let docs = of_container(&out, id);
        let d = exec_of(&docs, exe);
        assert_entrypoint(d, id, runtime, exe, args);
        assert_eq!(
            pid(&d["process"]["parent"]),
            runc_pid,
            "the container init's parent is `runc run`: {d}"
        );
        assert_eq!(d["process"]["parent"]["name"], "runc");
    }
    let docs = of_container(&out, &shell_id);
    assert_shell_container(&docs, &shell_id, runtime);
    let init = init_exec(&docs);
    assert_eq!(pid(&init["process"]["parent"]), shell_runc);
}

#[test]
fn runc_docker_cgroup() {
    runc_form("runc_docker_cgroup", |id| format!("/docker/{id}"), "docker");
}

const POD: &str = "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d";

#[test]
fn runc_cgroupfs_kubepods() {
    runc_form(
        "runc_cgroupfs_kubepods",
        |id| format!("/kubepods/besteffort/pod{POD}/{id}"),
        "containerd",
    );
}

#[test]
fn runc_systemd_kubepods() {
    let pod = POD.replace('-', "_");
    runc_form(
        "runc_systemd_kubepods",
        |id| {
            format!(
                "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{pod}.slice/cri-containerd-{id}.scope"
            )
        },
        "containerd",
    );
}

#[test]
fn podman_libpod() {
    if !require(
        "podman_libpod",
        &[Need::Root, Need::Tool("podman"), Need::Tool("runc")],
    ) {
        return;
    }
    containers::podman_image().unwrap();
    let _lock = ebpf_lock();
    let trace = Trace::start_ecs(&[]);
    let mut ran = vec![];
    for args in [
        &["/usr/bin/ssh", "-V"][..],
        &["/usr/sbin/sshd", "-t"],
        &["/usr/bin/autossh", "-V"],
        &["/bin/sh", "-c", SHELL_CMDS],
    ] {
        let (o, id) = PodmanContainer::run_with_id(args).unwrap();
        assert!(
            o.status.success(),
            "podman {args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        ran.push((args, id));
    }
    let out = trace.stop();
    validate_all(&out);
    for (args, id) in &ran[..3] {
        let docs = of_container(&out, id);
        let d = exec_of(&docs, args[0]);
        assert_entrypoint(d, id, "podman", args[0], args);
    }
    let (_, id) = &ran[3];
    assert_shell_container(&of_container(&out, id), id, "podman");
}

/// The same commands on the host: documents without any `container`.
#[test]
fn host_commands_have_no_container() {
    if !require("host_commands_have_no_container", &[Need::Root]) {
        return;
    }
    let _lock = ebpf_lock();
    let trace = Trace::start_ecs(&[]);
    let sh = Command::new("/bin/sh")
        .args(["-c", SHELL_CMDS])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let shell_pid = sh.id();
    let sh = wait::try_child_output_timeout(sh, wait::TOOL, "the host shell")
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(String::from_utf8_lossy(&sh.stdout).contains("done"));
    let out = trace.stop();
    validate_all(&out);
    let me = std::process::id();
    let fork = out
        .events
        .iter()
        .find(|d| action(d) == "fork" && pid(&d["process"]) == shell_pid)
        .expect("fork of our shell");
    assert_eq!(pid(&fork["process"]["parent"]), me);
    let docs: Vec<&Value> = out
        .events
        .iter()
        .filter(|d| pid(&d["process"]) == shell_pid || pid(&d["process"]["parent"]) == shell_pid)
        .collect();
    for exe in ["/usr/bin/ssh", "/usr/sbin/sshd", "/usr/bin/autossh"] {
        let d = exec_of(&docs, exe);
        assert_eq!(pid(&d["process"]["parent"]), shell_pid);
        assert_eq!(
            d["process"]["vpid"], d["process"]["pid"],
            "host pid namespace"
        );
    }
    for d in &docs {
        assert!(
            d.get("container").is_none(),
            "host process with a container: {d}"
        );
        assert!(d["orchestrator"].is_null());
    }
}

/// Waits until `/proc/<pid>/exe` is `exe` (the child has exec'd).
fn wait_exec(pid: u32, exe: &std::path::Path) {
    wait::until(
        Duration::from_secs(10),
        &format!("{pid} to exec {exe:?}"),
        || {
            (std::fs::read_link(format!("/proc/{pid}/exe"))
                .ok()
                .as_deref()
                == Some(exe))
            .then_some(())
        },
    );
}

/// A tree started by the test without a terminal: a process named `sshd` (a copy of bash)
/// runs `setsid /bin/sh -c 'marker; true'`. The shell is a session leader whose parent is
/// `sshd`, so it starts an entry of type `sshd`; the marker's parent, session leader and
/// entry leader are that shell, and nothing is interactive (setsid dropped any terminal).
#[test]
fn shell_tree_leaders_without_pty() {
    if !require(
        "shell_tree_leaders_without_pty",
        &[Need::Root, Need::Tool("setsid")],
    ) {
        return;
    }
    let sshd = PrivateBin::copy("/bin/bash", "sshd");
    let marker = PrivateBin::copy("/bin/true", "dt-marker-nopty");
    let _lock = ebpf_lock();
    let trace = Trace::start_ecs(&[]);
    let status = wait::status_timeout(
        Command::new(&sshd.path)
            .arg("-c")
            .arg(format!(
                "setsid /bin/sh -c '{}; true'; true",
                marker.path.display()
            ))
            .stdin(Stdio::null()),
        wait::TOOL,
        "the sshd-named shell",
    );
    assert!(status.success());
    let out = trace.stop();
    validate_all(&out);
    let marker_exe = marker.path.to_str().unwrap();
    let c = exec_of(&out.events.iter().collect::<Vec<_>>(), marker_exe);
    let cp = &c["process"];
    let s_pid = pid(&cp["parent"]);
    // The shell's own exec document (after setsid exec'd it).
    let s = out
        .events
        .iter()
        .find(|d| {
            action(d) == "exec"
                && pid(&d["process"]) == s_pid
                && strs(&d["process"]["args"]).first() == Some(&"/bin/sh")
        })
        .unwrap_or_else(|| panic!("exec document of the shell {s_pid}"));
    let sp = &s["process"];
    let sh = std::fs::canonicalize("/bin/sh").unwrap();
    assert_eq!(sp["executable"], sh.to_str().unwrap());
    assert_eq!(sp["parent"]["name"], "sshd", "{s}");
    assert_eq!(sp["parent"]["executable"], sshd.path.to_str().unwrap());
    // The sshd stand-in is the test's child.
    let p_pid = pid(&sp["parent"]);
    let p_fork = out
        .events
        .iter()
        .find(|d| action(d) == "fork" && pid(&d["process"]) == p_pid)
        .expect("fork of the sshd stand-in");
    assert_eq!(pid(&p_fork["process"]["parent"]), std::process::id());
    // The shell leads its session and starts an sshd entry.
    assert_eq!(pid(&sp["session_leader"]), s_pid);
    assert_eq!(sp["session_leader"]["same_as_process"], true);
    assert_eq!(pid(&sp["entry_leader"]), s_pid);
    assert_eq!(sp["entry_leader"]["entry_meta"]["type"], "sshd", "{s}");
    // setsid made the shell the leader of a new process group too, which the marker
    // (forked by the shell) is in: read from the kernel with each event.
    assert_eq!(pid(&sp["group_leader"]), s_pid, "{s}");
    assert_eq!(sp["group_leader"]["same_as_process"], true, "{s}");
    assert_eq!(pid(&cp["group_leader"]), s_pid, "{c}");
    assert_eq!(pid(&cp["parent"]["group_leader"]), s_pid, "{c}");
    // The marker's leaders are the shell.
    for leader in ["parent", "session_leader", "entry_leader"] {
        assert_eq!(pid(&cp[leader]), s_pid, "{leader}: {c}");
        assert_eq!(cp[leader]["entity_id"], sp["entity_id"], "{leader}: {c}");
    }
    assert_eq!(cp["parent"]["executable"], sh.to_str().unwrap());
    assert_eq!(cp["entry_leader"]["entry_meta"]["type"], "sshd");
    assert_eq!(cp["session_leader"]["same_as_process"], false);
    assert_eq!(cp["interactive"], false, "{c}");
    assert_eq!(sp["interactive"], false, "{s}");
    assert_eq!(cp["parent"]["interactive"], false);
    assert!(c.get("container").is_none());
}

/// The same under a pty the test allocates with `script`: the shell `script` starts leads a
/// session on the pty; it and its child are interactive. No entry rule matches a session on
/// a pty under `script`, so the entry leader is inherited from the test's own tree.
#[test]
fn shell_tree_interactive_under_pty() {
    if !require(
        "shell_tree_interactive_under_pty",
        &[Need::Root, Need::Tool("script")],
    ) {
        return;
    }
    let marker = PrivateBin::copy("/bin/true", "dt-marker-pty");
    let _lock = ebpf_lock();
    let trace = Trace::start_ecs(&[]);
    let mut script = Command::new("script")
        .arg("-qec")
        .arg(format!("{}; true", marker.path.display()))
        .arg("/dev/null")
        .env("SHELL", "/bin/sh")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let script_pid = script.id();
    assert!(wait::wait_timeout(&mut script, wait::TOOL, "script").success());
    let out = trace.stop();
    validate_all(&out);
    let c = exec_of(
        &out.events.iter().collect::<Vec<_>>(),
        marker.path.to_str().unwrap(),
    );
    let cp = &c["process"];
    let s_pid = pid(&cp["parent"]);
    let s = out
        .events
        .iter()
        .rfind(|d| action(d) == "exec" && pid(&d["process"]) == s_pid)
        .unwrap_or_else(|| panic!("exec document of the shell {s_pid}"));
    let sp = &s["process"];
    // The shell descends from `script` (which may fork a helper between them).
    let mut up = pid(&sp["parent"]);
    let mut hops = 0;
    while up != script_pid {
        let fork = out
            .events
            .iter()
            .find(|d| action(d) == "fork" && pid(&d["process"]) == up)
            .unwrap_or_else(|| panic!("{up} is not a descendant of script {script_pid}: {s}"));
        up = pid(&fork["process"]["parent"]);
        hops += 1;
        assert!(hops < 4, "the shell is not under script: {s}");
    }
    // The shell leads the pty's session; both are interactive.
    assert_eq!(pid(&sp["session_leader"]), s_pid, "{s}");
    assert_eq!(sp["interactive"], true, "{s}");
    assert_eq!(cp["interactive"], true, "{c}");
    assert_eq!(cp["parent"]["interactive"], true);
    assert_eq!(cp["session_leader"]["interactive"], true);
    for leader in ["parent", "session_leader"] {
        assert_eq!(pid(&cp[leader]), s_pid, "{leader}: {c}");
        assert_eq!(cp[leader]["entity_id"], sp["entity_id"], "{leader}: {c}");
    }
    // Entry: inherited along the tree: the marker's is the shell's, which is script's.
    let script_exec = out
        .events
        .iter()
        .find(|d| action(d) == "exec" && pid(&d["process"]) == script_pid)
        .expect("exec document of script");
    assert!(cp["entry_leader"]["entity_id"].is_string(), "{c}");
    assert_eq!(
        cp["entry_leader"]["entity_id"],
        sp["entry_leader"]["entity_id"]
    );
    assert_eq!(
        sp["entry_leader"]["entity_id"],
        script_exec["process"]["entry_leader"]["entity_id"]
    );
}

/// A process that existed before the trace started (seeded from /proc) still names the
/// parent of its children's documents.
#[test]
fn preexisting_parent_is_known() {
    if !require("preexisting_parent_is_known", &[Need::Root]) {
        return;
    }
    let pre = PrivateBin::copy("/bin/bash", "dt-preexist");
    let marker = PrivateBin::copy("/bin/true", "dt-marker-pre");
    let mut child = Command::new(&pre.path)
        .arg("-c")
        .arg(format!("read x; {}; true", marker.path.display()))
        .arg("dt-arg0")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let pre_pid = child.id();
    wait_exec(pre_pid, &pre.path);
    let _lock = ebpf_lock();
    let trace = Trace::start_ecs(&[]);
    release(&mut child, "go\n");
    assert!(wait::wait_timeout(&mut child, wait::TOOL, "the pre-existing shell").success());
    let out = trace.stop();
    validate_all(&out);
    let marker_exe = marker.path.to_str().unwrap();
    let mine: Vec<&Value> = out
        .events
        .iter()
        .filter(|d| pid(&d["process"]["parent"]) == pre_pid || pid(&d["process"]) == pre_pid)
        .collect();
    let c = exec_of(&mine, marker_exe);
    let parent = &c["process"]["parent"];
    assert_eq!(pid(parent), pre_pid);
    assert_eq!(parent["name"], "dt-preexist", "{c}");
    assert_eq!(parent["executable"], pre.path.to_str().unwrap());
    let args = strs(&parent["args"]);
    assert_eq!(args.last(), Some(&"dt-arg0"), "{c}");
    assert!(parent["entity_id"].is_string() && parent["start"].is_string());
    // The fork document (before exec) carries the parent's image.
    let fork = mine
        .iter()
        .find(|d| action(d) == "fork" && pid(&d["process"]) == pid(&c["process"]))
        .expect("fork document");
    assert_eq!(fork["process"]["name"], "dt-preexist");
    assert_eq!(fork["process"]["executable"], pre.path.to_str().unwrap());
    // The pre-existing process's own end document.
    let end = mine
        .iter()
        .find(|d| action(d) == "end" && pid(&d["process"]) == pre_pid)
        .expect("end of the pre-existing process");
    assert_eq!(end["process"]["name"], "dt-preexist");
    assert_eq!(end["process"]["exit_code"], 0);
}

/// How many processes `/proc` lists now.
fn host_processes() -> u64 {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().parse::<u32>().is_ok())
        .count() as u64
}

/// 200 short-lived runc containers under `detector run` with a small container cache:
/// the process table and the cache stay within their bounds, every removed container's
/// cgroup is forgotten, and the table holds about as many processes as the host has.
#[test]
fn churn_200_containers_bounded() {
    if !require(
        "churn_200_containers_bounded",
        &[Need::Root, Need::Tool("runc")],
    ) {
        return;
    }
    const MAX_PROCESSES: u64 = 1024;
    const CACHE_MAX: u64 = 16;
    const N: usize = 200;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("rule.toml"),
        r#"[metadata]
creation_date = "2026/01/01"
maturity = "production"
updated_date = "2026/01/01"

[rule]
author = ["detector tests"]
description = "Never matches: the churn test needs a rule set, not alerts."
language = "eql"
license = "Apache-2.0"
name = "Churn test rule"
risk_score = 1
rule_id = "6d1f0b8e-0000-4000-8000-00000000c4a2"
severity = "low"
type = "eql"
query = '''
process where process.name == "dt-never-runs-this-name"
'''
"#,
    )
    .unwrap();
    let config = dir.path().join("detector.toml");
    std::fs::write(
        &config,
        format!(
            "[rules]\npaths = [\"{}\"]\n[sinks]\nstdout = true\n[alerts]\nstartup_scan = false\n\
             [process]\nmax_processes = {MAX_PROCESSES}\n[container]\ncache_max = {CACHE_MAX}\n",
            dir.path().join("rule.toml").display()
        ),
    )
    .unwrap();
    let mut bundles = vec![];
    for _ in 0..N {
        let id = hex_id();
        bundles.push(RuncContainer::new(&["/bin/true"], Some(&format!("/docker/{id}"))).unwrap());
    }
    let _lock = ebpf_lock();
    let mut daemon = Command::new(common::detector_bin())
        .arg("run")
        .arg("--config")
        .arg(&config)
        .args(["--duration", "600"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .unwrap();
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            wait::kill_and_reap(&mut self.0);
        }
    }
    let stderr = daemon.stderr.take().unwrap();
    let daemon = Kill(daemon);
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut lines = vec![];
        for l in BufReader::new(stderr).lines().map_while(Result::ok) {
            if l.contains("detector: ready") {
                let _ = tx.send(());
            }
            lines.push(l);
        }
        lines
    });
    if rx.recv_timeout(Duration::from_secs(90)).is_err() {
        drop(daemon);
        panic!(
            "detector run not ready within 90 s: {}",
            wait::try_join_timeout(reader, Duration::from_secs(10), "the daemon's stderr")
                .map(|l| l.join("\n"))
                .unwrap_or_else(|e| e)
        );
    }
    let t0 = Instant::now();
    for c in &mut bundles {
        let out = c.run().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let churn = t0.elapsed();
    drop(bundles);
    // The host is shared: others' processes come and go. Sample the host's count from
    // before the stop until the daemon has printed its final stats; allow the largest.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (sampled_tx, sampled) = std::sync::mpsc::channel();
    let sampler = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut max = host_processes();
            let _ = sampled_tx.send(());
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                max = max.max(host_processes());
                std::thread::sleep(Duration::from_millis(10));
            }
            max.max(host_processes())
        })
    };
    // The sampler has its first sample (from before the stop).
    wait::recv_timeout(&sampled, Duration::from_secs(10), "the first host sample");
    // SAFETY: signalling our own child.
    unsafe { libc::kill(daemon.0.id() as i32, libc::SIGINT) };
    // The stderr reader ends when the daemon exits (drain, final stats): bounded.
    let lines = wait::join_timeout(
        reader,
        Duration::from_secs(60),
        "detector run to exit after SIGINT (its stderr to close)",
    );
    drop(daemon);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let host_procs = wait::join_timeout(sampler, Duration::from_secs(10), "the host sampler");
    let stats: Value = lines
        .iter()
        .rev()
        .find_map(|l| {
            serde_json::from_str::<Value>(l)
                .ok()
                .filter(|v| v["final_stats"].is_object())
        })
        .unwrap_or_else(|| panic!("no final_stats line:\n{}", lines.join("\n")))["final_stats"]
        .clone();
    eprintln!("{N} containers in {churn:?}; final stats: {stats}");
    let table = &stats["process_table"];
    let cache = &stats["containers"];
    let live = table["live"].as_u64().unwrap();
    assert!(live <= MAX_PROCESSES, "live {live} > {MAX_PROCESSES}");
    assert!(cache["entries"].as_u64().unwrap() <= CACHE_MAX, "{cache}");
    // Cgroups with live processes: back to the host's few, not one per container.
    assert!(table["cgroups"].as_u64().unwrap() < 100, "{table}");
    assert!(cache["misses"].as_u64().unwrap() >= N as u64, "{cache}");
    if stats["lost"] != 0 {
        // A lost exit leaves its cgroup to the cache bound (asserted above), not forgetting.
        eprintln!("note: events lost (others' load on the shared host): forgetting not checked");
        return;
    }
    // Nothing leaked: the table holds about what the host runs (others' work adds noise).
    assert!(
        live <= host_procs + 200,
        "live {live} with at most {host_procs} processes on the host meanwhile: leaked records"
    );
    // Each container cgroup was forgotten when its last process ended.
    assert!(
        cache["forgotten"].as_u64().unwrap() >= N as u64,
        "removed cgroups forgotten: {cache}"
    );
}
