//! 2-D convolution (cross-correlation, as every deep-learning framework computes it):
//! x `[b, c, h, w]`, w `[d, c, kh, kw]`, bias `[d]` → y `[b, d, h2, w2]`, with
//! `h2 = (h + 2p − kh) / s + 1` (rounded down, as in the seed) and likewise `w2`.

use ndarray::{
    ArrayView1, ArrayView2, ArrayView3, ArrayView4, ArrayViewMut1, ArrayViewMut2, ArrayViewMut3,
    ArrayViewMut4, ArrayViewMut5, Axis, Zip, s,
};

use crate::direct::{Correlation, pack_filters, packed_len};
use crate::error::{Result, expect_shape, mismatch};
use crate::gemm::gemm;
use crate::isa::Isa;
use crate::lanes::vectorized;
use crate::scratch::Scratch;
use crate::technique::Technique;
use crate::window::Geometry;

const FORWARD: &str = "conv2d forward";
const BACKWARD: &str = "conv2d backward";

/// Stride and zero padding of a convolution; the kernel size comes from the weights.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conv2dParams {
    /// Step between windows, at least 1.
    pub stride: usize,
    /// Zeros added on every side of each input plane.
    pub padding: usize,
}

impl Conv2dParams {
    /// Shape of y `[b, d, h2, w2]` for x `[b, c, h, w]` and w `[d, c, kh, kw]`, or why they
    /// cannot be convolved.
    pub fn output_shape(&self, x: &[usize], w: &[usize]) -> Result<[usize; 4]> {
        Ok(self.geometry(FORWARD, x, w)?.output_shape())
    }

    fn geometry(&self, layer: &'static str, x: &[usize], w: &[usize]) -> Result<Geometry> {
        let &[d, wc, kh, kw] = w else {
            return Err(mismatch(
                layer,
                format!("w has shape {w:?}, expected [d, c, kh, kw]"),
            ));
        };
        let g = Geometry::new(layer, x, d, (kh, kw), self.stride, self.padding)?;
        if wc != g.c {
            return Err(mismatch(
                layer,
                format!(
                    "w {w:?} expects {wc} input channels but x {x:?} has {}",
                    g.c
                ),
            ));
        }
        Ok(g)
    }

    fn forward_geometry(
        &self,
        x: &ArrayView4<f32>,
        w: &ArrayView4<f32>,
        bias: &ArrayView1<f32>,
        y: &ArrayViewMut4<f32>,
    ) -> Result<Geometry> {
        let g = self.geometry(FORWARD, x.shape(), w.shape())?;
        expect_shape(FORWARD, "bias", bias.shape(), &[g.d])?;
        expect_shape(FORWARD, "y", y.shape(), &g.output_shape())?;
        Ok(g)
    }

    /// Checks the shapes of x, w, dy, dx (if given), dw and dbias.
    fn backward_geometry(
        &self,
        [x, w, dy, dw, dbias]: [&[usize]; 5],
        dx: Option<&[usize]>,
    ) -> Result<Geometry> {
        let g = self.geometry(BACKWARD, x, w)?;
        expect_shape(BACKWARD, "dy", dy, &g.output_shape())?;
        if let Some(dx) = dx {
            expect_shape(BACKWARD, "dx", dx, x)?;
        }
        expect_shape(BACKWARD, "dw", dw, w)?;
        expect_shape(BACKWARD, "dbias", dbias, &[g.d])?;
        Ok(g)
    }
}

/// The signature every convolution forward technique shares:
/// `(params, x [b, c, h, w], w [d, c, kh, kw], bias [d], y [b, d, h2, w2], scratch)`.
pub type ConvForwardFn = fn(
    &Conv2dParams,
    ArrayView4<f32>,
    ArrayView4<f32>,
    ArrayView1<f32>,
    ArrayViewMut4<f32>,
    &mut Scratch,
) -> Result<()>;

