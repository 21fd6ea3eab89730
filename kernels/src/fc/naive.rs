//! Naive fully connected layer: every index a loop, scalar multiply-add.

use ndarray::{ArrayView1, ArrayView2, ArrayViewMut1, ArrayViewMut2};

use super::{backward_dims, forward_dims};
use crate::error::Result;
use crate::lanes::at_active_isa;
use crate::scratch::Scratch;

/// Naive: three nested loops of scalar multiply-adds, x `[b, i]`, w `[o, i]`, bias `[o]` →
/// y `[b, o]`. Shapes as [`fc_forward`](super::fc_forward); no scratch.
pub fn fc_forward_naive(
    x: ArrayView2<f32>,
    w: ArrayView2<f32>,
    bias: ArrayView1<f32>,
    mut y: ArrayViewMut2<f32>,
    _scratch: &mut Scratch,
) -> Result<()> {
    let (nb, ni, no) = forward_dims(x.shape(), w.shape(), bias.shape(), y.shape())?;
    at_active_isa(
        #[inline(always)]
        move || {
            for b in 0..nb {
                for o in 0..no {
                    let mut acc = bias[o];
                    for i in 0..ni {
                        acc += w[[o, i]] * x[[b, i]];
                    }
                    y[[b, o]] = acc;
                }
            }
        },
    );
    Ok(())
}

/// Naive: three nested loops of scalar multiply-adds into dx `[b, i]`, dw `[o, i]` and
/// dbias `[o]`. Shapes as [`fc_backward`](super::fc_backward); no scratch.
pub fn fc_backward_naive(
    x: ArrayView2<f32>,
    w: ArrayView2<f32>,
    dy: ArrayView2<f32>,
    mut dx: ArrayViewMut2<f32>,
    mut dw: ArrayViewMut2<f32>,
    mut dbias: ArrayViewMut1<f32>,
    _scratch: &mut Scratch,
) -> Result<()> {
    let (nb, ni, no) = backward_dims(&x, &w, &dy, &dx, &dw, &dbias)?;
    dx.fill(0.0);
    dw.fill(0.0);
    dbias.fill(0.0);
    at_active_isa(
        #[inline(always)]
        move || {
            for b in 0..nb {
                for o in 0..no {
                    let gy = dy[[b, o]];
                    dbias[o] += gy;
                    for i in 0..ni {
                        dw[[o, i]] += gy * x[[b, i]];
                        dx[[b, i]] += gy * w[[o, i]];
                    }
                }
            }
        },
    );
    Ok(())
}
