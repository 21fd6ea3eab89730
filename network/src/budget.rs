//! What a run will hold in memory, computed from the layer list before anything is allocated,
//! and the budget it must fit: parameters (weights, momentum, the step's gradient and each
//! worker's), each worker's activations and gradients, and its kernels' scratch (the largest
//! any technique asks: padded copies, unfolded windows, broadcast products), plus the data.

use crate::arch::{LayerSpec, resolved_pad};
use crate::config::show_bytes;
use crate::error::{Error, Result};
use crate::model::Network;

/// The bytes a run needs, by kind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Footprint {
    /// Weights, momentum terms and gradients.
    pub parameters: u64,
    /// Activations, their gradients and pooling's argmax, all workers.
    pub activations: u64,
    /// Kernel scratch, all workers.
    pub scratch: u64,
    /// The data set's bytes.
    pub data: u64,
}

impl Footprint {
    /// The sum.
    pub fn total(&self) -> u64 {
        self.parameters
            .saturating_add(self.activations)
            .saturating_add(self.scratch)
            .saturating_add(self.data)
    }

    /// Estimates the memory of training `spec` with `threads` workers of `capacity` examples
    /// each, on `data` bytes of images, keeping an `average` of the weights or not.
    /// Saturating: a huge figure stays huge.
    pub fn estimate(
        spec: &[LayerSpec],
        threads: usize,
        capacity: usize,
        data: u64,
        average: bool,
    ) -> Result<Self> {
        let shapes = Network::shapes(spec)?;
        let (cap, workers) = (capacity as u64, threads as u64);
        let volume = |s: &[usize]| s.iter().fold(1u64, |v, &d| v.saturating_mul(d as u64));
        let mut sum = Needs::default();
        for s in &shapes {
            // The activation and its gradient.
            sum.acts = sum.acts.saturating_add(volume(s).saturating_mul(2));
        }
        for (layer, input) in spec[1..spec.len() - 1].iter().zip(&shapes) {
            let n = layer_needs(layer, input)?;
            sum.params = sum.params.saturating_add(n.params);
            sum.acts = sum.acts.saturating_add(n.acts);
            sum.scratch = sum.scratch.saturating_add(n.scratch);
            sum.fixed = sum.fixed.saturating_add(n.fixed);
        }
        let f32s = |n: u64| n.saturating_mul(4);
        let scratch = sum.scratch.saturating_mul(cap).saturating_add(sum.fixed);
        // Weights, momentum, the step's mean gradient, each worker's gradient, and a save's two
        // serialised files; with an average, it, its serialised copy and the weights' in the
        // optimizer file.
        let sets = workers.saturating_add(if average { 8 } else { 5 });
        Ok(Footprint {
            parameters: f32s(sum.params.saturating_mul(sets)),
            activations: f32s(sum.acts.saturating_mul(cap).saturating_mul(workers)),
            scratch: f32s(scratch.saturating_mul(workers)),
            data,
        })
    }

    /// Refuses a footprint above `budget` bytes, with the figures and `hint`, what to change.
    pub fn check(&self, budget: u64, hint: &str) -> Result<()> {
        if self.total() <= budget {
            return Ok(());
        }
        Err(Error::Usage(format!(
            "this needs about {} (parameters {}, activations {}, kernel scratch {}, data {}), more than the memory budget of {}: {hint}",
            show_bytes(self.total()),
            show_bytes(self.parameters),
            show_bytes(self.activations),
            show_bytes(self.scratch),
            show_bytes(self.data),
            show_bytes(budget)
        )))
    }
}

/// What one layer needs, in f32s: parameters (once), and per worker: activations and scratch
/// per example, and scratch whatever the batch.
#[derive(Clone, Copy, Debug, Default)]
struct Needs {
    params: u64,
    acts: u64,
    scratch: u64,
    fixed: u64,
}

/// One layer's needs for an `input` of one example.
fn layer_needs(layer: &LayerSpec, input: &[usize]) -> Result<Needs> {
    let n = |v: usize| v as u64;
    let volume = input.iter().fold(1u64, |v, &d| v.saturating_mul(d as u64));
    Ok(match *layer {
        LayerSpec::Conv {
            filters,
            size,
            stride,
            pad,
            ..
        } => {
            let (c, h, w) = (n(input[0]), n(input[1]), n(input[2]));
            let p = n(resolved_pad(0, size, stride, pad)?);
            let (d, k) = (n(filters), n(size));
            let (hp, wp) = (h + 2 * p, w + 2 * p);
            let taps = c.saturating_mul(k * k);
            Needs {
                params: d.saturating_mul(taps).saturating_add(d),
                acts: 0,
                // Padded input and input gradient (and a direct copy), the axis-reduce
                // products, the gradient spread for the input-gradient convolution.
                scratch: c
                    .saturating_mul(hp * wp)
                    .saturating_mul(3)
                    .saturating_add(d.saturating_mul(taps))
                    .saturating_add(d.saturating_mul((hp + 2 * k) * (wp + 2 * k))),
                // One image's unfolded windows, and a weight gradient.
                fixed: taps
                    .saturating_mul(hp * wp)
                    .saturating_add(d.saturating_mul(taps)),
            }
        }
        LayerSpec::Pool { size, .. } => {
            let plane = n(input[1]).saturating_mul(n(input[2]));
            // The argmax, and one plane's unfolded windows.
            Needs {
                acts: volume,
                fixed: plane.saturating_mul(n(size * size)).saturating_add(plane),
                ..Needs::default()
            }
        }
        LayerSpec::Fc { outputs, .. } => Needs {
            params: n(outputs).saturating_mul(volume).saturating_add(n(outputs)),
            // The axis-reduce technique's broadcast products `[b, o, i]`.
            scratch: n(outputs).saturating_mul(volume),
            ..Needs::default()
        },
        _ => Needs::default(),
    })
}

/// The default memory budget: half the machine's physical memory (8 GiB where it cannot be
/// read).
pub fn default_budget() -> u64 {
    physical_memory().map_or(8 << 30, |m| m / 2)
}

/// The machine's memory in bytes, from `/proc/meminfo` (Linux).
fn physical_memory() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arch::seed_network;

    #[test]
    fn the_seed_network_fits_and_a_huge_batch_does_not() {
        let data = 60_000 * 3073;
        let small = Footprint::estimate(&seed_network(), 2, 100, data, true).unwrap();
        // Measured: a full-data run peaks at 304 MB (VmHWM); the estimate stays near it.
        assert!(
            small.total() > 250 << 20 && small.total() < 500 << 20,
            "{small:?}"
        );
        assert!(small.check(default_budget(), "hint").is_ok());
        let huge = Footprint::estimate(&seed_network(), 1024, 65_536, data, false).unwrap();
        let e = huge
            .check(16 << 30, "raise --memory-budget")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("raise --memory-budget") && e.contains("GB"),
            "{e}"
        );
    }
}
