//! A measured child process: started with captured stderr, stopped by signal, reaped with
//! `wait4` so its CPU time and peak RSS come from the kernel's own accounting.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// How many trailing stderr lines are kept (the stats line comes last).
const STDERR_KEEP: usize = 4000;

/// Resource use of a reaped child, from `wait4`'s `rusage`.
#[derive(Clone, Copy, Debug, Default, serde::Serialize)]
pub struct Usage {
    /// User CPU seconds (all threads).
    pub user_s: f64,
    /// System CPU seconds (all threads).
    pub sys_s: f64,
    /// Peak resident set size, KiB (`ru_maxrss`). It holds the RSS of the spawning
    /// process at exec too (the kernel carries the old image's high-water mark over), so
    /// the report's peak figures use `VmHWM` instead (see `arms::peak_kib`).
    pub max_rss_kib: u64,
}

impl Usage {
    /// user + sys seconds.
    pub fn cpu_s(&self) -> f64 {
        self.user_s + self.sys_s
    }
}

/// What a stopped child left behind.
pub struct Stopped {
    /// Its resource use.
    pub usage: Usage,
    /// Its exit status as text (for error messages).
    pub status: String,
    /// The last stderr lines (lossy UTF-8).
    pub stderr: Vec<String>,
}

/// A running child whose stderr is collected by a thread. Killed and reaped on drop.
pub struct Measured {
    child: Option<Child>,
    stderr: Arc<Mutex<VecDeque<String>>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Measured {
    /// Spawns `cmd` with stdin null and stderr captured (stdout as the caller set it), in
    /// its own process group so a Ctrl-C reaches only the harness, which stops it.
    pub fn spawn(mut cmd: Command) -> anyhow::Result<Measured> {
        use std::os::unix::process::CommandExt;
        cmd.stdin(Stdio::null())
            .stderr(Stdio::piped())
            .process_group(0);
        let mut child = cmd
            .spawn()
            .with_context(|| format!("start {:?}", cmd.get_program()))?;
        let pipe = child.stderr.take().context("stderr pipe")?;
        let stderr = Arc::new(Mutex::new(VecDeque::new()));
        let sink = Arc::clone(&stderr);
        let reader = std::thread::spawn(move || {
            let mut r = BufReader::new(pipe);
            let mut buf = Vec::new();
            loop {
                buf.clear();
                match r.read_until(b'\n', &mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        let line = String::from_utf8_lossy(&buf).trim_end().to_owned();
                        let mut q = sink.lock().unwrap_or_else(|e| e.into_inner());
                        if q.len() == STDERR_KEEP {
                            q.pop_front();
                        }
                        q.push_back(line);
                    }
                }
            }
        });
        Ok(Measured {
            child: Some(child),
            stderr,
            reader: Some(reader),
        })
    }

    /// The child's pid.
    pub fn pid(&self) -> i32 {
        self.child.as_ref().map_or(0, |c| c.id() as i32)
    }

    /// A copy of the stderr lines seen so far.
    pub fn stderr_lines(&self) -> Vec<String> {
        let q = self.stderr.lock().unwrap_or_else(|e| e.into_inner());
        q.iter().cloned().collect()
    }

    /// Waits up to `timeout` for `ready()` to hold, failing early (with the child's stderr
    /// tail as the reason) if the child exits first.
    pub fn wait_ready(
        &mut self,
        timeout: Duration,
        mut ready: impl FnMut(&Measured) -> bool,
    ) -> anyhow::Result<()> {
        let start = Instant::now();
        loop {
            if ready(self) {
                return Ok(());
            }
            if let Some(c) = self.child.as_mut()
                && let Ok(Some(st)) = c.try_wait()
            {
                // Reaped by try_wait: let the reader drain, then report.
                self.child = None;
                if let Some(r) = self.reader.take() {
                    let _ = r.join();
                }
                bail!("exited before ready ({st}): {}", tail(&self.stderr_lines()));
            }
            super::interrupt::check()?;
            if start.elapsed() > timeout {
                bail!(
                    "not ready after {:.0} s: {}",
                    timeout.as_secs_f64(),
                    tail(&self.stderr_lines())
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// CPU seconds (user+sys, all threads) used so far, from `/proc/<pid>/stat`.
    pub fn cpu_s_now(&self) -> Option<f64> {
        let s = std::fs::read_to_string(format!("/proc/{}/stat", self.pid())).ok()?;
        // SAFETY: sysconf has no preconditions.
        let tck = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
        parse_stat_cpu_ticks(&s).map(|t| t as f64 / tck.max(1) as f64)
    }

    /// Peak RSS so far (`VmHWM` in `/proc/<pid>/status`), KiB.
    pub fn vm_hwm_kib(&self) -> Option<u64> {
        let s = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).ok()?;
        s.lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
    }

    /// Sends `signal`, waits up to `grace` for exit (then SIGKILL), reaps with `wait4`.
    pub fn stop(mut self, signal: i32, grace: Duration) -> anyhow::Result<Stopped> {
        let child = self.child.take().context("child already reaped")?;
        let pid = child.id() as i32;
        // SAFETY: signalling and reaping our own, not yet reaped, child.
        unsafe { libc::kill(pid, signal) };
        let start = Instant::now();
        let mut status = 0;
        let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
        loop {
            let r = unsafe { libc::wait4(pid, &mut status, libc::WNOHANG, &mut ru) };
            if r == pid {
                break;
            }
            if r < 0 {
                bail!("wait4 {pid}: {}", std::io::Error::last_os_error());
            }
            if start.elapsed() > grace {
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        // The child is reaped; std's Child must not wait on it again.
        std::mem::forget(child);
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
        let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
        let status_text = if libc::WIFEXITED(status) {
            format!("exit status {}", libc::WEXITSTATUS(status))
        } else if libc::WIFSIGNALED(status) {
            format!("signal {}", libc::WTERMSIG(status))
        } else {
            format!("wait status {status}")
        };
        Ok(Stopped {
            usage: Usage {
                user_s: tv(ru.ru_utime),
                sys_s: tv(ru.ru_stime),
                max_rss_kib: ru.ru_maxrss as u64,
            },
            status: status_text,
            stderr: self.stderr_lines(),
        })
    }
}

impl Drop for Measured {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// utime+stime (clock ticks) from a `/proc/<pid>/stat` line. The comm field may hold
/// spaces and parentheses, so fields are counted from the last `)`.
pub fn parse_stat_cpu_ticks(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // After the comm: state is field 3, utime field 14, stime field 15.
    Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
}

/// The last few stderr lines, joined, as an error reason.
pub fn tail(lines: &[String]) -> String {
    let t: Vec<&str> = lines
        .iter()
        .rev()
        .filter(|l| !l.trim().is_empty())
        .take(3)
        .map(String::as_str)
        .collect();
    if t.is_empty() {
        "no output on stderr".to_owned()
    } else {
        t.into_iter().rev().collect::<Vec<_>>().join(" | ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_cpu_ticks() {
        let line = "1234 (a b) c)) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 3 0 99 1 2";
        assert_eq!(parse_stat_cpu_ticks(line), Some(325));
        assert_eq!(parse_stat_cpu_ticks("1234 (x) S 1 2"), None);
        assert_eq!(parse_stat_cpu_ticks("garbage"), None);
        let own = std::fs::read_to_string("/proc/self/stat").unwrap();
        assert!(parse_stat_cpu_ticks(&own).is_some());
    }

    #[test]
    fn stderr_tail() {
        let l = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(tail(&[]), "no output on stderr");
        assert_eq!(tail(&l(&["a", "", "b", "c", "d", " "])), "b | c | d");
    }
}
