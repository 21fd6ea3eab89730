//! Per output: the first maximum of each window.

use ndarray::{ArrayView4, ArrayViewMut4, Zip, s};

use super::{Pool2dParams, keep_first_max, plane_index};
use crate::error::Result;
use crate::scratch::Scratch;

/// Per output: each y element is a whole-window reduction, the first maximum of its
/// `[f, f]` window. Shapes as [`max_pool2d_forward`](super::max_pool2d_forward); uses no scratch.
pub fn max_pool2d_forward_per_output(
    p: &Pool2dParams,
    x: ArrayView4<f32>,
    mut y: ArrayViewMut4<f32>,
    mut argmax: ArrayViewMut4<u32>,
    _scratch: &mut Scratch,
) -> Result<()> {
    let g = p.forward_geometry(x.shape(), y.shape(), argmax.shape())?;
    Zip::indexed(&mut y)
        .and(&mut argmax)
        .for_each(|(b, c, i, j), out, arg| {
            let window = x.slice(s![b, c, g.rows(i), g.cols(j)]);
            let first = (window[[0, 0]], plane_index(&g, i, j, 0, 0));
            (*out, *arg) = window
                .indexed_iter()
                .fold(first, |(mut m, mut a), ((ki, kj), &v)| {
                    keep_first_max(&mut m, &mut a, v, plane_index(&g, i, j, ki, kj));
                    (m, a)
                });
        });
    Ok(())
}

/// Per output: each dy element is added to its whole `[f, f]` window of dx through a one-hot
/// mask of the argmax. Shapes as [`max_pool2d_backward`](super::max_pool2d_backward); uses no scratch.
pub fn max_pool2d_backward_per_output(
    p: &Pool2dParams,
    dy: ArrayView4<f32>,
    argmax: ArrayView4<u32>,
    mut dx: ArrayViewMut4<f32>,
    _scratch: &mut Scratch,
) -> Result<()> {
    let g = p.backward_geometry(dy.shape(), &argmax, dx.shape())?;
    dx.fill(0.0);
    for ((b, c, i, j), &gy) in dy.indexed_iter() {
        let a = argmax[[b, c, i, j]];
        Zip::indexed(dx.slice_mut(s![b, c, g.rows(i), g.cols(j)])).for_each(|(ki, kj), d| {
            let mask = f32::from(u8::from(plane_index(&g, i, j, ki, kj) == a));
            *d += mask * gy;
        });
    }
    Ok(())
}
