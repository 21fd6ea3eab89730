//! A search over training settings: a space of [`TrainConfig`] values, each trial a real run
//! directory trained to the end one after another, judged on validation accuracy. A sweep
//! killed part way resumes: finished trials are read back, an unfinished one continues.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::arch::LayerSpec;
use crate::config::{TrainConfig, Validation};
use crate::data::Cifar10;
use crate::error::{Error, Result};
use crate::events::Observer;
use crate::run::{NewRun, Outcome, Run, RunOptions};
use crate::store::Place;

/// Most trials of one sweep.
pub const MAX_TRIALS: usize = 1000;

/// The space, as written in its JSON file: settings every trial shares (`base`, any
/// [`TrainConfig`] field by its name), lists of values to combine (`grid`), and optionally how
/// many combinations to draw at random (`samples`) instead of trying all.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Space {
    /// Settings of every trial.
    #[serde(default)]
    pub base: Map<String, Value>,
    /// For each setting varied, its values; every combination is a trial.
    #[serde(default)]
    pub grid: Map<String, Value>,
    /// Draw this many combinations of the grid (seeded by `seed`) rather than all.
    #[serde(default)]
    pub samples: Option<usize>,
    /// Seed of the draw.
    #[serde(default)]
    pub seed: u64,
}

/// One trial: what it varies and its full settings.
#[derive(Clone, Debug, PartialEq)]
pub struct Trial {
    /// The grid's values for this trial, by setting name.
    pub varied: Map<String, Value>,
    /// Its settings.
    pub config: TrainConfig,
}

impl Trial {
    /// `name=value` of each setting varied, for tables and charts.
    pub fn label(&self) -> String {
        let parts: Vec<String> = self
            .varied
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        match parts.is_empty() {
            true => "base".into(),
            false => parts.join(" "),
        }
    }
}

/// How a trial ended.
#[derive(Clone, Debug, Serialize)]
pub struct TrialResult {
    /// The trial's number, from 1.
    pub trial: usize,
    /// `name=value` of each setting varied.
    pub label: String,
    /// Its run directory.
    pub dir: PathBuf,
    /// Validation accuracy after the last epoch (with every test-time view).
    pub validation: Option<f32>,
    /// The best validation accuracy of any epoch.
    pub best_validation: Option<f32>,
    /// Test accuracy after the last epoch.
    pub test: Option<f32>,
    /// Seconds of training steps, summed over epochs.
    pub seconds: f64,
}

impl Space {
    /// Reads and checks a space file: every trial's settings must be valid.
    pub fn load(path: &Path, defaults: &TrainConfig) -> Result<Vec<Trial>> {
        let at = |e: String| Error::Usage(format!("{}: {e}", path.display()));
        let text = std::fs::read_to_string(path).map_err(|e| at(e.to_string()))?;
        let space: Space = serde_json::from_str(&text).map_err(|e| at(e.to_string()))?;
        space.trials(defaults).map_err(|e| at(e.to_string()))
    }

    /// Every trial of the space, each checked, over `defaults` (the settings no one gave).
    pub fn trials(&self, defaults: &TrainConfig) -> Result<Vec<Trial>> {
        let mut combos = vec![Map::new()];
        for (name, values) in &self.grid {
            let Value::Array(values) = values else {
                return Err(Error::Usage(format!(
                    "grid: {name} must be a list of values"
                )));
            };
            if values.is_empty() {
                return Err(Error::Usage(format!("grid: {name} has no value")));
            }
            if combos.len() * values.len() > MAX_TRIALS * 100 {
                return Err(Error::Usage(format!(
                    "grid: more than {} combinations",
                    MAX_TRIALS * 100
                )));
            }
            combos = combos
                .into_iter()
                .flat_map(|c| values.iter().map(move |v| with(&c, name, v)))
                .collect();
        }
        if let Some(n) = self.samples {
            if n == 0 {
                return Err(Error::Usage("samples must be at least 1".into()));
            }
            combos.shuffle(&mut StdRng::seed_from_u64(self.seed));
            combos.truncate(n);
        }
        if combos.len() > MAX_TRIALS {
            return Err(Error::Usage(format!(
                "{} trials; at most {MAX_TRIALS} (use samples)",
                combos.len()
            )));
        }
        combos
            .into_iter()
            .enumerate()
            .map(|(i, varied)| self.trial(defaults, varied).map_err(|e| trial_error(i, e)))
            .collect()
    }

