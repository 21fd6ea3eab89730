//! What the timing study measures: the seed network's layers at their real shapes, the sweeps,
//! and for each a ready-to-run pass. The criterion benchmarks (`layers.rs`) and the report
//! renderer (`report/`) both read these tables, so names and FLOP counts live in one place.

use kernels::*;
use ndarray::{Array1, Array2, Array4, ArrayD, IxDyn};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

/// Forward or backward.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Pass {
    /// The forward pass.
    Forward,
    /// The backward pass (all gradients the layer produces).
    Backward,
}

impl Pass {
    /// Both, forward first.
    pub const ALL: [Pass; 2] = [Pass::Forward, Pass::Backward];

    /// `forward` or `backward`, as in benchmark group names.
    pub fn name(self) -> &'static str {
        match self {
            Pass::Forward => "forward",
            Pass::Backward => "backward",
        }
    }
}

/// A layer at one example's shape; the batch size is chosen when a pass is prepared.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layer {
    /// Convolution of x `[c, h, w]` with `d` filters `k × k`.
    Conv {
        /// Input channels.
        c: usize,
        /// Input height.
        h: usize,
        /// Input width.
        w: usize,
        /// Filters.
        d: usize,
        /// Kernel size.
        k: usize,
        /// Stride.
        stride: usize,
        /// Zero padding.
        pad: usize,
    },
    /// Max pooling of x `[c, h, w]` with `size × size` windows.
    Pool {
        /// Channels.
        c: usize,
        /// Input height.
        h: usize,
        /// Input width.
        w: usize,
        /// Window size.
        size: usize,
        /// Stride.
        stride: usize,
    },
    /// Fully connected, `inputs → outputs`.
    Fc {
        /// Inputs per example.
        inputs: usize,
        /// Outputs per example.
        outputs: usize,
    },
    /// Leaky ReLU over `[c, h, w]`.
    LeakyRelu {
        /// The example's shape.
        shape: [usize; 3],
    },
    /// Sigmoid over `[c, h, w]`.
    Sigmoid {
        /// The example's shape.
        shape: [usize; 3],
    },
    /// Softmax with cross-entropy over `classes`.
    Softmax {
        /// Classes.
        classes: usize,
    },
}

/// A named layer of the study.
#[derive(Clone, Copy, Debug)]
pub struct Case {
    /// Short name, the first part of its benchmark groups (`conv1`).
    pub name: &'static str,
    /// What it computes, for tables (`3×32×32 → 16, f5 s1 p2`).
    pub title: &'static str,
    /// The layer.
    pub layer: Layer,
}

const fn conv(c: usize, h: usize, d: usize) -> Layer {
    Layer::Conv {
        c,
        h,
        w: h,
        d,
        k: 5,
        stride: 1,
        pad: 2,
    }
}

const fn pool(c: usize, h: usize) -> Layer {
    Layer::Pool {
        c,
        h,
        w: h,
        size: 2,
        stride: 2,
    }
}

/// The seed network, layer by layer (IN 3×32×32 → conv16 → ReLU → pool → conv20 → ReLU →
/// pool → conv20 → ReLU → pool → fc10 → softmax), with the activations at conv1's output.
pub const SEED_NETWORK: [Case; 10] = [
    Case {
        name: "conv1",
        title: "convolution 3×32×32 → 16, f5 s1 p2",
        layer: conv(3, 32, 16),
    },
    Case {
        name: "pool1",
        title: "max pool 16×32×32, f2 s2",
        layer: pool(16, 32),
    },
    Case {
        name: "conv2",
        title: "convolution 16×16×16 → 20, f5 s1 p2",
        layer: conv(16, 16, 20),
    },
    Case {
        name: "pool2",
        title: "max pool 20×16×16, f2 s2",
        layer: pool(20, 16),
    },
    Case {
        name: "conv3",
        title: "convolution 20×8×8 → 20, f5 s1 p2",
        layer: conv(20, 8, 20),
    },
    Case {
        name: "pool3",
        title: "max pool 20×8×8, f2 s2",
        layer: pool(20, 8),
    },
    Case {
        name: "fc",
        title: "fully connected 320 → 10",
        layer: Layer::Fc {
            inputs: 320,
            outputs: 10,
        },
    },
    Case {
        name: "leaky_relu",
        title: "leaky ReLU on 16×32×32",
        layer: Layer::LeakyRelu {
            shape: [16, 32, 32],
        },
    },
    Case {
        name: "sigmoid",
        title: "sigmoid on 16×32×32",
        layer: Layer::Sigmoid {
            shape: [16, 32, 32],
        },
    },
    Case {
        name: "softmax",
        title: "softmax + cross-entropy, 10 classes",
        layer: Layer::Softmax { classes: 10 },
    },
];

