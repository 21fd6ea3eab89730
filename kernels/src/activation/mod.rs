//! Elementwise activations of any shape (`[b, c, h, w]` after a convolution, `[b, o]` after a
//! fully connected layer): the seed's leaky ReLU, `max(x, 0.01·x)`, and the sigmoid.
//!
//! Both backward passes take the forward's output y, not its input: y > 0 exactly where x > 0
//! for the leaky ReLU, and the sigmoid's derivative is `y·(1 − y)`.
//!
//! Techniques: an elementwise layer has no window to sum, no axis to reduce and nothing to
//! unfold, so there are two: `Naive` (a multi-index loop, indexed reads and writes) and the
//! vectorised pass (one flat `Zip` over the elements), which `PerOutput`, `AxisReduce`,
//! `Im2colGemm` and `Direct` all run.

use ndarray::{ArrayViewD, ArrayViewMutD, Zip, indices};

use crate::error::{Result, expect_shape};
use crate::technique::Technique;

/// Slope of the leaky ReLU for negative inputs, as in the seed.
pub const LEAKY_RELU_SLOPE: f32 = 0.01;

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

fn map_naive(
    layer: &'static str,
    x: ArrayViewD<f32>,
    mut y: ArrayViewMutD<f32>,
    f: impl Fn(f32) -> f32,
) -> Result<()> {
    expect_shape(layer, "y", y.shape(), x.shape())?;
    for index in indices(x.raw_dim()) {
        y[&index] = f(x[&index]);
    }
    Ok(())
}

fn map_vectorized(
    layer: &'static str,
    x: ArrayViewD<f32>,
    mut y: ArrayViewMutD<f32>,
    f: impl Fn(f32) -> f32,
) -> Result<()> {
    expect_shape(layer, "y", y.shape(), x.shape())?;
    // Contiguous memory of one layout (the usual case) as plain slices, which the compiler
    // vectorises; other layouts through ndarray's Zip.
    let same_layout = x.strides() == y.strides();
    match (x.as_slice_memory_order(), y.as_slice_memory_order_mut()) {
        (Some(xs), Some(ys)) if same_layout => {
            ys.iter_mut().zip(xs).for_each(|(out, &v)| *out = f(v))
        }
        _ => Zip::from(y).and(&x).for_each(|out, &v| *out = f(v)),
    }
    Ok(())
}

fn grad_naive(
    layer: &'static str,
    y: ArrayViewD<f32>,
    dy: ArrayViewD<f32>,
    mut dx: ArrayViewMutD<f32>,
    f: impl Fn(f32, f32) -> f32,
) -> Result<()> {
    expect_shape(layer, "dy", dy.shape(), y.shape())?;
    expect_shape(layer, "dx", dx.shape(), y.shape())?;
    for index in indices(y.raw_dim()) {
        dx[&index] = f(y[&index], dy[&index]);
    }
    Ok(())
}

fn grad_vectorized(
    layer: &'static str,
    y: ArrayViewD<f32>,
    dy: ArrayViewD<f32>,
    mut dx: ArrayViewMutD<f32>,
    f: impl Fn(f32, f32) -> f32,
) -> Result<()> {
    expect_shape(layer, "dy", dy.shape(), y.shape())?;
    expect_shape(layer, "dx", dx.shape(), y.shape())?;
    let same_layout = y.strides() == dy.strides() && y.strides() == dx.strides();
    match (
        y.as_slice_memory_order(),
        dy.as_slice_memory_order(),
        dx.as_slice_memory_order_mut(),
    ) {
        (Some(ys), Some(gs), Some(out)) if same_layout => {
            out.iter_mut()
                .zip(ys)
                .zip(gs)
                .for_each(|((o, &yv), &g)| *o = f(yv, g));
        }
        _ => Zip::from(dx)
            .and(&y)
            .and(&dy)
            .for_each(|out, &yv, &g| *out = f(yv, g)),
    }
    Ok(())
}

const RELU_FORWARD: &str = "leaky_relu forward";
const RELU_BACKWARD: &str = "leaky_relu backward";
const SIGMOID_FORWARD: &str = "sigmoid forward";
const SIGMOID_BACKWARD: &str = "sigmoid backward";

/// Leaky ReLU forward, naive: y `[..]` ← `max(x, 0.01·x)` for x `[..]`, indexed loop.
pub fn leaky_relu_forward_naive(x: ArrayViewD<f32>, y: ArrayViewMutD<f32>) -> Result<()> {
    map_naive(RELU_FORWARD, x, y, leaky_relu)
}

