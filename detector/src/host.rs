//! Host and agent facts, computed once at start: ECS `host.*`, `agent.*`/`observer.*`.
//!
//! Everything is read from files under a root directory (`/` in production, a fixture tree
//! in tests), so nothing here needs privileges or the network. A missing file leaves its
//! field empty; it is never an error.
//!
//! The agent id is stable across restarts without any state: it is derived from the host's
//! machine-id and a fixed salt (`sha256("detector-agent-id/v1\0" + machine-id)`, the first
//! 16 bytes formatted as a UUID). A host without a machine-id gets a random id persisted as
//! `agent-id` in the state directory when one is given (else a fresh random id per start).

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use sha2::{Digest, Sha256};

/// ECS `host.*` facts.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct HostInfo {
    /// `host.hostname` / `host.name`.
    pub hostname: String,
    /// `host.id`: `/etc/machine-id`.
    pub id: Option<String>,
    /// `host.boot.id`: `/proc/sys/kernel/random/boot_id`.
    pub boot_id: Option<String>,
    /// `host.os.name` (`NAME` of os-release), `host.os.version` (`VERSION_ID`),
    /// `host.os.platform` (`ID`), `host.os.full` (`PRETTY_NAME`), `host.os.family`
    /// (first of `ID_LIKE`, else `ID`).
    pub os_name: Option<String>,
    pub os_version: Option<String>,
    pub os_platform: Option<String>,
    pub os_full: Option<String>,
    pub os_family: Option<String>,
    /// `host.os.kernel`: `/proc/sys/kernel/osrelease`.
    pub os_kernel: Option<String>,
    /// `host.os.type`: always `linux`.
    pub os_type: &'static str,
    /// `host.architecture`: the machine (`x86_64`, `aarch64`).
    pub architecture: String,
    /// `host.pid_ns_ino`: the daemon's pid namespace (the host's when run as intended).
    pub pid_ns_ino: Option<u64>,
    /// Wall-clock ns since the Unix epoch at boot: converts CLOCK_BOOTTIME stamps to dates.
    pub boot_time_unix_ns: u64,
}

/// ECS `agent.*` (and `observer.*`) facts.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct AgentInfo {
    /// `agent.name`: the host name, as Elastic agents do.
    pub name: String,
    /// `agent.type`: `"detector"`.
    pub agent_type: &'static str,
    /// `agent.version`: this crate's version.
    pub version: &'static str,
    /// `agent.id`: stable across restarts (see module docs).
    pub id: String,
}

fn read_trim(path: &Path) -> Option<String> {
    let s = fs::read(path).ok()?;
    let s = String::from_utf8_lossy(&s[..s.len().min(4096)])
        .trim()
        .to_string();
    (!s.is_empty()).then_some(s)
}

/// Parse os-release text: `KEY=value`, values optionally quoted.
pub fn parse_os_release(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|l| {
            let l = l.trim();
            if l.starts_with('#') {
                return None;
            }
            let (k, v) = l.split_once('=')?;
            let v = v.trim();
            let v = v
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .or_else(|| v.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')))
                .unwrap_or(v);
            Some((k.trim().to_string(), v.replace("\\\"", "\"")))
        })
        .collect()
}

impl HostInfo {
    /// Collect from the files under `root` (normally `/`).
    pub fn collect(root: &Path) -> HostInfo {
        let os = fs::read_to_string(root.join("etc/os-release"))
            .or_else(|_| fs::read_to_string(root.join("usr/lib/os-release")))
            .map(|t| parse_os_release(&t))
            .unwrap_or_default();
        let get = |k: &str| {
            os.iter()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.clone())
                .filter(|v| !v.is_empty())
        };
        let family = get("ID_LIKE")
            .and_then(|l| l.split_whitespace().next().map(str::to_string))
            .or_else(|| get("ID"));
        HostInfo {
            hostname: read_trim(&root.join("proc/sys/kernel/hostname")).unwrap_or_default(),
            id: read_trim(&root.join("etc/machine-id")),
            boot_id: read_trim(&root.join("proc/sys/kernel/random/boot_id")),
            os_name: get("NAME"),
            os_version: get("VERSION_ID"),
            os_platform: get("ID"),
            os_full: get("PRETTY_NAME"),
            os_family: family,
            os_kernel: read_trim(&root.join("proc/sys/kernel/osrelease")),
            os_type: "linux",
            architecture: machine_arch(),
            pid_ns_ino: fs::metadata(root.join("proc/self/ns/pid"))
                .ok()
                .map(|m| m.ino()),
            boot_time_unix_ns: boot_time_unix_ns(),
        }
    }

    /// Wall-clock ns since the epoch of a CLOCK_BOOTTIME stamp (kernel `boot_ns` fields).
    pub fn boot_to_unix_ns(&self, boot_ns: u64) -> u64 {
        self.boot_time_unix_ns.saturating_add(boot_ns)
    }
}

/// `uname -m`.
fn machine_arch() -> String {
    // SAFETY: uname fills the zeroed struct; fields are NUL-terminated by the kernel.
    let mut u: libc::utsname = unsafe { std::mem::zeroed() };
    if unsafe { libc::uname(&mut u) } == 0 {
        let bytes: Vec<u8> = u
            .machine
            .iter()
            .take_while(|&&c| c != 0)
            .map(|&c| c as u8)
            .collect();
        return String::from_utf8_lossy(&bytes).into_owned();
    }
    std::env::consts::ARCH.to_string()
}

