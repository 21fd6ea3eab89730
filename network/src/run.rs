//! A training run as a library object: it claims its directory, creates or resumes, fits epoch
//! by epoch, saves a checkpoint after every epoch and when stopped, and reports progress to an
//! [`Observer`]. See [`crate::store`] for what the directory holds and why a kill at any
//! instant cannot break it.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

use crate::arch::LayerSpec;
use crate::batch::{Augment, Normalizer, draw_augments, epoch_order, tta_views};
use crate::budget::Footprint;
use crate::config::{MAX_EPOCHS, TrainConfig, Validation};
use crate::data::{Cifar10, Dataset};
use crate::disk::{Disk, Fault};
use crate::error::{Error, Result};
use crate::events::{Event, Observer};
use crate::history::{EpochRecord, History, StepRecord, encode_lines, peak_rss_mb};
use crate::model::{Layer, Network};
use crate::pictures::{self, RunCurves};
use crate::sizing::{Sizing, TimeBudget, fit_epochs};
use crate::store::{FORMAT, Place, Progress, RunDir, Settings, Snapshot, State};
use crate::tensors::{Pairs, TRAINED, TensorInfo, read_groups, read_pairs, serialize_pairs};
use crate::train::{PlanNames, Trainer, total_steps};

/// The training curves' file in a run directory.
pub const CURVES_FILE: &str = "curves.png";

/// How a run behaves beyond its settings.
#[derive(Clone, Copy, Debug)]
pub struct RunOptions {
    /// Stop after an operation of the run directory (a test hook; see [`crate::disk`]).
    pub fault: Option<Fault>,
    /// Refuse a run that would need more memory than this, in bytes.
    pub memory_budget: u64,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            fault: None,
            memory_budget: crate::budget::default_budget(),
        }
    }
}

/// What a new run is.
#[derive(Clone, Debug, Default)]
pub struct NewRun {
    /// The layer list.
    pub arch: Vec<LayerSpec>,
    /// Hyper-parameters.
    pub config: TrainConfig,
    /// Starting weights (a safetensors file with PyTorch's names) instead of `config.init`.
    pub init_from: Option<PathBuf>,
    /// Size the epoch count to finish within this wall time (`config.epochs` is replaced).
    pub time_budget: Option<TimeBudget>,
}

impl NewRun {
    /// Checks everything that needs no data: the settings, the layer list, that the network
    /// takes CIFAR-10 images to its 10 classes. [`Run::create`] checks it again, with the
    /// memory budget.
    pub fn check(&self) -> Result<()> {
        self.settings().validate()?;
        crate::arch::check_cifar10(&self.arch)
    }

    /// The settings before a time budget sizes the run. With a budget the epoch count is not
    /// known yet, so until sizing fixes it (and checks everything again) it bounds nothing:
    /// `--warmup 40` is not refused for exceeding a default count the budget replaces.
    fn settings(&self) -> TrainConfig {
        let mut config = self.config.clone();
        if self.time_budget.is_some() {
            config.epochs = MAX_EPOCHS;
        }
        config
    }
}

/// Why [`Run::fit`] returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Every epoch is done.
    Finished,
    /// The stop flag was raised; a checkpoint was saved.
    Stopped,
    /// The step limit was reached; a checkpoint was saved.
    StepLimit,
}

impl Outcome {
    /// Its name in JSON documents.
    pub fn name(self) -> &'static str {
        match self {
            Outcome::Finished => "finished",
            Outcome::Stopped => "stopped",
            Outcome::StepLimit => "step-limit",
        }
    }
}

/// Journal entries per epoch (the page's loss curve has a point for each).
pub const JOURNAL_PER_EPOCH: usize = 32;

/// A run that this process trains: its directory (locked), trainer, progress, history, data.
pub struct Run {
    dir: RunDir,
    trainer: Trainer,
    state: State,
    history: History,
    data: Cifar10,
    /// The training images held out to choose settings on (none in older runs).
    validation: Dataset,
    /// Steps and epochs of `history` already in the history files.
    saved: (usize, usize),
    /// Steps of `history` in `steps.jsonl`: the saved ones and those journaled since.
    journaled: usize,
    resumed: bool,
    /// How `--time-budget` chose the epoch count, when this process chose it.
    sizing: Option<Sizing>,
}

