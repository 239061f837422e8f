//! `systemd-nspawn` as far as it runs on this machine.
//!
//! systemd is not PID 1 here, so nspawn can neither register the machine with
//! systemd-machined (`--register=no`) nor ask systemd for the machine's scope unit. What
//! systemd would do is what this helper does by hand: it creates
//! `/machine.slice/machine-NAME.scope` and starts nspawn inside it with `--keep-unit`. The
//! real nspawn (systemd 252, unified hierarchy) then splits that scope itself into
//! `…/supervisor` (itself) and `…/payload` (the container's processes): the layout of a
//! systemd host, made by nspawn, with only the scope's creation stood in for.
//!
//! The root filesystem is a hard-linked copy of the shared test rootfs plus an empty
//! `/etc/os-release` (nspawn refuses a tree without one), run `--read-only` so nothing is
//! written through the links into the shared tree.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Instant;

use super::run;
use crate::wait;

pub struct Nspawn {
    pub machine: String,
    dir: PathBuf,
    /// `/machine.slice/machine-NAME.scope`, relative to the cgroup v2 root.
    pub scope: String,
    created_slice: bool,
}

impl Nspawn {
    /// A machine with a unique name and its root filesystem.
    pub fn new() -> Result<Nspawn, String> {
        static N: AtomicU32 = AtomicU32::new(0);
        let machine = format!(
            "dte-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        let dir = super::private_dir("nspawn")?;
        let root = dir.join("root");
        let shared = crate::containers::rootfs()?;
        run(
            Command::new("cp").arg("-al").arg(&shared).arg(&root),
            wait::TOOL,
        )?;
        let _ = std::fs::remove_file(root.join(".complete"));
        std::fs::write(root.join("etc/os-release"), b"ID=detector-test\n")
            .map_err(|e| e.to_string())?;
        let cg2 = crate::containers::cgroup2_root();
        let created_slice = !cg2.join("machine.slice").exists();
        let scope = format!("/machine.slice/machine-{machine}.scope");
        std::fs::create_dir_all(cg2.join(scope.trim_start_matches('/')))
            .map_err(|e| format!("mkdir {scope}: {e}"))?;
        Ok(Nspawn {
            machine,
            dir,
            scope,
            created_slice,
        })
    }

    /// The cgroup of the container's processes.
    pub fn payload_cgroup(&self) -> String {
        format!("{}/payload", self.scope)
    }

    /// Runs `args` in the container to completion: nspawn started from inside the scope.
    pub fn run(&self, args: &[&str]) -> Result<Output, String> {
        let procs = crate::containers::cgroup2_root()
            .join(self.scope.trim_start_matches('/'))
            .join("cgroup.procs");
        let mut cmd = Command::new("sh");
        cmd.arg("-c")
            .arg(r#"echo $$ > "$0" && exec "$@""#)
            .arg(&procs)
            .args([
                "systemd-nspawn",
                "-q",
                "--register=no",
                "--keep-unit",
                "--read-only",
            ])
            .args([
                "--resolv-conf=off",
                "--timezone=off",
                "--link-journal=no",
                "--machine",
            ])
            .arg(&self.machine)
            .arg("-D")
            .arg(self.dir.join("root"))
            .args(args);
        super::timed(&format!("systemd-nspawn {}", self.machine), || {
            run(&mut cmd, wait::CONTAINER)
        })
    }

    fn root(&self) -> &Path {
        &self.dir
    }
}

impl Drop for Nspawn {
    fn drop(&mut self) {
        let t = Instant::now();
        let cg2 = crate::containers::cgroup2_root();
        let scope = cg2.join(self.scope.trim_start_matches('/'));
        // nspawn has exited (run waits for it); anything left inside goes back to the root.
        for sub in ["payload", "supervisor", ""] {
            let d = scope.join(sub);
            if let Ok(procs) = std::fs::read_to_string(d.join("cgroup.procs")) {
                for pid in procs.lines() {
                    let _ = std::fs::write(cg2.join("cgroup.procs"), pid);
                }
            }
            let _ = std::fs::remove_dir(&d);
        }
        if self.created_slice {
            let _ = std::fs::remove_dir(cg2.join("machine.slice"));
        }
        // nspawn's own scratch directory, which it fails to remove without systemd.
        let _ =
            std::fs::remove_dir_all(Path::new("/run/systemd/nspawn/propagate").join(&self.machine));
        super::scrub(&self.dir);
        eprintln!(
            "engines: nspawn teardown {} in {} ms",
            self.machine,
            t.elapsed().as_millis()
        );
    }
}