/// The signature every convolution backward technique shares:
/// `(params, x [b, c, h, w], w [d, c, kh, kw], dy [b, d, h2, w2], dx [b, c, h, w] or None,
/// dw [d, c, kh, kw], dbias [d], scratch)`. With `dx` None the input gradient is not computed
/// (a network's first layer: nothing needs the gradient of the images).
pub type ConvBackwardFn = fn(
    &Conv2dParams,
    ArrayView4<f32>,
    ArrayView4<f32>,
    ArrayView4<f32>,
    Option<ArrayViewMut4<f32>>,
    ArrayViewMut4<f32>,
    ArrayViewMut1<f32>,
    &mut Scratch,
) -> Result<()>;

/// The forward function of technique `t`.
pub fn conv2d_forward_fn(t: Technique) -> ConvForwardFn {
    match t {
        Technique::Naive => conv2d_forward_naive,
        Technique::PerOutput => conv2d_forward_per_output,
        Technique::AxisReduce => conv2d_forward_axis_reduce,
        Technique::Im2colGemm => conv2d_forward_im2col,
        Technique::Direct => conv2d_forward_direct,
    }
}

/// Convolution forward with technique `t`: x `[b, c, h, w]`, w `[d, c, kh, kw]`, bias `[d]`
/// → y `[b, d, h2, w2]` (overwritten).
pub fn conv2d_forward(
    t: Technique,
    p: &Conv2dParams,
    x: ArrayView4<f32>,
    w: ArrayView4<f32>,
    bias: ArrayView1<f32>,
    y: ArrayViewMut4<f32>,
    scratch: &mut Scratch,
) -> Result<()> {
    conv2d_forward_fn(t)(p, x, w, bias, y, scratch)
}

/// Naive: seven nested loops, one scalar multiply-add per tap, padding tested per tap.
/// Shapes as [`conv2d_forward`]; uses no scratch.
pub fn conv2d_forward_naive(
    p: &Conv2dParams,
    x: ArrayView4<f32>,
    w: ArrayView4<f32>,
    bias: ArrayView1<f32>,
    mut y: ArrayViewMut4<f32>,
    _scratch: &mut Scratch,
) -> Result<()> {
    let g = p.forward_geometry(&x, &w, &bias, &y)?;
    for b in 0..g.b {
        for d in 0..g.d {
            for i in 0..g.h2 {
                for j in 0..g.w2 {
                    let mut acc = bias[d];
                    for c in 0..g.c {
                        for ki in 0..g.kh {
                            for kj in 0..g.kw {
                                if let (Some(r), Some(q)) = (g.in_row(i, ki), g.in_col(j, kj)) {
                                    acc += w[[d, c, ki, kj]] * x[[b, c, r, q]];
                                }
                            }
                        }
                    }
                    y[[b, d, i, j]] = acc;
                }
            }
        }
    }
    Ok(())
}

/// Per output: pad x once, then each y element is the product-and-sum of filter `w[d]` with
/// its `[c, kh, kw]` window. Shapes as [`conv2d_forward`]; scratch: the padded x.
pub fn conv2d_forward_per_output(
    p: &Conv2dParams,
    x: ArrayView4<f32>,
    w: ArrayView4<f32>,
    bias: ArrayView1<f32>,
    mut y: ArrayViewMut4<f32>,
    scratch: &mut Scratch,
) -> Result<()> {
    let g = p.forward_geometry(&x, &w, &bias, &y)?;
    let [pad_buf] = scratch.parts([g.padded_len()]);
    let xp = g.pad(x, pad_buf);
    for ((b, d, i, j), out) in y.indexed_iter_mut() {
        let window = xp.slice(s![b, .., g.rows(i), g.cols(j)]);
        *out = dot(w.index_axis(Axis(0), d), window) + bias[d];
    }
    Ok(())
}

