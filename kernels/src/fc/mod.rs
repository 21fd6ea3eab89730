//! Fully connected layer: x `[b, i]`, w `[o, i]`, bias `[o]` → y `[b, o]`, `y = x·wᵀ + bias`.
//! A `[b, c, h, w]` input is first seen as `[b, c·h·w]` by [`flatten`] (c, h, w order, as
//! PyTorch's `Flatten`).

use ndarray::{
    ArrayView1, ArrayView2, ArrayView4, ArrayViewMut1, ArrayViewMut2, ArrayViewMut3, Axis, Zip,
};

use crate::conv::{channel_sums, dot};
use crate::error::{Result, expect_nonempty, expect_shape, invalid, mismatch};
use crate::gemm::gemm;
use crate::scratch::Scratch;
use crate::technique::Technique;

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

/// Checks x, w, dy `[b, o]`, dx, dw and dbias; returns `(b, i, o)`.
fn backward_dims([x, w, dy, dx, dw, dbias]: [&[usize]; 6]) -> Result<(usize, usize, usize)> {
    let (b, i, o) = dims(BACKWARD, x, w)?;
    expect_shape(BACKWARD, "dy", dy, &[b, o])?;
    expect_shape(BACKWARD, "dx", dx, x)?;
    expect_shape(BACKWARD, "dw", dw, w)?;
    expect_shape(BACKWARD, "dbias", dbias, &[o])?;
    Ok((b, i, o))
}

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

/// Naive: three nested loops of scalar multiply-adds. Shapes as [`fc_forward`]; no scratch.
pub fn fc_forward_naive(
    x: ArrayView2<f32>,
    w: ArrayView2<f32>,
    bias: ArrayView1<f32>,
    mut y: ArrayViewMut2<f32>,
    _scratch: &mut Scratch,
) -> Result<()> {
    let (nb, ni, no) = forward_dims(x.shape(), w.shape(), bias.shape(), y.shape())?;
    for b in 0..nb {
        for o in 0..no {
            let mut acc = bias[o];
            for i in 0..ni {
                acc += w[[o, i]] * x[[b, i]];
            }
            y[[b, o]] = acc;
        }
    }
    Ok(())
}

/// Per output: each y element is the product-and-sum of an input row with a weight row.
/// Shapes as [`fc_forward`]; no scratch.
pub fn fc_forward_per_output(
    x: ArrayView2<f32>,
    w: ArrayView2<f32>,
    bias: ArrayView1<f32>,
    mut y: ArrayViewMut2<f32>,
    _scratch: &mut Scratch,
) -> Result<()> {
    forward_dims(x.shape(), w.shape(), bias.shape(), y.shape())?;
    Zip::indexed(&mut y).for_each(|(b, o), out| *out = dot(x.row(b), w.row(o)) + bias[o]);
    Ok(())
}

/// Axis reduce: the broadcast products `x[b, ·, i]·w[·, o, i]`, `[b, o, i]`, summed over the
/// input axis. Shapes as [`fc_forward`]; scratch: the product tensor.
pub fn fc_forward_axis_reduce(
    x: ArrayView2<f32>,
    w: ArrayView2<f32>,
    bias: ArrayView1<f32>,
    mut y: ArrayViewMut2<f32>,
    scratch: &mut Scratch,
) -> Result<()> {
    let (nb, ni, no) = forward_dims(x.shape(), w.shape(), bias.shape(), y.shape())?;
    let [prod_buf] = scratch.parts([nb * no * ni]);
    let mut prod = ArrayViewMut3::from_shape((nb, no, ni), prod_buf).expect("sized b·o·i");
    Zip::from(&mut prod)
        .and_broadcast(x.insert_axis(Axis(1)))
        .and_broadcast(w.insert_axis(Axis(0)))
        .for_each(|p, &xv, &wv| *p = xv * wv);
    Zip::from(&mut y)
        .and(prod.lanes(Axis(2)))
        .and_broadcast(&bias)
        .for_each(|out, lane, &bv| *out = lane.sum() + bv);
    Ok(())
}

