//! `detector run` on the SHIPPED config against REAL container engines, each started
//! privately by its test (`common/engines.rs`): dockerd (`docker run`, `docker exec`, an sshd
//! accepting a key-authenticated connection, a process three cgroup levels below a
//! container), containerd through `ctr run` in the `default` and `k8s.io` namespaces, podman,
//! LXC (`lxc-start` and `lxc-attach`), systemd-nspawn, and host processes in look-alike
//! cgroups that must give no alert. Every test asserts on the real alert stream: the seed
//! rule's alert with the `container.id` and metadata the engine itself reports.
//!
//! Root tests, gated by [`detector::testsupport::require`] (under `CI=true` a missing engine
//! fails). The host is shared, so assertions filter alerts by the ids of the containers (or
//! the pids of the processes) the test made. Absence is proven after a barrier
//! ([`settle`]), never after a sleep. Failures collect every mismatch of a scenario before
//! failing, so one run tells everything that is wrong.

#[path = "common/mod.rs"]
mod common;
#[path = "common/containers.rs"]
mod containers;
#[path = "common/daemon.rs"]
mod daemon;
#[path = "common/engines.rs"]
mod engines;
#[path = "common/wait.rs"]
mod wait;

#[path = "engines/ctr.rs"]
mod ctr;
#[path = "engines/dockerd.rs"]
mod dockerd;
#[path = "engines/lookalike.rs"]
mod lookalike;
#[path = "engines/lxc.rs"]
mod lxc;
#[path = "engines/nested.rs"]
mod nested;
#[path = "engines/nspawn.rs"]
mod nspawn;
#[path = "engines/podman.rs"]
mod podman;
#[path = "engines/teardown.rs"]
mod teardown;

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use containers::{RuncContainer, hex_id};
use serde_json::Value;

/// Bound on an expected alert (a hang guard: alerts arrive in milliseconds here).
const ALERT_BOUND: Duration = Duration::from_secs(15);

