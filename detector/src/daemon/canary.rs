//! The blinded-sensor check (`[health] canary_interval_secs`): a sensor whose event stream
//! stopped while processes keep starting must say so, not look healthy and quiet.
//!
//! Every interval the daemon runs a tiny canary, its own executable (`/proc/self/exe
//! canary`, a hidden subcommand that exits at once), and remembers the child's pid. The
//! event loop shows every event to [`Canary::observe`]: the canary's exec (an exec event
//! whose tgid is the child's pid) coming back through the kernel programs proves the
//! stream carries events end to end. A canary not seen [`deadline`] after its spawn means
//! the stream stopped: [`Verdict::Blinded`]. A later canary seen again:
//! [`Verdict::Recovered`].
//!
//! [`Watch`] is the state machine alone, over injected times (unit-tested); [`Canary`] adds
//! the children (spawned, reaped without blocking, never left as zombies).

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::ecs::{EcsDocument, Event, now_rfc3339};
use crate::event::{EventKind, ProcessEvent};

/// `event.dataset` of the documents a verdict writes to the alert stream.
pub const HEALTH_DATASET: &str = "detector.health";

/// The hidden subcommand the canary runs (`detector canary`).
pub const SUBCOMMAND: &str = "canary";

/// The shortest time a canary's exec may take to come back before the sensor counts as
/// blinded (a loaded host may delay the reader by seconds).
pub const MIN_DEADLINE: Duration = Duration::from_secs(10);

/// Canaries awaited at once at most (older ones are forgotten: the verdict only needs the
/// oldest unseen one, and a blinded sensor spawns one each interval).
const OUTSTANDING_MAX: usize = 16;

/// How long a canary may stay unseen: twice the interval, at least [`MIN_DEADLINE`].
pub fn deadline(interval: Duration) -> Duration {
    (interval * 2).max(MIN_DEADLINE)
}

/// A change of the sensor's sight.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The canary `pid` was not seen within `waited`: the event stream stopped.
    Blinded { pid: u32, waited: Duration },
    /// A canary was seen again after a blinded verdict.
    Recovered { pid: u32 },
}

impl Verdict {
    /// The verdict as one line for the log and the document's `message`.
    pub fn message(&self) -> String {
        match self {
            Verdict::Blinded { pid, waited } => format!(
                "detector sensor blinded: the exec of its canary process (pid {pid}) did not come \
                 back through the kernel programs within {:.1} s: the event stream stopped and \
                 detection is blind until it recovers",
                waited.as_secs_f64()
            ),
            Verdict::Recovered { pid } => format!(
                "detector sensor recovered: the exec of its canary process (pid {pid}) was seen \
                 again: events flow again (processes started while blinded were not seen)"
            ),
        }
    }

    /// The document for the alert stream: `template` (host and agent) with an
    /// `event.kind: "alert"` (blinded) or `"metric"` (recovered) in [`HEALTH_DATASET`].
    pub fn document(&self, template: &EcsDocument) -> EcsDocument {
        let (kind, action) = match self {
            Verdict::Blinded { .. } => ("alert", "sensor-blinded"),
            Verdict::Recovered { .. } => ("metric", "sensor-recovered"),
        };
        let mut doc = template.clone();
        doc.timestamp = Some(now_rfc3339());
        doc.event = Some(Event {
            kind: Some(kind.into()),
            action: Some(action.into()),
            module: Some(crate::ecs::EVENT_MODULE.into()),
            dataset: Some(HEALTH_DATASET.into()),
            ..Event::default()
        });
        doc.message = Some(self.message());
        doc
    }
}

/// The state machine: canaries awaited (pid, spawn time) and whether the sensor is blind.
#[derive(Debug)]
pub struct Watch {
    deadline: Duration,
    /// Unseen canaries, oldest first.
    outstanding: Vec<(u32, Instant)>,
    blinded: bool,
}

impl Watch {
    pub fn new(interval: Duration) -> Self {
        Watch {
            deadline: deadline(interval),
            outstanding: Vec::new(),
            blinded: false,
        }
    }

