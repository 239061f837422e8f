//! The heartbeat file: the event loop rewrites it (atomically: temp file + rename) at most
//! once every [`HEARTBEAT_EVERY`], and `detector health` reads it.
//!
//! Why a file: a Kubernetes exec probe (and anyone else) can then tell an attached daemon
//! whose loop turns from one that stalled, died or never attached, without the daemon
//! listening on anything. Its age is the liveness signal (a stopped loop stops writing);
//! `attached` and the counters say what the loop last saw.

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// The longest between two writes while the loop turns (the housekeeping tick guarantees
/// a turn at least every 500 ms).
pub const HEARTBEAT_EVERY: Duration = Duration::from_secs(1);

/// What the heartbeat file holds (one JSON object).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Beat {
    /// When written, in milliseconds since the Unix epoch.
    pub timestamp_ms: u64,
    /// The daemon's pid.
    pub pid: u32,
    /// The kernel programs are attached (always true while the loop runs; a daemon that
    /// failed to attach never writes).
    pub attached: bool,
    /// Process events read so far.
    pub events: u64,
    /// Events the kernel lost.
    pub lost: u64,
    /// Alerts raised.
    pub alerts: u64,
    /// The event stream stopped: a canary's exec did not come back (`daemon::canary`).
    /// Absent in heartbeats of older daemons: not blinded.
    #[serde(default)]
    pub blinded: bool,
}

impl Beat {
    /// A beat now, from the stats document (`daemon::stats::summary`): events of every
    /// kind, kernel losses, alerts.
    pub fn from_summary(summary: &serde_json::Value) -> Beat {
        let n = |v: &serde_json::Value| v.as_u64().unwrap_or(0);
        let events = summary["events"]
            .as_object()
            .map(|kinds| kinds.values().map(n).sum())
            .unwrap_or(0);
        Beat {
            timestamp_ms: now_ms(),
            pid: std::process::id(),
            attached: true,
            events,
            lost: n(&summary["lost"]),
            alerts: n(&summary["alerts"]),
            blinded: false,
        }
    }
}

/// Milliseconds since the Unix epoch now.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Writes `beat` to `path` atomically: readers see the old file or the new one, never half.
pub fn write(path: &Path, beat: &Beat) -> io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(&serde_json::to_vec(beat).map_err(io::Error::other)?)?;
    f.write_all(b"\n")?;
    drop(f);
    std::fs::rename(&tmp, path)
}

/// Why a heartbeat does not say "healthy".
#[derive(Debug, thiserror::Error)]
pub enum Unhealthy {
    #[error(
        "cannot read heartbeat {path}: {source} (is the daemon running with [health] heartbeat_path set?)"
    )]
    Unreadable { path: PathBuf, source: io::Error },
    #[error("heartbeat {path} is not a detector heartbeat: {source}")]
    Malformed {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error(
        "heartbeat {path} is {age_secs:.1} s old (max {max_secs} s): the daemon's loop stalled or it stopped"
    )]
    Stale {
        path: PathBuf,
        age_secs: f64,
        max_secs: u64,
    },
    #[error("heartbeat {path} says the programs are not attached")]
    Detached { path: PathBuf },
    #[error(
        "sensor blinded: heartbeat {path} says the event stream stopped (the daemon's canary exec was not seen)"
    )]
    Blinded { path: PathBuf },
}

/// Reads `path` and checks it is at most `max_age` old (against `now_ms`) and attached.
pub fn check(path: &Path, max_age: Duration, now_ms: u64) -> Result<Beat, Unhealthy> {
    let text = std::fs::read(path).map_err(|source| Unhealthy::Unreadable {
        path: path.into(),
        source,
    })?;
    let beat: Beat = serde_json::from_slice(&text).map_err(|source| Unhealthy::Malformed {
        path: path.into(),
        source,
    })?;
    let age_ms = now_ms.saturating_sub(beat.timestamp_ms);
    if age_ms > max_age.as_millis() as u64 {
        return Err(Unhealthy::Stale {
            path: path.into(),
            age_secs: age_ms as f64 / 1000.0,
            max_secs: max_age.as_secs(),
        });
    }
    if !beat.attached {
        return Err(Unhealthy::Detached { path: path.into() });
    }
    if beat.blinded {
        return Err(Unhealthy::Blinded { path: path.into() });
    }
    Ok(beat)
}

