//! The arguments several subcommands share: which model, which window rules, which component and
//! what it may use.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Args;
use edgescore_registry::Registry;
use edgescore_runtime::{ComponentSource, GuestLimits, Runtime};
use edgescore_serve::ModelSet;

/// Which model to use.
#[derive(Debug, Clone, Args)]
pub struct ModelArgs {
    /// A registry folder of `<name>/<version>/{model.onnx,manifest.json}` [default: the registry built in]
    #[arg(long, env = "EDGESCORE_MODELS_DIR")]
    pub models_dir: Option<PathBuf>,
    /// The model's name in the registry [default: the only one]
    #[arg(long, env = "EDGESCORE_MODEL_NAME")]
    pub model_name: Option<String>,
    /// The registry version [default: the highest]
    #[arg(long, env = "EDGESCORE_MODEL_VERSION")]
    pub model_version: Option<u32>,
    /// A bare ONNX file instead of the registry
    #[arg(long, env = "EDGESCORE_MODEL", conflicts_with_all = ["models_dir", "model_name", "model_version"])]
    pub model: Option<PathBuf>,
}

/// A model's bytes and where they came from.
pub struct ChosenModel {
    pub onnx: Vec<u8>,
    pub label: String,
    /// The registry name, or the file's stem for a bare file.
    pub name: String,
}

impl ModelArgs {
    pub fn registry(&self) -> Result<Registry> {
        match &self.models_dir {
            Some(dir) => Registry::scan(dir),
            None => Ok(Registry::embedded()),
        }
    }

    /// What `serve` serves: every registry version of the chosen model (or the bare file).
    pub fn model_set(&self) -> Result<ModelSet> {
        if self.model.is_some() {
            let chosen = self.choose()?;
            return Ok(ModelSet::single(chosen.name, &chosen.onnx));
        }
        ModelSet::from_dir(
            self.models_dir.clone(),
            self.model_name.as_deref(),
            self.model_version,
        )
    }

    pub fn choose(&self) -> Result<ChosenModel> {
        if let Some(path) = &self.model {
            let onnx = std::fs::read(path)
                .with_context(|| format!("reading the model {}", path.display()))?;
            return Ok(ChosenModel {
                onnx,
                label: path.display().to_string(),
                name: path
                    .file_stem()
                    .map_or_else(|| "model".into(), |s| s.to_string_lossy().into_owned()),
            });
        }
        let registry = self.registry()?;
        let chosen = registry.select(self.model_name.as_deref(), self.model_version)?;
        let m = &chosen.manifest;
        Ok(ChosenModel {
            onnx: chosen.onnx.clone(),
            label: format!("{} v{}", m.name, m.version),
            name: m.name.clone(),
        })
    }
}

/// The window rules (`docs/http-api.md`).
#[derive(Debug, Clone, Args)]
pub struct EngineArgs {
    /// How far back from the watermark a user's window reaches, in seconds
    #[arg(long, env = "EDGESCORE_WINDOW_SECONDS", default_value_t = 300.0)]
    window_seconds: f64,
    /// Events further ahead of the host clock than this are rejected as `future`, in seconds
    #[arg(long, env = "EDGESCORE_MAX_CLOCK_SKEW_SECONDS", default_value_t = 60.0)]
    max_clock_skew_seconds: f64,
}

impl EngineArgs {
    pub fn config(&self) -> Result<edgescore_types::EngineConfig> {
        let config = edgescore_types::EngineConfig {
            window_seconds: self.window_seconds,
            max_clock_skew_seconds: self.max_clock_skew_seconds,
        };
        config.validate()?;
        Ok(config)
    }
}

/// Which component to run, and what it may use.
#[derive(Debug, Clone, Args)]
pub struct RuntimeArgs {
    /// A scoring component (.wasm) instead of the one built in
    #[arg(long, env = "EDGESCORE_COMPONENT")]
    component: Option<PathBuf>,
    /// Linear memory one instance may use, in MiB
    #[arg(long, env = "EDGESCORE_GUEST_MEMORY_MB", default_value_t = 1024)]
    guest_memory_mb: usize,
    /// Wall time one call into the component may take, in milliseconds
    #[arg(long, env = "EDGESCORE_CALL_TIMEOUT_MS", default_value_t = 10_000)]
    call_timeout_ms: u64,
}

impl RuntimeArgs {
    pub fn source(&self) -> ComponentSource {
        match &self.component {
            Some(path) => ComponentSource::Path(path.clone()),
            None => edgescore_embedded::scoring_component(),
        }
    }

    pub fn runtime(&self) -> Result<Runtime> {
        let limits = GuestLimits {
            memory_bytes: self.guest_memory_mb << 20,
            call_timeout: Duration::from_millis(self.call_timeout_ms),
            call_fuel: None,
        };
        Runtime::new(&self.source(), limits)
    }
}

/// When the state's writes reach the disk (`serve`'s logs, `serve-app`'s SQLite store).
#[derive(Debug, Clone, Args)]
pub struct DurabilityArgs {
    /// When writes reach the disk: before every answer that depends on them (fsync), every
    /// --fsync-interval-ms (interval), or when the kernel decides (none). A crash of the process
    /// loses nothing in any mode; a power loss loses nothing with fsync
    #[arg(long, env = "EDGESCORE_DURABILITY", value_enum, default_value_t = DurabilityArg::Fsync)]
    durability: DurabilityArg,
    /// The fsync period of --durability interval, in milliseconds
    #[arg(long, env = "EDGESCORE_FSYNC_INTERVAL_MS", default_value_t = 1000)]
    fsync_interval_ms: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum DurabilityArg {
    Fsync,
    Interval,
    None,
}

impl DurabilityArgs {
    pub fn durability(&self) -> Result<edgescore_serve::Durability> {
        use edgescore_serve::Durability;
        anyhow::ensure!(
            self.fsync_interval_ms >= 1,
            "fsync-interval-ms: must be at least 1"
        );
        Ok(match self.durability {
            DurabilityArg::Fsync => Durability::Fsync,
            DurabilityArg::Interval => {
                Durability::Interval(Duration::from_millis(self.fsync_interval_ms))
            }
            DurabilityArg::None => Durability::None,
        })
    }
}
