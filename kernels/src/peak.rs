//! The machine's limit: a loop of independent floating-point operations on registers only, in
//! the lanes of each instruction-set level. No load or store, so its speed is the core's
//! arithmetic throughput at that level, the denominator of every kernel's efficiency.

use crate::isa::Isa;
#[cfg(target_arch = "x86_64")]
use crate::lanes::{Avx2, Avx512, Lanes, vectorized};

/// Independent accumulators of the vector levels: enough to cover the multiply-add latency on
/// every pipe (4 cycles × 2 pipes on current x86 cores), few enough for 16 registers with the
/// two operands.
#[cfg(target_arch = "x86_64")]
const CHAINS: usize = 12;
/// Independent chains of each kind (multiply, add) on the portable level, 4 lanes each: one
/// SSE2 register, so the 12 chains and 3 constants fill 15 of its 16 registers. 6 of each kind
/// in flight cover a 3-cycle latency on 2 pipes (AMD) or a 4-cycle one on 2 pipes shared by
/// both kinds (Intel).
const PORTABLE_CHAINS: usize = 6;
/// Floating-point operations of one portable round: 2 kinds × `PORTABLE_CHAINS` × 4 lanes × 2
/// operations.
const PORTABLE_FLOPS: usize = 16 * PORTABLE_CHAINS;

/// Runs `iterations` rounds of independent operations on vectors of `isa`'s lanes; returns the
/// floating-point operations done and a checksum that keeps the work from being optimised away.
///
/// - The x86 levels: 12 (`CHAINS`) fused multiply-adds (2 operations per lane each), each
///   accumulator a factor of its own product (`acc × a + b`), so no product can be computed
///   once outside the loop.
/// - [`Isa::Portable`]: the baseline has no fused instruction (SSE2). The loop runs separate
///   streams, as the pipes do, each chain waiting on one operation's latency, not on a
///   multiply and an add: 6 chains that multiply by `a` then by `1 / a`, and 6 that add `b`
///   then subtract it, so their values stay near their start (no overflow, no subnormal); 2
///   operations per lane per chain and round.
///
/// # Panics
/// If this CPU cannot run `isa`.
pub fn fma_loop(isa: Isa, iterations: usize) -> (f64, f32) {
    if let Err(e) = isa.checked() {
        panic!("{e}");
    }
    let (sum, flops) = match isa {
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => (
            vectorized(
                isa,
                #[inline(always)]
                || chains::<Avx512, CHAINS>(iterations),
            ),
            2 * CHAINS * 16,
        ),
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => (
            vectorized(
                isa,
                #[inline(always)]
                || chains::<Avx2, CHAINS>(iterations),
            ),
            2 * CHAINS * 8,
        ),
        // Portable, the one level `checked` lets through elsewhere.
        _ => (streams(iterations), PORTABLE_FLOPS),
    };
    ((flops * iterations) as f64, sum)
}

/// The loop of [`fma_loop`] in lanes `V`, on `C` accumulators.
#[cfg(target_arch = "x86_64")]
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

/// The portable loop of [`fma_loop`]: `PORTABLE_CHAINS` multiply chains and as many add chains
/// of 4 lanes, chain `k` of each kind starting at `k + 1`; returns the sum of every lane.
///
/// On x86-64 the chains are SSE2 registers, the baseline every x86-64 CPU has. Written as
/// arrays, LLVM kept each lane a separate scalar across the loop, spilled them and shuffled
/// them in and out of registers every round (measured: 7 GFLOP/s on a core whose portable
/// kernels ran at 31), so the array form below serves only other architectures, unmeasured.
fn streams(iterations: usize) -> f32 {
    // Hidden from the optimiser, which may otherwise see through the constant rounds.
    let (a, b) = (
        std::hint::black_box(0.999_9_f32),
        std::hint::black_box(0.25_f32),
    );
    // `1 / a` rounded: `x × a × (1 / a)` stays within a few units in the last place of `x`.
    let inverse = 1.0 / a;
    let mut products: [Quad; PORTABLE_CHAINS] =
        std::array::from_fn(|k| Quad::splat((k + 1) as f32));
    let mut sums = products;
    let (a, inverse, b) = (Quad::splat(a), Quad::splat(inverse), Quad::splat(b));
    for _ in 0..iterations {
        for p in &mut products {
            *p = p.mul(a).mul(inverse);
        }
        for s in &mut sums {
            *s = s.add(b).sub(b);
        }
    }
    products.iter().chain(&sums).map(|q| q.sum()).sum()
}