/// Batch sizes of the per-layer tables: unbatched, and the seed's batch.
pub const TABLE_BATCHES: [usize; 2] = [1, 5];

/// Batch sizes of the batch sweeps.
pub const SWEEP_BATCHES: [usize; 7] = [1, 2, 5, 16, 32, 64, 128];
/// The batch sweeps' points in quick mode: from 1 to 64, a third of the full sweep's examples.
pub const QUICK_SWEEP_BATCHES: [usize; 4] = [1, 4, 16, 64];

/// The batch sweeps' points: [`QUICK_SWEEP_BATCHES`] when `quick`, else [`SWEEP_BATCHES`].
pub fn sweep_batches(quick: bool) -> &'static [usize] {
    if quick {
        &QUICK_SWEEP_BATCHES
    } else {
        &SWEEP_BATCHES
    }
}

/// Layers swept over the batch size, with the techniques that are fast enough to sweep (the
/// fully connected layer's direct technique is its GEMM: not swept twice).
pub const BATCH_SWEEPS: [(&str, &[Technique]); 2] = [
    (
        "conv2",
        &[
            Technique::PerOutput,
            Technique::AxisReduce,
            Technique::Im2colGemm,
            Technique::Direct,
        ],
    ),
    (
        "fc",
        &[
            Technique::PerOutput,
            Technique::AxisReduce,
            Technique::Im2colGemm,
        ],
    ),
];

/// Input sides of the size sweep: conv2's channels and filters (16 → 20, f5 s1 p2), batch 1.
pub const SWEEP_SIDES: [usize; 4] = [16, 32, 64, 128];
/// The size sweep's sides in quick mode.
pub const QUICK_SWEEP_SIDES: [usize; 3] = [16, 32, 64];

/// The size sweep's sides: [`QUICK_SWEEP_SIDES`] when `quick`, else [`SWEEP_SIDES`].
pub fn sweep_sides(quick: bool) -> &'static [usize] {
    if quick {
        &QUICK_SWEEP_SIDES
    } else {
        &SWEEP_SIDES
    }
}

/// Group name of the size sweep (forward only).
pub const SIZE_SWEEP_GROUP: &str = "conv-size-sweep/forward";

/// Group name and matrix side of the sgemm peak measurement.
pub const PEAK_GROUP: &str = "sgemm-peak";
/// Side of the square matrices of the peak measurement.
pub const PEAK_SIDE: usize = 1024;

/// Group name of the FMA peak: a register-only multiply-add loop at each instruction-set level
/// (function id the level's name, value the thread count).
pub const FMA_GROUP: &str = "fma-peak";
/// Rounds of [`kernels::fma_loop`] per benchmark iteration: several milliseconds, so that
/// waking the pool's threads for each iteration is lost in it. With 100,000 rounds (a quarter of
/// a millisecond) the wake-up was timed too: on the Zen 3 core at AVX2, 72 GFLOP/s on one thread
/// where `network bench`'s 20 million rounds measured 102 (2026-11-29).
pub const FMA_ROUNDS: usize = 4_000_000;

