//! Offline images of the shared test rootfs ([`crate::containers::rootfs`]: busybox-static,
//! ssh, sshd, autossh and their libraries): a plain tarball for `docker import`, and an OCI
//! image archive for `ctr images import` (containerd has no `import` from a bare tree).
//! Both are built once per machine under the temp dir (keyed by a version stamp, written to a
//! private name and renamed into place, so concurrent test binaries never see half a file).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use sha2::{Digest, Sha256};

use crate::wait;

/// Bump when the archive layout changes.
const VERSION: &str = "v1";

/// The image reference the OCI archive carries (what `ctr images ls` shows).
pub const OCI_REF: &str = "docker.io/local/sshbox:1";

/// The rootfs as an uncompressed tarball (`.complete` marker left out).
pub fn rootfs_tar() -> Result<PathBuf, String> {
    static TAR: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    TAR.get_or_init(|| {
        let dest = std::env::temp_dir().join(format!("detector-test-rootfs-{VERSION}.tar"));
        cached(&dest, |tmp| {
            let root = crate::containers::rootfs()?;
            super::run(
                Command::new("tar")
                    .arg("-C")
                    .arg(&root)
                    .arg("--exclude=./.complete")
                    .arg("-cf")
                    .arg(tmp)
                    .arg("."),
                wait::TOOL,
            )
            .map(drop)
        })
    })
    .clone()
}

/// The rootfs as an OCI image archive (one uncompressed layer) named [`OCI_REF`].
pub fn oci_archive() -> Result<PathBuf, String> {
    static OCI: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    OCI.get_or_init(|| {
        let dest = std::env::temp_dir().join(format!("detector-test-oci-{VERSION}.tar"));
        cached(&dest, build_oci)
    })
    .clone()
}

/// `dest` if it exists, else built by `build` into a private temporary name and renamed.
fn cached(dest: &Path, build: impl FnOnce(&Path) -> Result<(), String>) -> Result<PathBuf, String> {
    if dest.exists() {
        return Ok(dest.to_path_buf());
    }
    let tmp = dest.with_extension(format!("tmp.{}", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    if let Err(e) = build(&tmp) {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    std::fs::rename(&tmp, dest).map_err(|e| format!("rename to {}: {e}", dest.display()))?;
    Ok(dest.to_path_buf())
}

/// Writes `bytes` as a content-addressed blob; returns (`sha256:<hex>`, size).
fn blob(dir: &Path, bytes: &[u8]) -> Result<(String, usize), String> {
    let hex: String = Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    std::fs::write(dir.join("blobs/sha256").join(&hex), bytes).map_err(|e| e.to_string())?;
    Ok((format!("sha256:{hex}"), bytes.len()))
}

/// An OCI image layout (`oci-layout`, `index.json`, `blobs/sha256/…`) tarred into `out`.
fn build_oci(out: &Path) -> Result<(), String> {
    let layer = std::fs::read(rootfs_tar()?).map_err(|e| e.to_string())?;
    let dir = tempfile::Builder::new()
        .prefix("detector-oci-")
        .tempdir()
        .map_err(|e| e.to_string())?;
    std::fs::create_dir_all(dir.path().join("blobs/sha256")).map_err(|e| e.to_string())?;
    let (layer_digest, layer_size) = blob(dir.path(), &layer)?;
    let config = serde_json::json!({
        "architecture": std::env::consts::ARCH.replace("x86_64", "amd64").replace("aarch64", "arm64"),
        "os": "linux",
        "config": {},
        "rootfs": {"type": "layers", "diff_ids": [layer_digest]},
    });
    let (config_digest, config_size) = blob(dir.path(), config.to_string().as_bytes())?;
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": config_digest,
            "size": config_size,
        },
        "layers": [{
            "mediaType": "application/vnd.oci.image.layer.v1.tar",
            "digest": layer_digest,
            "size": layer_size,
        }],
    });
    let (manifest_digest, manifest_size) = blob(dir.path(), manifest.to_string().as_bytes())?;
    let tag = OCI_REF.rsplit(':').next().unwrap_or("latest");
    let index = serde_json::json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": manifest_digest,
            "size": manifest_size,
            "annotations": {
                "io.containerd.image.name": OCI_REF,
                "org.opencontainers.image.ref.name": tag,
            },
        }],
    });
    std::fs::write(dir.path().join("index.json"), index.to_string()).map_err(|e| e.to_string())?;
    std::fs::write(
        dir.path().join("oci-layout"),
        r#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .map_err(|e| e.to_string())?;
    super::run(
        Command::new("tar")
            .arg("-C")
            .arg(dir.path())
            .arg("-cf")
            .arg(out)
            .args(["oci-layout", "index.json", "blobs"]),
        wait::TOOL,
    )
    .map(drop)
}
