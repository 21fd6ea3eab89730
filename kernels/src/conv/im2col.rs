//! im2col + GEMM: unfolded windows and one `sgemm` per image.

use ndarray::{ArrayView1, ArrayView3, ArrayView4, ArrayViewMut2, ArrayViewMut4, Axis};

use super::{
    BACKWARD, Conv2dParams, Gradients, as_matrix, channel_sums, filter_matrix, flipped_filters,
    staging_len,
};
use crate::error::Result;
use crate::gemm::gemm;
use crate::scratch::Scratch;
use crate::window::Geometry;

/// im2col + GEMM: per image, unfold x into `[c·kh·kw, h2·w2]` and multiply by the filters seen
/// as `[d, c·kh·kw]` with one `sgemm` that adds onto the bias, written straight into y.
/// Shapes as [`conv2d_forward`](super::conv2d_forward); scratch: the unfolded matrix (and a staging product when y
/// is not in standard layout).
pub fn conv2d_forward_im2col(
    p: &Conv2dParams,
    x: ArrayView4<f32>,
    w: ArrayView4<f32>,
    bias: ArrayView1<f32>,
    mut y: ArrayViewMut4<f32>,
    scratch: &mut Scratch,
) -> Result<()> {
    let g = p.forward_geometry(&x, &w, &bias, &y)?;
    let w = w.as_standard_layout();
    let filters = filter_matrix(&g, w.view());
    let [cols_buf, stage] = scratch.parts([g.cols_len(), staging_len(&y)]);
    for (b, y_image) in y.outer_iter_mut().enumerate() {
        let cols = g.im2col(x.index_axis(Axis(0), b), cols_buf);
        as_matrix(y_image, stage, |mut out| {
            gemm(1.0, filters, cols, 0.0, out.view_mut())?;
            for (mut row, &bv) in out.rows_mut().into_iter().zip(&bias) {
                row.mapv_inplace(|v| v + bv);
            }
            Ok(())
        })?;
    }
    Ok(())
}

/// Input channels below which the input gradient goes through col2im: the convolution's GEMM
/// has one row per input channel, and matrixmultiply's kernel computes 16 at a time, so with
/// 3 channels (RGB images) it wastes most of its work (seed conv1 backward at batch 5: 741 µs
/// through col2im, 952 µs as a convolution; conv2, 16 channels: 708 µs against 538 µs).
const MIN_ROWS_FOR_FULL_CONVOLUTION: usize = 8;

backward_technique! {
    /// im2col + GEMM: per image, `dw += dy_b·colsᵀ` with `sgemm`; the input gradient (when asked)
    /// with a second `sgemm` per image: for stride 1, square windows with `p < k` and at least
    /// `MIN_ROWS_FOR_FULL_CONVOLUTION` input channels, as the convolution of dy padded by
    /// `k − 1 − p` with the flipped filters, `[c, d·k·k]`, written straight into dx; otherwise
    /// `dcols = wᵀ·dy_b` folded into dx by col2im.
    /// Shapes as [`conv2d_backward`](super::conv2d_backward); scratch: the unfolded matrices, dw as a matrix, the flipped
    /// filters, and a staging matrix when dx is not in standard layout.
    conv2d_backward_im2col => backward
}

