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
    /// each, on `data` bytes of images. Saturating: a huge figure stays huge.
    pub fn estimate(
        spec: &[LayerSpec],
        threads: usize,
        capacity: usize,
        data: u64,
    ) -> Result<Self> {
        let shapes = Network::shapes(spec)?;
        let (cap, workers) = (capacity as u64, threads as u64);
        let volume = |s: &[usize]| s.iter().fold(1u64, |v, &d| v.saturating_mul(d as u64));
        let (mut params, mut acts, mut scratch) = (0u64, 0u64, 0u64);
        for s in &shapes {
            // The activation and its gradient.
            acts = acts.saturating_add(volume(s).saturating_mul(2));
        }
        for (layer, input) in spec[1..spec.len() - 1].iter().zip(&shapes) {
            let (p, a, sc) = layer_needs(layer, input)?;
            params = params.saturating_add(p);
            acts = acts.saturating_add(a);
            scratch = scratch.saturating_add(sc);
        }
        let f32s = |n: u64| n.saturating_mul(4);
        Ok(Footprint {
            // Weights, momentum, the step's mean gradient, and each worker's gradient.
            parameters: f32s(params.saturating_mul(workers.saturating_add(3))),
            activations: f32s(acts.saturating_mul(cap).saturating_mul(workers)),
            scratch: f32s(scratch.saturating_mul(cap).saturating_mul(workers)),
            data,
        })
    }

    /// Refuses a footprint above `budget` bytes, with the figures.
    pub fn check(&self, budget: u64) -> Result<()> {
        if self.total() <= budget {
            return Ok(());
        }
        Err(Error::Usage(format!(
            "the run needs about {} (parameters {}, activations {}, kernel scratch {}, data {}), more than the memory budget of {}: lower --batch-size or --threads, shrink the architecture, or raise --memory-budget",
            show_bytes(self.total()),
            show_bytes(self.parameters),
            show_bytes(self.activations),
            show_bytes(self.scratch),
            show_bytes(self.data),
            show_bytes(budget)
        )))
    }
}

/// One layer's parameters (once), and its extra activations and scratch per example, for an
/// `input` of one example.
fn layer_needs(layer: &LayerSpec, input: &[usize]) -> Result<(u64, u64, u64)> {
    let n = |v: usize| v as u64;
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
            let padded = c.saturating_mul(h + 2 * p).saturating_mul(w + 2 * p);
            let taps = c.saturating_mul(k * k);
            let weights = d.saturating_mul(taps).saturating_add(d);
            // Padded input and input gradient, one image's unfolded windows (at most every
            // tap of every padded position), broadcast products and the spread gradient.
            let per_example = padded
                .saturating_mul(3)
                .saturating_add(taps.saturating_mul((h + 2 * p) * (w + 2 * p)))
                .saturating_add(d.saturating_mul(taps))
                .saturating_add(d.saturating_mul((h + 2 * k + 2 * p) * (w + 2 * k + 2 * p)));
            (weights, 0, per_example)
        }
        LayerSpec::Pool { size, .. } => {
            let plane = n(input[1]).saturating_mul(n(input[2]));
            let all = n(input[0]).saturating_mul(plane);
            // Argmax, and the unfolded windows of a plane.
            (
                0,
                all,
                all.saturating_add(plane.saturating_mul(n(size * size))),
            )
        }
        LayerSpec::Fc { outputs, .. } => {
            let i = input.iter().fold(1u64, |v, &d| v.saturating_mul(d as u64));
            let weights = n(outputs).saturating_mul(i).saturating_add(n(outputs));
            // The axis-reduce technique's broadcast products `[b, o, i]`.
            (weights, 0, n(outputs).saturating_mul(i))
        }
        _ => (0, 0, 0),
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
        let small = Footprint::estimate(&seed_network(), 2, 100, data).unwrap();
        assert!(small.total() < 400 << 20, "{small:?}");
        assert!(small.check(default_budget()).is_ok());
        let huge = Footprint::estimate(&seed_network(), 1024, 65_536, data).unwrap();
        let e = huge.check(16 << 30).unwrap_err().to_string();
        assert!(e.contains("--memory-budget") && e.contains("GB"), "{e}");
    }
}