impl Run {
    /// Creates a run of `new` on `data` in `place`: everything is checked first, then the
    /// directory claimed and the starting point saved as generation 0.
    pub fn create(
        place: &Place,
        mut data: Cifar10,
        new: NewRun,
        options: &RunOptions,
    ) -> Result<Run> {
        new.check()?;
        let mut config = new.settings();
        check_fits(&new.arch, &config, &data, options)?;
        let (held, validation) = split(&mut data, config.validation).map_err(|held| {
            Error::Usage(format!(
                "--validation {held} would leave no training image: the data has {} training images",
                data.train.len()
            ))
        })?;
        config.validation = Validation::Images(held);
        let mut net = Network::new(
            &new.arch,
            config.init,
            &mut StdRng::seed_from_u64(config.seed),
        )?;
        if let Some(path) = &new.init_from {
            let (pairs, _) = read_pairs(&net, path)?;
            net.set_params(pairs);
        }
        let normalizer = Normalizer::fit(&data.train);
        normalizer.check("the training images")?;
        let dir = RunDir::create(place, Disk::new(options.fault))?;
        let sized = Trainer::new(net, normalizer.clone(), config.clone()).and_then(|mut t| {
            let sizing = match &new.time_budget {
                Some(budget) => Some(size(&mut t, &data, &validation, budget)?),
                None => None,
            };
            Ok((t, sizing))
        });
        let (trainer, sizing) = match sized {
            Ok(done) => done,
            Err(e) => {
                dir.abandon();
                return Err(e);
            }
        };
        let config = trainer.config.clone();
        let settings = Settings {
            arch: new.arch,
            config,
            normalizer,
            plan: PlanNames::from(&trainer.plan),
            data: data.describe(),
        };
        let state = State {
            format: FORMAT,
            run: format!("{:032x}", rand::rng().random::<u128>()),
            settings,
            progress: Progress::default(),
        };
        let mut run = Run {
            dir,
            trainer,
            state,
            history: History::default(),
            data,
            validation,
            saved: (0, 0),
            journaled: 0,
            resumed: false,
            sizing,
        };
        // Generation 0: the claim complete, the directory proven writable before any step.
        match run.save() {
            Ok(_) => Ok(run),
            // An injected fault stands for a kill: nothing may be tidied up after it.
            Err(e @ Error::Injected(_)) => Err(e),
            Err(e) => {
                run.dir.abandon();
                Err(e)
            }
        }
    }

    /// Continues the run in `path` from its newest complete checkpoint, on the data it
    /// recorded (or `data`, which must be the same files).
    pub fn resume(path: &Path, data: Option<&Path>, options: &RunOptions) -> Result<Run> {
        let (dir, checkpoint) = RunDir::open(path, Disk::new(options.fault))?;
        let state = checkpoint.state.clone();
        // RunDir::open validated the settings (every read of a checkpoint does).
        let s = &state.settings;
        let mut data = recorded_data(&s.data, data)?;
        check_fits(&s.arch, &s.config, &data, options)?;
        let (_, validation) = split(&mut data, s.config.validation).map_err(|held| {
            Error::Checkpoint(format!(
                "{}: the run holds out {held} validation images of {}",
                checkpoint.model.display(),
                data.train.len()
            ))
        })?;
        let net = Network::new(
            &s.arch,
            s.config.init,
            &mut StdRng::seed_from_u64(s.config.seed),
        )?;
        let plan = s.plan.to_plan(&net)?;
        let mut trainer =
            Trainer::with_plan(net, s.normalizer.clone(), s.config.clone(), Some(plan))?;
        let (model, info) = read_pairs(&trainer.net, &checkpoint.model)?;
        checkpoint.check_tensors(info.as_ref(), &checkpoint.model)?;
        // With an average, the model is the average and the optimizer file holds the weights.
        let prefixes: &[&str] = match trainer.average {
            Some(_) => &["", TRAINED],
            None => &[""],
        };
        let (mut groups, info) = read_groups(&trainer.net, &checkpoint.optimizer, prefixes)?;
        checkpoint.check_tensors(info.as_ref(), &checkpoint.optimizer)?;
        trainer.sgd.set_velocity(groups.remove(0));
        match &mut trainer.average {
            Some(average) => {
                average.set_params(model);
                let weights = groups
                    .pop()
                    .expect("read_groups returns one group per prefix");
                trainer.net.set_params(weights);
            }
            None => trainer.net.set_params(model),
        }
        let history = checkpoint.history(path)?;
        Ok(Run {
            dir,
            trainer,
            saved: (history.steps.len(), history.epochs.len()),
            journaled: history.steps.len(),
            history,
            state,
            data,
            validation,
            resumed: true,
            sizing: None,
        })
    }

