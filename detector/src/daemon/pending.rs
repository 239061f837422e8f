//! Decoded events waiting to be handled, in slots recycled from batch to batch.
//!
//! Why: decoding into a fresh `ProcessEvent` allocated every string of every record (the
//! comm, the cgroup names, the path, each argument), and the allocator was a fifth of the
//! daemon's time in an exec storm. Decoding into a used slot reuses its buffers, so a steady
//! stream allocates nothing. After a burst the slots beyond [`KEEP`] are freed, so the
//! memory held stays bounded by what a quiet host needs.

use crate::event::{Decoder, ProcessEvent};

/// Slots kept once the queue is empty (enough for one handling chunk).
pub const KEEP: usize = 256;

/// A FIFO of decoded events whose slots are reused.
#[derive(Default)]
pub struct Pending {
    slots: Vec<ProcessEvent>,
    /// Next event to hand out.
    head: usize,
    /// One past the last decoded event.
    tail: usize,
}

impl Pending {
    /// Events decoded and not handled yet.
    pub fn len(&self) -> usize {
        self.tail - self.head
    }

    pub fn is_empty(&self) -> bool {
        self.head == self.tail
    }

    /// Decodes `record` into the next slot; a malformed record takes none (the decoder
    /// counts it).
    pub fn push_record(&mut self, decoder: &mut Decoder, record: &[u8]) {
        if self.tail == self.slots.len() {
            self.slots.push(ProcessEvent::default());
        }
        if decoder.decode_into(record, &mut self.slots[self.tail]) {
            self.tail += 1;
        }
    }

    /// The oldest event, handed to `f` and then released; false when there was none.
    pub fn pop_with(&mut self, f: impl FnOnce(&ProcessEvent)) -> bool {
        if self.is_empty() {
            return false;
        }
        f(&self.slots[self.head]);
        self.head += 1;
        if self.is_empty() {
            self.head = 0;
            self.tail = 0;
            self.slots.truncate(KEEP);
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use detector_common::{EventHeader, HEADER_SIZE, kind};

    fn record(tgid: u32) -> Vec<u8> {
        let h = EventHeader {
            kind: kind::EXIT,
            tgid,
            ..Default::default()
        };
        // SAFETY: EventHeader is repr(C) plain integers without padding.
        unsafe { std::slice::from_raw_parts((&h as *const EventHeader).cast::<u8>(), HEADER_SIZE) }
            .to_vec()
    }

    #[test]
    fn hands_out_in_order_skips_malformed_and_shrinks_after_a_burst() {
        let mut d = Decoder::default();
        let mut p = Pending::default();
        let burst = KEEP as u32 + 50;
        for t in 0..burst {
            p.push_record(&mut d, &record(t));
            if t == 3 {
                p.push_record(&mut d, b"short");
            }
        }
        assert_eq!((p.len(), d.malformed), (burst as usize, 1));
        let mut seen = Vec::new();
        while p.pop_with(|ev| seen.push(ev.tgid)) {}
        assert_eq!(seen, (0..burst).collect::<Vec<_>>());
        assert!(p.is_empty() && p.slots.len() == KEEP, "{}", p.slots.len());
        // Interleaved pushes and pops reuse the slots from the start.
        p.push_record(&mut d, &record(7));
        assert!(p.pop_with(|ev| assert_eq!(ev.tgid, 7)));
        assert!(!p.pop_with(|_| unreachable!()));
    }
}