/// Leaky ReLU forward, vectorised: y `[..]` ← `max(x, 0.01·x)` for x `[..]`, one flat pass.
pub fn leaky_relu_forward_vectorized(x: ArrayViewD<f32>, y: ArrayViewMutD<f32>) -> Result<()> {
    map_vectorized(RELU_FORWARD, x, y, leaky_relu)
}

/// Leaky ReLU backward, naive: dx ← dy where y > 0, else 0.01·dy; y, dy, dx `[..]`.
pub fn leaky_relu_backward_naive(
    y: ArrayViewD<f32>,
    dy: ArrayViewD<f32>,
    dx: ArrayViewMutD<f32>,
) -> Result<()> {
    grad_naive(RELU_BACKWARD, y, dy, dx, leaky_relu_grad)
}

/// Leaky ReLU backward, vectorised: dx ← dy where y > 0, else 0.01·dy; y, dy, dx `[..]`.
pub fn leaky_relu_backward_vectorized(
    y: ArrayViewD<f32>,
    dy: ArrayViewD<f32>,
    dx: ArrayViewMutD<f32>,
) -> Result<()> {
    grad_vectorized(RELU_BACKWARD, y, dy, dx, leaky_relu_grad)
}

/// Sigmoid forward, naive: y `[..]` ← `1 / (1 + e^−x)` for x `[..]`, indexed loop.
pub fn sigmoid_forward_naive(x: ArrayViewD<f32>, y: ArrayViewMutD<f32>) -> Result<()> {
    map_naive(SIGMOID_FORWARD, x, y, sigmoid)
}

/// Sigmoid forward, vectorised: y `[..]` ← `1 / (1 + e^−x)` for x `[..]`, one flat pass.
pub fn sigmoid_forward_vectorized(x: ArrayViewD<f32>, y: ArrayViewMutD<f32>) -> Result<()> {
    map_vectorized(SIGMOID_FORWARD, x, y, sigmoid)
}

/// Sigmoid backward, naive: dx ← dy·y·(1 − y); y, dy, dx `[..]`.
pub fn sigmoid_backward_naive(
    y: ArrayViewD<f32>,
    dy: ArrayViewD<f32>,
    dx: ArrayViewMutD<f32>,
) -> Result<()> {
    grad_naive(SIGMOID_BACKWARD, y, dy, dx, sigmoid_grad)
}

/// Sigmoid backward, vectorised: dx ← dy·y·(1 − y); y, dy, dx `[..]`.
pub fn sigmoid_backward_vectorized(
    y: ArrayViewD<f32>,
    dy: ArrayViewD<f32>,
    dx: ArrayViewMutD<f32>,
) -> Result<()> {
    grad_vectorized(SIGMOID_BACKWARD, y, dy, dx, sigmoid_grad)
}

/// The leaky ReLU forward function of technique `t` (all but `Naive` are vectorised).
pub fn leaky_relu_forward_fn(t: Technique) -> ActivationForwardFn {
    match t {
        Technique::Naive => leaky_relu_forward_naive,
        _ => leaky_relu_forward_vectorized,
    }
}

/// The leaky ReLU backward function of technique `t` (all but `Naive` are vectorised).
pub fn leaky_relu_backward_fn(t: Technique) -> ActivationBackwardFn {
    match t {
        Technique::Naive => leaky_relu_backward_naive,
        _ => leaky_relu_backward_vectorized,
    }
}

/// The sigmoid forward function of technique `t` (all but `Naive` are vectorised).
pub fn sigmoid_forward_fn(t: Technique) -> ActivationForwardFn {
    match t {
        Technique::Naive => sigmoid_forward_naive,
        _ => sigmoid_forward_vectorized,
    }
}

/// The sigmoid backward function of technique `t` (all but `Naive` are vectorised).
pub fn sigmoid_backward_fn(t: Technique) -> ActivationBackwardFn {
    match t {
        Technique::Naive => sigmoid_backward_naive,
        _ => sigmoid_backward_vectorized,
    }
}

/// Leaky ReLU forward with technique `t`: x `[..]` → y `[..]` (overwritten).
pub fn leaky_relu_forward(t: Technique, x: ArrayViewD<f32>, y: ArrayViewMutD<f32>) -> Result<()> {
    leaky_relu_forward_fn(t)(x, y)
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

/// Sigmoid forward with technique `t`: x `[..]` → y `[..]` (overwritten).
pub fn sigmoid_forward(t: Technique, x: ArrayViewD<f32>, y: ArrayViewMutD<f32>) -> Result<()> {
    sigmoid_forward_fn(t)(x, y)
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