    /// Whether the last verdict was [`Verdict::Blinded`].
    pub fn blinded(&self) -> bool {
        self.blinded
    }

    /// A canary `pid` was spawned at `at`.
    pub fn spawned(&mut self, pid: u32, at: Instant) {
        if self.outstanding.len() >= OUTSTANDING_MAX {
            self.outstanding.remove(0);
        }
        self.outstanding.push((pid, at));
    }

    /// Whether `pid` is an awaited canary (the hot-path test: usually no canary is awaited).
    pub fn awaits(&self, pid: u32) -> bool {
        self.outstanding.iter().any(|(p, _)| *p == pid)
    }

    /// The exec of `pid` was seen. An awaited canary: it and every older one are done (the
    /// stream carries events now); a recovery when the sensor was blinded.
    pub fn seen(&mut self, pid: u32) -> Option<Verdict> {
        let i = self.outstanding.iter().position(|(p, _)| *p == pid)?;
        self.outstanding.drain(..=i);
        if self.blinded {
            self.blinded = false;
            return Some(Verdict::Recovered { pid });
        }
        None
    }

    /// At `now`: blinded when the oldest unseen canary is past the deadline (once per
    /// blind spell).
    pub fn check(&mut self, now: Instant) -> Option<Verdict> {
        if self.blinded {
            return None;
        }
        let &(pid, at) = self.outstanding.first()?;
        let waited = now.saturating_duration_since(at);
        if waited <= self.deadline {
            return None;
        }
        self.blinded = true;
        Some(Verdict::Blinded { pid, waited })
    }
}

/// What the canaries counted (the `canary` object of the stats).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct CanaryStats {
    /// Canaries spawned.
    pub spawned: u64,
    /// Canaries whose exec came back through the kernel programs.
    pub seen: u64,
}

/// What one [`Canary::tick`] did besides a verdict.
#[derive(Debug, Default)]
pub struct TickReport {
    pub verdict: Option<Verdict>,
    /// Spawning the canary failed (counted and logged by the caller; not fatal).
    pub spawn_failed: Option<std::io::Error>,
}

/// The canaries of a running daemon: when to spawn, the children to reap, the [`Watch`].
#[derive(Debug)]
pub struct Canary {
    /// `None`: off (`canary_interval_secs = 0`).
    interval: Option<Duration>,
    next: Instant,
    watch: Watch,
    children: Vec<Child>,
    /// Verdicts found by [`Canary::observe`] for the next [`Canary::tick`] to report.
    recovered: Option<Verdict>,
    stats: CanaryStats,
    /// The daemon's pid namespace (its canaries' too). Kernel records carry host pids; a
    /// daemon in a container (no host pid namespace) knows its children by the pid of its
    /// own namespace, so a canary is recognised by `(pid namespace, pid in it)`. `None`:
    /// unknown, by the host pid.
    pid_ns: Option<u32>,
}

impl Canary {
    /// Canaries every `interval_secs` seconds (0: off), spawned by a daemon in pid
    /// namespace `pid_ns_ino`. The first one is spawned at the first tick.
    pub fn new(interval_secs: u64, pid_ns_ino: Option<u64>) -> Self {
        let interval = (interval_secs > 0).then(|| Duration::from_secs(interval_secs));
        Canary {
            interval,
            next: Instant::now(),
            watch: Watch::new(interval.unwrap_or(MIN_DEADLINE)),
            children: Vec::new(),
            recovered: None,
            stats: CanaryStats::default(),
            // Records carry the inode's low 32 bits.
            pid_ns: pid_ns_ino.map(|ino| ino as u32),
        }
    }

    /// Whether the sensor is blinded now.
    pub fn blinded(&self) -> bool {
        self.watch.blinded()
    }

    /// Canaries spawned and seen so far.
    pub fn stats(&self) -> CanaryStats {
        self.stats
    }

