//! The kernel-side counters (per-CPU `u64`s), summed for userspace.

use aya::maps::{MapData, PerCpuArray};
use detector_common::counter;

use super::SensorError;

/// Kernel counters summed over all CPUs, indexed by `detector_common::counter`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    pub values: [u64; counter::COUNT as usize],
}

impl Counters {
    pub(super) fn read(map: &PerCpuArray<MapData, u64>) -> Result<Self, SensorError> {
        let mut values = [0u64; counter::COUNT as usize];
        for (i, v) in values.iter_mut().enumerate() {
            let per_cpu = map
                .get(&(i as u32), 0)
                .map_err(|e| SensorError::Map(detector_common::COUNTERS_MAP, e.to_string()))?;
            *v = per_cpu.iter().copied().fold(0u64, u64::wrapping_add);
        }
        Ok(Self { values })
    }

    /// One counter by index.
    pub fn get(&self, index: u32) -> u64 {
        self.values.get(index as usize).copied().unwrap_or(0)
    }

    /// Records the ring buffer had no room for, all kinds.
    pub fn lost(&self) -> u64 {
        self.get(counter::LOST_FORK)
            + self.get(counter::LOST_EXEC)
            + self.get(counter::LOST_EXIT)
            + self.get(counter::LOST_CRED)
    }

    /// (name, value) pairs in index order, for logs and reports.
    pub fn named(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        counter::NAMES
            .iter()
            .copied()
            .zip(self.values.iter().copied())
    }
}
