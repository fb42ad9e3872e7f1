//! Parsing `POST /ingest` bodies: `{"events": [event, ...]}`.
//!
//! The body as a whole must be JSON with an `events` array (else 400/422, nothing accepted), but
//! each event is judged on its own: one with a missing or mistyped field becomes a rejection for
//! that event only, as the seed service skipped malformed events without failing the batch.
//! The parser streams the body straight into [`Event`]s (no intermediate JSON tree) and stops at
//! the events limit instead of reading a huge array first.

use std::cell::Cell;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use edgescore_types::{Event, RejectionReason};

/// One element of the `events` array: an event to judge, or why it cannot be one.
#[derive(Debug, Clone, PartialEq)]
pub enum ParsedEvent {
    Event(Event),
    Invalid(RejectionReason, String),
}

/// Why a whole body is refused; nothing of it is accepted.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum IngestParseError {
    /// Not JSON (this includes `NaN` and `Infinity`, which JSON does not have).
    #[error("body: not valid JSON: {0}")]
    Syntax(String),
    /// JSON, but not `{"events": [...]}`.
    #[error("{0}")]
    Shape(String),
    #[error("events: more than {limit} events in one request (the limit)")]
    TooManyEvents { limit: usize },
}

impl IngestParseError {
    /// The HTTP status the contract gives this error.
    pub fn status(&self) -> u16 {
        match self {
            IngestParseError::Syntax(_) => 400,
            IngestParseError::Shape(_) => 422,
            IngestParseError::TooManyEvents { .. } => 413,
        }
    }
}

impl From<IngestParseError> for crate::ApiError {
    fn from(e: IngestParseError) -> Self {
        crate::ApiError::new(e.status(), e.to_string())
    }
}

/// Parses an ingest body, refusing more than `max_events` events.
pub fn parse_ingest(body: &[u8], max_events: usize) -> Result<Vec<ParsedEvent>, IngestParseError> {
    let too_many = Cell::new(false);
    let mut de = serde_json::Deserializer::from_slice(body);
    let parsed = BodySeed {
        max_events,
        too_many: &too_many,
    }
    .deserialize(&mut de)
    .and_then(|events| de.end().map(|()| events));
    parsed.map_err(|e| {
        if too_many.get() {
            IngestParseError::TooManyEvents { limit: max_events }
        } else if e.classify() == serde_json::error::Category::Data {
            IngestParseError::Shape(e.to_string())
        } else {
            IngestParseError::Syntax(e.to_string())
        }
    })
}

const BODY_SHAPE: &str = r#"body: must be a JSON object {"events": [...]}"#;

struct BodySeed<'a> {
    max_events: usize,
    too_many: &'a Cell<bool>,
}

impl<'de> DeserializeSeed<'de> for BodySeed<'_> {
    type Value = Vec<ParsedEvent>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for BodySeed<'_> {
    type Value = Vec<ParsedEvent>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(BODY_SHAPE)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut events = None;
        while let Some(key) = map.next_key::<TopField>()? {
            match key {
                TopField::Events => {
                    events = Some(map.next_value_seed(EventsSeed {
                        max_events: self.max_events,
                        too_many: self.too_many,
                    })?)
                }
                TopField::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        events.ok_or_else(|| {
            de::Error::custom(r#"events: missing; the body must be {"events": [...]}"#)
        })
    }

    fn visit_seq<A: SeqAccess<'de>>(self, _: A) -> Result<Self::Value, A::Error> {
        Err(de::Error::custom(BODY_SHAPE))
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
        Err(E::custom(BODY_SHAPE))
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Err(E::custom(BODY_SHAPE))
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
        Err(E::custom(BODY_SHAPE))
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Err(E::custom(BODY_SHAPE))
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Err(E::custom(BODY_SHAPE))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Err(E::custom(BODY_SHAPE))
    }
}

/// Keys of the body object (anything but `events` is ignored, for clients that send more).
enum TopField {
    Events,
    Other,
}

