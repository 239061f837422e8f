//! Shared helpers for end-to-end tests with real containers (runc, podman).
//!
//! Include from a test file with `#[path = "common/containers.rs"] mod containers;`.
//!
//! - [`rootfs`]: a minimal root filesystem (busybox-static, the host's `ssh`, `sshd`,
//!   `autossh` and `/usr/lib/autossh/autossh` with their `ldd` libraries, `/etc/passwd`
//!   with `root` and `sshd`, `/run/sshd`, host keys, an `sshd_config`), built once and
//!   cached under the temp dir (keyed by a version stamp; built in a private dir and
//!   renamed into place, so concurrent test binaries never see half a tree).
//! - [`RuncContainer`]: a bundle + `runc run` guard; `Drop` kills and deletes the container
//!   and removes the cgroup parents it created.
//! - [`PodmanContainer`]: `podman run` of the rootfs imported as an image, `--network none`
//!   always; `Drop` removes the container.
//!
//! Every helper returns `Err(String)` with the failing command and its stderr rather than
//! panicking, so a test can say clearly what is missing on the machine. Every command is
//! bounded ([`crate::wait`]): a stuck container or tool is killed and named in the error
//! instead of hanging the run (include `common/wait.rs` as `mod wait` at the crate root).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use crate::wait;

/// Bump when the rootfs layout changes: old caches are then ignored.
const ROOTFS_VERSION: &str = "v1";

/// Runs a short tool to completion within [`wait::TOOL`]; an error unless it exits 0.
fn run(cmd: &mut Command) -> Result<Output, String> {
    run_within(cmd, wait::TOOL)
}

