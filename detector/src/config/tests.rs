//! Config tests: broken configs give errors naming key, line and cause; the shipped file
//! equals the documented defaults.

use std::path::{Path, PathBuf};

use super::*;

fn parse(text: &str) -> Result<Config, ConfigError> {
    Config::parse(text.as_bytes(), Path::new("test.toml"))
}

fn shipped_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/detector.toml")
}

/// (name, config text, expected key (None: not a key error), expected line, words the
/// message must contain)
type Case = (
    &'static str,
    &'static str,
    Option<&'static str>,
    usize,
    &'static [&'static str],
);

const BROKEN: &[Case] = &[
    (
        "unknown top-level key",
        "[rules]\npaths = []\n\n[sinks]\nstdot = true\n",
        Some("sinks.stdot"),
        5,
        &["unknown field", "stdot", "stdout"],
    ),
    (
        "unknown table",
        "[sensors]\nring_buffer_bytes = 4096\n",
        Some("sensors"),
        1,
        &["unknown field", "sensors"],
    ),
    (
        "unknown nested key",
        "[sinks.file]\npath = \"/tmp/a\"\nrotate = 10\n",
        Some("sinks.file.rotate"),
        3,
        &["unknown field", "rotate_bytes"],
    ),
    (
        "bad type: string for integer",
        "[sinks.file]\nrotate_bytes = \"100M\"\n",
        Some("sinks.file.rotate_bytes"),
        2,
        &["invalid type", "string", "u64"],
    ),
    (
        "bad type: negative integer",
        "[stats]\ninterval_secs = -5\n",
        Some("stats.interval_secs"),
        2,
        &["-5"],
    ),
    (
        "bad type: bool as string",
        "[sinks]\nstdout = \"yes\"\n",
        Some("sinks.stdout"),
        2,
        &["invalid type", "boolean"],
    ),
    (
        "bad enum value",
        "[log]\nformat = \"xml\"\n",
        Some("log.format"),
        2,
        &["unknown variant", "xml", "human", "json"],
    ),
    (
        "ring buffer not a power of two",
        "[sensor]\nring_buffer_bytes = 1000000\n",
        Some("sensor.ring_buffer_bytes"),
        2,
        &["1000000", "power of two", "page size", "1048576"],
    ),
    (
        "ring buffer too large",
        "[sensor]\nring_buffer_bytes = 4294967296\n",
        Some("sensor.ring_buffer_bytes"),
        2,
        &["out of range", "1073741824"],
    ),
    (
        "wake interval too long",
        "[sensor]\nwake_interval_us = 1000000\n",
        Some("sensor.wake_interval_us"),
        2,
        &["out of range", "100000"],
    ),
    (
        "busy poll interval too long",
        "[sensor]\nbusy_poll_interval_us = 200000\n",
        Some("sensor.busy_poll_interval_us"),
        2,
        &["out of range", "100000"],
    ),
    (
        "wake interval negative",
        "[sensor]\nwake_interval_us = -1\n",
        Some("sensor.wake_interval_us"),
        2,
        &["invalid value", "-1"],
    ),
    (
        "keep out of range",
        "[sinks.file]\nkeep = 0\n",
        Some("sinks.file.keep"),
        2,
        &["out of range"],
    ),
    (
        "rotate too small",
        "[sinks.file]\npath = \"a.ndjson\"\nrotate_bytes = 10\n",
        Some("sinks.file.rotate_bytes"),
        3,
        &["10", "out of range", "4096"],
    ),
    (
        "empty rule path",
        "[rules]\npaths = [\"rules\", \"\"]\n",
        Some("rules.paths[1]"),
        2,
        &["empty"],
    ),
    (
        "rule paths wrong type",
        "[rules]\npaths = \"rules\"\n",
        Some("rules.paths"),
        2,
        &["invalid type", "sequence"],
    ),
    (
        "alert path is a directory",
        "[sinks.file]\npath = \"/var/log/detector/\"\n",
        Some("sinks.file.path"),
        2,
        &["directory"],
    ),
    (
        "relative heartbeat path",
        "[health]\nheartbeat_path = \"run/heartbeat\"\n",
        Some("health.heartbeat_path"),
        2,
        &["absolute"],
    ),
    (
        "canary interval too long",
        "[health]\ncanary_interval_secs = 3601\n",
        Some("health.canary_interval_secs"),
        2,
        &["out of range", "3600"],
    ),
    (
        "process table too small",
        "[process]\nmax_processes = 10\n",
        Some("process.max_processes"),
        2,
        &["out of range", "1024"],
    ),
    (
        "exception without rule",
        "[[exceptions]]\nuser_name = \"root\"\n",
        Some("exceptions[0]"),
        1,
        &["rule_id", "rule_name"],
    ),
    (
        "exception without condition",
        "[[exceptions]]\nrule_id = \"x\"\n\n[[exceptions]]\nrule_name = \"y\"\n",
        Some("exceptions[0]"),
        1,
        &["no condition"],
    ),
    (
        "exception unknown key in second entry",
        "[[exceptions]]\nrule_id = \"x\"\nuser_id = \"0\"\n\n[[exceptions]]\nrule_id = \"y\"\nimage = \"z\"\n",
        Some("exceptions[1].image"),
        7,
        &["unknown field", "container_image_name"],
    ),
    (
        "relative containerd state directory",
        "[container]\ncontainerd_state = [\"/run/containerd\", \"run/c\"]\n",
        Some("container.containerd_state"),
        2,
        &["absolute"],
    ),
    (
        "relative pod log directory",
        "[container]\npod_logs_dir = \"pods\"\n",
        Some("container.pod_logs_dir"),
        2,
        &["absolute"],
    ),
    (
        "empty cluster name",
        "[container]\ncluster_name = \"\"\n",
        Some("container.cluster_name"),
        2,
        &["1 to 253"],
    ),
    (
        "exception empty condition",
        "[[exceptions]]\nrule_id = \"x\"\nprocess_executable = \"  \"\n",
        Some("exceptions[0].process_executable"),
        3,
        &["empty"],
    ),
    (
        "exception with integer user id",
        "[[exceptions]]\nrule_id = \"x\"\nuser_id = 0\n",
        Some("exceptions[0].user_id"),
        3,
        &["invalid type", "integer"],
    ),
    (
        "unknown key in an inline exception",
        "exceptions = [\n  { rule_id = \"x\", user_id = \"0\" },\n  { rule_id = \"y\", usr = \"0\" },\n]\n",
        Some("exceptions[1].usr"),
        3,
        &["unknown field", "usr"],
    ),
    (
        "env var name with '='",
        "[sensor]\ncapture_env_vars = [\n  \"HOME\",\n  \"LD_PRELOAD=x\",\n]\n",
        Some("sensor.capture_env_vars[1]"),
        4,
        &["not a variable name"],
    ),
    (
        "env var listed twice",
        "[sensor]\ncapture_env_vars = [\"HOME\", \"PATH\", \"HOME\"]\n",
        Some("sensor.capture_env_vars[2]"),
        2,
        &["listed twice"],
    ),
    (
        "empty env var name",
        "[sensor]\ncapture_env_vars = [\"\"]\n",
        Some("sensor.capture_env_vars[0]"),
        2,
        &["1 to 128 bytes"],
    ),
    (
        "bad value in an inline exception",
        "exceptions = [{ rule_id = \"x\", user_name = \"\" }]\n",
        Some("exceptions[0].user_name"),
        1,
        &["empty"],
    ),
    (
        "dotted key at top level",
        "sinks.file.keep = \"five\"\n",
        Some("sinks.file.keep"),
        1,
        &["invalid type"],
    ),
    (
        "metrics on a non-loopback address, not asked for",
        "[metrics]\nlisten = \"0.0.0.0:9464\"\n",
        Some("metrics.listen"),
        2,
        &["not a loopback address", "allow_non_loopback"],
    ),
    (
        "metrics textfile relative",
        "[metrics]\ntextfile = \"detector.prom\"\n",
        Some("metrics.textfile"),
        2,
        &["absolute"],
    ),
    (
        "metrics listen not an address",
        "[metrics]\nlisten = \"localhost\"\n",
        Some("metrics.listen"),
        2,
        &["invalid"],
    ),
    (
        "metrics interval zero",
        "[metrics]\ninterval_secs = 0\n",
        Some("metrics.interval_secs"),
        2,
        &["out of range"],
    ),
    (
        "invalid TOML: unclosed table header",
        "[rules\npaths = []\n",
        None,
        1,
        &["invalid TOML"],
    ),
    (
        "invalid TOML: duplicate key",
        "[sinks]\nstdout = true\nstdout = false\n",
        None,
        3,
        &["invalid TOML", "duplicate"],
    ),
    (
        "invalid TOML: bare string value",
        "[log]\nlevel = info\n",
        None,
        2,
        &["invalid TOML"],
    ),
];

