//! The retry queue shared by every sink.

use std::collections::VecDeque;
use std::io;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Instant;

use super::{Delivery, LineTarget, QueueLimits, Sink, SinkCounters, WriteFailure};

/// A [`LineTarget`] with a bounded retry queue, counters and logging: a [`Sink`].
///
/// Order is kept: while lines wait, new lines queue behind them. A line that a stream
/// target wrote only in part waits at the front of the queue as its remainder, so nothing
/// else can be written into the middle of it.
pub struct LineSink<T: LineTarget> {
    target: T,
    queue: VecDeque<Vec<u8>>,
    queued_bytes: usize,
    limits: QueueLimits,
    counters: Arc<SinkCounters>,
    /// Set while the output fails: when the last attempt was made.
    failing_since: Option<Instant>,
    last_attempt: Option<Instant>,
    /// Lines dropped in the current failure episode (for rate-limited logging).
    episode_drops: u64,
}

impl<T: LineTarget> LineSink<T> {
    /// Wraps a target.
    pub fn new(target: T, limits: QueueLimits) -> Self {
        LineSink {
            target,
            queue: VecDeque::new(),
            queued_bytes: 0,
            limits,
            counters: Arc::default(),
            failing_since: None,
            last_attempt: None,
            episode_drops: 0,
        }
    }

    /// The wrapped target.
    pub fn target(&self) -> &T {
        &self.target
    }

    /// Snapshot of the counters.
    pub fn stats(&self) -> super::SinkStats {
        self.counters.snapshot()
    }

    fn written(&self, len: usize) {
        self.counters.written.fetch_add(1, Relaxed);
        self.counters.bytes.fetch_add(len as u64, Relaxed);
    }

    fn failed(&mut self, f: &WriteFailure) {
        self.counters.failed.fetch_add(1, Relaxed);
        self.counters.bytes.fetch_add(f.written as u64, Relaxed);
        if f.cut > 0 {
            self.counters.cut.fetch_add(1, Relaxed);
        }
        if self.failing_since.is_none() {
            self.failing_since = Some(Instant::now());
            self.episode_drops = 0;
            tracing::warn!(sink = self.target.name(), error = %f.error,
                "sink write failed; lines are queued and retried");
        }
    }

    fn recovered(&mut self) {
        if let Some(since) = self.failing_since.take() {
            tracing::info!(sink = self.target.name(), after = ?since.elapsed(),
                dropped = self.episode_drops, "sink writes again; queue drained");
        }
    }

    /// Puts a line in the queue (`front` for a stream's remainder, which is never dropped).
    fn enqueue(&mut self, line: Vec<u8>, front: bool) -> Delivery {
        let full = self.queue.len() >= self.limits.max_lines
            || self.queued_bytes + line.len() > self.limits.max_bytes;
        if full && !front {
            self.counters.dropped.fetch_add(1, Relaxed);
            self.episode_drops += 1;
            if self.episode_drops == 1 || self.episode_drops.is_multiple_of(1000) {
                tracing::error!(
                    sink = self.target.name(),
                    dropped = self.episode_drops,
                    queued = self.queue.len(),
                    "sink retry queue full: alert lines dropped"
                );
            }
            return Delivery::Dropped;
        }
        self.queued_bytes += line.len();
        if front {
            self.queue.push_front(line);
        } else {
            self.queue.push_back(line);
        }
        self.counters.queued.store(self.queue.len() as u64, Relaxed);
        Delivery::Queued
    }

    /// Writes queued lines while the target takes them; honours the retry interval unless
    /// `force`.
    fn drain(&mut self, force: bool) -> usize {
        if self.queue.is_empty() {
            return 0;
        }
        if !force
            && let Some(last) = self.last_attempt
            && last.elapsed() < self.limits.retry_interval
        {
            return self.queue.len();
        }
        self.last_attempt = Some(Instant::now());
        while let Some(front) = self.queue.front() {
            match self.target.write_line(front) {
                Ok(()) => {
                    let line = self.queue.pop_front().expect("front exists");
                    self.queued_bytes -= line.len();
                    self.written(line.len());
                }
                Err(f) => {
                    if f.written > 0 {
                        let rest = self.queue[0].split_off(f.written);
                        self.queued_bytes -= f.written;
                        self.queue[0] = rest;
                    }
                    self.failed(&f);
                    break;
                }
            }
        }
        self.counters.queued.store(self.queue.len() as u64, Relaxed);
        if self.queue.is_empty() {
            self.recovered();
        }
        self.queue.len()
    }
}

