//! `cargo xtask setup`, the container-image part: the base image `tests/image.rs` builds the
//! project's Dockerfile on, made offline from Debian's own packages.
//!
//! No registry is reachable from the test machines, so `debian:bookworm-slim` cannot be
//! pulled. `debootstrap --variant=minbase bookworm` from Debian's mirror (the one apt uses)
//! gives the same distribution; its root file system is imported into podman's store as
//! [`BASE_IMAGE`] and the Dockerfile is built with `--build-arg BASE=<that>`. The rootfs
//! tarball is kept at [`BASE_TARBALL`] so a test can re-import it when the image was removed.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, bail};

/// The podman image the Dockerfile is built on here (`--build-arg BASE=…`).
pub const BASE_IMAGE: &str = "localhost/detector-base:bookworm";
/// Where the base's root file system is built and kept.
pub const BASE_DIR: &str = "/var/lib/detector-image";
/// The base's root file system as a tarball (what `podman import` reads).
pub const BASE_TARBALL: &str = "/var/lib/detector-image/bookworm-minbase.tar";
/// Debian's mirror: the one the machine's apt sources name.
const MIRROR: &str = "http://deb.debian.org/debian";

/// Makes the base image when it is missing (root only; otherwise says what to run).
pub fn ensure_base_image() -> Result<()> {
    crate::step(&format!(
        "checking the image base {BASE_IMAGE} (debootstrap)"
    ));
    if !crate::is_root() {
        println!("    not root: skipped (tests/image.rs needs root and this image)");
        return Ok(());
    }
    crate::apt_ensure(&["debootstrap", "podman"], true)?;
    if !Path::new(BASE_TARBALL).is_file() {
        make_tarball().context("making the base root file system")?;
    } else {
        println!("    {BASE_TARBALL}: present");
    }
    let exists = Command::new("podman")
        .args(["image", "exists", BASE_IMAGE])
        .status()
        .is_ok_and(|s| s.success());
    if exists {
        println!("    {BASE_IMAGE}: present");
    } else {
        crate::sh(Command::new("podman").args(["import", BASE_TARBALL, BASE_IMAGE]))?;
    }
    Ok(())
}

/// debootstrap into a scratch directory, trim what an image does not need, tar it.
fn make_tarball() -> Result<()> {
    let scratch = Path::new(BASE_DIR).join("rootfs.tmp");
    if scratch.exists() {
        std::fs::remove_dir_all(&scratch)
            .with_context(|| format!("removing {}", scratch.display()))?;
    }
    std::fs::create_dir_all(BASE_DIR).with_context(|| format!("creating {BASE_DIR}"))?;
    // About 30 s and 150 MB: the Essential packages, no recommends.
    crate::sh(
        Command::new("debootstrap")
            .args(["--variant=minbase", "bookworm"])
            .arg(&scratch)
            .arg(MIRROR),
    )?;
    // What slim images drop too: apt lists, docs, man pages, locales.
    for dir in [
        "var/lib/apt/lists",
        "var/cache/apt",
        "usr/share/doc",
        "usr/share/man",
        "usr/share/locale",
    ] {
        let d = scratch.join(dir);
        if d.exists() {
            std::fs::remove_dir_all(&d).with_context(|| format!("removing {}", d.display()))?;
            std::fs::create_dir_all(&d)?;
        }
    }
    let partial = format!("{BASE_TARBALL}.partial");
    crate::sh(Command::new("tar").arg("-C").arg(&scratch).args([
        "--numeric-owner",
        "-cf",
        &partial,
        ".",
    ]))?;
    std::fs::rename(&partial, BASE_TARBALL).context("moving the base tarball in place")?;
    std::fs::remove_dir_all(&scratch).with_context(|| format!("removing {}", scratch.display()))?;
    if !Path::new(BASE_TARBALL).is_file() {
        bail!("{BASE_TARBALL} missing after debootstrap");
    }
    Ok(())
}