/// Techniques timed at every instruction-set level the CPU supports (at [`ISA_BATCH`]): the
/// direct kernels, written in each level's vectors, and the naive loops, which the compiler
/// may vectorise for the level it compiles them for.
pub const ISA_TECHNIQUES: [Technique; 2] = [Technique::Naive, Technique::Direct];
/// The batch of the instruction-set comparison: the seed's.
pub const ISA_BATCH: usize = 5;

/// The criterion group of a layer's pass at each level: `conv1-isa/forward`.
pub fn isa_group(case: &str, pass: Pass) -> String {
    format!("{case}-isa/{}", pass.name())
}

/// The function id of technique `t` at level `isa` in an [`isa_group`]: `direct-avx2`.
pub fn isa_function(t: Technique, isa: Isa) -> String {
    format!("{}-{}", t.name(), isa.name())
}

/// The environment variable that makes the benchmarks quick (`STUDY_QUICK=1`, set by
/// `scripts/bench.sh --quick`): fewer and shorter samples, fewer whole-trainer examples.
pub const QUICK_ENV: &str = "STUDY_QUICK";

/// Whether the benchmarks run in quick mode ([`QUICK_ENV`] is `1`).
pub fn quick() -> bool {
    std::env::var_os(QUICK_ENV).is_some_and(|v| v == "1")
}

/// The criterion group of a layer's pass: `conv1/forward`.
pub fn group(case: &str, pass: Pass) -> String {
    format!("{case}/{}", pass.name())
}

/// The criterion group of a batch sweep: `conv2-batch-sweep/forward`.
pub fn sweep_group(case: &str, pass: Pass) -> String {
    format!("{case}-batch-sweep/{}", pass.name())
}

/// The case called `name` in the seed network.
pub fn seed_case(name: &str) -> Option<&'static Case> {
    SEED_NETWORK.iter().find(|c| c.name == name)
}

/// The size-sweep convolution at input side `side`.
pub fn size_sweep_layer(side: usize) -> Layer {
    Layer::Conv {
        c: 16,
        h: side,
        w: side,
        d: 20,
        k: 5,
        stride: 1,
        pad: 2,
    }
}