    /// The trial of `varied` over `base` over `defaults`, checked.
    fn trial(&self, defaults: &TrainConfig, varied: Map<String, Value>) -> Result<Trial> {
        let settings: Vec<_> = self.base.iter().chain(&varied).collect();
        let config = overlay(defaults, &settings).map_err(|e| {
            // serde names no field in a type error: find the setting that fails alone.
            let culprit = settings.iter().find(|s| overlay(defaults, &[**s]).is_err());
            match culprit {
                Some((name, _)) => Error::Usage(format!("{name}: {e}")),
                None => Error::Usage(e.to_string()),
            }
        })?;
        config.validate()?;
        Ok(Trial { varied, config })
    }
}

/// `defaults` with `settings` (field name, JSON value) written over them.
fn overlay(
    defaults: &TrainConfig,
    settings: &[(&String, &Value)],
) -> std::result::Result<TrainConfig, serde_json::Error> {
    let mut config = serde_json::to_value(defaults).expect("settings serialise");
    let fields = config.as_object_mut().expect("settings are an object");
    for (name, value) in settings {
        fields.insert((*name).clone(), (*value).clone());
    }
    serde_json::from_value(config)
}

/// `combo` with `name` set to `value`.
fn with(combo: &Map<String, Value>, name: &str, value: &Value) -> Map<String, Value> {
    let mut c = combo.clone();
    c.insert(name.to_string(), value.clone());
    c
}

fn trial_error(i: usize, e: Error) -> Error {
    Error::Usage(format!("trial {}: {e}", i + 1))
}

/// The directory of trial `i` (from 0) in a sweep's directory.
pub fn trial_dir(sweep: &Path, i: usize) -> PathBuf {
    sweep.join(format!("trial-{:03}", i + 1))
}

/// Trains trial `i` of a sweep in `sweep`: creates its run, or resumes it if an earlier
/// process started it (its settings must be the trial's), to the end. `None` when `stop` was
/// raised (the run is saved and a later sweep resumes it).
#[allow(clippy::too_many_arguments)]
pub fn run_trial(
    sweep: &Path,
    i: usize,
    trial: &Trial,
    arch: &[LayerSpec],
    data: &Cifar10,
    options: &RunOptions,
    stop: &AtomicBool,
    obs: &mut dyn Observer,
) -> Result<Option<TrialResult>> {
    let dir = trial_dir(sweep, i);
    let mut run = match dir.join("latest").exists() {
        true => {
            let run = Run::resume(&dir, data.source_dir(), options)?;
            // A run records the images it held out, not `auto`.
            let mut want = trial.config.clone();
            want.validation = Validation::Images(want.validation.count(data.train.len()));
            if run.state().settings.config != want {
                return Err(Error::Usage(format!(
                    "{} holds a run with other settings than trial {}: use a new sweep directory",
                    dir.display(),
                    i + 1
                )));
            }
            run
        }
        false => {
            let new = NewRun {
                arch: arch.to_vec(),
                config: trial.config.clone(),
                ..NewRun::default()
            };
            Run::create(&Place::Dir(dir.clone()), data.clone(), new, options)?
        }
    };
    if run.fit(None, stop, obs)? != Outcome::Finished {
        return Ok(None);
    }
    let epochs = &run.history().epochs;
    let last = epochs.last();
    Ok(Some(TrialResult {
        trial: i + 1,
        label: trial.label(),
        dir,
        validation: last.and_then(|e| e.validation_accuracy),
        best_validation: epochs
            .iter()
            .filter_map(|e| e.validation_accuracy)
            .max_by(f32::total_cmp),
        test: last.and_then(|e| e.test_accuracy),
        seconds: epochs.iter().map(|e| e.seconds).sum(),
    }))
}
