//! Deployment files validated by the tools that consume them: the systemd unit
//! (`systemd-analyze verify` / `security`), the Kubernetes manifests
//! (`kubernetes-validate --strict`, from PyPI: `.ci/run` and `cargo xtask setup` install it;
//! tests never touch the network), the ConfigMap's embedded config (our own loader) and the
//! logrotate policy (a real rotation in a temporary directory).
//!
//! Each check has a negative control that proves the tool would notice a broken file.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use detector::config::Config;
use detector::testsupport::{Need, require};

#[path = "common/seccomp.rs"]
mod seccomp;
#[path = "common/wait.rs"]
mod wait;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn read(rel: &str) -> String {
    fs::read_to_string(repo().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// Bound on an offline validator (`systemd-analyze`, `kubernetes-validate`): a hang guard.
const TOOL_BOUND: std::time::Duration = std::time::Duration::from_secs(180);

fn run(cmd: &mut Command) -> Output {
    let what = format!("{cmd:?}");
    wait::try_output_timeout(cmd, TOOL_BOUND, &what)
        .unwrap_or_else(|e| panic!("cannot run {what}: {e} (is the tool installed?)"))
}

const UNIT: &str = "config/systemd/detector.service";
const INSTALLED_EXEC: &str = "ExecStart=/usr/local/bin/detector ";

/// The unit with its ExecStart pointed at the detector binary cargo built for this test:
/// `systemd-analyze verify` checks that the executable exists, and /usr/local/bin/detector
/// is only there on an installed host. Nothing else of the unit changes.
fn unit_copy(dir: &Path, edit: impl Fn(String) -> String) -> PathBuf {
    let text = read(UNIT);
    assert_eq!(
        text.matches(INSTALLED_EXEC).count(),
        1,
        "the unit must have exactly one `{INSTALLED_EXEC}…` line"
    );
    let text = text.replace(
        INSTALLED_EXEC,
        &format!("ExecStart={} ", env!("CARGO_BIN_EXE_detector")),
    );
    let path = dir.join("detector.service");
    fs::write(&path, edit(text)).unwrap();
    path
}

#[test]
fn systemd_unit_verifies_with_empty_stderr() {
    let tmp = tempfile::tempdir().unwrap();
    let unit = unit_copy(tmp.path(), |t| t);
    let out = run(Command::new("systemd-analyze").arg("verify").arg(&unit));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "verify failed: {stderr}");
    assert!(stderr.is_empty(), "verify complained: {stderr}");

    // Negative control: a misspelt setting must be reported.
    let bad = tempfile::tempdir().unwrap();
    let unit = unit_copy(bad.path(), |t| {
        t.replace("ProtectSystem=strict", "ProtectSystem=stric")
    });
    let out = run(Command::new("systemd-analyze").arg("verify").arg(&unit));
    assert!(
        !out.stderr.is_empty(),
        "verify did not notice a bad value: the check cannot fail"
    );
}

/// The exposure this unit reached (`systemd-analyze security --offline=true`); what is
/// left is inherent to a BPF sensor: root, CAP_BPF/CAP_PERFMON/CAP_SYS_PTRACE, bpf(2) in
/// the syscall filter, and a full view of /proc.
const MAX_EXPOSURE: f64 = 1.3;

#[test]
fn systemd_unit_exposure_stays_low() {
    let tmp = tempfile::tempdir().unwrap();
    let unit = unit_copy(tmp.path(), |t| t);
    let out = run(Command::new("systemd-analyze")
        .args(["security", "--offline=true", "--no-pager"])
        .arg(&unit));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .find(|l| l.contains("Overall exposure level for detector.service:"))
        .unwrap_or_else(|| panic!("no exposure line in: {stdout}"));
    let score: f64 = line
        .split(':')
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("cannot read the score in {line:?}"));
    println!("systemd-analyze security: exposure {score}");
    assert!(score <= MAX_EXPOSURE, "exposure rose to {score}: {stdout}");

    // The capability set is exactly what the daemon needs (see the unit's comments).
    let unit_text = read(UNIT);
    let caps: Vec<&str> = unit_text
        .lines()
        .filter_map(|l| l.strip_prefix("CapabilityBoundingSet="))
        .collect();
    assert_eq!(caps, ["CAP_BPF CAP_PERFMON CAP_SYS_PTRACE"]);
}

