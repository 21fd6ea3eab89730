//! The data-parallel training step: the network, its optimiser, one workspace per thread, and
//! the choice of technique per layer and pass.

use std::time::Instant;

use kernels::Technique;
use ndarray::Zip;
use rand::SeedableRng;
use rand::rngs::StdRng;
use serde::{Deserialize, Serialize};

use crate::batch::{Augment, Normalizer, fill_batch};
use crate::config::{TechniqueChoice, TrainConfig};
use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::infer::{EVAL_CHUNK, Inference, Workers, argmax_row};
use crate::model::{Network, ParamPair, Plan, Workspace};
use crate::optim::Sgd;

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
                        .map_err(|e| Error::Checkpoint(format!("plan: {e}")))
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
                "the technique plan does not match the architecture".into(),
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
    /// The exponential moving average of the weights, evaluated instead of them, if the run
    /// keeps one (`config.ema`).
    pub average: Option<Network>,
    workers: Workers,
    /// Each worker's result of the current step (kept, so that a step allocates nothing).
    step_results: Vec<Result<(f32, usize)>>,
    grads: Vec<ParamPair>,
}

/// Examples each of `threads` workers holds for steps of `batch` examples: its share, and
/// at least a round of evaluation ([`EVAL_CHUNK`]).
pub fn per_worker(batch: usize, threads: usize) -> usize {
    batch.div_ceil(threads.max(1)).max(EVAL_CHUNK)
}

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
        normalizer.check("the normaliser")?;
        let per_worker = per_worker(config.batch_size, config.threads);
        let workers = Workers::new(&net, config.threads, per_worker)?;
        let sgd = Sgd::new(&net, config.lr, config.momentum, config.weight_decay);
        let grads = sgd.velocity.clone();
        let plan = Plan::uniform(&net, Technique::Im2colGemm);
        let step_results = (0..config.threads).map(|_| Ok((0.0, 0))).collect();
        let average = (config.ema > 0.0).then(|| net.clone());
        let mut trainer = Trainer {
            average,
            net,
            sgd,
            plan,
            normalizer,
            config,
            step_results,
            workers,
            grads,
        };
        trainer.plan = match (given, trainer.config.technique) {
            (Some(plan), _) => plan,
            (None, TechniqueChoice::Auto) => trainer.fastest_plan()?,
            (None, TechniqueChoice::One(t)) => Plan::uniform(&trainer.net, t),
        };
        Ok(trainer)
    }

    /// Times every technique on every layer and pass at the real per-worker batch, and keeps
    /// the fastest of each.
    pub fn fastest_plan(&mut self) -> Result<Plan> {
        let n = self.config.batch_size.div_ceil(self.config.threads);
        let ws = &mut self.workers.spaces[0];
        let net = &self.net;
        let mut rng = StdRng::seed_from_u64(0);
        ws.input_mut(n).mapv_inplace(|_| {
            rand_distr::Distribution::sample(&rand_distr::StandardNormal, &mut rng)
        });
        ws.labels_mut(n)
            .iter_mut()
            .enumerate()
            .for_each(|(i, l)| *l = i % net.classes());
        // A probe on a few examples first: a technique whose probe, scaled to the batch, is 3×
        // slower than the best so far is not timed (the naive loops take seconds at a large
        // batch). Then one untimed call at the batch and timed repeats.
        let probe = n.min(4);
        let time = |f: &mut dyn FnMut(usize) -> Result<()>, best: f64| -> Result<f64> {
            let start = Instant::now();
            f(probe)?;
            if start.elapsed().as_secs_f64() * (n / probe) as f64 > 3.0 * best {
                return Ok(f64::INFINITY);
            }
            f(n)?;
            let start = Instant::now();
            let mut runs = 0;
            while runs < 3 || (start.elapsed().as_secs_f64() < 0.02 && runs < 50) {
                f(n)?;
                runs += 1;
            }
            Ok(start.elapsed().as_secs_f64() / f64::from(runs))
        };
        let pick = |ws: &mut Workspace,
                    f: &dyn Fn(&mut Workspace, Technique, usize) -> Result<()>|
         -> Result<Technique> {
            let mut best = (Technique::Im2colGemm, f64::INFINITY);
            // The likely fastest first, so that the slow ones are cut short.
            for t in Technique::ALL.into_iter().rev() {
                let seconds = time(&mut |k| f(ws, t, k), best.1)?;
                if seconds < best.1 {
                    best = (t, seconds);
                }
            }
            // Run the winner last, so the buffers hold its results.
            f(ws, best.0, n)?;
            Ok(best.0)
        };
        let mut plan = Plan::uniform(net, Technique::Im2colGemm);
        for i in 0..net.layers.len() {
            plan.forward[i] = pick(ws, &|ws, t, k| ws.layer_forward(net, i, t, k))?;
        }
        plan.softmax = pick(ws, &|ws, t, k| {
            let p = Plan {
                softmax: t,
                ..plan.clone()
            };
            ws.loss(&p, k)?;
            ws.softmax_backward(&p, k)
        })?;
        for i in (0..net.layers.len()).rev() {
            plan.backward[i] = pick(ws, &|ws, t, k| ws.layer_backward(net, i, t, k, i > 0))?;
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
        let (loss, right) = self.gradients(data, indices, augments)?;
        if loss.is_finite() {
            self.sgd.step(&mut self.net, &self.grads, factor);
        }
        Ok((loss, right))
    }

    /// The mean gradient of the loss over the examples `indices` of `data` (augmented by
    /// `augments`), without an update: [`Trainer::step`] but the optimiser's work. Returns the
    /// mean loss and the number right.
    pub fn gradients(
        &mut self,
        data: &Dataset,
        indices: &[usize],
        augments: &[Augment],
    ) -> Result<(f32, usize)> {
        let b = indices.len();
        let per = b.div_ceil(self.workers.spaces.len());
        let (net, plan, norm) = (&self.net, &self.plan, &self.normalizer);
        let smoothing = self.config.label_smoothing;
        let used = b.div_ceil(per);
        let share = Share {
            net,
            plan,
            norm,
            data,
            augments,
            smoothing,
        };
        // One share (batch 1) runs on this thread alone: waking the pool costs more than it saves.
        self.workers
            .run(&mut self.step_results[..used], |k, ws, result| {
                *result = share.run(ws, &indices[k * per..b.min((k + 1) * per)], k * per);
            });
        let mut total = (0.0, 0);
        for r in &mut self.step_results[..used] {
            let (loss, right) = std::mem::replace(r, Ok((0.0, 0)))?;
            total = (total.0 + loss, total.1 + right);
        }
        self.mean_gradient(b, per, used);
        Ok((total.0 / b as f32, total.1))
    }

    /// The mean gradient of a batch of `b` split in `used` shares of `per`: each worker's is
    /// the mean over its share, weighted by that share, added in worker order so that a fixed
    /// thread count gives bit-identical runs.
    fn mean_gradient(&mut self, b: usize, per: usize, used: usize) {
        for (l, (gw, gb)) in self.grads.iter_mut().enumerate() {
            for (k, ws) in self.workers.spaces.iter().take(used).enumerate() {
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
    }

    /// Moves the average of the weights, if there is one, toward the weights: `a ← d·a +
    /// (1 − d)·w` for every weight and bias.
    pub fn update_average(&mut self, decay: f32) {
        let Some(average) = &mut self.average else {
            return;
        };
        for (a, l) in average.layers.iter_mut().zip(&self.net.layers) {
            if let (Some((mut aw, ab)), Some((w, b))) = (a.params_mut(), l.params()) {
                Zip::from(&mut aw)
                    .and(&w)
                    .for_each(|a, &v| *a = decay * *a + (1.0 - decay) * v);
                Zip::from(ab)
                    .and(b)
                    .for_each(|a, &v| *a = decay * *a + (1.0 - decay) * v);
            }
        }
    }

    /// The weights that are evaluated and saved as the model: the average if the run keeps
    /// one, else the trained weights.
    pub fn model(&self) -> &Network {
        self.average.as_ref().unwrap_or(&self.net)
    }

    /// Forward passes with the trainer's model ([`Trainer::model`]) and workers.
    pub fn infer(&mut self) -> Inference<'_> {
        // `model()` spelled out: it would borrow all of `self` beside `workers`.
        Inference {
            net: self.average.as_ref().unwrap_or(&self.net),
            plan: &self.plan,
            normalizer: &self.normalizer,
            workers: &mut self.workers,
        }
    }
}

/// What every worker's share of a step reads.
struct Share<'a> {
    net: &'a Network,
    plan: &'a Plan,
    norm: &'a Normalizer,
    data: &'a Dataset,
    augments: &'a [Augment],
    smoothing: f32,
}

