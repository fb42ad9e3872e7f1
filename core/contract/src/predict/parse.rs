//! The streaming `{"instances": [...]}` parser: serde visitors that push each instance's values
//! into the flat row buffer as they are read. The first problem found ends the parse with its
//! sentence (an instance's error names it and its field, as the contract wants).

use std::cell::RefCell;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::{Features, PredictParseError};

/// Parses instances into one flat row-major buffer of `n × width` finite f32s.
pub fn parse_predict(
    body: &[u8],
    features: &Features,
    max_instances: usize,
) -> Result<Vec<f32>, PredictParseError> {
    let problem = RefCell::new(None);
    let parser = Parser {
        features,
        max_instances,
        problem: &problem,
    };
    let mut de = serde_json::Deserializer::from_slice(body);
    let parsed = BodySeed(&parser)
        .deserialize(&mut de)
        .and_then(|rows| de.end().map(|()| rows));
    parsed.map_err(|e| {
        problem
            .into_inner()
            .unwrap_or_else(|| PredictParseError::Syntax(e.to_string()))
    })
}

/// What every visitor shares: the model's features, the limit, and the problem found (kept
/// apart, since serde's own error cannot carry our status).
struct Parser<'a> {
    features: &'a Features<'a>,
    max_instances: usize,
    problem: &'a RefCell<Option<PredictParseError>>,
}

impl Parser<'_> {
    /// Records `problem` and gives the error that stops the parse.
    fn stop<E: de::Error>(&self, problem: PredictParseError) -> E {
        let message = problem.to_string();
        *self.problem.borrow_mut() = Some(problem);
        E::custom(message)
    }

    fn invalid<E: de::Error>(&self, message: String) -> E {
        self.stop(PredictParseError::Invalid(message))
    }
}

/// The body: an object whose `instances` is the array (other keys ignored).
struct BodySeed<'p, 'a>(&'p Parser<'a>);

