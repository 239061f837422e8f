//! Prometheus metrics: a snapshot of the daemon's counters, encoded by `prometheus-client`
//! (OpenMetrics text), published every `[metrics] interval_secs` and at exit to a textfile
//! for node_exporter (atomic: temp file in the same directory, then rename) and/or a
//! loopback HTTP endpoint serving `/metrics` and `/healthz`.
//!
//! Why snapshots: every counter already lives in its stage (`PipelineStats`, the kernel's
//! per-CPU map, `DetectStats`, the sinks); copying them at a tick keeps the hot path free of
//! metric updates and the HTTP task free of locks on the pipeline. The one exception is the
//! rule-evaluation histogram ([`RuleSeconds`]), which needs every observation: `Detection`
//! feeds it from the timing the alert stage already does.
//!
//! `/healthz` answers 200 while the programs are attached and the event loop turned within
//! [`STALL_AFTER`] (it turns at least every housekeeping tick, 500 ms), 503 otherwise.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::{Request, Response, StatusCode};
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::config::MetricsConfig;
use crate::event::EventKind;

/// `/healthz` turns 503 when the event loop has not turned for this long.
pub const STALL_AFTER: Duration = Duration::from_secs(5);

/// Content type of `/metrics` (what `prometheus-client` encodes).
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Rule evaluation time per evaluated document, `detector_rule_evaluation_seconds`.
/// Cloning shares the buckets (the registry of each snapshot holds a clone).
#[derive(Clone, Debug)]
pub struct RuleSeconds(Histogram);

impl Default for RuleSeconds {
    /// Buckets from 1 µs to about 0.26 s, ×4 apart: a document takes microseconds.
    fn default() -> Self {
        RuleSeconds(Histogram::new(exponential_buckets(1e-6, 4.0, 10)))
    }
}

impl RuleSeconds {
    pub fn observe(&self, spent: Duration) {
        self.0.observe(spent.as_secs_f64());
    }
}

/// One sink's counters.
#[derive(Clone, Debug, Default)]
pub struct SinkSnapshot {
    pub name: String,
    pub queued: u64,
    pub dropped: u64,
    pub failed: u64,
}

/// Everything a metrics page shows, copied from the stages at one instant.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    /// Events decoded, by kind ([`EventKind::ALL`] order).
    pub events: [u64; EventKind::ALL.len()],
    /// Events the kernel could not queue (ring full), by [`LOST_KINDS`]; `None`: counters
    /// unreadable.
    pub kernel_lost: Option<[u64; LOST_KINDS.len()]>,
    /// Kernel wake-ups of the reader (the programs' `wakeups` counter).
    pub kernel_wakeups: Option<u64>,
    /// Records that did not decode.
    pub malformed: u64,
    /// Events left in the ring when the shutdown budget ran out.
    pub shutdown_unprocessed: u64,
    /// (rule id, rule name, alerts written).
    pub alerts: Vec<(String, String, u64)>,
    pub sinks: Vec<SinkSnapshot>,
    pub processes_live: u64,
    pub processes_exited: u64,
    pub container_cache_entries: u64,
    /// Reader drains: after a wake-up, on the polling timer, on the stretched timer.
    pub reader_woken: u64,
    pub reader_polls: u64,
    pub reader_stretched_polls: u64,
    /// The ring's size, and the bytes its last and fullest drains took.
    pub ring_size_bytes: u64,
    pub ring_fill_bytes: u64,
    pub ring_fill_max_bytes: u64,
    pub rule_seconds: RuleSeconds,
    /// The sequence side: reorder window, engine, stored events.
    pub sequences: crate::alert::sequence::SequenceStats,
}

