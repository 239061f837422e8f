//! A private `containerd` for one test: the system binary with its own root, state
//! directory and socket (a config file in a private directory), driven with `ctr -a SOCK`.
//! Tasks of `ctr run` land in the host cgroup `/<namespace>/<container id>` (cgroupfs), and
//! their state under `<state>/io.containerd.runtime.v2.task/<namespace>/<id>/`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use super::{image, run, stdout_of};
use crate::wait;

/// Image reference of the imported rootfs, and its parts.
pub const IMAGE: &str = image::OCI_REF;
pub const IMAGE_NAME: &str = "docker.io/local/sshbox";
pub const IMAGE_TAG: &str = "1";

/// Namespaces a test may use; teardown empties them all.
const NAMESPACES: &[&str] = &["default", "k8s.io"];

/// A running private containerd; dropping it kills and deletes its tasks and containers,
/// stops it and removes every trace of it.
pub struct Containerd {
    pub dir: PathBuf,
    pub sock: PathBuf,
    child: Option<Child>,
    /// cgroup parents (`/default`, `/k8s.io`) that did not exist when it started.
    new_cgroup_parents: Vec<&'static str>,
    pub ready_in: Duration,
}

impl Containerd {
    /// `--root`: content store and snapshots.
    pub fn root_dir(&self) -> PathBuf {
        self.dir.join("root")
    }

    /// `--state`: task state (`io.containerd.runtime.v2.task/<ns>/<id>/config.json`).
    pub fn state_dir(&self) -> PathBuf {
        self.dir.join("state")
    }

    /// Its state, as the daemon must read it.
    pub fn state_roots(&self) -> super::StateRoots {
        super::StateRoots {
            docker: vec![],
            containerd: vec![self.state_dir()],
        }
    }

    /// Starts containerd and waits (bounded) until `ctr version` answers.
    pub fn start() -> Result<Containerd, String> {
        let dir = super::private_dir("ctrd")?;
        let sock = dir.join("containerd.sock");
        let config = format!(
            "version = 2\nroot = {:?}\nstate = {:?}\n[grpc]\n  address = {:?}\n\
             [ttrpc]\n  address = {:?}\n[debug]\n  address = \"\"\n[metrics]\n  address = \"\"\n",
            dir.join("root").display().to_string(),
            dir.join("state").display().to_string(),
            sock.display().to_string(),
            format!("{}.ttrpc", sock.display()),
        );
        std::fs::write(dir.join("config.toml"), config).map_err(|e| e.to_string())?;
        let new_cgroup_parents = NAMESPACES
            .iter()
            .copied()
            .filter(|ns| !crate::containers::cgroup2_root().join(ns).exists())
            .collect();
        let log = std::fs::File::create(dir.join("containerd.log")).map_err(|e| e.to_string())?;
        let t = Instant::now();
        let child = Command::new("containerd")
            .arg("--config")
            .arg(dir.join("config.toml"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(|e| e.to_string())?)
            .stderr(log)
            .spawn()
            .map_err(|e| format!("spawning containerd: {e}"))?;
        let mut c = Containerd {
            dir,
            sock,
            child: Some(child),
            new_cgroup_parents,
            ready_in: Duration::ZERO,
        };
        let ready = wait::try_until(super::READY, Duration::from_millis(50), || {
            if let Some(ch) = c.child.as_mut()
                && let Ok(Some(_)) = ch.try_wait()
            {
                return Some(false);
            }
            wait::try_output_timeout(
                c.ctr("default").arg("version"),
                Duration::from_secs(10),
                "ctr version",
            )
            .is_ok_and(|o| o.status.success())
            .then_some(true)
        });
        if ready != Some(true) {
            let log = std::fs::read_to_string(c.dir.join("containerd.log")).unwrap_or_default();
            return Err(format!(
                "containerd did not become ready within {:?}; its log:\n{log}",
                super::READY
            ));
        }
        c.ready_in = t.elapsed();
        eprintln!("engines: containerd ready in {} ms", c.ready_in.as_millis());
        Ok(c)
    }

    /// A `ctr` command on this daemon, in namespace `ns`.
    pub fn ctr(&self, ns: &str) -> Command {
        let mut c = Command::new("ctr");
        c.arg("-a").arg(&self.sock).arg("-n").arg(ns);
        c
    }

    /// Imports the rootfs OCI archive into namespace `ns` as [`IMAGE`].
    pub fn import(&self, ns: &str) -> Result<&'static str, String> {
        let archive = image::oci_archive()?;
        super::timed(&format!("ctr -n {ns} images import"), || {
            run(
                self.ctr(ns).args(["images", "import"]).arg(&archive),
                wait::CONTAINER,
            )
        })?;
        Ok(IMAGE)
    }

    /// `ctr -n NS run --rm IMAGE ID args` to completion.
    pub fn run(&self, ns: &str, id: &str, args: &[&str]) -> Result<Output, String> {
        self.run_with(ns, id, &[], args)
    }

    /// `ctr -n NS run --rm FLAGS IMAGE ID args` (e.g. `--annotation k=v`, as a CRI client
    /// sets them).
    pub fn run_with(
        &self,
        ns: &str,
        id: &str,
        flags: &[&str],
        args: &[&str],
    ) -> Result<Output, String> {
        run(
            self.ctr(ns)
                .args(["run", "--rm"])
                .args(flags)
                .args([IMAGE, id])
                .args(args),
            wait::CONTAINER,
        )
    }

    /// `ctr -n NS run -d IMAGE ID args`; returns the task's host pid once it runs.
    pub fn run_detached(&self, ns: &str, id: &str, args: &[&str]) -> Result<u32, String> {
        run(
            self.ctr(ns).args(["run", "-d", IMAGE, id]).args(args),
            wait::CONTAINER,
        )?;
        let tasks = stdout_of(self.ctr(ns).args(["task", "ls"]), wait::TOOL)?;
        tasks
            .lines()
            .find_map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                (f.first() == Some(&id)).then(|| f.get(1)?.parse().ok())?
            })
            .ok_or_else(|| format!("ctr task ls has no task {id}: {tasks}"))
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
        for ns in NAMESPACES {
            let ids = stdout_of(self.ctr(ns).args(["containers", "ls", "-q"]), wait::TOOL)
                .unwrap_or_default();
            for id in ids.split_whitespace() {
                let _ = wait::try_output_timeout(
                    self.ctr(ns).args(["task", "kill", "-s", "KILL", id]),
                    wait::TOOL,
                    "ctr task kill",
                );
                // The task is deletable once it has stopped.
                let _ = wait::try_until(Duration::from_secs(10), Duration::from_millis(50), || {
                    let o = wait::try_output_timeout(
                        self.ctr(ns).args(["task", "delete", id]),
                        wait::TOOL,
                        "ctr task delete",
                    )
                    .ok()?;
                    let err = String::from_utf8_lossy(&o.stderr);
                    (o.status.success() || err.contains("not found")).then_some(())
                });
                let _ = wait::try_output_timeout(
                    self.ctr(ns).args(["containers", "rm", id]),
                    wait::TOOL,
                    "ctr containers rm",
                );
            }
        }
        super::stop_pid(child.id());
        let _ = wait::try_wait_timeout(
            &mut child,
            Duration::from_secs(5),
            "containerd to be reaped",
        );
        super::scrub(&self.dir);
        for p in &self.new_cgroup_parents {
            super::remove_empty_cgroup(p);
        }
        eprintln!(
            "engines: containerd teardown in {} ms",
            t.elapsed().as_millis()
        );
    }

    pub fn root(&self) -> &Path {
        &self.dir
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        self.teardown();
    }
}