fn manifests() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(repo().join("config/kubernetes"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    v.sort();
    v
}

fn kubernetes_validate(files: &[PathBuf]) -> Output {
    wait::try_output_timeout(
        Command::new("kubernetes-validate")
            .arg("--strict")
            .args(files),
        TOOL_BOUND,
        "kubernetes-validate",
    )
    .unwrap_or_else(|e| {
        panic!(
            "cannot run kubernetes-validate ({e}): install it with \
             `pip install kubernetes-validate` (.ci/run and cargo xtask setup do)"
        )
    })
}

#[test]
fn kubernetes_manifests_validate_strict() {
    let files = manifests();
    let out = kubernetes_validate(&files);
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{all}");
    for resource in [
        "namespace/detector",
        "priorityclass/detector-node-critical",
        "serviceaccount/detector",
        "daemonset/detector",
        "configmap/detector-config",
    ] {
        assert!(
            all.contains(&format!("passed for resource {resource} ")),
            "{resource} not validated: {all}"
        );
    }
    assert!(!all.contains("ERROR") && !all.contains("WARN"), "{all}");

    // Negative control: an unknown field in the pod spec must be refused under --strict.
    let tmp = tempfile::tempdir().unwrap();
    let bad = tmp.path().join("bad.yaml");
    let text = read("config/kubernetes/daemonset.yaml");
    assert!(text.contains("      hostPID: true\n"));
    fs::write(
        &bad,
        text.replace(
            "      hostPID: true\n",
            "      hostPID: true\n      hostPd: true\n",
        ),
    )
    .unwrap();
    let out = kubernetes_validate(&[bad]);
    assert!(!out.status.success(), "--strict accepted an unknown field");
}

/// The `detector.toml: |` block of the ConfigMap, de-indented (a YAML literal block; the
/// file is ours, so this small reader is enough and needs no YAML dependency).
fn configmap_toml() -> String {
    let text = read("config/kubernetes/configmap.yaml");
    let mut lines = text.lines().skip_while(|l| l.trim() != "detector.toml: |");
    assert!(lines.next().is_some(), "no `detector.toml: |` block");
    let mut out = String::new();
    for l in lines {
        if l.trim().is_empty() {
            out.push('\n');
        } else if let Some(body) = l.strip_prefix("    ") {
            out.push_str(body);
            out.push('\n');
        } else {
            break;
        }
    }
    out
}

#[test]
fn configmap_holds_a_valid_config_for_the_daemonset() {
    let toml = configmap_toml();
    let c = Config::parse(toml.as_bytes(), Path::new("configmap.yaml"))
        .unwrap_or_else(|e| panic!("{e}\n{toml}"));
    assert_eq!(c.rules.paths, [PathBuf::from("/etc/detector/rules")]);
    assert_eq!(
        c.sinks.file.path.as_deref(),
        Some(Path::new("/var/log/detector/alerts.ndjson"))
    );
    assert!(!c.sinks.stdout);

    // The DaemonSet mounts that ConfigMap where its args look, and the alert directory.
    let ds = read("config/kubernetes/daemonset.yaml");
    assert!(ds.contains(r#"args: ["run", "--config", "/etc/detector-config/detector.toml"]"#));
    assert!(ds.contains("mountPath: /etc/detector-config\n"));
    assert!(ds.contains("name: detector-config\n"));
    assert!(ds.contains("mountPath: /var/log/detector\n"));

    // The probes read the heartbeat the config names, on a writable volume.
    assert_eq!(
        c.health.heartbeat_path.as_deref(),
        Some(Path::new("/run/detector/heartbeat"))
    );
    assert!(ds.contains("mountPath: /run/detector\n"));
    let probe = r#"command: ["/usr/local/bin/detector", "health", "--config", "/etc/detector-config/detector.toml", "--max-age", "#;
    for kind in ["readinessProbe:", "livenessProbe:"] {
        let after = ds.split(kind).nth(1).unwrap_or_else(|| panic!("no {kind}"));
        assert!(
            after
                .lines()
                .take(3)
                .any(|l| l.trim_start().starts_with(probe)),
            "{kind} does not run detector health on the ConfigMap"
        );
    }
}

#[test]
fn logrotate_policy_rotates_and_recreates_0640() {
    // Root: the policy's `create 0640 root root` chowns the new file.
    if !require("logrotate_policy_rotates_and_recreates_0640", &[Need::Root]) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let alerts = dir.join("alerts.ndjson");
    fs::write(&alerts, "{\"a\":1}\n").unwrap();
    fs::set_permissions(&alerts, fs::Permissions::from_mode(0o640)).unwrap();
    let marker = dir.join("postrotate-ran");

    // The shipped policy on a temporary path; the postrotate command is replaced so the test
    // signals nobody (on a shared machine, `pkill -x detector` could hit others' daemons).
    let policy = read("config/logrotate/detector");
    assert!(policy.contains("/var/log/detector/alerts.ndjson {"));
    let start = policy.find("    postrotate\n").expect("postrotate block");
    let end = policy.find("    endscript\n").expect("endscript");
    let conf = format!(
        "{}    postrotate\n        touch {}\n{}",
        &policy[..start],
        marker.display(),
        &policy[end..]
    )
    .replace("/var/log/detector/alerts.ndjson", &alerts.to_string_lossy());
    let conf_path = dir.join("logrotate.conf");
    fs::write(&conf_path, conf).unwrap();
    fs::set_permissions(&conf_path, fs::Permissions::from_mode(0o644)).unwrap();

    let out = run(Command::new("logrotate")
        .arg("--force")
        .arg("--state")
        .arg(dir.join("state"))
        .arg(&conf_path));
    assert!(
        out.status.success(),
        "logrotate failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rotated = dir.join("alerts.ndjson.1");
    assert_eq!(
        fs::read_to_string(&rotated).unwrap(),
        "{\"a\":1}\n",
        "delaycompress"
    );
    let fresh = fs::metadata(&alerts).expect("create makes a new alert file");
    assert_eq!(fresh.len(), 0);
    assert_eq!(fresh.mode() & 0o7777, 0o640);
    assert_eq!((fresh.uid(), fresh.gid()), (0, 0));
    assert!(marker.exists(), "postrotate (the SIGHUP) did not run");
}

/// The capabilities the unit keeps, as `setpriv --bounding-set` wants them (`+bpf,…`).
fn unit_capabilities() -> String {
    let unit = read(UNIT);
    let line = unit
        .lines()
        .find_map(|l| l.strip_prefix("CapabilityBoundingSet="))
        .expect("the unit sets CapabilityBoundingSet=");
    line.split_whitespace()
        .map(|c| format!("+{}", c.trim_start_matches("CAP_").to_ascii_lowercase()))
        .collect::<Vec<_>>()
        .join(",")
}

/// The unit's `WatchdogSec=` (seconds, as the unit writes it).
fn unit_watchdog() -> std::time::Duration {
    let unit = read(UNIT);
    let secs = unit
        .lines()
        .find_map(|l| l.strip_prefix("WatchdogSec="))
        .and_then(|v| v.strip_suffix('s')?.parse::<u64>().ok())
        .expect("the unit sets WatchdogSec=<N>s");
    std::time::Duration::from_secs(secs)
}

/// The unit is `Type=notify` with a watchdog the event loop can keep (it pings at half the
/// timeout and turns at least every 500 ms), and the only address family it may open is
/// AF_UNIX: the sd_notify datagram, nothing on a network.
#[test]
fn systemd_unit_waits_for_ready_and_watches_the_loop() {
    let unit = read(UNIT);
    let values = |key: &str| -> Vec<String> {
        unit.lines()
            .filter_map(|l| l.strip_prefix(&format!("{key}=")))
            .map(str::to_owned)
            .collect()
    };
    assert_eq!(values("Type"), ["notify"]);
    assert_eq!(values("NotifyAccess"), ["main"]);
    assert_eq!(values("RestrictAddressFamilies"), ["AF_UNIX"]);
    assert_eq!(values("PrivateNetwork"), ["yes"]);
    let watchdog = unit_watchdog();
    assert!(
        watchdog >= std::time::Duration::from_secs(10)
            && watchdog <= std::time::Duration::from_secs(120),
        "WatchdogSec={watchdog:?}: long enough for a busy host, short enough to matter"
    );
    assert_eq!(
        values("Restart"),
        ["on-failure"],
        "a watchdog kill must restart"
    );

    // Negative control: systemd-analyze notices a bad Type= (so the check above is on a
    // unit it also accepts).
    let tmp = tempfile::tempdir().unwrap();
    let bad = unit_copy(tmp.path(), |t| t.replace("Type=notify", "Type=notifyy"));
    let out = run(Command::new("systemd-analyze").arg("verify").arg(&bad));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("Failed to parse service type"),
        "systemd-analyze verify accepted Type=notifyy: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Whether `pid` holds a BPF link (its programs are attached): an fd reading
/// `anon_inode:bpf_link`. Independent of the daemon's log format.
fn holds_bpf_link(pid: u32) -> bool {
    fs::read_dir(format!("/proc/{pid}/fd")).is_ok_and(|fds| {
        fds.flatten().any(|fd| {
            fs::read_link(fd.path())
                .is_ok_and(|t| t.to_string_lossy().starts_with("anon_inode:bpf_link"))
        })
    })
}

/// The unit's capability set is enough for the real daemon: started as root with only
/// those capabilities in its bounding set (as systemd does), it attaches its programs and
/// stops cleanly on SIGTERM. (Measured separately: a tp_btf program using
/// bpf_probe_read_kernel loads with CAP_BPF+CAP_PERFMON and not with either alone, and
/// /proc/<pid>/{exe,ns,root,environ} of other users' and non-dumpable processes need
/// CAP_SYS_PTRACE, which CAP_DAC_READ_SEARCH does not replace.)
#[test]
fn daemon_runs_with_only_the_units_capabilities() {
    if !require(
        "daemon_runs_with_only_the_units_capabilities",
        &[Need::Root],
    ) {
        return;
    }
    use std::io::BufRead;
    let tmp = tempfile::tempdir().unwrap();
    let caps = unit_capabilities();
    assert_eq!(caps, "+bpf,+perfmon,+sys_ptrace");
    // Type=notify: systemd's notify socket, as the unit's WatchdogSec= sets the variables.
    let notify = std::os::unix::net::UnixDatagram::bind(tmp.path().join("notify")).unwrap();
    notify
        .set_read_timeout(Some(std::time::Duration::from_secs(60)))
        .unwrap();
    // …and only the unit's system calls (SystemCallFilter=, the same list as the seccomp
    // profile): the filter is set on setpriv before it execs the daemon.
    let mut cmd = Command::new("setpriv");
    cmd.arg(format!("--bounding-set=-all,{caps}"))
        .args(["--inh-caps=-all", "--no-new-privs", "--"])
        .arg(env!("CARGO_BIN_EXE_detector"))
        .args(["run", "--config"])
        .arg(repo().join("config/detector.toml"))
        .arg("--alerts-file")
        .arg(tmp.path().join("alerts.ndjson"))
        .env("NOTIFY_SOCKET", tmp.path().join("notify"))
        .env("WATCHDOG_USEC", unit_watchdog().as_micros().to_string())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    // The filter also covers setpriv's own calls before that exec (SETPRIV_EXTRA).
    let mut allowed = unit_syscalls();
    allowed.extend(SETPRIV_EXTRA.iter().map(|s| s.to_string()));
    seccomp::apply(&mut cmd, seccomp::filter(&allowed, libc::EPERM as u32));
    let mut child = cmd.spawn().expect("setpriv (util-linux)");
    // Kill our child whatever happens below.
    struct Reap(std::process::Child);
    impl Drop for Reap {
        fn drop(&mut self) {
            wait::kill_and_reap(&mut self.0);
        }
    }
    let pid = child.id();
    let stderr = child.stderr.take().unwrap();
    let mut child = Reap(child);
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut lines = vec![];
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            if line.starts_with("detector: ready: ") {
                let _ = tx.send(());
            }
            lines.push(line);
        }
        lines
    });
    // Ready = programs attached AND the process table seeded from /proc (what
    // CAP_SYS_PTRACE is for); SIGTERM is sent only then, so the 5 s measure the stop alone.
    if rx.recv_timeout(std::time::Duration::from_secs(60)).is_err() {
        let status = child.0.try_wait().unwrap();
        wait::kill_and_reap(&mut child.0);
        let lines = wait::try_join_timeout(
            reader,
            std::time::Duration::from_secs(10),
            "the daemon's stderr",
        )
        .map(|l| l.join("\n"))
        .unwrap_or_else(|e| e);
        panic!("daemon not ready within 60 s ({status:?}):\n{lines}");
    }
    assert!(holds_bpf_link(pid), "ready without a BPF link");
    let mut buf = [0u8; 256];
    let len = notify.recv(&mut buf).expect("READY=1 on the notify socket");
    assert_eq!(&buf[..len], b"READY=1");
    // The blinded-sensor canary (fork + exec of the daemon's own binary, at the first tick)
    // must work under the unit's capabilities too: give its exec time to come back.
    std::thread::sleep(std::time::Duration::from_secs(2));
    // SAFETY: kill(2) on the pid of our own child, which has not been reaped yet.
    assert_eq!(unsafe { libc::kill(pid as i32, libc::SIGTERM) }, 0);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let status = loop {
        if let Some(s) = child.0.try_wait().unwrap() {
            break s;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no exit within 5 s of SIGTERM"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let lines = wait::join_timeout(
        reader,
        std::time::Duration::from_secs(10),
        "the daemon's stderr to close",
    );
    assert!(
        status.success(),
        "exit after SIGTERM: {status}\n{}",
        lines.join("\n")
    );
    let stats: serde_json::Value = lines
        .iter()
        .find_map(|l| l.strip_prefix("{\"final_stats\":"))
        .and_then(|l| serde_json::from_str(l.strip_suffix('}')?).ok())
        .unwrap_or_else(|| panic!("no final stats:\n{}", lines.join("\n")));
    assert!(
        stats["canary"]["seen"].as_u64().is_some_and(|n| n >= 1)
            && stats["daemon"]["canary_spawn_failed"] == 0
            && stats["daemon"]["blinded"] == 0,
        "the canary did not come back under the unit's capabilities: {stats}"
    );
}

/// The system calls the unit allows: every `SystemCallFilter=` line (allow lists only).
fn unit_syscalls() -> std::collections::BTreeSet<String> {
    let unit = read(UNIT);
    let mut names = std::collections::BTreeSet::new();
    for l in unit.lines() {
        let Some(v) = l.strip_prefix("SystemCallFilter=") else {
            continue;
        };
        assert!(
            !v.starts_with('~') && !v.contains('@'),
            "the unit's filter is an explicit allow list (no deny lists, no groups): {l}"
        );
        for n in v.split_whitespace() {
            assert!(names.insert(n.to_owned()), "{n} listed twice in the unit");
        }
    }
    names
}

/// What setpriv (between the filter and the daemon's exec) needs beyond the daemon's own
/// calls: reading and setting capabilities and the bounding set. Not in the unit: systemd
/// sets those up itself before it execs the daemon.
const SETPRIV_EXTRA: &[&str] = &["capget", "capset"];

/// The unit's SystemCallFilter= and the container seccomp profile are the same list, and
/// every name is a system call of this architecture (a typo would be refused by neither
/// tool loudly: systemd logs and skips unknown names).
#[test]
fn seccomp_profile_and_unit_filter_agree() {
    let profile = seccomp::profile();
    let json = seccomp::allowed(&profile);
    let unit = unit_syscalls();
    let only_json: Vec<_> = json.difference(&unit).collect();
    let only_unit: Vec<_> = unit.difference(&json).collect();
    assert!(
        only_json.is_empty() && only_unit.is_empty(),
        "only in config/seccomp/detector.json: {only_json:?}; only in the unit: {only_unit:?}"
    );
    assert_eq!(
        profile["defaultErrnoRet"],
        libc::EPERM,
        "EPERM, as the unit's"
    );
    assert!(read(UNIT).contains("\nSystemCallErrorNumber=EPERM\n"));
    assert!(json.contains("bpf"));
    // Nothing an eBPF sensor never needs (a sample of the dangerous ones).
    for never in [
        "mount",
        "ptrace",
        "init_module",
        "kexec_load",
        "setns",
        "unshare",
        "perf_event_open",
    ] {
        assert!(!json.contains(never), "{never} is allowed");
    }
    if std::path::Path::new(seccomp::UNISTD_64).exists() {
        let nrs = seccomp::numbers();
        for n in &json {
            assert!(nrs.contains_key(n), "{n} is not an x86-64 system call");
        }
    }
    // The DaemonSet references this profile by its kubelet-relative path.
    let ds = read("config/kubernetes/daemonset.yaml");
    assert!(
        ds.contains("type: Localhost\n              localhostProfile: profiles/detector.json\n"),
        "the DaemonSet uses the shipped profile"
    );
    assert!(
        !ds.contains("type: RuntimeDefault"),
        "RuntimeDefault refuses bpf(2) to CAP_BPF"
    );
}

/// The start-up error under a seccomp filter that refuses bpf(2) (the profile minus bpf, as
/// a runtime's default profile does) names seccomp and the shipped profile — not missing
/// capabilities, which the daemon holds; and with the capabilities dropped it says
/// missing capabilities, not seccomp.
#[test]
fn bpf_refusals_are_told_apart() {
    if !require(
        "bpf_refusals_are_told_apart",
        &[
            Need::Root,
            Need::Tool("setpriv"),
            Need::Path(seccomp::UNISTD_64),
        ],
    ) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let daemon = |filter: Option<Vec<libc::sock_filter>>, bounding: &str| {
        let mut cmd = Command::new("setpriv");
        cmd.arg(format!("--bounding-set={bounding}"))
            .args(["--inh-caps=-all", "--"])
            .arg(env!("CARGO_BIN_EXE_detector"))
            .args(["run", "--config"])
            .arg(repo().join("config/detector.toml"))
            .arg("--alerts-file")
            .arg(tmp.path().join("alerts.ndjson"))
            .stdin(std::process::Stdio::null());
        if let Some(f) = filter {
            seccomp::apply(&mut cmd, f);
        }
        let out = wait::output_timeout(&mut cmd, TOOL_BOUND, "detector run to fail at start");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    // EX_NOPERM (sysexits.h), as for missing capabilities.
    const NOPERM: Option<i32> = Some(77);

    // The unit's capabilities, the profile without bpf.
    let mut no_bpf = seccomp::allowed(&seccomp::profile());
    assert!(no_bpf.remove("bpf"));
    no_bpf.extend(SETPRIV_EXTRA.iter().map(|s| s.to_string()));
    let caps = format!("-all,{}", unit_capabilities());
    let (code, err) = daemon(Some(seccomp::filter(&no_bpf, libc::EPERM as u32)), &caps);
    assert_eq!(code, NOPERM, "{err}");
    assert!(err.contains("refused by a seccomp filter"), "{err}");
    assert!(err.contains("config/seccomp/detector.json"), "{err}");
    assert!(!err.contains("missing capabilities"), "{err}");

    // No filter, CAP_BPF and CAP_PERFMON dropped: missing capabilities, not seccomp.
    let (code, err) = daemon(None, "-bpf,-perfmon,-sys_admin");
    assert_eq!(code, NOPERM, "{err}");
    assert!(err.contains("missing capabilities"), "{err}");
    assert!(!err.contains("seccomp"), "{err}");
}

/// The installed config (what `cargo xtask dist` stages: the same three line edits as
/// `xtask::dist::install_config`) passes the daemon's own validation, and the paths agree
/// with the unit's LogsDirectory= and the logrotate policy.
#[test]
fn installed_config_variant_is_valid_and_consistent() {
    let shipped = read("config/detector.toml");
    let installed = shipped
        .replace(
            "\npaths = [\"rules\"]\n",
            "\npaths = [\"/etc/detector/rules\"]\n",
        )
        .replace("\nstdout = true\n", "\nstdout = false\n")
        .replace(
            "\n# path = \"/var/log/detector/alerts.ndjson\"\n",
            "\npath = \"/var/log/detector/alerts.ndjson\"\n",
        );
    let c = Config::parse(installed.as_bytes(), Path::new("installed.toml"))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.rules.paths, [PathBuf::from("/etc/detector/rules")]);
    assert!(!c.sinks.stdout);
    let alerts = c
        .sinks
        .file
        .path
        .expect("installed config enables the file sink");
    assert_eq!(alerts, Path::new("/var/log/detector/alerts.ndjson"));
    assert!(read(UNIT).contains("\nLogsDirectory=detector\n"));
    assert!(read("config/logrotate/detector").contains(&format!("{} {{", alerts.display())));
}
