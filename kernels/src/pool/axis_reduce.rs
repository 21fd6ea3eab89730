//! Axis reduction: a running maximum over the taps, all `[b, c]` at once.

use ndarray::{ArrayView4, ArrayViewMut4, Zip, s};

use super::{Pool2dParams, keep_first_max, plane_index};
use crate::error::Result;
use crate::scratch::Scratch;

/// Axis reduce: at each output position, the window's taps are reduced one after another,
/// each step a running-maximum update over the whole `[b, c]` slice at once.
/// Shapes as [`max_pool2d_forward`](super::max_pool2d_forward); uses no scratch.
pub fn max_pool2d_forward_axis_reduce(
    p: &Pool2dParams,
    x: ArrayView4<f32>,
    mut y: ArrayViewMut4<f32>,
    mut argmax: ArrayViewMut4<u32>,
    _scratch: &mut Scratch,
) -> Result<()> {
    let g = p.forward_geometry(x.shape(), y.shape(), argmax.shape())?;
    for i in 0..g.h2 {
        for j in 0..g.w2 {
            let mut max = y.slice_mut(s![.., .., i, j]);
            let mut arg = argmax.slice_mut(s![.., .., i, j]);
            let window = x.slice(s![.., .., g.rows(i), g.cols(j)]);
            max.assign(&window.slice(s![.., .., 0, 0]));
            arg.fill(plane_index(&g, i, j, 0, 0));
            for ki in 0..g.kh {
                for kj in 0..g.kw {
                    let index = plane_index(&g, i, j, ki, kj);
                    Zip::from(&mut max)
                        .and(&mut arg)
                        .and(window.slice(s![.., .., ki, kj]))
                        .for_each(|m, a, &v| keep_first_max(m, a, v, index));
                }
            }
        }
    }
    Ok(())
}

/// Axis reduce: at each output position and tap, the `[b, c]` slice of dy is masked by
/// `argmax == tap` and added to the tap's `[b, c]` slice of dx.
/// Shapes as [`max_pool2d_backward`](super::max_pool2d_backward); uses no scratch.
pub fn max_pool2d_backward_axis_reduce(
    p: &Pool2dParams,
    dy: ArrayView4<f32>,
    argmax: ArrayView4<u32>,
    mut dx: ArrayViewMut4<f32>,
    _scratch: &mut Scratch,
) -> Result<()> {
    let g = p.backward_geometry(dy.shape(), &argmax, dx.shape())?;
    dx.fill(0.0);
    for i in 0..g.h2 {
        for j in 0..g.w2 {
            for ki in 0..g.kh {
                for kj in 0..g.kw {
                    let index = plane_index(&g, i, j, ki, kj);
                    Zip::from(dx.slice_mut(s![.., .., i * g.stride + ki, j * g.stride + kj]))
                        .and(dy.slice(s![.., .., i, j]))
                        .and(argmax.slice(s![.., .., i, j]))
                        .for_each(|d, &gy, &a| *d += f32::from(u8::from(a == index)) * gy);
                }
            }
        }
    }
    Ok(())
}
