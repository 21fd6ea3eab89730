//! 8 lanes in one 256-bit register, with fused multiply-add (AVX2 + FMA).

use std::arch::x86_64::{
    __m256, _mm_add_ps, _mm_add_ss, _mm_cvtss_f32, _mm_loadu_ps, _mm_movehl_ps, _mm_shuffle_ps,
    _mm_storeu_ps, _mm256_castpd_ps, _mm256_castps_pd, _mm256_castps128_ps256,
    _mm256_castps256_ps128, _mm256_cmpgt_epi32, _mm256_extractf128_ps, _mm256_fmadd_ps,
    _mm256_insertf128_ps, _mm256_loadu_ps, _mm256_maskstore_ps, _mm256_max_ps, _mm256_permute_ps,
    _mm256_permute4x64_pd, _mm256_set1_epi32, _mm256_set1_ps, _mm256_setr_epi32, _mm256_setzero_ps,
    _mm256_shuffle_ps, _mm256_storeu_ps,
};

use super::Lanes;

/// 8 lanes in one AVX register; made only where the CPU has AVX2 and FMA (see `lanes`).
#[derive(Clone, Copy)]
pub(crate) struct Avx2(__m256);

impl Lanes for Avx2 {
    const N: usize = 8;

    #[inline(always)]
    fn zero() -> Self {
        // SAFETY: runs only inside an avx2+fma kernel on a CPU that has them (see `lanes`).
        Self(unsafe { _mm256_setzero_ps() })
    }

    #[inline(always)]
    fn splat(v: f32) -> Self {
        // SAFETY: runs only inside an avx2+fma kernel on a CPU that has them (see `lanes`).
        Self(unsafe { _mm256_set1_ps(v) })
    }

    #[inline(always)]
    fn mul_add(self, a: Self, b: Self) -> Self {
        // SAFETY: runs only inside an avx2+fma kernel on a CPU that has them (see `lanes`).
        Self(unsafe { _mm256_fmadd_ps(a.0, b.0, self.0) })
    }

    #[inline(always)]
    fn sum(self) -> f32 {
        // SAFETY: runs only inside an avx2+fma kernel on a CPU that has them (see `lanes`);
        // the casts and shuffles only move lanes.
        unsafe {
            let s = _mm_add_ps(
                _mm256_castps256_ps128(self.0),
                _mm256_extractf128_ps::<1>(self.0),
            );
            let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
            _mm_cvtss_f32(_mm_add_ss(s, _mm_shuffle_ps::<1>(s, s)))
        }
    }

    #[inline(always)]
    fn max(self, other: Self) -> Self {
        // SAFETY: runs only inside an avx2+fma kernel on a CPU that has them (see `lanes`).
        Self(unsafe { _mm256_max_ps(self.0, other.0) })
    }

    #[inline(always)]
    unsafe fn load(p: *const f32) -> Self {
        // SAFETY: the caller guarantees 8 readable f32s at p; loadu needs no alignment; the
        // CPU has AVX (see `lanes`).
        Self(unsafe { _mm256_loadu_ps(p) })
    }

    #[inline(always)]
    unsafe fn load_halves(lo: *const f32, hi: *const f32) -> Self {
        // SAFETY: the caller guarantees 4 readable f32s at lo and at hi; the cast and the
        // insert only move bits; the CPU has AVX.
        unsafe {
            Self(_mm256_insertf128_ps::<1>(
                _mm256_castps128_ps256(_mm_loadu_ps(lo)),
                _mm_loadu_ps(hi),
            ))
        }
    }

    #[inline(always)]
    fn upper(self) -> Self {
        // SAFETY: runs only inside an avx2+fma kernel on a CPU that has them (see `lanes`).
        Self(unsafe { _mm256_castps128_ps256(_mm256_extractf128_ps::<1>(self.0)) })
    }

    #[inline(always)]
    unsafe fn store(self, p: *mut f32, n: usize) {
        debug_assert!(n <= Self::N);
        if n == Self::N {
            // SAFETY: the caller guarantees 8 writable f32s at p; the CPU has AVX.
            unsafe { _mm256_storeu_ps(p, self.0) }
        } else if n == Self::N / 2 {
            // SAFETY: the caller guarantees 4 writable f32s at p; the cast only moves bits.
            unsafe { _mm_storeu_ps(p, _mm256_castps256_ps128(self.0)) }
        } else {
            // SAFETY: the mask (lane l < n) enables the first n lanes only, which the caller
            // guarantees writable; masked-off lanes are neither written nor faulted on.
            unsafe {
                let lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
                let mask = _mm256_cmpgt_epi32(_mm256_set1_epi32(n as i32), lanes);
                _mm256_maskstore_ps(p, mask, self.0)
            }
        }
    }

    #[inline(always)]
    fn pool_pairs(self, bottom: Self) -> Self {
        // `_mm256_max_ps(v, m)` is `v > m ? v : m`: the tie rule's step, a later v second
        // to none. Each 128-bit half pools its own 4 columns.
        // SAFETY: runs only inside an avx2+fma kernel on a CPU that has them (see `lanes`);
        // the shuffles, permutes and casts only move lanes.
        unsafe {
            // [t0 t2 b0 b2 | t4 t6 b4 b6] and [t1 t3 b1 b3 | t5 t7 b5 b7].
            let even = _mm256_shuffle_ps::<0x88>(self.0, bottom.0);
            let odd = _mm256_shuffle_ps::<0xDD>(self.0, bottom.0);
            // Lanes 0, 1 (and 4, 5): the top pair's maximum, then the bottom pair's taps
            // under it ([b0 b2 t0 t2 | …]) in order.
            let top = _mm256_max_ps(odd, even);
            let m = _mm256_max_ps(_mm256_permute_ps::<0x4E>(even), top);
            let m = _mm256_max_ps(_mm256_permute_ps::<0x4E>(odd), m);
            // Lanes 0, 1, 4, 5 → 0, 1, 2, 3.
            Self(_mm256_castpd_ps(_mm256_permute4x64_pd::<0x08>(
                _mm256_castps_pd(m),
            )))
        }
    }
}
