//! The sensor: loads the eBPF programs, hands them the kernel's struct offsets, attaches
//! them to the scheduler's process tracepoints and streams their ring-buffer records into
//! tokio, with the kernel-side loss and truncation counters.
//!
//! Start-up checks run before anything is loaded so that the common failures get an
//! actionable message: missing capabilities, no kernel BTF, a kernel too old, and a verifier
//! rejection (with the tail of the verifier log). A `bpf(2)` refused with the capabilities
//! held is told apart: a seccomp filter (a container runtime's default profile; the message
//! names the shipped profile) or, with no filter, a security module.

pub mod btf;
mod checks;
pub mod counters;
pub mod cred;
pub mod offsets;
mod pace;
mod ring;
mod timer;

use aya::{
    Ebpf, EbpfLoader,
    maps::{Array, MapData, PerCpuArray, RingBuf},
    programs::{BtfTracePoint, ProgramError},
};
use detector_common::{
    COUNTERS_MAP, DEFAULT_RING_BYTES, DEFAULT_WAKE_INTERVAL_NS, OFFSETS_GLOBAL, READER_MAP,
    RING_MAP, TUNING_GLOBAL, Tuning,
};

pub use counters::Counters;
pub use pace::BUSY_INTERVAL_FACTOR;
pub use ring::{ReaderStats, RecordStream};

/// The eBPF object built by `build.rs` (empty when built with `AYA_BUILD_SKIP=1`).
static OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/detector"));

/// Where the kernel publishes its own BTF.
pub const VMLINUX_BTF: &str = "/sys/kernel/btf/vmlinux";

/// The programs, as (program name in the object, tracepoint).
pub const PROGRAMS: [(&str, &str); 3] = [
    ("sched_process_fork", "sched_process_fork"),
    ("sched_process_exec", "sched_process_exec"),
    ("sched_process_exit", "sched_process_exit"),
];

/// Default [`SensorConfig::busy_interval`]: four base intervals.
pub const DEFAULT_BUSY_INTERVAL: std::time::Duration =
    std::time::Duration::from_nanos(4 * DEFAULT_WAKE_INTERVAL_NS);

/// Lines of the verifier log kept in [`SensorError::Verifier`].
const VERIFIER_TAIL_LINES: usize = 40;

/// How the sensor is set up.
#[derive(Clone, Debug)]
pub struct SensorConfig {
    /// Ring buffer size in bytes: a power of two and a multiple of the page size.
    pub ring_bytes: u32,
    /// The longest a record may wait in the ring for the reader: the kernel wakes the reader
    /// at most once per interval, the reader polls while events flow (see
    /// [`detector_common::Tuning`]). Zero: every record wakes the reader (lowest latency,
    /// highest cost to the traced processes).
    pub wake_interval: std::time::Duration,
    /// The longest polling period under a sustained stream of events (see `pace`): a
    /// wake-up of the reader costs ten times an event, so a busy host is read in larger,
    /// rarer batches. At or below `wake_interval`: never stretched.
    pub busy_interval: std::time::Duration,
    /// Copy each exec's argv (`process.args`).
    pub capture_argv: bool,
    /// Attach the credential programs (`uid_change`, `gid_change`, `session_id_change`;
    /// see [`cred`]).
    pub credential_events: bool,
    /// Walk each exec's working directory (`process.working_directory`).
    pub capture_cwd: bool,
    /// Copy each exec's environment block (for `process.env_vars`; the daemon keeps only
    /// the configured variables).
    pub capture_env: bool,
    /// Read the capability sets (`process.thread.capabilities.*`).
    pub capture_caps: bool,
}

impl Default for SensorConfig {
    fn default() -> Self {
        Self {
            ring_bytes: DEFAULT_RING_BYTES,
            wake_interval: std::time::Duration::from_nanos(DEFAULT_WAKE_INTERVAL_NS),
            busy_interval: DEFAULT_BUSY_INTERVAL,
            capture_argv: true,
            credential_events: true,
            capture_cwd: true,
            capture_env: false,
            capture_caps: true,
        }
    }
}

