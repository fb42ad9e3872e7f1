//! `edgescore models add FILE.onnx --name NAME --features a,b,c [--version N] [--baseline
//! DATA.csv] [--models-dir DIR]`: writes `DIR/NAME/N/{model.onnx, manifest.json,
//! reference.json}` for a model the component loads, then reads the folder back as the hosts will.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::Args;
use edgescore_registry::{Baseline, Manifest, Registry};
use edgescore_runtime::Scorer;

use super::baseline;
use crate::args::RuntimeArgs;

#[derive(Debug, Args)]
pub struct AddArgs {
    /// The ONNX file: one f32 input [N, features], one f32 output [N] or [N, 1]
    file: PathBuf,
    /// The model's name in the registry (letters, digits, `-`, `_`)
    #[arg(long)]
    name: String,
    /// The input's feature names, in input order, comma-separated
    #[arg(long, value_delimiter = ',', required = true)]
    features: Vec<String>,
    /// The registry version [default: one above the highest of NAME]
    #[arg(long)]
    version: Option<u32>,
    /// Representative rows (CSV) to compute each feature's mean and std from, for drift
    /// detection [default: no baseline, drift detection off for this model]
    #[arg(long)]
    baseline: Option<PathBuf>,
    /// The registry folder
    #[arg(long, env = "EDGESCORE_MODELS_DIR", default_value = "models")]
    models_dir: PathBuf,
    #[command(flatten)]
    runtime: RuntimeArgs,
}

/// Rows scored into `reference.json`: fixed ones, then up to this many of the baseline's.
const REFERENCE_DATA_ROWS: usize = 8;

pub fn run(args: AddArgs) -> Result<()> {
    check_name(&args.name)?;
    check_features(&args.features)?;
    let file = args.file.display().to_string();
    let onnx = std::fs::read(&args.file).with_context(|| format!("{file}: cannot be read"))?;

    // The component is the judge of what can be served: load it there.
    let runtime = args.runtime.runtime()?;
    let mut scorer = Scorer::new(&runtime, &onnx)
        .with_context(|| format!("{file}: the component cannot serve this model"))?;
    let info = scorer.info().clone();
    if info.input_width as usize != args.features.len() {
        bail!(
            "{file}: the model takes {} features, --features names {} ({})",
            info.input_width,
            args.features.len(),
            args.features.join(", ")
        );
    }

    let (baseline, data_rows) = match &args.baseline {
        Some(csv) => baseline::from_csv(csv, &args.features, REFERENCE_DATA_ROWS)?,
        None => (
            Baseline {
                sample_size: 0,
                mean: Vec::new(),
                std: Vec::new(),
            },
            Vec::new(),
        ),
    };
    let inputs = reference_inputs(args.features.len(), data_rows);
    let flat: Vec<f32> = inputs.iter().flatten().copied().collect();
    let outputs = scorer
        .score(&flat)
        .with_context(|| format!("{file}: scoring the reference rows failed"))?;

    let version = match args.version {
        Some(v) => v,
        None => next_version(&args.models_dir, &args.name)?,
    };
    let folder = args.models_dir.join(&args.name).join(version.to_string());
    if folder.exists() {
        bail!(
            "{}: already exists; choose another --version",
            folder.display()
        );
    }
    let manifest = Manifest {
        name: args.name.clone(),
        version,
        description: format!("added by `edgescore models add` from {file}"),
        input_width: info.input_width,
        feature_names: args.features.clone(),
        input_name: info.input_name.clone(),
        output_name: info.output_name.clone(),
        sha256: info.sha256.clone(),
        baseline,
    };
    let reference = serde_json::json!({
        "note": "outputs of the edgescore scoring component for these inputs (float32), written by `edgescore models add`",
        "inputs": inputs,
        "outputs": outputs,
    });
    write_version(&folder, &onnx, &manifest, &reference)?;
    check_servable(&args.models_dir, &manifest)?;
    print_summary(&folder, &manifest, inputs.len(), &args.models_dir);
    Ok(())
}

fn check_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !ok {
        bail!("--name: {name:?} must be 1 to 64 letters, digits, '-' or '_'");
    }
    Ok(())
}