impl Snapshot {
    /// Copies the counters out of the same sources the stats document is made of.
    pub fn from_sources(src: &super::stats::Sources) -> Snapshot {
        use detector_common::counter;
        let detect = src.detection.stats();
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let mut alerts: Vec<_> = detect
            .by_rule_id
            .iter()
            .map(|(id, (name, n))| (id.clone(), name.clone(), *n))
            .collect();
        alerts.sort_unstable();
        Snapshot {
            events: src.pipeline.events,
            kernel_lost: src.kernel.map(|k| {
                [
                    counter::LOST_FORK,
                    counter::LOST_EXEC,
                    counter::LOST_EXIT,
                    counter::LOST_CRED,
                ]
                .map(|i| k.get(i))
            }),
            kernel_wakeups: src.kernel.map(|k| k.get(counter::WAKEUPS)),
            malformed: src.malformed,
            shutdown_unprocessed: src.events.shutdown_unprocessed,
            alerts,
            sinks: src
                .detection
                .sinks()
                .iter()
                .map(|s| {
                    let c = s.counters();
                    SinkSnapshot {
                        name: s.name().to_owned(),
                        queued: get(&c.queued),
                        dropped: get(&c.dropped),
                        failed: get(&c.failed),
                    }
                })
                .collect(),
            processes_live: src.table.live,
            processes_exited: src.table.exited,
            container_cache_entries: src.table.containers.entries,
            reader_woken: src.reader.woken,
            reader_polls: src.reader.polls,
            reader_stretched_polls: src.reader.stretched_polls,
            ring_size_bytes: src.ring.0,
            ring_fill_bytes: src.ring.1.last_bytes,
            ring_fill_max_bytes: src.ring.1.max_bytes,
            rule_seconds: src.detection.rule_seconds().clone(),
            sequences: detect.sequences,
        }
    }
}

/// The `kind` labels of kernel loss: one per record kind, the three credential changes
/// sharing one kernel counter (`cred`).
const LOST_KINDS: [&str; 4] = ["fork", "exec", "exit", "cred"];

