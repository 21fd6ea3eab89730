//! Max pooling: x `[b, c, h, w]` → y `[b, c, h2, w2]` with `h2 = (h − f) / s + 1` (no
//! padding, as in the seed), plus argmax `[b, c, h2, w2]`: for each output, the flat index
//! `row · w + col` of its maximum in the input plane, which the backward pass routes dy to.
//!
//! Tie rule, identical in every technique: the first maximum of a window in row-major order
//! wins (a later element replaces the running maximum only if strictly greater). After a ReLU
//! ties are common, so this is part of the contract, not an accident of one loop order.

use ndarray::{ArrayView2, ArrayView4, ArrayViewMut2, ArrayViewMut4, Axis, Zip, s};

use crate::error::{Result, expect_shape, invalid};
use crate::scratch::Scratch;
use crate::technique::Technique;
use crate::window::Geometry;

const FORWARD: &str = "max_pool2d forward";
const BACKWARD: &str = "max_pool2d backward";

/// Window size and stride of a max pooling.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pool2dParams {
    /// The window is `size × size`.
    pub size: usize,
    /// Step between windows, at least 1.
    pub stride: usize,
}

impl Pool2dParams {
    /// Shape of y `[b, c, h2, w2]` for x `[b, c, h, w]`, or why x cannot be pooled.
    pub fn output_shape(&self, x: &[usize]) -> Result<[usize; 4]> {
        Ok(self.geometry(FORWARD, x)?.output_shape())
    }

    fn geometry(&self, layer: &'static str, x: &[usize]) -> Result<Geometry> {
        let c = x.get(1).copied().unwrap_or(0);
        let g = Geometry::new(layer, x, c.max(1), (self.size, self.size), self.stride, 0)?;
        if u32::try_from(g.h * g.w).is_err() {
            return Err(invalid(
                layer,
                format!("x {x:?} has planes too large for u32 argmax"),
            ));
        }
        Ok(g)
    }

    fn forward_geometry(&self, x: &[usize], y: &[usize], argmax: &[usize]) -> Result<Geometry> {
        let g = self.geometry(FORWARD, x)?;
        expect_shape(FORWARD, "y", y, &g.output_shape())?;
        expect_shape(FORWARD, "argmax", argmax, &g.output_shape())?;
        Ok(g)
    }

    /// Checks the shapes, and that every argmax lies inside its own window, so that a corrupt
    /// index is an error rather than a write out of place.
    fn backward_geometry(
        &self,
        dy: &[usize],
        argmax: &ArrayView4<u32>,
        dx: &[usize],
    ) -> Result<Geometry> {
        let g = self.geometry(BACKWARD, dx)?;
        expect_shape(BACKWARD, "dy", dy, &g.output_shape())?;
        expect_shape(BACKWARD, "argmax", argmax.shape(), &g.output_shape())?;
        for ((b, c, i, j), &a) in argmax.indexed_iter() {
            let (r, q) = (a as usize / g.w, a as usize % g.w);
            if !(g.rows(i).contains(&r) && g.cols(j).contains(&q)) {
                return Err(invalid(
                    BACKWARD,
                    format!("argmax[{b}, {c}, {i}, {j}] = {a} lies outside its window"),
                ));
            }
        }
        Ok(g)
    }
}

/// The signature every pooling forward technique shares:
/// `(params, x [b, c, h, w], y [b, c, h2, w2], argmax [b, c, h2, w2], scratch)`.
pub type PoolForwardFn = fn(
    &Pool2dParams,
    ArrayView4<f32>,
    ArrayViewMut4<f32>,
    ArrayViewMut4<u32>,
    &mut Scratch,
) -> Result<()>;

/// The signature every pooling backward technique shares:
/// `(params, dy [b, c, h2, w2], argmax [b, c, h2, w2], dx [b, c, h, w], scratch)`.
pub type PoolBackwardFn = fn(
    &Pool2dParams,
    ArrayView4<f32>,
    ArrayView4<u32>,
    ArrayViewMut4<f32>,
    &mut Scratch,
) -> Result<()>;

/// The forward function of technique `t`.
pub fn max_pool2d_forward_fn(t: Technique) -> PoolForwardFn {
    match t {
        Technique::Naive => max_pool2d_forward_naive,
        Technique::PerOutput => max_pool2d_forward_per_output,
        Technique::AxisReduce => max_pool2d_forward_axis_reduce,
        Technique::Im2colGemm => max_pool2d_forward_im2col,
    }
}

