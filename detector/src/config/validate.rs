//! Value checks that types alone cannot express: ranges, powers of two, non-empty strings.
//!
//! Each check names the key path; `error::from_invalid` adds the line and column.

use std::path::Path;

use super::{Config, Exception};

/// A value that parsed but is not acceptable.
#[derive(Debug)]
pub(crate) struct Invalid {
    pub key: String,
    pub message: String,
}

fn invalid(key: impl Into<String>, message: impl Into<String>) -> Invalid {
    Invalid {
        key: key.into(),
        message: message.into(),
    }
}

/// Smallest ring buffer accepted: one page is the kernel's minimum, but a ring that small
/// loses events under any load; 64 KiB is the floor we consider useful.
pub const MIN_RING_BUFFER_BYTES: u64 = 64 << 10;
/// Largest `sensor.wake_interval_us` (100 ms): beyond it alerts come late for no gain.
pub const MAX_WAKE_INTERVAL_US: u64 = 100_000;
/// Largest ring buffer accepted (1 GiB): beyond that it is almost certainly a typo.
pub const MAX_RING_BUFFER_BYTES: u64 = 1 << 30;

/// Most variables `sensor.capture_env_vars` may list (each costs a scan of the captured
/// environment per exec).
pub const MAX_ENV_VARS: usize = 64;
/// Longest variable name `sensor.capture_env_vars` accepts, in bytes.
pub const MAX_ENV_NAME: usize = 128;

fn page_size() -> u64 {
    // SAFETY: sysconf has no preconditions; it only reads a system constant.
    let n = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if n > 0 { n as u64 } else { 4096 }
}

pub(super) fn range(key: &str, v: u64, min: u64, max: u64) -> Result<(), Invalid> {
    if v < min || v > max {
        return Err(invalid(
            key,
            format!("{v} is out of range: must be between {min} and {max}"),
        ));
    }
    Ok(())
}

fn path_ok(key: &str, p: &Path) -> Result<(), Invalid> {
    let s = p.as_os_str();
    if s.is_empty() {
        return Err(invalid(key, "path is empty"));
    }
    if s.as_encoded_bytes().contains(&0) {
        return Err(invalid(key, "path contains a NUL byte"));
    }
    Ok(())
}

/// Checks every value of a parsed config.
pub(super) fn validate(c: &Config) -> Result<(), Invalid> {
    for (i, p) in c.rules.paths.iter().enumerate() {
        path_ok(&format!("rules.paths[{i}]"), p)?;
    }

    let ring = c.sensor.ring_buffer_bytes;
    let page = page_size();
    if !ring.is_power_of_two() || !ring.is_multiple_of(page) {
        return Err(invalid(
            "sensor.ring_buffer_bytes",
            format!(
                "{ring} is not a power of two and a multiple of the page size ({page}); \
                 try {}",
                ring.max(MIN_RING_BUFFER_BYTES)
                    .checked_next_power_of_two()
                    .unwrap_or(MAX_RING_BUFFER_BYTES)
                    .min(MAX_RING_BUFFER_BYTES)
            ),
        ));
    }
    range(
        "sensor.ring_buffer_bytes",
        ring,
        MIN_RING_BUFFER_BYTES,
        MAX_RING_BUFFER_BYTES,
    )?;
    range(
        "sensor.wake_interval_us",
        c.sensor.wake_interval_us,
        0,
        MAX_WAKE_INTERVAL_US,
    )?;
    range(
        "sensor.busy_poll_interval_us",
        c.sensor.busy_poll_interval_us,
        0,
        MAX_WAKE_INTERVAL_US,
    )?;

    env_vars(&c.sensor.capture_env_vars)?;

    let f = &c.sinks.file;
    if let Some(p) = &f.path {
        path_ok("sinks.file.path", p)?;
        if p.as_os_str().as_encoded_bytes().ends_with(b"/") {
            return Err(invalid(
                "sinks.file.path",
                "names a directory (ends with '/'); give the alert file's path",
            ));
        }
    }
    if let Some(r) = f.rotate_bytes
        && r < 4096
    {
        return Err(invalid(
            "sinks.file.rotate_bytes",
            format!("{r} is out of range: must be at least 4096"),
        ));
    }
    range("sinks.file.keep", f.keep.into(), 1, 1000)?;
    range("sinks.file.queue_max", f.queue_max as u64, 1, 10_000_000)?;

    range(
        "alerts.suppression_window_secs",
        c.alerts.suppression_window_secs,
        0,
        86_400,
    )?;

    for (i, e) in c.exceptions.iter().enumerate() {
        exception(i, e)?;
    }

    range("stats.interval_secs", c.stats.interval_secs, 0, 86_400)?;
    range(
        "process.max_processes",
        c.process.max_processes as u64,
        1024,
        // The kernel's pid_max ceiling on 64-bit.
        4_194_304,
    )?;
    range(
        "container.cache_max",
        c.container.cache_max as u64,
        16,
        1_000_000,
    )?;
    container_state(&c.container)?;
    if let Some(p) = &c.health.heartbeat_path {
        path_ok("health.heartbeat_path", p)?;
        if !p.is_absolute() || p.as_os_str().as_encoded_bytes().ends_with(b"/") {
            return Err(invalid(
                "health.heartbeat_path",
                "must be an absolute file path (the probe runs from anywhere)",
            ));
        }
    }
    range(
        "health.canary_interval_secs",
        c.health.canary_interval_secs,
        0,
        3600,
    )?;
    c.sequences.validate()?;
    metrics(&c.metrics)
}