impl<'de> DeserializeSeed<'de> for BodySeed<'_, '_> {
    type Value = Vec<f32>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Vec<f32>, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for BodySeed<'_, '_> {
    type Value = Vec<f32>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(r#"a JSON object {"instances": [...]}"#)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Vec<f32>, A::Error> {
        let mut rows = None;
        while let Some(key) = map.next_key::<String>()? {
            if key == "instances" {
                rows = Some(map.next_value_seed(InstancesSeed(self.0))?);
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        let p = self.0;
        let rows = rows.ok_or_else(|| {
            p.invalid(r#"instances: missing; the body must be {"instances": [...]}"#.into())
        })?;
        if rows.is_empty() {
            return Err(p.invalid("instances: must hold at least one instance".into()));
        }
        Ok(rows)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, _: A) -> Result<Vec<f32>, A::Error> {
        Err(self
            .0
            .invalid(r#"instances: missing; the body must be {"instances": [...]}"#.into()))
    }
}

/// The `instances` array.
struct InstancesSeed<'p, 'a>(&'p Parser<'a>);

impl<'de> DeserializeSeed<'de> for InstancesSeed<'_, '_> {
    type Value = Vec<f32>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Vec<f32>, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for InstancesSeed<'_, '_> {
    type Value = Vec<f32>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an array of rows or objects")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<f32>, A::Error> {
        let p = self.0;
        let width = p.features.width;
        let hint = seq.size_hint().unwrap_or(0).min(p.max_instances);
        let mut rows = Vec::with_capacity(hint * width);
        let mut index = 0;
        while seq
            .next_element_seed(InstanceSeed {
                parser: p,
                index,
                rows: &mut rows,
            })?
            .is_some()
        {
            index += 1;
            if index > p.max_instances {
                let limit = p.max_instances;
                return Err(p.stop(PredictParseError::TooMany { limit }));
            }
        }
        Ok(rows)
    }

    fn visit_map<A: MapAccess<'de>>(self, _: A) -> Result<Vec<f32>, A::Error> {
        Err(self
            .0
            .invalid("instances: must be an array of rows or objects".into()))
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<Vec<f32>, E> {
        Err(self
            .0
            .invalid("instances: must be an array of rows or objects".into()))
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Vec<f32>, E> {
        Err(self
            .0
            .invalid("instances: must be an array of rows or objects".into()))
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Vec<f32>, E> {
        Err(self
            .0
            .invalid("instances: must be an array of rows or objects".into()))
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Vec<f32>, E> {
        Err(self
            .0
            .invalid("instances: must be an array of rows or objects".into()))
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Vec<f32>, E> {
        Err(self
            .0
            .invalid("instances: must be an array of rows or objects".into()))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Vec<f32>, E> {
        Err(self
            .0
            .invalid("instances: must be an array of rows or objects".into()))
    }
}

/// Instance `index`: a row of numbers in feature order, or an object of named features. Its
/// values go straight onto `rows`.
struct InstanceSeed<'p, 'a, 'r> {
    parser: &'p Parser<'a>,
    index: usize,
    rows: &'r mut Vec<f32>,
}

impl<'de> DeserializeSeed<'de> for InstanceSeed<'_, '_, '_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl InstanceSeed<'_, '_, '_> {
    fn not_an_instance<E: de::Error>(&self) -> E {
        self.parser.invalid(format!(
            "instances[{}]: must be an array of numbers or an object of named features",
            self.index
        ))
    }

    /// A finite f32 for `field`, or the parse stops naming it.
    fn number<E: de::Error>(&self, value: Number, field: impl Fn() -> String) -> Result<f32, E> {
        match value {
            Number::Finite(x) => Ok(x),
            Number::OutOfRange => Err(self
                .parser
                .invalid(format!("{}: must be a finite 32-bit float", field()))),
            Number::Other => Err(self
                .parser
                .invalid(format!("{}: must be a number", field()))),
        }
    }
}

impl<'de> Visitor<'de> for InstanceSeed<'_, '_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a row of numbers or an object of named features")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let (index, width) = (self.index, self.parser.features.width);
        let start = self.rows.len();
        let mut seen = 0;
        while let Some(value) = seq.next_element::<Number>()? {
            if seen < width {
                let x = self.number(value, || format!("instances[{index}][{seen}]"))?;
                self.rows.push(x);
            }
            seen += 1;
        }
        if seen != width {
            self.rows.truncate(start);
            return Err(self.parser.invalid(format!(
                "instances[{index}]: expected {width} values, got {seen}"
            )));
        }
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let (index, names) = (self.index, self.parser.features.names);
        if names.is_empty() {
            return Err(self.parser.invalid(format!(
                "instances[{index}]: this model has no feature names; send rows of {} numbers",
                self.parser.features.width
            )));
        }
        let mut values: Vec<Option<f32>> = vec![None; names.len()];
        let mut unknown: Vec<String> = Vec::new();
        while let Some(key) = map.next_key::<String>()? {
            let value = map.next_value::<Number>()?;
            match names.iter().position(|n| *n == key) {
                Some(i) => {
                    values[i] = Some(self.number(value, || format!("instances[{index}].{key}"))?)
                }
                // A few are enough to name the problem; the rest only need skipping.
                None if unknown.len() < 8 => unknown.push(key),
                None => {}
            }
        }
        let missing: Vec<&str> = names
            .iter()
            .zip(&values)
            .filter(|(_, v)| v.is_none())
            .map(|(n, _)| n.as_str())
            .collect();
        if !missing.is_empty() || !unknown.is_empty() {
            let mut problems = Vec::new();
            if !missing.is_empty() {
                problems.push(format!("missing {}", missing.join(", ")));
            }
            if !unknown.is_empty() {
                problems.push(format!("unknown {}", unknown.join(", ")));
            }
            return Err(self.parser.invalid(format!(
                "instances[{index}]: {} (the model's features: {})",
                problems.join("; "),
                names.join(", ")
            )));
        }
        self.rows.extend(values.into_iter().flatten());
        Ok(())
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        Err(self.not_an_instance())
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        Err(self.not_an_instance())
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        Err(self.not_an_instance())
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        Err(self.not_an_instance())
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        Err(self.not_an_instance())
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Err(self.not_an_instance())
    }
}

/// A JSON value where a feature value is expected: a finite f32, a number beyond f32's range
/// (refused, never clamped), or anything else (skipped without building it).
enum Number {
    Finite(f32),
    OutOfRange,
    Other,
}

impl<'de> de::Deserialize<'de> for Number {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(NumberVisitor)
    }
}

struct NumberVisitor;

impl NumberVisitor {
    fn of(x: f64) -> Number {
        match x as f32 {
            f if f.is_finite() => Number::Finite(f),
            _ => Number::OutOfRange,
        }
    }
}

impl<'de> Visitor<'de> for NumberVisitor {
    type Value = Number;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a number")
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Number, E> {
        Ok(Self::of(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Number, E> {
        Ok(Self::of(v as f64))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Number, E> {
        Ok(Self::of(v as f64))
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<Number, E> {
        Ok(Number::Other)
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Number, E> {
        Ok(Number::Other)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Number, E> {
        Ok(Number::Other)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Number, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Number::Other)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Number, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Number::Other)
    }
}
