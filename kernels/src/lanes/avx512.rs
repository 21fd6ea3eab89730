//! 16 lanes in one AVX-512 register (AVX-512F: fused multiply-add, masked stores).

use std::arch::x86_64::{
    __m512, _mm256_castps_pd, _mm256_loadu_ps, _mm512_castpd_ps, _mm512_castpd256_pd512,
    _mm512_castps_pd, _mm512_castps256_ps512, _mm512_extractf64x4_pd, _mm512_fmadd_ps,
    _mm512_insertf64x4, _mm512_loadu_ps, _mm512_mask_storeu_ps, _mm512_max_ps,
    _mm512_reduce_add_ps, _mm512_set1_ps, _mm512_setzero_ps, _mm512_storeu_ps,
};

use super::Lanes;

/// 16 lanes in one AVX-512 register; made only where the CPU has AVX-512F (see `lanes`).
#[derive(Clone, Copy)]
pub(crate) struct Avx512(__m512);

impl Lanes for Avx512 {
    const N: usize = 16;

    #[inline(always)]
    fn zero() -> Self {
        // SAFETY: runs only inside an avx512f kernel on a CPU that has it (see `lanes`).
        Self(unsafe { _mm512_setzero_ps() })
    }

    #[inline(always)]
    fn splat(v: f32) -> Self {
        // SAFETY: runs only inside an avx512f kernel on a CPU that has it (see `lanes`).
        Self(unsafe { _mm512_set1_ps(v) })
    }

    #[inline(always)]
    fn mul_add(self, a: Self, b: Self) -> Self {
        // SAFETY: runs only inside an avx512f kernel on a CPU that has it (see `lanes`).
        Self(unsafe { _mm512_fmadd_ps(a.0, b.0, self.0) })
    }

    #[inline(always)]
    fn sum(self) -> f32 {
        // SAFETY: runs only inside an avx512f kernel on a CPU that has it (see `lanes`).
        unsafe { _mm512_reduce_add_ps(self.0) }
    }

    #[inline(always)]
    fn max(self, other: Self) -> Self {
        // SAFETY: runs only inside an avx512f kernel on a CPU that has it (see `lanes`).
        Self(unsafe { _mm512_max_ps(self.0, other.0) })
    }

    #[inline(always)]
    unsafe fn load(p: *const f32) -> Self {
        // SAFETY: the caller guarantees 16 readable f32s at p; loadu needs no alignment; the
        // CPU has avx512f (see `lanes`).
        Self(unsafe { _mm512_loadu_ps(p) })
    }

    #[inline(always)]
    unsafe fn load_halves(lo: *const f32, hi: *const f32) -> Self {
        // SAFETY: the caller guarantees 8 readable f32s at lo and at hi; the casts and the
        // 256-bit insert (AVX-512F, as f64 lanes) only move bits; the CPU has avx512f.
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
        // SAFETY: runs only inside an avx512f kernel on a CPU that has it (see `lanes`).
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
            // SAFETY: the caller guarantees 16 writable f32s at p; the CPU has avx512f.
            unsafe { _mm512_storeu_ps(p, self.0) }
        } else {
            // SAFETY: the mask enables the first n lanes only, which the caller guarantees
            // writable; masked-off lanes are neither written nor faulted on.
            unsafe { _mm512_mask_storeu_ps(p, ((1u32 << n) - 1) as u16, self.0) }
        }
    }
}
