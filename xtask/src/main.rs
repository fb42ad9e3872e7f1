//! `cargo xtask`: the project's two entry points, so that a fresh machine needs nothing but Rust
//! and Python 3.
//!
//! - `cargo xtask run [ARGS...]`: builds the component and the release host, then runs the main
//!   job (`edgescore ARGS`, by default `edgescore serve`: the HTTP service on port 8000). Unless
//!   the job is `serve-app` or `bench-app`, the host is built without the Spin app (its
//!   `spin-app` feature), which a first run then does not compile.
//! - `cargo xtask test`: installs what the tests need (the two wasm32 targets, a Python venv
//!   with models/ and tests/requirements.txt, Node.js, redis-server, Chromium and promtool where
//!   they are missing, playwright-core), builds the component, then fmt, clippy and every test,
//!   including the jco test in Node.js and the Python host's tests on its wheel.
//! - `cargo xtask build`: the components (scoring, pre-initialized by `edgescore-preinit`; the
//!   Spin app; the two composed) and the release host only.
//! - `cargo xtask components`: the components only (what `spin build` runs).
//! - `cargo xtask bench`, `bench-http`, `bench-durable`, `bench-scaleout`, `bench-app-stores`:
//!   builds what the benchmark measures and runs the `edgescore` subcommand of that name (see
//!   `bench.rs`).
//! - `cargo xtask fuzz [--secs N] [TARGET...]`: the fuzz targets of `tests/fuzz` (see `fuzz.rs`).
//! - `cargo xtask wheel`: the Python host as a wheel in `target/wheels` (see `wheel.rs`); `test`
//!   installs it in a fresh venv and runs its pytest suite.

mod bench;
mod compose;
mod fuzz;
mod host_dependencies;
mod preinit;
mod prerequisites;
mod wheel;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use prerequisites::{CHROMIUM, NODE, NPM, PROMTOOL, REDIS_SERVER, ensure_system_tools};

/// The Spin app's target, and where the components that ship are written.
const WASM_TARGET: &str = "wasm32-wasip2";
/// The scoring component's: Rust's std without WASI, so that the component imports nothing but
/// `wasi:random/random` (see `components/scoring/src/random.rs`). `edgescore-preinit` makes a
/// component of the core module it builds.
const SCORING_TARGET: &str = "wasm32-unknown-unknown";
/// The two components, for cargo: each with its target.
const COMPONENTS: [[&str; 4]; 2] = [
    ["--package", "edgescore-scoring", "--target", SCORING_TARGET],
    ["--package", "edgescore-http", "--target", WASM_TARGET],
];
/// Tests and clippy cover `edgescore bench`'s native column too.
const NATIVE_TRACT: &str = "edgescore/native-tract";

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("run") => run(&args[1..]),
        Some("test") => test(),
        Some("build") => build(Host::Whole),
        Some("components") => build_component(),
        Some(
            name @ ("bench" | "bench-http" | "bench-durable" | "bench-scaleout"
            | "bench-app-stores"),
        ) => bench::run(name, &args[1..]),
        Some("fuzz") => fuzz::run(&args[1..]),
        Some("wheel") => build_component().and_then(|()| wheel::build().map(drop)),
        _ => {
            eprintln!(
                "usage: cargo xtask run [edgescore args...] | test | build | components | bench [edgescore bench args...] | bench-http [seconds] | bench-durable [seconds] | bench-scaleout [seconds] | bench-app-stores [seconds] | fuzz [--secs N] [target...] | wheel"
            );
            std::process::exit(2);
        }
    };
    if let Err(e) = result {
        eprintln!("xtask: {e:#}");
        std::process::exit(1);
    }
}

pub(crate) fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

pub(crate) fn cargo() -> Command {
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.current_dir(root());
    cmd
}

pub(crate) fn step(what: &str, cmd: &mut Command) -> Result<()> {
    eprintln!("xtask: {what}");
    let start = Instant::now();
    let status = cmd.status().with_context(|| format!("starting {cmd:?}"))?;
    if !status.success() {
        bail!("{what} failed ({status})");
    }
    eprintln!(
        "xtask: {what}: done in {:.0} s",
        start.elapsed().as_secs_f64()
    );
    Ok(())
}

fn component_path() -> PathBuf {
    root()
        .join("target")
        .join(WASM_TARGET)
        .join("component/edgescore_scoring.wasm")
}

/// The components build in a target folder of their own, so that the host's dependencies can
/// build in `target/` at the same time (one cargo process locks its target folder).
fn component_target_dir() -> PathBuf {
    root().join("target/components")
}

/// Writes `bytes` to `path` unless it already holds them: the host's build scripts embed the
/// components and rebuild whatever depends on them when the file's time changes.
pub(crate) fn write_if_changed(path: &Path, bytes: &[u8]) -> Result<()> {
    if std::fs::read(path).is_ok_and(|old| old == bytes) {
        return Ok(());
    }
    std::fs::write(path, bytes).with_context(|| format!("writing {}", path.display()))
}

