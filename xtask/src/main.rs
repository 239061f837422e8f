//! Developer and operator tasks for detector:
//! `cargo xtask setup | run | test | bench | dist | fuzz | ecs-fields`.
//!
//! `setup` installs what a fresh machine lacks, idempotently, printing each step;
//! `run` and `test` call it first so the README's two commands work on a fresh clone.

use std::{
    path::{Path, PathBuf},
    process::Command,
};

mod bench;
mod dist;
mod ecs_fields;
mod fuzz;
mod setup_image;
mod test;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};

/// LLVM major version bpf-linker is built against (Debian's `llvm-22-dev`).
const LLVM_MAJOR: u32 = 22;
/// bpf-linker release line that builds with LLVM 22 on our Rust.
const BPF_LINKER_VERSION: &str = "~0.13";
/// Packages the end-to-end tests use (containers, ssh) — required.
const TEST_PACKAGES: &[&str] = &[
    "runc",
    "podman",
    "busybox-static",
    "openssh-client",
    "openssh-server",
    "autossh",
    "logrotate",
    "util-linux",
    "python3-pip",
    // A real Prometheus and node_exporter read the daemon's metrics (tests/prometheus.rs).
    "prometheus",
    "prometheus-node-exporter",
    // libfuzzer-sys compiles libFuzzer when the fuzz targets are checked.
    "g++",
    // Real container engines the engine tests start privately (tests/engines.rs):
    // dockerd (with its own containerd), containerd + ctr, LXC (busybox template),
    // systemd-nspawn, and debootstrap for root filesystems.
    "docker.io",
    "containerd",
    "lxc",
    "systemd-container",
    "debootstrap",
    // Real tools the corpus behaviour tests run (tests/defend_rules*.rs): setcap/getcap,
    // curl, debugfs.
    "libcap2-bin",
    "curl",
    "e2fsprogs",
];
/// PyPI tools the tests use: offline manifest validation (deployment tests), and Elastic's
/// Python EQL engine, the second opinion of the sequence differential test
/// (detector/tests/sequences.rs finds its interpreter through the `eql` command).
const PIP_PACKAGES: &[(&str, &str)] = &[
    ("kubernetes-validate", "kubernetes-validate"),
    ("eql", "eql==1.0.1"),
];
/// Peers for side-by-side measurements — installed when possible, not required.
const PEER_PACKAGES: &[&str] = &["bpftrace", "libbpf-tools"];

#[derive(Parser)]
#[command(name = "xtask", about = "detector developer tasks")]
struct Cli {
    #[command(subcommand)]
    command: Task,
}

