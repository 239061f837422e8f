//! The record being built: the per-CPU scratch record, a write cursor into its data area,
//! and the copy into the ring buffer.
//!
//! A record is one [`EventHeader`] plus packed data sections (see `detector-common`). The
//! data area is written only through [`Record`], whose constructor is the one place that
//! turns the per-CPU map value into a reference; every write method compares the cursor
//! against `DATA_START_LIMIT` and the length against its maximum right before the helper
//! that writes, so the verifier can bound each access (and nothing can write past the
//! buffer whatever the caller does).

use core::ffi::c_void;

use aya_ebpf::{
    helpers::generated::{
        bpf_get_current_pid_tgid, bpf_ktime_get_boot_ns, bpf_probe_read_kernel_str,
        bpf_probe_read_user,
    },
    macros::map,
    maps::{Array, PerCpuArray, RingBuf},
};
use detector_common::{
    ARGV_MAX, DATA_MAX, DATA_START_LIMIT, DEFAULT_RING_BYTES, ENV_MAX, ENV_START_LIMIT,
    EventHeader, HEADER_SIZE, ScratchRecord, Tuning, counter, flags,
};

use crate::{
    counters::bump,
    kernel::{Access, KStr, R, ReadErr},
};

/// The one ring buffer; userspace may resize it before loading (`map_max_entries`).
#[map]
static EVENTS: RingBuf = RingBuf::with_byte_size(DEFAULT_RING_BYTES, 0);

/// The per-CPU scratch value: the record being built, and a slot [`Record::settle_cursor`]
/// passes the cursor through. Only the record's used prefix reaches the ring.
#[repr(C)]
struct Scratch {
    record: ScratchRecord,
    cursor: usize,
}

/// One scratch value per CPU: too big for the 512-byte eBPF stack.
#[map]
static SCRATCH: PerCpuArray<Scratch> = PerCpuArray::with_max_entries(1, 0);

/// Wake-up policy and argv capture, filled by the daemon like `OFFSETS` (see [`Tuning`]).
#[unsafe(no_mangle)]
static TUNING: Tuning = Tuning::immediate();

/// When the reader was last woken (boot ns), shared by all CPUs. Updates race between CPUs;
/// the worst a race does is one extra wake-up.
#[map]
static LAST_WAKE: Array<u64> = Array::with_max_entries(1, 0);

/// `1` while the reader drains the ring on its own timer (set by the daemon, see
/// `detector::sensor::RecordStream`): records then need no wake-up, and skipping it spares
/// the traced process the wake-up's self-IPI (a VM exit under virtualisation) and the
/// shared `LAST_WAKE` write.
#[map]
static READER: Array<u32> = Array::with_max_entries(1, 0);

/// `bpf_ringbuf_output` flags (uapi `BPF_RB_*`).
const RB_NO_WAKEUP: u64 = 1;
const RB_FORCE_WAKEUP: u64 = 2;
const RB_AVAIL_DATA: u64 = 0;

/// Reads one tuning value (volatile: the compiler must not fold the placeholder).
macro_rules! tuning {
    ($field:ident) => {
        // SAFETY: a plain read of a field of an immutable static.
        unsafe { core::ptr::read_volatile(&TUNING.$field) }
    };
}

/// Whether execs capture argv (`config: sensor.argv_capture`).
#[inline(always)]
pub fn capture_argv() -> bool {
    tuning!(capture_argv) != 0
}

/// Whether execs walk their working directory (`config: sensor.cwd_capture`).
#[inline(always)]
pub fn capture_cwd() -> bool {
    tuning!(capture_cwd) != 0
}

/// Whether execs copy their environment (`config: sensor.capture_env_vars` not empty).
#[inline(always)]
pub fn capture_env() -> bool {
    tuning!(capture_env) != 0
}

/// Whether records carry the capability sets (`config: sensor.caps_capture`).
#[inline(always)]
pub fn capture_caps() -> bool {
    tuning!(capture_caps) != 0
}

/// This CPU's scratch record being filled, and the end of the data written so far.
pub struct Record {
    scratch: &'static mut Scratch,
    cur: usize,
}

