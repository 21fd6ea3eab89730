//! GEMM: the input already is the matrix (im2col is the identity), one `sgemm` per product.
//! `Im2colGemm` and `Direct` both run it.

use ndarray::{ArrayView1, ArrayView2, ArrayViewMut1, ArrayViewMut2};

use super::{backward_dims, forward_dims};
use crate::conv::channel_sums;
use crate::error::Result;
use crate::gemm::gemm;
use crate::scratch::Scratch;

/// GEMM: `y = bias; y += x·wᵀ` with one `sgemm`, x `[b, i]`, w `[o, i]` → y `[b, o]`.
/// Shapes as [`fc_forward`](super::fc_forward); no scratch.
pub fn fc_forward_gemm(
    x: ArrayView2<f32>,
    w: ArrayView2<f32>,
    bias: ArrayView1<f32>,
    mut y: ArrayViewMut2<f32>,
    _scratch: &mut Scratch,
) -> Result<()> {
    forward_dims(x.shape(), w.shape(), bias.shape(), y.shape())?;
    y.assign(&bias);
    gemm(1.0, x, w.t(), 1.0, y)?;
    Ok(())
}

/// GEMM: `dw = dyᵀ·x` `[o, i]` and `dx = dy·w` `[b, i]`, one `sgemm` each.
/// Shapes as [`fc_backward`](super::fc_backward); no scratch.
pub fn fc_backward_gemm(
    x: ArrayView2<f32>,
    w: ArrayView2<f32>,
    dy: ArrayView2<f32>,
    dx: ArrayViewMut2<f32>,
    dw: ArrayViewMut2<f32>,
    dbias: ArrayViewMut1<f32>,
    _scratch: &mut Scratch,
) -> Result<()> {
    backward_dims(&x, &w, &dy, &dx, &dw, &dbias)?;
    gemm(1.0, dy.t(), x, 0.0, dw)?;
    gemm(1.0, dy, w, 0.0, dx)?;
    channel_sums(dy.into_dyn(), dbias);
    Ok(())
}
