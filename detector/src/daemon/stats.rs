//! Pipeline counters: the periodic stats log, the final summary, and the loss reports that
//! go into the alert stream (when they are made: see `ticks`).

use std::time::Instant;

use serde_json::{Value, json};

use super::detect::{DetectStats, Detection};
use super::events::EventCounters;
use crate::ecs::{Detector, DetectorLoss, EcsDocument, Event, now_rfc3339};
use crate::event::EventKind;
use crate::process::TableStats;
use crate::sensor::{Counters, ReaderStats};

/// What the pipeline itself counts (the other stages count their own).
#[derive(Debug)]
pub struct PipelineStats {
    pub started: Instant,
    /// Events decoded, by kind ([`EventKind::ALL`] order: fork, exec, exit, then the
    /// credential changes).
    pub events: [u64; EventKind::ALL.len()],
    /// Matches found by the start-up scan.
    pub startup_matches: u64,
    /// Events no rule could match (by name and action), whose document was not built.
    pub skipped: u64,
    /// Loss already reported in the alert stream (so each report carries only what is new).
    reported_lost: u64,
    reported_malformed: u64,
    reported_dropped: u64,
    /// Sequence loss already reported: events late for the reorder window (or untimed),
    /// pending sequences evicted.
    reported_seq_late: u64,
    reported_seq_evicted: u64,
}

impl Default for PipelineStats {
    fn default() -> Self {
        PipelineStats {
            started: Instant::now(),
            events: [0; EventKind::ALL.len()],
            startup_matches: 0,
            skipped: 0,
            reported_lost: 0,
            reported_malformed: 0,
            reported_dropped: 0,
            reported_seq_late: 0,
            reported_seq_evicted: 0,
        }
    }
}

/// How far loss has been reported: taken before a report and restored when the report did
/// not reach the stream (see [`PipelineStats::rewind`]).
#[derive(Clone, Copy, Debug)]
pub struct ReportMark {
    lost: u64,
    malformed: u64,
    dropped: u64,
    seq_late: u64,
    seq_evicted: u64,
}

impl PipelineStats {
    /// Where the loss reports stand now.
    pub fn mark(&self) -> ReportMark {
        ReportMark {
            lost: self.reported_lost,
            malformed: self.reported_malformed,
            dropped: self.reported_dropped,
            seq_late: self.reported_seq_late,
            seq_evicted: self.reported_seq_evicted,
        }
    }

    /// A loss report was dropped by a sink (its retry queue full, e.g. on a full disk): what
    /// it carried counts as unreported again, so the next report that gets through carries
    /// it (and the dropped report itself). A sink that did take it then sees those numbers
    /// twice in its `detector.loss.*` deltas; `kernel_lost_total` stays exact.
    pub fn rewind(&mut self, mark: ReportMark) {
        self.reported_lost = mark.lost;
        self.reported_malformed = mark.malformed;
        self.reported_dropped = mark.dropped;
        self.reported_seq_late = mark.seq_late;
        self.reported_seq_evicted = mark.seq_evicted;
    }

    pub fn count(&mut self, kind: Option<EventKind>) {
        if let Some(k) = kind {
            self.events[k.index()] += 1;
        }
    }

