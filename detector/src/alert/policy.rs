//! What happens to a match before it becomes an alert line: per-rule exceptions from the
//! config, and the suppression window.
//!
//! Suppression keeps detection immediate: the first alert of a key (rule, `container.id`,
//! `process.executable`) is written at once and opens a window of N seconds; identical
//! matches inside the window are only counted. When the window closes with a count, one more
//! alert (the last folded match) is written carrying `detector.alert.suppressed_count`, so
//! nothing is lost silently and a burst costs two lines, not thousands.
//!
//! Windows are measured in event time ([`EventTime`], the documents' `@timestamp`, see
//! [`super::clock`]): the caller says when each match happened and when to close windows,
//! so the same documents fold the same way live and in a replay.

use std::time::Duration;

use rustc_hash::FxHashMap;

use super::clock::EventTime;
use crate::config::{Exception, ExceptionSubject};
use crate::ecs::EcsDocument;
use crate::rules::RuleIdx;
use crate::rules::meta::RuleMeta;

/// What to do with one match.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Write it now.
    Emit,
    /// A configured exception covers it: drop (counted).
    Excepted,
    /// Folded into an open suppression window (counted; reported when the window closes).
    Suppressed,
}

/// The suppression key: same rule, container and executable.
type Key = (String, Option<String>, Option<String>);

struct Window {
    opened: EventTime,
    folded: u64,
    /// The last folded match, reported with the count when the window closes.
    last: Option<(RuleIdx, EcsDocument)>,
}

/// A closed suppression window that folded matches: the alert still to write.
#[derive(Debug)]
pub struct Folded {
    /// The rule (index in the rule set the matches came from).
    pub rule: RuleIdx,
    /// The last folded match's document.
    pub doc: EcsDocument,
    /// How many matches the window folded (`detector.alert.suppressed_count`).
    pub count: u64,
}

/// Exceptions and suppression state. Owned by the alert stage; replaced on reload.
pub struct AlertPolicy {
    window: Duration,
    exceptions: Vec<Exception>,
    open: FxHashMap<Key, Window>,
    /// The earliest time an open window closes (`None`: none open), so that checking for
    /// closed windows on every document costs one comparison.
    next_close: Option<EventTime>,
    /// Windows found expired (not yet closed by [`AlertPolicy::expire`]) when a new match of
    /// their key opened the next one: reported by the next `expire`.
    late: Vec<Folded>,
    /// Matches dropped by an exception.
    pub excepted: u64,
    /// Matches folded into a window.
    pub suppressed: u64,
}

impl AlertPolicy {
    /// `window` zero turns suppression off.
    pub fn new(window: Duration, exceptions: Vec<Exception>) -> Self {
        AlertPolicy {
            window,
            exceptions,
            open: FxHashMap::default(),
            next_close: None,
            late: Vec::new(),
            excepted: 0,
            suppressed: 0,
        }
    }

    /// The policy a config asks for: its `[alerts] suppression_window_secs` and
    /// `[[exceptions]]` (the one place both `run` and `replay` build it from).
    pub fn from_config(config: &crate::config::Config) -> Self {
        Self::new(
            Duration::from_secs(config.alerts.suppression_window_secs),
            config.exceptions.clone(),
        )
    }

    /// No exceptions and no suppression: every match is an alert (`replay --no-policy`).
    pub fn off() -> Self {
        Self::new(Duration::ZERO, Vec::new())
    }

    /// The suppression window (zero: off).
    pub fn window(&self) -> Duration {
        self.window
    }

    /// The configured exceptions.
    pub fn exceptions(&self) -> &[Exception] {
        &self.exceptions
    }

