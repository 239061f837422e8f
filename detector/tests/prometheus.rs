//! `[metrics]` read by the real thing: Debian's `prometheus` scrapes the daemon's loopback
//! `/metrics`, and `prometheus-node-exporter` serves the daemon's textfile, scraped by the
//! same Prometheus. The test asks Prometheus' HTTP API (loopback) and finds the exec counter
//! moving during an exec storm (through both paths), the loss counter rising when a tiny
//! ring overflows (reader stalled by SIGSTOP, as in the fault tests), and the seed rule's
//! alert counter after `ssh -V` in a runc container. Root test, behind the prerequisite gate;
//! every wait is bounded and both servers are killed by pid on drop. A second, unprivileged
//! test checks the README's example alerting rules with `promtool check rules`.

#[path = "common/containers.rs"]
mod containers;
#[path = "common/daemon.rs"]
mod daemon;
#[path = "common/monitor.rs"]
mod monitor;
#[path = "common/wait.rs"]
mod wait;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use containers::{RuncContainer, hex_id};
use detector::testsupport::{Need, require};
use monitor::{free_port, get, metrics_listen, metrics_textfile};
use serde_json::Value;

/// Bound on Prometheus (or node_exporter) answering after its start.
const START_BOUND: Duration = Duration::from_secs(60);
/// Bound on a value showing in Prometheus: a daemon snapshot (1 s) plus a scrape (1 s) plus
/// the query's own lag, with a wide margin for a loaded machine.
const SEEN_BOUND: Duration = Duration::from_secs(60);

/// A server this test started; killed and reaped on drop (also when the test fails).
struct Server {
    child: Child,
    name: &'static str,
    log: std::path::PathBuf,
}

impl Server {
    fn start(name: &'static str, cmd: &mut Command, log: std::path::PathBuf) -> Server {
        let out = std::fs::File::create(&log).unwrap();
        let child = cmd
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap_or_else(|e| panic!("spawning {name}: {e}"));
        Server { child, name, log }
    }

    /// The server's output so far, for failure messages.
    fn log(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let tail: Vec<&str> = text.lines().rev().take(30).collect();
        format!(
            "{} log (last lines):\n{}",
            self.name,
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        )
    }

