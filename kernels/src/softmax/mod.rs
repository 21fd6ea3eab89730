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
//! One file per technique: `naive.rs`, `per_output.rs`, `axis_reduce.rs`.

mod axis_reduce;
mod naive;
mod per_output;

use ndarray::{ArrayView1, ArrayView2, ArrayViewMut2};

use crate::error::{Result, expect_nonempty, expect_shape, invalid, mismatch};
use crate::scratch::Scratch;
use crate::technique::Technique;

pub use axis_reduce::{
    softmax_cross_entropy_backward_axis_reduce, softmax_cross_entropy_forward_axis_reduce,
};
pub use naive::{softmax_cross_entropy_backward_naive, softmax_cross_entropy_forward_naive};
pub use per_output::{
    softmax_cross_entropy_backward_per_output, softmax_cross_entropy_forward_per_output,
};

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
