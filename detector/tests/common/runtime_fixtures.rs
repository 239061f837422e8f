//! Private container engines for runtime-state tests: each with its own data root, state
//! root and socket, so nothing another test (or helper) runs is touched, and each stopped and
//! removed when its guard drops, also on failure. Only pids started here are signalled.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::wait;

const BOUND: Duration = Duration::from_secs(60);

/// A root filesystem with a static busybox at `/bin/busybox`.
pub fn busybox_rootfs(dir: &Path) -> PathBuf {
    let root = dir.join("rootfs");
    for d in ["bin", "etc", "proc", "sys", "dev", "tmp"] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    let bb = ["/bin/busybox", "/usr/bin/busybox"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .expect("busybox");
    std::fs::copy(bb, root.join("bin/busybox")).unwrap();
    std::fs::write(root.join("etc/passwd"), "root:x:0:0:root:/:/bin/sh\n").unwrap();
    root
}

/// Run a command to completion (bounded), returning stdout; panics with stderr on failure.
pub fn run(cmd: &mut Command, what: &str) -> String {
    let out = wait::output_timeout(cmd, BOUND, what);
    assert!(
        out.status.success(),
        "{what}: {}\n{}",
        wait::describe(&out.status),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Like [`run`], but a failure is only returned.
pub fn try_run(cmd: &mut Command, what: &str) -> Result<String, String> {
    let out = wait::output_timeout(cmd, BOUND, what);
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// The `0::` cgroup of a pid.
pub fn cgroup_of(pid: u32) -> String {
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap_or_default();
    text.lines()
        .find_map(|l| l.strip_prefix("0::"))
        .unwrap_or("")
        .to_string()
}

/// A daemon this test started; dropped: SIGTERM, bounded wait, SIGKILL.
struct Owned(Child);

impl Drop for Owned {
    fn drop(&mut self) {
        // SAFETY: signalling a child this test spawned (and has not reaped).
        unsafe { libc::kill(self.0.id() as i32, libc::SIGTERM) };
        // On timeout the child is killed and reaped.
        let _ = wait::try_wait_timeout(&mut self.0, Duration::from_secs(20), "daemon exit");
    }
}

/// A private dockerd: `/var/lib/dt-<tag>` data root, `/run/dt-<tag>` exec root and socket.
pub struct Dockerd {
    pub data_root: PathBuf,
    pub exec_root: PathBuf,
    pub socket: PathBuf,
    containers: Vec<String>,
    daemon: Option<Owned>,
}

impl Dockerd {
    pub fn start(tag: &str) -> Dockerd {
        let data_root = PathBuf::from(format!("/var/lib/dt-{tag}"));
        let exec_root = PathBuf::from(format!("/run/dt-{tag}"));
        let socket = PathBuf::from(format!("/run/dt-{tag}.sock"));
        std::fs::create_dir_all(&data_root).unwrap();
        std::fs::create_dir_all(&exec_root).unwrap();
        let log = std::fs::File::create(format!("/tmp/dt-{tag}.log")).unwrap();
        let child = Command::new("dockerd")
            .args(["--iptables=false", "--ip6tables=false", "--bridge=none"])
            .arg("--data-root")
            .arg(&data_root)
            .arg("--exec-root")
            .arg(&exec_root)
            .arg("--pidfile")
            .arg(format!("/run/dt-{tag}.pid"))
            .arg("-H")
            .arg(format!("unix://{}", socket.display()))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("dockerd");
        let mut d = Dockerd {
            data_root,
            exec_root,
            socket,
            containers: Vec::new(),
            daemon: Some(Owned(child)),
        };
        wait::until(BOUND, "dockerd ready", || {
            try_run(&mut d.cli(&["info"]), "docker info").ok()
        });
        d.containers.clear();
        d
    }

    /// A `docker` command against this daemon.
    pub fn cli(&self, args: &[&str]) -> Command {
        let mut c = Command::new("docker");
        c.env("DOCKER_HOST", format!("unix://{}", self.socket.display()))
            .args(args);
        c
    }

    /// `docker create …`, remembered for removal.
    pub fn create(&mut self, args: &[&str]) -> String {
        let mut all = vec!["create"];
        all.extend_from_slice(args);
        let id = run(&mut self.cli(&all), "docker create");
        self.containers.push(id.clone());
        id
    }
}

impl Drop for Dockerd {
    fn drop(&mut self) {
        for id in std::mem::take(&mut self.containers) {
            let _ = try_run(&mut self.cli(&["rm", "-f", &id]), "docker rm");
        }
        self.daemon.take();
        let _ = std::fs::remove_dir_all(&self.exec_root);
        let _ = std::fs::remove_dir_all(&self.data_root);
        let _ = std::fs::remove_file(&self.socket);
    }
}

/// A private containerd (CRI plugin off): root `/var/lib/ct-<tag>`, state `/run/ct-<tag>`.
pub struct Containerd {
    pub root: PathBuf,
    pub state: PathBuf,
    pub socket: PathBuf,
    tasks: Vec<(String, String)>,
    daemon: Option<Owned>,
}

impl Containerd {
    pub fn start(tag: &str) -> Containerd {
        let root = PathBuf::from(format!("/var/lib/ct-{tag}"));
        let state = PathBuf::from(format!("/run/ct-{tag}"));
        let socket = state.join("containerd.sock");
        std::fs::create_dir_all(&state).unwrap();
        let config = state.join("config.toml");
        std::fs::write(
            &config,
            format!(
                "version = 2\nroot = \"{}\"\nstate = \"{}\"\n\
                 disabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n\
                 [grpc]\n  address = \"{}\"\n[ttrpc]\n  address = \"{}.ttrpc\"\n\
                 [debug]\n  address = \"\"\n[metrics]\n  address = \"\"\n",
                root.display(),
                state.display(),
                socket.display(),
                socket.display()
            ),
        )
        .unwrap();
        let log = std::fs::File::create(format!("/tmp/ct-{tag}.log")).unwrap();
        let child = Command::new("containerd")
            .arg("--config")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("containerd");
        let c = Containerd {
            root,
            state,
            socket,
            tasks: Vec::new(),
            daemon: Some(Owned(child)),
        };
        wait::until(BOUND, "containerd ready", || {
            try_run(&mut c.ctr("default", &["version"]), "ctr version").ok()
        });
        c
    }

    pub fn ctr(&self, ns: &str, args: &[&str]) -> Command {
        let mut c = Command::new("ctr");
        c.arg("--address")
            .arg(&self.socket)
            .args(["-n", ns])
            .args(args);
        c
    }

    /// `ctr run -d [flags] --rootfs ROOTFS ID /bin/busybox sleep 600`; the task's pid.
    pub fn run_task(&mut self, ns: &str, id: &str, flags: &[&str], rootfs: &Path) -> u32 {
        let mut args = vec!["run", "-d"];
        args.extend_from_slice(flags);
        let rootfs = rootfs.to_string_lossy().into_owned();
        args.extend_from_slice(&["--rootfs", &rootfs, id, "/bin/busybox", "sleep", "600"]);
        self.tasks.push((ns.into(), id.into()));
        run(&mut self.ctr(ns, &args), "ctr run");
        let dir = self
            .state
            .join("io.containerd.runtime.v2.task")
            .join(ns)
            .join(id);
        wait::until(BOUND, "task pid", || {
            std::fs::read_to_string(dir.join("init.pid"))
                .ok()?
                .trim()
                .parse()
                .ok()
        })
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        for (ns, id) in std::mem::take(&mut self.tasks) {
            let _ = try_run(
                &mut self.ctr(&ns, &["task", "kill", "-s", "KILL", &id]),
                "kill",
            );
            let _ = wait::try_until(Duration::from_secs(10), Duration::from_millis(50), || {
                try_run(&mut self.ctr(&ns, &["task", "rm", &id]), "task rm").ok()
            });
            let _ = try_run(&mut self.ctr(&ns, &["container", "rm", &id]), "c rm");
        }
        self.daemon.take();
        let _ = std::fs::remove_dir_all(&self.state);
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

/// Private podman storage (`--root`, `--runroot`, vfs driver); containers removed on drop.
pub struct Podman {
    pub root: PathBuf,
    pub runroot: PathBuf,
}

impl Podman {
    pub fn new(tag: &str) -> Podman {
        Podman {
            root: format!("/var/lib/pt-{tag}").into(),
            runroot: format!("/run/pt-{tag}").into(),
        }
    }

    pub fn cli(&self, args: &[&str]) -> Command {
        let mut c = Command::new("podman");
        c.arg("--root")
            .arg(&self.root)
            .arg("--runroot")
            .arg(&self.runroot)
            .args(["--storage-driver", "vfs"])
            .args(args);
        c
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        let _ = try_run(&mut self.cli(&["rm", "-af", "-t", "0"]), "podman rm");
        let _ = try_run(&mut self.cli(&["system", "reset", "-f"]), "podman reset");
        let _ = std::fs::remove_dir_all(&self.runroot);
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

/// A private LXC path with one busybox container; stopped and destroyed on drop.
pub struct Lxc {
    pub path: PathBuf,
    pub name: String,
}

impl Lxc {
    pub fn create(tag: &str) -> Lxc {
        let path = PathBuf::from(format!("/var/lib/lt-{tag}"));
        std::fs::create_dir_all(&path).unwrap();
        let name = format!("lt-{tag}");
        let l = Lxc { path, name };
        run(
            Command::new("lxc-create")
                .arg("-P")
                .arg(&l.path)
                .args(["-n", &l.name, "-t", "busybox"]),
            "lxc-create",
        );
        let cfg = l.path.join(&l.name).join("config");
        let text = std::fs::read_to_string(&cfg).unwrap();
        let text: String = text
            .lines()
            .filter(|l| !l.starts_with("lxc.net.0."))
            .map(|l| format!("{l}\n"))
            .collect();
        std::fs::write(&cfg, format!("{text}lxc.net.0.type = empty\n")).unwrap();
        l
    }

    pub fn cmd(&self, tool: &str) -> Command {
        let mut c = Command::new(tool);
        c.arg("-P").arg(&self.path).args(["-n", &self.name]);
        c
    }
}

impl Drop for Lxc {
    fn drop(&mut self) {
        let _ = try_run(self.cmd("lxc-stop").args(["-k"]), "lxc-stop");
        let _ = try_run(self.cmd("lxc-destroy").args(["-f"]), "lxc-destroy");
        let _ = std::fs::remove_dir_all(&self.path);
    }
}