fn clock_ns(clock: libc::clockid_t) -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes the timespec we own.
    unsafe { libc::clock_gettime(clock, &mut ts) };
    (ts.tv_sec as u64)
        .saturating_mul(1_000_000_000)
        .saturating_add(ts.tv_nsec as u64)
}

/// Now (wall clock) minus now (CLOCK_BOOTTIME): the boot instant on the wall clock.
pub fn boot_time_unix_ns() -> u64 {
    let real = clock_ns(libc::CLOCK_REALTIME);
    let boot = clock_ns(libc::CLOCK_BOOTTIME);
    real.saturating_sub(boot)
}

/// Format 16 bytes as a UUID string.
fn uuid_string(b: &[u8]) -> String {
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&b[..16]);
    uuid::Uuid::from_bytes(bytes).hyphenated().to_string()
}

impl AgentInfo {
    /// Agent facts for `host`, persisting a random id in `state_dir` only when the host has
    /// no machine-id.
    pub fn new(host: &HostInfo, state_dir: Option<&Path>) -> AgentInfo {
        let id = match &host.id {
            Some(machine_id) => agent_id_from_machine_id(machine_id),
            None => persisted_id(state_dir),
        };
        AgentInfo {
            name: host.hostname.clone(),
            agent_type: "detector",
            version: env!("CARGO_PKG_VERSION"),
            id,
        }
    }
}

/// The derived agent id (see module docs).
pub fn agent_id_from_machine_id(machine_id: &str) -> String {
    let mut h = Sha256::new();
    h.update(b"detector-agent-id/v1\0");
    h.update(machine_id.trim().as_bytes());
    uuid_string(&h.finalize())
}

fn persisted_id(state_dir: Option<&Path>) -> String {
    let fresh = uuid::Uuid::new_v4().hyphenated().to_string();
    let Some(dir) = state_dir else { return fresh };
    let path = dir.join("agent-id");
    if let Some(s) = read_trim(&path)
        && uuid::Uuid::parse_str(&s).is_ok()
    {
        return s;
    }
    let _ = fs::create_dir_all(dir);
    if fs::write(&path, format!("{fresh}\n")).is_err() {
        tracing::warn!(path = %path.display(), "cannot persist agent id; it will change on restart");
    }
    fresh
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixture_root() {
        let t = tempfile::tempdir().unwrap();
        let r = t.path();
        fs::create_dir_all(r.join("etc")).unwrap();
        fs::create_dir_all(r.join("proc/sys/kernel/random")).unwrap();
        fs::write(
            r.join("etc/os-release"),
            "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nNAME=\"Debian GNU/Linux\"\nVERSION_ID=\"12\"\n# c\nID=debian\n",
        )
        .unwrap();
        fs::write(
            r.join("etc/machine-id"),
            "0123456789abcdef0123456789abcdef\n",
        )
        .unwrap();
        fs::write(
            r.join("proc/sys/kernel/random/boot_id"),
            "b3c1e1a2-0000-4000-8000-000000000001\n",
        )
        .unwrap();
        fs::write(r.join("proc/sys/kernel/hostname"), "node-1\n").unwrap();
        fs::write(r.join("proc/sys/kernel/osrelease"), "6.18.0-test\n").unwrap();
        let h = HostInfo::collect(r);
        assert_eq!(h.hostname, "node-1");
        assert_eq!(h.id.as_deref(), Some("0123456789abcdef0123456789abcdef"));
        assert_eq!(
            h.boot_id.as_deref(),
            Some("b3c1e1a2-0000-4000-8000-000000000001")
        );
        assert_eq!(h.os_name.as_deref(), Some("Debian GNU/Linux"));
        assert_eq!(h.os_version.as_deref(), Some("12"));
        assert_eq!(h.os_platform.as_deref(), Some("debian"));
        assert_eq!(h.os_family.as_deref(), Some("debian"));
        assert_eq!(h.os_full.as_deref(), Some("Debian GNU/Linux 12 (bookworm)"));
        assert_eq!(h.os_kernel.as_deref(), Some("6.18.0-test"));
        assert_eq!(h.pid_ns_ino, None);
        let a1 = AgentInfo::new(&h, None);
        let a2 = AgentInfo::new(&HostInfo::collect(r), None);
        assert_eq!(a1.id, a2.id, "agent id stable across restarts");
        assert_eq!(a1.name, "node-1");
        let mut other = h.clone();
        other.id = Some("ffff".into());
        assert_ne!(AgentInfo::new(&other, None).id, a1.id);
    }

    #[test]
    fn missing_machine_id_persists_random_id() {
        let t = tempfile::tempdir().unwrap();
        let h = HostInfo::collect(t.path());
        assert_eq!(h.id, None);
        assert_eq!(h.hostname, "");
        let state = t.path().join("state");
        let a = AgentInfo::new(&h, Some(&state));
        let b = AgentInfo::new(&h, Some(&state));
        assert_eq!(a.id, b.id);
        assert_ne!(AgentInfo::new(&h, None).id, AgentInfo::new(&h, None).id);
    }

    #[test]
    fn real_host() {
        let h = HostInfo::collect(Path::new("/"));
        assert!(!h.hostname.is_empty());
        assert!(h.boot_id.is_some());
        assert!(h.pid_ns_ino.is_some());
        assert!(!h.architecture.is_empty());
        // Boot is in the past, and after 2000-01-01.
        let now = clock_ns(libc::CLOCK_REALTIME);
        assert!(h.boot_time_unix_ns < now && h.boot_time_unix_ns > 946_684_800_000_000_000);
    }
}
