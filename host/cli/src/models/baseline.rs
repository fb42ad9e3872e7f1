//! A model's baseline (each feature's mean and standard deviation, as drift detection compares
//! traffic to) computed from a CSV file of representative rows.
//!
//! The file has one row per example. Its first row names the columns when it is not all
//! numbers: the model's features are then taken by name, in the model's order, and other columns
//! are ignored. Without a header, a row is the features in the model's order.

use std::path::Path;

use anyhow::{Context, Result, bail};
use edgescore_registry::Baseline;

/// The baseline of `features` over every row of `path`, and the first rows (for reference
/// outputs).
pub fn from_csv(
    path: &Path,
    features: &[String],
    keep_rows: usize,
) -> Result<(Baseline, Vec<Vec<f32>>)> {
    let name = path.display();
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .trim(csv::Trim::All)
        .from_path(path)
        .with_context(|| format!("{name}: cannot be read"))?;
    let mut records = reader.records();
    let first = match records.next() {
        Some(record) => record.with_context(|| format!("{name}: not CSV"))?,
        None => bail!("{name}: no rows"),
    };
    let is_header = first.iter().any(|cell| cell.parse::<f64>().is_err());
    let columns = if is_header {
        columns_named(&name.to_string(), &first, features)?
    } else {
        (0..features.len()).collect()
    };
    let mut stats = vec![Welford::default(); features.len()];
    let mut kept = Vec::new();
    let data_rows = std::iter::once(Ok(first.clone()))
        .filter(|_| !is_header)
        .chain(records);
    for (i, record) in data_rows.enumerate() {
        let line = format!("{name}: line {}", i + 1 + usize::from(is_header));
        let record = record.with_context(|| format!("{line}: not CSV"))?;
        if !is_header && record.len() != features.len() {
            bail!(
                "{line}: {} values, the model takes {} features ({})",
                record.len(),
                features.len(),
                features.join(", ")
            );
        }
        let row = read_row(&line, &record, features, &columns)?;
        for (stat, value) in stats.iter_mut().zip(&row) {
            stat.add(*value);
        }
        if kept.len() < keep_rows {
            kept.push(row.iter().map(|v| *v as f32).collect());
        }
    }
    let sample_size = stats[0].count;
    if sample_size == 0 {
        bail!("{name}: a header and no rows");
    }
    Ok((
        Baseline {
            sample_size,
            mean: stats.iter().map(|s| s.mean).collect(),
            std: stats.iter().map(Welford::std).collect(),
        },
        kept,
    ))
}

/// Where each of `features` is among the columns the header row `first` names.
fn columns_named(name: &str, first: &csv::StringRecord, features: &[String]) -> Result<Vec<usize>> {
    features
        .iter()
        .map(|feature| {
            first.iter().position(|c| c == feature).with_context(|| {
                format!(
                    "{name}: no column {feature:?} (its header names {})",
                    first.iter().collect::<Vec<_>>().join(", ")
                )
            })
        })
        .collect()
}

/// The features of one row, from its `columns`; `line` names the row in errors.
fn read_row(
    line: &str,
    record: &csv::StringRecord,
    features: &[String],
    columns: &[usize],
) -> Result<Vec<f64>> {
    features
        .iter()
        .zip(columns)
        .map(|(feature, &column)| {
            let cell = record.get(column).unwrap_or("");
            cell.parse()
                .ok()
                .filter(|v: &f64| v.is_finite())
                .with_context(|| format!("{line}, {feature}: {cell:?} is not a finite number"))
        })
        .collect()
}

/// Mean and population standard deviation in one pass (Welford), stable for large samples.
#[derive(Debug, Clone, Copy, Default)]
struct Welford {
    count: u64,
    mean: f64,
    /// Sum of squared differences from the mean.
    m2: f64,
}

impl Welford {
    fn add(&mut self, x: f64) {
        self.count += 1;
        let delta = x - self.mean;
        self.mean += delta / self.count as f64;
        self.m2 += delta * (x - self.mean);
    }

    fn std(&self) -> f64 {
        (self.m2 / self.count as f64).sqrt()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(n: &[&str]) -> Vec<String> {
        n.iter().map(|s| s.to_string()).collect()
    }

    fn csv(text: &str) -> tempfile::NamedTempFile {
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), text).unwrap();
        file
    }

    #[test]
    fn by_header_name_in_the_models_order_with_other_columns_ignored() {
        let file = csv("id, b, a\nx, 2, 1\ny, 4, 3\nz, 6, 5\n");
        let (baseline, rows) = from_csv(file.path(), &names(&["a", "b"]), 2).unwrap();
        assert_eq!(baseline.sample_size, 3);
        assert_eq!(baseline.mean, vec![3.0, 4.0]);
        // Population std of {1,3,5} and {2,4,6}: sqrt(8/3).
        let std = (8.0f64 / 3.0).sqrt();
        assert!(
            baseline.std.iter().all(|s| (s - std).abs() < 1e-12),
            "{baseline:?}"
        );
        assert_eq!(rows, vec![vec![1.0, 2.0], vec![3.0, 4.0]]);
    }

    #[test]
    fn without_a_header_rows_are_in_the_models_order() {
        let file = csv("1,10\n3,10\n");
        let (baseline, _) = from_csv(file.path(), &names(&["a", "b"]), 0).unwrap();
        assert_eq!(
            (baseline.mean.clone(), baseline.std.clone()),
            (vec![2.0, 10.0], vec![1.0, 0.0])
        );
    }

    #[test]
    fn bad_files_name_the_line_and_the_problem() {
        let cases = [
            ("", "no rows"),
            ("a,b\n", "a header and no rows"),
            ("a,c\n1,2\n", "no column \"b\""),
            ("a,b\n1,2\n3,x\n", "line 3, b: \"x\" is not a finite number"),
            ("1,2\n3\n", "line 2: not CSV"),
            ("1,2,3\n", "line 1: 3 values, the model takes 2 features"),
            ("a,b\n1,inf\n", "line 2, b: \"inf\" is not a finite number"),
        ];
        for (text, expected) in cases {
            let file = csv(text);
            let e = format!(
                "{:#}",
                from_csv(file.path(), &names(&["a", "b"]), 0).unwrap_err()
            );
            assert!(e.contains(expected), "{text:?}: {e}");
        }
    }
}
