//! What the page shows of one run, changed by the run's updates: the loss curve's points, the
//! epochs, the confusion matrix, the gallery's predictions and the progress.

use serde_json::{Value, json};

use crate::history::{EpochRecord, History, StepRecord};

use super::hub::{Update, Watched};

/// Points per epoch on the loss curve: each point is the mean of this fraction of an epoch,
/// the grain at which a trainer journals its steps, so that a followed run's curve moves as
/// evenly as one trained here.
const POINTS_PER_EPOCH: usize = crate::run::JOURNAL_PER_EPOCH;

/// A point of the loss curve: epochs (fractional), mean loss and accuracy of its steps.
type Point = [f64; 3];

/// What the page shows of one run.
pub(crate) struct View {
    points: Vec<Point>,
    pending: Vec<StepRecord>,
    epochs: Vec<EpochRecord>,
    confusion: Option<Vec<Vec<u32>>>,
    gallery: Option<Value>,
    /// Step of the newest checkpoint the analyst loaded.
    pub model_step: Option<u64>,
    step: u64,
    speed: Option<f64>,
    state: String,
}

impl View {
    /// The view of a run with `history` so far (`live`: trained by this process).
    pub fn new(history: History, live: bool, steps_per_epoch: usize) -> Self {
        let mut view = View {
            points: Vec::new(),
            step: history.steps.last().map_or(0, |s| s.step),
            pending: history.steps,
            speed: history.epochs.last().map(|e| e.examples_per_second),
            epochs: history.epochs,
            confusion: None,
            gallery: None,
            model_step: None,
            state: if live { "starting" } else { "saved" }.into(),
        };
        view.points = view.take_points(steps_per_epoch);
        view
    }

    /// Applies `update` (of `run`, whose view this is); returns the event for the browsers.
    pub fn apply(&mut self, run: &Watched, update: Update) -> Option<(&'static str, Value)> {
        match update {
            Update::Started { run: index, step } => {
                self.step = step;
                self.state = "training".into();
                Some((
                    "status",
                    json!({ "run": index, "status": self.status(run) }),
                ))
            }
            Update::Steps { records, speed, .. } => {
                self.step = records.last().map_or(self.step, |r| r.step);
                self.speed = speed.or(self.speed);
                self.pending.extend(records);
                None
            }
            Update::Epoch {
                run: index,
                record,
                confusion,
            } => {
                self.epochs.retain(|e| e.epoch < record.epoch);
                self.epochs.push(record);
                self.confusion = confusion.or(self.confusion.take());
                let data = json!({ "run": index, "record": record, "confusion": self.confusion, "status": self.status(run) });
                Some(("epoch", data))
            }
            Update::Saved { .. } => None,
            Update::Ended {
                run: index,
                outcome,
            } => {
                self.state = outcome.into();
                Some((
                    "status",
                    json!({ "run": index, "status": self.status(run) }),
                ))
            }
            Update::Analysed {
                run: index,
                step,
                gallery,
                confusion,
            } => {
                self.model_step = Some(step);
                self.gallery = Some(gallery);
                self.confusion = confusion.or(self.confusion.take());
                let data = json!({ "run": index, "step": step, "gallery": self.gallery, "confusion": self.confusion });
                Some(("model", data))
            }
            Update::Failed { run: index, why } => {
                Some(("note", json!({ "run": index, "note": why })))
            }
        }
    }

    /// The loss curve's points made from the pending steps: one per whole
    /// `1 / POINTS_PER_EPOCH` of an epoch (the rest waits), at the last step's epoch.
    pub fn take_points(&mut self, steps_per_epoch: usize) -> Vec<Point> {
        let size = (steps_per_epoch / POINTS_PER_EPOCH).max(1);
        let whole = self.pending.len() / size * size;
        let points: Vec<Point> = self.pending[..whole]
            .chunks(size)
            .map(|chunk| {
                let n = chunk.len() as f64;
                let mean = |f: fn(&StepRecord) -> f32| {
                    chunk.iter().map(|r| f64::from(f(r))).sum::<f64>() / n
                };
                let last = chunk[chunk.len() - 1].step as f64;
                [
                    last / steps_per_epoch as f64,
                    mean(|r| r.loss),
                    mean(|r| r.accuracy),
                ]
            })
            .collect();
        self.pending.drain(..whole);
        self.points.extend_from_slice(&points);
        points
    }

    /// A run's progress: epoch, step, examples/s, seconds left, state.
    pub fn status(&self, run: &Watched) -> Value {
        let config = &run.settings.config;
        let total = (config.epochs * run.steps_per_epoch) as u64;
        let left = total.saturating_sub(self.step) as f64 * config.batch_size as f64;
        json!({
            "state": self.state,
            "epoch": self.epochs.len(),
            "epochs": config.epochs,
            "step": self.step,
            "steps": total,
            "examples_per_second": self.speed,
            "seconds_left": self.speed.filter(|s| *s > 0.0).map(|s| left / s),
        })
    }

    /// What the page first draws of a run.
    pub fn summary(&self, run: &Watched) -> Value {
        let s = &run.settings;
        json!({
            "key": run.key,
            "dir": run.dir.display().to_string(),
            "live": run.live,
            "config": s.config,
            "arch": s.arch,
            "plan": s.plan,
            "data": s.data.name(),
            "steps_per_epoch": run.steps_per_epoch,
            "points": self.points,
            "epochs": self.epochs,
            "confusion": self.confusion,
            "gallery": self.gallery,
            "model_step": self.model_step,
            "status": self.status(run),
        })
    }
}