impl Layer {
    /// The kind of layer, as the seed's tables name them: `conv`, `pool`, `fc`, `activation`
    /// or `softmax`.
    pub fn kind(&self) -> &'static str {
        match self {
            Layer::Conv { .. } => "conv",
            Layer::Pool { .. } => "pool",
            Layer::Fc { .. } => "fc",
            Layer::LeakyRelu { .. } | Layer::Sigmoid { .. } => "activation",
            Layer::Softmax { .. } => "softmax",
        }
    }

    /// A convolution's output height and width, by the kernels' own formula.
    pub fn conv_output(&self) -> Option<(usize, usize)> {
        let Layer::Conv {
            c,
            h,
            w,
            d,
            k,
            stride,
            pad,
        } = *self
        else {
            return None;
        };
        let params = Conv2dParams {
            stride,
            padding: pad,
        };
        let [_, _, h2, w2] = params.output_shape(&[1, c, h, w], &[d, c, k, k]).ok()?;
        Some((h2, w2))
    }

    /// Floating-point operations of a pass over `batch` examples, counting a multiply-add as 2;
    /// `None` for layers without products (pooling, activations, softmax). A backward pass
    /// computes two products of the forward's size (input and weight gradients).
    pub fn flops(&self, pass: Pass, batch: usize) -> Option<f64> {
        let forward = match *self {
            Layer::Conv { c, d, k, .. } => {
                let (h2, w2) = self.conv_output()?;
                2 * d * h2 * w2 * c * k * k
            }
            Layer::Fc { inputs, outputs } => 2 * inputs * outputs,
            _ => return None,
        };
        let per_pass = match pass {
            Pass::Forward => forward,
            Pass::Backward => 2 * forward,
        };
        Some((per_pass * batch) as f64)
    }

    /// Builds random inputs, outputs and scratch for `batch` examples and returns a closure
    /// that runs one pass with technique `t`. Backward inputs that come from a forward pass
    /// (pooling's argmax, activations' outputs, softmax probabilities) are computed here, once.
    /// The arrays are those of [`Layer::arrays`], run by [`Prepared::run`].
    pub fn prepare(&self, pass: Pass, t: Technique, batch: usize) -> Box<dyn FnMut()> {
        let mut prepared = Prepared::new(self.arrays(batch), t).expect("valid case");
        Box::new(move || prepared.run(pass).expect("valid case"))
    }

    /// The case's deterministic inputs for `batch` examples, and zeroed outputs of the right
    /// shapes. Inputs are uniform in [−1, 1) from one `StdRng` seeded with [`INPUT_SEED`],
    /// drawn in the order x, w, bias, dy (the weights and bias only where the layer has them);
    /// softmax logits are such draws times 3, and its labels `(b · 7) mod classes`. Shapes:
    /// convolution and pooling x `[b, c, h, w]`, fully connected x `[b, i]`, activations
    /// x `[b, c, h, w]`, softmax logits `[b, k]`; see [`Arrays`] for every array.
    pub fn arrays(&self, batch: usize) -> Arrays {
        let mut rng = StdRng::seed_from_u64(INPUT_SEED);
        let mut random = |shape: &[usize]| {
            ArrayD::from_shape_simple_fn(IxDyn(shape), || rng.random_range(-1.0f32..1.0))
        };
        match *self {
            Layer::Conv {
                c,
                h,
                w,
                d,
                k,
                stride,
                pad,
            } => {
                let params = Conv2dParams {
                    stride,
                    padding: pad,
                };
                let x = dim4(random(&[batch, c, h, w]));
                let wt = dim4(random(&[d, c, k, k]));
                let bias = Array1::from_iter(random(&[d]));
                let y_shape = params
                    .output_shape(x.shape(), wt.shape())
                    .expect("valid case");
                let dy = dim4(random(&y_shape));
                Arrays::Conv {
                    params,
                    y: Array4::zeros(y_shape),
                    dx: Array4::zeros(x.raw_dim()),
                    dw: Array4::zeros(wt.raw_dim()),
                    dbias: Array1::zeros(d),
                    x,
                    w: wt,
                    bias,
                    dy,
                }
            }
            Layer::Pool {
                c,
                h,
                w,
                size,
                stride,
            } => {
                let params = Pool2dParams { size, stride };
                let x = dim4(random(&[batch, c, h, w]));
                let shape = params.output_shape(x.shape()).expect("valid case");
                let dy = dim4(random(&shape));
                Arrays::Pool {
                    params,
                    y: Array4::zeros(shape),
                    argmax: Array4::zeros(shape),
                    dx: Array4::zeros(x.raw_dim()),
                    x,
                    dy,
                }
            }
            Layer::Fc { inputs, outputs } => {
                let x = dim2(random(&[batch, inputs]));
                let wt = dim2(random(&[outputs, inputs]));
                let bias = Array1::from_iter(random(&[outputs]));
                let dy = dim2(random(&[batch, outputs]));
                Arrays::Fc {
                    y: Array2::zeros((batch, outputs)),
                    dx: Array2::zeros(x.raw_dim()),
                    dw: Array2::zeros(wt.raw_dim()),
                    dbias: Array1::zeros(outputs),
                    x,
                    w: wt,
                    bias,
                    dy,
                }
            }
            Layer::LeakyRelu { shape } | Layer::Sigmoid { shape } => {
                let function = match self {
                    Layer::LeakyRelu { .. } => Activation::LeakyRelu,
                    _ => Activation::Sigmoid,
                };
                let x = random(&[batch, shape[0], shape[1], shape[2]]);
                let dy = random(x.shape());
                Arrays::Activation {
                    function,
                    y: ArrayD::zeros(x.raw_dim()),
                    dx: ArrayD::zeros(x.raw_dim()),
                    x,
                    dy,
                }
            }
            Layer::Softmax { classes } => {
                let logits = dim2(random(&[batch, classes]).mapv(|v| 3.0 * v));
                Arrays::Softmax {
                    labels: Array1::from_shape_fn(batch, |b| (b * 7) % classes),
                    probs: Array2::zeros(logits.raw_dim()),
                    loss: 0.0,
                    dlogits: Array2::zeros(logits.raw_dim()),
                    logits,
                }
            }
        }
    }
}

