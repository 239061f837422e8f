//! `detector replay --rules PATH… EVENTS.ndjson`: evaluates rules over recorded ECS event
//! documents (NDJSON, one document a line; `-` reads stdin) and writes every alert as one
//! JSON line on stdout. For testing rules against captured or hand-written events without a
//! kernel.
//!
//! Alerts go through the daemon's own alert stage ([`AlertStage`]): the same rules, the
//! same policy (the config's `[[exceptions]]` and `[alerts] suppression_window_secs`) and
//! the same alert documents, so `replay` over the documents `run` saw gives the alerts
//! `run` gave. The policy is read from `--config` (default: the config `run` would read,
//! when it exists; else the built-in defaults, no exceptions and no suppression);
//! `--no-policy` turns it off (every match is an alert). Suppression windows run on the
//! documents' own `@timestamp`, not on the time of the replay (see
//! [`crate::alert::clock`]): a window closes when a document at or past its end is read,
//! and the windows still open at the end of the input are closed then, so their folded
//! counts are written last.
//!
//! Rules are all-or-nothing: a rule that does not compile is reported (file:line:column and
//! a caret excerpt) and nothing is replayed, because a silently missing rule would make a
//! replay look clean. Events are per line: a malformed line (not UTF-8, not JSON, not an
//! object, a field of the wrong type, longer than [`MAX_LINE`]) is reported as
//! `EVENTS:LINE: reason` on stderr and skipped; a summary goes to stderr at the end.
//!
//! Documents may use nested objects (`{"process": {"name": "ssh"}}`) or dotted keys
//! (`{"process.name": "ssh"}`), mixed freely, as Elasticsearch accepts them: dotted keys are
//! expanded into objects before typed deserialization. Fields our document type does not
//! know are ignored (they cannot be tested by a compiled rule anyway: rules are compiled
//! against the same schema). Each document keeps its own `@timestamp`.

use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::alert::sequence::SequenceSettings;
use crate::alert::{AlertLine, AlertPolicy, AlertStage};
use crate::config::Config;
use crate::ecs::EcsDocument;
use crate::rules::error::{display_path, sanitize};

/// The longest event line accepted (16 MiB); longer lines are reported as malformed and
/// skipped without being held in memory.
pub const MAX_LINE: usize = 16 << 20;

/// Exit status when the replay ran but some lines were malformed.
pub const EXIT_MALFORMED: u8 = 1;
/// Exit status for usage errors, rule errors, config errors and I/O errors.
pub const EXIT_ERROR: u8 = 2;

/// Arguments of `replay`.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Input: one ECS document per line, nested (`{\"process\":{\"name\":\"ssh\"}}`) or with dotted \
keys (`{\"process.name\":\"ssh\"}`); blank lines are skipped. Output: one alert per line on \
stdout; malformed lines (`EVENTS:LINE: reason`) and a summary on stderr.

Every rule must compile: if any rule fails, each error is printed (file:line:column and an \
excerpt) and the command exits 2 before reading events.

Alert policy: as `detector run` applies it, from the config's [[exceptions]] and [alerts] \
suppression_window_secs (--config; default: the config `run` would read, when it exists, \
else none). Suppression windows are measured on the documents' own @timestamp, not on the \
time of the replay; windows still open at the end of the input are closed then. \
--no-policy: every match is an alert.

Exit status: 0 every line was read; 1 some lines were malformed (reported and skipped, the \
rest replayed); 2 usage error, rule error, no rules, an unreadable or invalid config, or an \
unreadable input / unwritable output.")]
pub struct Args {
    /// Rule files, or directories searched recursively for `*.toml` (repeatable; with several
    /// values after one `--rules`, the last is the events file unless it is given first).
    #[arg(long, short = 'r', required = true, num_args = 1.., value_name = "PATH")]
    pub rules: Vec<PathBuf>,
    /// NDJSON file of ECS event documents, or `-` for stdin.
    #[arg(value_name = "EVENTS.ndjson")]
    pub events: Option<PathBuf>,
    /// Config whose alert policy ([[exceptions]], [alerts] suppression_window_secs) applies
    /// [default: the config `detector run` would read, when it exists].
    #[arg(long, value_name = "PATH", conflicts_with = "no_policy")]
    pub config: Option<PathBuf>,
    /// No alert policy: no exceptions, no suppression; every match is an alert.
    #[arg(long)]
    pub no_policy: bool,
}

