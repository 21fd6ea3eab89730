//! im2col: an image unfolded, row-wise maxima on contiguous rows; backward by scatter and
//! col2im.

use ndarray::{ArrayView4, ArrayViewMut2, ArrayViewMut4, Axis, s};

use super::{Pool2dParams, keep_first_max_row, store_plane, tap_offset};
use crate::error::Result;
use crate::scratch::Scratch;

/// im2col: each image is unfolded into `[c·f·f, h2·w2]` (row = channel and tap), then each
/// channel's rows are reduced one after another with a running maximum over all its windows
/// at once, on contiguous rows; there is no product, so no GEMM. Shapes as
/// [`max_pool2d_forward`](super::max_pool2d_forward); scratch: one image's unfolded matrix, a plane's running maximum
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

/// im2col: per plane, dy is scattered into an unfolded gradient `[f·f, h2·w2]` at each
/// window's argmax tap, which col2im folds back into dx.
/// Shapes as [`max_pool2d_backward`](super::max_pool2d_backward); scratch: one plane's unfolded gradient.
pub fn max_pool2d_backward_im2col(
    p: &Pool2dParams,
    dy: ArrayView4<f32>,
    argmax: ArrayView4<u32>,
    mut dx: ArrayViewMut4<f32>,
    scratch: &mut Scratch,
) -> Result<()> {
    let g = p.backward_geometry(dy.shape(), &argmax, dx.shape())?;
    let plane = g.plane();
    let [dcols_buf, stage] = scratch.parts([plane.cols_len(), g.h * g.w]);
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
            plane.col2im(dcols_buf, dx.slice_mut(s![b, c..=c, .., ..]), stage);
        }
    }
    Ok(())
}