/// Seed of the random inputs of every case ([`Layer::arrays`]).
pub const INPUT_SEED: u64 = 0x5eed;

/// An elementwise activation of the study.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Activation {
    /// `max(x, 0.01·x)`.
    LeakyRelu,
    /// `1 / (1 + e^−x)`.
    Sigmoid,
}

/// One case's arrays at one batch size b: its inputs, and the outputs its passes overwrite.
/// Every array is f32 (the labels `usize`, the argmax `u32`), NCHW.
#[derive(Clone, Debug)]
pub enum Arrays {
    /// A convolution.
    Conv {
        /// Stride and padding.
        params: Conv2dParams,
        /// Input `[b, c, h, w]`.
        x: Array4<f32>,
        /// Filters `[d, c, k, k]`.
        w: Array4<f32>,
        /// Bias `[d]`.
        bias: Array1<f32>,
        /// Upstream gradient `[b, d, h2, w2]`.
        dy: Array4<f32>,
        /// Forward output `[b, d, h2, w2]`.
        y: Array4<f32>,
        /// Input gradient `[b, c, h, w]`.
        dx: Array4<f32>,
        /// Filter gradient `[d, c, k, k]`, summed over the batch.
        dw: Array4<f32>,
        /// Bias gradient `[d]`, summed over the batch and positions.
        dbias: Array1<f32>,
    },
    /// A max pooling.
    Pool {
        /// Window and stride.
        params: Pool2dParams,
        /// Input `[b, c, h, w]`.
        x: Array4<f32>,
        /// Upstream gradient `[b, c, h2, w2]`.
        dy: Array4<f32>,
        /// Forward output `[b, c, h2, w2]`.
        y: Array4<f32>,
        /// Forward output `[b, c, h2, w2]`: each maximum's flat index `row · w + col` in its
        /// input plane (the first maximum in row-major order), which the backward reads.
        argmax: Array4<u32>,
        /// Input gradient `[b, c, h, w]`.
        dx: Array4<f32>,
    },
    /// A fully connected layer.
    Fc {
        /// Input `[b, i]`.
        x: Array2<f32>,
        /// Weights `[o, i]`.
        w: Array2<f32>,
        /// Bias `[o]`.
        bias: Array1<f32>,
        /// Upstream gradient `[b, o]`.
        dy: Array2<f32>,
        /// Forward output `[b, o]`.
        y: Array2<f32>,
        /// Input gradient `[b, i]`.
        dx: Array2<f32>,
        /// Weight gradient `[o, i]`, summed over the batch.
        dw: Array2<f32>,
        /// Bias gradient `[o]`, summed over the batch.
        dbias: Array1<f32>,
    },
    /// An elementwise activation.
    Activation {
        /// Which one.
        function: Activation,
        /// Input `[b, c, h, w]`.
        x: ArrayD<f32>,
        /// Upstream gradient `[b, c, h, w]`.
        dy: ArrayD<f32>,
        /// Forward output `[b, c, h, w]`, which the backward reads.
        y: ArrayD<f32>,
        /// Input gradient `[b, c, h, w]`.
        dx: ArrayD<f32>,
    },
    /// Softmax with cross-entropy.
    Softmax {
        /// Logits `[b, k]`.
        logits: Array2<f32>,
        /// Labels `[b]`, each below k.
        labels: Array1<usize>,
        /// Forward output `[b, k]`: the probabilities, which the backward reads.
        probs: Array2<f32>,
        /// Forward output: the mean loss over the batch.
        loss: f32,
        /// The loss gradient `[b, k]`, `(probs − onehot(labels)) / b`.
        dlogits: Array2<f32>,
    },
}

