//! Reading the ring buffer from tokio.
//!
//! The kernel programs wake the reader at most once per wake interval (see
//! `detector_common::Tuning`): waking a thread on another CPU costs the traced process more
//! than the rest of the program. Records written without a wake-up are picked up by polling:
//! once woken, the reader drains the ring at every wake-up and at least every interval until
//! it has found it empty for two intervals after the last record, and only then waits for
//! wake-ups alone. A record the
//! kernel wrote without waking anyone was written less than one interval after a wake-up,
//! so the reader, still polling, finds it within about one interval.

use std::time::Duration;

use aya::maps::{MapData, RingBuf};
use tokio::io::{Interest, unix::AsyncFd};
use tokio::time::Instant;

use super::SensorError;

/// Whether the reader waits for the kernel's wake-up or polls on a timer.
#[derive(Clone, Copy, Debug)]
enum Mode {
    /// Waiting for a wake-up (nothing read for two intervals, or polling disabled).
    Idle,
    /// Draining every interval; `last` is when the last record was found.
    Polling { last: Instant },
}

/// The ring buffer registered with tokio's reactor.
pub struct RecordStream {
    fd: AsyncFd<RingBuf<MapData>>,
    /// The kernel's wake interval; zero: every record wakes the reader, no polling.
    interval: Duration,
    mode: Mode,
}

impl RecordStream {
    pub(super) fn new(ring: RingBuf<MapData>, interval: Duration) -> Result<Self, SensorError> {
        // SAFETY: `RingBuf` owns its map fd; it stays open and unchanged for as long as the
        // AsyncFd owns the RingBuf (it is dropped together with it).
        let fd = unsafe { AsyncFd::register_with_interest(ring, Interest::READABLE) }
            .map_err(|e| SensorError::Io(e.into()))?;
        Ok(Self {
            fd,
            interval,
            mode: Mode::Idle,
        })
    }

    /// Waits until records are available, then hands each available record (raw bytes) to
    /// `f`, returning how many it handled. Must be called from a tokio runtime.
    /// Cancel-safe: no record is taken from the ring before `f` sees it.
    pub async fn next_batch(&mut self, mut f: impl FnMut(&[u8])) -> Result<usize, SensorError> {
        loop {
            match self.mode {
                Mode::Idle => {
                    let mut guard = self.fd.readable_mut().await?;
                    // Cleared before draining: a wake-up for a record written after the
                    // drain's last look sets readiness again (tokio compares ticks).
                    guard.clear_ready();
                    let n = drain(guard.get_inner_mut(), &mut f);
                    if !self.interval.is_zero() {
                        // A wake-up starts a polling period even when the record was
                        // already taken by an earlier drain.
                        self.mode = Mode::Polling {
                            last: Instant::now(),
                        };
                    }
                    if n > 0 {
                        return Ok(n);
                    }
                }
                Mode::Polling { last } => {
                    // A wake-up while polling (the first record after an interval, or a
                    // ring filling up) drains at once; otherwise the timer does.
                    let interval = self.interval;
                    tokio::select! {
                        biased;
                        ready = self.fd.readable_mut() => ready?.clear_ready(),
                        () = tokio::time::sleep(interval) => {}
                    }
                    let n = drain(self.fd.get_mut(), &mut f);
                    let now = Instant::now();
                    if n > 0 {
                        self.mode = Mode::Polling { last: now };
                        return Ok(n);
                    }
                    if now.duration_since(last) >= 2 * self.interval {
                        self.mode = Mode::Idle;
                    }
                }
            }
        }
    }

    /// Hands every record available right now to `f` without waiting (used to drain the
    /// ring on shutdown).
    pub fn drain(&mut self, mut f: impl FnMut(&[u8])) -> usize {
        drain(self.fd.get_mut(), &mut f)
    }
}

/// Hands every record available now to `f`.
fn drain(ring: &mut RingBuf<MapData>, f: &mut impl FnMut(&[u8])) -> usize {
    let mut n = 0;
    while let Some(item) = ring.next() {
        f(&item);
        n += 1;
    }
    n
}
