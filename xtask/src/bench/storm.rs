//! The exec storm: worker processes doing fork+exec+wait of a private copy of `/bin/true`.
//!
//! The worker is xtask itself (`cargo xtask bench --storm-worker N PATH`, hidden), so the
//! benchmark needs no C compiler and no extra binary. It calls `fork` + `execv` + `waitpid`
//! directly: `std::process::Command` adds pipes, a CLOEXEC error channel and allocation per
//! spawn, which would dilute what the tools being measured cost per exec.
//!
//! The private copy has a unique, short name (<= 15 bytes, the kernel `comm` size), so tool
//! outputs can be counted by path or by name without counting the rest of the host.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{Context, bail};

/// What a worker does per iteration (`--storm-mode`, internal).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Mode {
    /// fork, exec the private `true`, wait: three kernel events (fork, exec, exit).
    Exec,
    /// fork, `_exit(0)` in the child, wait: process churn without exec (fork, exit).
    Churn,
}

impl Mode {
    /// The `--storm-mode` value that selects this mode in a worker.
    fn flag(self) -> &'static str {
        match self {
            Mode::Exec => "exec",
            Mode::Churn => "churn",
        }
    }
}

/// A temporary directory holding the private `true`; removed on drop.
pub struct PrivateTrue {
    dir: PathBuf,
    /// Full path of the copy: what `execve` sees as the filename.
    pub path: PathBuf,
    /// Its file name, which is also the `comm` of the exec'd process.
    pub name: String,
}

impl PrivateTrue {
    /// Copies `/bin/true` to `/tmp/xtask-bench-<pid>-<ns>/bt<pid>`. The directory is new
    /// (never an existing one, which someone else could have planted) and private (0700).
    pub fn create() -> anyhow::Result<PrivateTrue> {
        use std::os::unix::fs::DirBuilderExt;
        let pid = std::process::id();
        let ns = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let dir = PathBuf::from(format!("/tmp/xtask-bench-{pid}-{ns}"));
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&dir)
            .with_context(|| format!("create {}", dir.display()))?;
        let name = format!("bt{pid}");
        let path = dir.join(&name);
        std::fs::copy("/bin/true", &path)
            .with_context(|| format!("copy /bin/true to {}", path.display()))?;
        Ok(PrivateTrue { dir, path, name })
    }

    /// Directory the benchmark may use for its other scratch files.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Drop for PrivateTrue {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Body of the hidden `--storm-worker` subcommand: `n` iterations of `mode` on `path`.
/// Fails (non-zero exit) if any child did not exit 0, so a broken storm is never timed.
pub fn worker(n: u64, path: &Path, mode: Mode) -> anyhow::Result<()> {
    let cpath = CString::new(path.as_os_str().as_bytes()).context("path contains NUL")?;
    let argv = [cpath.as_ptr(), std::ptr::null()];
    let mut failures = 0u64;
    for _ in 0..n {
        // SAFETY: the child only calls async-signal-safe functions (execv, _exit) on
        // memory prepared before the fork; the parent waits for that exact pid.
        let pid = unsafe { libc::fork() };
        if pid < 0 {
            bail!("fork: {}", std::io::Error::last_os_error());
        }
        if pid == 0 {
            unsafe {
                if mode == Mode::Exec {
                    libc::execv(cpath.as_ptr(), argv.as_ptr());
                    libc::_exit(127);
                }
                libc::_exit(0);
            }
        }
        let mut status = 0;
        // SAFETY: plain waitpid on our own child with a valid out-pointer.
        let r = unsafe { libc::waitpid(pid, &mut status, 0) };
        if r != pid || !libc::WIFEXITED(status) || libc::WEXITSTATUS(status) != 0 {
            failures += 1;
        }
    }
    if failures > 0 {
        bail!("{failures} of {n} children failed");
    }
    Ok(())
}

/// One timed storm: `workers` parallel workers, `per_worker` iterations each.
#[derive(Clone, Debug)]
pub struct StormResult {
    /// Total iterations (processes created) across workers.
    pub total: u64,
    /// Wall time from starting the first worker to reaping the last, seconds.
    pub seconds: f64,
}

impl StormResult {
    /// Processes per second.
    pub fn rate(&self) -> f64 {
        self.total as f64 / self.seconds
    }
}

/// Runs `workers` copies of the storm worker in parallel and times them together.
pub fn run(
    workers: u32,
    per_worker: u64,
    target: &Path,
    mode: Mode,
) -> anyhow::Result<StormResult> {
    let exe = std::env::current_exe().context("locate the xtask binary")?;
    let start = Instant::now();
    let mut children = Vec::new();
    for _ in 0..workers {
        let child = Command::new(&exe)
            .arg("bench")
            .arg("--storm-worker")
            .arg(per_worker.to_string())
            .arg(target)
            .arg("--storm-mode")
            .arg(mode.flag())
            .stdin(Stdio::null())
            .spawn()
            .with_context(|| format!("start storm worker {}", exe.display()))?;
        children.push(child);
    }
    let mut failed = Vec::new();
    for mut c in children {
        let st = c.wait().context("wait for storm worker")?;
        if !st.success() {
            failed.push(st.to_string());
        }
    }
    let seconds = start.elapsed().as_secs_f64();
    if !failed.is_empty() {
        bail!("storm workers failed: {}", failed.join(", "));
    }
    Ok(StormResult {
        total: u64::from(workers) * per_worker,
        seconds,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worker_counts_failed_children() {
        worker(5, Path::new("/bin/true"), Mode::Exec).unwrap();
        worker(5, Path::new("/bin/false"), Mode::Churn).unwrap();
        let e = worker(3, Path::new("/bin/false"), Mode::Exec).unwrap_err();
        assert_eq!(e.to_string(), "3 of 3 children failed");
        let e = worker(2, Path::new("/nonexistent/true"), Mode::Exec).unwrap_err();
        assert_eq!(e.to_string(), "2 of 2 children failed");
    }

    #[test]
    fn private_true_is_short_named_and_removed() {
        let t = PrivateTrue::create().unwrap();
        assert!(t.name.len() <= 15, "comm is 15 bytes: {}", t.name);
        assert!(t.path.is_file());
        worker(2, &t.path, Mode::Exec).unwrap();
        let dir = t.dir().to_path_buf();
        drop(t);
        assert!(!dir.exists());
    }

    #[test]
    fn modes_parse() {
        use clap::ValueEnum;
        for &m in Mode::value_variants() {
            assert_eq!(Mode::from_str(m.flag(), false), Ok(m));
        }
        assert!(Mode::from_str("spawn", false).is_err());
    }
}