#[test]
fn broken_configs_name_key_line_and_cause() {
    for (name, text, key, line, words) in BROKEN {
        let err = match parse(text) {
            Ok(c) => panic!("{name}: accepted: {c:?}"),
            Err(e) => e,
        };
        let shown = err.to_string();
        println!("{name:40} {shown}");
        assert!(shown.starts_with("test.toml:"), "{name}: {shown}");
        assert_eq!(err.key(), *key, "{name}: {shown}");
        assert_eq!(
            err.location().map(|l| l.line),
            Some(*line),
            "{name}: {shown}"
        );
        if let Some(k) = key {
            assert!(shown.contains(&format!(": {k}: ")), "{name}: {shown}");
        }
        for w in *words {
            assert!(shown.contains(w), "{name}: {shown:?} lacks {w:?}");
        }
        assert!(!shown.contains('\n'), "{name}: multi-line: {shown:?}");
    }
}

#[test]
fn column_points_at_the_value() {
    let err = parse("[sensor]\nring_buffer_bytes =   12345\n").unwrap_err();
    assert_eq!(
        err.location(),
        Some(Location {
            line: 2,
            column: 23
        })
    );
    assert_eq!(err.key(), Some("sensor.ring_buffer_bytes"));
}

#[test]
fn non_utf8_config_is_refused_with_position() {
    let mut bytes = b"[log]\nlevel = \"info\"\nformat = \"".to_vec();
    bytes.extend_from_slice(&[0xff, 0xfe]);
    bytes.extend_from_slice(b"\"\n");
    let err = Config::parse(&bytes, Path::new("bad.toml")).unwrap_err();
    assert!(matches!(err, ConfigError::Encoding { .. }), "{err:?}");
    assert_eq!(
        err.location(),
        Some(Location {
            line: 3,
            column: 11
        })
    );
    assert!(err.to_string().starts_with("bad.toml:3:11: "), "{err}");
    assert!(err.to_string().contains("UTF-8"), "{err}");
}