/// Max pooling forward with technique `t`: x `[b, c, h, w]` → y and argmax
/// `[b, c, h2, w2]` (both overwritten).
pub fn max_pool2d_forward(
    t: Technique,
    p: &Pool2dParams,
    x: ArrayView4<f32>,
    y: ArrayViewMut4<f32>,
    argmax: ArrayViewMut4<u32>,
    scratch: &mut Scratch,
) -> Result<()> {
    max_pool2d_forward_fn(t)(p, x, y, argmax, scratch)
}

/// The tie rule's one step: a value replaces the running maximum only if strictly greater.
fn keep_first_max(max: &mut f32, arg: &mut u32, value: f32, index: u32) {
    if value > *max {
        *max = value;
        *arg = index;
    }
}

/// Flat plane index of tap `(ki, kj)` of the window at output `(i, j)`.
fn plane_index(g: &Geometry, i: usize, j: usize, ki: usize, kj: usize) -> u32 {
    ((i * g.stride + ki) * g.w + j * g.stride + kj) as u32
}

/// Naive: five nested loops, a scalar compare per tap. Shapes as [`max_pool2d_forward`];
/// uses no scratch.
pub fn max_pool2d_forward_naive(
    p: &Pool2dParams,
    x: ArrayView4<f32>,
    mut y: ArrayViewMut4<f32>,
    mut argmax: ArrayViewMut4<u32>,
    _scratch: &mut Scratch,
) -> Result<()> {
    let g = p.forward_geometry(x.shape(), y.shape(), argmax.shape())?;
    for b in 0..g.b {
        for c in 0..g.c {
            for i in 0..g.h2 {
                for j in 0..g.w2 {
                    let mut max = x[[b, c, i * g.stride, j * g.stride]];
                    let mut arg = plane_index(&g, i, j, 0, 0);
                    for ki in 0..g.kh {
                        for kj in 0..g.kw {
                            let v = x[[b, c, i * g.stride + ki, j * g.stride + kj]];
                            keep_first_max(&mut max, &mut arg, v, plane_index(&g, i, j, ki, kj));
                        }
                    }
                    y[[b, c, i, j]] = max;
                    argmax[[b, c, i, j]] = arg;
                }
            }
        }
    }
    Ok(())
}

/// Per output: each y element is a whole-window reduction, the first maximum of its
/// `[f, f]` window. Shapes as [`max_pool2d_forward`]; uses no scratch.
pub fn max_pool2d_forward_per_output(
    p: &Pool2dParams,
    x: ArrayView4<f32>,
    mut y: ArrayViewMut4<f32>,
    mut argmax: ArrayViewMut4<u32>,
    _scratch: &mut Scratch,
) -> Result<()> {
    let g = p.forward_geometry(x.shape(), y.shape(), argmax.shape())?;
    Zip::indexed(&mut y)
        .and(&mut argmax)
        .for_each(|(b, c, i, j), out, arg| {
            let window = x.slice(s![b, c, g.rows(i), g.cols(j)]);
            let first = (window[[0, 0]], plane_index(&g, i, j, 0, 0));
            (*out, *arg) = window
                .indexed_iter()
                .fold(first, |(mut m, mut a), ((ki, kj), &v)| {
                    keep_first_max(&mut m, &mut a, v, plane_index(&g, i, j, ki, kj));
                    (m, a)
                });
        });
    Ok(())
}

/// Axis reduce: at each output position, the window's taps are reduced one after another,
/// each step a running-maximum update over the whole `[b, c]` slice at once.
/// Shapes as [`max_pool2d_forward`]; uses no scratch.
pub fn max_pool2d_forward_axis_reduce(
    p: &Pool2dParams,
    x: ArrayView4<f32>,
    mut y: ArrayViewMut4<f32>,
    mut argmax: ArrayViewMut4<u32>,
    _scratch: &mut Scratch,
) -> Result<()> {
    let g = p.forward_geometry(x.shape(), y.shape(), argmax.shape())?;
    for i in 0..g.h2 {
        for j in 0..g.w2 {
            let mut max = y.slice_mut(s![.., .., i, j]);
            let mut arg = argmax.slice_mut(s![.., .., i, j]);
            let window = x.slice(s![.., .., g.rows(i), g.cols(j)]);
            max.assign(&window.slice(s![.., .., 0, 0]));
            arg.fill(plane_index(&g, i, j, 0, 0));
            for ki in 0..g.kh {
                for kj in 0..g.kw {
                    let index = plane_index(&g, i, j, ki, kj);
                    Zip::from(&mut max)
                        .and(&mut arg)
                        .and(window.slice(s![.., .., ki, kj]))
                        .for_each(|m, a, &v| keep_first_max(m, a, v, index));
                }
            }
        }
    }
    Ok(())
}

