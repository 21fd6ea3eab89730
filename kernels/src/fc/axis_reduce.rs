//! Axis reduce: broadcast products `[b, o, i]`, summed along one axis.

use ndarray::{ArrayView1, ArrayView2, ArrayViewMut1, ArrayViewMut2, ArrayViewMut3, Axis, Zip};

use super::{backward_dims, forward_dims};
use crate::conv::channel_sums;
use crate::error::Result;
use crate::scratch::Scratch;

/// The `[b, o, i]` product tensor both passes broadcast into, taken from `scratch`.
fn products(scratch: &mut Scratch, (nb, ni, no): (usize, usize, usize)) -> ArrayViewMut3<'_, f32> {
    let [prod_buf] = scratch.parts([nb * no * ni]);
    ArrayViewMut3::from_shape((nb, no, ni), prod_buf).expect("sized b·o·i")
}

/// Axis reduce: the broadcast products `x[b, ·, i]·w[·, o, i]`, `[b, o, i]`, summed over the
/// input axis into y `[b, o]`. Shapes as [`fc_forward`](super::fc_forward); scratch: the
/// product tensor.
pub fn fc_forward_axis_reduce(
    x: ArrayView2<f32>,
    w: ArrayView2<f32>,
    bias: ArrayView1<f32>,
    mut y: ArrayViewMut2<f32>,
    scratch: &mut Scratch,
) -> Result<()> {
    let dims = forward_dims(x.shape(), w.shape(), bias.shape(), y.shape())?;
    let mut prod = products(scratch, dims);
    Zip::from(&mut prod)
        .and_broadcast(x.insert_axis(Axis(1)))
        .and_broadcast(w.insert_axis(Axis(0)))
        .for_each(|p, &xv, &wv| *p = xv * wv);
    Zip::from(&mut y)
        .and(prod.lanes(Axis(2)))
        .and_broadcast(&bias)
        .for_each(|out, lane, &bv| *out = lane.sum() + bv);
    Ok(())
}

/// Axis reduce: broadcast products `dy[b, o]·x[b, i]` summed over the batch axis give
/// dw `[o, i]`, `dy[b, o]·w[o, i]` summed over the output axis give dx `[b, i]`. Shapes as
/// [`fc_backward`](super::fc_backward); scratch: the `[b, o, i]` product tensor.
pub fn fc_backward_axis_reduce(
    x: ArrayView2<f32>,
    w: ArrayView2<f32>,
    dy: ArrayView2<f32>,
    mut dx: ArrayViewMut2<f32>,
    mut dw: ArrayViewMut2<f32>,
    dbias: ArrayViewMut1<f32>,
    scratch: &mut Scratch,
) -> Result<()> {
    let dims = backward_dims(&x, &w, &dy, &dx, &dw, &dbias)?;
    let mut prod = products(scratch, dims);
    let gy = dy.insert_axis(Axis(2));
    Zip::from(&mut prod)
        .and_broadcast(&gy)
        .and_broadcast(x.insert_axis(Axis(1)))
        .for_each(|p, &g, &xv| *p = g * xv);
    Zip::from(&mut dw)
        .and(prod.lanes(Axis(0)))
        .for_each(|d, lane| *d = lane.sum());
    Zip::from(&mut prod)
        .and_broadcast(&gy)
        .and_broadcast(w.insert_axis(Axis(0)))
        .for_each(|p, &g, &wv| *p = g * wv);
    Zip::from(&mut dx)
        .and(prod.lanes(Axis(1)))
        .for_each(|d, lane| *d = lane.sum());
    channel_sums(dy.into_dyn(), dbias);
    Ok(())
}
