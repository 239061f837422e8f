//! `cargo xtask dist`: the release tarball a host installs from (and the Dockerfile unpacks).
//!
//! Layout of `target/dist/detector-<version>-<arch>.tar.gz` (one top directory):
//!
//! ```text
//! detector-<version>-<arch>/
//!   bin/detector                          the daemon (release build, eBPF object embedded)
//!   etc/detector/detector.toml            config/detector.toml with install paths
//!   etc/detector/rules/*.toml             config/rules/*.toml (+ their LICENSE/NOTICE files)
//!   etc/logrotate.d/detector              config/logrotate/detector
//!   lib/systemd/system/detector.service   config/systemd/detector.service
//!   INSTALL                               the install steps
//! ```
//!
//! Building and staging are separate so the layout is tested without a release build:
//! [`stage`] takes the binary's path.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail, ensure};
use toml_edit::{Array, DocumentMut, Item, Table, value};

/// Options of `cargo xtask dist`.
#[derive(Debug, clap::Args)]
pub struct DistArgs {
    /// Package this binary instead of building `target/release/detector`.
    #[arg(long, value_name = "PATH")]
    pub binary: Option<PathBuf>,
    /// Where to write the tarball (default: target/dist).
    #[arg(long, value_name = "DIR")]
    pub out_dir: Option<PathBuf>,
}

/// Where the installed daemon writes alerts (matches the unit's LogsDirectory=).
pub const INSTALLED_ALERTS: &str = "/var/log/detector/alerts.ndjson";
/// Where the installed rules live.
pub const INSTALLED_RULES: &str = "/etc/detector/rules";

/// The package's directory name: `detector-<version>-<arch>`.
pub fn package_name() -> String {
    format!(
        "detector-{}-{}",
        env!("CARGO_PKG_VERSION"),
        std::env::consts::ARCH
    )
}

/// Entry point of `cargo xtask dist`.
pub fn run(args: &DistArgs) -> Result<()> {
    let tarball = build(args)?;
    println!("{}", tarball.display());
    Ok(())
}

/// Builds (unless `args.binary`) and packages; returns the tarball's path. `cargo xtask
/// test` calls it too: tests/image.rs builds the container image from this tarball.
pub fn build(args: &DistArgs) -> Result<PathBuf> {
    let root = crate::workspace_root();
    let target = crate::target_dir(&root);
    let binary = match &args.binary {
        Some(b) => b.clone(),
        None => {
            let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
            let status = Command::new(cargo)
                .args(["build", "--release", "--locked", "-p", "detector"])
                .current_dir(&root)
                .status()
                .context("running cargo build --release")?;
            ensure!(status.success(), "cargo build --release failed ({status})");
            target.join("release/detector")
        }
    };
    let out_dir = args.out_dir.clone().unwrap_or_else(|| target.join("dist"));
    let name = package_name();
    let stage_dir = out_dir.join(&name);
    if stage_dir.exists() {
        fs::remove_dir_all(&stage_dir)
            .with_context(|| format!("removing old staging {}", stage_dir.display()))?;
    }
    stage(&root.join("config"), &binary, &stage_dir)?;
    let tarball = out_dir.join(format!("{name}.tar.gz"));
    make_tarball(&stage_dir, &tarball)?;
    Ok(tarball)
}