impl<'de> de::Deserialize<'de> for TopField {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_identifier(KeyVisitor(|k| match k {
            "events" => TopField::Events,
            _ => TopField::Other,
        }))
    }
}

struct EventsSeed<'a> {
    max_events: usize,
    too_many: &'a Cell<bool>,
}

impl<'de> DeserializeSeed<'de> for EventsSeed<'_> {
    type Value = Vec<ParsedEvent>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

const EVENTS_SHAPE: &str = "events: must be an array of events";

impl<'de> Visitor<'de> for EventsSeed<'_> {
    type Value = Vec<ParsedEvent>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(EVENTS_SHAPE)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut events = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(self.max_events));
        while let Some(event) = seq.next_element::<ParsedEvent>()? {
            if events.len() == self.max_events {
                self.too_many.set(true);
                return Err(de::Error::custom("too many events"));
            }
            events.push(event);
        }
        Ok(events)
    }

    fn visit_map<A: MapAccess<'de>>(self, _: A) -> Result<Self::Value, A::Error> {
        Err(de::Error::custom(EVENTS_SHAPE))
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
        Err(E::custom(EVENTS_SHAPE))
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Err(E::custom(EVENTS_SHAPE))
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
        Err(E::custom(EVENTS_SHAPE))
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Err(E::custom(EVENTS_SHAPE))
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Err(E::custom(EVENTS_SHAPE))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Err(E::custom(EVENTS_SHAPE))
    }
}

/// Keys of an event object; others are ignored.
enum EventField {
    UserId,
    Timestamp,
    Features,
    Other,
}

impl<'de> de::Deserialize<'de> for EventField {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_identifier(KeyVisitor(|k| match k {
            "user_id" => EventField::UserId,
            "timestamp" => EventField::Timestamp,
            "features" => EventField::Features,
            _ => EventField::Other,
        }))
    }
}

impl<'de> de::Deserialize<'de> for ParsedEvent {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(EventVisitor)
    }
}

struct EventVisitor;

impl EventVisitor {
    fn not_an_object(kind: &str) -> ParsedEvent {
        ParsedEvent::Invalid(
            RejectionReason::MalformedEvent,
            format!("event: must be an object with user_id, timestamp and features, got {kind}"),
        )
    }
}

impl<'de> Visitor<'de> for EventVisitor {
    type Value = ParsedEvent;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an event object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let (mut user_id, mut timestamp, mut features) = (None, None, None);
        while let Some(key) = map.next_key::<EventField>()? {
            match key {
                EventField::UserId => user_id = Some(map.next_value::<Scalar>()?),
                EventField::Timestamp => timestamp = Some(map.next_value::<Scalar>()?),
                EventField::Features => features = Some(map.next_value::<Features>()?),
                EventField::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        use RejectionReason::*;
        let invalid = |reason, message: String| Ok(ParsedEvent::Invalid(reason, message));
        let user_id = match user_id {
            Some(Scalar::Str(s)) => s,
            Some(other) => {
                return invalid(
                    InvalidUserId,
                    format!("user_id: must be a string, got {}", other.kind()),
                );
            }
            None => return invalid(InvalidUserId, "user_id: missing".into()),
        };
        let timestamp = match timestamp {
            Some(Scalar::Num(t)) => t,
            Some(other) => {
                return invalid(
                    InvalidTimestamp,
                    format!(
                        "timestamp: must be a number of Unix seconds, got {}",
                        other.kind()
                    ),
                );
            }
            None => return invalid(InvalidTimestamp, "timestamp: missing".into()),
        };
        let features = match features {
            Some(Features::List(f)) => f,
            Some(Features::BadElement(i, kind)) => {
                return invalid(
                    NonFiniteFeature,
                    format!("features[{i}]: must be a number, got {kind}"),
                );
            }
            Some(Features::NotAList(kind)) => {
                return invalid(
                    WrongWidth,
                    format!("features: must be an array of numbers, got {kind}"),
                );
            }
            None => return invalid(WrongWidth, "features: missing".into()),
        };
        Ok(ParsedEvent::Event(Event {
            user_id,
            timestamp,
            features,
        }))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Self::not_an_object("an array"))
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
        Ok(Self::not_an_object("a string"))
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Ok(Self::not_an_object("a number"))
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
        Ok(Self::not_an_object("a number"))
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Ok(Self::not_an_object("a number"))
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(Self::not_an_object("a boolean"))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Self::not_an_object("null"))
    }
}

