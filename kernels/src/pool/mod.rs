//! Max pooling: x `[b, c, h, w]` → y `[b, c, h2, w2]` with `h2 = (h − f) / s + 1` (no
//! padding, as in the seed), plus argmax `[b, c, h2, w2]`: for each output, the flat index
//! `row · w + col` of its maximum in the input plane, which the backward pass routes dy to.
//!
//! Tie rule, identical in every technique: the first maximum of a window in row-major order
//! wins (a later element replaces the running maximum only if strictly greater). After a ReLU
//! ties are common, so this is part of the contract, not an accident of one loop order.
//!
//! `Direct` reads the windows straight from each input plane, with no unfolded copy: a
//! running maximum over the taps on whole rows of outputs, and a plain scatter back. At level
//! avx2 the seed's 2×2 window at stride 2 runs explicit AVX2 kernels instead (`avx2.rs`),
//! forward and backward, the backward pass writing dx densely rather than scattering.

#[cfg(target_arch = "x86_64")]
mod avx2;
mod axis_reduce;
mod direct;
mod im2col;
mod naive;
mod per_output;

use ndarray::{ArrayView2, ArrayView4, ArrayViewMut2, ArrayViewMut4, Zip};

use crate::error::{Result, expect_shape, invalid};
use crate::scratch::Scratch;
use crate::technique::Technique;
use crate::window::Geometry;

pub use axis_reduce::{max_pool2d_backward_axis_reduce, max_pool2d_forward_axis_reduce};
pub(crate) use direct::plane_maxima;
pub use direct::{max_pool2d_backward_direct, max_pool2d_forward_direct};
pub use im2col::{max_pool2d_backward_im2col, max_pool2d_forward_im2col};
pub use naive::{max_pool2d_backward_naive, max_pool2d_forward_naive};
pub use per_output::{max_pool2d_backward_per_output, max_pool2d_forward_per_output};

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

    /// The geometry of pooling x `[b, c, h, w]` (the layer named `layer` in errors).
    pub(crate) fn geometry(&self, layer: &'static str, x: &[usize]) -> Result<Geometry> {
        let c = x.get(1).copied().unwrap_or(0);
        let g = Geometry::new(layer, x, c.max(1), (self.size, self.size), self.stride, 0)?;
        // Tap offsets travel as f32 beside the maxima: exact below 2²⁴.
        if u32::try_from(g.h * g.w).is_err() || g.kh * g.w >= 1 << 24 {
            return Err(invalid(
                layer,
                format!(
                    "x {x:?} has planes too large for u32 argmax (or windows spanning 2^24 elements)"
                ),
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
        let argmax = argmax.as_standard_layout();
        let rows = argmax.as_slice().expect("standard layout is contiguous");
        for (n, row) in rows.chunks_exact(g.w2).enumerate() {
            let i = n % g.h2;
            // An index is inside its window iff some window row ki holds it: its offset from
            // that row's first tap is below kw (wrapping: a negative offset is huge). Rows of
            // a window are w ≥ kw apart, so at most one holds it, and the row is valid iff
            // w2 (index, ki) pairs hit. Counted without branches, on vector lanes.
            let inside = |j: usize, a: u32, ki: usize| {
                let first = plane_index(&g, i, j, ki, 0);
                a.wrapping_sub(first) < g.kw as u32
            };
            let hits: usize = (0..g.kh)
                .map(|ki| {
                    row.iter()
                        .enumerate()
                        .map(|(j, &a)| usize::from(inside(j, a, ki)))
                        .sum::<usize>()
                })
                .sum();
            let all_inside = hits == g.w2;
            if let Some((j, a)) = row
                .iter()
                .enumerate()
                .find(|&(j, &a)| !all_inside && !(0..g.kh).any(|ki| inside(j, a, ki)))
            {
                let (b, c) = (n / g.h2 / g.c, n / g.h2 % g.c);
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
        Technique::Direct => max_pool2d_forward_direct,
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
#[inline(always)]
fn plane_index(g: &Geometry, i: usize, j: usize, ki: usize, kj: usize) -> u32 {
    ((i * g.stride + ki) * g.w + j * g.stride + kj) as u32
}

/// Writes one plane's running maxima `[h2·w2]` into y `[h2, w2]` and their winning taps'
/// offsets ([`tap_offset`]) as plane indices into argmax `[h2, w2]`: with slices when both are
/// in standard layout, else element by element.
#[inline(always)]
fn store_plane(
    g: &Geometry,
    maxes: &[f32],
    taps: &[f32],
    mut y: ArrayViewMut2<f32>,
    mut argmax: ArrayViewMut2<u32>,
) {
    let (Some(ys), Some(args)) = (y.as_slice_mut(), argmax.as_slice_mut()) else {
        Zip::from(y)
            .and(&ArrayView2::from_shape((g.h2, g.w2), maxes).expect("sized h2·w2"))
            .for_each(|y, &m| *y = m);
        Zip::indexed(argmax)
            .and(&ArrayView2::from_shape((g.h2, g.w2), taps).expect("sized h2·w2"))
            .for_each(|(i, j), a, &t| *a = tap_index(g, i, j, t));
        return;
    };
    ys.copy_from_slice(maxes);
    for (i, (args, taps)) in args
        .chunks_exact_mut(g.w2)
        .zip(taps.chunks_exact(g.w2))
        .enumerate()
    {
        for (j, (a, &t)) in args.iter_mut().zip(taps).enumerate() {
            *a = tap_index(g, i, j, t);
        }
    }
}

/// Offset of tap `(ki, kj)` in the plane from its window's first tap, as f32, the type of
/// the running maxima it travels with in the vectorised techniques (exact: the geometry
/// check keeps it below 2²⁴).
#[inline(always)]
fn tap_offset(g: &Geometry, ki: usize, kj: usize) -> f32 {
    (ki * g.w + kj) as f32
}

/// Plane index of the tap at `offset` ([`tap_offset`]) in the window of output `(i, j)`:
/// an add, where a tap number would need a division.
#[inline(always)]
fn tap_index(g: &Geometry, i: usize, j: usize, offset: f32) -> u32 {
    plane_index(g, i, j, 0, 0) + offset as u32
}

/// The tie rule over a row of outputs: where `vals` is strictly greater than the running
/// maximum, it replaces it and `tap` (an offset) becomes the winner. Selects, not branches, so that the
/// loop runs on vector lanes (branches mispredict on random data).
#[inline(always)]
fn keep_first_max_row(maxes: &mut [f32], taps: &mut [f32], vals: &[f32], tap: f32) {
    for ((m, a), &v) in maxes.iter_mut().zip(taps.iter_mut()).zip(vals) {
        let greater = v > *m;
        *a = if greater { tap } else { *a };
        *m = if greater { v } else { *m };
    }
}

/// The backward function of technique `t`.
pub fn max_pool2d_backward_fn(t: Technique) -> PoolBackwardFn {
    match t {
        Technique::Naive => max_pool2d_backward_naive,
        Technique::PerOutput => max_pool2d_backward_per_output,
        Technique::AxisReduce => max_pool2d_backward_axis_reduce,
        Technique::Im2colGemm => max_pool2d_backward_im2col,
        Technique::Direct => max_pool2d_backward_direct,
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
