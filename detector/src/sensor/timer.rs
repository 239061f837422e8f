//! Timers for the ring reader's polling: a precise one for light traffic, a lax one under a
//! sustained stream.
//!
//! Light traffic: a periodic `timerfd` ([`PollTimer`]). tokio's timer has millisecond
//! granularity and rounds every sleep up to the next tick, so a 1 ms poll would really
//! sleep 1–2 ms and add that to every event's detection latency. A periodic timerfd expires
//! every interval exactly, so an event waits half an interval on average.
//!
//! Sustained stream: tokio's sleep with the thread's timer slack widened
//! ([`set_thread_slack`]). There a poll's exact time matters less than what the wake-up
//! costs the host: a timer of its own is an extra interrupt (under virtualisation, a few
//! VM exits) on a CPU that is running the workload. With slack the kernel may fire the
//! timer up to that much late, which lets it ride on an interrupt that comes anyway (the
//! scheduler tick of a busy CPU). Measured here (2 vCPUs, HZ=250, 4-worker exec storm): a
//! process that only woke every 4 ms cost the storm about 2 % of its throughput, and
//! nothing beyond the noise (±1 %) with 4 ms of slack. A timerfd ignores slack, which is why light traffic, with
//! its latency target, keeps it.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::Duration;

use tokio::io::{Interest, unix::AsyncFd};

/// A `CLOCK_MONOTONIC` timerfd registered with tokio; stopped until [`PollTimer::start`].
pub struct PollTimer {
    fd: AsyncFd<OwnedFd>,
}

fn timespec(d: Duration) -> libc::timespec {
    libc::timespec {
        tv_sec: d.as_secs().min(libc::time_t::MAX as u64) as libc::time_t,
        tv_nsec: d.subsec_nanos() as libc::c_long,
    }
}

impl PollTimer {
    /// A new, stopped timer. Must be called from a tokio runtime.
    pub fn new() -> io::Result<Self> {
        // SAFETY: plain syscall; the returned fd is checked and then owned by `OwnedFd`.
        let raw = unsafe {
            libc::timerfd_create(
                libc::CLOCK_MONOTONIC,
                libc::TFD_NONBLOCK | libc::TFD_CLOEXEC,
            )
        };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `raw` is a fresh fd that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        // SAFETY: the AsyncFd owns the fd, so it stays open and unchanged while registered.
        let fd = unsafe { AsyncFd::register_with_interest(fd, Interest::READABLE) }?;
        Ok(Self { fd })
    }

    fn set(&self, first: Duration, period: Duration) -> io::Result<()> {
        let spec = libc::itimerspec {
            it_interval: timespec(period),
            it_value: timespec(first),
        };
        // SAFETY: valid fd and a valid, fully initialised itimerspec; no old value wanted.
        let r =
            unsafe { libc::timerfd_settime(self.fd.as_raw_fd(), 0, &spec, std::ptr::null_mut()) };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Expires every `period` from now on (a zero period is taken as 1 µs: a zero
    /// `it_value` would stop the timer instead).
    pub fn start(&self, period: Duration) -> io::Result<()> {
        let period = period.max(Duration::from_micros(1));
        self.set(period, period)
    }

    /// Stops the timer; a pending expiry is discarded.
    pub fn stop(&self) -> io::Result<()> {
        self.set(Duration::ZERO, Duration::ZERO)?;
        // Drain a pending expiry so a later `tick` does not return at once.
        let _ = self.read_count();
        Ok(())
    }

    /// The expirations since the last read (`WouldBlock` when none).
    fn read_count(&self) -> io::Result<u64> {
        let mut buf = [0u8; 8];
        // SAFETY: valid fd, and `buf` is writable for its 8 bytes (a timerfd read is 8).
        let n = unsafe { libc::read(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(u64::from_ne_bytes(buf))
    }

    /// Waits for the next expiry; returns how many periods passed (more than one when the
    /// caller was late). Cancel-safe: an expiry not read stays for the next call.
    pub async fn tick(&self) -> io::Result<u64> {
        loop {
            let mut guard = self.fd.readable().await?;
            match guard.try_io(|_| self.read_count()) {
                Ok(Ok(n)) => {
                    // A read takes every expiry so far: no need for the read that would
                    // only see `WouldBlock` (one syscall per poll). An expiry after the
                    // read has a newer readiness tick, which this does not clear.
                    guard.clear_ready();
                    return Ok(n);
                }
                Ok(Err(e)) => return Err(e),
                Err(_would_block) => continue,
            }
        }
    }
}

/// Lets the kernel fire this thread's sleeps and poll timeouts up to `slack` late (the
/// default is 50 µs), so they can share an interrupt with other timers; see the module
/// docs. Per thread: the daemon's reader runs on the runtime's one thread. `timerfd`s are
/// not affected.
pub fn set_thread_slack(slack: Duration) -> io::Result<()> {
    // The kernel takes 0 as "back to the default"; 1 ns is the smallest real slack.
    let ns = slack.as_nanos().clamp(1, libc::c_ulong::MAX as u128) as libc::c_ulong;
    // SAFETY: PR_SET_TIMERSLACK takes one integer argument and touches no memory of ours.
    let r = unsafe { libc::prctl(libc::PR_SET_TIMERSLACK, ns, 0, 0, 0) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    #[tokio::test]
    async fn ticks_at_its_period_and_stays_silent_when_stopped() {
        let t = PollTimer::new().unwrap();
        let start = Instant::now();
        t.start(Duration::from_micros(300)).unwrap();
        let mut periods = 0;
        while periods < 10 {
            periods += t.tick().await.unwrap();
        }
        // Ten periods of 300 µs cannot pass in less than 3 ms.
        assert!(start.elapsed() >= Duration::from_micros(3000));
        t.stop().unwrap();
        let silent = tokio::time::timeout(Duration::from_millis(20), t.tick()).await;
        assert!(silent.is_err(), "a stopped timer ticked: {silent:?}");
        t.start(Duration::from_micros(100)).unwrap();
        assert!(t.tick().await.unwrap() >= 1);
    }

    #[test]
    fn slack_is_set_for_the_calling_thread_only() {
        // SAFETY: PR_GET_TIMERSLACK takes no pointer and returns the calling thread's slack.
        let get = || unsafe { libc::prctl(libc::PR_GET_TIMERSLACK, 0, 0, 0, 0) };
        let before = get();
        let in_thread = std::thread::spawn(move || {
            set_thread_slack(Duration::from_micros(4000)).unwrap();
            get()
        })
        .join()
        .unwrap();
        assert_eq!(in_thread, 4_000_000);
        assert_eq!(get(), before, "another thread's slack changed");
    }
}