type Labels = Vec<(&'static str, String)>;

/// A label value escaped as the exposition formats ask (`\\`, `\"`, `\n`).
/// `prometheus-client` 0.24 writes label values as they are, so a rule named with a quote
/// or a newline would otherwise break the page (the unit tests check the result, so a
/// version that starts escaping on its own shows up as double escaping there).
fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

fn counter(registry: &mut Registry, name: &str, help: &str, value: u64) {
    let c: Counter = Counter::default();
    c.inc_by(value);
    registry.register(name, help, c);
}

fn gauge(registry: &mut Registry, name: &str, help: &str, value: u64) {
    let g: Gauge = Gauge::default();
    g.set(i64::try_from(value).unwrap_or(i64::MAX));
    registry.register(name, help, g);
}

fn counters(
    registry: &mut Registry,
    name: &str,
    help: &str,
    rows: impl IntoIterator<Item = (Labels, u64)>,
) {
    let f = Family::<Labels, Counter>::default();
    for (labels, v) in rows {
        f.get_or_create(&labels).inc_by(v);
    }
    registry.register(name, help, f);
}

fn gauges(
    registry: &mut Registry,
    name: &str,
    help: &str,
    rows: impl IntoIterator<Item = (Labels, u64)>,
) {
    let f = Family::<Labels, Gauge>::default();
    for (labels, v) in rows {
        f.get_or_create(&labels)
            .set(i64::try_from(v).unwrap_or(i64::MAX));
    }
    registry.register(name, help, f);
}

/// The snapshot in OpenMetrics text (counters get their `_total` suffix from the encoder).
pub fn render(s: &Snapshot) -> String {
    let mut r = Registry::default();
    counters(
        &mut r,
        "detector_events",
        "Process events decoded from the kernel, by kind",
        EventKind::ALL
            .iter()
            .map(|k| (vec![("kind", k.name().to_owned())], s.events[k.index()])),
    );
    let mut lost: Vec<(Labels, u64)> = Vec::new();
    if let Some(k) = s.kernel_lost {
        lost.extend((0..LOST_KINDS.len()).map(|i| {
            let mut l = vec![("kind", LOST_KINDS[i].to_owned())];
            l.push(("reason", "ring_full".to_owned()));
            (l, k[i])
        }));
    }
    let other = |reason: &str| vec![("kind", "any".to_owned()), ("reason", reason.to_owned())];
    lost.push((other("malformed"), s.malformed));
    lost.push((other("shutdown_unprocessed"), s.shutdown_unprocessed));
    counters(
        &mut r,
        "detector_events_lost",
        "Process events lost: the kernel ring was full (by kind), a record did not decode, \
         or the shutdown budget ran out",
        lost,
    );
    counters(
        &mut r,
        "detector_alerts",
        "Alerts written, by rule",
        s.alerts.iter().map(|(id, name, n)| {
            (
                vec![("rule_id", escape(id)), ("rule_name", escape(name))],
                *n,
            )
        }),
    );
    let sink = |x: &SinkSnapshot| vec![("sink", escape(&x.name))];
    gauges(
        &mut r,
        "detector_sink_queued",
        "Alert lines waiting in a sink's retry queue",
        s.sinks.iter().map(|x| (sink(x), x.queued)),
    );
    counters(
        &mut r,
        "detector_sink_dropped",
        "Alert lines a sink dropped (retry queue full)",
        s.sinks.iter().map(|x| (sink(x), x.dropped)),
    );
    counters(
        &mut r,
        "detector_sink_failed",
        "Failed write attempts of a sink (each retry counts)",
        s.sinks.iter().map(|x| (sink(x), x.failed)),
    );
    gauges(
        &mut r,
        "detector_process_table_entries",
        "Processes in the process table, by state",
        [
            (vec![("state", "live".to_owned())], s.processes_live),
            (vec![("state", "exited".to_owned())], s.processes_exited),
        ],
    );
    gauge(
        &mut r,
        "detector_container_cache_entries",
        "Entries of the cgroup to container cache",
        s.container_cache_entries,
    );
    gauge(
        &mut r,
        "detector_ring_buffer_size_bytes",
        "Size of the kernel ring buffer",
        s.ring_size_bytes,
    );
    gauge(
        &mut r,
        "detector_ring_buffer_fill_bytes",
        "Bytes of records in the ring when the reader last drained it",
        s.ring_fill_bytes,
    );
    gauge(
        &mut r,
        "detector_ring_buffer_fill_max_bytes",
        "The fullest the reader has found the ring since start",
        s.ring_fill_max_bytes,
    );
    counters(
        &mut r,
        "detector_reader_drains",
        "Reads of the ring by the daemon, by what started them",
        [
            (vec![("trigger", "wakeup".to_owned())], s.reader_woken),
            (vec![("trigger", "poll".to_owned())], s.reader_polls),
            (
                vec![("trigger", "stretched_poll".to_owned())],
                s.reader_stretched_polls,
            ),
        ],
    );
    if let Some(w) = s.kernel_wakeups {
        counter(
            &mut r,
            "detector_kernel_wakeups",
            "Wake-ups of the reader sent by the kernel programs",
            w,
        );
    }
    sequence_metrics(&mut r, &s.sequences);
    r.register(
        "detector_rule_evaluation_seconds",
        "Time to evaluate the rules against one document",
        s.rule_seconds.0.clone(),
    );
    gauges(
        &mut r,
        "detector_build_info",
        "Always 1; the labels say which build runs",
        [(vec![("version", env!("CARGO_PKG_VERSION").to_owned())], 1)],
    );
    let mut out = String::new();
    // Writing to a String cannot fail.
    encode(&mut out, &r).expect("encoding to a String");
    out
}

/// The EQL sequence counters: the reorder window's, the engine's state and its loss.
fn sequence_metrics(r: &mut Registry, q: &crate::alert::sequence::SequenceStats) {
    counters(
        r,
        "detector_sequence_events_lost",
        "Events not fed to EQL sequences: later than the reorder window, or without @timestamp",
        [
            (vec![("reason", "late".to_owned())], q.reorder.late),
            (vec![("reason", "untimed".to_owned())], q.untimed),
        ],
    );
    counter(
        r,
        "detector_sequence_events_reordered",
        "Events that arrived out of @timestamp order within the reorder window and were put back in order",
        q.reorder.reordered,
    );
    counter(
        r,
        "detector_sequence_events_idle",
        "Events left out of EQL sequences because every term they could hit was a later term of a rule with nothing under way",
        q.idle.skipped,
    );
    counter(
        r,
        "detector_sequence_starts_crossed",
        "Sequence starts that arrived after a left-out (idle) event of their rule with a later @timestamp: a sequence may have been missed",
        q.idle.crossed,
    );
    counter(
        r,
        "detector_sequence_window_forced",
        "Events released early from the reorder window because it was full",
        q.reorder.forced,
    );
    gauge(
        r,
        "detector_sequence_window_events",
        "Events waiting in the reorder window",
        q.reorder.waiting,
    );
    gauge(
        r,
        "detector_sequence_pending",
        "Pending (partly matched) EQL sequences",
        q.engine.pending,
    );
    counter(
        r,
        "detector_sequence_evicted",
        "Pending EQL sequences evicted by the state bounds (loss)",
        q.engine.evicted,
    );
    counter(
        r,
        "detector_sequence_expired",
        "Pending EQL sequences dropped when their maxspan passed",
        q.engine.expired,
    );
    counter(
        r,
        "detector_sequence_matches",
        "EQL sequences completed",
        q.engine.matched,
    );
    counter(
        r,
        "detector_sequence_stored_event_bytes",
        "Compressed bytes of event bodies stored for pending sequences",
        q.bodies.compressed_bytes,
    );
}

/// Writes `text` to `path` atomically: a temp file in the same directory, then a rename,
/// so node_exporter never reads half a file.
pub fn write_atomically(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let name = path
        .file_name()
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidInput, "no file name"))?;
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(format!(".{}.tmp", std::process::id()));
    let tmp = path.with_file_name(tmp_name);
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// What the HTTP task reads: the latest page and the health signals.
#[derive(Debug)]
struct Shared {
    page: Mutex<String>,
    attached: AtomicBool,
    /// The event stream stopped (`daemon::canary`).
    blinded: AtomicBool,
    /// Milliseconds after `epoch` of the last loop turn.
    beat_ms: AtomicU64,
    epoch: Instant,
}

