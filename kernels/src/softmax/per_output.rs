//! Per output: each row, one example's distribution, with whole-row operations.

use ndarray::{ArrayView1, ArrayView2, ArrayViewMut2, Zip};

use super::{BACKWARD, FORWARD, check};
use crate::error::Result;
use crate::scratch::Scratch;

/// Per output: each row, one example's distribution, with whole-row max, exp, sum and scale.
/// Shapes as [`softmax_cross_entropy_forward`](super::softmax_cross_entropy_forward); no scratch.
pub fn softmax_cross_entropy_forward_per_output(
    logits: ArrayView2<f32>,
    labels: ArrayView1<usize>,
    mut probs: ArrayViewMut2<f32>,
    _scratch: &mut Scratch,
) -> Result<f32> {
    let nb = check(FORWARD, &logits, &labels, "probs", probs.shape())?;
    let mut loss = 0.0;
    for ((z, mut p), &label) in logits.rows().into_iter().zip(probs.rows_mut()).zip(&labels) {
        let max = z.fold(f32::NEG_INFINITY, |m, &v| m.max(v));
        Zip::from(&mut p)
            .and(&z)
            .for_each(|p, &v| *p = (v - max).exp());
        let sum = p.sum();
        p /= sum;
        loss += sum.ln() - (z[label] - max);
    }
    Ok(loss / nb as f32)
}

/// Per output: each row scaled whole, then its label's entry lowered by `1 / b`.
/// Shapes as [`softmax_cross_entropy_backward`](super::softmax_cross_entropy_backward).
pub fn softmax_cross_entropy_backward_per_output(
    probs: ArrayView2<f32>,
    labels: ArrayView1<usize>,
    mut dlogits: ArrayViewMut2<f32>,
) -> Result<()> {
    let nb = check(BACKWARD, &probs, &labels, "dlogits", dlogits.shape())?;
    let scale = 1.0 / nb as f32;
    for ((p, mut d), &label) in probs
        .rows()
        .into_iter()
        .zip(dlogits.rows_mut())
        .zip(&labels)
    {
        Zip::from(&mut d).and(&p).for_each(|d, &pv| *d = pv * scale);
        d[label] -= scale;
    }
    Ok(())
}
