//! An LXC system container for one test: `lxc-create -t busybox` under a unique name, with
//! `lxc.net.0.type = empty` (this machine has no `lxcbr0`; the container gets only a
//! loopback), the host's `ssh` copied in (the busybox template bind-mounts the host's `/lib`
//! and `/usr/lib` read-only, so its libraries are there). Its init runs in the host cgroup
//! `/lxc.payload.NAME`; `lxc-attach` runs commands in `/lxc.payload.NAME/.lxc`. Dropping it
//! stops (`-k`) and destroys the container.

use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use super::run;
use crate::wait;

/// Where `lxc-create` puts containers (`lxc.lxcpath`, Debian's default).
const LXC_PATH: &str = "/var/lib/lxc";

pub struct LxcContainer {
    pub name: String,
    created: bool,
    pub created_in: Duration,
}

impl LxcContainer {
    /// A unique container name (`dte-<pid>-<n>`), short enough for every LXC limit.
    fn fresh_name() -> String {
        static N: AtomicU32 = AtomicU32::new(0);
        format!(
            "dte-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        )
    }

    /// The container's directory (`config`, `rootfs/`).
    pub fn dir(&self) -> PathBuf {
        PathBuf::from(LXC_PATH).join(&self.name)
    }

    /// `lxc-create -t busybox`, networking off, `/usr/bin/ssh` copied in. When
    /// `init_runs` is given, the container's init runs it once at start (a `sysinit` line of
    /// busybox init's inittab, after the template's own).
    pub fn create(init_runs: Option<&str>) -> Result<LxcContainer, String> {
        let t = Instant::now();
        let mut c = LxcContainer {
            name: Self::fresh_name(),
            created: false,
            created_in: Duration::ZERO,
        };
        run(
            Command::new("lxc-create").args(["-n", &c.name, "-t", "busybox"]),
            wait::CONTAINER,
        )?;
        c.created = true;
        let cfg_path = c.dir().join("config");
        let cfg = std::fs::read_to_string(&cfg_path).map_err(|e| e.to_string())?;
        let cfg: String = cfg
            .lines()
            .filter(|l| !l.starts_with("lxc.net.0."))
            .map(|l| format!("{l}\n"))
            .collect::<String>()
            + "lxc.net.0.type = empty\n";
        std::fs::write(&cfg_path, cfg).map_err(|e| e.to_string())?;
        let rootfs = c.dir().join("rootfs");
        std::fs::create_dir_all(rootfs.join("usr/bin")).map_err(|e| e.to_string())?;
        std::fs::copy("/usr/bin/ssh", rootfs.join("usr/bin/ssh"))
            .map_err(|e| format!("copy ssh into the LXC rootfs: {e}"))?;
        if let Some(cmd) = init_runs {
            let inittab = rootfs.join("etc/inittab");
            let mut text = std::fs::read_to_string(&inittab).map_err(|e| e.to_string())?;
            text.push_str(&format!("::sysinit:{cmd}\n"));
            std::fs::write(&inittab, text).map_err(|e| e.to_string())?;
        }
        c.created_in = t.elapsed();
        eprintln!(
            "engines: lxc-create {} in {} ms",
            c.name,
            c.created_in.as_millis()
        );
        Ok(c)
    }

    /// `lxc-start` (daemonised) and wait (bounded) until it is RUNNING; returns the init's
    /// host pid.
    pub fn start(&self) -> Result<u32, String> {
        let log = self.dir().join("start.log");
        super::timed(&format!("lxc-start {}", self.name), || {
            run(
                Command::new("lxc-start")
                    .args(["-n", &self.name, "--logfile"])
                    .arg(&log),
                wait::CONTAINER,
            )
        })
        .map_err(|e| {
            format!(
                "{e}\nlog: {}",
                std::fs::read_to_string(&log).unwrap_or_default()
            )
        })?;
        run(
            Command::new("lxc-wait").args(["-n", &self.name, "-s", "RUNNING", "-t", "30"]),
            Duration::from_secs(40),
        )?;
        let pid = super::stdout_of(
            Command::new("lxc-info").args(["-n", &self.name, "-p", "-H"]),
            wait::TOOL,
        )?;
        pid.parse()
            .map_err(|e| format!("lxc-info pid {pid:?}: {e}"))
    }

    /// `lxc-attach -n NAME -- args` to completion.
    pub fn attach(&self, args: &[&str]) -> Result<Output, String> {
        run(
            Command::new("lxc-attach")
                .args(["-n", &self.name, "--"])
                .args(args),
            wait::CONTAINER,
        )
    }

    /// Stops and destroys the container (what drop does); returns how long it took.
    pub fn destroy(mut self) -> Duration {
        let t = Instant::now();
        self.teardown();
        t.elapsed()
    }

    fn teardown(&mut self) {
        if !self.created {
            return;
        }
        self.created = false;
        let t = Instant::now();
        let _ = wait::try_output_timeout(
            Command::new("lxc-stop").args(["-n", &self.name, "-k"]),
            wait::TOOL,
            "lxc-stop -k",
        );
        let destroyed = wait::try_output_timeout(
            Command::new("lxc-destroy").args(["-n", &self.name, "-f"]),
            wait::TOOL,
            "lxc-destroy",
        );
        if !destroyed.as_ref().is_ok_and(|o| o.status.success()) {
            eprintln!("engines: lxc-destroy {} failed: {destroyed:?}", self.name);
            let _ = std::fs::remove_dir_all(self.dir());
        }
        eprintln!(
            "engines: lxc teardown {} in {} ms",
            self.name,
            t.elapsed().as_millis()
        );
    }
}

impl Drop for LxcContainer {
    fn drop(&mut self) {
        self.teardown();
    }
}
