//! Direct convolution: no unfolded matrix; the register-blocked kernels of [`super::correlation`]
//! at the level [`Isa::active`] chooses.

use ndarray::{ArrayView1, ArrayView4, ArrayViewMut2, ArrayViewMut4};

use super::correlation::{Activation, Correlation};
use super::{
    Conv2dParams, Gradients, POOLED, as_matrix, channel_sums, flipped_filters, staging_len,
};
use crate::error::{Result, expect_shape};
use crate::isa::Isa;
use crate::lanes::vectorized;
use crate::pool::plane_maxima;
use crate::scratch::Scratch;
use crate::window::Geometry;

/// Direct: no unfolded matrix. Per image, x is copied once into a zero-padded buffer laid
/// out so that every read is a whole vector, and a register-blocked kernel accumulates a block
/// of filters × vectors of output columns at once (4 × 4 at AVX-512, up to 6 × 2 at AVX2), in
/// explicit SIMD lanes of the level [`Isa::active`] chooses. Shapes as
/// [`conv2d_forward`](super::conv2d_forward); scratch: the padded image, the packed filters,
/// and a staging matrix when y is not in standard layout.
pub fn conv2d_forward_direct(
    p: &Conv2dParams,
    x: ArrayView4<f32>,
    w: ArrayView4<f32>,
    bias: ArrayView1<f32>,
    y: ArrayViewMut4<f32>,
    scratch: &mut Scratch,
) -> Result<()> {
    forward(p, (x, w, bias), Activation::Identity, y, scratch)
}

/// The direct forward pass with `activation` applied to the outputs in registers before they
/// are stored (the leaky ReLU for [`super::conv2d_leaky_relu_forward`]): the shape check, then
/// the kernels at the active level. Shapes as [`conv2d_forward`](super::conv2d_forward).
pub(super) fn forward(
    p: &Conv2dParams,
    (x, w, bias): (ArrayView4<f32>, ArrayView4<f32>, ArrayView1<f32>),
    activation: Activation,
    y: ArrayViewMut4<f32>,
    scratch: &mut Scratch,
) -> Result<()> {
    let g = p.forward_geometry(&x, &w, &bias, &y)?;
    at_level(&g, None, (x, w, bias), activation, y, scratch)
}

/// [`conv2d_leaky_relu_pool_forward`](super::conv2d_leaky_relu_pool_forward): the shape
/// checks, then the kernels at the active level. Shapes as there.
pub(super) fn forward_pooled(
    p: &Conv2dParams,
    pool: &crate::Pool2dParams,
    (x, w, bias): (ArrayView4<f32>, ArrayView4<f32>, ArrayView1<f32>),
    y: ArrayViewMut4<f32>,
    scratch: &mut Scratch,
) -> Result<()> {
    let g = p.input_geometry(POOLED, &x, &w, &bias)?;
    let pooled = pool.geometry(POOLED, &g.output_shape())?;
    expect_shape(POOLED, "y", y.shape(), &pooled.output_shape())?;
    let args = (x, w, bias);
    at_level(&g, Some(&pooled), args, Activation::LeakyRelu, y, scratch)
}

/// [`direct_forward`] at the active level, the copies and the pooling around the kernels
/// vectorised for it too.
fn at_level(
    g: &Geometry,
    pool: Option<&Geometry>,
    args: (ArrayView4<f32>, ArrayView4<f32>, ArrayView1<f32>),
    activation: Activation,
    y: ArrayViewMut4<f32>,
    scratch: &mut Scratch,
) -> Result<()> {
    let isa = Isa::active();
    vectorized(
        isa,
        #[inline(always)]
        || direct_forward(isa, (g, pool), args, activation, y, scratch),
    )
}

