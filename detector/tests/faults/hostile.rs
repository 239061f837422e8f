//! Hostile inputs: 1 MiB of argv, invalid UTF-8, control characters, process names that
//! look like JSON or hold a newline (from inside a runc container), and a cgroup with odd
//! bytes in its name (on the host). Every line of the alert file and of `detector trace`
//! stays one JSON object, and argv truncation is flagged.

use std::io::{BufRead, BufReader};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use detector::testsupport::{Need, require};
use serde_json::Value;

use crate::containers::{self, RuncContainer};
use crate::harness::{self, Daemon, PROBE, Setup, TAG_PREFIX, read_ndjson};

const HOSTILE_RULE: &str = "Faults Hostile Exec";

/// A running `detector trace` (ECS documents) with stdout kept as raw lines.
struct Trace {
    child: std::process::Child,
    out: Option<std::thread::JoinHandle<()>>,
    /// Every stdout line so far (the reader appends as they come).
    lines: Arc<Mutex<Vec<Vec<u8>>>>,
    _serial: crate::wait::Serial,
}

/// Bound on the trace's exit after SIGINT and on its pipes closing (a hang guard).
const TRACE_BOUND: Duration = Duration::from_secs(30);

impl Trace {
    fn start() -> Trace {
        let serial = harness::lock();
        let mut child = Command::new(harness::detector_bin())
            .arg("trace")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = lines.clone();
        let out = std::thread::spawn(move || {
            for l in BufReader::new(stdout).split(b'\n').map_while(Result::ok) {
                sink.lock().unwrap().push(l);
            }
        });
        let (tx, rx) = std::sync::mpsc::channel();
        let stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if line.contains("\"ready\":true") {
                    let _ = tx.send(());
                }
            }
        });
        let mut t = Trace {
            child,
            out: Some(out),
            lines,
            _serial: serial,
        };
        if rx.recv_timeout(Duration::from_secs(60)).is_err() {
            t.kill();
            panic!("detector trace did not become ready within 60 s");
        }
        t
    }

    fn kill(&mut self) {
        crate::wait::kill_and_reap(&mut self.child);
    }

    /// Waits until the trace printed an exec whose `process.args[1]` is each of `tags`
    /// (lines that do not parse are left for [`Trace::stop`] to fail on).
    fn wait_execs(&self, tags: &[String], bound: Duration) {
        crate::wait::until(
            bound,
            &format!("detector trace to print the execs of {tags:?}"),
            || {
                let lines = self.lines.lock().unwrap();
                let seen = |t: &String| {
                    lines.iter().any(|l| {
                        serde_json::from_slice::<Value>(l).is_ok_and(|e| {
                            e["event"]["action"] == "exec" && e["process"]["args"][1] == t.as_str()
                        })
                    })
                };
                tags.iter().all(seen).then_some(())
            },
        );
    }

    /// SIGINT; every stdout line, each of which must be one JSON object.
    fn stop(mut self) -> Vec<Value> {
        // SAFETY: signalling our own, unreaped child.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGINT) };
        crate::wait::wait_timeout(
            &mut self.child,
            TRACE_BOUND,
            "detector trace to exit after SIGINT",
        );
        crate::wait::join_timeout(
            self.out.take().unwrap(),
            TRACE_BOUND,
            "detector trace's stdout to close",
        );
        let lines = std::mem::take(&mut *self.lines.lock().unwrap());
        lines
            .iter()
            .enumerate()
            .map(|(i, l)| {
                let v: Value = serde_json::from_slice(l).unwrap_or_else(|e| {
                    panic!(
                        "trace line {} is not JSON ({e}): {:?}",
                        i + 1,
                        String::from_utf8_lossy(&l[..l.len().min(300)])
                    )
                });
                assert!(v.is_object(), "trace line {} is not an object", i + 1);
                v
            })
            .collect()
    }
}

impl Drop for Trace {
    fn drop(&mut self) {
        if self.out.is_some() {
            self.kill();
        }
    }
}

/// A cgroup v2 directory with odd bytes in its name, removed on drop.
struct OddCgroup(PathBuf);

impl OddCgroup {
    fn create() -> OddCgroup {
        let root = containers::cgroup2_root();
        // Spaces, quotes, a backslash, UTF-8, a control byte, an invalid UTF-8 byte and
        // JSON punctuation (the kernel refuses a newline in a cgroup name: EINVAL); the
        // invalid byte is left out if the kernel refuses it.
        let names: [&[u8]; 2] = [
            b"dtr faults \"q\" 'a' \\ \xc3\xbc\x01\xff{\"j\":1}",
            b"dtr faults \"q\" 'a' \\ \xc3\xbc\x01{\"j\":1}",
        ];
        for name in names {
            let path = root.join(std::ffi::OsStr::from_bytes(name));
            if std::fs::create_dir(&path).is_ok() {
                return OddCgroup(path);
            }
        }
        panic!("cannot create an odd cgroup under {}", root.display());
    }
}

