//! The reader stage `detector run` and `detector trace` share: ring buffer → decoded queue
//! → handled in chunks between looks at the signals, the deadline and the caller's timers;
//! and, at the end, the drain of what the kernel still holds, within a time budget.
//!
//! Why a queue: the ring is read only when the queue is empty, so a consumer that falls
//! behind lets the kernel ring fill (and count its losses) instead of growing memory
//! without bound; and the queue is handled [`CHUNK`] events at a time, so a signal is seen
//! within one chunk even with a full ring behind.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::time::{Duration, Instant};

use tokio::signal::unix::{Signal, SignalKind, signal};

use super::pending::Pending;
use crate::event::{Decoder, ProcessEvent};
use crate::sensor::{ReaderStats, RecordStream, SensorError};

/// Events handled between two looks at the signals (and timers).
pub const CHUNK: usize = 256;

/// Why a reader loop ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopReason {
    Sigterm,
    Sigint,
    /// The `--duration` given on the command line elapsed.
    Deadline,
    /// Reading the ring buffer failed.
    ReadFailed,
}

/// The signals a reader loop answers, and its optional deadline.
///
/// Installed first, before anything slow: a signal that arrives during start-up is then
/// still seen by the loop (rather than killing the process half set up).
pub struct Control {
    /// SIGHUP, for callers that reload on it; `None` leaves its default action.
    hangup: Option<Signal>,
    terminate: Signal,
    interrupt: Signal,
    deadline: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl Control {
    /// Installs the SIGTERM and SIGINT handlers, and SIGHUP's when `hangup`. Must be called
    /// from a tokio runtime.
    pub fn install(hangup: bool) -> std::io::Result<Self> {
        Ok(Control {
            hangup: hangup.then(|| signal(SignalKind::hangup())).transpose()?,
            terminate: signal(SignalKind::terminate())?,
            interrupt: signal(SignalKind::interrupt())?,
            deadline: None,
        })
    }

    /// Stops the loop by itself `after` from now (tests, benchmarks); `None`: never.
    pub fn stop_after(&mut self, after: Option<Duration>) {
        self.deadline = after.map(|d| Box::pin(tokio::time::sleep(d)));
    }
}

/// What a [`Reader::wait`] returned for.
#[derive(Debug)]
pub enum Wake<T> {
    /// Events are queued: handle a chunk ([`Reader::handle_chunk`]).
    Events,
    /// SIGHUP.
    Hangup,
    /// Time to stop (a signal or the deadline).
    Stop(StopReason),
    /// The caller's timer fired with this value.
    Timer(T),
    /// Reading the ring buffer failed; the loop should stop.
    Failed(SensorError),
}

/// TEST ONLY: the environment variable naming the fault switch file. While that file
/// exists, the reader drops every record before decoding it (counted in
/// [`Reader::fault_dropped`], so nothing is silent): a stopped event stream, for the
/// blinded-sensor test (`tests/blinded.rs`). The raw-tracepoint links cannot be detached
/// from outside, so this is how a test blinds the sensor. Unset (always, outside tests):
/// no file is ever looked at.
pub const FAULT_DROP_RECORDS_ENV: &str = "DETECTOR_FAULT_DROP_RECORDS_FILE";

/// The ring buffer with its decoder and queue of decoded events.
pub struct Reader {
    records: RecordStream,
    decoder: Decoder,
    pending: Pending,
    /// TEST ONLY: [`FAULT_DROP_RECORDS_ENV`]'s path, when set.
    fault_file: Option<PathBuf>,
    /// Records dropped by the fault switch.
    fault_dropped: u64,
    /// How full the ring was when last drained, and at most.
    fill: RingFill,
}

/// How full the kernel ring was when the reader drained it: each drain takes every record
/// there is, so the bytes it took (with the kernel's 8-byte record headers and 8-byte
/// alignment) are the fill at that moment. A fill near the ring's size means the next
/// burst loses events: the early warning before `events_lost` moves.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RingFill {
    /// Bytes taken by the last drain.
    pub last_bytes: u64,
    /// The most any drain took since start.
    pub max_bytes: u64,
}

impl RingFill {
    /// What one record of `len` payload bytes occupies in a BPF ring buffer.
    pub fn footprint(len: usize) -> u64 {
        const HEADER: u64 = 8; // BPF_RINGBUF_HDR_SZ
        HEADER + (len as u64).div_ceil(8) * 8
    }

    /// One drain took `bytes`.
    fn record_drain(&mut self, bytes: u64) {
        self.last_bytes = bytes;
        self.max_bytes = self.max_bytes.max(bytes);
    }
}