/// 4 lanes in one SSE2 register.
#[cfg(target_arch = "x86_64")]
#[derive(Clone, Copy)]
struct Quad(std::arch::x86_64::__m128);

#[cfg(target_arch = "x86_64")]
impl Quad {
    #[inline(always)]
    fn splat(v: f32) -> Self {
        // SAFETY: SSE2 is in every x86-64 CPU; the intrinsic only computes on registers.
        Self(unsafe { std::arch::x86_64::_mm_set1_ps(v) })
    }

    #[inline(always)]
    fn mul(self, o: Self) -> Self {
        // SAFETY: SSE2 is in every x86-64 CPU; the intrinsic only computes on registers.
        Self(unsafe { std::arch::x86_64::_mm_mul_ps(self.0, o.0) })
    }

    #[inline(always)]
    fn add(self, o: Self) -> Self {
        // SAFETY: SSE2 is in every x86-64 CPU; the intrinsic only computes on registers.
        Self(unsafe { std::arch::x86_64::_mm_add_ps(self.0, o.0) })
    }

    #[inline(always)]
    fn sub(self, o: Self) -> Self {
        // SAFETY: SSE2 is in every x86-64 CPU; the intrinsic only computes on registers.
        Self(unsafe { std::arch::x86_64::_mm_sub_ps(self.0, o.0) })
    }

    fn sum(self) -> f32 {
        let mut lanes = [0.0_f32; 4];
        // SAFETY: `lanes` is 4 writable f32s; storeu needs no alignment; SSE2 is in every
        // x86-64 CPU.
        unsafe { std::arch::x86_64::_mm_storeu_ps(lanes.as_mut_ptr(), self.0) };
        lanes.iter().sum()
    }
}

/// 4 lanes in an array, elsewhere.
#[cfg(not(target_arch = "x86_64"))]
#[derive(Clone, Copy)]
struct Quad([f32; 4]);

#[cfg(not(target_arch = "x86_64"))]
impl Quad {
    #[inline(always)]
    fn splat(v: f32) -> Self {
        Self([v; 4])
    }

    #[inline(always)]
    fn mul(self, o: Self) -> Self {
        Self(std::array::from_fn(|l| self.0[l] * o.0[l]))
    }

    #[inline(always)]
    fn add(self, o: Self) -> Self {
        Self(std::array::from_fn(|l| self.0[l] + o.0[l]))
    }

    #[inline(always)]
    fn sub(self, o: Self) -> Self {
        Self(std::array::from_fn(|l| self.0[l] - o.0[l]))
    }

    fn sum(self) -> f32 {
        self.0.iter().sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_level_counts_its_operations_and_computes_its_chains() {
        let iterations = 1000;
        for isa in Isa::available() {
            let (flops, sum) = fma_loop(isa, iterations);
            let got = f64::from(sum);
            if isa == Isa::Portable {
                // 2 operations on each of 4 lanes of 2 × 6 chains per round; every chain
                // stays near its start k + 1.
                assert_eq!(flops, (2 * 4 * 2 * PORTABLE_CHAINS * iterations) as f64);
                let want = 2.0 * 4.0 * (1..=PORTABLE_CHAINS).sum::<usize>() as f64;
                assert!((got - want).abs() <= 1e-3 * want, "{got} against {want}");
                continue;
            }
            #[cfg(target_arch = "x86_64")]
            {
                let lanes = if isa == Isa::Avx512 { 16 } else { 8 };
                assert_eq!(flops, (2 * CHAINS * lanes * iterations) as f64, "{isa}");
                // Chain k starts at k; after n rounds of acc × a + b it holds
                // aⁿ k + b (1 − aⁿ) / (1 − a).
                let (a, b) = (f64::from(0.999_999_f32), f64::from(1e-7_f32));
                let an = a.powi(iterations as i32);
                let want: f64 = (0..CHAINS)
                    .map(|k| an * k as f64 + b * (1.0 - an) / (1.0 - a))
                    .sum::<f64>()
                    * lanes as f64;
                assert!(
                    (got - want).abs() <= 1e-4 * want,
                    "{isa}: {got} against {want}"
                );
            }
        }
    }
}