impl Drop for OddCgroup {
    fn drop(&mut self) {
        let root = containers::cgroup2_root().join("cgroup.procs");
        if let Ok(procs) = std::fs::read_to_string(self.0.join("cgroup.procs")) {
            for pid in procs.lines() {
                let _ = std::fs::write(&root, pid);
            }
        }
        for _ in 0..50 {
            if std::fs::remove_dir(&self.0).is_ok() || !self.0.exists() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// The shell script the container runs (raw bytes: invalid UTF-8 and control characters
/// reach argv unchanged).
fn script() -> Vec<u8> {
    let mut s = Vec::new();
    s.extend_from_slice(format!("/probe/{PROBE} \"$@\"\n").as_bytes());
    s.extend_from_slice(format!("/probe/{PROBE} {TAG_PREFIX}utf8 '<").as_bytes());
    s.extend_from_slice(b"\xff\xfe\xc3(\xed\xa0\x80");
    s.extend_from_slice(b">'\n");
    s.extend_from_slice(format!("/probe/{PROBE} {TAG_PREFIX}ctl '<").as_bytes());
    s.extend_from_slice(b"\x01\x02\x1b[31m\r\n\t\x7f\"},{\"injected\":true}");
    s.extend_from_slice(b">'\n");
    s.extend_from_slice(format!("'/probe/{{\"a\":1}}' {TAG_PREFIX}jsonname\n").as_bytes());
    s.extend_from_slice(format!("'/probe/x\ny' {TAG_PREFIX}nlname\n").as_bytes());
    s.extend_from_slice(b"exit 0\n");
    s
}

/// The alert of the hostile rule whose tag (args[1]) is `tag`.
fn alert_for<'a>(docs: &'a [Value], tag: &str) -> &'a Value {
    docs.iter()
        .find(|d| d["rule"]["name"] == HOSTILE_RULE && d["process"]["args"][1] == tag)
        .unwrap_or_else(|| panic!("no alert for {tag}"))
}

fn wait_for(path: &Path, tags: &[String], timeout: Duration) -> Vec<Value> {
    let deadline = Instant::now() + timeout;
    loop {
        let docs = read_ndjson(path);
        let missing: Vec<&String> = tags
            .iter()
            .filter(|t| {
                !docs
                    .iter()
                    .any(|d| d["rule"]["name"] == HOSTILE_RULE && d["process"]["args"][1] == **t)
            })
            .collect();
        if missing.is_empty() {
            return docs;
        }
        assert!(
            Instant::now() < deadline,
            "no alert for {missing:?} in {}",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn hostile_inputs_keep_one_json_object_per_line() {
    if !require(
        "hostile::hostile_inputs_keep_one_json_object_per_line",
        &[Need::Root],
    ) {
        return;
    }
    // A missing runc fails this test everywhere, as it always did (setup installs it).
    if let Some(why) = Need::Tool("runc").missing() {
        panic!("hostile::hostile_inputs_keep_one_json_object_per_line: {why}");
    }
    let _l = harness::lock();
    let s = Setup::new("", "");
    std::fs::write(
        s.rules.join("hostile.toml"),
        harness::rule_toml(
            HOSTILE_RULE,
            "6a1f0c1e-7f55-4f4e-9b8e-0fa17e5f0002",
            &format!(r#"process where event.type == "start" and process.args : "{TAG_PREFIX}*""#),
        ),
    )
    .unwrap();
    // The probe directory bind-mounted into the container.
    let probe_dir = s.dir.path().canonicalize().unwrap().join("probe");
    std::fs::create_dir(&probe_dir).unwrap();
    for name in [PROBE, "{\"a\":1}", "x\ny"] {
        harness::copy_bin("/bin/true", &probe_dir.join(name));
    }
    std::fs::write(probe_dir.join("run.sh"), script()).unwrap();

    let (d, _) = Daemon::start(&s.config, &[]);
    let trace = Trace::start();

    // 1 MiB of argv: 256 arguments of 4 KiB after the tag.
    let big_tag = format!("{TAG_PREFIX}big");
    let filler = "A".repeat(4096);
    let mut args: Vec<&str> = vec!["/bin/sh", "/probe/run.sh", &big_tag];
    args.extend(std::iter::repeat_n(filler.as_str(), 256));
    let id = containers::hex_id();
    let mut c = RuncContainer::new(&args, Some(&format!("/docker/{id}"))).expect("runc bundle");
    let src = probe_dir.display().to_string();
    c.edit_config(|cfg| {
        cfg["mounts"]
            .as_array_mut()
            .unwrap()
            .push(serde_json::json!({
                "destination": "/probe",
                "type": "bind",
                "source": src,
                "options": ["rbind", "ro"],
            }));
    })
    .unwrap();
    let out = c.run().expect("runc run");
    assert!(
        out.status.success(),
        "container script failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    // On the host, in a cgroup with odd bytes in its name.
    let cg = OddCgroup::create();
    let st = crate::wait::status_timeout(
        Command::new("/bin/sh")
            .arg("-c")
            .arg("echo $$ > \"$1/cgroup.procs\" && exec \"$2\" \"$3\"")
            .arg("sh")
            .arg(&cg.0)
            .arg(&s.probe)
            .arg(format!("{TAG_PREFIX}cgroup")),
        crate::wait::TOOL,
        "the probe in the odd cgroup",
    );
    assert!(st.success());

    let want: Vec<String> = ["big", "utf8", "ctl", "jsonname", "nlname", "cgroup"]
        .iter()
        .map(|t| format!("{TAG_PREFIX}{t}"))
        .collect();
    let docs = wait_for(&s.alerts, &want, Duration::from_secs(20));
    // The trace sees the same execs (it reads the same ring events as the daemon, on its
    // own schedule): wait for them, then stop it (every line must parse).
    trace.wait_execs(&want, Duration::from_secs(20));
    let traced = trace.stop();
    let out = d.stop();
    assert!(out.status.success(), "{}", out.stderr_text());
    drop(c);
    drop(cg);

    // 1 MiB of argv: cut, flagged, and far below 1 MiB in the alert.
    let big = alert_for(&docs, &want[0]);
    assert_eq!(
        big["detector"]["process"]["args_truncated"], true,
        "{}",
        &big["detector"]
    );
    let kept: usize = big["process"]["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().len())
        .sum();
    assert!(kept < 1 << 20, "{kept} bytes of argv kept");
    assert_eq!(
        big["container"]["id"], id,
        "the container's exec carries container.id"
    );
    // Invalid UTF-8: still a JSON string, the valid parts kept.
    let utf8 = alert_for(&docs, &want[1])["process"]["args"][2]
        .as_str()
        .unwrap();
    assert!(utf8.starts_with('<') && utf8.ends_with('>'), "{utf8:?}");
    // Control characters and an injection attempt: exactly the bytes, escaped.
    let ctl = alert_for(&docs, &want[2])["process"]["args"][2]
        .as_str()
        .unwrap();
    assert_eq!(
        ctl,
        "<\u{1}\u{2}\u{1b}[31m\r\n\t\u{7f}\"},{\"injected\":true}>"
    );
    // Process names.
    assert_eq!(alert_for(&docs, &want[3])["process"]["name"], "{\"a\":1}");
    assert_eq!(alert_for(&docs, &want[4])["process"]["name"], "x\ny");
    assert!(
        !docs.iter().any(|d| d.get("injected").is_some()),
        "an argument leaked into the document"
    );
    // The same through `detector trace`.
    let in_trace = |tag: &str| {
        traced
            .iter()
            .find(|e| e["event"]["action"] == "exec" && e["process"]["args"][1] == tag)
            .unwrap_or_else(|| panic!("trace lacks the exec of {tag}"))
    };
    assert_eq!(
        in_trace(&want[0])["detector"]["process"]["args_truncated"],
        true
    );
    assert_eq!(in_trace(&want[3])["process"]["name"], "{\"a\":1}");
    assert_eq!(in_trace(&want[4])["process"]["name"], "x\ny");
    assert_eq!(in_trace(&want[2])["process"]["args"][2], ctl);
    // The odd cgroup name reaches the documents as one JSON string.
    let odd_prefix = "dtr faults \"q\" 'a' \\ ü\u{1}";
    let cg_alert = alert_for(&docs, &want[5]);
    let path = cg_alert["detector"]["cgroup"]["path"]
        .as_str()
        .unwrap_or_else(|| panic!("no detector.cgroup.path: {}", cg_alert["detector"]));
    assert!(
        path.starts_with(&format!("/{odd_prefix}")) && path.ends_with("{\"j\":1}"),
        "{path:?}"
    );
    assert_eq!(in_trace(&want[5])["detector"]["cgroup"]["path"], path);
}