impl SensorConfig {
    /// The programs' [`Tuning`] global for this config.
    fn tuning(&self) -> Tuning {
        Tuning {
            wake_interval_ns: self.wake_interval.as_nanos().min(u64::MAX as u128) as u64,
            // A quarter of the ring unread: wake at once, whatever the interval, so a burst
            // cannot fill the ring while the reader sleeps.
            wake_avail_bytes: u64::from(self.ring_bytes / 4),
            capture_argv: u32::from(self.capture_argv),
            reserved: 0,
            capture_cwd: u32::from(self.capture_cwd),
            capture_env: u32::from(self.capture_env),
            capture_caps: u32::from(self.capture_caps),
            reserved2: 0,
        }
    }
}

/// Why the sensor could not start or run. Each message says what to do.
#[derive(Debug, thiserror::Error)]
pub enum SensorError {
    #[error(
        "missing capabilities: loading eBPF programs needs root, or CAP_BPF and CAP_PERFMON \
         (or CAP_SYS_ADMIN); effective capabilities here: {effective:#x}. Run as root \
         (e.g. `sudo detector …`) or grant the capabilities to the binary"
    )]
    MissingCapabilities { effective: u64 },
    #[error(
        "bpf(2) refused by a seccomp filter: the capabilities are here (effective \
         {effective:#x}) but this process runs under seccomp (mode {mode}, {filters} \
         filter(s)) and the kernel answered errno {errno}. A container runtime's default \
         seccomp profile (Kubernetes `RuntimeDefault`, podman's, docker's) refuses bpf(2) to \
         holders of CAP_BPF without CAP_SYS_ADMIN. Use the profile detector ships, \
         config/seccomp/detector.json: Kubernetes `seccompProfile: {{type: Localhost, \
         localhostProfile: profiles/detector.json}}` with the file in \
         /var/lib/kubelet/seccomp/profiles/ on each node; docker/podman `--security-opt \
         seccomp=detector.json`; systemd: the shipped unit's SystemCallFilter="
    )]
    SeccompRefused {
        effective: u64,
        mode: u32,
        filters: u32,
        errno: i32,
    },
    #[error(
        "bpf(2) refused (errno {errno}) although the capabilities are here (effective \
         {effective:#x}) and no seccomp filter is set: a Linux security module (AppArmor, \
         SELinux, lockdown) or a user namespace denies it; see the kernel log"
    )]
    BpfRefused { effective: u64, errno: i32 },
    #[error(
        "kernel BTF not found at {VMLINUX_BTF}: this kernel was built without \
         CONFIG_DEBUG_INFO_BTF=y; detector needs it to find kernel struct offsets ({0})"
    )]
    NoBtf(std::io::Error),
    #[error("kernel BTF is unusable: {0}")]
    Btf(#[from] btf::BtfError),
    #[error(
        "kernel {release} is too old: detector needs Linux {min_major}.{min_minor} or newer \
         (BPF ring buffer, tp_btf, bpf_ktime_get_boot_ns)"
    )]
    KernelTooOld {
        release: String,
        min_major: u32,
        min_minor: u32,
    },
    #[error("ring buffer size {0} must be a power of two and a multiple of the page size")]
    BadRingSize(u32),
    #[error(
        "the eBPF object is empty: detector was built with AYA_BUILD_SKIP=1 or without \
         nightly/bpf-linker; run `cargo xtask setup` and rebuild"
    )]
    NoObject,
    #[error(
        "the kernel verifier rejected program `{program}` ({cause}); verifier log tail:\n{log_tail}"
    )]
    Verifier {
        program: &'static str,
        cause: std::io::Error,
        log_tail: String,
    },
    #[error("program `{program}`: {source}")]
    Program {
        program: &'static str,
        #[source]
        source: ProgramError,
    },
    #[error("loading the eBPF object failed: {0}")]
    Load(#[from] aya::EbpfError),
    #[error("eBPF map `{0}`: {1}")]
    Map(&'static str, String),
    #[error("ring buffer I/O: {0}")]
    Io(#[from] std::io::Error),
}

/// Loaded and attached programs plus the userspace ends of their maps.
pub struct Sensor {
    /// Keeps programs and links alive for as long as the sensor lives.
    ebpf: Ebpf,
    counters: PerCpuArray<MapData, u64>,
    ring: Option<RingBuf<MapData>>,
    /// The flag through which the reader tells the programs it polls.
    reader: Option<Array<MapData, u32>>,
    /// The reader polls at this interval while events flow (see [`RecordStream`]).
    wake_interval: std::time::Duration,
    /// …and at up to this one under a sustained stream.
    busy_interval: std::time::Duration,
    /// Names of the credential programs loaded (empty when they are off).
    cred_programs: Vec<&'static str>,
}

/// Verifier statistics of one loaded program.
#[derive(Clone, Debug)]
pub struct ProgramStats {
    pub name: &'static str,
    /// Instructions the verifier processed, when the kernel reports it.
    pub verified_insns: Option<u32>,
}

/// The programs loaded into the kernel (verified) but not attached yet: the kernel's BTF,
/// needed only to load them, is already dropped. See [`Sensor::load`].
pub struct Loaded {
    ebpf: Ebpf,
    config: SensorConfig,
}

impl Sensor {
    /// Checks the host, computes offsets from BTF, loads and attaches the programs.
    pub fn start(config: &SensorConfig) -> Result<Self, SensorError> {
        Self::load(config)?.attach()
    }

    /// Checks the host, computes offsets from BTF and loads the programs without
    /// attaching them (no event is recorded yet).
    ///
    /// This is the daemon's memory peak: the kernel's BTF is parsed twice (ours for the
    /// offsets, aya's to load the programs), one copy at a time, some 20 MiB each while
    /// it lives. Both are dropped and the heap trimmed before this returns, so a caller
    /// that loads first and builds its large structures (the compiled rules) after has a
    /// peak of the larger of the two, not their sum.
    pub fn load(config: &SensorConfig) -> Result<Loaded, SensorError> {
        checks::capabilities()?;
        checks::kernel_version()?;
        let page = checks::page_size();
        if !config.ring_bytes.is_power_of_two()
            || !(config.ring_bytes as usize).is_multiple_of(page)
        {
            return Err(SensorError::BadRingSize(config.ring_bytes));
        }
        if OBJECT.is_empty() {
            return Err(SensorError::NoObject);
        }
        let raw_btf = std::fs::read(VMLINUX_BTF).map_err(SensorError::NoBtf)?;
        let offsets = offsets::compute(&btf::Btf::parse(raw_btf)?)?;
        tracing::debug!(?offsets, "kernel struct offsets from BTF");
        crate::daemon::memory::trim("offsets from BTF");
        let missing = offsets::missing_optional(&offsets);
        if !missing.is_empty() {
            tracing::warn!(
                ?missing,
                "this kernel lacks some optional fields; their values stay empty"
            );
        }
        checks::raise_memlock();
        // `EbpfLoader::new` parses the kernel's BTF itself (some 15 MiB of heap for a
        // 5 MiB vmlinux BTF); the programs need one of our own. Dropping the loader's
        // before parsing ours keeps one parsed copy at a time.
        let mut loader = EbpfLoader::new();
        loader.btf(None);
        let aya_btf = aya::Btf::from_sys_fs().map_err(aya::EbpfError::from)?;
        crate::daemon::memory::phase("aya BTF parsed");
        let tuning = config.tuning();
        let mut ebpf = loader
            .btf(Some(&aya_btf))
            .override_global(OFFSETS_GLOBAL, &offsets, true)
            .override_global(TUNING_GLOBAL, &tuning, true)
            .map_max_entries(RING_MAP, config.ring_bytes)
            .load(OBJECT)
            .map_err(map_load_error)?;
        for (name, tracepoint) in PROGRAMS {
            program(&mut ebpf, name)?
                .load(tracepoint, &aya_btf)
                .map_err(|e| program_error(name, e))?;
        }
        drop(aya_btf);
        crate::daemon::memory::trim("programs loaded, kernel BTF dropped");
        Ok(Loaded {
            ebpf,
            config: config.clone(),
        })
    }
}

impl Loaded {
    /// Attaches the loaded programs and maps the ring buffer (whose pages, mapped twice,
    /// count in RSS from here on).
    pub fn attach(self) -> Result<Sensor, SensorError> {
        let Loaded { mut ebpf, config } = self;
        for (name, _) in PROGRAMS {
            program(&mut ebpf, name)?
                .attach()
                .map_err(|e| program_error(name, e))?;
        }
        let cred_programs = if config.credential_events {
            cred::attach(&mut ebpf)
        } else {
            Vec::new()
        };
        let counters = PerCpuArray::try_from(
            ebpf.take_map(COUNTERS_MAP)
                .ok_or(SensorError::Map(COUNTERS_MAP, "missing".into()))?,
        )
        .map_err(|e| SensorError::Map(COUNTERS_MAP, e.to_string()))?;
        let ring = RingBuf::try_from(
            ebpf.take_map(RING_MAP)
                .ok_or(SensorError::Map(RING_MAP, "missing".into()))?,
        )
        .map_err(|e| SensorError::Map(RING_MAP, e.to_string()))?;
        let reader = Array::try_from(
            ebpf.take_map(READER_MAP)
                .ok_or(SensorError::Map(READER_MAP, "missing".into()))?,
        )
        .map_err(|e| SensorError::Map(READER_MAP, e.to_string()))?;
        Ok(Sensor {
            ebpf,
            counters,
            ring: Some(ring),
            reader: Some(reader),
            wake_interval: config.wake_interval,
            busy_interval: config.busy_interval,
            cred_programs,
        })
    }
}

/// One of the [`PROGRAMS`] in the loaded object.
fn program<'a>(
    ebpf: &'a mut Ebpf,
    name: &'static str,
) -> Result<&'a mut BtfTracePoint, SensorError> {
    ebpf.program_mut(name)
        .ok_or(SensorError::Map(name, "program missing from object".into()))?
        .try_into()
        .map_err(|source| SensorError::Program {
            program: name,
            source,
        })
}

