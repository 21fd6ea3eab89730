//! Training: the data-parallel step, evaluation, the choice of techniques, checkpoints and
//! resuming.

use std::path::Path;
use std::time::Instant;

use kernels::Technique;
use ndarray::{Array2, Array3, ArrayView3, ArrayView4, ArrayViewMut4, Axis, Zip};
use rand::SeedableRng;
use rand::rngs::StdRng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::arch::LayerSpec;
use crate::batch::{Augment, Normalizer, fill_batch};
use crate::checkpoint::{TensorInfo, read_pairs, serialize_pairs, write_atomic};
use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::model::{Init, Network, ParamPair, Plan, Workspace};
use crate::optim::{Schedule, Sgd};

/// Every training hyper-parameter, as saved in `state.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    /// Passes over the training set.
    pub epochs: usize,
    /// Examples per optimiser step.
    pub batch_size: usize,
    /// Learning rate α.
    pub lr: f32,
    /// Momentum η.
    pub momentum: f32,
    /// Weight decay ε.
    pub weight_decay: f32,
    /// Learning-rate schedule.
    pub schedule: Schedule,
    /// Seed of every random draw.
    pub seed: u64,
    /// Worker threads.
    pub threads: usize,
    /// `auto` or a technique name.
    pub technique: String,
    /// Random flips and shifts.
    pub augment: bool,
    /// Weight initialisation.
    pub init: Init,
}

impl TrainConfig {
    /// Checks every value, naming the first that cannot work.
    pub fn validate(&self) -> Result<()> {
        let bad = |what: String| Err(Error::Usage(what));
        if self.epochs == 0 {
            return bad("--epochs must be at least 1".into());
        }
        if self.batch_size == 0 {
            return bad("--batch-size must be at least 1".into());
        }
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return bad(format!("--lr must be a positive number, not {}", self.lr));
        }
        if !(0.0..1.0).contains(&self.momentum) {
            return bad(format!(
                "--momentum must be in [0, 1), not {}",
                self.momentum
            ));
        }
        if !(self.weight_decay.is_finite() && self.weight_decay >= 0.0) {
            return bad(format!(
                "--weight-decay must be zero or positive, not {}",
                self.weight_decay
            ));
        }
        if self.threads == 0 {
            return bad("--threads must be at least 1".into());
        }
        if self.technique != "auto" {
            self.technique
                .parse::<Technique>()
                .map_err(|e| Error::Usage(format!("--technique: {e}, or auto")))?;
        }
        Ok(())
    }
}

/// Loss and accuracy of one optimiser step.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct StepRecord {
    /// Global step, from 1.
    pub step: u64,
    /// Epoch, from 1.
    pub epoch: usize,
    /// Mean loss over the batch.
    pub loss: f32,
    /// Fraction of the batch classified right.
    pub accuracy: f32,
    /// Examples in the batch.
    pub examples: usize,
}

/// One epoch's summary.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpochRecord {
    /// Epoch, from 1.
    pub epoch: usize,
    /// Mean training loss.
    pub train_loss: f32,
    /// Training accuracy (on augmented images, as they were seen).
    pub train_accuracy: f32,
    /// Test accuracy after the epoch.
    pub test_accuracy: f32,
    /// Wall time of the epoch's training steps.
    pub seconds: f64,
    /// Training examples per second.
    pub examples_per_second: f64,
    /// Peak resident memory of the process so far, in MB (Linux; absent elsewhere and in runs
    /// saved before it was recorded).
    #[serde(default)]
    pub peak_rss_mb: Option<f64>,
}

/// The process's peak resident memory so far, in MB, from `/proc/self/status` (`VmHWM`).
pub fn peak_rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// Loss and accuracy per step and per epoch.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct History {
    /// Every step.
    pub steps: Vec<StepRecord>,
    /// Every completed epoch.
    pub epochs: Vec<EpochRecord>,
}