impl Share<'_> {
    /// One worker's share of a step: fills its inputs with `idx` of the data (augmented by
    /// the entries of `augments` from `first`), runs forward and backward; returns the summed
    /// loss and the number right.
    fn run(&self, ws: &mut Workspace, idx: &[usize], first: usize) -> Result<(f32, usize)> {
        let n = idx.len();
        let aug = self.augments.get(first..first + n).unwrap_or(&[]);
        fill_batch(self.data, idx, aug, self.norm, ws.input_mut(n));
        ws.labels_mut(n)
            .iter_mut()
            .zip(idx)
            .for_each(|(l, &i)| *l = usize::from(self.data.labels[i]));
        ws.forward(self.net, self.plan, n)?;
        let mut loss = ws.loss(self.plan, n)?;
        ws.softmax_backward(self.plan, n)?;
        if self.smoothing > 0.0 {
            loss = ws.smooth_labels(self.smoothing, n, loss);
        }
        ws.backward_layers(self.net, self.plan, n, false)?;
        Ok((loss * n as f32, correct(ws, n)))
    }
}

fn correct(ws: &Workspace, n: usize) -> usize {
    let probs = ws.probs(n);
    (0..n)
        .filter(|&r| argmax_row(&probs, r) == ws.label(r))
        .count()
}

/// Total optimiser steps of a run: the schedule's horizon (`epochs` is bounded by
/// [`crate::config::MAX_EPOCHS`], so the product fits).
pub fn total_steps(config: &TrainConfig, train_len: usize) -> u64 {
    config.epochs as u64 * train_len.div_ceil(config.batch_size) as u64
}
