//! The detector arm: how the harness starts `detector run`, knows it is ready, and reads
//! its final statistics.
//!
//! # What the harness expects from the detector (the integrator's contract)
//!
//! * Command line: `<bin> run --config <config> --alerts-file <file> [--detector-arg …]`
//!   with the `--detector-env KEY=VALUE` pairs given to `cargo xtask bench`. The config is
//!   the shipped `config/detector.toml` used in place (not copied: its relative paths, such
//!   as `rules`, resolve against its own directory); the alerts file is a fresh one in the
//!   scratch directory, and the daemon's stdout is discarded.
//! * Readiness: once its programs are attached, the detector writes one line to stderr
//!   containing [`READY_MARKER`] (`detector: ready: …` from run, `{"ready":…}` from trace). The storm does
//!   not start before that line; a detector that exits first, or is silent for
//!   [`READY_TIMEOUT`], makes the arm "unavailable" with its stderr as the reason.
//! * Stop: SIGTERM; the detector drains its ring buffer and, before exiting, prints ONE
//!   JSON line on stderr of the form
//!   `{"final_stats": {"events": {"fork": N, "exec": N, "exit": N}, "lost": N, ...}}`
//!   (other keys are allowed and ignored; `"memory": {"peak_rss_kib": N}`, the daemon's own
//!   `VmHWM` at exit, is read when present). Parsed by [`parse_final_stats`]; the last such
//!   line wins. Without it the event columns read "n/a" — never a guessed number.
//!   The exit line of `detector trace` (`{"counters": {…}, "lost": N, "received":
//!   {"fork": N, "exec": N, "exit": N}, …}`) is read the same way for the `trace` arm.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde::Serialize;

/// Substring of the stderr line that says the detector is attached and delivering.
pub const READY_MARKER: &str = "ready";
/// Top-level key of the final statistics line on stderr.
pub const FINAL_STATS_KEY: &str = "final_stats";
/// How long a starting detector may take to print its ready line.
pub const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// How to start the detector (from the bench command line).
#[derive(Clone, Debug)]
pub struct DetectorCmd {
    /// The binary (default `target/release/detector`).
    pub bin: PathBuf,
    /// The shipped config (default `config/detector.toml`), used in place.
    pub config: PathBuf,
    /// Extra arguments appended to `detector run`.
    pub extra_args: Vec<String>,
    /// Extra environment for the daemon.
    pub env: Vec<(String, String)>,
}

impl DetectorCmd {
    /// Checks that the binary exists and has a `run` subcommand; the error text is the
    /// "unavailable (reason)" shown in the table.
    pub fn check(&self) -> Result<(), String> {
        if !self.bin.is_file() {
            return Err(format!("no binary at {}", self.bin.display()));
        }
        if !self.config.is_file() {
            return Err(format!("no config at {}", self.config.display()));
        }
        match Command::new(&self.bin).args(["run", "--help"]).output() {
            Ok(o) if o.status.success() => Ok(()),
            Ok(o) => Err(format!(
                "`{} run --help` failed ({}): {}",
                short(&self.bin),
                o.status,
                first_line(&o.stderr)
            )),
            Err(e) => Err(format!("cannot execute {}: {e}", self.bin.display())),
        }
    }

    /// The `detector run` command writing alerts to `alerts`.
    pub fn run_command(&self, alerts: &Path) -> Command {
        let mut cmd = Command::new(&self.bin);
        cmd.arg("run")
            .arg("--config")
            .arg(&self.config)
            .arg("--alerts-file")
            .arg(alerts)
            .args(&self.extra_args)
            .envs(self.env.iter().map(|(k, v)| (k, v)));
        cmd
    }

    /// Like [`DetectorCmd::check`] for the `trace` subcommand.
    pub fn check_trace(&self) -> Result<(), String> {
        if !self.bin.is_file() {
            return Err(format!("no binary at {}", self.bin.display()));
        }
        match Command::new(&self.bin).args(["trace", "--help"]).output() {
            Ok(o) if o.status.success() => Ok(()),
            Ok(o) => Err(format!(
                "`{} trace --help` failed ({}): {}",
                short(&self.bin),
                o.status,
                first_line(&o.stderr)
            )),
            Err(e) => Err(format!("cannot execute {}: {e}", self.bin.display())),
        }
    }

    /// The `detector trace --raw` command (start-up measurement and the `trace` arm): the
    /// sensor's records decoded, one JSON line each, like the peers' output and what
    /// `peers::count_trace` reads (plain `trace` writes ECS documents, which it cannot).
    pub fn trace_command(&self) -> Command {
        let mut cmd = Command::new(&self.bin);
        cmd.args(["trace", "--raw"])
            .envs(self.env.iter().map(|(k, v)| (k, v)));
        cmd
    }
}

