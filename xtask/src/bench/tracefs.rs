//! tracefs for bpftrace's classic tracepoints: mounted if missing, unmounted afterwards.

use std::path::Path;

use anyhow::Context;

const TRACEFS: &str = "/sys/kernel/tracing";

/// Unmounts tracefs on drop if this process mounted it.
pub struct TracefsGuard {
    mounted_here: bool,
}

/// Mounts tracefs at `/sys/kernel/tracing` unless its `events` directory is already there.
pub fn ensure_mounted() -> anyhow::Result<TracefsGuard> {
    if Path::new(TRACEFS).join("events").is_dir() {
        return Ok(TracefsGuard {
            mounted_here: false,
        });
    }
    let st = std::process::Command::new("mount")
        .args(["-t", "tracefs", "tracefs", TRACEFS])
        .status()
        .context("run mount")?;
    if !st.success() {
        // Not fatal: bpftrace then reports itself unavailable with its own reason.
        eprintln!("bench: mounting tracefs at {TRACEFS} failed ({st})");
        return Ok(TracefsGuard {
            mounted_here: false,
        });
    }
    Ok(TracefsGuard { mounted_here: true })
}

impl Drop for TracefsGuard {
    fn drop(&mut self) {
        if self.mounted_here {
            let _ = std::process::Command::new("umount").arg(TRACEFS).status();
        }
    }
}