    /// A loss report for the alert stream when kernel events, records or alert lines were
    /// lost since the last report; `None` when nothing new was lost.
    pub fn loss_report(
        &mut self,
        kernel: &Counters,
        malformed: u64,
        detect: &DetectStats,
        template: &EcsDocument,
    ) -> Option<EcsDocument> {
        let lost = kernel.lost();
        let (new_lost, new_malformed, new_dropped) = (
            lost.saturating_sub(self.reported_lost),
            malformed.saturating_sub(self.reported_malformed),
            detect.sink_dropped.saturating_sub(self.reported_dropped),
        );
        let (seq_late, seq_evicted) = (
            detect.sequences.events_lost(),
            detect.sequences.engine.evicted,
        );
        let (new_seq_late, new_seq_evicted) = (
            seq_late.saturating_sub(self.reported_seq_late),
            seq_evicted.saturating_sub(self.reported_seq_evicted),
        );
        if new_lost == 0
            && new_malformed == 0
            && new_dropped == 0
            && new_seq_late == 0
            && new_seq_evicted == 0
        {
            return None;
        }
        self.reported_lost = lost;
        self.reported_malformed = malformed;
        self.reported_dropped = detect.sink_dropped;
        self.reported_seq_late = seq_late;
        self.reported_seq_evicted = seq_evicted;
        let mut doc = template.clone();
        doc.timestamp = Some(now_rfc3339());
        doc.event = Some(Event {
            kind: Some("metric".into()),
            action: Some("events-lost".into()),
            module: Some(crate::ecs::EVENT_MODULE.into()),
            dataset: Some(LOSS_DATASET.into()),
            ..Event::default()
        });
        let mut message = format!(
            "detector lost {new_lost} kernel process events (ring buffer full), \
             {new_malformed} undecodable records and {new_dropped} alert lines since its last report: \
             detection has a gap"
        );
        if new_seq_late > 0 || new_seq_evicted > 0 {
            message.push_str(&format!(
                "; EQL sequences missed {new_seq_late} events (later than the reorder window, \
                 or without @timestamp) and evicted {new_seq_evicted} pending sequences (state bounds)"
            ));
        }
        doc.message = Some(message);
        doc.detector = Some(Detector {
            loss: Some(DetectorLoss {
                kernel_lost: Some(new_lost),
                kernel_lost_total: Some(lost),
                malformed: Some(new_malformed),
                alerts_dropped: Some(new_dropped),
                sequence_events_late: (new_seq_late > 0).then_some(new_seq_late),
                sequences_evicted: (new_seq_evicted > 0).then_some(new_seq_evicted),
            }),
            ..Detector::default()
        });
        Some(doc)
    }
}

/// `event.dataset` of loss reports.
pub const LOSS_DATASET: &str = "detector.loss";

/// What the stats document is made of: each stage's counters, the kernel's, the reader's
/// and the daemon's own events.
pub struct Sources<'a> {
    pub pipeline: &'a PipelineStats,
    /// `None` when the kernel counters could not be read.
    pub kernel: Option<&'a Counters>,
    /// Records that did not decode.
    pub malformed: u64,
    /// Records the test-only fault switch dropped (`reader::FAULT_DROP_RECORDS_ENV`).
    pub fault_dropped: u64,
    /// Canaries spawned and seen (`[health] canary_interval_secs`).
    pub canary: super::canary::CanaryStats,
    pub table: TableStats,
    pub detection: &'a Detection,
    pub reader: ReaderStats,
    /// The ring's size and how full its drains found it.
    pub ring: (u64, super::reader::RingFill),
    pub events: &'a EventCounters,
}

