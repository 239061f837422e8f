//! Reading the ring buffer from tokio.
//!
//! The kernel programs wake the reader at most once per wake interval (see
//! `detector_common::Tuning`), and not at all while the reader says it polls: waking a
//! thread costs the traced process more than the rest of the program. Records written
//! without a wake-up are picked up by polling: once woken, the reader sets the `READER`
//! flag and drains the ring at every wake-up and at least every interval until it has found
//! it empty for two intervals after the last record. Then it clears the flag and polls one
//! interval more (a program that read the flag just before it was cleared commits its
//! record within microseconds), and only then waits for wake-ups alone. A record the kernel
//! wrote without waking anyone was written either while the flag was set or less than one
//! interval after a wake-up, so the reader, still polling, finds it within one interval
//! (the poll timer is a periodic timerfd: an event waits half an interval on average).
//! Under a sustained stream of records the polling period stretches up to the busy
//! interval (see `pace`), and those longer polls wait on tokio's timer with the thread's
//! timer slack widened to a quarter of the busy interval, so they ride on interrupts that
//! come anyway (see `timer`). An empty poll is back at the base interval on the timerfd, so
//! the hand-over to idle above still happens at base intervals.

use std::time::Duration;

use aya::maps::{Array, MapData, RingBuf};
use tokio::io::{Interest, unix::AsyncFd};
use tokio::time::Instant;

use super::SensorError;
use super::pace::Pacer;
use super::timer::{PollTimer, set_thread_slack};

/// Timer slack under a sustained stream: this fraction of the busy interval (an event then
/// waits at most 1.25 busy intervals).
const SLACK_DIVISOR: u32 = 4;

/// Whether the reader waits for the kernel's wake-up or polls on a timer.
#[derive(Clone, Copy, Debug)]
enum Mode {
    /// Waiting for a wake-up (nothing read for two intervals, or polling disabled).
    Idle,
    /// Draining every interval; `last` is when the last record was found, `flagged` whether
    /// the kernel has been told (through `READER`) that no wake-up is needed.
    Polling { last: Instant, flagged: bool },
}

/// How the reader has been draining the ring: shows whether polling and its stretching
/// work (in the daemon's stats and `trace`'s exit line).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct ReaderStats {
    /// Drains after a wake-up from the kernel (or the ring's readiness while polling).
    pub woken: u64,
    /// Drains on the base polling timer.
    pub polls: u64,
    /// Drains on the stretched, slack timer of a sustained stream.
    pub stretched_polls: u64,
}

/// The ring buffer registered with tokio's reactor.
pub struct RecordStream {
    fd: AsyncFd<RingBuf<MapData>>,
    /// The kernel's wake interval; zero: every record wakes the reader, no polling.
    interval: Duration,
    mode: Mode,
    /// The `READER` flag: `1` tells the programs the reader is polling.
    polling: PollingFlag,
    /// Expires every base polling period (see [`PollTimer`] for why not tokio's); stopped
    /// while the period is stretched.
    timer: PollTimer,
    /// The polling period: `interval`, stretched under a sustained stream (see [`Pacer`]).
    pace: Pacer,
    stats: ReaderStats,
}

/// The userspace end of the programs' `READER` map.
pub(super) struct PollingFlag {
    map: Array<MapData, u32>,
    /// Set failures so far (logged once): the reader then never stops polling.
    failures: u64,
}

impl PollingFlag {
    pub(super) fn new(map: Array<MapData, u32>) -> Self {
        Self { map, failures: 0 }
    }

    /// Tells the programs whether the reader polls; false when the kernel did not take it.
    fn set(&mut self, on: bool) -> bool {
        match self.map.set(0, u32::from(on), 0) {
            Ok(()) => true,
            Err(e) => {
                if self.failures == 0 {
                    tracing::warn!(
                        error = %e,
                        "cannot update the reader flag; polling the ring continuously"
                    );
                }
                self.failures += 1;
                false
            }
        }
    }
}

impl RecordStream {
    pub(super) fn new(
        ring: RingBuf<MapData>,
        polling: PollingFlag,
        interval: Duration,
        busy_interval: Duration,
    ) -> Result<Self, SensorError> {
        // SAFETY: `RingBuf` owns its map fd; it stays open and unchanged for as long as the
        // AsyncFd owns the RingBuf (it is dropped together with it).
        let fd = unsafe { AsyncFd::register_with_interest(ring, Interest::READABLE) }
            .map_err(|e| SensorError::Io(e.into()))?;
        if busy_interval > interval && !interval.is_zero() {
            // Not fatal: the reader then polls at the same period, a little more dearly.
            if let Err(e) = set_thread_slack(busy_interval / SLACK_DIVISOR) {
                tracing::warn!(error = %e, "cannot set the reader's timer slack");
            }
        }
        Ok(Self {
            fd,
            interval,
            mode: Mode::Idle,
            polling,
            timer: PollTimer::new().map_err(io_error)?,
            pace: Pacer::new(interval, busy_interval),
            stats: ReaderStats::default(),
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
                    self.stats.woken += 1;
                    let n = drain(guard.get_inner_mut(), &mut f);
                    if !self.interval.is_zero() {
                        // A wake-up starts a polling period even when the record was
                        // already taken by an earlier drain.
                        let flagged = self.polling.set(true);
                        self.timer.start(self.interval).map_err(io_error)?;
                        self.mode = Mode::Polling {
                            last: Instant::now(),
                            flagged,
                        };
                    }
                    if n > 0 {
                        return Ok(n);
                    }
                }
                Mode::Polling { last, flagged } => {
                    // A wake-up while polling (a ring filling up, or the first record after
                    // an interval while the flag is off) drains at once; otherwise the
                    // timer does.
                    let stretched = self.pace.is_stretched();
                    tokio::select! {
                        biased;
                        ready = self.fd.readable_mut() => {
                            ready?.clear_ready();
                            self.stats.woken += 1;
                        }
                        tick = self.timer.tick(), if !stretched => {
                            tick.map_err(io_error)?;
                            self.stats.polls += 1;
                        }
                        () = tokio::time::sleep(self.pace.period()), if stretched => {
                            self.stats.stretched_polls += 1;
                        }
                    }
                    let n = drain(self.fd.get_mut(), &mut f);
                    let now = Instant::now();
                    if self.pace.after_poll(n) {
                        if self.pace.is_stretched() {
                            self.timer.stop().map_err(io_error)?;
                        } else {
                            self.timer.start(self.interval).map_err(io_error)?;
                        }
                    }
                    if n > 0 {
                        let flagged = flagged || self.polling.set(true);
                        self.mode = Mode::Polling { last: now, flagged };
                        return Ok(n);
                    }
                    if now.duration_since(last) >= 2 * self.interval {
                        if !flagged {
                            self.timer.stop().map_err(io_error)?;
                            self.pace.reset();
                            self.mode = Mode::Idle;
                        } else if self.polling.set(false) {
                            // One interval more: see the module docs.
                            self.mode = Mode::Polling {
                                last,
                                flagged: false,
                            };
                        }
                        // A flag we could not clear keeps the reader polling: the
                        // programs would never wake it again.
                    }
                }
            }
        }
    }

    /// How the reader has drained the ring so far.
    pub fn stats(&self) -> ReaderStats {
        self.stats
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

fn io_error(e: std::io::Error) -> SensorError {
    SensorError::Io(e)
}
