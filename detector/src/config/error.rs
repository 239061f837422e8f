//! Config errors that tell the operator where and why: file, key path, line:column, cause.

use std::fmt;
use std::path::PathBuf;

use super::locate;
use super::validate::Invalid;

/// A 1-based line and column (columns count characters, as editors do).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Location {
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters.
    pub column: usize,
}

impl Location {
    /// The location of byte `offset` in `bytes` (which need not be valid UTF-8: columns
    /// count bytes of the line that are not UTF-8 continuation bytes).
    pub fn of_offset(bytes: &[u8], offset: usize) -> Location {
        let offset = offset.min(bytes.len());
        let before = &bytes[..offset];
        let line_start = before
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |i| i + 1);
        let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
        let column = before[line_start..]
            .iter()
            .filter(|&&b| (b & 0xC0) != 0x80)
            .count()
            + 1;
        Location { line, column }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

/// Why a config could not be used. `Display` is one line:
/// `FILE[:LINE:COL]: KEY: CAUSE`, which the binary prints before exiting non-zero.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{}: cannot read config: {source}", file.display())]
    Io {
        /// The config file.
        file: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is larger than any sane config (e.g. `--config /dev/zero`).
    #[error("{}: config is larger than {max} bytes", file.display())]
    TooLarge {
        /// The config file.
        file: PathBuf,
        /// The limit.
        max: u64,
    },
    /// The file is not UTF-8 (TOML must be).
    #[error("{}:{location}: config is not valid UTF-8 (TOML files must be UTF-8)", file.display())]
    Encoding {
        /// The config file.
        file: PathBuf,
        /// Where the first invalid byte is.
        location: Location,
    },
    /// The file is not valid TOML.
    #[error("{}{}: invalid TOML: {message}", file.display(), loc(location))]
    Syntax {
        /// The config file.
        file: PathBuf,
        /// Where the parser stopped, when it says.
        location: Option<Location>,
        /// The parser's message.
        message: String,
    },
    /// A key is unknown, has the wrong type, or its value is out of range.
    #[error("{}{}: {key}: {message}", file.display(), loc(location))]
    Invalid {
        /// The config file (or the command line's origin for overrides).
        file: PathBuf,
        /// Dotted key path, e.g. `sinks.file.rotate_bytes` or `exceptions[1].rule_id`.
        key: String,
        /// Line and column of the key or value, when known.
        location: Option<Location>,
        /// Why it is wrong.
        message: String,
    },
}

fn loc(location: &Option<Location>) -> String {
    location.map(|l| format!(":{l}")).unwrap_or_default()
}

impl ConfigError {
    /// The dotted key path the error is about, if it is about one key.
    pub fn key(&self) -> Option<&str> {
        match self {
            ConfigError::Invalid { key, .. } => Some(key),
            _ => None,
        }
    }

    /// Line and column, when known.
    pub fn location(&self) -> Option<Location> {
        match self {
            ConfigError::Io { .. } | ConfigError::TooLarge { .. } => None,
            ConfigError::Encoding { location, .. } => Some(*location),
            ConfigError::Syntax { location, .. } | ConfigError::Invalid { location, .. } => {
                *location
            }
        }
    }
}

/// Turns a toml/serde error into a [`ConfigError`]: a syntax error, or — when the span falls
/// on a key or value of a well-formed document — an `Invalid` naming that key.
pub(super) fn from_toml(origin: &std::path::Path, text: &str, e: &toml::de::Error) -> ConfigError {
    let location = e
        .span()
        .map(|s| Location::of_offset(text.as_bytes(), s.start));
    let message = one_line(e.message());
    match toml_edit::ImDocument::parse(text) {
        // Not TOML at all: report the parser's position.
        Err(_) => ConfigError::Syntax {
            file: origin.to_path_buf(),
            location,
            message,
        },
        Ok(doc) => {
            let key = e
                .span()
                .and_then(|s| locate::path_at(doc.as_table(), &s))
                .unwrap_or_else(|| "(top level)".to_string());
            ConfigError::Invalid {
                file: origin.to_path_buf(),
                key,
                location,
                message,
            }
        }
    }
}

/// Makes a parser message safe to print on one log line: line breaks become "; " and other
/// control characters (from hostile keys echoed back) are escaped.
fn one_line(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    for (i, line) in message.trim().lines().enumerate() {
        if i > 0 {
            out.push_str("; ");
        }
        for c in line.chars() {
            if c.is_control() {
                out.extend(c.escape_default());
            } else {
                out.push(c);
            }
        }
    }
    out
}

/// Turns a value-validation failure into a [`ConfigError`] pointing at the key's value.
pub(super) fn from_invalid(origin: &std::path::Path, text: &str, v: Invalid) -> ConfigError {
    let location = toml_edit::ImDocument::parse(text)
        .ok()
        .and_then(|doc| locate::span_of(doc.as_table(), &v.key))
        .map(|s| Location::of_offset(text.as_bytes(), s.start));
    ConfigError::Invalid {
        file: origin.to_path_buf(),
        key: v.key,
        location,
        message: v.message,
    }
}