impl History {
    /// Mean loss and accuracy over the steps of `epoch` (from 1), weighted by batch size, so
    /// that an epoch interrupted and resumed is summarised as if it had run in one go.
    pub fn epoch_means(&self, epoch: usize) -> (f32, f32) {
        let (mut loss, mut right, mut n) = (0.0f64, 0.0f64, 0usize);
        for s in self.steps.iter().filter(|s| s.epoch == epoch) {
            loss += f64::from(s.loss) * s.examples as f64;
            right += f64::from(s.accuracy) * s.examples as f64;
            n += s.examples;
        }
        let n = n.max(1) as f64;
        ((loss / n) as f32, (right / n) as f32)
    }
}

/// Technique names per layer, as saved.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PlanNames {
    /// Forward technique per layer.
    pub forward: Vec<String>,
    /// Backward technique per layer.
    pub backward: Vec<String>,
    /// Softmax technique.
    pub softmax: String,
}

impl PlanNames {
    /// The plan these names describe, for `net`.
    pub fn to_plan(&self, net: &Network) -> Result<Plan> {
        let parse = |v: &[String]| -> Result<Vec<Technique>> {
            v.iter()
                .map(|n| {
                    n.parse()
                        .map_err(|e| Error::Checkpoint(format!("state.json: {e}")))
                })
                .collect()
        };
        let plan = Plan {
            forward: parse(&self.forward)?,
            backward: parse(&self.backward)?,
            softmax: parse(std::slice::from_ref(&self.softmax))?[0],
        };
        if plan.forward.len() != net.layers.len() || plan.backward.len() != net.layers.len() {
            return Err(Error::Checkpoint(
                "state.json: the technique plan does not match the architecture".into(),
            ));
        }
        Ok(plan)
    }
}

impl From<&Plan> for PlanNames {
    fn from(p: &Plan) -> Self {
        let names = |v: &[Technique]| v.iter().map(|t| t.name().to_string()).collect();
        PlanNames {
            forward: names(&p.forward),
            backward: names(&p.backward),
            softmax: p.softmax.name().into(),
        }
    }
}

/// `state.json`: everything but the tensors.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct State {
    /// The layer list.
    pub arch: Vec<LayerSpec>,
    /// Hyper-parameters.
    pub config: TrainConfig,
    /// Input normalisation.
    pub normalizer: Normalizer,
    /// The epoch in progress (0-based): all before it are complete.
    pub epoch: usize,
    /// Steps of that epoch already taken (0 at an epoch boundary).
    pub step_in_epoch: usize,
    /// Optimiser steps taken in all.
    pub step: u64,
    /// The techniques in use.
    pub plan: PlanNames,
    /// Loss and accuracy so far.
    pub history: History,
}

/// What evaluation measures.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Evaluation {
    /// Fraction right.
    pub accuracy: f32,
    /// Mean cross-entropy.
    pub loss: f32,
    /// `confusion[true][predicted]` counts.
    pub confusion: Vec<Vec<u32>>,
}

impl Evaluation {
    /// Accuracy of each true class.
    pub fn per_class(&self) -> Vec<f32> {
        self.confusion
            .iter()
            .enumerate()
            .map(|(c, row)| row[c] as f32 / row.iter().sum::<u32>().max(1) as f32)
            .collect()
    }
}

/// The network, its optimiser and the buffers of one worker per thread.
pub struct Trainer {
    /// The network.
    pub net: Network,
    /// SGD and its momentum terms.
    pub sgd: Sgd,
    /// Techniques per layer.
    pub plan: Plan,
    /// Input normalisation.
    pub normalizer: Normalizer,
    /// Hyper-parameters.
    pub config: TrainConfig,
    workers: Vec<Workspace>,
    /// Each worker's result of the current step (kept, so that a step allocates nothing).
    step_results: Vec<Result<(f32, usize)>>,
    grads: Vec<ParamPair>,
    pool: rayon::ThreadPool,
}

/// Examples per worker when evaluating (no gradients: larger chunks are cheaper).
const EVAL_CHUNK: usize = 100;

impl Trainer {
    /// A trainer for `net` with zero momentum terms, choosing the techniques now.
    pub fn new(net: Network, normalizer: Normalizer, config: TrainConfig) -> Result<Self> {
        Self::with_plan(net, normalizer, config, None)
    }

