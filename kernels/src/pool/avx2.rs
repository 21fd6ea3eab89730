//! The 2×2 window at stride 2, the seed's pooling, in AVX2 registers: 8 outputs per step,
//! the even and odd columns of two input rows split by shuffles. Compiled auto-vectorisation
//! of the same loops (`direct`'s `[f32; 2]` tiles) spent about 12 cycles an output on a Zen 3
//! core, gathering lanes one by one.
//!
//! Both functions follow the module's contract (tie rule, argmax as plane indices) and are
//! checked against the other techniques by the equivalence harness at level `avx2`.

use std::arch::x86_64::{
    __m256, __m256i, _CMP_GT_OQ, _mm256_add_epi32, _mm256_and_ps, _mm256_blendv_ps,
    _mm256_castpd_ps, _mm256_castps_pd, _mm256_castps_si256, _mm256_castsi256_ps, _mm256_cmp_ps,
    _mm256_cmpeq_epi32, _mm256_loadu_ps, _mm256_loadu_si256, _mm256_permute2f128_ps,
    _mm256_permute4x64_pd, _mm256_set1_epi32, _mm256_setr_epi32, _mm256_shuffle_ps,
    _mm256_storeu_ps, _mm256_storeu_si256, _mm256_unpackhi_ps, _mm256_unpacklo_ps,
};

use super::{keep_first_max, plane_index};
use crate::window::Geometry;

/// Outputs per vector step.
const STEP: usize = 8;

/// One plane of the 2×2, stride-2 max pooling of geometry `g`: x `[h, w]` → y `[h2, w2]` and
/// argmax `[h2, w2]` (flat indices into the plane), `h2 = h / 2`, `w2 = w / 2`.
///
/// # Safety
/// The CPU must have AVX2.
///
/// # Panics
/// If a slice is shorter than its shape says.
#[target_feature(enable = "avx2")]
pub(super) unsafe fn forward_plane(g: &Geometry, x: &[f32], y: &mut [f32], argmax: &mut [u32]) {
    let (h, w) = (g.h, g.w);
    let (h2, w2) = (h / 2, w / 2);
    assert!(x.len() >= 2 * h2 * w && y.len() >= h2 * w2 && argmax.len() >= h2 * w2);
    // The offsets of the four taps, in row-major order: later ones win only if greater.
    let taps = [
        _mm256_set1_epi32(0),
        _mm256_set1_epi32(1),
        _mm256_set1_epi32(w as i32),
        _mm256_set1_epi32(w as i32 + 1),
    ];
    let even = _mm256_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14);
    for i in 0..h2 {
        let rows = [&x[2 * i * w..][..w], &x[(2 * i + 1) * w..][..w]];
        let (y, argmax) = (&mut y[i * w2..][..w2], &mut argmax[i * w2..][..w2]);
        let mut j0 = 0;
        while j0 + STEP <= w2 {
            // SAFETY: columns 2·j0 .. 2·j0 + 16 ≤ 2·w2 ≤ w of each row, as the loop bound
            // says; loadu needs no alignment; the CPU has AVX2 (this function's contract).
            let ((e0, o0), (e1, o1)) = unsafe {
                (
                    split(rows[0].as_ptr().add(2 * j0)),
                    split(rows[1].as_ptr().add(2 * j0)),
                )
            };
            let (mut m, mut t) = (e0, taps[0]);
            for (v, tap) in [o0, e1, o1].into_iter().zip(&taps[1..]) {
                let greater = _mm256_cmp_ps::<_CMP_GT_OQ>(v, m);
                m = _mm256_blendv_ps(m, v, greater);
                t = select(t, *tap, greater);
            }
            let base = _mm256_set1_epi32((2 * i * w + 2 * j0) as i32);
            let index = _mm256_add_epi32(_mm256_add_epi32(base, even), t);
            // SAFETY: outputs j0 .. j0 + 8 ≤ w2 of row i of y and argmax (the slices above);
            // storeu needs no alignment.
            unsafe {
                _mm256_storeu_ps(y[j0..].as_mut_ptr(), m);
                _mm256_storeu_si256(argmax[j0..].as_mut_ptr().cast(), index);
            }
            j0 += STEP;
        }
        for j in j0..w2 {
            // The last outputs of a row one by one, by the module's tie rule.
            let (mut max, mut arg) = (rows[0][2 * j], plane_index(g, i, j, 0, 0));
            for (ki, kj) in [(0, 1), (1, 0), (1, 1)] {
                keep_first_max(
                    &mut max,
                    &mut arg,
                    rows[ki][2 * j + kj],
                    plane_index(g, i, j, ki, kj),
                );
            }
            (y[j], argmax[j]) = (max, arg);
        }
    }
}

