//! The model versions a service serves: the active one (ingest scores with it) and every version
//! of the same model in the registry, each with a few scorer instances for `/predict`.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result};
use edgescore_registry::Registry;
use edgescore_runtime::{CallError, Runtime, Scorer};
use edgescore_types::ModelInfo;

use crate::drift::Baseline;

/// A model version the service can score with.
#[derive(Debug, Clone, PartialEq)]
pub struct ServedModel {
    pub name: String,
    /// The registry version; none for a bare ONNX file.
    pub version: Option<u32>,
    /// The manifest's feature names in input order (empty for a bare file).
    pub feature_names: Vec<String>,
    /// The manifest's baseline feature means and standard deviations (empty for a bare file: no
    /// drift detection).
    pub baseline: Baseline,
    pub onnx: Arc<[u8]>,
}

impl ServedModel {
    /// How `/predict` and `/stats` name this version.
    pub fn version_label(&self) -> String {
        edgescore_contract::models::version_label(&self.name, self.version)
    }
}

/// Where the served versions come from, for a reload to scan again.
#[derive(Debug, Clone, PartialEq)]
pub enum ModelSource {
    /// A registry folder (or the one built in) and the model's name; `version` pins the active
    /// version, else the highest is active.
    Registry {
        dir: Option<PathBuf>,
        name: String,
        version: Option<u32>,
    },
    /// One bare ONNX file: nothing to rescan.
    File,
}

/// The versions served and which one is active.
#[derive(Debug, Clone)]
pub struct ModelSet {
    pub versions: Vec<ServedModel>,
    pub active: usize,
    /// Registry entries that were reported and skipped (bad sha256, unreadable manifest, a model
    /// the component cannot load).
    pub skipped: Vec<String>,
    pub source: ModelSource,
}

impl ModelSet {
    /// Every version of the chosen model in the registry read from `dir` (the built-in one when
    /// none); `version` (or the highest) is active.
    pub fn from_dir(
        dir: Option<PathBuf>,
        name: Option<&str>,
        version: Option<u32>,
    ) -> Result<Self> {
        let registry = match &dir {
            Some(dir) => Registry::scan(dir)?,
            None => Registry::embedded(),
        };
        let mut set = ModelSet::from_registry(&registry, name, version)?;
        if let ModelSource::Registry { dir: source, .. } = &mut set.source {
            *source = dir;
        }
        Ok(set)
    }

    /// Scans the source again (blocking: it reads files).
    pub fn rescan(&self) -> Result<ModelSet> {
        match &self.source {
            ModelSource::Registry { dir, name, version } => {
                ModelSet::from_dir(dir.clone(), Some(name), *version)
            }
            ModelSource::File => anyhow::bail!(
                "reload: the service runs one ONNX file (--model); a reload needs a registry \
                 (--models-dir)"
            ),
        }
    }

    /// Every version of the chosen model in the registry; `version` (or the highest) is active.
    pub fn from_registry(
        registry: &Registry,
        name: Option<&str>,
        version: Option<u32>,
    ) -> Result<ModelSet> {
        let chosen = registry.select(name, version)?;
        let name = chosen.manifest.name.clone();
        let versions: Vec<ServedModel> = registry
            .versions
            .iter()
            .filter(|v| v.manifest.name == name)
            .map(|v| ServedModel {
                name: name.clone(),
                version: Some(v.manifest.version),
                feature_names: v.manifest.feature_names.clone(),
                baseline: Baseline {
                    mean: v.manifest.baseline.mean.clone(),
                    std: v.manifest.baseline.std.clone(),
                },
                onnx: v.onnx.as_slice().into(),
            })
            .collect();
        let active = versions
            .iter()
            .position(|v| v.version == Some(chosen.manifest.version))
            .context("the chosen version is among the versions")?;
        Ok(ModelSet {
            versions,
            active,
            skipped: registry.problems.clone(),
            source: ModelSource::Registry {
                dir: None,
                name,
                version,
            },
        })
    }

    /// One bare ONNX file, without a manifest.
    pub fn single(name: String, onnx: &[u8]) -> ModelSet {
        ModelSet {
            versions: vec![ServedModel {
                name,
                version: None,
                feature_names: Vec::new(),
                baseline: Baseline::default(),
                onnx: onnx.into(),
            }],
            active: 0,
            skipped: Vec::new(),
            source: ModelSource::File,
        }
    }

    pub fn active(&self) -> &ServedModel {
        &self.versions[self.active]
    }

    /// Makes `version` (a label) active again, as it was before a restart, if it is still
    /// served with the same bytes and no version is pinned. Returns whether it did.
    pub fn prefer(&mut self, version: &str, onnx_sha256: &str) -> bool {
        if matches!(
            self.source,
            ModelSource::Registry {
                version: Some(_),
                ..
            }
        ) {
            return false;
        }
        let found = self.versions.iter().position(|m| {
            m.version_label() == version
                && crate::storage::store::sha256_hex(&m.onnx) == onnx_sha256
        });
        if let Some(index) = found {
            self.active = index;
        }
        found.is_some()
    }
}

/// Scorer instances of one version, shared by the `/predict` requests: each call takes a free
/// instance (or waits for one), so predictions run in parallel up to the pool's size.
pub struct Predictor {
    pub model: ServedModel,
    pub info: ModelInfo,
    pool: Vec<Mutex<Scorer>>,
    next: AtomicUsize,
}

impl Predictor {
    pub fn new(runtime: &Runtime, model: ServedModel, instances: usize) -> Result<Predictor> {
        let label = format!("{} version {}", model.name, model.version_label());
        let mut pool = Vec::with_capacity(instances.max(1));
        for _ in 0..instances.max(1) {
            pool.push(Mutex::new(
                Scorer::new(runtime, &model.onnx).with_context(|| label.clone())?,
            ));
        }
        let info = pool[0]
            .lock()
            .map_err(|_| anyhow::anyhow!("a fresh scorer's lock"))?
            .info()
            .clone();
        Ok(Predictor {
            model,
            info,
            pool,
            next: AtomicUsize::new(0),
        })
    }

    /// Scores `rows × width` features; blocking (call it off the async workers).
    pub fn score(&self, rows: &[f32]) -> Result<Vec<f32>, CallError> {
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        let n = self.pool.len();
        let free = (0..n).find_map(|i| self.pool[(start + i) % n].try_lock().ok());
        let mut scorer = match free {
            Some(scorer) => scorer,
            // A poisoned lock only means an earlier call panicked; the scorer restarts itself
            // after guest failures, so it is still usable.
            None => self.pool[start % n]
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner()),
        };
        scorer.score(rows)
    }
}