    /// As [`Trainer::new`], with the techniques given (a resumed run keeps its own, so that it
    /// computes exactly what the uninterrupted run computed) or chosen now if `None`.
    pub fn with_plan(
        net: Network,
        normalizer: Normalizer,
        config: TrainConfig,
        given: Option<Plan>,
    ) -> Result<Self> {
        config.validate()?;
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(config.threads)
            .build()
            .map_err(|e| Error::Usage(format!("cannot start {} threads: {e}", config.threads)))?;
        let per_worker = config.batch_size.div_ceil(config.threads).max(EVAL_CHUNK);
        let workers = (0..config.threads)
            .map(|_| Workspace::new(&net, per_worker))
            .collect();
        let sgd = Sgd::new(&net, config.lr, config.momentum, config.weight_decay);
        let grads = sgd.velocity.clone();
        let plan = Plan::uniform(&net, Technique::Im2colGemm);
        let step_results = (0..config.threads).map(|_| Ok((0.0, 0))).collect();
        let mut trainer = Trainer {
            net,
            sgd,
            plan,
            normalizer,
            config,
            step_results,
            workers,
            grads,
            pool,
        };
        trainer.plan = match (given, trainer.config.technique.as_str()) {
            (Some(plan), _) => plan,
            (None, "auto") => trainer.fastest_plan()?,
            (None, name) => Plan::uniform(&trainer.net, name.parse().map_err(Error::Usage)?),
        };
        Ok(trainer)
    }

    /// Times every technique on every layer and pass at the real per-worker batch, and keeps
    /// the fastest of each.
    pub fn fastest_plan(&mut self) -> Result<Plan> {
        let n = self.config.batch_size.div_ceil(self.config.threads);
        let ws = &mut self.workers[0];
        let net = &self.net;
        let mut rng = StdRng::seed_from_u64(0);
        ws.input_mut(n).mapv_inplace(|_| {
            rand_distr::Distribution::sample(&rand_distr::StandardNormal, &mut rng)
        });
        ws.labels_mut(n)
            .iter_mut()
            .enumerate()
            .for_each(|(i, l)| *l = i % net.classes());
        let time = |f: &mut dyn FnMut() -> Result<()>| -> Result<f64> {
            f()?;
            let start = Instant::now();
            let mut runs = 0;
            while runs < 3 || (start.elapsed().as_secs_f64() < 0.02 && runs < 50) {
                f()?;
                runs += 1;
            }
            Ok(start.elapsed().as_secs_f64() / f64::from(runs))
        };
        let pick = |ws: &mut Workspace,
                    f: &dyn Fn(&mut Workspace, Technique) -> Result<()>|
         -> Result<Technique> {
            let mut best = (Technique::Im2colGemm, f64::INFINITY);
            for t in Technique::ALL {
                let seconds = time(&mut || f(ws, t))?;
                if seconds < best.1 {
                    best = (t, seconds);
                }
            }
            // Run the winner last, so the buffers hold its results.
            f(ws, best.0)?;
            Ok(best.0)
        };
        let mut plan = Plan::uniform(net, Technique::Im2colGemm);
        for i in 0..net.layers.len() {
            plan.forward[i] = pick(ws, &|ws, t| ws.layer_forward(net, i, t, n))?;
        }
        plan.softmax = pick(ws, &|ws, t| {
            let p = Plan {
                softmax: t,
                ..plan.clone()
            };
            ws.loss(&p, n)?;
            ws.softmax_backward(&p, n)
        })?;
        for i in (0..net.layers.len()).rev() {
            plan.backward[i] = pick(ws, &|ws, t| ws.layer_backward(net, i, t, n, i > 0))?;
        }
        Ok(plan)
    }

