//! A blinded sensor, end to end with the real daemon: the event stream stops (the test-only
//! fault switch `DETECTOR_FAULT_DROP_RECORDS_FILE` makes the reader drop every record while
//! its file exists) while the daemon's canaries keep starting; within seconds both health
//! paths (`/healthz` and `detector health`) say unhealthy and the alert stream holds a
//! `detector.health` document; once the file is gone, both say healthy again. Root test,
//! gated by [`detector::testsupport::require`]; every wait is bounded.
//!
//! What "cannot pass by accident" means here: the daemon is seen healthy first (so an
//! always-unhealthy daemon fails), the fault is proven to have dropped records and the
//! verdict to have been counted (final stats), and recovery is checked through the same
//! two paths.

#[path = "common/daemon.rs"]
mod daemon;
#[path = "common/monitor.rs"]
mod monitor;
#[path = "common/wait.rs"]
mod wait;

use std::time::Duration;

use detector::daemon::FAULT_DROP_RECORDS_ENV;
use detector::testsupport::{Need, require};
use monitor::{free_port, get, health, metrics_listen};
use serde_json::Value;

/// Bound on each change of health: the canary deadline (10 s at the least) plus a canary
/// interval, a housekeeping tick and a loaded machine's slack.
const VERDICT_BOUND: Duration = Duration::from_secs(25);

fn healthz(port: u16) -> (u16, String) {
    get(port, "/healthz").expect("GET /healthz")
}

/// The children of `pid`, over all its threads (from `/proc/PID/task/*/children`).
fn children(pid: u32) -> Vec<String> {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("children")).ok())
        .flat_map(|s| s.split_whitespace().map(str::to_owned).collect::<Vec<_>>())
        .collect()
}

/// The `detector.health` documents with this `event.action` in `docs`.
fn health_docs<'a>(docs: &'a [Value], action: &str) -> Vec<&'a Value> {
    docs.iter()
        .filter(|d| d["event"]["dataset"] == "detector.health" && d["event"]["action"] == action)
        .collect()
}

#[test]
fn a_stopped_event_stream_is_noticed_on_both_health_paths_and_in_the_alerts() {
    if !require(
        "blinded::a_stopped_event_stream_is_noticed_on_both_health_paths_and_in_the_alerts",
        &[Need::Root, Need::Path("/sys/kernel/btf/vmlinux")],
    ) {
        return;
    }
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let hb = dir.path().join("heartbeat");
    let hb_arg = hb.to_str().unwrap().to_owned();
    let fault = dir.path().join("drop-records");
    let probe = ["--heartbeat", hb_arg.as_str(), "--max-age", "5"];

    let (_cfg_dir, config) = daemon::config_file(|t| {
        let edited = metrics_listen(&t, port)
            .replace(
                "# heartbeat_path = \"/run/detector/heartbeat\"",
                &format!("heartbeat_path = {hb_arg:?}"),
            )
            .replace("canary_interval_secs = 5\n", "canary_interval_secs = 1\n");
        for (line, what) in [
            (format!("listen = \"127.0.0.1:{port}\""), "[metrics] listen"),
            (
                format!("heartbeat_path = {hb_arg:?}"),
                "[health] heartbeat_path",
            ),
            ("canary_interval_secs = 1\n".to_owned(), "[health] canary"),
        ] {
            assert!(edited.contains(&line), "{what} line moved");
        }
        edited
    });
    let d = daemon::Daemon::start_with(daemon::Opts {
        config: Some(config),
        env: vec![(
            FAULT_DROP_RECORDS_ENV.into(),
            fault.to_str().unwrap().into(),
        )],
        ..Default::default()
    });

    // Healthy first, on both paths, for longer than a canary deadline: canaries are seen.
    wait::until(VERDICT_BOUND, "detector health to pass", || {
        health(&probe).0.then_some(())
    });
    std::thread::sleep(Duration::from_secs(12));
    let (status, body) = healthz(port);
    assert_eq!(status, 200, "a sensor that sees events: {body}");
    let (ok, msg) = health(&probe);
    assert!(ok, "a sensor that sees events: {msg}");
    assert!(
        health_docs(&d.docs(), "sensor-blinded").is_empty(),
        "blinded while the stream flowed"
    );

    // The stream stops: unhealthy on both paths, and a document in the alert stream.
    std::fs::write(&fault, b"").unwrap();
    let body = wait::until(VERDICT_BOUND, "/healthz to turn 503", || {
        let (status, body) = healthz(port);
        (status == 503).then_some(body)
    });
    assert!(body.contains("sensor blinded"), "{body}");
    let msg = wait::until(VERDICT_BOUND, "detector health to fail", || {
        let (ok, msg) = health(&probe);
        (!ok).then_some(msg)
    });
    assert!(msg.contains("sensor blinded"), "{msg}");
    let docs = d.docs();
    let blinded = health_docs(&docs, "sensor-blinded");
    assert_eq!(
        blinded.len(),
        1,
        "one document per blind spell: {blinded:?}"
    );
    assert_eq!(blinded[0]["event"]["kind"], "alert");
    assert!(
        blinded[0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("blinded")),
        "{}",
        blinded[0]
    );
    assert!(
        d.stderr_lines()
            .iter()
            .any(|l| l.contains("sensor blinded")),
        "no log line"
    );

    // Events come back: healthy again on both paths, and said so in the alert stream.
    std::fs::remove_file(&fault).unwrap();
    wait::until(VERDICT_BOUND, "/healthz to turn 200 again", || {
        (healthz(port).0 == 200).then_some(())
    });
    wait::until(VERDICT_BOUND, "detector health to pass again", || {
        health(&probe).0.then_some(())
    });
    assert_eq!(health_docs(&d.docs(), "sensor-recovered").len(), 1);

    // Canaries are reaped: never more than the one or two between two housekeeping ticks.
    let kids = children(d.pid());
    assert!(kids.len() <= 2, "canaries pile up: {kids:?}");

    let stopped = d.stop();
    assert!(stopped.status.success(), "{:?}", stopped.status);
    let s = &stopped.final_stats;
    assert_eq!(s["daemon"]["blinded"], 1, "{s}");
    assert_eq!(s["daemon"]["recovered"], 1, "{s}");
    assert_eq!(s["daemon"]["canary_spawn_failed"], 0, "{s}");
    let (spawned, seen) = (
        s["canary"]["spawned"].as_u64().unwrap_or(0),
        s["canary"]["seen"].as_u64().unwrap_or(0),
    );
    assert!(
        seen >= 2 && spawned > seen,
        "canaries seen before and after, unseen while blinded: {s}"
    );
    assert!(
        s["fault_dropped"].as_u64().is_some_and(|n| n > 0),
        "the fault switch dropped nothing: {s}"
    );
}
