//! SGD with momentum and weight decay, the seed's rule: `Δw(n) = −α(∂E/∂w + ε·w) + η·Δw(n−1)`,
//! `∂E/∂w` being the mean over the batch; decay on weights, not on biases. Per-layer rates
//! override the global ones.

use ndarray::{Array1, ArrayD, Zip};
use serde::{Deserialize, Serialize};

use crate::model::{Network, ParamPair};

/// The learning-rate schedule over the whole run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Schedule {
    /// The same rate throughout.
    Constant,
    /// ×0.1 after half the steps, ×0.01 after three quarters.
    Step,
    /// Half a cosine from the rate down to 0.
    Cosine,
}

impl Schedule {
    /// The factor on the learning rate at `step` of `total`.
    pub fn factor(self, step: u64, total: u64) -> f32 {
        let progress = step as f64 / total.max(1) as f64;
        match self {
            Schedule::Constant => 1.0,
            Schedule::Step if progress >= 0.75 => 0.01,
            Schedule::Step if progress >= 0.5 => 0.1,
            Schedule::Step => 1.0,
            Schedule::Cosine => (0.5 * (1.0 + (std::f64::consts::PI * progress).cos())) as f32,
        }
    }
}

/// Global rates and the momentum terms Δw(n−1) of every layer with parameters.
#[derive(Clone, Debug)]
pub struct Sgd {
    /// Learning rate α.
    pub lr: f32,
    /// Momentum η.
    pub momentum: f32,
    /// Weight decay ε.
    pub decay: f32,
    /// Δw and Δb of each layer (empty for layers without parameters).
    pub velocity: Vec<ParamPair>,
}

impl Sgd {
    /// Zero momentum terms for `net`.
    pub fn new(net: &Network, lr: f32, momentum: f32, decay: f32) -> Self {
        let velocity = net
            .layers
            .iter()
            .map(|l| match l.params() {
                Some((w, b)) => (ArrayD::zeros(w.raw_dim()), Array1::zeros(b.len())),
                None => (ArrayD::zeros(ndarray::IxDyn(&[0])), Array1::zeros(0)),
            })
            .collect();
        Sgd {
            lr,
            momentum,
            decay,
            velocity,
        }
    }

    /// Replaces the momentum terms with `pairs` (one per layer, `None` for layers without
    /// parameters, shapes already checked).
    pub fn set_velocity(&mut self, pairs: Vec<Option<ParamPair>>) {
        for (v, pair) in self.velocity.iter_mut().zip(pairs) {
            if let Some(pair) = pair {
                *v = pair;
            }
        }
    }

    /// One update from mean gradients `grads` (per layer, as the workspace's), the learning
    /// rate scaled by the schedule's `factor`.
    pub fn step(&mut self, net: &mut Network, grads: &[ParamPair], factor: f32) {
        for ((layer, (vw, vb)), (gw, gb)) in
            net.layers.iter_mut().zip(&mut self.velocity).zip(grads)
        {
            let rates = layer.rates().unwrap_or_default();
            let Some((mut w, b)) = layer.params_mut() else {
                continue;
            };
            let lr = rates.lr.unwrap_or(self.lr) * factor;
            let momentum = rates.momentum.unwrap_or(self.momentum);
            let decay = rates.decay.unwrap_or(self.decay);
            Zip::from(&mut w).and(vw).and(gw).for_each(|w, v, &g| {
                *v = momentum * *v - lr * (g + decay * *w);
                *w += *v;
            });
            Zip::from(b).and(vb).and(gb).for_each(|b, v, &g| {
                *v = momentum * *v - lr * g;
                *b += *v;
            });
        }
    }
}
