//! The daemon's own memory at each start-up phase, so where its peak RSS comes from can be
//! read off one run (`DETECTOR_LOG=detector=debug`), and the heap's freed pages handed back
//! to the kernel between phases.
//!
//! Start-up holds large transient data (the kernel's BTF parsed twice: ours for the
//! offsets, aya's for loading the programs; the rule compiler's intermediate automata),
//! and glibc's allocator keeps the pages of freed small blocks mapped. Without a trim
//! those pages stay resident for the daemon's whole life and the next phase's allocations
//! land beside them rather than in them, so the peak is the sum of the phases instead of
//! their maximum.

/// Resident-memory figures of this process, KiB (`/proc/self/status`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    /// Resident now.
    pub rss: u64,
    /// Highest resident so far (what benchmarks report as the peak).
    pub hwm: u64,
    /// Resident anonymous memory (the heap, stacks).
    pub anon: u64,
    /// Resident file-backed and shared mappings (the binary, the ring buffer).
    pub file: u64,
}

impl Usage {
    /// This process's figures now; `None` without `/proc`.
    pub fn now() -> Option<Usage> {
        std::fs::read_to_string("/proc/self/status")
            .ok()
            .map(|s| Usage::parse(&s))
    }

    fn parse(status: &str) -> Usage {
        let mut u = Usage::default();
        for l in status.lines() {
            let Some((k, v)) = l.split_once(':') else {
                continue;
            };
            let field = match k {
                "VmRSS" => &mut u.rss,
                "VmHWM" => &mut u.hwm,
                "RssAnon" => &mut u.anon,
                "RssFile" => &mut u.file,
                _ => continue,
            };
            *field = v.trim().trim_end_matches("kB").trim().parse().unwrap_or(0);
        }
        u
    }
}

/// Logs the memory figures at a start-up phase (debug level: one `/proc` read, and only
/// when the level is on).
pub fn phase(name: &'static str) {
    if tracing::enabled!(tracing::Level::DEBUG)
        && let Some(u) = Usage::now()
    {
        tracing::debug!(
            phase = name,
            rss_kib = u.rss,
            hwm_kib = u.hwm,
            anon_kib = u.anon,
            file_kib = u.file,
            "memory"
        );
    }
}

/// Hands the heap's free pages back to the kernel (glibc's `malloc_trim`) after a phase
/// that freed much, then logs the phase. A no-op elsewhere than glibc.
pub fn trim(name: &'static str) {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks and releases the allocator's own free lists; it takes
    // the allocator's locks like any malloc call.
    unsafe {
        libc::malloc_trim(0);
    }
    phase(name);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_status() {
        let s = "Name:\tdetector\nVmHWM:\t   47200 kB\nVmRSS:\t   30100 kB\nRssAnon:\t   \
                 20000 kB\nRssFile:\t   10000 kB\nRssShmem:\t  100 kB\n";
        assert_eq!(
            Usage::parse(s),
            Usage {
                rss: 30100,
                hwm: 47200,
                anon: 20000,
                file: 10000
            }
        );
        let own = Usage::now().expect("/proc/self/status");
        assert!(own.rss > 0 && own.hwm >= own.rss, "{own:?}");
    }
}
