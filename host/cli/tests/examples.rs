//! `examples/client.py` (Python, requests) against the real binary: what it prints is what the
//! API answers, and a refused request is one line and exit status 1.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use support::Served;

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The Python `cargo xtask test` prepares (target/pyenv, with tests/requirements.txt).
fn python() -> PathBuf {
    std::env::var_os("EDGESCORE_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("target/pyenv/bin/python"))
}

fn client(address: &str, token: Option<&str>) -> Output {
    let mut command = Command::new(python());
    command
        .arg(repo_root().join("examples/client.py"))
        .args(["--url", &format!("http://{address}")]);
    if let Some(token) = token {
        command.args(["--token", token]);
    }
    command.output().expect("running examples/client.py")
}

#[test]
fn the_python_client_ingests_reads_medians_and_predicts() {
    let served = Served::start(&[("EDGESCORE_API_TOKEN", "client-secret")]);
    let out = client(&served.address, Some("client-secret"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines[0],
        "model seed-mlp v2: features feature_a, feature_b, feature_c"
    );
    assert_eq!(lines[1], "ingest: processed 9, rejected 1");
    assert!(
        lines[2].starts_with("  event 9: wrong_width: features:"),
        "{stdout}"
    );

    // The medians and predictions printed are the API's own, read here with the token.
    let authorized = |path: &str| {
        let (status, body) = served.get_with(path, &[("authorization", "Bearer client-secret")]);
        assert_eq!(status, 200, "{body}");
        body
    };
    for (i, user) in ["client-0", "client-1", "client-2"].iter().enumerate() {
        let m = authorized(&format!("/users/{user}/median"));
        let expected = format!(
            "median {user}: {:.6} over {} events",
            m["median"].as_f64().unwrap(),
            m["count"]
        );
        assert_eq!(lines[3 + i], expected);
        assert_eq!(m["count"], 3);
    }
    assert!(lines[6].starts_with("predict (model 2): "), "{stdout}");
    let scores: Vec<f64> = lines[6]["predict (model 2): ".len()..]
        .split(", ")
        .map(|s| s.parse().unwrap())
        .collect();
    // The same two instances through onnx's reference evaluator (onnx.reference, float32, model
    // v2), to the scorers' tolerance.
    let expected = [-0.14573504, -0.13678238];
    assert_eq!(scores.len(), 2);
    for (got, want) in scores.iter().zip(expected) {
        assert!((got - want).abs() < 1e-5, "{scores:?}");
    }

    let refused = client(&served.address, None);
    assert_eq!(refused.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("client.py: GET ") && stderr.contains(": 401 authorization:"),
        "{stderr}"
    );
}
