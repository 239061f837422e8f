//! Seeding the table from `/proc`, so processes that began before the daemon have names,
//! executables, args, parents, start times and cgroups.

use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::admit::Admit;
use super::model::ExecImage;
use super::procfs::{self, ProcEntry};
use super::record::Rec;
use super::table::{ProcessTable, parent_in};

/// What seeding did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SeedReport {
    /// Processes read and inserted.
    pub seeded: u64,
    /// Pids listed but not readable (gone meanwhile, or not a process): skipped.
    pub skipped: u64,
}

impl ProcessTable {
    /// Insert every process under `proc_root` (normally `/proc`), parents before children.
    pub fn seed_from_proc(&mut self, proc_root: &Path) -> std::io::Result<SeedReport> {
        let mut report = SeedReport::default();
        let mut entries: Vec<ProcEntry> = Vec::new();
        for pid in procfs::list_pids(proc_root)? {
            match procfs::read_process(proc_root, pid) {
                Ok(e) if e.status.tgid.is_none_or(|t| t == pid) => entries.push(e),
                _ => report.skipped += 1,
            }
        }
        // Parents start before their children: insert in start order so every parent and
        // session leader is already there when its children are linked.
        entries.sort_by_key(|e| (e.stat.start_ticks, e.stat.pid));
        for e in entries {
            self.insert_entry(e, Admit::MakeRoom);
            report.seeded += 1;
        }
        self.stats.seeded += report.seeded;
        Ok(report)
    }

    /// Load one process the table does not know from the configured `/proc`. With
    /// `expect_ticks`, only if it is that process (same start time). Never replaces a live
    /// record; enters as `admit` says.
    pub(super) fn load_from_proc(
        &mut self,
        tgid: u32,
        expect_ticks: Option<u64>,
        admit: Admit,
    ) -> bool {
        if self.live.contains(tgid) {
            return false;
        }
        let Some(root) = self.cfg.proc_root.clone() else {
            return false;
        };
        let Ok(e) = procfs::read_process(&root, tgid) else {
            return false;
        };
        if e.status.tgid.is_some_and(|t| t != tgid)
            || expect_ticks.is_some_and(|t| t != e.stat.start_ticks)
        {
            return false;
        }
        self.insert_entry(e, admit);
        true
    }

    fn insert_entry(&mut self, e: ProcEntry, admit: Admit) {
        let tgid = e.stat.pid;
        let ticks = e.stat.start_ticks;
        let mut env_vars = Vec::new();
        self.cfg.env_vars.filter(&e.environ, &mut env_vars);
        let cwd_env = (e.cwd, env_vars, e.environ_truncated);
        let (cgroup_id, container) = match &e.cgroup_path {
            Some(path) => {
                let id = self.cgroup_id(path);
                (id, self.containers.resolve_path(id, path))
            }
            None => (0, None),
        };
        let mut rec = Rec {
            tgid,
            start_ticks: ticks,
            start_boot_ns: self.ids.ticks_to_ns(ticks),
            entity_id: Default::default(),
            info: Default::default(),
            ppid: e.stat.ppid,
            pgid: e.stat.pgid,
            sid: e.stat.sid,
            ns_pid: e.status.ns_pid.unwrap_or(tgid),
            pid_ns: e.pid_ns.unwrap_or(0),
            mnt_ns: e.mnt_ns.unwrap_or(0),
            uid: e.status.uids[0],
            euid: e.status.uids[1],
            gid: e.status.gids[0],
            egid: e.status.gids[1],
            caps: match (e.status.cap_eff, e.status.cap_prm) {
                (Some(effective), Some(permitted)) => Some(crate::event::Caps {
                    effective,
                    permitted,
                }),
                _ => None,
            },
            tty: e.stat.tty,
            image: Arc::new(image_of(
                e.stat.comm,
                e.exe,
                e.args,
                e.args_truncated,
                cwd_env,
            )),
            cgroup_id,
            container,
            session: None,
            entry: None,
            exit: None,
        };
        // `/proc` names the current parent, which is live (an exited one with the same pid
        // is an earlier holder of it).
        let mut view = self.view();
        let parent = parent_in(view.live, None, rec.ppid, ticks);
        view.leaders(&rec, parent, true).apply(&mut rec);
        self.insert(rec, admit);
    }

    /// The cgroup v2 id (directory inode) of a cgroup path; 0 when it cannot be stat'ed.
    fn cgroup_id(&mut self, path: &[u8]) -> u64 {
        let root = self.cgroup_root();
        let rel = std::ffi::OsStr::from_bytes(path.strip_prefix(b"/").unwrap_or(path));
        std::fs::metadata(root.join(rel))
            .map(|m| m.ino())
            .unwrap_or(0)
    }

    fn cgroup_root(&mut self) -> PathBuf {
        if let Some(r) = &self.cfg.cgroup_root {
            return r.clone();
        }
        let unified = Path::new("/sys/fs/cgroup/unified");
        let root = if unified.join("cgroup.procs").exists() {
            unified.to_path_buf()
        } else {
            "/sys/fs/cgroup".into()
        };
        self.cfg.cgroup_root = Some(root.clone());
        root
    }
}

/// The image of a process read from `/proc`: its executable (a `#!` script's path when it
/// runs one, as for an exec), name, args, and the working directory and listed environment
/// variables it has now.
fn image_of(
    comm: Vec<u8>,
    exe: Vec<u8>,
    args: Vec<Vec<u8>>,
    args_truncated: bool,
    (cwd, env_vars, env_truncated): (Vec<u8>, Vec<Vec<u8>>, bool),
) -> ExecImage {
    let executable = match super::model::script_path_in_args(&comm, &args) {
        Some(script) => super::model::choose_executable(&comm, &script, &exe, &args),
        None => exe,
    };
    ExecImage {
        name: super::model::name_of(&executable, &comm),
        comm,
        executable,
        args,
        args_truncated,
        working_directory: cwd,
        working_directory_partial: false,
        env_vars,
        env_truncated,
    }
}
