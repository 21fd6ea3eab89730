//! Naive softmax + cross-entropy: loops over rows and classes, scalar arithmetic.

use ndarray::{ArrayView1, ArrayView2, ArrayViewMut2};

use super::{BACKWARD, FORWARD, check};
use crate::error::Result;
use crate::lanes::at_active_isa;
use crate::scratch::Scratch;

/// Naive: loops over rows and classes, scalar max, exp, sum and divide.
/// Shapes as [`softmax_cross_entropy_forward`](super::softmax_cross_entropy_forward); no scratch.
pub fn softmax_cross_entropy_forward_naive(
    logits: ArrayView2<f32>,
    labels: ArrayView1<usize>,
    mut probs: ArrayViewMut2<f32>,
    _scratch: &mut Scratch,
) -> Result<f32> {
    let nb = check(FORWARD, &logits, &labels, "probs", probs.shape())?;
    let k = logits.ncols();
    let loss = at_active_isa(
        #[inline(always)]
        move || {
            let mut loss = 0.0;
            for b in 0..nb {
                let mut max = logits[[b, 0]];
                for c in 1..k {
                    if logits[[b, c]] > max {
                        max = logits[[b, c]];
                    }
                }
                let mut sum = 0.0;
                for c in 0..k {
                    let e = (logits[[b, c]] - max).exp();
                    probs[[b, c]] = e;
                    sum += e;
                }
                for c in 0..k {
                    probs[[b, c]] /= sum;
                }
                loss += sum.ln() - (logits[[b, labels[b]]] - max);
            }
            loss
        },
    );
    Ok(loss / nb as f32)
}

/// Naive: loops over rows and classes. Shapes as [`softmax_cross_entropy_backward`](super::softmax_cross_entropy_backward).
pub fn softmax_cross_entropy_backward_naive(
    probs: ArrayView2<f32>,
    labels: ArrayView1<usize>,
    mut dlogits: ArrayViewMut2<f32>,
) -> Result<()> {
    let nb = check(BACKWARD, &probs, &labels, "dlogits", dlogits.shape())?;
    at_active_isa(
        #[inline(always)]
        move || {
            for b in 0..nb {
                for c in 0..probs.ncols() {
                    let target = if c == labels[b] { 1.0 } else { 0.0 };
                    dlogits[[b, c]] = (probs[[b, c]] - target) / nb as f32;
                }
            }
        },
    );
    Ok(())
}
