//! Max pooling: x `[b, c, h, w]` → y `[b, c, h2, w2]` with `h2 = (h − f) / s + 1` (no
//! padding, as in the seed), plus argmax `[b, c, h2, w2]`: for each output, the flat index
//! `row · w + col` of its maximum in the input plane, which the backward pass routes dy to.
//!
//! Tie rule, identical in every technique: the first maximum of a window in row-major order
//! wins (a later element replaces the running maximum only if strictly greater). After a ReLU
//! ties are common, so this is part of the contract, not an accident of one loop order.
//!
//! `Direct` reads the windows straight from each input plane, with no unfolded copy: a
//! running maximum over the taps on whole rows of outputs, and a plain scatter back.

use ndarray::{ArrayView2, ArrayView4, ArrayViewMut2, ArrayViewMut4, Axis, Zip, s};

use crate::error::{Result, expect_shape, invalid};
use crate::isa::Isa;
use crate::lanes::vectorized;
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
            tap_buf.fill(0.0);
            for (t, row) in channel.chunks_exact(hw2).enumerate().skip(1) {
                keep_first_max_row(max_buf, tap_buf, row, tap_offset(&g, t / g.kw, t % g.kw));
            }
            store_plane(
                &g,
                max_buf,
                tap_buf,
                y.slice_mut(s![b, c, .., ..]),
                argmax.slice_mut(s![b, c, .., ..]),
            );
        }
    }
    Ok(())
}