#[test]
fn missing_file_names_the_file() {
    let err = Config::load(Path::new("/nonexistent/detector.toml")).unwrap_err();
    let shown = err.to_string();
    assert!(shown.contains("/nonexistent/detector.toml"), "{shown}");
    assert!(shown.contains("No such file"), "{shown}");
}

#[test]
fn endless_or_huge_config_is_refused() {
    let err = Config::load(Path::new("/dev/zero")).unwrap_err();
    assert!(matches!(err, ConfigError::TooLarge { .. }), "{err:?}");
    assert!(
        err.to_string().contains("larger than 1048576 bytes"),
        "{err}"
    );
    let err = Config::load(Path::new("/")).unwrap_err();
    assert!(
        err.to_string().starts_with("/: cannot read config"),
        "{err}"
    );
}

#[test]
fn hostile_unknown_key_is_quoted_on_one_line() {
    let err = parse("[sinks]\n\"std\\nout\\u001b[31m\" = 1\n").unwrap_err();
    let shown = err.to_string();
    assert_eq!(err.key(), Some("sinks.\"std\\nout\\u{1b}[31m\""), "{shown}");
    assert!(
        !shown.contains('\n') && !shown.contains('\u{1b}'),
        "{shown:?}"
    );
}

#[test]
fn empty_file_is_the_default() {
    assert_eq!(parse("").unwrap(), Config::default());
}

