//! Host checks run before loading, so common failures get a clear message.

use super::SensorError;

const CAP_SYS_ADMIN: u32 = 21;
const CAP_PERFMON: u32 = 38;
const CAP_BPF: u32 = 39;

/// Oldest kernel with everything we use: BPF ring buffer and `bpf_ktime_get_boot_ns` (5.8),
/// tp_btf (5.5).
const MIN_KERNEL: (u32, u32) = (5, 8);

/// The effective capability set of this process, from `/proc/self/status`.
pub(super) fn effective_caps() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("CapEff:"))?;
    u64::from_str_radix(line["CapEff:".len()..].trim(), 16).ok()
}

/// Fails unless we hold CAP_SYS_ADMIN, or both CAP_BPF and CAP_PERFMON.
pub(super) fn capabilities() -> Result<(), SensorError> {
    let Some(eff) = effective_caps() else {
        // Cannot tell (no procfs?): let the kernel decide and map its EPERM later.
        return Ok(());
    };
    let has = |cap: u32| eff & (1u64 << cap) != 0;
    if has(CAP_SYS_ADMIN) || (has(CAP_BPF) && has(CAP_PERFMON)) {
        Ok(())
    } else {
        Err(SensorError::MissingCapabilities { effective: eff })
    }
}

/// Parses the leading `major.minor` of a kernel release string like `6.18.44-fc`.
pub(super) fn parse_release(release: &str) -> Option<(u32, u32)> {
    let mut parts = release.split(|c: char| !c.is_ascii_digit());
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

/// Fails on kernels older than [`MIN_KERNEL`].
pub(super) fn kernel_version() -> Result<(), SensorError> {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let release = release.trim().to_owned();
    match parse_release(&release) {
        Some(v) if v < MIN_KERNEL => Err(SensorError::KernelTooOld {
            release,
            min_major: MIN_KERNEL.0,
            min_minor: MIN_KERNEL.1,
        }),
        _ => Ok(()),
    }
}

/// Page size (the ring buffer must be a multiple of it).
pub(super) fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    let v = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if v > 0 { v as usize } else { 4096 }
}

/// Tries to lift RLIMIT_MEMLOCK for kernels that still charge BPF memory to it (< 5.11).
/// Failure is logged, not fatal: here root lacks CAP_SYS_RESOURCE, and kernels >= 5.11
/// account BPF memory to the memory cgroup instead.
pub(super) fn raise_memlock() {
    let rlim = libc::rlimit {
        rlim_cur: libc::RLIM_INFINITY,
        rlim_max: libc::RLIM_INFINITY,
    };
    // SAFETY: valid pointer to an initialised rlimit.
    let ret = unsafe { libc::setrlimit(libc::RLIMIT_MEMLOCK, &rlim) };
    if ret != 0 {
        tracing::debug!(
            error = %std::io::Error::last_os_error(),
            "could not raise RLIMIT_MEMLOCK; continuing (kernels >= 5.11 do not need it)"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::parse_release;

    #[test]
    fn releases_parse() {
        for (s, want) in [
            ("6.18.44-fc-v669", Some((6, 18))),
            ("5.4.0-150-generic", Some((5, 4))),
            ("4.19", Some((4, 19))),
            ("garbage", None),
            ("", None),
        ] {
            assert_eq!(parse_release(s), want, "{s}");
        }
    }
}