    /// One optimiser step on the examples `indices` of `data`, augmented by `augments` (empty:
    /// none), the learning rate scaled by `factor`. Returns the mean loss and the number right.
    pub fn step(
        &mut self,
        data: &Dataset,
        indices: &[usize],
        augments: &[Augment],
        factor: f32,
    ) -> Result<(f32, usize)> {
        let b = indices.len();
        let per = b.div_ceil(self.workers.len());
        let (net, plan, norm) = (&self.net, &self.plan, &self.normalizer);
        let results = &mut self.step_results;
        let used = b.div_ceil(per);
        if used == 1 {
            // One share (batch 1): run it here, since waking the pool costs more than it saves.
            results[0] = Self::worker_step(
                net,
                plan,
                norm,
                &mut self.workers[0],
                data,
                indices,
                augments,
                0,
            );
        } else {
            self.pool.install(|| {
                self.workers
                    .par_iter_mut()
                    .zip(results.par_iter_mut())
                    .zip(indices.par_chunks(per))
                    .enumerate()
                    .for_each(|(k, ((ws, result), idx))| {
                        *result =
                            Self::worker_step(net, plan, norm, ws, data, idx, augments, k * per);
                    })
            });
        }
        let mut total = (0.0, 0);
        for r in &mut self.step_results[..used] {
            let (loss, right) = std::mem::replace(r, Ok((0.0, 0)))?;
            total = (total.0 + loss, total.1 + right);
        }
        // The mean gradient: each worker's is the mean over its share, weighted by that share,
        // added in worker order so that a fixed thread count gives bit-identical runs.
        for (l, (gw, gb)) in self.grads.iter_mut().enumerate() {
            for (k, ws) in self.workers.iter().take(used).enumerate() {
                let share = (b.min((k + 1) * per) - k * per) as f32 / b as f32;
                let (w, bias) = &ws.dparams[l];
                if k == 0 {
                    Zip::from(&mut *gw).and(w).for_each(|g, &v| *g = share * v);
                    Zip::from(&mut *gb)
                        .and(bias)
                        .for_each(|g, &v| *g = share * v);
                } else {
                    Zip::from(&mut *gw).and(w).for_each(|g, &v| *g += share * v);
                    Zip::from(&mut *gb)
                        .and(bias)
                        .for_each(|g, &v| *g += share * v);
                }
            }
        }
        let loss = total.0 / b as f32;
        if loss.is_finite() {
            self.sgd.step(&mut self.net, &self.grads, factor);
        }
        Ok((loss, total.1))
    }

    /// One worker's share of a step: fills its inputs with `idx` of `data` (augmented by the
    /// entries of `augments` from `first`), runs forward and backward; returns the summed loss
    /// and the number right.
    fn worker_step(
        net: &Network,
        plan: &Plan,
        norm: &Normalizer,
        ws: &mut Workspace,
        data: &Dataset,
        idx: &[usize],
        augments: &[Augment],
        first: usize,
    ) -> Result<(f32, usize)> {
        let n = idx.len();
        let aug = augments.get(first..first + n).unwrap_or(&[]);
        fill_batch(data, idx, aug, norm, ws.input_mut(n));
        ws.labels_mut(n)
            .iter_mut()
            .zip(idx)
            .for_each(|(l, &i)| *l = usize::from(data.labels[i]));
        ws.forward(net, plan, n)?;
        let loss = ws.loss(plan, n)?;
        ws.backward(net, plan, n)?;
        Ok((loss * n as f32, correct(ws, n)))
    }

    /// Forward passes over all of `data`: accuracy, loss and the confusion matrix. Each image's
    /// prediction averages the probabilities of the image and of its mirror image (the
    /// training augmentation flips images, so both are views the network knows).
    pub fn evaluate(&mut self, data: &Dataset) -> Result<Evaluation> {
        let classes = self.net.classes();
        let mut confusion = vec![vec![0u32; classes]; classes];
        let mut loss = 0.0f64;
        let chunk = EVAL_CHUNK * self.workers.len();
        let mirrored = vec![
            Augment {
                flip: true,
                shift: (0, 0)
            };
            chunk
        ];
        let all: Vec<usize> = (0..data.len()).collect();
        for indices in all.chunks(chunk) {
            let plain = self.probabilities(data, indices)?;
            let flipped =
                self.augmented_probabilities(data, indices, &mirrored[..indices.len()])?;
            let probs = (plain + flipped) * 0.5;
            for (r, &i) in indices.iter().enumerate() {
                let truth = usize::from(data.labels[i]);
                loss -= f64::from(probs[[r, truth]].max(f32::MIN_POSITIVE)).ln();
                confusion[truth][argmax_row(&probs.view(), r)] += 1;
            }
        }
        let right: u32 = (0..classes).map(|c| confusion[c][c]).sum();
        Ok(Evaluation {
            accuracy: right as f32 / data.len().max(1) as f32,
            loss: (loss / data.len().max(1) as f64) as f32,
            confusion,
        })
    }

