//! Softmax with cross-entropy, the seed's output layer: logits `[b, k]` and labels `[b]` →
//! probabilities `[b, k]` and the mean loss over the batch; backward
//! `dlogits = (p − onehot(label)) / b`, the gradient of that mean.
//!
//! Stable: each row's maximum is subtracted before `exp`, and the loss is taken as
//! `ln Σ e^(z − max) − (z_label − max)`, so it stays finite where a probability underflows.
//!
//! Techniques: `Naive` loops over rows and classes; `PerOutput` treats each row (one example's
//! distribution) with whole-row operations; `AxisReduce` reduces along the class axis for the
//! whole batch at once. There is no product to unfold, so `Im2colGemm` and `Direct` run `AxisReduce`.

use ndarray::{ArrayView1, ArrayView2, ArrayViewMut1, ArrayViewMut2, Axis, Zip};

use crate::error::{Result, expect_nonempty, expect_shape, invalid, mismatch};
use crate::scratch::Scratch;
use crate::technique::Technique;

const FORWARD: &str = "softmax_cross_entropy forward";
const BACKWARD: &str = "softmax_cross_entropy backward";

/// Checks scores `[b, k]` (logits or probabilities), labels `[b]` below k, and the output
/// `[b, k]`; returns b.
fn check(
    layer: &'static str,
    scores: &ArrayView2<f32>,
    labels: &ArrayView1<usize>,
    out_name: &str,
    out: &[usize],
) -> Result<usize> {
    let (b, k) = scores.dim();
    expect_nonempty(layer, "the scores", scores.shape())?;
    if labels.len() != b {
        return Err(mismatch(
            layer,
            format!(
                "{} labels for a batch of {b} (scores {:?})",
                labels.len(),
                scores.shape()
            ),
        ));
    }
    expect_shape(layer, out_name, out, scores.shape())?;
    if let Some((i, &l)) = labels.indexed_iter().find(|&(_, &l)| l >= k) {
        return Err(invalid(
            layer,
            format!("label {l} at batch index {i} is not below the {k} classes"),
        ));
    }
    Ok(b)
}

/// The signature every forward technique shares:
/// `(logits [b, k], labels [b], probs [b, k], scratch) → mean loss`.
pub type SoftmaxForwardFn =
    fn(ArrayView2<f32>, ArrayView1<usize>, ArrayViewMut2<f32>, &mut Scratch) -> Result<f32>;

/// The signature every backward technique shares: `(probs [b, k], labels [b], dlogits [b, k])`.
pub type SoftmaxBackwardFn =
    fn(ArrayView2<f32>, ArrayView1<usize>, ArrayViewMut2<f32>) -> Result<()>;

/// The forward function of technique `t`.
pub fn softmax_cross_entropy_forward_fn(t: Technique) -> SoftmaxForwardFn {
    match t {
        Technique::Naive => softmax_cross_entropy_forward_naive,
        Technique::PerOutput => softmax_cross_entropy_forward_per_output,
        Technique::AxisReduce | Technique::Im2colGemm | Technique::Direct => {
            softmax_cross_entropy_forward_axis_reduce
        }
    }
}

/// Softmax + cross-entropy forward with technique `t`: logits `[b, k]`, labels `[b]` (each
/// below k) → probs `[b, k]` (overwritten); returns the mean loss over the batch.
pub fn softmax_cross_entropy_forward(
    t: Technique,
    logits: ArrayView2<f32>,
    labels: ArrayView1<usize>,
    probs: ArrayViewMut2<f32>,
    scratch: &mut Scratch,
) -> Result<f32> {
    softmax_cross_entropy_forward_fn(t)(logits, labels, probs, scratch)
}

/// Naive: loops over rows and classes, scalar max, exp, sum and divide.
/// Shapes as [`softmax_cross_entropy_forward`]; no scratch.
pub fn softmax_cross_entropy_forward_naive(
    logits: ArrayView2<f32>,
    labels: ArrayView1<usize>,
    mut probs: ArrayViewMut2<f32>,
    _scratch: &mut Scratch,
) -> Result<f32> {
    let nb = check(FORWARD, &logits, &labels, "probs", probs.shape())?;
    let k = logits.ncols();
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
    Ok(loss / nb as f32)
}

/// Per output: each row, one example's distribution, with whole-row max, exp, sum and scale.
/// Shapes as [`softmax_cross_entropy_forward`]; no scratch.
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

/// Axis reduce: max and sum reduced along the class axis for all rows at once, the
/// subtraction, exp and division broadcast over the batch.
/// Shapes as [`softmax_cross_entropy_forward`]; scratch: the row maxima and sums `[2·b]`.
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

/// The backward function of technique `t`.
pub fn softmax_cross_entropy_backward_fn(t: Technique) -> SoftmaxBackwardFn {
    match t {
        Technique::Naive => softmax_cross_entropy_backward_naive,
        Technique::PerOutput => softmax_cross_entropy_backward_per_output,
        Technique::AxisReduce | Technique::Im2colGemm | Technique::Direct => {
            softmax_cross_entropy_backward_axis_reduce
        }
    }
}

/// Softmax + cross-entropy backward with technique `t`: from the forward's probs `[b, k]`
/// and labels `[b]`, overwrites dlogits `[b, k]` with `(p − onehot) / b`.
pub fn softmax_cross_entropy_backward(
    t: Technique,
    probs: ArrayView2<f32>,
    labels: ArrayView1<usize>,
    dlogits: ArrayViewMut2<f32>,
) -> Result<()> {
    softmax_cross_entropy_backward_fn(t)(probs, labels, dlogits)
}

/// Naive: loops over rows and classes. Shapes as [`softmax_cross_entropy_backward`].
pub fn softmax_cross_entropy_backward_naive(
    probs: ArrayView2<f32>,
    labels: ArrayView1<usize>,
    mut dlogits: ArrayViewMut2<f32>,
) -> Result<()> {
    let nb = check(BACKWARD, &probs, &labels, "dlogits", dlogits.shape())?;
    for b in 0..nb {
        for c in 0..probs.ncols() {
            let target = if c == labels[b] { 1.0 } else { 0.0 };
            dlogits[[b, c]] = (probs[[b, c]] - target) / nb as f32;
        }
    }
    Ok(())
}

/// Per output: each row scaled whole, then its label's entry lowered by `1 / b`.
/// Shapes as [`softmax_cross_entropy_backward`].
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

/// Axis reduce: one broadcast pass `(p − [class == label]) / b` over the whole batch.
/// Shapes as [`softmax_cross_entropy_backward`].
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
