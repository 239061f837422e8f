//! Real container engines for end-to-end tests, each started privately by the test that uses
//! it and torn down on drop (also when the test fails):
//!
//! - [`docker::Dockerd`]: a private `dockerd` (`--iptables=false --bridge=none`, its own
//!   `--data-root`, `--exec-root`, `--pidfile` and socket; its embedded containerd lives
//!   under that exec-root), the shared test rootfs imported with `docker import`, containers
//!   always `--network none`.
//! - [`containerd::Containerd`]: the system `containerd` binary on a private root, state
//!   directory and socket; the rootfs imported as an OCI archive with `ctr images import` into
//!   the namespaces a test names; `ctr run`.
//! - [`lxc::LxcContainer`]: `lxc-create -t busybox` with `lxc.net.0.type = empty` (there is
//!   no `lxcbr0` here), a unique name per container, `lxc-start` / `lxc-attach` /
//!   `lxc-destroy`.
//! - [`nspawn::Nspawn`]: `systemd-nspawn` run from a `machine.slice/machine-NAME.scope`
//!   cgroup the test makes, because systemd is not PID 1 here (see the module).
//! - podman: the existing [`crate::containers::PodmanContainer`].
//!
//! Why private instances: other tests (and other people) may run a dockerd or containerd on
//! this machine; a private one is never disturbed by them nor disturbs them, and its
//! teardown may remove everything it made. Teardown: containers removed, the daemon
//! stopped by its pid (SIGTERM, then SIGKILL past a bound), every mount under its
//! directories unmounted, stray processes that name its directories killed, the
//! directories removed. [`leaks`] reports what is left under a directory, so a test can
//! prove teardown complete.
//!
//! Every external command is bounded ([`crate::wait`]); every helper returns `Err(String)`
//! naming the failing command and its stderr. Setup and teardown times are printed on
//! stderr (`engines: … in …`), for the README's numbers.
//!
//! Include from a test crate root after `containers` and `wait`:
//! `#[path = "common/engines.rs"] mod engines;`.
#![allow(dead_code)]

// Included through `#[path]`, this file's submodules resolve from `common/`: spelled out.
#[path = "engines/containerd.rs"]
pub mod containerd;
#[path = "engines/docker.rs"]
pub mod docker;
#[path = "engines/image.rs"]
pub mod image;
#[path = "engines/lxc.rs"]
pub mod lxc;
#[path = "engines/nspawn.rs"]
pub mod nspawn;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use crate::wait;

/// Bound on an engine daemon becoming ready (dockerd takes about a second here).
pub const READY: Duration = Duration::from_secs(60);
/// Bound on an engine daemon exiting after SIGTERM, before it is killed.
pub const STOP: Duration = Duration::from_secs(20);

/// Where private engines keep the state the daemon reads to know their containers and
/// their metadata (container truth where cgroup names are silent; names, images). The
/// daemon's defaults are the system engines' paths, so a test of a private engine must tell
/// the daemon where to look: [`state_roots_toml`].
#[derive(Clone, Debug, Default)]
pub struct StateRoots {
    /// docker data roots (`containers/<id>/config.v2.json`).
    pub docker: Vec<PathBuf>,
    /// containerd state directories (`io.containerd.runtime.v2.task/<ns>/<id>/`), docker's
    /// own containerd included.
    pub containerd: Vec<PathBuf>,
}

impl StateRoots {
    /// Both sets of roots together.
    pub fn with(mut self, other: StateRoots) -> StateRoots {
        self.docker.extend(other.docker);
        self.containerd.extend(other.containerd);
        self
    }
}

/// `config` (the shipped config's text) with `roots` added to where the daemon reads runtime
/// state (`[container] containerd_state` and `docker_root`, after the system paths); `None`
/// when there is nothing to add.
pub fn state_roots_toml(config: &str, roots: &StateRoots) -> Option<String> {
    if roots.docker.is_empty() && roots.containerd.is_empty() {
        return None;
    }
    let list = |system: &[&str], extra: &[PathBuf]| {
        let mut items: Vec<String> = system.iter().map(|s| format!("{s:?}")).collect();
        items.extend(
            extra
                .iter()
                .map(|p| format!("{:?}", p.display().to_string())),
        );
        format!("[{}]", items.join(", "))
    };
    let mut replaced = 0;
    let out: Vec<String> = config
        .lines()
        .map(|line| {
            if line.starts_with("containerd_state = ") {
                replaced += 1;
                let system = ["/run/containerd", "/run/docker/containerd/daemon"];
                format!("containerd_state = {}", list(&system, &roots.containerd))
            } else if line.starts_with("docker_root = ") {
                replaced += 1;
                format!(
                    "docker_root = {}",
                    list(&["/var/lib/docker"], &roots.docker)
                )
            } else {
                line.to_string()
            }
        })
        .collect();
    assert_eq!(
        replaced, 2,
        "the shipped config no longer has [container] containerd_state and docker_root"
    );
    Some(out.join("\n") + "\n")
}

