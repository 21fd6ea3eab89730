//! Axis reduce: the class axis reduced for the whole batch at once, the rest broadcast.
//! `Im2colGemm` and `Direct` run it too: there is no product to unfold.

use ndarray::{ArrayView1, ArrayView2, ArrayViewMut1, ArrayViewMut2, Axis, Zip};

use super::{BACKWARD, FORWARD, check};
use crate::error::Result;
use crate::scratch::Scratch;

/// Axis reduce: max and sum reduced along the class axis for all rows at once, the
/// subtraction, exp and division broadcast over the batch.
/// Shapes as [`softmax_cross_entropy_forward`](super::softmax_cross_entropy_forward); scratch: the row maxima and sums `[2·b]`.
pub fn softmax_cross_entropy_forward_axis_reduce(
    logits: ArrayView2<f32>,
    labels: ArrayView1<usize>,
    mut probs: ArrayViewMut2<f32>,
    scratch: &mut Scratch,
) -> Result<f32> {
    let nb = check(FORWARD, &logits, &labels, "probs", probs.shape())?;
    let [max_buf, sum_buf] = scratch.parts([nb, nb]);
    let mut max = ArrayViewMut1::from(max_buf);
    let mut sum = ArrayViewMut1::from(sum_buf);
    max.assign(&logits.column(0));
    for column in logits.columns() {
        Zip::from(&mut max)
            .and(column)
            .for_each(|m, &v| *m = m.max(v));
    }
    let max = max.view().insert_axis(Axis(1));
    Zip::from(&mut probs)
        .and(&logits)
        .and_broadcast(&max)
        .for_each(|p, &v, &m| *p = (v - m).exp());
    sum.fill(0.0);
    for column in probs.columns() {
        sum += &column;
    }
    let sum = sum.view().insert_axis(Axis(1));
    Zip::from(&mut probs)
        .and_broadcast(&sum)
        .for_each(|p, &s| *p /= s);
    let loss: f32 = (0..nb)
        .map(|b| sum[[b, 0]].ln() - (logits[[b, labels[b]]] - max[[b, 0]]))
        .sum();
    Ok(loss / nb as f32)
}

/// Axis reduce: one broadcast pass `(p − [class == label]) / b` over the whole batch.
/// Shapes as [`softmax_cross_entropy_backward`](super::softmax_cross_entropy_backward).
pub fn softmax_cross_entropy_backward_axis_reduce(
    probs: ArrayView2<f32>,
    labels: ArrayView1<usize>,
    mut dlogits: ArrayViewMut2<f32>,
) -> Result<()> {
    let nb = check(BACKWARD, &probs, &labels, "dlogits", dlogits.shape())?;
    let scale = 1.0 / nb as f32;
    Zip::indexed(&mut dlogits)
        .and(&probs)
        .for_each(|(b, c), d, &p| {
            *d = (p - f32::from(u8::from(c == labels[b]))) * scale;
        });
    Ok(())
}
