//! A vector of f32 lanes, the one primitive the direct convolution is written in, one type per
//! [`Isa`](crate::Isa) level: [`Avx512`] (16 lanes), [`Avx2`] (8 lanes with FMA) and
//! [`Portable`] (an 8-lane array the compiler vectorises for the baseline target).
//!
//! The direct kernels keep up to 25 of these live at once. LLVM's loop vectoriser does not
//! keep that many `[f32; 16]` accumulators in registers (measured: a 4-filter × 5-tap block of
//! arrays spilled and ran 50× slower), explicit vector registers do.
//!
//! **How the x86 types stay sound.** Their methods are `#[inline(always)]` wrappers around
//! intrinsics of their level. Values of [`Avx512`] and [`Avx2`] are made and used only by the
//! kernel instances that `direct`'s dispatch calls through a `#[target_feature]` function of
//! the same level, after [`Isa::checked`](crate::Isa::checked) found the CPU able to run it;
//! inlined there, the intrinsics compile to that level's instructions. Nothing else in the
//! crate names these types.

#[cfg(target_arch = "x86_64")]
mod avx2;
#[cfg(target_arch = "x86_64")]
mod avx512;
mod portable;

#[cfg(target_arch = "x86_64")]
pub(crate) use avx2::Avx2;
#[cfg(target_arch = "x86_64")]
pub(crate) use avx512::Avx512;
pub(crate) use portable::Portable;

/// `N` f32 lanes in one register.
pub(crate) trait Lanes: Copy {
    /// Lanes per vector.
    const N: usize;
    /// Every lane 0.
    fn zero() -> Self;
    /// Every lane `v`.
    fn splat(v: f32) -> Self;
    /// `self + a·b`, lane by lane (one fused multiply-add in the x86 lanes).
    fn mul_add(self, a: Self, b: Self) -> Self;
    /// The sum of the lanes.
    fn sum(self) -> f32;
    /// The larger of each pair of lanes. On a tie of zeros (+0 and −0) or a NaN the levels
    /// differ: the x86 lanes give `other`, the portable lanes `f32::max` (the number, not the
    /// NaN); callers pass operands for which that does not matter.
    fn max(self, other: Self) -> Self;
    /// Loads `N` lanes from `p`.
    ///
    /// # Safety
    /// `p .. p + N` must be readable f32s.
    unsafe fn load(p: *const f32) -> Self;
    /// Loads the first `N / 2` lanes from `lo` and the last `N / 2` from `hi`.
    ///
    /// # Safety
    /// `lo .. lo + N / 2` and `hi .. hi + N / 2` must be readable f32s.
    unsafe fn load_halves(lo: *const f32, hi: *const f32) -> Self;
    /// The last `N / 2` lanes moved to the front (the rest unspecified).
    fn upper(self) -> Self;
    /// Stores the first `n ≤ N` lanes at `p`.
    ///
    /// # Safety
    /// `p .. p + n` must be writable f32s that nothing else borrows.
    unsafe fn store(self, p: *mut f32, n: usize);
    /// The 2×2 max pooling of two rows of outputs, `self` above `bottom`: lane `k < N / 2` is
    /// the largest of `self[2k]`, `self[2k + 1]`, `bottom[2k]`, `bottom[2k + 1]` by the
    /// pooling's tie rule (taken in that order, a later value replaces the running maximum
    /// only if strictly greater, so a NaN replaces nothing and a first NaN stays); the other
    /// lanes unspecified. This default goes through memory; [`Avx2`] shuffles registers.
    #[inline(always)]
    fn pool_pairs(self, bottom: Self) -> Self {
        const { assert!(Self::N <= 16, "at most 16 lanes") };
        let (mut top, mut low, mut out) = ([0f32; 16], [0f32; 16], [0f32; 16]);
        // SAFETY: the arrays hold 16 ≥ N writable f32s of this frame.
        unsafe {
            self.store(top.as_mut_ptr(), Self::N);
            bottom.store(low.as_mut_ptr(), Self::N);
        }
        for (k, out) in out.iter_mut().enumerate().take(Self::N / 2) {
            let mut best = top[2 * k];
            for v in [top[2 * k + 1], low[2 * k], low[2 * k + 1]] {
                best = if v > best { v } else { best };
            }
            *out = best;
        }
        // SAFETY: out holds 16 ≥ N readable f32s.
        unsafe { Self::load(out.as_ptr()) }
    }
}

