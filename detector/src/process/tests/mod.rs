//! Process-table tests over synthetic kernel events, fixture `/proc` trees and the real one:
//! the shared fixtures here, the tests by topic in the submodules.

mod attribution;
mod bound;
mod lifecycle;
mod seeded;
mod shared;

use std::path::Path;

use super::*;
use crate::event::{EventKind, ProcessEvent};

const HOST_PID_NS: u32 = 4_026_531_836;
const HOST_MNT_NS: u32 = 4_026_531_841;
const MS: u64 = 1_000_000;
const CID: &str = "4f3c2b1a09876543210fedcba9876543210fedcba9876543210fedcba9876543";

fn ids() -> IdContext {
    IdContext {
        boot_id: "6f1e2d3c-0000-4000-8000-00000000beef".into(),
        pid_ns_ino: HOST_PID_NS as u64,
        ticks_per_sec: 100,
    }
}

struct Fx {
    _dir: tempfile::TempDir,
    t: ProcessTable,
}

fn table_with(max_processes: usize, grace: usize) -> Fx {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("etc")).unwrap();
    std::fs::write(
        dir.path().join("etc/passwd"),
        "root:x:0:0::/root:/bin/sh\nalice:x:1000:1000::/home/alice:/bin/bash\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("etc/group"), "root:x:0:\nalice:x:1000:\n").unwrap();
    let cfg = TableConfig {
        max_processes,
        exited_grace: grace,
        proc_root: None,
        host_root: dir.path().to_path_buf(),
        cgroup_root: Some(dir.path().to_path_buf()),
        container_cache: 64,
        enrich: None,
        user_namespaces: 4,
        host_mnt_ns: Some(HOST_MNT_NS as u64),
        env_vars: super::EnvNames::new(&["LD_PRELOAD"]),
    };
    Fx {
        t: ProcessTable::new(cfg, ids()),
        _dir: dir,
    }
}

fn table() -> Fx {
    table_with(65_536, 1_024)
}

/// A host event; tweak fields with struct update syntax.
fn ev(kind: EventKind, tgid: u32, ppid: u32, start_ms: u64, comm: &str) -> ProcessEvent {
    ProcessEvent {
        kind: Some(kind),
        boot_ns: start_ms * MS + 1,
        pid: tgid,
        tgid,
        ppid,
        actor_pid: ppid,
        comm: comm.as_bytes().to_vec(),
        cgroup_id: 1,
        pid_ns_ino: HOST_PID_NS,
        mnt_ns_ino: HOST_MNT_NS,
        ns_pid: tgid,
        sid: ppid,
        start_boot_ns: start_ms * MS,
        ..Default::default()
    }
}

fn exec(tgid: u32, ppid: u32, start_ms: u64, exe: &str, args: &[&str]) -> ProcessEvent {
    let comm = exe.rsplit('/').next().unwrap();
    ProcessEvent {
        exe_path: exe.as_bytes().to_vec(),
        filename: exe.as_bytes().to_vec(),
        argv: args.iter().map(|a| a.as_bytes().to_vec()).collect(),
        ..ev(
            EventKind::Exec,
            tgid,
            ppid,
            start_ms,
            &comm[..comm.len().min(15)],
        )
    }
}

/// `e` run as user and group `id` (real and effective).
fn as_ids(id: u32, e: ProcessEvent) -> ProcessEvent {
    ProcessEvent {
        uid: id,
        euid: id,
        gid: id,
        egid: id,
        ..e
    }
}

fn s(b: &[u8]) -> &str {
    std::str::from_utf8(b).unwrap()
}
