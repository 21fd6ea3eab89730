//! The network: layers and their parameters, built from a checked layer list, and the
//! workspace that runs forward and backward passes over up to `capacity` examples, reusing
//! every buffer from call to call.

use kernels::*;
use ndarray::{
    Array1, Array2, Array4, ArrayD, ArrayView2, ArrayViewD, ArrayViewMut4, ArrayViewMutD, Axis,
    Ix2, Ix4, IxDyn, Slice,
};
use rand::rngs::StdRng;
use rand_distr::{Distribution, StandardNormal};

use crate::arch::{LayerSpec, Rates, resolved_pad};
use crate::error::{Error, Result};

/// A gradient, momentum term or value of one layer's weights and bias (empty arrays for a
/// layer without parameters).
pub type ParamPair = (ArrayD<f32>, Array1<f32>);

/// A layer with its parameters.
#[derive(Clone, Debug)]
pub enum Layer {
    /// Convolution: weights `[d, c, k, k]`, bias `[d]`.
    Conv {
        /// Stride and padding.
        params: Conv2dParams,
        /// Weights `[d, c, k, k]`.
        w: Array4<f32>,
        /// Bias `[d]`.
        b: Array1<f32>,
        /// Per-layer rates.
        rates: Rates,
    },
    /// Max pooling.
    Pool {
        /// Window and stride.
        params: Pool2dParams,
    },
    /// Fully connected: weights `[o, i]`, bias `[o]`; flattens a `[c, h, w]` input.
    Fc {
        /// Weights `[o, i]`.
        w: Array2<f32>,
        /// Bias `[o]`.
        b: Array1<f32>,
        /// Per-layer rates.
        rates: Rates,
    },
    /// Leaky ReLU.
    Relu,
    /// Sigmoid.
    Sigmoid,
}

impl Layer {
    /// Weights and bias, for layers that have them.
    pub fn params(&self) -> Option<(ArrayViewD<'_, f32>, &Array1<f32>)> {
        match self {
            Layer::Conv { w, b, .. } => Some((w.view().into_dyn(), b)),
            Layer::Fc { w, b, .. } => Some((w.view().into_dyn(), b)),
            _ => None,
        }
    }

    /// Weights and bias, mutable.
    pub fn params_mut(&mut self) -> Option<(ArrayViewMutD<'_, f32>, &mut Array1<f32>)> {
        match self {
            Layer::Conv { w, b, .. } => Some((w.view_mut().into_dyn(), b)),
            Layer::Fc { w, b, .. } => Some((w.view_mut().into_dyn(), b)),
            _ => None,
        }
    }

    /// Per-layer rates, for layers with parameters.
    pub fn rates(&self) -> Option<Rates> {
        match self {
            Layer::Conv { rates, .. } | Layer::Fc { rates, .. } => Some(*rates),
            _ => None,
        }
    }

    /// Short name, for tables and errors.
    pub fn name(&self) -> &'static str {
        match self {
            Layer::Conv { .. } => "conv",
            Layer::Pool { .. } => "pool",
            Layer::Fc { .. } => "fc",
            Layer::Relu => "relu",
            Layer::Sigmoid => "sigmoid",
        }
    }
}

/// How weights start.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Init {
    /// He: weights ~ N(0, 2 / fan-in), biases 0. Suits leaky ReLU networks.
    He,
    /// The seed's: conv weights ~ N(0, 1) / √(c·h·w of the layer's input), conv biases
    /// 1 / √(c·h·w); fully connected weights 0.01 · N(0, 1) / √inputs, biases 0.
    Seed,
}

/// The network: layers and the per-example shape at every point.
#[derive(Clone, Debug)]
pub struct Network {
    /// The layer list it was built from (input and softmax included).
    pub spec: Vec<LayerSpec>,
    /// The layers between the input and the softmax.
    pub layers: Vec<Layer>,
    /// `shapes[i]`: one example's shape entering layer i; the last is the logits `[classes]`.
    pub shapes: Vec<Vec<usize>>,
}

impl Network {
    /// Checks the layer list and initialises its parameters.
    pub fn new(spec: &[LayerSpec], init: Init, rng: &mut StdRng) -> Result<Self> {
        let (shapes, planned) = Self::check(spec)?;
        let layers = planned
            .into_iter()
            .zip(&shapes)
            .map(|((layer, weights), input)| {
                layer.initialised(weights.as_deref(), init, input, rng)
            })
            .collect();
        Ok(Network {
            spec: spec.to_vec(),
            layers,
            shapes,
        })
    }