impl Sensor {
    /// The ring buffer as an async stream of records. Can be taken once.
    pub fn records(&mut self) -> Result<RecordStream, SensorError> {
        let ring = self
            .ring
            .take()
            .ok_or(SensorError::Map(RING_MAP, "records() already taken".into()))?;
        let reader = self.reader.take().ok_or(SensorError::Map(
            READER_MAP,
            "records() already taken".into(),
        ))?;
        RecordStream::new(
            ring,
            ring::PollingFlag::new(reader),
            self.wake_interval,
            self.busy_interval,
        )
    }

    /// Current kernel-side counters, summed over CPUs.
    pub fn counters(&self) -> Result<Counters, SensorError> {
        Counters::read(&self.counters)
    }

    /// Verifier instruction counts of the loaded programs.
    pub fn program_stats(&self) -> Vec<ProgramStats> {
        PROGRAMS
            .iter()
            .map(|(name, _)| *name)
            .chain(self.cred_programs.iter().copied())
            .map(|name| ProgramStats {
                name,
                verified_insns: self
                    .ebpf
                    .program(name)
                    .and_then(|p| p.info().ok())
                    .and_then(|i| i.verified_instruction_count()),
            })
            .collect()
    }
}

fn map_load_error(e: aya::EbpfError) -> SensorError {
    if let aya::EbpfError::MapError(aya::maps::MapError::CreateError { io_error, .. }) = &e
        && refused(io_error)
    {
        return checks::refusal(io_error.raw_os_error());
    }
    SensorError::Load(e)
}