/// Everything counted, as one JSON object (periodic log and final summary).
pub fn summary(src: &Sources) -> Value {
    let Sources {
        pipeline: p,
        kernel,
        malformed,
        fault_dropped,
        canary,
        ref table,
        detection,
        reader,
        ring: (ring_size, ring_fill),
        events,
    } = *src;
    let detect = detection.stats();
    let (excepted, suppressed) = (detection.policy().excepted, detection.policy().suppressed);
    let sinks = detection.sinks();
    let kernel_json: serde_json::Map<String, Value> = kernel
        .map(|k| k.named().map(|(n, v)| (n.to_owned(), v.into())).collect())
        .unwrap_or_default();
    let sinks_json: Vec<Value> = sinks
        .iter()
        .map(|s| {
            let c = s.counters();
            let get =
                |a: &std::sync::atomic::AtomicU64| a.load(std::sync::atomic::Ordering::Relaxed);
            json!({
                "name": s.name(),
                "written": get(&c.written),
                "failed": get(&c.failed),
                "queued": get(&c.queued),
                "dropped": get(&c.dropped),
                "cut": get(&c.cut),
            })
        })
        .collect();
    let rule_us_per_event = if detect.evaluated == 0 {
        0.0
    } else {
        detect.rule_time.as_secs_f64() * 1e6 / detect.evaluated as f64
    };
    json!({
        "uptime_secs": p.started.elapsed().as_secs(),
        "events": EventKind::ALL
            .iter()
            .map(|k| (k.name().to_owned(), p.events[k.index()].into()))
            .collect::<serde_json::Map<String, Value>>(),
        "lost": kernel.map(Counters::lost).unwrap_or(0),
        "malformed": malformed,
        "fault_dropped": fault_dropped,
        "canary": canary,
        "kernel": kernel_json,
        "alerts": detect.alerts,
        "alerts_by_rule": detect.by_rule,
        "startup_matches": p.startup_matches,
        "skipped_no_candidate_rule": p.skipped,
        "shutdown_unprocessed": events.shutdown_unprocessed,
        "excepted": excepted,
        "suppressed": suppressed,
        "rules": {
            "evaluated": detect.evaluated,
            "time_secs": detect.rule_time.as_secs_f64(),
            "us_per_event": rule_us_per_event,
        },
        "process_table": {
            "live": table.live,
            "exited": table.exited,
            "evicted_live": table.evicted_live,
            "evicted_exited": table.evicted_exited,
            "pid_reuse": table.pid_reuse,
            "unknown_parent": table.unknown_parent,
            "cred_unchanged": table.cred_unchanged,
            "cgroups": table.cgroups,
            "reaped": table.reaped,
            "proc_sweeps": table.proc_sweeps,
        },
        "containers": {
            "entries": table.containers.entries,
            "hits": table.containers.hits,
            "misses": table.containers.misses,
            "evictions": table.containers.evictions,
            "forgotten": table.containers.forgotten,
        },
        "sinks": sinks_json,
        "building_blocks": detect.building_blocks,
        "sequences": detect.sequences,
        "reader": reader,
        "ring": {
            "size_bytes": ring_size,
            "last_drain_bytes": ring_fill.last_bytes,
            "max_drain_bytes": ring_fill.max_bytes,
        },
        "daemon": events,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dropped_in(doc: &EcsDocument) -> u64 {
        doc.detector
            .as_ref()
            .and_then(|d| d.loss.as_ref())
            .and_then(|l| l.alerts_dropped)
            .unwrap_or(0)
    }

    #[test]
    fn a_rewound_report_is_carried_by_the_next() {
        let mut p = PipelineStats::default();
        let kernel = Counters::default();
        let base = EcsDocument::default();
        let mut detect = DetectStats::default();
        assert!(p.loss_report(&kernel, 0, &detect, &base).is_none());

        detect.sink_dropped = 3;
        let mark = p.mark();
        let first = p.loss_report(&kernel, 0, &detect, &base).unwrap();
        assert_eq!(dropped_in(&first), 3);
        // The report itself was dropped too.
        detect.sink_dropped = 4;
        p.rewind(mark);
        let second = p.loss_report(&kernel, 0, &detect, &base).unwrap();
        assert_eq!(dropped_in(&second), 4);
        // Delivered: nothing new to report.
        assert!(p.loss_report(&kernel, 0, &detect, &base).is_none());
    }

    #[test]
    fn sequence_loss_is_reported_once_with_its_own_fields() {
        let mut p = PipelineStats::default();
        let kernel = Counters::default();
        let base = EcsDocument::default();
        let mut detect = DetectStats::default();
        detect.sequences.reorder.late = 2;
        detect.sequences.untimed = 1;
        detect.sequences.engine.evicted = 7;
        let doc = p.loss_report(&kernel, 0, &detect, &base).unwrap();
        let loss = doc.detector.unwrap().loss.unwrap();
        assert_eq!(loss.sequence_events_late, Some(3));
        assert_eq!(loss.sequences_evicted, Some(7));
        assert!(doc.message.unwrap().contains("evicted 7 pending sequences"));
        assert!(p.loss_report(&kernel, 0, &detect, &base).is_none());
        detect.sequences.engine.evicted = 8;
        let doc = p.loss_report(&kernel, 0, &detect, &base).unwrap();
        let loss = doc.detector.unwrap().loss.unwrap();
        assert_eq!(
            (loss.sequence_events_late, loss.sequences_evicted),
            (None, Some(1))
        );
    }
}