    /// Class probabilities of `indices` of `data` (no augmentation), `[n, classes]`.
    pub fn probabilities(&mut self, data: &Dataset, indices: &[usize]) -> Result<Array2<f32>> {
        self.augmented_probabilities(data, indices, &[])
    }

    /// Class probabilities of `indices` of `data`, each augmented by the matching entry of
    /// `augments` (none when it is empty), `[n, classes]`. Each worker fills its own share.
    fn augmented_probabilities(
        &mut self,
        data: &Dataset,
        indices: &[usize],
        augments: &[Augment],
    ) -> Result<Array2<f32>> {
        let norm = self.normalizer.clone();
        self.forward_probabilities(indices.len(), &|range, x| {
            let aug = augments.get(range.clone()).unwrap_or(&[]);
            fill_batch(data, &indices[range], aug, &norm, x);
        })
    }

    /// Class probabilities of normalised `inputs` `[n, c, h, w]`, `[n, classes]`.
    pub fn probabilities_of(&mut self, inputs: ArrayView4<f32>) -> Result<Array2<f32>> {
        self.forward_probabilities(inputs.shape()[0], &|range, mut x| {
            x.assign(&inputs.slice(ndarray::s![range, .., .., ..]));
        })
    }

    /// Class probabilities of `n` examples, `[n, classes]`: the examples are split among the
    /// workers, each filling its inputs with `fill(range of examples, input slots)` and running
    /// its share as one batch.
    fn forward_probabilities(
        &mut self,
        n: usize,
        fill: &(dyn Fn(std::ops::Range<usize>, ArrayViewMut4<f32>) + Sync),
    ) -> Result<Array2<f32>> {
        let mut out = Array2::zeros((n, self.net.classes()));
        let workers = self.workers.len();
        let round = self.workers[0].capacity() * workers;
        let (net, plan) = (&self.net, &self.plan);
        for (start, mut rows) in (0..n)
            .step_by(round)
            .zip(out.axis_chunks_iter_mut(Axis(0), round))
        {
            let per = rows.nrows().div_ceil(workers);
            let shares: Vec<_> = rows
                .axis_chunks_iter_mut(Axis(0), per)
                .enumerate()
                .map(|(k, p)| (start + k * per, p))
                .collect();
            let run = |ws: &mut Workspace, (first, mut p): (usize, ndarray::ArrayViewMut2<f32>)| {
                let m = p.nrows();
                fill(first..first + m, ws.input_mut(m));
                ws.labels_mut(m).fill(0);
                ws.forward(net, plan, m)?;
                ws.loss(plan, m)?;
                p.assign(&ws.probs(m));
                Ok(())
            };
            if shares.len() == 1 {
                // One share: run it here, as in Trainer::step.
                let share = shares.into_iter().next().expect("one share");
                run(&mut self.workers[0], share)?;
                continue;
            }
            let done: Vec<Result<()>> = self.pool.install(|| {
                self.workers
                    .par_iter_mut()
                    .zip(shares)
                    .map(|(ws, share)| run(ws, share))
                    .collect()
            });
            done.into_iter().collect::<Result<()>>()?;
        }
        Ok(out)
    }

    /// The gradient of logit `class` with respect to a normalised input `[c, h, w]`: the
    /// backward pass started from that score alone, with the training kernels; the weights are
    /// left as they are.
    pub fn logit_gradient(&mut self, input: ArrayView3<f32>, class: usize) -> Result<Array3<f32>> {
        let (net, plan) = (&self.net, &self.plan);
        let ws = &mut self.workers[0];
        ws.input_mut(1).index_axis_mut(Axis(0), 0).assign(&input);
        ws.forward(net, plan, 1)?;
        let mut seed = ws.logits_grad_mut(1);
        seed.fill(0.0);
        seed[[0, class]] = 1.0;
        ws.backward_layers(net, plan, 1, true)?;
        Ok(ws.input_grad(1).index_axis(Axis(0), 0).to_owned())
    }