    /// Checks the layer list without allocating any parameter: the shape entering every layer
    /// and after the last, and the layers with empty parameters.
    #[allow(clippy::type_complexity)]
    fn check(spec: &[LayerSpec]) -> Result<(Vec<Vec<usize>>, Vec<(Layer, Option<Vec<usize>>)>)> {
        crate::arch::check_numbers(spec)?;
        let Some(LayerSpec::Input {
            channels,
            height,
            width,
        }) = spec.first().copied()
        else {
            return Err(Error::Arch("the first layer must be the input".into()));
        };
        if !matches!(spec.last(), Some(LayerSpec::Softmax)) || spec.len() < 3 {
            return Err(Error::Arch(
                "the last layer must be softmax, after at least one layer with weights".into(),
            ));
        }
        if channels == 0 || height == 0 || width == 0 {
            return Err(Error::Arch(format!(
                "layer 0 (input): {channels}×{height}×{width} has an empty dimension"
            )));
        }
        let mut shapes = vec![vec![channels, height, width]];
        let mut layers = Vec::new();
        let mut params = 0usize;
        for (index, &layer) in spec.iter().enumerate().skip(1).take(spec.len() - 2) {
            let input = shapes.last().expect("starts with the input");
            let (planned, out) = Layer::planned(index, layer, input)?;
            let weights = planned.weight_shape(layer, input);
            let count = weights.as_ref().map_or(0, |w| {
                let n = w.iter().fold(1usize, |v, &d| v.saturating_mul(d));
                n.saturating_add(w[0])
            });
            params = params.saturating_add(count);
            let layer = planned;
            let volume = out.iter().try_fold(1usize, |v, &d| v.checked_mul(d));
            if volume.is_none_or(|v| v > crate::arch::MAX_ELEMENTS)
                || params > crate::arch::MAX_ELEMENTS
            {
                return Err(Error::Arch(format!(
                    "layer {index} ({}): {out:?} per example, or {params} parameters so far, is more than the {} elements allowed",
                    layer.name(),
                    crate::arch::MAX_ELEMENTS
                )));
            }
            layers.push((layer, weights));
            shapes.push(out);
        }
        if !layers.iter().any(|(_, w)| w.is_some()) {
            return Err(Error::Arch(
                "the network has no layer with weights (conv or fc)".into(),
            ));
        }
        if shapes.last().is_some_and(|s| s.len() != 1) {
            return Err(Error::Arch(format!(
                "softmax needs a vector of class scores, but the layer before it gives {:?}: end with an fc layer",
                shapes.last().expect("nonempty")
            )));
        }
        Ok((shapes, layers))
    }

    /// The shape entering every layer of a layer list and after the last (the logits), checked
    /// as [`Network::new`] checks it, without allocating any parameter.
    pub fn shapes(spec: &[LayerSpec]) -> Result<Vec<Vec<usize>>> {
        Self::check(spec).map(|(shapes, _)| shapes)
    }

    /// Replaces the weights and biases with `pairs` (one per layer, `None` for layers without
    /// parameters, as [`crate::tensors::read_pairs`] returns them, shapes already checked).
    pub fn set_params(&mut self, pairs: Vec<Option<ParamPair>>) {
        for (layer, pair) in self.layers.iter_mut().zip(pairs) {
            if let (Some((mut w, b)), Some((nw, nb))) = (layer.params_mut(), pair) {
                w.assign(&nw);
                b.assign(&nb);
            }
        }
    }

    /// Number of classes: the softmax's width.
    pub fn classes(&self) -> usize {
        self.shapes.last().expect("checked")[0]
    }

    /// One example's input shape `[c, h, w]`.
    pub fn input_shape(&self) -> [usize; 3] {
        [self.shapes[0][0], self.shapes[0][1], self.shapes[0][2]]
    }
}

impl Layer {
    /// Layer `index` of a layer list with empty parameters, and its output shape for an
    /// `input` of one example.
    fn planned(index: usize, spec: LayerSpec, input: &[usize]) -> Result<(Layer, Vec<usize>)> {
        let fail = |name: &str, e: KernelError| Error::Arch(format!("layer {index} ({name}): {e}"));
        let empty = || (Array4::zeros((0, 0, 0, 0)), Array1::zeros(0));
        Ok(match spec {
            LayerSpec::Input { .. } => {
                return Err(Error::Arch(format!(
                    "layer {index}: only the first layer may be an input"
                )));
            }
            LayerSpec::Softmax => {
                return Err(Error::Arch(format!(
                    "layer {index}: softmax must be the last layer"
                )));
            }
            LayerSpec::Conv {
                filters,
                size,
                stride,
                pad,
                rates,
            } => {
                let [c, h, w] = spatial(index, "conv", input)?;
                if filters == 0 {
                    return Err(Error::Arch(format!("layer {index} (conv): zero filters")));
                }
                let params = Conv2dParams {
                    stride,
                    padding: resolved_pad(index, size, stride, pad)?,
                };
                let out = params
                    .output_shape(&[1, c, h, w], &[filters, c, size, size])
                    .map_err(|e| fail("conv", e))?;
                let (w, b) = empty();
                (
                    Layer::Conv {
                        params,
                        w,
                        b,
                        rates,
                    },
                    out[1..].to_vec(),
                )
            }
            LayerSpec::Pool { size, stride } => {
                let [c, h, w] = spatial(index, "pool", input)?;
                let params = Pool2dParams { size, stride };
                let out = params
                    .output_shape(&[1, c, h, w])
                    .map_err(|e| fail("pool", e))?;
                (Layer::Pool { params }, out[1..].to_vec())
            }
            LayerSpec::Fc { outputs, rates } => {
                if outputs == 0 {
                    return Err(Error::Arch(format!("layer {index} (fc): zero outputs")));
                }
                let b = Array1::zeros(0);
                (
                    Layer::Fc {
                        w: Array2::zeros((0, 0)),
                        b,
                        rates,
                    },
                    vec![outputs],
                )
            }
            LayerSpec::Relu => (Layer::Relu, input.to_vec()),
            LayerSpec::Sigmoid => (Layer::Sigmoid, input.to_vec()),
        })
    }