#[derive(Subcommand)]
enum Task {
    /// Install missing prerequisites (nightly rust-src, LLVM 22, bpf-linker, test packages).
    Setup,
    /// Set up, build the release daemon, and start it (extra arguments are passed to it).
    Run {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Set up, then run every test of the workspace (as root the privileged ones run too).
    Test {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Build the release binary and package target/dist/detector-<version>-<arch>.tar.gz
    /// (binary, installed config, rules, systemd unit, logrotate policy, INSTALL).
    Dist(dist::DistArgs),
    /// Measure the detector against peers (root): exec storm, cost, detection latency,
    /// start-up, rule scaling; prints a table, writes target/bench/<time>.json.
    Bench(Box<bench::BenchArgs>),
    /// What the credential-change programs cost (root): syscall loops and an exec storm
    /// with nothing, credential_events=false and =true, side by side.
    BenchCred(bench::cred::CredBenchArgs),
    /// Run the cargo-fuzz targets (eql, rule_toml, decode) for N seconds each (nightly;
    /// installs cargo-fuzz when missing; not part of `test`); `--check` only checks that
    /// they build.
    Fuzz(fuzz::FuzzArgs),
    /// Regenerate detector/src/ecs/schema/ecs94.rs (every ECS field's name and type) from
    /// ECS's ecs_flat.yml; `--check` only compares.
    EcsFields(ecs_fields::EcsFieldsArgs),
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let root = workspace_root();
    match cli.command {
        Task::Setup => setup(),
        Task::Run { args } => {
            setup()?;
            run(&root, &args)
        }
        Task::Test { args } => {
            setup()?;
            test(&root, &args)
        }
        Task::Dist(args) => dist::run(&args),
        Task::Bench(args) => bench::run(*args),
        Task::BenchCred(args) => bench::cred::run(&root, &args),
        Task::Fuzz(args) => fuzz::run(&args),
        Task::EcsFields(args) => ecs_fields::run(&root, &args),
    }
}

/// The workspace root (xtask lives in `<root>/xtask`): every task's paths start here.
fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace")
        .to_path_buf()
}

fn step(msg: &str) {
    println!("==> {msg}");
}

/// Whether we run as root (effective uid 0): installing packages, loading BPF programs
/// and starting containers need it.
fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// Runs a command, failing with the command line when it fails.
fn sh(cmd: &mut Command) -> Result<()> {
    println!("    $ {}", show(cmd));
    let status = cmd
        .status()
        .with_context(|| format!("running {}", show(cmd)))?;
    if !status.success() {
        bail!("`{}` failed: {status}", show(cmd));
    }
    Ok(())
}

fn show(cmd: &Command) -> String {
    let mut s: Vec<String> = cmd
        .get_envs()
        .filter_map(|(k, v)| v.map(|v| format!("{}={}", k.display(), v.display())))
        .collect();
    s.push(cmd.get_program().display().to_string());
    s.extend(cmd.get_args().map(|a| a.display().to_string()));
    s.join(" ")
}

fn output(cmd: &mut Command) -> Option<String> {
    let out = cmd.output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

fn setup() -> Result<()> {
    step("checking the nightly toolchain (builds the eBPF programs)");
    let toolchains = output(Command::new("rustup").args(["toolchain", "list"]))
        .context("rustup not found: install it from https://rustup.rs")?;
    if toolchains.lines().any(|l| l.starts_with("nightly")) {
        println!("    nightly: present");
    } else {
        sh(Command::new("rustup").args([
            "toolchain",
            "install",
            "nightly",
            "--profile",
            "minimal",
            "--component",
            "rust-src",
        ]))
        .context("installing the nightly toolchain")?;
    }

    step("checking rust-src for nightly (build-std=core for bpfel-unknown-none)");
    let installed = output(Command::new("rustup").args([
        "component",
        "list",
        "--toolchain",
        "nightly",
        "--installed",
    ]))
    .unwrap_or_default();
    if installed.lines().any(|l| l.starts_with("rust-src")) {
        println!("    rust-src: present");
    } else {
        sh(Command::new("rustup").args([
            "component",
            "add",
            "rust-src",
            "--toolchain",
            "nightly",
        ]))?;
    }

    let llvm = PathBuf::from(format!("/usr/lib/llvm-{LLVM_MAJOR}"));
    step(&format!("checking LLVM {LLVM_MAJOR} development files"));
    let llvm_pkgs = [
        format!("llvm-{LLVM_MAJOR}-dev"),
        format!("libpolly-{LLVM_MAJOR}-dev"),
    ];
    let llvm_refs: Vec<&str> = llvm_pkgs.iter().map(String::as_str).collect();
    apt_ensure(&llvm_refs, true)?;
    if !llvm.join("bin/llvm-config").exists() {
        bail!(
            "{} missing after installing {:?}",
            llvm.join("bin/llvm-config").display(),
            llvm_pkgs
        );
    }

    step("checking bpf-linker");
    if has_bpf_linker() {
        println!("    bpf-linker: present");
    } else {
        let path = format!(
            "{}:{}",
            llvm.join("bin").display(),
            std::env::var("PATH").unwrap_or_default()
        );
        sh(Command::new("cargo")
            .env("PATH", path)
            .env(format!("LLVM_SYS_{LLVM_MAJOR}1_PREFIX"), &llvm)
            .args([
                "install",
                "bpf-linker",
                "--locked",
                "--version",
                BPF_LINKER_VERSION,
                "--no-default-features",
                "--features",
                &format!("llvm-{LLVM_MAJOR}"),
            ]))
        .context("building bpf-linker")?;
    }

    step("checking packages for the end-to-end tests");
    apt_ensure(TEST_PACKAGES, true)?;
    step("checking Python tools for the deployment tests");
    pip_ensure(PIP_PACKAGES)?;
    step("checking peer tools for measurements (optional)");
    apt_ensure(PEER_PACKAGES, false)?;
    setup_image::ensure_base_image()?;
    step("setup complete");
    Ok(())
}

/// Installs missing PyPI tools (command, package) with pip when root; otherwise prints the
/// command to run.
fn pip_ensure(tools: &[(&str, &str)]) -> Result<()> {
    for (cmd, pkg) in tools {
        if output(Command::new(cmd).arg("--help")).is_some() {
            println!("    {cmd}: present");
            continue;
        }
        if !is_root() {
            bail!("{cmd} missing; run as root: python3 -m pip install {pkg}");
        }
        let python = if output(Command::new("python3").args(["-m", "pip", "--version"])).is_some() {
            "python3"
        } else {
            bail!("{cmd} missing and python3 has no pip: apt-get install -y python3-pip");
        };
        // Debian's system Python refuses plain installs (PEP 668) on newer releases.
        let plain = sh(Command::new(python).args(["-m", "pip", "install", "--quiet", pkg]));
        if plain.is_err() {
            sh(Command::new(python).args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--break-system-packages",
                pkg,
            ]))
            .with_context(|| format!("installing {pkg} with pip"))?;
        }
    }
    Ok(())
}