fn copy(from: &Path, to: &Path, mode: u32) -> Result<()> {
    if let Some(dir) = to.parent() {
        fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    fs::copy(from, to)
        .with_context(|| format!("copying {} to {}", from.display(), to.display()))?;
    fs::set_permissions(to, fs::Permissions::from_mode(mode))
        .with_context(|| format!("chmod {}", to.display()))
}

fn write(to: &Path, text: &str, mode: u32) -> Result<()> {
    if let Some(dir) = to.parent() {
        fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    fs::write(to, text).with_context(|| format!("writing {}", to.display()))?;
    fs::set_permissions(to, fs::Permissions::from_mode(mode))
        .with_context(|| format!("chmod {}", to.display()))
}

/// Stages the package tree under `stage_dir` from the source `config_dir` (the repository's
/// `config/`) and the daemon `binary`. Fails when there is no rule to ship: a package
/// that alerts on nothing must not be produced silently.
pub fn stage(config_dir: &Path, binary: &Path, stage_dir: &Path) -> Result<()> {
    ensure!(
        binary.is_file(),
        "binary {} does not exist (build it, or pass --binary)",
        binary.display()
    );
    copy(binary, &stage_dir.join("bin/detector"), 0o755)?;

    let config_src = config_dir.join("detector.toml");
    let text = fs::read_to_string(&config_src)
        .with_context(|| format!("reading {}", config_src.display()))?;
    let installed = install_config(&text)
        .with_context(|| format!("adapting {} for install", config_src.display()))?;
    write(
        &stage_dir.join("etc/detector/detector.toml"),
        &installed,
        0o644,
    )?;

    let rules_src = config_dir.join("rules");
    let mut rules = 0;
    let mut entries: Vec<_> = fs::read_dir(&rules_src)
        .with_context(|| format!("reading {}", rules_src.display()))?
        .collect::<Result<_, _>>()?;
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let name = e.file_name();
        let name_s = name.to_string_lossy();
        let is_rule = name_s.ends_with(".toml");
        // The rules' licence texts travel with them (Elastic License 2.0 requires it).
        let is_notice = name_s.starts_with("LICENSE") || name_s.starts_with("NOTICE");
        if e.file_type()?.is_file() && (is_rule || is_notice) {
            copy(
                &e.path(),
                &stage_dir.join("etc/detector/rules").join(&name),
                0o644,
            )?;
            rules += usize::from(is_rule);
        }
    }
    if rules == 0 {
        bail!(
            "{} holds no rule (*.toml): the package would detect nothing (see {}/README.md)",
            rules_src.display(),
            rules_src.display()
        );
    }

    copy(
        &config_dir.join("systemd/detector.service"),
        &stage_dir.join("lib/systemd/system/detector.service"),
        0o644,
    )?;
    copy(
        &config_dir.join("logrotate/detector"),
        &stage_dir.join("etc/logrotate.d/detector"),
        0o644,
    )?;
    write(&stage_dir.join("INSTALL"), &install_text(), 0o644)?;
    Ok(())
}

/// The table `name` of `parent`; an error when the shipped file lacks it.
fn table_mut<'a>(parent: &'a mut Table, name: &str) -> Result<&'a mut Table> {
    parent
        .get_mut(name)
        .and_then(Item::as_table_mut)
        .with_context(|| format!("the shipped config has no [{name}] table"))
}

/// The shipped config adapted for an installed host: absolute rule directory, alerts to
/// `/var/log/detector/alerts.ndjson`, and no alerts on stdout (that is the journal under
/// systemd). Edited as a TOML document, so comments and layout are kept and the installed
/// file documents itself. Each edited key must hold its shipped value (rules in `rules`,
/// alerts on stdout, no alert file): anything else means the shipped file changed and the
/// adaptation must be revisited.
pub fn install_config(text: &str) -> Result<String> {
    let mut doc: DocumentMut = text
        .parse()
        .context("the shipped config is not valid TOML")?;

    let rules = table_mut(doc.as_table_mut(), "rules")?;
    let paths = rules.get("paths").and_then(Item::as_array).map(|a| {
        a.iter()
            .map(|v| v.as_str().map(str::to_owned))
            .collect::<Vec<_>>()
    });
    ensure!(
        paths == Some(vec![Some("rules".to_owned())]),
        "expected `paths = [\"rules\"]` in [rules] of the shipped config, found {}",
        shown(rules.get("paths"))
    );
    rules["paths"] = value(Array::from_iter([INSTALLED_RULES]));

    let sinks = table_mut(doc.as_table_mut(), "sinks")?;
    ensure!(
        sinks.get("stdout").and_then(Item::as_bool) == Some(true),
        "expected `stdout = true` in [sinks] of the shipped config, found {}",
        shown(sinks.get("stdout"))
    );
    sinks["stdout"] = value(false);

    let file = table_mut(sinks, "file")?;
    ensure!(
        file.get("path").is_none(),
        "expected no `path` in [sinks.file] of the shipped config, found {}",
        shown(file.get("path"))
    );
    set_alerts_path(file);

    let text = doc.to_string();
    // Check the result means what we meant (a fresh parse).
    let v: toml::Table = text.parse().context("adapted config is not valid TOML")?;
    let get = |t: &str, k: &str| v.get(t).and_then(|t| t.get(k)).cloned();
    ensure!(
        get("rules", "paths") == Some(toml::Value::Array(vec![INSTALLED_RULES.into()]))
            && get("sinks", "stdout") == Some(false.into())
            && v.get("sinks")
                .and_then(|s| s.get("file"))
                .and_then(|f| f.get("path"))
                == Some(&toml::Value::from(INSTALLED_ALERTS)),
        "adapted config does not set rules.paths, sinks.stdout and sinks.file.path as intended"
    );
    Ok(text)
}