    /// Decides on one match of `rule` (index `rule_idx` in the caller's rule set) on `doc`,
    /// which happened at `at`. A match earlier than its key's open window (slightly out of
    /// order) folds into it.
    pub fn check(
        &mut self,
        rule_idx: RuleIdx,
        rule: &RuleMeta,
        doc: &EcsDocument,
        at: EventTime,
    ) -> Verdict {
        let container = doc.container.as_ref();
        let process = doc.process.as_ref();
        if !self.exceptions.is_empty() {
            let subject = ExceptionSubject {
                rule_id: &rule.rule_id,
                rule_name: &rule.name,
                container_id: container.and_then(|c| c.id.as_deref()),
                container_image_name: container
                    .and_then(|c| c.image.as_ref())
                    .and_then(|i| i.name.as_deref()),
                process_executable: process.and_then(|p| p.core.executable.as_deref()),
                process_parent_executable: process
                    .and_then(|p| p.parent.as_ref())
                    .and_then(|p| p.core.executable.as_deref()),
                user_name: doc.user.as_ref().and_then(|u| u.name.as_deref()),
                user_id: doc.user.as_ref().and_then(|u| u.id.as_deref()),
            };
            if self.exceptions.iter().any(|e| e.matches(&subject)) {
                self.excepted += 1;
                return Verdict::Excepted;
            }
        }
        if self.window.is_zero() {
            return Verdict::Emit;
        }
        let key = (
            rule.rule_id.clone(),
            container.and_then(|c| c.id.clone()),
            process.and_then(|p| p.core.executable.clone()),
        );
        match self.open.get_mut(&key) {
            Some(w) if at.since(w.opened) < self.window => {
                w.folded += 1;
                w.last = Some((rule_idx, doc.clone()));
                self.suppressed += 1;
                Verdict::Suppressed
            }
            _ => {
                // A window still here has ended without being closed (no `expire` since):
                // its count is kept for the next `expire`, not overwritten.
                if let Some(old) = self.open.remove(&key) {
                    self.late.extend(old.last.map(|(rule, doc)| Folded {
                        rule,
                        doc,
                        count: old.folded,
                    }));
                }
                let closes = at + self.window;
                self.next_close = Some(self.next_close.map_or(closes, |c| c.min(closes)));
                self.open.insert(
                    key,
                    Window {
                        opened: at,
                        folded: 0,
                        last: None,
                    },
                );
                Verdict::Emit
            }
        }
    }

    /// Closes the windows that end at or before `now`; returns, for each that folded
    /// matches, the alert still to write, oldest window first.
    pub fn expire(&mut self, now: EventTime) -> Vec<Folded> {
        if self.late.is_empty() && self.next_close.is_none_or(|c| now < c) {
            return Vec::new();
        }
        let window = self.window;
        let mut closed = Vec::new();
        let mut next_close: Option<EventTime> = None;
        self.open.retain(|key, w| {
            let closes = w.opened + window;
            if now < closes {
                next_close = Some(next_close.map_or(closes, |c| c.min(closes)));
                return true;
            }
            if let Some((rule, doc)) = w.last.take() {
                closed.push((
                    w.opened,
                    key.clone(),
                    Folded {
                        rule,
                        doc,
                        count: w.folded,
                    },
                ));
            }
            false
        });
        self.next_close = next_close;
        // The map's order is arbitrary: report in the order the windows opened.
        closed.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
        let mut out = std::mem::take(&mut self.late);
        out.extend(closed.into_iter().map(|(_, _, f)| f));
        out
    }

    /// Closes every window (at shutdown, before a reload, at the end of a replay), so no
    /// folded count is lost.
    pub fn drain(&mut self) -> Vec<Folded> {
        self.expire(EventTime::from_unix_nanos(i64::MAX))
    }

