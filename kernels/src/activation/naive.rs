//! Naive activations: a multi-index loop, indexed reads and writes.

use ndarray::{ArrayViewD, ArrayViewMutD, indices};

use super::{
    RELU_BACKWARD, RELU_FORWARD, SIGMOID_BACKWARD, SIGMOID_FORWARD, check_backward, check_forward,
    leaky_relu, leaky_relu_grad, sigmoid, sigmoid_grad,
};
use crate::error::Result;
use crate::lanes::at_active_isa;

/// y `[..]` ← `f(x)` for x `[..]`, one indexed element at a time.
fn map_naive(
    layer: &'static str,
    x: ArrayViewD<f32>,
    mut y: ArrayViewMutD<f32>,
    f: impl Fn(f32) -> f32,
) -> Result<()> {
    check_forward(layer, x.shape(), y.shape())?;
    at_active_isa(
        #[inline(always)]
        move || {
            for index in indices(x.raw_dim()) {
                y[&index] = f(x[&index]);
            }
        },
    );
    Ok(())
}

/// dx `[..]` ← `f(y, dy)` for y, dy `[..]`, one indexed element at a time.
fn grad_naive(
    layer: &'static str,
    y: ArrayViewD<f32>,
    dy: ArrayViewD<f32>,
    mut dx: ArrayViewMutD<f32>,
    f: impl Fn(f32, f32) -> f32,
) -> Result<()> {
    check_backward(layer, y.shape(), dy.shape(), dx.shape())?;
    at_active_isa(
        #[inline(always)]
        move || {
            for index in indices(y.raw_dim()) {
                dx[&index] = f(y[&index], dy[&index]);
            }
        },
    );
    Ok(())
}

/// Leaky ReLU forward, naive: y `[..]` ← `max(x, 0.01·x)` for x `[..]`, indexed loop.
pub fn leaky_relu_forward_naive(x: ArrayViewD<f32>, y: ArrayViewMutD<f32>) -> Result<()> {
    map_naive(RELU_FORWARD, x, y, leaky_relu)
}

/// Leaky ReLU backward, naive: dx ← dy where y > 0, else 0.01·dy; y, dy, dx `[..]`.
pub fn leaky_relu_backward_naive(
    y: ArrayViewD<f32>,
    dy: ArrayViewD<f32>,
    dx: ArrayViewMutD<f32>,
) -> Result<()> {
    grad_naive(RELU_BACKWARD, y, dy, dx, leaky_relu_grad)
}

/// Sigmoid forward, naive: y `[..]` ← `1 / (1 + e^−x)` for x `[..]`, indexed loop.
pub fn sigmoid_forward_naive(x: ArrayViewD<f32>, y: ArrayViewMutD<f32>) -> Result<()> {
    map_naive(SIGMOID_FORWARD, x, y, sigmoid)
}

/// Sigmoid backward, naive: dx ← dy·y·(1 − y); y, dy, dx `[..]`.
pub fn sigmoid_backward_naive(
    y: ArrayViewD<f32>,
    dy: ArrayViewD<f32>,
    dx: ArrayViewMutD<f32>,
) -> Result<()> {
    grad_naive(SIGMOID_BACKWARD, y, dy, dx, sigmoid_grad)
}
