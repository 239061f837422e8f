//! `process.entity_id`: a process's identity, stable across daemon restarts.
//!
//! Like Elastic's session processor, the id is a hash of what makes a process unique on a
//! host for all time: the boot, the pid namespace its pid is counted in, the pid, and its
//! start time. Concretely: `base64(sha256("<boot id>|<host pid ns inode>|<tgid>|<start
//! ticks>"))[..18 bytes]` — 24 characters, no padding.
//!
//! The start time is taken in clock ticks (`USER_HZ`, the unit of `/proc/<pid>/stat` field
//! 22) rather than nanoseconds: a process first seen through `/proc` after a restart must
//! get the id it had when the kernel reported it. The kernel computes field 22 as
//! `start_boottime / (NSEC_PER_SEC / USER_HZ)` (truncating), and [`IdContext::start_ticks`] does the
//! same, so both sources agree. Two processes with the same pid starting within one tick is
//! impossible (a pid is not reused that fast).

use std::sync::Arc;

use base64::Engine;
use sha2::{Digest, Sha256};

/// What the ids are computed in: fixed for the daemon's life.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdContext {
    /// `/proc/sys/kernel/random/boot_id`.
    pub boot_id: String,
    /// Inode of the pid namespace host pids are counted in.
    pub pid_ns_ino: u64,
    /// Clock ticks per second (`USER_HZ`).
    pub ticks_per_sec: u64,
}

impl IdContext {
    /// ns since boot → the tick count `/proc` reports.
    pub fn start_ticks(&self, start_boot_ns: u64) -> u64 {
        start_boot_ns / (1_000_000_000 / self.ticks_per_sec.max(1)).max(1)
    }

    /// Tick count → ns since boot (the start of the tick).
    pub fn ticks_to_ns(&self, ticks: u64) -> u64 {
        ticks.saturating_mul((1_000_000_000 / self.ticks_per_sec.max(1)).max(1))
    }

    /// The entity id of process `tgid` started at `start_ticks`. Hashed and encoded on the
    /// stack: one allocation (the `Arc<str>`) per process that reaches a document.
    pub fn entity_id(&self, tgid: u32, start_ticks: u64) -> Arc<str> {
        use std::io::Write;
        let mut h = Sha256::new();
        h.update(self.boot_id.as_bytes());
        let mut tail = [0u8; 64];
        let mut w = std::io::Cursor::new(&mut tail[..]);
        write!(w, "|{}|{}|{}", self.pid_ns_ino, tgid, start_ticks)
            .expect("three integers fit in 64 bytes");
        let n = w.position() as usize;
        h.update(&tail[..n]);
        let digest = h.finalize();
        let mut out = [0u8; 24];
        let len = base64::engine::general_purpose::STANDARD_NO_PAD
            .encode_slice(&digest[..18], &mut out)
            .expect("18 bytes encode to 24 characters");
        std::str::from_utf8(&out[..len])
            .expect("base64 is ASCII")
            .into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_differ_and_agree() {
        let c = IdContext {
            boot_id: "b".into(),
            pid_ns_ino: 4_026_531_836,
            ticks_per_sec: 100,
        };
        let a = c.entity_id(10, 5);
        assert_eq!(a.len(), 24);
        assert_eq!(a, c.entity_id(10, 5));
        assert_ne!(a, c.entity_id(10, 6));
        assert_ne!(a, c.entity_id(11, 5));
        let other_boot = IdContext {
            boot_id: "c".into(),
            ..c.clone()
        };
        assert_ne!(a, other_boot.entity_id(10, 5));
        // The documented formula, byte for byte.
        let want = base64::engine::general_purpose::STANDARD_NO_PAD
            .encode(&Sha256::digest(b"b|4026531836|10|5")[..18]);
        assert_eq!(&*a, want);
        // Kernel ns and /proc ticks agree.
        assert_eq!(c.start_ticks(123_456_789_999), 12_345);
        assert_eq!(c.start_ticks(c.ticks_to_ns(12_345)), 12_345);
    }
}
