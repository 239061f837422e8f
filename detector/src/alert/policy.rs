//! What happens to a match before it becomes an alert line: per-rule exceptions from the
//! config, and the suppression window.
//!
//! Suppression keeps detection immediate: the first alert of a key (rule, `container.id`,
//! `process.executable`) is written at once and opens a window of N seconds; identical
//! matches inside the window are only counted. When the window closes with a count, one more
//! alert (the last folded match) is written carrying `detector.alert.suppressed_count`, so
//! nothing is lost silently and a burst costs two lines, not thousands.

use std::time::{Duration, Instant};

use rustc_hash::FxHashMap;

use crate::config::{Exception, ExceptionSubject};
use crate::ecs::EcsDocument;
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
    opened: Instant,
    folded: u64,
    /// The last folded match, reported with the count when the window closes.
    last: Option<(usize, EcsDocument)>,
}

/// Exceptions and suppression state. Owned by the alert stage; replaced on reload.
pub struct AlertPolicy {
    window: Duration,
    exceptions: Vec<Exception>,
    open: FxHashMap<Key, Window>,
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
            excepted: 0,
            suppressed: 0,
        }
    }

    /// Decides on one match of `rule` (index `rule_idx` in the caller's rule list) on `doc`.
    pub fn check(
        &mut self,
        rule_idx: usize,
        rule: &RuleMeta,
        doc: &EcsDocument,
        now: Instant,
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
            Some(w) if now.duration_since(w.opened) < self.window => {
                w.folded += 1;
                w.last = Some((rule_idx, doc.clone()));
                self.suppressed += 1;
                Verdict::Suppressed
            }
            _ => {
                self.open.insert(
                    key,
                    Window {
                        opened: now,
                        folded: 0,
                        last: None,
                    },
                );
                Verdict::Emit
            }
        }
    }

    /// Closes the windows older than the suppression window; returns, for each that folded
    /// matches, the rule index, the last folded document and the count to report.
    pub fn expire(&mut self, now: Instant) -> Vec<(usize, EcsDocument, u64)> {
        let window = self.window;
        let mut out = Vec::new();
        self.open.retain(|_, w| {
            if now.duration_since(w.opened) < window {
                return true;
            }
            if let Some((idx, doc)) = w.last.take() {
                out.push((idx, doc, w.folded));
            }
            false
        });
        out
    }

    /// Closes every window (at shutdown), so no folded count is lost.
    pub fn drain(&mut self) -> Vec<(usize, EcsDocument, u64)> {
        self.window = Duration::ZERO;
        self.expire(Instant::now())
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
        let now = Instant::now();
        for _ in 0..3 {
            assert_eq!(
                p.check(0, &meta("a"), &doc("c1", "/usr/bin/ssh"), now),
                Verdict::Emit
            );
        }
        assert!(p.expire(now + Duration::from_secs(100)).is_empty());
    }

    #[test]
    fn identical_matches_fold_and_report_their_count() {
        let mut p = AlertPolicy::new(Duration::from_secs(10), vec![]);
        let t0 = Instant::now();
        let m = meta("a");
        assert_eq!(
            p.check(0, &m, &doc("c1", "/usr/bin/ssh"), t0),
            Verdict::Emit
        );
        for i in 1..=4 {
            let t = t0 + Duration::from_secs(i);
            assert_eq!(
                p.check(0, &m, &doc("c1", "/usr/bin/ssh"), t),
                Verdict::Suppressed
            );
        }
        // A different container, executable or rule is not identical.
        assert_eq!(
            p.check(0, &m, &doc("c2", "/usr/bin/ssh"), t0),
            Verdict::Emit
        );
        assert_eq!(
            p.check(0, &m, &doc("c1", "/usr/sbin/sshd"), t0),
            Verdict::Emit
        );
        assert_eq!(
            p.check(1, &meta("b"), &doc("c1", "/usr/bin/ssh"), t0),
            Verdict::Emit
        );
        assert!(p.expire(t0 + Duration::from_secs(5)).is_empty());
        let closed = p.expire(t0 + Duration::from_secs(10));
        assert_eq!(closed.len(), 1, "only the window that folded reports");
        assert_eq!(closed[0].2, 4);
        assert_eq!(p.suppressed, 4);
        assert_eq!(p.open_windows(), 0);
        // After the window, the next match is an alert again.
        let t = t0 + Duration::from_secs(11);
        assert_eq!(p.check(0, &m, &doc("c1", "/usr/bin/ssh"), t), Verdict::Emit);
    }

    #[test]
    fn drain_reports_open_counts() {
        let mut p = AlertPolicy::new(Duration::from_secs(3600), vec![]);
        let t0 = Instant::now();
        let m = meta("a");
        p.check(0, &m, &doc("c1", "/x"), t0);
        p.check(0, &m, &doc("c1", "/x"), t0);
        let drained = p.drain();
        assert_eq!(drained.len(), 1);
        assert_eq!(drained[0].2, 1);
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
        let now = Instant::now();
        assert_eq!(
            p.check(0, &meta("a"), &doc("c1", "/x"), now),
            Verdict::Excepted
        );
        assert_eq!(p.check(0, &meta("a"), &doc("c2", "/x"), now), Verdict::Emit);
        assert_eq!(p.check(0, &meta("b"), &doc("c1", "/x"), now), Verdict::Emit);
        assert_eq!(p.excepted, 1);
    }
}