/// im2col: each image is unfolded into `[c·f·f, h2·w2]` (row = channel and tap), then each
/// channel's rows are reduced one after another with a running maximum over all its windows
/// at once, on contiguous rows; there is no product, so no GEMM. Shapes as
/// [`max_pool2d_forward`]; scratch: one image's unfolded matrix, a plane's running maximum
/// and the tap it came from.
pub fn max_pool2d_forward_im2col(
    p: &Pool2dParams,
    x: ArrayView4<f32>,
    mut y: ArrayViewMut4<f32>,
    mut argmax: ArrayViewMut4<u32>,
    scratch: &mut Scratch,
) -> Result<()> {
    let g = p.forward_geometry(x.shape(), y.shape(), argmax.shape())?;
    let (taps, hw2) = (g.kh * g.kw, g.h2 * g.w2);
    let [cols_buf, max_buf, tap_buf] = scratch.parts([g.cols_len(), hw2, hw2]);
    for b in 0..g.b {
        let cols = g.im2col(x.index_axis(Axis(0), b), cols_buf);
        let cols = cols.as_slice().expect("im2col writes contiguous rows");
        for (c, channel) in cols.chunks_exact(taps * hw2).enumerate() {
            max_buf.copy_from_slice(&channel[..hw2]);
            // The winning tap, as f32 (exact: taps are few).
            tap_buf.fill(0.0);
            for (t, row) in channel.chunks_exact(hw2).enumerate().skip(1) {
                let t = t as f32;
                for ((m, a), &v) in max_buf.iter_mut().zip(tap_buf.iter_mut()).zip(row) {
                    // The tie rule: strictly greater replaces. Selects, not branches, so
                    // that the loop runs on vector lanes.
                    let greater = v > *m;
                    *a = if greater { t } else { *a };
                    *m = if greater { v } else { *m };
                }
            }
            let maxes = ArrayView2::from_shape((g.h2, g.w2), &*max_buf).expect("sized h2·w2");
            let winners = ArrayView2::from_shape((g.h2, g.w2), &*tap_buf).expect("sized h2·w2");
            y.slice_mut(s![b, c, .., ..]).assign(&maxes);
            Zip::indexed(argmax.slice_mut(s![b, c, .., ..]))
                .and(winners)
                .for_each(|(i, j), a, &t| {
                    let t = t as usize;
                    *a = plane_index(&g, i, j, t / g.kw, t % g.kw);
                });
        }
    }
    Ok(())
}

/// The backward function of technique `t`.
pub fn max_pool2d_backward_fn(t: Technique) -> PoolBackwardFn {
    match t {
        Technique::Naive => max_pool2d_backward_naive,
        Technique::PerOutput => max_pool2d_backward_per_output,
        Technique::AxisReduce => max_pool2d_backward_axis_reduce,
        Technique::Im2colGemm => max_pool2d_backward_im2col,
    }
}

/// Max pooling backward with technique `t`: dy `[b, c, h2, w2]` goes to the argmax of each
/// window (from the forward pass, same shape), summed where windows overlap; overwrites
/// dx `[b, c, h, w]`, zero elsewhere.
pub fn max_pool2d_backward(
    t: Technique,
    p: &Pool2dParams,
    dy: ArrayView4<f32>,
    argmax: ArrayView4<u32>,
    dx: ArrayViewMut4<f32>,
    scratch: &mut Scratch,
) -> Result<()> {
    max_pool2d_backward_fn(t)(p, dy, argmax, dx, scratch)
}

