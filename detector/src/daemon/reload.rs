//! SIGHUP: re-read the config and rules and swap them in only if all of it is valid.

use super::detect::Detection;
use super::events::{
    EventCounters, InternalEvent, OutputsRefused, ReloadRefused, Reloaded, SectionNeedsRestart,
};
use super::{RunOptions, setup};
use crate::config::Config;

/// Reloads from `opts` into `detection`, replacing `running` when the new set is valid.
/// The file sink is reopened in any case (logrotate moved the file); outputs that changed
/// are replaced when the new ones open, else the old ones stay.
pub(super) fn reload(
    opts: &RunOptions,
    running: &mut Config,
    detection: &mut Detection,
    events: &mut EventCounters,
) {
    let new = match setup::load_settings(opts) {
        Ok(s) => s,
        Err(e) => {
            ReloadRefused { error: &e }.emit(events);
            detection.reopen_sinks();
            return;
        }
    };
    if new.config.sinks == running.sinks {
        detection.reopen_sinks();
    } else {
        match setup::open_sinks(&new.config) {
            Ok(sinks) => detection.replace_sinks(sinks),
            Err(e) => {
                OutputsRefused { error: &e }.emit(events);
                detection.reopen_sinks();
            }
        }
    }
    // The kernel programs, the process table, the container cache and the log are set up
    // once, at start: say so rather than ignore the change silently.
    for section in fixed_sections_changed(running, &new.config) {
        SectionNeedsRestart { section }.emit(events);
    }
    let rules = new.rules.len() + new.sequences.len();
    let settings = crate::alert::sequence::SequenceSettings::from_config(&new.config.sequences);
    detection.replace_all_rules(new.rules, new.sequences, new.policy, settings);
    Reloaded { rules }.emit(events);
    *running = new.config;
}

/// The sections applied only at start that differ between `running` and `new`.
fn fixed_sections_changed(running: &Config, new: &Config) -> Vec<&'static str> {
    [
        ("sensor", new.sensor != running.sensor),
        ("process", new.process != running.process),
        ("container", new.container != running.container),
        ("log", new.log != running.log),
        ("metrics", new.metrics != running.metrics),
    ]
    .into_iter()
    .filter_map(|(section, changed)| changed.then_some(section))
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_start_time_sections_need_a_restart() {
        let running = Config::default();
        let mut new = Config::default();
        new.stats.interval_secs = 0;
        new.alerts.startup_scan = !new.alerts.startup_scan;
        assert!(fixed_sections_changed(&running, &new).is_empty());
        new.sensor.argv_capture = !new.sensor.argv_capture;
        new.container.cache_max += 1;
        new.log.format = crate::config::LogFormat::Json;
        assert_eq!(
            fixed_sections_changed(&running, &new),
            ["sensor", "container", "log"]
        );
    }
}
