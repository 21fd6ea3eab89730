//! `--time-budget`: the epoch count that fits a run into a wall time on this machine, from the
//! measured speed of its first steps and of its evaluation. The count is recorded in the run's
//! settings, so a resumed run keeps it and the run stays reproducible.

use std::time::Instant;

use crate::batch::{Augment, draw_augments, epoch_order, tta_views};
use crate::config::{MAX_EPOCHS, TrainConfig};
use crate::data::{Dataset, IMAGE_BYTES};
use crate::error::{Error, Result};
use crate::train::Trainer;

/// A wall-time budget: `seconds` from `since` (the command's start).
#[derive(Clone, Copy, Debug)]
pub struct TimeBudget {
    /// The whole budget.
    pub seconds: f64,
    /// When the clock started.
    pub since: Instant,
}

/// What the budget bought, and the figures it was computed from.
#[derive(Clone, Copy, Debug)]
pub struct Sizing {
    /// Epochs chosen.
    pub epochs: usize,
    /// Seconds per optimiser step, measured.
    pub step_seconds: f64,
    /// Seconds per epoch: its steps, its evaluation and its save.
    pub epoch_seconds: f64,
    /// Seconds of the final evaluation with every test-time view.
    pub final_seconds: f64,
    /// Seconds already spent when the count was fixed (loading, choosing kernels, measuring).
    pub spent: f64,
    /// The budget.
    pub budget: f64,
}

/// Kept free of the budget against a machine that slows down during the run.
const RESERVE: f64 = 0.05;
/// Seconds per epoch for saving a checkpoint and redrawing the curves.
const SAVE_SECONDS: f64 = 0.5;
/// Timed steps: at least this many, and at least [`MEASURE_SECONDS`].
const MEASURE_STEPS: usize = 10;
const MEASURE_SECONDS: f64 = 2.0;

/// The epochs of `config` that fit in `budget`: times steps of the first epoch's batches
/// (gradients only, no update: the trainer is left as it was) and the evaluation of a part of
/// `validation` (or of `test` when nothing is held out), then divides what is left.
pub fn fit_epochs(
    trainer: &mut Trainer,
    train: &Dataset,
    validation: &Dataset,
    test: &Dataset,
    budget: &TimeBudget,
) -> Result<Sizing> {
    let config = trainer.config.clone();
    let step_seconds = time_steps(trainer, train, &config)?;
    let view_seconds = time_views(
        trainer,
        if validation.is_empty() {
            test
        } else {
            validation
        },
    )?;
    let steps = train.len().div_ceil(config.batch_size) as f64;
    let per_epoch_views =
        2.0 * (validation.len() + test.len() * usize::from(config.test_every_epoch)) as f64;
    let epoch_seconds = steps * step_seconds + per_epoch_views * view_seconds + SAVE_SECONDS;
    let final_seconds = (config.tta * (validation.len() + test.len())) as f64 * view_seconds;
    let spent = budget.since.elapsed().as_secs_f64();
    let left = budget.seconds * (1.0 - RESERVE) - spent - final_seconds;
    let epochs = (left / epoch_seconds).floor();
    if epochs < 1.0 {
        return Err(Error::Usage(format!(
            "--time-budget {:.0}s is too short here: {spent:.1} s are spent before training, an epoch takes about {epoch_seconds:.1} s and the final evaluation {final_seconds:.1} s",
            budget.seconds
        )));
    }
    Ok(Sizing {
        // A week's budget on a tiny data set could afford more than --epochs allows.
        epochs: (epochs as usize).min(MAX_EPOCHS),
        step_seconds,
        epoch_seconds,
        final_seconds,
        spent,
        budget: budget.seconds,
    })
}

/// Seconds per step, the median of timed steps over the first batches of epoch 1.
fn time_steps(trainer: &mut Trainer, train: &Dataset, config: &TrainConfig) -> Result<f64> {
    let order = epoch_order(config.seed, 0, train.len());
    let mut augments = vec![Augment::default(); config.batch_size];
    let batches: Vec<&[usize]> = order.chunks(config.batch_size).collect();
    let mut times = Vec::new();
    let start = Instant::now();
    // Two untimed steps first: the workers' first touch of their memory.
    for k in 0.. {
        let batch = batches[k % batches.len()];
        let aug = &mut augments[..batch.len()];
        draw_augments(config.seed, k as u64, config.shift, aug);
        let aug: &[Augment] = if config.augment { aug } else { &[] };
        let t = Instant::now();
        trainer.gradients(train, batch, aug)?;
        if k >= 2 {
            times.push(t.elapsed().as_secs_f64());
        }
        if times.len() >= MEASURE_STEPS && start.elapsed().as_secs_f64() >= MEASURE_SECONDS {
            break;
        }
    }
    times.sort_by(f64::total_cmp);
    Ok(times[times.len() / 2])
}

/// Seconds per image and view of an evaluation, timed on up to 1,000 images of `data`.
fn time_views(trainer: &mut Trainer, data: &Dataset) -> Result<f64> {
    let n = data.len().min(1000);
    if n == 0 {
        return Ok(0.0);
    }
    let part = Dataset {
        images: data.images[..n * IMAGE_BYTES].to_vec(),
        labels: data.labels[..n].to_vec(),
    };
    let views = tta_views(2);
    let start = Instant::now();
    trainer.infer().evaluate(&part, &views)?;
    Ok(start.elapsed().as_secs_f64() / (n * views.len()) as f64)
}
