//! The ECS stage over the process model: synthetic kernel events → process table → documents,
//! each validated against ECS 9.4.

#[path = "common/ecs_validate.rs"]
mod ecs_validate;

use detector::ecs::{DocBuilder, EcsDocument};
use detector::event::{EventKind, ProcessEvent};
use detector::host::{AgentInfo, HostInfo};
use detector::process::{IdContext, ProcessTable, TableConfig};
use serde_json::Value;

const PID_NS: u32 = 4_026_531_836;
const MNT_NS: u32 = 4_026_531_841;
const CID: &str = "0a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f9";

fn table(dir: &std::path::Path) -> ProcessTable {
    std::fs::create_dir_all(dir.join("etc")).unwrap();
    std::fs::write(dir.join("etc/passwd"), "root:x:0:0::/root:/bin/sh\n").unwrap();
    std::fs::write(dir.join("etc/group"), "root:x:0:\n").unwrap();
    let cfg = TableConfig {
        proc_root: None,
        host_root: dir.to_path_buf(),
        cgroup_root: Some(dir.to_path_buf()),
        enrich: None,
        host_mnt_ns: Some(MNT_NS as u64),
        ..TableConfig::default()
    };
    let ids = IdContext {
        boot_id: "6f1e2d3c-0000-4000-8000-00000000beef".into(),
        pid_ns_ino: PID_NS as u64,
        ticks_per_sec: 100,
    };
    ProcessTable::new(cfg, ids)
}

fn event(kind: EventKind, tgid: u32, ppid: u32, start_ms: u64) -> ProcessEvent {
    ProcessEvent {
        kind: Some(kind),
        boot_ns: start_ms * 1_000_000 + 500,
        pid: tgid,
        tgid,
        ppid,
        actor_pid: ppid,
        comm: b"bash".to_vec(),
        cgroup_id: 1,
        pid_ns_ino: PID_NS,
        mnt_ns_ino: MNT_NS,
        ns_pid: tgid,
        sid: ppid,
        start_boot_ns: start_ms * 1_000_000,
        ..ProcessEvent::default()
    }
}

fn json(doc: &EcsDocument) -> Value {
    let v = serde_json::to_value(doc).unwrap();
    let errors = ecs_validate::validate_ecs(&v);
    assert!(errors.is_empty(), "not ECS 9.4: {errors:#?}\n{v:#}");
    v
}

#[test]
fn container_fork_and_exec_become_valid_ecs_documents() {
    let dir = tempfile::tempdir().unwrap();
    let mut t = table(dir.path());
    let host = HostInfo::collect(std::path::Path::new("/"));
    let agent = AgentInfo::new(&host, None);
    let mut b = DocBuilder::new(&host, &agent);

    // A host shell (seen through its exec), then a child in a docker cgroup that execs ssh
    // with hostile argv bytes.
    let mut sh = event(EventKind::Exec, 100, 1, 10);
    sh.exe_path = b"/usr/bin/bash".to_vec();
    sh.filename = sh.exe_path.clone();
    sh.argv = vec![b"bash".to_vec()];
    t.apply(&sh).unwrap();

    let mut fork = event(EventKind::Fork, 200, 100, 20);
    fork.cgroup_id = 7777;
    fork.cgroup_path = format!("/system.slice/docker-{CID}.scope").into_bytes();
    let snap = t.apply(&fork).unwrap();
    let v = json(&b.build(&snap, Some(&fork)));
    assert_eq!(v["event"]["action"], "fork");
    assert_eq!(v["event"]["type"][0], "start");
    assert_eq!(v["container"]["id"], CID);
    assert_eq!(v["container"]["runtime"], "docker");
    // A fork child still runs its parent's image.
    assert_eq!(v["process"]["executable"], "/usr/bin/bash");
    assert_eq!(v["process"]["parent"]["pid"], 100);

    let mut exec = ProcessEvent {
        kind: Some(EventKind::Exec),
        boot_ns: 30_000_000,
        comm: b"ssh".to_vec(),
        exe_path: b"/usr/bin/ssh".to_vec(),
        filename: b"/usr/bin/ssh".to_vec(),
        argv: vec![b"ssh".to_vec(), b"-V\n\"x\xff".to_vec()],
        argv_truncated: true,
        ..fork.clone()
    };
    exec.exe_path_partial = false;
    let snap = t.apply(&exec).unwrap();
    let doc = b.build(&snap, Some(&exec));
    let v = json(&doc);
    assert_eq!(v["event"]["action"], "exec");
    assert_eq!(v["process"]["name"], "ssh");
    assert_eq!(v["process"]["executable"], "/usr/bin/ssh");
    assert_eq!(v["process"]["args"][1], "-V\n\"x\u{fffd}");
    assert_eq!(v["process"]["args_count"], 2);
    assert_eq!(v["process"]["previous"]["executable"], "/usr/bin/bash");
    assert_eq!(v["process"]["parent"]["executable"], "/usr/bin/bash");
    assert_eq!(v["detector"]["process"]["args_truncated"], true);
    assert_eq!(v["detector"]["event"]["boot_ns"], 30_000_000);
    assert_eq!(
        v["detector"]["cgroup"]["path"],
        format!("/system.slice/docker-{CID}.scope")
    );
    assert_eq!(v["user"]["name"], "root");
    // One line of NDJSON whatever the bytes.
    let line = serde_json::to_string(&doc).unwrap();
    assert!(!line.contains('\n'));

    // The seed-like query matches this document through the typed schema.
    let q = detector::rules::compile_query(
        r#"process where container.id: "*" and event.type == "start" and process.name: ("sshd", "ssh")"#,
        detector::ecs::schema(),
    )
    .unwrap();
    assert!(q.matches(&doc));

    let exit = ProcessEvent {
        kind: Some(EventKind::Exit),
        boot_ns: 40_000_000,
        exit_code: Some(3),
        ..exec
    };
    let snap = t.apply(&exit).unwrap();
    let v = json(&b.build(&snap, Some(&exit)));
    assert_eq!(v["event"]["action"], "end");
    assert_eq!(v["event"]["type"][0], "end");
    assert_eq!(v["process"]["exit_code"], 3);
    assert!(v["process"]["end"].is_string());
    assert!(!q.matches(&b.build(&snap, Some(&exit))));
}
