//! Ctrl-C and SIGTERM during a benchmark: the harness stops at the next step and unwinds
//! normally, so its Drop guards stop the tools, remove the container and its cgroups,
//! unmount tracefs and delete the scratch directory. The tools run in their own process
//! groups (see `child.rs`) so the terminal's SIGINT reaches only the harness, which stops
//! them itself.

use std::sync::atomic::{AtomicBool, Ordering};

static REQUESTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    // Only an atomic store: async-signal-safe.
    REQUESTED.store(true, Ordering::SeqCst);
}

/// Installs the handler for SIGINT and SIGTERM.
pub fn install() {
    for sig in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: a zeroed sigaction with a handler that only stores an atomic.
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = on_signal as *const () as libc::sighandler_t;
            libc::sigemptyset(&mut sa.sa_mask);
            libc::sigaction(sig, &sa, std::ptr::null_mut());
        }
    }
}

/// Whether a stop was requested.
pub fn requested() -> bool {
    REQUESTED.load(Ordering::SeqCst)
}

/// Fails with "interrupted" once a stop was requested.
pub fn check() -> anyhow::Result<()> {
    if requested() {
        anyhow::bail!("interrupted by a signal; everything started was stopped and removed");
    }
    Ok(())
}