/// The sum of the elementwise product of two views of one shape.
pub(crate) fn dot<D: ndarray::Dimension>(
    a: ndarray::ArrayView<f32, D>,
    b: ndarray::ArrayView<f32, D>,
) -> f32 {
    Zip::from(a).and(b).fold(0.0, |acc, &u, &v| acc + u * v)
}

/// Axis reduce: at each output position, the products of every image's window with every
/// filter, `[b, d, c, kh, kw]`, are formed by broadcasting, then summed over `(c, kh, kw)`.
/// Shapes as [`conv2d_forward`]; scratch: the padded x and the product tensor.
pub fn conv2d_forward_axis_reduce(
    p: &Conv2dParams,
    x: ArrayView4<f32>,
    w: ArrayView4<f32>,
    bias: ArrayView1<f32>,
    mut y: ArrayViewMut4<f32>,
    scratch: &mut Scratch,
) -> Result<()> {
    let g = p.forward_geometry(&x, &w, &bias, &y)?;
    let [pad_buf, prod_buf] = scratch.parts([g.padded_len(), product_len(&g)]);
    let xp = g.pad(x, pad_buf);
    let mut prod = product_tensor(&g, prod_buf);
    let filters = w.insert_axis(Axis(0));
    for i in 0..g.h2 {
        for j in 0..g.w2 {
            let windows = xp
                .slice(s![.., .., g.rows(i), g.cols(j)])
                .insert_axis(Axis(1));
            Zip::from(&mut prod)
                .and_broadcast(&windows)
                .and_broadcast(&filters)
                .for_each(|p, &xv, &wv| *p = xv * wv);
            let sums = prod
                .view()
                .into_shape_with_order((g.b, g.d, g.c * g.kh * g.kw))
                .expect("product tensor is contiguous");
            Zip::from(y.slice_mut(s![.., .., i, j]))
                .and(sums.lanes(Axis(2)))
                .and_broadcast(&bias)
                .for_each(|out, lane, &bv| *out = lane.sum() + bv);
        }
    }
    Ok(())
}

fn product_len(g: &Geometry) -> usize {
    g.b * g.d * g.c * g.kh * g.kw
}

/// The `[b, d, c, kh, kw]` broadcast-product tensor of the axis-reduce technique, in scratch.
fn product_tensor<'a>(g: &Geometry, buf: &'a mut [f32]) -> ArrayViewMut5<'a, f32> {
    ArrayViewMut5::from_shape((g.b, g.d, g.c, g.kh, g.kw), buf).expect("sized by product_len")
}

/// im2col + GEMM: per image, unfold x into `[c·kh·kw, h2·w2]` and multiply by the filters seen
/// as `[d, c·kh·kw]` with one `sgemm` that adds onto the bias, written straight into y.
/// Shapes as [`conv2d_forward`]; scratch: the unfolded matrix (and a staging product when y
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

/// Elements of the staging matrix [`as_matrix`] needs for the images of `a` `[b, r, h, w]`:
/// none when `a` is in standard layout.
fn staging_len<S: ndarray::Data<Elem = f32>>(a: &ndarray::ArrayBase<S, ndarray::Ix4>) -> usize {
    if a.is_standard_layout() {
        0
    } else {
        a.len() / a.shape()[0].max(1)
    }
}

/// Runs `f` on one image `[r, h, w]` seen as the matrix `[r, h·w]`: in place when the image
/// is in standard layout, else on `stage`, copied into the image afterwards. `f` must
/// overwrite the whole matrix.
fn as_matrix(
    mut image: ArrayViewMut3<f32>,
    stage: &mut [f32],
    f: impl FnOnce(ArrayViewMut2<f32>) -> Result<()>,
) -> Result<()> {
    let (r, h, w) = image.dim();
    if image.is_standard_layout() {
        return f(image
            .into_shape_with_order((r, h * w))
            .expect("standard layout reshapes"));
    }
    let mut staged = ArrayViewMut2::from_shape((r, h * w), &mut stage[..r * h * w])
        .expect("stage sized by staging_len");
    f(staged.view_mut())?;
    image.assign(&staged.into_shape_with_order((r, h, w)).expect("contiguous"));
    Ok(())
}

