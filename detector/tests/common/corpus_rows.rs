//! Rows of corpus rules for end-to-end behaviour tests (`defend_shape.rs`, `defend_rules*.rs`): each row names
//! a rule of Elastic's Linux corpus (read unmodified through `testsupport::corpus`), and
//! how to make its real behaviour happen on this machine (the hit) and the same behaviour
//! with one distinguishing detail changed (the near miss). One daemon runs every row of a
//! test; alerts are tied to the run that caused them by pid (the spawned process or its
//! child), by a marker in a command line, or by container id, so other activity on the
//! shared host cannot pass for them.
//!
//! Include with `#[path = "common/corpus_rows.rs"] mod corpus_rows;` next to
//! `common/daemon.rs` as `mod daemon`, `common/containers.rs` as `mod containers`,
//! `common/ecs_validate.rs` as `mod ecs_validate` and `common/wait.rs` as `mod wait`.
#![allow(dead_code)]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::containers::{RuncContainer, hex_id};
use crate::daemon::{self, Daemon, Opts};
use crate::{ecs_validate, wait};

/// Bound on each command a row runs (they all finish in milliseconds).
pub const RUN_BOUND: Duration = Duration::from_secs(30);
/// Bound on the barrier alert (a hang guard).
pub const SETTLE_BOUND: Duration = Duration::from_secs(30);

/// What one run (a hit or a near miss) left to attribute alerts by.
#[derive(Clone, Debug, Default)]
pub struct Run {
    /// The spawned process: alerts on it or on its children are this run's.
    pub pid: Option<u32>,
    /// A string unique to the run in the alerted process's or its parent's command line.
    pub marker: Option<String>,
    /// The container it ran in: alerts of that container are this run's.
    pub container: Option<String>,
}

impl Run {
    /// Whether alert `a` was caused by this run.
    pub fn owns(&self, a: &Value) -> bool {
        let pid = |v: &Value| v.as_u64().map(|p| p as u32);
        if let Some(id) = &self.container {
            return a["container"]["id"] == id.as_str();
        }
        if let Some(m) = &self.marker {
            let has = |v: &Value| v.as_str().is_some_and(|s| s.contains(m.as_str()));
            if has(&a["process"]["command_line"]) || has(&a["process"]["parent"]["command_line"]) {
                return true;
            }
        }
        self.pid.is_some_and(|p| {
            pid(&a["process"]["pid"]) == Some(p) || pid(&a["process"]["parent"]["pid"]) == Some(p)
        })
    }

    /// This run, also owning alerts whose command lines carry `marker`.
    pub fn marked(mut self, marker: &str) -> Run {
        self.marker = Some(marker.to_owned());
        self
    }
}

/// Scratch files and directories the rows use, removed at the end (also the directories
/// created outside it, listed in `created`).
pub struct Scratch {
    pub dir: tempfile::TempDir,
    created: Vec<PathBuf>,
}

impl Scratch {
    pub fn new() -> Scratch {
        let dir = tempfile::Builder::new()
            .prefix("detector-rules-")
            .tempdir_in("/tmp")
            .unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        Scratch {
            dir,
            created: Vec::new(),
        }
    }

    /// A copy of `src` named `name` in the scratch `bin` directory (mode 0755, owned by
    /// root): a program whose executable has that name.
    pub fn program(&self, src: &str, name: &str) -> PathBuf {
        let p = self.dir.path().join("bin").join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        if !p.exists() {
            std::fs::copy(src, &p).unwrap();
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        p
    }

    /// A copy of `src` named `name` in the scratch `suid` directory, set-user-id root
    /// (mode 04755).
    pub fn setuid_program(&self, src: &str, name: &str) -> PathBuf {
        let p = self.dir.path().join("suid").join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        if !p.exists() {
            std::fs::copy(src, &p).unwrap();
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o4755)).unwrap();
        }
        p
    }

    /// A scratch subdirectory (world-writable).
    pub fn subdir(&self, name: &str) -> PathBuf {
        let p = self.dir.path().join(name);
        std::fs::create_dir_all(&p).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o777)).unwrap();
        p
    }

    /// The directory `path` outside the scratch tree, created (with its missing parents,
    /// removed on drop) when it does not exist.
    pub fn outside_dir(&mut self, path: &str) -> PathBuf {
        let p = PathBuf::from(path);
        let mut missing = Vec::new();
        let mut at = Some(p.as_path());
        while let Some(d) = at {
            if d.exists() {
                break;
            }
            missing.push(d.to_path_buf());
            at = d.parent();
        }
        std::fs::create_dir_all(&p).unwrap();
        // Deepest first, so the removal on drop goes leaf to root.
        self.created.extend(missing);
        p
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        for p in &self.created {
            let _ = std::fs::remove_dir(p);
        }
    }
}

