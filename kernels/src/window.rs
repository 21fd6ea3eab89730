//! The sliding window shared by convolution and pooling: the one place that knows the
//! output-size formula, plus the unfold (im2col) and fold (col2im) steps built on it.

use std::ops::Range;

use ndarray::{ArrayView2, ArrayView3, ArrayView4, ArrayViewMut3, ArrayViewMut4, s};

use crate::error::{Result, expect_nonempty, invalid};

/// Output length along one spatial axis: `(n + 2p − k) / s + 1`, rounded down as in the seed;
/// `None` when the window is larger than the padded input or the stride is 0.
pub(crate) fn output_len(n: usize, k: usize, stride: usize, pad: usize) -> Option<usize> {
    let padded = n + 2 * pad;
    (stride > 0 && k > 0 && k <= padded).then(|| (padded - k) / stride + 1)
}

/// A window of `kh × kw` taps sliding with `stride` over `[b, c, h, w]` padded by `pad`
/// zeros on each side, giving `[b, d, h2, w2]` (pooling has `d = c`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Geometry {
    pub b: usize,
    pub c: usize,
    pub h: usize,
    pub w: usize,
    pub d: usize,
    pub kh: usize,
    pub kw: usize,
    pub stride: usize,
    pub pad: usize,
    pub h2: usize,
    pub w2: usize,
}

impl Geometry {
    /// Checks the hyper-parameters against input shape `x` `[b, c, h, w]`.
    pub fn new(
        layer: &'static str,
        x: &[usize],
        d: usize,
        (kh, kw): (usize, usize),
        stride: usize,
        pad: usize,
    ) -> Result<Self> {
        let &[b, c, h, w] = x else {
            return Err(invalid(
                layer,
                format!("x has shape {x:?}, expected 4 axes [b, c, h, w]"),
            ));
        };
        expect_nonempty(layer, "x", x)?;
        if stride == 0 {
            return Err(invalid(layer, "stride is 0, expected at least 1"));
        }
        if kh == 0 || kw == 0 || d == 0 {
            return Err(invalid(
                layer,
                format!("window {kh}×{kw} with {d} output channels has an empty dimension"),
            ));
        }
        let (Some(h2), Some(w2)) = (
            output_len(h, kh, stride, pad),
            output_len(w, kw, stride, pad),
        ) else {
            return Err(invalid(
                layer,
                format!(
                    "window {kh}×{kw} is larger than the padded input {}×{} (x {x:?}, padding {pad})",
                    h + 2 * pad,
                    w + 2 * pad
                ),
            ));
        };
        Ok(Self {
            b,
            c,
            h,
            w,
            d,
            kh,
            kw,
            stride,
            pad,
            h2,
            w2,
        })
    }

    pub fn output_shape(&self) -> [usize; 4] {
        [self.b, self.d, self.h2, self.w2]
    }

    /// Rows of the padded input under output row `i`.
    pub fn rows(&self, i: usize) -> Range<usize> {
        i * self.stride..i * self.stride + self.kh
    }

    /// Columns of the padded input under output column `j`.
    pub fn cols(&self, j: usize) -> Range<usize> {
        j * self.stride..j * self.stride + self.kw
    }

    /// Input row read by tap `ki` of output row `i`; `None` inside the padding.
    pub fn in_row(&self, i: usize, ki: usize) -> Option<usize> {
        (i * self.stride + ki)
            .checked_sub(self.pad)
            .filter(|&r| r < self.h)
    }

    /// Input column read by tap `kj` of output column `j`; `None` inside the padding.
    pub fn in_col(&self, j: usize, kj: usize) -> Option<usize> {
        (j * self.stride + kj)
            .checked_sub(self.pad)
            .filter(|&c| c < self.w)
    }

    /// Elements of the zero-padded copy of x, `[b, c, h + 2p, w + 2p]`.
    pub fn padded_len(&self) -> usize {
        self.b * self.c * (self.h + 2 * self.pad) * (self.w + 2 * self.pad)
    }

    /// Elements of one image's unfolded matrix, `[c·kh·kw, h2·w2]`.
    pub fn cols_len(&self) -> usize {
        self.c * self.kh * self.kw * self.h2 * self.w2
    }

    /// The same window over a single plane (one channel of one image): pooling unfolds planes.
    pub fn plane(&self) -> Self {
        Self {
            b: 1,
            c: 1,
            d: 1,
            ..*self
        }
    }

    fn padded_shape(&self) -> (usize, usize, usize, usize) {
        (self.b, self.c, self.h + 2 * self.pad, self.w + 2 * self.pad)
    }

