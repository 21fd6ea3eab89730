//! The sliding window shared by convolution and pooling: the one place that knows the
//! output-size formula, plus the unfold (im2col) and fold (col2im) steps built on it.

use std::ops::Range;

use ndarray::{ArrayView2, ArrayView3, ArrayView4, ArrayViewMut2, ArrayViewMut3, ArrayViewMut4, s};

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

    /// Unfolds one image x `[c, h, w]` into `cols` `[c·kh·kw, h2·w2]`: row `(c, ki, kj)`
    /// holds that tap of every window, zeros where the window covers padding.
    pub fn im2col<'a>(&self, x: ArrayView3<f32>, cols: &'a mut [f32]) -> ArrayView2<'a, f32> {
        let shape = (self.c * self.kh * self.kw, self.h2 * self.w2);
        let mut m = ArrayViewMut2::from_shape(shape, &mut *cols).expect("sized by cols_len");
        for (row, mut tap_row) in m.outer_iter_mut().enumerate() {
            let (c, ki, kj) = (
                row / (self.kh * self.kw),
                row / self.kw % self.kh,
                row % self.kw,
            );
            for (col, v) in tap_row.iter_mut().enumerate() {
                let (i, j) = (col / self.w2, col % self.w2);
                *v = match (self.in_row(i, ki), self.in_col(j, kj)) {
                    (Some(r), Some(q)) => x[[c, r, q]],
                    _ => 0.0,
                };
            }
        }
        ArrayView2::from_shape(shape, cols).expect("sized by cols_len")
    }

    /// The adjoint of [`Geometry::im2col`]: overwrites dx `[c, h, w]` with the sum of every
    /// unfolded entry of `cols` `[c·kh·kw, h2·w2]` at the input element it was read from.
    pub fn col2im(&self, cols: ArrayView2<f32>, mut dx: ArrayViewMut3<f32>) {
        dx.fill(0.0);
        for (row, tap_row) in cols.outer_iter().enumerate() {
            let (c, ki, kj) = (
                row / (self.kh * self.kw),
                row / self.kw % self.kh,
                row % self.kw,
            );
            for (col, &v) in tap_row.iter().enumerate() {
                let (i, j) = (col / self.w2, col % self.w2);
                if let (Some(r), Some(q)) = (self.in_row(i, ki), self.in_col(j, kj)) {
                    dx[[c, r, q]] += v;
                }
            }
        }
    }
}
