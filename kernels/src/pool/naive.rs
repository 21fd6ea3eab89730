//! Naive max pooling: every index a loop.

use ndarray::{ArrayView4, ArrayViewMut4};

use super::{Pool2dParams, keep_first_max, plane_index};
use crate::error::Result;
use crate::lanes::at_active_isa;
use crate::scratch::Scratch;

/// Naive: five nested loops, a scalar compare per tap. Shapes as [`max_pool2d_forward`](super::max_pool2d_forward);
/// uses no scratch.
pub fn max_pool2d_forward_naive(
    p: &Pool2dParams,
    x: ArrayView4<f32>,
    mut y: ArrayViewMut4<f32>,
    mut argmax: ArrayViewMut4<u32>,
    _scratch: &mut Scratch,
) -> Result<()> {
    let g = p.forward_geometry(x.shape(), y.shape(), argmax.shape())?;
    at_active_isa(
        #[inline(always)]
        move || {
            for b in 0..g.b {
                for c in 0..g.c {
                    for i in 0..g.h2 {
                        for j in 0..g.w2 {
                            let mut max = x[[b, c, i * g.stride, j * g.stride]];
                            let mut arg = plane_index(&g, i, j, 0, 0);
                            for ki in 0..g.kh {
                                for kj in 0..g.kw {
                                    let v = x[[b, c, i * g.stride + ki, j * g.stride + kj]];
                                    keep_first_max(
                                        &mut max,
                                        &mut arg,
                                        v,
                                        plane_index(&g, i, j, ki, kj),
                                    );
                                }
                            }
                            y[[b, c, i, j]] = max;
                            argmax[[b, c, i, j]] = arg;
                        }
                    }
                }
            }
        },
    );
    Ok(())
}

/// Naive: four nested loops, one scalar add at each output's argmax.
/// Shapes as [`max_pool2d_backward`](super::max_pool2d_backward); uses no scratch.
pub fn max_pool2d_backward_naive(
    p: &Pool2dParams,
    dy: ArrayView4<f32>,
    argmax: ArrayView4<u32>,
    mut dx: ArrayViewMut4<f32>,
    _scratch: &mut Scratch,
) -> Result<()> {
    let g = p.backward_geometry(dy.shape(), &argmax, dx.shape())?;
    dx.fill(0.0);
    at_active_isa(
        #[inline(always)]
        move || {
            for b in 0..g.b {
                for c in 0..g.c {
                    for i in 0..g.h2 {
                        for j in 0..g.w2 {
                            let a = argmax[[b, c, i, j]] as usize;
                            dx[[b, c, a / g.w, a % g.w]] += dy[[b, c, i, j]];
                        }
                    }
                }
            }
        },
    );
    Ok(())
}