/// A case's [`Arrays`] with scratch memory and a technique: ready to run either pass.
#[derive(Debug)]
pub struct Prepared {
    /// The technique both passes run.
    pub technique: Technique,
    /// Inputs and outputs; [`Prepared::run`] overwrites the outputs of its pass.
    pub arrays: Arrays,
    scratch: Scratch,
}

impl Prepared {
    /// Takes `arrays` and runs, once, the forward passes whose outputs a backward pass reads
    /// (pooling's argmax, activations' outputs, softmax probabilities), with technique `t`.
    pub fn new(arrays: Arrays, t: Technique) -> kernels::Result<Prepared> {
        let mut prepared = Prepared {
            technique: t,
            arrays,
            scratch: Scratch::new(),
        };
        if !matches!(prepared.arrays, Arrays::Conv { .. } | Arrays::Fc { .. }) {
            prepared.run(Pass::Forward)?;
        }
        Ok(prepared)
    }

    /// Runs `pass` with the technique: the kernels' public dispatch functions
    /// (`conv2d_forward(t, …)` and so on), overwriting the pass's outputs.
    pub fn run(&mut self, pass: Pass) -> kernels::Result<()> {
        let t = self.technique;
        let scratch = &mut self.scratch;
        match (&mut self.arrays, pass) {
            (
                Arrays::Conv {
                    params,
                    x,
                    w,
                    bias,
                    y,
                    ..
                },
                Pass::Forward,
            ) => conv2d_forward(
                t,
                params,
                x.view(),
                w.view(),
                bias.view(),
                y.view_mut(),
                scratch,
            ),
            (
                Arrays::Conv {
                    params,
                    x,
                    w,
                    dy,
                    dx,
                    dw,
                    dbias,
                    ..
                },
                Pass::Backward,
            ) => conv2d_backward(
                t,
                params,
                x.view(),
                w.view(),
                dy.view(),
                Some(dx.view_mut()),
                dw.view_mut(),
                dbias.view_mut(),
                scratch,
            ),
            (
                Arrays::Pool {
                    params,
                    x,
                    y,
                    argmax,
                    ..
                },
                Pass::Forward,
            ) => max_pool2d_forward(
                t,
                params,
                x.view(),
                y.view_mut(),
                argmax.view_mut(),
                scratch,
            ),
            (
                Arrays::Pool {
                    params,
                    dy,
                    argmax,
                    dx,
                    ..
                },
                Pass::Backward,
            ) => max_pool2d_backward(t, params, dy.view(), argmax.view(), dx.view_mut(), scratch),
            (Arrays::Fc { x, w, bias, y, .. }, Pass::Forward) => {
                fc_forward(t, x.view(), w.view(), bias.view(), y.view_mut(), scratch)
            }
            (
                Arrays::Fc {
                    x,
                    w,
                    dy,
                    dx,
                    dw,
                    dbias,
                    ..
                },
                Pass::Backward,
            ) => fc_backward(
                t,
                x.view(),
                w.view(),
                dy.view(),
                dx.view_mut(),
                dw.view_mut(),
                dbias.view_mut(),
                scratch,
            ),
            (Arrays::Activation { function, x, y, .. }, Pass::Forward) => match function {
                Activation::LeakyRelu => leaky_relu_forward(t, x.view(), y.view_mut()),
                Activation::Sigmoid => sigmoid_forward(t, x.view(), y.view_mut()),
            },
            (
                Arrays::Activation {
                    function,
                    dy,
                    y,
                    dx,
                    ..
                },
                Pass::Backward,
            ) => match function {
                Activation::LeakyRelu => leaky_relu_backward(t, y.view(), dy.view(), dx.view_mut()),
                Activation::Sigmoid => sigmoid_backward(t, y.view(), dy.view(), dx.view_mut()),
            },
            (
                Arrays::Softmax {
                    logits,
                    labels,
                    probs,
                    loss,
                    ..
                },
                Pass::Forward,
            ) => {
                *loss = softmax_cross_entropy_forward(
                    t,
                    logits.view(),
                    labels.view(),
                    probs.view_mut(),
                    scratch,
                )?;
                Ok(())
            }
            (
                Arrays::Softmax {
                    labels,
                    probs,
                    dlogits,
                    ..
                },
                Pass::Backward,
            ) => softmax_cross_entropy_backward(t, probs.view(), labels.view(), dlogits.view_mut()),
        }
    }
}