/// Runs `f` compiled for the instructions of `isa`: `f`, and the `#[inline(always)]` functions
/// it calls, are inlined into a `#[target_feature]` function of that level, so that the
/// compiler vectorises their loops for it (the direct pooling's selects, for instance, run 4×
/// faster on AVX-512 lanes than on the SSE2 baseline). Calls `f` as it is for
/// [`Isa::Portable`](crate::Isa::Portable).
///
/// # Panics
/// If this CPU cannot run `isa`.
#[inline(always)]
pub(crate) fn vectorized<R>(isa: crate::Isa, f: impl FnOnce() -> R) -> R {
    if let Err(e) = isa.checked() {
        panic!("{e}");
    }
    match isa {
        // SAFETY: checked above: this CPU has AVX-512F.
        #[cfg(target_arch = "x86_64")]
        crate::Isa::Avx512 => unsafe { on_avx512(f) },
        // SAFETY: checked above: this CPU has AVX2 and FMA.
        #[cfg(target_arch = "x86_64")]
        crate::Isa::Avx2 => unsafe { on_avx2(f) },
        _ => f(),
    }
}

/// `f()` compiled for the level kernels run at now ([`Isa::active`](crate::Isa::active)). The
/// naive loops run through it, so that the study can time what the compiler's vectoriser makes
/// of plain scalar loops at each vector width (the source stays scalar; only the instructions
/// the compiler may choose change). Pass a `move` closure: views captured by reference leave
/// their strides behind a pointer that every store may alias, so the compiler reloads them in
/// the innermost loop (measured: the naive convolution ran 2× slower that way).
#[inline(always)]
pub(crate) fn at_active_isa<R>(f: impl FnOnce() -> R) -> R {
    vectorized(crate::Isa::active(), f)
}

/// `f()` compiled for AVX-512F.
///
/// # Safety
/// The CPU must have AVX-512F.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn on_avx512<R>(f: impl FnOnce() -> R) -> R {
    f()
}

/// `f()` compiled for AVX2 and FMA.
///
/// # Safety
/// The CPU must have AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn on_avx2<R>(f: impl FnOnce() -> R) -> R {
    f()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Isa;

    /// Every window of four taps drawn from values with ties of ±0 and NaNs, at every level
    /// this CPU runs: `pool_pairs` keeps the first maximum in row-major order, bit for bit,
    /// as the pooling's tie rule says (the equivalence tests' random values rarely tie).
    #[test]
    fn pool_pairs_follow_the_tie_rule() {
        for isa in Isa::available() {
            match isa {
                #[cfg(target_arch = "x86_64")]
                Isa::Avx512 => vectorized(isa, check_pool_pairs::<Avx512>),
                #[cfg(target_arch = "x86_64")]
                Isa::Avx2 => vectorized(isa, check_pool_pairs::<Avx2>),
                _ => check_pool_pairs::<Portable>(),
            }
        }
    }

    /// [`pool_pairs_follow_the_tie_rule`] in lanes `V`.
    #[inline(always)]
    fn check_pool_pairs<V: Lanes>() {
        const VALUES: [f32; 6] = [-1.0, -0.0, 0.0, 1.0, f32::NAN, 2.0];
        let windows = VALUES.len().pow(4);
        let per_call = V::N / 2;
        for first in (0..windows).step_by(per_call) {
            let (mut top, mut bottom, mut expected) = ([0f32; 16], [0f32; 16], [0f32; 16]);
            for k in 0..per_call {
                let n = (first + k) % windows;
                let tap = |t: u32| VALUES[n / VALUES.len().pow(t) % VALUES.len()];
                [top[2 * k], top[2 * k + 1], bottom[2 * k], bottom[2 * k + 1]] =
                    [tap(0), tap(1), tap(2), tap(3)];
                let mut best = tap(0);
                for t in 1..4 {
                    best = if tap(t) > best { tap(t) } else { best };
                }
                expected[k] = best;
            }
            let mut got = [0f32; 16];
            // SAFETY: each array holds 16 ≥ N f32s.
            unsafe {
                V::load(top.as_ptr())
                    .pool_pairs(V::load(bottom.as_ptr()))
                    .store(got.as_mut_ptr(), per_call);
            }
            for k in 0..per_call {
                assert_eq!(
                    got[k].to_bits(),
                    expected[k].to_bits(),
                    "{} lanes, window {}: {:?} {:?}",
                    V::N,
                    first + k,
                    &top[2 * k..2 * k + 2],
                    &bottom[2 * k..2 * k + 2]
                );
            }
        }
    }
}