/// Direct: per plane, a running maximum over the taps, each step over every output at once,
/// read straight from the input plane (no unfolded copy), with selects on vector lanes.
/// Shapes as [`max_pool2d_forward`]; scratch: a plane's running maximum and winning tap, and
/// a contiguous copy of x when it is not in standard layout.
pub fn max_pool2d_forward_direct(
    p: &Pool2dParams,
    x: ArrayView4<f32>,
    mut y: ArrayViewMut4<f32>,
    mut argmax: ArrayViewMut4<u32>,
    scratch: &mut Scratch,
) -> Result<()> {
    let g = p.forward_geometry(x.shape(), y.shape(), argmax.shape())?;
    let (hw, hw2) = (g.h * g.w, g.h2 * g.w2);
    let x = x.as_standard_layout();
    let planes = x.as_slice().expect("standard layout is contiguous");
    let [max_buf, tap_buf, val_buf] = scratch.parts([hw2, hw2, g.w2]);
    // The selects vectorised for the active level's lanes.
    vectorized(
        Isa::active(),
        #[inline(always)]
        || {
            for (n, plane) in planes.chunks_exact(hw).enumerate() {
                // Constant strides let the compiler vectorise the strided reads.
                match (g.stride, g.kw) {
                    (2, 2) => tiled_running_max::<2>(&g, plane, max_buf, tap_buf),
                    (3, 3) => tiled_running_max::<3>(&g, plane, max_buf, tap_buf),
                    (s, _) => running_max(&g, s, plane, max_buf, tap_buf, val_buf),
                }
                let (b, c) = (n / g.c, n % g.c);
                store_plane(
                    &g,
                    max_buf,
                    tap_buf,
                    y.slice_mut(s![b, c, .., ..]),
                    argmax.slice_mut(s![b, c, .., ..]),
                );
            }
        },
    );
    Ok(())
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

/// [`running_max`] for windows exactly `S` columns wide at stride `S` (the usual 2×2 and
/// 3×3 pooling): each output's columns are one `[f32; S]` chunk of the input row, so the taps
/// of a window row are read in order without gathering.
#[inline(always)]
fn tiled_running_max<const S: usize>(
    g: &Geometry,
    plane: &[f32],
    maxes: &mut [f32],
    taps: &mut [f32],
) {
    for (i, (maxes, taps)) in maxes
        .chunks_exact_mut(g.w2)
        .zip(taps.chunks_exact_mut(g.w2))
        .enumerate()
    {
        for ki in 0..g.kh {
            let start = (i * S + ki) * g.w;
            let (tiles, _) = plane[start..start + g.w2 * S].as_chunks::<S>();
            let first = ki == 0;
            for ((m, a), tile) in maxes.iter_mut().zip(taps.iter_mut()).zip(tiles) {
                if first {
                    (*m, *a) = (tile[0], 0.0);
                }
                for (kj, &v) in tile.iter().enumerate().skip(usize::from(first)) {
                    let greater = v > *m;
                    *a = if greater { tap_offset(g, ki, kj) } else { *a };
                    *m = if greater { v } else { *m };
                }
            }
        }
    }
}

/// One plane `[h, w]` of [`max_pool2d_forward_direct`] with stride `s`: each output's maximum
/// into `maxes` `[h2·w2]`, the [`tap_offset`] of the tap it came from into `taps`, a row of outputs
/// at a time: each tap's strided inputs are gathered into `vals` `[w2]`, then compared on
/// contiguous lanes.
#[inline(always)]
fn running_max(
    g: &Geometry,
    s: usize,
    plane: &[f32],
    maxes: &mut [f32],
    taps: &mut [f32],
    vals: &mut [f32],
) {
    let span = (g.w2 - 1) * s + 1;
    for (i, (maxes, taps)) in maxes
        .chunks_exact_mut(g.w2)
        .zip(taps.chunks_exact_mut(g.w2))
        .enumerate()
    {
        for ki in 0..g.kh {
            for kj in 0..g.kw {
                let start = (i * s + ki) * g.w + kj;
                let row = &plane[start..start + span];
                vals.iter_mut()
                    .zip(row.iter().step_by(s))
                    .for_each(|(v, &x)| *v = x);
                if ki == 0 && kj == 0 {
                    maxes.copy_from_slice(vals);
                    taps.fill(0.0);
                } else {
                    keep_first_max_row(maxes, taps, vals, tap_offset(g, ki, kj));
                }
            }
        }
    }
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

/// Direct: per plane, dx is zeroed and each dy element added at its argmax, a flat index into
/// the plane. Shapes as [`max_pool2d_backward`]; scratch: a staging plane when dx is not in
/// standard layout.
pub fn max_pool2d_backward_direct(
    p: &Pool2dParams,
    dy: ArrayView4<f32>,
    argmax: ArrayView4<u32>,
    dx: ArrayViewMut4<f32>,
    scratch: &mut Scratch,
) -> Result<()> {
    let g = p.backward_geometry(dy.shape(), &argmax, dx.shape())?;
    let [stage] = scratch.parts([g.h * g.w]);
    // The zeroing and scatter compiled for the active level.
    vectorized(
        Isa::active(),
        #[inline(always)]
        || scatter_planes(&g, dy, argmax, dx, stage),
    );
    Ok(())
}

/// The planes of [`max_pool2d_backward_direct`], for checked shapes.
#[inline(always)]
fn scatter_planes(
    g: &Geometry,
    dy: ArrayView4<f32>,
    argmax: ArrayView4<u32>,
    mut dx: ArrayViewMut4<f32>,
    stage: &mut [f32],
) {
    for (b, c) in (0..g.b).flat_map(|b| (0..g.c).map(move |c| (b, c))) {
        let mut dx_plane = dx.slice_mut(s![b, c, .., ..]);
        // as_slice_mut is Some exactly for a plane in standard layout.
        let standard = dx_plane.is_standard_layout();
        let out = dx_plane.as_slice_mut().unwrap_or(&mut *stage);
        out.fill(0.0);
        Zip::from(dy.slice(s![b, c, .., ..]))
            .and(argmax.slice(s![b, c, .., ..]))
            .for_each(|&gy, &a| out[a as usize] += gy);
        if !standard {
            dx_plane.assign(&ArrayView2::from_shape((g.h, g.w), &*stage).expect("sized h·w"));
        }
    }
}
