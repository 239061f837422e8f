//! A throw-away runc container for the latency measurement: a rootfs of busybox-static
//! plus `ssh` and its libraries, cgroupsPath `/docker/<64 hex>` (what the detector resolves
//! as a docker container). Everything made here is removed on drop.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// Tools the container needs on the host.
const NEEDS: [&str; 4] = [
    "/usr/sbin/runc",
    "/bin/busybox",
    "/usr/bin/ssh",
    "/usr/bin/ldd",
];

/// A prepared bundle; `run` starts the container, drop removes it and its cgroups.
pub struct Container {
    bundle: PathBuf,
    /// Container id: 64 lowercase hex (also the runc id).
    pub id: String,
    /// cgroup directories that did not exist before (removed leaf-first on drop).
    made_cgroup_parents: Vec<PathBuf>,
}

/// A 64-hex id from the clock, pid and a counter (unique enough for one host).
fn hex_id() -> String {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let seed = format!("{t:032x}{:08x}", std::process::id());
    format!("{seed:0>64}").chars().rev().take(64).collect()
}

/// The cgroup roots of this hybrid host (v1 controllers and the unified tree).
fn cgroup_roots() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir("/sys/fs/cgroup")
        .map(|rd| {
            rd.flatten()
                .map(|e| e.path())
                .filter(|p| p.is_dir() && !p.is_symlink())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

impl Container {
    /// Builds the rootfs and `config.json` under `dir/ctr-<id prefix>`, running `script` with `sh -c`.
    pub fn prepare(dir: &Path, script: &str) -> anyhow::Result<Container> {
        for n in NEEDS {
            if !Path::new(n).exists() {
                bail!("{n} not installed");
            }
        }
        let id = hex_id();
        let bundle = dir.join(format!("ctr-{}", &id[..12]));
        let rootfs = bundle.join("rootfs");
        let _ = std::fs::remove_dir_all(&bundle);
        for d in ["bin", "dev", "proc", "sys", "tmp", "etc", "root"] {
            std::fs::create_dir_all(rootfs.join(d))?;
        }
        std::fs::copy("/bin/busybox", rootfs.join("bin/busybox"))?;
        std::os::unix::fs::symlink("busybox", rootfs.join("bin/sh"))?;
        std::fs::write(rootfs.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n")?;
        let ldd = Command::new("/usr/bin/ldd").arg("/usr/bin/ssh").output()?;
        let mut files = vec!["/usr/bin/ssh".to_owned()];
        files.extend(
            String::from_utf8_lossy(&ldd.stdout)
                .split_whitespace()
                .filter(|w| w.starts_with('/'))
                .map(str::to_owned),
        );
        let st = Command::new("cp")
            .arg("-L")
            .arg("--parents")
            .args(&files)
            .arg(&rootfs)
            .status()?;
        if !st.success() {
            bail!("copying ssh and its libraries failed ({st})");
        }
        let st = Command::new("/usr/sbin/runc")
            .arg("spec")
            .arg("--bundle")
            .arg(&bundle)
            .status()?;
        if !st.success() {
            bail!("runc spec failed ({st})");
        }
        let cfg_path = bundle.join("config.json");
        let mut cfg: serde_json::Value = serde_json::from_slice(&std::fs::read(&cfg_path)?)?;
        cfg["process"]["terminal"] = false.into();
        cfg["process"]["args"] = serde_json::json!(["/bin/sh", "-c", script]);
        cfg["process"]["env"] = serde_json::json!(["PATH=/usr/bin:/bin", "HOME=/root"]);
        cfg["root"]["readonly"] = false.into();
        cfg["linux"]["cgroupsPath"] = format!("/docker/{id}").into();
        std::fs::write(&cfg_path, serde_json::to_vec_pretty(&cfg)?)?;
        let made_cgroup_parents = cgroup_roots()
            .into_iter()
            .map(|r| r.join("docker"))
            .filter(|p| !p.exists())
            .collect();
        Ok(Container {
            bundle,
            id,
            made_cgroup_parents,
        })
    }

    /// Runs the container to completion (output discarded); fails on a non-zero exit,
    /// and kills it after `timeout` so a hung container cannot hang the benchmark.
    pub fn run(&self, timeout: Duration) -> anyhow::Result<()> {
        use std::os::unix::process::CommandExt;
        let mut child = Command::new("/usr/sbin/runc")
            .process_group(0)
            .arg("run")
            .arg("--bundle")
            .arg(&self.bundle)
            .arg(&self.id)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .context("runc run")?;
        let start = Instant::now();
        let st = loop {
            if let Some(st) = child.try_wait().context("wait for runc")? {
                break st;
            }
            if start.elapsed() > timeout || super::interrupt::requested() {
                let _ = Command::new("/usr/sbin/runc")
                    .args(["kill", &self.id, "KILL"])
                    .stderr(Stdio::null())
                    .status();
                let _ = child.wait();
                super::interrupt::check()?;
                bail!(
                    "container {} still running after {timeout:?}: killed",
                    self.id
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        if !st.success() {
            bail!("runc run {} failed ({st})", self.id);
        }
        Ok(())
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        let _ = Command::new("/usr/sbin/runc")
            .args(["delete", "--force", &self.id])
            .stderr(Stdio::null())
            .status();
        for r in cgroup_roots() {
            let _ = std::fs::remove_dir(r.join("docker").join(&self.id));
        }
        for p in &self.made_cgroup_parents {
            let _ = std::fs::remove_dir(p);
        }
        let _ = std::fs::remove_dir_all(&self.bundle);
    }
}

#[cfg(test)]
mod tests {
    /// Root: a real container runs `ssh -V` and leaves no bundle or cgroup behind.
    #[test]
    fn container_runs_ssh_and_cleans_up() {
        if !crate::is_root() {
            eprintln!("skipped: container_runs_ssh_and_cleans_up needs root");
            return;
        }
        // Removed on drop, also when an assertion fails.
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().to_path_buf();
        let c = super::Container::prepare(&dir, "ssh -V && ssh -V").unwrap();
        let id = c.id.clone();
        c.run(std::time::Duration::from_secs(60)).unwrap();
        // A failing script is an error, not a silent success.
        let bad = super::Container::prepare(&dir, "ssh -V; exit 3").unwrap();
        assert!(bad.run(std::time::Duration::from_secs(60)).is_err());
        drop(bad);
        drop(c);
        for r in super::cgroup_roots() {
            assert!(
                !r.join("docker").join(&id).exists(),
                "cgroup left in {}",
                r.display()
            );
        }
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0, "bundles left");
    }

    #[test]
    fn ids_are_64_hex() {
        let id = super::hex_id();
        assert_eq!(id.len(), 64);
        assert!(
            id.bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        );
    }
}