    /// Writes `model.safetensors`, `optimizer.safetensors` and `state.json` into `dir`, each
    /// atomically; the tensors' metadata carry the step, so that a set mixed by a crash
    /// between two renames is refused on resume rather than used.
    pub fn save(&self, dir: &Path, state: &State) -> Result<()> {
        std::fs::create_dir_all(dir)
            .map_err(|e| Error::Io(format!("cannot create {}: {e}", dir.display())))?;
        let weights = self
            .net
            .layers
            .iter()
            .map(|l| l.params().map(|(w, b)| (w.to_owned(), b.clone())));
        let info = TensorInfo {
            step: state.step,
            normalizer: Some(self.normalizer.clone()),
        };
        let model = serialize_pairs(&self.net, weights, &info)?;
        let momentum = self
            .net
            .layers
            .iter()
            .zip(&self.sgd.velocity)
            .map(|(l, v)| l.params().map(|_| v.clone()));
        let optimizer = serialize_pairs(
            &self.net,
            momentum,
            &TensorInfo {
                normalizer: None,
                ..info
            },
        )?;
        write_atomic(&dir.join("model.safetensors"), &model)?;
        write_atomic(&dir.join("optimizer.safetensors"), &optimizer)?;
        let json = serde_json::to_vec_pretty(state).expect("serialisable");
        write_atomic(&dir.join("state.json"), &json)?;
        let history = serde_json::to_vec_pretty(&state.history).expect("serialisable");
        write_atomic(&dir.join("history.json"), &history)
    }

    /// Replaces the weights with those of a safetensors file (names and shapes of the
    /// PyTorch `state_dict()`); returns the file's metadata.
    pub fn load_weights(&mut self, path: &Path) -> Result<Option<TensorInfo>> {
        let (pairs, meta) = read_pairs(&self.net, path)?;
        for (layer, pair) in self.net.layers.iter_mut().zip(pairs) {
            if let (Some((mut w, b)), Some((nw, nb))) = (layer.params_mut(), pair) {
                w.assign(&nw);
                b.assign(&nb);
            }
        }
        Ok(meta)
    }

    /// Replaces the momentum terms with those of `optimizer.safetensors`.
    pub fn load_momentum(&mut self, path: &Path) -> Result<Option<TensorInfo>> {
        let (pairs, meta) = read_pairs(&self.net, path)?;
        for (v, pair) in self.sgd.velocity.iter_mut().zip(pairs) {
            if let Some(pair) = pair {
                *v = pair;
            }
        }
        Ok(meta)
    }
}

fn argmax_row(probs: &ndarray::ArrayView2<f32>, r: usize) -> usize {
    probs
        .row(r)
        .iter()
        .enumerate()
        .fold((0, f32::NEG_INFINITY), |best, (c, &p)| {
            if p > best.1 { (c, p) } else { best }
        })
        .0
}

fn correct(ws: &Workspace, n: usize) -> usize {
    let probs = ws.probs(n);
    (0..n)
        .filter(|&r| argmax_row(&probs, r) == ws.label(r))
        .count()
}

/// Reads `state.json` of a run directory.
pub fn read_state(dir: &Path) -> Result<State> {
    let path = dir.join("state.json");
    let text = std::fs::read_to_string(&path)
        .map_err(|e| Error::Checkpoint(format!("cannot read {}: {e}", path.display())))?;
    serde_json::from_str(&text).map_err(|e| {
        Error::Checkpoint(format!("{} is not a valid state file: {e}", path.display()))
    })
}

/// Checks that a tensor file's `step` metadata matches the state's.
pub fn check_step(info: &Option<TensorInfo>, state: &State, path: &Path) -> Result<()> {
    match info.as_ref().map(|i| i.step) {
        Some(step) if step == state.step => Ok(()),
        found => Err(Error::Checkpoint(format!(
            "{} is from step {}, but state.json is at step {}: the checkpoint is inconsistent",
            path.display(),
            found.map_or("unknown".into(), |s| s.to_string()),
            state.step
        ))),
    }
}

/// Total optimiser steps of a run: the schedule's horizon.
pub fn total_steps(config: &TrainConfig, train_len: usize) -> u64 {
    (config.epochs * train_len.div_ceil(config.batch_size)) as u64
}
