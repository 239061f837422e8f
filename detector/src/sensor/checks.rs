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

/// Whether an effective set is enough to load the programs: CAP_SYS_ADMIN, or both CAP_BPF
/// and CAP_PERFMON.
fn sufficient(eff: u64) -> bool {
    let has = |cap: u32| eff & (1u64 << cap) != 0;
    has(CAP_SYS_ADMIN) || (has(CAP_BPF) && has(CAP_PERFMON))
}

/// Fails unless we hold CAP_SYS_ADMIN, or both CAP_BPF and CAP_PERFMON.
pub(super) fn capabilities() -> Result<(), SensorError> {
    let Some(eff) = effective_caps() else {
        // Cannot tell (no procfs?): let the kernel decide and map its EPERM later.
        return Ok(());
    };
    if sufficient(eff) {
        Ok(())
    } else {
        Err(SensorError::MissingCapabilities { effective: eff })
    }
}

/// The seccomp state of this process from `/proc/self/status`: (`Seccomp:` mode — 0 none,
/// 1 strict, 2 filter — and `Seccomp_filters:`, the number of filters stacked on it).
fn seccomp_state(status: &str) -> (u32, u32) {
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    };
    (field("Seccomp:"), field("Seccomp_filters:"))
}

/// Whether this process runs under a seccomp filter.
pub(super) fn under_seccomp() -> bool {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    seccomp_state(&status).0 != 0
}

/// Why the kernel refused `bpf(2)` with EPERM (or ENOSYS, what some seccomp profiles
/// return) although the start-up check passed. The same EPERM means three different
/// things, each with its own fix:
/// - the capabilities are missing (a process that lost them after the check, or a kernel
///   that wants CAP_SYS_ADMIN);
/// - they are held, but a seccomp filter (a container runtime's default profile) refuses
///   the call: the fix is the shipped profile, not more capabilities;
/// - they are held and no filter is set: an LSM (AppArmor, SELinux, lockdown) refused it.
pub(super) fn refusal(errno: Option<i32>) -> SensorError {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    classify_refusal(&status, errno)
}

fn classify_refusal(status: &str, errno: Option<i32>) -> SensorError {
    let effective = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        .unwrap_or(0);
    let (mode, filters) = seccomp_state(status);
    if !sufficient(effective) {
        return SensorError::MissingCapabilities { effective };
    }
    if mode != 0 {
        return SensorError::SeccompRefused {
            effective,
            mode,
            filters,
            errno: errno.unwrap_or(libc::EPERM),
        };
    }
    SensorError::BpfRefused {
        effective,
        errno: errno.unwrap_or(libc::EPERM),
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
    use super::{SensorError, classify_refusal, parse_release};

    fn status(cap_eff: &str, seccomp: u32, filters: u32) -> String {
        format!(
            "Name:\tdetector\nCapEff:\t{cap_eff}\nNoNewPrivs:\t1\nSeccomp:\t{seccomp}\n\
             Seccomp_filters:\t{filters}\nSpeculation_Store_Bypass:\tthread vulnerable\n"
        )
    }

    #[test]
    fn an_eperm_is_told_apart_by_capabilities_and_seccomp() {
        // What podman's default profile gave with exactly BPF, PERFMON and SYS_PTRACE.
        let podman = status("000000c000080000", 2, 1);
        match classify_refusal(&podman, Some(libc::EPERM)) {
            SensorError::SeccompRefused {
                effective, filters, ..
            } => {
                assert_eq!(effective, 0xc0_0008_0000);
                assert_eq!(filters, 1);
            }
            other => panic!("{other:?}"),
        }
        let msg = classify_refusal(&podman, Some(libc::EPERM)).to_string();
        assert!(msg.contains("seccomp"), "{msg}");
        assert!(msg.contains("detector.json"), "{msg}");
        assert!(!msg.contains("missing capabilities"), "{msg}");
        // Without the capabilities, the filter is not the first problem.
        let nobody = status("0000000000000000", 2, 1);
        assert!(matches!(
            classify_refusal(&nobody, Some(libc::EPERM)),
            SensorError::MissingCapabilities { effective: 0 }
        ));
        // CAP_SYS_ADMIN alone is enough; no filter: something else (an LSM) refused.
        let admin = status("0000000000200000", 0, 0);
        let e = classify_refusal(&admin, None);
        assert!(matches!(e, SensorError::BpfRefused { .. }), "{e:?}");
        assert!(e.to_string().contains("no seccomp filter"), "{e}");
    }

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
