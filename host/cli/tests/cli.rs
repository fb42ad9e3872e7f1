//! The `edgescore` binary as a user runs it.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use edgescore_engine::{Engine, Model};
use edgescore_registry::Registry;
use edgescore_types::EngineConfig;

#[path = "../src/input.rs"]
#[allow(dead_code)]
mod input;
use input::read_event_batches;
use serde_json::Value;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn edgescore(args: &[&str], stdin: &str) -> Output {
    // The first run compiles the component into the cache; let one test do it while the others
    // wait, instead of every test compiling it at once.
    static WARM: std::sync::Once = std::sync::Once::new();
    WARM.call_once(|| {
        let out = Command::new(env!("CARGO_BIN_EXE_edgescore"))
            .arg("inspect")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    });
    let mut child = Command::new(env!("CARGO_BIN_EXE_edgescore"))
        .args(args)
        .current_dir(root())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn stdout(out: &Output) -> String {
    assert!(
        out.status.success(),
        "failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).unwrap()
}

fn native_default_model() -> Model {
    Model::load(&Registry::embedded().select(None, None).unwrap().onnx).unwrap()
}

#[test]
fn every_subcommand_has_help() {
    for sub in ["score", "replay", "inspect", "bench"] {
        let text = stdout(&edgescore(&[sub, "--help"], ""));
        assert!(text.contains("Usage: edgescore"), "{sub}: {text}");
        assert!(
            text.contains("--model-version"),
            "{sub} takes the registry options"
        );
    }
}

/// Completion scripts for bash, zsh and fish name every subcommand; bash's parses (`bash -n`);
/// an unknown shell is one line and a non-zero exit.
#[test]
fn completions_cover_every_subcommand() {
    let subcommands = [
        "serve",
        "serve-app",
        "score",
        "replay",
        "loadgen",
        "completions",
    ];
    for (shell, marker) in [
        ("bash", "_edgescore()"),
        ("zsh", "#compdef edgescore"),
        ("fish", "complete -c edgescore"),
    ] {
        let script = stdout(&edgescore(&["completions", shell], ""));
        assert!(script.contains(marker), "{shell}: {script}");
        for sub in subcommands {
            assert!(script.contains(sub), "{shell}: no {sub}");
        }
        if shell == "bash" {
            let mut check = Command::new("bash")
                .arg("-n")
                .stdin(Stdio::piped())
                .spawn()
                .unwrap();
            check
                .stdin
                .take()
                .unwrap()
                .write_all(script.as_bytes())
                .unwrap();
            assert!(
                check.wait().unwrap().success(),
                "bash -n refused the script"
            );
        }
    }
    let out = edgescore(&["completions", "tcsh"], "");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("invalid value 'tcsh'"), "{err}");
}

#[test]
fn score_reads_rows_and_events_and_writes_one_score_per_line() {
    let input =
        "[0.1, 0.2, 0.3]\n\n{\"user_id\": \"u-1\", \"features\": [1, 2, 3]}\n[0.5, 0.5, 0.5]\n";
    let text = stdout(&edgescore(&["score", "--batch-size", "2"], input));
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[1]["user_id"], "u-1");
    let want = native_default_model()
        .score(&[0.1, 0.2, 0.3, 1.0, 2.0, 3.0, 0.5, 0.5, 0.5])
        .unwrap();
    for (line, want) in lines.iter().zip(want) {
        let got = line["score"].as_f64().unwrap();
        assert!((got - want as f64).abs() < 1e-5, "{got} vs {want}");
    }
    // Another registry version scores differently.
    let v1 = stdout(&edgescore(
        &["score", "--model-version", "1"],
        "[0.1, 0.2, 0.3]\n",
    ));
    assert_ne!(v1.lines().next(), text.lines().next());
}

#[test]
fn bad_input_is_one_line_and_a_non_zero_exit() {
    for (args, input, expected) in [
        (
            &["score"][..],
            "[0.1, 0.2, 0.3]\n[1, 2]\n",
            "edgescore: line 2: features: expected 3 values, got 2",
        ),
        (
            &["score"][..],
            "hello\n",
            "edgescore: line 1: expected a JSON array of numbers",
        ),
        (
            &["score", "--model-version", "7"][..],
            "",
            "edgescore: model \"seed-mlp\" has no version 7",
        ),
        (
            &["replay", "no/such/file.jsonl"][..],
            "",
            "edgescore: reading no/such/file.jsonl",
        ),
        (
            &[
                "replay",
                "host/cli/samples/events.jsonl",
                "--window-seconds",
                "0",
            ][..],
            "",
            "edgescore: window_seconds",
        ),
    ] {
        let out = edgescore(args, input);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let err = String::from_utf8(out.stderr).unwrap();
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(err.starts_with(expected), "{args:?}: {err}");
    }
}

#[test]
fn replay_matches_the_native_engine_on_the_sample() {
    let now = "1700001000";
    let out = edgescore(
        &[
            "replay",
            "host/cli/samples/events.jsonl",
            "--json",
            "--now",
            now,
        ],
        "",
    );
    let doc: Value = serde_json::from_str(&stdout(&out)).unwrap();

    let text = std::fs::read_to_string(root().join("host/cli/samples/events.jsonl")).unwrap();
    let mut engine = Engine::new(EngineConfig::default(), native_default_model()).unwrap();
    for batch in read_event_batches(&text).unwrap() {
        engine.ingest(&batch, now.parse().unwrap()).unwrap();
    }
    let stats = engine.stats();
    assert_eq!(doc["stats"]["events_accepted"], stats.events_accepted);
    assert_eq!(doc["stats"]["events_in_windows"], stats.events_in_windows);
    assert_eq!(doc["stats"]["rejected_by_reason"]["late"], 1);
    assert_eq!(doc["stats"]["rejected_by_reason"]["wrong_width"], 1);
    let users = doc["users"].as_array().unwrap();
    assert_eq!(users.len(), 40);
    for user in users {
        let want = engine.median(user["user_id"].as_str().unwrap());
        assert_eq!(user["count"], want.count);
        let got = user["median"].as_f64().unwrap();
        assert!((got - want.median.unwrap()).abs() < 1e-5, "{user}");
    }
    assert_eq!(doc["rejected"][0]["index"], 1500);
}

#[test]
fn inspect_prints_the_exported_wit_and_the_registry() {
    let text = stdout(&edgescore(&["inspect"], ""));
    // A page, not the component's bytes.
    assert!(text.len() < 20_000, "{} bytes printed", text.len());
    for needle in [
        "component: embedded in this binary",
        "import wasi:random/random@0.2.0;",
        "export edgescore:scoring/scorer@0.1.0;",
        "export edgescore:scoring/engine@0.1.0;",
        "resource engine",
        "* seed-mlp v2",
        "input  \"features\" [N, 3] f32",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
    }
    // ... and that is its only import (tests/tests/sandbox.rs).
    assert_eq!(text.matches("  import ").count(), 1, "{text}");
}

#[test]
fn bench_prints_a_row_per_batch_size() {
    let text = stdout(&edgescore(
        &["bench", "--batches", "1,10", "--seconds", "0.05"],
        "",
    ));
    let rows: Vec<&str> = text
        .lines()
        .filter(|l| l.trim_start().starts_with(char::is_numeric))
        .collect();
    assert_eq!(rows.len(), 2, "{text}");
    for row in rows {
        let ratio: f64 = row.split_whitespace().last().unwrap().parse().unwrap();
        assert!(ratio > 0.0, "{row}");
    }
}
