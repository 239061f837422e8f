//! The capture arms: `detector run` with the kernel-side captures Elastic Defend's documents
//! need (working directory, environment, capability sets) turned on one at a time, so the
//! storm table shows what each costs: compare `nocapture` (all three off) with `cwd`,
//! `env` and `caps` (one on), and with `detector` (the shipped config: all on). Each arm
//! runs the config under test with only its `[sensor]` switches changed.

use std::path::Path;

use anyhow::Context;

use super::detector::DetectorCmd;
use super::peers::Arm;

/// The `[sensor]` switches of a capture arm: (cwd_capture, caps_capture, env capture on);
/// `None` for the other arms.
pub fn switches(arm: Arm) -> Option<(bool, bool, bool)> {
    match arm {
        Arm::NoCapture => Some((false, false, false)),
        Arm::Cwd => Some((true, false, false)),
        Arm::Caps => Some((false, true, false)),
        Arm::Env => Some((false, false, true)),
        _ => None,
    }
}

/// `base` with a config that differs from its own only in the capture switches of `arm`,
/// written to `scratch`. Relative rule paths are made absolute (the copy lives elsewhere).
pub fn variant(base: &DetectorCmd, arm: Arm, scratch: &Path) -> anyhow::Result<DetectorCmd> {
    let Some((cwd, caps, env)) = switches(arm) else {
        return Ok(base.clone());
    };
    let text = std::fs::read_to_string(&base.config)
        .with_context(|| format!("reading {}", base.config.display()))?;
    let mut doc: toml_edit::DocumentMut = text
        .parse()
        .with_context(|| format!("parsing {}", base.config.display()))?;
    let dir = base
        .config
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    if let Some(paths) = doc
        .get_mut("rules")
        .and_then(|r| r.get_mut("paths"))
        .and_then(|p| p.as_array_mut())
    {
        for p in paths.iter_mut() {
            if let Some(s) = p.as_str()
                && !Path::new(s).is_absolute()
            {
                *p = dir.join(s).display().to_string().into();
            }
        }
    }
    let sensor = doc["sensor"].or_insert(toml_edit::table());
    sensor["cwd_capture"] = toml_edit::value(cwd);
    sensor["caps_capture"] = toml_edit::value(caps);
    // `env` keeps the config's own list (or the daemon's default when absent).
    if !env {
        sensor["capture_env_vars"] = toml_edit::value(toml_edit::Array::new());
    }
    let path = scratch.join(format!("config-{}.toml", arm.name()));
    std::fs::write(&path, doc.to_string())
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(DetectorCmd {
        config: path,
        ..base.clone()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variants_change_only_the_switches() {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("detector.toml");
        std::fs::write(
            &config,
            "[rules]\npaths = [\"rules\"]\n\n[sensor]\n# keep me\nargv_capture = true\n",
        )
        .unwrap();
        let base = DetectorCmd {
            bin: "detector".into(),
            config: config.clone(),
            extra_args: vec![],
            env: vec![],
        };
        let v = variant(&base, Arm::Cwd, dir.path()).unwrap();
        let text = std::fs::read_to_string(&v.config).unwrap();
        let t: toml::Value = toml::from_str(&text).unwrap();
        assert_eq!(t["sensor"]["cwd_capture"].as_bool(), Some(true));
        assert_eq!(t["sensor"]["caps_capture"].as_bool(), Some(false));
        assert_eq!(
            t["sensor"]["capture_env_vars"].as_array().map(Vec::len),
            Some(0)
        );
        assert_eq!(t["sensor"]["argv_capture"].as_bool(), Some(true));
        assert!(text.contains("# keep me"));
        let rules = dir.path().join("rules").display().to_string();
        assert_eq!(t["rules"]["paths"][0].as_str(), Some(rules.as_str()));
        // env: the config's own list (here the daemon's default) stays.
        let v = variant(&base, Arm::Env, dir.path()).unwrap();
        let t: toml::Value = toml::from_str(&std::fs::read_to_string(&v.config).unwrap()).unwrap();
        assert!(t["sensor"].get("capture_env_vars").is_none());
        assert_eq!(t["sensor"]["cwd_capture"].as_bool(), Some(false));
        // Other arms run the config as it is.
        assert_eq!(
            variant(&base, Arm::Detector, dir.path()).unwrap().config,
            config
        );
    }
}