/// A unique container name for this test process: `dte-<pid>-<what>-<n>`.
fn unique(what: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "dte-{}-{what}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// A barrier on the daemon's event stream: `ssh -V` in a fresh runc container (at a docker
/// cgroup path) and wait for its alert. The daemon evaluates events in the kernel's order,
/// so once that alert is written every earlier event has been evaluated too.
fn settle(d: &daemon::Daemon) {
    let id = hex_id();
    let mut c = RuncContainer::new(&["/usr/bin/ssh", "-V"], Some(&format!("/docker/{id}")))
        .expect("barrier container");
    let out = c.run().expect("barrier container run");
    assert!(out.status.success(), "barrier ssh -V: {out:?}");
    drop(c);
    let got = d.wait_alerts(&id, |a| !a.is_empty(), ALERT_BOUND);
    assert!(
        !got.is_empty(),
        "barrier: no alert for ssh -V in runc at /docker/{id} within {ALERT_BOUND:?}"
    );
}

/// `detector run` on the shipped config, told where the private engines of the test keep
/// their state ([`engines::state_roots_toml`]), with alert folding off: these tests assert
/// one alert per action (an sshd's fork, `lxc-attach` after `lxc-start` in the same
/// container), which the shipped 60 s window would fold into the first. The guard keeps the
/// config file alive.
fn start_daemon(roots: &engines::StateRoots) -> (Option<tempfile::TempDir>, daemon::Daemon) {
    let (dir, config) = daemon::config_file(|text| {
        let text = engines::state_roots_toml(&text, roots).unwrap_or(text);
        let window = "\nsuppression_window_secs = 60\n";
        assert!(text.contains(window), "the shipped window moved");
        text.replace(window, "\nsuppression_window_secs = 0\n")
    });
    let d = daemon::Daemon::start_with(daemon::Opts {
        config: Some(config),
        ..daemon::Opts::default()
    });
    (Some(dir), d)
}

/// Alerts (any rule) in `docs` whose process is `pid`.
fn alerts_of_pid(docs: &[Value], pid: u32) -> Vec<&Value> {
    docs.iter()
        .filter(|d| d["event"]["kind"] == "alert" && d["process"]["pid"] == pid)
        .collect()
}

/// Waits for an alert of `container_id` about a process named `name` and returns it, or
/// `None` (the caller records the failure with [`ssh_alerts_seen`] for context).
fn wait_alert(d: &daemon::Daemon, container_id: &str, name: &str) -> Option<Value> {
    d.wait_alerts(
        container_id,
        |a| a.iter().any(|a| a["process"]["name"] == name),
        ALERT_BOUND,
    )
    .into_iter()
    .find(|a| a["process"]["name"] == name)
}

/// Every alert about ssh, sshd or autossh the daemon has written so far, one line each
/// (container, runtime, pid, cgroup): what a failure shows when the expected one is missing.
fn ssh_alerts_seen(d: &daemon::Daemon) -> String {
    let docs = d.docs();
    let lines: Vec<String> = docs
        .iter()
        .filter(|a| {
            a["event"]["kind"] == "alert"
                && ["ssh", "sshd", "autossh"]
                    .iter()
                    .any(|n| a["process"]["name"] == *n)
        })
        .map(brief)
        .collect();
    format!(
        "{} ssh alert(s) in the stream:\n{}",
        lines.len(),
        lines.join("\n")
    )
}

/// One alert in one line, for failure messages.
fn brief(a: &Value) -> String {
    format!(
        "  {} {} pid={} ppid={} container.id={} runtime={} name={} image={}:{} cgroup={}",
        a["event"]["action"],
        a["process"]["name"],
        a["process"]["pid"],
        a["process"]["parent"]["pid"],
        a["container"]["id"],
        a["container"]["runtime"],
        a["container"]["name"],
        a["container"]["image"]["name"],
        a["container"]["image"]["tag"],
        a["detector"]["cgroup"]["path"],
    )
}

/// Mismatches found in one scenario; the test fails once, listing them all.
#[derive(Default)]
struct Checks(Vec<String>);

impl Checks {
    fn check(&mut self, ok: bool, what: impl FnOnce() -> String) {
        if !ok {
            self.0.push(what());
        }
    }

    /// `a[path…] == want`.
    fn field(&mut self, scenario: &str, a: &Value, path: &[&str], want: &Value) {
        let got = path.iter().fold(a, |v, k| &v[*k]);
        self.check(got == want, || {
            format!(
                "{scenario}: {} = {got}, want {want}\n{}",
                path.join("."),
                brief(a)
            )
        });
    }

    /// The seed rule's alert for a process start in the container, with what the engine
    /// reports about it (`None`: not asserted — that engine has no such fact).
    fn seed_alert(&mut self, scenario: &str, a: &Value, want: &Container) {
        self.field(scenario, a, &["event", "kind"], &"alert".into());
        self.field(scenario, a, &["rule", "id"], &daemon::SSH_RULE_ID.into());
        self.field(
            scenario,
            a,
            &["rule", "name"],
            &daemon::SSH_RULE_NAME.into(),
        );
        self.field(
            scenario,
            a,
            &["event", "type"],
            &serde_json::json!(["start"]),
        );
        self.field(scenario, a, &["container", "id"], &want.id.as_str().into());
        self.field(scenario, a, &["container", "runtime"], &want.runtime.into());
        if let Some(n) = &want.name {
            self.field(scenario, a, &["container", "name"], &n.as_str().into());
        }
        if let Some(n) = want.image_name {
            self.field(scenario, a, &["container", "image", "name"], &n.into());
        }
        if let Some(p) = want.privileged {
            self.field(
                scenario,
                a,
                &["container", "security_context", "privileged"],
                &p.into(),
            );
        }
        if let Some(t) = want.image_tag {
            // ECS `container.image.tag` is an array of keywords: one tag, either spelling.
            let got = &a["container"]["image"]["tag"];
            self.check(*got == t || *got == serde_json::json!([t]), || {
                format!(
                    "{scenario}: container.image.tag = {got}, want {t:?} or [{t:?}]\n{}",
                    brief(a)
                )
            });
        }
    }

    /// A required alert: checked when present, recorded as missing (with what the stream
    /// holds) when not.
    fn expect(
        &mut self,
        d: &daemon::Daemon,
        scenario: &str,
        got: Option<&Value>,
        want: &Container,
    ) {
        match got {
            Some(a) => self.seed_alert(scenario, a, want),
            None => self.0.push(format!(
                "{scenario}: no alert with container.id {} within {ALERT_BOUND:?}; {}",
                want.id,
                ssh_alerts_seen(d)
            )),
        }
    }

    fn finish(self) {
        assert!(
            self.0.is_empty(),
            "{} mismatch(es):\n{}",
            self.0.len(),
            self.0.join("\n")
        );
    }
}

/// What an engine says about a container, as the alert should carry it.
struct Container {
    id: String,
    runtime: &'static str,
    name: Option<String>,
    image_name: Option<&'static str>,
    image_tag: Option<&'static str>,
    /// `container.security_context.privileged`, where the runtime's state records it
    /// (docker: `hostconfig.json`; these containers are not privileged).
    privileged: Option<bool>,
}

/// `ssh -V` printed OpenSSH's banner (the program really ran in the container).
fn assert_ssh_ran(what: &str, out: &std::process::Output) {
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("OpenSSH_"), "{what}: ssh -V printed {text:?}");
}

/// Whether `s` is a full container id (64 lower-case hex digits).
fn is_hex64(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}