    /// The weight shape of a planned layer (`[d, c, k, k]` or `[o, i]`; the bias is as long
    /// as its first axis) for an `input` of one example, `None` without parameters.
    fn weight_shape(&self, spec: LayerSpec, input: &[usize]) -> Option<Vec<usize>> {
        match (self, spec) {
            (Layer::Conv { .. }, LayerSpec::Conv { filters, size, .. }) => {
                Some(vec![filters, input[0], size, size])
            }
            (Layer::Fc { .. }, LayerSpec::Fc { outputs, .. }) => {
                Some(vec![outputs, input.iter().product()])
            }
            _ => None,
        }
    }

    /// The planned layer with its parameters drawn by `init`.
    fn initialised(
        self,
        shape: Option<&[usize]>,
        init: Init,
        input: &[usize],
        rng: &mut StdRng,
    ) -> Layer {
        match (self, shape) {
            (Layer::Conv { params, rates, .. }, Some(&[d, c, k, _])) => {
                let (w, b) = init_conv(init, [d, c, k], input.iter().product(), rng);
                Layer::Conv {
                    params,
                    w,
                    b,
                    rates,
                }
            }
            (Layer::Fc { rates, .. }, Some(&[o, i])) => {
                let (w, b) = init_fc(init, o, i, rng);
                Layer::Fc { w, b, rates }
            }
            (layer, _) => layer,
        }
    }
}

fn spatial(index: usize, name: &str, shape: &[usize]) -> Result<[usize; 3]> {
    shape.try_into().map_err(|_| {
        Error::Arch(format!(
            "layer {index} ({name}) needs a [c, h, w] input, not {shape:?} (after an fc layer)"
        ))
    })
}

fn normal(rng: &mut StdRng, std: f32) -> f32 {
    let z: f32 = StandardNormal.sample(rng);
    z * std
}

fn init_conv(
    init: Init,
    [d, c, k]: [usize; 3],
    input_volume: usize,
    rng: &mut StdRng,
) -> (Array4<f32>, Array1<f32>) {
    let (std, bias) = match init {
        Init::He => ((2.0 / (c * k * k) as f32).sqrt(), 0.0),
        Init::Seed => {
            let scale = 1.0 / (input_volume as f32).sqrt();
            (scale, scale)
        }
    };
    (
        Array4::from_shape_simple_fn((d, c, k, k), || normal(rng, std)),
        Array1::from_elem(d, bias),
    )
}

fn init_fc(
    init: Init,
    outputs: usize,
    inputs: usize,
    rng: &mut StdRng,
) -> (Array2<f32>, Array1<f32>) {
    let std = match init {
        Init::He => (2.0 / inputs as f32).sqrt(),
        Init::Seed => 0.01 / (inputs as f32).sqrt(),
    };
    (
        Array2::from_shape_simple_fn((outputs, inputs), || normal(rng, std)),
        Array1::zeros(outputs),
    )
}

/// Which technique each layer runs, forward and backward, and the softmax's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    /// Forward technique per layer.
    pub forward: Vec<Technique>,
    /// Backward technique per layer.
    pub backward: Vec<Technique>,
    /// The softmax + cross-entropy's technique (both passes).
    pub softmax: Technique,
}

impl Plan {
    /// Every layer and pass on one technique.
    pub fn uniform(net: &Network, t: Technique) -> Self {
        Plan {
            forward: vec![t; net.layers.len()],
            backward: vec![t; net.layers.len()],
            softmax: t,
        }
    }
}

/// Buffers for forward and backward passes over up to `capacity` examples.
pub struct Workspace {
    capacity: usize,
    /// `acts[0]` the input, `acts[i + 1]` layer i's output (the last: logits); a convolution's
    /// output is left unwritten when [`Workspace::forward`] fuses it with its activation, and
    /// its activation's too when [`Workspace::forward_inference`] fuses the pooling after.
    acts: Vec<ArrayD<f32>>,
    /// Which of `acts` hold what the last forward pass computed there (all of them, zeros,
    /// before any pass); see [`Workspace::forward`] and [`Workspace::forward_inference`].
    written: Vec<bool>,
    /// `grads[i]`: gradient of the loss with respect to `acts[i]`.
    grads: Vec<ArrayD<f32>>,
    /// Each pooling layer's argmax (empty for the other layers).
    argmax: Vec<Array4<u32>>,
    /// Which of `argmax` hold the last forward pass's ([`Workspace::forward_inference`] keeps
    /// none of those it fuses).
    argmax_written: Vec<bool>,
    scratch: Vec<Scratch>,
    probs: Array2<f32>,
    /// Gradients of the weights and biases of each layer that has them (empty otherwise).
    pub dparams: Vec<ParamPair>,
    labels: Array1<usize>,
}

