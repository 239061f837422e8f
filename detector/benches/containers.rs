//! Container resolution per event (criterion): what the process model pays to attribute an
//! event to its container from the kernel's whole cgroup path.
//!
//! `cargo bench -p detector --bench containers`.
//! - `hit`: the cgroup id is cached (every event after a cgroup's first): one hash lookup,
//!   whatever the path's depth.
//! - `miss/*`: a cgroup seen for the first time: the whole path parsed (no enrichment, no
//!   runtime lookup), for a short host path, a kubepods systemd path, and a process deep
//!   below its container.
//! - `parse/*`: the pattern match alone.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use detector::container::{ContainerResolver, from_path};

const ID: &str = "3f1c9b5e2a7d4c8b9e0f1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f";

fn paths() -> Vec<(&'static str, String)> {
    vec![
        (
            "host",
            "/user.slice/user-0.slice/session-3.scope".to_string(),
        ),
        (
            "kubepods",
            format!(
                "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod6a0f9c3e_1b2d_4e5f_8a9b_0c1d2e3f4a5b.slice/cri-containerd-{ID}.scope"
            ),
        ),
        (
            "deep",
            format!("/system.slice/docker-{ID}.scope/system.slice/a/b/c/d/e/f.service"),
        ),
    ]
}

fn containers(c: &mut Criterion) {
    let mut g = c.benchmark_group("containers");
    g.throughput(Throughput::Elements(1));
    let kube = paths()[1].1.clone();
    let mut r = ContainerResolver::new(8192, None);
    r.resolve(7, kube.as_bytes());
    g.bench_function("hit", |b| {
        b.iter(|| black_box(r.resolve(black_box(7), black_box(kube.as_bytes()))))
    });
    for (name, path) in paths() {
        // A fresh id every iteration: always a miss (the cache stays bounded by evicting).
        let mut r = ContainerResolver::new(1024, None);
        let mut id = 100u64;
        g.bench_function(format!("miss/{name}"), |b| {
            b.iter(|| {
                id += 1;
                black_box(r.resolve(id, black_box(path.as_bytes())))
            })
        });
        g.bench_function(format!("parse/{name}"), |b| {
            b.iter(|| black_box(from_path(black_box(path.as_bytes()))))
        });
    }
    g.finish();
}

criterion_group!(benches, containers);
criterion_main!(benches);