/// Writes the heartbeat from the event loop, at most once every [`HEARTBEAT_EVERY`].
#[derive(Debug)]
pub struct Heartbeat {
    path: Option<PathBuf>,
    last: Option<Instant>,
}

impl Heartbeat {
    /// A heartbeat to `path` (`None`: off, every call a no-op).
    pub fn new(path: Option<PathBuf>) -> Self {
        Heartbeat { path, last: None }
    }

    /// Whether a heartbeat path is set.
    pub fn is_on(&self) -> bool {
        self.path.is_some()
    }

    /// Whether a write is due now (so the caller gathers counters only then).
    pub fn due(&self) -> bool {
        self.path.is_some() && self.last.is_none_or(|t| t.elapsed() >= HEARTBEAT_EVERY)
    }

    /// Writes `beat` (a failure is logged: a missing heartbeat is what the probe reports).
    pub fn beat(&mut self, beat: &Beat) {
        let Some(path) = &self.path else { return };
        self.last = Some(Instant::now());
        if let Err(e) = write(path, beat) {
            tracing::warn!(path = %path.display(), error = %e, "cannot write the heartbeat");
        }
    }

    /// The daemon stops: a last beat saying not attached, so a probe fails at once rather
    /// than after `--max-age`.
    pub fn stopped(&mut self, mut last: Beat) {
        last.attached = false;
        self.beat(&last);
    }

    /// Changes the path (a SIGHUP reload); the next turn writes to it.
    pub fn set_path(&mut self, path: Option<PathBuf>) {
        if path != self.path {
            self.path = path;
            self.last = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn beat(ts: u64, attached: bool) -> Beat {
        Beat {
            timestamp_ms: ts,
            pid: 1,
            attached,
            events: 10,
            lost: 0,
            alerts: 2,
            blinded: false,
        }
    }

    #[test]
    fn fresh_attached_is_healthy_and_everything_else_says_why_not() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("heartbeat");
        let max = Duration::from_secs(5);
        let err = check(&path, max, 1_000).unwrap_err();
        assert!(matches!(err, Unhealthy::Unreadable { .. }), "{err}");
        assert!(err.to_string().contains("cannot read heartbeat"), "{err}");

        write(&path, &beat(100_000, true)).unwrap();
        assert_eq!(check(&path, max, 104_000).unwrap(), beat(100_000, true));
        let err = check(&path, max, 106_000).unwrap_err();
        assert!(err.to_string().contains("6.0 s old (max 5 s)"), "{err}");

        write(&path, &beat(100_000, false)).unwrap();
        let err = check(&path, max, 100_000).unwrap_err();
        assert!(matches!(err, Unhealthy::Detached { .. }), "{err}");

        let mut blind = beat(100_000, true);
        blind.blinded = true;
        write(&path, &blind).unwrap();
        let err = check(&path, max, 100_000).unwrap_err();
        assert!(matches!(err, Unhealthy::Blinded { .. }), "{err}");
        assert!(err.to_string().starts_with("sensor blinded: "), "{err}");

        // A heartbeat without the field (an older daemon) is not blinded.
        std::fs::write(
            &path,
            r#"{"timestamp_ms":100000,"pid":1,"attached":true,"events":1,"lost":0,"alerts":0}"#,
        )
        .unwrap();
        assert!(check(&path, max, 100_000).is_ok());

        std::fs::write(&path, "{}").unwrap();
        let err = check(&path, max, 100_000).unwrap_err();
        assert!(matches!(err, Unhealthy::Malformed { .. }), "{err}");
        assert!(!dir.path().join("heartbeat.tmp").exists());
    }

    #[test]
    fn counters_come_from_the_stats_document() {
        let summary = serde_json::json!({
            "events": {"fork": 3, "exec": 4, "exit": 5}, "lost": 2, "alerts": 1
        });
        let b = Beat::from_summary(&summary);
        assert_eq!((b.events, b.lost, b.alerts, b.attached), (12, 2, 1, true));
        assert!(b.timestamp_ms > 0);
    }

    #[test]
    fn writes_at_most_once_a_period_and_not_when_off() {
        let off = Heartbeat::new(None);
        assert!(!off.due());
        let dir = tempfile::tempdir().unwrap();
        let mut hb = Heartbeat::new(Some(dir.path().join("hb")));
        assert!(hb.due());
        hb.beat(&beat(now_ms(), true));
        assert!(!hb.due());
        hb.set_path(Some(dir.path().join("other")));
        assert!(hb.due());
    }
}
