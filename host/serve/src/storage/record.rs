//! What a shard's log holds: one record per change of its state, in the order the shard made
//! them — the events a component call recorded, a raised watermark, a model swapped in.

use edgescore_runtime::GuestEvent;
use edgescore_types::RejectionReason;
use serde::ser::SerializeSeq;
use serde::{Deserialize, Serialize, Serializer};

/// A record as it is read back.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub enum Record {
    /// The events one component call recorded (all of them were accepted), the clock they were
    /// judged at, and the shard's rejections of that call by reason (for the counters).
    Ingest {
        now: f64,
        events: Vec<LoggedEvent>,
        rejected: Vec<(u8, u32)>,
    },
    /// The shard's engine was advanced to the service watermark.
    Advance { watermark: f64 },
    /// A model was swapped in; its bytes are in the data directory's model store.
    Swap {
        version: String,
        model_sha256: String,
    },
}

/// An event in the log: (user id, timestamp, features).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct LoggedEvent(pub String, pub f64, pub Vec<f32>);

impl LoggedEvent {
    pub fn into_guest(self) -> GuestEvent {
        GuestEvent {
            user_id: self.0,
            timestamp: self.1,
            features: self.2,
        }
    }
}

/// A record as it is written: borrows the shard's events instead of copying them. Encodes
/// exactly as [`Record`] decodes (variants in the same order, fields in the same order).
#[derive(Serialize)]
pub enum RecordRef<'a> {
    Ingest {
        now: f64,
        #[serde(serialize_with = "serialize_events")]
        events: &'a [GuestEvent],
        rejected: &'a [(u8, u32)],
    },
    Advance {
        watermark: f64,
    },
    Swap {
        version: &'a str,
        model_sha256: &'a str,
    },
}

fn serialize_events<S: Serializer>(events: &&[GuestEvent], s: S) -> Result<S::Ok, S::Error> {
    let mut seq = s.serialize_seq(Some(events.len()))?;
    for e in events.iter() {
        seq.serialize_element(&(&e.user_id, e.timestamp, &e.features))?;
    }
    seq.end()
}

impl RecordRef<'_> {
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.clear();
        // Writing into a Vec cannot fail.
        *out = postcard::to_extend(self, std::mem::take(out)).expect("a record encodes");
    }
}

impl Record {
    pub fn decode(bytes: &[u8]) -> Result<Record, postcard::Error> {
        postcard::from_bytes(bytes)
    }
}

/// Rejections by reason, as the log keeps them: (reason index, count), reasons with none left
/// out.
pub fn rejection_counts(reasons: impl Iterator<Item = RejectionReason>) -> Vec<(u8, u32)> {
    let mut counts = [0u32; RejectionReason::ALL.len()];
    for r in reasons {
        counts[r as usize] += 1;
    }
    counts
        .iter()
        .enumerate()
        .filter(|(_, n)| **n > 0)
        .map(|(i, n)| (i as u8, *n))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_written_record_reads_back_the_same() {
        let events = vec![
            GuestEvent {
                user_id: "user-7".into(),
                timestamp: 1_700_000_000.5,
                features: vec![0.1, -2.0, 3.5],
            },
            GuestEvent {
                user_id: "ü".into(),
                timestamp: 1.0,
                features: vec![],
            },
        ];
        let rejected = [(5u8, 2u32)];
        let mut bytes = Vec::new();
        RecordRef::Ingest {
            now: 1_700_000_001.0,
            events: &events,
            rejected: &rejected,
        }
        .encode(&mut bytes);
        let expected = Record::Ingest {
            now: 1_700_000_001.0,
            events: vec![
                LoggedEvent("user-7".into(), 1_700_000_000.5, vec![0.1, -2.0, 3.5]),
                LoggedEvent("ü".into(), 1.0, vec![]),
            ],
            rejected: rejected.to_vec(),
        };
        assert_eq!(Record::decode(&bytes).unwrap(), expected);
        for (written, read) in [
            (
                RecordRef::Advance { watermark: 12.5 },
                Record::Advance { watermark: 12.5 },
            ),
            (
                RecordRef::Swap {
                    version: "seed-mlp@2",
                    model_sha256: "ab",
                },
                Record::Swap {
                    version: "seed-mlp@2".into(),
                    model_sha256: "ab".into(),
                },
            ),
        ] {
            written.encode(&mut bytes);
            assert_eq!(Record::decode(&bytes).unwrap(), read);
        }
    }

    #[test]
    fn rejections_are_counted_by_reason() {
        use RejectionReason::*;
        let counts = rejection_counts([Late, Future, Late].into_iter());
        assert_eq!(counts, vec![(Future as u8, 1), (Late as u8, 2)]);
    }
}
