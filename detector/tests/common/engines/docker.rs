//! A private `dockerd` for one test. Its data root, exec root (where its embedded containerd
//! keeps state and socket), pidfile and API socket all live in one private directory; it
//! never touches the host's firewall (`--iptables=false --bridge=none`) and every container
//! runs with `--network none`. Containers still land in the host's `/docker/<64hex>`
//! cgroups (cgroupfs driver), as with any dockerd.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use super::{image, run, stdout_of};
use crate::wait;

/// The image the rootfs is imported as (`docker import`), and its parts as docker reports
/// them (`Config.Image`).
pub const IMAGE: &str = "local/sshbox:1";
pub const IMAGE_NAME: &str = "local/sshbox";
pub const IMAGE_TAG: &str = "1";

/// A running private dockerd; dropping it removes its containers, stops it and removes every
/// trace of it (mounts, processes, directories).
pub struct Dockerd {
    pub dir: PathBuf,
    pub sock: PathBuf,
    child: Option<Child>,
    /// From spawn to a successful `docker version`.
    pub ready_in: Duration,
}

impl Dockerd {
    /// The private data root (`containers/<id>/config.v2.json` live here).
    pub fn data_root(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// The private exec root (its containerd: `containerd/containerd.sock`, task state under
    /// `containerd/daemon/io.containerd.runtime.v2.task/moby/`).
    pub fn exec_root(&self) -> PathBuf {
        self.dir.join("exec")
    }

    /// Its state, as the daemon must read it: the data root, and its containerd's state
    /// directory (`<exec-root>/containerd/daemon`, namespace `moby`).
    pub fn state_roots(&self) -> super::StateRoots {
        super::StateRoots {
            docker: vec![self.data_root()],
            containerd: vec![self.exec_root().join("containerd/daemon")],
        }
    }

    /// Starts dockerd and waits (bounded) until its API answers.
    pub fn start() -> Result<Dockerd, String> {
        let dir = super::private_dir("docker")?;
        let log = std::fs::File::create(dir.join("dockerd.log")).map_err(|e| e.to_string())?;
        let t = Instant::now();
        let child = Command::new("dockerd")
            .args(["--iptables=false", "--ip-masq=false", "--bridge=none"])
            .arg("--data-root")
            .arg(dir.join("data"))
            .arg("--exec-root")
            .arg(dir.join("exec"))
            .arg("--pidfile")
            .arg(dir.join("docker.pid"))
            .arg("-H")
            .arg(format!("unix://{}", dir.join("docker.sock").display()))
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(|e| e.to_string())?)
            .stderr(log)
            .spawn()
            .map_err(|e| format!("spawning dockerd: {e}"))?;
        let mut d = Dockerd {
            sock: dir.join("docker.sock"),
            dir,
            child: Some(child),
            ready_in: Duration::ZERO,
        };
        let ready = wait::try_until(super::READY, Duration::from_millis(50), || {
            if let Some(c) = d.child.as_mut()
                && let Ok(Some(_)) = c.try_wait()
            {
                return Some(false);
            }
            let ok = wait::try_output_timeout(
                d.cli().arg("version"),
                Duration::from_secs(10),
                "docker version",
            )
            .is_ok_and(|o| o.status.success());
            ok.then_some(true)
        });
        if ready != Some(true) {
            let log = std::fs::read_to_string(d.dir.join("dockerd.log")).unwrap_or_default();
            return Err(format!(
                "dockerd did not become ready within {:?} ({}); its log:\n{log}",
                super::READY,
                if ready.is_some() {
                    "it exited"
                } else {
                    "timeout"
                }
            ));
        }
        d.ready_in = t.elapsed();
        eprintln!("engines: dockerd ready in {} ms", d.ready_in.as_millis());
        Ok(d)
    }

    /// A `docker` command talking to this daemon only.
    pub fn cli(&self) -> Command {
        let mut c = Command::new("docker");
        c.arg("-H").arg(format!("unix://{}", self.sock.display()));
        c
    }

    /// Imports the test rootfs as [`IMAGE`] (once per daemon; idempotent).
    pub fn import(&self) -> Result<&'static str, String> {
        let tar = image::rootfs_tar()?;
        super::timed("docker import", || {
            run(
                self.cli().args(["import"]).arg(&tar).arg(IMAGE),
                wait::CONTAINER,
            )
        })?;
        Ok(IMAGE)
    }

    /// `docker run --network none --name NAME [extra] IMAGE args` to completion (the
    /// container is kept, so its id and state can be inspected; drop removes it).
    pub fn run(&self, name: &str, extra: &[&str], args: &[&str]) -> Result<Output, String> {
        run(
            self.cli()
                .args(["run", "--network", "none", "--name", name])
                .args(extra)
                .arg(IMAGE)
                .args(args),
            wait::CONTAINER,
        )
    }

    /// `docker run -d …`: returns the full container id.
    pub fn run_detached(
        &self,
        name: &str,
        extra: &[&str],
        args: &[&str],
    ) -> Result<String, String> {
        stdout_of(
            self.cli()
                .args(["run", "-d", "--network", "none", "--name", name])
                .args(extra)
                .arg(IMAGE)
                .args(args),
            wait::CONTAINER,
        )
    }

    /// `docker exec NAME args` to completion.
    pub fn exec(&self, name: &str, args: &[&str]) -> Result<Output, String> {
        run(self.cli().arg("exec").arg(name).args(args), wait::CONTAINER)
    }

    /// `docker exec -d NAME args`: returns once the process started.
    pub fn exec_detached(&self, name: &str, args: &[&str]) -> Result<(), String> {
        run(
            self.cli().args(["exec", "-d", name]).args(args),
            wait::CONTAINER,
        )
        .map(drop)
    }

    /// `docker inspect --format FORMAT NAME`.
    pub fn inspect(&self, name: &str, format: &str) -> Result<String, String> {
        stdout_of(
            self.cli().args(["inspect", "--format", format, name]),
            wait::TOOL,
        )
    }

    /// The full 64-hex id docker reports for `name`.
    pub fn id_of(&self, name: &str) -> Result<String, String> {
        self.inspect(name, "{{.Id}}")
    }

    /// The host pid of the container's init.
    pub fn pid_of(&self, name: &str) -> Result<u32, String> {
        self.inspect(name, "{{.State.Pid}}")?
            .parse()
            .map_err(|e| format!("docker pid of {name}: {e}"))
    }

    /// Stops everything (what drop does), returning how long it took.
    pub fn stop(mut self) -> Duration {
        let t = Instant::now();
        self.teardown();
        t.elapsed()
    }

    fn teardown(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let t = Instant::now();
        if let Ok(ids) = stdout_of(self.cli().args(["ps", "-aq", "--no-trunc"]), wait::TOOL) {
            let ids: Vec<&str> = ids.split_whitespace().collect();
            if !ids.is_empty() {
                let _ = wait::try_output_timeout(
                    self.cli().args(["rm", "-f"]).args(&ids),
                    wait::CONTAINER,
                    "docker rm -f",
                );
            }
        }
        super::stop_pid(child.id());
        let _ = wait::try_wait_timeout(&mut child, Duration::from_secs(5), "dockerd to be reaped");
        super::scrub(&self.dir);
        eprintln!(
            "engines: dockerd teardown in {} ms",
            t.elapsed().as_millis()
        );
    }

    /// This daemon's private directory (for [`super::leaks`] after it is gone).
    pub fn root(&self) -> &Path {
        &self.dir
    }
}

impl Drop for Dockerd {
    fn drop(&mut self) {
        self.teardown();
    }
}
