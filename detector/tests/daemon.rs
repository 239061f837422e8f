//! `detector run` end to end: the daemon started by the test on the SHIPPED config with a
//! temporary alert file, real runc and podman containers running ssh, sshd and autossh, and
//! the alerts it writes checked field by field. Root tests: each starts with the
//! prerequisite gate ([`detector::testsupport::require`]; under `CI=true` a missing
//! prerequisite fails the test). The host is shared with other tests, so every assertion filters alerts by the ids
//! of the containers this test created.
//!
//! - `daemon/alerts.rs`: exact alerts per container (runc docker/kubepods paths, podman),
//!   sshd forking for a real connection, host binaries and ssh-keygen giving none, ECS 9.4.
//! - `daemon/policy.rs`: exceptions and suppression from the config.
//! - `daemon/lifecycle.rs`: SIGHUP reloads, SIGTERM, start-up scan, start-up failures.

#[path = "common/containers.rs"]
mod containers;
#[path = "common/daemon.rs"]
mod daemon;
#[path = "common/ecs_validate.rs"]
mod ecs_validate;
#[path = "common/wait.rs"]
mod wait;

#[path = "daemon/alerts.rs"]
mod alerts;
#[path = "daemon/lifecycle.rs"]
mod lifecycle;
#[path = "daemon/policy.rs"]
mod policy;

use std::process::Output;

use containers::{RuncContainer, hex_id};
use detector::testsupport::{Need, require};
use serde_json::Value;

/// A docker-style cgroup path for a fresh container id: (path, id).
fn docker_path() -> (String, String) {
    let id = hex_id();
    (format!("/docker/{id}"), id)
}

/// A kubepods-style (cgroupfs driver) path for a fresh container id: (path, id).
fn kubepods_path() -> (String, String) {
    let id = hex_id();
    let pod = &hex_id()[..32];
    let pod = format!(
        "{}-{}-{}-{}-{}",
        &pod[..8],
        &pod[8..12],
        &pod[12..16],
        &pod[16..20],
        &pod[20..]
    );
    (format!("/kubepods/besteffort/pod{pod}/{id}"), id)
}

/// Runs `args` to completion in a runc container at `cgroup`; the guard is dropped (the
/// container deleted) before returning.
fn runc_run(args: &[&str], cgroup: &str) -> Output {
    let mut c = RuncContainer::new(args, Some(cgroup)).unwrap();
    let out = c.run().unwrap();
    assert!(
        out.status.success(),
        "runc {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// A barrier on the daemon's event stream: runs `argv` (which the running rules alert on)
/// in a fresh runc container and waits until its alert is in the file. The daemon evaluates
/// events in the kernel's order, so once this alert is written every event that happened
/// before this call has been evaluated too — what a sleep used to stand in for, before
/// asserting that something did *not* alert, or alerted only so often.
fn settle(d: &daemon::Daemon, argv: &[&str]) {
    let (path, id) = docker_path();
    runc_run(argv, &path);
    let got = d.wait_alerts(&id, |a| !a.is_empty(), SETTLE_BOUND);
    assert!(
        !got.is_empty(),
        "barrier: no alert for {argv:?} within {SETTLE_BOUND:?} (is a rule for it loaded?)"
    );
}

/// Bound on an expected alert (a hang guard: alerts arrive in milliseconds here).
const SETTLE_BOUND: std::time::Duration = std::time::Duration::from_secs(30);

/// Fails with every ECS 9.4 violation of every document.
fn assert_ecs(docs: &[Value]) {
    assert!(!docs.is_empty(), "no documents to validate");
    for d in docs {
        let errors = ecs_validate::validate_ecs(d);
        assert!(errors.is_empty(), "not ECS 9.4: {errors:#?}\n{d}");
    }
}

/// Asserts the rule and threat fields of an alert of the shipped SSH rule.
fn assert_ssh_rule(a: &Value) {
    assert_eq!(a["event"]["kind"], "alert", "{a}");
    assert_eq!(a["event"]["severity"], 73, "{a}");
    assert_eq!(a["rule"]["id"], daemon::SSH_RULE_ID, "{a}");
    assert_eq!(a["rule"]["name"], daemon::SSH_RULE_NAME, "{a}");
    let ids = |v: &Value| -> Vec<String> {
        match v {
            Value::Array(a) => a.iter().map(|s| s.as_str().unwrap().to_owned()).collect(),
            Value::String(s) => vec![s.clone()],
            _ => vec![],
        }
    };
    let tactics = ids(&a["threat"]["tactic"]["id"]);
    assert!(
        tactics.contains(&"TA0008".into()) && tactics.contains(&"TA0003".into()),
        "{tactics:?}"
    );
    let techniques = ids(&a["threat"]["technique"]["id"]);
    assert!(
        techniques.contains(&"T1021".into()) && techniques.contains(&"T1133".into()),
        "{techniques:?}"
    );
    assert_eq!(a["event"]["type"], serde_json::json!(["start"]), "{a}");
}

/// `process.args` as strings.
fn args_of(a: &Value) -> Vec<String> {
    a["process"]["args"]
        .as_array()
        .map(|v| {
            v.iter()
                .map(|s| s.as_str().unwrap_or("").to_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// A compact view of alerts for failure messages.
fn brief(alerts: &[&Value]) -> String {
    alerts
        .iter()
        .map(|a| {
            format!(
                "{} pid={} ppid={} name={} exe={} args={:?} rule={}\n",
                a["event"]["action"],
                a["process"]["pid"],
                a["process"]["parent"]["pid"],
                a["process"]["name"],
                a["process"]["executable"],
                args_of(a),
                a["rule"]["name"]
            )
        })
        .collect()
}
