//! Per output: whole-window products and sums on a padded copy.

use ndarray::{ArrayView1, ArrayView4, ArrayViewMut4, Axis, s};

use super::{Conv2dParams, Gradients, dot};
use crate::error::Result;
use crate::scratch::Scratch;
use crate::window::Geometry;

/// Per output: pad x once, then each y element is the product-and-sum of filter `w[d]` with
/// its `[c, kh, kw]` window. Shapes as [`conv2d_forward`](super::conv2d_forward); scratch: the padded x.
pub fn conv2d_forward_per_output(
    p: &Conv2dParams,
    x: ArrayView4<f32>,
    w: ArrayView4<f32>,
    bias: ArrayView1<f32>,
    mut y: ArrayViewMut4<f32>,
    scratch: &mut Scratch,
) -> Result<()> {
    let g = p.forward_geometry(&x, &w, &bias, &y)?;
    let [pad_buf] = scratch.parts([g.padded_len()]);
    let xp = g.pad(x, pad_buf);
    for ((b, d, i, j), out) in y.indexed_iter_mut() {
        let window = xp.slice(s![b, .., g.rows(i), g.cols(j)]);
        *out = dot(w.index_axis(Axis(0), d), window) + bias[d];
    }
    Ok(())
}

backward_technique! {
    /// Per output: for each y element, whole-window updates `dw[d] += dy·window` and
    /// `dx_window += dy·w[d]` on a padded gradient, cropped at the end.
    /// Shapes as [`conv2d_backward`](super::conv2d_backward); scratch: padded x and padded dx.
    conv2d_backward_per_output => backward
}

/// [`conv2d_backward_per_output`] for checked shapes.
fn backward(
    g: &Geometry,
    x: ArrayView4<f32>,
    w: ArrayView4<f32>,
    dy: ArrayView4<f32>,
    grads: Gradients,
    scratch: &mut Scratch,
) -> Result<()> {
    let Gradients {
        dx,
        mut dw,
        mut dbias,
    } = grads;
    let [pad_buf, dpad_buf] = scratch.parts([g.padded_len(), g.padded_len()]);
    let xp = g.pad(x, pad_buf);
    let mut dxp = g.zeroed_padded(dpad_buf);
    dw.fill(0.0);
    dbias.fill(0.0);
    for ((b, d, i, j), &gy) in dy.indexed_iter() {
        dbias[d] += gy;
        dw.index_axis_mut(Axis(0), d)
            .scaled_add(gy, &xp.slice(s![b, .., g.rows(i), g.cols(j)]));
        if dx.is_some() {
            dxp.slice_mut(s![b, .., g.rows(i), g.cols(j)])
                .scaled_add(gy, &w.index_axis(Axis(0), d));
        }
    }
    if let Some(dx) = dx {
        g.unpad(dxp.view(), dx);
    }
    Ok(())
}