    /// Changes the interval (a SIGHUP reload); 0 turns the check off and forgets the state.
    pub fn set_interval(&mut self, interval_secs: u64) {
        let interval = (interval_secs > 0).then(|| Duration::from_secs(interval_secs));
        if interval != self.interval {
            let blinded = self.watch.blinded;
            self.interval = interval;
            self.watch = Watch::new(interval.unwrap_or(MIN_DEADLINE));
            self.watch.blinded = blinded && interval.is_some();
            self.next = Instant::now();
        }
    }

    /// Looks at one event from the ring: the exec of an awaited canary marks it seen.
    #[inline]
    pub fn observe(&mut self, ev: &ProcessEvent) {
        if ev.kind != Some(EventKind::Exec) {
            return;
        }
        let pid = match self.pid_ns {
            Some(ns) if ev.pid_ns_ino != ns => return,
            Some(_) => ev.ns_pid,
            None => ev.tgid,
        };
        if self.watch.awaits(pid) {
            self.stats.seen += 1;
            if let Some(v) = self.watch.seen(pid) {
                self.recovered = Some(v);
            }
        }
    }

    /// Periodic work (call it every housekeeping tick): reap exited canaries, report a
    /// recovery seen since the last tick, check the deadline, spawn when due.
    pub fn tick(&mut self) -> TickReport {
        self.reap();
        let mut report = TickReport {
            verdict: self.recovered.take(),
            ..TickReport::default()
        };
        let Some(interval) = self.interval else {
            return report;
        };
        let now = Instant::now();
        if report.verdict.is_none() {
            report.verdict = self.watch.check(now);
        }
        if now >= self.next {
            self.next = now + interval;
            match spawn() {
                Ok(child) => {
                    self.watch.spawned(child.id(), Instant::now());
                    self.stats.spawned += 1;
                    self.children.push(child);
                }
                Err(e) => report.spawn_failed = Some(e),
            }
        }
        report
    }

    /// Reaps the canaries that exited (never blocks); one that hangs past the deadline is
    /// killed and reaped at a later tick.
    fn reap(&mut self) {
        let limit = self.watch.deadline;
        self.children.retain_mut(|c| match c.try_wait() {
            Ok(Some(_)) | Err(_) => false,
            Ok(None) => true,
        });
        // Bounded: a canary is a process that exits at once; more than a handful alive
        // means something holds them, and they are not left to pile up.
        if self.children.len() > OUTSTANDING_MAX {
            tracing::warn!(
                alive = self.children.len(),
                limit_secs = limit.as_secs(),
                "canaries do not exit; killing the oldest"
            );
            let mut old = self.children.remove(0);
            let _ = old.kill();
            let _ = old.wait();
        }
    }
}

impl Drop for Canary {
    fn drop(&mut self) {
        // Exit: no zombie and no orphan canary left behind.
        for c in &mut self.children {
            if matches!(c.try_wait(), Ok(None)) {
                let _ = c.kill();
            }
            let _ = c.wait();
        }
    }
}