/// Filters w `[d, c, kh, kw]` (standard layout) seen as the matrix `[d, c·kh·kw]`.
fn filter_matrix<'a>(g: &Geometry, w: ArrayView4<'a, f32>) -> ArrayView2<'a, f32> {
    w.into_shape_with_order((g.d, g.c * g.kh * g.kw))
        .expect("standard layout reshapes")
}

/// Direct: no unfolded matrix. Per image, x is copied once into a zero-padded buffer laid
/// out so that every read is a whole vector, and a register-blocked kernel accumulates
/// 4 filters × 4 vectors of output columns at once (4 × 3 on AVX2), in explicit SIMD lanes of
/// the level [`Isa::active`] chooses. Shapes as [`conv2d_forward`]; scratch: the padded image, the packed
/// filters, and a staging matrix when y is not in standard layout.
pub fn conv2d_forward_direct(
    p: &Conv2dParams,
    x: ArrayView4<f32>,
    w: ArrayView4<f32>,
    bias: ArrayView1<f32>,
    y: ArrayViewMut4<f32>,
    scratch: &mut Scratch,
) -> Result<()> {
    let g = p.forward_geometry(&x, &w, &bias, &y)?;
    let isa = Isa::active();
    // The copies around the kernels vectorised for the level too.
    vectorized(
        isa,
        #[inline(always)]
        || direct_forward(isa, &g, x, w, bias, y, scratch),
    )
}

/// [`conv2d_forward_direct`] at level `isa`, for checked shapes.
#[inline(always)]
fn direct_forward(
    isa: Isa,
    g: &Geometry,
    x: ArrayView4<f32>,
    w: ArrayView4<f32>,
    bias: ArrayView1<f32>,
    mut y: ArrayViewMut4<f32>,
    scratch: &mut Scratch,
) -> Result<()> {
    let win = Correlation::new(isa, g.c, (g.kh, g.kw), g.stride, (g.h2, g.w2));
    // A view of the caller's bias: a copy only in the rare non-contiguous layout.
    let bias = bias.as_standard_layout();
    let bias = bias.as_slice().expect("standard layout is contiguous");
    let [src, packed, stage] = scratch.parts([
        win.source_len(),
        packed_len(g.d, g.c * g.kh * g.kw),
        staging_len(&y),
    ]);
    let packed = pack_filters(w, packed);
    let pad = g.pad as isize;
    for (x_image, y_image) in x.outer_iter().zip(y.outer_iter_mut()) {
        win.fill(x_image, 1, (pad, pad), src);
        as_matrix(y_image, stage, |out| {
            win.planes(src, packed, Some(bias), out);
            Ok(())
        })?;
    }
    Ok(())
}

/// The backward function of technique `t`.
pub fn conv2d_backward_fn(t: Technique) -> ConvBackwardFn {
    match t {
        Technique::Naive => conv2d_backward_naive,
        Technique::PerOutput => conv2d_backward_per_output,
        Technique::AxisReduce => conv2d_backward_axis_reduce,
        Technique::Im2colGemm => conv2d_backward_im2col,
        Technique::Direct => conv2d_backward_direct,
    }
}

/// Convolution backward with technique `t`: from the forward's x `[b, c, h, w]` and
/// w `[d, c, kh, kw]` and the output gradient dy `[b, d, h2, w2]`, overwrites
/// dx `[b, c, h, w]` (unless None), dw `[d, c, kh, kw]` and dbias `[d]` (sums over the batch,
/// not means).
pub fn conv2d_backward(
    t: Technique,
    p: &Conv2dParams,
    x: ArrayView4<f32>,
    w: ArrayView4<f32>,
    dy: ArrayView4<f32>,
    dx: Option<ArrayViewMut4<f32>>,
    dw: ArrayViewMut4<f32>,
    dbias: ArrayViewMut1<f32>,
    scratch: &mut Scratch,
) -> Result<()> {
    conv2d_backward_fn(t)(p, x, w, dy, dx, dw, dbias, scratch)
}

