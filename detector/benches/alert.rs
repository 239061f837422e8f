//! Alert building and serialization per alert (criterion).
//!
//! `cargo bench -p detector --bench alert`. The documents are the fully populated test
//! fixtures (every field we can emit), so these are upper bounds for real alerts.

#[path = "../tests/common/ecs_fixture.rs"]
mod ecs_fixture;

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use detector::alert::{AlertTemplate, LineEncoder};

fn alert(c: &mut Criterion) {
    let event = ecs_fixture::full_event();
    let template = AlertTemplate::new(&ecs_fixture::full_rule_meta());
    let alert = template.alert(&event);
    let mut enc = LineEncoder::new();
    let len = enc.encode(&alert).unwrap().len();

    let mut g = c.benchmark_group("alert");
    g.throughput(Throughput::Elements(1));
    g.bench_function("serialize (reused buffer)", |b| {
        b.iter(|| black_box(enc.encode(black_box(&alert)).unwrap().len()))
    });
    g.bench_function("build from event", |b| {
        b.iter(|| black_box(template.alert(black_box(&event))))
    });
    g.bench_function("build + serialize", |b| {
        b.iter(|| {
            let a = template.alert(black_box(&event));
            black_box(enc.encode(&a).unwrap().len())
        })
    });
    g.finish();
    eprintln!("alert line: {len} bytes");
}

criterion_group!(benches, alert);
criterion_main!(benches);