fn dim4(a: ArrayD<f32>) -> Array4<f32> {
    a.into_dimensionality().expect("4 axes")
}

fn dim2(a: ArrayD<f32>) -> Array2<f32> {
    a.into_dimensionality().expect("2 axes")
}

/// The machine's GEMM peak: square sgemms split by rows over a pool's threads.
pub use network::bench::sgemm_on_threads;

/// Registers the bundled font for plotters (the report's charts).
pub use network::pictures::register_fonts;

/// Group of the whole-trainer benchmark (`benches/trainer.rs`).
pub const TRAINER_GROUP: &str = "trainer";
/// The seed's whole-trainer row: the report gives every trainer's time per this many examples.
pub const TRAINER_EXAMPLES: usize = 1000;

/// Examples trained per iteration by the techniques whose step costs the same whatever the
/// batch (naive, per-output, axis-reduce: a second or more per 100 examples). Ten iterations of
/// 1000 would take up to 13 minutes each; a tenth of that gives the same per-example time, and
/// the report scales it to [`TRAINER_EXAMPLES`] from the count criterion recorded.
pub const SLOW_TRAINER_EXAMPLES: usize = 100;
/// Examples per iteration in quick mode (`STUDY_QUICK=1`), and for the slow techniques in it.
pub const QUICK_TRAINER_EXAMPLES: [usize; 2] = [50, 20];

/// One whole-trainer configuration.
#[derive(Clone, Copy, Debug)]
pub struct TrainerCase {
    /// A technique name, or `auto` for the fastest per layer.
    pub technique: &'static str,
    /// Examples per step.
    pub batch: usize,
    /// Worker threads.
    pub threads: usize,
}

impl TrainerCase {
    /// Examples trained per iteration: [`TRAINER_EXAMPLES`], or fewer for the slow techniques
    /// and in quick mode. Criterion records it as the benchmark's throughput.
    pub fn examples(&self, quick: bool) -> usize {
        let slow = matches!(
            self.technique.parse(),
            Ok(Technique::Naive | Technique::PerOutput | Technique::AxisReduce)
        );
        match (quick, slow) {
            (false, false) => TRAINER_EXAMPLES,
            (false, true) => SLOW_TRAINER_EXAMPLES,
            (true, false) => QUICK_TRAINER_EXAMPLES[0],
            (true, true) => QUICK_TRAINER_EXAMPLES[1],
        }
    }

    /// Benchmark function id: the technique, with the thread count when it is not 1.
    pub fn id(&self) -> String {
        if self.threads == 1 {
            self.technique.to_string()
        } else {
            format!("{}-{}threads", self.technique, self.threads)
        }
    }
}

/// Every technique at the seed's batch on one thread, then the fastest plan at larger batches,
/// on one thread and on two.
pub fn trainer_cases() -> Vec<TrainerCase> {
    let mut cases: Vec<TrainerCase> = Technique::ALL
        .iter()
        .map(|t| TrainerCase {
            technique: t.name(),
            batch: 5,
            threads: 1,
        })
        .collect();
    for batch in [5, 32, 128] {
        for threads in [1, 2] {
            cases.push(TrainerCase {
                technique: "auto",
                batch,
                threads,
            });
        }
    }
    cases
}