/// A JSON scalar where a string or a number is expected; anything else is named, not an error.
enum Scalar {
    Str(String),
    Num(f64),
    Other(&'static str),
}

impl Scalar {
    fn kind(&self) -> &'static str {
        match self {
            Scalar::Str(_) => "a string",
            Scalar::Num(_) => "a number",
            Scalar::Other(kind) => kind,
        }
    }
}

impl<'de> de::Deserialize<'de> for Scalar {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ScalarVisitor)
    }
}

struct ScalarVisitor;

impl<'de> Visitor<'de> for ScalarVisitor {
    type Value = Scalar;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Scalar, E> {
        Ok(Scalar::Str(v.to_owned()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Scalar, E> {
        Ok(Scalar::Str(v))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Scalar, E> {
        Ok(Scalar::Num(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Scalar, E> {
        Ok(Scalar::Num(v as f64))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Scalar, E> {
        Ok(Scalar::Num(v as f64))
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Scalar, E> {
        Ok(Scalar::Other("a boolean"))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Scalar, E> {
        Ok(Scalar::Other("null"))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Scalar, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Scalar::Other("an array"))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Scalar, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Scalar::Other("an object"))
    }
}

/// The `features` value: the row (doubles narrowed to f32; out-of-range values become infinite
/// and are rejected by the rules, never clamped), or what was wrong with it.
enum Features {
    List(Vec<f32>),
    BadElement(usize, &'static str),
    NotAList(&'static str),
}

impl<'de> de::Deserialize<'de> for Features {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(FeaturesVisitor)
    }
}

struct FeaturesVisitor;

impl<'de> Visitor<'de> for FeaturesVisitor {
    type Value = Features;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an array of numbers")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Features, A::Error> {
        let mut row = Vec::with_capacity(seq.size_hint().unwrap_or(4));
        let mut bad = None;
        while let Some(value) = seq.next_element::<Scalar>()? {
            match value {
                Scalar::Num(v) => row.push(v as f32),
                other => {
                    bad.get_or_insert((row.len(), other.kind()));
                    row.push(f32::NAN);
                }
            }
        }
        Ok(match bad {
            Some((i, kind)) => Features::BadElement(i, kind),
            None => Features::List(row),
        })
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Features, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Features::NotAList("an object"))
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<Features, E> {
        Ok(Features::NotAList("a string"))
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Features, E> {
        Ok(Features::NotAList("a number"))
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Features, E> {
        Ok(Features::NotAList("a number"))
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Features, E> {
        Ok(Features::NotAList("a number"))
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Features, E> {
        Ok(Features::NotAList("a boolean"))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Features, E> {
        Ok(Features::NotAList("null"))
    }
}

/// Maps an object key to a field without allocating it.
struct KeyVisitor<T>(fn(&str) -> T);

impl<'de, T> Visitor<'de> for KeyVisitor<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a field name")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<T, E> {
        Ok((self.0)(v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(body: &str) -> Result<Vec<ParsedEvent>, IngestParseError> {
        parse_ingest(body.as_bytes(), 3)
    }

    fn invalid(body: &str) -> (RejectionReason, String) {
        match parse(body).unwrap().remove(0) {
            ParsedEvent::Invalid(reason, message) => (reason, message),
            ParsedEvent::Event(e) => panic!("{body} parsed as {e:?}"),
        }
    }

    #[test]
    fn the_seed_batch_parses_and_unknown_fields_are_ignored() {
        let events = parse(
            r#"{"events":[{"user_id":"user-7","timestamp":1700000000,"features":[0.1,0.2,0.3],"x":{"y":[1]}}],"source":"gen"}"#,
        )
        .unwrap();
        assert_eq!(
            events,
            vec![ParsedEvent::Event(Event {
                user_id: "user-7".into(),
                timestamp: 1_700_000_000.0,
                features: vec![0.1, 0.2, 0.3],
            })]
        );
        assert_eq!(parse(r#"{"events":[]}"#).unwrap(), vec![]);
        assert!(
            matches!(&parse(r#"{"events":[{"user_id":"a\u00e9","timestamp":1.5,"features":[]}]}"#).unwrap()[0],
            ParsedEvent::Event(e) if e.user_id == "aé" && e.timestamp == 1.5)
        );
    }

    #[test]
    fn body_errors_are_syntax_shape_or_size() {
        for body in [
            "",
            "{",
            "nope",
            r#"{"events":[{"user_id":"a","timestamp":NaN,"features":[]}]}"#,
            r#"{"events":[]} x"#,
            r#"{"events":[1e400]}"#,
        ] {
            let err = parse(body).unwrap_err();
            assert_eq!(err.status(), 400, "{body}: {err}");
            assert!(err.to_string().starts_with("body: not valid JSON"), "{err}");
        }
        for (body, field) in [
            ("[]", "body"),
            ("{}", "events: missing"),
            (r#"{"events":{}}"#, "events: must be an array"),
            (r#"{"events":"x"}"#, "events: must be an array"),
            ("3", "body"),
        ] {
            let err = parse(body).unwrap_err();
            assert_eq!(err.status(), 422, "{body}: {err}");
            assert!(err.to_string().starts_with(field), "{body}: {err}");
        }
        let four = r#"{"events":[1,2,3,4]}"#;
        assert_eq!(
            parse(four).unwrap_err(),
            IngestParseError::TooManyEvents { limit: 3 }
        );
        assert_eq!(parse(r#"{"events":[1,2,3]}"#).unwrap().len(), 3);
    }

    #[test]
    fn a_malformed_event_is_rejected_alone_with_the_field_named() {
        use RejectionReason::*;
        let cases = [
            (
                r#"{"events":[[1,2]]}"#,
                MalformedEvent,
                "event: must be an object",
            ),
            (
                r#"{"events":[null]}"#,
                MalformedEvent,
                "event: must be an object with user_id, timestamp and features, got null",
            ),
            (
                r#"{"events":[{"timestamp":1,"features":[1]}]}"#,
                InvalidUserId,
                "user_id: missing",
            ),
            (
                r#"{"events":[{"user_id":7,"timestamp":1,"features":[1]}]}"#,
                InvalidUserId,
                "user_id: must be a string, got a number",
            ),
            (
                r#"{"events":[{"user_id":"u","features":[1]}]}"#,
                InvalidTimestamp,
                "timestamp: missing",
            ),
            (
                r#"{"events":[{"user_id":"u","timestamp":"1","features":[1]}]}"#,
                InvalidTimestamp,
                "timestamp: must be a number of Unix seconds, got a string",
            ),
            (
                r#"{"events":[{"user_id":"u","timestamp":1}]}"#,
                WrongWidth,
                "features: missing",
            ),
            (
                r#"{"events":[{"user_id":"u","timestamp":1,"features":{"a":1}}]}"#,
                WrongWidth,
                "features: must be an array of numbers, got an object",
            ),
            (
                r#"{"events":[{"user_id":"u","timestamp":1,"features":[1,null,[2]]}]}"#,
                NonFiniteFeature,
                "features[1]: must be a number, got null",
            ),
        ];
        for (body, reason, message) in cases {
            let (r, m) = invalid(body);
            assert_eq!(r, reason, "{body}");
            assert!(m.starts_with(message), "{body}: {m}");
        }
        let mixed =
            parse(r#"{"events":[null,{"user_id":"u","timestamp":1,"features":[1e39]}]}"#).unwrap();
        assert!(
            matches!(&mixed[1], ParsedEvent::Event(e) if e.features[0].is_infinite()),
            "out-of-range doubles become infinite for the rules to reject, never clamped"
        );
    }
}
