//! Event bodies for pending sequences: each event a pending sequence may need for its
//! alert is kept once and shared (reference-counted) by every pending sequence that holds
//! it — one body per event, not per sequence; one that stays held past the young ones
//! (`super::YOUNG`) is stored here as its ECS JSON compressed. When the last sequence
//! holding it completes, expires or is evicted, the body is freed.
//!
//! Process events of one host are alike (host, agent, ecs, the same parents' fields), so
//! each body is an LZ4 block compressed against a shared dictionary: the first body stored,
//! which carries most of what every later one repeats. A body of ~1.5 KiB of JSON takes a
//! few hundred bytes.

use std::sync::Arc;

/// One stored event: its JSON, compressed against the store's dictionary.
#[derive(Debug)]
pub struct Body {
    /// Length of the JSON.
    len: u32,
    data: Box<[u8]>,
    /// The dictionary it was compressed against (shared by the store's bodies).
    dict: Arc<[u8]>,
}

impl Body {
    /// The event's JSON (decompressed; only ever needed to build an alert).
    pub fn json(&self) -> Result<Vec<u8>, String> {
        lz4_flex::block::decompress_with_dict(&self.data, self.len as usize, &self.dict)
            .map_err(|e| format!("stored event body does not decompress: {e}"))
    }

    /// Bytes this body holds (not counting the shared dictionary).
    pub fn stored_bytes(&self) -> usize {
        self.data.len() + std::mem::size_of::<Self>()
    }
}

/// What the store counted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct BodyStats {
    /// Events kept for pending sequences (one per event, however many sequences hold it),
    /// young or compressed.
    pub kept: u64,
    /// Bodies stored (kept events compressed once they stayed a while).
    pub stored: u64,
    /// Their JSON bytes, and what they took compressed.
    pub json_bytes: u64,
    pub compressed_bytes: u64,
}

/// Compresses event bodies against one dictionary.
#[derive(Debug, Default)]
pub struct BodyStore {
    dict: Option<Arc<[u8]>>,
    scratch: Vec<u8>,
    stats: BodyStats,
}

/// The largest dictionary kept (LZ4 looks back 64 KiB at most).
const MAX_DICT: usize = 64 << 10;

impl BodyStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// Stores `json` (one event document) and returns its shared handle.
    pub fn store(&mut self, json: &[u8]) -> Arc<Body> {
        let dict = self
            .dict
            .get_or_insert_with(|| Arc::from(&json[json.len().saturating_sub(MAX_DICT)..]))
            .clone();
        let max = lz4_flex::block::get_maximum_output_size(json.len());
        if self.scratch.len() < max {
            self.scratch.resize(max, 0);
        }
        let n = lz4_flex::block::compress_into_with_dict(json, &mut self.scratch, &dict)
            .expect("the scratch buffer has the maximum output size");
        self.stats.stored += 1;
        self.stats.json_bytes += json.len() as u64;
        self.stats.compressed_bytes += n as u64;
        Arc::new(Body {
            len: u32::try_from(json.len()).unwrap_or(u32::MAX),
            data: Box::from(&self.scratch[..n]),
            dict,
        })
    }

    pub fn stats(&self) -> BodyStats {
        self.stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(pid: u32) -> Vec<u8> {
        format!(
            r#"{{"@timestamp":"2026-12-05T12:00:00.{pid:09}Z","event":{{"kind":"event","category":["process"],"type":["start"],"action":"exec"}},"process":{{"pid":{pid},"name":"sh","executable":"/usr/bin/sh","args":["sh","-c","true {pid}"],"entity_id":"ZW50aXR5LXtwaWR9LXJhbmRvbS0{pid}","parent":{{"pid":1,"name":"systemd","executable":"/usr/lib/systemd/systemd"}}}},"host":{{"name":"box","hostname":"box","id":"0123456789abcdef0123456789abcdef","os":{{"type":"linux","name":"Debian GNU/Linux","kernel":"6.18.0"}}}},"agent":{{"type":"detector","version":"0.1.0"}},"ecs":{{"version":"9.0.0"}}}}"#
        )
        .into_bytes()
    }

    #[test]
    fn bodies_round_trip_and_the_dictionary_makes_them_small() {
        let mut s = BodyStore::new();
        let bodies: Vec<_> = (1000..1100).map(|p| (p, s.store(&event(p)))).collect();
        for (p, b) in &bodies {
            assert_eq!(b.json().unwrap(), event(*p));
        }
        let st = s.stats();
        assert_eq!(st.stored, 100);
        // Past the first, each body is a small fraction of its JSON.
        let later = bodies[1..].iter().map(|(_, b)| b.data.len()).max().unwrap();
        assert!(
            later * 4 < event(1000).len(),
            "{later} bytes for {}",
            event(1000).len()
        );
    }
}