/// GEMM: `y = bias; y += x·wᵀ` with one `sgemm` (im2col is the identity here).
/// Shapes as [`fc_forward`]; no scratch.
pub fn fc_forward_gemm(
    x: ArrayView2<f32>,
    w: ArrayView2<f32>,
    bias: ArrayView1<f32>,
    mut y: ArrayViewMut2<f32>,
    _scratch: &mut Scratch,
) -> Result<()> {
    forward_dims(x.shape(), w.shape(), bias.shape(), y.shape())?;
    y.assign(&bias);
    gemm(1.0, x, w.t(), 1.0, y)?;
    Ok(())
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

/// Naive: three nested loops of scalar multiply-adds into dx, dw and dbias.
/// Shapes as [`fc_backward`]; no scratch.
pub fn fc_backward_naive(
    x: ArrayView2<f32>,
    w: ArrayView2<f32>,
    dy: ArrayView2<f32>,
    mut dx: ArrayViewMut2<f32>,
    mut dw: ArrayViewMut2<f32>,
    mut dbias: ArrayViewMut1<f32>,
    _scratch: &mut Scratch,
) -> Result<()> {
    let (nb, ni, no) = backward_dims([
        x.shape(),
        w.shape(),
        dy.shape(),
        dx.shape(),
        dw.shape(),
        dbias.shape(),
    ])?;
    dx.fill(0.0);
    dw.fill(0.0);
    dbias.fill(0.0);
    for b in 0..nb {
        for o in 0..no {
            let gy = dy[[b, o]];
            dbias[o] += gy;
            for i in 0..ni {
                dw[[o, i]] += gy * x[[b, i]];
                dx[[b, i]] += gy * w[[o, i]];
            }
        }
    }
    Ok(())
}

/// Per output: for each y element, whole-row updates `dw[o] += dy·x[b]`, `dx[b] += dy·w[o]`.
/// Shapes as [`fc_backward`]; no scratch.
pub fn fc_backward_per_output(
    x: ArrayView2<f32>,
    w: ArrayView2<f32>,
    dy: ArrayView2<f32>,
    mut dx: ArrayViewMut2<f32>,
    mut dw: ArrayViewMut2<f32>,
    mut dbias: ArrayViewMut1<f32>,
    _scratch: &mut Scratch,
) -> Result<()> {
    backward_dims([
        x.shape(),
        w.shape(),
        dy.shape(),
        dx.shape(),
        dw.shape(),
        dbias.shape(),
    ])?;
    dx.fill(0.0);
    dw.fill(0.0);
    dbias.fill(0.0);
    for ((b, o), &gy) in dy.indexed_iter() {
        dbias[o] += gy;
        dw.row_mut(o).scaled_add(gy, &x.row(b));
        dx.row_mut(b).scaled_add(gy, &w.row(o));
    }
    Ok(())
}

/// Axis reduce: broadcast products `dy[b, o]·x[b, i]` summed over the batch axis give dw,
/// `dy[b, o]·w[o, i]` summed over the output axis give dx. Shapes as [`fc_backward`];
/// scratch: the `[b, o, i]` product tensor.
pub fn fc_backward_axis_reduce(
    x: ArrayView2<f32>,
    w: ArrayView2<f32>,
    dy: ArrayView2<f32>,
    mut dx: ArrayViewMut2<f32>,
    mut dw: ArrayViewMut2<f32>,
    dbias: ArrayViewMut1<f32>,
    scratch: &mut Scratch,
) -> Result<()> {
    let (nb, ni, no) = backward_dims([
        x.shape(),
        w.shape(),
        dy.shape(),
        dx.shape(),
        dw.shape(),
        dbias.shape(),
    ])?;
    let [prod_buf] = scratch.parts([nb * no * ni]);
    let mut prod = ArrayViewMut3::from_shape((nb, no, ni), prod_buf).expect("sized b·o·i");
    let gy = dy.insert_axis(Axis(2));
    Zip::from(&mut prod)
        .and_broadcast(&gy)
        .and_broadcast(x.insert_axis(Axis(1)))
        .for_each(|p, &g, &xv| *p = g * xv);
    Zip::from(&mut dw)
        .and(prod.lanes(Axis(0)))
        .for_each(|d, lane| *d = lane.sum());
    Zip::from(&mut prod)
        .and_broadcast(&gy)
        .and_broadcast(w.insert_axis(Axis(0)))
        .for_each(|p, &g, &wv| *p = g * wv);
    Zip::from(&mut dx)
        .and(prod.lanes(Axis(1)))
        .for_each(|d, lane| *d = lane.sum());
    channel_sums(dy.into_dyn(), dbias);
    Ok(())
}

/// GEMM: `dw = dyᵀ·x` and `dx = dy·w`, one `sgemm` each. Shapes as [`fc_backward`]; no scratch.
pub fn fc_backward_gemm(
    x: ArrayView2<f32>,
    w: ArrayView2<f32>,
    dy: ArrayView2<f32>,
    dx: ArrayViewMut2<f32>,
    dw: ArrayViewMut2<f32>,
    dbias: ArrayViewMut1<f32>,
    _scratch: &mut Scratch,
) -> Result<()> {
    backward_dims([
        x.shape(),
        w.shape(),
        dy.shape(),
        dx.shape(),
        dw.shape(),
        dbias.shape(),
    ])?;
    gemm(1.0, dy.t(), x, 0.0, dw)?;
    gemm(1.0, dy, w, 0.0, dx)?;
    channel_sums(dy.into_dyn(), dbias);
    Ok(())
}
