//! What the service serves at one moment: the model versions, a scorer pool per version (for
//! `/predict` and batch jobs), and the active version's label and ingest rules. A reload builds a
//! new catalog beside the old one and replaces it whole.

use std::sync::Arc;

use anyhow::{Result, bail};
use edgescore_contract::ApiError;
use edgescore_contract::models::{ModelEntry, ModelLabel, ModelsBody, choose_version};
use edgescore_runtime::Runtime;
use edgescore_types::{EngineConfig, Rules};

use crate::drift::{Drift, DriftConfig};
use crate::models::{ModelSet, ModelSource, Predictor, ServedModel};

pub struct Catalog {
    pub models: ModelSet,
    /// One per served version, in `models.versions` order.
    pub predictors: Vec<Arc<Predictor>>,
    /// How ingest judges events for the active model (its input width).
    pub rules: Rules,
    pub label: ModelLabel,
}

impl Catalog {
    /// Loads `pool` scorer instances per version, reusing `previous`'s for versions that did not
    /// change. A version the component cannot load is reported in `skipped` and not served; the
    /// active one then falls back to the highest loadable version, unless it was pinned.
    /// Blocking (tract loads the models).
    pub fn build(
        runtime: &Runtime,
        mut models: ModelSet,
        engine: EngineConfig,
        pool: usize,
        previous: Option<&Catalog>,
    ) -> Result<Catalog> {
        let wanted = models.active().version;
        let mut served = Vec::with_capacity(models.versions.len());
        let mut predictors = Vec::with_capacity(models.versions.len());
        for model in std::mem::take(&mut models.versions) {
            let unchanged = previous
                .and_then(|p| p.predictors.iter().find(|q| q.model == model))
                .cloned();
            let loaded = match unchanged {
                Some(predictor) => Ok(predictor),
                None => Predictor::new(runtime, model.clone(), pool).map(Arc::new),
            };
            match loaded {
                Ok(predictor) => {
                    predictors.push(predictor);
                    served.push(model);
                }
                Err(e) => models.skipped.push(format!(
                    "{} version {}: the scoring component cannot load it: {}",
                    model.name,
                    model.version_label(),
                    e.root_cause()
                )),
            }
        }
        let pinned = match &models.source {
            ModelSource::Registry { version, .. } => version.is_some(),
            ModelSource::File => true,
        };
        let active = match served.iter().position(|m| m.version == wanted) {
            Some(active) => active,
            None if !pinned && !served.is_empty() => served.len() - 1,
            None => bail!(
                "no servable model: {}",
                models.skipped.last().map_or("", String::as_str)
            ),
        };
        models.versions = served;
        models.active = active;
        let info = &predictors[active].info;
        Ok(Catalog {
            label: ModelLabel {
                name: models.versions[active].name.clone(),
                version: models.versions[active].version,
                sha256: info.sha256.clone(),
                input_width: info.input_width,
            },
            rules: Rules {
                config: engine,
                width: info.input_width as usize,
            },
            models,
            predictors,
        })
    }

    pub fn active(&self) -> &ServedModel {
        self.models.active()
    }

    pub fn active_predictor(&self) -> &Arc<Predictor> {
        &self.predictors[self.models.active]
    }

    /// A fresh drift detector for the active version (its manifest's baseline).
    pub fn drift(&self, config: DriftConfig) -> Drift {
        let active = self.active();
        Drift::new(
            config,
            active.version_label(),
            active.feature_names.clone(),
            active.baseline.clone(),
        )
    }

    /// The predictor `?version=` asks for, or the active one.
    pub fn predictor(&self, asked: Option<&str>) -> Result<&Arc<Predictor>, ApiError> {
        let Some(asked) = asked else {
            return Ok(self.active_predictor());
        };
        let labels: Vec<String> = self
            .predictors
            .iter()
            .map(|p| p.model.version_label())
            .collect();
        let index = choose_version(&self.label.name, &labels, asked)?;
        Ok(&self.predictors[index])
    }

    /// `GET /models`.
    pub fn body(&self) -> ModelsBody {
        ModelsBody {
            models: self.entries(),
            skipped: self.models.skipped.clone(),
        }
    }

    /// Every served version.
    pub fn entries(&self) -> Vec<ModelEntry> {
        self.predictors
            .iter()
            .enumerate()
            .map(|(i, p)| ModelEntry {
                name: p.model.name.clone(),
                version: p.model.version,
                input_width: p.info.input_width,
                feature_names: p.model.feature_names.clone(),
                sha256: p.info.sha256.clone(),
                active: i == self.models.active,
            })
            .collect()
    }
}