/// [`run`] with another bound.
fn run_within(cmd: &mut Command, bound: Duration) -> Result<Output, String> {
    let what = format!("{cmd:?}");
    let out = wait::try_output_timeout(cmd, bound, &what)?;
    if !out.status.success() {
        return Err(format!(
            "{cmd:?} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(out)
}

/// The binaries the rootfs carries from the host.
const HOST_BINARIES: &[&str] = &[
    "/usr/bin/ssh",
    "/usr/sbin/sshd",
    "/usr/bin/autossh",
    "/usr/lib/autossh/autossh",
];

/// The cached rootfs (built on first use in this process).
pub fn rootfs() -> Result<PathBuf, String> {
    static ROOTFS: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    ROOTFS.get_or_init(build_rootfs_cached).clone()
}

fn build_rootfs_cached() -> Result<PathBuf, String> {
    let dir = std::env::temp_dir().join(format!("detector-test-rootfs-{ROOTFS_VERSION}"));
    if dir.join(".complete").exists() {
        return Ok(dir);
    }
    let tmp = std::env::temp_dir().join(format!(
        "detector-test-rootfs-{ROOTFS_VERSION}.{}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&tmp);
    let built = build_rootfs(&tmp);
    if let Err(e) = built {
        let _ = std::fs::remove_dir_all(&tmp);
        return Err(e);
    }
    std::fs::write(tmp.join(".complete"), b"").map_err(|e| e.to_string())?;
    if std::fs::rename(&tmp, &dir).is_err() {
        // Another test binary won the race: use its tree.
        let _ = std::fs::remove_dir_all(&tmp);
    }
    if dir.join(".complete").exists() {
        Ok(dir)
    } else {
        Err(format!("rootfs {} not complete", dir.display()))
    }
}

/// Build a rootfs in `root` (which must not exist).
pub fn build_rootfs(root: &Path) -> Result<(), String> {
    let busybox = ["/bin/busybox", "/usr/bin/busybox"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .ok_or("busybox-static is not installed (apt-get install -y busybox-static)")?;
    for b in HOST_BINARIES {
        if !Path::new(b).exists() {
            return Err(format!(
                "{b} missing (apt-get install -y openssh-client openssh-server autossh)"
            ));
        }
    }
    let mk = |p: &str| std::fs::create_dir_all(root.join(p)).map_err(|e| format!("mkdir {p}: {e}"));
    for d in [
        "bin",
        "usr/bin",
        "usr/sbin",
        "etc/ssh",
        "run/sshd",
        "tmp",
        "proc",
        "dev",
        "sys",
        "root",
        "var/empty",
    ] {
        mk(d)?;
    }
    std::fs::copy(busybox, root.join("bin/busybox")).map_err(|e| format!("copy busybox: {e}"))?;
    let list = run(Command::new(busybox).arg("--list"))?;
    for applet in String::from_utf8_lossy(&list.stdout).lines() {
        if applet.is_empty() || applet == "busybox" || applet.contains('/') {
            continue;
        }
        let _ = std::os::unix::fs::symlink("busybox", root.join("bin").join(applet));
    }
    // autossh's wrapper calls /usr/bin/printf by path.
    let _ = std::os::unix::fs::symlink("/bin/busybox", root.join("usr/bin/printf"));
    // Binaries and their libraries, at the same paths as on the host.
    let mut files: Vec<String> = HOST_BINARIES.iter().map(|s| s.to_string()).collect();
    for b in HOST_BINARIES {
        let out = wait::try_output_timeout(Command::new("ldd").arg(b), wait::TOOL, "ldd")?;
        // A shell script is "not a dynamic executable": nothing to add.
        for tok in String::from_utf8_lossy(&out.stdout).split_whitespace() {
            if tok.starts_with('/') && !files.iter().any(|f| f == tok) {
                files.push(tok.to_string());
            }
        }
    }
    for f in &files {
        run(Command::new("cp")
            .arg("-L")
            .arg("--parents")
            .arg(f)
            .arg(root))?;
    }
    std::fs::write(
        root.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nsshd:x:100:65534:sshd:/run/sshd:/bin/false\nnobody:x:65534:65534:nobody:/:/bin/false\n",
    )
    .map_err(|e| e.to_string())?;
    std::fs::write(root.join("etc/group"), "root:x:0:\nnogroup:x:65534:\n")
        .map_err(|e| e.to_string())?;
    std::fs::write(
        root.join("etc/ssh/sshd_config"),
        "Port 2222\nListenAddress 127.0.0.1\nUsePAM no\nPidFile /run/sshd.pid\n",
    )
    .map_err(|e| e.to_string())?;
    run(Command::new("ssh-keygen").arg("-A").arg("-f").arg(root))?;
    Ok(())
}

/// A random-enough 64-hex container id.
pub fn hex_id() -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let seed = format!(
        "{}-{}-{:?}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
    );
    use sha2::Digest;
    let d = sha2::Sha256::digest(seed.as_bytes());
    d.iter().map(|b| format!("{b:02x}")).collect()
}

/// The cgroup v2 mount (the unified hierarchy on hybrid hosts).
pub fn cgroup2_root() -> PathBuf {
    let unified = Path::new("/sys/fs/cgroup/unified");
    if unified.join("cgroup.procs").exists() {
        unified.to_path_buf()
    } else {
        PathBuf::from("/sys/fs/cgroup")
    }
}

/// Every mounted cgroup hierarchy directory (v1 controllers and v2).
fn cgroup_hierarchies() -> Vec<PathBuf> {
    let mut v = vec![];
    if let Ok(rd) = std::fs::read_dir("/sys/fs/cgroup") {
        for e in rd.flatten() {
            let p = e.path();
            if p.join("cgroup.procs").exists() {
                v.push(p);
            }
        }
    }
    if Path::new("/sys/fs/cgroup/cgroup.procs").exists() {
        v.push(PathBuf::from("/sys/fs/cgroup"));
    }
    v
}

/// A runc container: a bundle in a temp dir over the shared rootfs, and the `runc run`
/// process when started in the background. Dropping it kills and deletes the container.
pub struct RuncContainer {
    pub id: String,
    pub cgroups_path: Option<String>,
    bundle: tempfile::TempDir,
    child: Option<Child>,
    /// cgroup parent directories (relative) that did not exist before: removed on drop.
    created_parents: Vec<String>,
}

impl RuncContainer {
    /// Write a bundle for `args` (process.terminal=false, root.readonly=false, the shared
    /// rootfs, optional `linux.cgroupsPath`).
    pub fn new(args: &[&str], cgroups_path: Option<&str>) -> Result<Self, String> {
        let rootfs = rootfs()?;
        let bundle = tempfile::Builder::new()
            .prefix("detector-runc-")
            .tempdir()
            .map_err(|e| e.to_string())?;
        run(Command::new("runc")
            .arg("spec")
            .arg("--bundle")
            .arg(bundle.path()))?;
        let path = bundle.path().join("config.json");
        let text = std::fs::read_to_string(&path).map_err(|e| e.to_string())?;
        let mut cfg: serde_json::Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
        cfg["process"]["terminal"] = false.into();
        cfg["process"]["args"] = args.iter().map(|a| serde_json::Value::from(*a)).collect();
        cfg["root"]["path"] = rootfs.to_string_lossy().into_owned().into();
        cfg["root"]["readonly"] = false.into();
        cfg["hostname"] = "detector-test".into();
        if let Some(cg) = cgroups_path {
            cfg["linux"]["cgroupsPath"] = cg.into();
        }
        std::fs::write(&path, serde_json::to_vec_pretty(&cfg).unwrap())
            .map_err(|e| e.to_string())?;
        // Which parents of the cgroup path are ours to remove afterwards.
        let mut created_parents = vec![];
        if let Some(cg) = cgroups_path {
            let comps: Vec<&str> = cg.split('/').filter(|c| !c.is_empty()).collect();
            for i in 1..comps.len() {
                let rel = comps[..i].join("/");
                if !cgroup2_root().join(&rel).exists() {
                    created_parents.push(rel);
                }
            }
        }
        static N: AtomicU32 = AtomicU32::new(0);
        let id = format!(
            "dt-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        Ok(RuncContainer {
            id,
            cgroups_path: cgroups_path.map(str::to_string),
            bundle,
            child: None,
            created_parents,
        })
    }

    /// Edit the bundle's `config.json` (e.g. `process.user.uid`) before running.
    pub fn edit_config(&mut self, edit: impl FnOnce(&mut serde_json::Value)) -> Result<(), String> {
        let path = self.bundle.path().join("config.json");
        let text = std::fs::read_to_string(&path).map_err(|e| e.to_string())?;
        let mut cfg: serde_json::Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
        edit(&mut cfg);
        std::fs::write(&path, serde_json::to_vec_pretty(&cfg).unwrap()).map_err(|e| e.to_string())
    }

    /// `runc run` in the foreground to completion (within [`wait::CONTAINER`]); returns its
    /// output.
    pub fn run(&mut self) -> Result<Output, String> {
        self.run_within(wait::CONTAINER)
    }

    /// `runc run` in the foreground to completion within `bound`: past it `runc run` is
    /// killed (the container with it, on drop) and the error names the container.
    pub fn run_within(&mut self, bound: Duration) -> Result<Output, String> {
        let what = format!("runc run {} ({:?})", self.id, self.cgroups_path);
        wait::try_output_timeout(
            Command::new("runc")
                .arg("run")
                .arg("--bundle")
                .arg(self.bundle.path())
                .arg(&self.id),
            bound,
            &what,
        )
    }

    /// `runc run` to completion as a child whose pid is known (the container init's parent):
    /// returns that pid and the output.
    pub fn run_with_pid(&mut self) -> Result<(u32, Output), String> {
        let child = Command::new("runc")
            .arg("run")
            .arg("--bundle")
            .arg(self.bundle.path())
            .arg(&self.id)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("runc run: {e}"))?;
        let pid = child.id();
        let what = format!("runc run {}", self.id);
        let out = wait::try_child_output_timeout(child, wait::CONTAINER, &what)?;
        Ok((pid, out))
    }

    /// `runc run` in the background (for long-running processes); waits until runc reports
    /// the container running and returns its init's host pid.
    pub fn start(&mut self) -> Result<u32, String> {
        let child = Command::new("runc")
            .arg("run")
            .arg("--bundle")
            .arg(self.bundle.path())
            .arg(&self.id)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("runc run: {e}"))?;
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Some((status, pid)) = self.state()
                && status == "running"
                && pid > 0
            {
                return Ok(pid);
            }
            if let Some(c) = self.child.as_mut()
                && let Ok(Some(st)) = c.try_wait()
            {
                // Its stderr, read on a thread with a bound (a container process could
                // still hold the pipe).
                let err = c.stderr.take().map(|mut e| {
                    std::thread::spawn(move || {
                        use std::io::Read;
                        let mut err = String::new();
                        let _ = e.read_to_string(&mut err);
                        err
                    })
                });
                let err = match err {
                    Some(h) => wait::try_join_timeout(h, Duration::from_secs(5), "runc's stderr")
                        .unwrap_or_else(|e| e),
                    None => String::new(),
                };
                return Err(format!("runc run exited early ({st}): {err}"));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Err("runc container did not start within 10 s".into())
    }

    /// `runc state`: (status, init pid).
    pub fn state(&self) -> Option<(String, u32)> {
        let out = wait::try_output_timeout(
            Command::new("runc").arg("state").arg(&self.id),
            wait::TOOL,
            "runc state",
        )
        .ok()?;
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
        Some((v["status"].as_str()?.to_string(), v["pid"].as_u64()? as u32))
    }
}

impl Drop for RuncContainer {
    fn drop(&mut self) {
        // Best effort, bounded: a drop must not hang (nor panic while a test unwinds).
        let _ = wait::try_output_timeout(
            Command::new("runc").args(["kill", &self.id, "KILL"]),
            wait::TOOL,
            "runc kill",
        );
        if let Some(mut c) = self.child.take()
            && wait::try_wait_timeout(&mut c, Duration::from_secs(5), "runc run to end").is_err()
        {
            eprintln!(
                "runc run {} did not end after runc kill; killed it",
                self.id
            );
        }
        let _ = wait::try_output_timeout(
            Command::new("runc").args(["delete", "-f", &self.id]),
            wait::TOOL,
            "runc delete",
        );
        // runc removes the container's own cgroup, not the parents it created.
        for rel in self.created_parents.iter().rev() {
            for h in cgroup_hierarchies() {
                let _ = std::fs::remove_dir(h.join(rel));
            }
        }
    }
}

/// The image name podman tests use (imported from [`rootfs`]).
pub const PODMAN_IMAGE: &str = "localhost/detector-test:v1";

/// Import the rootfs as a podman image once per process.
pub fn podman_image() -> Result<&'static str, String> {
    static IMAGE: OnceLock<Result<&'static str, String>> = OnceLock::new();
    IMAGE
        .get_or_init(|| {
            if wait::try_output_timeout(
                Command::new("podman").args(["image", "exists", PODMAN_IMAGE]),
                wait::TOOL,
                "podman image exists",
            )
            .is_ok_and(|o| o.status.success())
            {
                return Ok(PODMAN_IMAGE);
            }
            let root = rootfs()?;
            let tar = tempfile::Builder::new()
                .prefix("detector-rootfs-")
                .suffix(".tar")
                .tempfile()
                .map_err(|e| e.to_string())?;
            run(Command::new("tar")
                .arg("-C")
                .arg(&root)
                .arg("--exclude=./.complete")
                .arg("-cf")
                .arg(tar.path())
                .arg("."))?;
            run_within(
                Command::new("podman")
                    .arg("import")
                    .arg(tar.path())
                    .arg(PODMAN_IMAGE),
                wait::CONTAINER,
            )?;
            Ok(PODMAN_IMAGE)
        })
        .clone()
}

/// A podman container (rootful, runc, no network). Dropping it removes the container.
pub struct PodmanContainer {
    pub name: String,
}

fn podman_run_args(name: &str) -> Vec<String> {
    [
        "run",
        "--name",
        name,
        "--runtime",
        "runc",
        "--network",
        "none",
        "--ulimit",
        "nofile=1024:1024",
        "--ulimit",
        "nproc=4096:4096",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

impl PodmanContainer {
    fn fresh_name() -> String {
        static N: AtomicU32 = AtomicU32::new(0);
        format!(
            "detector-test-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        )
    }

    /// `podman run --rm … <image> args` to completion (within [`wait::CONTAINER`]).
    pub fn run(args: &[&str]) -> Result<Output, String> {
        let image = podman_image()?;
        let name = Self::fresh_name();
        let guard = PodmanContainer { name: name.clone() };
        let out = wait::try_output_timeout(
            Command::new("podman")
                .args(podman_run_args(&name))
                .arg("--rm")
                .arg(image)
                .args(args),
            wait::CONTAINER,
            &format!("podman run {name}"),
        )?;
        drop(guard);
        Ok(out)
    }

    /// `podman create` then `podman start -a`, to completion (within
    /// [`wait::CONTAINER`]): returns the output and the full container id (so a test can
    /// find the container's events). The container is removed before returning, also on
    /// error.
    pub fn run_with_id(args: &[&str]) -> Result<(Output, String), String> {
        Self::run_with_id_within(args, wait::CONTAINER)
    }

    /// [`PodmanContainer::run_with_id`] with `podman start -a` bounded by `bound`.
    pub fn run_with_id_within(args: &[&str], bound: Duration) -> Result<(Output, String), String> {
        let image = podman_image()?;
        let name = Self::fresh_name();
        let guard = PodmanContainer { name: name.clone() };
        let mut create = podman_run_args(&name);
        create[0] = "create".into();
        let out = run(Command::new("podman").args(create).arg(image).args(args))?;
        let id = String::from_utf8_lossy(&out.stdout).trim().to_string();
        let out = wait::try_output_timeout(
            Command::new("podman").args(["start", "-a", &name]),
            bound,
            &format!("podman start -a {name}"),
        )?;
        drop(guard);
        Ok((out, id))
    }

    /// `podman run -d … <image> args`: returns the guard, the full container id and the
    /// init's host pid.
    pub fn start(args: &[&str]) -> Result<(PodmanContainer, String, u32), String> {
        let image = podman_image()?;
        let name = Self::fresh_name();
        let guard = PodmanContainer { name: name.clone() };
        let out = run_within(
            Command::new("podman")
                .args(podman_run_args(&name))
                .arg("-d")
                .arg(image)
                .args(args),
            wait::CONTAINER,
        )?;
        let id = String::from_utf8_lossy(&out.stdout).trim().to_string();
        let pid =
            run(Command::new("podman").args(["inspect", "--format", "{{.State.Pid}}", &name]))?;
        let pid = String::from_utf8_lossy(&pid.stdout)
            .trim()
            .parse()
            .map_err(|e| format!("podman pid: {e}"))?;
        Ok((guard, id, pid))
    }
}

impl Drop for PodmanContainer {
    fn drop(&mut self) {
        // Best effort, bounded: a drop must not hang.
        let _ = wait::try_output_timeout(
            Command::new("podman").args(["rm", "-f", "-t", "0", &self.name]),
            wait::TOOL,
            "podman rm",
        );
    }
}