/// The even and the odd columns of the 16 floats at `p`, each in order.
///
/// # Safety
/// `p .. p + 16` must be readable f32s; the CPU must have AVX2.
#[inline]
#[target_feature(enable = "avx2")]
unsafe fn split(p: *const f32) -> (__m256, __m256) {
    // SAFETY: the caller guarantees the 16 floats; loadu needs no alignment.
    let (a, b) = unsafe { (_mm256_loadu_ps(p), _mm256_loadu_ps(p.add(8))) };
    (
        in_order(_mm256_shuffle_ps::<0x88>(a, b)),
        in_order(_mm256_shuffle_ps::<0xDD>(a, b)),
    )
}

/// `[a0 a2 b0 b2 | a4 a6 b4 b6]` (a shuffle's order within each 128-bit half) as `[a0 a2 a4 a6
/// b0 b2 b4 b6]`: the middle 64-bit quarters swapped.
#[inline]
#[target_feature(enable = "avx2")]
fn in_order(v: __m256) -> __m256 {
    _mm256_castpd_ps(_mm256_permute4x64_pd::<0xD8>(_mm256_castps_pd(v)))
}

/// `b` in the lanes where `mask` is set, `a` elsewhere.
#[inline]
#[target_feature(enable = "avx2")]
fn select(a: __m256i, b: __m256i, mask: __m256) -> __m256i {
    _mm256_castps_si256(_mm256_blendv_ps(
        _mm256_castsi256_ps(a),
        _mm256_castsi256_ps(b),
        mask,
    ))
}

/// One plane of the 2×2, stride-2 backward pass: dx `[h, w]` (overwritten) holds each dy
/// `[h2, w2]` at its argmax and 0 elsewhere, written densely, row by row: each dy and argmax
/// lane doubled to the two columns of its window, kept where the argmax is that column.
/// The argmax must lie in its window (the caller's check): one outside it is dropped.
///
/// # Safety
/// The CPU must have AVX2.
///
/// # Panics
/// If a slice is shorter than its shape says.
#[target_feature(enable = "avx2")]
pub(super) unsafe fn backward_plane(
    dy: &[f32],
    argmax: &[u32],
    (h, w): (usize, usize),
    dx: &mut [f32],
) {
    let (h2, w2) = (h / 2, w / 2);
    assert!(dy.len() >= h2 * w2 && argmax.len() >= h2 * w2 && dx.len() >= h * w);
    let columns = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    for r in 0..h {
        let line = &mut dx[r * w..][..w];
        if r >= 2 * h2 {
            line.fill(0.0); // the last row of an odd height is in no window
            continue;
        }
        let i = r / 2;
        let (dy, argmax) = (&dy[i * w2..][..w2], &argmax[i * w2..][..w2]);
        let mut j0 = 0;
        while j0 + STEP <= w2 {
            // SAFETY: outputs j0 .. j0 + 8 ≤ w2 of dy and argmax row i, columns 2·j0 .. 2·j0 +
            // 16 ≤ w of dx row r (the slices above); unaligned loads and stores.
            unsafe {
                let d = _mm256_loadu_ps(dy[j0..].as_ptr());
                let a = _mm256_castsi256_ps(_mm256_loadu_si256(argmax[j0..].as_ptr().cast()));
                let first = _mm256_set1_epi32((r * w + 2 * j0) as i32);
                let [(d0, d1), (a0, a1)] = [doubled(d), doubled(a)];
                for (half, (d, a)) in [(d0, a0), (d1, a1)].into_iter().enumerate() {
                    let index = _mm256_add_epi32(
                        _mm256_add_epi32(first, _mm256_set1_epi32(8 * half as i32)),
                        columns,
                    );
                    let hit =
                        _mm256_castsi256_ps(_mm256_cmpeq_epi32(_mm256_castps_si256(a), index));
                    _mm256_storeu_ps(
                        line[2 * j0 + 8 * half..].as_mut_ptr(),
                        _mm256_and_ps(hit, d),
                    );
                }
            }
            j0 += STEP;
        }
        for j in j0..w2 {
            for kj in 0..2 {
                let hit = argmax[j] as usize == r * w + 2 * j + kj;
                line[2 * j + kj] = if hit { dy[j] } else { 0.0 };
            }
        }
        line[2 * w2..].fill(0.0); // the last column of an odd width is in no window
    }
}

/// Each lane of `v` twice, in order: lanes 0–3 doubled, then lanes 4–7 doubled.
#[inline]
#[target_feature(enable = "avx2")]
fn doubled(v: __m256) -> (__m256, __m256) {
    // [v0 v0 v1 v1 | v4 v4 v5 v5] and [v2 v2 v3 v3 | v6 v6 v7 v7]
    let (lo, hi) = (_mm256_unpacklo_ps(v, v), _mm256_unpackhi_ps(v, v));
    (
        _mm256_permute2f128_ps::<0x20>(lo, hi),
        _mm256_permute2f128_ps::<0x31>(lo, hi),
    )
}
