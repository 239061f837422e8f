//! EQL sequences end to end: Elastic's own Linux sequence rules (the corpus, unmodified)
//! raise their alerts from real behaviour on this machine through `detector run`, as
//! building-block alerts plus a shell alert sharing a group id; near misses (outside
//! `maxspan`, another join key, one run short) raise none. Also: `run` refuses a sequence
//! whose terms need events the sensor does not produce (file:line:column, the term named),
//! and `replay` runs sequences over recorded events of any category.
//!
//! The root test starts with the prerequisite gate ([`detector::testsupport::require`]).

#[path = "common/daemon.rs"]
mod daemon;
#[path = "common/ecs_validate.rs"]
mod ecs_validate;
#[path = "common/wait.rs"]
mod wait;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use detector::testsupport::{self, Corpus, Need, require};
use serde_json::Value;

use daemon::{Daemon, Opts, config_file};

/// The corpus rules this sensor's events (fork, exec, exit) can complete, with the number
/// of events a match holds and the behaviour (a shell snippet; `$M` is a marker unique to
/// the run, `$D` a scratch directory) that completes it.
const RULES: &[(&str, usize, &str)] = &[
    (
        "credential_access_proc_credential_dumping.toml",
        2,
        r#"echo hello > /tmp/$M.txt
sh -c "ps -eo pid command >/dev/null; strings /tmp/$M.txt >/dev/null; true""#,
    ),
    (
        "credential_access_ssh_password_grabbing_via_strace.toml",
        2,
        r#"cp /bin/sleep $D/sshd; $D/sshd 0.1
strace -o /dev/null true $M"#,
    ),
    (
        "defense_evasion_interpreter_launched_from_decoded_payload.toml",
        2,
        r#"sh -c "echo ZWNobyBoaSA+L2Rldi9udWxs | base64 -d | bash; true # $M""#,
    ),
    (
        "discovery_unusual_user_enumeration_via_id.toml",
        20,
        r#"sh -c "for i in \$(seq 20); do id -u >/dev/null; done; true # $M""#,
    ),
    (
        "impact_data_encrypted_via_openssl.toml",
        10,
        r#"echo data > $D/plain
sh -c "for i in \$(seq 10); do openssl enc -aes-256-cbc -pbkdf2 -in $D/plain -out $D/enc.\$i -k pass$M; done; true""#,
    ),
    (
        "execution_git_exploit_cve_2025_48384.toml",
        2,
        r#"cp /bin/dash $D/git; $D/git -c 'sh -c true; true' clone --recursive http://$M.invalid/x"#,
    ),
    (
        "execution_nodejs_pre_or_post_install_script_execution.toml",
        2,
        r#"node -e "require('child_process').execSync('true')" install $M"#,
    ),
    (
        "persistence_apt_package_manager_execution.toml",
        2,
        r#"cp /bin/dash $D/apt; $D/apt -c "sh -c 'sh -c true; true'; true" $M"#,
    ),
    (
        "privilege_escalation_potential_wildcard_shell_spawn.toml",
        2,
        r#"echo x > $D/f$M; tar cf /dev/null --checkpoint=1 --checkpoint-action=exec='sh -c true' $D/f$M"#,
    ),
    (
        "privilege_escalation_docker_mount_chroot_container_escape.toml",
        2,
        r#"sh -c "mount /dev/sdzz$M /nonexistent$M 2>/dev/null; chroot /nonexistent$M true 2>/dev/null; true""#,
    ),
];