impl Record {
    /// The scratch record with a fresh header of `kind` and an empty data area; `None` (and
    /// a counter bump) when the map has no value, which should never happen.
    #[inline(always)]
    pub fn start(kind: u32) -> Option<Record> {
        let Some(scratch) = SCRATCH.get_ptr_mut(0) else {
            bump(counter::SCRATCH_MISSING);
            return None;
        };
        // SAFETY: `scratch` is this CPU's value of a per-CPU map, valid for the map's
        // lifetime (the program's). Only these programs use it, they do not nest on one CPU,
        // and one run holds one `Record` at a time, so the reference is exclusive while it
        // lives.
        let scratch = unsafe { &mut *scratch };
        scratch.record.header = EventHeader {
            kind,
            // SAFETY: helper without preconditions.
            boot_ns: unsafe { bpf_ktime_get_boot_ns() },
            // SAFETY: helper without preconditions.
            actor_pid: unsafe { bpf_get_current_pid_tgid() } as u32,
            ..EventHeader::default()
        };
        Some(Record { scratch, cur: 0 })
    }

    /// The record's header.
    #[inline(always)]
    pub fn header(&mut self) -> &mut EventHeader {
        &mut self.scratch.record.header
    }

    /// Sets `bits` (from `detector_common::flags`) in the header.
    #[inline(always)]
    pub fn flag(&mut self, bits: u32) {
        self.scratch.record.header.flags |= bits;
    }

    /// Bytes of the data area written so far.
    #[inline(always)]
    pub fn written(&self) -> usize {
        self.cur
    }

    /// Gives the cursor the same range, `0..DATA_START_LIMIT`, on every path that reaches
    /// this call, so the verifier can prune the states of a loop iteration instead of
    /// exploring each path (2^depth of them) — whatever order it explores them in. The
    /// cursor goes through map memory, whose contents the verifier does not track, and is
    /// masked on the way back. A no-op at run time while the cursor is below
    /// `DATA_START_LIMIT`, which holds for every section before argv (asserted in
    /// `detector-common`): call it only there.
    #[inline(always)]
    pub fn settle_cursor(&mut self) {
        let slot = &raw mut self.scratch.cursor;
        // SAFETY: `slot` comes from a live exclusive reference, so it is valid and aligned;
        // volatile keeps the compiler from forwarding the stored value to the load.
        self.cur = unsafe {
            core::ptr::write_volatile(slot, self.cur);
            core::ptr::read_volatile(slot)
        } & (DATA_START_LIMIT - 1);
    }

    /// Appends one NUL byte (an empty path component); false when there is no room.
    #[inline(always)]
    pub fn put_nul(&mut self) -> bool {
        let cur = self.cur;
        if cur >= DATA_START_LIMIT {
            return false;
        }
        match self.scratch.record.data.get_mut(cur) {
            Some(b) => {
                *b = 0;
                self.cur = cur + 1;
                true
            }
            None => false,
        }
    }

    /// Appends the NUL-terminated kernel string `src`, at most `MAX` bytes (NUL included).
    /// Returns the bytes written (NUL included), 0 on failure or with no room.
    #[inline(always)]
    pub fn put_kstr<const MAX: usize, A: Access>(&mut self, src: KStr<A>) -> usize {
        const { assert!(MAX <= ARGV_MAX) };
        let cur = self.cur;
        if cur >= DATA_START_LIMIT {
            return 0;
        }
        // SAFETY: cur < DATA_START_LIMIT and MAX <= ARGV_MAX, and DATA_START_LIMIT +
        // ARGV_MAX <= DATA_MAX (asserted in detector-common), so the at most MAX bytes
        // written stay inside `data`; the source read faults safely.
        let r = unsafe {
            bpf_probe_read_kernel_str(
                self.scratch.record.data.as_mut_ptr().add(cur) as *mut c_void,
                MAX as u32,
                src.addr() as *const c_void,
            )
        };
        if r <= 0 {
            return 0;
        }
        let n = if r as usize > MAX { MAX } else { r as usize };
        self.cur = cur + n;
        n
    }

