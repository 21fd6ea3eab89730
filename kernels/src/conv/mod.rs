//! 2-D convolution (cross-correlation, as every deep-learning framework computes it):
//! x `[b, c, h, w]`, w `[d, c, kh, kw]`, bias `[d]` → y `[b, d, h2, w2]`, with
//! `h2 = (h + 2p − kh) / s + 1` (rounded down, as in the seed) and likewise `w2`.

/// Defines the public backward technique `$name` with the signature every technique shares
/// ([`ConvBackwardFn`]): the one shape check ([`checked_backward`]), then `$checked` on the
/// checked shapes and the bundled gradients.
macro_rules! backward_technique {
    ($(#[$doc:meta])* $name:ident => $checked:ident) => {
        $(#[$doc])*
        pub fn $name(
            p: &super::Conv2dParams,
            x: ndarray::ArrayView4<f32>,
            w: ndarray::ArrayView4<f32>,
            dy: ndarray::ArrayView4<f32>,
            dx: Option<ndarray::ArrayViewMut4<f32>>,
            dw: ndarray::ArrayViewMut4<f32>,
            dbias: ndarray::ArrayViewMut1<f32>,
            scratch: &mut crate::scratch::Scratch,
        ) -> crate::error::Result<()> {
            let grads = super::Gradients { dx, dw, dbias };
            super::checked_backward(p, x, w, dy, grads, scratch, $checked)
        }
    };
}

mod axis_reduce;
mod correlation;
mod direct;
mod im2col;
mod naive;
mod per_output;

use ndarray::{
    ArrayView1, ArrayView2, ArrayView4, ArrayViewMut1, ArrayViewMut2, ArrayViewMut3, ArrayViewMut4,
    Zip, s,
};

use crate::error::{Result, expect_shape, mismatch};
use crate::scratch::Scratch;
use crate::technique::Technique;
use crate::window::Geometry;

pub use axis_reduce::{conv2d_backward_axis_reduce, conv2d_forward_axis_reduce};
pub use direct::{conv2d_backward_direct, conv2d_forward_direct};

use correlation::Activation;
pub use im2col::{conv2d_backward_im2col, conv2d_forward_im2col};
pub use naive::{conv2d_backward_naive, conv2d_forward_naive};
pub use per_output::{conv2d_backward_per_output, conv2d_forward_per_output};

const FORWARD: &str = "conv2d forward";

const BACKWARD: &str = "conv2d backward";

const POOLED: &str = "conv2d + leaky_relu + max_pool2d forward";

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
        let g = self.input_geometry(FORWARD, x, w, bias)?;
        expect_shape(FORWARD, "y", y.shape(), &g.output_shape())?;
        Ok(g)
    }

    /// The geometry of a forward pass named `layer` in errors, x, w and bias checked (the
    /// output's shape is the caller's to check: a pooled pass's differs).
    fn input_geometry(
        &self,
        layer: &'static str,
        x: &ArrayView4<f32>,
        w: &ArrayView4<f32>,
        bias: &ArrayView1<f32>,
    ) -> Result<Geometry> {
        let g = self.geometry(layer, x.shape(), w.shape())?;
        expect_shape(layer, "bias", bias.shape(), &[g.d])?;
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

/// A convolution's gradients, which every backward technique overwrites: dx `[b, c, h, w]`
/// (None: not computed), dw `[d, c, kh, kw]` and dbias `[d]`.
struct Gradients<'a> {
    dx: Option<ArrayViewMut4<'a, f32>>,
    dw: ArrayViewMut4<'a, f32>,
    dbias: ArrayViewMut1<'a, f32>,
}

/// A backward technique for checked shapes: `(geometry, x, w, dy, gradients, scratch)`.
type CheckedBackward = fn(
    &Geometry,
    ArrayView4<f32>,
    ArrayView4<f32>,
    ArrayView4<f32>,
    Gradients,
    &mut Scratch,
) -> Result<()>;

/// Checks the shapes of a backward call, the one check every technique shares, then runs
/// `backward` on them.
fn checked_backward(
    p: &Conv2dParams,
    x: ArrayView4<f32>,
    w: ArrayView4<f32>,
    dy: ArrayView4<f32>,
    grads: Gradients,
    scratch: &mut Scratch,
    backward: CheckedBackward,
) -> Result<()> {
    let g = p.backward_geometry(
        [
            x.shape(),
            w.shape(),
            dy.shape(),
            grads.dw.shape(),
            grads.dbias.shape(),
        ],
        grads.dx.as_ref().map(|dx| dx.shape()),
    )?;
    backward(&g, x, w, dy, grads, scratch)
}

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

/// Convolution then the seed's leaky ReLU with technique `t`: y = leaky_relu(conv(x)) `[b, d,
/// h2, w2]` (overwritten), shapes as [`conv2d_forward`]; what a convolution layer followed by
/// its activation computes, without the convolution's own output. The direct technique applies
/// the activation to its registers before the store; the others run the convolution, then the
/// activation over y in place. Either way, one pass less over y than the two layers apart.
pub fn conv2d_leaky_relu_forward(
    t: Technique,
    p: &Conv2dParams,
    x: ArrayView4<f32>,
    w: ArrayView4<f32>,
    bias: ArrayView1<f32>,
    mut y: ArrayViewMut4<f32>,
    scratch: &mut Scratch,
) -> Result<()> {
    if t == Technique::Direct {
        return direct::forward(p, (x, w, bias), Activation::LeakyRelu, y, scratch);
    }
    conv2d_forward(t, p, x, w, bias, y.view_mut(), scratch)?;
    crate::activation::leaky_relu_in_place(y.into_dyn());
    Ok(())
}

/// Convolution, the seed's leaky ReLU and max pooling, forward only: y =
/// max_pool(leaky_relu(conv(x))) `[b, d, h3, w3]` (overwritten), x `[b, c, h, w]`, w `[d, c,
/// kh, kw]` and bias `[d]` as [`conv2d_forward`], `[h3, w3]` the pooling's output of the
/// convolution's `[h2, w2]` ([`Pool2dParams::output_shape`](crate::Pool2dParams)). For
/// inference: neither the convolution's outputs nor the pooling's argmax is kept, which a
/// backward pass needs (training runs [`conv2d_leaky_relu_forward`], then
/// [`max_pool2d_forward`](crate::max_pool2d_forward)). The values are those of the layers
/// apart, bit for bit on the direct technique.
///
/// The direct technique's kernels at the active level. A 2×2 window at stride 2 over planes
/// of even sides, at levels avx2 and portable, is pooled in the kernel's registers, so the
/// convolution's outputs are never stored; otherwise each image's outputs go to scratch and
/// are pooled from there while still in cache. Scratch: the direct forward pass's, plus one
/// image's outputs and the pooling's planes when it pools them apart.
pub fn conv2d_leaky_relu_pool_forward(
    p: &Conv2dParams,
    pool: &crate::Pool2dParams,
    x: ArrayView4<f32>,
    w: ArrayView4<f32>,
    bias: ArrayView1<f32>,
    y: ArrayViewMut4<f32>,
    scratch: &mut Scratch,
) -> Result<()> {
    direct::forward_pooled(p, pool, (x, w, bias), y, scratch)
}

/// The sum of the elementwise product of two views of one shape.
pub(crate) fn dot<D: ndarray::Dimension>(
    a: ndarray::ArrayView<f32, D>,
    b: ndarray::ArrayView<f32, D>,
) -> f32 {
    Zip::from(a).and(b).fold(0.0, |acc, &u, &v| acc + u * v)
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

/// The filters of the input gradient as a convolution of dy: w `[d, c, kh, kw]` seen as
/// `[c, d, kh, kw]`, flipped in both spatial axes (a view, no copy).
fn flipped_filters(w: ArrayView4<f32>) -> ArrayView4<f32> {
    w.permuted_axes([1, 0, 2, 3])
        .slice_move(s![.., .., ..;-1, ..;-1])
}

/// Filters w `[d, c, kh, kw]` (standard layout) seen as the matrix `[d, c·kh·kw]`.
fn filter_matrix<'a>(g: &Geometry, w: ArrayView4<'a, f32>) -> ArrayView2<'a, f32> {
    w.into_shape_with_order((g.d, g.c * g.kh * g.kw))
        .expect("standard layout reshapes")
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