    /// The run directory.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Settings and progress as of the last step.
    pub fn state(&self) -> &State {
        &self.state
    }

    /// Loss and accuracy so far.
    pub fn history(&self) -> &History {
        &self.history
    }

    /// The trainer: network, optimiser, techniques.
    pub fn trainer(&self) -> &Trainer {
        &self.trainer
    }

    /// The data it trains on (its training set without the validation images).
    pub fn data(&self) -> &Cifar10 {
        &self.data
    }

    /// The training images held out for validation.
    pub fn validation(&self) -> &Dataset {
        &self.validation
    }

    /// How a time budget fixed the epoch count, if this process created the run with one.
    pub fn sizing(&self) -> Option<&Sizing> {
        self.sizing.as_ref()
    }

    /// Trains until every epoch is done, `stop` is raised, or `max_steps` steps are taken in
    /// all; saves after every epoch and before returning early.
    pub fn fit(
        &mut self,
        max_steps: Option<u64>,
        stop: &AtomicBool,
        obs: &mut dyn Observer,
    ) -> Result<Outcome> {
        let config = self.state.settings.config.clone();
        obs.event(&Event::Started {
            dir: self.dir.path(),
            resumed: self.resumed,
            net: &self.trainer.net,
            plan: &self.trainer.plan,
            measured: config.technique == crate::config::TechniqueChoice::Auto,
            step: self.state.progress.step,
            steps_per_epoch: self.data.train.len().div_ceil(config.batch_size),
        });
        let result = self.fit_epochs(&config, stop, max_steps, obs);
        if result
            .as_ref()
            .is_err_and(|e| !matches!(e, Error::Injected(_)))
        {
            // The journal is news, not history: a run that ends on an error (not a simulated
            // kill) leaves its directory as the newest checkpoint left it. Best effort: a
            // directory that cannot be cut now is cut by the next resume.
            let _ = self.dir.cut_journal();
        }
        result
    }

    /// The epochs of [`Run::fit`].
    fn fit_epochs(
        &mut self,
        config: &TrainConfig,
        stop: &AtomicBool,
        max_steps: Option<u64>,
        obs: &mut dyn Observer,
    ) -> Result<Outcome> {
        while self.state.progress.epoch < config.epochs {
            let (stopped, seconds, examples) = self.fit_epoch(config, stop, max_steps, obs)?;
            if let Some(outcome) = stopped {
                self.checkpoint(obs)?;
                return Ok(outcome);
            }
            self.end_epoch(config, seconds, examples, obs)?;
        }
        Ok(Outcome::Finished)
    }