/// The runtime state roots: absolute (the daemon's working directory means nothing to a
/// runtime), a few of each, and a cluster name Kubernetes could have given.
fn container_state(c: &super::ContainerConfig) -> Result<(), Invalid> {
    let lists: [(&'static str, &Vec<std::path::PathBuf>); 4] = [
        ("container.containerd_state", &c.containerd_state),
        ("container.docker_root", &c.docker_root),
        ("container.storage_root", &c.storage_root),
        ("container.lxc_path", &c.lxc_path),
    ];
    for (key, list) in lists {
        if list.len() > 16 {
            return Err(invalid(key, "at most 16 directories"));
        }
        for p in list {
            path_ok(key, p)?;
            if !p.is_absolute() {
                return Err(invalid(key, "each directory must be an absolute path"));
            }
        }
    }
    for (key, p) in [
        ("container.machines_dir", &c.machines_dir),
        ("container.pod_logs_dir", &c.pod_logs_dir),
    ] {
        path_ok(key, p)?;
        if !p.is_absolute() {
            return Err(invalid(key, "must be an absolute path"));
        }
    }
    if let Some(name) = &c.cluster_name
        && (name.is_empty() || name.len() > 253 || name.chars().any(char::is_control))
    {
        return Err(invalid(
            "container.cluster_name",
            "must be 1 to 253 characters without control characters",
        ));
    }
    Ok(())
}

/// `sensor.capture_env_vars`: bounded, and each a plain variable name.
fn env_vars(names: &[String]) -> Result<(), Invalid> {
    if names.len() > MAX_ENV_VARS {
        return Err(invalid(
            "sensor.capture_env_vars",
            format!("{} variables listed: at most {MAX_ENV_VARS}", names.len()),
        ));
    }
    for (i, n) in names.iter().enumerate() {
        let key = format!("sensor.capture_env_vars[{i}]");
        if n.is_empty() || n.len() > MAX_ENV_NAME {
            return Err(invalid(
                key,
                format!(
                    "a variable name of 1 to {MAX_ENV_NAME} bytes, got {} bytes",
                    n.len()
                ),
            ));
        }
        if n.bytes()
            .any(|b| b == b'=' || b == 0 || b.is_ascii_whitespace())
        {
            return Err(invalid(
                key,
                format!("{n:?} is not a variable name (no '=', NUL or white space)"),
            ));
        }
        if names[..i].contains(n) {
            return Err(invalid(key, format!("{n:?} is listed twice")));
        }
    }
    Ok(())
}

fn metrics(m: &super::MetricsConfig) -> Result<(), Invalid> {
    if let Some(p) = &m.textfile {
        path_ok("metrics.textfile", p)?;
        if !p.is_absolute() || p.file_name().is_none() {
            return Err(invalid(
                "metrics.textfile",
                "must be an absolute file path (node_exporter's textfile directory/NAME.prom)",
            ));
        }
    }
    if let Some(a) = m.listen
        && !a.ip().is_loopback()
        && !m.allow_non_loopback
    {
        return Err(invalid(
            "metrics.listen",
            format!(
                "{a} is not a loopback address: the metrics tell what runs on this host; \
                 set metrics.allow_non_loopback = true to serve them there on purpose"
            ),
        ));
    }
    range("metrics.interval_secs", m.interval_secs, 1, 3600)
}

fn exception(i: usize, e: &Exception) -> Result<(), Invalid> {
    let key = |k: &str| format!("exceptions[{i}].{k}");
    for (name, v) in e.fields() {
        if let Some(v) = v
            && v.trim().is_empty()
        {
            return Err(invalid(key(name), "is empty"));
        }
    }
    if e.rule_id.is_none() && e.rule_name.is_none() {
        return Err(invalid(
            format!("exceptions[{i}]"),
            "names no rule: set rule_id or rule_name (exceptions are per rule)",
        ));
    }
    if e.conditions().next().is_none() {
        return Err(invalid(
            format!("exceptions[{i}]"),
            "has no condition (container_id, container_image_name, process_executable, \
             process_parent_executable, user_name, user_id): it would silence the whole \
             rule; remove the rule instead",
        ));
    }
    Ok(())
}