/// Near misses (marker `$N`): each is one of the rules above with one condition of the
/// sequence broken. None may raise an alert.
const NEAR_MISSES: &str = r#"
# Outside maxspan (3s): sshd ends, strace comes 3.5 s later.
$D/sshd 0.1; sleep 3.5; strace -o /dev/null true $N
# Another join key (process.parent.name): ps under sh, strings under bash.
echo hello > /tmp/$N.txt
sh -c "ps -eo pid command >/dev/null; true # $N"; bash -c "strings /tmp/$N.txt >/dev/null; true"
rm -f /tmp/$N.txt
# Another join key (process.parent.entity_id): the decoder and the shell in two shells.
sh -c "echo ZWNobyBoaSA+L2Rldi9udWxs | base64 -d >/dev/null; true # $N"; sh -c "echo true | bash; true # $N"
# One run short: 19 ids (runs=20).
sh -c "for i in \$(seq 19); do id -u >/dev/null; done; true # $N"
# Another join key: mount and chroot under two shells.
sh -c "mount /dev/sdzz$N /nonexistent$N 2>/dev/null; true"; sh -c "chroot /nonexistent$N true 2>/dev/null; true # $N"
"#;

/// Runs `script` with `sh -e`, bounded, failing the test on a non-zero exit.
fn run_script(dir: &Path, name: &str, script: &str) {
    let path = dir.join(name);
    std::fs::write(&path, script).unwrap();
    let out = wait::output_timeout(
        Command::new("sh").arg(&path).current_dir(dir),
        Duration::from_secs(120),
        name,
    );
    assert!(
        out.status.success(),
        "{name} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The rule's file in the corpus (read unmodified from the shared material).
fn corpus_rule(file: &str) -> PathBuf {
    testsupport::corpus(Corpus::ElasticLinux).join(file)
}

/// `rule.id` of a corpus rule file.
fn rule_id(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap();
    let v: toml::Value = toml::from_str(&text).unwrap();
    v["rule"]["rule_id"].as_str().unwrap().to_owned()
}

/// The groups of `rule` in `docs`: each shell alert with its building blocks (by index).
fn groups<'a>(docs: &'a [Value], rule: &str) -> Vec<(&'a Value, Vec<&'a Value>)> {
    let of_rule = |d: &&Value| d["rule"]["id"] == rule;
    docs.iter()
        .filter(of_rule)
        .filter(|d| d["kibana"]["alert"]["building_block_type"].is_null())
        .filter(|d| d["kibana"]["alert"]["group"]["id"].is_string())
        .map(|shell| {
            let gid = &shell["kibana"]["alert"]["group"]["id"];
            let mut blocks: Vec<&Value> = docs
                .iter()
                .filter(of_rule)
                .filter(|d| d["kibana"]["alert"]["building_block_type"] == "default")
                .filter(|d| &d["kibana"]["alert"]["group"]["id"] == gid)
                .collect();
            blocks.sort_by_key(|b| b["kibana"]["alert"]["group"]["index"].as_u64());
            (shell, blocks)
        })
        .collect()
}

#[test]
fn corpus_sequences_alert_from_real_behaviour_and_near_misses_do_not() {
    let tools = [
        "strace", "openssl", "node", "tar", "ps", "strings", "base64", "bash", "dash", "mount",
        "chroot", "seq",
    ];
    let mut needs = vec![Need::Root, Need::Corpus(Corpus::ElasticLinux)];
    needs.extend(tools.iter().copied().map(Need::Tool));
    if !require(
        "corpus_sequences_alert_from_real_behaviour_and_near_misses_do_not",
        &needs,
    ) {
        return;
    }
    let paths: Vec<PathBuf> = RULES.iter().map(|(f, _, _)| corpus_rule(f)).collect();
    let list = paths
        .iter()
        .map(|p| format!("{:?}", p.display().to_string()))
        .collect::<Vec<_>>()
        .join(", ");
    let (_cfg_dir, config) = config_file(|text| {
        let start = text.find("\npaths = [").expect("rules.paths line") + 1;
        let end = start + text[start..].find('\n').unwrap();
        format!("{}paths = [{list}]{}", &text[..start], &text[end..])
    });
    let d = Daemon::start_with(Opts {
        config: Some(config),
        ..Opts::default()
    });
    assert!(
        d.ready.contains(&format!("{} rules", RULES.len())),
        "{}",
        d.ready
    );

    let scratch = tempfile::tempdir().unwrap();
    let dir = scratch.path();
    let marker = format!("seqe2e{}", std::process::id());
    let near = format!("seqmiss{}", std::process::id());
    let header = format!("set -e\nD={}\nM={marker}\nN={near}\n", dir.display());
    let mut positive = header.clone();
    for (_, _, sh) in RULES {
        positive.push_str(sh);
        positive.push('\n');
    }
    positive.push_str("rm -f /tmp/$M.txt\n");
    run_script(dir, "positive.sh", &positive);
    run_script(dir, "near-misses.sh", &format!("{header}{NEAR_MISSES}"));

    // Every positive group is there once the window and the housekeeping tick have passed.
    let ids: Vec<String> = paths.iter().map(|p| rule_id(p)).collect();
    let complete = |docs: &[Value]| {
        ids.iter().all(|id| {
            groups(docs, id)
                .iter()
                .any(|(_, blocks)| blocks.iter().any(|b| b.to_string().contains(&marker)))
        })
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !complete(&d.docs()) && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    let stopped = d.stop();
    assert!(stopped.status.success(), "{:?}", stopped.stderr);
    let docs = &stopped.docs;

    let mut fired = Vec::new();
    for ((file, events, _), id) in RULES.iter().zip(&ids) {
        let ours: Vec<_> = groups(docs, id)
            .into_iter()
            .filter(|(_, blocks)| blocks.iter().any(|b| b.to_string().contains(&marker)))
            .collect();
        let Some((shell, blocks)) = ours.first() else {
            continue;
        };
        fired.push(*file);
        let gid = shell["kibana"]["alert"]["group"]["id"].as_str().unwrap();
        assert_eq!(shell["event"]["kind"], "alert", "{file}");
        assert_eq!(shell["event"]["id"], gid, "{file}");
        assert_eq!(shell["detector"]["sequence"]["events"], *events, "{file}");
        assert_eq!(blocks.len(), *events, "{file}: {blocks:#?}");
        // Every line, the shell and its blocks, is an ECS 9.4 document with Kibana's
        // building-block fields and our `detector.sequence.*` (keywords in `join_key`).
        for line in std::iter::once(shell).chain(blocks.iter()) {
            let errors = ecs_validate::validate_ecs(line);
            assert!(errors.is_empty(), "{file}: not ECS: {errors:#?}\n{line}");
            let keys = line["detector"]["sequence"]["join_key"].as_array().unwrap();
            assert!(
                keys.iter().all(|k| k.is_string() || k.is_null()),
                "{file}: {line}"
            );
        }
        for (i, b) in blocks.iter().enumerate() {
            assert_eq!(b["event"]["kind"], "alert", "{file} block {i}");
            assert_eq!(b["kibana"]["alert"]["group"]["index"], i, "{file}");
            assert_eq!(b["rule"]["id"], id.as_str(), "{file}");
            assert!(b["process"]["pid"].is_u64(), "{file} block {i}: {b}");
        }
        // In sequence order: @timestamp never goes back.
        let ts: Vec<&str> = blocks
            .iter()
            .map(|b| b["@timestamp"].as_str().unwrap())
            .collect();
        assert!(ts.windows(2).all(|w| w[0] <= w[1]), "{file}: {ts:?}");
        assert_eq!(shell["event"]["start"], ts[0], "{file}");
        assert_eq!(shell["event"]["end"], *ts.last().unwrap(), "{file}");
    }
    eprintln!(
        "sequence rules that alerted: {} of {}: {fired:?}",
        fired.len(),
        RULES.len()
    );
    assert!(
        fired.len() >= 8,
        "only {} corpus sequence rules alerted: {fired:?}",
        fired.len()
    );
    // Near misses: no group of any rule holds an event of theirs.
    for id in &ids {
        for (shell, blocks) in groups(docs, id) {
            assert!(
                !blocks.iter().any(|b| b.to_string().contains(&near)),
                "a near miss alerted: {shell}"
            );
        }
    }
    let seq = &stopped.final_stats["sequences"];
    assert!(
        seq["engine"]["matched"].as_u64().unwrap() >= fired.len() as u64,
        "{seq}"
    );
    assert_eq!(seq["engine"]["evicted"], 0, "{seq}");
}

/// A rule file with `query` (a sequence), in `dir`.
fn write_rule(dir: &Path, name: &str, query: &str) -> PathBuf {
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(
        &path,
        format!(
            "[metadata]\ncreation_date = \"2026/01/01\"\n\n[rule]\nauthor = [\"t\"]\n\
             description = \"d\"\nlanguage = \"eql\"\nlicense = \"Elastic License v2\"\n\
             name = \"{name}\"\nrisk_score = 47\nrule_id = \"{name}-id\"\nseverity = \"medium\"\n\
             type = \"eql\"\nquery = '''\n{query}\n'''\n"
        ),
    )
    .unwrap();
    path
}

#[test]
fn run_refuses_a_sequence_whose_term_needs_events_the_sensor_does_not_produce() {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules");
    std::fs::create_dir(&rules).unwrap();
    write_rule(
        &rules,
        "curl-then-file",
        "sequence by host.id with maxspan=1m\n  [process where process.name == \"curl\"]\n  [file where event.action == \"creation\"]",
    );
    let config = dir.path().join("detector.toml");
    std::fs::write(&config, "[rules]\npaths = [\"rules\"]\n").unwrap();
    let (status, stderr) = daemon::run_to_exit(
        Command::new(env!("CARGO_BIN_EXE_detector"))
            .arg("run")
            .arg("--config")
            .arg(&config),
    );
    assert_eq!(status.code(), Some(78), "{stderr}");
    // file:line:column of the term's category word (the query's text starts on line 15
    // of the file, the file term is its third line), and the term named.
    assert!(stderr.contains("curl-then-file.toml:17:4:"), "{stderr}");
    assert!(stderr.contains("needs `file` events"), "{stderr}");
    assert!(
        stderr.contains("[file where event.action == \"creation\"]"),
        "{stderr}"
    );
}

#[test]
fn replay_completes_a_sequence_with_a_recorded_file_event_and_shows_every_field() {
    let dir = tempfile::tempdir().unwrap();
    let rule = write_rule(
        dir.path(),
        "curl-then-file",
        "sequence by host.id with maxspan=1m\n  [process where process.name == \"curl\"]\n  [file where event.action == \"creation\"]",
    );
    let events = dir.path().join("events.ndjson");
    std::fs::write(
        &events,
        concat!(
            r#"{"@timestamp":"2026-12-05T10:00:00.000Z","event":{"category":["process"],"type":["start"],"action":"exec"},"host":{"id":"h1"},"process":{"name":"curl","pid":10}}"#,
            "\n",
            r#"{"@timestamp":"2026-12-05T10:00:01.000Z","event":{"category":["file"],"type":["creation"],"action":"creation"},"host.id":"h1","file":{"path":"/tmp/payload"}}"#,
            "\n",
            // Other host: no sequence.
            r#"{"@timestamp":"2026-12-05T10:00:02.000Z","event":{"category":["file"],"type":["creation"],"action":"creation"},"host":{"id":"h2"},"file":{"path":"/tmp/other"}}"#,
            "\n",
        ),
    )
    .unwrap();
    let out = wait::output_timeout(
        Command::new(env!("CARGO_BIN_EXE_detector"))
            .args(["replay", "--no-policy", "--rules"])
            .arg(&rule)
            .arg(&events),
        Duration::from_secs(60),
        "detector replay",
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let lines = daemon::parse_ndjson(&out.stdout);
    assert_eq!(lines.len(), 3, "{lines:#?}");
    assert_eq!(lines[0]["process"]["name"], "curl");
    // The recorded file event as it was: its `file.*` (which the typed document lacks).
    assert_eq!(lines[1]["file"]["path"], "/tmp/payload");
    assert_eq!(lines[1]["event"]["category"][0], "file");
    assert_eq!(lines[2]["host"]["id"], "h1");
    assert_eq!(lines[2]["detector"]["sequence"]["join_key"][0], "h1");
    assert!(stderr.contains("1 alerts"), "{stderr}");
    assert!(
        stderr.contains("1 matched (2 building-block lines)"),
        "{stderr}"
    );
}

/// Peak resident set of the largest child this process has waited for, bytes.
fn children_max_rss() -> u64 {
    // SAFETY: getrusage writes into the zeroed struct we own.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut ru) };
    assert_eq!(rc, 0);
    ru.ru_maxrss as u64 * 1024
}

#[test]
fn churn_of_100k_short_processes_keeps_sequence_state_bounded_and_counts_evictions() {
    const PROCESSES: usize = 100_000;
    const CAP: usize = 40_000;
    let dir = tempfile::tempdir().unwrap();
    // Every exec starts a sequence that never completes: the worst case for the state.
    let rule = write_rule(
        dir.path(),
        "exec-then-never",
        "sequence by process.entity_id with maxspan=1h\n  [process where event.action == \"exec\"]\n  [process where event.action == \"never\"]",
    );
    let config = dir.path().join("detector.toml");
    std::fs::write(
        &config,
        format!("[sequences]\nmax_pending = {CAP}\nmax_pending_per_rule = {CAP}\n"),
    )
    .unwrap();
    // 100,000 short processes: exec then end, 1 ms apart, realistic documents.
    let events = dir.path().join("churn.ndjson");
    {
        use std::io::Write;
        let mut w = std::io::BufWriter::new(std::fs::File::create(&events).unwrap());
        for i in 0..PROCESSES {
            let (s, ms) = (i / 1000, i % 1000);
            for (action, kind, t) in [("exec", "start", 0), ("end", "end", 1)] {
                writeln!(
                    w,
                    r#"{{"@timestamp":"2026-12-05T10:{:02}:{:02}.{ms:03}{t}00Z","event":{{"kind":"event","category":["process"],"type":["{kind}"],"action":"{action}"}},"host":{{"id":"3d1219c7c4c5404aaa1f6d2a48adfda4","name":"vm","os":{{"type":"linux","name":"Debian GNU/Linux","kernel":"6.18.44"}}}},"process":{{"pid":{pid},"entity_id":"ZW50aXR5LWlkLW{i:012}","name":"sleep","executable":"/usr/bin/sleep","args":["sleep","0.{i}"],"args_count":2,"command_line":"sleep 0.{i}","parent":{{"pid":500,"entity_id":"cGFyZW50LWVudGl0eQ","name":"bash","executable":"/usr/bin/bash"}},"user":{{"id":"1000","name":"dev"}}}},"user":{{"id":"1000","name":"dev"}}}}"#,
                    s / 60,
                    s % 60,
                    pid = 10_000 + i,
                )
                .unwrap();
            }
        }
    }
    let before = children_max_rss();
    let out = wait::output_timeout(
        Command::new(env!("CARGO_BIN_EXE_detector"))
            .args(["replay", "--config"])
            .arg(&config)
            .arg("--rules")
            .arg(&rule)
            .arg(&events),
        Duration::from_secs(600),
        "detector replay of 100,000 processes",
    );
    let peak = children_max_rss().max(before);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(out.stdout.is_empty(), "no sequence completes");
    eprintln!(
        "{stderr}peak RSS of replay: {:.1} MiB",
        peak as f64 / (1 << 20) as f64
    );
    // The bound holds: CAP pending at the end, every other one evicted and counted.
    let evicted = PROCESSES - CAP;
    assert!(
        stderr.contains(&format!("{CAP} pending at the end, {evicted} evicted")),
        "{stderr}"
    );
    // Memory: the state of CAP pending sequences (with their stored events) stays far
    // below the 64 MiB budget of 100,000 (the binary itself is a few MiB).
    assert!(
        peak < 64 << 20,
        "replay peaked at {:.1} MiB",
        peak as f64 / (1 << 20) as f64
    );
}
