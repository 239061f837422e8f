//! An isolated exec on a quiet host raises its alert promptly, also right after a storm.
//!
//! Why: the sensor batches its wake-ups (the kernel wakes the reader at most once per wake
//! interval and not at all while the reader polls; under a sustained stream the reader
//! polls on a stretched period, see `sensor::pace`). None of that may leave a lone record
//! in the ring until some later event happens to come: here one exec, after a pause long
//! enough for the reader to go idle, and one right after a 4-loop exec storm (the period
//! stretched), must each give its alert within [`PROMPT`] — 500 times the 1 ms wake
//! interval, so the bound holds on a loaded machine while a record stranded until the next
//! poll of an idle reader (never) or the next host event would still fail it on a quiet one.

#[path = "common/daemon.rs"]
mod daemon;
#[path = "common/wait.rs"]
mod wait;

use std::os::unix::fs::PermissionsExt;
use std::process::Command;
use std::time::{Duration, Instant};

use daemon::{Daemon, Opts, config_file};
use detector::testsupport::{Need, require};
use serde_json::Value;

/// From the exec to its alert in the alert file.
const PROMPT: Duration = Duration::from_millis(500);

/// The executable's private name (at most 15 bytes: the kernel `comm`).
const NAME: &str = "idle-alert-prb";

/// Execs of each storm loop.
const STORM_EXECS: u32 = 500;

fn rule() -> String {
    format!(
        r#"[rule]
name = "Test: idle alert probe"
description = "Matches the private probe executable of tests/idle_alert.rs."
risk_score = 21
rule_id = "00000000-0000-4000-8000-0000001d1e01"
severity = "low"
type = "eql"
language = "eql"
query = '''
process where event.type == "start" and process.name == "{NAME}"
'''
"#
    )
}

/// The alerts of the probe so far.
fn probe_alerts(d: &Daemon) -> Vec<Value> {
    d.docs()
        .into_iter()
        .filter(|a| a["process"]["name"] == NAME)
        .collect()
}

/// Execs the probe once and returns how long its alert (the `n`th) took to appear.
fn exec_and_time(d: &Daemon, probe: &std::path::Path, n: usize) -> Duration {
    let t0 = Instant::now();
    let st = wait::status_timeout(&mut Command::new(probe), wait::TOOL, "the probe");
    assert!(st.success());
    let deadline = t0 + wait::TOOL;
    loop {
        if probe_alerts(d).len() >= n {
            return t0.elapsed();
        }
        assert!(
            Instant::now() < deadline,
            "alert {n} of the probe never came ({:?})",
            wait::TOOL
        );
        std::thread::sleep(Duration::from_millis(2));
    }
}

#[test]
fn a_lone_exec_alerts_promptly_when_idle_and_after_a_storm() {
    if !require(
        "a_lone_exec_alerts_promptly_when_idle_and_after_a_storm",
        &[Need::Root, Need::Tool("sh")],
    ) {
        return;
    }
    let rules = tempfile::tempdir().unwrap();
    std::fs::write(rules.path().join("idle_probe.toml"), rule()).unwrap();
    let rules_dir = rules.path().display().to_string();
    let (_cfg_dir, config) = config_file(|t| {
        // Only this rule; suppression off so every exec is an alert.
        let start = t.find("\npaths = [").expect("rules.paths");
        let end = start + 1 + t[start + 1..].find('\n').unwrap();
        let t = format!("{}\npaths = [{rules_dir:?}]{}", &t[..start], &t[end..]);
        let shipped = "\nsuppression_window_secs = 60\n";
        assert!(t.contains(shipped), "the shipped window moved");
        t.replace(shipped, "\nsuppression_window_secs = 0\n")
    });
    let bin_dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(bin_dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let probe = bin_dir.path().join(NAME);
    std::fs::copy("/bin/true", &probe).unwrap();
    std::fs::File::open(&probe).unwrap().sync_all().unwrap();
    let storm_bin = bin_dir.path().join("idle-storm");
    std::fs::copy("/bin/true", &storm_bin).unwrap();
    std::fs::File::open(&storm_bin).unwrap().sync_all().unwrap();

    let d = Daemon::start_with(Opts {
        config: Some(config),
        ..Opts::default()
    });
    let mut alerts = 0;
    // Idle: pauses well past the reader's hand-over to waiting for wake-ups alone.
    for pause_ms in [300u64, 50, 1_000] {
        std::thread::sleep(Duration::from_millis(pause_ms));
        alerts += 1;
        let took = exec_and_time(&d, &probe, alerts);
        println!("after {pause_ms} ms idle: alert in {took:?}");
        assert!(
            took < PROMPT,
            "after {pause_ms} ms idle: alert took {took:?}"
        );
    }
    // Right after a storm: the reader is polling on its stretched period.
    let storm = storm_bin.display();
    let st = wait::status_timeout(
        Command::new("sh").arg("-c").arg(format!(
            "for w in 1 2 3 4; do (i=0; while [ $i -lt {STORM_EXECS} ]; do {storm}; \
             i=$((i+1)); done) & done; wait"
        )),
        wait::TOOL,
        "the storm",
    );
    assert!(st.success());
    alerts += 1;
    let took = exec_and_time(&d, &probe, alerts);
    println!("right after the storm: alert in {took:?}");
    assert!(took < PROMPT, "right after the storm: alert took {took:?}");

    let stopped = d.stop();
    let probe_alerts = stopped
        .docs
        .iter()
        .filter(|a| a["process"]["name"] == NAME)
        .count();
    assert_eq!(probe_alerts, alerts, "one alert per probe exec");
}
