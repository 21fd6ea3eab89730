//! The network's layer list, as the seed writes it: `Input`, `Convolutional`, `Pooling`,
//! `FullyConnected`, `ReLU`, `Sigmoid`, `Softmax`, with optional per-layer rates. The default is
//! the seed's CIFAR-10 network; `--arch FILE` reads the same list as JSON.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Optional per-layer overrides of the learning rate, momentum and weight decay, as the
/// seed's rate tuples.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rates {
    /// Learning rate α.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lr: Option<f32>,
    /// Momentum η.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub momentum: Option<f32>,
    /// Weight decay ε.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decay: Option<f32>,
}

/// One entry of the layer list.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
pub enum LayerSpec {
    /// The input: channels × height × width.
    Input {
        /// Channels.
        channels: usize,
        /// Height.
        height: usize,
        /// Width.
        width: usize,
    },
    /// Convolution: `filters` of `size × size`, with stride and padding (`-1`: "same", as in
    /// the seed, for stride 1 and an odd size).
    Conv {
        /// Output channels.
        filters: usize,
        /// Kernel side.
        size: usize,
        /// Stride (default 1).
        #[serde(default = "one")]
        stride: usize,
        /// Zero padding; -1 for "same" (default 0).
        #[serde(default)]
        pad: i64,
        /// Per-layer rates.
        #[serde(default, flatten)]
        rates: Rates,
    },
    /// Max pooling.
    Pool {
        /// Window side.
        size: usize,
        /// Stride.
        stride: usize,
    },
    /// Fully connected.
    Fc {
        /// Outputs.
        outputs: usize,
        /// Per-layer rates.
        #[serde(default, flatten)]
        rates: Rates,
    },
    /// Leaky ReLU, `max(x, 0.01·x)`.
    Relu,
    /// Sigmoid.
    Sigmoid,
    /// Softmax with cross-entropy: the last layer.
    Softmax,
}

fn one() -> usize {
    1
}

/// The seed's network: IN 3×32×32 → conv16 f5 p2 → ReLU → pool2 → conv20 → ReLU → pool2 →
/// conv20 → ReLU → pool2 → fc10 → softmax.
pub fn seed_network() -> Vec<LayerSpec> {
    let conv = |filters| LayerSpec::Conv {
        filters,
        size: 5,
        stride: 1,
        pad: 2,
        rates: Rates::default(),
    };
    let pool = LayerSpec::Pool { size: 2, stride: 2 };
    vec![
        LayerSpec::Input {
            channels: 3,
            height: 32,
            width: 32,
        },
        conv(16),
        LayerSpec::Relu,
        pool,
        conv(20),
        LayerSpec::Relu,
        pool,
        conv(20),
        LayerSpec::Relu,
        pool,
        LayerSpec::Fc {
            outputs: 10,
            rates: Rates::default(),
        },
        LayerSpec::Softmax,
    ]
}

/// Reads a layer list from JSON text; `name` names the source in errors.
pub fn parse(text: &str, name: &str) -> Result<Vec<LayerSpec>> {
    serde_json::from_str(text).map_err(|e| Error::Arch(format!("{name}: {e}")))
}

/// What a layer spec turns into once shapes are known: the padding resolved.
pub fn resolved_pad(index: usize, size: usize, stride: usize, pad: i64) -> Result<usize> {
    match pad {
        -1 if stride == 1 && size % 2 == 1 => Ok((size - 1) / 2),
        -1 => Err(Error::Arch(format!(
            "layer {index} (conv): pad -1 (\"same\") needs stride 1 and an odd size, not stride {stride} and size {size}"
        ))),
        p if p >= 0 => Ok(p as usize),
        p => Err(Error::Arch(format!(
            "layer {index} (conv): pad {p} is negative (only -1, \"same\", is allowed)"
        ))),
    }
}
