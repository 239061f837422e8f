//! Each engine helper tears down completely, also with a container still running: no mount,
//! process or directory of the engine is left, and the container's cgroup is gone. Prints
//! the set-up and tear-down times (`engines: …` lines; run with `--nocapture`).

use std::path::Path;
use std::time::{Duration, Instant};

use detector::testsupport::{Need, require};

use crate::containers::{cgroup2_root, hex_id};
use crate::engines::{
    containerd::Containerd, docker::Dockerd, leaks, lxc::LxcContainer, nspawn::Nspawn,
};
use crate::{unique, wait};

/// The cgroup v2 directory `rel` is gone (bounded: the engine removes it as the container
/// ends).
fn gone(rel: &str) -> bool {
    let p = cgroup2_root().join(rel.trim_start_matches('/'));
    wait::try_until(Duration::from_secs(10), Duration::from_millis(20), || {
        (!p.exists()).then_some(())
    })
    .is_some()
}

fn assert_clean(what: &str, root: &Path, took: Duration) {
    eprintln!(
        "engines: {what} stop (with a running container) in {} ms",
        took.as_millis()
    );
    let left = leaks(root);
    assert!(left.is_empty(), "{what} left: {left:#?}");
}

#[test]
fn engines_tear_down_completely() {
    if !require(
        "teardown::engines_tear_down_completely",
        &[
            Need::Root,
            Need::Tool("dockerd"),
            Need::Tool("docker"),
            Need::Tool("containerd"),
            Need::Tool("ctr"),
            Need::Tool("lxc-create"),
            Need::Tool("systemd-nspawn"),
        ],
    ) {
        return;
    }
    let _serial = wait::serial();

    let dockerd = Dockerd::start().unwrap();
    dockerd.import().unwrap();
    let name = unique("td");
    let id = dockerd
        .run_detached(&name, &[], &["/bin/sleep", "300"])
        .unwrap();
    let root = dockerd.root().to_path_buf();
    let took = dockerd.stop();
    assert_clean("dockerd", &root, took);
    assert!(gone(&format!("docker/{id}")), "/docker/{id} left");

    let ctrd = Containerd::start().unwrap();
    ctrd.import("k8s.io").unwrap();
    let id = hex_id();
    ctrd.run_detached("k8s.io", &id, &["/bin/sleep", "300"])
        .unwrap();
    let root = ctrd.root().to_path_buf();
    let took = ctrd.stop();
    assert_clean("containerd", &root, took);
    assert!(gone(&format!("k8s.io/{id}")), "/k8s.io/{id} left");

    let c = LxcContainer::create(None).unwrap();
    let init = c.start().unwrap();
    let name = c.name.clone();
    let dir = c.dir();
    let took = c.destroy();
    eprintln!(
        "engines: lxc stop+destroy (running) in {} ms",
        took.as_millis()
    );
    assert!(!dir.exists(), "{} left", dir.display());
    assert!(
        gone(&format!("lxc.payload.{name}")),
        "lxc.payload.{name} left"
    );
    assert!(
        wait::proc_state(init).is_none_or(|s| s == 'Z'),
        "LXC init {init} left"
    );

    let m = Nspawn::new().unwrap();
    let scope = m.scope.clone();
    m.run(&["/bin/true"]).unwrap();
    let t = Instant::now();
    drop(m);
    eprintln!("engines: nspawn cleanup in {} ms", t.elapsed().as_millis());
    assert!(gone(&scope), "{scope} left");
}