#[test]
fn shipped_config_equals_documented_defaults() {
    let bytes = std::fs::read(shipped_path()).unwrap();
    let parsed = Config::parse(&bytes, &shipped_path()).unwrap();
    assert_eq!(parsed, Config::default());
}

#[test]
fn shipped_config_loads_with_paths_resolved() {
    let c = Config::load(&shipped_path()).unwrap();
    let dir = shipped_path().parent().unwrap().to_path_buf();
    assert_eq!(c.rules.paths, vec![dir.join("rules")]);
    assert!(c.rules.paths[0].is_dir(), "{:?}", c.rules.paths);
    assert_eq!(c.sinks.file.path, None);
    assert!(c.sinks.stdout);
}

#[test]
fn shipped_commented_exception_example_is_valid() {
    // The example in the shipped file, uncommented, must itself load: docs that do not parse
    // mislead operators.
    let text = std::fs::read_to_string(shipped_path()).unwrap();
    let example: String = text
        .lines()
        .skip_while(|l| !l.starts_with("# [[exceptions]]"))
        .take_while(|l| l.starts_with("# "))
        .filter(|l| !l.starts_with("# # "))
        .map(|l| format!("{}\n", &l[2..]))
        .collect();
    let c = parse(&example).unwrap_or_else(|e| panic!("{e}\n{example}"));
    assert_eq!(c.exceptions.len(), 1);
    assert_eq!(c.exceptions[0].user_id.as_deref(), Some("0"));
}

#[test]
fn full_config_parses_every_key() {
    let c = parse(
        r#"
        [rules]
        paths = ["/etc/detector/rules", "extra.toml"]
        [sensor]
        ring_buffer_bytes = 262144
        argv_capture = false
        wake_interval_us = 250
        busy_poll_interval_us = 500
        [sinks]
        stdout = false
        [sinks.file]
        path = "alerts.ndjson"
        rotate_bytes = 1000000
        keep = 3
        queue_max = 50
        [alerts]
        suppression_window_secs = 30
        startup_scan = false
        [[exceptions]]
        rule_name = "SSH Process Launched From Inside A Container"
        container_image_name = "bastion"
        [log]
        format = "json"
        level = "debug"
        [stats]
        interval_secs = 0
        [process]
        max_processes = 2048
        [container]
        cache_max = 16
        [health]
        heartbeat_path = "/run/detector/heartbeat"
        canary_interval_secs = 0
        "#,
    )
    .unwrap();
    assert_eq!(c.sensor.ring_buffer_bytes, 262_144);
    assert_eq!(c.sensor.wake_interval_us, 250);
    assert_eq!(c.sensor.busy_poll_interval_us, 500);
    assert!(!c.sensor.argv_capture && !c.sinks.stdout && !c.alerts.startup_scan);
    assert_eq!(c.sinks.file.rotate_bytes, Some(1_000_000));
    assert_eq!((c.sinks.file.keep, c.sinks.file.queue_max), (3, 50));
    assert_eq!(c.alerts.suppression_window_secs, 30);
    assert_eq!(c.log.format, LogFormat::Json);
    assert_eq!(c.log.level.as_str(), "debug");
    assert_eq!(c.stats.interval_secs, 0);
    assert_eq!((c.process.max_processes, c.container.cache_max), (2048, 16));
    assert_eq!(
        c.health.heartbeat_path.as_deref(),
        Some(Path::new("/run/detector/heartbeat"))
    );
    assert_eq!(c.health.canary_interval_secs, 0, "0 turns the canary off");

    let mut c = c;
    c.resolve_paths(Path::new("/etc/detector"));
    assert_eq!(
        c.rules.paths,
        vec![
            PathBuf::from("/etc/detector/rules"),
            PathBuf::from("/etc/detector/extra.toml")
        ]
    );
    assert_eq!(
        c.sinks.file.path,
        Some(PathBuf::from("/etc/detector/alerts.ndjson"))
    );
}