/// The binary's file name, for reasons that must fit a table cell.
fn short(p: &Path) -> String {
    p.file_name().map_or_else(
        || p.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

fn first_line(b: &[u8]) -> String {
    let s = String::from_utf8_lossy(b);
    s.lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("no output")
        .chars()
        .take(200)
        .collect()
}

/// Events counted by the detector, from its final stats line.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct FinalStats {
    /// Fork events received.
    pub fork: u64,
    /// Exec events received.
    pub exec: u64,
    /// Exit events received.
    pub exit: u64,
    /// Events lost (ring-buffer reservation failures and any other counted loss).
    pub lost: u64,
    /// The daemon's own peak RSS at exit, KiB (`final_stats.memory.peak_rss_kib`, its
    /// `VmHWM`; absent from older binaries and from `trace`).
    pub peak_rss_kib: Option<u64>,
}

impl FinalStats {
    /// All events received.
    pub fn received(&self) -> u64 {
        self.fork + self.exec + self.exit
    }
}

/// Finds the last `{"final_stats": …}` line in `lines` and reads its counts.
/// Lines that are not JSON, or lack a count, are skipped (a half-written line is no stats).
pub fn parse_final_stats<S: AsRef<str>>(lines: &[S]) -> Option<FinalStats> {
    lines.iter().rev().find_map(|l| parse_line(l.as_ref()))
}

fn parse_line(line: &str) -> Option<FinalStats> {
    let v: serde_json::Value = serde_json::from_str(line.trim()).ok()?;
    let (s, ev) = match v.get(FINAL_STATS_KEY) {
        Some(s) => (s, s.get("events")?),
        // `detector trace`'s exit line.
        None if v.get("counters").is_some() => (&v, v.get("received")?),
        None => return None,
    };
    let n = |v: &serde_json::Value, k: &str| v.get(k).and_then(serde_json::Value::as_u64);
    Some(FinalStats {
        fork: n(ev, "fork")?,
        exec: n(ev, "exec")?,
        exit: n(ev, "exit")?,
        lost: n(s, "lost")?,
        peak_rss_kib: s.get("memory").and_then(|m| n(m, "peak_rss_kib")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn final_stats_lines() {
        let good = r#"{"final_stats": {"events": {"fork": 10, "exec": 20, "exit": 30}, "lost": 4, "alerts": 1}}"#;
        type Counts = Option<(u64, u64, u64, u64)>;
        let cases: &[(&[&str], Counts)] = &[
            (&[good], Some((10, 20, 30, 4))),
            (&["INFO starting", good, "bye"], Some((10, 20, 30, 4))),
            (&[], None),
            (&["not json"], None),
            // Missing lost: not a stats line, never a guessed zero.
            (
                &[r#"{"final_stats":{"events":{"fork":1,"exec":1,"exit":1}}}"#],
                None,
            ),
            // Negative or fractional counts are not counts.
            (
                &[r#"{"final_stats":{"events":{"fork":-1,"exec":1,"exit":1},"lost":0}}"#],
                None,
            ),
            // Truncated line (killed mid-write).
            (&[r#"{"final_stats":{"events":{"fork":1,"ex"#], None),
            // The last valid line wins.
            (
                &[
                    good,
                    r#"{"final_stats":{"events":{"fork":1,"exec":2,"exit":3},"lost":0}}"#,
                ],
                Some((1, 2, 3, 0)),
            ),
            (
                &[r#"{"stats":{"events":{"fork":1,"exec":2,"exit":3},"lost":0}}"#],
                None,
            ),
            (
                &[
                    r#"{"counters":{"ring_full":2},"lost":2,"received":{"fork":5,"exec":6,"exit":7},"malformed":0}"#,
                ],
                Some((5, 6, 7, 2)),
            ),
            (&[r#"{"counters":{},"lost":2}"#], None),
        ];
        for (lines, want) in cases {
            let got = parse_final_stats(lines).map(|s| (s.fork, s.exec, s.exit, s.lost));
            assert_eq!(got, *want, "lines {lines:?}");
        }
        let s = parse_final_stats(&[good]).unwrap();
        assert_eq!(s.received(), 60);
        assert_eq!(s.peak_rss_kib, None);
        let with_memory = r#"{"final_stats": {"events": {"fork": 1, "exec": 2, "exit": 3}, "lost": 0, "memory": {"rss_kib": 30000, "peak_rss_kib": 31000}}}"#;
        assert_eq!(
            parse_final_stats(&[with_memory]).unwrap().peak_rss_kib,
            Some(31000)
        );
    }
}