fn with_batch(n: usize, shape: &[usize]) -> IxDyn {
    IxDyn(&[&[n][..], shape].concat())
}

fn rows<'a>(a: &'a ArrayD<f32>, n: usize) -> ArrayViewD<'a, f32> {
    a.slice_axis(Axis(0), Slice::from(..n))
}

fn rows_mut<'a>(a: &'a mut ArrayD<f32>, n: usize) -> ArrayViewMutD<'a, f32> {
    a.slice_axis_mut(Axis(0), Slice::from(..n))
}

fn flat(a: ArrayViewD<'_, f32>) -> ArrayView2<'_, f32> {
    let n = a.shape()[0];
    let rest = a.len() / n.max(1);
    a.into_shape_with_order((n, rest))
        .expect("workspace buffers are contiguous")
}

fn flat_mut(a: ArrayViewMutD<'_, f32>) -> ndarray::ArrayViewMut2<'_, f32> {
    let n = a.shape()[0];
    let rest = a.len() / n.max(1);
    a.into_shape_with_order((n, rest))
        .expect("workspace buffers are contiguous")
}

impl Workspace {
    /// Buffers for `net` over up to `capacity` examples.
    pub fn new(net: &Network, capacity: usize) -> Self {
        let acts: Vec<ArrayD<f32>> = net
            .shapes
            .iter()
            .map(|s| ArrayD::zeros(with_batch(capacity, s)))
            .collect();
        let argmax = net
            .layers
            .iter()
            .zip(&net.shapes[1..])
            .map(|(l, s)| match l {
                Layer::Pool { .. } => Array4::zeros((capacity, s[0], s[1], s[2])),
                _ => Array4::zeros((0, 0, 0, 0)),
            })
            .collect();
        let dparams = net
            .layers
            .iter()
            .map(|l| match l.params() {
                Some((w, b)) => (ArrayD::zeros(w.raw_dim()), Array1::zeros(b.len())),
                None => (ArrayD::zeros(IxDyn(&[0])), Array1::zeros(0)),
            })
            .collect();
        Workspace {
            capacity,
            grads: acts.clone(),
            acts,
            argmax,
            scratch: vec![Scratch::new(); net.layers.len() + 1],
            probs: Array2::zeros((capacity, net.classes())),
            dparams,
            labels: Array1::zeros(capacity),
            written: vec![true; net.layers.len() + 1],
            argmax_written: vec![true; net.layers.len()],
        }
    }

    /// How many examples it holds at most.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// The first `n` input slots, `[n, c, h, w]`, to fill before [`Workspace::forward`].
    pub fn input_mut(&mut self, n: usize) -> ArrayViewMut4<'_, f32> {
        rows_mut(&mut self.acts[0], n)
            .into_dimensionality::<Ix4>()
            .expect("input is [c, h, w]")
    }

    /// The first `n` labels, to fill before [`Workspace::loss`].
    pub fn labels_mut(&mut self, n: usize) -> ndarray::ArrayViewMut1<'_, usize> {
        self.labels.slice_mut(ndarray::s![..n])
    }

    /// Class probabilities of the first `n` examples after [`Workspace::loss`].
    pub fn probs(&self, n: usize) -> ArrayView2<'_, f32> {
        self.probs.slice(ndarray::s![..n, ..])
    }

    /// Runs the forward pass of the first `n` examples to the logits. A convolution on the
    /// direct technique followed by a leaky ReLU runs as one call
    /// ([`kernels::conv2d_leaky_relu_forward`]: the activation in the kernel's registers), which
    /// leaves the convolution's own output unwritten: nothing after the forward pass reads it
    /// (the activation's backward pass reads its own output). The other techniques would gain
    /// nothing from the call, so their layers run one by one, each on its own technique (the
    /// naive plan stays naive). [`Workspace::forward_every_point`] writes every point, for
    /// [`Workspace::activation`].
    pub fn forward(&mut self, net: &Network, plan: &Plan, n: usize) -> Result<()> {
        self.fused_forward(net, plan, n, false)
    }

    /// One step of [`Workspace::forward`] from layer `i` over the first `n` examples: a direct
    /// convolution with the leaky ReLU after it, in one call, or layer `i` alone; returns the
    /// layers it ran (2 or 1).
    pub fn forward_step(
        &mut self,
        net: &Network,
        plan: &Plan,
        i: usize,
        n: usize,
    ) -> Result<usize> {
        self.fused_step(net, plan, i, n, false)
    }

    /// The forward pass for inference only: [`Workspace::forward`], with each direct
    /// convolution followed by a leaky ReLU and a max pooling run as one call
    /// ([`kernels::conv2d_leaky_relu_pool_forward`]), which writes the pooling's output but
    /// neither the convolution's nor the activation's, nor the pooling's argmax. The logits are
    /// those of [`Workspace::forward`], bit for bit; a backward pass after it is refused (it
    /// would read what was not written).
    pub fn forward_inference(&mut self, net: &Network, plan: &Plan, n: usize) -> Result<()> {
        self.fused_forward(net, plan, n, true)
    }

    /// [`Workspace::forward`], or with `pooled` [`Workspace::forward_inference`].
    fn fused_forward(&mut self, net: &Network, plan: &Plan, n: usize, pooled: bool) -> Result<()> {
        let mut i = 0;
        while i < net.layers.len() {
            i += self.fused_step(net, plan, i, n, pooled)?;
        }
        Ok(())
    }

    /// One step from layer `i` over the first `n` examples: a direct convolution with the
    /// leaky ReLU after it (and, if `pooled`, a max pooling after that) in one call, or layer
    /// `i` alone; returns the layers it ran.
    fn fused_step(
        &mut self,
        net: &Network,
        plan: &Plan,
        i: usize,
        n: usize,
        pooled: bool,
    ) -> Result<usize> {
        let (after, then) = (net.layers.get(i + 1), net.layers.get(i + 2));
        match (&net.layers[i], after, then, plan.forward[i]) {
            (
                Layer::Conv { .. },
                Some(Layer::Relu),
                Some(Layer::Pool { params }),
                Technique::Direct,
            ) if pooled => {
                self.conv_relu_forward(net, i, n, Some(params))?;
                Ok(3)
            }
            (Layer::Conv { .. }, Some(Layer::Relu), _, Technique::Direct) => {
                self.conv_relu_forward(net, i, n, None)?;
                Ok(2)
            }
            _ => {
                self.layer_forward(net, i, plan.forward[i], n)?;
                Ok(1)
            }
        }
    }

    /// [`Workspace::forward`] writing the output of every layer, for
    /// [`Workspace::activation`].
    pub fn forward_every_point(&mut self, net: &Network, plan: &Plan, n: usize) -> Result<()> {
        (0..net.layers.len()).try_for_each(|i| self.layer_forward(net, i, plan.forward[i], n))
    }

    /// Convolution layer `i`, on the direct technique, and the leaky ReLU after it over the
    /// first `n` examples, in one call, with the max pooling `pool` after that too if given:
    /// the last layer's output written, the others' not (nor the pooling's argmax).
    fn conv_relu_forward(
        &mut self,
        net: &Network,
        i: usize,
        n: usize,
        pool: Option<&Pool2dParams>,
    ) -> Result<()> {
        let Layer::Conv { params, w, b, .. } = &net.layers[i] else {
            unreachable!("layer {i} is a convolution");
        };
        let last = i + 1 + usize::from(pool.is_some());
        let (x, y, scratch) = forward_views(
            &mut self.acts,
            &self.written,
            &mut self.scratch,
            i,
            last + 1,
            n,
        );
        let (x, w, b, y) = (dim4(x), w.view(), b.view(), dim4_mut(y));
        match pool {
            Some(pool) => {
                conv2d_leaky_relu_pool_forward(params, pool, x, w, b, y, scratch)?;
                self.argmax_written[last] = false;
            }
            None => conv2d_leaky_relu_forward(Technique::Direct, params, x, w, b, y, scratch)?,
        }
        self.written[i + 1..=last].fill(false);
        self.written[last + 1] = true;
        Ok(())
    }

    /// Softmax and the mean cross-entropy of the first `n` examples against their labels.
    pub fn loss(&mut self, plan: &Plan, n: usize) -> Result<f32> {
        let logits = flat(rows(self.acts.last().expect("logits"), n));
        let probs = self.probs.slice_mut(ndarray::s![..n, ..]);
        let last = self
            .scratch
            .last_mut()
            .expect("one scratch for the softmax");
        Ok(softmax_cross_entropy_forward(
            plan.softmax,
            logits,
            self.labels.slice(ndarray::s![..n]),
            probs,
            last,
        )?)
    }

    /// The loss's gradient at the logits of the first `n` examples.
    pub fn softmax_backward(&mut self, plan: &Plan, n: usize) -> Result<()> {
        let last = self.grads.len() - 1;
        softmax_cross_entropy_backward(
            plan.softmax,
            self.probs.slice(ndarray::s![..n, ..]),
            self.labels.slice(ndarray::s![..n]),
            flat_mut(rows_mut(&mut self.grads[last], n)),
        )?;
        Ok(())
    }

    /// Label smoothing ε after [`Workspace::loss`] and [`Workspace::softmax_backward`]: the
    /// target becomes `1 − ε` on the label plus `ε / k` on every class, so the gradient at the
    /// logits gains `ε / n · ([class = label] − 1 / k)`; returns the smoothed mean loss,
    /// `(1 − ε)·loss + ε / k · mean Σ_k −ln p_k`, from the cross-entropy `loss`.
    pub fn smooth_labels(&mut self, epsilon: f32, n: usize, loss: f32) -> f32 {
        let last = self.grads.len() - 1;
        let mut dlogits = flat_mut(rows_mut(&mut self.grads[last], n));
        let k = dlogits.ncols() as f32;
        let (probs, labels) = (&self.probs, &self.labels);
        let mut spread = 0.0f64;
        for (r, mut row) in dlogits.rows_mut().into_iter().enumerate() {
            row.iter_mut().for_each(|d| *d -= epsilon / (n as f32 * k));
            row[labels[r]] += epsilon / n as f32;
            let logs: f32 = probs
                .row(r)
                .iter()
                .map(|p| -p.max(f32::MIN_POSITIVE).ln())
                .sum();
            spread += f64::from(logs);
        }
        (1.0 - epsilon) * loss + epsilon / k * (spread / n as f64) as f32
    }

    /// Logits of the first `n` examples after [`Workspace::forward`], `[n, classes]`.
    pub fn logits(&self, n: usize) -> ArrayView2<'_, f32> {
        flat(rows(self.acts.last().expect("logits"), n))
    }

    /// The gradient at the logits of the first `n` examples, `[n, classes]`: set it, then
    /// [`Workspace::backward_layers`] sends it back to the input.
    pub fn logits_grad_mut(&mut self, n: usize) -> ndarray::ArrayViewMut2<'_, f32> {
        let last = self.grads.len() - 1;
        flat_mut(rows_mut(&mut self.grads[last], n))
    }

    /// The gradient at the input of the first `n` examples after
    /// [`Workspace::backward_layers`], `[n, c, h, w]`.
    pub fn input_grad(&self, n: usize) -> ndarray::ArrayView4<'_, f32> {
        dim4(rows(&self.grads[0], n))
    }

    /// Example `r`'s values at point `i` after [`Workspace::forward_every_point`] (0 the
    /// input, `i + 1` layer i's output): `[c, h, w]`, or `[n]` after an fc layer.
    ///
    /// # Panics
    /// If the last forward pass left point `i` unwritten ([`Workspace::forward`] fuses a
    /// convolution with its activation).
    pub fn activation(&self, i: usize, r: usize) -> ArrayViewD<'_, f32> {
        assert!(
            self.written[i],
            "point {i} is not written by a fused forward pass: run forward_every_point"
        );
        self.acts[i].index_axis(Axis(0), r)
    }

    /// Example `r`'s gradient at point `i` after [`Workspace::backward_layers`], shaped as
    /// [`Workspace::activation`].
    pub fn gradient(&self, i: usize, r: usize) -> ArrayViewD<'_, f32> {
        self.grads[i].index_axis(Axis(0), r)
    }

    /// Label of example `r`.
    pub fn label(&self, r: usize) -> usize {
        self.labels[r]
    }

    /// Backward through the layers from the gradient at the logits; down to the gradient of
    /// the input itself if `to_input` (see [`Workspace::input_grad`]).
    pub fn backward_layers(
        &mut self,
        net: &Network,
        plan: &Plan,
        n: usize,
        to_input: bool,
    ) -> Result<()> {
        (0..net.layers.len())
            .rev()
            .try_for_each(|i| self.layer_backward(net, i, plan.backward[i], n, to_input || i > 0))
    }

    /// Layer `i`'s forward pass over the first `n` examples.
    pub fn layer_forward(&mut self, net: &Network, i: usize, t: Technique, n: usize) -> Result<()> {
        let (x, y, scratch) = forward_views(
            &mut self.acts,
            &self.written,
            &mut self.scratch,
            i,
            i + 1,
            n,
        );
        match &net.layers[i] {
            Layer::Conv { params, w, b, .. } => {
                conv2d_forward(t, params, dim4(x), w.view(), b.view(), dim4_mut(y), scratch)?
            }
            Layer::Pool { params } => {
                let argmax = self.argmax[i].slice_axis_mut(Axis(0), Slice::from(..n));
                max_pool2d_forward(t, params, dim4(x), dim4_mut(y), argmax, scratch)?;
                self.argmax_written[i] = true;
            }
            Layer::Fc { w, b, .. } => {
                fc_forward(t, flat(x), w.view(), b.view(), flat_mut(y), scratch)?
            }
            Layer::Relu => leaky_relu_forward(t, x, y)?,
            Layer::Sigmoid => sigmoid_forward(t, x, y)?,
        }
        self.written[i + 1] = true;
        Ok(())
    }

    /// Layer `i`'s backward pass over the first `n` examples: from `grads[i + 1]` to the
    /// layer's parameter gradients and, if `with_dx`, to `grads[i]` (a layer without
    /// parameters then has nothing to do).
    pub fn layer_backward(
        &mut self,
        net: &Network,
        i: usize,
        t: Technique,
        n: usize,
        with_dx: bool,
    ) -> Result<()> {
        if !with_dx && net.layers[i].params().is_none() {
            return Ok(());
        }
        // What the layer's backward pass reads: its input (convolution, fc), its output
        // (activations), its argmax (pooling).
        let read = match net.layers[i] {
            Layer::Conv { .. } | Layer::Fc { .. } => self.written[i],
            Layer::Relu | Layer::Sigmoid => self.written[i + 1],
            Layer::Pool { .. } => self.argmax_written[i],
        };
        assert!(
            read,
            "layer {i}'s backward pass reads what the last forward pass did not write (forward_inference keeps nothing for it)"
        );
        let (before, after) = self.grads.split_at_mut(i + 1);
        let dy = rows(&after[0], n);
        let dx = rows_mut(&mut before[i], n);
        let x = rows(&self.acts[i], n);
        let y = rows(&self.acts[i + 1], n);
        let scratch = &mut self.scratch[i];
        let (dw, db) = &mut self.dparams[i];
        match &net.layers[i] {
            Layer::Conv { params, w, .. } => conv2d_backward(
                t,
                params,
                dim4(x),
                w.view(),
                dim4(dy),
                with_dx.then(|| dim4_mut(dx)),
                dim4_mut(dw.view_mut()),
                db.view_mut(),
                scratch,
            )?,
            Layer::Pool { params } => {
                let argmax = self.argmax[i].slice_axis(Axis(0), Slice::from(..n));
                max_pool2d_backward(t, params, dim4(dy), argmax, dim4_mut(dx), scratch)?
            }
            Layer::Fc { w, .. } => {
                let dw = dw
                    .view_mut()
                    .into_dimensionality::<Ix2>()
                    .expect("fc weights are 2-D");
                fc_backward(
                    t,
                    flat(x),
                    w.view(),
                    flat(dy),
                    flat_mut(dx),
                    dw,
                    db.view_mut(),
                    scratch,
                )?
            }
            Layer::Relu => leaky_relu_backward(t, y, dy, dx)?,
            Layer::Sigmoid => sigmoid_backward(t, y, dy, dx)?,
        }
        Ok(())
    }
}