#[test]
fn overrides_add_or_replace_rules_and_enable_sinks() {
    let mut c = Config::default();
    c.sinks.stdout = false;
    c.apply_overrides(&Overrides {
        rules: vec!["more".into()],
        ..Default::default()
    });
    assert_eq!(c.rules.paths, vec![PathBuf::from("rules"), "more".into()]);
    assert!(!c.sinks.stdout);

    c.apply_overrides(&Overrides {
        rules: vec!["only".into()],
        replace_rules: true,
        alerts_file: Some("/tmp/a.ndjson".into()),
        stdout: true,
    });
    assert_eq!(c.rules.paths, vec![PathBuf::from("only")]);
    assert_eq!(c.sinks.file.path, Some(PathBuf::from("/tmp/a.ndjson")));
    assert!(c.sinks.stdout);
}

#[test]
fn check_paths_names_missing_rule_path_and_absent_sinks() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = Config::default();
    c.rules.paths = vec![dir.path().into(), dir.path().join("missing.toml")];
    let err = c.check_paths(Path::new("cfg.toml")).unwrap_err();
    assert_eq!(err.key(), Some("rules.paths[1]"));
    assert!(err.to_string().contains("missing.toml"), "{err}");

    c.rules.paths.pop();
    c.check_paths(Path::new("cfg.toml")).unwrap();
    c.sinks.stdout = false;
    let err = c.check_paths(Path::new("cfg.toml")).unwrap_err();
    assert_eq!(err.key(), Some("sinks"));

    c.rules.paths.clear();
    c.sinks.stdout = true;
    let err = c.check_paths(Path::new("cfg.toml")).unwrap_err();
    assert_eq!(err.key(), Some("rules.paths"));
}

#[test]
fn exception_matches_only_when_every_condition_matches() {
    let e = Exception {
        rule_id: Some("r1".into()),
        container_image_name: Some("bastion".into()),
        user_name: Some("root".into()),
        ..Default::default()
    };
    let hit = ExceptionSubject {
        rule_id: "r1",
        rule_name: "SSH",
        container_image_name: Some("bastion"),
        user_name: Some("root"),
        process_executable: Some("/usr/sbin/sshd"),
        ..Default::default()
    };
    assert!(e.matches(&hit));
    // (what differs, subject)
    let misses = [
        (
            "other rule",
            ExceptionSubject {
                rule_id: "r2",
                ..hit
            },
        ),
        (
            "other image",
            ExceptionSubject {
                container_image_name: Some("web"),
                ..hit
            },
        ),
        (
            "case differs",
            ExceptionSubject {
                user_name: Some("Root"),
                ..hit
            },
        ),
        (
            "field absent",
            ExceptionSubject {
                container_image_name: None,
                ..hit
            },
        ),
    ];
    for (why, s) in misses {
        assert!(!e.matches(&s), "{why}");
    }
    let by_name = Exception {
        rule_name: Some("SSH".into()),
        user_id: Some("0".into()),
        ..Default::default()
    };
    assert!(by_name.matches(&ExceptionSubject {
        user_id: Some("0"),
        ..hit
    }));
    assert!(
        !Exception::default().matches(&hit),
        "no rule named: never matches"
    );
}

/// The keys serde accepts in the table at `header`, read from its own "unknown field"
/// message, so this stays right when a field is added.
fn accepted_keys(header: &str) -> Vec<String> {
    let text = format!("{header}\nzz_probe = 1\n");
    let msg = parse(&text).unwrap_err().to_string();
    let expected = msg
        .split("expected")
        .nth(1)
        .unwrap_or_else(|| panic!("{msg}"));
    expected
        .split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect()
}

