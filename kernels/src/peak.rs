//! The machine's limit: a loop of independent fused multiply-adds on registers only, in the
//! lanes of each instruction-set level. No load or store, so its speed is the core's
//! multiply-add throughput at that level, the denominator of every kernel's efficiency.

use crate::isa::Isa;
#[cfg(target_arch = "x86_64")]
use crate::lanes::{Avx2, Avx512};
use crate::lanes::{Lanes, Portable, vectorized};

/// Independent accumulators of the vector levels: enough to cover the multiply-add latency on
/// every pipe (4 cycles × 2 pipes on current x86 cores), few enough for 16 registers with the
/// two operands.
const CHAINS: usize = 12;
/// Independent accumulators of the portable lanes: each is two 4-lane registers on SSE2, whose
/// 16 registers hold 6 (and the two operands) without spilling to the stack; the 12 register
/// chains cover a separate multiply and add (8 cycles of latency on 2 pipes).
const PORTABLE_CHAINS: usize = 6;

/// Runs `iterations` rounds of 12 (`CHAINS`; 6 on the portable lanes) multiply-adds on vectors
/// of `isa`'s lanes; returns the floating-point operations done (2 per lane per multiply-add)
/// and a checksum that keeps the work from being optimised away. Each accumulator is a factor
/// of its own product (`acc × a + b`), so no product can be computed once outside the loop.
/// [`Isa::Portable`] multiplies and adds separately where the baseline has no fused
/// instruction.
///
/// # Panics
/// If this CPU cannot run `isa`.
pub fn fma_loop(isa: Isa, iterations: usize) -> (f64, f32) {
    let sum = match isa {
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => vectorized(
            isa,
            #[inline(always)]
            || chains::<Avx512, CHAINS>(iterations),
        ),
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => vectorized(
            isa,
            #[inline(always)]
            || chains::<Avx2, CHAINS>(iterations),
        ),
        _ => vectorized(isa, || chains::<Portable, PORTABLE_CHAINS>(iterations)),
    };
    let (lanes, chains) = match isa {
        Isa::Avx512 => (16, CHAINS),
        Isa::Avx2 => (8, CHAINS),
        Isa::Portable => (8, PORTABLE_CHAINS),
    };
    ((2 * chains * lanes * iterations) as f64, sum)
}

/// The loop of [`fma_loop`] in lanes `V`, on `C` accumulators.
#[inline(always)]
fn chains<V: Lanes, const C: usize>(iterations: usize) -> f32 {
    let (a, b) = (V::splat(0.999_999), V::splat(1e-7));
    let mut acc = [V::zero(); C];
    for (k, acc) in acc.iter_mut().enumerate() {
        *acc = V::splat(k as f32);
    }
    for _ in 0..iterations {
        for acc in &mut acc {
            *acc = b.mul_add(*acc, a);
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
    fn every_level_counts_its_operations_and_computes_its_chains() {
        let iterations = 1000;
        for isa in Isa::available() {
            let (flops, sum) = fma_loop(isa, iterations);
            let (lanes, chains) = match isa {
                Isa::Avx512 => (16, CHAINS),
                Isa::Avx2 => (8, CHAINS),
                Isa::Portable => (8, PORTABLE_CHAINS),
            };
            assert_eq!(flops, (2 * chains * lanes * iterations) as f64, "{isa}");
            // Chain k starts at k; after n rounds of acc × a + b it holds
            // aⁿ k + b (1 − aⁿ) / (1 − a).
            let (a, b) = (f64::from(0.999_999_f32), f64::from(1e-7_f32));
            let an = a.powi(iterations as i32);
            let want: f64 = (0..chains)
                .map(|k| an * k as f64 + b * (1.0 - an) / (1.0 - a))
                .sum::<f64>()
                * lanes as f64;
            let got = f64::from(sum);
            assert!(
                (got - want).abs() <= 1e-4 * want,
                "{isa}: {got} against {want}"
            );
        }
    }
}