/// [`conv2d_backward_im2col`] for checked shapes.
fn backward(
    g: &Geometry,
    x: ArrayView4<f32>,
    w: ArrayView4<f32>,
    dy: ArrayView4<f32>,
    grads: Gradients,
    scratch: &mut Scratch,
) -> Result<()> {
    let Gradients { dx, mut dw, dbias } = grads;
    let dy_std = dy.as_standard_layout();
    let dy_images = dy_std
        .view()
        .into_shape_with_order((g.b, g.d, g.h2 * g.w2))
        .expect("standard layout reshapes");
    let ckk = g.c * g.kh * g.kw;
    let [cols_buf, dw_buf] = scratch.parts([g.cols_len(), g.d * ckk]);
    let mut dw_mat = ArrayViewMut2::from_shape((g.d, ckk), dw_buf).expect("sized d·c·kh·kw");
    for b in 0..g.b {
        let cols = g.im2col(x.index_axis(Axis(0), b), cols_buf);
        let beta = if b == 0 { 0.0 } else { 1.0 };
        gemm(
            1.0,
            dy_images.index_axis(Axis(0), b),
            cols.t(),
            beta,
            dw_mat.view_mut(),
        )?;
    }
    dw.assign(
        &dw_mat
            .view()
            .into_shape_with_order((g.d, g.c, g.kh, g.kw))
            .expect("contiguous"),
    );
    channel_sums(dy.into_dyn(), dbias);
    match dx {
        Some(dx)
            if g.stride == 1
                && g.kh == g.kw
                && g.pad < g.kh
                && g.c >= MIN_ROWS_FOR_FULL_CONVOLUTION =>
        {
            input_gradient_by_convolution(g, w, dy_std.view(), dx, scratch)
        }
        Some(dx) => input_gradient_by_col2im(g, w, dy_images, dx, scratch),
        None => Ok(()),
    }
}

/// dx `[b, c, h, w]` of a stride-1 convolution with square `k × k` windows and `p < k`: the
/// forward convolution of dy `[b, d, h2, w2]`, padded by `k − 1 − p`, with the filters
/// flipped in both spatial axes and with their two channel axes swapped, `[c, d, k, k]`.
fn input_gradient_by_convolution(
    g: &Geometry,
    w: ArrayView4<f32>,
    dy: ArrayView4<f32>,
    mut dx: ArrayViewMut4<f32>,
    scratch: &mut Scratch,
) -> Result<()> {
    let k = g.kh;
    let full = Geometry::new(
        BACKWARD,
        &[g.b, g.d, g.h2, g.w2],
        g.c,
        (k, k),
        1,
        k - 1 - g.pad,
    )?;
    debug_assert_eq!((full.h2, full.w2), (g.h, g.w));
    let [cols_buf, flipped_buf, stage] =
        scratch.parts([full.cols_len(), g.c * g.d * k * k, staging_len(&dx)]);
    let mut flipped =
        ArrayViewMut4::from_shape((g.c, g.d, k, k), flipped_buf).expect("sized c·d·k·k");
    flipped.assign(&flipped_filters(w));
    let flipped = flipped
        .into_shape_with_order((g.c, g.d * k * k))
        .expect("contiguous");
    for (b, dx_image) in dx.outer_iter_mut().enumerate() {
        let cols = full.im2col(dy.index_axis(Axis(0), b), cols_buf);
        as_matrix(dx_image, stage, |out| {
            gemm(1.0, flipped.view(), cols, 0.0, out)
        })?;
    }
    Ok(())
}

/// dx `[b, c, h, w]` of any convolution: per image `dcols = wᵀ·dy_b`, folded by col2im.
fn input_gradient_by_col2im(
    g: &Geometry,
    w: ArrayView4<f32>,
    dy_images: ArrayView3<f32>,
    mut dx: ArrayViewMut4<f32>,
    scratch: &mut Scratch,
) -> Result<()> {
    let w_std = w.as_standard_layout();
    let filters = filter_matrix(g, w_std.view());
    let [dcols_buf, stage] = scratch.parts([g.cols_len(), g.c * g.h * g.w]);
    for (b, dx_image) in dx.outer_iter_mut().enumerate() {
        let mut dcols =
            ArrayViewMut2::from_shape((g.c * g.kh * g.kw, g.h2 * g.w2), &mut *dcols_buf)
                .expect("sized by cols_len");
        gemm(
            1.0,
            filters.t(),
            dy_images.index_axis(Axis(0), b),
            0.0,
            dcols.view_mut(),
        )?;
        g.col2im(dcols_buf, dx_image, stage);
    }
    Ok(())
}