impl Shared {
    fn healthy(&self) -> bool {
        let beat = Duration::from_millis(self.beat_ms.load(Ordering::Relaxed));
        self.attached.load(Ordering::Relaxed)
            && !self.blinded.load(Ordering::Relaxed)
            && self.epoch.elapsed().saturating_sub(beat) < STALL_AFTER
    }
}

/// The daemon's side of the metrics: when to snapshot, where to publish.
#[derive(Debug)]
pub struct Metrics {
    textfile: Option<PathBuf>,
    every: Duration,
    next: Instant,
    shared: Arc<Shared>,
    /// Where the HTTP endpoint listens (the bound address: port 0 is resolved).
    pub local_addr: Option<SocketAddr>,
    /// Whether the last textfile write failed (so a failure is logged once, not each tick).
    textfile_failing: bool,
}

impl Metrics {
    /// Binds the HTTP endpoint (when configured) and spawns its task. Must be called from
    /// a tokio runtime. Nothing is published before the first [`Metrics::publish`].
    pub fn start(config: &MetricsConfig) -> std::io::Result<Metrics> {
        let shared = Arc::new(Shared {
            page: Mutex::new(String::new()),
            attached: AtomicBool::new(false),
            blinded: AtomicBool::new(false),
            beat_ms: AtomicU64::new(0),
            epoch: Instant::now(),
        });
        let mut local_addr = None;
        if let Some(addr) = config.listen {
            let std_listener = std::net::TcpListener::bind(addr)?;
            std_listener.set_nonblocking(true)?;
            local_addr = Some(std_listener.local_addr()?);
            let listener = tokio::net::TcpListener::from_std(std_listener)?;
            tokio::spawn(serve(listener, Arc::clone(&shared)));
        }
        let every = Duration::from_secs(config.interval_secs);
        Ok(Metrics {
            textfile: config.textfile.clone(),
            every,
            next: Instant::now(),
            shared,
            local_addr,
            textfile_failing: false,
        })
    }

    /// Whether any output is on (otherwise no snapshot is taken at all).
    pub fn enabled(&self) -> bool {
        self.textfile.is_some() || self.local_addr.is_some()
    }

    /// The event loop turned.
    pub fn beat(&self) {
        let ms = self.shared.epoch.elapsed().as_millis();
        self.shared
            .beat_ms
            .store(u64::try_from(ms).unwrap_or(u64::MAX), Ordering::Relaxed);
    }

    /// The programs are attached (true after start, false from shutdown on).
    pub fn set_attached(&self, attached: bool) {
        self.shared.attached.store(attached, Ordering::Relaxed);
    }

    /// The sensor is blinded (its event stream stopped) or sees again: `/healthz` is 503
    /// while blinded.
    pub fn set_blinded(&self, blinded: bool) {
        self.shared.blinded.store(blinded, Ordering::Relaxed);
    }

    /// Whether a snapshot is due; if so, the next one is one interval later.
    pub fn due(&mut self) -> bool {
        if !self.enabled() {
            return false;
        }
        let now = Instant::now();
        if now < self.next {
            return false;
        }
        self.next = now + self.every;
        true
    }

