//! Fully connected layer: x `[b, i]`, w `[o, i]`, bias `[o]` → y `[b, o]`, `y = x·wᵀ + bias`.
//! A `[b, c, h, w]` input is first seen as `[b, c·h·w]` by [`flatten`] (c, h, w order, as
//! PyTorch's `Flatten`).
//!
//! Techniques, one file each: `naive.rs`, `per_output.rs`, `axis_reduce.rs`, and `gemm.rs`,
//! which `Im2colGemm` and `Direct` both run (the input already is the matrix: there is no
//! window to unfold).

mod axis_reduce;
mod gemm;
mod naive;
mod per_output;

use ndarray::{ArrayView1, ArrayView2, ArrayView4, ArrayViewMut1, ArrayViewMut2, Axis};

use crate::error::{Result, expect_nonempty, expect_shape, invalid, mismatch};
use crate::scratch::Scratch;
use crate::technique::Technique;

pub use axis_reduce::{fc_backward_axis_reduce, fc_forward_axis_reduce};
pub use gemm::{fc_backward_gemm, fc_forward_gemm};
pub use naive::{fc_backward_naive, fc_forward_naive};
pub use per_output::{fc_backward_per_output, fc_forward_per_output};

const FORWARD: &str = "fc forward";
const BACKWARD: &str = "fc backward";

/// x `[b, c, h, w]` seen as `[b, c·h·w]` in c, h, w order, without copying; an error if its
/// layout does not allow that (call `as_standard_layout()` first).
pub fn flatten(x: ArrayView4<f32>) -> Result<ArrayView2<f32>> {
    let [b, c, h, w] = [0, 1, 2, 3].map(|a| x.len_of(Axis(a)));
    let shape = x.shape().to_vec();
    x.into_shape_with_order((b, c * h * w)).map_err(|_| {
        invalid(
            "flatten",
            format!("x {shape:?} is not in standard (row-major) layout, so it cannot be flattened without a copy"),
        )
    })
}

/// Checks x `[b, i]`, w `[o, i]`, the bias `[o]` and y `[b, o]`; returns `(b, i, o)`.
fn forward_dims(
    x: &[usize],
    w: &[usize],
    bias: &[usize],
    y: &[usize],
) -> Result<(usize, usize, usize)> {
    let (b, i, o) = dims(FORWARD, x, w)?;
    expect_shape(FORWARD, "bias", bias, &[o])?;
    expect_shape(FORWARD, "y", y, &[b, o])?;
    Ok((b, i, o))
}

/// Checks x `[b, i]`, w `[o, i]`, dy `[b, o]`, dx `[b, i]`, dw `[o, i]` and dbias `[o]`;
/// returns `(b, i, o)`.
fn backward_dims(
    x: &ArrayView2<f32>,
    w: &ArrayView2<f32>,
    dy: &ArrayView2<f32>,
    dx: &ArrayViewMut2<f32>,
    dw: &ArrayViewMut2<f32>,
    dbias: &ArrayViewMut1<f32>,
) -> Result<(usize, usize, usize)> {
    let (b, i, o) = dims(BACKWARD, x.shape(), w.shape())?;
    expect_shape(BACKWARD, "dy", dy.shape(), &[b, o])?;
    expect_shape(BACKWARD, "dx", dx.shape(), x.shape())?;
    expect_shape(BACKWARD, "dw", dw.shape(), w.shape())?;
    expect_shape(BACKWARD, "dbias", dbias.shape(), &[o])?;
    Ok((b, i, o))
}

/// Checks that x is `[b, i]` and w `[o, i]`, neither empty; returns `(b, i, o)`.
fn dims(layer: &'static str, x: &[usize], w: &[usize]) -> Result<(usize, usize, usize)> {
    expect_nonempty(layer, "x", x)?;
    expect_nonempty(layer, "w", w)?;
    let (&[b, i], &[o, wi]) = (x, w) else {
        return Err(mismatch(
            layer,
            format!("x {x:?} and w {w:?} must be [b, i] and [o, i]"),
        ));
    };
    if wi != i {
        return Err(mismatch(
            layer,
            format!("w {w:?} expects {wi} inputs but x {x:?} has {i}"),
        ));
    }
    Ok((b, i, o))
}

/// The signature every fully connected forward technique shares:
/// `(x [b, i], w [o, i], bias [o], y [b, o], scratch)`.
pub type FcForwardFn = fn(
    ArrayView2<f32>,
    ArrayView2<f32>,
    ArrayView1<f32>,
    ArrayViewMut2<f32>,
    &mut Scratch,
) -> Result<()>;

/// The signature every fully connected backward technique shares:
/// `(x [b, i], w [o, i], dy [b, o], dx [b, i], dw [o, i], dbias [o], scratch)`.
pub type FcBackwardFn = fn(
    ArrayView2<f32>,
    ArrayView2<f32>,
    ArrayView2<f32>,
    ArrayViewMut2<f32>,
    ArrayViewMut2<f32>,
    ArrayViewMut1<f32>,
    &mut Scratch,
) -> Result<()>;

/// The forward function of technique `t`.
pub fn fc_forward_fn(t: Technique) -> FcForwardFn {
    match t {
        Technique::Naive => fc_forward_naive,
        Technique::PerOutput => fc_forward_per_output,
        Technique::AxisReduce => fc_forward_axis_reduce,
        Technique::Im2colGemm | Technique::Direct => fc_forward_gemm,
    }
}

/// Fully connected forward with technique `t`: x `[b, i]`, w `[o, i]`, bias `[o]` →
/// y `[b, o]` (overwritten). Im2colGemm (and Direct) is [`fc_forward_gemm`]: the input already is the
/// matrix.
pub fn fc_forward(
    t: Technique,
    x: ArrayView2<f32>,
    w: ArrayView2<f32>,
    bias: ArrayView1<f32>,
    y: ArrayViewMut2<f32>,
    scratch: &mut Scratch,
) -> Result<()> {
    fc_forward_fn(t)(x, w, bias, y, scratch)
}

/// The backward function of technique `t`.
pub fn fc_backward_fn(t: Technique) -> FcBackwardFn {
    match t {
        Technique::Naive => fc_backward_naive,
        Technique::PerOutput => fc_backward_per_output,
        Technique::AxisReduce => fc_backward_axis_reduce,
        Technique::Im2colGemm | Technique::Direct => fc_backward_gemm,
    }
}

/// Fully connected backward with technique `t`: from x `[b, i]`, w `[o, i]` and dy `[b, o]`,
/// overwrites dx `[b, i]`, dw `[o, i]` and dbias `[o]` (sums over the batch, not means).
pub fn fc_backward(
    t: Technique,
    x: ArrayView2<f32>,
    w: ArrayView2<f32>,
    dy: ArrayView2<f32>,
    dx: ArrayViewMut2<f32>,
    dw: ArrayViewMut2<f32>,
    dbias: ArrayViewMut1<f32>,
    scratch: &mut Scratch,
) -> Result<()> {
    fc_backward_fn(t)(x, w, dy, dx, dw, dbias, scratch)
}
