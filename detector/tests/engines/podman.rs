//! Rootful podman (the shared helper in `common/containers.rs`: runc, `--network none`):
//! `podman run` of a container whose entrypoint runs `ssh -V`.

use detector::testsupport::{Need, require};

use crate::containers::{PODMAN_IMAGE, PodmanContainer};
use crate::{Checks, Container, is_hex64, settle};

/// `podman run -d … sh -c 'ssh -V; exec sleep 300'`: one seed-rule alert with the 64-hex
/// id podman reports, the container's name, its image and runtime podman.
#[test]
fn podman_run_alerts_with_podman_metadata() {
    if !require(
        "podman::podman_run_alerts_with_podman_metadata",
        &[Need::Root, Need::Tool("podman"), Need::Tool("runc")],
    ) {
        return;
    }
    let (_config, d) = crate::start_daemon(&Default::default());
    let (guard, id, _pid) =
        PodmanContainer::start(&["/bin/sh", "-c", "/usr/bin/ssh -V; exec sleep 300"]).unwrap();
    assert!(is_hex64(&id), "podman id {id:?}");
    let (image_name, image_tag) = PODMAN_IMAGE.rsplit_once(':').unwrap();
    let want = Container {
        id: id.clone(),
        runtime: "podman",
        name: Some(guard.name.clone()),
        image_name: Some(image_name),
        image_tag: Some(image_tag),
        privileged: None,
    };
    let mut checks = Checks::default();
    let a = crate::wait_alert(&d, &id, "ssh");
    checks.expect(&d, "podman run", a.as_ref(), &want);
    settle(&d);
    let s = d.stop();
    drop(guard);
    assert!(s.status.success(), "daemon exit: {:?}", s.status);
    let got = s.alerts_for(&id);
    checks.check(got.len() == 1, || {
        format!("podman run: {} alerts for {id}, want 1", got.len())
    });
    checks.finish();
}
