//! Why a rule file was rejected, located in the file.

use std::fmt;
use std::path::PathBuf;

/// A rejected rule (or unreadable file): file, 1-based line and column when known, reason,
/// and a caret excerpt of the offending line.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct RuleError {
    pub file: PathBuf,
    /// 1-based; 0 when the error is about the file as a whole.
    pub line: usize,
    /// 1-based, in characters.
    pub column: usize,
    pub reason: String,
    /// The offending line and a `^` marker under the span, when there is one.
    pub excerpt: Option<String>,
    /// The rule's `name`, when the file got far enough to have one.
    pub rule_name: Option<String>,
}

impl RuleError {
    /// An error about the file as a whole (unreadable, too large, …).
    pub fn file(file: impl Into<PathBuf>, reason: impl Into<String>) -> Self {
        RuleError {
            file: file.into(),
            line: 0,
            column: 0,
            reason: reason.into(),
            excerpt: None,
            rule_name: None,
        }
    }

    /// An error at byte range `start..end` of `text`, the file's contents.
    pub fn at(
        file: impl Into<PathBuf>,
        text: &str,
        start: usize,
        end: usize,
        reason: impl Into<String>,
    ) -> Self {
        let (line, column, excerpt) = locate(text, start, end);
        RuleError {
            file: file.into(),
            line,
            column,
            reason: reason.into(),
            excerpt: Some(excerpt),
            rule_name: None,
        }
    }
}

impl fmt::Display for RuleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let file = display_path(&self.file);
        if self.line > 0 {
            write!(
                f,
                "{file}:{}:{}: {}",
                self.line,
                self.column,
                sanitize(&self.reason)
            )?;
        } else {
            write!(f, "{file}: {}", sanitize(&self.reason))?;
        }
        if let Some(x) = &self.excerpt {
            write!(f, "\n{x}")?;
        }
        Ok(())
    }
}

/// 1-based line and column (in characters) of byte `start`, and a two-line caret excerpt.
pub fn locate(text: &str, start: usize, end: usize) -> (usize, usize, String) {
    let mut start = start.min(text.len());
    while !text.is_char_boundary(start) {
        start -= 1;
    }
    let line_start = text[..start].rfind('\n').map_or(0, |i| i + 1);
    let line_end = text[start..].find('\n').map_or(text.len(), |i| start + i);
    let line_no = text[..start].matches('\n').count() + 1;
    let before = &text[line_start..start];
    let column = before.chars().count() + 1;
    let end = end.clamp(start, line_end);
    let end = (start..=end)
        .rev()
        .find(|&i| text.is_char_boundary(i))
        .unwrap_or(start);
    let width = text[start..end].chars().count().max(1);
    let line = sanitize(text[line_start..line_end].trim_end_matches('\r'));
    let pad: String = before
        .chars()
        .map(|c| if c == '\t' { '\t' } else { ' ' })
        .collect();
    let gutter = format!("{line_no} | ");
    let blank = " ".repeat(gutter.len() - 2);
    (
        line_no,
        column,
        format!("{gutter}{line}\n{blank}| {pad}{}", "^".repeat(width)),
    )
}

/// Control characters (newlines in hostile file names or values) shown escaped so every
/// report stays one line per item.
pub fn sanitize(s: &str) -> String {
    if !s.chars().any(|c| c.is_control() && c != '\t') {
        return s.to_string();
    }
    s.chars()
        .map(|c| {
            if c.is_control() && c != '\t' {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// A path for humans: lossy UTF-8, control characters escaped.
pub fn display_path(p: &std::path::Path) -> String {
    sanitize(&p.to_string_lossy())
}