/// Runs `cmd` to completion (bounded; its exit status does not matter: near misses and
/// probes of missing devices fail on purpose) and returns its run.
pub fn run(cmd: &mut Command) -> Run {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("spawning {cmd:?}: {e}"));
    let pid = child.id();
    wait::wait_timeout(&mut child, RUN_BOUND, &format!("{cmd:?}"));
    Run {
        pid: Some(pid),
        ..Run::default()
    }
}

/// Where `tool` is on this process's `PATH` (the gate, `Need::Tool`, checked it is).
pub fn tool_path(tool: &str) -> PathBuf {
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|d| d.join(tool))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("{tool} not on PATH"))
}

/// `argv` with a clean environment plus `env`, in `cwd`.
pub fn cmd(argv: &[&str], cwd: &Path, env: &[(&str, &str)]) -> Command {
    let mut c = Command::new(argv[0]);
    c.args(&argv[1..])
        .current_dir(cwd)
        .env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .envs(env.iter().copied());
    c
}

/// `argv` as user and group `nobody` (real and effective), via setpriv (which execs it in
/// the same process).
pub fn as_nobody(argv: &[&str], cwd: &Path) -> Command {
    let mut full = vec![
        "/usr/bin/setpriv",
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
    ];
    full.extend_from_slice(argv);
    cmd(&full, cwd, &[])
}

/// A fresh runc container (cgroup `/docker/<id>`, so it is a container to the daemon)
/// running `argv` in `cwd`, with `edit` applied to its config; runs it to completion.
pub fn in_container_with(
    argv: &[&str],
    cwd: &str,
    edit: impl FnOnce(&mut serde_json::Value),
) -> Run {
    let id = hex_id();
    let mut c = RuncContainer::new(argv, Some(&format!("/docker/{id}"))).unwrap();
    c.edit_config(|cfg| {
        cfg["process"]["cwd"] = cwd.into();
        edit(cfg)
    })
    .unwrap();
    c.run().unwrap();
    Run {
        container: Some(id),
        ..Run::default()
    }
}

/// A long-running process tree in its own process group, started by the test; the whole
/// group is killed on drop.
pub struct Running(pub std::process::Child);

impl Drop for Running {
    fn drop(&mut self) {
        // SAFETY: kill(2) on the process group our own, not yet reaped, child leads.
        unsafe { libc::kill(-(self.0.id() as i32), libc::SIGKILL) };
        wait::kill_and_reap(&mut self.0);
    }
}

impl Running {
    /// Waits (bounded) until the tree's leader has forked a child.
    pub fn wait_for_child(&self) {
        let pid = self.0.id();
        wait::until(Duration::from_secs(10), "the tree forked its child", || {
            let kids = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).ok()?;
            (!kids.trim().is_empty()).then_some(())
        })
    }

    /// The run to attribute the tree's alerts by (its leader and the leader's children).
    pub fn run(&self) -> Run {
        Run {
            pid: Some(self.0.id()),
            ..Run::default()
        }
    }
}

/// One row: the corpus rule, what it shows, and how to make its hit and its near miss.
pub struct Row {
    pub rule: &'static str,
    pub covers: &'static str,
    pub hit: fn(&mut Scratch) -> Run,
    pub miss: fn(&mut Scratch) -> Run,
}

/// `rule.name` of a rule file.
pub fn rule_name(file: &Path) -> String {
    let text = std::fs::read_to_string(file).unwrap();
    let v: toml::Value = toml::from_str(&text).unwrap();
    v["rule"]["name"].as_str().unwrap().to_owned()
}

/// One line per alert, for failure messages.
pub fn brief(alerts: &[&Value]) -> String {
    alerts
        .iter()
        .map(|a| {
            format!(
                "{} {} pid={} ppid={} name={} cmd={} rule={}\n",
                a["event"]["action"],
                a["container"]["id"],
                a["process"]["pid"],
                a["process"]["parent"]["pid"],
                a["process"]["name"],
                a["process"]["command_line"],
                a["rule"]["name"]
            )
        })
        .collect()
}

