//! Elementwise activations of any shape (`[b, c, h, w]` after a convolution, `[b, o]` after a
//! fully connected layer): the seed's leaky ReLU, `max(x, 0.01·x)`, and the sigmoid.
//!
//! Both backward passes take the forward's output y, not its input: y > 0 exactly where x > 0
//! for the leaky ReLU, and the sigmoid's derivative is `y·(1 − y)`.
//!
//! Techniques: an elementwise layer has no window to sum, no axis to reduce and nothing to
//! unfold, so there are two, one file each: `naive.rs` (`Naive`: a multi-index loop, indexed
//! reads and writes) and `vectorized.rs` (one flat pass over the elements), which `PerOutput`,
//! `AxisReduce`, `Im2colGemm` and `Direct` all run. The scalar functions and the shape checks
//! both share are here.

mod naive;
mod vectorized;

use ndarray::{ArrayViewD, ArrayViewMutD};

use crate::error::{Result, expect_shape};
use crate::technique::Technique;

pub use naive::{
    leaky_relu_backward_naive, leaky_relu_forward_naive, sigmoid_backward_naive,
    sigmoid_forward_naive,
};
pub use vectorized::{
    leaky_relu_backward_vectorized, leaky_relu_forward_vectorized, sigmoid_backward_vectorized,
    sigmoid_forward_vectorized,
};

/// Slope of the leaky ReLU for negative inputs, as in the seed.
pub const LEAKY_RELU_SLOPE: f32 = 0.01;

const RELU_FORWARD: &str = "leaky_relu forward";
const RELU_BACKWARD: &str = "leaky_relu backward";
const SIGMOID_FORWARD: &str = "sigmoid forward";
const SIGMOID_BACKWARD: &str = "sigmoid backward";

/// The signature every activation forward technique shares: `(x [..], y [..])`, one shape.
pub type ActivationForwardFn = fn(ArrayViewD<f32>, ArrayViewMutD<f32>) -> Result<()>;

/// The signature every activation backward technique shares: `(y [..], dy [..], dx [..])`,
/// one shape, y being the forward's output.
pub type ActivationBackwardFn =
    fn(ArrayViewD<f32>, ArrayViewD<f32>, ArrayViewMutD<f32>) -> Result<()>;

fn leaky_relu(x: f32) -> f32 {
    x.max(LEAKY_RELU_SLOPE * x)
}

fn leaky_relu_grad(y: f32, dy: f32) -> f32 {
    if y > 0.0 { dy } else { LEAKY_RELU_SLOPE * dy }
}

fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

fn sigmoid_grad(y: f32, dy: f32) -> f32 {
    dy * y * (1.0 - y)
}

/// Checks a forward pass: y has the shape of x `[..]`.
fn check_forward(layer: &'static str, x: &[usize], y: &[usize]) -> Result<()> {
    expect_shape(layer, "y", y, x)
}

/// Checks a backward pass: dy and dx have the shape of the forward's output y `[..]`.
fn check_backward(layer: &'static str, y: &[usize], dy: &[usize], dx: &[usize]) -> Result<()> {
    expect_shape(layer, "dy", dy, y)?;
    expect_shape(layer, "dx", dx, y)
}

/// The leaky ReLU forward function of technique `t` (all but `Naive` are vectorised).
pub fn leaky_relu_forward_fn(t: Technique) -> ActivationForwardFn {
    match t {
        Technique::Naive => leaky_relu_forward_naive,
        _ => leaky_relu_forward_vectorized,
    }
}

/// Leaky ReLU forward with technique `t`: x `[..]` → y `[..]` (overwritten).
pub fn leaky_relu_forward(t: Technique, x: ArrayViewD<f32>, y: ArrayViewMutD<f32>) -> Result<()> {
    leaky_relu_forward_fn(t)(x, y)
}

/// The leaky ReLU over y `[..]` in place: the vectorised pass where y is contiguous (after a
/// convolution, [`crate::conv2d_leaky_relu_forward`]).
pub(crate) fn leaky_relu_in_place(mut y: ArrayViewMutD<f32>) {
    y.mapv_inplace(leaky_relu);
}

/// The leaky ReLU backward function of technique `t` (all but `Naive` are vectorised).
pub fn leaky_relu_backward_fn(t: Technique) -> ActivationBackwardFn {
    match t {
        Technique::Naive => leaky_relu_backward_naive,
        _ => leaky_relu_backward_vectorized,
    }
}

/// Leaky ReLU backward with technique `t`: forward output y and dy → dx, all `[..]`.
pub fn leaky_relu_backward(
    t: Technique,
    y: ArrayViewD<f32>,
    dy: ArrayViewD<f32>,
    dx: ArrayViewMutD<f32>,
) -> Result<()> {
    leaky_relu_backward_fn(t)(y, dy, dx)
}

/// The sigmoid forward function of technique `t` (all but `Naive` are vectorised).
pub fn sigmoid_forward_fn(t: Technique) -> ActivationForwardFn {
    match t {
        Technique::Naive => sigmoid_forward_naive,
        _ => sigmoid_forward_vectorized,
    }
}

/// Sigmoid forward with technique `t`: x `[..]` → y `[..]` (overwritten).
pub fn sigmoid_forward(t: Technique, x: ArrayViewD<f32>, y: ArrayViewMutD<f32>) -> Result<()> {
    sigmoid_forward_fn(t)(x, y)
}

/// The sigmoid backward function of technique `t` (all but `Naive` are vectorised).
pub fn sigmoid_backward_fn(t: Technique) -> ActivationBackwardFn {
    match t {
        Technique::Naive => sigmoid_backward_naive,
        _ => sigmoid_backward_vectorized,
    }
}

/// Sigmoid backward with technique `t`: forward output y and dy → dx, all `[..]`.
pub fn sigmoid_backward(
    t: Technique,
    y: ArrayViewD<f32>,
    dy: ArrayViewD<f32>,
    dx: ArrayViewMutD<f32>,
) -> Result<()> {
    sigmoid_backward_fn(t)(y, dy, dx)
}
