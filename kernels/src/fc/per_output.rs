//! Per output: whole-row products of an input row and a weight row.

use ndarray::{ArrayView1, ArrayView2, ArrayViewMut1, ArrayViewMut2, Zip};

use super::{backward_dims, forward_dims};
use crate::conv::dot;
use crate::error::Result;
use crate::scratch::Scratch;

/// Per output: each y `[b, o]` element is the product-and-sum of an input row x`[b]` with a
/// weight row w`[o]`. Shapes as [`fc_forward`](super::fc_forward); no scratch.
pub fn fc_forward_per_output(
    x: ArrayView2<f32>,
    w: ArrayView2<f32>,
    bias: ArrayView1<f32>,
    mut y: ArrayViewMut2<f32>,
    _scratch: &mut Scratch,
) -> Result<()> {
    forward_dims(x.shape(), w.shape(), bias.shape(), y.shape())?;
    Zip::indexed(&mut y).for_each(|(b, o), out| *out = dot(x.row(b), w.row(o)) + bias[o]);
    Ok(())
}

/// Per output: for each dy `[b, o]` element, whole-row updates `dw[o] += dy·x[b]`,
/// `dx[b] += dy·w[o]`. Shapes as [`fc_backward`](super::fc_backward); no scratch.
pub fn fc_backward_per_output(
    x: ArrayView2<f32>,
    w: ArrayView2<f32>,
    dy: ArrayView2<f32>,
    mut dx: ArrayViewMut2<f32>,
    mut dw: ArrayViewMut2<f32>,
    mut dbias: ArrayViewMut1<f32>,
    _scratch: &mut Scratch,
) -> Result<()> {
    backward_dims(&x, &w, &dy, &dx, &dw, &dbias)?;
    dx.fill(0.0);
    dw.fill(0.0);
    dbias.fill(0.0);
    for ((b, o), &gy) in dy.indexed_iter() {
        dbias[o] += gy;
        dw.row_mut(o).scaled_add(gy, &x.row(b));
        dx.row_mut(b).scaled_add(gy, &w.row(o));
    }
    Ok(())
}