/// The shipped config with `files` (corpus rules, unmodified) plus the shipped seed rule
/// (the barrier's) as its rules: the guard keeping its directory, and its path.
pub fn config_with(files: &[PathBuf]) -> (tempfile::TempDir, PathBuf) {
    daemon::config_file(|t| {
        let seed = daemon::repo().join("config/rules").canonicalize().unwrap();
        let mut paths: Vec<String> = files
            .iter()
            .map(|f| format!("{:?}", f.display().to_string()))
            .collect();
        paths.push(format!("{:?}", seed.display().to_string()));
        let at = t.find("\npaths = [").expect("rules.paths");
        let end = at + t[at..].find("]\n").unwrap() + 2;
        format!(
            "{}\npaths = [{}]\n{}",
            &t[..at],
            paths.join(", "),
            &t[end..]
        )
    })
}

/// A daemon on [`config_with`]`(files)`, checked to have loaded every rule.
pub fn daemon_on(config: PathBuf, files: &[PathBuf]) -> Daemon {
    let d = Daemon::start_with(Opts {
        config: Some(config),
        ..Opts::default()
    });
    assert!(
        d.ready
            .starts_with(&format!("detector: ready: {} rules", files.len() + 1)),
        "{}",
        d.ready
    );
    d
}

/// A daemon on the shipped config with `files` plus the seed rule ([`config_with`]); the
/// guard keeps the config directory.
pub fn start_daemon(files: &[PathBuf]) -> (tempfile::TempDir, Daemon) {
    let (cfg_dir, config) = config_with(files);
    let d = daemon_on(config, files);
    (cfg_dir, d)
}

/// Waits (bounded) for the seed rule's alert on `ssh -V` in a fresh container: every event
/// before it has been through `d`'s pipeline by then.
pub fn barrier(d: &Daemon) {
    let id = hex_id();
    let mut c =
        RuncContainer::new(&["/usr/bin/ssh", "-V"], Some(&format!("/docker/{id}"))).unwrap();
    c.run().unwrap();
    assert!(
        !d.wait_alerts(&id, |a| !a.is_empty(), SETTLE_BOUND)
            .is_empty(),
        "barrier: no alert for ssh -V"
    );
}

/// Waits for the seed rule's alert on `ssh -V` in a fresh container (every earlier event
/// has been through the pipeline by then), stops the daemon and returns the alerts, each
/// checked against ECS 9.4 / Elastic Defend (a sequence's bookkeeping fields aside).
pub fn settle_and_stop(d: Daemon) -> Vec<Value> {
    barrier(&d);
    let s = d.stop();
    assert!(s.status.success(), "{:?}", s.status);
    let alerts: Vec<Value> = s
        .docs
        .into_iter()
        .filter(|d| d["event"]["kind"] == "alert")
        .collect();
    for a in &alerts {
        let errors = ecs_validate::validate_ecs(a);
        assert!(errors.is_empty(), "not ECS 9.4 / Defend: {errors:#?}\n{a}");
    }
    alerts
}

/// For each row, the alerts of its rule its hit caused; a failure line for each hit
/// without an alert and each near miss with one.
pub fn judge<'a>(
    dir: &Path,
    rows: &[Row],
    runs: &[(Run, Run)],
    alerts: &'a [Value],
) -> (Vec<Vec<&'a Value>>, Vec<String>) {
    let mut failures = Vec::new();
    let mut hits = Vec::new();
    for (row, (hit, miss)) in rows.iter().zip(runs) {
        let name = rule_name(&dir.join(row.rule));
        let of = |r: &Run| -> Vec<&Value> {
            alerts
                .iter()
                .filter(|a| a["rule"]["name"] == name.as_str() && r.owns(a))
                .collect()
        };
        let (h, m) = (of(hit), of(miss));
        if h.is_empty() {
            failures.push(format!(
                "{} ({}): no alert for the hit {hit:?}",
                row.rule, row.covers
            ));
        }
        if !m.is_empty() {
            failures.push(format!(
                "{} ({}): near miss alerted:\n{}",
                row.rule,
                row.covers,
                brief(&m)
            ));
        }
        hits.push(h);
    }
    (hits, failures)
}

/// The values of an array of strings.
pub fn strings(v: &Value) -> Vec<&str> {
    v.as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}