/// How a shipped value looks in an error message.
fn shown(item: Option<&Item>) -> String {
    item.map_or_else(
        || "nothing".to_owned(),
        |i| format!("`{}`", i.to_string().trim()),
    )
}

/// Sets `path` in `[sinks.file]` to the installed alert file. The shipped file documents
/// it as a comment (`# path = "…"`) above the table's first key: the setting takes that
/// line's place, under the text that explains it. Without the comment it is appended.
fn set_alerts_path(file: &mut Table) {
    let commented = format!("# path = \"{INSTALLED_ALERTS}\"");
    let first = file.iter().next().map(|(k, _)| k.to_owned());
    file.insert("path", value(INSTALLED_ALERTS));
    let Some(first) = first else {
        return;
    };
    let Some(mut first_key) = file.key_mut(&first) else {
        return;
    };
    let comments = first_key
        .leaf_decor()
        .prefix()
        .and_then(|p| p.as_str())
        .unwrap_or_default()
        .to_owned();
    let lines: Vec<&str> = comments.split_inclusive('\n').collect();
    let Some(at) = lines.iter().position(|l| l.trim() == commented) else {
        return;
    };
    first_key
        .leaf_decor_mut()
        .set_prefix(lines[at + 1..].concat());
    if let Some(mut path_key) = file.key_mut("path") {
        path_key.leaf_decor_mut().set_prefix(lines[..at].concat());
    }
    // Stable: only `path` moves, to the front.
    file.sort_values_by(|a, _, b, _| (a.get() != "path").cmp(&(b.get() != "path")));
}