#[test]
fn shipped_config_documents_every_key() {
    let shipped = std::fs::read_to_string(shipped_path()).unwrap();
    let has_line = |want: &str| {
        shipped
            .lines()
            .any(|l| l.trim_start_matches(['#', ' ']).starts_with(want))
    };
    for table in accepted_keys("") {
        assert!(
            has_line(&format!("[{table}]")) || has_line(&format!("[[{table}]]")),
            "table [{table}] is not in the shipped config"
        );
    }
    for header in [
        "[rules]",
        "[sensor]",
        "[sinks]",
        "[sinks.file]",
        "[alerts]",
        "[[exceptions]]",
        "[log]",
        "[stats]",
        "[process]",
        "[container]",
        "[metrics]",
        "[health]",
    ] {
        let keys = accepted_keys(header);
        assert!(!keys.is_empty(), "{header}");
        for key in keys {
            if key == "file" && header == "[sinks]" {
                continue; // the [sinks.file] table, checked above through its own keys
            }
            assert!(
                has_line(&format!("{key} = ")),
                "{header} {key} is not documented in the shipped config"
            );
        }
    }
}

#[test]
fn non_loopback_metrics_only_when_asked_for() {
    let c = parse("[metrics]\nlisten = \"[::1]:0\"\n").unwrap();
    assert!(c.metrics.listen.unwrap().ip().is_loopback());
    let c = parse("[metrics]\nlisten = \"0.0.0.0:9464\"\nallow_non_loopback = true\n").unwrap();
    assert!(c.metrics.allow_non_loopback);
}

/// The default `sensor.capture_env_vars` covers every variable Elastic's Linux rules read
/// in `process.env_vars`, computed from the corpus: each quoted `NAME=…` pattern of a
/// `process.env_vars` comparison names a variable (a `like~` pattern matches either case).
#[test]
fn default_env_vars_cover_the_corpus() {
    use crate::testsupport::{Corpus, Need, corpus, require};
    if !require(
        "config::tests::default_env_vars_cover_the_corpus",
        &[Need::Corpus(Corpus::ElasticLinux)],
    ) {
        return;
    }
    let defaults = Config::default().sensor.capture_env_vars;
    let mut read = std::collections::BTreeSet::new();
    for entry in std::fs::read_dir(corpus(Corpus::ElasticLinux)).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "toml") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let doc: toml::Value = toml::from_str(&text).unwrap();
        let Some(query) = doc
            .get("rule")
            .and_then(|r| r.get("query"))
            .and_then(|q| q.as_str())
        else {
            continue;
        };
        for (at, _) in query.match_indices("process.env_vars") {
            // The comparison's value or list: up to the closing bracket of a list, else the
            // first quoted string.
            let rest = &query[at + "process.env_vars".len()..];
            let end = match rest.split_whitespace().nth(1) {
                Some(v) if v.starts_with('(') => rest.find(')').unwrap_or(rest.len()),
                _ => rest
                    .find('"')
                    .and_then(|o| rest[o + 1..].find('"').map(|c| o + c + 2))
                    .unwrap_or(rest.len()),
            };
            for (i, quoted) in rest[..end].split('"').enumerate() {
                if i % 2 == 1
                    && let Some((name, _)) = quoted.split_once('=')
                {
                    read.insert((
                        name.trim_start_matches('*')
                            .trim_end_matches('*')
                            .to_owned(),
                        path.clone(),
                    ));
                }
            }
        }
    }
    assert!(read.len() >= 8, "too few variables found: {read:?}");
    for (name, rule) in &read {
        assert!(
            defaults.iter().any(|d| d.eq_ignore_ascii_case(name)),
            "{name} (read by {}) is not in the default capture list",
            rule.display()
        );
    }
}
