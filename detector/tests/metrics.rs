//! `[metrics]` end to end: `detector run` on the shipped config with the loopback endpoint
//! and the textfile on, `/metrics` and `/healthz` fetched over plain TCP, the event counters
//! moving with execs, the seed rule's alert counter after `ssh -V` in a runc container, and
//! the textfile rewritten at exit. Root test, behind the prerequisite gate.

#[path = "common/containers.rs"]
mod containers;
#[path = "common/daemon.rs"]
mod daemon;
#[path = "common/monitor.rs"]
mod monitor;
#[path = "common/wait.rs"]
mod wait;

use std::time::Duration;

use containers::{RuncContainer, hex_id};
use detector::testsupport::{Need, require};
use monitor::{free_port, get, metrics_listen, metrics_textfile};

/// Bound on a counter showing what happened (snapshots come every second here).
const SEEN_BOUND: Duration = Duration::from_secs(30);

/// The value of the sample line `series` (name and labels exactly) in an exposition page.
fn sample(page: &str, series: &str) -> Option<f64> {
    page.lines().find_map(|l| {
        l.strip_prefix(series)
            .and_then(|rest| rest.strip_prefix(' '))
            .and_then(|v| v.trim().parse().ok())
    })
}

/// Waits (bounded) until `/metrics` shows `series` at `min` or more; returns the value.
fn wait_for(port: u16, series: &str, min: f64) -> f64 {
    let mut last = String::new();
    wait::try_until(SEEN_BOUND, Duration::from_millis(200), || {
        let (status, page) = get(port, "/metrics").ok()?;
        let v = (status == 200).then(|| sample(&page, series)).flatten();
        last = page;
        v.filter(|v| *v >= min)
    })
    .unwrap_or_else(|| {
        panic!("{series} did not reach {min} within {SEEN_BOUND:?}; last page:\n{last}")
    })
}

#[test]
fn metrics_endpoint_and_textfile_follow_the_daemon() {
    if !require(
        "metrics::metrics_endpoint_and_textfile_follow_the_daemon",
        &[Need::Root, Need::Tool("runc")],
    ) {
        return;
    }
    let port = free_port();
    let out = tempfile::tempdir().unwrap();
    let textfile = out.path().join("detector.prom");
    let (_cfg_dir, config) =
        daemon::config_file(|text| metrics_textfile(&metrics_listen(&text, port), &textfile));
    let d = daemon::Daemon::start_with(daemon::Opts {
        config: Some(config.clone()),
        ..Default::default()
    });

    let (status, body) = get(port, "/healthz").expect("GET /healthz");
    assert_eq!(status, 200, "healthz of a running daemon: {body}");
    let (status, _) = get(port, "/nope").expect("GET /nope");
    assert_eq!(status, 404);

    let exec = "detector_events_total{kind=\"exec\"}";
    let before = wait_for(port, exec, 0.0);
    for _ in 0..20 {
        let st = wait::status_timeout(
            std::process::Command::new("/bin/true").stdin(std::process::Stdio::null()),
            Duration::from_secs(10),
            "/bin/true",
        );
        assert!(st.success());
    }
    wait_for(port, exec, before + 20.0);
    wait_for(port, "detector_events_total{kind=\"fork\"}", 20.0);

    let id = hex_id();
    let mut c =
        RuncContainer::new(&["/usr/bin/ssh", "-V"], Some(&format!("/docker/{id}"))).unwrap();
    let ran = c.run().unwrap();
    assert!(ran.status.success(), "runc ssh -V: {ran:?}");
    drop(c);
    let alert = format!(
        "detector_alerts_total{{rule_id=\"{}\",rule_name=\"{}\"}}",
        daemon::SSH_RULE_ID,
        daemon::SSH_RULE_NAME
    );
    wait_for(port, &alert, 1.0);

    let (_, page) = get(port, "/metrics").unwrap();
    for series in [
        "detector_events_lost_total{kind=\"exec\",reason=\"ring_full\"}",
        "detector_sink_dropped_total{sink=\"stdout\"}",
        "detector_sink_queued{sink=\"stdout\"}",
        "detector_process_table_entries{state=\"live\"}",
        "detector_container_cache_entries",
        "detector_rule_evaluation_seconds_count",
        &format!(
            "detector_build_info{{version=\"{}\"}}",
            env!("CARGO_PKG_VERSION")
        ),
    ] {
        assert!(sample(&page, series).is_some(), "no {series} in:\n{page}");
    }
    assert!(sample(&page, "detector_rule_evaluation_seconds_count").unwrap() >= 1.0);
    assert!(sample(&page, "detector_process_table_entries{state=\"live\"}").unwrap() >= 1.0);
    // The ring's size as configured, and a fill the drains measured: the twenty execs above
    // passed through it, so its fullest drain held at least one record, and never more
    // than the ring.
    let size = sample(&page, "detector_ring_buffer_size_bytes").expect("ring size");
    assert_eq!(
        Some(size),
        config_ring_bytes(&config),
        "ring size vs the config's ring_buffer_bytes"
    );
    let max = sample(&page, "detector_ring_buffer_fill_max_bytes").expect("ring fill max");
    assert!(max > 0.0 && max <= size, "fill max {max} of {size}");
    assert!(
        sample(&page, "detector_ring_buffer_fill_bytes").is_some(),
        "{page}"
    );

    let file = std::fs::read_to_string(&textfile).expect("the textfile is written at ticks");
    assert!(sample(&file, exec).is_some(), "{file}");

    let stopped = d.stop();
    assert!(stopped.status.success(), "{:?}", stopped.stderr);
    // The last snapshot, written at exit, has what the final stats line counted.
    let file = std::fs::read_to_string(&textfile).expect("the textfile after exit");
    assert_eq!(
        sample(&file, exec),
        stopped.final_stats["events"]["exec"].as_f64(),
        "textfile at exit vs final stats:\n{file}"
    );
    let names: Vec<_> = std::fs::read_dir(out.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["detector.prom"], "temp files left behind");
}

/// `[sensor] ring_buffer_bytes` of the config file the daemon runs with.
fn config_ring_bytes(config: &std::path::Path) -> Option<f64> {
    let text = std::fs::read_to_string(config).ok()?;
    let table: toml::Table = text.parse().ok()?;
    table
        .get("sensor")?
        .get("ring_buffer_bytes")?
        .as_integer()
        .map(|n| n as f64)
}