/// Naive: the forward's seven loops, each tap adding `dy·x` to dw and `dy·w` to dx.
/// Shapes as [`conv2d_backward`]; uses no scratch.
pub fn conv2d_backward_naive(
    p: &Conv2dParams,
    x: ArrayView4<f32>,
    w: ArrayView4<f32>,
    dy: ArrayView4<f32>,
    mut dx: Option<ArrayViewMut4<f32>>,
    mut dw: ArrayViewMut4<f32>,
    mut dbias: ArrayViewMut1<f32>,
    _scratch: &mut Scratch,
) -> Result<()> {
    let g = p.backward_geometry(
        [x.shape(), w.shape(), dy.shape(), dw.shape(), dbias.shape()],
        dx.as_ref().map(|dx| dx.shape()),
    )?;
    if let Some(dx) = dx.as_mut() {
        dx.fill(0.0);
    }
    dw.fill(0.0);
    dbias.fill(0.0);
    for b in 0..g.b {
        for d in 0..g.d {
            for i in 0..g.h2 {
                for j in 0..g.w2 {
                    let gy = dy[[b, d, i, j]];
                    dbias[d] += gy;
                    for c in 0..g.c {
                        for ki in 0..g.kh {
                            for kj in 0..g.kw {
                                if let (Some(r), Some(q)) = (g.in_row(i, ki), g.in_col(j, kj)) {
                                    dw[[d, c, ki, kj]] += gy * x[[b, c, r, q]];
                                    if let Some(dx) = dx.as_mut() {
                                        dx[[b, c, r, q]] += gy * w[[d, c, ki, kj]];
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    Ok(())
}

/// Per output: for each y element, whole-window updates `dw[d] += dy·window` and
/// `dx_window += dy·w[d]` on a padded gradient, cropped at the end.
/// Shapes as [`conv2d_backward`]; scratch: padded x and padded dx.
pub fn conv2d_backward_per_output(
    p: &Conv2dParams,
    x: ArrayView4<f32>,
    w: ArrayView4<f32>,
    dy: ArrayView4<f32>,
    dx: Option<ArrayViewMut4<f32>>,
    mut dw: ArrayViewMut4<f32>,
    mut dbias: ArrayViewMut1<f32>,
    scratch: &mut Scratch,
) -> Result<()> {
    let g = p.backward_geometry(
        [x.shape(), w.shape(), dy.shape(), dw.shape(), dbias.shape()],
        dx.as_ref().map(|dx| dx.shape()),
    )?;
    let [pad_buf, dpad_buf] = scratch.parts([g.padded_len(), g.padded_len()]);
    let xp = g.pad(x, pad_buf);
    let mut dxp = g.zeroed_padded(dpad_buf);
    dw.fill(0.0);
    dbias.fill(0.0);
    for ((b, d, i, j), &gy) in dy.indexed_iter() {
        dbias[d] += gy;
        dw.index_axis_mut(Axis(0), d)
            .scaled_add(gy, &xp.slice(s![b, .., g.rows(i), g.cols(j)]));
        if dx.is_some() {
            dxp.slice_mut(s![b, .., g.rows(i), g.cols(j)])
                .scaled_add(gy, &w.index_axis(Axis(0), d));
        }
    }
    if let Some(dx) = dx {
        g.unpad(dxp.view(), dx);
    }
    Ok(())
}

/// Axis reduce: at each output position, the broadcast products `dy[b, d]·window[b, c, ·, ·]`
/// are summed over the batch axis into dw, and `dy[b, d]·w[d, c, ·, ·]` over the filter axis
/// into the padded dx. Shapes as [`conv2d_backward`]; scratch: padded x, padded dx, products.
pub fn conv2d_backward_axis_reduce(
    p: &Conv2dParams,
    x: ArrayView4<f32>,
    w: ArrayView4<f32>,
    dy: ArrayView4<f32>,
    dx: Option<ArrayViewMut4<f32>>,
    mut dw: ArrayViewMut4<f32>,
    dbias: ArrayViewMut1<f32>,
    scratch: &mut Scratch,
) -> Result<()> {
    let g = p.backward_geometry(
        [x.shape(), w.shape(), dy.shape(), dw.shape(), dbias.shape()],
        dx.as_ref().map(|dx| dx.shape()),
    )?;
    let [pad_buf, dpad_buf, prod_buf] =
        scratch.parts([g.padded_len(), g.padded_len(), product_len(&g)]);
    let xp = g.pad(x, pad_buf);
    let mut dxp = g.zeroed_padded(dpad_buf);
    let mut prod = product_tensor(&g, prod_buf);
    let filters = w.insert_axis(Axis(0));
    dw.fill(0.0);
    for i in 0..g.h2 {
        for j in 0..g.w2 {
            let gy = dy.slice(s![
                ..,
                ..,
                i,
                j,
                ndarray::NewAxis,
                ndarray::NewAxis,
                ndarray::NewAxis
            ]);
            let windows = xp
                .slice(s![.., .., g.rows(i), g.cols(j)])
                .insert_axis(Axis(1));
            Zip::from(&mut prod)
                .and_broadcast(&gy)
                .and_broadcast(&windows)
                .for_each(|p, &gv, &xv| *p = gv * xv);
            Zip::from(&mut dw)
                .and(prod.lanes(Axis(0)))
                .for_each(|dwv, lane| *dwv += lane.sum());
            if dx.is_none() {
                continue;
            }
            Zip::from(&mut prod)
                .and_broadcast(&gy)
                .and_broadcast(&filters)
                .for_each(|p, &gv, &wv| *p = gv * wv);
            Zip::from(dxp.slice_mut(s![.., .., g.rows(i), g.cols(j)]))
                .and(prod.lanes(Axis(1)))
                .for_each(|dxv, lane| *dxv += lane.sum());
        }
    }
    if let Some(dx) = dx {
        g.unpad(dxp.view(), dx);
    }
    channel_sums(dy.into_dyn(), dbias);
    Ok(())
}

/// dbias `[d]` ← the sum of dy over every axis but axis 1 (the channel axis); shared by the
/// vectorised techniques of convolution and the fully connected layer.
#[inline(always)]
pub(crate) fn channel_sums(dy: ndarray::ArrayViewD<f32>, mut dbias: ArrayViewMut1<f32>) {
    dbias.fill(0.0);
    // Example by example, so that each channel's part is contiguous in a standard-layout dy.
    for example in dy.outer_iter() {
        for (out, channel) in dbias.iter_mut().zip(example.outer_iter()) {
            *out += channel.sum();
        }
    }
}

/// Input channels below which the input gradient goes through col2im: the convolution's GEMM
/// has one row per input channel, and matrixmultiply's kernel computes 16 at a time, so with
/// 3 channels (RGB images) it wastes most of its work (seed conv1 backward at batch 5: 741 µs
/// through col2im, 952 µs as a convolution; conv2, 16 channels: 708 µs against 538 µs).
const MIN_ROWS_FOR_FULL_CONVOLUTION: usize = 8;

/// im2col + GEMM: per image, `dw += dy_b·colsᵀ` with `sgemm`; the input gradient (when asked)
/// with a second `sgemm` per image: for stride 1, square windows with `p < k` and at least
/// [`MIN_ROWS_FOR_FULL_CONVOLUTION`] input channels, as the convolution of dy padded by
/// `k − 1 − p` with the flipped filters, `[c, d·k·k]`, written straight into dx; otherwise
/// `dcols = wᵀ·dy_b` folded into dx by col2im.
/// Shapes as [`conv2d_backward`]; scratch: the unfolded matrices, dw as a matrix, the flipped
/// filters, and a staging matrix when dx is not in standard layout.
pub fn conv2d_backward_im2col(
    p: &Conv2dParams,
    x: ArrayView4<f32>,
    w: ArrayView4<f32>,
    dy: ArrayView4<f32>,
    dx: Option<ArrayViewMut4<f32>>,
    mut dw: ArrayViewMut4<f32>,
    dbias: ArrayViewMut1<f32>,
    scratch: &mut Scratch,
) -> Result<()> {
    let g = p.backward_geometry(
        [x.shape(), w.shape(), dy.shape(), dw.shape(), dbias.shape()],
        dx.as_ref().map(|dx| dx.shape()),
    )?;
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
            input_gradient_by_convolution(&g, w, dy_std.view(), dx, scratch)
        }
        Some(dx) => input_gradient_by_col2im(&g, w, dy_images, dx, scratch),
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
    flipped.assign(
        &w.permuted_axes([1, 0, 2, 3])
            .slice(s![.., .., ..;-1, ..;-1]),
    );
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
    let [dcols_buf] = scratch.parts([g.cols_len()]);
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
        g.col2im(dcols.view(), dx_image);
    }
    Ok(())
}

/// Direct: the weight gradient by a register-blocked kernel that sums `dy·x` over the batch
/// and the output positions for 4 filters × 5 taps at once, in vectors along output columns;
/// the input gradient by the forward kernel, run over dy spread by the stride and placed at
/// `k − 1 − p`, with the filters flipped in both spatial axes and their channel axes swapped
/// (any stride and padding). Shapes as [`conv2d_backward`]; scratch: every image's padded
/// copy and lane-padded dy, dw, the flipped filters and a staging matrix for dx.
pub fn conv2d_backward_direct(
    p: &Conv2dParams,
    x: ArrayView4<f32>,
    w: ArrayView4<f32>,
    dy: ArrayView4<f32>,
    dx: Option<ArrayViewMut4<f32>>,
    dw: ArrayViewMut4<f32>,
    dbias: ArrayViewMut1<f32>,
    scratch: &mut Scratch,
) -> Result<()> {
    let g = p.backward_geometry(
        [x.shape(), w.shape(), dy.shape(), dw.shape(), dbias.shape()],
        dx.as_ref().map(|dx| dx.shape()),
    )?;
    let isa = Isa::active();
    // The copies and bias sums around the kernels vectorised for the level too.
    vectorized(
        isa,
        #[inline(always)]
        || direct_backward(isa, &g, x, w, dy, dx, dw, dbias, scratch),
    )
}

/// [`conv2d_backward_direct`] at level `isa`, for checked shapes.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn direct_backward(
    isa: Isa,
    g: &Geometry,
    x: ArrayView4<f32>,
    w: ArrayView4<f32>,
    dy: ArrayView4<f32>,
    dx: Option<ArrayViewMut4<f32>>,
    mut dw: ArrayViewMut4<f32>,
    dbias: ArrayViewMut1<f32>,
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
        packed_len(g.c, g.d * g.kh * g.kw),
        staging_len(&dx),
    ]);
    let flipped = w.permuted_axes([1, 0, 2, 3]);
    let packed = pack_filters(flipped.slice(s![.., .., ..;-1, ..;-1]), packed);
    let at = |k: usize| k as isize - 1 - pad;
    for (dy_image, dx_image) in dy.outer_iter().zip(dx.outer_iter_mut()) {
        full.fill(dy_image, g.stride, (at(g.kh), at(g.kw)), src);
        as_matrix(dx_image, stage, |out| {
            full.planes(src, packed, None, out);
            Ok(())
        })?;
    }
    Ok(())
}
