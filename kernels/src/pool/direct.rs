//! Direct max pooling: a running maximum straight from each input plane, with selects on
//! vector lanes compiled for the active instruction-set level; at level avx2 the 2×2 window at
//! stride 2 runs the explicit kernels of `pool::avx2` instead.

use ndarray::{ArrayView2, ArrayView4, ArrayViewMut4, Zip, s};

use super::{Pool2dParams, keep_first_max_row, store_plane, tap_offset};
use crate::error::Result;
use crate::isa::Isa;
use crate::lanes::vectorized;
use crate::scratch::Scratch;
use crate::window::Geometry;

/// Direct: per plane, a running maximum over the taps, each step over every output at once,
/// read straight from the input plane (no unfolded copy), with selects on vector lanes (at
/// level avx2, for 2×2 windows at stride 2: the explicit kernels of `pool::avx2`).
/// Shapes as [`max_pool2d_forward`](super::max_pool2d_forward); scratch: a plane's running maximum and winning tap, and
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
    #[cfg(target_arch = "x86_64")]
    if let (true, Some(ys), Some(args)) = (avx2_2x2(&g), y.as_slice_mut(), argmax.as_slice_mut()) {
        for ((x, y), argmax) in planes
            .chunks_exact(hw)
            .zip(ys.chunks_exact_mut(hw2))
            .zip(args.chunks_exact_mut(hw2))
        {
            // SAFETY: avx2_2x2 found AVX2 the active level, which Isa checked this CPU has.
            unsafe { super::avx2::forward_plane(&g, x, y, argmax) };
        }
        return Ok(());
    }
    let [max_buf, tap_buf, val_buf] = scratch.parts([hw2, hw2, g.w2]);
    // The selects vectorised for the active level's lanes.
    vectorized(
        Isa::active(),
        #[inline(always)]
        || {
            for (n, plane) in planes.chunks_exact(hw).enumerate() {
                plane_maxima(&g, plane, [&mut *max_buf, &mut *tap_buf, &mut *val_buf]);
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

/// One plane `[h, w]` of the direct pooling of geometry `g`: each output's maximum into
/// `maxes` `[h2·w2]`, the [`tap_offset`] of its tap into `taps` `[h2·w2]`, with `vals` `[w2]`
/// for gathered rows. Also the pooling of [`conv2d_leaky_relu_pool_forward`]'s planes where
/// its kernel does not pool them itself.
///
/// [`conv2d_leaky_relu_pool_forward`]: crate::conv2d_leaky_relu_pool_forward
#[inline(always)]
pub(crate) fn plane_maxima(g: &Geometry, plane: &[f32], [maxes, taps, vals]: [&mut [f32]; 3]) {
    // Constant strides let the compiler vectorise the strided reads.
    match (g.stride, g.kw) {
        (2, 2) => tiled_running_max::<2>(g, plane, maxes, taps),
        (3, 3) => tiled_running_max::<3>(g, plane, maxes, taps),
        (s, _) => running_max(g, s, plane, maxes, taps, vals),
    }
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

/// Direct: per plane, dx is zeroed and each dy element added at its argmax, a flat index into
/// the plane (at level avx2, for 2×2 windows at stride 2: dx written densely, see
/// `pool::avx2`). Shapes as [`max_pool2d_backward`](super::max_pool2d_backward); scratch: a staging plane when dx is not in
/// standard layout.
pub fn max_pool2d_backward_direct(
    p: &Pool2dParams,
    dy: ArrayView4<f32>,
    argmax: ArrayView4<u32>,
    #[cfg_attr(not(target_arch = "x86_64"), allow(unused_mut))] mut dx: ArrayViewMut4<f32>,
    scratch: &mut Scratch,
) -> Result<()> {
    let g = p.backward_geometry(dy.shape(), &argmax, dx.shape())?;
    #[cfg(target_arch = "x86_64")]
    if let (true, Some(dys), Some(args), Some(dxs)) = (
        avx2_2x2(&g),
        dy.as_slice(),
        argmax.as_slice(),
        dx.as_slice_mut(),
    ) {
        let (hw, hw2) = (g.h * g.w, g.h2 * g.w2);
        for ((dy, argmax), dx) in dys
            .chunks_exact(hw2)
            .zip(args.chunks_exact(hw2))
            .zip(dxs.chunks_exact_mut(hw))
        {
            // SAFETY: avx2_2x2 found AVX2 the active level, which Isa checked this CPU has;
            // backward_geometry checked that every argmax lies in its window.
            unsafe { super::avx2::backward_plane(dy, argmax, (g.h, g.w), dx) };
        }
        return Ok(());
    }
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

/// Whether the pooling runs the AVX2 kernels of the 2×2 window at stride 2 (`pool::avx2`):
/// at level avx2 only. AVX-512 keeps the compiled loops, 16 lanes wide, as they were measured.
#[cfg(target_arch = "x86_64")]
fn avx2_2x2(g: &Geometry) -> bool {
    Isa::active() == Isa::Avx2 && (g.kh, g.kw, g.stride) == (2, 2, 2)
}