    /// Waits (bounded) until `GET path` on `port` answers 200.
    fn wait_ready(&mut self, port: u16, path: &str) {
        let ok = wait::try_until(START_BOUND, Duration::from_millis(200), || {
            (get(port, path).ok()?.0 == 200).then_some(())
        });
        if ok.is_none() {
            panic!(
                "{} did not answer {path} on 127.0.0.1:{port} within {START_BOUND:?} (exit: {:?})\n{}",
                self.name,
                self.child.try_wait(),
                self.log()
            );
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        wait::kill_and_reap(&mut self.child);
    }
}

/// Percent-encodes a query-string value (everything but unreserved characters).
fn encode(q: &str) -> String {
    q.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Prometheus on `port`, queried over its HTTP API.
struct Prom(u16);

impl Prom {
    /// The value of the instant query `q`, which must give at most one series (`None` when
    /// it gives none yet). A failed query or an error status fails the test.
    fn value(&self, q: &str) -> Option<f64> {
        let (status, body) = get(self.0, &format!("/api/v1/query?query={}", encode(q)))
            .unwrap_or_else(|e| panic!("querying Prometheus for {q}: {e}"));
        assert_eq!(status, 200, "query {q}: {body}");
        let v: Value = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"));
        assert_eq!(v["status"], "success", "query {q}: {body}");
        let result = v["data"]["result"].as_array().expect("a vector result");
        assert!(result.len() <= 1, "query {q} gave several series: {body}");
        result
            .first()
            .map(|s| s["value"][1].as_str().unwrap().parse().unwrap())
    }

    /// Waits (bounded) until `q` is at `min` or more; returns the value.
    fn wait_for(&self, q: &str, min: f64, why: &str) -> f64 {
        let mut last = None;
        wait::try_until(SEEN_BOUND, Duration::from_millis(250), || {
            last = self.value(q);
            last.filter(|v| *v >= min)
        })
        .unwrap_or_else(|| {
            let up = self.value("up").map(|v| v.to_string());
            panic!(
                "{why}: Prometheus' {q} did not reach {min} within {SEEN_BOUND:?} (last: {last:?}; up: {up:?}; targets: {})",
                get(self.0, "/api/v1/targets").map(|r| r.1).unwrap_or_default()
            )
        })
    }
}

fn run_true() {
    let st = wait::status_timeout(
        Command::new("/bin/true").stdin(Stdio::null()),
        Duration::from_secs(10),
        "/bin/true",
    );
    assert!(st.success());
}

/// The Prometheus configuration: the daemon's endpoint (job `detector`) and node_exporter
/// (job `node`), both on loopback, scraped every second.
fn prometheus_yml(dir: &Path, detector_port: u16, node_port: u16) -> std::path::PathBuf {
    let path = dir.join("prometheus.yml");
    std::fs::write(
        &path,
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
             scrape_configs:\n\
             \x20 - job_name: detector\n    static_configs:\n      - targets: ['127.0.0.1:{detector_port}']\n\
             \x20 - job_name: node\n    static_configs:\n      - targets: ['127.0.0.1:{node_port}']\n"
        ),
    )
    .unwrap();
    path
}

#[test]
fn prometheus_and_node_exporter_see_the_daemon() {
    if !require(
        "prometheus::prometheus_and_node_exporter_see_the_daemon",
        &[
            Need::Root,
            Need::Tool("prometheus"),
            Need::Tool("prometheus-node-exporter"),
            Need::Tool("runc"),
        ],
    ) {
        return;
    }
    let work = tempfile::Builder::new()
        .prefix("detector-prometheus-")
        .tempdir()
        .unwrap();
    let textfile_dir = work.path().join("textfile_collector");
    std::fs::create_dir(&textfile_dir).unwrap();
    let textfile = textfile_dir.join("detector.prom");
    let (metrics_port, node_port, prom_port) = (free_port(), free_port(), free_port());

    // The shipped config with both outputs on, 1 s snapshots and the smallest ring (so a
    // stalled reader overflows it quickly).
    let (_cfg_dir, config) = daemon::config_file(|text| {
        let edited = metrics_textfile(&metrics_listen(&text, metrics_port), &textfile).replace(
            "ring_buffer_bytes = 4194304\n",
            "ring_buffer_bytes = 65536\n",
        );
        assert!(
            edited.contains("ring_buffer_bytes = 65536\n"),
            "the shipped config moved: ring_buffer_bytes"
        );
        edited
    });
    let d = daemon::Daemon::start_with(daemon::Opts {
        config: Some(config),
        ..Default::default()
    });

    let mut node = Server::start(
        "prometheus-node-exporter",
        Command::new("prometheus-node-exporter")
            .arg(format!("--web.listen-address=127.0.0.1:{node_port}"))
            .arg("--collector.disable-defaults")
            .arg("--collector.textfile")
            .arg(format!(
                "--collector.textfile.directory={}",
                textfile_dir.display()
            )),
        work.path().join("node_exporter.log"),
    );
    node.wait_ready(node_port, "/metrics");

    let tsdb = work.path().join("tsdb");
    let mut prom = Server::start(
        "prometheus",
        Command::new("prometheus")
            .arg(format!(
                "--config.file={}",
                prometheus_yml(work.path(), metrics_port, node_port).display()
            ))
            .arg(format!("--storage.tsdb.path={}", tsdb.display()))
            .arg(format!("--web.listen-address=127.0.0.1:{prom_port}"))
            .current_dir(work.path()),
        work.path().join("prometheus.log"),
    );
    prom.wait_ready(prom_port, "/-/ready");
    let api = Prom(prom_port);

    // Both targets up: the daemon's endpoint and node_exporter.
    api.wait_for("up{job=\"detector\"}", 1.0, "the daemon's endpoint scraped");
    api.wait_for("up{job=\"node\"}", 1.0, "node_exporter scraped");
    // node_exporter read the textfile without error (it exports a gauge per file it failed
    // to parse, and the file's mtime when it parsed it).
    api.wait_for(
        "node_textfile_mtime_seconds{job=\"node\"}",
        1.0,
        "node_exporter parsed the daemon's textfile",
    );
    assert_eq!(
        api.value("node_textfile_scrape_error{job=\"node\"}"),
        Some(0.0),
        "node_exporter failed on the textfile:\n{}\n{}",
        node.log(),
        std::fs::read_to_string(&textfile).unwrap_or_default()
    );

    // The exec counter moves during a storm, through both paths.
    let exec = |job: &str| format!("sum(detector_events_total{{kind=\"exec\",job=\"{job}\"}})");
    let before_http = api.wait_for(&exec("detector"), 0.0, "exec counter via /metrics");
    let before_file = api.wait_for(&exec("node"), 0.0, "exec counter via the textfile");
    const STORM: usize = 200;
    for _ in 0..STORM {
        run_true();
    }
    let after_http = api.wait_for(
        &exec("detector"),
        before_http + STORM as f64,
        "exec storm seen via /metrics",
    );
    let after_file = api.wait_for(
        &exec("node"),
        before_file + STORM as f64,
        "exec storm seen via the textfile",
    );
    eprintln!(
        "exec: /metrics {before_http} -> {after_http}, textfile {before_file} -> {after_file}"
    );

    // Loss: stall the reader, overflow the 64 KiB ring, resume; the loss counter rises.
    let lost = "sum(detector_events_lost_total{job=\"detector\",reason=\"ring_full\"})";
    let lost_before = api.wait_for(lost, 0.0, "loss counter present");
    {
        let _paused = d.pause();
        // 64 KiB holds a few hundred exec records at most; 2,000 execs overflow it.
        for _ in 0..2000 {
            run_true();
        }
    }
    let lost_after = api.wait_for(
        lost,
        lost_before + 1.0,
        "ring overflow counted as loss after the stall",
    );
    eprintln!("lost (ring_full): {lost_before} -> {lost_after}");

    // The seed rule's alert counter after `ssh -V` in a runc container.
    let id = hex_id();
    let mut c =
        RuncContainer::new(&["/usr/bin/ssh", "-V"], Some(&format!("/docker/{id}"))).unwrap();
    let ran = c.run().unwrap();
    assert!(ran.status.success(), "runc ssh -V: {ran:?}");
    drop(c);
    let alerts = api.wait_for(
        &format!(
            "sum(detector_alerts_total{{job=\"detector\",rule_id=\"{}\",rule_name=\"{}\"}})",
            daemon::SSH_RULE_ID,
            daemon::SSH_RULE_NAME
        ),
        1.0,
        "the seed rule's alert counter after ssh -V in a container",
    );
    eprintln!("seed rule alerts: {alerts}");

    drop(prom);
    drop(node);
    let stopped = d.stop();
    assert!(stopped.status.success(), "{:?}", stopped.stderr);
}

/// The example alerting rules in the README's Monitoring section are valid Prometheus rules
/// (`promtool check rules`), so an operator can paste them as they are.
#[test]
fn readme_alerting_rules_pass_promtool() {
    if !require(
        "prometheus::readme_alerting_rules_pass_promtool",
        &[Need::Tool("promtool")],
    ) {
        return;
    }
    let readme = std::fs::read_to_string(daemon::repo().join("README.md")).unwrap();
    let monitoring = readme
        .split_once("\n## Monitoring\n")
        .expect("README has a Monitoring section")
        .1;
    let rules = monitoring
        .split_once("```yaml\n")
        .and_then(|(_, rest)| rest.split_once("```"))
        .expect("the Monitoring section has a yaml block")
        .0;
    assert!(rules.contains("alert: "), "not the rules block: {rules}");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("detector.rules.yml");
    std::fs::write(&path, rules).unwrap();
    let out = wait::output_timeout(
        Command::new("promtool")
            .arg("check")
            .arg("rules")
            .arg(&path),
        wait::TOOL,
        "promtool check rules",
    );
    assert!(
        out.status.success(),
        "promtool check rules on the README's example:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("SUCCESS: 3 rules found"), "{said}");
}
