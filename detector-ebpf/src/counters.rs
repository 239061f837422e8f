//! The per-CPU event counters (`detector_common::counter`), which the daemon sums and logs.

use aya_ebpf::{macros::map, maps::PerCpuArray};
use detector_common::counter;

/// Per-CPU event counters, indexed by `detector_common::counter`.
#[map]
static COUNTERS: PerCpuArray<u64> = PerCpuArray::with_max_entries(counter::COUNT, 0);

/// Adds one to counter `index`.
#[inline(always)]
pub fn bump(index: u32) {
    if let Some(p) = COUNTERS.get_ptr_mut(index) {
        // SAFETY: this CPU's slot of a per-CPU map; programs do not preempt each other on
        // one CPU, so the read-modify-write is not interleaved.
        unsafe { *p += 1 };
    }
}
