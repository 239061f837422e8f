//! A private containerd driven by its own CLI, `ctr run`: the task's cgroup is
//! `/<namespace>/<id>` (`/default/<name>`, `/k8s.io/<64hex>`), which no cgroup name
//! pattern can tell from a host service; only containerd's own state says it is a
//! container (issue 11).

use detector::testsupport::{Need, require};

use crate::containers::hex_id;
use crate::engines::containerd::{self, Containerd};
use crate::{Checks, Container, assert_ssh_ran, settle, unique};

fn needs() -> [Need; 3] {
    [Need::Root, Need::Tool("containerd"), Need::Tool("ctr")]
}

/// `ctr -n NS run --rm FLAGS IMAGE ID ssh -V` under a running daemon: one seed-rule alert
/// with container.id = ID and runtime containerd. The image is checked when the task's own
/// state names it (`cri`: the annotations a CRI client writes into the OCI spec); a plain
/// `ctr run` records its image only in containerd's metadata database, which the daemon
/// does not read, so there it is not asked for.
fn ctr_run_alerts(ns: &str, id: &str, cri: bool) {
    let ctrd = Containerd::start().unwrap();
    ctrd.import(ns).unwrap();
    let (_config, d) = crate::start_daemon(&ctrd.state_roots());
    let image_annotation = format!(
        "io.kubernetes.cri.image-name={}:{}",
        containerd::IMAGE_NAME,
        containerd::IMAGE_TAG
    );
    let flags: Vec<&str> = if cri {
        vec![
            "--annotation",
            "io.kubernetes.cri.container-type=container",
            "--annotation",
            "io.kubernetes.cri.sandbox-name=web-7d9",
            "--annotation",
            "io.kubernetes.cri.sandbox-namespace=shop",
            "--annotation",
            &image_annotation,
        ]
    } else {
        Vec::new()
    };
    let out = ctrd
        .run_with(ns, id, &flags, &["/usr/bin/ssh", "-V"])
        .unwrap();
    assert_ssh_ran(&format!("ctr -n {ns} run"), &out);
    let want = Container {
        id: id.to_string(),
        runtime: "containerd",
        // A `ctr` container has no name besides its id.
        name: None,
        image_name: cri.then_some(containerd::IMAGE_NAME),
        image_tag: cri.then_some(containerd::IMAGE_TAG),
        privileged: None,
    };
    let mut checks = Checks::default();
    let a = crate::wait_alert(&d, id, "ssh");
    let scenario = format!("ctr run in namespace {ns}");
    checks.expect(&d, &scenario, a.as_ref(), &want);
    if cri && let Some(a) = &a {
        checks.check(
            a["orchestrator"]["namespace"] == "shop"
                && a["orchestrator"]["resource"]["name"] == "web-7d9",
            || format!("{scenario}: orchestrator.* = {}", a["orchestrator"]),
        );
    }
    settle(&d);
    let s = d.stop();
    assert!(s.status.success(), "daemon exit: {:?}", s.status);
    let got = s.alerts_for(id);
    checks.check(got.len() == 1, || {
        format!("{scenario}: {} alerts for {id}, want 1", got.len())
    });
    checks.finish();
}

/// Namespace `default`, a named container (`/default/<name>`).
#[test]
fn ctr_run_default_namespace_named_container() {
    if !require("ctr::ctr_run_default_namespace_named_container", &needs()) {
        return;
    }
    ctr_run_alerts("default", &unique("ctr"), false);
}

/// Namespace `k8s.io` (where CRI puts Kubernetes containers), a 64-hex id
/// (`/k8s.io/<id>`).
#[test]
fn ctr_run_k8s_io_namespace_hex_id() {
    if !require("ctr::ctr_run_k8s_io_namespace_hex_id", &needs()) {
        return;
    }
    ctr_run_alerts("k8s.io", &hex_id(), true);
}