    /// Open windows (for stats).
    pub fn open_windows(&self) -> usize {
        self.open.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ecs::{Container, Process, ProcessCore, Shared, User};

    const R0: RuleIdx = RuleIdx::new(0);
    const R1: RuleIdx = RuleIdx::new(1);

    fn t0() -> EventTime {
        EventTime::parse("2026-01-01T00:00:00Z").unwrap()
    }

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    fn meta(id: &str) -> RuleMeta {
        RuleMeta {
            rule_id: id.into(),
            name: format!("rule {id}"),
            ..RuleMeta::default()
        }
    }

    fn doc(container: &str, exe: &str) -> EcsDocument {
        EcsDocument {
            container: Some(Shared::new(Container {
                id: Some(container.into()),
                ..Container::default()
            })),
            process: Some(Process {
                core: ProcessCore {
                    executable: Some(exe.into()),
                    ..ProcessCore::default()
                },
                ..Process::default()
            }),
            user: Some(User {
                id: Some("0".into()),
                name: Some("root".into()),
                ..User::default()
            }),
            ..EcsDocument::default()
        }
    }

    #[test]
    fn without_window_or_exceptions_everything_is_emitted() {
        let mut p = AlertPolicy::new(Duration::ZERO, vec![]);
        let now = t0();
        for _ in 0..3 {
            assert_eq!(
                p.check(R0, &meta("a"), &doc("c1", "/usr/bin/ssh"), now),
                Verdict::Emit
            );
        }
        assert!(p.expire(now + secs(100)).is_empty());
    }

    #[test]
    fn identical_matches_fold_and_report_their_count() {
        let mut p = AlertPolicy::new(secs(10), vec![]);
        let t0 = t0();
        let m = meta("a");
        assert_eq!(
            p.check(R0, &m, &doc("c1", "/usr/bin/ssh"), t0),
            Verdict::Emit
        );
        for i in 1..=4 {
            let t = t0 + secs(i);
            assert_eq!(
                p.check(R0, &m, &doc("c1", "/usr/bin/ssh"), t),
                Verdict::Suppressed
            );
        }
        // A different container, executable or rule is not identical.
        assert_eq!(
            p.check(R0, &m, &doc("c2", "/usr/bin/ssh"), t0),
            Verdict::Emit
        );
        assert_eq!(
            p.check(R0, &m, &doc("c1", "/usr/sbin/sshd"), t0),
            Verdict::Emit
        );
        assert_eq!(
            p.check(R1, &meta("b"), &doc("c1", "/usr/bin/ssh"), t0),
            Verdict::Emit
        );
        assert!(p.expire(t0 + secs(5)).is_empty());
        let closed = p.expire(t0 + secs(10));
        assert_eq!(closed.len(), 1, "only the window that folded reports");
        assert_eq!(closed[0].count, 4);
        assert_eq!(p.suppressed, 4);
        assert_eq!(p.open_windows(), 0);
        // After the window, the next match is an alert again.
        let t = t0 + secs(11);
        assert_eq!(
            p.check(R0, &m, &doc("c1", "/usr/bin/ssh"), t),
            Verdict::Emit
        );
    }

    #[test]
    fn drain_reports_open_counts() {
        let mut p = AlertPolicy::new(secs(3600), vec![]);
        let t0 = t0();
        let m = meta("a");
        p.check(R0, &m, &doc("c1", "/x"), t0);
        p.check(R0, &m, &doc("c1", "/x"), t0);
        let drained = p.drain();
        assert_eq!(drained.len(), 1);
        assert_eq!(drained[0].count, 1);
    }

    #[test]
    fn exceptions_drop_matching_alerts_only() {
        let exc = Exception {
            rule_id: Some("a".into()),
            container_id: Some("c1".into()),
            user_name: Some("root".into()),
            ..Exception::default()
        };
        let mut p = AlertPolicy::new(Duration::ZERO, vec![exc]);
        let now = t0();
        assert_eq!(
            p.check(R0, &meta("a"), &doc("c1", "/x"), now),
            Verdict::Excepted
        );
        assert_eq!(
            p.check(R0, &meta("a"), &doc("c2", "/x"), now),
            Verdict::Emit
        );
        assert_eq!(
            p.check(R0, &meta("b"), &doc("c1", "/x"), now),
            Verdict::Emit
        );
        assert_eq!(p.excepted, 1);
    }

    #[test]
    fn a_window_that_ended_unclosed_keeps_its_count() {
        let mut p = AlertPolicy::new(secs(10), vec![]);
        let m = meta("a");
        let t0 = t0();
        assert_eq!(p.check(R0, &m, &doc("c1", "/x"), t0), Verdict::Emit);
        assert_eq!(
            p.check(R0, &m, &doc("c1", "/x"), t0 + secs(3)),
            Verdict::Suppressed
        );
        // The window ended at t0 + 10 s, and nobody called `expire`: the next match opens a
        // new window, and the old count is still reported.
        assert_eq!(
            p.check(R0, &m, &doc("c1", "/x"), t0 + secs(12)),
            Verdict::Emit
        );
        let closed = p.expire(t0 + secs(12));
        assert_eq!(closed.len(), 1);
        assert_eq!(closed[0].count, 1);
        assert_eq!(p.open_windows(), 1, "the new window stays open");
        assert!(p.expire(t0 + secs(21)).is_empty());
        assert!(p.drain().is_empty(), "the new window folded nothing");
        assert_eq!(p.open_windows(), 0);
    }

    #[test]
    fn closed_windows_come_out_in_the_order_they_opened_and_late_matches_fold() {
        let mut p = AlertPolicy::new(secs(10), vec![]);
        let m = meta("a");
        let t0 = t0();
        let exes = ["/e", "/b", "/d", "/a", "/c"];
        for (i, exe) in exes.iter().enumerate() {
            let at = t0 + secs(i as u64);
            assert_eq!(p.check(R0, &m, &doc("c1", exe), at), Verdict::Emit);
            // A match from before the window opened (out of order, from t0) folds into it.
            assert_eq!(p.check(R0, &m, &doc("c1", exe), t0), Verdict::Suppressed);
            for _ in 0..i {
                p.check(R0, &m, &doc("c1", exe), at + secs(1));
            }
        }
        // Nothing closes before the first window's end, then everything in opening order.
        assert!(p.expire(t0 + Duration::from_millis(9_999)).is_empty());
        let first = p.expire(t0 + secs(10));
        assert_eq!(first.len(), 1);
        let rest = p.expire(t0 + secs(60));
        let got: Vec<(String, u64)> = first
            .iter()
            .chain(&rest)
            .map(|f| {
                let exe = f.doc.process.as_ref().unwrap().core.executable.clone();
                (exe.unwrap(), f.count)
            })
            .collect();
        let want: Vec<(String, u64)> = exes
            .iter()
            .enumerate()
            .map(|(i, e)| (e.to_string(), 1 + i as u64))
            .collect();
        assert_eq!(got, want);
    }
}