fn check_features(features: &[String]) -> Result<()> {
    if let Some(empty) = features.iter().position(|f| f.trim().is_empty()) {
        bail!("--features: name {} is empty", empty + 1);
    }
    for (i, feature) in features.iter().enumerate() {
        if features[..i].contains(feature) {
            bail!("--features: {feature:?} is named twice");
        }
    }
    Ok(())
}

/// One above the highest version of `name` in the folder (1 for a new name).
fn next_version(models_dir: &Path, name: &str) -> Result<u32> {
    let dir = models_dir.join(name);
    if !dir.exists() {
        return Ok(1);
    }
    let highest = std::fs::read_dir(&dir)
        .with_context(|| format!("{}: cannot be read", dir.display()))?
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .max();
    Ok(highest.map_or(1, |v| v + 1))
}

/// Zeros, ones, minus ones and a fixed spread, then the first rows of the baseline data.
fn reference_inputs(width: usize, data_rows: Vec<Vec<f32>>) -> Vec<Vec<f32>> {
    let mut rows = vec![vec![0.0; width], vec![1.0; width], vec![-1.0; width]];
    rows.push((0..width).map(|i| (i as f32 + 1.0) / 10.0).collect());
    rows.extend(data_rows);
    rows
}

/// The three files, written to a temporary folder beside the target and renamed into place,
/// so that a registry scan never sees a half-written version.
fn write_version(
    folder: &Path,
    onnx: &[u8],
    manifest: &Manifest,
    reference: &serde_json::Value,
) -> Result<()> {
    let parent = folder.parent().expect("NAME/VERSION has a parent");
    std::fs::create_dir_all(parent)
        .with_context(|| format!("{}: cannot be created", parent.display()))?;
    let staging = parent.join(format!(".adding-{}", manifest.version));
    let _ = std::fs::remove_dir_all(&staging);
    std::fs::create_dir(&staging)
        .with_context(|| format!("{}: cannot be created", staging.display()))?;
    std::fs::write(staging.join("model.onnx"), onnx)?;
    std::fs::write(staging.join("manifest.json"), pretty_json(manifest))?;
    std::fs::write(staging.join("reference.json"), pretty_json(reference))?;
    std::fs::rename(&staging, folder)
        .with_context(|| format!("{}: cannot be created", folder.display()))
}

/// Pretty JSON with a final newline, as the committed files are.
fn pretty_json(value: &impl serde::Serialize) -> String {
    let mut text = serde_json::to_string_pretty(value).expect("serializable");
    text.push('\n');
    text
}

/// Reads the registry back as `serve --models-dir` will, and finds the new version in it.
fn check_servable(models_dir: &Path, manifest: &Manifest) -> Result<()> {
    let registry = Registry::scan(models_dir)?;
    registry
        .select(Some(&manifest.name), Some(manifest.version))
        .map(|_| ())
        .with_context(|| {
            format!(
                "the registry at {} does not serve the new version",
                models_dir.display()
            )
        })
}

fn print_summary(folder: &Path, manifest: &Manifest, reference_rows: usize, models_dir: &Path) {
    let dir = folder.display();
    println!("added {} v{} in {dir}:", manifest.name, manifest.version);
    println!(
        "  model.onnx     sha256 {}, input {:?} [N, {}] f32, output {:?}",
        manifest.sha256, manifest.input_name, manifest.input_width, manifest.output_name
    );
    println!(
        "  manifest.json  features {}",
        manifest.feature_names.join(", ")
    );
    let b = &manifest.baseline;
    if b.sample_size == 0 {
        println!(
            "                 no baseline: drift detection is off for this model (add one with --baseline DATA.csv)"
        );
    } else {
        let stats: Vec<String> = manifest
            .feature_names
            .iter()
            .zip(b.mean.iter().zip(&b.std))
            .map(|(f, (m, s))| format!("{f} μ={m:.6} σ={s:.6}"))
            .collect();
        println!(
            "                 baseline of {} rows: {}",
            b.sample_size,
            stats.join(", ")
        );
    }
    println!("  reference.json the component's outputs for {reference_rows} rows");
    println!(
        "serve it: edgescore serve --models-dir {} (a running one: POST /models/reload)",
        models_dir.display()
    );
}