fn ensure_wasm_target() -> Result<()> {
    let installed = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output();
    let Ok(installed) = installed else {
        eprintln!(
            "xtask: rustup not found; assuming the {WASM_TARGET} and {SCORING_TARGET} targets are installed"
        );
        return Ok(());
    };
    let installed = String::from_utf8_lossy(&installed.stdout);
    for target in [WASM_TARGET, SCORING_TARGET] {
        if !installed.lines().any(|l| l.trim() == target) {
            step(
                &format!("adding the {target} target"),
                Command::new("rustup").args(["target", "add", target]),
            )?;
        }
    }
    Ok(())
}

/// rustfmt and clippy come with rustup's default profile, but not with its minimal one.
fn ensure_lint_tools() -> Result<()> {
    for (tool, component) in [("fmt", "rustfmt"), ("clippy", "clippy")] {
        let present = cargo()
            .args([tool, "--version"])
            .output()
            .is_ok_and(|o| o.status.success());
        if !present {
            step(
                &format!("adding the {component} component"),
                Command::new("rustup").args(["component", "add", component]),
            )?;
        }
    }
    Ok(())
}

/// What a build makes: the whole host, or what the native service needs (`cargo xtask run`'s
/// jobs but `serve-app` and `bench-app`): then neither the Spin app nor its harness are built
/// (docs/building.md, "Features of the binary").
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Host {
    Whole,
    NativeService,
}

impl Host {
    /// The host's cargo features, as arguments of a build that names it.
    pub(crate) fn features(self) -> &'static [&'static str] {
        match self {
            Host::Whole => &[],
            Host::NativeService => &["--no-default-features"],
        }
    }

    /// The components it embeds: the scoring component, and for the whole host the Spin app.
    fn components(self) -> &'static [[&'static str; 4]] {
        match self {
            Host::Whole => &COMPONENTS,
            Host::NativeService => &COMPONENTS[..1],
        }
    }
}

/// The components, pre-initialized and composed (see `compile_components` and `ship_components`).
pub(crate) fn build_component() -> Result<()> {
    build_components(Host::Whole)
}

fn build_components(host: Host) -> Result<()> {
    ensure_wasm_target()?;
    let preinit_tool = preinit::start(host)?;
    compile_components(host)?;
    ship_components(host, preinit_tool)
}

fn compile_components(host: Host) -> Result<()> {
    for (what, component) in ["the scoring component", "the Spin app"]
        .into_iter()
        .zip(host.components())
    {
        step(
            &format!("building {what} ({})", component[3]),
            cargo()
                .arg("build")
                .args(component)
                .args(["--profile", "component", "--target-dir"])
                .arg(component_target_dir()),
        )?;
    }
    Ok(())
}

/// Writes what ships, and what every test and host uses: the pre-initialized scoring component,
/// and for the whole host the Spin app and the two composed.
fn ship_components(host: Host, preinit_tool: preinit::Tool) -> Result<()> {
    let built = |target: &str| component_target_dir().join(target).join("component");
    std::fs::create_dir_all(component_path().with_file_name(""))?;
    preinit::preinitialize(
        preinit_tool,
        &built(SCORING_TARGET).join("edgescore_scoring.wasm"),
        &component_path(),
    )?;
    let size = std::fs::metadata(component_path())?.len();
    eprintln!(
        "xtask: component {} ({:.1} MiB)",
        component_path().display(),
        size as f64 / (1 << 20) as f64
    );
    if host == Host::NativeService {
        return Ok(());
    }
    write_if_changed(
        &component_path().with_file_name("edgescore_http.wasm"),
        &std::fs::read(built(WASM_TARGET).join("edgescore_http.wasm"))?,
    )?;
    let dir = component_path().with_file_name("");
    compose::compose(
        &component_path(),
        &dir.join("edgescore_http.wasm"),
        &dir.join("edgescore_app.wasm"),
    )
}

/// The components, then the release host. The first time (no component built yet), the host's
/// dependencies, the pre-initialization tool among them, compile while the components do (see
/// `host_dependencies.rs`); the tool's own build waits for them, since two cargo processes in
/// one target folder would both compile, on the same two cores.
fn build(host: Host) -> Result<()> {
    ensure_wasm_target()?;
    if component_path().exists() {
        build_components(host)?;
    } else {
        let dependencies = host_dependencies::start(host)?;
        compile_components(host)?;
        dependencies.finish();
        ship_components(host, preinit::start(host)?)?;
    }
    build_host_release(host)
}

pub(crate) fn build_host_release(host: Host) -> Result<()> {
    step(
        "building the host (release)",
        host_env(
            cargo()
                .args(["build", "--release", "--package", "edgescore"])
                .args(host.features()),
        ),
    )?;
    // The first start would compile the component to machine code (10-20 s): do it now, into
    // the cache `run` uses.
    step(
        "compiling the component ahead of time (edgescore precompile)",
        host_env(&mut Command::new(root().join("target/release/edgescore"))).arg("precompile"),
    )
}