/// Runs `cmd` to completion within `bound`; an error (command, status, stderr) unless it
/// exits 0.
pub fn run(cmd: &mut Command, bound: Duration) -> Result<Output, String> {
    let what = format!("{cmd:?}");
    let out = wait::try_output_timeout(cmd, bound, &what)?;
    if !out.status.success() {
        return Err(format!(
            "{what} failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(out)
}

/// Standard output of a successful `cmd`, trimmed.
pub fn stdout_of(cmd: &mut Command, bound: Duration) -> Result<String, String> {
    run(cmd, bound).map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
}

/// A fresh private directory for one engine instance, readable by root only; short
/// (`/tmp/dte-<kind>-<pid>-<n>`) because unix socket paths are limited to 108 bytes.
pub fn private_dir(kind: &str) -> Result<PathBuf, String> {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let dir = std::env::temp_dir().join(format!(
        "dte-{kind}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| format!("mkdir {}: {e}", dir.display()))?;
    Ok(dir)
}

/// Mount points at or under `root` (from `/proc/self/mountinfo`), deepest first.
pub fn mounts_under(root: &Path) -> Vec<PathBuf> {
    let text = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut v: Vec<PathBuf> = text
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|m| PathBuf::from(unescape_mount(m)))
        .filter(|m| m.starts_with(root))
        .collect();
    v.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    v.dedup();
    v
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo`.
fn unescape_mount(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && let Ok(n) = u8::from_str_radix(&s[i + 1..i + 4], 8)
        {
            out.push(n);
            i += 4;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Pids of processes whose command line names `root` (an engine's shims and helpers are
/// started with paths under its private directory, so these are the engine's own).
pub fn processes_naming(root: &Path) -> Vec<u32> {
    let needle = root.to_string_lossy().into_owned();
    let me = std::process::id();
    let mut pids = vec![];
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        if pid == me {
            continue;
        }
        let cmd = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
        let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
        if cmd.contains(&needle) {
            pids.push(pid);
        }
    }
    pids
}

/// What an engine left under `root`: mount points, live processes naming it, and whether
/// the directory itself still exists. Empty means the teardown was complete.
pub fn leaks(root: &Path) -> Vec<String> {
    let mut v: Vec<String> = mounts_under(root)
        .into_iter()
        .map(|m| format!("mount {}", m.display()))
        .collect();
    v.extend(
        processes_naming(root)
            .into_iter()
            .filter(|p| wait::proc_state(*p).is_some_and(|s| s != 'Z'))
            .map(|p| format!("process {p}: {}", cmdline(p))),
    );
    if root.exists() {
        v.push(format!("directory {}", root.display()));
    }
    v
}

/// A process's command line, for messages.
pub fn cmdline(pid: u32) -> String {
    String::from_utf8_lossy(&std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default())
        .replace('\0', " ")
        .trim()
        .to_string()
}

/// The last part of an engine's teardown: kills processes that still name `root` (after
/// the engine has been asked to stop its containers and has exited), unmounts everything
/// under it (lazily, deepest first) and removes it. Best effort and bounded; what could not
/// be removed is printed.
pub fn scrub(root: &Path) {
    for pid in processes_naming(root) {
        // SAFETY: kill(2) by pid on a process started by this test's private engine (its
        // command line names the engine's private directory).
        unsafe { libc::kill(pid as i32, libc::SIGKILL) };
    }
    for m in mounts_under(root) {
        let _ = wait::try_output_timeout(
            Command::new("umount").arg("-l").arg(&m),
            wait::TOOL,
            "umount -l",
        );
    }
    for _ in 0..50 {
        if std::fs::remove_dir_all(root).is_ok() || !root.exists() {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let left = leaks(root);
    if !left.is_empty() {
        eprintln!("engines: teardown of {} left: {left:?}", root.display());
    }
}

/// Sends SIGTERM to `pid` and waits (bounded by [`STOP`]) for it to go; SIGKILL past that.
/// For an engine daemon this test started (its pid from its own pidfile or `Child`).
pub fn stop_pid(pid: u32) {
    // SAFETY: kill(2) on the pid of an engine daemon this test started.
    unsafe { libc::kill(pid as i32, libc::SIGTERM) };
    let gone = wait::try_until(STOP, Duration::from_millis(20), || {
        wait::proc_state(pid).is_none_or(|s| s == 'Z').then_some(())
    });
    if gone.is_none() {
        eprintln!(
            "engines: pid {pid} ({}) ignored SIGTERM; killed",
            cmdline(pid)
        );
        // SAFETY: as above.
        unsafe { libc::kill(pid as i32, libc::SIGKILL) };
    }
}

/// Times a setup or teardown step and prints it (`engines: <what> in <ms> ms`).
pub fn timed<T>(what: &str, f: impl FnOnce() -> T) -> T {
    let t = Instant::now();
    let v = f();
    eprintln!("engines: {what} in {} ms", t.elapsed().as_millis());
    v
}

/// The `0::` (cgroup v2) path of a process, `None` when it is gone.
pub fn cgroup_of(pid: u32) -> Option<String> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("0::"))
        .map(str::to_string)
}

/// Host pids of the processes in cgroup v2 path `cgroup` (relative to the v2 root, with a
/// leading slash) whose command line contains `marker`.
pub fn pids_in_cgroup_with(cgroup: &str, marker: &str) -> Vec<u32> {
    let mut v = vec![];
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        if cgroup_of(pid).as_deref() == Some(cgroup) && cmdline(pid).contains(marker) {
            v.push(pid);
        }
    }
    v
}

/// Removes the cgroup directory `rel` (relative to each hierarchy root) in every mounted
/// hierarchy when it is empty: for parents an engine created and does not remove itself
/// (`/default`, `/k8s.io` of `ctr run`). A parent that holds anything stays.
pub fn remove_empty_cgroup(rel: &str) {
    let rel = rel.trim_start_matches('/');
    let mut roots = vec![crate::containers::cgroup2_root()];
    for e in std::fs::read_dir("/sys/fs/cgroup")
        .into_iter()
        .flatten()
        .flatten()
    {
        if e.path().join("cgroup.procs").exists() {
            roots.push(e.path());
        }
    }
    for r in roots {
        let _ = std::fs::remove_dir(r.join(rel));
    }
}
