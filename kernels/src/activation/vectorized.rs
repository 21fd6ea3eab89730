//! Vectorised activations: one flat pass over the elements, as plain slices where the memory
//! allows, which the compiler vectorises.

use ndarray::{ArrayViewD, ArrayViewMutD, Zip};

use super::{
    RELU_BACKWARD, RELU_FORWARD, SIGMOID_BACKWARD, SIGMOID_FORWARD, check_backward, check_forward,
    leaky_relu, leaky_relu_grad, sigmoid, sigmoid_grad,
};
use crate::error::Result;

/// y `[..]` ← `f(x)` for x `[..]`, one flat pass.
fn map_vectorized(
    layer: &'static str,
    x: ArrayViewD<f32>,
    mut y: ArrayViewMutD<f32>,
    f: impl Fn(f32) -> f32,
) -> Result<()> {
    check_forward(layer, x.shape(), y.shape())?;
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

/// dx `[..]` ← `f(y, dy)` for y, dy `[..]`, one flat pass.
fn grad_vectorized(
    layer: &'static str,
    y: ArrayViewD<f32>,
    dy: ArrayViewD<f32>,
    mut dx: ArrayViewMutD<f32>,
    f: impl Fn(f32, f32) -> f32,
) -> Result<()> {
    check_backward(layer, y.shape(), dy.shape(), dx.shape())?;
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

/// Leaky ReLU forward, vectorised: y `[..]` ← `max(x, 0.01·x)` for x `[..]`, one flat pass.
pub fn leaky_relu_forward_vectorized(x: ArrayViewD<f32>, y: ArrayViewMutD<f32>) -> Result<()> {
    map_vectorized(RELU_FORWARD, x, y, leaky_relu)
}

/// Leaky ReLU backward, vectorised: dx ← dy where y > 0, else 0.01·dy; y, dy, dx `[..]`.
pub fn leaky_relu_backward_vectorized(
    y: ArrayViewD<f32>,
    dy: ArrayViewD<f32>,
    dx: ArrayViewMutD<f32>,
) -> Result<()> {
    grad_vectorized(RELU_BACKWARD, y, dy, dx, leaky_relu_grad)
}

/// Sigmoid forward, vectorised: y `[..]` ← `1 / (1 + e^−x)` for x `[..]`, one flat pass.
pub fn sigmoid_forward_vectorized(x: ArrayViewD<f32>, y: ArrayViewMutD<f32>) -> Result<()> {
    map_vectorized(SIGMOID_FORWARD, x, y, sigmoid)
}

/// Sigmoid backward, vectorised: dx ← dy·y·(1 − y); y, dy, dx `[..]`.
pub fn sigmoid_backward_vectorized(
    y: ArrayViewD<f32>,
    dy: ArrayViewD<f32>,
    dx: ArrayViewMutD<f32>,
) -> Result<()> {
    grad_vectorized(SIGMOID_BACKWARD, y, dy, dx, sigmoid_grad)
}
