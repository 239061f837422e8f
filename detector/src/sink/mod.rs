//! Outputs for alert lines: stdout and an append-only NDJSON file.
//!
//! A sink takes one complete NDJSON line (as [`crate::alert::LineEncoder`] makes it) and
//! writes it whole or not at all: the file sink issues one `write(2)` per line on an
//! `O_APPEND` descriptor and, if the kernel accepts only part of it (disk full), cuts the
//! file back to where the line began; the stdout sink finishes a partly written line before
//! anything else. A line that cannot be written now waits in a bounded queue and is retried
//! on the next write or [`Sink::retry`]; when the queue is full new lines are dropped. The
//! pipeline never blocks on a failed sink and never sees an error: every failure is logged
//! (`tracing`) and counted in [`SinkCounters`].
//!
//! Writes are synchronous: one small `write(2)` per alert is cheaper than a hand-off to a
//! blocking thread, and alerts are rare compared to events.

mod file;
mod retry;
mod stdout;

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

pub use file::{FileSink, FileSinkOptions, FileTarget, Rotation};
pub use retry::LineSink;
pub use stdout::{FdTarget, StdoutSink};

/// What happened to one line handed to a sink.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Delivery {
    /// Written now.
    Written,
    /// Kept in the retry queue; it will be written when the output accepts it again.
    Queued,
    /// Lost: the retry queue was full. Counted in `dropped`.
    Dropped,
}

/// An alert output.
pub trait Sink: Send {
    /// Writes one line (it should end in `\n`; one is added otherwise). Never blocks on a
    /// failed output and never fails: see [`Delivery`].
    fn write_line(&mut self, line: &[u8]) -> Delivery;
    /// Tries to write queued lines now (call periodically, e.g. once a second). Returns how
    /// many lines are still queued.
    fn retry(&mut self) -> usize;
    /// Reopens the output (the file sink opens its path again, e.g. after logrotate moved
    /// the file: wire to SIGHUP). On error the old output stays in use.
    fn reopen(&mut self) -> io::Result<()>;
    /// Shutdown: one last attempt for queued lines, ignoring the retry interval. Returns how
    /// many lines are still queued (and so lost).
    fn flush(&mut self) -> usize;
    /// The sink's counters, shareable with a stats reporter.
    fn counters(&self) -> Arc<SinkCounters>;
    /// A human name for logs (`stdout`, the file's path).
    fn name(&self) -> &str;
}

/// Counters of one sink, readable from any thread.
#[derive(Debug, Default)]
pub struct SinkCounters {
    /// Lines written completely.
    pub written: AtomicU64,
    /// Bytes of those lines.
    pub bytes: AtomicU64,
    /// Write attempts that failed (each retry of a queued line counts).
    pub failed: AtomicU64,
    /// Lines waiting in the retry queue now.
    pub queued: AtomicU64,
    /// Lines lost because the retry queue was full.
    pub dropped: AtomicU64,
    /// Partly written lines cut off the file again (a short write on a full disk).
    pub cut: AtomicU64,
}

/// A snapshot of [`SinkCounters`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[allow(missing_docs)] // The fields mirror SinkCounters', documented there.
pub struct SinkStats {
    pub written: u64,
    pub bytes: u64,
    pub failed: u64,
    pub queued: u64,
    pub dropped: u64,
    pub cut: u64,
}

impl SinkCounters {
    /// The current values (each read on its own: not one atomic snapshot).
    pub fn snapshot(&self) -> SinkStats {
        SinkStats {
            written: self.written.load(Ordering::Relaxed),
            bytes: self.bytes.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
            queued: self.queued.load(Ordering::Relaxed),
            dropped: self.dropped.load(Ordering::Relaxed),
            cut: self.cut.load(Ordering::Relaxed),
        }
    }
}

/// Bounds and pacing of a sink's retry queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QueueLimits {
    /// At most this many lines wait.
    pub max_lines: usize,
    /// At most this many bytes wait.
    pub max_bytes: usize,
    /// While the output fails, new attempts are made at most this often (a full disk is
    /// not asked again for every alert).
    pub retry_interval: Duration,
}

impl Default for QueueLimits {
    fn default() -> Self {
        QueueLimits {
            max_lines: 10_000,
            max_bytes: 16 << 20,
            retry_interval: Duration::from_secs(1),
        }
    }
}

/// Why a target did not take a whole line.
#[derive(Debug)]
pub struct WriteFailure {
    /// The write's error.
    pub error: io::Error,
    /// Bytes of the line that did reach the output and cannot be taken back (streams only;
    /// a file target cuts a partial line off and reports 0).
    pub written: usize,
    /// Bytes that reached the output and were removed again (a file's partial line).
    pub cut: usize,
}

/// An output that writes lines: the part of a sink that knows the output; [`LineSink`] adds
/// the retry queue and counters.
pub trait LineTarget: Send {
    /// Writes a whole line, or reports how much of it is out there.
    fn write_line(&mut self, line: &[u8]) -> Result<(), WriteFailure>;
    /// Opens the output again.
    fn reopen(&mut self) -> io::Result<()>;
    /// A human name for logs.
    fn name(&self) -> &str;
}
