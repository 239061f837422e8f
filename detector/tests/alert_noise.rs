//! Alert noise (issue 13): the shipped defaults turn one user action into a few alerts with
//! the folded count visible, while another container, executable or rule still alerts at
//! once — checked with `detector run` on the shipped config and real runc containers.
//!
//! `autossh -V` is a shell wrapper: its ten subshells are ten fork events of a process named
//! `autossh`, and the seed rule matches each. A second daemon with suppression off runs at
//! the same time and sees the same kernel events: its alerts are the raw matches the
//! shipped one must account for (first alerts + folded counts = raw matches). The raw
//! matches replayed through `detector replay` with the shipped config give the same alerts
//! as the live run (the policy is the same code on the same @timestamps).

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use detector::testsupport::{Need, require};
use serde_json::Value;

#[path = "common/containers.rs"]
mod containers;
#[path = "common/daemon.rs"]
mod daemon;
#[path = "common/ecs_validate.rs"]
mod ecs_validate;
#[path = "common/wait.rs"]
mod wait;

use containers::{RuncContainer, hex_id};
use daemon::{Daemon, Opts, config_file, shipped_config};

/// Bound on an expected alert (alerts arrive in milliseconds here; a hang guard).
const ALERT_BOUND: Duration = Duration::from_secs(30);
/// "At once": an alert that is not folded is written within this (measured: tens of ms).
const AT_ONCE: Duration = Duration::from_secs(5);
/// What the shipped config may turn one `autossh -V` into.
const MAX_ALERTS_PER_ACTION: usize = 3;

