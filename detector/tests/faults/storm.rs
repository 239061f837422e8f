//! Load and inspection helpers: a multi-threaded exec storm, and the listening sockets of
//! a process (from its fds and /proc/<pid>/net).
#![allow(dead_code)]

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;

/// Bound on a storm worker finishing its last job after the stop.
const JOIN_BOUND: std::time::Duration = std::time::Duration::from_secs(120);

/// `workers` threads calling `job(worker, iteration)` until stopped.
pub struct Storm {
    stop: Arc<AtomicBool>,
    count: Arc<AtomicU64>,
    threads: Vec<JoinHandle<()>>,
}

impl Storm {
    pub fn start<F>(workers: usize, job: F) -> Storm
    where
        F: Fn(usize, u64) + Send + Sync + 'static,
    {
        let stop = Arc::new(AtomicBool::new(false));
        let count = Arc::new(AtomicU64::new(0));
        let job = Arc::new(job);
        let threads = (0..workers)
            .map(|w| {
                let (stop, count, job) = (stop.clone(), count.clone(), job.clone());
                std::thread::spawn(move || {
                    let mut i = 0;
                    while !stop.load(Ordering::Relaxed) {
                        job(w, i);
                        i += 1;
                        count.fetch_add(1, Ordering::Relaxed);
                    }
                })
            })
            .collect();
        Storm {
            stop,
            count,
            threads,
        }
    }

    /// Jobs finished so far.
    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    /// Stops the workers; returns how many jobs ran.
    pub fn stop(mut self) -> u64 {
        self.halt();
        self.count.load(Ordering::Relaxed)
    }

    /// Stops and joins the workers; each finishes its current job (itself bounded by the
    /// caller's job), so the join is bounded too.
    fn halt(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            if let Err(e) = crate::wait::try_join_timeout(t, JOIN_BOUND, "a storm worker")
                && !std::thread::panicking()
            {
                panic!("{e}");
            }
        }
    }
}

impl Drop for Storm {
    fn drop(&mut self) {
        self.halt();
    }
}

/// The socket inodes among `pid`'s open fds.
fn socket_inodes(pid: i32) -> HashSet<u64> {
    let mut set = HashSet::new();
    let Ok(rd) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return set;
    };
    for e in rd.flatten() {
        if let Ok(target) = std::fs::read_link(e.path()) {
            let t = target.to_string_lossy();
            if let Some(ino) = t.strip_prefix("socket:[").and_then(|r| r.strip_suffix(']')) {
                set.insert(ino.parse().unwrap());
            }
        }
    }
    set
}

/// The listening sockets `pid` holds, as `file: line` of its network namespace's tables:
/// TCP in LISTEN (state 0A), any bound UDP socket (it receives), unix sockets with
/// `__SO_ACCEPTCON` (00010000, listen(2) called).
pub fn listening_sockets(pid: i32) -> Vec<String> {
    let mine = socket_inodes(pid);
    let mut found = vec![];
    for table in ["tcp", "tcp6", "udp", "udp6", "unix"] {
        let path = format!("/proc/{pid}/net/{table}");
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let cols: Vec<&str> = line.split_whitespace().collect();
            let (inode, listening) = if table == "unix" {
                // Num RefCount Protocol Flags Type St Inode [Path]
                (cols.get(6), cols.get(3) == Some(&"00010000"))
            } else {
                // sl local rem st tx:rx tr:when retrnsmt uid timeout inode
                let st = cols.get(3).copied().unwrap_or("");
                (cols.get(9), table.starts_with("udp") || st == "0A")
            };
            let Some(inode) = inode.and_then(|i| i.parse::<u64>().ok()) else {
                continue;
            };
            if listening && mine.contains(&inode) {
                found.push(format!("{path}: {line}"));
            }
        }
    }
    found
}
