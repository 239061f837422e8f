//! Environment filtering per exec (criterion): what `sensor.capture_env_vars` costs the
//! daemon on every exec whose environment the kernel captured.
//!
//! `cargo bench -p detector --bench env`. One typical login-shell environment (31 entries,
//! ~2.3 KiB, `LS_COLORS` among them), filtered with the default list, side by side:
//! - `set`: [`EnvNames::filter`] (names arranged at config load);
//! - `linear`: each entry's name compared with each listed name, as the daemon did first.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use detector::config::DEFAULT_CAPTURE_ENV_VARS;
use detector::process::EnvNames;

fn block() -> Vec<u8> {
    let mut entries: Vec<String> = [
        "SHELL=/bin/bash",
        "PWD=/home/user/src/project",
        "LOGNAME=user",
        "XDG_SESSION_TYPE=tty",
        "MOTD_SHOWN=pam",
        "HOME=/home/user",
        "LANG=en_US.UTF-8",
        "SSH_CONNECTION=10.0.0.2 51234 10.0.0.1 22",
        "LESSCLOSE=/usr/bin/lesspipe %s %s",
        "XDG_SESSION_CLASS=user",
        "TERM=xterm-256color",
        "LESSOPEN=| /usr/bin/lesspipe %s",
        "USER=user",
        "SHLVL=1",
        "XDG_SESSION_ID=4",
        "XDG_RUNTIME_DIR=/run/user/1000",
        "SSH_CLIENT=10.0.0.2 51234 22",
        "XDG_DATA_DIRS=/usr/local/share:/usr/share:/var/lib/snapd/desktop",
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:/usr/games",
        "DBUS_SESSION_BUS_ADDRESS=unix:path=/run/user/1000/bus",
        "SSH_TTY=/dev/pts/0",
        "OLDPWD=/home/user",
        "_=/usr/bin/env",
        "EDITOR=vim",
        "PAGER=less",
        "HISTSIZE=1000",
        "GOPATH=/home/user/go",
        "CARGO_HOME=/home/user/.cargo",
        "MAIL=/var/mail/user",
        "COLORTERM=truecolor",
    ]
    .map(String::from)
    .to_vec();
    let colors: String = (0..120).map(|i| format!("*.e{i:03}=01;31:")).collect();
    entries.insert(3, format!("LS_COLORS={colors}"));
    entries.join("\0").into_bytes()
}

fn linear(block: &[u8], names: &[&str], out: &mut Vec<Vec<u8>>) {
    out.clear();
    for entry in block.split(|&b| b == 0) {
        let Some(eq) = memchr::memchr(b'=', entry) else {
            continue;
        };
        if names.iter().any(|n| n.as_bytes() == &entry[..eq]) {
            out.push(entry.to_vec());
        }
    }
}

fn env_filter(c: &mut Criterion) {
    let block = block();
    let set = EnvNames::new(DEFAULT_CAPTURE_ENV_VARS);
    let (mut a, mut b) = (Vec::new(), Vec::new());
    set.filter(&block, &mut a);
    linear(&block, DEFAULT_CAPTURE_ENV_VARS, &mut b);
    assert_eq!(a, b, "the two filters must agree before they are timed");
    assert_eq!(a.len(), 1, "the block holds one listed variable (HISTSIZE)");
    let mut g = c.benchmark_group("env_filter");
    g.throughput(Throughput::Elements(1));
    g.bench_function("set", |bch| {
        bch.iter(|| set.filter(black_box(&block), &mut a))
    });
    g.bench_function("linear", |bch| {
        bch.iter(|| linear(black_box(&block), DEFAULT_CAPTURE_ENV_VARS, &mut b))
    });
    g.finish();
}

criterion_group!(benches, env_filter);
criterion_main!(benches);