impl Reader {
    pub fn new(records: RecordStream) -> Self {
        Reader {
            records,
            decoder: Decoder::default(),
            pending: Pending::default(),
            fault_file: std::env::var_os(FAULT_DROP_RECORDS_ENV)
                .filter(|p| !p.is_empty())
                .map(PathBuf::from),
            fault_dropped: 0,
            fill: RingFill::default(),
        }
    }

    /// How full the ring was at the last drain, and at most.
    pub fn fill(&self) -> RingFill {
        self.fill
    }

    /// Records dropped by the test-only fault switch ([`FAULT_DROP_RECORDS_ENV`]).
    pub fn fault_dropped(&self) -> u64 {
        self.fault_dropped
    }

    /// Waits for the next thing to do: a stop or SIGHUP (looked at first), the caller's
    /// `timer`, or events (at once when some are queued; otherwise the ring is read into
    /// the queue). Every arm is cancel-safe, so `timer` may be a fresh future each call
    /// over cancel-safe parts (e.g. `Interval::tick`).
    pub async fn wait<T>(
        &mut self,
        control: &mut Control,
        timer: impl Future<Output = T>,
    ) -> Wake<T> {
        let Control {
            hangup,
            terminate,
            interrupt,
            deadline,
        } = control;
        let queued = !self.pending.is_empty();
        // TEST ONLY: one look at the fault switch a turn, and only when its variable is set.
        let drop_records = self.fault_file.as_deref().is_some_and(Path::exists);
        let Reader {
            records,
            decoder,
            pending,
            fault_dropped,
            fill,
            ..
        } = self;
        let drained = std::cell::Cell::new(0u64);
        let deadline = async {
            match deadline.as_mut() {
                Some(d) => d.as_mut().await,
                None => std::future::pending().await,
            }
        };
        let hangup = async {
            match hangup.as_mut() {
                Some(h) => h.recv().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            biased;
            _ = terminate.recv() => Wake::Stop(StopReason::Sigterm),
            _ = interrupt.recv() => Wake::Stop(StopReason::Sigint),
            () = deadline => Wake::Stop(StopReason::Deadline),
            _ = hangup => Wake::Hangup,
            t = timer => Wake::Timer(t),
            () = std::future::ready(()), if queued => Wake::Events,
            r = records.next_batch(|b| {
                drained.set(drained.get() + RingFill::footprint(b.len()));
                if drop_records {
                    *fault_dropped += 1;
                } else {
                    pending.push_record(decoder, b);
                }
            }), if !queued => match r {
                Ok(_) => {
                    fill.record_drain(drained.get());
                    Wake::Events
                }
                Err(e) => Wake::Failed(e),
            },
        }
    }

    /// Hands up to [`CHUNK`] queued events to `f`, oldest first.
    pub fn handle_chunk(&mut self, mut f: impl FnMut(&ProcessEvent)) {
        for _ in 0..CHUNK {
            if !self.pending.pop_with(&mut f) {
                break;
            }
        }
    }

    /// True when no decoded event waits (the next [`wait`](Self::wait) reads the ring).
    pub fn is_idle(&self) -> bool {
        self.pending.is_empty()
    }

    /// At shutdown: hands `f` what is queued and what the kernel still holds, until the
    /// ring is empty or `budget` is spent; returns how many events were left unhandled
    /// (counted, not silently dropped).
    pub fn drain(&mut self, budget: Duration, mut f: impl FnMut(&ProcessEvent)) -> u64 {
        let stop = Instant::now();
        let over = || stop.elapsed() > budget;
        loop {
            if self.pending.is_empty()
                && self
                    .records
                    .drain(|b| self.pending.push_record(&mut self.decoder, b))
                    == 0
            {
                return 0;
            }
            while !over() && self.pending.pop_with(&mut f) {}
            if over() {
                return self.pending.len() as u64 + self.records.drain(|_| ()) as u64;
            }
        }
    }

    /// Records that did not decode so far.
    pub fn malformed(&self) -> u64 {
        self.decoder.malformed
    }

    /// How the ring has been drained so far.
    pub fn stats(&self) -> ReaderStats {
        self.records.stats()
    }
}

#[cfg(test)]
mod tests {
    use super::RingFill;

    #[test]
    fn a_record_occupies_its_header_and_aligned_payload() {
        assert_eq!(RingFill::footprint(0), 8);
        assert_eq!(RingFill::footprint(1), 16);
        assert_eq!(RingFill::footprint(8), 16);
        assert_eq!(RingFill::footprint(9), 24);
        let mut f = RingFill::default();
        f.record_drain(100);
        f.record_drain(40);
        assert_eq!(
            f,
            RingFill {
                last_bytes: 40,
                max_bytes: 100
            }
        );
    }
}
