//! Reading the ring buffer from tokio.

use aya::maps::{MapData, RingBuf};
use tokio::io::{Interest, unix::AsyncFd};

use super::SensorError;

/// The ring buffer registered with tokio's reactor.
pub struct RecordStream {
    fd: AsyncFd<RingBuf<MapData>>,
}

impl RecordStream {
    pub(super) fn new(ring: RingBuf<MapData>) -> Result<Self, SensorError> {
        // SAFETY: `RingBuf` owns its map fd; it stays open and unchanged for as long as the
        // AsyncFd owns the RingBuf (it is dropped together with it).
        let fd = unsafe { AsyncFd::register_with_interest(ring, Interest::READABLE) }
            .map_err(|e| SensorError::Io(e.into()))?;
        Ok(Self { fd })
    }

    /// Waits until records are available, then hands each available record (raw bytes) to
    /// `f`, returning how many it handled. Must be called from a tokio runtime.
    pub async fn next_batch(&mut self, mut f: impl FnMut(&[u8])) -> Result<usize, SensorError> {
        loop {
            let mut guard = self.fd.readable_mut().await?;
            let ring = guard.get_inner_mut();
            let mut n = 0;
            while let Some(item) = ring.next() {
                f(&item);
                n += 1;
            }
            guard.clear_ready();
            if n > 0 {
                return Ok(n);
            }
        }
    }

    /// Hands every record available right now to `f` without waiting (used to drain the
    /// ring on shutdown).
    pub fn drain(&mut self, mut f: impl FnMut(&[u8])) -> usize {
        let ring = self.fd.get_mut();
        let mut n = 0;
        while let Some(item) = ring.next() {
            f(&item);
            n += 1;
        }
        n
    }
}