    /// Writes x `[b, c, h, w]` into `buf` with `pad` zeros around each plane.
    pub fn pad<'a>(&self, x: ArrayView4<f32>, buf: &'a mut [f32]) -> ArrayView4<'a, f32> {
        let p = self.pad;
        self.zeroed_padded(buf)
            .slice_mut(s![.., .., p..p + self.h, p..p + self.w])
            .assign(&x);
        ArrayView4::from_shape(self.padded_shape(), buf).expect("sized by padded_len")
    }

    /// A zero-filled padded tensor in `buf`, for gradients accumulated over padded windows.
    pub fn zeroed_padded<'a>(&self, buf: &'a mut [f32]) -> ArrayViewMut4<'a, f32> {
        let mut padded = ArrayViewMut4::from_shape(self.padded_shape(), buf)
            .expect("scratch part sized by padded_len");
        padded.fill(0.0);
        padded
    }

    /// The inside of a padded gradient, copied into dx `[b, c, h, w]`.
    pub fn unpad(&self, padded: ArrayView4<f32>, mut dx: ArrayViewMut4<f32>) {
        let p = self.pad;
        dx.assign(&padded.slice(s![.., .., p..p + self.h, p..p + self.w]));
    }

    /// Output indices along an axis of length `n` whose tap `k` reads inside the input
    /// (not the padding): `o·s + k − p ∈ [0, n)`, a contiguous range.
    fn inside(&self, n: usize, out_len: usize, k: usize) -> Range<usize> {
        let s = self.stride;
        let first = self.pad.saturating_sub(k).div_ceil(s);
        let end = if n + self.pad > k {
            ((n - 1 + self.pad - k) / s + 1).min(out_len)
        } else {
            0
        };
        first.min(end)..end
    }

    /// Unfolds one image x `[c, h, w]` into `cols` `[c·kh·kw, h2·w2]`: row `(c, ki, kj)`
    /// holds that tap of every window, zeros where the window covers padding. Works on
    /// contiguous rows (an x in another layout is copied first).
    pub fn im2col<'a>(&self, x: ArrayView3<f32>, cols: &'a mut [f32]) -> ArrayView2<'a, f32> {
        let x = x.as_standard_layout();
        let x = x.as_slice().expect("standard layout is contiguous");
        let (w2, s) = (self.w2, self.stride);
        let hw2 = self.h2 * w2;
        let len = self.c * self.kh * self.kw * hw2;
        // With stride 1 and as many output as input columns ("same" padding), a tap's rows
        // are as far apart in x as in cols: the whole tap is one copy, after which the
        // columns that fell into the padding are zeroed. Otherwise, one copy per row.
        let one_copy = s == 1 && self.w == w2;
        for (row, tap) in cols[..len].chunks_exact_mut(hw2).enumerate() {
            let (c, ki, kj) = (
                row / (self.kh * self.kw),
                row / self.kw % self.kh,
                row % self.kw,
            );
            let (rows, cols) = (
                self.inside(self.h, self.h2, ki),
                self.inside(self.w, w2, kj),
            );
            if rows.is_empty() || cols.is_empty() {
                tap.fill(0.0);
                continue;
            }
            tap[..rows.start * w2].fill(0.0);
            tap[rows.end * w2..].fill(0.0);
            let first_col = cols.start * s + kj - self.pad;
            let source_row = |i: usize| (c * self.h + i * s + ki - self.pad) * self.w;
            if one_copy {
                let (start, end) = (rows.start * w2 + cols.start, (rows.end - 1) * w2 + cols.end);
                let from = source_row(rows.start) + first_col;
                tap[start..end].copy_from_slice(&x[from..from + end - start]);
                // Zeroed column by column: strided stores, not a call per row.
                for q in (0..cols.start).chain(cols.end..w2) {
                    for i in rows.clone() {
                        tap[i * w2 + q] = 0.0;
                    }
                }
                continue;
            }
            for i in rows {
                let line = &mut tap[i * w2..(i + 1) * w2];
                line[..cols.start].fill(0.0);
                line[cols.end..].fill(0.0);
                let src = &x[source_row(i) + first_col..];
                let dst = &mut line[cols.clone()];
                if s == 1 {
                    dst.copy_from_slice(&src[..dst.len()]);
                } else {
                    dst.iter_mut()
                        .zip(src.iter().step_by(s))
                        .for_each(|(d, &v)| *d = v);
                }
            }
        }
        ArrayView2::from_shape((self.c * self.kh * self.kw, hw2), &cols[..len])
            .expect("sized by cols_len")
    }

    /// The adjoint of [`Geometry::im2col`]: overwrites dx `[c, h, w]` with the sum of every
    /// unfolded entry of `cols` (`[c·kh·kw, h2·w2]`, standard layout) at the input element it
    /// was read from. A dx in another layout than standard is staged through `stage` (at least
    /// `c·h·w` elements, unused otherwise): no allocation.
    pub fn col2im(&self, cols: &[f32], mut dx: ArrayViewMut3<f32>, stage: &mut [f32]) {
        match dx.as_slice_mut() {
            Some(out) => self.fold_into(cols, out),
            None => {
                let staged = &mut stage[..dx.len()];
                self.fold_into(cols, staged);
                let dim = dx.raw_dim();
                dx.assign(&ArrayView3::from_shape(dim, &*staged).expect("sized c·h·w"));
            }
        }
    }

    fn fold_into(&self, cols: &[f32], dx: &mut [f32]) {
        dx.fill(0.0);
        let (hw2, s) = (self.h2 * self.w2, self.stride);
        for (row, tap) in cols.chunks_exact(hw2).enumerate() {
            let (c, ki, kj) = (
                row / (self.kh * self.kw),
                row / self.kw % self.kh,
                row % self.kw,
            );
            let (rows, cols) = (
                self.inside(self.h, self.h2, ki),
                self.inside(self.w, self.w2, kj),
            );
            if cols.is_empty() {
                continue;
            }
            let first_col = cols.start * s + kj - self.pad;
            for i in rows {
                let dst = &mut dx[(c * self.h + i * s + ki - self.pad) * self.w..][first_col..];
                let src = &tap[i * self.w2..][cols.clone()];
                dst.iter_mut()
                    .step_by(s)
                    .zip(src)
                    .for_each(|(d, &v)| *d += v);
            }
        }
    }
}
