//! `detector trace`: every process event as one JSON object a line on stdout: the ECS
//! document `detector run` evaluates (default), or with `--raw` the sensor's record.
//!
//! Raw field names are stable (see [`TraceLine`]). Byte strings (comm, paths, argv, cgroup
//! names) are rendered as lossy UTF-8 so every line is valid JSON; when a value is not valid
//! UTF-8 its exact bytes are added as lowercase hex in a sibling `<field>_hex` field.
//! On stderr: one `{"ready":…}` line once the programs are attached, and one
//! `{"counters":…}` line with the loss and truncation counters on exit.
//!
//! It reads the ring as `detector run` does (the shared reader stage in
//! `daemon::reader`): events handled in chunks between looks at SIGTERM/SIGINT, and at the
//! stop what the kernel still holds is written within the daemon's drain budget (what the
//! budget leaves is counted as `shutdown_unprocessed`).

use std::io::Write;
use std::time::Duration;

use crate::daemon::{Control, HostModel, Reader, SHUTDOWN_BUDGET, Wake};
use crate::event::{EventKind, ProcessEvent};
use crate::sensor::{Sensor, SensorConfig};
use anyhow::Context;
use serde::Serialize;

/// Options of `detector trace`.
#[derive(clap::Args, Debug)]
pub struct TraceArgs {
    /// Stop by itself after this many seconds (default: run until SIGINT/SIGTERM).
    #[arg(long, value_name = "SECS")]
    pub duration: Option<f64>,
    /// Ring buffer size in bytes (power of two, multiple of the page size).
    #[arg(long, value_name = "BYTES", default_value_t = detector_common::DEFAULT_RING_BYTES)]
    pub ring_bytes: u32,
    /// The longest an event waits in the ring before it is read, in microseconds (the
    /// kernel wakes the reader at most once per interval); 0: every event wakes it.
    #[arg(long, value_name = "MICROS", default_value_t = detector_common::DEFAULT_WAKE_INTERVAL_NS / 1000)]
    pub wake_interval_us: u64,
    /// Print the sensor's raw records (kernel view: ids, bytes as hex where not UTF-8)
    /// instead of ECS documents.
    #[arg(long)]
    pub raw: bool,
    /// Only processes inside a container (documents with a `container.id`).
    #[arg(long, conflicts_with = "raw")]
    pub container_only: bool,
}

/// A byte string as JSON: lossy text plus exact hex when it is not UTF-8.
fn text(b: &[u8]) -> (String, Option<String>) {
    match std::str::from_utf8(b) {
        Ok(s) => (s.to_owned(), None),
        Err(_) => (
            String::from_utf8_lossy(b).into_owned(),
            Some(b.iter().map(|x| format!("{x:02x}")).collect()),
        ),
    }
}

/// One output line. Optional `*_hex` fields appear only for non-UTF-8 values.
#[derive(Serialize)]
struct TraceLine {
    kind: &'static str,
    boot_ns: u64,
    pid: u32,
    tgid: u32,
    ppid: u32,
    actor_pid: u32,
    uid: u32,
    gid: u32,
    euid: u32,
    egid: u32,
    comm: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    comm_hex: Option<String>,
    filename: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    filename_hex: Option<String>,
    exe_path: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    exe_path_hex: Option<String>,
    exe_path_partial: bool,
    argv: Vec<String>,
    /// Present when any argument is not UTF-8: every argument's exact bytes as hex.
    #[serde(skip_serializing_if = "Option::is_none")]
    argv_hex: Option<Vec<String>>,
    argv_truncated: bool,
    cgroup_id: u64,
    cgroup_path: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    cgroup_path_hex: Option<String>,
    cgroup_path_partial: bool,
    pid_ns_ino: u32,
    mnt_ns_ino: u32,
    ns_pid: u32,
    tty: Option<Tty>,
    sid: u32,
    pgid: u32,
    start_boot_ns: u64,
    exit_code: Option<i32>,
}

#[derive(Serialize)]
struct Tty {
    major: u32,
    minor: u32,
}

impl From<&ProcessEvent> for TraceLine {
    fn from(e: &ProcessEvent) -> Self {
        let (comm, comm_hex) = text(&e.comm);
        let (filename, filename_hex) = text(&e.filename);
        let (exe_path, exe_path_hex) = text(&e.exe_path);
        let (cgroup_path, cgroup_path_hex) = text(&e.cgroup_path);
        let args: Vec<(String, Option<String>)> = e.argv.iter().map(|a| text(a)).collect();
        let any_hex = args.iter().any(|(_, h)| h.is_some());
        let argv_hex = any_hex.then(|| {
            e.argv
                .iter()
                .map(|a| a.iter().map(|x| format!("{x:02x}")).collect())
                .collect()
        });
        TraceLine {
            kind: e.kind.map_or("unknown", EventKind::name),
            boot_ns: e.boot_ns,
            pid: e.pid,
            tgid: e.tgid,
            ppid: e.ppid,
            actor_pid: e.actor_pid,
            uid: e.uid,
            gid: e.gid,
            euid: e.euid,
            egid: e.egid,
            comm,
            comm_hex,
            filename,
            filename_hex,
            exe_path,
            exe_path_hex,
            exe_path_partial: e.exe_path_partial,
            argv: args.into_iter().map(|(s, _)| s).collect(),
            argv_hex,
            argv_truncated: e.argv_truncated,
            cgroup_id: e.cgroup_id,
            cgroup_path,
            cgroup_path_hex,
            cgroup_path_partial: e.cgroup_path_partial,
            pid_ns_ino: e.pid_ns_ino,
            mnt_ns_ino: e.mnt_ns_ino,
            ns_pid: e.ns_pid,
            tty: e.tty.map(|(major, minor)| Tty { major, minor }),
            sid: e.sid,
            pgid: e.pgid,
            start_boot_ns: e.start_boot_ns,
            exit_code: e.exit_code,
        }
    }
}