    /// The steps of the current epoch: `Some` outcome if stopped before its end, and the
    /// seconds and examples of the steps taken.
    fn fit_epoch(
        &mut self,
        config: &TrainConfig,
        stop: &AtomicBool,
        max_steps: Option<u64>,
        obs: &mut dyn Observer,
    ) -> Result<(Option<Outcome>, f64, usize)> {
        let train_len = self.data.train.len();
        let steps_per_epoch = train_len.div_ceil(config.batch_size);
        let horizon = total_steps(config, train_len);
        let order = epoch_order(config.seed, self.state.progress.epoch as u64, train_len);
        let mut augments = vec![Augment::default(); config.batch_size];
        obs.event(&Event::EpochStarted {
            epoch: self.state.progress.epoch + 1,
            epochs: config.epochs,
            step_in_epoch: self.state.progress.step_in_epoch,
            steps_per_epoch,
        });
        let start = Instant::now();
        let (mut loss_sum, mut right, mut seen) = (0.0f64, 0usize, 0usize);
        while self.state.progress.step_in_epoch < steps_per_epoch {
            let p = self.state.progress;
            let outcome = if stop.load(Ordering::SeqCst) {
                Some(Outcome::Stopped)
            } else if max_steps.is_some_and(|m| p.step >= m) {
                Some(Outcome::StepLimit)
            } else {
                None
            };
            if outcome.is_some() {
                return Ok((outcome, start.elapsed().as_secs_f64(), seen));
            }
            let begin = p.step_in_epoch * config.batch_size;
            let indices = &order[begin..(begin + config.batch_size).min(train_len)];
            let drawn = &mut augments[..indices.len()];
            if config.augment {
                draw_augments(config.seed, p.step, config.shift, drawn);
            }
            let aug: &[Augment] = if config.augment { drawn } else { &[] };
            let factor = config.rate_factor(p.step, horizon, steps_per_epoch);
            let (loss, correct) = self.trainer.step(&self.data.train, indices, aug, factor)?;
            if !loss.is_finite() {
                return Err(self.diverged(loss));
            }
            if let Some(decay) = config.ema_decay(p.step + 1, steps_per_epoch) {
                self.trainer.update_average(decay);
            }
            let n = indices.len();
            let record = StepRecord {
                step: p.step + 1,
                epoch: p.epoch + 1,
                loss,
                accuracy: correct as f32 / n as f32,
                examples: n,
            };
            self.state.progress.step += 1;
            self.state.progress.step_in_epoch += 1;
            self.history.steps.push(record);
            loss_sum += f64::from(loss) * n as f64;
            right += correct;
            seen += n;
            let running = (
                loss_sum / seen as f64,
                right as f64 / seen as f64,
                seen as f64 / start.elapsed().as_secs_f64(),
            );
            obs.event(&Event::Step {
                record: &record,
                running,
            });
            self.journal(steps_per_epoch)?;
        }
        Ok((None, start.elapsed().as_secs_f64(), seen))
    }

    /// Every 1/[`JOURNAL_PER_EPOCH`] of an epoch but at its end (where the save follows),
    /// appends the steps since the last save or journal entry to `steps.jsonl`, unsynced and
    /// counted by no checkpoint (see [`crate::store`]): a page that follows this run from
    /// another process (`network serve DIR`) sees its curve move between checkpoints. By steps,
    /// not by time, so that the file operations of a run are the same at every run (the fault
    /// tests stop after each).
    fn journal(&mut self, steps_per_epoch: usize) -> Result<()> {
        let every = (steps_per_epoch / JOURNAL_PER_EPOCH).max(1);
        let at = self.state.progress.step_in_epoch;
        if !at.is_multiple_of(every) || at >= steps_per_epoch {
            return Ok(());
        }
        let lines = encode_lines(&self.history.steps[self.journaled..]);
        self.dir.journal_steps(&lines)?;
        self.journaled = self.history.steps.len();
        Ok(())
    }

