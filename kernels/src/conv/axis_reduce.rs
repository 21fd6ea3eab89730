//! Axis reduction: per output position, broadcast products over batch and filters, reduced
//! along axes.

use ndarray::{ArrayView1, ArrayView4, ArrayViewMut4, ArrayViewMut5, Axis, Zip, s};

use super::{Conv2dParams, Gradients, channel_sums};
use crate::error::Result;
use crate::scratch::Scratch;
use crate::window::Geometry;

/// Axis reduce: at each output position, the products of every image's window with every
/// filter, `[b, d, c, kh, kw]`, are formed by broadcasting, then summed over `(c, kh, kw)`.
/// Shapes as [`conv2d_forward`](super::conv2d_forward); scratch: the padded x and the product tensor.
pub fn conv2d_forward_axis_reduce(
    p: &Conv2dParams,
    x: ArrayView4<f32>,
    w: ArrayView4<f32>,
    bias: ArrayView1<f32>,
    mut y: ArrayViewMut4<f32>,
    scratch: &mut Scratch,
) -> Result<()> {
    let g = p.forward_geometry(&x, &w, &bias, &y)?;
    let [pad_buf, prod_buf] = scratch.parts([g.padded_len(), product_len(&g)]);
    let xp = g.pad(x, pad_buf);
    let mut prod = product_tensor(&g, prod_buf);
    let filters = w.insert_axis(Axis(0));
    for i in 0..g.h2 {
        for j in 0..g.w2 {
            let windows = xp
                .slice(s![.., .., g.rows(i), g.cols(j)])
                .insert_axis(Axis(1));
            Zip::from(&mut prod)
                .and_broadcast(&windows)
                .and_broadcast(&filters)
                .for_each(|p, &xv, &wv| *p = xv * wv);
            let sums = prod
                .view()
                .into_shape_with_order((g.b, g.d, g.c * g.kh * g.kw))
                .expect("product tensor is contiguous");
            Zip::from(y.slice_mut(s![.., .., i, j]))
                .and(sums.lanes(Axis(2)))
                .and_broadcast(&bias)
                .for_each(|out, lane, &bv| *out = lane.sum() + bv);
        }
    }
    Ok(())
}

fn product_len(g: &Geometry) -> usize {
    g.b * g.d * g.c * g.kh * g.kw
}

/// The `[b, d, c, kh, kw]` broadcast-product tensor of the axis-reduce technique, in scratch.
fn product_tensor<'a>(g: &Geometry, buf: &'a mut [f32]) -> ArrayViewMut5<'a, f32> {
    ArrayViewMut5::from_shape((g.b, g.d, g.c, g.kh, g.kw), buf).expect("sized by product_len")
}

backward_technique! {
    /// Axis reduce: at each output position, the broadcast products `dy[b, d]·window[b, c, ·, ·]`
    /// are summed over the batch axis into dw, and `dy[b, d]·w[d, c, ·, ·]` over the filter axis
    /// into the padded dx. Shapes as [`conv2d_backward`](super::conv2d_backward); scratch: padded x, padded dx, products.
    conv2d_backward_axis_reduce => backward
}

/// [`conv2d_backward_axis_reduce`] for checked shapes.
fn backward(
    g: &Geometry,
    x: ArrayView4<f32>,
    w: ArrayView4<f32>,
    dy: ArrayView4<f32>,
    grads: Gradients,
    scratch: &mut Scratch,
) -> Result<()> {
    let Gradients { dx, mut dw, dbias } = grads;
    let [pad_buf, dpad_buf, prod_buf] =
        scratch.parts([g.padded_len(), g.padded_len(), product_len(g)]);
    let xp = g.pad(x, pad_buf);
    let mut dxp = g.zeroed_padded(dpad_buf);
    let mut prod = product_tensor(g, prod_buf);
    let filters = w.insert_axis(Axis(0));
    dw.fill(0.0);
    for i in 0..g.h2 {
        for j in 0..g.w2 {
            let gy = dy.slice(s![
                ..,
                ..,
                i,
                j,
                ndarray::NewAxis,
                ndarray::NewAxis,
                ndarray::NewAxis
            ]);
            let windows = xp
                .slice(s![.., .., g.rows(i), g.cols(j)])
                .insert_axis(Axis(1));
            Zip::from(&mut prod)
                .and_broadcast(&gy)
                .and_broadcast(&windows)
                .for_each(|p, &gv, &xv| *p = gv * xv);
            Zip::from(&mut dw)
                .and(prod.lanes(Axis(0)))
                .for_each(|dwv, lane| *dwv += lane.sum());
            if dx.is_none() {
                continue;
            }
            Zip::from(&mut prod)
                .and_broadcast(&gy)
                .and_broadcast(&filters)
                .for_each(|p, &gv, &wv| *p = gv * wv);
            Zip::from(dxp.slice_mut(s![.., .., g.rows(i), g.cols(j)]))
                .and(prod.lanes(Axis(1)))
                .for_each(|dxv, lane| *dxv += lane.sum());
        }
    }
    if let Some(dx) = dx {
        g.unpad(dxp.view(), dx);
    }
    channel_sums(dy.into_dyn(), dbias);
    Ok(())
}