/// [`conv2d_forward_direct`] at level `isa`, for checked shapes; with `pool` (the geometry of
/// a max pooling of the outputs), y holds the pooled outputs instead: pooled in the kernel's
/// registers where [`Correlation::poolable`] and the window is 2×2 at stride 2, otherwise each
/// image's outputs pooled from scratch.
#[inline(always)]
fn direct_forward(
    isa: Isa,
    (g, pool): (&Geometry, Option<&Geometry>),
    (x, w, bias): (ArrayView4<f32>, ArrayView4<f32>, ArrayView1<f32>),
    activation: Activation,
    mut y: ArrayViewMut4<f32>,
    scratch: &mut Scratch,
) -> Result<()> {
    let win = Correlation::new(isa, g.c, (g.kh, g.kw), g.stride, (g.h2, g.w2));
    let in_registers = pool.is_some_and(|p| win.poolable() && (p.kh, p.kw, p.stride) == (2, 2, 2));
    // A view of the caller's bias: a copy only in the rare non-contiguous layout.
    let bias = bias.as_standard_layout();
    let bias = bias.as_slice().expect("standard layout is contiguous");
    // Pooling apart: one image's outputs, and a plane's maxima, taps and gathered row.
    let plane = g.h2 * g.w2;
    let (pooled, row) = pool.map_or((0, 0), |p| (p.h2 * p.w2, p.w2));
    let apart = |len: usize| if in_registers { 0 } else { len };
    let [src, packed, stage, image, taps, vals] = scratch.parts([
        win.source_len(),
        win.packed_len(g.d, g.c * g.kh * g.kw),
        staging_len(&y),
        apart(pool.map_or(0, |_| g.d * plane)),
        apart(pooled),
        apart(row),
    ]);
    let packed = win.pack_filters(w, packed);
    let (pad, epilogue) = (g.pad as isize, (Some(bias), activation));
    for (x_image, y_image) in x.outer_iter().zip(y.outer_iter_mut()) {
        win.fill(x_image, 1, (pad, pad), src);
        as_matrix(y_image, stage, |mut out| {
            let Some(pg) = pool else {
                win.planes(src, packed, epilogue, out);
                return Ok(());
            };
            if in_registers {
                win.planes_pooled(src, packed, epilogue, out);
                return Ok(());
            }
            let outputs =
                ArrayViewMut2::from_shape((g.d, plane), &mut *image).expect("sized d·h2·w2");
            win.planes(src, packed, epilogue, outputs);
            // Each plane's maxima straight into its row of the pooled planes.
            let rows = out
                .as_slice_mut()
                .expect("as_matrix's matrix is contiguous");
            for (plane, maxes) in image.chunks_exact(plane).zip(rows.chunks_exact_mut(pooled)) {
                plane_maxima(pg, plane, [maxes, &mut *taps, &mut *vals]);
            }
            Ok(())
        })?;
    }
    Ok(())
}

backward_technique! {
    /// Direct: the weight gradient by a register-blocked kernel that sums `dy·x` over the batch
    /// and the output positions for a block of filters × taps at once (4 × 5 at AVX-512, 2 × 5
    /// at AVX2), in vectors along output columns;
    /// the input gradient by the forward kernel, run over dy spread by the stride and placed at
    /// `k − 1 − p`, with the filters flipped in both spatial axes and their channel axes swapped
    /// (any stride and padding). Shapes as [`conv2d_backward`](super::conv2d_backward); scratch: every image's padded
    /// copy and lane-padded dy, dw, the flipped filters and a staging matrix for dx.
    conv2d_backward_direct => backward
}

/// [`conv2d_backward_direct`] for checked shapes.
fn backward(
    g: &Geometry,
    x: ArrayView4<f32>,
    w: ArrayView4<f32>,
    dy: ArrayView4<f32>,
    grads: Gradients,
    scratch: &mut Scratch,
) -> Result<()> {
    let isa = Isa::active();
    // The copies and bias sums around the kernels vectorised for the level too.
    vectorized(
        isa,
        #[inline(always)]
        || direct_backward(isa, g, x, w, dy, grads, scratch),
    )
}

/// [`conv2d_backward_direct`] at level `isa`, for checked shapes.
#[inline(always)]
fn direct_backward(
    isa: Isa,
    g: &Geometry,
    x: ArrayView4<f32>,
    w: ArrayView4<f32>,
    dy: ArrayView4<f32>,
    Gradients { dx, mut dw, dbias }: Gradients,
    scratch: &mut Scratch,
) -> Result<()> {
    let win = Correlation::new(isa, g.c, (g.kh, g.kw), g.stride, (g.h2, g.w2));
    let src_len = win.source_len();
    let ckk = g.c * g.kh * g.kw;
    let [srcs, dy_buf, dw_buf] = scratch.parts([g.b * src_len, win.dy_copy_len(&dy), g.d * ckk]);
    let pad = g.pad as isize;
    for (x_image, src) in x.outer_iter().zip(srcs.chunks_exact_mut(src_len)) {
        win.fill(x_image, 1, (pad, pad), src);
    }
    let dys = win.dy_lanes(dy, dy_buf);
    win.taps(srcs, dys, dw_buf);
    dw.assign(&ArrayView4::from_shape((g.d, g.c, g.kh, g.kw), &*dw_buf).expect("sized d·c·kh·kw"));
    channel_sums(dy.into_dyn(), dbias);
    let Some(mut dx) = dx else { return Ok(()) };
    let full = Correlation::new(isa, g.d, (g.kh, g.kw), 1, (g.h, g.w));
    let [src, packed, stage] = scratch.parts([
        full.source_len(),
        full.packed_len(g.c, g.d * g.kh * g.kw),
        staging_len(&dx),
    ]);
    let packed = full.pack_filters(flipped_filters(w), packed);
    let at = |k: usize| k as isize - 1 - pad;
    for (dy_image, dx_image) in dy.outer_iter().zip(dx.outer_iter_mut()) {
        full.fill(dy_image, g.stride, (at(g.kh), at(g.kw)), src);
        as_matrix(dx_image, stage, |out| {
            full.planes(src, packed, (None, Activation::Identity), out);
            Ok(())
        })?;
    }
    Ok(())
}