/// Runs `args` in a runc container in cgroup `/docker/<id>`; returns once it exited.
fn run_in(id: &str, args: &[&str]) {
    let mut c = RuncContainer::new(args, Some(&format!("/docker/{id}"))).unwrap();
    let out = c.run().unwrap();
    assert!(
        out.status.success(),
        "runc {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn count(a: &Value) -> Option<u64> {
    a["detector"]["alert"]["suppressed_count"].as_u64()
}

fn brief(alerts: &[&Value]) -> String {
    alerts
        .iter()
        .map(|a| {
            format!(
                "  {} {} pid={} exe={} count={:?}\n",
                a["@timestamp"].as_str().unwrap_or("?"),
                a["event"]["action"].as_str().unwrap_or("?"),
                a["process"]["pid"],
                a["process"]["executable"].as_str().unwrap_or("?"),
                count(a)
            )
        })
        .collect()
}

#[test]
fn one_autossh_is_a_few_alerts_and_other_keys_alert_at_once() {
    if !require(
        "one_autossh_is_a_few_alerts_and_other_keys_alert_at_once",
        &[Need::Root, Need::Tool("runc")],
    ) {
        return;
    }
    let shipped: toml::Table = std::fs::read_to_string(shipped_config())
        .unwrap()
        .parse()
        .unwrap();
    let window = shipped["alerts"]["suppression_window_secs"]
        .as_integer()
        .unwrap();
    assert!(
        window >= 10,
        "the shipped window ({window} s) folds a burst"
    );
    // Suppression off: every match is an alert.
    let (_raw_dir, raw_config) = config_file(|t| {
        let from = format!("\nsuppression_window_secs = {window}\n");
        assert!(t.contains(&from));
        t.replace(&from, "\nsuppression_window_secs = 0\n")
    });
    let raw = Daemon::start_with(Opts {
        config: Some(raw_config),
        ..Opts::default()
    });
    let live = Daemon::start();

    // One user action in container A.
    let a = hex_id();
    let t0 = Instant::now();
    run_in(&a, &["/usr/bin/autossh", "-V"]);
    let first = live.wait_alerts(&a, |v| !v.is_empty(), ALERT_BOUND);
    println!("first alert of A after {:?}", t0.elapsed());
    assert!(count(&first[0]).is_none(), "{}", first[0]);

    // Right after, another container: an alert at once, not folded into A's window.
    let b = hex_id();
    let t1 = Instant::now();
    run_in(&b, &["/usr/bin/ssh", "-V"]);
    let got_b = live.wait_alerts(&b, |v| !v.is_empty(), ALERT_BOUND);
    let b_after = t1.elapsed();
    assert!(
        b_after < AT_ONCE,
        "another container's alert took {b_after:?}"
    );
    assert!(count(&got_b[0]).is_none(), "{}", got_b[0]);

    // The same container (same cgroup, same container.id), another executable: at once.
    let t2 = Instant::now();
    run_in(
        &a,
        &["/bin/sh", "-c", "/usr/sbin/sshd -V 2>/dev/null; true"],
    );
    let sshd = live.wait_alerts(
        &a,
        |v| {
            v.iter()
                .any(|x| x["process"]["executable"] == "/usr/sbin/sshd")
        },
        ALERT_BOUND,
    );
    let sshd_after = t2.elapsed();
    assert!(
        sshd_after < AT_ONCE,
        "another executable's alert took {sshd_after:?}"
    );
    assert!(
        t0.elapsed() < Duration::from_secs(window as u64),
        "the checks above must fall inside A's window"
    );
    let sshd_alerts: Vec<&Value> = sshd
        .iter()
        .filter(|x| x["process"]["executable"] == "/usr/sbin/sshd")
        .collect();
    assert_eq!(sshd_alerts.len(), 1, "{}", brief(&sshd_alerts));

    // The raw daemon has seen everything the live one has (same kernel events): wait for
    // its sshd alert, the last event, then stop both. Stopping closes the open windows:
    // their counts are written then (the follow-up alerts).
    raw.wait_alerts(
        &a,
        |v| {
            v.iter()
                .any(|x| x["process"]["executable"] == "/usr/sbin/sshd")
        },
        ALERT_BOUND,
    );
    let live = live.stop();
    let raw = raw.stop();
    assert!(live.status.success() && raw.status.success());

    let is_autossh = |x: &&Value| x["process"]["name"] == "autossh";
    let raw_a: Vec<&Value> = raw.alerts_for(&a).into_iter().filter(is_autossh).collect();
    let live_a: Vec<&Value> = live.alerts_for(&a).into_iter().filter(is_autossh).collect();
    println!(
        "autossh -V: {} raw matches -> {} alerts\nraw:\n{}live:\n{}",
        raw_a.len(),
        live_a.len(),
        brief(&raw_a),
        brief(&live_a)
    );
    assert!(
        raw_a.len() > MAX_ALERTS_PER_ACTION,
        "autossh -V should be noisy without suppression: {}",
        brief(&raw_a)
    );
    assert!(
        !live_a.is_empty() && live_a.len() <= MAX_ALERTS_PER_ACTION,
        "{} alerts for one autossh -V:\n{}",
        live_a.len(),
        brief(&live_a)
    );
    let first_alerts = live_a.iter().filter(|x| count(x).is_none()).count() as u64;
    let folded: u64 = live_a.iter().filter_map(|x| count(x)).sum();
    assert!(
        folded > 0,
        "the folded count is visible: {}",
        brief(&live_a)
    );
    assert_eq!(
        first_alerts + folded,
        raw_a.len() as u64,
        "first alerts + folded counts = raw matches\nlive:\n{}",
        brief(&live_a)
    );
    // Each other key: exactly one alert, no count.
    assert_eq!(live.alerts_for(&b).len(), 1);
    assert_eq!(raw.alerts_for(&b).len(), 1);
    let docs: Vec<Value> = live_a.iter().map(|v| (*v).clone()).collect();
    for d in &docs {
        let errors = ecs_validate::validate_ecs(d);
        assert!(errors.is_empty(), "not ECS: {errors:?}\n{d}");
    }

    // Replay: the raw matches of A through the shipped policy give the live alerts.
    let input = tempfile::NamedTempFile::new().unwrap();
    let lines: String = raw_a
        .iter()
        .map(|v| format!("{}\n", serde_json::to_string(v).unwrap()))
        .collect();
    std::fs::write(input.path(), lines).unwrap();
    let out = wait::output_timeout(
        Command::new(env!("CARGO_BIN_EXE_detector"))
            .args(["replay", "--config"])
            .arg(shipped_config())
            .arg("--rules")
            .arg(daemon::repo().join("config/rules"))
            .arg("--")
            .arg(input.path())
            .stdin(Stdio::null()),
        wait::TOOL,
        "detector replay",
    );
    assert!(
        out.status.success(),
        "replay: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let replayed = daemon::parse_ndjson(&out.stdout);
    let key = |x: &Value| {
        (
            x["process"]["pid"].clone(),
            x["event"]["action"].clone(),
            count(x),
        )
    };
    let mut want: Vec<_> = live_a.iter().map(|x| key(x)).collect();
    let mut got: Vec<_> = replayed
        .iter()
        .filter(|x| x["event"]["kind"] == "alert")
        .map(key)
        .collect();
    want.sort_by_key(|k| format!("{k:?}"));
    got.sort_by_key(|k| format!("{k:?}"));
    assert_eq!(got, want, "replay and run disagree");
}