    /// Publishes a snapshot: the page `/metrics` serves, and the textfile.
    pub fn publish(&mut self, snapshot: &Snapshot) {
        let page = render(snapshot);
        if let Some(path) = &self.textfile {
            match write_atomically(path, &page) {
                Ok(()) => self.textfile_failing = false,
                Err(e) => {
                    if !self.textfile_failing {
                        tracing::error!(path = %path.display(), error = %e, "cannot write the metrics textfile");
                    }
                    self.textfile_failing = true;
                }
            }
        }
        *self.shared.page.lock().unwrap_or_else(|p| p.into_inner()) = page;
    }
}

/// Accepts connections until the runtime ends; one task per connection (HTTP/1).
async fn serve(listener: tokio::net::TcpListener, shared: Arc<Shared>) {
    loop {
        let stream = match listener.accept().await {
            Ok((s, _)) => s,
            Err(e) => {
                tracing::warn!(error = %e, "metrics endpoint: accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let shared = Arc::clone(&shared);
        tokio::spawn(async move {
            let io = hyper_util::rt::TokioIo::new(stream);
            let svc = hyper::service::service_fn(move |req| {
                let shared = Arc::clone(&shared);
                async move { Ok::<_, std::convert::Infallible>(respond(&req, &shared)) }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .header_read_timeout(Duration::from_secs(5))
                .timer(hyper_util::rt::TokioTimer::new())
                .serve_connection(io, svc);
            // A client that goes away is not worth a log line.
            let _ = tokio::time::timeout(Duration::from_secs(30), conn).await;
        });
    }
}

fn respond<B>(req: &Request<B>, shared: &Shared) -> Response<Full<Bytes>> {
    let reply = |status: StatusCode, ctype: &str, body: String| {
        Response::builder()
            .status(status)
            .header(hyper::header::CONTENT_TYPE, ctype)
            .body(Full::new(Bytes::from(body)))
            .expect("a valid response")
    };
    let text = "text/plain; charset=utf-8";
    if req.method() != hyper::Method::GET && req.method() != hyper::Method::HEAD {
        return reply(StatusCode::METHOD_NOT_ALLOWED, text, "GET only\n".into());
    }
    match req.uri().path() {
        "/metrics" => {
            let page = shared
                .page
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone();
            if page.is_empty() {
                reply(
                    StatusCode::SERVICE_UNAVAILABLE,
                    text,
                    "no snapshot yet\n".into(),
                )
            } else {
                reply(StatusCode::OK, CONTENT_TYPE, page)
            }
        }
        "/healthz" => {
            if shared.healthy() {
                reply(StatusCode::OK, text, "ok\n".into())
            } else if shared.blinded.load(Ordering::Relaxed) {
                let why = "unhealthy: sensor blinded (no canary exec seen)\n";
                reply(StatusCode::SERVICE_UNAVAILABLE, text, why.into())
            } else {
                reply(StatusCode::SERVICE_UNAVAILABLE, text, "unhealthy\n".into())
            }
        }
        _ => reply(
            StatusCode::NOT_FOUND,
            text,
            "not found: try /metrics or /healthz\n".into(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Snapshot {
        let rule_seconds = RuleSeconds::default();
        rule_seconds.observe(Duration::from_micros(3));
        Snapshot {
            events: [5, 7, 4, 2, 1, 3],
            kernel_lost: Some([1, 2, 0, 6]),
            kernel_wakeups: Some(9),
            malformed: 3,
            alerts: vec![(
                "id-1".into(),
                "Evil \"quoted\" \\ rule\nwith a newline".into(),
                2,
            )],
            sinks: vec![SinkSnapshot {
                name: "file".into(),
                queued: 1,
                dropped: 6,
                failed: 8,
            }],
            processes_live: 10,
            container_cache_entries: 2,
            reader_woken: 11,
            ring_size_bytes: 65536,
            ring_fill_bytes: 4096,
            ring_fill_max_bytes: 32768,
            rule_seconds,
            ..Snapshot::default()
        }
    }

    #[test]
    fn names_labels_and_values_follow_the_conventions() {
        let page = render(&sample());
        for line in [
            "# TYPE detector_events counter",
            "detector_events_total{kind=\"fork\"} 5",
            "detector_events_total{kind=\"exec\"} 7",
            "detector_events_total{kind=\"exit\"} 4",
            "detector_events_total{kind=\"uid_change\"} 2",
            "detector_events_total{kind=\"gid_change\"} 1",
            "detector_events_total{kind=\"session_id_change\"} 3",
            "detector_events_lost_total{kind=\"cred\",reason=\"ring_full\"} 6",
            "detector_events_lost_total{kind=\"exec\",reason=\"ring_full\"} 2",
            "detector_events_lost_total{kind=\"any\",reason=\"malformed\"} 3",
            "detector_events_lost_total{kind=\"any\",reason=\"shutdown_unprocessed\"} 0",
            "detector_sink_queued{sink=\"file\"} 1",
            "detector_sink_dropped_total{sink=\"file\"} 6",
            "detector_sink_failed_total{sink=\"file\"} 8",
            "detector_process_table_entries{state=\"live\"} 10",
            "detector_container_cache_entries 2",
            "detector_ring_buffer_size_bytes 65536",
            "detector_ring_buffer_fill_bytes 4096",
            "detector_ring_buffer_fill_max_bytes 32768",
            "detector_reader_drains_total{trigger=\"wakeup\"} 11",
            "detector_kernel_wakeups_total 9",
            "# TYPE detector_rule_evaluation_seconds histogram",
            "detector_rule_evaluation_seconds_count 1",
            "detector_rule_evaluation_seconds_bucket{le=\"0.000004\"} 1",
            "detector_rule_evaluation_seconds_bucket{le=\"0.000001\"} 0",
            &format!(
                "detector_build_info{{version=\"{}\"}} 1",
                env!("CARGO_PKG_VERSION")
            ),
            "# EOF",
        ] {
            assert!(
                page.lines().any(|l| l == line),
                "missing line {line:?} in:\n{page}"
            );
        }
    }

    #[test]
    fn sequence_counters_are_on_the_page() {
        let mut s = sample();
        s.sequences.reorder.late = 3;
        s.sequences.untimed = 1;
        s.sequences.engine.evicted = 5;
        s.sequences.engine.pending = 7;
        s.sequences.engine.matched = 2;
        let page = render(&s);
        for line in [
            "detector_sequence_events_lost_total{reason=\"late\"} 3",
            "detector_sequence_events_lost_total{reason=\"untimed\"} 1",
            "detector_sequence_evicted_total 5",
            "detector_sequence_pending 7",
            "detector_sequence_matches_total 2",
            "detector_sequence_window_events 0",
        ] {
            assert!(
                page.lines().any(|l| l == line),
                "missing {line:?} in:\n{page}"
            );
        }
    }

    #[test]
    fn hostile_rule_names_are_escaped_on_one_line() {
        let page = render(&sample());
        let want = "detector_alerts_total{rule_id=\"id-1\",\
                    rule_name=\"Evil \\\"quoted\\\" \\\\ rule\\nwith a newline\"} 2";
        assert!(page.lines().any(|l| l == want), "{want:?} not in:\n{page}");
        // No sample line is broken by the newline in the name.
        for l in page.lines() {
            assert!(
                l.starts_with('#') || l.starts_with("detector_"),
                "stray line {l:?}"
            );
        }
    }

    #[test]
    fn unreadable_kernel_counters_leave_their_series_out() {
        let page = render(&Snapshot::default());
        assert!(!page.contains("reason=\"ring_full\""));
        assert!(!page.contains("detector_kernel_wakeups"));
        assert!(page.contains("detector_events_lost_total{kind=\"any\",reason=\"malformed\"} 0"));
    }

    #[test]
    fn the_textfile_is_replaced_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("detector.prom");
        write_atomically(&path, "a 1\n").unwrap();
        write_atomically(&path, "b 2\n").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "b 2\n");
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["detector.prom"], "no temp file left behind");
        assert!(write_atomically(&dir.path().join("missing/x.prom"), "").is_err());
    }

    #[tokio::test]
    async fn health_needs_attachment_and_a_recent_turn() {
        let m = Metrics::start(&MetricsConfig::default()).unwrap();
        assert!(!m.enabled());
        assert!(!m.shared.healthy(), "not attached yet");
        m.set_attached(true);
        m.beat();
        assert!(m.shared.healthy());
        m.shared.beat_ms.store(0, Ordering::Relaxed);
        // A beat at the epoch is "recent" only within STALL_AFTER of it.
        assert_eq!(m.shared.healthy(), m.shared.epoch.elapsed() < STALL_AFTER);
        m.beat();
        m.set_blinded(true);
        assert!(!m.shared.healthy(), "blinded");
        m.set_blinded(false);
        assert!(m.shared.healthy(), "recovered");
        m.set_attached(false);
        assert!(!m.shared.healthy(), "detached");
    }
}