/// Where a replay's alert policy came from (named in the summary).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PolicySource {
    /// `--no-policy`.
    Off,
    /// The config file at this path.
    Config(PathBuf),
    /// No `--config`, and no config at the default path: the built-in defaults.
    Defaults(PathBuf),
}

impl PolicySource {
    /// The policy `args` ask for, and where it came from; an error message when the config
    /// cannot be used.
    pub fn load(args: &Args) -> Result<(AlertPolicy, PolicySource), String> {
        if args.no_policy {
            return Ok((AlertPolicy::off(), PolicySource::Off));
        }
        let path = match &args.config {
            Some(p) => p.clone(),
            None => {
                let p = super::run::default_config();
                if !p.exists() {
                    return Ok((
                        AlertPolicy::from_config(&Config::default()),
                        PolicySource::Defaults(p),
                    ));
                }
                p
            }
        };
        let config = Config::load(&path).map_err(|e| e.to_string())?;
        Ok((
            AlertPolicy::from_config(&config),
            PolicySource::Config(path),
        ))
    }
}

impl Args {
    /// `--rules A B EVENTS` gives clap three rule values and no events file: the last value
    /// is the events file then.
    fn split(&self) -> Option<(Vec<PathBuf>, PathBuf)> {
        match &self.events {
            Some(e) => Some((self.rules.clone(), e.clone())),
            None if self.rules.len() >= 2 => {
                let mut rules = self.rules.clone();
                let events = rules.pop()?;
                Some((rules, events))
            }
            None => None,
        }
    }
}

/// What one replay saw, reported in the summary.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Lines read (including blank and malformed ones).
    pub lines: u64,
    /// Lines that were ECS documents and were evaluated.
    pub events: u64,
    /// Empty or whitespace-only lines.
    pub blank: u64,
    /// Lines reported and skipped.
    pub malformed: u64,
    /// Alerts written (closing alerts of suppression windows included; a sequence's
    /// alert once, its building blocks in `building_blocks`).
    pub alerts: u64,
    /// Building-block lines of sequence alerts written (one per event of a sequence).
    pub building_blocks: u64,
    /// Events not fed to sequences: later than the reorder window, or without a time.
    pub sequence_events_lost: u64,
    /// Pending sequences evicted by the state bounds.
    pub sequences_evicted: u64,
    /// Sequences pending when the input ended (before the end settled them).
    pub sequences_pending: u64,
    /// Alerts per rule, in rule order (index into `AlertStage::all_rules`).
    pub by_rule: Vec<u64>,
    /// Matches dropped by a configured exception.
    pub excepted: u64,
    /// Matches folded into a suppression window.
    pub suppressed: u64,
}