/// Runs `/proc/self/exe canary` (the running binary even if the file was replaced since).
fn spawn() -> std::io::Result<Child> {
    Command::new("/proc/self/exe")
        .arg(SUBCOMMAND)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEC: Duration = Duration::from_secs(1);

    #[test]
    fn the_deadline_is_twice_the_interval_and_at_least_ten_seconds() {
        assert_eq!(deadline(SEC), MIN_DEADLINE);
        assert_eq!(deadline(SEC * 5), SEC * 10);
        assert_eq!(deadline(SEC * 30), SEC * 60);
    }

    #[test]
    fn seen_in_time_then_late_then_recovered() {
        let t0 = Instant::now();
        let mut w = Watch::new(SEC * 5);
        assert_eq!(w.check(t0 + SEC * 100), None, "nothing awaited");

        // Seen in time: never blinded.
        w.spawned(100, t0);
        assert!(w.awaits(100) && !w.awaits(101));
        assert_eq!(w.check(t0 + SEC * 9), None);
        assert_eq!(w.seen(100), None);
        assert_eq!(
            w.check(t0 + SEC * 60),
            None,
            "seen canaries are not awaited"
        );

        // Late: blinded once, past the deadline (not at it).
        w.spawned(200, t0 + SEC * 20);
        w.spawned(201, t0 + SEC * 25);
        assert_eq!(w.check(t0 + SEC * 30), None, "exactly at the deadline");
        assert_eq!(
            w.check(t0 + SEC * 31),
            Some(Verdict::Blinded {
                pid: 200,
                waited: SEC * 11
            })
        );
        assert!(w.blinded());
        assert_eq!(w.check(t0 + SEC * 40), None, "one verdict per blind spell");
        assert_eq!(w.seen(999), None, "not a canary");
        assert!(w.blinded());

        // A later canary seen: recovered, and the older unseen ones are done with.
        w.spawned(202, t0 + SEC * 35);
        assert_eq!(w.seen(202), Some(Verdict::Recovered { pid: 202 }));
        assert!(!w.blinded() && !w.awaits(200) && !w.awaits(201));
        assert_eq!(w.check(t0 + SEC * 100), None);

        // And blinded again when it stops again.
        w.spawned(300, t0 + SEC * 100);
        assert!(matches!(
            w.check(t0 + SEC * 111),
            Some(Verdict::Blinded { pid: 300, .. })
        ));
    }

    #[test]
    fn verdicts_become_health_documents() {
        let blind = Verdict::Blinded {
            pid: 7,
            waited: SEC * 12,
        }
        .document(&EcsDocument::default());
        let v = serde_json::to_value(&blind).unwrap();
        assert_eq!(v["event"]["kind"], "alert");
        assert_eq!(v["event"]["action"], "sensor-blinded");
        assert_eq!(v["event"]["dataset"], HEALTH_DATASET);
        let msg = v["message"].as_str().unwrap();
        assert!(msg.contains("blinded") && msg.contains("pid 7") && msg.contains("12.0 s"));
        let back = Verdict::Recovered { pid: 8 }.document(&EcsDocument::default());
        let v = serde_json::to_value(&back).unwrap();
        assert_eq!(
            (&v["event"]["kind"], &v["event"]["action"]),
            (&"metric".into(), &"sensor-recovered".into())
        );
    }

    #[test]
    fn the_awaited_list_is_bounded() {
        let t0 = Instant::now();
        let mut w = Watch::new(SEC);
        for pid in 0..100 {
            w.spawned(pid, t0 + SEC * pid);
        }
        assert!(!w.awaits(0) && w.awaits(99));
        assert_eq!(w.outstanding.len(), OUTSTANDING_MAX);
    }

    /// A canary is its exec in the daemon's pid namespace with the pid the daemon knows:
    /// the host pid when the namespace is unknown, the namespace's pid when the daemon runs
    /// in a container without the host's pid namespace (records carry host pids).
    #[test]
    fn a_canary_is_known_by_its_pid_in_the_daemons_namespace() {
        let exec = |tgid, pid_ns_ino, ns_pid| ProcessEvent {
            kind: Some(EventKind::Exec),
            tgid,
            pid_ns_ino,
            ns_pid,
            ..ProcessEvent::default()
        };
        let t0 = Instant::now();
        for (own_ns, ev, seen) in [
            (None, exec(4242, 7, 12), true),
            (None, exec(12, 7, 12), false),
            (Some(7u64), exec(4242, 7, 12), false),
            (Some(7), exec(9999, 7, 4242), true),
            (Some(7), exec(4242, 8, 4242), false),
        ] {
            let mut c = Canary::new(1, own_ns);
            c.watch.spawned(4242, t0);
            c.observe(&ev);
            assert_eq!(c.stats.seen == 1, seen, "own ns {own_ns:?}, {ev:?}");
            let mut fork = ev.clone();
            fork.kind = Some(EventKind::Fork);
            let mut c = Canary::new(1, own_ns);
            c.watch.spawned(4242, t0);
            c.observe(&fork);
            assert_eq!(c.stats.seen, 0, "a fork is not the canary's exec");
        }
    }

    #[test]
    fn off_spawns_nothing() {
        let mut c = Canary::new(0, None);
        let r = c.tick();
        assert!(r.verdict.is_none() && r.spawn_failed.is_none());
        assert!(c.children.is_empty() && !c.blinded());
    }
}
