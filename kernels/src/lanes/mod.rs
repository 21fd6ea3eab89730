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