/// Runs the subcommand.
pub fn main(args: &Args) -> ExitCode {
    let Some((rule_paths, events)) = args.split() else {
        eprintln!("detector replay: missing the events file (EVENTS.ndjson or -)");
        return ExitCode::from(EXIT_ERROR);
    };
    let (policy, source) = match PolicySource::load(args) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("{e}");
            eprintln!(
                "detector replay: the config's alert policy cannot be read (--config PATH names \
                 another config, --no-policy replays without one): nothing replayed"
            );
            return ExitCode::from(EXIT_ERROR);
        }
    };
    // Both kinds: replay runs sequences over recorded events of any category.
    let (rules, sequences, errors) =
        crate::alert::sequence::rules::load(&rule_paths, crate::ecs::schema());
    if !errors.is_empty() {
        for e in &errors {
            eprintln!("{e}");
        }
        eprintln!(
            "detector replay: {} rule(s) rejected, {} compiled: nothing replayed",
            errors.len(),
            rules.len() + sequences.len()
        );
        return ExitCode::from(EXIT_ERROR);
    }
    if rules.is_empty() && sequences.is_empty() {
        eprintln!("detector replay: no rule files found");
        return ExitCode::from(EXIT_ERROR);
    }
    let (input, name): (Box<dyn io::Read>, String) = if events.as_os_str() == "-" {
        (Box::new(io::stdin().lock()), "<stdin>".into())
    } else {
        match File::open(&events) {
            Ok(f) => (Box::new(f), display_path(&events)),
            Err(e) => {
                eprintln!("{}: cannot open: {e}", display_path(&events));
                return ExitCode::from(EXIT_ERROR);
            }
        }
    };
    let input = BufReader::with_capacity(64 << 10, input);
    let mut out = BufWriter::with_capacity(64 << 10, io::stdout().lock());
    let mut err = io::stderr().lock();
    // The config's [sequences] too (the reorder window, the state bounds), as `run` has it.
    let settings = match &source {
        PolicySource::Config(p) => Config::load(p)
            .map(|c| SequenceSettings::from_config(&c.sequences))
            .unwrap_or_default(),
        _ => SequenceSettings::default(),
    };
    let mut stage = AlertStage::with_sequences(rules, sequences, policy, settings);
    let result = replay(&mut stage, input, &name, &mut out, &mut err).and_then(|s| {
        out.flush()?;
        Ok(s)
    });
    match result {
        Ok(stats) => {
            let _ = write_summary(&stage, &source, &stats, &mut err);
            if stats.malformed > 0 {
                ExitCode::from(EXIT_MALFORMED)
            } else {
                ExitCode::SUCCESS
            }
        }
        Err(e) => {
            let _ = writeln!(err, "detector replay: {name}: {e}");
            ExitCode::from(EXIT_ERROR)
        }
    }
}

/// Where the stage's alert lines go: `out`, counted per rule; the first write error is
/// kept (and ends the replay).
struct Output<'a> {
    out: &'a mut dyn Write,
    alerts: u64,
    /// Building-block lines of sequence alerts (written, not counted as alerts).
    building_blocks: u64,
    by_rule: Vec<u64>,
    error: Option<io::Error>,
}

impl Output<'_> {
    fn line(&mut self, a: AlertLine<'_>) {
        if self.error.is_none()
            && let Err(e) = self.out.write_all(a.line)
        {
            self.error = Some(e);
        }
        if a.building_block {
            self.building_blocks += 1;
            return;
        }
        self.by_rule[a.rule.get()] += 1;
        self.alerts += 1;
    }

    /// The first write error, or an error for alerts the stage could not encode.
    fn check(&mut self, stage: &AlertStage) -> io::Result<()> {
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        match stage.stats().encode_failed {
            0 => Ok(()),
            n => Err(io::Error::other(format!(
                "{n} alert(s) could not be encoded"
            ))),
        }
    }
}

