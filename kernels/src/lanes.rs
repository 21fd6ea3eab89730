//! A vector of f32 lanes, the one primitive the direct convolution is written in: AVX-512
//! registers when the build targets them (`-C target-cpu=native` on an AVX-512 machine), else
//! plain arrays that the compiler vectorises as the target allows.
//!
//! The direct kernels keep 16–25 of these live at once. LLVM's loop vectoriser does not keep
//! that many `[f32; 16]` accumulators in registers (measured: a 4-filter × 5-tap block of
//! arrays spilled and ran 50× slower), explicit vector registers do.

/// `N` f32 lanes in one register.
pub(crate) trait Lanes: Copy {
    /// Lanes per vector.
    const N: usize;
    /// Every lane 0.
    fn zero() -> Self;
    /// Every lane `v`.
    fn splat(v: f32) -> Self;
    /// `self + a·b`, lane by lane (one fused multiply-add in the AVX-512 lanes).
    fn mul_add(self, a: Self, b: Self) -> Self;
    /// The sum of the lanes.
    fn sum(self) -> f32;
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

#[cfg(not(all(target_arch = "x86_64", target_feature = "avx512f")))]
pub(crate) use Portable as Native;
#[cfg(all(target_arch = "x86_64", target_feature = "avx512f"))]
pub(crate) use avx512::Avx512 as Native;

#[cfg(all(target_arch = "x86_64", target_feature = "avx512f"))]
mod avx512 {
    use std::arch::x86_64::{
        __m512, _mm256_castps_pd, _mm256_loadu_ps, _mm512_castpd_ps, _mm512_castpd256_pd512,
        _mm512_castps_pd, _mm512_castps256_ps512, _mm512_extractf64x4_pd, _mm512_fmadd_ps,
        _mm512_insertf64x4, _mm512_loadu_ps, _mm512_mask_storeu_ps, _mm512_reduce_add_ps,
        _mm512_set1_ps, _mm512_setzero_ps, _mm512_storeu_ps,
    };

    use super::Lanes;

    /// 16 lanes in one AVX-512 register.
    #[derive(Clone, Copy)]
    pub(crate) struct Avx512(__m512);

    impl Lanes for Avx512 {
        const N: usize = 16;

        #[inline(always)]
        fn zero() -> Self {
            // SAFETY: this module is compiled only when the build enables avx512f.
            Self(unsafe { _mm512_setzero_ps() })
        }

        #[inline(always)]
        fn splat(v: f32) -> Self {
            // SAFETY: this module is compiled only when the build enables avx512f.
            Self(unsafe { _mm512_set1_ps(v) })
        }

        #[inline(always)]
        fn mul_add(self, a: Self, b: Self) -> Self {
            // SAFETY: this module is compiled only when the build enables avx512f.
            Self(unsafe { _mm512_fmadd_ps(a.0, b.0, self.0) })
        }

        #[inline(always)]
        fn sum(self) -> f32 {
            // SAFETY: this module is compiled only when the build enables avx512f.
            unsafe { _mm512_reduce_add_ps(self.0) }
        }

        #[inline(always)]
        unsafe fn load(p: *const f32) -> Self {
            // SAFETY: the caller guarantees 16 readable f32s at p; loadu needs no alignment.
            Self(unsafe { _mm512_loadu_ps(p) })
        }

        #[inline(always)]
        unsafe fn load_halves(lo: *const f32, hi: *const f32) -> Self {
            // SAFETY: the caller guarantees 8 readable f32s at lo and at hi; the casts and
            // the 256-bit insert (AVX-512F, as f64 lanes) only move bits.
            unsafe {
                let lo = _mm512_castps256_ps512(_mm256_loadu_ps(lo));
                let hi = _mm256_castps_pd(_mm256_loadu_ps(hi));
                Self(_mm512_castpd_ps(_mm512_insertf64x4::<1>(
                    _mm512_castps_pd(lo),
                    hi,
                )))
            }
        }

        #[inline(always)]
        fn upper(self) -> Self {
            // SAFETY: this module is compiled only when the build enables avx512f.
            Self(unsafe {
                _mm512_castpd_ps(_mm512_castpd256_pd512(_mm512_extractf64x4_pd::<1>(
                    _mm512_castps_pd(self.0),
                )))
            })
        }

        #[inline(always)]
        unsafe fn store(self, p: *mut f32, n: usize) {
            debug_assert!(n <= Self::N);
            if n == Self::N {
                // SAFETY: the caller guarantees 16 writable f32s at p.
                unsafe { _mm512_storeu_ps(p, self.0) }
            } else {
                // SAFETY: the mask enables the first n lanes only, which the caller guarantees
                // writable; masked-off lanes are neither written nor faulted on.
                unsafe { _mm512_mask_storeu_ps(p, ((1u32 << n) - 1) as u16, self.0) }
            }
        }
    }
}

/// 8 lanes in an array, for targets without AVX-512; the compiler vectorises each operation.
#[derive(Clone, Copy)]
#[cfg_attr(
    all(target_arch = "x86_64", target_feature = "avx512f"),
    allow(dead_code)
)]
pub(crate) struct Portable([f32; 8]);

impl Lanes for Portable {
    const N: usize = 8;

    #[inline(always)]
    fn zero() -> Self {
        Self([0.0; 8])
    }

    #[inline(always)]
    fn splat(v: f32) -> Self {
        Self([v; 8])
    }

    #[inline(always)]
    fn mul_add(self, a: Self, b: Self) -> Self {
        Self(std::array::from_fn(|l| self.0[l] + a.0[l] * b.0[l]))
    }

    #[inline(always)]
    fn sum(self) -> f32 {
        self.0.iter().sum()
    }

    #[inline(always)]
    unsafe fn load(p: *const f32) -> Self {
        // SAFETY: the caller guarantees 8 readable f32s at p; read_unaligned needs no alignment.
        Self(unsafe { p.cast::<[f32; 8]>().read_unaligned() })
    }

    #[inline(always)]
    unsafe fn load_halves(lo: *const f32, hi: *const f32) -> Self {
        // SAFETY: the caller guarantees 4 readable f32s at lo and at hi.
        let (lo, hi) = unsafe {
            (
                lo.cast::<[f32; 4]>().read_unaligned(),
                hi.cast::<[f32; 4]>().read_unaligned(),
            )
        };
        Self(std::array::from_fn(
            |l| if l < 4 { lo[l] } else { hi[l - 4] },
        ))
    }

    #[inline(always)]
    fn upper(self) -> Self {
        Self(std::array::from_fn(|l| self.0[(l + 4) % 8]))
    }

    #[inline(always)]
    unsafe fn store(self, p: *mut f32, n: usize) {
        debug_assert!(n <= Self::N);
        // SAFETY: the caller guarantees n writable f32s at p, not borrowed elsewhere.
        unsafe { std::ptr::copy_nonoverlapping(self.0.as_ptr(), p, n) }
    }
}