/// Naive: four nested loops, one scalar add at each output's argmax.
/// Shapes as [`max_pool2d_backward`]; uses no scratch.
pub fn max_pool2d_backward_naive(
    p: &Pool2dParams,
    dy: ArrayView4<f32>,
    argmax: ArrayView4<u32>,
    mut dx: ArrayViewMut4<f32>,
    _scratch: &mut Scratch,
) -> Result<()> {
    let g = p.backward_geometry(dy.shape(), &argmax, dx.shape())?;
    dx.fill(0.0);
    for b in 0..g.b {
        for c in 0..g.c {
            for i in 0..g.h2 {
                for j in 0..g.w2 {
                    let a = argmax[[b, c, i, j]] as usize;
                    dx[[b, c, a / g.w, a % g.w]] += dy[[b, c, i, j]];
                }
            }
        }
    }
    Ok(())
}

/// Per output: each dy element is added to its whole `[f, f]` window of dx through a one-hot
/// mask of the argmax. Shapes as [`max_pool2d_backward`]; uses no scratch.
pub fn max_pool2d_backward_per_output(
    p: &Pool2dParams,
    dy: ArrayView4<f32>,
    argmax: ArrayView4<u32>,
    mut dx: ArrayViewMut4<f32>,
    _scratch: &mut Scratch,
) -> Result<()> {
    let g = p.backward_geometry(dy.shape(), &argmax, dx.shape())?;
    dx.fill(0.0);
    for ((b, c, i, j), &gy) in dy.indexed_iter() {
        let a = argmax[[b, c, i, j]];
        Zip::indexed(dx.slice_mut(s![b, c, g.rows(i), g.cols(j)])).for_each(|(ki, kj), d| {
            let mask = f32::from(u8::from(plane_index(&g, i, j, ki, kj) == a));
            *d += mask * gy;
        });
    }
    Ok(())
}

/// Axis reduce: at each output position and tap, the `[b, c]` slice of dy is masked by
/// `argmax == tap` and added to the tap's `[b, c]` slice of dx.
/// Shapes as [`max_pool2d_backward`]; uses no scratch.
pub fn max_pool2d_backward_axis_reduce(
    p: &Pool2dParams,
    dy: ArrayView4<f32>,
    argmax: ArrayView4<u32>,
    mut dx: ArrayViewMut4<f32>,
    _scratch: &mut Scratch,
) -> Result<()> {
    let g = p.backward_geometry(dy.shape(), &argmax, dx.shape())?;
    dx.fill(0.0);
    for i in 0..g.h2 {
        for j in 0..g.w2 {
            for ki in 0..g.kh {
                for kj in 0..g.kw {
                    let index = plane_index(&g, i, j, ki, kj);
                    Zip::from(dx.slice_mut(s![.., .., i * g.stride + ki, j * g.stride + kj]))
                        .and(dy.slice(s![.., .., i, j]))
                        .and(argmax.slice(s![.., .., i, j]))
                        .for_each(|d, &gy, &a| *d += f32::from(u8::from(a == index)) * gy);
                }
            }
        }
    }
    Ok(())
}

/// im2col: per plane, dy is scattered into an unfolded gradient `[f·f, h2·w2]` at each
/// window's argmax tap, which col2im folds back into dx.
/// Shapes as [`max_pool2d_backward`]; scratch: one plane's unfolded gradient.
pub fn max_pool2d_backward_im2col(
    p: &Pool2dParams,
    dy: ArrayView4<f32>,
    argmax: ArrayView4<u32>,
    mut dx: ArrayViewMut4<f32>,
    scratch: &mut Scratch,
) -> Result<()> {
    let g = p.backward_geometry(dy.shape(), &argmax, dx.shape())?;
    let plane = g.plane();
    let [dcols_buf] = scratch.parts([plane.cols_len()]);
    for b in 0..g.b {
        for c in 0..g.c {
            let mut dcols = ArrayViewMut2::from_shape((g.kh * g.kw, g.h2 * g.w2), &mut *dcols_buf)
                .expect("sized by cols_len");
            dcols.fill(0.0);
            for ((i, j), &gy) in dy.slice(s![b, c, .., ..]).indexed_iter() {
                let a = argmax[[b, c, i, j]] as usize;
                let (ki, kj) = (a / g.w - i * g.stride, a % g.w - j * g.stride);
                dcols[[ki * g.kw + kj, i * g.w2 + j]] = gy;
            }
            plane.col2im(dcols.view(), dx.slice_mut(s![b, c..=c, .., ..]));
        }
    }
    Ok(())
}