    /// Appends `len` bytes of the current task's user memory at `src` (the argv section).
    /// Returns the bytes written: 0 when `len` is 0 or above `ARGV_MAX` or there is no
    /// room; an error when the read failed.
    #[inline(always)]
    pub fn put_user(&mut self, src: u64, len: u32) -> R<usize> {
        self.put_user_within::<DATA_START_LIMIT, ARGV_MAX>(src, len)
    }

    /// Appends `len` bytes of the current task's user memory at `src` as the `env` section,
    /// which follows argv: like [`Record::put_user`] with the bounds `ENV_START_LIMIT` and
    /// `ENV_MAX`.
    #[inline(always)]
    pub fn put_user_env(&mut self, src: u64, len: u32) -> R<usize> {
        self.put_user_within::<ENV_START_LIMIT, ENV_MAX>(src, len)
    }

    /// The one user-memory copy: the section starts below `START` and reads at most `MAX`
    /// bytes, both checked right before the helper so the verifier sees the bounds in the
    /// registers it gets.
    #[inline(always)]
    fn put_user_within<const START: usize, const MAX: usize>(
        &mut self,
        src: u64,
        len: u32,
    ) -> R<usize> {
        const { assert!(START + MAX <= DATA_MAX) };
        let cur = self.cur;
        if cur >= START {
            return Ok(0);
        }
        if len == 0 || len > MAX as u32 {
            return Ok(0);
        }
        // SAFETY: cur < START and len <= MAX, and START + MAX <= DATA_MAX (asserted above),
        // so the write stays inside `data`; the source read faults safely.
        let r = unsafe {
            bpf_probe_read_user(
                self.scratch.record.data.as_mut_ptr().add(cur) as *mut c_void,
                len,
                src as *const c_void,
            )
        };
        if r < 0 {
            return Err(ReadErr);
        }
        self.cur = cur + len as usize;
        Ok(len as usize)
    }

    /// Copies the used part of the record into the ring buffer, counting the outcome in
    /// `sent` or `lost` (and a read error, if the header has one).
    #[inline(always)]
    pub fn submit(self, sent: u32, lost: u32) {
        if self.scratch.record.header.flags & flags::READ_ERROR != 0 {
            bump(counter::READ_ERROR);
        }
        let mut len = HEADER_SIZE + self.cur;
        if len > core::mem::size_of::<ScratchRecord>() {
            len = core::mem::size_of::<ScratchRecord>();
        }
        let rec: *const ScratchRecord = &self.scratch.record;
        // SAFETY: `len` is clamped to the size of the record `rec` points at.
        let bytes = unsafe { core::slice::from_raw_parts(rec as *const u8, len) };
        match EVENTS.output::<[u8]>(bytes, wake_flags()) {
            Ok(()) => bump(sent),
            Err(_) => bump(lost),
        }
    }
}

/// Whether this record wakes the reader: never while the reader polls (unless the ring
/// fills up), else at most once per `wake_interval_ns`, or at once when the ring fills up
/// (see [`Tuning`]); every time when the interval is 0.
#[inline(always)]
fn wake_flags() -> u64 {
    let interval = tuning!(wake_interval_ns);
    if interval == 0 {
        return 0;
    }
    let full = EVENTS.query(RB_AVAIL_DATA) >= tuning!(wake_avail_bytes);
    if !full && READER.get(0).is_some_and(|polling| *polling == 1) {
        return RB_NO_WAKEUP;
    }
    let Some(last) = LAST_WAKE.get_ptr_mut(0) else {
        return 0;
    };
    // SAFETY: helper without preconditions.
    let now = unsafe { bpf_ktime_get_boot_ns() };
    // SAFETY: `last` points at the map's one u64 value; a racing CPU can only make the
    // value another CPU's recent time.
    unsafe {
        if full || now.wrapping_sub(*last) >= interval {
            *last = now;
            bump(counter::WAKEUPS);
            RB_FORCE_WAKEUP
        } else {
            RB_NO_WAKEUP
        }
    }
}
