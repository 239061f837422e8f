//! The container image users deploy, built from the project's own `Dockerfile` and run with
//! exactly the DaemonSet's security settings (issue 11, "The DaemonSet, run for real").
//!
//! - Build: `podman build` of the repository's `Dockerfile`, the build context a directory
//!   holding only the release tarball (`cargo xtask dist`; `cargo xtask test` builds it and
//!   passes it as `DETECTOR_DIST_TARBALL`), the base the image `cargo xtask setup` imports
//!   from a debootstrap'ed bookworm (no registry here). podman rather than docker: the
//!   image must run with `--cap-add CAP_BPF`, which Debian's docker 20.10 rejects
//!   ("unknown capability") and podman 4.3 accepts; building with the engine that runs it
//!   needs no `docker save | podman load`, and no engine daemon to start and stop.
//! - Run: every flag comes from `config/kubernetes/daemonset.yaml` and `configmap.yaml`,
//!   parsed here ([`Pod::from_manifests`]) — capabilities (drop ALL, add the manifest's),
//!   the seccomp profile the manifest names (the shipped `config/seccomp/detector.json`, as
//!   the kubelet would find it), AppArmor, read-only root file system, no privilege
//!   escalation, uid/gid, host PID namespace, every volume (hostPath → bind mount with its
//!   read-only flag, the ConfigMap's detector.toml → a read-only file mount, emptyDir →
//!   tmpfs of its size limit), the args and the probes. A manifest field this test does not
//!   know how to reproduce fails the test, so the run cannot drift from the manifest.
//! - Check: the readiness probe passes inside the container; `ssh -V` in a SIBLING podman
//!   container gives an alert on the manifest's alert path with that container's
//!   `container.id`, `container.name` and `container.image.name` (read by the daemon in the
//!   image through the runtime-state mounts); the same image under the runtime's DEFAULT
//!   seccomp profile (what `RuntimeDefault` would be) exits saying seccomp refused bpf(2)
//!   and naming the shipped profile, not "missing capabilities".

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use detector::testsupport::{Need, require};
use serde_json::Value;

#[path = "common/containers.rs"]
mod containers;
#[path = "common/daemon.rs"]
mod daemon;
#[path = "common/wait.rs"]
mod wait;

/// The environment variable naming the release tarball (set by `cargo xtask test`).
const DIST_VAR: &str = "DETECTOR_DIST_TARBALL";
/// The base image `cargo xtask setup` imports (xtask/src/setup_image.rs), and its rootfs.
const BASE_IMAGE: &str = "localhost/detector-base:bookworm";
const BASE_TARBALL: &str = "/var/lib/detector-image/bookworm-minbase.tar";
/// Where the kubelet looks for `Localhost` seccomp profiles (its --seccomp-profile-root).
const KUBELET_SECCOMP_ROOT: &str = "/var/lib/kubelet/seccomp";
/// Bound on the image build (no RUN step: two ADD/COPY layers) — a hang guard.
const BUILD_BOUND: Duration = Duration::from_secs(300);
/// Bound on the daemon's ready line in the container.
const READY_BOUND: Duration = Duration::from_secs(60);

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The tarball: `$DETECTOR_DIST_TARBALL`, else what `cargo xtask dist` last wrote.
fn dist_tarball() -> PathBuf {
    std::env::var_os(DIST_VAR).map_or_else(
        || {
            repo().join(format!(
                "target/dist/detector-{}-{}.tar.gz",
                env!("CARGO_PKG_VERSION"),
                std::env::consts::ARCH
            ))
        },
        PathBuf::from,
    )
}

fn leak(p: &Path) -> &'static str {
    Box::leak(p.display().to_string().into_boxed_str())
}

