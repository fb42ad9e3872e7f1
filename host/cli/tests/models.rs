//! `edgescore models add`: a user's ONNX file into a registry folder, checked by the component,
//! with its sha256, baseline and reference outputs; served after a hot reload. Bad files get one
//! line and exit status 1.

mod support;

use std::path::{Path, PathBuf};
use std::process::Output;

use serde_json::Value;
use support::{Served, edgescore};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn seed_onnx() -> PathBuf {
    repo_root().join("models/seed-mlp/2/model.onnx")
}

fn add(models_dir: &Path, file: &Path, extra: &[&str]) -> Output {
    edgescore()
        .args(["models", "add"])
        .arg(file)
        .arg("--models-dir")
        .arg(models_dir)
        .args(extra)
        .output()
        .unwrap()
}

fn json(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-5 * a.abs().max(1.0)
}

/// Rows of a CSV with a header in another order than the model's, and an extra column.
fn baseline_csv(dir: &Path) -> (PathBuf, Vec<[f64; 3]>) {
    let rows: Vec<[f64; 3]> = (0..200)
        .map(|i| {
            let i = f64::from(i);
            [
                (i * 0.37) % 1.0,
                (i * 0.11) % 0.5 - 0.25,
                2.0 + (i * 0.07) % 3.0,
            ]
        })
        .collect();
    let mut text = String::from("user,feature_c,feature_a,feature_b\n");
    for (i, [a, b, c]) in rows.iter().enumerate() {
        text.push_str(&format!("u{i},{c},{a},{b}\n"));
    }
    let path = dir.join("traffic.csv");
    std::fs::write(&path, text).unwrap();
    (path, rows)
}

#[test]
fn add_writes_a_checked_version_that_a_running_service_reloads() {
    let dir = tempfile::tempdir().unwrap();
    let models = dir.path().join("models");
    let seed = models.join("seed-mlp/2");
    std::fs::create_dir_all(&seed).unwrap();
    for file in ["model.onnx", "manifest.json"] {
        std::fs::copy(
            repo_root().join("models/seed-mlp/2").join(file),
            seed.join(file),
        )
        .unwrap();
    }
    let served = Served::start(&[("EDGESCORE_MODELS_DIR", models.to_str().unwrap())]);

    let (csv, rows) = baseline_csv(dir.path());
    let out = add(
        &models,
        &seed_onnx(),
        &[
            "--name",
            "seed-mlp",
            "--features",
            "feature_a,feature_b,feature_c",
            "--baseline",
            csv.to_str().unwrap(),
        ],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.starts_with("added seed-mlp v3 in "), "{stdout}");
    assert!(stdout.contains("baseline of 200 rows"), "{stdout}");

    let v3 = models.join("seed-mlp/3");
    let onnx = std::fs::read(seed_onnx()).unwrap();
    assert_eq!(std::fs::read(v3.join("model.onnx")).unwrap(), onnx);
    let manifest = json(&v3.join("manifest.json"));
    let committed = json(&seed.join("manifest.json"));
    for field in [
        "sha256",
        "input_width",
        "feature_names",
        "input_name",
        "output_name",
    ] {
        assert_eq!(manifest[field], committed[field], "{field}");
    }
    assert_eq!(manifest["version"], 3);
    // The baseline, against a plain two-pass computation over the same rows.
    let n = rows.len() as f64;
    for k in 0..3 {
        let mean = rows.iter().map(|r| r[k]).sum::<f64>() / n;
        let std = (rows.iter().map(|r| (r[k] - mean).powi(2)).sum::<f64>() / n).sqrt();
        assert!(
            close(manifest["baseline"]["mean"][k].as_f64().unwrap(), mean),
            "{manifest}"
        );
        assert!(
            close(manifest["baseline"]["std"][k].as_f64().unwrap(), std),
            "{manifest}"
        );
    }
    assert_eq!(manifest["baseline"]["sample_size"], 200);
    // Reference outputs: the component's, which agree with onnx's reference evaluator where the
    // committed reference has the same inputs (zeros, ones, minus ones).
    let reference = json(&v3.join("reference.json"));
    let onnx_reference = json(&repo_root().join("models/seed-mlp/2/reference.json"));
    assert_eq!(reference["inputs"].as_array().unwrap().len(), 4 + 8);
    assert_eq!(reference["inputs"][4][0].as_f64(), Some(rows[0][0]));
    for i in 0..3 {
        assert_eq!(reference["inputs"][i], onnx_reference["inputs"][i]);
        let (ours, theirs) = (&reference["outputs"][i], &onnx_reference["outputs"][i]);
        let theirs = theirs.as_f64().or_else(|| theirs[0].as_f64()).unwrap();
        assert!(close(ours.as_f64().unwrap(), theirs), "{ours} vs {theirs}");
    }

    // Hot reload: the running service switches to v3, with v3's baseline for drift.
    let (status, _, reload) = served.post("/models/reload", "");
    assert_eq!(status, 200, "{reload}");
    assert_eq!(reload["active"]["version"], 3, "{reload}");
    let (_, drift) = served.get("/drift");
    assert_eq!(drift["model_version"], "3");
    assert!(close(
        drift["features"][2]["baseline_mean"].as_f64().unwrap(),
        manifest["baseline"]["mean"][2].as_f64().unwrap()
    ));
}