/// Runs `detector trace` until interrupted or `--duration` elapses.
pub fn run(args: TraceArgs) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    rt.block_on(trace(args))
}

/// The sensor's settings from the command line (busy polling as the daemon's default).
fn sensor_config(args: &TraceArgs) -> SensorConfig {
    SensorConfig {
        ring_bytes: args.ring_bytes,
        wake_interval: Duration::from_micros(args.wake_interval_us),
        busy_interval: Duration::from_micros(
            args.wake_interval_us
                .saturating_mul(crate::sensor::BUSY_INTERVAL_FACTOR),
        ),
        capture_argv: true,
        ..SensorConfig::default()
    }
}

async fn trace(args: TraceArgs) -> anyhow::Result<()> {
    // Signals first (SIGHUP keeps its default action): one that arrives while a chunk is
    // being written is then still seen by the next wait.
    let mut control = Control::install(false).context("installing the signal handlers")?;
    let mut sensor = Sensor::start(&sensor_config(&args))?;
    let mut reader = Reader::new(sensor.records()?);
    let programs: Vec<serde_json::Value> = sensor
        .program_stats()
        .iter()
        .map(|p| serde_json::json!({"name": p.name, "verified_insns": p.verified_insns}))
        .collect();

    let stdout = std::io::stdout();
    let mut sink = Output {
        out: std::io::BufWriter::with_capacity(1 << 16, stdout.lock()),
        received: [0; EventKind::ALL.len()],
        write_failed: None,
        ecs: (!args.raw).then(|| EcsMode::new(args.container_only)),
    };
    // After seeding: a process that exists now has its parent and name in later documents.
    eprintln!(
        "{}",
        serde_json::json!({ "ready": true, "programs": programs })
    );

    control.stop_after(
        args.duration
            .filter(|s| s.is_finite() && *s >= 0.0)
            .map(Duration::from_secs_f64),
    );
    loop {
        match reader
            .wait(&mut control, std::future::pending::<()>())
            .await
        {
            Wake::Events | Wake::Hangup | Wake::Timer(()) => {}
            Wake::Stop(_) => break,
            Wake::Failed(e) => return Err(e.into()),
        }
        reader.handle_chunk(|ev| sink.handle(ev));
        // Flushed once the queue is empty: one write per batch read from the ring.
        if sink.write_failed.is_some() || (reader.is_idle() && sink.out.flush().is_err()) {
            break;
        }
    }
    // Whatever the kernel queued before we stopped is still delivered, within the budget
    // the daemon has.
    let unprocessed = reader.drain(SHUTDOWN_BUDGET / 2, |ev| sink.handle(ev));
    let _ = sink.out.flush();
    let Output {
        received,
        write_failed,
        ..
    } = sink;
    let counters = sensor.counters()?;
    let kernel: serde_json::Map<String, serde_json::Value> = counters
        .named()
        .map(|(k, v)| (k.to_owned(), v.into()))
        .collect();
    eprintln!(
        "{}",
        serde_json::json!({
            "counters": kernel,
            "lost": counters.lost(),
            "received": EventKind::ALL
                .iter()
                .map(|k| (k.name().to_owned(), received[k.index()].into()))
                .collect::<serde_json::Map<String, serde_json::Value>>(),
            "malformed": reader.malformed(),
            "shutdown_unprocessed": unprocessed,
            "reader": reader.stats(),
        })
    );
    if let Some(e) = write_failed
        && e.kind() != std::io::ErrorKind::BrokenPipe
    {
        return Err(e).context("writing events to stdout");
    }
    Ok(())
}

/// Writes decoded events as JSON lines, counting what it saw.
struct Output<W: Write> {
    out: std::io::BufWriter<W>,
    /// Records decoded, by kind ([`EventKind::ALL`] order).
    received: [u64; EventKind::ALL.len()],
    /// The first stdout error; later events are still counted but not written.
    write_failed: Option<std::io::Error>,
    /// ECS documents (the default) rather than raw records.
    ecs: Option<EcsMode>,
}

/// The process model and ECS stage, as `detector run` uses them.
struct EcsMode {
    table: crate::process::ProcessTable,
    docs: crate::ecs::DocBuilder,
    container_only: bool,
}

impl EcsMode {
    fn new(container_only: bool) -> Self {
        let mut model = HostModel::new(crate::process::TableConfig::default());
        if let Err(e) = model.seed() {
            tracing::warn!(error = %e, "cannot seed the process table from /proc");
        }
        EcsMode {
            table: model.table,
            docs: model.docs,
            container_only,
        }
    }

    /// The document of one event, unless filtered out.
    fn document(&mut self, ev: &ProcessEvent) -> Option<crate::ecs::EcsDocument> {
        let snap = self.table.apply(ev)?;
        if self.container_only && snap.container.is_none() {
            return None;
        }
        Some(self.docs.build(&snap, Some(ev)))
    }
}

impl<W: Write> Output<W> {
    fn handle(&mut self, ev: &ProcessEvent) {
        let i = ev.kind.map_or(EventKind::Exit.index(), EventKind::index);
        self.received[i] += 1;
        if self.write_failed.is_none() {
            let res = match &mut self.ecs {
                None => serde_json::to_writer(&mut self.out, &TraceLine::from(ev)),
                Some(m) => match m.document(ev) {
                    Some(doc) => serde_json::to_writer(&mut self.out, &doc),
                    None => return,
                },
            }
            .map_err(std::io::Error::from)
            .and_then(|()| self.out.write_all(b"\n"));
            if let Err(e) = res {
                self.write_failed = Some(e);
            }
        }
    }
}