/// Points the host's build at the component just built and keeps compiled artifacts in target/.
pub(crate) fn host_env(cmd: &mut Command) -> &mut Command {
    cmd.env("EDGESCORE_COMPONENT_WASM", component_path())
        .env("EDGESCORE_CACHE_DIR", root().join("target/cwasm-cache"))
}

fn run(args: &[String]) -> Result<()> {
    let needs_the_app = args
        .first()
        .is_some_and(|job| job == "serve-app" || job == "bench-app");
    build(if needs_the_app {
        Host::Whole
    } else {
        Host::NativeService
    })?;
    let default_job = ["serve".to_string()];
    let args = if args.is_empty() {
        &default_job[..]
    } else {
        args
    };
    let status = host_env(&mut Command::new(root().join("target/release/edgescore")))
        .current_dir(root())
        .args(args)
        .status()?;
    std::process::exit(status.code().unwrap_or(1));
}

/// `npm ci` in a folder of `tests/` (its pinned package-lock.json).
fn npm_ci(folder: &str, what: &str) -> Result<()> {
    step(
        &format!("installing {what} (npm ci in tests/{folder})"),
        Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
            .current_dir(root().join("tests").join(folder)),
    )
}

/// The component transpiled with jco and driven from Node.js (`tests/jco/`).
fn jco_test() -> Result<()> {
    let dir = root().join("tests/jco");
    npm_ci("jco", "jco")?;
    step(
        "transpiling the component with jco",
        Command::new("npx")
            .args(["jco", "transpile", "-q", "-o", "out"])
            .arg(component_path())
            .current_dir(&dir),
    )?;
    step(
        "jco test (Node.js)",
        Command::new("node")
            .args(["test.mjs", "out"])
            .arg(root())
            .current_dir(&dir),
    )
}

fn test() -> Result<()> {
    let start = Instant::now();
    let python = python_env()?;
    ensure_system_tools(&[NODE, NPM, REDIS_SERVER, CHROMIUM, PROMTOOL])?;
    prerequisites::spin_for_tests()?;
    ensure_lint_tools()?;
    npm_ci("browser", "playwright-core")?;
    build_component()?;
    step(
        "checking formatting",
        cargo().args(["fmt", "--all", "--", "--check"]),
    )?;
    step(
        "clippy",
        host_env(cargo().args([
            "clippy",
            "--all-targets",
            "--features",
            NATIVE_TRACT,
            "--",
            "-D",
            "warnings",
        ])),
    )?;
    // The host `cargo xtask run` builds to serve: without the Spin app.
    step(
        "clippy (edgescore without the spin-app feature)",
        host_env(cargo().args(["clippy", "--package", "edgescore"]))
            .args(Host::NativeService.features())
            .args(["--", "-D", "warnings"]),
    )?;
    for component in COMPONENTS {
        step(
            &format!(
                "clippy ({} {}, {})",
                component[0], component[1], component[3]
            ),
            cargo()
                .arg("clippy")
                .args(component)
                .args(["--", "-D", "warnings"]),
        )?;
    }
    // The engine's wasm-only code (the component's matmul kernels, core/engine/src/kernel).
    step(
        &format!("clippy (edgescore-engine, {SCORING_TARGET})"),
        cargo()
            .args(["clippy", "--package", "edgescore-engine", "--target"])
            .args([SCORING_TARGET, "--", "-D", "warnings"]),
    )?;
    step(
        "tests",
        host_env(cargo().args(["test", "--features", NATIVE_TRACT]))
            .env("EDGESCORE_PYTHON", &python),
    )?;
    // The binary `cargo xtask run` serves with, as users run it.
    step(
        "tests (edgescore without the spin-app feature)",
        host_env(cargo().args(["test", "--package", "edgescore", "--test", "lean"]))
            .args(Host::NativeService.features()),
    )?;

    jco_test()?;
    wheel::test()?;
    eprintln!(
        "xtask: all checks passed in {:.0} s",
        start.elapsed().as_secs_f64()
    );
    Ok(())
}

/// A venv in target/pyenv with the pinned packages of the model generator
/// (models/requirements.txt) and of the tests (tests/requirements.txt), reinstalled only when
/// those files change.
fn python_env() -> Result<PathBuf> {
    let venv = root().join("target/pyenv");
    let python = venv.join("bin/python");
    let requirements = [
        root().join("models/requirements.txt"),
        root().join("tests/requirements.txt"),
    ];
    let mut wanted = String::new();
    for file in &requirements {
        wanted.push_str(&std::fs::read_to_string(file)?);
    }
    let stamp = venv.join("requirements.installed");
    if python.exists() && std::fs::read_to_string(&stamp).ok().as_deref() == Some(wanted.as_str()) {
        return Ok(python);
    }
    if !python.exists() {
        step(
            "creating a Python venv (target/pyenv)",
            Command::new("python3").args(["-m", "venv"]).arg(&venv),
        )?;
    }
    let mut install = Command::new(&python);
    install.args([
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
    ]);
    for file in &requirements {
        install.arg("-r").arg(file);
    }
    step(
        "installing models/ and tests/requirements.txt",
        &mut install,
    )?;
    std::fs::write(&stamp, wanted)?;
    Ok(python)
}