    /// Evaluates the finished epoch (whose steps took `seconds` for `examples` in this
    /// process), records it, saves, redraws the curves.
    fn end_epoch(
        &mut self,
        config: &TrainConfig,
        seconds: f64,
        examples: usize,
        obs: &mut dyn Observer,
    ) -> Result<()> {
        let epoch = self.state.progress.epoch + 1;
        let last = epoch == config.epochs;
        // Validation every epoch with the image and its mirror; at the end with every view.
        let views = tta_views(if last { config.tta } else { 2 });
        let mut infer = self.trainer.infer();
        let validation = match self.validation.is_empty() {
            true => None,
            false => Some(infer.evaluate(&self.validation, &views)?),
        };
        let test = match last || config.test_every_epoch {
            true => Some(infer.evaluate(&self.data.test, &views)?),
            false => None,
        };
        let (train_loss, train_accuracy) = self.history.epoch_means(epoch);
        let record = EpochRecord {
            epoch,
            train_loss,
            train_accuracy,
            validation_accuracy: validation.as_ref().map(|e| e.accuracy),
            test_accuracy: test.as_ref().map(|e| e.accuracy),
            seconds,
            examples_per_second: examples as f64 / seconds.max(1e-9),
            peak_rss_mb: peak_rss_mb(),
        };
        self.history.epochs.push(record);
        self.state.progress.epoch += 1;
        self.state.progress.step_in_epoch = 0;
        obs.event(&Event::EpochEnded {
            record: &record,
            confusion: validation.or(test).as_ref().map(|e| &e.confusion[..]),
            epochs: config.epochs,
        });
        self.checkpoint(obs)
    }

    /// Saves, reports what the save wrote and how long it took, redraws the curves.
    fn checkpoint(&mut self, obs: &mut dyn Observer) -> Result<()> {
        let start = Instant::now();
        let bytes = self.save()?;
        obs.event(&Event::Saved {
            step: self.state.progress.step,
            bytes,
            seconds: start.elapsed().as_secs_f64(),
        });
        self.draw_curves(obs);
        Ok(())
    }

    /// The error of a non-finite loss at the next step: the weights are as the last step left
    /// them, and the last checkpoint is kept.
    fn diverged(&self, loss: f32) -> Error {
        let p = self.state.progress;
        let lr = self.state.settings.config.lr;
        let why = if p.step == 0 {
            "at the first step, before any update: the starting weights (the architecture, --init-scheme or --init) give non-finite outputs".to_string()
        } else {
            format!(
                "at step {} (epoch {}): training diverged; try a lower --lr than {lr}",
                p.step + 1,
                p.epoch + 1
            )
        };
        Error::Diverged(format!(
            "the loss became {loss} {why}. The last checkpoint in {} is kept.",
            self.dir.path().display()
        ))
    }

    /// Saves a generation with the history since the last save; returns the bytes written.
    fn save(&mut self) -> Result<u64> {
        let steps = encode_lines(&self.history.steps[self.saved.0..]);
        let epochs = encode_lines(&self.history.epochs[self.saved.1..]);
        let mut state = self.state.clone();
        state.progress.steps_bytes += steps.len() as u64;
        state.progress.epochs_bytes += epochs.len() as u64;
        let info = TensorInfo {
            run: Some(state.run.clone()),
            step: state.progress.step,
            normalizer: Some(state.settings.normalizer.clone()),
        };
        let t = &self.trainer;
        let pairs = |net: &Network| -> Pairs {
            let own = |l: &Layer| l.params().map(|(w, b)| (w.to_owned(), b.clone()));
            net.layers.iter().map(own).collect()
        };
        let model = serialize_pairs(&t.net, &[("", &pairs(t.model()))], &info)?;
        let momentum: Vec<_> = (t.net.layers.iter().zip(&t.sgd.velocity))
            .map(|(l, v)| l.params().map(|_| v.clone()))
            .collect();
        let trained = t.average.as_ref().map(|_| pairs(&t.net));
        let mut groups = vec![("", &momentum[..])];
        groups.extend(trained.as_deref().map(|w| (TRAINED, w)));
        let info = TensorInfo {
            normalizer: None,
            ..info
        };
        let optimizer = serialize_pairs(&t.net, &groups, &info)?;
        self.dir.save(&Snapshot {
            state: &state,
            model: &model,
            optimizer: &optimizer,
            steps: &steps,
            epochs: &epochs,
        })?;
        self.state = state;
        self.saved = (self.history.steps.len(), self.history.epochs.len());
        self.journaled = self.saved.0;
        Ok([model.len(), optimizer.len(), steps.len(), epochs.len()]
            .iter()
            .map(|&n| n as u64)
            .sum())
    }

