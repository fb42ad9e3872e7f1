//! `GET /dashboard` in a real browser: Debian's Chromium, headless, driven by playwright-core
//! (`tests/browser/dashboard.mjs`, installed with Chromium by `cargo xtask test`) against the
//! real binary under load. What the page shows is checked against the API; the screenshot is
//! kept as an artifact in `target/test-artifacts/dashboard.png`.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use support::Served;

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

#[test]
fn the_dashboard_shows_live_throughput_in_headless_chromium() {
    let browser = repo_root().join("tests/browser");
    assert!(
        browser.join("node_modules/playwright-core").exists(),
        "playwright-core is missing: run the tests with `cargo xtask test` (npm ci in tests/browser, apt-get install chromium)"
    );
    let served = Served::start(&[("EDGESCORE_SHARDS", "2")]);
    let artifacts = repo_root().join("target/test-artifacts");
    std::fs::create_dir_all(&artifacts).unwrap();
    let screenshot = artifacts.join("dashboard.png");
    let _ = std::fs::remove_file(&screenshot);

    let out = Command::new("node")
        .arg("dashboard.mjs")
        .arg(format!("http://{}", served.address))
        .arg(&screenshot)
        .current_dir(&browser)
        .output()
        .expect("running node");
    assert!(
        out.status.success(),
        "the browser run failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let shown: Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();

    // Live, nothing fetched beyond the service, no script error.
    assert_eq!(shown["status"], "live", "{shown}");
    assert_eq!(shown["external"], serde_json::json!([]), "{shown}");
    assert_eq!(shown["page_errors"], serde_json::json!([]), "{shown}");
    // The throughput went above zero, and no more than what was sent in all.
    let throughput = shown["throughput"].as_f64().unwrap();
    let sent = shown["events_sent"].as_f64().unwrap();
    assert!(throughput > 0.0 && throughput <= sent, "{shown}");
    assert!(shown["plotted_points"].as_u64().unwrap() >= 3, "{shown}");
    assert!(shown["p99"].as_str().unwrap().ends_with(" ms"), "{shown}");

    // Everything else as the API says it.
    let (_, stats) = served.get("/stats");
    let model = &stats["model"];
    assert_eq!(
        shown["model"],
        format!("{} v{}", model["name"].as_str().unwrap(), model["version"]),
        "{shown}"
    );
    let shards = shown["shards"].as_array().unwrap();
    assert_eq!(shards.len() as u64, stats["shards"].as_u64().unwrap());
    assert!(shards.iter().all(|row| row[1] == "ready"), "{shown}");
    let rejections: Vec<(String, u64)> = shown["rejections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| {
            let n = row[1].as_str().unwrap().replace(',', "");
            (row[0].as_str().unwrap().to_string(), n.parse().unwrap())
        })
        .collect();
    assert_eq!(
        shown["rejected_at_once"],
        serde_json::json!(["late", "wrong_width"])
    );
    for (reason, n) in &rejections {
        assert_eq!(stats["rejections"][reason], *n, "{reason}: {shown}");
    }
    assert!(rejections.contains(&("late".into(), 1)), "{rejections:?}");
    assert!(
        rejections.contains(&("wrong_width".into(), 1)),
        "{rejections:?}"
    );
    let (_, drift) = served.get("/drift");
    let names: Vec<&Value> = shown["drift"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| &row[0])
        .collect();
    let expected: Vec<&Value> = drift["features"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| &f["feature"])
        .collect();
    assert_eq!(names, expected, "{shown}");
    let (_, median) = served.get("/users/dash-3/median");
    let text = format!(
        "dash-3: median {:.6} over {} events",
        median["median"].as_f64().unwrap(),
        median["count"]
    );
    assert_eq!(shown["median"], text, "{shown}");

    let png = std::fs::read(&screenshot).expect("a screenshot");
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n") && png.len() > 10_000);
}