fn install_text() -> String {
    let name = package_name();
    format!(
        r#"{name}: install on a systemd host
============================================================

Requirements: Linux >= 5.8 with BTF (/sys/kernel/btf/vmlinux must exist), systemd, root.

1. Unpack and install the files (keep an existing /etc/detector/detector.toml if you
   changed it):

     tar -xzf {name}.tar.gz
     cd {name}
     install -m 0755 bin/detector /usr/local/bin/detector
     install -d -m 0755 /etc/detector /etc/detector/rules
     install -m 0644 etc/detector/detector.toml /etc/detector/detector.toml
     install -m 0644 etc/detector/rules/* /etc/detector/rules/
     install -m 0644 lib/systemd/system/detector.service /etc/systemd/system/detector.service
     install -m 0644 etc/logrotate.d/detector /etc/logrotate.d/detector

2. Check the configuration and rules in the foreground (Ctrl-C stops it):

     /usr/local/bin/detector run --config /etc/detector/detector.toml --stdout

3. Start the service:

     systemctl daemon-reload
     systemctl enable --now detector.service
     systemctl status detector.service
     journalctl -u detector.service        # the daemon's log and periodic stats

Alerts (one ECS JSON document per line) are appended to {INSTALLED_ALERTS}
(mode 0600/0640, root). Ship them with Filebeat, Elastic Agent or Vector tailing that file.

Configuration: /etc/detector/detector.toml (every key documented in the file). Rules:
/etc/detector/rules/*.toml (Elastic detection-rules files, unmodified). After a change:

     systemctl reload detector.service     # SIGHUP: atomic reload; a bad set is refused

logrotate rotates the alert file daily or at 100 MB (/etc/logrotate.d/detector) and
signals the daemon to reopen it.

Uninstall:

     systemctl disable --now detector.service
     rm /etc/systemd/system/detector.service /etc/logrotate.d/detector /usr/local/bin/detector
     rm -r /etc/detector                   # and /var/log/detector if the alerts can go
     systemctl daemon-reload
"#
    )
}

/// Packs `stage_dir` (its name becomes the top directory) into a gzip tarball with root
/// ownership and sorted names, so the archive depends only on its content and the time
/// given by `SOURCE_DATE_EPOCH` (default: now).
pub fn make_tarball(stage_dir: &Path, tarball: &Path) -> Result<()> {
    let parent = stage_dir.parent().context("staging dir has no parent")?;
    let name = stage_dir.file_name().context("staging dir has no name")?;
    if let Some(dir) = tarball.parent() {
        fs::create_dir_all(dir)?;
    }
    let mut cmd = Command::new("tar");
    cmd.args(["--sort=name", "--owner=0", "--group=0", "--numeric-owner"]);
    if let Ok(epoch) = std::env::var("SOURCE_DATE_EPOCH") {
        cmd.arg(format!("--mtime=@{epoch}"));
    }
    cmd.arg("-czf").arg(tarball).arg("-C").arg(parent).arg(name);
    let status = cmd.status().context("running tar")?;
    ensure!(status.success(), "tar failed ({status})");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo_config() -> PathBuf {
        crate::workspace_root().join("config")
    }

    /// A copy of the repository's config/ with a stand-in rule and licence file, so the
    /// test does not depend on which rule files are checked in.
    fn source_tree(dir: &Path) -> PathBuf {
        let cfg = dir.join("config");
        for f in [
            "detector.toml",
            "systemd/detector.service",
            "logrotate/detector",
        ] {
            copy(&repo_config().join(f), &cfg.join(f), 0o644).unwrap();
        }
        write(
            &cfg.join("rules/test_rule.toml"),
            "[rule]\nname = \"t\"\n",
            0o600,
        )
        .unwrap();
        write(&cfg.join("rules/LICENSE.txt"), "licence\n", 0o600).unwrap();
        write(&cfg.join("rules/README.md"), "how to get rules\n", 0o644).unwrap();
        cfg
    }

    fn listing(root: &Path) -> Vec<(String, u32)> {
        fn walk(root: &Path, dir: &Path, out: &mut Vec<(String, u32)>) {
            for e in fs::read_dir(dir).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    walk(root, &p, out);
                } else {
                    let mode = fs::metadata(&p).unwrap().permissions().mode() & 0o7777;
                    let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
                    out.push((rel, mode));
                }
            }
        }
        let mut out = Vec::new();
        walk(root, root, &mut out);
        out.sort();
        out
    }

    #[test]
    fn staging_has_the_documented_layout() {
        let tmp = tempfile::tempdir().unwrap();
        let cfg = source_tree(tmp.path());
        let bin = tmp.path().join("detector-bin");
        write(&bin, "\x7fELF stand-in", 0o700).unwrap();
        let stage_dir = tmp.path().join("out").join(package_name());
        stage(&cfg, &bin, &stage_dir).unwrap();

        let expected: Vec<(String, u32)> = [
            ("INSTALL", 0o644),
            ("bin/detector", 0o755),
            ("etc/detector/detector.toml", 0o644),
            ("etc/detector/rules/LICENSE.txt", 0o644),
            ("etc/detector/rules/test_rule.toml", 0o644),
            ("etc/logrotate.d/detector", 0o644),
            ("lib/systemd/system/detector.service", 0o644),
        ]
        .iter()
        .map(|(p, m)| (p.to_string(), *m))
        .collect();
        assert_eq!(listing(&stage_dir), expected);

        let read = |p: &str| fs::read_to_string(stage_dir.join(p)).unwrap();
        assert_eq!(read("bin/detector"), "\x7fELF stand-in");
        assert_eq!(
            read("lib/systemd/system/detector.service"),
            fs::read_to_string(repo_config().join("systemd/detector.service")).unwrap()
        );
        assert_eq!(
            read("etc/logrotate.d/detector"),
            fs::read_to_string(repo_config().join("logrotate/detector")).unwrap()
        );
        let installed: toml::Table = read("etc/detector/detector.toml").parse().unwrap();
        assert_eq!(
            installed["sinks"]["file"]["path"].as_str(),
            Some(INSTALLED_ALERTS)
        );
        assert_eq!(installed["sinks"]["stdout"].as_bool(), Some(false));
        assert_eq!(
            installed["rules"]["paths"][0].as_str(),
            Some(INSTALLED_RULES)
        );
        // The unit starts the binary where INSTALL puts it, with the installed config.
        let unit = read("lib/systemd/system/detector.service");
        assert!(unit.contains(
            "\nExecStart=/usr/local/bin/detector run --config /etc/detector/detector.toml\n"
        ));
        assert!(read("INSTALL").contains("install -m 0755 bin/detector /usr/local/bin/detector"));
        assert!(read("etc/logrotate.d/detector").contains(INSTALLED_ALERTS));
    }

    #[test]
    fn tarball_has_one_top_directory_owned_by_root() {
        let tmp = tempfile::tempdir().unwrap();
        let cfg = source_tree(tmp.path());
        let bin = tmp.path().join("detector-bin");
        write(&bin, "bin", 0o755).unwrap();
        let stage_dir = tmp.path().join("out").join(package_name());
        stage(&cfg, &bin, &stage_dir).unwrap();
        let tarball = tmp.path().join("out/p.tar.gz");
        make_tarball(&stage_dir, &tarball).unwrap();
        let out = Command::new("tar")
            .args(["-tvzf"])
            .arg(&tarball)
            .output()
            .unwrap();
        assert!(out.status.success());
        let text = String::from_utf8(out.stdout).unwrap();
        let name = package_name();
        assert!(text.contains(&format!(" {name}/bin/detector\n")), "{text}");
        for line in text.lines() {
            assert!(line.contains(" 0/0 "), "not root-owned: {line}");
            let path = line.split_whitespace().last().unwrap();
            assert!(path.starts_with(&format!("{name}/")), "{line}");
        }
    }

    #[test]
    fn staging_refuses_a_package_without_rules() {
        let tmp = tempfile::tempdir().unwrap();
        let cfg = source_tree(tmp.path());
        fs::remove_file(cfg.join("rules/test_rule.toml")).unwrap();
        let bin = tmp.path().join("b");
        write(&bin, "b", 0o755).unwrap();
        let err = stage(&cfg, &bin, &tmp.path().join("s")).unwrap_err();
        assert!(format!("{err:#}").contains("holds no rule"), "{err:#}");
    }

    #[test]
    fn staging_refuses_a_missing_binary() {
        let tmp = tempfile::tempdir().unwrap();
        let cfg = source_tree(tmp.path());
        let err = stage(&cfg, &tmp.path().join("nope"), &tmp.path().join("s")).unwrap_err();
        assert!(err.to_string().contains("does not exist"), "{err:#}");
    }

    #[test]
    fn install_config_refuses_a_changed_shipped_file() {
        let shipped = fs::read_to_string(repo_config().join("detector.toml")).unwrap();
        install_config(&shipped).unwrap();
        let changed = shipped.replace("stdout = true", "stdout = false");
        let err = install_config(&changed).unwrap_err();
        assert!(err.to_string().contains("stdout = true"), "{err:#}");
        let changed = shipped.replace(r#"paths = ["rules"]"#, r#"paths = ["rules", "more"]"#);
        let err = install_config(&changed).unwrap_err();
        assert!(err.to_string().contains(r#"paths = ["rules"]"#), "{err:#}");
        let changed = shipped.replace("[sinks.file]\n", "[sinks.file]\npath = \"x\"\n");
        let err = install_config(&changed).unwrap_err();
        assert!(err.to_string().contains("no `path`"), "{err:#}");
    }

    /// The installed file is the shipped one with three settings changed: every comment
    /// stays, and the alert file's setting replaces the comment that shows it.
    #[test]
    fn install_config_keeps_the_comments() {
        let shipped = fs::read_to_string(repo_config().join("detector.toml")).unwrap();
        let installed = install_config(&shipped).unwrap();
        let commented = format!("# path = \"{INSTALLED_ALERTS}\"");
        let set = format!("path = \"{INSTALLED_ALERTS}\"");
        let expected: Vec<String> = shipped
            .lines()
            .map(|l| match l.trim() {
                r#"paths = ["rules"]"# => format!("paths = [\"{INSTALLED_RULES}\"]"),
                "stdout = true" => "stdout = false".to_owned(),
                t if t == commented => set.clone(),
                _ => l.to_owned(),
            })
            .collect();
        assert_eq!(installed.lines().collect::<Vec<_>>(), expected);
    }
}