    /// Redraws `curves.png`; a picture that cannot be drawn is a warning, not an error: the
    /// checkpoint, already saved, is what matters.
    fn draw_curves(&self, obs: &mut dyn Observer) {
        let curves = RunCurves {
            config: &self.state.settings.config,
            history: &self.history,
        };
        let path = self.dir.path().join(CURVES_FILE);
        let name = self.dir.path().display().to_string();
        if let Err(e) = pictures::draw_curves(&path, &[(name, curves)]) {
            obs.event(&Event::Warning(e.to_string()));
        }
    }
}

/// Fixes the trainer's epoch count to fit `budget` (see [`crate::sizing`]) and checks the
/// settings again with it.
fn size(
    trainer: &mut Trainer,
    data: &Cifar10,
    validation: &Dataset,
    budget: &TimeBudget,
) -> Result<Sizing> {
    let sizing = fit_epochs(trainer, &data.train, validation, &data.test, budget)?;
    trainer.config.epochs = sizing.epochs;
    trainer.config.time_budget = Some(budget.seconds);
    trainer.config.validate().map_err(|e| {
        Error::Usage(format!(
            "{e} (the epoch count --time-budget {:.0}s chose here)",
            budget.seconds
        ))
    })?;
    Ok(sizing)
}

/// Moves the validation images out of `data`'s training set: how many, and them; or, as the
/// error, how many were asked for when that would leave no training image.
fn split(
    data: &mut Cifar10,
    validation: Validation,
) -> std::result::Result<(usize, Dataset), usize> {
    let held = validation.count(data.train.len());
    match held < data.train.len() {
        true => Ok((held, data.train.hold_out(held))),
        false => Err(held),
    }
}

/// Checks a network against CIFAR-10 and its memory against the budget, before anything is
/// allocated.
fn check_fits(
    arch: &[LayerSpec],
    config: &TrainConfig,
    data: &Cifar10,
    options: &RunOptions,
) -> Result<()> {
    crate::arch::check_cifar10(arch)?;
    let per_worker = crate::train::per_worker(config.batch_size, config.threads);
    let bytes = (data.train.images.len() + data.test.images.len()) as u64;
    let average = config.ema > 0.0;
    Footprint::estimate(arch, config.threads, per_worker, bytes, average)?.check(
        options.memory_budget,
        "lower --batch-size or --threads, shrink the architecture, or raise --memory-budget",
    )
}

/// The data a resumed run trained on: from `given` (which must hold the same files) or from
/// where the run recorded it.
fn recorded_data(recorded: &crate::data::DataSource, given: Option<&Path>) -> Result<Cifar10> {
    let data = match (given, &recorded.dir) {
        (Some(dir), _) => Cifar10::load_or_sample(dir, false)?,
        (None, Some(dir)) => Cifar10::load_or_sample(dir, false).map_err(|e| {
            Error::Data(format!(
                "the run's data cannot be read ({e}): pass --data DIR with the same files"
            ))
        })?,
        (None, None) => Cifar10::sample(),
    };
    if data.describe().files != recorded.files {
        return Err(Error::Data(format!(
            "{} is not the data this run was trained on ({}): the files differ in names, sizes or first and last records",
            data.describe().name(),
            recorded.name()
        )));
    }
    Ok(data)
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;
    use crate::arch::seed_network;

    /// Without a budget the warm-up is bounded by the epoch count; with one, by the count the
    /// budget chooses (checked after sizing), not by the default count it replaces.
    #[test]
    fn a_budget_defers_the_warmup_bound_to_sizing() {
        let d = TrainConfig::default();
        let config = TrainConfig {
            warmup: d.epochs as f32 + 5.0,
            ..d
        };
        let mut new = NewRun {
            arch: seed_network(),
            config,
            init_from: None,
            time_budget: None,
        };
        let e = new.check().unwrap_err().to_string();
        assert!(e.contains("--warmup"), "{e}");
        new.time_budget = Some(TimeBudget {
            seconds: 900.0,
            since: Instant::now(),
        });
        new.check().unwrap();
        assert_eq!(new.settings().epochs, MAX_EPOCHS);
    }
}
