//! Reading events and feature rows from JSON: the seed's `{"events": [...]}` batches, single event
//! objects, or bare rows, one JSON value per line. Parse errors name the line.

use anyhow::{Context, Result, bail};
use edgescore_types::Event;
use serde::Deserialize;

/// An event as JSON carries it: numbers are doubles until the engine narrows them to f32.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventJson {
    pub user_id: String,
    pub timestamp: f64,
    pub features: Vec<f64>,
}

impl From<EventJson> for Event {
    fn from(e: EventJson) -> Self {
        // A double beyond f32's range becomes infinite here and is rejected by the engine as
        // `non_finite_feature`, never silently clamped.
        Event {
            user_id: e.user_id,
            timestamp: e.timestamp,
            features: e.features.into_iter().map(|v| v as f32).collect(),
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct BatchJson {
    pub events: Vec<EventJson>,
}

/// Largest batch a file's loose events are grouped into.
pub const LOOSE_EVENTS_PER_BATCH: usize = 1000;

/// Reads an events file: one `{"events": [...]}` document, or JSON lines each holding a batch or a
/// single event (consecutive single events are grouped into batches). All or nothing: any bad line
/// fails the whole file before anything is ingested.
pub fn read_event_batches(text: &str) -> Result<Vec<Vec<Event>>> {
    if let Ok(batch) = serde_json::from_str::<BatchJson>(text) {
        return Ok(vec![batch.events.into_iter().map(Event::from).collect()]);
    }
    let mut batches: Vec<Vec<Event>> = Vec::new();
    let mut loose: Vec<Event> = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let value: serde_json::Value =
            serde_json::from_str(line).with_context(|| format!("line {}: not JSON", n + 1))?;
        if value.get("events").is_some() {
            let batch: BatchJson =
                serde_json::from_value(value).with_context(|| format!("line {}", n + 1))?;
            batches.extend((!loose.is_empty()).then(|| std::mem::take(&mut loose)));
            batches.push(batch.events.into_iter().map(Event::from).collect());
        } else {
            let event: EventJson =
                serde_json::from_value(value).with_context(|| format!("line {}", n + 1))?;
            loose.push(event.into());
            if loose.len() == LOOSE_EVENTS_PER_BATCH {
                batches.push(std::mem::take(&mut loose));
            }
        }
    }
    batches.extend((!loose.is_empty()).then_some(loose));
    Ok(batches)
}

/// A row to score: a bare `[f, ...]` or an object with `features` (and an optional `user_id`).
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub user_id: Option<String>,
    pub features: Vec<f32>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RowJson {
    Bare(Vec<f64>),
    Object {
        features: Vec<f64>,
        user_id: Option<String>,
    },
}

/// Parses one line of `edgescore score` input, checking it against the model's width.
pub fn parse_row(line: &str, width: usize) -> Result<Row> {
    let row: RowJson = serde_json::from_str(line).map_err(|_| {
        anyhow::anyhow!("expected a JSON array of numbers or an object with \"features\"")
    })?;
    let (user_id, features) = match row {
        RowJson::Bare(f) => (None, f),
        RowJson::Object { features, user_id } => (user_id, features),
    };
    if features.len() != width {
        bail!("features: expected {width} values, got {}", features.len());
    }
    let features: Vec<f32> = features.into_iter().map(|v| v as f32).collect();
    if let Some(i) = features.iter().position(|v| !v.is_finite()) {
        bail!("features[{i}]: must be a finite 32-bit float");
    }
    Ok(Row { user_id, features })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_seed_document_json_lines_and_loose_events() {
        let doc =
            r#"{"events":[{"user_id":"user-7","timestamp":1700000000,"features":[0.1,0.2,0.3]}]}"#;
        assert_eq!(read_event_batches(doc).unwrap()[0][0].user_id, "user-7");
        let lines = format!(
            "{doc}\n\n{}\n{}\n{doc}\n",
            r#"{"user_id":"a","timestamp":1.5,"features":[1]}"#,
            r#"{"user_id":"b","timestamp":2,"features":[1e39]}"#
        );
        let batches = read_event_batches(&lines).unwrap();
        assert_eq!(
            batches.iter().map(Vec::len).collect::<Vec<_>>(),
            vec![1, 2, 1]
        );
        assert!(
            batches[1][1].features[0].is_infinite(),
            "out-of-range doubles are not clamped"
        );
    }

    #[test]
    fn bad_lines_are_named() {
        let err = read_event_batches("{\"user_id\":\"a\",\"timestamp\":1,\"features\":[1]}\n{oops")
            .unwrap_err();
        assert!(
            format!("{err:#}").starts_with("line 2: not JSON"),
            "{err:#}"
        );
        let err = read_event_batches(r#"{"user_id":"a","features":[1]}"#).unwrap_err();
        assert!(format!("{err:#}").contains("timestamp"), "{err:#}");
    }

    #[test]
    fn rows_are_checked_against_the_width() {
        assert_eq!(
            parse_row("[1, 2, 3]", 3).unwrap().features,
            vec![1.0, 2.0, 3.0]
        );
        assert_eq!(
            parse_row(r#"{"user_id":"u","features":[1,2,3]}"#, 3)
                .unwrap()
                .user_id
                .as_deref(),
            Some("u")
        );
        assert_eq!(
            parse_row("[1, 2]", 3).unwrap_err().to_string(),
            "features: expected 3 values, got 2"
        );
        assert!(
            parse_row("[1, 2, 1e300]", 3)
                .unwrap_err()
                .to_string()
                .starts_with("features[2]")
        );
        assert!(parse_row("\"x\"", 3).is_err());
    }
}
