//! Every layer of a small convolutional network, forward and backward, in the seed's four
//! techniques and a fifth, direct convolution.
//!
//! The layers are those of the seed network (convolution, max pooling, fully connected, leaky
//! ReLU and sigmoid, softmax with cross-entropy). Each pass of each layer exists once per
//! [`Technique`], as a public function of its own, and once as a dispatch on the enum; all
//! share one signature so that tests and benchmarks can run them side by side. Two fused passes
//! exist apart from the techniques: [`conv2d_leaky_relu_forward`], a convolution and the leaky
//! ReLU after it, fused into the direct kernels' store (a dispatch on the technique, which the
//! other techniques run as the two layers); and, for inference only,
//! [`conv2d_leaky_relu_pool_forward`], which also max-pools the outputs in the direct
//! kernels' registers and keeps neither the convolution's outputs nor the pooling's argmax.
//!
//! Conventions, the same in every module:
//! - Tensors are `f32`, NCHW, batch first: `[b, c, h, w]`; a fully connected layer sees `[b, i]`.
//! - Kernels write into outputs the caller provides. Every output is **overwritten**, never
//!   accumulated into, so its previous contents do not matter.
//! - Scratch memory (the im2col matrix, padded copies, broadcast products) comes from a caller's
//!   [`Scratch`], which grows to the largest request and is then reused: a trainer that keeps one
//!   per layer allocates nothing after its first step.
//! - Shapes are checked before any work: a mismatch is a [`KernelError`] naming the layer and the
//!   shapes, never a panic inside a loop.
//!
//! ```
//! use kernels::{Conv2dParams, Scratch, Technique, conv2d_forward};
//! use ndarray::{Array1, Array4};
//!
//! // The seed network's first layer: 16 filters of 5×5 over a 3×32×32 image, "same" padding.
//! let p = Conv2dParams { stride: 1, padding: 2 };
//! let x = Array4::<f32>::ones((1, 3, 32, 32));
//! let w = Array4::<f32>::from_elem((16, 3, 5, 5), 0.01);
//! let bias = Array1::<f32>::zeros(16);
//! let mut y = Array4::<f32>::zeros(p.output_shape(x.shape(), w.shape())?);
//! let mut scratch = Scratch::new(); // keep it: later calls reuse its memory
//! conv2d_forward(Technique::Im2colGemm, &p, x.view(), w.view(), bias.view(), y.view_mut(), &mut scratch)?;
//! assert_eq!(y.shape(), &[1, 16, 32, 32]);
//! assert!((y[[0, 0, 16, 16]] - 0.75).abs() < 1e-6); // 75 taps of 1 × 0.01
//! # Ok::<(), kernels::KernelError>(())
//! ```

mod activation;
mod conv;
mod error;
mod fc;
mod gemm;
mod isa;
mod lanes;
mod peak;
mod pool;
mod scratch;
mod softmax;
mod technique;
mod window;

pub use activation::{
    ActivationBackwardFn, ActivationForwardFn, LEAKY_RELU_SLOPE, leaky_relu_backward,
    leaky_relu_backward_fn, leaky_relu_backward_naive, leaky_relu_backward_vectorized,
    leaky_relu_forward, leaky_relu_forward_fn, leaky_relu_forward_naive,
    leaky_relu_forward_vectorized, sigmoid_backward, sigmoid_backward_fn, sigmoid_backward_naive,
    sigmoid_backward_vectorized, sigmoid_forward, sigmoid_forward_fn, sigmoid_forward_naive,
    sigmoid_forward_vectorized,
};
pub use conv::{
    Conv2dParams, ConvBackwardFn, ConvForwardFn, conv2d_backward, conv2d_backward_axis_reduce,
    conv2d_backward_direct, conv2d_backward_fn, conv2d_backward_im2col, conv2d_backward_naive,
    conv2d_backward_per_output, conv2d_forward, conv2d_forward_axis_reduce, conv2d_forward_direct,
    conv2d_forward_fn, conv2d_forward_im2col, conv2d_forward_naive, conv2d_forward_per_output,
    conv2d_leaky_relu_forward, conv2d_leaky_relu_pool_forward,
};
pub use error::{KernelError, Result};
pub use fc::{
    FcBackwardFn, FcForwardFn, fc_backward, fc_backward_axis_reduce, fc_backward_fn,
    fc_backward_gemm, fc_backward_naive, fc_backward_per_output, fc_forward,
    fc_forward_axis_reduce, fc_forward_fn, fc_forward_gemm, fc_forward_naive,
    fc_forward_per_output, flatten,
};
pub use gemm::gemm;
pub use isa::{ISA_ENV, Isa, IsaError, force_isa, with_isa};
pub use peak::fma_loop;
pub use pool::{
    Pool2dParams, PoolBackwardFn, PoolForwardFn, max_pool2d_backward,
    max_pool2d_backward_axis_reduce, max_pool2d_backward_direct, max_pool2d_backward_fn,
    max_pool2d_backward_im2col, max_pool2d_backward_naive, max_pool2d_backward_per_output,
    max_pool2d_forward, max_pool2d_forward_axis_reduce, max_pool2d_forward_direct,
    max_pool2d_forward_fn, max_pool2d_forward_im2col, max_pool2d_forward_naive,
    max_pool2d_forward_per_output,
};
pub use scratch::Scratch;
pub use softmax::{
    SoftmaxBackwardFn, SoftmaxForwardFn, softmax_cross_entropy_backward,
    softmax_cross_entropy_backward_axis_reduce, softmax_cross_entropy_backward_fn,
    softmax_cross_entropy_backward_naive, softmax_cross_entropy_backward_per_output,
    softmax_cross_entropy_forward, softmax_cross_entropy_forward_axis_reduce,
    softmax_cross_entropy_forward_fn, softmax_cross_entropy_forward_naive,
    softmax_cross_entropy_forward_per_output,
};
pub use technique::Technique;