#[test]
fn add_without_data_says_there_is_no_baseline() {
    let dir = tempfile::tempdir().unwrap();
    let out = add(
        dir.path(),
        &seed_onnx(),
        &["--name", "mine", "--features", "a,b,c", "--version", "7"],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("no baseline: drift detection is off"),
        "{stdout}"
    );
    let manifest = json(&dir.path().join("mine/7/manifest.json"));
    assert_eq!(manifest["baseline"]["sample_size"], 0);
    assert_eq!(
        manifest["feature_names"],
        serde_json::json!(["a", "b", "c"])
    );
}

#[test]
fn bad_models_and_arguments_get_one_line_and_status_1() {
    let dir = tempfile::tempdir().unwrap();
    let not_onnx = dir.path().join("notes.onnx");
    std::fs::write(&not_onnx, "not a model").unwrap();
    let bad_csv = dir.path().join("bad.csv");
    std::fs::write(&bad_csv, "a,b,c\n1,2,3\n4,five,6\n").unwrap();
    let rank3 = repo_root().join("tests/fixtures/rank3.onnx");
    let missing = dir.path().join("missing.onnx");
    let abc = ["--features", "a,b,c"];
    let seed = seed_onnx();
    let cases: Vec<(&Path, Vec<&str>, &str)> = vec![
        (
            &not_onnx,
            vec!["--name", "x"],
            "the component cannot serve this model",
        ),
        (
            &rank3,
            vec!["--name", "x"],
            "the component cannot serve this model",
        ),
        (&missing, vec!["--name", "x"], "cannot be read"),
        (
            &seed,
            vec!["--name", "x", "--features", "a,b"],
            "the model takes 3 features, --features names 2",
        ),
        (&seed, vec!["--name", "no/slash"], "--name"),
        (
            &seed,
            vec!["--name", "x", "--features", "a,a,b"],
            "\"a\" is named twice",
        ),
        (
            &seed,
            vec!["--name", "x", "--baseline", bad_csv.to_str().unwrap()],
            "line 3, b: \"five\" is not a finite number",
        ),
    ];
    for (file, mut args, expected) in cases {
        if !args.contains(&"--features") {
            args.extend(abc);
        }
        let out = add(dir.path(), file, &args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
        assert!(
            stderr.starts_with("edgescore: ") && stderr.contains(expected),
            "{args:?}: {stderr}"
        );
    }
    // Nothing was written by the failures; a second add of one version is refused.
    assert!(std::fs::read_dir(dir.path().join("x")).is_err());
    let ok = ["--name", "x", "--features", "a,b,c", "--version", "1"];
    assert!(add(dir.path(), &seed_onnx(), &ok).status.success());
    let again = add(dir.path(), &seed_onnx(), &ok);
    assert_eq!(again.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("already exists; choose another --version")
    );
}