/// The first `n` examples of the input of layer `i` (point `i` of `acts`, which must hold the
/// last forward pass's values by `written`), of point `out > i` to write, and layer `i`'s
/// scratch: a forward step's views.
fn forward_views<'a>(
    acts: &'a mut [ArrayD<f32>],
    written: &[bool],
    scratch: &'a mut [Scratch],
    i: usize,
    out: usize,
    n: usize,
) -> (ArrayViewD<'a, f32>, ArrayViewMutD<'a, f32>, &'a mut Scratch) {
    assert!(
        written[i],
        "point {i} was left unwritten by a fused forward pass"
    );
    let (before, after) = acts.split_at_mut(i + 1);
    let x = rows(&before[i], n);
    let y = rows_mut(&mut after[out - i - 1], n);
    (x, y, &mut scratch[i])
}

fn dim4(a: ArrayViewD<'_, f32>) -> ndarray::ArrayView4<'_, f32> {
    a.into_dimensionality::<Ix4>().expect("checked 4-D shape")
}

fn dim4_mut(a: ArrayViewMutD<'_, f32>) -> ArrayViewMut4<'_, f32> {
    a.into_dimensionality::<Ix4>().expect("checked 4-D shape")
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use ndarray::Zip;

    use super::*;
    use crate::arch::seed_network;

    /// The smoothed loss, independently in f64: `(1 − ε)·(−ln p_label) + ε / k · Σ −ln p_c`.
    fn smoothed(z: &[f64], label: usize, epsilon: f64) -> f64 {
        let max = z.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let log_sum = z.iter().map(|v| (v - max).exp()).sum::<f64>().ln() + max;
        let nll = |c: usize| log_sum - z[c];
        let k = z.len() as f64;
        (1.0 - epsilon) * nll(label) + epsilon / k * (0..z.len()).map(nll).sum::<f64>()
    }

    /// A forward pass of each kind.
    type Pass = fn(&mut Workspace, &Network, &Plan, usize) -> Result<()>;

    /// Two workspaces holding `input` `[n, 3, 32, 32]` (labels 7), one run forward by each of
    /// `passes`, then the loss.
    fn two_passes(
        net: &Network,
        plan: &Plan,
        input: &Array4<f32>,
        passes: [Pass; 2],
    ) -> [Workspace; 2] {
        let n = input.shape()[0];
        passes.map(|pass| {
            let mut ws = Workspace::new(net, n);
            ws.input_mut(n).assign(input);
            ws.labels_mut(n).fill(7);
            pass(&mut ws, net, plan, n).unwrap();
            ws.loss(plan, n).unwrap();
            ws
        })
    }

    /// The fused forward pass (each direct convolution with its activation) gives the logits
    /// and the activations' outputs of the layer-by-layer pass, at every technique, and then
    /// the backward pass's weight gradients; the convolutions' own outputs it leaves unwritten
    /// are refused.
    #[test]
    fn fused_forward_matches_every_point() {
        let net = Network::new(&seed_network(), Init::He, &mut StdRng::seed_from_u64(5)).unwrap();
        let n = 3;
        for t in Technique::ALL {
            let plan = Plan::uniform(&net, t);
            let mut rng = StdRng::seed_from_u64(6);
            let input = Array4::from_shape_fn((n, 3, 32, 32), |_| {
                rand_distr::Distribution::<f32>::sample(&rand_distr::StandardNormal, &mut rng)
            });
            let mut spaces = two_passes(
                &net,
                &plan,
                &input,
                [Workspace::forward, Workspace::forward_every_point],
            );
            for ws in &mut spaces {
                ws.softmax_backward(&plan, n).unwrap();
                ws.backward_layers(&net, &plan, n, false).unwrap();
            }
            let [fused, every] = &spaces;
            let close = |a: ArrayViewD<f32>, b: ArrayViewD<f32>, what: &str| {
                let scale = b.iter().fold(1.0f32, |m, v| m.max(v.abs()));
                Zip::from(&a).and(&b).for_each(|&u, &v| {
                    assert!((u - v).abs() <= 1e-5 * scale, "{t:?} {what}: {u} vs {v}");
                });
            };
            close(
                fused.logits(n).into_dyn(),
                every.logits(n).into_dyn(),
                "logits",
            );
            for (i, layer) in net.layers.iter().enumerate() {
                if matches!(layer, Layer::Relu) {
                    for r in 0..n {
                        close(
                            fused.activation(i + 1, r),
                            every.activation(i + 1, r),
                            "relu",
                        );
                    }
                }
                let ((fw, fb), (ew, eb)) = (&fused.dparams[i], &every.dparams[i]);
                close(fw.view(), ew.view(), "dw");
                close(fb.view().into_dyn(), eb.view().into_dyn(), "db");
            }
            let conv_output = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                fused.activation(1, 0).len()
            }));
            // Only the direct technique fuses: the others leave every point written.
            assert_eq!(conv_output.is_err(), t == Technique::Direct, "{t:?}");
        }
    }

    /// The inference pass (each direct convolution, activation and pooling as one call) gives
    /// the training pass's logits bit for bit, at every technique, on inputs with many ties
    /// (quantised, with a zero region); a backward pass after it is refused where it fused.
    #[test]
    fn inference_forward_matches_the_training_forward() {
        let net = Network::new(&seed_network(), Init::He, &mut StdRng::seed_from_u64(8)).unwrap();
        let n = 3;
        let mut rng = StdRng::seed_from_u64(9);
        let input = Array4::from_shape_fn((n, 3, 32, 32), |(_, _, i, _)| {
            let v: f32 = rand_distr::Distribution::sample(&rand_distr::StandardNormal, &mut rng);
            if i < 8 { 0.0 } else { (v * 2.0).round() / 2.0 }
        });
        for t in Technique::ALL {
            let plan = Plan::uniform(&net, t);
            let passes = [Workspace::forward, Workspace::forward_inference];
            let [training, inference] = &mut two_passes(&net, &plan, &input, passes);
            Zip::from(training.logits(n))
                .and(inference.logits(n))
                .for_each(|u, v| assert_eq!(u.to_bits(), v.to_bits(), "{t:?}: {u} vs {v}"));
            inference.softmax_backward(&plan, n).unwrap();
            let backward = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                inference.backward_layers(&net, &plan, n, false)
            }));
            assert_eq!(backward.is_err(), t == Technique::Direct, "{t:?}");
        }
    }

    /// Label smoothing's loss is the definition's, and its gradient at the logits the
    /// definition's derivative (central differences in f64), for every example and class.
    #[test]
    fn label_smoothing_matches_its_definition() {
        let net = Network::new(&seed_network(), Init::He, &mut StdRng::seed_from_u64(3)).unwrap();
        let plan = Plan::uniform(&net, Technique::Direct);
        let (n, epsilon) = (4, 0.2);
        let mut ws = Workspace::new(&net, n);
        let mut rng = StdRng::seed_from_u64(4);
        ws.input_mut(n).mapv_inplace(|_| {
            rand_distr::Distribution::sample(&rand_distr::StandardNormal, &mut rng)
        });
        ws.labels_mut(n)
            .iter_mut()
            .enumerate()
            .for_each(|(i, l)| *l = 3 * i % 10);
        ws.forward(&net, &plan, n).unwrap();
        let cross_entropy = ws.loss(&plan, n).unwrap();
        ws.softmax_backward(&plan, n).unwrap();
        let loss = ws.smooth_labels(epsilon as f32, n, cross_entropy);
        let logits = ws.logits(n).mapv(f64::from);
        let grads = ws.logits_grad_mut(n).to_owned();
        let want: f64 = (0..n)
            .map(|r| smoothed(logits.row(r).as_slice().unwrap(), ws.label(r), epsilon))
            .sum::<f64>()
            / n as f64;
        assert!(
            (f64::from(loss) - want).abs() < 1e-5,
            "loss {loss} vs {want}"
        );
        let h = 1e-4;
        for r in 0..n {
            for c in 0..10 {
                let mut z: Vec<f64> = logits.row(r).to_vec();
                z[c] += h;
                let up = smoothed(&z, ws.label(r), epsilon);
                z[c] -= 2.0 * h;
                let down = smoothed(&z, ws.label(r), epsilon);
                let numeric = (up - down) / (2.0 * h) / n as f64;
                let analytic = f64::from(grads[[r, c]]);
                assert!(
                    (analytic - numeric).abs() < 1e-5,
                    "[{r}, {c}]: {analytic} vs {numeric}"
                );
            }
        }
    }
}
