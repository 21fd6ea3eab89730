//! The machine's limit: a loop of independent fused multiply-adds on registers only, in the
//! lanes of each instruction-set level. No load or store, so its speed is the core's
//! multiply-add throughput at that level, the denominator of every kernel's efficiency.

use crate::isa::Isa;
#[cfg(target_arch = "x86_64")]
use crate::lanes::{Avx2, Avx512};
use crate::lanes::{Lanes, Portable, vectorized};

/// Independent accumulators: enough to cover the multiply-add latency on every pipe (4 cycles
/// × 2 pipes on current x86 cores), few enough for 16 registers with the two operands.
const CHAINS: usize = 12;

/// Runs `iterations` rounds of 12 (`CHAINS`) multiply-adds on vectors of `isa`'s lanes; returns
/// the floating-point operations done (2 per lane per multiply-add) and a checksum that keeps
/// the work from being optimised away. [`Isa::Portable`] multiplies and adds separately
/// where the baseline has no fused instruction.
///
/// # Panics
/// If this CPU cannot run `isa`.
pub fn fma_loop(isa: Isa, iterations: usize) -> (f64, f32) {
    let sum = match isa {
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => vectorized(
            isa,
            #[inline(always)]
            || chains::<Avx512>(iterations),
        ),
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => vectorized(
            isa,
            #[inline(always)]
            || chains::<Avx2>(iterations),
        ),
        _ => vectorized(isa, || chains::<Portable>(iterations)),
    };
    let lanes = match isa {
        Isa::Avx512 => 16,
        Isa::Avx2 | Isa::Portable => 8,
    };
    ((2 * CHAINS * lanes * iterations) as f64, sum)
}

/// The loop of [`fma_loop`] in lanes `V`.
#[inline(always)]
fn chains<V: Lanes>(iterations: usize) -> f32 {
    let (a, b) = (V::splat(0.999_999), V::splat(1e-7));
    let mut acc = [V::zero(); CHAINS];
    for (k, acc) in acc.iter_mut().enumerate() {
        *acc = V::splat(k as f32);
    }
    for _ in 0..iterations {
        for acc in &mut acc {
            *acc = acc.mul_add(a, b);
        }
    }
    let mut sum = 0.0;
    for acc in acc {
        sum += acc.sum();
    }
    sum
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_level_counts_its_operations_and_computes_the_same_sums() {
        let per_lane: Vec<f32> = Isa::available()
            .map(|isa| {
                let (flops, sum) = fma_loop(isa, 100);
                let lanes = flops / (2 * CHAINS * 100) as f64;
                assert!(lanes == 8.0 || lanes == 16.0, "{isa}: {lanes} lanes");
                sum / lanes as f32
            })
            .collect();
        assert!(
            per_lane
                .iter()
                .all(|s| (s - per_lane[0]).abs() <= 1e-4 * s.abs()),
            "{per_lane:?}"
        );
    }
}
