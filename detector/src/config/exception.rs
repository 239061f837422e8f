//! Per-rule exceptions: known-good activity an operator does not want alerts for.
//!
//! An exception names one rule (by `rule_id` or `name`) and one or more conditions on the
//! alert's ECS fields; it suppresses an alert only when the rule matches and EVERY given
//! condition matches exactly (case-sensitive), so adding a condition can only narrow it.

use serde::Deserialize;

/// `[[exceptions]]`: one exception.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Exception {
    /// The rule's `rule.rule_id` (the UUID in its TOML file).
    pub rule_id: Option<String>,
    /// The rule's `rule.name`, as an alternative to `rule_id`.
    pub rule_name: Option<String>,
    /// `container.id` (the full 64-hex id).
    pub container_id: Option<String>,
    /// `container.image.name`.
    pub container_image_name: Option<String>,
    /// `process.executable`.
    pub process_executable: Option<String>,
    /// `process.parent.executable`.
    pub process_parent_executable: Option<String>,
    /// `user.name`.
    pub user_name: Option<String>,
    /// `user.id` (the numeric uid, as a string like ECS).
    pub user_id: Option<String>,
    /// Free text: why this exception exists. Not used for matching.
    pub comment: Option<String>,
}

/// The fields of an alert an exception is matched against (absent fields are `None`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExceptionSubject<'a> {
    /// `rule.id` of the matching rule.
    pub rule_id: &'a str,
    /// `rule.name` of the matching rule.
    pub rule_name: &'a str,
    /// `container.id`.
    pub container_id: Option<&'a str>,
    /// `container.image.name`.
    pub container_image_name: Option<&'a str>,
    /// `process.executable`.
    pub process_executable: Option<&'a str>,
    /// `process.parent.executable`.
    pub process_parent_executable: Option<&'a str>,
    /// `user.name`.
    pub user_name: Option<&'a str>,
    /// `user.id`.
    pub user_id: Option<&'a str>,
}

impl Exception {
    /// Every string key with its config name, for validation.
    pub(super) fn fields(&self) -> [(&'static str, Option<&str>); 9] {
        [
            ("rule_id", self.rule_id.as_deref()),
            ("rule_name", self.rule_name.as_deref()),
            ("container_id", self.container_id.as_deref()),
            ("container_image_name", self.container_image_name.as_deref()),
            ("process_executable", self.process_executable.as_deref()),
            (
                "process_parent_executable",
                self.process_parent_executable.as_deref(),
            ),
            ("user_name", self.user_name.as_deref()),
            ("user_id", self.user_id.as_deref()),
            ("comment", self.comment.as_deref()),
        ]
    }

    /// The values of the given (non-rule) conditions.
    pub(super) fn conditions(&self) -> impl Iterator<Item = &str> {
        [
            &self.container_id,
            &self.container_image_name,
            &self.process_executable,
            &self.process_parent_executable,
            &self.user_name,
            &self.user_id,
        ]
        .into_iter()
        .filter_map(|c| c.as_deref())
    }

    /// True when this exception suppresses an alert on `s`: the rule matches by id or name
    /// (whichever are given, all of them) and every given condition equals the subject's
    /// field. A condition on a field the alert lacks does not match.
    pub fn matches(&self, s: &ExceptionSubject<'_>) -> bool {
        fn eq(want: &Option<String>, have: Option<&str>) -> bool {
            want.as_deref().is_none_or(|w| have == Some(w))
        }
        // An exception that names no rule never matches (validation refuses it anyway).
        (self.rule_id.is_some() || self.rule_name.is_some())
            && eq(&self.rule_id, Some(s.rule_id))
            && eq(&self.rule_name, Some(s.rule_name))
            && eq(&self.container_id, s.container_id)
            && eq(&self.container_image_name, s.container_image_name)
            && eq(&self.process_executable, s.process_executable)
            && eq(&self.process_parent_executable, s.process_parent_executable)
            && eq(&self.user_name, s.user_name)
            && eq(&self.user_id, s.user_id)
    }
}