fn has_bpf_linker() -> bool {
    if output(Command::new("bpf-linker").arg("--version")).is_some() {
        return true;
    }
    std::env::var_os("HOME")
        .map(|h| PathBuf::from(h).join(".cargo/bin/bpf-linker").exists())
        .unwrap_or(false)
}

fn dpkg_installed(pkg: &str) -> bool {
    output(Command::new("dpkg-query").args(["-W", "-f=${Status}", pkg]))
        .is_some_and(|s| s.contains("install ok installed"))
}

/// Installs missing Debian packages when root on Debian/Ubuntu; otherwise prints the exact
/// command. `required` packages that cannot be installed fail setup; others only warn.
fn apt_ensure(pkgs: &[&str], required: bool) -> Result<()> {
    if !Path::new("/etc/debian_version").exists() {
        println!(
            "    not a Debian/Ubuntu system: make sure these are installed: {}",
            pkgs.join(" ")
        );
        return Ok(());
    }
    let missing: Vec<&str> = pkgs
        .iter()
        .copied()
        .filter(|p| !dpkg_installed(p))
        .collect();
    if missing.is_empty() {
        println!("    present: {}", pkgs.join(" "));
        return Ok(());
    }
    let cmdline = format!("apt-get install -y {}", missing.join(" "));
    if !is_root() {
        let msg = format!("missing packages; run as root: {cmdline}");
        if required {
            bail!(msg);
        }
        println!("    warning: {msg}");
        return Ok(());
    }
    let install = || {
        sh(Command::new("apt-get")
            .env("DEBIAN_FRONTEND", "noninteractive")
            .args(["install", "-y"])
            .args(&missing))
    };
    let result = install().or_else(|_| {
        sh(Command::new("apt-get").arg("update"))?;
        install()
    });
    match result {
        Ok(()) => Ok(()),
        Err(e) if !required => {
            println!(
                "    warning: could not install {}: {e:#}",
                missing.join(" ")
            );
            Ok(())
        }
        Err(e) => Err(e),
    }
}

/// Cargo's target directory for builds started in `root`: `CARGO_TARGET_DIR` when set
/// (relative to `root`), else `<root>/target`.
fn target_dir(root: &Path) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), |p| root.join(p))
}

fn cargo(root: &Path) -> Command {
    let mut c = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    c.current_dir(root);
    c
}

/// Builds the release daemon (what `dist` ships and `bench` measures) and runs it.
fn run(root: &Path, args: &[String]) -> Result<()> {
    step("building detector (release)");
    sh(cargo(root).args(["build", "--release", "-p", "detector"]))?;
    let bin = target_dir(root).join("release/detector");
    let config = root.join("config/detector.toml");
    // `detector run` (the full pipeline) when this build has it; until then `trace`.
    let has_run = Command::new(&bin)
        .args(["help", "run"])
        .output()
        .is_ok_and(|o| o.status.success());
    let mut cmd = Command::new(&bin);
    if has_run && config.exists() {
        step("starting detector run");
        cmd.arg("run").arg("--config").arg(&config);
    } else {
        step("starting detector trace (Ctrl-C stops it)");
        cmd.arg("trace");
    }
    cmd.args(args);
    sh(&mut cmd)
}

/// The test runner (`test.rs`): every test binary under a ceiling, then a summary with the
/// skipped tests and the number of privileged tests that ran.
fn test(root: &Path, args: &[String]) -> Result<()> {
    if !is_root() {
        println!(
            "    note: not root: the privileged end-to-end tests are listed as skipped \
             (with CI=true they fail)"
        );
    }
    test::run(root, args)
}