fn run(cmd: &mut Command, bound: Duration) -> Output {
    let what = format!("{cmd:?}");
    let out = wait::output_timeout(cmd, bound, &what);
    assert!(
        out.status.success(),
        "{what}: {}\nstdout: {}\nstderr: {}",
        wait::describe(&out.status),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn podman(args: &[&str]) -> Command {
    let mut c = Command::new("podman");
    c.args(args);
    c
}

// --- the manifest ---------------------------------------------------------------------

fn yaml_docs(rel: &str) -> Vec<serde_yaml_ng::Value> {
    use serde::Deserialize;
    let text = std::fs::read_to_string(repo().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"));
    serde_yaml_ng::Deserializer::from_str(&text)
        .map(|d| serde_yaml_ng::Value::deserialize(d).unwrap_or_else(|e| panic!("{rel}: {e}")))
        .collect()
}

/// As JSON (easier indexing; a missing key reads as null).
fn to_json(v: &serde_yaml_ng::Value) -> Value {
    serde_json::to_value(v).expect("YAML that JSON can hold")
}

/// A volume mount of the pod, resolved to what podman needs.
#[derive(Debug)]
enum Source {
    /// A node path (`hostPath`), its `type`.
    HostPath { path: PathBuf, kind: String },
    /// The ConfigMap's files (key → content).
    ConfigMap(BTreeMap<String, String>),
    /// An emptyDir: memory-backed, size limit in bytes.
    Tmpfs { bytes: u64 },
}

#[derive(Debug)]
struct Mount {
    path: String,
    read_only: bool,
    source: Source,
}

/// Everything the DaemonSet's pod says about how the container runs.
#[derive(Debug)]
struct Pod {
    image: String,
    args: Vec<String>,
    readiness: Vec<String>,
    host_pid: bool,
    user: (i64, i64),
    read_only_root: bool,
    no_new_privs: bool,
    cap_drop: Vec<String>,
    cap_add: Vec<String>,
    /// `Localhost` profile path, relative to the kubelet's seccomp root.
    seccomp_localhost: String,
    apparmor: String,
    mounts: Vec<Mount>,
    grace_secs: u64,
}

/// "1Mi" and friends, in bytes.
fn quantity(q: &str) -> u64 {
    let (n, mult) = [("Ki", 1u64 << 10), ("Mi", 1 << 20), ("Gi", 1 << 30)]
        .iter()
        .find_map(|(s, m)| q.strip_suffix(s).map(|n| (n, *m)))
        .unwrap_or((q, 1));
    n.parse::<u64>().unwrap_or_else(|_| panic!("quantity {q}")) * mult
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| a.iter().map(|s| s.as_str().unwrap().to_owned()).collect())
        .unwrap_or_default()
}

impl Pod {
    fn from_manifests() -> Pod {
        let ds = yaml_docs("config/kubernetes/daemonset.yaml")
            .iter()
            .map(to_json)
            .find(|d| d["kind"] == "DaemonSet")
            .expect("a DaemonSet in daemonset.yaml");
        let cm = yaml_docs("config/kubernetes/configmap.yaml")
            .iter()
            .map(to_json)
            .find(|d| d["kind"] == "ConfigMap")
            .expect("a ConfigMap in configmap.yaml");
        let spec = &ds["spec"]["template"]["spec"];
        let containers = spec["containers"].as_array().unwrap();
        assert_eq!(containers.len(), 1, "one container");
        let c = &containers[0];
        let sc = &c["securityContext"];
        // What this test reproduces; anything else in the security context is unknown to it.
        let known = [
            "runAsUser",
            "runAsGroup",
            "runAsNonRoot",
            "privileged",
            "allowPrivilegeEscalation",
            "readOnlyRootFilesystem",
            "capabilities",
            "seccompProfile",
            "appArmorProfile",
        ];
        for k in sc.as_object().unwrap().keys() {
            assert!(
                known.contains(&k.as_str()),
                "securityContext.{k}: not reproduced"
            );
        }
        assert_eq!(sc["privileged"], false);
        assert_eq!(sc["runAsNonRoot"], false);
        assert_eq!(
            spec["hostNetwork"], false,
            "the pod network is not reproduced"
        );
        assert_eq!(spec["hostIPC"], false);
        assert_eq!(sc["seccompProfile"]["type"], "Localhost");
        let volumes: BTreeMap<String, Value> = spec["volumes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| (v["name"].as_str().unwrap().to_owned(), v.clone()))
            .collect();
        let mounts = c["volumeMounts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| {
                let name = m["name"].as_str().unwrap().to_owned();
                let v = &volumes[&name];
                let source = if !v["hostPath"].is_null() {
                    Source::HostPath {
                        path: v["hostPath"]["path"].as_str().unwrap().into(),
                        kind: v["hostPath"]["type"].as_str().unwrap_or("").to_owned(),
                    }
                } else if !v["configMap"].is_null() {
                    assert_eq!(v["configMap"]["name"], cm["metadata"]["name"]);
                    Source::ConfigMap(
                        cm["data"]
                            .as_object()
                            .unwrap()
                            .iter()
                            .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
                            .collect(),
                    )
                } else if !v["emptyDir"].is_null() {
                    assert_eq!(v["emptyDir"]["medium"], "Memory", "{v}");
                    Source::Tmpfs {
                        bytes: quantity(v["emptyDir"]["sizeLimit"].as_str().unwrap()),
                    }
                } else {
                    panic!("volume {name}: kind not reproduced: {v}")
                };
                Mount {
                    path: m["mountPath"].as_str().unwrap().to_owned(),
                    read_only: m["readOnly"].as_bool().unwrap_or(false),
                    source,
                }
            })
            .collect();
        Pod {
            image: c["image"].as_str().unwrap().to_owned(),
            args: strings(&c["args"]),
            readiness: strings(&c["readinessProbe"]["exec"]["command"]),
            host_pid: spec["hostPID"] == true,
            user: (
                sc["runAsUser"].as_i64().unwrap(),
                sc["runAsGroup"].as_i64().unwrap(),
            ),
            read_only_root: sc["readOnlyRootFilesystem"] == true,
            no_new_privs: sc["allowPrivilegeEscalation"] == false,
            cap_drop: strings(&sc["capabilities"]["drop"]),
            cap_add: strings(&sc["capabilities"]["add"]),
            seccomp_localhost: sc["seccompProfile"]["localhostProfile"]
                .as_str()
                .unwrap()
                .to_owned(),
            apparmor: sc["appArmorProfile"]["type"].as_str().unwrap().to_owned(),
            mounts,
            grace_secs: spec["terminationGracePeriodSeconds"].as_u64().unwrap(),
        }
    }

    /// The config the daemon in the pod reads (the ConfigMap's detector.toml).
    fn config(&self) -> String {
        self.mounts
            .iter()
            .find_map(|m| match &m.source {
                Source::ConfigMap(files) => files.get("detector.toml").cloned(),
                _ => None,
            })
            .expect("the ConfigMap holds detector.toml")
    }

    /// The alert file the config names (`[sinks.file] path`).
    fn alert_path(&self) -> PathBuf {
        let t: toml::Table = self.config().parse().unwrap();
        t["sinks"]["file"]["path"].as_str().unwrap().into()
    }

    /// The shipped profile the `Localhost` reference resolves to: the kubelet reads
    /// `<seccomp root>/<localhostProfile>`, which the README says to fill from
    /// config/seccomp/; the file name must be one we ship.
    fn seccomp_file(&self) -> PathBuf {
        let name = Path::new(&self.seccomp_localhost)
            .file_name()
            .expect("localhostProfile names a file");
        let shipped = repo().join("config/seccomp").join(name);
        assert!(
            shipped.is_file(),
            "{KUBELET_SECCOMP_ROOT}/{} is not a profile detector ships ({})",
            self.seccomp_localhost,
            shipped.display()
        );
        shipped
    }

    /// `podman run` arguments for this pod. `alerts_dir` replaces the host side of the
    /// volume that holds the alert file (so the test reads its own alerts, not the host's
    /// /var/log/detector); `config_dir` receives the ConfigMap's files. `seccomp`: the
    /// profile to use (`None`: the manifest's).
    fn run_args(
        &self,
        name: &str,
        alerts_dir: &Path,
        config_dir: &Path,
        seccomp: Option<&str>,
    ) -> Vec<String> {
        let mut a: Vec<String> = vec![
            "run".into(),
            "-d".into(),
            "--name".into(),
            name.into(),
            "--runtime".into(),
            "runc".into(),
            // No pod network here (hostNetwork: false); the daemon opens no socket.
            "--network".into(),
            "none".into(),
            // Not from the manifest (Kubernetes sets no rlimits): root on this machine lacks
            // CAP_SYS_RESOURCE, so podman cannot raise the limits to its own defaults.
            "--ulimit".into(),
            "nofile=1024:1024".into(),
            "--ulimit".into(),
            "nproc=4096:4096".into(),
            "--user".into(),
            format!("{}:{}", self.user.0, self.user.1),
        ];
        if self.host_pid {
            a.extend(["--pid".into(), "host".into()]);
        }
        if self.read_only_root {
            // Kubernetes adds no tmpfs on /run, /tmp (podman would by default).
            a.extend(["--read-only".into(), "--read-only-tmpfs=false".into()]);
        }
        if self.no_new_privs {
            a.extend(["--security-opt".into(), "no-new-privileges".into()]);
        }
        for c in &self.cap_drop {
            a.extend(["--cap-drop".into(), c.clone()]);
        }
        for c in &self.cap_add {
            a.extend(["--cap-add".into(), format!("CAP_{c}")]);
        }
        let profile = seccomp.map_or_else(
            || format!("seccomp={}", self.seccomp_file().display()),
            str::to_owned,
        );
        a.extend(["--security-opt".into(), profile]);
        match self.apparmor.as_str() {
            "Unconfined" => a.extend(["--security-opt".into(), "apparmor=unconfined".into()]),
            other => panic!("appArmorProfile {other}: not reproduced"),
        }
        let alert_dir = self.alert_path().parent().unwrap().to_owned();
        for m in &self.mounts {
            let ro = if m.read_only { ",ro" } else { "" };
            match &m.source {
                Source::HostPath { path, kind } => {
                    let host = if Path::new(&m.path) == alert_dir {
                        alerts_dir.to_owned()
                    } else {
                        match kind.as_str() {
                            "Directory" => {
                                assert!(path.is_dir(), "hostPath {} must exist", path.display())
                            }
                            // The kubelet creates it (0755) when missing.
                            "DirectoryOrCreate" => std::fs::create_dir_all(path).unwrap(),
                            other => panic!("hostPath type {other:?}: not reproduced"),
                        }
                        path.clone()
                    };
                    a.extend([
                        "--mount".into(),
                        format!(
                            "type=bind,source={},destination={}{ro}",
                            host.display(),
                            m.path
                        ),
                    ]);
                }
                Source::ConfigMap(files) => {
                    for (k, v) in files {
                        std::fs::write(config_dir.join(k), v).unwrap();
                    }
                    a.extend([
                        "--mount".into(),
                        format!(
                            "type=bind,source={},destination={}{ro}",
                            config_dir.display(),
                            m.path
                        ),
                    ]);
                }
                Source::Tmpfs { bytes } => a.extend([
                    "--mount".into(),
                    format!("type=tmpfs,destination={},tmpfs-size={bytes}", m.path),
                ]),
            }
        }
        a.push(self.image.clone());
        a.extend(self.args.iter().cloned());
        a
    }
}

// --- guards ---------------------------------------------------------------------------

/// Removes a podman container on drop (also when the test fails).
struct Container(String);

impl Drop for Container {
    fn drop(&mut self) {
        let _ = wait::try_output_timeout(
            &mut podman(&["rm", "-f", "-t", "0", &self.0]),
            wait::TOOL,
            "podman rm",
        );
    }
}

/// Removes an image on drop.
struct Image(String);

impl Drop for Image {
    fn drop(&mut self) {
        let _ = wait::try_output_timeout(
            &mut podman(&["rmi", "-f", &self.0]),
            wait::TOOL,
            "podman rmi",
        );
    }
}

fn logs(name: &str) -> String {
    wait::try_output_timeout(&mut podman(&["logs", name]), wait::TOOL, "podman logs")
        .map(|o| {
            format!(
                "{}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            )
        })
        .unwrap_or_else(|e| e)
}

fn running(name: &str) -> bool {
    wait::try_output_timeout(
        &mut podman(&["inspect", "--format", "{{.State.Running}}", name]),
        wait::TOOL,
        "podman inspect",
    )
    .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "true")
}

/// Builds the image from the Dockerfile and the tarball; returns its guard.
fn build_image(pod: &Pod, tarball: &Path) -> Image {
    let exists = |img: &str| {
        wait::try_output_timeout(&mut podman(&["image", "exists", img]), wait::TOOL, img)
            .is_ok_and(|o| o.status.success())
    };
    if !exists(BASE_IMAGE) {
        run(
            &mut podman(&["import", BASE_TARBALL, BASE_IMAGE]),
            BUILD_BOUND,
        );
    }
    // The context: the tarball alone (what `docker build … target/dist` sees, minus the
    // staging directory next to it).
    let ctx = tempfile::tempdir().unwrap();
    std::fs::copy(tarball, ctx.path().join(tarball.file_name().unwrap())).unwrap();
    let t0 = Instant::now();
    let image = Image(pod.image.clone());
    // --layers=false: no cached stage images (the unpack stage would stay behind, 130 MB
    // per run, untagged); every run builds from the tarball it is given.
    run(
        podman(&[
            "build",
            "--layers=false",
            "--network",
            "none",
            "--pull=never",
            "-f",
        ])
        .arg(repo().join("Dockerfile"))
        .args([
            "--build-arg",
            &format!("BASE={BASE_IMAGE}"),
            "-t",
            &pod.image,
        ])
        .arg(ctx.path()),
        BUILD_BOUND,
    );
    println!("image {} built in {:?}", pod.image, t0.elapsed());
    image
}

/// Waits for the daemon in container `name` to log its ready line (JSON log format: the
/// line is still `detector: ready: …` on stderr, printed before the subscriber).
fn wait_ready(name: &str) -> String {
    let deadline = Instant::now() + READY_BOUND;
    loop {
        let l = logs(name);
        if let Some(line) = l.lines().find(|l| l.contains("detector: ready")) {
            return line.to_owned();
        }
        assert!(
            running(name),
            "the daemon's container exited before ready:\n{l}"
        );
        assert!(
            Instant::now() < deadline,
            "not ready within {READY_BOUND:?}:\n{l}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn needs() -> Vec<Need> {
    vec![
        Need::Root,
        Need::Tool("podman"),
        Need::Tool("runc"),
        Need::Path(leak(&dist_tarball())),
        Need::Path(BASE_TARBALL),
        Need::Path("/sys/kernel/btf/vmlinux"),
    ]
}

/// The image, run as the DaemonSet runs it, alerts on `ssh -V` in a sibling container with
/// that container's id, name and image name.
#[test]
fn the_daemonset_image_alerts_on_ssh_in_a_sibling_container() {
    if !require(
        "the_daemonset_image_alerts_on_ssh_in_a_sibling_container",
        &needs(),
    ) {
        return;
    }
    let _serial = wait::serial();
    let t0 = Instant::now();
    let pod = Pod::from_manifests();
    assert_eq!(pod.cap_drop, ["ALL"]);
    assert_eq!(pod.cap_add, ["BPF", "PERFMON", "SYS_PTRACE"]);
    let _image = build_image(&pod, &dist_tarball());
    let sibling_image = containers::podman_image().expect("the test rootfs as a podman image");

    let alerts = tempfile::tempdir().unwrap();
    let config = tempfile::tempdir().unwrap();
    let name = format!("detector-image-test-{}", std::process::id());
    let args = pod.run_args(&name, alerts.path(), config.path(), None);
    println!("podman {}", args.join(" "));
    let guard = Container(name.clone());
    run(podman(&[]).args(&args), wait::CONTAINER);
    let ready = wait_ready(&name);
    println!("{ready} ({:?} since the build started)", t0.elapsed());

    // The readiness probe, inside the container (under its seccomp profile too).
    let probe = wait::until(
        Duration::from_secs(30),
        "the readiness probe to pass",
        || {
            let out = wait::output_timeout(
                podman(&["exec", &name]).args(&pod.readiness),
                wait::TOOL,
                "the readiness probe",
            );
            out.status.success().then_some(out)
        },
    );
    println!("probe: {}", String::from_utf8_lossy(&probe.stdout).trim());

    // The sibling: a podman container from the test rootfs, by name.
    let sibling = format!("detector-image-sibling-{}", std::process::id());
    let _sibling_guard = Container(sibling.clone());
    let created = run(
        &mut podman(&[
            "create",
            "--name",
            &sibling,
            "--runtime",
            "runc",
            "--network",
            "none",
            "--ulimit",
            "nofile=1024:1024",
            "--ulimit",
            "nproc=4096:4096",
            sibling_image,
            "/usr/bin/ssh",
            "-V",
        ]),
        wait::CONTAINER,
    );
    let sibling_id = String::from_utf8_lossy(&created.stdout).trim().to_owned();
    run(&mut podman(&["start", "-a", &sibling]), wait::CONTAINER);

    let alert_file = alerts.path().join(pod.alert_path().file_name().unwrap());
    let alert = wait::try_until(Duration::from_secs(20), Duration::from_millis(100), || {
        let raw = std::fs::read(&alert_file).ok()?;
        daemon::alerts_for(&daemon::parse_ndjson(&raw), &sibling_id)
            .first()
            .map(|a| (*a).clone())
    })
    .unwrap_or_else(|| {
        panic!(
            "no alert for the sibling {sibling_id} in {}: {}\ndaemon log:\n{}",
            alert_file.display(),
            std::fs::read_to_string(&alert_file).unwrap_or_default(),
            logs(&name)
        )
    });
    assert_eq!(alert["rule"]["id"], daemon::SSH_RULE_ID, "{alert}");
    assert_eq!(alert["process"]["name"], "ssh", "{alert}");
    assert_eq!(alert["container"]["id"], sibling_id.as_str(), "{alert}");
    assert_eq!(alert["container"]["name"], sibling.as_str(), "{alert}");
    assert_eq!(
        alert["container"]["image"]["name"],
        sibling_image.split(':').next().unwrap(),
        "{alert}"
    );
    assert_eq!(alert["container"]["runtime"], "podman", "{alert}");

    // The pod's stop: SIGTERM within the grace period, exit 0.
    let stop = Instant::now();
    run(
        &mut podman(&["stop", "-t", &pod.grace_secs.to_string(), &name]),
        Duration::from_secs(pod.grace_secs + 30),
    );
    let took = stop.elapsed();
    let code = run(
        &mut podman(&["inspect", "--format", "{{.State.ExitCode}}", &name]),
        wait::TOOL,
    );
    assert_eq!(
        String::from_utf8_lossy(&code.stdout).trim(),
        "0",
        "daemon log:\n{}",
        logs(&name)
    );
    assert!(
        took < Duration::from_secs(pod.grace_secs),
        "stop took {took:?}"
    );
    drop(guard);
    println!("whole test: {:?}", t0.elapsed());
}

/// The same image and settings under the runtime's default seccomp profile (what
/// `RuntimeDefault` gives): bpf(2) is refused although CAP_BPF is held, and the daemon
/// says that — seccomp, and the shipped profile as the fix — not "missing capabilities".
#[test]
fn under_the_runtime_default_seccomp_profile_the_daemon_names_seccomp() {
    if !require(
        "under_the_runtime_default_seccomp_profile_the_daemon_names_seccomp",
        &needs(),
    ) {
        return;
    }
    let _serial = wait::serial();
    let pod = Pod::from_manifests();
    let _image = build_image(&pod, &dist_tarball());
    let alerts = tempfile::tempdir().unwrap();
    let config = tempfile::tempdir().unwrap();
    let name = format!("detector-image-default-seccomp-{}", std::process::id());
    // podman's default profile: containers.conf's seccomp_profile, i.e. no --security-opt
    // seccomp=…; an explicit path to it keeps this independent of containers.conf.
    let default = ["/usr/share/containers/seccomp.json"]
        .into_iter()
        .find(|p| Path::new(p).is_file())
        .expect("podman's default seccomp profile (/usr/share/containers/seccomp.json)");
    let args = pod.run_args(
        &name,
        alerts.path(),
        config.path(),
        Some(&format!("seccomp={default}")),
    );
    let _guard = Container(name.clone());
    run(podman(&[]).args(&args), wait::CONTAINER);
    let code = run(&mut podman(&["wait", &name]), Duration::from_secs(60));
    let log = logs(&name);
    assert_eq!(
        String::from_utf8_lossy(&code.stdout).trim(),
        "77",
        "EX_NOPERM expected:\n{log}"
    );
    assert!(log.contains("refused by a seccomp filter"), "{log}");
    assert!(log.contains("config/seccomp/detector.json"), "{log}");
    assert!(!log.contains("missing capabilities"), "{log}");
}
