//! Builds the eBPF programs (`detector-ebpf`) with aya-build and leaves the object in
//! `OUT_DIR/detector` for `include_bytes_aligned!`.
//!
//! With `AYA_BUILD_SKIP=1` (for example a host without nightly or bpf-linker) aya-build
//! builds nothing; we then leave an empty placeholder so the host crates still compile and
//! their unit tests run. The sensor refuses to load an empty object with a clear error.
use std::{env, fs, path::PathBuf};

fn main() -> anyhow::Result<()> {
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let object = out.join("detector");
    // Changes to the wire types change the object too.
    println!("cargo:rerun-if-changed=../detector-common/src");
    let package = aya_build::Package {
        name: "detector-ebpf",
        root_dir: "../detector-ebpf",
        ..Default::default()
    };
    aya_build::build_ebpf([package], aya_build::Toolchain::default())?;
    if !object.exists() {
        fs::write(&object, b"")?;
    }
    Ok(())
}