fn program_error(program: &'static str, e: ProgramError) -> SensorError {
    match e {
        ProgramError::LoadError {
            io_error,
            verifier_log,
        } => {
            if refused(&io_error) && verifier_log.to_string().is_empty() {
                return checks::refusal(io_error.raw_os_error());
            }
            SensorError::Verifier {
                program,
                cause: io_error,
                log_tail: tail(&verifier_log.to_string(), VERIFIER_TAIL_LINES),
            }
        }
        source => SensorError::Program { program, source },
    }
}

/// Whether `bpf(2)` failed as a refusal rather than an error in what was asked: EPERM, or
/// ENOSYS while a seccomp filter is set (some runtime profiles answer ENOSYS to calls they
/// do not list).
fn refused(e: &std::io::Error) -> bool {
    match e.raw_os_error() {
        Some(libc::EPERM) => true,
        Some(libc::ENOSYS) => checks::under_seccomp(),
        _ => false,
    }
}

/// The last `n` lines of `log`.
fn tail(log: &str, n: usize) -> String {
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

#[cfg(test)]
mod tests {
    #[test]
    fn tail_keeps_the_last_lines() {
        assert_eq!(super::tail("a\nb\nc\n", 2), "b\nc");
        assert_eq!(super::tail("a", 5), "a");
        assert_eq!(super::tail("", 5), "");
    }
}