/// Replays `input` (NDJSON named `name` in reports) through `stage` (rules and policy, as
/// the daemon runs them): alerts to `out`, malformed-line reports to `err`. At the end of
/// the input the suppression windows still open are closed (their alerts written). Fails
/// only on I/O errors of `input` or `out`.
pub fn replay(
    stage: &mut AlertStage,
    mut input: impl BufRead,
    name: &str,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> io::Result<Stats> {
    let mut stats = Stats::default();
    let mut output = Output {
        out,
        alerts: 0,
        building_blocks: 0,
        by_rule: vec![0; stage.rule_count()],
        error: None,
    };
    let mut line = Vec::new();
    // Sequences keep the events they hold as read (every field, not only those the typed
    // document knows): only then is the expanded JSON kept.
    let wants_raw = stage.sequence_stats().rules > 0;
    while let Some(status) = next_line(&mut input, &mut line, MAX_LINE)? {
        stats.lines += 1;
        let parsed = match status {
            Line::TooLong(len) => Err(format!(
                "line of {len} bytes is longer than the limit of {MAX_LINE} bytes"
            )),
            Line::Complete if line.trim_ascii().is_empty() => {
                stats.blank += 1;
                continue;
            }
            Line::Complete if wants_raw => parse_document_raw(&line).map(|(d, r)| (d, Some(r))),
            Line::Complete => parse_document(&line).map(|d| (d, None)),
        };
        let (doc, raw) = match parsed {
            Ok(parsed) => parsed,
            Err(reason) => {
                stats.malformed += 1;
                writeln!(err, "{name}:{}: {}", stats.lines, sanitize(&reason))?;
                continue;
            }
        };
        stats.events += 1;
        match raw {
            Some(raw) => stage.evaluate_raw(&doc, &raw, &mut |a| output.line(a)),
            None => stage.evaluate(&doc, &mut |a| output.line(a)),
        };
        output.check(stage)?;
    }
    stats.sequences_pending = stage.end_of_input(&mut |a| output.line(a));
    stage.finish(&mut |a| output.line(a));
    output.check(stage)?;
    let seq = stage.sequence_stats();
    stats.sequence_events_lost = seq.events_lost();
    stats.sequences_evicted = seq.engine.evicted;
    stats.building_blocks = output.building_blocks;
    stats.alerts = output.alerts;
    stats.by_rule = output.by_rule;
    stats.excepted = stage.policy().excepted;
    stats.suppressed = stage.policy().suppressed;
    Ok(stats)
}

/// The summary: counts, the policy and what it did, then one line per rule that fired.
pub fn write_summary(
    stage: &AlertStage,
    source: &PolicySource,
    s: &Stats,
    err: &mut dyn Write,
) -> io::Result<()> {
    writeln!(
        err,
        "replay: {} lines read, {} events, {} blank, {} malformed, {} alerts",
        s.lines, s.events, s.blank, s.malformed, s.alerts
    )?;
    let seq = stage.sequence_stats();
    if seq.rules > 0 {
        writeln!(
            err,
            "sequences: {} rule(s), {} matched ({} building-block lines), {} pending at the end, \
             {} evicted, {} events late for the reorder window or without @timestamp",
            seq.rules,
            seq.engine.matched,
            s.building_blocks,
            s.sequences_pending,
            s.sequences_evicted,
            s.sequence_events_lost
        )?;
    }
    let policy = stage.policy();
    let from = match source {
        PolicySource::Off => None,
        PolicySource::Config(p) => Some(display_path(p)),
        PolicySource::Defaults(p) => Some(format!("built-in defaults (no {})", display_path(p))),
    };
    match from {
        None => writeln!(err, "policy: off (--no-policy)")?,
        Some(from) => writeln!(
            err,
            "policy: {from}: suppression window {} s, {} exception(s); {} excepted, {} suppressed",
            policy.window().as_secs(),
            policy.exceptions().len(),
            s.excepted,
            s.suppressed
        )?,
    }
    for ((_, meta), n) in stage.all_rules().zip(&s.by_rule) {
        if *n > 0 {
            writeln!(
                err,
                "  {n} {} ({})",
                sanitize(&meta.name),
                sanitize(&meta.rule_id)
            )?;
        }
    }
    Ok(())
}

/// How a line read by [`next_line`] ended.
#[derive(Debug, PartialEq, Eq)]
enum Line {
    /// The line (without its `\n`) is in the buffer.
    Complete,
    /// The line had this many bytes, more than the cap; it was skipped, the buffer is empty.
    TooLong(u64),
}

/// Reads one line into `buf` (without the `\n`, a trailing `\r` kept), holding at most
/// `cap` bytes of it: the rest of a longer line is read and dropped. `None` at end of input.
fn next_line(r: &mut impl BufRead, buf: &mut Vec<u8>, cap: usize) -> io::Result<Option<Line>> {
    buf.clear();
    let mut total: u64 = 0;
    let mut too_long = false;
    let mut started = false;
    loop {
        let chunk = match r.fill_buf() {
            Ok(c) => c,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if chunk.is_empty() {
            return Ok(started.then(|| finish(too_long, total)));
        }
        started = true;
        let (take, newline) = match memchr::memchr(b'\n', chunk) {
            Some(i) => (i, true),
            None => (chunk.len(), false),
        };
        total += take as u64;
        if !too_long {
            if buf.len() + take > cap {
                too_long = true;
                buf.clear();
            } else {
                buf.extend_from_slice(&chunk[..take]);
            }
        }
        r.consume(take + usize::from(newline));
        if newline {
            return Ok(Some(finish(too_long, total)));
        }
    }
}

fn finish(too_long: bool, total: u64) -> Line {
    if too_long {
        Line::TooLong(total)
    } else {
        Line::Complete
    }
}

/// [`parse_document`], with the document's JSON (dotted keys expanded) as read.
pub fn parse_document_raw(line: &[u8]) -> Result<(EcsDocument, Vec<u8>), String> {
    let text = std::str::from_utf8(line)
        .map_err(|e| format!("invalid UTF-8 at byte {}", e.valid_up_to()))?;
    let value: Value = serde_json::from_str(text).map_err(|e| format!("invalid JSON: {e}"))?;
    if !value.is_object() {
        return Err("not a JSON object".into());
    }
    let value = expand_dotted(value)?;
    let raw = serde_json::to_vec(&value).map_err(|e| format!("cannot re-encode: {e}"))?;
    let doc = EcsDocument::deserialize(value).map_err(|e| format!("not an ECS document: {e}"))?;
    Ok((doc, raw))
}

/// One NDJSON line as an ECS document, or why it is not one.
pub fn parse_document(line: &[u8]) -> Result<EcsDocument, String> {
    let text = std::str::from_utf8(line)
        .map_err(|e| format!("invalid UTF-8 at byte {}", e.valid_up_to()))?;
    let value: Value = serde_json::from_str(text).map_err(|e| format!("invalid JSON: {e}"))?;
    if !value.is_object() {
        return Err("not a JSON object".into());
    }
    let value = expand_dotted(value)?;
    EcsDocument::deserialize(value).map_err(|e| format!("not an ECS document: {e}"))
}

/// Expands dotted keys into nested objects (`{"a.b": 1, "a": {"c": 2}}` →
/// `{"a": {"b": 1, "c": 2}}`), at every level and inside arrays, as Elasticsearch does.
/// A key that is both a value and an object, the same field twice, an empty path segment or
/// nesting deeper than [`MAX_DEPTH`] is an error.
pub fn expand_dotted(value: Value) -> Result<Value, String> {
    expand_at(value, 0)
}

/// The deepest nesting accepted after expansion (serde_json's parser stops at 128; dotted
/// keys could otherwise build objects deep enough to overflow the stack when dropped).
pub const MAX_DEPTH: usize = 128;

fn expand_at(value: Value, depth: usize) -> Result<Value, String> {
    if depth > MAX_DEPTH {
        return Err(format!("nested deeper than {MAX_DEPTH} levels"));
    }
    match value {
        Value::Object(map) => {
            let mut out = Map::new();
            for (key, v) in map {
                if key.contains('.') {
                    let parts: Vec<&str> = key.split('.').collect();
                    if parts.iter().any(|p| p.is_empty()) {
                        return Err(format!("field name `{key}` has an empty part"));
                    }
                    let v = expand_at(v, depth + parts.len())?;
                    // Build the nested value from the innermost part outwards.
                    let mut nested = v;
                    for p in parts[1..].iter().rev() {
                        let mut m = Map::new();
                        m.insert((*p).to_owned(), nested);
                        nested = Value::Object(m);
                    }
                    merge(&mut out, parts[0], nested, &key)?;
                } else {
                    let v = expand_at(v, depth + 1)?;
                    merge(&mut out, &key, v, &key)?;
                }
            }
            Ok(Value::Object(out))
        }
        Value::Array(items) => items
            .into_iter()
            .map(|v| expand_at(v, depth + 1))
            .collect::<Result<Vec<_>, _>>()
            .map(Value::Array),
        v => Ok(v),
    }
}

/// Inserts `value` at `key` of `map`, merging objects; `origin` names the key in errors.
fn merge(
    map: &mut Map<String, Value>,
    key: &str,
    value: Value,
    origin: &str,
) -> Result<(), String> {
    match map.get_mut(key) {
        None => {
            map.insert(key.to_owned(), value);
            Ok(())
        }
        Some(Value::Object(existing)) => match value {
            Value::Object(new) => {
                for (k, v) in new {
                    merge(existing, &k, v, origin)?;
                }
                Ok(())
            }
            _ => Err(conflict(origin)),
        },
        Some(_) => Err(conflict(origin)),
    }
}

fn conflict(key: &str) -> String {
    format!("field `{key}` conflicts with another key for the same field")
}

#[cfg(test)]
mod tests;
