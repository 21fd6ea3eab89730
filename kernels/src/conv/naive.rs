//! Naive convolution: every index a loop, scalar multiply-add, padding tested per tap.

use ndarray::{ArrayView1, ArrayView4, ArrayViewMut4};

use super::{Conv2dParams, Gradients};
use crate::error::Result;
use crate::lanes::at_active_isa;
use crate::scratch::Scratch;
use crate::window::Geometry;

/// Naive: seven nested loops, one scalar multiply-add per tap, padding tested per tap.
/// Shapes as [`conv2d_forward`](super::conv2d_forward); uses no scratch.
pub fn conv2d_forward_naive(
    p: &Conv2dParams,
    x: ArrayView4<f32>,
    w: ArrayView4<f32>,
    bias: ArrayView1<f32>,
    mut y: ArrayViewMut4<f32>,
    _scratch: &mut Scratch,
) -> Result<()> {
    let g = p.forward_geometry(&x, &w, &bias, &y)?;
    at_active_isa(
        #[inline(always)]
        move || {
            for b in 0..g.b {
                for d in 0..g.d {
                    for i in 0..g.h2 {
                        for j in 0..g.w2 {
                            let mut acc = bias[d];
                            for c in 0..g.c {
                                for ki in 0..g.kh {
                                    for kj in 0..g.kw {
                                        if let (Some(r), Some(q)) =
                                            (g.in_row(i, ki), g.in_col(j, kj))
                                        {
                                            acc += w[[d, c, ki, kj]] * x[[b, c, r, q]];
                                        }
                                    }
                                }
                            }
                            y[[b, d, i, j]] = acc;
                        }
                    }
                }
            }
        },
    );
    Ok(())
}

backward_technique! {
    /// Naive: the forward's seven loops, each tap adding `dy·x` to dw and `dy·w` to dx.
    /// Shapes as [`conv2d_backward`](super::conv2d_backward); uses no scratch.
    conv2d_backward_naive => backward
}

/// [`conv2d_backward_naive`] for checked shapes.
fn backward(
    g: &Geometry,
    x: ArrayView4<f32>,
    w: ArrayView4<f32>,
    dy: ArrayView4<f32>,
    grads: Gradients,
    _scratch: &mut Scratch,
) -> Result<()> {
    let Gradients {
        mut dx,
        mut dw,
        mut dbias,
    } = grads;
    if let Some(dx) = dx.as_mut() {
        dx.fill(0.0);
    }
    dw.fill(0.0);
    dbias.fill(0.0);
    at_active_isa(
        #[inline(always)]
        move || {
            for b in 0..g.b {
                for d in 0..g.d {
                    for i in 0..g.h2 {
                        for j in 0..g.w2 {
                            let gy = dy[[b, d, i, j]];
                            dbias[d] += gy;
                            for c in 0..g.c {
                                for ki in 0..g.kh {
                                    for kj in 0..g.kw {
                                        if let (Some(r), Some(q)) =
                                            (g.in_row(i, ki), g.in_col(j, kj))
                                        {
                                            dw[[d, c, ki, kj]] += gy * x[[b, c, r, q]];
                                            if let Some(dx) = dx.as_mut() {
                                                dx[[b, c, r, q]] += gy * w[[d, c, ki, kj]];
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        },
    );
    Ok(())
}