impl<T: LineTarget> Sink for LineSink<T> {
    fn write_line(&mut self, line: &[u8]) -> Delivery {
        let owned;
        let line = if line.last() == Some(&b'\n') {
            line
        } else {
            owned = [line, b"\n"].concat();
            &owned[..]
        };
        self.drain(false);
        if !self.queue.is_empty() {
            return self.enqueue(line.to_vec(), false);
        }
        self.last_attempt = Some(Instant::now());
        match self.target.write_line(line) {
            Ok(()) => {
                self.written(line.len());
                self.recovered();
                Delivery::Written
            }
            Err(f) => {
                self.failed(&f);
                // A stream's remainder goes first; the queue was empty, so it is the front.
                self.enqueue(line[f.written..].to_vec(), f.written > 0)
            }
        }
    }

    fn retry(&mut self) -> usize {
        self.drain(false)
    }

    fn reopen(&mut self) -> io::Result<()> {
        self.target.reopen()?;
        // A new output may take what the old one refused.
        self.drain(true);
        Ok(())
    }

    fn flush(&mut self) -> usize {
        self.drain(true)
    }

    fn counters(&self) -> Arc<SinkCounters> {
        self.counters.clone()
    }

    fn name(&self) -> &str {
        self.target.name()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sink::SinkStats;
    use std::time::Duration;

    /// A target that fails while `fail` is set, optionally after taking `partial` bytes.
    struct Flaky {
        out: Vec<u8>,
        fail: bool,
        partial: usize,
    }
    impl LineTarget for Flaky {
        fn write_line(&mut self, line: &[u8]) -> Result<(), WriteFailure> {
            if self.fail {
                let n = self.partial.min(line.len() - 1);
                self.out.extend_from_slice(&line[..n]);
                self.partial = 0;
                return Err(WriteFailure {
                    error: io::Error::other("full"),
                    written: n,
                    cut: 0,
                });
            }
            self.out.extend_from_slice(line);
            Ok(())
        }
        fn reopen(&mut self) -> io::Result<()> {
            Ok(())
        }
        fn name(&self) -> &str {
            "flaky"
        }
    }

    fn sink(max_lines: usize) -> LineSink<Flaky> {
        let limits = QueueLimits {
            max_lines,
            max_bytes: 1 << 20,
            retry_interval: Duration::ZERO,
        };
        LineSink::new(
            Flaky {
                out: vec![],
                fail: false,
                partial: 0,
            },
            limits,
        )
    }

    #[test]
    fn queues_in_order_and_drains_on_recovery() {
        let mut s = sink(3);
        assert_eq!(s.write_line(b"a\n"), Delivery::Written);
        s.target.fail = true;
        s.target.partial = 1; // a stream takes 1 byte of "bb\n"
        assert_eq!(s.write_line(b"bb\n"), Delivery::Queued);
        assert_eq!(s.write_line(b"c\n"), Delivery::Queued);
        assert_eq!(s.write_line(b"d"), Delivery::Queued); // newline added
        assert_eq!(s.write_line(b"e\n"), Delivery::Dropped);
        assert_eq!(s.retry(), 3);
        s.target.fail = false;
        assert_eq!(s.write_line(b"f\n"), Delivery::Written);
        assert_eq!(s.target.out, b"a\nbb\nc\nd\nf\n");
        let st = s.stats();
        assert_eq!(
            st,
            SinkStats {
                written: 5,
                bytes: 11,
                failed: st.failed,
                queued: 0,
                dropped: 1,
                cut: 0
            }
        );
        assert!(st.failed >= 4, "{st:?}");
    }

    #[test]
    fn retry_interval_spaces_attempts() {
        let mut s = sink(10);
        s.limits.retry_interval = Duration::from_secs(3600);
        s.target.fail = true;
        s.write_line(b"a\n");
        s.write_line(b"b\n");
        assert_eq!(
            s.stats().failed,
            1,
            "second line must not hit the failed output again"
        );
        s.target.fail = false;
        assert_eq!(s.retry(), 2, "interval not elapsed");
        assert_eq!(s.flush(), 0, "flush ignores the interval");
        assert_eq!(s.target.out, b"a\nb\n");
    }
}
